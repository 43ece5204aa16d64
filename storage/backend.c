/*
 * backend.c — the engine (per-node configuration, LevelDB's shared block cache, the node
 * layout's shared database handle, bitcask's log), opening a partition with the configured
 * backend, group writes, and helpers the backends share (key buffers with the backend's
 * prefix, fold ranges, error text). Nothing here touches data; ldb.c, cask.c and mem.c do.
 */
#include "storage/backend.h"

#include <errno.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct store_engine_s {
    store_config_t cfg;
    char *data_dir;
    leveldb_cache_t *cache;
    pthread_mutex_t lock;               /* opening the shared database */
    struct store__ldb_db_s *shared_db;  /* node layout, once a partition was opened */
    struct store__cask_s *cask;         /* bitcask, once a partition was opened */
};

/* Memtables. Partition layout: 1 MiB per partition, so an insert walks a skiplist of a few
 * thousand entries whose nodes are mostly in cache (with 4 MiB over 64 partitions the walk's
 * cache misses were a third of a replicated put's CPU, docs/benchmarks.md "Fifth sitting").
 * Node layout: one memtable for every partition, 8 MiB: with 1 MiB (flushed and compacted
 * that much more often) a put cost 44% more CPU, with 4 MiB 12% more, and 16 MiB was within
 * 5% either way (docs/benchmarks.md, "Seventh sitting"). */
#define WRITE_BUFFER_PARTITION (1u << 20)
#define WRITE_BUFFER_NODE (8u << 20)
/* Open table files: per partition in the partition layout; the node's one database needs
 * more (a table file holds about 2 MiB), and the node raises its descriptor limit. */
#define OPEN_FILES_PARTITION 200
#define OPEN_FILES_NODE 1000
/* bitcask: a file of 128 MiB, merged when half of the older files' bytes are dead (at most
 * about twice the live data on disk, and every byte rewritten about once per merge). */
#define CASK_FILE_BYTES (128u << 20)
#define CASK_MERGE_PERCENT 50u

store_config_t store_config_default(const char *data_dir)
{
    store_config_t c = {
        .kind = STORE_ENGINE_LEVELDB,
        .layout = STORE_LAYOUT_NODE,
        .data_dir = data_dir,
        .cache_bytes = 64u << 20,
        .write_buffer_bytes = 0,
        .max_open_files = 0,
        .compression = true,
        .bloom_bits = 10,
        .sync = STORE_SYNC_NONE,
        .sync_interval_ms = 0,
        .cask_file_bytes = CASK_FILE_BYTES,
        .cask_merge_percent = CASK_MERGE_PERCENT,
    };
    return c;
}

store_config_t store_config_resolved(const store_config_t *cfg)
{
    store_config_t c = *cfg;
    bool node = c.layout == STORE_LAYOUT_NODE;
    if (!c.cache_bytes)
        c.cache_bytes = 64u << 20;
    if (!c.write_buffer_bytes)
        c.write_buffer_bytes = node ? WRITE_BUFFER_NODE : WRITE_BUFFER_PARTITION;
    if (!c.max_open_files)
        c.max_open_files = node ? OPEN_FILES_NODE : OPEN_FILES_PARTITION;
    if (!c.cask_file_bytes)
        c.cask_file_bytes = CASK_FILE_BYTES;
    if (!c.cask_merge_percent)
        c.cask_merge_percent = CASK_MERGE_PERCENT;
    return c;
}

store_engine_kind_t store_engine_of(const char *data_dir, store_engine_kind_t fallback)
{
    if (store__cask_present(data_dir))
        return STORE_ENGINE_BITCASK;
    if (store__ldb_present(data_dir))
        return STORE_ENGINE_LEVELDB;
    return fallback;
}

int store_engine_new(const store_config_t *cfg, store_engine_t **out)
{
    if (!cfg || !out)
        return STORE_EINVAL;
    bool on_disk = cfg->kind != STORE_ENGINE_MEMORY;
    if (on_disk && (!cfg->data_dir || !*cfg->data_dir))
        return STORE_EINVAL;
    if (cfg->sync == STORE_SYNC_INTERVAL && cfg->sync_interval_ms == 0)
        return STORE_EINVAL;
    if (cfg->kind == STORE_ENGINE_BITCASK && cfg->cask_merge_percent > 100)
        return STORE_EINVAL;
    /* A data dir keeps the engine it was created with: the other one would start empty. */
    if (on_disk && store_engine_of(cfg->data_dir, cfg->kind) != cfg->kind)
        return STORE_EENGINE;
    /* A data dir keeps the layout it was created in: refuse the other one before anything
     * is opened or created (a partition opened in the wrong layout would split the data). */
    if (cfg->kind == STORE_ENGINE_LEVELDB && store_layout_of(cfg->data_dir, cfg->layout) !=
                                                 cfg->layout)
        return STORE_ELAYOUT;
    store_engine_t *e = store_calloc(1, sizeof *e);
    e->cfg = store_config_resolved(cfg);
    if (cfg->data_dir) {
        e->data_dir = strdup(cfg->data_dir);
        if (!e->data_dir)
            abort();
        e->cfg.data_dir = e->data_dir;
    }
    if (cfg->kind == STORE_ENGINE_LEVELDB)
        e->cache = leveldb_cache_create_lru(e->cfg.cache_bytes);
    pthread_mutex_init(&e->lock, NULL);
    *out = e;
    return 0;
}

void store_engine_free(store_engine_t *e)
{
    if (!e)
        return;
    if (e->shared_db)
        store__ldb_shared_free(e->shared_db);
    if (e->cask)
        store__cask_free(e->cask);
    if (e->cache)
        leveldb_cache_destroy(e->cache);
    pthread_mutex_destroy(&e->lock);
    free(e->data_dir);
    store_free(e);
}

struct store__ldb_db_s **store__engine_shared_db(store_engine_t *e)
{
    return &e->shared_db;
}

struct store__cask_s **store__engine_cask(store_engine_t *e)
{
    return &e->cask;
}

void store__engine_lock(store_engine_t *e)
{
    pthread_mutex_lock(&e->lock);
}

void store__engine_unlock(store_engine_t *e)
{
    pthread_mutex_unlock(&e->lock);
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
    case STORE_ENGINE_BITCASK:
        return store__cask_open(e, partition, out, errbuf, errlen);
    }
    return STORE_EINVAL;
}

void store_write_group(store_group_op_t *ops, size_t n)
{
    size_t i = 0;
    while (i < n) {
        store_backend_t *b = ops[i].backend;
        /* the run of ops from i whose backends share b's database */
        size_t end = i + 1;
        if (b->ops->write_shared && b->shared)
            while (end < n && ops[end].backend->shared == b->shared)
                end++;
        if (end - i > 1) {
            int rc = b->ops->write_shared(b, &ops[i], end - i);
            for (size_t j = i; j < end; j++)
                ops[j].rc = rc;
        } else if (ops[i].op.kind == STORE_OP_PUT) {
            ops[i].rc = store_put(b, &ops[i].op.key, ops[i].op.val, ops[i].op.val_len);
        } else {
            ops[i].rc = store_write(b, &ops[i].op, 1);
        }
        i = end;
    }
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

uint64_t store__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int store__mkdirs(const char *path, char *errbuf, size_t errlen)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "data_dir path too long");
        return STORE_EINVAL;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            if (errbuf && errlen)
                snprintf(errbuf, errlen, "mkdir %.120s: %s", buf, strerror(e));
            return e == ENOSPC ? STORE_ENOSPC : STORE_EIO;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

char *store__partition_dir(const char *data_dir, uint64_t p)
{
    char *path;
    if (asprintf(&path, "%s/leveldb/%llu", data_dir, (unsigned long long)p) < 0)
        abort();
    return path;
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
    uint8_t *p = kbuf_reserve(kb, b->prefix_n + need);
    memcpy(p, b->prefix, b->prefix_n);
    long n = store_key_encode(k, p + b->prefix_n, need);
    kb->n = b->prefix_n + (size_t)n;
    return 0;
}

int store__range(store_backend_t *b, const store_fold_t *f, store__range_t *r)
{
    memset(r, 0, sizeof *r);
    const store_slice_t *type = f ? f->type : NULL, *bucket = f ? f->bucket : NULL;
    if (!type || !bucket)
        bucket = NULL;
    size_t need = bucket ? 1 + 2 * (type->n + bucket->n) + 4 : 1;
    uint8_t *p = kbuf_reserve(&r->lo, b->prefix_n + need);
    memcpy(p, b->prefix, b->prefix_n);
    long n = store_key_bucket_prefix(type, bucket, p + b->prefix_n, need);
    if (n < 0) {
        store__range_free(r);
        return store__set_err(b, STORE_EKEY, "fold bucket has an empty type or bucket");
    }
    r->lo.n = b->prefix_n + (size_t)n;
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
