"""Shards: a run's rows in pieces of SDG_SHARD_ROWS, each with its state, replica, attempts and
lease in the job database (the `shards` table), spread over every serving replica at once. A
shard whose replica is lost goes back to the queue, for the rows it still lacks, and the next free
replica takes it; the job fails over as a whole only when no replica is left, or a shard has had
SDG_MAX_ATTEMPTS attempts."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway import db
from gateway.clients import ServiceEndpoint
from gateway.errors import JobFailure, ReplicaLost
from gateway.jobs import Leases
from gateway.seeding import CarriedRows

log = logging.getLogger(__name__)

ShardState = Literal["queued", "running", "completed", "partial", "failed", "interrupted"]
UNFINISHED_SHARDS = ("queued", "running")


@dataclass
class Shard:
    """One shard of a run: `size` rows, with the given values of its positions where the job has
    any (sequence numbers, carried seed rows)."""

    index: int
    size: int
    given: tuple[dict[str, Any], ...] = ()
    table: str = ""
    context: tuple[dict[str, Any], ...] = ()  # a tables shard's parent row per position
    attempts: int = 0
    added: int = 0  # rows written, over all its attempts
    written: list[dict[str, Any]] = field(default_factory=list)  # those rows, while it has given values
    replica: str | None = None

    @property
    def lacking(self) -> int:
        return max(0, self.size - self.added)

    def open_positions(self, schema: dict[str, Any]) -> list[int]:
        """The positions of its `given` values its rows have yet to fill, in order."""
        if not self.given:
            return list(range(self.lacking))
        carried = CarriedRows(self.given, schema)
        for row in self.written:
            carried.fills(row)
        return carried.lacking_positions()

    def took(self, rows: list[dict[str, Any]]) -> None:
        """Counts the rows the job wrote of this shard."""
        self.added += len(rows)
        if self.given:
            self.written.extend(rows)

    def record(self) -> dict[str, Any]:
        """Its entry in the manifest's `shards`."""
        entry = {"shard": self.index, "rows": self.size, "rows_added": self.added, "replica": self.replica, "attempts": self.attempts}
        return {"table": self.table, **entry} if self.table else entry


class ShardBook:
    """The shards of one run of one job, as the job database holds them."""

    def __init__(self, engine: Engine, job_id: str, run: int, leases: Leases):
        self.engine, self.job_id, self.run, self.leases = engine, job_id, run, leases

    def plan(self, shards: Sequence[Shard]) -> None:
        rows = [{"job_id": self.job_id, "run": self.run, "table_name": s.table, "shard": s.index, "rows": s.size,
                 "rows_added": 0, "state": "queued", "attempts": 0, "updated_at": time.time()} for s in shards]
        with self.engine.begin() as conn:
            if rows:  # a run queued again before it had its folder plans its shards anew
                c = db.shards.c
                conn.execute(sa.delete(db.shards).where(*self._of(), c.table_name == shards[0].table, c.shard.in_([s.index for s in shards])))
                conn.execute(sa.insert(db.shards), rows)

    def update(self, shard: Shard, state: ShardState, error: str | None = None) -> None:
        leased = state == "running"
        values = {"state": state, "attempts": shard.attempts, "rows_added": shard.added, "replica": shard.replica,
                  "lease_owner": self.leases.gateway_id if leased else None,
                  "lease_expires_at": self.leases.expiry() if leased else None, "updated_at": time.time()}
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            conn.execute(sa.update(db.shards).where(*self._of(), db.shards.c.table_name == shard.table,
                                                     db.shards.c.shard == shard.index).values(**values))

    def _of(self) -> tuple:
        return db.shards.c.job_id == self.job_id, db.shards.c.run == self.run


def job_shards(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    """GET /jobs/{id}/shards: every shard of every run of the job, in order."""
    c = db.shards.c
    columns = [c.run, c.table_name, c.shard, c.state, c.rows, c.rows_added, c.attempts, c.replica, c.error, c.lease_owner, c.lease_expires_at]
    query = sa.select(*columns).where(c.job_id == job_id).order_by(c.run, c.table_name, c.shard)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{"run": r["run"], "table": r["table_name"] or None, "shard": r["shard"], "state": r["state"], "rows": r["rows"],
             "rows_added": r["rows_added"], "attempts": r["attempts"], "replica": r["replica"], "error": r["error"],
             "gateway": r["lease_owner"], "lease_expires_at": r["lease_expires_at"]} for r in rows]


RunShard = Callable[[ServiceEndpoint, Shard], Awaitable[bool]]


async def run_shards(shards: Sequence[Shard], replicas: Sequence[ServiceEndpoint], run: RunShard, book: ShardBook,
                     max_attempts: int) -> None:
    """Runs the shards, one call at a time per replica and on all of them at once; `run` makes a
    shard's lacking rows on a replica and says whether it made all it was asked for. A replica
    lost mid-shard takes no more shards and its shard goes back to the front of the queue; the
    ReplicaLost is raised when no replica is left, or when a shard has had `max_attempts`."""
    queue = collections.deque(shards)
    book.plan(shards)
    alive, lost = list(replicas), None

    async def replica_takes_shards(replica: ServiceEndpoint) -> None:
        nonlocal lost
        while queue:
            shard = queue.popleft()
            shard.attempts, shard.replica = shard.attempts + 1, replica.address
            book.update(shard, "running")
            try:
                whole = await run(replica, shard)
            except ReplicaLost as err:
                if shard.attempts >= max_attempts:
                    book.update(shard, "failed", str(err))
                    raise JobFailure(f"shard {shard.index} lost its replica on each of its {shard.attempts} attempts: {err}") from None
                log.warning("shard %s lost the %s after %d of its %d rows; it goes to another replica", shard.index, replica.label,
                            shard.added, shard.size)
                book.update(shard, "queued", str(err))
                queue.appendleft(shard)
                alive.remove(replica)
                lost = err
                return
            except BaseException:  # a failure or cancellation elsewhere stops them all
                book.update(shard, "interrupted" if shard.lacking else "completed")
                raise
            book.update(shard, "completed" if whole else "partial")

    try:
        while queue:
            if not alive:
                assert lost is not None
                raise lost
            await gather_all([replica_takes_shards(replica) for replica in list(alive)])
    except BaseException:  # the run is over: what it did not start, a next one plans again
        for shard in queue:
            book.update(shard, "interrupted")
        raise


async def gather_all(coroutines: list) -> None:
    """Runs them at once; the first to fail stops the others, and its error is raised."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
