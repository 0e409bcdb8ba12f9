"""Dataset design over REST (sdg.design): conditioned fields, computed fields, unique fields and
order rules across fields, on the real gateway and services with their tiny models."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.conftest import wait_for_job
from tests.gateway.test_gateway_failover import Replicas, folder_of

# The request shape of issue 16, less its seed data and tables.
ISSUE_SCHEMA = {
    "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1, "step": 1}}},
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise"], "weights": [0.6, 0.3, 0.1]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "country": {"type": "string", "x-sdg": {"category": {"values": ["NL", "DE", "JP"]}}},
    "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale_from": "country",
                                                     "locales": {"NL": "nl_NL", "DE": "de_DE", "JP": "ja_JP"}}}},
    "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
    "renewal": {"type": "string", "format": "date", "x-sdg": {"greater_than": "signup"}},
    "email": {"type": "string", "format": "email", "x-sdg": {"unique": True}},
    "bio": {"type": "string", "description": "a short bio of {name}, a {age}-year-old {tier} customer from {country}"},
    "label": {"type": "string", "x-sdg": {"expression": "name ~ ' (' ~ tier ~ ')'"}},
}


def completed(api: httpx.Client, body: dict, timeout: float = 300) -> tuple[dict, Path]:
    response = api.post("/generate/text", json=body)
    assert response.status_code == 202, response.text
    status = wait_for_job(api, response.json()["job_id"], timeout=timeout)
    assert status["status"] == "completed" and not status["partial"], status
    return status, Path(status["output_path"])


def test_the_issues_request_shape_holds_every_constraint_in_its_rows(api):
    status, folder = completed(api, {"schema": ISSUE_SCHEMA, "num_samples": 24, "output_format": "parquet", "seed": 16})
    rows = pq.read_table(folder / "data.parquet").to_pylist()
    assert len(rows) == 24 and list(rows[0]) == list(ISSUE_SCHEMA)
    assert len({row["id"] for row in rows}) == 24 and min(row["id"] for row in rows) >= 1  # a regenerated row skips its slot's id
    assert len({row["email"] for row in rows}) == 24
    for row in rows:  # Parquet holds dates as dates
        assert row["tier"] in ("free", "pro", "enterprise") and 18 <= row["age"] <= 90 and row["country"] in ("NL", "DE", "JP")
        assert dt.date(2020, 1, 1) <= row["signup"] <= dt.date(2024, 12, 31) and row["renewal"] > row["signup"]
        assert row["label"] == f"{row['name']} ({row['tier']})" and row["bio"]
    manifest = json.loads((folder / "manifest.json").read_text())
    design = manifest["schema"]["design"]
    assert design["conditioned"] == {"bio": ["name", "age", "tier", "country"]} and design["order_rules"] == ["renewal > signup"]
    assert design["computed"] == {"label": ISSUE_SCHEMA["label"]["x-sdg"]["expression"]} and design["unique"] == ["email"]
    assert manifest["constraints"] == {"unique": {"email": {"collisions": 0}}}
    assert set(manifest["schema"]["rows_rejected_by"]) <= {"greater_than", "unique", "format", "expression"}


@pytest.mark.parametrize("schema, pointer, words", [
    ({"bio": {"type": "string", "description": "about {nmae}"}, "name": "string"}, "/properties/bio/description", "{nmae}"),
    ({"bio": {"type": "string", "description": "about {name}"}, "name": {"type": "string", "description": "of {bio}"}},
     "/properties/bio", "bio -> name -> bio"),
    ({"n": {"type": "integer", "x-sdg": {"expression": "m +"}}, "m": "int"}, "/properties/n/x-sdg/expression", "not valid"),
    ({"n": {"type": "integer", "x-sdg": {"expression": "k * 2"}}, "m": "int"}, "/properties/n/x-sdg/expression", "'k'"),
    ({"end": {"type": "string", "format": "date", "x-sdg": {"greater_than": "size"}}, "size": "int"},
     "/properties/end/x-sdg/greater_than", "they must be of one kind"),
    ({"tier": {"type": "string", "x-sdg": {"category": {"values": ["a", "b"]}, "unique": True}}}, "/properties/tier/x-sdg/unique",
     "only 2 distinct values"),
])
def test_a_design_that_cannot_be_honoured_is_a_400_naming_its_pointer(api, schema, pointer, words):
    response = api.post("/generate/text", json={"schema": schema, "num_samples": 5})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.endswith(f"(at #{pointer})") and words in detail, detail


def test_a_unique_field_stays_unique_across_shards_and_the_job_tops_up_to_its_count(tmp_path):
    """Each shard samples with a seed of its own, so their codes collide; the gateway drops the
    second row of a value, counts it, and tops the job up."""
    (tmp_path / "logs").mkdir()
    replicas = Replicas("text", tmp_path / "logs", tmp_path / "data", SDG_SHARD_ROWS="100")
    schema = {
        "code": {"type": "integer", "minimum": 1, "maximum": 2000, "x-sdg": {"uniform": {}, "unique": True}},
        "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro"]}}},
    }
    try:
        with httpx.Client(base_url=replicas.gateway.address, timeout=30) as client:
            for address in (s.address for s in replicas.services):
                replicas.wait_until_up(address, 1)
            response = client.post("/generate/text", json={"schema": schema, "num_samples": 300, "output_format": "json", "seed": 3})
            assert response.status_code == 202, response.text
            status = wait_for_job(client, response.json()["job_id"], timeout=240)
        assert (status["status"], status["message"]) == ("completed", "completed: 300 rows"), status
        folder = folder_of(replicas, status)
        rows = json.loads((folder / "data.json").read_text())
        assert len(rows) == len({row["code"] for row in rows}) == 300
        manifest = json.loads((folder / "manifest.json").read_text())
        assert len(manifest["shards"]) == 3 and manifest["constraints"]["unique"]["code"]["collisions"] > 0
    finally:
        replicas.stop()
