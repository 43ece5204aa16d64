/*
 * cairn-check — `cairn-check`, the checker of acknowledged writes. It owns: reading the ack
 * logs cairn-bench writes with --ack-log (bench/ack_log.h), reading every logged key back
 * from a cluster through libcairn, judging each key against the writes logged for it, and
 * the text/JSON report. Two offline helpers for scripts/scale-test.sh live in
 * bench/node_inspect.c: --owners (a ring file's owners) and --scan (what a data directory
 * holds per partition).
 *
 *   cairn-check [options] ACK_LOG...          (cairn-check --help for the list)
 *   cairn-check --owners RING_FILE [--json]
 *   cairn-check --scan DATA_DIR --node NAME [--ring RING_FILE] [--json]
 *
 * The judgement, per key (every key with at least one acknowledged write is read once with
 * R = --r, default all, PR = --pr, default not sent, and notfound_ok=false, so that a
 * replica without the key does not count toward R):
 *   present   a sibling's value is the value of an acknowledged write of the key (compared
 *             by length and XXH3-64 digest): "as the value" when it is the only sibling,
 *             "among siblings" otherwise;
 *   unacked   no acknowledged value, but the value of a logged failed write (its outcome was
 *             unknown: it may have been applied and superseded the acknowledged one). Not a
 *             failure, reported apart;
 *   wrong     found, but no sibling holds any logged value of the key;
 *   missing   not found (some replica of the N lacks it). Then read once more with R=1: if
 *             that finds nothing either, the write is on no replica ("lost everywhere").
 *             The first read's read repair may have fixed the replicas by then;
 *   error     the read failed --retries + 1 times (timeouts, overload, unreachable nodes):
 *             not verified.
 * For a key written more than once, "latest" tells whether the acknowledged write that
 * ended last is among the siblings (informational: concurrent writers make any of them
 * legitimate).
 *
 * Exit status: 0 every acknowledged write is present; 1 an acknowledged write is missing or
 * wrong; 2 bad usage; 3 nothing missing or wrong, but some keys could not be read (or a log
 * could not be read, or the run was interrupted). Every wait is bounded: each read by
 * --timeout-ms (plus libcairn's 1 s of grace), each connection attempt by 2 s per node, the
 * retries by their count (200 ms doubling up to 2 s between attempts).
 */
#include "bench/ack_log.h"
#include "bench/bench_common.h"
#include "bench/node_inspect.h"
#include "client/cairn.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "cairn-check"

#define MAX_CONCURRENCY 256
#define MAX_RETRIES 100
#define RETRY_BASE_MS 200u
#define RETRY_MAX_MS 2000u
#define CONNECT_TIMEOUT_MS 2000u
#define MAX_TIMEOUT_MS 3600000u
#define MAX_N_VAL 1024u
#define ERRMSG_LEN 200

#define EXIT_OK 0
#define EXIT_LOST 1
#define EXIT_USAGE 2
#define EXIT_INCOMPLETE 3

/* ------------------------------------------------------------------ configuration */

static struct {
    const char *hosts;
    unsigned concurrency;
    uint32_t r, pr;                 /* pr 0: not sent */
    uint32_t timeout_ms;
    unsigned retries;
    unsigned show;                  /* examples listed per outcome */
    bool json, quiet;
    char **logs;
    int n_logs;
} cfg;

/* ------------------------------------------------------------------ writes and keys */

/* One logged put. */
typedef struct write_s {
    char *id;                       /* "TYPE BUCKET KEY", canonically encoded (owned) */
    bool acked;
    int64_t t_start_ms, t_end_ms;
    uint64_t len, digest;
    char error[16];                 /* a failed write's error name */
} write_t;

typedef enum {
    OUT_UNCHECKED, OUT_VALUE, OUT_SIBLING, OUT_UNACKED, OUT_WRONG, OUT_MISSING, OUT_ERROR
} outcome_t;

/* One distinct key and what its read found. */
typedef struct ckey_s {
    size_t first, count;            /* its writes: writes[first .. first + count), by t_end */
    size_t acked;                   /* of which acknowledged */
    size_t last_acked;              /* index in writes of the acked one that ended last */
    char *names;                    /* the decoded names below point into it (owned) */
    const char *type;               /* NULL: no type sent */
    const char *bucket, *key;
    size_t bucket_len, key_len;
    outcome_t outcome;
    bool latest;                    /* present: the last acked write's value is there */
    bool lost;                      /* missing: not found at R=1 either */
    bool lost_known;                /* missing: the R=1 read answered */
    size_t siblings;                /* live siblings found */
    int error;                      /* OUT_ERROR: the last attempt's code */
    char errmsg[ERRMSG_LEN];        /* OUT_ERROR: its details */
} ckey_t;

static write_t *writes;
static size_t n_writes, cap_writes;
static ckey_t *keys;
static size_t n_keys;

static atomic_bool stop_requested;
static _Atomic size_t next_key, keys_done;
static _Atomic uint64_t retries_made;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_requested, true);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(EXIT_INCOMPLETE);
    }
    return p;
}

static void sleep_ms(unsigned ms)
{
    bench_sleep_ns((long)ms * 1000000L);
}

/* The canonical id of a record: its three names encoded as the log format does. */
static char *record_id(const ack_rec_t *r)
{
    size_t cap = 3 * (r->type_len + r->bucket_len + r->key_len) + 8;
    char *id = xmalloc(cap);
    size_t o = 0;
    if (r->type) {
        o = ack_encode_name(r->type, r->type_len, id, cap);
    } else {
        id[0] = '-';
        o = 1;
    }
    id[o++] = ' ';
    o += ack_encode_name(r->bucket, r->bucket_len, id + o, cap - o);
    id[o++] = ' ';
    ack_encode_name(r->key, r->key_len, id + o, cap - o);
    return id;
}

static void add_write(const ack_rec_t *r)
{
    if (n_writes == cap_writes) {
        cap_writes = cap_writes ? 2 * cap_writes : 4096;
        write_t *grown = realloc(writes, cap_writes * sizeof *grown);
        if (!grown) {
            fprintf(stderr, PROG ": out of memory for %zu writes\n", cap_writes);
            exit(EXIT_INCOMPLETE);
        }
        writes = grown;
    }
    write_t *w = &writes[n_writes++];
    memset(w, 0, sizeof *w);
    w->id = record_id(r);
    w->acked = r->acked;
    w->t_start_ms = r->t_start_ms;
    w->t_end_ms = r->t_end_ms;
    w->len = r->value_len;
    w->digest = r->digest;
    if (!r->acked)
        snprintf(w->error, sizeof w->error, "%s", r->error);
}

/* Reads one ack log into writes. false (message printed) when it is not an ack log or a
 * line is malformed; a malformed last line without its newline (a writer killed in the
 * middle of a write) is only warned about. */
static bool read_log(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned long lineno = 0;
    bool ok = true;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        bool complete = line[got - 1] == '\n';
        if (complete)
            line[got - 1] = '\0';
        if (lineno == 1) {
            if (strncmp(line, ACK_LOG_MAGIC, strlen(ACK_LOG_MAGIC)) != 0) {
                fprintf(stderr, PROG ": %s: not an ack log (its first line is not '%s')\n",
                        path, ACK_LOG_MAGIC);
                ok = false;
                break;
            }
            continue;
        }
        ack_rec_t r;
        char err[200];
        int rc = ack_parse_line(line, &r, err, sizeof err);
        if (rc < 0 && !complete) {
            fprintf(stderr, PROG ": %s:%lu: ignoring a truncated last line (%s)\n", path,
                    lineno, err);
            break;
        }
        if (rc < 0) {
            fprintf(stderr, PROG ": %s:%lu: %s\n", path, lineno, err);
            ok = false;
            break;
        }
        if (rc > 0)
            add_write(&r);
    }
    if (ok && lineno == 0) {
        fprintf(stderr, PROG ": %s: empty file, not an ack log\n", path);
        ok = false;
    }
    if (ok && ferror(f)) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(f);
    return ok;
}

static int cmp_write(const void *a, const void *b)
{
    const write_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->t_end_ms < y->t_end_ms ? -1 : x->t_end_ms > y->t_end_ms;
}

/* Sorts the writes by key and end time and makes one ckey_t per distinct key. */
static void group_keys(void)
{
    qsort(writes, n_writes, sizeof *writes, cmp_write);
    keys = calloc(n_writes ? n_writes : 1, sizeof *keys);
    if (!keys) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(EXIT_INCOMPLETE);
    }
    for (size_t i = 0; i < n_writes;) {
        size_t j = i;
        ckey_t *k = &keys[n_keys++];
        k->first = i;
        while (j < n_writes && strcmp(writes[j].id, writes[i].id) == 0) {
            if (writes[j].acked) {
                k->acked++;
                k->last_acked = j; /* sorted by end time: the last one wins */
            }
            j++;
        }
        k->count = j - i;
        /* Decode the names once, from a copy of the id. */
        k->names = strdup(writes[i].id);
        if (!k->names) {
            fprintf(stderr, PROG ": out of memory\n");
            exit(EXIT_INCOMPLETE);
        }
        char *type = k->names, *bucket = strchr(type, ' ') + 1, *key = strchr(bucket, ' ') + 1;
        bucket[-1] = key[-1] = '\0';
        k->type = strcmp(type, "-") == 0 ? NULL : type;
        if (k->type)
            ack_decode_name(type);
        k->bucket_len = ack_decode_name(bucket);
        k->key_len = ack_decode_name(key);
        k->bucket = bucket;
        k->key = key;
        i = j;
    }
}

/* ------------------------------------------------------------------ reading */

typedef struct reader {
    pthread_t thread;
    unsigned id;
    char *hosts;                    /* cfg.hosts rotated to start at node id mod M (owned) */
    cairn_t *conn;                  /* NULL until connected */
} reader_t;

/* One read of k; *obj set on CAIRN_OK. The details of a failure go to why. */
static int read_once(reader_t *rd, const ckey_t *k, uint32_t r, uint32_t pr,
                     cairn_object_t **obj, char *why, size_t why_len)
{
    *obj = NULL;
    if (!rd->conn) {
        cairn_opts_t o = {.connect_timeout_ms = CONNECT_TIMEOUT_MS, .timeout_ms = cfg.timeout_ms};
        int rc = cairn_connect(rd->hosts, &o, &rd->conn);
        if (rc != CAIRN_OK) {
            snprintf(why, why_len, "%s", cairn_errmsg(NULL));
            return rc;
        }
    }
    cairn_get_opts_t o = {.type = k->type, .r = r, .pr = pr, .notfound_ok = CAIRN_FALSE,
                          .timeout_ms = cfg.timeout_ms};
    int rc = cairn_get(rd->conn, (cairn_buf_t){k->bucket, k->bucket_len},
                       (cairn_buf_t){k->key, k->key_len}, &o, obj);
    if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
        snprintf(why, why_len, "%s", cairn_errmsg(rd->conn));
    return rc;
}

/* read_once, again after a failure that is not a notfound, up to cfg.retries times. */
static int read_with_retries(reader_t *rd, const ckey_t *k, uint32_t r, uint32_t pr,
                             cairn_object_t **obj, char *why, size_t why_len)
{
    for (unsigned attempt = 0;; attempt++) {
        int rc = read_once(rd, k, r, pr, obj, why, why_len);
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND || attempt >= cfg.retries ||
            atomic_load(&stop_requested))
            return rc;
        atomic_fetch_add(&retries_made, 1);
        unsigned wait = RETRY_BASE_MS << (attempt < 4 ? attempt : 4);
        sleep_ms(wait < RETRY_MAX_MS ? wait : RETRY_MAX_MS);
    }
}

/* Judges what the read of k found. */
static void judge(ckey_t *k, const cairn_object_t *obj)
{
    bool any_acked = false, any_unacked = false;
    size_t live = 0;
    for (size_t s = 0; s < obj->n_siblings; s++) {
        const cairn_content_t *c = &obj->siblings[s];
        if (c->deleted)
            continue;
        live++;
        uint64_t d = ack_digest(c->value.data, c->value.len);
        for (size_t w = k->first; w < k->first + k->count; w++) {
            if (writes[w].len != c->value.len || writes[w].digest != d)
                continue;
            if (writes[w].acked) {
                any_acked = true;
                if (w == k->last_acked)
                    k->latest = true;
            } else {
                any_unacked = true;
            }
        }
    }
    k->siblings = live;
    if (any_acked)
        k->outcome = live == 1 ? OUT_VALUE : OUT_SIBLING;
    else if (any_unacked)
        k->outcome = OUT_UNACKED;
    else
        k->outcome = OUT_WRONG;
}

static void check_key(reader_t *rd, ckey_t *k)
{
    cairn_object_t *obj = NULL;
    char why[ERRMSG_LEN] = "";
    int rc = read_with_retries(rd, k, cfg.r, cfg.pr, &obj, why, sizeof why);
    if (rc == CAIRN_OK) {
        judge(k, obj);
    } else if (rc == CAIRN_ENOTFOUND) {
        k->outcome = OUT_MISSING;
        cairn_object_t *any = NULL;
        int rc1 = read_with_retries(rd, k, 1, 0, &any, why, sizeof why);
        k->lost_known = rc1 == CAIRN_OK || rc1 == CAIRN_ENOTFOUND;
        k->lost = rc1 == CAIRN_ENOTFOUND;
        cairn_object_free(any);
    } else {
        k->outcome = OUT_ERROR;
        k->error = rc;
        snprintf(k->errmsg, sizeof k->errmsg, "%s", why);
    }
    cairn_object_free(obj);
}

static void *reader_main(void *arg)
{
    reader_t *rd = arg;
    while (!atomic_load(&stop_requested)) {
        size_t i = atomic_fetch_add(&next_key, 1);
        if (i >= n_keys)
            break;
        if (keys[i].acked > 0)
            check_key(rd, &keys[i]);
        atomic_fetch_add(&keys_done, 1);
    }
    return NULL;
}

/* cfg.hosts with its entries rotated to start at entry `start` mod their count. */
static char *rotated_hosts(unsigned start)
{
    size_t len = strlen(cfg.hosts);
    unsigned count = 1;
    for (const char *p = cfg.hosts; *p; p++)
        count += *p == ',';
    char *out = xmalloc(len + 2);
    out[0] = '\0';
    const char *entry = cfg.hosts;
    for (unsigned i = 0; i < count; i++) { /* find entry start mod count */
        if (i == start % count)
            break;
        entry = strchr(entry, ',') + 1;
    }
    /* entry .. end, then start .. entry */
    size_t head = (size_t)(entry - cfg.hosts);
    memcpy(out, entry, len - head);
    size_t o = len - head;
    if (head > 0) {
        out[o++] = ',';
        memcpy(out + o, cfg.hosts, head - 1); /* without the comma before entry */
        o += head - 1;
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ report */

typedef struct totals {
    size_t checked, value, sibling, unacked, wrong, missing, lost, lost_unknown, errors;
    size_t unacked_only_keys, multi, multi_latest;
    uint64_t acked_writes, failed_writes;
    uint64_t errors_by_code[16];
} totals_t;

static unsigned code_slot(int code)
{
    return code < 0 && -code < 15 ? (unsigned)-code : 15;
}

static const char *code_name(unsigned slot)
{
    static const char *const names[16] = {
        "ok", "notfound", "einval", "econnect", "eio", "timeout", "server", "proto",
        "nomem", "overload", "modified", "exists", "toobig", "other", "other", "other"};
    return names[slot];
}

static totals_t count_totals(void)
{
    totals_t t = {0};
    for (size_t i = 0; i < n_writes; i++) {
        if (writes[i].acked)
            t.acked_writes++;
        else
            t.failed_writes++;
    }
    for (size_t i = 0; i < n_keys; i++) {
        const ckey_t *k = &keys[i];
        if (k->acked == 0) {
            t.unacked_only_keys++;
            continue;
        }
        if (k->outcome == OUT_UNCHECKED)
            continue;
        t.checked++;
        switch (k->outcome) {
        case OUT_VALUE: t.value++; break;
        case OUT_SIBLING: t.sibling++; break;
        case OUT_UNACKED: t.unacked++; break;
        case OUT_WRONG: t.wrong++; break;
        case OUT_MISSING:
            t.missing++;
            t.lost += k->lost;
            t.lost_unknown += !k->lost_known;
            break;
        case OUT_ERROR:
            t.errors++;
            t.errors_by_code[code_slot(k->error)]++;
            break;
        default: break;
        }
        if (k->acked > 1) {
            t.multi++;
            t.multi_latest += k->latest;
        }
    }
    return t;
}

static size_t keys_to_check(void)
{
    size_t n = 0;
    for (size_t i = 0; i < n_keys; i++)
        n += keys[i].acked > 0;
    return n;
}

static void utc_text(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    if (strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        day[0] = '\0';
    snprintf(buf, len, "%.20s.%03uZ", day, (unsigned)((ms % 1000 + 1000) % 1000));
}

/* What happened to k, in words, for the examples. */
static void describe(const ckey_t *k, char *buf, size_t len)
{
    char when[48];
    utc_text(writes[k->last_acked].t_end_ms, when, sizeof when);
    char extra[ERRMSG_LEN + 64] = "";
    switch (k->outcome) {
    case OUT_MISSING:
        snprintf(extra, sizeof extra, "not found at R; at R=1: %s",
                 !k->lost_known ? "no answer" : k->lost ? "not found either (on no replica)"
                                                        : "found (on some replicas only)");
        break;
    case OUT_WRONG:
        snprintf(extra, sizeof extra, "%zu sibling(s), none with a logged value", k->siblings);
        break;
    case OUT_ERROR:
        snprintf(extra, sizeof extra, "%s%s%s", cairn_strerror(k->error), k->errmsg[0] ? ": " : "",
                 k->errmsg);
        break;
    default:
        break;
    }
    snprintf(buf, len, "%zu acknowledged write(s), the last acknowledged at %s: %s", k->acked,
             when, extra);
}

static const char *outcome_name(outcome_t o)
{
    switch (o) {
    case OUT_MISSING: return "missing";
    case OUT_WRONG: return "wrong";
    case OUT_ERROR: return "error";
    default: return "ok";
    }
}

static void print_examples_text(outcome_t o)
{
    unsigned shown = 0;
    for (size_t i = 0; i < n_keys && shown < cfg.show; i++) {
        if (keys[i].outcome != o)
            continue;
        char text[400];
        describe(&keys[i], text, sizeof text);
        printf("%s: %s (%s)\n", outcome_name(o), writes[keys[i].first].id, text);
        shown++;
    }
}

static void print_examples_json(outcome_t o)
{
    printf("\"%s\":[", outcome_name(o));
    unsigned shown = 0;
    for (size_t i = 0; i < n_keys && shown < cfg.show; i++) {
        if (keys[i].outcome != o)
            continue;
        char text[400];
        describe(&keys[i], text, sizeof text);
        printf("%s{\"id\":", shown ? "," : "");
        bench_json_string(writes[keys[i].first].id);
        printf(",\"detail\":");
        bench_json_string(text);
        printf("}");
        shown++;
    }
    printf("]");
}

static const char *quorum_text(uint32_t v, char *buf, size_t len)
{
    switch (v) {
    case CAIRN_Q_ONE: return "one";
    case CAIRN_Q_QUORUM: return "quorum";
    case CAIRN_Q_ALL: return "all";
    case CAIRN_Q_DEFAULT: return "default";
    default: snprintf(buf, len, "%u", v); return buf;
    }
}

static int report(const totals_t *t, double elapsed_s, bool interrupted)
{
    size_t to_check = keys_to_check();
    bool lost = t->missing + t->wrong > 0;
    bool incomplete = t->errors > 0 || interrupted || t->checked < to_check;
    const char *result = lost ? "failed" : incomplete ? "incomplete" : "ok";
    char rb[16], pb[16];
    if (cfg.json) {
        printf("{\"tool\":\"" PROG "\",\"logs\":[");
        for (int i = 0; i < cfg.n_logs; i++) {
            printf("%s", i ? "," : "");
            bench_json_string(cfg.logs[i]);
        }
        printf("],\"hosts\":");
        bench_json_string(cfg.hosts);
        printf(",\"r\":\"%s\",\"pr\":", quorum_text(cfg.r, rb, sizeof rb));
        if (cfg.pr)
            printf("\"%s\"", quorum_text(cfg.pr, pb, sizeof pb));
        else
            printf("null");
        printf(",\"notfound_ok\":false,\"concurrency\":%u,\"retries_allowed\":%u,"
               "\"writes_acked\":%" PRIu64 ",\"writes_failed\":%" PRIu64 ",\"keys\":%zu,"
               "\"keys_unacked_only\":%zu,\"keys_to_check\":%zu,\"keys_checked\":%zu,"
               "\"present\":%zu,\"present_as_value\":%zu,\"present_among_siblings\":%zu,"
               "\"present_unacked_value_only\":%zu,\"missing\":%zu,\"missing_on_no_replica\":%zu,"
               "\"missing_unknown_where\":%zu,\"wrong\":%zu,\"errors\":%zu,\"errors_by_code\":{",
               cfg.concurrency, cfg.retries, t->acked_writes, t->failed_writes, n_keys,
               t->unacked_only_keys, to_check, t->checked, t->value + t->sibling, t->value,
               t->sibling, t->unacked, t->missing, t->lost, t->lost_unknown, t->wrong, t->errors);
        bool first = true;
        for (unsigned s = 0; s < 16; s++) {
            if (!t->errors_by_code[s])
                continue;
            printf("%s\"%s\":%zu", first ? "" : ",", code_name(s), (size_t)t->errors_by_code[s]);
            first = false;
        }
        printf("},\"retries\":%" PRIu64 ",\"multi_write_keys\":%zu,\"multi_write_latest\":%zu,"
               "\"elapsed_s\":%.3f,\"interrupted\":%s,\"result\":\"%s\",\"examples\":{",
               atomic_load(&retries_made), t->multi, t->multi_latest, elapsed_s,
               interrupted ? "true" : "false", result);
        print_examples_json(OUT_MISSING);
        printf(",");
        print_examples_json(OUT_WRONG);
        printf(",");
        print_examples_json(OUT_ERROR);
        printf("}}\n");
    } else {
        printf("checked %zu of %zu keys in %.1f s: present %zu (as the value %zu, among siblings "
               "%zu), only an unacknowledged write's value %zu, missing %zu (on no replica %zu),"
               " wrong %zu, read errors %zu (retries %" PRIu64 ")\n",
               t->checked, to_check, elapsed_s, t->value + t->sibling, t->value, t->sibling,
               t->unacked, t->missing, t->lost, t->wrong, t->errors,
               atomic_load(&retries_made));
        if (t->errors) {
            printf("read errors:");
            for (unsigned s = 0; s < 16; s++)
                if (t->errors_by_code[s])
                    printf(" %s %zu", code_name(s), (size_t)t->errors_by_code[s]);
            printf("\n");
        }
        if (t->multi)
            printf("keys written more than once: %zu (the last acknowledged value present in "
                   "%zu)\n", t->multi, t->multi_latest);
        print_examples_text(OUT_MISSING);
        print_examples_text(OUT_WRONG);
        print_examples_text(OUT_ERROR);
        if (lost)
            printf("result: FAILED: %zu acknowledged write(s) missing, %zu wrong\n", t->missing,
                   t->wrong);
        else if (incomplete)
            printf("result: INCOMPLETE: nothing missing or wrong among %zu keys read, but %zu "
                   "could not be read%s\n",
                   t->checked - t->errors, to_check - t->checked + t->errors,
                   interrupted ? " (interrupted)" : "");
        else
            printf("result: OK: every acknowledged write is readable\n");
    }
    return lost ? EXIT_LOST : incomplete ? EXIT_INCOMPLETE : EXIT_OK;
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *to)
{
    fprintf(to,
"usage: " PROG " [options] ACK_LOG...\n"
"       " PROG " --owners RING_FILE [--json]\n"
"       " PROG " --scan DATA_DIR --node NAME [--ring RING_FILE] [--json]\n"
"\n"
"Reads the ack logs that cairn-bench --ack-log wrote and reads every key with an\n"
"acknowledged write back from the cluster (libcairn, notfound_ok=false, R=--r), then reports\n"
"per key: present (an acknowledged value is the value or one of the siblings), missing (not\n"
"found; then read at R=1 to tell whether it is on some replica or on none), wrong (found,\n"
"with no logged value), or a read error after the retries.\n"
"Options:\n"
"  -h, --hosts H:P[,H:P..]  nodes (default 127.0.0.1:8087); reader i starts at node i mod M\n"
"                           and fails over in list order\n"
"  -c, --concurrency C      parallel readers, one connection each (default 8, max %d)\n"
"      --r R                R of each read: a number or one, quorum, all, default\n"
"                           (default all: every replica must hold the key)\n"
"      --pr PR              PR of each read (default not sent); --pr all: every primary\n"
"      --timeout-ms MS      per read, sent to the server; the client waits 1 s longer\n"
"                           (default 10000)\n"
"      --retries N          a read that fails (not a notfound) is tried again up to N times,\n"
"                           200 ms doubling to 2 s apart (default 3, max %d)\n"
"      --show N             keys listed per kind of failure (default 10)\n"
"      --json               one JSON object on stdout instead of text\n"
"  -q, --quiet              no progress line on stderr\n"
"      --help               this text\n"
"Offline helpers (they read files only, never the network):\n"
"      --owners RING_FILE   print each partition's owner and pending next owner\n"
"                           (\"P OWNER NEXT\" lines after # comments) from a node's ring file\n"
"                           (<data dir>/ring)\n"
"      --scan DATA_DIR      list <DATA_DIR>/leveldb/<partition> with each one's role for\n"
"                           --node NAME in the ring (owner, next-owner or foreign), its size\n"
"                           and its object count; a partition held by a running cairnd is\n"
"                           \"busy\" (stop the node first). --ring FILE: the ring to judge\n"
"                           by (default <DATA_DIR>/ring). Exit 1 when a foreign partition\n"
"                           holds objects\n"
"Exit status: 0 every acknowledged write is present; 1 one is missing or wrong (--scan: a\n"
"foreign partition holds data); 2 bad usage; 3 nothing missing or wrong but something could\n"
"not be read (keys after their retries, a log, a partition, an interrupted run).\n",
            MAX_CONCURRENCY, MAX_RETRIES);
}

static uint32_t parse_quorum(const char *opt, const char *s)
{
    return bench_parse_quorum(opt, s, MAX_N_VAL);
}

typedef enum { MODE_CHECK, MODE_OWNERS, MODE_SCAN } check_mode_t;

typedef struct offline_args {
    check_mode_t mode;
    const char *path;               /* --owners RING_FILE, --scan DATA_DIR */
    const char *node, *ring;        /* --scan */
} offline_args_t;

static offline_args_t parse_args(int argc, char **argv)
{
    enum {
        O_R = 1000, O_PR, O_TIMEOUT, O_RETRIES, O_SHOW, O_JSON, O_HELP, O_OWNERS, O_SCAN,
        O_NODE, O_RING
    };
    static const struct option longopts[] = {
        {"hosts", required_argument, NULL, 'h'},
        {"host", required_argument, NULL, 'h'},
        {"concurrency", required_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},
        {"r", required_argument, NULL, O_R},
        {"pr", required_argument, NULL, O_PR},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"retries", required_argument, NULL, O_RETRIES},
        {"show", required_argument, NULL, O_SHOW},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},
        {"owners", required_argument, NULL, O_OWNERS},
        {"scan", required_argument, NULL, O_SCAN},
        {"node", required_argument, NULL, O_NODE},
        {"ring", required_argument, NULL, O_RING},
        {NULL, 0, NULL, 0},
    };
    cfg.hosts = "127.0.0.1:8087";
    cfg.concurrency = 8;
    cfg.r = CAIRN_Q_ALL;
    cfg.timeout_ms = 10000;
    cfg.retries = 3;
    cfg.show = 10;
    offline_args_t off = {MODE_CHECK, NULL, NULL, NULL};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h:c:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            if (!*optarg || strstr(optarg, ",,") || optarg[0] == ',' ||
                optarg[strlen(optarg) - 1] == ',')
                bench_bad_option("--hosts", "expected host:port[,host:port...]", optarg);
            cfg.hosts = optarg;
            break;
        case 'c': cfg.concurrency = (unsigned)bench_parse_u64("--concurrency", optarg, 1, MAX_CONCURRENCY); break;
        case 'q': cfg.quiet = true; break;
        case O_R: cfg.r = parse_quorum("--r", optarg); break;
        case O_PR: cfg.pr = parse_quorum("--pr", optarg); break;
        case O_TIMEOUT: cfg.timeout_ms = (uint32_t)bench_parse_u64("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS); break;
        case O_RETRIES: cfg.retries = (unsigned)bench_parse_u64("--retries", optarg, 0, MAX_RETRIES); break;
        case O_SHOW: cfg.show = (unsigned)bench_parse_u64("--show", optarg, 0, 1000000); break;
        case O_JSON: cfg.json = true; break;
        case O_HELP: usage(stdout); exit(EXIT_OK);
        case O_OWNERS: off.mode = MODE_OWNERS; off.path = optarg; break;
        case O_SCAN: off.mode = MODE_SCAN; off.path = optarg; break;
        case O_NODE: off.node = optarg; break;
        case O_RING: off.ring = optarg; break;
        case ':':
            fprintf(stderr, PROG ": %s needs a value (see --help)\n", argv[optind - 1]);
            exit(EXIT_USAGE);
        default:
            fprintf(stderr, PROG ": unknown option '%s' (see --help)\n", argv[optind - 1]);
            exit(EXIT_USAGE);
        }
    }
    cfg.logs = argv + optind;
    cfg.n_logs = argc - optind;
    if (off.mode != MODE_CHECK && cfg.n_logs > 0) {
        fprintf(stderr, PROG ": --owners and --scan take no ack log\n");
        exit(EXIT_USAGE);
    }
    if (off.mode == MODE_CHECK && cfg.n_logs == 0) {
        fprintf(stderr, PROG ": expected at least one ack log (see --help)\n");
        exit(EXIT_USAGE);
    }
    if (off.mode == MODE_SCAN && !off.node) {
        fprintf(stderr, PROG ": --scan needs --node NAME (the node whose data dir it is)\n");
        exit(EXIT_USAGE);
    }
    if ((off.node || off.ring) && off.mode != MODE_SCAN) {
        fprintf(stderr, PROG ": --node and --ring go with --scan\n");
        exit(EXIT_USAGE);
    }
    return off;
}

/* ------------------------------------------------------------------ main */

static int run_offline(const offline_args_t *off)
{
    if (off->mode == MODE_OWNERS)
        return inspect_owners(off->path, cfg.json);
    char ring[4096];
    if (off->ring)
        snprintf(ring, sizeof ring, "%s", off->ring);
    else
        snprintf(ring, sizeof ring, "%s/ring", off->path);
    return inspect_scan(off->path, off->node, ring, cfg.json);
}

int main(int argc, char **argv)
{
    bench_set_prog_name(PROG);
    offline_args_t off = parse_args(argc, argv);
    if (off.mode != MODE_CHECK)
        return run_offline(&off);

    for (int i = 0; i < cfg.n_logs; i++)
        if (!read_log(cfg.logs[i]))
            return EXIT_INCOMPLETE;
    group_keys();
    size_t to_check = keys_to_check();
    char rb[16], pb[16];
    if (!cfg.json || !cfg.quiet)
        fprintf(cfg.json ? stderr : stdout,
                PROG ": %d ack log(s): %zu writes of %zu keys (%zu keys with an acknowledged "
                     "write); reading them with r=%s%s%s notfound_ok=false via %s (%u readers)\n",
                cfg.n_logs, n_writes, n_keys, to_check, quorum_text(cfg.r, rb, sizeof rb),
                cfg.pr ? " pr=" : "", cfg.pr ? quorum_text(cfg.pr, pb, sizeof pb) : "",
                cfg.hosts, cfg.concurrency);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned n_readers = cfg.concurrency;
    reader_t *readers = calloc(n_readers, sizeof *readers);
    if (!readers) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_INCOMPLETE;
    }
    uint64_t t0 = bench_now_ns();
    unsigned started = 0;
    for (; started < n_readers; started++) {
        readers[started].id = started;
        readers[started].hosts = rotated_hosts(started);
        if (pthread_create(&readers[started].thread, NULL, reader_main, &readers[started]) != 0) {
            fprintf(stderr, PROG ": cannot start reader thread %u\n", started);
            free(readers[started].hosts);
            break;
        }
    }
    if (started == 0)
        return EXIT_INCOMPLETE;
    uint64_t next_tick = t0 + 1000000000ull;
    while (atomic_load(&keys_done) < n_keys && !atomic_load(&stop_requested)) {
        sleep_ms(50);
        uint64_t now = bench_now_ns();
        if (!cfg.quiet && now >= next_tick) {
            fprintf(stderr, "[%5.0fs] checked %zu of %zu keys\n", (double)(now - t0) / 1e9,
                    atomic_load(&keys_done), n_keys);
            next_tick += 1000000000ull;
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(readers[i].thread, NULL);
        cairn_close(readers[i].conn);
        free(readers[i].hosts);
    }
    free(readers);
    double elapsed = (double)(bench_now_ns() - t0) / 1e9;
    totals_t t = count_totals();
    int rc = report(&t, elapsed, atomic_load(&stop_requested));
    for (size_t i = 0; i < n_keys; i++)
        free(keys[i].names);
    for (size_t i = 0; i < n_writes; i++)
        free(writes[i].id);
    free(keys);
    free(writes);
    return rc;
}
