/*
 * list.c — listing keys and buckets (kv_list_keys, kv_list_buckets of node/kv.h).
 *
 * One lister process per request. It folds each local partition in turn on the runtime's
 * worker pool (runtime/io.h), one bounded chunk per job (at most LIST_SCAN_MAX entries, then
 * the job stops and the next one resumes strictly after the last key it saw), so a listing
 * never runs on a scheduler, never holds a vnode for long (see vnode_fold in vnode.c for how
 * a fold shares the backend with its vnode), and never blocks other requests.
 *
 * What is reported:
 *   - keys: every key is stored in N consecutive partitions on this node; a key is reported
 *     by the fold of its FIRST preference-list partition only (ring_first_partition of its
 *     hash), which reports it once for any n_val. Tombstones are never reported (each value
 *     is decoded; store_obj_is_tombstone).
 *   - buckets: each bucket with at least one live key, once. The lister keeps the set of
 *     buckets found; the fold skips the rest of a bucket's range once the bucket is known
 *     (the job stops and the next resumes after the largest key the bucket can hold:
 *     (type, bucket, 0xFF repeated up to STORE_KEY_MAX encoded bytes)).
 *
 * Streaming and back-pressure (the contract of node/kv.h): keys go out in RpbListKeysResp
 * frames (code 18) of up to LIST_CHUNK_ITEMS keys with more = 1, each followed by a wait for
 * KV_MSG_STREAM_ACK before anything else is sent; the last frame has done = true and
 * more = 0 (and carries the remaining keys). Buckets go out the same way in
 * RpbListBucketsResp (code 16) when the request asked for stream, else all in one frame with
 * done = true. While an ack is outstanding and a chunk is ready, no new fold job starts, so
 * a slow client holds at most two chunks in memory. The whole listing is bounded by the
 * request's timeout (or list_timeout_ms): then the client gets "timeout" and the lister ends.
 * A lister whose client is gone (DOWN) ends at once.
 *
 * Ownership: the job in flight is owned by the worker pool (free_arg releases it if it is
 * dropped at shutdown), then by its LIST_MSG_CHUNK message (whose dtor frees it when the
 * lister is gone), then by the lister. State shared with the job (the node, the bucket, the
 * set of known buckets) is reference counted; the lister changes the known set only while no
 * job is in flight.
 */
#include "node/coord.h"
#include "node/pb_codec.h"
#include "node/vnode.h"
#include "runtime/io.h"
#include "storage/object.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_CHUNK_ITEMS 1000u        /* names per streamed frame */
#define LIST_CHUNK_BYTES (1u << 20)   /* ... or this many bytes of names, whichever first */
#define LIST_SCAN_MAX 2000u           /* entries one fold job visits before it yields */
#define LIST_RETRY_MS 20u             /* a vnode is restarting: try its partition again */
#define LIST_DEFAULT_TIMEOUT_MS 480000u

enum {
    LIST_MSG_CHUNK = KV_MSG_PRIVATE + 50, /* a fold job's result (payload: list_job_t *) */
    LIST_MSG_RETRY,                        /* timer: submit the pending job again */
    LIST_MSG_TIMEOUT,                      /* timer: the listing's deadline passed */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static uint8_t *xdup(const void *p, size_t n)
{
    uint8_t *d = xmalloc(n);
    if (n)
        memcpy(d, p, n);
    return d;
}

/* ---------------------------------------------------------------- names (owned bytes) */

typedef struct names_s {
    ProtobufCBinaryData *v;
    size_t n, cap;
    size_t bytes;
} names_t;

static void names_push(names_t *a, uint8_t *data, size_t len) /* takes data */
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            abort();
    }
    a->v[a->n++] = (ProtobufCBinaryData){len, data};
    a->bytes += len;
}

static void names_free(names_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].data);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- the known-bucket set */

typedef struct bset_s {
    ProtobufCBinaryData *slot; /* open addressing; data NULL = empty; owned copies */
    size_t cap, n;
} bset_t;

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The slot holding (p, n), or the empty slot where it would go (s->cap > 0). */
static size_t bset_slot(const bset_t *s, const uint8_t *p, size_t n)
{
    size_t i = hash_bytes(p, n) & (s->cap - 1);
    while (s->slot[i].data &&
           !(s->slot[i].len == n && memcmp(s->slot[i].data, p, n) == 0))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static bool bset_has(const bset_t *s, const uint8_t *p, size_t n)
{
    return s->cap && s->slot[bset_slot(s, p, n)].data;
}

static void bset_put(bset_t *s, const uint8_t *p, size_t n) /* copies */
{
    if ((s->n + 1) * 2 > s->cap) {
        bset_t bigger = {calloc(s->cap ? s->cap * 2 : 64, sizeof(ProtobufCBinaryData)),
                         s->cap ? s->cap * 2 : 64, 0};
        if (!bigger.slot)
            abort();
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i].data) {
                bigger.slot[bset_slot(&bigger, s->slot[i].data, s->slot[i].len)] = s->slot[i];
                bigger.n++;
            }
        free(s->slot);
        *s = bigger;
    }
    size_t i = bset_slot(s, p, n);
    if (s->slot[i].data)
        return;
    s->slot[i] = (ProtobufCBinaryData){n, xdup(p, n)};
    s->n++;
}

static void bset_free(bset_t *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i].data);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- shared state and jobs */

typedef struct list_shared_s {
    _Atomic unsigned refs;   /* the lister and the job in flight */
    kv_node_t *kv;
    bool keys;               /* listing keys (else buckets) */
    ProtobufCBinaryData type;   /* owned */
    ProtobufCBinaryData bucket; /* keys: the bucket (owned) */
    bset_t known;            /* buckets: found so far (lister writes only with no job out) */
} list_shared_t;

static list_shared_t *shared_ref(list_shared_t *sh)
{
    atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
    return sh;
}

static void shared_unref(list_shared_t *sh)
{
    /* acq_rel: the last owner sees every write the others made before letting go */
    if (!sh || atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(sh->type.data);
    free(sh->bucket.data);
    bset_free(&sh->known);
    free(sh);
}

/* A resume point: strictly after (type, bucket, key), or after the whole bucket. */
typedef struct resume_s {
    bool set;
    bool bucket_end;            /* after every key the bucket can hold */
    ProtobufCBinaryData type, bucket, key; /* owned */
} resume_t;

static void resume_clear(resume_t *r)
{
    free(r->type.data);
    free(r->bucket.data);
    free(r->key.data);
    memset(r, 0, sizeof *r);
}

static void resume_at(resume_t *r, const store_key_t *k, bool bucket_end)
{
    resume_clear(r);
    r->set = true;
    r->bucket_end = bucket_end;
    r->type = (ProtobufCBinaryData){k->type.n, xdup(k->type.p, k->type.n)};
    r->bucket = (ProtobufCBinaryData){k->bucket.n, xdup(k->bucket.p, k->bucket.n)};
    if (!bucket_end)
        r->key = (ProtobufCBinaryData){k->key.n, xdup(k->key.p, k->key.n)};
}

typedef struct list_job_s {
    list_shared_t *sh;
    uint32_t partition;
    resume_t from;       /* where this job starts (unset: the partition's beginning) */
    resume_t next;       /* set by the fold when it stopped early */
    names_t found;       /* keys or buckets found (owned) */
    uint32_t scanned;
    uint32_t unreadable; /* values that did not decode (skipped) */
    int rc;              /* vnode_fold's result */
    char err[256];
} list_job_t;

static void job_free(void *arg)
{
    list_job_t *j = arg;
    if (!j)
        return;
    resume_clear(&j->from);
    resume_clear(&j->next);
    names_free(&j->found);
    shared_unref(j->sh);
    free(j);
}

/* The largest key bytes any key can have: 0xFF repeated (an encoded key is at most
 * STORE_KEY_MAX bytes, so every key of a bucket sorts at or before FF..FF of the length
 * that fills the limit). */
static uint8_t max_key[STORE_KEY_MAX];
static pthread_once_t max_key_once = PTHREAD_ONCE_INIT;
static void max_key_fill(void)
{
    memset(max_key, 0xFF, sizeof max_key);
}

static bool live_object(list_job_t *j, const uint8_t *val, size_t len)
{
    store_obj_t *o = NULL;
    if (store_obj_decode(val, len, &o) < 0) {
        j->unreadable++;
        return false;
    }
    bool live = !store_obj_is_tombstone(o);
    store_obj_free(o);
    return live;
}

static int keys_fold_cb(void *arg, const store_key_t *k, const uint8_t *val, size_t len)
{
    list_job_t *j = arg;
    const ring_t *ring = j->sh->kv->ring;
    j->scanned++;
    uint64_t h = ring_hash_key(k->type.p, k->type.n, k->bucket.p, k->bucket.n, k->key.p, k->key.n);
    if (ring_first_partition(ring, h) == j->partition && live_object(j, val, len))
        names_push(&j->found, xdup(k->key.p, k->key.n), k->key.n);
    if (j->found.n >= LIST_CHUNK_ITEMS || j->found.bytes >= LIST_CHUNK_BYTES ||
        j->scanned >= LIST_SCAN_MAX) {
        resume_at(&j->next, k, false);
        return STORE_FOLD_STOP;
    }
    return 0;
}

static int buckets_fold_cb(void *arg, const store_key_t *k, const uint8_t *val, size_t len)
{
    list_job_t *j = arg;
    const list_shared_t *sh = j->sh;
    j->scanned++;
    bool our_type = k->type.n == sh->type.len && memcmp(k->type.p, sh->type.data, k->type.n) == 0;
    if (our_type && bset_has(&sh->known, k->bucket.p, k->bucket.n)) {
        resume_at(&j->next, k, true); /* known: skip the rest of its range */
        return STORE_FOLD_STOP;
    }
    if (our_type && live_object(j, val, len)) {
        names_push(&j->found, xdup(k->bucket.p, k->bucket.n), k->bucket.n);
        resume_at(&j->next, k, true);
        return STORE_FOLD_STOP;
    }
    if (j->scanned >= LIST_SCAN_MAX) {
        resume_at(&j->next, k, false);
        return STORE_FOLD_STOP;
    }
    return 0;
}

/* Frees the job of a LIST_MSG_CHUNK that was not taken (its lister is gone). */
static void chunk_msg_dtor(rt_msg_t *m)
{
    list_job_t *j;
    memcpy(&j, m->data, sizeof j);
    job_free(j);
}

/* Runs on a worker thread: one bounded chunk of one partition's fold. */
static rt_msg_t *job_run(void *arg)
{
    list_job_t *j = arg;
    const list_shared_t *sh = j->sh;
    store_fold_t f = {.values = true};
    store_slice_t type = {sh->type.data, sh->type.len};
    store_slice_t bucket = {sh->bucket.data, sh->bucket.len};
    if (sh->keys) {
        f.type = &type;
        f.bucket = &bucket;
    }
    store_key_t after;
    if (j->from.set) {
        after.type = (store_slice_t){j->from.type.data, j->from.type.len};
        after.bucket = (store_slice_t){j->from.bucket.data, j->from.bucket.len};
        if (j->from.bucket_end) {
            pthread_once(&max_key_once, max_key_fill);
            store_key_t prefix = after;
            prefix.key = (store_slice_t){NULL, 0};
            size_t used = store_key_encoded_len(&prefix);
            after.key = (store_slice_t){max_key, used < STORE_KEY_MAX ? STORE_KEY_MAX - used : 1};
        } else {
            after.key = (store_slice_t){j->from.key.data, j->from.key.len};
        }
        f.after = &after;
    }
    j->rc = vnode_fold(sh->kv, j->partition, &f, sh->keys ? keys_fold_cb : buckets_fold_cb, j,
                       j->err, sizeof j->err);
    rt_msg_t *m = rt_msg_new(LIST_MSG_CHUNK, sizeof j);
    memcpy(m->data, &j, sizeof j);
    m->dtor = chunk_msg_dtor;
    return m;
}

/* ---------------------------------------------------------------- the lister */

typedef struct lister_args_s {
    kv_node_t *kv;
    rt_pid_t reply_to;
    uint64_t req_id;
    bool stream;             /* buckets: stream the answer */
    uint32_t timeout_ms;
    uint64_t start_ns;
    list_shared_t *sh;       /* taken by a successful init */
} lister_args_t;

typedef struct lister_s {
    kv_node_t *kv;
    rt_pid_t self, reply_to;
    uint64_t req_id;
    uint64_t start_ns;
    bool stream;
    list_shared_t *sh;
    list_job_t *job;         /* the next job to submit (NULL while one is in flight) */
    bool in_flight;
    bool retry_pending;      /* waiting for LIST_MSG_RETRY */
    bool folds_done;         /* every partition folded */
    bool awaiting_ack;
    bool finished;           /* the final reply (or an error) went out */
    uint32_t partition;      /* the partition `job` folds */
    uint32_t unreadable;
    names_t out;             /* ready to send (owned) */
    rt_timer_t deadline;
    rt_ref_t client_mon;
} lister_t;

/* The next local partition at or after p, or UINT32_MAX. */
static uint32_t next_local(const kv_node_t *kv, uint32_t p)
{
    uint32_t q = ring_size(kv->ring);
    for (; p < q; p++)
        if (vnode_is_local(kv, p))
            return p;
    return UINT32_MAX;
}

static list_job_t *job_new(lister_t *l, uint32_t partition)
{
    list_job_t *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->sh = shared_ref(l->sh);
    j->partition = partition;
    return j;
}

static void finish(lister_t *l, bool ok)
{
    if (l->finished)
        return;
    l->finished = true;
    kv_stats_record(&l->kv->stats, KV_OP_LIST, l->start_ns, ok);
}

/* Ends the listing with an error reply carrying text. */
static void fail(lister_t *l, const char *text)
{
    if (l->finished)
        return;
    rt_send(l->reply_to, kv_reply_error(l->req_id, "%s", text));
    finish(l, false);
}

/* Sends names [0, n) of out as one frame, and drops them from out. */
static void send_names(lister_t *l, size_t n, bool done)
{
    rt_msg_t *m;
    if (l->sh->keys) {
        Riak__RpbListKeysResp r = RIAK__RPB_LIST_KEYS_RESP__INIT;
        r.n_keys = n;
        r.keys = l->out.v;
        if (done) {
            r.has_done = 1;
            r.done = 1;
        }
        m = kv_reply_new(l->req_id, !done, PB_LIST_KEYS_RESP, &r.base);
    } else {
        Riak__RpbListBucketsResp r = RIAK__RPB_LIST_BUCKETS_RESP__INIT;
        r.n_buckets = n;
        r.buckets = l->out.v;
        if (done) {
            r.has_done = 1;
            r.done = 1;
        }
        m = kv_reply_new(l->req_id, !done, PB_LIST_BUCKETS_RESP, &r.base);
    }
    for (size_t i = 0; i < n; i++) {
        l->out.bytes -= l->out.v[i].len;
        free(l->out.v[i].data);
    }
    if (n < l->out.n)
        memmove(l->out.v, l->out.v + n, (l->out.n - n) * sizeof *l->out.v);
    l->out.n -= n;
    rt_send(l->reply_to, m);
}

/* j is the job to submit after LIST_RETRY_MS. */
static void retry_later(lister_t *l, list_job_t *j)
{
    l->job = j;
    l->retry_pending = true;
    rt_send_after(LIST_RETRY_MS, l->self, rt_msg_new(LIST_MSG_RETRY, 0));
}

/* Moves the listing forward as far as it can; returns the handler's result. */
static int pump(lister_t *l)
{
    if (l->finished)
        return RT_STOP;
    bool streaming = l->sh->keys || l->stream;
    bool chunk_ready = l->out.n >= LIST_CHUNK_ITEMS || l->out.bytes >= LIST_CHUNK_BYTES;
    if (streaming && chunk_ready && !l->awaiting_ack) {
        size_t n = 0, bytes = 0;
        while (n < l->out.n && n < LIST_CHUNK_ITEMS && (n == 0 || bytes < LIST_CHUNK_BYTES))
            bytes += l->out.v[n++].len;
        send_names(l, n, false);
        l->awaiting_ack = true;
        chunk_ready = l->out.n >= LIST_CHUNK_ITEMS || l->out.bytes >= LIST_CHUNK_BYTES;
    }
    if (l->folds_done && !l->in_flight) {
        if (l->awaiting_ack)
            return RT_CONTINUE; /* the rest goes after the ack */
        if (l->unreadable)
            rt_warn("list: skipped %" PRIu32 " unreadable objects", l->unreadable);
        send_names(l, l->out.n, true);
        finish(l, true);
        return RT_STOP;
    }
    if (l->in_flight || l->retry_pending || (streaming && chunk_ready))
        return RT_CONTINUE; /* back-pressure: a chunk waits for its ack */
    list_job_t *j = l->job;
    l->job = NULL;
    int rc = rt_work_submit2(job_run, j, job_free, l->self);
    if (rc < 0) { /* the pool's queue is full: try again shortly */
        retry_later(l, job_new(l, l->partition));
        return RT_CONTINUE;
    }
    l->in_flight = true;
    return RT_CONTINUE;
}

static int on_chunk(lister_t *l, rt_msg_t *m)
{
    list_job_t *j;
    memcpy(&j, m->data, sizeof j);
    memset(m->data, 0, sizeof j); /* taken: the dtor frees nothing */
    l->in_flight = false;
    l->unreadable += j->unreadable;
    if (l->finished) {
        job_free(j);
        return RT_STOP;
    }
    if (j->rc == STORE_ECLOSED) { /* the vnode is restarting: same job again, a bit later */
        names_free(&j->found);
        resume_clear(&j->next);
        retry_later(l, j);
        return RT_CONTINUE;
    }
    if (j->rc < 0) {
        char text[320];
        snprintf(text, sizeof text, "list failed: partition %" PRIu32 ": %s", j->partition,
                 j->err[0] ? j->err : store_strerror(j->rc));
        job_free(j);
        fail(l, text);
        return RT_STOP;
    }
    for (size_t i = 0; i < j->found.n; i++) {
        ProtobufCBinaryData name = j->found.v[i];
        if (!l->sh->keys) {
            if (bset_has(&l->sh->known, name.data, name.len)) {
                free(name.data);
                continue;
            }
            bset_put(&l->sh->known, name.data, name.len); /* no job is in flight now */
        }
        names_push(&l->out, name.data, name.len);
    }
    free(j->found.v);
    memset(&j->found, 0, sizeof j->found);
    if (j->next.set) { /* stopped early: resume after where it stopped */
        resume_clear(&j->from);
        j->from = j->next;
        memset(&j->next, 0, sizeof j->next);
        j->scanned = 0;
        j->unreadable = 0;
        l->job = j;
    } else { /* the partition is done */
        job_free(j);
        uint32_t p = next_local(l->kv, l->partition + 1);
        if (p == UINT32_MAX) {
            l->folds_done = true;
        } else {
            l->partition = p;
            l->job = job_new(l, p);
        }
    }
    return pump(l);
}

static int lister_init(void *state, void *arg)
{
    lister_t *l = state;
    lister_args_t *a = arg;
    l->kv = a->kv;
    l->self = rt_self();
    l->reply_to = a->reply_to;
    l->req_id = a->req_id;
    l->start_ns = a->start_ns;
    l->stream = a->stream;
    l->sh = a->sh;
    a->sh = NULL; /* taken */
    l->client_mon = rt_monitor(l->reply_to);
    l->deadline = rt_send_after(a->timeout_ms, l->self, rt_msg_new(LIST_MSG_TIMEOUT, 0));
    uint32_t p = next_local(l->kv, 0);
    if (p == UINT32_MAX) {
        l->folds_done = true;
    } else {
        l->partition = p;
        l->job = job_new(l, p);
    }
    /* start at once: the first job is submitted from the first message we send ourselves */
    rt_send(l->self, rt_msg_new(LIST_MSG_RETRY, 0));
    l->retry_pending = true;
    return 0;
}

static int lister_handle(void *state, rt_msg_t *m)
{
    lister_t *l = state;
    switch (m->type) {
    case LIST_MSG_CHUNK:
        return on_chunk(l, m);
    case LIST_MSG_RETRY:
        l->retry_pending = false;
        return pump(l);
    case KV_MSG_STREAM_ACK:
        if (!rt_pid_eq(m->from, l->reply_to) || !l->awaiting_ack)
            return RT_CONTINUE;
        l->awaiting_ack = false;
        return pump(l);
    case LIST_MSG_TIMEOUT:
        l->deadline = 0;
        fail(l, "timeout");
        return RT_STOP;
    case RT_MSG_DOWN: {
        const rt_down_msg_t *d = (const rt_down_msg_t *)(const void *)m->data;
        if (d->ref != l->client_mon)
            return RT_CONTINUE;
        l->client_mon = 0;
        finish(l, false); /* nobody to tell */
        return RT_STOP;
    }
    default:
        return RT_CONTINUE;
    }
}

static void lister_terminate(void *state, int reason)
{
    lister_t *l = state;
    if (!l->finished) {
        /* a crash or a kill: tell the client rather than leave it waiting */
        if (reason != RT_R_NORMAL && reason != RT_R_SHUTDOWN)
            rt_send(l->reply_to, kv_reply_error(l->req_id, "list failed: %s",
                                                rt_reason_str(reason)));
        finish(l, false);
    }
    if (l->deadline)
        rt_cancel_timer(l->deadline);
    if (l->client_mon)
        rt_demonitor(l->client_mon, 0);
    job_free(l->job);
    names_free(&l->out);
    shared_unref(l->sh);
    coord_release(l->kv);
}

static const rt_behaviour_t lister_behaviour = {
    .name = "lister",
    .state_size = sizeof(lister_t),
    .init = lister_init,
    .handle = lister_handle,
    .terminate = lister_terminate,
};

/* ---------------------------------------------------------------- entry points */

/* Answers at once with an error (the request was admitted: coord_admit). */
static int reject(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, uint64_t start_ns,
                  rt_msg_t *reply)
{
    rt_send(reply_to, reply);
    kv_stats_record(&kv->stats, KV_OP_LIST, start_ns, false);
    coord_release(kv);
    return 0;
}

/* The error reply for a bucket type other than "default" (the only one listed); NULL for
 * the default type (absent, empty or "default"). */
static rt_msg_t *type_error(uint64_t req_id, protobuf_c_boolean has, ProtobufCBinaryData t)
{
    if (!has || t.len == 0 || (t.len == 7 && memcmp(t.data, "default", 7) == 0))
        return NULL;
    return kv_reply_error(req_id, "Invalid bucket type: %.*s", (int)(t.len > 256 ? 256 : t.len),
                          (const char *)t.data);
}

static int start_lister(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, uint64_t start_ns,
                        list_shared_t *sh, bool stream, uint32_t timeout_ms)
{
    lister_args_t a = {
        .kv = kv,
        .reply_to = reply_to,
        .req_id = req_id,
        .stream = stream,
        .timeout_ms = timeout_ms ? timeout_ms
                      : kv->cfg && kv->cfg->list_timeout_ms ? kv->cfg->list_timeout_ms
                                                            : LIST_DEFAULT_TIMEOUT_MS,
        .start_ns = start_ns,
        .sh = sh,
    };
    int rc = rt_spawn(&lister_behaviour, &a, NULL);
    if (rc < 0) {
        shared_unref(a.sh); /* init did not take it */
        coord_release(kv);
        atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
        rt_warn("list: cannot start a lister: %s", rt_strerror(rc));
        return KV_EOVERLOAD;
    }
    return 0;
}

static list_shared_t *shared_new(kv_node_t *kv, bool keys)
{
    list_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh)
        abort();
    atomic_init(&sh->refs, 1);
    sh->kv = kv;
    sh->keys = keys;
    sh->type = (ProtobufCBinaryData){7, xdup("default", 7)};
    return sh;
}

int kv_list_keys(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbListKeysReq *req)
{
    uint64_t start_ns = rt_now_ns();
    int rc = coord_admit(kv);
    if (rc != 0) {
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return rc;
    }
    rt_msg_t *err = !req->has_bucket || req->bucket.len == 0
                        ? kv_reply_error(req_id, "Bucket cannot be zero-length")
                        : type_error(req_id, req->has_type, req->type);
    if (err) {
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return reject(kv, reply_to, req_id, start_ns, err);
    }
    list_shared_t *sh = shared_new(kv, true);
    sh->bucket = (ProtobufCBinaryData){req->bucket.len, xdup(req->bucket.data, req->bucket.len)};
    uint32_t timeout = req->has_timeout ? req->timeout : 0;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return start_lister(kv, reply_to, req_id, start_ns, sh, true, timeout);
}

int kv_list_buckets(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id,
                    Riak__RpbListBucketsReq *req)
{
    uint64_t start_ns = rt_now_ns();
    int rc = coord_admit(kv);
    if (rc != 0) {
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return rc;
    }
    rt_msg_t *err = type_error(req_id, req->has_type, req->type);
    if (err) {
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return reject(kv, reply_to, req_id, start_ns, err);
    }
    bool stream = req->has_stream && req->stream;
    uint32_t timeout = req->has_timeout ? req->timeout : 0;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    return start_lister(kv, reply_to, req_id, start_ns, shared_new(kv, false), stream, timeout);
}
