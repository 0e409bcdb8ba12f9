"""Output files without any service: the four data formats load with the right types, job folders
never collide, and the image dataset loads as COCO (pycocotools) and as a Hugging Face imagefolder."""

from __future__ import annotations

import io
import json
import shutil
import threading
from datetime import date, datetime, timezone

import jsonschema
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gateway.outputs import ImageDatasetWriter, RowWriter, create_job_folder, display_path, salvage_images, salvage_rows
from gateway.errors import JobFailure
from gateway.outputs.tables import RowFormatError, json_value, read_rows, resolve_ref
from gateway.results import DetectedObject, GeneratedImage
from gateway.resume import row_key
from sdg.schema import normalize_schema

SCHEMA = normalize_schema(
    {
        "name": "string",
        "age": "int",
        "score": "float",
        "active": "bool",
        "born": "date",
        "seen": "datetime",
        "nickname": {"type": ["string", "null"]},
        "address": {"type": "object", "properties": {"city": "string", "zip": "int"}},
        "tags": {"type": "array", "items": "string"},
    }
)
ROWS = [
    {
        "name": "Ada",
        "age": 36,
        "score": 1.5,
        "active": True,
        "born": "1990-01-02",
        "seen": "2024-05-06T07:08:09Z",
        "nickname": None,
        "address": {"city": "Delft", "zip": 2611},
        "tags": ["a", "b"],
    },
    {
        "name": "Bo, \"the\" second",
        "age": 41,
        "score": 2,
        "active": False,
        "born": "1983-12-31",
        "seen": "2024-05-06T09:08:09+02:00",
        "nickname": "bo",
        "address": {"city": "Gent", "zip": 9000},
        "tags": [],
    },
]


def write(tmp_path, fmt, rows=ROWS, batches=2):
    with RowWriter(tmp_path, fmt, SCHEMA) as writer:
        for i in range(batches):
            writer.write(rows[i::batches])
    return tmp_path / f"data.{fmt}"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_rows_read_back_as_the_json_the_service_wrote(tmp_path, fmt):
    # As the text service writes them: timestamps in UTC with a Z (the grammar's only form).
    rows = [{**row, "seen": "2024-05-06T07:08:09Z"} for row in ROWS]
    write(tmp_path, fmt, rows)
    expected = [json_value(row, SCHEMA) for row in rows]  # as data.json holds them: 2 -> 2.0
    if fmt == "csv":  # an empty cell in a string column reads as "", which a prompt shows alike
        expected = [{**row, "nickname": row["nickname"] or ""} for row in expected]
    assert read_rows(tmp_path, fmt, SCHEMA) == expected


def test_json_is_an_array_in_order(tmp_path):
    path = write(tmp_path, "json", batches=1)
    assert json.loads(path.read_text()) == ROWS
    frame = pd.read_json(path)
    assert frame["age"].dtype == "int64" and frame["active"].dtype == bool


def test_whole_numbers_in_a_number_column_are_written_as_floats(tmp_path):
    rows = [{**ROWS[0], "score": 3}, {**ROWS[1], "score": 4, "address": {"city": "x", "zip": 1}}]
    frame = pd.read_csv(write(tmp_path, "csv", rows=rows, batches=1))
    assert frame["score"].dtype == "float64" and frame["age"].dtype == "int64"
    # pandas' read_json turns 3.0 back into an int on its own, so JSON is checked as JSON.
    for row in json.loads(write(tmp_path, "json", rows=rows, batches=1).read_text()):
        assert isinstance(row["score"], float) and isinstance(row["age"], int)
        assert isinstance(row["address"]["zip"], int)


def test_empty_json_is_still_an_array(tmp_path):
    with RowWriter(tmp_path, "json", SCHEMA):
        pass
    assert json.loads((tmp_path / "data.json").read_text()) == []


def test_jsonl_has_one_row_per_line(tmp_path):
    path = write(tmp_path, "jsonl", batches=1)
    assert [json.loads(line) for line in path.read_text().splitlines()] == ROWS
    assert pd.read_json(path, lines=True)["score"].tolist() == [1.5, 2.0]


def test_csv_types_and_nested_values(tmp_path):
    path = write(tmp_path, "csv", batches=1)
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(SCHEMA["properties"])
    assert frame["age"].dtype == "int64"
    assert frame["score"].dtype == "float64"
    assert frame["active"].dtype == bool
    assert frame["name"].tolist() == ["Ada", 'Bo, "the" second']
    assert json.loads(frame["address"][0]) == {"city": "Delft", "zip": 2611}
    assert json.loads(frame["tags"][1]) == []
    assert pd.isna(frame["nickname"][0])


def test_parquet_columns_are_typed_from_the_schema(tmp_path):
    path = write(tmp_path, "parquet")
    table = pq.read_table(path)
    types = {field.name: str(field.type) for field in table.schema}
    assert types == {
        "name": "string",
        "age": "int64",
        "score": "double",
        "active": "bool",
        "born": "date32[day]",
        "seen": "timestamp[us, tz=UTC]",
        "nickname": "string",
        "address": "struct<city: string, zip: int64>",
        "tags": "list<element: string>",
    }
    # Batches went in as [row 0], [row 1]: the order must survive.
    rows = table.to_pylist()
    assert [row["name"] for row in rows] == ["Ada", 'Bo, "the" second']
    assert rows[0]["born"] == date(1990, 1, 2)
    assert rows[1]["seen"] == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    assert rows[0]["address"] == {"city": "Delft", "zip": 2611}
    assert rows[1]["tags"] == [] and rows[0]["nickname"] is None
    frame = pd.read_parquet(path)
    assert frame["age"].dtype == "int64" and frame["active"].dtype == bool
    assert str(frame["seen"].dtype) == "datetime64[us, UTC]"


def test_empty_parquet_still_loads_with_its_columns(tmp_path):
    with RowWriter(tmp_path, "parquet", SCHEMA):
        pass
    table = pq.read_table(tmp_path / "data.parquet")
    assert table.num_rows == 0 and table.schema.field("age").type == "int64"


def test_a_value_that_does_not_fit_its_column_names_the_field(tmp_path):
    writer = RowWriter(tmp_path, "parquet", SCHEMA)
    writer.write([{**ROWS[0], "born": "not a date"}])
    with pytest.raises(RowFormatError, match="born"):
        writer.close()
    # Closed anyway: the file is a valid (empty) Parquet file rather than a torn one.
    assert pq.read_table(tmp_path / "data.parquet").num_rows == 0


# What each format's writer was in the middle of writing when its process died: half a row.
HALF_A_ROW = {"json": ',\n  {"name": "Cy", "ag', "jsonl": '{"name": "Cy", "ag', "csv": 'Cy,5', "parquet": '{"name": "Cy", "ag'}


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_a_dead_writers_file_is_salvaged_with_every_whole_row(tmp_path, fmt):
    """The folder as a killed process leaves it: rows written, close() never called, and half of
    the next row. salvage_rows keeps the whole rows and makes the file load."""
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir()
    writer = RowWriter(live, fmt, SCHEMA)
    writer.write(ROWS)
    shutil.copytree(live, dead)  # a snapshot before close(): what a SIGKILL leaves on disk
    writer.close()
    half = dead / (".data.parquet.rows.jsonl" if fmt == "parquet" else f"data.{fmt}")
    with half.open("a", encoding="utf-8") as f:
        f.write(HALF_A_ROW[fmt])
    if fmt == "parquet":
        with pytest.raises(Exception):
            pq.read_table(dead / "data.parquet")  # no footer yet
    assert salvage_rows(dead, fmt, SCHEMA) == len(ROWS)
    # The same data as the file the live writer closed properly.
    if fmt == "parquet":
        assert pq.read_table(dead / "data.parquet").equals(pq.read_table(live / "data.parquet"))
        assert [p.name for p in dead.iterdir()] == ["data.parquet"]  # the spool is gone
    else:
        assert (dead / f"data.{fmt}").read_text() == (live / f"data.{fmt}").read_text()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_a_writer_that_died_before_its_first_row_leaves_an_empty_loadable_file(tmp_path, fmt):
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir()
    writer = RowWriter(live, fmt, SCHEMA)
    shutil.copytree(live, dead)
    writer.close()
    assert salvage_rows(dead, fmt, SCHEMA) == 0
    assert (dead / f"data.{fmt}").read_bytes() == (live / f"data.{fmt}").read_bytes()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
@pytest.mark.parametrize("kept", [0, 1])
def test_a_resumed_writer_adds_to_the_file_a_single_writer_makes(tmp_path, fmt, kept):
    """A resumed text job goes on writing its closed data file (after gateway.salvage, when its
    process died): the file ends as one writer writing every row makes it."""
    once, resumed = tmp_path / "once", tmp_path / "resumed"
    once.mkdir()
    resumed.mkdir()
    write(once, fmt, batches=1)
    with RowWriter(resumed, fmt, SCHEMA) as first:
        first.write(ROWS[:kept])
    with RowWriter(resumed, fmt, SCHEMA, kept=read_rows(resumed, fmt, SCHEMA)) as second:
        assert second.rows_written == kept
        second.write(ROWS[kept:])
    assert second.rows_written == len(ROWS)
    if fmt == "parquet":
        assert pq.read_table(resumed / "data.parquet").equals(pq.read_table(once / "data.parquet"))
        assert [p.name for p in resumed.iterdir()] == ["data.parquet"]
    else:
        assert (resumed / f"data.{fmt}").read_text() == (once / f"data.{fmt}").read_text()


def test_a_resume_that_dies_while_it_spools_the_kept_rows_loses_none_of_them(tmp_path):
    """A resumed Parquet writer copies the kept rows into its spool before it truncates the file,
    and salvage takes a spool it finds for the whole output. So a spool appears only once it holds
    every kept row: here the copy fails part-way (a row that cannot be written stands in for the
    process dying), and salvage then finds the closed file as it was."""
    with RowWriter(tmp_path, "parquet", SCHEMA) as first:
        first.write(ROWS)
    before = pq.read_table(tmp_path / "data.parquet")
    kept = read_rows(tmp_path, "parquet", SCHEMA)
    with pytest.raises(TypeError):
        RowWriter(tmp_path, "parquet", SCHEMA, kept=kept[:1] + [object()] + kept[1:])
    assert not (tmp_path / ".data.parquet.rows.jsonl").exists()
    assert salvage_rows(tmp_path, "parquet", SCHEMA) == len(ROWS)
    assert pq.read_table(tmp_path / "data.parquet").equals(before)


# Normalized schemas of the forms beyond flat objects (docs: sdg.schema.normalize_schema's closed form).
ADDRESS = {
    "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}, "zip": {"type": "string"}},
    "required": ["street", "city"],
    "additionalProperties": False,
}
# What a Pydantic model with an Address model, a Status enum, Optional, list, dict and union fields gives.
PYDANTIC_SCHEMA = {
    "type": "object",
    "title": "Person",
    "$defs": {"Address": ADDRESS, "Status": {"enum": ["active", "inactive"], "type": "string"}},
    "properties": {
        "name": {"type": "string"},
        "status": {"$ref": "#/$defs/Status"},
        "home": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
        "nickname": {"type": "string"},
        "past": {"type": "array", "items": {"$ref": "#/$defs/Address"}},
        "scores": {"type": "object", "properties": {}, "required": [], "additionalProperties": {"type": "integer"}},
        "code": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "anything": {},
        "weight": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    },
    "required": ["name", "status", "home", "past", "scores", "code", "anything", "weight"],
    "additionalProperties": False,
}
PYDANTIC_ROWS = [
    {
        "name": "Ada", "status": "active", "home": {"street": "Oude Delft 1", "city": "Delft", "zip": "2611"}, "nickname": "ada",
        "past": [{"street": "Markt 2", "city": "Gent"}], "scores": {"math": 9, "art": 7}, "code": "A1", "anything": {"k": [1, 2]}, "weight": 61,
    },
    {"name": "Bo", "status": "inactive", "home": None, "past": [], "scores": {}, "code": 42, "anything": "text", "weight": None},
    {
        "name": "Cy", "status": "active", "home": {"street": "Dam 3", "city": "Amsterdam"}, "past": [], "scores": {"x": 1},
        "code": 7, "anything": None, "weight": 70.5,
    },
]
# A root that allows extra keys, with a def that is a ref, prefixItems, a mixed enum and a nested open object.
OPEN_SCHEMA = {
    "type": "object",
    "$defs": {
        "Point": {
            "type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": {"type": "string"}, "minItems": 2, "maxItems": 3,
        },
        "Where": {"$ref": "#/$defs/Point"},
        "Day": {"type": ["string", "null"], "format": "date"},
    },
    "properties": {
        "id": {"type": "integer"},
        "where": {"$ref": "#/$defs/Where"},
        "born": {"$ref": "#/$defs/Day"},
        "level": {"enum": ["low", 2, True, None]},
        "ratio": {"enum": [0.5, 1], "type": "number"},
        "labels": {
            "type": "object", "properties": {"lang": {"type": "string"}}, "required": ["lang"], "additionalProperties": {"type": "string"},
        },
        "seen": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id", "where", "born", "level", "ratio", "labels"],
    "additionalProperties": {"type": "number"},
}
OPEN_ROWS = [
    {
        "id": 1, "where": [1, 2.5], "born": "1990-01-02", "level": "low", "ratio": 1, "labels": {"lang": "en", "note": "x"},
        "seen": "2024-05-06T07:08:09Z", "temp": 20,
    },
    {"id": 2, "where": [0.5, 3, "north"], "born": None, "level": None, "ratio": 0.5, "labels": {"lang": "nl"}},
    {"id": 3, "where": [4, 5], "born": "2000-02-29", "level": 2, "ratio": 0.5, "labels": {"lang": "fr"}, "seen": None, "temp": 1.5, "wind": 3},
]
# As data.json holds them: every `number` a float, through refs, nullable anyOf, prefixItems and extra keys.
OPEN_FILE_ROWS = [
    {
        "id": 1, "where": [1.0, 2.5], "born": "1990-01-02", "level": "low", "ratio": 1.0, "labels": {"lang": "en", "note": "x"},
        "seen": "2024-05-06T07:08:09Z", "temp": 20.0,
    },
    {"id": 2, "where": [0.5, 3.0, "north"], "born": None, "level": None, "ratio": 0.5, "labels": {"lang": "nl"}},
    {
        "id": 3, "where": [4.0, 5.0], "born": "2000-02-29", "level": 2, "ratio": 0.5, "labels": {"lang": "fr"}, "seen": None,
        "temp": 1.5, "wind": 3.0,
    },
]
FORMS = {"pydantic": (PYDANTIC_SCHEMA, PYDANTIC_ROWS), "open": (OPEN_SCHEMA, OPEN_ROWS)}


def write_form(folder, fmt, form):
    schema, rows = FORMS[form]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for row in rows:
        validator.validate(row)
    with RowWriter(folder, fmt, schema) as writer:
        writer.write(rows[:1])
        writer.write(rows[1:])
    return folder / f"data.{fmt}"


def load_dataset(path, fmt, tmp_path):
    datasets = pytest.importorskip("datasets")
    builder = "json" if fmt == "jsonl" else fmt
    return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf_cache"))


def test_a_ref_is_looked_up_in_the_roots_defs_also_through_a_def_that_is_a_ref():
    assert resolve_ref(OPEN_SCHEMA, {"$ref": "#/$defs/Where"}) is OPEN_SCHEMA["$defs"]["Point"]
    assert resolve_ref(OPEN_SCHEMA, {"type": "integer"}) == {"type": "integer"}
    with pytest.raises(JobFailure, match="Nowhere"):
        resolve_ref(OPEN_SCHEMA, {"$ref": "#/$defs/Nowhere"})


def test_json_writes_a_pydantic_models_rows_as_generated_with_numbers_as_floats(tmp_path):
    for fmt in ("json", "jsonl"):
        path = write_form(tmp_path, fmt, "pydantic")
        written = json.loads(path.read_text()) if fmt == "json" else [json.loads(line) for line in path.read_text().splitlines()]
        assert written == PYDANTIC_ROWS
        assert isinstance(written[0]["weight"], float) and isinstance(written[0]["scores"]["math"], int)
        assert "nickname" not in written[1] and "zip" not in written[2]["home"]  # absent stays absent
        frame = pd.read_json(path, lines=fmt == "jsonl")
        assert frame["weight"].dtype == "float64" and frame["code"].tolist() == ["A1", 42, 7]
        assert frame["home"][0] == PYDANTIC_ROWS[0]["home"] and frame["scores"][0] == {"math": 9, "art": 7}


def test_parquet_types_a_pydantic_models_columns_through_its_defs(tmp_path):
    path = write_form(tmp_path, "parquet", "pydantic")
    table = pq.read_table(path)
    address = "struct<street: string, city: string, zip: string>"
    assert {field.name: str(field.type) for field in table.schema} == {
        "name": "string",
        "status": "string",
        "home": address,
        "nickname": "string",
        "past": f"list<element: {address}>",
        "scores": "string",  # a dict[str, int]: extra keys, as JSON text
        "code": "string",  # a union, as JSON text
        "anything": "string",
        "weight": "double",
    }
    rows = table.to_pylist()
    assert rows[0]["home"] == {"street": "Oude Delft 1", "city": "Delft", "zip": "2611"}
    assert rows[2]["home"] == {"street": "Dam 3", "city": "Amsterdam", "zip": None}  # an optional field left out
    assert rows[1]["home"] is None and rows[1]["nickname"] is None
    assert [row["code"] for row in rows] == ['"A1"', "42", "7"]
    assert [row["scores"] for row in rows] == ['{"math": 9, "art": 7}', "{}", '{"x": 1}']
    assert [row["anything"] for row in rows] == ['{"k": [1, 2]}', '"text"', None]
    frame = pd.read_parquet(path)
    assert frame["weight"].dtype == "float64" and frame["weight"].isna().tolist() == [False, True, False]
    assert json.loads(frame["scores"][0]) == {"math": 9, "art": 7}


def test_csv_holds_a_pydantic_models_nested_and_union_values_as_json_text(tmp_path):
    frame = pd.read_csv(write_form(tmp_path, "csv", "pydantic"))
    assert list(frame.columns) == list(PYDANTIC_SCHEMA["properties"])
    assert frame["weight"].dtype == "float64"
    assert [json.loads(code) for code in frame["code"]] == ["A1", 42, 7]
    assert json.loads(frame["home"][2]) == {"street": "Dam 3", "city": "Amsterdam"}
    assert json.loads(frame["past"][0]) == [{"street": "Markt 2", "city": "Gent"}]
    assert json.loads(frame["anything"][1]) == "text" and pd.isna(frame["anything"][2])
    assert pd.isna(frame["nickname"][1])  # an optional property left out: an empty cell


def test_extra_keys_at_the_root_are_one_json_column_in_csv_and_parquet_and_inline_in_json(tmp_path):
    extras = ['{"temp": 20.0}', None, '{"temp": 1.5, "wind": 3.0}']
    table = pq.read_table(write_form(tmp_path, "parquet", "open"))
    assert table.column_names == [*OPEN_SCHEMA["properties"], "__extra__"]
    assert {field.name: str(field.type) for field in table.schema} == {
        "id": "int64",
        "where": "string",  # prefixItems, as JSON text
        "born": "date32[day]",
        "level": "string",  # an enum mixing types, as JSON text
        "ratio": "double",
        "labels": "string",  # an object with extra keys, as JSON text
        "seen": "timestamp[us, tz=UTC]",
        "__extra__": "string",
    }
    assert table.column("__extra__").to_pylist() == extras
    assert table.column("where").to_pylist() == ["[1.0, 2.5]", '[0.5, 3.0, "north"]', "[4.0, 5.0]"]
    assert table.column("level").to_pylist() == ['"low"', None, "2"]
    frame = pd.read_csv(write_form(tmp_path, "csv", "open"))
    assert list(frame.columns) == [*OPEN_SCHEMA["properties"], "__extra__"]
    assert [None if pd.isna(cell) else cell for cell in frame["__extra__"]] == extras
    assert frame["id"].dtype == "int64" and frame["ratio"].dtype == "float64"
    frame = pd.read_json(write_form(tmp_path, "jsonl", "open"), lines=True)
    assert "__extra__" not in frame.columns and frame["temp"].tolist()[0] == 20.0


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_rows_of_every_schema_form_read_back_as_data_json_holds_them(tmp_path, fmt):
    for form in FORMS:
        (tmp_path / form).mkdir()
        write_form(tmp_path / form, fmt, form)
    assert read_rows(tmp_path / "pydantic", fmt, PYDANTIC_SCHEMA) == [json_value(row, PYDANTIC_SCHEMA) for row in PYDANTIC_ROWS]
    expected = OPEN_FILE_ROWS
    if fmt in ("csv", "parquet"):  # an optional property that was null reads back as left out
        expected = [{k: v for k, v in row.items() if not (k == "seen" and v is None)} for row in OPEN_FILE_ROWS]
    assert read_rows(tmp_path / "open", fmt, OPEN_SCHEMA) == expected


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_every_format_of_every_schema_form_loads_with_hugging_face_datasets(tmp_path, fmt):
    pydantic = load_dataset(write_form(tmp_path, fmt, "pydantic"), fmt, tmp_path)
    assert pydantic.num_rows == 3 and pydantic["name"] == ["Ada", "Bo", "Cy"] and pydantic["weight"] == [61.0, None, 70.5]
    opened = load_dataset(write_form(tmp_path, fmt, "open"), fmt, tmp_path)
    assert opened["id"] == [1, 2, 3] and opened["ratio"] == [1.0, 0.5, 0.5]
    if fmt in ("json", "jsonl"):
        assert pydantic[0]["home"] == PYDANTIC_ROWS[0]["home"] and pydantic["code"] == ["A1", 42, 7]
        assert opened["temp"] == [20.0, None, 1.5]
    else:
        assert [json.loads(code) for code in pydantic["code"]] == ["A1", 42, 7]
        assert opened["__extra__"][0] == '{"temp": 20.0}'
    if fmt == "parquet":
        assert pydantic.features["home"]["city"].dtype == "string" and pydantic[1]["home"] is None
        assert pydantic[0]["past"] == [{"street": "Markt 2", "city": "Gent", "zip": None}]
        assert opened.features["born"].dtype == "date32" and opened["born"][0] == date(1990, 1, 2)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_property_named_like_the_extra_keys_column_is_refused_when_the_root_allows_extra_keys(tmp_path, fmt):
    schema = {**OPEN_SCHEMA, "properties": {**OPEN_SCHEMA["properties"], "__extra__": {"type": "string"}}}
    with pytest.raises(JobFailure, match="__extra__"):
        RowWriter(tmp_path, fmt, schema)
    closed = {**schema, "additionalProperties": False}  # no extra keys: an ordinary column
    row = {**OPEN_ROWS[1], "__extra__": "mine"}
    jsonschema.Draft202012Validator(closed).validate(row)
    with RowWriter(tmp_path, fmt, closed) as writer:
        writer.write([row])
    assert read_rows(tmp_path, fmt, closed)[0]["__extra__"] == "mine"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
@pytest.mark.parametrize("form", ["pydantic", "open"])
def test_a_resumed_or_salvaged_writer_of_every_schema_form_makes_the_file_one_writer_makes(tmp_path, fmt, form):
    schema, rows = FORMS[form]
    once, resumed, dead = tmp_path / "once", tmp_path / "resumed", tmp_path / "dead"
    for folder in (once, resumed):
        folder.mkdir()
    write_form(once, fmt, form)
    with RowWriter(resumed, fmt, schema) as first:
        first.write(rows[:1])
    second = RowWriter(resumed, fmt, schema, kept=read_rows(resumed, fmt, schema))
    second.write(rows[1:])
    shutil.copytree(resumed, dead)  # what a SIGKILL leaves: for Parquet, only the spool is whole
    second.close()
    assert salvage_rows(dead, fmt, schema) == len(rows)
    for folder in (resumed, dead):
        if fmt == "parquet":
            assert pq.read_table(folder / "data.parquet").equals(pq.read_table(once / "data.parquet"))
        else:
            assert (folder / f"data.{fmt}").read_text() == (once / f"data.{fmt}").read_text()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
@pytest.mark.parametrize("form", ["pydantic", "open"])
def test_a_generated_row_and_its_copy_read_back_have_one_row_key(tmp_path, fmt, form):
    schema, rows = FORMS[form]
    write_form(tmp_path, fmt, form)
    assert [row_key(row, schema) for row in read_rows(tmp_path, fmt, schema)] == [row_key(row, schema) for row in rows]


def test_a_dead_writers_image_dataset_is_salvaged(tmp_path):
    """As a SIGKILL leaves it: two images added, close() never called, a third PNG half written
    and a fourth written but not listed. Salvage keeps the two, and their COCO file is the one a
    closing writer writes."""
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir()
    writer = ImageDatasetWriter(live)
    for i, label in enumerate(("dog", "cat")):
        writer.add(GeneratedImage(i, f"a {label}", i, png(), 64, 48, objects=[boxed(label, 0.5, [1, 2, 3, 4])]))
    shutil.copytree(live, dead)
    writer.close()
    (dead / "images" / ".image_00002.png.tmp").write_bytes(b"\x89PNG half")
    (dead / "images" / "image_00003.png").write_bytes(png())
    with (dead / "images" / "metadata.jsonl").open("a") as f:
        f.write('{"file_name": "image_00002.png", "pro')
    assert salvage_images(dead) == {0, 1}
    assert sorted(p.name for p in (dead / "images").iterdir()) == ["image_00000.png", "image_00001.png", "metadata.jsonl"]
    assert (dead / "images" / "metadata.jsonl").read_text() == (live / "images" / "metadata.jsonl").read_text()
    salvaged, closed = (json.loads((folder / "annotations" / "annotations.json").read_text()) for folder in (dead, live))
    for key in ("images", "annotations", "categories"):
        assert salvaged[key] == closed[key]
    assert not list(dead.glob(".*"))  # no spool left behind


def whole_and_stopped(tmp_path, image, stopped_after: int):
    """Two folders: a dataset of image(0..3) one writer made, and one whose job stopped after
    `stopped_after` images, to resume."""
    whole, stopped = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir(), stopped.mkdir()
    for folder, count in ((whole, 4), (stopped, stopped_after)):
        with ImageDatasetWriter(folder) as writer:
            for i in range(count):
                writer.add(image(i))
    return whole, stopped


def test_a_resumed_image_dataset_is_the_one_a_single_writer_makes(tmp_path):
    """Two runs into one folder (the first stopped after two images; gateway/resume.py) give the
    dataset one writer gives; a resumed writer that dies is salvaged with every image's COCO entries."""
    def image(i: int) -> GeneratedImage:
        label = ("dog", "cat", "dog", "bird")[i]
        objects = [DetectedObject(label, 0.5, [1, 2, 3, 4], 2.0, {"counts": [1, 2, 5], "size": [2, 4]})]
        return GeneratedImage(i, f"a {label}", 7 + i, png(), 64, 48, objects=objects, prompt_tokens_dropped=3 * (i % 2))

    whole, resumed = whole_and_stopped(tmp_path, image, stopped_after=2)
    writer = ImageDatasetWriter(resumed, resume=True)
    assert (writer.first_missing(), writer.images_written, writer.objects_written, writer.prompts_cut) == (2, 2, 2, 1)
    for i in (1, 2, 3):  # one it has already: left as it is
        writer.add(image(i))
    assert writer.prompts_cut == 2
    dead = tmp_path / "dead"
    shutil.copytree(resumed, dead)
    writer.close()
    assert writer.images_written == 4 and salvage_images(dead) == {0, 1, 2, 3}
    for folder in (resumed, dead):
        assert (folder / "images" / "metadata.jsonl").read_text() == (whole / "images" / "metadata.jsonl").read_text()
        got, expected = (json.loads((f / "annotations" / "annotations.json").read_text()) for f in (folder, whole))
        for key in ("images", "annotations", "categories"):
            assert got[key] == expected[key]


def test_images_of_several_shards_arriving_interleaved_are_listed_by_index_as_one_writer_lists_them(tmp_path):
    def image(i: int) -> GeneratedImage:
        label = ("dog", "cat", "dog", "bird")[i]
        return GeneratedImage(i, f"a {label}", i, png(), 64, 48, objects=[boxed(label, 0.5, [1, 2, 3, 4])])

    folders = {order: tmp_path / "".join(map(str, order)) for order in ((0, 1, 2, 3), (2, 0, 3, 1))}
    for order, folder in folders.items():
        with ImageDatasetWriter(folder) as writer:
            for i in order:
                writer.add(image(i))
    whole, interleaved = folders.values()
    assert (interleaved / "images" / "metadata.jsonl").read_text() == (whole / "images" / "metadata.jsonl").read_text()
    got, expected = (json.loads((f / "annotations" / "annotations.json").read_text()) for f in (interleaved, whole))
    for key in ("images", "annotations", "categories"):
        assert got[key] == expected[key]


@pytest.mark.parametrize("lost", ["images/image_00001.png", "annotations/annotations.json"])
def test_a_resume_makes_again_the_images_whose_files_were_lost(tmp_path, lost):
    """A stopped dataset with a file deleted by hand: a lost PNG, or the COCO file with every
    image's objects. A resume keeps only whole images, makes the others again, and ends with the
    dataset one writer makes, rather than one listing a missing file or objects it lacks."""
    def image(i: int) -> GeneratedImage:
        return GeneratedImage(i, "a dog", 7 + i, png(), 64, 48, objects=[DetectedObject("dog", 0.5, [1, 2, 3, 4], 2.0, {"counts": [1, 2, 5], "size": [2, 4]})])

    whole, resumed = whole_and_stopped(tmp_path, image, stopped_after=3)
    (resumed / lost).unlink()
    writer = ImageDatasetWriter(resumed, resume=True)
    kept = [0, 2] if lost.endswith(".png") else []
    assert (writer.first_missing(), writer.images_written) == (1 if kept else 0, len(kept))
    assert [json.loads(line)["file_name"] for line in (resumed / "images" / "metadata.jsonl").read_text().splitlines()] == [f"image_0000{i}.png" for i in kept]
    for i in range(writer.first_missing(), 4):
        writer.add(image(i))
    writer.close()

    def lines(folder):
        return sorted((folder / "images" / "metadata.jsonl").read_text().splitlines())

    assert lines(resumed) == lines(whole)
    got, expected = (json.loads((f / "annotations" / "annotations.json").read_text()) for f in (resumed, whole))
    assert sorted(got["images"], key=lambda entry: entry["id"]) == expected["images"]
    # Annotation ids follow the order images were added in; each is still unique.
    assert len({ann["id"] for ann in got["annotations"]}) == len(got["annotations"])

    def by_image(coco):
        return sorted(({k: v for k, v in ann.items() if k != "id"} for ann in coco["annotations"]), key=lambda ann: ann["image_id"])

    assert by_image(got) == by_image(expected)
    assert sorted(p.name for p in (resumed / "images").glob("*.png")) == [f"image_0000{i}.png" for i in range(4)]


def test_a_resume_reads_metadata_lines_as_written(tmp_path):
    """JSON Lines split on newlines alone: a prompt may hold U+2028 or U+0085, which json.dumps
    (ensure_ascii=False) writes raw and str.splitlines would split on. A line listed twice (a
    hand edit) is kept once."""
    with ImageDatasetWriter(tmp_path) as writer:
        writer.add(GeneratedImage(0, "a dog\u2028on a line\x85of its own", 7, png(), 64, 48))
        writer.add(GeneratedImage(1, "a cat", 8, png(), 64, 48))
    metadata = tmp_path / "images" / "metadata.jsonl"
    first = metadata.read_text(encoding="utf-8").split("\n")[0]
    with metadata.open("a", encoding="utf-8") as f:
        f.write(first + "\n")
    writer = ImageDatasetWriter(tmp_path, resume=True)
    assert (writer.images_written, writer.first_missing()) == (2, 2)
    writer.close()
    assert [json.loads(line)["prompt"] for line in metadata.read_text(encoding="utf-8").split("\n") if line] == ["a dog\u2028on a line\x85of its own", "a cat"]


def test_json_written_atomically_is_as_readable_as_the_data_files(tmp_path):
    import os
    import stat

    from gateway.outputs import write_json_atomic

    data = write(tmp_path, "json")
    write_json_atomic(tmp_path / "manifest.json", {"a": 1})
    mode = stat.S_IMODE(os.stat(tmp_path / "manifest.json").st_mode)
    assert mode == stat.S_IMODE(os.stat(data).st_mode)  # 0644 under the usual umask; mkstemp gave 0600


def test_folders_are_unique_within_one_second(tmp_path):
    now = datetime(2025, 12, 3, 12, 0, 0, tzinfo=timezone.utc)
    folders: list = []
    threads = [threading.Thread(target=lambda: folders.append(create_job_folder(tmp_path, "text_data", now))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = sorted(folder.name for folder in folders)
    assert len(set(names)) == 8
    assert "text_data_20251203_120000" in names and "text_data_20251203_120000_2" in names
    assert all(folder.is_dir() for folder in folders)


def test_display_path_keeps_a_relative_root_relative(tmp_path):
    folder = tmp_path / "text_data_20251203_120000"
    assert display_path(folder, __import__("pathlib").Path("generated_data")) == "generated_data/text_data_20251203_120000/"
    assert display_path(folder, tmp_path) == f"{folder}/"


# -- images ---------------------------------------------------------------------------------------


def png(width=64, height=48, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE: column-major run lengths starting with zeros, as the image service sends them."""
    flat = mask.T.reshape(-1)
    counts, current, run = [], False, 0
    for value in flat:
        if bool(value) != current:
            counts.append(run)
            current, run = bool(value), 0
        run += 1
    counts.append(run)
    return {"counts": counts, "size": [mask.shape[0], mask.shape[1]]}


def boxed(label: str, score: float, box: list[float]) -> DetectedObject:
    """A box-only object as the image service sends it: the box is its segmentation and area."""
    x, y, w, h = box
    return DetectedObject(label, score, box, float(w * h), [[x, y, x + w, y, x + w, y + h, x, y + h]])


def test_coco_loads_in_pycocotools(tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    mask = np.zeros((48, 64), dtype=bool)
    mask[10:20, 5:30] = True
    with ImageDatasetWriter(tmp_path) as writer:
        writer.add(
            GeneratedImage(
                0, "a red barn", 7, png(), 64, 48,
                objects=[DetectedObject("barn", 0.9, [5, 10, 25, 10], float(mask.sum()), rle(mask))],
                caption="a red barn",
            )
        )
        writer.add(GeneratedImage(1, "a cat", 8, png(), 64, 48, objects=[boxed("cat", 0.5, [1, 2, 3, 4])]))
    assert writer.kinds_produced == {"bbox", "segmentation", "caption"}
    coco = COCO(str(tmp_path / "annotations" / "annotations.json"))
    assert sorted(coco.getImgIds()) == [1, 2]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["barn", "cat"]
    barn = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert barn["bbox"] == [5, 10, 25, 10] and barn["iscrowd"] == 0 and barn["segmentation"]["size"] == [48, 64]
    assert (coco.annToMask(barn).astype(bool) == mask).all()
    assert mask_utils.area(coco.annToRLE(barn)) == mask.sum()
    # A box-only annotation still has a segmentation (the box), so annToMask works for every object.
    cat = coco.loadAnns(coco.getAnnIds(imgIds=[2]))[0]
    assert coco.annToMask(cat).sum() == 12 and cat["area"] == 12.0


@pytest.mark.parametrize("segmentation", [False, True])
def test_coco_area_is_the_area_of_the_segmentation(tmp_path, segmentation):
    """The service's COCO area (tests/image_service/test_annotations.py) is what the COCO file and
    the metadata say, and what pycocotools finds the segmentation covers."""
    from pycocotools.coco import COCO

    # A triangle: 1,830 pixels in a 60x60 box of 3,600, so the two areas cannot be confused.
    mask = np.tril(np.ones((60, 60), dtype=bool))
    canvas = np.zeros((96, 128), dtype=bool)
    canvas[20:80, 30:90] = mask
    box = [30.0, 20.0, 60.0, 60.0]
    obj = DetectedObject("tent", 0.8, box, float(canvas.sum()), rle(canvas)) if segmentation else boxed("tent", 0.8, box)
    with ImageDatasetWriter(tmp_path) as writer:
        writer.add(GeneratedImage(0, "a tent", 3, png(128, 96), 128, 96, objects=[obj]))
    coco = COCO(str(tmp_path / "annotations" / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    expected = float(canvas.sum()) if segmentation else 60.0 * 60.0
    assert canvas.sum() == 1830 and ann["area"] == expected
    # What COCOeval buckets by is what the segmentation covers (a box's polygon rasterizes exactly
    # when its corners are whole pixels).
    assert coco.annToMask(ann).sum() == ann["area"]
    (record,) = [json.loads(line) for line in (tmp_path / "images" / "metadata.jsonl").read_text().splitlines()]
    assert record["objects"]["area"] == [expected]


def test_no_objects_means_no_annotations_file(tmp_path):
    with ImageDatasetWriter(tmp_path) as writer:
        writer.add(GeneratedImage(0, "fog", 1, png(), 64, 48))
    assert not (tmp_path / "annotations").exists()
    assert writer.coco_file is None and writer.kinds_produced == set()
    assert (tmp_path / "images" / "image_00000.png").is_file()


@pytest.mark.parametrize("with_objects", [True, False])
def test_images_load_as_a_hugging_face_imagefolder(tmp_path, with_objects):
    datasets = pytest.importorskip("datasets")
    objects = [boxed("barn", 0.9, [1, 2, 3, 4])] if with_objects else []
    with ImageDatasetWriter(tmp_path) as writer:
        for i in range(3):
            writer.add(GeneratedImage(i, f"prompt {i}", 100 + i, png(), 64, 48, objects=objects if i != 1 else []))
    dataset = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "images"), split="train")
    assert len(dataset) == 3
    assert sorted(dataset["prompt"]) == ["prompt 0", "prompt 1", "prompt 2"]
    assert dataset[0]["image"].size == (64, 48)
    if with_objects:
        by_prompt = {row["prompt"]: row for row in dataset}
        assert by_prompt["prompt 0"]["objects"]["category"] == ["barn"]
        assert by_prompt["prompt 1"]["objects"]["bbox"] == []
