"""Seed data end to end, on a real gateway and text service: a carry job's rows each hold the named
columns of a seed row exactly (without replacement, every seed row once, also across a resume and
over shards on two replicas), and a few_shot job completes with its examples in the manifest."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from tests.conftest import cancelled_part_way, start_gateway, wait_for_job
from tests.gateway.test_gateway_failover import Replicas

CITIES = [("Amsterdam", "NL"), ("Rotterdam", "NL"), ("Berlin", "DE"), ("Hamburg", "DE"), ("Tokyo", "JP"), ("Osaka", "JP"), ("Lyon", "FR"), ("Porto", "PT")]
SCHEMA = {"city": "string", "country": "string", "founded": "int", "slogan": "string"}


def csv_of(rows: list[tuple[str, str]]) -> bytes:
    return ("city,country,mayor\n" + "".join(f"{city},{country},someone\n" for city, country in rows)).encode()


@pytest.fixture(scope="module")
def seed_gateway(service_logs, text_service, tmp_path_factory):
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", tmp_path_factory.mktemp("seeded"))
    yield gateway
    gateway.stop()


@pytest.fixture
def api(seed_gateway):
    with httpx.Client(base_url=seed_gateway.address, timeout=30) as client:
        yield client


def dataset(api: httpx.Client, rows: list[tuple[str, str]]) -> str:
    response = api.post("/datasets", files={"file": ("cities.csv", csv_of(rows))})
    assert response.status_code == 201, response.text
    return response.json()["dataset_id"]


def rows_of(api: httpx.Client, job_id: str) -> list[dict]:
    return [json.loads(line) for line in api.get(f"/jobs/{job_id}/rows").text.splitlines()]


def manifest_of(api: httpx.Client, job_id: str) -> dict:
    return api.get(f"/jobs/{job_id}/files/manifest.json").json()


def test_a_carry_job_gives_every_row_the_named_columns_of_a_seed_row(api):
    dataset_id = dataset(api, CITIES)
    seed_data = {"dataset_id": dataset_id, "columns": ["city", "country"]}
    drawn = api.post("/generate/text", json={"schema": SCHEMA, "num_samples": 12, "seed": 5, "seed_data": seed_data})
    once = api.post("/generate/text", json={"schema": SCHEMA, "num_samples": 8, "seed": 5, "seed_data": seed_data | {"replace": False}})
    for response in (drawn, once):
        assert response.status_code == 202, response.text
        assert wait_for_job(api, response.json()["job_id"])["status"] == "completed"

    rows = rows_of(api, drawn.json()["job_id"])
    assert len(rows) == 12 and all((row["city"], row["country"]) in CITIES for row in rows)
    assert all(isinstance(row["founded"], int) and isinstance(row["slogan"], str) for row in rows)
    # Without replacement, each seed row is carried once.
    assert Counter((row["city"], row["country"]) for row in rows_of(api, once.json()["job_id"])) == Counter(CITIES)
    assert manifest_of(api, once.json()["job_id"])["seed_data"] == {
        "dataset_id": dataset_id, "name": "cities.csv", "mode": "carry", "columns": ["city", "country"],
        "dataset_rows": 8, "replace": False, "positions": 8, "rows_used": 8,
    }  # fmt: skip


def test_a_resumed_carry_job_carries_only_the_seed_rows_it_lacks(api):
    towns = [(f"Town{i}", "NL") for i in range(60)]
    body = {"schema": SCHEMA, "num_samples": 60, "output_format": "csv", "seed_data": {"dataset_id": dataset(api, towns), "columns": ["city", "country"], "replace": False}}
    job_id, stopped = cancelled_part_way(api, "text", body, "rows_done", at_least=5)
    kept = stopped["stats"]["rows_done"]
    assert 0 < kept < 60, stopped
    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed" and not status["partial"], status
    assert Counter((row["city"], row["country"]) for row in rows_of(api, job_id)) == Counter(towns)


def test_a_carry_job_in_shards_on_two_replicas_carries_each_seed_row_once(tmp_path):
    (tmp_path / "logs").mkdir()
    replicas = Replicas("text", tmp_path / "logs", tmp_path / "data", SDG_SHARD_ROWS="10")
    try:
        with httpx.Client(base_url=replicas.gateway.address, timeout=30) as client:
            for address in (s.address for s in replicas.services):
                replicas.wait_until_up(address, 1)
            towns = [(f"Town{i}", "NL") for i in range(40)]
            body = {"schema": SCHEMA, "num_samples": 40, "seed_data": {"dataset_id": dataset(client, towns), "columns": ["city", "country"], "replace": False}}
            job_id = client.post("/generate/text", json=body).json()["job_id"]
            assert wait_for_job(client, job_id)["status"] == "completed"
            assert Counter((row["city"], row["country"]) for row in rows_of(client, job_id)) == Counter(towns)
            shards = manifest_of(client, job_id)["shards"]
            assert len(shards) == 4 and {shard["replica"] for shard in shards} == {s.address for s in replicas.services}
    finally:
        replicas.stop()


def test_a_few_shot_job_completes_with_its_examples_in_the_manifest(api):
    dataset_id = dataset(api, CITIES)
    response = api.post(
        "/generate/text",
        json={"schema": SCHEMA, "num_samples": 4, "seed_data": {"dataset_id": dataset_id, "columns": ["city", "mayor"], "mode": "few_shot", "k": 2}},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert wait_for_job(api, job_id)["status"] == "completed"
    assert len(rows_of(api, job_id)) == 4
    account = manifest_of(api, job_id)["seed_data"]
    assert account["mode"] == "few_shot" and account["k"] == 2 and len(set(account["example_rows"])) == 2
    assert all(1 <= line <= len(CITIES) for line in account["example_rows"])
