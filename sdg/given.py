"""Given rows: values a caller hands in for a call's rows (seed data, a parent row), each placed into
one row exactly, the way sampled fields are (sdg.samplers), and example rows for the prompt.

given_texts() checks them against the row schema at the door, so a value rows cannot hold is an
error naming its entry and field before anything is decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sdg.samplers import SamplerError, field_shape
from sdg.schema import RowSchema, resolve, writable_string

# Example rows share the prompt every row reads: a few short ones are enough.
MAX_EXAMPLE_ROWS = 32
MAX_EXAMPLE_CHARS = 8000
# A given row's context (its parent row) is read by that row's prompt alone.
MAX_CONTEXT_CHARS = 4000


class GivenError(ValueError):
    """A given or example row that cannot be used; the message names the entry and field."""


def parse_rows(texts: list[str], what: str) -> list[dict[str, Any]]:
    """JSON objects from their texts; GivenError names the entry that is not one."""
    rows = []
    for i, text in enumerate(texts):
        try:
            row = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise GivenError(f"{what}[{i}]: not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise GivenError(f"{what}[{i}]: must be a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


@dataclass(frozen=True)
class GivenRow:
    texts: dict[str, str]  # field -> the JSON text the row holds
    context: str = ""  # a JSON object the row's prompt shows (its parent row); empty: none


def given_rows(read: RowSchema, rows: list[dict[str, Any]], contexts: list[dict[str, Any]]) -> list[GivenRow]:
    """Each given row's values as the JSON text the row grammar writes, with its context. Raises GivenError."""
    if contexts and len(contexts) != len(rows):
        raise GivenError(f"given_context_json: has {len(contexts)} entries, but given_rows_json has {len(rows)}: give one per given row")
    shown = []
    for i, context in enumerate(contexts):
        text = json.dumps(context, ensure_ascii=False) if context else ""
        if len(text) > MAX_CONTEXT_CHARS:
            raise GivenError(f"given_context_json[{i}]: at most {MAX_CONTEXT_CHARS} characters, got {len(text)}")
        shown.append(text)
    texts = _given_texts(read, rows)
    return [GivenRow(t, shown[i] if shown else "") for i, t in enumerate(texts)]


def _given_texts(read: RowSchema, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    if not rows:
        return []
    if read.wrapped:
        raise GivenError("given_rows_json: the schema's root is not an object, so rows have no fields to give")
    root = read.schema
    properties = root["properties"]
    sampled = read.samplers.samplers if read.samplers else {}
    shapes = {}
    texts = []
    for i, row in enumerate(rows):
        out = {}
        for name, value in row.items():
            where = f"given_rows_json[{i}].{name}"
            if name not in properties:
                raise GivenError(f"{where}: the schema has no field {name!r}")
            if name in sampled:
                raise GivenError(f"{where}: the field is sampled (x-sdg), so it cannot also be given")
            if read.design and name in read.design.computed:
                raise GivenError(f"{where}: the field is computed (x-sdg expression), so it cannot also be given")
            if name not in shapes:
                try:
                    shapes[name] = field_shape(name, resolve(root, properties[name]), root.get("$defs", {}), writable_string)
                except SamplerError as err:
                    raise GivenError(f"{where}: {err.reason}") from None
            why = shapes[name].why_not(value)
            if why:
                raise GivenError(f"{where}: {why}")
            out[name] = shapes[name].text(value)
        texts.append(out)
    return texts


def check_examples(rows: list[dict[str, Any]]) -> None:
    if len(rows) > MAX_EXAMPLE_ROWS:
        raise GivenError(f"example_rows_json: at most {MAX_EXAMPLE_ROWS} rows, got {len(rows)}")
    size = sum(len(json.dumps(row, ensure_ascii=False)) for row in rows)
    if size > MAX_EXAMPLE_CHARS:
        raise GivenError(f"example_rows_json: at most {MAX_EXAMPLE_CHARS} characters in all, got {size}")
