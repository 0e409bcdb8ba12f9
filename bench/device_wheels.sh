#!/usr/bin/env bash
# Prepares a run of the benchmarks on the lent GPU machine, here, so no device time goes to it:
# - .whl/: the wheels its image lacks (or holds in other versions), for Python 3.12 on x86_64;
# - .benchcache/: the bench's 151,936-token tokenizer (training it takes minutes on a CPU).
# Then call the device tool with carry [".whl", ".benchcache"] and `bash bench/device_run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
for path in /.whl/ /.benchcache/; do
  grep -qx "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude
done
rm -rf .whl && mkdir -p .whl
PINS=(
  xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2
  diffusers==0.42.1 importlib_metadata==10.2.0
  grpcio==1.85.3 grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 protobuf==7.36.2
  pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0
  typing-inspection==0.4.5 python-dotenv==1.2.4
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  rfc3339-validator==0.1.4
  fastapi==0.165.0 starlette==1.10.0 uvicorn==0.54.0 opentelemetry-api==1.45.2
)
PLATFORMS=()
for n in 17 24 27 28 31 34 35 39; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${PINS[@]}"
.venv/bin/python -c "
import sys; sys.path.insert(0, 'bench'); from pathlib import Path
from text_bench import QWEN25_15B, bench_tokenizer
bench_tokenizer(QWEN25_15B['vocab_size'], Path('.benchcache'))"
du -sh .whl .benchcache
