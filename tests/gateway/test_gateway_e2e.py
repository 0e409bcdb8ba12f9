"""The gateway end to end: `python -m gateway` in front of the real text and image services with
their tiny demo models (tests/conftest.py), driven over HTTP the way SEED.md's clients drive it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gateway.outputs.tables import read_rows
from tests.conftest import cancelled_part_way, free_port, start_gateway, start_text_service, wait_for_job

SEED_TEXT_BODY = {"schema": {"name": "string", "age": "int"}, "num_samples": 50, "output_format": "csv"}
SMALL_IMAGES = {"resolution": [64, 64], "num_inference_steps": 2}


def job_folder(status: dict) -> Path:
    return Path(status["output_path"])


def submit(api: httpx.Client, kind: str, body: dict) -> str:
    response = api.post(f"/generate/{kind}", json=body)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


# -- info, docs, health ---------------------------------------------------------------------------


def test_root_lists_the_api_and_the_models(api):
    body = api.get("/").json()
    assert body["name"] and body["version"]
    paths = {(e["method"], e["path"]) for e in body["endpoints"]}
    assert {("POST", "/generate/text"), ("POST", "/generate/images"), ("POST", "/generate/unified"), ("GET", "/health"),
            ("GET", "/status/{job_id}"), ("GET", "/jobs"), ("POST", "/jobs/{job_id}/cancel"), ("POST", "/jobs/{job_id}/resume"),
            ("DELETE", "/jobs/{job_id}"), ("GET", "/jobs/{job_id}/archive")} <= paths
    assert body["demo_models"] is True
    assert {m["kind"] for m in body["models"]} == {"text", "image"}
    assert all(m["model"]["demo_model"] for m in body["models"])
    assert api.get("/docs").status_code == 200
    assert api.get("/openapi.json").json()["paths"]["/generate/text"]
    assert api.get("/ui/").status_code == 200


def test_health_names_the_demo_models(api):
    response = api.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "healthy"
    for key in ("text_model", "image_model"):
        assert body[key].endswith("(loaded)")
        assert "demo model, random weights" in body[key]
    assert isinstance(body["jobs_in_progress"], int)
    assert body["demo_models"] is True
    assert {s["kind"] for s in body["services"].values()} == {"text", "image"}
    assert all(s["status"] == "serving" for s in body["services"].values())


# -- SEED.md examples, verbatim -------------------------------------------------------------------


def test_seed_python_example(gateway):
    import requests

    base = gateway.address  # SEED.md says http://localhost:8000
    r = requests.post(f"{base}/generate/text", json={
        "schema": {"name": "string", "age": "int"},
        "num_samples": 50,
        "output_format": "csv"
    })
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    status = requests.get(f"{base}/status/{job_id}").json()
    assert status["job_id"] == job_id and status["status"] in ("queued", "running", "completed")

    with httpx.Client(base_url=base, timeout=30) as api:
        status = wait_for_job(api, job_id)
    assert status["status"] == "completed", status
    assert status["progress"] == 100 and status["partial"] is False
    assert status["output_path"].endswith("/") and "/text_data_" in status["output_path"]
    folder = job_folder(status)
    # Random-weight names can be "" or "NA"; keep them as text rather than pandas' missing values.
    frame = pd.read_csv(folder / "data.csv", keep_default_na=False)
    assert len(frame) == 50
    assert list(frame.columns) == ["name", "age"]
    assert frame["age"].dtype == "int64"
    assert frame["name"].map(type).eq(str).all()
    assert sorted(status["files"]) == ["data.csv", "manifest.json", "quality.json", "schema.json"]
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["properties"]["age"]["type"] == "integer"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["job_id"] == job_id and manifest["type"] == "text" and manifest["partial"] is False
    assert manifest["model"]["text"]["demo_model"] is True
    assert "demo model, random weights" in manifest["model"]["text"]["display_name"]
    assert manifest["counts"]["requested"] == manifest["counts"]["generated"] == 50
    assert isinstance(manifest["seed"], int) and manifest["output_format"] == "csv"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_seed_curl_example(gateway):
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{gateway.address}/generate/text",
         "-H", "Content-Type: application/json",
         "-d", '{"schema":{"name":"string","age":"int"},"num_samples":50,"output_format":"csv"}'],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    body = json.loads(out)
    assert body["message"] == "Text generation job queued" and body["job_id"].startswith("job_")
    with httpx.Client(base_url=gateway.address, timeout=30) as api:
        assert wait_for_job(api, body["job_id"])["status"] == "completed"


def test_seed_text_body_example(api):
    job_id = submit(api, "text", {
        "schema": {"customer_name": "string", "age": "int", "order_value": "float"},
        "num_samples": 100,
        "output_format": "json",
    })
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed", status
    rows = json.loads((job_folder(status) / "data.json").read_text())
    assert len(rows) == 100
    assert all(isinstance(r["age"], int) and isinstance(r["order_value"], float) for r in rows)
    assert all(isinstance(r["customer_name"], str) for r in rows)
    assert pd.read_json(job_folder(status) / "data.json")["age"].dtype == "int64"


def test_seed_images_example(api):
    response = api.post("/generate/images", json={
        "prompts": [
            "A modern warehouse interior",
            "An outdoor retail storefront"
        ],
        "num_images": 10,
        "resolution": [512, 512],
        "annotations": ["bbox"]
    })
    assert response.status_code == 202
    assert response.json()["message"] == "Image generation job queued"
    status = wait_for_job(api, response.json()["job_id"], timeout=900)
    assert status["status"] == "completed", status
    assert status["message"] == "completed: 10 images"
    folder = job_folder(status)
    assert "/images_" in status["output_path"]
    pngs = sorted((folder / "images").glob("image_*.png"))
    assert [p.name for p in pngs] == [f"image_{i:05d}.png" for i in range(10)]
    for png in pngs:
        assert Image.open(png).size == (512, 512)
    metadata = [json.loads(line) for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    assert [m["file_name"] for m in metadata] == [p.name for p in pngs]
    assert [m["prompt"] for m in metadata] == ["A modern warehouse interior", "An outdoor retail storefront"] * 5
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"requested": 10, "generated": 10}
    annotations = manifest["annotations"]
    assert annotations["requested"] == ["bbox"]
    # Attention always peaks somewhere, so even the random-weight model yields a box per noun.
    assert annotations["produced"] == ["bbox"]
    assert annotations["coco_file"] == "annotations/annotations.json"
    from pycocotools.coco import COCO

    coco = COCO(str(folder / "annotations" / "annotations.json"))
    assert len(coco.getImgIds()) == 10 and coco.getAnnIds()
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0, ann["bbox"]
        assert x + w <= image["width"] and y + h <= image["height"], (ann["bbox"], image)
        assert coco.annToMask(ann).sum() == ann["area"] == w * h  # the box is the segmentation
    prompt_words = set("a modern warehouse interior an outdoor retail storefront".split())
    assert {coco.cats[c]["name"] for c in coco.cats} <= prompt_words


def test_seed_unified_example(api):
    """SEED's body verbatim. Its 50 images at 512x512 and 30 steps take minutes on CPU, so the test
    checks the rows and the first paired images, then cancels: what was made must stay paired."""
    response = api.post("/generate/unified", json={
        "schema": {"id": "int", "product": "string", "price": "float"},
        "num_samples": 50,
        "prompts": ["A product on white background"],
        "output_format": "json"
    })
    assert response.status_code == 202
    assert response.json()["message"] == "Unified generation job queued"
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 600
    while (status := api.get(f"/status/{job_id}").json())["stats"]["images_done"] < 2:
        assert status["status"] in ("queued", "running"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["stats"]["rows_done"] == 50 and status["stats"]["images_total"] == 50
    api.post(f"/jobs/{job_id}/cancel")
    status = wait_for_job(api, job_id, timeout=60)
    assert status["status"] == "cancelled" and status["partial"] is True
    folder = job_folder(status)
    rows = json.loads((folder / "data.json").read_text())
    assert len(rows) == 50
    assert [set(r) for r in rows] == [{"id", "product", "price", "image_file"}] * 50
    paired = [r["image_file"] for r in rows if r["image_file"] is not None]
    assert len(paired) >= 2
    assert paired == [f"images/image_{i:05d}.png" for i in range(len(paired))]
    assert all(r["image_file"] is None for r in rows[len(paired):])
    assert Image.open(folder / paired[0]).size == (512, 512)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["partial"] is True and manifest["counts"]["images_generated"] == len(paired)


# -- the rest of the API --------------------------------------------------------------------------


def test_text_formats_load_with_their_types(api):
    schema = {
        "name": "string",
        "age": {"type": "integer", "minimum": 18, "maximum": 90},
        "score": "float",
        "member": "bool",
        "joined": "date",
        "address": {"type": "object", "properties": {"city": "string", "zip": "int"}},
        "tags": {"type": "array", "items": "string", "maxItems": 2},
    }
    jobs = {fmt: submit(api, "text", {"schema": schema, "num_samples": 8, "output_format": fmt, "seed": 3}) for fmt in ("json", "jsonl", "parquet")}
    results = {fmt: wait_for_job(api, job_id) for fmt, job_id in jobs.items()}
    for fmt, status in results.items():
        assert status["status"] == "completed", status
        assert f"data.{fmt}" in status["files"]
    table = pq.read_table(job_folder(results["parquet"]) / "data.parquet")
    types = {f.name: str(f.type) for f in table.schema}
    assert types["age"] == "int64" and types["score"] == "double" and types["member"] == "bool"
    assert types["joined"] == "date32[day]"
    assert types["address"] == "struct<city: string, zip: int64>" and types["tags"] == "list<element: string>"
    assert table.num_rows == 8 and all(18 <= a <= 90 for a in table.column("age").to_pylist())
    lines = (job_folder(results["jsonl"]) / "data.jsonl").read_text().splitlines()
    assert len(lines) == 8 and all(isinstance(json.loads(line)["address"], dict) for line in lines)
    # The files endpoint serves what the status lists.
    response = api.get(f"/jobs/{jobs['json']}/files/data.json")
    assert response.status_code == 200 and len(response.json()) == 8
    served = {fmt: api.get(f"/jobs/{job_id}/files/data.{fmt}").headers["content-type"] for fmt, job_id in jobs.items()}
    assert served == {"json": "application/json", "jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}


@pytest.mark.parametrize("output_format", ["json", "parquet"])
def test_a_pydantic_model_schema_over_rest_gives_rows_valid_against_it(api, output_format):
    import jsonschema

    from tests.text_service.schemas import Customer

    schema = Customer.model_json_schema()
    job_id = submit(api, "text", {"schema": schema, "num_samples": 6, "output_format": output_format, "seed": 2})
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed" and not status["partial"], status
    folder = job_folder(status)
    normalized = json.loads((folder / "schema.json").read_text())
    check = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    rows = read_rows(folder, output_format, normalized)
    assert len(rows) == 6
    for row in rows:
        check.validate(row)
        Customer.model_validate(row)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema"]["form"] == "json_schema" and manifest["schema"]["recursion_depth"] == 3
    assert manifest["schema"]["optional_rate"] == 0.5 and manifest["schema"]["grammar_compile_s"] > 0
    if output_format == "parquet":
        table = pq.read_table(folder / "data.parquet")
        assert str(table.schema.field("address").type).startswith("struct<")


def test_a_refused_json_schema_keyword_is_a_400_naming_its_pointer(api):
    body = {"schema": {"type": "object", "properties": {"when": {"type": "string", "format": "date", "$dynamicRef": "#x"}}}}
    response = api.post("/generate/text", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].endswith("(at #/properties/when/$dynamicRef)")


def test_a_job_with_sampled_fields_holds_the_sampled_values(api):
    schema = {
        "id": {"type": "integer", "x-sdg": {"sequence": {"start": 500, "step": 2}}},
        "tier": {"type": "string", "x-sdg": {"category": {"values": ["free", "pro"], "weights": [1, 3]}}},
        "age": {"type": "integer", "minimum": 18, "maximum": 90, "x-sdg": {"gaussian": {"mean": 40, "stddev": 12}}},
        "name": {"type": "string", "x-sdg": {"faker": {"provider": "name", "locale": "nl_NL"}}},
        "bio": {"type": "string", "maxLength": 20},
    }
    job_id = submit(api, "text", {"schema": schema, "num_samples": 20, "output_format": "jsonl", "seed": 9})
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed" and not status["partial"], status
    rows = [json.loads(line) for line in (job_folder(status) / "data.jsonl").read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == list(range(500, 540, 2))
    assert all(row["tier"] in ("free", "pro") and 18 <= row["age"] <= 90 for row in rows)
    assert all(row["name"] and list(row)[-1] == "bio" for row in rows)  # written after every known value
    manifest = json.loads((job_folder(status) / "manifest.json").read_text())
    assert manifest["schema"]["sampled"] == {"id": "sequence", "tier": "category", "age": "gaussian", "name": "faker"}


def test_a_sampler_that_cannot_be_honoured_is_a_400_naming_the_field(api):
    body = {"schema": {"age": {"type": "integer", "minimum": 0, "maximum": 10, "x-sdg": {"gaussian": {"mean": 500, "stddev": 1}}}}}
    response = api.post("/generate/text", json=body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith("schema.age: ") and detail.endswith("(at #/properties/age/x-sdg/gaussian)")


def test_unified_pairs_image_i_with_row_i(api):
    job_id = submit(api, "unified", {
        "schema": {"id": "int", "product": {"type": "string", "maxLength": 12}, "price": "float"},
        "num_samples": 6,
        "num_images": 4,
        "prompts": ["A {product} on white background", "Another {product}, {price:.2f} euro"],
        "output_format": "parquet",
        "seed": 11,
        **SMALL_IMAGES,
    })
    status = wait_for_job(api, job_id)
    assert status["status"] == "completed", status
    assert "/unified_" in status["output_path"]
    folder = job_folder(status)
    rows = pq.read_table(folder / "data.parquet").to_pylist()
    assert len(rows) == 6
    assert [r["image_file"] for r in rows] == [f"images/image_{i:05d}.png" for i in range(4)] + [None, None]
    metadata = [json.loads(line) for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    assert len(metadata) == 4
    for i, meta in enumerate(metadata):
        row = rows[i]
        expected = (f"A {row['product']} on white background" if i % 2 == 0
                    else f"Another {row['product']}, {row['price']:.2f} euro")
        assert meta["file_name"] == f"image_{i:05d}.png" and meta["prompt"] == expected
        assert Image.open(folder / row["image_file"]).size == (64, 64)
    schema = json.loads((folder / "schema.json").read_text())
    assert "image_file" in schema["properties"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == 6 and manifest["counts"]["images_generated"] == 4
    assert set(manifest["model"]) == {"text", "image"}
    quality = json.loads((folder / "quality.json").read_text())  # of the rows, not their image_file
    assert "quality.json" in status["files"] and quality["rows"] == 6 and list(quality["fields"]) == ["id", "product", "price"]


def test_images_with_annotations_and_progress_messages(api):
    job_id = submit(api, "images", {
        "prompts": ["a red barn in a field", "a cat on a sofa"],
        "num_images": 3,
        "resolution": [128, 128],
        "num_inference_steps": 20,  # enough steps that polling sees the per-step messages
        "annotations": ["bbox", "segmentation", "caption"],
        "seed": 5,
    })
    messages = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = api.get(f"/status/{job_id}").json()
        messages.add(status["message"])
        assert 0 <= status["progress"] <= 100
        if status["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert status["status"] == "completed", status
    assert any("batch 1/" in m and "step " in m for m in messages), messages
    assert status["stats"]["images_done"] == status["stats"]["images_total"] == 3
    folder = job_folder(status)
    manifest = json.loads((folder / "manifest.json").read_text())
    produced = manifest["annotations"]["produced"]
    coco_path = folder / "annotations" / "annotations.json"
    if {"bbox", "segmentation"} & set(produced):
        from pycocotools.coco import COCO

        coco = COCO(str(coco_path))
        for ann in coco.loadAnns(coco.getAnnIds()):
            assert len(ann["bbox"]) == 4 and ann["iscrowd"] == 0
            assert coco.annToMask(ann).shape == (128, 128) and coco.annToMask(ann).sum() == ann["area"]
    else:
        assert not coco_path.exists()
    captions = [json.loads(line)["caption"] for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    assert ("caption" in produced) == any(captions)


def test_feature_reuse_is_labelled_approximate_in_the_manifest(api):
    body = {"prompts": ["a dog"], "num_images": 2, "resolution": [64, 64], "num_inference_steps": 4, "seed": 1}
    exact, reused = (wait_for_job(api, submit(api, "images", {**body, **extra})) for extra in ({}, {"feature_reuse": 2}))
    assert exact["status"] == reused["status"] == "completed"
    manifests = [json.loads((job_folder(job) / "manifest.json").read_text())["images"] for job in (exact, reused)]
    assert manifests[0]["feature_reuse"] == 1 and "note" not in manifests[0]
    assert manifests[1]["feature_reuse"] == 2 and manifests[1]["note"].startswith("approximate: the whole UNet ran every 2 steps")
    png = "images/image_00000.png"
    assert (job_folder(exact) / png).read_bytes() != (job_folder(reused) / png).read_bytes()


def test_a_prompt_cut_at_clips_context_is_recorded_per_image_and_in_the_manifest(api):
    long = "a dog on a mat " * 20  # 100 words: CLIP reads 75 tokens and its start and end tokens
    body = {"prompts": ["a dog", long], "num_images": 3, "resolution": [64, 64], "num_inference_steps": 2, "seed": 1}
    job = wait_for_job(api, submit(api, "images", body))
    assert job["status"] == "completed", job
    metadata = [json.loads(line) for line in (job_folder(job) / "images" / "metadata.jsonl").read_text().splitlines()]
    assert [row["prompt_tokens_dropped"] for row in metadata] == [0, 25, 0]
    images = json.loads((job_folder(job) / "manifest.json").read_text())["images"]
    assert (images["prompts_cut"], images["negative_prompt_tokens_dropped"]) == (1, 0)
    assert images["note"].startswith("the prompts of 1 image were longer than the text encoder reads (CLIP: 77 tokens)")
    job = wait_for_job(api, submit(api, "images", {**body, "prompts": ["a dog"], "negative_prompt": long}))
    images = json.loads((job_folder(job) / "manifest.json").read_text())["images"]
    assert (images["prompts_cut"], images["negative_prompt_tokens_dropped"]) == (0, 25)
    assert images["note"] == "the negative prompt was longer than the text encoder reads (CLIP: 77 tokens): its last 25 tokens were cut"


def refused_while_running(api: httpx.Client, method: str, action: str, reason: str) -> None:
    """`method /jobs/{id}<action>` answers 409 with `reason` for a job still running, and 404 for
    an unknown one."""
    running = submit(api, "images", {"prompts": ["a slow one"], "num_images": 40, "resolution": [128, 128], "num_inference_steps": 30})
    response = api.request(method, f"/jobs/{running}{action}")
    assert response.status_code == 409 and reason in response.json()["detail"]
    api.post(f"/jobs/{running}/cancel")
    assert api.request(method, f"/jobs/job_000000000000{action}").status_code == 404


def test_a_finished_job_downloads_as_one_zip(api):
    body = {"schema": {"name": "string"}, "num_samples": 3, "prompts": ["a portrait of {name}"], "annotations": ["bbox"], **SMALL_IMAGES}
    status = wait_for_job(api, submit(api, "unified", body))
    folder = job_folder(status)
    response = api.get(f"/jobs/{status['job_id']}/archive")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="{folder.name}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [f"{folder.name}/{name}" for name in status["files"]]
        for name in status["files"]:
            assert archive.read(f"{folder.name}/{name}") == (folder / name).read_bytes(), name
        kinds = {info.filename.rsplit(".", 1)[-1]: info.compress_type for info in archive.infolist()}
    assert kinds["png"] == zipfile.ZIP_STORED and kinds["json"] == zipfile.ZIP_DEFLATED

    refused_while_running(api, "GET", "/archive", "once it has finished")


def test_a_finished_job_is_deleted_with_its_folder_or_without_it(api):
    first, second = (wait_for_job(api, submit(api, "text", {"schema": {"a": "int"}, "num_samples": 2})) for _ in range(2))
    response = api.delete(f"/jobs/{first['job_id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "job_id": first["job_id"], "files_deleted": True, "message": f"deleted job {first['job_id']} and its folder {first['output_path']}",
    }
    assert not job_folder(first).exists() and api.get(f"/status/{first['job_id']}").status_code == 404
    assert first["job_id"] not in [job["job_id"] for job in api.get("/jobs").json()]
    response = api.delete(f"/jobs/{second['job_id']}", params={"keep_files": "true"})
    assert response.json()["files_deleted"] is False and response.json()["message"].endswith(f"its folder {second['output_path']} is kept")
    assert (job_folder(second) / "data.json").exists() and api.get(f"/status/{second['job_id']}").status_code == 404

    refused_while_running(api, "DELETE", "", "cancel it before deleting it")


def test_jobs_list_is_newest_first(api):
    first = submit(api, "text", {"schema": {"a": "int"}, "num_samples": 1})
    second = submit(api, "text", {"schema": {"a": "int"}, "num_samples": 1})
    listed = api.get("/jobs").json()
    ids = [job["job_id"] for job in listed]
    assert ids.index(second) < ids.index(first)
    assert set(listed[0]) == {"job_id", "type", "status", "progress", "created_at"}
    assert listed[0]["created_at"].endswith("Z")
    for job_id in (first, second):
        wait_for_job(api, job_id)


def test_cancel_a_running_images_job(api):
    job_id = submit(api, "images", {"prompts": ["a slow picture"], "num_images": 24, "resolution": [128, 128], "num_inference_steps": 50})
    deadline = time.monotonic() + 120
    while api.get(f"/status/{job_id}").json()["stats"]["step"] < 1:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    response = api.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 202
    status = wait_for_job(api, job_id, timeout=30)
    assert status["status"] == "cancelled" and status["partial"] is True
    # Its bar shows the images it kept, not the batch it dropped half-way.
    assert status["progress"] == 100 * status["stats"]["images_done"] // 24
    manifest = json.loads((job_folder(status) / "manifest.json").read_text())
    assert manifest["partial"] is True and manifest["status"] == "cancelled"
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 409
    # The service stopped that work and takes the next job.
    follow_up = submit(api, "images", {"prompts": ["after"], "num_images": 1, **SMALL_IMAGES})
    finished = wait_for_job(api, follow_up, timeout=120)
    assert (finished["status"], finished["message"]) == ("completed", "completed: 1 image")


def kept_images(status: dict) -> int:
    """How many images a stopped job's folder kept."""
    return len((job_folder(status) / "images" / "metadata.jsonl").read_text().splitlines())


def test_resume_finishes_a_cancelled_images_job_as_one_run_would(api):
    body = {
        "prompts": ["a red barn in a field", "a cat on a sofa"],
        "num_images": 10,
        "resolution": [128, 128],
        "num_inference_steps": 25,
        "annotations": ["bbox", "segmentation", "caption"],
    }  # no seed: the gateway draws one, and a resumed run must find it in the manifest
    job_id, stopped = cancelled_part_way(api, "images", body, "images_done", timeout=120)
    kept = kept_images(stopped)
    assert stopped["status"] == "cancelled" and stopped["partial"] is True
    folder = job_folder(stopped)
    assert 1 <= kept < 10, "the test needs a job stopped part-way"
    seed = json.loads((folder / "manifest.json").read_text())["seed"]

    response = api.post(f"/jobs/{job_id}/resume")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued" and f"{kept} image" in response.json()["message"]
    resumed = wait_for_job(api, job_id, timeout=300)
    assert (resumed["status"], resumed["partial"], resumed["output_path"]) == ("completed", False, stopped["output_path"])
    assert [r["images_kept"] for r in resumed["resumes"]] == [kept]
    assert resumed["stats"]["images_done"] == 10 and resumed["message"] == "completed: 10 images"

    # The same dataset as an uninterrupted run with that seed.
    reference = job_folder(wait_for_job(api, submit(api, "images", {**body, "seed": seed}), timeout=300))
    records = [json.loads(line) for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (reference / "images" / "metadata.jsonl").read_text().splitlines()]
    assert [(r["file_name"], r["seed"], r["prompt"], r["caption"]) for r in records] == [
        (r["file_name"], r["seed"], r["prompt"], r["caption"]) for r in expected
    ]
    for record in records:  # batch-mates differ between the runs, so allow rounding
        np.testing.assert_allclose(
            np.asarray(Image.open(folder / "images" / record["file_name"]), dtype=int),
            np.asarray(Image.open(reference / "images" / record["file_name"]), dtype=int),
            atol=2,
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"] == {"requested": 10, "generated": 10} and manifest["resumes"] == resumed["resumes"]
    assert manifest["seed"] == seed and not any(p.name.startswith(".") for p in folder.rglob("*"))
    if manifest["annotations"]["objects"]:
        from pycocotools.coco import COCO

        coco = COCO(str(folder / "annotations" / "annotations.json"))
        assert sorted(coco.getImgIds()) == list(range(1, 11))
        assert sorted(coco.getAnnIds()) == list(range(1, manifest["annotations"]["objects"] + 1))
        assert len({c["name"] for c in coco.loadCats(coco.getCatIds())}) == len(coco.getCatIds())
        for ann in coco.loadAnns(coco.getAnnIds()):
            assert coco.annToMask(ann).shape == (128, 128)


@pytest.mark.parametrize("output_format", ["csv", "parquet"])
def test_resume_finishes_a_unified_job_stopped_in_its_images(api, output_format):
    """The rows are all written, so the resumed run reads them back from the data file (CSV text
    or Parquet columns) and makes each missing image from its row: the folder ends as an
    uninterrupted run's, data file included."""
    body = {
        "schema": {"product": {"type": "string", "maxLength": 12}, "price": "float", "qty": "int", "seen": "datetime"},
        "num_samples": 12,
        "prompts": ["A {product} for {price} ({qty}) at {seen}"],
        "output_format": output_format,
        "resolution": [128, 128],
        "num_inference_steps": 25,
    }
    job_id, stopped = cancelled_part_way(api, "unified", body, "images_done", timeout=300)
    kept = kept_images(stopped)
    folder = job_folder(stopped)
    assert stopped["partial"] and 1 <= kept < 12, "the test needs a job stopped in its images"
    seed = json.loads((folder / "manifest.json").read_text())["seed"]

    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    resumed = wait_for_job(api, job_id, timeout=300)
    assert (resumed["status"], resumed["partial"], resumed["message"]) == ("completed", False, "completed: 12 rows, 12 images")
    reference = job_folder(wait_for_job(api, submit(api, "unified", {**body, "seed": seed}), timeout=300))
    data = f"data.{output_format}"
    if output_format == "csv":
        assert (folder / data).read_text() == (reference / data).read_text()
    else:
        assert pq.read_table(folder / data).equals(pq.read_table(reference / data))
    prompts = [json.loads(line)["prompt"] for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    assert prompts == [json.loads(line)["prompt"] for line in (reference / "images" / "metadata.jsonl").read_text().splitlines()]
    for i in range(12):
        name = f"images/image_{i:05d}.png"
        np.testing.assert_allclose(np.asarray(Image.open(folder / name), dtype=int), np.asarray(Image.open(reference / name), dtype=int), atol=2)
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = json.loads((reference / "manifest.json").read_text())
    for key in ("counts", "distinct_ratio", "tokens"):
        assert manifest[key] == expected[key], key
    assert manifest["model"]["text"] == expected["model"]["text"] and not any(p.name.startswith(".") for p in folder.rglob("*"))


def canonical(rows: list[dict]) -> list[str]:
    return [json.dumps(row, sort_keys=True) for row in rows]


@pytest.mark.parametrize("output_format", ["json", "parquet"])
def test_resume_finishes_a_cancelled_text_job_keeping_its_rows(api, output_format):
    """The rows written stay as they are, first in the file; the rest are new rows, none of them
    a repeat, sampled with the seed the resume records."""
    schema = {"name": {"type": "string", "maxLength": 10}, "age": "int", "joined": "date"}
    body = {"schema": schema, "num_samples": 300, "output_format": output_format}
    job_id, stopped = cancelled_part_way(api, "text", body, "rows_done", timeout=120)
    folder = job_folder(stopped)
    data_schema = json.loads((folder / "schema.json").read_text())
    kept = read_rows(folder, output_format, data_schema)
    assert stopped["status"] == "cancelled" and stopped["partial"] and 1 <= len(kept) < 300, "the test needs a job stopped part-way"
    seed = json.loads((folder / "manifest.json").read_text())["seed"]

    response = api.post(f"/jobs/{job_id}/resume")
    assert response.status_code == 202, response.text
    assert response.json()["message"] == f"queued to resume: {len(kept)} row{'s' * (len(kept) > 1)} of 300 kept"
    resumed = wait_for_job(api, job_id, timeout=300)
    assert (resumed["status"], resumed["partial"], resumed["message"]) == ("completed", False, "completed: 300 rows")
    [resume] = resumed["resumes"]
    assert resume["rows_kept"] == len(kept) and resume["images_kept"] is None and resume["rows_seed"] not in (None, seed)
    rows = read_rows(folder, output_format, data_schema)
    assert len(rows) == 300 and rows[: len(kept)] == kept
    assert len(set(canonical(rows))) == 300, "a resumed run repeated a row"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == 300 and manifest["seed"] == seed and manifest["resumes"] == resumed["resumes"]
    assert manifest["tokens"]["generated"] > 0 and not any(p.name.startswith(".") for p in folder.rglob("*"))


def test_a_resumed_job_numbers_its_new_rows_where_the_kept_ones_stopped(api):
    schema = {"id": {"type": "integer", "x-sdg": {"sequence": {"start": 10, "step": 5}}}, "name": {"type": "string", "maxLength": 10}}
    job_id, stopped = cancelled_part_way(api, "text", {"schema": schema, "num_samples": 200, "output_format": "jsonl"}, "rows_done", timeout=120)
    folder = job_folder(stopped)
    kept = [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines()]
    assert 1 <= len(kept) < 200, "the test needs a job stopped part-way"
    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    assert wait_for_job(api, job_id, timeout=300)["status"] == "completed"
    rows = [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines()]
    assert rows[: len(kept)] == kept and sorted(row["id"] for row in rows) == list(range(10, 1010, 5))


def test_a_resumed_job_drops_rows_that_repeat_kept_ones(api):
    """A schema with two possible rows: the first run ends partial with both, or one, and every
    row the resumed run samples repeats a kept one, so it is dropped and counted."""
    job_id = submit(api, "text", {"schema": {"yes": "bool"}, "num_samples": 5, "output_format": "jsonl"})
    stopped = wait_for_job(api, job_id)
    folder = job_folder(stopped)
    before = json.loads((folder / "manifest.json").read_text())["counts"]
    kept = (folder / "data.jsonl").read_text().splitlines()
    assert stopped["status"] == "completed" and stopped["partial"] and 1 <= len(kept) <= 2

    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    resumed = wait_for_job(api, job_id)
    assert resumed["status"] == "completed" and resumed["partial"] and "of 5 rows" in resumed["message"]
    rows = (folder / "data.jsonl").read_text().splitlines()
    assert rows[: len(kept)] == kept and len(set(rows)) == len(rows) <= 2
    after = json.loads((folder / "manifest.json").read_text())["counts"]
    repeats = after["duplicates_removed"] - before["duplicates_removed"]
    assert repeats >= 2 - (len(rows) - len(kept)), (before, after)  # each round's rows: one of two, seen


def test_a_unified_job_short_of_rows_keeps_its_images_when_resumed(api):
    """Two rows are all a boolean column allows: the first run pairs an image with each and ends
    partial; the resumed run finds no new row, and leaves every image as it was."""
    body = {"schema": {"yes": "bool"}, "num_samples": 5, "prompts": ["a sign saying {yes}"], **SMALL_IMAGES}
    first = wait_for_job(api, submit(api, "unified", body))
    folder = job_folder(first)
    rows = json.loads((folder / "data.json").read_text())
    images = {p.name: p.read_bytes() for p in (folder / "images").glob("*.png")}
    assert first["status"] == "completed" and first["partial"] and 1 <= len(rows) == len(images) <= 2

    assert api.post(f"/jobs/{first['job_id']}/resume").status_code == 202
    resumed = wait_for_job(api, first["job_id"])
    assert resumed["status"] == "completed" and resumed["partial"] and f"{len(rows)} of 5 rows" in resumed["message"]
    assert [(r["rows_kept"], r["images_kept"]) for r in resumed["resumes"]] == [(len(rows), len(rows))]
    assert json.loads((folder / "data.json").read_text()) == rows
    assert {p.name: p.read_bytes() for p in (folder / "images").glob("*.png")} == images


def test_resume_finishes_a_unified_job_stopped_in_its_rows(api):
    """The resumed run adds the rows the job lacks, then makes every image, each from its row."""
    body = {
        "schema": {"product": {"type": "string", "maxLength": 12}, "price": "float"},
        "num_samples": 200,
        "prompts": ["A {product} for {price}"],
        "output_format": "csv",
        **SMALL_IMAGES,
    }
    job_id, stopped = cancelled_part_way(api, "unified", body, "rows_done", timeout=120)
    folder = job_folder(stopped)
    kept = pd.read_csv(folder / "data.csv")
    assert stopped["partial"] and 1 <= len(kept) < 200 and kept["image_file"].isna().all()

    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    resumed = wait_for_job(api, job_id, timeout=300)
    assert (resumed["status"], resumed["partial"], resumed["message"]) == ("completed", False, "completed: 200 rows, 200 images")
    assert [(r["rows_kept"], r["images_kept"]) for r in resumed["resumes"]] == [(len(kept), 0)]
    rows = pd.read_csv(folder / "data.csv")
    assert len(rows) == 200 and rows.iloc[: len(kept)][["product", "price"]].equals(kept[["product", "price"]])
    assert rows["image_file"].tolist() == [f"images/image_{i:05d}.png" for i in range(200)]
    records = [json.loads(line) for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records] == [f"A {p} for {float(x)}" for p, x in zip(rows["product"], rows["price"])]


def test_complete_jobs_do_not_resume(api):
    text = wait_for_job(api, submit(api, "text", {"schema": {"a": "int"}, "num_samples": 2}))
    images = wait_for_job(api, submit(api, "images", {"prompts": ["a dog"], "num_images": 1, **SMALL_IMAGES}))
    for job in (text, images):
        response = api.post(f"/jobs/{job['job_id']}/resume")
        assert response.status_code == 409 and "is complete; there is nothing to resume" in response.json()["detail"], response.text
    assert api.post("/jobs/job_000000000000/resume").status_code == 404


@pytest.mark.parametrize(
    ("kind", "body", "status", "names"),
    [
        ("text", {"schema": {"a": "int"}, "num_samples": 0}, 422, "num_samples"),
        ("text", {"schema": {"a": "int"}, "output_format": "xlsx"}, 422, "output_format"),
        ("text", {"schema": {"age": {"type": "integer", "minimum": 90, "maximum": 18}}}, 400, "schema.age"),
        ("text", {"schema": {"a": "wibble"}}, 400, "schema.a"),
        # Python compiles it, but JSON Schema's regexes (ECMA-262) have no possessive quantifiers.
        ("text", {"schema": {"code": {"type": "string", "pattern": "a*+"}}}, 400, "schema.code"),
        ("unified", {"schema": {"code": {"type": "string", "pattern": "a*+"}}, "prompts": ["x"]}, 400, "schema.code"),
        ("text", {"schema": {"a": "int"}, "num_sample": 5}, 422, "num_sample"),
        ("images", {"prompts": []}, 422, "prompts"),
        ("images", {"prompts": ["ok", ""]}, 422, "prompts"),
        ("images", {"prompts": ["x"], "annotations": ["keypoints"]}, 422, "annotations"),
        ("images", {"prompts": ["x"], "resolution": [500, 512]}, 400, "resolution"),
        ("images", {"prompts": ["x"], "resolution": [2048, 512]}, 400, "resolution"),
        ("images", {"prompts": ["x"], "num_images": 0}, 422, "num_images"),
        ("images", {"prompts": ["x"], "feature_reuse": 0}, 422, "feature_reuse"),
        ("unified", {"schema": {"a": "int"}, "prompts": ["A {b}"]}, 400, "prompts[0]"),
        ("unified", {"schema": {"a": "int"}, "num_samples": 2, "num_images": 3, "prompts": ["x"]}, 400, "num_images"),
    ],
)
def test_bad_requests_name_the_field(api, kind, body, status, names):
    response = api.post(f"/generate/{kind}", json=body)
    assert response.status_code == status, response.text
    assert names in json.dumps(response.json()["detail"])


# Python's json, so the gateway, reads NaN and Infinity; the 422 echoes them back as strings.
@pytest.mark.parametrize(
    ("kind", "body", "field", "echoed"),
    [
        ("images", b'{"prompts":["x"],"guidance_scale":NaN}', "guidance_scale", "NaN"),
        ("text", b'{"schema":{"a":"int"},"temperature":-Infinity}', "temperature", "-Infinity"),
        ("text", b'{"schema":{"a":"int"},"num_samples":Infinity}', "num_samples", "Infinity"),
        ("text", b'{"schema":{"a":"int"},"output_format":NaN}', "output_format", "NaN"),
        ("images", b'{"prompts":["x"],"resolution":[512,NaN]}', "resolution", "NaN"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(api, kind, body, field, echoed):
    response = api.post(f"/generate/{kind}", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert field in error["loc"] and error["input"] == echoed and error["msg"] and error["type"]
    if field != "output_format":
        assert error["msg"] == "Input should be a finite number"


def test_unknown_jobs_are_404(api):
    for response in (
        api.get("/status/job_000000000000"),
        api.post("/jobs/job_000000000000/cancel"),
        api.get("/jobs/job_000000000000/files/data.json"),
    ):
        assert response.status_code == 404 and "job_000000000000" in response.json()["detail"]


# -- services down, gateway restarted -------------------------------------------------------------


def test_health_degraded_and_jobs_fail_after_the_start_wait_when_a_service_is_down(text_service, service_logs, tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    gateway = start_gateway(service_logs, text_service.address, dead, tmp_path, SDG_SERVICE_START_WAIT_S="2")
    try:
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            response = api.get("/health")
            assert response.status_code == 500
            body = response.json()
            assert body["status"] == "degraded"
            assert body["image_model"] == f"unavailable at {dead}"
            assert body["text_model"].endswith("(loaded)")
            started = time.monotonic()
            job_id = submit(api, "images", {"prompts": ["x"], "num_images": 1, **SMALL_IMAGES})
            status = wait_for_job(api, job_id, timeout=30)
            assert 2 <= time.monotonic() - started < 10  # it waited for the service to start, then gave up
            assert status["status"] == "failed"
            assert status["error"].startswith(f"image service unavailable at {dead}")
    finally:
        gateway.stop()


def test_a_stopped_service_turns_health_degraded(service_logs, tmp_path, image_service):
    text = start_text_service(service_logs)
    gateway = start_gateway(service_logs, text.address, image_service.address, tmp_path, SDG_SERVICE_START_WAIT_S="1")
    try:
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            assert api.get("/health").status_code == 200
            text.stop()
            response = api.get("/health")
            assert response.status_code == 500
            assert response.json()["text_model"] == f"unavailable at {text.address}"
            status = wait_for_job(api, submit(api, "text", {"schema": {"a": "int"}, "num_samples": 2}), timeout=30)
            assert status["status"] == "failed" and text.address in status["error"]
    finally:
        gateway.stop()
        text.stop()


def test_without_resume_interrupted_a_crash_fails_the_running_job_and_the_queued_one_runs(text_service, image_service, service_logs, tmp_path):
    one_at_a_time = {"SDG_MAX_CONCURRENT_JOBS": "1", "SDG_RESUME_INTERRUPTED": "false"}
    gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **one_at_a_time)
    with httpx.Client(base_url=gateway.address, timeout=30) as api:
        job_id = submit(api, "unified", {
            "schema": {"city": "string"}, "num_samples": 200, "prompts": ["a street in {city}"],
            "resolution": [128, 128], "num_inference_steps": 10,
        })
        deadline = time.monotonic() + 60
        while api.get(f"/status/{job_id}").json()["stats"]["images_done"] < 4:  # some work to keep
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The unified job holds the one image slot now: an images job waits for it.
        waiting = submit(api, "images", {"prompts": ["a street"], "num_images": 2, **SMALL_IMAGES})
        time.sleep(0.3)
        assert api.get(f"/status/{waiting}").json()["status"] == "queued"
    gateway.proc.kill()  # no shutdown handler runs: the record still says "running"
    gateway.proc.wait()
    restarted = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **one_at_a_time)
    try:
        with httpx.Client(base_url=restarted.address, timeout=30) as api:
            status = api.get(f"/status/{job_id}").json()
            assert status["status"] == "failed" and status["error"] == "interrupted: gateway restarted"
            assert status["partial"] is True
            # Its folder holds whole images only, each listed once in the metadata; every row it
            # had, paired with its image where there is one; and a manifest that says so.
            folder = job_folder(status)
            pngs = sorted(p.name for p in (folder / "images").glob("*.png"))
            listed = [json.loads(line)["file_name"] for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
            assert listed == pngs and status["stats"]["images_done"] == len(pngs) >= 4
            rows = json.loads((folder / "data.json").read_text())
            assert len(rows) == status["stats"]["rows_done"] == 200
            assert [r["image_file"] for r in rows if r["image_file"]] == [f"images/{name}" for name in pngs]
            manifest = json.loads((folder / "manifest.json").read_text())
            assert (manifest["status"], manifest["partial"]) == ("failed", True)
            assert manifest["counts"]["images_generated"] == len(pngs) and manifest["counts"]["generated"] == 200
            # The queued job had not started; it runs now, and completes.
            status = wait_for_job(api, waiting, timeout=120)
            assert (status["status"], status["message"]) == ("completed", "completed: 2 images")
    finally:
        restarted.stop()


def test_jobs_wait_only_for_the_service_they_need(text_service, image_service, service_logs, tmp_path):
    """SDG_MAX_CONCURRENT_JOBS counts jobs per service: while an images job holds the one image
    slot, a unified job makes its rows and waits for it, and a text job runs meanwhile."""
    gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, SDG_MAX_CONCURRENT_JOBS="1")
    try:
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            images = submit(api, "images", {"prompts": ["a slow picture"], "num_images": 400, "resolution": [128, 128], "num_inference_steps": 30})
            deadline = time.monotonic() + 120
            while api.get(f"/status/{images}").json()["stats"]["step"] < 1:
                assert time.monotonic() < deadline, "the images job never started"
                time.sleep(0.05)
            unified = submit(api, "unified", {"schema": {"city": "string"}, "num_samples": 2, "prompts": ["a street in {city}"], **SMALL_IMAGES})
            deadline = time.monotonic() + 120
            while (status := api.get(f"/status/{unified}").json())["message"] != "waiting for the image service, busy with other jobs":
                assert time.monotonic() < deadline and status["status"] in ("queued", "running"), status
                time.sleep(0.05)
            assert status["stats"]["rows_done"] == 2
            text = submit(api, "text", {"schema": {"city": "string"}, "num_samples": 3})
            assert wait_for_job(api, text, timeout=120)["status"] == "completed"
            assert api.get(f"/status/{images}").json()["status"] == "running"
            api.post(f"/jobs/{images}/cancel")
            assert wait_for_job(api, unified, timeout=120)["message"] == "completed: 2 rows, 2 images"
    finally:
        gateway.stop()


def test_a_text_job_cut_off_by_a_crash_resumes_from_its_salvaged_rows(text_service, image_service, service_logs, tmp_path):
    """Parquet has no footer until the writer closes: the restarted gateway rebuilds the file from
    its spool, and the resumed run writes it anew with those rows first."""
    manual = {"SDG_RESUME_INTERRUPTED": "false"}
    gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **manual)
    # Enough rows that the kill lands part-way even on a fast machine.
    body = {"schema": {"name": {"type": "string", "maxLength": 10}, "age": "int"}, "num_samples": 2000, "output_format": "parquet"}
    with httpx.Client(base_url=gateway.address, timeout=30) as api:
        job_id = submit(api, "text", body)
        deadline = time.monotonic() + 60
        while api.get(f"/status/{job_id}").json()["stats"]["rows_done"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    gateway.proc.kill()
    gateway.proc.wait()
    restarted = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **manual)
    try:
        with httpx.Client(base_url=restarted.address, timeout=30) as api:
            status = api.get(f"/status/{job_id}").json()
            assert (status["status"], status["partial"]) == ("failed", True)
            folder = job_folder(status)
            kept = pq.read_table(folder / "data.parquet").to_pylist()
            assert 1 <= len(kept) == status["stats"]["rows_done"] < 2000
            # The salvaged rows have their quality report, as a run that stopped writes one.
            assert "quality.json" in status["files"] and api.get(f"/jobs/{job_id}/quality").json()["rows"] == len(kept)
            assert api.post(f"/jobs/{job_id}/resume").status_code == 202
            resumed = wait_for_job(api, job_id, timeout=300)
            assert (resumed["status"], resumed["message"]) == ("completed", "completed: 2000 rows")
            rows = pq.read_table(folder / "data.parquet").to_pylist()
            assert rows[: len(kept)] == kept and len(set(canonical(rows))) == 2000
            assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "manifest.json", "quality.json", "schema.json"]
    finally:
        restarted.stop()


def test_by_default_a_crash_or_a_shutdown_only_pauses_a_job(database_url, text_service, image_service, service_logs, tmp_path):
    """The job a crash (kill -9) cut off resumes when the gateway starts again, with no request, and
    so does the one a shutdown stopped; each ends whole, its first rows kept. On both stores."""
    env = {"SDG_DATABASE_URL": database_url}
    body = {"schema": {"city": {"type": "string", "maxLength": 10}, "zip": "int"}, "num_samples": 2000, "output_format": "jsonl"}
    gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **env)
    try:
        for stop in ("crash", "shutdown"):
            with httpx.Client(base_url=gateway.address, timeout=30) as api:
                job_id, deadline = submit(api, "text", body), time.monotonic() + 60
                while api.get(f"/status/{job_id}").json()["stats"]["rows_done"] < 1:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            if stop == "crash":
                gateway.proc.kill()
                gateway.proc.wait()
            else:
                gateway.stop()  # SIGTERM: uvicorn shuts down, and the gateway stops its jobs
            gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path, **env)
            with httpx.Client(base_url=gateway.address, timeout=30) as api:
                status = wait_for_job(api, job_id, timeout=120)
            assert (status["status"], status["message"]) == ("completed", "completed: 2000 rows"), (stop, status)
            [resume] = status["resumes"]
            rows = (job_folder(status) / "data.jsonl").read_text().splitlines()
            assert resume["automatic"] and 1 <= resume["rows_kept"] < 2000 and len(set(rows)) == len(rows) == 2000, stop
    finally:
        gateway.stop()
