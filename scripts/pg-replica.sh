#!/usr/bin/env bash
# A streaming read replica of the local PostgreSQL primary, for
# slotpool-postgres's replica tests (tests/replicas.rs) and CI.
#
#   scripts/pg-replica.sh start        make it if absent, start it, wait until it
#                                      accepts connections and is in recovery
#   scripts/pg-replica.sh stop         stop it and remove its directory
#   scripts/pg-replica.sh stop --keep  stop the server only (the tests restart
#                                      it with `start`: a replica going down)
#   scripts/pg-replica.sh status       say whether it runs and replays (exit 0
#                                      when it is a running replica, 3 if not)
#
# The replica is a second cluster made with `pg_basebackup -R` (it writes
# standby.signal and primary_conninfo), listening on 127.0.0.1 only, with
# its unix socket, configuration and log inside its directory; no
# replication slot, so a replica that is gone never makes the primary keep
# WAL. The primary must accept replication connections from 127.0.0.1: if
# its pg_hba.conf has no `host replication` rule for it, one marked line is
# appended (trust, user postgres, 127.0.0.1/32 only) and the configuration
# reloaded. Idempotent throughout. Run as root (server commands run as
# postgres through runuser) or as postgres.
#
# Settings: SLOTPOOL_REPLICA_DIR (/tmp/slotpool-replica),
# SLOTPOOL_REPLICA_PORT (5433), PGHOST/PGPORT of the primary
# (127.0.0.1/5432), PGUSER (postgres).
set -euo pipefail
# The servers run as postgres, who may not be able to enter the caller's
# directory (a CI checkout under a private temporary directory): work from /.
cd /

dir=${SLOTPOOL_REPLICA_DIR:-/tmp/slotpool-replica}
port=${SLOTPOOL_REPLICA_PORT:-5433}
primary_host=${PGHOST:-127.0.0.1}
primary_port=${PGPORT:-5432}
user=${PGUSER:-postgres}
bin=$(pg_config --bindir)
mark="# slotpool-postgres tests: replication from 127.0.0.1 (scripts/pg-replica.sh)"

say() { echo "pg-replica: $*"; }
die() { echo "pg-replica: $*" >&2; exit 1; }

# Runs a server command as postgres.
as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        "$@"
    else
        runuser -u postgres -- "$@"
    fi
}

primary_sql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$primary_host" -p "$primary_port" -U "$user" -d postgres -Atc "$1"
}

replica_sql() {
    psql -X -q -h 127.0.0.1 -p "$port" -U "$user" -d postgres -Atc "$1" 2>/dev/null
}

running() {
    [[ -f "$dir/PG_VERSION" ]] && as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1
}

# The primary must let 127.0.0.1 replicate.
allow_replication() {
    local hba
    hba=$(primary_sql 'SHOW hba_file')
    if [[ "$(primary_sql "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND type = 'host' AND 'replication' = ANY(database) AND (address = '127.0.0.1' OR address IS NULL OR address = 'all')")" != 0 ]]; then
        return
    fi
    [[ -w "$hba" ]] || die "cannot write $hba to allow replication (run as root or postgres)"
    if ! grep -qxF "$mark" "$hba"; then
        printf '%s\nhost replication %s 127.0.0.1/32 trust\n' "$mark" "$user" >>"$hba"
    fi
    primary_sql 'SELECT pg_reload_conf()' >/dev/null
    # The reload is asynchronous: wait until the server's view lists it.
    for _ in $(seq 1 50); do
        if [[ "$(primary_sql "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND 'replication' = ANY(database) AND address = '127.0.0.1'")" != 0 ]]; then
            say "the primary now accepts replication from 127.0.0.1 ($hba)"
            return
        fi
        sleep 0.1
    done
    die "the primary does not show the replication rule in pg_hba_file_rules"
}

make_replica() {
    local level
    level=$(primary_sql 'SHOW wal_level')
    [[ "$level" == replica || "$level" == logical ]] ||
        die "the primary's wal_level is $level; streaming replication needs replica"
    allow_replication
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_postgres "$bin/pg_basebackup" -h "$primary_host" -p "$primary_port" -U "$user" \
        -D "$dir" -R -X stream -c fast --no-sync
    # Debian keeps the configuration outside the data directory, so the
    # copy has none of its own. Hot standby needs max_connections and the
    # other limits at least as high as the primary's.
    local max_connections max_workers max_senders max_locks max_prepared
    max_connections=$(primary_sql 'SHOW max_connections')
    max_workers=$(primary_sql 'SHOW max_worker_processes')
    max_senders=$(primary_sql 'SHOW max_wal_senders')
    max_locks=$(primary_sql 'SHOW max_locks_per_transaction')
    max_prepared=$(primary_sql 'SHOW max_prepared_transactions')
    as_postgres tee "$dir/postgresql.conf" >/dev/null <<EOF
# slotpool-postgres test replica (scripts/pg-replica.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
hot_standby = on
hot_standby_feedback = on
max_connections = $max_connections
max_worker_processes = $max_workers
max_wal_senders = $max_senders
max_locks_per_transaction = $max_locks
max_prepared_transactions = $max_prepared
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_receiver_status_interval = 1s
logging_collector = off
EOF
    as_postgres tee "$dir/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
    as_postgres touch "$dir/pg_ident.conf"
    [[ -f "$dir/standby.signal" ]] || die "pg_basebackup -R wrote no standby.signal"
}

start() {
    if running; then
        wait_ready
        say "already running on 127.0.0.1:$port ($dir)"
        return
    fi
    if [[ ! -f "$dir/standby.signal" ]]; then
        make_replica
    fi
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir/replica.log" -w -t 30 start >/dev/null ||
        { tail -n 20 "$dir/replica.log" >&2 || true; die "the replica did not start"; }
    wait_ready
    say "running on 127.0.0.1:$port, replaying from $primary_host:$primary_port ($dir)"
}

wait_ready() {
    for _ in $(seq 1 300); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" &&
            [[ "$(replica_sql 'SELECT pg_is_in_recovery()')" == t ]]; then
            return
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/replica.log" >&2 || true
    die "the replica on port $port is not ready and in recovery after 30 s"
}

stop() {
    if running; then
        as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null
        say "stopped the replica on port $port"
    fi
    if [[ "${1:-}" != --keep ]]; then
        rm -rf "$dir"
    fi
}

status() {
    if running && [[ "$(replica_sql 'SELECT pg_is_in_recovery()')" == t ]]; then
        say "running on 127.0.0.1:$port, in recovery, replayed up to $(replica_sql 'SELECT pg_last_wal_replay_lsn()') ($dir)"
        return 0
    fi
    if [[ -f "$dir/PG_VERSION" ]]; then
        say "not running (data directory $dir exists)"
    else
        say "not running (no data directory at $dir)"
    fi
    return 3
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
status) status ;;
*)
    echo "usage: $0 start | stop [--keep] | status" >&2
    exit 2
    ;;
esac
