#!/usr/bin/env bash
# Creates (or reuses) the Python venv for the tests that drive Python tools at
# target/mcp-venv and installs into it crates/mandate-e2e/tests/mcp/requirements.txt
# (the official `mcp` SDK) and crates/mandate-e2e/tests/openapi/requirements.txt
# (openapi-spec-validator), exact pins. Idempotent: a stamp holding the
# requirements' sha256 skips the install when nothing changed.
#
# Needs python3 >= 3.11 with pip. Uses `python3 -m venv`; where that cannot
# make a venv with pip (Debian without python3-venv), falls back to
# `virtualenv` installed from PyPI into target/ (no system packages touched).
# PYTHON=/path/to/python3 picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

python=${PYTHON:-python3}
reqs=("$root/crates/mandate-e2e/tests/mcp/requirements.txt" "$root/crates/mandate-e2e/tests/openapi/requirements.txt")
venv=$root/target/mcp-venv
stamp=$venv/.requirements.sha256
virtualenv_pin=virtualenv==21.15.8
pip_flags=(--quiet --disable-pip-version-check --no-input)
export PIP_ROOT_USER_ACTION=ignore  # CI runs as root; older pips ignore the variable

say() { echo "setup-python: $*" >&2; }

command -v "$python" >/dev/null || { say "no '$python' on PATH (need python3 >= 3.11 with pip)"; exit 1; }
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { say "$("$python" --version 2>&1) is too old: the mcp SDK's httpx2 needs Python >= 3.11"; exit 1; }

mkdir -p "$root/target"
# Serialize concurrent runs (parallel test binaries may all call this).
if command -v flock >/dev/null; then
  exec 9>"$root/target/.mcp-venv.lock"
  flock 9
fi

want=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)

healthy() {
  [ -x "$venv/bin/python" ] \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && "$venv/bin/python" -c 'import importlib.metadata as m; m.version("mcp"); m.version("openapi-spec-validator")' 2>/dev/null
}

make_venv() {
  rm -rf "$venv"
  if "$python" -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    return
  fi
  say "'$python -m venv' cannot create a venv with pip here (Debian: python3-venv missing); using virtualenv"
  rm -rf "$venv"
  local boot=$root/target/mcp-venv-bootstrap
  if ! PYTHONPATH=$boot "$python" -c 'import virtualenv' 2>/dev/null; then
    rm -rf "$boot"
    # --target installs outside the system site-packages, so PEP 668 does not object.
    "$python" -m pip install "${pip_flags[@]}" --target "$boot" "$virtualenv_pin"
  fi
  PYTHONPATH=$boot "$python" -m virtualenv --quiet "$venv"
}

if healthy; then
  say "venv up to date ($venv)"
else
  say "creating $venv"
  make_venv
  "$venv/bin/python" -m pip install "${pip_flags[@]}" "${reqs[@]/#/--requirement=}"
  "$venv/bin/python" -c 'import mcp, mcp.client.stdio, mcp.client.streamable_http, openapi_spec_validator, jsonschema' \
    || { say "venv at $venv is not usable after install"; exit 1; }
  echo "$want" >"$stamp"
fi

echo "python: $venv/bin/python"
echo "mcp: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"
echo "openapi-spec-validator: $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))')"
