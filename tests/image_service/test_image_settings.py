"""ImageSettings: environment names, defaults, the model alias and guarded bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from image_service.settings import ImageSettings


@pytest.fixture
def env(monkeypatch):
    for name in ("SDG_IMAGE_LISTEN", "SDG_IMAGE_MODEL", "SDG_IMAGE_BATCH_SIZE", "SDG_IMAGE_COMPILE", "SDG_IMAGE_WARM_UP_RESOLUTIONS", "MODEL_CACHE_DIR", "SDG_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    settings = ImageSettings()
    assert settings.listen == "0.0.0.0:50052"
    assert settings.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert str(settings.model_cache_dir) == "model_cache" and settings.device == "auto"
    assert (settings.min_resolution, settings.max_resolution) == (64, 1024)
    assert settings.batch_size_for("cuda") == 8 and settings.batch_size_for("cpu") == 4
    assert not settings.compile and settings.compile_mode == "reduce-overhead"
    assert settings.warm_up_sizes() == []  # the model's own resolution


def test_fields_named_after_shared_variables_are_settable_by_name(env):
    # SDG_DEVICE and MODEL_CACHE_DIR are aliases; code (the tests, the bench) passes the names.
    settings = ImageSettings(device="cuda:1", model_cache_dir="/models")
    assert settings.device == "cuda:1" and str(settings.model_cache_dir) == "/models"


def test_reads_the_environment(env, tmp_path):
    env.setenv("SDG_IMAGE_LISTEN", "127.0.0.1:6000")
    env.setenv("SDG_IMAGE_MODEL", "runwayml/stable-diffusion-v1-5")
    env.setenv("SDG_IMAGE_BATCH_SIZE", "3")
    env.setenv("SDG_IMAGE_COMPILE", "1")
    env.setenv("MODEL_CACHE_DIR", str(tmp_path))
    env.setenv("SDG_DEVICE", "cpu")
    env.setenv("SDG_IMAGE_WARM_UP_RESOLUTIONS", "512x512, 768X512")
    settings = ImageSettings()
    assert settings.listen == "127.0.0.1:6000"
    assert settings.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"  # the old id, mapped
    assert settings.batch_size_for("cuda") == 3 and settings.compile
    assert settings.model_cache_dir == tmp_path and settings.device == "cpu"
    assert settings.warm_up_sizes() == [(512, 512), (768, 512)]


@pytest.mark.parametrize(
    "fields",
    [dict(listen="50052"), dict(model=" "), dict(min_resolution=60), dict(min_resolution=512, max_resolution=256), dict(batch_size=-1)],
)
def test_bad_settings_are_rejected(env, fields):
    with pytest.raises(ValidationError):
        ImageSettings(**fields)


def test_an_unknown_compile_mode_names_the_variable_and_the_modes(env):
    with pytest.raises(ValidationError, match="SDG_IMAGE_COMPILE_MODE must be one of default, reduce-overhead, .*got 'max_autotune'"):
        ImageSettings(compile_mode="max_autotune")


@pytest.mark.parametrize(
    ("value", "says"),
    [("512", "'512' is not WIDTHxHEIGHT"), ("512x", "is not WIDTHxHEIGHT"), ("516x512", "516x512 must be multiples of 8"), ("2048x512", "within 64..1024")],
)
def test_bad_warm_up_resolutions_name_the_variable(env, value, says):
    with pytest.raises(ValidationError, match="SDG_IMAGE_WARM_UP_RESOLUTIONS") as error:
        ImageSettings(warm_up_resolutions=value)
    assert says in str(error.value)
