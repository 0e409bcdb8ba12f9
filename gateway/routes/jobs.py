"""Job status, listing, cancellation, resumption, deletion and output files, one by one or as a ZIP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse, StreamingResponse

from gateway.deps import CallerDep, OwnedJobDep, RunnerDep, StoreDep
from gateway.errors import JobConflict, OutputFileNotFound
from gateway import shards
from gateway.jobs import JobFilter
from gateway.models import DeletedJob, JobState, JobStatus, JobSummary, JobType, ShardStatus
from gateway.outputs import QUALITY_FILE, list_files
from gateway.outputs.archive import zip_folder
from gateway.outputs.tables import read_rows

router = APIRouter(tags=["jobs"])

DEFAULT_PAGE, MAX_PAGE = 100, 1000
NOT_FOUND = {404: {"description": "Unknown job"}}
# Output formats Python's mimetypes does not know, which it would serve as application/octet-stream.
MEDIA_TYPES = {".jsonl": "application/jsonl", ".parquet": "application/vnd.apache.parquet"}


@router.get("/status/{job_id}", response_model=JobStatus, responses=NOT_FOUND)
async def job_status(job: OwnedJobDep) -> JobStatus:
    """Progress while the job runs; output_path, files and any error once it has finished."""
    return job


@router.get("/jobs", response_model=list[JobSummary])
async def list_jobs(
    store: StoreDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    status: JobState | None = None,
    type: JobType | None = None,
) -> list[JobSummary]:
    """The jobs of the job database (with API keys, the caller's), newest first, a page at a time."""
    return [job.summary() for job in store.page(JobFilter(limit, offset, status, type, caller.key_id if caller else None))]


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobStatus,
    responses={**NOT_FOUND, 409: {"description": "The job has already finished"}},
)
async def cancel_job(job: OwnedJobDep, runner: RunnerDep) -> JobStatus:
    """Stops the job (its gRPC call is cancelled); what was written stays and is marked partial."""
    return await runner.cancel(job.job_id)


@router.post(
    "/jobs/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobStatus,
    responses={**NOT_FOUND, 409: {"description": "The job cannot resume; the detail says why"}},
)
async def resume_job(job: OwnedJobDep, runner: RunnerDep) -> JobStatus:
    """Queues a job that stopped short (cancelled, failed, or completed partial) to generate only
    the rows and images it lacks, into the same folder. Images get the job's seed, so they are the
    ones an uninterrupted run makes; rows are sampled anew, none a repeat of a kept row
    (gateway/resume.py)."""
    return runner.resume(job.job_id)


@router.delete(
    "/jobs/{job_id}",
    response_model=DeletedJob,
    responses={**NOT_FOUND, 409: {"description": "The job is queued or running: cancel it first"}},
)
async def delete_job(job: OwnedJobDep, runner: RunnerDep, keep_files: bool = False) -> DeletedJob:
    """Forgets a finished job and deletes its output folder, or keeps the folder with
    `keep_files=true`. Cannot be undone."""
    return await runner.delete(job.job_id, keep_files)


@router.get(
    "/jobs/{job_id}/archive",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The job's folder as a ZIP file"},
        **NOT_FOUND,
        409: {"description": "The job is still queued or running"},
    },
)
async def job_archive(job: OwnedJobDep) -> StreamingResponse:
    """The whole output of a finished job as one ZIP file, `<folder>/...` inside, streamed as it
    is written (the files `files` lists)."""
    job_id = job.job_id
    if not job.finished:
        raise JobConflict(f"job {job_id} is {job.status}; its output can be archived once it has finished")
    if job.output_dir is None or not Path(job.output_dir).is_dir():
        raise OutputFileNotFound(job_id)
    folder = Path(job.output_dir)
    return StreamingResponse(
        zip_folder(folder, list_files(folder)),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{folder.name}.zip"'},
    )


@router.get(
    "/jobs/{job_id}/rows",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/jsonl": {}}, "description": "One row per line, as data.json holds it"},
        **NOT_FOUND,
        409: {"description": "The job is still queued or running, or makes no rows"},
    },
)
async def job_rows(job: OwnedJobDep) -> StreamingResponse:
    """A finished text or unified job's rows as JSON Lines, each one the JSON value the text
    service generated, whatever the output format: values that CSV and Parquet write as JSON text
    are parsed back, and optional properties a row left out stay out."""
    job_id = job.job_id
    if not job.finished or job.type == "images":
        raise JobConflict(f"job {job_id} is {job.status}; its rows can be read once it has finished" if not job.finished else f"job {job_id} makes images, not rows")
    if job.output_dir is None or not (Path(job.output_dir) / "schema.json").is_file():
        raise OutputFileNotFound(job_id, "schema.json")
    folder = Path(job.output_dir)
    output_format = job.request.get("output_format", "json")
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    try:
        rows = await asyncio.to_thread(read_rows, folder, output_format, schema)
    except FileNotFoundError:
        raise OutputFileNotFound(job_id, f"data.{output_format}") from None
    return StreamingResponse((json.dumps(row, ensure_ascii=False) + "\n" for row in rows), media_type="application/jsonl")


@router.get(
    "/jobs/{job_id}/quality",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The job's quality.json"},
               404: {"description": "Unknown job, or one without a quality report (yet)"}},
)
async def job_quality(job: OwnedJobDep) -> FileResponse:
    """A finished text, unified or tables job's quality report: its sampled fields tested against
    their distributions, null rates, uniqueness, coverage and string lengths (sdg/quality.py)."""
    return await job_file(job, QUALITY_FILE)


@router.get("/jobs/{job_id}/shards", responses=NOT_FOUND)
async def job_shards(job: OwnedJobDep, store: StoreDep) -> list[ShardStatus]:
    """The shards of the job's runs, as the job database holds them: state, rows, attempts, the
    replica of the last attempt and the gateway leasing it. A job that was not sharded has none."""
    return [ShardStatus(**shard) for shard in await asyncio.to_thread(shards.job_shards, store.engine, job.job_id)]


@router.get("/jobs/{job_id}/files/{file_path:path}", response_class=FileResponse, responses=NOT_FOUND)
async def job_file(job: OwnedJobDep, file_path: str) -> FileResponse:
    """One file of the job's output, by its path relative to output_path (as listed in `files`)."""
    job_id = job.job_id
    if job.output_dir is None:
        raise OutputFileNotFound(job_id, file_path)
    folder = Path(job.output_dir).resolve()
    target = (folder / file_path).resolve()
    # resolve() follows "..", and symlinks, so this also keeps links from leading out of the folder.
    if not target.is_relative_to(folder) or not target.is_file():
        raise OutputFileNotFound(job_id, file_path)
    return FileResponse(target, media_type=MEDIA_TYPES.get(target.suffix))
