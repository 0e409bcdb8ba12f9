"""Several gateways on one job database, each a real process beside the real text service: any of
them answers and streams every job, and when one is killed mid-job (in shards) another finishes it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.conftest import start_gateway, wait_for_job
from tests.gateway.test_gateway_events import read_events

BODY = {"schema": {"city": {"type": "string", "maxLength": 10}, "zip": "int"}, "num_samples": 2000, "output_format": "jsonl"}


def two_gateways(database_url: str, text_service, image_service, service_logs, output_dir: Path, text_addresses: str | None = None, **env):
    env = {"SDG_DATABASE_URL": database_url, "SDG_LEASE_TTL_S": "1.5", **env}
    return [
        start_gateway(service_logs, text_addresses or text_service.address, image_service.address, output_dir, SDG_GATEWAY_ID=name, **env)
        for name in ("first", "second")
    ]


def test_a_gateway_killed_mid_job_is_taken_over_by_another_that_finishes_it(
    database_url, text_service, image_service, service_logs, tmp_path
):
    # Two addresses of the one text service, so that each gateway runs the job in shards.
    port = text_service.address.rpartition(":")[2]
    replicas = f"{text_service.address},localhost:{port}"
    first, second = two_gateways(database_url, text_service, image_service, service_logs, tmp_path, replicas, SDG_SHARD_ROWS="256")
    try:
        with httpx.Client(base_url=first.address, timeout=30) as api_first, httpx.Client(base_url=second.address, timeout=30) as api:
            for gateway in (api_first, api):
                deadline = time.monotonic() + 30
                while sum(s["status"] == "serving" for s in gateway.get("/health").json()["services"].values()) < 3:
                    assert time.monotonic() < deadline, gateway.get("/health").json()
                    time.sleep(0.1)
            response = api_first.post("/generate/text", json=BODY)
            assert response.status_code == 202, response.text
            job_id = response.json()["job_id"]
            # The second gateway streams and answers for the first one's job.
            streamed: list[dict] = []
            reader = threading.Thread(target=lambda: streamed.extend(read_events(api, job_id)))
            reader.start()
            deadline = time.monotonic() + 60
            while api.get(f"/status/{job_id}").json()["stats"]["rows_done"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert job_id in {job["job_id"] for job in api.get("/jobs").json()}
            first.proc.kill()
            first.proc.wait()
            status = wait_for_job(api, job_id, timeout=180)
            reader.join(timeout=60)
            book = api.get(f"/jobs/{job_id}/shards").json()
        assert (status["status"], status["message"]) == ("completed", "completed: 2000 rows"), status
        [resume] = status["resumes"]
        assert resume["automatic"] and 1 <= resume["rows_kept"] < 2000
        rows = (Path(status["output_path"]) / "data.jsonl").read_text().splitlines()
        assert len(rows) == len(set(rows)) == 2000
        # The first gateway's run ended with its unfinished shards; the second's made the rest.
        cut_off, finished = [s for s in book if s["run"] == 0], [s for s in book if s["run"] == 1]
        assert {s["state"] for s in cut_off} <= {"completed", "interrupted"} and "interrupted" in {s["state"] for s in cut_off}
        assert finished and {(s["state"], s["gateway"]) for s in finished} == {("completed", None)}
        assert 0 < sum(s["done"] for s in finished) <= 2000 - resume["rows_kept"]  # top-ups for repeats are not shards
        ids = [int(event["id"]) for event in streamed]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        states = [event["data"]["status"] for event in streamed if event["event"] == "state"]
        assert states[0] == "queued" and states[-1] == "completed", states
        assert "failed" in states[1:-1], states  # interrupted, then resumed by the second gateway
    finally:
        first.stop()
        second.stop()


def test_a_job_is_cancelled_through_a_gateway_other_than_the_one_running_it(
    database_url, text_service, image_service, service_logs, tmp_path
):
    first, second = two_gateways(database_url, text_service, image_service, service_logs, tmp_path)
    try:
        with httpx.Client(base_url=first.address, timeout=30) as api_first, httpx.Client(base_url=second.address, timeout=30) as api:
            job_id = api_first.post("/generate/text", json={**BODY, "num_samples": 5000}).json()["job_id"]
            deadline = time.monotonic() + 60
            while api.get(f"/status/{job_id}").json()["stats"]["rows_done"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            response = api.post(f"/jobs/{job_id}/cancel")
            assert response.status_code == 202, response.text
            status = response.json()
            assert (status["status"], status["partial"]) == ("cancelled", True)
            assert status["message"].startswith("cancelled: cancelled by request;"), status
            assert status["stats"]["rows_done"] < 5000
            assert api_first.get(f"/status/{job_id}").json()["status"] == "cancelled"
    finally:
        first.stop()
        second.stop()
