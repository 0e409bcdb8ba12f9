"""Feature reuse (image_service/reuse.py): its full pass is the UNet's own arithmetic, its shallow
pass fits the full one, both trace as one graph, and the engine's reused images are
reproducible, per image, and not the exact ones."""

from __future__ import annotations

import io
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from image_service.attention import CrossAttentionRecorder, tracing_cross_attention
from image_service.reuse import FeatureReuse, unsupported_reason
from image_service.types import ImageRequest, InvalidImageRequest
from tests.image_service.conftest import generate_images

# SD-1.5's block layout (cross-attention in the first down and last up blocks, two layers per
# block) at toy widths: the tiny model's first and last blocks have no attention.
SD_LAYOUT = dict(
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64, 64, 64),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=4,
    norm_num_groups=8,
)


@pytest.fixture(scope="module", params=["tiny", "sd-layout"])
def unet(request, tiny_engine) -> UNet2DConditionModel:
    if request.param == "tiny":
        return tiny_engine.parts.pipe.unet
    torch.manual_seed(0)
    return UNet2DConditionModel(**SD_LAYOUT).eval()


def inputs(unet, latent_hw, batch=2):
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(batch, unet.config.in_channels, *latent_hw, generator=generator)
    context = torch.randn(batch, 77, unet.config.cross_attention_dim, generator=generator)
    return sample, torch.tensor(421.0), context


@pytest.mark.parametrize("latent_hw", [(8, 8), (13, 10)])  # 13x10 halves unevenly: explicit upsampling sizes
def test_the_full_pass_is_the_unets_own_arithmetic(unet, latent_hw):
    sample, timestep, context = inputs(unet, latent_hw)
    with torch.inference_mode():
        expected = unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]
        noise, deep = FeatureReuse(unet).full(sample, timestep, context)
    assert torch.equal(noise, expected)
    assert deep.shape[-2:] == latent_hw


def test_the_shallow_pass_on_its_own_steps_features_is_the_full_pass(unet):
    """What the shallow pass recomputes and what it takes from the full one fit together: on the
    features of the same step it gives the full prediction; on another step's, another one."""
    reuse = FeatureReuse(unet)
    sample, timestep, context = inputs(unet, (8, 8))
    with torch.inference_mode():
        noise, deep = reuse.full(sample, timestep, context)
        assert torch.equal(reuse.shallow(sample, timestep, context, deep), noise)
        _, older = reuse.full(sample, torch.tensor(900.0), context)
        assert not torch.equal(reuse.shallow(sample, timestep, context, older), noise)


def test_unets_it_cannot_reproduce_are_named():
    torch.manual_seed(0)
    layout = dict(SD_LAYOUT, block_out_channels=(32, 32, 32, 32))
    assert unsupported_reason(UNet2DConditionModel(**layout)) is None
    assert unsupported_reason(UNet2DConditionModel(**layout, class_embed_type="timestep")) == "its UNet uses class_embed_type"
    with pytest.raises(ValueError, match="feature reuse does not support this model: its UNet uses time_cond_proj_dim"):
        FeatureReuse(UNet2DConditionModel(**layout, time_cond_proj_dim=16))


@pytest.mark.parametrize("traced", [False, True])
def test_each_pass_is_one_graph_for_torch_compile(tiny_engine, traced):
    unet = tiny_engine.parts.pipe.unet
    reuse = FeatureReuse(unet)
    sample, timestep, context = inputs(unet, (16, 16), batch=4)
    recorder = CrossAttentionRecorder()
    recorder.reset((16, 16), slice(2, 4))
    with torch.inference_mode(), tracing_cross_attention(unet, recorder) if traced else nullcontext():
        full = torch._dynamo.explain(reuse.full)(sample, timestep, context)
        _, deep = reuse.full(sample, timestep, context)
        shallow = torch._dynamo.explain(reuse.shallow)(sample, timestep, context, deep)
    for explained in (full, shallow):
        assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    assert (recorder.token_maps() is not None) == traced  # the full pass records the deep layers


def run(engine, **fields):
    values = dict(prompts=("a dog in a park", "a red car"), num_images=3, width=64, height=64, num_inference_steps=7, seed=5)
    return generate_images(engine, ImageRequest(**{**values, **fields}))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def test_reused_images_are_reproducible_per_image_and_not_the_exact_ones(tiny_engine):
    exact, _ = run(tiny_engine)
    reused, summary = run(tiny_engine, feature_reuse=3)
    again, _ = run(tiny_engine, feature_reuse=3)
    assert not summary.partial and [i.png for i in reused] == [i.png for i in again]
    assert [i.png for i in run(tiny_engine, feature_reuse=1)[0]] == [i.png for i in exact]
    assert all(np.abs(pixels(r.png) - pixels(e.png)).max() > 2 for r, e in zip(reused, exact))
    # Image i still depends on the seed and i alone: resuming at image 2 makes the same image.
    [rest], _ = run(tiny_engine, feature_reuse=3, first_index=2)
    np.testing.assert_allclose(pixels(rest.png), pixels(reused[2].png), atol=2)


def test_reuse_keeps_annotations(tiny_engine):
    images, summary = run(tiny_engine, feature_reuse=2, width=128, height=128, annotations=("bbox", "segmentation"))
    assert summary.annotations_produced == ("bbox", "segmentation") and len(images) == 3
    assert any(image.objects for image in images)


@pytest.mark.parametrize("value", [0, 11])
def test_feature_reuse_out_of_range_names_the_field(tiny_engine, value):
    with pytest.raises(InvalidImageRequest, match=r"feature_reuse: must be within 1\.\.10 \(1: no reuse\)") as caught:
        run(tiny_engine, feature_reuse=value)
    assert caught.value.field == "feature_reuse"
