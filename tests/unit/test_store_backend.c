/*
 * test_store_backend.c — the backend contract, run against LevelDB in both layouts and the
 * memory engine so they cannot drift apart: binary keys, not-found, atomic batches, fold
 * order, bucket-range and resumed folds, is_empty, drop and status; and against bitcask. In
 * the node layout and bitcask the partition under test (42) has neighbours (41, 43) in the
 * same database or log, each holding an
 * object in the same bucket; every test ends by checking they were neither seen nor touched.
 */
#include "storage/backend.h"
#include "store_test.h"

#include <dirent.h>
#include <sys/stat.h>

typedef enum { LDB_NODE, LDB_PARTITION, MEMORY, BITCASK } variant_t;

typedef struct {
    char *dir;
    store_engine_t *eng;
    store_backend_t *b;
    store_backend_t *nb[2]; /* node layout: partitions 41 and 43 */
    variant_t v;
} fx_t;

static const store_key_t neighbour_key = {STORE_SLICE("default"), STORE_SLICE("b"),
                                          STORE_SLICE("key00000")};

static fx_t open_fx(variant_t v)
{
    fx_t f = {.v = v};
    f.dir = test_tmpdir();
    store_config_t cfg = store_config_default(f.dir);
    cfg.kind = v == MEMORY    ? STORE_ENGINE_MEMORY
               : v == BITCASK ? STORE_ENGINE_BITCASK
                              : STORE_ENGINE_LEVELDB;
    cfg.layout = v == LDB_PARTITION ? STORE_LAYOUT_PARTITION : STORE_LAYOUT_NODE;
    cr_assert_eq(store_engine_new(&cfg, &f.eng), 0);
    char err[256];
    cr_assert_eq(store_open(f.eng, 42, &f.b, err, sizeof err), 0, "open: %s", err);
    for (int i = 0; (v == LDB_NODE || v == BITCASK) && i < 2; i++) {
        cr_assert_eq(store_open(f.eng, i ? 43 : 41, &f.nb[i], err, sizeof err), 0, "%s", err);
        cr_assert_eq(store_put(f.nb[i], &neighbour_key, "n", 1), 0);
    }
    return f;
}

static void close_fx(fx_t *f)
{
    for (int i = 0; i < 2; i++) {
        if (!f->nb[i])
            continue;
        store_val_t v;
        cr_assert_eq(store_get(f->nb[i], &neighbour_key, &v), 0, "neighbour %d lost its object", i);
        cr_assert(v.n == 1 && v.p[0] == 'n');
        store_val_release(&v);
        cr_assert_eq(store_is_empty(f->nb[i]), 0);
        store_close(f->nb[i]);
    }
    store_close(f->b);
    store_engine_free(f->eng);
    test_rmdir(f->dir);
}

static void get_eq(store_backend_t *b, const store_key_t *k, const char *want, size_t n)
{
    store_val_t v;
    int rc = store_get(b, k, &v);
    cr_assert_eq(rc, 0, "get: %s (%s)", store_strerror(rc), store_errmsg(b));
    cr_assert_eq(v.n, n);
    cr_assert_eq(memcmp(v.p, want, n), 0);
    store_val_release(&v);
}

#define BOTH(name)                                                                   \
    static void name(variant_t kind);                                                 \
    Test(store_backend_leveldb, name) { name(LDB_NODE); }                             \
    Test(store_backend_leveldb_partition_layout, name) { name(LDB_PARTITION); }       \
    Test(store_backend_memory, name) { name(MEMORY); }                                \
    Test(store_backend_bitcask, name) { name(BITCASK); }                              \
    static void name(variant_t kind)

BOTH(binary_keys_round_trip)
{
    fx_t f = open_fx(kind);
    store_key_t keys[] = {
        TKEY("default", "b", "k"),
        TKEY("t\0x", "b/\0/c", "\0"),
        TKEY("default", "b", "k\0"),
        TKEY("\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x90\x88/\xff\xfe"),
    };
    for (size_t i = 0; i < 4; i++) {
        char v[8];
        snprintf(v, sizeof v, "val%zu", i);
        cr_assert_eq(store_put(f.b, &keys[i], v, strlen(v)), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        char v[8];
        snprintf(v, sizeof v, "val%zu", i);
        get_eq(f.b, &keys[i], v, strlen(v));
    }
    close_fx(&f);
}

BOTH(missing_keys_and_deletes)
{
    fx_t f = open_fx(kind);
    store_key_t k = TKEY("default", "b", "nope");
    store_val_t v;
    cr_assert_eq(store_get(f.b, &k, &v), STORE_ENOTFOUND);
    cr_assert_eq(store_del(f.b, &k), 0, "deleting a missing key succeeds");
    cr_assert_eq(store_put(f.b, &k, "x", 1), 0);
    cr_assert_eq(store_del(f.b, &k), 0);
    cr_assert_eq(store_get(f.b, &k, &v), STORE_ENOTFOUND);
    store_key_t bad = TKEY("default", "", "k");
    cr_assert_eq(store_put(f.b, &bad, "x", 1), STORE_EKEY);
    cr_assert_neq(store_errmsg(f.b)[0], '\0', "the error has a message");
    close_fx(&f);
}

BOTH(batch_is_all_or_nothing)
{
    fx_t f = open_fx(kind);
    store_op_t ops[3] = {
        {STORE_OP_PUT, TKEY("default", "b", "1"), "one", 3},
        {STORE_OP_PUT, TKEY("default", "b", "2"), "two", 3},
        {STORE_OP_PUT, TKEY("default", "", "3"), "bad", 3},
    };
    cr_assert_eq(store_write(f.b, ops, 3), STORE_EKEY);
    store_val_t v;
    cr_assert_eq(store_get(f.b, &ops[0].key, &v), STORE_ENOTFOUND, "nothing was applied");
    ops[2] = (store_op_t){STORE_OP_DEL, TKEY("default", "b", "1"), NULL, 0};
    cr_assert_eq(store_write(f.b, ops, 3), 0);
    cr_assert_eq(store_get(f.b, &ops[0].key, &v), STORE_ENOTFOUND, "later ops win");
    get_eq(f.b, &ops[1].key, "two", 3);
    close_fx(&f);
}

typedef struct {
    char seen[512][24];
    int n;
    int stop_at;
    bool values_null;
} coll_t;

static int collect(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    coll_t *c = arg;
    cr_assert_lt(c->n, 512);
    snprintf(c->seen[c->n], sizeof c->seen[0], "%.*s %.*s %.*s", (int)k->type.n, k->type.p,
             (int)k->bucket.n, k->bucket.p, (int)k->key.n, k->key.p);
    if (!v)
        c->values_null = true;
    c->n++;
    return c->n == c->stop_at ? STORE_FOLD_STOP : 0;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

BOTH(fold_order_bucket_range_and_resume)
{
    fx_t f = open_fx(kind);
    const char *types[] = {"default", "maps"}, *buckets[] = {"a", "ab", "b"};
    char want[512][24];
    int nw = 0;
    for (int t = 0; t < 2; t++)
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < 20; k++) {
                char key[8];
                snprintf(key, sizeof key, "k%02d", (k * 7) % 20); /* out of order */
                store_key_t sk = {STORE_SLICE_STR(types[t]), STORE_SLICE_STR(buckets[b]), STORE_SLICE_STR(key)};
                cr_assert_eq(store_put(f.b, &sk, key, strlen(key)), 0);
                snprintf(want[nw++], 24, "%s %s %s", types[t], buckets[b], key);
            }
    qsort(want, (size_t)nw, sizeof want[0], by_str); /* no NULs here: space sorts below letters, so strcmp is tuple order */
    coll_t *c = calloc(1, sizeof *c);
    store_fold_t all = {.values = true};
    cr_assert_eq(store_fold(f.b, &all, collect, c), 0);
    cr_assert_eq(c->n, nw);
    for (int i = 0; i < nw; i++)
        cr_assert_str_eq(c->seen[i], want[i], "fold position %d", i);
    cr_assert_not(c->values_null);

    /* one bucket: "a" must not include "ab" */
    memset(c, 0, sizeof *c);
    store_slice_t ty = STORE_SLICE("default"), bu = STORE_SLICE("a");
    store_fold_t one = {.type = &ty, .bucket = &bu};
    cr_assert_eq(store_fold(f.b, &one, collect, c), 0);
    cr_assert_eq(c->n, 20);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(strncmp(c->seen[i], "default a ", 10), 0, "%s", c->seen[i]);
    cr_assert(c->values_null, "a keys-only fold passes no values");

    /* resume after the 7th key of the bucket, then stop after 5 */
    store_key_t after = TKEY("default", "a", "k06");
    memset(c, 0, sizeof *c);
    c->stop_at = 5;
    one.after = &after;
    cr_assert_eq(store_fold(f.b, &one, collect, c), 0);
    cr_assert_eq(c->n, 5);
    cr_assert_str_eq(c->seen[0], "default a k07");
    cr_assert_str_eq(c->seen[4], "default a k11");
    free(c);
    close_fx(&f);
}

static int fail_cb(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    return STORE_EIO;
}

BOTH(fold_callback_error_aborts_the_fold)
{
    fx_t f = open_fx(kind);
    store_key_t k = TKEY("default", "b", "k");
    store_put(f.b, &k, "v", 1);
    cr_assert_eq(store_fold(f.b, NULL, fail_cb, NULL), STORE_EIO);
    close_fx(&f);
}

static uint64_t dir_bytes(const char *path)
{
    uint64_t total = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

BOTH(drop_leaves_nothing_behind_and_status_counts)
{
    fx_t f = open_fx(kind);
    cr_assert_eq(store_is_empty(f.b), 1);
    /* Incompressible values, a fresh one per key: with 1 MiB memtables most of the 3 MB is
     * in Snappy-compressed tables by the time we look, where a run of 'x', or one value
     * repeated, shrinks to a fraction. */
    static char val[1000];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 3000; i++) {
        for (size_t j = 0; j < sizeof val; j++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            val[j] = (char)(seed >> 56);
        }
        char key[16];
        snprintf(key, sizeof key, "key%05d", i);
        store_key_t k = {STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE_STR(key)};
        cr_assert_eq(store_put(f.b, &k, val, sizeof val), 0);
    }
    cr_assert_eq(store_is_empty(f.b), 0);
    store_status_t st;
    cr_assert_eq(store_status(f.b, &st), 0);
    cr_assert_geq(st.keys, 2000, "3000 keys estimated as %llu", (unsigned long long)st.keys);
    cr_assert_leq(st.keys, 6000);
    char path[512];
    snprintf(path, sizeof path,
             kind == LDB_NODE  ? "%s/leveldb-node"
             : kind == BITCASK ? "%s/bitcask"
                               : "%s/leveldb/42", f.dir);
    if (kind != MEMORY)
        cr_assert_gt(dir_bytes(path), 1000000, "%llu bytes in %s", (unsigned long long)dir_bytes(path), path);
    cr_assert_eq(store_drop(f.b), 0);
    cr_assert_eq(store_is_empty(f.b), 1);
    coll_t *c = calloc(1, sizeof *c);
    cr_assert_eq(store_fold(f.b, NULL, collect, c), 0);
    cr_assert_eq(c->n, 0, "fold after drop sees nothing");
    free(c);
    cr_assert_eq(store_status(f.b, &st), 0);
    cr_assert_eq(st.keys, 0);
    if (kind == LDB_PARTITION) /* the node layout's range delete frees space as it compacts */
        cr_assert_lt(dir_bytes(path), 64 * 1024, "drop removed the data files (%llu bytes left)",
                     (unsigned long long)dir_bytes(path));
    store_key_t k = TKEY("default", "b", "after");
    cr_assert_eq(store_put(f.b, &k, "v", 1), 0, "the backend is usable after drop");
    close_fx(&f);
}
