"""The gateway as deployed, for the benches' REST phase: `python -m gateway` in its own process,
in front of a gRPC server the bench runs around a model it has already loaded (no second copy).
A job is timed by the gateway's own clock, submit to finish, so the polling does not count."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
UNUSED_ADDRESS = "127.0.0.1:9"  # for the service a bench's job does not call


def seconds_between(start: str, end: str) -> float:
    """Seconds between two of the gateway's timestamps ("2026-01-01T00:00:00.000000Z")."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def run_job(
    kind: str, body: dict[str, Any], output_dir: Path, text: str = UNUSED_ADDRESS, image: str = UNUSED_ADDRESS, **settings: str
) -> tuple[dict, float]:
    """Submits `body` to POST /generate/{kind} of a gateway started for it on a free port, with
    the given service addresses and SDG_* `settings`, and waits for the job. Returns its final
    status and the seconds from submit to finish."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        web_port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDG_", "UVICORN_"))}
    env.update(
        SDG_TEXT_SERVICE_ADDRS=text,
        SDG_IMAGE_SERVICE_ADDRS=image,
        SDG_OUTPUT_DIR=str(output_dir),
        UVICORN_HOST="127.0.0.1",
        UVICORN_PORT=str(web_port),
        **settings,
    )
    gateway = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=60) as client:
            for _ in range(600):
                try:
                    if (await client.get("/")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            reply = await client.post(f"/generate/{kind}", json=body)
            reply.raise_for_status()
            job_id = reply.json()["job_id"]
            while (status := (await client.get(f"/status/{job_id}")).json())["status"] in ("queued", "running"):
                await asyncio.sleep(0.25)
    finally:
        gateway.terminate()
        gateway.wait(30)
    return status, seconds_between(status["created_at"], status["finished_at"])
