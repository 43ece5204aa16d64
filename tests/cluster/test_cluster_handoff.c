/*
 * test_cluster_handoff.c — ownership handoff (node/handoff.h) between real cairnd processes:
 * data written to a single node is on every new owner after two nodes join, and writes made
 * while the transfers run are there too.
 *
 * The reads use R=3 with notfound_ok=false: a replica that does not hold the key does not
 * count toward R, so a key is read back only when all three replicas of its preference
 * list (on their owners after the change) hold it. Before handoff existed the new owners
 * started empty and these reads failed.
 */
#include "tests/cluster/cluster_test.h"

#define KEYS_BEFORE 4000 /* ~750 objects per partition: every transfer takes several batches */
#define KEYS_DURING 300

static void put_ok(cairn_t *k, const char *key, const char *value, uint32_t w)
{
    cairn_put_opts_t o = {.w = w};
    int rc = cairn_put(k, cl_buf("hb"), cl_buf(key), cl_buf(value), &o, NULL);
    cr_assert_eq(rc, CAIRN_OK, "put %s: %s: %s", key, cairn_strerror(rc), cairn_errmsg(k));
}

static void write_range(cl_cluster_t *c, size_t via, const char *prefix, int count, uint32_t w)
{
    cairn_t *k = cl_connect(c, via);
    for (int i = 0; i < count; i++) {
        char key[64], value[96];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        snprintf(value, sizeof value, "value of %s-%d", prefix, i);
        put_ok(k, key, value, w);
    }
    cairn_close(k);
}

/* Every key of the range, through node `via`, from all three replicas. */
static void read_range_all_replicas(cl_cluster_t *c, size_t via, const char *prefix, int count)
{
    cairn_t *k = cl_connect(c, via);
    cairn_get_opts_t o = {.r = 3, .notfound_ok = CAIRN_FALSE};
    for (int i = 0; i < count; i++) {
        char key[64], value[96];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        snprintf(value, sizeof value, "value of %s-%d", prefix, i);
        cairn_object_t *obj = NULL;
        int rc = cairn_get(k, cl_buf("hb"), cl_buf(key), &o, &obj);
        cr_assert_eq(rc, CAIRN_OK, "get %s via node %zu (R=3, notfound_ok=false): %s: %s", key,
                     via + 1, cairn_strerror(rc), cairn_errmsg(k));
        cr_assert_eq(obj->n_siblings, 1, "get %s: %zu siblings", key, obj->n_siblings);
        cr_assert_eq(obj->siblings[0].value.len, strlen(value));
        cr_assert(memcmp(obj->siblings[0].value.data, value, strlen(value)) == 0,
                  "get %s: wrong value", key);
        cairn_object_free(obj);
    }
    cairn_close(k);
}

Test(cluster_handoff, joined_nodes_receive_the_data, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clhandoff");
    cl_start(&c, 0, NULL);
    /* One node: the three replicas of every key are three partitions of node 1. */
    write_range(&c, 0, "before", KEYS_BEFORE, 3);
    cl_start(&c, 1, NULL);
    cl_start(&c, 2, NULL);
    for (size_t i = 1; i < 3; i++)
        free(cl_admin_ok(&c, i, (char *const[]){"cluster", "join", c.nodes[0].name, NULL}));
    for (size_t i = 1; i < 3; i++) {
        char want[128];
        snprintf(want, sizeof want, "\"%s\"", c.nodes[i].name);
        cl_wait_members(&c, 0, (const char *const[]){want, NULL}, NULL);
    }
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    /* Writes while the partitions move (W=3: on every replica of the ring of the moment). */
    write_range(&c, 0, "during", KEYS_DURING, 3);
    cl_wait_members(&c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", NULL});
    for (size_t i = 0; i < 3; i++)
        cl_wait_ringready(&c, i);
    /* Node 1 sent every moving partition; its last sweeps may still run after the switch. */
    cl_wait_transfers_idle(&c, 0);
    /* Ownership really moved: node 1 no longer owns all 16 partitions. */
    char *js = cl_admin_ok(&c, 1, (char *const[]){"--json", "member-status", NULL});
    cr_assert(!strstr(js, "\"owned\":16"), "node 1 still owns everything:\n%s", js);
    free(js);
    for (size_t via = 0; via < 3; via++) {
        read_range_all_replicas(&c, via, "before", KEYS_BEFORE);
        read_range_all_replicas(&c, via, "during", KEYS_DURING);
    }
    if (getenv("CAIRN_TEST_KEEP")) { /* debugging: keep the data dirs and logs */
        cl_stop_all(&c);
        cr_log_info("kept %s", c.dir);
    } else {
        cl_cleanup(&c);
    }
}

/* A leaving node hands every partition it owns to the others before it stops. */
Test(cluster_handoff, leaving_node_hands_off_its_data, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clhoffleave");
    cl_start_all(&c);
    cl_form(&c);
    write_range(&c, 0, "kept", 600, 3);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "leave", c.nodes[2].name, NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    int st = ct_node_wait_exit(&c.nodes[2].n, CL_SETTLE_MS);
    cr_assert_eq(st, 0, "the leaving node did not stop cleanly (status %d)", st);
    char gone[128];
    snprintf(gone, sizeof gone, "\"%s\"", c.nodes[2].name);
    for (size_t i = 0; i < 2; i++)
        cl_wait_members(&c, i, (const char *const[]){"\"pending\":0", NULL},
                        (const char *const[]){gone, NULL});
    /* Node 3 is gone: every replica the reads need is on node 1 or 2. */
    for (size_t via = 0; via < 2; via++)
        read_range_all_replicas(&c, via, "kept", 600);
    cl_cleanup(&c);
}

/* The receiving node is killed while partitions move to it, and restarted: the transfers
 * start over and finish, and every key is there once (re-sent batches merge, they never
 * add siblings). */
Test(cluster_handoff, receiver_crash_mid_transfer, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 2, "clhoffcrash");
    char *const slow[] = {"--set", "handoff.concurrency=1", NULL}; /* one transfer at a time */
    cl_start(&c, 0, slow);
    write_range(&c, 0, "crash", KEYS_BEFORE, 3);
    cl_start(&c, 1, NULL);
    free(cl_admin_ok(&c, 1, (char *const[]){"cluster", "join", c.nodes[0].name, NULL}));
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", c.nodes[1].name);
    cl_wait_members(&c, 0, (const char *const[]){want, NULL}, NULL);
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));
    /* Wait until a transfer to node 2 is under way, then kill node 2. */
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        char *out = NULL;
        bool sending = cl_admin(&c, 0, &out, (char *const[]){"transfers", NULL}) == 0 && out &&
                       strstr(out, "sending");
        free(out);
        if (sending)
            break;
        cr_assert(ct_now_ms() < end, "no transfer started");
        ct_sleep_ms(20);
    }
    ct_node_stop(&c.nodes[1].n, SIGKILL);
    ct_sleep_ms(500);
    cl_start(&c, 1, NULL);
    cl_wait_members(&c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", NULL});
    for (size_t i = 0; i < 2; i++)
        cl_wait_ringready(&c, i);
    cl_wait_transfers_idle(&c, 0);
    char *js = cl_admin_ok(&c, 1, (char *const[]){"--json", "member-status", NULL});
    cr_assert(!strstr(js, "\"owned\":16"), "node 1 still owns everything:\n%s", js);
    free(js);
    for (size_t via = 0; via < 2; via++)
        read_range_all_replicas(&c, via, "crash", KEYS_BEFORE);
    cl_cleanup(&c);
}
