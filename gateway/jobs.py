"""JobStore: the jobs of the job database (gateway/db.py). Jobs this gateway runs stay in memory,
current, and are written through on every state change (progress at most once an interval); any
other job is read from the database, so several gateways answer for each other's jobs. Each write
appends a job event, the stream GET /jobs/{id}/events serves. On start-up, jobs a previous process
left running are marked failed and partial rather than silently lost; jobs it left queued had not
started, and are queued again. Job records of gateways before the database (SDG_OUTPUT_DIR/.jobs)
are imported once."""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from gateway import db
from gateway.errors import JobNotFound
from gateway.models import JobStatus, JobSummary, JobType

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^job_[0-9a-f]{12}$")
INTERRUPTED = "interrupted: gateway restarted"
REQUEUED = "queued again after a gateway restart"
# The records of gateways before the database, and where they go once imported.
LEGACY_JOBS_DIR, IMPORTED_JOBS_DIR = ".jobs", ".jobs.imported"


def utc_now() -> str:
    """ISO 8601 in UTC with a Z, microseconds so that jobs created in the same second still sort."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    return "job_" + secrets.token_hex(6)


class Job(JobStatus):
    """A job's full record: the public status plus what only the gateway needs."""

    # Absolute path of the job's output folder; `output_path` is the display form of it.
    output_dir: str | None = None
    # The id of the API key that made it (gateway/keys.py); None while keys are off.
    owner: str | None = None

    def summary(self) -> JobSummary:
        return JobSummary(job_id=self.job_id, type=self.type, status=self.status, progress=self.progress, created_at=self.created_at)


@dataclass(frozen=True)
class JobEvent:
    """One write of a job: `kind` is "state" when its status changed, else "progress"."""

    id: int
    job_id: str
    at: str
    kind: str
    data: dict


@dataclass(frozen=True)
class JobFilter:
    """A page of GET /jobs, newest first."""

    limit: int = 100
    offset: int = 0
    status: str | None = None
    type: str | None = None
    owner: str | None = None  # None: every owner's


def event_data(job: Job) -> dict:
    return {
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "partial": job.partial,
        "stats": job.stats.model_dump(mode="json"),
    }


class JobStore:
    def __init__(self, engine: Engine, output_dir: Path, progress_write_interval_s: float = 1.0):
        self.engine = engine
        self.output_dir = output_dir
        self.progress_write_interval_s = progress_write_interval_s
        self._live: dict[str, Job] = {}
        self._last_write: dict[str, float] = {}
        self._last_status: dict[str, str] = {}

    @classmethod
    def open(cls, database_url: str, output_dir: Path, progress_write_interval_s: float = 1.0) -> JobStore:
        """Connects to the job database, migrated to the newest schema."""
        engine = db.connect(db.database_url(database_url, output_dir))
        db.upgrade(engine)
        return cls(engine, output_dir, progress_write_interval_s)

    def close(self) -> None:
        self.engine.dispose()

    def load(self) -> tuple[list[Job], list[Job]]:
        """Takes over the unfinished jobs. Ones a previous process left running become failed and
        partial, unless they had not made their folder yet: those are queued again. Returns the
        queued ones, oldest first, for the runner to queue again, and the ones it left running,
        whose folders gateway.salvage repairs."""
        self._import_legacy_records()
        waiting, interrupted = [], []
        query = sa.select(db.jobs.c.record).where(db.jobs.c.status.in_(("queued", "running"))).order_by(db.jobs.c.created_at, db.jobs.c.job_id)
        with self.engine.connect() as conn:
            records = conn.execute(query).scalars().all()
        for record in records:
            job = Job.model_validate(record)
            self._live[job.job_id] = job
            self._last_status[job.job_id] = job.status
            if job.status == "queued":
                waiting.append(job)
            elif job.output_dir is None:
                # It had made nothing yet (it was waiting for a service, say): it runs again, as
                # a queued job does, rather than fail with nothing to resume.
                self.requeue(job)
                waiting.append(job)
            else:
                self.fail(job, INTERRUPTED, partial=True)
                interrupted.append(job)
        log.info("took over %d unfinished jobs (%d still queued)", len(records), len(waiting))
        return waiting, interrupted

    def create(self, job_type: JobType, request: dict, message: str, owner: str | None = None) -> Job:
        job = Job(job_id=new_job_id(), type=job_type, status="queued", created_at=utc_now(), message=message, request=request, owner=owner)
        self._write(job)
        return job

    def get(self, job_id: str) -> Job:
        job = self._live.get(job_id)
        if job is not None:
            return job
        with self.engine.connect() as conn:
            record = conn.execute(sa.select(db.jobs.c.record).where(db.jobs.c.job_id == job_id)).scalar_one_or_none()
        if record is None:
            raise JobNotFound(job_id)
        return Job.model_validate(record)

    def page(self, where: JobFilter) -> list[Job]:
        query = sa.select(db.jobs.c.job_id, db.jobs.c.record).order_by(db.jobs.c.created_at.desc(), db.jobs.c.job_id.desc())
        if where.status is not None:
            query = query.where(db.jobs.c.status == where.status)
        if where.type is not None:
            query = query.where(db.jobs.c.type == where.type)
        if where.owner is not None:
            query = query.where(db.jobs.c.owner == where.owner)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(where.limit).offset(where.offset)).all()
        return [self._live.get(job_id) or Job.model_validate(record) for job_id, record in rows]

    def unfinished(self, owner: str) -> list[Job]:
        """The owner's queued and running jobs."""
        query = sa.select(db.jobs.c.job_id, db.jobs.c.record).where(db.jobs.c.owner == owner, db.jobs.c.status.in_(("queued", "running")))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._live.get(job_id) or Job.model_validate(record) for job_id, record in rows]

    def counts(self) -> dict[str, int]:
        """Jobs by status, in one query."""
        query = sa.select(db.jobs.c.status, sa.func.count()).group_by(db.jobs.c.status)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).tuples().all())

    def count(self, *states: str) -> int:
        counts = self.counts()
        return sum(counts.get(state, 0) for state in states)

    def events_after(self, job_id: str, after: int = 0, limit: int = 1000) -> list[JobEvent]:
        """The job's events after event id `after`, oldest first."""
        table = db.job_events
        query = sa.select(table).where(table.c.job_id == job_id, table.c.id > after).order_by(table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [JobEvent(row.id, row.job_id, row.at, row.kind, row.data) for row in conn.execute(query)]

    def save(self, job: Job) -> None:
        """Persists a state change now."""
        self._write(job)

    def delete(self, job_id: str) -> None:
        """Forgets the job and its events (not its output folder)."""
        self.get(job_id)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(db.jobs).where(db.jobs.c.job_id == job_id))
            conn.execute(sa.delete(db.job_events).where(db.job_events.c.job_id == job_id))
        for memo in (self._live, self._last_write, self._last_status):
            memo.pop(job_id, None)

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
        record = job.model_dump(mode="json")
        kind = "progress" if self._last_status.get(job.job_id) == job.status else "state"
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(db.jobs).where(db.jobs.c.job_id == job.job_id).values(status=job.status, record=record)
            ).rowcount
            if not updated:
                _insert_job(conn, job, record)
            _append_event(conn, job, kind)
        self._last_write[job.job_id] = time.monotonic()
        self._last_status[job.job_id] = job.status
        if job.finished:
            self._live.pop(job.job_id, None)
        else:
            self._live[job.job_id] = job

    def _import_legacy_records(self) -> None:
        """Imports the JSON records of gateways before the database, once: the folder is renamed
        after, its files kept for a person. An unreadable record is left there, and logged."""
        folder = self.output_dir / LEGACY_JOBS_DIR
        if not folder.is_dir():
            return
        imported = 0
        with self.engine.begin() as conn:
            known = set(conn.execute(sa.select(db.jobs.c.job_id)).scalars())
            for path in sorted(folder.glob("job_*.json")):
                try:
                    job = Job.model_validate_json(path.read_bytes())
                except (ValidationError, OSError) as err:
                    log.error("not importing unreadable job record %s: %s", path, err)
                    continue
                if job.job_id in known or not JOB_ID.match(job.job_id):
                    continue
                _insert_job(conn, job, job.model_dump(mode="json"))
                _append_event(conn, job, "state")
                imported += 1
        target = self.output_dir / IMPORTED_JOBS_DIR
        if target.exists():
            target = self.output_dir / f"{IMPORTED_JOBS_DIR}.{int(time.time())}"
        folder.rename(target)
        log.info("imported %d job records from %s into the job database; the files are kept in %s", imported, folder, target)


def _insert_job(conn: sa.Connection, job: Job, record: dict) -> None:
    conn.execute(sa.insert(db.jobs).values(job_id=job.job_id, type=job.type, status=job.status, created_at=job.created_at, owner=job.owner, record=record))


def _append_event(conn: sa.Connection, job: Job, kind: str) -> None:
    conn.execute(sa.insert(db.job_events).values(job_id=job.job_id, at=utc_now(), kind=kind, data=event_data(job)))
