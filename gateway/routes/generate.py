"""POST /generate/{text,images,unified,tables}: validate at the door, queue the job, answer 202."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, status

from gateway.admission import admit_job
from gateway.deps import CallerDep, ClientsDep, DatasetsDep, RunnerDep, SettingsDep, StoreDep
from gateway.models import ImagesRequest, JobAccepted, TablesRequest, TextRequest, UnifiedRequest
from gateway.plans import JobPlan, TextSpec, images_plan, tables_plan, text_plan, unified_plan
from gateway.seeding import seed_rows

router = APIRouter(prefix="/generate", tags=["generate"])

ERRORS = {
    400: {"description": "Input the API cannot honour; `detail` names the field"},
    429: {"description": "A limit is reached (SDG_MAX_QUEUED_JOBS, or the key's own); `detail` names it, `Retry-After` says when to try again"},
}


def _queue(plan: JobPlan, request: dict, message: str, caller: CallerDep, settings: SettingsDep, store: StoreDep, runner: RunnerDep) -> JobAccepted:
    admit_job(plan, caller, settings, store)
    job = store.create(plan.type, request, message, owner=caller.key_id if caller else None)
    runner.submit(job, plan)
    return JobAccepted(job_id=job.job_id, message=message)


async def _check_seed_data(spec: TextSpec, datasets: DatasetsDep, caller: CallerDep) -> None:
    """Draws the job's seed rows once at the door, so that a job that is accepted can carry them."""
    if spec.seed_data is not None:
        await asyncio.to_thread(seed_rows, spec, datasets, caller.key_id if caller else None)


def _echo(request: TextRequest | ImagesRequest | UnifiedRequest | TablesRequest) -> dict:
    return request.model_dump(mode="json", by_alias=True)


@router.post("/text", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, responses=ERRORS)
async def generate_text(
    body: TextRequest, caller: CallerDep, settings: SettingsDep, clients: ClientsDep, store: StoreDep, runner: RunnerDep, datasets: DatasetsDep
) -> JobAccepted:
    """Rows that validate against `schema`, written as data.<output_format>."""
    plan = text_plan(body)
    await clients.confirm_schema(plan.text.source, settings.probe_timeout_s)
    await _check_seed_data(plan.text, datasets, caller)
    return _queue(plan, _echo(body), "Text generation job queued", caller, settings, store, runner)


@router.post("/images", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, responses=ERRORS)
async def generate_images(body: ImagesRequest, caller: CallerDep, settings: SettingsDep, store: StoreDep, runner: RunnerDep) -> JobAccepted:
    """PNG images spread over `prompts` round-robin, with optional COCO annotations."""
    return _queue(images_plan(body, settings), _echo(body), "Image generation job queued", caller, settings, store, runner)


@router.post("/unified", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, responses=ERRORS)
async def generate_unified(
    body: UnifiedRequest, caller: CallerDep, settings: SettingsDep, clients: ClientsDep, store: StoreDep, runner: RunnerDep, datasets: DatasetsDep
) -> JobAccepted:
    """Rows first, then one image per row (up to num_images): image i's prompt is
    prompts[i % len(prompts)] formatted with row i's fields; the data file gains `image_file`."""
    plan = unified_plan(body, settings)
    await clients.confirm_schema(plan.text.source, settings.probe_timeout_s)
    await _check_seed_data(plan.text, datasets, caller)
    return _queue(plan, _echo(body), "Unified generation job queued", caller, settings, store, runner)


@router.post("/tables", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, responses=ERRORS)
async def generate_tables(
    body: TablesRequest, caller: CallerDep, settings: SettingsDep, clients: ClientsDep, store: StoreDep, runner: RunnerDep
) -> JobAccepted:
    """Related tables, parents first: a field `x-sdg: {"foreign_key": "customers.id"}` takes its
    parent row's key, and each child row is written with that row in its prompt. One file per
    table, <table>.<output_format>; the manifest checks every foreign key."""
    plan = tables_plan(body)
    for table in plan.tables.tables:
        await clients.confirm_schema(table.text.source, settings.probe_timeout_s)
    return _queue(plan, _echo(body), "Tables generation job queued", caller, settings, store, runner)
