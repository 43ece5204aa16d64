/*
 * test_node_list.c — listing keys and buckets (node/list.c) against real vnodes on LevelDB in
 * a temporary directory (and the memory backend). Data is written the way the coordinators
 * write it: a coordinated put at the first partition of the key's preference list, replica
 * writes at the next two. The test thread plays the client connection: it is reply_to,
 * reads the KV_MSG_REPLY frames and sends KV_MSG_STREAM_ACK itself.
 */
#include "node_test.h"
#include "storage/object.h"

#define Q 8
#define N_VAL 3
#define CODE_ERROR 0
#define CODE_LIST_BUCKETS_RESP 16
#define CODE_LIST_KEYS_RESP 18

static node_test_t fx;

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
    cr_assert_eq(ring_preflist(fx.kv.ring, h, N_VAL, pl), N_VAL);
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
