/*
 * list.c — listing keys and buckets (kv_list_keys, kv_list_buckets of node/kv.h), and the
 * list fold service through which listers on other nodes fold this node's partitions
 * (node/list.h).
 *
 * One lister process per request. It folds every partition of the ring in turn (0..Q-1),
 * each on the node that owns it in the current cluster state, looked up whenever a chunk is
 * submitted:
 *   - a partition of this node is folded on the runtime's worker pool (runtime/io.h), one
 *     bounded chunk per job (at most LIST_SCAN_MAX entries or LIST_CHUNK_ITEMS names, then
 *     the job stops and the next one resumes strictly after the last key it saw), so a
 *     listing never runs on a scheduler, never holds a vnode for long (see vnode_fold in
 *     vnode.c for how a fold shares the backend with its vnode), and never blocks other
 *     requests;
 *   - a partition of another node is folded there: the lister calls that node's list fold
 *     service (LIST_FOLD_SERVICE_NAME, rt_call_name) with the job's description (partition,
 *     keys or buckets, type, bucket, resume point: proto/kv.proto ListFoldReq), the service
 *     runs the very same job on its own worker pool and answers what the job found
 *     (ListFoldResp), which the lister handles exactly like a local job's result.
 * A resume point is a key position, so a partition whose owner changes between two chunks
 * simply continues on its new owner.
 *
 * Failures are never silent: a call that ends without an answer (the node is unreachable,
 * the service is not running, the call timed out) ends the listing with "cannot list
 * partition P: node X ..."; a storage error with "list failed: partition P: ...". A vnode
 * that is restarting (STORE_ECLOSED here, LIST_FOLD_RETRY from a service) is retried after
 * LIST_RETRY_MS; a service that says it does not own the partition (the ring is changing)
 * is retried, against the owner of the then current state, for at most LIST_RING_SETTLE_MS.
 *
 * What is reported:
 *   - keys: every key is stored in N consecutive partitions; a key is reported by the fold
 *     of its FIRST preference-list partition only (ring_first_partition of its hash), which
 *     reports it once for any n_val. Tombstones are never reported (each value is decoded;
 *     store_obj_is_tombstone).
 *   - buckets: each bucket with at least one live key, once. The lister keeps the set of
 *     buckets found and drops repeats. A local fold also skips the rest of a bucket's range
 *     once the bucket is known; every fold skips a bucket's range once it found a live key
 *     there (it resumes after the largest key the bucket can hold: (type, bucket, 0xFF
 *     repeated up to STORE_KEY_MAX encoded bytes)). A remote fold does not know the lister's
 *     set; it reports each bucket once per partition and the lister dedupes.
 *
 * Streaming and back-pressure (the contract of node/kv.h): keys go out in RpbListKeysResp
 * frames (code 18) of up to LIST_CHUNK_ITEMS keys with more = 1, each followed by a wait for
 * KV_MSG_STREAM_ACK before anything else is sent; the last frame has done = true and
 * more = 0 (and carries the remaining keys). Buckets go out the same way in
 * RpbListBucketsResp (code 16) when the request asked for stream, else all in one frame with
 * done = true. While an ack is outstanding and a chunk is ready, no new fold (local job or
 * remote call) starts, so a slow client holds at most two chunks in memory. The whole
 * listing is bounded by the request's timeout (or list_timeout_ms): then the client gets
 * "timeout" and the lister ends. A lister whose client is gone (DOWN) ends at once.
 *
 * Ownership: a local job in flight is owned by the worker pool (free_arg releases it if it
 * is dropped at shutdown), then by its LIST_MSG_CHUNK message (whose dtor frees it when the
 * lister or service is gone), then by the lister (or the service). A job whose chunk is
 * folded remotely stays with the lister while the call is out. State shared with a job (the
 * node, the bucket, the set of known buckets) is reference counted; the lister changes the
 * known set only while no job is in flight. The service keeps nothing between calls: each
 * call gets its own shared state and job, and the job remembers whom to answer.
 */
#include "node/list.h"

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
#define LIST_CALL_MS 60000u           /* bound on one remote chunk (within the listing's) */
#define LIST_RING_SETTLE_MS 5000u     /* "not the owner" answers are retried this long */
#define LIST_FOLD_SERVICE_MAX_JOBS 64u /* the service's folds in flight; beyond: RETRY */

enum {
    LIST_MSG_CHUNK = KV_MSG_PRIVATE + 50, /* a fold job's result (payload: list_job_t *) */
    LIST_MSG_RETRY,                        /* timer: submit the pending job again */
    LIST_MSG_TIMEOUT,                      /* timer: the listing's deadline passed */
};
_Static_assert((int)LIST_MSG_FOLD_REQ > (int)LIST_MSG_TIMEOUT &&
                   (int)LIST_MSG_FOLD_RESP < (int)KV_MSG_PRIVATE + 70,
               "list.c's messages stay in its private range of node/kv.h");

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
    _Atomic unsigned refs;   /* the lister (or the service's call) and the job in flight */
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

/* A new shared state (one reference) for listing keys (of a bucket set later) or buckets of
 * the bucket type `type` (copied). */
static list_shared_t *shared_new(kv_node_t *kv, bool keys, const void *type, size_t type_len)
{
    list_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh)
        abort();
    atomic_init(&sh->refs, 1);
    sh->kv = kv;
    sh->keys = keys;
    sh->type = (ProtobufCBinaryData){type_len, xdup(type, type_len)};
    return sh;
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

static ProtobufCBinaryData bin_dup(const void *p, size_t n)
{
    return (ProtobufCBinaryData){n, xdup(p, n)};
}

static void resume_at(resume_t *r, const store_key_t *k, bool bucket_end)
{
    resume_clear(r);
    r->set = true;
    r->bucket_end = bucket_end;
    r->type = bin_dup(k->type.p, k->type.n);
    r->bucket = bin_dup(k->bucket.p, k->bucket.n);
    if (!bucket_end)
        r->key = bin_dup(k->key.p, k->key.n);
}

/* *to = a copy of from (to is cleared first). */
static void resume_copy(resume_t *to, const resume_t *from)
{
    resume_clear(to);
    if (!from->set)
        return;
    to->set = true;
    to->bucket_end = from->bucket_end;
    to->type = bin_dup(from->type.data, from->type.len);
    to->bucket = bin_dup(from->bucket.data, from->bucket.len);
    if (!from->bucket_end)
        to->key = bin_dup(from->key.data, from->key.len);
}

/* r as a ListResume (borrowing r's bytes; *pb must not outlive r). */
static void resume_to_pb(const resume_t *r, Cairn__Kv__ListResume *pb)
{
    cairn__kv__list_resume__init(pb);
    pb->has_type = pb->has_bucket = 1;
    pb->type = r->type;
    pb->bucket = r->bucket;
    if (r->bucket_end) {
        pb->has_bucket_end = pb->bucket_end = 1;
    } else {
        pb->has_key = 1;
        pb->key = r->key;
    }
}

/* *r = a copy of pb; false (r cleared) when pb cannot be a resume point: an empty type or
 * bucket, no key without bucket_end, or a component longer than an encoded key can be. */
static bool resume_from_pb(resume_t *r, const Cairn__Kv__ListResume *pb)
{
    resume_clear(r);
    bool bucket_end = pb->has_bucket_end && pb->bucket_end;
    if (!pb->has_type || pb->type.len == 0 || pb->type.len > STORE_KEY_MAX ||
        !pb->has_bucket || pb->bucket.len == 0 || pb->bucket.len > STORE_KEY_MAX ||
        (!bucket_end && (!pb->has_key || pb->key.len == 0 || pb->key.len > STORE_KEY_MAX)))
        return false;
    r->set = true;
    r->bucket_end = bucket_end;
    r->type = bin_dup(pb->type.data, pb->type.len);
    r->bucket = bin_dup(pb->bucket.data, pb->bucket.len);
    if (!bucket_end)
        r->key = bin_dup(pb->key.data, pb->key.len);
    return true;
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
    rt_from_t caller;    /* the service: the call this job answers */
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

/* A job folding `partition` from its beginning; takes a reference of sh. */
static list_job_t *job_new(list_shared_t *sh, uint32_t partition)
{
    list_job_t *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->sh = shared_ref(sh);
    j->partition = partition;
    return j;
}

/* Makes j ready to run again from j->from (drops what a run left in it). */
static void job_reset(list_job_t *j)
{
    names_free(&j->found);
    resume_clear(&j->next);
    j->scanned = 0;
    j->unreadable = 0;
    j->rc = 0;
    j->err[0] = '\0';
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

/* The job has done what one chunk may do: the lister (or caller) takes over. */
static bool job_budget_spent(const list_job_t *j)
{
    return j->found.n >= LIST_CHUNK_ITEMS || j->found.bytes >= LIST_CHUNK_BYTES ||
           j->scanned >= LIST_SCAN_MAX;
}

static int keys_fold_cb(void *arg, const store_key_t *k, const uint8_t *val, size_t len)
{
    list_job_t *j = arg;
    const ring_t *ring = kv_ring(j->sh->kv);
    j->scanned++;
    uint64_t h = ring_hash_key(k->type.p, k->type.n, k->bucket.p, k->bucket.n, k->key.p, k->key.n);
    if (ring_first_partition(ring, h) == j->partition && live_object(j, val, len))
        names_push(&j->found, xdup(k->key.p, k->key.n), k->key.n);
    if (job_budget_spent(j)) {
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

/* Frees the job of a LIST_MSG_CHUNK that was not taken (its lister or service is gone). */
static void chunk_msg_dtor(rt_msg_t *m)
{
    list_job_t *j;
    memcpy(&j, m->data, sizeof j);
    job_free(j);
}

/* One pass of vnode_fold over j's partition, strictly after `from` (unset: from the start). */
static int fold_pass(list_job_t *j, const resume_t *from)
{
    const list_shared_t *sh = j->sh;
    store_fold_t f = {.values = true};
    store_slice_t type = {sh->type.data, sh->type.len};
    store_slice_t bucket = {sh->bucket.data, sh->bucket.len};
    if (sh->keys) {
        f.type = &type;
        f.bucket = &bucket;
    }
    store_key_t after;
    if (from->set) {
        after.type = (store_slice_t){from->type.data, from->type.len};
        after.bucket = (store_slice_t){from->bucket.data, from->bucket.len};
        if (from->bucket_end) {
            pthread_once(&max_key_once, max_key_fill);
            store_key_t prefix = after;
            prefix.key = (store_slice_t){NULL, 0};
            size_t used = store_key_encoded_len(&prefix);
            after.key = (store_slice_t){max_key, used < STORE_KEY_MAX ? STORE_KEY_MAX - used : 1};
        } else {
            after.key = (store_slice_t){from->key.data, from->key.len};
        }
        f.after = &after;
    }
    return vnode_fold(sh->kv, j->partition, &f, sh->keys ? keys_fold_cb : buckets_fold_cb, j,
                      j->err, sizeof j->err);
}

/* Runs on a worker thread: one bounded chunk of one partition's fold. A fold that stops only
 * to skip a bucket's range goes on from there in the same job (a new vnode_fold call, so the
 * vnode gets its backend back in between) until the chunk's budget is spent or the
 * partition ends; a job thus answers up to a chunk of names, not one bucket per job. */
static rt_msg_t *job_run(void *arg)
{
    list_job_t *j = arg;
    resume_t at = {0}; /* where the current pass started, after the first */
    for (;;) {
        size_t had = j->found.n;
        int rc = fold_pass(j, at.set ? &at : &j->from);
        if (rc < 0 && at.set) {
            /* a later pass failed: report what the earlier ones found, and resume where
             * the failed pass started (the next job meets the error, or not) */
            while (j->found.n > had) {
                j->found.n--;
                j->found.bytes -= j->found.v[j->found.n].len;
                free(j->found.v[j->found.n].data);
            }
            resume_clear(&j->next);
            j->next = at;
            memset(&at, 0, sizeof at);
            j->rc = 0;
            j->err[0] = '\0';
            break;
        }
        j->rc = rc;
        if (rc < 0 || !j->next.set || job_budget_spent(j))
            break;
        resume_clear(&at);
        at = j->next;
        memset(&j->next, 0, sizeof j->next);
    }
    resume_clear(&at);
    rt_msg_t *m = rt_msg_new(LIST_MSG_CHUNK, sizeof j);
    memcpy(m->data, &j, sizeof j);
    m->dtor = chunk_msg_dtor;
    return m;
}

/* Takes the job out of a LIST_MSG_CHUNK (the message's dtor then frees nothing). */
static list_job_t *chunk_take(rt_msg_t *m)
{
    list_job_t *j;
    memcpy(&j, m->data, sizeof j);
    memset(m->data, 0, sizeof j);
    return j;
}

/* Submits j to the worker pool, answered to reply_to. On failure (the pool's queue is full)
 * j is gone, and *retry (when retry is not NULL) is a job like j, ready to submit again. */
static int job_submit(list_job_t *j, rt_pid_t reply_to, list_job_t **retry)
{
    list_job_t *again = NULL;
    if (retry) {
        again = job_new(j->sh, j->partition);
        resume_copy(&again->from, &j->from);
        again->caller = j->caller;
    }
    int rc = rt_work_submit2(job_run, j, job_free, reply_to);
    if (rc == 0)
        job_free(again);
    else if (retry)
        *retry = again;
    return rc;
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
    uint64_t deadline_ns;    /* the listing's end (start + timeout) */
    bool stream;
    list_shared_t *sh;
    list_job_t *job;         /* the next job to submit (NULL while one is in flight) */
    bool in_flight;          /* a local job, or a remote call, is out */
    bool retry_pending;      /* waiting for LIST_MSG_RETRY */
    bool folds_done;         /* every partition folded */
    bool awaiting_ack;
    bool finished;           /* the final reply (or an error) went out */
    uint32_t partition;      /* the partition `job` folds */
    uint32_t partitions;     /* Q */
    uint32_t unreadable;
    names_t out;             /* ready to send (owned) */
    rt_timer_t deadline;
    rt_ref_t client_mon;
    /* the chunk folded on another node */
    rt_ref_t call_ref;       /* the call in flight (0: none) */
    list_job_t *remote;      /* what it folds (owned while the call is out) */
    char remote_node[RING_NODE_NAME_MAX];
    uint64_t not_owner_since_ns; /* the first "not the owner" answer in a row (0: none) */
} lister_t;

static void finish(lister_t *l, bool ok)
{
    if (l->finished)
        return;
    l->finished = true;
    kv_stats_record(&l->kv->stats, KV_OP_LIST, l->start_ns, ok);
}

/* Ends the listing with an error reply carrying text (the stats first, so a client that
 * has the answer also sees it counted). */
static void fail(lister_t *l, const char *text)
{
    if (l->finished)
        return;
    finish(l, false);
    rt_send(l->reply_to, kv_reply_error(l->req_id, "%s", text));
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
    job_reset(j);
    l->job = j;
    l->retry_pending = true;
    rt_send_after(LIST_RETRY_MS, l->self, rt_msg_new(LIST_MSG_RETRY, 0));
}

/* How long one remote chunk may take: LIST_CALL_MS, within what is left of the listing. */
static uint32_t call_timeout_ms(const lister_t *l)
{
    uint64_t now = rt_now_ns();
    uint64_t left_ms = l->deadline_ns > now ? (l->deadline_ns - now) / 1000000u : 0;
    if (left_ms < 1)
        left_ms = 1;
    return left_ms < LIST_CALL_MS ? (uint32_t)left_ms : LIST_CALL_MS;
}

/* Asks `node`'s list fold service to fold j's chunk; j stays with the lister meanwhile. */
static void call_remote(lister_t *l, list_job_t *j, const char *node)
{
    Cairn__Kv__ListFoldReq req = CAIRN__KV__LIST_FOLD_REQ__INIT;
    req.has_partition = req.has_keys = req.has_type = 1;
    req.partition = j->partition;
    req.keys = l->sh->keys;
    req.type = l->sh->type;
    if (l->sh->keys) {
        req.has_bucket = 1;
        req.bucket = l->sh->bucket;
    }
    Cairn__Kv__ListResume from;
    if (j->from.set) {
        resume_to_pb(&j->from, &from);
        req.from = &from;
    }
    size_t len = cairn__kv__list_fold_req__get_packed_size(&req);
    rt_msg_t *m = rt_msg_new(LIST_MSG_FOLD_REQ, len);
    cairn__kv__list_fold_req__pack(&req, m->data);
    snprintf(l->remote_node, sizeof l->remote_node, "%s", node);
    l->remote = j;
    l->call_ref = rt_call_name(node, LIST_FOLD_SERVICE_NAME, m, call_timeout_ms(l));
    l->in_flight = true;
}

/* Starts folding the next chunk of j: on the worker pool if this node owns the partition,
 * else on its owner. Returns the handler's result. */
static int submit(lister_t *l, list_job_t *j)
{
    const cstate_t *cs = kv_cstate(l->kv);
    uint32_t owner = ring_owner(cstate_ring(cs), j->partition);
    if (owner != kv_self_member(l->kv, cs)) {
        const char *node = owner < cstate_member_count(cs) ? cstate_member_name(cs, owner) : NULL;
        if (!node) {
            char text[160];
            snprintf(text, sizeof text, "cannot list partition %" PRIu32 ": it has no owner",
                     j->partition);
            job_free(j);
            fail(l, text);
            return RT_STOP;
        }
        call_remote(l, j, node);
        return RT_CONTINUE;
    }
    list_job_t *again = NULL;
    if (job_submit(j, l->self, &again) < 0) { /* the pool's queue is full: try again shortly */
        retry_later(l, again);
        return RT_CONTINUE;
    }
    l->in_flight = true;
    return RT_CONTINUE;
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
        finish(l, true);
        send_names(l, l->out.n, true);
        return RT_STOP;
    }
    if (l->in_flight || l->retry_pending || (streaming && chunk_ready))
        return RT_CONTINUE; /* back-pressure: a chunk waits for its ack */
    list_job_t *j = l->job;
    l->job = NULL;
    return submit(l, j);
}

/* A chunk of j's partition is folded (locally or remotely: j holds the result); node: where
 * it was folded (NULL: here), for error messages. Returns the handler's result. */
static int on_job_done(lister_t *l, list_job_t *j, const char *node)
{
    l->in_flight = false;
    l->unreadable += j->unreadable;
    if (l->finished) {
        job_free(j);
        return RT_STOP;
    }
    if (j->rc == STORE_ECLOSED) { /* the vnode is restarting: same job again, a bit later */
        retry_later(l, j);
        return RT_CONTINUE;
    }
    if (j->rc < 0) {
        char text[RING_NODE_NAME_MAX + 400];
        snprintf(text, sizeof text, "list failed: partition %" PRIu32 "%s%s: %s", j->partition,
                 node ? " on node " : "", node ? node : "",
                 j->err[0] ? j->err : store_strerror(j->rc));
        job_free(j);
        fail(l, text);
        return RT_STOP;
    }
    l->not_owner_since_ns = 0;
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
        job_reset(j);
        l->job = j;
    } else { /* the partition is done */
        job_free(j);
        if (l->partition + 1 >= l->partitions) {
            l->folds_done = true;
        } else {
            l->partition++;
            l->job = job_new(l->sh, l->partition);
        }
    }
    return pump(l);
}

static int on_chunk(lister_t *l, rt_msg_t *m)
{
    return on_job_done(l, chunk_take(m), NULL);
}

/* The remote chunk's call ended without an answer (reason: an RT_R_* exit reason). */
static int on_call_failed(lister_t *l, int reason)
{
    list_job_t *j = l->remote;
    l->remote = NULL;
    l->call_ref = 0;
    l->in_flight = false;
    char text[RING_NODE_NAME_MAX + 200];
    int n = snprintf(text, sizeof text, "cannot list partition %" PRIu32 ": node %s ",
                     j->partition, l->remote_node);
    size_t at = n > 0 && (size_t)n < sizeof text ? (size_t)n : 0;
    switch (reason) {
    case RT_R_NOCONNECTION:
        snprintf(text + at, sizeof text - at, "is unreachable");
        break;
    case RT_R_NOPROC:
        snprintf(text + at, sizeof text - at, "is unreachable (its %s service is not running)",
                 LIST_FOLD_SERVICE_NAME);
        break;
    case RT_R_TIMEOUT:
        snprintf(text + at, sizeof text - at, "did not answer in time");
        break;
    case RT_R_BADMSG:
        snprintf(text + at, sizeof text - at, "could not decode the request (another version?)");
        break;
    default:
        snprintf(text + at, sizeof text - at, "failed: its %s service exited (%s)",
                 LIST_FOLD_SERVICE_NAME, rt_reason_str(reason));
        break;
    }
    job_free(j);
    fail(l, text);
    return RT_STOP;
}

/* The answer of the remote chunk's call. */
static int on_fold_resp(lister_t *l, const rt_msg_t *m)
{
    list_job_t *j = l->remote;
    l->remote = NULL;
    l->call_ref = 0;
    Cairn__Kv__ListFoldResp *r = m->type == LIST_MSG_FOLD_RESP
                                     ? cairn__kv__list_fold_resp__unpack(NULL, m->size, m->data)
                                     : NULL;
    job_reset(j);
    if (!r) {
        j->rc = STORE_EINVAL;
        snprintf(j->err, sizeof j->err, "malformed answer from its list fold service");
        return on_job_done(l, j, l->remote_node);
    }
    Cairn__Kv__ListFoldStatus status =
        r->has_status ? r->status : CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED;
    switch (status) {
    case CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_OK:
        for (size_t i = 0; i < r->n_names; i++)
            names_push(&j->found, xdup(r->names[i].data, r->names[i].len), r->names[i].len);
        j->unreadable = r->has_unreadable ? r->unreadable : 0;
        if (r->next && !resume_from_pb(&j->next, r->next)) {
            j->rc = STORE_EINVAL;
            snprintf(j->err, sizeof j->err, "its list fold service answered a bad resume point");
        }
        break;
    case CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_RETRY:
        j->rc = STORE_ECLOSED;
        break;
    case CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_NOT_OWNER: {
        cairn__kv__list_fold_resp__free_unpacked(r, NULL);
        l->in_flight = false;
        uint64_t now = rt_now_ns();
        if (!l->not_owner_since_ns) {
            l->not_owner_since_ns = now;
        } else if (now - l->not_owner_since_ns > (uint64_t)LIST_RING_SETTLE_MS * 1000000u) {
            char text[RING_NODE_NAME_MAX + 200];
            snprintf(text, sizeof text,
                     "cannot list partition %" PRIu32 ": node %s says it does not own it "
                     "(the ring is changing; try again)", j->partition, l->remote_node);
            job_free(j);
            fail(l, text);
            return RT_STOP;
        }
        retry_later(l, j); /* the owner is looked up again then */
        return RT_CONTINUE;
    }
    default:
        j->rc = r->has_rc && r->rc < 0 ? r->rc : STORE_EIO;
        snprintf(j->err, sizeof j->err, "%s",
                 r->errmsg && *r->errmsg ? r->errmsg : store_strerror(j->rc));
        if (j->rc == STORE_ECLOSED) /* not a retry: the service said it failed */
            j->rc = STORE_EIO;
        break;
    }
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
    return on_job_done(l, j, l->remote_node);
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
    l->deadline_ns = rt_now_ns() + (uint64_t)a->timeout_ms * 1000000u;
    l->stream = a->stream;
    l->sh = a->sh;
    a->sh = NULL; /* taken */
    l->client_mon = rt_monitor(l->reply_to);
    l->deadline = rt_send_after(a->timeout_ms, l->self, rt_msg_new(LIST_MSG_TIMEOUT, 0));
    l->partitions = ring_size(kv_ring(l->kv));
    if (l->partitions == 0) {
        l->folds_done = true;
    } else {
        l->partition = 0;
        l->job = job_new(l->sh, 0);
    }
    /* start at once: the first job is submitted from the first message we send ourselves */
    rt_send(l->self, rt_msg_new(LIST_MSG_RETRY, 0));
    l->retry_pending = true;
    return 0;
}

static int lister_handle(void *state, rt_msg_t *m)
{
    lister_t *l = state;
    if (l->call_ref && (m->flags & RT_MSGF_REPLY) && m->ref == l->call_ref)
        return on_fold_resp(l, m);
    switch (m->type) {
    case LIST_MSG_CHUNK:
        return on_chunk(l, m);
    case RT_MSG_CALL_FAILED: {
        const rt_call_failed_t *f = (const rt_call_failed_t *)(const void *)m->data;
        if (!l->call_ref || f->ref != l->call_ref)
            return RT_CONTINUE;
        return on_call_failed(l, f->reason);
    }
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
        finish(l, false);
        if (reason != RT_R_NORMAL && reason != RT_R_SHUTDOWN)
            rt_send(l->reply_to, kv_reply_error(l->req_id, "list failed: %s",
                                                rt_reason_str(reason)));
    }
    if (l->deadline)
        rt_cancel_timer(l->deadline);
    if (l->client_mon)
        rt_demonitor(l->client_mon, 0);
    job_free(l->job);
    job_free(l->remote); /* a call still out: its answer, if any, is dropped with us */
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

/* ---------------------------------------------------------------- the list fold service */

typedef struct service_s {
    kv_node_t *kv;
    rt_pid_t self;
    uint32_t jobs;           /* folds in flight on the worker pool */
} service_t;

/* Answers the call `to` with a ListFoldResp: status, and what job found (NULL: nothing). */
static void service_answer(rt_from_t to, Cairn__Kv__ListFoldStatus status, const list_job_t *j,
                           const char *errmsg)
{
    Cairn__Kv__ListFoldResp r = CAIRN__KV__LIST_FOLD_RESP__INIT;
    Cairn__Kv__ListResume next;
    r.has_status = 1;
    r.status = status;
    if (j) {
        r.has_rc = 1;
        r.rc = j->rc;
        r.has_unreadable = j->unreadable != 0;
        r.unreadable = j->unreadable;
        if (status == CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_OK) {
            r.n_names = j->found.n;
            r.names = j->found.v;
            if (j->next.set) {
                resume_to_pb(&j->next, &next);
                r.next = &next;
            }
        }
    }
    r.errmsg = (char *)errmsg;
    size_t len = cairn__kv__list_fold_resp__get_packed_size(&r);
    rt_msg_t *m = rt_msg_new(LIST_MSG_FOLD_RESP, len);
    cairn__kv__list_fold_resp__pack(&r, m->data);
    rt_reply(to, m);
}

/* Why req cannot be served here (NULL: it can); *status is the answer to give. */
static const char *service_refusal(const service_t *s, const Cairn__Kv__ListFoldReq *req,
                                   Cairn__Kv__ListFoldStatus *status)
{
    *status = CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED;
    if (!req)
        return "malformed list fold request";
    if (!req->has_partition || req->partition >= ring_size(kv_ring(s->kv)))
        return "list fold request: no such partition";
    if (!req->has_type || req->type.len == 0 || req->type.len > STORE_KEY_MAX)
        return "list fold request: bad bucket type";
    bool keys = req->has_keys && req->keys;
    if (keys && (!req->has_bucket || req->bucket.len == 0 || req->bucket.len > STORE_KEY_MAX))
        return "list fold request: bad bucket";
    if (!vnode_is_local(s->kv, req->partition)) {
        *status = CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_NOT_OWNER;
        return "this node does not own the partition";
    }
    if (s->jobs >= LIST_FOLD_SERVICE_MAX_JOBS) {
        *status = CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_RETRY;
        return "busy";
    }
    return NULL;
}

static void service_on_request(service_t *s, rt_msg_t *m)
{
    rt_from_t from = rt_call_from(m);
    Cairn__Kv__ListFoldReq *req = cairn__kv__list_fold_req__unpack(NULL, m->size, m->data);
    Cairn__Kv__ListFoldStatus status;
    const char *refusal = service_refusal(s, req, &status);
    list_job_t *j = NULL;
    if (!refusal) {
        bool keys = req->has_keys && req->keys;
        list_shared_t *sh = shared_new(s->kv, keys, req->type.data, req->type.len);
        if (keys)
            sh->bucket = bin_dup(req->bucket.data, req->bucket.len);
        j = job_new(sh, req->partition);
        shared_unref(sh); /* the job holds it */
        j->caller = from;
        if (req->from && !resume_from_pb(&j->from, req->from)) {
            refusal = "list fold request: bad resume point";
            job_free(j);
            j = NULL;
        }
    }
    if (req)
        cairn__kv__list_fold_req__free_unpacked(req, NULL);
    if (refusal) {
        service_answer(from, status, NULL, refusal);
        return;
    }
    if (job_submit(j, s->self, NULL) < 0) { /* the pool's queue is full */
        service_answer(from, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_RETRY, NULL, "busy");
        return;
    }
    s->jobs++;
}

static void service_on_chunk(service_t *s, rt_msg_t *m)
{
    list_job_t *j = chunk_take(m);
    s->jobs--;
    if (j->rc == STORE_ECLOSED)
        service_answer(j->caller, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_RETRY, j, j->err);
    else if (j->rc < 0)
        service_answer(j->caller, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED, j,
                       j->err[0] ? j->err : store_strerror(j->rc));
    else
        service_answer(j->caller, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_OK, j, NULL);
    job_free(j);
}

static int service_init(void *state, void *arg)
{
    service_t *s = state;
    s->kv = arg;
    s->self = rt_self();
    int rc = rt_register(LIST_FOLD_SERVICE_NAME, s->self);
    if (rc != 0) {
        rt_error("list fold service: cannot register as %s: %s", LIST_FOLD_SERVICE_NAME,
                 rt_strerror(rc));
        return RT_R_INIT_FAILED;
    }
    return 0;
}

static int service_handle(void *state, rt_msg_t *m)
{
    service_t *s = state;
    switch (m->type) {
    case LIST_MSG_FOLD_REQ:
        if (rt_is_call(m))
            service_on_request(s, m);
        else
            rt_warn("list fold service: dropped a fold request that is not a call");
        return RT_CONTINUE;
    case LIST_MSG_CHUNK:
        service_on_chunk(s, m);
        return RT_CONTINUE;
    default:
        return RT_CONTINUE;
    }
}

const rt_behaviour_t list_fold_service_behaviour = {
    .name = "list_fold_service",
    .state_size = sizeof(service_t),
    .init = service_init,
    .handle = service_handle,
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
    list_shared_t *sh = shared_new(kv, true, "default", 7);
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
    return start_lister(kv, reply_to, req_id, start_ns, shared_new(kv, false, "default", 7), stream,
                        timeout);
}
