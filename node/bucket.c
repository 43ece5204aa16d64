/*
 * bucket.c — bucket properties (node/bucket.h): the `default` bucket type's defaults from the
 * config, per-bucket overrides set by clients, their file <data_dir>/buckets, and the
 * client entry points kv_bucket_get/set/reset/type_get/type_set (node/kv.h).
 *
 * Supported properties (Riak's names): n_val (1..ring size), allow_mult, last_write_wins,
 * r, w, pr, pw, dw, rw (0..n_val or the symbolic one/quorum/all/default codes), notfound_ok,
 * basic_quorum, small_vclock, big_vclock, young_vclock, old_vclock. A set request may also
 * carry the properties Cairn does not implement, as long as each has its default value
 * (clients often write back what GetBucket returned): chash_keyfun
 * {riak_core_util, chash_std_keyfun}, linkfun {riak_kv_wm_link_walker, mapreduce_linkfun},
 * no commit hooks, no backend, search/consistent/write_once false, repl false, no
 * search_index or datatype, hll_precision 14. Anything else is refused naming the property.
 *
 * Concurrency: lookups (every request) take the read lock; set and reset are serialised by
 * write_mx, write the whole file (temp, fsync, rename, fsync of the directory) without
 * holding the read-write lock, and only then take the write lock to apply the change, so a
 * slow disk never stalls lookups.
 *
 * File format (binary, little room for ambiguity): "CAIRNBKT", u32 version (1), u32 count,
 * then count records of u32 length + an RpbSetBucketReq (type, bucket, the overridden
 * properties only), then a u64 FNV-1a of every byte before it. Integers are big-endian.
 */
#include "node/bucket.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PB_CODE_GET_BUCKET_RESP 20
#define PB_CODE_SET_BUCKET_RESP 22
#define PB_CODE_RESET_BUCKET_RESP 30

#define BUCKET_FILE_MAGIC "CAIRNBKT"
#define BUCKET_FILE_VERSION 1u
#define BUCKET_FILE_MAX (64u << 20)
#define HLL_PRECISION_DEFAULT 14u

/* ---------------------------------------------------------------- overrides */

enum {
    P_N_VAL, P_ALLOW_MULT, P_LWW, P_R, P_W, P_PR, P_PW, P_DW, P_RW, P_NOTFOUND_OK,
    P_BASIC_QUORUM, P_SMALL_VCLOCK, P_BIG_VCLOCK, P_YOUNG_VCLOCK, P_OLD_VCLOCK, P_COUNT
};

/* A bucket's own properties: bit i of `has` set means value v[i] overrides the default
 * (booleans are 0/1). */
typedef struct bucket_over_s {
    uint32_t has;
    uint32_t v[P_COUNT];
} bucket_over_t;

static const char *const prop_name[P_COUNT] = {
    "n_val", "allow_mult", "last_write_wins", "r", "w", "pr", "pw", "dw", "rw",
    "notfound_ok", "basic_quorum", "small_vclock", "big_vclock", "young_vclock", "old_vclock",
};

typedef struct bucket_entry_s {
    struct bucket_entry_s *next;
    uint64_t hash;
    bucket_over_t over;
    size_t name_len;
    uint8_t name[];
} bucket_entry_t;

struct bucket_store_s {
    const node_config_t *cfg;
    char *path;
    pthread_rwlock_t lock;     /* guards the table below */
    pthread_mutex_t write_mx;  /* one set/reset at a time (file + table) */
    bucket_entry_t **slots;
    size_t nslots, count;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static bucket_entry_t *table_find(const bucket_store_t *bs, const void *name, size_t len,
                                  uint64_t h)
{
    if (!bs->nslots)
        return NULL;
    for (bucket_entry_t *e = bs->slots[h & (bs->nslots - 1)]; e; e = e->next)
        if (e->hash == h && e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

static void table_grow(bucket_store_t *bs)
{
    size_t n = bs->nslots ? bs->nslots * 2 : 16;
    bucket_entry_t **slots = calloc(n, sizeof *slots);
    if (!slots)
        abort();
    for (size_t i = 0; i < bs->nslots; i++)
        for (bucket_entry_t *e = bs->slots[i], *next; e; e = next) {
            next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    free(bs->slots);
    bs->slots = slots;
    bs->nslots = n;
}

/* Sets (or, with over->has == 0, removes) a bucket's overrides. Caller holds the write lock
 * (or owns bs exclusively). */
static void table_set(bucket_store_t *bs, const void *name, size_t len, const bucket_over_t *over)
{
    uint64_t h = fnv1a(FNV_INIT, name, len);
    bucket_entry_t *e = table_find(bs, name, len, h);
    if (e && over->has) {
        e->over = *over;
        return;
    }
    if (e) {
        bucket_entry_t **pp = &bs->slots[h & (bs->nslots - 1)];
        while (*pp != e)
            pp = &(*pp)->next;
        *pp = e->next;
        free(e);
        bs->count--;
        return;
    }
    if (!over->has)
        return;
    if (bs->count + 1 > bs->nslots * 3 / 4)
        table_grow(bs);
    e = xmalloc(sizeof *e + len);
    e->hash = h;
    e->over = *over;
    e->name_len = len;
    memcpy(e->name, name, len);
    e->next = bs->slots[h & (bs->nslots - 1)];
    bs->slots[h & (bs->nslots - 1)] = e;
    bs->count++;
}

static void table_free(bucket_store_t *bs)
{
    for (size_t i = 0; i < bs->nslots; i++)
        for (bucket_entry_t *e = bs->slots[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(bs->slots);
    bs->slots = NULL;
    bs->nslots = bs->count = 0;
}

/* ---------------------------------------------------------------- effective properties */

static void defaults_of(const node_config_t *cfg, uint32_t v[P_COUNT])
{
    const node_bucket_defaults_t *d = &cfg->bucket_defaults;
    v[P_N_VAL] = d->n_val;
    v[P_ALLOW_MULT] = d->allow_mult;
    v[P_LWW] = d->last_write_wins;
    v[P_R] = d->r;
    v[P_W] = d->w;
    v[P_PR] = d->pr;
    v[P_PW] = d->pw;
    v[P_DW] = d->dw;
    v[P_RW] = d->rw;
    v[P_NOTFOUND_OK] = d->notfound_ok;
    v[P_BASIC_QUORUM] = d->basic_quorum;
    v[P_SMALL_VCLOCK] = d->small_vclock;
    v[P_BIG_VCLOCK] = d->big_vclock;
    v[P_YOUNG_VCLOCK] = d->young_vclock;
    v[P_OLD_VCLOCK] = d->old_vclock;
}

static void effective(const node_config_t *cfg, const bucket_over_t *over, uint32_t v[P_COUNT])
{
    defaults_of(cfg, v);
    for (int i = 0; over && i < P_COUNT; i++)
        if (over->has & (1u << i))
            v[i] = over->v[i];
}

static void props_fill(const node_config_t *cfg, const uint32_t v[P_COUNT], bucket_props_t *out)
{
    memset(out, 0, sizeof *out);
    out->n_val = v[P_N_VAL];
    out->r = v[P_R];
    out->w = v[P_W];
    out->dw = v[P_DW];
    out->rw = v[P_RW];
    out->pr = v[P_PR];
    out->pw = v[P_PW];
    out->allow_mult = v[P_ALLOW_MULT] != 0;
    out->last_write_wins = v[P_LWW] != 0;
    out->notfound_ok = v[P_NOTFOUND_OK] != 0;
    out->basic_quorum = v[P_BASIC_QUORUM] != 0;
    out->store = store_props_default(true);
    out->store.allow_mult = out->allow_mult;
    out->store.last_write_wins = out->last_write_wins;
    out->store.prune.small_vclock = v[P_SMALL_VCLOCK];
    out->store.prune.big_vclock = v[P_BIG_VCLOCK];
    out->store.prune.young_vclock = v[P_YOUNG_VCLOCK];
    out->store.prune.old_vclock = v[P_OLD_VCLOCK];
    out->store.obj_warn = cfg->object_warn_bytes;
    out->store.obj_max = cfg->object_max_bytes;
    out->store.sib_warn = cfg->siblings_warn;
    out->store.sib_max = cfg->siblings_max;
}

static bool is_default_type(const void *type, size_t len)
{
    return !type || len == 0 || (len == 7 && memcmp(type, "default", 7) == 0);
}

int bucket_props_get(bucket_store_t *bs, const void *type, size_t type_len, const void *bucket,
                     size_t bucket_len, bucket_props_t *out)
{
    if (!bs || !out || !is_default_type(type, type_len))
        return -1;
    uint32_t v[P_COUNT];
    pthread_rwlock_rdlock(&bs->lock);
    const bucket_entry_t *e =
        bucket ? table_find(bs, bucket, bucket_len, fnv1a(FNV_INIT, bucket, bucket_len)) : NULL;
    effective(bs->cfg, e ? &e->over : NULL, v);
    pthread_rwlock_unlock(&bs->lock);
    props_fill(bs->cfg, v, out);
    return 0;
}

/* ---------------------------------------------------------------- parsing and validation */

static bool bytes_eq(protobuf_c_boolean has, ProtobufCBinaryData d, const char *s)
{
    return has && d.len == strlen(s) && memcmp(d.data, s, d.len) == 0;
}

static bool modfun_is(const Riak__RpbModFun *mf, const char *mod, const char *fun)
{
    return bytes_eq(mf->has_module, mf->module, mod) && bytes_eq(mf->has_function, mf->function, fun);
}

/* The name of the first unsupported property set to something else than its default,
 * or NULL. */
static const char *unsupported_prop(const Riak__RpbBucketProps *p)
{
    if (p->n_precommit || (p->has_has_precommit && p->has_precommit))
        return "precommit";
    if (p->n_postcommit || (p->has_has_postcommit && p->has_postcommit))
        return "postcommit";
    if (p->chash_keyfun && !modfun_is(p->chash_keyfun, "riak_core_util", "chash_std_keyfun"))
        return "chash_keyfun";
    if (p->linkfun && !modfun_is(p->linkfun, "riak_kv_wm_link_walker", "mapreduce_linkfun"))
        return "linkfun";
    if (p->has_backend && p->backend.len)
        return "backend";
    if (p->has_search && p->search)
        return "search";
    if (p->has_repl && p->repl != RIAK__RPB_BUCKET_PROPS__RPB_REPL_MODE__FALSE)
        return "repl";
    if (p->has_search_index && p->search_index.len)
        return "search_index";
    if (p->has_datatype && p->datatype.len)
        return "datatype";
    if (p->has_consistent && p->consistent)
        return "consistent";
    if (p->has_write_once && p->write_once)
        return "write_once";
    if (p->has_hll_precision && p->hll_precision != HLL_PRECISION_DEFAULT)
        return "hll_precision";
    return NULL;
}

/* The supported properties present in p, as a delta (no validation). */
static bucket_over_t delta_of(const Riak__RpbBucketProps *p)
{
    bucket_over_t d = {0};
#define TAKE(idx, field)                                                                   \
    do {                                                                                   \
        if (p->has_##field) {                                                              \
            d.has |= 1u << (idx);                                                          \
            d.v[idx] = (uint32_t)p->field;                                                 \
        }                                                                                  \
    } while (0)
    TAKE(P_N_VAL, n_val);
    TAKE(P_ALLOW_MULT, allow_mult);
    TAKE(P_LWW, last_write_wins);
    TAKE(P_R, r);
    TAKE(P_W, w);
    TAKE(P_PR, pr);
    TAKE(P_PW, pw);
    TAKE(P_DW, dw);
    TAKE(P_RW, rw);
    TAKE(P_NOTFOUND_OK, notfound_ok);
    TAKE(P_BASIC_QUORUM, basic_quorum);
    TAKE(P_SMALL_VCLOCK, small_vclock);
    TAKE(P_BIG_VCLOCK, big_vclock);
    TAKE(P_YOUNG_VCLOCK, young_vclock);
    TAKE(P_OLD_VCLOCK, old_vclock);
#undef TAKE
    return d;
}

static bool is_symbolic(uint32_t q)
{
    return q >= NODE_QUORUM_DEFAULT && q <= NODE_QUORUM_ONE;
}

/* Checks a bucket's overrides against the defaults they merge with. 0, or -1 with the
 * reason in err. */
static int validate(const node_config_t *cfg, const bucket_over_t *over, char *err, size_t errlen)
{
    uint32_t v[P_COUNT];
    effective(cfg, over, v);
    uint32_t ring = cfg->ring_size ? cfg->ring_size : RING_MAX_PARTITIONS;
    if (v[P_N_VAL] < 1 || v[P_N_VAL] > ring) {
        snprintf(err, errlen, "n_val: %" PRIu32 " is not between 1 and the ring size (%" PRIu32 ")",
                 v[P_N_VAL], ring);
        return -1;
    }
    for (int i = P_R; i <= P_RW; i++) {
        if (!(over->has & (1u << i)) && !(over->has & (1u << P_N_VAL)))
            continue; /* an untouched default was validated with the config */
        if (!is_symbolic(v[i]) && v[i] > v[P_N_VAL]) {
            snprintf(err, errlen,
                     "%s: %" PRIu32 " is greater than n_val (%" PRIu32 "); use a number up to "
                     "n_val or one, quorum, all, default",
                     prop_name[i], v[i], v[P_N_VAL]);
            return -1;
        }
    }
    if (v[P_ALLOW_MULT] && v[P_LWW]) {
        snprintf(err, errlen, "allow_mult and last_write_wins cannot both be true");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the file */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The RpbBucketProps of an override (every pointer borrowed from nothing: plain values). */
static void props_msg_of(const bucket_over_t *o, Riak__RpbBucketProps *p)
{
    riak__rpb_bucket_props__init(p);
#define PUT(idx, field, type)                                                              \
    do {                                                                                   \
        if (o->has & (1u << (idx))) {                                                      \
            p->has_##field = 1;                                                            \
            p->field = (type)o->v[idx];                                                    \
        }                                                                                  \
    } while (0)
    PUT(P_N_VAL, n_val, uint32_t);
    PUT(P_ALLOW_MULT, allow_mult, protobuf_c_boolean);
    PUT(P_LWW, last_write_wins, protobuf_c_boolean);
    PUT(P_R, r, uint32_t);
    PUT(P_W, w, uint32_t);
    PUT(P_PR, pr, uint32_t);
    PUT(P_PW, pw, uint32_t);
    PUT(P_DW, dw, uint32_t);
    PUT(P_RW, rw, uint32_t);
    PUT(P_NOTFOUND_OK, notfound_ok, protobuf_c_boolean);
    PUT(P_BASIC_QUORUM, basic_quorum, protobuf_c_boolean);
    PUT(P_SMALL_VCLOCK, small_vclock, uint32_t);
    PUT(P_BIG_VCLOCK, big_vclock, uint32_t);
    PUT(P_YOUNG_VCLOCK, young_vclock, uint32_t);
    PUT(P_OLD_VCLOCK, old_vclock, uint32_t);
#undef PUT
}

typedef struct buf_s {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static uint8_t *buf_room(buf_t *b, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    uint8_t *at = b->p + b->n;
    b->n += n;
    return at;
}

static void append_record(buf_t *b, const uint8_t *name, size_t len, const bucket_over_t *o)
{
    Riak__RpbBucketProps props;
    props_msg_of(o, &props);
    Riak__RpbSetBucketReq rec = RIAK__RPB_SET_BUCKET_REQ__INIT;
    rec.has_bucket = 1;
    rec.bucket.data = (uint8_t *)name;
    rec.bucket.len = len;
    rec.has_type = 1;
    rec.type.data = (uint8_t *)"default";
    rec.type.len = 7;
    rec.props = &props;
    size_t n = riak__rpb_set_bucket_req__get_packed_size(&rec);
    put_u32(buf_room(b, 4), (uint32_t)n);
    riak__rpb_set_bucket_req__pack(&rec, buf_room(b, n));
}

/* The file's bytes for the current table with (name, over) applied. Caller holds write_mx
 * (the only writer of the table, so reading it needs no lock). */
static void serialize(const bucket_store_t *bs, const uint8_t *name, size_t len,
                      const bucket_over_t *over, buf_t *b)
{
    memcpy(buf_room(b, 8), BUCKET_FILE_MAGIC, 8);
    put_u32(buf_room(b, 4), BUCKET_FILE_VERSION);
    size_t count_at = b->n;
    buf_room(b, 4);
    uint32_t count = 0;
    bool done = false;
    for (size_t i = 0; i < bs->nslots; i++)
        for (const bucket_entry_t *e = bs->slots[i]; e; e = e->next) {
            bool same = e->name_len == len && memcmp(e->name, name, len) == 0;
            const bucket_over_t *o = same ? over : &e->over;
            done |= same;
            if (o->has) {
                append_record(b, e->name, e->name_len, o);
                count++;
            }
        }
    if (!done && over->has) {
        append_record(b, name, len, over);
        count++;
    }
    put_u32(b->p + count_at, count);
    uint64_t h = fnv1a(FNV_INIT, b->p, b->n);
    uint8_t *t = buf_room(b, 8);
    put_u32(t, (uint32_t)(h >> 32));
    put_u32(t + 4, (uint32_t)h);
}

static int write_file(const char *path, const buf_t *b, char *err, size_t errlen)
{
    char tmp[NODE_CONFIG_STR + 32], dir[NODE_CONFIG_STR + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    (void)mkdir(dir, 0755); /* the data dir normally exists already */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    size_t off = 0;
    while (off < b->n) {
        ssize_t w = write(fd, b->p + off, b->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            errno = e;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        goto fail;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        int rc = fsync(dfd);
        int e = errno;
        close(dfd);
        if (rc != 0) {
            errno = e;
            goto fail;
        }
    }
    return 0;
fail:
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
}

/* Parses the file's bytes into bs's table. 0, or -1 with the reason in err; *invalid is
 * set when the file is intact but holds a value the current configuration refuses. */
static int parse_file(bucket_store_t *bs, const uint8_t *p, size_t n, char *err, size_t errlen,
                      bool *invalid)
{
    if (n < 8 + 4 + 4 + 8 || memcmp(p, BUCKET_FILE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a bucket properties file");
        return -1;
    }
    uint64_t h = fnv1a(FNV_INIT, p, n - 8);
    if (get_u32(p + n - 8) != (uint32_t)(h >> 32) || get_u32(p + n - 4) != (uint32_t)h) {
        snprintf(err, errlen, "checksum mismatch (truncated or damaged)");
        return -1;
    }
    if (get_u32(p + 8) != BUCKET_FILE_VERSION) {
        snprintf(err, errlen, "unknown version %" PRIu32, get_u32(p + 8));
        return -1;
    }
    uint32_t count = get_u32(p + 12);
    size_t off = 16, end = n - 8;
    for (uint32_t i = 0; i < count; i++) {
        if (end - off < 4 || get_u32(p + off) > end - off - 4) {
            snprintf(err, errlen, "record %" PRIu32 " is truncated", i);
            return -1;
        }
        uint32_t len = get_u32(p + off);
        Riak__RpbSetBucketReq *rec = riak__rpb_set_bucket_req__unpack(NULL, len, p + off + 4);
        off += 4 + (size_t)len;
        if (!rec || !rec->has_bucket || rec->bucket.len == 0 || !rec->props ||
            unsupported_prop(rec->props)) {
            if (rec)
                riak__rpb_set_bucket_req__free_unpacked(rec, NULL);
            snprintf(err, errlen, "record %" PRIu32 " is malformed", i);
            return -1;
        }
        bucket_over_t o = delta_of(rec->props);
        char why[256];
        if (validate(bs->cfg, &o, why, sizeof why) != 0) {
            *invalid = true;
            snprintf(err, errlen, "bucket %.*s: %s", (int)(rec->bucket.len > 64 ? 64 : rec->bucket.len),
                     (const char *)rec->bucket.data, why);
            riak__rpb_set_bucket_req__free_unpacked(rec, NULL);
            return -1;
        }
        table_set(bs, rec->bucket.data, rec->bucket.len, &o);
        riak__rpb_set_bucket_req__free_unpacked(rec, NULL);
    }
    if (off != end) {
        snprintf(err, errlen, "trailing bytes after %" PRIu32 " records", count);
        return -1;
    }
    return 0;
}

static int load_file(bucket_store_t *bs, char *err, size_t errlen)
{
    int fd = open(bs->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", bs->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > BUCKET_FILE_MAX) {
        close(fd);
        snprintf(err, errlen, "%s: unreadable or larger than %u bytes", bs->path, BUCKET_FILE_MAX);
        return -1;
    }
    size_t n = (size_t)st.st_size, off = 0;
    uint8_t *p = xmalloc(n);
    while (off < n) {
        ssize_t r = read(fd, p + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    char why[300];
    bool invalid = false;
    int rc = off == n ? parse_file(bs, p, n, why, sizeof why, &invalid) : -1;
    if (off != n)
        snprintf(why, sizeof why, "short read");
    free(p);
    if (rc != 0) {
        snprintf(err, errlen, "%s %s: %s (fix the configuration or move the file away to start "
                 "with default bucket properties)", bs->path,
                 invalid ? "holds a value the configuration refuses" : "is corrupt", why);
        table_free(bs);
        return -1;
    }
    return 0;
}

bucket_store_t *bucket_store_open(const node_config_t *cfg, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!cfg) {
        snprintf(err, errlen, "bucket_store_open: no configuration");
        return NULL;
    }
    bucket_store_t *bs = calloc(1, sizeof *bs);
    if (!bs)
        abort();
    bs->cfg = cfg;
    if (asprintf(&bs->path, "%s/buckets", cfg->data_dir[0] ? cfg->data_dir : ".") < 0)
        abort();
    pthread_rwlock_init(&bs->lock, NULL);
    pthread_mutex_init(&bs->write_mx, NULL);
    if (load_file(bs, err, errlen) != 0) {
        bucket_store_close(bs);
        return NULL;
    }
    return bs;
}

void bucket_store_close(bucket_store_t *bs)
{
    if (!bs)
        return;
    table_free(bs);
    pthread_rwlock_destroy(&bs->lock);
    pthread_mutex_destroy(&bs->write_mx);
    free(bs->path);
    free(bs);
}

/* Persists then applies a bucket's new overrides (has == 0: reset). 0, or -1 with err. */
static int commit(bucket_store_t *bs, const uint8_t *name, size_t len, const bucket_over_t *over,
                  char *err, size_t errlen)
{
    buf_t b = {0};
    serialize(bs, name, len, over, &b);
    int rc = write_file(bs->path, &b, err, errlen);
    free(b.p);
    if (rc != 0)
        return -1;
    pthread_rwlock_wrlock(&bs->lock);
    table_set(bs, name, len, over);
    pthread_rwlock_unlock(&bs->lock);
    return 0;
}

/* ---------------------------------------------------------------- client entry points */

static rt_msg_t *invalid_type(uint64_t req_id, ProtobufCBinaryData t)
{
    return kv_reply_error(req_id, "Invalid bucket type: %.*s", (int)(t.len > 256 ? 256 : t.len),
                          (const char *)t.data);
}

static rt_msg_t *props_reply(uint64_t req_id, const uint32_t v[P_COUNT])
{
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    bucket_over_t all = {.has = (1u << P_COUNT) - 1};
    memcpy(all.v, v, sizeof all.v);
    props_msg_of(&all, &p);
    Riak__RpbModFun keyfun = RIAK__RPB_MOD_FUN__INIT, linkfun = RIAK__RPB_MOD_FUN__INIT;
    keyfun.has_module = keyfun.has_function = 1;
    keyfun.module = (ProtobufCBinaryData){14, (uint8_t *)"riak_core_util"};
    keyfun.function = (ProtobufCBinaryData){16, (uint8_t *)"chash_std_keyfun"};
    linkfun.has_module = linkfun.has_function = 1;
    linkfun.module = (ProtobufCBinaryData){22, (uint8_t *)"riak_kv_wm_link_walker"};
    linkfun.function = (ProtobufCBinaryData){17, (uint8_t *)"mapreduce_linkfun"};
    p.chash_keyfun = &keyfun;
    p.linkfun = &linkfun;
    p.has_has_precommit = 1;
    p.has_precommit = 0;
    p.has_has_postcommit = 1;
    p.has_postcommit = 0;
    Riak__RpbGetBucketResp resp = RIAK__RPB_GET_BUCKET_RESP__INIT;
    resp.props = &p;
    return kv_reply_new(req_id, false, PB_CODE_GET_BUCKET_RESP, &resp.base);
}

rt_msg_t *kv_bucket_get(kv_node_t *kv, uint64_t req_id, const Riak__RpbGetBucketReq *req)
{
    if (!req || !req->has_bucket || req->bucket.len == 0)
        return kv_reply_error(req_id, "Bucket cannot be zero-length");
    if (req->has_type && !is_default_type(req->type.data, req->type.len))
        return invalid_type(req_id, req->type);
    bucket_store_t *bs = kv->buckets;
    uint32_t v[P_COUNT];
    pthread_rwlock_rdlock(&bs->lock);
    const bucket_entry_t *e = table_find(bs, req->bucket.data, req->bucket.len,
                                         fnv1a(FNV_INIT, req->bucket.data, req->bucket.len));
    effective(bs->cfg, e ? &e->over : NULL, v);
    pthread_rwlock_unlock(&bs->lock);
    return props_reply(req_id, v);
}

rt_msg_t *kv_bucket_set(kv_node_t *kv, uint64_t req_id, const Riak__RpbSetBucketReq *req)
{
    if (!req || !req->has_bucket || req->bucket.len == 0)
        return kv_reply_error(req_id, "Bucket cannot be zero-length");
    if (!req->props)
        return kv_reply_error(req_id, "missing required field props");
    if (req->has_type && !is_default_type(req->type.data, req->type.len))
        return invalid_type(req_id, req->type);
    const char *bad = unsupported_prop(req->props);
    if (bad)
        return kv_reply_error(req_id, "Invalid bucket properties: %s: not supported by Cairn "
                              "(only its default value is accepted)", bad);
    bucket_store_t *bs = kv->buckets;
    bucket_over_t delta = delta_of(req->props);
    char err[512];
    rt_msg_t *reply = NULL;
    pthread_mutex_lock(&bs->write_mx);
    const bucket_entry_t *e = table_find(bs, req->bucket.data, req->bucket.len,
                                         fnv1a(FNV_INIT, req->bucket.data, req->bucket.len));
    bucket_over_t over = e ? e->over : (bucket_over_t){0};
    for (int i = 0; i < P_COUNT; i++)
        if (delta.has & (1u << i)) {
            over.has |= 1u << i;
            over.v[i] = delta.v[i];
        }
    if (validate(bs->cfg, &over, err, sizeof err) != 0)
        reply = kv_reply_error(req_id, "Invalid bucket properties: %s", err);
    else if (delta.has && commit(bs, req->bucket.data, req->bucket.len, &over, err, sizeof err) != 0)
        reply = kv_reply_error(req_id, "Bucket properties not saved: %s", err);
    else
        reply = kv_reply_new(req_id, false, PB_CODE_SET_BUCKET_RESP, NULL);
    pthread_mutex_unlock(&bs->write_mx);
    return reply;
}

rt_msg_t *kv_bucket_reset(kv_node_t *kv, uint64_t req_id, const Riak__RpbResetBucketReq *req)
{
    if (!req || !req->has_bucket || req->bucket.len == 0)
        return kv_reply_error(req_id, "Bucket cannot be zero-length");
    if (req->has_type && !is_default_type(req->type.data, req->type.len))
        return invalid_type(req_id, req->type);
    bucket_store_t *bs = kv->buckets;
    char err[512];
    rt_msg_t *reply = NULL;
    pthread_mutex_lock(&bs->write_mx);
    const bucket_entry_t *e = table_find(bs, req->bucket.data, req->bucket.len,
                                         fnv1a(FNV_INIT, req->bucket.data, req->bucket.len));
    bucket_over_t none = {0};
    if (e && commit(bs, req->bucket.data, req->bucket.len, &none, err, sizeof err) != 0)
        reply = kv_reply_error(req_id, "Bucket properties not saved: %s", err);
    else
        reply = kv_reply_new(req_id, false, PB_CODE_RESET_BUCKET_RESP, NULL);
    pthread_mutex_unlock(&bs->write_mx);
    return reply;
}

rt_msg_t *kv_bucket_type_get(kv_node_t *kv, uint64_t req_id, const Riak__RpbGetBucketTypeReq *req)
{
    if (!req || !req->has_type || req->type.len == 0)
        return kv_reply_error(req_id, "Bucket type cannot be zero-length");
    if (!is_default_type(req->type.data, req->type.len))
        return invalid_type(req_id, req->type);
    uint32_t v[P_COUNT];
    effective(kv->buckets->cfg, NULL, v);
    return props_reply(req_id, v);
}

rt_msg_t *kv_bucket_type_set(kv_node_t *kv, uint64_t req_id, const Riak__RpbSetBucketTypeReq *req)
{
    (void)kv;
    if (!req || !req->has_type || req->type.len == 0)
        return kv_reply_error(req_id, "Bucket type cannot be zero-length");
    if (!is_default_type(req->type.data, req->type.len))
        return invalid_type(req_id, req->type);
    return kv_reply_error(req_id, "The properties of bucket type default come from the node's "
                          "configuration and cannot be changed at run time; set them per "
                          "bucket instead");
}
