#!/usr/bin/env bash
# jepsen/check-selftest.sh — proves that each checker of jepsen-check can fail: small
# hand-written histories, one per case, each with the verdict it must get. A checker that
# cannot say INVALID proves nothing when it says VALID. Runs in well under a second, needs
# no cluster and no root.
#
# Usage: jepsen/check-selftest.sh [JEPSEN_CHECK]   (default ${BUILD:-build}/release/bin/jepsen-check)
# Exit status: 0 when every case got its verdict, 1 otherwise.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHECK=${1:-$ROOT/${BUILD:-build}/release/bin/jepsen-check}
[ -x "$CHECK" ] || { echo "check-selftest: $CHECK is missing (make)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jepsen-selftest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASS=0 FAIL=0

# op TIME PROCESS NODE TYPE F KEY VALUE [EXTRA]: one client history line
op() { printf '{"time":%s,"process":%s,"node":"%s","type":"%s","f":"%s","key":"%s","value":%s%s}\n' "$@"; }
add() { op "$1" "$2" n1 invoke add "$3" "$4"; op $(($1 + 1)) "$2" n1 "$5" add "$3" "$4" "${6:-}"; }
final() { op "$1" 100000 "$2" invoke final-read "$3" null; op $(($1 + 1)) 100000 "$2" ok final-read "$3" null ",\"siblings\":$4,\"context\":\"\""; }

# expect NAME CHECKER VERDICT EXIT: runs the checker on $WORK/h.jsonl
expect() {
    local name=$1 checker=$2 want=$3 want_rc=$4 out rc
    out=$("$CHECK" ${CONV:+--convergence "$CONV"} "$WORK/h.jsonl" 2>&1); rc=$?
    if [ "$rc" = "$want_rc" ] && { [ "$checker" = - ] || grep -q "^$checker  *$want " <<<"$out"; }; then
        echo "PASS: $name ($checker $want, exit $rc)"; PASS=$((PASS + 1))
    else
        echo "FAIL: $name: wanted $checker $want and exit $want_rc, got exit $rc:"; echo "$out" | sed 's/^/    /'
        FAIL=$((FAIL + 1))
    fi
}

# --- set: a clean history
{ add 10 0 k0 1 ok; add 20 1 k0 2 ok; add 30 2 k0 3 info; add 40 3 k0 4 fail
  final 100 n1 k0 '[[1,2]]'; final 100 n2 k0 '[[1],[2]]'; } >"$WORK/h.jsonl"
expect "set, clean" set-lost VALID 0

# --- set: an acknowledged element missing from every final read
{ add 10 0 k0 1 ok; add 20 1 k0 2 ok; final 100 n1 k0 '[[1]]'; final 100 n2 k0 '[[1]]'; } >"$WORK/h.jsonl"
expect "set, lost write" set-lost INVALID 1

# --- set: no final read at all is never VALID
{ add 10 0 k0 1 ok; } >"$WORK/h.jsonl"
expect "set, no final reads" set-lost INVALID 1

# --- an element nobody wrote
{ add 10 0 k0 1 ok; final 100 n1 k0 '[[1,99]]'; } >"$WORK/h.jsonl"
expect "unexpected element" unexpected INVALID 1

# --- an add recorded fail (never sent) that shows up
{ add 10 0 k0 1 ok; add 20 1 k0 2 fail; final 100 n1 k0 '[[1,2]]'; } >"$WORK/h.jsonl"
expect "fail that happened" failed-present INVALID 1

# --- the nodes disagree after the heal
{ add 10 0 k0 1 ok; final 100 n1 k0 '[[1]]'; final 100 n2 k0 '[]'; } >"$WORK/h.jsonl"
expect "final reads disagree" final-reads INVALID 1

# --- too many siblings
sibs=$(printf '[1],%.0s' $(seq 1 30)); sibs="[${sibs%,}]"
{ add 10 0 k0 1 ok; final 100 n1 k0 "$sibs"; } >"$WORK/h.jsonl"
expect "sibling explosion" sibling-bounds INVALID 1

# --- delete: what a delete saw is gone: not lost; a deleted element back: resurrection
del() { op "$1" "$2" n1 invoke delete "$3" null; op $(($1 + 1)) "$2" n1 "$4" delete "$3" null ",\"read\":$5"; }
{ add 10 0 d0 1 ok ',"wrote":[1]'; del 20 1 d0 ok '[1]'; add 30 2 d0 2 ok ',"wrote":[2]'
  final 100 n1 d0 '[[2]]'; } >"$WORK/h.jsonl"
expect "delete, clean" no-resurrection VALID 0
{ add 10 0 d0 1 ok ',"wrote":[1]'; del 20 1 d0 ok '[1]'; final 100 n1 d0 '[[1]]'; } >"$WORK/h.jsonl"
expect "delete, resurrection" no-resurrection INVALID 1
# a concurrent add (its read had 1, the delete did not see its version) keeps 1 alive
{ add 10 0 d0 1 ok ',"wrote":[1]'; del 20 1 d0 ok '[1]'; add 30 2 d0 2 ok ',"wrote":[1,2]'
  final 100 n1 d0 '[[1,2]]'; } >"$WORK/h.jsonl"
expect "delete, concurrent add keeps it" no-resurrection VALID 0
# an element no delete saw must survive
{ add 10 0 d0 1 ok ',"wrote":[1]'; add 12 2 d0 2 ok ',"wrote":[2]'; del 20 1 d0 ok '[1]'
  final 100 n1 d0 '[]'; } >"$WORK/h.jsonl"
expect "delete, unseen element lost" set-lost INVALID 1

# --- register: a write superseded by one that read it is not lost; a concurrent one is
wr() { op "$1" "$2" n1 invoke write "$3" "$4"; op $(($1 + 1)) "$2" n1 ok write "$3" "$4" ",\"read\":$5"; }
rd() { op "$1" "$2" n1 invoke read "$3" null; op $(($1 + 1)) "$2" n1 ok read "$3" null ",\"siblings\":$4,\"context\":\"\""; }
{ wr 10 0 r0 1 '[]'; wr 20 1 r0 2 '[1]'; rd 30 2 r0 '[[2]]'; final 100 n1 r0 '[[2]]'; } >"$WORK/h.jsonl"
expect "register, clean" register-lost VALID 0
{ wr 10 0 r0 1 '[]'; wr 20 1 r0 2 '[]'; final 100 n1 r0 '[[2]]'; } >"$WORK/h.jsonl"
expect "register, lost write" register-lost INVALID 1
{ wr 10 0 r0 1 '[]'; rd 30 2 r0 '[]'; final 100 n1 r0 '[[1]]'; } >"$WORK/h.jsonl"
expect "register, stale read when calm" calm-reads INVALID 1
{ printf '{"time":5,"process":"nemesis","type":"info","f":"start-partition","value":"x"}\n'
  wr 10 0 r0 1 '[]'; rd 30 2 r0 '[]'
  printf '{"time":50,"process":"nemesis","type":"info","f":"stop-partition","value":"x"}\n'
  final 100 n1 r0 '[[1]]'; } >"$WORK/h.jsonl"
expect "register, stale read during a fault is allowed" calm-reads VALID 0

# --- convergence: every key's replicas agree after the heal, and stay so
probe() { printf '{"time":%s,"group":"%s","key":"%s","converged":%s,"replicas":[]}\n' "$@"; }
{ add 10 0 k0 1 ok; final 100 n1 k0 '[[1]]'; } >"$WORK/h.jsonl"
CONV=$WORK/c.jsonl
{ printf '{"time":50,"event":"heal"}\n'; probe 60 read k0 false; probe 60 unread k1 false
  probe 70 read k0 true; probe 70 unread k1 true; probe 80 read k0 true; probe 80 unread k1 true
  printf '{"time":90,"event":"end","converged":true,"limit_s":60}\n'; } >"$CONV"
expect "convergence, clean" convergence VALID 0
# a key that agreed once but not at the last probe has not converged
{ printf '{"time":50,"event":"heal"}\n'; probe 60 read k0 true; probe 60 unread k1 true
  probe 70 read k0 true; probe 70 unread k1 false
  printf '{"time":90,"event":"end","converged":false,"limit_s":60}\n'; } >"$CONV"
expect "convergence, a key never settles" convergence INVALID 1
printf '{"time":50,"event":"heal"}\n' >"$CONV"
expect "convergence, no probe" convergence INVALID 1
CONV=""

# --- a history that is not one
printf '{"time":1,"process":0,' >"$WORK/h.jsonl"
expect "unreadable history" - - 2

echo "check-selftest: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
