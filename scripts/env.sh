# Stepline's build environment: source it (`. scripts/env.sh`) before running cargo or
# cargo-leptos by hand. The bootstrap (scripts/bootstrap.sh) installs what this points at.
#
# The wasm standard library is always built from source (`lib-cargo-args` in Cargo.toml:
# -Zbuild-std), which needs the std source and RUSTC_BOOTSTRAP on a stable compiler.
# Two toolchain routes, chosen once per machine:
# - rustup with the wasm32-unknown-unknown target and the rust-src component: use it;
# - otherwise (Debian 12, where rustup cannot download them): Debian's Rust 1.96 for
#   everything, whose rust-web-src package carries the std source.

STEPLINE_CACHE="${STEPLINE_CACHE:-$HOME/.cache/stepline}"
export STEPLINE_CACHE

# One target directory shared by every clone, so a fresh clone (as CI makes) reuses the
# last build instead of spending ten minutes on a cold one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$STEPLINE_CACHE/target}"

if command -v rustup >/dev/null 2>&1 \
    && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    && rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  STEPLINE_TOOLCHAIN_ROUTE=rustup
else
  STEPLINE_TOOLCHAIN_ROUTE=debian
  case ":$PATH:" in
    :/usr/bin:*) ;;
    *) PATH="/usr/bin:$PATH" ;;
  esac
fi
# Lets a stable compiler take -Zbuild-std.
export RUSTC_BOOTSTRAP=1
export STEPLINE_TOOLCHAIN_ROUTE

# Our pinned cargo-leptos and wasm-bindgen, then npm's binaryen (wasm-opt 132: Debian's
# 108 corrupts wasm-bindgen's externref table and breaks hydration).
PATH="$STEPLINE_CACHE/tools/bin:$STEPLINE_CACHE/binaryen/node_modules/.bin:$PATH"
export PATH
