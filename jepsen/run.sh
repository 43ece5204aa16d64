#!/usr/bin/env bash
# jepsen/run.sh — one run of the fault-injection suite: build the hosts (hosts.sh), start and
# form a 5-node Cairn cluster, run a workload (jepsen-client) for --time seconds while a
# seeded nemesis schedule (nemesis.sh) injects real faults, heal everything, read every key
# through every node, check the history (jepsen-check), tear everything down.
#
# Usage (as root):  jepsen/run.sh [options]
#   --workload W        set (default: lost acknowledged writes), register (read-your-writes
#                       in calm periods, lost writes), delete (resurrection); see
#                       jepsen-client --help and jepsen-check --help
#   --smoke             one partition (random halves), one kill -9, one pause, and a last
#                       partition until the workload ends; under 3 min
#   --time S            workload length in seconds (default 120; smoke: 55)
#   --seed N            seeds the nemesis schedule and the workers (default: random, printed)
#   --nemesis LIST      faults to draw from, comma-separated (default: partition-halves,
#                       partition-isolate,partition-bridge,partition-ring,partition-oneway,
#                       kill,pause,loss,delay); also clock (nodes run under libfaketime),
#                       disk-full (data dirs on a tmpfs), membership (a node leaves and
#                       rejoins); `all`: every fault; `none`: no fault at all
#                       (what each fault does: jepsen/nemesis.sh)
#   --hold A-B          seconds a fault lasts, drawn in A..B (default 8-15; smoke 8-10)
#   --quiet A-B         seconds between faults (default 4-8; smoke 4-5)
#   --concurrency C     client workers (default 10), --keys K (default 8),
#   --rate R            total operations per second (default 100), --timeout-ms MS (2000)
#   --converge-limit S  after the final heal, how long the replicas of every key may take
#                       to agree (default 60): the convergence probe reads each primary
#                       replica of every key (cairn-admin replicas, no read repair) every
#                       0.5 s while clients read the even keys only (jepsen-client --phase
#                       settle), and stops once all keys agreed 3 probes in a row
#   --settle S          seconds between convergence and the final reads (default 2)
#   --broken MODE       a deliberately wrong client (first-sibling | lww-bucket |
#                       no-context, see jepsen-client --help): the run must come out
#                       INVALID, with the lost writes listed
#   --name NAME         the run directory jepsen/out/NAME (default: date-workload-seed)
#   --keep              leave the namespaces and nodes up at the end (for a look around;
#                       `jepsen/hosts.sh teardown` removes them)
#   --keep-data         keep the nodes' data dirs of a VALID run too (by default only an
#                       INVALID or failed run keeps them, for the post-mortem)
# Env: CAIRN_BIN (cairnd, cairn-admin) and JEPSEN_BIN (jepsen-client, jepsen-check), both by
#      default ${BUILD:-build}/release/bin: build first (`make`).
#
# Output in jepsen/out/<run>/: history.jsonl (client and nemesis operations merged by time),
# client.jsonl, nemesis.jsonl, convergence.jsonl (the probes after the heal: per key, group
# read or unread, whether its replicas agreed, each replica's status and digest),
# check.txt (jepsen-check), summary.txt (parameters, schedule, verdicts), report.html (the
# plots: jepsen-report), node<i>/ (cairnd.log, a core file if a node crashed, and the data dir data/
# unless the run was VALID: --keep-data keeps it anyway).
#
# Besides the checkers of jepsen-check, run.sh judges `node-crashes`: a node that stopped
# without the nemesis killing it is a bug (its exit status and log tail go to the summary);
# it is restarted so the run can go on.
#
# Exit status: 0 VALID; 1 INVALID (a checker failed or a node crashed); 2 bad usage or the
# harness itself failed (setup, cluster, client); 130 interrupted. Teardown runs in every
# case (an EXIT trap), unless --keep.
set -u -o pipefail

JEPSEN_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=jepsen/hosts.sh
. "$JEPSEN_DIR/hosts.sh"
# shellcheck source=jepsen/nemesis.sh
. "$JEPSEN_DIR/nemesis.sh"
JEPSEN_BIN=$(realpath -m "${JEPSEN_BIN:-$HOSTS_ROOT/${BUILD:-build}/release/bin}")

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "run.sh: $*" >&2; exit 2; }
say() { echo "run: $(date -u +%H:%M:%S) $*" >&2; }

SMOKE=0 TIME="" SEED="" NEMESES="" HOLD="" QUIET="" CONC=10 KEYS=8 RATE=100 TIMEOUT_MS=2000
SETTLE=2 CONVERGE_LIMIT=60 BROKEN="" NAME="" KEEP=0 KEEP_DATA=0 WORKLOAD=set RESULT_VALID=0
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) SMOKE=1 ;;
    --workload) WORKLOAD=${2:?--workload W}; shift ;;
    --time) TIME=${2:?--time S}; shift ;;
    --seed) SEED=${2:?--seed N}; shift ;;
    --nemesis) NEMESES=${2:?--nemesis LIST}; shift ;;
    --hold) HOLD=${2:?--hold A-B}; shift ;;
    --quiet) QUIET=${2:?--quiet A-B}; shift ;;
    --concurrency) CONC=${2:?}; shift ;;
    --keys) KEYS=${2:?}; shift ;;
    --rate) RATE=${2:?}; shift ;;
    --timeout-ms) TIMEOUT_MS=${2:?}; shift ;;
    --settle) SETTLE=${2:?}; shift ;;
    --converge-limit) CONVERGE_LIMIT=${2:?}; shift ;;
    --broken) BROKEN=${2:?--broken MODE}; shift ;;
    --name) NAME=${2:?--name NAME}; shift ;;
    --keep) KEEP=1 ;;
    --keep-data) KEEP_DATA=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
num() { [[ $1 =~ ^[0-9]+$ ]] || die "$2: '$1' is not a whole number"; }
range() { [[ $1 =~ ^[0-9]+-[0-9]+$ ]] && [ "${1%-*}" -le "${1#*-}" ] || die "$2: '$1' is not A-B"; }
[ -n "$SEED" ] || SEED=$(( $(od -An -N2 -tu2 /dev/urandom) ))
num "$SEED" --seed; num "$CONC" --concurrency; num "$KEYS" --keys; num "$SETTLE" --settle; num "$CONVERGE_LIMIT" --converge-limit
case "$WORKLOAD" in set | register | delete) ;; *) die "--workload: '$WORKLOAD' is not set, register or delete" ;; esac
[ -z "$BROKEN" ] || [ "$BROKEN" = first-sibling ] || [ "$BROKEN" = lww-bucket ] || [ "$BROKEN" = no-context ] ||
    die "--broken: '$BROKEN' is not first-sibling, lww-bucket or no-context"
if [ "$SMOKE" = 1 ]; then
    TIME=${TIME:-55}
    [ -z "$NEMESES" ] || die "--smoke has its own schedule: drop --nemesis"
    NEMESES="partition-halves,kill,pause"
    HOLD=${HOLD:-8-10} QUIET=${QUIET:-4-5}
fi
HOLD=${HOLD:-8-15} QUIET=${QUIET:-4-8}
range "$HOLD" --hold; range "$QUIET" --quiet
TIME=${TIME:-120}
num "$TIME" --time
NEMESES=${NEMESES:-${NEM_FAULTS// /,}}
[ "$NEMESES" = all ] && NEMESES=$(echo $NEM_FAULTS $NEM_FAULTS_EXTRA | tr ' ' ,)
if [ "$NEMESES" != none ]; then
    for f in ${NEMESES//,/ }; do
        [[ " $NEM_FAULTS $NEM_FAULTS_EXTRA " == *" $f "* ]] ||
            die "--nemesis: unknown fault '$f' (known: $NEM_FAULTS $NEM_FAULTS_EXTRA)"
    done
fi
# faults that need the nodes started for them
[[ ",$NEMESES," == *,clock,* ]] && export HOSTS_FAKETIME=1
[[ ",$NEMESES," == *,disk-full,* ]] && export HOSTS_TMPFS_MB=${HOSTS_TMPFS_MB:-256}
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, iptables)"
for b in "$CAIRN_BIN/cairnd" "$CAIRN_BIN/cairn-admin" "$JEPSEN_BIN/jepsen-client" "$JEPSEN_BIN/jepsen-check"; do
    [ -x "$b" ] || die "$b is missing: build first (make), or set CAIRN_BIN / JEPSEN_BIN"
done

NAME=${NAME:-$(date -u +%Y%m%d-%H%M%S)-$WORKLOAD${BROKEN:+-broken-$BROKEN}$([ "$SMOKE" = 1 ] && echo -smoke)-seed$SEED}
RUN=$HOSTS_ROOT/jepsen/out/$NAME
[ ! -e "$RUN" ] || die "$RUN exists already (--name)"
mkdir -p "$RUN"
NEM_RUN=$RUN
NEM_LOG=$RUN/nemesis.jsonl
CLIENT_LOG=$RUN/client.jsonl
: >"$NEM_LOG"
NODES_ARG=""
for i in $(seq 1 "$HOSTS_N"); do NODES_ARG+="${NODES_ARG:+,}$(hosts_client_addr "$i")"; done

# ---------------------------------------------------------------- teardown, always

CLIENT_PID=""
INTERRUPTED=0
finish() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$INTERRUPTED" = 1 ] && rc=130
    if [ -n "$CLIENT_PID" ] && kill -0 "$CLIENT_PID" 2>/dev/null; then
        kill -TERM "$CLIENT_PID" 2>/dev/null
        wait "$CLIENT_PID" 2>/dev/null
    fi
    if [ "$KEEP" = 1 ] && [ "$INTERRUPTED" = 0 ]; then
        say "--keep: namespaces and nodes left up (jepsen/hosts.sh teardown removes them)"
    else
        nem_heal_net
        if hosts_teardown; then say "teardown: nothing left"
        else say "teardown: something was left behind (see above)"; [ $rc = 0 ] && rc=2; fi
        if [ "$RESULT_VALID" = 1 ] && [ "$KEEP_DATA" = 0 ]; then
            rm -rf "$RUN"/node*/data   # logs, history and summary stay
        fi
    fi
    say "run directory: $RUN"
    exit $rc
}
trap finish EXIT
trap 'echo; say "interrupted"; INTERRUPTED=1; exit 130' INT TERM

# ---------------------------------------------------------------- crashes

CRASHES=0
CRASH_NOTES=""
# check_nodes: every node the nemesis did not take down must run. One that stopped is
# logged (history line f=node-crashed, exit status, log tail), and started again.
check_nodes() {
    local i pid st
    for i in $(seq 1 "$HOSTS_N"); do
        [ "$i" = "$NEM_KILLED" ] && continue
        [ "$i" = "$NEM_LEFT" ] && continue      # left the cluster: it stops by design
        node_pid "$RUN" "$i" >/dev/null && continue
        pid=$(cat "$RUN/node$i/pid" 2>/dev/null)
        st="?"
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null; st=$?; fi
        CRASHES=$((CRASHES + 1))
        local why="exit status $st"
        [ "$st" != "?" ] && [ "$st" -gt 128 ] && why+=" (signal $((st - 128)): $(kill -l $((st - 128)) 2>/dev/null))"
        [ -e "$RUN/node$i/core" ] && why+=", core dump $RUN/node$i/core"
        CRASH_NOTES+="n$i stopped on its own, $why; log tail:"$'\n'"$(tail -n 5 "$RUN/node$i/cairnd.log" | sed 's/^/    /')"$'\n'
        nem_log node-crashed "n$i $why" ",\"node\":\"n$i\""
        say "n$i CRASHED ($why): restarting it"
        node_start "$RUN" "$i" || say "n$i could not be restarted"
    done
}

# sleep_checking S: S seconds, checking the nodes every second
sleep_checking() {
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        sleep 1
        check_nodes
    done
}

# ---------------------------------------------------------------- the run

say "run $NAME: seed $SEED, workload $WORKLOAD, $TIME s, nemesis ${NEMESES//,/ }${BROKEN:+, BROKEN client: $BROKEN}"
say "repeat with: jepsen/run.sh --workload $WORKLOAD$([ "$SMOKE" = 1 ] && echo " --smoke") --seed $SEED --time $TIME$([ "$SMOKE" = 1 ] || echo " --nemesis $NEMESES --hold $HOLD --quiet $QUIET") --concurrency $CONC --keys $KEYS --rate $RATE${BROKEN:+ --broken $BROKEN}"
RANDOM=$SEED

hosts_setup || exit 2
hosts_start_cluster "$RUN" || exit 2

NEM_EPOCH_NS=$(( ${EPOCHREALTIME/./} * 1000 ))
# jepsen-client in the control namespace (`ip netns exec` execs: $! is the client's pid)
CLIENT=(ip netns exec "$HOSTS_CTL" "$JEPSEN_BIN/jepsen-client" --nodes "$NODES_ARG"
        --workload "$WORKLOAD" --history "$CLIENT_LOG" --epoch-ns "$NEM_EPOCH_NS" --seed "$SEED"
        --keys "$KEYS" --timeout-ms "$TIMEOUT_MS" ${BROKEN:+--broken "$BROKEN"})
"${CLIENT[@]}" --phase setup 2>>"$RUN/client.log" ||
    { tail -5 "$RUN/client.log" >&2; die "client setup failed"; }

"${CLIENT[@]}" --phase run --time "$TIME" --concurrency "$CONC" --rate "$RATE" 2>>"$RUN/client.log" &
CLIENT_PID=$!
RUN_START=$SECONDS
say "workload started (client pid $CLIENT_PID)"

# the schedule: quiet, fault, quiet, fault..., and a last fault that lasts until the
# workload ends: the final heal then starts from replicas that disagree, which is what the
# convergence probe times
draw() { local lo=${1%-*} hi=${1#*-}; nem_rand $((hi - lo + 1)); DRAWN=$((lo + NEM_R)); }
FAULT_LIST=(${NEMESES//,/ })
SCHEDULE=""
if [ "$NEMESES" != none ]; then
    step=0
    while :; do
        draw "$QUIET"; quiet=$DRAWN
        draw "$HOLD"; hold=$DRAWN
        if [ "$SMOKE" = 1 ]; then
            [ $step -lt ${#FAULT_LIST[@]} ] || break
            fault=${FAULT_LIST[step]}
        else
            nem_rand ${#FAULT_LIST[@]}; fault=${FAULT_LIST[NEM_R]}
        fi
        elapsed=$((SECONDS - RUN_START))
        [ $((elapsed + quiet + hold + ${QUIET#*-})) -le "$TIME" ] || break
        sleep_checking "$quiet"
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        NEM_LAST="- (did not start)"
        nem_start "$fault" || say "fault $fault could not start"
        SCHEDULE+="  +$((SECONDS - RUN_START))s $fault for ${hold}s: ${NEM_LAST#* }"$'\n'
        NEM_LAST=""
        sleep_checking "$hold"
        nem_stop "$fault" || say "fault $fault could not be stopped cleanly"
        step=$((step + 1))
    done
fi
FINAL_FAULT=""
if [ "$NEMESES" != none ] && kill -0 "$CLIENT_PID" 2>/dev/null; then
    draw "$QUIET"; quiet=$DRAWN
    if [ "$SMOKE" = 1 ]; then fault=${FAULT_LIST[0]}; else nem_rand ${#FAULT_LIST[@]}; fault=${FAULT_LIST[NEM_R]}; fi
    if [ $((TIME - (SECONDS - RUN_START))) -gt $((quiet + 2)) ]; then
        sleep_checking "$quiet"
        NEM_LAST="- (did not start)"
        nem_start "$fault" || say "fault $fault could not start"
        SCHEDULE+="  +$((SECONDS - RUN_START))s $fault until the workload ends: ${NEM_LAST#* }"$'\n'
        NEM_LAST=""
        FINAL_FAULT=$fault
    fi
fi
while kill -0 "$CLIENT_PID" 2>/dev/null; do sleep_checking 1; done
[ -z "$FINAL_FAULT" ] || nem_stop "$FINAL_FAULT" || say "fault $FINAL_FAULT could not be stopped cleanly"
wait "$CLIENT_PID"
client_rc=$?
CLIENT_PID=""
[ $client_rc = 0 ] || { tail -5 "$RUN/client.log" >&2; die "the client failed (status $client_rc)"; }
say "workload done: $(tail -n1 "$RUN/client.log")"

# ---------------------------------------------------------------- heal, settle, final reads

nem_heal_all || say "heal: a node could not be restarted"
check_nodes
HEAL_AT=$SECONDS
HEAL_NS=$(nem_now_ns)
nem_log final-heal "every fault healed, every node running"

# Convergence: probe every key's primary replicas (no read repair) every 0.5 s while the
# settle client reads the even keys only; done once every key agreed 3 probes in a row.
case "$WORKLOAD" in set) KEY_PREFIX=k ;; register) KEY_PREFIX=r ;; delete) KEY_PREFIX=d ;; esac
PROBE_KEYS=$(for k in $(seq 0 $((KEYS - 1))); do printf '%s%s ' "$KEY_PREFIX" "$k"; done)
CONV_LOG=$RUN/convergence.jsonl
printf '{"time":%s,"event":"heal"}\n' "$HEAL_NS" >"$CONV_LOG"
"${CLIENT[@]}" --phase settle --time "$CONVERGE_LIMIT" 2>>"$RUN/client.log" &
CLIENT_PID=$!
say "healed; probing convergence (at most ${CONVERGE_LIMIT}s; even keys read, odd keys not)"
conv_end=$((SECONDS + CONVERGE_LIMIT)) streak=0 via=1 CONVERGED=false probes=0
while [ $SECONDS -lt $conv_end ]; do
    t=$(nem_now_ns)
    # shellcheck disable=SC2086  # PROBE_KEYS is a word list
    if js=$(hosts_admin "$RUN" "$via" --timeout 5000 --json replicas "jepsen-$WORKLOAD" $PROBE_KEYS 2>/dev/null); then
        probes=$((probes + 1))
        # one line per key: {"time":T,"group":"read"|"unread","key":"k0","converged":...}
        printf '%s\n' "$js" | awk -v t="$t" '{
            n = split($0, part, /\{"key":/)
            for (i = 2; i <= n; i++) {
                p = part[i]
                if (i < n) sub(/,$/, "", p); else sub(/\][}][ \t\r]*$/, "", p)
                k = p; sub(/^"[^0-9]*/, "", k); sub(/".*/, "", k)
                printf "{\"time\":%s,\"group\":\"%s\",\"key\":%s\n", t, (k % 2 == 0) ? "read" : "unread", p
            }
        }' >>"$CONV_LOG"
        if [[ $js == *'"converged":false'* ]]; then streak=0; else streak=$((streak + 1)); fi
        if [ $streak -ge 3 ]; then CONVERGED=true; break; fi
    else
        via=$((via % HOSTS_N + 1)) # that node did not answer: ask the next one
    fi
    check_nodes
    sleep 0.5
done
printf '{"time":%s,"event":"end","converged":%s,"limit_s":%s,"probes":%s}\n' "$(nem_now_ns)" \
    "$CONVERGED" "$CONVERGE_LIMIT" "$probes" >>"$CONV_LOG"
kill -TERM "$CLIENT_PID" 2>/dev/null
wait "$CLIENT_PID" 2>/dev/null
CLIENT_PID=""
CONVERGE_S=$((SECONDS - HEAL_AT))
say "convergence: $([ "$CONVERGED" = true ] && echo "every key's replicas agree, ${CONVERGE_S}s after the heal" || echo "NOT every key agreed within ${CONVERGE_LIMIT}s") ($probes probes)"
check_nodes
hosts_wait_ring "$RUN" || say "the ring is not ready after the heal"
sleep_checking "$SETTLE"
"${CLIENT[@]}" --phase final 2>>"$RUN/client.log" || say "final reads: some failed (the checker judges)"
say "$(tail -n1 "$RUN/client.log")"
check_nodes

# ---------------------------------------------------------------- check and summary

sort -s -n -t: -k2,2 "$CLIENT_LOG" "$NEM_LOG" >"$RUN/history.jsonl"
"$JEPSEN_BIN/jepsen-check" --sibling-bound $((CONC + HOSTS_N)) --convergence "$CONV_LOG" \
    "$RUN/history.jsonl" >"$RUN/check.txt"
check_rc=$?
[ $check_rc -le 1 ] || { cat "$RUN/check.txt" >&2; die "jepsen-check could not read the history"; }

{
    echo "run:       $NAME"
    echo "seed:      $SEED"
    echo "workload:  $WORKLOAD, $TIME s, concurrency $CONC, keys $KEYS, rate $RATE/s, timeout ${TIMEOUT_MS} ms${BROKEN:+, BROKEN client: $BROKEN}"
    echo "nemesis:   ${NEMESES//,/ } (hold $HOLD s, quiet $QUIET s)"
    echo "binaries:  $CAIRN_BIN/cairnd ($("$CAIRN_BIN/cairnd" --version 2>/dev/null), sha256 $(sha256sum "$CAIRN_BIN/cairnd" | cut -c1-12), built $(date -u -r "$CAIRN_BIN/cairnd" +%FT%TZ)), $JEPSEN_BIN"
    echo "repeat:    jepsen/run.sh --workload $WORKLOAD$([ "$SMOKE" = 1 ] && echo " --smoke") --seed $SEED --time $TIME$([ "$SMOKE" = 1 ] || echo " --nemesis $NEMESES --hold $HOLD --quiet $QUIET") --concurrency $CONC --keys $KEYS --rate $RATE${BROKEN:+ --broken $BROKEN}"
    echo
    echo "schedule (seconds from the workload start):"
    printf '%s' "${SCHEDULE:-  (no faults)
}"
    echo "final heal at +$((HEAL_AT - RUN_START))s; convergence probed for up to ${CONVERGE_LIMIT}s; final reads ${SETTLE}s after it"
    echo
    grep -v '^\(VALID\|INVALID\)$' "$RUN/check.txt"
    if [ "$CRASHES" = 0 ]; then
        printf '%-20s %-8s %s\n' node-crashes VALID "no node stopped without the nemesis"
    else
        printf '%-20s %-8s %s\n' node-crashes INVALID "$CRASHES node(s) stopped without the nemesis:"
        printf '%s' "$CRASH_NOTES" | sed 's/^/  /'
    fi
    echo
    if [ $check_rc = 0 ] && [ "$CRASHES" = 0 ]; then echo "RESULT: VALID"; else echo "RESULT: INVALID"; fi
} >"$RUN/summary.txt"
cat "$RUN/summary.txt"
"$JEPSEN_BIN/jepsen-report" "$RUN" >&2 || say "report: jepsen-report failed (exit $?)"
[ $check_rc = 0 ] && [ "$CRASHES" = 0 ] && RESULT_VALID=1
[ "$RESULT_VALID" = 1 ]
