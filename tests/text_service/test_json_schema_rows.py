"""Rows from real-world JSON Schema on the tiny model: Pydantic models, unions, references,
optional properties, and the defects found in public schema collections. Every row must
validate against the schema exactly as submitted."""

from __future__ import annotations

import json

import jsonschema
import pytest

from sdg.schema import RECURSION_DEPTH, normalize_schema
from tests.text_service.schemas import Comment, Customer
from text_service.engine import RowBatch, RowRequest, RowSummary


def rows_of(engine, schema, num_rows: int = 12, **options) -> tuple[list[dict], RowSummary]:
    rows = []
    summary = engine.generate(
        RowRequest(schema=schema, num_rows=num_rows, seed=options.pop("seed", 3), **options),
        lambda event: isinstance(event, RowBatch) and rows.extend(json.loads(r) for r in event.rows),
    )
    return rows, summary


def assert_valid(schema: dict, rows: list[dict], wrapped: bool = False) -> None:
    """Valid against the schema as written (with format checks) and against its normal form."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    check = cls(schema, format_checker=cls.FORMAT_CHECKER)
    normal = jsonschema.Draft202012Validator(normalize_schema(schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for row in rows:
        assert check.is_valid(row["value"] if wrapped else row), row
        assert normal.is_valid(row), row


def test_a_pydantic_model_with_optional_nested_enum_literal_and_list_fields_gives_valid_rows(text_engine):
    schema = Customer.model_json_schema()
    rows, summary = rows_of(text_engine, schema, num_rows=24)
    assert len(rows) == 24 and not summary.partial, summary.reason
    assert_valid(schema, rows)
    for row in rows:
        Customer.model_validate(row)
    assert any("nickname" in row for row in rows) and any("nickname" not in row for row in rows)


def test_each_optional_property_is_left_out_at_the_rate_asked(text_engine):
    schema = {"type": "object", "properties": {f"f{i}": {"type": "integer"} for i in range(6)}}
    rows, _ = rows_of(text_engine, schema, num_rows=200, optional_rate=0.3)
    assert_valid(schema, rows)
    absent = sum(f"f{i}" not in row for row in rows for i in range(6)) / (6 * len(rows))
    assert 0.24 < absent < 0.36
    everything, _ = rows_of(text_engine, schema, num_rows=10, optional_rate=0.0)
    assert all(len(row) == 6 for row in everything)
    nothing, summary = rows_of(text_engine, schema, num_rows=2, optional_rate=1.0, keep_duplicates=True)
    assert nothing == [{}, {}]


def test_min_and_max_properties_and_dependent_required_hold_in_every_row(text_engine):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}, "d": {"type": "integer"}},
        "minProperties": 2,
        "maxProperties": 3,
        "dependentRequired": {"a": ["d"]},
    }
    rows, _ = rows_of(text_engine, schema, num_rows=40)
    assert_valid(schema, rows)
    assert all(2 <= len(row) <= 3 and ("a" not in row or "d" in row) for row in rows)


def test_rows_fit_the_token_limit_however_many_long_strings_the_schema_has(text_engine):
    schema = {f"text_{i}": {"type": "string", "maxLength": 200} for i in range(20)}
    rows, summary = rows_of(text_engine, schema, num_rows=8, max_new_tokens=400)
    assert len(rows) == 8 and summary.rows_invalid == 0, summary.rejected_by
    assert_valid(schema, rows)


def test_a_row_matching_two_one_of_branches_is_thrown_away_and_counted(text_engine):
    low = {"type": "integer", "minimum": 0, "maximum": 9}
    high = {"type": "integer", "minimum": 5, "maximum": 14}  # 5 to 9 match both branches
    schema = {"type": "object", "properties": {"v": {"oneOf": [low, high]}}, "required": ["v"]}
    rows, summary = rows_of(text_engine, schema, num_rows=8)
    assert_valid(schema, rows)
    assert {row["v"] for row in rows} <= set(range(5)) | set(range(10, 15))
    assert summary.rejected_by.get("oneOf", 0) > 0 and summary.rows_invalid >= summary.rejected_by["oneOf"]


def test_a_recursive_ref_nests_to_the_depth_the_schema_states(text_engine):
    schema = Comment.model_json_schema()
    rows, summary = rows_of(text_engine, schema, num_rows=10)
    assert_valid(schema, rows)

    def depth(comment: dict) -> int:
        return 1 + max((depth(reply) for reply in comment.get("replies", [])), default=0)

    assert max(depth(row) for row in rows) <= RECURSION_DEPTH + 1


def test_free_form_values_are_small_json_of_any_kind(text_engine):
    schema = {"type": "object", "properties": {"meta": {}, "attrs": {"type": "object"}, "list": {"type": "array"}}, "required": ["meta", "attrs", "list"]}
    rows, _ = rows_of(text_engine, schema, num_rows=20)
    assert_valid(schema, rows)
    assert len({type(row["meta"]).__name__ for row in rows}) > 1


@pytest.mark.parametrize("pattern", [".*", ".+", "[^/]+", "\\S+ \\S+", "^\\s*[a-z]+\\s*$"])
def test_patterns_with_any_character_give_valid_rows_and_never_break_the_engine(text_engine, pattern):
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": pattern}}, "required": ["v"]}
    rows, summary = rows_of(text_engine, schema, num_rows=10)
    assert len(rows) == 10 and summary.rows_invalid == 0, summary.rejected_by
    assert_valid(schema, rows)


def test_a_pattern_with_nested_repeats_finishes_its_rows(text_engine):
    url = r"^(https?://)?([\da-z\.-]+)\.([a-z\.]{2,6})([/\w \.-]*)*/?"
    schema = {"type": "object", "properties": {"url": {"type": "string", "pattern": url}}, "required": ["url"]}
    rows, summary = rows_of(text_engine, schema, num_rows=20)
    assert len(rows) == 20 and not summary.partial
    assert_valid(schema, rows)


def test_a_boolean_schema_root_is_wrapped_not_read_as_a_field_named_type(text_engine):
    schema = {"type": "boolean"}
    rows, summary = rows_of(text_engine, schema, num_rows=2)
    assert sorted(r["value"] for r in rows) == [False, True]
    assert_valid(schema, rows, wrapped=True)


def test_every_format_gives_values_the_format_checker_accepts(text_engine):
    formats = ["date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uuid", "uri-reference", "iri", "idn-email", "json-pointer", "regex"]
    schema = {"type": "object", "properties": {f: {"type": "string", "format": f} for f in formats}, "required": formats}
    rows, summary = rows_of(text_engine, schema, num_rows=10)
    assert len(rows) == 10 and summary.rows_invalid == 0, summary.rejected_by
    assert_valid(schema, rows)


def test_const_enums_of_any_json_and_type_arrays_give_valid_rows(text_engine):
    schema = {
        "type": "object",
        "properties": {
            "c": {"const": {"version": 2}},
            "e": {"enum": [1, "two", None, [3], {"four": 4}, True]},
            "t": {"type": ["string", "integer", "null"], "maxLength": 5},
            "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.25, "maximum": 10},
        },
        "required": ["c", "e", "t", "n"],
        "additionalProperties": False,
    }
    rows, _ = rows_of(text_engine, schema, num_rows=12)
    assert_valid(schema, rows)
    assert all(row["c"] == {"version": 2} for row in rows)


def test_draft_04_schemas_are_read_as_draft_04(text_engine):
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "id": "http://example.com/legacy.json",
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 3}, "tag": {"$ref": "#/definitions/tag"}},
        "definitions": {"tag": {"type": "string", "enum": ["a", "b"]}},
        "required": ["n", "tag"],
    }
    rows, _ = rows_of(text_engine, schema, num_rows=6)
    assert_valid(schema, rows)
    assert all(1 <= row["n"] <= 3 for row in rows)


def test_extra_keys_follow_additional_properties_and_pattern_properties(text_engine):
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8}},
            "codes": {"type": "object", "patternProperties": {"^x-[a-z]{2}$": {"type": "integer"}}, "additionalProperties": False},
        },
        "required": ["labels", "codes"],
    }
    rows, _ = rows_of(text_engine, schema, num_rows=20)
    assert_valid(schema, rows)
    assert any(row["labels"] for row in rows) and any(row["codes"] for row in rows)


def test_all_of_is_merged_and_prefix_items_keep_their_places(text_engine):
    schema = {
        "$defs": {"Named": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}, "required": ["name"]}},
        "type": "object",
        "properties": {
            "who": {"allOf": [{"$ref": "#/$defs/Named"}, {"properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120}}, "required": ["age"]}]},
            "point": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": False, "minItems": 2},
        },
        "required": ["who", "point"],
    }
    rows, _ = rows_of(text_engine, schema, num_rows=10)
    assert_valid(schema, rows)
    assert all({"name", "age"} <= set(row["who"]) and len(row["point"]) == 2 for row in rows)


def test_a_schema_whose_rows_never_come_out_valid_ends_partial_with_the_keyword_that_fails(text_engine):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"], "not": {"required": ["n"]}}
    rows, summary = rows_of(text_engine, schema, num_rows=5)
    assert rows == [] and summary.partial
    assert "invalid rows (not: " in summary.reason and summary.rejected_by["not"] == summary.rows_invalid


def test_rows_past_the_row_time_limit_are_given_up_with_the_reason(text_engine):
    before = text_engine.row_time_limit_s
    text_engine.row_time_limit_s = 1e-6
    try:
        rows, summary = rows_of(text_engine, {"name": "string"}, num_rows=2)
    finally:
        text_engine.row_time_limit_s = before
    assert rows == [] and summary.partial
    assert "ran past the 1e-06 s row time limit" in summary.reason and summary.rejected_by["time limit"] >= 3


def test_vendor_keywords_are_listed_as_ignored_and_a_misspelt_keyword_is_refused(text_engine):
    from sdg.schema import SchemaError, read_schema

    read = read_schema({"type": "object", "properties": {"a": {"type": "string", "x-ui": "text", "esriDocumentation": {}}}})
    assert read.ignored == ("/properties/a/x-ui", "/properties/a/esriDocumentation")
    with pytest.raises(SchemaError, match="did you mean 'minimum'"):
        read_schema({"type": "object", "properties": {"a": {"type": "integer", "minimun": 3}}})


def test_a_schema_whose_required_keys_alone_pass_the_token_limit_is_refused_before_decoding(text_engine):
    from text_service.engine import RequestError

    schema = {"type": "object", "properties": {f"a_rather_long_field_name_number_{i}": {"type": "integer"} for i in range(60)}}
    schema["required"] = list(schema["properties"])
    with pytest.raises(RequestError, match="max_new_tokens: any row of this schema takes at least [0-9]+ tokens"):
        text_engine.check_request(RowRequest(schema=schema, num_rows=1, max_new_tokens=128))


def test_all_of_wrappers_around_refs_that_recurse_are_read_to_a_bounded_depth(text_engine):
    schema = {
        "definitions": {
            "Stuff": {"type": "object", "properties": {"more": {"allOf": [{"$ref": "#/definitions/More"}, {"title": "more"}]}, "n": {"type": "integer"}}},
            "More": {"type": "object", "properties": {"stuff": {"allOf": [{"$ref": "#/definitions/Stuff"}, {"title": "stuff"}]}}},
        },
        "$ref": "#/definitions/Stuff",
    }
    rows, summary = rows_of(text_engine, schema, num_rows=5)
    assert len(rows) == 5 and not summary.partial
    assert_valid(schema, rows)


def test_https_draft_uris_and_ecma_named_groups_are_read_as_their_drafts(text_engine):
    from sdg.schema import read_schema

    schema = {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "$id": "#Configuration",
        "type": "object",
        "properties": {"version": {"type": "string", "pattern": "^(?<major>0|[1-9][0-9]*)\\.(?<minor>[0-9]+)$"}},
        "required": ["version"],
    }
    assert read_schema(schema).source == schema
    rows, summary = rows_of(text_engine, schema, num_rows=4)
    assert len(rows) == 4 and summary.rows_invalid == 0, summary.rejected_by
