"""Keeps `bench/text_bench.py --tiny` working: it must run the real paths and report its ratios."""

import json
import subprocess
import sys

from tests.conftest import REPO, TEST_MODEL_CACHE


def test_tiny_bench_reports_ratio_against_generate():
    out = subprocess.run(
        [sys.executable, "bench/text_bench.py", "--tiny", "--rows", "16", "--validity", "24", "--cache-dir", str(TEST_MODEL_CACHE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    result = lines[-1]
    # Each measurement is also printed on its own as it is taken (a GPU call cut short keeps them).
    phases = [line["phase"] for line in lines[:-1]]
    assert phases[:2] == ["generate_warm_up", "baseline_generate"] and phases[-1] == "validity"
    assert result["engine"]["profile"]["steps"] > 0
    assert result["ratio_vs_generate"] > 0
    assert result["service_vs_engine"] > 0
    assert result["engine"]["rows"] == 16 and result["service"]["rows"] == 16
    assert result["rest"]["status"] == "completed" and result["rest"]["rows"] == 16
    assert result["rest_vs_engine"] > 0
    assert result["baseline_generate"]["tokens_per_s"] > 0
    assert result["validity"]["valid_pct"] == 100.0
    assert "demo model" in result["model"]
