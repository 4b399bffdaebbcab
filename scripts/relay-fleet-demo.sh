#!/usr/bin/env bash
# A relay fleet on one machine: two relays (POPs fra and ams), two hosted servers and two
# players, each on its own test host (a network namespace), wired so that players reach only
# the relays and only the relays reach the servers. The backend's part (a CA key, a routing key,
# one signed ticket per player and server) is done with sockworks-cert. Midway the relay that
# player 1 uses is killed: both sessions must finish with every reliable echo back, in order.
#
#   players ──┬── relay fra ──┬── arena-1 (10.98.0.1, on its loopback)
#             └── relay ams ──┴── arena-2 (10.98.0.2)
#
# Needs root (ip netns). Everything it creates is removed on exit. About 30 s after the build.
#   bash scripts/relay-fleet-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "relay-fleet-demo: needs root for network namespaces (ip netns)" >&2
  exit 1
fi

cargo build --release -q -p sockworks-relay -p sockworks-cert
cargo build --release -q -p sockworks --example echo_server --example hosted_client
bin=target/release
ex=target/release/examples

tag="swd$$"
hosts=(players fra ams arena1 arena2)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for h in "${hosts[@]}"; do ip netns del "$tag-$h" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

ns() { echo "$tag-$1"; }
for h in "${hosts[@]}"; do
  ip netns add "$(ns "$h")"
  ip -n "$(ns "$h")" link set lo up
done
# link K A B: a veth /30 10.99.K.0 between hosts A (.1) and B (.2).
link() {
  local k=$1 a=$2 b=$3
  ip link add "$tag${k}a" type veth peer name "$tag${k}b"
  ip link set "$tag${k}a" netns "$(ns "$a")"
  ip link set "$tag${k}b" netns "$(ns "$b")"
  ip -n "$(ns "$a")" addr add "10.99.$k.1/30" dev "$tag${k}a"
  ip -n "$(ns "$b")" addr add "10.99.$k.2/30" dev "$tag${k}b"
  ip -n "$(ns "$a")" link set "$tag${k}a" up
  ip -n "$(ns "$b")" link set "$tag${k}b" up
}
link 0 fra players
link 1 ams players
link 2 fra arena1
link 3 fra arena2
link 4 ams arena1
link 5 ams arena2
ip -n "$(ns arena1)" addr add 10.98.0.1/32 dev lo
ip -n "$(ns arena2)" addr add 10.98.0.2/32 dev lo
ip -n "$(ns fra)" route add 10.98.0.1/32 via 10.99.2.2
ip -n "$(ns fra)" route add 10.98.0.2/32 via 10.99.3.2
ip -n "$(ns ams)" route add 10.98.0.1/32 via 10.99.4.2
ip -n "$(ns ams)" route add 10.98.0.2/32 via 10.99.5.2
echo "== the players' host has no route to the servers:"
ip -n "$(ns players)" route get 10.98.0.1 2>&1 | sed 's/^/   /' || true

echo "== backend: a ticket-signing CA and the fleet's routing key"
"$bin/sockworks-cert" gen-ca --out "$tmp/ca.key" >/dev/null 2>&1
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/routing.key"

declare -A relay_pid
for r in fra ams; do
  addr=10.99.0.1
  [ "$r" = ams ] && addr=10.99.1.1
  ip netns exec "$(ns "$r")" "$bin/sockworks-relay" --listen "$addr:27300" --pop "$r" \
    --ca-keys "$tmp/ca.key.pub" --routing-key-file "$tmp/routing.key" --stats-interval 5 \
    >"$tmp/relay-$r.out" 2>"$tmp/relay-$r.log" &
  relay_pid[$r]=$!
  pids+=($!)
done

declare -A routing
for n in 1 2; do
  ip netns exec "$(ns "arena$n")" env SDR_LISTEN_PORT=27015 SDR_POPID=fra \
    SOCKWORKS_PUBLIC_ADDR="10.98.0.$n:27015" SOCKWORKS_RELAY_ROUTING_KEY="$(cat "$tmp/routing.key")" \
    "$ex/echo_server" --hosted --identity "str:arena-$n" --shards 1 --secs 60 \
    >"$tmp/arena$n.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -qs '^ROUTING=' "$tmp/arena$n.log" && break
    sleep 0.1
  done
  routing[$n]=$(sed -n 's/^ROUTING=//p' "$tmp/arena$n.log")
  [ -n "${routing[$n]}" ] || { echo "arena-$n did not start:"; cat "$tmp/arena$n.log"; exit 1; }
  echo "== arena-$n listens behind the relays; its routing blob (for the backend only): ${routing[$n]:0:24}..."
done

declare -A client_pid
for n in 1 2; do
  ticket=$("$bin/sockworks-cert" create-hostedserver-ticket --ca-key "$tmp/ca.key" \
    --gameserver "str:arena-$n" --client-identity "str:player-$n" --routing "${routing[$n]}" \
    | sed -n 's/^SOCKWORKS_TICKET=//p')
  echo "== backend signs player-$n's ticket for arena-$n (${#ticket} hex digits)"
  ip netns exec "$(ns players)" "$ex/hosted_client" --server-identity "str:arena-$n" \
    --identity "str:player-$n" --relays 10.99.0.1:27300,10.99.1.1:27300 --ticket "$ticket" \
    --messages 400 --interval-ms 20 --timeout-secs 40 >"$tmp/player$n.log" 2>&1 &
  client_pid[$n]=$!
  pids+=($!)
done

for _ in $(seq 100); do
  grep -qs '^RELAY' "$tmp/player1.log" && break
  sleep 0.1
done
sleep 3
used=$(sed -n 's/^RELAY //p' "$tmp/player1.log" | head -1)
victim=fra
[ "$used" = "10.99.1.1:27300" ] && victim=ams
echo "== player-1 plays through relay $victim ($used); killing that relay mid-session"
kill -9 "${relay_pid[$victim]}"
wait "${relay_pid[$victim]}" 2>/dev/null || true

status=0
for n in 1 2; do
  if wait "${client_pid[$n]}"; then result=ok; else result=FAILED; status=1; fi
  echo "== player-$n ($result):"
  sed 's/^/   /' "$tmp/player$n.log"
done
exit $status
