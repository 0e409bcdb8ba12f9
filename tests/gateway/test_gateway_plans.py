"""Validation at the door that needs settings or the normalized schema, without any service."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.jobs import Job
from gateway.models import ImagesRequest, UnifiedRequest
from gateway.plans import format_prompt, images_plan, template_fields, unified_plan
from gateway.settings import GatewaySettings

SETTINGS = GatewaySettings()


def unified(**fields) -> UnifiedRequest:
    return UnifiedRequest.model_validate({"schema": {"id": "int", "product": "string"}, "num_samples": 4, "prompts": ["A {product}"], **fields})


def test_unified_defaults_num_images_to_num_samples_and_shares_the_seed():
    plan = unified_plan(unified(seed=5), SETTINGS)
    assert plan.images.num_images == 4
    assert plan.text.seed == plan.images.seed == 5
    # An unset seed is drawn once, for both halves, below 2**53: a double holds it exactly, so
    # the UI can send back a seed it was shown.
    drawn = unified_plan(unified(), SETTINGS)
    assert drawn.text.seed == drawn.images.seed < 2**53
    # The top seed 4 images can have: image 3's seed is int64's top.
    assert unified_plan(unified(seed=2**63 - 4), SETTINGS).images.seed == 2**63 - 4


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"prompts": ["A {colour} thing"]}, "prompts[0]", "{colour} is not a schema field"),
        ({"prompts": ["ok", "A {} thing"]}, "prompts[1]", "positional"),
        ({"prompts": ["A {product.name}"]}, "prompts[0]", "top-level"),
        ({"prompts": ["A {product"]}, "prompts[0]", "expected '}'"),
        ({"num_images": 5}, "num_images", "greater than num_samples 4"),
        # The images' count defaults to the rows', which may be more than a job can make.
        ({"num_samples": 100_001}, "num_images", "defaults to num_samples (100001), past the 100000 images"),
        ({"schema": {"image_file": "string"}}, "schema.image_file", "reserved"),
        ({"resolution": [512, 100]}, "resolution", "height 100 is not a multiple of 8"),
        ({"resolution": [2048, 512]}, "resolution", "width 2048 is outside 64..1024"),
        ({"resolution": [56, 512]}, "resolution", "outside"),
        # A format spec that some value of the field cannot take would fail after the rows exist.
        ({"prompts": ["A {product:d}"]}, "prompts[0]", "{product:d} cannot format product's str values: Unknown format code 'd'"),
        ({"prompts": ["ok", "A {id:%}"], "schema": {"id": {"type": ["integer", "null"]}}}, "prompts[1]", "{id:%} cannot format id's empty values (null or missing)"),
        ({"prompts": ["A {e:s}"], "schema": {"e": {"enum": [1, 2]}}}, "prompts[0]", "{e:s} cannot format e's int values"),
        ({"seed": 2**63 - 3}, "seed", "at most 9223372036854775804 for 4 images"),
    ],
)
def test_unified_rejections_name_the_field(fields, field, reason):
    with pytest.raises(InvalidRequest) as caught:
        unified_plan(unified(**fields), SETTINGS)
    assert caught.value.field == field and reason in str(caught.value)


def test_resolution_bounds_come_from_settings():
    narrow = GatewaySettings(SDG_MAX_RESOLUTION=256)
    request = ImagesRequest(prompts=["x"], resolution=(512, 512))
    with pytest.raises(InvalidRequest, match="outside 64..256"):
        images_plan(request, narrow)


def test_templates():
    assert template_fields("A {product!r} for {price:.2f} {{literal}}") == [("product", "", "r"), ("price", ".2f", None)]
    # Specs every value of the field takes pass: a number's 2 decimals, an integer's sign.
    unified_plan(unified(schema={"product": "string", "price": "float", "id": "int"}, prompts=["{product:>10} {price:.2f} {id:+}"]), SETTINGS)
    assert format_prompt("A {product} for {price:.2f}", {"product": "lamp", "price": 3}) == "A lamp for 3.00"
    # An optional field a row left out reads as empty rather than failing the image.
    assert format_prompt("A {product} {colour}", {"product": "lamp", "colour": None}) == "A lamp "


def test_settings_read_comma_lists_and_ignore_generic_variables(monkeypatch):
    monkeypatch.setenv("SDG_TEXT_SERVICE_ADDRS", "a:1, b:2")
    monkeypatch.setenv("SDG_CORS_ORIGINS", "http://x")
    monkeypatch.setenv("HOST", "not-this")
    monkeypatch.setenv("PORT", "1")
    settings = GatewaySettings()
    assert settings.text_service_addrs == ["a:1", "b:2"]
    assert settings.cors_origins == ["http://x"]
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)


def stopped_images_job(tmp_path, **fields) -> Job:
    values = dict(
        job_id="job_00000000000a", type="images", status="cancelled", partial=True, created_at="2026-01-01T00:00:00Z",
        output_dir=str(tmp_path), output_path="images_x", request={"prompts": ["a dog"], "num_images": 4},
    )
    return Job(**{**values, **fields})


def test_a_resumed_job_gets_the_seed_its_manifest_recorded(tmp_path):
    from gateway.resume import resume_plan

    (tmp_path / "manifest.json").write_text('{"seed": 9007199254740993}')  # drawn by the gateway, beyond 2**53
    assert resume_plan(stopped_images_job(tmp_path), SETTINGS).images.seed == 9007199254740993
    # Without a manifest and without images, nothing was made with any seed yet: the request's.
    (tmp_path / "manifest.json").unlink()
    assert resume_plan(stopped_images_job(tmp_path, request={"prompts": ["a dog"], "seed": 4}), SETTINGS).images.seed == 4


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "running"}, "is running; only a job that has stopped"),
        ({"status": "completed", "partial": False}, "is complete; there is nothing to resume"),
        ({"output_dir": "/nonexistent/sdg-folder"}, "folder images_x no longer exists"),
    ],
)
def test_jobs_that_cannot_resume_say_why(tmp_path, fields, reason):
    from gateway.errors import JobConflict
    from gateway.resume import check_resumable

    with pytest.raises(JobConflict, match=reason):
        check_resumable(stopped_images_job(tmp_path, **fields))


def test_a_resume_refused_by_todays_settings_says_so(tmp_path):
    from gateway.errors import JobConflict
    from gateway.resume import resume_plan

    job = stopped_images_job(tmp_path, request={"prompts": ["a dog"], "resolution": [1024, 1024], "seed": 1})
    with pytest.raises(JobConflict, match="today's settings refuse its request: resolution: width 1024 is outside 64..512"):
        resume_plan(job, GatewaySettings(SDG_MAX_RESOLUTION=512))


def test_text_and_unified_jobs_resume_with_the_rows_their_manifest_counts(tmp_path):
    from gateway.resume import check_resumable, kept_rows

    unified = stopped_images_job(tmp_path, type="unified", request={"schema": {"a": "int"}, "num_samples": 5, "prompts": ["x {a}"]})
    text = stopped_images_job(tmp_path, type="text", request={"schema": {"a": "int"}, "num_samples": 5})
    assert kept_rows(text) == 0  # no manifest: nothing says any row was kept
    (tmp_path / "manifest.json").write_text('{"seed": 1, "counts": {"requested": 5, "generated": 3, "images_generated": 0}}')
    for job in (unified, text):
        check_resumable(job)
        assert kept_rows(job) == 3
    assert kept_rows(stopped_images_job(tmp_path)) == 0


def test_each_resume_samples_its_rows_with_a_seed_of_its_own():
    from gateway.resume import rows_seed

    seeds = {rows_seed(seed, resume, top_up) for seed in (0, 1, 2**64 - 1) for resume in (1, 2) for top_up in (0, 1)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    assert rows_seed(7, 1) == rows_seed(7, 1, 0)  # resumed again from the same folder: the same rows
