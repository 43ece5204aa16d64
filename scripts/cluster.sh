#!/usr/bin/env bash
# cluster.sh — starts a local N-node Cairn cluster on loopback and keeps it in the foreground
# (`make run`: 3 nodes; `make cluster N=5`). Builds nothing: the binaries come from
# ${BUILD:-build}/release/bin (the Makefile builds them first).
#
# Node i (1..N) is cairn<i>@127.0.0.1:<8086+10*(i-1)> (its node link: other nodes and
# cairn-admin), serves clients on 127.0.0.1:<8087+10*(i-1)>, keeps its data in
# ./data/node<i>/ and logs to ./data/node<i>/cairnd.log. Every node gets the cookie of
# ./data/cookie (generated on first use) through the config key distribution.cookie, from
# ./data/cluster.conf (mode 0600, so the cookie stays off the command line).
#
# Nodes 2..N join node 1 (`cairn-admin cluster join`), node 1 plans and commits, and the
# script waits until every member holds the same ring (`cairn-admin ringready`). A restart
# reuses the data dirs: nodes that are members already are not joined again. Ctrl-C or
# SIGTERM stops every node cleanly (SIGTERM, then up to CLUSTER_STOP_TIMEOUT seconds each
# to drain before SIGKILL). A node that stops on its own (e.g. after `cluster leave`) is
# reported; the others keep running.
#
# Usage: scripts/cluster.sh [N]            N nodes, 1..50 (default: $N, else 3)
# Env:   BUILD (build root, default build), CLUSTER_DATA_DIR (default ./data),
#        RING_SIZE (default 64; fixed once a data dir holds a ring),
#        CLUSTER_ARGS (extra cairnd flags for every node, e.g. "--log-level debug"),
#        CLUSTER_READY_TIMEOUT (seconds to wait for each step, default 60),
#        CLUSTER_STOP_TIMEOUT (seconds a node gets to stop, default 30).
# Exit status: 0 after a clean stop; 1 when the cluster could not be started or formed, or
# a node did not stop cleanly; 2 for bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

case "${1:-}" in
-h | --help) usage; exit 0 ;;
esac
[ $# -le 1 ] || { echo "cluster.sh: too many arguments (scripts/cluster.sh [N])" >&2; exit 2; }
N=${1:-${N:-3}}
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 1 ] || [ "$N" -gt 50 ]; then
    echo "cluster.sh: N must be a number of nodes in 1..50, not '$N'" >&2
    exit 2
fi
BIN=${BUILD:-build}/release/bin
DATA=${CLUSTER_DATA_DIR:-./data}
RING_SIZE=${RING_SIZE:-64}
STEP_TIMEOUT=${CLUSTER_READY_TIMEOUT:-60}
STOP_TIMEOUT=${CLUSTER_STOP_TIMEOUT:-30}
for prog in cairnd cairn-admin cairn; do
    [ -x "$BIN/$prog" ] || { echo "cluster.sh: $BIN/$prog is missing: build first (make)" >&2; exit 1; }
done

node_name() { echo "cairn$1@127.0.0.1:$((8086 + 10 * ($1 - 1)))"; }
client_port() { echo $((8087 + 10 * ($1 - 1))); }
node_dir() { echo "$DATA/node$1"; }
admin() { # admin I ARGS...: cairn-admin against node I
    local i=$1
    shift
    "$BIN/cairn-admin" --data-dir "$DATA" --node "$(node_name "$i")" "$@"
}
say() { echo "cluster: $*"; }

# ---------------------------------------------------------------- the cookie

mkdir -p "$DATA"
if [ ! -s "$DATA/cookie" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$DATA/cookie")
    say "generated a cluster cookie in $DATA/cookie"
fi
COOKIE=$(head -n1 "$DATA/cookie")
[[ $COOKIE =~ ^[A-Za-z0-9._-]+$ ]] ||
    { echo "cluster.sh: $DATA/cookie must hold one word of letters, digits, . _ - (delete it to get a new one)" >&2; exit 1; }
(umask 077 && printf '# written by scripts/cluster.sh: the cluster cookie for every node\ndistribution.cookie = %s\n' \
    "$COOKIE" >"$DATA/cluster.conf")

# ---------------------------------------------------------------- stopping

declare -a PIDS=()   # PIDS[i]: node i's cairnd, empty once it has exited
STOPPING=0

# stop_nodes: SIGTERM to every running node, then wait (bounded) for each.
stop_nodes() {
    local i pid deadline rc=0
    for i in "${!PIDS[@]}"; do
        pid=${PIDS[$i]}
        if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    deadline=$((SECONDS + STOP_TIMEOUT))
    for i in "${!PIDS[@]}"; do
        pid=${PIDS[$i]}
        [ -n "$pid" ] || continue
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            say "node $i did not stop within ${STOP_TIMEOUT}s: killing it (see $(node_dir "$i")/cairnd.log)"
            kill -KILL "$pid" 2>/dev/null || true
            rc=1
        fi
        if wait "$pid" 2>/dev/null; then
            say "node $i stopped"
        else
            local st=$?
            # 143 = killed by our SIGTERM before it could handle it (still starting).
            if [ "$st" -ne 143 ]; then
                say "node $i exited with status $st (see $(node_dir "$i")/cairnd.log)"
                rc=1
            fi
        fi
        PIDS[i]=
    done
    return $rc
}

on_signal() {
    [ "$STOPPING" = 1 ] && return
    STOPPING=1
    echo
    say "stopping every node..."
    local rc=0
    stop_nodes || rc=1
    exit $rc
}
trap on_signal INT TERM
# Whatever happens (an error under set -e included), no node is left behind.
trap '[ "$STOPPING" = 1 ] || { STOPPING=1; stop_nodes || true; }' EXIT

fail() {
    echo "cluster.sh: $*" >&2
    STOPPING=1
    say "stopping every node..."
    stop_nodes || true
    exit 1
}

# ---------------------------------------------------------------- starting

# The cairnd log of node i, from byte offset $2 on (this run's part).
log_since() { tail -c +$(($2 + 1)) "$(node_dir "$1")/cairnd.log" 2>/dev/null || true; }

declare -a LOG_START=()
launcher=()
command -v setsid >/dev/null && launcher=(setsid) # own session: Ctrl-C reaches only this script
for i in $(seq 1 "$N"); do
    dir=$(node_dir "$i")
    mkdir -p "$dir"
    touch "$dir/cairnd.log"
    LOG_START[i]=$(stat -c %s "$dir/cairnd.log")
    # shellcheck disable=SC2086
    "${launcher[@]}" "$BIN/cairnd" -c "$DATA/cluster.conf" --nodename "$(node_name "$i")" \
        --listen "127.0.0.1:$(client_port "$i")" --data-dir "$dir" --ring-size "$RING_SIZE" \
        --set log.file=off ${CLUSTER_ARGS:-} >>"$dir/cairnd.log" 2>&1 </dev/null &
    PIDS[i]=$!
done
say "starting $N node(s), logs in $DATA/node<i>/cairnd.log"

deadline=$((SECONDS + STEP_TIMEOUT))
for i in $(seq 1 "$N"); do
    until log_since "$i" "${LOG_START[$i]}" | grep -q " ready, client port "; do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            st=0
            wait "${PIDS[$i]}" || st=$?
            PIDS[i]=
            echo "cluster.sh: node $i ($(node_name "$i")) exited at start with status $st:" >&2
            log_since "$i" "${LOG_START[$i]}" | tail -n 15 >&2
            fail "node $i could not start (full log: $(node_dir "$i")/cairnd.log)"
        fi
        [ $SECONDS -lt $deadline ] ||
            fail "node $i not ready after ${STEP_TIMEOUT}s (see $(node_dir "$i")/cairnd.log)"
        sleep 0.1
    done
done
say "$N node(s) ready"

# ---------------------------------------------------------------- forming the cluster

# members_of I: "name status" per member of node I's ring (removed ones included).
members_of() {
    admin "$1" --json member-status 2>/dev/null |
        grep -o '"node":"[^"]*","status":"[^"]*"' | sed 's/"node":"\([^"]*\)","status":"\([^"]*\)"/\1 \2/'
}
# is_member NAME: NAME is in node 1's ring and not removed. (The list is read whole first:
# with pipefail, grep -q closing a pipe early could fail the writer.)
is_member() {
    local m
    m=$(members_of 1) || return 1
    grep -q "^$1 \(joining\|valid\|leaving\|exiting\|down\)\$" <<<"$m"
}
has_joining() {
    local m
    m=$(members_of 1) || return 1
    grep -q ' joining$' <<<"$m"
}

if [ "$N" -gt 1 ]; then
    joined=0
    for i in $(seq 2 "$N"); do
        if is_member "$(node_name "$i")"; then
            say "node $i is a member already"
            continue
        fi
        out=$(admin "$i" cluster join "$(node_name 1)" 2>&1) ||
            fail "node $i could not join node 1: $out"
        say "node $i: $out"
        joined=$((joined + 1))
    done
    # Node 1 must know every joining node before it plans (joins reach it by gossip).
    deadline=$((SECONDS + STEP_TIMEOUT))
    for i in $(seq 2 "$N"); do
        until is_member "$(node_name "$i")"; do
            [ $SECONDS -lt $deadline ] ||
                fail "node 1 does not list node $i as a member after ${STEP_TIMEOUT}s"
            sleep 0.2
        done
    done
    if has_joining; then
        say "cluster plan:"
        admin 1 cluster plan || fail "cluster plan failed on node 1"
        out=$(admin 1 cluster commit 2>&1) || fail "cluster commit failed on node 1: $out"
        say "$out"
    elif [ "$joined" -eq 0 ]; then
        say "every node is a member already: nothing to join"
    fi
fi

# Settled: every member holds the same ring and no partition waits for a new owner (until
# partition handoff exists, owners complete their transfers within a few gossip rounds).
pending_of_1() {
    local js
    js=$(admin 1 --timeout 5000 --json member-status 2>/dev/null) || return 1
    grep -o '"pending":[0-9]*' <<<"$js" | cut -d: -f2
}
deadline=$((SECONDS + STEP_TIMEOUT))
while :; do
    ready=0
    pending='?'
    if out=$(admin 1 --timeout 5000 ringready 2>&1); then
        ready=1
        pending=$(pending_of_1) || pending='?'
        [ "$pending" != 0 ] || break
    fi
    if [ $SECONDS -ge $deadline ]; then
        if [ "$ready" = 0 ]; then
            say "WARNING: the ring has not settled after ${STEP_TIMEOUT}s: $out"
            say "(a member that is not running here, e.g. from an earlier, larger cluster, keeps"
            say " it unsettled: \`cairn-admin cluster force-remove NODE\` and commit, or start over)"
            out=
        else
            say "note: $pending partition(s) still wait for their new owner (cairn-admin transfers)"
        fi
        break
    fi
    sleep 0.5
done
[ -z "$out" ] || say "$out"
echo
admin 1 member-status || true

# ---------------------------------------------------------------- how to reach it

hosts=
admin_cmd="$BIN/cairn-admin"
[ "$DATA" = ./data ] || [ "$DATA" = data ] || admin_cmd+=" --data-dir $DATA"
for i in $(seq 1 "$N"); do hosts+="${hosts:+,}127.0.0.1:$(client_port "$i")"; done
echo
echo "Cairn: a local cluster of $N node(s); Ctrl-C stops every node (each drains its requests first)."
for i in $(seq 1 "$N"); do
    printf '  %-24s client port 127.0.0.1:%-6s data %s\n' "$(node_name "$i")" "$(client_port "$i")" "$(node_dir "$i")"
done
cat <<INFO
Any node serves any request (Riak PB API: any Riak client works):
  $BIN/cairn -h $hosts put mybucket mykey 'hello'
  $BIN/cairn -h 127.0.0.1:$(client_port "$N") get mybucket mykey
Operate it from this directory (cairn-admin reads the cookie from $DATA/cookie;
\`cairn-admin --help\` lists every command, \`cairn-admin cluster --help\` the cluster ones):
  $admin_cmd --node $(node_name 1) member-status
  $admin_cmd --node $(node_name 1) ring-status
  $admin_cmd --node $(node_name "$N") ringready
Start over: stop it, then rm -rf $DATA.

INFO

# ---------------------------------------------------------------- running

# Waits for the nodes; one that stops on its own (removed from the cluster, crashed) is
# reported and the others keep running. The INT/TERM trap ends this loop.
while :; do
    running=0
    for i in "${!PIDS[@]}"; do
        pid=${PIDS[$i]}
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            running=$((running + 1))
        else
            st=0
            wait "$pid" || st=$?
            PIDS[i]=
            say "node $i ($(node_name "$i")) stopped on its own with status $st (see $(node_dir "$i")/cairnd.log)"
        fi
    done
    if [ "$running" -eq 0 ]; then
        say "no node is running any more"
        STOPPING=1
        exit 0
    fi
    # A short sleep in the background keeps the traps responsive (bash runs a trap only
    # between commands, and `wait` returns at once on a signal).
    sleep 1 &
    wait $! || true
done
