"""RowGrammar: what each schema type admits and what it shuts out, checked with xgrammar itself."""

import json
import random

import pytest
import xgrammar as xgr

from sdg.schema import normalize_schema
from text_service.grammar import RowGrammar, int_range

COMPILER = xgr.GrammarCompiler(xgr.TokenizerInfo([]))


def accepts(ebnf: str, text: str) -> bool:
    matcher = xgr.GrammarMatcher(COMPILER.compile_grammar(ebnf))
    return matcher.accept_string(text) and matcher.is_completed()


def row_accepts(field_spec, value_text: str) -> bool:
    grammar = RowGrammar(normalize_schema({"v": field_spec}))
    return accepts(grammar.ebnf, '{"v": ' + value_text + "}")


@pytest.mark.parametrize("low, high", [(18, 90), (0, 0), (-5, 5), (-100, -3), (7, 7), (1, 1000), (123, 4567), (10, 19)])
def test_int_range_admits_exactly_the_range(low, high):
    ebnf = f"root ::= {int_range(low, high)}"
    rng = random.Random(0)
    candidates = [*range(low - 12, low + 12), *range(high - 12, high + 12), *(rng.randint(low, high) for _ in range(30))]
    for value in candidates:
        assert accepts(ebnf, str(value)) == (low <= value <= high), value
    assert not accepts(ebnf, "0" + str(abs(high)))  # no leading zeros


@pytest.mark.parametrize(
    "spec, good, bad",
    [
        ("int", ["0", "-42", "123456789"], ["1e5", "01", "1.5", "1234567890"]),
        ("float", ["0.5", "-12.25", "3.0"], ["1e5", "21.3E7725966", "NaN", "Infinity", "1.", ".5"]),
        ({"type": "number", "minimum": 0.1, "maximum": 0.9}, ["0.5", "0.1", "0.9"], ["0.05", "0.95", "1.0"]),
        ("bool", ["true", "false"], ["True", "1"]),
        ("date", ['"2024-02-28"', '"1999-12-31"'], ['"2024-02-30"', '"2024-13-01"', '"24-01-01"']),
        ("datetime", ['"2024-05-17T10:30:00Z"'], ['"2024-05-17T24:00:00Z"', '"2024-05-17 10:30:00"']),
        ("email", ['"ann.lee@example.com"'], ['"not an email"', '"@x.com"']),
        ("uuid", ['"3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718"'], ['"3f2a9c1e"', '"3F2A9C1E-8B7D-4E6F-A1B2-C3D4E5F60718"']),
        ("string", ['"Alice"', '"a b"'], ['""', '" lead"', '"tab\\there"', '"new\nline"', '"bell\x07"', '"trail "']),
        ({"type": "string", "enum": ["a", "b"]}, ['"a"'], ['"c"']),
        ({"type": ["integer", "null"]}, ["null", "5"], ['"null"']),
        ({"type": "string", "pattern": "^[A-Z]{2}[0-9]$"}, ['"AB1"'], ['"ab1"', '"AB12"']),
        ({"type": "array", "items": "int", "minItems": 1, "maxItems": 2}, ["[1]", "[1, 2]"], ["[]", "[1, 2, 3]"]),
        ({"type": "object", "properties": {"a": "int"}}, ['{"a": 1}'], ['{"a": 1, "b": 2}', "{}"]),
    ],
)
def test_value_grammar(spec, good, bad):
    for text in good:
        assert row_accepts(spec, text), f"should accept {text!r}"
    for text in bad:
        assert not row_accepts(spec, text), f"should reject {text!r}"


def test_separators_are_fixed_so_keys_can_be_jumped():
    grammar = RowGrammar(normalize_schema({"a": "int", "b": "int"}))
    assert accepts(grammar.ebnf, '{"a": 1, "b": 2}')
    assert not accepts(grammar.ebnf, '{"a":1,"b":2}')
    assert not accepts(grammar.ebnf, '{"b": 2, "a": 1}')


@pytest.mark.parametrize("pattern", [".*", ".+", "[^/]+", "\\S+", "\\s\\S", "(?i)[^a]*"])
def test_a_pattern_string_never_holds_a_raw_quote_backslash_or_control_character(pattern):
    grammar = RowGrammar(normalize_schema({"v": {"type": "string", "pattern": pattern}}))
    for bad in ['"', "\\", "\n", "\x07", "\t"]:
        assert not accepts(grammar.ebnf, '{"v": "a' + bad + 'b"}'), (pattern, bad)
    assert accepts(grammar.ebnf, '{"v": "ab"}') or pattern.startswith("\\s")


def test_a_pattern_that_needs_a_quote_writes_it_escaped():
    grammar = RowGrammar(normalize_schema({"v": {"type": "string", "pattern": '^"[a-z]+"$'}}))
    assert accepts(grammar.ebnf, '{"v": "\\"abc\\""}')
    assert not accepts(grammar.ebnf, '{"v": ""abc""}')


def test_unbounded_pattern_repeats_are_capped_so_masks_stay_fast():
    from sdg.patterns import REPEAT_SLACK

    grammar = RowGrammar(normalize_schema({"v": {"type": "string", "pattern": "^(https?://)?([a-z.-]+)([/\\w .-]*)*/?"}}))
    longest = (1 + REPEAT_SLACK) + REPEAT_SLACK  # ([a-z.-]+) then the nested star, read as one
    assert accepts(grammar.ebnf, '{"v": "http://' + "a" * longest + '"}')
    assert not accepts(grammar.ebnf, '{"v": "http://' + "a" * (longest + 1) + '"}')


def test_max_row_bytes_bounds_the_longest_sentence_the_grammar_admits():
    from text_service.grammar import max_row_bytes

    schema = normalize_schema(
        {
            "s": {"type": "string", "maxLength": 3}, "n": "int", "f": "float", "d": "date", "t": "datetime",
            "e": "email", "u": "uuid", "b": "bool", "z": {"type": ["integer", "null"], "minimum": -5, "maximum": 5},
            "a": {"type": "array", "items": "int", "maxItems": 2}, "o": {"type": "object", "properties": {"x": "bool"}},
            "en": {"type": "string", "enum": ["a long value"]},
        }
    )
    longest = {
        "s": "\U0001d11e\U0001d11e\U0001d11e", "n": -123456789, "f": "-123456789.1234", "d": "2024-01-01",
        "t": "2024-01-01T00:00:00Z", "e": "abcdefghijkl.abcdefghij@abcdefghijkl.com",
        "u": "3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718", "b": False, "z": -5, "a": [-123456789, -123456789],
        "o": {"x": False}, "en": "a long value",
    }
    text = json.dumps(longest, ensure_ascii=False).replace('"-123456789.1234"', "-123456789.1234")
    assert accepts(RowGrammar(schema).ebnf, text)
    assert len(text.encode()) <= max_row_bytes(schema) < 2 * len(text.encode())
    capped = normalize_schema({"code": {"type": "string", "pattern": "[A-Z]+"}})
    assert len(json.dumps({"code": "A" * 17}).encode()) <= max_row_bytes(capped) < 200
