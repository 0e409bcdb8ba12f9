"""GET /metrics and the JSON log format, on a real gateway of this module's own (so that no other
test's jobs move its counts) in front of the real text service, with its image service address
one where nothing listens."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.conftest import free_port, start_gateway, wait_for_job
from tests.scrape import Scrape

TEXT_JOB = {"schema": {"name": "string", "age": "int"}, "num_samples": 7, "output_format": "csv"}


@pytest.fixture(scope="module")
def lone_gateway(tmp_path_factory, text_service):
    dead = f"127.0.0.1:{free_port()}"
    service = start_gateway(
        tmp_path_factory.mktemp("metrics-logs"), text_service.address, dead, tmp_path_factory.mktemp("metrics-data"), SDG_LOG_FORMAT="json"
    )
    service.text_address, service.dead_address = text_service.address, dead
    service.metrics_url = service.address + "/metrics"
    yield service
    service.stop()


@pytest.fixture(scope="module")
def finished_job(lone_gateway):
    """A text job run to its end, with a scrape from before it was submitted and one after."""
    before = Scrape.of(lone_gateway.metrics_url)
    with httpx.Client(base_url=lone_gateway.address, timeout=30) as client:
        response = client.post("/generate/text", json=TEXT_JOB)
        assert response.status_code == 202, response.text
        status = wait_for_job(client, response.json()["job_id"])
    assert status["status"] == "completed", status
    return status, before, Scrape.of(lone_gateway.metrics_url)


def test_metrics_parse_as_the_prometheus_text_format_and_name_every_family(lone_gateway):
    scrape = Scrape.of(lone_gateway.metrics_url)
    assert {
        "sdg_jobs", "sdg_queue_depth", "sdg_rows", "sdg_images", "sdg_replica_up", "sdg_grpc_errors",
        "sdg_grpc_call_seconds", "sdg_http_request_seconds",
    } <= scrape.families.keys()
    assert {s.labels["state"] for s in scrape.families["sdg_jobs"].samples} == {"queued", "running", "completed", "failed", "cancelled"}


def test_jobs_by_state_count_a_job_once_it_completes(finished_job):
    _, before, after = finished_job
    assert after.value("sdg_jobs", state="completed") == before.value("sdg_jobs", state="completed") + 1
    assert after.value("sdg_jobs", state="running") == after.value("sdg_queue_depth") == 0


def test_rows_made_grow_by_exactly_the_rows_of_the_finished_job(finished_job):
    status, before, after = finished_job
    assert status["stats"]["rows_done"] == 7
    assert after.value("sdg_rows_total") - before.value("sdg_rows_total") == 7
    assert after.value("sdg_images_total") == 0


def test_latencies_count_the_jobs_grpc_stream_and_its_http_requests(finished_job):
    status, before, after = finished_job
    streams = "sdg_grpc_call_seconds_count"
    assert after.value(streams, kind="text", method="GenerateRows") - before.value(streams, kind="text", method="GenerateRows") == 1
    # By the route's template, not the path with the job's id in it.
    assert after.value("sdg_http_request_seconds_count", method="POST", route="/generate/text") == 1
    assert after.value("sdg_http_request_seconds_count", method="GET", route="/status/{job_id}") >= 1
    assert not [s for s in after.samples if status["job_id"] in s.labels.get("route", "")]


def test_replica_health_is_1_for_the_serving_service_and_0_where_nothing_listens(lone_gateway):
    scrape = Scrape.of(lone_gateway.metrics_url)
    assert scrape.value("sdg_replica_up", kind="text", address=lone_gateway.text_address) == 1
    assert scrape.value("sdg_replica_up", kind="image", address=lone_gateway.dead_address) == 0
    # The probe of the address where nothing listens failed as gRPC says it does.
    assert scrape.value("sdg_grpc_errors_total", kind="image", code="UNAVAILABLE") >= 1


def test_a_path_no_route_serves_is_timed_as_unmatched(lone_gateway):
    assert httpx.get(lone_gateway.address + "/no/such/path/1234").status_code == 404
    scrape = Scrape.of(lone_gateway.metrics_url)
    assert scrape.value("sdg_http_request_seconds_count", method="GET", route="unmatched") >= 1
    assert not [s for s in scrape.samples if "1234" in s.labels.get("route", "")]


def test_with_sdg_log_format_json_every_line_is_json_and_a_jobs_lines_carry_its_id(lone_gateway, finished_job):
    status, _, _ = finished_job
    records = [json.loads(line) for line in lone_gateway.log_text().splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # uvicorn's own lines come through the same handler.
    assert any(r["logger"].startswith("uvicorn") for r in records)
    # A job's lines carry its real id, never a placeholder or another job's.
    assert re.fullmatch(r"job_[0-9a-f]{12}", status["job_id"])
    assert {r["job_id"] for r in records if "job_id" in r} == {status["job_id"]}
    job_lines = [r for r in records if r.get("job_id") == status["job_id"]]
    assert any(f"job {status['job_id']} completed" in r["message"] for r in job_lines)
    # Lines outside any job carry no job_id.
    assert any("job_id" not in r for r in records)
