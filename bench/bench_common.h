/*
 * bench_common — the parts that cairn-bench and etcd-bench share, so that both tools measure,
 * round and print alike (scripts/bench-node.sh and scripts/bench-cluster.sh read the lines of
 * both): the monotonic clock and a splitmix64 generator, the log-linear latency histogram
 * and its quantiles, per-operation statistics, the text and JSON result report, option
 * parsing helpers that exit on a bad value, and small socket helpers for the event engines.
 *
 * Nothing here allocates but bench_u64set_add and bench_xrealloc. The report and option
 * functions write to stdout/stderr; the program name in option errors is the one given to
 * bench_set_prog_name (bench_die and bench_xrealloc take it as an argument).
 */
#ifndef CAIRN_BENCH_COMMON_H
#define CAIRN_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ clock and randomness */

uint64_t bench_now_ns(void);      /* CLOCK_MONOTONIC */
void bench_sleep_ns(long ns);
double bench_cpu_seconds(void);   /* user + system CPU of this process */

/* splitmix64: one state word per thread, good enough for key choice. */
uint64_t bench_rng_next(uint64_t *state);
/* Uniform in [0, 1): the top 53 bits of the next number. */
double bench_rng_unit(uint64_t *state);

/* ------------------------------------------------------------------ latency histogram
 *
 * Log-linear: 64 sub-buckets per power of two of nanoseconds (at most 1.6% error), 0..127 ns
 * exact, up to ~2^41 ns (about 36 min); larger values land in the last bucket. */

#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_LINEAR (2u * BENCH_HIST_SUB)
#define BENCH_HIST_MAX_SHIFT 34
#define BENCH_HIST_BUCKETS ((BENCH_HIST_MAX_SHIFT + 2) * BENCH_HIST_SUB)

typedef struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t n, max_ns;
    double sum_ns;
} bench_hist_t;

void bench_hist_record(bench_hist_t *h, uint64_t ns);
void bench_hist_merge(bench_hist_t *into, const bench_hist_t *from);
/* The value at quantile q (0..1]: the top of the bucket holding the ceil(q*n)-th sample,
 * never above the exact maximum; 0 for an empty histogram. */
uint64_t bench_hist_quantile(const bench_hist_t *h, double q);

/* ------------------------------------------------------------------ per-operation results */

#define BENCH_MAX_ERR_SLOTS 16  /* room for each program's error slots (slot 0: ok, unused) */

typedef struct bench_op_stats {
    bench_hist_t hist;                  /* successful operations (notfound gets included) */
    uint64_t errors[BENCH_MAX_ERR_SLOTS];
    uint64_t notfound;
} bench_op_stats_t;

/* What a program's results are called: its operations, which one is the get (its lines
 * carry `notfound`), and its error slots (1..n_err_slots-1 are errors). */
typedef struct bench_report {
    const char *const *op_names;
    unsigned n_ops;
    unsigned get_op;
    const char *const *err_names;
    unsigned n_err_slots;               /* <= BENCH_MAX_ERR_SLOTS */
} bench_report_t;

uint64_t bench_errors_total(const bench_report_t *rep, const bench_op_stats_t *s);

/* One phase's result as text lines on stdout: a header with the elapsed time and client CPU
 * per operation (over ops_done), then per operation with samples or errors its count,
 * throughput, p50/p95/p99/p99.9, max, mean and errors, and a line naming the errors. */
void bench_print_text(const bench_report_t *rep, const char *phase, double elapsed_s,
                      double client_cpu_s, uint64_t ops_done, const bench_op_stats_t *totals);
/* The same as one JSON object on stdout (no newline). */
void bench_print_json_phase(const bench_report_t *rep, double elapsed_s, double client_cpu_s,
                            uint64_t ops_done, const bench_op_stats_t *totals);
/* s as a JSON string on stdout, quoted and escaped. */
void bench_json_string(const char *s);

/* ------------------------------------------------------------------ options
 * Each prints "<prog>: <opt>: <why>, got '<s>' (see --help)" and exits 2 on a bad value. */

void bench_set_prog_name(const char *prog);  /* kept, not copied: a string literal */
void bench_bad_option(const char *opt, const char *why, const char *got);
uint64_t bench_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max);
/* A quorum option: one, quorum, all, default (libcairn's CAIRN_Q_* values) or a number in
 * [1, max]; anything else exits with a clear message (bench_bad_option). */
uint32_t bench_parse_quorum(const char *opt, const char *s, uint32_t max);

/* The value of hex digit c (either case), or -1. */
int bench_hex_digit(char c);

/* ------------------------------------------------------------------ errors and memory
 * For the tools that name themselves in their messages (the jepsen programs: each passes its
 * own name, usually through a one-line macro). */

/* Prints "<prog>: <message>\n" to stderr and exits 2. */
void bench_die(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* realloc(p, n), n == 0 taken as 1; out of memory: bench_die(prog, "out of memory (N bytes)"). */
void *bench_xrealloc(const char *prog, void *p, size_t n);

/* A growable array of unsigned integers, made a sorted set by bench_u64set_normalize (the
 * jepsen client's and checker's element sets). Zero-initialise; free v when done. */
typedef struct bench_u64set {
    uint64_t *v;
    size_t n, cap;
} bench_u64set_t;
void bench_u64set_add(bench_u64set_t *s, uint64_t x);  /* appends (aborts when out of memory) */
void bench_u64set_normalize(bench_u64set_t *s);        /* sorts and drops duplicates */
double bench_parse_double(const char *opt, const char *s, double min_excl, double max);

/* ------------------------------------------------------------------ sockets */

void bench_tune_socket(int fd);  /* TCP_NODELAY */
/* Starts a non-blocking connect to addr: 0 connected, 1 in progress (*fd_out set either
 * way, owned by the caller), -1 failed (why set, no descriptor left open). */
int bench_open_nonblocking(const struct sockaddr_storage *addr, socklen_t addr_len, int *fd_out,
                           char *why, size_t why_len);
/* Appends src to the NUL-terminated text in dst[0..cap), truncating. */
void bench_append_text(char *dst, size_t cap, const char *src);

#endif
