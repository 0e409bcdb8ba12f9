"""JobStore on both databases, without any service: jobs survive a restart, unfinished jobs come
back failed and partial, progress writes are throttled, pages and events read back in order, and
the JSON records of gateways before the database are imported once."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import sqlalchemy as sa

from gateway import db
from gateway.errors import JobNotFound
from gateway.jobs import IMPORTED_JOBS_DIR, INTERRUPTED, IllegalTransition, Job, JobFilter, JobStore, Leases


def stored_record(store: JobStore, job_id: str) -> dict:
    """What the database holds, not the store's memory."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(db.jobs.c.record).where(db.jobs.c.job_id == job_id)).scalar_one()


@pytest.fixture
def open_store(database_url, tmp_path):
    stores = []

    def opened(**kwargs) -> JobStore:
        stores.append(JobStore.open(database_url, tmp_path, **kwargs))
        return stores[-1]

    yield opened
    for store in stores:
        store.close()


def test_a_job_moves_only_along_its_lifecycle_and_keeps_its_times():
    job = Job(job_id="job_000000000001", type="text", status="queued", created_at="2026-01-01T00:00:00Z")
    job.move_to("running")
    assert job.started_at and job.finished_at is None
    job.move_to("completed")
    assert job.finished_at
    for illegal in ("running", "failed", "cancelled", "completed"):
        with pytest.raises(IllegalTransition, match=f"cannot go from completed to {illegal}"):
            job.move_to(illegal)
    job.move_to("queued")  # resumed
    assert (job.status, job.started_at, job.finished_at) == ("queued", None, None)
    with pytest.raises(IllegalTransition):
        job.move_to("completed")


def test_jobs_survive_a_restart(open_store):
    store = open_store()
    store.load()
    job = store.create("text", {"num_samples": 5}, "Text generation job queued")
    assert re.fullmatch(r"job_[0-9a-f]{12}", job.job_id)
    assert job.created_at.endswith("Z")
    job.status, job.progress, job.output_path = "completed", 100, "generated_data/text_data_x/"
    store.save(job)

    reloaded = open_store()
    reloaded.load()
    again = reloaded.get(job.job_id)
    assert again.status == "completed" and again.progress == 100 and again.request == {"num_samples": 5}
    assert again.output_path == "generated_data/text_data_x/"


def test_running_jobs_become_failed_and_partial_on_load_and_queued_ones_wait_again(open_store, tmp_path):
    store = open_store()
    store.load()
    queued = [store.create("images", {}, "queued"), store.create("text", {}, "queued")]
    running = store.create("unified", {}, "queued")
    running.status, running.output_dir = "running", str(tmp_path / "unified_folder")
    store.save(running)
    # Running, but it had not made its folder yet (it was waiting for a service): queued again.
    waited = store.create("text", {}, "queued")
    waited.status, waited.started_at, waited.progress = "running", "2026-01-01T00:00:00Z", 3
    store.save(waited)
    done = store.create("text", {}, "queued")
    done.status = "completed"
    store.save(done)

    reloaded = open_store()
    waiting, interrupted = reloaded.load()
    assert [j.job_id for j in interrupted] == [running.job_id]
    job = reloaded.get(running.job_id)
    assert (job.status, job.error, job.partial) == ("failed", INTERRUPTED, True)
    assert job.finished_at is not None
    # The marking is persisted, not only held in memory.
    assert stored_record(reloaded, running.job_id)["status"] == "failed"
    # Jobs that never started, or made nothing, are handed back, oldest first, queued.
    assert [j.job_id for j in waiting] == [j.job_id for j in [*queued, waited]]
    assert {reloaded.get(j.job_id).status for j in [*queued, waited]} == {"queued"}
    again = reloaded.get(waited.job_id)
    assert (again.started_at, again.progress, again.partial, again.error) == (None, 0, False, None)
    assert "queued again" in again.message
    assert stored_record(reloaded, waited.job_id)["status"] == "queued"
    assert reloaded.get(done.job_id).status == "completed"


def test_progress_writes_are_throttled_but_memory_is_current(open_store):
    store = open_store(progress_write_interval_s=3600)
    store.load()
    job = store.create("text", {}, "queued")
    job.progress = 42
    store.save_progress(job)
    assert store.get(job.job_id).progress == 42
    assert stored_record(store, job.job_id)["progress"] == 0
    store.save(job)  # a state change is written at once
    assert stored_record(store, job.job_id)["progress"] == 42


def test_pages_are_newest_first_and_filtered(open_store):
    store = open_store()
    store.load()
    ids = [store.create("text" if i % 2 else "images", {}, "queued").job_id for i in range(5)]
    assert [job.job_id for job in store.page(JobFilter())] == ids[::-1]
    assert [job.job_id for job in store.page(JobFilter(limit=2, offset=1))] == ids[::-1][1:3]
    assert [job.job_id for job in store.page(JobFilter(type="text"))] == [ids[3], ids[1]]
    finished = store.get(ids[0])
    finished.status = "completed"
    store.save(finished)
    assert [job.job_id for job in store.page(JobFilter(status="completed"))] == [ids[0]]
    assert store.count("queued") == 4 and store.count("queued", "completed") == 5
    with pytest.raises(JobNotFound):
        store.get("job_000000000000")


def test_every_write_is_an_event_and_state_changes_say_so(open_store):
    store = open_store()
    store.load()
    job = store.create("text", {}, "queued")
    job.status = "running"
    store.save(job)
    job.progress = 50
    store.save(job)
    job.status, job.progress = "completed", 100
    store.save(job)
    events = store.events_after(job.job_id)
    assert [(e.kind, e.data["status"], e.data["progress"]) for e in events] == [
        ("state", "queued", 0), ("state", "running", 0), ("progress", "running", 50), ("state", "completed", 100),
    ]
    assert [e.id for e in store.events_after(job.job_id, after=events[1].id)] == [events[2].id, events[3].id]
    # Another gateway's store sees the finished job and its events.
    other = open_store()
    assert other.get(job.job_id).status == "completed" and len(other.events_after(job.job_id)) == 4
    store.delete(job.job_id)
    assert other.events_after(job.job_id) == []
    with pytest.raises(JobNotFound):
        other.get(job.job_id)


def test_a_live_gateways_jobs_are_not_claimed_until_its_lease_expires(open_store):
    first = open_store(leases=Leases("first", ttl_s=0.5))
    first.load()
    job = first.create("text", {}, "queued")
    second = open_store(leases=Leases("second", ttl_s=0.5))
    assert second.load() == ([], [])
    assert first.renew() == ([], [])
    time.sleep(0.6)  # the first gateway stops renewing: it died
    waiting, interrupted = second.claim()
    assert [j.job_id for j in waiting] == [job.job_id] and interrupted == []
    # The first gateway wakes up: it learns the job is gone, and its writes are dropped.
    assert first.renew() == ([job.job_id], [])
    job.status = "cancelled"
    first.save(job)
    assert stored_record(second, job.job_id)["status"] == "queued"
    assert second.claim() == ([], [])  # it holds the job now


def test_a_gateway_that_shuts_down_hands_its_jobs_over_at_once(open_store):
    first = open_store(leases=Leases("first", ttl_s=3600))
    first.load()
    job = first.create("images", {}, "queued")
    second = open_store(leases=Leases("second", ttl_s=3600))
    assert second.load() == ([], [])
    first.release()
    assert [j.job_id for j in second.claim()[0]] == [job.job_id]


def test_a_restarted_gateway_takes_back_its_own_jobs_without_waiting(open_store):
    before = open_store(leases=Leases("same", ttl_s=3600))
    before.load()
    job = before.create("text", {}, "queued")
    after = open_store(leases=Leases("same", ttl_s=3600))
    assert [j.job_id for j in after.load()[0]] == [job.job_id]


def test_a_cancel_asked_of_another_gateway_reaches_the_one_running_the_job(open_store):
    running = open_store(leases=Leases("running", ttl_s=0.5))
    running.load()
    job, other = running.create("text", {}, "queued"), running.create("text", {}, "queued")
    asked = open_store(leases=Leases("asked", ttl_s=0.5))
    asked.load()
    asked.request_cancel(job.job_id)
    assert running.renew() == ([], [job.job_id])
    # Its gateway dies before it sees the request: the one that claims the job cancels it.
    asked.request_cancel(other.job_id)
    time.sleep(0.6)
    assert asked.claim() == ([], [])
    assert asked.get(job.job_id).status == asked.get(other.job_id).status == "cancelled"


def test_gateways_claiming_at_once_never_take_the_same_job(open_store):
    maker = open_store(leases=Leases("maker", ttl_s=0.2))
    maker.load()
    ids = {maker.create("text", {}, "queued").job_id for _ in range(40)}
    time.sleep(0.3)
    claimants = [open_store(leases=Leases(f"claimant{i}", ttl_s=3600)) for i in range(4)]
    claimed: list[list[str]] = [[] for _ in claimants]

    def claim(i: int) -> None:
        for _ in range(5):
            claimed[i] += [job.job_id for job in claimants[i].claim()[0]]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [job_id for ids_ in claimed for job_id in ids_]
    assert sorted(every) == sorted(ids)  # each once, none left


def test_json_records_of_older_gateways_are_imported_once(open_store, tmp_path):
    legacy = tmp_path / ".jobs"
    legacy.mkdir()
    old = Job(job_id="job_00000000000a", type="text", status="completed", created_at="2026-01-01T00:00:00.000000Z", request={"num_samples": 3})
    (legacy / f"{old.job_id}.json").write_text(old.model_dump_json())
    (legacy / "job_0123456789ab.json").write_text("{not json")  # kept for a person, not fatal
    store = open_store()
    store.load()
    assert store.get(old.job_id).request == {"num_samples": 3}
    assert not legacy.exists()
    assert sorted(p.name for p in (tmp_path / IMPORTED_JOBS_DIR).iterdir()) == [f"{old.job_id}.json", "job_0123456789ab.json"]
    store.delete(old.job_id)
    # A second start imports nothing again: the deleted job stays deleted.
    again = open_store()
    again.load()
    assert again.page(JobFilter()) == []
    assert json.loads((tmp_path / IMPORTED_JOBS_DIR / f"{old.job_id}.json").read_text())["job_id"] == old.job_id
