#!/usr/bin/env bash
# Proves that the slotpool core resolves and links next to an application's
# own SQLite binding at a version slotpool does not use itself:
#   1. rusqlite (bundled) at an older version than the 0.41 that slotpool's
#      SQLite integration uses: 0.32, else the first of 0.31/0.30 that resolves;
#   2. sqlx 0.8 with SQLite on tokio.
# Each variant is a fresh binary project that depends on the core (path,
# default features), runs `SELECT 1` on an in-memory database and names a core
# type. Only one crate in a build graph may link the native `sqlite3` library
# (`links = "sqlite3"` in libsqlite3-sys), so this fails as soon as the core
# pulls in any libsqlite3-sys itself.
#
#   scripts/coexist-check.sh [CORE_DIR]
#
# CORE_DIR is the core crate's directory (default: this repository's root);
# CORE_TYPE (default PoolConfig) is the type the programs name. Exits non-zero
# if a variant fails to resolve, build or run.
set -euo pipefail

core="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
core_name="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^name *=/ { print $2; exit }' "$core/Cargo.toml")"
[ -n "$core_name" ] || { echo "no [package] name in $core/Cargo.toml" >&2; exit 2; }
core_type="${core_name//-/_}::${CORE_TYPE:-PoolConfig}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$work/target"  # shared by both variants

# project NAME DEPENDENCY-LINES: writes $work/NAME/Cargo.toml depending on the
# core and on DEPENDENCY-LINES; src/main.rs is read from stdin.
project() {
    mkdir -p "$work/$1/src"
    printf '[package]\nname = "coexist-%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n%s = { path = "%s" }\n%s\n\n[workspace]\n' \
        "$1" "$core_name" "$core" "$2" > "$work/$1/Cargo.toml"
    cat > "$work/$1/src/main.rs"
}

# run NAME: builds and runs the project, then shows which SQLite crates linked.
run() {
    (cd "$work/$1" && cargo run -q --locked \
        && cargo tree -e normal --prefix none | grep -E '^(rusqlite|sqlx|libsqlite3-sys) ' | sort -u)
    echo "coexist-$1: OK"
}

# 1. rusqlite: the first version, newest first, that resolves with the core.
for version in 0.32 0.31 0.30; do
    project rusqlite "rusqlite = { version = \"$version\", features = [\"bundled\"] }" <<EOF
fn main() {
    let conn = rusqlite::Connection::open_in_memory().expect("open");
    let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0)).expect("SELECT 1");
    assert_eq!(one, 1);
    println!("SQLite {} via rusqlite; SELECT 1 = {one}; {}", rusqlite::version(), std::any::type_name::<$core_type>());
}
EOF
    if (cd "$work/rusqlite" && cargo generate-lockfile -q); then resolved="$version"; break; fi
    echo "rusqlite $version does not resolve with $core_name" >&2
done
[ -n "${resolved:-}" ] || { echo "no rusqlite version resolves with $core_name" >&2; exit 1; }
run rusqlite

# 2. sqlx with SQLite (bundled libsqlite3-sys) on tokio.
project sqlx 'sqlx = { version = "0.8", default-features = false, features = ["sqlite", "runtime-tokio"] }
tokio = { version = "1", features = ["rt", "macros"] }' <<EOF
use sqlx::Connection;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), sqlx::Error> {
    let mut conn = sqlx::sqlite::SqliteConnection::connect("sqlite::memory:").await?;
    let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
    assert_eq!(one, 1);
    println!("SQLite via sqlx; SELECT 1 = {one}; {}", std::any::type_name::<$core_type>());
    Ok(())
}
EOF
(cd "$work/sqlx" && cargo generate-lockfile -q)
run sqlx
