/*
 * replica_probe.c — the admin REPLICAS worker (node/replica_probe.h): one process per
 * request, asking every primary replica of every key for its stored object.
 *
 * Ownership: the process owns the AdminReq (the keys, bucket and type slices of each
 * key's coord_replicas_t point into it), each key's replica set, and the decoded objects
 * until it replies and stops.
 */
#include "node/replica_probe.h"

#include "node/admin_endpoint.h"
#include "node/coord.h"
#include "node/kvobj.h"
#include "runtime/dist.h"
#include "storage/object.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

enum { PROBE_MSG_TIMEOUT = KV_MSG_PRIVATE + 85 }; /* node/kv.h: admin's range */

typedef struct probe_key_s {
    coord_replicas_t t;      /* the key's primaries (type/bucket/key borrowed from req) */
    store_obj_t **objs;      /* per replica: the decoded object (owned), or NULL */
    uint64_t *digests;       /* per replica: XXH3-64 of the stored bytes */
    const char **errors;     /* per replica: why it has no answer (static strings) */
} probe_key_t;

typedef struct probe_s {
    kv_node_t *kv;
    const char *version;
    rt_pid_t reply_to;
    Cairn__Admin__AdminReq *req; /* owned */
    probe_key_t *keys;
    size_t n_keys;
    uint32_t pending;            /* vnode calls in flight */
    rt_timer_t timer;
    bool replied;
} probe_t;

typedef struct probe_arg_s {
    kv_node_t *kv;
    const char *version;
    rt_pid_t reply_to;
    Cairn__Admin__AdminReq *req;
} probe_arg_t;

static void probe_fail(probe_t *s, const char *why)
{
    Cairn__Admin__AdminResp r;
    admin_resp_init(&r, s->version, s->req->has_req_id ? s->req->req_id : 0, false);
    r.errmsg = (char *)why;
    admin_send_resp(s->reply_to, &r);
    s->replied = true;
}

/* Whether every replica answered and all hold equal objects, or none holds one. */
static bool probe_key_converged(const probe_key_t *k)
{
    const store_obj_t *first = NULL;
    bool any_missing = false;
    for (uint32_t i = 0; i < k->t.n_reps; i++) {
        const coord_replica_t *r = &k->t.reps[i];
        if (!r->answered || r->reply == QUORUM_REPLY_ERROR || r->reply == QUORUM_REPLY_OVERLOAD)
            return false;
        if (!k->objs[i]) {
            any_missing = true;
        } else if (!first) {
            first = k->objs[i];
        } else if (!store_obj_equal(first, k->objs[i])) {
            return false;
        }
    }
    return !(first && any_missing);
}

static const char *probe_status(const coord_replica_t *r)
{
    if (!r->answered)
        return "error";
    switch (r->reply) {
    case QUORUM_REPLY_VALUE: return "value";
    case QUORUM_REPLY_TOMBSTONE: return "tombstone";
    case QUORUM_REPLY_NOTFOUND: return "notfound";
    case QUORUM_REPLY_ERROR:
    case QUORUM_REPLY_OVERLOAD: return "error";
    }
    return "error";
}

static void probe_reply(probe_t *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->n_keys; i++)
        total += s->keys[i].t.n_reps;
    Cairn__Admin__KeyReplicas *kr = calloc(s->n_keys, sizeof *kr);
    Cairn__Admin__KeyReplicas **krp = calloc(s->n_keys, sizeof *krp);
    Cairn__Admin__Replica *reps = calloc(total ? total : 1, sizeof *reps);
    Cairn__Admin__Replica **repp = calloc(total ? total : 1, sizeof *repp);
    if (!kr || !krp || !reps || !repp)
        abort();
    size_t at = 0;
    for (size_t i = 0; i < s->n_keys; i++) {
        const probe_key_t *k = &s->keys[i];
        cairn__admin__key_replicas__init(&kr[i]);
        krp[i] = &kr[i];
        kr[i].has_key = 1;
        kr[i].key = s->req->keys[i];
        kr[i].has_converged = 1;
        kr[i].converged = probe_key_converged(k);
        kr[i].replicas = &repp[at];
        kr[i].n_replicas = k->t.n_reps;
        for (uint32_t j = 0; j < k->t.n_reps; j++, at++) {
            const coord_replica_t *r = &k->t.reps[j];
            Cairn__Admin__Replica *rep = &reps[at];
            cairn__admin__replica__init(rep);
            repp[at] = rep;
            rep->has_partition = 1;
            rep->partition = r->partition;
            rep->node = (char *)coord_replica_node(&k->t, r);
            rep->status = (char *)probe_status(r);
            if (!r->answered || r->reply == QUORUM_REPLY_ERROR || r->reply == QUORUM_REPLY_OVERLOAD)
                rep->error = (char *)(k->errors[j] ? k->errors[j] : "no answer");
            if (k->objs[j]) {
                rep->has_siblings = rep->has_digest = 1;
                rep->siblings = k->objs[j]->n_sibs;
                rep->digest = k->digests[j];
            }
        }
    }
    Cairn__Admin__AdminResp r;
    admin_resp_init(&r, s->version, s->req->has_req_id ? s->req->req_id : 0, true);
    r.n_replicas = s->n_keys;
    r.replicas = krp;
    admin_send_resp(s->reply_to, &r);
    s->replied = true;
    free(kr);
    free(krp);
    free(reps);
    free(repp);
}

static void probe_record(probe_t *s, probe_key_t *k, coord_replica_t *r, const rt_msg_t *m,
                         bool failed)
{
    size_t j = (size_t)(r - k->t.reps);
    const ProtobufCMessage *pb = failed ? NULL : rt_msg_pb_get(m);
    quorum_reply_t reply = QUORUM_REPLY_ERROR;
    if (failed) {
        k->errors[j] = "the call failed (vnode or node down)";
    } else if (!pb || pb->descriptor != &cairn__kv__vnode_get_resp__descriptor) {
        k->errors[j] = "unexpected reply";
    } else {
        const Cairn__Kv__VnodeGetResp *resp = (const Cairn__Kv__VnodeGetResp *)pb;
        Cairn__Kv__Status st = resp->has_status ? resp->status : CAIRN__KV__STATUS__FAILED;
        if (st == CAIRN__KV__STATUS__NOTFOUND) {
            reply = QUORUM_REPLY_NOTFOUND;
        } else if (st == CAIRN__KV__STATUS__OVERLOAD) {
            reply = QUORUM_REPLY_OVERLOAD;
            k->errors[j] = "overload";
        } else if (st == CAIRN__KV__STATUS__OK && resp->has_object) {
            store_obj_t *obj = NULL;
            if (store_obj_decode(resp->object.data, resp->object.len, &obj) != 0) {
                k->errors[j] = "undecodable object";
            } else {
                k->objs[j] = obj;
                k->digests[j] = XXH3_64bits(resp->object.data, resp->object.len);
                reply = store_obj_is_tombstone(obj) ? QUORUM_REPLY_TOMBSTONE : QUORUM_REPLY_VALUE;
            }
        } else {
            k->errors[j] = "vnode error";
        }
    }
    coord_replica_answered(r, reply);
    s->pending--;
}

static int probe_start_key(probe_t *s, probe_key_t *k, size_t i, char *err, size_t errlen)
{
    const Cairn__Admin__AdminReq *req = s->req;
    coord_replicas_t *t = &k->t;
    if (coord_replicas_bucket(t, req->has_bucket_type, req->bucket_type, req->has_bucket,
                              req->bucket, err, errlen) != 0)
        return -1;
    t->key = (store_slice_t){req->keys[i].data, req->keys[i].len};
    /* primaries only: a down primary shows as an error, not as its fallback */
    if (coord_replicas_init(t, s->kv, 0, 0, 1, 0, err, errlen) != 0)
        return -1;
    k->objs = calloc(t->n_reps ? t->n_reps : 1, sizeof *k->objs);
    k->digests = calloc(t->n_reps ? t->n_reps : 1, sizeof *k->digests);
    k->errors = calloc(t->n_reps ? t->n_reps : 1, sizeof *k->errors);
    if (!k->objs || !k->digests || !k->errors)
        abort();
    for (uint32_t j = 0; j < t->n_reps; j++) {
        coord_replica_t *r = &t->reps[j];
        r->ref = coord_vnode_call(s->kv, t, r,
                                  kvobj_vnode_get_msg(r->partition, t->type, t->bucket, t->key),
                                  RT_INFINITY);
        if (r->ref) {
            s->pending++;
        } else {
            k->errors[j] = r->local ? "the vnode is restarting" : "its node is down";
            coord_replica_answered(r, QUORUM_REPLY_ERROR);
        }
    }
    return 0;
}

static int probe_init(void *state, void *arg)
{
    probe_t *s = state;
    const probe_arg_t *a = arg;
    s->kv = a->kv;
    s->version = a->version;
    s->reply_to = a->reply_to;
    s->req = a->req;
    s->n_keys = s->req->n_keys;
    s->keys = calloc(s->n_keys, sizeof *s->keys);
    if (!s->keys)
        abort();
    char err[256];
    for (size_t i = 0; i < s->n_keys; i++) {
        if (probe_start_key(s, &s->keys[i], i, err, sizeof err) != 0) {
            probe_fail(s, err);
            rt_send(rt_self(), rt_msg_new(PROBE_MSG_TIMEOUT, 0)); /* wake up to stop */
            return 0;
        }
    }
    if (s->pending == 0) {
        probe_reply(s);
        rt_send(rt_self(), rt_msg_new(PROBE_MSG_TIMEOUT, 0));
        return 0;
    }
    s->timer = rt_send_after(REPLICA_PROBE_TIMEOUT_MS, rt_self(), rt_msg_new(PROBE_MSG_TIMEOUT, 0));
    return 0;
}

static int probe_handle(void *state, rt_msg_t *m)
{
    probe_t *s = state;
    if (s->replied)
        return RT_STOP;
    if (m->type == PROBE_MSG_TIMEOUT) {
        s->timer = 0;
        for (size_t i = 0; i < s->n_keys; i++)
            for (uint32_t j = 0; j < s->keys[i].t.n_reps; j++)
                if (!s->keys[i].t.reps[j].answered)
                    s->keys[i].errors[j] = "timeout";
        probe_reply(s);
        return RT_STOP;
    }
    bool failed;
    rt_ref_t ref = coord_call_ref(m, &failed);
    if (!ref)
        return RT_CONTINUE;
    for (size_t i = 0; i < s->n_keys; i++) {
        coord_replica_t *r = coord_replica_by_ref(&s->keys[i].t, ref);
        if (r) {
            probe_record(s, &s->keys[i], r, m, failed);
            break;
        }
    }
    if (s->pending)
        return RT_CONTINUE;
    probe_reply(s);
    return RT_STOP;
}

static void probe_terminate(void *state, int reason)
{
    probe_t *s = state;
    (void)reason;
    if (!s->replied && s->req)
        probe_fail(s, "internal error: the probe stopped before answering");
    if (s->timer)
        rt_cancel_timer(s->timer);
    for (size_t i = 0; s->keys && i < s->n_keys; i++) {
        probe_key_t *k = &s->keys[i];
        for (uint32_t j = 0; k->objs && j < k->t.n_reps; j++)
            store_obj_free(k->objs[j]);
        free(k->objs);
        free(k->digests);
        free(k->errors);
        coord_replicas_free(&k->t);
    }
    free(s->keys);
    if (s->req)
        cairn__admin__admin_req__free_unpacked(s->req, NULL);
}

static const rt_behaviour_t probe_behaviour = {
    .name = "replica_probe",
    .state_size = sizeof(probe_t),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
};

int replica_probe_start(kv_node_t *kv, const char *version, rt_pid_t reply_to,
                        Cairn__Admin__AdminReq *req, char *err, size_t errlen)
{
    int bad = 0;
    if (!req->has_bucket || req->bucket.len == 0) {
        snprintf(err, errlen, "replicas: a bucket is required");
        bad = 1;
    } else if (req->n_keys == 0 || req->n_keys > REPLICA_PROBE_MAX_KEYS) {
        snprintf(err, errlen, "replicas: give 1 to %d keys (got %zu)", REPLICA_PROBE_MAX_KEYS,
                 req->n_keys);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < req->n_keys; i++) {
        if (req->keys[i].len == 0) {
            snprintf(err, errlen, "replicas: key %zu is empty", i + 1);
            bad = 1;
        }
    }
    if (bad) {
        cairn__admin__admin_req__free_unpacked(req, NULL);
        return -1;
    }
    probe_arg_t a = {.kv = kv, .version = version, .reply_to = reply_to, .req = req};
    int rc = rt_spawn(&probe_behaviour, &a, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "replicas: cannot start the probe: %s", rt_strerror(rc));
        cairn__admin__admin_req__free_unpacked(req, NULL);
        return -1;
    }
    return 0;
}
