"""Seed data: the rows of an uploaded dataset that a job's `seed_data` names, drawn from the job
seed. `carry` gives output position i the named columns of one seed row (a draw per position with
replacement, a permutation without); `few_shot` shows k seed rows in every call's shared prompt.
CarriedRows tells which positions a job still lacks, so that every call (a shard, a top-up, a
resume) carries exactly those."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.datasets import DatasetInfo, DatasetStore, ParsedDataset
from gateway.errors import DatasetNotFound, InvalidRequest
from gateway.plans import TextSpec
from gateway.resume import row_key
from sdg.given import GivenError, check_examples
from sdg.samplers import FieldShape, SamplerError, field_shape
from sdg.schema import resolve, writable_string


@dataclass(frozen=True)
class SeedRows:
    dataset: DatasetInfo
    mode: str
    columns: tuple[str, ...]
    replace: bool
    # The dataset rows drawn (0-based): one per output position (carry), or the examples (few_shot).
    indexes: tuple[int, ...]
    carried: tuple[dict[str, Any], ...] = ()  # carry: position i's values
    examples: tuple[dict[str, Any], ...] = ()  # few_shot

    def manifest(self) -> dict[str, Any]:
        """What the job's manifest says was carried or shown."""
        out: dict[str, Any] = {
            "dataset_id": self.dataset.dataset_id,
            "name": self.dataset.name,
            "mode": self.mode,
            "columns": list(self.columns),
            "dataset_rows": self.dataset.rows,
        }
        if self.mode == "carry":
            out.update(replace=self.replace, positions=len(self.indexes), rows_used=len(set(self.indexes)))
        else:
            out.update(k=len(self.indexes), example_rows=[i + 1 for i in self.indexes])
        return out


def seed_rows(spec: TextSpec, datasets: DatasetStore, owner: str | None) -> SeedRows:
    """The seed rows of `spec`'s job (the same for every run with its seed). Raises InvalidRequest
    naming the seed_data field, and for a carried value that does not fit its schema field, the
    dataset line and column."""
    seed_data = spec.seed_data
    assert seed_data is not None
    try:
        info, parsed = datasets.rows(seed_data.dataset_id, owner)
    except DatasetNotFound:
        raise InvalidRequest("seed_data.dataset_id", f"there is no dataset {seed_data.dataset_id!r}; upload one with POST /datasets") from None
    columns = seed_data.columns
    for i, column in enumerate(columns):
        if column not in parsed.columns:
            raise InvalidRequest(f"seed_data.columns[{i}]", f"{column!r} is not a column of dataset {info.dataset_id}; its columns are {', '.join(parsed.columns)}")
    rng, n = random.Random(f"sdg-seed-data:{spec.seed}"), len(parsed.rows)
    if seed_data.mode == "few_shot":
        k = seed_data.examples
        if k > n:
            raise InvalidRequest("seed_data.k", f"{k} examples asked of dataset {info.dataset_id}, which has {n} rows")
        indexes = rng.sample(range(n), k)
        examples = tuple({c: parsed.rows[i][c] for c in columns if c in parsed.rows[i]} for i in indexes)
        try:
            check_examples(list(examples))
        except GivenError as err:
            raise InvalidRequest("seed_data.k", f"{k} rows of dataset {info.dataset_id}'s columns {', '.join(columns)}: {err}") from None
        return SeedRows(info, "few_shot", tuple(columns), False, tuple(indexes), examples=examples)
    _check_carried_fields(spec, columns)
    if not seed_data.with_replacement and spec.num_rows > n:
        raise InvalidRequest("seed_data.replace", f"false draws each of dataset {info.dataset_id}'s {n} rows at most once, too few for num_samples {spec.num_rows}")
    values = _carried_values(spec, info, parsed, columns)
    indexes = [rng.randrange(n) for _ in range(spec.num_rows)] if seed_data.with_replacement else rng.sample(range(n), spec.num_rows)
    return SeedRows(info, "carry", tuple(columns), seed_data.with_replacement, tuple(indexes), carried=tuple(values[i] for i in indexes))


def _check_carried_fields(spec: TextSpec, columns: list[str]) -> None:
    if spec.read.wrapped:
        raise InvalidRequest("seed_data.mode", "carry needs a schema whose rows are objects with fields")
    properties = spec.schema["properties"]
    sampled = spec.read.samplers.samplers if spec.read.samplers else {}
    for i, column in enumerate(columns):
        if column not in properties:
            raise InvalidRequest(f"seed_data.columns[{i}]", f"{column!r} is not a top-level field of the schema (fields: {', '.join(properties)}); a carried column fills the field of its name")
        if column in sampled:
            raise InvalidRequest(f"seed_data.columns[{i}]", f"{column!r} is drawn by its x-sdg sampler; a field is sampled or carried, not both")


def _carried_values(spec: TextSpec, info: DatasetInfo, parsed: ParsedDataset, columns: list[str]) -> list[dict[str, Any]]:
    """Each dataset row's carried columns, checked as the text service checks given values
    (sdg.given). A CSV cell that does not fit as text is read as JSON ("42", "true")."""
    root = spec.schema
    shapes = {}
    for i, column in enumerate(columns):
        try:
            shapes[column] = field_shape(column, resolve(root, root["properties"][column]), root.get("$defs", {}), writable_string)
        except SamplerError as err:
            raise InvalidRequest(f"seed_data.columns[{i}]", f"{column!r} cannot be carried: {err.reason}") from None
    fitted: dict[str, dict[str, Any]] = {c: {} for c in columns}  # a column's checked values, by their JSON
    out = []
    for r, row in enumerate(parsed.rows):
        carried = {}
        for i, column in enumerate(columns):
            value = row.get(column)
            key = json.dumps(value, sort_keys=True)
            if key not in fitted[column]:
                where = f"dataset {info.dataset_id} {parsed.where(r)}, column {column!r}"
                fitted[column][key] = _fitted(value, shapes[column], parsed.format == "csv", f"seed_data.columns[{i}]", where)
            carried[column] = fitted[column][key]
        out.append(carried)
    return out


def _fitted(value: Any, shape: FieldShape, from_csv: bool, field: str, where: str) -> Any:
    if value is None or value == "" and from_csv:
        raise InvalidRequest(field, f"{where}: has no value; a carried column needs one in every row")
    why = shape.why_not(value)
    if why is None:
        return value
    if from_csv and isinstance(value, str):
        try:
            read = json.loads(value)
        except ValueError:
            read = None
        if read is not None and not isinstance(read, str) and shape.why_not(read) is None:
            return read
    raise InvalidRequest(field, f"{where}: {why}")


class CarriedRows:
    """The carried positions a job's rows have yet to fill. Rows come back in any order, so a row
    fills a position whose carried values it holds (positions with the same values are alike)."""

    def __init__(self, carried: Sequence[dict[str, Any]], schema: dict[str, Any]):
        self._carried = carried
        self._columns = list(carried[0]) if carried else []
        self._schema = schema
        self._keys = [self._key(values) for values in carried]
        self._open = Counter(self._keys)

    def _key(self, row: dict[str, Any]) -> str:
        return row_key({c: row.get(c) for c in self._columns}, self._schema)

    def fills(self, row: dict[str, Any]) -> bool:
        """Takes the position `row` fills; False when it fills none that is open."""
        key = self._key(row)
        if self._open[key] <= 0:
            return False
        self._open[key] -= 1
        return True

    def lacking(self) -> list[dict[str, Any]]:
        """The open positions' carried values, in position order."""
        return [self._carried[i] for i in self.lacking_positions()]

    def lacking_positions(self) -> list[int]:
        left, out = Counter(self._open), []
        for i, key in enumerate(self._keys):
            if left[key] > 0:
                left[key] -= 1
                out.append(i)
        return out
