"""The ImageService gRPC servicer: converts protobuf to engine dataclasses and back, runs the
engine on a worker thread and streams its events. No generation logic lives here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc
import torch

from image_service.engine import ImageEngine
from image_service.types import (
    GeneratedImage,
    ImageEvent,
    ImageRequest,
    ImageRunFailed,
    ImageSummary,
    InvalidImageRequest,
    StepProgress,
)
from sdg.limits import DEFAULT_GUIDANCE, DEFAULT_STEPS
from sdg.model_info import ModelInfo
from sdg.streaming import Waiting, stream_from_thread
from sdg.v1 import common_pb2, image_pb2, image_pb2_grpc

log = logging.getLogger(__name__)
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
        message = image_pb2.ObjectAnnotation(label=obj.label, score=obj.score, area=obj.area)
        if obj.bbox is not None:
            message.bbox.CopyFrom(
                image_pb2.BoundingBox(x=obj.bbox.x, y=obj.bbox.y, width=obj.bbox.width, height=obj.bbox.height)
            )
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

    def __init__(self, unloaded: ModelInfo):
        self._unloaded = unloaded
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
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the image model is still loading")
        image_request = request_from_pb(request)
        try:
            engine.validate(image_request)
        except InvalidImageRequest as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

        def work(emit, cancelled) -> None:
            emit(engine.generate(image_request, emit, cancelled.is_set))

        started = False
        try:
            async with aclosing(stream_from_thread(work)) as events:
                async for item in events:
                    if isinstance(item, BaseException):
                        log.error("GenerateImages failed", exc_info=item)
                        # Once the stream has started, a failure is reported by its last message
                        # (a partial summary with the reason), not by a new status.
                        if started and isinstance(item, ImageRunFailed):
                            yield summary_to_pb(item.summary)
                            continue
                        await context.abort(_status_for(item), str(item))
                    yield event_to_pb(item)
                    started = True
        except (GeneratorExit, asyncio.CancelledError):
            # Closing the stream has set the flag the engine checks every step.
            log.info("GenerateImages ended early by the client; the engine stops within one step")
            raise


def _status_for(error: BaseException) -> grpc.StatusCode:
    cause = error.__cause__ or error
    if isinstance(cause, torch.OutOfMemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return grpc.StatusCode.INTERNAL
