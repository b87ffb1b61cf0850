//! End-to-end tests of Mandate (not published): `tests/daemon` starts real processes
//! — `mandate init` and `mandate serve` with its cosigner, the CLI as the operator and
//! the recovery party, the MCP stdio server, anvil underneath — and drives them over
//! REST (through `mandate-client`), MCP (the official Python SDK and the MCP
//! Inspector, `tests/mcp`), the dashboard (headless Chromium, `tests/dashboard`) and
//! checks real answers against the OpenAPI document (`tests/openapi`).
//!
//! The tests run the `mandate` binary of this workspace. Before the first test each
//! test binary runs `$CARGO build --locked -p mandate-cli --bin mandate` with the
//! profile it was built with and uses `<target dir>/<profile>/mandate` (a no-op when
//! `cargo test --workspace` has built it already); `MANDATE_BIN=/path/to/mandate`
//! skips the build and uses that binary instead.
//!
//! ```text
//! cargo test -p mandate-e2e --locked                 # all of them (~10 minutes)
//! cargo test -p mandate-e2e --locked --test daemon policy::
//! ```
//!
//! Needs what `scripts/test.sh` installs: anvil (`npm ci`), the Python venv
//! (`scripts/setup-python.sh`) and Chromium for the dashboard test.
