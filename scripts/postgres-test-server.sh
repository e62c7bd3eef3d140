#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the gateway's Postgres tests (PostgreSQL from Debian's
# packages: `apt-get install postgresql`).
#   scripts/postgres-test-server.sh start DIR [PORT]  -> prints the URL (postgres://fedroute@127.0.0.1:PORT/fedroute_test)
#   scripts/postgres-test-server.sh stop DIR
# The server runs as the `postgres` user when started by root (PostgreSQL refuses to run as root), trusts
# local connections (a test server only) and keeps everything under DIR.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?data folder}
port=${3:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
as_owner() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
case "$action" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_owner "'$bin/initdb' -D '$dir/data' -U fedroute --auth=trust >'$dir/initdb.log' 2>&1"
    as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off\" -w start >/dev/null"
    as_owner "'$bin/createdb' -h 127.0.0.1 -p $port -U fedroute fedroute_test"
    echo "postgres://fedroute@127.0.0.1:$port/fedroute_test?sslmode=disable"
    ;;
stop)
    as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop >/dev/null" || true
    ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
