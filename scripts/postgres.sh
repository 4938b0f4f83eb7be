#!/usr/bin/env bash
# A private PostgreSQL 15 cluster on 127.0.0.1 only, on a free port, with all its state in
# one directory: for Stepline's PostgreSQL tests and for the test Airflow's metadata.
#
#   scripts/postgres.sh start STATE_DIR [DATABASE...]   initdb, start, create the databases
#                                                        (default: stepline), write STATE_DIR/env
#   scripts/postgres.sh stop STATE_DIR                  stop the cluster by its PID (idempotent)
#
# After start, `. STATE_DIR/env` gives STEPLINE_POSTGRES_PORT and STEPLINE_POSTGRES_URL (the
# first database). Log: STATE_DIR/postgres.log. Sourced by scripts/airflow.sh for its
# functions (start_postgres, stop_postgres): running it does nothing else then.
#
# Needs Debian's postgresql-15 (scripts/bootstrap.sh installs it). PostgreSQL refuses to
# run as root: as root, the cluster runs as the `postgres` system user.
set -euo pipefail

PG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_BIN=/usr/lib/postgresql/15/bin
. "$PG_ROOT/scripts/services.sh"

# Runs a PostgreSQL server program: as the `postgres` user when we are root (initdb,
# pg_ctl and postgres refuse root), else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# As root, lets the `postgres` user reach DIR: search (x) permission on DIR and each of
# its ancestors that it cannot pass yet (a mktemp -d directory is 0700). Only the search
# bit: nothing becomes listable or readable.
let_postgres_in() {
  local dir=$1 d
  [ "$(id -u)" = 0 ] || return 0
  d=$dir
  while [ "$d" != / ]; do
    if ! runuser -u postgres -- test -x "$d"; then
      if command -v setfacl >/dev/null 2>&1; then
        setfacl -m u:postgres:x "$d"
      else
        chmod o+x "$d"
      fi
    fi
    d=$(dirname "$d")
  done
  runuser -u postgres -- test -x "$dir" || {
    echo "postgres.sh: the postgres user cannot reach $dir" >&2
    return 1
  }
}

# Is PID a running process (not a zombie waiting for init to reap it)?
running() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Starts a new cluster in DIR/pgdata on PORT (what DIR held before is dropped), records
# its PID in DIR/postgres.pid and creates the DATABASEs. Returns non-zero, with the reason
# on stderr, when something fails; the caller stops what was started.
start_postgres() {
  local dir=$1 port=$2 i db
  shift 2
  rm -rf "$dir/pgdata" "$dir/pgsock"
  mkdir -p "$dir/pgdata" "$dir/pgsock"
  : >"$dir/postgres.log"
  if [ "$(id -u)" = 0 ]; then
    let_postgres_in "$dir" || return 1
    chown postgres: "$dir/pgdata" "$dir/pgsock" "$dir/postgres.log"
  fi
  chmod 700 "$dir/pgdata"
  as_pg "$PG_BIN/initdb" -D "$dir/pgdata" -U postgres --auth=trust --encoding=UTF8 \
    --no-instructions >"$dir/initdb.log" 2>&1 || {
    echo "postgres.sh: initdb failed (log: $dir/initdb.log)" >&2
    return 1
  }
  as_pg "$PG_BIN/pg_ctl" start -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 30 \
    -o "-p $port -k $dir/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200" \
    >/dev/null 2>&1 || {
    echo "postgres.sh: PostgreSQL did not start (log: $dir/postgres.log)" >&2
    return 1
  }
  head -n 1 "$dir/pgdata/postmaster.pid" >"$dir/postgres.pid"
  for i in $(seq 50); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
  done
  for db in "$@"; do
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" || {
      echo "postgres.sh: could not create database $db" >&2
      return 1
    }
  done
}

# Stops the cluster whose PID DIR/postgres.pid records, if that PID is still this
# cluster's postmaster (never a recycled PID).
stop_postgres() {
  local dir=$1 pid
  [ -f "$dir/postgres.pid" ] || return 0
  pid=$(cat "$dir/postgres.pid")
  if [ -n "$pid" ] && running "$pid" \
      && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$dir/pgdata"; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$dir/pgdata" -m fast -w -t 30 >/dev/null 2>&1 || true
    if running "$pid"; then
      echo "postgres.sh: postgres (pid $pid) did not stop, killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped postgres (pid $pid)"
  fi
  rm -f "$dir/postgres.pid"
}

pg_cmd_start() {
  local dir=${1:?usage: postgres.sh start STATE_DIR [DATABASE...]} port
  shift
  [ $# -gt 0 ] || set -- stepline
  [ -x "$PG_BIN/initdb" ] || {
    echo "postgres.sh: no PostgreSQL 15 at $PG_BIN (run scripts/bootstrap.sh)" >&2
    exit 1
  }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # A cluster left over from an interrupted start.
  stop_postgres "$dir"
  rm -f "$dir/env"
  read -r port < <(free_ports 1)
  if ! start_postgres "$dir" "$port" "$@"; then
    tail -n 25 "$dir/postgres.log" >&2 || true
    stop_postgres "$dir" >&2
    exit 1
  fi
  cat >"$dir/env" <<EOF
export STEPLINE_POSTGRES_PORT=$port
export STEPLINE_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/$1
EOF
  echo "postgres ready (pid $(cat "$dir/postgres.pid"))"
  cat "$dir/env"
}

pg_cmd_stop() {
  local dir=${1:?usage: postgres.sh stop STATE_DIR}
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  stop_postgres "$dir"
  rm -f "$dir/env"
}

# Run, not sourced: the commands.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    start) shift; pg_cmd_start "$@" ;;
    stop) shift; pg_cmd_stop "$@" ;;
    *) echo "usage: $0 start STATE_DIR [DATABASE...] | stop STATE_DIR" >&2; exit 2 ;;
  esac
fi
