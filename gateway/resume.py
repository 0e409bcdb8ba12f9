"""Resuming a job that stopped part-way (cancelled, failed, or cut off by a gateway restart): it
goes on in its own folder and generates only the images it lacks. Image i depends on the job's
seed and i alone (for a unified job, also on row i, read back from the data file), so the
finished dataset is the one an uninterrupted run writes, up to rounding where an image's
batch-mates differ.

Rows are not resumable: they are sampled a wave at a time, so the rows a second run added would
not be the ones the first would have written, and could repeat them. So text jobs are not
resumable, and unified jobs only once all their rows are written."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.errors import JobConflict
from gateway.jobs import Job
from gateway.outputs.images import IMAGES_DIR
from gateway.plans import JobPlan, stored_plan
from gateway.settings import GatewaySettings


def check_resumable(job: Job) -> None:
    """Raises JobConflict saying why `job` cannot be resumed."""
    if not job.finished:
        raise JobConflict(f"job {job.job_id} is {job.status}; only a job that has stopped can be resumed")
    if job.type == "text":
        raise JobConflict(f"job {job.job_id} is a text job; only images and unified jobs can be resumed")
    if job.status == "completed" and not job.partial:
        raise JobConflict(f"job {job.job_id} is complete; there is nothing to resume")
    if job.output_dir is None:
        return  # nothing was written: it runs from the start
    if not Path(job.output_dir).is_dir():
        raise JobConflict(f"job {job.job_id}'s folder {job.output_path} no longer exists")
    if job.type == "unified":
        counts = _manifest(job).get("counts", {})
        rows, wanted = counts.get("generated", 0), counts.get("requested", 0)
        if rows < wanted:
            raise JobConflict(
                f"job {job.job_id} has {rows} of its {wanted} rows; rows cannot be resumed, only the images of a unified job whose rows are all written"
            )


def resume_plan(job: Job, settings: GatewaySettings) -> JobPlan:
    """The plan that finishes `job`: its stored request, checked again against today's settings,
    with the seed its images were made with. Raises JobConflict when that cannot be had."""
    request = dict(job.request)
    seed = recorded_seed(job)
    if seed is not None:
        request["seed"] = seed
    try:
        return stored_plan(job.type, request, settings)
    except ValueError as err:  # pydantic's ValidationError and InvalidRequest are ValueErrors
        raise JobConflict(f"job {job.job_id} cannot be resumed: today's settings refuse its request: {err}") from None


def recorded_seed(job: Job) -> int | None:
    """The seed of the job's first run, from its manifest (the request may have left it to the
    gateway); None when nothing was generated with it yet."""
    if job.output_dir is None:
        return job.request.get("seed")
    try:
        return int(_manifest(job)["seed"])
    except (JobConflict, KeyError, TypeError, ValueError):
        if kept_images(job) == 0 and job.type == "images":
            return job.request.get("seed")
        raise JobConflict(f"job {job.job_id} cannot be resumed: its manifest does not say the seed its output was made with") from None


def _manifest(job: Job) -> dict:
    """The job's manifest.json; JobConflict when it cannot be read."""
    path = Path(job.output_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise JobConflict(f"job {job.job_id} cannot be resumed: {job.output_path}/manifest.json is unreadable") from None


def kept_images(job: Job) -> int:
    """How many finished images the job's folder holds: the lines of its image metadata, which
    lists an image once it is whole (the COCO file, maybe large, is not read)."""
    if job.output_dir is None:
        return 0
    try:
        with (Path(job.output_dir) / IMAGES_DIR / "metadata.jsonl").open("rb") as metadata:
            return sum(1 for _ in metadata)
    except FileNotFoundError:
        return 0
