#!/usr/bin/env bash
# The alert receivers' Python for Stepline's delivery tests (server/tests/alert_delivery.rs):
# a venv with a pinned aiosmtpd, a real SMTP server; the webhook receiver needs only the
# standard library. The tests start each receiver as its own process.
#
#   scripts/receivers.sh install   create the venv and install aiosmtpd (idempotent)
#   scripts/receivers.sh python    install, then print the venv's python
set -euo pipefail
cd "$(dirname "$0")"

venv() { ./venv.sh receivers-venv aiosmtpd 1.4.6; }

case "${1:-}" in
  install) venv >/dev/null ;;
  python) echo "$(venv)/bin/python" ;;
  *) echo "usage: scripts/receivers.sh install|python" >&2; exit 2 ;;
esac
