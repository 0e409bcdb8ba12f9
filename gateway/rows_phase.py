"""RowsPhase: a text or unified job's rows into its data file (a unified job's wait in memory, and
a spool, until its images are made), from one text replica, or in shards over several
(gateway/shards.py) when it lacks more than SDG_SHARD_ROWS. It owns the writer and the rows'
account: the service's summary, the quality tally, the unique ledger and what seed data gave.

A resumed run starts from the rows it kept (RowsRun.kept, read before the run), drops new rows that
repeat them, and tops up what it dropped (gateway/resume.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clients import ServiceEndpoint
from gateway.errors import JobFailure
from gateway.manifest import Manifest, Tokens
from gateway.models import JobStats
from gateway.outputs import RowWriter, Spool
from gateway.outputs.folders import opened_off_loop
from gateway.plans import TextSpec
from gateway.results import RowsSummary
from gateway.resume import MAX_TOP_UPS, added_rows, no_rows, row_key, rows_seed
from gateway.seeding import CarriedRows, SeedRows
from gateway.shards import InOrder, Shard, ShardBook, run_shards
from gateway.streams import generate_rows
from sdg.design import UniqueLedger
from sdg.quality import QualityTally

log = logging.getLogger(__name__)

UNIFIED_ROWS_SPOOL = ".rows.jsonl"  # a unified job's rows until its data file is written
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class RowsRun:
    """What a rows phase needs from the job around it."""

    folder: Path
    output_format: str
    unified: bool  # its rows wait for their images before the data file is written
    kept: Rows | None  # a resumed job's rows, read back from its data file; None: it has no file
    before: Manifest | None  # a resumed job's last run's manifest; None for a first run
    resume: int  # how many times the job was resumed: its calls' seeds differ each time
    replicas: list[ServiceEndpoint]  # the job's own first; none when it lacks no rows
    timeout_s: float
    shard_rows: int
    max_attempts: int  # a shard's, before the job fails
    book: ShardBook  # where its shards' states are kept and counted
    seed_rows: Callable[[TextSpec], SeedRows]  # the job's seed rows, drawn as at its submission
    stats: JobStats
    progress: Callable[[float, str], None]  # the share of the job's rows done, and what it does
    waiting: Callable[[float], str]  # what it says while its call waits behind others, for so many seconds


class RowsPhase:
    def __init__(self, spec: TextSpec, run: RowsRun):
        self.spec, self.run_with = spec, run
        self.writer: RowWriter | None = None
        self.rows: Rows = []  # a unified job's, until its data file is written
        self.spool: Spool | None = None  # ...and a copy on disk until then, for gateway.salvage
        self.summary: RowsSummary | None = None
        self.tally: QualityTally | None = None  # counted for quality.json
        self.ledger: UniqueLedger | None = None  # the unique fields' values, across calls
        self.seed_account: dict[str, Any] | None = None  # what seed_data carried or showed
        self.shards: list[Shard] = []
        self.in_order: InOrder | None = None  # while rows are sharded: their way into the output, in shard order

    @property
    def written(self) -> int:
        return self.writer.rows_written if self.writer is not None else len(self.rows)

    @property
    def received(self) -> int:
        return self.written + (self.in_order.waiting if self.in_order is not None else 0)

    def write(self, rows: Rows) -> None:
        if self.writer is not None:
            self.writer.write(rows)
        else:
            self.rows.extend(rows)
            self.spool.write(rows)

    async def open(self) -> None:
        """Opens the output, kept rows first."""
        run, kept = self.run_with, self.run_with.kept or []
        if run.unified:
            self.rows = list(kept)
            await opened_off_loop(lambda: setattr(self, "spool", Spool(run.folder / UNIFIED_ROWS_SPOOL, kept)))
        else:
            await opened_off_loop(lambda: setattr(self, "writer", RowWriter(run.folder, run.output_format, self.spec.schema, kept=run.kept)))
        run.stats.rows_done = len(kept)
        self.tally = QualityTally(self.spec.read, self.spec.carried)
        await asyncio.to_thread(self.tally.add, kept)
        if run.before is not None:
            self.summary = self._rows_before()

    async def make(self) -> None:
        """Streams the rows the job lacks into the output."""
        spec, run, stats = self.spec, self.run_with, self.run_with.stats
        kept = run.kept or []
        resuming = run.before is not None
        if not run.replicas:
            self.seed_account = run.before.seed_data if run.before else None
            return
        positions: Sequence[dict[str, Any]] = ()
        if spec.seed_data is not None:
            seeded = await asyncio.to_thread(run.seed_rows, spec)
            self.seed_account = seeded.manifest()
            spec = dataclasses.replace(spec, example_rows=seeded.examples)
            positions = seeded.carried
        carried = await asyncio.to_thread(_carried, positions, spec, kept) if positions or spec.numbered else None

        def given(call: TextSpec) -> TextSpec:
            """The call carrying the first of the seed rows still lacking, as many as it covers."""
            if carried is None:
                return call
            rows = carried.lacking()[: call.num_rows]
            return dataclasses.replace(call, num_rows=len(rows), given_rows=tuple(rows))

        sharded = len(run.replicas) > 1 and spec.num_rows - len(kept) > run.shard_rows
        # A resumed or sharded job drops any row that repeats one it has; within one call, the
        # service itself drops repeats.
        seen = None
        if (resuming or sharded) and not spec.keep_duplicates:
            seen = await asyncio.to_thread(lambda: {row_key(row, spec.schema) for row in kept})  # seconds for a million rows
        # A unique field's value written by one call is turned away from the next (each call
        # keeps its own rows unique), and the top-ups below replace the row.
        ledger = self.ledger = UniqueLedger(spec.read.design) if spec.read.design and spec.read.design.unique else None
        if ledger is not None:
            for row in kept:
                ledger.admit(row)
            before = run.before.unique_collisions() if run.before else {}
            ledger.collisions.update({name: count for name, count in before.items() if name in spec.read.design.unique})

        def on_progress(done: int, total: int) -> None:
            if resuming or sharded:  # the service counts this call's rows
                done, total = self.received, spec.num_rows
            stats.rows_done, stats.rows_total = done, total or spec.num_rows
            run.progress(done / max(stats.rows_total, 1), f"generating rows: {done}/{stats.rows_total}")

        def on_waiting(waited_s: float) -> None:
            run.progress(self.received / spec.num_rows, run.waiting(waited_s))

        def take(rows: Rows, into: Callable[[Rows], None] | None = None) -> tuple[Rows, int]:
            """Writes the rows the job lacks (`into` a shard's place in the output, or the output);
            returns those it wrote and how many repeated rows it has."""
            repeats = 0
            if seen is not None or carried is not None:
                fresh = []
                for row in rows:
                    key = row_key(row, spec.schema) if seen is not None else None
                    if key is not None and key in seen:
                        continue
                    if carried is not None and not carried.fills(row):
                        raise JobFailure(f"the text service sent a row that holds none of the given values it was sent: {json.dumps(row)[:200]}")
                    if key is not None:
                        seen.add(key)
                    fresh.append(row)
                repeats, rows = len(rows) - len(fresh), fresh
            rows = rows[: spec.num_rows - self.received]
            if ledger is not None:
                rows = [row for row in rows if ledger.admit(row)]
            (into or self.write)(rows)
            self.tally.add(rows)
            on_progress(max(stats.rows_done, self.received), stats.rows_total)
            return rows, repeats

        run.progress(len(kept) / spec.num_rows, f"generating rows: {len(kept)}/{spec.num_rows}")

        async def call_for(on: ServiceEndpoint, call: TextSpec, shard: Shard | None = None) -> tuple[RowsSummary, int]:
            """One call's rows, added to the job's account (calls on several replicas interleave)
            and to its shard's; returns its summary and the rows it added."""
            added = repeats = 0

            def on_rows(rows: Rows) -> None:
                nonlocal added, repeats
                wrote, repeated = take(rows, None if shard is None else lambda written: self.in_order.add(shard, written))
                added, repeats = added + len(wrote), repeats + repeated
                if shard is not None:
                    shard.took(wrote)

            summary = await generate_rows(on, call, run.timeout_s, on_progress, on_rows, on_waiting)
            self.summary = added_rows(self.summary, summary, added, repeats)
            return summary, added

        endpoint = run.replicas[0]
        if not resuming and not sharded:
            self.summary = await generate_rows(endpoint, given(spec), run.timeout_s, on_progress, take, on_waiting)
            return
        self.summary = self.summary or no_rows(spec)
        if sharded:
            await self._sharded(spec, call_for, carried.lacking() if carried else None)
        # Rows dropped as repeats are sampled again, with seeds of their own.
        for top_up in range(MAX_TOP_UPS + 1):
            lacking = spec.num_rows - self.received
            if lacking <= 0:
                break
            call = given(dataclasses.replace(spec, num_rows=lacking, seed=rows_seed(spec.seed, run.resume, top_up)))
            summary, added = await call_for(endpoint, call)
            if summary.partial or not added:
                break

    async def _sharded(self, spec: TextSpec, call_for, carried: Rows | None) -> None:
        """The rows the job lacks, in shards of SDG_SHARD_ROWS over the replicas, each with its
        slice of the `carried` positions, written in shard order. A shard whose replica is lost
        goes to another; with none left, the job fails over with the rows it has
        (gateway/failover.py)."""
        run = self.run_with
        lacking, size = spec.num_rows - self.received, run.shard_rows
        shards = self.shards = [Shard(index, min(size, lacking - start), tuple(carried[start : start + size]) if carried is not None else (), first=start)
                                for index, start in enumerate(range(0, lacking, size))]

        async def run_shard(replica: ServiceEndpoint, shard: Shard) -> bool:
            positions = shard.open_positions(spec.schema)
            call = dataclasses.replace(spec, num_rows=len(positions), seed=rows_seed(spec.seed, run.resume, shard=shard.index + 1, attempt=shard.attempts))
            if shard.given:
                call = dataclasses.replace(call, given_rows=tuple(shard.given[i] for i in positions))
            summary, _ = await call_for(replica, call, shard)
            self.in_order.finished(shard)
            return not summary.partial

        self.in_order = InOrder(run.folder, "data", shards, self.write)
        try:
            await run_shards(shards, run.replicas, run_shard, run.book, run.max_attempts)
        finally:
            self.in_order.close()
            self.in_order = None

    def close(self, paired: Callable[[Rows], Rows], data_schema: dict[str, Any]) -> None:
        """Closes the data file; a unified job's is written now, its rows `paired` with their images."""
        run = self.run_with
        if not run.unified:
            if self.writer is not None:
                self.writer.close()
            return
        if self.writer is not None:  # closed already
            return
        with RowWriter(run.folder, run.output_format, data_schema) as writer:
            writer.write(paired(self.rows))
            self.writer = writer
        if self.spool is not None:
            self.spool.discard()

    def _rows_before(self) -> RowsSummary:
        """The account of a resumed job's kept rows that its last run's manifest gave."""
        spec, before = self.spec, self.run_with.before
        assert before is not None
        counts, tokens = before.counts, before.tokens or Tokens()
        kept = len(self.run_with.kept or [])
        return RowsSummary(
            rows_generated=kept,
            rows_requested=spec.num_rows,
            rows_invalid=counts.invalid_regenerated or 0,
            duplicates_removed=counts.duplicates_removed or 0,
            distinct_ratio=1.0 if before.distinct_ratio is None else before.distinct_ratio,
            seed=spec.seed,
            elapsed_s=before.timings.get("text_service_s", 0.0),
            tokens_generated=tokens.generated,
            tokens_forced=tokens.forced,
            partial=kept < spec.num_rows,
            reason="",
        )


def _carried(seeded: Sequence[dict[str, Any]], spec: TextSpec, kept: Rows) -> CarriedRows:
    """The given values of every output position (seed rows' and numbers), less those a kept row fills."""
    positions = [{**(seeded[i] if seeded else {}), **spec.numbers(i)} for i in range(spec.num_rows)] if spec.numbered else seeded
    carried = CarriedRows(positions, spec.schema)
    for row in kept:
        carried.fills(row)
    return carried
