#!/usr/bin/env bash
# Installs everything Stepline needs to build, run and test on a Debian 12 machine, and
# nothing that is already there: a second run costs seconds. Safe to run any time.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# Versions are pinned: cargo-leptos takes whichever wasm-bindgen is on PATH without a
# version check, so the CLI must match the wasm-bindgen crate pinned in Cargo.toml.
CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132.0.0

step() { printf '\n==> %s\n' "$*"; }
have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# HAProxy: the load balancer in front of three instances (end2end/tests/cluster.spec.ts).
debs=(chromium nodejs npm python3-venv postgresql haproxy)
if [ "$STEPLINE_TOOLCHAIN_ROUTE" = debian ]; then
  debs+=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
fi
missing=()
for deb in "${debs[@]}"; do
  # Node.js may come from outside Debian (it does on these machines): only install it
  # when there is no node at all.
  case "$deb" in
    nodejs|npm) command -v "${deb/nodejs/node}" >/dev/null 2>&1 && continue ;;
  esac
  have_deb "$deb" || missing+=("$deb")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "Installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

mkdir -p "$STEPLINE_CACHE/tools"

installed_version() { "$1" --version 2>/dev/null | awk '{print $2}'; }

if [ "$(installed_version "$STEPLINE_CACHE/tools/bin/cargo-leptos")" != "$CARGO_LEPTOS_VERSION" ]; then
  # The dev profile: its own release profile (fat LTO) takes 48 minutes on two cores, the
  # dev one about 15, and builds the same sites.
  step "Installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes, once per machine)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked \
    --features no_downloads --profile dev --root "$STEPLINE_CACHE/tools"
fi

if [ "$(installed_version "$STEPLINE_CACHE/tools/bin/wasm-bindgen")" != "$WASM_BINDGEN_VERSION" ]; then
  # No --locked: the CLI's own lock file names a crate version missing from the index.
  step "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 6 minutes, once per machine)"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --root "$STEPLINE_CACHE/tools"
fi

if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
  step "Installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
  mkdir -p "$STEPLINE_CACHE/binaryen"
  (cd "$STEPLINE_CACHE/binaryen" && npm install --silent --no-audit --no-fund \
    --prefix . "binaryen@$BINARYEN_VERSION" >/dev/null)
fi

# Playwright's runner, without any browser download: the tests drive Debian's Chromium.
if [ ! -f end2end/node_modules/.package-lock.json ] \
    || ! cmp -s end2end/package-lock.json end2end/node_modules/.stepline-lock; then
  step "Installing the end-to-end test runner (npm ci in end2end/)"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
  cp end2end/package-lock.json end2end/node_modules/.stepline-lock
fi

step "Toolchain ready ($STEPLINE_TOOLCHAIN_ROUTE route): $(rustc --version), cargo-leptos $(installed_version cargo-leptos), wasm-bindgen $(installed_version wasm-bindgen), wasm-opt $(wasm-opt --version | awk '{print $3}')"
