#!/usr/bin/env bash
# Dependency footprint of the slotpool core next to r2d2, deadpool and bb8,
# for the README table. For each pool crate it builds a fresh one-line binary
# that names one of the crate's types, and reports:
#   - crates compiled: distinct name+version pairs in
#     `cargo tree -e normal,build` for the host (proc-macros and build-deps
#     included, the pool crate itself included, the probe binary excluded);
#   - C compiler: whether the graph contains the `cc` crate and whether a C/C++
#     compiler actually ran during the build (CC/CXX point at a logging
#     wrapper; rustc's own link step through `cc` is not counted);
#   - clean release build: wall clock of `cargo build --release` with its own
#     empty target dir, dependencies fetched beforehand (no network time).
#
#   scripts/footprint.sh [CORE_DIR] [--runs N]
#
# CORE_DIR is the directory of the core crate (default: this repository's
# root); the crate's name is read from its Cargo.toml. CORE_TYPE (default
# PoolConfig) is the type the probe names. With --runs N every build runs N
# times from clean and the median is reported. Builds run one after another;
# the table goes to stdout, progress to stderr.
set -euo pipefail

core="$(cd "$(dirname "$0")/.." && pwd)"
runs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "usage: $0 [CORE_DIR] [--runs N]" >&2; exit 2 ;;
        *) core="$(cd "$1" && pwd)"; shift ;;
    esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs: not a positive number: $runs" >&2; exit 2; }

# The [package] name of the core crate, and its name as a Rust path.
core_name="$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^name *=/ { print $2; exit }' "$core/Cargo.toml")"
[ -n "$core_name" ] || { echo "no [package] name in $core/Cargo.toml" >&2; exit 2; }
core_ident="${core_name//-/_}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR  # no sccache or shared target

# Every C/C++ compiler call from a build script (the cc crate honours CC/CXX)
# is logged to $work/cc.log before running the real compiler.
for tool in cc c++; do
    cat > "$work/$tool-wrapper" <<EOF
#!/bin/sh
echo "$tool \$*" >> "$work/cc.log"
exec $tool "\$@"
EOF
    chmod +x "$work/$tool-wrapper"
done

# probe NAME DEPENDENCY-LINE TYPE: creates $work/NAME, locks and fetches it.
probe() {
    mkdir -p "$work/$1/src"
    printf '[package]\nname = "probe-%s"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\n%s\n\n[workspace]\n' \
        "$1" "$2" > "$work/$1/Cargo.toml"
    printf 'fn main() { println!("{}", std::any::type_name::<%s>()); }\n' "$3" > "$work/$1/src/main.rs"
    (cd "$work/$1" && cargo generate-lockfile -q && cargo fetch -q)
}

# The median of the numbers on stdin, one decimal.
median() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m }'; }

names=(core r2d2 deadpool bb8)
probe core "$core_name = { path = \"$core\" }" "$core_ident::${CORE_TYPE:-PoolConfig}"
probe r2d2 'r2d2 = "0.8"' 'r2d2::State'
probe deadpool 'deadpool = "0.13"' 'deadpool::Status'
probe bb8 'bb8 = "0.9"' 'bb8::State'

load="$(cut -d' ' -f1-3 /proc/loadavg)"
when="$(date -u '+%Y-%m-%d %H:%M UTC')"
rows=()
for name in "${names[@]}"; do
    dir="$work/$name"
    # "name vX.Y.Z" of every package in the host build graph, minus the probe.
    tree="$(cd "$dir" && cargo tree -e normal,build --prefix none --offline \
        | awk '/^[a-zA-Z0-9_-]+ v/ { print $1, $2 }' | grep -v '^probe-' | sort -u)"
    count="$(wc -l <<< "$tree")"
    pkg="$name"; [ "$name" = core ] && pkg="$core_name"
    pool="$(grep -m1 "^$pkg " <<< "$tree")"
    cc_crate="$(grep '^cc ' <<< "$tree" | paste -sd, - || true)"

    times=()
    for ((i = 1; i <= runs; i++)); do
        echo "building $pool ($i/$runs)..." >&2
        rm -rf "$dir/target" "$work/cc.log"
        start="$(date +%s.%N)"
        (cd "$dir" && CC="$work/cc-wrapper" CXX="$work/c++-wrapper" \
            cargo build --release --offline --locked -q)
        end="$(date +%s.%N)"
        times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')")
    done
    "$dir/target/release/probe-$name" > /dev/null  # the binary runs

    calls=0; [ -f "$work/cc.log" ] && calls="$(wc -l < "$work/cc.log")"
    if [ -z "$cc_crate" ] && [ "$calls" -eq 0 ]; then c="no"; else c="yes (${cc_crate:-no cc crate}; $calls compiler calls)"; fi
    t="$(printf '%s\n' "${times[@]}" | median) s"
    [ "$runs" -gt 1 ] && t="$t (median of $runs: ${times[*]})"
    rows+=("| $pool | $count | $c | $t |")
done

echo "Measured $when, $(nproc) CPUs, load average before the run: $load;"
echo "$(rustc --version), $(cargo --version | cut -d' ' -f1-2)."
echo
echo "| crate (default features) | crates compiled | C compiler | clean release build |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "crates compiled: distinct name+version in \`cargo tree -e normal,build\` (host target),"
echo "including the pool crate, proc-macros and build-dependencies, excluding the probe binary."
