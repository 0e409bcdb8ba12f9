"""Attention map → mask → bbox → RLE arithmetic on synthetic maps with known answers, token
positions with the tiny tokenizer, and the real attention path through the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from image_service.annotations import (
    fill_holes,
    histogram01,
    annotate_object,
    attention_score,
    heatmap_to_mask,
    mask_to_bbox,
    mask_to_rle,
    otsu_threshold,
    rle_to_mask,
    token_positions,
)
from image_service.attention import CrossAttentionRecorder
from image_service.finishing import DecodedImage, finish_image, upsampled_heatmaps
from image_service.tiny import build_tokenizer
from image_service.types import BoundingBox, ImageRequest
from image_service.words import object_words
from tests.image_service.conftest import generate_images


def gaussian(height, width, cy, cx, sigma):
    ys, xs = np.mgrid[0:height, 0:width]
    return np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def coco_decode(rle):
    """pycocotools' own reading of our uncompressed RLE (as COCO annToMask does)."""
    compressed = coco_mask.frPyObjects({"counts": list(rle.counts), "size": [rle.height, rle.width]}, rle.height, rle.width)
    return coco_mask.decode(compressed).astype(bool), compressed


# -- RLE and bbox -------------------------------------------------------------------------------


def test_rle_is_column_major_and_starts_with_zeros():
    mask = np.array([[0, 1, 1], [0, 1, 0]], dtype=bool)
    # Column-major pixels: 0,0 | 1,1 | 1,0  ->  runs: 2 zeros, 3 ones, 1 zero.
    assert mask_to_rle(mask).counts == (2, 3, 1)
    first_set = np.array([[1, 0], [1, 0]], dtype=bool)
    assert mask_to_rle(first_set).counts == (0, 2, 2)
    assert mask_to_rle(np.zeros((3, 4), bool)).counts == (12,)
    assert mask_to_rle(np.ones((3, 4), bool)).counts == (0, 12)


def test_rle_round_trips_through_pycocotools():
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.6
    mask[0, 0] = True
    rle = mask_to_rle(mask)
    decoded, compressed = coco_decode(rle)
    np.testing.assert_array_equal(decoded, mask)
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert coco_mask.area(compressed) == mask.sum()


def test_bbox_is_tight_and_matches_pycocotools():
    mask = np.zeros((40, 60), bool)
    mask[10:25, 7:31] = True
    mask[30, 45] = True
    bbox = mask_to_bbox(mask)
    assert bbox == BoundingBox(x=7, y=10, width=39, height=21)
    _, compressed = coco_decode(mask_to_rle(mask))
    assert list(coco_mask.toBbox(compressed)) == [7, 10, 39, 21]
    assert mask_to_bbox(np.zeros((4, 4), bool)) is None


# -- heatmap -> mask ------------------------------------------------------------------------------


def test_plateau_map_gives_exact_rectangle():
    heatmap = np.full((64, 96), 0.1)
    heatmap[16:48, 20:60] = 2.0
    mask = heatmap_to_mask(heatmap)
    assert mask_to_bbox(mask) == BoundingBox(x=20, y=16, width=40, height=32)
    assert mask.sum() == 32 * 40
    assert attention_score(heatmap, mask) == pytest.approx(1.0)


def test_gaussian_blob_mask_is_centred_disc():
    heatmap = gaussian(100, 100, cy=40, cx=60, sigma=8)
    obj = annotate_object("dog", heatmap, want_bbox=True, want_segmentation=True)
    bbox = obj.bbox
    assert bbox.x + bbox.width / 2 == pytest.approx(60.5, abs=1)
    assert bbox.y + bbox.height / 2 == pytest.approx(40.5, abs=1)
    assert bbox.width == pytest.approx(bbox.height, abs=1)
    # The threshold stays within [0.3, 0.8] of the peak: the radius is between the two levels.
    radius = bbox.width / 2
    assert 8 * np.sqrt(-2 * np.log(0.8)) - 1 <= radius <= 8 * np.sqrt(-2 * np.log(0.3)) + 1
    assert obj.area == pytest.approx(np.pi * radius**2, rel=0.1)
    assert obj.score > 0.5
    decoded, _ = coco_decode(obj.segmentation)
    assert decoded.sum() == obj.area


def test_speckle_is_dropped_and_comparable_blobs_kept():
    big = gaussian(80, 120, 40, 30, 10)
    speck = 0.9 * gaussian(80, 120, 40, 100, 2)
    mask = heatmap_to_mask(big + speck)
    assert not mask[:, 80:].any()  # the speck is < 25% of the blob: gone
    twin = big + gaussian(80, 120, 40, 90, 10)
    bbox = mask_to_bbox(heatmap_to_mask(twin))
    assert bbox.x < 30 < 90 < bbox.x + bbox.width  # both instances kept, one box spans them


@pytest.mark.parametrize("segmentation", [False, True])
def test_coco_area_is_the_area_of_the_segmentation(segmentation):
    """COCOeval sorts objects into small/medium/large and ignores them by `area`, so it must be the
    area of the object's COCO segmentation: the mask's pixels, or without a mask the box's, which
    is then the segmentation."""
    # A triangle: 1,830 pixels in a 60x60 box of 3,600, so the two areas cannot be confused.
    canvas = np.zeros((96, 128))
    canvas[20:80, 30:90] = np.tril(np.ones((60, 60)))
    obj = annotate_object("tent", canvas, want_bbox=False, want_segmentation=segmentation)
    assert obj.bbox is None and obj.coco_bbox == BoundingBox(x=30, y=20, width=60, height=60)
    assert obj.area == 1830  # the attention mask's pixels, whichever annotations were asked for
    if segmentation:
        rle = coco_mask.frPyObjects({"counts": list(obj.segmentation.counts), "size": [96, 128]}, 96, 128)
        assert obj.coco_polygon == () and obj.coco_area == 1830
    else:
        # A box's polygon rasterizes exactly when its corners are whole pixels.
        rle = coco_mask.merge(coco_mask.frPyObjects([list(obj.coco_polygon)], 96, 128))
        assert obj.coco_polygon == (30, 20, 90, 20, 90, 80, 30, 80) and obj.coco_area == 3600
    assert coco_mask.area(rle) == obj.coco_area


def test_flat_map_has_no_object():
    assert annotate_object("cat", np.full((16, 16), 3.0), True, True) is None


def test_holes_are_filled_as_scipy_fills_them():
    """fill_holes is binary_fill_holes in one labelling pass: the same masks, bit for bit, on
    rings, shapes touching the edge, diagonal gaps (4-connectivity) and noise at every density."""
    from scipy import ndimage

    rng = np.random.default_rng(7)
    ring = np.zeros((9, 9), dtype=bool)
    ring[2:7, 2:7], ring[3:6, 3:6] = True, False
    diagonal = np.eye(6, dtype=bool) | np.eye(6, k=1, dtype=bool) | np.eye(6, k=-1, dtype=bool)
    masks = [ring, diagonal, ~ring, np.ones((4, 5), dtype=bool), np.zeros((4, 5), dtype=bool)]
    masks += [rng.random((31, 23)) < density for density in (0.3, 0.5, 0.6, 0.7, 0.9)]
    for mask in masks:
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert fill_holes(ring).sum() == 25


def test_histogram_is_numpys():
    rng = np.random.default_rng(3)
    edges = np.arange(257) / 256  # every bin edge, 0 and 1 included
    for values in (rng.random(10_000), edges, np.nextafter(edges, -1).clip(0, 1), rng.random((7, 9)) ** 4):
        for bins in (256, 64, 100):  # 100: not a power of two, numpy's own
            np.testing.assert_array_equal(histogram01(values, bins), np.histogram(values, bins=bins, range=(0.0, 1.0))[0])


def test_otsu_splits_two_modes():
    values = np.concatenate([np.full(500, 0.2), np.full(500, 0.9)])
    assert 0.2 < otsu_threshold(values) <= 0.9


def test_token_maps_are_upsampled_to_image_pixels():
    # One 8x8 map for token 1 with a hot 2x2 square at rows 2-3, cols 4-5 -> in a 64x64 image
    # (8x scale) the box lands around rows 16-31, cols 32-47.
    maps = torch.zeros(3, 8, 8)
    maps[0, 2:4, 4:6] = 1.0
    labels, upsampled = upsampled_heatmaps(maps, {"dog": [1]}, 64, 64)
    # A label of two tokens sums their maps.
    maps[2] = 2.0
    _, both = upsampled_heatmaps(maps, {"cat": [1, 3]}, 64, 64)
    torch.testing.assert_close(both[0], upsampled[0] + 2.0)
    decoded = DecodedImage(
        index=0,
        prompt="a dog",
        seed=1,
        pixels=np.zeros((64, 64, 3), np.uint8),
        heatmaps=dict(zip(labels, upsampled.numpy())),
        want_bbox=True,
        want_segmentation=False,
        caption="",
    )
    (obj,) = finish_image(decoded).objects
    assert obj.label == "dog" and obj.segmentation is None
    assert abs((obj.bbox.x + obj.bbox.width / 2) - 40) <= 1
    assert abs((obj.bbox.y + obj.bbox.height / 2) - 24) <= 1
    assert 12 <= obj.bbox.width <= 20


# -- words and tokens --------------------------------------------------------------------------


def test_object_words_keep_nouns_only():
    assert object_words("A modern warehouse interior") == ["warehouse", "interior"]
    assert object_words("A red car parked next to a tree, photorealistic, 4k") == ["car", "tree"]
    assert object_words("a cat and a cat") == ["cat"]
    # Participles are verbs or descriptors, unless a known noun ("building", "string", "bed").
    assert object_words("a glowing lantern rising over a crowded market") == ["lantern", "market"]
    assert object_words("an abandoned building with a string of lights over a bed and a shed") == ["building", "string", "lights", "bed", "shed"]


def test_token_positions_with_the_tiny_tokenizer():
    tokenizer = build_tokenizer()
    prompt = "A red car parked next to two Trees"
    # Position 0 is the start token; words follow one token each.
    assert token_positions(tokenizer, prompt, "car") == [3]
    assert token_positions(tokenizer, prompt, "red car") == [2, 3]
    assert token_positions(tokenizer, prompt, "tree") == [8]  # plural, any case
    assert token_positions(tokenizer, prompt, "boat") == []
    assert token_positions(tokenizer, "carpet", "car") == []  # whole words only


# -- the real attention path ---------------------------------------------------------------------


def test_recorder_grid_and_layer_selection():
    recorder = CrossAttentionRecorder()
    recorder.reset((16, 24), slice(1, 2))
    assert recorder.grid_for(16 * 24) == (16, 24)
    assert recorder.grid_for(8 * 12) == (8, 12)
    assert recorder.max_queries == 8 * 12  # the full-resolution level is not recorded
    assert recorder.grids() == [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
    recorder.reset((9, 9), slice(1, 2))
    assert recorder.grid_for(25) == (5, 5)  # stride-2 convolutions round up


def test_recorder_buffers_are_kept_per_shape_and_zeroed_per_batch():
    """One buffer set per latent grid and batch, at a fixed address (what CUDA graphs need of
    inputs updated in place), zeroed by each reset; the maps handed out have memory of their own."""
    recorder = CrossAttentionRecorder()
    recorder.reset((16, 16), slice(0, 2))
    first = dict(recorder._buckets)
    for buffer in first.values():
        buffer.fill_(1.0)
    maps = recorder.token_maps()
    recorder.reset((16, 24), slice(0, 2))  # another grid: buffers of its own
    assert not set(map(id, recorder._buckets.values())) & set(map(id, first.values()))
    recorder.reset((16, 16), slice(0, 2))
    assert all(recorder._buckets[hw] is buffer for hw, buffer in first.items())
    assert all(not buffer.any() for buffer in first.values())
    assert maps.min() > 1  # the 8x8 map plus the coarser ones upsampled, untouched by the zeroing


def test_traced_unet_is_one_graph_for_torch_compile(tiny_engine):
    """Recording is plain tensor code: dynamo traces a traced UNet call as one graph, without a
    break per cross-attention layer (each break is a graph of its own to compile)."""
    import torch

    from image_service.attention import tracing_cross_attention

    unet = tiny_engine.parts.pipe.unet
    recorder = CrossAttentionRecorder()
    recorder.reset((16, 16), slice(2, 4))
    latents = torch.randn(4, unet.config.in_channels, 16, 16)
    context = torch.randn(4, 77, unet.config.cross_attention_dim)
    with torch.inference_mode(), tracing_cross_attention(unet, recorder):
        explained = torch._dynamo.explain(unet)(latents, torch.tensor(10), encoder_hidden_states=context)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    assert recorder.token_maps() is not None  # explain ran the graph: the maps were written


def test_tiny_pipeline_annotations(tiny_engine):
    request = ImageRequest(
        prompts=("a dog next to a red car", "a boat"),
        num_images=3,
        width=128,
        height=96,
        num_inference_steps=2,
        seed=5,
        annotations=("bbox", "segmentation", "caption"),
    )
    images, summary = generate_images(tiny_engine, request)
    assert summary.annotations_produced == ("bbox", "segmentation", "caption")
    assert [image.caption for image in images] == [request.prompt_for(i) for i in range(3)]
    assert {o.label for o in images[0].objects} == {"dog", "car"}
    assert {o.label for o in images[1].objects} == {"boat"}
    for image in images:
        for obj in image.objects:
            box = obj.bbox
            assert 0 <= box.x and box.x + box.width <= 128 and 0 <= box.y and box.y + box.height <= 96
            decoded, _ = coco_decode(obj.segmentation)
            assert decoded.shape == (96, 128) and decoded.sum() == obj.area > 0
            assert mask_to_bbox(decoded) == box
            assert 0 <= obj.score <= 1


def test_caller_labels_restrict_annotations(tiny_engine):
    images, _ = generate_images(
        tiny_engine,
        ImageRequest(
            prompts=("a dog next to a red car",),
            width=64,
            height=64,
            num_inference_steps=2,
            seed=5,
            annotations=("bbox",),
            labels=("car", "giraffe"),
        ),
    )
    (image,) = images
    assert [o.label for o in image.objects] == ["car"]  # "giraffe" is not in the prompt
    assert image.objects[0].segmentation is None and image.caption == ""


def test_tracing_does_not_change_the_image(tiny_engine):
    def png(annotations):
        request = ImageRequest(prompts=("a cat on a sofa",), width=64, height=64, num_inference_steps=2, seed=9, annotations=annotations)
        return generate_images(tiny_engine, request)[0][0].png

    assert png(("bbox", "segmentation")) == png(())
