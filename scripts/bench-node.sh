#!/usr/bin/env bash
# bench-node.sh — one cairnd against Debian's redis-server (no persistence) in one sitting,
# same concurrency, value size and key space, no pipelining (issue 4's targets). Run by
# `make bench-node`; see docs/bench-tool.md.
#
# It starts both servers on free loopback ports (cairnd on a fresh temp data dir), preloads
# both key spaces, then runs ROUNDS alternating rounds (Cairn's block, then Redis's) in each
# MODE: "unpinned", and "pinned" where the server and the load generator share CPU 0
# (taskset -c 0). Cairn's block: cairn-bench get and put on bucket `n1` (bucket properties
# n_val=1 r=1 w=1), then get and put on bucket `n3` (the defaults: n_val=3, r=w=quorum=2).
# Redis's block: redis-benchmark -t get, then -t set. Server CPU per operation comes from
# /proc/<pid>/stat (utime+stime before/after each run). At the end: a table of medians and
# of per-round ratios against the targets. Raw outputs and results.tsv stay in OUT.
#
# Env knobs (defaults in brackets):
#   ROUNDS [3]          alternating rounds per mode
#   RUN_SECONDS [10]    seconds per run (SECONDS works too when set in the environment)
#   KEYS [100000]       key space (both systems; preloaded)
#   CONCURRENCY [50]    connections; VALUE_SIZE [100] bytes
#   MODES ["unpinned pinned"]
#   OUT [$BUILD/bench/node], BUILD [build] (binaries in $BUILD/release/bin)
#   PERF [0]            1: after the rounds, `perf record -g` cairnd during one get and one
#                       put run (unpinned) into OUT/perf-*.txt, and redis-server during one
#                       SET run into OUT/perf-redis-set.txt
#   ONLY [""]           cairn or redis: run one side only (for debugging the script)
#   KEEP_DATA [0]       1: keep cairnd's temp data dir
#   CAIRND_ARGS [""]    extra cairnd flags
# With the defaults a sitting takes about 2 x 3 x 6 x 10 s plus preload: ~7 minutes.
run_seconds_env=${RUN_SECONDS:-${SECONDS:-0}}  # read before bash's own SECONDS counts up
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ROUNDS=${ROUNDS:-3}
RUN_SECONDS=$run_seconds_env
[ "$RUN_SECONDS" -gt 0 ] 2>/dev/null || RUN_SECONDS=10
KEYS=${KEYS:-100000}
CONCURRENCY=${CONCURRENCY:-50}
VALUE_SIZE=${VALUE_SIZE:-100}
MODES=${MODES:-unpinned pinned}
BUILD=${BUILD:-build}
BIN=$root/$BUILD/release/bin
OUT=${OUT:-$root/$BUILD/bench/node}
PERF=${PERF:-0}
ONLY=${ONLY:-}
KEEP_DATA=${KEEP_DATA:-0}
CAIRND_ARGS=${CAIRND_ARGS:-}

CAIRND=$BIN/cairnd
BENCH=$BIN/cairn-bench          # bench/cairn-bench_main.c: the cairn-bench program
NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
RUN_LIMIT=$((RUN_SECONDS * 6 + 60)) # no single run may take longer than this

die() { echo "bench-node: $*" >&2; exit 1; }
log() { echo "bench-node: $*" >&2; }

for n in ROUNDS KEYS CONCURRENCY VALUE_SIZE; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, got '${!n}'"
done
for m in $MODES; do
    [ "$m" = unpinned ] || [ "$m" = pinned ] || die "MODES: unknown mode '$m' (unpinned, pinned)"
done
case "$ONLY" in ""|cairn|redis) ;; *) die "ONLY must be cairn or redis, got '$ONLY'" ;; esac
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if want cairn; then
    [ -x "$CAIRND" ] || die "$CAIRND not found: build it first (make BUILD=$BUILD release)"
    [ -x "$BENCH" ] || die "$BENCH not found: build it first (make BUILD=$BUILD release)"
fi
if want redis; then
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        die "redis-server/redis-benchmark missing: CAIRN_WITH_REDIS=1 scripts/deps.sh"
    fi
fi
command -v taskset >/dev/null || die "taskset (util-linux) missing"

mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/* "$OUT/results.tsv" "$OUT/table.txt"
tmp=$(mktemp -d /tmp/cairn-bench-node.XXXXXX)
cairnd_pid=""
redis_pid=""

# ---------------------------------------------------------------- cleanup: no server survives
stop_pid() {  # stop_pid <pid>: SIGTERM, up to 10 s, then SIGKILL
    local pid=$1 _
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    trap - EXIT INT TERM
    stop_pid "$cairnd_pid"
    stop_pid "$redis_pid"
    cairnd_pid="" redis_pid=""
    if [ "$KEEP_DATA" = 1 ]; then
        log "kept cairnd's data in $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---------------------------------------------------------------- helpers
free_port() {
    local p _
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Hltn "( sport = :$p )" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

wait_port() {  # wait_port <port> <pid> <what>: until it accepts, up to 30 s
    local _
    for _ in $(seq 1 300); do
        kill -0 "$2" 2>/dev/null || die "$3 exited during start (see $OUT/raw/$3.log)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$3 did not accept connections on port $1 within 30 s"
}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

ctx_switches() {  # voluntary + involuntary context switches of every thread of a process
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}

# results.tsv: mode round system test ops_s p50_ms p99_ms server_cpu_us_op client_cpu_us_op
#              errors server_ctxsw_op

# ---------------------------------------------------------------- servers
start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --protected-mode yes --logfile '' \
        >"$OUT/raw/redis.log" 2>&1 &
    redis_pid=$!
    wait_port "$port" "$redis_pid" redis
    redis_port=$port
    log "redis-server $(redis-server --version | awk '{print $3}') pid $redis_pid on 127.0.0.1:$port"
}

start_cairnd() {
    local port link_port
    port=$(free_port)
    link_port=$(free_port)
    mkdir -p "$tmp/data"
    # shellcheck disable=SC2086
    "$CAIRND" --set "listener.protobuf=127.0.0.1:$port" --set "platform_data_dir=$tmp/data" \
        --set "nodename=bench@127.0.0.1:$link_port" --set log.level=warning $CAIRND_ARGS \
        >"$OUT/raw/cairnd.log" 2>&1 &
    cairnd_pid=$!
    wait_port "$port" "$cairnd_pid" cairnd
    cairn_port=$port
    log "cairnd pid $cairnd_pid on 127.0.0.1:$port (data in $tmp/data)"
}

# ---------------------------------------------------------------- one run of each kind
# cairn-bench <workload> on <bucket>; records one results.tsv row.
cairn_run() {  # cairn_run <mode> <round> <test> <workload> <bucket>
    local mode=$1 round=$2 test=$3 wl=$4 bucket=$5
    local out="$OUT/raw/r$round-$mode-cairn-$test" c0 c1 s0 s1 ops
    c0=$(cpu_ticks "$cairnd_pid")
    s0=$(ctx_switches "$cairnd_pid")
    timed_load "$mode" "$out" "$BENCH" "$wl" -h "127.0.0.1:$cairn_port" -c "$CONCURRENCY" \
        --keys "$KEYS" --value-size "$VALUE_SIZE" --duration "$RUN_SECONDS" \
        --bucket "$bucket" --timeout-ms 10000 || return 0
    c1=$(cpu_ticks "$cairnd_pid")
    s1=$(ctx_switches "$cairnd_pid")
    ops=$(fnum "$out.out" "$wl" ops)
    if [ -z "$ops" ] || [ "$ops" -le 0 ]; then
        log "no $wl result in $out.out"
        return 0
    fi
    record "$mode" "$round" cairn "$test" "$(fnum "$out.out" "$wl" ops/s)" \
        "$(fnum "$out.out" "$wl" p50)" "$(fnum "$out.out" "$wl" p99)" \
        "$(per_op $((c1 - c0)) "$((1000000 / CLK_TCK))" "$ops")" \
        "$(client_cpu_us_per_op "$out.time" "$ops")" "$(fnum "$out.out" "$wl" errors)" \
        "$(per_op $((s1 - s0)) 1 "$ops")"
}

# The number of requests for a redis-benchmark run of about RUN_SECONDS, from the last rate
# seen for this test and mode (redis-benchmark has no duration option).
declare -A redis_rate
redis_requests() {  # <mode> <test>
    local rate=${redis_rate[$1/$2]:-${redis_rate[preload]:-50000}}
    awk -v r="$rate" -v s="$RUN_SECONDS" 'BEGIN{ n = int(r * s); if (n < 1000) n = 1000; if (n > 20000000) n = 20000000; print n }'
}

redis_run() {  # redis_run <mode> <round> <test: get|set>
    local mode=$1 round=$2 test=$3
    local out="$OUT/raw/r$round-$mode-redis-$test" c0 c1 s0 s1 n line
    n=$(redis_requests "$mode" "$test")
    c0=$(cpu_ticks "$redis_pid")
    s0=$(ctx_switches "$redis_pid")
    timed_load "$mode" "$out" redis-benchmark -h 127.0.0.1 -p "$redis_port" -t "$test" \
        -c "$CONCURRENCY" -d "$VALUE_SIZE" -n "$n" -r "$KEYS" -P 1 --csv || return 0
    c1=$(cpu_ticks "$redis_pid")
    s1=$(ctx_switches "$redis_pid")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    line=$(tr -d '"' <"$out.out" | awk -F, 'NR > 1 && $2 > 0 { print; exit }')
    [ -n "$line" ] || { log "no result in $out.out"; return 0; }
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"
    redis_rate[$mode/$test]=$rps
    record "$mode" "$round" redis "$test" "$rps" "$p50" "$p99" \
        "$(per_op $((c1 - c0)) "$((1000000 / CLK_TCK))" "$n")" \
        "$(client_cpu_us_per_op "$out.time" "$n")" 0 "$(per_op $((s1 - s0)) 1 "$n")"
}

# ---------------------------------------------------------------- the sitting
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc $NCPU"
    echo "kernel $(uname -sr)"
    echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "settings ROUNDS=$ROUNDS RUN_SECONDS=$RUN_SECONDS KEYS=$KEYS CONCURRENCY=$CONCURRENCY VALUE_SIZE=$VALUE_SIZE MODES='$MODES'"
    echo "redis $(redis-server --version 2>/dev/null || echo none)"
    echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.txt"
steal_before=$(steal_ticks)
sitting_start=$(date +%s)
log "raw outputs in $OUT; $ROUNDS rounds x {$MODES}, $RUN_SECONDS s per run, $KEYS keys," \
    "$CONCURRENCY connections, $VALUE_SIZE-byte values (load average $(cut -d' ' -f1-3 /proc/loadavg))"

if want redis; then
    start_redis
    # Preload: SET over the key space (3 x KEYS random keys: ~95% of keys exist).
    redis-benchmark -h 127.0.0.1 -p "$redis_port" -t set -c "$CONCURRENCY" -d "$VALUE_SIZE" \
        -n $((KEYS * 3)) -r "$KEYS" --csv >"$OUT/raw/preload-redis.out" 2>&1 ||
        die "redis preload failed (see $OUT/raw/preload-redis.out)"
    redis_rate[preload]=$(tr -d '"' <"$OUT/raw/preload-redis.out" | awk -F, 'NR > 1 { print $2; exit }')
    log "redis preloaded: $(redis-cli -p "$redis_port" dbsize) keys"
fi
if want cairn; then
    start_cairnd
    # Bucket n1: n_val=1 r=1 w=1 (set as bucket properties); bucket n3: the defaults.
    "$BENCH" load -h "127.0.0.1:$cairn_port" -c "$CONCURRENCY" --keys "$KEYS" \
        --value-size "$VALUE_SIZE" --bucket n1 --n-val 1 --r 1 --w 1 -q \
        >"$OUT/raw/preload-cairn-n1.out" 2>&1 || die "cairn preload n1 failed (see $OUT/raw/preload-cairn-n1.out)"
    "$BENCH" load -h "127.0.0.1:$cairn_port" -c "$CONCURRENCY" --keys "$KEYS" \
        --value-size "$VALUE_SIZE" --bucket n3 -q \
        >"$OUT/raw/preload-cairn-n3.out" 2>&1 || die "cairn preload n3 failed (see $OUT/raw/preload-cairn-n3.out)"
    log "cairn preloaded: n1 $(fnum "$OUT/raw/preload-cairn-n1.out" put ops/s) puts/s," \
        "n3 $(fnum "$OUT/raw/preload-cairn-n3.out" put ops/s) puts/s"
fi

for mode in $MODES; do
    [ -n "$cairnd_pid" ] && pin_servers "$mode" "$cairnd_pid"
    [ -n "$redis_pid" ] && pin_servers "$mode" "$redis_pid"
    for round in $(seq 1 "$ROUNDS"); do
        log "$mode round $round/$ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
        if want cairn; then
            cairn_run "$mode" "$round" get1 get n1
            cairn_run "$mode" "$round" put1 put n1
            cairn_run "$mode" "$round" get3 get n3
            cairn_run "$mode" "$round" put3 put n3
        fi
        if want redis; then
            redis_run "$mode" "$round" get
            redis_run "$mode" "$round" set
        fi
    done
done

if [ "$PERF" = 1 ] && want cairn && command -v perf >/dev/null; then
    [ -n "$redis_pid" ] && pin_servers unpinned "$redis_pid"
    pin_servers unpinned "$cairnd_pid"
    for wl in get put; do
        log "perf: cairnd during one $wl run on n1"
        perf record -q -g -p "$cairnd_pid" -o "$OUT/perf-$wl.data" -- sleep "$RUN_SECONDS" \
            >/dev/null 2>&1 &
        perf_pid=$!
        "$BENCH" "$wl" -h "127.0.0.1:$cairn_port" -c "$CONCURRENCY" --keys "$KEYS" \
            --value-size "$VALUE_SIZE" --duration "$RUN_SECONDS" --bucket n1 -q \
            >"$OUT/raw/perf-$wl.out" 2>&1 || true
        wait "$perf_pid" || true
        perf report -i "$OUT/perf-$wl.data" --stdio --no-children -g none --sort dso,sym \
            --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | head -80 \
            >"$OUT/perf-$wl.txt" || true
        perf report -i "$OUT/perf-$wl.data" --stdio --no-children -g none --sort comm 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -30 >"$OUT/perf-$wl-threads.txt" || true
    done
fi
# The same for redis-server during one SET run, for a side-by-side look at where each
# server's time goes (OUT/perf-redis-set.txt; --children shares with perf report -i).
if [ "$PERF" = 1 ] && want redis && command -v perf >/dev/null; then
    pin_servers unpinned "$redis_pid"
    [ -n "$cairnd_pid" ] && pin_servers unpinned "$cairnd_pid"
    log "perf: redis-server during one SET run"
    perf record -q -g -p "$redis_pid" -o "$OUT/perf-redis-set.data" -- sleep "$RUN_SECONDS" \
        >/dev/null 2>&1 &
    perf_pid=$!
    redis-benchmark -h 127.0.0.1 -p "$redis_port" -t set -c "$CONCURRENCY" -d "$VALUE_SIZE" \
        -n "$(redis_requests unpinned set)" -r "$KEYS" -P 1 -q >"$OUT/raw/perf-redis-set.out" 2>&1 || true
    wait "$perf_pid" || true
    perf report -i "$OUT/perf-redis-set.data" --stdio --no-children -g none --sort dso,sym \
        --percent-limit 0.3 2>/dev/null | grep -v '^#' | grep -v '^$' | head -80 \
        >"$OUT/perf-redis-set.txt" || true
fi

{
    echo "loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "steal_percent $(awk -v d=$(($(steal_ticks) - steal_before)) -v hz="$CLK_TCK" \
        -v t=$(($(date +%s) - sitting_start)) -v c="$NCPU" 'BEGIN { printf "%.1f", (t > 0 ? 100 * d / hz / t / c : 0) }')"
    echo "sitting_seconds $(($(date +%s) - sitting_start))"
} >>"$OUT/meta.txt"
[ -s "$OUT/results.tsv" ] || die "no results recorded (see $OUT/raw)"

# ---------------------------------------------------------------- the table
# For every figure: the medians of each side over the rounds, and the median of the
# per-round ratios (Cairn's run against the Redis run of the same round and mode).
awk -F'\t' -v conc="$CONCURRENCY" -v vsize="$VALUE_SIZE" '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return n % 2 ? a[(n+1)/2] + 0 : (a[n/2] + a[n/2+1]) / 2
}
{
    col["ops"] = 5; col["p50"] = 6; col["p99"] = 7; col["cpu"] = 8; col["ccpu"] = 9; col["csw"] = 11
    for (m in col) v[$1, $2, $3, $4, m] = $(col[m])
    modes[$1] = 1; rounds[$1, $2] = 1
    if (!($1 in order)) { order[$1] = ++nmodes; mode_at[nmodes] = $1 }
}
function fmt(x, m) {
    if (x == "") return "-"
    if (m == "ops") return sprintf("%.0f", x)
    if (m == "p50" || m == "p99") return sprintf("%.3f", x)
    return sprintf("%.2f", x)
}
# figure: label, cairn test, redis test, metric, target kind (min: ratio >= t; max: ratio <= t)
function figure(mode, label, ct, rt, m, kind, t, abs_max,    r, cl, rl, ratios, cv, rv, rm, met, tgt) {
    cl = rl = ratios = ""
    for (r = 1; r <= 1000; r++) {
        if (!((mode, r) in rounds)) continue
        cv = v[mode, r, "cairn", ct, m]; rv = v[mode, r, "redis", rt, m]
        if (cv != "") cl = cl " " cv
        if (rv != "") rl = rl " " rv
        if (cv != "" && rv != "" && rv + 0 > 0) ratios = ratios " " (cv / rv)
    }
    cv = median(cl); rv = median(rl); rm = median(ratios)
    if (kind == "min") { tgt = ">= " t; met = (rm != "" && rm >= t) }
    else if (kind == "max") { tgt = "<= " t; met = (rm != "" && rm <= t) }
    else { tgt = "(info)"; met = -1 }
    if (abs_max != "" && kind != "") { tgt = tgt ", Cairn <= " abs_max; met = met && cv != "" && cv <= abs_max }
    if (rm == "" && met >= 0) met = -2
    printf "%-9s %-34s %12s %12s %8s   %-22s %s\n", mode, label, fmt(rv, m), fmt(cv, m),
        rm == "" ? "-" : sprintf("%.2f", rm), tgt, met == -1 ? "" : met == -2 ? "n/a" : (met ? "yes" : "NO")
}
END {
    printf "One node vs Redis: %s connections, %s-byte values, no pipelining. Medians over rounds;\n", conc, vsize
    printf "ratio = median of per-round Cairn/Redis (ops/s: higher is better; CPU, latency: lower).\n\n"
    printf "%-9s %-34s %12s %12s %8s   %-22s %s\n", "mode", "figure", "Redis", "Cairn", "ratio", "target", "met"
    for (i = 1; i <= nmodes; i++) {
        mode = mode_at[i]
        figure(mode, "get ops/s (n_val=1)", "get1", "get", "ops", "min", 0.50)
        figure(mode, "put ops/s (n_val=1, w=1)", "put1", "set", "ops", "min", 0.45)
        figure(mode, "get ops/s (defaults n_val=3, r=2)", "get3", "get", "ops", "min", 0.25)
        figure(mode, "put ops/s (defaults n_val=3, w=2)", "put3", "set", "ops", "min", 0.25)
        figure(mode, "server CPU us/op, get (n_val=1)", "get1", "get", "cpu", "max", 2)
        figure(mode, "server CPU us/op, put (n_val=1)", "put1", "set", "cpu", "max", 2)
        figure(mode, "get p99 ms (n_val=1)", "get1", "get", "p99", "max", 2, 5)
        figure(mode, "put p99 ms (n_val=1)", "put1", "set", "p99", "", "")
        figure(mode, "get p50 ms (n_val=1)", "get1", "get", "p50", "", "")
        figure(mode, "server CPU us/op, get (n_val=3)", "get3", "get", "cpu", "", "")
        figure(mode, "server CPU us/op, put (n_val=3)", "put3", "set", "cpu", "", "")
        figure(mode, "load generator CPU us/op, get", "get1", "get", "ccpu", "", "")
        figure(mode, "load generator CPU us/op, put", "put1", "set", "ccpu", "", "")
        figure(mode, "server context switches/op, get", "get1", "get", "csw", "", "")
        figure(mode, "server context switches/op, put", "put1", "set", "csw", "", "")
        print ""
    }
}' "$OUT/results.tsv" | tee "$OUT/table.txt"
log "machine load average before/after: $(awk '/^loadavg_before/{print $2,$3,$4}' "$OUT/meta.txt") /" \
    "$(cut -d' ' -f1-3 /proc/loadavg); CPU steal during the sitting: $(awk '/^steal_percent/{print $2}' "$OUT/meta.txt")%"
