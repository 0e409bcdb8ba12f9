"""The CUDA-side model set-up: the fast layout (channels_last, fused QKV) checked on the CPU, where
it is the same arithmetic, and the whole fp16 path on a GPU when there is one."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from image_service.engine import ImageEngine
from image_service.model import load_image_model, use_fast_layout
from image_service.types import ImageRequest
from sdg.limits import SCHEDULERS
from tests.image_service.conftest import generate_images

REQUEST = ImageRequest(
    prompts=("a dog next to a car",), num_images=2, width=64, height=64, num_inference_steps=2, seed=4, annotations=("bbox",)
)


def generate(engine, request=REQUEST):
    return generate_images(engine, request)[0]


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_resumed_images_are_the_whole_runs(make_tiny_settings):
    """What a resumed job relies on, in fp16 with cuDNN's tuned kernels: images 3..4 of five,
    made in other batches than the whole run made them in, are that run's images to rounding."""
    engine = ImageEngine.from_settings(make_tiny_settings(device="cuda"))
    try:
        whole = generate(engine, replace(REQUEST, num_images=5))
        rest = generate(engine, replace(REQUEST, num_images=5, first_index=3))
    finally:
        engine.close()
    assert [i.index for i in rest] == [3, 4]
    for resumed, original in zip(rest, whole[3:]):
        assert resumed.seed == original.seed and np.abs(pixels(resumed) - pixels(original)).max() <= 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_feature_reuse(make_tiny_settings):
    """Feature reuse in fp16: reproducible, and approximate (not the exact images)."""
    engine = ImageEngine.from_settings(make_tiny_settings(device="cuda"))
    try:
        reused = replace(REQUEST, num_inference_steps=7, feature_reuse=3)
        first, again, exact = generate(engine, reused), generate(engine, reused), generate(engine, replace(reused, feature_reuse=1))
    finally:
        engine.close()
    assert [i.png for i in first] == [i.png for i in again]
    assert all(np.abs(pixels(a) - pixels(b)).max() > 2 for a, b in zip(first, exact))


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


@pytest.mark.skipif(not shutil.which("g++"), reason="inductor needs a C++ compiler on a CPU")
def test_compiled_engine_compiles_only_at_warm_up(make_tiny_settings, tiny_engine):
    """torch.compile as the service sets it up, run on the CPU (inductor without CUDA graphs): the
    warm-up compiles every graph a job at a warmed-up size meets, so a partial last batch, each
    scheduler and tracing run compiled, other shapes run eager, nothing compiles mid-job, and
    every image is the eager engine's."""
    from torch._dynamo.utils import counters

    size = 64  # the tiny model's own is 512; a second size is warmed up as SDG_IMAGE_WARM_UP_RESOLUTIONS asks
    engine = ImageEngine.from_settings(
        make_tiny_settings(compile=True, compile_mode="default", warm_up_resolutions=f"{size}x{size},{size + 16}x{size}", warm_up_feature_reuse=True)
    )
    warmed = [
        ImageRequest(prompts=("a dog next to a car",), num_images=3, width=size, height=size, num_inference_steps=3, seed=2, scheduler=name)
        for name in SCHEDULERS
    ]
    warmed.append(replace(REQUEST, width=size, height=size, num_images=1))
    warmed.append(replace(REQUEST, width=size, height=size, labels=("zebra",)))  # no label found: untraced
    warmed.append(replace(REQUEST, width=size + 16, height=size))
    # Feature reuse's own two passes, traced and not, with two schedulers.
    warmed.append(replace(REQUEST, width=size, height=size, num_images=3, num_inference_steps=5, feature_reuse=2))
    warmed.append(replace(warmed[0], feature_reuse=3, num_inference_steps=7))
    others = [replace(REQUEST, width=size + 32, height=size), replace(REQUEST, width=size, height=size, guidance_scale=1.0)]
    try:
        graphs = counters["stats"]["unique_graphs"]
        # The warmed-up shapes must run compiled code: fail rather than fall back to eager.
        engine.stance_after_warm_up = "fail_on_recompile"
        compiled = [generate(engine, job) for job in warmed]
        engine.stance_after_warm_up = "eager_on_recompile"  # the service's: other shapes run eager
        compiled += [generate(engine, job) for job in others]
        assert counters["stats"]["unique_graphs"] == graphs
    finally:
        engine.close()
    jobs = warmed + others
    for job, images in zip(jobs, compiled):
        eager = generate(tiny_engine, job)
        assert [i.seed for i in images] == [i.seed for i in eager] == [job.seed + n for n in range(job.num_images)]
        for a, b in zip(images, eager):
            assert np.abs(pixels(a) - pixels(b)).max() <= 2  # fused kernels reassociate floats
            assert [o.label for o in a.objects] == [o.label for o in b.objects]
