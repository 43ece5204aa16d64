/*
 * del_fsm.c — the delete coordinator (Riak's riak_kv_delete); entry point kv_del of
 * node/kv.h.
 *
 * A delete is a tombstone write, composed of the other coordinators as in Riak:
 *   1. without a vclock in the request: a GET (R, PR, or RW when neither R nor W is given)
 *      through kv_get answered to this process, to learn the clock; a missing key (or one
 *      already deleted) is a success at once;
 *   2. a PUT through kv_put of a tombstone (empty value, deleted = true) with that clock as
 *      context, using W/PW/DW (or RW);
 *   3. RpbDelResp to the connection once the PUT succeeded (any error is passed through);
 *   4. after a short pause (Riak's tombstone_pause) a GET with R = all, whose coordinator
 *      reaps the tombstone per delete_mode when every replica holds it (get_fsm.c).
 * Exactly one KV_MSG_REPLY reaches the connection.
 *
 * Ownership: the process owns the request; the sub-requests are fresh copies (kvobj_pb_clone)
 * handed to kv_get/kv_put, which take them.
 */
#include "node/kv.h"
#include "node/kvobj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEL_MSG_TIMEOUT = KV_MSG_PRIVATE + 30, /* the request's timer */
    DEL_MSG_KICK = KV_MSG_PRIVATE + 31,    /* wake up to stop (decided inside init) */
    DEL_MSG_REAP = KV_MSG_PRIVATE + 32,    /* the tombstone pause is over */
};

#define PB_CODE_ERROR_RESP 0
#define PB_CODE_GET_RESP 10
#define PB_CODE_PUT_RESP 12
#define PB_CODE_DEL_RESP 14
#define DEL_TOMBSTONE_PAUSE_MS 2
#define SUB_GET_TAG 0x4000000000000000ull
#define SUB_PUT_TAG 0x2000000000000000ull
#define SUB_REAP_TAG 0x1000000000000000ull

typedef enum { DEL_GET, DEL_PUT, DEL_PAUSE } del_phase_t;

typedef struct del_fsm_s {
    kv_node_t *kv;
    rt_pid_t self, reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbDelReq *req;        /* owned */
    del_phase_t phase;
    uint64_t sub_id;             /* req_id of the sub-request in flight */
    uint32_t timeout_ms;
    rt_timer_t timer;
    bool replied, finished;
} del_fsm_t;

typedef struct del_start_s {
    kv_node_t *kv;
    rt_pid_t reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbDelReq *req;
    bool taken;                  /* init ran: the process owns req */
} del_start_t;

static void del_reply(del_fsm_t *s, rt_msg_t *reply, bool ok)
{
    s->replied = true;
    if (s->timer) {
        rt_cancel_timer(s->timer);
        s->timer = 0;
    }
    kv_stats_record(&s->kv->stats, KV_OP_DEL, s->start_ns, ok); /* before the client can look */
    rt_send(s->reply_to, reply);
}

static void del_finish(del_fsm_t *s)
{
    if (!s->finished) {
        s->finished = true;
        rt_send(s->self, rt_msg_new(DEL_MSG_KICK, 0));
    }
}

static void del_fail(del_fsm_t *s, const char *text)
{
    if (!s->replied)
        del_reply(s, kv_reply_error(s->req_id, "%s", text), false);
    del_finish(s);
}

static void del_succeed(del_fsm_t *s)
{
    del_reply(s, kv_reply_new(s->req_id, false, PB_CODE_DEL_RESP, NULL), true);
}

/* What is left of the request's time budget (at least 1 ms). */
static uint32_t remaining_ms(const del_fsm_t *s)
{
    uint64_t spent = (rt_now_ns() - s->start_ns) / 1000000u;
    return spent >= s->timeout_ms ? 1 : (uint32_t)(s->timeout_ms - spent);
}

static void fail_submit(del_fsm_t *s, int rc)
{
    del_fail(s, rc == KV_EOVERLOAD ? "overload" : "The node is shutting down");
}

/* A GET of the key: the clock (step 1) or the reaping read (step 4). */
static int submit_get(del_fsm_t *s, uint64_t sub_id, uint32_t r, bool reap)
{
    const Riak__RpbDelReq *d = s->req;
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    get.has_bucket = 1;
    get.bucket = d->bucket;
    get.has_key = 1;
    get.key = d->key;
    get.has_type = d->has_type;
    get.type = d->type;
    get.has_n_val = d->has_n_val;
    get.n_val = d->n_val;
    if (reap) {
        get.has_r = 1;
        get.r = NODE_QUORUM_ALL;
        get.has_timeout = 1;
        get.timeout = s->kv->cfg->request_timeout_ms;
    } else {
        get.has_r = r != NODE_QUORUM_DEFAULT;
        get.r = r;
        get.has_pr = d->has_pr;
        get.pr = d->pr;
        get.has_timeout = 1;
        get.timeout = remaining_ms(s);
    }
    Riak__RpbGetReq *copy = (Riak__RpbGetReq *)kvobj_pb_clone(&get.base);
    if (!copy)
        return KV_EOVERLOAD;
    s->sub_id = sub_id;
    return kv_get(s->kv, s->self, sub_id, copy);
}

/* Step 2: the tombstone, with the clock as context. */
static void submit_tombstone(del_fsm_t *s, ProtobufCBinaryData vclock)
{
    const Riak__RpbDelReq *d = s->req;
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    static uint8_t empty[1];
    content.has_value = 1;
    content.value = (ProtobufCBinaryData){0, empty};
    content.has_deleted = 1;
    content.deleted = 1;
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    put.has_bucket = 1;
    put.bucket = d->bucket;
    put.has_key = 1;
    put.key = d->key;
    put.has_type = d->has_type;
    put.type = d->type;
    put.has_n_val = d->has_n_val;
    put.n_val = d->n_val;
    put.has_vclock = vclock.len > 0;
    put.vclock = vclock;
    put.content = &content;
    bool rw_alone = d->has_rw && !d->has_r && !d->has_w; /* Riak: RW stands in for R and W */
    put.has_w = d->has_w || rw_alone;
    put.w = d->has_w ? d->w : d->rw;
    put.has_pw = d->has_pw;
    put.pw = d->pw;
    put.has_dw = d->has_dw;
    put.dw = d->dw;
    put.has_timeout = 1;
    put.timeout = remaining_ms(s);
    Riak__RpbPutReq *copy = (Riak__RpbPutReq *)kvobj_pb_clone(&put.base);
    if (!copy) {
        del_fail(s, "cannot build the tombstone");
        return;
    }
    s->phase = DEL_PUT;
    s->sub_id = s->req_id ^ SUB_PUT_TAG;
    int rc = kv_put(s->kv, s->self, s->sub_id, copy);
    if (rc != 0)
        fail_submit(s, rc);
}

static void del_on_sub_reply(del_fsm_t *s, const rt_msg_t *m)
{
    uint8_t code;
    const uint8_t *body;
    size_t len;
    if (!kvobj_reply_frame(m, &code, &body, &len)) {
        del_fail(s, "delete failed");
        return;
    }
    if (code == PB_CODE_ERROR_RESP) {
        Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
        char text[1024];
        snprintf(text, sizeof text, "%.*s", e && e->has_errmsg ? (int)e->errmsg.len : 13,
                 e && e->has_errmsg ? (const char *)e->errmsg.data : "delete failed");
        if (e)
            riak__rpb_error_resp__free_unpacked(e, NULL);
        del_fail(s, text);
        return;
    }
    if (s->phase == DEL_GET) {
        Riak__RpbGetResp *g = code == PB_CODE_GET_RESP ? riak__rpb_get_resp__unpack(NULL, len, body)
                                                       : NULL;
        if (!g) {
            del_fail(s, "delete failed");
            return;
        }
        if (g->n_content == 0) { /* nothing there (or already a tombstone): done */
            riak__rpb_get_resp__free_unpacked(g, NULL);
            del_succeed(s);
            del_finish(s);
            return;
        }
        ProtobufCBinaryData vc = g->has_vclock ? g->vclock : (ProtobufCBinaryData){0, NULL};
        submit_tombstone(s, vc); /* the put request is a copy: g may go */
        riak__rpb_get_resp__free_unpacked(g, NULL);
        return;
    }
    if (code != PB_CODE_PUT_RESP) {
        del_fail(s, "delete failed");
        return;
    }
    del_succeed(s);
    s->phase = DEL_PAUSE;
    rt_send_after(DEL_TOMBSTONE_PAUSE_MS, s->self, rt_msg_new(DEL_MSG_REAP, 0));
}

static int del_init(void *state, void *arg)
{
    del_fsm_t *s = state;
    del_start_t *a = arg;
    a->taken = true;
    s->kv = a->kv;
    s->self = rt_self();
    s->reply_to = a->reply_to;
    s->req_id = a->req_id;
    s->start_ns = a->start_ns;
    s->req = a->req;
    const Riak__RpbDelReq *d = s->req;
    if (!d->has_bucket || !d->bucket.len) {
        del_fail(s, "Bucket cannot be zero-length");
        return 0;
    }
    if (!d->has_key || !d->key.len) {
        del_fail(s, "Key cannot be zero-length");
        return 0;
    }
    s->timeout_ms = d->has_timeout && d->timeout ? d->timeout : s->kv->cfg->request_timeout_ms;
    s->timer = rt_send_after(s->timeout_ms, s->self, rt_msg_new(DEL_MSG_TIMEOUT, 0));
    if (d->has_vclock && d->vclock.len) {
        submit_tombstone(s, d->vclock);
        return 0;
    }
    s->phase = DEL_GET;
    uint32_t r = d->has_r                          ? d->r
                 : d->has_rw && !d->has_w          ? d->rw
                                                   : NODE_QUORUM_DEFAULT;
    int rc = submit_get(s, s->req_id ^ SUB_GET_TAG, r, false);
    if (rc != 0)
        fail_submit(s, rc);
    return 0;
}

static int del_handle(void *state, rt_msg_t *m)
{
    del_fsm_t *s = state;
    if (s->finished)
        return RT_STOP;
    if (m->type == KV_MSG_REPLY) {
        const kv_reply_t *kr = (const kv_reply_t *)(const void *)m->data;
        if (s->phase != DEL_PAUSE && m->size >= sizeof *kr && kr->req_id == s->sub_id)
            del_on_sub_reply(s, m);
    } else if (m->type == DEL_MSG_REAP) {
        /* step 4: its answer is not awaited (it goes to this pid after we are gone) */
        submit_get(s, s->req_id ^ SUB_REAP_TAG, NODE_QUORUM_ALL, true);
        del_finish(s);
    } else if (m->type == DEL_MSG_TIMEOUT) {
        s->timer = 0;
        del_fail(s, "timeout");
    }
    return s->finished ? RT_STOP : RT_CONTINUE;
}

static void del_terminate(void *state, int reason)
{
    del_fsm_t *s = state;
    if (!s->replied) /* a crash: the connection still gets its one reply */
        del_reply(s, kv_reply_error(s->req_id, "internal error"), false);
    if (s->timer)
        rt_cancel_timer(s->timer);
    if (s->req)
        protobuf_c_message_free_unpacked(&s->req->base, NULL);
    atomic_fetch_sub_explicit(&s->kv->inflight, 1, memory_order_relaxed);
}

static const rt_behaviour_t del_behaviour = {
    .name = "kv_del_fsm",
    .state_size = sizeof(del_fsm_t),
    .init = del_init,
    .handle = del_handle,
    .terminate = del_terminate,
};

int kv_del(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbDelReq *req)
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
    del_start_t a = {kv, reply_to, req_id, rt_now_ns(), req, false};
    int rc = rt_spawn(&del_behaviour, &a, NULL);
    if (rc == 0)
        return 0;
    if (!a.taken) {
        atomic_fetch_sub_explicit(&kv->inflight, 1, memory_order_relaxed);
        protobuf_c_message_free_unpacked(&req->base, NULL);
    }
    atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
    return KV_EOVERLOAD;
}
