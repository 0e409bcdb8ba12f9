"""Row files: data.json (an array), data.jsonl, data.csv and data.parquet, written incrementally as
rows arrive. Parquet columns are typed from the normalized JSON Schema so that pandas and pyarrow
read back integers, floats, booleans, dates and timestamps rather than strings."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.errors import JobFailure
from gateway.outputs.folders import Spool, complete_lines, json_lines, spooled

# Rows are buffered into row groups of this size; the service sends rows in small batches and a
# Parquet file of thousands of tiny row groups reads slowly.
PARQUET_ROW_GROUP = 10_000


class RowFormatError(JobFailure):
    """A generated value that does not fit its column's type, e.g. a date that does not parse."""


def _kind(spec: dict[str, Any]) -> str:
    """The one non-null type of a normalized property (sdg.schema allows [type, "null"])."""
    types = spec.get("type", "string")
    if isinstance(types, list):
        types = next((t for t in types if t != "null"), "null")
    return types


def arrow_type(spec: dict[str, Any]) -> pa.DataType:
    kind = _kind(spec)
    if kind == "integer":
        return pa.int64()
    if kind == "number":
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "object":
        return pa.struct([pa.field(name, arrow_type(sub)) for name, sub in spec.get("properties", {}).items()])
    if kind == "array":
        return pa.list_(arrow_type(spec.get("items", {"type": "string"})))
    if kind == "string" and spec.get("format") == "date":
        return pa.date32()
    if kind == "string" and spec.get("format") == "date-time":
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def arrow_schema(schema: dict[str, Any]) -> pa.Schema:
    """One nullable column per top-level property, in schema order. Columns are nullable because a
    schema may make a field optional or nullable, and a partial job may leave values out."""
    return pa.schema([pa.field(name, arrow_type(spec)) for name, spec in schema["properties"].items()])


def _parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    # A time without an offset is taken as UTC, the only zone a generated row can mean.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def arrow_value(value: Any, spec: dict[str, Any], field: str) -> Any:
    """A JSON value as pyarrow expects it for arrow_type(spec); a value the schema's format does not
    allow raises RowFormatError naming the field instead of being written as something else."""
    if value is None:
        return None
    kind = _kind(spec)
    try:
        if kind == "object":
            return {name: arrow_value(value.get(name), sub, f"{field}.{name}") for name, sub in spec.get("properties", {}).items()}
        if kind == "array":
            items = spec.get("items", {"type": "string"})
            return [arrow_value(item, items, f"{field}[]") for item in value]
        if kind == "number":
            return float(value)
        if kind == "string" and spec.get("format") == "date":
            return date.fromisoformat(value)
        if kind == "string" and spec.get("format") == "date-time":
            return _parse_datetime(value)
    except (TypeError, ValueError, AttributeError) as err:
        raise RowFormatError(f"{field}: value {value!r} does not fit its schema ({err})") from None
    return value


def json_value(value: Any, spec: dict[str, Any]) -> Any:
    """The value with every `number` written as a float (5 → 5.0), so that a number column whose
    values happen to be whole still loads as float64 from JSON and CSV, as it does from Parquet."""
    if value is None:
        return None
    kind = _kind(spec)
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "object" and isinstance(value, dict):
        props = spec.get("properties", {})
        return {k: json_value(v, props[k]) if k in props else v for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        items = spec.get("items", {})
        return [json_value(item, items) for item in value]
    return value


def csv_value(value: Any) -> Any:
    """Nested values become JSON text; booleans are written as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


class RowWriter:
    """Appends rows to `data.<format>` in a job folder. close() always leaves a complete, loadable
    file (a closed JSON array, a Parquet footer), also after a failure or cancellation. A process
    that dies without close() leaves what salvage_rows() can make loadable: JSON, JSON Lines and
    CSV are written a row at a time, and Parquet, whose footer only close() writes, is shadowed
    by a hidden JSON Lines spool until then."""

    def __init__(self, folder: Path, output_format: str, schema: dict[str, Any], kept: list[dict[str, Any]] | None = None):
        """`kept`: the rows the closed data file already holds, as read_rows() reads them, when a
        resumed job goes on writing it; new rows are added after them. Otherwise the file is
        started anew."""
        self.path = folder / f"data.{output_format}"
        self.output_format = output_format
        self.schema = schema
        self.columns = list(schema["properties"])
        self.rows_written = 0
        self._pending: list[dict[str, Any]] = []
        self._closed = False
        if output_format == "parquet":
            self._arrow_schema = arrow_schema(schema)
            # A Parquet file cannot be appended to: it is written anew, kept rows first. The spool
            # has them before the old file is truncated, so a process that dies here loses none.
            self._spool = Spool(spool_path(self.path), kept or [])
            self._parquet = pq.ParquetWriter(self.path, self._arrow_schema)
            self._buffer(kept or [])
            return
        if kept is not None:
            self._file: io.TextIOWrapper = self._reopen(len(kept))
            return
        self._file = self.path.open("w", encoding="utf-8", newline="")
        if output_format == "json":
            self._file.write("[")
        elif output_format == "csv":
            self._csv = self._csv_writer()
            self._csv.writeheader()
        self._file.flush()  # on disk before the first row: a job that dies first leaves its header

    def _csv_writer(self) -> csv.DictWriter:
        # Keys outside the schema (allowed only with additionalProperties) have no column.
        return csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")

    def _reopen(self, kept: int) -> io.TextIOWrapper:
        """Opens the closed JSON, JSON Lines or CSV file holding `kept` rows to append to it. A
        JSON array loses its closing bracket, which close() writes again after the new rows."""
        self.rows_written = kept
        if self.output_format == "json":
            data = self.path.read_bytes()
            end = data.rstrip().rfind(b"]")
            if end < 0:
                raise JobFailure(f"cannot resume: {self.path.name} is not a closed JSON array")
            with self.path.open("r+b") as file:
                file.truncate(len(data[:end].rstrip(b"\n")))
        file = self.path.open("a", encoding="utf-8", newline="")
        if self.output_format == "csv":
            self._file = file
            self._csv = self._csv_writer()
        return file

    @property
    def file_name(self) -> str:
        return self.path.name

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.output_format != "parquet":
            rows = [json_value(row, self.schema) for row in rows]
        if self.output_format == "json":
            for row in rows:
                self._file.write(("\n  " if self.rows_written == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
                self.rows_written += 1
        elif self.output_format == "jsonl":
            self._file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            self.rows_written += len(rows)
        elif self.output_format == "csv":
            self._csv.writerows({k: csv_value(v) for k, v in row.items()} for row in rows)
            self.rows_written += len(rows)
        else:
            self._spool.write(rows)
            self._buffer(rows)
            return
        self._file.flush()

    def _buffer(self, rows: list[dict[str, Any]]) -> None:
        """Parquet: rows wait for a full row group (their spool already has them)."""
        self._pending.extend(rows)
        self.rows_written += len(rows)
        if len(self._pending) >= PARQUET_ROW_GROUP:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        if not self._pending:
            return
        columns = {}
        for name, spec in self.schema["properties"].items():
            values = [arrow_value(row.get(name), spec, name) for row in self._pending]
            try:
                columns[name] = pa.array(values, type=self._arrow_schema.field(name).type)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise RowFormatError(f"{name}: values do not fit column type {self._arrow_schema.field(name).type} ({err})") from None
        self._parquet.write_table(pa.table(columns, schema=self._arrow_schema))
        self._pending.clear()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.output_format == "parquet":
            try:
                self._flush_parquet()
            finally:
                self._parquet.close()
                self._spool.discard()
            return
        if self.output_format == "json":
            self._file.write("\n]\n" if self.rows_written else "]\n")
        self._file.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(folder: Path, output_format: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a closed data file as their JSON values, as data.json holds them: what a
    resumed unified job formats its remaining prompts from. Parquet's dates and timestamps and
    CSV's text are turned back into the JSON the text service writes (dates "YYYY-MM-DD",
    timestamps "YYYY-MM-DDTHH:MM:SSZ"). One difference stays: Parquet gives a nested object every
    property of its schema, null where the row had none, so the object itself, formatted into a
    prompt whole, would read differently."""
    path = folder / f"data.{output_format}"
    if output_format == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    if output_format == "jsonl":
        return [json.loads(line) for line in json_lines(path.read_text(encoding="utf-8"))]
    properties = schema["properties"]
    if output_format == "parquet":
        return [{name: _from_arrow(row.get(name), properties[name]) for name in properties} for row in pq.read_table(path).to_pylist()]
    with path.open(encoding="utf-8", newline="") as file:
        return [{name: _from_csv(row.get(name, ""), properties[name]) for name in properties} for row in csv.DictReader(file)]


def _from_arrow(value: Any, spec: dict[str, Any]) -> Any:
    if value is None:
        return None
    kind = _kind(spec)
    if kind == "object":
        return {name: _from_arrow(value.get(name), sub) for name, sub in spec.get("properties", {}).items()}
    if kind == "array":
        return [_from_arrow(item, spec.get("items", {"type": "string"})) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _from_csv(text: str, spec: dict[str, Any]) -> Any:
    """A CSV cell as csv_value wrote it, back as its JSON value. An empty cell is null, except in
    a string column, where it reads as the empty string (both format into a prompt as nothing)."""
    kind = _kind(spec)
    if kind == "string":
        return text
    if text == "":
        return None
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        return text == "true"
    return json.loads(text)  # an object or an array, written as JSON text


def spool_path(data_file: Path) -> Path:
    """The hidden JSON Lines copy of a Parquet file's rows while it is being written."""
    return data_file.with_name(f".{data_file.name}.rows.jsonl")


def salvage_rows(folder: Path, output_format: str, schema: dict[str, Any]) -> int:
    """Makes the data file a job's dead process left behind loadable, keeping every whole row;
    returns how many rows it holds. JSON: the array is closed after the last whole row. JSON
    Lines and CSV: a last, unfinished line is dropped. Parquet: written anew from its spool."""
    path = folder / f"data.{output_format}"
    if output_format == "parquet":
        spool = spool_path(path)
        if not spool.exists():  # closed properly: the file is whole
            return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0
        rows = spooled(spool)
        spool.unlink()
        with RowWriter(folder, "parquet", schema) as writer:
            writer.write(rows)
        return len(rows)
    if not path.exists():
        return 0
    if output_format == "json":
        lines = path.read_text(encoding="utf-8").split("\n")
        rows = []
        for line in lines[1:]:  # lines[0] is the opening bracket
            try:
                rows.append(json.loads(line.strip().removesuffix(",")))
            except json.JSONDecodeError:
                break  # the closing bracket, or the row being written when the process died
        text = "[" + ",".join("\n  " + json.dumps(row, ensure_ascii=False) for row in rows) + ("\n]\n" if rows else "]\n")
        path.write_text(text, encoding="utf-8")
        return len(rows)
    # csv.DictWriter ends each record with \r\n; a newline inside a quoted value is a bare \n.
    kept = complete_lines(path, b"\r\n" if output_format == "csv" else b"\n")
    if output_format == "csv" and not kept:  # not even the header: start the file anew
        RowWriter(folder, "csv", schema).close()
        return 0
    path.write_bytes(kept)
    if output_format == "csv":
        return max(0, sum(1 for _ in csv.reader(io.StringIO(kept.decode("utf-8")))) - 1)  # less the header
    return kept.count(b"\n")
