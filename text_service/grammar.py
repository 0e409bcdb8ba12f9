"""RowGrammar: turns a normalized row schema (sdg.schema) into an xgrammar EBNF grammar whose every
sentence is one compact JSON object that validates against the schema.

The grammar is written here rather than taken from a generic JSON-schema converter because a
random-weight model will walk into every corner a generic grammar leaves open: raw control
characters, `21.3E7725966`, unbounded strings. Here:
- strings exclude control characters, quotes and backslashes; minLength is in the grammar, and
  maxLength is enforced beside it by text_service.bounds (token masks stay fast that way);
- numbers have no exponent and a bounded number of digits, and honour integer ranges exactly;
- formats (dates, times, e-mails, hosts, addresses, URIs, UUIDs...) are spelled out so that
  every sentence is a real value, and patterns are read by sdg.patterns;
- separators are fixed (`", "`, `": "`), so keys and punctuation can be jumped over;
- each $defs entry is one rule, so a def used in many places is compiled once; optional
  properties may be left out, in schema order, and extra keys come after the listed ones.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from typing import Any

from sdg.patterns import read_pattern
from sdg.schema import (DEFAULT_EXTRA_KEYS, FORMAT_ALIASES, FRACTION_DIGITS, INT_DIGITS, MAX_ABS_NUMBER, STRING_CHAR, STRING_EDGE,
                        SchemaError, integer_bounds)

# Unbounded integers stay within INT_DIGITS digits (sdg.schema), well inside int64.
UNBOUNDED_INT = f'"-"? ("0" | [1-9] [0-9]{{0,{INT_DIGITS - 1}}})'
# Names of extra keys (additionalProperties): identifiers, short.
EXTRA_KEY = '"\\"" [A-Za-z_] [A-Za-z0-9_]{0,15} "\\""'
# A free-form value ({}) nests at most this deep, each container holding at most FREE_ITEMS.
FREE_DEPTH = 2
FREE_ITEMS = 3
# Integer multiples of multipleOf written out one by one, up to this many.
MAX_MULTIPLES = 1000

MONTH_31 = '("01" | "03" | "05" | "07" | "08" | "10" | "12") "-" ([0] [1-9] | [12] [0-9] | "3" [01])'
MONTH_30 = '("04" | "06" | "09" | "11") "-" ([0] [1-9] | [12] [0-9] | "30")'
# February stops at 28 so that every year is valid without leap-year arithmetic in a grammar.
FEBRUARY = '"02" "-" ([0] [1-9] | "1" [0-9] | "2" [0-8])'
LABEL = "[a-z] ([a-z0-9-]{0,10} [a-z0-9])?"
OCTET = '("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9]? [0-9])'
HEX4 = "[0-9a-f]{1,4}"
BUILTIN_RULES = {
    "date_body": f'("19" | "20") [0-9] [0-9] "-" ({MONTH_31} | {MONTH_30} | {FEBRUARY})',
    "time_body": '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9]',
    "email_body": '[a-z] [a-z0-9]{0,11} ("." [a-z] [a-z0-9]{0,9})? "@" [a-z] [a-z0-9]{1,11} "." ("com" | "org" | "net" | "io" | "dev")',
    "uuid_body": '[0-9a-f]{8} "-" [0-9a-f]{4} "-" "4" [0-9a-f]{3} "-" [89ab] [0-9a-f]{3} "-" [0-9a-f]{12}',
    "host_body": f'({LABEL} "."){{0,2}} [a-z] [a-z0-9]{{1,11}} "." ("com" | "org" | "net" | "io" | "dev")',
    "ipv4_body": f'{OCTET} "." {OCTET} "." {OCTET} "." {OCTET}',
    "ipv6_body": f'{HEX4} (":" {HEX4}){{7}}',
    "uri_body": '"https://" host_body ("/" [a-z0-9_-]{1,12}){0,3} ("?" [a-z]{1,8} "=" [a-z0-9]{1,8})?',
    "duration_body": '"P" (([1-9] [0-9]? "Y")? ([1-9] [0-9]? "M")? [1-9] [0-9]? "D" | [1-9] [0-9]? "W") ("T" [1-9] [0-9]? "H" ([1-9] [0-9]? "M")?)?',
    "byte_body": '([A-Za-z0-9+/]{4}){0,8} ([A-Za-z0-9+/]{2} "==" | [A-Za-z0-9+/]{3} "=")?',
    "pointer_body": '("/" [a-z0-9_]{1,8}){0,4}',
    "regex_body": '"^"? [a-z]{1,8} ("[0-9]" ("+" | "*"))? "$"?',
}
# The body of each format's string, and the builtins it uses.
FORMAT_BODIES = {
    "date": ("date_body", ["date_body"]),
    "time": ('time_body "Z"', ["time_body"]),
    "date-time": ('date_body "T" time_body "Z"', ["date_body", "time_body"]),
    "duration": ("duration_body", ["duration_body"]),
    "email": ("email_body", ["email_body"]),
    "hostname": ("host_body", ["host_body"]),
    "ipv4": ("ipv4_body", ["ipv4_body"]),
    "ipv6": ("ipv6_body", ["ipv6_body"]),
    "uri": ("uri_body", ["uri_body", "host_body"]),
    "uuid": ("uuid_body", ["uuid_body"]),
    "byte": ("byte_body", ["byte_body"]),
    "json-pointer": ("pointer_body", ["pointer_body"]),
    "relative-json-pointer": ('[0-9] pointer_body', ["pointer_body"]),
    "regex": ("regex_body", ["regex_body"]),
}
# The longest texts the formats admit, in bytes, quotes included.
FORMAT_BYTES = {"date": 12, "time": 11, "date-time": 22, "duration": 26, "email": 42, "hostname": 60, "ipv4": 17,
                "ipv6": 41, "uri": 118, "uuid": 38, "byte": 38, "json-pointer": 38, "relative-json-pointer": 39, "regex": 16}
# A decimal: sign, INT_DIGITS, point, FRACTION_DIGITS; narrow ranges spelled digit by digit stay
# well under this.
NUMBER_BYTES = 32


def literal(text: str) -> str:
    """An EBNF string literal matching `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def json_text(value: Any) -> str:
    """A JSON value as SDG writes it: the fixed separators the grammar uses everywhere."""
    return json.dumps(value, ensure_ascii=False)


def int_range(low: int, high: int) -> str:
    """An EBNF expression for the decimal integers in [low, high], without leading zeros."""
    parts = []
    if low < 0:
        neg_high = -low
        neg_low = max(1, -high)
        if neg_low <= neg_high:
            parts.append(f'"-" ({_natural_range(neg_low, neg_high)})')
    if high >= 0:
        parts.append(_natural_range(max(0, low), high))
    return " | ".join(f"({p})" for p in parts)


def _natural_range(low: int, high: int) -> str:
    """Non-negative integers in [low, high] as alternatives of digit patterns, split by length."""
    alternatives = []
    for length in range(len(str(low)), len(str(high)) + 1):
        lo = max(low, 10 ** (length - 1) if length > 1 else 0)
        hi = min(high, 10**length - 1)
        if lo <= hi:
            alternatives += _same_length_range(str(lo), str(hi))
    return " | ".join(alternatives)


def _same_length_range(lo: str, hi: str) -> list[str]:
    """Digit patterns covering [lo, hi] for numbers of equal length (the classic range split)."""
    if len(lo) == 1:
        return [_digit_class(lo, hi)]
    if lo[0] == hi[0]:
        return [f'"{lo[0]}" ({alt})' for alt in [" | ".join(_same_length_range(lo[1:], hi[1:]))]]
    rest = len(lo) - 1
    out = []
    low_full = lo[1:] == "0" * rest
    high_full = hi[1:] == "9" * rest
    first_mid_lo = int(lo[0]) + (0 if low_full else 1)
    first_mid_hi = int(hi[0]) - (0 if high_full else 1)
    if not low_full:
        out.append(f'"{lo[0]}" ({" | ".join(_same_length_range(lo[1:], "9" * rest))})')
    if first_mid_lo <= first_mid_hi:
        out.append(f"{_digit_class(str(first_mid_lo), str(first_mid_hi))} [0-9]{{{rest}}}")
    if not high_full:
        out.append(f'"{hi[0]}" ({" | ".join(_same_length_range("0" * rest, hi[1:]))})')
    return out


def _digit_class(lo: str, hi: str) -> str:
    return f'"{lo}"' if lo == hi else f"[{lo}-{hi}]"


def node_types(node: dict[str, Any]) -> list[str]:
    types = node.get("type", [])
    return types if isinstance(types, list) else [types]


class RowGrammar:
    """The EBNF grammar for one normalized schema. `ebnf` is the text; `root` its start rule."""

    root = "root"

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        self.defs = schema.get("$defs", {})
        self._rules: dict[str, str] = {}
        self._def_rules: dict[str, str] = {}
        self._used_builtins: set[str] = set()
        self._rules[self.root] = ""  # first in the text
        self._rules[self.root] = self._value(schema, "row", "")
        builtins = [f"{name} ::= {BUILTIN_RULES[name]}" for name in sorted(self._used_builtins)]
        self.ebnf = "\n".join([*(f"{k} ::= {v}" for k, v in self._rules.items()), *builtins]) + "\n"

    def _rule(self, hint: str, body: str) -> str:
        # ASCII only: the EBNF parser reads rule names as [A-Za-z0-9_], and "café".isalnum().
        name = "".join(c if c.isascii() and c.isalnum() else "_" for c in hint)[:40] or "v"
        candidate, n = name, 1
        while candidate in self._rules:
            n += 1
            candidate = f"{name}_{n}"
        self._rules[candidate] = body
        return candidate

    def _value(self, spec: dict[str, Any], hint: str, path: str) -> str:
        """The EBNF of one value of `spec`."""
        if "$ref" in spec:
            return self._ref(spec["$ref"], path)
        if "anyOf" in spec:
            return " | ".join(f"({self._value(branch, f'{hint}_{i}', path)})" for i, branch in enumerate(spec["anyOf"]))
        if "enum" in spec:
            return " | ".join(literal(json_text(v)) for v in spec["enum"])
        types = node_types(spec)
        if not types:
            return self._free(FREE_DEPTH)
        kind = next((t for t in types if t != "null"), "null")
        body = '"null"' if kind == "null" else getattr(self, f"_{kind}")(spec, hint, path)
        if "null" in types and kind != "null":
            body = f'({body}) | "null"'
        return body

    def _ref(self, ref: str, path: str) -> str:
        name = ref.rsplit("/", 1)[1]
        rule = self._def_rules.get(name)
        if rule is None:
            rule = self._def_rules[name] = self._rule(f"def_{name}", "")
            self._rules[rule] = self._value(self.defs[name], f"def_{name}", path)
        return rule

    def _free(self, depth: int) -> str:
        """Any JSON value, nested at most `depth` deep."""
        name = f"free_{depth}"
        if name not in self._rules:
            self._rules[name] = ""
            scalar = f'"\\"" ({STRING_EDGE} ({STRING_CHAR}* {STRING_EDGE})?)? "\\"" | {UNBOUNDED_INT} ("." [0-9]{{1,{FRACTION_DIGITS}}})? | "true" | "false" | "null"'
            if depth == 0:
                self._rules[name] = scalar
            else:
                inner = self._free(depth - 1)
                more = f"{{0,{FREE_ITEMS - 1}}}"
                self._rules[name] = (
                    f'{scalar} | "[" ({inner} (", " {inner}){more})? "]"'
                    f' | "{{" ({EXTRA_KEY} ": " {inner} (", " {EXTRA_KEY} ": " {inner}){more})? "}}"'
                )
        return name

    def _object(self, spec: dict[str, Any], hint: str, path: str) -> str:
        properties = spec["properties"]
        required = set(spec.get("required", []))
        extra = self._extra(spec, hint, path)
        values = {}
        for name, sub in properties.items():
            sub_path = f"{path}.{name}" if path else name
            values[name] = self._rule(f"{hint}_{name}", self._value(sub, f"{hint}_{name}", sub_path))
        if extra is None and set(properties) <= required:
            # Every key in order: one literal per key with its separators, as jump-forward likes.
            parts = [f"{literal(('{' if i == 0 else ', ') + json_text(name) + ': ')} {values[name]}" for i, name in enumerate(properties)]
            return " ".join(parts) + ' "}"' if parts else '"{}"'
        # Optional keys: rule i is what may follow once keys 0..i-1 were decided, in two forms:
        # nothing written yet ("first"), or something written, so a separator leads ("after").
        low, high, entry = extra or (0, 0, "")
        if extra and high > 0:
            first = f"({entry} (\", \" {entry}){{{max(low - 1, 0)},{high - 1}}})" + ("" if low else "?")
            after = f"(\", \" {entry}){{{low},{high}}}"
        else:
            first = after = '""'
        for name in reversed(list(properties)):
            key = json_text(name) + ": "
            kv_first = f"{literal(key)} {values[name]}"
            kv_after = f"{literal(', ' + key)} {values[name]}"
            after_rule = self._rule(f"{hint}_after_{name}", after)
            if name in required:
                first, after = f"{kv_first} {after_rule}", f"{kv_after} {after_rule}"
            else:
                first_rule = self._rule(f"{hint}_first_{name}", first)
                first, after = f"({kv_first} {after_rule}) | {first_rule}", f"({kv_after} {after_rule}) | {after_rule}"
        return f'"{{" ({first}) "}}"'

    def _extra(self, spec: dict[str, Any], hint: str, path: str) -> tuple[int, int, str] | None:
        """(fewest, most, rule) of the keys an object may hold past its listed properties."""
        patterns = spec.get("patternProperties")
        additional = spec.get("additionalProperties", False)
        if not patterns and additional is False:
            return None
        listed = len(spec["properties"])
        high = spec.get("maxProperties", listed + DEFAULT_EXTRA_KEYS) - len(spec.get("required", []))
        low = max(0, spec.get("minProperties", 0) - listed)
        if patterns:
            pattern, value = next(iter(patterns.items()))
            key = f'"\\"" ({read_pattern(pattern).ebnf}) "\\""'
        else:
            key, value = EXTRA_KEY, additional
        names = spec.get("propertyNames")
        if names is not None:  # its enum, or its pattern, names the extra keys
            key = " | ".join(literal(json_text(k)) for k in names["enum"]) if "enum" in names else f'"\\"" ({read_pattern(names["pattern"]).ebnf}) "\\""'
            key = f"({key})"
        value_rule = self._rule(f"{hint}_extra", self._value(value, f"{hint}_extra", f"{path}.*"))
        entry = self._rule(f"{hint}_entry", f'{key} ": " {value_rule}')
        return low, max(high, low), entry

    def _array(self, spec: dict[str, Any], hint: str, path: str) -> str:
        low, high = spec.get("minItems", 0), spec["maxItems"]
        prefix = [self._rule(f"{hint}_{i}", self._value(p, f"{hint}_{i}", f"{path}[{i}]")) for i, p in enumerate(spec.get("prefixItems", []))]
        if high == 0:
            return '"[]"'
        items = spec.get("items")
        item = self._rule(f"{hint}_item", self._value(items, f"{hint}_item", f"{path}[]")) if items is not None else None
        # The items after the prefix: (", " item){a,b}.
        rest_low, rest_high = max(low - len(prefix), 0), high - len(prefix)
        tail = f'(", " {item}){{{rest_low},{rest_high}}}' if item is not None and rest_high > 0 else ""
        if not prefix:
            body = f'{item} (", " {item}){{{max(low - 1, 0)},{high - 1}}}'
            return f'"[" {body} "]"' if low >= 1 else f'"[" ({body})? "]"'
        # Prefix items in order, each optional once minItems is met.
        body = tail
        for i in range(min(len(prefix), high) - 1, -1, -1):
            head = prefix[i] if i == 0 else f'", " {prefix[i]}'
            body = f"{head} {body}".strip() if i < low else f"({head} {body})?".replace(" )", ")")
        return f'"[" {body or chr(34) * 2} "]"'

    def _string(self, spec: dict[str, Any], hint: str, path: str) -> str:
        fmt = spec.get("format")
        fmt = FORMAT_ALIASES.get(fmt, fmt)
        if fmt in FORMAT_BODIES:
            body, builtins = FORMAT_BODIES[fmt]
            self._used_builtins.update(builtins)
            return f'"\\"" {body} "\\""'
        if "pattern" in spec:
            return f'"\\"" ({read_pattern(spec["pattern"]).ebnf}) "\\""'
        low = spec.get("minLength", 1)
        high = spec["maxLength"]
        if high == 0:
            return '"\\"\\""'
        # No leading or trailing spaces: users never want them, and the random model loves them.
        # The length is bounded above by text_service.bounds, not here: a counted repetition
        # would make xgrammar's masks thousands of times slower (see that module).
        if high == 1:
            body = STRING_EDGE
        else:
            repeat = "*" if low <= 2 else f"{{{low - 2},}}"
            body = f"{STRING_EDGE} ({STRING_CHAR}{repeat} {STRING_EDGE})" + ("" if low >= 2 else "?")
        if low == 0:
            body = f"({body})?"
        return f'"\\"" {body} "\\""'

    def _integer(self, spec: dict[str, Any], hint: str, path: str) -> str:
        low, high = integer_bounds(spec)
        step = spec.get("multipleOf")
        if step is not None:
            multiples = _integer_multiples(low, high, step)
            if multiples is not None:
                return multiples
        if low == -MAX_ABS_NUMBER and high == MAX_ABS_NUMBER:
            return UNBOUNDED_INT
        return int_range(low, high)

    def _number(self, spec: dict[str, Any], hint: str, path: str) -> str:
        digits = FRACTION_DIGITS
        step = spec.get("multipleOf")
        fraction = f'"." [0-9]{{1,{digits}}}'
        if step is not None:
            steps = _fraction_steps(step)
            if steps is not None:
                fraction = steps
        if all(spec.get(k) is None for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return f"{UNBOUNDED_INT} {fraction}"
        low = spec.get("minimum", spec.get("exclusiveMinimum"))
        high = spec.get("maximum", spec.get("exclusiveMaximum"))
        cap = 10**INT_DIGITS - 1
        low_i = -cap if low is None else math.ceil(low)
        high_i = cap if high is None else math.floor(high)
        # Whole units [low_i, high_i) with any fraction stay inside [low, high]; values in the
        # partial units at the ends are left out rather than risked.
        parts = []
        if low_i < 0:
            neg_low = max(0, -high_i)
            neg_high = -low_i - 1
            if neg_low <= neg_high:
                parts.append(f'"-" ({int_range(neg_low, neg_high)}) {fraction}')
        if high_i > 0 and max(0, low_i) <= high_i - 1:
            parts.append(f"({int_range(max(0, low_i), high_i - 1)}) {fraction}")
        if not parts:
            # No whole unit fits (e.g. [0.1, 0.9]): spell the decimal range out digit by digit.
            return decimal_range_ebnf(low, high, spec.get("exclusiveMinimum") is not None, spec.get("exclusiveMaximum") is not None)
        return " | ".join(f"({p})" for p in parts)

    def _boolean(self, spec: dict[str, Any], hint: str, path: str) -> str:
        return '"true" | "false"'


def _integer_multiples(low: int, high: int, step: float) -> str | None:
    """The multiples of `step` in [low, high], when they are few enough to list, or when `step`
    is a power of ten; None leaves multipleOf to the check after decoding."""
    if step != int(step):
        return None
    step = int(step)
    first, last = -(-low // step), high // step
    if first > last:
        return None
    if last - first < MAX_MULTIPLES:
        return " | ".join(literal(str(k * step)) for k in range(first, last + 1))
    zeros = len(str(step)) - 1
    if step == 10**zeros and low <= -(10**(INT_DIGITS)) and high >= 10**INT_DIGITS:
        return f'"0" | "-"? [1-9] [0-9]{{0,{INT_DIGITS - 1 - zeros}}} "{"0" * zeros}"'
    return None


def _fraction_steps(step: float) -> str | None:
    """The fractional parts a multiple of `step` may have (multipleOf 0.25: .0 .25 .5 .75), when
    1/step is a whole number up to 100; None leaves multipleOf to the check after decoding."""
    exact = Fraction(str(step))
    if exact <= 0 or exact > 1 or (1 / exact).denominator != 1 or 1 / exact > 100:
        return None
    parts = []
    for k in range(int(1 / exact)):
        text = str(float(k * exact))
        if len(text) - text.index(".") - 1 > FRACTION_DIGITS:
            return None
        parts.append(literal(text[text.index("."):]))
    return "(" + " | ".join(parts) + ")"


def decimal_range_ebnf(low: float | None, high: float | None, exclusive_low: bool, exclusive_high: bool) -> str:
    """EBNF for decimals in a range narrower than one whole unit, via xgrammar's range regex."""
    from xgrammar.testing import _generate_float_regex, _regex_to_ebnf

    regex = _generate_float_regex(low, high, exclusive_start=exclusive_low, exclusive_end=exclusive_high)
    return _regex_to_ebnf(regex, with_rule_name=False).strip()


def _first_line(exc: Exception) -> str:
    """xgrammar's messages start with a source location; the reason follows it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^(\[[^\]]*\] )?\S+\.cc:\d+: ", "", text)


def compile_error(exc: Exception) -> SchemaError:
    return SchemaError("", f"cannot build a grammar for this schema: {_first_line(exc)}")


def max_row_bytes(schema: dict[str, Any]) -> int:
    """An upper bound on the bytes of any sentence RowGrammar(schema) admits (so also on its
    tokens, each at least one byte). The static decoder sizes its KV cache from this instead of
    max_new_tokens."""
    return RowSizes(schema).max_bytes(schema)


class RowSizes:
    """How many bytes each node's values take in the grammar's JSON text: at most, and at most
    once a row plan keeps them small."""

    def __init__(self, schema: dict[str, Any]):
        self.defs = schema.get("$defs", {})
        self._max: dict[str, int] = {}
        self._min: dict[str, int] = {}

    def max_bytes(self, spec: dict[str, Any]) -> int:
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[1]
            if name not in self._max:
                self._max[name] = self.max_bytes(self.defs[name])
            return self._max[name]
        if "anyOf" in spec:
            return max(self.max_bytes(b) for b in spec["anyOf"])
        if "enum" in spec:
            return max(len(json_text(v).encode()) for v in spec["enum"])
        types = node_types(spec)
        if not types:
            return _free_bytes(FREE_DEPTH)
        kind = next((t for t in types if t != "null"), "null")
        size = 4 if kind == "null" else getattr(self, f"_max_{kind}")(spec)
        return max(size, 4) if "null" in types else size

    def _max_object(self, spec: dict[str, Any]) -> int:
        entries = [len(json_text(k).encode()) + 2 + self.max_bytes(v) for k, v in spec["properties"].items()]
        extra = _extra_count(spec)
        if extra:
            value = spec.get("additionalProperties") or next(iter(spec.get("patternProperties", {}).values()), {})
            names = spec.get("propertyNames") or {}
            pattern = names.get("pattern") or next(iter(spec.get("patternProperties") or {}), None)
            if "enum" in names:
                key = max(len(json_text(k).encode()) for k in names["enum"])
            else:
                key = 2 + (read_pattern(pattern).max_chars * 4 if pattern else 16)
            entries += [key + 2 + self.max_bytes(value)] * extra
        return 2 + sum(entries) + 2 * max(len(entries) - 1, 0)

    def _max_array(self, spec: dict[str, Any]) -> int:
        high = spec["maxItems"]
        prefix = spec.get("prefixItems", [])
        sizes = [self.max_bytes(p) for p in prefix[:high]]
        if spec.get("items") is not None and high > len(sizes):
            sizes += [self.max_bytes(spec["items"])] * (high - len(sizes))
        return 2 + sum(sizes) + 2 * max(len(sizes) - 1, 0)

    def _max_string(self, spec: dict[str, Any]) -> int:
        fmt = FORMAT_ALIASES.get(spec.get("format"), spec.get("format"))
        if fmt in FORMAT_BYTES:
            return FORMAT_BYTES[fmt]
        if "pattern" in spec:
            return 2 + 4 * read_pattern(spec["pattern"]).max_chars
        return 2 + 4 * spec["maxLength"]  # UTF-8: at most 4 bytes a character

    def _max_integer(self, spec: dict[str, Any]) -> int:
        low, high = integer_bounds(spec)
        return max(len(str(low)), len(str(high)))

    def _max_number(self, spec: dict[str, Any]) -> int:
        return NUMBER_BYTES

    def _max_boolean(self, spec: dict[str, Any]) -> int:
        return 5

    def reserve_bytes(self, spec: dict[str, Any]) -> int:
        """The most bytes the smallest value a row plan can steer to may take: strings, arrays and
        objects at their minimum (the plan and the string limit hold them there), and what the
        model alone ends (numbers, enum literals, formats) at its longest."""
        if "$ref" in spec:
            name = spec["$ref"].rsplit("/", 1)[1]
            if name not in self._min:
                self._min[name] = 0  # a def being sized refers to itself: recursion was unrolled, so this is the cut
                self._min[name] = self.reserve_bytes(self.defs[name])
            return self._min[name]
        if "anyOf" in spec:
            return max(self.reserve_bytes(b) for b in spec["anyOf"])
        if "enum" in spec:
            return self.max_bytes(spec)
        types = node_types(spec)
        if not types:
            return 8  # free-form: the cursor caps its strings; its containers are small
        kind = next((t for t in types if t != "null"), "null")
        if kind == "object":
            required = spec.get("required", [])
            entries = [len(json_text(k).encode()) + 2 + self.reserve_bytes(spec["properties"][k]) for k in required]
            extra = spec.get("additionalProperties") or next(iter(spec.get("patternProperties", {}).values()), None)
            if isinstance(extra, dict):  # the extra keys minProperties asks for, each with its value
                entries += [4 + 2 + self.reserve_bytes(extra)] * max(0, spec.get("minProperties", 0) - len(required))
            return 2 + sum(entries) + 2 * max(len(entries) - 1, 0)
        if kind == "array":
            low = spec.get("minItems", 0)
            prefix = spec.get("prefixItems", [])
            sizes = [self.reserve_bytes(p) for p in prefix[:low]]
            if low > len(sizes):
                sizes += [self.reserve_bytes(spec["items"])] * (low - len(sizes))
            return 2 + sum(sizes) + 2 * max(len(sizes) - 1, 0)
        if kind == "string" and "format" not in spec:  # a pattern's string closes as soon as it can
            return 2 + (read_pattern(spec["pattern"]).min_chars if "pattern" in spec else spec.get("minLength", 1))
        return self.max_bytes({**spec, "type": kind})


def _extra_count(spec: dict[str, Any]) -> int:
    if not spec.get("patternProperties") and spec.get("additionalProperties", False) is False:
        return 0
    listed = len(spec["properties"])
    return spec.get("maxProperties", listed + DEFAULT_EXTRA_KEYS) - len(spec.get("required", []))


def _free_bytes(depth: int) -> int:
    scalar = 2 + 4 * 48  # a string, bounded beside the grammar like a plain one
    if depth == 0:
        return scalar
    inner = _free_bytes(depth - 1)
    return max(scalar, 2 + FREE_ITEMS * (18 + 2 + inner) + 2 * (FREE_ITEMS - 1))
