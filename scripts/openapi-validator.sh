#!/usr/bin/env bash
# The standard OpenAPI validator (openapi-spec-validator, pinned) that the test of Stepline's
# OpenAPI document runs (server/tests/openapi.rs), in a venv of its own.
#
#   scripts/openapi-validator.sh install   create the venv and install it (idempotent)
#   scripts/openapi-validator.sh path      install, then print the validator's path
set -euo pipefail

VALIDATOR_VERSION=0.9.0
VENV="${STEPLINE_CACHE:-$HOME/.cache/stepline}/openapi-venv"
PY="$VENV/bin/python"

cmd_install() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" >&2
  fi
  if [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))' 2>/dev/null || true)" != "$VALIDATOR_VERSION" ]; then
    echo "installing openapi-spec-validator==$VALIDATOR_VERSION into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION" >&2
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  path) cmd_install; echo "$VENV/bin/openapi-spec-validator" ;;
  *) echo "usage: scripts/openapi-validator.sh install|path" >&2; exit 2 ;;
esac
