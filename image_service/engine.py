"""ImageEngine: batched text-to-image denoising with per-image seeds, progress and cancellation
through one per-step callback, and optional cross-attention annotations. Plain Python: it takes
an ImageRequest and returns dataclasses; the gRPC servicer only converts."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext, suppress

import torch
from diffusers.utils.torch_utils import randn_tensor

from image_service.annotations import token_positions
from image_service.attention import CrossAttentionRecorder, tracing_cross_attention
from image_service.finishing import DecodedImage, finish_image, upsampled_heatmaps
from image_service.model import LoadedImageModel, load_image_model
from image_service.reuse import FeatureReuse, unsupported_reason
from image_service.schedulers import make_scheduler, scheduler_step_kwargs
from image_service.settings import ImageSettings
from image_service.types import (
    GeneratedImage,
    ImageCallback,
    ImageRequest,
    ImageRunFailed,
    ImageSummary,
    InvalidImageRequest,
    StepCallback,
    StepProgress,
    WaitCallback,
)
from image_service.words import object_words
from sdg import streaming
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

log = logging.getLogger(__name__)

# Batch size is set for 512x512; larger images get fewer per batch so activation memory stays put.
BATCH_PIXEL_BASE = 512 * 512
TRACED_KINDS = frozenset({"bbox", "segmentation"})


class ImageEngine:
    def __init__(self, model: LoadedImageModel, settings: ImageSettings, model_thread: ThreadPoolExecutor | None = None):
        self.info: ModelInfo = model.info
        self._pipe = model.pipeline
        self._device = model.device
        self._batch_size = settings.batch_size_for(model.device.type)
        # A compiled UNet and decoder have one graph per shape, compiled at warm-up for a full
        # batch: a job's last, partial batch is filled up to full size with copies of its last
        # image (computed and dropped) rather than run eager at its own size. On a GPU a full
        # batch of 8 takes about as long as a lone image anyway.
        self._compiled = settings.compile
        # Whether a compiled engine may compile: only during warm_up (see _compile_stance).
        self._warming_up = False
        # torch.compile's stance after the warm-up. The bench and tests set "fail_on_recompile"
        # so that what they measure as compiled cannot quietly have run eager.
        self.stance_after_warm_up = "eager_on_recompile"
        self._min_resolution = settings.min_resolution
        self._max_resolution = settings.max_resolution
        self._default_scheduler = model.pipeline.scheduler
        self._finishers = ThreadPoolExecutor(settings.postprocess_threads, thread_name_prefix="image-finish")
        # Every model call runs on this one thread (best the one that loaded the model), so one
        # call denoises at a time (the model, its attention processors and the GPU are shared),
        # and state torch keeps per thread is found again by every request:
        # - cuDNN's autotuned convolution and attention plans (`thread_local` in torch): on an
        #   H200 the service path paid a fixed 2.2-2.6 s per request, which fits a fresh thread
        #   tuning them all again;
        # - on a CPU, OpenMP's spinning thread team: torch ops on a second thread ran the tiny
        #   UNet 2.8x slower than on the first thread that used torch.
        self._model_thread = model_thread or ThreadPoolExecutor(1, thread_name_prefix="image-model")
        # Calls submitted to the model thread and not yet done there: a call that finds others
        # has to wait, and says so.
        self._calls = 0
        self._calls_lock = threading.Lock()
        # One for the engine's lifetime, so a compiled UNet traces the recording once.
        self._recorder = CrossAttentionRecorder()
        # Feature reuse has a full and a shallow UNet pass of its own (reuse.py), compiled as
        # functions when the UNet is; the warm-up compiles them only if asked to.
        self._reuse_unsupported = unsupported_reason(self._pipe.unet)
        self._reuse_full = self._reuse_shallow = None
        if self._reuse_unsupported is None:
            reuse = FeatureReuse(self._pipe.unet)
            self._reuse_full, self._reuse_shallow = reuse.full, reuse.shallow
            if settings.compile:
                self._reuse_full = torch.compile(reuse.full, mode=settings.compile_mode, dynamic=False)
                self._reuse_shallow = torch.compile(reuse.shallow, mode=settings.compile_mode, dynamic=False)
        # CUDA graphs (these modes) reuse their output memory on the graph's next run. Outputs
        # read after that are copied out: the deep features the shallow steps reuse, and without
        # guidance the noise prediction itself, which multistep schedulers (PNDM) keep.
        self._graph_outputs = settings.compile and settings.compile_mode in ("reduce-overhead", "max-autotune")
        self._warm_up_reuse = settings.warm_up_feature_reuse and self._reuse_unsupported is None
        self._warned_reuse_eager = False

    @classmethod
    def from_settings(cls, settings: ImageSettings) -> ImageEngine:
        """Loads the model and, where the first call would be slow (CUDA autotuning,
        torch.compile), runs a warm-up so that cost is paid before the service says SERVING."""
        model_thread = ThreadPoolExecutor(1, thread_name_prefix="image-model")
        try:
            model = model_thread.submit(load_image_model, settings).result()
        except BaseException:
            model_thread.shutdown(wait=False)
            raise
        engine = cls(model, settings, model_thread)
        if engine._device.type == "cuda" or settings.compile:
            engine.warm_up(settings.warm_up_sizes())
        return engine

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def default_resolution(self) -> int:
        return self._pipe.unet.config.sample_size * self._pipe.vae_scale_factor

    def close(self) -> None:
        self._model_thread.shutdown(wait=True)
        self._finishers.shutdown(wait=True)

    def warm_up(self, sizes: list[tuple[int, int]] | None = None, feature_reuse: tuple[int, ...] | None = None) -> None:
        """Runs full batches at each (width, height) in `sizes` (default: the model's own square
        resolution) with guidance, traced and untraced, and with each `feature_reuse` (default: 1,
        and 2 with SDG_IMAGE_WARM_UP_FEATURE_REUSE): cuDNN's autotuning, and with torch.compile the
        only compiling this engine does."""
        started = time.perf_counter()
        self._warming_up = True
        try:
            # Two steps with feature reuse 2 run a full step and a shallow one.
            for reuse in feature_reuse or ((1, 2) if self._warm_up_reuse else (1,)):
                for width, height in sizes or [(self.default_resolution, self.default_resolution)]:
                    for annotations in ((), ("bbox",)):  # tracing swaps processors: a second compiled graph
                        self.generate(
                            ImageRequest(
                                prompts=("a warm-up image of a dog",),
                                num_images=self._batch_size,
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

    def generate(
        self,
        request: ImageRequest,
        on_step: StepCallback | None = None,
        on_image: ImageCallback | None = None,
        on_wait: WaitCallback | None = None,
    ) -> ImageSummary:
        """Generates `request.num_images` images in batches. `on_step` runs after every denoising
        step and may stop the call by returning True; `on_image` receives each finished image in
        index order; `on_wait` hears of the wait while earlier calls hold the model, and may
        withdraw the call. Returns the summary (partial when stopped); raises InvalidImageRequest
        before any work, or ImageRunFailed (with what was delivered) if generation fails."""
        self.validate(request)
        if request.feature_reuse > 1 and self._compiled and not self._warm_up_reuse and not self._warned_reuse_eager:
            self._warned_reuse_eager = True
            log.warning("feature_reuse runs eager on this compiled service: set SDG_IMAGE_WARM_UP_FEATURE_REUSE=true to compile it at start-up")
        seed = request.seed if request.seed is not None else draw_seed()
        kinds = tuple(k for k in ANNOTATION_KINDS if k in request.annotations)
        started = time.perf_counter()
        delivery = _OrderedDelivery(on_image)

        def summary(partial: bool, reason: str, error: str = "") -> ImageSummary:
            return ImageSummary(
                images_generated=delivery.delivered,
                images_requested=request.images_wanted,
                elapsed_s=time.perf_counter() - started,
                seed=seed,
                scheduler=request.scheduler,
                annotations_produced=kinds if delivery.delivered else (),
                partial=partial,
                reason=reason,
                negative_prompt_tokens_dropped=run.negative_tokens_dropped if run else 0,
                error=error,
            )

        run: _BatchRun | None = None
        began = threading.Event()

        def denoise() -> bool:
            nonlocal run, started
            began.set()
            started = time.perf_counter()  # the summary's elapsed_s is the call's own work
            try:
                with torch.inference_mode(), self._compile_stance():
                    # Made on the model thread, the only one that uses the tokenizer: a fast
                    # tokenizer called from two threads at once can fail ("Already borrowed").
                    run = _BatchRun(self, request, seed, delivery, on_step)
                    return run.execute()
            finally:
                self._count_call(-1)

        try:
            busy = self._count_call(+1) > 1
            future = self._model_thread.submit(denoise)
            if busy and on_wait is not None and _wait_to_start(future, began, on_wait):
                self._count_call(-1)
                return summary(True, "cancelled")
            stopped = future.result()
            # The last PNGs finish on the caller's thread: the next call can start denoising.
            delivery.drain()
        except Exception as error:
            delivery.abandon()
            raise ImageRunFailed(summary(True, f"failed: {error}", f"{type(error).__name__}: {error}"), error) from error
        if stopped:
            return summary(True, "cancelled")
        return summary(False, "")

    def _count_call(self, change: int) -> int:
        """Adds `change` to the calls submitted to the model thread and not done there; returns
        the new count."""
        with self._calls_lock:
            self._calls += change
            return self._calls


def _wait_to_start(future: Future, began: threading.Event, on_wait: WaitCallback) -> bool:
    """Calls `on_wait` with the seconds waited, at once and every streaming.WAITING_EVERY_S, until the
    call behind `future` starts on the model thread. True when on_wait asked to stop and the call
    was withdrawn before it started."""
    waiting_since = time.perf_counter()
    while True:
        if on_wait(time.perf_counter() - waiting_since) and future.cancel():
            return True
        if began.wait(streaming.WAITING_EVERY_S):
            return False


class _OrderedDelivery:
    """Finished-image futures in index order; hands each to the callback once it and every
    earlier one are done, from the model thread between steps, then from the caller's thread
    when draining (one after the other, never at once)."""

    def __init__(self, on_image: ImageCallback | None):
        self._on_image = on_image
        self._pending: deque[Future[GeneratedImage]] = deque()
        self.delivered = 0

    def submit(self, future: Future[GeneratedImage]) -> None:
        self._pending.append(future)

    def deliver_ready(self) -> None:
        while self._pending and self._pending[0].done():
            self._emit(self._pending.popleft().result())

    def drain(self) -> None:
        while self._pending:
            self._emit(self._pending.popleft().result())

    def abandon(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def _emit(self, image: GeneratedImage) -> None:
        if self._on_image is not None:
            self._on_image(image)
        self.delivered += 1


class _BatchRun:
    """One generate() call's denoising: prompt encoding, then per batch: noise, denoising loop,
    VAE decode, hand-off to the finishing pool."""

    def __init__(self, engine: ImageEngine, request: ImageRequest, seed: int, delivery: _OrderedDelivery, on_step):
        self.engine = engine
        self.pipe = engine._pipe
        self.device = engine._device
        self.request = request
        self.seed = seed
        self.delivery = delivery
        self.on_step = on_step
        self.cfg = request.guidance_scale > 1.0  # as the diffusers pipeline decides
        self.scheduler = make_scheduler(engine._default_scheduler, request.scheduler, self._upload)
        self.step_kwargs = scheduler_step_kwargs(self.scheduler)
        self.traced = bool(TRACED_KINDS & set(request.annotations))
        self.latent_hw = (request.height // self.pipe.vae_scale_factor, request.width // self.pipe.vae_scale_factor)
        self.recorder = engine._recorder
        self._embeds: dict[str, torch.Tensor] = {}
        self._negative: torch.Tensor | None = None
        # Per prompt, its tokens past the text encoder's context, which the encoding cuts; the
        # same for the negative prompt (read only under guidance, as the pipeline reads it).
        self.tokens_dropped: dict[str, int] = {}
        self.negative_tokens_dropped = 0
        self._in_flight: _InFlight | None = None  # the last decoded batch, not yet handed off

    def execute(self) -> bool:
        """Runs every batch; returns True when the step callback stopped the call.

        Batches overlap at their seam: a decoded batch's pixels and heatmaps are copied to the
        host behind the GPU's queue, and handed to the finishing pool only once the next batch's
        first step is queued, so the GPU does not idle while the host waits for those copies and
        prepares the next batch."""
        full = batch_rows(self.request, self.engine.batch_size)
        try:
            for batch in plan_batches(self.request, self.engine.batch_size):
                filled = batch + batch[-1:] * (full - len(batch)) if self.engine._compiled else batch
                prompts = [self.request.prompt_for(i) for i in filled]
                label_positions = [self._label_positions(p) for p in prompts[: len(batch)]] if self.traced else []
                # A batch where no prompt has a label runs untraced: nothing to record, and a compiled
                # engine has graphs for exactly two cases (recording everything or nothing).
                traced = any(label_positions)
                if traced:
                    rows = slice(len(filled), 2 * len(filled)) if self.cfg else slice(0, len(filled))
                    self.recorder.reset(self.latent_hw, rows, self.device)
                with tracing_cross_attention(self.pipe.unet, self.recorder) if traced else nullcontext():
                    latents = self._denoise(filled, prompts, images=len(batch))
                if latents is None:
                    self._hand_off()
                    return True
                heatmaps = [([], None)] * len(batch)
                if traced:  # queued before the next batch resets the recorder: this batch's maps
                    token_maps = self.recorder.token_maps()  # None: nothing recorded
                    size = (self.request.height, self.request.width)
                    heatmaps = [upsampled_heatmaps(None if token_maps is None else token_maps[row], label_positions[row], *size) for row in range(len(batch))]
                self._in_flight = _InFlight(self, batch, prompts, self._decode(latents), heatmaps)
        except BaseException:
            # The batch decoded before a failure is whole: deliver it if the device still can.
            with suppress(Exception):
                self._hand_off()
            raise
        self._hand_off()
        return False

    def _hand_off(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.hand_off()

    def _label_positions(self, prompt: str) -> dict[str, list[int]]:
        labels = self.request.labels or tuple(object_words(prompt))
        found = {}
        for label in labels:
            positions = token_positions(self.pipe.tokenizer, prompt, label)
            if positions:
                found[label] = positions
        return found

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        """Conditional (and, under CFG, unconditional first) text embeddings for the batch rows,
        encoding each distinct prompt once per call."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._embeds))
        if missing:
            self._embeds.update(zip(missing, self._embed_texts(missing)))
            self._count_dropped(missing)
            if self.cfg and self._negative is None:
                self._negative = self._embed_texts([self.request.negative_prompt] * len(missing))[0]
                self.negative_tokens_dropped = tokens_past_context(self.pipe.tokenizer, [self.request.negative_prompt])[0]
                if self.negative_tokens_dropped:
                    log.warning("the negative prompt is longer than the text encoder reads: %d tokens cut", self.negative_tokens_dropped)
        conditional = torch.stack([self._embeds[p] for p in prompts])
        if not self.cfg:
            return conditional
        return torch.cat([self._negative.expand_as(conditional), conditional])

    def _count_dropped(self, prompts: list[str]) -> None:
        """Records how many tokens each prompt loses to the encoder's context (reported with its
        images); logs the call's first cut prompt, as diffusers' pipeline would have."""
        warned = any(self.tokens_dropped.values())
        for prompt, dropped in zip(prompts, tokens_past_context(self.pipe.tokenizer, prompts)):
            self.tokens_dropped[prompt] = dropped
            if dropped and not warned:
                warned = True
                shown = prompt if len(prompt) <= 200 else f"{prompt[:200]}..."  # a prompt may be any length
                log.warning("prompts longer than the text encoder reads are cut (this call's first: %d tokens dropped from %r)", dropped, shown)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        """CLIP embeddings as the pipeline's `encode_prompt` computes them (SDG uses neither clip
        skip nor LoRA scales), with the token ids uploaded through `_upload`: a unified job meets
        new prompts in every batch, and encode_prompt's plain `.to()` would wait there for the
        previous batch's decode."""
        tokenizer, encoder = self.pipe.tokenizer, self.pipe.text_encoder
        tokens = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
        mask = self._upload(tokens.attention_mask) if getattr(encoder.config, "use_attention_mask", False) else None
        return encoder(self._upload(tokens.input_ids), attention_mask=mask)[0].to(encoder.dtype)

    def _upload(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor on the device, its copy queued behind the device's work. A plain `.to()`
        from pageable memory waits for the device to finish everything queued (the previous
        batch's decode), which would idle the GPU at every batch's start; from pinned memory,
        `non_blocking` does not wait."""
        if self.device.type != "cuda":
            return tensor.to(self.device)
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _denoise(self, batch: list[int], prompts: list[str], images: int) -> torch.Tensor | None:
        """The denoising loop of the diffusers pipeline, over latents drawn per image from that
        image's own generator (so an image does not depend on its batch-mates). `images` of the
        rows are real, the rest fill the batch. None if stopped."""
        embeds = self._encode(prompts)
        generators = [torch.Generator("cpu").manual_seed(self.seed + i) for i in batch]
        unet = self.pipe.unet
        shape = (len(batch), unet.config.in_channels, *self.latent_hw)
        # Drawn on the CPU, as randn_tensor draws for CPU generators whatever the device.
        latents = self._upload(randn_tensor(shape, generator=generators, device=torch.device("cpu"), dtype=embeds.dtype))
        scheduler = self.scheduler
        # The scheduler's timesteps stay on the CPU, where its coefficient tables are: with them
        # on the GPU, PNDM's step reads a device scalar back (`prev_timestep >= 0`, a table
        # lookup), so the host waited for every step to finish before queueing the next one.
        scheduler.set_timesteps(self.request.num_inference_steps, device="cpu")
        latents = latents * scheduler.init_noise_sigma
        step_kwargs = dict(self.step_kwargs)
        if "generator" in step_kwargs:
            step_kwargs["generator"] = generators
        timesteps = scheduler.timesteps
        # The UNet's copy, on the device in one transfer, and float32 for every scheduler (PNDM's
        # and DPM's timesteps are int64, Euler's float32), so a compiled UNet has one graph for
        # all of them. The same embedding: the UNet converts timesteps to float32 first.
        unet_timesteps = self._upload(timesteps.to(torch.float32))
        reuse, deep = self.request.feature_reuse, None
        # PNDM (SD's default) makes n steps in n + 1 UNet passes: its first step takes two.
        # Progress counts steps, as the pipeline's progress bar does, so the first pass is not
        # reported (nor can it be stopped at: the second follows at once).
        warm_up_passes = len(timesteps) - self.request.num_inference_steps
        for step, t in enumerate(timesteps, start=1):
            model_input = torch.cat([latents] * 2) if self.cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            timestep = unet_timesteps[step - 1]
            if reuse == 1:
                noise = unet(model_input, timestep, encoder_hidden_states=embeds, return_dict=False)[0]
            elif (step - 1) % reuse:
                noise = self.engine._reuse_shallow(model_input, timestep, embeds, deep)
            else:
                noise, deep = self.engine._reuse_full(model_input, timestep, embeds)
                if self.engine._graph_outputs:
                    deep = deep.clone()
            if self.cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + self.request.guidance_scale * (cond - uncond)
            elif self.engine._graph_outputs:
                noise = noise.clone()
            latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
            if step == 1:
                self._hand_off()  # the GPU has this batch's first step queued meanwhile
            self.delivery.deliver_ready()
            if self.on_step is not None and step > warm_up_passes:
                progress = StepProgress(
                    step=step - warm_up_passes,
                    total_steps=self.request.num_inference_steps,
                    images_done=self.delivery.delivered,
                    images_total=self.request.images_wanted,
                    batch_size=images,
                )
                if self.on_step(progress):
                    return None
        return latents

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode to (batch, height, width, 3) uint8 on the device, with the pipeline's exact
        arithmetic (denormalise in the model dtype, scale and round in float32)."""
        vae = self.pipe.vae
        images = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
        images = (images * 0.5 + 0.5).clamp(0, 1)
        images = (images.float() * 255).round().to(torch.uint8)
        return images.permute(0, 2, 3, 1)


class _InFlight:
    """A decoded batch on its way to the host: its pixels and heatmaps are copied behind the work
    already queued on the device, and `hand_off` waits for those copies alone, then passes each
    image to the finishing pool."""

    def __init__(self, run: _BatchRun, batch: list[int], prompts: list[str], pixels: torch.Tensor, heatmaps):
        self.run = run
        self.batch = batch
        self.prompts = prompts
        # Device-to-host copies with non_blocking land in pinned memory, read once `ready` is.
        self.pixels = pixels.to("cpu", non_blocking=True)
        self.heatmaps = [(labels, None if maps is None else maps.to("cpu", non_blocking=True)) for labels, maps in heatmaps]
        self.ready = None
        if pixels.device.type == "cuda":
            self.ready = torch.cuda.Event()
            self.ready.record(torch.cuda.current_stream(pixels.device))  # the copies' device, which may not be the current one

    def hand_off(self) -> None:
        if self.ready is not None:
            self.ready.synchronize()
        run, request = self.run, self.run.request
        pixels = self.pixels.numpy()
        for row, index in enumerate(self.batch):
            labels, maps = self.heatmaps[row]
            decoded = DecodedImage(
                index=index,
                prompt=self.prompts[row],
                seed=run.seed + index,
                pixels=pixels[row],
                # Upsampled on the device: see finishing.py for why not in the pool.
                heatmaps={} if maps is None else dict(zip(labels, maps.numpy())),
                want_bbox="bbox" in request.annotations,
                want_segmentation="segmentation" in request.annotations,
                # The prompt is the caption: no captioning model runs.
                caption=self.prompts[row] if "caption" in request.annotations else "",
                prompt_tokens_dropped=run.tokens_dropped[self.prompts[row]],
            )
            run.delivery.submit(run.engine._finishers.submit(finish_image, decoded))


def tokens_past_context(tokenizer, texts: list[str]) -> list[int]:
    """How many tokens of each text lie past the tokenizer's context (CLIP: 77, start and end
    tokens included), which encoding with truncation cuts."""
    limit = tokenizer.model_max_length
    return [max(0, len(ids) - limit) for ids in tokenizer(texts, verbose=False).input_ids]


def batch_rows(request: ImageRequest, batch_size: int) -> int:
    """Images per full denoising batch: `batch_size` at 512x512 or below, proportionally fewer
    for larger images so activation memory stays about the same."""
    area = request.width * request.height
    return max(1, min(batch_size, batch_size * BATCH_PIXEL_BASE // area))


def plan_batches(request: ImageRequest, batch_size: int) -> list[list[int]]:
    """Image indices per denoising batch, `batch_rows` at a time, from `first_index` on."""
    size = batch_rows(request, batch_size)
    indices = list(range(request.first_index, request.num_images))
    return [indices[i : i + size] for i in range(0, len(indices), size)]
