"""JobStore: the jobs of the job database (gateway/db.py). Jobs this gateway runs stay in memory,
current, and are written through on every state change (progress at most once an interval); any
other job is read from the database, so several gateways answer for each other's jobs. Each write
appends a job event, the stream GET /jobs/{id}/events serves.

A gateway holds a lease on each unfinished job it runs, renewed by its heartbeat; a write to a job
whose lease another gateway holds is dropped. Unfinished jobs whose lease expired (their gateway
died) are claimed: ones left running are marked failed and partial rather than silently lost, and
ones left queued had not started, and are queued again. Job records of gateways before the
database (SDG_OUTPUT_DIR/.jobs) are imported once."""

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
from gateway.models import JobState, JobStatus, JobSummary, JobType

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^job_[0-9a-f]{12}$")
INTERRUPTED = "interrupted: gateway restarted"
REQUEUED = "queued again after a gateway restart"
CANCELLED = "cancelled by request"
UNFINISHED = ("queued", "running")
# The records of gateways before the database, and where they go once imported.
LEGACY_JOBS_DIR, IMPORTED_JOBS_DIR = ".jobs", ".jobs.imported"


def utc_now() -> str:
    """ISO 8601 in UTC with a Z, microseconds so that jobs created in the same second still sort."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    return "job_" + secrets.token_hex(6)


# A job's lifecycle: the states each state may move to. Running goes back to queued when the
# gateway stops it before it made anything, or when its failover resumes it; a finished job goes
# back to queued when resumed.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"completed", "failed", "cancelled", "queued"}),
    "completed": frozenset({"queued"}),
    "failed": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
}


class IllegalTransition(RuntimeError):
    pass


class Job(JobStatus):
    """A job's full record: the public status plus what only the gateway needs."""

    # Absolute path of the job's output folder; `output_path` is the display form of it.
    output_dir: str | None = None
    # The id of the API key that made it (gateway/keys.py); None while keys are off.
    owner: str | None = None

    def move_to(self, status: JobState) -> None:
        """The one way a job changes state: checked against TRANSITIONS, with its times kept."""
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"job {self.job_id} cannot go from {self.status} to {status}")
        self.status = status
        if status == "running":
            self.started_at = utc_now()
        elif status == "queued":
            self.started_at = self.finished_at = None
        else:
            self.finished_at = utc_now()

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


@dataclass(frozen=True)
class Leases:
    """Who this gateway is to the others on the database, and how long its claims hold unrenewed."""

    gateway_id: str = "local"
    ttl_s: float = 30.0

    def expiry(self) -> float:
        return time.time() + self.ttl_s


class JobStore:
    def __init__(self, engine: Engine, output_dir: Path, progress_write_interval_s: float = 1.0, leases: Leases = Leases()):
        self.engine = engine
        self.output_dir = output_dir
        self.progress_write_interval_s = progress_write_interval_s
        self.leases = leases
        self._live: dict[str, Job] = {}
        self._last_write: dict[str, float] = {}
        self._last_status: dict[str, str] = {}

    @classmethod
    def open(cls, database_url: str, output_dir: Path, progress_write_interval_s: float = 1.0, leases: Leases = Leases()) -> JobStore:
        """Connects to the job database, migrated to the newest schema."""
        return cls(db.open_database(database_url, output_dir), output_dir, progress_write_interval_s, leases)

    def close(self) -> None:
        self.engine.dispose()

    def load(self) -> tuple[list[Job], list[Job]]:
        """At start-up: imports the records of gateways before the database, then claims."""
        self._import_legacy_records()
        return self.claim()

    def claim(self) -> tuple[list[Job], list[Job]]:
        """Takes over the unfinished jobs no live gateway holds: unleased, this gateway's own from
        before a restart, or with an expired lease. Ones left running become failed and partial,
        unless they had not made their folder yet: those are queued again. Returns the queued
        ones, oldest first, for the runner to queue again, and the ones left running, whose
        folders gateway.salvage repairs."""
        now, table = time.time(), db.jobs
        free = sa.or_(table.c.lease_owner.is_(None), table.c.lease_owner == self.leases.gateway_id, table.c.lease_expires_at < now)
        query = (
            sa.select(table.c.record, table.c.cancel_requested)
            .where(table.c.status.in_(UNFINISHED), free, table.c.job_id.not_in(list(self._live)))
            .order_by(table.c.created_at, table.c.job_id)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            records = conn.execute(query).tuples().all()
            ids = [record["job_id"] for record, _ in records]
            if ids:
                lease = {"lease_owner": self.leases.gateway_id, "lease_expires_at": self.leases.expiry()}
                conn.execute(sa.update(table).where(table.c.job_id.in_(ids)).values(**lease))
                # Their runs are over: the shards those left unfinished are planned again when they resume.
                shards = db.shards.c
                conn.execute(sa.update(db.shards).where(shards.job_id.in_(ids), shards.state.in_(UNFINISHED))
                             .values(state="interrupted", lease_owner=None, lease_expires_at=None, updated_at=now))
        waiting, interrupted = [], []
        for record, cancel_requested in records:
            job = Job.model_validate(record)
            self._live[job.job_id] = job
            self._last_status[job.job_id] = job.status
            if cancel_requested:  # asked of another gateway, after this job's own had died
                self.cancel(job)
                if job.output_dir is not None:
                    interrupted.append(job)
            elif job.status == "queued":
                waiting.append(job)
            elif job.output_dir is None:
                # It had made nothing yet (it was waiting for a service, say): it runs again, as
                # a queued job does, rather than fail with nothing to resume.
                self.requeue(job)
                waiting.append(job)
            else:
                self.fail(job, INTERRUPTED, partial=True)
                interrupted.append(job)
        if records:
            log.info("took over %d unfinished jobs (%d still queued)", len(records), len(waiting))
        return waiting, interrupted

    def renew(self) -> tuple[list[str], list[str]]:
        """Extends this gateway's leases on its unfinished jobs. Returns the ones another gateway
        claimed meanwhile (this one stalled past its lease), which it must stop running, and the
        ones another gateway was asked to cancel."""
        ids, table = list(self._live), db.jobs
        if not ids:
            return [], []
        mine = sa.and_(table.c.job_id.in_(ids), table.c.lease_owner == self.leases.gateway_id)
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(mine).values(lease_expires_at=self.leases.expiry()))
            shards = db.shards.c
            running = sa.and_(shards.job_id.in_(ids), shards.lease_owner == self.leases.gateway_id, shards.state == "running")
            conn.execute(sa.update(db.shards).where(running).values(lease_expires_at=self.leases.expiry()))
            held = dict(conn.execute(sa.select(table.c.job_id, table.c.cancel_requested).where(mine)).tuples().all())
        lost = [job_id for job_id in ids if job_id not in held]
        for job_id in lost:
            log.error("job %s was claimed by another gateway while this one held it; stopping it here", job_id)
            self._forget(job_id)
        return lost, [job_id for job_id, asked in held.items() if asked]

    def request_cancel(self, job_id: str) -> None:
        """Asks the gateway that runs the unfinished job to cancel it."""
        table = db.jobs
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.job_id == job_id, table.c.status.in_(UNFINISHED)).values(cancel_requested=True))

    def release(self) -> None:
        """Gives up this gateway's leases at shutdown, so another gateway takes the jobs at once."""
        table = db.jobs
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.lease_owner == self.leases.gateway_id).values(lease_owner=None, lease_expires_at=None))

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
        return self._jobs(query.limit(where.limit).offset(where.offset))

    def unfinished(self, owner: str) -> list[Job]:
        """The owner's queued and running jobs."""
        return self._jobs(sa.select(db.jobs.c.job_id, db.jobs.c.record).where(db.jobs.c.owner == owner, db.jobs.c.status.in_(UNFINISHED)))

    def _jobs(self, query: sa.Select) -> list[Job]:
        """The jobs a query of (job_id, record) selects; ones this gateway runs as it holds them."""
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._live.get(job_id) or Job.model_validate(record) for job_id, record in rows]

    def counts(self) -> dict[str, int]:
        """Jobs by status, in one query."""
        query = sa.select(db.jobs.c.status, sa.func.count()).group_by(db.jobs.c.status)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).tuples().all())

    def shard_counts(self) -> dict[str, int]:
        """Shards of every job's runs by state (gateway/shards.py), in one query."""
        query = sa.select(db.shards.c.state, sa.func.count()).group_by(db.shards.c.state)
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
            conn.execute(sa.delete(db.shards).where(db.shards.c.job_id == job_id))
        self._forget(job_id)

    def fail(self, job: Job, error: str, partial: bool) -> None:
        """Records a job that ended without running to its end, for `error`."""
        job.move_to("failed")
        job.error = job.message = error
        job.partial = partial
        self._write(job)

    def cancel(self, job: Job, reason: str = CANCELLED) -> None:
        """Records a job that was cancelled before it could run to its end."""
        job.move_to("cancelled")
        job.message = reason
        # A resumed job has its folder, with what its earlier runs made, before this run starts.
        job.partial = job.output_dir is not None
        self._write(job)

    def requeue(self, job: Job) -> None:
        """Records a job the gateway stopped before it had made anything as queued again, for
        the next gateway to run from the start."""
        if job.status != "queued":
            job.move_to("queued")
            job.progress, job.message = 0, REQUEUED
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
        # A finished job is nobody's; an unfinished one is this gateway's while it renews the lease.
        lease = {"lease_owner": None, "lease_expires_at": None, "cancel_requested": False}
        if not job.finished:
            lease = {"lease_owner": self.leases.gateway_id, "lease_expires_at": self.leases.expiry()}
        table = db.jobs
        mine = sa.or_(table.c.lease_owner.is_(None), table.c.lease_owner == self.leases.gateway_id)
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(table).where(table.c.job_id == job.job_id, mine).values(status=job.status, record=record, **lease)
            ).rowcount
            if not updated:
                if conn.execute(sa.select(table.c.job_id).where(table.c.job_id == job.job_id)).first() is not None:
                    log.error("not recording job %s: another gateway holds it now", job.job_id)
                    self._forget(job.job_id)
                    return
                _insert_job(conn, job, record, **lease)
            _append_event(conn, job, kind)
        self._last_write[job.job_id] = time.monotonic()
        self._last_status[job.job_id] = job.status
        if job.finished:
            self._live.pop(job.job_id, None)
        else:
            self._live[job.job_id] = job

    def _forget(self, job_id: str) -> None:
        for memo in (self._live, self._last_write, self._last_status):
            memo.pop(job_id, None)

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


def _insert_job(conn: sa.Connection, job: Job, record: dict, **lease) -> None:
    values = dict(job_id=job.job_id, type=job.type, status=job.status, created_at=job.created_at, owner=job.owner, record=record)
    conn.execute(sa.insert(db.jobs).values(**values, **lease))


def _append_event(conn: sa.Connection, job: Job, kind: str) -> None:
    conn.execute(sa.insert(db.job_events).values(job_id=job.job_id, at=utc_now(), kind=kind, data=event_data(job)))
