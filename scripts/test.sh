#!/usr/bin/env bash
# The whole test suite: formatting, lints, dependency layering, every test.
# Installs what the tests need by itself; starts and stops its own processes on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy (-D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== dependency layering"
scripts/check-deps.sh

echo "== test dependencies"
# A real anvil for the chain tests, the MCP Inspector CLI and playwright-core, pinned in package.json / package-lock.json.
anvil=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
npm ci --no-audit --no-fund --loglevel=error >/dev/null
if [ ! -x "$anvil" ]; then
  echo "FAIL: $anvil is missing after \`npm ci\` (needs npm and access to the npm registry)"; exit 1
fi
"$anvil" --version | sed -n 1p
# A real MCP client for the MCP tests (the official Python SDK) and the OpenAPI validators, pinned, in target/mcp-venv.
scripts/setup-python.sh
# A real browser for the dashboard test: Debian's Chromium (driven by playwright-core, pinned above).
if [ ! -x /usr/bin/chromium ]; then
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version
# A real PostgreSQL for the store's and the replicas' tests (started by each test on a free
# port in a temp dir, as an unprivileged user when run as root): Debian's server package.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
ls /usr/lib/postgresql/*/bin/pg_ctl

echo "== tests"
cargo test --workspace --locked
scripts/test-sdks.sh  # the TypeScript and Python SDKs against a real daemon (docs/SDKS.md)
