"""`bench/image_bench.py --tiny` runs end to end on the CPU and reports its ratio as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tiny_bench_reports_the_ratio(tiny_model_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDG_")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    cache_dir = tiny_model_dir.parents[1]  # the folder that holds tiny/image
    done = subprocess.run(
        [sys.executable, "bench/image_bench.py", "--tiny", "--steps", "2", "--batches", "1", "--feature-reuse", "2", "--reuse-sweep", "3", "--cache-dir", str(cache_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["mode"] == "tiny" and result["steps"] == 2 and result["batch_size"] == 2
    for key in ("baseline_s_per_image", "engine_as_loaded_s_per_image", "engine_s_per_image", "engine_traced_s_per_image", "service_s_per_image", "rest_s_per_image"):
        assert result[key] > 0
    ratio = result["baseline_s_per_image"] / result["engine_s_per_image"]
    assert result["ratio_vs_baseline"] == pytest.approx(ratio, rel=0.01)  # both sides rounded
    assert "tracing_overhead_pct" in result and "service_vs_engine" in result
    assert result["rest_vs_engine"] == pytest.approx(result["engine_s_per_image"] / result["rest_s_per_image"], rel=0.02)
    assert result["feature_reuse"] == 2 and result["reuse_s_per_image"] > 0 and result["reuse_traced_s_per_image"] > 0
    assert result["reuse_vs_engine"] == pytest.approx(result["engine_s_per_image"] / result["reuse_s_per_image"], rel=0.02)
    assert 0 < result["reuse_psnr_vs_exact_db"] < 100  # reuse moves the pixels, by a finite amount
    point = result["reuse_sweep"]["3"]  # another N, on the same graphs
    assert point["s_per_image"] > 0 and 0 < point["psnr_vs_exact_db"] < 100
    assert point["vs_engine"] == pytest.approx(result["engine_s_per_image"] / point["s_per_image"], rel=0.02)


def test_idle_gaps_finds_the_device_idle_time_and_what_the_host_began_in_it():
    from bench.image_bench import idle_gaps

    # Microseconds: two kernels overlap (no gap), then 0.5 ms idle while the host copies, a gap
    # under the threshold, and 2 ms idle with no torch op begun.
    kernels = [(0, 100, "conv"), (50, 300, "gemm"), (800, 900, "norm"), (950, 1000, "add"), (3000, 3100, "decode")]
    host_ops = [(400, "aten::copy_"), (450, "aten::copy_"), (500, "cudaStreamSynchronize"), (2000 - 10_000, "aten::empty")]
    report = idle_gaps(kernels, host_ops, min_us=200).splitlines()
    assert report[0] == "idle gaps of 0.2 ms or more: 2, 2.5 ms in all"
    assert report[1] == "    2.00 ms at +1.0 ms, after add, before decode; host: no torch op"
    assert report[2] == "    0.50 ms at +0.3 ms, after gemm, before norm; host: aten::copy_ x2, cudaStreamSynchronize x1"
    assert idle_gaps([], host_ops) == ""
