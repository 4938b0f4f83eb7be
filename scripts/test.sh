#!/usr/bin/env bash
# Sets up what is missing and runs every test: formatting, the Rust tests (model,
# projector, store, hub, router), the story tests again with Stepline on PostgreSQL, the
# Temporal adapter against a real Temporal dev server and fixture worker, the Airflow
# adapter against a real Airflow on PostgreSQL, both builds (server and WASM), and the
# browser tests (Playwright in Debian's Chromium against the real server, which also
# follows that Temporal).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. scripts/env.sh

step() { printf '\n==> %s\n' "$*"; }

step "Formatting"
cargo fmt --all -- --check

work="$(mktemp -d)"
# Services this script starts are stopped by their PIDs, whatever happens.
cleanup() {
  scripts/temporal.sh stop "$work/temporal" >/dev/null 2>&1 || true
  scripts/airflow.sh stop "$work/airflow" >/dev/null 2>&1 || true
  scripts/postgres.sh stop "$work/postgres" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "Rust tests"
cargo test -p app --features ssr
cargo test -p server
# Alerts delivered to real receivers (a webhook receiver, an SMTP server), each a process.
STEPLINE_RECEIVER_PYTHON="$(scripts/receivers.sh python)"
export STEPLINE_RECEIVER_PYTHON
cargo test -p server --test alert_delivery -- --include-ignored
# The OpenAPI document, validated by a standard validator (openapi-spec-validator).
STEPLINE_OPENAPI_VALIDATOR="$(scripts/openapi-validator.sh path)" \
  cargo test -p server --test openapi -- --include-ignored

step "The story tests again on PostgreSQL (a private cluster on loopback)"
# Each test's Stepline gets a database of its own on this server (tests/common/database.rs).
scripts/postgres.sh start "$work/postgres"
postgres_url="$(. "$work/postgres/env" && echo "$STEPLINE_POSTGRES_URL")"
export STEPLINE_TEST_POSTGRES_URL="$postgres_url"
cargo test -p server --lib projector
cargo test -p server --test api --test authorization --test builtin_engine --test commands \
  --test alerts --test connections --test forecast --test fuzz --test internal_errors --test leases
cargo test -p server --test alert_delivery -- --include-ignored
# Retention, but SQLite's own write lock (BEGIN IMMEDIATE; PostgreSQL's is an advisory lock).
cargo test -p server --test retention -- --skip a_write_transaction_holds_the_write_lock_from_its_start
# Several instances on one database (ignored without a PostgreSQL to run on).
cargo test -p server --test instances -- --include-ignored
unset STEPLINE_TEST_POSTGRES_URL

step "Temporal adapter against a real Temporal dev server"
scripts/temporal.sh start "$work/temporal"
. "$work/temporal/env"
cargo test -p server --test temporal -- --include-ignored
# ...and with Stepline on PostgreSQL.
STEPLINE_TEST_POSTGRES_URL="$postgres_url" cargo test -p server --test temporal -- --include-ignored

step "Airflow adapter against a real Airflow 3 on PostgreSQL"
# Airflow's tokens last 20 s here, so that following goes on across their expiry.
STEPLINE_AIRFLOW_TOKEN_SECONDS=20 scripts/airflow.sh start "$work/airflow"
. "$work/airflow/env"
cargo test -p server --test airflow -- --include-ignored
# ...and with Stepline on PostgreSQL.
STEPLINE_TEST_POSTGRES_URL="$postgres_url" cargo test -p server --test airflow -- --include-ignored

step "Building the site (server + WASM)"
cargo leptos build

step "Browser tests"
# The browser tests' Stepline also follows the Temporal dev server (mixed-engine list).
cat > "$work/temporal-sources.toml" <<EOF
[[source]]
name = "e2e"
url = "$STEPLINE_TEMPORAL_HTTP"
task_queue = "$STEPLINE_TEMPORAL_TASK_QUEUE"
compensation_prefixes = ["compensate_"]
poll_interval = "250ms"
import_since = "5s"
EOF
export STEPLINE_TEMPORAL_SOURCES="$work/temporal-sources.toml"
# ...and the Airflow (an Airflow run beside a Temporal and a built-in one).
cat > "$work/airflow-sources.toml" <<EOF
[[source]]
name = "e2e"
url = "$STEPLINE_AIRFLOW_URL"
username = "$STEPLINE_AIRFLOW_USERNAME"
password_env = "STEPLINE_AIRFLOW_PASSWORD"
tags = ["stepline-fixture"]
compensation_prefixes = ["compensate_"]
poll_interval = "500ms"
import_since = "5s"
EOF
export STEPLINE_AIRFLOW_SOURCES="$work/airflow-sources.toml"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export STEPLINE_E2E_PORT="$port"
# The OpenID Connect provider the SSO tests sign in through (end2end/oidc/provider.mjs,
# started by Playwright), and Stepline's providers file naming it.
oidc_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export STEPLINE_E2E_OIDC_PORT="$oidc_port"
cat > "$work/sign-in-providers.toml" <<EOF
[[provider]]
name = "e2e"
label = "Test SSO"
issuer = "http://127.0.0.1:$oidc_port"
client_id = "stepline-e2e"
client_secret_env = "STEPLINE_OIDC_E2E_SECRET"
scopes = ["email", "profile", "groups"]

[[provider.roles]]
group = "stepline-operators"
role = "operator"

[[provider.roles]]
group = "stepline-viewers"
role = "viewer"
EOF
export STEPLINE_SIGN_IN_PROVIDERS="$work/sign-in-providers.toml"
# In-house engines that take commands by pulling them: one the browser test plays, and
# the reference engine of examples/inhouse-engine (started by its browser test).
cat > "$work/push-sources.toml" <<EOF
[[source]]
name = "e2e-inhouse"
actions = ["pause", "resume", "cancel"]
delivery = "pull"

[[source]]
name = "e2e-reference"
actions = ["pause", "resume", "cancel", "retry", "clone"]
delivery = "pull"
EOF
export STEPLINE_PUSH_SOURCES="$work/push-sources.toml"
export STEPLINE_SERVER_BIN="$CARGO_TARGET_DIR/debug/server"
export STEPLINE_SITE_ROOT="$PWD/target/site"
export STEPLINE_E2E_DATABASE_URL="sqlite://$work/e2e.db"
# Three more instances on the PostgreSQL cluster, behind HAProxy (tests/cluster.spec.ts).
export STEPLINE_E2E_POSTGRES_URL="$postgres_url"
(cd end2end && npx playwright test)
