#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer's coverage instrumentation on the stable toolchain (no
# sanitizer: the flags `cargo fuzz build --sanitizer none` passes, so cargo-fuzz is not needed)
# and runs each over its committed corpus (fuzz/corpus/<target>) plus a bounded number of new
# executions. New inputs go to a scratch directory, never into the committed corpus.
#
# Usage: scripts/fuzz-smoke.sh [runs-per-target, default 20000] [seconds cap per target, default 5]
#   FUZZ_TARGETS="frames connection"  only these targets
#   FUZZ_ARGS="-max_len=4096"          extra libFuzzer flags
# A crash exits non-zero and leaves the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=${1:-20000}
secs=${2:-5}

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# Own target dir (the instrumented build must not mix with the workspace's), and --target so
# the flags skip build scripts and proc macros, as cargo-fuzz does.
export CARGO_TARGET_DIR="$PWD/target"
cargo build --release --target "$host" --bins
bin="$CARGO_TARGET_DIR/$host/release"

targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^sockworks-fuzz$')}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t" "$scratch/$t"
  start=$SECONDS
  # shellcheck disable=SC2086
  out=$("$bin/$t" "$scratch/$t" "corpus/$t" -runs="$runs" -max_total_time="$secs" \
    -max_len=4096 -artifact_prefix="artifacts/$t/" -print_final_stats=1 ${FUZZ_ARGS:-} 2>&1) || {
    echo "$out" | tail -40
    echo "== $t: FAILED (input saved under fuzz/artifacts/$t/)" >&2
    exit 1
  }
  execs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
  echo "== $t: ok, $execs executions in $((SECONDS - start)) s ($(ls "corpus/$t" | wc -l) seeds)"
done
