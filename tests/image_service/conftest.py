"""Image-engine fixtures: the tiny demo pipeline loaded in-process, once per session, through the
same ImageEngine.from_settings path the service uses."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from image_service.engine import ImageEngine
from image_service.settings import ImageSettings
from image_service.tiny import build_tiny
from image_service.types import GeneratedImage, ImageRequest, ImageSummary, StepProgress
from sdg.streaming import Waiting
from tests.conftest import TEST_MODEL_CACHE  # the service fixtures' cache: the model is built once


def generate_images(engine: ImageEngine, request: ImageRequest, on_step=None, on_wait=None) -> tuple[list[GeneratedImage], ImageSummary]:
    """engine.generate's images and summary. `on_step` sees each StepProgress, `on_wait` each
    wait's seconds; either stops the call by returning True."""
    images, stop = [], threading.Event()

    def emit(event) -> None:
        if isinstance(event, GeneratedImage):
            images.append(event)
        elif isinstance(event, StepProgress) and on_step is not None and on_step(event):
            stop.set()
        elif isinstance(event, Waiting) and on_wait is not None and on_wait(event.waited_s):
            stop.set()

    return images, engine.generate(request, emit, stop.is_set)


def tiny_settings(**overrides) -> ImageSettings:
    values = dict(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cpu", batch_size=2)
    values.update(overrides)
    return ImageSettings(**values)


@pytest.fixture(scope="session")
def make_tiny_settings():
    """ImageSettings for the tiny model in the test cache; keyword arguments override."""
    return tiny_settings


@pytest.fixture(scope="session")
def tiny_engine():
    engine = ImageEngine.from_settings(tiny_settings())
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny pipeline's folder (built on first use)."""
    return build_tiny(TEST_MODEL_CACHE)
