#!/usr/bin/env bash
# A guided payment, end to end, in a throwaway directory: starts anvil and the daemon
# (with a local cosigner), creates a 2-of-3 wallet (this CLI is the recovery party),
# funds it from an anvil dev account, sets a policy, gives an agent a session, sends a
# payment as the agent, shows a denial, and verifies the audit trail.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p mandate-cli
bin=$PWD/target/release/mandate
anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
[ -x "$anvil" ] || npm ci --no-audit --no-fund --silent
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
rpc_port=$(free_port); api_port=$(free_port)
step() { printf '\n== %s\n' "$*"; }

step "anvil on 127.0.0.1:$rpc_port"
"$anvil" --host 127.0.0.1 --port "$rpc_port" --silent &
pids+=($!)
rpc=http://127.0.0.1:$rpc_port

step "mandate init --dev --auto-provision (one host: the three parties in one directory)"
$bin init --dev --auto-provision --data-dir "$work/data" --cosigner-addr "127.0.0.1:$(free_port)" \
  --service-addr "127.0.0.1:$(free_port)"
export MANDATE_MASTER_PASSWORD_FILE=$work/data/master-password
export MANDATE_URL=http://127.0.0.1:$api_port
export MANDATE_RECOVERY_DIR=$work/data/recovery
(umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/recovery-passphrase")
export MANDATE_RECOVERY_PASSPHRASE_FILE=$work/recovery-passphrase

step "mandate serve --dev"
$bin serve --data-dir "$work/data" --listen "127.0.0.1:$api_port" --rpc-url "$rpc" --dev &
pids+=($!)
for _ in $(seq 100); do curl -sf "$MANDATE_URL/v1/health" >/dev/null && break; sleep 0.1; done

step "mandate wallet create (DKG: service + cosigner + this CLI as recovery)"
wallet_json=$($bin --json wallet create --name demo --recovery-out "$work/demo.recovery")
echo "$wallet_json"
wallet=$(echo "$wallet_json" | json '["id"]'); address=$(echo "$wallet_json" | json '["address"]')

step "fund it with 5 ETH from anvil dev account 0"
dev=$(curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}' "$rpc" | json '["result"][0]')
curl -s -H 'content-type: application/json' "$rpc" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendTransaction\",\"params\":[{\"from\":\"$dev\",\"to\":\"$address\",\"value\":\"0x4563918244F40000\"}]}" >/dev/null
$bin wallet balance "$wallet"

step "policy: at most 1 ETH per transaction, 2 ETH per day"
cat > "$work/policy.json" <<JSON
{"version": 1, "rules": [
  {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
  {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "2"}
]}
JSON
$bin policy set --wallet "$wallet" --file "$work/policy.json"

step "a one-hour agent session that may send"
token=$($bin --json session create --wallet "$wallet" --ttl 3600 --scope broadcast | json '["token"]')
echo "token: ${token:0:14}… (shown once; the daemon keeps only its hash)"

to=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
step "the agent pays 0.5 ETH to $to"
curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' -H 'Idempotency-Key: demo-1' \
  -d "{\"to\":\"$to\",\"amount\":\"0.5\"}" "$MANDATE_URL/v1/wallets/$wallet/transactions"; echo
sleep 1

step "the agent tries 1.5 ETH: denied by policy"
curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"to\":\"$to\",\"amount\":\"1.5\"}" "$MANDATE_URL/v1/wallets/$wallet/transactions"; echo

step "balance after"
$bin wallet balance "$wallet"

step "audit trail"
$bin audit tail -n 8
$bin audit verify
