#!/usr/bin/env bash
# ./dev bench: protocol-level figures (pciefw-bench), unpinned and with
# everything on one CPU.  Arguments are passed to pciefw-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== pciefw-bench (processes placed by the scheduler)"
build/bench/pciefw-bench "$@"
echo
echo "== pciefw-bench --pin 0 (benchmark, endpoints and baseline on CPU 0)"
build/bench/pciefw-bench --pin 0 "$@"
