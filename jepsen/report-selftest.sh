#!/usr/bin/env bash
# jepsen/report-selftest.sh — checks jepsen-report on runs it writes itself: a small synthetic
# run (history with faults, a crash, fail and info ops, final reads; summary.txt; a synthetic
# convergence.jsonl) that works on a fresh clone, a 10,000-operation one for the page's size,
# and, when present, a copy of a stored run under jepsen/out/suite-20261121-020158. Asserts
# the page's sections, its points and bars, the shaded faults, the VALID/INVALID badge, that
# it is self-contained, and that bad input is refused with exit 2. Builds nothing, needs no
# cluster and no root; runs in about a second.
#
# Usage: jepsen/report-selftest.sh [JEPSEN_REPORT]
#   default: $JEPSEN_BIN/jepsen-report, else ${BUILD:-build}/release/bin/jepsen-report
# Exit status: 0 when every check passed, 1 otherwise.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then REPORT=$1
elif [ -n "${JEPSEN_BIN:-}" ]; then REPORT=$JEPSEN_BIN/jepsen-report
else REPORT=$ROOT/${BUILD:-build}/release/bin/jepsen-report; fi
[ -x "$REPORT" ] || { echo "report-selftest: $REPORT is missing (make)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jepsen-report-selftest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASS=0 FAIL=0

pass() { echo "PASS: $1"; PASS=$((PASS + 1)); }
fail() { echo "FAIL: $1"; FAIL=$((FAIL + 1)); }
# check NAME COMMAND...: PASS when the command succeeds
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi; }
# count PATTERN FILE: occurrences of a fixed string
count() { grep -oF -- "$1" "$2" | wc -l; }
# at_least NAME PATTERN FILE N
at_least() { local n; n=$(count "$2" "$3"); if [ "$n" -ge "$4" ]; then pass "$1 ($n >= $4)"; else fail "$1: $n < $4"; fi; }
# run_report DIR [ARGS...]: runs the report, keeps exit status in RC and stderr in $WORK/err
run_report() { local dir=$1; shift; "$REPORT" "$@" "$dir" >"$WORK/out" 2>"$WORK/err"; RC=$?; }

# ---------------------------------------------------------------- the synthetic run
# gen_history N_OPS SPAN_S: client ops spread over SPAN_S seconds through n1..n5, a partition
# (5-12 s of a 30 s run, scaled), kill n3 (16-22 s), n1 crashed (25 s), final heal, final
# reads. During the partition every 5th op fails after 2 s and every 7th is info (timeout);
# op 3 is an info op without latency_ns (its latency comes from its invoke).
gen_history() {
    awk -v n="$1" -v span="$2" 'BEGIN {
        S = 1000000000; scale = span / 30.0
        p0 = 5 * scale * S; p1 = 12 * scale * S; k0 = 16 * scale * S; k1 = 22 * scale * S
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":\"random-halves {n1,n2} | {n3,n4,n5}\",\"grudge\":{\"n1\":[\"n3\"]}}\n", p0
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"stop-partition\",\"value\":\"random-halves healed\"}\n", p1
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-kill\",\"value\":\"n3\",\"node\":\"n3\"}\n", k0
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"stop-kill\",\"value\":\"n3 restarted\",\"node\":\"n3\"}\n", k1
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"node-crashed\",\"value\":\"n1 exit status 0\",\"node\":\"n1\"}\n", 25 * scale * S
        printf "{\"time\":%.0f,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"final-heal\",\"value\":\"healed\"}\n", span * S + S / 2
        for (i = 0; i < n; i++) {
            t = 1000000 + int(i * (span * S / n)); node = "n" (i % 5 + 1); f = (i % 10 == 9) ? "read" : "add"
            w = i % 10; proc = w + 10 * gen[w]
            type = "ok"; lat = 400000 + (i * 7919) % 1600000
            if (t >= p0 && t < p1 && i % 5 == 0) { type = "fail"; lat = 2000000000 }
            else if (t >= p0 && t < p1 && i % 7 == 0) { type = "info"; lat = 2000000000 }
            printf "{\"time\":%.0f,\"process\":%.0f,\"node\":\"%s\",\"type\":\"invoke\",\"f\":\"%s\",\"key\":\"k%.0f\",\"value\":%.0f}\n", t, proc, node, f, i % 8, i
            if (i == 3) {
                printf "{\"time\":%.0f,\"process\":%.0f,\"node\":\"%s\",\"type\":\"info\",\"f\":\"%s\",\"key\":\"k%.0f\",\"value\":%.0f,\"error\":\"connection reset\"}\n", t + 3000000, proc, node, f, i % 8, i
            } else {
                printf "{\"time\":%.0f,\"process\":%.0f,\"node\":\"%s\",\"type\":\"%s\",\"f\":\"%s\",\"key\":\"k%.0f\",\"value\":%.0f,\"latency_ns\":%.0f}\n", t + lat, proc, node, type, f, i % 8, i, lat
            }
            if (type == "info" || i == 3) gen[w]++  # the worker goes on as a new process
        }
        for (k = 0; k < 8; k++) for (m = 1; m <= 5; m++) {
            t = (span + 2) * S + k * 1000000 + m * 1000
            printf "{\"time\":%.0f,\"process\":%.0f,\"node\":\"n%.0f\",\"type\":\"invoke\",\"f\":\"final-read\",\"key\":\"k%.0f\",\"value\":null}\n", t, 100000 + m, m, k
            printf "{\"time\":%.0f,\"process\":%.0f,\"node\":\"n%.0f\",\"type\":\"ok\",\"f\":\"final-read\",\"key\":\"k%.0f\",\"value\":null,\"siblings\":[[1]],\"context\":\"\",\"latency_ns\":500000}\n", t + 500000, 100000 + m, m, k
        }
    }' | sort -s -n -t: -k2,2
}

# gen_convergence HEAL_NS: probes every 0.5 s for 10 s; read keys k0..k3 converge at
# 0.5/1/1.5/2 s; unread k4 at 4 s, k5 at 6 s, k6 converges at 1 s, diverges again at 2 s and
# converges for good at 3 s; k7 never does (one replica notfound).
gen_convergence() {
    awk -v heal="$1" 'BEGIN {
        S = 1000000000
        printf "{\"time\":%.0f,\"event\":\"heal\"}\n", heal
        split("0.5 1 1.5 2 4 6 3 99", at, " ")
        for (j = 0; j <= 20; j++) {
            s = j * 0.5
            for (k = 0; k < 8; k++) {
                conv = (s >= at[k + 1]); if (k == 6 && s >= 1 && s < 2) conv = 1
                if (k == 6 && s >= 2 && s < 3) conv = 0
                d2 = conv ? "a1b2c3d4e5f60718" : "ffff0000ffff0000"
                st3 = (k == 7) ? "notfound" : "value"
                printf "{\"time\":%.0f,\"key\":\"k%.0f\",\"group\":\"%s\",\"converged\":%s,\"replicas\":[{\"node\":\"n1\",\"partition\":12,\"status\":\"value\",\"siblings\":1,\"digest\":\"a1b2c3d4e5f60718\"},{\"node\":\"n2\",\"partition\":12,\"status\":\"value\",\"siblings\":%.0f,\"digest\":\"%s\"},{\"node\":\"n3\",\"partition\":12,\"status\":\"%s\",\"siblings\":1,\"digest\":\"a1b2c3d4e5f60718\"}]}\n", heal + s * S + k * 1000, k, k < 4 ? "read" : "unread", conv ? "true" : "false", conv ? 1 : 2, d2, st3
            }
        }
        printf "{\"time\":%.0f,\"event\":\"end\",\"converged\":false,\"limit_s\":10}\n", heal + 10 * S + S / 10
    }'
}

gen_summary() { # RESULT
    cat <<EOF
run:       selftest-synthetic
seed:      42
workload:  set, 30 s, concurrency 10, keys 8, rate 10/s, timeout 2000 ms
nemesis:   partition-halves,kill (hold 8-15 s, quiet 4-8 s)

schedule (seconds from the workload start):
  +5s partition-halves for 7s: random-halves {n1,n2} | {n3,n4,n5}
  +16s kill for 6s: n3
final heal at +30s, final reads after 2s of settling

history: 1000 lines, 8 keys, 40 reads (40 final), 6 nemesis ops
set-lost             $([ "$1" = VALID ] && echo "VALID  " || echo INVALID)  lost=0 of acknowledged=250
  lost: key k1 element 97 acknowledged at 0.407 s by process 5 through n1 (history line 216)
unexpected           VALID    unexpected=0 unparsable sibling values=0
availability-fault   REPORT   writes invoked during faults: 70, ok=50 (71.4%) fail=14 info=6

RESULT: $1
EOF
}

SYN=$WORK/synthetic
mkdir -p "$SYN"
gen_history 300 30 >"$SYN/history.jsonl"
gen_summary VALID >"$SYN/summary.txt"
HEAL_NS=$(grep -F '"final-heal"' "$SYN/history.jsonl" | sed 's/{"time":\([0-9]*\).*/\1/')
gen_convergence "$HEAL_NS" >"$SYN/convergence.jsonl"
COMPLETIONS=$(grep -v nemesis "$SYN/history.jsonl" | grep -c '"type":"\(ok\|fail\|info\)"')
H=$SYN/report.html

check "--help exits 0 and prints the usage" bash -c "'$REPORT' --help | grep -q '^usage: jepsen-report'"
run_report "$SYN"
if [ "$RC" = 0 ] && [ -s "$H" ]; then pass "synthetic run: report written"; else
    fail "synthetic run: exit $RC, $(cat "$WORK/err")"; fi
for id in summary schedule latency throughput outcomes convergence; do
    check "section $id" grep -qF "id=\"$id\"" "$H"
done
check "footer with the history's line count" grep -qF "history.jsonl: $(wc -l <"$SYN/history.jsonl") lines" "$H"
at_least "one latency point per completed op" "<circle " "$H" "$COMPLETIONS"
at_least "throughput and outcome bars" "<rect " "$H" 60
at_least "shaded fault windows (2 windows x 2 time plots)" 'class="fault"' "$H" 4
at_least "node crash as a thin band (x 2 time plots)" 'class="fault crash"' "$H" 2
check "fault labels: partition, kill n3, n1 crashed" bash -c "grep -qF '>partition</text>' '$H' && grep -qF '>kill n3</text>' '$H' && grep -qF '>n1 crashed</text>' '$H'"
check "final heal marked" grep -qF 'class="heal"' "$H"
check "VALID badge" grep -qF '<span class="badge valid">VALID</span>' "$H"
check "verdict cells coloured" bash -c "grep -qF '<td class=\"VALID\">VALID</td>' '$H' && grep -qF '<td class=\"REPORT\">REPORT</td>' '$H'"
check "parameters from summary.txt" grep -qF '<th>seed</th><td>42</td>' "$H"
check "schedule from summary.txt" grep -qF '+16s kill for 6s: n3' "$H"
check "client timeout line" grep -qF 'class="timeout"' "$H"
check "info op without latency_ns drawn from its invoke" grep -qF '1 operation(s) without latency_ns' "$H"
check "per node and per f tables" bash -c "grep -qF '<h3>Per node' '$H' && grep -qF '<h3>Per operation kind' '$H' && grep -qF '<td>final-read</td>' '$H'"
check "self-contained: no script, no URL, no external resource" \
    bash -c "! grep -qiE '<script|https?:|src=|url\\(|@import|<link' '$H'"
check "convergence: read group median 1.25 s, max 2.00 s" grep -qF '<td>read</td><td class="num">4</td><td class="num">4</td><td class="num">0</td><td class="num">1.25 s</td><td class="num">2.00 s</td>' "$H"
check "convergence: unread group not converged within the limit" grep -qF '<td>unread</td><td class="num">4</td><td class="num">3</td><td class="num">1</td><td class="num">4.00 s</td><td class="num">not converged within the limit (10 s)</td>' "$H"
check "convergence: a key that diverged again converges at its last run (3.00 s)" grep -qF 'converged at 3.00 s' "$H"
at_least "convergence: a mark per probe" 'class="notconv"' "$H" 40
check "convergence: replicas in the tooltips" grep -qF 'n3/p12 notfound' "$H"

# INVALID result, and check.txt when summary.txt is absent
gen_summary INVALID >"$SYN/summary.txt"
run_report "$SYN"
check "INVALID badge" grep -qF '<span class="badge invalid">INVALID</span>' "$H"
check "INVALID checker open with its details" grep -qF '<details open><summary>1 detail line(s)' "$H"
rm "$SYN/summary.txt"
{ sed -n '/^history:/,/^availability/p' <(gen_summary INVALID); echo INVALID; } >"$SYN/check.txt"
run_report "$SYN"
check "check.txt used when summary.txt is absent" bash -c "[ $RC = 0 ] && grep -qF 'From check.txt' '$H' && grep -qF '<span class=\"badge invalid\">INVALID</span>' '$H' && grep -qF '<td>set-lost</td>' '$H'"

# without convergence.jsonl
mv "$SYN/convergence.jsonl" "$WORK/convergence.jsonl"
run_report "$SYN"
check "no convergence.jsonl: said so" grep -qF 'Convergence was not measured' "$H"
mv "$WORK/convergence.jsonl" "$SYN/convergence.jsonl"

# thinning
run_report "$SYN" --max-points 100 --out "$WORK/thin.html"
n=$(count "<circle " "$WORK/thin.html")
if [ "$RC" = 0 ] && [ "$n" -le 130 ] && grep -qF 'Thinned:' "$WORK/thin.html"; then
    pass "thinned to --max-points, caption says so ($n points)"; else fail "thinning: exit $RC, $n points"; fi

# lines the page cannot use are skipped and listed, not fatal
cp "$SYN/history.jsonl" "$WORK/history.good"
sed -i '5a {"process":3,"type":"ok","f":"add"}' "$SYN/history.jsonl"
run_report "$SYN"
check "a JSON line without time is skipped and listed" bash -c "[ $RC = 0 ] && grep -qF 'line 6 (no time)' '$H'"

# refused input: exit 2 with file and line
cp "$WORK/history.good" "$SYN/history.jsonl"
sed -i '7s/.*/{"time":123,"process":0,/' "$SYN/history.jsonl"
run_report "$SYN"
if [ "$RC" = 2 ] && grep -qF 'history.jsonl:7: not a JSON object' "$WORK/err"; then
    pass "malformed history refused with exit 2 ($(cat "$WORK/err"))"; else
    fail "malformed history: exit $RC, $(cat "$WORK/err")"; fi
cp "$WORK/history.good" "$SYN/history.jsonl"
sed -i '3s/.*/[1,2]/' "$SYN/convergence.jsonl"
run_report "$SYN"
if [ "$RC" = 2 ] && grep -qF 'convergence.jsonl:3: not a JSON object' "$WORK/err"; then
    pass "malformed convergence.jsonl refused with exit 2"; else fail "malformed convergence: exit $RC"; fi
run_report "$WORK/no-such-dir"
check "missing run directory: exit 2" [ "$RC" = 2 ]
mkdir -p "$WORK/empty-run"
run_report "$WORK/empty-run"
if [ "$RC" = 2 ] && grep -qF 'history.jsonl' "$WORK/err"; then pass "missing history.jsonl: exit 2"; else fail "missing history: exit $RC"; fi
: >"$WORK/empty-run/history.jsonl"
run_report "$WORK/empty-run"
check "empty history: exit 2" [ "$RC" = 2 ]
"$REPORT" --max-points x "$SYN" >/dev/null 2>&1
check "bad option value: exit 2" [ $? = 2 ]

# ---------------------------------------------------------------- size: 10,000 operations
BIG=$WORK/big
mkdir -p "$BIG"
gen_history 10000 120 >"$BIG/history.jsonl"
run_report "$BIG"
size=$(stat -c %s "$BIG/report.html" 2>/dev/null || echo 0)
if [ "$RC" = 0 ] && [ "$size" -gt 0 ] && [ "$size" -lt 2000000 ]; then
    pass "10,000-op run: $size bytes (< 2 MB)"; else fail "10,000-op run: exit $RC, $size bytes"; fi
check "no summary at all: said so, no badge colour" grep -qF 'badge unknown' "$BIG/report.html"

# ---------------------------------------------------------------- a stored run, when present
STORED=$ROOT/jepsen/out/suite-20261121-020158/partition-halves-set
if [ -s "$STORED/history.jsonl" ]; then
    mkdir -p "$WORK/stored"
    cp "$STORED/history.jsonl" "$WORK/stored/"
    for f in summary.txt check.txt convergence.jsonl; do
        [ -f "$STORED/$f" ] && cp "$STORED/$f" "$WORK/stored/"
    done
    run_report "$WORK/stored"
    R=$WORK/stored/report.html
    size=$(stat -c %s "$R" 2>/dev/null || echo 0)
    if [ "$RC" = 0 ] && [ "$size" -lt 2000000 ]; then pass "stored run $STORED: $size bytes"; else
        fail "stored run: exit $RC, $size bytes, $(cat "$WORK/err")"; fi
    at_least "stored run: latency points" "<circle " "$R" 1000
    at_least "stored run: shaded faults" 'class="fault"' "$R" 2
    check "stored run: badge" grep -qE '<span class="badge (valid|invalid)">' "$R"
else
    echo "SKIP: no stored run at $STORED (a fresh clone): the synthetic runs above cover it"
fi

echo "report-selftest: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
