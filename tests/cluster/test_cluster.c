/*
 * test_cluster.c — clusters of real cairnd processes on loopback, operated with cairn-admin
 * and used through libcairn: forming 3- and 5-node clusters, writes through one node read
 * through every other, a killed node (N=3, R=W=2 keeps working on the other two, and the
 * node rejoins as up after a restart), leave and force-remove seen everywhere, a node with
 * the wrong cookie refused, plan/commit agreement, and a full restart keeping the ring.
 */
#include "tests/cluster/cluster_test.h"

#define KEYS 60

static void put_ok(cairn_t *k, const char *bucket, const char *key, const char *value,
                   uint32_t w)
{
    cairn_put_opts_t o = {.w = w};
    int rc = cairn_put(k, cl_buf(bucket), cl_buf(key), cl_buf(value), &o, NULL);
    cr_assert_eq(rc, CAIRN_OK, "put %s/%s: %s: %s", bucket, key, cairn_strerror(rc),
                 cairn_errmsg(k));
}

static void get_expect(cairn_t *k, const char *bucket, const char *key, const char *value,
                       uint32_t r)
{
    cairn_get_opts_t o = {.r = r};
    cairn_object_t *obj = NULL;
    int rc = cairn_get(k, cl_buf(bucket), cl_buf(key), &o, &obj);
    cr_assert_eq(rc, CAIRN_OK, "get %s/%s via %s: %s: %s", bucket, key, cairn_current_node(k),
                 cairn_strerror(rc), cairn_errmsg(k));
    cr_assert_eq(obj->n_siblings, 1, "get %s/%s: %zu siblings", bucket, key, obj->n_siblings);
    cr_assert_str_eq((const char *)obj->siblings[0].value.data, value);
    cairn_object_free(obj);
}

static void write_keys(cl_cluster_t *c, size_t via, const char *bucket, const char *prefix,
                       uint32_t w)
{
    cairn_t *k = cl_connect(c, via);
    for (int i = 0; i < KEYS; i++) {
        char key[64], value[64];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        snprintf(value, sizeof value, "value of %s-%d", prefix, i);
        put_ok(k, bucket, key, value, w);
    }
    cairn_close(k);
}

static void read_keys(cl_cluster_t *c, size_t via, const char *bucket, const char *prefix,
                      uint32_t r)
{
    cairn_t *k = cl_connect(c, via);
    for (int i = 0; i < KEYS; i++) {
        char key[64], value[64];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        snprintf(value, sizeof value, "value of %s-%d", prefix, i);
        get_expect(k, bucket, key, value, r);
    }
    cairn_close(k);
}

static bool has(const char *text, const char *needle)
{
    return text && strstr(text, needle) != NULL;
}

Test(cluster, three_nodes_form_and_replicate, .timeout = 240)
{
    cl_cluster_t c;
    cl_init(&c, 3, "cl3");
    cl_start_all(&c);
    cl_form(&c);
    char *ms = cl_admin_ok(&c, 1, (char *const[]){"member-status", NULL});
    cr_assert(has(ms, "Valid:3"), "member-status:\n%s", ms);
    for (size_t i = 0; i < 3; i++)
        cr_assert(has(ms, c.nodes[i].name), "member-status misses %s:\n%s", c.nodes[i].name, ms);
    free(ms);
    /* Ownership is spread: each of 3 nodes owns 5 or 6 of 16 partitions. */
    char *js = cl_admin_ok(&c, 2, (char *const[]){"--json", "member-status", NULL});
    cr_assert(!has(js, "\"owned\":16"), "one node still owns everything:\n%s", js);
    free(js);
    write_keys(&c, 0, "b", "k", 3);      /* all three replicas written */
    read_keys(&c, 1, "b", "k", 3);       /* through every other node, all replicas agree */
    read_keys(&c, 2, "b", "k", 3);
    char *rs = cl_admin_ok(&c, 0, (char *const[]){"ring-status", NULL});
    cr_assert(has(rs, "All nodes are up and reachable"), "ring-status:\n%s", rs);
    free(rs);
    cl_cleanup(&c);
}

Test(cluster, five_nodes_form, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 5, "cl5");
    cl_start_all(&c);
    cl_form(&c);
    char *ms = cl_admin_ok(&c, 4, (char *const[]){"member-status", NULL});
    cr_assert(has(ms, "Valid:5"), "member-status:\n%s", ms);
    free(ms);
    write_keys(&c, 3, "five", "k", 2);
    read_keys(&c, 0, "five", "k", 2);
    cl_cleanup(&c);
}

Test(cluster, killed_node_quorum_and_rejoin, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clkill");
    cl_start_all(&c);
    cl_form(&c);
    write_keys(&c, 0, "b", "before", 3);
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    /* Once the failure detector has seen it (cluster.node_timeout = 1.5 s), requests stop
     * waiting for its vnodes: N=3, R=W=2 works on the other two. */
    char want[160];
    snprintf(want, sizeof want, "Unreachable");
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        char *rs = NULL;
        cl_admin(&c, 0, &rs, (char *const[]){"ring-status", NULL});
        bool seen = has(rs, c.nodes[2].name) && !has(rs, "All nodes are up and reachable");
        free(rs);
        if (seen)
            break;
        cr_assert(ct_now_ms() < end, "node 3 never seen as unreachable");
        ct_sleep_ms(200);
    }
    int64_t t0 = ct_now_ms();
    write_keys(&c, 0, "b", "during", 2);
    read_keys(&c, 1, "b", "during", 2);
    read_keys(&c, 1, "b", "before", 2);
    /* 3 x 60 requests: none of them may have waited for a request timeout. */
    cr_assert_lt(ct_now_ms() - t0, 60000, "requests waited for the dead node");
    /* Membership did not change by itself. */
    char *ms = cl_admin_ok(&c, 0, (char *const[]){"member-status", NULL});
    cr_assert(has(ms, "Valid:3"), "a dead node must stay a member:\n%s", ms);
    free(ms);
    /* Restart it: it is seen as up again and serves reads (read repair fills what it missed). */
    cl_start(&c, 2, NULL);
    end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        char *rs = NULL;
        cl_admin(&c, 0, &rs, (char *const[]){"ring-status", NULL});
        bool up = has(rs, "All nodes are up and reachable");
        free(rs);
        if (up)
            break;
        cr_assert(ct_now_ms() < end, "node 3 not seen as up after its restart");
        ct_sleep_ms(200);
    }
    read_keys(&c, 2, "b", "before", 2);
    read_keys(&c, 2, "b", "during", 2);
    cl_cleanup(&c);
}

Test(cluster, leave_and_force_remove, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 4, "clleave");
    cl_start_all(&c);
    cl_form(&c);
    /* Node 4 leaves (staged from node 2, which forwards to the claimant). */
    free(cl_admin_ok(&c, 1, (char *const[]){"cluster", "leave", c.nodes[3].name, NULL}));
    char *plan = cl_admin_ok(&c, 2, (char *const[]){"cluster", "plan", NULL});
    cr_assert(has(plan, "leave"), "plan:\n%s", plan);
    free(plan);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    /* It hands its partitions over, is removed, and stops by itself. */
    int st = ct_node_wait_exit(&c.nodes[3].n, CL_SETTLE_MS);
    cr_assert_eq(st, 0, "the leaving node did not stop cleanly (status %d)", st);
    char gone[128];
    snprintf(gone, sizeof gone, "\"%s\"", c.nodes[3].name);
    for (size_t i = 0; i < 3; i++)
        cl_wait_members(&c, i, (const char *const[]){"\"valid\"", NULL},
                        (const char *const[]){gone, NULL});
    /* Node 3 is killed and force-removed. */
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "force-remove", c.nodes[2].name, NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    snprintf(gone, sizeof gone, "\"%s\"", c.nodes[2].name);
    for (size_t i = 0; i < 2; i++)
        cl_wait_members(&c, i, NULL, (const char *const[]){gone, NULL});
    char *ms = cl_admin_ok(&c, 1, (char *const[]){"member-status", NULL});
    cr_assert(has(ms, "Valid:2"), "member-status:\n%s", ms);
    free(ms);
    write_keys(&c, 1, "after", "k", 2);
    read_keys(&c, 0, "after", "k", 2);
    cl_cleanup(&c);
}

Test(cluster, wrong_cookie_refused, .timeout = 180)
{
    cl_cluster_t c;
    cl_init(&c, 2, "clcookie");
    /* Node 2 has another cookie. */
    char path[512];
    snprintf(path, sizeof path, "%s/cookie", c.nodes[1].n.data);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("another-cookie", f);
    fclose(f);
    cl_start_all(&c);
    char *out = NULL;
    int st = cl_admin(&c, 1, &out, (char *const[]){"cluster", "join", c.nodes[0].name, NULL});
    cr_assert_neq(st, 0, "a join across cookies must fail:\n%s", out);
    free(out);
    char *ms = cl_admin_ok(&c, 0, (char *const[]){"--json", "member-status", NULL});
    cr_assert(!has(ms, c.nodes[1].name), "the refused node became a member:\n%s", ms);
    free(ms);
    cl_cleanup(&c);
}

Test(cluster, full_restart_keeps_ring, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clrestart");
    cl_start_all(&c);
    cl_form(&c);
    write_keys(&c, 2, "b", "k", 3);
    char *before = cl_admin_ok(&c, 0, (char *const[]){"--json", "member-status", NULL});
    cl_stop_all(&c);
    cl_start_all(&c);
    for (size_t i = 0; i < 3; i++)
        cl_wait_ringready(&c, i);
    char *after = cl_admin_ok(&c, 0, (char *const[]){"--json", "member-status", NULL});
    cr_assert(has(after, "\"valid\""));
    for (size_t i = 0; i < 3; i++)
        cr_assert(has(after, c.nodes[i].name));
    free(before);
    free(after);
    read_keys(&c, 1, "b", "k", 3);
    cl_cleanup(&c);
}

Test(cluster, ring_size_mismatch_refused, .timeout = 180)
{
    cl_cluster_t c;
    cl_init(&c, 2, "clq");
    cl_start(&c, 0, NULL);
    cl_start(&c, 1, (char *const[]){"--ring-size", "32", NULL});
    char *out = NULL;
    int st = cl_admin(&c, 1, &out, (char *const[]){"cluster", "join", c.nodes[0].name, NULL});
    cr_assert_neq(st, 0, "a join across ring sizes must fail:\n%s", out);
    free(out);
    char *ms = cl_admin_ok(&c, 0, (char *const[]){"--json", "member-status", NULL});
    cr_assert(!has(ms, c.nodes[1].name), "the refused node became a member:\n%s", ms);
    free(ms);
    cl_cleanup(&c);
}

/* The owner counts `cluster plan` shows are what `cluster commit` installs; a plan made
 * stale by a change in between is refused at commit (Riak's plan_changed). */
Test(cluster, plan_and_commit_agree, .timeout = 240)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clplan");
    cl_start_all(&c);
    free(cl_admin_ok(&c, 1, (char *const[]){"cluster", "join", c.nodes[0].name, NULL}));
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", c.nodes[1].name);
    cl_wait_members(&c, 0, (const char *const[]){want, NULL}, NULL);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    /* Node 3 joins after the plan was shown: the shown plan is stale. */
    free(cl_admin_ok(&c, 2, (char *const[]){"cluster", "join", c.nodes[0].name, NULL}));
    snprintf(want, sizeof want, "\"%s\"", c.nodes[2].name);
    cl_wait_members(&c, 0, (const char *const[]){want, NULL}, NULL);
    char *out = NULL;
    int st = cl_admin(&c, 0, &out, (char *const[]){"cluster", "commit", NULL});
    cr_assert_neq(st, 0, "a stale plan was committed:\n%s", out);
    free(out);
    /* Plan again, commit: the members' shares after the commit are the plan's. */
    char *plan = cl_admin_ok(&c, 0, (char *const[]){"--json", "cluster", "plan", NULL});
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    cl_wait_members(&c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", NULL});
    char *ms = cl_admin_ok(&c, 0, (char *const[]){"--json", "member-status", NULL});
    for (size_t i = 0; i < 3; i++) {
        /* "owned_after":K in the plan for node i, "owned":K in member-status afterwards */
        const char *p = strstr(plan, c.nodes[i].name);
        const char *m = strstr(ms, c.nodes[i].name);
        cr_assert(p && m, "node %zu missing:\nplan %s\nmembers %s", i + 1, plan, ms);
        const char *pa = strstr(p, "\"owned_after\":");
        const char *mo = strstr(m, "\"owned\":");
        cr_assert(pa && mo);
        cr_assert_eq(atoi(pa + 14), atoi(mo + 8), "node %zu: plan says %d, ring has %d\n%s\n%s",
                     i + 1, atoi(pa + 14), atoi(mo + 8), plan, ms);
    }
    free(plan);
    free(ms);
    cl_cleanup(&c);
}

/* A node that left can come back under its name: restarted, it joins again and stays, even
 * though the others' gossip still lists it as removed when it starts. */
Test(cluster, left_node_rejoins_under_its_name, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clrejoin");
    cl_start_all(&c);
    cl_form(&c);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "leave", c.nodes[2].name, NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    cr_assert_eq(ct_node_wait_exit(&c.nodes[2].n, CL_SETTLE_MS), 0, "node 3 did not leave");
    cl_start(&c, 2, NULL);
    cl_join(&c, 2);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", c.nodes[2].name);
    cl_wait_members(&c, 0, (const char *const[]){want, "\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", "\"removed\"", NULL});
    ct_sleep_ms(4000); /* longer than a removed node's stop delay */
    free(cl_admin_ok(&c, 2, (char *const[]){"ping", NULL})); /* still running */
    cl_cleanup(&c);
}
