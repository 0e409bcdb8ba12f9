"""Designed rows (sdg.design) through TextEngine on the tiny model: conditioned prompts, computed
fields, unique fields and order rules across fields, in every row."""

import datetime as dt
import json

import pytest

from text_service.engine import RowBatch, RowRequest

CUSTOMER = {
    "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1, "step": 1}}},
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise"], "weights": [0.6, 0.3, 0.1]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "country": {"type": "string", "x-sdg": {"category": {"values": ["NL", "DE", "JP"]}}},
    "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "country",
                                                     "locales": {"NL": "nl_NL", "DE": "de_DE", "JP": "ja_JP"}}}},
}


def generate(engine, **kwargs):
    rows = []
    summary = engine.generate(RowRequest(**kwargs), lambda event: rows.extend(event.rows) if isinstance(event, RowBatch) else None)
    return [json.loads(row) for row in rows], summary


def test_each_rows_prompt_carries_that_rows_sampled_values(text_engine):
    schema = {
        "summary": {"type": "string", "maxLength": 12, "description": "one line on {bio}"},
        "bio": {"type": "string", "maxLength": 24, "description": "a short bio of {name}, a {age}-year-old {tier} customer from {country}"},
        **CUSTOMER,
    }
    rows, summary = generate(text_engine, schema=schema, num_rows=16, seed=5)
    assert len(rows) == 16 and not summary.partial, summary.reason
    # Sampled first, and bio, which summary names, before summary.
    assert all(list(row) == ["id", "tier", "age", "country", "name", "bio", "summary"] for row in rows)
    prepared = text_engine.prepare(schema)
    for row in rows:
        prompts = text_engine.wave_prompts(prepared, "", 5, [row["id"] - 1])  # a row's slot numbers its id
        own = text_engine.tokenizer.decode(prompts.suffixes[0])
        assert f"bio: a short bio of {row['name']}, a {row['age']}-year-old {row['tier']} customer from {row['country']}" in own
        assert "summary: one line on {bio}" in own  # written by the model, before summary
    shared = text_engine.tokenizer.decode(prompts.prefix)
    assert "{field} is this row's value of that field, written before bio" in shared


def test_computed_fields_are_never_written_by_the_model_and_fit_their_schema(text_engine):
    schema = {
        **CUSTOMER,
        "note": {"type": "string", "maxLength": 8},
        "label": {"type": "string", "x-sdg": {"expression": "name ~ ' (' ~ tier ~ ')'"}},
        "letters": {"type": "integer", "x-sdg": {"expression": "note | length"}},
        "over_30": {"type": "integer", "minimum": 0, "x-sdg": {"expression": "age - 30"}},
    }
    rows, summary = generate(text_engine, schema=schema, num_rows=30, seed=2)
    assert len(rows) == 30 and not summary.partial, summary.reason
    assert all(row["label"] == f"{row['name']} ({row['tier']})" and row["letters"] == len(row["note"]) for row in rows)
    assert all(row["over_30"] == row["age"] - 30 >= 0 for row in rows)
    assert summary.rejected_by.get("expression", 0) > 0  # the rows under 30, whose over_30 does not fit
    prepared = text_engine.prepare(schema)
    assert "label" not in prepared.written["properties"] and "label" in summary.schema["properties"]
    assert "label" not in text_engine.tokenizer.decode(text_engine.wave_prompts(prepared, "", 2, [0]).prefix)


def test_an_order_rule_against_a_model_written_date_holds_in_every_row(text_engine):
    schema = {
        "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
        "renewal": {"type": "string", "format": "date", "x-sdg": {"greater_than": "signup"}},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "bonus": {"type": "integer", "minimum": 0, "maximum": 100, "x-sdg": {"less_or_equal": "score"}},
    }
    rows, summary = generate(text_engine, schema=schema, num_rows=60, seed=8)
    assert len(rows) == 60 and not summary.partial, summary.reason
    assert all(dt.date.fromisoformat(row["renewal"]) > dt.date.fromisoformat(row["signup"]) and row["bonus"] <= row["score"] for row in rows)
    assert summary.rejected_by.get("greater_than", 0) + summary.rejected_by.get("less_or_equal", 0) > 0


@pytest.mark.slow
def test_a_sequence_and_a_unique_field_have_no_duplicates_in_10000_rows(text_engine):
    schema = {
        "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1}}},
        "email": {"type": "string", "format": "email", "x-sdg": {"faker": {"provider": "free_email"}, "unique": True}},
        "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
        "renewal": {"type": "string", "format": "date",
                    "x-sdg": {"datetime": {"start": "2021-01-01", "end": "2025-12-31"}, "greater_than": "signup"}},
    }
    rows, summary = generate(text_engine, schema=schema, num_rows=10_000, seed=1)
    assert len(rows) == 10_000 and not summary.partial, summary.reason
    assert len({row["id"] for row in rows}) == len({row["email"] for row in rows}) == 10_000
    assert summary.rejected_by.get("unique", 0) > 0  # Faker's free e-mails repeat, and were drawn again
    assert all(row["renewal"] > row["signup"] for row in rows)  # both sampled: redrawn before decoding


def test_a_unique_model_written_field_is_regenerated_on_a_collision(text_engine):
    schema = {"code": {"type": "integer", "minimum": 1, "maximum": 60, "x-sdg": {"unique": True}}, "word": {"type": "string", "maxLength": 4}}
    rows, summary = generate(text_engine, schema=schema, num_rows=25, seed=4)
    assert len(rows) == 25 and len({row["code"] for row in rows}) == 25, summary.reason
    assert summary.rejected_by.get("unique", 0) > 0


def test_a_given_value_conditions_a_description_like_a_sampled_one(text_engine):
    from sdg.given import GivenRow

    schema = {"name": "string", "age": {"type": "integer", "minimum": 1, "maximum": 9, "x-sdg": {"uniform": {}}},
              "bio": {"type": "string", "description": "about {name}, aged {age}"}}
    prepared = text_engine.prepare(schema)
    prompts = text_engine.wave_prompts(prepared, "", 1, [0], [GivenRow({"name": '"Ada Lovelace"'})])
    age = prepared.read.samplers.values(1, 0)["age"]
    assert f"bio: about Ada Lovelace, aged {age}." in text_engine.tokenizer.decode(prompts.suffixes[0])
