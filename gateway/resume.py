"""Resuming a job that stopped part-way (cancelled, failed, or cut off by a gateway restart): it
goes on in its own folder, keeps what is there and generates only what it lacks.

Images: image i depends on the job's seed and i alone (for a unified job, also on row i, read back
from the data file), so the finished images are the ones an uninterrupted run makes, up to
rounding where an image's batch-mates differ.

Rows are sampled a wave at a time, so no second run can add the rows the first would have written
next. A resumed run keeps the rows written and samples the rest with a seed of its own, derived
from the job's seed and the resume's number (`rows_seed`, recorded with the resume), and the
gateway drops any row that repeats a kept one. The rows are as valid, and as distinct, as an
uninterrupted run's, and reproducible (the same folder resumed on the same hardware gets the same
rows), but they are not the rows an uninterrupted run would have written."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from gateway.errors import JobConflict
from gateway.jobs import Job
from gateway.manifest import read_manifest
from gateway.outputs.images import IMAGES_DIR
from gateway.outputs.tables import comparable_row
from gateway.plans import JobPlan, TextSpec, stored_plan
from gateway.results import RowsSummary
from gateway.settings import GatewaySettings


def check_resumable(job: Job) -> None:
    """Raises JobConflict saying why `job` cannot be resumed."""
    if not job.finished:
        raise JobConflict(f"job {job.job_id} is {job.status}; only a job that has stopped can be resumed")
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
    manifest = read_manifest(Path(job.output_dir))
    if manifest is None or manifest.seed is None:
        if kept_images(job) == 0 and kept_rows(job) == 0:
            return job.request.get("seed")
        raise JobConflict(f"job {job.job_id} cannot be resumed: its manifest does not say the seed its output was made with")
    return manifest.seed


# How many more calls a resumed job makes for the rows it dropped as repeats of kept ones.
MAX_TOP_UPS = 3


def rows_seed(seed: int, resume: int, top_up: int = 0, shard: int = 0, attempt: int = 1) -> int:
    """The seed the `resume`-th resume of a job with `seed` samples its rows with, and, when rows
    repeating kept ones were dropped, the seed of each `top_up` that replaces them; `shard` (from
    1) for each shard of a run spread over replicas, and `attempt` for each try at it. A hash, so
    that no call samples the waves another did (the engine seeds wave w with seed and w)."""
    key = f"sdg-rows:{seed}:{resume}:{top_up}" + (f":shard{shard}" if shard else "") + (f":attempt{attempt}" if attempt > 1 else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**63


def kept_images(job: Job) -> int:
    """How many finished images the job's folder holds: the lines of its image metadata, which
    lists an image once it is whole (the COCO file, maybe large, is not read). A resumed run
    corrects the count if files were lost since (ImageDatasetWriter keeps only whole images)."""
    if job.output_dir is None:
        return 0
    try:
        with (Path(job.output_dir) / IMAGES_DIR / "metadata.jsonl").open("rb") as metadata:
            return sum(1 for _ in metadata)
    except FileNotFoundError:
        return 0


def kept_rows(job: Job) -> int:
    """How many rows the job's data file holds, as its last run's manifest (or gateway.salvage)
    counted them; 0 for an images job, or when nothing says."""
    if job.type == "images" or job.output_dir is None:
        return 0
    manifest = read_manifest(Path(job.output_dir))
    return manifest.counts.generated if manifest is not None else 0


def row_key(row: dict[str, Any], schema: dict[str, Any]) -> str:
    """What makes two rows the same row, however their files wrote them (a number 5 or 5.0, an
    optional property null or left out)."""
    return json.dumps(comparable_row(row, schema), sort_keys=True, ensure_ascii=False)


def no_rows(spec: TextSpec) -> RowsSummary:
    """The account of a job's rows before its first call."""
    return RowsSummary(
        rows_generated=0, rows_requested=spec.num_rows, rows_invalid=0, duplicates_removed=0, distinct_ratio=1.0,
        seed=spec.seed, elapsed_s=0.0, tokens_generated=0, tokens_forced=0, partial=True, reason="",
    )  # fmt: skip


def added_rows(before: RowsSummary, call: RowsSummary, added: int, repeats: int) -> RowsSummary:
    """The account of a resumed job's rows after one more call to the text service, which
    sent `added` new rows and `repeats` that repeated rows the job had."""
    rows = before.rows_generated + added
    # The share of distinct rows, over both runs, weighted by the rows each one added.
    distinct = (before.distinct_ratio * before.rows_generated + call.distinct_ratio * added) / rows if rows else 1.0
    return dataclasses.replace(
        before,
        rows_generated=rows,
        rows_invalid=before.rows_invalid + call.rows_invalid,
        duplicates_removed=before.duplicates_removed + call.duplicates_removed + repeats,
        distinct_ratio=distinct,
        elapsed_s=before.elapsed_s + call.elapsed_s,
        tokens_generated=before.tokens_generated + call.tokens_generated,
        tokens_forced=before.tokens_forced + call.tokens_forced,
        rejected_by={k: before.rejected_by.get(k, 0) + call.rejected_by.get(k, 0) for k in {**before.rejected_by, **call.rejected_by}},
        compile_s=call.compile_s or before.compile_s,
        partial=rows < before.rows_requested,
        reason=call.reason or (f"{repeats} rows repeated rows the job had" if rows < before.rows_requested and repeats else ""),
    )
