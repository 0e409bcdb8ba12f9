"""The real `python -m image_service` (tiny model) over gRPC: streaming, errors, health,
reflection, reproducibility and client cancellation."""

from __future__ import annotations

import io
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image
from pycocotools import mask as coco_mask

from sdg.v1 import common_pb2, image_pb2, image_pb2_grpc

SERVICE = "sdg.v1.ImageService"


@pytest.fixture(scope="module")
def channel(image_service):
    with grpc.insecure_channel(image_service.address) as channel:
        yield channel


@pytest.fixture
def stub(channel):
    return image_pb2_grpc.ImageServiceStub(channel)


def generate(stub, **fields):
    values = dict(prompts=["a dog in a park"], num_images=1, width=64, height=64, num_inference_steps=2, seed=1)
    values.update(fields)
    return list(stub.GenerateImages(image_pb2.GenerateImagesRequest(**values), timeout=120))


def events(responses, kind):
    return [getattr(r, kind) for r in responses if r.WhichOneof("event") == kind]


def test_health_serving_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    (reply,) = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_model_info_says_demo(stub):
    info = stub.GetModelInfo(common_pb2.GetModelInfoRequest(), timeout=5)
    assert info.model_id == "tiny" and info.demo_model and info.loaded
    assert info.device == "cpu" and info.dtype == "float32"
    assert "demo model, random weights" in info.display_name


def test_512_pngs_stream_with_progress_then_summary(stub):
    responses = generate(stub, width=512, height=512, num_images=1, annotations=["bbox", "caption"])
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    steps = events(responses, "step")
    assert [s.step for s in steps] == list(range(1, steps[0].total_steps + 1))
    assert steps[0].images_total == 1 and steps[0].batch_size == 1
    (image,) = events(responses, "image")
    assert Image.open(io.BytesIO(image.png)).size == (512, 512)
    assert (image.width, image.height, image.seed, image.caption) == (512, 512, 1, "a dog in a park")
    assert {o.label for o in image.objects} <= {"dog", "park"} and image.objects
    summary = events(responses, "summary")[0]
    assert summary.images_generated == 1 and not summary.partial and summary.seed == 1
    assert list(summary.annotations_produced) == ["bbox", "caption"] and summary.scheduler == "default"


def test_segmentation_decodes_with_pycocotools(stub):
    responses = generate(stub, width=96, height=64, annotations=["segmentation"], labels=["dog"])
    (image,) = events(responses, "image")
    (obj,) = image.objects
    assert obj.label == "dog" and not obj.HasField("bbox")
    rle = coco_mask.frPyObjects({"counts": list(obj.segmentation.counts), "size": [64, 96]}, 64, 96)
    assert coco_mask.decode(rle).sum() == obj.area > 0


def test_same_seed_same_bytes_over_grpc(stub):
    first = events(generate(stub, num_images=2, seed=77, scheduler="dpm++"), "image")
    again = events(generate(stub, num_images=2, seed=77, scheduler="dpm++"), "image")
    assert [i.png for i in first] == [i.png for i in again]
    assert [i.seed for i in first] == [77, 78]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (dict(width=100), "width"),
        (dict(height=4096), "height"),
        (dict(prompts=[]), "prompts"),
        (dict(prompts=[""]), "prompts"),
        (dict(scheduler="plms"), "scheduler"),
        (dict(annotations=["depth"]), "annotations"),
        (dict(num_images=0), "num_images"),
        (dict(num_images=2, first_index=2), "first_index"),
        (dict(feature_reuse=11), "feature_reuse"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(stub, fields, field):
    with pytest.raises(grpc.RpcError) as caught:
        generate(stub, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")


def test_client_cancel_stops_the_call(stub, image_service):
    call = stub.GenerateImages(
        image_pb2.GenerateImagesRequest(prompts=["a cat"], num_images=50, width=256, height=256, num_inference_steps=50, seed=1),
        timeout=120,
    )
    first = next(call)
    assert first.WhichOneof("event") == "step"
    started = time.monotonic()
    call.cancel()
    # The engine lets go within a step, so the next call is served right away.
    responses = generate(stub)
    assert events(responses, "summary")[0].images_generated == 1
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 10
    while "ended early by the client" not in image_service.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "ended early by the client" in image_service.log_text()


def test_a_call_behind_a_busy_model_streams_waiting_then_runs(stub):
    earlier = stub.GenerateImages(
        image_pb2.GenerateImagesRequest(prompts=["a cat"], num_images=50, width=256, height=256, num_inference_steps=50, seed=1),
        timeout=120,
    )
    assert next(earlier).WhichOneof("event") == "step"  # the model is busy with it
    later = stub.GenerateImages(image_pb2.GenerateImagesRequest(prompts=["a dog"], num_images=1, width=64, height=64, num_inference_steps=2, seed=1), timeout=120)
    first = next(later)
    assert first.WhichOneof("event") == "waiting" and first.waiting.waited_s < 1
    earlier.cancel()
    rest = list(later)
    assert events(rest, "summary")[0].images_generated == 1


def test_sigterm_during_a_call_stops_the_service(service_logs):
    """The server stops taking calls, gives the one in flight its grace, cancels it, and exits:
    the engine is closed off the event loop, which the cancelled call's last events still need."""
    from tests.conftest import start_image_service

    service = start_image_service(service_logs)
    try:
        with grpc.insecure_channel(service.address) as channel:
            call = image_pb2_grpc.ImageServiceStub(channel).GenerateImages(
                image_pb2.GenerateImagesRequest(prompts=["a cat"], num_images=500, width=128, height=128, num_inference_steps=50, seed=1),
                timeout=120,
            )
            assert next(call).WhichOneof("event") == "step"
            service.proc.send_signal(signal.SIGTERM)
            assert service.proc.wait(timeout=60) == 0  # grace 10 s, then the call stops within a step
    finally:
        service.stop(timeout=1)


async def test_an_engine_failure_mid_stream_ends_with_a_partial_summary(tiny_engine, make_tiny_settings):
    """Once images have streamed, a failure is the stream's last event: the images sent stand,
    and the summary says the output is partial and why."""
    from image_service.server import create_server
    from image_service.types import GeneratedImage
    from tests.conftest import FailsAfterFirst

    server, port, servicer, _ = create_server(make_tiny_settings(listen="127.0.0.1:0"))
    servicer.attach(FailsAfterFirst(tiny_engine, GeneratedImage))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = image_pb2.GenerateImagesRequest(
                prompts=["a dog"], num_images=3, width=64, height=64, num_inference_steps=2, seed=4, annotations=["caption"]
            )
            messages = [m async for m in image_pb2_grpc.ImageServiceStub(channel).GenerateImages(request, timeout=60)]
    finally:
        await server.stop(None)
    summary = messages[-1].summary
    assert len(events(messages, "image")) == summary.images_generated == 1 and summary.images_requested == 3
    assert summary.partial and summary.seed == 4 and list(summary.annotations_produced) == ["caption"]
    assert "CUDA out of memory (simulated)" in summary.reason
    assert summary.error == "RuntimeError: CUDA out of memory (simulated)"  # a failure, not a planned stop
