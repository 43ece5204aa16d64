/*
 * cairn-bench — `cairn-bench`, a load generator for Cairn (or Riak) over libcairn
 * (client/cairn.h). It owns: option parsing, the worker threads (one blocking connection
 * each), key choice (uniform or Zipfian), the per-thread latency histograms and their merge,
 * the progress line and the text/JSON result report.
 *
 *   cairn-bench [options] put|get|mixed|update|load       (cairn-bench --help for the list)
 *
 * Workloads: put (blind writes), get, mixed (--ratio G:P), update (get, then put with the
 * context the get returned), load (write every key of the key space once, then stop).
 * --preload runs `load` before the timed workload so gets hit. Every wait is bounded: the
 * run by --duration or --ops, each request by --timeout-ms, connection retries by a short
 * sleep. Ctrl-C stops the run early and still prints the results.
 *
 * Latency: each thread records every operation into its own log-linear histogram (64
 * sub-buckets per power of two of nanoseconds: at most 1.6% error, fixed 18 KiB per
 * operation type); the main thread merges them after the threads have joined, so nothing is
 * shared on the hot path but two relaxed counters per thread for the progress line.
 */
#include "client/cairn.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PROG "cairn-bench"

/* ------------------------------------------------------------------ bounds */

#define MAX_CONCURRENCY 1024
#define MAX_KEYS 1000000000ull          /* keys are "key:%012u" */
#define MAX_VALUE_SIZE (64u << 20)
#define MAX_DURATION_S 86400.0
#define MAX_OPS 1000000000000ull
#define MAX_TIMEOUT_MS 3600000u
#define MAX_N_VAL 1024u
#define MAX_RATIO_PART 1000000u
#define KEY_BUF 32
#define ZIPF_MAX_TRIES 1000             /* rejection sampling gives up (returns k) after this */
#define RETRY_SLEEP_NS 10000000L        /* after a connection-class error: 10 ms */
#define ERRMSG_LEN 160

/* ------------------------------------------------------------------ time and randomness */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

/* splitmix64: one state word per thread, good enough for key choice. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_double(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------------ Zipf sampler
 *
 * Rejection-inversion sampling (W. Hörmann and G. Derflinger, "Rejection-inversion to
 * generate variates from monotone discrete distributions", 1996), as in Apache Commons RNG:
 * O(1) setup and O(1) expected time per sample for any key-space size and exponent s > 0.
 * Returns a rank in [1, n]; rank 1 is the most popular. */

typedef struct zipf {
    double n, s;
    double h_integral_x1, h_integral_n, threshold;
} zipf_t;

static double zipf_helper1(double x) /* log1p(x) / x, stable near 0 */
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double zipf_helper2(double x) /* expm1(x) / x, stable near 0 */
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

static double zipf_h(const zipf_t *z, double x)
{
    return exp(-z->s * log(x));
}

static double zipf_h_integral(const zipf_t *z, double x)
{
    double log_x = log(x);
    return zipf_helper2((1.0 - z->s) * log_x) * log_x;
}

static double zipf_h_integral_inverse(const zipf_t *z, double x)
{
    double t = x * (1.0 - z->s);
    if (t < -1.0)
        t = -1.0; /* rounding can push it just below */
    return exp(zipf_helper1(t) * x);
}

static void zipf_init(zipf_t *z, uint64_t n, double s)
{
    z->n = (double)n;
    z->s = s;
    z->h_integral_x1 = zipf_h_integral(z, 1.5) - 1.0;
    z->h_integral_n = zipf_h_integral(z, z->n + 0.5);
    z->threshold = 2.0 - zipf_h_integral_inverse(z, zipf_h_integral(z, 2.5) - zipf_h(z, 2.0));
}

static uint64_t zipf_sample(const zipf_t *z, uint64_t *rng)
{
    double k = 1.0;
    for (int tries = 0; tries < ZIPF_MAX_TRIES; tries++) {
        double u = z->h_integral_n + rng_double(rng) * (z->h_integral_x1 - z->h_integral_n);
        double x = zipf_h_integral_inverse(z, u);
        k = floor(x + 0.5);
        if (k < 1.0)
            k = 1.0;
        else if (k > z->n)
            k = z->n;
        if (k - x <= z->threshold || u >= zipf_h_integral(z, k + 0.5) - zipf_h(z, k))
            break;
    }
    return (uint64_t)k;
}

/* ------------------------------------------------------------------ latency histogram */

#define HIST_SUB_BITS 6                                /* 64 sub-buckets per octave */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB)                    /* 0..127 ns are exact */
#define HIST_MAX_SHIFT 34                              /* up to ~2^41 ns (about 36 min) */
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_SUB)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n, max_ns;
    double sum_ns;
} hist_t;

static unsigned hist_index(uint64_t ns)
{
    if (ns < HIST_LINEAR)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT)
        return HIST_BUCKETS - 1;
    return (shift + 1) * HIST_SUB + (unsigned)((ns >> shift) - HIST_SUB);
}

/* The highest value that falls in bucket i. */
static uint64_t hist_bucket_top(unsigned i)
{
    if (i < HIST_LINEAR)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t sub = i % HIST_SUB + HIST_SUB;
    return ((sub + 1) << shift) - 1;
}

static void hist_record(hist_t *h, uint64_t ns)
{
    h->counts[hist_index(ns)]++;
    h->n++;
    h->sum_ns += (double)ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

static void hist_merge(hist_t *into, const hist_t *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

/* The value at quantile q (0..1]: the top of the bucket holding the ceil(q*n)-th sample,
 * never above the exact maximum. */
static uint64_t hist_quantile(const hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_top(i);
            return top < h->max_ns ? top : h->max_ns;
        }
    }
    return h->max_ns;
}

/* ------------------------------------------------------------------ operations and errors */

typedef enum { OP_GET, OP_PUT, OP_UPDATE, OP_COUNT } op_t;
static const char *const op_names[OP_COUNT] = {"get", "put", "update"};

typedef enum { WL_PUT, WL_GET, WL_MIXED, WL_UPDATE, WL_LOAD } workload_t;
static const char *const workload_names[] = {"put", "get", "mixed", "update", "load"};

/* Error slots: -code for CAIRN_E* (1..12); the last slot for codes this program does not
 * know. Slot 0 is unused (CAIRN_OK); CAIRN_ENOTFOUND on a get is counted as `notfound`, not
 * as an error. */
#define ERR_SLOTS 14
#define ERR_UNKNOWN (ERR_SLOTS - 1)
static const char *const err_names[ERR_SLOTS] = {
    "ok", "notfound", "einval", "econnect", "eio", "timeout", "server",
    "proto", "nomem", "overload", "modified", "exists", "toobig", "other"};

static unsigned err_slot(int code)
{
    return (code < 0 && -code < ERR_UNKNOWN) ? (unsigned)-code : ERR_UNKNOWN;
}

typedef struct op_stats {
    hist_t hist;                    /* successful operations (and notfound gets) */
    uint64_t errors[ERR_SLOTS];
    uint64_t notfound;
} op_stats_t;

/* ------------------------------------------------------------------ configuration */

typedef struct bench_cfg {
    const char *hosts;
    workload_t workload;
    unsigned ratio_get, ratio_put;
    uint64_t keys;
    bool zipf;
    double zipf_s;
    size_t value_size;
    unsigned concurrency;
    double duration_s;              /* 0 with ops > 0: run by count */
    uint64_t ops;
    bool preload;
    const char *bucket, *type;
    uint32_t n_val, r, w;           /* 0: not given */
    bool per_request;               /* send n_val/r/w on each request instead of the bucket */
    uint32_t timeout_ms;
    bool json, quiet;
    uint64_t seed;
} bench_cfg_t;

/* ------------------------------------------------------------------ worker threads */

typedef struct worker {
    pthread_t thread;
    unsigned id;
    cairn_t *conn;                  /* owned by main; used only by this worker during a phase */
    uint64_t rng;
    unsigned char *value;           /* cfg.value_size bytes, owned by the worker */
    op_stats_t stats[OP_COUNT];
    _Atomic uint64_t progress_ops, progress_errors;  /* read by the progress line */
    _Atomic uint64_t end_ns;        /* when this worker's phase ended; 0 while it runs */
    char first_error[ERRMSG_LEN];   /* first error seen, for the report ("" if none) */
} worker_t;

static bench_cfg_t cfg;
static zipf_t zipf_dist;
static atomic_bool stop_requested; /* the deadline passed, or a signal came */
static atomic_bool signalled;      /* SIGINT/SIGTERM: stop early, still report */
static _Atomic uint64_t ops_issued;  /* with --ops: operations handed out so far */
static workload_t phase_workload;    /* what the running phase does (load or cfg.workload) */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&signalled, true);
    atomic_store(&stop_requested, true);
}

static uint64_t pick_key(worker_t *wk)
{
    if (!cfg.zipf)
        return rng_next(&wk->rng) % cfg.keys;
    /* Spread the popular ranks over the key space instead of the first keys: multiplication
     * by a prime larger than MAX_KEYS is a bijection modulo keys. */
    uint64_t rank = zipf_sample(&zipf_dist, &wk->rng) - 1;
    return (rank * 2654435761ull) % cfg.keys;
}

static cairn_buf_t key_buf(char *buf, uint64_t k)
{
    int len = snprintf(buf, KEY_BUF, "key:%012" PRIu64, k);
    return (cairn_buf_t){buf, (size_t)len};
}

static void note_error(worker_t *wk, op_t op, int code)
{
    wk->stats[op].errors[err_slot(code)]++;
    atomic_fetch_add_explicit(&wk->progress_errors, 1, memory_order_relaxed);
    if (wk->first_error[0] == '\0') {
        const char *detail = cairn_errmsg(wk->conn);
        snprintf(wk->first_error, sizeof wk->first_error, "%s %s%s%s", op_names[op],
                 cairn_strerror(code), detail && detail[0] ? ": " : "", detail ? detail : "");
    }
    if (code == CAIRN_ECONNECT || code == CAIRN_EIO)
        sleep_ns(RETRY_SLEEP_NS); /* do not spin against a node that is down */
}

static void fill_request_opts(cairn_get_opts_t *go, cairn_put_opts_t *po)
{
    memset(go, 0, sizeof *go);
    memset(po, 0, sizeof *po);
    go->type = po->type = cfg.type;
    go->timeout_ms = po->timeout_ms = cfg.timeout_ms;
    if (cfg.per_request) {
        go->n_val = po->n_val = cfg.n_val;
        go->r = cfg.r;
        po->w = cfg.w;
    }
}

/* One get; returns the object through *out (may be NULL) when the caller wants it. */
static int do_get(worker_t *wk, const cairn_get_opts_t *go, cairn_buf_t bucket, cairn_buf_t key,
                  cairn_object_t **keep)
{
    cairn_object_t *obj = NULL;
    uint64_t t0 = now_ns();
    int rc = cairn_get(wk->conn, bucket, key, go, &obj);
    uint64_t t1 = now_ns();
    if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND) {
        hist_record(&wk->stats[OP_GET].hist, t1 - t0);
        if (rc == CAIRN_ENOTFOUND)
            wk->stats[OP_GET].notfound++;
    } else {
        note_error(wk, OP_GET, rc);
    }
    if (keep)
        *keep = obj;
    else
        cairn_object_free(obj);
    return rc;
}

static int do_put(worker_t *wk, const cairn_put_opts_t *po, cairn_buf_t bucket, cairn_buf_t key)
{
    uint64_t t0 = now_ns();
    int rc = cairn_put(wk->conn, bucket, key, (cairn_buf_t){wk->value, cfg.value_size}, po, NULL);
    uint64_t t1 = now_ns();
    if (rc == CAIRN_OK)
        hist_record(&wk->stats[OP_PUT].hist, t1 - t0);
    else
        note_error(wk, OP_PUT, rc);
    return rc;
}

/* Get, then put with the context the get returned (none if the key was missing). */
static void do_update(worker_t *wk, const cairn_get_opts_t *go, cairn_buf_t bucket,
                      cairn_buf_t key)
{
    uint64_t t0 = now_ns();
    cairn_object_t *obj = NULL;
    int rc = do_get(wk, go, bucket, key, &obj);
    if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND) {
        wk->stats[OP_UPDATE].errors[err_slot(rc)]++; /* do_get has counted it for progress */
        cairn_object_free(obj);
        return;
    }
    cairn_get_opts_t unused;
    cairn_put_opts_t po;
    fill_request_opts(&unused, &po);
    if (obj)
        po.context = obj->context; /* borrowed from obj until it is freed below */
    rc = do_put(wk, &po, bucket, key);
    cairn_object_free(obj);
    if (rc == CAIRN_OK)
        hist_record(&wk->stats[OP_UPDATE].hist, now_ns() - t0);
    else
        wk->stats[OP_UPDATE].errors[err_slot(rc)]++; /* do_put has counted it */
}

static bool may_issue_one_more(void)
{
    if (atomic_load_explicit(&stop_requested, memory_order_relaxed))
        return false;
    if (cfg.ops == 0 || phase_workload == WL_LOAD)
        return true;
    return atomic_fetch_add_explicit(&ops_issued, 1, memory_order_relaxed) < cfg.ops;
}

static void *worker_main(void *arg)
{
    worker_t *wk = arg;
    cairn_get_opts_t go;
    cairn_put_opts_t po;
    fill_request_opts(&go, &po);
    cairn_buf_t bucket = {cfg.bucket, strlen(cfg.bucket)};
    char kbuf[KEY_BUF];
    unsigned ratio_sum = cfg.ratio_get + cfg.ratio_put;

    if (phase_workload == WL_LOAD) {
        /* Worker i writes keys i, i+C, i+2C, ...: every key once, spread over the workers. */
        for (uint64_t k = wk->id; k < cfg.keys && may_issue_one_more(); k += cfg.concurrency) {
            if (do_put(wk, &po, bucket, key_buf(kbuf, k)) == CAIRN_OK)
                atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
        }
        atomic_store(&wk->end_ns, now_ns());
        return NULL;
    }

    while (may_issue_one_more()) {
        cairn_buf_t key = key_buf(kbuf, pick_key(wk));
        int rc;
        switch (phase_workload) {
        case WL_PUT:
            rc = do_put(wk, &po, bucket, key);
            break;
        case WL_GET:
            rc = do_get(wk, &go, bucket, key, NULL);
            break;
        case WL_MIXED:
            if (rng_next(&wk->rng) % ratio_sum < cfg.ratio_get)
                rc = do_get(wk, &go, bucket, key, NULL);
            else
                rc = do_put(wk, &po, bucket, key);
            break;
        default: /* WL_UPDATE */
            do_update(wk, &go, bucket, key);
            rc = CAIRN_OK;
            break;
        }
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
            atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
    }
    atomic_store(&wk->end_ns, now_ns());
    return NULL;
}

/* ------------------------------------------------------------------ one phase */

typedef struct phase_result {
    double elapsed_s;
    double client_cpu_s;
    op_stats_t total[OP_COUNT];     /* merged over workers */
} phase_result_t;

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t sum_progress(worker_t *ws, unsigned n, uint64_t *errors)
{
    uint64_t ops = 0, errs = 0;
    for (unsigned i = 0; i < n; i++) {
        ops += atomic_load_explicit(&ws[i].progress_ops, memory_order_relaxed);
        errs += atomic_load_explicit(&ws[i].progress_errors, memory_order_relaxed);
    }
    *errors = errs;
    return ops;
}

/* Runs `wl` on every worker until it ends (duration, count, key space, or a signal). */
static int run_phase(worker_t *ws, workload_t wl, phase_result_t *res)
{
    memset(res, 0, sizeof *res);
    phase_workload = wl;
    atomic_store(&ops_issued, 0);
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        memset(ws[i].stats, 0, sizeof ws[i].stats);
        atomic_store(&ws[i].progress_ops, 0);
        atomic_store(&ws[i].progress_errors, 0);
        atomic_store(&ws[i].end_ns, 0);
    }

    double cpu0 = cpu_seconds();
    uint64_t t0 = now_ns();
    unsigned started = 0;
    for (; started < cfg.concurrency; started++) {
        if (pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]) != 0) {
            fprintf(stderr, PROG ": cannot start worker thread %u\n", started);
            atomic_store(&stop_requested, true);
            break;
        }
    }

    /* Progress once a second; stop at the deadline (duration mode). A count-bound or load
     * phase ends when every worker has returned, which the loop notices via `finished`. */
    uint64_t deadline = (wl != WL_LOAD && cfg.duration_s > 0)
                            ? t0 + (uint64_t)(cfg.duration_s * 1e9)
                            : UINT64_MAX;
    uint64_t last_ops = 0, last_t = t0, next_tick = t0 + 1000000000ull;
    uint64_t t_stop = UINT64_MAX; /* when the deadline or a signal stopped the phase */
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline)
            atomic_store(&stop_requested, true);
        if (atomic_load(&stop_requested)) {
            t_stop = now;
            break;
        }
        bool finished = true;
        for (unsigned i = 0; i < started && finished; i++)
            finished = atomic_load(&ws[i].end_ns) != 0;
        if (finished)
            break;
        if (now >= next_tick) {
            uint64_t errs, ops = sum_progress(ws, started, &errs);
            if (!cfg.quiet)
                fprintf(stderr, "[%5.0fs] %-6s %10.0f ops/s  total %" PRIu64 "  errors %" PRIu64
                                "\n",
                        (double)(now - t0) / 1e9, workload_names[wl],
                        (double)(ops - last_ops) * 1e9 / (double)(now - last_t), ops, errs);
            last_ops = ops;
            last_t = now;
            next_tick += 1000000000ull;
        }
        uint64_t wake = next_tick < deadline ? next_tick : deadline;
        uint64_t nap = wake > now ? wake - now : 0;
        sleep_ns((long)(nap < 20000000ull ? nap : 20000000ull)); /* <= 20 ms: notice ends */
    }
    uint64_t t_end = t0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        uint64_t end = atomic_load(&ws[i].end_ns);
        if (end > t_end)
            t_end = end;
        for (int op = 0; op < OP_COUNT; op++) {
            hist_merge(&res->total[op].hist, &ws[i].stats[op].hist);
            res->total[op].notfound += ws[i].stats[op].notfound;
            for (unsigned e = 0; e < ERR_SLOTS; e++)
                res->total[op].errors[e] += ws[i].stats[op].errors[e];
        }
    }
    /* Throughput is over the measured window: requests still in flight when it closed
     * (at most one per connection) are counted, but a straggler that needs its whole
     * timeout does not stretch the window. */
    if (t_end > t_stop)
        t_end = t_stop;
    res->elapsed_s = (double)(t_end - t0) / 1e9;
    res->client_cpu_s = cpu_seconds() - cpu0;
    return started < cfg.concurrency ? -1 : 0;
}

/* ------------------------------------------------------------------ report */

static uint64_t errors_total(const op_stats_t *s)
{
    uint64_t n = 0;
    for (unsigned e = 1; e < ERR_SLOTS; e++)
        n += s->errors[e];
    return n;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static const double quantiles[] = {0.50, 0.95, 0.99, 0.999};
static const char *const quantile_names[] = {"p50", "p95", "p99", "p99.9"};
static const char *const quantile_keys[] = {"p50", "p95", "p99", "p999"}; /* JSON */
#define N_QUANTILES 4

static uint64_t ops_done(const phase_result_t *r)
{
    /* update counts its get and put inside; the operations a user asked for are updates */
    if (r->total[OP_UPDATE].hist.n || errors_total(&r->total[OP_UPDATE]))
        return r->total[OP_UPDATE].hist.n;
    return r->total[OP_GET].hist.n + r->total[OP_PUT].hist.n;
}

static void print_text(const char *phase, const phase_result_t *r)
{
    printf("%s: %.2f s, client cpu %.1f us/op\n", phase, r->elapsed_s,
           ops_done(r) ? r->client_cpu_s * 1e6 / (double)ops_done(r) : 0.0);
    for (int op = 0; op < OP_COUNT; op++) {
        const op_stats_t *s = &r->total[op];
        uint64_t errs = errors_total(s);
        if (s->hist.n == 0 && errs == 0)
            continue;
        printf("%-6s ops %" PRIu64 "  ops/s %.0f ", op_names[op], s->hist.n,
               r->elapsed_s > 0 ? (double)s->hist.n / r->elapsed_s : 0.0);
        for (int q = 0; q < N_QUANTILES; q++)
            printf(" %s %.3f", quantile_names[q], ms(hist_quantile(&s->hist, quantiles[q])));
        printf("  max %.3f  mean %.3f ms  errors %" PRIu64, ms(s->hist.max_ns),
               s->hist.n ? s->hist.sum_ns / (double)s->hist.n / 1e6 : 0.0, errs);
        if (op == OP_GET)
            printf("  notfound %" PRIu64, s->notfound);
        printf("\n");
        if (errs) {
            printf("%-6s errors:", op_names[op]);
            for (unsigned e = 1; e < ERR_SLOTS; e++)
                if (s->errors[e])
                    printf(" %s %" PRIu64, err_names[e], s->errors[e]);
            printf("\n");
        }
    }
}

static void json_string(const char *s)
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

static void print_json_phase(const phase_result_t *r)
{
    uint64_t done = ops_done(r);
    printf("{\"elapsed_s\":%.3f,\"client_cpu_us_per_op\":%.2f,\"ops\":{", r->elapsed_s,
           done ? r->client_cpu_s * 1e6 / (double)done : 0.0);
    bool first = true;
    for (int op = 0; op < OP_COUNT; op++) {
        const op_stats_t *s = &r->total[op];
        uint64_t errs = errors_total(s);
        if (s->hist.n == 0 && errs == 0)
            continue;
        printf("%s\"%s\":{\"count\":%" PRIu64 ",\"ops_per_s\":%.1f", first ? "" : ",",
               op_names[op], s->hist.n,
               r->elapsed_s > 0 ? (double)s->hist.n / r->elapsed_s : 0.0);
        first = false;
        for (int q = 0; q < N_QUANTILES; q++)
            printf(",\"%s_us\":%.1f", quantile_keys[q],
                   (double)hist_quantile(&s->hist, quantiles[q]) / 1e3);
        printf(",\"max_us\":%.1f,\"mean_us\":%.1f,\"notfound\":%" PRIu64 ",\"errors\":{",
               (double)s->hist.max_ns / 1e3,
               s->hist.n ? s->hist.sum_ns / (double)s->hist.n / 1e3 : 0.0, s->notfound);
        bool first_err = true;
        for (unsigned e = 1; e < ERR_SLOTS; e++) {
            if (!s->errors[e])
                continue;
            printf("%s\"%s\":%" PRIu64, first_err ? "" : ",", err_names[e], s->errors[e]);
            first_err = false;
        }
        printf("}}");
    }
    printf("}}");
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *to)
{
    fprintf(to,
"usage: " PROG " [options] put|get|mixed|update|load\n"
"\n"
"Drives a Cairn (or Riak) node through libcairn and reports ops/s and latency per operation.\n"
"Workloads:\n"
"  put      blind writes (no context) of --value-size bytes\n"
"  get      reads (use --preload so they hit)\n"
"  mixed    gets and puts in the ratio --ratio G:P (default 9:1)\n"
"  update   read-modify-write: a get, then a put with the context the get returned\n"
"  load     writes every key of the key space once, then stops (what --preload runs)\n"
"Options:\n"
"  -h, --hosts H:P[,H:P..]  nodes (default 127.0.0.1:8087; failover in list order)\n"
"  -c, --concurrency C      client threads, one connection each (default 50, max %d)\n"
"      --duration S         run for S seconds (default 10; max 86400)\n"
"  -n, --ops N              run N operations in total instead of for a duration\n"
"      --keys N             key space size, keys key:000000000000.. (default 100000)\n"
"      --dist uniform|zipf  key popularity (default uniform)\n"
"      --zipf-s S           Zipf exponent, 0 < S <= 10 (default 0.99)\n"
"      --value-size B       value bytes (default 100, max 64 MiB)\n"
"      --ratio G:P          mixed: gets to puts (default 9:1)\n"
"      --preload            write every key once before the timed run\n"
"      --bucket B           bucket (default \"bench\")\n"
"      --type T             bucket type (default: none sent, i.e. \"default\")\n"
"      --n-val N, --r R, --w W\n"
"                           replication and quorums (R, W: a number or one, quorum, all,\n"
"                           default). Set once on the bucket with cairn_bucket_set before\n"
"                           the run (they stay set afterwards), or with --per-request sent\n"
"                           on every request instead\n"
"      --per-request        see above\n"
"      --timeout-ms MS      per request (default 10000)\n"
"      --seed N             random seed (default: time-based)\n"
"      --json               one JSON object on stdout instead of text\n"
"  -q, --quiet              no progress line on stderr\n"
"      --help               this text\n"
"Output: a progress line once a second on stderr; at the end, per operation: count, ops/s,\n"
"latency p50/p95/p99/p99.9/max/mean in ms and errors by code; plus the client's own CPU time\n"
"per operation. Exit status: 0 if the run completed (even with request errors), 1 on a setup\n"
"failure (no connection, bucket properties refused), 2 on bad options.\n",
            MAX_CONCURRENCY);
}

static void bad_option(const char *opt, const char *why, const char *got)
{
    fprintf(stderr, PROG ": %s: %s, got '%s' (see --help)\n", opt, why, got);
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    char why[96];
    snprintf(why, sizeof why, "expected an integer in [%" PRIu64 ", %" PRIu64 "]", min, max);
    if (!s || !*s || *s == '-' || *s == '+')
        bad_option(opt, why, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        bad_option(opt, why, s);
    return v;
}

static double parse_double(const char *opt, const char *s, double min_excl, double max)
{
    char *end;
    char why[96];
    snprintf(why, sizeof why, "expected a number in (%g, %g]", min_excl, max);
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v > min_excl) || !(v <= max))
        bad_option(opt, why, s);
    return v;
}

static uint32_t parse_quorum(const char *opt, const char *s)
{
    if (strcmp(s, "one") == 0)
        return CAIRN_Q_ONE;
    if (strcmp(s, "quorum") == 0)
        return CAIRN_Q_QUORUM;
    if (strcmp(s, "all") == 0)
        return CAIRN_Q_ALL;
    if (strcmp(s, "default") == 0)
        return CAIRN_Q_DEFAULT;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v < 1 || v > MAX_N_VAL)
        bad_option(opt, "expected a number in [1, 1024] or one, quorum, all, default", s);
    return (uint32_t)v;
}

static void parse_ratio(const char *s)
{
    unsigned g, p;
    char tail;
    if (sscanf(s, "%u:%u%c", &g, &p, &tail) != 2 || g > MAX_RATIO_PART || p > MAX_RATIO_PART ||
        g + p == 0)
        bad_option("--ratio", "expected G:P, two integers (not both 0), e.g. 9:1", s);
    cfg.ratio_get = g;
    cfg.ratio_put = p;
}

static void parse_args(int argc, char **argv)
{
    enum {
        O_DURATION = 1000, O_KEYS, O_DIST, O_ZIPF_S, O_VALUE_SIZE, O_RATIO, O_PRELOAD, O_BUCKET,
        O_TYPE, O_N_VAL, O_R, O_W, O_PER_REQUEST, O_TIMEOUT, O_SEED, O_JSON, O_HELP
    };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, 'h'},
        {"host", required_argument, NULL, 'h'},
        {"concurrency", required_argument, NULL, 'c'},
        {"ops", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"duration", required_argument, NULL, O_DURATION},
        {"keys", required_argument, NULL, O_KEYS},
        {"dist", required_argument, NULL, O_DIST},
        {"zipf-s", required_argument, NULL, O_ZIPF_S},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"ratio", required_argument, NULL, O_RATIO},
        {"preload", no_argument, NULL, O_PRELOAD},
        {"bucket", required_argument, NULL, O_BUCKET},
        {"type", required_argument, NULL, O_TYPE},
        {"n-val", required_argument, NULL, O_N_VAL},
        {"r", required_argument, NULL, O_R},
        {"w", required_argument, NULL, O_W},
        {"per-request", no_argument, NULL, O_PER_REQUEST},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    cfg = (bench_cfg_t){
        .hosts = "127.0.0.1:8087", .ratio_get = 9, .ratio_put = 1, .keys = 100000,
        .zipf_s = 0.99, .value_size = 100, .concurrency = 50, .duration_s = 10.0,
        .bucket = "bench", .timeout_ms = 10000, .seed = 0,
    };
    bool duration_given = false;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h:c:n:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            if (!*optarg)
                bad_option("--hosts", "expected host:port[,host:port...]", optarg);
            cfg.hosts = optarg;
            break;
        case 'c': cfg.concurrency = (unsigned)parse_u64("--concurrency", optarg, 1, MAX_CONCURRENCY); break;
        case 'n': cfg.ops = parse_u64("--ops", optarg, 1, MAX_OPS); break;
        case 'q': cfg.quiet = true; break;
        case O_DURATION:
            cfg.duration_s = parse_double("--duration", optarg, 0.0, MAX_DURATION_S);
            duration_given = true;
            break;
        case O_KEYS: cfg.keys = parse_u64("--keys", optarg, 1, MAX_KEYS); break;
        case O_DIST:
            if (strcmp(optarg, "uniform") == 0)
                cfg.zipf = false;
            else if (strcmp(optarg, "zipf") == 0)
                cfg.zipf = true;
            else
                bad_option("--dist", "expected uniform or zipf", optarg);
            break;
        case O_ZIPF_S: cfg.zipf_s = parse_double("--zipf-s", optarg, 0.0, 10.0); break;
        case O_VALUE_SIZE: cfg.value_size = (size_t)parse_u64("--value-size", optarg, 0, MAX_VALUE_SIZE); break;
        case O_RATIO: parse_ratio(optarg); break;
        case O_PRELOAD: cfg.preload = true; break;
        case O_BUCKET:
            if (!*optarg)
                bad_option("--bucket", "expected a non-empty name", optarg);
            cfg.bucket = optarg;
            break;
        case O_TYPE:
            if (!*optarg)
                bad_option("--type", "expected a non-empty name", optarg);
            cfg.type = optarg;
            break;
        case O_N_VAL: cfg.n_val = (uint32_t)parse_u64("--n-val", optarg, 1, MAX_N_VAL); break;
        case O_R: cfg.r = parse_quorum("--r", optarg); break;
        case O_W: cfg.w = parse_quorum("--w", optarg); break;
        case O_PER_REQUEST: cfg.per_request = true; break;
        case O_TIMEOUT: cfg.timeout_ms = (uint32_t)parse_u64("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS); break;
        case O_SEED: cfg.seed = parse_u64("--seed", optarg, 0, UINT64_MAX); break;
        case O_JSON: cfg.json = true; break;
        case O_HELP: usage(stdout); exit(0);
        case ':':
            fprintf(stderr, PROG ": %s needs a value (see --help)\n", argv[optind - 1]);
            exit(2);
        default:
            fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", argv[optind - 1]);
            exit(2);
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one workload (put, get, mixed, update or load)%s\n",
                optind < argc - 1 ? ", got more than one argument" : "");
        usage(stderr);
        exit(2);
    }
    const char *wl = argv[optind];
    bool known = false;
    for (size_t i = 0; i < sizeof workload_names / sizeof *workload_names; i++) {
        if (strcmp(wl, workload_names[i]) == 0) {
            cfg.workload = (workload_t)i;
            known = true;
        }
    }
    if (!known)
        bad_option("workload", "expected put, get, mixed, update or load", wl);
    if (cfg.ops && duration_given) {
        fprintf(stderr, PROG ": give --duration or --ops, not both\n");
        exit(2);
    }
    if (cfg.ops)
        cfg.duration_s = 0;
    if (cfg.per_request && !cfg.n_val && !cfg.r && !cfg.w) {
        fprintf(stderr, PROG ": --per-request needs --n-val, --r or --w\n");
        exit(2);
    }
    if (cfg.seed == 0)
        cfg.seed = now_ns() ^ ((uint64_t)getpid() << 32);
}

/* ------------------------------------------------------------------ setup and main */

static void set_bucket_props(cairn_t *conn)
{
    if (cfg.per_request || (!cfg.n_val && !cfg.r && !cfg.w))
        return;
    cairn_bucket_props_t props = {0};
    if (cfg.n_val) {
        props.fields |= CAIRN_PROP_N_VAL;
        props.n_val = cfg.n_val;
    }
    if (cfg.r) {
        props.fields |= CAIRN_PROP_R;
        props.r = cfg.r;
    }
    if (cfg.w) {
        props.fields |= CAIRN_PROP_W;
        props.w = cfg.w;
    }
    int rc = cairn_bucket_set(conn, cfg.type, (cairn_buf_t){cfg.bucket, strlen(cfg.bucket)},
                              &props);
    if (rc != CAIRN_OK) {
        fprintf(stderr, PROG ": setting the properties of bucket '%s': %s%s%s\n", cfg.bucket,
                cairn_strerror(rc), cairn_errmsg(conn)[0] ? ": " : "", cairn_errmsg(conn));
        exit(1);
    }
}

static void print_header(FILE *to)
{
    fprintf(to, "%s: %s against %s, %u connections, %" PRIu64 " keys (%s", PROG,
            workload_names[cfg.workload], cfg.hosts, cfg.concurrency, cfg.keys,
            cfg.zipf ? "zipf" : "uniform");
    if (cfg.zipf)
        fprintf(to, " s=%g", cfg.zipf_s);
    fprintf(to, "), %zu-byte values", cfg.value_size);
    if (cfg.workload == WL_MIXED)
        fprintf(to, ", ratio %u:%u", cfg.ratio_get, cfg.ratio_put);
    if (cfg.ops)
        fprintf(to, ", %" PRIu64 " ops", cfg.ops);
    else if (cfg.workload != WL_LOAD)
        fprintf(to, ", %.1f s", cfg.duration_s);
    if (cfg.n_val || cfg.r || cfg.w)
        fprintf(to, ", n_val=%u r=%u w=%u (%s)", cfg.n_val, cfg.r, cfg.w,
                cfg.per_request ? "per request" : "bucket properties");
    fprintf(to, "\n");
}

static void print_first_errors(const worker_t *ws)
{
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        if (ws[i].first_error[0]) {
            fprintf(stderr, PROG ": first error (connection %u): %s\n", i, ws[i].first_error);
            return;
        }
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (cfg.zipf)
        zipf_init(&zipf_dist, cfg.keys, cfg.zipf_s);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    worker_t *ws = calloc(cfg.concurrency, sizeof *ws);
    if (!ws) {
        fprintf(stderr, PROG ": out of memory for %u workers\n", cfg.concurrency);
        return 1;
    }
    cairn_opts_t copts = {.connect_timeout_ms = 2000, .timeout_ms = cfg.timeout_ms};
    uint64_t seed_state = cfg.seed;
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        ws[i].id = i;
        ws[i].rng = rng_next(&seed_state);
        ws[i].value = malloc(cfg.value_size ? cfg.value_size : 1);
        if (!ws[i].value) {
            fprintf(stderr, PROG ": out of memory for values\n");
            return 1;
        }
        for (size_t b = 0; b < cfg.value_size; b++)
            ws[i].value[b] = (unsigned char)rng_next(&ws[i].rng);
        int rc = cairn_connect(cfg.hosts, &copts, &ws[i].conn);
        if (rc != CAIRN_OK) {
            fprintf(stderr, PROG ": connecting to %s (connection %u): %s\n", cfg.hosts, i,
                    cairn_strerror(rc));
            return 1;
        }
    }
    set_bucket_props(ws[0].conn);
    if (!cfg.json)
        print_header(stdout);
    if (!cfg.quiet)
        print_header(stderr);

    phase_result_t preload = {0}, run = {0};
    bool have_preload = cfg.preload && cfg.workload != WL_LOAD;
    if (have_preload) {
        if (run_phase(ws, WL_LOAD, &preload) != 0)
            return 1;
        if (!cfg.json)
            print_text("preload", &preload);
    }
    if (!atomic_load(&signalled) && run_phase(ws, cfg.workload, &run) != 0)
        return 1;
    bool interrupted = atomic_load(&signalled);

    if (cfg.json) {
        printf("{\"tool\":\"" PROG "\",\"workload\":");
        json_string(workload_names[cfg.workload]);
        printf(",\"hosts\":");
        json_string(cfg.hosts);
        printf(",\"bucket\":");
        json_string(cfg.bucket);
        printf(",\"concurrency\":%u,\"keys\":%" PRIu64 ",\"dist\":\"%s\",\"zipf_s\":%g,"
               "\"value_size\":%zu,\"n_val\":%u,\"r\":%u,\"w\":%u,\"per_request\":%s,"
               "\"interrupted\":%s",
               cfg.concurrency, cfg.keys, cfg.zipf ? "zipf" : "uniform", cfg.zipf_s,
               cfg.value_size, cfg.n_val, cfg.r, cfg.w, cfg.per_request ? "true" : "false",
               interrupted ? "true" : "false");
        if (cfg.workload == WL_MIXED)
            printf(",\"ratio\":\"%u:%u\"", cfg.ratio_get, cfg.ratio_put);
        if (have_preload) {
            printf(",\"preload\":");
            print_json_phase(&preload);
        }
        printf(",\"run\":");
        print_json_phase(&run);
        printf("}\n");
    } else {
        print_text(cfg.workload == WL_LOAD ? "load" : "run", &run);
        if (interrupted)
            printf("(interrupted before the end)\n");
    }
    print_first_errors(ws);
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        cairn_close(ws[i].conn);
        free(ws[i].value);
    }
    free(ws);
    return 0;
}
