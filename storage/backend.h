/*
 * backend.h — the interface a vnode uses to store one partition (prefix store_).
 *
 * A backend maps storage keys (key.h) to opaque value bytes (an encoded store_obj_t, but the
 * backend never looks inside). Two implementations share the semantics exactly, including
 * fold order (bytewise by encoded key): LevelDB (ldb.c, the default) and memory (mem.c).
 * An engine is the per-node shared part (configuration, LevelDB's block cache and, in the
 * node layout, the node's one LevelDB database); a backend is one open partition. A backend
 * is used by one thread at a time (its vnode, or the writer it hands a write to); the engine
 * may be shared by all of them. Errors: negative STORE_* codes; the backend keeps the last
 * error's text (LevelDB's own message) for store_errmsg().
 *
 * LevelDB layouts (store_config_t.layout):
 *   - node (the default): one database for the whole node, <data_dir>/leveldb-node, where
 *     every key starts with its partition's 8-byte big-endian number. One memtable and one
 *     log for every partition: a write walks one small skiplist instead of one of 64, and
 *     the writes of many partitions can share one log append (store_write_group). A
 *     partition still has its directory <data_dir>/leveldb/<p> (for the vnode's own files).
 *   - partition: one database per partition in <data_dir>/leveldb/<p> (Riak's layout, and
 *     Cairn's before the node layout). Dropping a partition removes its files at once.
 * A data dir keeps the layout it was created with: an engine for the other layout is refused
 * (store_engine_new, STORE_ELAYOUT), and so is opening a partition whose data is in it.
 */
#ifndef CAIRN_STORE_BACKEND_H
#define CAIRN_STORE_BACKEND_H

#include "storage/err.h"
#include "storage/key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { STORE_ENGINE_LEVELDB, STORE_ENGINE_MEMORY, STORE_ENGINE_BITCASK } store_engine_kind_t;
typedef enum { STORE_SYNC_NONE, STORE_SYNC_ALWAYS, STORE_SYNC_INTERVAL } store_sync_t;
typedef enum { STORE_LAYOUT_NODE, STORE_LAYOUT_PARTITION } store_layout_t;

typedef struct store_config_s {
    store_engine_kind_t kind;
    store_layout_t layout;      /* LevelDB: one database per node or per partition (above) */
    const char *data_dir;       /* LevelDB: where the databases live (above) */
    size_t cache_bytes;         /* LevelDB block cache shared by every partition (0: 64 MiB) */
    size_t write_buffer_bytes;  /* per database (0: the layout's default, see backend.c) */
    int max_open_files;         /* per database (0: the layout's default, see backend.c) */
    bool compression;           /* Snappy */
    int bloom_bits;             /* bits per key of the bloom filter, 0 = none */
    store_sync_t sync;
    unsigned sync_interval_ms;  /* STORE_SYNC_INTERVAL: at most this old an unsynced write */
    uint64_t cask_file_bytes;   /* bitcask: the active log file is rotated at this size */
    unsigned cask_merge_percent; /* bitcask: merge when this % of the older files is dead */
} store_config_t;

/* Defaults: LevelDB in the node layout, 64 MiB cache, the layout's write buffer and open
 * files (0), Snappy, bloom 10, sync none; bitcask files of 128 MiB, merged at 50% dead. */
store_config_t store_config_default(const char *data_dir);

/* cfg with every 0 ("the default") replaced by the value the engine uses for its layout. */
store_config_t store_config_resolved(const store_config_t *cfg);

typedef struct store_engine_s store_engine_t;
typedef struct store_backend_s store_backend_t;

/* Value bytes returned by get. Owned by the caller until store_val_release(). */
typedef struct store_val_s {
    uint8_t *p;
    size_t n;
    void (*release)(void *p);
} store_val_t;

typedef enum { STORE_OP_PUT, STORE_OP_DEL } store_op_kind_t;

/* One operation of an atomic write batch; every pointer is borrowed for the call. */
typedef struct store_op_s {
    store_op_kind_t kind;
    store_key_t key;
    const void *val;
    size_t val_len;
} store_op_t;

/* One write of a group (store_write_group): the backend it goes to, the operation (borrowed
 * for the call, as in store_write) and, after the call, its result. */
typedef struct store_group_op_s {
    store_backend_t *backend;
    store_op_t op;
    int rc;
} store_group_op_t;

/* Called once per entry, in key order. key and val are valid only during the call (val is
 * NULL for a keys-only fold). Return 0 to go on, STORE_FOLD_STOP to stop (fold returns 0),
 * or a negative code to abort (fold returns it). */
typedef int (*store_fold_fn)(void *arg, const store_key_t *key, const uint8_t *val, size_t len);
#define STORE_FOLD_STOP 1

typedef struct store_fold_s {
    const store_slice_t *type, *bucket; /* both set: only that bucket's range; else all */
    const store_key_t *after;           /* resume strictly after this key; NULL: from start */
    bool values;                        /* false: keys only (cheaper) */
} store_fold_t;

typedef struct store_status_s {
    uint64_t bytes;         /* approximate bytes used */
    uint64_t keys;          /* key count: exact when keys_exact, else an estimate */
    bool keys_exact;
    const char *engine;     /* "leveldb", "bitcask" or "memory" */
} store_status_t;

typedef struct store_backend_ops_s {
    const char *name;
    int (*get)(store_backend_t *b, const store_key_t *k, store_val_t *out);
    int (*put)(store_backend_t *b, const store_key_t *k, const void *val, size_t len);
    int (*del)(store_backend_t *b, const store_key_t *k);
    int (*write)(store_backend_t *b, const store_op_t *ops, size_t n);
    int (*fold)(store_backend_t *b, const store_fold_t *f, store_fold_fn fn, void *arg);
    int (*is_empty)(store_backend_t *b);
    int (*drop)(store_backend_t *b);
    int (*status)(store_backend_t *b, store_status_t *st);
    int (*sync)(store_backend_t *b);
    void (*close)(store_backend_t *b);
    /* Optional: writes ops[0..n), all to backends with this one's `shared` database, in one
     * atomic write; returns its result. NULL: store_write_group writes one by one. */
    int (*write_shared)(store_backend_t *b, const store_group_op_t *ops, size_t n);
} store_backend_ops_t;

struct store_backend_s {
    const store_backend_ops_t *ops;
    uint64_t partition;
    uint8_t prefix[8];      /* every stored key starts with these prefix_n bytes (node layout: */
    size_t prefix_n;        /* the partition, big-endian; else none) */
    const void *shared;     /* non-NULL: the database this backend shares with others */
    char err[256];          /* message of the last error, "" if none */
};


/* ---------------------------------------------------------------- engine and open */

/* One per node. Copies cfg (data_dir included). Free with store_engine_free() after every
 * backend opened from it is closed. STORE_ELAYOUT: the data dir holds LevelDB data in the
 * other layout (store_layout_of says which); STORE_EENGINE: it holds another engine's data
 * (store_engine_of says which). */
int store_engine_new(const store_config_t *cfg, store_engine_t **out);
void store_engine_free(store_engine_t *e);

/* The layout of the LevelDB data under data_dir: node if <data_dir>/leveldb-node holds a
 * database, partition if some <data_dir>/leveldb/<p> does, else fallback (nothing yet). For
 * offline tools that open a node's data dir without its configuration. */
store_layout_t store_layout_of(const char *data_dir, store_layout_t fallback);

/* The engine whose data is under data_dir (bitcask or LevelDB), else fallback (nothing yet,
 * or the memory engine, which keeps nothing there). */
store_engine_kind_t store_engine_of(const char *data_dir, store_engine_kind_t fallback);

/* Opens (creating if needed) the partition's store. *out: close with store_close(). On
 * failure the reason's text (LevelDB's message) goes to errbuf[0..errlen) if errbuf != NULL.
 * On success errbuf is "" or a notice worth logging (bitcask: a torn write cut off at the end
 * of its log when the engine's first partition was opened). */
int store_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
               size_t errlen);

/* ---------------------------------------------------------------- operations */

/* *out is filled on success; STORE_ENOTFOUND when absent. Release out with
 * store_val_release(). */
static inline int store_get(store_backend_t *b, const store_key_t *k, store_val_t *out)
{
    return b->ops->get(b, k, out);
}
/* Stores a copy of val[0..len) under k (durable per the sync policy when it returns 0). */
static inline int store_put(store_backend_t *b, const store_key_t *k, const void *val,
                            size_t len)
{
    return b->ops->put(b, k, val, len);
}
/* Removes k; removing a missing key succeeds. */
static inline int store_del(store_backend_t *b, const store_key_t *k)
{
    return b->ops->del(b, k);
}
/* Applies all of ops or none of them. */
static inline int store_write(store_backend_t *b, const store_op_t *ops, size_t n)
{
    return b->ops->write(b, ops, n);
}
static inline int store_fold(store_backend_t *b, const store_fold_t *f, store_fold_fn fn,
                             void *arg)
{
    return b->ops->fold(b, f, fn, arg);
}
/* 1 if the partition holds no object, 0 if it does, negative on error. */
static inline int store_is_empty(store_backend_t *b)
{
    return b->ops->is_empty(b);
}
/* Deletes every object of the partition; the backend stays open and empty. Partition layout
 * and memory: the space is freed at once (the database's files are removed); node layout: a
 * range delete, whose space LevelDB's compactions give back over time. */
static inline int store_drop(store_backend_t *b)
{
    return b->ops->drop(b);
}
static inline int store_status(store_backend_t *b, store_status_t *st)
{
    return b->ops->status(b, st);
}
/* Makes every acknowledged write durable now (the vnode's sync timer calls it). */
static inline int store_sync(store_backend_t *b)
{
    return b->ops->sync(b);
}
/* Closes and frees b. NULL is ignored. */
static inline void store_close(store_backend_t *b)
{
    if (b)
        b->ops->close(b);
}
/* Text of b's last error (LevelDB's message where there is one). */
static inline const char *store_errmsg(const store_backend_t *b)
{
    return b->err;
}

/* Writes ops[0..n), each to its own backend, and sets each op's rc. Operations whose backends
 * share one database (the node layout) go in one atomic write, so one log append serves all
 * of them (group commit); the others are written one at a time, in order. Each backend must
 * be free for this thread for the call (as for any operation). */
void store_write_group(store_group_op_t *ops, size_t n);

/* Frees a value from store_get (no-op on an empty value). */
void store_val_release(store_val_t *v);

/* Internal to storage/: shared by the backends. */
int store__set_err(store_backend_t *b, int code, const char *msg);
uint64_t store__now_ns(void); /* CLOCK_MONOTONIC */
/* Creates path and its missing parents (0755). On failure "mkdir <dir>: <reason>" goes to
 * errbuf (if not NULL) and the code is returned: STORE_ENOSPC, STORE_EIO, or STORE_EINVAL
 * for a path too long. */
int store__mkdirs(const char *path, char *errbuf, size_t errlen);
/* <data_dir>/leveldb/<p> (malloc'ed): a partition's own directory, which holds the vnode's
 * files whatever the engine (the name is LevelDB's, from before there was another), and in
 * LevelDB's partition layout the partition's database. */
char *store__partition_dir(const char *data_dir, uint64_t p);

/* An encoded key: inline for usual sizes, heap beyond (free with store__kbuf_free). */
typedef struct store__kbuf_s {
    uint8_t *p;
    size_t n;
    uint8_t inl[256];
} store__kbuf_t;

/* Encodes k into kb; on failure records a message in b and returns STORE_EKEY. */
int store__kbuf_key(store_backend_t *b, store__kbuf_t *kb, const store_key_t *k);
void store__kbuf_free(store__kbuf_t *kb);

/* A fold's range [lo, hi) and resume key (after.n == 0 when none), from f. */
typedef struct store__range_s {
    store__kbuf_t lo, hi, after;
} store__range_t;
int store__range(store_backend_t *b, const store_fold_t *f, store__range_t *r);
void store__range_free(store__range_t *r);

/* Backend constructors (backend.c dispatches to them). */
int store__ldb_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
                    size_t errlen);
int store__mem_open(store_engine_t *e, uint64_t partition, store_backend_t **out);
int store__cask_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
                     size_t errlen);

/* The engine's parts that the backends read. */
const store_config_t *store__engine_config(const store_engine_t *e);
void *store__engine_cache(const store_engine_t *e); /* leveldb_cache_t *, or NULL */
/* The node layout's shared database (ldb.c's), created by the first store_open under the
 * engine's lock; store__ldb_shared_free closes it when the engine is freed. */
struct store__ldb_db_s;
struct store__ldb_db_s **store__engine_shared_db(store_engine_t *e);
void store__engine_lock(store_engine_t *e);
void store__engine_unlock(store_engine_t *e);
void store__ldb_shared_free(struct store__ldb_db_s *d);
/* bitcask: the node's log (cask.c's), created by the first store_open under the engine's
 * lock; store__cask_free closes it when the engine is freed. */
struct store__cask_s;
struct store__cask_s **store__engine_cask(store_engine_t *e);
void store__cask_free(struct store__cask_s *c);
bool store__cask_present(const char *data_dir); /* <data_dir>/bitcask holds log files */
bool store__ldb_present(const char *data_dir);  /* data_dir holds LevelDB data */

#endif
