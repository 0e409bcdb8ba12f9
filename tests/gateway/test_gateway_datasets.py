"""Uploaded datasets on a real gateway (no model service needed): CSV, JSONL and Parquet files are
stored and listed per key, a bad file is a 400 naming its line or column, a large one a 413, and a
job's seed_data is checked against the dataset and the schema at the door. The store itself is
checked on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway import db
from gateway.datasets import DatasetStore, parse_dataset
from gateway.models import SeedData, TextRequest
from gateway.plans import text_spec
from gateway.seeding import CarriedRows, seed_rows
from tests.conftest import start_gateway

ALICE, BOB = "alice-secret-0123456789", "bob-secret-0123456789"
MAX_BYTES, MAX_ROWS = 4000, 50
CSV = b"city,population,country\nAmsterdam,921402,NL\n\"Den Haag, ZH\",552995,NL\nUtrecht,361924,NL\n"
JSONL = b'{"city": "Berlin", "population": 3755251}\n\n{"city": "Hamburg", "population": 1892122, "river": "Elbe"}\n'
SCHEMA = {"city": "string", "population": "int", "motto": "string"}


def parquet_bytes() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({"city": ["Tokyo", "Osaka"], "population": [13960000, 2750000], "share": [0.5, None]}), out)
    return out.getvalue()


def as_key(gateway, secret: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.address, timeout=30, headers={"Authorization": f"Bearer {secret}"})


def upload(client: httpx.Client, filename: str, data: bytes, **form: str) -> httpx.Response:
    return client.post("/datasets", files={"file": (filename, data)}, data=form)


@pytest.fixture(scope="module")
def dataset_gateway(service_logs, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("datasets")
    gateway = start_gateway(
        service_logs, "127.0.0.1:1", "127.0.0.1:1", output_dir,
        SDG_API_KEYS=f"alice:{ALICE},bob:{BOB}", SDG_MAX_DATASET_BYTES=str(MAX_BYTES), SDG_MAX_DATASET_ROWS=str(MAX_ROWS),
    )  # fmt: skip
    yield gateway
    gateway.stop()


@pytest.fixture
def alice(dataset_gateway):
    with as_key(dataset_gateway, ALICE) as client:
        yield client


@pytest.fixture
def bob(dataset_gateway):
    with as_key(dataset_gateway, BOB) as client:
        yield client


def test_a_csv_a_jsonl_and_a_parquet_file_are_stored_listed_and_deleted(alice):
    made = {}
    for filename, data, fmt, rows, columns in [
        ("cities.csv", CSV, "csv", 3, ["city", "population", "country"]),
        ("german.jsonl", JSONL, "jsonl", 2, ["city", "population", "river"]),
        ("japan.parquet", parquet_bytes(), "parquet", 2, ["city", "population", "share"]),
    ]:
        response = upload(alice, filename, data)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["dataset_id"].startswith("ds_") and body["created_at"].endswith("Z")
        assert (body["name"], body["format"], body["rows"], body["columns"], body["size_bytes"]) == (filename, fmt, rows, columns, len(data))
        made[body["dataset_id"]] = body
    named = upload(alice, "upload.bin", CSV, format="csv", name="Dutch cities").json()
    assert (named["name"], named["format"]) == ("Dutch cities", "csv")
    made[named["dataset_id"]] = named

    listed = alice.get("/datasets").json()
    assert {d["dataset_id"] for d in listed} >= set(made) and listed == sorted(listed, key=lambda d: d["created_at"], reverse=True)
    pages = [alice.get("/datasets", params={"limit": 2, "offset": offset}).json() for offset in range(0, len(listed) + 2, 2)]
    assert [d for page in pages for d in page] == listed and all(len(page) <= 2 for page in pages)
    assert alice.get("/datasets", params={"limit": 0}).status_code == 422
    for dataset_id, body in made.items():
        assert alice.get(f"/datasets/{dataset_id}").json() == body
        assert alice.delete(f"/datasets/{dataset_id}").json() == body
        gone = alice.get(f"/datasets/{dataset_id}")
        assert gone.status_code == 404 and gone.json() == {"detail": f"dataset {dataset_id!r} not found"}


@pytest.mark.parametrize(
    "filename, data, detail",
    [
        ("bad.csv", b"a,b\n1,2\n3,\xff\n", "file: line 3 is not UTF-8 (invalid start byte at byte offset 10)"),
        ("bad.csv", b"a,b\n1,2\n3,4,5\n", "file: line 3 has 3 fields, the header has 2"),
        ("bad.csv", b"a,b,a\n1,2,3\n", "file: line 1 (the header): column 'a' is named twice"),
        ("bad.csv", b"a,,c\n1,2,3\n", "file: line 1 (the header): column 2 has no name"),
        ("bad.csv", b"", "file: is empty: a CSV file starts with a header line naming its columns"),
        ("bad.csv", b"a,b\n", "file: has no rows"),
        ("bad.jsonl", b'{"a": 1}\n{"a": 2\n', "file: line 2 is not JSON: Expecting ',' delimiter: line 1 column 8 (char 7)"),
        ("bad.jsonl", b'{"a": 1}\n[1, 2]\n', "file: line 2 is a JSON list, not an object"),
        ("bad.jsonl", b'{"a": 1, "a": 2}\n', "file: line 1 is not JSON: key 'a' is given twice"),
        ("bad.jsonl", b'{"": 1}\n', "file: line 1: column 1 has no name"),
        ("bad.jsonl", b'{"a": NaN}\n', "file: line 1 is not JSON: NaN is not JSON"),
        ("bad.txt", b"a,b\n1,2\n", "format: cannot tell the format of 'bad.txt' from its name; name it .csv, .jsonl or .parquet, or send format"),
        ("many.csv", b"a\n" + b"1\n" * (MAX_ROWS + 1), f"file: has more than {MAX_ROWS:,} rows, the most a dataset may have (SDG_MAX_DATASET_ROWS)"),
    ],
)
def test_each_kind_of_bad_file_is_a_400_naming_its_line_or_column(alice, filename, data, detail):
    response = upload(alice, filename, data)
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": detail}


def test_a_file_that_is_not_parquet_is_a_400_and_one_past_the_size_limit_a_413(alice):
    broken = upload(alice, "broken.parquet", b"PAR1 not really")
    assert broken.status_code == 400 and broken.json()["detail"].startswith("file: is not a readable Parquet file: ")
    large = upload(alice, "large.csv", b"a\n" + b"1234567\n" * (MAX_BYTES // 8 + 1))
    assert large.status_code == 413, large.text
    assert large.json() == {"detail": f"file: larger than {MAX_BYTES:,} bytes, the most an upload may be (SDG_MAX_DATASET_BYTES)"}


def test_another_key_gets_404_for_a_dataset_and_does_not_see_it_listed(alice, bob):
    dataset_id = upload(alice, "cities.csv", CSV).json()["dataset_id"]
    for method in ("GET", "DELETE"):
        response = bob.request(method, f"/datasets/{dataset_id}")
        assert response.status_code == 404 and response.json() == {"detail": f"dataset {dataset_id!r} not found"}
    assert dataset_id not in [d["dataset_id"] for d in bob.get("/datasets").json()]
    refused = bob.post("/generate/text", json={"schema": SCHEMA, "seed_data": {"dataset_id": dataset_id, "columns": ["city"]}})
    assert refused.status_code == 400
    assert refused.json()["detail"] == f"seed_data.dataset_id: there is no dataset {dataset_id!r}; upload one with POST /datasets"
    with httpx.Client(base_url=alice.base_url, timeout=30) as anyone:
        assert anyone.get("/datasets").status_code == 401
    assert alice.get(f"/datasets/{dataset_id}").status_code == 200


def test_seed_data_is_checked_at_the_door_naming_the_field_and_the_dataset_line(alice):
    cities = upload(alice, "cities.csv", CSV).json()["dataset_id"]
    towns = upload(alice, "towns.csv", b"city,population\nZwolle,130000\nEdam,about 7000\n").json()["dataset_id"]
    german = upload(alice, "german.jsonl", JSONL).json()["dataset_id"]

    def refused(seed_data: dict, schema: dict = SCHEMA, num_samples: int = 5) -> str:
        response = alice.post("/generate/text", json={"schema": schema, "num_samples": num_samples, "seed_data": seed_data})
        assert response.status_code == 400, response.text
        return response.json()["detail"]

    assert refused({"dataset_id": cities, "columns": ["city", "mayor"]}) == (
        f"seed_data.columns[1]: 'mayor' is not a column of dataset {cities}; its columns are city, population, country"
    )
    assert refused({"dataset_id": cities, "columns": ["country"]}) == (
        "seed_data.columns[0]: 'country' is not a top-level field of the schema (fields: city, population, motto); "
        "a carried column fills the field of its name"
    )
    assert refused({"dataset_id": towns, "columns": ["city", "population"]}) == (
        f"seed_data.columns[1]: dataset {towns} line 3, column 'population': "
        "'about 7000' does not satisfy the field's schema: 'about 7000' is not of type 'integer'"
    )
    assert refused({"dataset_id": towns, "columns": ["city"]}, schema={"city": {"type": "string", "maxLength": 5}}).startswith(
        f"seed_data.columns[0]: dataset {towns} line 2, column 'city': 'Zwolle' does not satisfy the field's schema: "
    )
    # A JSONL row without the column has no value for it.
    assert refused({"dataset_id": german, "columns": ["river"]}, schema={"city": "string", "river": "string"}) == (
        f"seed_data.columns[0]: dataset {german} line 1, column 'river': has no value; a carried column needs one in every row"
    )
    assert refused({"dataset_id": cities, "columns": ["city"], "replace": False}, num_samples=4) == (
        f"seed_data.replace: false draws each of dataset {cities}'s 3 rows at most once, too few for num_samples 4"
    )
    assert refused({"dataset_id": cities, "columns": ["city"], "mode": "few_shot", "k": 4}) == (
        f"seed_data.k: 4 examples asked of dataset {cities}, which has 3 rows"
    )
    sampled = {"city": {"type": "string", "x-sdg": {"category": {"values": ["Lisse"]}}}, "motto": "string"}
    assert refused({"dataset_id": cities, "columns": ["city"]}, schema=sampled) == (
        "seed_data.columns[0]: 'city' is drawn by its x-sdg sampler; a field is sampled or carried, not both"
    )
    for seed_data, message in [
        ({"dataset_id": cities, "columns": ["city"], "k": 2}, "k applies to mode few_shot only"),
        ({"dataset_id": cities, "columns": ["city"], "mode": "few_shot", "replace": True}, "replace applies to mode carry only"),
        ({"dataset_id": cities, "columns": ["city", "city"]}, "column 'city' is named twice"),
        ({"dataset_id": cities, "columns": []}, "at least 1 item"),
    ]:
        response = alice.post("/generate/text", json={"schema": SCHEMA, "seed_data": seed_data})
        assert response.status_code == 422 and message in response.text, response.text
    # CSV cells read as JSON where the field is not text: population 921402 is an integer.
    accepted = alice.post("/generate/text", json={"schema": SCHEMA, "num_samples": 3, "seed_data": {"dataset_id": cities, "columns": ["city", "population"], "replace": False}})
    assert accepted.status_code == 202, accepted.text
    status = alice.get(f"/status/{accepted.json()['job_id']}").json()
    assert status["request"]["seed_data"] == {"dataset_id": cities, "columns": ["city", "population"], "mode": "carry", "replace": False, "k": None}
    unified = alice.post("/generate/unified", json={"schema": SCHEMA, "num_samples": 2, "prompts": ["{city}"], "seed_data": {"dataset_id": towns, "columns": ["population"]}})
    assert unified.status_code == 400 and "line 3, column 'population'" in unified.json()["detail"]


def test_datasets_are_kept_in_the_job_database_of_each_kind(database_url, tmp_path):
    engine = db.open_database(database_url, tmp_path)
    try:
        store = DatasetStore(engine)
        parsed = parse_dataset(CSV, "csv", 100)
        mine = store.create(parsed, "cities.csv", len(CSV), "key_a", "2026-01-01T00:00:00.000000Z")
        theirs = store.create(parse_dataset(JSONL, "jsonl", 100), "german.jsonl", len(JSONL), "key_b", "2026-01-02T00:00:00.000000Z")
        assert [d.dataset_id for d in store.listed("key_a", 100, 0)] == [mine.dataset_id]
        assert [d.dataset_id for d in store.listed(None, 100, 0)] == [theirs.dataset_id, mine.dataset_id]
        info, again = store.rows(mine.dataset_id, "key_a")
        assert info == mine and again == parsed and again.lines == [2, 3, 4]
        with pytest.raises(LookupError):
            store.get(mine.dataset_id, "key_b")
        assert store.delete(mine.dataset_id, None) == mine
        assert [d.dataset_id for d in store.listed(None, 100, 0)] == [theirs.dataset_id]
    finally:
        engine.dispose()


def test_carried_rows_are_drawn_from_the_job_seed_and_fill_positions_in_any_order(tmp_path):
    engine = db.open_database("", tmp_path)
    try:
        store = DatasetStore(engine)
        data = b"city,population\n" + b"".join(f"town{i},{i}\n".encode() for i in range(40))
        dataset_id = store.create(parse_dataset(data, "csv", 100), "towns.csv", len(data), None, "2026-01-01T00:00:00Z").dataset_id

        def drawn(seed: int, replace: bool, num_samples: int = 30):
            request = TextRequest.model_validate({"schema": SCHEMA, "num_samples": num_samples, "seed_data": {"dataset_id": dataset_id, "columns": ["population", "city"], "replace": replace}})
            return seed_rows(text_spec(request, seed), store, None)

        first, again, other = drawn(7, True), drawn(7, True), drawn(8, True)
        assert first.carried == again.carried and first.carried != other.carried
        assert first.carried[0] == {"population": first.indexes[0], "city": f"town{first.indexes[0]}"}
        without = drawn(7, False, num_samples=40)
        assert sorted(without.indexes) == list(range(40))
        assert without.manifest() == {
            "dataset_id": dataset_id, "name": "towns.csv", "mode": "carry", "columns": ["population", "city"],
            "dataset_rows": 40, "replace": False, "positions": 40, "rows_used": 40,
        }  # fmt: skip

        carried = CarriedRows(first.carried, text_spec(TextRequest.model_validate({"schema": SCHEMA}), 7).schema)
        rows = [{**values, "motto": "m"} for values in first.carried]
        for row in reversed(rows[10:]):
            assert carried.fills(row)
        assert carried.lacking() == list(first.carried[:10])
        assert not carried.fills({"city": "nowhere", "population": -1, "motto": "m"})
    finally:
        engine.dispose()


def test_few_shot_examples_are_k_seed_rows_of_the_named_columns(tmp_path):
    engine = db.open_database("", tmp_path)
    try:
        store = DatasetStore(engine)
        dataset_id = store.create(parse_dataset(JSONL, "jsonl", 100), "german.jsonl", len(JSONL), None, "2026-01-01T00:00:00Z").dataset_id
        request = TextRequest.model_validate({"schema": SCHEMA, "seed_data": {"dataset_id": dataset_id, "columns": ["city", "river"], "mode": "few_shot", "k": 2}})
        seeded = seed_rows(text_spec(request, 3), store, None)
        assert sorted(seeded.examples, key=json.dumps) == [{"city": "Berlin"}, {"city": "Hamburg", "river": "Elbe"}]
        assert seeded.carried == () and seeded.manifest()["k"] == 2
        assert SeedData.model_validate({"dataset_id": dataset_id, "columns": ["city"], "mode": "few_shot"}).examples == 3
    finally:
        engine.dispose()
