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
 * Ownership: the process owns the request; its content is handed to the coordinating
 * vnode's message (detached from the request). The coordinator's reply message is kept
 * (rt_msg_keep) so the new object's bytes are forwarded without a copy of our own.
 */
#include "node/kv.h"
#include "node/bucket.h"
#include "node/kvobj.h"
#include "node/quorum.h"
#include "node/vnode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

enum {
    PUT_MSG_TIMEOUT = KV_MSG_PRIVATE + 25, /* the request's timer */
    PUT_MSG_KICK = KV_MSG_PRIVATE + 26,    /* wake up to stop (decided inside init) */
};

#define PUT_INLINE_REPLICAS 5
#define PB_CODE_ERROR_RESP 0
#define PB_CODE_GET_RESP 10
#define PB_CODE_PUT_RESP 12
#define GENERATED_KEY_LEN 22

static const store_slice_t default_type = {(const uint8_t *)"default", 7};

static store_slice_t bin_slice(protobuf_c_boolean has, ProtobufCBinaryData b)
{
    return has ? (store_slice_t){b.data, b.len} : (store_slice_t){NULL, 0};
}

typedef struct put_replica_s {
    uint32_t partition;
    bool primary;
    bool answered;
    rt_ref_t ref;                /* the call in flight (0: none) */
} put_replica_t;

typedef enum { PUT_PRECHECK, PUT_COORDINATE, PUT_REMOTE } put_phase_t;

typedef struct put_fsm_s {
    kv_node_t *kv;
    rt_pid_t self, reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbPutReq *req;               /* owned */
    store_slice_t type, bucket, key;    /* borrowed from req (or gen_key) */
    char gen_key[GENERATED_KEY_LEN + 1];
    bool key_generated;
    bucket_props_t props;
    uint32_t n;                         /* the request's N */
    quorum_put_t q;
    put_replica_t *reps;
    uint32_t n_reps;
    put_replica_t inline_reps[PUT_INLINE_REPLICAS];
    put_phase_t phase;
    int coord;                          /* index of the coordinating replica, -1: none yet */
    rt_msg_t *coord_reply;              /* kept: holds the new object's bytes */
    store_slice_t object;               /* the new object (inside coord_reply) */
    uint64_t precheck_id;               /* req_id of our own GET (conditional puts) */
    uint32_t timeout_ms;
    rt_timer_t timer;
    bool replied, finished;
} put_fsm_t;

typedef struct put_start_s {
    kv_node_t *kv;
    rt_pid_t reply_to;
    uint64_t req_id, start_ns;
    Riak__RpbPutReq *req;
    bool taken;                         /* init ran: the process owns req */
} put_start_t;

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

static void put_reply(put_fsm_t *s, rt_msg_t *reply, bool ok)
{
    s->replied = true;
    kv_stats_record(&s->kv->stats, KV_OP_PUT, s->start_ns, ok); /* before the client can look */
    rt_send(s->reply_to, reply);
}

static void put_reply_error(put_fsm_t *s, const char *text)
{
    put_reply(s, kv_reply_error(s->req_id, "%s", text), false);
}

static void put_finish(put_fsm_t *s)
{
    if (!s->finished) {
        s->finished = true;
        rt_send(s->self, rt_msg_new(PUT_MSG_KICK, 0));
    }
}

static void put_fail(put_fsm_t *s, const char *text)
{
    if (!s->replied)
        put_reply_error(s, text);
    put_finish(s);
}

static void put_reply_ok(put_fsm_t *s)
{
    Riak__RpbPutResp resp = RIAK__RPB_PUT_RESP__INIT;
    bool body = s->req->has_return_body && s->req->return_body;
    bool head = s->req->has_return_head && s->req->return_head;
    store_obj_t *obj = NULL;
    if ((body || head) && s->object.n) {
        if (store_obj_decode(s->object.p, s->object.n, &obj) != 0 ||
            kvobj_put_resp_build(obj, s->props.allow_mult, !body, &resp) != 0) {
            store_obj_free(obj);
            put_reply_error(s, "cannot encode the stored object");
            return;
        }
    }
    if (s->key_generated) {
        resp.has_key = 1;
        resp.key.data = (uint8_t *)s->gen_key;
        resp.key.len = GENERATED_KEY_LEN;
    }
    put_reply(s, kv_reply_new(s->req_id, false, PB_CODE_PUT_RESP, &resp.base), true);
    resp.has_key = 0;
    kvobj_put_resp_clear(&resp);
    store_obj_free(obj);
}

/* Decides after every vnode answer. */
static void put_step(put_fsm_t *s)
{
    if (s->replied)
        return;
    char err[128];
    switch (quorum_put_verdict(&s->q, err, sizeof err)) {
    case QUORUM_PENDING:
        if (quorum_put_done(&s->q)) /* defensive: counts say nothing more can come */
            put_fail(s, "timeout");
        return;
    case QUORUM_OK:
        put_reply_ok(s);
        put_finish(s);
        return;
    case QUORUM_NOTFOUND:
    case QUORUM_FAILED:
        put_fail(s, err);
        return;
    }
}

static void put_record(put_fsm_t *s, put_replica_t *r, quorum_reply_t reply)
{
    r->answered = true;
    r->ref = 0;
    quorum_put_add(&s->q, reply, r->primary);
}

/* Step 3: the first live vnode coordinates; dead ones before it count as failures. */
static void put_coordinate(put_fsm_t *s)
{
    s->phase = PUT_COORDINATE;
    rt_pid_t pid = RT_NOPID;
    for (uint32_t i = 0; i < s->n_reps; i++) {
        pid = vnode_pid(s->kv, s->reps[i].partition);
        if (!rt_pid_is_nil(pid)) {
            s->coord = (int)i;
            break;
        }
        put_record(s, &s->reps[i], QUORUM_REPLY_ERROR);
    }
    if (s->coord < 0) {
        put_step(s);
        if (!s->replied)
            put_fail(s, "all_nodes_down");
        return;
    }
    Riak__RpbContent *content = s->req->content;
    s->req->content = NULL; /* handed to the vnode's message */
    if (!content->has_last_mod) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        content->has_last_mod = 1;
        content->last_mod = (uint32_t)ts.tv_sec;
        content->has_last_mod_usecs = 1;
        content->last_mod_usecs = (uint32_t)(ts.tv_nsec / 1000);
    }
    store_slice_t ctx = bin_slice(s->req->has_vclock, s->req->vclock);
    put_replica_t *r = &s->reps[s->coord];
    rt_msg_t *m = kvobj_vnode_put_coord_msg(r->partition, s->type, s->bucket, s->key, content,
                                            ctx, &s->props.store, (uint32_t)time(NULL));
    r->ref = rt_call(pid, m, RT_INFINITY); /* the request's timer bounds every call */
}

/* Step 4: the new object to every other replica. */
static void put_remote(put_fsm_t *s)
{
    s->phase = PUT_REMOTE;
    uint32_t now = (uint32_t)time(NULL);
    for (uint32_t i = 0; i < s->n_reps; i++) {
        put_replica_t *r = &s->reps[i];
        if (r->answered || (int)i == s->coord)
            continue;
        rt_pid_t pid = vnode_pid(s->kv, r->partition);
        if (!rt_pid_is_nil(pid))
            r->ref = rt_call(pid,
                             kvobj_vnode_put_replica_msg(r->partition, s->type, s->bucket, s->key,
                                                         s->object, &s->props.store, now, false),
                             RT_INFINITY);
        if (!r->ref) /* restarting: an error from that vnode, at once */
            put_record(s, r, QUORUM_REPLY_ERROR);
    }
}

static void put_on_coord_reply(put_fsm_t *s, put_replica_t *r, rt_msg_t *m)
{
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (!pb || pb->descriptor != &cairn__kv__vnode_put_resp__descriptor) {
        put_record(s, r, QUORUM_REPLY_ERROR);
        put_fail(s, "local_put_failed");
        return;
    }
    const Cairn__Kv__VnodePutResp *resp = (const Cairn__Kv__VnodePutResp *)pb;
    Cairn__Kv__Status st = resp->has_status ? resp->status : CAIRN__KV__STATUS__FAILED;
    char text[160];
    switch (st) {
    case CAIRN__KV__STATUS__OK:
        if (!resp->has_object || !resp->object.len) {
            put_record(s, r, QUORUM_REPLY_ERROR);
            put_fail(s, "local_put_failed");
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
        put_fail(s, "Object exceeds maximum size");
        return;
    case CAIRN__KV__STATUS__TOO_MANY_SIBLINGS:
        put_record(s, r, QUORUM_REPLY_ERROR);
        if (resp->errmsg && strncmp(resp->errmsg, "{too_many_siblings,", 19) == 0)
            snprintf(text, sizeof text, "%s", resp->errmsg);
        else
            snprintf(text, sizeof text, "{too_many_siblings,%u}", s->props.store.sib_max + 1);
        put_fail(s, text);
        return;
    case CAIRN__KV__STATUS__OVERLOAD:
        put_record(s, r, QUORUM_REPLY_OVERLOAD);
        put_fail(s, "overload");
        return;
    default:
        put_record(s, r, QUORUM_REPLY_ERROR);
        if (resp->errmsg)
            rt_warn("put: coordinating vnode %u failed: %s", r->partition, resp->errmsg);
        put_fail(s, "local_put_failed");
        return;
    }
}

static void put_on_replica_reply(put_fsm_t *s, put_replica_t *r, const rt_msg_t *m)
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
    get.bucket = (ProtobufCBinaryData){s->bucket.n, (uint8_t *)s->bucket.p};
    get.has_key = 1;
    get.key = (ProtobufCBinaryData){s->key.n, (uint8_t *)s->key.p};
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
    get.timeout = s->timeout_ms;
    Riak__RpbGetReq *copy = (Riak__RpbGetReq *)kvobj_pb_clone(&get.base);
    if (!copy) {
        put_fail(s, "cannot build the conditional GET");
        return;
    }
    s->precheck_id = s->req_id ^ 0x8000000000000000ull;
    int rc = kv_get(s->kv, s->self, s->precheck_id, copy);
    if (rc == KV_EOVERLOAD)
        put_fail(s, "overload");
    else if (rc != 0)
        put_fail(s, "The node is shutting down");
}

/* The answer of our own GET: go on with the write, or refuse it (riak_kv_pb_object). */
static void put_on_precheck(put_fsm_t *s, const rt_msg_t *m)
{
    uint8_t code;
    const uint8_t *body;
    size_t len;
    bool none_match = s->req->has_if_none_match && s->req->if_none_match;
    if (!kvobj_reply_frame(m, &code, &body, &len)) {
        put_fail(s, "conditional GET failed");
        return;
    }
    if (code == PB_CODE_ERROR_RESP) {
        if (none_match) { /* Riak writes on any GET error with if_none_match */
            put_coordinate(s);
            return;
        }
        Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
        char text[1024];
        snprintf(text, sizeof text, "%.*s", e && e->has_errmsg ? (int)e->errmsg.len : 7,
                 e && e->has_errmsg ? (const char *)e->errmsg.data : "unknown");
        if (e)
            riak__rpb_error_resp__free_unpacked(e, NULL);
        put_fail(s, text);
        return;
    }
    Riak__RpbGetResp *g = code == PB_CODE_GET_RESP ? riak__rpb_get_resp__unpack(NULL, len, body)
                                                   : NULL;
    if (!g) {
        put_fail(s, "conditional GET failed");
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
        put_fail(s, refusal);
    else
        put_coordinate(s);
}

/* ---------------------------------------------------------------- start */

/* Validates the request. 0, or -1 with the client's error in err. */
static int put_start(put_fsm_t *s, char *err, size_t errlen)
{
    Riak__RpbPutReq *req = s->req;
    const node_config_t *cfg = s->kv->cfg;
    s->bucket = bin_slice(req->has_bucket, req->bucket);
    s->type = req->has_type && req->type.len ? bin_slice(1, req->type) : default_type;
    if (!s->bucket.n) {
        snprintf(err, errlen, "Bucket cannot be zero-length");
        return -1;
    }
    if (!req->has_key) {
        generate_key(s->gen_key);
        s->key_generated = true;
        s->key = (store_slice_t){(const uint8_t *)s->gen_key, GENERATED_KEY_LEN};
    } else if (!req->key.len) {
        snprintf(err, errlen, "Key cannot be zero-length");
        return -1;
    } else {
        s->key = bin_slice(1, req->key);
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
    if (bucket_props_get(s->kv->buckets, s->type.p, s->type.n, s->bucket.p, s->bucket.n,
                         &s->props) != 0) {
        snprintf(err, errlen, "Invalid bucket type: %.*s", (int)s->type.n, (const char *)s->type.p);
        return -1;
    }
    if (quorum_n(s->props.n_val, req->has_n_val, req->n_val, &s->n, err, errlen) != 0)
        return -1;
    ring_pref_t stack_prefs[PUT_INLINE_REPLICAS];
    ring_pref_t *prefs = s->n <= PUT_INLINE_REPLICAS ? stack_prefs : calloc(s->n, sizeof *prefs);
    if (!prefs)
        abort();
    uint64_t h = ring_hash_key(s->type.p, s->type.n, s->bucket.p, s->bucket.n, s->key.p, s->key.n);
    size_t np = ring_preflist(s->kv->ring, h, s->n, prefs);
    uint32_t primaries = 0;
    for (size_t i = 0; i < np; i++)
        primaries += prefs[i].primary;
    s->reps = np <= PUT_INLINE_REPLICAS ? s->inline_reps : calloc(np, sizeof *s->reps);
    if (!s->reps)
        abort();
    s->n_reps = (uint32_t)np;
    for (size_t i = 0; i < np; i++) {
        s->reps[i].partition = prefs[i].partition;
        s->reps[i].primary = prefs[i].primary;
    }
    if (prefs != stack_prefs)
        free(prefs);
    if (quorum_put_init(&s->q, &s->props, s->n, req->has_w ? req->w : NODE_QUORUM_DEFAULT,
                        req->has_dw ? req->dw : NODE_QUORUM_DEFAULT,
                        req->has_pw ? req->pw : NODE_QUORUM_DEFAULT, s->n_reps, primaries, err,
                        errlen) != 0)
        return -1;
    s->timeout_ms = req->has_timeout && req->timeout ? req->timeout : cfg->request_timeout_ms;
    s->timer = rt_send_after(s->timeout_ms, s->self, rt_msg_new(PUT_MSG_TIMEOUT, 0));
    return 0;
}

static int put_init(void *state, void *arg)
{
    put_fsm_t *s = state;
    put_start_t *a = arg;
    a->taken = true;
    s->kv = a->kv;
    s->self = rt_self();
    s->reply_to = a->reply_to;
    s->req_id = a->req_id;
    s->start_ns = a->start_ns;
    s->req = a->req;
    s->coord = -1;
    char err[256];
    if (put_start(s, err, sizeof err) != 0) {
        put_fail(s, err);
        return 0;
    }
    if ((s->req->has_if_none_match && s->req->if_none_match) ||
        (s->req->has_if_not_modified && s->req->if_not_modified))
        put_precheck_start(s);
    else
        put_coordinate(s);
    return 0;
}

static put_replica_t *replica_by_ref(put_fsm_t *s, rt_ref_t ref)
{
    for (uint32_t i = 0; i < s->n_reps; i++)
        if (s->reps[i].ref == ref && !s->reps[i].answered)
            return &s->reps[i];
    return NULL;
}

static int put_handle(void *state, rt_msg_t *m)
{
    put_fsm_t *s = state;
    if (s->finished)
        return RT_STOP;
    if (m->flags & RT_MSGF_REPLY) {
        put_replica_t *r = replica_by_ref(s, m->ref);
        if (r && s->phase == PUT_COORDINATE && r == &s->reps[s->coord])
            put_on_coord_reply(s, r, m);
        else if (r)
            put_on_replica_reply(s, r, m);
    } else if (m->type == RT_MSG_CALL_FAILED) {
        const rt_call_failed_t *cf = (const rt_call_failed_t *)(const void *)m->data;
        put_replica_t *r = replica_by_ref(s, cf->ref);
        if (r && s->phase == PUT_COORDINATE && r == &s->reps[s->coord]) {
            put_record(s, r, QUORUM_REPLY_ERROR);
            put_fail(s, "local_put_failed");
        } else if (r) {
            put_record(s, r, QUORUM_REPLY_ERROR);
            put_step(s);
        }
    } else if (m->type == KV_MSG_REPLY) {
        const kv_reply_t *kr = (const kv_reply_t *)(const void *)m->data;
        if (s->phase == PUT_PRECHECK && m->size >= sizeof *kr && kr->req_id == s->precheck_id)
            put_on_precheck(s, m);
    } else if (m->type == PUT_MSG_TIMEOUT) {
        s->timer = 0;
        put_fail(s, "timeout");
    }
    return s->finished ? RT_STOP : RT_CONTINUE;
}

static void put_terminate(void *state, int reason)
{
    put_fsm_t *s = state;
    if (!s->replied) /* a crash: the connection still gets its one reply */
        put_reply_error(s, "internal error");
    if (s->timer)
        rt_cancel_timer(s->timer);
    if (s->reps && s->reps != s->inline_reps)
        free(s->reps);
    if (s->coord_reply)
        rt_msg_free(s->coord_reply);
    if (s->req)
        protobuf_c_message_free_unpacked(&s->req->base, NULL);
    atomic_fetch_sub_explicit(&s->kv->inflight, 1, memory_order_relaxed);
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
    put_start_t a = {kv, reply_to, req_id, rt_now_ns(), req, false};
    int rc = rt_spawn(&put_behaviour, &a, NULL);
    if (rc == 0)
        return 0;
    if (!a.taken) {
        atomic_fetch_sub_explicit(&kv->inflight, 1, memory_order_relaxed);
        protobuf_c_message_free_unpacked(&req->base, NULL);
    }
    atomic_fetch_add_explicit(&kv->stats.overloads, 1, memory_order_relaxed);
    return KV_EOVERLOAD;
}
