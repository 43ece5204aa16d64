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
 * Ownership: the process owns the request (its coord_t, see node/coord.h); the sub-requests
 * are fresh copies (coord_submit) handed to kv_get/kv_put, which take them.
 */
#include "node/coord.h"
#include "node/kvobj.h"
#include "node/pb_codec.h"

enum {
    DEL_MSG_REAP = KV_MSG_PRIVATE + 32,    /* the tombstone pause is over */
};

#define DEL_TOMBSTONE_PAUSE_MS 2
#define SUB_GET_TAG 0x4000000000000000ull
#define SUB_PUT_TAG 0x2000000000000000ull
#define SUB_REAP_TAG 0x1000000000000000ull

typedef enum { DEL_GET, DEL_PUT, DEL_PAUSE } del_phase_t;

typedef struct del_fsm_s {
    coord_t c;                   /* owns the request */
    const Riak__RpbDelReq *req;  /* c.req, typed */
    del_phase_t phase;
    uint64_t sub_id;             /* req_id of the sub-request in flight */
} del_fsm_t;

static void del_succeed(del_fsm_t *s)
{
    coord_cancel_timer(&s->c); /* answered: the reaping read that may follow is not bounded by it */
    coord_reply(&s->c, kv_reply_new(s->c.req_id, false, PB_DEL_RESP, NULL), true);
}

/* A GET of the key: the clock (step 1) or the reaping read (step 4). */
static void submit_get(del_fsm_t *s, uint64_t sub_id, uint32_t r, bool reap)
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
        get.timeout = s->c.kv->cfg->request_timeout_ms;
    } else {
        get.has_r = r != NODE_QUORUM_DEFAULT;
        get.r = r;
        get.has_pr = d->has_pr;
        get.pr = d->pr;
        get.has_timeout = 1;
        get.timeout = coord_remaining_ms(&s->c);
    }
    s->sub_id = sub_id;
    coord_submit(&s->c, sub_id, &get.base);
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
    put.timeout = coord_remaining_ms(&s->c);
    s->phase = DEL_PUT;
    s->sub_id = s->c.req_id ^ SUB_PUT_TAG;
    coord_submit(&s->c, s->sub_id, &put.base);
}

static void del_on_sub_reply(del_fsm_t *s, const rt_msg_t *m)
{
    uint8_t code;
    const uint8_t *body;
    size_t len;
    if (!kvobj_reply_frame(m, &code, &body, &len)) {
        coord_fail(&s->c, "delete failed");
        return;
    }
    if (code == PB_ERROR_RESP) {
        char text[1024];
        coord_error_text(body, len, "delete failed", text, sizeof text);
        coord_fail(&s->c, text);
        return;
    }
    if (s->phase == DEL_GET) {
        Riak__RpbGetResp *g = code == PB_GET_RESP ? riak__rpb_get_resp__unpack(NULL, len, body)
                                                  : NULL;
        if (!g) {
            coord_fail(&s->c, "delete failed");
            return;
        }
        if (g->n_content == 0) { /* nothing there (or already a tombstone): done */
            riak__rpb_get_resp__free_unpacked(g, NULL);
            del_succeed(s);
            coord_finish(&s->c);
            return;
        }
        ProtobufCBinaryData vc = g->has_vclock ? g->vclock : (ProtobufCBinaryData){0, NULL};
        submit_tombstone(s, vc); /* the put request is a copy: g may go */
        riak__rpb_get_resp__free_unpacked(g, NULL);
        return;
    }
    if (code != PB_PUT_RESP) {
        coord_fail(&s->c, "delete failed");
        return;
    }
    del_succeed(s);
    s->phase = DEL_PAUSE;
    rt_send_after(DEL_TOMBSTONE_PAUSE_MS, s->c.self, rt_msg_new(DEL_MSG_REAP, 0));
}

static int del_init(void *state, void *arg)
{
    del_fsm_t *s = state;
    coord_init(&s->c, arg, KV_OP_DEL);
    s->req = (const Riak__RpbDelReq *)s->c.req;
    const Riak__RpbDelReq *d = s->req;
    if (!d->has_bucket || !d->bucket.len) {
        coord_fail(&s->c, "Bucket cannot be zero-length");
        return 0;
    }
    if (!d->has_key || !d->key.len) {
        coord_fail(&s->c, "Key cannot be zero-length");
        return 0;
    }
    coord_start_timer(&s->c, d->has_timeout, d->timeout);
    if (d->has_vclock && d->vclock.len) {
        submit_tombstone(s, d->vclock);
        return 0;
    }
    s->phase = DEL_GET;
    uint32_t r = d->has_r                          ? d->r
                 : d->has_rw && !d->has_w          ? d->rw
                                                   : NODE_QUORUM_DEFAULT;
    submit_get(s, s->c.req_id ^ SUB_GET_TAG, r, false);
    return 0;
}

static int del_handle(void *state, rt_msg_t *m)
{
    del_fsm_t *s = state;
    if (s->c.finished)
        return RT_STOP;
    if (coord_timed_out(&s->c, m)) {
        coord_fail(&s->c, "timeout");
    } else if (coord_is_sub_reply(m, s->sub_id)) {
        if (s->phase != DEL_PAUSE)
            del_on_sub_reply(s, m);
    } else if (m->type == DEL_MSG_REAP) {
        /* step 4: its answer is not awaited (it goes to this pid after we are gone) */
        submit_get(s, s->c.req_id ^ SUB_REAP_TAG, NODE_QUORUM_ALL, true);
        coord_finish(&s->c);
    }
    return s->c.finished ? RT_STOP : RT_CONTINUE;
}

static void del_terminate(void *state, int reason)
{
    del_fsm_t *s = state;
    coord_terminate(&s->c);
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
    return coord_spawn(kv, &del_behaviour, reply_to, req_id, &req->base);
}
