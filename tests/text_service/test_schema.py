"""The schema language: shorthand, JSON Schema properties, whole schemas, and clear rejections."""

import pytest

from sdg.schema import SHORTHAND, SchemaError, normalize_schema
from tests.text_service.schemas import EVERY_TYPE, SEED_SCHEMA


def test_seed_shorthand_becomes_a_json_schema_object():
    schema = normalize_schema(SEED_SCHEMA)
    assert schema["type"] == "object"
    assert schema["required"] == ["customer_name", "age", "order_value"]
    assert schema["properties"]["age"] == {"type": "integer"}
    assert schema["properties"]["order_value"] == {"type": "number"}
    assert schema["properties"]["customer_name"]["type"] == "string"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", ["bool", "date", "datetime", "email", "uuid"])
def test_new_shorthands(name):
    assert normalize_schema({"x": name})["properties"]["x"] == SHORTHAND[name]


def test_strings_are_bounded_by_default():
    assert normalize_schema({"x": "string"})["properties"]["x"]["maxLength"] == 48


def test_whole_json_schema_object_keeps_required():
    schema = normalize_schema(
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": "string"}, "required": ["a"]}
    )
    assert schema["required"] == ["a"]


def test_every_type_schema_is_accepted():
    schema = normalize_schema(EVERY_TYPE)
    assert schema["properties"]["nickname"]["type"] == ["string", "null"]
    assert schema["properties"]["tags"]["items"]["maxLength"] == 10


@pytest.mark.parametrize(
    "schema, field, reason",
    [
        ({"x": "decimal"}, "x", "unknown type 'decimal'"),
        ({"x": {"type": "integer", "minimum": 9, "maximum": 1}}, "x", "minimum 9 is greater than maximum 1"),
        ({"x": {"type": "string", "pattern": "[a-"}}, "x", "does not compile"),
        ({"x": {"type": "string", "pattern": "(?=a)b"}}, "x", "lookaround"),
        ({"x": {"type": "string", "oneOf": []}}, "x", "unsupported keyword 'oneOf'"),
        ({"x": {"type": "string", "format": "ipv4"}}, "x", "unsupported format 'ipv4'"),
        ({"x": {"type": "string", "minLength": 5, "maxLength": 2}}, "x", "minLength 5 is greater than maxLength 2"),
        ({"x": {"type": "string", "minLength": 600}}, "x", "minLength 600 is above the supported maximum length 512"),
        ({"x": {"type": "array", "items": "int", "minItems": 65}}, "x", "minItems 65 is above the supported maximum 64 items"),
        ({"x": {"type": "integer", "enum": ["a"]}}, "x", "enum value 'a' is not of type 'integer'"),
        ({"x": {"type": "integer", "minimum": 1.5}}, "x", "whole number"),
        ({"x": {"type": "array", "items": "int", "minItems": 4, "maxItems": 2}}, "x", "minItems 4 is greater than maxItems 2"),
        ({"x": {"type": "array"}}, "x", "needs 'items'"),
        ({"a": {"type": "object", "properties": {"b": {"type": "number", "maximum": "high"}}}}, "a.b", "finite number"),
        ({"t": {"type": "array", "items": "colour"}}, "t[]", "unknown type 'colour'"),
        ({"x": {"type": ["string", "integer"]}}, "x", "one type"),
        ({"x": {"type": "number", "minimum": 1e300}}, "x", "outside the supported range"),
        ({"x": 5}, "x", "expected a type name"),
    ],
)
def test_unhonourable_schemas_name_the_field_and_reason(schema, field, reason):
    with pytest.raises(SchemaError) as info:
        normalize_schema(schema)
    assert info.value.field == field
    assert reason in str(info.value)
    assert str(info.value).startswith(f"schema.{field}: ")


@pytest.mark.parametrize("schema", [{}, [], "name: string", None])
def test_empty_or_non_object_schema_is_rejected(schema):
    with pytest.raises(SchemaError):
        normalize_schema(schema)
