/*
 * vnode.c — vnodes (node/vnode.h): one process per partition, owning that partition's
 * backend, serving the KV_MSG_VNODE_* requests of proto/kv.proto one at a time; the vnode
 * supervisor; the partition -> pid table; and the fold access the lister (node/list.c) uses
 * from the worker pool.
 *
 * Identity and dots. A vnode writes with actor store_actor_make(node_id, partition, epoch).
 * Its metadata record holds the epoch and the end of its counter lease. The storage API
 * only takes object keys (storage/key.h: every encoded key starts with 0x10, and there is no
 * raw-key operation), and a reserved object key would be visited by every fold and make
 * store_is_empty false for an empty partition. So the record lives beside the data, in the
 * partition's directory (<data_dir>/leveldb/<p>/CAIRN-VNODE; in the partition layout that is
 * the partition's LevelDB directory, and LevelDB ignores files whose names it does not own),
 * written atomically (temp file, fsync, rename, fsync of the directory). A retired vnode
 * removes the directory (with the partition layout's data files). The memory backend keeps
 * nothing across a restart, so it has no record: every start is a fresh epoch.
 *   - No (or unreadable) record: a fresh epoch, max(Unix seconds now, last epoch this
 *     process used for the partition + 1), and the write sequence starts at 0. A vnode that
 *     lost its record thus becomes a new actor and never reuses a dot. (Residual risk: the
 *     wall clock stepping back across a restart that also lost the record.)
 *   - A record: same epoch, and the write sequence resumes at the lease end, which no
 *     counter handed out before can have reached.
 *   - Counter lease: each coordinated write passes counter_floor = ++seq to
 *     store_obj_coord_put; seq never passes lease_end, which is persisted (synced) a block of
 *     VNODE_LEASE_BLOCK ahead before any counter beyond the old end is used.
 *
 * Folds from the worker pool (vnode_fold). A backend belongs to its vnode, but listing folds
 * it from a worker thread while the vnode keeps serving, through the partition's slot
 * (a mutex plus the published backend pointer):
 *   - LevelDB: a fold is an iterator on an implicit snapshot, safe beside the vnode's
 *     writes, so the vnode does not take the slot lock for its own operations. After an
 *     operation failed, ldb.c closes and reopens the database at the next operation; it
 *     does so holding the database's rwlock exclusively (every operation and fold holds it
 *     shared), and the vnode also takes the slot lock for its operations until one
 *     succeeds.
 *   - memory: mem.c's skip list is not safe for a reader beside a writer, so the vnode takes
 *     the slot lock around every operation on a memory backend (it is for tests and
 *     experiments; a fold holds the lock for one bounded chunk at a time).
 *   - terminate takes the slot lock (waiting for at most one running chunk), unpublishes the
 *     backend and closes it: a fold never sees a closed backend (it gets STORE_ECLOSED).
 *
 * Durability: a reply is sent only after the backend write returned. With
 * STORE_SYNC_INTERVAL a timer calls store_sync every sync_interval_ms.
 *
 * Grouped writes (node/write_queue.h; vnode.write_thread). A put's write goes to the node's
 * write queue, which writes it with others in one group: at the end of the scheduler's pass
 * (default), or on the writer thread.
 * While it is out the vnode is "waiting": every other message it receives is kept, in
 * order, in its own FIFO (rt_msg_keep), and handled once VNODE_MSG_WRITE_DONE has arrived
 * and the put has been answered. So the vnode still handles one request at a time and each
 * sees every write before it, exactly as when it writes inline; the cache is updated when
 * the write is done, as before. The inline path remains for the memory backend and after an
 * error (the slot lock must be held, see above).
 * terminate waits for a write that is still out before it closes the backend.
 */
#include "node/vnode.h"

#include "node/kvobj.h"
#include "node/write_queue.h"
#include "runtime/sup.h"
#include "storage/object.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VNODE_LEASE_BLOCK 10000u
/* Restart intensity of the vnode supervisor. Riak's is 10 per 10 s, but Riak does not let
 * its supervisor restart vnodes (its vnode manager does). Here the supervisor does, and a
 * vnode crash is local to one partition (its data is reopened from disk), so escalating to
 * the node after a few crashes would turn one bad partition into a node outage; tests also
 * crash vnodes on purpose dozens of times in a row. 1000 per 10 s still stops a vnode that
 * can never start (every failed init counts) within a second or two. */
#define VNODE_SUP_INTENSITY 1000u
#define VNODE_SUP_PERIOD_MS 10000u
#define VNODE_SHUTDOWN_MS 10000u /* closing LevelDB may wait for a compaction step */
#define VNODE_META_FILE "CAIRN-VNODE"
#define VNODE_META_MAGIC "cairn-vnode-meta"

enum {
    VNODE_MSG_SYNC_TICK = KV_MSG_PRIVATE + 0,
    VNODE_MSG_WRITE_DONE = KV_MSG_PRIVATE + 4, /* from the write queue: the write is done */
};

static const store_slice_t default_type = {(const uint8_t *)"default", 7};

/* ---------------------------------------------------------------- the table */

typedef struct vnode_slot_s {
    pthread_mutex_t lock;       /* held by a fold chunk, by terminate, and by the vnode's own
                                 * operations when they must not run beside a fold */
    store_backend_t *backend;   /* the live vnode's backend (NULL: none); guarded by lock */
} vnode_slot_t;

struct vnode_table_s {
    uint32_t q;
    /* id << 32 | serial of the live vnode (node is always 0: local), 0 while none. Written
     * by the vnode itself (init, terminate), read by coordinators on any thread: relaxed
     * loads suffice because a stale pid only yields a CALL_FAILED. */
    _Atomic uint64_t *pids;
    /* The last epoch a vnode of this partition used in this process (fresh epochs go
     * above it). Only touched by vnode init, which runs one at a time per partition. */
    _Atomic uint32_t *last_epoch;
    vnode_slot_t *slots;
};

vnode_table_t *vnode_table_new(uint32_t q)
{
    if (q == 0 || q > RING_MAX_PARTITIONS)
        return NULL;
    vnode_table_t *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->q = q;
    t->pids = calloc(q, sizeof *t->pids);
    t->last_epoch = calloc(q, sizeof *t->last_epoch);
    t->slots = calloc(q, sizeof *t->slots);
    if (!t->pids || !t->last_epoch || !t->slots)
        abort();
    for (uint32_t p = 0; p < q; p++)
        pthread_mutex_init(&t->slots[p].lock, NULL);
    return t;
}

void vnode_table_free(vnode_table_t *t)
{
    if (!t)
        return;
    for (uint32_t p = 0; p < t->q; p++)
        pthread_mutex_destroy(&t->slots[p].lock);
    free(t->pids);
    free(t->last_epoch);
    free(t->slots);
    free(t);
}

static uint64_t pid_pack(rt_pid_t p)
{
    return (uint64_t)p.id << 32 | p.serial;
}

rt_pid_t vnode_pid(const kv_node_t *kv, uint32_t partition)
{
    if (!kv || !kv->vnodes || partition >= kv->vnodes->q)
        return RT_NOPID;
    uint64_t v = atomic_load_explicit(&kv->vnodes->pids[partition], memory_order_relaxed);
    if (v == 0)
        return RT_NOPID;
    return (rt_pid_t){0, (uint32_t)(v >> 32), (uint32_t)v};
}

/* The directory under which the partitions' LevelDB directories live (leveldb/<p>). */
static const char *data_root(const kv_node_t *kv)
{
    return kv->cfg && kv->cfg->storage.data_dir ? kv->cfg->storage.data_dir
           : kv->cfg                            ? kv->cfg->data_dir
                                                : ".";
}

bool vnode_has_data_dir(const kv_node_t *kv, uint32_t partition)
{
    if (!kv || !kv->cfg || kv->cfg->storage.kind == STORE_ENGINE_MEMORY)
        return false;
    char path[4200];
    snprintf(path, sizeof path, "%s/leveldb/%" PRIu32, data_root(kv), partition);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool vnode_is_local(const kv_node_t *kv, uint32_t partition)
{
    if (!kv || !kv->states)
        return false;
    const cstate_t *cs = kv_cstate(kv);
    const ring_t *r = cstate_ring(cs);
    if (partition >= ring_size(r))
        return false;
    uint32_t me = kv_self_member(kv, cs);
    return me != CSTATE_NONE && ring_owner(r, partition) == me;
}

bool vnode_should_run(const kv_node_t *kv, uint32_t partition)
{
    if (vnode_is_local(kv, partition))
        return true;
    if (!kv || !kv->states)
        return false;
    const cstate_t *cs = kv_cstate(kv);
    if (partition >= cstate_size(cs))
        return false;
    uint32_t me = kv_self_member(kv, cs);
    return me != CSTATE_NONE && cstate_next_owner(cs, partition) == me;
}

void vnode_name(uint32_t partition, char *buf, size_t len)
{
    snprintf(buf, len, "vnode/%" PRIu32, partition);
}

int vnode_fold(const kv_node_t *kv, uint32_t partition, const store_fold_t *f,
               store_fold_fn fn, void *arg, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!kv || !kv->vnodes || partition >= kv->vnodes->q || !fn)
        return STORE_EINVAL;
    vnode_slot_t *s = &kv->vnodes->slots[partition];
    pthread_mutex_lock(&s->lock);
    int rc = STORE_ECLOSED;
    if (s->backend) {
        rc = store_fold(s->backend, f, fn, arg);
        if (rc < 0 && errbuf && errlen)
            snprintf(errbuf, errlen, "%s", store_errmsg(s->backend));
    } else if (errbuf && errlen) {
        snprintf(errbuf, errlen, "vnode %" PRIu32 " is restarting", partition);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---------------------------------------------------------------- the vnode's state */

typedef struct vnode_s {
    kv_node_t *kv;
    uint32_t partition;
    rt_pid_t self;
    store_backend_t *backend;
    store_cache_t *cache;   /* recently used objects (NULL: off); kept coherent by vn_* */
    vnode_slot_t *slot;
    bool is_memory;         /* lock every operation (see the top of the file) */
    bool after_error;       /* the last operation failed: lock until one succeeds */
    uint32_t epoch;
    store_actor_t actor;
    uint64_t seq;           /* last counter floor handed out */
    uint64_t lease_end;     /* persisted: seq never exceeds it */
    char *meta_path;        /* NULL for the memory backend */
    bool published;
    bool retired;           /* VNODE_MSG_RETIRE succeeded: terminate removes the data */
    /* The put whose write is on the writer thread (active: the vnode is waiting). */
    struct {
        bool active;
        wq_job_t job;           /* job.key = &key, job.val = bytes */
        rt_msg_t *req;          /* the request, owned while waiting: key points into it */
        store_key_t key;
        Cairn__Kv__VnodePutResp *resp;
        uint8_t *bytes;         /* the encoded object (owned) */
        size_t len;
        bool coordinated;       /* the reply carries the object */
    } wait;
    /* Messages received while waiting, oldest first: owned (rt_msg_keep), handled after. */
    rt_msg_t **kept;
    size_t kept_head, kept_n, kept_cap;
} vnode_t;

/* ---------------------------------------------------------------- backend operations */

static bool op_begin(vnode_t *v)
{
    bool locked = v->is_memory || v->after_error;
    if (locked)
        pthread_mutex_lock(&v->slot->lock);
    return locked;
}

static int op_end(vnode_t *v, bool locked, int rc, char *err, size_t errlen)
{
    v->after_error = rc < 0 && rc != STORE_ENOTFOUND;
    if (rc < 0 && rc != STORE_ENOTFOUND && err)
        snprintf(err, errlen, "%s", store_errmsg(v->backend)[0] ? store_errmsg(v->backend)
                                                                : store_strerror(rc));
    if (locked)
        pthread_mutex_unlock(&v->slot->lock);
    return rc;
}

uint64_t vnode_cache_limit(const node_config_t *cfg)
{
    return cfg->storage.kind == STORE_ENGINE_MEMORY ? 0 : cfg->vnode_cache_bytes;
}

/* The object cache (storage/cache.h) stays coherent because these three (and the write
 * queue's put, finished by put_write_done) are the only writers of the backend: a read fills
 * it, a successful write replaces the entry, and a failed write or a delete drops it (after a
 * failure the backend is the only truth). */
static int vn_get(vnode_t *v, const store_key_t *k, store_val_t *out, char *err, size_t errlen)
{
    if (store_cache_get(v->cache, k, out))
        return 0;
    bool locked = op_begin(v);
    int rc = store_get(v->backend, k, out);
    if (rc == 0)
        store_cache_put(v->cache, k, out->p, out->n);
    return op_end(v, locked, rc, err, errlen);
}

/* The cache after a write of val under k that returned rc (inline or on the writer). */
static void cache_written(vnode_t *v, const store_key_t *k, const void *val, size_t len, int rc)
{
    if (rc == 0)
        store_cache_put(v->cache, k, val, len);
    else
        store_cache_erase(v->cache, k);
}

static int vn_put(vnode_t *v, const store_key_t *k, const void *val, size_t len, char *err,
                  size_t errlen)
{
    bool locked = op_begin(v);
    int rc = store_put(v->backend, k, val, len);
    cache_written(v, k, val, len, rc);
    return op_end(v, locked, rc, err, errlen);
}

static int vn_del(vnode_t *v, const store_key_t *k, char *err, size_t errlen)
{
    store_cache_erase(v->cache, k);
    bool locked = op_begin(v);
    return op_end(v, locked, store_del(v->backend, k), err, errlen);
}

static int vn_is_empty(vnode_t *v, char *err, size_t errlen)
{
    bool locked = op_begin(v);
    return op_end(v, locked, store_is_empty(v->backend), err, errlen);
}

static int vn_sync(vnode_t *v, char *err, size_t errlen)
{
    bool locked = op_begin(v);
    return op_end(v, locked, store_sync(v->backend), err, errlen);
}

/* ---------------------------------------------------------------- metadata record */

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* 0 with the record, 1 when there is none, -1 when it is unreadable (logged). */
static int meta_load(const vnode_t *v, uint32_t *epoch, uint64_t *lease)
{
    FILE *f = fopen(v->meta_path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        rt_warn("vnode %" PRIu32 ": cannot read %s: %s", v->partition, v->meta_path,
                strerror(errno));
        return -1;
    }
    char line[256];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    unsigned version = 0;
    uint32_t e = 0;
    uint64_t l = 0, check = 0;
    int used = 0;
    if (got && sscanf(line, VNODE_META_MAGIC " %u epoch=%" SCNu32 " lease=%" SCNu64 "%n",
                      &version, &e, &l, &used) == 3 && version == 1 &&
        sscanf(line + used, " check=%" SCNx64, &check) == 1 && check == fnv1a(line, (size_t)used)) {
        *epoch = e;
        *lease = l;
        return 0;
    }
    rt_warn("vnode %" PRIu32 ": %s is corrupt; taking a fresh epoch", v->partition,
            v->meta_path);
    return -1;
}

/* Writes the record atomically and durably. 0, or -1 with the reason in err. */
static int meta_store(const vnode_t *v, uint32_t epoch, uint64_t lease, char *err,
                      size_t errlen)
{
    char line[256];
    int used = snprintf(line, sizeof line, VNODE_META_MAGIC " 1 epoch=%" PRIu32
                        " lease=%" PRIu64, epoch, lease);
    snprintf(line + used, sizeof line - (size_t)used, " check=%016" PRIx64 "\n",
             fnv1a(line, (size_t)used));
    size_t len = strlen(line);

    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", v->meta_path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "metadata path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    if (write(fd, line, len) != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e ? e : EIO;
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, v->meta_path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        goto fail;
    }
    /* the rename itself is durable once the directory is synced */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", v->meta_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        goto fail;
    int rc = fsync(dfd);
    int e = errno;
    close(dfd);
    errno = e;
    if (rc != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot write %s: %s", v->meta_path, strerror(errno));
    return -1;
}

/* The next counter floor, renewing the lease first when it is used up. 0 on failure
 * (the reason in err): the write must not proceed. */
static uint64_t lease_next(vnode_t *v, char *err, size_t errlen)
{
    if (v->seq >= v->lease_end) {
        uint64_t end = v->seq + VNODE_LEASE_BLOCK;
        if (v->meta_path && meta_store(v, v->epoch, end, err, errlen) != 0)
            return 0;
        v->lease_end = end;
    }
    return ++v->seq;
}

static uint32_t fresh_epoch(vnode_table_t *t, uint32_t p)
{
    uint32_t now = (uint32_t)time(NULL);
    uint32_t last = atomic_load_explicit(&t->last_epoch[p], memory_order_relaxed);
    return now > last ? now : last + 1;
}

/* ---------------------------------------------------------------- content stamping
 * The conversion riak.RpbContent -> store_content_t is kvobj_content_from_pb (node/kvobj.c);
 * the vnode adds what a write gets when the client did not send it, as Riak does: the
 * last-modified time (now) and a fresh vtag. */

static void new_vtag(char out[23])
{
    static const char digits[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = rt_make_ref() * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
    for (int i = 0; i < 22; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = digits[x % 62];
    }
    out[22] = '\0';
}

/* Fills c from rc (slices borrow rc and vtag_buf; release with kvobj_content_release). */
static void content_of(const Riak__RpbContent *rc, store_content_t *c, char vtag_buf[23])
{
    kvobj_content_from_pb(rc, c);
    if (c->vtag.n == 0) {
        new_vtag(vtag_buf);
        c->vtag = (store_slice_t){(const uint8_t *)vtag_buf, 22};
    }
    if (!rc->has_last_mod) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->last_mod = (uint32_t)ts.tv_sec;
        c->last_mod_usecs = (uint32_t)(ts.tv_nsec / 1000);
    }
}

/* ---------------------------------------------------------------- requests */

/* The storage key of a request (every request names a partition, type, bucket and key).
 * NULL with *out, or why the request is refused: it is addressed to another partition (a
 * sender's routing bug; the text is in a per-thread buffer), or its bucket or key is missing
 * or empty. */
static const char *request_key(const vnode_t *v, protobuf_c_boolean has_partition,
                               uint32_t partition, protobuf_c_boolean has_type,
                               ProtobufCBinaryData type, protobuf_c_boolean has_bucket,
                               ProtobufCBinaryData bucket, protobuf_c_boolean has_key,
                               ProtobufCBinaryData key, store_key_t *out)
{
    static _Thread_local char why[96];
    if (has_partition && partition != v->partition) {
        snprintf(why, sizeof why, "request for partition %" PRIu32 " reached vnode %" PRIu32,
                 partition, v->partition);
        return why;
    }
    out->type = has_type && type.len ? (store_slice_t){type.data, type.len} : default_type;
    out->bucket = (store_slice_t){has_bucket ? bucket.data : NULL, has_bucket ? bucket.len : 0};
    out->key = (store_slice_t){has_key ? key.data : NULL, has_key ? key.len : 0};
    if (!out->bucket.n || !out->key.n)
        return "bucket and key must be present and non-empty";
    return NULL;
}

/* What a request is refused for when its payload is not what its type says (a local sender's
 * bug): the handlers get a NULL request then. */
#define MALFORMED_REQUEST "malformed request"

/* The write's properties: as sent, else the defaults with the configured limits. */
static store_props_t props_of(const vnode_t *v, const Cairn__Kv__WriteProps *wp)
{
    store_props_t p = store_props_default(true);
    if (wp) {
        kvobj_props_from_pb(wp, &p);
    } else if (v->kv->cfg) {
        p.obj_warn = v->kv->cfg->object_warn_bytes;
        p.obj_max = v->kv->cfg->object_max_bytes;
        p.sib_warn = v->kv->cfg->siblings_warn;
        p.sib_max = v->kv->cfg->siblings_max;
    }
    return p;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* Sets a response's outcome to st with the text msg (copied; replaces an earlier text). The
 * three responses share these two fields. */
static void set_failure(Cairn__Kv__Status *status, char **errmsg, Cairn__Kv__Status st,
                        const char *msg)
{
    *status = st;
    free(*errmsg);
    *errmsg = dup_str(msg);
}

static void *xcalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

/* Reads and decodes what the vnode stores under k. 0 with *out (NULL when not found), or
 * -1 with the reason in err. */
static int load_stored(vnode_t *v, const store_key_t *k, store_obj_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    store_val_t val = {0};
    int rc = vn_get(v, k, &val, err, errlen);
    if (rc == STORE_ENOTFOUND)
        return 0;
    if (rc < 0)
        return -1;
    rc = store_obj_decode(val.p, val.n, out);
    store_val_release(&val);
    if (rc < 0) {
        snprintf(err, errlen, "stored object is unreadable: %s", store_strerror(rc));
        return -1;
    }
    return 0;
}

/* The GET reply keeps the backend's value buffer (no copy, no re-encode). */
typedef struct get_resp_box_s {
    Cairn__Kv__VnodeGetResp resp; /* first: the ProtobufCMessage * is the box */
    store_val_t val;
} get_resp_box_t;

static void get_resp_free(ProtobufCMessage *pb)
{
    get_resp_box_t *box = (get_resp_box_t *)(void *)pb;
    store_val_release(&box->val);
    free(box->resp.errmsg);
    free(box);
}

/* The request handlers (handle_get, handle_put, handle_reap) answer the call m with one
 * response. */
static void handle_get(vnode_t *v, rt_msg_t *m, const Cairn__Kv__VnodeGetReq *req)
{
    get_resp_box_t *box = xcalloc(sizeof *box);
    Cairn__Kv__VnodeGetResp *resp = &box->resp;
    cairn__kv__vnode_get_resp__init(resp);
    resp->has_partition = 1;
    resp->partition = v->partition;
    resp->has_status = 1;
    store_key_t k;
    char err[300];
    const char *refused = request_key(v, req->has_partition, req->partition, req->has_type,
                                      req->type, req->has_bucket, req->bucket,
                                      req->has_key, req->key, &k);
    if (refused) {
        set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, refused);
    } else {
        int rc = vn_get(v, &k, &box->val, err, sizeof err);
        if (rc == 0) {
            resp->status = CAIRN__KV__STATUS__OK;
            resp->has_object = 1;
            resp->object.data = box->val.p;
            resp->object.len = box->val.n;
        } else if (rc == STORE_ENOTFOUND) {
            resp->status = CAIRN__KV__STATUS__NOTFOUND;
        } else {
            set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, err);
        }
    }
    rt_reply(rt_call_from(m), rt_msg_pb(KV_MSG_VNODE_GET_RESP, &resp->base, get_resp_free));
}

static void put_fail(Cairn__Kv__VnodePutResp *resp, Cairn__Kv__Status st, const char *msg)
{
    set_failure(&resp->status, &resp->errmsg, st, msg);
}

/* Encodes o into *bytes (malloc'ed). 0, or -1 with the reason in err. */
static int encode_object(const store_obj_t *o, uint8_t **bytes, size_t *len, char *err,
                         size_t errlen)
{
    int rc = store_obj_encode(o, bytes, len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot encode object: %s", store_strerror(rc));
        return -1;
    }
    return 0;
}

/* The two kinds of put decide what to store; handle_put stores it. Each leaves either a
 * failure in resp (and *bytes NULL), or in *bytes the encoded object to write (resp's status
 * then set once it is written), or, for a replica write that changes nothing, *bytes NULL
 * and status OK. */
static void put_coordinated(vnode_t *v, const Cairn__Kv__VnodePutReq *req, const store_key_t *k,
                            Cairn__Kv__VnodePutResp *resp, uint8_t **bytes, size_t *len)
{
    char err[300];
    if (!req->content) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, "coordinated write without content");
        return;
    }
    store_vclock_t ctx = STORE_VCLOCK_INIT;
    if (req->has_context && req->context.len &&
        store_vclock_decode(req->context.data, req->context.len, &ctx) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, "invalid vclock");
        return;
    }
    store_obj_t *stored = NULL, *out = NULL;
    store_content_t content;
    char vtag[23];
    content_of(req->content, &content, vtag);
    store_props_t props = props_of(v, req->props);
    if (load_stored(v, k, &stored, err, sizeof err) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        goto done;
    }
    store_writer_t w = {.actor = v->actor,
                        .now = req->has_now ? req->now : (uint32_t)time(NULL)};
    if ((w.counter_floor = lease_next(v, err, sizeof err)) == 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        goto done;
    }
    unsigned warn = 0;
    int rc = store_obj_coord_put(stored, &ctx, &content, &w, &props, &out, &warn);
    if (rc == STORE_ETOOBIG) {
        put_fail(resp, CAIRN__KV__STATUS__TOO_BIG, "object too large");
        goto done;
    }
    if (rc == STORE_ESIBLINGS) {
        snprintf(err, sizeof err, "too many siblings (max %" PRIu32 ")", props.sib_max);
        put_fail(resp, CAIRN__KV__STATUS__TOO_MANY_SIBLINGS, err);
        goto done;
    }
    if (rc < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, store_strerror(rc));
        goto done;
    }
    if (encode_object(out, bytes, len, err, sizeof err) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        goto done;
    }
    if (warn) {
        resp->has_warn = 1;
        resp->warn = warn;
    }
done:
    store_obj_free(out);
    store_obj_free(stored);
    kvobj_content_release(&content);
    store_vclock_clear(&ctx);
}

static void put_replica(vnode_t *v, const Cairn__Kv__VnodePutReq *req, const store_key_t *k,
                        Cairn__Kv__VnodePutResp *resp, uint8_t **bytes, size_t *len)
{
    char err[300];
    if (!req->has_object) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, "replica write without an object");
        return;
    }
    store_obj_t *in = NULL, *stored = NULL, *out = NULL;
    if (store_obj_decode(req->object.data, req->object.len, &in) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, "invalid object");
        return;
    }
    if (load_stored(v, k, &stored, err, sizeof err) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        goto done;
    }
    store_props_t props = props_of(v, req->props);
    unsigned warn = 0;
    store_obj_merge(stored, in, &props, &out, &warn);
    if ((!stored || !store_obj_equal(out, stored)) &&
        encode_object(out, bytes, len, err, sizeof err) < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        goto done;
    }
    if (!*bytes)
        resp->status = CAIRN__KV__STATUS__OK;
    if (warn) {
        resp->has_warn = 1;
        resp->warn = warn;
    }
done:
    store_obj_free(out);
    store_obj_free(stored);
    store_obj_free(in);
}

/* The outcome of storing bytes (taken): OK, with the object in the reply for a coordinated
 * write (freed with the reply), or the failure. */
static void put_written(Cairn__Kv__VnodePutResp *resp, int rc, const char *err, uint8_t *bytes,
                        size_t len, bool coordinated)
{
    if (rc < 0) {
        put_fail(resp, CAIRN__KV__STATUS__FAILED, err);
        free(bytes);
        return;
    }
    resp->status = CAIRN__KV__STATUS__OK;
    if (coordinated) {
        resp->has_object = 1;
        resp->object.data = bytes;
        resp->object.len = len;
    } else {
        free(bytes);
    }
}

/* Hands the write of bytes under k to the node's write queue when it can (see the top of
 * the file). true: the vnode now waits, owning m, resp and bytes until put_write_done. */
static bool put_write_begin(vnode_t *v, rt_msg_t *m, const store_key_t *k,
                            Cairn__Kv__VnodePutResp *resp, uint8_t *bytes, size_t len,
                            bool coordinated)
{
    write_queue_t *q = v->kv->writes;
    if (!q || v->is_memory || v->after_error)
        return false;
    rt_msg_keep(m); /* no-op for a kept message being handled again: it is ours already */
    v->wait.active = true;
    v->wait.req = m;
    v->wait.key = *k; /* its slices point into m */
    v->wait.resp = resp;
    v->wait.bytes = bytes;
    v->wait.len = len;
    v->wait.coordinated = coordinated;
    v->wait.job = (wq_job_t){.backend = v->backend, .key = &v->wait.key, .val = bytes,
                             .len = len, .reply_to = v->self,
                             .done_type = VNODE_MSG_WRITE_DONE};
    wq_submit(q, &v->wait.job);
    return true;
}

/* VNODE_MSG_WRITE_DONE: what vn_put does after the backend's write, then the reply. */
static void put_write_done(vnode_t *v)
{
    if (!v->wait.active) {
        rt_warn("vnode %" PRIu32 ": write-done with no write out (ignored)", v->partition);
        return;
    }
    int rc = v->wait.job.rc;
    char err[300];
    cache_written(v, &v->wait.key, v->wait.bytes, v->wait.len, rc);
    op_end(v, false, rc, err, sizeof err);
    Cairn__Kv__VnodePutResp *resp = v->wait.resp;
    put_written(resp, rc, err, v->wait.bytes, v->wait.len, v->wait.coordinated);
    rt_reply(rt_call_from(v->wait.req), rt_msg_pb(KV_MSG_VNODE_PUT_RESP, &resp->base, NULL));
    rt_msg_free(v->wait.req);
    v->wait.active = false;
    v->wait.req = NULL;
    v->wait.resp = NULL;
    v->wait.bytes = NULL;
}

static void handle_put(vnode_t *v, rt_msg_t *m, const Cairn__Kv__VnodePutReq *req)
{
    Cairn__Kv__VnodePutResp *resp = xcalloc(sizeof *resp);
    cairn__kv__vnode_put_resp__init(resp);
    resp->has_partition = 1;
    resp->partition = v->partition;
    resp->has_status = 1;
    store_key_t k;
    const char *refused = request_key(v, req->has_partition, req->partition, req->has_type,
                                      req->type, req->has_bucket, req->bucket,
                                      req->has_key, req->key, &k);
    uint8_t *bytes = NULL;
    size_t len = 0;
    bool coordinated = req->has_coordinate && req->coordinate;
    if (refused)
        put_fail(resp, CAIRN__KV__STATUS__FAILED, refused);
    else if (coordinated)
        put_coordinated(v, req, &k, resp, &bytes, &len);
    else
        put_replica(v, req, &k, resp, &bytes, &len);
    if (bytes) {
        if (put_write_begin(v, m, &k, resp, bytes, len, coordinated))
            return; /* answered by put_write_done */
        char err[300];
        int rc = vn_put(v, &k, bytes, len, err, sizeof err);
        put_written(resp, rc, err, bytes, len, coordinated);
    }
    rt_reply(rt_call_from(m), rt_msg_pb(KV_MSG_VNODE_PUT_RESP, &resp->base, NULL));
}

static void handle_reap(vnode_t *v, rt_msg_t *m, const Cairn__Kv__VnodeReapReq *req)
{
    Cairn__Kv__VnodeReapResp *resp = xcalloc(sizeof *resp);
    cairn__kv__vnode_reap_resp__init(resp);
    resp->has_partition = 1;
    resp->partition = v->partition;
    resp->has_status = 1;
    char err[300];
    store_key_t k;
    store_vclock_t clock = STORE_VCLOCK_INIT;
    store_obj_t *stored = NULL;
    const char *refused = request_key(v, req->has_partition, req->partition, req->has_type,
                                      req->type, req->has_bucket, req->bucket,
                                      req->has_key, req->key, &k);
    if (refused) {
        set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, refused);
    } else if (!req->has_clock ||
               store_vclock_decode(req->clock.data, req->clock.len, &clock) < 0) {
        set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, "invalid vclock");
    } else if (load_stored(v, &k, &stored, err, sizeof err) < 0) {
        set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, err);
    } else if (!stored) {
        resp->status = CAIRN__KV__STATUS__OK; /* already gone */
    } else if (!store_obj_is_tombstone(stored) || !store_vclock_equal(&stored->clock, &clock)) {
        resp->status = CAIRN__KV__STATUS__MODIFIED;
    } else if (vn_del(v, &k, err, sizeof err) < 0) {
        set_failure(&resp->status, &resp->errmsg, CAIRN__KV__STATUS__FAILED, err);
    } else {
        resp->status = CAIRN__KV__STATUS__OK;
    }
    store_obj_free(stored);
    store_vclock_clear(&clock);
    rt_reply(rt_call_from(m), rt_msg_pb(KV_MSG_VNODE_REAP_RESP, &resp->base, NULL));
}

static bool pb_is(const ProtobufCMessage *pb, const ProtobufCMessageDescriptor *d)
{
    return pb && pb->descriptor == d;
}

bool vnode_request_partition(const rt_msg_t *m, uint32_t *partition)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (m->type == KV_MSG_VNODE_GET && pb_is(pb, &cairn__kv__vnode_get_req__descriptor)) {
        const Cairn__Kv__VnodeGetReq *r = (const Cairn__Kv__VnodeGetReq *)pb;
        *partition = r->partition;
        return r->has_partition;
    }
    if (m->type == KV_MSG_VNODE_PUT && pb_is(pb, &cairn__kv__vnode_put_req__descriptor)) {
        const Cairn__Kv__VnodePutReq *r = (const Cairn__Kv__VnodePutReq *)pb;
        *partition = r->partition;
        return r->has_partition;
    }
    if (m->type == KV_MSG_VNODE_REAP && pb_is(pb, &cairn__kv__vnode_reap_req__descriptor)) {
        const Cairn__Kv__VnodeReapReq *r = (const Cairn__Kv__VnodeReapReq *)pb;
        *partition = r->partition;
        return r->has_partition;
    }
    return false;
}

void vnode_refuse(rt_msg_t *m, const char *why)
{
    if (!rt_is_call(m))
        return;
    uint32_t p = 0;
    bool has_p = vnode_request_partition(m, &p);
    ProtobufCMessage *resp = NULL;
    uint32_t type = 0;
    if (m->type == KV_MSG_VNODE_GET) {
        Cairn__Kv__VnodeGetResp *r = xcalloc(sizeof *r);
        cairn__kv__vnode_get_resp__init(r);
        r->has_partition = has_p, r->partition = p, r->has_status = 1;
        set_failure(&r->status, &r->errmsg, CAIRN__KV__STATUS__FAILED, why);
        resp = &r->base, type = KV_MSG_VNODE_GET_RESP;
    } else if (m->type == KV_MSG_VNODE_PUT) {
        Cairn__Kv__VnodePutResp *r = xcalloc(sizeof *r);
        cairn__kv__vnode_put_resp__init(r);
        r->has_partition = has_p, r->partition = p, r->has_status = 1;
        set_failure(&r->status, &r->errmsg, CAIRN__KV__STATUS__FAILED, why);
        resp = &r->base, type = KV_MSG_VNODE_PUT_RESP;
    } else if (m->type == KV_MSG_VNODE_REAP) {
        Cairn__Kv__VnodeReapResp *r = xcalloc(sizeof *r);
        cairn__kv__vnode_reap_resp__init(r);
        r->has_partition = has_p, r->partition = p, r->has_status = 1;
        set_failure(&r->status, &r->errmsg, CAIRN__KV__STATUS__FAILED, why);
        resp = &r->base, type = KV_MSG_VNODE_REAP_RESP;
    } else {
        return;
    }
    rt_reply(rt_call_from(m), rt_msg_pb(type, resp, NULL));
}

/* VNODE_MSG_DROP: deletes each object of the batch whose stored bytes are still the ones
 * sent. */
static void handle_drop(vnode_t *v, rt_msg_t *m)
{
    vnode_drop_result_t res = {0};
    Cairn__Kv__HandoffBatch *b = cairn__kv__handoff_batch__unpack(NULL, m->size, m->data);
    if (!b) {
        res.rc = STORE_EINVAL;
    } else {
        char err[300];
        for (size_t i = 0; i < b->n_objects && res.rc == 0; i++) {
            const Cairn__Kv__HandoffObject *o = b->objects[i];
            store_key_t k = {
                .type = o->has_type && o->type.len ? (store_slice_t){o->type.data, o->type.len}
                                                   : default_type,
                .bucket = {o->bucket.data, o->bucket.len},
                .key = {o->key.data, o->key.len}};
            store_val_t cur = {0};
            int rc = vn_get(v, &k, &cur, err, sizeof err);
            if (rc == STORE_ENOTFOUND)
                continue;
            if (rc < 0) {
                res.rc = rc;
                rt_warn("vnode %" PRIu32 ": dropping handed-off data: %s", v->partition, err);
                break;
            }
            bool same = cur.n == o->object.len && memcmp(cur.p, o->object.data, cur.n) == 0;
            store_val_release(&cur);
            if (!same) {
                res.kept++;
                continue;
            }
            if ((rc = vn_del(v, &k, err, sizeof err)) < 0) {
                res.rc = rc;
                rt_warn("vnode %" PRIu32 ": dropping handed-off data: %s", v->partition, err);
                break;
            }
            res.dropped++;
        }
        cairn__kv__handoff_batch__free_unpacked(b, NULL);
    }
    rt_reply(rt_call_from(m), rt_msg_copy(VNODE_MSG_DROP, &res, sizeof res));
}

/* VNODE_MSG_RETIRE: RT_STOP once retired (the reply is sent first). */
static int handle_retire(vnode_t *v, rt_msg_t *m)
{
    char err[300];
    int32_t answer;
    if (vnode_should_run(v->kv, v->partition)) {
        answer = 2;
    } else {
        int rc = vn_is_empty(v, err, sizeof err);
        answer = rc == 1 ? 0 : rc == 0 ? 1 : rc;
        if (rc < 0)
            rt_warn("vnode %" PRIu32 ": cannot retire: %s", v->partition, err);
    }
    rt_reply(rt_call_from(m), rt_msg_copy(VNODE_MSG_RETIRE, &answer, sizeof answer));
    if (answer != 0)
        return RT_CONTINUE;
    v->retired = true;
    rt_info("vnode %" PRIu32 ": retired (its data is with the owner)", v->partition);
    return RT_STOP;
}

/* A request whose payload is not what its type says (a local sender's bug): refused with
 * MALFORMED_REQUEST. */
static void reply_malformed(vnode_t *v, rt_msg_t *m)
{
    if (!rt_is_call(m))
        return;
    rt_warn("vnode %" PRIu32 ": malformed request of type %" PRIu32, v->partition, m->type);
    vnode_refuse(m, MALFORMED_REQUEST);
}

static void arm_sync_timer(vnode_t *v)
{
    const node_config_t *cfg = v->kv->cfg;
    if (cfg && cfg->storage.sync == STORE_SYNC_INTERVAL && cfg->storage.sync_interval_ms)
        rt_send_after(cfg->storage.sync_interval_ms, v->self,
                      rt_msg_new(VNODE_MSG_SYNC_TICK, 0));
}

static int dispatch(vnode_t *v, rt_msg_t *m)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    switch (m->type) {
    case KV_MSG_VNODE_GET:
        if (pb_is(pb, &cairn__kv__vnode_get_req__descriptor))
            handle_get(v, m, (const Cairn__Kv__VnodeGetReq *)pb);
        else
            reply_malformed(v, m);
        return RT_CONTINUE;
    case KV_MSG_VNODE_PUT:
        if (pb_is(pb, &cairn__kv__vnode_put_req__descriptor))
            handle_put(v, m, (const Cairn__Kv__VnodePutReq *)pb);
        else
            reply_malformed(v, m);
        return RT_CONTINUE;
    case KV_MSG_VNODE_REAP:
        if (pb_is(pb, &cairn__kv__vnode_reap_req__descriptor))
            handle_reap(v, m, (const Cairn__Kv__VnodeReapReq *)pb);
        else
            reply_malformed(v, m);
        return RT_CONTINUE;
    case VNODE_MSG_DROP:
        if (rt_is_call(m))
            handle_drop(v, m);
        return RT_CONTINUE;
    case VNODE_MSG_RETIRE:
        return rt_is_call(m) ? handle_retire(v, m) : RT_CONTINUE;
    case KV_MSG_VNODE_CRASH:
        atomic_fetch_add_explicit(&v->kv->stats.vnode_crashes, 1, memory_order_relaxed);
        rt_warn("vnode %" PRIu32 ": crashing on request (debug VNODE_CRASH)", v->partition);
        return -1;
    case VNODE_MSG_SYNC_TICK: {
        char err[300];
        if (vn_sync(v, err, sizeof err) < 0)
            rt_warn("vnode %" PRIu32 ": sync failed: %s", v->partition, err);
        arm_sync_timer(v);
        return RT_CONTINUE;
    }
    default:
        rt_debug("vnode %" PRIu32 ": ignoring message of type %" PRIu32, v->partition, m->type);
        return RT_CONTINUE;
    }
}

/* Keeps m (received while waiting) for later; false when out of memory. */
static bool keep_for_later(vnode_t *v, rt_msg_t *m)
{
    if (v->kept_n == v->kept_cap) {
        size_t cap = v->kept_cap ? v->kept_cap * 2 : 16;
        rt_msg_t **k = malloc(cap * sizeof *k);
        if (!k)
            return false;
        for (size_t i = 0; i < v->kept_n; i++)
            k[i] = v->kept[(v->kept_head + i) % v->kept_cap];
        free(v->kept);
        v->kept = k;
        v->kept_head = 0;
        v->kept_cap = cap;
    }
    rt_msg_keep(m);
    v->kept[(v->kept_head + v->kept_n) % v->kept_cap] = m;
    v->kept_n++;
    return true;
}

static rt_msg_t *take_kept(vnode_t *v)
{
    rt_msg_t *m = v->kept[v->kept_head];
    v->kept_head = (v->kept_head + 1) % v->kept_cap;
    v->kept_n--;
    return m;
}

/* Handles the messages kept while waiting, in order, until one starts a new wait. */
static int handle_kept(vnode_t *v)
{
    while (!v->wait.active && v->kept_n) {
        rt_msg_t *m = take_kept(v);
        int rc = dispatch(v, m);
        if (v->wait.req != m)
            rt_msg_free(m);
        if (rc != RT_CONTINUE)
            return rc; /* the rest are freed by terminate */
    }
    return RT_CONTINUE;
}

static int vnode_handle(void *state, rt_msg_t *m)
{
    vnode_t *v = state;
    if (m->type == VNODE_MSG_WRITE_DONE) {
        put_write_done(v);
        return handle_kept(v);
    }
    if (!v->wait.active)
        return dispatch(v, m);
    if (!keep_for_later(v, m)) {
        vnode_refuse(m, "vnode out of memory");
        rt_warn("vnode %" PRIu32 ": out of memory keeping a message of type %" PRIu32
                " while a write is out (refused)", v->partition, m->type);
    }
    return RT_CONTINUE;
}

/* ---------------------------------------------------------------- lifecycle */

static void vnode_release(vnode_t *v)
{
    if (v->wait.active) { /* the writer must be done with the backend before it closes */
        wq_wait(v->kv->writes, &v->wait.job);
        free(v->wait.bytes);
        if (v->wait.resp)
            cairn__kv__vnode_put_resp__free_unpacked(v->wait.resp, NULL);
        rt_msg_free(v->wait.req);
        v->wait.active = false;
    }
    while (v->kept_n)
        rt_msg_free(take_kept(v));
    free(v->kept);
    v->kept = NULL;
    v->kept_cap = 0;
    if (v->published) {
        uint64_t mine = pid_pack(v->self);
        atomic_compare_exchange_strong(&v->kv->vnodes->pids[v->partition], &mine, 0);
        v->published = false;
    }
    if (v->backend) {
        pthread_mutex_lock(&v->slot->lock); /* waits for a running fold chunk */
        if (v->slot->backend == v->backend)
            v->slot->backend = NULL;
        pthread_mutex_unlock(&v->slot->lock);
        store_close(v->backend);
        v->backend = NULL;
    }
    store_cache_free(v->cache);
    v->cache = NULL;
    free(v->meta_path);
    v->meta_path = NULL;
}

static int vnode_init(void *state, void *arg)
{
    vnode_t *v = state;
    const rt_sup_dynamic_arg_t *dyn = arg;
    v->kv = dyn->arg;
    v->partition = (uint32_t)((uintptr_t)dyn->extra - 1);
    v->self = rt_self();
    kv_node_t *kv = v->kv;
    if (!kv || !kv->vnodes || !kv->engine || v->partition >= kv->vnodes->q) {
        rt_error("vnode: bad start arguments (partition %" PRIu32 ")", v->partition);
        return RT_R_INIT_FAILED;
    }
    v->slot = &kv->vnodes->slots[v->partition];

    char err[512];
    int rc = store_open(kv->engine, v->partition, &v->backend, err, sizeof err);
    if (rc < 0) {
        rt_error("vnode %" PRIu32 ": cannot open its store: %s: %s", v->partition,
                 store_strerror(rc), err);
        v->backend = NULL;
        return RT_R_INIT_FAILED;
    }
    if (err[0]) /* a notice from the engine's start, e.g. a torn write cut off its log */
        rt_warn("vnode %" PRIu32 ": storage: %s", v->partition, err);
    v->is_memory = strcmp(v->backend->ops->name, "memory") == 0;
    /* NULL when off (vnode_cache_limit: always with the memory backend) or out of memory */
    v->cache = store_cache_new(&kv->obj_cache);
    if (!v->is_memory &&
        asprintf(&v->meta_path, "%s/leveldb/%" PRIu32 "/" VNODE_META_FILE, data_root(kv),
                 v->partition) < 0)
        abort();

    uint32_t epoch = 0;
    uint64_t lease = 0;
    if (!v->meta_path || meta_load(v, &epoch, &lease) != 0) {
        epoch = fresh_epoch(kv->vnodes, v->partition);
        lease = 0;
        rt_info("vnode %" PRIu32 ": fresh epoch %" PRIu32, v->partition, epoch);
    }
    v->epoch = epoch;
    v->seq = lease;
    v->lease_end = lease; /* the first write renews, but renew now so a restart loop cannot
                           * hand out counters it has not persisted */
    if (lease_next(v, err, sizeof err) == 0) {
        rt_error("vnode %" PRIu32 ": cannot persist its counter lease: %s", v->partition, err);
        vnode_release(v);
        return RT_R_INIT_FAILED;
    }
    v->seq--; /* lease_next handed out one floor: give it back */
    uint32_t last = atomic_load_explicit(&kv->vnodes->last_epoch[v->partition],
                                         memory_order_relaxed);
    if (epoch > last)
        atomic_store_explicit(&kv->vnodes->last_epoch[v->partition], epoch,
                              memory_order_relaxed);
    v->actor = store_actor_make(kv->node_id, v->partition, epoch);

    pthread_mutex_lock(&v->slot->lock);
    v->slot->backend = v->backend;
    pthread_mutex_unlock(&v->slot->lock);
    atomic_store_explicit(&kv->vnodes->pids[v->partition], pid_pack(v->self),
                          memory_order_relaxed);
    v->published = true;
    /* Other nodes call this vnode by name (rt_call_name); the registry drops the name when
     * the process exits, and the restarted vnode takes it again. */
    char name[32];
    vnode_name(v->partition, name, sizeof name);
    if (rt_register(name, v->self) != 0)
        rt_warn("vnode %" PRIu32 ": cannot register as %s", v->partition, name);
    arm_sync_timer(v);
    return 0;
}

/* Removes a retired partition's LevelDB directory (flat: LevelDB's files and the metadata
 * record). Failures are logged: the data is with the owner, so leftovers only waste space,
 * and a later vnode of the partition reopens them as an ordinary store. */
static void remove_partition_dir(uint32_t partition, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            rt_warn("vnode %" PRIu32 ": cannot remove %s: %s", partition, dir, strerror(errno));
        return;
    }
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rt_warn("vnode %" PRIu32 ": cannot remove %s: %s", partition, path, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0)
        rt_warn("vnode %" PRIu32 ": cannot remove %s: %s", partition, dir, strerror(errno));
}

static void vnode_terminate(void *state, int reason)
{
    vnode_t *v = state;
    if (reason != RT_R_NORMAL && reason != RT_R_SHUTDOWN)
        rt_info("vnode %" PRIu32 ": exiting (%s)", v->partition, rt_reason_str(reason));
    char *dir = NULL;
    if (v->retired && v->meta_path) {
        dir = strdup(v->meta_path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
            *slash = '\0';
    }
    vnode_release(v);
    if (dir)
        remove_partition_dir(v->partition, dir);
    free(dir);
    if (v->retired)
        rt_send_name(NULL, VNODE_PROXY_NAME,
                     rt_msg_copy(VNODE_MSG_RETIRED, &v->partition, sizeof v->partition));
}

const rt_behaviour_t vnode_behaviour = {
    .name = "vnode",
    .state_size = sizeof(vnode_t),
    .init = vnode_init,
    .handle = vnode_handle,
    .terminate = vnode_terminate,
};

static bool is_down_of(const rt_msg_t *m, void *ctx)
{
    return m->type == RT_MSG_DOWN &&
           ((const rt_down_msg_t *)(const void *)m->data)->ref == *(const rt_ref_t *)ctx;
}

/* Shuts the supervisor down and waits (bounded) until it and its vnodes are gone. */
static void stop_sup(rt_pid_t s)
{
    rt_ref_t ref = rt_monitor(s);
    rt_exit_signal(s, RT_R_SHUTDOWN);
    rt_msg_t *down = NULL;
    if (rt_receive_match(VNODE_SHUTDOWN_MS + 5000, is_down_of, &ref, &down) == 0)
        rt_msg_free(down);
}

void vnode_sup_spec(kv_node_t *kv, rt_sup_child_spec_t *tmpl, rt_sup_spec_t *spec)
{
    *tmpl = (rt_sup_child_spec_t){
        .id = "vnode",
        .behaviour = &vnode_behaviour,
        .arg = kv,
        .restart = RT_SUP_TRANSIENT, /* a retired vnode exits normally and stays gone */
        .shutdown_ms = VNODE_SHUTDOWN_MS,
    };
    *spec = (rt_sup_spec_t){
        .strategy = RT_SUP_SIMPLE_ONE_FOR_ONE,
        .intensity = VNODE_SUP_INTENSITY,
        .period_ms = VNODE_SUP_PERIOD_MS,
        .children = tmpl,
        .nchildren = 1,
    };
}

int vnode_sup_start(kv_node_t *kv, rt_pid_t *sup)
{
    if (!kv || !kv->states || !kv->vnodes || !kv->engine || !sup)
        return RT_EINVAL;
    if (kv->vnodes->q != ring_size(kv_ring(kv))) {
        rt_error("vnode_sup_start: vnode table has %" PRIu32 " slots, ring %" PRIu32,
                 kv->vnodes->q, ring_size(kv_ring(kv)));
        return RT_EINVAL;
    }
    rt_sup_child_spec_t tmpl;
    rt_sup_spec_t spec;
    vnode_sup_spec(kv, &tmpl, &spec);
    rt_pid_t s;
    int rc = rt_sup_start(&spec, &s);
    if (rc < 0) {
        rt_error("vnode supervisor: cannot start: %s", rt_strerror(rc));
        return rc;
    }
    uint32_t q = ring_size(kv_ring(kv));
    for (uint32_t p = 0; p < q; p++) {
        if (!vnode_is_local(kv, p))
            continue;
        rc = rt_sup_start_dynamic_child(s, (void *)(uintptr_t)(p + 1), NULL, NULL);
        if (rc < 0) {
            rt_error("vnode %" PRIu32 ": cannot start: %s", p, rt_strerror(rc));
            stop_sup(s);
            return rc;
        }
    }
    *sup = s;
    return 0;
}
