"""gateway.salvage on folders as a killed gateway leaves them (written, never closed): what the job
record and the manifest say afterwards. The files themselves are checked per writer in
test_gateway_outputs.py, and the whole path with a real `kill -9` in test_gateway_e2e.py."""

from __future__ import annotations

import io
import json
import shutil

from PIL import Image

from gateway.jobs import INTERRUPTED, Job
from gateway.outputs import ImageDatasetWriter, write_json_atomic
from gateway.plans import stored_plan
from gateway.results import DetectedObject, GeneratedImage
from gateway.salvage import salvage
from gateway.settings import GatewaySettings


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 2), (0, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_job_is_recorded_with_what_its_folder_kept(tmp_path):
    live, dead = tmp_path / "live", tmp_path / "dead"
    live.mkdir()
    # The manifest as the job started it, before any image.
    write_json_atomic(live / "manifest.json", {
        "job_id": "job_000000000001", "type": "images", "status": "running", "counts": {"requested": 5, "generated": 0},
        "annotations": {"requested": ["segmentation", "caption"], "produced": [], "coco_file": None, "objects": 0, "note": "no annotations were produced"},
    })
    writer = ImageDatasetWriter(live)
    # A mask alone: its box, [0, 0, 2, 2], is COCO's bbox all the same.
    mask = DetectedObject("dog", 0.9, [0.0, 0.0, 2.0, 2.0], 2.0, {"counts": [1, 2, 5], "size": [2, 4]}, bbox_asked=False)
    for i in range(2):
        writer.add(GeneratedImage(i, "a dog", i, png(), 4, 2, objects=[mask], caption="a dog"))
    shutil.copytree(live, dead)
    writer.close()

    job = Job(
        job_id="job_000000000001", type="images", status="failed", created_at="2026-01-01T00:00:00Z", error=INTERRUPTED,
        partial=True, finished_at="2026-01-01T00:01:00Z", output_dir=str(dead),
        request={"prompts": ["a dog"], "num_images": 5, "annotations": ["segmentation", "caption"]},
    )
    job.progress = 7  # the dead process's last throttled write, behind what it kept
    salvage(job)
    assert job.stats.images_done == 2 and job.message == INTERRUPTED
    assert job.progress == 40  # 2 of 5 images
    assert job.files == ["annotations/annotations.json", "images/image_00000.png", "images/image_00001.png", "images/metadata.jsonl", "manifest.json"]
    manifest = json.loads((dead / "manifest.json").read_text())
    assert (manifest["status"], manifest["partial"], manifest["reason"], manifest["counts"]) == ("failed", True, INTERRUPTED, {"requested": 5, "generated": 2})
    assert manifest["annotations"] == {
        "requested": ["segmentation", "caption"], "produced": ["bbox", "caption", "segmentation"],
        "coco_file": "annotations/annotations.json", "objects": 2,
    }
    assert manifest["files"] == [f for f in job.files if f != "manifest.json"]


def test_a_job_that_never_made_its_folder_is_left_alone(tmp_path):
    job = Job(job_id="job_000000000002", type="text", status="failed", created_at="2026-01-01T00:00:00Z", error=INTERRUPTED, output_dir=None)
    salvage(job)
    assert job.files is None or job.files == []


def test_a_tables_job_gets_the_quality_report_of_the_rows_each_table_kept(tmp_path):
    request = {"tables": {
        "customers": {"schema": {"id": {"type": "integer", "x-sdg": {"sequence": {}}},
                                 "tier": {"type": "string", "x-sdg": {"category": {"values": ["a", "b"]}}}}, "num_samples": 4},
        "orders": {"schema": {"customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}}, "note": "string"}, "per_parent": 2},
    }, "output_format": "jsonl"}
    plan = stored_plan("tables", request, GatewaySettings())
    dead = tmp_path / "tables_dead"
    dead.mkdir()
    write_json_atomic(dead / "schema.json", {t.name: t.schema for t in plan.tables.tables})
    (dead / "customers.jsonl").write_text("".join(json.dumps({"id": i, "tier": "ab"[i % 2]}) + "\n" for i in (1, 2, 3)))
    (dead / "orders.jsonl").write_text(json.dumps({"customer_id": 1, "note": "x"}) + "\n" + '{"customer_id": 1, "no')  # cut mid-row
    job = Job(job_id="job_000000000003", type="tables", status="failed", created_at="2026-01-01T00:00:00Z", error=INTERRUPTED,
              partial=True, output_dir=str(dead), request=request)
    salvage(job)
    report = json.loads((dead / "quality.json").read_text())["tables"]
    assert (report["customers"]["rows"], report["orders"]["rows"]) == (3, 1)
    assert report["customers"]["fields"]["tier"]["source"] == "sampled" and report["orders"]["fields"]["customer_id"]["source"] == "given"
    assert "quality.json" in job.files
