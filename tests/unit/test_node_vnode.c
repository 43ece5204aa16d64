/*
 * test_node_vnode.c — vnodes (node/vnode.c) on the real runtime with real LevelDB in a
 * temporary directory (and the memory backend): coordinated writes and reads, replica merge
 * keeping siblings, limits, reaping only an unchanged tombstone, the counter lease and epoch
 * across restarts (dots never reused), and crashes on purpose (restarted with a new pid, data
 * intact, calls in flight end instead of hanging).
 */
#include "node_test.h"
#include "storage/object.h"

#define Q 8
#define NODE_ID 0xC0FFEE0012345678ull

/* ---------------------------------------------------------------- fixture */

static node_test_t fx;

static void setup_kind(store_engine_kind_t kind)
{
    node_test_setup(&fx, (node_test_opts_t){.what = "vnode", .q = Q, .vnodes = true,
                                            .engine = kind, .node_id = NODE_ID});
}

static void setup_ldb(void) { setup_kind(STORE_ENGINE_LEVELDB); }
static void setup_mem(void) { setup_kind(STORE_ENGINE_MEMORY); }

static void teardown(void)
{
    node_test_teardown(&fx);
}

/* Stops and starts every vnode (they reopen their data). */
static void restart_vnodes(void)
{
    node_test_stop_vnodes(&fx);
    node_test_start_vnodes(&fx);
}

/* ---------------------------------------------------------------- requests */

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* Addresses a vnode request message: partition, bucket and key. */
#define SET_PARTITION_BUCKET_KEY(req, p_, bucket_, key_)                                  \
    do {                                                                                  \
        (req).has_partition = 1;                                                          \
        (req).partition = (p_);                                                           \
        (req).has_bucket = 1;                                                             \
        (req).bucket = bin(bucket_);                                                      \
        (req).has_key = 1;                                                                \
        (req).key = bin(key_);                                                            \
    } while (0)

/* Calls partition p's vnode; returns the reply message (caller frees). */
static rt_msg_t *call_vnode(uint32_t p, uint32_t type, const ProtobufCMessage *req)
{
    rt_msg_t *reply = NULL;
    int reason = 0;
    int rc = rt_call_sync(vnode_pid(&fx.kv, p), rt_msg_pb(type, node_test_pb_clone(req), NULL),
                          5000, &reply, &reason);
    cr_assert_eq(rc, 0, "call to vnode %u failed: %s (%s)", p, rt_strerror(rc),
                 rt_reason_str(reason));
    cr_assert_not_null(rt_msg_pb_get(reply));
    return reply;
}

typedef struct {
    rt_msg_t *msg;
    Cairn__Kv__VnodePutResp *r;
} put_t;

typedef struct {
    const char *value;
    bool coordinate;
    bool allow_mult;
    bool deleted;
    const uint8_t *context;
    size_t context_len;
    const uint8_t *object;
    size_t object_len;
    uint64_t obj_max;
    uint32_t sib_max;
} put_opts_t;

static put_t put_at(uint32_t p, const char *bucket, const char *key, put_opts_t o)
{
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    content.has_value = 1;
    content.value = bin(o.value ? o.value : "");
    content.has_content_type = 1;
    content.content_type = bin("text/plain");
    if (o.deleted) {
        content.has_deleted = 1;
        content.deleted = 1;
    }
    Cairn__Kv__WriteProps props = CAIRN__KV__WRITE_PROPS__INIT;
    props.has_allow_mult = 1;
    props.allow_mult = o.allow_mult;
    if (o.obj_max) {
        props.has_obj_max = 1;
        props.obj_max = o.obj_max;
    }
    if (o.sib_max) {
        props.has_sib_max = 1;
        props.sib_max = o.sib_max;
    }
    Cairn__Kv__VnodePutReq req = CAIRN__KV__VNODE_PUT_REQ__INIT;
    SET_PARTITION_BUCKET_KEY(req, p, bucket, key);
    req.has_coordinate = 1;
    req.coordinate = o.coordinate;
    req.props = &props;
    if (o.coordinate)
        req.content = &content;
    if (o.context) {
        req.has_context = 1;
        req.context = (ProtobufCBinaryData){o.context_len, (uint8_t *)o.context};
    }
    if (o.object) {
        req.has_object = 1;
        req.object = (ProtobufCBinaryData){o.object_len, (uint8_t *)o.object};
    }
    put_t out;
    out.msg = call_vnode(p, KV_MSG_VNODE_PUT, &req.base);
    cr_assert_eq(out.msg->type, KV_MSG_VNODE_PUT_RESP);
    out.r = (Cairn__Kv__VnodePutResp *)rt_msg_pb_get(out.msg);
    return out;
}

static put_t coord(uint32_t p, const char *bucket, const char *key, const char *value)
{
    return put_at(p, bucket, key, (put_opts_t){.value = value, .coordinate = true, .allow_mult = true});
}

typedef struct {
    rt_msg_t *msg;
    Cairn__Kv__VnodeGetResp *r;
} get_t;

static get_t get_at(uint32_t p, const char *bucket, const char *key)
{
    Cairn__Kv__VnodeGetReq req = CAIRN__KV__VNODE_GET_REQ__INIT;
    SET_PARTITION_BUCKET_KEY(req, p, bucket, key);
    get_t out;
    out.msg = call_vnode(p, KV_MSG_VNODE_GET, &req.base);
    cr_assert_eq(out.msg->type, KV_MSG_VNODE_GET_RESP);
    out.r = (Cairn__Kv__VnodeGetResp *)rt_msg_pb_get(out.msg);
    return out;
}

/* The decoded object a get found (asserts OK). */
static store_obj_t *get_obj(uint32_t p, const char *bucket, const char *key)
{
    get_t g = get_at(p, bucket, key);
    cr_assert_eq(g.r->status, CAIRN__KV__STATUS__OK, "get: status %d (%s)", g.r->status,
                 g.r->errmsg ? g.r->errmsg : "");
    store_obj_t *o = NULL;
    cr_assert_eq(store_obj_decode(g.r->object.data, g.r->object.len, &o), 0);
    rt_msg_free(g.msg);
    return o;
}

static store_obj_t *decode_put(const put_t *pt)
{
    cr_assert_eq(pt->r->status, CAIRN__KV__STATUS__OK, "put: status %d (%s)", pt->r->status,
                 pt->r->errmsg ? pt->r->errmsg : "");
    cr_assert(pt->r->has_object);
    store_obj_t *o = NULL;
    cr_assert_eq(store_obj_decode(pt->r->object.data, pt->r->object.len, &o), 0);
    return o;
}

static bool has_value(const store_obj_t *o, const char *v)
{
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (o->sibs[i]->c.value.n == strlen(v) && !memcmp(o->sibs[i]->c.value.p, v, strlen(v)))
            return true;
    return false;
}

static uint32_t epoch_of(const store_actor_t *a)
{
    return (uint32_t)a->b[12] << 24 | (uint32_t)a->b[13] << 16 | (uint32_t)a->b[14] << 8 | a->b[15];
}

/* The dot of the single sibling a coordinated write to a new key produced. */
static store_dot_t fresh_dot(uint32_t p, const char *key)
{
    put_t pt = coord(p, "dots", key, "x");
    store_obj_t *o = decode_put(&pt);
    cr_assert_eq(o->n_sibs, 1);
    store_dot_t d = o->sibs[0]->dot;
    store_obj_free(o);
    rt_msg_free(pt.msg);
    return d;
}

/* ---------------------------------------------------------------- tests */

TestSuite(node_vnode, .init = setup_ldb, .fini = teardown, .timeout = 60);

Test(node_vnode, coordinated_put_then_get_round_trip)
{
    put_t pt = coord(3, "b", "k", "hello");
    store_obj_t *o = decode_put(&pt);
    cr_assert_eq(o->n_sibs, 1);
    const store_sib_t *s = o->sibs[0];
    cr_assert(has_value(o, "hello"));
    cr_assert_eq(s->c.content_type.n, 10);
    cr_assert_neq(s->c.last_mod, 0, "last_mod is stamped when the client sent none");
    cr_assert_gt(s->c.vtag.n, 0, "a vtag is generated");
    store_actor_t want = store_actor_make(NODE_ID, 3, epoch_of(&s->dot.actor));
    cr_assert_eq(memcmp(&s->dot.actor, &want, sizeof want), 0, "actor is (node, partition, epoch)");

    get_t g = get_at(3, "b", "k");
    cr_assert_eq(g.r->status, CAIRN__KV__STATUS__OK);
    cr_assert_eq(g.r->object.len, pt.r->object.len);
    cr_assert_eq(memcmp(g.r->object.data, pt.r->object.data, g.r->object.len), 0,
                 "get returns the stored bytes as they were written");
    rt_msg_free(g.msg);

    get_t miss = get_at(3, "b", "other");
    cr_assert_eq(miss.r->status, CAIRN__KV__STATUS__NOTFOUND);
    rt_msg_free(miss.msg);
    get_t elsewhere = get_at(4, "b", "k");
    cr_assert_eq(elsewhere.r->status, CAIRN__KV__STATUS__NOTFOUND, "partitions are separate");
    rt_msg_free(elsewhere.msg);
    store_obj_free(o);
    rt_msg_free(pt.msg);
}

Test(node_vnode, context_decides_between_sibling_and_replacement)
{
    put_t a = coord(1, "b", "k", "v1");
    put_t b = coord(1, "b", "k", "v2"); /* no context: concurrent */
    store_obj_t *ob = decode_put(&b);
    cr_assert_eq(ob->n_sibs, 2);
    cr_assert(has_value(ob, "v1") && has_value(ob, "v2"));

    uint8_t *ctx = NULL;
    size_t ctx_len = 0;
    cr_assert_eq(store_vclock_encode(&ob->clock, &ctx, &ctx_len), 0);
    put_t c = put_at(1, "b", "k", (put_opts_t){.value = "v3", .coordinate = true, .allow_mult = true,
                                               .context = ctx, .context_len = ctx_len});
    store_obj_t *oc = decode_put(&c);
    cr_assert_eq(oc->n_sibs, 1, "a write with the context replaces what it saw");
    cr_assert(has_value(oc, "v3"));
    free(ctx);

    /* allow_mult = false: one value, never two */
    put_t d = put_at(1, "b", "k2", (put_opts_t){.value = "x", .coordinate = true});
    put_t e = put_at(1, "b", "k2", (put_opts_t){.value = "y", .coordinate = true});
    store_obj_t *oe = decode_put(&e);
    cr_assert_eq(oe->n_sibs, 1);
    store_obj_free(ob);
    store_obj_free(oc);
    store_obj_free(oe);
    rt_msg_free(a.msg);
    rt_msg_free(b.msg);
    rt_msg_free(c.msg);
    rt_msg_free(d.msg);
    rt_msg_free(e.msg);
}

Test(node_vnode, replica_merge_keeps_siblings_and_is_idempotent)
{
    /* two coordinators (vnodes 0 and 1) write the same key concurrently */
    put_t a = coord(0, "b", "k", "from0");
    put_t b = coord(1, "b", "k", "from1");
    /* vnode 2 receives both as replica writes */
    put_t ra = put_at(2, "b", "k", (put_opts_t){.object = a.r->object.data, .object_len = a.r->object.len});
    cr_assert_eq(ra.r->status, CAIRN__KV__STATUS__OK);
    put_t rb = put_at(2, "b", "k", (put_opts_t){.object = b.r->object.data, .object_len = b.r->object.len});
    cr_assert_eq(rb.r->status, CAIRN__KV__STATUS__OK);
    cr_assert(!rb.r->has_object, "a replica write does not send the object back");
    store_obj_t *o = get_obj(2, "b", "k");
    cr_assert_eq(o->n_sibs, 2, "concurrent writes stay siblings");
    cr_assert(has_value(o, "from0") && has_value(o, "from1"));
    /* the same object again changes nothing */
    put_t again = put_at(2, "b", "k", (put_opts_t){.object = a.r->object.data, .object_len = a.r->object.len});
    cr_assert_eq(again.r->status, CAIRN__KV__STATUS__OK);
    store_obj_t *o2 = get_obj(2, "b", "k");
    cr_assert(store_obj_equal(o, o2));
    store_obj_free(o);
    store_obj_free(o2);
    rt_msg_free(a.msg);
    rt_msg_free(b.msg);
    rt_msg_free(ra.msg);
    rt_msg_free(rb.msg);
    rt_msg_free(again.msg);
}

Test(node_vnode, bad_requests_get_clear_errors)
{
    static const uint8_t junk[] = {0xFF, 0x01, 0x02, 0x03};
    put_t bad_ctx = put_at(0, "b", "k", (put_opts_t){.value = "v", .coordinate = true,
                                                     .context = junk, .context_len = sizeof junk});
    cr_assert_eq(bad_ctx.r->status, CAIRN__KV__STATUS__FAILED);
    cr_assert_str_eq(bad_ctx.r->errmsg, "invalid vclock");
    put_t bad_obj = put_at(0, "b", "k", (put_opts_t){.object = junk, .object_len = sizeof junk});
    cr_assert_eq(bad_obj.r->status, CAIRN__KV__STATUS__FAILED);
    cr_assert_str_eq(bad_obj.r->errmsg, "invalid object");
    put_t empty_key = put_at(0, "b", "", (put_opts_t){.value = "v", .coordinate = true});
    cr_assert_eq(empty_key.r->status, CAIRN__KV__STATUS__FAILED);
    get_t g = get_at(0, "b", "k");
    cr_assert_eq(g.r->status, CAIRN__KV__STATUS__NOTFOUND, "nothing was written");
    /* a message whose payload is not what its type says */
    rt_msg_t *reply = NULL;
    int rc = rt_call_sync(vnode_pid(&fx.kv, 0), rt_msg_new(KV_MSG_VNODE_GET, 0), 5000, &reply, NULL);
    cr_assert_eq(rc, 0);
    cr_assert_eq(((Cairn__Kv__VnodeGetResp *)rt_msg_pb_get(reply))->status, CAIRN__KV__STATUS__FAILED);
    rt_msg_free(reply);
    /* a request for another partition is refused, not served from the wrong data */
    Cairn__Kv__VnodeGetReq other = CAIRN__KV__VNODE_GET_REQ__INIT;
    other.has_partition = other.has_bucket = other.has_key = 1;
    other.partition = 1;
    other.bucket = bin("b");
    other.key = bin("k");
    rt_msg_t *mis = call_vnode(0, KV_MSG_VNODE_GET, &other.base);
    Cairn__Kv__VnodeGetResp *mr = (Cairn__Kv__VnodeGetResp *)rt_msg_pb_get(mis);
    cr_assert_eq(mr->status, CAIRN__KV__STATUS__FAILED);
    cr_assert(strstr(mr->errmsg, "partition 1"), "%s", mr->errmsg);
    rt_msg_free(mis);
    rt_msg_free(bad_ctx.msg);
    rt_msg_free(bad_obj.msg);
    rt_msg_free(empty_key.msg);
    rt_msg_free(g.msg);
}

Test(node_vnode, limits_refuse_too_big_and_too_many_siblings)
{
    put_t big = put_at(0, "b", "k", (put_opts_t){.value = "0123456789abcdef", .coordinate = true,
                                                 .allow_mult = true, .obj_max = 8});
    cr_assert_eq(big.r->status, CAIRN__KV__STATUS__TOO_BIG);
    put_t s[3];
    for (int i = 0; i < 3; i++)
        s[i] = put_at(0, "b", "s", (put_opts_t){.value = "v", .coordinate = true,
                                                .allow_mult = true, .sib_max = 2});
    cr_assert_eq(s[0].r->status, CAIRN__KV__STATUS__OK);
    cr_assert_eq(s[1].r->status, CAIRN__KV__STATUS__OK);
    cr_assert_eq(s[2].r->status, CAIRN__KV__STATUS__TOO_MANY_SIBLINGS);
    store_obj_t *o = get_obj(0, "b", "s");
    cr_assert_eq(o->n_sibs, 2, "a refused write stores nothing");
    store_obj_free(o);
    rt_msg_free(big.msg);
    for (int i = 0; i < 3; i++)
        rt_msg_free(s[i].msg);
}

static rt_msg_t *reap(uint32_t p, const char *key, const store_vclock_t *clock, const uint8_t *raw,
                      size_t raw_len)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (clock)
        cr_assert_eq(store_vclock_encode(clock, &bytes, &len), 0);
    Cairn__Kv__VnodeReapReq req = CAIRN__KV__VNODE_REAP_REQ__INIT;
    SET_PARTITION_BUCKET_KEY(req, p, "b", key);
    req.has_clock = 1;
    req.clock = clock ? (ProtobufCBinaryData){len, bytes} : (ProtobufCBinaryData){raw_len, (uint8_t *)raw};
    rt_msg_t *m = call_vnode(p, KV_MSG_VNODE_REAP, &req.base);
    free(bytes);
    cr_assert_eq(m->type, KV_MSG_VNODE_REAP_RESP);
    return m;
}

static int reap_status(rt_msg_t *m)
{
    int st = ((Cairn__Kv__VnodeReapResp *)rt_msg_pb_get(m))->status;
    rt_msg_free(m);
    return st;
}

Test(node_vnode, reap_removes_only_an_unchanged_tombstone)
{
    /* a live object is never reaped */
    put_t live = coord(5, "b", "live", "v");
    store_obj_t *ol = decode_put(&live);
    cr_assert_eq(reap_status(reap(5, "live", &ol->clock, NULL, 0)), CAIRN__KV__STATUS__MODIFIED);
    store_obj_free(get_obj(5, "b", "live"));

    /* a tombstone with the clock that was read is reaped */
    put_t t = put_at(5, "b", "dead", (put_opts_t){.value = "", .coordinate = true, .deleted = true});
    store_obj_t *ot = decode_put(&t);
    cr_assert(store_obj_is_tombstone(ot));
    /* ... but not if it changed since (another tombstone written over it) */
    uint8_t *ctx = NULL;
    size_t ctx_len = 0;
    cr_assert_eq(store_vclock_encode(&ot->clock, &ctx, &ctx_len), 0);
    put_t t2 = put_at(5, "b", "dead", (put_opts_t){.value = "", .coordinate = true, .deleted = true,
                                                   .context = ctx, .context_len = ctx_len});
    store_obj_t *ot2 = decode_put(&t2);
    cr_assert_eq(reap_status(reap(5, "dead", &ot->clock, NULL, 0)), CAIRN__KV__STATUS__MODIFIED);
    store_obj_free(get_obj(5, "b", "dead"));
    cr_assert_eq(reap_status(reap(5, "dead", &ot2->clock, NULL, 0)), CAIRN__KV__STATUS__OK);
    get_t g = get_at(5, "b", "dead");
    cr_assert_eq(g.r->status, CAIRN__KV__STATUS__NOTFOUND, "reaped for good");
    rt_msg_free(g.msg);
    /* reaping what is gone is fine; a garbage clock is an error */
    cr_assert_eq(reap_status(reap(5, "dead", &ot2->clock, NULL, 0)), CAIRN__KV__STATUS__OK);
    static const uint8_t junk[] = {0x99, 0x98};
    cr_assert_eq(reap_status(reap(5, "live", NULL, junk, sizeof junk)), CAIRN__KV__STATUS__FAILED);
    free(ctx);
    store_obj_free(ol);
    store_obj_free(ot);
    store_obj_free(ot2);
    rt_msg_free(live.msg);
    rt_msg_free(t.msg);
    rt_msg_free(t2.msg);
}

Test(node_vnode, counter_lease_and_epoch_survive_restart)
{
    store_dot_t before[20];
    uint64_t max_counter = 0;
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        before[i] = fresh_dot(2, key);
        if (before[i].counter > max_counter)
            max_counter = before[i].counter;
        if (i)
            cr_assert_gt(before[i].counter, before[i - 1].counter, "the sequence is monotonic");
    }
    restart_vnodes();
    store_dot_t after = fresh_dot(2, "new-key");
    cr_assert_eq(memcmp(&after.actor, &before[0].actor, sizeof after.actor), 0,
                 "same epoch: the vnode's metadata survived");
    cr_assert_gt(after.counter, max_counter, "a counter handed out before is never reused");
    store_obj_t *o = get_obj(2, "dots", "k7");
    cr_assert(has_value(o, "x"), "data survived the restart");
    store_obj_free(o);

    /* losing the metadata means a new actor (fresh epoch), so no dot can repeat */
    node_test_stop_vnodes(&fx);
    char meta[512];
    snprintf(meta, sizeof meta, "%s/leveldb/2/CAIRN-VNODE", fx.dir);
    cr_assert_eq(unlink(meta), 0, "the metadata record is %s", meta);
    node_test_start_vnodes(&fx);
    store_dot_t lost = fresh_dot(2, "another-key");
    cr_assert_gt(epoch_of(&lost.actor), epoch_of(&before[0].actor), "fresh epoch after loss");

    /* a corrupt record is not trusted either */
    node_test_stop_vnodes(&fx);
    FILE *f = fopen(meta, "w");
    cr_assert_not_null(f);
    fputs("cairn-vnode-meta 1 epoch=1 lease=5 check=0000000000000000\n", f);
    fclose(f);
    node_test_start_vnodes(&fx);
    store_dot_t corrupt = fresh_dot(2, "third-key");
    cr_assert_gt(epoch_of(&corrupt.actor), epoch_of(&lost.actor));
}

Test(node_vnode, lease_renews_past_its_block)
{
    /* more coordinated writes than one lease block would be slow here; instead, restart
     * twice and check each start moved the sequence past the previous lease */
    store_dot_t a = fresh_dot(6, "a");
    restart_vnodes();
    store_dot_t b = fresh_dot(6, "b");
    restart_vnodes();
    store_dot_t c = fresh_dot(6, "c");
    cr_assert_gt(b.counter, a.counter);
    cr_assert_gt(c.counter, b.counter);
    cr_assert_geq(c.counter - b.counter, 10000, "each start takes a new lease block");
}

/* Crashes partition p's vnode on purpose, waits for it to die and for its supervisor to start
 * a new one; returns the exit reason of the crashed one. */
static int crash_and_wait_restart(uint32_t p)
{
    rt_pid_t old = vnode_pid(&fx.kv, p);
    cr_assert(!rt_pid_is_nil(old), "vnode %u is not running", p);
    rt_ref_t ref = rt_monitor(old);
    node_test_crash_vnode(&fx, p);
    int reason = rt_test_wait_down(ref, 5000);
    cr_assert_neq(reason, -1, "vnode %u did not crash", p);
    node_test_wait_restarted(&fx, p, old);
    return reason;
}

Test(node_vnode, crash_restarts_with_new_pid_and_data_intact)
{
    put_t pt = coord(4, "b", "k", "survives");
    rt_msg_free(pt.msg);
    rt_pid_t old = vnode_pid(&fx.kv, 4);
    int reason = crash_and_wait_restart(4);
    cr_assert_neq(reason, RT_R_NORMAL, "the vnode crashed (%d)", reason);
    cr_assert_eq(atomic_load(&fx.kv.stats.vnode_crashes), 1);
    store_obj_t *o = get_obj(4, "b", "k");
    cr_assert(has_value(o, "survives"));
    store_obj_free(o);

    /* a call to the dead pid ends at once instead of hanging */
    rt_msg_t *reply = NULL;
    Cairn__Kv__VnodeGetReq g = CAIRN__KV__VNODE_GET_REQ__INIT;
    int rc = rt_call_sync(old, rt_msg_pb(KV_MSG_VNODE_GET, node_test_pb_clone(&g.base), NULL), 5000,
                          &reply, NULL);
    cr_assert_eq(rc, RT_EDOWN);
}

Test(node_vnode, many_crashes_do_not_escalate)
{
    put_t pt = coord(7, "b", "k", "v");
    rt_msg_free(pt.msg);
    for (int i = 0; i < 40; i++)
        crash_and_wait_restart(7);
    cr_assert(rt_is_alive(fx.sup), "the supervisor stayed up");
    cr_assert_eq(atomic_load(&fx.kv.stats.vnode_crashes), 40);
    store_obj_t *o = get_obj(7, "b", "k");
    cr_assert(has_value(o, "v"));
    store_obj_free(o);
    /* the other vnodes were not disturbed */
    store_obj_free(get_obj(7, "b", "k"));
    cr_assert(!rt_pid_is_nil(vnode_pid(&fx.kv, 0)));
}

Test(node_vnode, requests_during_crashes_fail_or_succeed_never_hang)
{
    int ok = 0, failed = 0;
    for (int i = 0; i < 200; i++) {
        if (i % 20 == 0)
            node_test_crash_vnode(&fx, 3);
        Cairn__Kv__VnodeGetReq g = CAIRN__KV__VNODE_GET_REQ__INIT;
        g.has_bucket = g.has_key = 1;
        g.bucket = bin("b");
        g.key = bin("k");
        rt_msg_t *reply = NULL;
        rt_pid_t pid = vnode_pid(&fx.kv, 3);
        int rc = RT_ENOPROC;
        if (!rt_pid_is_nil(pid))
            rc = rt_call_sync(pid, rt_msg_pb(KV_MSG_VNODE_GET, node_test_pb_clone(&g.base), NULL),
                              2000, &reply, NULL);
        cr_assert_neq(rc, RT_ETIMEDOUT, "a request hung");
        if (rc == 0) {
            ok++;
            rt_msg_free(reply);
        } else {
            failed++;
            usleep(2000); /* the vnode is restarting */
        }
    }
    cr_assert_gt(ok, 0);
    cr_assert_eq(ok + failed, 200);
}

Test(node_vnode, sync_interval_timer_keeps_serving)
{
    fx.cfg.storage.sync = STORE_SYNC_INTERVAL;
    fx.cfg.storage.sync_interval_ms = 5;
    restart_vnodes();
    for (int i = 0; i < 10; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%d", i);
        put_t pt = coord(0, "b", key, "v");
        cr_assert_eq(pt.r->status, CAIRN__KV__STATUS__OK);
        rt_msg_free(pt.msg);
        usleep(5000);
    }
    store_obj_t *o = get_obj(0, "b", "s9");
    cr_assert(has_value(o, "v"));
    store_obj_free(o);
}

/* ---------------------------------------------------------------- memory backend */

TestSuite(node_vnode_mem, .init = setup_mem, .fini = teardown, .timeout = 60);

Test(node_vnode_mem, round_trip_and_siblings)
{
    put_t a = coord(0, "b", "k", "v1");
    put_t b = coord(0, "b", "k", "v2");
    store_obj_t *o = get_obj(0, "b", "k");
    cr_assert_eq(o->n_sibs, 2);
    store_obj_free(o);
    rt_msg_free(a.msg);
    rt_msg_free(b.msg);
}

Test(node_vnode_mem, restart_takes_a_fresh_epoch)
{
    store_dot_t a = fresh_dot(1, "a");
    crash_and_wait_restart(1);
    get_t g = get_at(1, "dots", "a");
    cr_assert_eq(g.r->status, CAIRN__KV__STATUS__NOTFOUND, "memory keeps nothing across a restart");
    rt_msg_free(g.msg);
    store_dot_t b = fresh_dot(1, "a");
    cr_assert_gt(epoch_of(&b.actor), epoch_of(&a.actor), "lost data: new actor");
}
