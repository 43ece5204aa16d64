/*
 * etcd-bench — `etcd-bench`, a load generator for etcd v3 over its JSON gateway (HTTP/1.1),
 * the counterpart of cairn-bench for `make bench-cluster`. It owns: option parsing, a small
 * HTTP/1.1 client (request writer, incremental response parser with Content-Length and
 * chunked bodies), base64, the HTTP side of the event engine (bench/event_engine.c, shared
 * with cairn-bench, drives the connections), the per-thread latency histograms and the
 * text/JSON report.
 *
 *   etcd-bench [options] put|get|load                      (etcd-bench --help for the list)
 *
 * There is no gRPC in C here, so requests go to the gateway that every etcd 3.4 member
 * serves on its client URL: POST /v3/kv/put {"key": b64, "value": b64} and POST /v3/kv/range
 * {"key": b64} (linearizable unless --serializable). Inside etcd the gateway turns each
 * request into a gRPC call to the same member, so etcd's CPU per request includes that
 * translation: a native gRPC client would cost etcd less.
 *
 * The engine is cairn-bench's event engine: --threads loop threads (default 1), each
 * running epoll over its share of the -c connections, non-blocking sockets, HTTP/1.1
 * keep-alive, exactly one request outstanding per connection (send it, read the whole
 * answer, send the next; no pipelining). Connection i talks to member i mod M of the -h
 * list (the connections are spread over the members, as etcd's own client balances over its
 * endpoints); after a connection error it moves to the next member. Keys are
 * "key:%012u" as in cairn-bench and redis-benchmark -r.
 *
 * Outcomes, never silently dropped: a 200 answer is a success (a range without "kvs" is a
 * get's `notfound`, not an error); anything else is counted by class: econnect (no member
 * accepts a connection), eio (the connection broke), timeout (no answer within
 * --timeout-ms), http (a status other than 200), server (a 200 body holding an "error"
 * field), proto (an answer that is not HTTP/1.x as expected), nomem. The first error's
 * details are printed at the end. Every wait is bounded: the run by --duration or --ops,
 * each request by --timeout-ms, each connection attempt by 2 s, retries after a connection
 * error by a 10 ms pause. Ctrl-C stops the run early and still prints the results.
 *
 * Latency: each loop thread records every operation into its own log-linear histogram (64
 * sub-buckets per power of two of nanoseconds, at most 1.6% error), merged by the main
 * thread after the threads have joined; the same histogram and the same report lines as
 * cairn-bench, so scripts parse both tools' outputs alike.
 *
 * Memory: every buffer belongs to the connection (the engine's, or its ev_conn_t) or worker
 * that uses it and is freed at teardown; parsed answers point into the connection's buffers.
 */
#include "bench/bench_common.h"
#include "bench/event_engine.h"
#include "bench/pb_frames.h" /* pbf_buf_t: a growable byte buffer */

#include <ctype.h>
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
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PROG "etcd-bench"

/* ------------------------------------------------------------------ bounds */

#define MAX_CONCURRENCY 1024
#define MAX_THREADS MAX_CONCURRENCY
#define MAX_KEYS 1000000000ull          /* keys are "key:%012u" */
#define MAX_VALUE_SIZE (16u << 20)      /* etcd refuses more than 1.5 MiB by default anyway */
#define MAX_DURATION_S 86400.0
#define MAX_OPS 1000000000000ull
#define MAX_TIMEOUT_MS 3600000u
#define KEY_BUF 32
#define ERRMSG_LEN 512                  /* the first error, as reported */
#define DETAIL_LEN 400                  /* an error's details while it is formatted */
#define BODY_EXCERPT 160                /* bytes of an error answer's body quoted */
#define MAX_ANSWER_BYTES (64u << 20)    /* the largest answer body accepted */
#define MAX_HEAD_BYTES 65536u           /* status line + headers (and chunk-size lines) */
#define DEFAULT_PORT "2379"

/* ------------------------------------------------------------------ base64 (RFC 4648) */

static size_t b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes the padded base64 of src[0..n) to dst (b64_len(n) bytes, no NUL); returns that
 * length. */
static size_t b64_encode(const uint8_t *src, size_t n, char *dst)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = alphabet[(v >> 6) & 63];
        dst[o++] = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0u);
        dst[o++] = alphabet[v >> 18];
        dst[o++] = alphabet[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    return o;
}

/* ------------------------------------------------------------------ HTTP/1.1 answers
 *
 * http_parse looks for one complete answer at the start of the bytes received so far; the
 * caller re-parses from the start when more bytes arrive (answers here are a few hundred
 * bytes). Provisional 1xx answers are skipped. The body is delimited by Content-Length or
 * by chunked transfer coding (de-chunked into `scratch`; trailers are skipped); an answer
 * with neither (its end would be the connection's close) is refused, as is any other
 * transfer coding, since a keep-alive client cannot find its end. */

typedef enum { HTTP_NEED_MORE, HTTP_DONE, HTTP_BAD } http_parse_t;

typedef struct http_answer {
    int status;                     /* 100..999 */
    bool close;                     /* the server closes the connection after this answer */
    const uint8_t *body;            /* into the parsed bytes, or into scratch when chunked */
    size_t body_len;
    size_t consumed;                /* bytes of the stream taken, 1xx answers included */
} http_answer_t;

/* The first "\r\n" in [p, end): a pointer to its '\r', or NULL. */
static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
    for (; p + 1 < end; p++) {
        p = memchr(p, '\r', (size_t)(end - p - 1));
        if (!p)
            return NULL;
        if (p[1] == '\n')
            return p;
    }
    return NULL;
}

/* Does the comma-separated header value v[0..n) hold the token `tok` (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > start && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - start == tl && strncasecmp(v + start, tok, tl) == 0)
            return true;
    }
    return false;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static http_parse_t http_bad(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static http_parse_t http_bad(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return HTTP_BAD;
}

/* The chunked body starting at p: de-chunked into scratch, *body_end just after it. */
static http_parse_t http_parse_chunked(const uint8_t *p, const uint8_t *end, size_t max_body,
                                       pbf_buf_t *scratch, const uint8_t **body_end,
                                       char *why, size_t why_len)
{
    scratch->len = 0;
    for (;;) {
        const uint8_t *eol = find_crlf(p, end);
        if (!eol) {
            if ((size_t)(end - p) > MAX_HEAD_BYTES)
                return http_bad(why, why_len, "chunk-size line longer than %u bytes",
                                MAX_HEAD_BYTES);
            return HTTP_NEED_MORE;
        }
        size_t size = 0, digits = 0;
        const uint8_t *q = p;
        for (; q < eol && isxdigit(*q); q++, digits++) {
            if (size > max_body)
                break;
            size = size * 16 + (size_t)(isdigit(*q) ? *q - '0' : (tolower(*q) - 'a' + 10));
        }
        if (digits == 0)
            return http_bad(why, why_len, "chunk size is not a hexadecimal number");
        if (size > max_body || scratch->len + size > max_body)
            return http_bad(why, why_len, "chunked body exceeds %zu bytes", max_body);
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        if (q < eol && *q != ';')
            return http_bad(why, why_len, "junk after the chunk size");
        p = eol + 2;
        if (size == 0) {
            /* The last chunk: trailer fields (ignored) up to an empty line. */
            for (;;) {
                eol = find_crlf(p, end);
                if (!eol) {
                    if ((size_t)(end - p) > MAX_HEAD_BYTES)
                        return http_bad(why, why_len, "trailer longer than %u bytes",
                                        MAX_HEAD_BYTES);
                    return HTTP_NEED_MORE;
                }
                if (eol == p) {
                    *body_end = p + 2;
                    return HTTP_DONE;
                }
                p = eol + 2;
            }
        }
        if ((size_t)(end - p) < size + 2)
            return HTTP_NEED_MORE;
        if (p[size] != '\r' || p[size + 1] != '\n')
            return http_bad(why, why_len, "chunk data not followed by CRLF");
        if (!pbf_buf_reserve(scratch, size))
            return http_bad(why, why_len, "no memory for a chunked body");
        memcpy(scratch->data + scratch->len, p, size);
        scratch->len += size;
        p += size + 2;
    }
}

/* One answer at the start of bytes[0..len). HTTP_BAD: *why says what is wrong (the stream
 * cannot be trusted any more). */
static http_parse_t http_parse(const uint8_t *bytes, size_t len, size_t max_body,
                               pbf_buf_t *scratch, http_answer_t *out, char *why,
                               size_t why_len)
{
    const uint8_t *p = bytes, *end = bytes + len;
    for (;;) {
        /* The head: the status line and the header lines, up to an empty line. */
        const uint8_t *head_end = NULL;
        for (const uint8_t *line = p;;) {
            const uint8_t *eol = find_crlf(line, end);
            if (!eol)
                break;
            if (eol == line) {
                head_end = eol + 2;
                break;
            }
            line = eol + 2;
        }
        if (!head_end) {
            if ((size_t)(end - p) > MAX_HEAD_BYTES)
                return http_bad(why, why_len, "no end of the headers within %u bytes",
                                MAX_HEAD_BYTES);
            /* Fail early on a stream that is not HTTP at all. */
            size_t have = (size_t)(end - p) < 7 ? (size_t)(end - p) : 7;
            if (memcmp(p, "HTTP/1.", have) != 0)
                return http_bad(why, why_len, "not an HTTP/1.x answer");
            return HTTP_NEED_MORE;
        }
        const uint8_t *eol = find_crlf(p, head_end);
        /* "HTTP/1.x SSS[ reason]" */
        if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit(p[7]) || p[8] != ' ' ||
            !isdigit(p[9]) || !isdigit(p[10]) || !isdigit(p[11]) ||
            (eol - p > 12 && p[12] != ' ') || p[9] == '0')
            return http_bad(why, why_len, "bad status line '%.*s'",
                            (int)(eol - p < 80 ? eol - p : 80), (const char *)p);
        int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        bool http10 = p[7] == '0';
        bool close = http10, chunked = false, have_length = false;
        size_t content_length = 0;
        for (const uint8_t *line = eol + 2; line < head_end - 2; line = eol + 2) {
            eol = find_crlf(line, head_end);
            const char *l = (const char *)line;
            size_t n = (size_t)(eol - line);
            const char *colon = memchr(l, ':', n);
            if (!colon || colon == l || l[0] == ' ' || l[0] == '\t')
                return http_bad(why, why_len, "bad header line '%.*s'", (int)(n < 80 ? n : 80),
                                l);
            size_t name_len = (size_t)(colon - l);
            const char *v = colon + 1, *ve = l + n;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vn = (size_t)(ve - v);
            if (name_is(l, name_len, "content-length")) {
                size_t cl = 0;
                if (vn == 0)
                    return http_bad(why, why_len, "empty Content-Length");
                for (size_t i = 0; i < vn; i++) {
                    if (!isdigit((unsigned char)v[i]) || cl > max_body)
                        return http_bad(why, why_len, "bad Content-Length '%.*s'",
                                        (int)(vn < 40 ? vn : 40), v);
                    cl = cl * 10 + (size_t)(v[i] - '0');
                }
                if (have_length && cl != content_length)
                    return http_bad(why, why_len, "two different Content-Length values");
                have_length = true;
                content_length = cl;
            } else if (name_is(l, name_len, "transfer-encoding")) {
                if (has_token(v, vn, "chunked"))
                    chunked = true;
                if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0) &&
                    !(vn == 8 && strncasecmp(v, "identity", 8) == 0))
                    return http_bad(why, why_len, "unsupported Transfer-Encoding '%.*s'",
                                    (int)(vn < 40 ? vn : 40), v);
            } else if (name_is(l, name_len, "connection")) {
                if (has_token(v, vn, "close"))
                    close = true;
                else if (http10 && has_token(v, vn, "keep-alive"))
                    close = false;
            }
        }
        if (status < 200) {
            p = head_end; /* provisional (100 Continue...): the real answer follows */
            continue;
        }
        out->status = status;
        out->close = close;
        if (status == 204 || status == 304) {
            out->body = head_end;
            out->body_len = 0;
            out->consumed = (size_t)(head_end - bytes);
            return HTTP_DONE;
        }
        if (chunked && have_length)
            return http_bad(why, why_len, "both Content-Length and chunked encoding");
        if (chunked) {
            const uint8_t *body_end = NULL;
            http_parse_t r = http_parse_chunked(head_end, end, max_body, scratch, &body_end,
                                                why, why_len);
            if (r != HTTP_DONE)
                return r;
            out->body = scratch->data;
            out->body_len = scratch->len;
            out->consumed = (size_t)(body_end - bytes);
            return HTTP_DONE;
        }
        if (!have_length)
            return http_bad(why, why_len,
                            "answer %d without Content-Length or chunked encoding", status);
        if (content_length > max_body)
            return http_bad(why, why_len, "answer body of %zu bytes exceeds %zu",
                            content_length, max_body);
        if ((size_t)(end - head_end) < content_length)
            return HTTP_NEED_MORE;
        out->body = head_end;
        out->body_len = content_length;
        out->consumed = (size_t)(head_end - bytes) + content_length;
        return HTTP_DONE;
    }
}

/* Does the JSON text body[0..n) hold the member name `"name":`? The gateway's keys and
 * values are base64 and its numbers are quoted digits, so a field name cannot be faked by
 * data. */
static bool json_has_field(const uint8_t *body, size_t n, const char *name)
{
    char pat[64];
    int pl = snprintf(pat, sizeof pat, "\"%s\":", name);
    return pl > 0 && (size_t)pl < sizeof pat && memmem(body, n, pat, (size_t)pl) != NULL;
}

/* ------------------------------------------------------------------ operations and errors */

typedef enum { OP_GET, OP_PUT, OP_COUNT } op_t;
static const char *const op_names[OP_COUNT] = {"get", "put"};

typedef enum { WL_PUT, WL_GET, WL_LOAD } workload_t;
static const char *const workload_names[] = {"put", "get", "load"};

typedef enum {
    E_OK, E_CONNECT, E_IO, E_TIMEOUT, E_HTTP, E_SERVER, E_PROTO, E_NOMEM, E_SLOTS
} err_t;
static const char *const err_names[E_SLOTS] = {
    "ok", "econnect", "eio", "timeout", "http", "server", "proto", "nomem"};

typedef bench_op_stats_t op_stats_t;
_Static_assert(E_SLOTS <= BENCH_MAX_ERR_SLOTS, "bench_op_stats_t has room for every slot");

/* How the report names this program's operations and errors. */
static const bench_report_t report = {op_names, OP_COUNT, OP_GET, err_names, E_SLOTS};

/* ------------------------------------------------------------------ configuration */

typedef struct bench_cfg {
    const char *hosts;
    workload_t workload;
    unsigned threads;               /* loop threads */
    uint64_t keys;
    size_t value_size;
    unsigned concurrency;
    double duration_s;              /* 0 with ops > 0: run by count */
    uint64_t ops;
    bool preload;
    bool serializable;              /* gets: serializable instead of linearizable */
    uint32_t timeout_ms;
    bool json, quiet;
    uint64_t seed;
} bench_cfg_t;

/* One loop thread: the program's side of eng.loops[id] (whose user it is). */
typedef struct worker {
    pthread_t thread;
    unsigned id;
    uint64_t rng;
    char *value_b64;                /* base64 of this worker's random value, owned */
    size_t value_b64_len;
    op_stats_t stats[OP_COUNT];
    _Atomic uint64_t progress_ops, progress_errors;  /* read by the progress line */
    _Atomic uint64_t end_ns;        /* when this worker's phase ended; 0 while it runs */
    char first_error[ERRMSG_LEN];   /* first error seen, for the report ("" if none) */
    unsigned first_error_conn;
} worker_t;

static bench_cfg_t cfg;
static atomic_bool stop_requested; /* the deadline passed, or a signal came */
static atomic_bool signalled;      /* SIGINT/SIGTERM: stop early, still report */
static _Atomic uint64_t ops_issued; /* with --ops: operations handed out so far */
static workload_t phase_workload;   /* what the running phase does (load or cfg.workload) */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&signalled, true);
    atomic_store(&stop_requested, true);
}

static size_t key_text(char *buf, uint64_t k)
{
    return (size_t)snprintf(buf, KEY_BUF, "key:%012" PRIu64, k);
}

static bool may_issue_one_more(void)
{
    if (atomic_load_explicit(&stop_requested, memory_order_relaxed))
        return false;
    if (cfg.ops == 0 || phase_workload == WL_LOAD)
        return true;
    return atomic_fetch_add_explicit(&ops_issued, 1, memory_order_relaxed) < cfg.ops;
}

/* Counts a failed request; the first one's text is kept for the report. */
static void count_error(worker_t *wk, unsigned conn_id, op_t op, err_t code, const char *detail)
{
    wk->stats[op].errors[code]++;
    atomic_fetch_add_explicit(&wk->progress_errors, 1, memory_order_relaxed);
    if (wk->first_error[0] == '\0') {
        snprintf(wk->first_error, sizeof wk->first_error, "%s %s%s%s", op_names[op],
                 err_names[code], detail && detail[0] ? ": " : "", detail ? detail : "");
        wk->first_error_conn = conn_id;
    }
}

/* ------------------------------------------------------------------ connections
 *
 * The connections, their connecting, failover and deadlines are bench/event_engine.c's;
 * here are the HTTP requests and answers and their counting. -h is resolved once at setup:
 * host[:port] or [v6addr][:port] entries (the port defaults to 2379); connection i starts
 * at member i mod M.
 *
 * An answer other than 200 keeps the connection (HTTP framing is intact); a broken
 * connection (eio, then a 10 ms pause), no connectable member (econnect, same pause), no
 * answer before the deadline (timeout) or a malformed answer (proto) close it, and the next
 * request reconnects, starting at the next member. An answer with "Connection: close"
 * closes it after the answer; the next request reconnects to the same member. */

/* What etcd-bench keeps per connection: the engine's user state (zeroed at setup). */
typedef struct ev_conn {
    http_answer_t answer;           /* the answer ev_parse found (points into the conn's in
                                     * or into chunks) */
    pbf_buf_t chunks;               /* a chunked answer's body, de-chunked (owned) */
    op_t op;                        /* the request in flight */
    uint64_t next_load_key;         /* load: this connection writes id, id+C, id+2C, ... */
} ev_conn_t;

static ee_engine_t eng;             /* the event engine's loops and connections */
static char timeout_why[64];        /* "no answer within N ms" */

static ev_conn_t *ev_of(const ee_conn_t *c)
{
    return c->user;
}

static worker_t *ev_worker(const ee_conn_t *c)
{
    return c->loop->user;
}

/* ee_ops_t.failed */
static void ev_failed(ee_conn_t *c, int code, const char *detail)
{
    count_error(ev_worker(c), c->id, ev_of(c)->op, (err_t)code, detail);
}

/* ------------------------------------------------------------------ requests */

/* Writes the HTTP request for the connection's op on key k into c->out. false: out of
 * memory. */
static bool build_request(ee_conn_t *c, uint64_t k)
{
    char key[KEY_BUF], key64[KEY_BUF * 2];
    size_t key_len = key_text(key, k);
    size_t key64_len = b64_encode((const uint8_t *)key, key_len, key64);
    const worker_t *wk = ev_worker(c);
    const char *path, *mid = "", *tail;
    size_t value_len = 0;
    if (ev_of(c)->op == OP_PUT) {
        path = "/v3/kv/put";
        mid = "\",\"value\":\"";
        value_len = wk->value_b64_len;
        tail = "\"}";
    } else {
        path = "/v3/kv/range";
        tail = cfg.serializable ? "\",\"serializable\":true}" : "\"}";
    }
    static const char open_key[] = "{\"key\":\"";
    size_t body_len = strlen(open_key) + key64_len + strlen(mid) + value_len + strlen(tail);
    char head[512];
    int head_len = snprintf(head, sizeof head,
                            "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            path, ee_label(c), body_len);
    if (head_len < 0 || (size_t)head_len >= sizeof head)
        return false;
    c->out.len = c->out_sent = 0;
    if (!pbf_buf_reserve(&c->out, (size_t)head_len + body_len))
        return false;
    uint8_t *o = c->out.data;
#define PUT_BYTES(src, n) (memcpy(o, (src), (n)), o += (n))
    PUT_BYTES(head, (size_t)head_len);
    PUT_BYTES(open_key, strlen(open_key));
    PUT_BYTES(key64, key64_len);
    PUT_BYTES(mid, strlen(mid));
    if (value_len)
        PUT_BYTES(wk->value_b64, value_len);
    PUT_BYTES(tail, strlen(tail));
#undef PUT_BYTES
    c->out.len = (size_t)(o - c->out.data);
    return true;
}

/* ee_ops_t.issue: starts the next operation, or ends the connection's phase when there is
 * none. */
static void ev_issue(ee_conn_t *c)
{
    ev_conn_t *s = ev_of(c);
    uint64_t k;
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
        k = bench_rng_next(&ev_worker(c)->rng) % cfg.keys;
        s->op = phase_workload == WL_GET ? OP_GET : OP_PUT;
    }
    c->t_req_ns = bench_now_ns();
    if (!build_request(c, k)) {
        ee_fail(c, E_NOMEM, false, "building the request");
        return;
    }
    ee_send(c);
}

/* Quotes up to BODY_EXCERPT bytes of a body into dst (control bytes shown as '?'). */
static void body_excerpt(char *dst, size_t cap, const uint8_t *body, size_t n)
{
    size_t k = n < BODY_EXCERPT ? n : BODY_EXCERPT;
    if (k >= cap)
        k = cap - 1;
    for (size_t i = 0; i < k; i++)
        dst[i] = body[i] >= 0x20 && body[i] < 0x7f ? (char)body[i] : '?';
    dst[k] = '\0';
}

/* ee_ops_t.parse: one HTTP answer at the start of c->in. */
static ee_parse_t ev_parse(ee_conn_t *c, size_t *answer_len)
{
    ev_conn_t *s = ev_of(c);
    char why[DETAIL_LEN];
    switch (http_parse(c->in.data, c->in.len, MAX_ANSWER_BYTES, &s->chunks, &s->answer, why,
                       sizeof why)) {
    case HTTP_NEED_MORE:
        return EE_PARSE_NEED_MORE;
    case HTTP_BAD:
        ee_fail(c, E_PROTO, true, "%s: %s", ee_label(c), why);
        return EE_PARSE_FAILED;
    case HTTP_DONE:
        break;
    }
    *answer_len = s->answer.consumed;
    return EE_PARSE_ANSWER;
}

/* ee_ops_t.answer: a complete answer to the request in flight (the one ev_parse found). */
static void ev_answer(ee_conn_t *c, bool early)
{
    uint64_t t1 = bench_now_ns();
    ev_conn_t *s = ev_of(c);
    worker_t *wk = ev_worker(c);
    http_answer_t *a = &s->answer;
    char excerpt[BODY_EXCERPT + 1];
    if (early) {
        /* Answered before the whole request left: the rest would be read as a new request. */
        a->close = true;
        if (a->status == 200) {
            ee_fail(c, E_PROTO, true, "%s: answer before the request was sent", ee_label(c));
            return;
        }
    }
    if (a->status != 200) {
        body_excerpt(excerpt, sizeof excerpt, a->body, a->body_len);
        ee_fail(c, E_HTTP, a->close, "%s: HTTP %d: %s", ee_label(c), a->status, excerpt);
        return;
    }
    if (a->body_len == 0 || a->body[0] != '{') {
        body_excerpt(excerpt, sizeof excerpt, a->body, a->body_len);
        ee_fail(c, E_PROTO, true, "%s: 200 answer without a JSON object: '%s'", ee_label(c),
                excerpt);
        return;
    }
    if (json_has_field(a->body, a->body_len, "error")) {
        body_excerpt(excerpt, sizeof excerpt, a->body, a->body_len);
        ee_fail(c, E_SERVER, a->close, "%s: %s", ee_label(c), excerpt);
        return;
    }
    bench_hist_record(&wk->stats[s->op].hist, t1 - c->t_req_ns);
    if (s->op == OP_GET && !json_has_field(a->body, a->body_len, "kvs"))
        wk->stats[OP_GET].notfound++;
    atomic_fetch_add_explicit(&wk->progress_ops, 1, memory_order_relaxed);
    if (a->close)
        ee_close(c); /* the next request reconnects to the same member */
    ev_issue(c);
}

static const ee_ops_t ev_ops = {
    .issue = ev_issue, .parse = ev_parse, .answer = ev_answer, .failed = ev_failed,
    .after_break = NULL,
};

static void *event_loop_main(void *arg)
{
    worker_t *wk = arg;
    ee_loop_t *loop = &eng.loops[wk->id];
    for (unsigned i = 0; i < loop->n_conns; i++)
        ev_of(loop->conns[i])->next_load_key = loop->conns[i]->id;
    ee_loop_run(loop);
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

/* Runs `wl` on every loop until it ends (duration, count, key space, or a signal). */
static int run_phase(worker_t *ws, workload_t wl, phase_result_t *res)
{
    memset(res, 0, sizeof *res);
    phase_workload = wl;
    atomic_store(&ops_issued, 0);
    for (unsigned i = 0; i < cfg.threads; i++) {
        memset(ws[i].stats, 0, sizeof ws[i].stats);
        atomic_store(&ws[i].progress_ops, 0);
        atomic_store(&ws[i].progress_errors, 0);
        atomic_store(&ws[i].end_ns, 0);
    }

    double cpu0 = bench_cpu_seconds();
    uint64_t t0 = bench_now_ns();
    unsigned started = 0;
    for (; started < cfg.threads; started++) {
        if (pthread_create(&ws[started].thread, NULL, event_loop_main, &ws[started]) != 0) {
            fprintf(stderr, PROG ": cannot start loop thread %u\n", started);
            atomic_store(&stop_requested, true);
            break;
        }
    }

    /* Progress once a second; stop at the deadline (duration mode). A count-bound or load
     * phase ends when every loop has returned. */
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
            for (unsigned e = 0; e < E_SLOTS; e++)
                res->total[op].errors[e] += ws[i].stats[op].errors[e];
        }
    }
    /* Throughput is over the measured window: requests still in flight when it closed are
     * counted, but a straggler does not stretch the window. */
    if (t_end > t_stop)
        t_end = t_stop;
    res->elapsed_s = (double)(t_end - t0) / 1e9;
    res->client_cpu_s = bench_cpu_seconds() - cpu0;
    /* The next phase starts afresh (a stop by the deadline is not a stop of the program). */
    if (!atomic_load(&signalled))
        atomic_store(&stop_requested, false);
    return started < cfg.threads ? -1 : 0;
}

/* ------------------------------------------------------------------ report
 * (bench_common's formats, the same as cairn-bench's: scripts read both) */

static uint64_t ops_done(const phase_result_t *r)
{
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

/* ------------------------------------------------------------------ self-test
 *
 * --self-test checks base64 and the HTTP answer parser on fixed inputs, each answer also fed
 * one byte more at a time (every split must say "need more" until the last byte), so the
 * parser can be checked without an etcd. */

static unsigned st_failed, st_run;

static void st_check(bool ok, const char *what)
{
    st_run++;
    if (!ok) {
        st_failed++;
        fprintf(stderr, PROG ": self-test FAILED: %s\n", what);
    }
}

/* Parses `text` whole and at every prefix; checks the outcome and, when done, the fields. */
static void st_answer(const char *what, const char *text, http_parse_t want, int status,
                      bool close, const char *body, size_t consumed)
{
    size_t len = strlen(text);
    pbf_buf_t scratch = {0};
    http_answer_t a;
    char why[DETAIL_LEN], label[200];
    bool prefixes_ok = true;
    for (size_t cut = 0; cut < len && want == HTTP_DONE; cut++) {
        memset(&a, 0, sizeof a);
        if (http_parse((const uint8_t *)text, cut, 1024, &scratch, &a, why, sizeof why) !=
            HTTP_NEED_MORE)
            prefixes_ok = false;
    }
    snprintf(label, sizeof label, "%s: every proper prefix needs more", what);
    st_check(prefixes_ok, label);
    memset(&a, 0, sizeof a);
    why[0] = '\0';
    http_parse_t got = http_parse((const uint8_t *)text, len, 1024, &scratch, &a, why,
                                  sizeof why);
    snprintf(label, sizeof label, "%.60s: outcome %d, want %d (%.100s)", what, got, want, why);
    st_check(got == want, label);
    if (got == HTTP_DONE && want == HTTP_DONE) {
        snprintf(label, sizeof label, "%s: status %d, close %d, body '%.*s', consumed %zu",
                 what, a.status, a.close, (int)a.body_len, (const char *)a.body, a.consumed);
        st_check(a.status == status && a.close == close && a.body_len == strlen(body) &&
                     memcmp(a.body, body, a.body_len) == 0 && a.consumed == consumed,
                 label);
    }
    pbf_buf_free(&scratch);
}

static int self_test(void)
{
    static const struct { const char *in, *out; } b64[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, {"key:000000000042", "a2V5OjAwMDAwMDAwMDA0Mg=="},
    };
    for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++) {
        char out[64];
        size_t n = b64_encode((const uint8_t *)b64[i].in, strlen(b64[i].in), out);
        char label[120];
        snprintf(label, sizeof label, "base64('%s') = '%.*s', want '%s'", b64[i].in, (int)n, out,
                 b64[i].out);
        st_check(n == strlen(b64[i].out) && n == b64_len(strlen(b64[i].in)) &&
                     memcmp(out, b64[i].out, n) == 0,
                 label);
    }
    const uint8_t bin[3] = {0xfb, 0xff, 0x00};
    char out[8];
    st_check(b64_encode(bin, 3, out) == 4 && memcmp(out, "+/8A", 4) == 0, "base64 of binary");

    const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: 13\r\n\r\n{\"header\":{}}";
    st_answer("content-length", ok, HTTP_DONE, 200, false, "{\"header\":{}}", strlen(ok));
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5;x=y\r\n{\"a\":\r\nb \r\n\"bcdefghij\"\r\n1\r\n}\r\n"
                          "0\r\nX-T: 1\r\n\r\n";
    st_answer("chunked with extension and trailer", chunked, HTTP_DONE, 200, false,
              "{\"a\":\"bcdefghij\"}", strlen(chunked));
    const char *cont = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n"
                       "content-length: 2\r\nConnection: close\r\n\r\nno";
    st_answer("1xx then 404 with close", cont, HTTP_DONE, 404, true, "no", strlen(cont));
    const char *h10 = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    st_answer("HTTP/1.0 closes", h10, HTTP_DONE, 200, true, "", strlen(h10));
    const char *ka = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx";
    st_answer("HTTP/1.0 keep-alive", ka, HTTP_DONE, 200, false, "x", strlen(ka));
    const char *nc = "HTTP/1.1 204 No Content\r\n\r\n";
    st_answer("204 has no body", nc, HTTP_DONE, 204, false, "", strlen(nc));
    /* Two answers back to back: the first one is taken, the rest left. */
    char two[256];
    snprintf(two, sizeof two, "%s%s", ok, ok);
    pbf_buf_t scratch = {0};
    http_answer_t a;
    char why[DETAIL_LEN];
    st_check(http_parse((const uint8_t *)two, strlen(two), 1024, &scratch, &a, why, sizeof why) ==
                     HTTP_DONE &&
                 a.consumed == strlen(ok),
             "two answers: the first is consumed alone");
    pbf_buf_free(&scratch);

    st_answer("not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", HTTP_BAD, 0, false, "", 0);
    st_answer("garbage early", "XYZ", HTTP_BAD, 0, false, "", 0);
    st_answer("bad status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", HTTP_BAD, 0, false,
              "", 0);
    st_answer("bad header", "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n",
              HTTP_BAD, 0, false, "", 0);
    st_answer("no length", "HTTP/1.1 200 OK\r\n\r\n{}", HTTP_BAD, 0, false, "", 0);
    st_answer("length and chunked",
              "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
              HTTP_BAD, 0, false, "", 0);
    st_answer("gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
              HTTP_BAD, 0, false, "", 0);
    st_answer("conflicting lengths",
              "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", HTTP_BAD, 0,
              false, "", 0);
    st_answer("body too big", "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n", HTTP_BAD, 0,
              false, "", 0);
    st_answer("bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
              HTTP_BAD, 0, false, "", 0);
    st_answer("chunk without CRLF",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
              HTTP_BAD, 0, false, "", 0);
    st_answer("chunks too big",
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", HTTP_BAD, 0,
              false, "", 0);

    const char *range = "{\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\"}],\"count\":\"1\"}";
    const char *err = "{\"error\":\"etcdserver: request timed out\",\"code\":14}";
    st_check(json_has_field((const uint8_t *)range, strlen(range), "kvs") &&
                 !json_has_field((const uint8_t *)range, strlen(range), "error"),
             "a range answer holds kvs and no error");
    st_check(json_has_field((const uint8_t *)err, strlen(err), "error"), "an error answer");

    printf(PROG ": self-test: %u of %u checks passed\n", st_run - st_failed, st_run);
    return st_failed ? 1 : 0;
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *to)
{
    fprintf(to,
"usage: " PROG " [options] put|get|load\n"
"       " PROG " --self-test\n"
"\n"
"Drives an etcd v3 cluster through its JSON gateway (HTTP/1.1 keep-alive; POST /v3/kv/put\n"
"and /v3/kv/range on each member's client URL) and reports ops/s and latency, in the\n"
"formats of cairn-bench.\n"
"Workloads:\n"
"  put      writes of --value-size bytes to a random key\n"
"  get      reads of a random key, linearizable unless --serializable (use --preload so\n"
"           they hit; a missing key counts as notfound, not as an error)\n"
"  load     writes every key of the key space once, then stops (what --preload runs)\n"
"Options:\n"
"  -h, --hosts H:P[,H:P..]  members' client URLs as host:port (default 127.0.0.1:2379);\n"
"                           connection i talks to member i mod M, the next one after an\n"
"                           error\n"
"  -c, --concurrency C      connections, each with one request outstanding at a time\n"
"                           (default 50, max %d)\n"
"      --threads T          loop threads, the connections spread over them (default 1,\n"
"                           at most -c)\n"
"      --duration S         run for S seconds (default 10; max 86400)\n"
"  -n, --ops N              run N operations in total instead of for a duration\n"
"      --keys N             key space size, keys key:000000000000.. (default 100000)\n"
"      --value-size B       value bytes (default 100, max 16 MiB)\n"
"      --preload            write every key once before the timed run\n"
"      --serializable       gets are serializable (any member answers from its own state)\n"
"                           instead of linearizable (the default)\n"
"      --timeout-ms MS      per request; no answer by then is a timeout (default 10000)\n"
"      --seed N             random seed (default: time-based)\n"
"      --json               one JSON object on stdout instead of text\n"
"  -q, --quiet              no header or progress line on stderr\n"
"      --self-test          check base64 and the HTTP parser on fixed inputs, then exit\n"
"      --help               this text\n"
"Output: a progress line once a second on stderr; at the end, per operation: count, ops/s,\n"
"latency p50/p95/p99/p99.9/max/mean in ms and errors by class (econnect, eio, timeout,\n"
"http: a status other than 200, server: an \"error\" field in a 200 answer, proto, nomem);\n"
"plus the client's own CPU time per operation. Exit status: 0 if the run completed (even\n"
"with request errors), 1 on a setup failure (no connection), 2 on bad options.\n",
            MAX_CONCURRENCY);
}

/* Returns true when --self-test was asked for. */
static bool parse_args(int argc, char **argv)
{
    enum {
        O_DURATION = 1000, O_KEYS, O_VALUE_SIZE, O_PRELOAD, O_SERIALIZABLE, O_TIMEOUT, O_SEED,
        O_JSON, O_HELP, O_THREADS, O_SELF_TEST
    };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, 'h'},
        {"host", required_argument, NULL, 'h'},
        {"concurrency", required_argument, NULL, 'c'},
        {"ops", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"duration", required_argument, NULL, O_DURATION},
        {"keys", required_argument, NULL, O_KEYS},
        {"value-size", required_argument, NULL, O_VALUE_SIZE},
        {"preload", no_argument, NULL, O_PRELOAD},
        {"serializable", no_argument, NULL, O_SERIALIZABLE},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {"threads", required_argument, NULL, O_THREADS},
        {"self-test", no_argument, NULL, O_SELF_TEST},
        {NULL, 0, NULL, 0},
    };
    cfg = (bench_cfg_t){
        .hosts = "127.0.0.1:2379", .keys = 100000, .value_size = 100, .concurrency = 50,
        .duration_s = 10.0, .timeout_ms = 10000, .seed = 0, .threads = 1,
    };
    bool duration_given = false, self_test_wanted = false;
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
        case O_VALUE_SIZE: cfg.value_size = (size_t)bench_parse_u64("--value-size", optarg, 0, MAX_VALUE_SIZE); break;
        case O_PRELOAD: cfg.preload = true; break;
        case O_SERIALIZABLE: cfg.serializable = true; break;
        case O_TIMEOUT: cfg.timeout_ms = (uint32_t)bench_parse_u64("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS); break;
        case O_SEED: cfg.seed = bench_parse_u64("--seed", optarg, 0, UINT64_MAX); break;
        case O_JSON: cfg.json = true; break;
        case O_HELP: usage(stdout); exit(0);
        case O_THREADS: cfg.threads = (unsigned)bench_parse_u64("--threads", optarg, 1, MAX_THREADS); break;
        case O_SELF_TEST: self_test_wanted = true; break;
        case ':':
            fprintf(stderr, PROG ": %s needs a value (see --help)\n", argv[optind - 1]);
            exit(2);
        default:
            fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", argv[optind - 1]);
            exit(2);
        }
    }
    if (self_test_wanted) {
        if (optind != argc) {
            fprintf(stderr, PROG ": --self-test takes no workload\n");
            exit(2);
        }
        return true;
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one workload (put, get or load)%s\n",
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
        bench_bad_option("workload", "expected put, get or load", wl);
    if (cfg.ops && duration_given) {
        fprintf(stderr, PROG ": give --duration or --ops, not both\n");
        exit(2);
    }
    if (cfg.ops)
        cfg.duration_s = 0;
    if (cfg.threads > cfg.concurrency) {
        fprintf(stderr, PROG ": --threads %u exceeds --concurrency %u: every loop thread needs "
                        "a connection\n", cfg.threads, cfg.concurrency);
        exit(2);
    }
    if (cfg.seed == 0)
        cfg.seed = bench_now_ns() ^ ((uint64_t)getpid() << 32);
    return false;
}

/* ------------------------------------------------------------------ setup and main */

static void print_header(FILE *to)
{
    fprintf(to, "%s: %s against %s, %u connections (%u loop thread%s)", PROG,
            workload_names[cfg.workload], cfg.hosts, cfg.concurrency, cfg.threads,
            cfg.threads == 1 ? "" : "s");
    fprintf(to, ", %" PRIu64 " keys (uniform), %zu-byte values", cfg.keys, cfg.value_size);
    if (cfg.ops)
        fprintf(to, ", %" PRIu64 " ops", cfg.ops);
    else if (cfg.workload != WL_LOAD)
        fprintf(to, ", %.1f s", cfg.duration_s);
    if (cfg.workload == WL_GET)
        fprintf(to, ", %s reads", cfg.serializable ? "serializable" : "linearizable");
    fprintf(to, "\n");
}

static void print_first_errors(const worker_t *ws)
{
    for (unsigned i = 0; i < cfg.threads; i++) {
        if (ws[i].first_error[0]) {
            fprintf(stderr, PROG ": first error (connection %u): %s\n", ws[i].first_error_conn,
                    ws[i].first_error);
            return;
        }
    }
}

/* An epoll set per loop, connection i on loop i % threads and member i % members, every
 * connection open before the run. Exits 1 if one cannot connect. */
static void setup(worker_t *ws)
{
    snprintf(timeout_why, sizeof timeout_why, "no answer within %u ms", cfg.timeout_ms);
    ee_config_t ec = {
        .prog = PROG, .hosts = cfg.hosts, .default_port = DEFAULT_PORT, .node_noun = "member",
        .concurrency = cfg.concurrency, .threads = cfg.threads, .spread = true,
        .failover = EE_FAILOVER_ON_ERROR, .request_timeout_ns = cfg.timeout_ms * 1000000ull,
        .timeout_why = timeout_why,
        .err_connect = E_CONNECT, .err_io = E_IO, .err_timeout = E_TIMEOUT,
        .err_nomem = E_NOMEM, .err_proto = E_PROTO,
        .conn_user_size = sizeof(ev_conn_t), .ops = &ev_ops, .stop = &stop_requested,
    };
    if (ee_setup(&eng, &ec) != 0)
        exit(1);
    for (unsigned t = 0; t < cfg.threads; t++)
        eng.loops[t].user = &ws[t];
    for (unsigned i = 0; i < cfg.concurrency; i++) {
        if (ee_connect_sync(&eng, i) != 0) {
            fprintf(stderr, PROG ": connecting to %s (connection %u): %s\n", cfg.hosts, i,
                    eng.conns[i].connect_why);
            exit(1);
        }
    }
}

static void teardown(worker_t *ws)
{
    for (unsigned i = 0; i < cfg.threads; i++)
        free(ws[i].value_b64);
    for (unsigned i = 0; eng.conns && i < cfg.concurrency; i++)
        pbf_buf_free(&ev_of(&eng.conns[i])->chunks);
    ee_teardown(&eng);
    free(ws);
}

int main(int argc, char **argv)
{
    bench_set_prog_name(PROG);
    if (parse_args(argc, argv))
        return self_test();

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    worker_t *ws = calloc(cfg.threads, sizeof *ws);
    if (!ws) {
        fprintf(stderr, PROG ": out of memory for %u loops\n", cfg.threads);
        return 1;
    }
    uint64_t seed_state = cfg.seed;
    uint8_t *value = malloc(cfg.value_size ? cfg.value_size : 1);
    if (!value) {
        fprintf(stderr, PROG ": out of memory for values\n");
        return 1;
    }
    for (unsigned i = 0; i < cfg.threads; i++) {
        ws[i].id = i;
        ws[i].rng = bench_rng_next(&seed_state);
        for (size_t b = 0; b < cfg.value_size; b++)
            value[b] = (uint8_t)bench_rng_next(&ws[i].rng);
        ws[i].value_b64 = malloc(b64_len(cfg.value_size) + 1);
        if (!ws[i].value_b64) {
            fprintf(stderr, PROG ": out of memory for values\n");
            return 1;
        }
        ws[i].value_b64_len = b64_encode(value, cfg.value_size, ws[i].value_b64);
    }
    free(value);
    setup(ws);
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
        printf(",\"threads\":%u,\"concurrency\":%u,\"keys\":%" PRIu64 ",\"dist\":\"uniform\","
               "\"value_size\":%zu,\"reads\":\"%s\",\"interrupted\":%s",
               cfg.threads, cfg.concurrency, cfg.keys, cfg.value_size,
               cfg.serializable ? "serializable" : "linearizable",
               interrupted ? "true" : "false");
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
    return 0;
}
