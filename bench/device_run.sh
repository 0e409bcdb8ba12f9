#!/usr/bin/env bash
# On the lent GPU machine (device tool, carry [".whl", ".benchcache"], prepared by
# bench/device_wheels.sh): installs the carried wheels and runs both
# benchmarks at full size, one after the other, writing their JSON lines and logs to $OUT.
#   python3's torch there is CUDA; nothing can be fetched, so everything else comes from .whl.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -m gpu tests/text_service/test_engine.py tests/image_service 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
timeout ${TEXT_BENCH_S:-300} python3 bench/text_bench.py --rows ${ROWS:-1024} --validity ${VALIDITY:-2000} \
  --cache-dir .benchcache > "$OUT/text_bench.json" 2> "$OUT/text_bench.log"; echo "text bench exit $?"
timeout ${IMAGE_BENCH_S:-240} python3 bench/image_bench.py > "$OUT/image_bench.json" 2> "$OUT/image_bench.log"
echo "image bench exit $?"
tail -c 2000 "$OUT/text_bench.json" "$OUT/image_bench.json"
