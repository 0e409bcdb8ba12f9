"""sdg.design at the door and on rows: {field} references, the write order, computed fields,
unique fields and order rules across fields."""

import datetime as dt

import pytest

from sdg.design import UniqueLedger
from sdg.schema import SchemaError, read_schema


def refused(schema) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        read_schema(schema)
    return caught.value


def test_fields_are_written_after_what_they_depend_on_and_in_schema_order_otherwise():
    read = read_schema({
        "bio": {"type": "string", "description": "a bio of {name}, aged {age}"},
        "city": "string",
        "name": "string",
        "age": {"type": "integer", "minimum": 1, "maximum": 99, "x-sdg": {"uniform": {}}},
        "renewal": {"type": "string", "format": "date", "x-sdg": {"greater_than": "signup"}},
        "signup": "date",
    })
    assert list(read.schema["properties"]) == ["age", "city", "name", "bio", "signup", "renewal"]
    assert read.design.conditioned == {"bio": "a bio of {name}, aged {age}"}
    assert any("after the fields they depend on" in note for note in read.notes)


def test_a_description_naming_an_unknown_field_is_refused_at_its_pointer():
    error = refused({"bio": {"type": "string", "description": "a bio of {nmae}"}, "name": "string"})
    assert (error.field, error.pointer) == ("bio", "/properties/bio/description") and "{nmae}" in error.reason


def test_doubled_braces_and_braces_around_no_name_are_literal_in_a_description():
    read = read_schema({"code": {"type": "string", "description": "like {{a: 1}}"},
                        "meta": {"type": "object", "description": "one of {ObjectMeta, ListMeta}, as {key,value}"}})
    assert read.design is None


def test_a_dependency_cycle_is_refused_naming_the_cycle():
    error = refused({
        "bio": {"type": "string", "description": "about {name}"},
        "name": {"type": "string", "description": "the name in {bio}"},
    })
    assert "bio -> name -> bio" in error.reason and error.pointer == "/properties/bio"
    error = refused({"a": {"type": "integer", "x-sdg": {"expression": "b + 1"}}, "b": {"type": "integer", "x-sdg": {"greater_than": "a"}}})
    assert "a -> b -> a" in error.reason


@pytest.mark.parametrize("expression, words", [
    ("age +", "not valid"),
    ("agee * 2", "'agee', which is no top-level field"),
    ("name ~ 'x'", "gives a string, which never fits this integer field"),
    ("'seven'", "is not of type integer"),
])
def test_an_expression_that_cannot_work_is_refused_at_its_pointer(expression, words):
    error = refused({"age": "int", "name": "string", "n": {"type": "integer", "x-sdg": {"expression": expression}}})
    assert error.pointer == "/properties/n/x-sdg/expression" and words in error.reason, error.reason


def test_computed_fields_are_left_out_of_what_the_model_writes_and_filled_in_after():
    read = read_schema({
        "name": "string",
        "signup": "date",
        "renewal": "date",
        "days": {"type": "integer", "minimum": 0, "x-sdg": {"expression": "(date(renewal) - date(signup)).days"}},
        "label": {"type": "string", "x-sdg": {"expression": "name ~ ' (' ~ days ~ ' days)'"}},
        "price": {"type": "number", "x-sdg": {"expression": "days * 1.5 / 7"}},
    })
    assert list(read.written["properties"]) == ["name", "signup", "renewal"] and "days" in read.schema["properties"]
    row = read.design.complete({"name": "Ada", "signup": "2024-01-02", "renewal": "2024-02-01"})
    assert row == {"name": "Ada", "signup": "2024-01-02", "renewal": "2024-02-01", "days": 30, "label": "Ada (30 days)", "price": 6.4286}
    assert read.design.complete({"name": "Ada", "signup": "2024-01-02", "renewal": "not a date"}) is None


def test_expressions_run_in_a_sandbox_with_bounded_work():
    read = read_schema({"n": "int", "big": {"type": "integer", "x-sdg": {"expression": "n ** 99999"}},
                        "s": {"type": "string", "x-sdg": {"expression": "n.__class__"}}})
    assert read.design.complete({"n": 3}) is None
    read = read_schema({"n": "int", "s": {"type": "string", "x-sdg": {"expression": "'a' * n"}}})
    assert read.design.complete({"n": 10**9}) is None and read.design.complete({"n": 3})["s"] == "aaa"


def test_an_expression_on_sampled_fields_is_known_before_decoding():
    read = read_schema({
        "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro"]}}},
        "label": {"type": "string", "x-sdg": {"expression": "'tier ' ~ tier"}},
    })
    known = read.known_values(seed=3, slot=5)
    assert known["label"] == "tier " + known["tier"]


@pytest.mark.parametrize("spec, words", [
    ({"greater_than": "nope"}, "must name another top-level field"),
    ({"greater_than": "name"}, "with name (not orderable)"),
    ({"less_or_equal": "joined"}, "age (number) with joined (date)"),
])
def test_an_order_rule_on_an_unknown_or_incompatible_field_is_refused_at_its_pointer(spec, words):
    key = next(iter(spec))
    error = refused({"age": {"type": "integer", "x-sdg": spec}, "name": "string", "joined": "date"})
    assert error.pointer == f"/properties/age/x-sdg/{key}" and words in error.reason, error.reason


def test_sampled_ranges_that_never_keep_an_order_rule_are_refused():
    error = refused({
        "start": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2024-01-01", "end": "2024-12-31"}}},
        "end": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2023-12-31"}, "greater_or_equal": "start"}},
    })
    assert error.pointer == "/properties/end/x-sdg/greater_or_equal" and "never holds" in error.reason


def test_two_sampled_fields_keep_their_order_rule_in_every_row():
    read = read_schema({
        "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
        "renewal": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2025-12-31"}, "greater_than": "signup"}},
        "low": {"type": "number", "x-sdg": {"uniform": {"min": 0, "max": 10}}},
        "high": {"type": "number", "x-sdg": {"uniform": {"min": 5, "max": 15}, "greater_or_equal": "low"}},
    })
    rows = [read.samplers.values(7, slot) for slot in range(10_000)]
    assert all(dt.date.fromisoformat(r["renewal"]) > dt.date.fromisoformat(r["signup"]) for r in rows)
    assert all(r["high"] >= r["low"] for r in rows)


def test_a_unique_field_with_fewer_values_than_rows_is_refused():
    read = read_schema({"tier": {"type": "string", "x-sdg": {"category": {"values": ["a", "b", "c"]}, "unique": True}},
                        "level": {"type": "string", "enum": ["x", "y"], "x-sdg": {"unique": True}}})
    read.design.check_rows(2)
    with pytest.raises(SchemaError) as caught:
        read.design.check_rows(3)
    assert caught.value.pointer == "/properties/level/x-sdg/unique" and "only 2 distinct values" in caught.value.reason


def test_the_unique_ledger_turns_away_a_repeated_value_and_counts_it():
    read = read_schema({"email": {"type": "string", "x-sdg": {"unique": True}}, "score": {"type": "number", "x-sdg": {"unique": True}}})
    ledger = UniqueLedger(read.design)
    assert ledger.admit({"email": "a@x.nl", "score": 5})
    assert not ledger.admit({"email": "b@x.nl", "score": 5.0})  # one number, however written
    assert not ledger.admit({"email": "a@x.nl", "score": 6})
    assert ledger.manifest() == {"email": {"collisions": 1}, "score": {"collisions": 1}}
