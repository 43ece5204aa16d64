/*
 * ldb.c — the LevelDB backend: one database per partition under <data_dir>/leveldb/<p>.
 *
 * LevelDB's char **errptr is converted here and nowhere else: classified into a STORE_* code,
 * its text kept in the backend, the string freed with leveldb_free. After a failed write the
 * database is closed and reopened before the next operation, because LevelDB latches a
 * background error (e.g. disk full during a flush) and would refuse every later write even
 * once space returns. While that reopen fails, operations return its error; none aborts.
 */
#include "storage/backend.h"

#include <errno.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct ldb_s {
    store_backend_t base;           /* first: a store_backend_t * is an ldb_t * */
    const store_config_t *cfg;      /* the engine's, which outlives us */
    char *path;
    leveldb_t *db;                  /* NULL while closed after an error (see reopen) */
    leveldb_options_t *opts;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts, *fold_ropts;
    leveldb_writeoptions_t *wopts, *wopts_sync;
    uint64_t last_sync_ns;
    bool reopen;                    /* a write failed: reopen before the next operation */
} ldb_t;

static const store_backend_ops_t ldb_ops;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The one conversion point: classify LevelDB's message, keep it, free it. */
static int ldb_err(ldb_t *l, char *errptr)
{
    int code = STORE_EIO;
    if (strstr(errptr, "No space left") || strstr(errptr, "Disk quota"))
        code = STORE_ENOSPC;
    else if (strstr(errptr, "Corruption"))
        code = STORE_ECORRUPT;
    else if (strstr(errptr, "/LOCK") || strstr(errptr, "lock "))
        code = STORE_ELOCKED;
    else if (strstr(errptr, "Invalid argument"))
        code = STORE_EINVAL;
    store__set_err(&l->base, code, errptr);
    leveldb_free(errptr);
    return code;
}

static int mkdirs(ldb_t *l, const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return store__set_err(&l->base, STORE_EINVAL, "data_dir path too long");
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                char msg[200];
                snprintf(msg, sizeof msg, "mkdir %.120s: %s", buf, strerror(errno));
                return store__set_err(&l->base, errno == ENOSPC ? STORE_ENOSPC : STORE_EIO, msg);
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

static int db_open(ldb_t *l)
{
    char *err = NULL;
    l->db = leveldb_open(l->opts, l->path, &err);
    if (err) {
        l->db = NULL;
        return ldb_err(l, err);
    }
    l->reopen = false;
    return 0;
}

static void db_close(ldb_t *l)
{
    if (l->db)
        leveldb_close(l->db);
    l->db = NULL;
}

/* Every operation starts here: recovers from a failed write, or reports why it cannot. */
static int ready(ldb_t *l)
{
    if (l->db && !l->reopen)
        return 0;
    db_close(l);
    return db_open(l);
}

static void ldb_free(ldb_t *l)
{
    db_close(l);
    if (l->opts)
        leveldb_options_destroy(l->opts);
    if (l->filter)
        leveldb_filterpolicy_destroy(l->filter);
    if (l->ropts)
        leveldb_readoptions_destroy(l->ropts);
    if (l->fold_ropts)
        leveldb_readoptions_destroy(l->fold_ropts);
    if (l->wopts)
        leveldb_writeoptions_destroy(l->wopts);
    if (l->wopts_sync)
        leveldb_writeoptions_destroy(l->wopts_sync);
    free(l->path);
    store_free(l);
}

int store__ldb_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
                    size_t errlen)
{
    const store_config_t *cfg = store__engine_config(e);
    ldb_t *l = store_calloc(1, sizeof *l);
    l->base.ops = &ldb_ops;
    l->base.partition = partition;
    l->cfg = cfg;
    if (asprintf(&l->path, "%s/leveldb/%llu", cfg->data_dir, (unsigned long long)partition) < 0)
        abort();
    int rc = mkdirs(l, l->path);
    if (rc < 0)
        goto fail;

    l->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(l->opts, 1);
    leveldb_options_set_cache(l->opts, store__engine_cache(e));
    leveldb_options_set_write_buffer_size(l->opts, cfg->write_buffer_bytes);
    leveldb_options_set_max_open_files(l->opts, cfg->max_open_files);
    leveldb_options_set_compression(l->opts, cfg->compression ? leveldb_snappy_compression
                                                              : leveldb_no_compression);
    if (cfg->bloom_bits > 0) {
        l->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
        leveldb_options_set_filter_policy(l->opts, l->filter);
    }
    l->ropts = leveldb_readoptions_create();
    l->fold_ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_fill_cache(l->fold_ropts, 0); /* a fold must not evict hot data */
    l->wopts = leveldb_writeoptions_create();
    l->wopts_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(l->wopts_sync, 1);
    l->last_sync_ns = now_ns();

    rc = db_open(l);
    if (rc < 0)
        goto fail;
    *out = &l->base;
    return 0;
fail:
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", l->base.err);
    ldb_free(l);
    return rc;
}

/* Write options for the next write under the sync policy. */
static const leveldb_writeoptions_t *wopts_for(ldb_t *l, bool *synced)
{
    *synced = false;
    switch (l->cfg->sync) {
    case STORE_SYNC_ALWAYS:
        *synced = true;
        break;
    case STORE_SYNC_INTERVAL:
        *synced = now_ns() - l->last_sync_ns >= (uint64_t)l->cfg->sync_interval_ms * 1000000u;
        break;
    case STORE_SYNC_NONE:
        break;
    }
    return *synced ? l->wopts_sync : l->wopts;
}

static int write_batch(ldb_t *l, leveldb_writebatch_t *wb, bool force_sync)
{
    bool synced;
    const leveldb_writeoptions_t *wo = wopts_for(l, &synced);
    if (force_sync) {
        wo = l->wopts_sync;
        synced = true;
    }
    char *err = NULL;
    leveldb_write(l->db, wo, (leveldb_writebatch_t *)wb, &err);
    if (err) {
        l->reopen = true;
        return ldb_err(l, err);
    }
    if (synced)
        l->last_sync_ns = now_ns();
    return 0;
}

static int ldb_get(store_backend_t *b, const store_key_t *k, store_val_t *out)
{
    ldb_t *l = (ldb_t *)b;
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, k);
    if (rc < 0)
        return rc;
    if ((rc = ready(l)) < 0)
        goto out;
    char *err = NULL;
    size_t n = 0;
    char *v = leveldb_get(l->db, l->ropts, (const char *)kb.p, kb.n, &n, &err);
    if (err) {
        rc = ldb_err(l, err);
    } else if (!v) {
        rc = STORE_ENOTFOUND;
    } else {
        out->p = (uint8_t *)v;
        out->n = n;
        out->release = leveldb_free;
    }
out:
    store__kbuf_free(&kb);
    return rc;
}

static int ldb_write(store_backend_t *b, const store_op_t *ops, size_t n)
{
    ldb_t *l = (ldb_t *)b;
    int rc = ready(l);
    if (rc < 0)
        return rc;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    for (size_t i = 0; i < n && rc == 0; i++) {
        store__kbuf_t kb;
        if ((rc = store__kbuf_key(b, &kb, &ops[i].key)) < 0)
            break;
        if (ops[i].kind == STORE_OP_PUT)
            leveldb_writebatch_put(wb, (const char *)kb.p, kb.n, ops[i].val, ops[i].val_len);
        else if (ops[i].kind == STORE_OP_DEL)
            leveldb_writebatch_delete(wb, (const char *)kb.p, kb.n);
        else
            rc = store__set_err(b, STORE_EINVAL, "unknown batch operation");
        store__kbuf_free(&kb);
    }
    if (rc == 0)
        rc = write_batch(l, wb, false);
    leveldb_writebatch_destroy(wb);
    return rc;
}

static int ldb_put(store_backend_t *b, const store_key_t *k, const void *val, size_t len)
{
    ldb_t *l = (ldb_t *)b;
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, k);
    if (rc < 0)
        return rc;
    if ((rc = ready(l)) == 0) {
        bool synced;
        const leveldb_writeoptions_t *wo = wopts_for(l, &synced);
        char *err = NULL;
        leveldb_put(l->db, wo, (const char *)kb.p, kb.n, val, len, &err);
        if (err) {
            l->reopen = true;
            rc = ldb_err(l, err);
        } else if (synced) {
            l->last_sync_ns = now_ns();
        }
    }
    store__kbuf_free(&kb);
    return rc;
}

static int ldb_del(store_backend_t *b, const store_key_t *k)
{
    store_op_t op = {.kind = STORE_OP_DEL, .key = *k};
    return ldb_write(b, &op, 1);
}

static int ldb_sync(store_backend_t *b)
{
    ldb_t *l = (ldb_t *)b;
    int rc = ready(l);
    if (rc < 0)
        return rc;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    rc = write_batch(l, wb, true);
    leveldb_writebatch_destroy(wb);
    return rc;
}

static int keycmp(const char *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    return c ? c : (an > bn) - (an < bn);
}

static int ldb_fold(store_backend_t *b, const store_fold_t *f, store_fold_fn fn, void *arg)
{
    ldb_t *l = (ldb_t *)b;
    store__range_t r;
    int rc = ready(l);
    if (rc < 0)
        return rc;
    if ((rc = store__range(b, f, &r)) < 0)
        return rc;
    bool values = f && f->values;
    leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->fold_ropts);
    if (r.after.n && keycmp((const char *)r.after.p, r.after.n, r.lo.p, r.lo.n) > 0)
        leveldb_iter_seek(it, (const char *)r.after.p, r.after.n);
    else
        leveldb_iter_seek(it, (const char *)r.lo.p, r.lo.n);
    uint8_t scratch_inl[256], *scratch = scratch_inl;
    size_t scratch_cap = sizeof scratch_inl;
    for (; leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kn, vn = 0;
        const char *kp = leveldb_iter_key(it, &kn);
        if (keycmp(kp, kn, r.hi.p, r.hi.n) >= 0)
            break;
        if (r.after.n && keycmp(kp, kn, r.after.p, r.after.n) <= 0)
            continue;
        if (kn > scratch_cap) {
            if (scratch != scratch_inl)
                store_free(scratch);
            scratch = store_malloc(kn);
            scratch_cap = kn;
        }
        store_key_t key;
        if (store_key_decode((const uint8_t *)kp, kn, scratch, &key) < 0) {
            rc = store__set_err(b, STORE_ECORRUPT, "undecodable key in object range");
            break;
        }
        const char *vp = values ? leveldb_iter_value(it, &vn) : NULL;
        rc = fn(arg, &key, (const uint8_t *)vp, vn);
        if (rc != 0)
            break;
    }
    if (rc == STORE_FOLD_STOP)
        rc = 0;
    if (rc == 0) {
        char *err = NULL;
        leveldb_iter_get_error(it, &err);
        if (err)
            rc = ldb_err(l, err);
    }
    leveldb_iter_destroy(it);
    if (scratch != scratch_inl)
        store_free(scratch);
    store__range_free(&r);
    return rc;
}

static int count_one(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    (void)k;
    (void)v;
    (void)n;
    ++*(uint64_t *)arg;
    return STORE_FOLD_STOP;
}

static int ldb_is_empty(store_backend_t *b)
{
    uint64_t n = 0;
    int rc = ldb_fold(b, NULL, count_one, &n);
    return rc < 0 ? rc : n == 0;
}

static int ldb_drop(store_backend_t *b)
{
    ldb_t *l = (ldb_t *)b;
    db_close(l);
    char *err = NULL;
    leveldb_destroy_db(l->opts, l->path, &err);
    if (err) {
        l->reopen = true;
        return ldb_err(l, err);
    }
    int rc = mkdirs(l, l->path);
    return rc < 0 ? rc : db_open(l);
}

enum { SAMPLE = 4096 };

static uint64_t approx(ldb_t *l, const char *lo, size_t lo_n, const char *hi, size_t hi_n)
{
    uint64_t size = 0;
    leveldb_approximate_sizes(l->db, 1, &lo, &lo_n, &hi, &hi_n, &size);
    return size;
}

/* Keys: exact when the partition holds fewer than SAMPLE objects; otherwise the on-disk size
 * divided by the on-disk size per key of the first SAMPLE keys (same compression, so the
 * ratio holds; writes still in the memtable are not counted: an estimate). */
static int ldb_status(store_backend_t *b, store_status_t *st)
{
    ldb_t *l = (ldb_t *)b;
    int rc = ready(l);
    if (rc < 0)
        return rc;
    const char lo[1] = {STORE_KEY_NS_OBJECT}, hi[1] = {STORE_KEY_NS_OBJECT + 1};
    st->engine = "leveldb";
    st->bytes = approx(l, lo, 1, hi, 1);
    leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->fold_ropts);
    uint64_t n = 0;
    char *first = NULL;
    size_t first_n = 0;
    for (leveldb_iter_seek(it, lo, 1); leveldb_iter_valid(it) && n < SAMPLE; leveldb_iter_next(it)) {
        size_t kn;
        const char *kp = leveldb_iter_key(it, &kn);
        if (keycmp(kp, kn, (const uint8_t *)hi, 1) >= 0)
            break;
        if (n++ == 0) {
            first = store_malloc(kn);
            memcpy(first, kp, kn);
            first_n = kn;
        }
    }
    st->keys = n;
    st->keys_exact = n < SAMPLE;
    if (!st->keys_exact && leveldb_iter_valid(it)) {
        size_t kn;
        const char *kp = leveldb_iter_key(it, &kn);
        uint64_t sample_bytes = approx(l, first, first_n, kp, kn);
        if (sample_bytes > 0 && st->bytes / sample_bytes * SAMPLE > n)
            st->keys = (uint64_t)((double)st->bytes / (double)sample_bytes * SAMPLE);
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    store_free(first);
    return err ? ldb_err(l, err) : 0;
}

static void ldb_close(store_backend_t *b)
{
    ldb_free((ldb_t *)b);
}

static const store_backend_ops_t ldb_ops = {
    .name = "leveldb",
    .get = ldb_get,
    .put = ldb_put,
    .del = ldb_del,
    .write = ldb_write,
    .fold = ldb_fold,
    .is_empty = ldb_is_empty,
    .drop = ldb_drop,
    .status = ldb_status,
    .sync = ldb_sync,
    .close = ldb_close,
};
