#!/usr/bin/env bash
# Dependency check (the project's stand-in for cargo-deny, which cannot be fetched
# prebuilt here): crate dependencies point one way (DESIGN.md §9), and the core and
# the protocol crate stay free of async runtimes, web frameworks, HTTP clients and
# database drivers, so the part to audit is small.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
tree() { cargo tree --locked -e normal --prefix none -p "$1" | sed 's/ .*//' | sort -u; }

forbidden='^(tokio|axum|hyper|reqwest|sqlx|rusqlite|postgres|tokio-postgres|r2d2|tower|mandate-server|mandate-store)$'
for crate in mandate-core mandate-mpc; do
  bad=$(tree "$crate" | grep -E "$forbidden" || true)
  if [ -n "$bad" ]; then echo "FAIL: $crate depends on: $bad"; fail=1; fi
done

# One-way: a crate may only depend on the mandate crates listed for it.
check_only() {
  local crate=$1; shift
  local allowed="^($crate$(printf '|%s' "$@"))$"
  local bad
  bad=$(tree "$crate" | grep '^mandate-' | grep -vE "$allowed" || true)
  if [ -n "$bad" ]; then echo "FAIL: $crate must not depend on: $bad"; fail=1; fi
}
check_only mandate-core
check_only mandate-mpc mandate-core
check_only mandate-chain mandate-core
check_only mandate-store mandate-core
check_only mandate-cosigner mandate-core mandate-mpc mandate-chain
# The MCP crate holds no authority: it reaches the daemon only through its REST API.
check_only mandate-mcp mandate-core
# The SDK is a client of the REST API only: it holds no key, store or protocol code.
check_only mandate-client mandate-core
check_only mandate-server mandate-core mandate-mpc mandate-chain mandate-store mandate-cosigner mandate-mcp
# Test fixtures depend on no mandate crate; the benchmarks sit on the fixtures and the SDK
# (never on the daemon's code: they reach it as a client does); the end-to-end tests
# have dev-dependencies only (they run the binary).
check_only mandate-test-support
check_only mandate-bench mandate-core mandate-mpc mandate-chain mandate-cosigner mandate-client mandate-test-support
check_only mandate-e2e
check_only mandate-cli mandate-core mandate-mpc mandate-chain mandate-store mandate-cosigner mandate-server mandate-mcp mandate-client mandate-bench mandate-test-support

# The cosigner is the last line of defence: no HTTP stack, no web framework, no database driver.
bad=$(tree mandate-cosigner | grep -E '^(reqwest|hyper|axum|tokio|rusqlite|postgres|tokio-postgres|r2d2)$' || true)
if [ -n "$bad" ]; then echo "FAIL: mandate-cosigner depends on: $bad"; fail=1; fi

# alloy stays lean: no umbrella crate with its `full` feature.
if cargo tree --locked -e normal --prefix none | grep -qE '^alloy v'; then
  echo "FAIL: the alloy umbrella crate is in the tree; depend on the alloy-* crates you need"; fail=1
fi

# Inside the daemon, modules form no import circle (handlers depend on shared
# context, never on each other's helpers; see docs/ARCHITECTURE.md).
python3 scripts/module-cycles.py crates/mandate-server/src || fail=1

[ "$fail" = 0 ] && echo "dependency layering ok"
exit "$fail"
