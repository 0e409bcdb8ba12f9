"""ImageEngine: batched text-to-image denoising with per-image seeds, progress and cancellation
checked at every step, and optional cross-attention annotations. Plain Python: it takes an
ImageRequest, emits dataclasses and returns a summary; the gRPC servicer only converts. The
denoising run itself is image_service/denoise.py."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import torch

from image_service.attention import CrossAttentionRecorder
from image_service.denoise import DenoiseParts, DenoiseRun, OrderedDelivery
from image_service.model import LoadedImageModel, load_image_model
from image_service.reuse import FeatureReuse, unsupported_reason
from image_service.settings import ImageSettings
from image_service.types import GeneratedImage, ImageRequest, ImageSummary, InvalidImageRequest
from sdg.limits import (
    ANNOTATION_KINDS,
    MAX_FEATURE_REUSE,
    MAX_GENERATOR_SEED,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_INFERENCE_STEPS,
    SCHEDULERS,
    side_problem,
)
from sdg.model_info import ModelInfo
from sdg.seeds import draw_seed
from sdg.service_metrics import ModelServiceMetrics, image_metrics
from sdg.streaming import Emit, ModelLock

log = logging.getLogger(__name__)


class ImageEngine:
    def __init__(
        self,
        model: LoadedImageModel,
        settings: ImageSettings,
        model_thread: ThreadPoolExecutor | None = None,
        metrics: ModelServiceMetrics | None = None,
    ):
        self.info: ModelInfo = model.info
        # The service passes the metrics it exports; an engine built on its own keeps its own.
        self.metrics = metrics or image_metrics()
        self._compiled = settings.compile
        # Whether a compiled engine may compile: only during warm_up (see _compile_stance).
        self._warming_up = False
        # torch.compile's stance after the warm-up. The bench and tests set "fail_on_recompile"
        # so that what they measure as compiled cannot quietly have run eager.
        self.stance_after_warm_up = "eager_on_recompile"
        self._min_resolution = settings.min_resolution
        self._max_resolution = settings.max_resolution
        # Every model call runs on this one thread (best the one that loaded the model), so one
        # call denoises at a time (the model, its attention processors and the GPU are shared),
        # and state torch keeps per thread (cuDNN's tuned plans, a CPU's OpenMP team) is found
        # again by every request.
        self._model_thread = model_thread or ThreadPoolExecutor(1, thread_name_prefix="image-model")
        # Taken by a call before it submits work to the model thread, so that a call behind
        # others says it waits (and can be withdrawn) rather than queue there in silence.
        # Read late: warm_up swaps self.metrics, and its wait is no caller's either.
        self._model_lock = ModelLock(lambda seconds: self.metrics.model_wait.observe(seconds))
        # Feature reuse has a full and a shallow UNet pass of its own (reuse.py), compiled as
        # functions when the UNet is; the warm-up compiles them only if asked to.
        unet = model.pipeline.unet
        self._reuse_unsupported = unsupported_reason(unet)
        reuse_full = reuse_shallow = None
        if self._reuse_unsupported is None:
            reuse = FeatureReuse(unet)
            reuse_full, reuse_shallow = reuse.full, reuse.shallow
            if settings.compile:
                reuse_full = torch.compile(reuse.full, mode=settings.compile_mode, dynamic=False)
                reuse_shallow = torch.compile(reuse.shallow, mode=settings.compile_mode, dynamic=False)
        self.parts = DenoiseParts(
            pipe=model.pipeline,
            device=model.device,
            batch_size=settings.batch_size_for(model.device.type),
            pad_batches=settings.compile,
            default_scheduler=model.pipeline.scheduler,
            recorder=CrossAttentionRecorder(),
            reuse_full=reuse_full,
            reuse_shallow=reuse_shallow,
            # The CUDA graph modes: outputs read later (the deep features shallow steps reuse, the
            # noise prediction multistep schedulers keep) are copied out.
            graph_outputs=settings.compile and settings.compile_mode in ("reduce-overhead", "max-autotune"),
            finishers=ThreadPoolExecutor(settings.postprocess_threads, thread_name_prefix="image-finish"),
        )
        self._warm_up_reuse = settings.warm_up_feature_reuse and self._reuse_unsupported is None
        self._warned_reuse_eager = False

    @classmethod
    def from_settings(cls, settings: ImageSettings, metrics: ModelServiceMetrics | None = None) -> ImageEngine:
        """Loads the model and, where the first call would be slow (CUDA autotuning,
        torch.compile), runs a warm-up so that cost is paid before the service says SERVING."""
        model_thread = ThreadPoolExecutor(1, thread_name_prefix="image-model")
        try:
            model = model_thread.submit(load_image_model, settings).result()
        except BaseException:
            model_thread.shutdown(wait=False)
            raise
        engine = cls(model, settings, model_thread, metrics)
        if engine.parts.device.type == "cuda" or settings.compile:
            engine.warm_up(settings.warm_up_sizes())
        return engine

    @property
    def batch_size(self) -> int:
        return self.parts.batch_size

    @property
    def default_resolution(self) -> int:
        return self.parts.pipe.unet.config.sample_size * self.parts.pipe.vae_scale_factor

    def close(self) -> None:
        self._model_thread.shutdown(wait=True)
        self.parts.finishers.shutdown(wait=True)

    def warm_up(self, sizes: list[tuple[int, int]] | None = None, feature_reuse: tuple[int, ...] | None = None) -> None:
        """Runs full batches at each (width, height) in `sizes` (default: the model's own square
        resolution) with guidance, traced and untraced, and with each `feature_reuse` (default: 1,
        and 2 with SDG_IMAGE_WARM_UP_FEATURE_REUSE): cuDNN's autotuning, and with torch.compile the
        only compiling this engine does."""
        started = time.perf_counter()
        self._warming_up = True
        counted, self.metrics = self.metrics, image_metrics()  # warm-up images are no caller's
        try:
            # Two steps with feature reuse 2 run a full step and a shallow one.
            for reuse in feature_reuse or ((1, 2) if self._warm_up_reuse else (1,)):
                for width, height in sizes or [(self.default_resolution, self.default_resolution)]:
                    for annotations in ((), ("bbox",)):  # tracing swaps processors: a second compiled graph
                        self.generate(
                            ImageRequest(
                                prompts=("a warm-up image of a dog",),
                                num_images=self.batch_size,
                                width=width,
                                height=height,
                                num_inference_steps=2,
                                seed=0,
                                annotations=annotations,
                                feature_reuse=reuse,
                            )
                        )
        finally:
            self._warming_up = False
            self.metrics = counted
        log.info("warm-up done in %.1fs", time.perf_counter() - started)

    def _compile_stance(self):
        """After the warm-up, a compiled engine runs the shapes it compiled and runs any other
        (another resolution, guidance_scale <= 1) eagerly. Compiling one mid-request would hold
        the model thread for minutes in the autotuning modes, longer than the gateway waits for
        a silent stream, with every other request queued behind it."""
        if not self._compiled or self._warming_up:
            return nullcontext()
        return torch.compiler.set_stance(self.stance_after_warm_up)

    # -- 1. Check inputs ----------------------------------------------------------------------

    def validate(self, request: ImageRequest) -> None:
        """Raises InvalidImageRequest naming the first field the engine cannot honour."""
        if not request.prompts:
            raise InvalidImageRequest("prompts", "at least one prompt is required")
        for i, prompt in enumerate(request.prompts):
            if not prompt.strip():
                raise InvalidImageRequest("prompts", f"prompt {i} is empty")
        if not 1 <= request.num_images <= MAX_IMAGES:
            raise InvalidImageRequest("num_images", f"must be within 1..{MAX_IMAGES}, got {request.num_images}")
        if not 0 <= request.first_index < request.num_images:
            raise InvalidImageRequest(
                "first_index", f"must be within 0..num_images-1 ({request.num_images - 1}), got {request.first_index}"
            )
        for name in ("width", "height"):
            if problem := side_problem(getattr(request, name), self._min_resolution, self._max_resolution):
                raise InvalidImageRequest(name, problem)
        if not 1 <= request.num_inference_steps <= MAX_INFERENCE_STEPS:
            raise InvalidImageRequest(
                "num_inference_steps", f"must be within 1..{MAX_INFERENCE_STEPS}, got {request.num_inference_steps}"
            )
        if not (math.isfinite(request.guidance_scale) and 0 <= request.guidance_scale <= MAX_GUIDANCE):
            raise InvalidImageRequest(
                "guidance_scale", f"must be within 0..{MAX_GUIDANCE:g}, got {request.guidance_scale}"
            )
        if request.seed is not None and not 0 <= request.seed <= MAX_GENERATOR_SEED - (request.num_images - 1):
            raise InvalidImageRequest(
                "seed", f"seed + image index must fit in 0..2**64-1, got seed {request.seed}"
            )
        if request.scheduler not in SCHEDULERS:
            raise InvalidImageRequest(
                "scheduler", f"unknown scheduler {request.scheduler!r}; expected one of {', '.join(SCHEDULERS)}"
            )
        for kind in request.annotations:
            if kind not in ANNOTATION_KINDS:
                raise InvalidImageRequest(
                    "annotations", f"unknown annotation {kind!r}; expected any of {', '.join(ANNOTATION_KINDS)}"
                )
        for label in request.labels:
            if not label.strip():
                raise InvalidImageRequest("labels", "labels must not be empty")
        if not 1 <= request.feature_reuse <= MAX_FEATURE_REUSE:
            raise InvalidImageRequest(
                "feature_reuse", f"must be within 1..{MAX_FEATURE_REUSE} (1: no reuse), got {request.feature_reuse}"
            )
        if request.feature_reuse > 1 and self._reuse_unsupported:
            raise InvalidImageRequest("feature_reuse", f"this model cannot reuse features: {self._reuse_unsupported}")

    # -- 2. Generate --------------------------------------------------------------------------

    def generate(self, request: ImageRequest, emit: Emit = lambda event: None, cancelled: Callable[[], bool] = lambda: False) -> ImageSummary:
        """Generates `request.images_wanted` images in batches. Emits Waiting while earlier calls
        hold the model, a StepProgress after every denoising step, and each GeneratedImage in
        index order; `cancelled` is asked after each of those and stops the call within that
        step (or withdraws it while it waits). Returns the summary (partial when stopped);
        raises InvalidImageRequest before any work."""
        self.validate(request)
        if request.feature_reuse > 1 and self._compiled and not self._warm_up_reuse and not self._warned_reuse_eager:
            self._warned_reuse_eager = True
            log.warning("feature_reuse runs eager on this compiled service: set SDG_IMAGE_WARM_UP_FEATURE_REUSE=true to compile it at start-up")
        seed = request.seed if request.seed is not None else draw_seed()
        started = time.perf_counter()
        metrics = self.metrics

        def emit_image(image: GeneratedImage) -> None:
            emit(image)
            metrics.made.inc()

        delivery = OrderedDelivery(emit_image)
        run: DenoiseRun | None = None

        def summary(partial: bool, reason: str) -> ImageSummary:
            return ImageSummary(
                images_generated=delivery.delivered,
                images_requested=request.images_wanted,
                elapsed_s=time.perf_counter() - started,
                seed=seed,
                scheduler=request.scheduler,
                annotations_produced=request.annotation_kinds if delivery.delivered else (),
                partial=partial,
                reason=reason,
                negative_prompt_tokens_dropped=run.negative_tokens_dropped if run else 0,
            )

        def denoise() -> bool:
            nonlocal run, started
            started = time.perf_counter()  # the summary's elapsed_s is the call's own work
            with torch.inference_mode(), self._compile_stance():
                # Made on the model thread, the only one that uses the tokenizer: a fast
                # tokenizer called from two threads at once can fail ("Already borrowed").
                run = DenoiseRun(self.parts, request, seed, delivery, emit, cancelled, metrics)
                return run.execute()

        try:
            with self._model_lock.turn(emit, cancelled) as holding:
                if not holding:
                    return summary(True, "cancelled")
                stopped = self._model_thread.submit(denoise).result()
            # The last PNGs finish on the caller's thread: the next call can start denoising.
            delivery.drain()
        except Exception:
            delivery.abandon()
            raise
        return summary(True, "cancelled") if stopped else summary(False, "")
