#!/usr/bin/env bash
# Mutation testing (not in CI): how many deliberately broken versions of the policy
# engine (crates/mandate-core/src/policy/) and of the cosigner's limits and ledger
# the crates' own tests notice. Target: at least 90% of viable mutants caught.
#
# Needs `cargo install --locked cargo-mutants`. Each run copies the tree and builds
# every mutant; with CARGO_TARGET_DIR set, the copies build there (warm), so do not
# build anything else in that target directory while this runs. Extra arguments go
# to both runs (e.g. `-F lookback`). Equivalent mutants are excluded, with reasons,
# in .cargo/mutants.toml. Results: $MUTANTS_OUT (default target/mutants)/{core,cosigner}.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || { echo "install it first: cargo install --locked cargo-mutants" >&2; exit 1; }
out=${MUTANTS_OUT:-target/mutants}
mkdir -p "$out"
status=0

run() {
  local name=$1; shift
  cargo mutants --timeout 60 -j 1 -o "$out/$name" "$@" 2>&1 | tee "$out/$name.log"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || status=$code
}

run core -p mandate-core -f 'crates/mandate-core/src/policy/*.rs' "$@"
run cosigner -p mandate-cosigner -f crates/mandate-cosigner/src/limits.rs -f crates/mandate-cosigner/src/ledger.rs "$@"

echo
for name in core cosigner; do
  dir=$out/$name/mutants.out
  count() { if [ -f "$dir/$1.txt" ]; then grep -c . "$dir/$1.txt" || true; else echo 0; fi; }
  caught=$(count caught) missed=$(count missed) timeout=$(count timeout)
  viable=$((caught + missed + timeout))
  echo "$name: $(grep 'mutants tested' "$out/$name.log" | tail -1)"
  [ "$viable" -gt 0 ] && echo "$name: caught $caught of $viable viable ($((100 * caught / viable))%)"
done
exit $status
