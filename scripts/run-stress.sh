#!/usr/bin/env bash
# Runs the plain C stress programs (built with ThreadSanitizer by `make tsan`), each under a
# time bound. A program exits 0 when its own checks hold; TSan makes any data race fatal.
# Prints "stress: N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
: "${STRESS_TIMEOUT:=300}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$(dirname "$0")/../tests/stress/tsan.supp}"
pass=0; fail=0
for t in "$@"; do
    start=$(date +%s%N)
    if timeout --kill-after=10 "$STRESS_TIMEOUT" "$t" >"/tmp/stress.$$.log" 2>&1; then
        pass=$((pass + 1)); res=ok
    else
        fail=$((fail + 1)); res=FAILED; tail -80 "/tmp/stress.$$.log"
    fi
    printf "  %-28s %-6s %dms\n" "$(basename "$t")" "$res" $(( ($(date +%s%N) - start) / 1000000 ))
done
rm -f "/tmp/stress.$$.log"
echo "stress: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
