/*
 * test_cluster_list.c — listing keys and buckets in a cluster of real cairnd processes
 * (node/list.c): every partition is folded on the node that owns it, so a listing through
 * any node sees every key of the cluster, each once; with a node down, a listing answers an
 * error naming the partition and the node, never a partial list; once the node is back,
 * listings are whole again.
 */
#include "tests/cluster/cluster_test.h"

#define BUCKETS 3
#define KEYS_PER_BUCKET 100

static const char *const bucket_names[BUCKETS] = {"alpha", "beta", "gamma"};

/* Names a listing delivered, in arrival order (owned copies). */
typedef struct {
    char **v;
    size_t n;
} name_list_t;

static int collect_name(void *arg, cairn_buf_t name)
{
    name_list_t *l = arg;
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    cr_assert_not_null(l->v);
    l->v[l->n] = malloc(name.len + 1);
    cr_assert_not_null(l->v[l->n]);
    memcpy(l->v[l->n], name.data, name.len);
    l->v[l->n][name.len] = '\0';
    l->n++;
    return 0;
}

static void name_list_free(name_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void key_name(char *out, size_t cap, size_t bucket, int i)
{
    snprintf(out, cap, "%s-key-%03d", bucket_names[bucket], i);
}

/* Writes every key through node `via`, with W = 3: every replica holds it when the put
 * returns, so the partition that reports a key (its first) has it before any listing. */
static void write_all(cl_cluster_t *c, size_t via)
{
    cairn_t *k = cl_connect(c, via);
    cairn_put_opts_t o = {.w = 3};
    for (size_t b = 0; b < BUCKETS; b++)
        for (int i = 0; i < KEYS_PER_BUCKET; i++) {
            char key[64];
            key_name(key, sizeof key, b, i);
            int rc = cairn_put(k, cl_buf(bucket_names[b]), cl_buf(key), cl_buf("v"), &o, NULL);
            cr_assert_eq(rc, CAIRN_OK, "put %s/%s: %s: %s", bucket_names[b], key,
                         cairn_strerror(rc), cairn_errmsg(k));
        }
    cairn_close(k);
}

/* Lists the keys of every bucket and the buckets through node `via`: exactly what was
 * written, each name once. */
static void assert_listings_whole(cl_cluster_t *c, size_t via)
{
    cairn_t *k = cl_connect(c, via);
    for (size_t b = 0; b < BUCKETS; b++) {
        name_list_t got = {0};
        int rc = cairn_list_keys(k, NULL, cl_buf(bucket_names[b]), 0, collect_name, &got);
        cr_assert_eq(rc, CAIRN_OK, "list keys of %s via node %zu: %s: %s", bucket_names[b],
                     via + 1, cairn_strerror(rc), cairn_errmsg(k));
        cr_assert_eq(got.n, KEYS_PER_BUCKET, "list keys of %s via node %zu: %zu keys, want %d",
                     bucket_names[b], via + 1, got.n, KEYS_PER_BUCKET);
        qsort(got.v, got.n, sizeof *got.v, cmp_str);
        for (int i = 0; i < KEYS_PER_BUCKET; i++) {
            char key[64];
            key_name(key, sizeof key, b, i);
            cr_assert_str_eq(got.v[i], key, "list keys of %s via node %zu", bucket_names[b],
                             via + 1);
        }
        name_list_free(&got);
    }
    name_list_t got = {0};
    int rc = cairn_list_buckets(k, NULL, 0, collect_name, &got);
    cr_assert_eq(rc, CAIRN_OK, "list buckets via node %zu: %s: %s", via + 1, cairn_strerror(rc),
                 cairn_errmsg(k));
    cr_assert_eq(got.n, BUCKETS, "list buckets via node %zu: %zu buckets", via + 1, got.n);
    qsort(got.v, got.n, sizeof *got.v, cmp_str);
    for (size_t b = 0; b < BUCKETS; b++)
        cr_assert_str_eq(got.v[b], bucket_names[b]);
    name_list_free(&got);
    cairn_close(k);
}

/* A listing through node `via` with node `dead` down ends with the server's error naming
 * the partition and the dead node, whatever it may have streamed before. */
static void assert_listing_fails(cl_cluster_t *c, size_t via, size_t dead, bool keys)
{
    cairn_t *k = cl_connect(c, via);
    name_list_t got = {0};
    int rc = keys ? cairn_list_keys(k, NULL, cl_buf(bucket_names[0]), 0, collect_name, &got)
                  : cairn_list_buckets(k, NULL, 0, collect_name, &got);
    cr_assert_eq(rc, CAIRN_ESERVER, "list %s via node %zu with node %zu down: %s (%zu names)",
                 keys ? "keys" : "buckets", via + 1, dead + 1, cairn_strerror(rc), got.n);
    const char *msg = cairn_errmsg(k);
    cr_assert(strstr(msg, "cannot list partition") && strstr(msg, c->nodes[dead].name),
              "the error must name the partition and the node: %s", msg);
    name_list_free(&got);
    cairn_close(k);
}

static bool has(const char *text, const char *needle)
{
    return text && strstr(text, needle) != NULL;
}

/* Polls ring-status on node i until it says all nodes are reachable (all_up) or not. */
static void wait_reachability(cl_cluster_t *c, size_t i, bool all_up)
{
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        char *rs = NULL;
        cl_admin(c, i, &rs, (char *const[]){"ring-status", NULL});
        bool up = has(rs, "All nodes are up and reachable");
        free(rs);
        if (up == all_up)
            return;
        cr_assert(ct_now_ms() < end, "ring-status on node %zu never said %s", i + 1,
                  all_up ? "all up" : "a node is unreachable");
        ct_sleep_ms(200);
    }
}

/* Waits until ownership has moved (the claimant's member-status: nothing pending, no node
 * owning all 16 partitions) and every node holds that state (ringready). Until then the
 * founder still owns every partition and handoff is still moving data, so the exact key
 * sets below would depend on that timing. */
static void wait_settled(cl_cluster_t *c)
{
    cl_wait_members(c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"owned\":16", NULL});
    for (size_t i = 0; i < c->count; i++)
        cl_wait_ringready(c, i);
}

Test(cluster_list, listings_cover_every_node_and_fail_with_a_node_down, .timeout = 300)
{
    cl_cluster_t c;
    cl_init(&c, 3, "cllist");
    cl_start_all(&c);
    cl_form(&c);
    wait_settled(&c);
    write_all(&c, 0);
    for (size_t via = 0; via < 3; via++)
        assert_listings_whole(&c, via);

    /* Node 3 dies: at once, and once the others have seen it, listings through the other
     * two answer an error, not what the living nodes hold. */
    ct_node_stop(&c.nodes[2].n, SIGKILL);
    assert_listing_fails(&c, 0, 2, true);
    wait_reachability(&c, 1, false);
    assert_listing_fails(&c, 1, 2, false);
    assert_listing_fails(&c, 0, 2, true);

    /* Back up: whole again, through every node. */
    cl_start(&c, 2, NULL);
    wait_reachability(&c, 0, true);
    wait_reachability(&c, 1, true);
    for (size_t via = 0; via < 3; via++)
        assert_listings_whole(&c, via);
    cl_cleanup(&c);
}
