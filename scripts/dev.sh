#!/usr/bin/env bash
# Runs the daemon on embedded defaults: SQLite in ./mandate-data, a local cosigner
# process (--dev), and — unless MANDATE_RPC_URL names a node — a local anvil chain on
# 127.0.0.1:8545 (installed from npm on first use). First run provisions the data
# directory in the single-host development layout (`init --dev`: the three parties in
# one directory) with a generated master password (./mandate-data/master-password,
# 0600). Not for real funds: README, "Production layout", runs the parties apart.
# Builds into $CARGO_TARGET_DIR (default ./target). Ctrl-C stops everything. See
# README, "Using it", for the next steps, and scripts/demo.sh for a guided payment.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${MANDATE_DATA_DIR:-./mandate-data}
rpc=${MANDATE_RPC_URL:-}
listen=${MANDATE_LISTEN:-127.0.0.1:3100}
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/mandate

in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
refuse_busy() {
  if in_use "$1"; then
    echo "error: $1 is already in use ($2). Another scripts/dev.sh or mandate serve is probably running:" >&2
    echo "       stop it (Ctrl-C in its shell), or choose other addresses ($3)." >&2
    exit 1
  fi
}
refuse_busy "$listen" "the daemon's REST API" "MANDATE_LISTEN=127.0.0.1:3110"
[ -n "$rpc" ] || refuse_busy 127.0.0.1:8545 "the local anvil chain" "MANDATE_RPC_URL=http://… for a node of your own"
if [ ! -f "$data/data.db" ]; then
  refuse_busy 127.0.0.1:3200 "the local cosigner" "another MANDATE_DATA_DIR after \`mandate init --dev --cosigner-addr …\`"
  refuse_busy 127.0.0.1:3201 "the daemon's service party" "\`mandate init --dev --service-addr …\`"
fi

echo "== building mandate (release; the first build takes several minutes) into $target" >&2
cargo build --release --locked -p mandate-cli
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

if [ -z "$rpc" ]; then
  anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
  [ -x "$anvil" ] || npm ci --no-audit --no-fund --silent
  "$anvil" --host 127.0.0.1 --port 8545 --silent &
  pids+=($!)
  rpc=http://127.0.0.1:8545
  sleep 1
  if [ -f "$data/data.db" ]; then
    echo "note: this is a fresh anvil chain; wallets $data used on an earlier one are not on it (the daemon names" >&2
    echo "      them below if so). To start over: stop this, \`mv $data $data.old\`, run scripts/dev.sh again." >&2
  fi
fi
if [ ! -f "$data/data.db" ]; then
  "$bin" init --dev --auto-provision --data-dir "$data"
fi
export MANDATE_MASTER_PASSWORD_FILE=${MANDATE_MASTER_PASSWORD_FILE:-$data/master-password}
"$bin" serve --data-dir "$data" --listen "$listen" --rpc-url "$rpc" --dev &
pids+=($!)
url=http://$listen
for _ in $(seq 150); do
  curl -sf "$url/v1/health" >/dev/null 2>&1 && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.2
done
if curl -sf "$url/v1/health" >/dev/null 2>&1; then
  bindir=$(cd "$(dirname "$bin")" && pwd); datadir=$(cd "$data" && pwd)
  cat >&2 <<EOF

Mandate is running (Ctrl-C stops it, anvil and the cosigner).
  REST API:   $url
  Dashboard:  $url/dashboard
  Data:       $data (master password in $data/master-password)
Next, in another shell (README, "Using it", has the whole walk-through):
  export PATH="$bindir:\$PATH" MANDATE_MASTER_PASSWORD_FILE="$datadir/master-password"
  export MANDATE_RECOVERY_DIR="$datadir/recovery" MANDATE_RECOVERY_PASSPHRASE_FILE=~/ops.passphrase   # see README
  mandate wallet create --name ops --recovery-out ~/ops.recovery
EOF
fi
wait "${pids[-1]}"
