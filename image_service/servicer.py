"""The ImageService gRPC servicer: converts protobuf to engine dataclasses and back, runs the
engine on a worker thread and streams its events through sdg.streaming, which also ends a failed
call with the summary built here. No generation logic lives here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import grpc

from image_service.engine import ImageEngine
from image_service.types import (
    BoundingBox,
    GeneratedImage,
    ImageEvent,
    ImageRequest,
    ImageSummary,
    InvalidImageRequest,
    StepProgress,
)
from sdg.limits import DEFAULT_GUIDANCE, DEFAULT_STEPS
from sdg.model_info import ModelInfo
from sdg.seeds import draw_seed
from sdg.service_metrics import ModelServiceMetrics
from sdg.streaming import Waiting, engine_stream
from sdg.v1 import common_pb2, image_pb2, image_pb2_grpc

SERVICE_NAME = image_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name


def request_from_pb(message: image_pb2.GenerateImagesRequest) -> ImageRequest:
    return ImageRequest(
        prompts=tuple(message.prompts),
        num_images=message.num_images,
        width=message.width,
        height=message.height,
        negative_prompt=message.negative_prompt,
        num_inference_steps=message.num_inference_steps or DEFAULT_STEPS,
        guidance_scale=message.guidance_scale if message.HasField("guidance_scale") else DEFAULT_GUIDANCE,
        seed=message.seed if message.HasField("seed") else None,
        scheduler=message.scheduler or "default",
        annotations=tuple(message.annotations),
        labels=tuple(message.labels),
        first_index=message.first_index,
        feature_reuse=message.feature_reuse or 1,
    )


def step_to_pb(step: StepProgress) -> image_pb2.GenerateImagesResponse:
    return image_pb2.GenerateImagesResponse(
        step=image_pb2.StepProgress(
            step=step.step,
            total_steps=step.total_steps,
            images_done=step.images_done,
            images_total=step.images_total,
            batch_size=step.batch_size,
        )
    )


def image_to_pb(image: GeneratedImage) -> image_pb2.GenerateImagesResponse:
    objects = []
    for obj in image.objects:
        message = image_pb2.ObjectAnnotation(
            label=obj.label,
            score=obj.score,
            area=obj.area,
            coco_bbox=_box_to_pb(obj.coco_bbox),
            coco_area=obj.coco_area,
            coco_polygon=obj.coco_polygon,
        )
        if obj.bbox is not None:
            message.bbox.CopyFrom(_box_to_pb(obj.bbox))
        if obj.segmentation is not None:
            rle = obj.segmentation
            message.segmentation.CopyFrom(
                image_pb2.RunLengthMask(counts=rle.counts, height=rle.height, width=rle.width)
            )
        objects.append(message)
    return image_pb2.GenerateImagesResponse(
        image=image_pb2.GeneratedImage(
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
    )


def _box_to_pb(box: BoundingBox) -> image_pb2.BoundingBox:
    return image_pb2.BoundingBox(x=box.x, y=box.y, width=box.width, height=box.height)


def event_to_pb(event: ImageEvent | ImageSummary) -> image_pb2.GenerateImagesResponse:
    if isinstance(event, Waiting):
        return image_pb2.GenerateImagesResponse(waiting=common_pb2.Waiting(waited_s=event.waited_s))
    if isinstance(event, StepProgress):
        return step_to_pb(event)
    if isinstance(event, GeneratedImage):
        return image_to_pb(event)
    return summary_to_pb(event)


def summary_to_pb(summary: ImageSummary) -> image_pb2.GenerateImagesResponse:
    return image_pb2.GenerateImagesResponse(
        summary=image_pb2.ImageSummary(
            images_generated=summary.images_generated,
            images_requested=summary.images_requested,
            elapsed_s=summary.elapsed_s,
            seed=summary.seed,
            annotations_produced=summary.annotations_produced,
            partial=summary.partial,
            reason=summary.reason,
            scheduler=summary.scheduler,
            negative_prompt_tokens_dropped=summary.negative_prompt_tokens_dropped,
            error=summary.error,
        )
    )


class ImageServicer(image_pb2_grpc.ImageServiceServicer):
    """Serves one ImageEngine, attached once the model has loaded."""

    def __init__(self, unloaded: ModelInfo, metrics: ModelServiceMetrics):
        self._unloaded = unloaded
        self._metrics = metrics
        self._engine: ImageEngine | None = None

    def attach(self, engine: ImageEngine) -> None:
        self._engine = engine

    async def GetModelInfo(self, request, context) -> common_pb2.ModelInfo:
        return (self._engine.info if self._engine else self._unloaded).to_pb()

    async def GenerateImages(
        self, request: image_pb2.GenerateImagesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[image_pb2.GenerateImagesResponse]:
        engine = self._engine
        if engine is None:
            self._metrics.call_ended("unavailable")
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the image model is still loading")
        image_request = request_from_pb(request)
        if image_request.seed is None:  # drawn here, so that even a failure's summary reports it
            image_request = replace(image_request, seed=draw_seed())
        images_sent = 0

        def work(emit, cancelled) -> None:
            emit(engine.generate(image_request, emit, cancelled.is_set))

        def failure(error: str) -> ImageSummary:
            return _failure_summary(image_request, images_sent, error)

        async for event in engine_stream(context, work, (InvalidImageRequest,), failure, "GenerateImages", self._metrics.call_ended):
            if isinstance(event, GeneratedImage):
                images_sent += 1
            yield event_to_pb(event)


def _failure_summary(request: ImageRequest, images_sent: int, error: str) -> ImageSummary:
    return ImageSummary(
        images_generated=images_sent,
        images_requested=request.images_wanted,
        elapsed_s=0.0,
        seed=request.seed,
        scheduler=request.scheduler,
        annotations_produced=request.annotation_kinds if images_sent else (),
        partial=True,
        reason=f"image engine failed: {error}",
        error=error,
    )
