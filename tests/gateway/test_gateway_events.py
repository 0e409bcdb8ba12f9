"""GET /jobs/{id}/events on the real gateway and text service: Server-Sent Events read back with a
plain HTTP client, as an EventSource would."""

from __future__ import annotations

import json

import httpx

from gateway.jobs import JobEvent
from gateway.routes.events import RateMeter
from tests.conftest import cancelled_part_way

TEXT_JOB = {"schema": {"name": "string", "age": "int"}, "num_samples": 40, "output_format": "jsonl"}


def read_events(client: httpx.Client, job_id: str, **headers: str) -> list[dict]:
    """The whole stream, which must end by itself; each event as {id, event, data}."""
    events, current = [], {}
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "data" in current:
                    events.append(current)
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                current[field] = json.loads(value) if field == "data" else value.strip()
    return events


def test_a_job_streams_its_states_in_order_and_the_stream_ends_when_it_completes(api):
    job_id = api.post("/generate/text", json=TEXT_JOB).json()["job_id"]
    events = read_events(api, job_id)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    states = [e["data"]["status"] for e in events if e["event"] == "state"]
    assert states[0] == "queued" and states[-1] == "completed", states
    assert events[-1]["event"] == "state"
    last = events[-1]["data"]
    assert last["job_id"] == job_id and last["progress"] == 100
    assert last["stats"]["rows_done"] == 40
    assert api.get(f"/status/{job_id}").json()["status"] == "completed"


def test_a_reconnect_with_last_event_id_gets_only_the_events_after_it(api):
    job_id = api.post("/generate/text", json=TEXT_JOB).json()["job_id"]
    everything = read_events(api, job_id)
    assert len(everything) >= 2
    rest = read_events(api, job_id, **{"Last-Event-ID": everything[0]["id"]})
    assert [e["id"] for e in rest] == [e["id"] for e in everything[1:]]
    assert read_events(api, job_id, **{"Last-Event-ID": everything[-1]["id"]}) == []


def test_a_resumed_job_streams_past_its_first_end_to_its_last(api):
    job_id, _ = cancelled_part_way(api, "text", {**TEXT_JOB, "num_samples": 3000}, "rows_done")
    assert api.post(f"/jobs/{job_id}/resume").status_code == 202
    states = [e["data"]["status"] for e in read_events(api, job_id) if e["event"] == "state"]
    assert "cancelled" in states and states[-1] == "completed", states


def test_events_of_an_unknown_job_are_a_404_naming_it(api):
    response = api.get("/jobs/0123456789abcdef/events")
    assert response.status_code == 404
    assert "0123456789abcdef" in response.json()["detail"]


def event(at: str, done: int, total: int, status: str = "running") -> JobEvent:
    return JobEvent(1, "j", at, "progress", {"status": status, "stats": {"rows_done": done, "rows_total": total}})


def test_rate_and_eta_follow_the_rows_done_between_events():
    meter = RateMeter()
    assert meter.add(event("2026-01-01T00:00:00.000000Z", 0, 300)) == {"rate_per_s": None, "eta_s": None}
    assert meter.add(event("2026-01-01T00:00:02.000000Z", 100, 300)) == {"rate_per_s": 50.0, "eta_s": 4.0}
    assert meter.add(event("2026-01-01T00:00:04.000000Z", 300, 300, "completed")) == {"rate_per_s": 75.0, "eta_s": None}
