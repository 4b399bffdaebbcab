#!/usr/bin/env bash
# GNS's echo server beside Sockworks', both under the same load of real GNS clients
# (`loadgen --compare`), over a matrix of connections x message size x reliability, and
# printed as one markdown table with ratios Sockworks/GNS.
#
#   scripts/gns-matrix.sh            # builds loadgen and gns-load (release), then ~3 min
#
# Cells: 1 / 16 / 256 connections x 32 B / 1 KiB x reliable / unreliable, 64 messages in
# flight per connection; then 1 connection with 1 message in flight (unloaded latency).
# SendRateMax 256000000 everywhere. SendRateMin: equal to it on the GNS processes (GNS has no
# congestion control; a fast GNS peer is a fixed-rate one), GNS's default 256 KiB/s on the
# Sockworks server, whose congestion controller then chooses the rate between the two.
# 256 x 1 KiB reliable is measured over LONG_SECS (default 10): there the GNS client process
# goes deaf for 2-4 s at a time (its service thread spins in its thinker loop, retransmitting,
# with GNS's lock held; see the README), with either server, so a 3 s window measures little
# but where those stalls fall.
# Knobs (environment): SECS (measured seconds per server, default 3), LONG_SECS, BUDGET (seconds; cells
# not started by then are skipped, default 480), LOG (where the full output goes),
# CARGO_TARGET_DIR, JOBS (cargo -j, default 2).
# Only 127.0.0.1 is used. A reliable cell with loss, duplicates or reordering shows FAILED.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-3}
LONG_SECS=${LONG_SECS:-10}
BUDGET=${BUDGET:-480}
RATE=256000000
TARGET=${CARGO_TARGET_DIR:-target}
LOG=${LOG:-$(mktemp -t gns-matrix.XXXXXX.log)}

cargo build --release -j "${JOBS:-2}" -p loadgen -p sockworks-interop --bins >&2
LOADGEN="$TARGET/release/loadgen"

# connections size mode window
CELLS=()
for conns in 1 16 256; do
  for size in 32 1024; do
    for mode in reliable unreliable; do
      CELLS+=("$conns $size $mode 64")
    done
  done
done
CELLS+=("1 32 reliable 1" "1 1024 reliable 1")
# The unreliable overload cells again with Sockworks' UnreliableMaxAge at 20 ms (extra flags
# after the window): stale echoes are dropped instead of queued, as GNS's full socket does.
CELLS+=("256 1024 unreliable 64 --unreliable-max-age-ms 20" "16 1024 unreliable 64 --unreliable-max-age-ms 20")

echo "gns-matrix: ${#CELLS[@]} cells, ${SECS} s per server, full output in $LOG" >&2
start=$(date +%s)
rows=()
for cell in "${CELLS[@]}"; do
  read -r conns size mode window extra <<<"$cell"
  if (( $(date +%s) - start > BUDGET )); then
    echo "gns-matrix: budget of ${BUDGET} s spent, skipping $cell" >&2
    rows+=("| $conns | $size B | $mode | $window | skipped (time budget) |")
    continue
  fi
  secs=$SECS
  if [[ "$conns $size $mode" == "256 1024 reliable" ]]; then
    secs=$LONG_SECS
  fi
  echo "gns-matrix: $conns connections, $size B, $mode, $window in flight, $secs s" >&2
  set +e
  out=$(timeout 180 "$LOADGEN" --compare --connections "$conns" --window "$window" \
    --message-size "$size" "--$mode" --seconds "$secs" --send-rate-max "$RATE" ${extra:-} 2>>"$LOG")
  rc=$?
  set -e
  printf '%s\n' "$out" >>"$LOG"
  row=$(printf '%s\n' "$out" | sed -n 's/^MATRIX_ROW //p')
  if [[ -n "${extra:-}" && -n "$row" ]]; then
    row=$(printf '%s' "$row" | sed "s/| $mode |/| $mode, SW ${extra#--} |/")
  fi
  if [[ -z "$row" ]]; then
    row="| $conns | $size B | $mode | $window | no result (exit $rc, see $LOG) |"
  elif (( rc != 0 )); then
    row="$row FAILED (exit $rc) |"
  fi
  rows+=("$row")
done

echo
"$LOADGEN" --matrix-header
printf '%s\n' "${rows[@]}"
echo
echo "($(( $(date +%s) - start )) s; server pinned to one core, GNS clients to another; see $LOG)"
