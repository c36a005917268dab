#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: initdb in a temporary folder, listening on loopback only.
#   scripts/pg_test_server.sh start [DIR [PORT]]   prints the URL (postgresql://qbench@127.0.0.1:PORT/qbench)
#   scripts/pg_test_server.sh stop DIR             stop it and remove DIR
#   scripts/pg_test_server.sh halt DIR             stop it, keep the data (a database outage)
#   scripts/pg_test_server.sh restart DIR          start it again on the same port
# PostgreSQL refuses to run as root: as root it runs as the `postgres` user (Debian's package creates it).
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$bindir/initdb" ]] || { echo "pg_test_server: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-start}
case "$cmd" in
start)
    dir=${2:-$(mktemp -d /tmp/qbench-pg.XXXXXX)}
    port=${3:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -U qbench --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    echo "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=100" >"$dir/options"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U qbench qbench
    echo "postgresql://qbench@127.0.0.1:$port/qbench"
    ;;
stop)
    dir=${2:?usage: pg_test_server.sh stop DIR}
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
halt)
    as_owner "$bindir/pg_ctl" -D "${2:?usage: pg_test_server.sh halt DIR}/data" -m immediate -w stop >/dev/null
    ;;
restart)
    dir=${2:?usage: pg_test_server.sh restart DIR}
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >/dev/null
    ;;
*)
    echo "usage: pg_test_server.sh start [DIR [PORT]] | stop DIR | halt DIR | restart DIR" >&2; exit 2 ;;
esac
