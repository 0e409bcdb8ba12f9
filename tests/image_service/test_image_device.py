"""The CUDA-side model set-up: the fast layout (channels_last, fused QKV) checked on the CPU, where
it is the same arithmetic, and the whole fp16 path on a GPU when there is one."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from image_service.engine import ImageEngine
from image_service.model import load_image_model, use_fast_layout
from image_service.types import ImageRequest

REQUEST = ImageRequest(
    prompts=("a dog next to a car",), num_images=2, width=64, height=64, num_inference_steps=2, seed=4, annotations=("bbox",)
)


def generate(engine):
    images = []
    engine.generate(REQUEST, on_image=images.append)
    return images


def pixels(image):
    return np.asarray(Image.open(io.BytesIO(image.png)), dtype=np.int16)


def test_fast_layout_keeps_images_and_tracing(make_tiny_settings, tiny_engine):
    settings = make_tiny_settings()
    model = load_image_model(settings)  # a private copy: the layout change is in place
    use_fast_layout(model.pipeline)
    assert type(model.pipeline.unet.attn_processors["mid_block.attentions.0.transformer_blocks.0.attn2.processor"]).__name__ == "FusedAttnProcessor2_0"
    engine = ImageEngine(model, settings)
    try:
        fused, reference = generate(engine), generate(tiny_engine)
    finally:
        engine.close()
    for a, b in zip(fused, reference):
        assert np.abs(pixels(a) - pixels(b)).max() <= 2  # float reassociation only
        assert {o.label for o in a.objects} == {o.label for o in b.objects} == {"dog", "car"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_path(make_tiny_settings):
    engine = ImageEngine.from_settings(make_tiny_settings(device="cuda"))  # warms up, fast layout
    try:
        assert engine.info.dtype == "float16" and engine.info.device.startswith("cuda")
        assert engine.batch_size == 2
        first, again = generate(engine), generate(engine)
        assert [i.png for i in first] == [i.png for i in again]
        assert all(i.objects for i in first)
    finally:
        engine.close()


def test_compile_set_up_wraps_the_unet_and_decoder(make_tiny_settings):
    """The compile switch's set-up, without running the compiled code (inductor needs a C++
    compiler on a CPU, and the compiled path itself runs on the GPU machine)."""
    from torch import _dynamo

    from image_service.model import tune_for_device

    loaded = load_image_model(make_tiny_settings())
    tune_for_device(loaded.pipeline, torch.device("cpu"), compile_mode="default")
    assert loaded.pipeline.unet._compiled_call_impl is not None
    assert loaded.pipeline.vae.decoder._compiled_call_impl is not None
    limit = getattr(_dynamo.config, "recompile_limit", None) or _dynamo.config.cache_size_limit
    assert limit >= 64  # diffusers' blocks recompile per width; 8 left most of the UNet eager
