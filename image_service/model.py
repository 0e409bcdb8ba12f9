"""Loading the diffusion pipeline: resolving SDG_IMAGE_MODEL to a source, from_pretrained (the
same call for the tiny demo model and real ones), and the device tuning applied after loading."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from image_service.settings import TINY_MODEL, ImageSettings
from image_service.tiny import DEMO_MARKER, build_tiny
from sdg.devices import allow_recompiles, resolve_device
from sdg.model_info import ModelInfo

log = logging.getLogger(__name__)


@dataclass
class LoadedImageModel:
    pipeline: StableDiffusionPipeline
    info: ModelInfo
    device: torch.device
    dtype: torch.dtype


def dtype_for(device: torch.device) -> torch.dtype:
    # fp16 halves memory and doubles tensor-core throughput; CPUs have no fast fp16 kernels.
    return torch.float16 if device.type == "cuda" else torch.float32


def unloaded_info(settings: ImageSettings) -> ModelInfo:
    local = Path(settings.model).expanduser()
    demo = settings.model == TINY_MODEL or (local / DEMO_MARKER).exists()
    return ModelInfo.unloaded(settings.model, demo, _display_name(settings.model, demo))


def _display_name(model_id: str, demo: bool) -> str:
    if model_id == TINY_MODEL:
        return "tiny-sd (demo model, random weights)"
    return f"{model_id} (demo model, random weights)" if demo else model_id


def _resolve_source(settings: ImageSettings) -> tuple[str, bool]:
    """The from_pretrained argument for SDG_IMAGE_MODEL, and whether it is the demo model."""
    if settings.model == TINY_MODEL:
        return str(build_tiny(settings.model_cache_dir)), True
    local = Path(settings.model).expanduser()
    if local.is_dir():
        return str(local.resolve()), (local / DEMO_MARKER).exists()
    # A hub id: fetch (or find) the snapshot under the model cache first, so that loading is the
    # same local-folder call as for every other model and ModelInfo.source names the folder.
    # safety_checker=None skips downloading the checker's weights.
    folder = StableDiffusionPipeline.download(
        settings.model, cache_dir=str(settings.model_cache_dir), safety_checker=None
    )
    return str(folder), False


def load_image_model(settings: ImageSettings) -> LoadedImageModel:
    device = resolve_device(settings.device)
    dtype = dtype_for(device)
    source, demo = _resolve_source(settings)
    log.info("loading image model %s from %s on %s (%s)", settings.model, source, device, dtype)
    pipeline = StableDiffusionPipeline.from_pretrained(
        source,
        dtype=dtype,
        # No safety checker, for any model: SDG generates datasets, and the checker's blacked-out
        # images would be silent corruption of them.
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    tune_for_device(pipeline, device, compile_mode=settings.compile_mode if settings.compile else None)
    info = ModelInfo(
        model_id=settings.model,
        source=source,
        demo_model=demo,
        loaded=True,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        display_name=_display_name(settings.model, demo),
    )
    log.info("safety checker: none (SDG never loads one)")
    return LoadedImageModel(pipeline=pipeline, info=info, device=device, dtype=dtype)


def tune_for_device(
    pipeline: StableDiffusionPipeline, device: torch.device, compile_mode: str | None
) -> None:
    """CUDA: cuDNN autotuning and `use_fast_layout`; optionally torch.compile of the UNet and VAE
    decoder (in place, so attention processors can still be swapped on the same modules). The
    first call after this pays for autotuning and compilation: ImageEngine.warm_up does that at
    start-up.

    channels_last only with torch.compile: measured on an H200 (SD-1.5, fp16, batch 8), eager
    channels_last with fused QKV took 0.254 s per image against 0.221 s without either, since
    eager GroupNorm and upsampling convert the layout back and forth around every convolution.
    Inductor generates those kernels for the layout it is given."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        use_fast_layout(pipeline, channels_last=compile_mode is not None)
    if compile_mode:
        import torch._inductor.config as inductor

        # The settings diffusers' own speed guide uses for UNets: 1x1 convolutions as matmuls
        # and, when autotuning anyway, coordinate-descent tuning of the generated kernels (it
        # multiplies compile time, so the lighter modes go without it).
        inductor.conv_1x1_as_mm = True
        if compile_mode.startswith("max-autotune"):
            inductor.coordinate_descent_tuning = True
            inductor.epilogue_fusion = False
            inductor.coordinate_descent_check_all_directions = True
        # Measured on an H200 while tracing still broke the graph at every cross-attention layer:
        # dynamo resumed inside diffusers' blocks, each block's forward one code object for
        # every width, and the default limit of 8 recompilations left most blocks eager. The UNet
        # is one graph now (a test checks it); the higher limit stays as a guard against a break
        # a future diffusers brings.
        allow_recompiles(64)
        # One static graph per shape. With dynamo's default, the second shape a module meets (a
        # new resolution, a batch without guidance) is compiled with symbolic sizes, and that
        # graph is found first for every later call, the warmed-up shape included. ImageEngine
        # pads partial batches to full ones, so a job's last batch is not a new shape.
        pipeline.unet.compile(mode=compile_mode, dynamic=False)
        pipeline.vae.decoder.compile(mode=compile_mode, dynamic=False)


def use_fast_layout(pipeline: StableDiffusionPipeline, channels_last: bool = True) -> None:
    """Fused QKV projections (one GEMM instead of three; attention itself stays SDPA) and, when
    asked, channels_last convolutions (what cuDNN's fastest fp16 kernels expect). The same
    arithmetic on any device, so tests check it on the CPU."""
    if channels_last:
        pipeline.unet.to(memory_format=torch.channels_last)
        pipeline.vae.to(memory_format=torch.channels_last)
    pipeline.fuse_qkv_projections(unet=True, vae=True)
