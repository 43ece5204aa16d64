/*
 * jepsen-report — one self-contained HTML page for a run of the fault-injection suite
 * (jepsen/, docs/reliability.md). It owns reading a run directory's history.jsonl,
 * summary.txt (or check.txt) and convergence.jsonl, and drawing them: the verdicts, the fault
 * schedule, latency and throughput over time with the faults shaded, outcomes per node and
 * per operation, and the convergence of every key's replicas after the final heal.
 *
 *   jepsen-report [--out FILE] [--max-points N] RUN_DIR      (writes RUN_DIR/report.html)
 *
 * The page has inline CSS and inline SVG drawn here: no script, no external resource.
 * (The program is jepsen/jepsen-report_main.c, so that the Makefile names it jepsen-report.)
 *
 * Input errors: a missing RUN_DIR or history.jsonl, a line of history.jsonl or
 * convergence.jsonl that is not a JSON object (named by file, line and column), or an empty
 * history end the program with exit status 2 and no page (jepsen-check refuses such lines
 * too: a page would show a history the checkers never read). A line that is a JSON object but lacks what the page needs (no time,
 * an unknown op type, a probe without a key) is skipped, counted, and listed in the page
 * and on stderr. summary.txt and check.txt are free text: lines not understood are shown as
 * they are. Exit status: 0 page written, 2 anything else.
 *
 * Memory: each JSON line is parsed into one arena reset per line (bench/jsonl.h); what the
 * page needs is copied into the tables below, which main frees before it returns.
 */
#include "bench/bench_common.h"
#include "bench/jsonl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "jepsen-report"
#define MAX_NAMES 64             /* distinct nodes or operation kinds; more go to "(other)" */
#define MAX_SKIPS_LISTED 10      /* skipped lines named in the page */
#define MAX_CONV_ROWS 300        /* keys drawn in the convergence plot (tables list all) */
#define MAX_PROBE_TITLES 4000    /* probes with a tooltip; beyond, only unconverged ones */
#define NS_PER_S 1e9

#define die(...) bench_die(PROG, __VA_ARGS__)
#define xrealloc(p, n) bench_xrealloc(PROG, p, n)

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

/* Makes room for one more item in the array items (n used, cap allocated). */
#define GROW(items, n, cap)                                                                  \
    do {                                                                                     \
        if ((n) >= (cap)) {                                                                  \
            (cap) = (cap) ? (cap) * 2 : 64;                                                  \
            (items) = xrealloc((items), (cap) * sizeof *(items));                            \
        }                                                                                    \
    } while (0)

/* ================================================================ the history */

enum { OUT_OK, OUT_FAIL, OUT_INFO, OUT_N };
static const char *const outcome_name[OUT_N] = {"ok", "fail", "info"};

enum { LAT_RECORDED, LAT_FROM_INVOKE, LAT_UNKNOWN };

typedef struct op {              /* one completed client operation */
    int64_t time;                /* its completion, ns on the history's clock */
    int64_t latency_ns;          /* LAT_RECORDED: latency_ns; LAT_FROM_INVOKE: completion -
                                  * the invoke of its process; LAT_UNKNOWN: -1 */
    uint8_t outcome;             /* OUT_* */
    uint8_t latency_from;        /* LAT_* */
    uint16_t node, f;            /* indexes into history.nodes / history.fs */
} op_t;

typedef struct fault {           /* a nemesis window start-X .. stop-X, or an instant */
    int64_t start, end;          /* ns; an instant has start == end */
    char *kind;                  /* X, or the nemesis f of an instant (node-crashed) */
    char *node;                  /* the line's "node", or NULL */
    char *detail;                /* the start line's "value", or NULL */
    bool open;                   /* no stop seen (yet); at the end: never closed */
    bool instant;                /* node-crashed and other one-off nemesis lines */
    bool no_start;               /* a stop without a start: drawn from the first op */
} fault_t;

typedef struct names {           /* small intern table: nodes, operation kinds */
    char *v[MAX_NAMES + 1];      /* the last slot is "(other)" once the table is full */
    size_t n;
} names_t;

typedef struct skips {           /* valid JSON lines the page could not use */
    long n;
    long line[MAX_SKIPS_LISTED];
    const char *why[MAX_SKIPS_LISTED];
} skips_t;

typedef struct proc_map {        /* process -> time of its pending invoke */
    int64_t *process, *invoke;
    bool *used;
    size_t cap, n;
} proc_map_t;

typedef struct history {
    op_t *ops;
    size_t n_ops, cap_ops;
    fault_t *faults;
    size_t n_faults, cap_faults;
    names_t nodes, fs;
    int64_t t_first, t_last;     /* over every line with a time */
    bool has_heal;               /* a nemesis line f "final-heal" */
    int64_t heal_time;
    long lines;                  /* every line of the file */
    long timed_lines;            /* lines with a time */
    long invokes, nemesis_ops, unmatched_stops;
    long latency_derived, latency_unknown;
    skips_t skips;
    proc_map_t procs;
} history_t;

static void skip_line(skips_t *s, long lineno, const char *why)
{
    if (s->n < MAX_SKIPS_LISTED) {
        s->line[s->n] = lineno;
        s->why[s->n] = why;
    }
    s->n++;
}

static uint16_t intern(names_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i], name))
            return (uint16_t)i;
    if (t->n == MAX_NAMES) {
        t->v[MAX_NAMES] = t->v[MAX_NAMES] ? t->v[MAX_NAMES] : xstrdup("(other)");
        return MAX_NAMES;
    }
    t->v[t->n] = xstrdup(name);
    return (uint16_t)t->n++;
}

static size_t names_count(const names_t *t)
{
    return t->v[MAX_NAMES] ? MAX_NAMES + 1 : t->n;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* The slot of process p (its used flag tells whether it holds p). */
static size_t proc_slot(proc_map_t *m, int64_t p)
{
    if ((m->n + 1) * 2 > m->cap) {
        proc_map_t bigger = {.cap = m->cap ? m->cap * 2 : 256};
        bigger.process = xrealloc(NULL, bigger.cap * sizeof *bigger.process);
        bigger.invoke = xrealloc(NULL, bigger.cap * sizeof *bigger.invoke);
        bigger.used = calloc(bigger.cap, sizeof *bigger.used);
        if (!bigger.used)
            die("out of memory");
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->used[i])
                continue;
            size_t s = proc_slot(&bigger, m->process[i]);
            bigger.used[s] = true;
            bigger.process[s] = m->process[i];
            bigger.invoke[s] = m->invoke[i];
            bigger.n++;
        }
        free(m->process);
        free(m->invoke);
        free(m->used);
        *m = bigger;
    }
    size_t s = mix64((uint64_t)p) & (m->cap - 1);
    while (m->used[s] && m->process[s] != p) /* ends: the table is at most half full */
        s = (s + 1) & (m->cap - 1);
    return s;
}

static void nemesis_line(history_t *h, const jsonl_value_t *line, int64_t time, long lineno)
{
    const char *f = jsonl_get_string(line, "f");
    const char *node = jsonl_get_string(line, "node");
    const char *value = jsonl_get_string(line, "value");
    if (!f) {
        skip_line(&h->skips, lineno, "nemesis line without f");
        return;
    }
    h->nemesis_ops++;
    if (!strcmp(f, "final-heal")) {
        h->has_heal = true;
        h->heal_time = time;
        return;
    }
    if (!strncmp(f, "stop-", 5)) {
        /* close the open window of that kind on the same node, else the oldest open one */
        fault_t *match = NULL;
        for (size_t i = 0; i < h->n_faults; i++) {
            fault_t *w = &h->faults[i];
            if (!w->open || w->instant || strcmp(w->kind, f + 5))
                continue;
            if (node && w->node && !strcmp(node, w->node)) {
                match = w;
                break;
            }
            if (!match)
                match = w;
        }
        if (match) {
            match->open = false;
            match->end = time;
            return;
        }
        h->unmatched_stops++;
    }
    GROW(h->faults, h->n_faults, h->cap_faults);
    fault_t *w = &h->faults[h->n_faults++];
    bool start = !strncmp(f, "start-", 6), stop = !strncmp(f, "stop-", 5);
    *w = (fault_t){
        .start = stop ? h->t_first : time,
        .end = time,
        .kind = xstrdup(start ? f + 6 : stop ? f + 5 : f),
        .node = node ? xstrdup(node) : NULL,
        .detail = value ? xstrdup(value) : NULL,
        .open = start,
        .instant = !start && !stop,
        .no_start = stop,
    };
}

static void client_line(history_t *h, const jsonl_value_t *line, int64_t time, long lineno)
{
    const char *type = jsonl_get_string(line, "type"), *f = jsonl_get_string(line, "f");
    const char *node = jsonl_get_string(line, "node");
    int64_t process = 0;
    bool has_process = jsonl_get_int(line, "process", &process);
    if (!type || !f) {
        skip_line(&h->skips, lineno, "client line without type or f");
        return;
    }
    if (!strcmp(type, "invoke")) {
        h->invokes++;
        if (has_process) {
            size_t s = proc_slot(&h->procs, process);
            if (!h->procs.used[s]) {
                h->procs.used[s] = true;
                h->procs.process[s] = process;
                h->procs.n++;
            }
            h->procs.invoke[s] = time;
        }
        return;
    }
    int outcome = !strcmp(type, "ok") ? OUT_OK : !strcmp(type, "fail") ? OUT_FAIL
                : !strcmp(type, "info") ? OUT_INFO : -1;
    if (outcome < 0) {
        skip_line(&h->skips, lineno, "unknown type");
        return;
    }
    op_t op = {.time = time, .outcome = (uint8_t)outcome, .latency_ns = -1,
               .latency_from = LAT_UNKNOWN, .node = intern(&h->nodes, node ? node : "(none)"),
               .f = intern(&h->fs, f)};
    int64_t invoke = INT64_MIN;
    if (has_process) {
        size_t s = proc_slot(&h->procs, process);
        if (h->procs.used[s]) {
            invoke = h->procs.invoke[s];
            h->procs.invoke[s] = INT64_MIN; /* consumed */
        }
    }
    if (jsonl_to_int64(jsonl_get(line, "latency_ns"), &op.latency_ns) && op.latency_ns >= 0) {
        op.latency_from = LAT_RECORDED;
    } else if (invoke != INT64_MIN && invoke <= time) {
        op.latency_ns = time - invoke;
        op.latency_from = LAT_FROM_INVOKE;
        h->latency_derived++;
    } else {
        op.latency_ns = -1;
        h->latency_unknown++;
    }
    GROW(h->ops, h->n_ops, h->cap_ops);
    h->ops[h->n_ops++] = op;
}

/* Calls fn for every non-empty line of path, parsed as a JSON object (jsonl_read_file).
 * Returns the number of lines, or -1 when the file does not exist and may be absent. A line
 * that is not a JSON object ends the program (exit 2) naming the file, line and column. */
static long read_jsonl(const char *path, bool may_be_absent, jsonl_line_fn fn, void *ctx)
{
    char err[8192];
    long lines;
    if (jsonl_read_file(path, fn, ctx, &lines, err, sizeof err) != 0) {
        if (may_be_absent && errno == ENOENT)
            return -1;
        die("%s", err);
    }
    return lines;
}

static int history_line(void *ctx, const jsonl_value_t *line, long lineno)
{
    history_t *h = ctx;
    int64_t time;
    if (!jsonl_to_int64(jsonl_get(line, "time"), &time)) {
        skip_line(&h->skips, lineno, "no time");
        return 0;
    }
    if (h->timed_lines == 0 || time < h->t_first)
        h->t_first = time;
    if (h->timed_lines == 0 || time > h->t_last)
        h->t_last = time;
    h->timed_lines++;
    const char *process = jsonl_get_string(line, "process");
    if (process && !strcmp(process, "nemesis"))
        nemesis_line(h, line, time, lineno);
    else
        client_line(h, line, time, lineno);
    return 0;
}

static void history_read(history_t *h, const char *path)
{
    h->lines = read_jsonl(path, false, history_line, h);
    if (h->timed_lines == 0)
        die("%s: no operation in %ld line(s): nothing to report", path, h->lines);
    for (size_t i = 0; i < h->n_faults; i++)
        if (h->faults[i].open)
            h->faults[i].end = h->t_last;
}

static void history_free(history_t *h)
{
    for (size_t i = 0; i < h->n_faults; i++) {
        free(h->faults[i].kind);
        free(h->faults[i].node);
        free(h->faults[i].detail);
    }
    for (size_t i = 0; i <= MAX_NAMES; i++) {
        free(h->nodes.v[i]);
        free(h->fs.v[i]);
    }
    free(h->faults);
    free(h->ops);
    free(h->procs.process);
    free(h->procs.invoke);
    free(h->procs.used);
}

/* ================================================================ summary.txt / check.txt */

typedef struct checker_row {
    char *name, *verdict, *counts;
    char **details;
    size_t n_details, cap_details;
} checker_row_t;

typedef struct text_list {
    char **v;
    size_t n, cap;
} text_list_t;

typedef struct summary {
    const char *source;          /* "summary.txt", "check.txt" or NULL: neither exists */
    text_list_t param_keys, param_values, schedule, other;
    checker_row_t *checkers;
    size_t n_checkers, cap_checkers;
    char *result;                /* "VALID", "INVALID", or NULL */
    bool result_derived;         /* no result line: taken from the checker lines */
    double timeout_ms;           /* from "timeout N ms" in the parameters; 0: unknown */
} summary_t;

static void text_add(text_list_t *l, const char *s)
{
    GROW(l->v, l->n, l->cap);
    l->v[l->n++] = xstrdup(s);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* "NAME  VALID|INVALID|REPORT  counts": fills the row's fields (copies); false otherwise. */
static bool parse_checker_line(const char *line, checker_row_t *row)
{
    const char *p = line;
    if (!(*p >= 'a' && *p <= 'z'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
        p++;
    size_t name_len = (size_t)(p - line);
    if (*p != ' ')
        return false;
    while (*p == ' ')
        p++;
    static const char *const verdicts[] = {"VALID", "INVALID", "REPORT"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(verdicts[i]);
        if (strncmp(p, verdicts[i], n) || (p[n] != '\0' && p[n] != ' ' && p[n] != '\t'))
            continue;
        *row = (checker_row_t){0};
        row->name = xrealloc(NULL, name_len + 1);
        memcpy(row->name, line, name_len);
        row->name[name_len] = '\0';
        row->verdict = xstrdup(verdicts[i]);
        char *counts = xstrdup(p + n);
        row->counts = xstrdup(trim(counts));
        free(counts);
        return true;
    }
    return false;
}

/* "key: value" with a key of letters, digits, spaces, '-' or '_': splits in place. */
static bool split_param(char *line, char **key, char **value)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line || colon[1] == '\0')
        return false;
    for (char *p = line; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == ' ' || *p == '-' || *p == '_'))
            return false;
    *colon = '\0';
    *key = trim(line);
    *value = trim(colon + 1);
    return true;
}

static void summary_line(summary_t *s, char *line, bool *in_schedule)
{
    checker_row_t row;
    if (line[0] == '\0') {
        *in_schedule = false;
        return;
    }
    if (!strncmp(line, "RESULT:", 7)) {
        free(s->result);
        s->result = xstrdup(trim(line + 7));
        return;
    }
    if (!strcmp(line, "VALID") || !strcmp(line, "INVALID")) { /* check.txt's last line */
        free(s->result);
        s->result = xstrdup(line);
        return;
    }
    if (parse_checker_line(line, &row)) {
        GROW(s->checkers, s->n_checkers, s->cap_checkers);
        s->checkers[s->n_checkers++] = row;
        *in_schedule = false;
        return;
    }
    bool indented = line[0] == ' ' || line[0] == '\t';
    if (indented && s->n_checkers > 0 && !*in_schedule) {
        checker_row_t *last = &s->checkers[s->n_checkers - 1];
        GROW(last->details, last->n_details, last->cap_details);
        last->details[last->n_details++] = xstrdup(line);
        return;
    }
    if (*in_schedule) {
        text_add(&s->schedule, trim(line));
        return;
    }
    if (!strncmp(line, "schedule", 8) && line[strlen(line) - 1] == ':') {
        *in_schedule = true;
        return;
    }
    char *key, *value;
    if (!indented && split_param(line, &key, &value)) {
        text_add(&s->param_keys, key);
        text_add(&s->param_values, value);
        const char *t = strstr(value, "timeout ");
        double ms;
        if (t && sscanf(t + 8, "%lf ms", &ms) == 1 && ms > 0)
            s->timeout_ms = ms;
        return;
    }
    text_add(&s->other, trim(line));
}

/* Reads summary.txt, or check.txt when it is absent; neither: s->source stays NULL. */
static void summary_read(summary_t *s, const char *dir)
{
    static const char *const files[] = {"summary.txt", "check.txt"};
    for (size_t i = 0; i < 2 && !s->source; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *in = fopen(path, "r");
        if (!in) {
            if (errno != ENOENT)
                die("cannot open %s: %s", path, strerror(errno));
            continue;
        }
        s->source = files[i];
        char *buf = NULL;
        size_t cap = 0;
        ssize_t len;
        bool in_schedule = false;
        while ((len = getline(&buf, &cap, in)) >= 0) {
            while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = '\0';
            summary_line(s, buf, &in_schedule);
        }
        if (ferror(in))
            die("reading %s: %s", path, strerror(errno));
        fclose(in);
        free(buf);
    }
    if (!s->result && s->n_checkers > 0) {
        bool invalid = false;
        for (size_t i = 0; i < s->n_checkers; i++)
            invalid |= !strcmp(s->checkers[i].verdict, "INVALID");
        s->result = xstrdup(invalid ? "INVALID" : "VALID");
        s->result_derived = true;
    }
}

static void text_list_free(text_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void summary_free(summary_t *s)
{
    text_list_free(&s->param_keys);
    text_list_free(&s->param_values);
    text_list_free(&s->schedule);
    text_list_free(&s->other);
    for (size_t i = 0; i < s->n_checkers; i++) {
        checker_row_t *c = &s->checkers[i];
        free(c->name);
        free(c->verdict);
        free(c->counts);
        for (size_t j = 0; j < c->n_details; j++)
            free(c->details[j]);
        free(c->details);
    }
    free(s->checkers);
    free(s->result);
}

/* ================================================================ convergence.jsonl */

enum { GROUP_READ, GROUP_UNREAD, GROUP_OTHER, GROUP_N };
static const char *const group_title[GROUP_N] = {
    "read keys (clients kept reading them: read repair helps)",
    "unread keys (only hinted handoff and anti-entropy converge them)",
    "keys of another group",
};

typedef struct probe {
    int64_t time;
    bool converged;
    char *replicas;              /* a one-line description of every replica's state */
} probe_t;

typedef struct conv_key {
    char *key;
    int group;                   /* GROUP_* */
    probe_t *probes;
    size_t n_probes, cap_probes;
    bool converged;              /* the last probe was converged */
    int64_t converged_at;        /* the first probe of the final converged run, ns */
} conv_key_t;

typedef struct convergence {
    bool present;
    conv_key_t *keys;
    size_t n_keys, cap_keys;
    bool has_heal, has_end, end_converged;
    int64_t heal_time;
    const char *heal_source;     /* where heal_time came from, for the page */
    double limit_s;              /* the end event's limit_s; 0: unknown */
    long lines, probes;
    skips_t skips;
} convergence_t;

/* "n1/p12 value x2 a1b2c3d4; n2/p12 notfound" from a probe's replicas (at most ~1 KiB). */
static char *describe_replicas(const jsonl_value_t *replicas)
{
    char out[1024];
    size_t n = 0;
    out[0] = '\0';
    size_t count = 0;
    for (const jsonl_value_t *r = jsonl_first(replicas); r && n + 1 < sizeof out;
         r = jsonl_next(r), count++) {
        const char *node = jsonl_get_string(r, "node"), *status = jsonl_get_string(r, "status");
        const char *digest = jsonl_get_string(r, "digest");
        int64_t partition = -1, siblings = -1;
        jsonl_get_int(r, "partition", &partition);
        jsonl_get_int(r, "siblings", &siblings);
        int w = snprintf(out + n, sizeof out - n, "%s%s", count ? "; " : "", node ? node : "?");
        n += w > 0 ? (size_t)w : 0;
        if (partition >= 0 && n < sizeof out)
            n += (size_t)snprintf(out + n, sizeof out - n, "/p%" PRId64, partition);
        if (n < sizeof out)
            n += (size_t)snprintf(out + n, sizeof out - n, " %s", status ? status : "?");
        if (siblings > 1 && n < sizeof out)
            n += (size_t)snprintf(out + n, sizeof out - n, " x%" PRId64, siblings);
        if (digest && n < sizeof out)
            n += (size_t)snprintf(out + n, sizeof out - n, " %.8s", digest);
    }
    return xstrdup(count ? out : "(no replicas listed)");
}

static int convergence_line(void *ctx, const jsonl_value_t *line, long lineno)
{
    convergence_t *c = ctx;
    int64_t time;
    if (!jsonl_to_int64(jsonl_get(line, "time"), &time)) {
        skip_line(&c->skips, lineno, "no time");
        return 0;
    }
    const char *event = jsonl_get_string(line, "event");
    if (event && !strcmp(event, "heal")) {
        c->has_heal = true;
        c->heal_time = time;
        return 0;
    }
    if (event && !strcmp(event, "end")) {
        c->has_end = true;
        jsonl_get_bool(line, "converged", &c->end_converged);
        jsonl_get_number(line, "limit_s", &c->limit_s);
        return 0;
    }
    if (event) {
        skip_line(&c->skips, lineno, "unknown event");
        return 0;
    }
    const char *key = jsonl_get_string(line, "key"), *group = jsonl_get_string(line, "group");
    bool converged;
    if (!key || !jsonl_get_bool(line, "converged", &converged)) {
        skip_line(&c->skips, lineno, "probe without key or converged");
        return 0;
    }
    conv_key_t *k = NULL;
    for (size_t i = c->n_keys; i-- > 0 && !k;) /* probes of one key tend to be adjacent */
        if (!strcmp(c->keys[i].key, key))
            k = &c->keys[i];
    if (!k) {
        GROW(c->keys, c->n_keys, c->cap_keys);
        k = &c->keys[c->n_keys++];
        *k = (conv_key_t){.key = xstrdup(key), .group = GROUP_OTHER};
        if (group && !strcmp(group, "read"))
            k->group = GROUP_READ;
        else if (group && !strcmp(group, "unread"))
            k->group = GROUP_UNREAD;
    }
    GROW(k->probes, k->n_probes, k->cap_probes);
    k->probes[k->n_probes++] = (probe_t){
        .time = time,
        .converged = converged,
        .replicas = describe_replicas(jsonl_get_array(line, "replicas")),
    };
    c->probes++;
    return 0;
}

static int probe_cmp(const void *a, const void *b)
{
    const probe_t *x = a, *y = b;
    return (x->time > y->time) - (x->time < y->time);
}

static int key_cmp(const void *a, const void *b)
{
    const conv_key_t *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    return strcmp(x->key, y->key);
}

static void convergence_read(convergence_t *c, const char *path, const history_t *h)
{
    c->lines = read_jsonl(path, true, convergence_line, c);
    c->present = c->lines >= 0;
    if (!c->present)
        return;
    if (c->has_heal) {
        c->heal_source = "the heal event of convergence.jsonl";
    } else if (h->has_heal) {
        c->has_heal = true;
        c->heal_time = h->heal_time;
        c->heal_source = "the final-heal nemesis operation of history.jsonl";
    } else {
        c->heal_time = INT64_MAX;
        for (size_t i = 0; i < c->n_keys; i++)
            for (size_t j = 0; j < c->keys[i].n_probes; j++)
                if (c->keys[i].probes[j].time < c->heal_time)
                    c->heal_time = c->keys[i].probes[j].time;
        c->heal_source = "no heal recorded anywhere: the first probe";
    }
    qsort(c->keys, c->n_keys, sizeof *c->keys, key_cmp);
    for (size_t i = 0; i < c->n_keys; i++) {
        conv_key_t *k = &c->keys[i];
        qsort(k->probes, k->n_probes, sizeof *k->probes, probe_cmp);
        size_t first = k->n_probes; /* start of the final run of converged probes */
        while (first > 0 && k->probes[first - 1].converged)
            first--;
        k->converged = k->n_probes > 0 && first < k->n_probes;
        k->converged_at = k->converged ? k->probes[first].time - c->heal_time : -1;
    }
}

static void convergence_free(convergence_t *c)
{
    for (size_t i = 0; i < c->n_keys; i++) {
        for (size_t j = 0; j < c->keys[i].n_probes; j++)
            free(c->keys[i].probes[j].replicas);
        free(c->keys[i].probes);
        free(c->keys[i].key);
    }
    free(c->keys);
}

/* ================================================================ HTML and SVG helpers */

/* s with & < > " ' escaped; control characters other than tab and newline shown as '?'. */
static void put_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            fputc((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ? '?' : *s, out);
        }
    }
}

static void put_seconds(FILE *out, double s)
{
    fprintf(out, fabs(s) < 10 ? "%.2f s" : fabs(s) < 1000 ? "%.1f s" : "%.0f s", s);
}

static void put_ms(FILE *out, double ms)
{
    if (ms < 1)
        fprintf(out, "%.3f ms", ms);
    else if (ms < 100)
        fprintf(out, "%.1f ms", ms);
    else if (ms < 10000)
        fprintf(out, "%.0f ms", ms);
    else
        fprintf(out, "%.1f s", ms / 1000);
}

/* A 1, 2 or 5 times a power of ten near span / ticks. */
static double nice_step(double span, int ticks)
{
    double raw = span / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* One plot area: x in seconds, y linear or log10. Pixels of the whole SVG. */
typedef struct plot {
    double width, height, left, right, top, bottom;
    double x_lo, x_hi, y_lo, y_hi;
    bool y_log;
} plot_t;

static double px_x(const plot_t *p, double x)
{
    double f = (x - p->x_lo) / (p->x_hi - p->x_lo);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return p->left + f * (p->width - p->left - p->right);
}

static double px_y(const plot_t *p, double y)
{
    double f = p->y_log ? (log10(y > p->y_lo ? y : p->y_lo) - log10(p->y_lo)) /
                              (log10(p->y_hi) - log10(p->y_lo))
                        : (y - p->y_lo) / (p->y_hi - p->y_lo);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return p->height - p->bottom - f * (p->height - p->top - p->bottom);
}

static void svg_open(FILE *out, const plot_t *p, const char *label)
{
    fprintf(out, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", p->width,
            p->height);
    put_text(out, label);
    fputs("\">\n", out);
}

/* The x axis with ticks and grid lines, and its label. */
static void svg_x_axis(FILE *out, const plot_t *p, const char *label)
{
    double step = nice_step(p->x_hi - p->x_lo, 10), base = p->height - p->bottom;
    fputs("<g class=\"ax\">", out);
    for (int i = 0; i <= 60; i++) {
        double x = ceil(p->x_lo / step) * step + i * step;
        if (x > p->x_hi + step * 1e-9)
            break;
        double px = px_x(p, x);
        fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>",
                px, p->top, px, base);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>", px, base, px,
                base + 4);
        fprintf(out, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>", px,
                base + 16, x);
    }
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>", p->left, base,
            p->width - p->right, base);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", 
            (p->left + p->width - p->right) / 2, p->height - 4);
    put_text(out, label);
    fputs("</text></g>\n", out);
}

static void put_latency_label(FILE *out, double ms)
{
    if (ms < 1)
        fprintf(out, "%g µs", ms * 1000);
    else if (ms < 1000)
        fprintf(out, "%g ms", ms);
    else
        fprintf(out, "%g s", ms / 1000);
}

/* The y axis: decades on a log scale, nice steps on a linear one. */
static void svg_y_axis(FILE *out, const plot_t *p, const char *label)
{
    fputs("<g class=\"ax\">", out);
    for (int i = 0; i <= 40; i++) {
        double y;
        if (p->y_log) {
            y = p->y_lo * pow(10, i);
        } else {
            double step = nice_step(p->y_hi - p->y_lo, 5);
            y = p->y_lo + i * step;
        }
        if (y > p->y_hi * (1 + 1e-9))
            break;
        double py = px_y(p, y);
        fprintf(out, "<line class=\"grid\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>",
                p->left, py, p->width - p->right, py);
        fprintf(out, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", p->left - 5, py + 4);
        if (p->y_log)
            put_latency_label(out, y);
        else
            fprintf(out, "%g", y);
        fputs("</text>", out);
    }
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>", p->left, p->top,
            p->left, p->height - p->bottom);
    fprintf(out, "<text transform=\"translate(12 %.0f) rotate(-90)\" text-anchor=\"middle\">",
            (p->top + p->height - p->bottom) / 2);
    put_text(out, label);
    fputs("</text></g>\n", out);
}

/* The fault windows shaded grey (a crash as a thin darker band), each labelled, and the
 * final heal as a dashed line. t0: the history time of x = 0. */
static void svg_faults(FILE *out, const plot_t *p, const history_t *h, int64_t heal_time,
                       bool has_heal)
{
    double t0 = (double)h->t_first;
    for (size_t i = 0; i < h->n_faults; i++) {
        const fault_t *w = &h->faults[i];
        double x0 = px_x(p, ((double)w->start - t0) / NS_PER_S);
        double x1 = px_x(p, ((double)w->end - t0) / NS_PER_S);
        if (w->instant || x1 - x0 < 2) {
            x0 -= 1.5;
            x1 = x0 + 3;
        }
        fprintf(out, "<rect class=\"fault%s\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" "
                     "height=\"%.0f\"><title>",
                w->instant ? " crash" : "", x0, p->top, x1 - x0, p->height - p->top - p->bottom);
        put_text(out, w->kind);
        if (w->node) {
            fputc(' ', out);
            put_text(out, w->node);
        }
        if (w->detail) {
            fputs(": ", out);
            put_text(out, w->detail);
        }
        fputs("</title></rect>", out);
        fprintf(out, "<text class=\"flabel\" x=\"%.1f\" y=\"%.0f\">", x0 + 2,
                p->top + 10 + 11 * (double)(i % 3));
        if (w->instant && w->node && !strcmp(w->kind, "node-crashed")) {
            put_text(out, w->node);
            fputs(" crashed", out);
        } else {
            put_text(out, w->kind);
            if (w->node && !w->instant) {
                fputc(' ', out);
                put_text(out, w->node);
            }
        }
        fputs(w->open ? " (never closed)" : w->no_start ? " (start not recorded)" : "", out);
        fputs("</text>\n", out);
    }
    if (has_heal) {
        double x = px_x(p, ((double)heal_time - t0) / NS_PER_S);
        fprintf(out, "<line class=\"heal\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>"
                     "<text class=\"flabel\" x=\"%.1f\" y=\"%.0f\" text-anchor=\"end\">final "
                     "heal</text>\n",
                x, p->top, x, p->height - p->bottom, x - 3, p->height - p->bottom - 4);
    }
}

static void svg_legend(FILE *out, double x, double y, const char *const *labels,
                       const char *const *classes, size_t n)
{
    for (size_t i = 0; i < n; i++, x += 92) {
        fprintf(out, "<rect class=\"%s\" x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\"/>"
                     "<text x=\"%.0f\" y=\"%.0f\">%s</text>",
                classes[i], x, y - 9, x + 14, y, labels[i]);
    }
    fputc('\n', out);
}

static plot_t time_plot(const history_t *h, double height)
{
    double span = (double)(h->t_last - h->t_first) / NS_PER_S;
    return (plot_t){.width = 1000, .height = height, .left = 70, .right = 16, .top = 28,
                    .bottom = 40, .x_lo = 0, .x_hi = span > 1 ? span : 1};
}

/* ================================================================ the page's sections */

typedef struct page {
    const char *dir, *run_name;
    const history_t *h;
    const summary_t *s;
    const convergence_t *c;
    int64_t heal_time;           /* for the time plots: history's final-heal, else the probe's */
    bool has_heal;
    uint64_t max_points;
} page_t;

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "margin:0 auto;max-width:1060px;padding:0 18px 40px;color:#222;background:#fff}\n"
    "h1{font-size:22px;margin:18px 0 2px}h2{font-size:18px;border-bottom:1px solid #ddd;"
    "padding-bottom:3px;margin-top:30px}h3{font-size:15px;margin:16px 0 4px}\n"
    ".badge{display:inline-block;padding:2px 12px;border-radius:4px;color:#fff;"
    "font-weight:700;font-size:16px;vertical-align:middle;margin-left:10px}\n"
    ".badge.valid{background:#2e7d32}.badge.invalid{background:#c62828}"
    ".badge.unknown{background:#757575}\n"
    "nav a{margin-right:14px}.sub{color:#666}\n"
    "table{border-collapse:collapse;margin:6px 0 10px}td,th{border:1px solid #ddd;"
    "padding:2px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "td.VALID{background:#d9f0d9;color:#1b5e20;font-weight:600}"
    "td.INVALID{background:#f8d3d3;color:#b71c1c;font-weight:600}"
    "td.REPORT{background:#e8eaf6;color:#283593}\n"
    "details pre{margin:4px 0}pre{background:#f6f6f6;padding:6px 8px;overflow-x:auto;"
    "font-size:12px;margin:4px 0}\n"
    "figure{margin:8px 0}figcaption{color:#555;font-size:13px}\n"
    "svg{width:100%;height:auto;display:block}svg text{font-size:11px;fill:#333}\n"
    ".ax line{stroke:#555}.ax line.grid{stroke:#e8e8e8}\n"
    ".fault{fill:#808080;fill-opacity:.2}.fault.crash{fill:#404040;fill-opacity:.5}"
    "svg text.flabel{font-size:10px;fill:#555}\n"
    ".heal{stroke:#1565c0;stroke-width:1.5;stroke-dasharray:5 3}"
    ".limit{stroke:#b71c1c;stroke-dasharray:3 3}.timeout{stroke:#f08c00;stroke-dasharray:4 3}\n"
    ".ok{fill:#2e9e44}.fail{fill:#d62728}.info{fill:#f08c00}.conv{fill:#2e9e44}"
    ".notconv{fill:#d62728}.pts circle{fill-opacity:.55}.tick{stroke:#111;stroke-width:2}\n"
    ".note{color:#555;font-size:13px}.warn{background:#fff4d6;border:1px solid #e5c76b;"
    "padding:4px 10px;margin:8px 0}\n"
    "footer{margin-top:36px;border-top:1px solid #ddd;padding-top:6px;color:#666;"
    "font-size:12px}\n";

static void put_skips(FILE *out, const char *file, const skips_t *sk)
{
    if (sk->n == 0)
        return;
    fprintf(out, "<p class=\"warn\">%s: %ld line(s) skipped (valid JSON, but not what the page "
                 "needs):", file, sk->n);
    for (long i = 0; i < sk->n && i < MAX_SKIPS_LISTED; i++)
        fprintf(out, "%s line %ld (%s)", i ? ";" : "", sk->line[i], sk->why[i]);
    fputs(sk->n > MAX_SKIPS_LISTED ? "; ...</p>\n" : "</p>\n", out);
}

static void section_summary(FILE *out, const page_t *pg)
{
    const summary_t *s = pg->s;
    const history_t *h = pg->h;
    fputs("<section id=\"summary\"><h2>Run</h2>\n", out);
    if (!s->source)
        fputs("<p class=\"warn\">Neither summary.txt nor check.txt is in the run directory: no "
              "parameters and no verdicts to show.</p>\n", out);
    else
        fprintf(out, "<p class=\"note\">From %s%s.</p>\n", s->source,
                s->result_derived ? " (no result line: the result is derived from the checker "
                                    "lines)" : "");
    if (s->param_keys.n > 0) {
        fputs("<table class=\"params\">", out);
        for (size_t i = 0; i < s->param_keys.n; i++) {
            fputs("<tr><th>", out);
            put_text(out, s->param_keys.v[i]);
            fputs("</th><td>", out);
            put_text(out, s->param_values.v[i]);
            fputs("</td></tr>", out);
        }
        fputs("</table>\n", out);
    }
    if (s->other.n > 0) {
        fputs("<pre>", out);
        for (size_t i = 0; i < s->other.n; i++) {
            put_text(out, s->other.v[i]);
            fputc('\n', out);
        }
        fputs("</pre>\n", out);
    }
    if (s->n_checkers > 0) {
        fputs("<h3>Checkers</h3>\n<table class=\"checkers\"><tr><th>checker</th><th>verdict"
              "</th><th>counts</th></tr>\n", out);
        for (size_t i = 0; i < s->n_checkers; i++) {
            const checker_row_t *c = &s->checkers[i];
            fputs("<tr><td>", out);
            put_text(out, c->name);
            fprintf(out, "</td><td class=\"%s\">%s</td><td>", c->verdict, c->verdict);
            put_text(out, c->counts);
            if (c->n_details > 0) {
                fprintf(out, "<details%s><summary>%zu detail line(s)</summary><pre>",
                        strcmp(c->verdict, "INVALID") ? "" : " open", c->n_details);
                for (size_t j = 0; j < c->n_details; j++) {
                    put_text(out, c->details[j]);
                    fputc('\n', out);
                }
                fputs("</pre></details>", out);
            }
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }

    fputs("<h3 id=\"schedule\">Fault schedule</h3>\n", out);
    if (s->schedule.n > 0) {
        fprintf(out, "<p class=\"note\">As %s lists it:</p><ul>", s->source);
        for (size_t i = 0; i < s->schedule.n; i++) {
            fputs("<li>", out);
            put_text(out, s->schedule.v[i]);
            fputs("</li>", out);
        }
        fputs("</ul>\n", out);
    }
    if (h->n_faults == 0) {
        fputs("<p>No fault in the history (no nemesis start, stop or crash line).</p>\n", out);
    } else {
        fputs("<p class=\"note\">As the history recorded it (seconds since the first "
              "operation):</p>\n<table class=\"faults\"><tr><th>#</th><th>fault</th><th>node"
              "</th><th class=\"num\">start</th><th class=\"num\">end</th><th class=\"num\">"
              "duration</th><th>detail</th></tr>\n", out);
        for (size_t i = 0; i < h->n_faults; i++) {
            const fault_t *w = &h->faults[i];
            fprintf(out, "<tr><td class=\"num\">%zu</td><td>", i + 1);
            put_text(out, w->kind);
            fputs("</td><td>", out);
            put_text(out, w->node ? w->node : "");
            fputs("</td><td class=\"num\">", out);
            if (w->no_start)
                fputs("?", out);
            else
                put_seconds(out, (double)(w->start - h->t_first) / NS_PER_S);
            fputs("</td><td class=\"num\">", out);
            if (w->instant)
                fputs("(instant)", out);
            else if (w->open)
                fputs("never closed", out);
            else
                put_seconds(out, (double)(w->end - h->t_first) / NS_PER_S);
            fputs("</td><td class=\"num\">", out);
            if (!w->instant && !w->no_start)
                put_seconds(out, (double)(w->end - w->start) / NS_PER_S);
            fputs("</td><td>", out);
            put_text(out, w->detail ? w->detail : "");
            fputs("</td></tr>\n", out);
        }
        fputs("</table>\n", out);
    }
    if (h->unmatched_stops > 0)
        fprintf(out, "<p class=\"warn\">%ld nemesis stop line(s) had no matching start.</p>\n",
                h->unmatched_stops);
    if (h->has_heal)
        fprintf(out, "<p>Final heal (nemesis final-heal) at %.2f s.</p>\n",
                (double)(h->heal_time - h->t_first) / NS_PER_S);
    fputs("</section>\n", out);
}

/* The latency y value of op in ms, and whether it is only the timeout stand-in. */
static double op_latency_ms(const op_t *op, double stand_in_ms)
{
    return op->latency_from == LAT_UNKNOWN ? stand_in_ms : (double)op->latency_ns / 1e6;
}

static void section_latency(FILE *out, const page_t *pg)
{
    const history_t *h = pg->h;
    fputs("<section id=\"latency\"><h2>Latency over time</h2>\n", out);
    if (h->n_ops == 0) {
        fputs("<p>No completed client operation in the history.</p></section>\n", out);
        return;
    }
    double lo = INFINITY, hi = 0;
    size_t per_outcome[OUT_N] = {0};
    for (size_t i = 0; i < h->n_ops; i++) {
        per_outcome[h->ops[i].outcome]++;
        if (h->ops[i].latency_from == LAT_UNKNOWN)
            continue;
        double ms = (double)h->ops[i].latency_ns / 1e6;
        if (ms > 0 && ms < lo)
            lo = ms;
        if (ms > hi)
            hi = ms;
    }
    /* ops without any latency sit on the timeout line (or the top of the plot) */
    double stand_in = pg->s->timeout_ms > 0 ? pg->s->timeout_ms : hi > 0 ? hi : 1000;
    if (h->latency_unknown > 0 && stand_in > hi)
        hi = stand_in;
    bool timeout_drawn = false;
    if (!(lo < INFINITY) || hi <= 0) {
        lo = 0.1;
        hi = 1000;
    }
    plot_t p = time_plot(h, 380);
    p.y_log = true;
    p.y_lo = pow(10, floor(log10(lo < 1e-3 ? 1e-3 : lo)));
    p.y_hi = pow(10, ceil(log10(hi)));
    if (p.y_hi <= p.y_lo)
        p.y_hi = p.y_lo * 10;

    /* thinning: keep every fail and info op while they fit in half the budget */
    size_t n_bad = per_outcome[OUT_FAIL] + per_outcome[OUT_INFO];
    size_t stride_ok = 1, stride_bad = 1;
    if (h->n_ops > pg->max_points) {
        if (n_bad <= pg->max_points / 2) {
            stride_ok = (per_outcome[OUT_OK] + (pg->max_points - n_bad) - 1) /
                        (pg->max_points - n_bad);
        } else {
            stride_ok = stride_bad = (h->n_ops + pg->max_points - 1) / pg->max_points;
        }
    }

    fputs("<figure>", out);
    svg_open(out, &p, "latency of every completed operation over time");
    svg_faults(out, &p, h, pg->heal_time, pg->has_heal);
    svg_y_axis(out, &p, "latency (log scale)");
    svg_x_axis(out, &p, "seconds since the first operation");
    if (pg->s->timeout_ms > 0 && pg->s->timeout_ms <= p.y_hi) {
        timeout_drawn = true;
        double y = px_y(&p, pg->s->timeout_ms);
        fprintf(out, "<line class=\"timeout\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>"
                     "<text class=\"flabel\" x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">client "
                     "timeout</text>\n",
                p.left, y, p.width - p.right, y, p.width - p.right - 2, y - 3);
    }
    size_t shown = 0, seen[OUT_N] = {0};
    for (int o = 0; o < OUT_N; o++) {
        size_t stride = o == OUT_OK ? stride_ok : stride_bad;
        fprintf(out, "<g class=\"pts %s\">", outcome_name[o]);
        for (size_t i = 0; i < h->n_ops; i++) {
            const op_t *op = &h->ops[i];
            if (op->outcome != o || seen[o]++ % stride != 0)
                continue;
            double x = px_x(&p, (double)(op->time - h->t_first) / NS_PER_S);
            double y = px_y(&p, op_latency_ms(op, stand_in));
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"/>", x, y,
                    o == OUT_OK ? "1.6" : "2.2");
            shown++;
            if (shown % 16 == 0)
                fputc('\n', out);
        }
        fputs("</g>\n", out);
    }
    static const char *const labels[] = {"ok", "fail", "info", "fault", "node crash"};
    static const char *const classes[] = {"ok", "fail", "info", "fault", "fault crash"};
    svg_legend(out, p.width - p.right - 5 * 92, 12, labels, classes, 5);
    fputs("</svg>\n<figcaption>", out);
    fprintf(out, "One point per completed client operation (ok %zu, fail %zu, info %zu) at its "
                 "completion; y is its latency. ",
            per_outcome[OUT_OK], per_outcome[OUT_FAIL], per_outcome[OUT_INFO]);
    if (stride_ok > 1 || stride_bad > 1)
        fprintf(out, "<b>Thinned:</b> %zu of %zu points drawn (one ok operation in %zu, %s; "
                     "limit --max-points %" PRIu64 "). ",
                shown, h->n_ops, stride_ok,
                stride_bad > 1 ? "and the same for fail and info" : "every fail and info",
                pg->max_points);
    if (h->latency_derived > 0)
        fprintf(out, "%ld operation(s) without latency_ns are drawn with completion minus the "
                     "invoke of their process. ", h->latency_derived);
    if (h->latency_unknown > 0)
        fprintf(out, "%ld operation(s) with no latency at all are drawn at %s. ",
                h->latency_unknown, pg->s->timeout_ms > 0 ? "the client timeout"
                                                          : "the top of the scale");
    if (timeout_drawn)
        fprintf(out, "Dashed orange: the client timeout (%g ms). ", pg->s->timeout_ms);
    fputs("Grey: nemesis fault windows (start to stop); dark thin bands: node crashes."
          "</figcaption></figure>\n</section>\n", out);
}

static void section_throughput(FILE *out, const page_t *pg)
{
    const history_t *h = pg->h;
    fputs("<section id=\"throughput\"><h2>Throughput over time</h2>\n", out);
    if (h->n_ops == 0) {
        fputs("<p>No completed client operation in the history.</p></section>\n", out);
        return;
    }
    plot_t p = time_plot(h, 260);
    double span = p.x_hi;
    double bin_s = span <= 600 ? 1 : ceil(span / 600);
    size_t n_bins = (size_t)ceil(span / bin_s) + 1;
    size_t(*bins)[OUT_N] = calloc(n_bins, sizeof *bins);
    if (!bins)
        die("out of memory");
    for (size_t i = 0; i < h->n_ops; i++) {
        size_t b = (size_t)((double)(h->ops[i].time - h->t_first) / NS_PER_S / bin_s);
        bins[b < n_bins ? b : n_bins - 1][h->ops[i].outcome]++;
    }
    double peak = 0;
    for (size_t b = 0; b < n_bins; b++) {
        double total = (double)(bins[b][OUT_OK] + bins[b][OUT_FAIL] + bins[b][OUT_INFO]);
        peak = total / bin_s > peak ? total / bin_s : peak;
    }
    p.y_lo = 0;
    p.y_hi = peak > 0 ? ceil(peak / nice_step(peak, 5)) * nice_step(peak, 5) : 1;
    fputs("<figure>", out);
    svg_open(out, &p, "operations completed per second over time");
    svg_faults(out, &p, h, pg->heal_time, pg->has_heal);
    svg_y_axis(out, &p, "operations / s");
    svg_x_axis(out, &p, "seconds since the first operation");
    for (int o = 0; o < OUT_N; o++) {
        fprintf(out, "<g class=\"%s\">", outcome_name[o]);
        for (size_t b = 0; b < n_bins; b++) {
            if (bins[b][o] == 0)
                continue;
            double below = 0;
            for (int k = 0; k < o; k++)
                below += (double)bins[b][k];
            double x0 = px_x(&p, (double)b * bin_s), x1 = px_x(&p, (double)(b + 1) * bin_s);
            double y0 = px_y(&p, below / bin_s);
            double y1 = px_y(&p, (below + (double)bins[b][o]) / bin_s);
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", x0, y1,
                    x1 - x0 > 1 ? x1 - x0 - 0.3 : x1 - x0, y0 - y1);
        }
        fputs("</g>\n", out);
    }
    static const char *const labels[] = {"ok", "fail", "info", "fault"};
    static const char *const classes[] = {"ok", "fail", "info", "fault"};
    svg_legend(out, p.width - p.right - 4 * 92, 12, labels, classes, 4);
    fprintf(out, "</svg>\n<figcaption>Client operations completed per second, stacked ok / fail "
                 "/ info, in bins of %g s, on the latency plot's time axis.</figcaption>"
                 "</figure>\n</section>\n", bin_s);
    free(bins);
}

/* One row of the outcome tables: a node or an operation kind. */
typedef struct outcome_row {
    const char *name;            /* borrowed from the history's names */
    size_t count[OUT_N], total;
    int64_t p50, p99, max;       /* latency of its ok operations, ns; -1: none */
} outcome_row_t;

typedef struct keyed_latency {
    size_t row;
    int64_t ns;
} keyed_latency_t;

static int keyed_latency_cmp(const void *a, const void *b)
{
    const keyed_latency_t *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return (x->ns > y->ns) - (x->ns < y->ns);
}

/* Names in natural order: digit runs compare as numbers, so n2 < n10. */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static int outcome_row_cmp(const void *a, const void *b)
{
    return natural_cmp(((const outcome_row_t *)a)->name, ((const outcome_row_t *)b)->name);
}

/* Rows per node (by_node) or per operation kind, in natural order. Caller frees. */
static outcome_row_t *outcome_rows(const history_t *h, bool by_node, size_t *n_out)
{
    const names_t *names = by_node ? &h->nodes : &h->fs;
    size_t n = names_count(names), n_lat = 0;
    outcome_row_t *rows = xrealloc(NULL, (n ? n : 1) * sizeof *rows);
    keyed_latency_t *lat = xrealloc(NULL, (h->n_ops ? h->n_ops : 1) * sizeof *lat);
    for (size_t k = 0; k < n; k++)
        rows[k] = (outcome_row_t){.name = names->v[k], .p50 = -1, .p99 = -1, .max = -1};
    for (size_t i = 0; i < h->n_ops; i++) {
        const op_t *op = &h->ops[i];
        size_t k = by_node ? op->node : op->f;
        rows[k].count[op->outcome]++;
        rows[k].total++;
        if (op->outcome == OUT_OK && op->latency_from != LAT_UNKNOWN)
            lat[n_lat++] = (keyed_latency_t){k, op->latency_ns};
    }
    qsort(lat, n_lat, sizeof *lat, keyed_latency_cmp);
    for (size_t i = 0; i < n_lat;) { /* one group of equal row per turn */
        size_t j = i;
        while (j < n_lat && lat[j].row == lat[i].row)
            j++;
        size_t m = j - i;
        outcome_row_t *r = &rows[lat[i].row];
        r->p50 = lat[i + (m + 1) / 2 - 1].ns; /* nearest rank */
        r->p99 = lat[i + (size_t)ceil(0.99 * (double)m) - 1].ns;
        r->max = lat[j - 1].ns;
        i = j;
    }
    free(lat);
    qsort(rows, n, sizeof *rows, outcome_row_cmp);
    *n_out = n;
    return rows;
}

static void outcome_table(FILE *out, const outcome_row_t *rows, size_t n, const char *column)
{
    fprintf(out, "<table><tr><th>%s</th><th class=\"num\">ok</th><th class=\"num\">fail</th>"
                 "<th class=\"num\">info</th><th class=\"num\">total</th><th class=\"num\">ok %%"
                 "</th><th class=\"num\">ok p50</th><th class=\"num\">ok p99</th>"
                 "<th class=\"num\">ok max</th></tr>\n", column);
    for (size_t k = 0; k < n; k++) {
        const outcome_row_t *r = &rows[k];
        fputs("<tr><td>", out);
        put_text(out, r->name);
        fprintf(out, "</td><td class=\"num\">%zu</td><td class=\"num\">%zu</td><td class=\"num\">"
                     "%zu</td><td class=\"num\">%zu</td><td class=\"num\">%.1f</td>",
                r->count[OUT_OK], r->count[OUT_FAIL], r->count[OUT_INFO], r->total,
                r->total ? 100.0 * (double)r->count[OUT_OK] / (double)r->total : 0.0);
        const int64_t quantiles[3] = {r->p50, r->p99, r->max};
        for (size_t q = 0; q < 3; q++) {
            fputs("<td class=\"num\">", out);
            if (quantiles[q] >= 0)
                put_ms(out, (double)quantiles[q] / 1e6);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* Horizontal bars, ok / fail / info stacked, all on the scale of the largest total. */
static void outcome_bars(FILE *out, const outcome_row_t *rows, size_t n, const char *label)
{
    size_t max_total = 1;
    for (size_t k = 0; k < n; k++)
        max_total = rows[k].total > max_total ? rows[k].total : max_total;
    plot_t p = {.width = 1000, .height = 30 + 22 * (double)n, .left = 110, .right = 90};
    svg_open(out, &p, label);
    double bar_w = p.width - p.left - p.right;
    for (size_t k = 0; k < n; k++) {
        double y = 8 + 22 * (double)k, x = p.left;
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">", p.left - 6, y + 12);
        put_text(out, rows[k].name);
        fputs("</text>", out);
        for (int o = 0; o < OUT_N; o++) {
            if (rows[k].count[o] == 0)
                continue;
            double w = bar_w * (double)rows[k].count[o] / (double)max_total;
            fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"16\">"
                         "<title>%s: %zu</title></rect>",
                    outcome_name[o], x, y, w < 0.5 ? 0.5 : w, outcome_name[o],
                    rows[k].count[o]);
            x += w;
        }
        fprintf(out, "<text x=\"%.1f\" y=\"%.0f\">%zu</text>\n", x + 4, y + 12, rows[k].total);
    }
    static const char *const labels[] = {"ok", "fail", "info"};
    static const char *const classes[] = {"ok", "fail", "info"};
    svg_legend(out, p.left, p.height - 4, labels, classes, 3);
    fputs("</svg>\n", out);
}

static void section_outcomes(FILE *out, const page_t *pg)
{
    fputs("<section id=\"outcomes\"><h2>Outcomes per node and per operation</h2>\n", out);
    if (pg->h->n_ops == 0) {
        fputs("<p>No completed client operation in the history.</p></section>\n", out);
        return;
    }
    fputs("<p class=\"note\">ok: acknowledged; fail: certainly not applied; info: outcome "
          "unknown (timeout, broken connection, server error). Latency percentiles are over ok "
          "operations.</p>\n", out);
    for (int by_node = 1; by_node >= 0; by_node--) {
        size_t n;
        outcome_row_t *rows = outcome_rows(pg->h, by_node, &n);
        fputs(by_node ? "<h3>Per node (the client connection's node)</h3>\n"
                      : "<h3>Per operation kind (f)</h3>\n", out);
        outcome_table(out, rows, n, by_node ? "node" : "f");
        outcome_bars(out, rows, n, by_node ? "outcomes per node" : "outcomes per operation kind");
        free(rows);
    }
    fputs("</section>\n", out);
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The per-group table: keys, converged, median and max time to convergence. */
static void convergence_groups(FILE *out, const convergence_t *c)
{
    fputs("<table><tr><th>group</th><th class=\"num\">keys</th><th class=\"num\">converged</th>"
          "<th class=\"num\">not converged</th><th class=\"num\">median time</th>"
          "<th class=\"num\">max time</th></tr>\n", out);
    double *times = xrealloc(NULL, (c->n_keys ? c->n_keys : 1) * sizeof *times);
    for (int g = 0; g < GROUP_N; g++) {
        size_t keys = 0, n = 0;
        for (size_t i = 0; i < c->n_keys; i++) {
            if (c->keys[i].group != g)
                continue;
            keys++;
            if (c->keys[i].converged)
                times[n++] = (double)c->keys[i].converged_at / NS_PER_S;
        }
        if (keys == 0)
            continue;
        qsort(times, n, sizeof *times, double_cmp);
        fprintf(out, "<tr><td>%s</td><td class=\"num\">%zu</td><td class=\"num\">%zu</td>"
                     "<td class=\"num\">%zu</td><td class=\"num\">",
                g == GROUP_READ ? "read" : g == GROUP_UNREAD ? "unread" : "other", keys, n,
                keys - n);
        if (n > 0)
            put_seconds(out, n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2);
        fputs("</td><td class=\"num\">", out);
        if (n < keys && c->limit_s > 0)
            fprintf(out, "not converged within the limit (%g s)", c->limit_s);
        else if (n < keys)
            fputs("not converged within the limit", out);
        else
            put_seconds(out, times[n - 1]);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
    free(times);
}

static void convergence_plot(FILE *out, const convergence_t *c)
{
    size_t rows = 0, headers = 0;
    double x_hi = c->limit_s > 0 ? c->limit_s : 1;
    int last_group = -1;
    for (size_t i = 0; i < c->n_keys && rows < MAX_CONV_ROWS; i++, rows++) {
        headers += c->keys[i].group != last_group;
        last_group = c->keys[i].group;
        for (size_t j = 0; j < c->keys[i].n_probes; j++) {
            double x = (double)(c->keys[i].probes[j].time - c->heal_time) / NS_PER_S;
            x_hi = x > x_hi ? x : x_hi;
        }
    }
    plot_t p = {.width = 1000, .left = 110, .right = 150, .top = 24, .bottom = 40,
                .x_lo = 0, .x_hi = x_hi * 1.03};
    p.height = p.top + p.bottom + 14 * (double)rows + 18 * (double)headers;
    svg_open(out, &p, "convergence of every key's replicas after the final heal");
    svg_x_axis(out, &p, "seconds since the final heal");
    if (c->limit_s > 0) {
        double x = px_x(&p, c->limit_s);
        fprintf(out, "<line class=\"limit\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>"
                     "<text class=\"flabel\" x=\"%.1f\" y=\"%.0f\">limit %g s</text>\n",
                x, p.top, x, p.height - p.bottom, x + 3, p.top - 4, c->limit_s);
    }
    bool all_titles = c->probes <= MAX_PROBE_TITLES;
    double y = p.top;
    last_group = -1;
    for (size_t i = 0; i < rows; i++) {
        const conv_key_t *k = &c->keys[i];
        if (k->group != last_group) {
            fprintf(out, "<text x=\"4\" y=\"%.0f\" font-weight=\"600\">%s</text>\n", y + 13,
                    group_title[k->group]);
            y += 18;
            last_group = k->group;
        }
        fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">", p.left - 6, y + 10);
        put_text(out, k->key);
        fputs("</text>", out);
        for (size_t j = 0; j < k->n_probes; j++) {
            const probe_t *pr = &k->probes[j];
            double t = (double)(pr->time - c->heal_time) / NS_PER_S;
            fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.0f\" width=\"3\" height=\"10\">",
                    pr->converged ? "conv" : "notconv", px_x(&p, t) - 1.5, y + 1);
            if (all_titles || !pr->converged) {
                fputs("<title>", out);
                put_text(out, k->key);
                fprintf(out, " at +%.2f s: %s: ", t, pr->converged ? "converged" : "diverged");
                put_text(out, pr->replicas);
                fputs("</title>", out);
            }
            fputs("</rect>", out);
        }
        if (k->converged) {
            double x = px_x(&p, (double)k->converged_at / NS_PER_S);
            fprintf(out, "<line class=\"tick\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>"
                         "<text x=\"%.0f\" y=\"%.0f\">converged at %.2f s</text>\n",
                    x, y - 1, x, y + 13, p.width - p.right + 6, y + 10,
                    (double)k->converged_at / NS_PER_S);
        } else {
            fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#b71c1c\">%s</text>\n",
                    p.width - p.right + 6, y + 10,
                    k->n_probes ? "not converged" : "no probe");
        }
        y += 14;
    }
    static const char *const labels[] = {"converged", "not converged"};
    static const char *const classes[] = {"conv", "notconv"};
    svg_legend(out, p.left, 12, labels, classes, 2);
    fputs("</svg>\n", out);
}

static void section_convergence(FILE *out, const page_t *pg)
{
    const convergence_t *c = pg->c;
    fputs("<section id=\"convergence\"><h2>Convergence after the final heal</h2>\n", out);
    if (!c->present) {
        fputs("<p>Convergence was not measured for this run (no convergence.jsonl in the run "
              "directory).</p>\n</section>\n", out);
        return;
    }
    fprintf(out, "<p class=\"note\">A probe read every replica of every key directly (no read "
                 "repair) after the heal; a key's time to convergence is its first probe after "
                 "which every probe found its replicas converged. %ld probe(s) of %zu key(s); "
                 "time zero is ", c->probes, c->n_keys);
    put_text(out, c->heal_source);
    fputs(".", out);
    if (c->has_end)
        fprintf(out, " The probe ended %s%s.", c->end_converged ? "with every key converged"
                                                                : "with keys not converged",
                c->limit_s > 0 ? "" : " (no limit given)");
    fputs("</p>\n", out);
    put_skips(out, "convergence.jsonl", &c->skips);
    if (c->n_keys == 0) {
        fputs("<p class=\"warn\">convergence.jsonl holds no probe.</p>\n</section>\n", out);
        return;
    }
    convergence_groups(out, c);
    fputs("<figure>", out);
    convergence_plot(out, c);
    fputs("<figcaption>One row per key, one mark per probe (green: every replica agreed; red: "
          "they did not; hover a mark for the replicas). The black tick is the key's time to "
          "convergence.", out);
    if (c->n_keys > MAX_CONV_ROWS)
        fprintf(out, " Only the first %d of %zu keys are drawn; the table lists all.",
                MAX_CONV_ROWS, c->n_keys);
    if (c->probes > MAX_PROBE_TITLES)
        fputs(" Only the red marks carry the replicas' details.", out);
    fputs("</figcaption></figure>\n", out);

    fputs("<details><summary>Every key</summary><table><tr><th>key</th><th>group</th>"
          "<th class=\"num\">probes</th><th class=\"num\">converged at</th><th>last probe's "
          "replicas</th></tr>\n", out);
    for (size_t i = 0; i < c->n_keys; i++) {
        const conv_key_t *k = &c->keys[i];
        fputs("<tr><td>", out);
        put_text(out, k->key);
        fprintf(out, "</td><td>%s</td><td class=\"num\">%zu</td><td class=\"num\">",
                k->group == GROUP_READ ? "read" : k->group == GROUP_UNREAD ? "unread" : "other",
                k->n_probes);
        if (k->converged)
            put_seconds(out, (double)k->converged_at / NS_PER_S);
        else
            fputs("not converged", out);
        fputs("</td><td>", out);
        if (k->n_probes)
            put_text(out, k->probes[k->n_probes - 1].replicas);
        fputs("</td></tr>\n", out);
    }
    fputs("</table></details>\n</section>\n", out);
}

static void write_page(FILE *out, const page_t *pg)
{
    const char *result = pg->s->result;
    const char *badge = !result ? "unknown" : !strcmp(result, "VALID") ? "valid"
                      : !strcmp(result, "INVALID") ? "invalid" : "unknown";
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    put_text(out, pg->run_name);
    fprintf(out, " — %s</title>\n<style>\n%s</style></head><body>\n<header><h1>",
            result ? result : "no result", css);
    put_text(out, pg->run_name);
    fprintf(out, "<span class=\"badge %s\">", badge);
    put_text(out, result ? result : "NO RESULT");
    fputs("</span></h1>\n<div class=\"sub\">", out);
    put_text(out, pg->dir);
    fputs("</div>\n<nav><a href=\"#summary\">run</a><a href=\"#schedule\">faults</a>"
          "<a href=\"#latency\">latency</a><a href=\"#throughput\">throughput</a>"
          "<a href=\"#outcomes\">outcomes</a><a href=\"#convergence\">convergence</a></nav>"
          "</header>\n", out);
    put_skips(out, "history.jsonl", &pg->h->skips);
    section_summary(out, pg);
    section_latency(out, pg);
    section_throughput(out, pg);
    section_outcomes(out, pg);
    section_convergence(out, pg);

    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "<footer>Generated by jepsen-report (jepsen/jepsen-report_main.c) at %s from "
                 "history.jsonl: %ld lines (%zu completed client operations, %ld invocations, "
                 "%ld nemesis operations%s), ",
            when, pg->h->lines, pg->h->n_ops, pg->h->invokes, pg->h->nemesis_ops,
            pg->h->skips.n ? ", some lines skipped" : "");
    fputs(pg->s->source ? pg->s->source : "no summary", out);
    if (pg->c->present)
        fprintf(out, ", convergence.jsonl: %ld lines", pg->c->lines);
    fputs(". One self-contained file: inline CSS and SVG, no script, no external resource."
          "</footer>\n</body></html>\n", out);
}

/* ================================================================ main */

static void usage(FILE *to)
{
    fputs("usage: jepsen-report [--out FILE] [--max-points N] RUN_DIR\n"
          "\n"
          "Writes RUN_DIR/report.html: one self-contained HTML page (inline CSS and SVG, no\n"
          "script) for a run of jepsen/run.sh, from RUN_DIR/history.jsonl, RUN_DIR/summary.txt\n"
          "(or check.txt when it is absent) and RUN_DIR/convergence.jsonl when present.\n"
          "\n"
          "  --out FILE        write the page to FILE instead\n"
          "  --max-points N    latency points drawn at most (default 20000); above it the ok\n"
          "                    points are thinned evenly, and the caption says so\n"
          "  --help            this text\n"
          "\n"
          "A history or convergence line that is not a JSON object is an error (file, line and\n"
          "column named); a JSON line without the fields the page needs is skipped and listed\n"
          "in the page. Exit status: 0 written, 2 error.\n",
          to);
}

int main(int argc, char **argv)
{
    bench_set_prog_name(PROG);
    static const struct option longs[] = {
        {"out", required_argument, NULL, 'o'},
        {"max-points", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *out_path = NULL;
    uint64_t max_points = 20000;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", longs, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case 'm': max_points = bench_parse_u64("--max-points", optarg, 100, 10000000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, PROG ": expected one RUN_DIR (see --help)\n");
        return 2;
    }
    const char *dir = argv[optind];
    struct stat st;
    if (stat(dir, &st) != 0)
        die("%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        die("%s: not a directory", dir);

    char path[4096], default_out[4096], tmp[4200];
    history_t h = {0};
    summary_t s = {0};
    convergence_t conv = {0};
    snprintf(path, sizeof path, "%s/history.jsonl", dir);
    history_read(&h, path);
    summary_read(&s, dir);
    snprintf(path, sizeof path, "%s/convergence.jsonl", dir);
    convergence_read(&conv, path, &h);

    /* the run's name: summary.txt's "run:", else the directory's last component */
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    size_t dl = strlen(dir_copy);
    while (dl > 1 && dir_copy[dl - 1] == '/')
        dir_copy[--dl] = '\0';
    const char *run_name = strrchr(dir_copy, '/') ? strrchr(dir_copy, '/') + 1 : dir_copy;
    for (size_t i = 0; i < s.param_keys.n; i++)
        if (!strcmp(s.param_keys.v[i], "run"))
            run_name = s.param_values.v[i];

    page_t pg = {.dir = dir, .run_name = run_name, .h = &h, .s = &s, .c = &conv,
                 .max_points = max_points, .has_heal = h.has_heal, .heal_time = h.heal_time};
    if (!pg.has_heal && conv.present && conv.has_heal) {
        pg.has_heal = true;
        pg.heal_time = conv.heal_time;
    }
    if (pg.has_heal && (pg.heal_time < h.t_first || pg.heal_time > h.t_last))
        pg.has_heal = false; /* outside the time plots */

    if (!out_path) {
        snprintf(default_out, sizeof default_out, "%s/report.html", dir);
        out_path = default_out;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out_path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out)
        die("cannot write %s: %s", tmp, strerror(errno));
    write_page(out, &pg);
    bool write_failed = ferror(out) != 0;
    write_failed |= fclose(out) != 0;
    if (write_failed) {
        unlink(tmp);
        die("writing %s failed", tmp);
    }
    if (rename(tmp, out_path) != 0) {
        int e = errno;
        unlink(tmp);
        die("cannot rename %s to %s: %s", tmp, out_path, strerror(e));
    }
    if (stat(out_path, &st) == 0)
        printf(PROG ": wrote %s (%lld bytes; %zu operations, %zu faults%s)\n", out_path,
               (long long)st.st_size, h.n_ops, h.n_faults,
               conv.present ? ", convergence" : "");
    if (h.skips.n || conv.skips.n)
        fprintf(stderr, PROG ": skipped %ld history line(s) and %ld convergence line(s) that "
                        "lack what the page needs (listed in the page)\n",
                h.skips.n, conv.skips.n);
    history_free(&h);
    summary_free(&s);
    convergence_free(&conv);
    return 0;
}
