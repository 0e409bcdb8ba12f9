"""ImageEngine without gRPC, on the tiny pipeline: input checks, batching, reproducibility,
agreement with the plain diffusers pipeline, schedulers and cancellation."""

from __future__ import annotations

import io
import json
import subprocess
import time
import sys

import numpy as np
import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
from PIL import Image

from image_service.denoise import plan_batches
from image_service.model import load_image_model
from image_service.types import GeneratedImage, ImageRequest, InvalidImageRequest
from tests.image_service.conftest import generate_images


def request(**fields) -> ImageRequest:
    values = dict(prompts=("a dog in a park",), width=64, height=64, num_inference_steps=2, seed=3)
    values.update(fields)
    return ImageRequest(**values)


def run(engine, req, on_step=None):
    return generate_images(engine, req, on_step=on_step)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        (dict(width=100), "width", "multiple of 8"),
        (dict(height=2048), "height", "outside 64..1024"),
        (dict(width=56), "width", "outside 64..1024"),
        (dict(prompts=()), "prompts", "at least one"),
        (dict(prompts=("a cat", "  ")), "prompts", "prompt 1 is empty"),
        (dict(num_images=0), "num_images", "1..100000, got 0"),
        (dict(num_images=2**32 - 1), "num_images", "1..100000, got 4294967295"),
        (dict(num_inference_steps=0), "num_inference_steps", "1..500"),
        (dict(num_inference_steps=501), "num_inference_steps", "1..500"),
        (dict(guidance_scale=float("nan")), "guidance_scale", "0..50"),
        (dict(scheduler="lms"), "scheduler", "unknown scheduler 'lms'"),
        (dict(annotations=("keypoints",)), "annotations", "unknown annotation 'keypoints'"),
        (dict(labels=("",)), "labels", "must not be empty"),
        (dict(seed=2**64 - 1, num_images=2), "seed", "2**64"),
        (dict(num_images=3, first_index=3), "first_index", "0..num_images-1 (2), got 3"),
    ],
)
def test_bad_input_names_the_field(tiny_engine, fields, field, reason):
    with pytest.raises(InvalidImageRequest) as caught:
        tiny_engine.generate(request(**fields))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and reason in str(caught.value)


def test_tiny_model_is_a_real_pipeline_folder(tiny_engine, tiny_model_dir):
    folder = tiny_model_dir
    index = json.loads((folder / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None]
    info = tiny_engine.info
    assert info.demo_model and info.loaded and "demo model, random weights" in info.display_name
    assert info.source == str(folder) and info.dtype == "float32"
    assert tiny_engine.default_resolution == 512  # 64x64 latents, VAE factor 8


def test_images_stream_in_order_with_seeds_and_progress(tiny_engine):
    steps = []
    images, summary = run(
        tiny_engine,
        request(prompts=("a dog", "a cat"), num_images=3, width=96, height=64, seed=10, annotations=("caption",)),
        on_step=steps.append,
    )
    assert [(i.index, i.seed, i.prompt) for i in images] == [(0, 10, "a dog"), (1, 11, "a cat"), (2, 12, "a dog")]
    assert all(pixels(i.png).shape == (64, 96, 3) for i in images)
    assert not summary.partial and summary.images_generated == 3 and summary.seed == 10
    # Two batches (batch size 2) of the 2 steps asked for (PNDM's 3 UNet passes: progress counts
    # steps, as the pipeline's progress bar does); steps count 1..total within each batch.
    total = steps[0].total_steps
    assert total == 2 and [s.step for s in steps] == [1, 2] * 2
    assert [s.batch_size for s in steps] == [2] * total + [1] * total
    assert steps[-1].images_total == 3 and steps[-1].images_done <= 2


def test_same_seed_same_png_bytes(tiny_engine):
    first, _ = run(tiny_engine, request(num_images=2, seed=42, scheduler="euler_a"))
    again, _ = run(tiny_engine, request(num_images=2, seed=42, scheduler="euler_a"))
    other, _ = run(tiny_engine, request(num_images=2, seed=43, scheduler="euler_a"))
    assert [i.png for i in first] == [i.png for i in again]
    assert first[0].png != other[0].png
    # Image i uses seed + i on its own generator: image 1 of seed 42 is image 0 of seed 43.
    np.testing.assert_allclose(pixels(first[1].png), pixels(other[0].png), atol=2)


def test_first_index_generates_the_rest_exactly(tiny_engine):
    # What resuming a job asks for: images 3..4 of five, as the whole run makes them, across
    # batches that start at another index (batch size 2: 0-1, 2-3, 4 against 3-4).
    fields = dict(prompts=("a dog in a park", "a red car"), num_images=5, seed=11, scheduler="euler_a")
    whole, _ = run(tiny_engine, request(**fields))
    steps = []
    rest, summary = run(tiny_engine, request(**fields, first_index=3), on_step=steps.append)
    assert [image.index for image in rest] == [3, 4]
    assert [(image.seed, image.prompt) for image in rest] == [(i.seed, i.prompt) for i in whole[3:]]
    for resumed, original in zip(rest, whole[3:]):  # batch-mates differ, so allow rounding
        np.testing.assert_allclose(pixels(resumed.png), pixels(original.png), atol=2)
    assert (summary.images_generated, summary.images_requested, summary.partial) == (2, 2, False)
    assert {step.images_total for step in steps} == {2}


def test_prompts_past_clips_context_are_cut_and_say_so(tiny_engine):
    # "a dog " is two tokens: 40 and 50 of them, with the start and end tokens, are 82 and 102
    # tokens, both cut to the same first 77, so the words past the cut change nothing.
    short, cut, longer = "a dog in a park", "a dog " * 40, "a dog " * 50
    images, summary = run(tiny_engine, request(prompts=(short, cut, longer), num_images=3))
    assert [image.prompt_tokens_dropped for image in images] == [0, 5, 25]
    assert summary.negative_prompt_tokens_dropped == 0
    _, summary = run(tiny_engine, request(negative_prompt=longer))
    assert summary.negative_prompt_tokens_dropped == 25
    _, summary = run(tiny_engine, request(negative_prompt=longer, guidance_scale=1.0))  # not read
    assert summary.negative_prompt_tokens_dropped == 0
    assert [image.prompt for image in images] == [short, cut, longer]  # as asked, whole
    alone, _ = run(tiny_engine, request(prompts=(cut,), seed=5))  # image 2's seed
    np.testing.assert_allclose(pixels(alone[0].png), pixels(images[2].png), atol=2)


def test_unset_seed_is_drawn_and_reported(tiny_engine):
    images, summary = run(tiny_engine, request(seed=None))
    assert summary.seed < 2**53  # exact as a JSON number, as the gateway's and the text service's
    again, _ = run(tiny_engine, request(seed=summary.seed))
    assert images[0].seed == summary.seed and images[0].png == again[0].png


@pytest.mark.parametrize("scheduler", ["default", "dpm++", "euler_a"])
def test_schedulers_run_from_one_step(tiny_engine, scheduler):
    steps = []
    images, summary = run(tiny_engine, request(scheduler=scheduler, num_inference_steps=1), on_step=steps.append)
    assert len(images) == 1 and summary.scheduler == scheduler
    assert [(s.step, s.total_steps) for s in steps] == [(1, 1)]


def test_schedulers_differ(tiny_engine):
    pngs = {s: run(tiny_engine, request(scheduler=s, num_inference_steps=3))[0][0].png for s in ("default", "dpm++", "euler_a")}
    assert len(set(pngs.values())) == 3


@pytest.mark.parametrize("scheduler", ["default", "euler_a"])  # euler_a: SDG's copy of its step draws the noise
def test_matches_the_plain_diffusers_pipeline(tiny_engine, tiny_model_dir, scheduler):
    """The engine's loop is the pipeline's arithmetic: same seeds, same pixels (the bench's ratio
    compares equal work)."""
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if scheduler == "euler_a":
        pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    prompts = ["a dog in a park", "a red car"]
    generators = [torch.Generator("cpu").manual_seed(7 + i) for i in range(2)]
    expected = pipe(
        prompts, height=64, width=96, num_inference_steps=3, guidance_scale=7.5, negative_prompt=["blurry"] * 2, generator=generators
    ).images
    images, _ = run(
        tiny_engine,
        request(prompts=tuple(prompts), num_images=2, width=96, height=64, num_inference_steps=3, seed=7, negative_prompt="blurry", scheduler=scheduler),
    )
    for image, reference in zip(images, expected):
        np.testing.assert_array_equal(pixels(image.png), np.asarray(reference))


def test_no_guidance_below_scale_one(tiny_engine):
    with_cfg, _ = run(tiny_engine, request(guidance_scale=7.5))
    without, _ = run(tiny_engine, request(guidance_scale=1.0))
    assert with_cfg[0].png != without[0].png


def test_cancel_stops_within_one_step(tiny_engine):
    steps = []
    images, summary = run(tiny_engine, request(num_images=4, num_inference_steps=5), on_step=lambda s: steps.append(s) or len(steps) == 2)
    assert len(steps) == 2  # no step ran after the callback said stop
    assert images == [] and summary.partial and summary.reason == "cancelled"
    assert summary.images_generated == 0 and summary.annotations_produced == ()


def test_cancel_keeps_finished_batches(tiny_engine):
    steps = []

    def stop_in_second_batch(step):
        steps.append(step)
        return len(steps) > step.total_steps  # the first step of batch two

    images, summary = run(tiny_engine, request(num_images=4, annotations=("caption",)), on_step=stop_in_second_batch)
    assert [i.index for i in images] == [0, 1]
    assert summary.partial and summary.images_generated == 2 and summary.annotations_produced == ("caption",)


def test_large_images_get_smaller_batches():
    assert [len(b) for b in plan_batches(request(num_images=5, width=1024, height=1024), 8)] == [2, 2, 1]
    assert [len(b) for b in plan_batches(request(num_images=9, width=256, height=256), 8)] == [8, 1]
    assert [len(b) for b in plan_batches(request(num_images=3, width=1024, height=1024), 2)] == [1, 1, 1]


def test_tiny_folder_by_path_is_still_a_demo_model(make_tiny_settings, tiny_model_dir):
    info = load_image_model(make_tiny_settings(model=str(tiny_model_dir))).info
    assert info.demo_model and info.display_name.endswith("(demo model, random weights)")


def test_tiny_cli_is_idempotent(tiny_model_dir):
    before = (tiny_model_dir / "model_index.json").stat().st_mtime_ns
    done = subprocess.run(
        [sys.executable, "-m", "image_service.tiny", "--cache-dir", str(tiny_model_dir.parents[1])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(tiny_model_dir)
    assert (tiny_model_dir / "model_index.json").stat().st_mtime_ns == before


def test_a_failure_part_way_is_raised_and_leaves_the_engine_usable(tiny_engine):
    """The error itself reaches the caller, after what was delivered; the servicer's summary of
    such a failure is tested in test_image_grpc.py."""
    delivered = []

    def sink(event):
        if isinstance(event, GeneratedImage):
            if delivered:
                raise OSError("disk full")
            delivered.append(event)

    with pytest.raises(OSError, match="disk full"):
        tiny_engine.generate(request(num_images=3), sink)
    assert len(delivered) == 1
    assert tiny_engine.generate(request()).images_generated == 1


def test_every_call_denoises_on_the_one_model_thread(tiny_engine):
    """torch keeps cuDNN's tuned plans (and a CPU's OpenMP team) per thread, so the engine runs
    all model work on one thread of its own, whichever thread calls it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    def steps_ran_on() -> set[str]:
        names = set()
        run(tiny_engine, request(num_images=1), on_step=lambda _: names.add(threading.current_thread().name))
        return names

    here = steps_ran_on()
    with ThreadPoolExecutor(1) as other:
        there = other.submit(steps_ran_on).result()
    assert here == there and len(here) == 1 and threading.current_thread().name not in here


def test_a_call_behind_a_busy_model_says_it_waits_and_can_be_withdrawn(tiny_engine, monkeypatch):
    import threading

    from sdg import streaming

    monkeypatch.setattr(streaming, "WAITING_EVERY_S", 0.05)
    holding, release = threading.Event(), threading.Event()

    def hold(progress) -> bool:  # the earlier call keeps the model until released
        holding.set()
        release.wait(30)
        return False

    earlier = threading.Thread(target=lambda: run(tiny_engine, request(seed=1), on_step=hold))
    earlier.start()
    try:
        assert holding.wait(30)
        waits: list[float] = []
        withdrawn = run_with_waits(tiny_engine, request(seed=2), lambda waited: waits.append(waited) or len(waits) == 3)
        assert withdrawn == ([], True, "cancelled") and len(waits) == 3 and waits[0] < 0.05
        waits.clear()
        queued = {}
        later = threading.Thread(target=lambda: queued.update(result=run_with_waits(tiny_engine, request(seed=3), waits.append)))
        later.start()
        time.sleep(0.3)
        assert len(waits) >= 3 and "result" not in queued
    finally:
        release.set()
    earlier.join(30), later.join(30)
    images, partial, _ = queued["result"]
    assert len(images) == 1 and not partial
    waits.clear()  # the model is free: no waiting
    assert run_with_waits(tiny_engine, request(seed=3), waits.append)[0][0].png == images[0].png and not waits


def run_with_waits(engine, req, on_wait):
    images, summary = generate_images(engine, req, on_wait=on_wait)
    return images, summary.partial, summary.reason
