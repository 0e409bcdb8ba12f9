"""quality.json over REST on the real gateway and tiny-model text service: a text job's sampled
fields pass their tests, its numbers add up, and the report is served, listed and archived."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.conftest import cancelled_part_way, wait_for_job

ROWS = 3000
SCHEMA = {
    "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro", "enterprise", "rare"], "weights": [0.6, 0.3, 0.1, 1e-7]}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
    "signup": {"type": "string", "format": "date", "x-sdg": {"datetime": {"start": "2020-01-01", "end": "2024-12-31"}}},
    "note": {"type": "string", "maxLength": 8},
}


def test_a_text_jobs_quality_report_passes_its_sampled_fields_and_is_served_listed_and_archived(api):
    response = api.post("/generate/text", json={"schema": SCHEMA, "num_samples": ROWS, "output_format": "csv", "seed": 16})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    status = wait_for_job(api, job_id, timeout=600)
    assert status["status"] == "completed" and not status["partial"], status
    folder = Path(status["output_path"])
    assert "quality.json" in status["files"]
    report = json.loads((folder / "quality.json").read_text())
    assert api.get(f"/jobs/{job_id}/quality").json() == report == api.get(f"/jobs/{job_id}/files/quality.json").json()
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/jobs/{job_id}/archive").content))
    assert f"{folder.name}/quality.json" in archive.namelist()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "quality.json" in manifest["files"]

    fields = report["fields"]
    assert report["rows"] == ROWS and list(fields) == list(SCHEMA)
    for name in ("tier", "age", "signup"):
        result = fields[name]["fit"]
        assert fields[name]["source"] == "sampled" and result["n"] == ROWS and result["p_value"] >= 0.01, (name, result)
        assert fields[name]["null_rate"] == 0.0
    assert fields["tier"]["coverage"] == {"allowed": 4, "seen": 3, "missing": ["rare"]}
    assert sum(fields["tier"]["fit"]["plot"]["observed"]) == ROWS
    assert sum(fields["age"]["fit"]["plot"]["observed"]) == ROWS and fields["age"]["fit"]["test"] == "chi-square over binned steps"
    note = fields["note"]
    assert note["source"] == "model" and note["lengths"]["max"] <= 8 and sum(note["lengths"]["histogram"]["counts"]) == note["lengths"]["n"]
    assert 0 <= note["repeated_share"] <= 1 and report["distinct_row_ratio"] == 1.0  # the service drops repeated rows


def test_a_job_without_a_quality_report_is_a_404_that_says_so(api):
    response = api.post("/generate/images", json={"prompts": ["a red cube"], "num_images": 1, "resolution": [64, 64], "num_inference_steps": 2})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed" and "quality.json" not in status["files"]
    missing = api.get(f"/jobs/{job_id}/quality")
    assert missing.status_code == 404 and "quality.json" in missing.json()["detail"]
    assert api.get("/jobs/job_nope/quality").status_code == 404


def test_a_cancelled_job_reports_the_rows_it_kept_and_its_resume_all_of_them(api):
    body = {"schema": {"age": SCHEMA["age"], "city": {"type": "string", "maxLength": 24}}, "num_samples": 1500, "output_format": "jsonl"}
    job_id, status = cancelled_part_way(api, "text", body, "rows_done")
    assert status["status"] == "cancelled" and "quality.json" in status["files"]
    kept = len((Path(status["output_path"]) / "data.jsonl").read_text().splitlines())
    report = api.get(f"/jobs/{job_id}/quality").json()
    assert report["rows"] == kept == report["fields"]["age"]["fit"]["n"] and kept < 1500

    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed" and not status["partial"], status
    report = api.get(f"/jobs/{job_id}/quality").json()
    assert report["rows"] == 1500 == report["fields"]["age"]["fit"]["n"] and report["fields"]["city"]["lengths"]["n"] == 1500
