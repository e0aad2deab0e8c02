#!/usr/bin/env bash
# ./dev bench [--smoke --out DIR]: every benchmark, one run, one QEMU, one
# guest kernel; regenerates docs/benchmarks.md and docs/benchmarks.png.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
exec /usr/bin/python3 bench/run.py "$@"
