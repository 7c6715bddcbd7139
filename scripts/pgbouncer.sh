#!/usr/bin/env bash
# PgBouncer in TRANSACTION mode in front of the local PostgreSQL, for
# slotpool-postgres's tests/pooler.rs and tests/fleet.rs.
#
#   scripts/pgbouncer.sh start    # idempotent: starts it unless it runs
#   scripts/pgbouncer.sh status   # exit 0 when it answers, 1 otherwise
#   scripts/pgbouncer.sh stop     # stops it and removes its directory
#
# Listens on 127.0.0.1:${PGBOUNCER_PORT:-6432} (loopback only), trust auth
# for the users in its auth_file, in front of the primary at
# ${PGHOST:-127.0.0.1}:${PGPORT:-5432}. Databases:
#
#   test, postgres        the server's databases of the same name
#   slotpool_fleet        database `test`, every server connection logged in
#                         as the role slotpool_pgbouncer (created here), so
#                         pg_stat_activity counts PgBouncer's server
#                         connections by usename (tests/fleet.rs)
#   slotpool_interleave   database `postgres` with pool_size 2: the named
#                         prepared-statement failure (tests/pooler.rs)
#
# Settings from the environment (the tests read them back with SHOW CONFIG):
#   PGBOUNCER_POOL_SIZE            default_pool_size        (10)
#   PGBOUNCER_MAX_CLIENT_CONN      max_client_conn          (400)
#   PGBOUNCER_SERVER_IDLE_TIMEOUT  server_idle_timeout, s   (120)
#   PGBOUNCER_CLIENT_IDLE_TIMEOUT  client_idle_timeout, s   (300)
#   PGBOUNCER_DIR                  config/log/pid directory (/tmp/slotpool-pgbouncer)
#
# PgBouncer refuses to run as root: it runs as the user postgres. Without
# the binary it is installed with apt-get (CI runs as root).
set -euo pipefail
# The servers run as postgres, who may not be able to enter the caller's
# directory (a CI checkout under a private temporary directory): work from /.
cd /

dir=${PGBOUNCER_DIR:-/tmp/slotpool-pgbouncer}
port=${PGBOUNCER_PORT:-6432}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
run_as=${PGBOUNCER_USER:-postgres}
bouncer_role=slotpool_pgbouncer

answers() {
    psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -Atc 'SHOW VERSION' >/dev/null 2>&1
}

find_binary() {
    if command -v pgbouncer >/dev/null 2>&1; then
        command -v pgbouncer
        return 0
    fi
    if [[ -x /usr/sbin/pgbouncer ]]; then
        echo /usr/sbin/pgbouncer
        return 0
    fi
    return 1
}

ensure_binary() {
    local bin
    if bin=$(find_binary); then
        echo "$bin"
        return 0
    fi
    # Another process may be installing it right now: wait a little first.
    for _ in $(seq 1 60); do
        if ! pgrep -x apt-get >/dev/null 2>&1 && ! pgrep -x dpkg >/dev/null 2>&1; then
            break
        fi
        sleep 2
        if bin=$(find_binary); then
            echo "$bin"
            return 0
        fi
    done
    if [[ $(id -u) -ne 0 ]]; then
        echo "pgbouncer.sh: pgbouncer is not installed and this is not root" >&2
        return 1
    fi
    echo "pgbouncer.sh: installing pgbouncer with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2
    # The package starts its own service on 6432 on some systems: stop it.
    if command -v service >/dev/null 2>&1; then
        service pgbouncer stop >/dev/null 2>&1 || true
    fi
    find_binary
}

start() {
    if answers; then
        echo "pgbouncer.sh: already running on 127.0.0.1:$port"
        return 0
    fi
    local bin
    bin=$(ensure_binary)
    psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U postgres -d postgres -c \
        "DO \$\$ BEGIN CREATE ROLE ${bouncer_role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        >/dev/null
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/userlist.txt" <<EOF
"postgres" ""
"${bouncer_role}" ""
EOF
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
test = host=$pg_host port=$pg_port dbname=test
postgres = host=$pg_host port=$pg_port dbname=postgres
slotpool_fleet = host=$pg_host port=$pg_port dbname=test user=${bouncer_role}
slotpool_interleave = host=$pg_host port=$pg_port dbname=postgres pool_size=2

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
stats_users = postgres
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-10}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-400}
server_idle_timeout = ${PGBOUNCER_SERVER_IDLE_TIMEOUT:-120}
client_idle_timeout = ${PGBOUNCER_CLIENT_IDLE_TIMEOUT:-300}
server_lifetime = 3600
server_round_robin = 0
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    chown -R "$run_as" "$dir"
    runuser -u "$run_as" -- "$bin" -d "$dir/pgbouncer.ini"
    for _ in $(seq 1 100); do
        if answers; then
            echo "pgbouncer.sh: PgBouncer (transaction mode) on 127.0.0.1:$port -> $pg_host:$pg_port, config $dir/pgbouncer.ini"
            return 0
        fi
        sleep 0.1
    done
    echo "pgbouncer.sh: PgBouncer did not answer within 10 s; its log:" >&2
    tail -n 30 "$dir/pgbouncer.log" >&2 || true
    return 1
}

stop() {
    if [[ -f "$dir/pgbouncer.pid" ]]; then
        local pid
        pid=$(cat "$dir/pgbouncer.pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    echo "pgbouncer.sh: stopped"
}

status() {
    if answers; then
        echo "pgbouncer.sh: running on 127.0.0.1:$port"
        psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -c 'SHOW POOLS'
    else
        echo "pgbouncer.sh: not running on 127.0.0.1:$port"
        return 1
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
