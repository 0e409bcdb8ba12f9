"""Schemathesis against the real gateway's /openapi.json, with the real model services: no request
it makes gets a 5xx, and the queue it leaves stays within SDG_MAX_QUEUED_JOBS. Its fuzzing phase
only, to keep the suite short; the examples and coverage phases pass too when run by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import start_gateway

MAX_QUEUED = 20


def test_fuzzing_the_api_finds_no_server_error_and_leaves_a_bounded_queue(text_service, image_service, service_logs, tmp_path):
    env = {"SDG_MAX_QUEUED_JOBS": str(MAX_QUEUED), "SDG_MAX_CONCURRENT_JOBS": "1"}
    gateway = start_gateway(service_logs, text_service.address, image_service.address, tmp_path / "out", **env)
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        run = subprocess.run(
            [str(schemathesis), "run", f"{gateway.address}/openapi.json", "--checks", "not_a_server_error",
             "--phases", "fuzzing", "--max-examples", "10", "--seed", "1", "--workers", "2",
             "--generation-database", "none", "--request-timeout", "30", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        with httpx.Client(base_url=gateway.address, timeout=30) as api:
            queued = api.get("/jobs", params={"status": "queued", "limit": 1000}).json()
        assert len(queued) <= MAX_QUEUED
    finally:
        gateway.stop()
