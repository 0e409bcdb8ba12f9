"""What a gateway that died in the middle of a job left in the job's folder, made loadable at the
next start: whole rows and images are kept, the file being written is closed after them, and the
manifest (written when the folder was made) says the job failed, partially, and why."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gateway.execution import UNIFIED_ROWS_SPOOL, kept_progress, paired_rows
from gateway.jobs import Job
from gateway.manifest import MANIFEST_FILE, Annotations, Manifest, read_manifest, write_manifest
from gateway.outputs import RowWriter, json_lines, list_files, salvage_images, salvage_rows, spooled
from gateway.outputs.images import COCO_FILE

log = logging.getLogger(__name__)


def salvage(job: Job) -> None:
    """Repairs the folder of `job`, which the store has just recorded as interrupted, and records
    in the job and its manifest what the folder now holds."""
    if not job.output_dir or not Path(job.output_dir).is_dir():
        return  # it had not written anything
    folder = Path(job.output_dir)
    manifest = read_manifest(folder) or Manifest(job_id=job.job_id, type=job.type)
    counts = manifest.counts
    request = job.request or {}
    output_format = request.get("output_format", "json")
    images: set[int] = set()
    if job.type in ("images", "unified") and (folder / "images").is_dir():
        images = salvage_images(folder)
        job.stats.images_done = len(images)
        if job.type == "images":
            counts.generated = len(images)
        else:
            counts.images_generated = len(images)
    schema_file = folder / "schema.json"
    if job.type == "text" and schema_file.exists():
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        job.stats.rows_done = counts.generated = salvage_rows(folder, output_format, schema)
    if job.type == "tables" and schema_file.exists():
        schemas = json.loads(schema_file.read_text(encoding="utf-8"))
        job.stats.rows_done = counts.generated = sum(salvage_rows(folder, output_format, schema, stem=name) for name, schema in schemas.items())
    spool = folder / UNIFIED_ROWS_SPOOL
    if job.type == "unified" and spool.exists() and schema_file.exists():
        # The data file is written at the end; the spool holds every row received until then.
        rows = spooled(spool)
        with RowWriter(folder, output_format, json.loads(schema_file.read_text(encoding="utf-8"))) as writer:
            writer.write(paired_rows(rows, images))
        spool.unlink()
        job.stats.rows_done = counts.generated = len(rows)
    if images:
        started = manifest.annotations.model_dump(exclude={"note"}) if manifest.annotations else {}  # "requested" stays
        manifest.annotations = Annotations.model_validate({**started, **annotations_kept(folder)})
    files = [f for f in list_files(folder) if f != MANIFEST_FILE]
    manifest.status, manifest.finished_at, manifest.partial, manifest.reason, manifest.files = "failed", job.finished_at, True, job.error, files
    write_manifest(folder, manifest)
    job.files = sorted([*files, MANIFEST_FILE])
    job.message = job.error
    # The last progress the dead process wrote (throttled) may lag what the folder kept.
    stats, rows_wanted = job.stats, request.get("num_samples", 0)
    job.progress = kept_progress(
        job.type,
        rows=(stats.rows_done, stats.rows_total or rows_wanted),
        images=(stats.images_done, stats.images_total or request.get("num_images") or rows_wanted),
    )
    log.info("salvaged the output of interrupted job %s: %s", job.job_id, counts.model_dump(exclude_none=True))


def annotations_kept(folder: Path) -> dict:
    """The manifest's account of the annotations in a salvaged image folder."""
    coco = json.loads((folder / COCO_FILE).read_text(encoding="utf-8")) if (folder / COCO_FILE).exists() else {"annotations": []}
    metadata = json_lines((folder / "images" / "metadata.jsonl").read_text(encoding="utf-8"))
    produced = set()
    if coco["annotations"]:
        produced.add("bbox")
    if any(isinstance(a["segmentation"], dict) for a in coco["annotations"]):
        produced.add("segmentation")
    if any(json.loads(line).get("caption") for line in metadata):
        produced.add("caption")
    kept = {"produced": sorted(produced), "coco_file": COCO_FILE if coco["annotations"] else None, "objects": len(coco["annotations"])}
    return kept if produced else {**kept, "note": "no annotations were produced"}
