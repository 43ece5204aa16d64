/*
 * coord.c — the machinery the get, put and delete coordinators share (node/coord.h):
 * admission and spawning, the process's start and end, the one reply, the request's timer,
 * the key's replica set, and sub-requests through the other coordinators.
 */
#include "node/coord.h"

#include "node/kvobj.h"
#include "node/vnode.h"
#include "runtime/dist.h"

#include <stdio.h>
#include <stdlib.h>

static const store_slice_t default_type = {(const uint8_t *)"default", 7};

/* ---------------------------------------------------------------- the process */

typedef struct coord_start_s {
    kv_node_t *kv;
    rt_pid_t reply_to;
    uint64_t req_id, start_ns;
    ProtobufCMessage *req;
    bool taken;                  /* init ran: the process owns req */
} coord_start_t;

void coord_release(kv_node_t *kv)
{
    atomic_fetch_sub_explicit(&kv->inflight, 1, memory_order_relaxed);
}

int coord_admit(kv_node_t *kv)
{
    if (atomic_load_explicit(&kv->draining, memory_order_acquire))
        return KV_EDRAINING;
    uint32_t max = kv->cfg ? kv->cfg->max_concurrent_requests : UINT32_MAX;
    uint32_t before = atomic_fetch_add_explicit(&kv->inflight, 1, memory_order_relaxed);
    if (before >= max) {
        coord_release(kv);
        atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
        return KV_EOVERLOAD;
    }
    return 0;
}

int coord_spawn(kv_node_t *kv, const rt_behaviour_t *behaviour, rt_pid_t reply_to,
                uint64_t req_id, ProtobufCMessage *req)
{
    int rc = coord_admit(kv);
    if (rc != 0) {
        protobuf_c_message_free_unpacked(req, NULL);
        return rc;
    }
    coord_start_t a = {kv, reply_to, req_id, rt_now_ns(), req, false};
    rc = rt_spawn(behaviour, &a, NULL);
    if (rc == 0)
        return 0;
    if (!a.taken) { /* else terminate ran: it freed req and gave the slot back */
        coord_release(kv);
        protobuf_c_message_free_unpacked(req, NULL);
    }
    atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
    return KV_EOVERLOAD;
}

void coord_init(coord_t *c, void *arg, kv_op_t op)
{
    coord_start_t *a = arg;
    a->taken = true;
    c->kv = a->kv;
    c->op = op;
    c->self = rt_self();
    c->reply_to = a->reply_to;
    c->req_id = a->req_id;
    c->start_ns = a->start_ns;
    c->req = a->req;
}

void coord_start_timer(coord_t *c, bool has_timeout, uint32_t timeout)
{
    c->timeout_ms = has_timeout && timeout ? timeout : c->kv->cfg->request_timeout_ms;
    c->timer = rt_send_after(c->timeout_ms, c->self, rt_msg_new(COORD_MSG_TIMEOUT, 0));
}

void coord_cancel_timer(coord_t *c)
{
    if (c->timer) {
        rt_cancel_timer(c->timer);
        c->timer = 0;
    }
}

uint32_t coord_remaining_ms(const coord_t *c)
{
    uint64_t spent = (rt_now_ns() - c->start_ns) / 1000000u;
    return spent >= c->timeout_ms ? 1 : (uint32_t)(c->timeout_ms - spent);
}

bool coord_timed_out(coord_t *c, const rt_msg_t *m)
{
    if (m->type == COORD_MSG_TIMEOUT) {
        c->timer = 0;
        return true;
    }
    return !c->replied && c->timeout_ms &&
           rt_now_ns() - c->start_ns >= (uint64_t)c->timeout_ms * 1000000u;
}

void coord_reply(coord_t *c, rt_msg_t *reply, bool ok)
{
    c->replied = true;
    kv_stats_record(&c->kv->stats, c->op, c->start_ns, ok); /* before the client can look */
    rt_send(c->reply_to, reply);
}

void coord_reply_error(coord_t *c, const char *text)
{
    coord_reply(c, kv_reply_error(c->req_id, "%s", text), false);
}

void coord_finish(coord_t *c)
{
    if (!c->finished) {
        c->finished = true;
        rt_send(c->self, rt_msg_new(COORD_MSG_KICK, 0));
    }
}

void coord_fail(coord_t *c, const char *text)
{
    if (!c->replied)
        coord_reply_error(c, text);
    coord_finish(c);
}

void coord_terminate(coord_t *c)
{
    if (!c->replied) /* a crash: the connection still gets its one reply */
        coord_reply_error(c, "internal error");
    coord_cancel_timer(c);
    if (c->req)
        protobuf_c_message_free_unpacked(c->req, NULL);
    c->req = NULL;
    coord_release(c->kv);
}

/* ---------------------------------------------------------------- the key's replicas */

store_slice_t coord_slice(protobuf_c_boolean has, ProtobufCBinaryData b)
{
    return has ? (store_slice_t){b.data, b.len} : (store_slice_t){NULL, 0};
}

int coord_replicas_bucket(coord_replicas_t *t, protobuf_c_boolean has_type,
                          ProtobufCBinaryData type, protobuf_c_boolean has_bucket,
                          ProtobufCBinaryData bucket, char *err, size_t errlen)
{
    t->bucket = coord_slice(has_bucket, bucket);
    t->type = has_type && type.len ? coord_slice(1, type) : default_type;
    if (!t->bucket.n) {
        snprintf(err, errlen, "Bucket cannot be zero-length");
        return -1;
    }
    return 0;
}

int coord_replicas_init(coord_replicas_t *t, kv_node_t *kv, protobuf_c_boolean has_n_val,
                        uint32_t n_val, protobuf_c_boolean has_sloppy,
                        protobuf_c_boolean sloppy, char *err, size_t errlen)
{
    if (bucket_props_get(kv->buckets, t->type.p, t->type.n, t->bucket.p, t->bucket.n,
                         &t->props) != 0) {
        snprintf(err, errlen, "Invalid bucket type: %.*s", (int)t->type.n, (const char *)t->type.p);
        return -1;
    }
    if (quorum_n(t->props.n_val, has_n_val, n_val, &t->n, err, errlen) != 0)
        return -1;
    ring_pref_t stack_prefs[COORD_INLINE_REPLICAS];
    ring_pref_t *prefs = t->n <= COORD_INLINE_REPLICAS ? stack_prefs : calloc(t->n, sizeof *prefs);
    if (!prefs)
        abort();
    uint64_t h = ring_hash_key(t->type.p, t->type.n, t->bucket.p, t->bucket.n, t->key.p, t->key.n);
    t->cs = kv_cstate(kv);
    uint32_t me = kv_self_member(kv, t->cs);
    bool up[RING_MAX_MEMBERS];
    uint32_t members = cstate_member_count(t->cs);
    for (uint32_t i = 0; i < members && i < RING_MAX_MEMBERS; i++)
        up[i] = i == me || rt_node_is_up(cstate_member_name(t->cs, i));
    size_t np = ring_apl(cstate_ring(t->cs), h, t->n, up, has_sloppy ? sloppy : true, prefs);
    t->reps = np <= COORD_INLINE_REPLICAS ? t->inline_reps : calloc(np, sizeof *t->reps);
    if (!t->reps)
        abort();
    t->n_reps = (uint32_t)np;
    t->primaries = 0;
    for (size_t i = 0; i < np; i++) {
        t->reps[i] = (coord_replica_t){.partition = prefs[i].partition,
                                       .host = prefs[i].owner,
                                       .local = prefs[i].owner == me,
                                       .primary = prefs[i].primary};
        t->primaries += prefs[i].primary;
    }
    if (prefs != stack_prefs)
        free(prefs);
    return 0;
}

void coord_replicas_free(coord_replicas_t *t)
{
    if (t->reps && t->reps != t->inline_reps)
        free(t->reps);
    t->reps = NULL;
    t->n_reps = 0;
}

const char *coord_replica_node(const coord_replicas_t *t, const coord_replica_t *r)
{
    return cstate_member_name(t->cs, r->host);
}

bool coord_replica_reachable(kv_node_t *kv, const coord_replicas_t *t, const coord_replica_t *r)
{
    if (r->local)
        return !r->primary || !rt_pid_is_nil(vnode_pid(kv, r->partition));
    return rt_node_is_up(coord_replica_node(t, r));
}

rt_ref_t coord_vnode_call(kv_node_t *kv, const coord_replicas_t *t, const coord_replica_t *r,
                          rt_msg_t *m, uint32_t timeout_ms)
{
    if (r->local) {
        /* a fallback that is not running yet starts through the proxy */
        rt_pid_t pid = vnode_pid(kv, r->partition);
        if (rt_pid_is_nil(pid) && !r->primary)
            pid = rt_whereis(VNODE_PROXY_NAME);
        if (rt_pid_is_nil(pid)) {
            rt_msg_free(m);
            return 0;
        }
        return rt_call(pid, m, timeout_ms);
    }
    const char *node = coord_replica_node(t, r);
    if (!rt_node_is_up(node)) {
        rt_msg_free(m);
        return 0;
    }
    char name[VNODE_NAME_MAX];
    if (r->primary)
        vnode_name(r->partition, name, sizeof name);
    else
        snprintf(name, sizeof name, "%s", VNODE_PROXY_NAME);
    return rt_call_name(node, name, m, timeout_ms);
}

rt_ref_t coord_call_ref(const rt_msg_t *m, bool *failed)
{
    *failed = false;
    if (m->flags & RT_MSGF_REPLY)
        return m->ref;
    if (m->type != RT_MSG_CALL_FAILED)
        return 0;
    *failed = true;
    return ((const rt_call_failed_t *)(const void *)m->data)->ref;
}

coord_replica_t *coord_replica_by_ref(coord_replicas_t *t, rt_ref_t ref)
{
    for (uint32_t i = 0; i < t->n_reps; i++)
        if (t->reps[i].ref == ref && !t->reps[i].answered)
            return &t->reps[i];
    return NULL;
}

void coord_replica_answered(coord_replica_t *r, quorum_reply_t reply)
{
    r->answered = true;
    r->ref = 0;
    r->reply = reply;
}

/* ---------------------------------------------------------------- sub-requests */

bool coord_submit(coord_t *c, uint64_t sub_id, const ProtobufCMessage *req)
{
    ProtobufCMessage *copy = kvobj_pb_clone(req);
    if (!copy) {
        coord_fail(c, "cannot build the sub-request");
        return false;
    }
    int rc;
    if (copy->descriptor == &riak__rpb_get_req__descriptor) {
        rc = kv_get(c->kv, c->self, sub_id, (Riak__RpbGetReq *)copy);
    } else if (copy->descriptor == &riak__rpb_put_req__descriptor) {
        rc = kv_put(c->kv, c->self, sub_id, (Riak__RpbPutReq *)copy);
    } else { /* a caller's bug */
        protobuf_c_message_free_unpacked(copy, NULL);
        coord_fail(c, "cannot build the sub-request");
        return false;
    }
    if (rc == 0)
        return true;
    coord_fail(c, rc == KV_EOVERLOAD ? "overload" : "The node is shutting down");
    return false;
}

bool coord_is_sub_reply(const rt_msg_t *m, uint64_t sub_id)
{
    const kv_reply_t *kr = (const kv_reply_t *)(const void *)m->data;
    return m->type == KV_MSG_REPLY && m->size >= sizeof *kr && kr->req_id == sub_id;
}

void coord_error_text(const uint8_t *body, size_t len, const char *fallback, char *out,
                      size_t outlen)
{
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
    if (e && e->has_errmsg)
        snprintf(out, outlen, "%.*s", (int)e->errmsg.len, (const char *)e->errmsg.data);
    else
        snprintf(out, outlen, "%s", fallback);
    if (e)
        riak__rpb_error_resp__free_unpacked(e, NULL);
}
