#!/usr/bin/env bash
# Sets up what is missing, builds Stepline, and starts it on the embedded default:
# SQLite under ./data/, on http://127.0.0.1:3000/orchestration (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. scripts/env.sh

echo "==> Building Stepline (release; the first build takes several minutes)"
cargo leptos build --release

mkdir -p data
export LEPTOS_SITE_ROOT="$PWD/target/site"
export STEPLINE_DATABASE_URL="${STEPLINE_DATABASE_URL:-sqlite://$PWD/data/stepline.db}"
# --demo: the built-in engine runs the demo workflows of ./workflows and keeps starting
# new runs, so the console shows active, queued, completed, failed and slow ones.
exec "$CARGO_TARGET_DIR/release/server" --demo "$@"
