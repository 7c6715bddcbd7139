#!/usr/bin/env bash
# Lets slotpool-postgres's tests exercise password authentication on the
# local PostgreSQL server, whose pg_hba.conf trusts every local connection.
#
# It creates the group role `slotpool_password_auth` (NOLOGIN) and puts two
# lines at the top of pg_hba.conf, so that members of that group (and only
# they) must log in with a SCRAM password over TCP; every other role keeps
# its authentication. The tests create a uniquely named member role with a
# password, use it, and drop it. Then it reloads the server's configuration.
#
# Idempotent. `--remove` takes the lines out again (the group role stays;
# it has no login). Run it as a user that may write pg_hba.conf (root or
# postgres); CI runs it as root before `cargo test`. Without it the password
# tests print a loud SKIPPED line, and fail under SLOTPOOL_REQUIRE_PG=1.
#
# Connection: PGHOST (default 127.0.0.1), PGPORT (5432), PGUSER (postgres),
# a superuser.
set -euo pipefail

group=slotpool_password_auth
mark="# slotpool-postgres tests: SCRAM password auth for members of ${group} (scripts/pg-test-setup.sh)"
psql=(psql -X -q -v ON_ERROR_STOP=1 -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d postgres)

hba=$("${psql[@]}" -Atc 'SHOW hba_file')
if [[ ! -w "$hba" ]]; then
    echo "pg-test-setup: cannot write $hba (run as root or postgres)" >&2
    exit 1
fi

remove_lines() {
    local tmp
    tmp=$(mktemp)
    # The mark line and the two rules after it.
    awk -v mark="$mark" '$0 == mark { skip = 3 } skip > 0 { skip--; next } { print }' "$hba" >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
}

if [[ "${1:-}" == "--remove" ]]; then
    if grep -qxF "$mark" "$hba"; then
        remove_lines
        "${psql[@]}" -Atc 'SELECT pg_reload_conf()' >/dev/null
        echo "pg-test-setup: removed the password-auth lines from $hba"
    fi
    exit 0
fi

"${psql[@]}" -c "DO \$\$ BEGIN CREATE ROLE ${group} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"

if ! grep -qxF "$mark" "$hba"; then
    tmp=$(mktemp)
    {
        echo "$mark"
        echo "host all +${group} 127.0.0.1/32 scram-sha-256"
        echo "host all +${group} ::1/128 scram-sha-256"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
fi

"${psql[@]}" -Atc 'SELECT pg_reload_conf()' >/dev/null
# The reload is asynchronous; the rule is in force once the server's view
# of the file lists it without an error.
for _ in $(seq 1 50); do
    if [[ "$("${psql[@]}" -Atc "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND '+${group}' = ANY(user_name) AND auth_method = 'scram-sha-256'")" == 2 ]]; then
        echo "pg-test-setup: members of ${group} authenticate with SCRAM passwords ($hba)"
        exit 0
    fi
    sleep 0.1
done
echo "pg-test-setup: the server does not show the password-auth rules in pg_hba_file_rules" >&2
exit 1
