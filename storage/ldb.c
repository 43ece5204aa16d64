/*
 * ldb.c — the LevelDB backend, in both layouts (backend.h): a partition's own database under
 * <data_dir>/leveldb/<p> (partition layout), or a view of the node's one database
 * <data_dir>/leveldb-node whose keys all start with the partition's 8-byte prefix (node
 * layout; the prefix is prepended by backend.c's key helpers and stripped by the fold).
 *
 * LevelDB's char **errptr is converted here and nowhere else: classified into a STORE_* code,
 * its text kept in the backend, the string freed with leveldb_free. After a failed write the
 * database is closed and reopened before the next operation, because LevelDB latches a
 * background error (e.g. disk full during a flush) and would refuse every later write even
 * once space returns. While that reopen fails, operations return its error; none aborts.
 * Every operation holds the database's rwlock shared (LevelDB itself is thread-safe); only a
 * reopen, and dropping a partition-layout database, hold it exclusively, so neither ever runs
 * beside another thread's iterator or write. Folds hold it for one call, which the node keeps
 * to one chunk (node/vnode.c); a node-layout drop holds it for the whole partition (tests
 * and tools only); no holder waits for anything but LevelDB.
 */
#include "storage/backend.h"

#include <dirent.h>
#include <errno.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One open LevelDB database: a partition's own, or the node's shared one. */
typedef struct store__ldb_db_s {
    const store_config_t *cfg;      /* the engine's, which outlives us */
    char *path;
    leveldb_t *db;                  /* NULL while closed after an error (see enter) */
    leveldb_options_t *opts;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts, *fold_ropts;
    leveldb_writeoptions_t *wopts, *wopts_sync;
    _Atomic uint64_t last_sync_ns;
    atomic_bool reopen;             /* a write failed: reopen before the next operation */
    _Atomic uint64_t reopen_failed_ns; /* when a reopen last failed; 0 once one succeeded */
    int reopen_rc;                  /* that failure (written under the lock exclusively) */
    char reopen_err[256];
    pthread_rwlock_t lock;          /* shared by operations, exclusive for reopen and drop */
    /* node layout: the partitions open now (under the engine's lock); one view each */
    uint64_t *open_parts;
    size_t n_open, cap_open;
} ldb_db_t;

typedef struct ldb_s {
    store_backend_t base;           /* first: a store_backend_t * is an ldb_t * */
    store_engine_t *engine;
    ldb_db_t *d;                    /* the partition's own (owned), or the engine's shared one */
    bool owns_db;
} ldb_t;

static const store_backend_ops_t ldb_ops;

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
    char msg[200];
    int rc = store__mkdirs(path, msg, sizeof msg);
    return rc < 0 ? store__set_err(&l->base, rc, msg) : 0;
}

static bool exists(const char *dir, const char *name)
{
    char path[8400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* The layout of the LevelDB data under data_dir; false if there is none. */
static bool find_layout(const char *data_dir, store_layout_t *found)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/leveldb-node", data_dir);
    if (exists(dir, "CURRENT")) {
        *found = STORE_LAYOUT_NODE;
        return true;
    }
    snprintf(dir, sizeof dir, "%s/leveldb", data_dir);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool any = false;
    for (struct dirent *de; !any && (de = readdir(d)) != NULL;) {
        char sub[4200 + 260];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        any = de->d_name[0] != '.' && exists(sub, "CURRENT");
    }
    closedir(d);
    if (any)
        *found = STORE_LAYOUT_PARTITION;
    return any;
}

store_layout_t store_layout_of(const char *data_dir, store_layout_t fallback)
{
    store_layout_t found = fallback;
    find_layout(data_dir, &found);
    return found;
}

bool store__ldb_present(const char *data_dir)
{
    store_layout_t found;
    return find_layout(data_dir, &found);
}

/* Opens d->db; the error (if any) goes to l. Caller holds d->lock exclusively, or is alone. */
static int db_open(ldb_t *l, ldb_db_t *d)
{
    char *err = NULL;
    d->db = leveldb_open(d->opts, d->path, &err);
    if (err) {
        d->db = NULL;
        return ldb_err(l, err);
    }
    atomic_store(&d->reopen, false);
    return 0;
}

static void db_close(ldb_db_t *d)
{
    if (d->db)
        leveldb_close(d->db);
    d->db = NULL;
}

/* After a failed reopen, operations within this long report its error instead of reopening
 * again: in the node layout a reopen replays the whole node's log and holds every
 * partition's operations meanwhile. */
#define REOPEN_BACKOFF_NS (100u * 1000000u)

/* Every operation starts here: takes the lock shared, recovering from a failed write first
 * (exclusively), or reports why it cannot (lock not held then). */
static int enter(ldb_t *l)
{
    ldb_db_t *d = l->d;
    pthread_rwlock_rdlock(&d->lock);
    if (d->db && !atomic_load_explicit(&d->reopen, memory_order_acquire))
        return 0;
    uint64_t failed = atomic_load(&d->reopen_failed_ns);
    if (failed && store__now_ns() - failed < REOPEN_BACKOFF_NS) {
        int rc = store__set_err(&l->base, d->reopen_rc, d->reopen_err);
        pthread_rwlock_unlock(&d->lock);
        return rc;
    }
    pthread_rwlock_unlock(&d->lock);
    pthread_rwlock_wrlock(&d->lock);
    int rc = 0;
    if (!d->db || atomic_load(&d->reopen)) {
        db_close(d);
        rc = db_open(l, d);
        if (rc < 0) {
            d->reopen_rc = rc;
            snprintf(d->reopen_err, sizeof d->reopen_err, "%s", l->base.err);
            atomic_store(&d->reopen_failed_ns, store__now_ns() | 1);
        } else {
            atomic_store(&d->reopen_failed_ns, 0);
        }
    }
    pthread_rwlock_unlock(&d->lock);
    if (rc < 0)
        return rc;
    pthread_rwlock_rdlock(&d->lock);
    if (!d->db) { /* another thread's reopen failed in between */
        pthread_rwlock_unlock(&d->lock);
        return store__set_err(&l->base, STORE_EIO, "database closed after a failed reopen");
    }
    return 0;
}

static void leave(ldb_t *l)
{
    pthread_rwlock_unlock(&l->d->lock);
}

static void db_free(ldb_db_t *d)
{
    if (!d)
        return;
    db_close(d);
    if (d->opts)
        leveldb_options_destroy(d->opts);
    if (d->filter)
        leveldb_filterpolicy_destroy(d->filter);
    if (d->ropts)
        leveldb_readoptions_destroy(d->ropts);
    if (d->fold_ropts)
        leveldb_readoptions_destroy(d->fold_ropts);
    if (d->wopts)
        leveldb_writeoptions_destroy(d->wopts);
    if (d->wopts_sync)
        leveldb_writeoptions_destroy(d->wopts_sync);
    pthread_rwlock_destroy(&d->lock);
    store_free(d->open_parts);
    free(d->path);
    store_free(d);
}

void store__ldb_shared_free(ldb_db_t *d)
{
    db_free(d);
}

/* A database handle for path with the engine's options, not yet open. Takes path. */
static ldb_db_t *db_new(store_engine_t *e, char *path)
{
    const store_config_t *cfg = store__engine_config(e);
    ldb_db_t *d = store_calloc(1, sizeof *d);
    d->cfg = cfg;
    d->path = path;
    pthread_rwlock_init(&d->lock, NULL);
    d->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(d->opts, 1);
    leveldb_options_set_cache(d->opts, store__engine_cache(e));
    leveldb_options_set_write_buffer_size(d->opts, cfg->write_buffer_bytes);
    leveldb_options_set_max_open_files(d->opts, cfg->max_open_files);
    leveldb_options_set_compression(d->opts, cfg->compression ? leveldb_snappy_compression
                                                              : leveldb_no_compression);
    if (cfg->bloom_bits > 0) {
        d->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
        leveldb_options_set_filter_policy(d->opts, d->filter);
    }
    d->ropts = leveldb_readoptions_create();
    d->fold_ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_fill_cache(d->fold_ropts, 0); /* a fold must not evict hot data */
    d->wopts = leveldb_writeoptions_create();
    d->wopts_sync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(d->wopts_sync, 1);
    atomic_store(&d->last_sync_ns, store__now_ns());
    return d;
}

/* <data_dir>/leveldb-node, the node layout's database (malloc'ed). */
static char *node_db_dir(const char *data_dir)
{
    char *path;
    if (asprintf(&path, "%s/leveldb-node", data_dir) < 0)
        abort();
    return path;
}

/* Node layout: l becomes a view of the engine's database (opened by the first view). */
static int open_view(ldb_t *l, uint64_t partition)
{
    store_engine_t *e = l->engine;
    ldb_db_t **shared = store__engine_shared_db(e);
    int rc = 0;
    store__engine_lock(e);
    if (!*shared) {
        ldb_db_t *d = db_new(e, node_db_dir(store__engine_config(e)->data_dir));
        if ((rc = mkdirs(l, d->path)) < 0 || (rc = db_open(l, d)) < 0)
            db_free(d);
        else
            *shared = d;
    }
    ldb_db_t *d = *shared;
    for (size_t i = 0; rc == 0 && i < d->n_open; i++)
        if (d->open_parts[i] == partition) {
            char msg[160];
            snprintf(msg, sizeof msg, "partition %llu is already open in this node's database "
                     "(leveldb-node/LOCK is held)", (unsigned long long)partition);
            rc = store__set_err(&l->base, STORE_ELOCKED, msg);
        }
    if (rc == 0) {
        if (d->n_open == d->cap_open) {
            d->cap_open = d->cap_open ? 2 * d->cap_open : 64;
            d->open_parts = store_realloc(d->open_parts, d->cap_open * sizeof *d->open_parts);
        }
        d->open_parts[d->n_open++] = partition;
        l->d = d;
        for (int i = 0; i < 8; i++)
            l->base.prefix[i] = (uint8_t)(partition >> (56 - 8 * i));
        l->base.prefix_n = 8;
        l->base.shared = d;
    }
    store__engine_unlock(e);
    return rc;
}

static void close_view(ldb_t *l)
{
    store__engine_lock(l->engine);
    ldb_db_t *d = l->d;
    for (size_t i = 0; i < d->n_open; i++)
        if (d->open_parts[i] == l->base.partition) {
            d->open_parts[i] = d->open_parts[--d->n_open];
            break;
        }
    store__engine_unlock(l->engine);
}

static void ldb_free(ldb_t *l)
{
    if (l->owns_db)
        db_free(l->d);
    else if (l->d)
        close_view(l);
    store_free(l);
}

int store__ldb_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
                    size_t errlen)
{
    const store_config_t *cfg = store__engine_config(e);
    ldb_t *l = store_calloc(1, sizeof *l);
    l->base.ops = &ldb_ops;
    l->base.partition = partition;
    l->engine = e;
    /* <data_dir>/leveldb/<p> exists in both layouts (the vnode keeps its own files there).
     * The engine refused a data dir in the other layout (store_engine_new); this is the
     * same check for the one partition, before anything is created. */
    char *pdir = store__partition_dir(cfg->data_dir, partition);
    char *ndir = node_db_dir(cfg->data_dir);
    int rc = 0;
    if (cfg->layout == STORE_LAYOUT_NODE && exists(pdir, "CURRENT")) {
        char msg[256];
        snprintf(msg, sizeof msg, "partition %llu's data is in the partition layout "
                 "(leveldb/%llu): set leveldb.layout = partition",
                 (unsigned long long)partition, (unsigned long long)partition);
        rc = store__set_err(&l->base, STORE_ELAYOUT, msg);
        goto fail;
    }
    if (cfg->layout == STORE_LAYOUT_PARTITION && exists(ndir, "CURRENT")) {
        rc = store__set_err(&l->base, STORE_ELAYOUT, "this data dir is in the node layout "
                            "(leveldb-node): set leveldb.layout = node");
        goto fail;
    }
    if ((rc = mkdirs(l, pdir)) < 0)
        goto fail;
    if (cfg->layout == STORE_LAYOUT_NODE) {
        rc = open_view(l, partition);
    } else {
        l->d = db_new(e, pdir);
        pdir = NULL;
        l->owns_db = true;
        rc = db_open(l, l->d);
    }
    if (rc < 0)
        goto fail;
    free(pdir);
    free(ndir);
    *out = &l->base;
    return 0;
fail:
    free(pdir);
    free(ndir);
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", l->base.err);
    ldb_free(l);
    return rc;
}

/* Write options for the next write under the sync policy. */
static const leveldb_writeoptions_t *wopts_for(ldb_db_t *d, bool *synced)
{
    *synced = false;
    switch (d->cfg->sync) {
    case STORE_SYNC_ALWAYS:
        *synced = true;
        break;
    case STORE_SYNC_INTERVAL:
        *synced = store__now_ns() - atomic_load_explicit(&d->last_sync_ns, memory_order_relaxed) >=
                  (uint64_t)d->cfg->sync_interval_ms * 1000000u;
        break;
    case STORE_SYNC_NONE:
        break;
    }
    return *synced ? d->wopts_sync : d->wopts;
}

/* Writes wb under the lock (shared); a failure marks the database for reopening. */
static int write_batch(ldb_t *l, leveldb_writebatch_t *wb, bool force_sync)
{
    ldb_db_t *d = l->d;
    bool synced;
    const leveldb_writeoptions_t *wo = wopts_for(d, &synced);
    if (force_sync) {
        wo = d->wopts_sync;
        synced = true;
    }
    char *err = NULL;
    leveldb_write(d->db, wo, wb, &err);
    if (err) {
        atomic_store(&d->reopen, true);
        return ldb_err(l, err);
    }
    if (synced)
        atomic_store_explicit(&d->last_sync_ns, store__now_ns(), memory_order_relaxed);
    return 0;
}

/* write_batch between enter and leave. */
static int write_entered(ldb_t *l, leveldb_writebatch_t *wb, bool force_sync)
{
    int rc = enter(l);
    if (rc == 0) {
        rc = write_batch(l, wb, force_sync);
        leave(l);
    }
    return rc;
}

static int ldb_get(store_backend_t *b, const store_key_t *k, store_val_t *out)
{
    ldb_t *l = (ldb_t *)b;
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, k);
    if (rc < 0)
        return rc;
    if ((rc = enter(l)) < 0)
        goto out;
    char *err = NULL;
    size_t n = 0;
    char *v = leveldb_get(l->d->db, l->d->ropts, (const char *)kb.p, kb.n, &n, &err);
    leave(l);
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

/* Adds op (a key of b) to wb; 0 or b's error. */
static int batch_add(store_backend_t *b, leveldb_writebatch_t *wb, const store_op_t *op)
{
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, &op->key);
    if (rc < 0)
        return rc;
    if (op->kind == STORE_OP_PUT)
        leveldb_writebatch_put(wb, (const char *)kb.p, kb.n, op->val, op->val_len);
    else if (op->kind == STORE_OP_DEL)
        leveldb_writebatch_delete(wb, (const char *)kb.p, kb.n);
    else
        rc = store__set_err(b, STORE_EINVAL, "unknown batch operation");
    store__kbuf_free(&kb);
    return rc;
}

static int ldb_write(store_backend_t *b, const store_op_t *ops, size_t n)
{
    ldb_t *l = (ldb_t *)b;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = batch_add(b, wb, &ops[i]);
    if (rc == 0)
        rc = write_entered(l, wb, false);
    leveldb_writebatch_destroy(wb);
    return rc;
}

/* Group commit (store_write_group): every op's backend is a view of l's database. A failure
 * (a bad key, or the write's) is recorded in every op's backend. */
static int ldb_write_shared(store_backend_t *b, const store_group_op_t *ops, size_t n)
{
    ldb_t *l = (ldb_t *)b;
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((rc = batch_add(ops[i].backend, wb, &ops[i].op)) < 0 && ops[i].backend != b)
            store__set_err(b, rc, store_errmsg(ops[i].backend));
    if (rc == 0)
        rc = write_entered(l, wb, false);
    leveldb_writebatch_destroy(wb);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            if (ops[i].backend != b)
                store__set_err(ops[i].backend, rc, store_errmsg(b));
    return rc;
}

static int ldb_put(store_backend_t *b, const store_key_t *k, const void *val, size_t len)
{
    ldb_t *l = (ldb_t *)b;
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, k);
    if (rc < 0)
        return rc;
    if ((rc = enter(l)) == 0) {
        ldb_db_t *d = l->d;
        bool synced;
        const leveldb_writeoptions_t *wo = wopts_for(d, &synced);
        char *err = NULL;
        leveldb_put(d->db, wo, (const char *)kb.p, kb.n, val, len, &err);
        leave(l);
        if (err) {
            atomic_store(&d->reopen, true);
            rc = ldb_err(l, err);
        } else if (synced) {
            atomic_store_explicit(&d->last_sync_ns, store__now_ns(), memory_order_relaxed);
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
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    int rc = write_entered((ldb_t *)b, wb, true);
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
    int rc = store__range(b, f, &r);
    if (rc < 0)
        return rc;
    if ((rc = enter(l)) < 0) {
        store__range_free(&r);
        return rc;
    }
    bool values = f && f->values;
    size_t pn = b->prefix_n;
    leveldb_iterator_t *it = leveldb_create_iterator(l->d->db, l->d->fold_ropts);
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
        if (kn < pn || store_key_decode((const uint8_t *)kp + pn, kn - pn, scratch, &key) < 0) {
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
    leave(l);
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

/* The bounds of b's objects: [prefix 0x10, prefix 0x11). */
static void object_range(const store_backend_t *b, uint8_t lo[9], uint8_t hi[9], size_t *n)
{
    memcpy(lo, b->prefix, b->prefix_n);
    memcpy(hi, b->prefix, b->prefix_n);
    lo[b->prefix_n] = STORE_KEY_NS_OBJECT;
    hi[b->prefix_n] = STORE_KEY_NS_OBJECT + 1;
    *n = b->prefix_n + 1;
}

enum { DROP_BATCH = 1024 };

/* Node layout: deletes the partition's keys, DROP_BATCH per write. The space comes back as
 * LevelDB compacts those ranges (leveldb_compact_range would not hurry it: it stops one
 * level above the deepest level holding the range, where the flushed memtable often lands). */
static int drop_range(ldb_t *l)
{
    uint8_t lo[9], hi[9];
    size_t n;
    object_range(&l->base, lo, hi, &n);
    int rc = enter(l);
    if (rc < 0)
        return rc;
    leveldb_iterator_t *it = leveldb_create_iterator(l->d->db, l->d->fold_ropts);
    leveldb_writebatch_t *wb = leveldb_writebatch_create();
    size_t in_batch = 0;
    for (leveldb_iter_seek(it, (const char *)lo, n); rc == 0; leveldb_iter_next(it)) {
        bool more = leveldb_iter_valid(it);
        size_t kn = 0;
        const char *kp = more ? leveldb_iter_key(it, &kn) : NULL;
        more = more && keycmp(kp, kn, hi, n) < 0;
        if (more) {
            leveldb_writebatch_delete(wb, kp, kn);
            in_batch++;
        }
        if (in_batch == DROP_BATCH || (!more && in_batch)) {
            rc = write_batch(l, wb, false);
            leveldb_writebatch_clear(wb);
            in_batch = 0;
        }
        if (!more)
            break;
    }
    if (rc == 0) {
        char *err = NULL;
        leveldb_iter_get_error(it, &err);
        if (err)
            rc = ldb_err(l, err);
    }
    leveldb_writebatch_destroy(wb);
    leveldb_iter_destroy(it);
    leave(l);
    return rc;
}

static int ldb_drop(store_backend_t *b)
{
    ldb_t *l = (ldb_t *)b;
    if (!l->owns_db)
        return drop_range(l);
    ldb_db_t *d = l->d;
    pthread_rwlock_wrlock(&d->lock);
    db_close(d);
    char *err = NULL;
    int rc = 0;
    leveldb_destroy_db(d->opts, d->path, &err);
    if (err) {
        atomic_store(&d->reopen, true);
        rc = ldb_err(l, err);
    } else if ((rc = mkdirs(l, d->path)) == 0) {
        rc = db_open(l, d);
    }
    pthread_rwlock_unlock(&d->lock);
    return rc;
}

enum { SAMPLE = 4096 };

static uint64_t approx(ldb_t *l, const char *lo, size_t lo_n, const char *hi, size_t hi_n)
{
    uint64_t size = 0;
    leveldb_approximate_sizes(l->d->db, 1, &lo, &lo_n, &hi, &hi_n, &size);
    return size;
}

/* Keys: exact when the partition holds fewer than SAMPLE objects; otherwise the on-disk size
 * divided by the on-disk size per key of the first SAMPLE keys (same compression, so the
 * ratio holds; writes still in the memtable are not counted: an estimate). */
static int ldb_status(store_backend_t *b, store_status_t *st)
{
    ldb_t *l = (ldb_t *)b;
    int rc = enter(l);
    if (rc < 0)
        return rc;
    uint8_t lo[9], hi[9];
    size_t rn;
    object_range(b, lo, hi, &rn);
    st->engine = "leveldb";
    st->bytes = approx(l, (const char *)lo, rn, (const char *)hi, rn);
    leveldb_iterator_t *it = leveldb_create_iterator(l->d->db, l->d->fold_ropts);
    uint64_t n = 0;
    char *first = NULL;
    size_t first_n = 0;
    for (leveldb_iter_seek(it, (const char *)lo, rn); leveldb_iter_valid(it) && n < SAMPLE;
         leveldb_iter_next(it)) {
        size_t kn;
        const char *kp = leveldb_iter_key(it, &kn);
        if (keycmp(kp, kn, hi, rn) >= 0)
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
    leave(l);
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
    .write_shared = ldb_write_shared,
};
