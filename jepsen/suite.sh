#!/usr/bin/env bash
# jepsen/suite.sh — the full fault-injection suite: every nemesis with every workload, one
# run.sh run each (the fault alone, repeated by the schedule), then one table of the
# results: jepsen/out/suite-<date>/table.md (and each run's directory beside it).
#
# Usage (as root):  jepsen/suite.sh [--time S] [--seed N] [--workloads LIST] [--nemeses LIST]
#   --time S          seconds of workload per run (default 60)
#   --seed N          run i uses seed N+i (default: random, printed); a row's seed repeats it
#   --workloads LIST  default set,register,delete
#   --nemeses LIST    default: every fault (jepsen/nemesis.sh), one run each
# Extra run.sh options can follow `--` (e.g. -- --rate 200).
#
# Exit status: 0 when every run is VALID, 1 when one is not, 2 bad usage.
set -u -o pipefail
JEPSEN_DIR=$(cd "$(dirname "$0")" && pwd)
. "$JEPSEN_DIR/hosts.sh"
. "$JEPSEN_DIR/nemesis.sh"

TIME=60 SEED="" WORKLOADS=set,register,delete NEMESES=""
while [ $# -gt 0 ]; do
    case "$1" in
    --time) TIME=${2:?}; shift ;;
    --seed) SEED=${2:?}; shift ;;
    --workloads) WORKLOADS=${2:?}; shift ;;
    --nemeses) NEMESES=${2:?}; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "suite.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$SEED" ] || SEED=$(( $(od -An -N2 -tu2 /dev/urandom) ))
NEMESES=${NEMESES:-$(echo $NEM_FAULTS $NEM_FAULTS_EXTRA | tr ' ' ,)}
STAMP=$(date -u +%Y%m%d-%H%M%S)
SUITE=suite-$STAMP
OUT=$HOSTS_ROOT/jepsen/out/$SUITE
mkdir -p "$OUT"
TABLE=$OUT/table.md
echo "suite: $SUITE, base seed $SEED, $TIME s per run, workloads $WORKLOADS, nemeses $NEMESES" | tee "$OUT/suite.log"

field() { # field CHECK_FILE CHECKER KEY: the number after KEY= on CHECKER's line
    grep "^$2 " "$1" 2>/dev/null | grep -o "$3=[0-9.]*" | head -1 | cut -d= -f2
}
verdict() { grep "^$2 " "$1" 2>/dev/null | awk '{print $2}' | head -1; }
conv() { # the convergence line: "0.4 s / 1.2 s", or its verdict when it failed
    local line r u
    line=$(grep "^convergence " "$1" 2>/dev/null) || { echo "?"; return; }
    r=$(grep -o ' read keys=[0-9]* max=[0-9.]*s' <<<"$line" | sed 's/.*max=//; s/s$/ s/')
    u=$(grep -o 'unread keys=[0-9]* max=[0-9.]*s' <<<"$line" | sed 's/.*max=//; s/s$/ s/')
    case "$line" in *" VALID "*) echo "${r:-none} / ${u:-none}" ;; *) echo "NOT CONVERGED (${r:-none} / ${u:-none})" ;; esac
}
pct() { grep "^$2 " "$1" 2>/dev/null | grep -o '([0-9.]*%)' | tr -d '()' | head -1; }

{
    echo "| nemesis | workload | seed | acked writes | lost | unexpected | resurrected / stale calm reads | ok during faults | ok outside | max siblings | converged after heal: read / unread keys (max) | node crashes | result |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$TABLE"

i=0 all_valid=1
for nem in ${NEMESES//,/ }; do
    for wl in ${WORKLOADS//,/ }; do
        seed=$((SEED + i)); i=$((i + 1))
        name=$SUITE/$nem-$wl
        echo "suite: run $i: $nem x $wl (seed $seed)" | tee -a "$OUT/suite.log"
        "$JEPSEN_DIR/run.sh" --workload "$wl" --nemesis "$nem" --time "$TIME" --seed "$seed" \
            --name "$name" "$@" >"$OUT/$nem-$wl.log" 2>&1
        rc=$?
        c=$HOSTS_ROOT/jepsen/out/$name/check.txt
        s=$HOSTS_ROOT/jepsen/out/$name/summary.txt
        if [ "$wl" = register ]; then
            acked=$(field "$c" register-lost "ok writes"); lost=$(field "$c" register-lost lost)
            extra="stale $(field "$c" calm-reads stale)"
        else
            acked=$(grep '^set-lost ' "$c" 2>/dev/null | grep -o 'of acknowledged=[0-9]*' | cut -d= -f2)
            lost=$(field "$c" set-lost lost)
            if [ "$wl" = delete ]; then extra="resurrected $(field "$c" no-resurrection resurrected)"; else extra="-"; fi
        fi
        crashes=$(grep -c '"f":"node-crashed"' "$HOSTS_ROOT/jepsen/out/$name/nemesis.jsonl" 2>/dev/null)
        result=$(grep '^RESULT:' "$s" 2>/dev/null | awk '{print $2}')
        [ -n "$result" ] || result="harness error (exit $rc, see $nem-$wl.log)"
        [ "$result" = VALID ] || all_valid=0
        echo "| $nem | $wl | $seed | ${acked:-?} | ${lost:-?} | $(field "$c" unexpected unexpected) | $extra | $(pct "$c" availability-fault) | $(pct "$c" availability-calm) | $(grep '^sibling-bounds ' "$c" 2>/dev/null | grep -o 'max siblings=[0-9]*' | cut -d= -f2) | $(conv "$c") | ${crashes:-?} | $result |" >>"$TABLE"
        echo "suite:   -> $result" | tee -a "$OUT/suite.log"
    done
done
echo
cat "$TABLE"
echo
echo "suite: table in $TABLE"
[ "$all_valid" = 1 ]
