#!/usr/bin/env bash
# Sets up what is missing and runs every test: formatting, the Rust tests (model,
# projector, store, hub, router), both builds (server and WASM), and the browser tests
# (Playwright in Debian's Chromium against the real server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. scripts/env.sh

step() { printf '\n==> %s\n' "$*"; }

step "Formatting"
cargo fmt --all -- --check

step "Rust tests"
cargo test -p app --features ssr
cargo test -p server

step "Building the site (server + WASM)"
cargo leptos build

step "Browser tests"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export STEPLINE_E2E_PORT="$port"
export STEPLINE_SERVER_BIN="$CARGO_TARGET_DIR/debug/server"
export STEPLINE_SITE_ROOT="$PWD/target/site"
export STEPLINE_E2E_DATABASE_URL="sqlite://$work/e2e.db"
(cd end2end && npx playwright test)
