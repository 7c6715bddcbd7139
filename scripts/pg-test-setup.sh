#!/usr/bin/env bash
# Lets slotpool-postgres's tests exercise password and client-certificate
# authentication on the local PostgreSQL server, whose pg_hba.conf trusts
# every local connection.
#
# Passwords: it creates the group role `slotpool_password_auth` (NOLOGIN)
# and puts two lines at the top of pg_hba.conf, so that members of that
# group (and only they) must log in with a SCRAM password over TCP. The
# tests create a uniquely named member role with a password, use it, and
# drop it.
#
# Client certificates (`sslcert`/`sslkey`, tests/tls.rs): it makes a test CA
# and client certificates in SLOTPOOL_PG_CERT_DIR (default
# /var/lib/postgresql/slotpool-test-certs, world-readable: throwaway
# credentials of a role that can do nothing), points the server's
# `ssl_ca_file` at that CA (ALTER SYSTEM; the server keeps its own
# certificate and key; a CA file it already had is kept in the bundle),
# creates the group role `slotpool_cert_auth` (NOLOGIN) with the member
# `slotpool_cert_user` (LOGIN), and puts four lines at the top of
# pg_hba.conf: members must connect over TLS from 127.0.0.1 or ::1 with a
# certificate the CA signed whose CN is their role name (`cert`), and
# without TLS they are rejected. Every other role keeps its
# authentication. The files, for the tests:
#
#   ca.crt                     the CA (server-ca.crt: what ssl_ca_file names)
#   client.crt, client.key     CN=slotpool_cert_user, RSA, key in PKCS#8
#   client-pkcs1.key           the same key in PKCS#1 (`RSA PRIVATE KEY`)
#   client-ec.crt, client-ec.key   CN=slotpool_cert_user, P-256, key in SEC1
#   other.key                  an RSA key that matches no certificate
#   client-encrypted.key       client.key encrypted (PKCS#8, `ENCRYPTED PRIVATE KEY`)
#   client-encrypted-pkcs1.key client.key encrypted (OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`)
#   rogue.crt, rogue.key       CN=slotpool_cert_user, self-signed: not the CA's
#
# They are made once and kept while they verify and are valid for 30 more
# days. A replica made with pg_basebackup copies `ssl_ca_file` from
# postgresql.auto.conf; scripts/pg-replica.sh runs it with TLS off, where
# the setting is not read (and the absolute path would be valid anyway).
#
# Idempotent. `--remove` takes the pg_hba.conf lines out again, resets
# `ssl_ca_file` if it is still this script's, drops `slotpool_cert_user`
# and deletes the certificate directory (the group roles stay; they have no
# login). Run it as a user that may write pg_hba.conf (root or postgres);
# CI runs it as root before `cargo test`. Without it the password and
# client-certificate tests print a loud SKIPPED line, and fail under
# SLOTPOOL_REQUIRE_PG=1. A server with TLS off gets the password part only
# (a warning says so).
#
# Connection: PGHOST (default 127.0.0.1), PGPORT (5432), PGUSER (postgres),
# a superuser.
set -euo pipefail

group=slotpool_password_auth
mark="# slotpool-postgres tests: SCRAM password auth for members of ${group} (scripts/pg-test-setup.sh)"
cert_group=slotpool_cert_auth
cert_user=slotpool_cert_user
cert_mark="# slotpool-postgres tests: client-certificate auth for members of ${cert_group} (scripts/pg-test-setup.sh)"
certs=${SLOTPOOL_PG_CERT_DIR:-/var/lib/postgresql/slotpool-test-certs}
# Bumped whenever the set of files changes, so an older directory is remade.
cert_layout="slotpool-test-certs layout 1"
host=${PGHOST:-127.0.0.1}
port=${PGPORT:-5432}
psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "${PGUSER:-postgres}" -d postgres)

say() { echo "pg-test-setup: $*"; }
die() {
    echo "pg-test-setup: $*" >&2
    exit 1
}
sql() { "${psql[@]}" -Atc "$1"; }

hba=$(sql 'SHOW hba_file')
[[ -w "$hba" ]] || die "cannot write $hba (run as root or postgres)"

# Takes the line `$1` and the `$2` rules after it out of pg_hba.conf.
remove_block() {
    local tmp
    tmp=$(mktemp)
    awk -v mark="$1" -v count="$2" '$0 == mark { skip = count + 1 } skip > 0 { skip--; next } { print }' "$hba" >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
}

# Puts the line `$1` and the rules after it (`$2`...) at the top of
# pg_hba.conf, unless the line is there already.
add_block() {
    local block=$1 tmp
    shift
    grep -qxF "$block" "$hba" && return
    tmp=$(mktemp)
    {
        echo "$block"
        printf '%s\n' "$@"
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba"
    rm -f "$tmp"
}

reload() { sql 'SELECT pg_reload_conf()' >/dev/null; }

if [[ "${1:-}" == "--remove" ]]; then
    changed=
    if grep -qxF "$mark" "$hba"; then
        remove_block "$mark" 2
        changed=1
        say "removed the password-auth lines from $hba"
    fi
    if grep -qxF "$cert_mark" "$hba"; then
        remove_block "$cert_mark" 4
        changed=1
        say "removed the client-certificate lines from $hba"
    fi
    if [[ "$(sql "SHOW ssl_ca_file")" == "$certs/server-ca.crt" ]]; then
        sql 'ALTER SYSTEM RESET ssl_ca_file' >/dev/null
        changed=1
        say "reset ssl_ca_file"
    fi
    [[ -n "$changed" ]] && reload
    sql "DROP ROLE IF EXISTS ${cert_user}" >/dev/null
    if [[ -f "$certs/LAYOUT" ]] && grep -qxF "$cert_layout" "$certs/LAYOUT"; then
        rm -rf "$certs"
        say "deleted $certs"
    fi
    exit 0
fi

# --- passwords ---------------------------------------------------------------

"${psql[@]}" -c "DO \$\$ BEGIN CREATE ROLE ${group} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
add_block "$mark" \
    "host all +${group} 127.0.0.1/32 scram-sha-256" \
    "host all +${group} ::1/128 scram-sha-256"

# --- client certificates -----------------------------------------------------

# Whether the directory holds this layout's files, the client certificates
# verify against its CA, and nothing expires within 30 days.
certs_usable() {
    local f
    [[ -f "$certs/LAYOUT" ]] && grep -qxF "$cert_layout" "$certs/LAYOUT" || return 1
    for f in ca.crt client.crt client.key client-pkcs1.key client-ec.crt client-ec.key \
        other.key client-encrypted.key client-encrypted-pkcs1.key rogue.crt rogue.key; do
        [[ -s "$certs/$f" ]] || return 1
    done
    openssl verify -CAfile "$certs/ca.crt" "$certs/client.crt" "$certs/client-ec.crt" >/dev/null 2>&1 || return 1
    for f in ca.crt client.crt client-ec.crt rogue.crt; do
        openssl x509 -checkend 2592000 -noout -in "$certs/$f" >/dev/null || return 1
    done
}

# Makes every file in a new directory next to `$certs`, then swaps it in.
make_certs() {
    local new ext
    mkdir -p "$(dirname "$certs")"
    new=$(mktemp -d "$certs.new.XXXXXX")
    ext=$(mktemp)
    printf '%s\n' 'basicConstraints = critical, CA:FALSE' \
        'keyUsage = critical, digitalSignature' 'extendedKeyUsage = clientAuth' >"$ext"
    (
        cd "$new"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=slotpool-postgres test client CA" \
            -addext 'basicConstraints = critical, CA:TRUE' \
            -addext 'keyUsage = critical, keyCertSign, cRLSign' 2>/dev/null
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out client.key 2>/dev/null
        openssl req -new -key client.key -subj "/CN=${cert_user}" -out client.csr
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -set_serial 1001 -days 825 \
            -extfile "$ext" -out client.crt 2>/dev/null
        openssl rsa -in client.key -traditional -out client-pkcs1.key 2>/dev/null
        openssl ecparam -name prime256v1 -genkey -noout -out client-ec.key
        openssl req -new -key client-ec.key -subj "/CN=${cert_user}" -out client-ec.csr
        openssl x509 -req -in client-ec.csr -CA ca.crt -CAkey ca.key -set_serial 1002 -days 825 \
            -extfile "$ext" -out client-ec.crt 2>/dev/null
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key 2>/dev/null
        openssl pkey -in client.key -aes256 -passout pass:slotpool-test -out client-encrypted.key
        openssl rsa -in client.key -traditional -aes256 -passout pass:slotpool-test \
            -out client-encrypted-pkcs1.key 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.crt -days 825 \
            -subj "/CN=${cert_user}" -addext 'extendedKeyUsage = clientAuth' 2>/dev/null
        rm -f ./*.csr
        echo "$cert_layout" >LAYOUT
    )
    rm -f "$ext"
    # A CA file the server had before this script pointed it here survives
    # in the bundle.
    [[ -f "$certs/inherited-ca.crt" ]] && cp "$certs/inherited-ca.crt" "$new/"
    chmod 755 "$new"
    chmod 644 "$new"/*
    chmod 600 "$new/ca.key"
    rm -rf "$certs.old"
    [[ -e "$certs" ]] && mv "$certs" "$certs.old"
    mv "$new" "$certs"
    rm -rf "$certs.old"
    say "made a test CA and client certificates in $certs"
}

setup_certs() {
    local current data_dir bundle
    if ! command -v openssl >/dev/null; then
        die "the client-certificate tests need the openssl command"
    fi
    certs_usable || make_certs
    bundle="$certs/server-ca.crt"
    current=$(sql "SHOW ssl_ca_file")
    if [[ -n "$current" && "$current" != "$bundle" ]]; then
        data_dir=$(sql 'SHOW data_directory')
        [[ "$current" == /* ]] || current="$data_dir/$current"
        [[ -r "$current" ]] || die "cannot read the server's ssl_ca_file $current to keep it"
        cp "$current" "$certs/inherited-ca.crt"
        chmod 644 "$certs/inherited-ca.crt"
    fi
    cat "$certs/ca.crt" >"$bundle.tmp"
    [[ -f "$certs/inherited-ca.crt" ]] && cat "$certs/inherited-ca.crt" >>"$bundle.tmp"
    chmod 644 "$bundle.tmp"
    if ! cmp -s "$bundle.tmp" "$bundle" 2>/dev/null; then
        mv "$bundle.tmp" "$bundle"
    else
        rm -f "$bundle.tmp"
    fi
    if [[ "$(sql "SHOW ssl_ca_file")" != "$bundle" ]]; then
        sql "ALTER SYSTEM SET ssl_ca_file = '$bundle'" >/dev/null
    fi
    "${psql[@]}" -c "DO \$\$ BEGIN CREATE ROLE ${cert_group} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
    "${psql[@]}" -c "DO \$\$ BEGIN CREATE ROLE ${cert_user} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
    "${psql[@]}" -c "ALTER ROLE ${cert_user} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE" \
        -c "GRANT ${cert_group} TO ${cert_user}" 2>/dev/null
    add_block "$cert_mark" \
        "hostssl all +${cert_group} 127.0.0.1/32 cert" \
        "hostssl all +${cert_group} ::1/128 cert" \
        "hostnossl all +${cert_group} 127.0.0.1/32 reject" \
        "hostnossl all +${cert_group} ::1/128 reject"
}

with_certs=
if [[ "$(sql 'SHOW ssl')" == on ]]; then
    setup_certs
    with_certs=1
else
    echo "pg-test-setup: WARNING: the server has ssl = off: no client-certificate setup" >&2
fi

reload
# The reload is asynchronous; the rules are in force once the server's view
# of the file lists them without an error and ssl_ca_file shows the bundle.
in_force() {
    [[ "$(sql "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND '+${group}' = ANY(user_name) AND auth_method = 'scram-sha-256'")" == 2 ]] || return 1
    [[ -z "$with_certs" ]] && return 0
    [[ "$(sql "SHOW ssl_ca_file")" == "$certs/server-ca.crt" ]] || return 1
    [[ "$(sql "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL AND '+${cert_group}' = ANY(user_name) AND auth_method IN ('cert', 'reject')")" == 4 ]]
}
ok=
for _ in $(seq 1 50); do
    if in_force; then
        ok=1
        break
    fi
    sleep 0.1
done
[[ -n "$ok" ]] || die "the server does not show the authentication rules in pg_hba_file_rules (or ssl_ca_file)"
say "members of ${group} authenticate with SCRAM passwords ($hba)"
[[ -z "$with_certs" ]] && exit 0

# The whole chain, end to end, through libpq: the certificate logs in and
# no certificate is refused. libpq wants the key private to its owner, so
# it gets a copy.
probe_key=$(mktemp)
trap 'rm -f "$probe_key"' EXIT
cat "$certs/client.key" >"$probe_key"
chmod 600 "$probe_key"
probe="host=$host port=$port dbname=postgres user=${cert_user} sslmode=require"
dn=
for _ in $(seq 1 50); do
    if dn=$(psql -X -Atc "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
        "$probe sslcert=$certs/client.crt sslkey=$probe_key" 2>/dev/null); then
        break
    fi
    dn=
    sleep 0.1 # the server reloads its TLS context asynchronously
done
[[ "$dn" == "/CN=${cert_user}" ]] ||
    die "${cert_user} cannot log in with $certs/client.crt (client_dn: '${dn}'); see the server log"
if psql -X -Atc "SELECT 1" "$probe sslcert=/nonexistent sslkey=/nonexistent" >/dev/null 2>&1; then
    die "${cert_user} logs in without a client certificate: the pg_hba.conf rules are not in force"
fi
say "members of ${cert_group} authenticate with client certificates signed by $certs/ca.crt ($hba)"
