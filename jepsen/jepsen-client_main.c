/*
 * jepsen-client — the client side of the fault-injection suite (jepsen/). It owns the
 * workloads, the worker threads that run them through libcairn (client/cairn.h), the
 * classification of every outcome as ok / fail / info, and the history they write: one JSON
 * object per line, an `invoke` line before each operation and its completion after it.
 *
 *   jepsen-client --nodes H1,H2,... --phase setup|run|settle|final [options]   (--help for all)
 *
 * Phases (run.sh calls them in this order):
 *   setup  sets the workload bucket's properties on EVERY node (bucket properties are kept
 *          per node) and reads them back.
 *   run    --concurrency workers for --time seconds; worker w talks to node w mod #nodes
 *          only, over its own connection (no failover: the history says which node served
 *          each operation).
 *   settle after the final heal, while run.sh times convergence: for --time seconds, one
 *          reader per node reads the even keys (k0, k2, ...) in turn, about 20 reads/s per
 *          node, so that read repair can work on them; the odd keys are never read, and
 *          only hinted handoff and anti-entropy can bring their replicas together. These
 *          reads are not written to the history (counts on stderr).
 *   final  after the harness healed the cluster: reads every key through every node
 *          (r=all, falling back to the bucket's r), one reader thread per node.
 *
 * Workloads (every operation but a plain read is a read-modify-write: get, then write with
 * the context the get returned; values are sets of integers as text, "3,17,42"; every new
 * integer comes from one counter, so each is attempted once in a history):
 *   set       keys k0..k{K-1} of bucket jepsen-set. add(k, e) = get, union of all siblings
 *             plus e, put. The lost-write check of the 2013 Riak analysis.
 *   register  keys r0.. of bucket jepsen-register. write(k, v) = get, put "v" alone: it
 *             supersedes exactly what the get returned (recorded as "read"). For
 *             read-your-writes in calm periods and sibling bounds.
 *   delete    keys d0.. of bucket jepsen-delete: adds as in `set` (recording the set
 *             written, "wrote") and, a share --delete-ratio of the time, delete(k) = get,
 *             delete with its context (recording what it saw, "read"). For resurrection.
 *             A get that returned no value is not followed by a delete (recorded `fail`):
 *             a delete without a context removes whatever the coordinator finds, writes
 *             this client never saw included.
 * The get of a read-modify-write asks for deleted vclocks, so that a write after a delete
 * carries the tombstone's context. A share --read-ratio of operations are plain reads that
 * record the siblings and context.
 *
 * Outcome rules (../shared/reference/jepsen-notes.md): `ok` when the node acknowledged;
 * `fail` only when nothing can have been written (the get before the put failed, or the put
 * could not be sent: no connection, bad argument); `info` otherwise (timeout, broken
 * connection after send, any server error such as w_val_unsatisfied: the value may sit on
 * some replicas). A worker whose operation ended `info` continues as a new process
 * (process + concurrency), as in Jepsen.
 *
 * History line fields: time (ns since --epoch-ns, CLOCK_REALTIME, the same clock the
 * nemesis log uses), process, node (n1..n5: index in --nodes, plus 1), type, f (add, write,
 * delete, read, final-read), key, value (the new integer; null for read and delete);
 * completions add latency_ns, error (fail/info); add/write/delete add siblings_read and
 * context (the context the write carried) and read/wrote as above; reads add siblings
 * (arrays of integers; a tombstone or a value that is not a set of integers is a string)
 * and context (hex).
 *
 * Deliberately broken modes prove the checker can fail: --broken first-sibling keeps only
 * the first sibling of a read (what a last-write-wins client does) and writes it back with
 * the context, so it supersedes the others (set: lost writes); --broken lww-bucket sets
 * allow_mult=false and last_write_wins=true on the bucket (Riak's LWW configuration of 2013;
 * set and register: lost writes); --broken no-context sends puts and deletes without the
 * context read (delete: the deletes cover nothing, so deleted elements come back; register:
 * every write is a new sibling, past the sibling bound). The history still records the
 * context read, as the checker must judge what a correct client would have done.
 */
#include "bench/bench_common.h"
#include "client/cairn.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "jepsen-client"
#define MAX_NODES 16
#define MAX_WORKERS 256
#define SETUP_DEADLINE_S 60       /* the setup phase retries each node this long */
#define FAIL_BACKOFF_MS 100       /* pause after an op that did not reach a node */
#define FINAL_TIMEOUT_MS 10000

typedef enum { PHASE_SETUP, PHASE_RUN, PHASE_SETTLE, PHASE_FINAL } phase_t;
typedef enum { BROKEN_NONE, BROKEN_FIRST_SIBLING, BROKEN_LWW_BUCKET, BROKEN_NO_CONTEXT } broken_t;
typedef enum { W_SET, W_REGISTER, W_DELETE } workload_t;

typedef struct options {
    char *nodes[MAX_NODES];       /* host:port, owned (strdup) */
    int n_nodes;
    phase_t phase;
    workload_t workload;
    const char *bucket;           /* NULL: jepsen-<workload> */
    const char *history_path;
    double duration_s;
    int concurrency;
    int keys;
    double rate;                  /* total ops/s over all workers; 0: as fast as possible */
    double read_ratio;
    double delete_ratio;          /* delete workload: share of deletes */
    uint32_t timeout_ms;
    int64_t epoch_ns;
    uint64_t seed;
    broken_t broken;
} options_t;

static options_t opt = {
    .workload = W_SET,
    .history_path = "-",
    .duration_s = 30,
    .concurrency = 10,
    .keys = 8,
    .rate = 100,
    .read_ratio = 0.1,
    .delete_ratio = 0.1,
    .timeout_ms = 2000,
    .seed = 1,
};

static atomic_bool stop_requested;
static atomic_uint_fast64_t next_element;

/* ---------------------------------------------------------------- small helpers */

#define die(...) bench_die(PROG, __VA_ARGS__)
#define xrealloc(p, n) bench_xrealloc(PROG, p, n)

static int64_t realtime_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR && !atomic_load(&stop_requested))
        ;
}


/* ---------------------------------------------------------------- a growable text buffer */

typedef struct text {
    char *s;
    size_t len, cap;
} text_t;

static void text_reserve(text_t *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1)
        cap *= 2;
    t->s = xrealloc(t->s, cap);
    t->cap = cap;
}

static void text_add(text_t *t, const void *p, size_t n)
{
    text_reserve(t, n);
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_fmt(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_fmt(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("formatting failed");
    text_reserve(t, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* A JSON string (quotes and escapes). */
static void text_json_str(text_t *t, const char *s, size_t n)
{
    text_add(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            text_add(t, e, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            text_fmt(t, "\\u%04x", c); /* bytes, not UTF-8: each shown as one code unit */
        } else {
            text_add(t, &s[i], 1);
        }
    }
    text_add(t, "\"", 1);
}

static void text_hex(text_t *t, const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = p;
    text_reserve(t, 2 * n + 2);
    t->s[t->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        t->s[t->len++] = digits[b[i] >> 4];
        t->s[t->len++] = digits[b[i] & 15];
    }
    t->s[t->len++] = '"';
    t->s[t->len] = '\0';
}

/* ---------------------------------------------------------------- integer sets */

/* Parses "3,17,42" (possibly empty) into s (appending). false if the text is not such a list;
 * s may then hold part of it. */
static bool intset_parse_into(bench_u64set_t *s, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t x = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9') {
            if (x > (UINT64_MAX - 9) / 10)
                return false;
            x = x * 10 + (uint64_t)(p[i] - '0');
            i++;
        }
        bench_u64set_add(s, x);
        if (i < len) {
            if (p[i] != ',' || i + 1 == len)
                return false;
            i++;
        }
    }
    return true;
}

static void intset_format(const bench_u64set_t *s, text_t *t)
{
    for (size_t i = 0; i < s->n; i++)
        text_fmt(t, i ? ",%" PRIu64 : "%" PRIu64, s->v[i]);
}

/* The siblings of a read as JSON ([[1,2],[1,3]]; a sibling that is not a set of integers as
 * a string), merging every parsed element into *merged (may be NULL). */
static void siblings_json(const cairn_object_t *o, text_t *t, bench_u64set_t *merged)
{
    text_add(t, "[", 1);
    for (size_t i = 0; o && i < o->n_siblings; i++) {
        const cairn_content_t *c = &o->siblings[i];
        if (i)
            text_add(t, ",", 1);
        bench_u64set_t one = {0};
        if (c->deleted) {
            text_add(t, "\"<tombstone>\"", 13);
        } else if (intset_parse_into(&one, c->value.data, c->value.len)) {
            text_add(t, "[", 1);
            intset_format(&one, t);
            text_add(t, "]", 1);
            for (size_t j = 0; merged && j < one.n; j++)
                bench_u64set_add(merged, one.v[j]);
        } else {
            text_json_str(t, c->value.data, c->value.len);
        }
        free(one.v);
    }
    text_add(t, "]", 1);
}

/* ---------------------------------------------------------------- the history */

static FILE *history;
static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;

typedef enum { T_INVOKE, T_OK, T_FAIL, T_INFO } op_type_t;
static const char *const type_names[] = {"invoke", "ok", "fail", "info"};

/* One history line: `{"time":T,"process":P,"node":"nI","type":..,"f":..,"key":..` then the
 * caller's extra fields (`,"value":...` already formatted, may be empty) then `}`. The time
 * is taken under the lock, so the file is ordered by time. Returns that time. */
static int64_t history_write(long process, int node, op_type_t type, const char *f,
                             const char *key, const char *extra)
{
    pthread_mutex_lock(&history_lock);
    int64_t t = realtime_ns() - opt.epoch_ns;
    fprintf(history, "{\"time\":%" PRId64 ",\"process\":%ld,\"node\":\"n%d\",\"type\":\"%s\","
                     "\"f\":\"%s\",\"key\":\"%s\"%s}\n",
            t, process, node + 1, type_names[type], f, key, extra ? extra : "");
    if (ferror(history))
        die("writing the history failed: %s", strerror(errno));
    pthread_mutex_unlock(&history_lock);
    return t;
}

/* ---------------------------------------------------------------- connections */

typedef struct conn {
    cairn_t *c;
    int node;                     /* index into opt.nodes */
    char err[512];                /* the last error, for the history */
} conn_t;

static int conn_ensure(conn_t *k)
{
    if (k->c)
        return CAIRN_OK;
    cairn_opts_t co = {.connect_timeout_ms = 1000, .timeout_ms = opt.timeout_ms + 1000};
    int rc = cairn_connect(opt.nodes[k->node], &co, &k->c);
    if (rc != CAIRN_OK)
        snprintf(k->err, sizeof k->err, "connect: %s", cairn_errmsg(NULL));
    return rc;
}

static void conn_note_error(conn_t *k, const char *what, int rc)
{
    snprintf(k->err, sizeof k->err, "%s: %s: %s", what, cairn_strerror(rc),
             k->c ? cairn_errmsg(k->c) : "");
}

/* A put that returned rc: can the value have reached a replica? Only a request that was
 * never sent is a definite failure. */
static op_type_t classify_put(int rc)
{
    switch (rc) {
    case CAIRN_OK:
        return T_OK;
    case CAIRN_ECONNECT: /* no connection: nothing sent */
    case CAIRN_EINVAL:   /* refused by the library before sending */
    case CAIRN_ENOMEM:
        return T_FAIL;
    default:             /* EIO, ETIMEOUT, ESERVER (w unsatisfied...), EPROTO, EOVERLOAD */
        return T_INFO;
    }
}

/* ---------------------------------------------------------------- the set workload */

typedef struct worker {
    int id;
    long process;
    conn_t conn;
    uint64_t rng;
    pthread_t thread;
    uint64_t n_ok, n_fail, n_info;
} worker_t;

/* Keys differ by workload (k3, r3, d3), so histories of different workloads never mix. */
static void key_name(int k, char *buf, size_t n)
{
    snprintf(buf, n, "%c%d", opt.workload == W_REGISTER ? 'r' : opt.workload == W_DELETE ? 'd' : 'k',
             k);
}

static void count(worker_t *w, op_type_t t)
{
    if (t == T_OK)
        w->n_ok++;
    else if (t == T_FAIL)
        w->n_fail++;
    else if (t == T_INFO)
        w->n_info++;
}

/* The end of an operation: the completion line, the process renumbering after `info`, a
 * pause after an operation that did not reach its node. */
static void complete(worker_t *w, op_type_t t, const char *f, const char *key, text_t *extra,
                     int64_t started_mono)
{
    text_fmt(extra, ",\"latency_ns\":%" PRId64, mono_ns() - started_mono);
    if (t != T_OK) {
        text_add(extra, ",\"error\":", 9);
        text_json_str(extra, w->conn.err, strlen(w->conn.err));
    }
    history_write(w->process, w->conn.node, t, f, key, extra->s);
    count(w, t);
    if (t == T_INFO)
        w->process += opt.concurrency;
    if (t != T_OK && !w->conn.c)
        sleep_ms(FAIL_BACKOFF_MS);
}

static cairn_buf_t bucket_buf(void) { return (cairn_buf_t){opt.bucket, strlen(opt.bucket)}; }

static void set_read(worker_t *w, int k)
{
    char key[32];
    key_name(k, key, sizeof key);
    text_t extra = {0};
    history_write(w->process, w->conn.node, T_INVOKE, "read", key, ",\"value\":null");
    int64_t t0 = mono_ns();
    op_type_t outcome = T_FAIL;
    cairn_object_t *o = NULL;
    int rc = conn_ensure(&w->conn);
    if (rc == CAIRN_OK) {
        cairn_get_opts_t go = {.timeout_ms = opt.timeout_ms};
        rc = cairn_get(w->conn.c, bucket_buf(), (cairn_buf_t){key, strlen(key)}, &go, &o);
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND) {
            outcome = T_OK;
            text_add(&extra, ",\"value\":null,\"siblings\":", 25);
            siblings_json(o, &extra, NULL);
            text_add(&extra, ",\"context\":", 11);
            text_hex(&extra, o ? o->context.data : "", o ? o->context.len : 0);
        } else {
            conn_note_error(&w->conn, "get", rc);
        }
    }
    if (outcome != T_OK && extra.len == 0)
        text_add(&extra, ",\"value\":null", 13);
    /* a read changes nothing: every failed read is a definite `fail` */
    complete(w, outcome, "read", key, &extra, t0);
    cairn_object_free(o);
    free(extra.s);
}

typedef enum { RMW_ADD, RMW_WRITE, RMW_DELETE } rmw_t;
static const char *const rmw_names[] = {"add", "write", "delete"};

/* One read-modify-write: get the key, then
 *   add    (set, delete workloads): put the union of every sibling plus a new element;
 *   write  (register): put a new integer alone, superseding what the get returned;
 *   delete (delete workload): delete with the context of the get;
 * always with the context of the get. The completion records what the get returned (its
 * sibling count and context; for write and delete the union of the values as "read", for
 * add in the delete workload the set written as "wrote"), which the checker uses to tell
 * which versions each operation superseded. */
static void rmw(worker_t *w, int k, rmw_t kind)
{
    char key[32];
    key_name(k, key, sizeof key);
    uint64_t e = kind == RMW_DELETE ? 0 : atomic_fetch_add(&next_element, 1);
    char inv[64];
    if (kind == RMW_DELETE)
        snprintf(inv, sizeof inv, ",\"value\":null");
    else
        snprintf(inv, sizeof inv, ",\"value\":%" PRIu64, e);
    history_write(w->process, w->conn.node, T_INVOKE, rmw_names[kind], key, inv);
    int64_t t0 = mono_ns();

    text_t extra = {0};
    text_add(&extra, inv, strlen(inv));
    op_type_t outcome = T_FAIL;
    cairn_object_t *o = NULL;
    bench_u64set_t seen = {0}, set = {0};
    text_t value = {0};
    int rc = conn_ensure(&w->conn);
    if (rc != CAIRN_OK)
        goto done;
    /* deletedvclock: a tombstone's context comes back too, so a write after a delete
     * supersedes the tombstone instead of going in without any context */
    cairn_get_opts_t go = {.timeout_ms = opt.timeout_ms, .deletedvclock = true};
    cairn_buf_t kb = {key, strlen(key)};
    rc = cairn_get(w->conn.c, bucket_buf(), kb, &go, &o);
    if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND) {
        conn_note_error(&w->conn, "get", rc); /* the write was never sent: fail */
        goto done;
    }
    size_t n_sib = o ? o->n_siblings : 0;
    size_t use = opt.broken == BROKEN_FIRST_SIBLING && n_sib > 1 ? 1 : n_sib;
    for (size_t i = 0; i < use; i++) {
        const cairn_content_t *c = &o->siblings[i];
        if (!c->deleted && !intset_parse_into(&seen, c->value.data, c->value.len)) {
            /* not ours: keep the history honest and do not write a merge of garbage */
            snprintf(w->conn.err, sizeof w->conn.err, "get: sibling %zu is not a set of integers",
                     i);
            goto done;
        }
    }
    bench_u64set_normalize(&seen);
    cairn_buf_t ctx = o ? o->context : (cairn_buf_t){"", 0};
    cairn_buf_t sent_ctx = opt.broken == BROKEN_NO_CONTEXT ? (cairn_buf_t){"", 0} : ctx;
    if (kind == RMW_DELETE && seen.n == 0) {
        /* Nothing seen, nothing to delete. A delete without a context would remove what
         * the coordinator finds, i.e. writes this client never saw: not sent (fail). */
        snprintf(w->conn.err, sizeof w->conn.err, "not sent: the get returned no value");
        rc = CAIRN_OK;
        goto done;
    }
    if (kind == RMW_DELETE) {
        cairn_del_opts_t dopt = {.context = sent_ctx, .timeout_ms = opt.timeout_ms};
        rc = cairn_delete(w->conn.c, bucket_buf(), kb, &dopt);
    } else {
        if (kind == RMW_ADD)
            for (size_t i = 0; i < seen.n; i++)
                bench_u64set_add(&set, seen.v[i]);
        bench_u64set_add(&set, e);
        bench_u64set_normalize(&set);
        intset_format(&set, &value);
        cairn_put_opts_t po = {.timeout_ms = opt.timeout_ms, .content_type = "text/plain",
                               .context = sent_ctx};
        rc = cairn_put(w->conn.c, bucket_buf(), kb, (cairn_buf_t){value.s, value.len}, &po, NULL);
    }
    outcome = classify_put(rc);
    if (rc != CAIRN_OK)
        conn_note_error(&w->conn, kind == RMW_DELETE ? "delete" : "put", rc);
    text_fmt(&extra, ",\"siblings_read\":%zu,\"context\":", n_sib);
    text_hex(&extra, ctx.data, ctx.len);
    if (kind != RMW_ADD) {
        text_add(&extra, ",\"read\":[", 9);
        intset_format(&seen, &extra);
        text_add(&extra, "]", 1);
    } else if (opt.workload == W_DELETE) {
        text_add(&extra, ",\"wrote\":[", 10);
        text_add(&extra, value.s, value.len);
        text_add(&extra, "]", 1);
    }
done:
    if (rc == CAIRN_ECONNECT || rc == CAIRN_EIO || rc == CAIRN_ETIMEOUT || rc == CAIRN_EPROTO) {
        /* libcairn reconnects by itself; starting over makes the next connect visible */
        cairn_close(w->conn.c);
        w->conn.c = NULL;
    }
    complete(w, outcome, rmw_names[kind], key, &extra, t0);
    cairn_object_free(o);
    free(seen.v);
    free(set.v);
    free(value.s);
    free(extra.s);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    double per_worker_rate = opt.rate > 0 ? opt.rate / opt.concurrency : 0;
    int64_t end = mono_ns() + (int64_t)(opt.duration_s * 1e9);
    int64_t next = mono_ns();
    while (!atomic_load(&stop_requested) && mono_ns() < end) {
        if (per_worker_rate > 0) {
            /* exponential gaps (a Poisson process) so workers do not march in step */
            double gap = -1.0 / per_worker_rate * log(1.0 - bench_rng_unit(&w->rng));
            next += (int64_t)(gap * 1e9);
            int64_t now = mono_ns();
            if (next > now)
                sleep_ms((next - now) / 1000000);
            else if (now - next > 1000000000LL)
                next = now; /* fell behind (a long timeout): do not burst to catch up */
            if (atomic_load(&stop_requested) || mono_ns() >= end)
                break;
        }
        int k = (int)(bench_rng_next(&w->rng) % (uint64_t)opt.keys);
        double dice = bench_rng_unit(&w->rng);
        if (dice < opt.read_ratio)
            set_read(w, k);
        else if (opt.workload == W_REGISTER)
            rmw(w, k, RMW_WRITE);
        else if (opt.workload == W_DELETE && dice < opt.read_ratio + opt.delete_ratio)
            rmw(w, k, RMW_DELETE);
        else
            rmw(w, k, RMW_ADD);
    }
    return NULL;
}

static int run_phase(void)
{
    worker_t *ws = calloc((size_t)opt.concurrency, sizeof *ws);
    if (!ws)
        die("out of memory");
    for (int i = 0; i < opt.concurrency; i++) {
        ws[i].id = i;
        ws[i].process = i;
        ws[i].conn.node = i % opt.n_nodes;
        ws[i].rng = opt.seed * 1000003u + (uint64_t)i;
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            die("pthread_create failed");
    }
    uint64_t ok = 0, fail = 0, info = 0;
    for (int i = 0; i < opt.concurrency; i++) {
        pthread_join(ws[i].thread, NULL);
        ok += ws[i].n_ok;
        fail += ws[i].n_fail;
        info += ws[i].n_info;
        cairn_close(ws[i].conn.c);
    }
    free(ws);
    fprintf(stderr, PROG ": run: %" PRIu64 " ok, %" PRIu64 " fail, %" PRIu64 " info\n", ok, fail,
            info);
    return 0;
}

/* ---------------------------------------------------------------- settle reads */

#define SETTLE_READ_INTERVAL_MS 50

typedef struct settle_reader {
    int node;
    pthread_t thread;
    long n_ok, n_failed;
} settle_reader_t;

static void *settle_main(void *arg)
{
    settle_reader_t *sr = arg;
    conn_t conn = {.node = sr->node};
    int64_t end = mono_ns() + (int64_t)(opt.duration_s * 1e9);
    for (int k = 0; mono_ns() < end && !atomic_load(&stop_requested); k = (k + 2) % opt.keys) {
        char key[32];
        key_name(k, key, sizeof key);
        int rc = conn_ensure(&conn);
        if (rc == CAIRN_OK) {
            cairn_object_t *o = NULL;
            cairn_get_opts_t go = {.timeout_ms = opt.timeout_ms};
            rc = cairn_get(conn.c, bucket_buf(), (cairn_buf_t){key, strlen(key)}, &go, &o);
            cairn_object_free(o);
            if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
                conn_note_error(&conn, "get", rc);
        }
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
            sr->n_ok++;
        else
            sr->n_failed++;
        sleep_ms(SETTLE_READ_INTERVAL_MS);
    }
    cairn_close(conn.c);
    return NULL;
}

static int settle_phase(void)
{
    settle_reader_t sr[MAX_NODES] = {{0}};
    for (int i = 0; i < opt.n_nodes; i++) {
        sr[i].node = i;
        if (pthread_create(&sr[i].thread, NULL, settle_main, &sr[i]) != 0)
            die("pthread_create failed");
    }
    long ok = 0, failed = 0;
    for (int i = 0; i < opt.n_nodes; i++) {
        pthread_join(sr[i].thread, NULL);
        ok += sr[i].n_ok;
        failed += sr[i].n_failed;
    }
    fprintf(stderr, PROG ": settle: %ld reads of the even keys ok, %ld failed\n", ok, failed);
    return 0;
}

/* ---------------------------------------------------------------- final reads */

typedef struct final_reader {
    int node;
    pthread_t thread;
    int n_ok, n_failed;
} final_reader_t;

static void *final_main(void *arg)
{
    final_reader_t *fr = arg;
    conn_t conn = {.node = fr->node};
    long process = 100000 + fr->node;
    for (int k = 0; k < opt.keys; k++) {
        char key[32];
        key_name(k, key, sizeof key);
        history_write(process, fr->node, T_INVOKE, "final-read", key, ",\"value\":null");
        int64_t t0 = mono_ns();
        text_t extra = {0};
        cairn_object_t *o = NULL;
        int rc = CAIRN_ECONNECT;
        const char *r_used = "all";
        /* r=all: every replica answers, so this read sees the whole key; when a replica
         * cannot answer, the bucket's own r (a quorum) tells what a client would see */
        for (int attempt = 0; attempt < 2 && rc != CAIRN_OK && rc != CAIRN_ENOTFOUND; attempt++) {
            if (conn_ensure(&conn) != CAIRN_OK) {
                rc = CAIRN_ECONNECT;
                continue;
            }
            cairn_get_opts_t go = {.timeout_ms = FINAL_TIMEOUT_MS,
                                   .r = attempt == 0 ? CAIRN_Q_ALL : 0};
            r_used = attempt == 0 ? "all" : "default";
            rc = cairn_get(conn.c, bucket_buf(), (cairn_buf_t){key, strlen(key)}, &go, &o);
            if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
                conn_note_error(&conn, "get", rc);
        }
        text_add(&extra, ",\"value\":null", 13);
        text_fmt(&extra, ",\"r\":\"%s\",\"latency_ns\":%" PRId64, r_used, mono_ns() - t0);
        op_type_t t = T_FAIL;
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND) {
            t = T_OK;
            fr->n_ok++;
            text_add(&extra, ",\"siblings\":", 12);
            siblings_json(o, &extra, NULL);
            text_add(&extra, ",\"context\":", 11);
            text_hex(&extra, o ? o->context.data : "", o ? o->context.len : 0);
        } else {
            fr->n_failed++;
            text_add(&extra, ",\"error\":", 9);
            text_json_str(&extra, conn.err, strlen(conn.err));
        }
        history_write(process, fr->node, t, "final-read", key, extra.s);
        cairn_object_free(o);
        free(extra.s);
    }
    cairn_close(conn.c);
    return NULL;
}

static int final_phase(void)
{
    final_reader_t fr[MAX_NODES] = {{0}};
    for (int i = 0; i < opt.n_nodes; i++) {
        fr[i].node = i;
        if (pthread_create(&fr[i].thread, NULL, final_main, &fr[i]) != 0)
            die("pthread_create failed");
    }
    int failed = 0;
    for (int i = 0; i < opt.n_nodes; i++) {
        pthread_join(fr[i].thread, NULL);
        failed += fr[i].n_failed;
        if (fr[i].n_failed)
            fprintf(stderr, PROG ": final: %d of %d keys unreadable through %s\n",
                    fr[i].n_failed, opt.keys, opt.nodes[i]);
    }
    fprintf(stderr, PROG ": final: %d keys x %d nodes read, %d failed\n", opt.keys, opt.n_nodes,
            failed);
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- setup */

static int setup_phase(void)
{
    cairn_bucket_props_t want = {.fields = CAIRN_PROP_ALLOW_MULT | CAIRN_PROP_LAST_WRITE_WINS,
                                 .allow_mult = opt.broken != BROKEN_LWW_BUCKET,
                                 .last_write_wins = opt.broken == BROKEN_LWW_BUCKET};
    int bad = 0;
    for (int i = 0; i < opt.n_nodes; i++) {
        conn_t conn = {.node = i};
        int64_t deadline = mono_ns() + SETUP_DEADLINE_S * 1000000000LL;
        int rc;
        cairn_bucket_props_t got = {0};
        for (;;) {
            rc = conn_ensure(&conn);
            if (rc == CAIRN_OK)
                rc = cairn_bucket_set(conn.c, NULL, bucket_buf(), &want);
            if (rc == CAIRN_OK)
                rc = cairn_bucket_get(conn.c, NULL, bucket_buf(), &got);
            if (rc == CAIRN_OK || mono_ns() > deadline)
                break;
            cairn_close(conn.c);
            conn.c = NULL;
            sleep_ms(500);
        }
        if (rc != CAIRN_OK) {
            conn_note_error(&conn, "bucket properties", rc);
            fprintf(stderr, PROG ": setup: %s: %s\n", opt.nodes[i], conn.err);
            bad++;
        } else if (got.allow_mult != want.allow_mult || got.last_write_wins != want.last_write_wins) {
            fprintf(stderr, PROG ": setup: %s: bucket %s reads back allow_mult=%d lww=%d\n",
                    opt.nodes[i], opt.bucket, got.allow_mult, got.last_write_wins);
            bad++;
        }
        cairn_close(conn.c);
    }
    if (!bad)
        fprintf(stderr, PROG ": setup: bucket %s: allow_mult=%s last_write_wins=%s on %d nodes\n",
                opt.bucket, want.allow_mult ? "true" : "false",
                want.last_write_wins ? "true" : "false", opt.n_nodes);
    return bad ? 1 : 0;
}

/* ---------------------------------------------------------------- options */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " --nodes H:P[,H:P...] --phase setup|run|settle|final [options]\n"
            "\n"
            "The client of the fault-injection suite (jepsen/run.sh drives it): runs a workload\n"
            "against a Cairn cluster and appends every operation to a JSON-lines history.\n"
            "\n"
            "  --nodes LIST         client addresses of the nodes (node I of the history = the\n"
            "                       I-th address)\n"
            "  --phase P            setup: set the bucket properties on every node;\n"
            "                       run: the workload for --time seconds;\n"
            "                       settle: for --time seconds, read the even keys through\n"
            "                       every node (~20/s each; not in the history), so read\n"
            "                       repair works on them while the odd keys stay unread;\n"
            "                       final: read every key through every node (r=all)\n"
            "  --workload W         set (default), register or delete\n"
            "  --history FILE       append the history here (default: stdout)\n"
            "  --epoch-ns NS        time 0 of the history, in ns of CLOCK_REALTIME (default: now)\n"
            "  --time S             run phase length in seconds (default 30)\n"
            "  --concurrency C      worker threads, worker w uses node w mod #nodes (default 10)\n"
            "  --keys K             keys k0..k{K-1} (default 8)\n"
            "  --rate R             total operations per second, 0 = unlimited (default 100)\n"
            "  --read-ratio F       share of plain reads (default 0.1)\n"
            "  --delete-ratio F     delete workload: share of deletes (default 0.1)\n"
            "  --timeout-ms MS      per request, sent to the server; the client waits 1 s more\n"
            "                       (default 2000)\n"
            "  --seed S             worker random streams (default 1)\n"
            "  --bucket B           default jepsen-<workload>\n"
            "  --broken MODE        deliberately wrong, to show the checker failing:\n"
            "                       first-sibling (a client that keeps one sibling),\n"
            "                       lww-bucket (allow_mult=false, last_write_wins=true),\n"
            "                       no-context (puts and deletes without the context read)\n"
            "\n"
            "Exit status: 0; 1 when setup could not set the bucket everywhere or a final read\n"
            "failed; 2 for bad usage.\n");
}

static double parse_num(const char *name, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        die("--%s: '%s' is not a number in %g..%g", name, s, lo, hi);
    return v;
}

static void parse_nodes(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        die("out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (opt.n_nodes == MAX_NODES)
            die("--nodes: at most %d nodes", MAX_NODES);
        opt.nodes[opt.n_nodes] = strdup(t);
        if (!opt.nodes[opt.n_nodes++])
            die("out of memory");
    }
    free(copy);
}

static void parse_args(int argc, char **argv)
{
    enum { O_NODES = 256, O_PHASE, O_WORKLOAD, O_HISTORY, O_EPOCH, O_TIME, O_CONC, O_KEYS,
           O_RATE, O_READ_RATIO, O_TIMEOUT, O_SEED, O_BUCKET, O_BROKEN, O_DELETE_RATIO };
    static const struct option longs[] = {
        {"nodes", required_argument, NULL, O_NODES},
        {"phase", required_argument, NULL, O_PHASE},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"history", required_argument, NULL, O_HISTORY},
        {"epoch-ns", required_argument, NULL, O_EPOCH},
        {"time", required_argument, NULL, O_TIME},
        {"concurrency", required_argument, NULL, O_CONC},
        {"keys", required_argument, NULL, O_KEYS},
        {"rate", required_argument, NULL, O_RATE},
        {"read-ratio", required_argument, NULL, O_READ_RATIO},
        {"delete-ratio", required_argument, NULL, O_DELETE_RATIO},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"seed", required_argument, NULL, O_SEED},
        {"bucket", required_argument, NULL, O_BUCKET},
        {"broken", required_argument, NULL, O_BROKEN},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    bool have_phase = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case O_NODES: parse_nodes(optarg); break;
        case O_PHASE:
            have_phase = true;
            if (!strcmp(optarg, "setup"))
                opt.phase = PHASE_SETUP;
            else if (!strcmp(optarg, "run"))
                opt.phase = PHASE_RUN;
            else if (!strcmp(optarg, "settle"))
                opt.phase = PHASE_SETTLE;
            else if (!strcmp(optarg, "final"))
                opt.phase = PHASE_FINAL;
            else
                die("--phase: '%s' is not setup, run, settle or final", optarg);
            break;
        case O_WORKLOAD:
            if (!strcmp(optarg, "set"))
                opt.workload = W_SET;
            else if (!strcmp(optarg, "register"))
                opt.workload = W_REGISTER;
            else if (!strcmp(optarg, "delete"))
                opt.workload = W_DELETE;
            else
                die("--workload: '%s' is not set, register or delete", optarg);
            break;
        case O_DELETE_RATIO: opt.delete_ratio = parse_num("delete-ratio", optarg, 0, 1); break;
        case O_HISTORY: opt.history_path = optarg; break;
        case O_EPOCH: opt.epoch_ns = (int64_t)parse_num("epoch-ns", optarg, 0, 9.2e18); break;
        case O_TIME: opt.duration_s = parse_num("time", optarg, 0, 86400); break;
        case O_CONC: opt.concurrency = (int)parse_num("concurrency", optarg, 1, MAX_WORKERS); break;
        case O_KEYS: opt.keys = (int)parse_num("keys", optarg, 1, 1000000); break;
        case O_RATE: opt.rate = parse_num("rate", optarg, 0, 1e7); break;
        case O_READ_RATIO: opt.read_ratio = parse_num("read-ratio", optarg, 0, 1); break;
        case O_TIMEOUT: opt.timeout_ms = (uint32_t)parse_num("timeout-ms", optarg, 1, 3600000); break;
        case O_SEED: opt.seed = (uint64_t)parse_num("seed", optarg, 0, 1.8e19); break;
        case O_BUCKET: opt.bucket = optarg; break;
        case O_BROKEN:
            if (!strcmp(optarg, "first-sibling"))
                opt.broken = BROKEN_FIRST_SIBLING;
            else if (!strcmp(optarg, "lww-bucket"))
                opt.broken = BROKEN_LWW_BUCKET;
            else if (!strcmp(optarg, "no-context"))
                opt.broken = BROKEN_NO_CONTEXT;
            else
                die("--broken: '%s' is not first-sibling, lww-bucket or no-context", optarg);
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (--help)", argv[optind]);
    if (opt.n_nodes == 0)
        die("--nodes is required (--help)");
    if (!have_phase)
        die("--phase is required (--help)");
    if (!opt.bucket)
        opt.bucket = opt.workload == W_REGISTER ? "jepsen-register"
                     : opt.workload == W_DELETE ? "jepsen-delete"
                                                : "jepsen-set";
    if (!*opt.bucket)
        die("--bucket must not be empty");
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, true);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (opt.epoch_ns == 0)
        opt.epoch_ns = realtime_ns();
    if (!strcmp(opt.history_path, "-")) {
        history = stdout;
    } else if (!(history = fopen(opt.history_path, "a"))) {
        die("cannot open the history %s: %s", opt.history_path, strerror(errno));
    }
    setvbuf(history, NULL, _IOLBF, 1 << 16);
    /* SIGTERM/SIGINT: no new operation starts; those in flight complete and are recorded */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* elements are unique within a history: one run phase per history */
    atomic_store(&next_element, 0);

    int rc = 0;
    switch (opt.phase) {
    case PHASE_SETUP: rc = setup_phase(); break;
    case PHASE_RUN: rc = run_phase(); break;
    case PHASE_SETTLE: rc = settle_phase(); break;
    case PHASE_FINAL: rc = final_phase(); break;
    }
    if (history != stdout && fclose(history) != 0)
        die("closing the history failed: %s", strerror(errno));
    for (int i = 0; i < opt.n_nodes; i++)
        free(opt.nodes[i]);
    return rc;
}
