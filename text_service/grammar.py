"""RowGrammar: turns a normalized row schema (sdg.schema) into an xgrammar EBNF grammar whose every
sentence is one compact JSON object that validates against the schema.

The grammar is written here rather than taken from a generic JSON-schema converter because a
random-weight model will walk into every corner a generic grammar leaves open: raw control
characters, `21.3E7725966`, unbounded strings. Here:
- strings exclude control characters, quotes and backslashes; minLength is in the grammar, and
  maxLength is enforced beside it by text_service.bounds (token masks stay fast that way);
- numbers have no exponent and a bounded number of digits, and honour integer ranges exactly;
- date, date-time, email and uuid are spelled out so that every sentence is a real value;
- separators are fixed (`", "`, `": "`), so keys and punctuation can be jumped over.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sdg.schema import MAX_ABS_NUMBER, SchemaError, integer_bounds

# Characters allowed inside strings: printable, no quote or backslash (so no escapes are needed),
# no C0/C1 controls, no Unicode line separators, no surrogates (they are not valid UTF-8).
# Space is excluded at the ends.
STRING_CHAR = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]'
STRING_EDGE = r'[^"\\\x00-\x20\x7f-\x9f\u2028\u2029\ud800-\udfff]'
# Unconstrained numbers stay well inside float64 and int64 and what spreadsheets show exactly.
INT_DIGITS = 9
FRACTION_DIGITS = 4
UNBOUNDED_INT = f'"-"? ("0" | [1-9] [0-9]{{0,{INT_DIGITS - 1}}})'

MONTH_31 = '("01" | "03" | "05" | "07" | "08" | "10" | "12") "-" ([0] [1-9] | [12] [0-9] | "3" [01])'
MONTH_30 = '("04" | "06" | "09" | "11") "-" ([0] [1-9] | [12] [0-9] | "30")'
# February stops at 28 so that every year is valid without leap-year arithmetic in a grammar.
FEBRUARY = '"02" "-" ([0] [1-9] | "1" [0-9] | "2" [0-8])'
BUILTIN_RULES = {
    "date_body": f'("19" | "20") [0-9] [0-9] "-" ({MONTH_31} | {MONTH_30} | {FEBRUARY})',
    "time_body": '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9]',
    "email_body": '[a-z] [a-z0-9]{0,11} ("." [a-z] [a-z0-9]{0,9})? "@" [a-z] [a-z0-9]{1,11} "." ("com" | "org" | "net" | "io" | "dev")',
    "uuid_body": '[0-9a-f]{8} "-" [0-9a-f]{4} "-" "4" [0-9a-f]{3} "-" [89ab] [0-9a-f]{3} "-" [0-9a-f]{12}',
}


def literal(text: str) -> str:
    """An EBNF string literal matching `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


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


class RowGrammar:
    """The EBNF grammar for one normalized schema. `ebnf` is the text; `root` its start rule."""

    root = "root"

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        self._rules: dict[str, str] = {}
        self._used_builtins: set[str] = set()
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
        types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        kind = next(t for t in types if t != "null")
        if "enum" in spec:
            body = " | ".join(literal(json.dumps(v)) for v in spec["enum"] if v is not None)
        else:
            body = getattr(self, f"_{kind}")(spec, hint, path)
        if "null" in types:
            body = f'({body}) | "null"'
        return body

    def _object(self, spec: dict[str, Any], hint: str, path: str) -> str:
        parts = []
        for i, (name, sub) in enumerate(spec["properties"].items()):
            key = ("{" if i == 0 else ", ") + json.dumps(name) + ": "
            value = self._value(sub, f"{hint}_{name}", f"{path}.{name}" if path else name)
            parts.append(f"{literal(key)} {self._rule(f'{hint}_{name}', value)}")
        return " ".join(parts) + ' "}"'

    def _array(self, spec: dict[str, Any], hint: str, path: str) -> str:
        item = self._rule(f"{hint}_item", self._value(spec["items"], f"{hint}_item", f"{path}[]"))
        low, high = spec.get("minItems", 0), spec["maxItems"]
        if high == 0:
            return '"[]"'
        more = f'(", " {item}){{{max(low - 1, 0)},{high - 1}}}'
        body = f"{item} {more}"
        return f'"[" {body} "]"' if low >= 1 else f'"[" ({body})? "]"'

    def _string(self, spec: dict[str, Any], hint: str, path: str) -> str:
        fmt = spec.get("format")
        if fmt == "date":
            return self._builtin('"\\"" date_body "\\""', "date_body")
        if fmt == "date-time":
            self._used_builtins.add("time_body")
            return self._builtin('"\\"" date_body "T" time_body "Z\\""', "date_body")
        if fmt == "email":
            return self._builtin('"\\"" email_body "\\""', "email_body")
        if fmt == "uuid":
            return self._builtin('"\\"" uuid_body "\\""', "uuid_body")
        if "pattern" in spec:
            try:
                body = pattern_ebnf(spec["pattern"])
            except RuntimeError as exc:
                raise SchemaError(path, f"pattern {spec['pattern']!r} cannot be compiled to a grammar: {_first_line(exc)}") from None
            return f'"\\"" ({body}) "\\""'
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

    def _builtin(self, body: str, name: str) -> str:
        self._used_builtins.add(name)
        return body

    def _integer(self, spec: dict[str, Any], hint: str, path: str) -> str:
        low, high = integer_bounds(spec)
        if low == -MAX_ABS_NUMBER and high == MAX_ABS_NUMBER:
            return UNBOUNDED_INT
        return int_range(low, high)

    def _number(self, spec: dict[str, Any], hint: str, path: str) -> str:
        fraction = f'"." [0-9]{{1,{FRACTION_DIGITS}}}'
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


def decimal_range_ebnf(low: float | None, high: float | None, exclusive_low: bool, exclusive_high: bool) -> str:
    """EBNF for decimals in a range narrower than one whole unit, via xgrammar's range regex."""
    from xgrammar.testing import _generate_float_regex

    regex = _generate_float_regex(low, high, exclusive_start=exclusive_low, exclusive_end=exclusive_high)
    return pattern_ebnf(regex)


def _first_line(exc: Exception) -> str:
    """xgrammar's messages start with a source location; the reason follows it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^(\[[^\]]*\] )?\S+\.cc:\d+: ", "", text)


def pattern_ebnf(pattern: str) -> str:
    """The EBNF for a JSON Schema pattern, matched whole. xgrammar's own regex converter does the
    work; it lives in `xgrammar.testing`, so the xgrammar version is pinned and a test covers it."""
    from xgrammar.testing import _regex_to_ebnf

    return _regex_to_ebnf(pattern, with_rule_name=False).strip()


# The longest texts the builtin rules admit, in bytes, quotes included.
BUILTIN_BYTES = {"date": 12, "date-time": 22, "email": 42, "uuid": 38}
# A decimal: sign, INT_DIGITS, point, FRACTION_DIGITS; narrow ranges spelled digit by digit stay
# well under this.
NUMBER_BYTES = 32


def max_row_bytes(schema: dict[str, Any]) -> int | None:
    """An upper bound on the bytes of any sentence RowGrammar(schema) admits (so also on its
    tokens, each at least one byte), or None when a pattern leaves it open. The static decoder
    sizes its KV cache from this instead of max_new_tokens."""
    try:
        return _max_bytes(schema)
    except _Unbounded:
        return None


class _Unbounded(Exception):
    pass


def _max_bytes(spec: dict[str, Any]) -> int:
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    kind = next(t for t in types if t != "null")
    if "enum" in spec:
        size = max(len(json.dumps(v).encode()) for v in spec["enum"])
    elif kind == "object":
        names = spec["properties"]
        size = 2 + sum(len(json.dumps(k).encode()) + 2 + _max_bytes(v) for k, v in names.items()) + 2 * max(len(names) - 1, 0)
    elif kind == "array":
        high = spec["maxItems"]
        size = 2 + high * _max_bytes(spec["items"]) + 2 * max(high - 1, 0)
    elif kind == "string":
        if spec.get("format") in BUILTIN_BYTES:
            size = BUILTIN_BYTES[spec["format"]]
        elif "pattern" in spec:
            raise _Unbounded
        else:
            size = 2 + 4 * spec["maxLength"]  # UTF-8: at most 4 bytes a character
    elif kind == "integer":
        low, high = integer_bounds(spec)
        size = max(len(str(low)), len(str(high)))
    elif kind == "number":
        size = NUMBER_BYTES
    else:
        size = 5  # false
    return max(size, 4) if "null" in types else size
