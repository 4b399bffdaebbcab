#!/usr/bin/env bash
# The README's test command: installs what is missing (scripts/deps.sh), then runs every test of
# the workspace, the interop tests against real GNS included. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo test --workspace --all-features "$@"
