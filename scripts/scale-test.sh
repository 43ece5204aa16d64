#!/usr/bin/env bash
# scale-test.sh — the scaling user story of issue 6 on a local cluster: a 3-node cluster under
# continuous load gets a 4th and then a 5th node joined, planned and committed, then one node
# leaves; nothing acknowledged may be lost. See docs/scaling.md.
#
# Steps (every wait is bounded; Ctrl-C or any failure stops every process it started):
#   1. starts 3 cairnd on loopback (free ports, data dirs under a temp dir), forms a cluster
#      (cairn-admin cluster join / plan / commit) and waits until it has settled;
#   2. preloads PRELOAD_KEYS keys with acknowledgements logged (cairn-bench load
#      --unique-values --ack-log) and CHURN_KEYS keys for the load below;
#   3. starts the load: one cairn-bench LOAD_WORKLOAD (default update: a get, then a put
#      with the context the get returned) per initial node, each with its own node first in
#      its host list (cairn-bench sends every request to the first node that answers and
#      fails over in list order), plus a writer that writes fresh keys in rounds of
#      WRITER_KEYS (cairn-bench load into bucket acked-r<round>, every acknowledged put
#      logged) until the end;
#   4. after BASELINE_SECONDS, three changes, BETWEEN_SECONDS apart: node 4 joins, node 5
#      joins, node LEAVE_NODE leaves (cluster leave/plan/commit; it stops by itself once it
#      owns nothing). After each commit it waits (at most CHANGE_TIMEOUT s) until the change
#      has settled: no partition pending on the claimant, `ringready`, `transfers` idle on
#      every running node (and, for the leave, the leaving node exited and is no member);
#   5. stops the load, reads every logged key back with cairn-check at R=all,
#      notfound_ok=false (and with CHECK_PR=1 once more at PR=all: primaries only), then
#      looks for data kept by nodes that do not own it: partition directories of
#      non-owners while the nodes run, and, once every node has stopped, the objects in
#      them (cairn-check --scan);
#   6. prints the summary (markdown with --markdown), also in OUT/summary.txt.
#
# Per change it reports (how each figure is computed is in docs/scaling.md):
#   - moved: partitions whose owner differs between the ring before the commit and the ring
#     once settled (both read from the reference node's ring file with cairn-check
#     --owners), as a fraction of the ring, against the ideal 1/max(n_before, n_after)
#     (a join of an n-node cluster: 1/(n+1); a leave of an n-node cluster: 1/n), with the
#     absolute deviation (percentage points) and the relative one (|f - ideal| / ideal);
#     "within 10%" means the relative deviation is at most 10%. Also the fewest moves the
#     final per-node counts allow (the sum of the increases);
#   - time: commit -> settled (polled every ~0.5 s), commit -> the claimant logged no
#     partition pending, commit -> the last handoff finished (from the cairnd logs);
#   - handoff throughput: the objects and bytes of every "handoff: ... done: N objects, B
#     bytes ..." line the nodes logged between the commit and settling, divided by the time
#     from the commit to the last such line (MB = 10^6 bytes).
#
# Usage: scripts/scale-test.sh [--markdown] [--help]
# Env (defaults in brackets):
#   BUILD [build]            binaries from $BUILD/release/bin (make BUILD=... release first)
#   OUT [$BUILD/scale-test]  summary, ack logs, load outputs, cairnd logs, rings
#   RING_SIZE [64]           VALUE_SIZE [1000] bytes
#   PRELOAD_KEYS [20000]     acknowledged keys written before the first change
#   CHURN_KEYS [5000]        key space of the continuous load
#   LOAD_WORKLOAD [update]   any cairn-bench workload but load; LOAD_CONCURRENCY [4] per node
#   LOAD_ENGINE [blocking]   cairn-bench engine of the load: blocking goes through libcairn,
#                            as an application would (failover included); event is leaner
#   WRITER_KEYS [500]        keys per writer round; WRITER_CONCURRENCY [2]; WRITER_PAUSE [0.5] s
#   BASELINE_SECONDS [5]     load before the first change; BETWEEN_SECONDS [5] between changes
#   CHANGE_TIMEOUT [300]     seconds a change may take to settle (forming the first three
#                            nodes: at least 60)
#   LEAVE_NODE [2]           the node that leaves (2..5; node 1 is the claimant)
#   CHECK_PR [1]             also check at PR=all
#   HANDOFF_CONCURRENCY []   handoff.concurrency of every node (empty: cairnd's default)
#   CAIRND_ARGS []           extra flags for every cairnd
#   BASE_PORT []             first of 10 loopback ports (default: a free range)
#   KEEP_DATA [0]            1: keep the nodes' data dirs (their path is printed)
# Exit status: 0 when every criterion of the summary holds; 1 when one does not or the run
# could not finish; 2 for bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# With pipefail, a reader that stops early (head, grep -q, awk's exit) can fail its writer
# with SIGPIPE: such pipelines end in `|| true`, or read a captured string instead.

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
MARKDOWN=0
for arg in "$@"; do
    case "$arg" in
    --markdown) MARKDOWN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "scale-test.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

BUILD=${BUILD:-build}
BIN=$root/$BUILD/release/bin
OUT=${OUT:-$root/$BUILD/scale-test}
RING_SIZE=${RING_SIZE:-64}
VALUE_SIZE=${VALUE_SIZE:-1000}
PRELOAD_KEYS=${PRELOAD_KEYS:-20000}
CHURN_KEYS=${CHURN_KEYS:-5000}
LOAD_WORKLOAD=${LOAD_WORKLOAD:-update}
LOAD_ENGINE=${LOAD_ENGINE:-blocking}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-4}
WRITER_KEYS=${WRITER_KEYS:-500}
WRITER_CONCURRENCY=${WRITER_CONCURRENCY:-2}
WRITER_PAUSE=${WRITER_PAUSE:-0.5}
BASELINE_SECONDS=${BASELINE_SECONDS:-5}
BETWEEN_SECONDS=${BETWEEN_SECONDS:-5}
CHANGE_TIMEOUT=${CHANGE_TIMEOUT:-300}
LEAVE_NODE=${LEAVE_NODE:-2}
CHECK_PR=${CHECK_PR:-1}
HANDOFF_CONCURRENCY=${HANDOFF_CONCURRENCY:-}
CAIRND_ARGS=${CAIRND_ARGS:-}
BASE_PORT=${BASE_PORT:-}
KEEP_DATA=${KEEP_DATA:-0}
NODES=5                             # 3 initial, 2 joining

die() { echo "scale-test.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in RING_SIZE VALUE_SIZE PRELOAD_KEYS CHURN_KEYS LOAD_CONCURRENCY WRITER_KEYS \
    WRITER_CONCURRENCY BASELINE_SECONDS BETWEEN_SECONDS CHANGE_TIMEOUT LEAVE_NODE; do
    is_uint "${!v}" || { echo "scale-test.sh: $v must be a whole number, not '${!v}'" >&2; exit 2; }
done
if [ "$LEAVE_NODE" -lt 2 ] || [ "$LEAVE_NODE" -gt "$NODES" ]; then
    echo "scale-test.sh: LEAVE_NODE must be 2..$NODES, not $LEAVE_NODE" >&2
    exit 2
fi
[ "$LOAD_WORKLOAD" != load ] || { echo "scale-test.sh: LOAD_WORKLOAD cannot be load" >&2; exit 2; }
for p in cairnd cairn-admin cairn-bench cairn-check; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: build first (make BUILD=$BUILD release)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-scale-XXXXXX")
rm -rf "$OUT"
mkdir -p "$OUT/acks" "$OUT/raw" "$OUT/rings"

# ---------------------------------------------------------------- processes and cleanup

declare -a PIDS=()      # PIDS[i]: node i's cairnd while it runs
declare -a LOAD_PIDS=() # the continuous load generators
WRITER_PID=
CLEANED=0

stop_pid() { # stop_pid PID SIGNAL SECONDS: signal, wait (bounded), then SIGKILL
    local pid=$1 sig=$2 t=$3 _
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 $((t * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not stop within ${t}s after SIG$sig: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_writer() {
    [ -n "$WRITER_PID" ] || return 0
    touch "$WORK/stop-writer"
    local _
    for _ in $(seq 1 300); do kill -0 "$WRITER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$WRITER_PID" 2>/dev/null; then
        [ -s "$WORK/writer.pid" ] && stop_pid "$(cat "$WORK/writer.pid")" INT 15
        stop_pid "$WRITER_PID" TERM 5
    fi
    wait "$WRITER_PID" 2>/dev/null || true
    WRITER_PID=
}

stop_load() {
    local pid
    for pid in "${LOAD_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${LOAD_PIDS[@]}"; do stop_pid "$pid" INT 20; done
    LOAD_PIDS=()
}

stop_nodes() {
    local i
    for i in "${!PIDS[@]}"; do [ -z "${PIDS[$i]}" ] || kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
    for i in "${!PIDS[@]}"; do
        [ -n "${PIDS[$i]}" ] || continue
        stop_pid "${PIDS[$i]}" TERM 30
        PIDS[i]=
    done
}

cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    stop_writer
    stop_load
    stop_nodes
    local i
    for i in $(seq 1 $NODES); do
        [ -f "$WORK/n$i/cairnd.log" ] && cp "$WORK/n$i/cairnd.log" "$OUT/raw/cairnd-$i.log"
    done
    if [ "$KEEP_DATA" = 1 ]; then
        log "data dirs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; cleanup; exit 130' INT TERM

# ---------------------------------------------------------------- nodes

# A port is taken when any TCP socket uses it locally (a listener, or a connection, even in
# TIME-WAIT); the range stays below the kernel's ephemeral ports (32768 on Linux).
port_in_use() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
if [ -z "$BASE_PORT" ]; then
    for _ in $(seq 1 50); do
        BASE_PORT=$((20000 + RANDOM % 12000))
        busy=0
        for k in $(seq 0 $((2 * NODES + 1))); do
            if port_in_use $((BASE_PORT + k)); then busy=1; break; fi
        done
        [ "$busy" = 0 ] && break
        BASE_PORT=
    done
    [ -n "$BASE_PORT" ] || die "no free range of $((2 * NODES + 2)) loopback ports found"
fi
name() { echo "scale$1@127.0.0.1:$((BASE_PORT + 2 * $1))"; }
cport() { echo $((BASE_PORT + 2 * $1 + 1)); }
dir() { echo "$WORK/n$1"; }
admin() { # admin I ARGS...: cairn-admin against node I
    local i=$1
    shift
    "$BIN/cairn-admin" --data-dir "$(dir "$i")" --node "$(name "$i")" --timeout 10000 "$@"
}
now_ms() { date +%s%3N; }
# pause SECONDS: sleep in the background, so that a signal runs its trap at once (bash runs a
# trap only between commands, and `wait` returns as soon as a signal comes).
pause() { sleep "$1" & wait $! || true; }
log_ms() { date -d "${1%%Z*}Z" +%s%3N; } # a log line's time (2026-11-21T00:48:53.590Z) in ms
log_size() { stat -c %s "$(dir "$1")/cairnd.log" 2>/dev/null || echo 0; }
running() { [ -n "${PIDS[$1]:-}" ] && kill -0 "${PIDS[$1]}" 2>/dev/null; }

launcher=()
command -v setsid >/dev/null && launcher=(setsid) # own session: Ctrl-C reaches only this script

start_node() { # start_node I: launch node I and wait (bounded) for its ready line
    local i=$1 d _
    d=$(dir "$i")
    mkdir -p "$d"
    (umask 077 && printf 'scale-test-cookie' >"$d/cookie")
    local extra=()
    [ -z "$HANDOFF_CONCURRENCY" ] || extra+=(--set "handoff.concurrency=$HANDOFF_CONCURRENCY")
    # shellcheck disable=SC2086
    "${launcher[@]}" "$BIN/cairnd" --nodename "$(name "$i")" --listen "127.0.0.1:$(cport "$i")" \
        --data-dir "$d" --ring-size "$RING_SIZE" --set log.file=off --set storage.sync=none \
        "${extra[@]}" $CAIRND_ARGS >"$d/out" 2>"$d/cairnd.log" </dev/null &
    PIDS[i]=$!
    for _ in $(seq 1 600); do
        grep -q ' ready, client port ' "$d/out" 2>/dev/null && return 0
        if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            PIDS[i]=
            tail -n 15 "$d/cairnd.log" >&2
            die "node $i exited during start (log above)"
        fi
        sleep 0.1
    done
    die "node $i printed no ready line within 60 s (see $d/cairnd.log)"
}

members_of() { # members_of I: "name status" per member of node I's ring
    admin "$1" --json member-status 2>/dev/null |
        grep -o '"node":"[^"]*","status":"[^"]*"' |
        sed 's/"node":"\([^"]*\)","status":"\([^"]*\)"/\1 \2/'
}
pending_of() { admin "$1" --json member-status 2>/dev/null | grep -o '"pending":[0-9]*' | cut -d: -f2; }

wait_member() { # wait_member NAME: node 1 lists NAME as a member (bounded)
    local deadline=$((SECONDS + 60)) m
    while :; do
        m=$(members_of 1 || true)
        grep -q "^$1 " <<<"$m" && return 0
        [ $SECONDS -lt $deadline ] || die "node 1 does not list $1 after 60 s"
        sleep 0.3
    done
}

# settled REF [GONE]: the change has settled as seen from node REF: nothing pending, nobody
# joining, ringready, no transfer on any running node, and GONE (if given) no member.
settled() {
    local ref=$1 gone=${2:-} m p i
    m=$(members_of "$ref") || return 1
    [ -n "$m" ] || return 1
    ! grep -q ' joining$' <<<"$m" || return 1
    if [ -n "$gone" ] && grep -q "^$gone " <<<"$m"; then return 1; fi
    p=$(pending_of "$ref") || return 1
    [ "$p" = 0 ] || return 1
    admin "$ref" ringready >/dev/null 2>&1 || return 1
    for i in $(seq 1 $NODES); do
        running "$i" || continue
        m=$(admin "$i" transfers 2>/dev/null) || return 1
        grep -q 'No transfers active' <<<"$m" || return 1
    done
}

owners_file() { # owners_file REF TAG: node REF's ring owners into OUT/rings/TAG.txt
    "$BIN/cairn-check" --owners "$(dir "$1")/ring" >"$OUT/rings/$2.txt" ||
        die "cannot read node $1's ring file"
}
moved_count() { # moved_count BEFORE AFTER: partitions whose owner differs
    awk '!/^#/ { if (FNR == NR) o[$1] = $2; else if (($1 in o) && o[$1] != $2) n++ }
         END { print n + 0 }' "$1" "$2"
}
min_moves() { # the fewest moves the final per-member counts allow: the sum of the increases
    awk '/^# member / { if (FNR == NR) b[$3] = $6; else { d = $6 - b[$3]; if (d > 0) s += d } }
         END { print s + 0 }' "$1" "$2"
}
members_count() { grep -c '^# member .* \(valid\|leaving\|joining\) ' "$1" || true; }

# ---------------------------------------------------------------- load

hosts_from() { # hosts_from I: every node's client port, starting at node I
    local i k list=
    for k in $(seq 0 $((NODES - 1))); do
        i=$(((($1 - 1 + k) % NODES) + 1))
        list+="${list:+,}127.0.0.1:$(cport "$i")"
    done
    echo "$list"
}

writer_loop() { # runs in the background until $WORK/stop-writer exists
    local r=0 child
    trap - EXIT INT
    trap 'exit 0' TERM
    while [ ! -e "$WORK/stop-writer" ]; do
        r=$((r + 1))
        "$BIN/cairn-bench" load -h "$(hosts_from $(((r - 1) % 3 + 1)))" --bucket "acked-r$r" \
            --keys "$WRITER_KEYS" -c "$WRITER_CONCURRENCY" --value-size "$VALUE_SIZE" \
            --timeout-ms 5000 --unique-values --ack-log "$OUT/acks/round-$r.log" -q \
            >"$OUT/raw/writer-$r.out" 2>"$OUT/raw/writer-$r.err" &
        child=$!
        echo "$child" >"$WORK/writer.pid"
        wait "$child" || echo "writer round $r: cairn-bench exited with $?" >>"$OUT/raw/writer.err"
        sleep "$WRITER_PAUSE"
    done
}

# ---------------------------------------------------------------- one change

# Results per change, by index 1..3.
declare -a CH_NAME CH_N_BEFORE CH_N_AFTER CH_MOVED CH_MIN CH_SETTLE_MS CH_OWNER_MS CH_LAST_MS \
    CH_OBJ CH_BYTES CH_XFER CH_SWEEP_OBJ CH_OK
for idx in 1 2 3; do
    CH_NAME[idx]="(not run)" CH_N_BEFORE[idx]=1 CH_N_AFTER[idx]=1 CH_MOVED[idx]=0 CH_MIN[idx]=0
    CH_SETTLE_MS[idx]='' CH_OWNER_MS[idx]='' CH_LAST_MS[idx]='' CH_OBJ[idx]=0 CH_BYTES[idx]=0
    CH_XFER[idx]=0 CH_SWEEP_OBJ[idx]=0 CH_OK[idx]=0
done
GAVE_UP=0   # a change did not settle: the later ones are not run (a plan would be refused)

# handoff_lines I FROM TO: node I's "handoff: ... done:" lines between two log offsets.
handoff_lines() {
    local f
    f="$(dir "$1")/cairnd.log"
    [ -f "$f" ] || return 0
    tail -c +$(($2 + 1)) "$f" | head -c $(($3 - $2)) |
        grep -a ' handoff: [a-z]* of partition [0-9]* to [^ ]* done: ' || true
}

# do_change IDX KIND NODE: commit a join (KIND join) or a leave of NODE, wait, measure.
do_change() {
    local idx=$1 kind=$2 node=$3 ref=1 i t0 t1 before after gone=
    if [ "$GAVE_UP" = 1 ]; then
        log "change $idx: skipped (an earlier change did not settle)"
        return 0
    fi
    [ "$node" != 1 ] || ref=2
    owners_file "$ref" "before-$idx"
    before="$OUT/rings/before-$idx.txt"
    CH_N_BEFORE[idx]=$(members_count "$before")
    if [ "$kind" = join ]; then
        CH_NAME[idx]="join node $node"
        log "change $idx: node $node joins"
        start_node "$node"
        admin "$node" cluster join "$(name 1)" >"$OUT/raw/change-$idx-join.txt"
        wait_member "$(name "$node")"
    else
        CH_NAME[idx]="leave node $node"
        log "change $idx: node $node leaves"
        admin 1 cluster leave "$(name "$node")" >"$OUT/raw/change-$idx-leave.txt"
        gone=$(name "$node")
    fi
    admin 1 cluster plan >"$OUT/raw/change-$idx-plan.txt"
    admin 1 --json cluster plan >"$OUT/raw/change-$idx-plan.json"
    declare -A off0=()
    for i in $(seq 1 $NODES); do off0[$i]=$(log_size "$i"); done
    t0=$(now_ms)
    admin 1 cluster commit >"$OUT/raw/change-$idx-commit.txt" || die "change $idx: commit failed"
    log "change $idx: committed: $(cat "$OUT/raw/change-$idx-commit.txt")"
    local deadline=$((SECONDS + CHANGE_TIMEOUT)) ok=1
    while :; do
        if [ -n "$gone" ] && running "$node"; then
            : # the leaving node stops by itself once it owns nothing
        elif [ -n "$gone" ] && [ -n "${PIDS[$node]:-}" ]; then
            local st=0
            wait "${PIDS[$node]}" || st=$?
            PIDS[node]=
            log "change $idx: node $node stopped by itself (exit status $st)"
            [ "$st" = 0 ] || log "change $idx: WARNING: node $node exited with status $st"
        elif settled "$ref" "$gone"; then
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            log "change $idx: WARNING: not settled after ${CHANGE_TIMEOUT}s"
            admin "$ref" transfers >"$OUT/raw/change-$idx-transfers-timeout.txt" 2>&1 || true
            ok=0
            GAVE_UP=1
            break
        fi
        pause 0.5
    done
    t1=$(now_ms)
    CH_OK[idx]=$ok
    CH_SETTLE_MS[idx]=$((t1 - t0))
    owners_file "$ref" "after-$idx"
    after="$OUT/rings/after-$idx.txt"
    CH_N_AFTER[idx]=$(members_count "$after")
    CH_MOVED[idx]=$(moved_count "$before" "$after")
    CH_MIN[idx]=$(min_moves "$before" "$after")
    # The claimant's first "0 partitions pending" state after the commit.
    local line
    line=$(tail -c +$((off0[1] + 1)) "$(dir 1)/cairnd.log" |
        awk '/cluster: new state .*\(cluster commit\)/ { seen = 1; next }
             seen && /cluster: new state .* 0 partitions pending/ { print; exit }' || true)
    CH_OWNER_MS[idx]=
    [ -z "$line" ] || CH_OWNER_MS[idx]=$(($(log_ms "${line%% *}") - t0))
    # Handoff lines between the commit and settling, on every node.
    local all="$OUT/raw/change-$idx-handoffs.txt"
    : >"$all"
    for i in $(seq 1 $NODES); do
        [ -f "$(dir "$i")/cairnd.log" ] || continue
        handoff_lines "$i" "${off0[$i]:-0}" "$(log_size "$i")" | sed "s/^/node$i /" >>"$all"
    done
    # "nodeI TS LEVEL handoff: KIND of partition P to X done: N objects, B bytes in K batches,
    # S s ..." -> "TS P N B KIND" (KIND: transfer, or the name of a later or hinted pass)
    sed -E -n 's/^node[0-9]+ ([^ ]+) .* handoff: (.*) of partition ([0-9]+) to [^ ]+ done: ([0-9]+) objects, ([0-9]+) bytes.*/\1 \3 \4 \5 \2/p' \
        "$all" >"$all.fields"
    read -r "CH_OBJ[idx]" "CH_BYTES[idx]" "CH_XFER[idx]" "CH_SWEEP_OBJ[idx]" < <(awk '
        { obj += $3; bytes += $4; if ($5 == "transfer") xfer++; else other += $3 }
        END { printf "%d %d %d %d\n", obj, bytes, xfer, other }' "$all.fields")
    CH_LAST_MS[idx]=
    line=$(awk '{ print $1 }' "$all.fields" | sort | tail -1)
    [ -z "$line" ] || CH_LAST_MS[idx]=$(($(log_ms "$line") - t0))
    log "change $idx: $([ "$ok" = 1 ] && echo settled || echo "gave up") after ${CH_SETTLE_MS[idx]} ms; ${CH_MOVED[idx]} of $RING_SIZE partitions changed owner; ${CH_OBJ[idx]} objects handed off (${CH_SWEEP_OBJ[idx]} of them by passes other than the first transfer)"
}

# ---------------------------------------------------------------- the run

log "binaries: $BIN; work dir: $WORK; results: $OUT; ports $BASE_PORT..$((BASE_PORT + 2 * NODES + 1))"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm), $(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "settings: RING_SIZE=$RING_SIZE VALUE_SIZE=$VALUE_SIZE PRELOAD_KEYS=$PRELOAD_KEYS CHURN_KEYS=$CHURN_KEYS LOAD_WORKLOAD=$LOAD_WORKLOAD LOAD_CONCURRENCY=$LOAD_CONCURRENCY WRITER_KEYS=$WRITER_KEYS WRITER_CONCURRENCY=$WRITER_CONCURRENCY WRITER_PAUSE=$WRITER_PAUSE BASELINE_SECONDS=$BASELINE_SECONDS BETWEEN_SECONDS=$BETWEEN_SECONDS LEAVE_NODE=$LEAVE_NODE HANDOFF_CONCURRENCY=${HANDOFF_CONCURRENCY:-default} CAIRND_ARGS=$CAIRND_ARGS"
} >"$OUT/meta.txt"

for i in 1 2 3; do start_node "$i"; done
for i in 2 3; do admin "$i" cluster join "$(name 1)" >/dev/null; done
for i in 2 3; do wait_member "$(name "$i")"; done
admin 1 cluster plan >"$OUT/raw/form-plan.txt"
admin 1 cluster commit >/dev/null
form_timeout=$((CHANGE_TIMEOUT > 60 ? CHANGE_TIMEOUT : 60))
deadline=$((SECONDS + form_timeout))
until settled 1; do
    [ $SECONDS -lt $deadline ] || die "the 3-node cluster did not settle within ${form_timeout}s"
    sleep 0.5
done
log "3-node cluster formed"

HOSTS3="127.0.0.1:$(cport 1),127.0.0.1:$(cport 2),127.0.0.1:$(cport 3)"
"$BIN/cairn-bench" load -h "$HOSTS3" --bucket acked-pre --keys "$PRELOAD_KEYS" -c 8 \
    --value-size "$VALUE_SIZE" --unique-values --ack-log "$OUT/acks/preload.log" -q \
    >"$OUT/raw/preload-acked.out" 2>"$OUT/raw/preload-acked.err" || die "preload failed (see $OUT/raw)"
"$BIN/cairn-bench" load -h "$HOSTS3" --bucket churn --keys "$CHURN_KEYS" -c 8 \
    --value-size "$VALUE_SIZE" -q >"$OUT/raw/preload-churn.out" 2>&1 || die "preload failed (see $OUT/raw)"
log "preloaded $PRELOAD_KEYS acknowledged keys and $CHURN_KEYS keys for the load"

for i in 1 2 3; do
    "${launcher[@]}" "$BIN/cairn-bench" "$LOAD_WORKLOAD" -h "$(hosts_from "$i")" --bucket churn \
        --engine "$LOAD_ENGINE" \
        --keys "$CHURN_KEYS" -c "$LOAD_CONCURRENCY" --value-size "$VALUE_SIZE" --duration 86400 \
        --timeout-ms 5000 -q >"$OUT/raw/load-$i.out" 2>"$OUT/raw/load-$i.err" </dev/null &
    LOAD_PIDS+=($!)
done
writer_loop &
WRITER_PID=$!
log "load running ($LOAD_WORKLOAD from 3 clients, writer rounds of $WRITER_KEYS keys); baseline ${BASELINE_SECONDS}s"
pause "$BASELINE_SECONDS"

do_change 1 join 4
pause "$BETWEEN_SECONDS"
do_change 2 join 5
pause "$BETWEEN_SECONDS"
do_change 3 leave "$LEAVE_NODE"
pause "$BETWEEN_SECONDS"

log "stopping the load"
stop_writer
stop_load
for pid_file in "$OUT"/raw/load-*.out; do [ -s "$pid_file" ] || log "WARNING: $pid_file is empty"; done

# ---------------------------------------------------------------- checks

REF=1
live_hosts=
for i in $(seq 1 $NODES); do running "$i" && live_hosts+="${live_hosts:+,}127.0.0.1:$(cport "$i")"; done
log "checking every acknowledged write at R=all"
check_rc=0
"$BIN/cairn-check" -h "$live_hosts" -c 8 --r all -q "$OUT"/acks/*.log >"$OUT/check-r-all.txt" || check_rc=$?
pr_rc=
if [ "$CHECK_PR" = 1 ]; then
    log "checking again at PR=all (primaries only)"
    pr_rc=0
    "$BIN/cairn-check" -h "$live_hosts" -c 8 --r all --pr all -q "$OUT"/acks/*.log >"$OUT/check-pr-all.txt" || pr_rc=$?
fi

owners_file "$REF" final
final="$OUT/rings/final.txt"
# Partition directories of non-owners while the nodes run (the final ring).
declare -A FOREIGN_DIRS=() OWNED=()
for i in $(seq 1 $NODES); do
    n=$(name "$i")
    OWNED[$i]=$(awk -v n="$n" '!/^#/ && $2 == n' "$final" | wc -l)
    d="$(dir "$i")/leveldb"
    FOREIGN_DIRS[$i]=0
    [ -d "$d" ] || continue
    FOREIGN_DIRS[$i]=$(for pdir in "$d"/*; do
        [ -d "$pdir" ] || continue
        awk -v p="${pdir##*/}" -v n="$n" '!/^#/ && $1 == p && $2 != n { print }' "$final"
    done | wc -l)
done
log "stopping the nodes to count the objects they keep"
stop_nodes
declare -A FOREIGN_WITH_DATA=() FOREIGN_OBJECTS=() SCAN_RC=()
for i in $(seq 1 $NODES); do
    [ -d "$(dir "$i")" ] || continue
    rc=0
    "$BIN/cairn-check" --scan "$(dir "$i")" --node "$(name "$i")" --ring "$(dir "$REF")/ring" \
        >"$OUT/scan-node$i.txt" 2>&1 || rc=$?
    SCAN_RC[$i]=$rc
    FOREIGN_WITH_DATA[$i]=$(sed -n 's/.*(with data \([0-9]*\), \([0-9]*\) objects).*/\1/p' "$OUT/scan-node$i.txt")
    FOREIGN_OBJECTS[$i]=$(sed -n 's/.*(with data \([0-9]*\), \([0-9]*\) objects).*/\2/p' "$OUT/scan-node$i.txt")
done

# ---------------------------------------------------------------- request outcomes

# sum_requests FILES...: "requests failed timeouts" over cairn-bench text reports (every get
# and put line: ops counts the successes, errors the failures; the update line only
# repeats them).
sum_requests() {
    awk '($1 == "get" || $1 == "put") && $2 == "ops" {
             ok += $3; for (i = 4; i < NF; i++) if ($i == "errors") err += $(i + 1) }
         ($1 == "get" || $1 == "put") && $2 == "errors:" {
             for (i = 3; i < NF; i += 2) if ($i == "timeout") to += $(i + 1) }
         END { printf "%d %d %d\n", ok + err, err, to }' "$@" 2>/dev/null || echo "0 0 0"
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f%%", 100 * a / b; else print "-" }'; }
request_row() { # request_row LABEL FILES...: a row of the requests table; adds to the totals
    local label=$1 req fail to kinds
    shift
    read -r req fail to < <(sum_requests "$@")
    kinds=$(cat "$@" 2>/dev/null | awk '($1 == "get" || $1 == "put") && $2 == "errors:" {
        for (i = 3; i < NF; i += 2) k[$i] += $(i + 1) }
        END { for (n in k) printf "%s%s %d", (s++ ? ", " : ""), n, k[n] }')
    rows_requests+=("$label|$req|$fail|$(pct "$fail" "$req")|$to|$(pct "$to" "$req")|$((fail - to))|${kinds:--}")
    outright=$((outright + fail - to))
}
rows_requests=()
outright=0
for i in 1 2 3; do
    label="$LOAD_WORKLOAD load, node $i first"
    [ "$i" != "$LEAVE_NODE" ] || [ "${CH_NAME[3]}" = "(not run)" ] || label+=" (it leaves)"
    request_row "$label" "$OUT/raw/load-$i.out"
done
request_row "acknowledged writers (preload, rounds)" "$OUT"/raw/writer-*.out "$OUT"/raw/preload-acked.out

# ---------------------------------------------------------------- summary

secs() { if [ -n "$1" ]; then awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; else echo "-"; fi; }
rows_changes=()
criteria_ok=1
all_within=yes all_settled=yes
for idx in 1 2 3; do
    nb=${CH_N_BEFORE[idx]} na=${CH_N_AFTER[idx]}
    big=$((nb > na ? nb : na))
    if [ "${CH_NAME[idx]}" = "(not run)" ]; then
        rows_changes+=("(not run)|-|-|-|-|-|-|-|not run|-|-|-|-|-|-|-")
        criteria_ok=0 all_within=NO all_settled=NO
        continue
    fi
    read -r frac ideal absdev reldev within < <(awk -v m="${CH_MOVED[idx]}" -v q="$RING_SIZE" -v n="$big" 'BEGIN {
        f = m / q; id = 1 / n; a = f - id; if (a < 0) a = -a; r = a / id
        printf "%.4f %.4f %.2f %.1f %s\n", f, id, 100 * a, 100 * r, (r <= 0.10 ? "yes" : "NO") }')
    period=${CH_LAST_MS[idx]:-0}
    read -r mb mbps ops < <(awk -v b="${CH_BYTES[idx]}" -v o="${CH_OBJ[idx]}" -v p="$period" 'BEGIN {
        if (p > 0) printf "%.1f %.2f %.0f\n", b / 1e6, b / 1e6 / (p / 1000), o / (p / 1000)
        else printf "%.1f - -\n", b / 1e6 }')
    settle=$(secs "${CH_SETTLE_MS[idx]}")
    [ "${CH_OK[idx]}" = 1 ] || settle="NOT SETTLED (>${CHANGE_TIMEOUT}s)"
    rows_changes+=("${CH_NAME[idx]}|$nb -> $na|${CH_MOVED[idx]} / $RING_SIZE (min ${CH_MIN[idx]})|$frac|$ideal|$absdev pp|$reldev%|$within|$settle|$(secs "${CH_OWNER_MS[idx]:-}")|$(secs "${CH_LAST_MS[idx]:-}")|${CH_XFER[idx]}|${CH_OBJ[idx]} (${CH_SWEEP_OBJ[idx]})|$mb|$mbps|$ops")
    # the criterion is on joins (1/(n+1)); a leave's fraction is reported only
    [ "$within" = yes ] || [ "$na" -lt "$nb" ] || { criteria_ok=0; all_within=NO; }
    [ "${CH_OK[idx]}" = 1 ] || { criteria_ok=0; all_settled=NO; }
done

rows_nodes=()
max_owned=0 min_owned=$RING_SIZE foreign_total=0 scan_failed=0
for i in $(seq 1 $NODES); do
    [ -d "$(dir "$i")" ] || continue # never started (a change was skipped)
    st="member"
    [ "$i" != "$LEAVE_NODE" ] || [ "${CH_NAME[3]}" = "(not run)" ] || st="left"
    o=${OWNED[$i]:-0}
    if [ "$st" = member ]; then
        [ "$o" -le "$max_owned" ] || max_owned=$o
        [ "$o" -ge "$min_owned" ] || min_owned=$o
    fi
    fw=${FOREIGN_WITH_DATA[$i]:-} fo=${FOREIGN_OBJECTS[$i]:-}
    if [ "${SCAN_RC[$i]:-3}" != 0 ] && [ "${SCAN_RC[$i]:-3}" != 1 ] || [ -z "$fw" ]; then
        fw="? (scan failed: see scan-node$i.txt)" fo="?" scan_failed=1
    elif [ "$fw" != 0 ]; then
        foreign_total=1
    fi
    rows_nodes+=("node $i ($st)|$o|${FOREIGN_DIRS[$i]:-0}|$fw|$fo")
done
[ "$scan_failed" = 0 ] || criteria_ok=0
if [ "$scan_failed" = 1 ]; then
    kept_verdict="UNKNOWN (a scan failed)"
elif [ "$foreign_total" = 0 ]; then
    kept_verdict=yes
else
    kept_verdict=NO
fi
balanced=yes
[ $((max_owned - min_owned)) -le 1 ] || { balanced=NO; criteria_ok=0; }

check_line() { # check_line FILE: "keys present missing wrong errors result"
    sed -n 's/^checked \([0-9]*\) of \([0-9]*\) keys.*present \([0-9]*\) .*missing \([0-9]*\) (on no replica \([0-9]*\)), wrong \([0-9]*\), read errors \([0-9]*\).*/\2|\3|\4 (on no replica \5)|\6|\7/p' "$1"
}
result_word() { sed -n 's/^result: \([A-Z]*\).*/\1/p' "$1"; }
rows_checks=("R=all, notfound_ok=false|$(check_line "$OUT/check-r-all.txt")|$(result_word "$OUT/check-r-all.txt")")
[ "$check_rc" = 0 ] || criteria_ok=0
if [ -n "$pr_rc" ]; then
    rows_checks+=("R=all, PR=all, notfound_ok=false|$(check_line "$OUT/check-pr-all.txt")|$(result_word "$OUT/check-pr-all.txt")")
fi
[ "$outright" = 0 ] || criteria_ok=0
[ "$foreign_total" = 0 ] || criteria_ok=0

table() { # table HEADER ROWS...: markdown, or aligned columns
    local header=$1
    shift
    if [ "$MARKDOWN" = 1 ]; then
        echo "| ${header//|/ | } |"
        local sep
        sep=$(tr -c '|\n' '-' <<<"$header" | sed 's/-\{1,\}/---/g')
        echo "|$sep|"
        local r
        for r in "$@"; do echo "| ${r//|/ | } |"; done
    else
        printf '%s\n' "$header" "$@" | column -t -s '|' -o '  '
    fi
    echo
}

{
    echo "Cairn scaling test: 3 -> 4 -> 5 nodes -> node $LEAVE_NODE leaves, ring size $RING_SIZE, $VALUE_SIZE-byte values"
    echo "($(sed -n 's/^date: //p' "$OUT/meta.txt"); $(sed -n 's/^host: //p' "$OUT/meta.txt"))"
    echo
    echo "Changes (moved = partitions whose owner changed; ideal = 1/max(nodes before, after); dev = |moved/Q - ideal|, absolute in percentage points and relative to ideal; within 10% = relative dev <= 10%; min = fewest moves the final counts allow):"
    echo
    table "change|nodes|moved|fraction|ideal|abs dev|rel dev|within 10%|commit->settled s|commit->owners switched s|commit->last handoff s|transfers|objects handed off (in later passes)|MB|MB/s|objects/s" "${rows_changes[@]}"
    echo "Partitions per node at the end (balanced: $balanced, $min_owned..$max_owned) and data kept for partitions a node does not own (dirs: while running; with data: objects counted after the nodes stopped):"
    echo
    table "node|owned partitions|foreign partition dirs|foreign dirs with data|foreign objects" "${rows_nodes[@]}"
    echo "Requests during the run (every get and put; failed = any error, timeouts included; each load client sends to its first node and fails over in list order):"
    echo
    table "client|requests|failed|failed %|timeouts|timeouts %|failed other than timeout|errors by kind" \
        "${rows_requests[@]}"
    logs=("$OUT"/acks/*.log)
    echo "Acknowledged writes read back (cairn-check over ${#logs[@]} ack logs):"
    echo
    table "read|keys|present|missing|wrong|read errors|result" "${rows_checks[@]}"
    echo "Criteria: every acknowledged write readable at R=N: $([ "$check_rc" = 0 ] && echo yes || echo NO);" \
        "no request failed other than by timeout: $([ "$outright" = 0 ] && echo yes || echo "NO ($outright)");" \
        "moved fraction within 10% (relative) of the ideal on every join: $all_within;" \
        "transfers complete: $all_settled;" \
        "balanced: $balanced;" \
        "no node keeps data for partitions it does not own: $kept_verdict"
} | tee "$OUT/summary.txt"
log "details in $OUT (summary.txt, check-*.txt, scan-node*.txt, rings/, raw/)"
[ "$criteria_ok" = 1 ]
