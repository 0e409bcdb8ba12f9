"""Failover across replicas: a real gateway in front of two real text (or image) services with
the tiny models, one of which is killed (SIGKILL) mid-job or restarted on its port; and, with
scripted replicas that lose every stream, a job that runs out of attempts."""

from __future__ import annotations

import json
import secrets
from collections import Counter
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.clients import resolve
from gateway.settings import GatewaySettings
from tests.conftest import Service, base_env, free_port, grpc_serving, spawn, start_gateway, start_image_service, start_text_service, wait_for_job
from tests.gateway.test_gateway_service_failures import ROW, serve_scripted, settings, submit, wait
from tests.scrape import Scrape

# Small batches, so that a job of a few hundred rows (or a few dozen images) runs for seconds.
TEXT_ENV = {"SDG_TEXT_BATCH_SIZE": "4"}
IMAGE_ENV = {"SDG_IMAGE_BATCH_SIZE": "1"}
TEXT_JOB = {"schema": {"name": "string", "age": "int"}, "num_samples": 300, "output_format": "json"}
IMAGES_JOB = {"prompts": ["a red barn"], "num_images": 40, "resolution": [128, 128], "num_inference_steps": 10}


def restarted(service: Service, log_dir: Path, kind: str, env: dict[str, str]) -> Service:
    """A new process of the killed `service`, on its address."""
    model, listen = ("SDG_TEXT_MODEL", "SDG_TEXT_LISTEN") if kind == "text" else ("SDG_IMAGE_MODEL", "SDG_IMAGE_LISTEN")
    module = f"{kind}_service"
    return spawn(module, module, base_env(**{model: "tiny", listen: service.address}, **env), service.address, grpc_serving, log_dir)


class Replicas:
    """Two replicas of one service behind a gateway of their own; the other service's address is
    one where nothing listens."""

    def __init__(self, kind: str, log_dir: Path, output_dir: Path, **gateway_env: str):
        self.kind, self.log_dir, self.output_dir = kind, log_dir, output_dir
        self.env = TEXT_ENV if kind == "text" else IMAGE_ENV
        start = start_text_service if kind == "text" else start_image_service
        self.services = [start(log_dir, **self.env), start(log_dir, **self.env)]
        addresses, dead = ",".join(s.address for s in self.services), f"127.0.0.1:{free_port()}"
        text, image = (addresses, dead) if kind == "text" else (dead, addresses)
        self.gateway = start_gateway(log_dir, text, image, output_dir, **gateway_env)

    def by_address(self, address: str) -> Service:
        return next(s for s in self.services if s.address == address)

    def kill(self, address: str) -> Service:
        service = self.by_address(address)
        service.proc.kill()
        service.proc.wait()
        return service

    def restart(self, address: str) -> None:
        """Starts the replica at `address` again (after kill), and waits for the gateway to see it."""
        index = self.services.index(self.by_address(address))
        self.services[index] = restarted(self.services[index], self.log_dir, self.kind, self.env)
        self.wait_until_up(address, 1)

    def replica_up(self, address: str) -> float:
        return Scrape.of(self.gateway.address + "/metrics").value("sdg_replica_up", kind=self.kind, address=address)

    def wait_until_up(self, address: str, up: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.replica_up(address) != up:
            assert time.monotonic() < deadline, f"{address} never reported up={up}"
            time.sleep(0.1)

    def stop(self) -> None:
        self.gateway.stop()
        for service in self.services:
            service.stop()


def store_env(request) -> dict[str, str]:
    """The job database of the parametrized store: the default SQLite file, or a new PostgreSQL one."""
    if request.param == "sqlite":
        return {}
    return {"SDG_DATABASE_URL": request.getfixturevalue("postgres").create_database(f"sdg_{secrets.token_hex(4)}")}


def replicas_on_each_store(kind: str):
    """A module fixture: two `kind` replicas behind a gateway, once on each store."""

    @pytest.fixture(scope="module", params=["sqlite", "postgresql"])
    def replicas(request, tmp_path_factory):
        logs, data = tmp_path_factory.mktemp(f"failover-{kind}-logs"), tmp_path_factory.mktemp(f"failover-{kind}-data")
        started = Replicas(kind, logs, data, **store_env(request))
        yield started
        started.stop()

    return replicas


text_replicas = replicas_on_each_store("text")
image_replicas = replicas_on_each_store("image")


def folder_of(replicas: Replicas, status: dict) -> Path:
    return replicas.output_dir / Path(status["output_path"]).name


def replica_of(replicas: Replicas, status: dict) -> str:
    """The address the job's run streams from, as the manifest written at its start records it."""
    manifest = json.loads((folder_of(replicas, status) / "manifest.json").read_text())
    return manifest["model"][replicas.kind]["address"]


def started(client: httpx.Client, kind: str, body: dict, stat: str, at_least: int) -> dict:
    """Submits a job and returns its status once it counts `at_least` of `stat`."""
    response = client.post(f"/generate/{kind}", json=body)
    assert response.status_code == 202, response.text
    job_id, deadline = response.json()["job_id"], time.monotonic() + 60
    while (status := client.get(f"/status/{job_id}").json())["stats"][stat] < at_least:
        assert status["status"] in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(0.02)
    return status


def failovers_counted(replicas: Replicas) -> float:
    return Scrape.of(replicas.gateway.address + "/metrics").value("sdg_failovers_total", kind=replicas.kind)


def test_a_text_job_whose_replica_is_killed_completes_on_the_other_with_exactly_its_rows_and_no_repeats(text_replicas):
    with httpx.Client(base_url=text_replicas.gateway.address, timeout=30) as client:
        counted_before = failovers_counted(text_replicas)
        status = started(client, "text", TEXT_JOB, "rows_done", 8)
        lost = replica_of(text_replicas, status)
        text_replicas.kill(lost)
        status = wait_for_job(client, status["job_id"], timeout=120)
        try:
            assert status["status"] == "completed" and status["partial"] is False, status
            rows = json.loads((folder_of(text_replicas, status) / "data.json").read_text())
            assert len(rows) == 300 and status["stats"]["rows_done"] == 300
            assert len({json.dumps(row, sort_keys=True) for row in rows}) == 300
            # The failover is on record: the resume, the job's message, the manifest, /metrics.
            [resume] = status["resumes"]
            assert resume["automatic"] and resume["failover_from"] == lost and lost in resume["failover_reason"]
            assert 0 < resume["rows_kept"] < 300
            assert status["message"] == "completed: 300 rows (after 1 failover)"
            manifest = json.loads((folder_of(text_replicas, status) / "manifest.json").read_text())
            assert manifest["failovers"] == 1 and manifest["resumes"] == status["resumes"]
            assert manifest["model"]["text"]["address"] != lost
            assert failovers_counted(text_replicas) == counted_before + 1
        finally:
            text_replicas.restart(lost)


def test_a_tables_job_whose_replica_is_killed_completes_every_table_with_keys_that_resolve(text_replicas):
    sequence = {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}
    body = {"tables": {
        "customers": {"schema": {"id": sequence, "name": {"type": "string", "maxLength": 10}}, "num_samples": 60},
        "orders": {"schema": {"id": sequence, "customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}}, "total": "float"},
                   "per_parent": 3},
    }}
    with httpx.Client(base_url=text_replicas.gateway.address, timeout=30) as client:
        status = started(client, "tables", body, "rows_done", 70)  # part-way through the orders
        lost = replica_of(text_replicas, status)
        text_replicas.kill(lost)
        status = wait_for_job(client, status["job_id"], timeout=180)
        try:
            assert status["status"] == "completed" and status["partial"] is False, status
            folder = folder_of(text_replicas, status)
            customers = json.loads((folder / "customers.json").read_text())
            orders = json.loads((folder / "orders.json").read_text())
            assert sorted(c["id"] for c in customers) == list(range(1, 61))
            assert sorted(o["id"] for o in orders) == list(range(1, 181))
            assert Counter(o["customer_id"] for o in orders) == {i: 3 for i in range(1, 61)}
            [resume] = status["resumes"]
            assert resume["failover_from"] == lost
            manifest = json.loads((folder / "manifest.json").read_text())
            assert manifest["referential_integrity"]["share"] == 1.0 and manifest["failovers"] == 1
        finally:
            text_replicas.restart(lost)


def test_a_replica_restarted_on_its_port_is_given_jobs_again_once_its_health_watch_sees_it_serving(text_replicas):
    small = {**TEXT_JOB, "num_samples": 5}
    first, second = (s.address for s in text_replicas.services)
    with httpx.Client(base_url=text_replicas.gateway.address, timeout=30) as client:
        text_replicas.wait_until_up(first, 1)
        text_replicas.kill(first)
        text_replicas.wait_until_up(first, 0)
        # Meanwhile every job goes to the replica that serves.
        for _ in range(2):
            status = wait_for_job(client, client.post("/generate/text", json=small).json()["job_id"])
            assert status["status"] == "completed" and replica_of(text_replicas, status) == second, status
        text_replicas.restart(first)
        used = set()
        for _ in range(2):
            status = wait_for_job(client, client.post("/generate/text", json=small).json()["job_id"])
            assert status["status"] == "completed" and status["resumes"] == []
            used.add(replica_of(text_replicas, status))
        assert used == {first, second}


def test_a_job_that_loses_its_replica_while_the_other_is_down_waits_for_one_to_come_back_and_completes(text_replicas):
    first, second = (s.address for s in text_replicas.services)
    with httpx.Client(base_url=text_replicas.gateway.address, timeout=30) as client:
        text_replicas.wait_until_up(first, 1)
        text_replicas.kill(second)
        text_replicas.wait_until_up(second, 0)
        status = started(client, "text", TEXT_JOB, "rows_done", 8)
        assert replica_of(text_replicas, status) == first
        text_replicas.kill(first)
        try:
            # Neither serves: the failed-over run waits for the replica it did not lose.
            deadline = time.monotonic() + 30
            while not client.get(f"/status/{status['job_id']}").json()["message"].startswith(f"waiting for the text service at {second}"):
                assert time.monotonic() < deadline, client.get(f"/status/{status['job_id']}").json()
                time.sleep(0.1)
            text_replicas.restart(second)
            status = wait_for_job(client, status["job_id"], timeout=120)
            assert status["status"] == "completed" and status["stats"]["rows_done"] == 300, status
            rows = json.loads((folder_of(text_replicas, status) / "data.json").read_text())
            assert len({json.dumps(row, sort_keys=True) for row in rows}) == len(rows) == 300
            assert [r["failover_from"] for r in status["resumes"]] == [first]
        finally:
            text_replicas.restart(first)


def test_an_images_job_in_shards_whose_replica_is_killed_completes_on_the_other_with_exactly_its_images(image_replicas):
    with httpx.Client(base_url=image_replicas.gateway.address, timeout=30) as client:
        for address in (s.address for s in image_replicas.services):
            image_replicas.wait_until_up(address, 1)
        status = started(client, "images", IMAGES_JOB, "images_done", 3)
        job_id = status["job_id"]
        lost = next(s for s in client.get(f"/jobs/{job_id}/shards").json() if s["state"] == "running")["replica"]
        image_replicas.kill(lost)
        try:
            status = wait_for_job(client, job_id, timeout=120)
            book = client.get(f"/jobs/{job_id}/shards").json()
        finally:
            image_replicas.restart(lost)
        assert (status["status"], status["partial"], status["resumes"]) == ("completed", False, []), status
        assert status["message"] == "completed: 40 images"
        folder = folder_of(image_replicas, status)
        metadata = [json.loads(line) for line in (folder / "images" / "metadata.jsonl").read_text().splitlines()]
        assert sorted(m["file_name"] for m in metadata) == [f"image_{i:05d}.png" for i in range(40)]
        assert len(list((folder / "images").glob("*.png"))) == 40
        # Shards of 16 images from index 0, 16 and 32; the lost one went to the other replica.
        assert [(s["kind"], s["first"], s["size"], s["done"], s["state"]) for s in book] == [
            ("images", 0, 16, 16, "completed"), ("images", 16, 16, 16, "completed"), ("images", 32, 8, 8, "completed")]
        [retried] = [s for s in book if s["attempts"] == 2]
        assert retried["replica"] != lost and lost in retried["error"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert [s["images_added"] for s in manifest["shards"]] == [16, 16, 8] and "failovers" not in manifest


@pytest.mark.parametrize("replicas", [1, 2])
def test_a_job_that_loses_its_replica_on_every_attempt_fails_after_sdg_max_attempts_with_the_reason(tmp_path, replicas):
    """With two replicas each attempt goes to the other; with one, to the same one again."""
    scripted = [serve_scripted() for _ in range(replicas)]
    for servicer, _ in scripted:
        servicer.behaviour = "unavailable"
    addresses = ",".join(servicer.address for servicer, _ in scripted)
    try:
        with TestClient(create_app(settings(tmp_path, addresses, SDG_MAX_ATTEMPTS=3))) as client:
            job = wait(client, submit(client))
            scrape = Scrape(client.get("/metrics").text)
    finally:
        for _, server in scripted:
            server.stop(0)
    assert (job["status"], job["partial"]) == ("failed", True)
    last = job["resumes"][-1]["failover_from"] if replicas == 1 else ({s.address for s, _ in scripted} - {job["resumes"][-1]["failover_from"]}).pop()
    assert job["error"] == f"text service unavailable at {last}: Socket closed"
    assert job["message"] == f"failed: {job['error']}; 1 of 3 rows (attempt 3 of 3, after 2 failovers)"
    lost = [resume["failover_from"] for resume in job["resumes"]]
    assert len(lost) == 2 and (replicas == 1 or lost[0] != lost[1])
    assert scrape.value("sdg_failovers_total", kind="text") == 2
    assert json.loads((tmp_path / "out" / Path(job["output_path"]).name / "data.json").read_text()) == [ROW]


def test_a_failure_that_is_not_a_lost_replica_is_not_retried(tmp_path):
    servicer, server = serve_scripted()
    servicer.behaviour = "reject"
    try:
        with TestClient(create_app(settings(tmp_path, servicer.address))) as client:
            job = wait(client, submit(client))
    finally:
        server.stop(0)
    assert job["status"] == "failed" and job["resumes"] == [] and "rejected the request" in job["error"]


async def test_a_dns_address_stands_for_what_its_name_resolves_to_and_an_unknown_name_for_itself():
    found = await resolve(["dns:///localhost:50051", "text-2:50051", "dns:///no-such-host.invalid:50051", "127.0.0.1:50051"])
    assert found == ["127.0.0.1:50051", "text-2:50051", "dns:///no-such-host.invalid:50051"]


def test_a_dns_address_without_a_port_is_refused_naming_it():
    with pytest.raises(ValueError, match="'dns:///sdg-text' has no port"):
        GatewaySettings(SDG_TEXT_SERVICE_ADDRS="dns:///sdg-text")


def test_replicas_behind_a_dns_name_are_found_watched_and_given_jobs(text_service, service_logs, tmp_path):
    port = text_service.address.rpartition(":")[2]
    gateway = start_gateway(service_logs, f"dns:///localhost:{port}", "127.0.0.1:1", tmp_path)
    try:
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            deadline = time.monotonic() + 30
            while text_service.address not in api.get("/health").json()["services"]:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert api.get("/health").json()["services"][text_service.address]["status"] == "serving"
            job_id = api.post("/generate/text", json={**TEXT_JOB, "num_samples": 5}).json()["job_id"]
            assert wait_for_job(api, job_id)["status"] == "completed"
    finally:
        gateway.stop()


def test_a_job_of_several_shards_runs_on_both_replicas_and_a_shard_whose_replica_is_killed_goes_to_the_other(tmp_path):
    (tmp_path / "logs").mkdir()
    replicas = Replicas("text", tmp_path / "logs", tmp_path / "data", SDG_SHARD_ROWS="100")
    try:
        with httpx.Client(base_url=replicas.gateway.address, timeout=30) as client:
            for address in (s.address for s in replicas.services):
                replicas.wait_until_up(address, 1)
            # The gateway numbers a sequence by output position, so shards go on counting.
            schema = {**TEXT_JOB["schema"], "id": {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}}
            status = started(client, "text", {**TEXT_JOB, "schema": schema, "num_samples": 600}, "rows_done", 150)
            job_id = status["job_id"]
            running = [s for s in client.get(f"/jobs/{job_id}/shards").json() if s["state"] == "running"]
            lost = running[0]["replica"]
            replicas.kill(lost)
            status = wait_for_job(client, job_id, timeout=180)
            book = client.get(f"/jobs/{job_id}/shards").json()
        # The job never stopped: only the lost shard went to the other replica.
        assert (status["status"], status["message"], status["resumes"]) == ("completed", "completed: 600 rows", []), status
        rows = json.loads((folder_of(replicas, status) / "data.json").read_text())
        assert sorted(row["id"] for row in rows) == list(range(1, 601))
        blocks = [(row["id"] - 1) // 100 for row in rows]
        assert blocks == sorted(blocks)  # in shard order, whichever replica was faster
        shards = json.loads((folder_of(replicas, status) / "manifest.json").read_text())["shards"]
        assert [shard["shard"] for shard in shards] == list(range(6))
        assert {shard["replica"] for shard in shards} <= {s.address for s in replicas.services}
        assert sum(shard["rows_added"] for shard in shards) == 600
        assert [(s["kind"], s["shard"], s["state"], s["first"], s["done"]) for s in book] == [("rows", i, "completed", 100 * i, 100) for i in range(6)]
        [retried] = [s for s in book if s["attempts"] == 2]
        assert retried["replica"] != lost and lost in retried["error"]
        assert {s["replica"] for s in book if s["shard"] > retried["shard"]} - {lost}  # the other took the rest
        scrape = Scrape.of(replicas.gateway.address + "/metrics")
        assert scrape.value("sdg_shards_total", outcome="completed") == 6
        assert scrape.value("sdg_shards_total", outcome="lost") == 1
        assert scrape.value("sdg_shards_running") == 0
        assert scrape.value("sdg_shards_by_state", state="completed") == 6 and scrape.value("sdg_shards_by_state", state="running") == 0
    finally:
        replicas.stop()
