"""The bounded backlog on a real gateway and text service: past SDG_MAX_QUEUED_JOBS a submit is
429 with Retry-After, and accepted again once the queue has room."""

from __future__ import annotations

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
