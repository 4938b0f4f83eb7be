#!/usr/bin/env bash
# The alert receivers' Python for Stepline's delivery tests (server/tests/alert_delivery.rs):
# a venv with a pinned aiosmtpd, a real SMTP server; the webhook receiver needs only the
# standard library. The tests start each receiver as its own process.
#
#   scripts/receivers.sh install   create the venv and install aiosmtpd (idempotent)
#   scripts/receivers.sh python    install, then print the venv's python
set -euo pipefail

AIOSMTPD_VERSION=1.4.6
VENV="${STEPLINE_CACHE:-$HOME/.cache/stepline}/receivers-venv"
PY="$VENV/bin/python"

cmd_install() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" >&2
  fi
  if [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("aiosmtpd"))' 2>/dev/null || true)" != "$AIOSMTPD_VERSION" ]; then
    echo "installing aiosmtpd==$AIOSMTPD_VERSION into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" >&2
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  python) cmd_install; echo "$PY" ;;
  *) echo "usage: scripts/receivers.sh install|python" >&2; exit 2 ;;
esac
