"""RowAcceptance: which decoded rows a call keeps. A row is kept when it is strict JSON (finite
numbers, no repeated keys), valid against the schema as the user submitted it, and not a repeat of
an earlier row (unless repeats are kept). Its computed fields are filled in first, and it must
keep the schema's order rules and unique fields (sdg.design). The others are counted by why they
were thrown away (expression, greater_than, unique, ...), and the engine generates more in their place."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import regex
from jsonschema.exceptions import ValidationError, best_match

from sdg.design import RowDesign, UniqueLedger
from sdg.schema import format_checker, validator_class

# A pattern may backtrack for ever on a string it does not match ("^(a+)+$" on "aaaa…!"): each
# match is bounded, and one that runs out counts as a failure.
PATTERN_TIMEOUT_S = 0.05
_compiled: dict[str, Any] = {}


def _search(pattern: str, text: str) -> bool:
    compiled = _compiled.get(pattern)
    if compiled is None:
        compiled = _compiled[pattern] = regex.compile(pattern)
        if len(_compiled) > 4096:
            _compiled.clear()
    try:
        return compiled.search(text, timeout=PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        return False


def _pattern(validator, pattern: str, instance: Any, schema: dict[str, Any]):
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def row_validator(schema: Any) -> jsonschema.protocols.Validator:
    """The validator rows are checked with: the one the schema's $schema names (default 2020-12),
    with format checks, and patterns matched as ECMA-262 under a time bound."""
    cls = validator_class(schema)
    bounded = jsonschema.validators.extend(cls, {"pattern": _pattern, "patternProperties": _pattern_properties})
    return bounded(schema, format_checker=format_checker(cls))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key is repeated")
    return out


def parse_row(text: str) -> dict[str, Any] | None:
    """The row as a dict when `text` is one strict JSON object, else None."""
    try:
        row = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        return None
    return row if isinstance(row, dict) else None


@dataclass
class RowAcceptance:
    validator: jsonschema.protocols.Validator  # the schema as submitted
    wrapped: bool  # rows are {"value": instance}, and the instance is what is validated
    keep_duplicates: bool = False
    design: RowDesign | None = None
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    cut_off: int = 0  # of the invalid: rows that ran out of tokens before they closed
    timed_out: int = 0  # of the invalid: rows that ran past the row time limit
    rejected_by: Counter = field(default_factory=Counter)  # invalid rows by what they failed
    seen: set[str] = field(default_factory=set)
    unique: UniqueLedger | None = None  # the unique fields' values kept so far

    def __post_init__(self) -> None:
        if self.design is not None and self.design.unique:
            self.unique = UniqueLedger(self.design)

    def offer(self, text: str | None, ran_out: bool = False, timed_out: bool = False, sample_failed: bool = False) -> str | None:
        """The row to keep, as compact JSON, or None (then it is counted)."""
        if text is None:
            self.invalid += 1
            self.cut_off += ran_out
            self.timed_out += timed_out
            self.rejected_by["token limit" if ran_out else "time limit" if timed_out else "x-sdg" if sample_failed else "grammar"] += 1
            return None
        row = parse_row(text)
        if row is None:
            self.invalid += 1
            self.rejected_by["json"] += 1
            return None
        design = self.design
        if design is not None:
            row = design.complete(row)
            if row is None:
                self.invalid += 1
                self.rejected_by["expression"] += 1
                return None
        instance = row.get("value") if self.wrapped else row
        try:
            valid = self.validator.is_valid(instance)
            error = None if valid else best_match(self.validator.iter_errors(instance))
        except Exception as err:  # a schema the validator cannot follow here: no row is kept on trust
            self.invalid += 1
            self.rejected_by[f"validator error: {type(err).__name__}: {err}"[:120]] += 1
            return None
        if not valid:
            self.invalid += 1
            self.rejected_by[error.validator if error is not None else "schema"] += 1
            return None
        if design is not None:
            failed = design.broken_rule(row) or (self.unique is not None and not self.unique.admit(row) and "unique")
            if failed:
                self.invalid += 1
                self.rejected_by[failed] += 1
                return None
        self.valid += 1
        canonical = json.dumps(row, sort_keys=True, ensure_ascii=False)
        if canonical in self.seen:
            self.duplicates += 1
            if not self.keep_duplicates:
                return None
        self.seen.add(canonical)
        return json.dumps(row, ensure_ascii=False)

    @property
    def regenerated(self) -> int:
        return self.invalid + (0 if self.keep_duplicates else self.duplicates)

    @property
    def distinct_ratio(self) -> float:
        """Distinct rows among the valid rows decoded: what the model produced, before removal."""
        return len(self.seen) / self.valid if self.valid else 1.0
