#!/usr/bin/env bash
# Soak (issue 16; a script, not in CI): 10 minutes of `loadgen --mode churn`, 5,000
# connection slots turning over (connect, `--exchange` checked reliable round trips,
# disconnect, replace) against a `loadgen --serve` child process, in release mode.
#
#   scripts/soak.sh [OUT_DIR] [extra loadgen args...]     (OUT_DIR default: target/soak)
#
# Writes OUT_DIR/soak.png (throughput, p99 RTT and RSS over time), OUT_DIR/soak.csv (the
# per-second numbers) and OUT_DIR/soak.txt (the summary, also printed). Fails on any lost,
# duplicated, reordered or corrupted reliable message or failed connection (loadgen's exit
# status), and when the verdict on RSS over the second half of the run is not FLAT.
# Env: SOAK_SECONDS (600), SOAK_CONNECTIONS (5000), CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/soak}"
[ $# -gt 0 ] && shift
seconds="${SOAK_SECONDS:-600}"
connections="${SOAK_CONNECTIONS:-5000}"
mkdir -p "$out"
# One UDP socket per client connection (the API's client sockets, as GNS).
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((connections + 1024)) ]; then
    ulimit -n $((connections + 1024)) 2>/dev/null || echo "soak: ulimit -n is $(ulimit -n); raise it for $connections connections" >&2
fi
cargo build --release -p loadgen
target="${CARGO_TARGET_DIR:-target}"
status=0
"$target/release/loadgen" --mode churn --connections "$connections" \
    --seconds "$seconds" --max-seconds $((seconds + 60)) \
    --series "$out/soak.csv" --plot "$out/soak.png" "$@" | tee "$out/soak.txt" || status=$?
if [ "$status" -ne 0 ]; then
    echo "soak: FAILED (loadgen exit $status)" >&2
    exit "$status"
fi
if ! grep -q "verdict: RSS FLAT" "$out/soak.txt"; then
    echo "soak: RSS not flat after warm-up (see $out/soak.png)" >&2
    exit 1
fi
echo "soak: passed; $out/soak.png, $out/soak.csv"
