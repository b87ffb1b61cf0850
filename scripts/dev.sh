#!/usr/bin/env bash
# Local demo of what exists today (the threshold core): a cosigner and a service
# party, each in its own process with its own data directory and secret, on
# 127.0.0.1; the recovery party (this CLI) creates a wallet by 2-of-3 DKG and the
# service signs a transfer with the cosigner. Leaves both parties running until
# Ctrl-C. The daemon (`mandate serve`) replaces the service process in the next issue.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p mandate-cli
bin=target/release/mandate
data=${MANDATE_DATA_DIR:-./mandate-data}
mkdir -p "$data" && chmod 700 "$data"

secret() { # 0600 file with a random secret, kept across runs
  [ -f "$data/$1" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$data/$1")
}
secret cosigner.secret; secret master.secret; secret recovery.secret
export MANDATE_COSIGNER_PASSWORD_FILE=$data/cosigner.secret
export MANDATE_MASTER_PASSWORD_FILE=$data/master.secret
export MANDATE_RECOVERY_PASSPHRASE_FILE=$data/recovery.secret

cosigner_addr=127.0.0.1:3200
service_addr=127.0.0.1:3201
if [ ! -f "$data/cosigner/identity.key" ]; then
  c=$($bin --json cosigner init --data-dir "$data/cosigner" | sed 's/.*"public_key":"\([0-9a-f]*\)".*/\1/')
  s=$($bin --json service init --data-dir "$data/service" | sed 's/.*"public_key":"\([0-9a-f]*\)".*/\1/')
  r=$($bin --json recovery init --dir "$data/recovery" | sed 's/.*"public_key":"\([0-9a-f]*\)".*/\1/')
  $bin cosigner pair --data-dir "$data/cosigner" --service-pubkey "$s" --recovery-pubkey "$r" >/dev/null
  $bin service pair --data-dir "$data/service" --cosigner-pubkey "$c" --cosigner-addr $cosigner_addr --recovery-pubkey "$r" >/dev/null
  $bin recovery pair --dir "$data/recovery" --service-pubkey "$s" --service-addr $service_addr \
    --cosigner-pubkey "$c" --cosigner-addr $cosigner_addr >/dev/null
fi

echo "WARNING: this runs the cosigner on the same host; in production it runs on another machine." >&2
$bin cosigner serve --data-dir "$data/cosigner" --listen $cosigner_addr &
cosigner_pid=$!
$bin service serve --data-dir "$data/service" --listen $service_addr &
service_pid=$!
trap 'kill $cosigner_pid $service_pid 2>/dev/null' EXIT
sleep 1

share="$data/recovery-$(date +%s).share"
wallet_json=$($bin --json recovery dkg --dir "$data/recovery" --out "$share")
echo "wallet: $wallet_json"
wallet=$(echo "$wallet_json" | sed 's/.*"wallet_id":"\([^"]*\)".*/\1/')
tx=$($bin --json tx build --chain-id 31337 --nonce 0 --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 \
  --value-wei 100000000000000000 | sed 's/.*"unsigned_tx":"\([^"]*\)".*/\1/')
echo "signed by service + cosigner:"
$bin service sign --data-dir "$data/service" --wallet "$wallet" --tx "$tx"
echo "over the cosigner's per-transaction limit (refused):"
tx=$($bin --json tx build --chain-id 31337 --nonce 1 --to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 \
  --value-wei 5000000000000000000 | sed 's/.*"unsigned_tx":"\([^"]*\)".*/\1/')
$bin service sign --data-dir "$data/service" --wallet "$wallet" --tx "$tx" || true
echo "parties running; Ctrl-C to stop"
wait
