"""Row files: data.json (an array), data.jsonl, data.csv and data.parquet, written incrementally as
rows arrive, and read back when a job resumes. Every writer reads the normalized JSON Schema
(sdg.schema.normalize_schema): `$ref`s into the root's `$defs`, `anyOf` unions, enums, free-form
`{}`, optional properties and objects with extra keys. Parquet columns are typed from it so that
pandas and pyarrow read back integers, floats, booleans, dates, timestamps, structs and lists;
a value with no one Arrow type (a union, a free-form value, an object with extra keys) is stored
as its JSON text."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.errors import JobFailure
from gateway.outputs.folders import Spool, complete_lines, json_lines, spooled, waiting_rows

# Rows are buffered into row groups of this size; the service sends rows in small batches and a
# Parquet file of thousands of tiny row groups reads slowly.
PARQUET_ROW_GROUP = 10_000

# The csv and parquet column that holds a row's extra keys (those outside the root's properties,
# which a root whose additionalProperties is a schema allows) as one JSON object text.
EXTRA_COLUMN = "__extra__"

DEFS_PREFIX = "#/$defs/"


class RowFormatError(JobFailure):
    """A generated value that does not fit its column's type, e.g. a date that does not parse."""


# --- The normalized schema's nodes ---------------------------------------------------------------


def resolve_ref(schema: dict[str, Any], node: Any) -> Any:
    """`node`, or, when it is `{"$ref": "#/$defs/<Name>"}`, the entry of the root `schema`'s `$defs`
    it names, followed on while that entry is a `$ref` too."""
    followed: list[str] = []
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        name = _def_name(ref)
        if name not in schema.get("$defs", {}):
            raise JobFailure(f"schema $ref {ref!r} names no entry of the root's $defs")
        if name in followed:
            raise JobFailure(f"schema $ref {ref!r} leads back to itself ({' -> '.join(followed)})")
        followed.append(name)
        node = schema["$defs"][name]
    return node


def _def_name(ref: Any) -> str | None:
    """The $defs entry a `#/$defs/<Name>` reference names (a JSON pointer token, unescaped)."""
    if not isinstance(ref, str) or not ref.startswith(DEFS_PREFIX):
        return None
    return ref[len(DEFS_PREFIX):].replace("~1", "/").replace("~0", "~")


def _types(node: dict[str, Any]) -> list[str]:
    """The node's JSON types other than null; [] for a free-form node or an anyOf."""
    types = node.get("type", [])
    return [t for t in ([types] if isinstance(types, str) else types) if t != "null"]


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") in ("null", ["null"])


def extra_keys_node(node: dict[str, Any]) -> Any:
    """The schema an object's extra keys follow (its additionalProperties); None when it allows none."""
    extra = node.get("additionalProperties", False)
    if extra is False:
        return None
    return {} if extra is True else extra


def nullable_base(schema: dict[str, Any], node: Any) -> dict[str, Any]:
    """The node a non-null value of `node` follows: refs resolved and `{"anyOf": [X, {"type":
    "null"}]}` taken as X. A `"type": [T, "null"]` node is its own base (_types leaves out null)."""
    node = resolve_ref(schema, node)
    while isinstance(node, dict) and "anyOf" in node:
        others = [branch for branch in (resolve_ref(schema, b) for b in node["anyOf"]) if not _is_null(branch)]
        if len(others) != 1:
            break  # a union of two or more
        node = others[0]
    return {} if node is True else node


# --- JSON values as the files hold them ----------------------------------------------------------


def json_value(value: Any, schema: dict[str, Any], node: Any = None) -> Any:
    """`value` (a row of the root `schema`, or a value of `node` when given) with every `number`
    written as a float (5 → 5.0), so that a number column whose values happen to be whole still
    loads as float64 from JSON and CSV, as it does from Parquet. Values of unions and free-form
    nodes stay as generated."""
    return _json_value(value, schema, schema if node is None else node, drop_null_optional=False)


def comparable_row(row: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """json_value(row) less its optional properties that are null, at every level: CSV and Parquet
    read those back as absent, so a row and the copy read_rows gives of it compare equal."""
    return _json_value(row, schema, schema, drop_null_optional=True)


def _json_value(value: Any, schema: dict[str, Any], node: Any, drop_null_optional: bool) -> Any:
    if value is None:
        return None
    node = nullable_base(schema, node)
    types = _types(node)
    if "anyOf" in node or len(types) != 1:
        return value  # a union or a free-form value: as generated
    if types[0] == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if types[0] == "object" and isinstance(value, dict):
        return _json_object(value, schema, node, drop_null_optional)
    if types[0] == "array" and isinstance(value, list):
        return [_json_value(item, schema, sub, drop_null_optional) for item, sub in zip(value, _item_nodes(node, len(value)))]
    return value


def _json_object(value: dict[str, Any], schema: dict[str, Any], node: dict[str, Any], drop_null_optional: bool) -> dict[str, Any]:
    properties, required, extra = node.get("properties", {}), node.get("required", []), extra_keys_node(node)
    out = {}
    for key, item in value.items():
        if drop_null_optional and item is None and key in properties and key not in required:
            continue
        sub = properties.get(key, extra)
        out[key] = item if sub is None else _json_value(item, schema, sub, drop_null_optional)
    return out


def _item_nodes(node: dict[str, Any], count: int) -> list[Any]:
    """The node each of an array's first `count` items follows: prefixItems, then items."""
    prefix = node.get("prefixItems", [])
    return [prefix[i] if i < len(prefix) else node.get("items", {}) for i in range(count)]


# --- Columns of data.csv and data.parquet --------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """How one schema node's values are stored in a Parquet column, and in a CSV cell."""

    # "json" (JSON text), "struct", "list", "date", "datetime", "integer", "number", "boolean", "string" or "null"
    kind: str
    fields: dict[str, Column] = dataclasses.field(default_factory=dict)  # a struct's, in schema order
    optional: frozenset[str] = frozenset()  # a struct's fields that a value may leave out
    item: Column | None = None  # a list's

    @property
    def csv_as_json(self) -> bool:
        """A CSV cell holds this column's values as JSON text (Parquet: only kind "json")."""
        return self.kind in ("json", "struct", "list")


JSON_TEXT = Column("json")


def column_of(schema: dict[str, Any], node: Any) -> Column:
    """The column a value of `node` (a part of the root `schema`) is stored in."""
    node = nullable_base(schema, node)
    kind = _stored_as(node)
    if kind == "struct":
        required = node.get("required", [])
        fields = {name: column_of(schema, sub) for name, sub in node["properties"].items()}
        return Column(kind, fields=fields, optional=frozenset(name for name in fields if name not in required))
    if kind == "list":
        return Column(kind, item=column_of(schema, node.get("items", {})))
    return Column(kind)


def _stored_as(node: dict[str, Any]) -> str:
    """The column kind of a resolved node that is not "X or null"."""
    if _is_null(node):
        return "null"
    types = _types(node)
    if "anyOf" in node or len(types) != 1:
        return "json"  # a union, a free-form value, or an enum mixing types
    kind = types[0]
    if kind in ("object", "array") and "enum" in node:
        return "json"
    if kind == "object":
        # Extra keys have no fixed fields; an empty struct cannot be written to Parquet.
        return "json" if extra_keys_node(node) is not None or not node.get("properties") else "struct"
    if kind == "array":
        return "json" if "prefixItems" in node else "list"
    if kind == "string":
        return {"date": "date", "date-time": "datetime"}.get(node.get("format"), "string")
    return kind


ARROW_TYPES = {
    "json": pa.string(),
    "string": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "null": pa.string(),  # a column of nulls, typed so that every loader reads it
}


def arrow_type(column: Column) -> pa.DataType:
    if column.kind == "struct":
        return pa.struct([pa.field(name, arrow_type(sub)) for name, sub in column.fields.items()])
    if column.kind == "list":
        return pa.list_(arrow_type(column.item))
    return ARROW_TYPES[column.kind]


class TableLayout:
    """How rows lie in the columns of data.csv and data.parquet: one column per root property, in
    order, then EXTRA_COLUMN (JSON text) when the root allows extra keys."""

    def __init__(self, schema: dict[str, Any]):
        self.properties = list(schema["properties"])
        self.columns = {name: column_of(schema, node) for name, node in schema["properties"].items()}
        self.optional = {name for name in self.columns if name not in schema.get("required", [])}
        self.has_extras = extra_keys_node(schema) is not None
        if self.has_extras:
            if EXTRA_COLUMN in self.columns:
                raise JobFailure(
                    f"the schema allows extra keys, which CSV and Parquet keep in a column named {EXTRA_COLUMN!r}, "
                    f"and has a property of that name too; rename the property"
                )
            self.columns[EXTRA_COLUMN] = JSON_TEXT
            self.optional.add(EXTRA_COLUMN)

    def cells(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row's value for each column: its extra keys gathered into EXTRA_COLUMN (None when it
        has none); a property the row leaves out is None."""
        cells = {name: row.get(name) for name in self.properties}
        if self.has_extras:
            cells[EXTRA_COLUMN] = {key: value for key, value in row.items() if key not in cells} or None
        return cells

    def row(self, cells: dict[str, Any]) -> dict[str, Any]:
        """The row whose cells() these are (as JSON values): an optional property whose cell is
        None is left out, and the extra keys are merged back."""
        row = {name: value for name, value in cells.items() if value is not None or name not in self.optional}
        if self.has_extras:
            row.update(row.pop(EXTRA_COLUMN, None) or {})
        return row


def arrow_schema(schema: dict[str, Any]) -> pa.Schema:
    """One nullable column per TableLayout column. Columns are nullable because a schema may make
    a field optional or nullable, and a partial job may leave values out."""
    return pa.schema([pa.field(name, arrow_type(column)) for name, column in TableLayout(schema).columns.items()])


def _parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    # A time without an offset is taken as UTC, the only zone a generated row can mean.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def arrow_value(value: Any, column: Column, field: str) -> Any:
    """A JSON value as pyarrow expects it for arrow_type(column); a value the schema's format does
    not allow raises RowFormatError naming the field instead of being written as something else."""
    if value is None:
        return None
    try:
        if column.kind == "json":
            return json.dumps(value, ensure_ascii=False)
        if column.kind == "struct":
            return {name: arrow_value(value.get(name), sub, f"{field}.{name}") for name, sub in column.fields.items()}
        if column.kind == "list":
            return [arrow_value(item, column.item, f"{field}[]") for item in value]
        if column.kind == "number":
            return float(value)
        if column.kind == "date":
            return date.fromisoformat(value)
        if column.kind == "datetime":
            return _parse_datetime(value)
    except (TypeError, ValueError, AttributeError) as err:
        raise RowFormatError(f"{field}: value {value!r} does not fit its schema ({err})") from None
    return value


def _from_arrow(value: Any, column: Column) -> Any:
    """A Parquet value back as the JSON value arrow_value was given."""
    if value is None:
        return None
    if column.kind == "json":
        return json.loads(value)
    if column.kind == "struct":
        fields = ((name, _from_arrow(value.get(name), sub)) for name, sub in column.fields.items())
        return {name: item for name, item in fields if item is not None or name not in column.optional}
    if column.kind == "list":
        return [_from_arrow(item, column.item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_cell(value: Any, column: Column) -> Any:
    """Nested, union and free-form values become JSON text; booleans are written as JSON writes
    them; None (null, or a property the row left out) is an empty cell."""
    if value is None:
        return ""
    if column.csv_as_json:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _from_csv(text: str, column: Column) -> Any:
    """A CSV cell as csv_cell wrote it, back as its JSON value. An empty cell is null, except in
    a string column, where it reads as the empty string (both format into a prompt as nothing)."""
    if column.kind == "string":
        return text
    if text == "":
        return None
    if column.kind in ("date", "datetime"):
        return text
    if column.kind == "integer":
        return int(text)
    if column.kind == "number":
        return float(text)
    if column.kind == "boolean":
        return text == "true"
    return json.loads(text)  # JSON text: an object, an array, a union's or a free-form value


# --- Writing and reading the data files ----------------------------------------------------------


class RowWriter:
    """Appends rows to `data.<format>` in a job folder. close() always leaves a complete, loadable
    file (a closed JSON array, a Parquet footer), also after a failure or cancellation. A process
    that dies without close() leaves what salvage_rows() can make loadable: JSON, JSON Lines and
    CSV are written a row at a time, and Parquet, whose footer only close() writes, is shadowed
    by a hidden JSON Lines spool until then."""

    def __init__(self, folder: Path, output_format: str, schema: dict[str, Any], kept: list[dict[str, Any]] | None = None,
                 stem: str = "data"):
        """`kept`: the rows the closed data file already holds, as read_rows() reads them, when a
        resumed job goes on writing it; new rows are added after them. Otherwise the file is
        started anew. `stem`: the file's name before its extension (a table's name)."""
        self.path = folder / f"{stem}.{output_format}"
        self.output_format = output_format
        self.schema = schema
        self.rows_written = 0
        self._pending: list[dict[str, Any]] = []
        self._closed = False
        if output_format in ("csv", "parquet"):
            self._layout = TableLayout(schema)
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
        return csv.DictWriter(self._file, fieldnames=list(self._layout.columns))

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
        rows = [json_value(row, self.schema) for row in rows]
        if self.output_format == "json":
            for row in rows:
                self._file.write(("\n  " if self.rows_written == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
                self.rows_written += 1
        elif self.output_format == "jsonl":
            self._file.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            self.rows_written += len(rows)
        elif self.output_format == "csv":
            columns = self._layout.columns
            self._csv.writerows({name: csv_cell(value, columns[name]) for name, value in self._layout.cells(row).items()} for row in rows)
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
        cells = [self._layout.cells(row) for row in self._pending]
        arrays = {}
        for name, column in self._layout.columns.items():
            values = [arrow_value(row[name], column, name) for row in cells]
            column_type = self._arrow_schema.field(name).type
            try:
                arrays[name] = pa.array(values, type=column_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise RowFormatError(f"{name}: values do not fit column type {column_type} ({err})") from None
        self._parquet.write_table(pa.table(arrays, schema=self._arrow_schema))
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


def read_rows(folder: Path, output_format: str, schema: dict[str, Any], stem: str = "data") -> list[dict[str, Any]]:
    """The rows of a closed data file as their JSON values, as data.json holds them: what a
    resumed job formats its remaining prompts from and keeps. Parquet's dates and timestamps,
    JSON text columns (unions, free-form values, objects with extra keys) and CSV's text are
    turned back into the JSON the text service writes (dates "YYYY-MM-DD", timestamps
    "YYYY-MM-DDTHH:MM:SSZ"), and EXTRA_COLUMN's keys are merged back into their row.

    JSON and JSON Lines give each row as written. CSV and Parquet cannot tell a property a row
    left out from one that was null (CSV: nor from an empty string): an optional property whose
    cell is null or empty reads back as absent, at every level of a Parquet struct; one that is
    required reads back as null (in a CSV string column, as ""). comparable_row puts a generated
    row in the same form."""
    path = folder / f"{stem}.{output_format}"
    if output_format == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    if output_format == "jsonl":
        return [json.loads(line) for line in json_lines(path.read_text(encoding="utf-8"))]
    layout = TableLayout(schema)
    if output_format == "parquet":
        records = pq.read_table(path).to_pylist()
        return [layout.row({name: _from_arrow(record.get(name), column) for name, column in layout.columns.items()}) for record in records]
    with path.open(encoding="utf-8", newline="") as file:
        return [layout.row(_csv_record_cells(record, layout)) for record in csv.DictReader(file)]


def _csv_record_cells(record: dict[str, str], layout: TableLayout) -> dict[str, Any]:
    """A CSV record's cells as JSON values; an optional property's empty cell is None (absent)."""
    cells = {}
    for name, column in layout.columns.items():
        text = record.get(name) or ""
        cells[name] = None if text == "" and name in layout.optional else _from_csv(text, column)
    return cells


def spool_path(data_file: Path) -> Path:
    """The hidden JSON Lines copy of a Parquet file's rows while it is being written."""
    return data_file.with_name(f".{data_file.name}.rows.jsonl")
def salvage_rows(folder: Path, output_format: str, schema: dict[str, Any], stem: str = "data") -> int:
    """Makes the data file a job's dead process left behind loadable, keeping every whole row,
    those of shards that waited for the ones before them too; returns how many rows it holds."""
    held = _repair(folder, output_format, schema, stem)
    waiting = waiting_rows(folder, stem)
    if waiting:
        kept = read_rows(folder, output_format, schema, stem=stem) if (folder / f"{stem}.{output_format}").exists() else None
        with RowWriter(folder, output_format, schema, kept=kept, stem=stem) as writer:
            writer.write(waiting)
    return held + len(waiting)


def _repair(folder: Path, output_format: str, schema: dict[str, Any], stem: str) -> int:
    """JSON: the array is closed after the last whole row. JSON Lines and CSV: a last, unfinished
    line is dropped. Parquet: written anew from its spool."""
    path = folder / f"{stem}.{output_format}"
    if output_format == "parquet":
        spool = spool_path(path)
        if not spool.exists():  # closed properly: the file is whole
            return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0
        rows = spooled(spool)
        spool.unlink()
        with RowWriter(folder, "parquet", schema, stem=stem) as writer:
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
