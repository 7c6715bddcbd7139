#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: runs the whole bench suite once (about 10 minutes
# on the 2-core reference VM with default settings; `pg` needs the PostgreSQL
# server at SLOTPOOL_BENCH_PG_URL, default the local one), then renders every
# figure from this run's results with the command that produced it.
#
#   scripts/bench-report.sh           # default measurement times
#   scripts/bench-report.sh --long    # SLOTPOOL_BENCH_LONG=1: ~5x longer
#   scripts/bench-report.sh --render  # re-render from the last run's results
#
# Run it on a quiet machine: it prints the load average first and records it
# next to every figure. Results land in $CARGO_TARGET_DIR/bench-results/ (raw
# output, JSON) and $CARGO_TARGET_DIR/criterion/ (criterion's estimates).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
results="$target/bench-results"
benches=(cycle sqlite contention async_cycle spike pg)
# The benches of member crates: the package each one belongs to.
declare -A package=([pg]=slotpool-postgres)
render_only=0
for arg in "$@"; do
    case "$arg" in
        --long) export SLOTPOOL_BENCH_LONG=1 ;;
        --render) render_only=1 ;;
        *) echo "usage: $0 [--long] [--render]" >&2; exit 2 ;;
    esac
done

if [ "$render_only" = 0 ]; then
    mkdir -p "$results"
    # The load before anything of ours runs tells whether other work shares
    # the machine; the per-bench figures below include the benches' own threads.
    load_start="$(cut -d' ' -f1 /proc/loadavg)"
    echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
    # Build everything first, so compiling does not overlap the measurements.
    cargo bench --no-run --benches >/dev/null
    cargo bench -p slotpool-postgres --no-run --bench pg >/dev/null
    rm -rf "$target/criterion" "$results"/*.json
    meta="$results/meta.env"
    {
        echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')"
        echo "rustc=$(rustc --version)"
        echo "long=${SLOTPOOL_BENCH_LONG:-0}"
        echo "load_start=$load_start"
    } >"$meta"
    lscpu >"$results/lscpu.txt"
    for bench in "${benches[@]}"; do
        before="$(cut -d' ' -f1 /proc/loadavg)"
        start=$(date +%s)
        echo "=== cargo bench --bench $bench (load $before)"
        cargo bench ${package[$bench]:+-p "${package[$bench]}"} --bench "$bench" 2>&1 | tee "$results/raw-$bench.txt"
        after="$(cut -d' ' -f1 /proc/loadavg)"
        echo "load_${bench}=${before}..${after}" >>"$meta"
        echo "seconds_${bench}=$(( $(date +%s) - start ))" >>"$meta"
    done
    echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$meta"
fi

python3 scripts/bench_report.py "$target" >BENCHMARKS.md
echo "wrote BENCHMARKS.md"
