"""ImageSettings: environment names, defaults, the model alias and guarded bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from image_service.settings import ImageSettings


@pytest.fixture
def env(monkeypatch):
    for name in ("SDG_IMAGE_LISTEN", "SDG_IMAGE_MODEL", "SDG_IMAGE_BATCH_SIZE", "SDG_IMAGE_COMPILE", "MODEL_CACHE_DIR", "SDG_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    settings = ImageSettings()
    assert settings.listen == "0.0.0.0:50052"
    assert settings.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert str(settings.model_cache_dir) == "model_cache" and settings.device == "auto"
    assert (settings.min_resolution, settings.max_resolution) == (64, 1024)
    assert settings.batch_size_for("cuda") == 8 and settings.batch_size_for("cpu") == 4
    assert not settings.compile


def test_reads_the_environment(env, tmp_path):
    env.setenv("SDG_IMAGE_LISTEN", "127.0.0.1:6000")
    env.setenv("SDG_IMAGE_MODEL", "runwayml/stable-diffusion-v1-5")
    env.setenv("SDG_IMAGE_BATCH_SIZE", "3")
    env.setenv("SDG_IMAGE_COMPILE", "1")
    env.setenv("MODEL_CACHE_DIR", str(tmp_path))
    env.setenv("SDG_DEVICE", "cpu")
    settings = ImageSettings()
    assert settings.listen == "127.0.0.1:6000"
    assert settings.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"  # the old id, mapped
    assert settings.batch_size_for("cuda") == 3 and settings.compile
    assert settings.model_cache_dir == tmp_path and settings.device == "cpu"


@pytest.mark.parametrize(
    "fields",
    [dict(listen="50052"), dict(model=" "), dict(min_resolution=60), dict(min_resolution=512, max_resolution=256), dict(batch_size=-1)],
)
def test_bad_settings_are_rejected(env, fields):
    with pytest.raises(ValidationError):
        ImageSettings(**fields)
