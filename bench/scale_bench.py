"""One text job over 1, 2 and 4 text replicas: rows/s through the REST gateway, which spreads the
job's shards over every replica that serves (SDG_SHARD_ROWS). Each replica is `python -m
text_service` in its own process; on a CPU each gets one thread, standing in for one GPU.

    python bench/scale_bench.py --tiny --rows 4096 --replicas 1 2 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gateway_process import REPO, run_job  # noqa: E402
from tests.text_service.schemas import SEED_SCHEMA  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def start_replicas(count: int, model: str, threads: int | None) -> tuple[list[subprocess.Popen], list[str]]:
    procs, addresses = [], []
    for _ in range(count):
        address = f"127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SDG_")}
        env.update(SDG_TEXT_MODEL=model, SDG_TEXT_LISTEN=address, SDG_METRICS_PORT="0")
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), SDG_TEXT_MASK_THREADS=str(threads))
        procs.append(subprocess.Popen([sys.executable, "-m", "text_service"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        addresses.append(address)
    deadline = time.monotonic() + 600
    while not all(serving(address) for address in addresses):
        if time.monotonic() > deadline or any(proc.poll() is not None for proc in procs):
            raise SystemExit("a text replica did not start")
        time.sleep(0.5)
    return procs, addresses


def measure(replicas: int, rows: int, shard_rows: int, model: str, threads: int | None) -> dict:
    procs, addresses = start_replicas(replicas, model, threads)
    try:
        with tempfile.TemporaryDirectory() as output_dir:
            body = {"schema": SEED_SCHEMA, "num_samples": rows, "seed": 1}
            status, elapsed = asyncio.run(run_job("text", body, Path(output_dir), text=",".join(addresses), SDG_SHARD_ROWS=str(shard_rows)))
            manifest = json.loads((Path(status["output_path"]) / "manifest.json").read_text())
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    shards = manifest.get("shards", [])
    return {
        "replicas": replicas,
        "status": status["status"],
        "rows": status["stats"]["rows_done"],
        "elapsed_s": round(elapsed, 2),
        "rows_per_s": round(status["stats"]["rows_done"] / elapsed, 1),
        "shards": len(shards),
        "replicas_used": len({shard["replica"] for shard in shards}) or 1,
        "service_s": manifest["timings"].get("text_service_s"),
        "text_s": manifest["timings"].get("text_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny demo model on the CPU, one thread per replica")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shard-rows", type=int, default=1024)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    model, threads = ("tiny", 1) if args.tiny else (os.environ.get("SDG_TEXT_MODEL", "Qwen/Qwen2.5-1.5B-Instruct"), None)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "model": model, "rows": args.rows}))
    results = [measure(n, args.rows, args.shard_rows, model, threads) for n in args.replicas]
    base = results[0]["rows_per_s"]
    for result in results:
        result["speedup"] = round(result["rows_per_s"] / base, 2)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
