"""What a gateway that died in the middle of a job left in the job's folder, made loadable at the
next start: whole rows and images are kept, the file being written is closed after them, and the
manifest (written when the folder was made) says the job failed, partially, and why."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gateway.execution import kept_progress, paired_rows
from gateway.jobs import Job
from gateway.manifest import MANIFEST_FILE, Annotations, Manifest, read_manifest, write_manifest
from gateway.models import TablesRequest, TextRequest, UnifiedRequest
from gateway.outputs import QUALITY_FILE, RowWriter, json_lines, list_files, salvage_images, salvage_rows, spooled, write_json_atomic
from gateway.outputs.folders import waiting_rows
from gateway.outputs.images import COCO_FILE
from gateway.outputs.tables import read_rows
from gateway.plans import tables_plan, text_spec
from gateway.rows_phase import UNIFIED_ROWS_SPOOL
from sdg.quality import table_report

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
    spooled_rows = None  # a unified job's rows, read from its spool
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
        spooled_rows = spooled(spool) + waiting_rows(folder, "data")
        with RowWriter(folder, output_format, json.loads(schema_file.read_text(encoding="utf-8"))) as writer:
            writer.write(paired_rows(spooled_rows, images))
        spool.unlink()
        job.stats.rows_done = counts.generated = len(spooled_rows)
    if schema_file.exists() and (job.type != "unified" or spooled_rows is not None):
        report = _quality(job, folder, output_format, spooled_rows)
        if report is not None:
            write_json_atomic(folder / QUALITY_FILE, report)
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


def _quality(job: Job, folder: Path, output_format: str, spooled_rows: list[dict] | None) -> dict | None:
    """quality.json of the rows the folder kept, as the run would have written it; None when it
    cannot be made (the job's run writes one when it resumes)."""
    try:
        if job.type == "tables":
            plan = tables_plan(TablesRequest.model_validate(job.request))
            return {"tables": {t.name: table_report(read_rows(folder, output_format, t.schema, stem=t.name), t.text.read, t.keyed)
                               for t in plan.tables.tables if (folder / f"{t.name}.{output_format}").exists()}}
        if job.type not in ("text", "unified"):
            return None
        request = (TextRequest if job.type == "text" else UnifiedRequest).model_validate(job.request)
        spec = text_spec(request, seed=0)  # what a sampler asks for does not depend on the seed
        rows = spooled_rows if spooled_rows is not None else read_rows(folder, output_format, spec.schema)
        return table_report(rows, spec.read, spec.carried)
    except Exception:
        log.exception("no quality report for the salvaged rows of job %s", job.job_id)
        return None


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
