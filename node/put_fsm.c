/*
 * put_fsm.c — the put coordinator (Riak's riak_kv_put_fsm); entry point kv_put of
 * node/kv.h.
 *
 * One short-lived process per request:
 *   1. validate (W/DW/PW against N, the object size limit), generate a key if none was given;
 *   2. if_none_match / if_not_modified: a GET first (R = quorum) through kv_get, answered to
 *      this process, then "match_found" / "modified" / "notfound" or go on (not atomic, as
 *      in Riak);
 *   3. the coordinating vnode (the first live one of the preference list) writes with the
 *      client's content and context and returns the new object;
 *   4. that object goes to the other N-1 vnodes as replica writes;
 *   5. reply at W/DW/PW (node/quorum.c counts), with the body when asked, then stop.
 * Exactly one KV_MSG_REPLY reaches the connection, whatever the vnodes do.
 *
 * Ownership: the process owns the request (its coord_t, see node/coord.h); its content is
 * handed to the coordinating vnode's message (detached from the request). The coordinator's
 * reply message is kept (rt_msg_keep) so the new object's bytes are forwarded without a copy
 * of our own.
 */
#include "node/coord.h"
#include "node/kvobj.h"
#include "node/pb_codec.h"
#include "node/vnode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define GENERATED_KEY_LEN 22

typedef enum { PUT_PRECHECK, PUT_COORDINATE, PUT_REMOTE } put_phase_t;

typedef struct put_fsm_s {
    coord_t c;                          /* owns the request */
    Riak__RpbPutReq *req;               /* c.req, typed (its content is detached at step 3) */
    coord_replicas_t t;                 /* the key (borrowed from req or gen_key), its bucket's
                                         * properties, its replicas */
    char gen_key[GENERATED_KEY_LEN + 1];
    bool key_generated;
    quorum_put_t q;
    put_phase_t phase;
    int coord;                          /* index of the coordinating replica, -1: none yet */
    rt_msg_t *coord_reply;              /* kept: holds the new object's bytes */
    store_slice_t object;               /* the new object (inside coord_reply) */
    uint64_t precheck_id;               /* req_id of our own GET (conditional puts) */
} put_fsm_t;

/* A random, URL-safe key: 22 base62 characters (about 131 bits) from the kernel's CSPRNG. */
static void generate_key(char out[GENERATED_KEY_LEN + 1])
{
    static const char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t have = 0;
    while (have < GENERATED_KEY_LEN) {
        uint8_t buf[64];
        ssize_t got = getrandom(buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) { /* no kernel CSPRNG (never on Linux >= 3.17): still unique keys */
            static _Atomic uint64_t counter;
            uint64_t x = rt_now_ns() ^ (atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15ull);
            for (size_t i = 0; i < sizeof buf; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i] = (uint8_t)x;
            }
            got = (ssize_t)sizeof buf;
        }
        for (ssize_t i = 0; i < got && have < GENERATED_KEY_LEN; i++)
            if (buf[i] < 248) /* 248 = 4 * 62: no modulo bias */
                out[have++] = alphabet[buf[i] % 62];
    }
    out[GENERATED_KEY_LEN] = '\0';
}

static void put_reply_ok(put_fsm_t *s)
{
    Riak__RpbPutResp resp = RIAK__RPB_PUT_RESP__INIT;
    bool body = s->req->has_return_body && s->req->return_body;
    bool head = s->req->has_return_head && s->req->return_head;
    store_obj_t *obj = NULL;
    if ((body || head) && s->object.n) {
        if (store_obj_decode(s->object.p, s->object.n, &obj) != 0 ||
            kvobj_put_resp_build(obj, s->t.props.allow_mult, !body, &resp) != 0) {
            store_obj_free(obj);
            coord_reply_error(&s->c, "cannot encode the stored object");
            return;
        }
    }
    if (s->key_generated) {
        resp.has_key = 1;
        resp.key.data = (uint8_t *)s->gen_key;
        resp.key.len = GENERATED_KEY_LEN;
    }
    coord_reply(&s->c, kv_reply_new(s->c.req_id, false, PB_PUT_RESP, &resp.base), true);
    resp.has_key = 0;
    kvobj_put_resp_clear(&resp);
    store_obj_free(obj);
}

/* Decides after every vnode answer. */
static void put_step(put_fsm_t *s)
{
    if (s->c.replied)
        return;
    char err[128];
    switch (quorum_put_verdict(&s->q, err, sizeof err)) {
    case QUORUM_PENDING:
        if (quorum_put_done(&s->q)) /* defensive: counts say nothing more can come */
            coord_fail(&s->c, "timeout");
        return;
    case QUORUM_OK:
        put_reply_ok(s);
        coord_finish(&s->c);
        return;
    case QUORUM_NOTFOUND:
    case QUORUM_FAILED:
        coord_fail(&s->c, err);
        return;
    }
}

static void put_record(put_fsm_t *s, coord_replica_t *r, quorum_reply_t reply)
{
    coord_replica_answered(r, reply);
    quorum_put_add(&s->q, reply, r->primary);
}

/* Step 3: one reachable vnode of the preference list coordinates the write. */
static void put_coordinate(put_fsm_t *s)
{
    s->phase = PUT_COORDINATE;
    coord_replicas_t *t = &s->t;
    /* A local vnode coordinates when the preference list has a live one (no node hop);
     * otherwise the first reachable replica, wherever it lives. */
    for (uint32_t i = 0; i < t->n_reps && s->coord < 0; i++)
        if (t->reps[i].local && coord_replica_reachable(s->c.kv, t, &t->reps[i]))
            s->coord = (int)i;
    for (uint32_t i = 0; i < t->n_reps && s->coord < 0; i++)
        if (coord_replica_reachable(s->c.kv, t, &t->reps[i]))
            s->coord = (int)i;
    if (s->coord < 0) {
        for (uint32_t i = 0; i < t->n_reps; i++)
            put_record(s, &t->reps[i], QUORUM_REPLY_ERROR);
        put_step(s);
        if (!s->c.replied)
            coord_fail(&s->c, "all_nodes_down");
        return;
    }
    Riak__RpbContent *content = s->req->content;
    s->req->content = NULL; /* handed to the vnode's message (which stamps last_mod) */
    store_slice_t ctx = coord_slice(s->req->has_vclock, s->req->vclock);
    coord_replica_t *r = &t->reps[s->coord];
    rt_msg_t *m = kvobj_vnode_put_coord_msg(r->partition, t->type, t->bucket, t->key, content,
                                            ctx, &t->props.store, (uint32_t)time(NULL));
    r->ref = coord_vnode_call(s->c.kv, t, r, m, RT_INFINITY); /* the request's timer bounds it */
    if (!r->ref) { /* went away since the check: no coordinator after all */
        put_record(s, r, QUORUM_REPLY_ERROR);
        put_step(s);
        if (!s->c.replied)
            coord_fail(&s->c, "all_nodes_down");
    }
}

/* Step 4: the new object to every other replica. */
static void put_remote(put_fsm_t *s)
{
    s->phase = PUT_REMOTE;
    coord_replicas_t *t = &s->t;
    uint32_t now = (uint32_t)time(NULL);
    for (uint32_t i = 0; i < t->n_reps; i++) {
        coord_replica_t *r = &t->reps[i];
        if (r->answered || (int)i == s->coord)
            continue;
        r->ref = coord_vnode_call(s->c.kv, t, r,
                                  kvobj_vnode_put_replica_msg(r->partition, t->type, t->bucket,
                                                              t->key, s->object, &t->props.store,
                                                              now, false),
                                  RT_INFINITY);
        if (!r->ref) /* restarting: an error from that vnode, at once */
            put_record(s, r, QUORUM_REPLY_ERROR);
    }
}

static void put_on_coord_reply(put_fsm_t *s, coord_replica_t *r, rt_msg_t *m)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (!pb || pb->descriptor != &cairn__kv__vnode_put_resp__descriptor) {
        put_record(s, r, QUORUM_REPLY_ERROR);
        coord_fail(&s->c, "local_put_failed");
        return;
    }
    const Cairn__Kv__VnodePutResp *resp = (const Cairn__Kv__VnodePutResp *)pb;
    Cairn__Kv__Status st = resp->has_status ? resp->status : CAIRN__KV__STATUS__FAILED;
    char text[160];
    switch (st) {
    case CAIRN__KV__STATUS__OK:
        if (!resp->has_object || !resp->object.len) {
            put_record(s, r, QUORUM_REPLY_ERROR);
            coord_fail(&s->c, "local_put_failed");
            return;
        }
        rt_msg_keep(m);
        s->coord_reply = m;
        s->object = (store_slice_t){resp->object.data, resp->object.len};
        put_record(s, r, QUORUM_REPLY_VALUE);
        put_remote(s);
        put_step(s);
        return;
    case CAIRN__KV__STATUS__TOO_BIG:
        put_record(s, r, QUORUM_REPLY_ERROR);
        coord_fail(&s->c, "Object exceeds maximum size");
        return;
    case CAIRN__KV__STATUS__TOO_MANY_SIBLINGS:
        put_record(s, r, QUORUM_REPLY_ERROR);
        if (resp->errmsg && strncmp(resp->errmsg, "{too_many_siblings,", 19) == 0)
            snprintf(text, sizeof text, "%s", resp->errmsg);
        else
            snprintf(text, sizeof text, "{too_many_siblings,%u}", s->t.props.store.sib_max + 1);
        coord_fail(&s->c, text);
        return;
    case CAIRN__KV__STATUS__OVERLOAD:
        put_record(s, r, QUORUM_REPLY_OVERLOAD);
        coord_fail(&s->c, "overload");
        return;
    default:
        put_record(s, r, QUORUM_REPLY_ERROR);
        if (resp->errmsg)
            rt_warn("put: coordinating vnode %u failed: %s", r->partition, resp->errmsg);
        coord_fail(&s->c, "local_put_failed");
        return;
    }
}

static void put_on_replica_reply(put_fsm_t *s, coord_replica_t *r, const rt_msg_t *m)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    quorum_reply_t reply = QUORUM_REPLY_ERROR;
    if (pb && pb->descriptor == &cairn__kv__vnode_put_resp__descriptor) {
        const Cairn__Kv__VnodePutResp *resp = (const Cairn__Kv__VnodePutResp *)pb;
        if (resp->has_status && resp->status == CAIRN__KV__STATUS__OK)
            reply = QUORUM_REPLY_VALUE;
        else if (resp->has_status && resp->status == CAIRN__KV__STATUS__OVERLOAD)
            reply = QUORUM_REPLY_OVERLOAD;
    }
    put_record(s, r, reply);
    put_step(s);
}

/* ---------------------------------------------------------------- conditional puts */

static void put_precheck_start(put_fsm_t *s)
{
    s->phase = PUT_PRECHECK;
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    get.has_bucket = 1;
    get.bucket = (ProtobufCBinaryData){s->t.bucket.n, (uint8_t *)s->t.bucket.p};
    get.has_key = 1;
    get.key = (ProtobufCBinaryData){s->t.key.n, (uint8_t *)s->t.key.p};
    if (s->req->has_type) {
        get.has_type = 1;
        get.type = s->req->type;
    }
    get.has_r = 1;
    get.r = NODE_QUORUM_QUORUM;
    if (s->req->has_n_val) {
        get.has_n_val = 1;
        get.n_val = s->req->n_val;
    }
    get.has_timeout = 1;
    get.timeout = s->c.timeout_ms;
    s->precheck_id = s->c.req_id ^ 0x8000000000000000ull;
    coord_submit(&s->c, s->precheck_id, &get.base);
}

/* The answer of our own GET: go on with the write, or refuse it (riak_kv_pb_object). */
static void put_on_precheck(put_fsm_t *s, const rt_msg_t *m)
{
    uint8_t code;
    const uint8_t *body;
    size_t len;
    bool none_match = s->req->has_if_none_match && s->req->if_none_match;
    if (!kvobj_reply_frame(m, &code, &body, &len)) {
        coord_fail(&s->c, "conditional GET failed");
        return;
    }
    if (code == PB_ERROR_RESP) {
        if (none_match) { /* Riak writes on any GET error with if_none_match */
            put_coordinate(s);
            return;
        }
        char text[1024];
        coord_error_text(body, len, "unknown", text, sizeof text);
        coord_fail(&s->c, text);
        return;
    }
    Riak__RpbGetResp *g = code == PB_GET_RESP ? riak__rpb_get_resp__unpack(NULL, len, body)
                                              : NULL;
    if (!g) {
        coord_fail(&s->c, "conditional GET failed");
        return;
    }
    bool found = g->n_content > 0;
    const char *refusal = NULL;
    if (none_match && found) {
        refusal = "match_found";
    } else if (s->req->has_if_not_modified && s->req->if_not_modified) {
        if (!found) {
            refusal = "notfound";
        } else {
            store_vclock_t stored = STORE_VCLOCK_INIT, theirs = STORE_VCLOCK_INIT;
            bool same = g->has_vclock && s->req->has_vclock &&
                        store_vclock_decode(g->vclock.data, g->vclock.len, &stored) == 0 &&
                        store_vclock_decode(s->req->vclock.data, s->req->vclock.len, &theirs) ==
                            0 &&
                        store_vclock_equal(&stored, &theirs);
            store_vclock_clear(&stored);
            store_vclock_clear(&theirs);
            if (!same)
                refusal = "modified";
        }
    }
    riak__rpb_get_resp__free_unpacked(g, NULL);
    if (refusal)
        coord_fail(&s->c, refusal);
    else
        put_coordinate(s);
}

/* ---------------------------------------------------------------- start */

/* Validates the request and looks up the key's replicas. 0, or -1 with the client's error
 * in err. */
static int put_start(put_fsm_t *s, char *err, size_t errlen)
{
    const Riak__RpbPutReq *req = s->req;
    const node_config_t *cfg = s->c.kv->cfg;
    coord_replicas_t *t = &s->t;
    if (coord_replicas_bucket(t, req->has_type, req->type, req->has_bucket, req->bucket, err,
                              errlen) != 0)
        return -1;
    if (!req->has_key) {
        generate_key(s->gen_key);
        s->key_generated = true;
        t->key = (store_slice_t){(const uint8_t *)s->gen_key, GENERATED_KEY_LEN};
    } else if (!req->key.len) {
        snprintf(err, errlen, "Key cannot be zero-length");
        return -1;
    } else {
        t->key = coord_slice(1, req->key);
    }
    if (!req->content) {
        snprintf(err, errlen, "Missing content");
        return -1;
    }
    if (cfg->object_max_bytes && req->content->has_value &&
        req->content->value.len > cfg->object_max_bytes) {
        snprintf(err, errlen, "Object exceeds maximum size (%zu > %llu bytes)",
                 req->content->value.len, (unsigned long long)cfg->object_max_bytes);
        return -1;
    }
    if (coord_replicas_init(t, s->c.kv, req->has_n_val, req->n_val, req->has_sloppy_quorum,
                            req->sloppy_quorum, err, errlen) != 0)
        return -1;
    if (quorum_put_init(&s->q, &t->props, t->n, req->has_w ? req->w : NODE_QUORUM_DEFAULT,
                        req->has_dw ? req->dw : NODE_QUORUM_DEFAULT,
                        req->has_pw ? req->pw : NODE_QUORUM_DEFAULT, t->n_reps, t->primaries,
                        err, errlen) != 0)
        return -1;
    coord_start_timer(&s->c, req->has_timeout, req->timeout);
    return 0;
}

static int put_init(void *state, void *arg)
{
    put_fsm_t *s = state;
    coord_init(&s->c, arg, KV_OP_PUT);
    s->req = (Riak__RpbPutReq *)s->c.req;
    s->coord = -1;
    char err[256];
    if (put_start(s, err, sizeof err) != 0) {
        coord_fail(&s->c, err);
        return 0;
    }
    if ((s->req->has_if_none_match && s->req->if_none_match) ||
        (s->req->has_if_not_modified && s->req->if_not_modified))
        put_precheck_start(s);
    else
        put_coordinate(s);
    return 0;
}

/* The coordinating vnode's call (step 3). */
static bool is_coordinator(const put_fsm_t *s, const coord_replica_t *r)
{
    return s->phase == PUT_COORDINATE && r == &s->t.reps[s->coord];
}

static int put_handle(void *state, rt_msg_t *m)
{
    put_fsm_t *s = state;
    if (s->c.finished)
        return RT_STOP;
    bool failed;
    rt_ref_t ref = coord_call_ref(m, &failed);
    if (coord_timed_out(&s->c, m)) {
        coord_fail(&s->c, "timeout");
    } else if (ref) {
        coord_replica_t *r = coord_replica_by_ref(&s->t, ref);
        if (r && failed) {
            put_record(s, r, QUORUM_REPLY_ERROR);
            if (is_coordinator(s, r))
                coord_fail(&s->c, "local_put_failed");
            else
                put_step(s);
        } else if (r && is_coordinator(s, r)) {
            put_on_coord_reply(s, r, m);
        } else if (r) {
            put_on_replica_reply(s, r, m);
        }
    } else if (coord_is_sub_reply(m, s->precheck_id)) {
        if (s->phase == PUT_PRECHECK)
            put_on_precheck(s, m);
    }
    return s->c.finished ? RT_STOP : RT_CONTINUE;
}

static void put_terminate(void *state, int reason)
{
    put_fsm_t *s = state;
    coord_terminate(&s->c);
    coord_replicas_free(&s->t);
    if (s->coord_reply)
        rt_msg_free(s->coord_reply);
}

static const rt_behaviour_t put_behaviour = {
    .name = "kv_put_fsm",
    .state_size = sizeof(put_fsm_t),
    .init = put_init,
    .handle = put_handle,
    .terminate = put_terminate,
};

int kv_put(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbPutReq *req)
{
    return coord_spawn(kv, &put_behaviour, reply_to, req_id, &req->base);
}
