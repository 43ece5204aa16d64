#!/usr/bin/env bash
# bench-cluster.sh — a 3-node Cairn cluster against a 3-member etcd cluster (Debian's
# etcd-server) in one sitting on loopback: same concurrency, value size and key space, no
# pipelining (issue 5's targets). Run by `make bench-cluster`; see docs/bench-tool.md.
#
# It starts three cairnd (free loopback ports, one temp data dir each, ring_size 64, joined
# with cairn-admin, planned and committed, then settled: ringready and no pending transfer)
# and three etcd members (--initial-cluster-state new, a temp data dir each), preloads both
# key spaces, then runs ROUNDS alternating rounds (Cairn's block, then etcd's) in each MODE:
# "unpinned", and "pinned" where every server process of both systems and the load
# generator share CPU 0 (taskset). Cairn's block: cairn-bench get, then put, on bucket c3
# (bucket properties n_val=3 r=2 w=2) through the three nodes' client ports; etcd's block:
# etcd-bench get (linearizable ranges), then put, with the connections spread over the
# three members' client URLs. Server CPU per operation is utime+stime of every server
# process of the system under test, from /proc/<pid>/stat before and after each run.
#
# With DURABLE=1 (the default) the three cairnd then restart on the same data (the same
# ring, the preloaded keys) with storage.sync=always, and ROUNDS more alternating rounds per
# mode compare Cairn's durable puts with etcd's puts. etcd always fsyncs its write-ahead log
# before it acknowledges (it has no setting to turn that off); Cairn's default is
# storage.sync=none. The table states both. Raw outputs, results.tsv and table.txt stay in
# OUT. Every server is stopped on exit (SIGTERM, then SIGKILL after a bounded wait).
#
# Env knobs (defaults in brackets):
#   ROUNDS [3]          alternating rounds per mode
#   RUN_SECONDS [5]     seconds per run (SECONDS works too when set in the environment)
#   KEYS [100000]       key space (both systems; preloaded: every key written once)
#   CONCURRENCY [50]    connections; VALUE_SIZE [100] bytes
#   MODES ["unpinned pinned"]
#   DURABLE [1]         0: skip the storage.sync=always rounds
#   OUT [$BUILD/bench/cluster], BUILD [build] (binaries in $BUILD/release/bin)
#   ONLY [""]           cairn or etcd: run one side only (for debugging the script)
#   KEEP_DATA [0]       1: keep the data dirs
#   CAIRND_ARGS [""]    extra flags for every cairnd; ETCD_ARGS [""] for every etcd
#   RING_SIZE [64]
# With the defaults a sitting takes 2 x 3 x (4 + 2) runs x 5 s plus the preloads and the
# cluster starts: about 3.5 minutes.
run_seconds_env=${RUN_SECONDS:-${SECONDS:-0}}  # read before bash's own SECONDS counts up
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ROUNDS=${ROUNDS:-3}
RUN_SECONDS=$run_seconds_env
[ "$RUN_SECONDS" -gt 0 ] 2>/dev/null || RUN_SECONDS=5
KEYS=${KEYS:-100000}
CONCURRENCY=${CONCURRENCY:-50}
VALUE_SIZE=${VALUE_SIZE:-100}
MODES=${MODES:-unpinned pinned}
DURABLE=${DURABLE:-1}
BUILD=${BUILD:-build}
BIN=$root/$BUILD/release/bin
OUT=${OUT:-$root/$BUILD/bench/cluster}
ONLY=${ONLY:-}
KEEP_DATA=${KEEP_DATA:-0}
CAIRND_ARGS=${CAIRND_ARGS:-}
ETCD_ARGS=${ETCD_ARGS:-}
RING_SIZE=${RING_SIZE:-64}
NODES=3
BUCKET=c3                       # n_val=3 r=2 w=2, set as bucket properties at preload

CAIRND=$BIN/cairnd
ADMIN=$BIN/cairn-admin
CBENCH=$BIN/cairn-bench         # bench/cairn-bench_main.c
EBENCH=$BIN/etcd-bench          # bench/etcd-bench_main.c
NCPU=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
RUN_LIMIT=$((RUN_SECONDS * 6 + 60)) # no single run may take longer than this
PRELOAD_LIMIT=$((KEYS / 100 + 600)) # nor a preload (at >= 100 writes/s)
STEP_TIMEOUT=90                     # a cluster start, join or settle step
STOP_TIMEOUT=15                     # a server's stop before SIGKILL

die() { echo "bench-cluster: $*" >&2; exit 1; }
log() { echo "bench-cluster: $*" >&2; }

for n in ROUNDS KEYS CONCURRENCY VALUE_SIZE RING_SIZE; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, got '${!n}'"
done
for m in $MODES; do
    [ "$m" = unpinned ] || [ "$m" = pinned ] || die "MODES: unknown mode '$m' (unpinned, pinned)"
done
[ "$DURABLE" = 0 ] || [ "$DURABLE" = 1 ] || die "DURABLE must be 0 or 1, got '$DURABLE'"
case "$ONLY" in ""|cairn|etcd) ;; *) die "ONLY must be cairn or etcd, got '$ONLY'" ;; esac
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if want cairn; then
    for p in "$CAIRND" "$ADMIN" "$CBENCH"; do
        [ -x "$p" ] || die "$p not found: build it first (make BUILD=$BUILD release)"
    done
fi
if want etcd; then
    [ -x "$EBENCH" ] || die "$EBENCH not found: build it first (make BUILD=$BUILD release)"
    if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
        die "etcd/etcdctl missing: CAIRN_WITH_ETCD=1 scripts/deps.sh"
    fi
fi
command -v taskset >/dev/null || die "taskset (util-linux) missing"

mkdir -p "$OUT/raw"
rm -f "$OUT"/raw/* "$OUT/results.tsv" "$OUT/table.txt" "$OUT/meta.txt"
# On the root file system, not a tmpfs: the durable rounds and etcd's WAL must really fsync.
tmp=$(mktemp -d /var/tmp/cairn-bench-cluster.XXXXXX)
declare -a cairn_pid=() etcd_pid=()

# ---------------------------------------------------------------- cleanup: no server survives
# stop_pids <pid...>: SIGTERM to all, up to STOP_TIMEOUT s for all of them, then SIGKILL.
stop_pids() {
    local pid live deadline
    [ $# -gt 0 ] || return 0
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + STOP_TIMEOUT))
    while :; do
        live=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && live=1; done
        if [ "$live" = 0 ] || [ $SECONDS -ge $deadline ]; then break; fi
        sleep 0.1
    done
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "process $pid did not stop within ${STOP_TIMEOUT}s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}
stop_cairn() { stop_pids ${cairn_pid[@]+"${cairn_pid[@]}"}; cairn_pid=(); }
stop_etcd() { stop_pids ${etcd_pid[@]+"${etcd_pid[@]}"}; etcd_pid=(); }
cleanup() {
    trap - EXIT INT TERM
    stop_cairn
    stop_etcd
    if [ "$KEEP_DATA" = 1 ]; then
        log "kept the data dirs in $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---------------------------------------------------------------- helpers
declare -A taken_ports=()
free_port() {  # a loopback port nobody listens on and this script has not handed out
    local p _
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        [ -z "${taken_ports[$p]:-}" ] || continue
        if ! ss -Hltn "( sport = :$p )" 2>/dev/null | grep -q .; then
            taken_ports[$p]=1
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

# The CPU figures read /proc/<pid>: the pid must be the server itself, not a wrapper (setsid
# execs in place when its caller is not a process-group leader, as here).
is_program() {  # is_program <pid> <comm>
    local comm
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 0  # gone already: the start check says why
    [ "$comm" = "$2" ] || die "pid $1 is '$comm', not $2: cannot measure the server's CPU"
}

# results.tsv: mode round system test ops_s p50_ms p99_ms p999_ms server_cpu_us_op
#              client_cpu_us_op errors

# ---------------------------------------------------------------- the Cairn cluster
declare -a cairn_name=() cairn_port=() cairn_log_start=()
cairn_hosts=""

cairn_admin() {  # cairn_admin <node> <args...>
    local i=$1
    shift
    "$ADMIN" --data-dir "$tmp/cairn" --node "${cairn_name[$i]}" --timeout 5000 "$@"
}

# The cairnd log of node i from this start on.
cairn_log_since() { tail -c +$((cairn_log_start[$1] + 1)) "$OUT/raw/cairn$1.log" 2>/dev/null || true; }

start_cairn_nodes() {  # start_cairn_nodes <sync>: starts (or restarts) the three nodes
    local i deadline sync=$1
    for i in $(seq 1 $NODES); do
        mkdir -p "$tmp/cairn/node$i"
        touch "$OUT/raw/cairn$i.log"
        cairn_log_start[i]=$(stat -c %s "$OUT/raw/cairn$i.log")
        # shellcheck disable=SC2086
        setsid "$CAIRND" -c "$tmp/cairn/cluster.conf" --nodename "${cairn_name[$i]}" \
            --listen "127.0.0.1:${cairn_port[$i]}" --data-dir "$tmp/cairn/node$i" \
            --ring-size "$RING_SIZE" --set log.file=off --set log.level=warning \
            --set "storage.sync=$sync" $CAIRND_ARGS \
            >>"$OUT/raw/cairn$i.log" 2>&1 </dev/null &
        cairn_pid[i]=$!
    done
    for i in $(seq 1 $NODES); do
        is_program "${cairn_pid[$i]}" cairnd
    done
    deadline=$((SECONDS + STEP_TIMEOUT))
    for i in $(seq 1 $NODES); do
        until cairn_log_since "$i" | grep -q " ready, client port "; do
            kill -0 "${cairn_pid[$i]}" 2>/dev/null ||
                die "cairnd node $i exited during start (see $OUT/raw/cairn$i.log)"
            [ $SECONDS -lt $deadline ] || die "cairnd node $i not ready after ${STEP_TIMEOUT}s"
            sleep 0.1
        done
    done
}

cairn_members_of_1() {  # "name status" per member in node 1's ring
    cairn_admin 1 --json member-status 2>/dev/null |
        grep -o '"node":"[^"]*","status":"[^"]*"' |
        sed 's/"node":"\([^"]*\)","status":"\([^"]*\)"/\1 \2/'
}

# Waits until every node is a valid member of node 1's ring, the ring is ready on every
# member and no partition waits for a new owner.
cairn_settle() {
    local deadline=$((SECONDS + STEP_TIMEOUT)) m valid pending
    while :; do
        if m=$(cairn_members_of_1) && cairn_admin 1 ringready >/dev/null 2>&1; then
            valid=$(grep -c ' valid$' <<<"$m" || true)
            pending=$(cairn_admin 1 --json member-status 2>/dev/null |
                grep -o '"pending":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
            [ "$valid" -ne "$NODES" ] || [ "$pending" -ne 0 ] || return 0
        fi
        [ $SECONDS -lt $deadline ] ||
            die "the Cairn cluster did not settle within ${STEP_TIMEOUT}s (members: ${m:-?})"
        sleep 0.5
    done
}

start_cairn() {
    local i m out deadline
    mkdir -p "$tmp/cairn"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$tmp/cairn/cookie")
    (umask 077 && printf 'distribution.cookie = %s\n' "$(cat "$tmp/cairn/cookie")" \
        >"$tmp/cairn/cluster.conf")
    for i in $(seq 1 $NODES); do
        cairn_name[i]="cairn$i@127.0.0.1:$(free_port)"
        cairn_port[i]=$(free_port)
        cairn_hosts+="${cairn_hosts:+,}127.0.0.1:${cairn_port[$i]}"
    done
    start_cairn_nodes none
    for i in $(seq 2 $NODES); do
        out=$(cairn_admin "$i" cluster join "${cairn_name[1]}" 2>&1) ||
            die "cairn node $i could not join node 1: $out"
    done
    deadline=$((SECONDS + STEP_TIMEOUT))
    for i in $(seq 2 $NODES); do
        until m=$(cairn_members_of_1) && grep -q "^${cairn_name[$i]} " <<<"$m"; do
            [ $SECONDS -lt $deadline ] || die "node 1 does not list node $i after ${STEP_TIMEOUT}s"
            sleep 0.2
        done
    done
    cairn_admin 1 cluster plan >"$OUT/raw/cairn-plan.txt" 2>&1 || die "cluster plan failed"
    out=$(cairn_admin 1 cluster commit 2>&1) || die "cluster commit failed: $out"
    cairn_settle
    cairn_admin 1 member-status >"$OUT/raw/cairn-members.txt" 2>&1 || true
    log "Cairn: 3 nodes (pids ${cairn_pid[*]}) on $cairn_hosts, ring_size $RING_SIZE," \
        "storage.sync=none, data in $tmp/cairn"
}

# Restarts the nodes on the same data and ring with another sync policy.
restart_cairn() {  # restart_cairn <sync>
    stop_cairn
    start_cairn_nodes "$1"
    cairn_settle
    log "Cairn restarted with storage.sync=$1 (pids ${cairn_pid[*]})"
}

# ---------------------------------------------------------------- the etcd cluster
declare -a etcd_port=()
etcd_hosts=""

start_etcd() {
    local i initial="" deadline
    declare -a peer=()
    for i in $(seq 1 $NODES); do
        etcd_port[i]=$(free_port)
        peer[i]=$(free_port)
        initial+="${initial:+,}e$i=http://127.0.0.1:${peer[$i]}"
        etcd_hosts+="${etcd_hosts:+,}127.0.0.1:${etcd_port[$i]}"
    done
    for i in $(seq 1 $NODES); do
        mkdir -p "$tmp/etcd"
        # shellcheck disable=SC2086
        setsid etcd --name "e$i" --data-dir "$tmp/etcd/e$i" \
            --listen-client-urls "http://127.0.0.1:${etcd_port[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${etcd_port[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${peer[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${peer[$i]}" \
            --initial-cluster "$initial" --initial-cluster-state new \
            --initial-cluster-token "cairn-bench-$$" $ETCD_ARGS \
            >"$OUT/raw/etcd$i.log" 2>&1 </dev/null &
        etcd_pid[i]=$!
    done
    for i in $(seq 1 $NODES); do
        is_program "${etcd_pid[$i]}" etcd
    done
    deadline=$((SECONDS + STEP_TIMEOUT))
    until etcdctl --endpoints "$etcd_hosts" --command-timeout 3s endpoint health \
        >"$OUT/raw/etcd-health.txt" 2>&1; do
        for i in $(seq 1 $NODES); do
            kill -0 "${etcd_pid[$i]}" 2>/dev/null ||
                die "etcd member $i exited during start (see $OUT/raw/etcd$i.log)"
        done
        [ $SECONDS -lt $deadline ] ||
            die "the etcd cluster is not healthy after ${STEP_TIMEOUT}s (see $OUT/raw/etcd-health.txt)"
        sleep 0.5
    done
    etcdctl --endpoints "$etcd_hosts" endpoint status -w table >"$OUT/raw/etcd-status.txt" 2>&1 || true
    local leader
    # | ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | ...
    leader=$(awk -F'|' '$6 ~ /true/ { gsub(/ /, "", $2); print $2 }' "$OUT/raw/etcd-status.txt")
    log "etcd $(etcd --version | awk '/etcd Version/ {print $3}'): 3 members (pids ${etcd_pid[*]})" \
        "on $etcd_hosts (leader ${leader:-?}), data in $tmp/etcd"
}

# ---------------------------------------------------------------- one run of each kind
# run_one <mode> <round> <system> <test> <workload> : one results.tsv row
run_one() {
    local mode=$1 round=$2 sys=$3 test=$4 wl=$5
    local out="$OUT/raw/r$round-$mode-$sys-$test" c0 c1 ops
    local -a pids cmd
    if [ "$sys" = cairn ]; then
        pids=("${cairn_pid[@]}")
        cmd=("$CBENCH" "$wl" -h "$cairn_hosts" --bucket "$BUCKET" --timeout-ms 10000)
    else
        pids=("${etcd_pid[@]}")
        cmd=("$EBENCH" "$wl" -h "$etcd_hosts" --timeout-ms 10000)
    fi
    c0=$(cpu_ticks "${pids[@]}")
    timed_load "$mode" "$out" "${cmd[@]}" -c "$CONCURRENCY" --keys "$KEYS" \
        --value-size "$VALUE_SIZE" --duration "$RUN_SECONDS" -q || return 0
    c1=$(cpu_ticks "${pids[@]}")
    ops=$(fnum "$out.out" "$wl" ops)
    if [ -z "$ops" ] || [ "$ops" -le 0 ]; then
        log "no $wl result in $out.out"
        return 0
    fi
    local errs
    errs=$(fnum "$out.out" "$wl" errors)
    [ "${errs:-0}" = 0 ] || log "$sys $test ($mode, round $round): $errs errors: $(grep -h 'first error' "$out.err" || true)"
    record "$mode" "$round" "$sys" "$test" "$(fnum "$out.out" "$wl" ops/s)" \
        "$(fnum "$out.out" "$wl" p50)" "$(fnum "$out.out" "$wl" p99)" \
        "$(fnum "$out.out" "$wl" p99.9)" \
        "$(per_op $((c1 - c0)) "$((1000000 / CLK_TCK))" "$ops")" \
        "$(client_cpu_us_per_op "$out.time" "$ops")" "${errs:-?}"
}

preload() {  # preload <system>: every key written once
    local sys=$1 out="$OUT/raw/preload-$1.out"
    if [ "$sys" = cairn ]; then
        timeout "$PRELOAD_LIMIT" "$CBENCH" load -h "$cairn_hosts" -c "$CONCURRENCY" --keys "$KEYS" \
            --value-size "$VALUE_SIZE" --bucket "$BUCKET" --n-val 3 --r 2 --w 2 -q \
            >"$out" 2>&1 || die "cairn preload failed (see $out)"
    else
        timeout "$PRELOAD_LIMIT" "$EBENCH" load -h "$etcd_hosts" -c "$CONCURRENCY" --keys "$KEYS" \
            --value-size "$VALUE_SIZE" -q >"$out" 2>&1 || die "etcd preload failed (see $out)"
    fi
    local errs
    errs=$(fnum "$out" put errors)
    [ "${errs:-0}" = 0 ] || log "WARNING: $sys preload had $errs errors (see $out)"
    log "$sys preloaded: $KEYS keys at $(fnum "$out" put ops/s) puts/s"
}

pin_all() {  # pin_all <mode>
    [ ${#cairn_pid[@]} -eq 0 ] || pin_servers "$1" "${cairn_pid[@]}"
    [ ${#etcd_pid[@]} -eq 0 ] || pin_servers "$1" "${etcd_pid[@]}"
}

# ---------------------------------------------------------------- the sitting
fsync_ms=$(cd "$tmp" && dd if=/dev/zero of=fsync-probe bs=4k count=200 oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") { printf "%.3f", $(i-1) * 1000 / 200; exit } }')
rm -f "$tmp/fsync-probe"
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc $NCPU"
    echo "kernel $(uname -sr)"
    echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "settings ROUNDS=$ROUNDS RUN_SECONDS=$RUN_SECONDS KEYS=$KEYS CONCURRENCY=$CONCURRENCY VALUE_SIZE=$VALUE_SIZE MODES='$MODES' DURABLE=$DURABLE"
    echo "etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}' || echo none)"
    echo "data_fs $(df -PT "$tmp" | awk 'NR == 2 { print $2, $1 }')"
    echo "fsync_4k_ms ${fsync_ms:-?}"
    echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta.txt"
steal_before=$(steal_ticks)
sitting_start=$(date +%s)
log "raw outputs in $OUT; $ROUNDS rounds x {$MODES}, $RUN_SECONDS s per run, $KEYS keys," \
    "$CONCURRENCY connections, $VALUE_SIZE-byte values; a 4 KiB O_DSYNC write takes" \
    "${fsync_ms:-?} ms here (load average $(cut -d' ' -f1-3 /proc/loadavg))"

if want etcd; then
    start_etcd
    preload etcd
fi
if want cairn; then
    start_cairn
    preload cairn
fi

for mode in $MODES; do
    pin_all "$mode"
    for round in $(seq 1 "$ROUNDS"); do
        log "$mode round $round/$ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
        if want cairn; then
            run_one "$mode" "$round" cairn get get
            run_one "$mode" "$round" cairn put put
        fi
        if want etcd; then
            run_one "$mode" "$round" etcd get get
            run_one "$mode" "$round" etcd put put
        fi
    done
done

if [ "$DURABLE" = 1 ]; then
    want cairn && restart_cairn always
    for mode in $MODES; do
        pin_all "$mode"
        for round in $(seq 1 "$ROUNDS"); do
            log "durable $mode round $round/$ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
            want cairn && run_one "$mode" "$round" cairn dput put
            want etcd && run_one "$mode" "$round" etcd dput put
        done
    done
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
# per-round ratios (Cairn's run against the etcd run of the same round and mode).
awk -F'\t' -v conc="$CONCURRENCY" -v vsize="$VALUE_SIZE" -v keys="$KEYS" '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return n % 2 ? a[(n+1)/2] + 0 : (a[n/2] + a[n/2+1]) / 2
}
{
    col["ops"] = 5; col["p50"] = 6; col["p99"] = 7; col["p999"] = 8; col["cpu"] = 9; col["ccpu"] = 10
    for (m in col) v[$1, $2, $3, $4, m] = $(col[m])
    rounds[$1, $2] = 1
    errors[$3 " " $4] += $11
    if (!($1 in order)) { order[$1] = ++nmodes; mode_at[nmodes] = $1 }
}
function fmt(x, m) {
    if (x == "") return "-"
    if (m == "ops") return sprintf("%.0f", x)
    if (m == "p50" || m == "p99" || m == "p999") return sprintf("%.3f", x)
    return sprintf("%.2f", x)
}
# figure: label, test, metric, target kind (min: ratio >= t; max: ratio <= t; lt: ratio < t;
# "": information only)
function figure(mode, label, test, m, kind, t,    r, cl, el, ratios, cv, ev, rm, met, tgt) {
    cl = el = ratios = ""
    for (r = 1; r <= 1000; r++) {
        if (!((mode, r) in rounds)) continue
        cv = v[mode, r, "cairn", test, m]; ev = v[mode, r, "etcd", test, m]
        if (cv != "") cl = cl " " cv
        if (ev != "") el = el " " ev
        if (cv != "" && ev != "" && ev + 0 > 0) ratios = ratios " " (cv / ev)
    }
    if (cl == "" && el == "") return
    cv = median(cl); ev = median(el); rm = median(ratios)
    if (kind == "min") { tgt = ">= " t; met = (rm != "" && rm >= t) }
    else if (kind == "max") { tgt = "<= " t; met = (rm != "" && rm <= t) }
    else if (kind == "lt") { tgt = "< " t; met = (rm != "" && rm < t) }
    else { tgt = "(info)"; met = -1 }
    if (rm == "" && met >= 0) met = -2
    printf "%-9s %-40s %11s %11s %8s   %-8s %s\n", mode, label, fmt(ev, m), fmt(cv, m),
        rm == "" ? "-" : sprintf("%.2f", rm), tgt, met == -1 ? "" : met == -2 ? "n/a" : (met ? "yes" : "NO")
}
END {
    printf "3-node Cairn cluster vs 3-member etcd cluster: %s connections, %s-byte values, %s keys,\n", conc, vsize, keys
    printf "no pipelining. Cairn: bucket n_val=3 r=2 w=2; etcd: linearizable ranges (JSON gateway).\n"
    printf "Medians over rounds; ratio = median of per-round Cairn/etcd (ops/s: higher is better;\n"
    printf "CPU, latency: lower). Durability: etcd fsyncs its WAL before acknowledging a put;\n"
    printf "Cairn storage.sync=none (rows 1-8: the OS flushes LevelDB logs; acknowledged by 2 of 3\n"
    printf "replicas in memory) and storage.sync=always (durable rows: each replica fsyncs first).\n\n"
    printf "%-9s %-40s %11s %11s %8s   %-8s %s\n", "mode", "figure", "etcd", "Cairn", "ratio", "target", "met"
    for (i = 1; i <= nmodes; i++) {
        mode = mode_at[i]
        figure(mode, "put ops/s", "put", "ops", "min", 3)
        figure(mode, "get ops/s (etcd linearizable)", "get", "ops", "min", 1.5)
        figure(mode, "server CPU us/put", "put", "cpu", "max", 0.5)
        figure(mode, "put p99 ms", "put", "p99", "lt", 1)
        figure(mode, "put p99.9 ms", "put", "p999", "lt", 1)
        figure(mode, "get p99 ms", "get", "p99", "lt", 1)
        figure(mode, "get p99.9 ms", "get", "p999", "lt", 1)
        figure(mode, "durable put ops/s (Cairn sync=always)", "dput", "ops", "min", 1)
        figure(mode, "durable put p99 ms", "dput", "p99", "", "")
        figure(mode, "durable put p99.9 ms", "dput", "p999", "", "")
        figure(mode, "durable server CPU us/put", "dput", "cpu", "", "")
        figure(mode, "server CPU us/get", "get", "cpu", "", "")
        figure(mode, "put p50 ms", "put", "p50", "", "")
        figure(mode, "get p50 ms", "get", "p50", "", "")
        figure(mode, "load generator CPU us/put", "put", "ccpu", "", "")
        figure(mode, "load generator CPU us/get", "get", "ccpu", "", "")
        print ""
    }
    printf "request errors over all rounds:"
    split("cairn etcd", systems, " "); split("get put dput", tests, " ")
    for (s = 1; s <= 2; s++) for (t = 1; t <= 3; t++)
        if ((systems[s] " " tests[t]) in errors) printf " %s %s %d;", systems[s], tests[t], errors[systems[s] " " tests[t]]
    printf "\n"
}' "$OUT/results.tsv" | tee "$OUT/table.txt"
log "machine load average before/after: $(awk '/^loadavg_before/{print $2,$3,$4}' "$OUT/meta.txt") /" \
    "$(cut -d' ' -f1-3 /proc/loadavg); CPU steal during the sitting: $(awk '/^steal_percent/{print $2}' "$OUT/meta.txt")%"
