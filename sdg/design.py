"""Row design across fields: the order rows write their top-level fields in, and the x-sdg keys
that relate one field to others.

- A `description` may name other top-level fields as `{field}` (`{{` and `}}` are literal
  braces): each row's prompt then carries that row's values for them (text_service.prompts).
- `expression` computes a field from others with Jinja2's sandbox; the model never writes it.
- `unique` keeps a field's value unique across the job.
- `greater_than`, `greater_or_equal`, `less_than`, `less_or_equal` order a field against
  another, for numbers and for date or date-time strings.

read_design() checks all of it at the door (a SchemaError names the field and the JSON pointer)
and owns the field order: what a field depends on is written first, sampled fields first of all,
schema order otherwise; a cycle is refused.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import jsonschema
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sdg.jsonrefs import escape
from sdg.schema import FRACTION_DIGITS, SchemaError

KEYWORD = "x-sdg"
ORDER_KEYS: dict[str, Callable[[Any, Any], bool]] = {
    "greater_than": operator.gt, "greater_or_equal": operator.ge, "less_than": operator.lt, "less_or_equal": operator.le,
}
DESIGN_KEYS = ("expression", "unique", *ORDER_KEYS)
ORDER_WORDS = {"greater_than": ">", "greater_or_equal": ">=", "less_than": "<", "less_or_equal": "<="}
MAX_EXPRESSION_CHARS = 2000
MAX_RESULT_CHARS = 100_000  # a string or list an expression builds
MAX_EXPONENT = 64
# `{name}` with a name-like inside; other braces ("{key,value}" in real descriptions) stay text.
_REFERENCE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w.-]*)\}")


def design_keys(spec: Any) -> dict[str, Any]:
    """The keys of an x-sdg object that read_design reads (the rest name a sampler)."""
    return {k: v for k, v in spec.items() if k in DESIGN_KEYS} if isinstance(spec, dict) else {}


def _pointer(name: str, *keys: str) -> str:
    return f"/properties/{escape(name)}" + "".join(f"/{escape(k)}" for k in keys)


# -- conditioned descriptions -------------------------------------------------------------------

def template_parts(text: str) -> list[tuple[str, str | None]]:
    """A description as (literal text, referenced field or None) pieces."""
    parts, last = [], 0
    for match in _REFERENCE.finditer(text):
        literal = text[last:match.start()] + ("" if match.group(1) is not None else match.group(0)[0])
        parts.append((literal, match.group(1)))
        last = match.end()
    parts.append((text[last:], None))
    return parts


def references(text: str) -> list[str]:
    return [name for _, name in template_parts(text) if name is not None]


def value_words(value: Any) -> str:
    """A value as a prompt writes it: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(text: str, values: dict[str, Any]) -> str:
    """A conditioned description with this row's known values; unknown ones stay `{field}`."""
    return "".join(literal + ("" if name is None else value_words(values[name]) if values.get(name) is not None else f"{{{name}}}")
                   for literal, name in template_parts(text))


# -- expressions ------------------------------------------------------------------------------

def _date(value: Any) -> dt.date:
    """A date from an ISO date or date-time string (or a date)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()


def _datetime(value: Any) -> dt.datetime:
    """A UTC date-time from an ISO date or date-time string (naive ones are UTC)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)


GLOBALS = {"date": _date, "datetime": _datetime, "min": min, "max": max, "abs": abs, "round": round}


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with `**` and repetition bounded so no expression runs away."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context, op, left, right):
        if op == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponents are at most {MAX_EXPONENT}")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_RESULT_CHARS:
                    raise SecurityError(f"results are at most {MAX_RESULT_CHARS} long")
        return super().call_binop(context, op, left, right)


_SANDBOX = _Sandbox()
_SANDBOX.globals.clear()
_SANDBOX.globals.update(GLOBALS)


@dataclass(frozen=True)
class Computed:
    """One computed field: its expression, the fields it reads, and how its result is cast."""

    name: str
    source: str
    needs: tuple[str, ...]
    kind: str  # string, integer, number or boolean
    function: Callable[..., Any] = field(repr=False, compare=False)
    validator: Any = field(repr=False, compare=False)  # of the field's own schema

    def value(self, row: dict[str, Any], names: tuple[str, ...]) -> Any:
        """The field's value for `row`; raises ValueError when it cannot be computed, cast, or
        does not satisfy the field's schema."""
        try:
            result = self.function(**{n: row.get(n) for n in names})
        except (TemplateError, ArithmeticError, TypeError, ValueError, AttributeError, OverflowError) as err:
            raise ValueError(f"{type(err).__name__}: {err}") from None
        value = cast(result, self.kind)
        if value is not None and not self.validator.is_valid(value):
            raise ValueError(f"{value!r} does not satisfy the field's schema")
        return value


def cast(value: Any, kind: str) -> Any:
    """An expression's result as a value of the field's type; raises ValueError when it is none."""
    if value is None:
        return None
    if kind == "string":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return value if isinstance(value, str) else json.dumps(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in ("integer", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        if kind == "integer":
            if float(value).is_integer():
                return int(value)
            raise ValueError(f"{value!r} is not an integer")
        return round(float(value), FRACTION_DIGITS) + 0.0
    raise ValueError(f"{value!r} ({type(value).__name__}) is not of type {kind}")


# Expression nodes whose result is of one type, to refuse a type that never fits at the door.
_RESULT_KINDS = {nodes.Concat: "string", nodes.Compare: "boolean", nodes.Not: "boolean", nodes.And: None, nodes.Or: None}


def read_expression(name: str, source: Any, kind: str, fields: list[str], validator: Any) -> Computed:
    pointer = _pointer(name, KEYWORD, "expression")
    if not isinstance(source, str) or not source.strip():
        raise SchemaError(name, "expression must be a non-empty string", pointer)
    if len(source) > MAX_EXPRESSION_CHARS:
        raise SchemaError(name, f"expression is {len(source)} characters, past the limit of {MAX_EXPRESSION_CHARS}", pointer)
    try:
        parser = Parser(_SANDBOX, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the expression", parser.stream.current.lineno)
        function = _SANDBOX.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as err:
        raise SchemaError(name, f"expression is not valid: {err.message}", pointer) from None
    names = list(dict.fromkeys(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"))
    unknown = [n for n in names if n not in fields and n not in GLOBALS]
    if unknown:
        raise SchemaError(name, f"expression names {unknown[0]!r}, which is no top-level field (nor one of {', '.join(GLOBALS)})", pointer)
    if name in names:
        raise SchemaError(name, f"expression reads its own field: {name} -> {name}", pointer)
    result = _RESULT_KINDS.get(type(tree), "any")
    if isinstance(tree, nodes.Const):
        try:
            cast(tree.value, kind)
        except ValueError as err:
            raise SchemaError(name, f"expression's value {err}", pointer) from None
    elif result not in ("any", None, kind) and kind != "string":  # a string field takes any result's text
        raise SchemaError(name, f"expression gives a {result}, which never fits this {kind} field", pointer)
    return Computed(name, source, tuple(n for n in names if n in fields), kind, function, validator)


# -- order constraints --------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderRule:
    """`name` <op> `other` in every row that holds both."""

    name: str
    key: str  # greater_than, ...
    other: str
    dates: str | None  # date or date-time: values compare as moments; None: as numbers

    def comparable(self, value: Any) -> Any:
        return _datetime(value) if self.dates else value

    def holds(self, row: dict[str, Any]) -> bool:
        a, b = row.get(self.name), row.get(self.other)
        if a is None or b is None:
            return True
        try:
            return ORDER_KEYS[self.key](self.comparable(a), self.comparable(b))
        except (TypeError, ValueError):
            return False

    def words(self) -> str:
        return f"{self.name} {ORDER_WORDS[self.key]} {self.other}"


def _order_kind(node: dict[str, Any]) -> str | None:
    """number, date or date-time: what an order constraint compares a field as; None: not orderable."""
    types = node.get("type")
    types = {t for t in (types if isinstance(types, list) else [types]) if t != "null"}
    if types and types <= {"integer", "number"}:
        return "number"
    if types == {"string"} and node.get("format") in ("date", "date-time"):
        return node["format"]
    return None


# -- the design -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowDesign:
    """How a schema's top-level fields relate: the order rows write them in, the conditioned
    descriptions, computed fields, unique fields and order rules."""

    order: tuple[str, ...]
    conditioned: dict[str, str] = field(default_factory=dict)  # field -> its description, with {field}s
    computed: dict[str, Computed] = field(default_factory=dict)  # in the order they are computed
    unique: tuple[str, ...] = ()
    rules: tuple[OrderRule, ...] = ()
    capacity: dict[str, int] = field(default_factory=dict)  # unique field -> how many values it can take

    def __bool__(self) -> bool:
        return bool(self.conditioned or self.computed or self.unique or self.rules)

    def known(self, values: dict[str, Any]) -> dict[str, Any]:
        """A row's values known before decoding (sampled, given), with the computed fields that
        read only those."""
        known = dict(values)
        for name, computed in self.computed.items():
            if all(known.get(n) is not None for n in computed.needs):
                try:
                    known[name] = computed.value(known, computed.needs)
                except ValueError:
                    pass  # the row is checked again once decoded, and rejected there
        return known

    def complete(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The decoded row with its computed fields, in the schema's order; None when an
        expression cannot be computed or cast for it."""
        full = dict(row)
        for name, computed in self.computed.items():
            try:
                value = computed.value(full, computed.needs)
            except ValueError:
                return None
            if value is not None:
                full[name] = value
        return {n: full[n] for n in self.order if n in full} | {k: v for k, v in full.items() if k not in self.order}

    def broken_rule(self, row: dict[str, Any]) -> str | None:
        """The key of the first order rule `row` breaks (greater_than, ...), or None."""
        return next((rule.key for rule in self.rules if not rule.holds(row)), None)

    def unique_values(self, row: dict[str, Any]) -> dict[str, str]:
        """The row's unique fields' values, as keys to compare (absent and null ones left out)."""
        def key(value: Any) -> str:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            return json.dumps(float(value) if number else value, sort_keys=True, ensure_ascii=False)  # 5 and 5.0 are one value
        return {n: key(row[n]) for n in self.unique if row.get(n) is not None}

    def checked_rules(self, samplers: Any) -> int:
        """How many order rules are checked after decoding: the model writes one of their fields."""
        sampled = samplers.samplers if samplers else {}
        return sum(1 for rule in self.rules if rule.name not in sampled or rule.other not in sampled)

    def check_rows(self, num_rows: int) -> None:
        """Raises SchemaError when a unique field cannot take `num_rows` distinct values."""
        for name, count in self.capacity.items():
            if count < num_rows:
                raise SchemaError(name, f"is unique, but takes only {count} distinct values, fewer than the {num_rows} rows asked for",
                                  _pointer(name, KEYWORD, "unique"))

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order": list(self.order)}
        if self.conditioned:
            out["conditioned"] = {name: references(text) for name, text in self.conditioned.items()}
        if self.computed:
            out["computed"] = {name: c.source for name, c in self.computed.items()}
        if self.unique:
            out["unique"] = list(self.unique)
        if self.rules:
            out["order_rules"] = [rule.words() for rule in self.rules]
        return out


@dataclass
class UniqueLedger:
    """The values a job (or one call) has kept for its unique fields; admit() turns away a row
    that repeats one, and counts it by the field."""

    design: RowDesign
    taken: dict[str, set[str]] = field(default_factory=dict)
    collisions: Counter = field(default_factory=Counter)

    def admit(self, row: dict[str, Any]) -> bool:
        values = self.design.unique_values(row)
        clash = next((n for n, v in values.items() if v in self.taken.get(n, ())), None)
        if clash is not None:
            self.collisions[clash] += 1
            return False
        for n, v in values.items():
            self.taken.setdefault(n, set()).add(v)
        return True

    def manifest(self) -> dict[str, Any]:
        return {name: {"collisions": self.collisions[name]} for name in self.design.unique}


def _capacity(node: dict[str, Any], sampled: Any) -> int | None:
    """How many distinct values a field can take, where that is small enough to matter."""
    values = getattr(sampled, "values", None)
    if isinstance(values, list):
        return len({json.dumps(v, sort_keys=True) for v in values})
    if "enum" in node:
        return len(node["enum"])
    if "const" in node:
        return 1
    types = node.get("type")
    if types == "boolean":
        return 2
    if types == "integer" and "minimum" in node and "maximum" in node:
        return max(0, math.floor(node["maximum"]) - math.ceil(node["minimum"]) + 1)
    return None


def read_design(properties: dict[str, dict[str, Any]], specs: dict[str, Any], sampled: dict[str, Any],
                resolve: Callable[[dict[str, Any]], dict[str, Any]], defs: dict[str, Any]) -> RowDesign:
    """The design of a root object: `properties` its normalized top-level nodes, in schema order,
    and `defs` their $defs; `specs` their x-sdg objects as submitted; `sampled` the fields
    samplers draw (sdg.samplers). Raises SchemaError."""
    fields = list(properties)
    needs: dict[str, list[str]] = {name: [] for name in fields}
    conditioned, computed, unique, rules, capacity = {}, {}, [], [], {}
    for name, node in properties.items():
        description = resolve(node).get("description")
        if isinstance(description, str):
            named = references(description)
            for ref in named:
                if ref not in properties:
                    raise SchemaError(name, f"the description names {{{ref}}}, which is no top-level field (write {{{{ for a literal brace)",
                                      _pointer(name, "description"))
                if ref == name:
                    raise SchemaError(name, f"the description names its own field: {name} -> {name}", _pointer(name, "description"))
            if named:
                conditioned[name] = description
                needs[name] += named
    for name, spec in specs.items():
        keys = design_keys(spec)
        if name not in properties or not keys:
            continue
        node = resolve(properties[name])
        if "expression" in keys:
            if name in sampled:
                raise SchemaError(name, "expression computes the field, so it cannot also be sampled", _pointer(name, KEYWORD, "expression"))
            kind = _single_kind(node)
            if kind is None:
                raise SchemaError(name, "a computed field must be a string, integer, number or boolean of one type", _pointer(name, KEYWORD, "expression"))
            schema = {**properties[name], "$defs": defs} if defs else properties[name]
            validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            computed[name] = read_expression(name, keys["expression"], kind, fields, validator)
            needs[name] += computed[name].needs
        if "unique" in keys:
            if keys["unique"] is not True and keys["unique"] is not False:
                raise SchemaError(name, f"unique must be true or false, got {keys['unique']!r}", _pointer(name, KEYWORD, "unique"))
            if keys["unique"]:
                unique.append(name)
                count = _capacity(node, sampled.get(name))
                if count is not None:
                    capacity[name] = count
        for key in ORDER_KEYS:
            if key not in keys:
                continue
            other, pointer = keys[key], _pointer(name, KEYWORD, key)
            if not isinstance(other, str) or other not in properties or other == name:
                raise SchemaError(name, f"{key} must name another top-level field, got {other!r}", pointer)
            mine, theirs = _order_kind(node), _order_kind(resolve(properties[other]))
            if mine is None:
                raise SchemaError(name, f"{key} orders numbers and date or date-time strings; {name} is neither", pointer)
            if mine != theirs:
                raise SchemaError(name, f"{key} compares {name} ({mine}) with {other} ({theirs or 'not orderable'}): they must be of one kind", pointer)
            rules.append(OrderRule(name, key, other, None if mine == "number" else mine))
            needs[name].append(other)
    order = _write_order(fields, needs, set(sampled))
    computed = {n: computed[n] for n in order if n in computed}
    return RowDesign(tuple(order), conditioned, computed, tuple(unique), tuple(rules), capacity)


def _single_kind(node: dict[str, Any]) -> str | None:
    if "anyOf" in node:
        return None
    types = node.get("type")
    types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"]
    return types[0] if len(types) == 1 and types[0] in ("string", "integer", "number", "boolean") else None


def _write_order(fields: list[str], needs: dict[str, list[str]], sampled: set[str]) -> list[str]:
    """Fields with what each needs first; sampled fields first, schema order otherwise. Raises
    SchemaError naming a cycle."""
    rank = {name: (name not in sampled, i) for i, name in enumerate(fields)}
    waiting = {name: set(needs[name]) for name in fields}
    ready = [rank[name] + (name,) for name in fields if not waiting[name]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        *_, name = heapq.heappop(ready)
        order.append(name)
        for other in fields:
            if name in waiting[other]:
                waiting[other].discard(name)
                if not waiting[other]:
                    heapq.heappush(ready, rank[other] + (other,))
    if len(order) < len(fields):
        cycle = _cycle({n: w for n, w in waiting.items() if w})
        raise SchemaError(cycle[0], f"fields depend on each other in a cycle: {' -> '.join(cycle)}", _pointer(cycle[0]))
    return order


def _cycle(waiting: dict[str, set[str]]) -> list[str]:
    """One cycle among fields that all still wait on others, as `a -> b -> a`."""
    path, name = [], next(iter(waiting))
    while name not in path:
        path.append(name)
        name = sorted(waiting[name])[0]
    return path[path.index(name):] + [name]
