#!/usr/bin/env bash
# Runs every Criterion suite given on the command line (after the first argument, the
# directory they live in), each under a time bound, and prints one summary line at the end:
# "tests: N passed, N failed". Exits non-zero if any suite fails, crashes or times out.
# Env: TEST_TIMEOUT (seconds per suite, default 300), TEST_FILTER (Criterion --filter glob).
set -uo pipefail
shift
: "${TEST_TIMEOUT:=300}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
pass=0; fail=0; bad_suites=()
for t in "$@"; do
    name=$(basename "$t")
    args=(--jobs 2 --timeout 120)
    [ -n "${TEST_FILTER:-}" ] && args+=(--filter "$TEST_FILTER")
    log=$(mktemp)
    timeout --kill-after=10 "$TEST_TIMEOUT" "$t" "${args[@]}" >"$log" 2>&1
    rc=$?
    synth=$(grep -a 'Synthesis:' "$log" | tail -1)
    p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$synth"); p=${p:-0}
    f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$synth"); f=${f:-0}
    c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$synth"); c=${c:-0}
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ -z "$synth" ]; then
        [ -z "$synth" ] && fail=$((fail + 1))
        bad_suites+=("$name")
        echo "---- $name FAILED (exit $rc) ----"
        grep -a -v '^\[----\] *$' "$log" | tail -60
    fi
    printf '  %-28s %s\n' "$name" "${synth#*Synthesis: }"
    rm -f "$log"
done
echo "unit: ${#bad_suites[@]} suite(s) failed${bad_suites:+: ${bad_suites[*]}}"
echo "tests: $pass passed, $fail failed"
[ "${#bad_suites[@]}" -eq 0 ]
