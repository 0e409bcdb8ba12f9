"""gateway.manifest: the one reader and writer of manifest.json round-trip what real jobs write,
keep what they do not know, and say None for a file they cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.manifest import MANIFEST_FILE, Counts, Manifest, Tokens, read_manifest, write_manifest
from tests.conftest import wait_for_job

JOBS = {
    "text": {"schema": {"id": {"type": "integer", "x-sdg": {"sequence": {}}}, "email": {"type": "string", "format": "email", "x-sdg": {"unique": True}}},
             "num_samples": 4},
    "unified": {"schema": {"product": {"type": "string", "maxLength": 8}}, "num_samples": 2, "prompts": ["a {product}"],
                "resolution": [64, 64], "num_inference_steps": 2},
    "tables": {"tables": {"a": {"schema": {"id": {"type": "integer", "x-sdg": {"sequence": {}}}}, "num_samples": 2},
                          "b": {"schema": {"a_id": {"type": "integer", "x-sdg": {"foreign_key": "a.id"}}, "n": "int"}, "per_parent": 1}}},
}


@pytest.mark.parametrize("kind", JOBS)
def test_a_jobs_manifest_reads_back_and_writes_out_as_it_was(api, tmp_path, kind):
    response = api.post(f"/generate/{kind}", json=JOBS[kind])
    assert response.status_code == 202, response.text
    status = wait_for_job(api, response.json()["job_id"])
    assert status["status"] == "completed", status
    written = json.loads((Path(status["output_path"]) / MANIFEST_FILE).read_text())
    manifest = read_manifest(Path(status["output_path"]))
    assert manifest is not None and manifest.counts.generated == written["counts"]["generated"] > 0
    write_manifest(tmp_path, manifest)
    assert json.loads((tmp_path / MANIFEST_FILE).read_text()) == written


def test_what_the_manifest_does_not_know_is_kept_and_unset_sections_are_left_out(tmp_path):
    manifest = Manifest(job_id="job_000000000001", type="text", seed=7, counts=Counts(requested=3, generated=2),
                        tokens=Tokens(generated=9), from_a_newer_gateway={"x": 1})
    write_manifest(tmp_path, manifest)
    data = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert data["from_a_newer_gateway"] == {"x": 1} and data["counts"] == {"requested": 3, "generated": 2}
    assert "resumes" not in data and "annotations" not in data and data["reason"] is None
    assert read_manifest(tmp_path) == manifest


def test_a_manifest_that_cannot_be_read_is_none(tmp_path):
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"seed": "seven"}))
    assert read_manifest(tmp_path) is None
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"seed": 7}))  # what little an old folder says is read
    assert read_manifest(tmp_path).seed == 7
