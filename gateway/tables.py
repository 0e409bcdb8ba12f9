"""Related tables: several named schemas in one job, where a field may be
`x-sdg: {"foreign_key": "customers.id"}`. Parents are made first; each child row is given its
parent's key and shows the parent row in its prompt, so it fits the row it belongs to.

The gateway numbers `sequence` fields itself (one number per output position, whatever the
shards and retries), so keys are unique across calls and every foreign key resolves."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clients import ServiceEndpoint
from gateway.errors import InvalidRequest, JobFailure
from gateway.models import TableFields, TablesRequest
from gateway.outputs import RowWriter, write_json_atomic
from gateway.outputs.tables import read_rows
from gateway.plans import TextSpec, job_seed, numbered_by_gateway, top_properties, without_keys
from gateway.results import RowsSummary
from gateway.resume import MAX_TOP_UPS, added_rows, no_rows, row_key, rows_seed
from gateway.seeding import CarriedRows
from gateway.shards import InOrder, Shard, ShardBook, run_shards
from gateway.streams import generate_rows
from sdg.given import MAX_CONTEXT_CHARS
from sdg.limits import MAX_ROWS
from sdg.quality import table_report
from sdg.samplers import KEYWORD
from sdg.schema import SchemaError, read_schema

MAX_TABLES = 16
# Calls made again for rows a table still lacks (repeats dropped, rows the service gave up on).
# The per-parent counts a table may draw from.
COUNT_KINDS = ("fixed", "poisson", "uniform")


@dataclass(frozen=True)
class ForeignKey:
    field: str
    table: str
    column: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class PerParent:
    """How many child rows each parent row gets, drawn from the job seed per parent."""

    kind: str  # fixed, poisson or uniform
    options: dict[str, float]

    def count(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return int(self.options["count"])
        if self.kind == "uniform":
            return rng.randint(int(self.options["min"]), int(self.options["max"]))
        return _poisson(rng, self.options["mean"])

    @property
    def mean(self) -> float:
        if self.kind == "fixed":
            return self.options["count"]
        if self.kind == "uniform":
            return (self.options["min"] + self.options["max"]) / 2
        return self.options["mean"]

    def describe(self) -> dict[str, Any]:
        return {self.kind: dict(self.options)}


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method; the means a table asks for are small.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass(frozen=True)
class TableSpec:
    name: str
    text: TextSpec  # the schema sent to the text service: foreign keys and sequences are given instead
    schema: dict[str, Any]  # the table file's normalized schema
    num_rows: int | None  # a table without a parent
    foreign_keys: tuple[ForeignKey, ...] = ()
    per_parent: PerParent | None = None

    @property
    def keyed(self) -> frozenset[str]:
        """The fields its foreign keys give."""
        return frozenset(fk.field for fk in self.foreign_keys)

    @property
    def parent(self) -> ForeignKey | None:
        """The first foreign key: its row is shown in the prompt, and per_parent counts rows per it."""
        return self.foreign_keys[0] if self.foreign_keys else None


@dataclass(frozen=True)
class TablesSpec:
    tables: tuple[TableSpec, ...]  # parents before children
    seed: int
    expected_rows: int  # over all tables, a child's as its parents' times the mean count

    def table(self, name: str) -> TableSpec:
        return next(t for t in self.tables if t.name == name)

    @property
    def referenced(self) -> set[str]:
        return {fk.table for t in self.tables for fk in t.foreign_keys}


def _per_parent(value: Any, where: str) -> PerParent:
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"fixed": {"count": value}}
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in COUNT_KINDS:
        raise InvalidRequest(where, f"must be a count, or one of {', '.join(COUNT_KINDS)}, such as {{\"poisson\": {{\"mean\": 3}}}}")
    (kind, options), = value.items()
    needed = {"fixed": ("count",), "poisson": ("mean",), "uniform": ("min", "max")}[kind]
    if not isinstance(options, dict) or set(options) != set(needed):
        raise InvalidRequest(f"{where}.{kind}", f"takes {', '.join(needed)}")
    for key in needed:
        number = options[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 1000:
            raise InvalidRequest(f"{where}.{kind}.{key}", f"must be a number from 0 to 1000, got {number!r}")
        if kind != "poisson" and not float(number).is_integer():
            raise InvalidRequest(f"{where}.{kind}.{key}", f"must be a whole number, got {number!r}")
    if kind == "uniform" and options["min"] > options["max"]:
        raise InvalidRequest(f"{where}.uniform", f"min {options['min']} is above max {options['max']}")
    return PerParent(kind, {k: float(v) for k, v in options.items()})


def _order(edges: dict[str, list[str]]) -> list[str]:
    """Tables with their parents first; a cycle is an error naming it."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name):] + [name]
            raise InvalidRequest("tables", f"foreign keys form a cycle: {' -> '.join(cycle)}")
        state[name] = "open"
        for parent in edges[name]:
            visit(parent, path + [name])
        state[name] = "done"
        order.append(name)

    for name in edges:
        visit(name, [])
    return order


def tables_spec(request: TablesRequest) -> TablesSpec:
    """The plan of a tables job. Raises InvalidRequest naming the table and field."""
    seed = job_seed(request.seed)
    if not 1 <= len(request.tables) <= MAX_TABLES:
        raise InvalidRequest("tables", f"give 1 to {MAX_TABLES} tables, got {len(request.tables)}")
    raw: dict[str, dict[str, Any]] = {}
    for name, table in request.tables.items():
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise InvalidRequest(f"tables.{name}", "a table's name is its file's name: letters, digits, - and _ only")
        properties = top_properties(table.schema_)
        if properties is None:
            raise InvalidRequest(f"tables.{name}.schema", "must be an object of fields")
        raw[name] = properties
    keys: dict[str, list[ForeignKey]] = {}
    for name, properties in raw.items():
        keys[name] = []
        for field_name, prop in properties.items():
            spec = prop.get(KEYWORD) if isinstance(prop, dict) else None
            if not isinstance(spec, dict) or "foreign_key" not in spec:
                continue
            where = f"tables.{name}.schema.{field_name}.{KEYWORD}.foreign_key"
            if len(spec) != 1:
                raise InvalidRequest(where, "a foreign key is given by its parent: it takes no sampler beside it")
            target = spec["foreign_key"]
            table, _, column = target.partition(".") if isinstance(target, str) else ("", "", "")
            if table not in raw or column not in raw[table]:
                raise InvalidRequest(where, f"{target!r} names no field of another table (give table.field)")
            if table == name:
                raise InvalidRequest(where, "a table cannot reference itself")
            if not _is_key(raw[table][column]):
                raise InvalidRequest(where, f"{target} must be unique to be referenced: give it a sequence or uuid sampler, or unique")
            keys[name].append(ForeignKey(field_name, table, column))
    order = _order({name: [fk.table for fk in keys[name]] for name in raw})
    tables = []
    for name in order:
        tables.append(_table_spec(name, request.tables[name], raw[name], keys[name], request, seed))
    return TablesSpec(tuple(tables), seed, _expected_rows(tables))


def _is_key(prop: Any) -> bool:
    spec = prop.get(KEYWORD) if isinstance(prop, dict) else None
    return isinstance(spec, dict) and ("sequence" in spec or "uuid" in spec or spec.get("unique") is True)


def _table_spec(name: str, table: TableFields, properties: dict[str, Any], foreign_keys: list[ForeignKey],
                request: TablesRequest, seed: int) -> TableSpec:
    where = f"tables.{name}"
    sent = copy.deepcopy(table.schema_)
    sent_properties = top_properties(sent)
    for field_name, prop in properties.items():
        spec = prop.get(KEYWORD) if isinstance(prop, dict) else None
        if isinstance(spec, dict) and "foreign_key" in spec:
            sent_properties[field_name] = without_keys(prop, ("foreign_key", "unique"))
    try:
        read = read_schema(sent)
    except SchemaError as err:
        raise InvalidRequest(f"{where}.schema{'.' + err.field if err.field else ''}", err.reason) from None
    if foreign_keys and table.num_samples is not None and table.per_parent is not None:
        raise InvalidRequest(f"{where}.num_samples", "give num_samples or per_parent, not both")
    if not foreign_keys and table.per_parent is not None:
        raise InvalidRequest(f"{where}.per_parent", "the table has no foreign key, so no parent to count rows per")
    per_parent = None
    if foreign_keys and table.num_samples is None:
        per_parent = _per_parent(table.per_parent if table.per_parent is not None else 1, f"{where}.per_parent")
    elif table.num_samples is None:
        raise InvalidRequest(f"{where}.num_samples", "a table without a foreign key needs num_samples")
    sent, numbered = numbered_by_gateway(read)
    text = TextSpec(
        read=read,
        num_rows=table.num_samples or 1,
        seed=seed,
        temperature=request.temperature,
        instructions="\n".join(filter(None, [request.instructions, table.instructions])),
        keep_duplicates=request.keep_duplicates,
        optional_rate=request.optional_rate,
        sent=sent,
        numbered=numbered,
    )
    return TableSpec(name, text, read.schema, table.num_samples, tuple(foreign_keys), per_parent)


def _expected_rows(tables: list[TableSpec]) -> int:
    """The rows the tables are expected to hold; each must fit a call's limit."""
    expected: dict[str, float] = {}
    for table in tables:
        rows = table.num_rows if table.per_parent is None else expected[table.parent.table] * table.per_parent.mean
        if rows > MAX_ROWS:
            raise InvalidRequest(f"tables.{table.name}", f"would have about {rows:,.0f} rows, past the {MAX_ROWS:,} a job can make")
        expected[table.name] = rows
    return math.ceil(sum(expected.values()))


def _rng(seed: int, *parts: Any) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class PlannedRows:
    """A table's rows before they are written: what each is given, and what its prompt shows."""

    given: list[dict[str, Any]]
    context: list[dict[str, Any]]

    def missing(self, written: list[dict[str, Any]], schema: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The planned rows no written row holds yet (a row holds its given values exactly)."""
        if not self.given or not self.given[0]:  # nothing given: any rows will do
            return self.given[len(written):], self.context[len(written):]
        positions = CarriedRows(self.given, schema)
        for row in written:
            positions.fills(row)
        lacking = positions.lacking_positions()
        return [self.given[i] for i in lacking], [self.context[i] for i in lacking]


def _same(value: Any) -> Any:
    """A value as files read it back (a CSV's text, a float column's 5.0)."""
    return str(value)


def plan_rows(spec: TablesSpec, table: TableSpec, made: dict[str, list[dict[str, Any]]]) -> PlannedRows:
    """Each row of `table`, given its sequence numbers and foreign keys, from the job seed and the
    rows of the tables it references (`made`)."""
    parent = table.parent
    contexts: list[dict[str, Any]] = []
    keys: list[dict[str, Any]] = []
    if parent is None:
        keys = [{} for _ in range(table.num_rows)]
        contexts = [{} for _ in range(table.num_rows)]
    elif table.per_parent is not None:
        for i, row in enumerate(made[parent.table]):
            count = table.per_parent.count(_rng(spec.seed, "per_parent", table.name, i))
            keys += [{parent.field: row[parent.column]} for _ in range(count)]
            contexts += [_shown(parent.table, row)] * count
    else:
        rng = _rng(spec.seed, "parents", table.name)
        rows = made[parent.table]
        for _ in range(table.num_rows):
            row = rows[rng.randrange(len(rows))]
            keys.append({parent.field: row[parent.column]})
            contexts.append(_shown(parent.table, row))
    for fk in table.foreign_keys[1:]:  # other references pick a row of their table at random
        rng, rows = _rng(spec.seed, "references", table.name, fk.field), made[fk.table]
        for given in keys:
            given[fk.field] = rows[rng.randrange(len(rows))][fk.column]
    for i, given in enumerate(keys):
        given.update(table.text.numbers(i))
    return PlannedRows(keys, contexts)


def _shown(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A parent row as its children's prompts show it, its fields cut where they would pass the
    text service's limit for a row's context."""
    shown: dict[str, Any] = {}
    size = len(table) + 8
    for name, value in row.items():
        size += len(json.dumps({name: value}, ensure_ascii=False))
        if size > MAX_CONTEXT_CHARS:
            break
        shown[name] = value
    return {table: shown}


def integrity(spec: TablesSpec, made: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each foreign key's resolved share, and the per-parent counts observed."""
    out: dict[str, Any] = {}
    for table in spec.tables:
        for fk in table.foreign_keys:
            keys = {_same(row.get(fk.column)) for row in made.get(fk.table, [])}
            rows = made.get(table.name, [])
            resolved = sum(_same(row.get(fk.field)) in keys for row in rows)
            entry: dict[str, Any] = {"references": fk.label, "rows": len(rows), "resolved": resolved,
                                     "share": round(resolved / len(rows), 6) if rows else 1.0}
            if fk is table.parent and table.per_parent is not None:
                counts = Counter(_same(row.get(fk.field)) for row in rows)
                per = [counts.get(k, 0) for k in keys]
                entry["per_parent"] = {"requested": table.per_parent.describe(), "parents": len(per),
                                       "mean": round(sum(per) / len(per), 4) if per else 0.0,
                                       "min": min(per, default=0), "max": max(per, default=0)}
            out[f"{table.name}.{fk.field}"] = entry
    return out


# -- running a tables job ---------------------------------------------------------------------


@dataclass(frozen=True)
class TablesRun:
    """What a tables job's run needs from the job around it."""

    folder: Path
    output_format: str
    replicas: list[ServiceEndpoint]  # the text replicas shards go to, the job's own first
    shard_rows: int
    timeout_s: float
    resume: int  # how many times the job was resumed: its calls' seeds differ each time
    resuming: bool  # the folder holds files of an earlier run
    progress: Callable[[int, int, str], None]  # rows written, rows planned so far, message
    book: ShardBook  # where its shards' states are kept
    max_attempts: int  # a shard's, before the job fails


class TablesPhase:
    """Makes a tables job's tables in order into `<table>.<format>` files. A resumed run keeps
    every row written and gives the rest again, so each table ends with exactly its planned rows."""

    def __init__(self, spec: TablesSpec, run: TablesRun):
        self.spec = spec
        self.run_with = run
        self.made: dict[str, list[dict[str, Any]]] = {}
        self.planned: dict[str, int] = {}
        self.summaries: dict[str, RowsSummary] = {}
        self.writer: RowWriter | None = None
        self.shards: list[Shard] = []

    @property
    def rows_written(self) -> int:
        return sum(len(rows) for rows in self.made.values())

    async def run(self) -> None:
        run = self.run_with
        write_json_atomic(run.folder / "schema.json", {t.name: t.schema for t in self.spec.tables})
        for table in self.spec.tables:
            await self._make(table)

    def _kept(self, table: TableSpec) -> list[dict[str, Any]]:
        run = self.run_with
        if not run.resuming or not (run.folder / f"{table.name}.{run.output_format}").exists():
            return []
        try:
            return read_rows(run.folder, run.output_format, table.schema, stem=table.name)
        except (OSError, ValueError, KeyError) as err:
            raise JobFailure(f"cannot resume: {table.name}.{run.output_format} cannot be read: {err}") from None

    async def _make(self, table: TableSpec) -> None:
        run = self.run_with
        kept = await asyncio.to_thread(self._kept, table)
        planned = plan_rows(self.spec, table, self.made)
        self.planned[table.name] = len(planned.given)
        rows = self.made[table.name] = list(kept)
        summary = no_rows(dataclasses.replace(table.text, num_rows=len(planned.given)))
        seen = None if table.text.keep_duplicates else {row_key(row, table.schema) for row in kept}
        self.writer = RowWriter(run.folder, run.output_format, table.schema, kept=kept if run.resuming and kept else None, stem=table.name)

        def say() -> None:
            run.progress(self.rows_written, sum(self.planned.values()), f"table {table.name}: {len(rows)}/{len(planned.given)} rows")

        def take(received: list[dict[str, Any]], into: Callable[[list[dict[str, Any]]], None]) -> tuple[list[dict[str, Any]], int]:
            fresh = received
            if seen is not None:
                fresh = []
                for row in received:
                    key = row_key(row, table.schema)
                    if key not in seen:
                        seen.add(key)
                        fresh.append(row)
            into(fresh)
            rows.extend(fresh)
            say()
            return fresh, len(received) - len(fresh)

        async def call(replica: ServiceEndpoint, shard: Shard, seed: int) -> RowsSummary:
            nonlocal summary
            positions = shard.open_positions(table.schema)
            given, context = [shard.given[i] for i in positions], [shard.context[i] for i in positions]
            spec = dataclasses.replace(table.text, num_rows=len(given), seed=seed, given_rows=tuple(given) if any(given) else (),
                                       given_context=tuple(context) if any(context) else ())
            added = repeats = 0

            def on_rows(received: list[dict[str, Any]]) -> None:
                nonlocal added, repeats
                wrote, repeated = take(received, lambda written: order.add(shard, written))
                added, repeats = added + len(wrote), repeats + repeated
                shard.took(wrote)

            result = await generate_rows(replica, spec, run.timeout_s, lambda done, total: None, on_rows, lambda waited: say())
            summary = added_rows(summary, result, added, repeats)
            return result

        say()
        for top_up in range(MAX_TOP_UPS + 1):
            given, context = planned.missing(rows, table.schema)
            if not given:
                break
            size, first = run.shard_rows, len(self.shards_of(table.name))
            shards = [Shard(first + i, len(given[a:a + size]), tuple(given[a:a + size]), table.name, tuple(context[a:a + size]), first=a)
                      for i, a in enumerate(range(0, len(given), size))]
            self.shards.extend(shards)
            progressed = len(rows)

            async def run_shard(replica: ServiceEndpoint, shard: Shard) -> bool:
                seed = rows_seed(self.spec.seed, run.resume, top_up, shard=shard.index - first + 1, attempt=shard.attempts)
                whole = not (await call(replica, shard, seed)).partial
                order.finished(shard)
                return whole

            order = InOrder(run.folder, table.name, shards, self.writer.write)
            try:
                await run_shards(shards, run.replicas[: max(1, len(shards))], run_shard, run.book, run.max_attempts)
            finally:
                order.close()
            if len(rows) == progressed:
                break  # the service made none of what is missing: more of the same would not
        self.writer.close()
        self.writer = None
        self.summaries[table.name] = summary

    def shards_of(self, table: str) -> list[Shard]:
        return [shard for shard in self.shards if shard.table == table]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def shortfall(self) -> str | None:
        short = [f"{self.planned[t.name] - len(self.made.get(t.name, []))} of {self.planned[t.name]} {t.name} rows missing"
                 for t in self.spec.tables if t.name in self.planned and len(self.made.get(t.name, [])) < self.planned[t.name]]
        unmade = [t.name for t in self.spec.tables if t.name not in self.planned]
        if unmade:
            short.append(f"tables not made: {', '.join(unmade)}")
        return "; ".join(short) or None

    def counts(self) -> dict[str, int]:
        return {"requested": sum(self.planned.values()), "generated": self.rows_written,
                "invalid_regenerated": sum(s.rows_invalid for s in self.summaries.values()),
                "duplicates_removed": sum(s.duplicates_removed for s in self.summaries.values())}

    def quality(self) -> dict[str, Any]:
        """quality.json: a report per table begun, over the rows it holds."""
        return {"tables": {t.name: table_report(self.made[t.name], t.text.read, t.keyed) for t in self.spec.tables if t.name in self.made}}

    def manifest(self) -> dict[str, Any]:
        tables = {}
        for table in self.spec.tables:
            entry: dict[str, Any] = {"file": f"{table.name}.{self.run_with.output_format}",
                                     "rows": len(self.made.get(table.name, [])), "planned": self.planned.get(table.name)}
            if table.foreign_keys:
                entry["foreign_keys"] = {fk.field: fk.label for fk in table.foreign_keys}
            summary = self.summaries.get(table.name)
            if summary is not None:
                entry["rows_rejected_by"] = summary.rejected_by
                entry["distinct_ratio"] = summary.distinct_ratio
            tables[table.name] = entry
        checks = integrity(self.spec, self.made)
        return {"tables": tables, "referential_integrity": {
            "share": min((c["share"] for c in checks.values()), default=1.0), "foreign_keys": checks}}
