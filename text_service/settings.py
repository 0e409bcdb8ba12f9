"""TextSettings: the text service's configuration, read once from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sdg.limits import MAX_ROWS
from sdg.logs import LogFormat
from sdg.service_metrics import MetricsPort

DEFAULT_TEXT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"


class TextSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SDG_TEXT_", extra="ignore", populate_by_name=True)

    listen: str = "0.0.0.0:50051"
    # A Hugging Face id, a local directory, or "tiny" (the built-in demo model, random weights).
    model: str = DEFAULT_TEXT_MODEL
    model_cache_dir: Path = Field(
        default=Path("model_cache"), validation_alias=AliasChoices("MODEL_CACHE_DIR")
    )
    device: str = Field(default="auto", validation_alias=AliasChoices("SDG_DEVICE"))
    # Rows decoded together in one loop. 0 picks by device: 512 on CUDA, 128 on CPU.
    batch_size: int = Field(default=0, ge=0, le=8192)
    # Largest num_rows one call may ask for.
    max_rows: int = Field(default=MAX_ROWS, ge=1)
    # Decode loop: "static" (fixed shapes, CUDA graphs on CUDA), "dynamic" (eager, finished rows
    # leave the batch, multi-token jump-forward) or "auto" (static on CUDA, dynamic on CPU).
    decode: Literal["auto", "static", "dynamic"] = "auto"
    # Tokens fed per row per decode step (the sampled one plus jump-forward tokens); 0 picks by
    # device: 4 on CUDA, 1 on CPU.
    feed_width: int = Field(default=0, ge=0, le=64)
    # Worker threads for grammar masks; 0 lets xgrammar decide.
    mask_threads: int = Field(default=0, ge=0)
    # A wave's rows still unfinished after this many seconds are given up (and counted): a
    # schema whose rows cannot finish ends partial with the reason instead of hanging.
    row_time_limit_s: float = Field(default=120.0, gt=0)
    # Prometheus metrics served on this port (0 or empty: not served).
    metrics_port: MetricsPort = Field(default=9101, validation_alias=AliasChoices("SDG_METRICS_PORT"))
    log_format: LogFormat = Field(default="text", validation_alias=AliasChoices("SDG_LOG_FORMAT"))

    @field_validator("listen")
    @classmethod
    def _has_port(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("SDG_TEXT_LISTEN must be host:port")
        return value
