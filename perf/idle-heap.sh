#!/usr/bin/env bash
# Where an idle server connection's memory goes: runs `loadgen --mode idle` under valgrind
# massif (the `--serve` child included), takes a detailed snapshot of the server's live heap
# while the connections sit idle (vgdb), and prints the top allocation sites. Divide the
# bytes of each site by the connection count for bytes per connection (the README's "Idle
# connections at scale" breakdown). Usage: perf/idle-heap.sh [connections, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
n="${1:-2000}"
cargo build --release -p loadgen
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=massif --trace-children=yes --threshold=0.3 --massif-out-file="$out/massif.%p" \
    target/release/loadgen --mode idle --connections "$n" --server-shards 1 --client-shards 4 \
    --connect-window 32 --seconds 20 --max-seconds 120 --message-size 64 --exchange-window 32 \
    >"$out/run.log" 2>&1 &
run=$!
# Wait until every connection is up, then a further 14 s (past the first keepalive round).
for _ in $(seq 240); do
    grep -q "memory " "$out/run.log" && break
    sleep 1
done
grep -q "memory " "$out/run.log" || { cat "$out/run.log" >&2; echo "idle-heap: the run did not connect" >&2; exit 1; }
sleep 14
server=$(sed -n 's/.*server `loadgen --serve` (pid \([0-9]*\).*/\1/p' "$out/run.log" | head -1)
vgdb --pid="$server" detailed_snapshot "$out/snapshot" >/dev/null
wait "$run" || true
grep -E "connect |memory " "$out/run.log"
echo "server live heap, $n idle connections (bytes per site; divide by $n):"
ms_print "$out/snapshot" | grep -E '^->|^  0 ' | cut -c1-160
