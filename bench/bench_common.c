/*
 * bench_common — the clock, randomness, latency histogram, result report, option helpers,
 * error and memory helpers and socket helpers shared by cairn-bench and etcd-bench and the
 * jepsen tools (see bench_common.h).
 */
#include "bench/bench_common.h"

#include "client/cairn.h" /* the CAIRN_Q_* quorum values */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ clock and randomness */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

uint64_t bench_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double bench_rng_unit(uint64_t *state)
{
    return (double)(bench_rng_next(state) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------------ latency histogram */

static unsigned hist_index(uint64_t ns)
{
    if (ns < BENCH_HIST_LINEAR)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = msb - BENCH_HIST_SUB_BITS;
    if (shift > BENCH_HIST_MAX_SHIFT)
        return BENCH_HIST_BUCKETS - 1;
    return (shift + 1) * BENCH_HIST_SUB + (unsigned)((ns >> shift) - BENCH_HIST_SUB);
}

/* The highest value that falls in bucket i. */
static uint64_t hist_bucket_top(unsigned i)
{
    if (i < BENCH_HIST_LINEAR)
        return i;
    unsigned shift = i / BENCH_HIST_SUB - 1;
    uint64_t sub = i % BENCH_HIST_SUB + BENCH_HIST_SUB;
    return ((sub + 1) << shift) - 1;
}

void bench_hist_record(bench_hist_t *h, uint64_t ns)
{
    h->counts[hist_index(ns)]++;
    h->n++;
    h->sum_ns += (double)ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void bench_hist_merge(bench_hist_t *into, const bench_hist_t *from)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

uint64_t bench_hist_quantile(const bench_hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_top(i);
            return top < h->max_ns ? top : h->max_ns;
        }
    }
    return h->max_ns;
}

/* ------------------------------------------------------------------ report */

static const double quantiles[] = {0.50, 0.95, 0.99, 0.999};
static const char *const quantile_names[] = {"p50", "p95", "p99", "p99.9"};
static const char *const quantile_keys[] = {"p50", "p95", "p99", "p999"}; /* JSON */
#define N_QUANTILES 4

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

uint64_t bench_errors_total(const bench_report_t *rep, const bench_op_stats_t *s)
{
    uint64_t n = 0;
    for (unsigned e = 1; e < rep->n_err_slots; e++)
        n += s->errors[e];
    return n;
}

void bench_print_text(const bench_report_t *rep, const char *phase, double elapsed_s,
                      double client_cpu_s, uint64_t ops_done, const bench_op_stats_t *totals)
{
    printf("%s: %.2f s, client cpu %.1f us/op\n", phase, elapsed_s,
           ops_done ? client_cpu_s * 1e6 / (double)ops_done : 0.0);
    for (unsigned op = 0; op < rep->n_ops; op++) {
        const bench_op_stats_t *s = &totals[op];
        uint64_t errs = bench_errors_total(rep, s);
        if (s->hist.n == 0 && errs == 0)
            continue;
        printf("%-6s ops %" PRIu64 "  ops/s %.0f ", rep->op_names[op], s->hist.n,
               elapsed_s > 0 ? (double)s->hist.n / elapsed_s : 0.0);
        for (int q = 0; q < N_QUANTILES; q++)
            printf(" %s %.3f", quantile_names[q], ms(bench_hist_quantile(&s->hist, quantiles[q])));
        printf("  max %.3f  mean %.3f ms  errors %" PRIu64, ms(s->hist.max_ns),
               s->hist.n ? s->hist.sum_ns / (double)s->hist.n / 1e6 : 0.0, errs);
        if (op == rep->get_op)
            printf("  notfound %" PRIu64, s->notfound);
        printf("\n");
        if (errs) {
            printf("%-6s errors:", rep->op_names[op]);
            for (unsigned e = 1; e < rep->n_err_slots; e++)
                if (s->errors[e])
                    printf(" %s %" PRIu64, rep->err_names[e], s->errors[e]);
            printf("\n");
        }
    }
}

void bench_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

void bench_print_json_phase(const bench_report_t *rep, double elapsed_s, double client_cpu_s,
                            uint64_t ops_done, const bench_op_stats_t *totals)
{
    printf("{\"elapsed_s\":%.3f,\"client_cpu_us_per_op\":%.2f,\"ops\":{", elapsed_s,
           ops_done ? client_cpu_s * 1e6 / (double)ops_done : 0.0);
    bool first = true;
    for (unsigned op = 0; op < rep->n_ops; op++) {
        const bench_op_stats_t *s = &totals[op];
        uint64_t errs = bench_errors_total(rep, s);
        if (s->hist.n == 0 && errs == 0)
            continue;
        printf("%s\"%s\":{\"count\":%" PRIu64 ",\"ops_per_s\":%.1f", first ? "" : ",",
               rep->op_names[op], s->hist.n,
               elapsed_s > 0 ? (double)s->hist.n / elapsed_s : 0.0);
        first = false;
        for (int q = 0; q < N_QUANTILES; q++)
            printf(",\"%s_us\":%.1f", quantile_keys[q],
                   (double)bench_hist_quantile(&s->hist, quantiles[q]) / 1e3);
        printf(",\"max_us\":%.1f,\"mean_us\":%.1f,\"notfound\":%" PRIu64 ",\"errors\":{",
               (double)s->hist.max_ns / 1e3,
               s->hist.n ? s->hist.sum_ns / (double)s->hist.n / 1e3 : 0.0, s->notfound);
        bool first_err = true;
        for (unsigned e = 1; e < rep->n_err_slots; e++) {
            if (!s->errors[e])
                continue;
            printf("%s\"%s\":%" PRIu64, first_err ? "" : ",", rep->err_names[e], s->errors[e]);
            first_err = false;
        }
        printf("}}");
    }
    printf("}}");
}

/* ------------------------------------------------------------------ options */

static const char *prog_name = "bench";

void bench_set_prog_name(const char *prog)
{
    prog_name = prog;
}

void bench_bad_option(const char *opt, const char *why, const char *got)
{
    fprintf(stderr, "%s: %s: %s, got '%s' (see --help)\n", prog_name, opt, why, got);
    exit(2);
}

uint64_t bench_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    char why[96];
    snprintf(why, sizeof why, "expected an integer in [%" PRIu64 ", %" PRIu64 "]", min, max);
    if (!s || !*s || *s == '-' || *s == '+')
        bench_bad_option(opt, why, s ? s : "");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max)
        bench_bad_option(opt, why, s);
    return v;
}

double bench_parse_double(const char *opt, const char *s, double min_excl, double max)
{
    char *end;
    char why[96];
    snprintf(why, sizeof why, "expected a number in (%g, %g]", min_excl, max);
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > min_excl) || !(v <= max))
        bench_bad_option(opt, why, s);
    return v;
}

/* ------------------------------------------------------------------ sockets */

void bench_tune_socket(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int bench_open_nonblocking(const struct sockaddr_storage *addr, socklen_t addr_len, int *fd_out,
                           char *why, size_t why_len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)addr, addr_len) == 0) {
        *fd_out = fd;
        return 0;
    }
    if (errno == EINPROGRESS) {
        *fd_out = fd;
        return 1;
    }
    snprintf(why, why_len, "%s", strerror(errno));
    close(fd);
    return -1;
}

void bench_append_text(char *dst, size_t cap, const char *src)
{
    size_t used = strlen(dst), n = strlen(src);
    if (used + 1 >= cap)
        return;
    if (n > cap - 1 - used)
        n = cap - 1 - used;
    memcpy(dst + used, src, n);
    dst[used + n] = '\0';
}

uint32_t bench_parse_quorum(const char *opt, const char *s, uint32_t max)
{
    if (strcmp(s, "one") == 0)
        return CAIRN_Q_ONE;
    if (strcmp(s, "quorum") == 0)
        return CAIRN_Q_QUORUM;
    if (strcmp(s, "all") == 0)
        return CAIRN_Q_ALL;
    if (strcmp(s, "default") == 0)
        return CAIRN_Q_DEFAULT;
    char why[96];
    snprintf(why, sizeof why, "expected a number in [1, %u] or one, quorum, all, default", max);
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v < 1 || v > max)
        bench_bad_option(opt, why, s);
    return (uint32_t)v;
}

int bench_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void bench_die(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void *bench_xrealloc(const char *prog, void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        bench_die(prog, "out of memory (%zu bytes)", n);
    return q;
}

void bench_u64set_add(bench_u64set_t *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_u64set_normalize(bench_u64set_t *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    size_t w = 1;
    for (size_t r = 1; r < s->n; r++)
        if (s->v[r] != s->v[w - 1])
            s->v[w++] = s->v[r];
    s->n = w;
}
