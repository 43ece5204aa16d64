/*
 * storage_bench — Cairn's storage layer against raw LevelDB, same machine, same run, same
 * options: random-order fill then random reads of N keys, once with 100-byte values and once
 * with 4 KiB values. Cairn's path is the real one: build the object with a coordinated write,
 * encode it, put it through the backend vtable; get, decode. Then the merge microbenchmarks.
 * Output: one `name value unit` line per figure (ratios are cairn / raw).
 *   storage_bench [--keys N] [--big-keys N] [--dir DIR]
 */
#include "storage/backend.h"
#include "storage/object.h"

#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "storage_bench: %s: %s\n", what, msg);
    exit(1);
}

/* A random permutation of 0..n-1 (the fill and read orders). */
static uint32_t *perm(uint32_t n)
{
    uint32_t *p = malloc(n * sizeof *p);
    for (uint32_t i = 0; i < n; i++)
        p[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rnd() % (i + 1));
        uint32_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

static int key_of(uint32_t i, char *buf)
{
    return sprintf(buf, "key%010u", i);
}

/* The same options as store_config_default(): 64 MiB shared cache, 4 MiB write buffer,
 * Snappy, bloom 10, 200 open files, no sync. */
typedef struct {
    leveldb_options_t *o;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *bloom;
} raw_opts_t;

static raw_opts_t raw_opts(void)
{
    raw_opts_t r;
    r.o = leveldb_options_create();
    r.cache = leveldb_cache_create_lru(64u << 20);
    r.bloom = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_create_if_missing(r.o, 1);
    leveldb_options_set_cache(r.o, r.cache);
    leveldb_options_set_write_buffer_size(r.o, 4u << 20);
    leveldb_options_set_max_open_files(r.o, 200);
    leveldb_options_set_compression(r.o, leveldb_snappy_compression);
    leveldb_options_set_filter_policy(r.o, r.bloom);
    return r;
}

static leveldb_t *raw_open(raw_opts_t *r, const char *path)
{
    char *err = NULL;
    leveldb_t *db = leveldb_open(r->o, path, &err);
    if (err)
        die("leveldb_open", err);
    return db;
}

typedef struct {
    double put_ops, get_ops;
} result_t;

static result_t run_raw(const char *dir, uint32_t n, const uint8_t *vals, size_t vlen,
                        const uint32_t *fill, const uint32_t *reads)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raw", dir);
    raw_opts_t ro = raw_opts();
    leveldb_t *db = raw_open(&ro, path);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_readoptions_t *rdo = leveldb_readoptions_create();
    char kb[32], *err = NULL;
    result_t r;
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        int kn = key_of(fill[i], kb);
        leveldb_put(db, wo, kb, (size_t)kn, (const char *)vals + (fill[i] % 1024) * 8, vlen, &err);
        if (err)
            die("leveldb_put", err);
    }
    leveldb_close(db); /* waits for compactions: they are part of the fill */
    r.put_ops = n / (now_s() - t0);
    db = raw_open(&ro, path);
    t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        int kn = key_of(reads[i], kb);
        size_t len;
        char *v = leveldb_get(db, rdo, kb, (size_t)kn, &len, &err);
        if (err || !v || len != vlen)
            die("leveldb_get", err ? err : "missing");
        leveldb_free(v);
    }
    r.get_ops = n / (now_s() - t0);
    leveldb_close(db);
    leveldb_writeoptions_destroy(wo);
    leveldb_readoptions_destroy(rdo);
    leveldb_options_destroy(ro.o);
    leveldb_cache_destroy(ro.cache);
    leveldb_filterpolicy_destroy(ro.bloom);
    return r;
}

static store_backend_t *cairn_open(store_engine_t *e)
{
    store_backend_t *b;
    char err[256];
    if (store_open(e, 0, &b, err, sizeof err) != 0)
        die("store_open", err);
    return b;
}

static result_t run_cairn(const char *dir, uint32_t n, const uint8_t *vals, size_t vlen,
                          const uint32_t *fill, const uint32_t *reads)
{
    char path[600];
    snprintf(path, sizeof path, "%s/cairn", dir);
    store_config_t cfg = store_config_default(path);
    store_engine_t *e;
    if (store_engine_new(&cfg, &e) != 0)
        die("store_engine_new", "bad config");
    store_backend_t *b = cairn_open(e);
    store_props_t props = store_props_default(false);
    store_writer_t w = {store_actor_make(0x1234567890ull, 0, 1), 1700000000, 0};
    char kb[32];
    result_t r;
    double t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        int kn = key_of(fill[i], kb);
        store_key_t k = {STORE_SLICE("default"), STORE_SLICE("bench"), {(uint8_t *)kb, (size_t)kn}};
        store_content_t c = {.value = {vals + (fill[i] % 1024) * 8, vlen},
                             .content_type = STORE_SLICE("application/octet-stream"),
                             .last_mod = w.now};
        store_obj_t *o;
        uint8_t *enc = NULL;
        size_t elen = 0;
        if (store_obj_coord_put(NULL, NULL, &c, &w, &props, &o, NULL) != 0 ||
            store_obj_encode(o, &enc, &elen) != 0)
            die("encode", "failed");
        if (store_put(b, &k, enc, elen) != 0)
            die("store_put", store_errmsg(b));
        free(enc);
        store_obj_free(o);
    }
    store_close(b);
    r.put_ops = n / (now_s() - t0);
    b = cairn_open(e);
    t0 = now_s();
    for (uint32_t i = 0; i < n; i++) {
        int kn = key_of(reads[i], kb);
        store_key_t k = {STORE_SLICE("default"), STORE_SLICE("bench"), {(uint8_t *)kb, (size_t)kn}};
        store_val_t v;
        store_obj_t *o;
        if (store_get(b, &k, &v) != 0)
            die("store_get", store_errmsg(b));
        if (store_obj_decode(v.p, v.n, &o) != 0 || o->sibs[0]->c.value.n != vlen)
            die("decode", "bad object");
        store_obj_free(o);
        store_val_release(&v);
    }
    r.get_ops = n / (now_s() - t0);
    store_close(b);
    store_engine_free(e);
    return r;
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "storage_bench: could not remove %s\n", dir);
}

static void workload(const char *base, const char *label, uint32_t n, size_t vlen)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", base, label);
    rm_rf(dir);
    char cmd[500];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0)
        die("mkdir", dir);
    size_t vbytes = 1024 * 8 + vlen;
    uint8_t *vals = malloc(vbytes); /* incompressible: neither side gains from Snappy */
    for (size_t i = 0; i < vbytes; i++)
        vals[i] = (uint8_t)rnd();
    uint32_t *fill = perm(n), *reads = perm(n);
    result_t raw = run_raw(dir, n, vals, vlen, fill, reads);
    result_t cairn = run_cairn(dir, n, vals, vlen, fill, reads);
    printf("storage.%s.keys %u keys\n", label, n);
    printf("storage.%s.put.raw %.0f ops/s\n", label, raw.put_ops);
    printf("storage.%s.put.cairn %.0f ops/s\n", label, cairn.put_ops);
    printf("storage.%s.put.ratio %.3f cairn/raw\n", label, cairn.put_ops / raw.put_ops);
    printf("storage.%s.get.raw %.0f ops/s\n", label, raw.get_ops);
    printf("storage.%s.get.cairn %.0f ops/s\n", label, cairn.get_ops);
    printf("storage.%s.get.ratio %.3f cairn/raw\n", label, cairn.get_ops / raw.get_ops);
    fflush(stdout);
    free(vals);
    free(fill);
    free(reads);
    rm_rf(dir);
}

/* ns per coordinated write onto an object with 1 sibling and a 3-actor clock (context =
 * that clock, as after a read), and per replica merge of two such objects. */
static void merge_bench(void)
{
    store_props_t props = store_props_default(false);
    store_obj_t *o = store_obj_new();
    for (uint32_t a = 0; a < 3; a++) {
        store_actor_t act = store_actor_make(100 + a, a, 1);
        store_vclock_increment(&o->clock, &act, 1700000000);
    }
    uint8_t val[100] = {0};
    store_content_t c = {.value = {val, sizeof val}, .content_type = STORE_SLICE("text/plain"),
                         .last_mod = 1700000000};
    store_dot_t d = {o->clock.e[1].actor, 1};
    store_obj_add_sib(o, store_sib_new(&c, &d));
    store_writer_t w = {o->clock.e[0].actor, 1700000001, 0};
    enum { ITERS = 2000000 };
    double t0 = now_s();
    for (int i = 0; i < ITERS; i++) {
        store_obj_t *out;
        if (store_obj_coord_put(o, &o->clock, &c, &w, &props, &out, NULL) != 0 || out->n_sibs != 1)
            die("coord_put", "unexpected result");
        store_obj_free(out);
    }
    printf("storage.merge.coord_put %.0f ns/op\n", (now_s() - t0) * 1e9 / ITERS);
    store_obj_t *other;
    store_obj_coord_put(o, NULL, &c, &w, &props, &other, NULL); /* concurrent: 2 siblings */
    props.allow_mult = true;
    store_obj_free(other);
    store_obj_coord_put(o, NULL, &c, &w, &props, &other, NULL);
    t0 = now_s();
    for (int i = 0; i < ITERS; i++) {
        store_obj_t *out;
        store_obj_merge(o, other, &props, &out, NULL);
        store_obj_free(out);
    }
    printf("storage.merge.replica_merge %.0f ns/op\n", (now_s() - t0) * 1e9 / ITERS);
    uint8_t *enc;
    size_t elen;
    store_obj_encode(o, &enc, &elen);
    t0 = now_s();
    for (int i = 0; i < ITERS; i++) {
        store_obj_t *out;
        if (store_obj_decode(enc, elen, &out) != 0)
            die("decode", "failed");
        store_obj_free(out);
    }
    printf("storage.codec.decode_100B %.0f ns/op\n", (now_s() - t0) * 1e9 / ITERS);
    t0 = now_s();
    for (int i = 0; i < ITERS; i++) {
        uint8_t *e2;
        size_t l2;
        store_obj_encode(o, &e2, &l2);
        free(e2);
    }
    printf("storage.codec.encode_100B %.0f ns/op\n", (now_s() - t0) * 1e9 / ITERS);
    printf("storage.codec.object_bytes_100B %zu bytes\n", elen);
    free(enc);
    store_obj_free(other);
    store_obj_free(o);
}

int main(int argc, char **argv)
{
    uint32_t keys = 1000000, big = 200000;
    const char *dir = "/tmp/cairn-storage-bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--keys"))
            keys = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--big-keys"))
            big = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else
            die("usage", "storage_bench [--keys N] [--big-keys N] [--dir DIR]");
    }
    merge_bench();
    workload(dir, "v100B", keys, 100);
    workload(dir, "v4KiB", big, 4096);
    rm_rf(dir);
    return 0;
}
