"""The bounded backlog on a real gateway and text service: past SDG_MAX_QUEUED_JOBS a submit is
429 with Retry-After, and accepted again once the queue has room."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import start_gateway, wait_for_job

LONG = {"schema": {"name": "string", "age": "int"}, "num_samples": 100000, "output_format": "jsonl"}
SHORT = {"schema": {"name": "string"}, "num_samples": 2}


def test_a_full_queue_answers_429_naming_the_limit_until_a_job_leaves_it(text_service, service_logs, tmp_path):
    env = {"SDG_MAX_CONCURRENT_JOBS": "1", "SDG_MAX_QUEUED_JOBS": "2"}
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", tmp_path, **env)
    try:
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            running = api.post("/generate/text", json=LONG).json()["job_id"]
            deadline = time.monotonic() + 60
            while api.get(f"/status/{running}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            queued = [api.post("/generate/text", json=SHORT) for _ in range(2)]
            assert [r.status_code for r in queued] == [202, 202]
            refused = api.post("/generate/text", json=SHORT)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) > 0
            assert refused.json()["detail"].startswith("SDG_MAX_QUEUED_JOBS: 2 jobs are queued")
            assert len(api.get("/jobs").json()) == 3  # the refused one was never made

            assert api.post(f"/jobs/{running}/cancel").status_code == 202
            for response in queued:
                assert wait_for_job(api, response.json()["job_id"])["status"] == "completed"
            assert api.post("/generate/text", json=SHORT).status_code == 202
    finally:
        gateway.stop()


def test_a_burst_of_200_submissions_is_each_accepted_or_refused_and_nothing_is_lost(database_url, text_service, service_logs, tmp_path):
    env = {"SDG_DATABASE_URL": database_url, "SDG_MAX_QUEUED_JOBS": "30"}
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", tmp_path, **env)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.address, timeout=60) as api:
            return await asyncio.gather(*(api.post("/generate/text", json=SHORT) for _ in range(200)))

    try:
        answers = asyncio.run(burst())
        assert {r.status_code for r in answers} == {202, 429}
        assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status_code == 429)
        accepted = [r.json()["job_id"] for r in answers if r.status_code == 202]
        assert len(accepted) >= 30
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            assert sorted(job["job_id"] for job in api.get("/jobs", params={"limit": 1000}).json()) == sorted(accepted)
            for job_id in accepted:
                status = wait_for_job(api, job_id)
                assert (status["status"], status["stats"]["rows_done"]) == ("completed", 2), status
    finally:
        gateway.stop()
