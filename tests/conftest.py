"""Shared fixtures: real services on free localhost ports, started as subprocesses with the tiny
models, the way a user starts them (`python -m text_service`, `python -m image_service`,
`python -m gateway`). Each is started once per test session and stopped with SIGTERM."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.postgres import PostgresServer, start_postgres

REPO = Path(__file__).resolve().parents[1]
# Built once and reused across runs: building is quick, but there is no reason to repeat it.
TEST_MODEL_CACHE = Path(os.environ.get("SDG_TEST_MODEL_CACHE", REPO / ".cache" / "test-models"))


class FailsAfterFirst:
    """An engine that fails, as a device might, right after its generate() emits an event of
    type `kind`; otherwise the engine it wraps."""

    def __init__(self, engine, kind: type):
        self._engine, self._kind = engine, kind

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate(self, request, emit, cancelled):
        def emit_then_fail(event):
            emit(event)
            if isinstance(event, self._kind):
                raise RuntimeError("CUDA out of memory (simulated)")

        return self._engine.generate(request, emit_then_fail, cancelled)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDG_", "UVICORN_"))}
    env.update(
        MODEL_CACHE_DIR=str(TEST_MODEL_CACHE),
        SDG_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        # Off unless a test asks for it: the default ports would clash between services.
        SDG_METRICS_PORT="0",
    )
    env.update(overrides)
    return env


@dataclass
class Service:
    """A running service subprocess; `log` holds its stdout and stderr."""

    name: str
    proc: subprocess.Popen
    address: str
    log: Path

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def http_ready(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def spawn(
    name: str,
    module: str,
    env: dict[str, str],
    address: str,
    ready: Callable[[str], bool],
    log_dir: Path,
    timeout: float = 180,
) -> Service:
    log = log_dir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    service = Service(name, proc, address, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{service.log_text()[-4000:]}")
        if ready(address):
            return service
        time.sleep(0.25)
    service.stop()
    raise TimeoutError(f"{name} not ready after {timeout}s:\n{service.log_text()[-4000:]}")


def start_text_service(log_dir: Path, **env: str) -> Service:
    address = f"127.0.0.1:{free_port()}"
    return spawn(
        "text_service",
        "text_service",
        base_env(SDG_TEXT_MODEL="tiny", SDG_TEXT_LISTEN=address, **env),
        address,
        grpc_serving,
        log_dir,
    )


def start_image_service(log_dir: Path, **env: str) -> Service:
    address = f"127.0.0.1:{free_port()}"
    return spawn(
        "image_service",
        "image_service",
        base_env(SDG_IMAGE_MODEL="tiny", SDG_IMAGE_LISTEN=address, **env),
        address,
        grpc_serving,
        log_dir,
    )


def start_gateway(log_dir: Path, text_addr: str, image_addr: str, output_dir: Path, **env: str) -> Service:
    port = free_port()
    # A test's restarts get new ports but stay the same gateway; a second one names itself.
    env = {"SDG_GATEWAY_ID": f"test-{output_dir.name}"[:64], **env}
    url = f"http://127.0.0.1:{port}"
    return spawn(
        "gateway",
        "gateway",
        base_env(
            UVICORN_HOST="127.0.0.1",
            UVICORN_PORT=str(port),
            SDG_TEXT_SERVICE_ADDRS=text_addr,
            SDG_IMAGE_SERVICE_ADDRS=image_addr,
            SDG_OUTPUT_DIR=str(output_dir),
            **env,
        ),
        url,
        http_ready,
        log_dir,
        timeout=60,
    )


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def text_service(service_logs):
    service = start_text_service(service_logs)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def image_service(service_logs):
    service = start_image_service(service_logs)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def gateway(service_logs, text_service, image_service, tmp_path_factory):
    """The real gateway, talking to the real text and image services. `.address` is its base URL."""
    output_dir = tmp_path_factory.mktemp("generated_data")
    service = start_gateway(service_logs, text_service.address, image_service.address, output_dir)
    service.output_dir = output_dir
    yield service
    service.stop()


@pytest.fixture
def api(gateway):
    with httpx.Client(base_url=gateway.address, timeout=30) as client:
        yield client


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    """Polls /status until the job has finished; returns the last status body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/status/{job_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {body['status']} after {timeout}s: {body}")


def cancelled_part_way(client: httpx.Client, kind: str, body: dict, stat: str, at_least: int = 1, timeout: float = 120) -> tuple[str, dict]:
    """Submits a job and cancels it once its status counts `at_least` of `stat` ("rows_done",
    "images_done"; 0: at once). Returns its id and its final status.

    On a fast machine a job can finish between the poll that saw its count and the cancel, or
    finish the stage `stat` counts (a unified job's rows); it did not stop part-way, so another
    is submitted, a few times at most.
    """
    total = {"rows_done": "rows_total", "images_done": "images_total"}.get(stat)
    for _ in range(5):
        response = client.post(f"/generate/{kind}", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + timeout
        while (status := client.get(f"/status/{job_id}").json())["stats"][stat] < at_least:
            assert status["status"] in ("queued", "running"), f"it ended before {stat} reached {at_least}: {status}"
            assert time.monotonic() < deadline, f"{stat} stayed under {at_least}"
            time.sleep(0.02)
        client.post(f"/jobs/{job_id}/cancel")
        status = wait_for_job(client, job_id, timeout=60)
        if status["status"] != "completed" and not (total and status["stats"][stat] >= status["stats"][total]):
            return job_id, status
    raise AssertionError(f"every {kind} job finished its {stat} before its cancel landed")


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    server = start_postgres(free_port())
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty job database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return request.getfixturevalue("postgres").create_database(f"sdg_{secrets.token_hex(4)}")
