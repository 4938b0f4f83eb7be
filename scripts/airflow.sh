#!/usr/bin/env bash
# A real Airflow for Stepline's Airflow-adapter tests: Apache Airflow 3.3.2 (api-server,
# scheduler, dag-processor, triggerer; LocalExecutor) on a private PostgreSQL 15 cluster,
# all on 127.0.0.1 only, on free ports, with all state in one directory. The DAGs are the
# fixtures in server/tests/airflow/dags (one DAG per file, named after its dag_id).
#
#   scripts/airflow.sh install           venv with apache-airflow[postgres]==3.3.2, pinned by
#                                        scripts/airflow-constraints-3.3.2-py3.11.txt (idempotent)
#   scripts/airflow.sh start STATE_DIR   install, start Postgres + Airflow, wait until healthy
#                                        with every fixture DAG parsed, write STATE_DIR/env
#   scripts/airflow.sh stop STATE_DIR    stop Airflow + Postgres by their PID files (idempotent)
#
# After start, `. STATE_DIR/env` gives STEPLINE_AIRFLOW_URL, _USERNAME, _PASSWORD and
# _TOKEN_ACCEPTED_SECONDS (how long Airflow accepts a token: STEPLINE_AIRFLOW_TOKEN_SECONDS
# at start, else a day, plus its leeway).
# `. STATE_DIR/airflow.env` gives the AIRFLOW__* settings, to run the `airflow` CLI of the
# venv by hand against the same instance. Logs: STATE_DIR/{postgres,db-migrate,api-server,
# scheduler,dag-processor,triggerer}.log; task logs under STATE_DIR/airflow/logs.
#
# Needs Debian's postgresql-15 (scripts/bootstrap.sh installs it). PostgreSQL refuses to
# run as root: as root, the cluster runs as the `postgres` system user.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
AIRFLOW_VERSION=3.3.2
CONSTRAINTS="$ROOT/scripts/airflow-constraints-3.3.2-py3.11.txt"
VENV="${STEPLINE_CACHE:-$HOME/.cache/stepline}/airflow-venv"
PY="$VENV/bin/python"
DAGS="$ROOT/server/tests/airflow/dags"
USERNAME=admin
PASSWORD=admin
# How long a token from /auth/token lasts (Airflow's default: a day); the tests set it to
# seconds so that following across an expired token is tested. Airflow accepts a token
# for its leeway more (its default, set here so that the env file can say so).
TOKEN_SECONDS=${STEPLINE_AIRFLOW_TOKEN_SECONDS:-86400}
TOKEN_LEEWAY=10
# Tasks running at once (the tests run several DAGs at a time, and one asserts that parallel
# branches overlap).
PARALLELISM=${STEPLINE_AIRFLOW_PARALLELISM:-8}
COMPONENTS=(api-server scheduler dag-processor triggerer)
START_TIMEOUT=${STEPLINE_AIRFLOW_START_TIMEOUT:-180}

die() { echo "airflow.sh: $*" >&2; exit 1; }

# The installed apache-airflow version and the checksum of the constraints it was
# installed with ("-" when missing).
installed_stamp() {
  local version
  version=$("$PY" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null) || version=-
  echo "$version $(cat "$VENV/.stepline-constraints.sha256" 2>/dev/null || echo -)"
}

cmd_install() {
  local want
  want="$AIRFLOW_VERSION $(sha256sum "$CONSTRAINTS" | cut -d' ' -f1)"
  if [ -x "$PY" ] && [ "$(installed_stamp)" = "$want" ] && [ -x "$VENV/bin/airflow" ]; then
    return 0
  fi
  if [ ! -x "$PY" ]; then
    # The constraints are for Python 3.11 (Debian 12's python3).
    local python=python3
    command -v python3.11 >/dev/null 2>&1 && python=python3.11
    "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || die "$python is not Python 3.11, which $CONSTRAINTS is for"
    echo "creating venv $VENV"
    "$python" -m venv "$VENV"
  fi
  echo "installing apache-airflow[postgres]==$AIRFLOW_VERSION into $VENV (about a minute)"
  "$PY" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" \
    "apache-airflow[postgres]==$AIRFLOW_VERSION"
  [ -x "$VENV/bin/airflow" ] || die "no airflow CLI at $VENV/bin/airflow after install"
  sha256sum "$CONSTRAINTS" | cut -d' ' -f1 >"$VENV/.stepline-constraints.sha256"
}

. "$ROOT/scripts/postgres.sh"

# Live members of the session SID (every process a component started keeps its session,
# even when it moves to a process group of its own), as "pid pid ...". With a second
# argument, only those outside the process group SID: task processes, which the task
# supervisor puts in groups of their own.
session_members() {
  local sid=$1 others=${2:-} stat pid rest fields
  for stat in /proc/[0-9]*/stat; do
    # Field 6 is the session id; field 2 (comm) may hold spaces, so cut after its ')'.
    { read -r rest <"$stat"; } 2>/dev/null || continue
    pid=${rest%% *}
    rest=${rest##*) }
    read -r -a fields <<<"$rest"
    [ "${fields[3]:-}" = "$sid" ] && [ "${fields[0]}" != Z ] || continue
    [ -n "$others" ] && [ "${fields[2]}" = "$sid" ] && continue
    printf '%s ' "$pid"
  done
  return 0
}

# Does the session recorded in PIDFILE still hold a process of ours (one whose command
# line names the Airflow venv)? Guards against acting on a recycled PID.
alive() {
  local pidfile=$1 sid pid
  [ -f "$pidfile" ] || return 1
  sid=$(cat "$pidfile")
  [ -n "$sid" ] || return 1
  for pid in $(session_members "$sid"); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "airflow" && return 0
  done
  return 1
}

signal_pids() {
  local sig=$1 pid
  shift
  for pid in "$@"; do
    kill "-$sig" "$pid" 2>/dev/null || true
  done
}

# Stops a component: SIGTERM to its session (its process group and the task processes'
# groups); 2 s later SIGKILL to task processes still running (an Airflow 3 task only runs
# its on_kill hook on SIGTERM and goes on: Airflow's own supervisor escalates the same
# way, and the scheduler waits for its running tasks before it exits); SIGKILL to what
# remains after 10 s. Only if PIDFILE names a live session of ours.
stop_one() {
  local pidfile=$1 what=$2 sid i
  if ! alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  sid=$(cat "$pidfile")
  kill -TERM -- "-$sid" 2>/dev/null || true
  # shellcheck disable=SC2046
  signal_pids TERM $(session_members "$sid" others)
  for i in $(seq 100); do
    [ -z "$(session_members "$sid")" ] && break
    # shellcheck disable=SC2046
    [ "$i" = 20 ] && signal_pids KILL $(session_members "$sid" others)
    sleep 0.1
  done
  if [ -n "$(session_members "$sid")" ]; then
    echo "airflow.sh: $what (session $sid) still running 10 s after SIGTERM, killing" >&2
    kill -KILL -- "-$sid" 2>/dev/null || true
    # shellcheck disable=SC2046
    signal_pids KILL $(session_members "$sid")
    for i in $(seq 50); do
      [ -z "$(session_members "$sid")" ] && break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  echo "stopped $what (pid $sid)"
}

cmd_stop() {
  local dir=${1:?usage: airflow.sh stop STATE_DIR} c
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  # The api-server last: task supervisors report their tasks' end through it. The others
  # at once: each takes a few seconds to stop gracefully.
  local jobs=()
  for c in scheduler dag-processor triggerer; do
    stop_one "$dir/$c.pid" "$c" &
    jobs+=($!)
  done
  # Only these: a bare `wait` would also wait for the components a failed start launched.
  wait "${jobs[@]}"
  stop_one "$dir/api-server.pid" api-server
  stop_postgres "$dir"
  rm -f "$dir/env"
}

# Prints the last lines of every log in DIR, for a failed start.
log_tails() {
  local dir=$1 f
  for f in "$dir"/*.log; do
    [ -f "$f" ] || continue
    echo "----- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
}

fail_start() {
  local dir=$1
  shift
  log_tails "$dir"
  cmd_stop "$dir" >&2 || true
  die "$*"
}

# Starts `airflow COMPONENT` in a session of its own and records the session id (also its
# process group id) in STATE_DIR/COMPONENT.pid.
start_component() {
  local dir=$1 c=$2 i
  rm -f "$dir/$c.pid"
  # The shell writes its own PID after setsid made it a session leader, then becomes airflow.
  setsid sh -c 'echo $$ >"$0"; exec "$@"' "$dir/$c.pid" "$VENV/bin/airflow" "$c" \
    </dev/null >"$dir/$c.log" 2>&1 &
  for i in $(seq 50); do
    [ -s "$dir/$c.pid" ] && return 0
    sleep 0.1
  done
  fail_start "$dir" "airflow $c did not start"
}

# Waits until every component is healthy and every fixture DAG is parsed. Prints what is
# still missing on failure.
wait_ready() {
  local dir=$1 url=$2 deadline=$((SECONDS + START_TIMEOUT)) c status
  while :; do
    for c in "${COMPONENTS[@]}"; do
      [ -n "$(session_members "$(cat "$dir/$c.pid")")" ] \
        || fail_start "$dir" "airflow $c exited during startup (log: $dir/$c.log)"
    done
    status=$("$PY" - "$url" "$USERNAME" "$PASSWORD" "$DAGS" <<'EOF' 2>&1
import json, os, sys, urllib.request, urllib.error
url, user, password, dags = sys.argv[1:]

def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 **({"Authorization": "Bearer " + token} if token else {})})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)

try:
    health = call("GET", "/api/v2/monitor/health")
except Exception as e:
    sys.exit(f"api-server not answering: {e}")
unhealthy = {k: (v or {}).get("status") for k, v in health.items()
             if (v or {}).get("status") != "healthy"}
if unhealthy:
    sys.exit(f"not healthy yet: {unhealthy}")
token = call("POST", "/auth/token", {"username": user, "password": password})["access_token"]
errors = call("GET", "/api/v2/importErrors?limit=100", token=token)
if errors.get("total_entries"):
    print("IMPORT ERRORS: " + json.dumps(errors["import_errors"], indent=1))
    sys.exit(2)
want = {f[:-3] for f in os.listdir(dags) if f.endswith(".py") and not f.startswith("_")}
have = {d["dag_id"] for d in call("GET", "/api/v2/dags?limit=1000", token=token)["dags"]}
if want - have:
    sys.exit(f"DAGs not parsed yet: {sorted(want - have)}")
EOF
    ) && return 0
    case "$status" in
      *"IMPORT ERRORS"*) fail_start "$dir" "fixture DAGs failed to import: $status" ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail_start "$dir" "Airflow not ready within $START_TIMEOUT s: $status"
    fi
    sleep 1
  done
}

cmd_start() {
  local dir=${1:?usage: airflow.sh start STATE_DIR} c
  cmd_install
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 at $PG_BIN (run scripts/bootstrap.sh)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for c in "${COMPONENTS[@]}"; do
    alive "$dir/$c.pid" && die "already running in $dir (run: scripts/airflow.sh stop $dir)"
  done
  # A cluster left over from an interrupted start.
  stop_postgres "$dir"
  rm -f "$dir/env"

  local started=$SECONDS api worker_logs trigger_logs pg
  read -r api worker_logs trigger_logs pg < <(free_ports 4)

  start_postgres "$dir" "$pg" airflow || fail_start "$dir" "PostgreSQL for Airflow did not start"

  local home="$dir/airflow"
  rm -rf "$home"
  mkdir -p "$home"
  printf '{"%s": "%s"}\n' "$USERNAME" "$PASSWORD" >"$home/passwords.json"
  local jwt_secret secret_key
  jwt_secret=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(64))')
  secret_key=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(64))')
  cat >"$dir/airflow.env" <<EOF
export AIRFLOW_HOME=$home
export AIRFLOW__CORE__DAGS_FOLDER=$DAGS
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=$PARALLELISM
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://postgres@127.0.0.1:$pg/airflow
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=$USERNAME:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$home/passwords.json
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$api
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$api
export AIRFLOW__API__WORKERS=1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$api/execution/
export AIRFLOW__API_AUTH__JWT_SECRET=$jwt_secret
export AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME=$TOKEN_SECONDS
export AIRFLOW__API_AUTH__JWT_LEEWAY=$TOKEN_LEEWAY
export AIRFLOW__API__SECRET_KEY=$secret_key
export AIRFLOW__API__MAXIMUM_PAGE_LIMIT=1000
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$worker_logs
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$trigger_logs
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False
export SCARF_ANALYTICS=false
# Parsing the fixture DAGs must not leave __pycache__ in the repository.
export PYTHONDONTWRITEBYTECODE=1
EOF
  chmod 600 "$dir/airflow.env"
  # shellcheck disable=SC1091
  . "$dir/airflow.env"

  "$VENV/bin/airflow" db migrate </dev/null >"$dir/db-migrate.log" 2>&1 \
    || fail_start "$dir" "airflow db migrate failed (log: $dir/db-migrate.log)"

  for c in "${COMPONENTS[@]}"; do
    start_component "$dir" "$c"
  done
  wait_ready "$dir" "http://127.0.0.1:$api"

  cat >"$dir/env" <<EOF
export STEPLINE_AIRFLOW_URL=http://127.0.0.1:$api
export STEPLINE_AIRFLOW_USERNAME=$USERNAME
export STEPLINE_AIRFLOW_PASSWORD=$PASSWORD
export STEPLINE_AIRFLOW_TOKEN_ACCEPTED_SECONDS=$((TOKEN_SECONDS + TOKEN_LEEWAY))
EOF
  echo "airflow ready in $((SECONDS - started)) s"
  cat "$dir/env"
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) echo "usage: $0 install | start STATE_DIR | stop STATE_DIR" >&2; exit 2 ;;
esac
