/*
 * handoff.c — handoff (node/handoff.h): the handoff service, its senders (one per
 * partition being transferred) and its appliers (one per batch received).
 *
 * Ownership of memory:
 *   - a fold job (hjob_t) is owned by the worker pool while it runs (job_free releases it if
 *     it is dropped at shutdown), then by its HANDOFF_MSG_CHUNK message (whose dtor frees it
 *     when the sender is gone), then by the sender, which keeps it while its batch is out
 *     (the last object's key is where the next chunk resumes);
 *   - the sender keeps the packed batch bytes until the batch is acknowledged, so a RETRY
 *     answer resends the same bytes;
 *   - an applier owns the unpacked batch it was given (freed in terminate).
 * The service owns the per-partition transfer table; senders and appliers are monitored
 * (not linked), so a sender's failure never takes the service down, and the service's
 * terminate stops every sender it started.
 */
#include "node/handoff.h"

#include "node/bucket.h"
#include "node/kvobj.h"
#include "node/ring_mgr.h"
#include "node/vnode.h"
#include "proto/kv.pb-c.h"
#include "runtime/dist.h"
#include "runtime/io.h"
#include "storage/object.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    HANDOFF_MSG_CHUNK = KV_MSG_PRIVATE + 124,  /* a fold job's result (payload: hjob_t *) */
    HANDOFF_MSG_RESEND = KV_MSG_PRIVATE + 125, /* sender timer: send the batch again */
    HANDOFF_MSG_APPLY = KV_MSG_PRIVATE + 126,  /* applier: start writing */
};
_Static_assert((int)HANDOFF_MSG_APPLY < (int)KV_MSG_PRIVATE + 140,
               "handoff.c's messages stay in its private range of node/kv.h");

#define HANDOFF_RETRY_MS 200u          /* the receiver said RETRY: send again after this */
#define HANDOFF_MAX_RETRIES 300u       /* ... at most this many times in a row (60 s) */
#define HANDOFF_MAX_APPLIERS 16u       /* batches being written here at once; beyond: RETRY */
#define HANDOFF_VNODE_CALL_MS 50000u   /* one object's write (within the batch's call) */
#define HANDOFF_BACKOFF_MIN_MS 1000u   /* a failed transfer starts over after this ... */
#define HANDOFF_BACKOFF_MAX_MS 30000u  /* ... doubling up to this */
#define HANDOFF_R_FAILED (RT_REASON_USER + 60) /* a sender's exit reason on failure */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

static ProtobufCBinaryData bin_dup(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (!d)
        abort();
    if (n)
        memcpy(d, p, n);
    return (ProtobufCBinaryData){n, d};
}

/* ---------------------------------------------------------------- activity (admin) */

/* What handoff_activity reports: per partition, the phase of its transfer and the progress
 * of its running sender. Written by the service (phases) and the senders (progress), read by
 * the ring manager for `cairn-admin transfers`. Process-wide (one node per OS process,
 * node.h), under a mutex; allocated by the service's init, freed by its terminate. */
typedef struct act_s {
    int phase;               /* xfer_phase_t below */
    bool was_owner;          /* a foreign vnode's handoff: an old owner's (else a fallback's) */
    char target[RING_NODE_NAME_MAX];
    uint64_t objects, bytes; /* sent by the running (or last) sender */
    uint64_t start_ns;       /* when the running (or last) sender started */
    bool again;              /* idle, but a foreign vnode here still has data to hand to
                              * its owner, who is up: a pass is still to come (a sender slot
                              * is free, a back-off ends, or a write landed since the last) */
} act_t;


static pthread_mutex_t act_lock = PTHREAD_MUTEX_INITIALIZER;
static act_t *act_table;
static uint32_t act_q;

static void act_progress(uint32_t p, uint64_t objects, uint64_t bytes)
{
    pthread_mutex_lock(&act_lock);
    if (act_table && p < act_q) {
        act_table[p].objects = objects;
        act_table[p].bytes = bytes;
    }
    pthread_mutex_unlock(&act_lock);
}

/* ---------------------------------------------------------------- fold jobs */

/* One bounded chunk of a partition's fold: the objects found, strictly after `from`. */
typedef struct hjob_s {
    const kv_node_t *kv;
    uint32_t partition;
    bool from_set;
    ProtobufCBinaryData from_type, from_bucket, from_key; /* owned */
    Cairn__Kv__HandoffObject *objs;                       /* owned, with their bytes */
    size_t n, cap, bytes;
    bool more;            /* stopped at the budget: resume after the last object's key */
    int rc;               /* vnode_fold's result */
    char err[256];
} hjob_t;

static void job_free(void *arg)
{
    hjob_t *j = arg;
    if (!j)
        return;
    free(j->from_type.data);
    free(j->from_bucket.data);
    free(j->from_key.data);
    for (size_t i = 0; i < j->n; i++) {
        free(j->objs[i].type.data);
        free(j->objs[i].bucket.data);
        free(j->objs[i].key.data);
        free(j->objs[i].object.data);
    }
    free(j->objs);
    free(j);
}

/* A job folding `partition` after the last object of prev (NULL: from the beginning). */
static hjob_t *job_new(const kv_node_t *kv, uint32_t partition, const hjob_t *prev)
{
    hjob_t *j = xcalloc(1, sizeof *j);
    j->kv = kv;
    j->partition = partition;
    if (prev && prev->n) {
        const Cairn__Kv__HandoffObject *last = &prev->objs[prev->n - 1];
        j->from_set = true;
        j->from_type = bin_dup(last->type.data, last->type.len);
        j->from_bucket = bin_dup(last->bucket.data, last->bucket.len);
        j->from_key = bin_dup(last->key.data, last->key.len);
    }
    return j;
}

static int job_fold_cb(void *arg, const store_key_t *k, const uint8_t *val, size_t len)
{
    hjob_t *j = arg;
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 64;
        j->objs = realloc(j->objs, j->cap * sizeof *j->objs);
        if (!j->objs)
            abort();
    }
    Cairn__Kv__HandoffObject *o = &j->objs[j->n++];
    cairn__kv__handoff_object__init(o);
    o->has_type = o->has_bucket = o->has_key = o->has_object = 1;
    o->type = bin_dup(k->type.p, k->type.n);
    o->bucket = bin_dup(k->bucket.p, k->bucket.n);
    o->key = bin_dup(k->key.p, k->key.n);
    o->object = bin_dup(val, len);
    j->bytes += k->type.n + k->bucket.n + k->key.n + len;
    if (j->n >= HANDOFF_BATCH_OBJECTS || j->bytes >= HANDOFF_BATCH_BYTES) {
        j->more = true;
        return STORE_FOLD_STOP;
    }
    return 0;
}

static void chunk_msg_dtor(rt_msg_t *m)
{
    hjob_t *j;
    memcpy(&j, m->data, sizeof j);
    job_free(j);
}

/* Runs on a worker thread: one chunk of the partition's fold (values included). */
static rt_msg_t *job_run(void *arg)
{
    hjob_t *j = arg;
    store_fold_t f = {.values = true};
    store_key_t after;
    if (j->from_set) {
        after.type = (store_slice_t){j->from_type.data, j->from_type.len};
        after.bucket = (store_slice_t){j->from_bucket.data, j->from_bucket.len};
        after.key = (store_slice_t){j->from_key.data, j->from_key.len};
        f.after = &after;
    }
    j->rc = vnode_fold(j->kv, j->partition, &f, job_fold_cb, j, j->err, sizeof j->err);
    rt_msg_t *m = rt_msg_new(HANDOFF_MSG_CHUNK, sizeof j);
    memcpy(m->data, &j, sizeof j);
    m->dtor = chunk_msg_dtor;
    return m;
}

static hjob_t *chunk_take(rt_msg_t *m)
{
    hjob_t *j;
    memcpy(&j, m->data, sizeof j);
    memset(m->data, 0, sizeof j);
    return j;
}

/* ---------------------------------------------------------------- the sender */

typedef struct sender_args_s {
    kv_node_t *kv;
    uint32_t partition;
    const char *target;
    bool drop;
} sender_args_t;

typedef struct sender_s {
    kv_node_t *kv;
    rt_pid_t self;
    uint32_t partition;
    char target[RING_NODE_NAME_MAX];
    bool drop;               /* a foreign vnode's pass: delete what the target acknowledged */
    hjob_t *job;             /* the chunk whose batch is out (NULL while folding) */
    uint8_t *packed;         /* that batch, packed (owned) */
    size_t packed_len;
    rt_ref_t call;
    rt_ref_t drop_call;      /* VNODE_MSG_DROP to the local vnode in flight (0: none) */
    uint64_t dropped, kept;
    uint32_t retries;        /* RETRY answers in a row */
    uint64_t objects, bytes, batches, start_ns;
} sender_t;

static const char *pass_name(const sender_t *s)
{
    return s->drop ? "handoff" : "transfer";
}

static _Noreturn void sender_fail(sender_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void sender_fail(sender_t *s, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    rt_warn("handoff: %s of partition %" PRIu32 " to %s failed after %" PRIu64
            " objects: %s; it starts over later",
            pass_name(s), s->partition, s->target, s->objects, text);
    rt_exit(HANDOFF_R_FAILED);
}

static int submit(sender_t *s, hjob_t *j)
{
    return rt_work_submit2(job_run, j, job_free, s->self);
}

static void send_batch(sender_t *s)
{
    s->call = rt_call_name(s->target, HANDOFF_SERVICE_NAME,
                           rt_msg_copy(HANDOFF_MSG_BATCH, s->packed, s->packed_len),
                           HANDOFF_CALL_MS);
}

static int on_chunk(sender_t *s, rt_msg_t *m)
{
    hjob_t *j = chunk_take(m);
    if (j->rc < 0) {
        char err[300];
        snprintf(err, sizeof err, "folding it failed: %s",
                 j->err[0] ? j->err : store_strerror(j->rc));
        job_free(j);
        sender_fail(s, "%s", err);
    }
    if (j->n == 0) { /* nothing (more) to send */
        job_free(j);
        double secs = (double)(rt_now_ns() - s->start_ns) / 1e9;
        rt_info("handoff: %s of partition %" PRIu32 " to %s done: %" PRIu64 " objects, %" PRIu64
                " bytes in %" PRIu64 " batches, %.2f s",
                pass_name(s), s->partition, s->target, s->objects, s->bytes, s->batches, secs);
        return RT_STOP;
    }
    Cairn__Kv__HandoffBatch b = CAIRN__KV__HANDOFF_BATCH__INIT;
    b.has_partition = 1;
    b.partition = s->partition;
    b.sender = (char *)rt_node_self();
    Cairn__Kv__HandoffObject **ptrs = xcalloc(j->n, sizeof *ptrs);
    for (size_t i = 0; i < j->n; i++)
        ptrs[i] = &j->objs[i];
    b.n_objects = j->n;
    b.objects = ptrs;
    free(s->packed);
    s->packed_len = cairn__kv__handoff_batch__get_packed_size(&b);
    s->packed = malloc(s->packed_len ? s->packed_len : 1);
    if (!s->packed)
        abort();
    cairn__kv__handoff_batch__pack(&b, s->packed);
    free(ptrs);
    s->job = j;
    s->retries = 0;
    send_batch(s);
    return RT_CONTINUE;
}

/* The batch out is done with: fold the next chunk, or stop after the last. */
static int next_chunk(sender_t *s)
{
    hjob_t *j = s->job;
    s->job = NULL;
    free(s->packed);
    s->packed = NULL;
    hjob_t *next = j->more ? job_new(s->kv, s->partition, j) : NULL;
    job_free(j);
    if (!next) {
        double secs = (double)(rt_now_ns() - s->start_ns) / 1e9;
        rt_info("handoff: %s of partition %" PRIu32 " to %s done: %" PRIu64 " objects, %" PRIu64
                " bytes in %" PRIu64 " batches, %.2f s%s",
                pass_name(s), s->partition, s->target, s->objects, s->bytes, s->batches, secs,
                s->drop ? " (sent objects dropped here)" : "");
        return RT_STOP;
    }
    if (submit(s, next) < 0)
        sender_fail(s, "the worker pool is full");
    return RT_CONTINUE;
}

static int on_drop_reply(sender_t *s, const rt_msg_t *m)
{
    s->drop_call = 0;
    vnode_drop_result_t r;
    if (m->size != sizeof r)
        sender_fail(s, "the local vnode answered the drop with something unexpected");
    memcpy(&r, m->data, sizeof r);
    if (r.rc < 0)
        sender_fail(s, "dropping the sent objects failed: %s", store_strerror(r.rc));
    s->dropped += r.dropped;
    s->kept += r.kept;
    return next_chunk(s);
}

static int on_reply(sender_t *s, const rt_msg_t *m)
{
    s->call = 0;
    Cairn__Kv__HandoffBatchResp *r =
        m->type == HANDOFF_MSG_BATCH_RESP
            ? cairn__kv__handoff_batch_resp__unpack(NULL, m->size, m->data)
            : NULL;
    if (!r)
        sender_fail(s, "malformed answer from %s", s->target);
    Cairn__Kv__HandoffStatus st =
        r->has_status ? r->status : CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED;
    char err[300];
    snprintf(err, sizeof err, "%s", r->errmsg ? r->errmsg : "");
    cairn__kv__handoff_batch_resp__free_unpacked(r, NULL);
    switch (st) {
    case CAIRN__KV__HANDOFF_STATUS__HANDOFF_OK:
        s->objects += s->job->n;
        s->bytes += s->job->bytes;
        s->batches++;
        act_progress(s->partition, s->objects, s->bytes);
        if (s->drop) { /* the target has it: delete what did not change since */
            rt_pid_t vnode = vnode_pid(s->kv, s->partition);
            if (rt_pid_is_nil(vnode))
                sender_fail(s, "the local vnode stopped");
            s->drop_call = rt_call(vnode, rt_msg_copy(VNODE_MSG_DROP, s->packed, s->packed_len),
                                   HANDOFF_VNODE_CALL_MS);
            return RT_CONTINUE;
        }
        return next_chunk(s);
    case CAIRN__KV__HANDOFF_STATUS__HANDOFF_RETRY:
        if (++s->retries > HANDOFF_MAX_RETRIES)
            sender_fail(s, "%s kept answering retry (%s)", s->target, err);
        rt_send_after(HANDOFF_RETRY_MS, s->self, rt_msg_new(HANDOFF_MSG_RESEND, 0));
        return RT_CONTINUE;
    case CAIRN__KV__HANDOFF_STATUS__HANDOFF_REFUSED:
        sender_fail(s, "%s refused it: %s", s->target, err);
    default:
        sender_fail(s, "%s could not write it: %s", s->target, err[0] ? err : "failed");
    }
}

static int sender_init(void *state, void *arg)
{
    sender_t *s = state;
    const sender_args_t *a = arg;
    s->kv = a->kv;
    s->self = rt_self();
    s->partition = a->partition;
    snprintf(s->target, sizeof s->target, "%s", a->target);
    s->drop = a->drop;
    s->start_ns = rt_now_ns();
    if (submit(s, job_new(s->kv, s->partition, NULL)) < 0) {
        rt_warn("handoff: cannot start folding partition %" PRIu32 ": the worker pool is full",
                s->partition);
        return RT_R_INIT_FAILED;
    }
    return 0;
}

static int sender_handle(void *state, rt_msg_t *m)
{
    sender_t *s = state;
    if (s->call && (m->flags & RT_MSGF_REPLY) && m->ref == s->call)
        return on_reply(s, m);
    if (s->drop_call && (m->flags & RT_MSGF_REPLY) && m->ref == s->drop_call)
        return on_drop_reply(s, m);
    switch (m->type) {
    case HANDOFF_MSG_CHUNK:
        return on_chunk(s, m);
    case HANDOFF_MSG_RESEND:
        if (s->packed && !s->call)
            send_batch(s);
        return RT_CONTINUE;
    case RT_MSG_CALL_FAILED: {
        const rt_call_failed_t *f = (const rt_call_failed_t *)(const void *)m->data;
        if (s->drop_call && f->ref == s->drop_call)
            sender_fail(s, "the local vnode did not answer the drop: %s",
                        rt_reason_str(f->reason));
        if (!s->call || f->ref != s->call)
            return RT_CONTINUE;
        s->call = 0;
        if (f->reason == RT_R_NOPROC)
            sender_fail(s, "%s has no %s service", s->target, HANDOFF_SERVICE_NAME);
        sender_fail(s, "the batch call to %s failed: %s", s->target, rt_reason_str(f->reason));
    }
    default:
        return RT_CONTINUE;
    }
}

static void sender_terminate(void *state, int reason)
{
    sender_t *s = state;
    (void)reason;
    job_free(s->job);
    free(s->packed);
}

static const rt_behaviour_t sender_behaviour = {
    .name = "handoff_sender",
    .state_size = sizeof(sender_t),
    .init = sender_init,
    .handle = sender_handle,
    .terminate = sender_terminate,
};

/* ---------------------------------------------------------------- the applier */

typedef struct applier_args_s {
    kv_node_t *kv;
    rt_from_t caller;
    rt_pid_t vnode;
    Cairn__Kv__HandoffBatch *batch; /* taken by a successful init */
} applier_args_t;

typedef struct applier_s {
    kv_node_t *kv;
    rt_from_t caller;
    rt_pid_t vnode;
    Cairn__Kv__HandoffBatch *batch; /* owned */
    uint32_t outstanding, applied;
    bool answered;
    Cairn__Kv__HandoffStatus status; /* OK until a write fails (FAILED) or is shed (RETRY) */
    char err[300];
} applier_t;

static void batch_answer(rt_from_t to, Cairn__Kv__HandoffStatus st, uint32_t applied,
                         const char *errmsg)
{
    Cairn__Kv__HandoffBatchResp r = CAIRN__KV__HANDOFF_BATCH_RESP__INIT;
    r.has_status = 1;
    r.status = st;
    r.has_applied = 1;
    r.applied = applied;
    r.errmsg = errmsg && *errmsg ? (char *)errmsg : NULL;
    size_t len = cairn__kv__handoff_batch_resp__get_packed_size(&r);
    rt_msg_t *m = rt_msg_new(HANDOFF_MSG_BATCH_RESP, len);
    cairn__kv__handoff_batch_resp__pack(&r, m->data);
    rt_reply(to, m);
}

static void applier_note_failure(applier_t *a, Cairn__Kv__HandoffStatus st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void applier_note_failure(applier_t *a, Cairn__Kv__HandoffStatus st, const char *fmt, ...)
{
    if (a->status == CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED)
        return; /* keep the first hard failure */
    a->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
}

static int applier_finish_if_done(applier_t *a)
{
    if (a->outstanding)
        return RT_CONTINUE;
    a->answered = true;
    batch_answer(a->caller, a->status, a->applied, a->err);
    return RT_STOP;
}

static int applier_start(applier_t *a)
{
    uint32_t now = (uint32_t)time(NULL);
    uint32_t p = a->batch->partition;
    for (size_t i = 0; i < a->batch->n_objects; i++) {
        const Cairn__Kv__HandoffObject *o = a->batch->objects[i];
        if (!o->has_bucket || !o->has_key || !o->has_object) {
            applier_note_failure(a, CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED,
                                 "object %zu of the batch lacks its bucket, key or value", i);
            continue;
        }
        store_slice_t type = {o->has_type ? o->type.data : NULL, o->has_type ? o->type.len : 0};
        store_slice_t bucket = {o->bucket.data, o->bucket.len};
        store_slice_t key = {o->key.data, o->key.len};
        store_slice_t obj = {o->object.data, o->object.len};
        bucket_props_t props;
        store_props_t sp = store_props_default(true);
        if (bucket_props_get(a->kv->buckets, type.p, type.n, bucket.p, bucket.n, &props) == 0)
            sp = props.store;
        rt_call(a->vnode, kvobj_vnode_put_replica_msg(p, type, bucket, key, obj, &sp, now, false),
                HANDOFF_VNODE_CALL_MS);
        a->outstanding++;
    }
    return applier_finish_if_done(a);
}

static void applier_on_reply(applier_t *a, const rt_msg_t *m)
{
    a->outstanding--;
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (!pb || pb->descriptor != &cairn__kv__vnode_put_resp__descriptor) {
        applier_note_failure(a, CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED,
                             "vnode %" PRIu32 " answered something unexpected",
                             a->batch->partition);
        return;
    }
    const Cairn__Kv__VnodePutResp *r = (const Cairn__Kv__VnodePutResp *)pb;
    Cairn__Kv__Status st = r->has_status ? r->status : CAIRN__KV__STATUS__FAILED;
    if (st == CAIRN__KV__STATUS__OK)
        a->applied++;
    else if (st == CAIRN__KV__STATUS__OVERLOAD)
        applier_note_failure(a, CAIRN__KV__HANDOFF_STATUS__HANDOFF_RETRY,
                             "vnode %" PRIu32 " is overloaded", a->batch->partition);
    else
        applier_note_failure(a, CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED,
                             "vnode %" PRIu32 ": %s", a->batch->partition,
                             r->errmsg ? r->errmsg : "write failed");
}

static int applier_init(void *state, void *arg)
{
    applier_t *a = state;
    applier_args_t *args = arg;
    a->kv = args->kv;
    a->caller = args->caller;
    a->vnode = args->vnode;
    a->batch = args->batch;
    args->batch = NULL; /* taken */
    a->status = CAIRN__KV__HANDOFF_STATUS__HANDOFF_OK;
    rt_send(rt_self(), rt_msg_new(HANDOFF_MSG_APPLY, 0));
    return 0;
}

static int applier_handle(void *state, rt_msg_t *m)
{
    applier_t *a = state;
    if (m->flags & RT_MSGF_REPLY) {
        applier_on_reply(a, m);
        return applier_finish_if_done(a);
    }
    switch (m->type) {
    case HANDOFF_MSG_APPLY:
        return applier_start(a);
    case RT_MSG_CALL_FAILED: {
        const rt_call_failed_t *f = (const rt_call_failed_t *)(const void *)m->data;
        a->outstanding--;
        /* the vnode restarted (or is stuck): the sender sends the batch again */
        applier_note_failure(a, CAIRN__KV__HANDOFF_STATUS__HANDOFF_RETRY,
                             "vnode %" PRIu32 " did not answer: %s", a->batch->partition,
                             rt_reason_str(f->reason));
        return applier_finish_if_done(a);
    }
    default:
        return RT_CONTINUE;
    }
}

static void applier_terminate(void *state, int reason)
{
    applier_t *a = state;
    if (!a->answered && a->batch)
        batch_answer(a->caller, CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED, a->applied,
                     reason == RT_R_SHUTDOWN ? "the receiving node is stopping"
                                             : "the batch's writer crashed");
    if (a->batch)
        cairn__kv__handoff_batch__free_unpacked(a->batch, NULL);
}

static const rt_behaviour_t applier_behaviour = {
    .name = "handoff_applier",
    .state_size = sizeof(applier_t),
    .init = applier_init,
    .handle = applier_handle,
    .terminate = applier_terminate,
};

/* ---------------------------------------------------------------- the service */

typedef enum {
    XFER_IDLE,       /* nothing running for this partition */
    XFER_SENDING,    /* ownership: a sender transfers it to its next owner */
    XFER_REPORTED,   /* ownership: the data is across; waiting for the owner to switch */
    XFER_HANDING,    /* foreign vnode: a sender hands its data to the owner and drops it */
    XFER_RETIRING    /* foreign vnode: handed off; asked to retire (VNODE_MSG_RETIRE) */
} xfer_phase_t;

typedef struct xfer_s {
    xfer_phase_t phase;
    char target[RING_NODE_NAME_MAX];
    rt_ref_t mon;            /* the running sender's monitor (0: none) */
    rt_pid_t pid;
    rt_ref_t retire;         /* the VNODE_MSG_RETIRE call in flight (0: none) */
    bool was_owner;          /* the foreign vnode is an old owner's (else a fallback's) */
    bool again;              /* mirrors act_t.again */
    uint32_t failures;       /* in a row: the back-off */
    uint64_t not_before_ns;  /* after a failure: no new sender before this */
} xfer_t;

typedef struct service_s {
    kv_node_t *kv;
    uint32_t q;
    xfer_t *x;               /* q entries (owned) */
    uint32_t senders;        /* running */
    uint32_t appliers;       /* running */
} service_t;

uint32_t handoff_foreign_vnodes(const kv_node_t *kv)
{
    uint32_t n = 0, q = ring_size(kv_ring(kv));
    for (uint32_t p = 0; p < q; p++)
        n += !rt_pid_is_nil(vnode_pid(kv, p)) && !vnode_should_run(kv, p);
    return n;
}

/* The outbound transfer limit: handoff.concurrency at start, handoff_set_limit after. */
static _Atomic uint32_t limit_override; /* 0: the configured value */

static const char *phase_kind(const act_t *a)
{
    if (a->phase == XFER_SENDING || a->phase == XFER_REPORTED)
        return "ownership";
    return a->was_owner ? "ownership (final pass)" : "hinted";
}

/* x's phase (and target) becomes `phase`, also in the activity table. */
static void set_phase(service_t *s, uint32_t p, xfer_phase_t phase, const char *target)
{
    xfer_t *x = &s->x[p];
    x->phase = phase;
    x->again = false; /* any move ends the wait for another pass */
    if (target && target != x->target)
        snprintf(x->target, sizeof x->target, "%s", target);
    pthread_mutex_lock(&act_lock);
    if (act_table && p < act_q) {
        act_t *a = &act_table[p];
        if (phase == XFER_SENDING || phase == XFER_HANDING) {
            a->objects = a->bytes = 0;
            a->start_ns = rt_now_ns();
        }
        a->phase = (int)phase;
        a->again = false;
        a->was_owner = x->was_owner;
        snprintf(a->target, sizeof a->target, "%s", x->target);
    }
    pthread_mutex_unlock(&act_lock);
}

/* Marks partition p as waiting for another hand-off pass (see act_t.again), or not. */
static void set_again(service_t *s, uint32_t p, bool again)
{
    if (s->x[p].again == again)
        return;
    s->x[p].again = again;
    pthread_mutex_lock(&act_lock);
    if (act_table && p < act_q)
        act_table[p].again = again;
    pthread_mutex_unlock(&act_lock);
}

size_t handoff_activity(handoff_activity_t *out, size_t max)
{
    size_t count = 0;
    uint64_t now = rt_now_ns();
    pthread_mutex_lock(&act_lock);
    for (uint32_t p = 0; act_table && p < act_q; p++) {
        const act_t *a = &act_table[p];
        const char *what = a->phase == XFER_SENDING    ? "sending"
                           : a->phase == XFER_HANDING  ? "sending"
                           : a->phase == XFER_REPORTED ? "sent; waiting for the ownership switch"
                           : a->phase == XFER_RETIRING ? "sent; retiring the local copy"
                           : a->again ? "waiting for a hand-off pass"
                                      : NULL;
        if (!what)
            continue;
        if (count < max) {
            handoff_activity_t *o = &out[count];
            memset(o, 0, sizeof *o);
            o->partition = p;
            snprintf(o->target, sizeof o->target, "%s", a->target);
            snprintf(o->kind, sizeof o->kind, "%s", phase_kind(a));
            snprintf(o->state, sizeof o->state, "%s", what);
            o->objects = a->objects;
            o->bytes = a->bytes;
            o->elapsed_ms = a->start_ns && now > a->start_ns ? (now - a->start_ns) / 1000000u : 0;
        }
        count++;
    }
    pthread_mutex_unlock(&act_lock);
    return count;
}

uint32_t handoff_limit(const kv_node_t *kv)
{
    uint32_t o = atomic_load_explicit(&limit_override, memory_order_relaxed);
    if (o)
        return o;
    return kv && kv->cfg ? kv->cfg->handoff_concurrency : 2;
}

void handoff_set_limit(uint32_t limit)
{
    atomic_store_explicit(&limit_override, limit, memory_order_relaxed);
    rt_send_name(NULL, HANDOFF_SERVICE_NAME, rt_msg_new(HANDOFF_MSG_CHECK, 0));
}

static void report_done(uint32_t p, const char *target)
{
    rt_msg_t *m = rt_msg_new(HANDOFF_MSG_TRANSFER_DONE, sizeof(handoff_done_t));
    handoff_done_t *d = (handoff_done_t *)(void *)m->data;
    memset(d, 0, sizeof *d);
    d->partition = p;
    snprintf(d->target, sizeof d->target, "%s", target);
    rt_send_name(NULL, RING_MGR_NAME, m);
}

/* Starts a sender of partition p to target; false (nothing changed) when it cannot. */
static bool start_sender(service_t *s, uint32_t p, const char *target, bool drop)
{
    xfer_t *x = &s->x[p];
    sender_args_t a = {.kv = s->kv, .partition = p, .target = target, .drop = drop};
    rt_ref_t mon = 0;
    rt_spawn_opts_t o = {.monitor = &mon};
    rt_pid_t pid;
    int rc = rt_spawn_opt(&sender_behaviour, &a, &o, &pid);
    if (rc < 0) {
        x->not_before_ns = rt_now_ns() + (uint64_t)HANDOFF_BACKOFF_MIN_MS * 1000000u;
        return false;
    }
    x->mon = mon;
    x->pid = pid;
    set_phase(s, p, drop ? XFER_HANDING : XFER_SENDING, target);
    s->senders++;
    rt_info("handoff: %s of partition %" PRIu32 " to %s started",
            drop ? (x->was_owner ? "final ownership pass" : "hinted handoff") : "transfer", p,
            target);
    return true;
}

/* The next attempt of x waits: 1 s doubling up to 30 s. */
static void back_off(xfer_t *x)
{
    uint32_t shift = x->failures < 5 ? x->failures : 5;
    uint64_t ms = (uint64_t)HANDOFF_BACKOFF_MIN_MS << shift;
    if (ms > HANDOFF_BACKOFF_MAX_MS)
        ms = HANDOFF_BACKOFF_MAX_MS;
    x->failures++;
    x->not_before_ns = rt_now_ns() + ms * 1000000u;
}

/* Partition p's vnode runs here though this node neither owns p nor is to own it: hand its
 * data to the owner when the owner is up. */
static void check_foreign(service_t *s, uint32_t p, const cstate_t *cs, uint64_t now)
{
    xfer_t *x = &s->x[p];
    if (x->phase != XFER_IDLE)
        return;
    uint32_t owner = ring_owner(cstate_ring(cs), p);
    const char *target = cstate_member_name(cs, owner);
    if (!target || !rt_node_is_up(target)) {
        set_again(s, p, false); /* a fallback keeps the data until its owner is back */
        return;
    }
    if (now < x->not_before_ns || s->senders >= handoff_limit(s->kv)) {
        set_again(s, p, true); /* `transfers` must not look idle meanwhile */
        return;
    }
    start_sender(s, p, target, true);
}

/* Looks at the current cluster state and starts what can start. */
static void check(service_t *s)
{
    const cstate_t *cs = kv_cstate(s->kv);
    const ring_t *r = cstate_ring(cs);
    uint32_t me = kv_self_member(s->kv, cs);
    if (me == CSTATE_NONE)
        return;
    uint64_t now = rt_now_ns();
    uint32_t q = cstate_size(cs) < s->q ? cstate_size(cs) : s->q;
    for (uint32_t p = 0; p < q; p++) {
        xfer_t *x = &s->x[p];
        if (x->phase == XFER_SENDING || x->phase == XFER_HANDING || x->phase == XFER_RETIRING)
            continue;
        uint32_t owner = ring_owner(r, p), next = cstate_next_owner(cs, p);
        if (owner == me && next != CSTATE_NONE) {
            const char *target = cstate_member_name(cs, next);
            if (x->phase != XFER_IDLE && strcmp(x->target, target) != 0)
                set_phase(s, p, XFER_IDLE, NULL); /* another transfer than the one we knew */
            if (cstate_transfer_is_done(cs, p)) {
                if (x->phase != XFER_REPORTED)
                    set_phase(s, p, XFER_REPORTED, target);
                continue;
            }
            if (x->phase == XFER_REPORTED) { /* the done mark was lost: report again */
                report_done(p, target);
                continue;
            }
            if (now < x->not_before_ns || s->senders >= handoff_limit(s->kv))
                continue;
            x->was_owner = false;
            start_sender(s, p, target, false);
            continue;
        }
        if (x->phase == XFER_REPORTED) { /* switched (or dropped): the vnode is foreign now */
            x->was_owner = owner != me;
            set_phase(s, p, XFER_IDLE, NULL);
        }
        if (!rt_pid_is_nil(vnode_pid(s->kv, p)) && !vnode_should_run(s->kv, p))
            check_foreign(s, p, cs, now);
        else
            set_again(s, p, false); /* not foreign (any more): nothing left to hand off */
    }
}

/* A foreign vnode's data is with its owner: ask it to retire (it refuses if a write landed
 * since, and the next check hands that off too). */
static void ask_retire(service_t *s, uint32_t p)
{
    xfer_t *x = &s->x[p];
    rt_pid_t vnode = vnode_pid(s->kv, p);
    if (rt_pid_is_nil(vnode)) {
        set_phase(s, p, XFER_IDLE, NULL);
        return;
    }
    x->retire = rt_call(vnode, rt_msg_new(VNODE_MSG_RETIRE, 0), HANDOFF_VNODE_CALL_MS);
    set_phase(s, p, XFER_RETIRING, NULL);
}

static void on_retire_answer(service_t *s, uint32_t p, int32_t answer)
{
    xfer_t *x = &s->x[p];
    x->retire = 0;
    set_phase(s, p, XFER_IDLE, NULL);
    if (answer == 0) {
        x->failures = 0;
        x->not_before_ns = 0;
        x->was_owner = false;
    } else if (answer == 1) { /* a write landed meanwhile: another pass soon */
        x->not_before_ns = rt_now_ns() + (uint64_t)HANDOFF_RETRY_MS * 1000000u;
        set_again(s, p, true); /* until check() looks again: `transfers` must not look idle */
    } else if (answer < 0) {
        rt_warn("handoff: partition %" PRIu32 " could not retire: %s", p,
                store_strerror(answer));
        back_off(x);
    }
}

static void on_sender_down(service_t *s, xfer_t *x, uint32_t p, int reason)
{
    s->senders--;
    x->mon = 0;
    x->pid = RT_NOPID;
    if (reason == RT_R_NORMAL) {
        x->failures = 0;
        x->not_before_ns = 0;
        if (x->phase == XFER_SENDING) {
            set_phase(s, p, XFER_REPORTED, NULL);
            report_done(p, x->target);
        } else {
            ask_retire(s, p);
        }
        return;
    }
    if (reason != HANDOFF_R_FAILED) /* sender_fail logged the others */
        rt_warn("handoff: the %s of partition %" PRIu32 " to %s ended: %s; it starts over later",
                x->phase == XFER_HANDING ? "handoff" : "transfer", p, x->target,
                rt_reason_str(reason));
    back_off(x);
    set_phase(s, p, XFER_IDLE, NULL);
}

static void on_down(service_t *s, const rt_down_msg_t *d)
{
    for (uint32_t p = 0; p < s->q; p++)
        if (s->x[p].mon == d->ref) {
            on_sender_down(s, &s->x[p], p, d->reason);
            check(s); /* a slot is free */
            return;
        }
    if (s->appliers) /* every other monitor of ours is an applier's */
        s->appliers--;
}

static void on_batch(service_t *s, rt_msg_t *m)
{
    rt_from_t from = rt_call_from(m);
    Cairn__Kv__HandoffBatch *b = cairn__kv__handoff_batch__unpack(NULL, m->size, m->data);
    if (!b || !b->has_partition || b->partition >= s->q) {
        batch_answer(from, CAIRN__KV__HANDOFF_STATUS__HANDOFF_FAILED, 0,
                     "malformed handoff batch");
        if (b)
            cairn__kv__handoff_batch__free_unpacked(b, NULL);
        return;
    }
    uint32_t p = b->partition;
    char err[160];
    if (!vnode_should_run(s->kv, p)) {
        snprintf(err, sizeof err,
                 "%s neither owns partition %" PRIu32 " nor is its next owner", rt_node_self(), p);
        batch_answer(from, CAIRN__KV__HANDOFF_STATUS__HANDOFF_REFUSED, 0, err);
        cairn__kv__handoff_batch__free_unpacked(b, NULL);
        return;
    }
    rt_pid_t vnode = vnode_pid(s->kv, p);
    if (rt_pid_is_nil(vnode) || s->appliers >= HANDOFF_MAX_APPLIERS) {
        if (rt_pid_is_nil(vnode))
            snprintf(err, sizeof err, "vnode %" PRIu32 " is starting", p);
        else
            snprintf(err, sizeof err, "busy: %u batches being written", s->appliers);
        batch_answer(from, CAIRN__KV__HANDOFF_STATUS__HANDOFF_RETRY, 0, err);
        cairn__kv__handoff_batch__free_unpacked(b, NULL);
        return;
    }
    applier_args_t a = {.kv = s->kv, .caller = from, .vnode = vnode, .batch = b};
    rt_ref_t mon = 0;
    rt_spawn_opts_t o = {.monitor = &mon};
    if (rt_spawn_opt(&applier_behaviour, &a, &o, NULL) < 0) {
        batch_answer(from, CAIRN__KV__HANDOFF_STATUS__HANDOFF_RETRY, 0, "cannot start a writer");
        if (a.batch)
            cairn__kv__handoff_batch__free_unpacked(a.batch, NULL);
        return;
    }
    s->appliers++;
}

static int service_init(void *state, void *arg)
{
    service_t *s = state;
    s->kv = arg;
    s->q = ring_size(kv_ring(s->kv));
    s->x = xcalloc(s->q, sizeof *s->x);
    pthread_mutex_lock(&act_lock);
    free(act_table);
    act_table = xcalloc(s->q, sizeof *act_table);
    act_q = s->q;
    pthread_mutex_unlock(&act_lock);
    int rc = rt_register(HANDOFF_SERVICE_NAME, rt_self());
    if (rc != 0) {
        rt_error("handoff service: cannot register as %s: %s", HANDOFF_SERVICE_NAME,
                 rt_strerror(rc));
        free(s->x);
        s->x = NULL;
        return RT_R_INIT_FAILED;
    }
    return 0;
}

static int service_handle(void *state, rt_msg_t *m)
{
    service_t *s = state;
    switch (m->type) {
    case HANDOFF_MSG_BATCH:
        if (rt_is_call(m))
            on_batch(s, m);
        else
            rt_warn("handoff service: dropped a batch that is not a call");
        return RT_CONTINUE;
    case HANDOFF_MSG_CHECK:
        check(s);
        return RT_CONTINUE;
    case RT_MSG_DOWN:
        on_down(s, (const rt_down_msg_t *)(const void *)m->data);
        return RT_CONTINUE;
    case RT_MSG_CALL_FAILED: { /* a retire call: the vnode died (it restarts, or is gone) */
        const rt_call_failed_t *f = (const rt_call_failed_t *)(const void *)m->data;
        for (uint32_t p = 0; p < s->q; p++)
            if (s->x[p].retire && s->x[p].retire == f->ref)
                on_retire_answer(s, p, STORE_ECLOSED);
        return RT_CONTINUE;
    }
    default:
        if (m->type == VNODE_MSG_RETIRE && (m->flags & RT_MSGF_REPLY)) {
            int32_t answer = STORE_EINVAL;
            if (m->size == sizeof answer)
                memcpy(&answer, m->data, sizeof answer);
            for (uint32_t p = 0; p < s->q; p++)
                if (s->x[p].retire && s->x[p].retire == m->ref) {
                    on_retire_answer(s, p, answer);
                    check(s);
                }
        }
        return RT_CONTINUE;
    }
}

static void service_terminate(void *state, int reason)
{
    service_t *s = state;
    (void)reason;
    for (uint32_t p = 0; s->x && p < s->q; p++)
        if (s->x[p].mon) {
            rt_demonitor(s->x[p].mon, 0);
            rt_exit_signal(s->x[p].pid, RT_R_SHUTDOWN);
        }
    free(s->x);
    pthread_mutex_lock(&act_lock);
    free(act_table);
    act_table = NULL;
    act_q = 0;
    pthread_mutex_unlock(&act_lock);
}

const rt_behaviour_t handoff_service_behaviour = {
    .name = "handoff_service",
    .state_size = sizeof(service_t),
    .init = service_init,
    .handle = service_handle,
    .terminate = service_terminate,
};
