"""GET /jobs/{id}/events: a job's state and progress as Server-Sent Events, read from the job
database, so any gateway on it can stream any job."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, JSONServerSentEvent

from gateway.deps import OwnedJobDep, StoreDep
from gateway.errors import JobNotFound
from gateway.jobs import JobEvent, JobStore

router = APIRouter(tags=["jobs"])

POLL_INTERVAL_S = 0.5
PING_INTERVAL_S = 15
# Rate is measured over the last few progress events, so it follows a job that speeds up.
RATE_WINDOW = 10


class RateMeter:
    """Items per second and seconds left, from the events of one job seen so far."""

    def __init__(self) -> None:
        self.points: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)

    def add(self, event: JobEvent) -> dict:
        stats = event.data.get("stats", {})
        done = stats.get("rows_done", 0) + stats.get("images_done", 0)
        total = stats.get("rows_total", 0) + stats.get("images_total", 0)
        self.points.append((datetime.fromisoformat(event.at).timestamp(), done))
        (t0, done0), (t1, done1) = self.points[0], self.points[-1]
        rate = (done1 - done0) / (t1 - t0) if t1 > t0 and done1 > done0 else None
        eta = (total - done1) / rate if rate and event.data.get("status") == "running" else None
        return {"rate_per_s": round(rate, 3) if rate else None, "eta_s": round(eta, 1) if eta is not None else None}


async def job_events(store: JobStore, job_id: str, after: int, request: Request) -> AsyncIterator[JSONServerSentEvent]:
    """Every event after `after`, then new ones as they are written, until the job has finished
    and nothing follows (a finished job that was resumed goes on)."""
    meter = RateMeter()
    while True:
        events = await asyncio.to_thread(store.events_after, job_id, after)
        for event in events:
            after = event.id
            data = {"job_id": job_id, "at": event.at, **event.data, **meter.add(event)}
            yield JSONServerSentEvent(data=data, event=event.kind, id=str(event.id))
        if events:
            continue
        try:
            finished = store.get(job_id).finished
        except JobNotFound:  # deleted while streamed
            return
        if await request.is_disconnected() or finished and not store.events_after(job_id, after):
            return
        await asyncio.sleep(POLL_INTERVAL_S)


@router.get(
    "/jobs/{job_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`state` and `progress` events, each a JSON object; the stream ends when the job finishes"},
        404: {"description": "Unknown job"},
    },
)
async def stream_job_events(
    job: OwnedJobDep,
    store: StoreDep,
    request: Request,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> EventSourceResponse:
    """The job's events from the start (or after `Last-Event-ID`, as a reconnecting EventSource
    sends), each with its rate and ETA. Takes the API key as ?api_key= too, for EventSource."""
    return EventSourceResponse(job_events(store, job.job_id, last_event_id or 0, request), ping=PING_INTERVAL_S)
