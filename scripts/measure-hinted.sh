#!/usr/bin/env bash
# measure-hinted.sh — measures hinted handoff on a local 3-node cluster: node 3 is killed
# (kill -9), KEYS keys are written at N=3 W=2 through node 1 (every replica meant for node 3
# goes to a fallback on node 1 or 2), node 3 is restarted, and the script times how long
# until no node holds fallback data any more (`cairn-admin status`: held vnodes 0). It then
# sums the objects and bytes the handoff log lines report and prints the rates. (That every
# key arrives is what tests/cluster/test_cluster_hinted.c checks, with PR=3 reads.)
#
# Usage: scripts/measure-hinted.sh [--markdown]
# Env:   BUILD (build root, default build; uses $BUILD/release/bin), KEYS (default 100000),
#        VALUE_SIZE (default 100), DATA (default: a temporary directory, removed at the end).
# Exit status: 0 when the fallbacks emptied within 60 s, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
--markdown) MARKDOWN=1 ;;
"") MARKDOWN=0 ;;
*) echo "measure-hinted.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
BIN=${BUILD:-build}/release/bin
KEYS=${KEYS:-100000}
VALUE_SIZE=${VALUE_SIZE:-100}
for prog in cairnd cairn-admin cairn-bench; do
    [ -x "$BIN/$prog" ] || { echo "measure-hinted.sh: $BIN/$prog is missing: make release" >&2; exit 1; }
done
OWN_DATA=0
if [ -z "${DATA:-}" ]; then
    DATA=$(mktemp -d /tmp/cairn-hinted-XXXXXX)
    OWN_DATA=1
fi
BASE=$((20000 + RANDOM % 20000))
CLUSTER_PID=
cleanup() {
    [ -n "$CLUSTER_PID" ] && kill "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
    pkill -f -- "--data-dir $DATA/node" 2>/dev/null || true
    [ "$OWN_DATA" = 1 ] && rm -rf "$DATA"
    return 0
}
trap cleanup EXIT INT TERM

name() { echo "cairn$1@127.0.0.1:$((BASE + 10 * ($1 - 1)))"; }
port() { echo $((BASE + 1 + 10 * ($1 - 1))); }
admin() { local i=$1; shift; "$BIN/cairn-admin" --data-dir "$DATA" --node "$(name "$i")" "$@"; }
held() { admin "$1" --json status 2>/dev/null | grep -o '"vnodes_foreign":[0-9]*' | cut -d: -f2; }
now() { date +%s.%N; }

# The cluster comes from scripts/cluster.sh (same layout), on ports of our own.
mkdir -p "$DATA"
start_node() {
    local i=$1
    setsid "$BIN/cairnd" -c "$DATA/cluster.conf" --nodename "$(name "$i")" \
        --listen "127.0.0.1:$(port "$i")" --data-dir "$DATA/node$i" --ring-size 64 \
        --set log.file=off >>"$DATA/node$i/cairnd.log" 2>&1 </dev/null &
    disown
}
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DATA/cookie"
printf 'distribution.cookie = %s\n' "$(cat "$DATA/cookie")" >"$DATA/cluster.conf"
chmod 600 "$DATA/cluster.conf" "$DATA/cookie"
for i in 1 2 3; do
    mkdir -p "$DATA/node$i"
    start_node "$i"
done
for i in 1 2 3; do # wait for each node's admin endpoint (bounded)
    for _ in $(seq 100); do admin "$i" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
admin 2 cluster join "$(name 1)" >/dev/null
admin 3 cluster join "$(name 1)" >/dev/null
sleep 1
admin 1 cluster plan >/dev/null
admin 1 cluster commit >/dev/null
for _ in $(seq 300); do
    out=$(admin 1 transfers 2>/dev/null || true)
    if admin 1 ringready >/dev/null 2>&1 && [[ $out == *"No transfers active"* ]] &&
        [ "$(held 1)" = 0 ]; then
        break
    fi
    sleep 0.2
done

pkill -9 -f -- "--nodename $(name 3)"
for _ in $(seq 100); do
    admin 1 --json status | grep -q "\"$(name 3)\"" || break
    sleep 0.1
done
"$BIN/cairn-bench" load -q --keys "$KEYS" --value-size "$VALUE_SIZE" --w 2 \
    -h "127.0.0.1:$(port 1)" >"$DATA/load.txt"
before1=$(held 1)
before2=$(held 2)
start_line=$(date -u +%Y-%m-%dT%H:%M:%S)
t0=$(now)
start_node 3
ok=0
for _ in $(seq 1200); do
    if [ "$(held 1)" = 0 ] && [ "$(held 2)" = 0 ]; then ok=1; break; fi
    sleep 0.05
done
t1=$(now)
secs=$(echo "$t1 - $t0" | bc -l)
objs=0
bytes=0
for i in 1 2; do
    read -r o b < <(awk -v from="$start_line" '$1 >= from && /handoff: handoff of partition/ && /done/ {
        for (i = 1; i <= NF; i++) { if ($i == "objects,") o += $(i - 1); if ($i == "bytes") b += $(i - 1) } }
        END { print o + 0, b + 0 }' "$DATA/node$i/cairnd.log")
    objs=$((objs + o))
    bytes=$((bytes + b))
done
mbs=$(echo "$bytes / $secs / 1000000" | bc -l)
ops=$(echo "$objs / $secs" | bc -l)
if [ "$MARKDOWN" = 1 ]; then
    echo "| keys | held on fallbacks (vnodes, node 1 / node 2) | objects handed off | restart → fallbacks empty | objects/s | MB/s |"
    echo "|---:|---|---:|---:|---:|---:|"
    printf '| %d | %s / %s | %d | %.2f s | %.0f | %.1f |\n' "$KEYS" "$before1" "$before2" "$objs" "$secs" "$ops" "$mbs"
else
    echo "hinted handoff: $KEYS keys written with node 3 down; fallback vnodes held: node 1 $before1, node 2 $before2"
    printf 'node 3 restarted -> fallbacks empty in %.2f s (includes node 3 start-up); %d objects, %d bytes handed off: %.0f objects/s, %.1f MB/s\n' \
        "$secs" "$objs" "$bytes" "$ops" "$mbs"
fi
[ "$ok" = 1 ] || { echo "measure-hinted.sh: the fallbacks did not empty within 60 s" >&2; exit 1; }
