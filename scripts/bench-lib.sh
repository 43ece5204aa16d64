# shellcheck shell=bash
# bench-lib.sh — measurement helpers shared by scripts/bench-node.sh and
# scripts/bench-cluster.sh (sourced, not run). The caller defines log(), die(), NCPU,
# RUN_LIMIT and OUT before using them.

cpu_ticks() {  # cpu_ticks <pid...>: utime+stime of whole processes (every thread), summed, in clock ticks
    local pid s total=0
    for pid in "$@"; do
        s=$(cat "/proc/$pid/stat") || die "process $pid is gone"
        s=${s##*) }          # drop "pid (comm) "; comm may hold spaces
        # shellcheck disable=SC2086
        set -- $s            # now $1 is field 3 (state): utime is field 14 -> $12, stime $13
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

steal_ticks() {  # time the hypervisor gave to others (all CPUs, clock ticks)
    awk '$1 == "cpu" { print $9; exit }' /proc/stat
}

per_op() {  # per_op <delta> <scale> <ops>: delta * scale / ops with 2 decimals
    awk -v d="$1" -v k="$2" -v n="$3" 'BEGIN { printf "%.2f", (n > 0 ? d * k / n : 0) }'
}

pin_servers() {  # pin_servers <mode> <pid...>: every thread to CPU 0, or back to all CPUs
    local cpus=0 pid mode=$1
    shift
    [ "$mode" = pinned ] || cpus="0-$((NCPU - 1))"
    for pid in "$@"; do taskset -apc "$cpus" "$pid" >/dev/null; done
}

# Runs a load generator under `time` (its own user+sys CPU seconds -> <out>.time), pinned
# to CPU 0 in pinned mode, bounded by RUN_LIMIT.
timed_load() {  # timed_load <mode> <out-prefix> <command...>
    local mode=$1 out=$2
    shift 2
    local pin=()
    [ "$mode" = pinned ] && pin=(taskset -c 0)
    local TIMEFORMAT='%U %S'
    { time "${pin[@]}" timeout "$RUN_LIMIT" "$@" >"$out.out" 2>"$out.err"; } 2>"$out.time" || {
        log "load run failed (exit $?): $* (see $out.err)"
        return 1
    }
}

fnum() {  # the number after token <key> on the line of <op> in a cairn-bench/etcd-bench text output
    awk -v op="$2" -v key="$3" '$1 == op { for (i = 2; i < NF; i++) if ($i == key) { print $(i+1); exit } }' "$1"
}

client_cpu_us_per_op() {  # <time-file> <ops>
    awk -v ops="$2" '{ printf "%.2f", (ops > 0 ? ($1 + $2) * 1e6 / ops : 0) }' "$1"
}

# One row of $OUT/results.tsv (the columns are the caller's; see its header comment).
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$OUT/results.tsv"; }
