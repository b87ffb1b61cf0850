#!/usr/bin/env bash
# The SDKs' tests (docs/SDKS.md): sdks/typescript with node's test runner on the compiled
# output, sdks/python with pytest, each against a real daemon, cosigner and anvil that
# the suite starts itself, plus the check that the SDKs and GET /v1/openapi.json agree.
# Installs what it needs: npm ci in sdks/typescript (exact pins in its lockfile), and a
# Python venv at target/sdk-venv from sdks/python/requirements-test.txt (exact pins).
# MANDATE_BIN names the daemon binary (default: <target>/debug/mandate, built if missing);
# anvil comes from the repository's `npm ci` (MANDATE_ANVIL overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
export MANDATE_BIN=${MANDATE_BIN:-$target/debug/mandate}
if [ ! -x "$MANDATE_BIN" ]; then
  echo "== building mandate into $target (MANDATE_BIN unset and $MANDATE_BIN missing)"
  cargo build --locked -q -p mandate-cli --bin mandate
fi
anvil=${MANDATE_ANVIL:-$root/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}
[ -x "$anvil" ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null
export MANDATE_ANVIL=$anvil

echo "== TypeScript SDK (sdks/typescript)"
(
  cd sdks/typescript
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  npm run --silent build
  node --test test/
)

echo "== Python SDK (sdks/python)"
python=${PYTHON:-python3}
venv=$target/sdk-venv
reqs=$root/sdks/python/requirements-test.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$reqs" | cut -d' ' -f1)
pip_flags=(--quiet --disable-pip-version-check --no-input)
export PIP_ROOT_USER_ACTION=ignore
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$venv/bin/python" -c 'import httpx, coincurve, Crypto, langchain_core, pytest' 2>/dev/null; then
  echo "creating $venv"
  rm -rf "$venv"
  mkdir -p "$target"
  if ! { "$python" -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip --version >/dev/null 2>&1; }; then
    # As scripts/setup-python.sh: without python3-venv, virtualenv from PyPI into target/.
    rm -rf "$venv"
    boot=$target/mcp-venv-bootstrap
    PYTHONPATH=$boot "$python" -c 'import virtualenv' 2>/dev/null \
      || "$python" -m pip install "${pip_flags[@]}" --target "$boot" virtualenv==21.15.8
    PYTHONPATH=$boot "$python" -m virtualenv --quiet "$venv"
  fi
  "$venv/bin/python" -m pip install "${pip_flags[@]}" --requirement "$reqs"
  echo "$want" >"$stamp"
fi
(
  cd sdks/python
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests
)
