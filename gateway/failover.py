"""Failover: a job whose replica went away mid-stream (ReplicaLost) is resumed at once, as
POST /jobs/{id}/resume would, keeping what it made. ServicePool.next gives the resumed run a
serving replica other than the lost one where there is one; with one replica, the run waits for
it to come back (SDG_SERVICE_START_WAIT_S). After SDG_MAX_ATTEMPTS attempts in a row that each
lost their replica, the job fails with the last loss."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter

from gateway.errors import JobConflict, ReplicaLost
from gateway.jobs import Job

log = logging.getLogger(__name__)


def attempt(job: Job) -> int:
    """Which attempt in a row the job's run is: 1, plus the failovers that led straight to it."""
    failovers = 0
    for resume in reversed(job.resumes):
        if resume.failover_from is None:
            break
        failovers += 1
    return failovers + 1


def failovers(job: Job) -> int:
    """How many times the job was failed over, in all."""
    return sum(1 for resume in job.resumes if resume.failover_from is not None)


class Failover:
    """Called by a job's run as it fails on a lost replica: resumes it (`resume` is
    JobRunner.resume) and says True, or says False when the job has had its attempts."""

    def __init__(self, max_attempts: int, resume: Callable[..., Job], counter: Counter):
        self.max_attempts = max_attempts
        self.resume = resume
        self.counter = counter

    def __call__(self, job: Job, lost: ReplicaLost) -> bool:
        tried = attempt(job)
        if tried >= self.max_attempts:
            log.warning("job %s lost its replica on attempt %d of %d; not failing over again", job.job_id, tried, self.max_attempts)
            return False
        try:
            self.resume(job.job_id, automatic=True, failover=lost)
        except JobConflict as err:
            log.warning("job %s lost its replica and cannot be resumed: %s", job.job_id, err)
            return False
        self.counter.labels(lost.kind).inc()
        log.warning("job %s lost the %s service at %s; failing over (attempt %d of %d)", job.job_id, lost.kind, lost.address, tried + 1, self.max_attempts)
        return True
