#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly on the stable toolchain (no sanitizer).
# Usage: scripts/fuzz-smoke.sh [seconds-per-target, default 20]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
for t in $(cargo fuzz list); do
  echo "== $t (${secs}s)"
  cargo fuzz run --sanitizer none "$t" -- -max_total_time="$secs" -max_len=2048 2>&1 | tail -3
done
