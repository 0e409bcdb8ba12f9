"""Job: one job on the gateway. It follows the job's status, cancels, resumes and deletes it,
downloads its files, and loads its data over HTTP (never from the gateway's disk, which may be
another machine's)."""

from __future__ import annotations

import email.message
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sdg_client.errors import JobCancelled, JobFailed, WaitTimeout
from sdg_client.progress import JobProgressBar
from sdg_client.status import JobStatus
from sdg_client.tables import Table, require
from sdg_client.transport import Transport

IMAGES_METADATA = "images/metadata.jsonl"


class Job:
    """A handle on a job: SDG.text(), .images() and .unified() return one, and SDG.job(job_id)
    makes one for a job submitted elsewhere. `model` is the Pydantic class the rows were made
    from, when the job was submitted with one."""

    def __init__(self, transport: Transport, job_id: str, model: type | None = None):
        self._transport = transport
        self._id = job_id
        self.model = model
        self._last_status: JobStatus | None = None

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        state = self._last_status.status if self._last_status else "unknown"
        return f"Job({self._id!r}, status={state!r})"

    # -- lifecycle ---------------------------------------------------------------------------------

    def status(self) -> JobStatus:
        """The job's status now (GET /status/{job_id})."""
        self._last_status = JobStatus.from_json(self._transport.json("GET", f"/status/{self._id}"))
        return self._last_status

    @property
    def partial(self) -> bool:
        """Whether the job's output is short of what was asked (as of the last status fetched)."""
        return (self._last_status or self.status()).partial

    def wait(self, progress: bool = True, timeout: float | None = None, poll_interval: float = 0.5) -> Job:
        """Polls the status until the job finishes, with a progress bar unless `progress` is False.
        Returns the job when it completed (partial or not); raises JobFailed or JobCancelled,
        carrying the job's error, when it did not, and WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with JobProgressBar(self._id, enabled=progress) as bar:
            while True:
                status = self.status()
                bar.show(status)
                if status.finished:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout(status, timeout)
                time.sleep(poll_interval)
        if status.status == "failed":
            raise JobFailed(status)
        if status.status == "cancelled":
            raise JobCancelled(status)
        return self

    def cancel(self) -> JobStatus:
        """Stops the job; what it wrote stays, marked partial. A finished job answers 409."""
        self._last_status = JobStatus.from_json(self._transport.json("POST", f"/jobs/{self._id}/cancel"))
        return self._last_status

    def resume(self) -> Job:
        """Queues a stopped or partial job to make only what it lacks, in the same folder."""
        self._last_status = JobStatus.from_json(self._transport.json("POST", f"/jobs/{self._id}/resume"))
        return self

    def delete(self, keep_files: bool = False) -> dict[str, Any]:
        """Forgets the finished job and deletes its folder (or keeps the folder with `keep_files`)."""
        return self._transport.json("DELETE", f"/jobs/{self._id}", params={"keep_files": str(keep_files).lower()})

    # -- files -------------------------------------------------------------------------------------

    def files(self) -> list[str]:
        """The job's files, relative to its folder; listed once the job has finished."""
        return self.status().files

    def read_bytes(self, path: str) -> bytes:
        """One file of the job's output, by its path as files() lists it."""
        return self._transport.request("GET", f"/jobs/{self._id}/files/{quote(path)}").content

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.read_bytes("manifest.json"))

    def download(self, dest: str | Path, *, archive: bool = False) -> Path:
        """Downloads the finished job's files into the folder `dest`, as they lie in the job's
        folder; returns `dest`. With `archive`, saves the job as one ZIP file instead: at `dest`,
        or inside it under the gateway's name for it when `dest` is a folder; returns its path."""
        dest = Path(dest)
        if archive:
            return self._download_archive(dest)
        self._download_files(self._finished_status().files, dest)
        return dest

    def _download_archive(self, dest: Path) -> Path:
        folder = dest if dest.is_dir() else None
        target = folder / "archive.zip" if folder else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        headers = self._transport.download(f"/jobs/{self._id}/archive", target)
        name = _attachment_name(headers.get("content-disposition", ""))
        if folder and name:
            named = folder / Path(name).name
            target.replace(named)
            return named
        return target

    def _download_files(self, paths: list[str], dest: Path) -> None:
        root = dest.resolve()
        for path in paths:
            target = (root / path).resolve()
            # A file list naming a path outside `dest` is refused, not followed.
            if not target.is_relative_to(root):
                raise ValueError(f"job {self._id} lists {path!r}, which leads outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._transport.download(f"/jobs/{self._id}/files/{quote(path)}", target)

    # -- loaders -----------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts, each the JSON the text service generated, whatever the output format
        (an images job: its images' metadata lines)."""
        status = self._finished_status()
        if status.type == "images":
            if IMAGES_METADATA not in status.files:
                raise FileNotFoundError(f"job {self._id} lists no {IMAGES_METADATA}: {status.files}")
            return _json_lines(self.read_bytes(IMAGES_METADATA))
        return _json_lines(self._transport.request("GET", f"/jobs/{self._id}/rows").content)

    def to_arrow(self) -> Any:
        """The rows as a pyarrow.Table (extra: arrow); a Parquet file's columns as it typed them."""
        return self._table().arrow()

    def to_pandas(self) -> Any:
        """The rows as a pandas.DataFrame (extra: pandas); a Parquet file's columns as it typed them."""
        return self._table().pandas()

    def to_models(self, model: type | None = None) -> list[Any]:
        """The rows as instances of `model`, or of the Pydantic class the job was submitted with."""
        model = model or self.model
        if model is None:
            raise ValueError(
                f"job {self._id} has no Pydantic model class: it was not submitted with one through this handle; "
                "pass one, as in job.to_models(Customer)"
            )
        return [model.model_validate(row) for row in self.rows()]

    def to_datasets(self, data_dir: str | Path | None = None) -> Any:
        """The job as a Hugging Face datasets.Dataset (extra: datasets). An images job loads as the
        imagefolder of its images and metadata; a unified job's rows gain an `image` column. The
        images are downloaded into `data_dir` (default: a new temporary folder), which the
        dataset reads them from, so keep it while the dataset is in use."""
        datasets = require("datasets", "datasets", "to_datasets()")
        status = self._finished_status()
        if status.type == "text":
            return datasets.Dataset(self.to_arrow())
        folder = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix=f"sdg_{self._id}_"))
        self._download_files([path for path in status.files if path.startswith("images/")], folder)
        if status.type == "images":
            # Its Arrow cache beside the images, rather than in the user's global datasets cache.
            return datasets.load_dataset("imagefolder", data_dir=str(folder / "images"), split="train", cache_dir=str(folder / ".datasets_cache"))
        dataset = datasets.Dataset(self.to_arrow())
        paths = [str(folder / name) if name else None for name in dataset["image_file"]]
        return dataset.add_column("image", paths).cast_column("image", datasets.Image())

    def _finished_status(self) -> JobStatus:
        status = self.status()
        if not status.finished:
            raise RuntimeError(f"job {self._id} is {status.status}; its files are listed once it has finished: wait() for it first")
        return status

    def _table(self) -> Table:
        status = self._finished_status()
        if status.type == "images":
            return Table(self.rows(), None)
        schema = json.loads(self.read_bytes("schema.json")) if "schema.json" in status.files else None
        parquet = self.read_bytes("data.parquet") if status.request.get("output_format") == "parquet" else None
        return Table([] if parquet is not None else self.rows(), schema, parquet)


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _attachment_name(content_disposition: str) -> str | None:
    message = email.message.Message()
    message["content-disposition"] = content_disposition
    return message.get_param("filename", header="content-disposition")
