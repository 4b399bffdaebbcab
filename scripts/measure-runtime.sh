#!/usr/bin/env bash
# Side-by-side figures for the runtime, all in one run on this machine (issue 4's measures):
# raw UDP echo baseline (no protocol, no crypto) vs Sockworks encrypted echo, 1 KiB and 32 B,
# mmsg vs io_uring, 1 vs 2 server shards, and the same load through the public API
# (--mode api). Bounded: each step runs a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p loadgen -p sockworks-benches --bins
raw=target/release/raw_echo
lg=target/release/loadgen
echo "== raw UDP echo baseline (mmsg driver, 64 clients, window 8)"
$raw --secs 3 --window 8 --size 1024 | tail -1
$raw --secs 3 --window 8 --size 1024 --no-offload | tail -1
$raw --secs 3 --window 8 --size 32 | tail -1
$raw --secs 3 --window 8 --size 32 --no-offload | tail -1
echo "== Sockworks encrypted echo (64 connections, window 8, reliable)"
for args in "--message-size 1024 --messages 4000" \
            "--message-size 1024 --messages 4000 --io uring" \
            "--message-size 1024 --messages 4000 --server-shards 2" \
            "--message-size 32 --messages 20000 --window 32" \
            "--mode api --message-size 1024 --messages 4000" \
            "--mode api --message-size 32 --messages 20000 --window 32"; do
  echo "-- loadgen $args"
  $lg $args | sed -n '4,8p'
done
