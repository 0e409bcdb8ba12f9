"""Keeps `bench/scale_bench.py --tiny` working: one job over one and two real text replicas."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO, TEST_MODEL_CACHE


def test_the_scale_bench_spreads_one_job_over_both_replicas():
    env = {**os.environ, "MODEL_CACHE_DIR": str(TEST_MODEL_CACHE)}
    out = subprocess.run(
        [sys.executable, "bench/scale_bench.py", "--tiny", "--rows", "64", "--shard-rows", "16", "--replicas", "1", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    one, two = [json.loads(line) for line in out.stdout.strip().splitlines()[1:]]
    assert (one["status"], one["rows"], one["replicas_used"]) == ("completed", 64, 1)
    assert (two["status"], two["rows"], two["shards"], two["replicas_used"]) == ("completed", 64, 4, 2)
    assert two["speedup"] > 0
