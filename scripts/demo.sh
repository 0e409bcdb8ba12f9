#!/usr/bin/env bash
# Runs the text service, the image service and the gateway on this machine; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping SDG..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

$PY -m text_service & pids+=($!)
$PY -m image_service & pids+=($!)
$PY -m gateway & pids+=($!)

echo "SDG demo (tiny models with random weights) starting: http://localhost:${UVICORN_PORT:-8000}/ui"
wait -n "${pids[@]}"
