"""JobStore: the jobs this gateway knows, kept in memory and persisted as one JSON file per job under
SDG_OUTPUT_DIR/.jobs/. Writes are atomic (temp file + os.replace) so a crash never leaves a torn
record; progress-only writes are throttled. On start-up, jobs a previous process left running are
marked failed and partial rather than silently lost; jobs it left queued had not started, and are
queued again."""

from __future__ import annotations

import logging
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from gateway.errors import JobNotFound
from gateway.models import JobStatus, JobSummary, JobType
from gateway.outputs.folders import write_json_atomic

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^job_[0-9a-f]{12}$")
INTERRUPTED = "interrupted: gateway restarted"
REQUEUED = "queued again after a gateway restart"


def utc_now() -> str:
    """ISO 8601 in UTC with a Z, microseconds so that jobs created in the same second still sort."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    return "job_" + secrets.token_hex(6)


class Job(JobStatus):
    """A job's full record: the public status plus what only the gateway needs."""

    # Absolute path of the job's output folder; `output_path` is the display form of it.
    output_dir: str | None = None

    def summary(self) -> JobSummary:
        return JobSummary(job_id=self.job_id, type=self.type, status=self.status, progress=self.progress, created_at=self.created_at)


class JobStore:
    def __init__(self, jobs_dir: Path, progress_write_interval_s: float = 1.0):
        self.jobs_dir = jobs_dir
        self.progress_write_interval_s = progress_write_interval_s
        self._jobs: dict[str, Job] = {}
        self._last_write: dict[str, float] = {}

    def load(self) -> tuple[list[Job], list[Job]]:
        """Reads every persisted job. Ones a previous process left running become failed and
        partial, unless they had not made their folder yet: those are queued again. Returns the
        queued ones, oldest first, for the runner to queue again, and the ones it left running,
        whose folders gateway.salvage repairs."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        waiting, interrupted = [], []
        for path in sorted(self.jobs_dir.glob("job_*.json")):
            try:
                job = Job.model_validate_json(path.read_bytes())
            except (ValidationError, OSError) as err:
                # Kept on disk for a person to look at; the gateway cannot report it as a job.
                log.error("skipping unreadable job record %s: %s", path, err)
                continue
            if job.status == "queued":
                waiting.append(job)
            elif not job.finished and job.output_dir is None:
                # It had made nothing yet (it was waiting for a service, say): it runs again, as
                # a queued job does, rather than fail with nothing to resume.
                self.requeue(job)
                waiting.append(job)
            elif not job.finished:
                self.fail(job, INTERRUPTED, partial=True)
                interrupted.append(job)
            self._jobs[job.job_id] = job
        log.info("loaded %d job records from %s (%d still queued)", len(self._jobs), self.jobs_dir, len(waiting))
        return sorted(waiting, key=lambda job: (job.created_at, job.job_id)), interrupted

    def create(self, job_type: JobType, request: dict, message: str) -> Job:
        job_id = new_job_id()
        while job_id in self._jobs:
            job_id = new_job_id()
        job = Job(job_id=job_id, type=job_type, status="queued", created_at=utc_now(), message=message, request=request)
        self._jobs[job_id] = job
        self._write(job)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def newest_first(self) -> list[Job]:
        """Newest first."""
        return sorted(self._jobs.values(), key=lambda job: (job.created_at, job.job_id), reverse=True)

    def count(self, *states: str) -> int:
        return sum(1 for job in self._jobs.values() if job.status in states)

    def save(self, job: Job) -> None:
        """Persists a state change now."""
        self._write(job)

    def delete(self, job_id: str) -> None:
        """Forgets the job and removes its record (not its output folder)."""
        self.get(job_id)
        del self._jobs[job_id]
        self._last_write.pop(job_id, None)
        (self.jobs_dir / f"{job_id}.json").unlink(missing_ok=True)

    def fail(self, job: Job, error: str, partial: bool) -> None:
        """Records a job that ended without running to its end, for `error`."""
        job.status = "failed"
        job.error = job.message = error
        job.partial = partial
        job.finished_at = utc_now()
        self._write(job)

    def requeue(self, job: Job) -> None:
        """Records a job the gateway stopped before it had made anything as queued again, for
        the next gateway to run from the start."""
        if job.status != "queued":
            job.status, job.started_at, job.progress = "queued", None, 0
            job.message = REQUEUED
        self._write(job)

    def save_progress(self, job: Job) -> None:
        """Persists progress, at most once per interval per job; memory is always current."""
        last = self._last_write.get(job.job_id, 0.0)
        if time.monotonic() - last >= self.progress_write_interval_s:
            self._write(job)

    def _write(self, job: Job) -> None:
        if not JOB_ID.match(job.job_id):
            raise ValueError(f"refusing to persist job with malformed id {job.job_id!r}")
        write_json_atomic(self.jobs_dir / f"{job.job_id}.json", job.model_dump(mode="json"))
        self._last_write[job.job_id] = time.monotonic()
