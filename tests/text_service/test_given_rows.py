"""Given rows (seed data, parent rows) and example rows through TextEngine on the tiny model: each
given row lands in exactly one output row, exactly, and its prompt carries it."""

import json
from collections import Counter

import pytest

from sdg.given import GivenRow
from text_service.engine import RequestError, RowBatch, RowRequest
from text_service.prompts import build_prompts

SCHEMA = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "integer", "minimum": 1},
        "city": {"type": "string", "maxLength": 20},
        "note": {"type": "string", "maxLength": 12},
        "score": {"type": "number"},
    },
    "required": ["customer_id", "note"],
}


def generate(engine, **kwargs):
    rows = []
    summary = engine.generate(RowRequest(**kwargs), lambda event: rows.extend(event.rows) if isinstance(event, RowBatch) else None)
    return [json.loads(row) for row in rows], summary


def test_each_given_row_lands_in_exactly_one_row_even_when_its_fields_are_optional(text_engine):
    given = tuple({"customer_id": i // 3 + 1, "city": f"City{i % 7}"} for i in range(120))
    rows, summary = generate(text_engine, schema=SCHEMA, num_rows=len(given), seed=5, given_rows=given, optional_rate=0.9)
    assert len(rows) == len(given) and not summary.partial, summary.reason
    assert Counter((r["customer_id"], r["city"]) for r in rows) == Counter((g["customer_id"], g["city"]) for g in given)


def test_a_given_row_whose_slot_fails_is_given_again(text_engine):
    # Duplicates are thrown away and regenerated: their given rows must come back, not be lost.
    schema = {"id": {"type": "integer", "minimum": 0, "maximum": 3}, "flag": "bool"}
    given = tuple({"id": i % 4} for i in range(8))
    rows, summary = generate(text_engine, schema=schema, num_rows=8, seed=1, given_rows=given)
    assert sorted(r["id"] for r in rows) == sorted(g["id"] for g in given)
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == 8


def test_each_rows_prompt_carries_its_given_values_and_the_shared_prompt_the_examples(text_engine):
    given = [GivenRow({"customer_id": "17", "city": '"Utrecht"'}, '{"id": 17, "name": "Ann"}'), GivenRow({"customer_id": "18", "city": '"Lima"'})]
    examples = ({"customer_id": 3, "note": "loyal buyer"},)
    prompts = build_prompts(text_engine.tokenizer, text_engine.prepare(SCHEMA).schema, "", 0, [0, 1], given, examples)
    decode = text_engine.tokenizer.decode
    assert '"loyal buyer"' in decode(prompts.prefix)
    assert '{"customer_id": 17, "city": "Utrecht"}. It belongs to {"id": 17, "name": "Ann"}' in decode(prompts.suffixes[0])
    assert '{"customer_id": 18, "city": "Lima"}' in decode(prompts.suffixes[1]) and "belongs" not in decode(prompts.suffixes[1])


@pytest.mark.parametrize("given, message", [
    (({"customer_id": 1},), "given_rows_json: has 1 rows, but num_rows is 2"),
    (({"customer_id": 1}, {"nope": 2}), "given_rows_json[1].nope: the schema has no field 'nope'"),
    (({"customer_id": 1}, {"customer_id": 0}), "given_rows_json[1].customer_id: 0 does not satisfy the field's schema"),
    (({"customer_id": 1}, {"city": "x" * 21}), "given_rows_json[1].city:"),
    (({"customer_id": 1}, {"city": 'say "hi"'}), "cannot be written"),
])
def test_given_values_rows_cannot_hold_are_refused_naming_the_entry_and_field(text_engine, given, message):
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        text_engine.generate(RowRequest(schema=SCHEMA, num_rows=2, given_rows=given))


def test_a_given_rows_context_must_come_one_per_given_row(text_engine):
    with pytest.raises(RequestError, match="given_context_json: has 1 entries, but given_rows_json has 2"):
        text_engine.generate(RowRequest(schema=SCHEMA, num_rows=2, given_rows=({"customer_id": 1},) * 2, given_context=({"a": 1},)))


def test_a_sampled_field_cannot_also_be_given(text_engine):
    schema = {"tier": {"type": "string", "x-sdg": {"category": {"values": ["a", "b"]}}}, "note": "string"}
    with pytest.raises(RequestError, match=r"given_rows_json\[0\]\.tier: the field is sampled"):
        text_engine.generate(RowRequest(schema=schema, num_rows=1, given_rows=({"tier": "a"},)))
