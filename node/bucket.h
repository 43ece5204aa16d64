/*
 * bucket.h — bucket properties: the defaults of the `default` bucket type (from the config),
 * per-bucket overrides set by clients, their file in the data dir (prefix bucket_).
 *
 * Lookups are on the hot path of every request (a read lock and a hash lookup); set and reset
 * rewrite the file atomically (temp file, fsync, rename) before answering. Only the `default`
 * bucket type exists on one node (a `type` field of "default" or absent); other types are
 * refused with "Invalid bucket type: <name>".
 */
#ifndef CAIRN_NODE_BUCKET_H
#define CAIRN_NODE_BUCKET_H

#include "node/kv.h"
#include "storage/object.h"

/* A bucket's effective properties (defaults merged with the bucket's own). Quorum fields
 * keep their symbolic values (NODE_QUORUM_*) as set; coordinators resolve them against N. */
typedef struct bucket_props_s {
    uint32_t n_val;
    uint32_t r, w, dw, rw, pr, pw;
    bool allow_mult, last_write_wins, notfound_ok, basic_quorum;
    store_props_t store;     /* allow_mult, lww, pruning and size/sibling limits */
} bucket_props_t;

/* Loads <data_dir>/buckets (absent: none set). NULL with err on a corrupt file. */
bucket_store_t *bucket_store_open(const node_config_t *cfg, char *err, size_t errlen);
void bucket_store_close(bucket_store_t *bs);

/* Effective properties of (type, bucket). 0, or -1 when the type does not exist. */
int bucket_props_get(bucket_store_t *bs, const void *type, size_t type_len, const void *bucket,
                     size_t bucket_len, bucket_props_t *out);

#endif
