#!/usr/bin/env bash
# The standard OpenAPI validator (openapi-spec-validator, pinned) that the test of Stepline's
# OpenAPI document runs (server/tests/openapi.rs), in a venv of its own.
#
#   scripts/openapi-validator.sh install   create the venv and install it (idempotent)
#   scripts/openapi-validator.sh path      install, then print the validator's path
set -euo pipefail
cd "$(dirname "$0")"

venv() { ./venv.sh openapi-venv openapi-spec-validator 0.9.0; }

case "${1:-}" in
  install) venv >/dev/null ;;
  path) echo "$(venv)/bin/openapi-spec-validator" ;;
  *) echo "usage: scripts/openapi-validator.sh install|path" >&2; exit 2 ;;
esac
