"""Uploaded datasets (POST /datasets): a CSV, JSONL or Parquet file, checked and parsed into rows at
the door, and kept in the job database so that every gateway on it can seed jobs from them."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import math
import secrets
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow
import pyarrow.parquet
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from gateway import db
from gateway.errors import DatasetNotFound, InvalidRequest

DatasetFormat = Literal["csv", "jsonl", "parquet"]
EXTENSIONS: dict[str, DatasetFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class DatasetInfo(BaseModel):
    """An uploaded dataset, as POST /datasets and GET /datasets answer."""

    dataset_id: str
    name: str
    format: DatasetFormat
    rows: int
    columns: list[str] = Field(description="In the file's order; a JSONL file's in the order they first appear.")
    size_bytes: int
    created_at: str


@dataclass(frozen=True)
class ParsedDataset:
    format: DatasetFormat
    columns: list[str]
    rows: list[dict[str, Any]]
    # Each row's place in the file, for errors: its line (CSV, JSONL) or its row number (Parquet).
    lines: list[int]

    def where(self, index: int) -> str:
        """Row `index`'s place in the file, in words."""
        return f"row {self.lines[index]}" if self.format == "parquet" else f"line {self.lines[index]}"


def dataset_format(filename: str | None, declared: str | None) -> DatasetFormat:
    """The declared format, else the one the file name's extension says."""
    if declared is not None:
        return declared  # type: ignore[return-value]  # checked by the route's Literal
    suffix = "." + (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if suffix not in EXTENSIONS:
        raise InvalidRequest("format", f"cannot tell the format of {filename!r} from its name; name it .csv, .jsonl or .parquet, or send format")
    return EXTENSIONS[suffix]


def parse_dataset(data: bytes, file_format: DatasetFormat, max_rows: int) -> ParsedDataset:
    """The file's rows; InvalidRequest("file", ...) naming the line or column that is wrong."""
    parsed = {"csv": _parse_csv, "jsonl": _parse_jsonl, "parquet": _parse_parquet}[file_format](data, max_rows)
    if not parsed.rows:
        raise InvalidRequest("file", "has no rows")
    return parsed


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InvalidRequest("file", f"line {line} is not UTF-8 ({err.reason} at byte offset {err.start})") from None


def _too_many(max_rows: int) -> InvalidRequest:
    return InvalidRequest("file", f"has more than {max_rows:,} rows, the most a dataset may have (SDG_MAX_DATASET_ROWS)")


def _check_columns(columns: list[str], where: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(columns):
        if not name.strip():
            raise InvalidRequest("file", f"{where}: column {i + 1} has no name")
        if name in seen:
            raise InvalidRequest("file", f"{where}: column {name!r} is named twice")
        seen.add(name)


def _parse_csv(data: bytes, max_rows: int) -> ParsedDataset:
    reader = csv.reader(io.StringIO(_text(data), newline=""))
    rows, lines, header = [], [], None
    try:
        for record in reader:
            if not record:
                continue  # a blank line
            if header is None:
                header = record
                _check_columns(header, f"line {reader.line_num} (the header)")
                continue
            if len(record) != len(header):
                raise InvalidRequest("file", f"line {reader.line_num} has {len(record)} fields, the header has {len(header)}")
            if len(rows) == max_rows:
                raise _too_many(max_rows)
            rows.append(dict(zip(header, record)))
            lines.append(reader.line_num)
    except csv.Error as err:
        raise InvalidRequest("file", f"line {reader.line_num} is not CSV: {err}") from None
    if header is None:
        raise InvalidRequest("file", "is empty: a CSV file starts with a header line naming its columns")
    return ParsedDataset("csv", header, rows, lines)


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


def _parse_jsonl(data: bytes, max_rows: int) -> ParsedDataset:
    rows, lines, columns = [], [], {}
    for number, line in enumerate(_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_object_pairs, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:
            raise InvalidRequest("file", f"line {number} is not JSON: {err}") from None
        if not isinstance(row, dict):
            raise InvalidRequest("file", f"line {number} is a JSON {type(row).__name__}, not an object")
        _check_columns(list(row), f"line {number}")
        if len(rows) == max_rows:
            raise _too_many(max_rows)
        columns.update(dict.fromkeys(row))
        rows.append(row)
        lines.append(number)
    return ParsedDataset("jsonl", list(columns), rows, lines)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_parquet(data: bytes, max_rows: int) -> ParsedDataset:
    try:
        table = pyarrow.parquet.read_table(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError, ValueError) as err:
        raise InvalidRequest("file", f"is not a readable Parquet file: {err}") from None
    columns = [str(name) for name in table.column_names]
    _check_columns(columns, "the Parquet schema")
    if table.num_rows > max_rows:
        raise _too_many(max_rows)
    rows = []
    for i, record in enumerate(table.to_pylist(), start=1):
        rows.append({name: _json_cell(value, f"row {i}, column {name!r}") for name, value in record.items()})
    return ParsedDataset("parquet", columns, rows, list(range(1, len(rows) + 1)))


def _json_cell(value: Any, where: str) -> Any:
    """A Parquet value as JSON: dates and times as ISO 8601, decimals as numbers, NaN as null."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isinf(value):
            raise InvalidRequest("file", f"{where}: {value} is not a JSON number")
        return None if math.isnan(value) else value
    if isinstance(value, decimal.Decimal):
        return _json_cell(float(value), where)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_cell(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_cell(v, where) for v in value]
    raise InvalidRequest("file", f"{where}: a {type(value).__name__} value has no JSON form")


def _packed(parsed: ParsedDataset) -> bytes:
    lines = (json.dumps([line, row], ensure_ascii=False) for line, row in zip(parsed.lines, parsed.rows))
    return zlib.compress("\n".join(lines).encode(), level=6)


def _unpacked(file_format: DatasetFormat, columns: list[str], data: bytes) -> ParsedDataset:
    pairs = [json.loads(line) for line in zlib.decompress(data).decode().split("\n")]
    return ParsedDataset(file_format, columns, [row for _, row in pairs], [line for line, _ in pairs])


def _info(row: sa.Row) -> DatasetInfo:
    return DatasetInfo(
        dataset_id=row.dataset_id, name=row.name, format=row.format, rows=row.rows,
        columns=row.columns, size_bytes=row.size_bytes, created_at=row.created_at,
    )  # fmt: skip


INFO_COLUMNS = [c for c in db.datasets.c if c.name != "data"]


class DatasetStore:
    """The datasets table. With API keys on, a dataset belongs to the key that uploaded it, and
    another key is told it does not exist; `owner` None (keys off) sees them all."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, parsed: ParsedDataset, name: str, size_bytes: int, owner: str | None, created_at: str) -> DatasetInfo:
        dataset_id = "ds_" + secrets.token_hex(6)
        values = dict(
            dataset_id=dataset_id, owner=owner, name=name, format=parsed.format, rows=len(parsed.rows),
            columns=parsed.columns, size_bytes=size_bytes, created_at=created_at,
        )  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(db.datasets.insert().values(**values, data=_packed(parsed)))
        return DatasetInfo(**{k: v for k, v in values.items() if k != "owner"})

    def listed(self, owner: str | None, limit: int, offset: int) -> list[DatasetInfo]:
        """One page, newest first."""
        order = (db.datasets.c.created_at.desc(), db.datasets.c.dataset_id)
        query = sa.select(*INFO_COLUMNS).order_by(*order).limit(limit).offset(offset)
        if owner is not None:
            query = query.where(db.datasets.c.owner == owner)
        with self.engine.connect() as conn:
            return [_info(row) for row in conn.execute(query)]

    def _row(self, dataset_id: str, owner: str | None, *columns: sa.Column) -> sa.Row:
        query = sa.select(*columns).where(db.datasets.c.dataset_id == dataset_id)
        if owner is not None:
            query = query.where(db.datasets.c.owner == owner)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise DatasetNotFound(dataset_id)
        return row

    def get(self, dataset_id: str, owner: str | None) -> DatasetInfo:
        return _info(self._row(dataset_id, owner, *INFO_COLUMNS))

    def rows(self, dataset_id: str, owner: str | None) -> tuple[DatasetInfo, ParsedDataset]:
        """The dataset and its rows, as parsed at upload."""
        row = self._row(dataset_id, owner, *db.datasets.c)
        return _info(row), _unpacked(row.format, row.columns, row.data)

    def delete(self, dataset_id: str, owner: str | None) -> DatasetInfo:
        info = self.get(dataset_id, owner)
        with self.engine.begin() as conn:
            conn.execute(db.datasets.delete().where(db.datasets.c.dataset_id == dataset_id))
        return info
