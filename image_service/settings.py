"""ImageSettings: the image service's configuration, read once from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sdg.limits import MAX_RESOLUTION, MIN_RESOLUTION, RESOLUTION_STEP, side_problem
from sdg.logs import LogFormat
from sdg.service_metrics import MetricsPort

DEFAULT_IMAGE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# The original repository was taken down; its weights live on under the new id.
MODEL_ALIASES = {"runwayml/stable-diffusion-v1-5": DEFAULT_IMAGE_MODEL}
TINY_MODEL = "tiny"

# Images per denoising batch at up to 512x512 when SDG_IMAGE_BATCH_SIZE is 0. Batch 8 at fp16
# (UNet activations plus a batched VAE decode) stays under ~12 GiB on a GPU; on CPU a larger batch
# gains nothing and holds more memory.
DEFAULT_CUDA_BATCH = 8
DEFAULT_CPU_BATCH = 4
# torch.compile's modes.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class ImageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SDG_IMAGE_", extra="ignore", populate_by_name=True)

    listen: str = "0.0.0.0:50052"
    # A Hugging Face id, a local pipeline directory, or "tiny" (the built-in demo model).
    model: str = DEFAULT_IMAGE_MODEL
    model_cache_dir: Path = Field(
        default=Path("model_cache"), validation_alias=AliasChoices("MODEL_CACHE_DIR")
    )
    device: str = Field(default="auto", validation_alias=AliasChoices("SDG_DEVICE"))
    # Images denoised together at 512x512 or below; larger images get proportionally fewer per
    # batch (same pixel budget). 0 picks by device: 8 on CUDA, 4 on CPU.
    batch_size: int = Field(default=0, ge=0, le=256)
    # Resolution bounds in pixels, for width and height alike.
    min_resolution: int = Field(default=MIN_RESOLUTION, ge=RESOLUTION_STEP)
    max_resolution: int = Field(default=MAX_RESOLUTION, ge=RESOLUTION_STEP)
    # torch.compile the UNet and VAE decoder at start-up (CUDA; a warm-up run compiles them before
    # health says SERVING). On an H100 (SD-1.5, batch 8, torch 2.11) the compiled engine made an
    # image in 0.154 s against the plain pipeline's 0.229 s (1.48x), after 106 s of warm-up for
    # its three graphs (UNet traced and not, VAE decoder; docs/PERFORMANCE.md). The warm-up
    # covers full batches at the warm-up sizes (below) with guidance, traced or not, with any
    # scheduler; another size or guidance_scale <= 1 runs eager rather than stall the service
    # compiling. Point TORCHINDUCTOR_CACHE_DIR at a lasting folder to skip most of the compiling
    # on restarts.
    compile: bool = False
    # The torch.compile mode used when `compile` is set (COMPILE_MODES). "reduce-overhead" adds
    # CUDA graphs: on the H100 it made images as fast as "default" (0.154 against 0.156 s) with
    # half the cost of annotation tracing (+5.8% against +11.5%) and a shorter warm-up (106
    # against 132 s). CUDA graphs keep a memory pool of their own (not yet measured); "default"
    # holds less. The autotuning modes ("max-autotune-no-cudagraphs", "max-autotune") time
    # kernels for every convolution and matmul shape: more than 290 s of warm-up on the H100,
    # where cuDNN still won the large convolutions; their gain is not measured.
    compile_mode: str = "reduce-overhead"
    # With `compile`, also compile the two UNet passes of feature reuse (requests with
    # feature_reuse above 1) at start-up, at each warm-up size, traced and not: about doubles the
    # warm-up. Without it, a compiled service runs such requests eager, slower than without reuse.
    warm_up_feature_reuse: bool = False
    # Image sizes the start-up warm-up runs, as "WxH" separated by commas (empty: the model's own
    # resolution). Each costs a few seconds of cuDNN autotuning, or with `compile` a compilation;
    # a compiled service runs sizes it did not warm up eager.
    warm_up_resolutions: str = ""
    # Threads that PNG-encode and annotate finished images, off the denoising thread. A 512x512
    # PNG takes about 40 ms; with 8 threads a batch of 8 finishes in one round after its decode.
    postprocess_threads: int = Field(default=8, ge=1, le=64)
    # Prometheus metrics served on this port (0 or empty: not served).
    metrics_port: MetricsPort = Field(default=9102, validation_alias=AliasChoices("SDG_METRICS_PORT"))
    log_format: LogFormat = Field(default="text", validation_alias=AliasChoices("SDG_LOG_FORMAT"))

    @field_validator("listen")
    @classmethod
    def _has_port(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("SDG_IMAGE_LISTEN must be host:port")
        return value

    @field_validator("compile_mode")
    @classmethod
    def _known_compile_mode(cls, value: str) -> str:
        # torch.compile would refuse a misspelt mode too, but only once the model has loaded.
        if value not in COMPILE_MODES:
            raise ValueError(f"SDG_IMAGE_COMPILE_MODE must be one of {', '.join(COMPILE_MODES)}, got {value!r}")
        return value

    @field_validator("model")
    @classmethod
    def _canonical_model(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("SDG_IMAGE_MODEL must not be empty")
        return MODEL_ALIASES.get(value, value)

    @model_validator(mode="after")
    def _resolution_bounds(self) -> ImageSettings:
        for name in ("min_resolution", "max_resolution"):
            if getattr(self, name) % RESOLUTION_STEP:
                raise ValueError(f"SDG_IMAGE_{name.upper()} must be a multiple of {RESOLUTION_STEP}")
        if self.min_resolution > self.max_resolution:
            raise ValueError("SDG_IMAGE_MIN_RESOLUTION must not exceed SDG_IMAGE_MAX_RESOLUTION")
        for width, height in self.warm_up_sizes():
            for side in (width, height):
                if side_problem(side, self.min_resolution, self.max_resolution):
                    raise ValueError(
                        f"SDG_IMAGE_WARM_UP_RESOLUTIONS: {width}x{height} must be multiples of {RESOLUTION_STEP} within "
                        f"{self.min_resolution}..{self.max_resolution}"
                    )
        return self

    def warm_up_sizes(self) -> list[tuple[int, int]]:
        """SDG_IMAGE_WARM_UP_RESOLUTIONS as (width, height) pairs; empty when unset."""
        return [_size(item) for item in self.warm_up_resolutions.split(",") if item.strip()]

    def batch_size_for(self, device_type: str) -> int:
        """Images per batch at 512x512 or below on a device of this type ("cuda", "cpu")."""
        if self.batch_size:
            return self.batch_size
        return DEFAULT_CUDA_BATCH if device_type == "cuda" else DEFAULT_CPU_BATCH


def _size(item: str) -> tuple[int, int]:
    """'768x512' as (768, 512)."""
    width, sep, height = item.strip().lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise ValueError(f"SDG_IMAGE_WARM_UP_RESOLUTIONS: {item.strip()!r} is not WIDTHxHEIGHT")
    return int(width), int(height)
