"""JobStore persistence without any service: records survive a restart, unfinished jobs come back
failed and partial, writes are atomic and progress writes throttled."""

from __future__ import annotations

import json
import re

import pytest

from gateway.errors import JobNotFound
from gateway.jobs import INTERRUPTED, JobStore


def test_jobs_survive_a_restart(tmp_path):
    store = JobStore(tmp_path)
    store.load()
    job = store.create("text", {"num_samples": 5}, "Text generation job queued")
    assert re.fullmatch(r"job_[0-9a-f]{12}", job.job_id)
    assert job.created_at.endswith("Z")
    job.status, job.progress, job.output_path = "completed", 100, "generated_data/text_data_x/"
    store.save(job)

    reloaded = JobStore(tmp_path)
    reloaded.load()
    again = reloaded.get(job.job_id)
    assert again.status == "completed" and again.progress == 100 and again.request == {"num_samples": 5}
    assert again.output_path == "generated_data/text_data_x/"


def test_running_jobs_become_failed_and_partial_on_load_and_queued_ones_wait_again(tmp_path):
    store = JobStore(tmp_path)
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

    reloaded = JobStore(tmp_path)
    waiting, interrupted = reloaded.load()
    assert [j.job_id for j in interrupted] == [running.job_id]
    job = reloaded.get(running.job_id)
    assert (job.status, job.error, job.partial) == ("failed", INTERRUPTED, True)
    assert job.finished_at is not None
    # The marking is persisted, not only held in memory.
    assert json.loads((tmp_path / f"{running.job_id}.json").read_text())["status"] == "failed"
    # Jobs that never started, or made nothing, are handed back, oldest first, queued.
    assert [j.job_id for j in waiting] == [j.job_id for j in [*queued, waited]]
    assert {reloaded.get(j.job_id).status for j in [*queued, waited]} == {"queued"}
    again = reloaded.get(waited.job_id)
    assert (again.started_at, again.progress, again.partial, again.error) == (None, 0, False, None)
    assert "queued again" in again.message
    assert json.loads((tmp_path / f"{waited.job_id}.json").read_text())["status"] == "queued"
    assert reloaded.get(done.job_id).status == "completed"


def test_writes_leave_no_temporary_files(tmp_path):
    store = JobStore(tmp_path)
    store.load()
    job = store.create("text", {}, "queued")
    for progress in range(5):
        job.progress = progress
        store.save(job)
    assert [p.name for p in tmp_path.iterdir()] == [f"{job.job_id}.json"]


def test_progress_writes_are_throttled_but_memory_is_current(tmp_path):
    store = JobStore(tmp_path, progress_write_interval_s=3600)
    store.load()
    job = store.create("text", {}, "queued")
    job.progress = 42
    store.save_progress(job)
    assert store.get(job.job_id).progress == 42
    assert json.loads((tmp_path / f"{job.job_id}.json").read_text())["progress"] == 0
    store.save(job)  # a state change is written at once
    assert json.loads((tmp_path / f"{job.job_id}.json").read_text())["progress"] == 42


def test_newest_first_and_unknown_jobs(tmp_path):
    store = JobStore(tmp_path)
    store.load()
    ids = [store.create("text", {}, "queued").job_id for _ in range(3)]
    assert [job.job_id for job in store.newest_first()] == ids[::-1]
    with pytest.raises(JobNotFound):
        store.get("job_000000000000")


def test_an_unreadable_record_is_skipped_not_fatal(tmp_path):
    (tmp_path / "job_0123456789ab.json").write_text("{not json")
    store = JobStore(tmp_path)
    store.load()
    assert store.newest_first() == []
    assert (tmp_path / "job_0123456789ab.json").exists()
