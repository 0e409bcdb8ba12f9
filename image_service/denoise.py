"""One generate() call's denoising run, on the engine's model thread: prompt encoding, then per
batch noise, the denoising loop, VAE decode and the hand-off of each image to the finishing pool,
whose images are delivered in index order."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from image_service.annotations import token_positions
from image_service.attention import CrossAttentionRecorder, tracing_cross_attention
from image_service.finishing import DecodedImage, finish_image, upsampled_heatmaps
from image_service.schedulers import make_scheduler, scheduler_step_kwargs
from image_service.types import GeneratedImage, ImageRequest, StepProgress
from image_service.words import object_words
from sdg.service_metrics import ModelServiceMetrics
from sdg.streaming import Emit

log = logging.getLogger(__name__)

# Batch size is set for 512x512; larger images get fewer per batch so activation memory stays put.
BATCH_PIXEL_BASE = 512 * 512
TRACED_KINDS = frozenset({"bbox", "segmentation"})


@dataclass(frozen=True)
class DenoiseParts:
    """What a denoising run uses of ImageEngine: the pipeline and what the engine built around it."""

    pipe: StableDiffusionPipeline
    device: torch.device
    batch_size: int  # images per batch at 512x512 or below
    # Compiled: a partial batch is filled up to full size with copies of its last image (computed
    # and dropped), since the graphs were compiled for full batches.
    pad_batches: bool
    default_scheduler: Any  # the pipeline's own, from which make_scheduler makes the others
    recorder: CrossAttentionRecorder  # one for the engine's lifetime: a compiled UNet traces it once
    # Feature reuse's full and shallow UNet passes (reuse.py); None where the UNet cannot reuse.
    reuse_full: Callable | None
    reuse_shallow: Callable | None
    # CUDA graphs reuse their output memory on the next run: outputs read later are copied out.
    graph_outputs: bool
    finishers: ThreadPoolExecutor  # PNG encoding and annotation, off the model thread


class OrderedDelivery:
    """Finished-image futures in index order; emits each once it and every earlier one are done,
    from the model thread between steps, then from the caller's thread when draining (one after
    the other, never at once)."""

    def __init__(self, emit: Emit):
        self._emit_image = emit
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
        self._emit_image(image)
        self.delivered += 1


class DenoiseRun:
    """One generate() call's denoising: prompt encoding, then per batch: noise, denoising loop,
    VAE decode, hand-off to the finishing pool."""

    def __init__(
        self,
        parts: DenoiseParts,
        request: ImageRequest,
        seed: int,
        delivery: OrderedDelivery,
        emit: Emit,
        cancelled: Callable[[], bool],
        metrics: ModelServiceMetrics,
    ):
        self.parts = parts
        self.metrics = metrics
        self.pipe = parts.pipe
        self.device = parts.device
        self.request = request
        self.seed = seed
        self.delivery = delivery
        self.emit = emit
        self.cancelled = cancelled
        self.cfg = request.guidance_scale > 1.0  # as the diffusers pipeline decides
        self.scheduler = make_scheduler(parts.default_scheduler, request.scheduler, self._upload)
        self.step_kwargs = scheduler_step_kwargs(self.scheduler)
        self.traced = bool(TRACED_KINDS & set(request.annotations))
        self.latent_hw = (request.height // self.pipe.vae_scale_factor, request.width // self.pipe.vae_scale_factor)
        self.recorder = parts.recorder
        self._embeds: dict[str, torch.Tensor] = {}
        self._negative: torch.Tensor | None = None
        # Per prompt, its tokens past the text encoder's context, which the encoding cuts; the
        # same for the negative prompt (read only under guidance, as the pipeline reads it).
        self.tokens_dropped: dict[str, int] = {}
        self.negative_tokens_dropped = 0
        self._in_flight: _InFlight | None = None  # the last decoded batch, not yet handed off

    def execute(self) -> bool:
        """Runs every batch; returns True when the call was cancelled.

        Batches overlap at their seam: a decoded batch's pixels and heatmaps are copied to the
        host behind the GPU's queue, and handed to the finishing pool only once the next batch's
        first step is queued, so the GPU does not idle while the host waits for those copies and
        prepares the next batch."""
        full = batch_rows(self.request, self.parts.batch_size)
        try:
            for batch in plan_batches(self.request, self.parts.batch_size):
                filled = batch + batch[-1:] * (full - len(batch)) if self.parts.pad_batches else batch
                prompts = [self.request.prompt_for(i) for i in filled]
                label_positions = [self._label_positions(p) for p in prompts[: len(batch)]] if self.traced else []
                # A batch where no prompt has a label runs untraced: nothing to record, and a compiled
                # engine has graphs for exactly two cases (recording everything or nothing).
                traced = any(label_positions)
                if traced:
                    rows = slice(len(filled), 2 * len(filled)) if self.cfg else slice(0, len(filled))
                    self.recorder.reset(self.latent_hw, rows, self.device)
                self.metrics.batch(len(batch), full)
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
        began = time.perf_counter()
        for step, t in enumerate(timesteps, start=1):
            model_input = torch.cat([latents] * 2) if self.cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            timestep = unet_timesteps[step - 1]
            if reuse == 1:
                noise = unet(model_input, timestep, encoder_hidden_states=embeds, return_dict=False)[0]
            elif (step - 1) % reuse:
                noise = self.parts.reuse_shallow(model_input, timestep, embeds, deep)
            else:
                noise, deep = self.parts.reuse_full(model_input, timestep, embeds)
                if self.parts.graph_outputs:
                    deep = deep.clone()
            if self.cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + self.request.guidance_scale * (cond - uncond)
            elif self.parts.graph_outputs:
                noise = noise.clone()
            latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
            if step == 1:
                self._hand_off()  # the GPU has this batch's first step queued meanwhile
            self.delivery.deliver_ready()
            if step > warm_up_passes:
                self.emit(StepProgress(
                    step=step - warm_up_passes,
                    total_steps=self.request.num_inference_steps,
                    images_done=self.delivery.delivered,
                    images_total=self.request.images_wanted,
                    batch_size=images,
                ))
                if self.cancelled():
                    self.metrics.stepped(step - warm_up_passes, time.perf_counter() - began)
                    return None
        self.metrics.stepped(self.request.num_inference_steps, time.perf_counter() - began)
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

    def __init__(self, run: DenoiseRun, batch: list[int], prompts: list[str], pixels: torch.Tensor, heatmaps):
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
            run.delivery.submit(run.parts.finishers.submit(finish_image, decoded))


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
