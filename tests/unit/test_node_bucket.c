/*
 * test_node_bucket.c — bucket properties (node/bucket.c) through the client entry points
 * kv_bucket_get/set/reset/type_get/type_set: Riak's defaults and the fields clients expect,
 * overrides that persist across a reopen, reset, refusal of bad and unsupported values
 * (nothing changes then), bucket types, and a corrupt file refused at open.
 */
#include "node_test.h"

#define CODE_ERROR 0
#define CODE_GET_BUCKET_RESP 20
#define CODE_SET_BUCKET_RESP 22
#define CODE_RESET_BUCKET_RESP 30

static node_test_t fx;

static void setup(void)
{
    node_test_setup(&fx, (node_test_opts_t){.what = "bucket", .q = 16, .buckets = true});
}

static void teardown(void)
{
    node_test_teardown(&fx);
}

TestSuite(node_bucket, .init = setup, .fini = teardown, .timeout = 30);

/* ---------------------------------------------------------------- helpers */

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static const kv_reply_t *frame_of(const rt_msg_t *m, uint8_t *code)
{
    cr_assert_eq(m->type, KV_MSG_REPLY);
    const kv_reply_t *r = (const kv_reply_t *)(const void *)m->data;
    cr_assert_eq(r->req_id, 77);
    cr_assert_eq(r->more, 0);
    cr_assert_geq(r->len, 5);
    uint32_t wire = (uint32_t)r->frame[0] << 24 | (uint32_t)r->frame[1] << 16 |
                    (uint32_t)r->frame[2] << 8 | r->frame[3];
    cr_assert_eq(wire, r->len - 4, "the frame length counts the code byte and the body");
    *code = r->frame[4];
    return r;
}

/* The error text of an RpbErrorResp reply (asserts it is one); static buffer. */
static const char *error_of(rt_msg_t *m)
{
    static char text[1100];
    uint8_t code;
    const kv_reply_t *r = frame_of(m, &code);
    cr_assert_eq(code, CODE_ERROR, "expected an error, got code %u", code);
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, r->len - 5, r->frame + 5);
    cr_assert_not_null(e);
    cr_assert(e->has_errmsg && e->has_errcode);
    snprintf(text, sizeof text, "%.*s", (int)e->errmsg.len, (const char *)e->errmsg.data);
    riak__rpb_error_resp__free_unpacked(e, NULL);
    rt_msg_free(m);
    return text;
}

static void expect_code(rt_msg_t *m, uint8_t want)
{
    uint8_t code;
    const kv_reply_t *r = frame_of(m, &code);
    if (code == CODE_ERROR) {
        Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, r->len - 5, r->frame + 5);
        cr_assert_fail("error: %.*s", e ? (int)e->errmsg.len : 0, e ? (const char *)e->errmsg.data : "");
    }
    cr_assert_eq(code, want);
    cr_assert_eq(r->len, 5, "no body");
    rt_msg_free(m);
}

/* Sets the bucket and, unless type is NULL, the bucket type of a request message. */
#define SET_BUCKET_AND_TYPE(req, bucket_, type_)                                          \
    do {                                                                                  \
        (req).has_bucket = 1;                                                             \
        (req).bucket = bin(bucket_);                                                      \
        if (type_) {                                                                      \
            (req).has_type = 1;                                                           \
            (req).type = bin(type_);                                                      \
        }                                                                                 \
    } while (0)

/* The reply to GetBucket for `bucket` of `type` (NULL: none sent). */
static rt_msg_t *get_bucket(const char *bucket, const char *type)
{
    Riak__RpbGetBucketReq req = RIAK__RPB_GET_BUCKET_REQ__INIT;
    SET_BUCKET_AND_TYPE(req, bucket, type);
    return kv_bucket_get(&fx.kv, 77, &req);
}

/* The properties of a GetBucket that must succeed; the caller frees them. */
static Riak__RpbBucketProps *get_props(const char *bucket, const char *type)
{
    rt_msg_t *m = get_bucket(bucket, type);
    uint8_t code;
    const kv_reply_t *r = frame_of(m, &code);
    cr_assert_eq(code, CODE_GET_BUCKET_RESP);
    Riak__RpbGetBucketResp *resp = riak__rpb_get_bucket_resp__unpack(NULL, r->len - 5, r->frame + 5);
    cr_assert_not_null(resp);
    cr_assert_not_null(resp->props);
    Riak__RpbBucketProps *p = resp->props;
    resp->props = NULL;
    riak__rpb_get_bucket_resp__free_unpacked(resp, NULL);
    rt_msg_free(m);
    return p;
}

static rt_msg_t *set_props(const char *bucket, const char *type, const Riak__RpbBucketProps *p)
{
    Riak__RpbSetBucketReq req = RIAK__RPB_SET_BUCKET_REQ__INIT;
    SET_BUCKET_AND_TYPE(req, bucket, type);
    req.props = (Riak__RpbBucketProps *)p;
    return kv_bucket_set(&fx.kv, 77, &req);
}

static rt_msg_t *reset(const char *bucket, const char *type)
{
    Riak__RpbResetBucketReq req = RIAK__RPB_RESET_BUCKET_REQ__INIT;
    SET_BUCKET_AND_TYPE(req, bucket, type);
    return kv_bucket_reset(&fx.kv, 77, &req);
}

static void assert_defaults(const Riak__RpbBucketProps *p)
{
    cr_assert(p->has_n_val && p->n_val == 3);
    cr_assert(p->has_allow_mult && !p->allow_mult);
    cr_assert(p->has_last_write_wins && !p->last_write_wins);
    cr_assert(p->has_r && p->r == NODE_QUORUM_QUORUM);
    cr_assert(p->has_w && p->w == NODE_QUORUM_QUORUM);
    cr_assert(p->has_dw && p->dw == NODE_QUORUM_QUORUM);
    cr_assert(p->has_rw && p->rw == NODE_QUORUM_QUORUM);
    cr_assert(p->has_pr && p->pr == 0);
    cr_assert(p->has_pw && p->pw == 0);
    cr_assert(p->has_notfound_ok && p->notfound_ok);
    cr_assert(p->has_basic_quorum && !p->basic_quorum);
    cr_assert(p->has_small_vclock && p->small_vclock == 50);
    cr_assert(p->has_big_vclock && p->big_vclock == 50);
    cr_assert(p->has_young_vclock && p->young_vclock == 20);
    cr_assert(p->has_old_vclock && p->old_vclock == 86400);
}

/* ---------------------------------------------------------------- tests */

Test(node_bucket, get_returns_every_prop_with_riak_defaults_and_fixed_fields)
{
    Riak__RpbBucketProps *p = get_props("b", NULL);
    assert_defaults(p);
    cr_assert_not_null(p->chash_keyfun);
    cr_assert_eq(p->chash_keyfun->module.len, 14);
    cr_assert_eq(memcmp(p->chash_keyfun->module.data, "riak_core_util", 14), 0);
    cr_assert_eq(memcmp(p->chash_keyfun->function.data, "chash_std_keyfun", 16), 0);
    cr_assert_not_null(p->linkfun);
    cr_assert_eq(memcmp(p->linkfun->module.data, "riak_kv_wm_link_walker", 22), 0);
    cr_assert_eq(memcmp(p->linkfun->function.data, "mapreduce_linkfun", 17), 0);
    cr_assert(p->has_has_precommit && !p->has_precommit);
    cr_assert(p->has_has_postcommit && !p->has_postcommit);
    riak__rpb_bucket_props__free_unpacked(p, NULL);
    Riak__RpbBucketProps *q = get_props("b", "default");
    assert_defaults(q);
    riak__rpb_bucket_props__free_unpacked(q, NULL);
}

Test(node_bucket, set_overrides_one_bucket_and_survives_reopen)
{
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    p.has_n_val = 1;
    p.n_val = 2;
    p.has_allow_mult = 1;
    p.allow_mult = 1;
    p.has_r = 1;
    p.r = NODE_QUORUM_ONE;
    p.has_w = 1;
    p.w = 2;
    p.has_old_vclock = 1;
    p.old_vclock = 600;
    expect_code(set_props("mine", NULL, &p), CODE_SET_BUCKET_RESP);
    Riak__RpbBucketProps p2 = RIAK__RPB_BUCKET_PROPS__INIT;
    p2.has_notfound_ok = 1;
    p2.notfound_ok = 0;
    expect_code(set_props("mine", "default", &p2), CODE_SET_BUCKET_RESP);

    for (int round = 0; round < 2; round++) {
        Riak__RpbBucketProps *g = get_props("mine", NULL);
        cr_assert_eq(g->n_val, 2);
        cr_assert(g->allow_mult);
        cr_assert_eq(g->r, NODE_QUORUM_ONE, "symbolic values come back as their codes");
        cr_assert_eq(g->w, 2);
        cr_assert_eq(g->old_vclock, 600);
        cr_assert(!g->notfound_ok, "a later set adds to the earlier one");
        cr_assert_eq(g->dw, NODE_QUORUM_QUORUM, "props not set keep their default");
        riak__rpb_bucket_props__free_unpacked(g, NULL);

        bucket_props_t bp;
        cr_assert_eq(bucket_props_get(fx.kv.buckets, "default", 7, "mine", 4, &bp), 0);
        cr_assert_eq(bp.n_val, 2);
        cr_assert(bp.allow_mult && bp.store.allow_mult);
        cr_assert_eq(bp.store.prune.old_vclock, 600);
        cr_assert_eq(bp.store.obj_max, fx.cfg.object_max_bytes);
        cr_assert_eq(bp.store.sib_max, fx.cfg.siblings_max);
        cr_assert_eq(bucket_props_get(fx.kv.buckets, NULL, 0, "other", 5, &bp), 0);
        cr_assert_eq(bp.n_val, 3, "other buckets keep the defaults");
        cr_assert(!bp.allow_mult);
        cr_assert_eq(bucket_props_get(fx.kv.buckets, "maps", 4, "mine", 4, &bp), -1);

        /* close and reopen: the overrides were on disk before the reply */
        node_test_reopen_buckets(&fx);
    }
}

Test(node_bucket, reset_restores_defaults_durably)
{
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    p.has_allow_mult = 1;
    p.allow_mult = 1;
    expect_code(set_props("a", NULL, &p), CODE_SET_BUCKET_RESP);
    expect_code(set_props("b", NULL, &p), CODE_SET_BUCKET_RESP);
    expect_code(reset("a", NULL), CODE_RESET_BUCKET_RESP);
    expect_code(reset("never-set", NULL), CODE_RESET_BUCKET_RESP);
    node_test_reopen_buckets(&fx);
    Riak__RpbBucketProps *a = get_props("a", NULL);
    assert_defaults(a);
    riak__rpb_bucket_props__free_unpacked(a, NULL);
    Riak__RpbBucketProps *b = get_props("b", NULL);
    cr_assert(b->allow_mult, "resetting one bucket leaves the others");
    riak__rpb_bucket_props__free_unpacked(b, NULL);
}

Test(node_bucket, bad_values_are_refused_and_change_nothing)
{
    Riak__RpbBucketProps p;

#define REFUSE(setup, needle)                                                              \
    do {                                                                                   \
        riak__rpb_bucket_props__init(&p);                                                  \
        setup;                                                                             \
        const char *e = error_of(set_props("x", NULL, &p));                                \
        cr_assert(strstr(e, needle), "error \"%s\" should mention \"%s\"", e, needle);     \
    } while (0)

    REFUSE((p.has_n_val = 1, p.n_val = 0), "n_val");
    REFUSE((p.has_n_val = 1, p.n_val = 17), "n_val");
    REFUSE((p.has_r = 1, p.r = 4), "r:");
    REFUSE((p.has_pw = 1, p.pw = 9), "pw");
    REFUSE((p.has_n_val = 1, p.n_val = 1, p.has_w = 1, p.w = 2), "w:");
    REFUSE((p.has_r = 1, p.r = 4294967290u), "r:");
    REFUSE((p.has_allow_mult = 1, p.allow_mult = 1, p.has_last_write_wins = 1,
            p.last_write_wins = 1), "allow_mult and last_write_wins");
    REFUSE((p.has_has_precommit = 1, p.has_precommit = 1), "precommit");
    REFUSE((p.has_datatype = 1, p.datatype = bin("counter")), "datatype");
    REFUSE((p.has_consistent = 1, p.consistent = 1), "consistent");
    REFUSE((p.has_backend = 1, p.backend = bin("bitcask")), "backend");
    REFUSE((p.has_search = 1, p.search = 1), "search");
    REFUSE((p.has_write_once = 1, p.write_once = 1), "write_once");
    Riak__RpbModFun mf = RIAK__RPB_MOD_FUN__INIT;
    mf.has_module = mf.has_function = 1;
    mf.module = bin("my_mod");
    mf.function = bin("my_fun");
    REFUSE((p.chash_keyfun = &mf), "chash_keyfun");
    Riak__RpbCommitHook hook = RIAK__RPB_COMMIT_HOOK__INIT, *hooks[1] = {&hook};
    hook.has_name = 1;
    hook.name = bin("hook");
    REFUSE((p.n_postcommit = 1, p.postcommit = hooks), "postcommit");
#undef REFUSE

    /* a refused set with a valid part changes nothing either */
    riak__rpb_bucket_props__init(&p);
    p.has_n_val = 1;
    p.n_val = 1;
    p.has_consistent = 1;
    p.consistent = 1;
    error_of(set_props("x", NULL, &p));
    Riak__RpbBucketProps *g = get_props("x", NULL);
    assert_defaults(g);
    riak__rpb_bucket_props__free_unpacked(g, NULL);

    /* lowering n_val below a quorum the bucket set is refused */
    riak__rpb_bucket_props__init(&p);
    p.has_r = 1;
    p.r = 3;
    expect_code(set_props("y", NULL, &p), CODE_SET_BUCKET_RESP);
    riak__rpb_bucket_props__init(&p);
    p.has_n_val = 1;
    p.n_val = 2;
    cr_assert(strstr(error_of(set_props("y", NULL, &p)), "r:"));
}

Test(node_bucket, what_get_returned_can_be_written_back)
{
    Riak__RpbBucketProps *g = get_props("echo", NULL);
    g->allow_mult = 1; /* a client changing one prop and sending the rest back */
    g->has_hll_precision = 1;
    g->hll_precision = 14;
    g->has_repl = 1;
    g->repl = RIAK__RPB_BUCKET_PROPS__RPB_REPL_MODE__FALSE;
    expect_code(set_props("echo", NULL, g), CODE_SET_BUCKET_RESP);
    riak__rpb_bucket_props__free_unpacked(g, NULL);
    Riak__RpbBucketProps *h = get_props("echo", NULL);
    cr_assert(h->allow_mult);
    riak__rpb_bucket_props__free_unpacked(h, NULL);
}

Test(node_bucket, only_the_default_type_exists)
{
    cr_assert_str_eq(error_of(get_bucket("b", "maps")), "Invalid bucket type: maps");
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    p.has_n_val = 1;
    p.n_val = 1;
    cr_assert_str_eq(error_of(set_props("b", "sets", &p)), "Invalid bucket type: sets");
    cr_assert_str_eq(error_of(reset("b", "t")), "Invalid bucket type: t");

    Riak__RpbGetBucketTypeReq tg = RIAK__RPB_GET_BUCKET_TYPE_REQ__INIT;
    tg.has_type = 1;
    tg.type = bin("default");
    rt_msg_t *m = kv_bucket_type_get(&fx.kv, 77, &tg);
    uint8_t code;
    frame_of(m, &code);
    cr_assert_eq(code, CODE_GET_BUCKET_RESP);
    rt_msg_free(m);
    tg.type = bin("maps");
    cr_assert_str_eq(error_of(kv_bucket_type_get(&fx.kv, 77, &tg)), "Invalid bucket type: maps");

    Riak__RpbSetBucketTypeReq ts = RIAK__RPB_SET_BUCKET_TYPE_REQ__INIT;
    ts.has_type = 1;
    ts.type = bin("default");
    ts.props = &p;
    cr_assert(strstr(error_of(kv_bucket_type_set(&fx.kv, 77, &ts)), "default"));
    ts.type = bin("maps");
    cr_assert_str_eq(error_of(kv_bucket_type_set(&fx.kv, 77, &ts)), "Invalid bucket type: maps");

    Riak__RpbGetBucketReq nob = RIAK__RPB_GET_BUCKET_REQ__INIT;
    cr_assert(strstr(error_of(kv_bucket_get(&fx.kv, 77, &nob)), "zero-length"));
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(node_bucket, corrupt_file_is_refused_at_open)
{
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    p.has_n_val = 1;
    p.n_val = 2;
    expect_code(set_props("b", NULL, &p), CODE_SET_BUCKET_RESP);
    bucket_store_close(fx.kv.buckets);
    fx.kv.buckets = NULL;

    char path[512];
    snprintf(path, sizeof path, "%s/buckets", fx.dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    uint8_t good[4096];
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    cr_assert_gt(n, 24);

    char err[512];
    uint8_t bad[4096];
    memcpy(bad, good, n);
    bad[n / 2] ^= 0x40; /* one flipped bit */
    write_file(path, bad, n);
    cr_assert_null(bucket_store_open(&fx.cfg, err, sizeof err));
    cr_assert(strstr(err, "corrupt"), "%s", err);
    cr_assert(strstr(err, path), "the message names the file: %s", err);

    write_file(path, good, n - 3); /* truncated */
    cr_assert_null(bucket_store_open(&fx.cfg, err, sizeof err));
    write_file(path, "hello", 5);
    cr_assert_null(bucket_store_open(&fx.cfg, err, sizeof err));

    write_file(path, good, n); /* intact again */
    node_test_open_buckets(&fx);
    bucket_props_t bp;
    cr_assert_eq(bucket_props_get(fx.kv.buckets, NULL, 0, "b", 1, &bp), 0);
    cr_assert_eq(bp.n_val, 2);

    /* intact, but the configuration no longer allows a stored value */
    fx.cfg.ring_size = 1;
    bucket_store_close(fx.kv.buckets);
    fx.kv.buckets = bucket_store_open(&fx.cfg, err, sizeof err);
    cr_assert_null(fx.kv.buckets);
    cr_assert(strstr(err, "n_val") && strstr(err, "configuration"), "%s", err);
}

Test(node_bucket, many_buckets_round_trip)
{
    Riak__RpbBucketProps p = RIAK__RPB_BUCKET_PROPS__INIT;
    p.has_n_val = 1;
    for (uint32_t i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "bucket-%u", i);
        p.n_val = 1 + i % 5;
        expect_code(set_props(name, NULL, &p), CODE_SET_BUCKET_RESP);
    }
    node_test_reopen_buckets(&fx);
    for (uint32_t i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "bucket-%u", i);
        bucket_props_t bp;
        cr_assert_eq(bucket_props_get(fx.kv.buckets, NULL, 0, name, strlen(name), &bp), 0);
        cr_assert_eq(bp.n_val, 1 + i % 5);
    }
}
