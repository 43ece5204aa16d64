#!/usr/bin/env bash
# measure-cluster.sh — gossip convergence and failure detection on real local clusters.
#
# For each cluster size N (default: 3 5 8) it starts N+1 cairnd on loopback (N members and
# one fresh node), forms the N-node cluster, and measures from the nodes' own log lines
# (millisecond UTC timestamps; every state a node installs is logged with its fingerprint):
#   1. convergence: the fresh node joins, the claimant plans and commits; the time from the
#      claimant's commit until the last of the N+1 nodes installed the final state (the one
#      every node holds once nothing changes for a while), and that time in gossip intervals;
#   2. failure detection: one member is killed with SIGKILL; the time until each surviving
#      node logs it as unreachable (its sockets close at once), and the time until it is seen
#      as up again after a restart;
#   3. a silent node: one member is paused with SIGSTOP (sockets open, nothing answers); the
#      time until node 1 logs it unreachable, which only the heartbeats and
#      cluster.node_timeout can tell.
# Results: one line per N on stdout, and a markdown table with --markdown.
#
# Usage: scripts/measure-cluster.sh [--markdown] [N...]
# Env:   BUILD (default build), BASE_PORT (default 19000), RING_SIZE (default 64),
#        GOSSIP_MS (cluster.gossip_interval, default 1000), HEARTBEAT_MS (default 1000),
#        NODE_TIMEOUT_MS (cluster.node_timeout, default 4000).
set -euo pipefail
cd "$(dirname "$0")/.."

MARKDOWN=0
if [ "${1:-}" = "--markdown" ]; then MARKDOWN=1; shift; fi
case "${1:-}" in -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(3 5 8)
BIN=${BUILD:-build}/release/bin
BASE_PORT=${BASE_PORT:-19000}
RING_SIZE=${RING_SIZE:-64}
GOSSIP_MS=${GOSSIP_MS:-1000}
HEARTBEAT_MS=${HEARTBEAT_MS:-1000}
NODE_TIMEOUT_MS=${NODE_TIMEOUT_MS:-4000}
for p in cairnd cairn-admin; do
    [ -x "$BIN/$p" ] || { echo "measure-cluster.sh: $BIN/$p missing: build first (make)" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/cairn-measure-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

name() { echo "m$1@127.0.0.1:$((BASE_PORT + 2 * $1))"; }
dir() { echo "$WORK/n$1"; }
admin() { local i=$1; shift; "$BIN/cairn-admin" --data-dir "$(dir "$i")" --node "$(name "$i")" "$@"; }
now_ms() { date +%s%3N; }
# A log line's time (2026-11-21T00:48:53.590Z ...) in epoch milliseconds.
log_ms() { date -d "${1%%Z*}Z" +%s%3N; }

start() { # start I: launch node I and wait for its ready line
    local i=$1 d
    d=$(dir "$i")
    mkdir -p "$d"
    [ -f "$d/cookie" ] || { printf 'measure' >"$d/cookie"; chmod 600 "$d/cookie"; }
    "$BIN/cairnd" --nodename "$(name "$i")" --listen "127.0.0.1:$((BASE_PORT + 2 * i + 1))" \
        --data-dir "$d" --ring-size "$RING_SIZE" --set log.file=off \
        --set "cluster.gossip_interval=${GOSSIP_MS}ms" \
        --set "cluster.heartbeat_interval=${HEARTBEAT_MS}ms" \
        --set "cluster.node_timeout=${NODE_TIMEOUT_MS}ms" \
        >"$d/out" 2>>"$d/log" &
    PIDS[i]=$!
    for _ in $(seq 600); do
        grep -q ' ready, client port ' "$d/out" 2>/dev/null && return 0
        kill -0 "${PIDS[i]}" 2>/dev/null || { echo "node $i died:"; tail -5 "$d/log"; exit 1; }
        sleep 0.05
    done
    echo "node $i not ready" >&2
    exit 1
}

wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
    local t=$1
    shift
    for _ in $(seq $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "measure-cluster.sh: timed out: $*" >&2
    return 1
}

# The fingerprint of the last state node I installed.
last_fp() { grep -o 'new state [0-9a-f]*' "$(dir "$1")/log" | tail -1 | awk '{print $3}'; }
# The time node I installed state FP (first time), epoch ms.
fp_time() {
    local line
    line=$(grep "new state $2 " "$(dir "$1")/log" | head -1)
    [ -n "$line" ] && log_ms "${line%% *}"
}
all_same_fp() { # all_same_fp COUNT: nodes 1..COUNT hold one state
    local fp first
    first=$(last_fp 1)
    [ -n "$first" ] || return 1
    for i in $(seq 2 "$1"); do fp=$(last_fp "$i"); [ "$fp" = "$first" ] || return 1; done
}
pending_zero() { admin 1 --json member-status | grep -q '"pending":0'; }

markdown_rows=()
for N in "${SIZES[@]}"; do
    rm -rf "$WORK"/n*
    PIDS=()
    total=$((N + 1))
    for i in $(seq "$total"); do start "$i"; done
    for i in $(seq 2 "$N"); do admin "$i" cluster join "$(name 1)" >/dev/null; done
    for i in $(seq 2 "$N"); do wait_for 30 bash -c "'$BIN/cairn-admin' --data-dir '$(dir 1)' --node '$(name 1)' --json member-status | grep -q '\"$(name "$i")\"'"; done
    admin 1 cluster commit >/dev/null
    wait_for 60 pending_zero
    wait_for 60 admin 1 ringready
    # 1. convergence after a join committed by the claimant
    admin "$total" cluster join "$(name 1)" >/dev/null
    wait_for 30 bash -c "'$BIN/cairn-admin' --data-dir '$(dir 1)' --node '$(name 1)' --json member-status | grep -q '\"$(name "$total")\"'"
    admin 1 cluster commit >/dev/null
    commit_line=$(grep 'new state [0-9a-f]* (cluster commit)' "$(dir 1)/log" | tail -1)
    t_commit=$(log_ms "${commit_line%% *}")
    commit_fp=$(awk '{for(i=1;i<=NF;i++) if($i=="state"){print $(i+1); exit}}' <<<"$commit_line")
    # every node holds the commit's state (or a later one, once transfers complete)
    t_conv=0
    for i in $(seq "$total"); do
        wait_for 30 bash -c "grep -q 'new state $commit_fp ' '$(dir "$i")/log'" || true
        t=$(fp_time "$i" "$commit_fp" || echo "$t_commit")
        [ "$((t - t_commit))" -gt "$t_conv" ] && t_conv=$((t - t_commit))
    done
    wait_for 60 all_same_fp "$total"
    # 2. failure detection: kill the last member, then restart it
    victim=$N
    t_kill=$(now_ms)
    kill -KILL "${PIDS[victim]}"
    wait "${PIDS[victim]}" 2>/dev/null || true
    worst_down=0
    for i in $(seq "$total"); do
        [ "$i" -eq "$victim" ] && continue
        wait_for 30 bash -c "grep -q '$(name "$victim") is unreachable' '$(dir "$i")/log'"
        line=$(grep "$(name "$victim") is unreachable" "$(dir "$i")/log" | tail -1)
        t=$(log_ms "${line%% *}")
        [ "$((t - t_kill))" -gt "$worst_down" ] && worst_down=$((t - t_kill))
    done
    before_up=$(grep -c "$(name "$victim") is up" "$(dir 1)/log" || true)
    t_restart=$(now_ms)
    start "$victim"
    wait_for 30 bash -c "[ \$(grep -c '$(name "$victim") is up' '$(dir 1)/log') -gt $before_up ]"
    line=$(grep "$(name "$victim") is up" "$(dir 1)/log" | tail -1)
    up_ms=$(($(log_ms "${line%% *}") - t_restart))
    # 3. a silent node (SIGSTOP: its sockets stay open, nothing answers): only heartbeats and
    #    cluster.node_timeout can tell
    wait_for 30 admin 1 ringready
    before_down=$(grep -c "$(name "$victim") is unreachable" "$(dir 1)/log" || true)
    t_stop=$(now_ms)
    kill -STOP "${PIDS[victim]}"
    wait_for 60 bash -c "[ \$(grep -c '$(name "$victim") is unreachable' '$(dir 1)/log') -gt $before_down ]"
    line=$(grep "$(name "$victim") is unreachable" "$(dir 1)/log" | tail -1)
    silent_ms=$(($(log_ms "${line%% *}") - t_stop))
    kill -CONT "${PIDS[victim]}"
    rounds=$(awk -v t="$t_conv" -v g="$GOSSIP_MS" 'BEGIN{printf "%.2f", t / g}')
    echo "nodes=$N+1 converge_ms=$t_conv gossip_intervals=$rounds detect_down_ms=$worst_down" \
         "seen_up_after_restart_ms=$up_ms paused_seen_down_ms=$silent_ms (gossip ${GOSSIP_MS} ms, heartbeat ${HEARTBEAT_MS} ms," \
         "node_timeout ${NODE_TIMEOUT_MS} ms)"
    markdown_rows+=("| $N + 1 joining | $t_conv ms | $rounds | $worst_down ms | $silent_ms ms | $up_ms ms |")
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
done
if [ "$MARKDOWN" = 1 ]; then
    echo
    echo "| cluster | commit -> last node installed it | in gossip intervals | kill -9 -> every node sees it down | SIGSTOP -> seen down | restart -> seen up |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${markdown_rows[@]}"
fi
