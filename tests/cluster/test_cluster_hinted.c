/*
 * test_cluster_hinted.c — sloppy quorums and hinted handoff between real cairnd processes
 * (node/coord.h ring_apl fallbacks, node/handoff.h foreign vnodes):
 *   - with one node of three killed, writes at N=3 W=2 land on fallback vnodes of the other
 *     two (one of which restarts meanwhile and finds its fallback data on disk again); when
 *     the node comes back, the fallbacks hand everything to it, and a read from
 *     the primaries alone (PR=3) finds every key; the fallbacks end empty and retired (each
 *     node runs exactly the vnodes of the partitions it owns);
 *   - with sloppy_quorum=false the same write cannot use fallbacks and PW=3 is refused;
 *   - the anti-entropy sweep, with a node down, reads and repairs between the primaries
 *     that are up and starts no fallback (it would copy every key of the down node's ranges
 *     into fallbacks, only to hand them back when the node returns).
 */
#include "tests/cluster/cluster_test.h"

#include <dirent.h>

#define HINTED_KEYS 10000

/* `"<field>":<number>` after the first occurrence of anchor in js, or -1. */
static long json_number_after(const char *js, const char *anchor, const char *field)
{
    const char *at = js ? strstr(js, anchor) : NULL;
    if (!at)
        return -1;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *f = strstr(at, pat);
    return f ? strtol(f + strlen(pat), NULL, 10) : -1;
}

/* Polls node i's `status` until it is not connected to node `gone` (bounded). */
static void wait_disconnected(cl_cluster_t *c, size_t i, size_t gone)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", c->nodes[gone].name);
    for (;;) {
        char *js = cl_admin_ok(c, i, (char *const[]){"--json", "status", NULL});
        const char *conn = strstr(js, "\"connected_nodes\"");
        bool still = conn && strstr(conn, want);
        free(js);
        if (!still)
            return;
        cr_assert(ct_now_ms() < end, "node %zu still holds node %zu up", i + 1, gone + 1);
        ct_sleep_ms(100);
    }
}

/* `"<field>":<number>` of node i's `status`. */
static long status_number(cl_cluster_t *c, size_t i, const char *field)
{
    char *st = cl_admin_ok(c, i, (char *const[]){"--json", "status", NULL});
    long n = json_number_after(st, "{", field);
    free(st);
    return n;
}

/* Node i's vnodes held for other nodes (fallbacks, old owners), from `status`. */
static long foreign_vnodes(cl_cluster_t *c, size_t i)
{
    return status_number(c, i, "vnodes_foreign");
}

/* Polls until node i holds no vnode for another node and runs all of its own (bounded). */
static void wait_no_foreign_vnodes(cl_cluster_t *c, size_t i)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    long n = -1;
    for (;;) {
        n = foreign_vnodes(c, i);
        if (n == 0)
            break;
        cr_assert(ct_now_ms() < end, "node %zu still holds %ld fallback vnodes", i + 1, n);
        ct_sleep_ms(200);
    }
    char *st = cl_admin_ok(c, i, (char *const[]){"--json", "status", NULL});
    long running = json_number_after(st, "{", "vnodes_running");
    long total = json_number_after(st, "{", "vnodes_total");
    free(st);
    cr_assert(total > 0 && running == total, "node %zu runs %ld of its %ld vnodes", i + 1,
              running, total);
}

/* How many partition directories node i keeps (<data>/leveldb/<p>). */
static int partition_dirs(cl_cluster_t *c, size_t i)
{
    char path[512];
    snprintf(path, sizeof path, "%s/leveldb", c->nodes[i].n.data);
    DIR *d = opendir(path);
    cr_assert(d, "%s: %s", path, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void value_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "hinted value %d", i);
}

Test(cluster_hinted, fallbacks_hand_off_to_the_returning_node, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clhinted");
    cl_start_all(&c);
    cl_form(&c);
    cr_assert_eq(foreign_vnodes(&c, 0), 0, "before the fault node 1 holds nothing for others");
    int own_dirs[2] = {partition_dirs(&c, 0), partition_dirs(&c, 1)};

    ct_node_stop(&c.nodes[2].n, SIGKILL);
    wait_disconnected(&c, 0, 2);
    wait_disconnected(&c, 1, 2);

    /* N=3 W=2, half through each survivor: every key whose preference list names node 3
     * puts one replica on a fallback. */
    cairn_t *k[2] = {cl_connect(&c, 0), cl_connect(&c, 1)};
    for (int i = 0; i < HINTED_KEYS; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "k%d", i);
        value_of(i, value, sizeof value);
        cairn_put_opts_t o = {.w = 2};
        int rc = cairn_put(k[i & 1], cl_buf("hinted"), cl_buf(key), cl_buf(value), &o, NULL);
        cr_assert_eq(rc, CAIRN_OK, "put %s with node 3 down: %s: %s", key, cairn_strerror(rc),
                     cairn_errmsg(k[i & 1]));
    }
    /* The fallbacks exist, with their own data directories. */
    for (size_t i = 0; i < 2; i++) {
        cr_assert_gt(foreign_vnodes(&c, i), 0, "node %zu runs no fallback vnode", i + 1);
        cr_assert_gt(partition_dirs(&c, i), own_dirs[i], "node %zu: no fallback data", i + 1);
    }
    /* Primaries only, while node 3 is away: PR=3 cannot be met. */
    cairn_get_opts_t pr3 = {.r = 3, .pr = 3, .notfound_ok = CAIRN_FALSE};
    cairn_object_t *obj = NULL;
    cr_assert_neq(cairn_get(k[0], cl_buf("hinted"), cl_buf("k0"), &pr3, &obj), CAIRN_OK,
                  "PR=3 with a primary down must fail");
    cairn_close(k[0]);
    cairn_close(k[1]);

    /* Node 1 restarts while it holds fallback data: it finds the data on disk again. */
    long held = foreign_vnodes(&c, 0);
    cr_assert_eq(ct_node_stop(&c.nodes[0].n, SIGTERM), 0, "node 1 did not stop cleanly");
    cl_start(&c, 0, NULL);
    int64_t end = ct_now_ms() + CL_SETTLE_MS; /* they start just after the owned ones */
    while (foreign_vnodes(&c, 0) != held) {
        cr_assert(ct_now_ms() < end, "node 1 forgot its fallback data on restart");
        ct_sleep_ms(100);
    }

    cl_start(&c, 2, NULL);
    for (size_t i = 0; i < 2; i++) {
        wait_no_foreign_vnodes(&c, i);
        cr_assert_eq(partition_dirs(&c, i), own_dirs[i],
                     "node %zu keeps fallback data after the handoff", i + 1);
    }

    /* Every key, from its three primaries alone. */
    cairn_t *r = cl_connect(&c, 2);
    for (int i = 0; i < HINTED_KEYS; i++) {
        char key[32], value[64];
        snprintf(key, sizeof key, "k%d", i);
        value_of(i, value, sizeof value);
        obj = NULL;
        int rc = cairn_get(r, cl_buf("hinted"), cl_buf(key), &pr3, &obj);
        cr_assert_eq(rc, CAIRN_OK, "get %s at PR=3 after the handoff: %s: %s", key,
                     cairn_strerror(rc), cairn_errmsg(r));
        cr_assert_eq(obj->n_siblings, 1, "get %s: %zu siblings", key, obj->n_siblings);
        cr_assert(obj->siblings[0].value.len == strlen(value) &&
                      memcmp(obj->siblings[0].value.data, value, strlen(value)) == 0,
                  "get %s: wrong value", key);
        cairn_object_free(obj);
    }
    cairn_close(r);
    cl_cleanup(&c);
}

Test(cluster_hinted, strict_quorum_uses_no_fallback, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clstrict");
    cl_start_all(&c);
    cl_form(&c);
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    wait_disconnected(&c, 0, 2);
    cairn_t *k = cl_connect(&c, 0);
    int refused = 0;
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "s%d", i);
        /* W=3 without fallbacks needs node 3: refused whenever node 3 is a primary */
        cairn_put_opts_t strict = {.w = 3, .sloppy_quorum = CAIRN_FALSE};
        if (cairn_put(k, cl_buf("strict"), cl_buf(key), cl_buf("v"), &strict, NULL) == CAIRN_OK)
            continue; /* 16 partitions on 3 nodes: a few preference lists skip node 3 */
        refused++;
        /* the same with fallbacks allowed succeeds */
        cairn_put_opts_t sloppy = {.w = 3};
        int rc = cairn_put(k, cl_buf("strict"), cl_buf(key), cl_buf("v"), &sloppy, NULL);
        cr_assert_eq(rc, CAIRN_OK, "sloppy W=3 put %s: %s: %s", key, cairn_strerror(rc),
                     cairn_errmsg(k));
        /* PW counts primaries only, fallbacks or not */
        cairn_put_opts_t pw3 = {.w = 2, .pw = 3};
        cr_assert_neq(cairn_put(k, cl_buf("strict"), cl_buf(key), cl_buf("v"), &pw3, NULL),
                      CAIRN_OK, "PW=3 with a primary down must fail");
    }
    cr_assert_gt(refused, 25, "only %d strict W=3 puts of 50 were refused with node 3 down",
                 refused);
    cairn_close(k);
    cl_cleanup(&c);
}

#define SWEEP_KEYS 600

Test(cluster_hinted, sweep_starts_no_fallback, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "clsweep");
    char *fast_sweep[] = {"--set", "anti_entropy.interval=20ms", "--set",
                          "anti_entropy.max_rate=100000", NULL};
    for (size_t i = 0; i < 3; i++)
        cl_start(&c, i, fast_sweep);
    cl_form(&c);
    cairn_t *k = cl_connect(&c, 0);
    for (int i = 0; i < SWEEP_KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "s%d", i);
        int rc = cairn_put(k, cl_buf("sweep"), cl_buf(key), cl_buf("v"), NULL, NULL);
        cr_assert_eq(rc, CAIRN_OK, "put %s: %s", key, cairn_errmsg(k));
    }
    cairn_close(k);

    ct_node_stop(&c.nodes[2].n, SIGKILL);
    wait_disconnected(&c, 0, 2);
    wait_disconnected(&c, 1, 2);
    /* Each survivor sweeps every key of its partitions at least once more (each key's first
     * replica is one of 16 partitions; a survivor owns about a third of them). */
    long from[2] = {status_number(&c, 0, "ae_keys"), status_number(&c, 1, "ae_keys")};
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (size_t i = 0; i < 2; i++) {
        long now;
        while ((now = status_number(&c, i, "ae_keys")) < from[i] + SWEEP_KEYS) {
            cr_assert(ct_now_ms() < end, "node %zu's sweep checked %ld keys, not %d", i + 1,
                      now - from[i], SWEEP_KEYS);
            ct_sleep_ms(100);
        }
    }
    for (size_t i = 0; i < 2; i++)
        cr_assert_eq(foreign_vnodes(&c, i), 0,
                     "node %zu started fallback vnodes for its sweep with node 3 down", i + 1);
    cl_cleanup(&c);
}
