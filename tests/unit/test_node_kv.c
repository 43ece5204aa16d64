/*
 * test_node_kv.c — the get/put/delete coordinators end to end (node/get_fsm.c, put_fsm.c,
 * del_fsm.c) through kv_get/kv_put/kv_del, on the real runtime with real vnodes (LevelDB in a
 * temporary directory, or the memory backend), a single-node ring and the bucket store. The
 * test thread is the "connection": it receives the KV_MSG_REPLY frames and decodes them as a
 * client would. Covers round trips, replica placement, siblings, quorum errors, notfound_ok,
 * read repair, deletes and tombstone reaping per delete_mode, conditional puts, return_body /
 * return_head, server-generated keys, limits, overload, timeouts, and vnode crashes while
 * requests flow (every request gets exactly one reply).
 */
#include "node_test.h"

#define Q 8
#define NODE_ID 0xC0FFEE0087654321ull
#define WAIT_MS 20000

/* ---------------------------------------------------------------- fixture */

static node_test_t fx;
static uint64_t next_id; /* of the requests the test thread submits */

static void setup_kind(store_engine_kind_t kind)
{
    node_test_setup(&fx, (node_test_opts_t){.what = "kv", .q = Q, .vnodes = true, .engine = kind,
                                            .node_id = NODE_ID, .buckets = true});
    fx.cfg.request_timeout_ms = 10000;
    next_id = 1;
}

static void setup_ldb(void) { setup_kind(STORE_ENGINE_LEVELDB); }
static void setup_ldb_nocache(void)
{
    node_test_setup(&fx, (node_test_opts_t){.what = "kv", .q = Q, .vnodes = true,
                                            .engine = STORE_ENGINE_LEVELDB, .node_id = NODE_ID,
                                            .buckets = true, .no_object_cache = true});
    fx.cfg.request_timeout_ms = 10000;
    next_id = 1;
}
static void setup_mem(void) { setup_kind(STORE_ENGINE_MEMORY); }

static void teardown(void)
{
    node_test_teardown(&fx); /* also ends coordinators and reapers still running */
    cr_assert_eq(atomic_load(&fx.kv.inflight), 0, "every coordinator released its slot");
}

TestSuite(node_kv, .init = setup_ldb, .fini = teardown, .timeout = 60);
TestSuite(node_kv_mem, .init = setup_mem, .fini = teardown, .timeout = 60);
TestSuite(node_kv_nocache, .init = setup_ldb_nocache, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- requests and replies */

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static bool bin_is(ProtobufCBinaryData b, const char *s)
{
    return b.len == strlen(s) && (b.len == 0 || memcmp(b.data, s, b.len) == 0);
}

typedef struct {
    uint8_t code;            /* 0 error, 10 get, 12 put, 14 del */
    char err[512];
    Riak__RpbGetResp *get;
    Riak__RpbPutResp *put;
} res_t;

static void res_free(res_t *r)
{
    if (r->get)
        riak__rpb_get_resp__free_unpacked(r->get, NULL);
    if (r->put)
        riak__rpb_put_resp__free_unpacked(r->put, NULL);
    r->get = NULL;
    r->put = NULL;
}

/* Hands a copy of req to the entry point; returns the request id. */
static uint64_t submit(kv_op_t op, const ProtobufCMessage *req)
{
    uint64_t id = next_id++;
    ProtobufCMessage *c = kvobj_pb_clone(req);
    cr_assert_not_null(c);
    int rc = op == KV_OP_GET   ? kv_get(&fx.kv, rt_self(), id, (Riak__RpbGetReq *)c)
             : op == KV_OP_PUT ? kv_put(&fx.kv, rt_self(), id, (Riak__RpbPutReq *)c)
                               : kv_del(&fx.kv, rt_self(), id, (Riak__RpbDelReq *)c);
    cr_assert_eq(rc, 0, "entry point refused: %d", rc);
    return id;
}

static bool match_reply(const rt_msg_t *m, void *ctx)
{
    return m->type == KV_MSG_REPLY && m->size >= sizeof(kv_reply_t) &&
           ((const kv_reply_t *)(const void *)m->data)->req_id == *(const uint64_t *)ctx;
}

static res_t decode(const rt_msg_t *m)
{
    res_t r;
    memset(&r, 0, sizeof r);
    const uint8_t *body;
    size_t len;
    cr_assert(kvobj_reply_frame(m, &r.code, &body, &len), "malformed reply frame");
    cr_assert_eq(((const kv_reply_t *)(const void *)m->data)->more, 0);
    if (r.code == 0) {
        Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
        cr_assert_not_null(e);
        cr_assert(e->has_errmsg && e->has_errcode);
        snprintf(r.err, sizeof r.err, "%.*s", (int)e->errmsg.len, (const char *)e->errmsg.data);
        riak__rpb_error_resp__free_unpacked(e, NULL);
    } else if (r.code == 10) {
        r.get = riak__rpb_get_resp__unpack(NULL, len, body);
        cr_assert_not_null(r.get);
    } else if (r.code == 12) {
        r.put = riak__rpb_put_resp__unpack(NULL, len, body);
        cr_assert_not_null(r.put);
    } else {
        cr_assert_eq(r.code, 14, "unexpected reply code %u", r.code);
        cr_assert_eq(len, 0);
    }
    return r;
}

/* Waits for the one reply of request id (and checks that no second one follows soon). */
static res_t wait_reply(uint64_t id)
{
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive_match(WAIT_MS, match_reply, &id, &m), 0, "no reply to request %llu",
                 (unsigned long long)id);
    res_t r = decode(m);
    rt_msg_free(m);
    return r;
}

static res_t run(kv_op_t op, const ProtobufCMessage *req)
{
    return wait_reply(submit(op, req));
}

typedef struct {
    Riak__RpbPutReq r;
    Riak__RpbContent c;
} put_req_t;

static void put_init(put_req_t *p, const char *bucket, const char *key, const char *value)
{
    Riak__RpbPutReq r = RIAK__RPB_PUT_REQ__INIT;
    Riak__RpbContent c = RIAK__RPB_CONTENT__INIT;
    p->r = r;
    p->c = c;
    p->r.has_bucket = 1;
    p->r.bucket = bin(bucket);
    if (key) {
        p->r.has_key = 1;
        p->r.key = bin(key);
    }
    p->c.has_value = 1;
    p->c.value = bin(value);
    p->c.has_content_type = 1;
    p->c.content_type = bin("text/plain");
    p->r.content = &p->c;
}

static Riak__RpbGetReq get_req(const char *bucket, const char *key)
{
    Riak__RpbGetReq r = RIAK__RPB_GET_REQ__INIT;
    r.has_bucket = 1;
    r.bucket = bin(bucket);
    r.has_key = 1;
    r.key = bin(key);
    return r;
}

static Riak__RpbDelReq del_req(const char *bucket, const char *key)
{
    Riak__RpbDelReq r = RIAK__RPB_DEL_REQ__INIT;
    r.has_bucket = 1;
    r.bucket = bin(bucket);
    r.has_key = 1;
    r.key = bin(key);
    return r;
}

/* Runs a put that must succeed. */
static void run_put_ok(const put_req_t *p)
{
    res_t r = run(KV_OP_PUT, &p->r.base);
    cr_assert_eq(r.code, 12, "put %.*s/%.*s failed: %s", (int)p->r.bucket.len,
                 (const char *)p->r.bucket.data, (int)p->r.key.len, (const char *)p->r.key.data,
                 r.err);
    res_free(&r);
}

static void put_ok(const char *bucket, const char *key, const char *value)
{
    put_req_t p;
    put_init(&p, bucket, key, value);
    run_put_ok(&p);
}

/* A put with request n_val=1: only the first replica of the preference list gets it. */
static void put_one_replica(const char *bucket, const char *key, const char *value)
{
    put_req_t p;
    put_init(&p, bucket, key, value);
    p.r.has_n_val = 1;
    p.r.n_val = 1;
    run_put_ok(&p);
}

static void del_ok(const char *bucket, const char *key)
{
    Riak__RpbDelReq d = del_req(bucket, key);
    res_t r = run(KV_OP_DEL, &d.base);
    cr_assert_eq(r.code, 14, "delete %s/%s failed: %s", bucket, key, r.err);
}

/* A get that must succeed; the caller frees the result. */
static res_t get_ok(const char *bucket, const char *key)
{
    Riak__RpbGetReq g = get_req(bucket, key);
    res_t r = run(KV_OP_GET, &g.base);
    cr_assert_eq(r.code, 10, "get %s/%s failed: %s", bucket, key, r.err);
    return r;
}

/* Asserts that a get of the key finds exactly one value, `value`. */
static void expect_single(const char *bucket, const char *key, const char *value)
{
    res_t r = get_ok(bucket, key);
    cr_assert_eq(r.get->n_content, 1, "%s/%s: %zu values", bucket, key, r.get->n_content);
    cr_assert(bin_is(r.get->content[0]->value, value), "%s/%s: not \"%s\"", bucket, key, value);
    res_free(&r);
}

/* A get with notfound_ok = false (notfound replies do not count towards R), with R = r
 * (0: the bucket's) and basic_quorum when asked; the caller frees the result. */
static res_t get_notfound_not_ok(const char *bucket, const char *key, uint32_t r,
                                 bool basic_quorum)
{
    Riak__RpbGetReq g = get_req(bucket, key);
    if (r) {
        g.has_r = 1;
        g.r = r;
    }
    g.has_notfound_ok = 1;
    g.notfound_ok = 0;
    if (basic_quorum) {
        g.has_basic_quorum = 1;
        g.basic_quorum = 1;
    }
    return run(KV_OP_GET, &g.base);
}

static bool has_content(const Riak__RpbGetResp *g, const char *value)
{
    for (size_t i = 0; i < g->n_content; i++)
        if (bin_is(g->content[i]->value, value))
            return true;
    return false;
}

static void set_bucket(const char *bucket, uint32_t n_val, int allow_mult)
{
    Riak__RpbBucketProps props = RIAK__RPB_BUCKET_PROPS__INIT;
    if (n_val) {
        props.has_n_val = 1;
        props.n_val = n_val;
    }
    if (allow_mult >= 0) {
        props.has_allow_mult = 1;
        props.allow_mult = allow_mult;
    }
    Riak__RpbSetBucketReq req = RIAK__RPB_SET_BUCKET_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = bin(bucket);
    req.props = &props;
    rt_msg_t *m = kv_bucket_set(&fx.kv, 1, &req);
    uint8_t code;
    const uint8_t *body;
    size_t len;
    cr_assert(kvobj_reply_frame(m, &code, &body, &len));
    cr_assert_eq(code, 22, "set bucket props refused");
    rt_msg_free(m);
}

/* ---------------------------------------------------------------- direct vnode access */

static void preflist(const char *bucket, const char *key, uint32_t parts[3])
{
    ring_pref_t prefs[3];
    uint64_t h = ring_hash_key("default", 7, bucket, strlen(bucket), key, strlen(key));
    cr_assert_eq(ring_preflist(kv_ring(&fx.kv), h, 3, prefs), 3);
    for (int i = 0; i < 3; i++)
        parts[i] = prefs[i].partition;
}

typedef enum { AT_NOTHING, AT_VALUE, AT_TOMBSTONE, AT_ERROR } at_t;

/* What partition p's vnode holds for the key, read directly. */
static at_t held_at(uint32_t p, const char *bucket, const char *key)
{
    rt_pid_t pid = vnode_pid(&fx.kv, p);
    if (rt_pid_is_nil(pid))
        return AT_ERROR;
    rt_msg_t *reply = NULL;
    int rc = rt_call_sync(pid, kvobj_vnode_get_msg(p, STORE_SLICE("default"),
                                                   STORE_SLICE_STR(bucket), STORE_SLICE_STR(key)),
                          5000, &reply, NULL);
    if (rc != 0)
        return AT_ERROR;
    const Cairn__Kv__VnodeGetResp *g = (const Cairn__Kv__VnodeGetResp *)rt_msg_pb_get(reply);
    at_t at = AT_ERROR;
    if (g && g->status == CAIRN__KV__STATUS__NOTFOUND) {
        at = AT_NOTHING;
    } else if (g && g->status == CAIRN__KV__STATUS__OK && g->has_object) {
        store_obj_t *o = NULL;
        if (store_obj_decode(g->object.data, g->object.len, &o) == 0)
            at = store_obj_is_tombstone(o) ? AT_TOMBSTONE : AT_VALUE;
        store_obj_free(o);
    }
    rt_msg_free(reply);
    return at;
}

/* Polls until every one of the key's three replicas holds `want` (bounded). */
static bool replicas_become(const char *bucket, const char *key, at_t want, uint32_t ms)
{
    uint32_t parts[3];
    preflist(bucket, key, parts);
    for (uint32_t waited = 0; waited <= ms; waited += 20) {
        int n = 0;
        for (int i = 0; i < 3; i++)
            n += held_at(parts[i], bucket, key) == want;
        if (n == 3)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

/* ---------------------------------------------------------------- basics */

Test(node_kv, put_then_get_round_trip)
{
    put_ok("b", "k", "hello");
    res_t r = get_ok("b", "k");
    cr_assert_eq(r.get->n_content, 1);
    cr_assert(bin_is(r.get->content[0]->value, "hello"));
    cr_assert(bin_is(r.get->content[0]->content_type, "text/plain"));
    cr_assert(r.get->content[0]->has_last_mod, "the coordinator stamps last_mod");
    cr_assert(r.get->has_vclock && r.get->vclock.len > 0);
    res_free(&r);
    cr_assert_geq(atomic_load(&fx.kv.stats.ops[KV_OP_PUT]), 1);
    cr_assert_geq(atomic_load(&fx.kv.stats.ops[KV_OP_GET]), 1);
    cr_assert_eq(atomic_load(&fx.kv.stats.errors[KV_OP_GET]), 0);
}

Test(node_kv, missing_key_is_an_empty_get_resp)
{
    res_t r = get_ok("b", "nothing-here");
    cr_assert_eq(r.get->n_content, 0);
    cr_assert_not(r.get->has_vclock);
    res_free(&r);
}

Test(node_kv, n3_write_lands_on_three_vnodes)
{
    put_ok("b", "placed", "v");
    uint32_t parts[3];
    preflist("b", "placed", parts);
    cr_assert(replicas_become("b", "placed", AT_VALUE, 5000));
    int elsewhere = 0;
    for (uint32_t p = 0; p < Q; p++)
        if (p != parts[0] && p != parts[1] && p != parts[2])
            elsewhere += held_at(p, "b", "placed") != AT_NOTHING;
    cr_assert_eq(elsewhere, 0, "only the preference list holds the key");
}

Test(node_kv, bucket_n_val_and_request_n_val)
{
    set_bucket("one", 1, -1);
    put_ok("one", "k", "v");
    uint32_t parts[3];
    preflist("one", "k", parts);
    cr_assert_eq(held_at(parts[0], "one", "k"), AT_VALUE);
    cr_assert_eq(held_at(parts[1], "one", "k"), AT_NOTHING);
    cr_assert_eq(held_at(parts[2], "one", "k"), AT_NOTHING);

    put_req_t p;
    put_init(&p, "b", "k2", "v");
    p.r.has_n_val = 1;
    p.r.n_val = 5; /* above the bucket's 3 */
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "{n_val_violation,5}");
}

Test(node_kv, allow_mult_false_returns_one_value)
{
    put_ok("plain", "k", "first");
    usleep(2000);
    put_ok("plain", "k", "second"); /* no context: resolved by last-modified */
    expect_single("plain", "k", "second");
}

Test(node_kv, siblings_then_resolution_with_context)
{
    set_bucket("mult", 0, 1);
    put_ok("mult", "k", "alice");
    put_ok("mult", "k", "bob"); /* no context: concurrent */
    res_t r = get_ok("mult", "k");
    cr_assert_eq(r.get->n_content, 2, "two siblings");
    cr_assert(has_content(r.get, "alice") && has_content(r.get, "bob"));

    put_req_t p;
    put_init(&p, "mult", "k", "resolved");
    p.r.has_vclock = 1;
    p.r.vclock = r.get->vclock;
    p.r.has_return_body = 1;
    p.r.return_body = 1;
    res_t w = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(w.code, 12, "%s", w.err);
    cr_assert_eq(w.put->n_content, 1);
    cr_assert(bin_is(w.put->content[0]->value, "resolved"));
    res_free(&w);
    res_free(&r);
    expect_single("mult", "k", "resolved");
}

/* ---------------------------------------------------------------- quorum options */

Test(node_kv, quorum_validation_errors)
{
    Riak__RpbGetReq g = get_req("b", "k");
    g.has_r = 1;
    g.r = 4;
    res_t r = run(KV_OP_GET, &g.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");
    g = get_req("b", "k");
    g.has_pr = 1;
    g.pr = 4;
    r = run(KV_OP_GET, &g.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");

    put_req_t p;
    put_init(&p, "b", "k", "v");
    p.r.has_w = 1;
    p.r.w = 4;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");
    put_init(&p, "b", "k", "v");
    p.r.has_pw = 1;
    p.r.pw = 4;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");
    put_init(&p, "b", "k", "v");
    p.r.has_dw = 1;
    p.r.dw = 7;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");

    Riak__RpbDelReq d = del_req("b", "k");
    d.has_rw = 1;
    d.rw = 9;
    r = run(KV_OP_DEL, &d.base);
    cr_assert_str_eq(r.err, "{n_val_violation,3}");
    cr_assert_geq(atomic_load(&fx.kv.stats.errors[KV_OP_PUT]), 3);
}

Test(node_kv, symbolic_quorums_work)
{
    put_req_t p;
    put_init(&p, "b", "sym", "v");
    p.r.has_w = 1;
    p.r.w = NODE_QUORUM_ALL;
    p.r.has_pw = 1;
    p.r.pw = NODE_QUORUM_QUORUM;
    p.r.has_dw = 1;
    p.r.dw = NODE_QUORUM_ONE;
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    res_free(&r);
    cr_assert(replicas_become("b", "sym", AT_VALUE, 0), "w=all: every replica written");
    Riak__RpbGetReq g = get_req("b", "sym");
    g.has_r = 1;
    g.r = NODE_QUORUM_ALL;
    g.has_pr = 1;
    g.pr = NODE_QUORUM_DEFAULT;
    r = run(KV_OP_GET, &g.base);
    cr_assert_eq(r.code, 10, "%s", r.err);
    cr_assert_eq(r.get->n_content, 1);
    res_free(&r);
}

Test(node_kv, notfound_ok_false_finds_a_single_replica)
{
    put_one_replica("b", "lonely", "here");
    put_one_replica("b", "lonely2", "here");

    /* R=1, notfound_ok=false: notfounds do not count, the value always wins */
    res_t r = get_notfound_not_ok("b", "lonely", 1, false);
    cr_assert_eq(r.code, 10, "%s", r.err);
    cr_assert_eq(r.get->n_content, 1);
    cr_assert(bin_is(r.get->content[0]->value, "here"));
    res_free(&r);

    /* R=2, notfound_ok=false: one value and two notfounds cannot make R */
    r = get_notfound_not_ok("b", "lonely2", 0, false);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "{r_val_unsatisfied,2,1}");
}

Test(node_kv, notfound_ok_false_on_a_missing_key_is_notfound)
{
    res_t r = get_notfound_not_ok("b", "never", 0, true);
    cr_assert_eq(r.code, 10, "%s", r.err);
    cr_assert_eq(r.get->n_content, 0);
    res_free(&r);
}

Test(node_kv, basic_quorum_answers_with_one_of_the_legal_results)
{
    put_one_replica("b", "bq", "here");
    /* R=1, notfound_ok=false, basic_quorum: two fast notfounds may end it (notfound), or the
     * value arrives in time; both are Riak's answer, never an error */
    res_t r = get_notfound_not_ok("b", "bq", 1, true);
    cr_assert_eq(r.code, 10, "%s", r.err);
    cr_assert(r.get->n_content == 0 || has_content(r.get, "here"));
    res_free(&r);
}

/* ---------------------------------------------------------------- read repair */

Test(node_kv, read_repair_fills_missing_replicas)
{
    put_one_replica("b", "rr", "heal me");
    res_t r = get_notfound_not_ok("b", "rr", 1, false);
    cr_assert_eq(r.code, 10);
    cr_assert(has_content(r.get, "heal me"));
    res_free(&r);
    cr_assert(replicas_become("b", "rr", AT_VALUE, 5000), "read repair reached every replica");
    cr_assert_geq(atomic_load(&fx.kv.stats.read_repairs), 2);
}

Test(node_kv_mem, read_repair_after_a_vnode_lost_its_data)
{
    put_ok("b", "lost", "precious");
    cr_assert(replicas_become("b", "lost", AT_VALUE, 5000));
    uint32_t parts[3];
    preflist("b", "lost", parts);
    rt_pid_t old = node_test_crash_vnode(&fx, parts[1]); /* memory: nothing survives it */
    node_test_wait_restarted(&fx, parts[1], old);
    cr_assert_eq(held_at(parts[1], "b", "lost"), AT_NOTHING);
    res_t r = get_ok("b", "lost");
    cr_assert(has_content(r.get, "precious"));
    res_free(&r);
    cr_assert(replicas_become("b", "lost", AT_VALUE, 5000), "the emptied replica was repaired");
    cr_assert_geq(atomic_load(&fx.kv.stats.read_repairs), 1);
}

/* ---------------------------------------------------------------- the object cache */

/* Every read and write goes through the vnodes' object cache (storage/cache.h) here; what a
 * client reads must always be the last write, the delete, or what a restarted vnode reads
 * back from LevelDB. */
Test(node_kv, object_cache_answers_and_stays_coherent)
{
    const store_cache_budget_t *oc = &fx.kv.obj_cache;
    cr_assert_gt(oc->limit, 0, "the LevelDB fixture runs with the cache");
    put_ok("b", "c", "one");
    uint64_t hits0 = atomic_load(&oc->hits);
    expect_single("b", "c", "one");
    /* The get answers at R=2; the third replica reads once its own write (grouped at the end
     * of a scheduler pass) is done, possibly just after the answer. */
    for (int i = 0; i < 100 && atomic_load(&oc->hits) < hits0 + 3; i++)
        usleep(10 * 1000);
    cr_assert_geq(atomic_load(&oc->hits), hits0 + 3, "all three replicas read from the cache");
    cr_assert_geq(atomic_load(&oc->entries), 3);

    for (int i = 0; i < 20; i++) { /* rewrites: each one read back at once */
        char v[64];
        snprintf(v, sizeof v, "version-%d%s", i, i % 2 ? "-and-some-longer-text" : "");
        res_t r = get_ok("b", "c");
        put_req_t p;
        put_init(&p, "b", "c", v);
        p.r.has_vclock = 1;
        p.r.vclock = r.get->vclock;
        run_put_ok(&p);
        res_free(&r);
        expect_single("b", "c", v);
    }

    del_ok("b", "c");
    res_t r = get_ok("b", "c");
    cr_assert_eq(r.get->n_content, 0, "a delete is seen at once");
    res_free(&r);

    put_ok("b", "d", "durable");
    uint32_t parts[3];
    preflist("b", "d", parts);
    uint64_t before = atomic_load(&oc->used);
    for (int i = 0; i < 3; i++) { /* a restarted vnode starts empty and reads LevelDB */
        rt_pid_t old = node_test_crash_vnode(&fx, parts[i]);
        node_test_wait_restarted(&fx, parts[i], old);
    }
    cr_assert_lt(atomic_load(&oc->used), before, "the crashed vnodes' caches were freed");
    uint64_t misses0 = atomic_load(&oc->misses);
    expect_single("b", "d", "durable");
    cr_assert_geq(atomic_load(&oc->misses), misses0 + 3);
    expect_single("b", "d", "durable");
}

Test(node_kv_nocache, object_cache_off_serves_from_leveldb)
{
    put_ok("b", "k", "v1");
    expect_single("b", "k", "v1");
    del_ok("b", "k");
    res_t r = get_ok("b", "k");
    cr_assert_eq(r.get->n_content, 0);
    res_free(&r);
    const store_cache_budget_t *oc = &fx.kv.obj_cache;
    cr_assert_eq(atomic_load(&oc->hits) + atomic_load(&oc->misses), 0, "nothing went to a cache");
    cr_assert_eq(atomic_load(&oc->entries), 0);
}

/* ---------------------------------------------------------------- delete */

Test(node_kv, delete_then_get_is_notfound)
{
    put_ok("b", "gone", "v");
    del_ok("b", "gone");
    res_t r = get_ok("b", "gone");
    cr_assert_eq(r.get->n_content, 0);
    cr_assert_not(r.get->has_vclock);
    res_free(&r);
    cr_assert_geq(atomic_load(&fx.kv.stats.ops[KV_OP_DEL]), 1);
}

Test(node_kv, deleting_a_missing_key_succeeds)
{
    del_ok("b", "never-was");
}

Test(node_kv, delete_with_vclock_and_deletedvclock)
{
    fx.cfg.delete_mode = DELETE_MODE_KEEP;
    put_ok("b", "dv", "v");
    res_t g = get_ok("b", "dv");
    Riak__RpbDelReq d = del_req("b", "dv");
    d.has_vclock = 1;
    d.vclock = g.get->vclock;
    res_t r = run(KV_OP_DEL, &d.base);
    cr_assert_eq(r.code, 14, "%s", r.err);
    res_free(&g);
    Riak__RpbGetReq q = get_req("b", "dv");
    q.has_deletedvclock = 1;
    q.deletedvclock = 1;
    r = run(KV_OP_GET, &q.base);
    cr_assert_eq(r.code, 10);
    cr_assert_eq(r.get->n_content, 0);
    cr_assert(r.get->has_vclock && r.get->vclock.len > 0, "a tombstone returns its vclock");
    res_free(&r);
}

Test(node_kv, tombstone_reaped_after_delete_delay)
{
    fx.cfg.delete_mode = DELETE_MODE_DELAY;
    fx.cfg.delete_delay_ms = 1000;
    put_ok("b", "reap", "v");
    del_ok("b", "reap");
    cr_assert(replicas_become("b", "reap", AT_TOMBSTONE, 5000), "tombstones written");
    usleep(200 * 1000);
    uint32_t parts[3];
    preflist("b", "reap", parts);
    cr_assert_eq(held_at(parts[0], "b", "reap"), AT_TOMBSTONE, "kept during the delay");
    cr_assert(replicas_become("b", "reap", AT_NOTHING, 5000), "reaped after the delay");
    for (int i = 0; i < 250 && atomic_load(&fx.kv.stats.tombstones_reaped) == 0; i++)
        usleep(20 * 1000);
    cr_assert_geq(atomic_load(&fx.kv.stats.tombstones_reaped), 1);
    res_t g = get_ok("b", "reap");
    cr_assert_eq(g.get->n_content, 0);
    res_free(&g);
}

Test(node_kv, tombstone_reaped_immediately)
{
    fx.cfg.delete_mode = DELETE_MODE_IMMEDIATE;
    put_ok("b", "now", "v");
    del_ok("b", "now");
    cr_assert(replicas_become("b", "now", AT_NOTHING, 5000));
}

Test(node_kv, tombstone_kept_with_keep)
{
    fx.cfg.delete_mode = DELETE_MODE_KEEP;
    put_ok("b", "keep", "v");
    del_ok("b", "keep");
    cr_assert(replicas_become("b", "keep", AT_TOMBSTONE, 5000));
    res_t g = get_ok("b", "keep"); /* a read that sees the tombstone everywhere */
    res_free(&g);
    usleep(300 * 1000);
    cr_assert(replicas_become("b", "keep", AT_TOMBSTONE, 0), "keep never reaps");
    cr_assert_eq(atomic_load(&fx.kv.stats.tombstones_reaped), 0);
}

Test(node_kv, write_after_delete_comes_back)
{
    fx.cfg.delete_mode = DELETE_MODE_KEEP;
    put_ok("b", "phoenix", "v1");
    del_ok("b", "phoenix");
    put_ok("b", "phoenix", "v2");
    expect_single("b", "phoenix", "v2");
}

/* ---------------------------------------------------------------- put options */

Test(node_kv, conditional_puts)
{
    put_req_t p;
    /* if_none_match: only when nothing is there */
    put_init(&p, "b", "cond", "first");
    p.r.has_if_none_match = 1;
    p.r.if_none_match = 1;
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    res_free(&r);
    put_init(&p, "b", "cond", "second");
    p.r.has_if_none_match = 1;
    p.r.if_none_match = 1;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "match_found");

    /* if_not_modified: only with the current vclock */
    res_t g = get_ok("b", "cond");
    put_init(&p, "b", "cond", "third");
    p.r.has_vclock = 1;
    p.r.vclock = g.get->vclock;
    p.r.has_if_not_modified = 1;
    p.r.if_not_modified = 1;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    res_free(&r);
    r = run(KV_OP_PUT, &p.r.base); /* the same, now stale, vclock */
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "modified");
    res_free(&g);
    g = get_ok("b", "cond");
    cr_assert(has_content(g.get, "third"));
    res_free(&g);

    put_init(&p, "b", "cond-missing", "x");
    p.r.has_if_not_modified = 1;
    p.r.if_not_modified = 1;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "notfound");
}

Test(node_kv, return_body_and_return_head)
{
    put_req_t p;
    put_init(&p, "b", "body", "the body");
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12);
    cr_assert_eq(r.put->n_content, 0, "no body unless asked");
    cr_assert_not(r.put->has_key, "no key when the client gave one");
    res_free(&r);

    p.r.has_return_body = 1;
    p.r.return_body = 1;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    cr_assert_eq(r.put->n_content, 1);
    cr_assert(bin_is(r.put->content[0]->value, "the body"));
    cr_assert(r.put->has_vclock && r.put->vclock.len > 0);
    res_free(&r);

    p.r.return_body = 0;
    p.r.has_return_head = 1;
    p.r.return_head = 1;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    cr_assert_eq(r.put->n_content, 1);
    cr_assert_eq(r.put->content[0]->value.len, 0);
    cr_assert(bin_is(r.put->content[0]->content_type, "text/plain"));
    cr_assert(r.put->has_vclock);
    res_free(&r);
}

Test(node_kv, server_generated_key)
{
    put_req_t p;
    put_init(&p, "b", NULL, "anonymous");
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    cr_assert(r.put->has_key);
    cr_assert_eq(r.put->key.len, 22);
    char key[23];
    memcpy(key, r.put->key.data, 22);
    key[22] = '\0';
    for (int i = 0; i < 22; i++)
        cr_assert(strchr("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                         key[i]),
                  "URL-safe key: %s", key);
    res_free(&r);
    res_t g = get_ok("b", key);
    cr_assert(has_content(g.get, "anonymous"));
    res_free(&g);
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert(r.put->has_key && !bin_is(r.put->key, key), "a new key each time");
    res_free(&r);
}

Test(node_kv, get_head_and_if_modified)
{
    put_ok("b", "h", "big value");
    Riak__RpbGetReq g = get_req("b", "h");
    g.has_head = 1;
    g.head = 1;
    res_t r = run(KV_OP_GET, &g.base);
    cr_assert_eq(r.code, 10);
    cr_assert_eq(r.get->n_content, 1);
    cr_assert_eq(r.get->content[0]->value.len, 0);
    cr_assert(r.get->has_vclock);
    g = get_req("b", "h");
    g.has_if_modified = 1;
    g.if_modified = r.get->vclock;
    res_t u = run(KV_OP_GET, &g.base);
    cr_assert_eq(u.code, 10);
    cr_assert(u.get->has_unchanged && u.get->unchanged);
    cr_assert_eq(u.get->n_content, 0);
    res_free(&u);
    res_free(&r);
}

Test(node_kv, limits_and_bad_requests)
{
    fx.cfg.object_max_bytes = 100;
    char big[201];
    memset(big, 'x', 200);
    big[200] = '\0';
    put_req_t p;
    put_init(&p, "b", "big", big);
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.err, "Object exceeds maximum size"), "%s", r.err);
    fx.cfg.object_max_bytes = 50u << 20;

    fx.cfg.siblings_max = 2;
    set_bucket("sibs", 0, 1);
    put_ok("sibs", "k", "1");
    put_ok("sibs", "k", "2");
    put_init(&p, "sibs", "k", "3");
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert(strncmp(r.err, "{too_many_siblings,", 19) == 0, "%s", r.err);

    Riak__RpbGetReq g = get_req("b", "");
    r = run(KV_OP_GET, &g.base);
    cr_assert_str_eq(r.err, "Key cannot be zero-length");
    g = get_req("", "k");
    r = run(KV_OP_GET, &g.base);
    cr_assert_str_eq(r.err, "Bucket cannot be zero-length");
    g = get_req("b", "k");
    g.has_type = 1;
    g.type = bin("nosuchtype");
    r = run(KV_OP_GET, &g.base);
    cr_assert_str_eq(r.err, "Invalid bucket type: nosuchtype");
    put_init(&p, "b", "k", "v");
    p.r.content = NULL;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
}

Test(node_kv, overload_and_draining_refuse_at_the_door)
{
    fx.cfg.max_concurrent_requests = 0;
    Riak__RpbGetReq g = get_req("b", "k");
    ProtobufCMessage *c = kvobj_pb_clone(&g.base);
    cr_assert_eq(kv_get(&fx.kv, rt_self(), 1, (Riak__RpbGetReq *)c), KV_EOVERLOAD);
    cr_assert_eq(atomic_load(&fx.kv.stats.overloads), 1);
    fx.cfg.max_concurrent_requests = 50000;
    atomic_store(&fx.kv.draining, true);
    Riak__RpbDelReq d = del_req("b", "k");
    c = kvobj_pb_clone(&d.base);
    cr_assert_eq(kv_del(&fx.kv, rt_self(), 2, (Riak__RpbDelReq *)c), KV_EDRAINING);
    atomic_store(&fx.kv.draining, false);
    rt_test_expect_silence(50); /* a refused request gets no reply from us */
}

Test(node_kv, timeouts_reply_timeout)
{
    size_t n = 16u << 20; /* far more than a millisecond of work for the vnode */
    char *big = malloc(n + 1);
    memset(big, 'z', n);
    big[n] = '\0';
    put_req_t p;
    put_init(&p, "b", "slow", big);
    p.r.has_timeout = 1;
    p.r.timeout = 1;
    res_t r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.err, "timeout");
    p.r.timeout = 20000;
    r = run(KV_OP_PUT, &p.r.base);
    cr_assert_eq(r.code, 12, "%s", r.err);
    res_free(&r);
    free(big);
    Riak__RpbGetReq g = get_req("b", "slow");
    g.has_timeout = 1;
    g.timeout = 1;
    r = run(KV_OP_GET, &g.base);
    cr_assert(r.code == 0 ? strcmp(r.err, "timeout") == 0 : r.code == 10);
    res_free(&r);
    put_ok("b", "after", "still serving");
}

/* ---------------------------------------------------------------- crashes */

Test(node_kv, vnode_crashes_while_requests_flow)
{
    enum { REQS = 300 };
    uint64_t ids[REQS];
    put_ok("crash", "seed", "v");
    for (int i = 0; i < REQS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i % 25);
        if (i % 3 == 0) {
            Riak__RpbGetReq g = get_req("crash", key);
            ids[i] = submit(KV_OP_GET, &g.base);
        } else if (i % 7 == 0) {
            Riak__RpbDelReq d = del_req("crash", key);
            ids[i] = submit(KV_OP_DEL, &d.base);
        } else {
            put_req_t p;
            put_init(&p, "crash", key, "value");
            ids[i] = submit(KV_OP_PUT, &p.r.base);
        }
        if (i % 60 == 30)
            node_test_crash_vnode(&fx, (uint32_t)(i / 60) % Q);
    }
    int ok = 0, errors = 0;
    for (int i = 0; i < REQS; i++) {
        res_t r = wait_reply(ids[i]);
        if (r.code != 0)
            ok++;
        else if (errors++ < 5) /* restarting vnodes: dw_val_unsatisfied, local_put_failed... */
            cr_log_info("request %d: %s", i, r.err);
        res_free(&r);
    }
    cr_log_info("crashes while requests flow: %d succeeded, %d errors", ok, errors);
    cr_assert_eq(ok + errors, REQS, "every request got its reply");
    cr_assert_gt(ok, 0);
    cr_assert_geq(atomic_load(&fx.kv.stats.vnode_crashes), 1);
    /* no second reply to anything */
    rt_msg_t *m = rt_test_recv_type(KV_MSG_REPLY, 200);
    cr_assert_null(m, "a duplicate reply arrived");
    /* and the node still works */
    put_ok("crash", "after", "fine");
    res_t g = get_ok("crash", "after");
    cr_assert(has_content(g.get, "fine"));
    res_free(&g);
}

Test(node_kv_mem, every_replica_restarting_still_answers)
{
    /* crash all three replicas of a key, then ask at once: restarting vnodes are errors */
    uint32_t parts[3];
    preflist("b", "k", parts);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3; i++)
            node_test_crash_vnode(&fx, parts[i]);
        Riak__RpbGetReq g = get_req("b", "k");
        uint64_t gid = submit(KV_OP_GET, &g.base);
        put_req_t p;
        put_init(&p, "b", "k", "v");
        uint64_t pid = submit(KV_OP_PUT, &p.r.base);
        res_t r = wait_reply(gid);
        cr_assert(r.code == 0 || r.code == 10);
        res_free(&r);
        r = wait_reply(pid);
        cr_assert(r.code == 0 || r.code == 12);
        res_free(&r);
        for (int i = 0; i < 3; i++)
            for (int w = 0; w < 500 && rt_pid_is_nil(vnode_pid(&fx.kv, parts[i])); w++)
                usleep(10 * 1000);
    }
}
