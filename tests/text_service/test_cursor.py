"""The row cursor and its plans, without a model: what it forces at each choice, what it tells the
mask, and the per-token arithmetic behind plan masks, on a small synthetic vocabulary."""

import json
import random

import torch

from sdg.schema import normalize_schema
from text_service.bounds import AFTER, AT_START, IN_SCALAR, IN_STRING, StringBounds, compatible, crossing
from text_service.cursor import RowCursor, SchemaIndex

VOCAB = [b"a", b"b", b'"', b'",', b'", "', b"}", b'"}', b"1", b"1,", b"1}", b"]}", b'"]', b",", b" ", b"{", b"[", b":"]


def cursor(schema: dict, seed: int | None = 0, rate: float = 0.5, budget: int = 10_000) -> RowCursor:
    bounds = StringBounds(VOCAB, len(VOCAB), torch.device("cpu"))
    return RowCursor(bounds, SchemaIndex(normalize_schema(schema)), budget, seed, rate)


def write(row: RowCursor, text: str) -> None:
    row.feed_bytes(text.encode())


def test_crossing_finds_the_text_a_token_writes_past_the_value_and_its_containers():
    assert crossing(b'abc", "n', IN_STRING, 0) == b', "n'
    assert crossing(b"abc", IN_STRING, 0) is None
    assert crossing(b"12}", IN_SCALAR, 0) == b"}"
    assert crossing(b'"x"]}', IN_STRING, 1) is None  # the first quote closes the string: then "x" opens one
    assert crossing(b'x"]}', IN_STRING, 1) == b"}"
    assert crossing(b'"a", "b"], ', AT_START, 0) == b', "b"], '
    assert crossing(b'"a", "b"], ', AFTER, 1) == b", "
    assert crossing(b"[1, 2]", AT_START, 0) == b""


def test_a_token_keeps_to_a_plan_when_its_text_is_a_prefix_of_the_plan_or_runs_into_its_content():
    assert compatible(b", ", b', "age": ', True)
    assert compatible(b', "age": 4', b', "age": ', True)
    assert not compatible(b', "name', b', "age": ', True)
    assert not compatible(b"}", b', "age": ', True)
    assert compatible(b"}", b"}", False) and not compatible(b"}}", b"}", False)
    assert not compatible(b", ]", b", ", True)  # content was planned, not a closer


def test_a_plan_keeps_each_optional_property_at_the_rate_asked():
    schema = {"type": "object", "properties": {f"f{i}": {"type": "integer"} for i in range(8)}}
    kept = 0
    for seed in range(400):
        row = cursor(schema, seed=seed, rate=0.25)
        write(row, "{")
        kept += row.stack[-1].plan.count("f3")
    assert 0.68 < kept / 400 < 0.82


def test_the_plan_forces_the_next_key_and_the_mask_learns_what_comes_after_a_string():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "integer"}}, "required": ["a"]}
    row = cursor(schema, rate=0.0)  # every optional property is written
    write(row, "{")
    assert row.plan_text() == '"a": '
    write(row, '"a": "')
    assert row.plan_text() == ""
    assert row.plan_situation() == (IN_STRING, 0, b', "b": ', True)
    write(row, 'xy"')
    assert row.plan_text() == ', "b": '
    write(row, ', "b": 1')
    assert row.plan_situation() == (IN_SCALAR, 0, b', "c": ', True)
    write(row, ', "c": 2')
    assert row.plan_situation() == (IN_SCALAR, 0, b"}", False)


def test_a_row_that_writes_against_its_plan_drops_it_and_the_model_chooses():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    row = cursor(schema, rate=0.0)
    write(row, '{"a": 1}')
    assert row.plans_dropped == 1 and row.stack == []


def test_an_array_plan_decides_how_many_items_and_forbids_closing_early():
    schema = {"t": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4}}
    counts = set()
    for seed in range(40):
        row = cursor(schema, seed=seed)
        write(row, '{"t": [')
        counts.add(row.stack[-1].target)
        assert row.plan_situation() == (AFTER, 0, b"", True)  # content comes first: no "]" yet
    assert counts == {1, 2, 3, 4}


def test_the_budget_caps_strings_so_the_rest_of_the_row_still_fits():
    schema = {f"s{i}": {"type": "string", "maxLength": 40} for i in range(4)}
    row = cursor(schema, budget=100)
    write(row, '{"s0": "')
    row.tokens = 8
    assert row.limit() == 40  # room to spare: maxLength holds
    write(row, "abc")
    row.tokens = 100 - 3 * len(', "s1": "x"') - 1 - 16  # no room left past what the rest needs
    assert row.limit() == 0  # close now: the others need their keys and a character each


def test_without_a_seed_nothing_is_planned():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    row = cursor(schema, seed=None)
    write(row, "{")
    assert row.plan_text() == "" and row.stack[-1].plan is None


def test_the_cursor_follows_refs_and_unions_to_the_limit_of_each_string():
    schema = {
        "$defs": {"Name": {"type": "string", "maxLength": 7}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/Name"}, "u": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]}},
        "required": ["n", "u"],
    }
    row = cursor(schema, seed=None)
    write(row, '{"n": "')
    assert row.limit() == 7
    write(row, 'abc", "u": "')
    assert row.limit() == 3


def test_plans_are_the_same_for_the_same_seed():
    schema = {"type": "object", "properties": {f"f{i}": {"type": "integer"} for i in range(6)}}
    plans = []
    for _ in range(2):
        row = cursor(schema, seed=random.Random(5).randrange(10**9))
        write(row, "{")
        plans.append(json.dumps(row.stack[-1].plan))
    assert plans[0] == plans[1]
