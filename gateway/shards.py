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
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway import db
from gateway.clients import ServiceEndpoint
from gateway.errors import JobFailure, ReplicaLost
from gateway.jobs import Leases
from gateway.metrics import GatewayMetrics
from gateway.models import ShardState
from gateway.outputs.folders import Spool, shard_spool
from gateway.seeding import CarriedRows
from sdg.logs import log_context

log = logging.getLogger(__name__)

ShardKind = Literal["rows", "images"]


@dataclass
class Shard:
    """One shard of a run: `size` rows or images from position `first`, with the given values of
    its rows' positions where the job has any (sequence numbers, carried seed rows)."""

    index: int
    size: int
    given: tuple[dict[str, Any], ...] = ()
    table: str = ""
    context: tuple[dict[str, Any], ...] = ()  # a tables shard's parent row per position
    kind: ShardKind = "rows"
    first: int = 0
    attempts: int = 0
    done: int = 0  # rows or images written, over all its attempts
    written: list[dict[str, Any]] = field(default_factory=list)  # its rows, while it has given values
    replica: str | None = None

    @property
    def lacking(self) -> int:
        return max(0, self.size - self.done)

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
        self.done += len(rows)
        if self.given:
            self.written.extend(rows)

    def record(self) -> dict[str, Any]:
        """Its entry in the manifest's `shards`."""
        if self.kind == "images":
            return {"kind": "images", "shard": self.index, "first": self.first, "images": self.size, "images_added": self.done,
                    "replica": self.replica, "attempts": self.attempts}
        entry = {"shard": self.index, "rows": self.size, "rows_added": self.done, "replica": self.replica, "attempts": self.attempts}
        return {"table": self.table, **entry} if self.table else entry


class ShardBook:
    """The shards of one run of one job, as the job database holds them, and their attempts as
    /metrics counts them."""

    def __init__(self, engine: Engine, job_id: str, run: int, leases: Leases, metrics: GatewayMetrics):
        self.engine, self.job_id, self.run, self.leases, self.metrics = engine, job_id, run, leases, metrics

    def plan(self, shards: Sequence[Shard]) -> None:
        rows = [{"job_id": self.job_id, "run": self.run, "kind": s.kind, "table_name": s.table, "shard": s.index, "first": s.first,
                 "size": s.size, "done": s.done, "state": "queued", "attempts": 0, "updated_at": time.time()} for s in shards]
        if not rows:
            return
        with self.engine.begin() as conn:  # a run queued again before it had its folder plans its shards anew
            c = db.shards.c
            conn.execute(sa.delete(db.shards).where(*self._of(shards[0]), c.shard.in_([s.index for s in shards])))
            conn.execute(sa.insert(db.shards), rows)

    def started(self, shard: Shard) -> None:
        self.metrics.shards_running.inc()
        self.update(shard, "running")

    def ended(self, shard: Shard, state: ShardState, outcome: str, error: str | None = None) -> None:
        """The end of the attempt `started` counted: `outcome` is one of metrics.SHARD_OUTCOMES."""
        self.metrics.shards_running.dec()
        self.metrics.shards.labels(outcome).inc()
        self.update(shard, state, error)

    def update(self, shard: Shard, state: ShardState, error: str | None = None) -> None:
        leased = state == "running"
        values = {"state": state, "attempts": shard.attempts, "done": shard.done, "replica": shard.replica,
                  "lease_owner": self.leases.gateway_id if leased else None,
                  "lease_expires_at": self.leases.expiry() if leased else None, "updated_at": time.time()}
        if error is not None:
            values["error"] = error
        with self.engine.begin() as conn:
            conn.execute(sa.update(db.shards).where(*self._of(shard), db.shards.c.shard == shard.index).values(**values))

    def _of(self, shard: Shard) -> tuple:
        c = db.shards.c
        return c.job_id == self.job_id, c.run == self.run, c.kind == shard.kind, c.table_name == shard.table


class InOrder:
    """A run's rows, written in shard order whichever replica is faster: a shard's rows stream to
    `write` while every shard before it is done, and wait in memory and a hidden spool of their
    own (for gateway.salvage) until then. `finished` moves the front on; `close` writes what
    still waits, in order, when the run stops short."""

    def __init__(self, folder: Path, stem: str, shards: Sequence[Shard], write: Callable[[list[dict[str, Any]]], None]):
        self.folder, self.stem, self.write = folder, stem, write
        self.order = sorted(shard.index for shard in shards)
        self.front = 0  # the position in `order` of the shard whose rows stream
        self.done: set[int] = set()
        self.held: dict[int, list[dict[str, Any]]] = {}
        self.spools: dict[int, Spool] = {}

    @property
    def waiting(self) -> int:
        return sum(len(rows) for rows in self.held.values())

    def add(self, shard: Shard, rows: list[dict[str, Any]]) -> None:
        if self.front < len(self.order) and self.order[self.front] == shard.index:
            self.write(rows)
            return
        self.held.setdefault(shard.index, []).extend(rows)
        if shard.index not in self.spools:
            self.spools[shard.index] = Spool(shard_spool(self.folder, self.stem, shard.index))
        self.spools[shard.index].write(rows)

    def finished(self, shard: Shard) -> None:
        self.done.add(shard.index)
        while self.front < len(self.order) and self.order[self.front] in self.done:
            self.front += 1
            if self.front < len(self.order):
                self._release(self.order[self.front])

    def close(self) -> None:
        for index in sorted(self.held):
            self._release(index)

    def _release(self, index: int) -> None:
        rows = self.held.pop(index, None)
        if rows:
            self.write(rows)
        spool = self.spools.pop(index, None)
        if spool is not None:
            spool.discard()


FIELDS = ("run", "kind", "table_name", "shard", "state", "first", "size", "done", "attempts", "replica", "error", "lease_owner", "lease_expires_at")


def job_shards(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    """GET /jobs/{id}/shards: every shard of every run of the job, in order."""
    c = db.shards.c
    query = sa.select(*(c[name] for name in FIELDS)).where(c.job_id == job_id).order_by(c.run, c.kind.desc(), c.table_name, c.shard)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    renamed = {"table_name": "table", "lease_owner": "gateway"}
    return [{renamed.get(name, name): row[name] for name in FIELDS} | {"table": row["table_name"] or None} for row in rows]


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
            book.started(shard)
            try:
                with log_context(shard=shard.index):
                    log.info("shard %d: %d %s on the %s (attempt %d)", shard.index, shard.lacking, shard.kind, replica.label, shard.attempts)
                    whole = await run(replica, shard)
            except ReplicaLost as err:
                if shard.attempts >= max_attempts:
                    book.ended(shard, "failed", "lost", str(err))
                    raise JobFailure(f"shard {shard.index} lost its replica on each of its {shard.attempts} attempts: {err}") from None
                log.warning("shard %s lost the %s after %d of its %d %s; it goes to another replica", shard.index, replica.label,
                            shard.done, shard.size, shard.kind)
                book.ended(shard, "queued", "lost", str(err))
                queue.appendleft(shard)
                alive.remove(replica)
                lost = err
                return
            except BaseException:  # a failure or cancellation elsewhere stops them all
                book.ended(shard, "interrupted" if shard.lacking else "completed", "stopped")
                raise
            book.ended(shard, "completed" if whole else "partial", "completed" if whole else "partial")

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
