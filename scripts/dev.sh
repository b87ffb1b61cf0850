#!/usr/bin/env bash
# Runs the daemon on embedded defaults: SQLite in ./mandate-data, a local cosigner
# process (--dev), and — unless MANDATE_RPC_URL names a node — a local anvil chain on
# 127.0.0.1:8545 (installed from npm on first use). First run provisions the data
# directory in the single-host development layout (`init --dev`: the three parties in
# one directory) with a generated master password (./mandate-data/master-password,
# 0600). Not for real funds: README, "Production layout", runs the parties apart.
# Ctrl-C stops everything. See scripts/demo.sh for a guided payment.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p mandate-cli
bin=target/release/mandate
data=${MANDATE_DATA_DIR:-./mandate-data}
rpc=${MANDATE_RPC_URL:-}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

if [ -z "$rpc" ]; then
  anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
  [ -x "$anvil" ] || npm ci --no-audit --no-fund --silent
  "$anvil" --host 127.0.0.1 --port 8545 --silent &
  pids+=($!)
  rpc=http://127.0.0.1:8545
  sleep 1
fi
if [ ! -f "$data/data.db" ]; then
  $bin init --dev --auto-provision --data-dir "$data"
fi
export MANDATE_MASTER_PASSWORD_FILE=${MANDATE_MASTER_PASSWORD_FILE:-$data/master-password}
$bin serve --data-dir "$data" --rpc-url "$rpc" --dev &
pids+=($!)
wait "${pids[-1]}"
