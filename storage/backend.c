/*
 * backend.c — the engine (per-node configuration and LevelDB's shared block cache), opening
 * a partition with the configured backend, and helpers both backends share (key buffers,
 * fold ranges, error text). Nothing here touches data; ldb.c and mem.c do.
 */
#include "storage/backend.h"

#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_engine_s {
    store_config_t cfg;
    char *data_dir;
    leveldb_cache_t *cache;
};

/* A memtable of 1 MiB per partition: an insert walks a skiplist of a few thousand entries
 * whose nodes are mostly in cache. With 4 MiB (LevelDB's own default) over 64 partitions the
 * walk's cache misses were a third of a replicated put's CPU (docs/benchmarks.md). */
#define WRITE_BUFFER_DEFAULT (1u << 20)

store_config_t store_config_default(const char *data_dir)
{
    store_config_t c = {
        .kind = STORE_ENGINE_LEVELDB,
        .data_dir = data_dir,
        .cache_bytes = 64u << 20,
        .write_buffer_bytes = WRITE_BUFFER_DEFAULT,
        .max_open_files = 200,
        .compression = true,
        .bloom_bits = 10,
        .sync = STORE_SYNC_NONE,
        .sync_interval_ms = 0,
    };
    return c;
}

int store_engine_new(const store_config_t *cfg, store_engine_t **out)
{
    if (!cfg || !out)
        return STORE_EINVAL;
    if (cfg->kind == STORE_ENGINE_LEVELDB && (!cfg->data_dir || !*cfg->data_dir))
        return STORE_EINVAL;
    if (cfg->sync == STORE_SYNC_INTERVAL && cfg->sync_interval_ms == 0)
        return STORE_EINVAL;
    store_engine_t *e = store_calloc(1, sizeof *e);
    e->cfg = *cfg;
    if (cfg->data_dir) {
        e->data_dir = strdup(cfg->data_dir);
        if (!e->data_dir)
            abort();
        e->cfg.data_dir = e->data_dir;
    }
    if (!e->cfg.cache_bytes)
        e->cfg.cache_bytes = 64u << 20;
    if (!e->cfg.write_buffer_bytes)
        e->cfg.write_buffer_bytes = WRITE_BUFFER_DEFAULT;
    if (!e->cfg.max_open_files)
        e->cfg.max_open_files = 200;
    if (cfg->kind == STORE_ENGINE_LEVELDB)
        e->cache = leveldb_cache_create_lru(e->cfg.cache_bytes);
    *out = e;
    return 0;
}

void store_engine_free(store_engine_t *e)
{
    if (!e)
        return;
    if (e->cache)
        leveldb_cache_destroy(e->cache);
    free(e->data_dir);
    store_free(e);
}

const store_config_t *store__engine_config(const store_engine_t *e)
{
    return &e->cfg;
}

void *store__engine_cache(const store_engine_t *e)
{
    return e->cache;
}

int store_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
               size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!e || !out)
        return STORE_EINVAL;
    switch (e->cfg.kind) {
    case STORE_ENGINE_LEVELDB:
        return store__ldb_open(e, partition, out, errbuf, errlen);
    case STORE_ENGINE_MEMORY:
        return store__mem_open(e, partition, out);
    }
    return STORE_EINVAL;
}

void store_val_release(store_val_t *v)
{
    if (v && v->p && v->release)
        v->release(v->p);
    if (v) {
        v->p = NULL;
        v->n = 0;
    }
}

int store__set_err(store_backend_t *b, int code, const char *msg)
{
    snprintf(b->err, sizeof b->err, "%s", msg ? msg : store_strerror(code));
    return code;
}

static uint8_t *kbuf_reserve(store__kbuf_t *kb, size_t n)
{
    kb->p = n <= sizeof kb->inl ? kb->inl : store_malloc(n);
    kb->n = 0;
    return kb->p;
}

void store__kbuf_free(store__kbuf_t *kb)
{
    if (kb->p && kb->p != kb->inl)
        store_free(kb->p);
    kb->p = NULL;
    kb->n = 0;
}

int store__kbuf_key(store_backend_t *b, store__kbuf_t *kb, const store_key_t *k)
{
    kb->p = NULL;
    kb->n = 0;
    if (!k || k->type.n == 0 || k->bucket.n == 0 || k->key.n == 0)
        return store__set_err(b, STORE_EKEY, "key has an empty type, bucket or key");
    size_t need = store_key_encoded_len(k);
    if (need > STORE_KEY_MAX)
        return store__set_err(b, STORE_EKEY, "encoded key longer than 65536 bytes");
    long n = store_key_encode(k, kbuf_reserve(kb, need), need);
    kb->n = (size_t)n;
    return 0;
}

int store__range(store_backend_t *b, const store_fold_t *f, store__range_t *r)
{
    memset(r, 0, sizeof *r);
    const store_slice_t *type = f ? f->type : NULL, *bucket = f ? f->bucket : NULL;
    if (!type || !bucket)
        bucket = NULL;
    size_t need = bucket ? 1 + 2 * (type->n + bucket->n) + 4 : 1;
    long n = store_key_bucket_prefix(type, bucket, kbuf_reserve(&r->lo, need), need);
    if (n < 0) {
        store__range_free(r);
        return store__set_err(b, STORE_EKEY, "fold bucket has an empty type or bucket");
    }
    r->lo.n = (size_t)n;
    memcpy(kbuf_reserve(&r->hi, r->lo.n), r->lo.p, r->lo.n);
    r->hi.n = r->lo.n;
    r->hi.p[r->hi.n - 1]++; /* prefix ends in 0x10 or 0x01: no carry */
    if (f && f->after) {
        int rc = store__kbuf_key(b, &r->after, f->after);
        if (rc < 0) {
            store__range_free(r);
            return rc;
        }
    }
    return 0;
}

void store__range_free(store__range_t *r)
{
    store__kbuf_free(&r->lo);
    store__kbuf_free(&r->hi);
    store__kbuf_free(&r->after);
}
