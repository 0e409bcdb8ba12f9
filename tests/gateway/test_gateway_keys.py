"""API keys on a real gateway and text service: a key is needed once keys are on, each key sees only
its own jobs, keys made with `python -m gateway keys create` work at once, a key's own limits
answer 429, and one key's flood of jobs does not hold up another key's job."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO, base_env, start_gateway, wait_for_job

ALICE, BOB = "alice-secret-0123456789", "bob-secret-0123456789"
KEYS = f"alice:{ALICE},bob:{BOB}"
LONG = {"schema": {"name": "string", "age": "int"}, "num_samples": 100000, "output_format": "jsonl"}
SHORT = {"schema": {"name": "string"}, "num_samples": 2}


def as_key(gateway, secret: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.address, timeout=30, headers={"Authorization": f"Bearer {secret}"})


def keys_cli(output_dir, *args: str) -> subprocess.CompletedProcess:
    env = base_env(SDG_OUTPUT_DIR=str(output_dir))
    return subprocess.run([sys.executable, "-m", "gateway", "keys", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def wait_until_running(api: httpx.Client, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while api.get(f"/status/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, f"job {job_id} did not start"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def keyed_gateway(service_logs, text_service, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("keyed")
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", output_dir, SDG_API_KEYS=KEYS)
    gateway.output_dir = output_dir
    yield gateway
    gateway.stop()


def test_without_a_key_jobs_answer_401_but_health_metrics_and_the_ui_stay_open(keyed_gateway):
    with httpx.Client(base_url=keyed_gateway.address, timeout=30) as anyone:
        for method, path in [("GET", "/jobs"), ("GET", "/status/job_000000000000"), ("POST", "/generate/text")]:
            response = anyone.request(method, path, json=SHORT)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "API key is required" in response.json()["detail"]
        unknown = anyone.get("/jobs", headers={"X-API-Key": "not-a-key-at-all"})
        assert unknown.status_code == 401 and "not known" in unknown.json()["detail"]
        assert anyone.get("/health").status_code in (200, 500)  # degraded: no image service here
        assert anyone.get("/metrics").status_code == 200
        assert anyone.get("/ui/").status_code == 200
        assert anyone.get("/").status_code == 200
    with httpx.Client(base_url=keyed_gateway.address, timeout=30, headers={"X-API-Key": ALICE}) as alice:
        assert alice.get("/jobs").status_code == 200


def test_a_key_cannot_see_another_keys_job_and_its_list_leaves_it_out(keyed_gateway):
    with as_key(keyed_gateway, ALICE) as alice, as_key(keyed_gateway, BOB) as bob:
        job_id = alice.post("/generate/text", json=SHORT).json()["job_id"]
        assert wait_for_job(alice, job_id)["status"] == "completed"
        bobs = bob.post("/generate/text", json=SHORT).json()["job_id"]

        for method, path in [
            ("GET", f"/status/{job_id}"),
            ("GET", f"/jobs/{job_id}/rows"),
            ("GET", f"/jobs/{job_id}/files/data.json"),
            ("GET", f"/jobs/{job_id}/archive"),
            ("GET", f"/jobs/{job_id}/events"),
            ("POST", f"/jobs/{job_id}/cancel"),
            ("POST", f"/jobs/{job_id}/resume"),
            ("DELETE", f"/jobs/{job_id}"),
        ]:
            response = bob.request(method, path)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == {"detail": f"job {job_id!r} not found"}
        bob_list = [job["job_id"] for job in bob.get("/jobs").json()]
        assert job_id not in bob_list and bobs in bob_list
        assert [job["job_id"] for job in alice.get("/jobs").json()] == [job_id]

        # What a browser opens by URL takes the key as ?api_key=; nothing else does.
        assert alice.get(f"/jobs/{job_id}/files/data.json").status_code == 200
        with httpx.Client(base_url=keyed_gateway.address, timeout=30) as browser:
            assert browser.get(f"/jobs/{job_id}/files/data.json", params={"api_key": ALICE}).status_code == 200
            assert browser.get(f"/jobs/{job_id}/files/data.json", params={"api_key": BOB}).status_code == 404
            assert browser.get(f"/status/{job_id}", params={"api_key": ALICE}).status_code == 401
        assert alice.delete(f"/jobs/{job_id}").status_code == 200


def test_a_key_made_by_keys_create_works_at_once_and_not_once_revoked(keyed_gateway):
    made = keys_cli(keyed_gateway.output_dir, "create", "--name", "ci-runner")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert "shown only now" in made.stderr and secret not in made.stderr
    with as_key(keyed_gateway, secret) as ci:
        job_id = ci.post("/generate/text", json=SHORT).json()["job_id"]
        assert wait_for_job(ci, job_id)["status"] == "completed"
        listed = keys_cli(keyed_gateway.output_dir, "list")
        assert "ci-runner" in listed.stdout and secret not in listed.stdout
        assert keys_cli(keyed_gateway.output_dir, "create", "--name", "ci-runner").stderr.strip() == "error: name 'ci-runner' is taken by another key"
        assert keys_cli(keyed_gateway.output_dir, "revoke", "ci-runner").returncode == 0
        assert ci.get("/jobs").status_code == 401


def test_a_keys_own_limits_answer_429_with_retry_after_naming_the_limit(keyed_gateway):
    made = keys_cli(keyed_gateway.output_dir, "create", "--name", "small", "--max-rows-in-flight", "10", "--requests-per-minute", "3")
    assert made.returncode == 0, made.stderr
    with as_key(keyed_gateway, made.stdout.strip()) as small:
        refused = small.post("/generate/text", json=SHORT | {"num_samples": 11})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.json()["detail"] == (
            "limits.max_rows_in_flight of key small: key small would have 11 rows in flight with this job's 11, past the 10 it may"
        )
        assert small.get("/jobs").json() == []  # the refused job was never made
        assert small.get("/jobs").status_code == 200
        too_often = small.get("/jobs")
        assert too_often.status_code == 429
        assert 0 < int(too_often.headers["Retry-After"]) <= 60
        assert too_often.json()["detail"].startswith("limits.requests_per_minute of key small: key small made 3 requests")


def test_past_the_default_queued_jobs_per_key_a_submit_is_429_and_other_keys_are_not_held_to_it(text_service, service_logs, tmp_path):
    env = {"SDG_API_KEYS": KEYS, "SDG_MAX_CONCURRENT_JOBS": "1", "SDG_KEY_MAX_QUEUED_JOBS": "1", "SDG_METRICS_REQUIRE_KEY": "true"}
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", tmp_path, **env)
    try:
        with as_key(gateway, ALICE) as alice, as_key(gateway, BOB) as bob:
            assert httpx.get(f"{gateway.address}/metrics").status_code == 401  # SDG_METRICS_REQUIRE_KEY
            assert alice.get("/metrics").status_code == 200
            running = alice.post("/generate/text", json=LONG).json()["job_id"]
            wait_until_running(alice, running)
            assert alice.post("/generate/text", json=SHORT).status_code == 202
            refused = alice.post("/generate/text", json=SHORT)
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
            assert refused.json()["detail"].startswith("SDG_KEY_MAX_QUEUED_JOBS: key alice has 1 jobs queued")
            assert len(alice.get("/jobs").json()) == 2
            assert bob.post("/generate/text", json=SHORT).status_code == 202
            alice.post(f"/jobs/{running}/cancel")
    finally:
        gateway.stop()


def test_while_one_key_floods_the_queue_another_keys_small_job_runs_next(text_service, service_logs, tmp_path):
    env = {"SDG_API_KEYS": KEYS, "SDG_MAX_CONCURRENT_JOBS": "1"}
    gateway = start_gateway(service_logs, text_service.address, "127.0.0.1:1", tmp_path, **env)
    try:
        with as_key(gateway, ALICE) as alice, as_key(gateway, BOB) as bob:
            flood = [alice.post("/generate/text", json=LONG).json()["job_id"]]
            wait_until_running(alice, flood[0])
            flood += [alice.post("/generate/text", json=LONG).json()["job_id"] for _ in range(3)]
            small = bob.post("/generate/text", json=SHORT).json()["job_id"]
            assert alice.post(f"/jobs/{flood[0]}/cancel").status_code == 202

            # First come would run alice's next 100000 rows first; bob's job goes before them.
            assert wait_for_job(bob, small, timeout=60)["status"] == "completed"
            states = [alice.get(f"/status/{job_id}").json()["status"] for job_id in flood[1:]]
            assert states.count("completed") == 0 and states.count("queued") >= 2, states
            for job_id in flood[1:]:
                alice.post(f"/jobs/{job_id}/cancel")
    finally:
        gateway.stop()
