"""allOf: several schemas merged into one that every value satisfying it satisfies all of them.

The merge is of schemas as written (before sdg.schema normalizes them): each branch arrives with
its own top-level `$ref` and `allOf` already followed. Where two branches constrain one value,
the tighter bound wins; where they cannot both hold (two types, disjoint enums, a property one
branch requires and another forbids), MergeError names both branches. What a merge cannot
combine in one grammar (two patterns, two multipleOf) keeps the first branch's, and rows are
checked against the others after decoding, as they are against the whole schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

LOWER = ("minimum", "minLength", "minItems", "minProperties", "minContains")
UPPER = ("maximum", "maxLength", "maxItems", "maxProperties", "maxContains")
# Where two branches' values differ, the first is generated and the second checked afterwards.
FIRST_WINS = ("pattern", "format", "multipleOf", "contentEncoding", "contentMediaType", "propertyNames",
              "contains", "uniqueItems", "not", "if", "then", "else", "unevaluatedProperties", "unevaluatedItems")
MAX_PRODUCT = 64  # anyOf branches a merge of several anyOfs may make


class MergeError(ValueError):
    """Branches no value can satisfy together; str() names them."""


def merge_all(branches: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One schema for all `branches`; `names` label them in errors ("allOf/0", "allOf/1", ...)."""
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for branch, name in zip(branches, names):
        merged = _merge(merged, branch, owner, name)
    return merged


def _merge(a: dict[str, Any], b: dict[str, Any], owner: dict[str, str], name: str) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            owner.setdefault(key, name)
            continue
        mine = out[key]
        if key == "type":
            out[key] = _types(mine, value, owner.get(key, "?"), name)
        elif key in ("enum", "const"):
            out[key] = _values(mine, value, key, owner.get(key, "?"), name)
        elif key in LOWER:
            out[key] = max(mine, value) if _numbers(mine, value) else mine
        elif key in UPPER:
            out[key] = min(mine, value) if _numbers(mine, value) else mine
        elif key == "exclusiveMinimum":
            out[key] = _exclusive(mine, value, max)
        elif key == "exclusiveMaximum":
            out[key] = _exclusive(mine, value, min)
        elif key == "required" and isinstance(mine, list) and isinstance(value, list):
            out[key] = list(dict.fromkeys(mine + value))
        elif key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas") and isinstance(mine, dict) and isinstance(value, dict):
            out[key] = {**mine, **{k: (_both(mine[k], v) if k in mine else v) for k, v in value.items()}}
        elif key == "dependentRequired" and isinstance(mine, dict) and isinstance(value, dict):
            out[key] = {**mine, **{k: list(dict.fromkeys(mine.get(k, []) + v)) for k, v in value.items()}}
        elif key in ("items", "additionalItems", "additionalProperties"):
            out[key] = _schemas(mine, value)
        elif key == "prefixItems" and isinstance(mine, list) and isinstance(value, list):
            out[key] = [_both(x, y) for x, y in zip(mine, value)] + mine[len(value):] + value[len(mine):]
        elif key in ("anyOf", "oneOf") and isinstance(mine, list) and isinstance(value, list):
            if len(mine) * len(value) <= MAX_PRODUCT:
                out[key] = [{"allOf": [x, y]} for x in mine for y in value]
        elif key == "examples" and isinstance(mine, list) and isinstance(value, list):
            out[key] = mine + value
        # Anything else (annotations, FIRST_WINS): the first branch's value stands.
    _restrict_properties(a, b, out, owner, name)
    return out


def _both(x: Any, y: Any) -> Any:
    """Two schemas for one value, left for the normalizer to merge in its turn."""
    if x is True or x == {}:
        return y
    if y is True or y == {}:
        return x
    if x is False or y is False:
        return False
    return {"allOf": [x, y]}


def _schemas(x: Any, y: Any) -> Any:
    if isinstance(x, bool) and isinstance(y, bool):
        return x and y
    return _both(x, y)


def _numbers(x: Any, y: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))


def _exclusive(x: Any, y: Any, pick) -> Any:
    """Draft-04 booleans combine with `or`; draft-06+ numbers with the tighter bound."""
    if isinstance(x, bool) or isinstance(y, bool):
        return bool(x) or bool(y)
    return pick(x, y) if _numbers(x, y) else x


def _types(x: Any, y: Any, first: str, second: str) -> Any:
    xs = set(x if isinstance(x, list) else [x])
    ys = set(y if isinstance(y, list) else [y])
    common = xs & ys
    # An integer is a number.
    if "number" in xs and "integer" in ys or "integer" in xs and "number" in ys:
        common.add("integer")
    if not common:
        raise MergeError(f"{first} is type {_shown(x)} and {second} is type {_shown(y)}: no value is both")
    order = [t for t in (x if isinstance(x, list) else [x]) if t in common] + sorted(common - xs)
    return order[0] if len(order) == 1 else order


def _values(x: Any, y: Any, key: str, first: str, second: str) -> Any:
    xs = x if key == "enum" and isinstance(x, list) else [x]
    ys = y if key == "enum" and isinstance(y, list) else [y]
    wanted = {_canonical(v) for v in ys}
    common = [v for v in xs if _canonical(v) in wanted]
    if not common:
        raise MergeError(f"{first} and {second} allow no {key} value in common")
    return common if key == "enum" else common[0]


def _restrict_properties(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any], owner: dict[str, str], name: str) -> None:
    """A branch with additionalProperties false allows only its own properties, whatever the
    other branches list: the others' are dropped, and MergeError if one of them is required."""
    for closed, other, label in ((a, b, owner.get("additionalProperties", "?")), (b, a, name)):
        if closed.get("additionalProperties") is not False or not isinstance(closed.get("properties", {}), dict):
            continue
        listed = set(closed.get("properties", {}))
        patterns = list(closed.get("patternProperties") or {}) if isinstance(closed.get("patternProperties"), dict) else []

        def allowed(name: str) -> bool:
            return name in listed or any(_matches(p, name) for p in patterns)

        properties = out.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {k: v for k, v in properties.items() if allowed(k)}
        required = out.get("required")
        if isinstance(required, list):
            for field in required:
                if not allowed(field):
                    raise MergeError(f"{label} allows no property {field!r} (additionalProperties: false), which the others require")


def _matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _shown(value: Any) -> str:
    return json.dumps(value)
