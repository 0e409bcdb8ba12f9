"""Image-engine fixtures: the tiny demo pipeline loaded in-process, once per session, through the
same ImageEngine.from_settings path the service uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from image_service.engine import ImageEngine
from image_service.settings import ImageSettings
from image_service.tiny import build_tiny
from tests.conftest import TEST_MODEL_CACHE  # the service fixtures' cache: the model is built once


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
