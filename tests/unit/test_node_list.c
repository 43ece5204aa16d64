/*
 * test_node_list.c — listing keys and buckets (node/list.c) against real vnodes on LevelDB in
 * a temporary directory (and the memory backend). Data is written the way the coordinators
 * write it: a coordinated put at the first partition of the key's preference list, replica
 * writes at the next two. The test thread plays the client connection: it is reply_to,
 * reads the KV_MSG_REPLY frames and sends KV_MSG_STREAM_ACK itself.
 *
 * Partitions owned by another node: the suite publishes a cluster state in which a second
 * member, "ghost", owns part of the ring, and plays ghost's list fold service in this same
 * process (the runtime is not distributed here, so a call by name to any node resolves to
 * this process's registry): the service runs with a second kv_node_t whose node name is
 * ghost's and which shares the suite's vnode table, so it folds the very partitions the
 * vnodes hold, through the whole request/answer protocol. Without that service, ghost is
 * unreachable (noproc). The real cluster case is tests/cluster/test_cluster_list.c.
 */
#include "node/list.h"
#include "node_test.h"
#include "proto/kv.pb-c.h"
#include "storage/object.h"

#define Q 8
#define N_VAL 3
#define CODE_ERROR 0
#define CODE_LIST_BUCKETS_RESP 16
#define CODE_LIST_KEYS_RESP 18

static node_test_t fx;

#define GHOST "ghost@127.0.0.1:1"

/* ghost's view of the cluster, for its list fold service (see the top of the file). */
static node_config_t ghost_cfg;
static kv_node_t ghost;

static void setup_kind(store_engine_kind_t kind)
{
    node_test_setup(&fx, (node_test_opts_t){.what = "list", .q = Q, .vnodes = true,
                                            .engine = kind, .node_id = 42});
}

static void setup_ldb(void) { setup_kind(STORE_ENGINE_LEVELDB); }
static void setup_mem(void) { setup_kind(STORE_ENGINE_MEMORY); }

static void teardown(void)
{
    /* every lister has ended: none holds a request slot */
    for (int i = 0; i < 200 && atomic_load(&fx.kv.inflight) != 0; i++)
        usleep(10000);
    cr_assert_eq(atomic_load(&fx.kv.inflight), 0, "a lister is still counted");
    node_test_teardown(&fx);
    kv_states_free(ghost.states); /* after the runtime stopped: nothing reads it any more */
    memset(&ghost, 0, sizeof ghost);
}

/* ---------------------------------------------------------------- writing data */

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static Cairn__Kv__VnodePutResp *put_call(uint32_t p, Cairn__Kv__VnodePutReq *req, rt_msg_t **msg)
{
    req->has_partition = 1;
    req->partition = p;
    rt_msg_t *call = rt_msg_pb(KV_MSG_VNODE_PUT, node_test_pb_clone(&req->base), NULL);
    int rc = rt_call_sync(vnode_pid(&fx.kv, p), call, 5000, msg, NULL);
    cr_assert_eq(rc, 0, "put to vnode %u: %s", p, rt_strerror(rc));
    Cairn__Kv__VnodePutResp *r = (Cairn__Kv__VnodePutResp *)rt_msg_pb_get(*msg);
    cr_assert_eq(r->status, CAIRN__KV__STATUS__OK, "put: %s", r->errmsg ? r->errmsg : "?");
    return r;
}

/* Writes (bucket, key) like a put coordinator with n_val 3: coordinated at the first
 * partition of the preference list, replicated to the other two. deleted: a tombstone. */
static void write_key(const char *bucket, const char *key, bool deleted)
{
    ring_pref_t pl[N_VAL];
    uint64_t h = ring_hash_key("default", 7, bucket, strlen(bucket), key, strlen(key));
    cr_assert_eq(ring_preflist(kv_ring(&fx.kv), h, N_VAL, pl), N_VAL);
    Riak__RpbContent c = RIAK__RPB_CONTENT__INIT;
    c.has_value = 1;
    c.value = bin(deleted ? "" : "value");
    c.has_deleted = deleted;
    c.deleted = deleted;
    Cairn__Kv__VnodePutReq req = CAIRN__KV__VNODE_PUT_REQ__INIT;
    req.has_bucket = req.has_key = req.has_coordinate = 1;
    req.bucket = bin(bucket);
    req.key = bin(key);
    req.coordinate = 1;
    req.content = &c;
    rt_msg_t *m = NULL;
    Cairn__Kv__VnodePutResp *r = put_call(pl[0].partition, &req, &m);
    Cairn__Kv__VnodePutReq rep = CAIRN__KV__VNODE_PUT_REQ__INIT;
    rep.has_bucket = rep.has_key = rep.has_coordinate = rep.has_object = 1;
    rep.bucket = bin(bucket);
    rep.key = bin(key);
    rep.coordinate = 0;
    rep.object = r->object;
    for (int i = 1; i < N_VAL; i++) {
        rt_msg_t *m2 = NULL;
        put_call(pl[i].partition, &rep, &m2);
        rt_msg_free(m2);
    }
    rt_msg_free(m);
}

static void write_keys(const char *bucket, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s%05d", prefix, i);
        write_key(bucket, key, false);
    }
}

/* ---------------------------------------------------------------- reading replies */

static bool match_reply(const rt_msg_t *m, void *ctx)
{
    (void)ctx;
    return m->type == KV_MSG_REPLY;
}

/* The next reply for the test thread (asserts one comes within ms). */
static rt_msg_t *next_reply(uint32_t ms)
{
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive_match(ms, match_reply, NULL, &m), 0, "no reply within %u ms", ms);
    return m;
}

static const kv_reply_t *reply_of(const rt_msg_t *m, uint64_t req_id)
{
    const kv_reply_t *r = (const kv_reply_t *)(const void *)m->data;
    cr_assert_eq(r->req_id, req_id);
    cr_assert_geq(r->len, 5);
    return r;
}

static char *error_text(const kv_reply_t *r)
{
    static char text[1100];
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, r->len - 5, r->frame + 5);
    cr_assert_not_null(e);
    snprintf(text, sizeof text, "%.*s", (int)e->errmsg.len, (const char *)e->errmsg.data);
    riak__rpb_error_resp__free_unpacked(e, NULL);
    return text;
}

/* Names collected from a whole listing. */
typedef struct {
    char **v;
    size_t n;
    size_t frames;
    size_t max_per_frame;
} names_t;

static void names_add(names_t *s, const ProtobufCBinaryData *d)
{
    s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n] = malloc(d->len + 1);
    memcpy(s->v[s->n], d->data, d->len);
    s->v[s->n][d->len] = '\0';
    s->n++;
}

static void names_free(names_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the keys of one RpbListKeysResp reply to out; returns how many, and whether it said
 * done. */
static size_t add_keys(const kv_reply_t *r, names_t *out, bool *done)
{
    cr_assert_eq(r->frame[4], CODE_LIST_KEYS_RESP);
    Riak__RpbListKeysResp *k = riak__rpb_list_keys_resp__unpack(NULL, r->len - 5, r->frame + 5);
    cr_assert_not_null(k);
    for (size_t i = 0; i < k->n_keys; i++)
        names_add(out, &k->keys[i]);
    size_t n = k->n_keys;
    *done = k->has_done && k->done;
    riak__rpb_list_keys_resp__free_unpacked(k, NULL);
    return n;
}

/* Reads a listing to its end, acking every more=1 reply. Returns NULL, or the error text. */
static const char *collect(uint64_t req_id, bool keys, names_t *out)
{
    for (int guard = 0; guard < 100000; guard++) {
        rt_msg_t *m = next_reply(10000);
        const kv_reply_t *r = reply_of(m, req_id);
        if (r->frame[4] == CODE_ERROR) {
            const char *t = error_text(r);
            cr_assert_eq(r->more, 0, "an error ends the stream");
            rt_msg_free(m);
            return t;
        }
        bool done;
        size_t n;
        if (keys) {
            n = add_keys(r, out, &done);
        } else {
            cr_assert_eq(r->frame[4], CODE_LIST_BUCKETS_RESP);
            Riak__RpbListBucketsResp *b = riak__rpb_list_buckets_resp__unpack(NULL, r->len - 5, r->frame + 5);
            cr_assert_not_null(b);
            for (size_t i = 0; i < b->n_buckets; i++)
                names_add(out, &b->buckets[i]);
            n = b->n_buckets;
            done = b->has_done && b->done;
            riak__rpb_list_buckets_resp__free_unpacked(b, NULL);
        }
        out->frames++;
        if (n > out->max_per_frame)
            out->max_per_frame = n;
        cr_assert_eq(done, r->more == 0, "done is set exactly on the last reply");
        rt_pid_t lister = m->from;
        uint32_t more = r->more;
        rt_msg_free(m);
        if (!more)
            return NULL;
        rt_send(lister, rt_msg_new(KV_MSG_STREAM_ACK, 0));
    }
    cr_assert_fail("listing never ended");
    return NULL;
}

/* Hands a copy of req to kv_list_keys with the test thread as the client. */
static int submit_list_keys(const Riak__RpbListKeysReq *req, uint64_t req_id)
{
    ProtobufCMessage *copy = node_test_pb_clone(&req->base);
    return kv_list_keys(&fx.kv, rt_self(), req_id, (Riak__RpbListKeysReq *)copy);
}

static int list_keys(const char *bucket, uint64_t req_id, uint32_t timeout)
{
    Riak__RpbListKeysReq req = RIAK__RPB_LIST_KEYS_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = bin(bucket);
    if (timeout) {
        req.has_timeout = 1;
        req.timeout = timeout;
    }
    return submit_list_keys(&req, req_id);
}

static int list_buckets(uint64_t req_id, bool stream)
{
    Riak__RpbListBucketsReq req = RIAK__RPB_LIST_BUCKETS_REQ__INIT;
    if (stream) {
        req.has_stream = 1;
        req.stream = 1;
    }
    ProtobufCMessage *copy = node_test_pb_clone(&req.base);
    return kv_list_buckets(&fx.kv, rt_self(), req_id, (Riak__RpbListBucketsReq *)copy);
}

/* Asserts that names holds exactly prefix00000..prefix<n-1>, each once. */
static void assert_keys(names_t *s, const char *prefix, int n)
{
    cr_assert_eq(s->n, (size_t)n, "got %zu keys, want %d", s->n, n);
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s%05d", prefix, i);
        cr_assert_str_eq(s->v[i], key);
    }
}

/* ---------------------------------------------------------------- tests */

TestSuite(node_list, .init = setup_ldb, .fini = teardown, .timeout = 60);

Test(node_list, keys_are_listed_once_without_tombstones_or_other_buckets)
{
    write_keys("b", "k", 150);
    write_keys("other", "o", 20);
    write_key("b", "deleted", true);
    write_key("b", "deleted-later", false);
    write_key("b", "deleted-later", true); /* a tombstone written over a live value */
    cr_assert_eq(list_keys("b", 1, 0), 0);
    names_t s = {0};
    cr_assert_null(collect(1, true, &s));
    assert_keys(&s, "k", 150);
    cr_assert_eq(s.frames, 1, "a small listing is one done frame");
    names_free(&s);

    cr_assert_eq(list_keys("empty", 2, 0), 0);
    cr_assert_null(collect(2, true, &s));
    cr_assert_eq(s.n, 0);
    names_free(&s);
}

Test(node_list, keys_stream_in_chunks_that_wait_for_acks)
{
    write_keys("big", "k", 2300);
    cr_assert_eq(list_keys("big", 9, 0), 0);
    /* the first chunk comes, then nothing until it is acked */
    rt_msg_t *first = next_reply(10000);
    const kv_reply_t *r = reply_of(first, 9);
    cr_assert_eq(r->more, 1);
    names_t s = {0};
    bool done;
    cr_assert_eq(add_keys(r, &s, &done), 1000);
    cr_assert(!done);
    rt_test_expect_silence(300);
    rt_send(first->from, rt_msg_new(KV_MSG_STREAM_ACK, 0));
    rt_msg_free(first);
    cr_assert_null(collect(9, true, &s));
    assert_keys(&s, "k", 2300);
    cr_assert_eq(s.frames, 2, "after the first: 1000, then the rest with done (%zu)", s.frames);
    cr_assert_eq(s.max_per_frame, 1000);
    names_free(&s);
    cr_assert_eq(atomic_load(&fx.kv.stats.ops[KV_OP_LIST]), 1);
}

Test(node_list, buckets_are_listed_once_and_only_when_live)
{
    write_keys("alpha", "k", 30);
    write_keys("beta", "k", 3);
    write_key("gamma", "only", false);
    write_key("ghost", "gone", true); /* only a tombstone */
    write_key("b", "k", false);       /* a bucket whose name is a prefix of another's */
    cr_assert_eq(list_buckets(3, false), 0);
    names_t s = {0};
    cr_assert_null(collect(3, false, &s));
    cr_assert_eq(s.frames, 1, "not streamed: one response");
    qsort(s.v, s.n, sizeof *s.v, cmp_str);
    cr_assert_eq(s.n, 4, "got %zu buckets", s.n);
    cr_assert_str_eq(s.v[0], "alpha");
    cr_assert_str_eq(s.v[1], "b");
    cr_assert_str_eq(s.v[2], "beta");
    cr_assert_str_eq(s.v[3], "gamma");
    names_free(&s);

    cr_assert_eq(list_buckets(4, true), 0);
    cr_assert_null(collect(4, false, &s));
    cr_assert_eq(s.n, 4);
    names_free(&s);
}

Test(node_list, many_buckets_stream_in_chunks)
{
    for (int i = 0; i < 1100; i++) {
        char b[32];
        snprintf(b, sizeof b, "bucket%05d", i);
        write_key(b, "k", false);
    }
    cr_assert_eq(list_buckets(5, true), 0);
    names_t s = {0};
    cr_assert_null(collect(5, false, &s));
    assert_keys(&s, "bucket", 1100);
    cr_assert_eq(s.frames, 2);
    names_free(&s);
}

Test(node_list, a_client_that_stops_acking_gets_a_timeout)
{
    write_keys("big", "k", 1200);
    cr_assert_eq(list_keys("big", 11, 300), 0);
    rt_msg_t *first = next_reply(10000);
    cr_assert_eq(reply_of(first, 11)->more, 1);
    rt_msg_free(first);
    /* no ack: the listing ends with "timeout" */
    rt_msg_t *m = next_reply(5000);
    const kv_reply_t *r = reply_of(m, 11);
    cr_assert_eq(r->frame[4], CODE_ERROR);
    cr_assert_str_eq(error_text(r), "timeout");
    cr_assert_eq(r->more, 0);
    rt_msg_free(m);
    rt_test_expect_silence(200);
    cr_assert_eq(atomic_load(&fx.kv.stats.errors[KV_OP_LIST]), 1);
}

Test(node_list, bad_requests_and_overload)
{
    Riak__RpbListKeysReq req = RIAK__RPB_LIST_KEYS_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = bin("b");
    req.has_type = 1;
    req.type = bin("maps");
    cr_assert_eq(submit_list_keys(&req, 20), 0);
    rt_msg_t *m = next_reply(5000);
    cr_assert_str_eq(error_text(reply_of(m, 20)), "Invalid bucket type: maps");
    rt_msg_free(m);

    Riak__RpbListKeysReq nob = RIAK__RPB_LIST_KEYS_REQ__INIT;
    cr_assert_eq(submit_list_keys(&nob, 21), 0);
    m = next_reply(5000);
    cr_assert(strstr(error_text(reply_of(m, 21)), "zero-length"));
    rt_msg_free(m);

    fx.cfg.max_concurrent_requests = 2;
    atomic_store(&fx.kv.inflight, 2);
    cr_assert_eq(list_keys("b", 22, 0), KV_EOVERLOAD);
    cr_assert_eq(list_buckets(23, false), KV_EOVERLOAD);
    cr_assert_eq(atomic_load(&fx.kv.stats.overloads), 2);
    atomic_store(&fx.kv.inflight, 0);
    atomic_store(&fx.kv.draining, true);
    cr_assert_eq(list_keys("b", 24, 0), KV_EDRAINING);
    atomic_store(&fx.kv.draining, false);
    rt_test_expect_silence(100);
}

Test(node_list, listing_survives_vnode_crashes)
{
    write_keys("c", "k", 2500);
    cr_assert_eq(list_keys("c", 30, 0), 0);
    rt_msg_t *first = next_reply(10000);
    names_t s = {0};
    bool done;
    add_keys(reply_of(first, 30), &s, &done);
    /* crash every vnode while the lister waits for the ack */
    for (uint32_t p = 0; p < Q; p++)
        node_test_crash_vnode(&fx, p);
    rt_send(first->from, rt_msg_new(KV_MSG_STREAM_ACK, 0));
    rt_msg_free(first);
    cr_assert_null(collect(30, true, &s));
    assert_keys(&s, "k", 2500);
    names_free(&s);
}

Test(node_list, other_requests_are_served_while_listing)
{
    write_keys("big", "k", 1200);
    cr_assert_eq(list_keys("big", 40, 0), 0);
    rt_msg_t *first = next_reply(10000);
    /* the lister is parked on its ack; the vnodes answer at once */
    for (uint32_t p = 0; p < Q; p++) {
        Cairn__Kv__VnodeGetReq g = CAIRN__KV__VNODE_GET_REQ__INIT;
        g.has_bucket = g.has_key = 1;
        g.bucket = bin("big");
        g.key = bin("k00001");
        rt_msg_t *reply = NULL;
        rt_msg_t *call = rt_msg_pb(KV_MSG_VNODE_GET, node_test_pb_clone(&g.base), NULL);
        cr_assert_eq(rt_call_sync(vnode_pid(&fx.kv, p), call, 1000, &reply, NULL), 0);
        rt_msg_free(reply);
    }
    rt_send(first->from, rt_msg_new(KV_MSG_STREAM_ACK, 0));
    rt_msg_free(first);
    names_t s = {0};
    cr_assert_null(collect(40, true, &s));
    cr_assert_eq(s.n, 200);
    names_free(&s);
}

/* ---------------------------------------------------------------- another node's partitions */

/* The suite's state with ghost joined and owning part of the ring: the claimant's plan, its
 * transfers marked done, applied by the claimant's tick. Caller owns it. */
static cstate_t *state_with_ghost(void)
{
    char err[256];
    const char *self = fx.cfg.nodename;
    cstate_t *joined = NULL;
    cr_assert_eq(cstate_join(kv_cstate(&fx.kv), GHOST, Q, &joined, err, sizeof err), 0,
                 "join: %s", err);
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(joined, NULL, 0, 0, self, &plan, err, sizeof err), 0, "plan: %s",
                 err);
    cstate_free(joined);
    cstate_t *s = plan.result;
    plan.result = NULL;
    cstate_plan_free(&plan);
    cr_assert_not_null(s);
    for (uint32_t p = 0; p < Q; p++) {
        if (cstate_next_owner(s, p) == CSTATE_NONE)
            continue;
        cstate_t *done = NULL;
        cr_assert_eq(cstate_transfer_done(s, p, self, &done, err, sizeof err), 0,
                     "transfer %u: %s", p, err);
        cstate_free(s);
        s = done;
    }
    cstate_t *ticked = NULL;
    cr_assert_eq(cstate_claimant_tick(s, self, &ticked), 0);
    cr_assert_not_null(ticked, "the claimant's tick applied nothing");
    cstate_free(s);
    return ticked;
}

static bool ghost_owns(uint32_t p)
{
    const cstate_t *cs = kv_cstate(&fx.kv);
    return ring_owner(cstate_ring(cs), p) == cstate_member_index(cs, GHOST);
}

/* Publishes the state in which ghost owns part of the ring (asserted: some partitions but
 * not all). serve: start ghost's list fold service; ghost_agrees: the service sees that
 * state too (else the old one, in which ghost owns nothing). */
static void move_to_ghost(bool serve, bool ghost_agrees)
{
    cstate_t *before = cstate_dup(kv_cstate(&fx.kv));
    cr_assert_not_null(before);
    cstate_t *s = state_with_ghost();
    cstate_t *ghost_view = ghost_agrees ? cstate_dup(s) : before;
    cr_assert_not_null(ghost_view);
    if (ghost_agrees)
        cstate_free(before);
    kv_publish(&fx.kv, s);
    uint32_t owned = 0;
    for (uint32_t p = 0; p < Q; p++)
        owned += ghost_owns(p);
    cr_assert(owned > 0 && owned < Q, "ghost owns %u of %u partitions", owned, Q);
    ghost_cfg = fx.cfg;
    snprintf(ghost_cfg.nodename, sizeof ghost_cfg.nodename, "%s", GHOST);
    ghost.cfg = &ghost_cfg;
    ghost.node_id = 43;
    ghost.engine = fx.kv.engine;
    ghost.vnodes = fx.kv.vnodes; /* the same backends: what ghost "stores" */
    ghost.states = kv_states_new(ghost_view);
    if (serve)
        cr_assert_eq(rt_spawn(&list_fold_service_behaviour, &ghost, NULL), 0);
}

/* Calls the list fold service with m (taken); returns its decoded answer (caller frees). */
static Cairn__Kv__ListFoldResp *fold_call_raw(rt_msg_t *m)
{
    rt_msg_t *reply = NULL;
    int reason = 0;
    int rc = rt_call_name_sync(NULL, LIST_FOLD_SERVICE_NAME, m, 5000, &reply, &reason);
    cr_assert_eq(rc, 0, "fold call: %s (%s)", rt_strerror(rc), rt_reason_str(reason));
    cr_assert_eq(reply->type, LIST_MSG_FOLD_RESP);
    Cairn__Kv__ListFoldResp *r = cairn__kv__list_fold_resp__unpack(NULL, reply->size, reply->data);
    cr_assert_not_null(r, "the answer does not decode");
    cr_assert(r->has_status);
    rt_msg_free(reply);
    return r;
}

static Cairn__Kv__ListFoldResp *fold_call(const Cairn__Kv__ListFoldReq *req)
{
    size_t len = cairn__kv__list_fold_req__get_packed_size(req);
    rt_msg_t *m = rt_msg_new(LIST_MSG_FOLD_REQ, len);
    cairn__kv__list_fold_req__pack(req, m->data);
    return fold_call_raw(m);
}

static Cairn__Kv__ListFoldReq keys_req(uint32_t p, const char *bucket)
{
    Cairn__Kv__ListFoldReq req = CAIRN__KV__LIST_FOLD_REQ__INIT;
    req.has_partition = req.has_keys = req.has_type = req.has_bucket = 1;
    req.partition = p;
    req.keys = 1;
    req.type = bin("default");
    req.bucket = bin(bucket);
    return req;
}

Test(node_list, the_fold_service_folds_its_own_partitions_and_refuses_the_rest)
{
    write_keys("b", "k", 50);
    write_key("other", "o", false);
    move_to_ghost(true, true);
    /* every partition ghost owns, chunk after chunk: exactly the keys whose first partition
     * is ghost's */
    names_t got = {0};
    uint32_t mine = Q;
    for (uint32_t p = 0; p < Q; p++) {
        if (!ghost_owns(p)) {
            mine = p;
            continue;
        }
        Cairn__Kv__ListResume from = CAIRN__KV__LIST_RESUME__INIT;
        bool resume = false;
        for (int guard = 0;; guard++) {
            cr_assert_lt(guard, 100, "partition %u never ends", p);
            Cairn__Kv__ListFoldReq req = keys_req(p, "b");
            req.from = resume ? &from : NULL;
            Cairn__Kv__ListFoldResp *r = fold_call(&req);
            cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_OK, "%s",
                         r->errmsg ? r->errmsg : "?");
            for (size_t i = 0; i < r->n_names; i++)
                names_add(&got, &r->names[i]);
            bool more = r->next != NULL;
            if (more) {
                free(from.key.data);
                from.has_type = from.has_bucket = from.has_key = 1;
                from.type = bin("default");
                from.bucket = bin("b");
                cr_assert(r->next->has_key && !r->next->bucket_end);
                from.key.len = r->next->key.len;
                from.key.data = malloc(from.key.len);
                memcpy(from.key.data, r->next->key.data, from.key.len);
                resume = true;
            }
            cairn__kv__list_fold_resp__free_unpacked(r, NULL);
            if (!more)
                break;
        }
        free(from.key.data);
    }
    size_t want = 0;
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        uint64_t h = ring_hash_key("default", 7, "b", 1, key, strlen(key));
        if (!ghost_owns(ring_first_partition(kv_ring(&fx.kv), h)))
            continue;
        want++;
        size_t seen = 0;
        for (size_t j = 0; j < got.n; j++)
            seen += strcmp(got.v[j], key) == 0;
        cr_assert_eq(seen, 1, "%s reported %zu times", key, seen);
    }
    cr_assert_eq(got.n, want, "got %zu keys, want %zu", got.n, want);
    cr_assert_gt(want, 0);
    names_free(&got);

    /* a partition ghost does not own */
    cr_assert_lt(mine, Q);
    Cairn__Kv__ListFoldReq req = keys_req(mine, "b");
    Cairn__Kv__ListFoldResp *r = fold_call(&req);
    cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_NOT_OWNER);
    cr_assert_eq(r->n_names, 0);
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
    /* requests that make no sense */
    req = keys_req(Q, "b");
    r = fold_call(&req);
    cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED);
    cr_assert(strstr(r->errmsg, "partition"), "%s", r->errmsg);
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
    uint32_t theirs = 0;
    while (!ghost_owns(theirs))
        theirs++;
    req = keys_req(theirs, "b");
    req.has_bucket = 0;
    r = fold_call(&req);
    cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED);
    cr_assert(strstr(r->errmsg, "bucket"), "%s", r->errmsg);
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
    Cairn__Kv__ListResume bad = CAIRN__KV__LIST_RESUME__INIT; /* no key, not a bucket's end */
    bad.has_type = bad.has_bucket = 1;
    bad.type = bin("default");
    bad.bucket = bin("b");
    req = keys_req(theirs, "b");
    req.from = &bad;
    r = fold_call(&req);
    cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED);
    cr_assert(strstr(r->errmsg, "resume"), "%s", r->errmsg);
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
    rt_msg_t *garbage = rt_msg_new(LIST_MSG_FOLD_REQ, 3);
    memcpy(garbage->data, "\xff\xff\xff", 3);
    r = fold_call_raw(garbage);
    cr_assert_eq(r->status, CAIRN__KV__LIST_FOLD_STATUS__LIST_FOLD_FAILED);
    cr_assert(strstr(r->errmsg, "malformed"), "%s", r->errmsg);
    cairn__kv__list_fold_resp__free_unpacked(r, NULL);
}

Test(node_list, partitions_of_another_node_are_folded_by_that_node)
{
    write_keys("b", "k", 2300);
    write_keys("alpha", "a", 30);
    write_key("beta", "x", false);
    write_key("ghostly", "gone", true); /* only a tombstone */
    move_to_ghost(true, true);
    cr_assert_eq(list_keys("b", 50, 0), 0);
    names_t s = {0};
    cr_assert_null(collect(50, true, &s));
    assert_keys(&s, "k", 2300);
    cr_assert_eq(s.max_per_frame, 1000, "streamed in chunks of 1000");
    names_free(&s);
    for (int stream = 0; stream < 2; stream++) {
        cr_assert_eq(list_buckets(51 + stream, stream), 0);
        cr_assert_null(collect(51 + stream, false, &s));
        qsort(s.v, s.n, sizeof *s.v, cmp_str);
        cr_assert_eq(s.n, 3, "got %zu buckets", s.n);
        cr_assert_str_eq(s.v[0], "alpha");
        cr_assert_str_eq(s.v[1], "b");
        cr_assert_str_eq(s.v[2], "beta");
        names_free(&s);
    }
}

Test(node_list, an_unreachable_owner_ends_the_listing_with_an_error)
{
    write_keys("b", "k", 20);
    move_to_ghost(false, true); /* ghost's service does not answer: noproc */
    cr_assert_eq(list_keys("b", 60, 0), 0);
    names_t s = {0};
    const char *err = collect(60, true, &s);
    cr_assert_not_null(err, "a listing that misses partitions must not succeed");
    cr_assert(strstr(err, "cannot list partition") && strstr(err, GHOST) &&
                  strstr(err, "unreachable"), "error: %s", err);
    names_free(&s);
    cr_assert_eq(list_buckets(61, false), 0);
    err = collect(61, false, &s);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "unreachable"), "error: %s", err);
    cr_assert_eq(s.n, 0, "no partial answer");
    names_free(&s);
    cr_assert_eq(atomic_load(&fx.kv.stats.errors[KV_OP_LIST]), 2);
}

Test(node_list, remote_folds_are_retried_while_vnodes_restart)
{
    write_keys("c", "k", 2500);
    move_to_ghost(true, true);
    cr_assert_eq(list_keys("c", 70, 0), 0);
    rt_msg_t *first = next_reply(10000);
    names_t s = {0};
    bool done;
    add_keys(reply_of(first, 70), &s, &done);
    for (uint32_t p = 0; p < Q; p++)
        node_test_crash_vnode(&fx, p);
    rt_send(first->from, rt_msg_new(KV_MSG_STREAM_ACK, 0));
    rt_msg_free(first);
    cr_assert_null(collect(70, true, &s));
    assert_keys(&s, "k", 2500);
    names_free(&s);
}

Test(node_list, an_owner_that_keeps_disowning_a_partition_ends_the_listing)
{
    write_keys("b", "k", 5);
    move_to_ghost(true, false); /* ghost has not heard it owns anything */
    cr_assert_eq(list_keys("b", 80, 0), 0);
    names_t s = {0};
    const char *err = collect(80, true, &s);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "does not own it") && strstr(err, GHOST), "error: %s", err);
    names_free(&s);
}

/* ---------------------------------------------------------------- memory backend */

TestSuite(node_list_mem, .init = setup_mem, .fini = teardown, .timeout = 60);

Test(node_list_mem, keys_and_buckets)
{
    write_keys("b", "k", 1200);
    write_key("b", "k00003", true); /* now a tombstone */
    write_key("t", "only-tombstone", true);
    cr_assert_eq(list_keys("b", 1, 0), 0);
    names_t s = {0};
    cr_assert_null(collect(1, true, &s));
    cr_assert_eq(s.n, 1199);
    for (size_t i = 0; i < s.n; i++)
        cr_assert_str_neq(s.v[i], "k00003");
    names_free(&s);
    cr_assert_eq(list_buckets(2, true), 0);
    cr_assert_null(collect(2, false, &s));
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.v[0], "b");
    names_free(&s);
}
