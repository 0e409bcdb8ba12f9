"""The text service's own metrics: a real `python -m text_service` with SDG_METRICS_PORT serves
them, and a GenerateRows call moves them."""

from __future__ import annotations

import json

import grpc
import pytest

from sdg.v1 import text_pb2, text_pb2_grpc
from tests.conftest import free_port, start_text_service
from tests.scrape import Scrape
from tests.text_service.schemas import SEED_SCHEMA


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    port = free_port()
    service = start_text_service(tmp_path_factory.mktemp("text-metrics"), SDG_METRICS_PORT=str(port), SDG_LOG_FORMAT="json")
    service.metrics_port, service.metrics_url = port, f"http://127.0.0.1:{port}/metrics"
    yield service
    service.stop()


def generate_rows(service, **fields) -> list:
    with grpc.insecure_channel(service.address) as channel:
        stub = text_pb2_grpc.TextServiceStub(channel)
        return list(stub.GenerateRows(text_pb2.GenerateRowsRequest(**fields), timeout=120))


def test_a_generate_call_moves_occupancy_steps_waiting_rows_and_calls(service):
    before = Scrape.of(service.metrics_url)
    messages = generate_rows(service, schema_json=json.dumps(SEED_SCHEMA), num_rows=6, seed=3)
    assert messages[-1].summary.rows_generated == 6
    after = Scrape.of(service.metrics_url)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("sdg_text_batch_occupancy_count") >= 1
    assert 0 < grew("sdg_text_batch_occupancy_sum") <= grew("sdg_text_batch_occupancy_count")
    assert grew("sdg_text_decode_steps_total") > 0
    assert after.value("sdg_text_decode_steps_per_second") > 0
    assert grew("sdg_text_model_wait_seconds_count") == 1
    assert grew("sdg_text_rows_total") == 6
    assert grew("sdg_text_calls_total", outcome="completed") == 1


def test_a_refused_request_counts_as_invalid(service):
    before = Scrape.of(service.metrics_url).value("sdg_text_calls_total", outcome="invalid")
    with pytest.raises(grpc.RpcError) as refused:
        generate_rows(service, schema_json=json.dumps(SEED_SCHEMA), num_rows=0)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert Scrape.of(service.metrics_url).value("sdg_text_calls_total", outcome="invalid") == before + 1


def test_with_sdg_log_format_json_every_log_line_is_json(service):
    records = [json.loads(line) for line in service.log_text().splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"].startswith("text_service") and "text service listening on" in r["message"] for r in records)
    assert any(r["logger"] == "sdg.service_metrics" and r["message"] == f"metrics on port {service.metrics_port}" for r in records)
