#!/usr/bin/env bash
# Instruction counts under callgrind: stable on a noisy shared machine, so use them to compare
# commits. Usage: perf/callgrind.sh [loadgen args...]  (defaults to a short in-memory run)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build --profile profiling -p loadgen
out=target/callgrind.out
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--connections 16 --messages 300)
valgrind --tool=callgrind --callgrind-out-file="$out" target/profiling/loadgen "${args[@]}"
callgrind_annotate "$out" | head -40
