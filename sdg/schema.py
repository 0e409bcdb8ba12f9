"""The schema language at the door: SDG shorthand and JSON Schema (draft-04 to 2020-12, as
Pydantic, OpenAPI and public schema collections write it), read into one normalized JSON Schema
that the grammar is built from and every generated row validates against.

Accepted forms:
- shorthand: ``{"name": "string", "age": "int", "price": "float"}`` (plus bool, date, datetime,
  email, uuid), and field names mapped to JSON Schema properties, mixed freely;
- a JSON Schema: any root with a JSON Schema keyword (`type`, `properties`, `$defs`, `$ref`,
  `allOf`, ...) whose other keys are not shorthand fields.

KEYWORDS says what becomes of every JSON Schema keyword: it shapes the grammar, it is checked
after decoding (rows are validated against the schema as submitted), it is an annotation, or it
is refused with the JSON pointer of the keyword and the reason. Vendor keywords (`x-...`, and
any name no draft defines) are annotations, listed in RowSchema.ignored. The normalized form is
described in docs/SCHEMAS.md; this module is pure Python, so the gateway checks at the door
without torch.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import jsonschema
import regex

from sdg.allof import MergeError, merge_all
from sdg.jsonrefs import SCHEMA_LISTS, SCHEMA_MAPS, SCHEMA_VALUED, Document, RefError, escape
from sdg.patterns import PatternError, read_pattern

if TYPE_CHECKING:
    from sdg.design import RowDesign
    from sdg.samplers import FieldSamplers

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
# Formats the grammar spells out, so every value is a real one; `aliases` are written as the
# format they map to (an IRI as a URI, an IDN e-mail as an e-mail).
FORMATS = ("date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uuid", "byte",
           "json-pointer", "relative-json-pointer", "regex")
FORMAT_ALIASES = {"uri-reference": "uri", "iri": "uri", "iri-reference": "uri", "uri-template": "uri",
                  "idn-email": "email", "idn-hostname": "hostname"}
INTEGER_FORMATS = {"int8": 7, "int16": 15, "int32": 31, "int64": 63}

# Defaults that keep values loadable and rows short; written into the normalized schema so that
# schema.json says exactly what the rows obey.
DEFAULT_MAX_LENGTH = 48
DEFAULT_MAX_ITEMS = 4
DEFAULT_EXTRA_KEYS = 3  # keys an object that allows extra keys gets at most, past its listed ones
RECURSION_DEPTH = 3  # how many times a recursive $ref nests inside itself
# What a schema may ask for. Set from measured grammar compile time and memory (docs/SCHEMAS.md).
LIMITS = {"bytes": 1_000_000, "properties": 2_000, "depth": 16, "enum": 10_000, "maxLength": 100_000, "maxItems": 1_000}
# Integers and numbers stay within what int64, float64 and spreadsheets hold exactly.
MAX_ABS_NUMBER = 10**15
# Numbers without bounds have at most INT_DIGITS integer digits; any number, at most FRACTION_DIGITS decimals.
INT_DIGITS = 9
FRACTION_DIGITS = 4
# Characters rows' strings hold (EBNF classes, and Python regex ones too): printable, no quote or
# backslash (so no escapes are needed), no C0/C1 controls, no Unicode line separators, no
# surrogates (they are not valid UTF-8). Space is excluded at the ends.
STRING_CHAR = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]'
STRING_EDGE = r'[^"\\\x00-\x20\x7f-\x9f\u2028\u2029\ud800-\udfff]'
_WRITABLE = re.compile(rf"(?s)\A(?:{STRING_EDGE}(?:{STRING_CHAR}*{STRING_EDGE})?)?\Z")


def writable_string(text: str) -> bool:
    """Whether rows can hold `text` as a plain string (no quotes, escapes or edge spaces)."""
    return bool(_WRITABLE.match(text))


class Handling(Enum):
    GRAMMAR = "shapes the grammar"
    CHECKED = "checked after decoding"
    ANNOTATION = "annotation, no effect on values"
    REFUSED = "refused"


G, C, A, R = Handling.GRAMMAR, Handling.CHECKED, Handling.ANNOTATION, Handling.REFUSED
# Every keyword of JSON Schema 2020-12, plus draft-07's `definitions`, `dependencies` and
# `additionalItems`, draft-04's `id`, and 2019-09's recursive references.
KEYWORDS: dict[str, Handling] = {
    # core
    "$schema": A, "$id": A, "id": A, "$comment": A, "$vocabulary": A, "$anchor": G, "$dynamicAnchor": G,
    "$ref": G, "$defs": G, "definitions": G, "$dynamicRef": R, "$recursiveRef": R, "$recursiveAnchor": A,
    # applicators
    "allOf": G, "anyOf": G, "oneOf": G, "not": C, "if": C, "then": C, "else": C, "dependentSchemas": C,
    "prefixItems": G, "items": G, "additionalItems": G, "contains": G, "properties": G, "patternProperties": G,
    "additionalProperties": G, "propertyNames": G, "dependencies": G,
    "unevaluatedItems": C, "unevaluatedProperties": C,
    # validation
    "type": G, "enum": G, "const": G, "multipleOf": G, "maximum": G, "exclusiveMaximum": G, "minimum": G,
    "exclusiveMinimum": G, "maxLength": G, "minLength": G, "pattern": G, "maxItems": G, "minItems": G,
    "uniqueItems": C, "maxContains": C, "minContains": C, "maxProperties": G, "minProperties": G, "required": G,
    "dependentRequired": G,
    # format, content, meta-data
    "format": G, "contentEncoding": A, "contentMediaType": A, "contentSchema": A,
    "title": A, "description": A, "default": A, "deprecated": A, "readOnly": A, "writeOnly": A, "examples": A,
}
WHY_REFUSED = {
    "$dynamicRef": "dynamic references depend on the evaluation path; use $ref",
    "$recursiveRef": "recursive references depend on the evaluation path; use $ref",
}
# Keywords that hold or name schemas without constraining the value beside them.
NOT_CONSTRAINTS = {"$ref", "$defs", "definitions", "$anchor", "$dynamicAnchor"}
# Annotations that ride along into the normalized schema (for the prompt and schema.json).
KEPT_ANNOTATIONS = ("title", "description", "examples", "default")
OBJECT_KEYWORDS = {"properties", "required", "additionalProperties", "patternProperties", "minProperties", "maxProperties",
                   "propertyNames", "dependentRequired", "dependencies"}
ARRAY_KEYWORDS = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains"}
STRING_KEYWORDS = {"minLength", "maxLength", "pattern"}
NUMBER_KEYWORDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
# A root with one of these, of the right JSON type, is read as JSON Schema rather than shorthand.
ROOT_MARKERS = {"properties": dict, "$schema": str, "$defs": dict, "definitions": dict, "$ref": str, "allOf": list,
                "anyOf": list, "oneOf": list, "items": (dict, bool, list), "prefixItems": list, "enum": list,
                "required": list, "additionalProperties": (dict, bool), "patternProperties": dict, "$id": str}


class SchemaError(ValueError):
    """A schema that cannot be honoured. `field` is a dotted path ("address.city", "tags[]");
    `pointer` the JSON pointer of the keyword at fault, when it says more than the field."""

    def __init__(self, field: str, reason: str, pointer: str = ""):
        self.field = field
        self.reason = reason
        self.pointer = pointer
        where = f" (at #{pointer})" if pointer else ""
        super().__init__(f"schema.{field}: {reason}{where}" if field else f"schema: {reason}{where}")


@dataclass(frozen=True)
class RowSchema:
    """A schema as read at the door."""

    schema: dict[str, Any]  # normalized: the grammar's source, and schema.json
    source: dict[str, Any]  # what rows are validated against: the schema as submitted, as JSON Schema
    submitted: Any  # the schema exactly as submitted
    shorthand: bool
    wrapped: bool  # the submitted root is not an object: each row is {"value": <instance>}
    recursion_depth: int | None  # set when a recursive $ref was unrolled to this depth
    checked: tuple[str, ...] = ()  # pointers of keywords checked after decoding
    ignored: tuple[str, ...] = ()  # pointers of vendor keywords and formats SDG does not know
    notes: tuple[str, ...] = ()  # what rows hold that the schema alone does not say
    samplers: FieldSamplers | None = None  # x-sdg: top-level fields drawn, not written
    design: RowDesign | None = None  # x-sdg and {field} references across top-level fields (sdg.design)

    @property
    def written(self) -> dict[str, Any]:
        """The normalized schema less its computed fields: what the model writes."""
        if not self.design or not self.design.computed:
            return self.schema
        computed = self.design.computed
        return {**self.schema, "properties": {n: v for n, v in self.schema["properties"].items() if n not in computed},
                "required": [n for n in self.schema.get("required", []) if n not in computed]}

    def known_values(self, seed: int, slot: int, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """A row's values known before decoding: sampled, given, and computed from those alone."""
        values = {**(self.samplers.values(seed, slot) if self.samplers else {}), **(given or {})}
        return self.design.known(values) if self.design else values

    def manifest(self) -> dict[str, Any]:
        """The account of the schema a job's manifest gives."""
        out: dict[str, Any] = {"form": "shorthand" if self.shorthand else "json_schema", "wrapped": self.wrapped}
        if self.recursion_depth is not None:
            out["recursion_depth"] = self.recursion_depth
        out.update(checked_after_decoding=list(self.checked), ignored=list(self.ignored), notes=list(self.notes))
        if self.samplers:
            out["sampled"] = self.samplers.manifest()
        if self.design:
            out["design"] = self.design.manifest()
        return out


def normalize_schema(schema: Any) -> dict[str, Any]:
    """The normalized JSON Schema of any accepted form, or SchemaError."""
    return read_schema(schema).schema


def read_schema(schema: Any) -> RowSchema:
    if isinstance(schema, str):
        raise SchemaError("", "expected a JSON object mapping field names to types, got a string")
    if not isinstance(schema, dict) or not schema:
        raise SchemaError("", "expected a non-empty JSON object mapping field names to types")
    size = len(json.dumps(schema))
    if size > LIMITS["bytes"]:
        raise SchemaError("", f"the schema is {size:,} bytes of JSON, {size - LIMITS['bytes']:,} over the limit of {LIMITS['bytes']:,}")
    shorthand = not is_json_schema(schema)
    if shorthand:
        properties = {name: _expand(spec, name) for name, spec in schema.items()}
        source = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    else:
        source = _expanded_document(schema)
    return _Reader(source, schema, shorthand).read()


def is_json_schema(schema: dict[str, Any]) -> bool:
    """A root is JSON Schema when it has a JSON Schema keyword and no key of it reads as a
    shorthand field (a name mapped to a type name): {"type": "boolean"} is a boolean schema,
    {"type": "boolean", "name": "string"} two fields."""
    markers = [key for key, kind in ROOT_MARKERS.items() if isinstance(schema.get(key), kind)]
    if isinstance(schema.get("type"), list) or schema.get("type") in TYPES:
        markers.append("type")
    if not markers:
        return False
    return not any(key not in KEYWORDS and isinstance(value, str) and value.lower() in SHORTHAND for key, value in schema.items())


def _expand(spec: Any, field: str) -> Any:
    """A shorthand type name as its JSON Schema."""
    if isinstance(spec, str):
        if spec.lower() not in SHORTHAND:
            raise SchemaError(field, f"unknown type {spec!r}; expected one of {', '.join(SHORTHAND)} or a JSON Schema object")
        return dict(SHORTHAND[spec.lower()])
    if not isinstance(spec, dict):
        raise SchemaError(field, f"expected a type name or a JSON Schema object, got {type(spec).__name__}")
    return _expanded_document(spec)


def _expanded_document(schema: Any) -> Any:
    """The schema with shorthand type names where a schema goes ({"properties": {"age": "int"}},
    {"items": "string"}) written as JSON Schema, so that jsonschema can validate against it."""
    if isinstance(schema, str) and schema.lower() in SHORTHAND:
        return dict(SHORTHAND[schema.lower()])
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key, value in schema.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _expanded_document(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_expanded_document(sub) for sub in value]
        elif key in SCHEMA_VALUED:
            out[key] = _expanded_document(value)
    return out


class _Never(Exception):
    """A schema no value satisfies (false, or whose every branch is false). `why` says what
    makes it so, for the refusal when nothing above can leave it out."""

    def __init__(self, why: SchemaError | None = None):
        super().__init__(str(why) if why else "no value satisfies this schema")
        self.why = why


class _Unmergeable(SchemaError):
    """An allOf no value satisfies: refused, unless it is one branch of a union, which is dropped."""


@dataclass
class _At:
    """Where a schema sits: its JSON pointer in the submitted document, and the field path."""

    pointer: str
    field: str

    def key(self, keyword: str) -> str:
        return f"{self.pointer}/{escape(keyword)}"

    def into(self, keyword: str, name: str | int | None = None, field: str | None = None) -> _At:
        pointer = self.key(keyword) + ("" if name is None else f"/{escape(str(name))}")
        return _At(pointer, self.field if field is None else field)

    def error(self, reason: str, keyword: str | None = None) -> SchemaError:
        return SchemaError(self.field, reason, self.key(keyword) if keyword else self.pointer)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass
class _Reader:
    source: dict[str, Any]
    submitted: Any
    shorthand: bool
    defs: dict[str, Any] = field(default_factory=dict)
    def_names: dict[str, str] = field(default_factory=dict)  # a target's pointer -> its def's name
    checked: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    merging: list[str] = field(default_factory=list)
    listed_only: list[str] = field(default_factory=list)  # objects that may hold more keys than they list
    never: dict[str, _Never] = field(default_factory=dict)  # why a def no value satisfies does not
    inlining: list[str] = field(default_factory=list)  # $ref targets an allOf merge is taking in

    def __post_init__(self) -> None:
        dialect = self.source.get("$schema", "")
        self.draft4 = isinstance(dialect, str) and "draft-04" in dialect
        self.document = Document(self.source, self.draft4)

    def read(self) -> RowSchema:
        root_at = _At("", "")
        try:
            root = self.node(self.source, root_at)
        except _Never as never:
            raise never.why or SchemaError("", "no value satisfies this schema (it is false, or every branch of it is)") from None
        if self.listed_only:
            self.notes.append(
                f"additionalProperties is true or absent at {', '.join(dict.fromkeys(self.listed_only))}: rows hold the listed properties only"
            )
        defs, root, depth = _unroll_recursion(self.defs, root)
        root = _object_union(_inline_root(root, defs), defs)
        wrapped = not _is_object(root)
        if wrapped:
            self.notes.append("the schema's root is not an object: each row is {\"value\": ...}, and its value validates against the schema")
            root = {"type": "object", "properties": {"value": root}, "required": ["value"], "additionalProperties": False}
        if self.shorthand and not root["properties"]:
            raise SchemaError("", "the schema has no fields")
        if defs:
            root = {**root, "$defs": defs}
        _check_size(root)
        self._check_source()
        samplers = self._samplers(root, wrapped)
        design = None if wrapped else self._design(root, samplers)
        if design is not None:
            # Sampled fields first, and what a field depends on before it, so the model writes
            # every other field after the values it reads.
            order, sampled = list(design.order), samplers.samplers if samplers else {}
            first = [name for name in root["properties"] if name in sampled]
            if first and first + [n for n in root["properties"] if n not in sampled] != list(root["properties"]):
                self.notes.append(f"sampled fields are written first: {', '.join(first)}")
            if order[len(first):] != [n for n in root["properties"] if n not in sampled]:
                self.notes.append(f"fields are written after the fields they depend on: {', '.join(order)}")
            if design.computed:
                self.notes.append(f"computed after the model writes the row, never by it: {', '.join(design.computed)}")
            root = {**root, "properties": {n: root["properties"][n] for n in order}, "required": [n for n in order if n in root["required"]]}
            if samplers and design.rules:
                samplers = samplers.ruled(design.rules)
            design = design or None
        return RowSchema(root, self.source, self.submitted, self.shorthand, wrapped, depth, tuple(self.checked), tuple(self.ignored),
                         tuple(self.notes), samplers, design)

    def _design(self, root: dict[str, Any], samplers: FieldSamplers | None) -> RowDesign | None:
        """The order and the cross-field x-sdg keys of the root object's own properties."""
        from sdg.design import read_design
        from sdg.samplers import KEYWORD as SAMPLER_KEYWORD

        properties = root.get("properties")
        if not isinstance(properties, dict) or not properties:
            return None
        submitted = self.source.get("properties") if isinstance(self.source, dict) else None
        specs = {n: p[SAMPLER_KEYWORD] for n, p in (submitted or {}).items() if isinstance(p, dict) and SAMPLER_KEYWORD in p}
        sampled = samplers.samplers if samplers else {}
        return read_design(properties, specs, sampled, lambda node: resolve(root, node), root.get("$defs", {}))

    def _samplers(self, root: dict[str, Any], wrapped: bool) -> FieldSamplers | None:
        """The x-sdg samplers of the root object's own properties; x-sdg anywhere else is refused."""
        from sdg.samplers import KEYWORD as SAMPLER_KEYWORD
        from sdg.samplers import FieldSamplers, SamplerError, draw_order, field_shape, pointer_of, read_sampler, sampler_specs

        properties = self.source.get("properties") if isinstance(self.source, dict) and not wrapped else None
        specs = sampler_specs(properties) if isinstance(properties, dict) else {}
        allowed = {f"/properties/{escape(name)}" for name, prop in (properties or {}).items() if isinstance(prop, dict) and SAMPLER_KEYWORD in prop}
        for pointer in _keyword_pointers(self.source, SAMPLER_KEYWORD):
            if pointer not in allowed:
                raise SchemaError("", "x-sdg is read on the root object's own properties only", f"{pointer}/{SAMPLER_KEYWORD}")
        samplers = {}
        self.ignored[:] = [p for p in self.ignored if p not in {pointer_of(name, "") for name in properties or {}}]
        for name, spec in specs.items():
            node = root["properties"].get(name)
            if node is None:
                continue  # no value satisfies its schema: rows leave it out (a note says so)
            try:
                shape = field_shape(name, resolve(root, node), root.get("$defs", {}), writable_string)
                samplers[name] = read_sampler(shape, spec, specs)
            except SamplerError as err:
                raise SchemaError(name, err.reason, pointer_of(name, err.key)) from None
        return FieldSamplers(draw_order(samplers)) if samplers else None

    def _check_source(self) -> None:
        """The submitted schema must be valid JSON Schema too: rows are validated against it."""
        cls = validator_class(self.source)
        try:
            cls.check_schema(self.source, format_checker=format_checker(cls))
        except jsonschema.SchemaError as err:
            pointer = "".join(f"/{escape(str(p))}" for p in err.absolute_path)
            raise SchemaError("", f"is not valid JSON Schema: {err.message}", pointer) from None

    # -- one schema -----------------------------------------------------------------------------

    def node(self, raw: Any, at: _At) -> dict[str, Any]:
        """The normalized node for the schema `raw`; raises _Never when no value satisfies it."""
        if raw is True or raw == {}:
            return {}
        if raw is False:
            raise _Never
        if isinstance(raw, str):
            if raw.lower() in SHORTHAND:
                return dict(SHORTHAND[raw.lower()])
            hint = " (a $ref is written {\"$ref\": ...})" if raw.startswith("#") else ""
            raise at.error(f"unknown type {raw!r}; expected one of {', '.join(SHORTHAND)} or a JSON Schema object{hint}")
        if not isinstance(raw, dict):
            raise at.error(f"expected a JSON Schema object, got {type(raw).__name__}")
        self._check_keywords(raw, at)
        if "$ref" in raw:
            return self._ref(raw, at)
        if "allOf" in raw:
            merged, inlined = self._merged(raw, at)
            again = [p for p in inlined if p in self.inlining]
            if again:  # a def nested in itself through allOf: here it is the def, its siblings checked
                self.checked.append(at.key("allOf"))
                return self._def(*self._target_at(again[0]), at)
            self.inlining.extend(inlined)
            try:
                return self.node(merged, at)
            finally:
                del self.inlining[len(self.inlining) - len(inlined):]
        if "anyOf" in raw or "oneOf" in raw:
            return self._union(raw, at)
        if "enum" in raw or "const" in raw:
            return self._enum(raw, at)
        return self._typed(raw, at)

    def _check_keywords(self, raw: dict[str, Any], at: _At) -> None:
        for key in raw:
            handling = KEYWORDS.get(key)
            if handling is None:
                close = _misspelt(key)
                if close:
                    raise at.error(f"unknown keyword {key!r} (did you mean {close!r}?)", key)
                self.ignored.append(at.key(key))
            elif handling is R:
                raise at.error(f"{key} is not supported: {WHY_REFUSED[key]}", key)
            elif handling is C:
                self.checked.append(at.key(key))

    def _ref(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        constraints = {k: v for k, v in raw.items() if k not in NOT_CONSTRAINTS and KEYWORDS.get(k) in (G, C)}
        if constraints:  # 2019-09+: keywords beside $ref apply too
            return self.node({"allOf": [{"$ref": raw["$ref"]}], **{k: v for k, v in raw.items() if k != "$ref"}}, at)
        return {**self._def(*self._target(raw["$ref"], at), at), **_annotations(raw)}

    def _target_at(self, pointer: str) -> tuple[Any, str]:
        """The schema at a pointer of the whole document (not of an embedded resource)."""
        target, _ = self.document.resolve("#" + pointer, "")
        return target, pointer

    def _def(self, target: Any, pointer: str, at: _At) -> dict[str, Any]:
        """A $ref to the def of the schema at `pointer`, normalized once."""
        name = self.def_names.get(pointer)
        if name is None:
            name = self.def_names[pointer] = _def_name(pointer, self.defs)
            self.defs[name] = None  # taken, so that a recursive $ref finds it while it is read
            try:
                self.defs[name] = self.node(target, _At(pointer, at.field))
            except _Never as never:
                self.defs[name] = _NEVER
                self.never[name] = never
        if self.defs[name] is _NEVER:
            raise self.never[name]
        return {"$ref": f"#/$defs/{name}"}

    def _target(self, ref: Any, at: _At) -> tuple[Any, str]:
        if not isinstance(ref, str):
            raise at.error("$ref must be a string", "$ref")
        try:
            return self.document.resolve(ref, at.pointer)
        except RefError as err:
            raise at.error(str(err), "$ref") from None

    def _merged(self, raw: dict[str, Any], at: _At) -> tuple[dict[str, Any], list[str]]:
        """An allOf (and the keywords beside it) as one schema, and the pointers of the $ref
        targets it took in."""
        taken: list[str] = []
        branches, names = self._flattened(raw, at, "", taken)
        try:
            return merge_all(branches, names), taken
        except MergeError as err:
            raise _Unmergeable(at.field, f"allOf cannot be merged: {err}", at.key("allOf")) from None

    def _flattened(self, raw: Any, at: _At, label: str, taken: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """The branches of an allOf, with each top-level $ref and nested allOf followed."""
        if raw is True:
            return [], []
        if raw is False:
            raise _Never
        if not isinstance(raw, dict):
            raise at.error("allOf branches must be JSON Schema objects", "allOf")
        own = {k: v for k, v in raw.items() if k not in ("allOf", "$ref")}
        branches, names = [own], [label or "the schema"]
        if "$ref" in raw:
            target, pointer = self._target(raw["$ref"], at)
            if pointer in self.merging:
                raise at.error("allOf refers back to itself through $ref", "$ref")
            self.merging.append(pointer)
            taken.append(pointer)
            try:
                more, more_names = self._flattened(target, _At(pointer, at.field), f"$ref {raw['$ref']}", taken)
            finally:
                self.merging.pop()
            branches, names = branches + more, names + more_names
        for i, branch in enumerate(raw.get("allOf") or []):
            more, more_names = self._flattened(branch, at.into("allOf", i), f"{label + ' ' if label else ''}allOf/{i}".strip(), taken)
            branches, names = branches + more, names + more_names
        return branches, names

    def _union(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        # oneOf is generated as alternatives; a row that matches two is caught after decoding.
        keyword = "oneOf" if "oneOf" in raw else "anyOf"
        if keyword == "oneOf":
            self.checked.append(at.key("oneOf"))
            if "anyOf" in raw:
                self.checked.append(at.key("anyOf"))
        alternatives = raw[keyword]
        if not isinstance(alternatives, list) or not alternatives:
            raise at.error(f"{keyword} must be a non-empty list", keyword)
        rest = {k: v for k, v in raw.items() if k not in ("anyOf", "oneOf")}
        constraints = {k: v for k, v in rest.items() if KEYWORDS.get(k) in (G, C) and k not in NOT_CONSTRAINTS}
        branches, never = [], None
        for i, alternative in enumerate(alternatives):
            branch_at = at.into(keyword, i)
            try:
                merged = {"allOf": [constraints, alternative]} if constraints else alternative
                branches.append(self.node(merged, branch_at))
            except _Never as err:
                never = never or err
            except _Unmergeable as err:  # no value satisfies this branch: the others may do
                never = never or _Never(err)
        if not branches:
            raise never or _Never()
        flat = []
        for branch in branches:
            for b in (branch["anyOf"] if set(branch) == {"anyOf"} else [branch]):
                if b not in flat:
                    flat.append(b)
        if len(flat) == 1:
            return {**flat[0], **_annotations(rest)}
        if {} in flat:  # anything at all, whatever the other branches
            return {**_annotations(rest)}
        return {"anyOf": flat, **_annotations(rest)}

    def _enum(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        if "enum" in raw:
            values = raw["enum"]
            if not isinstance(values, list) or not values:
                raise at.error("'enum' must be a non-empty list", "enum")
        else:
            values = [raw["const"]]
        if "const" in raw and "enum" in raw:
            values = [v for v in values if _same(v, raw["const"])]
        rest = {k: v for k, v in raw.items() if k not in ("enum", "const") and KEYWORDS.get(k) in (G, C)}
        if rest and "$ref" not in json.dumps(rest):
            check = jsonschema.Draft202012Validator({k: v for k, v in rest.items() if k not in ("$defs", "definitions")})
            values = [v for v in values if check.is_valid(v)]
        unique = []
        for value in values:
            if not any(_same(value, u) for u in unique):
                unique.append(value)
        if not unique:
            raise _Never(at.error("no value of 'enum'/'const' satisfies the schema's other keywords", "enum" if "enum" in raw else "const"))
        if len(unique) > LIMITS["enum"]:
            raise at.error(f"'enum' has {len(unique)} values, {len(unique) - LIMITS['enum']} over the limit of {LIMITS['enum']}", "enum")
        for value in unique:
            if isinstance(value, float) and not math.isfinite(value):
                raise at.error(f"enum value {value!r} is not JSON", "enum")
        out: dict[str, Any] = {"enum": unique}
        kinds = {_json_type(v) for v in unique}
        concrete = kinds - {"null"}
        if len(concrete) == 1:
            (kind,) = concrete
            out["type"] = [kind, "null"] if "null" in kinds else kind
        return {**out, **_annotations(raw)}

    # -- typed schemas ------------------------------------------------------------------------

    def _typed(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        types = self._types(raw, at)
        if not types:
            return {**_annotations(raw)}  # no type and nothing that implies one: any value
        concrete = [t for t in types if t != "null"]
        nullable = "null" in types
        if not concrete:
            return {"type": "null", **_annotations(raw)}
        nodes, never = [], None
        for kind in concrete:
            try:
                nodes.append(getattr(self, f"_{kind}")(raw, at))
            except _Never as err:
                never = err
        if not nodes:
            if nullable:
                return {"type": "null", **_annotations(raw)}
            raise never or _Never()
        if len(nodes) == 1:
            node = nodes[0]
            if nullable:
                node = {**node, "type": [node["type"], "null"]}
            return {**node, **_annotations(raw)}
        branches = nodes + ([{"type": "null"}] if nullable else [])
        return {"anyOf": branches, **_annotations(raw)}

    def _types(self, raw: dict[str, Any], at: _At) -> list[str]:
        declared = raw.get("type")
        if declared is None:
            return _implied_types(raw)
        listed = declared if isinstance(declared, list) else [declared]
        types = []
        for t in listed:
            if t not in TYPES:
                raise at.error(f"unknown type {t!r}; expected one of {', '.join(TYPES)}", "type")
            if t not in types:
                types.append(t)
        if "number" in types and "integer" in types:
            types.remove("integer")  # every integer is a number
        if not types:
            raise at.error("'type' must name at least one type", "type")
        return types

    def _string(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        low = _count(raw, "minLength", at)
        high = _count(raw, "maxLength", at)
        if low is not None and high is not None and low > high:
            raise at.error(f"minLength {low} is greater than maxLength {high}", "minLength")
        if low is not None and low > LIMITS["maxLength"]:
            raise at.error(f"minLength {low} is {low - LIMITS['maxLength']} over the supported {LIMITS['maxLength']}", "minLength")
        fmt = raw.get("format")
        if isinstance(fmt, str) and FORMAT_ALIASES.get(fmt, fmt) in FORMATS:
            out["format"] = fmt
        elif fmt is not None:
            self.ignored.append(at.key("format"))
        if "pattern" in raw:
            if not isinstance(raw["pattern"], str):
                raise at.error("'pattern' must be a string", "pattern")
            try:
                pattern = read_pattern(raw["pattern"])
            except PatternError as err:
                raise at.error(f"pattern {raw['pattern']!r} {err}", "pattern") from None
            if pattern.checked:
                self.checked.append(at.key("pattern"))
            out["pattern"] = raw["pattern"]
        if low:
            out["minLength"] = low
        if high is not None or ("format" not in out and "pattern" not in out):
            out["maxLength"] = min(high if high is not None else max(DEFAULT_MAX_LENGTH, low or 0), LIMITS["maxLength"])
        if ("format" in out or "pattern" in out) and (low or high is not None):
            self.checked.append(at.key("maxLength" if high is not None else "minLength"))
        return out

    def _integer(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        return self._numeric(raw, at, integer=True)

    def _number(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        return self._numeric(raw, at, integer=False)

    def _numeric(self, raw: dict[str, Any], at: _At, integer: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer" if integer else "number"}
        low, low_open = _bound(raw, "minimum", "exclusiveMinimum", at)
        high, high_open = _bound(raw, "maximum", "exclusiveMaximum", at)
        if low is not None and high is not None and (low > high or low == high and (low_open or high_open)):
            shown = "no value lies between" if low == high else "minimum {} is greater than maximum".format(f"{low:g}")
            raise at.error(f"{shown} {high:g}" if low != high else f"{shown} {low:g} and {high:g}", "minimum" if "minimum" in raw else "exclusiveMinimum")
        for bound, keyword in ((low, "minimum"), (high, "maximum")):
            if bound is not None and (bound > MAX_ABS_NUMBER if keyword == "minimum" else bound < -MAX_ABS_NUMBER):
                raise at.error(f"{keyword} {bound:g} is outside the supported range ±{MAX_ABS_NUMBER:.0e}", keyword)
        bits = INTEGER_FORMATS.get(raw.get("format")) if integer else None
        if bits:  # OpenAPI's int32 and friends: a range validators do not check, but readers expect
            low, low_open = (max(low, -(2**bits)), low_open) if low is not None else (-(2**bits), False)
            high, high_open = (min(high, 2**bits - 1), high_open) if high is not None else (2**bits - 1, False)
        # Values stay within ±MAX_ABS_NUMBER: a narrower range than a schema's own is still valid.
        if low is not None and low < -MAX_ABS_NUMBER:
            low, low_open = -MAX_ABS_NUMBER, False
        if high is not None and high > MAX_ABS_NUMBER:
            high, high_open = MAX_ABS_NUMBER, False
        if integer:
            if low is not None:
                low = math.floor(low) + 1 if low_open and low == math.floor(low) else math.ceil(low)
                out["minimum"] = int(low)
            if high is not None:
                high = math.ceil(high) - 1 if high_open and high == math.ceil(high) else math.floor(high)
                out["maximum"] = int(high)
            if low is not None and high is not None and low > high:
                raise at.error(f"no integer lies between {raw.get('minimum', raw.get('exclusiveMinimum'))} and {raw.get('maximum', raw.get('exclusiveMaximum'))}", "minimum" if "minimum" in raw else "exclusiveMinimum")
        else:
            if low is not None:
                out["exclusiveMinimum" if low_open else "minimum"] = low
            if high is not None:
                out["exclusiveMaximum" if high_open else "maximum"] = high
        if "multipleOf" in raw:
            step = raw["multipleOf"]
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 or not math.isfinite(step):
                raise at.error(f"'multipleOf' must be a positive number, got {step!r}", "multipleOf")
            out["multipleOf"] = step
            self.checked.append(at.key("multipleOf"))  # the grammar honours it where it can
        return out

    def _boolean(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        return {"type": "boolean"}

    def _null(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        return {"type": "null"}

    def _object(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        listed = raw.get("properties", {})
        if not isinstance(listed, dict):
            raise at.error("'properties' must be an object", "properties")
        # Shorthand's objects require every property, nested ones too; JSON Schema's, only those listed.
        required = raw.get("required", list(listed) if self.shorthand else [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise at.error("'required' must be a list of property names", "required")
        patterns = raw.get("patternProperties") or {}
        if not isinstance(patterns, dict):
            raise at.error("'patternProperties' must be an object", "patternProperties")
        additional = raw.get("additionalProperties", True)
        properties: dict[str, Any] = {}
        names = list(listed) + [r for r in required if r not in listed]
        for name in names:
            sub_at = at.into("properties", name, _join(at.field, name)) if name in listed else at.into("required")
            schemas = [listed[name]] if name in listed else []
            schemas += [schema for pattern, schema in patterns.items() if _search(pattern, name)]
            if not schemas:
                if additional is False:
                    raise _Never(at.error(f"'required' names {name!r}, which is not in 'properties' and additionalProperties is false", "required"))
                schemas = [additional]
            sub = schemas[0] if len(schemas) == 1 else {"allOf": schemas}
            if isinstance(sub, dict) and sub and name not in listed:
                sub = dict(sub)
            try:
                properties[name] = self.node(sub, sub_at)
            except _Never as never:
                if name in required:  # then no object satisfies this one: what holds it may leave it out
                    raise _Never(never.why or sub_at.error(f"property {name!r} is required, but no value satisfies its schema")) from None
                self.notes.append(f"no value satisfies the schema of {_join(at.field, name) or name!r} (#{sub_at.pointer}): rows leave it out")
        out: dict[str, Any] = {"type": "object", "properties": properties, "required": [n for n in names if n in required]}
        extras = self._extras(raw, at, additional, patterns, properties)
        out.update(extras)
        key_names = self._property_names(raw, at, properties, extras)
        if key_names is not None:
            out["propertyNames"] = key_names
        low = _count(raw, "minProperties", at)
        high = _count(raw, "maxProperties", at)
        open_ended = extras["additionalProperties"] is not False or "patternProperties" in extras
        if high is not None and len(out["required"]) > high:
            raise at.error(f"{len(out['required'])} properties are required, but maxProperties is {high}", "maxProperties")
        if low is not None and low > len(properties) and not open_ended:
            raise at.error(f"minProperties {low} is more than the {len(properties)} properties allowed", "minProperties")
        if low is not None and high is not None and low > high:
            raise at.error(f"minProperties {low} is greater than maxProperties {high}", "minProperties")
        if open_ended:
            high = min(high, len(properties) + DEFAULT_EXTRA_KEYS + (low or 0)) if high is not None else len(properties) + max(DEFAULT_EXTRA_KEYS, low or 0)
        if low:
            out["minProperties"] = low
        if high is not None and (open_ended or high < len(properties)):
            out["maxProperties"] = high
        dependent = _dependent_required(raw, at, properties, self.checked)
        if dependent:
            out["dependentRequired"] = dependent
        return out

    def _extras(self, raw, at: _At, additional: Any, patterns: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
        """What an object's keys beyond its listed properties may be: additionalProperties as a
        schema (any names), or the first patternProperties (names that follow its pattern)."""
        if isinstance(additional, dict) and additional:
            if patterns:
                self.checked.append(at.key("patternProperties"))  # extra names might match a pattern
            try:
                return {"additionalProperties": self.node(additional, at.into("additionalProperties"))}
            except _Never:
                return {"additionalProperties": False}
        if patterns:
            pattern, schema = next(iter(patterns.items()))
            if len(patterns) > 1:
                self.checked.append(at.key("patternProperties"))
            try:
                read_pattern(pattern)
                value = self.node(schema, at.into("patternProperties", pattern))
            except (PatternError, _Never):
                return {"additionalProperties": False}
            return {"additionalProperties": False, "patternProperties": {pattern: value}}
        if additional is False:
            return {"additionalProperties": False}
        if not properties:  # an object of any keys: free-form values
            return {"additionalProperties": {}}
        self.listed_only.append(f"#{at.pointer or '/'}")
        return {"additionalProperties": False}

    def _property_names(self, raw, at: _At, properties: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any] | None:
        """propertyNames as the names of extra keys, when it is an enum or a pattern that every
        listed property's name meets; otherwise it is checked after decoding."""
        if "propertyNames" not in raw:
            return None
        try:
            names = alternatives({"$defs": self.defs}, self.node(raw["propertyNames"], at.into("propertyNames")))
        except _Never:
            names = []
        usable = len(names) == 1 and ("enum" in names[0] or "pattern" in names[0])
        if usable and "enum" in names[0]:
            keys = [k for k in names[0]["enum"] if isinstance(k, str)]
            pattern = next(iter(extras.get("patternProperties", {})), None)
            keys = [k for k in keys if pattern is None or _search(pattern, k)]
            usable = bool(keys) and all(name in keys for name in properties)
            names = [{"type": "string", "enum": keys}]
        elif usable:
            usable = all(_search(names[0]["pattern"], name) for name in properties)
        has_extras = extras.get("additionalProperties") is not False or "patternProperties" in extras
        if not usable or not has_extras:
            self.checked.append(at.key("propertyNames"))
            return None
        return {k: v for k, v in names[0].items() if k in ("type", "enum", "pattern")}

    def _array(self, raw: dict[str, Any], at: _At) -> dict[str, Any]:
        items = raw.get("items", True)
        prefix = raw.get("prefixItems")
        if isinstance(items, list):  # draft-04 to 2019-09 tuples: items is the prefix
            prefix, items = items, raw.get("additionalItems", True)
        out: dict[str, Any] = {"type": "array"}
        low = _count(raw, "minItems", at) or 0
        high = _count(raw, "maxItems", at)
        prefix_nodes = []
        for i, item in enumerate(prefix or []):
            try:
                prefix_nodes.append(self.node(item, at.into("prefixItems", i)))
            except _Never:
                high = i if high is None else min(high, i)
                break
        rest = None
        if "contains" in raw:  # items that are likely to satisfy contains; checked after decoding
            self.checked.append(at.key("contains"))
            items = {"anyOf": [{"allOf": [items, raw["contains"]]}, items]} if items not in (True, {}) else raw["contains"]
        try:
            rest = self.node(items, at.into("items", field=f"{at.field}[]"))
        except _Never:
            high = len(prefix_nodes) if high is None else min(high, len(prefix_nodes))
        if high is not None and low > high:
            allowed = f"maxItems {high}" if raw.get("maxItems") == high else f"the {high} items allowed"
            raise at.error(f"minItems {low} is greater than {allowed}", "minItems")
        if low > LIMITS["maxItems"]:
            raise at.error(f"minItems {low} is {low - LIMITS['maxItems']} over the supported {LIMITS['maxItems']}", "minItems")
        if prefix_nodes:
            out["prefixItems"] = prefix_nodes
        if rest is not None and (high is None or high > len(prefix_nodes)):
            out["items"] = rest
        if low:
            out["minItems"] = low
        default = max(DEFAULT_MAX_ITEMS, low) if rest is not None else len(prefix_nodes)
        out["maxItems"] = min(high if high is not None else default, LIMITS["maxItems"], max(default, low) if high is None else high)
        if raw.get("uniqueItems") is True:
            out["uniqueItems"] = True
        return out


def _inline_root(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A root that is a $ref to an object is that object itself (rows are its instances), and
    its def goes when nothing else refers to it."""
    while set(root) - set(KEPT_ANNOTATIONS) == {"$ref"}:
        name = root["$ref"].rsplit("/", 1)[1]
        if not _is_object(defs[name]):
            break
        root = defs[name]
        if not any(name in _refs(node) for other, node in defs.items() if other != name) and name not in _refs(root):
            del defs[name]
    return root


def _object_union(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A root that is a union of objects stays one, rather than being wrapped: the union is kept
    (the grammar follows it) and every branch's properties are listed beside it, each optional,
    so that the data files have one column per property any branch has."""
    if "anyOf" not in root:
        return root
    branches = [alternative for branch in root["anyOf"] for alternative in alternatives({"$defs": defs}, branch)]
    if not branches or not all(_is_object(b) for b in branches):
        return root
    properties: dict[str, Any] = {}
    for branch in branches:
        for name, sub in branch["properties"].items():
            properties[name] = sub if properties.get(name, sub) == sub else {}
    extra = any(b.get("additionalProperties") is not False or "patternProperties" in b for b in branches)
    return {"type": "object", "properties": properties, "required": [], "additionalProperties": {} if extra else False, **root}


_NEVER = {"not": {}}  # a def no value satisfies
_ROOT = "__root__"


def _is_object(node: dict[str, Any]) -> bool:
    return node.get("type") == "object"


def _annotations(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in KEPT_ANNOTATIONS if k in raw}


def _implied_types(raw: dict[str, Any]) -> list[str]:
    """The type a schema without `type` is generated as, from the keywords it has."""
    keys = set(raw)
    if keys & OBJECT_KEYWORDS:
        return ["object"]
    if keys & ARRAY_KEYWORDS:
        return ["array"]
    if keys & STRING_KEYWORDS or isinstance(raw.get("format"), str) and FORMAT_ALIASES.get(raw["format"], raw["format"]) in FORMATS:
        return ["string"]
    if keys & NUMBER_KEYWORDS:
        return ["number"]
    return []


def _count(raw: dict[str, Any], key: str, at: _At) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise at.error(f"'{key}' must be a non-negative integer, got {value!r}", key)
    return value


def _bound(raw: dict[str, Any], inclusive: str, exclusive: str, at: _At) -> tuple[float | None, bool]:
    """A lower or upper bound and whether it is exclusive, in draft-04's form (a boolean beside
    the bound) or draft-06's (the exclusive bound itself)."""
    value, open_ = raw.get(inclusive), False
    flag = raw.get(exclusive)
    if isinstance(flag, bool):
        open_ = flag and value is not None
    elif flag is not None:
        if not _finite(flag):
            raise at.error(f"'{exclusive}' must be a finite number, got {flag!r}", exclusive)
        if value is None or (flag >= value if inclusive == "minimum" else flag <= value):
            value, open_ = flag, True
    if value is not None and not _finite(value):
        raise at.error(f"'{inclusive}' must be a finite number, got {value!r}", inclusive)
    return value, open_


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _dependent_required(raw: dict[str, Any], at: _At, properties: dict[str, Any], checked: list[str]) -> dict[str, list[str]]:
    """dependentRequired (and draft-07's dependencies with lists), among listed properties: the
    generator writes a property's dependents with it. Schema dependencies are checked after."""
    out: dict[str, list[str]] = {}
    for keyword in ("dependentRequired", "dependencies"):
        value = raw.get(keyword)
        if not isinstance(value, dict):
            continue
        for name, needs in value.items():
            if isinstance(needs, list) and name in properties and all(n in properties for n in needs):
                out[name] = list(dict.fromkeys(out.get(name, []) + needs))
            else:
                checked.append(f"{at.key(keyword)}/{escape(name)}")
    return out


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) and type(a) is type(b) or (
        _json_type(a) == _json_type(b) == "number" and a == b
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _def_name(pointer: str, taken: dict[str, Any]) -> str:
    last = pointer.rsplit("/", 1)[-1] if pointer else "Root"
    base = re.sub(r"[^A-Za-z0-9_]", "_", last)[:40] or "Def"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _misspelt(key: str) -> str | None:
    """The constraint keyword `key` is probably a misspelling of, if any: the same letters in
    another case, or one edit away from a keyword of six letters or more."""
    if key.startswith(("x-", "_")):
        return None
    for keyword, handling in KEYWORDS.items():
        if handling not in (G, C):
            continue
        if keyword.lower() == key.lower() or len(keyword) >= 6 and _one_edit(key, keyword):
            return keyword
    return None


def _one_edit(a: str, b: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours turns a into b."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _keyword_pointers(node: Any, keyword: str, pointer: str = "") -> list[str]:
    """The pointers of the schemas in `node` that hold `keyword` (values of enum and the like skipped)."""
    found: list[str] = []
    if isinstance(node, dict):
        if keyword in node:
            found.append(pointer)
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples", keyword):
                found += _keyword_pointers(value, keyword, f"{pointer}/{escape(str(key))}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _keyword_pointers(value, keyword, f"{pointer}/{i}")
    return found


# -- recursion ------------------------------------------------------------------------------------


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref[len("#/$defs/"):])
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples"):
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of `graph` that hold a cycle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, edges = work[-1]
            for w in edges:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _unroll_recursion(defs: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    """Defs without cycles: a recursive def is copied RECURSION_DEPTH times, each copy's
    recursive refs pointing one level deeper; at the last level they are cut (an optional
    property left out, an array left empty, a branch dropped). Returns the defs, the root and
    the depth, or None when nothing recursed."""
    graph = {name: _refs(node) for name, node in {**defs, _ROOT: root}.items()}
    cycles = _cycles(graph)
    if not cycles:
        return defs, root, None
    out = {**defs, _ROOT: root}
    for component in cycles:
        names = {name: [name] + [_def_name(f"{name}_{level}", out | {n: 0 for n in component}) for level in range(1, RECURSION_DEPTH + 1)] for name in component}
        for level in range(RECURSION_DEPTH, -1, -1):
            for name in sorted(component):
                target = names[name][level]

                def deeper(ref: str, level=level) -> str | None:
                    if ref not in component:
                        return ref
                    if level == RECURSION_DEPTH or out.get(names[ref][level + 1]) is _NEVER:
                        return None
                    return names[ref][level + 1]

                try:
                    out[target] = _rewrite(copy.deepcopy(defs[name] if name != _ROOT else root), deeper)
                except _Never:
                    out[target] = _NEVER
        for name in component:
            if out[name] is _NEVER:
                shown = "the root" if name == _ROOT else f"$defs {name}"
                raise SchemaError("", f"recursive $ref through {shown} cannot end within {RECURSION_DEPTH} levels: every value of it nests another")
    unused = {name for name, node in out.items() if node is _NEVER}
    for name in unused:
        del out[name]
    return out, out.pop(_ROOT), RECURSION_DEPTH


def _rewrite(node: Any, deeper) -> Any:
    """`node` with each $ref renamed by deeper(name); None cuts it (raises _Never upwards until
    a property, item or branch can be left out)."""
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = deeper(ref[len("#/$defs/"):])
        if name is None:
            raise _Never
        return {**node, "$ref": f"#/$defs/{name}"}
    out = dict(node)
    if "anyOf" in node:
        branches = []
        for branch in node["anyOf"]:
            try:
                branches.append(_rewrite(branch, deeper))
            except _Never:
                continue
        if not branches:
            raise _Never
        out["anyOf"] = branches
        if len(branches) == 1:
            out = {**{k: v for k, v in out.items() if k != "anyOf"}, **branches[0]}
    if "properties" in node:
        properties = {}
        for name, sub in node["properties"].items():
            try:
                properties[name] = _rewrite(sub, deeper)
            except _Never:
                if name in node.get("required", []):
                    raise
        out["properties"] = properties
    for key in ("additionalProperties",):
        if isinstance(node.get(key), dict):
            try:
                out[key] = _rewrite(node[key], deeper)
            except _Never:
                out[key] = False
    if "patternProperties" in node:
        try:
            out["patternProperties"] = {p: _rewrite(s, deeper) for p, s in node["patternProperties"].items()}
        except _Never:
            del out["patternProperties"]
    if "prefixItems" in node:
        kept = []
        for item in node["prefixItems"]:
            try:
                kept.append(_rewrite(item, deeper))
            except _Never:
                break
        if len(kept) < node.get("minItems", 0):
            raise _Never
        out["prefixItems"] = kept
        if len(kept) < len(node["prefixItems"]):
            out.pop("items", None)
            out["maxItems"] = len(kept)
    if "items" in out and isinstance(node.get("items"), dict):
        try:
            out["items"] = _rewrite(node["items"], deeper)
        except _Never:
            del out["items"]
            fixed = len(out.get("prefixItems", []))
            if node.get("minItems", 0) > fixed:
                raise
            out["maxItems"] = fixed
    return out


def _check_size(root: dict[str, Any]) -> None:
    defs = root.get("$defs", {})
    properties = sum(_count_properties(node) for node in [root, *defs.values()])
    if properties > LIMITS["properties"]:
        raise SchemaError("", f"{properties:,} properties in all, {properties - LIMITS['properties']:,} over the limit of {LIMITS['properties']:,}")
    depth = nesting_depth(root)
    if depth > LIMITS["depth"]:
        raise SchemaError("", f"values nest {depth} levels deep, {depth - LIMITS['depth']} over the limit of {LIMITS['depth']}")


def _count_properties(node: Any) -> int:
    if isinstance(node, dict):
        own = len(node.get("properties", {})) if isinstance(node.get("properties"), dict) else 0
        return own + sum(_count_properties(v) for k, v in node.items() if k not in ("$defs", "enum", "const", "default", "examples"))
    if isinstance(node, list):
        return sum(_count_properties(v) for v in node)
    return 0


def nesting_depth(root: dict[str, Any]) -> int:
    """How deep the rows' objects and arrays can nest (refs followed; there are no cycles)."""
    defs = root.get("$defs", {})
    memo: dict[str, int] = {}

    def depth(node: Any) -> int:
        if not isinstance(node, dict):
            return 0
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/"):]
            if name not in memo:
                memo[name] = 0
                memo[name] = depth(defs.get(name))
            return memo[name]
        inner = [depth(v) for k, v in node.items() if k in ("items", "additionalProperties")]
        inner += [depth(v) for k in ("properties", "patternProperties") for v in node.get(k, {}).values()]
        inner += [depth(v) for k in ("anyOf", "prefixItems") for v in node.get(k, [])]
        own = 1 if node.get("type") in ("object", "array") or "properties" in node else 0
        return own + max(inner, default=0)

    return depth({k: v for k, v in root.items() if k != "$defs"})


def integer_bounds(spec: dict[str, Any]) -> tuple[int, int]:
    """Inclusive integer bounds of a normalized integer node, defaulting to ±MAX_ABS_NUMBER."""
    low, high = spec.get("minimum"), spec.get("maximum")
    return (int(low) if low is not None else -MAX_ABS_NUMBER, int(high) if high is not None else MAX_ABS_NUMBER)


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A normalized node with its $ref followed through the root's $defs (annotations beside
    the $ref are dropped)."""
    defs = schema.get("$defs", {})
    for _ in range(len(defs) + 1):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        node = defs[ref.rsplit("/", 1)[1]]
    raise SchemaError("", "a $ref chain loops")


def alternatives(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes a value of `node` may be: refs followed and unions flattened."""
    node = resolve(schema, node)
    if "anyOf" not in node:
        return [node]
    return [alt for branch in node["anyOf"] for alt in alternatives(schema, branch)]


def validator_class(schema: Any) -> type:
    """The jsonschema validator a schema's `$schema` names (draft-04 to 2020-12, as http or https
    URIs, with or without the empty fragment); 2020-12 when it names none."""
    uri = schema.get("$schema") if isinstance(schema, dict) else None
    if isinstance(uri, str):
        canonical = uri.replace("https://json-schema.org/draft-0", "http://json-schema.org/draft-0").rstrip("#")
        found = jsonschema.validators.validator_for({"$schema": canonical}, default=None) or jsonschema.validators.validator_for(
            {"$schema": canonical + "#"}, default=None
        )
        if found is not None:
            return found
    return jsonschema.Draft202012Validator


def format_checker(cls: type) -> jsonschema.FormatChecker:
    """The validator's format checker, with `regex` read as ECMA-262, JSON Schema's dialect
    (named groups `(?<name>...)`, which Python's re spells otherwise)."""
    checker = jsonschema.FormatChecker()
    checker.checkers = dict(cls.FORMAT_CHECKER.checkers)

    @checker.checks("regex", raises=(regex.error,))
    def _regex(instance: object) -> bool:
        return not isinstance(instance, str) or bool(regex.compile(instance))

    return checker
