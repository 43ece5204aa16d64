#!/usr/bin/env bash
# Runs Cairn's micro-benchmarks from the release build; prints `name value unit` lines.
#   scripts/bench.sh all|storage|...
# Each case is one benchmark family; `all` runs every case in turn.
# Env for runtime: REPS (default 3: runs per figure, each in a fresh VM/process, median),
# CAIRN_SHARED (default: ../shared beside the repo), BENCH_OUT (default build/bench).
# Env for storage: BENCH_KEYS (default 1000000), BENCH_BIG_KEYS (default 200000),
# BENCH_DIR (default /tmp/cairn-storage-bench; needs a few GB free).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bin

run_storage() {
    echo "== storage (bench/storage_bench_main.c)"
    "$bin/storage_bench" --keys "${BENCH_KEYS:-1000000}" --big-keys "${BENCH_BIG_KEYS:-200000}" \
        --dir "${BENCH_DIR:-/tmp/cairn-storage-bench}"
}

# The actor runtime against the BEAM, in one sitting (see ../shared/bench/beam/README.md):
# the Erlang suite, the runtime-free baselines, then bench/rt_bench_main.c; then compare.sh
# for the ratios, and the dist ping against raw loopback TCP ping-pong. Raw outputs go to
# $BENCH_OUT (build/bench): erl.txt, baseline.txt, c.txt, compare.txt, *-raw.txt, meta.txt.
run_runtime() {
    local root shared beam out
    root="$(pwd)"
    shared="${CAIRN_SHARED:-$root/../shared}"
    beam="$shared/bench/beam"
    out="${BENCH_OUT:-$root/build/bench}"
    if [ ! -x "$beam/run_erlang.sh" ] || [ ! -x "$beam/compare.sh" ]; then
        echo "bench runtime: $beam/run_erlang.sh not found: the shared benchmarks must sit" \
             "beside the repo (../shared) or be named by CAIRN_SHARED" >&2
        exit 2
    fi
    CAIRN_WITH_ERLANG=1 scripts/deps.sh
    mkdir -p "$out"
    export REPS="${REPS:-3}"
    export ACTBENCH_BUILD="$out/beam/erl"
    echo "== runtime vs the BEAM (REPS=$REPS; raw outputs in $out)"
    {
        echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "nproc $(nproc)"
        echo "kernel $(uname -sr)"
        echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)"
    } > "$out/meta.txt"
    "$beam/run_erlang.sh" spawn ring ring_s1 call fanout fair sup dist > "$out/erl.txt"
    "$beam/run_baseline.sh" > "$out/baseline.txt"
    "$bin/rt_bench" --raw "$out/c-raw.txt" > "$out/c.txt"
    cp "$ACTBENCH_BUILD/raw.txt" "$out/erl-raw.txt" 2>/dev/null || true
    echo "loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/meta.txt"
    {
        echo "# figure  BEAM  Cairn  unit  ratio (>1: Cairn better)"
        "$beam/compare.sh" "$out/erl.txt" "$out/c.txt"
        echo "# remote ping: raw loopback TCP ping-pong vs Cairn's dist ping (>= 0.8 = within 1.25x)"
        "$beam/compare.sh" "$out/baseline.txt" "$out/c.txt" raw_tcp_pingpong c_dist_ping
    } | tee "$out/compare.txt"
}

case "${1:-all}" in
    storage) run_storage ;;
    runtime) run_runtime ;;
    all)
        run_storage
        run_runtime
        ;;
    *) echo "usage: scripts/bench.sh all|storage|runtime" >&2; exit 2 ;;
esac
