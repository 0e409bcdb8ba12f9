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
        ({"x": {"type": "string", "pattern": "(a)\\1"}}, "x", "backreference"),
        ({"x": {"$dynamicRef": "#meta"}}, "x", "$dynamicRef is not supported"),
        ({"x": {"type": "string", "minLength": 200_000}}, "x", "minLength 200000 is 100000 over the supported 100000"),
        ({"x": {"type": "array", "items": "int", "minItems": 2000}}, "x", "minItems 2000 is 1000 over the supported 1000"),
        ({"x": {"type": "integer", "enum": ["a"]}}, "x", "no value of 'enum'/'const' satisfies"),
        ({"x": {"type": "array", "items": "int", "minItems": 4, "maxItems": 2}}, "x", "minItems 4 is greater than maxItems 2"),
        ({"a": {"type": "object", "properties": {"b": {"type": "number", "maximum": "high"}}}}, "a.b", "finite number"),
        ({"t": {"type": "array", "items": "colour"}}, "t[]", "unknown type 'colour'"),
        ({"x": {"type": "number", "minimum": 1e300}}, "x", "outside the supported range"),
        ({"x": 5}, "x", "expected a type name"),
        ({"x": {"type": "string", "maxLenght": 3}}, "x", "unknown keyword 'maxLenght' (did you mean 'maxLength'?)"),
        ({"x": {"allOf": [{"type": "string"}, {"type": "integer"}]}}, "x", 'allOf/0 is type "string" and allOf/1 is type "integer"'),
        ({"x": {"$ref": "https://example.com/address.json"}}, "x", "points outside this schema"),
        ({"x": {"$ref": "#/$defs/Missing"}}, "x", "nothing at '/$defs/Missing'"),
        ({"x": {"type": "object", "properties": {"a": "int"}, "required": ["b"], "additionalProperties": False}}, "x", "'required' names 'b'"),
    ],
)
def test_unhonourable_schemas_name_the_field_and_reason(schema, field, reason):
    with pytest.raises(SchemaError) as info:
        normalize_schema(schema)
    assert info.value.field == field
    assert reason in str(info.value)
    assert str(info.value).startswith(f"schema.{field}: ")


def test_a_refusal_gives_the_json_pointer_of_the_keyword():
    with pytest.raises(SchemaError) as info:
        normalize_schema({"type": "object", "properties": {"a": {"type": "string", "pattern": "(x)\\1"}}})
    assert info.value.pointer == "/properties/a/pattern"
    assert str(info.value).endswith("(at #/properties/a/pattern)")


@pytest.mark.parametrize("schema", [{}, [], "name: string", None])
def test_empty_or_non_object_schema_is_rejected(schema):
    with pytest.raises(SchemaError):
        normalize_schema(schema)


def _draft_keywords() -> set[str]:
    """Every keyword the meta-schemas of JSON Schema 2020-12, 2019-09, draft-07 and draft-04 define."""
    from jsonschema_specifications import REGISTRY

    vocabularies = ["core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation", "content"]
    uris = [f"https://json-schema.org/draft/2020-12/meta/{v}" for v in vocabularies]
    uris += ["https://json-schema.org/draft/2019-09/meta/core", "http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-04/schema#"]
    return {name for uri in uris for name in REGISTRY.contents(uri).get("properties", {})}


def test_the_keyword_table_says_what_becomes_of_every_keyword_of_every_draft_exactly_once():
    from sdg.schema import KEYWORDS, Handling

    keywords = _draft_keywords()
    assert keywords - set(KEYWORDS) == set(), "keywords in no category"
    assert set(KEYWORDS) - keywords == set(), "the table lists a keyword no draft defines"
    by_handling = {h: {k for k, v in KEYWORDS.items() if v is h} for h in Handling}
    for a in Handling:
        for b in Handling:
            assert a is b or not by_handling[a] & by_handling[b], f"keywords in two categories: {by_handling[a] & by_handling[b]}"
    assert set().union(*by_handling.values()) == keywords


def test_every_refused_keyword_is_refused_with_its_reason():
    from sdg.schema import KEYWORDS, WHY_REFUSED, Handling

    for keyword in [k for k, h in KEYWORDS.items() if h is Handling.REFUSED]:
        with pytest.raises(SchemaError) as info:
            normalize_schema({"type": "object", "properties": {"a": {keyword: "#x"}}})
        assert info.value.pointer == f"/properties/a/{keyword}"
        assert WHY_REFUSED[keyword] in str(info.value)


def test_docs_schemas_lists_each_keyword_under_the_handling_the_table_gives_it():
    import re
    from pathlib import Path

    from sdg.schema import KEYWORDS, Handling

    doc = (Path(__file__).resolve().parents[2] / "docs" / "SCHEMAS.md").read_text(encoding="utf-8")
    listed = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        handling = next((h for h in Handling if cells and cells[0].startswith(h.value)), None)
        if handling is not None and len(cells) == 2:
            listed[handling] = set(re.findall(r"`([^`]+)`", cells[1]))
    for handling in Handling:
        assert listed.get(handling) == {k for k, v in KEYWORDS.items() if v is handling}, handling
