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

echo "== tests"
cargo test --workspace --locked
