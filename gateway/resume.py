"""Resuming a job that stopped part-way (cancelled, failed, or cut off by a gateway restart): an
images job goes on in its own folder and generates only the images it lacks. Image i depends on
the job's seed and i alone, so the finished dataset is the one an uninterrupted run writes.

Text and unified jobs are not resumable: their rows are sampled a wave at a time, so the rows a
second run adds are not the ones the first would have written, and may repeat them."""

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
    if job.type != "images":
        raise JobConflict(f"job {job.job_id} is a {job.type} job; only images jobs can be resumed")
    if job.status == "completed" and not job.partial:
        raise JobConflict(f"job {job.job_id} is complete; there is nothing to resume")
    if job.output_dir is not None and not Path(job.output_dir).is_dir():
        raise JobConflict(f"job {job.job_id}'s folder {job.output_path} no longer exists")


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
    manifest = Path(job.output_dir) / "manifest.json"
    try:
        return int(json.loads(manifest.read_text(encoding="utf-8"))["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        if kept_images(job) == 0:
            return job.request.get("seed")
        raise JobConflict(
            f"job {job.job_id} cannot be resumed: {job.output_path}/manifest.json is unreadable, so the seed of its images is unknown"
        ) from None


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
