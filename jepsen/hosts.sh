#!/usr/bin/env bash
# jepsen/hosts.sh — the hosts of the fault-injection suite: five network namespaces that play
# five machines, a control namespace for the clients and the harness, a switch namespace
# that holds the bridge, and the cairnd process of each host (start, kill -9, pause,
# restart, stop) plus forming them into one cluster.
#
# Layout (names and subnet differ from ../shared/reference/netns-recipe.sh, so both can
# exist at once):
#   cjsw        switch namespace, bridge cjbr (keeps the host firewall out of the path)
#   cj1..cj5    node namespaces, eth0 = 10.78.0.11 .. 10.78.0.15/24; each has the firewall
#               chains CJEPSEN (hooked into INPUT) and CJEPSEN_OUT (OUTPUT) for the nemeses
#   cjctl       control namespace, 10.78.0.10: clients and cairn-admin; never partitioned
# Node i is cairn<i>@10.78.0.1<i>:8086 (node link) and serves clients on 10.78.0.1<i>:8087.
# RUN_DIR/node<i>/ holds its data dir data/, its log cairnd.log (stdout and stderr), its pid
# file pid, and a core file if it crashed (it runs there with core dumps on).
#
# Usage (as root):
#   jepsen/hosts.sh setup                 build the namespaces (first tears down leftovers)
#   jepsen/hosts.sh teardown              kill every process in them, delete them, unmount
#                                         tmpfs data dirs; verifies nothing is left (exit 1
#                                         if something is); works from any partial state
#   jepsen/hosts.sh status                what exists now
#   jepsen/hosts.sh start RUN_DIR         start the 5 nodes with data under RUN_DIR, form
#                                         the cluster (join, plan, commit, ringready)
#   jepsen/hosts.sh stop RUN_DIR          SIGTERM the nodes of RUN_DIR (SIGKILL after 15 s)
#   jepsen/hosts.sh admin RUN_DIR I ARGS  cairn-admin against node I from the control ns
# The file can also be sourced (run.sh does): it then only defines the hosts_* / node_*
# functions and changes no shell option.
#
# Env: CAIRN_BIN  directory holding cairnd and cairn-admin (default: ${BUILD:-build}/release/bin)
#      CAIRN_NODE_ARGS  extra cairnd flags for every node (e.g. "--set storage.sync=always")
#      HOSTS_READY_TIMEOUT  seconds to wait for a node or the ring (default 60)
#      HOSTS_TMPFS_MB   when set, each node's data dir is a tmpfs of this size (the disk-full
#                       nemesis fills it); teardown unmounts it (the data goes, logs stay)
#      HOSTS_FAKETIME   1: each node runs under libfaketime with its own offset file
#                       node<i>/faketime ("+0"; the clock nemesis writes e.g. "-120" in it)

HOSTS_N=5
HOSTS_SW=cjsw
HOSTS_BR=cjbr
HOSTS_CTL=cjctl
HOSTS_NET=10.78.0
HOSTS_CTL_IP=$HOSTS_NET.10
HOSTS_NODE_PORT=8086
HOSTS_CLIENT_PORT=8087
HOSTS_READY_TIMEOUT=${HOSTS_READY_TIMEOUT:-60}
HOSTS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CAIRN_BIN=$(realpath -m "${CAIRN_BIN:-$HOSTS_ROOT/${BUILD:-build}/release/bin}")

hosts_node_ns() { echo "cj$1"; }                       # 3 -> cj3
hosts_node_ip() { echo "$HOSTS_NET.$((10 + $1))"; }    # 3 -> 10.78.0.13
hosts_node_name() { echo "cairn$1@$(hosts_node_ip "$1"):$HOSTS_NODE_PORT"; }
hosts_client_addr() { echo "$(hosts_node_ip "$1"):$HOSTS_CLIENT_PORT"; }
hosts_all_ns() { local i; for i in $(seq 1 $HOSTS_N); do echo "cj$i"; done; echo "$HOSTS_CTL"; echo "$HOSTS_SW"; }
hosts_log() { echo "hosts: $*" >&2; }
hosts_ns_exists() { [ -e "/run/netns/$1" ] || ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

hosts_require() {
    [ "$(id -u)" = 0 ] || { echo "hosts.sh: must run as root (network namespaces)" >&2; return 2; }
    local c
    for c in ip iptables setsid; do
        command -v "$c" >/dev/null ||
            { echo "hosts.sh: '$c' is missing (apt-get install iproute2 iptables util-linux)" >&2; return 2; }
    done
}

# ---------------------------------------------------------------- namespaces

# hosts_teardown: from any state (nothing, half built, running nodes, paused nodes): kills
# every process inside our namespaces (by pid, SIGCONT first so paused ones die too),
# unmounts tmpfs data dirs under jepsen/out, deletes the namespaces (their veths and the
# bridge go with them). Returns 1 and says what is left if anything is.
hosts_teardown() {
    local ns pid m left=""
    for ns in $(hosts_all_ns); do
        hosts_ns_exists "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
            # reaps our own children quietly (no "Killed" job message); others: no-op
            wait "$pid" 2>/dev/null
        done
    done
    # kill -9 is asynchronous: wait (bounded) until the namespaces hold no process
    local tries=0
    while [ $tries -lt 50 ]; do
        left=""
        for ns in $(hosts_all_ns); do
            hosts_ns_exists "$ns" && left+="$(ip netns pids "$ns" 2>/dev/null)"
        done
        [ -z "$left" ] && break
        sleep 0.1; tries=$((tries + 1))
    done
    for m in $(awk '$3 == "tmpfs" {print $2}' /proc/mounts | grep -F "$HOSTS_ROOT/jepsen/out/"); do
        umount -l "$m" 2>/dev/null
    done
    for ns in $(hosts_all_ns); do
        hosts_ns_exists "$ns" && ip netns del "$ns" 2>/dev/null
    done
    left=""
    for ns in $(hosts_all_ns); do hosts_ns_exists "$ns" && left+=" netns:$ns"; done
    ip -br link 2>/dev/null | awk '{print $1}' | grep -Eq "^(cjbr|cjp[0-9a-z]+)(@|$)" && left+=" links"
    awk '$3 == "tmpfs" {print $2}' /proc/mounts | grep -qF "$HOSTS_ROOT/jepsen/out/" && left+=" mounts"
    if [ -n "$left" ]; then
        hosts_log "teardown: left behind:$left"
        return 1
    fi
    return 0
}

# hosts_setup: tears down leftovers, then builds switch, bridge, 5 nodes, control.
hosts_setup() {
    hosts_require || return
    hosts_teardown || return 1
    ip netns add "$HOSTS_SW" && ip -n "$HOSTS_SW" link set lo up &&
        ip -n "$HOSTS_SW" link add "$HOSTS_BR" type bridge &&
        ip -n "$HOSTS_SW" link set "$HOSTS_BR" up || { hosts_log "setup: switch failed"; return 1; }
    local i ns port addr
    for i in $(seq 1 $HOSTS_N) ctl; do
        if [ "$i" = ctl ]; then ns=$HOSTS_CTL; port=cjpctl; addr=$HOSTS_CTL_IP
        else ns=$(hosts_node_ns "$i"); port=cjp$i; addr=$(hosts_node_ip "$i"); fi
        {
            ip netns add "$ns" &&
            ip link add name "$port" netns "$HOSTS_SW" type veth peer name eth0 netns "$ns" &&
            ip -n "$HOSTS_SW" link set "$port" master "$HOSTS_BR" up &&
            ip -n "$ns" link set lo up &&
            ip -n "$ns" addr add "$addr/24" dev eth0 &&
            ip -n "$ns" link set eth0 up
        } || { hosts_log "setup: namespace $ns failed"; return 1; }
        if [ "$i" != ctl ]; then
            {
                ip netns exec "$ns" iptables -w -N CJEPSEN &&
                ip netns exec "$ns" iptables -w -I INPUT -j CJEPSEN &&
                ip netns exec "$ns" iptables -w -N CJEPSEN_OUT &&
                ip netns exec "$ns" iptables -w -I OUTPUT -j CJEPSEN_OUT
            } || { hosts_log "setup: firewall chains in $ns failed"; return 1; }
        fi
    done
    # every link is up at both ends (reachability itself is proven by forming the cluster:
    # there is no ping on this machine)
    for ns in $(hosts_all_ns); do
        [ "$ns" = "$HOSTS_SW" ] && continue
        local tries=0
        until ip -n "$ns" -br link show eth0 2>/dev/null | grep -q LOWER_UP; do
            tries=$((tries + 1))
            [ $tries -lt 50 ] || { hosts_log "setup: eth0 of $ns is not up"; return 1; }
            sleep 0.1
        done
    done
    hosts_log "setup: $HOSTS_SW/$HOSTS_BR, cj1..cj$HOSTS_N ($HOSTS_NET.11-1$HOSTS_N), $HOSTS_CTL ($HOSTS_CTL_IP)"
}

hosts_status() {
    local ns
    for ns in $(hosts_all_ns); do
        if hosts_ns_exists "$ns"; then
            echo "$ns: $(ip -n "$ns" -br addr show eth0 2>/dev/null | awk '{print $3}') pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
        else
            echo "$ns: absent"
        fi
    done
}

# ---------------------------------------------------------------- nodes

# hosts_prepare_run RUN_DIR: the cookie and the shared config of a run (idempotent).
hosts_prepare_run() {
    local run=$1
    mkdir -p "$run"
    if [ ! -s "$run/cookie" ]; then
        (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$run/cookie")
    fi
    # anti-entropy a partition every 500 ms (default 2 s), so that a key nobody reads
    # converges within a few seconds of the heal (a node owns about 13 of the 64 partitions)
    (umask 077 && printf '# written by jepsen/hosts.sh\ndistribution.cookie = %s\nanti_entropy.interval = 500ms\n' \
        "$(cat "$run/cookie")" >"$run/cluster.conf")
}

hosts_libfaketime() {
    local lib
    lib=$(find /usr/lib /usr/lib64 /usr/local/lib -name libfaketime.so.1 2>/dev/null | head -1)
    [ -n "$lib" ] || { hosts_log "libfaketime is missing (apt-get install faketime)"; return 1; }
    echo "$lib"
}

node_pid() { # node_pid RUN_DIR I: the pid of node I's cairnd if it runs, else nothing
    local f="$1/node$2/pid" p
    [ -s "$f" ] || return 1
    p=$(cat "$f")
    # alive: cairnd's comm and not a zombie (one not reaped yet keeps its /proc entry)
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = cairnd ] || return 1
    [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
    echo "$p"
}

# node_start RUN_DIR I: starts node I in its namespace and waits for its ready line.
# Extra environment for the process: NODE_ENV (e.g. "LD_PRELOAD=... FAKETIME_...").
node_start() {
    local run i=$2 dir pid start_size deadline env=()
    run=$(realpath -m "$1")
    dir=$run/node$i
    mkdir -p "$dir/data"
    if pid=$(node_pid "$run" "$i"); then hosts_log "node $i already runs (pid $pid)"; return 0; fi
    if [ -n "${HOSTS_TMPFS_MB:-}" ] && ! mountpoint -q "$dir/data"; then
        mount -t tmpfs -o "size=${HOSTS_TMPFS_MB}m" tmpfs "$dir/data" ||
            { hosts_log "node $i: cannot mount a tmpfs on $dir/data"; return 1; }
    fi
    if [ "${HOSTS_FAKETIME:-0}" = 1 ]; then
        local lib
        lib=$(hosts_libfaketime) || return 1
        [ -s "$dir/faketime" ] || echo "+0" >"$dir/faketime"
        # the offset file is re-read every second; the monotonic clock stays real (timers
        # and timeouts keep working, see jepsen-notes.md section 6)
        env=(LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$dir/faketime" FAKETIME_CACHE_DURATION=1
             FAKETIME_DONT_FAKE_MONOTONIC=1)
    fi
    touch "$dir/cairnd.log"
    start_size=$(stat -c %s "$dir/cairnd.log")
    # In its data dir with core dumps on (core_pattern "core" puts a crash's core there).
    # shellcheck disable=SC2086  # NODE_ENV and CAIRN_NODE_ARGS are word lists
    (cd "$dir" && ulimit -c unlimited 2>/dev/null
     exec ip netns exec "$(hosts_node_ns "$i")" setsid env "${env[@]}" ${NODE_ENV:-} "$CAIRN_BIN/cairnd" \
        -c "$run/cluster.conf" --nodename "$(hosts_node_name "$i")" \
        --listen "$(hosts_client_addr "$i")" --data-dir "$dir/data" --set log.file=off \
        ${CAIRN_NODE_ARGS:-} >>"$dir/cairnd.log" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$dir/pid"
    deadline=$((SECONDS + HOSTS_READY_TIMEOUT))
    until tail -c +$((start_size + 1)) "$dir/cairnd.log" | grep -q " ready, client port "; do
        if ! kill -0 "$pid" 2>/dev/null; then
            hosts_log "node $i exited at start; log tail:"
            tail -n 10 "$dir/cairnd.log" >&2
            return 1
        fi
        [ $SECONDS -lt $deadline ] || { hosts_log "node $i not ready after ${HOSTS_READY_TIMEOUT}s"; return 1; }
        sleep 0.1
    done
    # `ip netns exec`, setsid and env all exec: the pid is cairnd's own
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = cairnd ] ||
        { hosts_log "node $i: pid $pid is not cairnd"; return 1; }
}

node_kill() { # node_kill RUN_DIR I: kill -9 (SIGCONT too, so a paused node dies as well)
    local pid tries=0 st
    pid=$(node_pid "$1" "$2") || return 0
    # our child: reaped at once and quietly (no "Killed" job message on stderr)
    { kill -KILL "$pid"; kill -CONT "$pid"; wait "$pid"; } 2>/dev/null
    st=$?
    [ $st = 127 ] || return 0
    # started by another shell (hosts.sh start): wait until it is gone or a zombie
    while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
          [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
    return 0
}
node_pause() { local pid; pid=$(node_pid "$1" "$2") && kill -STOP "$pid"; }
node_resume() { local pid; pid=$(node_pid "$1" "$2") && kill -CONT "$pid"; }
node_stop() { # node_stop RUN_DIR I: SIGTERM, SIGKILL after 15 s
    local pid tries=0
    pid=$(node_pid "$1" "$2") || return 0
    kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
    while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
          [ $tries -lt 150 ]; do sleep 0.1; tries=$((tries + 1)); done
    if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
        hosts_log "node $2 did not stop within 15 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# hosts_admin RUN_DIR I ARGS...: cairn-admin against node I, run in the control namespace
hosts_admin() {
    local run=$1 i=$2
    shift 2
    ip netns exec "$HOSTS_CTL" "$CAIRN_BIN/cairn-admin" --data-dir "$run" \
        --node "$(hosts_node_name "$i")" "$@"
}

# hosts_wait_ring RUN_DIR: every member holds the same ring and nothing waits for handoff
hosts_wait_ring() {
    local run=$1 deadline js pending
    deadline=$((SECONDS + HOSTS_READY_TIMEOUT))
    while :; do
        if hosts_admin "$run" 1 --timeout 5000 ringready >/dev/null 2>&1; then
            js=$(hosts_admin "$run" 1 --timeout 5000 --json member-status 2>/dev/null)
            pending=$(grep -o '"pending":[0-9]*' <<<"$js" | cut -d: -f2)
            [ "$pending" = 0 ] && return 0
        fi
        [ $SECONDS -lt $deadline ] || { hosts_log "ring not settled after ${HOSTS_READY_TIMEOUT}s"; return 1; }
        sleep 0.5
    done
}

# hosts_form RUN_DIR: nodes 2..N join node 1, plan, commit, wait for the ring
hosts_form() {
    local run=$1 i out deadline js
    for i in $(seq 2 $HOSTS_N); do
        js=$(hosts_admin "$run" 1 --json member-status 2>/dev/null)
        if grep -q "\"node\":\"$(hosts_node_name "$i")\",\"status\":\"\(joining\|valid\)\"" <<<"$js"; then
            continue
        fi
        out=$(hosts_admin "$run" "$i" cluster join "$(hosts_node_name 1)" 2>&1) ||
            { hosts_log "node $i could not join: $out"; return 1; }
    done
    deadline=$((SECONDS + HOSTS_READY_TIMEOUT))
    while :; do
        js=$(hosts_admin "$run" 1 --json member-status 2>/dev/null)
        local known=0
        for i in $(seq 2 $HOSTS_N); do
            grep -q "\"node\":\"$(hosts_node_name "$i")\"" <<<"$js" && known=$((known + 1))
        done
        [ $known -eq $((HOSTS_N - 1)) ] && break
        [ $SECONDS -lt $deadline ] || { hosts_log "node 1 knows only $known joiners"; return 1; }
        sleep 0.2
    done
    if grep -q '"status":"joining"' <<<"$js"; then
        hosts_admin "$run" 1 cluster plan >"$run/cluster-plan.txt" 2>&1 ||
            { hosts_log "cluster plan failed: $(cat "$run/cluster-plan.txt")"; return 1; }
        out=$(hosts_admin "$run" 1 cluster commit 2>&1) || { hosts_log "commit failed: $out"; return 1; }
    fi
    hosts_wait_ring "$run"
}

# hosts_start_cluster RUN_DIR: config, 5 nodes, one cluster
hosts_start_cluster() {
    local run=$1 i
    hosts_require || return
    [ -x "$CAIRN_BIN/cairnd" ] && [ -x "$CAIRN_BIN/cairn-admin" ] ||
        { hosts_log "no cairnd/cairn-admin in $CAIRN_BIN (build first, or set CAIRN_BIN)"; return 1; }
    hosts_ns_exists "$HOSTS_CTL" || { hosts_log "no namespaces: run setup first"; return 1; }
    hosts_prepare_run "$run"
    for i in $(seq 1 $HOSTS_N); do node_start "$run" "$i" || return 1; done
    hosts_form "$run" || return 1
    hosts_log "cluster of $HOSTS_N nodes formed (data under $run)"
}

hosts_stop_cluster() {
    local i
    for i in $(seq 1 $HOSTS_N); do node_stop "$1" "$i"; done
}

# ---------------------------------------------------------------- command line

hosts_main() {
    local cmd=${1:-}
    shift || true
    case "$cmd" in
    setup) hosts_setup ;;
    teardown)
        hosts_require || return
        if hosts_teardown; then hosts_log "teardown: nothing left"; else return 1; fi ;;
    status) hosts_status ;;
    start) [ $# -eq 1 ] || { echo "usage: hosts.sh start RUN_DIR" >&2; return 2; }
        hosts_start_cluster "$(realpath -m "$1")" ;;
    stop) [ $# -eq 1 ] || { echo "usage: hosts.sh stop RUN_DIR" >&2; return 2; }
        hosts_stop_cluster "$(realpath -m "$1")" ;;
    admin) [ $# -ge 3 ] || { echo "usage: hosts.sh admin RUN_DIR I ARGS..." >&2; return 2; }
        local run; run=$(realpath -m "$1"); shift; hosts_admin "$run" "$@" ;;
    -h | --help | help) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) echo "usage: hosts.sh setup|teardown|status|start RUN_DIR|stop RUN_DIR|admin RUN_DIR I ARGS (--help)" >&2
        return 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u -o pipefail
    hosts_main "$@"
    exit $?
fi
