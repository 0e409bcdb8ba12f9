"""The schema language: SDG shorthand and the supported subset of JSON Schema, normalized to one
JSON Schema object that every generated row validates against.

Accepted forms:
- shorthand: ``{"name": "string", "age": "int", "price": "float"}`` (plus bool, date, datetime,
  email, uuid);
- a mapping of field names to JSON Schema properties (or shorthand strings), mixed freely;
- a whole JSON Schema object: ``{"type": "object", "properties": {...}, "required": [...]}``.

Anything that cannot be honoured raises SchemaError naming the field and the reason; nothing is
silently dropped. This module is pure Python so the gateway can validate at the door without torch.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

SHORTHAND: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "integer": {"type": "integer"},
    "float": {"type": "number"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "email": {"type": "string", "format": "email"},
    "uuid": {"type": "string", "format": "uuid"},
}
TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")
FORMATS = ("date", "date-time", "email", "uuid")

# Defaults that keep values loadable and rows short; written into the normalized schema so that
# schema.json says exactly what the rows obey.
DEFAULT_MAX_LENGTH = 48
DEFAULT_MAX_ITEMS = 4
LIMITS = {"maxLength": 512, "maxItems": 64, "depth": 5, "fields": 64, "enum": 256}
# Integers and numbers stay within what int64, float64 and spreadsheets hold exactly.
MAX_ABS_NUMBER = 10**15

ANNOTATION_KEYWORDS = {"description", "title", "examples", "$comment"}
KEYWORDS_BY_TYPE = {
    "string": {"minLength", "maxLength", "pattern", "format", "enum"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum"},
    "boolean": {"enum"},
    "object": {"properties", "required", "additionalProperties"},
    "array": {"items", "minItems", "maxItems"},
    "null": set(),
}
ROOT_KEYWORDS = {"$schema", "$id"}
# A grammar can only express regular languages, and the grammar compiler reads a plain regex
# dialect: no lookaround, backreferences, word boundaries, \A/\Z anchors, inline flags, named or
# atomic groups (any "(?" but "(?:"), or "{,n}".
UNSUPPORTED_REGEX = re.compile(r"\(\?(?!:)|\\[1-9]|\\[bBAZzG]|\{,")


class SchemaError(ValueError):
    """A schema that cannot be honoured. `field` is a dotted path ("address.city", "tags[]")."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"schema.{field}: {reason}" if field else f"schema: {reason}")


def normalize_schema(schema: Any) -> dict[str, Any]:
    """Returns the full JSON Schema object for any accepted form, or raises SchemaError."""
    if isinstance(schema, str):
        raise SchemaError("", "expected a JSON object mapping field names to types, got a string")
    if not isinstance(schema, dict) or not schema:
        raise SchemaError("", "expected a non-empty JSON object mapping field names to types")
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        extra = set(schema) - KEYWORDS_BY_TYPE["object"] - ANNOTATION_KEYWORDS - ROOT_KEYWORDS - {"type"}
        if extra:
            raise SchemaError("", f"unsupported keyword {sorted(extra)[0]!r}")
        root = _normalize_object(schema, path="", depth=0)
    else:
        root = _normalize_object({"type": "object", "properties": schema}, path="", depth=0)
    if not root["properties"]:
        raise SchemaError("", "the schema has no fields")
    return root


def field_paths(schema: dict[str, Any]) -> list[str]:
    """Top-level field names, in order."""
    return list(schema["properties"])


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _normalize(spec: Any, path: str, depth: int) -> dict[str, Any]:
    if isinstance(spec, str):
        if spec.lower() not in SHORTHAND:
            raise SchemaError(path, f"unknown type {spec!r}; expected one of {', '.join(SHORTHAND)} or a JSON Schema object")
        spec = SHORTHAND[spec.lower()]
    if not isinstance(spec, dict):
        raise SchemaError(path, f"expected a type name or a JSON Schema object, got {type(spec).__name__}")
    if depth > LIMITS["depth"]:
        raise SchemaError(path, f"nesting deeper than {LIMITS['depth']} levels is not supported")
    spec = copy.deepcopy(spec)
    if "type" not in spec and "enum" in spec:
        spec["type"] = _enum_type(spec["enum"], path)
    if "type" not in spec:
        raise SchemaError(path, "missing 'type'")
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    for t in types:
        if t not in TYPES:
            raise SchemaError(path, f"unknown type {t!r}; expected one of {', '.join(TYPES)}")
    concrete = [t for t in types if t != "null"]
    nullable = "null" in types
    if len(concrete) != 1 or len(types) != len(set(types)):
        raise SchemaError(path, f"type {spec['type']!r} is not supported; use one type, optionally with 'null'")
    kind = concrete[0]
    allowed = KEYWORDS_BY_TYPE[kind] | ANNOTATION_KEYWORDS | {"type"}
    for key in spec:
        if key not in allowed:
            raise SchemaError(path, f"unsupported keyword {key!r} for type {kind!r}")
    normalize = {
        "string": _normalize_string,
        "integer": _normalize_numeric,
        "number": _normalize_numeric,
        "boolean": _normalize_boolean,
        "object": _normalize_object,
        "array": _normalize_array,
    }[kind]
    out = normalize({**spec, "type": kind}, path, depth)
    if nullable:
        out["type"] = [kind, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _enum_type(values: Any, path: str) -> str:
    if not isinstance(values, list) or not values:
        raise SchemaError(path, "'enum' must be a non-empty list")
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    raise SchemaError(path, "'enum' without 'type' must list only strings or only integers")


def _check_enum(spec: dict[str, Any], path: str, kind: str) -> None:
    values = spec["enum"]
    if not isinstance(values, list) or not values:
        raise SchemaError(path, "'enum' must be a non-empty list")
    if len(values) > LIMITS["enum"]:
        raise SchemaError(path, f"'enum' has {len(values)} values; at most {LIMITS['enum']} are supported")
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "boolean": lambda v: isinstance(v, bool),
    }[kind]
    for v in values:
        if not ok(v):
            raise SchemaError(path, f"enum value {v!r} is not of type {kind!r}")
    if len(set(map(repr, values))) != len(values):
        raise SchemaError(path, "'enum' values must be unique")
    if kind == "string":
        for v in values:
            if _has_control(v):
                raise SchemaError(path, f"enum value {v!r} contains a control character")


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _non_negative_int(spec: dict[str, Any], key: str, path: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SchemaError(path, f"'{key}' must be a non-negative integer, got {value!r}")
    return value


def _normalize_string(spec: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    if "enum" in spec:
        _check_enum(spec, path, "string")
        extra = {"minLength", "maxLength", "pattern", "format"} & set(spec)
        if extra:
            raise SchemaError(path, f"'{sorted(extra)[0]}' cannot be combined with 'enum'")
        return spec
    fmt = spec.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise SchemaError(path, f"unsupported format {fmt!r}; expected one of {', '.join(FORMATS)}")
    min_len = _non_negative_int(spec, "minLength", path)
    max_len = _non_negative_int(spec, "maxLength", path)
    if fmt is not None and (min_len is not None or max_len is not None or "pattern" in spec):
        raise SchemaError(path, f"format {fmt!r} cannot be combined with length or pattern constraints")
    if "pattern" in spec:
        if min_len is not None or max_len is not None:
            raise SchemaError(path, "'pattern' cannot be combined with minLength/maxLength; put the length in the pattern")
        _check_pattern(spec["pattern"], path)
        return spec
    if fmt is not None:
        return spec
    if min_len is not None and min_len > LIMITS["maxLength"]:
        raise SchemaError(path, f"minLength {min_len} is above the supported maximum length {LIMITS['maxLength']}")
    if max_len is None:
        max_len = max(DEFAULT_MAX_LENGTH, min_len or 0)
        spec["maxLength"] = max_len
    if max_len > LIMITS["maxLength"]:
        raise SchemaError(path, f"maxLength {max_len} is above the supported {LIMITS['maxLength']}")
    if min_len is not None and min_len > max_len:
        raise SchemaError(path, f"minLength {min_len} is greater than maxLength {max_len}")
    return spec


def _check_pattern(pattern: Any, path: str) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise SchemaError(path, "'pattern' must be a non-empty string")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise SchemaError(path, f"pattern {pattern!r} does not compile: {exc}") from None
    if UNSUPPORTED_REGEX.search(pattern):
        raise SchemaError(path, f"pattern {pattern!r} uses a regex feature a grammar cannot express (lookaround, backreferences, word boundaries, \\A/\\Z, inline flags, named or atomic groups, {{,n}})")


def _number(spec: dict[str, Any], key: str, path: str, integer: bool) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(path, f"'{key}' must be a finite number, got {value!r}")
    if abs(value) > MAX_ABS_NUMBER:
        raise SchemaError(path, f"'{key}' {value!r} is outside the supported range ±{MAX_ABS_NUMBER:.0e}")
    if integer and value != int(value):
        raise SchemaError(path, f"'{key}' must be a whole number for an integer field, got {value!r}")
    return value


def _normalize_numeric(spec: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    integer = spec["type"] == "integer"
    if "enum" in spec:
        _check_enum(spec, path, spec["type"])
        extra = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(spec)
        if extra:
            raise SchemaError(path, f"'{sorted(extra)[0]}' cannot be combined with 'enum'")
        return spec
    low = _number(spec, "minimum", path, integer)
    high = _number(spec, "maximum", path, integer)
    ex_low = _number(spec, "exclusiveMinimum", path, integer)
    ex_high = _number(spec, "exclusiveMaximum", path, integer)
    if low is not None and ex_low is not None:
        raise SchemaError(path, "use either 'minimum' or 'exclusiveMinimum', not both")
    if high is not None and ex_high is not None:
        raise SchemaError(path, "use either 'maximum' or 'exclusiveMaximum', not both")
    lower = low if low is not None else ex_low
    upper = high if high is not None else ex_high
    if lower is not None and upper is not None:
        if lower > upper:
            raise SchemaError(path, f"minimum {lower:g} is greater than maximum {upper:g}")
        exclusive = ex_low is not None or ex_high is not None
        if exclusive and lower == upper:
            raise SchemaError(path, f"no value lies between {lower:g} and {upper:g}")
        if integer and exclusive and integer_bounds(spec)[0] > integer_bounds(spec)[1]:
            raise SchemaError(path, f"no integer lies between {lower:g} and {upper:g}")
    return spec


def integer_bounds(spec: dict[str, Any]) -> tuple[int, int]:
    """Inclusive integer bounds of an integer property, defaulting to ±MAX_ABS_NUMBER."""
    low = spec.get("minimum")
    if low is None and spec.get("exclusiveMinimum") is not None:
        low = int(spec["exclusiveMinimum"]) + 1
    high = spec.get("maximum")
    if high is None and spec.get("exclusiveMaximum") is not None:
        high = int(spec["exclusiveMaximum"]) - 1
    return (int(low) if low is not None else -MAX_ABS_NUMBER, int(high) if high is not None else MAX_ABS_NUMBER)




def _normalize_boolean(spec: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    if "enum" in spec:
        _check_enum(spec, path, "boolean")
    return spec


def _normalize_object(spec: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    properties = spec.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise SchemaError(path, "an object needs a non-empty 'properties' mapping")
    if len(properties) > LIMITS["fields"]:
        raise SchemaError(path, f"{len(properties)} fields; at most {LIMITS['fields']} are supported")
    out_props = {}
    for name, sub in properties.items():
        if not isinstance(name, str) or not name.strip():
            raise SchemaError(path, f"field name {name!r} must be a non-empty string")
        if _has_control(name) or '"' in name or "\\" in name:
            raise SchemaError(_join(path, name), "field names cannot contain quotes, backslashes or control characters")
        out_props[name] = _normalize(sub, _join(path, name), depth + 1)
    required = spec.get("required", list(out_props))
    if not isinstance(required, list) or any(r not in out_props for r in required):
        missing = [r for r in required if r not in out_props] if isinstance(required, list) else required
        raise SchemaError(path or "required", f"'required' names fields that are not in 'properties': {missing!r}")
    additional = spec.get("additionalProperties", False)
    if not isinstance(additional, bool):
        raise SchemaError(path or "additionalProperties", "'additionalProperties' must be true or false")
    out = {k: v for k, v in spec.items() if k in ANNOTATION_KEYWORDS or k in ROOT_KEYWORDS}
    out.update(type="object", properties=out_props, required=required, additionalProperties=additional)
    return out


def _normalize_array(spec: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
    if "items" not in spec:
        raise SchemaError(path, "an array needs 'items'")
    min_items = _non_negative_int(spec, "minItems", path) or 0
    max_items = _non_negative_int(spec, "maxItems", path)
    if min_items > LIMITS["maxItems"]:
        raise SchemaError(path, f"minItems {min_items} is above the supported maximum {LIMITS['maxItems']} items")
    if max_items is None:
        max_items = max(DEFAULT_MAX_ITEMS, min_items)
        spec["maxItems"] = max_items
    if max_items > LIMITS["maxItems"]:
        raise SchemaError(path, f"maxItems {max_items} is above the supported {LIMITS['maxItems']}")
    if min_items > max_items:
        raise SchemaError(path, f"minItems {min_items} is greater than maxItems {max_items}")
    spec["items"] = _normalize(spec["items"], f"{path}[]", depth + 1)
    return spec
