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
 * Ownership: the process owns the request (its coord_t frees it at exit, see node/coord.h),
 * the decoded replica objects and the merged object. The reaper is a separate tiny process
 * that owns copies of what it needs.
 */
#include "node/coord.h"
#include "node/kvobj.h"
#include "node/pb_codec.h"
#include "node/vnode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    REAP_MSG_START = KV_MSG_PRIVATE + 22,  /* the reaper's delay is over */
    REAP_MSG_NOTHING = KV_MSG_PRIVATE + 23, /* no vnode to ask: stop */
};

#define REAP_CALL_TIMEOUT_MS 5000

/* ---------------------------------------------------------------- the reaper */

typedef struct reaper_arg_s {
    kv_node_t *kv;
    store_slice_t type, bucket, key, clock;
    const coord_replicas_t *replicas;  /* borrowed: copied by the reaper's init */
    uint32_t delay_ms;
} reaper_arg_t;

typedef struct reaper_s {
    kv_node_t *kv;
    uint8_t *bytes;              /* type, bucket, key, clock copies (one allocation) */
    store_slice_t type, bucket, key, clock;
    coord_replicas_t t;          /* cs and the replicas (reps owned, malloc'ed) */
    rt_ref_t *refs;
    uint32_t n, pending, reaped;
} reaper_t;

static void reaper_send(reaper_t *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        const coord_replica_t *rep = &r->t.reps[i];
        rt_msg_t *m = kvobj_vnode_reap_msg(rep->partition, r->type, r->bucket, r->key, r->clock);
        r->refs[i] = coord_vnode_call(r->kv, &r->t, rep, m, REAP_CALL_TIMEOUT_MS);
        if (r->refs[i])
            r->pending++;
    }
}

static int reaper_init(void *state, void *arg)
{
    reaper_t *r = state;
    const reaper_arg_t *a = arg;
    r->kv = a->kv;
    r->n = a->replicas->n_reps;
    size_t total = a->type.n + a->bucket.n + a->key.n + a->clock.n;
    r->bytes = malloc(total ? total : 1);
    r->t.cs = a->replicas->cs;
    r->t.n_reps = r->n;
    r->t.reps = calloc(r->n ? r->n : 1, sizeof *r->t.reps);
    r->refs = calloc(r->n ? r->n : 1, sizeof *r->refs);
    if (!r->bytes || !r->t.reps || !r->refs)
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
    memcpy(r->t.reps, a->replicas->reps, r->n * sizeof *r->t.reps);
    if (a->delay_ms == 0) {
        reaper_send(r);
        if (r->pending == 0)
            rt_send(rt_self(), rt_msg_new(REAP_MSG_NOTHING, 0));
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
    if (m->type == REAP_MSG_NOTHING)
        return RT_STOP;
    bool failed;
    rt_ref_t ref = coord_call_ref(m, &failed);
    if (!ref)
        return RT_CONTINUE;
    bool ok = false;
    const ProtobufCMessage *pb = failed ? NULL : rt_msg_pb_get(m);
    if (pb && pb->descriptor == &cairn__kv__vnode_reap_resp__descriptor) {
        const Cairn__Kv__VnodeReapResp *resp = (const Cairn__Kv__VnodeReapResp *)pb;
        ok = resp->has_status && resp->status == CAIRN__KV__STATUS__OK;
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
    free(r->t.reps);
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

typedef struct get_fsm_s {
    coord_t c;                       /* owns the request */
    const Riak__RpbGetReq *req;      /* c.req, typed */
    coord_replicas_t t;              /* the key, its bucket's properties, its replicas */
    quorum_get_t q;
    store_obj_t **objs;              /* per replica: its decoded object (owned), or NULL */
    store_obj_t *inline_objs[COORD_INLINE_REPLICAS];
    store_obj_t *merged;             /* merge of every object received (owned) */
} get_fsm_t;

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
    coord_reply(&s->c, kv_reply_new(s->c.req_id, false, PB_GET_RESP, &resp.base), true);
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
    bool allow_mult = s->t.props.allow_mult;
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
            coord_reply(&s->c, kv_reply_new(s->c.req_id, false, PB_GET_RESP, &resp.base), true);
            return;
        }
    }
    Riak__RpbGetResp resp;
    bool head = s->req->has_head && s->req->head;
    int rc = kvobj_get_resp_build(o, allow_mult, head, &resp);
    if (rc != 0) {
        coord_reply_error(&s->c, "cannot encode the object's vclock");
        return;
    }
    coord_reply(&s->c, kv_reply_new(s->c.req_id, false, PB_GET_RESP, &resp.base), true);
    kvobj_get_resp_clear(&resp);
}

/* Read repair and tombstone reaping, once every replica answered (or time ran out). */
static void get_final_action(get_fsm_t *s)
{
    const store_obj_t *m = s->merged;
    if (!m)
        return;
    const coord_replicas_t *t = &s->t;
    uint32_t repairs = 0, same_tombstones = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint32_t now = (uint32_t)time(NULL);
    for (uint32_t i = 0; i < t->n_reps; i++) {
        const coord_replica_t *r = &t->reps[i];
        const store_obj_t *obj = s->objs[i];
        if (!r->answered)
            continue;
        if (quorum_needs_repair(r->reply, &m->clock, obj ? &obj->clock : NULL)) {
            repairs++;
            if (!coord_replica_reachable(s->c.kv, t, r))
                continue;
            if (!bytes && store_obj_encode(m, &bytes, &len) != 0)
                return;
            rt_msg_t *msg = kvobj_vnode_put_replica_msg(r->partition, t->type, t->bucket, t->key,
                                                        (store_slice_t){bytes, len},
                                                        &t->props.store, now, true);
            /* not awaited: we exit, the runtime drops the reply */
            coord_vnode_call(s->c.kv, t, r, msg, RT_INFINITY);
            atomic_fetch_add_explicit(&s->c.kv->stats.read_repairs, 1, memory_order_relaxed);
        } else if (r->reply == QUORUM_REPLY_TOMBSTONE && obj &&
                   store_vclock_equal(&obj->clock, &m->clock)) {
            same_tombstones++;
        }
    }
    free(bytes);
    const node_config_t *cfg = s->c.kv->cfg;
    if (cfg->delete_mode == DELETE_MODE_KEEP ||
        !quorum_may_reap(store_obj_is_tombstone(m), same_tombstones, t->n, t->props.n_val,
                         repairs))
        return;
    uint8_t *clock = NULL;
    size_t clock_len = 0;
    if (store_vclock_encode(&m->clock, &clock, &clock_len) != 0)
        return;
    reaper_arg_t a = {
        .kv = s->c.kv, .type = t->type, .bucket = t->bucket, .key = t->key,
        .clock = {clock, clock_len}, .replicas = t,
        .delay_ms = cfg->delete_mode == DELETE_MODE_IMMEDIATE ? 0 : cfg->delete_delay_ms,
    };
    int rc = rt_spawn(&reaper_behaviour, &a, NULL);
    if (rc != 0)
        rt_warn("get: cannot start a tombstone reaper: %s", rt_strerror(rc));
    free(clock);
}

/* Decides after every event: reply when the quorum says so, finish when all answered. */
static void get_step(get_fsm_t *s)
{
    if (!s->c.replied) {
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
            coord_reply_error(&s->c, err);
            break;
        }
    }
    if (quorum_get_done(&s->q)) {
        get_final_action(s);
        coord_finish(&s->c);
    }
}

static void get_record(get_fsm_t *s, coord_replica_t *r, quorum_reply_t reply, store_obj_t *obj)
{
    coord_replica_answered(r, reply);
    s->objs[r - s->t.reps] = obj;
    if (obj && !(s->merged && store_obj_equal(s->merged, obj))) { /* usual: all equal */
        store_obj_t *merged = NULL;
        store_obj_merge(s->merged, obj, &s->t.props.store, &merged, NULL);
        store_obj_free(s->merged);
        s->merged = merged;
    }
    quorum_get_add(&s->q, reply, r->primary);
}

/* Validates the request and asks every vnode. 0, or -1 with the client's error in err. */
static int get_start(get_fsm_t *s, char *err, size_t errlen)
{
    const Riak__RpbGetReq *req = s->req;
    coord_replicas_t *t = &s->t;
    if (coord_replicas_bucket(t, req->has_type, req->type, req->has_bucket, req->bucket, err,
                              errlen) != 0)
        return -1;
    t->key = coord_slice(req->has_key, req->key);
    if (!t->key.n) {
        snprintf(err, errlen, "Key cannot be zero-length");
        return -1;
    }
    if (coord_replicas_init(t, s->c.kv, req->has_n_val, req->n_val, req->has_sloppy_quorum,
                            req->sloppy_quorum, err, errlen) != 0)
        return -1;
    s->objs = t->n_reps <= COORD_INLINE_REPLICAS ? s->inline_objs
                                                 : calloc(t->n_reps, sizeof *s->objs);
    if (!s->objs)
        abort();
    if (quorum_get_init(&s->q, &t->props, t->n, req->has_r ? req->r : NODE_QUORUM_DEFAULT,
                        req->has_pr ? req->pr : NODE_QUORUM_DEFAULT,
                        req->has_notfound_ok ? req->notfound_ok : -1,
                        req->has_basic_quorum ? req->basic_quorum : -1, t->n_reps, t->primaries,
                        err, errlen) != 0)
        return -1;
    coord_start_timer(&s->c, req->has_timeout, req->timeout);
    for (uint32_t i = 0; i < t->n_reps; i++) {
        coord_replica_t *r = &t->reps[i];
        /* no timer per call: the request's timer bounds it */
        r->ref = coord_vnode_call(s->c.kv, t, r,
                                  kvobj_vnode_get_msg(r->partition, t->type, t->bucket, t->key),
                                  RT_INFINITY);
        if (!r->ref) /* restarting, or its node is down: an error from that vnode, at once */
            get_record(s, r, QUORUM_REPLY_ERROR, NULL);
    }
    return 0;
}

static int get_init(void *state, void *arg)
{
    get_fsm_t *s = state;
    coord_init(&s->c, arg, KV_OP_GET);
    s->req = (const Riak__RpbGetReq *)s->c.req;
    char err[256];
    if (get_start(s, err, sizeof err) != 0) {
        coord_fail(&s->c, err);
        return 0;
    }
    get_step(s);
    return 0;
}

static void get_on_reply(get_fsm_t *s, coord_replica_t *r, const rt_msg_t *m)
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
    if (s->c.finished) /* decided inside init: nothing more to do */
        return RT_STOP;
    bool failed;
    rt_ref_t ref = coord_call_ref(m, &failed);
    if (coord_timed_out(&s->c, m)) {
        if (!s->c.replied)
            coord_reply_error(&s->c, "timeout");
        if (!s->c.finished) {
            get_final_action(s); /* read-repair what did answer (Riak's finalize) */
            coord_finish(&s->c);
        }
    } else if (ref) {
        coord_replica_t *r = coord_replica_by_ref(&s->t, ref);
        if (r) {
            if (failed)
                get_record(s, r, QUORUM_REPLY_ERROR, NULL);
            else
                get_on_reply(s, r, m);
            get_step(s);
        }
    }
    return s->c.finished ? RT_STOP : RT_CONTINUE;
}

static void get_terminate(void *state, int reason)
{
    get_fsm_t *s = state;
    coord_terminate(&s->c);
    for (uint32_t i = 0; s->objs && i < s->t.n_reps; i++)
        store_obj_free(s->objs[i]);
    if (s->objs && s->objs != s->inline_objs)
        free(s->objs);
    coord_replicas_free(&s->t);
    store_obj_free(s->merged);
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
    return coord_spawn(kv, &get_behaviour, reply_to, req_id, &req->base);
}
