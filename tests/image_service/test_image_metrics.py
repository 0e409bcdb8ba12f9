"""The image service's own metrics: a real `python -m image_service` with SDG_METRICS_PORT serves
them, and a GenerateImages call moves them."""

from __future__ import annotations

import json

import grpc
import pytest

from sdg.v1 import image_pb2, image_pb2_grpc
from tests.conftest import free_port, start_image_service
from tests.scrape import Scrape


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    port = free_port()
    service = start_image_service(
        tmp_path_factory.mktemp("image-metrics"), SDG_IMAGE_BATCH_SIZE="2", SDG_METRICS_PORT=str(port), SDG_LOG_FORMAT="json"
    )
    service.metrics_port, service.metrics_url = port, f"http://127.0.0.1:{port}/metrics"
    yield service
    service.stop()


def generate_images(service, **fields) -> list:
    values = dict(prompts=["a dog in a park"], num_images=3, width=64, height=64, num_inference_steps=2, seed=1)
    values.update(fields)
    with grpc.insecure_channel(service.address) as channel:
        stub = image_pb2_grpc.ImageServiceStub(channel)
        return list(stub.GenerateImages(image_pb2.GenerateImagesRequest(**values), timeout=120))


def test_a_generate_call_moves_occupancy_steps_waiting_images_and_calls(service):
    before = Scrape.of(service.metrics_url)
    messages = generate_images(service)
    assert messages[-1].summary.images_generated == 3
    after = Scrape.of(service.metrics_url)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # Three images in batches of two: one full batch and one half full.
    assert grew("sdg_image_batch_occupancy_count") == 2
    assert grew("sdg_image_batch_occupancy_sum") == pytest.approx(1.5)
    assert grew("sdg_image_denoise_steps_total") == 4
    assert after.value("sdg_image_denoise_steps_per_second") > 0
    assert grew("sdg_image_model_wait_seconds_count") == 1
    assert grew("sdg_image_images_total") == 3
    assert grew("sdg_image_calls_total", outcome="completed") == 1


def test_a_refused_request_counts_as_invalid(service):
    before = Scrape.of(service.metrics_url).value("sdg_image_calls_total", outcome="invalid")
    with pytest.raises(grpc.RpcError) as refused:
        generate_images(service, width=65)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert Scrape.of(service.metrics_url).value("sdg_image_calls_total", outcome="invalid") == before + 1


def test_with_sdg_log_format_json_every_log_line_is_json(service):
    records = [json.loads(line) for line in service.log_text().splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"].startswith("image_service") and "image service listening on" in r["message"] for r in records)
    assert any(r["logger"] == "sdg.service_metrics" and r["message"] == f"metrics on port {service.metrics_port}" for r in records)
