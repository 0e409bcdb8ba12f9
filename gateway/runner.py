"""JobRunner: runs jobs as asyncio background tasks, at most `max_concurrent_jobs` at a time per
model service (the rest stay queued; gateway/slots.py), and cancels them on request or at shutdown.
Its heartbeat renews the leases of its jobs and takes over those of gateways that stopped renewing
theirs (gateway/jobs.py). What a job does is in execution.py."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from gateway.clients import ServiceClients, ServiceKind
from gateway.errors import JobConflict, ReplicaLost
from gateway.execution import SHUTDOWN, JobExecution, kept_in_words
from gateway.failover import Failover
from gateway.jobs import CANCELLED, REQUEUED, Job, JobStore, utc_now
from gateway.models import DeletedJob, Resume
from gateway.plans import JobPlan, stored_plan
from gateway.resume import check_resumable, kept_images, kept_rows, resume_plan, rows_seed
from gateway.salvage import salvage
from gateway.settings import GatewaySettings
from gateway.slots import ServiceSlots
from sdg.logs import context_with

log = logging.getLogger(__name__)

# How long POST /jobs/{id}/cancel waits for the job to wind down, so its answer shows the outcome.
CANCEL_WAIT_S = 10.0
LEASE_LOST = "stopped: another gateway took the job over"


def stuck(job: Job) -> bool:
    """Whether the gateway's own last two resumes of `job` each ended with nothing more done: the
    job likely brings the gateway down, and is left for a person to resume."""
    last = job.resumes[-2:]
    kept = (kept_rows(job) if job.type != "images" else None, kept_images(job) if job.type != "text" else None)
    return len(last) == 2 and all(r.automatic and (r.rows_kept, r.images_kept) == kept for r in last)


def first_service(job: Job, plan: JobPlan) -> ServiceKind:
    """The service a job uses first: a resumed unified job whose rows are all kept goes straight
    to its images."""
    if plan.text is None:
        return "image" if plan.tables is None else "text"
    kept = job.resumes[-1].rows_kept if job.resumes else None
    return "image" if plan.images is not None and kept is not None and kept >= plan.text.num_rows else "text"


class JobRunner:
    def __init__(self, settings: GatewaySettings, store: JobStore, clients: ServiceClients):
        self.settings = settings
        self.store = store
        self.clients = clients
        self._slots = ServiceSlots(settings.max_concurrent_jobs)
        self._running: dict[str, tuple[asyncio.Task, JobExecution]] = {}
        self._failover = Failover(settings.max_attempts, self.resume, clients.metrics.failovers)

    def take_over(self, waiting: list[Job], interrupted: list[Job]) -> None:
        """Runs the jobs JobStore.claim took: the interrupted ones' folders are repaired and, unless
        they were cancelled or SDG_RESUME_INTERRUPTED=false, they resume first; the waiting ones
        queue again."""
        for job in interrupted:
            try:
                salvage(job)
            except Exception:  # a folder it cannot read must not keep the gateway from running
                log.exception("could not repair the folder of interrupted job %s", job.job_id)
            self.store.save(job)
        self.resume_interrupted([job for job in interrupted if job.status == "failed"])  # not cancelled ones
        self.requeue(waiting)

    async def keep_leases(self) -> None:
        """The heartbeat: renews this gateway's leases, stops the jobs another gateway took from
        it, and takes over the jobs of gateways whose leases expired."""
        while True:
            await asyncio.sleep(self.settings.lease_ttl_s / 3)
            try:
                lost, cancels = self.store.renew()
                for job_id in lost:
                    self._stop(job_id, LEASE_LOST)
                for job_id in cancels:
                    self._stop(job_id, CANCELLED)
                self.take_over(*self.store.claim())
            except SQLAlchemyError:
                log.exception("could not renew job leases; trying again")

    def requeue(self, jobs: list[Job]) -> None:
        """Queues again, in their order, the jobs a previous gateway left queued (they had not
        started). A request today's settings refuse fails, naming why."""
        for job in jobs:
            try:
                if job.resumes:
                    plan = resume_plan(job, self.settings)
                else:
                    plan = stored_plan(job.type, job.request or {}, self.settings)
            except (ValueError, JobConflict) as err:  # pydantic's ValidationError is a ValueError too
                self.store.fail(job, f"could not be queued again after a restart: {err}", partial=kept_images(job) + kept_rows(job) > 0)
                continue
            job.message = REQUEUED
            self.store.save(job)
            self.submit(job, plan)
        if jobs:
            log.info("queued %d jobs again from before the restart", len(jobs))

    def resume(self, job_id: str, start: bool = True, automatic: bool = False, failover: ReplicaLost | None = None) -> Job:
        """Queues a stopped job again, to generate the rows and images it lacks into its own folder
        (gateway/resume.py). Raises JobConflict saying why when it cannot be. `start=False` only
        records it as queued to resume, for the next gateway to run; `failover` is the replica
        loss that stopped it (gateway/failover.py)."""
        job = self.store.get(job_id)
        check_resumable(job)
        plan = resume_plan(job, self.settings)
        resume = Resume(at=utc_now(), automatic=automatic)
        if failover is not None:
            resume.failover_from, resume.failover_reason = failover.address, str(failover)
        if plan.text is not None:
            resume.rows_kept = kept_rows(job)
            if resume.rows_kept < plan.text.num_rows and job.output_dir is not None:
                resume.rows_seed = rows_seed(plan.text.seed, len(job.resumes) + 1)
        if plan.images is not None:
            resume.images_kept = kept_images(job)
        job.resumes.append(resume)
        # Its files stay listed: they are in its folder until the resumed run rewrites them.
        job.move_to("queued")
        job.error, job.partial = None, False
        job.message = f"queued to resume: {kept_in_words(resume, plan)} kept"
        if failover is not None:
            job.message = f"failing over from the {failover.kind} service at {failover.address}, which went away; {job.message}"
        self.store.save(job)
        if start:
            self.submit(job, plan)
        return job

    def resume_interrupted(self, jobs: list[Job], start: bool = True) -> None:
        """Queues the jobs a shutdown or crash stopped to resume (unless SDG_RESUME_INTERRUPTED=false)."""
        if not self.settings.resume_interrupted:
            return
        for job in jobs:
            if stuck(job):
                log.warning("interrupted job %s is not resumed: twice resumed at a start and stopped again with no more done", job.job_id)
                continue
            try:
                self.resume(job.job_id, start, automatic=True)
            except JobConflict as err:
                log.warning("interrupted job %s is not resumed: %s", job.job_id, err)
            else:
                log.info("interrupted job %s queued to resume", job.job_id)

    def submit(self, job: Job, plan: JobPlan) -> None:
        execution = JobExecution(job, plan, self.store, self.clients, self.settings, fail_over=self._failover)
        task = asyncio.create_task(self._run(execution), name=f"sdg-{job.job_id}", context=context_with(job_id=job.job_id))
        self._running[job.job_id] = (task, execution)
        task.add_done_callback(lambda done: self._on_done(done, execution))

    async def _run(self, execution: JobExecution) -> None:
        slot = self._slots.holder(execution.job.owner)
        try:
            # Queued until its first service has a slot free.
            await slot.take(first_service(execution.job, execution.plan))
            execution.slot = slot
            await execution.run()
        finally:
            slot.release()

    def _on_done(self, task: asyncio.Task, execution: JobExecution) -> None:
        if self._running.get(execution.job.job_id, (None, execution))[1] is execution:  # not its failover's
            self._running.pop(execution.job.job_id, None)
        if execution.job.finished:
            return
        # run() records every outcome itself; the job is unfinished only when it never started (it
        # was cancelled while queued), when run() queued it again (the gateway stopped it before
        # it had made anything, or its failover resumed it), or when recording the outcome failed
        # (e.g. the disk is full).
        if task.cancelled():
            execution.stop_unstarted()
        elif (err := task.exception()) is not None:
            log.error("job %s crashed", execution.job.job_id, exc_info=err)
            execution.stop_unstarted(f"internal error: {type(err).__name__}: {err}")

    async def delete(self, job_id: str, keep_files: bool) -> DeletedJob:
        """Forgets a finished job and, unless `keep_files`, deletes its output folder. A folder
        outside the output root (moved there by hand, or a root changed since) is never deleted.
        Raises JobConflict for a job that is queued or running."""
        job = self.store.get(job_id)
        if not job.finished or job_id in self._running:
            raise JobConflict(f"job {job_id} is {job.status}; cancel it before deleting it")
        folder = Path(job.output_dir).resolve() if job.output_dir else None
        root = self.settings.output_dir.resolve()
        deleted = False
        if not keep_files and folder is not None and folder.is_dir() and folder.is_relative_to(root) and folder != root:
            await asyncio.to_thread(shutil.rmtree, folder)  # thousands of files: off the event loop
            deleted = True
        self.store.delete(job_id)
        message = f"deleted job {job_id}"
        if deleted:
            message += f" and its folder {job.output_path}"
        elif folder is not None and folder.is_dir():
            message += f"; its folder {job.output_path} is kept"
        return DeletedJob(job_id=job_id, files_deleted=deleted, message=message)

    async def cancel(self, job_id: str) -> Job:
        """Cancels the job here, or asks the gateway that runs it to; waits a while for the outcome."""
        job = self.store.get(job_id)
        if job.finished:
            raise JobConflict(f"job {job_id} is already {job.status}")
        task = self._stop(job_id, CANCELLED)
        if task is not None:
            await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
            return job
        self.store.request_cancel(job_id)
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_S
        while not job.finished and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.25)
            job = self.store.get(job_id)
        return job

    def _stop(self, job_id: str, reason: str) -> asyncio.Task | None:
        """Stops the job's task here, if it runs here, for `reason`."""
        entry = self._running.get(job_id)
        if entry is None:
            return None
        task, execution = entry
        execution.stop_reason = reason
        task.cancel()
        return task

    async def shutdown(self) -> None:
        """Stops every job. Running ones are recorded as failed with "interrupted: gateway shut
        down"; queued ones stay queued on disk, and the next gateway runs them."""
        entries = list(self._running.values())
        for task, execution in entries:
            execution.stop_reason = SHUTDOWN
            task.cancel()
        if entries:
            log.info("stopping %d unfinished jobs", len(entries))
            await asyncio.gather(*(task for task, _ in entries), return_exceptions=True)
            # Recorded as queued to resume, for the next gateway's requeue to run.
            stopped = [execution.job for _, execution in entries if execution.job.error == SHUTDOWN]
            self.resume_interrupted(stopped, start=False)
        self.store.release()
