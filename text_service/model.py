"""Loads the text model and tokenizer with transformers, from a Hugging Face id (cached under
MODEL_CACHE_DIR), a local directory, or the word `tiny` (built on first use, then loaded through
the same from_pretrained path)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdg.devices import resolve_device
from sdg.model_info import ModelInfo
from text_service.settings import TextSettings
from text_service.tiny import build_tiny

log = logging.getLogger(__name__)


@dataclass
class LoadedTextModel:
    model: Any
    tokenizer: Any
    device: torch.device
    info: ModelInfo


def unloaded_info(settings: TextSettings) -> ModelInfo:
    demo = settings.model == "tiny"
    return ModelInfo.unloaded(settings.model, demo, _display_name(settings.model, demo))


def _display_name(model_id: str, demo: bool) -> str:
    return "tiny-qwen2 (demo model, random weights)" if demo else model_id


def load_text_model(settings: TextSettings) -> LoadedTextModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(settings.device)
    # bf16 is what Qwen2.5 was trained in; CPUs get fp32 for speed and exactness.
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    demo = settings.model == "tiny"
    if demo:
        source = str(build_tiny(settings.model_cache_dir))
        kwargs: dict[str, Any] = {}
    elif Path(settings.model).is_dir():
        source, kwargs = settings.model, {}
    else:
        source, kwargs = settings.model, {"cache_dir": str(settings.model_cache_dir)}
    log.info("loading text model %s from %s on %s (%s)", settings.model, source, device, dtype)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs).to(device).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    info = ModelInfo(
        model_id=settings.model,
        source=source,
        demo_model=demo,
        loaded=True,
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        display_name=_display_name(settings.model, demo),
    )
    return LoadedTextModel(model, tokenizer, device, info)
