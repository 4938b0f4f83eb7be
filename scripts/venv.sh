#!/usr/bin/env bash
# A Python venv of its own for one pinned package, made or brought to that version
# (idempotent): `scripts/venv.sh NAME PACKAGE VERSION` prints the venv's folder.
set -euo pipefail

name="$1" package="$2" version="$3"
venv="${STEPLINE_CACHE:-$HOME/.cache/stepline}/$name"
py="$venv/bin/python"
if [ ! -x "$py" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "$("$py" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null || true)" != "$version" ]; then
  echo "installing $package==$version into $venv" >&2
  "$py" -m pip install --quiet --disable-pip-version-check "$package==$version" >&2
fi
echo "$venv"
