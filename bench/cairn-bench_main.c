/*
 * cairn-bench — `cairn-bench`, a load generator for Cairn (or Riak) over Riak's protocol
 * buffers API. It owns: option parsing, the blocking engine and the Riak side of the event
 * engine (bench/event_engine.c runs its connections), key choice (uniform or Zipfian), the
 * per-thread latency histograms and their merge, the progress line and the text/JSON result
 * report.
 *
 *   cairn-bench [options] put|get|mixed|update|load       (cairn-bench --help for the list)
 *
 * Engines:
 *   - event (the default): --threads T loop threads (default 1), each running epoll over its
 *     share of the -c connections: non-blocking sockets, one request outstanding per
 *     connection (send, read the whole answer, send the next; no pipelining), run by
 *     bench/event_engine.c (shared with etcd-bench), requests and answers framed by
 *     bench/pb_frames.c. The same kind of load generator as
 *     redis-benchmark (one thread, an event loop over its connections, -P 1), so that a
 *     comparison with Redis measures the servers rather than the load generators.
 *   - blocking: one thread per connection, each making blocking libcairn calls
 *     (client/cairn.h). It exercises libcairn, and costs a thread wake-up per request.
 * Both build the same requests (the same cairn_get_opts_t / cairn_put_opts_t, see
 * fill_request_opts) and count the same outcomes the same way.
 *
 * Workloads: put (blind writes), get, mixed (--ratio G:P), update (get, then put with the
 * context the get returned), load (write every key of the key space once, then stop).
 * --preload runs `load` before the timed workload so gets hit. Every wait is bounded: the
 * run by --duration or --ops, each request by --timeout-ms (plus 1 s of grace, as libcairn),
 * each connection attempt by 2 s, connection retries by a 10 ms pause. Ctrl-C stops the run
 * early and still prints the results.
 *
 * Latency: each thread records every operation into its own log-linear histogram (64
 * sub-buckets per power of two of nanoseconds: at most 1.6% error, fixed 18 KiB per
 * operation type); the main thread merges them after the threads have joined, so nothing is
 * shared on the hot path but two relaxed counters per thread for the progress line.
 *
 * Acknowledged writes: with --ack-log FILE every put's outcome (acknowledged, or failed with
 * its error) goes to FILE with a digest of the value sent (bench/ack_log.h), for cairn-check
 * to verify later; --unique-values makes every put's value unique and derivable from the key,
 * the connection and the connection's put count (fill_unique_value).
 */
#include "bench/ack_log.h"
#include "bench/bench_common.h"
#include "bench/event_engine.h"
#include "bench/pb_frames.h"
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG "cairn-bench"

/* ------------------------------------------------------------------ bounds */

#define MAX_CONCURRENCY 1024
#define MAX_THREADS MAX_CONCURRENCY
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
#define ERRMSG_LEN 256                  /* the first error, as reported */
#define DETAIL_LEN 512                  /* an error's details while it is formatted */
#define CONNECT_TIMEOUT_MS 2000u        /* per node tried (libcairn) */
#define SERVER_TIMEOUT_GRACE_NS 1000000000ull /* libcairn waits the request timeout + 1 s */
#define MAX_ANSWER_BYTES (64u << 20)    /* libcairn's default max_frame_bytes */
#define DEFAULT_PORT "8087"
/* ------------------------------------------------------------------ time and randomness */

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
        double u = z->h_integral_n + bench_rng_unit(rng) * (z->h_integral_x1 - z->h_integral_n);
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

typedef bench_op_stats_t op_stats_t;
_Static_assert(ERR_SLOTS <= BENCH_MAX_ERR_SLOTS, "bench_op_stats_t has room for every slot");

/* How the report names this program's operations and errors. */
static const bench_report_t report = {op_names, OP_COUNT, OP_GET, err_names, ERR_SLOTS};


/* ------------------------------------------------------------------ configuration */

typedef enum { ENGINE_EVENT, ENGINE_BLOCKING } engine_t;
static const char *const engine_names[] = {"event", "blocking"};

typedef struct bench_cfg {
    const char *hosts;
    workload_t workload;
    engine_t engine;
    unsigned threads;               /* event engine: loop threads */
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
    const char *ack_log_path;       /* --ack-log: NULL when not given */
    bool unique_values;             /* --unique-values */
} bench_cfg_t;

/* ------------------------------------------------------------------ worker threads */

/* One thread of either engine. The blocking engine has one per connection (conn); the event
 * engine one per loop (eng.loops[id], whose user it is). */
typedef struct worker {
    pthread_t thread;
    unsigned id;
    uint64_t rng;
    unsigned char *value;           /* cfg.value_size bytes, owned by the worker */
    op_stats_t stats[OP_COUNT];
    _Atomic uint64_t progress_ops, progress_errors;  /* read by the progress line */
    _Atomic uint64_t end_ns;        /* when this worker's phase ended; 0 while it runs */
    char first_error[ERRMSG_LEN];   /* first error seen, for the report ("" if none) */
    unsigned first_error_conn;      /* the connection it happened on */
    ack_buf_t acks;                 /* --ack-log: this thread's records not yet written */
    uint64_t puts_made;             /* blocking engine, --unique-values: puts so far */
    cairn_t *conn;                  /* blocking engine: owned by main; used only by this
                                     * worker during a phase */
} worker_t;

static bench_cfg_t cfg;
static zipf_t zipf_dist;
static atomic_bool stop_requested; /* the deadline passed, or a signal came */
static atomic_bool signalled;      /* SIGINT/SIGTERM: stop early, still report */
static _Atomic uint64_t ops_issued;  /* with --ops: operations handed out so far */
static workload_t phase_workload;    /* what the running phase does (load or cfg.workload) */
static cairn_get_opts_t get_opts;    /* what every get sends (fill_request_opts) */
static cairn_put_opts_t put_opts;    /* what every put sends; an update's put adds context */
static ack_log_t *ack_log;           /* --ack-log: the file, shared by the workers */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&signalled, true);
    atomic_store(&stop_requested, true);
}

static uint64_t pick_key(uint64_t *rng)
{
    if (!cfg.zipf)
        return bench_rng_next(rng) % cfg.keys;
    /* Spread the popular ranks over the key space instead of the first keys: multiplication
     * by a prime larger than MAX_KEYS is a bijection modulo keys. */
    uint64_t rank = zipf_sample(&zipf_dist, rng) - 1;
    return (rank * 2654435761ull) % cfg.keys;
}

static cairn_buf_t key_buf(char *buf, uint64_t k)
{
    int len = snprintf(buf, KEY_BUF, "key:%012" PRIu64, k);
    return (cairn_buf_t){buf, (size_t)len};
}

/* --unique-values: the value of the serial-th put of connection `conn` to `key`, into value
 * (cfg.value_size bytes): the text "<key> c<conn> #<serial> s<seed> ", then bytes of a
 * splitmix64 stream seeded with that text's digest (both truncated to the value size). No two
 * puts of one run share a value unless the values are shorter than the text. */
static void fill_unique_value(unsigned char *value, const char *key, size_t key_len,
                              unsigned conn, uint64_t serial)
{
    char head[KEY_BUF + 80];
    int n = snprintf(head, sizeof head, "%.*s c%u #%" PRIu64 " s%016" PRIx64 " ", (int)key_len,
                     key, conn, serial, cfg.seed);
    size_t head_len = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t used = head_len < cfg.value_size ? head_len : cfg.value_size;
    memcpy(value, head, used);
    uint64_t state = ack_digest(head, head_len);
    while (used < cfg.value_size) {
        uint64_t r = bench_rng_next(&state);
        size_t take = cfg.value_size - used < sizeof r ? cfg.value_size - used : sizeof r;
        memcpy(value + used, &r, take);
        used += take;
    }
}

/* --ack-log: records the outcome of one put (code CAIRN_OK: acknowledged) of a value with
 * `digest` to `key`, started at t_start_ms (wall clock). */
static void log_put(worker_t *wk, int code, int64_t t_start_ms, const char *key, size_t key_len,
                    uint64_t digest)
{
    ack_rec_t r = {
        .acked = code == CAIRN_OK, .t_start_ms = t_start_ms, .t_end_ms = ack_now_ms(),
        .type = cfg.type, .type_len = cfg.type ? strlen(cfg.type) : 0,
        .bucket = cfg.bucket, .bucket_len = strlen(cfg.bucket), .key = key, .key_len = key_len,
        .value_len = cfg.value_size, .digest = digest,
        .error = code == CAIRN_OK ? NULL : err_names[err_slot(code)],
    };
    ack_log_record(ack_log, &wk->acks, &r); /* a failure is reported once, at the end */
}

/* Counts a failed request of type `op` on connection `conn_id`; the first one's text is kept
 * for the report. */
static void count_error(worker_t *wk, unsigned conn_id, op_t op, int code, const char *detail)
{
    wk->stats[op].errors[err_slot(code)]++;
    atomic_fetch_add_explicit(&wk->progress_errors, 1, memory_order_relaxed);
    if (wk->first_error[0] == '\0') {
        snprintf(wk->first_error, sizeof wk->first_error, "%s %s%s%s", op_names[op],
                 cairn_strerror(code), detail && detail[0] ? ": " : "", detail ? detail : "");
        wk->first_error_conn = conn_id;
    }
}

/* The options of every request, for both engines: the bucket type, the per-request timeout
 * (sent to the server) and, with --per-request, n_val/r/w. */
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

static bool may_issue_one_more(void)
{
    if (atomic_load_explicit(&stop_requested, memory_order_relaxed))
        return false;
    if (cfg.ops == 0 || phase_workload == WL_LOAD)
        return true;
    return atomic_fetch_add_explicit(&ops_issued, 1, memory_order_relaxed) < cfg.ops;
}

/* The next operation of a get/put/mixed/update workload (not load). */
static op_t pick_op(uint64_t *rng)
{
    switch (phase_workload) {
    case WL_PUT:
        return OP_PUT;
    case WL_GET:
        return OP_GET;
    case WL_MIXED:
        return bench_rng_next(rng) % (cfg.ratio_get + cfg.ratio_put) < cfg.ratio_get
                   ? OP_GET
                   : OP_PUT;
    default:
        return OP_UPDATE;
    }
}

/* ------------------------------------------------------------------ blocking engine */

static void note_error(worker_t *wk, op_t op, int code)
{
    count_error(wk, wk->id, op, code, cairn_errmsg(wk->conn));
    if (code == CAIRN_ECONNECT || code == CAIRN_EIO)
        bench_sleep_ns(RETRY_SLEEP_NS); /* do not spin against a node that is down */
}

/* One get; returns the object through *keep (may be NULL) when the caller wants it. */
static int do_get(worker_t *wk, const cairn_get_opts_t *go, cairn_buf_t bucket, cairn_buf_t key,
                  cairn_object_t **keep)
{
    cairn_object_t *obj = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = cairn_get(wk->conn, bucket, key, go, &obj);
    uint64_t t1 = bench_now_ns();
    if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND) {
        bench_hist_record(&wk->stats[OP_GET].hist, t1 - t0);
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
    if (cfg.unique_values)
        fill_unique_value(wk->value, key.data, key.len, wk->id, wk->puts_made++);
    int64_t t_start_ms = ack_log ? ack_now_ms() : 0;
    uint64_t t0 = bench_now_ns();
    int rc = cairn_put(wk->conn, bucket, key, (cairn_buf_t){wk->value, cfg.value_size}, po, NULL);
    uint64_t t1 = bench_now_ns();
    if (ack_log)
        log_put(wk, rc, t_start_ms, key.data, key.len, ack_digest(wk->value, cfg.value_size));
    if (rc == CAIRN_OK)
        bench_hist_record(&wk->stats[OP_PUT].hist, t1 - t0);
    else
        note_error(wk, OP_PUT, rc);
    return rc;
}

/* Get, then put with the context the get returned (none if the key was missing). Returns
 * CAIRN_OK or the error that ended it. */
static int do_update(worker_t *wk, cairn_buf_t bucket, cairn_buf_t key)
{
    uint64_t t0 = bench_now_ns();
    cairn_object_t *obj = NULL;
    int rc = do_get(wk, &get_opts, bucket, key, &obj);
    if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND) {
        wk->stats[OP_UPDATE].errors[err_slot(rc)]++; /* do_get has counted it for progress */
        cairn_object_free(obj);
        return rc;
    }
    cairn_put_opts_t po = put_opts;
    if (obj)
        po.context = obj->context; /* borrowed from obj until it is freed below */
    rc = do_put(wk, &po, bucket, key);
    cairn_object_free(obj);
    if (rc == CAIRN_OK)
        bench_hist_record(&wk->stats[OP_UPDATE].hist, bench_now_ns() - t0);
    else
        wk->stats[OP_UPDATE].errors[err_slot(rc)]++; /* do_put has counted it */
    return rc;
}

static void *blocking_worker_main(void *arg)
{
    worker_t *wk = arg;
    cairn_buf_t bucket = {cfg.bucket, strlen(cfg.bucket)};
    char kbuf[KEY_BUF];

    if (phase_workload == WL_LOAD) {
        /* Worker i writes keys i, i+C, i+2C, ...: every key once, spread over the workers. */
        for (uint64_t k = wk->id; k < cfg.keys && may_issue_one_more(); k += cfg.concurrency) {
            if (do_put(wk, &put_opts, bucket, key_buf(kbuf, k)) == CAIRN_OK)
                atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
        }
        if (ack_log)
            ack_buf_flush(ack_log, &wk->acks);
        atomic_store(&wk->end_ns, bench_now_ns());
        return NULL;
    }

    while (may_issue_one_more()) {
        cairn_buf_t key = key_buf(kbuf, pick_key(&wk->rng));
        int rc;
        switch (pick_op(&wk->rng)) {
        case OP_PUT:
            rc = do_put(wk, &put_opts, bucket, key);
            break;
        case OP_GET:
            rc = do_get(wk, &get_opts, bucket, key, NULL);
            break;
        default:
            rc = do_update(wk, bucket, key);
            break;
        }
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
            atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
    }
    if (ack_log)
        ack_buf_flush(ack_log, &wk->acks);
    atomic_store(&wk->end_ns, bench_now_ns());
    return NULL;
}

/* ------------------------------------------------------------------ event engine
 *
 * The connections, their connecting, failover and deadlines are bench/event_engine.c's;
 * here are the Riak PB requests and answers (framed by bench/pb_frames.c) and their
 * counting. --hosts is resolved once at setup, with libcairn's syntax (host[:port],
 * [v6addr][:port] or a bare IPv6 address; the port defaults to 8087); every connection
 * starts at the first node, and a connection that reconnects starts at the node after the
 * one it was connected to (failover).
 *
 * An update is a get and then a put on the same connection, with the vclock of the get. The
 * outcome of every request is counted exactly as the blocking engine counts libcairn's
 * return codes: an RpbErrorResp maps to its code and keeps the connection; a broken
 * connection is CAIRN_EIO (then a 10 ms pause), no connectable node CAIRN_ECONNECT (same
 * pause), no answer within the request timeout + 1 s CAIRN_ETIMEOUT, a malformed answer
 * CAIRN_EPROTO; the last three close the connection. */

#define EV_READ_CHUNK 16384u            /* free space offered to the recv after a break */

/* What cairn-bench keeps per connection: the engine's user state (zeroed at setup). */
typedef struct ev_conn {
    pbf_frame_t frame;              /* the answer ev_parse found (points into the conn's in) */
    pbf_buf_t context;              /* update: the vclock the get returned (owned) */
    op_t op;                        /* the request in flight: OP_GET or OP_PUT */
    bool updating;                  /* the request is part of an update */
    uint64_t t_update_ns;           /* when the update started */
    char key[KEY_BUF];
    size_t key_len;
    uint64_t next_load_key;         /* load: this connection writes id, id+C, id+2C, ... */
    uint64_t puts_made;             /* --unique-values: puts so far */
    int64_t put_start_ms;           /* --ack-log: the put in flight (0: none) and ... */
    uint64_t put_digest;            /* ... its value's digest */
} ev_conn_t;

static ee_engine_t eng;             /* the event engine's loops and connections */
static cairn_buf_t bench_bucket;

static ev_conn_t *ev_of(const ee_conn_t *c)
{
    return c->user;
}

static worker_t *ev_worker(const ee_conn_t *c)
{
    return c->loop->user;
}

/* ee_ops_t.failed: counts the failed request (and the update it belongs to). */
static void ev_failed(ee_conn_t *c, int code, const char *detail)
{
    ev_conn_t *s = ev_of(c);
    worker_t *wk = ev_worker(c);
    count_error(wk, c->id, s->op, code, detail);
    if (ack_log && s->op == OP_PUT && s->put_start_ms) {
        log_put(wk, code, s->put_start_ms, s->key, s->key_len, s->put_digest);
        s->put_start_ms = 0;
    }
    if (s->updating)
        wk->stats[OP_UPDATE].errors[err_slot(code)]++; /* counted for progress above */
    s->updating = false;
}

/* Frames the request for s->op on s->key into c->out (a put carries `context` if given). */
static int ev_encode(ee_conn_t *c, const pbf_buf_t *context)
{
    ev_conn_t *s = ev_of(c);
    worker_t *wk = ev_worker(c);
    c->out.len = c->out_sent = 0;
    cairn_buf_t key = {s->key, s->key_len};
    if (s->op == OP_GET)
        return pbf_append_get(&c->out, bench_bucket, key, &get_opts);
    cairn_put_opts_t po = put_opts;
    if (context)
        po.context = (cairn_buf_t){context->data, context->len};
    if (cfg.unique_values)
        fill_unique_value(wk->value, s->key, s->key_len, c->id, s->puts_made++);
    if (ack_log) {
        s->put_start_ms = ack_now_ms();
        s->put_digest = ack_digest(wk->value, cfg.value_size);
    }
    return pbf_append_put(&c->out, bench_bucket, key, (cairn_buf_t){wk->value, cfg.value_size},
                          &po);
}

/* ee_ops_t.after_break: a server that refuses a request it will not read to the end
 * answers with an error and closes, and that answer explains the break better than
 * CAIRN_EIO (libcairn does the same). true if such an answer was there. */
static bool ev_answer_after_break(ee_conn_t *c)
{
    if (!pbf_buf_reserve(&c->in, EV_READ_CHUNK))
        return false;
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, MSG_DONTWAIT);
    if (n <= 0)
        return false;
    c->in.len += (size_t)n;
    pbf_frame_t f;
    size_t need;
    if (pbf_parse(c->in.data, c->in.len, MAX_ANSWER_BYTES, &f, &need) != PBF_FRAME ||
        f.code != PBF_ERROR_RESP)
        return false;
    char msg[DETAIL_LEN];
    int code = pbf_error_code(f.body, f.body_len, false, msg, sizeof msg);
    ee_fail(c, code, true, "%s", msg);
    return true;
}

/* ee_ops_t.issue: starts the next operation, or ends the connection's phase when there is
 * none. */
static void ev_issue(ee_conn_t *c)
{
    ev_conn_t *s = ev_of(c);
    worker_t *wk = ev_worker(c);
    uint64_t k;
    s->updating = false;
    if (phase_workload == WL_LOAD) {
        if (s->next_load_key >= cfg.keys || !may_issue_one_more()) {
            ee_done(c);
            return;
        }
        k = s->next_load_key;
        s->next_load_key += cfg.concurrency;
        s->op = OP_PUT;
    } else {
        if (!may_issue_one_more()) {
            ee_done(c);
            return;
        }
        k = pick_key(&wk->rng);
        s->op = pick_op(&wk->rng);
        if (s->op == OP_UPDATE) {
            s->updating = true;
            s->op = OP_GET;
        }
    }
    s->key_len = key_buf(s->key, k).len;
    c->t_req_ns = s->t_update_ns = bench_now_ns();
    int rc = ev_encode(c, NULL);
    if (rc != CAIRN_OK) {
        ee_fail(c, rc, false, "building the request");
        return;
    }
    ee_send(c);
}

/* ee_ops_t.parse: one frame at the start of c->in. */
static ee_parse_t ev_parse(ee_conn_t *c, size_t *answer_len)
{
    ev_conn_t *s = ev_of(c);
    size_t need;
    switch (pbf_parse(c->in.data, c->in.len, MAX_ANSWER_BYTES, &s->frame, &need)) {
    case PBF_NEED_MORE:
        if (need > c->in.len && !pbf_buf_reserve(&c->in, need - c->in.len)) {
            ee_fail(c, CAIRN_ENOMEM, true, "no memory for an answer of %zu bytes", need);
            return EE_PARSE_FAILED;
        }
        return EE_PARSE_NEED_MORE;
    case PBF_BAD_EMPTY:
        ee_fail(c, CAIRN_EPROTO, true, "%s: frame of length 0 (no message code)", ee_label(c));
        return EE_PARSE_FAILED;
    case PBF_BAD_TOO_BIG:
        ee_fail(c, CAIRN_ETOOBIG, true, "%s: answer exceeds %u bytes", ee_label(c),
                MAX_ANSWER_BYTES);
        return EE_PARSE_FAILED;
    case PBF_FRAME:
        break;
    }
    *answer_len = s->frame.frame_len;
    return EE_PARSE_ANSWER;
}

/* ee_ops_t.answer: a complete answer to the request in flight (the frame ev_parse found). */
static void ev_answer(ee_conn_t *c, bool early)
{
    uint64_t t1 = bench_now_ns();
    ev_conn_t *s = ev_of(c);
    worker_t *wk = ev_worker(c);
    const pbf_frame_t *f = &s->frame;
    char msg[DETAIL_LEN];
    if (early) {
        /* Answered before the whole request left: a refusal, and the rest of the request
         * would be read as a new one, so the connection closes. */
        int code = f->code == PBF_ERROR_RESP
                       ? pbf_error_code(f->body, f->body_len, false, msg, sizeof msg)
                       : CAIRN_EPROTO;
        if (f->code != PBF_ERROR_RESP)
            snprintf(msg, sizeof msg, "%s: answer (code %u) before the request was sent",
                     ee_label(c), f->code);
        ee_fail(c, code, true, "%s", msg);
        return;
    }
    if (f->code == PBF_ERROR_RESP) {
        int code = pbf_error_code(f->body, f->body_len, false, msg, sizeof msg);
        ee_fail(c, code, code == CAIRN_EPROTO, "%s", msg);
        return;
    }
    unsigned want = s->op == OP_GET ? PBF_GET_RESP : PBF_PUT_RESP;
    if (f->code != want) {
        ee_fail(c, CAIRN_EPROTO, true, "%s: unexpected message code %u (expected %u)",
                ee_label(c), f->code, want);
        return;
    }
    if (s->op == OP_PUT) {
        /* Like cairn_put with no object wanted: the RpbPutResp body is not decoded. */
        if (ack_log) {
            log_put(wk, CAIRN_OK, s->put_start_ms, s->key, s->key_len, s->put_digest);
            s->put_start_ms = 0;
        }
        bench_hist_record(&wk->stats[OP_PUT].hist, t1 - c->t_req_ns);
        if (s->updating)
            bench_hist_record(&wk->stats[OP_UPDATE].hist, t1 - s->t_update_ns);
        atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
        ev_issue(c);
        return;
    }
    int rc = pbf_get_result(f->body, f->body_len, s->updating ? &s->context : NULL);
    if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND) {
        ee_fail(c, rc, rc == CAIRN_EPROTO, "%s: %s", ee_label(c),
                rc == CAIRN_EPROTO ? "malformed get response" : "no memory for the vclock");
        return;
    }
    bench_hist_record(&wk->stats[OP_GET].hist, t1 - c->t_req_ns);
    if (rc == CAIRN_ENOTFOUND)
        wk->stats[OP_GET].notfound++;
    if (!s->updating) {
        atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
        ev_issue(c);
        return;
    }
    /* The update's put, with the context the get returned (none if the key was missing). */
    s->op = OP_PUT;
    c->t_req_ns = bench_now_ns();
    rc = ev_encode(c, rc == CAIRN_OK ? &s->context : NULL);
    if (rc != CAIRN_OK) {
        ee_fail(c, rc, false, "building the request");
        return;
    }
    ee_send(c);
}

static const ee_ops_t ev_ops = {
    .issue = ev_issue, .parse = ev_parse, .answer = ev_answer, .failed = ev_failed,
    .after_break = ev_answer_after_break,
};

static void *event_loop_main(void *arg)
{
    worker_t *wk = arg;
    ee_loop_t *loop = &eng.loops[wk->id];
    for (unsigned i = 0; i < loop->n_conns; i++)
        ev_of(loop->conns[i])->next_load_key = loop->conns[i]->id;
    ee_loop_run(loop);
    if (ack_log)
        ack_buf_flush(ack_log, &wk->acks);
    atomic_store(&wk->end_ns, bench_now_ns());
    return NULL;
}

/* ------------------------------------------------------------------ one phase */

typedef struct phase_result {
    double elapsed_s;
    double client_cpu_s;
    op_stats_t total[OP_COUNT];     /* merged over workers */
} phase_result_t;

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

static unsigned n_workers; /* threads: one per connection (blocking) or --threads (event) */

/* Runs `wl` on every worker until it ends (duration, count, key space, or a signal). */
static int run_phase(worker_t *ws, workload_t wl, phase_result_t *res)
{
    void *(*thread_main)(void *) =
        cfg.engine == ENGINE_EVENT ? event_loop_main : blocking_worker_main;
    memset(res, 0, sizeof *res);
    phase_workload = wl;
    atomic_store(&ops_issued, 0);
    for (unsigned i = 0; i < n_workers; i++) {
        memset(ws[i].stats, 0, sizeof ws[i].stats);
        atomic_store(&ws[i].progress_ops, 0);
        atomic_store(&ws[i].progress_errors, 0);
        atomic_store(&ws[i].end_ns, 0);
    }

    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    unsigned started = 0;
    for (; started < n_workers; started++) {
        if (pthread_create(&ws[started].thread, NULL, thread_main, &ws[started]) != 0) {
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
        uint64_t now = bench_now_ns();
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
        bench_sleep_ns((long)(nap < 20000000ull ? nap : 20000000ull)); /* <= 20 ms: notice ends */
    }
    uint64_t t_end = t0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        uint64_t end = atomic_load(&ws[i].end_ns);
        if (end > t_end)
            t_end = end;
        for (int op = 0; op < OP_COUNT; op++) {
            bench_hist_merge(&res->total[op].hist, &ws[i].stats[op].hist);
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
    res->client_cpu_s = bench_cpu_seconds() - cpu0;
    return started < n_workers ? -1 : 0;
}
/* ------------------------------------------------------------------ report
 * (the formats themselves are bench_common's, shared with etcd-bench) */

static uint64_t ops_done(const phase_result_t *r)
{
    /* update counts its get and put inside; the operations a user asked for are updates */
    if (r->total[OP_UPDATE].hist.n || bench_errors_total(&report, &r->total[OP_UPDATE]))
        return r->total[OP_UPDATE].hist.n;
    return r->total[OP_GET].hist.n + r->total[OP_PUT].hist.n;
}

static void print_text(const char *phase, const phase_result_t *r)
{
    bench_print_text(&report, phase, r->elapsed_s, r->client_cpu_s, ops_done(r), r->total);
}

static void print_json_phase(const phase_result_t *r)
{
    bench_print_json_phase(&report, r->elapsed_s, r->client_cpu_s, ops_done(r), r->total);
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *to)
{
    fprintf(to,
"usage: " PROG " [options] put|get|mixed|update|load\n"
"\n"
"Drives a Cairn (or Riak) node over Riak's protocol buffers API and reports ops/s and latency\n"
"per operation.\n"
"Workloads:\n"
"  put      blind writes (no context) of --value-size bytes\n"
"  get      reads (use --preload so they hit)\n"
"  mixed    gets and puts in the ratio --ratio G:P (default 9:1)\n"
"  update   read-modify-write: a get, then a put with the context the get returned\n"
"  load     writes every key of the key space once, then stops (what --preload runs)\n"
"Options:\n"
"  -h, --hosts H:P[,H:P..]  nodes (default 127.0.0.1:8087; failover in list order)\n"
"  -c, --concurrency C      connections, each with one request outstanding at a time\n"
"                           (default 50, max %d)\n"
"      --engine event|blocking\n"
"                           event (default): --threads loop threads drive the connections\n"
"                           with non-blocking sockets and epoll, the same kind of load\n"
"                           generator as redis-benchmark, so comparisons measure the\n"
"                           servers; blocking: one thread per connection making libcairn\n"
"                           calls (exercises libcairn, costs a wake-up per request)\n"
"      --threads T          event engine: loop threads, the connections spread over them\n"
"                           (default 1, at most -c)\n"
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
"      --timeout-ms MS      per request, sent to the server; the client waits 1 s longer\n"
"                           (default 10000)\n"
"      --seed N             random seed (default: time-based)\n"
"      --ack-log FILE       write every put's outcome to FILE: acknowledged or failed, with\n"
"                           the key and a digest of the value (for cairn-check)\n"
"      --unique-values      make every put's value unique, derived from the key, the\n"
"                           connection and its put count (the seed included)\n"
"      --json               one JSON object on stdout instead of text\n"
"  -q, --quiet              no progress line on stderr\n"
"      --help               this text\n"
"Output: a progress line once a second on stderr; at the end, per operation: count, ops/s,\n"
"latency p50/p95/p99/p99.9/max/mean in ms and errors by code; plus the client's own CPU time\n"
"per operation. Exit status: 0 if the run completed (even with request errors), 1 on a setup\n"
"failure (no connection, bucket properties refused) or when the --ack-log file could not be\n"
"written in full, 2 on bad options.\n",
            MAX_CONCURRENCY);
}

static uint32_t parse_quorum(const char *opt, const char *s)
{
    return bench_parse_quorum(opt, s, MAX_N_VAL);
}

static void parse_ratio(const char *s)
{
    unsigned g, p;
    char tail;
    if (sscanf(s, "%u:%u%c", &g, &p, &tail) != 2 || g > MAX_RATIO_PART || p > MAX_RATIO_PART ||
        g + p == 0)
        bench_bad_option("--ratio", "expected G:P, two integers (not both 0), e.g. 9:1", s);
    cfg.ratio_get = g;
    cfg.ratio_put = p;
}

static void parse_args(int argc, char **argv)
{
    enum {
        O_DURATION = 1000, O_KEYS, O_DIST, O_ZIPF_S, O_VALUE_SIZE, O_RATIO, O_PRELOAD, O_BUCKET,
        O_TYPE, O_N_VAL, O_R, O_W, O_PER_REQUEST, O_TIMEOUT, O_SEED, O_JSON, O_HELP,
        O_ENGINE, O_THREADS, O_ACK_LOG, O_UNIQUE_VALUES
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
        {"engine", required_argument, NULL, O_ENGINE},
        {"threads", required_argument, NULL, O_THREADS},
        {"ack-log", required_argument, NULL, O_ACK_LOG},
        {"unique-values", no_argument, NULL, O_UNIQUE_VALUES},
        {NULL, 0, NULL, 0},
    };
    cfg = (bench_cfg_t){
        .hosts = "127.0.0.1:8087", .ratio_get = 9, .ratio_put = 1, .keys = 100000,
        .zipf_s = 0.99, .value_size = 100, .concurrency = 50, .duration_s = 10.0,
        .bucket = "bench", .timeout_ms = 10000, .seed = 0, .engine = ENGINE_EVENT, .threads = 1,
    };
    bool duration_given = false, threads_given = false;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h:c:n:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            if (!*optarg)
                bench_bad_option("--hosts", "expected host:port[,host:port...]", optarg);
            cfg.hosts = optarg;
            break;
        case 'c': cfg.concurrency = (unsigned)bench_parse_u64("--concurrency", optarg, 1, MAX_CONCURRENCY); break;
        case 'n': cfg.ops = bench_parse_u64("--ops", optarg, 1, MAX_OPS); break;
        case 'q': cfg.quiet = true; break;
        case O_DURATION:
            cfg.duration_s = bench_parse_double("--duration", optarg, 0.0, MAX_DURATION_S);
            duration_given = true;
            break;
        case O_KEYS: cfg.keys = bench_parse_u64("--keys", optarg, 1, MAX_KEYS); break;
        case O_DIST:
            if (strcmp(optarg, "uniform") == 0)
                cfg.zipf = false;
            else if (strcmp(optarg, "zipf") == 0)
                cfg.zipf = true;
            else
                bench_bad_option("--dist", "expected uniform or zipf", optarg);
            break;
        case O_ZIPF_S: cfg.zipf_s = bench_parse_double("--zipf-s", optarg, 0.0, 10.0); break;
        case O_VALUE_SIZE: cfg.value_size = (size_t)bench_parse_u64("--value-size", optarg, 0, MAX_VALUE_SIZE); break;
        case O_RATIO: parse_ratio(optarg); break;
        case O_PRELOAD: cfg.preload = true; break;
        case O_BUCKET:
            if (!*optarg)
                bench_bad_option("--bucket", "expected a non-empty name", optarg);
            cfg.bucket = optarg;
            break;
        case O_TYPE:
            if (!*optarg)
                bench_bad_option("--type", "expected a non-empty name", optarg);
            cfg.type = optarg;
            break;
        case O_N_VAL: cfg.n_val = (uint32_t)bench_parse_u64("--n-val", optarg, 1, MAX_N_VAL); break;
        case O_R: cfg.r = parse_quorum("--r", optarg); break;
        case O_W: cfg.w = parse_quorum("--w", optarg); break;
        case O_PER_REQUEST: cfg.per_request = true; break;
        case O_TIMEOUT: cfg.timeout_ms = (uint32_t)bench_parse_u64("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS); break;
        case O_SEED: cfg.seed = bench_parse_u64("--seed", optarg, 0, UINT64_MAX); break;
        case O_JSON: cfg.json = true; break;
        case O_HELP: usage(stdout); exit(0);
        case O_ENGINE:
            if (strcmp(optarg, "event") == 0)
                cfg.engine = ENGINE_EVENT;
            else if (strcmp(optarg, "blocking") == 0)
                cfg.engine = ENGINE_BLOCKING;
            else
                bench_bad_option("--engine", "expected event or blocking", optarg);
            break;
        case O_THREADS:
            cfg.threads = (unsigned)bench_parse_u64("--threads", optarg, 1, MAX_THREADS);
            threads_given = true;
            break;
        case O_ACK_LOG:
            if (!*optarg)
                bench_bad_option("--ack-log", "expected a file name", optarg);
            cfg.ack_log_path = optarg;
            break;
        case O_UNIQUE_VALUES: cfg.unique_values = true; break;
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
        bench_bad_option("workload", "expected put, get, mixed, update or load", wl);
    if (cfg.ops && duration_given) {
        fprintf(stderr, PROG ": give --duration or --ops, not both\n");
        exit(2);
    }
    if (cfg.ops)
        cfg.duration_s = 0;
    if (threads_given && cfg.engine == ENGINE_BLOCKING) {
        fprintf(stderr, PROG ": --threads is for --engine event (blocking runs one thread per "
                        "connection)\n");
        exit(2);
    }
    if (cfg.threads > cfg.concurrency) {
        fprintf(stderr, PROG ": --threads %u exceeds --concurrency %u: every loop thread needs "
                        "a connection\n", cfg.threads, cfg.concurrency);
        exit(2);
    }
    if (cfg.per_request && !cfg.n_val && !cfg.r && !cfg.w) {
        fprintf(stderr, PROG ": --per-request needs --n-val, --r or --w\n");
        exit(2);
    }
    if (cfg.seed == 0)
        cfg.seed = bench_now_ns() ^ ((uint64_t)getpid() << 32);
}

/* ------------------------------------------------------------------ setup and main */

/* Sets n_val/r/w on the bucket (unless --per-request), over `conn`. Exits 1 if refused. */
static void set_bucket_props(cairn_t *conn)
{
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

static bool want_bucket_props(void)
{
    return !cfg.per_request && (cfg.n_val || cfg.r || cfg.w);
}

static void print_header(FILE *to)
{
    fprintf(to, "%s: %s against %s, %u connections", PROG, workload_names[cfg.workload],
            cfg.hosts, cfg.concurrency);
    if (cfg.engine == ENGINE_EVENT)
        fprintf(to, " (event engine, %u thread%s)", cfg.threads, cfg.threads == 1 ? "" : "s");
    else
        fprintf(to, " (blocking engine, one thread each)");
    fprintf(to, ", %" PRIu64 " keys (%s", cfg.keys, cfg.zipf ? "zipf" : "uniform");
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
    if (cfg.unique_values)
        fprintf(to, ", unique values");
    if (cfg.ack_log_path)
        fprintf(to, ", ack log %s", cfg.ack_log_path);
    fprintf(to, "\n");
}

static void print_first_errors(const worker_t *ws)
{
    for (unsigned i = 0; i < n_workers; i++) {
        if (ws[i].first_error[0]) {
            fprintf(stderr, PROG ": first error (connection %u): %s\n", ws[i].first_error_conn,
                    ws[i].first_error);
            return;
        }
    }
}

/* Blocking engine: one libcairn connection per worker. Exits 1 if one cannot connect. */
static void setup_blocking(worker_t *ws)
{
    cairn_opts_t copts = {.connect_timeout_ms = CONNECT_TIMEOUT_MS, .timeout_ms = cfg.timeout_ms};
    for (unsigned i = 0; i < n_workers; i++) {
        int rc = cairn_connect(cfg.hosts, &copts, &ws[i].conn);
        if (rc != CAIRN_OK) {
            fprintf(stderr, PROG ": connecting to %s (connection %u): %s%s%s\n", cfg.hosts, i,
                    cairn_strerror(rc), cairn_errmsg(NULL)[0] ? ": " : "", cairn_errmsg(NULL));
            exit(1);
        }
    }
    if (want_bucket_props())
        set_bucket_props(ws[0].conn);
}

/* Event engine: an epoll set per loop, connection i on loop i % threads, every connection
 * open before the run (each starting at the first node). Exits 1 if one cannot connect. */
static void setup_event(worker_t *ws)
{
    ee_config_t ec = {
        .prog = PROG, .hosts = cfg.hosts, .default_port = DEFAULT_PORT, .node_noun = "node",
        .concurrency = cfg.concurrency, .threads = n_workers, .spread = false,
        .failover = EE_FAILOVER_ON_RECONNECT,
        .request_timeout_ns = cfg.timeout_ms * 1000000ull + SERVER_TIMEOUT_GRACE_NS,
        .timeout_why = "no answer before the deadline",
        .err_connect = CAIRN_ECONNECT, .err_io = CAIRN_EIO, .err_timeout = CAIRN_ETIMEOUT,
        .err_nomem = CAIRN_ENOMEM, .err_proto = CAIRN_EPROTO,
        .conn_user_size = sizeof(ev_conn_t), .ops = &ev_ops, .stop = &stop_requested,
    };
    if (ee_setup(&eng, &ec) != 0)
        exit(1);
    bench_bucket = (cairn_buf_t){cfg.bucket, strlen(cfg.bucket)};
    for (unsigned t = 0; t < n_workers; t++)
        eng.loops[t].user = &ws[t];
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        if (ee_connect_sync(&eng, i) != 0) {
            fprintf(stderr, PROG ": connecting to %s (connection %u): %s: %s\n", cfg.hosts, i,
                    cairn_strerror(CAIRN_ECONNECT), eng.conns[i].connect_why);
            exit(1);
        }
    }
    if (want_bucket_props()) {
        /* Bucket properties go through libcairn, on a connection of their own. */
        cairn_opts_t copts = {.connect_timeout_ms = CONNECT_TIMEOUT_MS,
                              .timeout_ms = cfg.timeout_ms};
        cairn_t *conn = NULL;
        int rc = cairn_connect(cfg.hosts, &copts, &conn);
        if (rc != CAIRN_OK) {
            fprintf(stderr, PROG ": connecting to %s to set bucket properties: %s%s%s\n",
                    cfg.hosts, cairn_strerror(rc), cairn_errmsg(NULL)[0] ? ": " : "",
                    cairn_errmsg(NULL));
            exit(1);
        }
        set_bucket_props(conn);
        cairn_close(conn);
    }
}

static void teardown(worker_t *ws)
{
    for (unsigned i = 0; i < n_workers; i++) {
        cairn_close(ws[i].conn);
        free(ws[i].value);
        ack_buf_free(&ws[i].acks);
    }
    for (unsigned i = 0; eng.conns && i < cfg.concurrency; i++)
        pbf_buf_free(&ev_of(&eng.conns[i])->context);
    ee_teardown(&eng);
    free(ws);
}

int main(int argc, char **argv)
{
    bench_set_prog_name(PROG);
    parse_args(argc, argv);
    if (cfg.zipf)
        zipf_init(&zipf_dist, cfg.keys, cfg.zipf_s);
    fill_request_opts(&get_opts, &put_opts);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    n_workers = cfg.engine == ENGINE_EVENT ? cfg.threads : cfg.concurrency;
    worker_t *ws = calloc(n_workers, sizeof *ws);
    if (!ws) {
        fprintf(stderr, PROG ": out of memory for %u workers\n", n_workers);
        return 1;
    }
    uint64_t seed_state = cfg.seed;
    for (unsigned i = 0; i < n_workers; i++) {
        ws[i].id = i;
        ws[i].rng = bench_rng_next(&seed_state);
        ws[i].value = malloc(cfg.value_size ? cfg.value_size : 1);
        if (!ws[i].value) {
            fprintf(stderr, PROG ": out of memory for values\n");
            return 1;
        }
        for (size_t b = 0; b < cfg.value_size; b++)
            ws[i].value[b] = (unsigned char)bench_rng_next(&ws[i].rng);
    }
    if (cfg.ack_log_path) {
        char about[600], err[300];
        snprintf(about, sizeof about,
                 "tool=" PROG " workload=%s hosts=%.300s seed=%" PRIu64 " value_size=%zu "
                 "unique_values=%d",
                 workload_names[cfg.workload], cfg.hosts, cfg.seed, cfg.value_size,
                 cfg.unique_values);
        if (ack_log_open(cfg.ack_log_path, about, &ack_log, err, sizeof err) != 0) {
            fprintf(stderr, PROG ": --ack-log: %s\n", err);
            return 1;
        }
    }
    if (cfg.engine == ENGINE_EVENT)
        setup_event(ws);
    else
        setup_blocking(ws);
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
        bench_json_string(workload_names[cfg.workload]);
        printf(",\"hosts\":");
        bench_json_string(cfg.hosts);
        printf(",\"bucket\":");
        bench_json_string(cfg.bucket);
        printf(",\"engine\":\"%s\",\"threads\":%u", engine_names[cfg.engine], n_workers);
        printf(",\"concurrency\":%u,\"keys\":%" PRIu64 ",\"dist\":\"%s\",\"zipf_s\":%g,"
               "\"value_size\":%zu,\"n_val\":%u,\"r\":%u,\"w\":%u,\"per_request\":%s,"
               "\"interrupted\":%s",
               cfg.concurrency, cfg.keys, cfg.zipf ? "zipf" : "uniform", cfg.zipf_s,
               cfg.value_size, cfg.n_val, cfg.r, cfg.w, cfg.per_request ? "true" : "false",
               interrupted ? "true" : "false");
        if (cfg.workload == WL_MIXED)
            printf(",\"ratio\":\"%u:%u\"", cfg.ratio_get, cfg.ratio_put);
        if (cfg.unique_values)
            printf(",\"unique_values\":true");
        if (cfg.ack_log_path) {
            printf(",\"ack_log\":");
            bench_json_string(cfg.ack_log_path);
        }
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
    teardown(ws);
    char err[300];
    if (ack_log_close(ack_log, err, sizeof err) != 0) {
        fprintf(stderr, PROG ": the ack log %s is incomplete: %s\n", cfg.ack_log_path, err);
        return 1;
    }
    return 0;
}
