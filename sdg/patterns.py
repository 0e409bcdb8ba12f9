"""JSON Schema `pattern`s, read once at the door and written as grammar (EBNF) over what a JSON
string may hold.

A pattern describes a string's value; the grammar describes the row's JSON text. So every
character class is narrowed to characters a JSON string holds unescaped (no quote, backslash or
control character), `.` and negated classes to printable ASCII, and a literal quote, backslash or
control character is written as its JSON escape. Unbounded repeats are capped (`*` is at most
REPEAT_SLACK more), which bounds the string and keeps the grammar matcher fast on nested repeats
such as `([a-z]*)*`. Lookarounds and word boundaries cannot be generated: they are left out of the
grammar, and rows are checked against the pattern after decoding (`checked`).
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parser
from dataclasses import dataclass

# How far past its minimum an unbounded repeat (`*`, `+`, `{n,}`) may go.
REPEAT_SLACK = 16
# A repeat whose count is above this makes a grammar too large to compile quickly.
MAX_REPEAT_COUNT = 1000

Ranges = list[tuple[int, int]]

# Printable ASCII but the quote and the backslash: what `.` and negated classes generate.
ANY: Ranges = [(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)]
DIGIT: Ranges = [(0x30, 0x39)]
WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
SPACE: Ranges = [(0x20, 0x20)]
# What a JSON string may hold unescaped, and SDG writes: no controls, quote, backslash, line
# separators or surrogates.
UNSAFE: Ranges = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x9F), (0x2028, 0x2029), (0xD800, 0xDFFF)]
JSON_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x08: "\\b", 0x0C: "\\f"}


class PatternError(ValueError):
    """A pattern SDG cannot generate; str() says why."""


@dataclass(frozen=True)
class Pattern:
    source: str
    ebnf: str  # the JSON text of a whole match, quotes excluded
    min_chars: int
    max_chars: int  # in the JSON text: an escape counts its characters
    checked: bool  # lookarounds or word boundaries were left out: rows are checked after decoding


def read_pattern(pattern: str) -> Pattern:
    """Reads an ECMA-262 pattern (JSON Schema's dialect) as SDG generates it; raises PatternError."""
    try:
        parsed = sre_parser.parse(_python_syntax(pattern))
    except re.error as err:
        raise PatternError(f"does not compile: {err}") from None
    except (OverflowError, RecursionError):
        raise PatternError("is too large or nested too deeply") from None
    writer = _Writer(bool(parsed.state.flags & re.IGNORECASE))
    items = list(parsed)
    if items and items[-1][0] is sre.ASSERT and items[-1][1][0] == 1:
        # A lookahead that ends the pattern ("a path (?=\.json)"): the text it looks for can simply
        # follow, since nothing after it is matched.
        items[-1] = (sre.SUBPATTERN, (None, 0, 0, items[-1][1][1]))
        writer.checked = True
    ebnf, low, high = writer.sequence(items)
    return Pattern(pattern, ebnf or '""', low, high, writer.checked)


def _python_syntax(pattern: str) -> str:
    """ECMA named groups (?<name>...) in Python's spelling; \\d and friends are narrowed later."""
    if "\\p{" in pattern or "\\P{" in pattern:
        raise PatternError("uses Unicode property escapes (\\p{...}), which are not supported")
    return re.sub(r"\(\?<(?![=!])", "(?P<", pattern)


class _Writer:
    def __init__(self, ignore_case: bool):
        self.ignore_case = ignore_case
        self.checked = False

    def sequence(self, items: list) -> tuple[str, int, int]:
        parts, low, high, text = [], 0, 0, ""
        for op, arg in items:
            if op is sre.LITERAL and not self.ignore_case and not _subtract([(arg, arg)], UNSAFE) == []:
                text += chr(arg)  # runs of plain characters become one string literal
                low, high = low + 1, high + 1
                continue
            if text:
                parts.append(_literal(text))
                text = ""
            ebnf, lo, hi = self.item(op, arg)
            if ebnf:
                parts.append(ebnf)
            low, high = low + lo, high + hi
        if text:
            parts.append(_literal(text))
        return " ".join(parts), low, high

    def item(self, op, arg) -> tuple[str, int, int]:
        if op is sre.LITERAL:
            return self.chars([(arg, arg)])
        if op is sre.NOT_LITERAL:
            return self.chars(_subtract(ANY, [(arg, arg)]), narrowed=True)
        if op is sre.ANY:
            return self.chars(ANY, narrowed=True)
        if op is sre.IN:
            return self.chars(*_class(arg))
        if op is sre.BRANCH:
            # An alternative that is only an end anchor ("(,|$)") can be taken at the end alone:
            # it is left out, and the others carry the match.
            branches = [list(b) for b in arg[1]]
            kept = [b for b in branches if not (len(b) == 1 and b[0][0] is sre.AT and b[0][1] in (sre.AT_END, sre.AT_END_STRING))]
            alternatives = [self.sequence(branch) for branch in (kept or branches)]
            ebnf = " | ".join(f"({e})" if e else '""' for e, _, _ in alternatives)
            return f"({ebnf})", min(lo for _, lo, _ in alternatives), max(hi for _, _, hi in alternatives)
        if op is sre.SUBPATTERN:
            _, add_flags, del_flags, body = arg
            saved = self.ignore_case
            self.ignore_case = (saved or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
            ebnf, lo, hi = self.sequence(list(body))
            self.ignore_case = saved
            return (f"({ebnf})" if ebnf else ""), lo, hi
        if op in (sre.ATOMIC_GROUP, sre.POSSESSIVE_REPEAT):
            raise PatternError("uses an atomic group or a possessive quantifier, which JSON Schema's regular expressions (ECMA-262) do not have")
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            return self.repeat(*arg)
        if op is sre.AT:
            if arg in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
                self.checked = True
            return "", 0, 0  # a whole match satisfies ^ and $
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            self.checked = True
            return "", 0, 0
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise PatternError("uses a backreference, which a grammar cannot express")
        raise PatternError(f"uses {op}, which is not supported")

    def repeat(self, low: int, high, body) -> tuple[str, int, int]:
        items = list(body)
        # (X*)* and (X+)* match what X* does; capped nested repeats would multiply for nothing.
        if high is sre.MAXREPEAT and len(items) == 1:
            inner_op, inner_arg = items[0]
            if inner_op is sre.SUBPATTERN and len(inner_arg[3]) == 1:
                inner_op, inner_arg = list(inner_arg[3])[0]
            if inner_op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and inner_arg[1] is sre.MAXREPEAT:
                return self.repeat(low * inner_arg[0], sre.MAXREPEAT, inner_arg[2])
        if low > MAX_REPEAT_COUNT or (high is not sre.MAXREPEAT and high > MAX_REPEAT_COUNT):
            raise PatternError(f"repeats more than {MAX_REPEAT_COUNT} times")
        cap = low + REPEAT_SLACK if high is sre.MAXREPEAT else high
        ebnf, lo, hi = self.sequence(items)
        if not ebnf or cap == 0:
            return "", 0, 0
        if (low, cap) == (1, 1):
            return ebnf, lo, hi
        count = "?" if (low, cap) == (0, 1) else f"{{{low}}}" if low == cap else f"{{{low},{cap}}}"
        return f"({ebnf}){count}", lo * low, hi * cap

    def chars(self, ranges: Ranges, narrowed: bool = False) -> tuple[str, int, int]:
        if self.ignore_case:
            ranges = _with_other_case(ranges)
        safe = _subtract(ranges, UNSAFE)
        if safe:
            return _char_class(safe), 1, 1
        # Only characters JSON must escape: write their escapes.
        escapes = [JSON_ESCAPES.get(c, f"\\u{c:04x}") for lo, hi in ranges for c in range(lo, min(hi, lo + 64) + 1)]
        if not escapes or narrowed:
            raise PatternError("matches no character a JSON string can hold")
        alternatives = " | ".join(_literal(text) for text in escapes)
        return f"({alternatives})", min(map(len, escapes)), max(map(len, escapes))


def _class(items) -> tuple[Ranges, bool]:
    """The ranges of a [...] class, and whether it was negated (then narrowed to ASCII)."""
    ranges: Ranges = []
    negate = False
    for op, arg in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            ranges.append((arg, arg))
        elif op is sre.RANGE:
            ranges.append(arg)
        elif op is sre.CATEGORY:
            ranges += _category(arg)
        else:
            raise PatternError(f"uses {op} in a character class, which is not supported")
    return (_subtract(ANY, ranges), True) if negate else (ranges, False)


def _category(category) -> Ranges:
    return {
        sre.CATEGORY_DIGIT: DIGIT,
        sre.CATEGORY_WORD: WORD,
        sre.CATEGORY_SPACE: SPACE,  # tabs and newlines would need escapes; a space matches \s
        sre.CATEGORY_NOT_DIGIT: _subtract(ANY, DIGIT),
        sre.CATEGORY_NOT_WORD: _subtract(ANY, WORD),
        sre.CATEGORY_NOT_SPACE: _subtract(ANY, SPACE),
    }.get(category) or _unsupported(category)


def _unsupported(what) -> Ranges:
    raise PatternError(f"uses {what}, which is not supported")


def _merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _subtract(ranges: Ranges, removed: Ranges) -> Ranges:
    out = []
    for lo, hi in _merged(ranges):
        for r_lo, r_hi in _merged(removed):
            if r_hi < lo or r_lo > hi:
                continue
            if r_lo > lo:
                out.append((lo, r_lo - 1))
            lo = r_hi + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((lo, hi))
    return out


def _with_other_case(ranges: Ranges) -> Ranges:
    extra = []
    for lo, hi in ranges:
        for a, b, shift in ((0x41, 0x5A, 32), (0x61, 0x7A, -32)):
            if lo <= b and hi >= a:
                extra.append((max(lo, a) + shift, min(hi, b) + shift))
    return _merged(ranges + extra)


def _char_class(ranges: Ranges) -> str:
    return "[" + "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges) + "]"


def _class_char(code: int) -> str:
    char = chr(code)
    if char in "\\]-^[":
        return "\\" + char
    if 0x20 <= code < 0x7F:
        return char
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
