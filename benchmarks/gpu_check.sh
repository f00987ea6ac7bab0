#!/usr/bin/env bash
# GPU check in one command on any CUDA machine, no dataset (< 8 minutes):
#   benchmarks/gpu_check.sh [--device cuda:1] [--out FILE] [--workers N]
# prints one table and writes gpu_check.json; `--device cpu --ci` is the test suite's small CPU form.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python benchmarks/gpu_check.py "$@"
