"""Admission: whether a request or a new job may go ahead. The gateway-wide backlog
(SDG_MAX_QUEUED_JOBS) and, with API keys on, the caller's own limits (SDG_KEY_*, or the key's
`limits`). Past one, LimitReached: 429 with Retry-After and the limit's name. Request counts are
kept per gateway process; job counts are read from the job database, so they hold across gateways."""

from __future__ import annotations

import math
import time
from collections import deque

from gateway.errors import LimitReached
from gateway.jobs import JobStore
from gateway.keys import ApiKey, KeyLimits
from gateway.plans import JobPlan, stored_plan
from gateway.settings import GatewaySettings

# A guess at how soon a queue slot frees up; a client that retries sooner is refused again.
QUEUE_RETRY_AFTER_S = 30
WINDOW_S = 60.0


def limits_of(key: ApiKey, settings: GatewaySettings) -> KeyLimits:
    """The key's limits, each unset one the gateway's default."""
    defaults = KeyLimits(
        requests_per_minute=settings.key_requests_per_minute,
        max_queued_jobs=settings.key_max_queued_jobs,
        max_rows_in_flight=settings.key_max_rows_in_flight,
        max_images_in_flight=settings.key_max_images_in_flight,
    )
    return defaults.model_copy(update=key.limits.model_dump(exclude_none=True))


def _limit_name(key: ApiKey, field: str) -> str:
    """The setting that sets a limit, or the key's own limit that overrides it."""
    return f"limits.{field} of key {key.name}" if getattr(key.limits, field) is not None else f"SDG_KEY_{field.upper()}"


def planned(plan: JobPlan) -> tuple[int, int]:
    """The rows and images a plan asks for."""
    return (plan.rows, plan.images.num_images if plan.images else 0)


class RequestRate:
    """Each key's requests over the last minute, a sliding window of their times."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key: ApiKey, settings: GatewaySettings) -> None:
        allowed = limits_of(key, settings).requests_per_minute
        now = time.monotonic()
        seen = self._seen.setdefault(key.key_id, deque())
        while seen and seen[0] <= now - WINDOW_S:
            seen.popleft()
        if len(seen) >= allowed:
            wait = math.ceil(seen[0] + WINDOW_S - now)
            reason = f"key {key.name} made {len(seen)} requests in the last minute, the most it may"
            raise LimitReached(_limit_name(key, "requests_per_minute"), reason, max(wait, 1))
        seen.append(now)


def admit_job(plan: JobPlan, caller: ApiKey | None, settings: GatewaySettings, store: JobStore) -> None:
    """Raises LimitReached when the job would take the gateway or the caller past a limit."""
    queued = store.count("queued")
    if queued >= settings.max_queued_jobs:
        reason = f"{queued} jobs are queued, the most this gateway accepts; retry once some have started"
        raise LimitReached("SDG_MAX_QUEUED_JOBS", reason, QUEUE_RETRY_AFTER_S)
    if caller is None:
        return
    limits = limits_of(caller, settings)
    jobs = store.unfinished(caller.key_id)
    queued = sum(job.status == "queued" for job in jobs)
    if queued >= limits.max_queued_jobs:
        reason = f"key {caller.name} has {queued} jobs queued, the most it may; retry once some have started"
        raise LimitReached(_limit_name(caller, "max_queued_jobs"), reason, QUEUE_RETRY_AFTER_S)
    # What its unfinished jobs were asked for, whole: a resumed job counts as its first run did.
    asked = planned(plan)
    in_flight = [planned(stored_plan(job.type, job.request, settings)) for job in jobs]
    for i, (field, what) in enumerate((("max_rows_in_flight", "rows"), ("max_images_in_flight", "images"))):
        allowed, total = getattr(limits, field), asked[i] + sum(counts[i] for counts in in_flight)
        if asked[i] and total > allowed:
            reason = f"key {caller.name} would have {total} {what} in flight with this job's {asked[i]}, past the {allowed} it may"
            raise LimitReached(_limit_name(caller, field), reason, QUEUE_RETRY_AFTER_S)
