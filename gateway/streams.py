"""Calls the services' streaming RPCs and turns their events into plain values for the runner.
Every read is bounded by the inactivity timeout, gRPC errors become ServiceFailure naming the
service and address (ReplicaLost when the replica went away mid-stream), a stream that ends without its summary is a failure, and the call is
cancelled whenever the consumer stops early (job cancelled, gateway shutting down)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc

from gateway.clients import ServiceEndpoint
from gateway.errors import ReplicaLost, ServiceFailure
from gateway.plans import ImageSpec, TextSpec
from gateway.results import DenoiseStep, DetectedObject, GeneratedImage, ImagesSummary, RowsSummary
from sdg.v1 import image_pb2, text_pb2


async def _events(call: grpc.aio.UnaryStreamCall, endpoint: ServiceEndpoint, method: str, timeout_s: float) -> AsyncIterator[Any]:
    try:
        with endpoint.metrics.grpc_call(endpoint.kind, method):
            while True:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that lands as the read completes, and a cancelled job would then run to the end.
                try:
                    async with asyncio.timeout(timeout_s):
                        message = await call.read()
                except TimeoutError:
                    raise ServiceFailure(
                        f"{endpoint.label} sent nothing for {timeout_s:g}s; giving up", grpc.StatusCode.DEADLINE_EXCEEDED
                    ) from None
                if message is grpc.aio.EOF:
                    return
                yield message
    except grpc.aio.AioRpcError as err:
        failure = ReplicaLost if err.code() == grpc.StatusCode.UNAVAILABLE else ServiceFailure
        raise failure.from_rpc_error(endpoint.kind, endpoint.address, err) from None
    finally:
        call.cancel()


def _no_summary(endpoint: ServiceEndpoint) -> ServiceFailure:
    return ServiceFailure(f"{endpoint.label} ended its stream without a summary")


def _failed_part_way(endpoint: ServiceEndpoint, error: str) -> ServiceFailure:
    """The service's engine failed after the stream had started: what it sent stands, and the
    job fails (partial) rather than completing short."""
    return ServiceFailure(f"{endpoint.label} failed part-way: {error}")


def rows_request(spec: TextSpec) -> text_pb2.GenerateRowsRequest:
    # The schema as submitted: the service validates rows against it, not only its normal form.
    return text_pb2.GenerateRowsRequest(
        schema_json=json.dumps(spec.source),
        num_rows=spec.num_rows,
        seed=spec.seed,
        sampling=text_pb2.SamplingOptions(temperature=spec.temperature or 0.0),
        keep_duplicates=spec.keep_duplicates,
        instructions=spec.instructions,
        optional_rate=spec.optional_rate,
        given_rows_json=[json.dumps(row, ensure_ascii=False) for row in spec.given_rows],
        given_context_json=[json.dumps(row, ensure_ascii=False) for row in spec.given_context],
        example_rows_json=[json.dumps(row, ensure_ascii=False) for row in spec.example_rows],
    )


def rows_summary(summary: text_pb2.GenerationSummary) -> RowsSummary:
    return RowsSummary(
        rows_generated=summary.rows_generated,
        rows_requested=summary.rows_requested,
        rows_invalid=summary.rows_invalid,
        duplicates_removed=summary.duplicates_removed,
        distinct_ratio=summary.distinct_ratio,
        seed=summary.seed,
        elapsed_s=summary.elapsed_s,
        tokens_generated=summary.tokens_generated,
        tokens_forced=summary.tokens_forced,
        partial=summary.partial,
        reason=summary.reason,
        rejected_by=dict(summary.rows_rejected_by),
        compile_s=summary.grammar_compile_s,
    )


async def generate_rows(
    endpoint: ServiceEndpoint,
    spec: TextSpec,
    timeout_s: float,
    on_progress: Callable[[int, int], None],
    on_rows: Callable[[list[dict[str, Any]]], None],
    on_waiting: Callable[[float], None],
) -> RowsSummary:
    """Streams rows into on_rows (in order) and progress into on_progress(rows_done, rows_total);
    on_waiting(seconds) hears while the service is busy with earlier calls. Returns the
    service's summary."""
    call = endpoint.stub.GenerateRows(rows_request(spec))
    async with aclosing(_events(call, endpoint, "GenerateRows", timeout_s)) as events:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "waiting":
                on_waiting(event.waiting.waited_s)
            elif kind == "progress":
                on_progress(event.progress.rows_done, event.progress.rows_total)
            elif kind == "rows":
                try:
                    rows = [json.loads(text) for text in event.rows.rows_json]
                except json.JSONDecodeError as err:
                    raise ServiceFailure(f"{endpoint.label} sent a row that is not JSON: {err}") from None
                endpoint.metrics.rows.inc(len(rows))
                on_rows(rows)
            elif kind == "summary":
                if event.summary.error:
                    raise _failed_part_way(endpoint, event.summary.error)
                return rows_summary(event.summary)
    raise _no_summary(endpoint)


def images_request(spec: ImageSpec, prompts: list[str]) -> image_pb2.GenerateImagesRequest:
    return image_pb2.GenerateImagesRequest(
        prompts=prompts,
        num_images=spec.num_images,
        width=spec.width,
        height=spec.height,
        negative_prompt=spec.negative_prompt,
        num_inference_steps=spec.num_inference_steps,
        guidance_scale=spec.guidance_scale,
        seed=spec.seed,
        scheduler=spec.scheduler,
        annotations=spec.annotations,
        labels=spec.labels,
        first_index=spec.first_index,
        feature_reuse=spec.feature_reuse,
    )


def generated_image(image: image_pb2.GeneratedImage) -> GeneratedImage:
    objects = []
    for obj in image.objects:
        mask = obj.segmentation
        box = obj.coco_bbox
        objects.append(
            DetectedObject(
                label=obj.label,
                score=obj.score,
                bbox=[box.x, box.y, box.width, box.height],
                area=obj.coco_area,
                segmentation={"counts": list(mask.counts), "size": [mask.height, mask.width]}
                if obj.HasField("segmentation")
                else [list(obj.coco_polygon)],
                bbox_asked=obj.HasField("bbox"),
            )
        )
    return GeneratedImage(
        index=image.index,
        prompt=image.prompt,
        seed=image.seed,
        png=image.png,
        width=image.width,
        height=image.height,
        objects=objects,
        caption=image.caption,
        prompt_tokens_dropped=image.prompt_tokens_dropped,
    )


def images_summary(summary: image_pb2.ImageSummary) -> ImagesSummary:
    return ImagesSummary(
        images_generated=summary.images_generated,
        images_requested=summary.images_requested,
        elapsed_s=summary.elapsed_s,
        seed=summary.seed,
        annotations_produced=list(summary.annotations_produced),
        partial=summary.partial,
        reason=summary.reason,
        scheduler=summary.scheduler,
        negative_prompt_tokens_dropped=summary.negative_prompt_tokens_dropped,
    )


async def generate_images(
    endpoint: ServiceEndpoint,
    spec: ImageSpec,
    prompts: list[str],
    timeout_s: float,
    on_step: Callable[[DenoiseStep], None],
    on_image: Callable[[GeneratedImage], None],
    on_waiting: Callable[[float], None],
) -> ImagesSummary:
    """Streams images into on_image and denoising steps into on_step; on_waiting(seconds) hears
    while the service is busy with earlier calls. Returns the summary. `prompts` are the final
    prompts (image i uses prompts[i % len(prompts)])."""
    call = endpoint.stub.GenerateImages(images_request(spec, prompts))
    async with aclosing(_events(call, endpoint, "GenerateImages", timeout_s)) as events:
        async for event in events:
            kind = event.WhichOneof("event")
            if kind == "waiting":
                on_waiting(event.waiting.waited_s)
            elif kind == "step":
                step = event.step
                on_step(DenoiseStep(step.step, step.total_steps, step.images_done, step.images_total, step.batch_size))
            elif kind == "image":
                endpoint.metrics.images.inc()
                on_image(generated_image(event.image))
            elif kind == "summary":
                if event.summary.error:
                    raise _failed_part_way(endpoint, event.summary.error)
                return images_summary(event.summary)
    raise _no_summary(endpoint)
