#!/usr/bin/env bash
# jepsen/nemesis.sh — the nemeses of the fault-injection suite: the faults themselves
# (partitions as firewall grudges, kill -9 and restart, SIGSTOP/SIGCONT), healing them, and
# logging each start and end into the nemesis log as a history line of process "nemesis".
# Sourced by run.sh after hosts.sh; the command line below exists to try one fault by hand.
#
# A grudge (Jepsen's word) says which node drops packets from which: "1:3,4,5 2:3,4,5 ..."
# means n1 drops everything from n3, n4, n5 (a DROP rule on n1's INPUT, chain CJEPSEN), and
# so on. Dropping on the receiver's INPUT is a silent loss for the sender (a DROP in OUTPUT
# would return EPERM to it). The control namespace is never in a grudge: clients always
# reach every node, the nodes may not reach each other.
#
# Faults (each start-X is ended by stop-X; only one of each kind at a time):
#   partition random-halves    {2 random nodes} | {the other 3}
#   partition isolate          one random node | the other 4
#   partition bridge           {a,b} <-> c <-> {d,e}: c sees everyone, the halves not
#   partition majorities-ring  each node sees itself and its two ring neighbours (a
#                              majority), no two nodes see the same majority
#   partition oneway           random halves, but only one side drops the other's packets
#   kill                       kill -9 of one random node; stop = restart it
#   pause                      SIGSTOP of one random node; stop = SIGCONT
#   loss                       every node drops NEM_LOSS_PCT % (default 20) of the packets
#                              it receives from other nodes, at random
#   delay                      every node's packets to other nodes wait NEM_DELAY_MS (default
#                              100) in an NFQUEUE delayer (nfq_delay.c; no netem here)
#   clock                      one random node's wall clock jumps by +-2..512 s (libfaketime:
#                              needs the nodes started with HOSTS_FAKETIME=1); stop = +0
#   disk-full                  one random node's data dir (a tmpfs: HOSTS_TMPFS_MB) is filled
#                              by a ballast file until ENOSPC; stop = ballast removed
#   membership                 one random node leaves the cluster (cluster leave, plan,
#                              commit; it hands its partitions off and stops); stop = it
#                              starts again and rejoins (join, plan, commit)
# Randomness is bash's $RANDOM, which the caller seeds (RANDOM=SEED) so a run repeats. The
# functions never call themselves in a subshell, so the sequence is the same every time.
#
# History lines: {"time":T,"process":"nemesis","type":"info","f":"start-partition",
#   "value":"{n1,n4} | {n2,n3,n5}","grudge":{"n1":["n2","n3","n5"],...}}
# T is ns since NEM_EPOCH_NS on CLOCK_REALTIME (the clock jepsen-client uses).
#
# Variables the caller sets: NEM_RUN (the run dir, nodes under it), NEM_LOG (the nemesis
# history file), NEM_EPOCH_NS.
#
# By hand (as root, after `hosts.sh setup` and `hosts.sh start RUN_DIR`):
#   jepsen/nemesis.sh RUN_DIR partition random-halves|isolate|bridge|majorities-ring|oneway
#   jepsen/nemesis.sh RUN_DIR start FAULT | stop FAULT   (any fault by its schedule name;
#                                          state does not survive between invocations, so
#                                          `stop` of a node fault needs the same shell)
#   jepsen/nemesis.sh RUN_DIR heal
#   jepsen/nemesis.sh RUN_DIR kill I | restart I | pause I | resume I
#   jepsen/nemesis.sh RUN_DIR reach        (which node reaches which: the matrix)

NEM_LOG=${NEM_LOG:-/dev/null}
NEM_EPOCH_NS=${NEM_EPOCH_NS:-0}
NEM_KILLED=""       # the node a running kill fault took down
NEM_PAUSED=""
NEM_PARTITIONED=""  # the kind of the running partition
NEM_LOSSY=0
NEM_DELAYED=0
NEM_SKEWED=""
NEM_FULL=""
NEM_LEFT=""         # the node a membership fault made leave
NEM_LOSS_PCT=${NEM_LOSS_PCT:-20}
NEM_DELAY_MS=${NEM_DELAY_MS:-100}
NEM_QUEUE=7
declare -A NEM_DELAYER_PID=()
NEM_DESC=""
declare -a NEM_PERM=()
declare -A NEM_DROPS=()   # node -> "a b c": nodes it drops packets from

nem_now_ns() { local t=${EPOCHREALTIME/./}; echo $((t * 1000 - NEM_EPOCH_NS)); }

nem_json_str() { # a JSON string of $1 (our values hold no control characters)
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

# nem_log F VALUE [EXTRA_JSON]: one nemesis line (EXTRA_JSON: ,"key":value...)
nem_log() {
    NEM_LAST="$1 $2"
    printf '{"time":%s,"process":"nemesis","type":"info","f":"%s","value":%s%s}\n' \
        "$(nem_now_ns)" "$1" "$(nem_json_str "$2")" "${3:-}" >>"$NEM_LOG"
    echo "nemesis: $(date -u +%H:%M:%S) $1 $2" >&2
}

# nem_rand N: NEM_R = a number in 0..N-1 (from the seeded $RANDOM)
nem_rand() { NEM_R=$((RANDOM % $1)); }

# nem_shuffle: NEM_PERM = the node numbers 1..HOSTS_N in a random order (Fisher-Yates)
nem_shuffle() {
    local i j t
    NEM_PERM=()
    for i in $(seq 1 "$HOSTS_N"); do NEM_PERM+=("$i"); done
    for ((i = HOSTS_N - 1; i > 0; i--)); do
        nem_rand $((i + 1)); j=$NEM_R
        t=${NEM_PERM[i]}; NEM_PERM[i]=${NEM_PERM[j]}; NEM_PERM[j]=$t
    done
}

nem_set_name() { local s="{" i; for i in "$@"; do s+="n$i,"; done; echo "${s%,}}"; }

# ---------------------------------------------------------------- the network

# nem_drop_between "A..." "B...": every node of A drops packets from every node of B and
# the other way round
nem_drop_between() {
    local a b
    for a in $1; do for b in $2; do
        NEM_DROPS[$a]+=" $b"; NEM_DROPS[$b]+=" $a"
    done; done
}

# nem_apply_drops: installs NEM_DROPS as DROP rules on each node's INPUT
nem_apply_drops() {
    local n src ips
    for n in "${!NEM_DROPS[@]}"; do
        ips=""
        for src in ${NEM_DROPS[$n]}; do ips+="${ips:+,}$(hosts_node_ip "$src")"; done
        [ -n "$ips" ] || continue
        ip netns exec "$(hosts_node_ns "$n")" iptables -w -A CJEPSEN -s "$ips" -j DROP ||
            { echo "nemesis: iptables in $(hosts_node_ns "$n") failed" >&2; return 1; }
    done
}

nem_grudge_json() {
    local n s out="" first
    for n in $(printf '%s\n' "${!NEM_DROPS[@]}" | sort -n); do
        first=1
        out+="${out:+,}\"n$n\":["
        for s in $(printf '%s\n' ${NEM_DROPS[$n]} | sort -nu); do
            out+="$([ $first = 1 ] || echo ,)\"n$s\""; first=0
        done
        out+="]"
    done
    echo "{$out}"
}

# nem_heal_net: removes every network fault (flushes our chains in each node)
nem_heal_net() {
    local i ns
    for i in $(seq 1 "$HOSTS_N"); do
        ns=$(hosts_node_ns "$i")
        hosts_ns_exists "$ns" || continue
        ip netns exec "$ns" iptables -w -F CJEPSEN 2>/dev/null
        ip netns exec "$ns" iptables -w -F CJEPSEN_OUT 2>/dev/null
    done
    NEM_DROPS=()
}

# nem_partition_start KIND: builds the grudge of KIND from a fresh shuffle and applies it
nem_partition_start() {
    local kind=$1 i p=()
    [ -z "$NEM_PARTITIONED" ] || nem_partition_stop
    NEM_DROPS=()
    nem_shuffle
    p=("${NEM_PERM[@]}")
    case "$kind" in
    random-halves)
        nem_drop_between "${p[*]:0:2}" "${p[*]:2}"
        NEM_DESC="$(nem_set_name "${p[@]:0:2}") | $(nem_set_name "${p[@]:2}")" ;;
    isolate)
        nem_drop_between "${p[0]}" "${p[*]:1}"
        NEM_DESC="$(nem_set_name "${p[0]}") | $(nem_set_name "${p[@]:1}")" ;;
    bridge)
        nem_drop_between "${p[*]:0:2}" "${p[*]:3:2}"
        NEM_DESC="$(nem_set_name "${p[@]:0:2}") <-> n${p[2]} <-> $(nem_set_name "${p[@]:3:2}")" ;;
    oneway)
        # the first side drops what the second sends; the second hears the first
        for i in "${p[@]:0:2}"; do NEM_DROPS[$i]+=" ${p[*]:2}"; done
        NEM_DESC="$(nem_set_name "${p[@]:0:2}") drop packets from $(nem_set_name "${p[@]:2}")" ;;
    majorities-ring)
        # ring p0 p1 p2 p3 p4: each node keeps its two neighbours, drops the two others
        local n=${#p[@]}
        for ((i = 0; i < n; i++)); do
            NEM_DROPS[${p[i]}]+=" ${p[(i + 2) % n]} ${p[(i + 3) % n]}"
        done
        NEM_DESC="ring n${p[0]}-n${p[1]}-n${p[2]}-n${p[3]}-n${p[4]}-n${p[0]}: each sees its neighbours" ;;
    *) echo "nemesis: unknown partition '$kind'" >&2; return 2 ;;
    esac
    nem_apply_drops || return 1
    NEM_PARTITIONED=$kind
    nem_log start-partition "$kind $NEM_DESC" ",\"grudge\":$(nem_grudge_json)"
}

nem_partition_stop() {
    nem_heal_net
    [ -n "$NEM_PARTITIONED" ] && nem_log stop-partition "$NEM_PARTITIONED healed"
    NEM_PARTITIONED=""
}

# nem_node_ips_except I: the other nodes' addresses, comma-separated
nem_node_ips_except() {
    local j out=""
    for j in $(seq 1 "$HOSTS_N"); do [ "$j" = "$1" ] || out+="${out:+,}$(hosts_node_ip "$j")"; done
    echo "$out"
}

nem_loss_start() {
    local i p
    p=$(awk "BEGIN{print $NEM_LOSS_PCT/100}")
    NEM_LOSSY=1
    for i in $(seq 1 "$HOSTS_N"); do
        ip netns exec "$(hosts_node_ns "$i")" iptables -w -A CJEPSEN -s "$(nem_node_ips_except "$i")" \
            -m statistic --mode random --probability "$p" -j DROP ||
            { echo "nemesis: loss rule in n$i failed" >&2; return 1; }
    done
    NEM_LOSSY=1
    nem_log start-loss "every node drops ${NEM_LOSS_PCT}% of the packets from the other nodes"
}

nem_loss_stop() {
    [ "$NEM_LOSSY" = 1 ] || return 0
    local i
    # network faults share the chains and run one at a time: healing one heals the network
    for i in $(seq 1 "$HOSTS_N"); do
        ip netns exec "$(hosts_node_ns "$i")" iptables -w -F CJEPSEN 2>/dev/null
    done
    NEM_LOSSY=0
    nem_log stop-loss "loss healed"
}

# nem_tools: builds nfq_delay (once per source change) into jepsen/out/.tools
nem_tools() {
    local src=$HOSTS_ROOT/jepsen/nfq_delay.c out=$HOSTS_ROOT/jepsen/out/.tools/nfq_delay
    NEM_NFQ_BIN=$out
    [ -x "$out" ] && [ "$out" -nt "$src" ] && return 0
    mkdir -p "$(dirname "$out")"
    gcc -O2 -Wall -Wextra -o "$out" "$src" -lnetfilter_queue 2>"$out.log" ||
        { echo "nemesis: cannot build nfq_delay (apt-get install gcc libnetfilter-queue-dev): $(head -3 "$out.log")" >&2; return 1; }
}

nem_delay_start() {
    local i ns
    nem_tools || return 1
    NEM_DELAYED=1
    for i in $(seq 1 "$HOSTS_N"); do
        ns=$(hosts_node_ns "$i")
        ip netns exec "$ns" "$NEM_NFQ_BIN" "$NEM_QUEUE" "$NEM_DELAY_MS" 0 \
            2>>"$NEM_RUN/node$i/nfq_delay.log" </dev/null &
        NEM_DELAYER_PID[$i]=$!
        ip netns exec "$ns" iptables -w -A CJEPSEN_OUT -o eth0 -d "$(nem_node_ips_except "$i")" \
            -j NFQUEUE --queue-num "$NEM_QUEUE" --queue-bypass ||
            { echo "nemesis: NFQUEUE rule in n$i failed" >&2; return 1; }
    done
    NEM_DELAYED=1
    nem_log start-delay "every node's packets to the other nodes delayed ${NEM_DELAY_MS} ms"
}

nem_delay_stop() {
    [ "$NEM_DELAYED" = 1 ] || return 0
    local i
    for i in $(seq 1 "$HOSTS_N"); do
        ip netns exec "$(hosts_node_ns "$i")" iptables -w -F CJEPSEN_OUT 2>/dev/null
        if [ -n "${NEM_DELAYER_PID[$i]:-}" ]; then
            kill -TERM "${NEM_DELAYER_PID[$i]}" 2>/dev/null
            wait "${NEM_DELAYER_PID[$i]}" 2>/dev/null
        fi
    done
    NEM_DELAYER_PID=()
    NEM_DELAYED=0
    nem_log stop-delay "delay healed"
}

# ---------------------------------------------------------------- clock, disk, membership

nem_clock_start() {
    local i k sign secs
    [ -z "$NEM_SKEWED" ] || nem_clock_stop
    nem_rand "$HOSTS_N"; i=$((NEM_R + 1))
    [ -e "$NEM_RUN/node$i/faketime" ] ||
        { echo "nemesis: n$i does not run under libfaketime (HOSTS_FAKETIME=1)" >&2; return 1; }
    nem_rand 9; k=$((NEM_R + 1))
    nem_rand 2; sign=$([ "$NEM_R" = 0 ] && echo + || echo -)
    secs=$((1 << k))
    echo "$sign$secs" >"$NEM_RUN/node$i/faketime"
    NEM_SKEWED=$i
    nem_log start-clock "n$i wall clock $sign${secs}s" ",\"node\":\"n$i\",\"offset_s\":${sign#+}$secs"
}

nem_clock_stop() {
    [ -n "$NEM_SKEWED" ] || return 0
    echo "+0" >"$NEM_RUN/node$NEM_SKEWED/faketime"
    nem_log stop-clock "n$NEM_SKEWED clock reset" ",\"node\":\"n$NEM_SKEWED\""
    NEM_SKEWED=""
}

nem_disk_start() {
    local i d
    [ -z "$NEM_FULL" ] || nem_disk_stop
    nem_rand "$HOSTS_N"; i=$((NEM_R + 1))
    d=$NEM_RUN/node$i/data
    mountpoint -q "$d" || { echo "nemesis: n$i's data dir is not a tmpfs (HOSTS_TMPFS_MB)" >&2; return 1; }
    dd if=/dev/zero of="$d/ballast" bs=1M 2>/dev/null   # ends at ENOSPC, as meant
    NEM_FULL=$i
    nem_log start-disk-full "n$i data dir full ($(df -h --output=used,size "$d" | tail -1 | xargs))" ",\"node\":\"n$i\""
}

nem_disk_stop() {
    [ -n "$NEM_FULL" ] || return 0
    rm -f "$NEM_RUN/node$NEM_FULL/data/ballast"
    nem_log stop-disk-full "n$NEM_FULL ballast removed" ",\"node\":\"n$NEM_FULL\""
    NEM_FULL=""
}

nem_member_start() {
    local i out
    [ -z "$NEM_LEFT" ] || nem_member_stop
    nem_rand "$HOSTS_N"; i=$((NEM_R + 1))
    # staged and committed through another node (the claimant may be the leaving one)
    local via=$(( i % HOSTS_N + 1 ))
    out=$(hosts_admin "$NEM_RUN" "$via" cluster leave "$(hosts_node_name "$i")" 2>&1) &&
        hosts_admin "$NEM_RUN" "$via" cluster plan >/dev/null 2>&1 &&
        out=$(hosts_admin "$NEM_RUN" "$via" cluster commit 2>&1) ||
        { echo "nemesis: n$i could not leave: $out" >&2; hosts_admin "$NEM_RUN" "$via" cluster clear >/dev/null 2>&1; return 1; }
    NEM_LEFT=$i
    nem_log start-membership "n$i leaves (via n$via)" ",\"node\":\"n$i\""
}

# nem_member_stop: waits (bounded) until the leaver stopped, then starts it and rejoins it
nem_member_stop() {
    [ -n "$NEM_LEFT" ] || return 0
    local i=$NEM_LEFT via out deadline
    via=$(( i % HOSTS_N + 1 ))
    deadline=$((SECONDS + 60))
    while node_pid "$NEM_RUN" "$i" >/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
    if node_pid "$NEM_RUN" "$i" >/dev/null; then
        nem_log stop-membership "n$i still leaving after 60 s: left as it is" ",\"node\":\"n$i\",\"error\":\"leave not finished\""
        NEM_LEFT=""
        return 1
    fi
    wait "$(cat "$NEM_RUN/node$i/pid")" 2>/dev/null
    node_start "$NEM_RUN" "$i" &&
        out=$(hosts_admin "$NEM_RUN" "$i" cluster join "$(hosts_node_name "$via")" 2>&1) || {
        nem_log stop-membership "n$i could not rejoin: $out" ",\"node\":\"n$i\",\"error\":\"rejoin failed\""
        NEM_LEFT=""
        return 1
    }
    deadline=$((SECONDS + 30))
    until hosts_admin "$NEM_RUN" "$via" --json member-status 2>/dev/null |
          grep -q "\"node\":\"$(hosts_node_name "$i")\",\"status\":\"joining\""; do
        [ $SECONDS -lt $deadline ] || break
        sleep 0.3
    done
    hosts_admin "$NEM_RUN" "$via" cluster plan >/dev/null 2>&1
    out=$(hosts_admin "$NEM_RUN" "$via" cluster commit 2>&1) ||
        echo "nemesis: commit of n$i's rejoin failed: $out" >&2
    nem_log stop-membership "n$i rejoined (via n$via)" ",\"node\":\"n$i\""
    NEM_LEFT=""
}

# ---------------------------------------------------------------- processes

nem_kill_start() { # nem_kill_start [I]: kill -9 node I (default: a random one)
    local i=${1:-}
    [ -z "$NEM_KILLED" ] || nem_kill_stop
    if [ -z "$i" ]; then nem_rand "$HOSTS_N"; i=$((NEM_R + 1)); fi
    node_kill "$NEM_RUN" "$i"
    NEM_KILLED=$i
    nem_log start-kill "n$i" ",\"node\":\"n$i\""
}

nem_kill_stop() { # restarts the killed node (its data dir as it was)
    [ -n "$NEM_KILLED" ] || return 0
    local i=$NEM_KILLED
    NEM_KILLED=""
    if node_start "$NEM_RUN" "$i"; then
        nem_log stop-kill "n$i restarted" ",\"node\":\"n$i\""
    else
        nem_log stop-kill "n$i could not restart" ",\"node\":\"n$i\",\"error\":\"restart failed\""
        return 1
    fi
}

nem_pause_start() {
    local i=${1:-}
    [ -z "$NEM_PAUSED" ] || nem_pause_stop
    if [ -z "$i" ]; then nem_rand "$HOSTS_N"; i=$((NEM_R + 1)); fi
    node_pause "$NEM_RUN" "$i" || { echo "nemesis: n$i is not running, cannot pause" >&2; return 1; }
    NEM_PAUSED=$i
    nem_log start-pause "n$i" ",\"node\":\"n$i\""
}

nem_pause_stop() {
    [ -n "$NEM_PAUSED" ] || return 0
    node_resume "$NEM_RUN" "$NEM_PAUSED"
    nem_log stop-pause "n$NEM_PAUSED resumed" ",\"node\":\"n$NEM_PAUSED\""
    NEM_PAUSED=""
}

# nem_heal_all: ends every running fault (the final generator before the final reads):
# network healed, paused node resumed, killed node restarted, and any node of the run that
# is not running started again.
nem_heal_all() {
    local i rc=0
    nem_partition_stop
    nem_loss_stop
    nem_delay_stop
    nem_heal_net
    nem_pause_stop
    nem_clock_stop
    nem_disk_stop
    nem_member_stop || rc=1
    nem_kill_stop || rc=1
    for i in $(seq 1 "$HOSTS_N"); do
        node_resume "$NEM_RUN" "$i" 2>/dev/null
        if ! node_pid "$NEM_RUN" "$i" >/dev/null; then
            echo "nemesis: n$i was not running at heal: starting it" >&2
            node_start "$NEM_RUN" "$i" || rc=1
        fi
    done
    return $rc
}

# nem_start NAME / nem_stop NAME: one fault by its schedule name
#   partition-halves partition-isolate partition-bridge partition-ring kill pause
nem_start() {
    case "$1" in
    partition-halves) nem_partition_start random-halves ;;
    partition-isolate) nem_partition_start isolate ;;
    partition-bridge) nem_partition_start bridge ;;
    partition-ring) nem_partition_start majorities-ring ;;
    partition-oneway) nem_partition_start oneway ;;
    kill) nem_kill_start ;;
    pause) nem_pause_start ;;
    loss) nem_loss_start ;;
    delay) nem_delay_start ;;
    clock) nem_clock_start ;;
    disk-full) nem_disk_start ;;
    membership) nem_member_start ;;
    *) echo "nemesis: unknown fault '$1'" >&2; return 2 ;;
    esac
}

nem_stop() {
    case "$1" in
    partition-*) nem_partition_stop ;;
    kill) nem_kill_stop ;;
    pause) nem_pause_stop ;;
    loss) nem_loss_stop ;;
    delay) nem_delay_stop ;;
    clock) nem_clock_stop ;;
    disk-full) nem_disk_stop ;;
    membership) nem_member_stop ;;
    *) echo "nemesis: unknown fault '$1'" >&2; return 2 ;;
    esac
}

# every fault; the default schedule draws from the first line (clock and disk-full need
# the nodes started for them, membership changes the ring: run.sh enables them on request)
NEM_FAULTS="partition-halves partition-isolate partition-bridge partition-ring partition-oneway kill pause loss delay"
NEM_FAULTS_EXTRA="clock disk-full membership"

# ---------------------------------------------------------------- observation

# nem_reach_matrix: one line per node: which nodes' client ports it can open a TCP
# connection to within 1 s (x = reachable, . = not)
nem_reach_matrix() {
    local a b line
    for a in $(seq 1 "$HOSTS_N"); do
        line="n$a:"
        for b in $(seq 1 "$HOSTS_N"); do
            if [ "$a" = "$b" ]; then line+=" -"; continue; fi
            if ip netns exec "$(hosts_node_ns "$a")" timeout 1 bash -c \
                "exec 3<>/dev/tcp/$(hosts_node_ip "$b")/$HOSTS_CLIENT_PORT" 2>/dev/null; then
                line+=" x"
            else
                line+=" ."
            fi
        done
        echo "$line"
    done
}

nem_main() {
    local run=${1:-} cmd=${2:-}
    [ -n "$run" ] && [ -n "$cmd" ] || { sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 2; }
    NEM_RUN=$(realpath -m "$run")
    NEM_LOG=$NEM_RUN/nemesis-manual.jsonl
    NEM_EPOCH_NS=0
    shift 2
    case "$cmd" in
    partition) nem_partition_start "${1:?kind}" ;;
    heal) nem_heal_net; nem_log stop-partition "manual heal" ;;
    kill) node_kill "$NEM_RUN" "${1:?node}" && nem_log start-kill "n$1" ;;
    restart) node_start "$NEM_RUN" "${1:?node}" && nem_log stop-kill "n$1 restarted" ;;
    pause) node_pause "$NEM_RUN" "${1:?node}" && nem_log start-pause "n$1" ;;
    resume) node_resume "$NEM_RUN" "${1:?node}" && nem_log stop-pause "n$1 resumed" ;;
    reach) nem_reach_matrix ;;
    start) nem_start "${1:?fault}" ;;
    *) echo "nemesis.sh: unknown command '$cmd'" >&2; return 2 ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u -o pipefail
    # shellcheck source=jepsen/hosts.sh
    . "$(dirname "$0")/hosts.sh"
    RANDOM=$$
    nem_main "$@"
    exit $?
fi
