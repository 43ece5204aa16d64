/*
 * test_cluster_convergence.c — replica convergence between real cairnd processes:
 *   - `cairn-admin replicas` (node/replica_probe.h) shows each primary copy of a key, read
 *     without repair, and whether the copies agree; bad arguments are refused;
 *   - a replica that missed writes (its node was killed; the writes used no fallback) stays
 *     stale while nobody reads the keys and anti-entropy is off; with anti-entropy on
 *     (node/anti_entropy.h) every key converges without a single client read.
 */
#include "tests/cluster/cluster_test.h"

#define CONV_KEYS 200

/* `replicas` of keys [from, from+n) of bucket "conv" through node i, as JSON (malloc'ed). */
static char *replicas_json(cl_cluster_t *c, size_t i, int from, int n)
{
    char *argv[32];
    char keys[24][16];
    int a = 0;
    argv[a++] = "--json";
    argv[a++] = "replicas";
    argv[a++] = "conv";
    for (int k = 0; k < n && k < 24; k++) {
        snprintf(keys[k], sizeof keys[k], "c%d", from + k);
        argv[a++] = keys[k];
    }
    argv[a] = NULL;
    return cl_admin_ok(c, i, argv);
}

/* How many of the keys' replica sets disagree (asked in batches: ct_admin passes at most
 * 31 arguments). */
static int count_differing(cl_cluster_t *c, size_t via)
{
    enum { BATCH = 20 };
    int differ = 0, agree = 0;
    for (int from = 0; from < CONV_KEYS; from += BATCH) {
        char *js = replicas_json(c, via, from, BATCH);
        for (const char *p = js; (p = strstr(p, "\"converged\":false")) != NULL; p++)
            differ++;
        for (const char *p = js; (p = strstr(p, "\"converged\":true")) != NULL; p++)
            agree++;
        free(js);
    }
    cr_assert_eq(differ + agree, CONV_KEYS, "replicas answered for %d keys, not %d",
                 differ + agree, CONV_KEYS);
    return differ;
}

static void put_keys(cl_cluster_t *c, size_t via, const char *value, bool strict)
{
    cairn_t *k = cl_connect(c, via);
    for (int i = 0; i < CONV_KEYS; i++) {
        char key[16];
        snprintf(key, sizeof key, "c%d", i);
        cairn_put_opts_t o = {.w = 2, .sloppy_quorum = strict ? CAIRN_FALSE : CAIRN_UNSET};
        int rc = cairn_put(k, cl_buf("conv"), cl_buf(key), cl_buf(value), &o, NULL);
        cr_assert_eq(rc, CAIRN_OK, "put %s: %s: %s", key, cairn_strerror(rc), cairn_errmsg(k));
    }
    cairn_close(k);
}

Test(cluster_convergence, replicas_shows_every_copy, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clreplicas");
    cl_start_all(&c);
    cl_form(&c);
    cairn_t *k = cl_connect(&c, 0);
    cairn_put_opts_t all = {.w = 3};
    cr_assert_eq(cairn_put(k, cl_buf("conv"), cl_buf("c0"), cl_buf("one"), &all, NULL), CAIRN_OK);
    cairn_close(k);

    char *js = replicas_json(&c, 1, 0, 2); /* c0 written, c1 never */
    cr_assert(strstr(js, "\"key\":\"c0\",\"converged\":true"), "c0: %s", js);
    cr_assert(strstr(js, "\"key\":\"c1\",\"converged\":true"), "c1 (nowhere): %s", js);
    const char *c0 = strstr(js, "\"key\":\"c0\"");
    const char *c1 = strstr(js, "\"key\":\"c1\"");
    int values = 0, notfound = 0;
    for (const char *p = c0; (p = strstr(p, "\"status\":\"value\"")) && p < c1; p++)
        values++;
    for (const char *p = c1; (p = strstr(p, "\"status\":\"notfound\"")) != NULL; p++)
        notfound++;
    cr_assert_eq(values, 3, "c0 has %d value replicas: %s", values, js);
    cr_assert_eq(notfound, 3, "c1 has %d notfound replicas: %s", notfound, js);
    free(js);

    /* the human form */
    char *out = cl_admin_ok(&c, 0, (char *const[]){"replicas", "conv", "c0", NULL});
    cr_assert(strstr(out, "c0: replicas agree"), "%s", out);
    cr_assert(strstr(out, "1 of 1 key(s)"), "%s", out);
    free(out);

    /* bad usage: no key, an empty bucket */
    cr_assert_eq(cl_admin(&c, 0, NULL, (char *const[]){"replicas", "conv", NULL}), 2);
    cr_assert_eq(cl_admin(&c, 0, NULL, (char *const[]){"replicas", "", "c0", NULL}), 2);

    /* a node down: its replicas are errors, and the key does not count as converged */
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        js = replicas_json(&c, 0, 0, 20);
        bool shows = strstr(js, "\"status\":\"error\"") && strstr(js, "\"converged\":false");
        free(js);
        if (shows)
            break;
        cr_assert(ct_now_ms() < end, "no replica reported down with node 3 killed");
        ct_sleep_ms(200);
    }
    cl_cleanup(&c);
}

Test(cluster_convergence, anti_entropy_repairs_keys_nobody_reads, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "claae");
    char *const off[] = {"--set", "anti_entropy=off", NULL};
    for (size_t i = 0; i < 3; i++)
        cl_start(&c, i, off);
    cl_form(&c);
    put_keys(&c, 0, "before", false);
    cr_assert_eq(count_differing(&c, 0), 0, "replicas differ before any fault");

    /* node 3 misses the second version of every key: strict quorum, so no fallback holds
     * it and hinted handoff cannot bring it */
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) { /* until node 1 stops sending to node 3 */
        char *js = replicas_json(&c, 0, 0, 1);
        bool down = strstr(js, "its node is down") != NULL || strstr(js, "\"error\"") != NULL;
        free(js);
        if (down)
            break;
        cr_assert(ct_now_ms() < end, "node 1 still reaches node 3");
        ct_sleep_ms(100);
    }
    put_keys(&c, 0, "after", true);
    cl_start(&c, 2, off);
    cl_wait_ringready(&c, 0);
    int stale = count_differing(&c, 0);
    cr_assert_gt(stale, CONV_KEYS / 2, "only %d of %d keys differ after node 3 missed them",
                 stale, CONV_KEYS);
    ct_sleep_ms(3000); /* no reads, no anti-entropy: nothing repairs them */
    cr_assert_eq(count_differing(&c, 0), stale, "keys converged with anti-entropy off");

    /* the same data, anti-entropy on: converges without a client read */
    char *const on[] = {"--set", "anti_entropy.interval=50ms", NULL};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(ct_node_stop(&c.nodes[i].n, SIGTERM), 0, "node %zu did not stop", i + 1);
    }
    for (size_t i = 0; i < 3; i++)
        cl_start(&c, i, on);
    cl_wait_ringready(&c, 0);
    end = ct_now_ms() + 120000;
    int left;
    while ((left = count_differing(&c, 1)) > 0) {
        cr_assert(ct_now_ms() < end, "%d keys still differ after 120 s of anti-entropy", left);
        ct_sleep_ms(500);
    }
    char *st = cl_admin_ok(&c, 0, (char *const[]){"--json", "status", NULL});
    cr_assert(strstr(st, "\"ae_keys\":") && !strstr(st, "\"ae_keys\":0,"),
              "node 1 reports no anti-entropy work: %s", st);
    free(st);
    cl_cleanup(&c);
}
