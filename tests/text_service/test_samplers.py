"""x-sdg samplers (sdg.samplers) as read at the door: what they draw, and what they refuse."""

import json
import re
import uuid

import jsonschema
import pytest

from sdg.schema import SchemaError, read_schema


def values(schema, rows=200, seed=1):
    read = read_schema(schema)
    return [read.samplers.values(seed, slot) for slot in range(rows)]


def test_sampled_fields_come_first_and_x_sdg_is_neither_ignored_nor_in_the_normalized_schema():
    read = read_schema({"bio": "string", "age": {"type": "integer", "minimum": 1, "maximum": 9, "x-sdg": {"uniform": {}}}})
    assert list(read.schema["properties"]) == ["age", "bio"]
    assert read.ignored == () and "x-sdg" not in json.dumps(read.schema)
    assert read.manifest()["sampled"] == {"age": "uniform"}
    assert any("written first: age" in note for note in read.notes)


def test_the_same_seed_draws_the_same_values_and_another_seed_others():
    schema = {"tier": {"type": "string", "x-sdg": {"category": {"values": ["a", "b", "c"]}}},
              "at": {"type": "string", "format": "date-time", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2021-01-01"}}}}
    assert values(schema, seed=5) == values(schema, seed=5)
    assert values(schema, seed=5) != values(schema, seed=6)


def test_every_sampler_draws_values_that_satisfy_the_field():
    schema = {
        "id": {"type": "integer", "x-sdg": {"sequence": {"start": 100, "step": 5}}},
        "tier": {"type": "string", "enum": ["free", "pro"], "x-sdg": {"category": {"values": ["free", "pro"], "weights": [1, 3]}}},
        "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 30}}},
        "score": {"type": "number", "minimum": 0, "maximum": 1, "x-sdg": {"gaussian": {"mean": 0.5, "stddev": 1}}},
        "visits": {"type": "integer", "minimum": 1, "maximum": 6, "x-sdg": {"poisson": {"mean": 3}}},
        "price": {"type": "number", "x-sdg": {"uniform": {"min": -5, "max": 5}}},
        "day": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2024-02-27", "end": "2024-03-01"}}},
        "key": {"type": "string", "format": "uuid", "x-sdg": {"uuid": {}}},
        "city": {"type": "string", "x-sdg": {"faker": {"provider": "city", "locale": "de_DE"}}},
    }
    read = read_schema(schema)
    check = jsonschema.Draft202012Validator(read.source, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    rows = values(schema, rows=300)
    for row in rows:
        check.validate(row)
        assert row["day"] != "2024-02-29"  # rows never hold February 29th
        assert uuid.UUID(row["key"]).version == 4
        assert round(row["score"], 4) == row["score"] and 0 < row["score"] < 1
    assert [row["id"] for row in rows[:3]] == [100, 105, 110]
    assert {row["visits"] for row in rows} <= set(range(1, 7))


def test_numbers_are_written_as_the_grammar_writes_them():
    read = read_schema({"x": {"type": "number", "x-sdg": {"uniform": {"min": 1, "max": 2}}}, "n": {"type": "integer", "x-sdg": {"sequence": {}}}})
    texts = read.samplers.texts(1, 0)
    assert re.fullmatch(r"1\.[0-9]{1,4}|2\.0", texts["x"]) and texts["n"] == "1"


def test_a_faker_locale_can_come_from_a_category_field():
    schema = {"country": {"type": "string", "x-sdg": {"category": {"values": ["JP", "NL"]}}},
              "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "country", "locales": {"JP": "ja_JP", "NL": "nl_NL"}}}}}
    rows = values(schema, rows=40)
    japanese = [row["name"] for row in rows if row["country"] == "JP"]
    assert japanese and all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", name) for name in japanese)
    assert all(not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", row["name"]) for row in rows if row["country"] == "NL")


@pytest.mark.parametrize(
    "field, pointer, reason",
    [
        ({"type": "string", "x-sdg": {"category": {"values": ["a", "b"], "weights": [0, 0]}}}, "category/weights", "sum to a positive number"),
        ({"type": "string", "x-sdg": {"category": {"values": ["a", "b"], "weights": [1]}}}, "category/weights", "one per value"),
        ({"type": "string", "enum": ["a"], "x-sdg": {"category": {"values": ["a", "z"]}}}, "category/values", "'z' is not one of"),
        ({"type": "integer", "minimum": 0, "maximum": 10, "x-sdg": {"gaussian": {"mean": 500, "stddev": 1}}}, "gaussian", "no mass left"),
        ({"type": "integer", "x-sdg": {"gaussian": {"mean": 5, "stddev": 0}}}, "gaussian/stddev", "must be positive"),
        ({"type": "integer", "minimum": 0, "maximum": 10, "x-sdg": {"uniform": {"max": 11}}}, "uniform", "reaches past"),
        ({"type": "string", "x-sdg": {"gaussian": {"mean": 5, "stddev": 1}}}, "gaussian", "this one is string"),
        ({"type": "integer", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2021-01-01"}}}, "datetime", "this one is integer"),
        ({"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2021-01-01", "end": "2020-01-01"}}}, "datetime/start", "is after end"),
        ({"type": "string", "x-sdg": {"faker": {"provider": "no_such_thing"}}}, "faker/provider", "is not a Faker provider"),
        ({"type": "string", "x-sdg": {"faker": {"provider": "name", "locale": "xx_XX"}}}, "faker/locale", "is not a Faker locale"),
        ({"type": "string", "maxLength": 4, "x-sdg": {"faker": {"provider": "address"}}}, "faker/provider", "too long"),
        ({"type": "integer", "x-sdg": {"uniform": {}, "poisson": {"mean": 2}}}, "", "exactly one sampler, got 2"),
        ({"type": "integer", "x-sdg": {"uniformly": {}}}, "uniformly", "unknown key 'uniformly'"),
        ({"type": "integer", "x-sdg": {"poisson": {"mean": 2, "lambda": 3}}}, "poisson/lambda", "no option 'lambda'"),
        ({"type": "integer", "x-sdg": {"sequence": {"step": 0}}}, "sequence/step", "must not be 0"),
        ({"type": "string", "x-sdg": {"category": {"values": ["a\"b"]}}}, "category/values", "cannot be written"),
    ],
)
def test_a_sampler_that_cannot_yield_valid_values_is_refused_naming_the_field(field, pointer, reason):
    with pytest.raises(SchemaError) as caught:
        read_schema({"f": field, "other": "string"})
    assert caught.value.field == "f" and reason in caught.value.reason
    assert caught.value.pointer == "/properties/f/x-sdg" + (f"/{pointer}" if pointer else "")


def test_x_sdg_below_the_top_level_is_refused_with_its_pointer():
    with pytest.raises(SchemaError) as caught:
        read_schema({"a": {"type": "object", "properties": {"b": {"type": "integer", "x-sdg": {"uuid": {}}}}}})
    assert caught.value.pointer == "/properties/a/properties/b/x-sdg" and "root object's own properties" in caught.value.reason


def test_locale_from_must_name_a_category_field_whose_values_name_locales():
    with pytest.raises(SchemaError, match="locale_from must name another field sampled with category"):
        read_schema({"name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "nope"}}}})
    with pytest.raises(SchemaError, match="'XX', which names no Faker locale"):
        read_schema({"c": {"type": "string", "x-sdg": {"category": {"values": ["nl_NL", "XX"]}}},
                     "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "c"}}}})
