/*
 * cluster_test.h — helpers for the cluster integration suites (tests/cluster/): several real
 * cairnd processes on loopback with fixed node names (so a restarted node keeps its name),
 * one shared cookie, formed into a cluster with cairn-admin, and driven through libcairn.
 * Prefix cl_. Builds on tests/unit/cairnd_test.h (ct_).
 */
#ifndef CAIRN_CLUSTER_TEST_H
#define CAIRN_CLUSTER_TEST_H

#include "client/cairn.h"
#include "tests/unit/cairnd_test.h"

#include <fcntl.h>

#define CL_MAX_NODES 8
#define CL_COOKIE "cluster-test-cookie"
#define CL_RING_SIZE "16"
#define CL_SETTLE_MS 60000 /* ringready, member status: bounded polls */

typedef struct cl_node {
    ct_node_t n;
    int link_port;
    char name[96];           /* cairn<i>@127.0.0.1:<link_port> */
    int starts;
} cl_node_t;

typedef struct cl_cluster {
    char dir[256];
    size_t count;
    cl_node_t nodes[CL_MAX_NODES];
} cl_cluster_t;

/* The flags every node of the suites runs with: a small ring and a fast failure detector. */
static char *const cl_node_flags[] = {
    "--ring-size", CL_RING_SIZE,
    "--set", "cluster.heartbeat_interval=200ms",
    "--set", "cluster.node_timeout=1500ms",
    "--set", "cluster.gossip_interval=300ms",
    "--set", "cluster.claimant_tick=300ms",
    "--set", "delete_mode=keep",
    NULL};

static inline void cl_write_cookie(const char *data_dir)
{
    mkdir(data_dir, 0700);
    char path[512];
    snprintf(path, sizeof path, "%s/cookie", data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "cookie file %s: %s", path, strerror(errno));
    cr_assert(write(fd, CL_COOKIE, strlen(CL_COOKIE)) == (ssize_t)strlen(CL_COOKIE));
    close(fd);
}

/* Sets up (does not start) `count` nodes under a fresh directory. */
static inline void cl_init(cl_cluster_t *c, size_t count, const char *what)
{
    memset(c, 0, sizeof *c);
    cr_assert(count <= CL_MAX_NODES);
    cr_assert(ct_tmpdir(c->dir, sizeof c->dir, what), "mkdtemp: %s", strerror(errno));
    c->count = count;
    for (size_t i = 0; i < count; i++) {
        cl_node_t *x = &c->nodes[i];
        char dir[256];
        int w = snprintf(dir, sizeof dir, "%.200s/node%zu", c->dir, i + 1);
        cr_assert(w > 0 && (size_t)w < sizeof dir);
        cr_assert(mkdir(dir, 0700) == 0);
        ct_node_init(&x->n, dir);
        x->link_port = ct_unused_port();
        snprintf(x->name, sizeof x->name, "cairn%zu@127.0.0.1:%d", i + 1, x->link_port);
        cl_write_cookie(x->n.data);
    }
}

/* Starts node i (0-based) with the suite's flags plus extra (NULL-terminated or NULL). */
static inline void cl_start(cl_cluster_t *c, size_t i, char *const extra[])
{
    cl_node_t *x = &c->nodes[i];
    char *args[40];
    int a = 0;
    args[a++] = "--nodename";
    args[a++] = x->name;
    for (int k = 0; cl_node_flags[k]; k++)
        args[a++] = cl_node_flags[k];
    for (int k = 0; extra && extra[k] && a < 39; k++)
        args[a++] = extra[k];
    args[a] = NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "cairnd-%d", ++x->starts);
    ct_node_start_ok(&x->n, tag, args);
    cr_assert_str_eq(x->n.nodename, x->name);
}

static inline void cl_start_all(cl_cluster_t *c)
{
    for (size_t i = 0; i < c->count; i++)
        cl_start(c, i, NULL);
}

/* Runs cairn-admin against node i; returns its exit status; *out (if non-NULL) its stdout
 * (malloc'ed). */
static inline int cl_admin(cl_cluster_t *c, size_t i, char **out, char *const cmd[])
{
    static int seq;
    char tag[32];
    snprintf(tag, sizeof tag, "admin-%d", ++seq);
    int st = ct_admin(&c->nodes[i].n, tag, cmd);
    if (out) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s.out", c->nodes[i].n.dir, tag);
        *out = ct_slurp(path);
    }
    return st;
}

/* cairn-admin that must succeed; returns its stdout (caller frees). */
static inline char *cl_admin_ok(cl_cluster_t *c, size_t i, char *const cmd[])
{
    char *out = NULL;
    int st = cl_admin(c, i, &out, cmd);
    if (st != 0) {
        char path[400];
        snprintf(path, sizeof path, "%s", c->nodes[i].n.dir);
        cr_assert_fail("cairn-admin %s %s on node %zu: exit %d\nstdout: %s", cmd[0],
                       cmd[1] ? cmd[1] : "", i + 1, st, out);
    }
    return out;
}

/* Polls `cairn-admin ringready` on node i until it succeeds (bounded). */
static inline void cl_wait_ringready(cl_cluster_t *c, size_t i)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    char *out = NULL;
    for (;;) {
        free(out);
        out = NULL;
        if (cl_admin(c, i, &out, (char *const[]){"ringready", NULL}) == 0)
            break;
        cr_assert(ct_now_ms() < end, "ring not ready within %d ms on node %zu:\n%s",
                  CL_SETTLE_MS, i + 1, out);
        ct_sleep_ms(300);
    }
    free(out);
}

/* Polls `cairn-admin --json member-status` on node i until its output contains every
 * string of want (NULL-terminated) and none of avoid (bounded). */
static inline void cl_wait_members(cl_cluster_t *c, size_t i, const char *const want[],
                                   const char *const avoid[])
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    char *out = NULL;
    for (;;) {
        free(out);
        out = NULL;
        bool ok = cl_admin(c, i, &out, (char *const[]){"--json", "member-status", NULL}) == 0;
        for (int k = 0; ok && want && want[k]; k++)
            ok = strstr(out, want[k]) != NULL;
        for (int k = 0; ok && avoid && avoid[k]; k++)
            ok = strstr(out, avoid[k]) == NULL;
        if (ok)
            break;
        cr_assert(ct_now_ms() < end, "member-status on node %zu did not settle:\n%s", i + 1, out);
        ct_sleep_ms(300);
    }
    free(out);
}

/* Joins nodes 1..count-1 to node 0, plans and commits, and waits for the ring. */
static inline void cl_form(cl_cluster_t *c)
{
    for (size_t i = 1; i < c->count; i++)
        free(cl_admin_ok(c, i, (char *const[]){"cluster", "join", c->nodes[0].name, NULL}));
    /* The claimant must have heard of every joiner before it plans: wait for gossip. */
    for (size_t i = 1; i < c->count; i++) {
        char want[128];
        snprintf(want, sizeof want, "\"%s\"", c->nodes[i].name);
        cl_wait_members(c, 0, (const char *const[]){want, NULL}, NULL);
    }
    free(cl_admin_ok(c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(c, 0, (char *const[]){"cluster", "commit", NULL}));
    /* Joined, and every partition with its new owner (no transfer pending). */
    cl_wait_members(c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", NULL});
    for (size_t i = 0; i < c->count; i++)
        cl_wait_ringready(c, i);
}

static inline void cl_stop_all(cl_cluster_t *c)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->nodes[i].n.pid > 0)
            ct_node_stop(&c->nodes[i].n, SIGTERM);
}

static inline void cl_cleanup(cl_cluster_t *c)
{
    cl_stop_all(c);
    ct_rmtree(c->dir);
}

static inline cairn_t *cl_connect(cl_cluster_t *c, size_t i)
{
    cairn_t *k = NULL;
    cairn_opts_t o = {.timeout_ms = 20000};
    int rc = cairn_connect(c->nodes[i].n.host, &o, &k);
    cr_assert_eq(rc, CAIRN_OK, "connect to node %zu: %s", i + 1, cairn_errmsg(NULL));
    return k;
}

static inline cairn_buf_t cl_buf(const char *s)
{
    return (cairn_buf_t){(void *)s, strlen(s)};
}

/* Node i (started, alone so far) joins node 0's cluster with `cluster join`, and node 0 lists
 * it as a member (bounded). Plan and commit are the caller's. */
static inline void cl_join(cl_cluster_t *c, size_t i)
{
    free(cl_admin_ok(c, i, (char *const[]){"cluster", "join", c->nodes[0].name, NULL}));
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", c->nodes[i].name);
    cl_wait_members(c, 0, (const char *const[]){want, NULL}, NULL);
}

/* Whether `cairn-admin transfers` on node i says nothing moves there: no transfer pending
 * and no handoff (sweeps included) in progress. */
static inline bool cl_transfers_idle(cl_cluster_t *c, size_t i)
{
    char *out = NULL;
    /* every member answered and none has anything running, waiting or held */
    bool idle = cl_admin(c, i, &out, (char *const[]){"transfers", NULL}) == 0 && out &&
                strncmp(out, "No transfers active\n", 20) == 0;
    free(out);
    return idle;
}

/* Polls cl_transfers_idle on node i (bounded by CL_SETTLE_MS). */
static inline void cl_wait_transfers_idle(cl_cluster_t *c, size_t i)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    while (!cl_transfers_idle(c, i)) {
        cr_assert(ct_now_ms() < end, "transfers seen from node %zu did not end", i + 1);
        ct_sleep_ms(300);
    }
}

/* Waits (bounded by CL_SETTLE_MS) until a committed change has settled everywhere: node
 * `ref`'s member-status shows nothing pending and nobody joining, and every running node
 * (pid > 0) answers `ringready` and has no transfer. */
static inline void cl_wait_settled(cl_cluster_t *c, size_t ref)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        char *ms = NULL;
        bool ok = cl_admin(c, ref, &ms, (char *const[]){"--json", "member-status", NULL}) == 0 &&
                  strstr(ms, "\"pending\":0") && !strstr(ms, "\"joining\"");
        for (size_t i = 0; ok && i < c->count; i++) {
            if (c->nodes[i].n.pid <= 0)
                continue;
            ok = cl_admin(c, i, NULL, (char *const[]){"ringready", NULL}) == 0 &&
                 cl_transfers_idle(c, i);
        }
        if (ok) {
            free(ms);
            return;
        }
        cr_assert(ct_now_ms() < end, "the cluster did not settle within %d ms; member-status "
                                     "on node %zu:\n%s", CL_SETTLE_MS, ref + 1, ms);
        free(ms);
        ct_sleep_ms(300);
    }
}

#endif
