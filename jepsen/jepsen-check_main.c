/*
 * jepsen-check — the checkers of the fault-injection suite (jepsen/). It owns reading a
 * JSON-lines history (as written by jepsen-client and run.sh's nemesis log), and the passes
 * over it that decide whether the run was correct. Each checker prints one line
 * `NAME  VALID|INVALID|REPORT  counts`; the program exits 1 if any checker is INVALID.
 *
 *   jepsen-check [--sibling-bound N] [--calm-margin S] [--list-limit N] HISTORY.jsonl...
 *
 * (The program is jepsen/jepsen-check_main.c, so that the Makefile names it jepsen-check.)
 * Definitions follow ../shared/reference/jepsen-notes.md, sections 3.1, 3.3, 3.5 and 3.6.
 * Every integer of a history is written once (an added element or a register value), so an
 * integer names the operation that introduced it.
 *
 *   set-lost         (add ops) an element whose add was `ok`, absent from the final reads
 *                    (the union over every node's final read), and not seen by any delete
 *                    (a delete only removes what its get returned) — must be 0. Each one is
 *                    listed with the time, process, node and history line of its ack.
 *   unexpected       an integer a read returned that no operation ever tried to write
 *   failed-present   an integer whose write was recorded `fail` (definitely not sent) but
 *                    that a read returns: the client misclassified an outcome
 *   recovered        REPORT: `info` adds (outcome unknown) found in the final reads
 *   no-resurrection  (delete workload) an element an ok delete saw, in the final reads,
 *                    although every version holding it was covered by an ok delete. The
 *                    version an add wrote holds its "wrote" set; a delete covered it if its
 *                    get returned that add's own element (only that version and versions
 *                    descending from it hold the element). A version no delete covered
 *                    (a concurrent add) legitimately keeps deleted elements alive.
 *   register-lost    (write ops) an ok write whose value is not in the final reads and not
 *                    superseded, directly or through others, by a value that is: write u
 *                    supersedes what its get returned ("read"), as its context covered it.
 *   calm-reads       (write ops) a plain read whose [invoke of the write - --calm-margin,
 *                    end of the read] holds no fault must reach (as above) every write
 *                    acknowledged before the read began: read-your-writes with R+W>N.
 *   final-reads      every key was read through every node after the heal, and the nodes
 *                    agree on each key's values (a coarse convergence check: the
 *                    per-replica one needs a debug read of one replica)
 *   sibling-bounds   no read returned more than --sibling-bound siblings (default 25)
 *   convergence      (with --convergence FILE, run.sh's probe log) after the final heal,
 *                    every key's primary replicas agreed (read without repair) within the
 *                    probe's limit and stayed so to the last probe. A key's convergence
 *                    time is the first probe from which every later one agreed, in seconds
 *                    after the heal; reported per group: "read" keys (clients read them
 *                    during the settling, so read repair helped) and "unread" keys (only
 *                    hinted handoff and anti-entropy could converge them)
 *   availability-*   REPORT: ok / fail / info of writes invoked during a fault window (a
 *                    nemesis start-X .. stop-X, or 1 s around a node crash) and outside
 *   nemesis          REPORT: nemesis operations and windows seen
 *
 * Checkers of a workload that is not in the history print nothing. A history without a
 * single final read cannot show a lost write: set-lost and register-lost are then INVALID
 * ("no final reads"), never silently VALID.
 *
 * Memory: each line is parsed into an arena that is reset for the next line; what the
 * checkers keep (element states, final sets, fault windows) is in their own tables.
 */
#include "bench/bench_common.h"
#include "bench/jsonl.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "jepsen-check"
#define MAX_NODES 16

#define die(...) bench_die(PROG, __VA_ARGS__)
#define xrealloc(p, n) bench_xrealloc(PROG, p, n)

/* ---------------------------------------------------------------- tables */

/* One per integer of the history: an added element (set, delete) or a written register
 * value. Integers are unique over a history, so the integer names the operation. */
enum {
    E_INVOKED = 1, E_OK = 2, E_FAIL = 4, E_INFO = 8, E_READ = 16, E_FINAL = 32,
    E_SEEN_BY_OK_DELETE = 64,    /* an ok delete's get returned it */
    E_SEEN_BY_DELETE = 128,      /* an ok or info delete's get returned it */
    E_IN_LIVE_VERSION = 256,     /* held by a version no ok delete covered */
};
enum { K_ADD = 0, K_WRITE = 1 };

typedef struct element {
    uint64_t value;
    int32_t key;                 /* index into keys; -1: slot empty; INT32_MAX: not yet set */
    uint16_t state;
    uint8_t kind;                /* K_ADD or K_WRITE */
    uint32_t mark;               /* visit stamp of the closure walks */
    int64_t invoke_time;
    int64_t complete_time;       /* INT64_MAX: no completion */
    int64_t ok_time;
    long ok_process;
    int ok_node;
    long ok_line;                /* history line of the ok */
    uint32_t list_off, list_n;   /* in pool: write: the values its get returned (what it
                                  * superseded); add with "wrote": the set it wrote */
} element_t;

typedef struct elements {
    element_t *slots;
    size_t cap, n;
} elements_t;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static element_t *elements_find(elements_t *es, uint64_t v, bool create)
{
    if (create && (es->n + 1) * 2 > es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 1024;
        element_t *slots = xrealloc(NULL, cap * sizeof *slots);
        for (size_t i = 0; i < cap; i++)
            slots[i].key = -1;
        for (size_t i = 0; i < es->cap; i++) {
            if (es->slots[i].key < 0)
                continue;
            size_t h = mix64(es->slots[i].value) & (cap - 1);
            while (slots[h].key >= 0)
                h = (h + 1) & (cap - 1);
            slots[h] = es->slots[i];
        }
        free(es->slots);
        es->slots = slots;
        es->cap = cap;
    }
    if (es->cap == 0)
        return NULL;
    size_t h = mix64(v) & (es->cap - 1);
    while (es->slots[h].key >= 0) {
        if (es->slots[h].value == v)
            return &es->slots[h];
        h = (h + 1) & (es->cap - 1);
    }
    if (!create)
        return NULL;
    element_t *e = &es->slots[h];
    memset(e, 0, sizeof *e);
    e->value = v;
    e->key = INT32_MAX;
    e->complete_time = INT64_MAX;
    es->n++;
    return e;
}

/* A delete of the delete workload: what its get returned is what its context covers. */
typedef struct delete_op {
    int key;
    bool ok;                     /* ok; otherwise info (a failed delete was never sent) */
    int64_t invoke_time, complete_time;
    long line;
    uint32_t read_off, read_n;   /* in pool */
} delete_op_t;

/* A plain read of a register key, kept for the calm-reads check. */
typedef struct reg_read {
    int key;
    int64_t invoke_time, complete_time;
    long line;
    int node;
    uint32_t off, n;             /* its sibling values, in pool */
} reg_read_t;

typedef struct keyinfo {
    char *name;
    bool final_ok[MAX_NODES];    /* a final read through node i succeeded */
    bool final_failed[MAX_NODES];
    bench_u64set_t final[MAX_NODES];   /* union of that read's siblings */
    bench_u64set_t final_all;          /* union over the nodes (built by finish_keys) */
    size_t max_final_siblings;
    size_t attempted, acked, writes, deletes;
} keyinfo_t;

typedef struct window {
    char *name;
    int64_t start, end;          /* end INT64_MAX while open */
} window_t;

/* process -> time of its pending invoke (processes are single-threaded) */
typedef struct proc_slot {
    long process;                /* LONG_MIN: empty */
    int64_t invoke_time;
} proc_slot_t;

static struct {
    elements_t elements;
    bench_u64set_t pool;
    keyinfo_t *keys;
    size_t n_keys;
    window_t *windows;
    size_t n_windows;
    delete_op_t *deletes;
    size_t n_deletes;
    reg_read_t *reg_reads;
    size_t n_reg_reads;
    proc_slot_t *procs;
    size_t cap_procs, n_procs;
    int n_nodes_seen;            /* highest node index + 1 */
    size_t n_lines, n_final_reads, n_reads, n_nemesis_ops, n_crashes;
    size_t max_siblings;
    char max_siblings_where[160];
    size_t sibling_violations;
    size_t unparsable_siblings;
} st;

static int key_index(const char *name)
{
    for (size_t i = 0; i < st.n_keys; i++)
        if (!strcmp(st.keys[i].name, name))
            return (int)i;
    st.keys = xrealloc(st.keys, (st.n_keys + 1) * sizeof *st.keys);
    memset(&st.keys[st.n_keys], 0, sizeof *st.keys);
    st.keys[st.n_keys].name = strdup(name);
    if (!st.keys[st.n_keys].name)
        die("out of memory");
    return (int)st.n_keys++;
}

static int node_index(const char *node)
{
    if (!node || node[0] != 'n')
        return -1;
    char *end;
    long i = strtol(node + 1, &end, 10);
    if (*end || i < 1 || i > MAX_NODES)
        return -1;
    if (i > st.n_nodes_seen)
        st.n_nodes_seen = (int)i;
    return (int)i - 1;
}

static proc_slot_t *proc_find(long process, bool create)
{
    if (create && (st.n_procs + 1) * 2 > st.cap_procs) {
        size_t cap = st.cap_procs ? 2 * st.cap_procs : 256;
        proc_slot_t *slots = xrealloc(NULL, cap * sizeof *slots);
        for (size_t i = 0; i < cap; i++)
            slots[i].process = LONG_MIN;
        for (size_t i = 0; i < st.cap_procs; i++) {
            if (st.procs[i].process == LONG_MIN)
                continue;
            size_t h = mix64((uint64_t)st.procs[i].process) & (cap - 1);
            while (slots[h].process != LONG_MIN)
                h = (h + 1) & (cap - 1);
            slots[h] = st.procs[i];
        }
        free(st.procs);
        st.procs = slots;
        st.cap_procs = cap;
    }
    if (!st.cap_procs)
        return NULL;
    size_t h = mix64((uint64_t)process) & (st.cap_procs - 1);
    while (st.procs[h].process != LONG_MIN) {
        if (st.procs[h].process == process)
            return &st.procs[h];
        h = (h + 1) & (st.cap_procs - 1);
    }
    if (!create)
        return NULL;
    st.procs[h].process = process;
    st.procs[h].invoke_time = INT64_MIN;
    st.n_procs++;
    return &st.procs[h];
}

/* Appends the integers of a JSON array (values that are not non-negative integers are
 * counted as unparsable) to the pool; returns their offset. */
static uint32_t pool_take(const jsonl_value_t *arr, uint32_t *n_out)
{
    size_t off = st.pool.n;
    const jsonl_value_t *items = arr && arr->type == JSONL_ARRAY ? arr->child : NULL;
    for (const jsonl_value_t *x = items; x; x = x->next) {
        if (x->type != JSONL_NUMBER || !x->is_int || x->integer < 0) {
            st.unparsable_siblings++;
            continue;
        }
        bench_u64set_add(&st.pool, (uint64_t)x->integer);
    }
    if (st.pool.n > UINT32_MAX)
        die("history too large (more than 2^32 values in lists)");
    *n_out = (uint32_t)(st.pool.n - off);
    return (uint32_t)off;
}

/* ---------------------------------------------------------------- the passes */

static long opt_sibling_bound = 25;
static long opt_list_limit = 50;
static const char *opt_convergence;  /* --convergence: the probe log, or NULL */
static double opt_calm_margin_s = 5;

static void note_element_read(uint64_t v, int key, bool final)
{
    element_t *e = elements_find(&st.elements, v, true);
    if (e->key == INT32_MAX)
        e->key = key; /* never invoked: unexpected (key from the read) */
    e->state |= final ? E_FINAL | E_READ : E_READ;
}

/* A read's siblings: element states, sibling counts, and (final reads) the key's set. For
 * register keys the values are also kept (pool) for calm-reads, at off, n. */
static void take_siblings(const jsonl_value_t *sibs, int key, int node, bool final,
                          const char *where, bool keep, uint32_t *off, uint32_t *n)
{
    size_t start = st.pool.n;
    if (sibs && sibs->type == JSONL_ARRAY) {
        if (sibs->count > st.max_siblings) {
            st.max_siblings = sibs->count;
            snprintf(st.max_siblings_where, sizeof st.max_siblings_where, "%s", where);
        }
        if ((long)sibs->count > opt_sibling_bound)
            st.sibling_violations++;
        keyinfo_t *k = &st.keys[key];
        if (final && sibs->count > k->max_final_siblings)
            k->max_final_siblings = sibs->count;
        for (const jsonl_value_t *s = sibs->child; s; s = s->next) {
            if (s->type != JSONL_ARRAY) {
                /* a string sibling: a tombstone or a value that is not a set of integers */
                if (!(s->type == JSONL_STRING && !strcmp(s->string, "<tombstone>")))
                    st.unparsable_siblings++;
                continue;
            }
            for (const jsonl_value_t *x = s->child; x; x = x->next) {
                if (x->type != JSONL_NUMBER || !x->is_int || x->integer < 0) {
                    st.unparsable_siblings++;
                    continue;
                }
                note_element_read((uint64_t)x->integer, key, final);
                if (final && node >= 0)
                    bench_u64set_add(&k->final[node], (uint64_t)x->integer);
                if (keep)
                    bench_u64set_add(&st.pool, (uint64_t)x->integer);
            }
        }
    }
    if (keep) {
        *off = (uint32_t)start;
        *n = (uint32_t)(st.pool.n - start);
    }
}

static bool in_fault(int64_t t)
{
    for (size_t i = 0; i < st.n_windows; i++)
        if (t >= st.windows[i].start && t <= st.windows[i].end)
            return true;
    return false;
}

/* No fault window overlaps [from, to]. */
static bool calm_between(int64_t from, int64_t to)
{
    for (size_t i = 0; i < st.n_windows; i++)
        if (st.windows[i].start <= to && st.windows[i].end >= from)
            return false;
    return true;
}

static void nemesis_op(const jsonl_value_t *line, int64_t time)
{
    const char *f = jsonl_get_string(line, "f");
    st.n_nemesis_ops++;
    if (!f)
        return;
    if (!strncmp(f, "start-", 6)) {
        st.windows = xrealloc(st.windows, (st.n_windows + 1) * sizeof *st.windows);
        st.windows[st.n_windows].name = strdup(f + 6);
        st.windows[st.n_windows].start = time;
        st.windows[st.n_windows].end = INT64_MAX;
        st.n_windows++;
    } else if (!strncmp(f, "stop-", 5)) {
        for (size_t i = st.n_windows; i-- > 0;)
            if (st.windows[i].end == INT64_MAX && !strcmp(st.windows[i].name, f + 5)) {
                st.windows[i].end = time;
                break;
            }
    } else if (!strcmp(f, "node-crashed")) {
        /* a node down by itself is a fault too, until it is back (about a second) */
        st.n_crashes++;
        st.windows = xrealloc(st.windows, (st.n_windows + 1) * sizeof *st.windows);
        st.windows[st.n_windows].name = strdup("node-crashed");
        st.windows[st.n_windows].start = time - 1000000000LL;
        st.windows[st.n_windows].end = time + 1000000000LL;
        st.n_windows++;
    }
}

/* add (set, delete) and write (register): the integer's life */
static void element_op(const jsonl_value_t *line, long lineno, int k, int node, int64_t time,
                       long process, const char *type, bool is_write)
{
    const jsonl_value_t *val = jsonl_get(line, "value");
    if (!val || val->type != JSONL_NUMBER || !val->is_int || val->integer < 0)
        die("line %ld: %s needs an integer value", lineno, is_write ? "write" : "add");
    element_t *e = elements_find(&st.elements, (uint64_t)val->integer, true);
    if (e->key == INT32_MAX)
        e->key = k;
    e->kind = is_write ? K_WRITE : K_ADD;
    if (!strcmp(type, "invoke")) {
        if (e->state & E_INVOKED)
            die("line %ld: integer %" PRId64 " written twice: integers must be unique", lineno,
                val->integer);
        e->state |= E_INVOKED;
        e->invoke_time = time;
        st.keys[k].attempted++;
        if (is_write)
            st.keys[k].writes++;
        return;
    }
    e->complete_time = time;
    if (!strcmp(type, "ok")) {
        e->state |= E_OK;
        e->ok_time = time;
        e->ok_process = process;
        e->ok_node = node;
        e->ok_line = lineno;
        st.keys[k].acked++;
    } else {
        e->state |= !strcmp(type, "fail") ? E_FAIL : E_INFO;
    }
    /* what a write superseded (its get's values), what an add of the delete workload wrote */
    const jsonl_value_t *list = jsonl_get(line, is_write ? "read" : "wrote");
    if (list)
        e->list_off = pool_take(list, &e->list_n);
}

/* A line's "time" (a JSON number already checked), as int64; out of range is refused. */
static int64_t time_of(const jsonl_value_t *tm, const char *path, long lineno)
{
    int64_t t;
    if (!jsonl_to_int64(tm, &t))
        die("%s:%ld: time out of range", path, lineno);
    return t;
}

static void client_op(const jsonl_value_t *line, int64_t time, long lineno)
{
    const char *type = jsonl_get_string(line, "type"), *f = jsonl_get_string(line, "f");
    const char *key = jsonl_get_string(line, "key");
    int64_t process;
    if (!type || !f || !key || !jsonl_to_int64(jsonl_get(line, "process"), &process))
        die("line %ld: a client op needs time, process, type, f and key", lineno);
    int k = key_index(key);
    const char *node_name = jsonl_get_string(line, "node");
    int node = node_index(node_name);
    proc_slot_t *ps = proc_find((long)process, true);
    int64_t invoked = ps->invoke_time;
    if (!strcmp(type, "invoke"))
        ps->invoke_time = time;

    if (!strcmp(f, "add") || !strcmp(f, "write")) {
        element_op(line, lineno, k, node, time, process, type, !strcmp(f, "write"));
        return;
    }
    if (!strcmp(f, "delete")) {
        if (!strcmp(type, "invoke")) {
            st.keys[k].deletes++;
            return;
        }
        if (!strcmp(type, "fail"))
            return; /* its get failed: nothing was sent */
        st.deletes = xrealloc(st.deletes, (st.n_deletes + 1) * sizeof *st.deletes);
        delete_op_t *d = &st.deletes[st.n_deletes++];
        d->key = k;
        d->ok = !strcmp(type, "ok");
        d->invoke_time = invoked;
        d->complete_time = time;
        d->line = lineno;
        d->read_off = pool_take(jsonl_get(line, "read"), &d->read_n);
        return;
    }
    if (!strcmp(f, "read") || !strcmp(f, "final-read")) {
        if (strcmp(type, "ok"))
            return;
        bool final = !strcmp(f, "final-read");
        char where[160];
        snprintf(where, sizeof where, "line %ld (%s %s through %s)", lineno, f, key,
                 node_name ? node_name : "?");
        st.n_reads++;
        if (final) {
            st.n_final_reads++;
            if (node >= 0)
                st.keys[k].final_ok[node] = true;
        }
        /* plain reads of keys that have register writes are kept for calm-reads */
        bool keep = !final && st.keys[k].writes > 0;
        uint32_t off = 0, n = 0;
        take_siblings(jsonl_get(line, "siblings"), k, node, final, where, keep, &off, &n);
        if (keep) {
            st.reg_reads = xrealloc(st.reg_reads, (st.n_reg_reads + 1) * sizeof *st.reg_reads);
            st.reg_reads[st.n_reg_reads++] =
                (reg_read_t){k, invoked, time, lineno, node, off, n};
        }
        return;
    }
}

static void final_read_failed(const jsonl_value_t *line)
{
    const char *f = jsonl_get_string(line, "f"), *type = jsonl_get_string(line, "type");
    const char *key = jsonl_get_string(line, "key");
    if (!f || strcmp(f, "final-read") || !type || !key || !strcmp(type, "ok") ||
        !strcmp(type, "invoke"))
        return;
    int node = node_index(jsonl_get_string(line, "node"));
    if (node >= 0)
        st.keys[key_index(key)].final_failed[node] = true;
}

/* Reads path (or stdin, "-") with jsonl_read_file and ends the program on its failure. */
static void read_jsonl(const char *path, jsonl_line_fn fn, void *ctx, long *lines)
{
    char err[8192];
    if (jsonl_read_file(path, fn, ctx, lines, err, sizeof err) != 0)
        die("%s", err);
}

static int history_line(void *ctx, const jsonl_value_t *line, long lineno)
{
    const char *path = ctx;
    const jsonl_value_t *pr = jsonl_get(line, "process"), *tm = jsonl_get(line, "time");
    if (!tm || tm->type != JSONL_NUMBER)
        die("%s:%ld: no time", path, lineno);
    int64_t time = time_of(tm, path, lineno);
    if (pr && pr->type == JSONL_STRING && !strcmp(pr->string, "nemesis")) {
        nemesis_op(line, time);
    } else {
        client_op(line, time, lineno);
        final_read_failed(line);
    }
    return 0;
}

static void read_history(const char *path)
{
    long lines;
    read_jsonl(path, history_line, (void *)path, &lines);
    st.n_lines += (size_t)lines;
}

/* ---------------------------------------------------------------- verdicts */

static int invalid_count;
static void verdict(const char *name, bool valid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- convergence */

#define CONV_MAX_KEYS 4096

typedef struct conv_key {
    char name[64];
    bool unread;          /* group "unread" */
    int64_t agreed_since; /* time of the first probe of the current agreeing streak; -1 none */
    long probes;
} conv_key_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* What check_convergence gathers from the probe log, line by line (conv_line). */
typedef struct conv_read {
    const char *path;
    conv_key_t *keys;     /* CONV_MAX_KEYS of them */
    size_t n_keys;
    int64_t heal, end_time;
    long limit_s;
    bool ended, end_converged;
} conv_read_t;

static int conv_line(void *ctx, const jsonl_value_t *line, long lineno)
{
    conv_read_t *r = ctx;
    const char *path = r->path;
    conv_key_t *keys = r->keys;
    const jsonl_value_t *tm = jsonl_get(line, "time");
    if (!tm || tm->type != JSONL_NUMBER)
        die("%s:%ld: no time", path, lineno);
    int64_t t = time_of(tm, path, lineno);
    const char *event = jsonl_get_string(line, "event");
    const char *key = jsonl_get_string(line, "key");
    if (event && !strcmp(event, "heal")) {
        r->heal = t;
    } else if (event && !strcmp(event, "end")) {
        r->ended = true;
        r->end_time = t;
        bool converged = false;
        r->end_converged = jsonl_get_bool(line, "converged", &converged) && converged;
        int64_t limit;
        if (jsonl_to_int64(jsonl_get(line, "limit_s"), &limit))
            r->limit_s = (long)limit;
    } else if (key) {
        const jsonl_value_t *c = jsonl_get(line, "converged");
        if (!c || c->type != JSONL_BOOL)
            die("%s:%ld: a probe without \"converged\"", path, lineno);
        size_t k = 0;
        while (k < r->n_keys && strcmp(keys[k].name, key))
            k++;
        if (k == r->n_keys) {
            if (r->n_keys == CONV_MAX_KEYS)
                die("%s: more than %d keys", path, CONV_MAX_KEYS);
            r->n_keys++;
            snprintf(keys[k].name, sizeof keys[k].name, "%s", key);
            const char *g = jsonl_get_string(line, "group");
            keys[k].unread = g && !strcmp(g, "unread");
            keys[k].agreed_since = -1;
        }
        keys[k].probes++;
        if (!c->boolean)
            keys[k].agreed_since = -1;
        else if (keys[k].agreed_since < 0)
            keys[k].agreed_since = t;
    }
    return 0;
}

/* Reads run.sh's convergence.jsonl and judges it (the convergence checker). */
static void check_convergence(const char *path)
{
    static conv_key_t keys[CONV_MAX_KEYS];
    conv_read_t r = {.path = path, .keys = keys, .heal = -1, .end_time = -1, .limit_s = -1};
    read_jsonl(path, conv_line, &r, NULL);
    if (r.heal < 0 || r.n_keys == 0) {
        verdict("convergence", false, "%s holds %s: nothing can be judged", path,
                r.heal < 0 ? "no heal event" : "no probe");
        return;
    }
    double secs[2][CONV_MAX_KEYS];
    size_t n[2] = {0, 0}, never = 0;
    char never_list[512] = "";
    for (size_t k = 0; k < r.n_keys; k++) {
        if (keys[k].agreed_since < 0) {
            never++;
            size_t used = strlen(never_list);
            if (used < sizeof never_list - 80)
                snprintf(never_list + used, sizeof never_list - used, " %.60s", keys[k].name);
            continue;
        }
        double s = (double)(keys[k].agreed_since - r.heal) / 1e9;
        secs[keys[k].unread][n[keys[k].unread]++] = s < 0 ? 0 : s;
    }
    char groups[2][128];
    for (int g = 0; g < 2; g++) {
        if (!n[g]) {
            snprintf(groups[g], sizeof groups[g], "%s: none converged", g ? "unread" : "read");
            continue;
        }
        qsort(secs[g], n[g], sizeof secs[g][0], cmp_double);
        const double *x = secs[g];
        size_t m = n[g];
        double median = m % 2 ? x[m / 2] : (x[m / 2 - 1] + x[m / 2]) / 2; /* as the report's */
        snprintf(groups[g], sizeof groups[g], "%s keys=%zu max=%.1fs median=%.1fs",
                 g ? "unread" : "read", m, x[m - 1], median);
    }
    bool valid = never == 0 && r.ended && r.end_converged;
    verdict("convergence", valid,
            "keys=%zu never converged=%zu%s; %s; %s (limit %lds, probed %.1fs after the heal)",
            r.n_keys, never, never_list, groups[0], groups[1], r.limit_s,
            r.ended ? (double)(r.end_time - r.heal) / 1e9 : 0.0);
}

static void verdict(const char *name, bool valid, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-20s %-8s ", name, valid ? "VALID" : "INVALID");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (!valid)
        invalid_count++;
}

static void report(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-20s %-8s ", name, "REPORT");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

static int cmp_element_time(const void *a, const void *b)
{
    const element_t *x = *(const element_t *const *)a, *y = *(const element_t *const *)b;
    return x->ok_time < y->ok_time ? -1 : x->ok_time > y->ok_time;
}

/* The union of every node's final read, per key (sorted). */
static void finish_keys(void)
{
    for (size_t k = 0; k < st.n_keys; k++) {
        keyinfo_t *ki = &st.keys[k];
        for (int n = 0; n < MAX_NODES; n++) {
            bench_u64set_normalize(&ki->final[n]);
            for (size_t i = 0; i < ki->final[n].n; i++)
                bench_u64set_add(&ki->final_all, ki->final[n].v[i]);
        }
        bench_u64set_normalize(&ki->final_all);
    }
}

/* Marks what the deletes saw (their context covered the versions holding it) and, from
 * there, the elements still held by a version no ok delete covered: the version written by
 * an add w (sent: ok or info) holds every element of its "wrote"; a delete covered it when
 * it saw w's own element (only versions descending from w hold it). */
static void mark_deletes(void)
{
    for (size_t i = 0; i < st.n_deletes; i++) {
        const delete_op_t *d = &st.deletes[i];
        for (uint32_t j = 0; j < d->read_n; j++) {
            element_t *e = elements_find(&st.elements, st.pool.v[d->read_off + j], false);
            if (e && e->key == d->key)
                e->state |= d->ok ? E_SEEN_BY_OK_DELETE | E_SEEN_BY_DELETE : E_SEEN_BY_DELETE;
        }
    }
    for (size_t i = 0; i < st.elements.cap; i++) {
        element_t *w = &st.elements.slots[i];
        if (w->key < 0 || w->kind != K_ADD || !(w->state & (E_OK | E_INFO)) ||
            (w->state & E_SEEN_BY_OK_DELETE))
            continue;
        for (uint32_t x = 0; x < w->list_n; x++) {
            element_t *e = elements_find(&st.elements, st.pool.v[w->list_off + x], false);
            if (e && e->key == w->key)
                e->state |= E_IN_LIVE_VERSION;
        }
    }
}

/* Register: the values reachable from `from` through "superseded" edges (a write's get
 * returned those values, so its context covered them). Marks them with `stamp`. */
static uint32_t walk_stamp;
static bench_u64set_t walk_stack;

static void closure_mark(const uint64_t *from, size_t n)
{
    walk_stamp++;
    walk_stack.n = 0;
    for (size_t i = 0; i < n; i++)
        bench_u64set_add(&walk_stack, from[i]);
    while (walk_stack.n) {
        uint64_t v = walk_stack.v[--walk_stack.n];
        element_t *e = elements_find(&st.elements, v, false);
        if (!e || e->mark == walk_stamp)
            continue;
        e->mark = walk_stamp;
        if (e->kind == K_WRITE)
            for (uint32_t j = 0; j < e->list_n; j++)
                bench_u64set_add(&walk_stack, st.pool.v[e->list_off + j]);
    }
}

static void check_elements(void)
{
    size_t attempted = 0, acked = 0, lost = 0, unexpected = 0, failed_present = 0, recovered = 0,
           info = 0, fail = 0, read_elems = 0, deleted = 0;
    element_t **lost_list = NULL, **unexpected_list = NULL, **fp_list = NULL;
    size_t n_lost_list = 0, n_unexp_list = 0, n_fp_list = 0;
    for (size_t i = 0; i < st.elements.cap; i++) {
        element_t *e = &st.elements.slots[i];
        if (e->key < 0)
            continue;
        if ((e->state & E_READ) && !(e->state & E_INVOKED)) {
            unexpected++;
            unexpected_list = xrealloc(unexpected_list, (n_unexp_list + 1) * sizeof *unexpected_list);
            unexpected_list[n_unexp_list++] = e;
        }
        if ((e->state & E_READ) && (e->state & E_FAIL)) {
            failed_present++;
            fp_list = xrealloc(fp_list, (n_fp_list + 1) * sizeof *fp_list);
            fp_list[n_fp_list++] = e;
        }
        if (e->kind == K_WRITE)
            continue; /* register values: judged by check_register */
        if (e->state & E_INVOKED)
            attempted++;
        if (e->state & E_OK)
            acked++;
        if (e->state & E_INFO)
            info++;
        if (e->state & E_FAIL)
            fail++;
        if (e->state & E_FINAL)
            read_elems++;
        if ((e->state & E_OK) && !(e->state & E_FINAL)) {
            if (e->state & E_SEEN_BY_DELETE) {
                deleted++;
            } else {
                lost++;
                lost_list = xrealloc(lost_list, (n_lost_list + 1) * sizeof *lost_list);
                lost_list[n_lost_list++] = e;
            }
        }
        if ((e->state & E_FINAL) && (e->state & E_INFO))
            recovered++;
    }
    if (attempted == 0) {
        /* no adds (register workload): nothing for set-lost */
    } else if (st.n_final_reads == 0) {
        verdict("set-lost", false, "no final reads in the history: nothing can be checked "
                                   "(%zu adds acknowledged)", acked);
    } else {
        verdict("set-lost", lost == 0,
                "lost=%zu of acknowledged=%zu (attempted=%zu, info=%zu, fail=%zu, "
                "in final reads=%zu, deleted by a delete that saw them=%zu)",
                lost, acked, attempted, info, fail, read_elems, deleted);
    }
    if (n_lost_list) {
        qsort(lost_list, n_lost_list, sizeof *lost_list, cmp_element_time);
        for (size_t i = 0; i < n_lost_list && (long)i < opt_list_limit; i++)
            printf("  lost: key %s element %" PRIu64 " acknowledged at %.3f s by process %ld "
                   "through n%d (history line %ld)\n",
                   st.keys[lost_list[i]->key].name, lost_list[i]->value,
                   (double)lost_list[i]->ok_time / 1e9, lost_list[i]->ok_process,
                   lost_list[i]->ok_node + 1, lost_list[i]->ok_line);
        if ((long)n_lost_list > opt_list_limit)
            printf("  ... %zu more lost elements (--list-limit)\n",
                   n_lost_list - (size_t)opt_list_limit);
        /* per key: a whole key lost is a different bug than a few elements */
        for (size_t k = 0; k < st.n_keys; k++) {
            size_t n = 0;
            for (size_t i = 0; i < n_lost_list; i++)
                n += lost_list[i]->key == (int32_t)k;
            if (n)
                printf("  lost on key %s: %zu of %zu acknowledged\n", st.keys[k].name, n,
                       st.keys[k].acked);
        }
    }
    verdict("unexpected", unexpected == 0 && st.unparsable_siblings == 0,
            "unexpected=%zu unparsable sibling values=%zu", unexpected, st.unparsable_siblings);
    for (size_t i = 0; i < n_unexp_list && (long)i < opt_list_limit; i++)
        printf("  unexpected: key %s integer %" PRIu64 "\n", st.keys[unexpected_list[i]->key].name,
               unexpected_list[i]->value);
    verdict("failed-present", failed_present == 0,
            "writes recorded fail but read=%zu", failed_present);
    for (size_t i = 0; i < n_fp_list && (long)i < opt_list_limit; i++)
        printf("  failed-present: key %s integer %" PRIu64 "\n", st.keys[fp_list[i]->key].name,
               fp_list[i]->value);
    if (attempted)
        report("recovered", "info adds found in the final reads=%zu of info=%zu", recovered, info);
    free(lost_list);
    free(unexpected_list);
    free(fp_list);
}

/* Delete workload: an element that an ok delete saw, present in the final reads, although
 * every version that held it was covered by an ok delete (see mark_deletes). */
static void check_resurrection(void)
{
    size_t checked = 0, resurrected = 0, legit = 0;
    if (st.n_deletes == 0)
        return;
    for (size_t i = 0; i < st.elements.cap; i++) {
        element_t *e = &st.elements.slots[i];
        if (e->key < 0 || e->kind != K_ADD || !(e->state & E_FINAL) ||
            !(e->state & E_SEEN_BY_OK_DELETE))
            continue;
        checked++;
        if (e->state & E_IN_LIVE_VERSION) {
            legit++;
            continue;
        }
        resurrected++;
        if ((long)resurrected <= opt_list_limit)
            printf("  resurrected: key %s element %" PRIu64 " (added at %.3f s) was seen by an "
                   "ok delete, and every version holding it was deleted, yet the final reads "
                   "return it\n", st.keys[e->key].name, e->value, (double)e->ok_time / 1e9);
    }
    size_t ok_deletes = 0;
    for (size_t i = 0; i < st.n_deletes; i++)
        ok_deletes += st.deletes[i].ok;
    verdict("no-resurrection", resurrected == 0,
            "resurrected=%zu (deletes ok=%zu info=%zu; deleted elements in final reads=%zu, "
            "kept by a version no delete saw=%zu)", resurrected, ok_deletes,
            st.n_deletes - ok_deletes, checked, legit);
}

/* Register: every ok write is reachable from the final reads (its value, or a value whose
 * write superseded it, directly or through others); every plain read of a calm period (no
 * fault from --calm-margin before the write began to the read's end) reaches every write
 * acknowledged before the read began. */
static void check_register(void)
{
    size_t writes_ok = 0, lost = 0, reads = 0, stale = 0, pairs = 0;
    element_t **lost_list = NULL;
    bool any = false;
    for (size_t k = 0; k < st.n_keys; k++)
        any |= st.keys[k].writes > 0;
    if (!any)
        return;
    int64_t margin = (int64_t)(opt_calm_margin_s * 1e9);
    for (size_t k = 0; k < st.n_keys; k++) {
        keyinfo_t *ki = &st.keys[k];
        if (!ki->writes)
            continue;
        closure_mark(ki->final_all.v, ki->final_all.n);
        for (size_t i = 0; i < st.elements.cap; i++) {
            element_t *w = &st.elements.slots[i];
            if (w->key != (int32_t)k || w->kind != K_WRITE || !(w->state & E_OK))
                continue;
            writes_ok++;
            if (w->mark != walk_stamp) {
                lost++;
                lost_list = xrealloc(lost_list, lost * sizeof *lost_list);
                lost_list[lost - 1] = w;
            }
        }
    }
    if (lost)
        qsort(lost_list, lost, sizeof *lost_list, cmp_element_time);
    for (size_t i = 0; i < lost && (long)i < opt_list_limit; i++)
        printf("  register-lost: key %s value %" PRIu64 " acknowledged at %.3f s through n%d "
               "(line %ld) is neither in the final reads nor superseded by a value that is\n",
               st.keys[lost_list[i]->key].name, lost_list[i]->value,
               (double)lost_list[i]->ok_time / 1e9, lost_list[i]->ok_node + 1,
               lost_list[i]->ok_line);
    if ((long)lost > opt_list_limit)
        printf("  ... %zu more lost values (--list-limit)\n", lost - (size_t)opt_list_limit);
    free(lost_list);
    for (size_t r = 0; r < st.n_reg_reads; r++) {
        const reg_read_t *rd = &st.reg_reads[r];
        if (rd->invoke_time == INT64_MIN)
            continue;
        bool counted = false;
        closure_mark(st.pool.v + rd->off, rd->n);
        for (size_t i = 0; i < st.elements.cap; i++) {
            element_t *w = &st.elements.slots[i];
            if (w->key != rd->key || w->kind != K_WRITE || !(w->state & E_OK) ||
                w->complete_time >= rd->invoke_time ||
                !calm_between(w->invoke_time - margin, rd->complete_time))
                continue;
            if (!counted) {
                reads++;
                counted = true;
            }
            pairs++;
            if (w->mark != walk_stamp) {
                stale++;
                if ((long)stale == opt_list_limit + 1)
                    printf("  ... more stale reads (--list-limit)\n");
                if ((long)stale <= opt_list_limit)
                    printf("  stale-read: key %s read at line %ld through n%d misses value %"
                           PRIu64 " acknowledged at %.3f s (line %ld), in a calm period\n",
                           st.keys[rd->key].name, rd->line, rd->node + 1, w->value,
                           (double)w->ok_time / 1e9, w->ok_line);
            }
        }
    }
    verdict("register-lost", st.n_final_reads > 0 && lost == 0,
            "lost=%zu of ok writes=%zu%s", lost, writes_ok,
            st.n_final_reads ? "" : " (no final reads)");
    verdict("calm-reads", stale == 0,
            "stale=%zu (read/write pairs checked=%zu in %zu calm reads, margin %.1f s)", stale,
            pairs, reads, opt_calm_margin_s);
}

static void check_final_reads(void)
{
    size_t unreadable = 0, disagreeing = 0, max_final_sib = 0, never_read = 0;
    int nodes = st.n_nodes_seen;
    for (size_t k = 0; k < st.n_keys; k++) {
        keyinfo_t *ki = &st.keys[k];
        int first = -1;
        bool any = false, differs = false;
        for (int n = 0; n < nodes; n++) {
            if (!ki->final_ok[n]) {
                if (ki->final_failed[n])
                    unreadable++;
                continue;
            }
            any = true;
            if (first < 0) {
                first = n;
            } else if (ki->final[n].n != ki->final[first].n ||
                       (ki->final[n].n && memcmp(ki->final[n].v, ki->final[first].v,
                                                 ki->final[n].n * sizeof(uint64_t)))) {
                differs = true;
                printf("  final-reads: key %s: n%d read %zu values, n%d read %zu\n", ki->name,
                       first + 1, ki->final[first].n, n + 1, ki->final[n].n);
            }
        }
        if (!any && (ki->attempted || ki->acked))
            never_read++;
        disagreeing += differs;
        if (ki->max_final_siblings > max_final_sib)
            max_final_sib = ki->max_final_siblings;
    }
    if (st.n_final_reads == 0) {
        verdict("final-reads", false, "no final reads");
        return;
    }
    verdict("final-reads", unreadable == 0 && disagreeing == 0 && never_read == 0,
            "keys=%zu nodes=%d final reads ok=%zu failed=%zu keys never read=%zu "
            "keys whose nodes disagree=%zu max final siblings=%zu",
            st.n_keys, nodes, st.n_final_reads, unreadable, never_read, disagreeing,
            max_final_sib);
}

static void check_siblings(void)
{
    verdict("sibling-bounds", st.sibling_violations == 0,
            "reads over the bound=%zu (bound %ld), max siblings=%zu%s%s", st.sibling_violations,
            opt_sibling_bound, st.max_siblings, st.max_siblings ? " at " : "",
            st.max_siblings_where);
}

static void report_availability(void)
{
    /* writes (add, write) by outcome, split by whether they were invoked during a fault */
    size_t outcomes[2][3] = {{0}}, unfinished = 0;
    for (size_t i = 0; i < st.elements.cap; i++) {
        const element_t *e = &st.elements.slots[i];
        if (e->key < 0 || !(e->state & E_INVOKED))
            continue;
        int o = e->state & E_OK ? 0 : e->state & E_FAIL ? 1 : e->state & E_INFO ? 2 : -1;
        if (o < 0)
            unfinished++;
        else
            outcomes[in_fault(e->invoke_time)][o]++;
    }
    for (int f = 0; f < 2; f++) {
        size_t ok = outcomes[f][0], fl = outcomes[f][1], in = outcomes[f][2];
        size_t tot = ok + fl + in;
        report(f ? "availability-fault" : "availability-calm",
               "writes invoked %s: %zu, ok=%zu (%.1f%%) fail=%zu info=%zu",
               f ? "during faults" : "outside faults", tot, ok, tot ? 100.0 * ok / tot : 0.0, fl,
               in);
    }
    size_t open = 0;
    for (size_t i = 0; i < st.n_windows; i++)
        open += st.windows[i].end == INT64_MAX;
    report("nemesis", "operations=%zu fault windows=%zu (never closed=%zu), node crashes=%zu, "
           "writes never completed=%zu", st.n_nemesis_ops, st.n_windows, open, st.n_crashes,
           unfinished);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [--sibling-bound N] [--calm-margin S] [--list-limit N] [--convergence F] "
            "HISTORY.jsonl...\n"
            "\n"
            "Checks a history of the fault-injection suite (jepsen/run.sh writes it; several\n"
            "files are read as one history, '-' is stdin). Prints one line per checker:\n"
            "set-lost, unexpected, failed-present, no-resurrection (delete workload),\n"
            "register-lost and calm-reads (register workload), final-reads and sibling-bounds\n"
            "are VALID or INVALID; recovered, availability and nemesis are REPORTs. The\n"
            "comment at the top of jepsen/jepsen-check_main.c defines each.\n"
            "\n"
            "  --sibling-bound N  the most siblings a read may return (default 25)\n"
            "  --calm-margin S    calm-reads: seconds after a fault before a write counts as\n"
            "                     calm (default 5)\n"
            "  --list-limit N     list at most N lost/unexpected/stale items (default 50)\n"
            "  --convergence F    also judge run.sh's convergence probe log F (every key's\n"
            "                     replicas agree after the final heal, within its limit)\n"
            "\n"
            "Exit status: 0 when every checker is VALID, 1 when one is INVALID, 2 when the\n"
            "history cannot be read.\n");
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"sibling-bound", required_argument, NULL, 'b'},
        {"calm-margin", required_argument, NULL, 'c'},
        {"list-limit", required_argument, NULL, 'l'},
        {"convergence", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'b':
            opt_sibling_bound = strtol(optarg, &end, 10);
            if (*end || opt_sibling_bound < 1)
                die("--sibling-bound: '%s' is not a positive number", optarg);
            break;
        case 'c':
            opt_calm_margin_s = strtod(optarg, &end);
            if (*end || opt_calm_margin_s < 0)
                die("--calm-margin: '%s' is not a number of seconds", optarg);
            break;
        case 'l':
            opt_list_limit = strtol(optarg, &end, 10);
            if (*end || opt_list_limit < 0)
                die("--list-limit: '%s' is not a number", optarg);
            break;
        case 'v': opt_convergence = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind == argc) {
        usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++)
        read_history(argv[i]);
    printf("history: %zu lines, %zu keys, %zu reads (%zu final), %zu nemesis ops\n", st.n_lines,
           st.n_keys, st.n_reads, st.n_final_reads, st.n_nemesis_ops);
    finish_keys();
    mark_deletes();
    check_elements();
    check_resurrection();
    check_register();
    check_final_reads();
    check_siblings();
    if (opt_convergence)
        check_convergence(opt_convergence);
    report_availability();
    printf("%s\n", invalid_count ? "INVALID" : "VALID");

    for (size_t k = 0; k < st.n_keys; k++) {
        for (int n = 0; n < MAX_NODES; n++)
            free(st.keys[k].final[n].v);
        free(st.keys[k].final_all.v);
        free(st.keys[k].name);
    }
    free(st.keys);
    for (size_t i = 0; i < st.n_windows; i++)
        free(st.windows[i].name);
    free(st.windows);
    free(st.deletes);
    free(st.reg_reads);
    free(st.procs);
    free(st.pool.v);
    free(walk_stack.v);
    free(st.elements.slots);
    return invalid_count ? 1 : 0;
}
