#!/usr/bin/env bash
# On the lent GPU machine (device tool, carry [".whl", ".benchcache"], prepared by
# bench/device_wheels.sh): installs the carried wheels, runs the gpu-marked tests, then both
# benchmarks at full size, each under its own time limit, writing JSON lines, one log and two
# profiles to $OUT (at most 8 files come back). Every bench prints each measurement as soon as it
# is taken.
#   GPU_TESTS_S, TEXT_BENCH_S, IMAGE_BENCH_S, IMAGE_COMPILE_S: time limits (0 skips that part);
#   ROWS, VALIDITY: passed on to the text bench; IMAGE_COMPILE_MODE: torch.compile modes for the
#   compiled image bench, one run each (space-separated); TEXT_TORCH_LOGS, IMAGE_TORCH_LOGS:
#   TORCH_LOGS for the text bench and the compiled image bench (perf_hints; graph_breaks,
#   recompiles,perf_hints); IMAGE_FEATURE_REUSE: also measure both image benches with this
#   feature_reuse (approximate images; compiled, it about doubles the warm-up); IMAGE_REUSE_SWEEP:
#   other feature_reuse values to measure after it (comma-separated; same graphs, seconds each).
# python3's torch there is CUDA; nothing can be fetched, so everything else comes from .whl.
set -uo pipefail
started=$SECONDS
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc
  if [ "${GPU_TESTS_S:-90}" -gt 0 ]; then
    timeout ${GPU_TESTS_S:-90} python3 -m pytest -q -m gpu -p no:cacheprovider tests/image_service/test_image_device.py tests/text_service/test_engine.py tests/text_service/test_attention.py 2>&1
  fi
} > "$OUT/gpu.txt" 2>&1
echo "gpu tests done at $((SECONDS - started)) s"; tail -3 "$OUT/gpu.txt"
if [ "${TEXT_BENCH_S:-300}" -gt 0 ]; then
  # perf_hints: torch says in the log when it skips CUDA graphs for the static step, and why.
  TORCH_LOGS=${TEXT_TORCH_LOGS-perf_hints} timeout ${TEXT_BENCH_S:-300} python3 bench/text_bench.py --rows ${ROWS:-1024} --validity ${VALIDITY:-2000} \
    --cache-dir .benchcache --profile "$OUT/text_profile.txt" > "$OUT/text_bench.json" 2>> "$OUT/bench.log"
  echo "text bench exit $? at $((SECONDS - started)) s"
fi
if [ "${IMAGE_BENCH_S:-120}" -gt 0 ]; then
  timeout ${IMAGE_BENCH_S:-120} python3 bench/image_bench.py ${IMAGE_FEATURE_REUSE:+--feature-reuse $IMAGE_FEATURE_REUSE} ${IMAGE_REUSE_SWEEP:+--reuse-sweep $IMAGE_REUSE_SWEEP} --profile "$OUT/image_profile.txt" > "$OUT/image_bench.json" 2>> "$OUT/bench.log"
  echo "image bench exit $? at $((SECONDS - started)) s"
fi
if [ "${IMAGE_COMPILE_S:-0}" -gt 0 ]; then
  # One run per mode in IMAGE_COMPILE_MODE (space-separated; empty: the service's default), each
  # under IMAGE_COMPILE_S. The log says what dynamo split, recompiled, or kept out of CUDA graphs.
  for mode in ${IMAGE_COMPILE_MODE:-service-default}; do
    [ "$mode" = service-default ] && mode_args=() || mode_args=(--compile-mode "$mode")
    TORCH_LOGS=${IMAGE_TORCH_LOGS-graph_breaks,recompiles,perf_hints} timeout ${IMAGE_COMPILE_S} python3 bench/image_bench.py --compile "${mode_args[@]}" ${IMAGE_FEATURE_REUSE:+--feature-reuse $IMAGE_FEATURE_REUSE} ${IMAGE_REUSE_SWEEP:+--reuse-sweep $IMAGE_REUSE_SWEEP} \
      --profile "$OUT/image_compiled_${mode}_profile.txt" \
      > "$OUT/image_compiled_$mode.json" 2>> "$OUT/bench.log"
    echo "compiled image bench ($mode) exit $? at $((SECONDS - started)) s"
  done
fi
for f in "$OUT"/*.json; do echo "== $f"; grep -v '^{"bench"' "$f" | cut -c1-400; done
