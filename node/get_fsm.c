/*
 * get_fsm.c — the get coordinator (Riak's riak_kv_get_fsm) and the tombstone reaper; entry
 * point kv_get of node/kv.h.
 *
 * One short-lived process per request. It asks all N vnodes of the key's preference list,
 * merges the objects as they arrive (siblings kept), replies to the connection once R (and
 * PR) are met or can no longer be met (node/quorum.c decides), then keeps collecting until
 * every vnode answered or the request timed out, and finally read-repairs stale or missing
 * replicas and, when every replica holds the same tombstone, starts a reaper per delete_mode.
 * Exactly one KV_MSG_REPLY reaches the connection, whatever the vnodes do.
 *
 * Ownership: the process owns the request (freed at exit), the decoded replica objects and
 * the merged object. The reaper is a separate tiny process that owns copies of what it needs.
 */
#include "node/kv.h"
#include "node/bucket.h"
#include "node/kvobj.h"
#include "node/quorum.h"
#include "node/vnode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    GET_MSG_TIMEOUT = KV_MSG_PRIVATE + 20, /* the request's timer */
    GET_MSG_KICK = KV_MSG_PRIVATE + 21,    /* wake up to stop (decided inside init) */
    REAP_MSG_START = KV_MSG_PRIVATE + 22,  /* the reaper's delay is over */
};

#define GET_INLINE_REPLICAS 5
#define PB_CODE_GET_RESP 10 /* RpbGetResp (riak-facts 6.2) */
#define REAP_CALL_TIMEOUT_MS 5000

static const store_slice_t default_type = {(const uint8_t *)"default", 7};

static store_slice_t bin_slice(protobuf_c_boolean has, ProtobufCBinaryData b)
{
    return has ? (store_slice_t){b.data, b.len} : (store_slice_t){NULL, 0};
}

/* ---------------------------------------------------------------- the reaper */

typedef struct reaper_arg_s {
    kv_node_t *kv;
    store_slice_t type, bucket, key, clock;
    const uint32_t *partitions;
    uint32_t n;
    uint32_t delay_ms;
} reaper_arg_t;

typedef struct reaper_s {
    kv_node_t *kv;
    uint8_t *bytes;              /* type, bucket, key, clock copies (one allocation) */
    store_slice_t type, bucket, key, clock;
    uint32_t *partitions;
    rt_ref_t *refs;
    uint32_t n, pending, reaped;
} reaper_t;

static void reaper_send(reaper_t *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        rt_pid_t pid = vnode_pid(r->kv, r->partitions[i]);
        if (rt_pid_is_nil(pid))
            continue;
        rt_msg_t *m = kvobj_vnode_reap_msg(r->partitions[i], r->type, r->bucket, r->key, r->clock);
        r->refs[i] = rt_call(pid, m, REAP_CALL_TIMEOUT_MS);
        if (r->refs[i])
            r->pending++;
    }
}

static int reaper_init(void *state, void *arg)
{
    reaper_t *r = state;
    const reaper_arg_t *a = arg;
    r->kv = a->kv;
    r->n = a->n;
    size_t total = a->type.n + a->bucket.n + a->key.n + a->clock.n;
    r->bytes = malloc(total ? total : 1);
    r->partitions = calloc(a->n ? a->n : 1, sizeof *r->partitions);
    r->refs = calloc(a->n ? a->n : 1, sizeof *r->refs);
    if (!r->bytes || !r->partitions || !r->refs)
        abort();
    uint8_t *cur = r->bytes;
    const store_slice_t *src[4] = {&a->type, &a->bucket, &a->key, &a->clock};
    store_slice_t *dst[4] = {&r->type, &r->bucket, &r->key, &r->clock};
    for (int i = 0; i < 4; i++) {
        if (src[i]->n)
            memcpy(cur, src[i]->p, src[i]->n);
        *dst[i] = (store_slice_t){cur, src[i]->n};
        cur += src[i]->n;
    }
    memcpy(r->partitions, a->partitions, a->n * sizeof *r->partitions);
    if (a->delay_ms == 0) {
        reaper_send(r);
        if (r->pending == 0)
            rt_send(rt_self(), rt_msg_new(GET_MSG_KICK, 0));
    } else {
        rt_send_after(a->delay_ms, rt_self(), rt_msg_new(REAP_MSG_START, 0));
    }
    return 0;
}

static int reaper_handle(void *state, rt_msg_t *m)
{
    reaper_t *r = state;
    if (m->type == REAP_MSG_START) {
        reaper_send(r);
        return r->pending ? RT_CONTINUE : RT_STOP;
    }
    if (m->type == GET_MSG_KICK)
        return RT_STOP;
    rt_ref_t ref = 0;
    bool ok = false;
    if (m->flags & RT_MSGF_REPLY) {
        ref = m->ref;
        const ProtobufCMessage *pb = rt_msg_pb_get(m);
        if (pb && pb->descriptor == &cairn__kv__vnode_reap_resp__descriptor) {
            const Cairn__Kv__VnodeReapResp *resp = (const Cairn__Kv__VnodeReapResp *)pb;
            ok = resp->has_status && resp->status == CAIRN__KV__STATUS__OK;
        }
    } else if (m->type == RT_MSG_CALL_FAILED) {
        ref = ((const rt_call_failed_t *)(const void *)m->data)->ref;
    } else {
        return RT_CONTINUE;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->refs[i] && r->refs[i] == ref) {
            r->refs[i] = 0;
            r->pending--;
            if (ok)
                r->reaped++;
            break;
        }
    }
    if (r->pending)
        return RT_CONTINUE;
    if (r->reaped == r->n) /* gone from every replica */
        atomic_fetch_add_explicit(&r->kv->stats.tombstones_reaped, 1, memory_order_relaxed);
    return RT_STOP;
}

static void reaper_terminate(void *state, int reason)
{
    reaper_t *r = state;
    free(r->bytes);
    free(r->partitions);
    free(r->refs);
}

static const rt_behaviour_t reaper_behaviour = {
    .name = "kv_reaper",
    .state_size = sizeof(reaper_t),
    .init = reaper_init,
    .handle = reaper_handle,
    .terminate = reaper_terminate,
};

/* ---------------------------------------------------------------- the get coordinator */

typedef struct get_replica_s {
    uint32_t partition;
    bool primary;
    bool answered;
    quorum_reply_t reply;
    rt_ref_t ref;            /* the call in flight (0: none) */
    store_obj_t *obj;        /* VALUE / TOMBSTONE: the decoded object (owned) */
} get_replica_t;

typedef struct get_fsm_s {
    kv_node_t *kv;
    rt_pid_t self, reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbGetReq *req;            /* owned */
    store_slice_t type, bucket, key; /* borrowed from req */
    bucket_props_t props;
    uint32_t n;                      /* the request's N */
    quorum_get_t q;
    get_replica_t *reps;
    uint32_t n_reps;
    get_replica_t inline_reps[GET_INLINE_REPLICAS];
    store_obj_t *merged;             /* merge of every object received (owned) */
    rt_timer_t timer;
    bool replied, finished;
} get_fsm_t;

typedef struct get_start_s {
    kv_node_t *kv;
    rt_pid_t reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbGetReq *req;
    bool taken;                      /* init ran: the process owns req */
} get_start_t;

static void get_reply(get_fsm_t *s, rt_msg_t *reply, bool ok)
{
    s->replied = true;
    kv_stats_record(&s->kv->stats, KV_OP_GET, s->start_ns, ok); /* before the client can look */
    rt_send(s->reply_to, reply);
}

static void get_reply_error(get_fsm_t *s, const char *text)
{
    get_reply(s, kv_reply_error(s->req_id, "%s", text), false);
}

static void get_reply_notfound(get_fsm_t *s, const store_obj_t *tombstone)
{
    Riak__RpbGetResp resp = RIAK__RPB_GET_RESP__INIT;
    uint8_t *vc = NULL;
    size_t vc_len = 0;
    if (tombstone && s->req->has_deletedvclock && s->req->deletedvclock &&
        store_vclock_encode(&tombstone->clock, &vc, &vc_len) == 0) {
        resp.has_vclock = 1;
        resp.vclock.data = vc;
        resp.vclock.len = vc_len;
    }
    get_reply(s, kv_reply_new(s->req_id, false, PB_CODE_GET_RESP, &resp.base), true);
    free(vc);
}

/* The client's view of the merged object: a value, or a tombstone (notfound). */
static void get_reply_merged(get_fsm_t *s)
{
    const store_obj_t *o = s->merged;
    if (!o || !o->n_sibs) {
        get_reply_notfound(s, NULL);
        return;
    }
    bool allow_mult = s->props.allow_mult;
    const store_sib_t *visible = allow_mult ? NULL : store_obj_resolve(o);
    if (store_obj_is_tombstone(o) || (visible && visible->c.deleted)) {
        get_reply_notfound(s, o);
        return;
    }
    if (s->req->has_if_modified) {
        store_vclock_t theirs = STORE_VCLOCK_INIT;
        bool same = store_vclock_decode(s->req->if_modified.data, s->req->if_modified.len,
                                        &theirs) == 0 &&
                    store_vclock_equal(&theirs, &o->clock);
        store_vclock_clear(&theirs);
        if (same) {
            Riak__RpbGetResp resp = RIAK__RPB_GET_RESP__INIT;
            resp.has_unchanged = 1;
            resp.unchanged = 1;
            get_reply(s, kv_reply_new(s->req_id, false, PB_CODE_GET_RESP, &resp.base),
                      true);
            return;
        }
    }
    Riak__RpbGetResp resp;
    bool head = s->req->has_head && s->req->head;
    int rc = kvobj_get_resp_build(o, allow_mult, head, &resp);
    if (rc != 0) {
        get_reply_error(s, "cannot encode the object's vclock");
        return;
    }
    get_reply(s, kv_reply_new(s->req_id, false, PB_CODE_GET_RESP, &resp.base), true);
    kvobj_get_resp_clear(&resp);
}

static void get_finish(get_fsm_t *s)
{
    if (!s->finished) {
        s->finished = true;
        rt_send(s->self, rt_msg_new(GET_MSG_KICK, 0));
    }
}

/* Read repair and tombstone reaping, once every replica answered (or time ran out). */
static void get_final_action(get_fsm_t *s)
{
    const store_obj_t *m = s->merged;
    if (!m)
        return;
    uint32_t repairs = 0, same_tombstones = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint32_t now = (uint32_t)time(NULL);
    for (uint32_t i = 0; i < s->n_reps; i++) {
        get_replica_t *r = &s->reps[i];
        if (!r->answered)
            continue;
        if (quorum_needs_repair(r->reply, &m->clock, r->obj ? &r->obj->clock : NULL)) {
            rt_pid_t pid = vnode_pid(s->kv, r->partition);
            repairs++;
            if (rt_pid_is_nil(pid))
                continue;
            if (!bytes && store_obj_encode(m, &bytes, &len) != 0)
                return;
            rt_msg_t *msg = kvobj_vnode_put_replica_msg(r->partition, s->type, s->bucket, s->key,
                                                        (store_slice_t){bytes, len},
                                                        &s->props.store, now, true);
            rt_call(pid, msg, RT_INFINITY); /* not awaited: we exit, the runtime drops it */
            atomic_fetch_add_explicit(&s->kv->stats.read_repairs, 1, memory_order_relaxed);
        } else if (r->reply == QUORUM_REPLY_TOMBSTONE && r->obj &&
                   store_vclock_equal(&r->obj->clock, &m->clock)) {
            same_tombstones++;
        }
    }
    free(bytes);
    const node_config_t *cfg = s->kv->cfg;
    if (cfg->delete_mode == DELETE_MODE_KEEP ||
        !quorum_may_reap(store_obj_is_tombstone(m), same_tombstones, s->n, s->props.n_val,
                         repairs))
        return;
    uint8_t *clock = NULL;
    size_t clock_len = 0;
    if (store_vclock_encode(&m->clock, &clock, &clock_len) != 0)
        return;
    uint32_t *parts = calloc(s->n_reps, sizeof *parts);
    if (!parts)
        abort();
    for (uint32_t i = 0; i < s->n_reps; i++)
        parts[i] = s->reps[i].partition;
    reaper_arg_t a = {
        .kv = s->kv, .type = s->type, .bucket = s->bucket, .key = s->key,
        .clock = {clock, clock_len}, .partitions = parts, .n = s->n_reps,
        .delay_ms = cfg->delete_mode == DELETE_MODE_IMMEDIATE ? 0 : cfg->delete_delay_ms,
    };
    int rc = rt_spawn(&reaper_behaviour, &a, NULL);
    if (rc != 0)
        rt_warn("get: cannot start a tombstone reaper: %s", rt_strerror(rc));
    free(parts);
    free(clock);
}

/* Decides after every event: reply when the quorum says so, finish when all answered. */
static void get_step(get_fsm_t *s)
{
    if (!s->replied) {
        char err[128];
        switch (quorum_get_verdict(&s->q, err, sizeof err)) {
        case QUORUM_PENDING:
            return;
        case QUORUM_OK:
            get_reply_merged(s);
            break;
        case QUORUM_NOTFOUND:
            get_reply_notfound(s, NULL);
            break;
        case QUORUM_FAILED:
            get_reply_error(s, err);
            break;
        }
    }
    if (quorum_get_done(&s->q)) {
        get_final_action(s);
        get_finish(s);
    }
}

static void get_record(get_fsm_t *s, get_replica_t *r, quorum_reply_t reply, store_obj_t *obj)
{
    r->answered = true;
    r->ref = 0;
    r->reply = reply;
    r->obj = obj;
    if (obj && !(s->merged && store_obj_equal(s->merged, obj))) { /* usual: all equal */
        store_obj_t *merged = NULL;
        store_obj_merge(s->merged, obj, &s->props.store, &merged, NULL);
        store_obj_free(s->merged);
        s->merged = merged;
    }
    quorum_get_add(&s->q, reply, r->primary);
}

/* Validates the request and asks every vnode. 0, or -1 with the client's error in err. */
static int get_start(get_fsm_t *s, char *err, size_t errlen)
{
    Riak__RpbGetReq *req = s->req;
    s->bucket = bin_slice(req->has_bucket, req->bucket);
    s->key = bin_slice(req->has_key, req->key);
    s->type = req->has_type && req->type.len ? bin_slice(1, req->type) : default_type;
    if (!s->bucket.n) {
        snprintf(err, errlen, "Bucket cannot be zero-length");
        return -1;
    }
    if (!s->key.n) {
        snprintf(err, errlen, "Key cannot be zero-length");
        return -1;
    }
    if (bucket_props_get(s->kv->buckets, s->type.p, s->type.n, s->bucket.p, s->bucket.n,
                         &s->props) != 0) {
        snprintf(err, errlen, "Invalid bucket type: %.*s", (int)s->type.n, (const char *)s->type.p);
        return -1;
    }
    if (quorum_n(s->props.n_val, req->has_n_val, req->n_val, &s->n, err, errlen) != 0)
        return -1;
    ring_pref_t stack_prefs[GET_INLINE_REPLICAS];
    ring_pref_t *prefs = s->n <= GET_INLINE_REPLICAS ? stack_prefs : calloc(s->n, sizeof *prefs);
    if (!prefs)
        abort();
    uint64_t h = ring_hash_key(s->type.p, s->type.n, s->bucket.p, s->bucket.n, s->key.p, s->key.n);
    size_t np = ring_preflist(s->kv->ring, h, s->n, prefs);
    uint32_t primaries = 0;
    for (size_t i = 0; i < np; i++)
        primaries += prefs[i].primary;
    s->reps = np <= GET_INLINE_REPLICAS ? s->inline_reps : calloc(np, sizeof *s->reps);
    if (!s->reps)
        abort();
    s->n_reps = (uint32_t)np;
    for (size_t i = 0; i < np; i++) {
        s->reps[i].partition = prefs[i].partition;
        s->reps[i].primary = prefs[i].primary;
    }
    if (prefs != stack_prefs)
        free(prefs);
    if (quorum_get_init(&s->q, &s->props, s->n, req->has_r ? req->r : NODE_QUORUM_DEFAULT,
                        req->has_pr ? req->pr : NODE_QUORUM_DEFAULT,
                        req->has_notfound_ok ? req->notfound_ok : -1,
                        req->has_basic_quorum ? req->basic_quorum : -1, s->n_reps, primaries,
                        err, errlen) != 0)
        return -1;
    uint32_t timeout = req->has_timeout && req->timeout ? req->timeout
                                                        : s->kv->cfg->request_timeout_ms;
    s->timer = rt_send_after(timeout, s->self, rt_msg_new(GET_MSG_TIMEOUT, 0));
    for (uint32_t i = 0; i < s->n_reps; i++) {
        get_replica_t *r = &s->reps[i];
        rt_pid_t pid = vnode_pid(s->kv, r->partition);
        if (!rt_pid_is_nil(pid))
            r->ref = rt_call(pid, kvobj_vnode_get_msg(r->partition, s->type, s->bucket, s->key),
                             RT_INFINITY); /* no timer per call: the request's timer bounds it */
        if (!r->ref) /* restarting: an error from that vnode, at once */
            get_record(s, r, QUORUM_REPLY_ERROR, NULL);
    }
    return 0;
}

static int get_init(void *state, void *arg)
{
    get_fsm_t *s = state;
    get_start_t *a = arg;
    a->taken = true;
    s->kv = a->kv;
    s->self = rt_self();
    s->reply_to = a->reply_to;
    s->req_id = a->req_id;
    s->start_ns = a->start_ns;
    s->req = a->req;
    char err[256];
    if (get_start(s, err, sizeof err) != 0) {
        get_reply_error(s, err);
        get_finish(s);
        return 0;
    }
    get_step(s);
    return 0;
}

static get_replica_t *replica_by_ref(get_fsm_t *s, rt_ref_t ref)
{
    for (uint32_t i = 0; i < s->n_reps; i++)
        if (s->reps[i].ref == ref && !s->reps[i].answered)
            return &s->reps[i];
    return NULL;
}

static void get_on_reply(get_fsm_t *s, get_replica_t *r, const rt_msg_t *m)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (!pb || pb->descriptor != &cairn__kv__vnode_get_resp__descriptor) {
        get_record(s, r, QUORUM_REPLY_ERROR, NULL);
        return;
    }
    const Cairn__Kv__VnodeGetResp *resp = (const Cairn__Kv__VnodeGetResp *)pb;
    Cairn__Kv__Status st = resp->has_status ? resp->status : CAIRN__KV__STATUS__FAILED;
    if (st == CAIRN__KV__STATUS__NOTFOUND) {
        get_record(s, r, QUORUM_REPLY_NOTFOUND, NULL);
    } else if (st == CAIRN__KV__STATUS__OVERLOAD) {
        get_record(s, r, QUORUM_REPLY_OVERLOAD, NULL);
    } else if (st == CAIRN__KV__STATUS__OK && resp->has_object) {
        store_obj_t *obj = NULL;
        if (store_obj_decode(resp->object.data, resp->object.len, &obj) != 0) {
            rt_warn("get: vnode %u returned an undecodable object", r->partition);
            get_record(s, r, QUORUM_REPLY_ERROR, NULL);
        } else {
            get_record(s, r, store_obj_is_tombstone(obj) ? QUORUM_REPLY_TOMBSTONE
                                                         : QUORUM_REPLY_VALUE, obj);
        }
    } else {
        get_record(s, r, QUORUM_REPLY_ERROR, NULL);
    }
}

static int get_handle(void *state, rt_msg_t *m)
{
    get_fsm_t *s = state;
    if (s->finished) /* decided inside init: nothing more to do */
        return RT_STOP;
    if (m->flags & RT_MSGF_REPLY) {
        get_replica_t *r = replica_by_ref(s, m->ref);
        if (r) {
            get_on_reply(s, r, m);
            get_step(s);
        }
    } else if (m->type == RT_MSG_CALL_FAILED) {
        const rt_call_failed_t *cf = (const rt_call_failed_t *)(const void *)m->data;
        get_replica_t *r = replica_by_ref(s, cf->ref);
        if (r) {
            get_record(s, r, QUORUM_REPLY_ERROR, NULL);
            get_step(s);
        }
    } else if (m->type == GET_MSG_TIMEOUT) {
        s->timer = 0;
        if (!s->replied)
            get_reply_error(s, "timeout");
        if (!s->finished) {
            get_final_action(s); /* read-repair what did answer (Riak's finalize) */
            get_finish(s);
        }
    }
    return s->finished ? RT_STOP : RT_CONTINUE;
}

static void get_terminate(void *state, int reason)
{
    get_fsm_t *s = state;
    if (!s->replied) /* a crash: the connection still gets its one reply */
        get_reply_error(s, "internal error");
    if (s->timer)
        rt_cancel_timer(s->timer);
    for (uint32_t i = 0; i < s->n_reps; i++)
        store_obj_free(s->reps[i].obj);
    if (s->reps && s->reps != s->inline_reps)
        free(s->reps);
    store_obj_free(s->merged);
    if (s->req)
        protobuf_c_message_free_unpacked(&s->req->base, NULL);
    atomic_fetch_sub_explicit(&s->kv->inflight, 1, memory_order_relaxed);
}

static const rt_behaviour_t get_behaviour = {
    .name = "kv_get_fsm",
    .state_size = sizeof(get_fsm_t),
    .init = get_init,
    .handle = get_handle,
    .terminate = get_terminate,
};

int kv_get(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbGetReq *req)
{
    if (atomic_load_explicit(&kv->draining, memory_order_acquire)) {
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return KV_EDRAINING;
    }
    uint32_t before = atomic_fetch_add_explicit(&kv->inflight, 1, memory_order_relaxed);
    if (before >= kv->cfg->max_concurrent_requests) {
        atomic_fetch_sub_explicit(&kv->inflight, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return KV_EOVERLOAD;
    }
    get_start_t a = {kv, reply_to, req_id, rt_now_ns(), req, false};
    int rc = rt_spawn(&get_behaviour, &a, NULL);
    if (rc == 0)
        return 0;
    if (!a.taken) {
        atomic_fetch_sub_explicit(&kv->inflight, 1, memory_order_relaxed);
        protobuf_c_message_free_unpacked(&req->base, NULL);
    }
    atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
    return KV_EOVERLOAD;
}
