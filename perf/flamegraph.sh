#!/usr/bin/env bash
# CPU flamegraph of a loadgen run with perf (cpu-clock: hardware counters are often missing in
# VMs) and inferno. Usage: perf/flamegraph.sh [loadgen args...]; writes target/flamegraph.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || cargo install inferno
RUSTFLAGS="-C force-frame-pointers=yes" cargo build --profile profiling -p loadgen
perf record -e cpu-clock -F 999 --call-graph dwarf -o target/perf.data -- target/profiling/loadgen "$@"
perf script -i target/perf.data | inferno-collapse-perf | inferno-flamegraph > target/flamegraph.svg
echo "wrote target/flamegraph.svg"
