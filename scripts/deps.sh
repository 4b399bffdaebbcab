#!/usr/bin/env bash
# Installs what building and testing Sockworks needs on a fresh Debian machine, skipping what is
# already there: a C compiler (ring's assembly) and, for interop/ (the crate
# game-networking-sockets builds Valve's C++ GNS with cmake and bindgen), cmake, protoc with
# libprotobuf, OpenSSL, pkg-config and libclang; python3 for the C ABI's ctypes client test
# (capi/c/echo_client.py); openssh-client so the certificate tool's tests check that ssh-keygen
# reads its key files; iproute2 and iptables for the P2P tests' network-namespace hosts and
# NATs, and coturn (STUN/TURN server) for their server-reflexive and relayed paths; tcpdump
# for the relay fleet test's packet capture on the client's host. Needs root
# or sudo only when something is
# missing. The Rust toolchain itself must already be installed (rustup or Debian's cargo).
set -euo pipefail

pkgs=(build-essential cmake protobuf-compiler libprotobuf-dev libssl-dev pkg-config clang libclang-dev python3 openssh-client iproute2 iptables coturn tcpdump)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs or Debian's cargo)" >&2
  exit 1
fi
