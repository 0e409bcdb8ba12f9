"""POST /datasets (upload a CSV, JSONL or Parquet file), GET /datasets, GET and DELETE
/datasets/{dataset_id}: the files a job's `seed_data` names."""

from __future__ import annotations

import asyncio
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status

from gateway.datasets import DatasetFormat, DatasetInfo, dataset_format, parse_dataset
from gateway.deps import CallerDep, DatasetsDep, SettingsDep
from gateway.errors import TooLarge
from gateway.jobs import utc_now
from gateway.routes.jobs import DEFAULT_PAGE, MAX_PAGE

router = APIRouter(prefix="/datasets", tags=["datasets"])

NOT_FOUND = {404: {"description": "Unknown dataset (or another key's)"}}
READ_CHUNK = 1 << 20


async def _read_capped(file: UploadFile, limit: int) -> bytes:
    """The upload's bytes; TooLarge as soon as there are more than `limit`."""
    chunks, size = [], 0
    while chunk := await file.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file: larger than {limit:,} bytes, the most an upload may be (SDG_MAX_DATASET_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetInfo,
    responses={
        400: {"description": "A file that cannot be read; `detail` names the line or column"},
        413: {"description": "A file past SDG_MAX_DATASET_BYTES"},
    },
)
async def upload_dataset(
    caller: CallerDep,
    settings: SettingsDep,
    datasets: DatasetsDep,
    file: Annotated[UploadFile, File(description="A CSV file with a header line, JSON Lines (one object a line), or Parquet.")],
    format: Annotated[DatasetFormat | None, Form(description="Unset: from the file name's extension.")] = None,
    name: Annotated[str | None, Form(min_length=1, max_length=256, description="Unset: the file's name.")] = None,
) -> DatasetInfo:
    """Checks and stores a file of seed rows (encoding, header, row widths, column names, the row
    limit), for jobs to name in `seed_data`."""
    file_format = dataset_format(file.filename, format)
    data = await _read_capped(file, settings.max_dataset_bytes)
    parsed = await asyncio.to_thread(parse_dataset, data, file_format, settings.max_dataset_rows)
    shown = name or PurePath(file.filename or "dataset").name[:256]
    owner = caller.key_id if caller else None
    return await asyncio.to_thread(datasets.create, parsed, shown, len(data), owner, utc_now())


@router.get("", response_model=list[DatasetInfo])
async def list_datasets(
    caller: CallerDep,
    datasets: DatasetsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[DatasetInfo]:
    """A page of the uploaded datasets (with API keys, the caller's), newest first."""
    return await asyncio.to_thread(datasets.listed, caller.key_id if caller else None, limit, offset)


@router.get("/{dataset_id}", response_model=DatasetInfo, responses=NOT_FOUND)
async def get_dataset(dataset_id: str, caller: CallerDep, datasets: DatasetsDep) -> DatasetInfo:
    return await asyncio.to_thread(datasets.get, dataset_id, caller.key_id if caller else None)


@router.delete("/{dataset_id}", response_model=DatasetInfo, responses=NOT_FOUND)
async def delete_dataset(dataset_id: str, caller: CallerDep, datasets: DatasetsDep) -> DatasetInfo:
    """Forgets the dataset; jobs that name it and have yet to run (or resume) fail, saying so."""
    return await asyncio.to_thread(datasets.delete, dataset_id, caller.key_id if caller else None)
