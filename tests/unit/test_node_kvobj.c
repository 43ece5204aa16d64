/*
 * test_node_kvobj.c — conversions between Riak's object messages and the stored object
 * (node/kvobj.c): RpbContent round trips through a sibling and the wire, GetResp/PutResp
 * building (allow_mult, head, vclock), WriteProps, the vnode request messages and frames.
 */
#include "node/kv.h"
#include "node/kvobj.h"

#include <criterion/criterion.h>
#include <string.h>

#define BIN(s) ((ProtobufCBinaryData){sizeof(s) - 1, (uint8_t *)(s)})

static bool bin_eq(ProtobufCBinaryData b, const char *s)
{
    return b.len == strlen(s) && (b.len == 0 || memcmp(b.data, s, b.len) == 0);
}

static bool slice_eq(store_slice_t a, const char *s)
{
    return a.n == strlen(s) && (a.n == 0 || memcmp(a.p, s, a.n) == 0);
}

/* A content with every field set. The pointers are to static data and stack structs. */
typedef struct full_content_s {
    Riak__RpbContent c;
    Riak__RpbPair um[2], ix[1];
    Riak__RpbPair *ump[2], *ixp[1];
    Riak__RpbLink ln[1];
    Riak__RpbLink *lnp[1];
} full_content_t;

static void full_content(full_content_t *f)
{
    Riak__RpbContent c = RIAK__RPB_CONTENT__INIT;
    f->c = c;
    f->c.has_value = 1;
    f->c.value = BIN("hello world");
    f->c.has_content_type = 1;
    f->c.content_type = BIN("text/plain");
    f->c.has_charset = 1;
    f->c.charset = BIN("utf-8");
    f->c.has_content_encoding = 1;
    f->c.content_encoding = BIN("gzip");
    f->c.has_vtag = 1;
    f->c.vtag = BIN("vt1");
    f->c.has_last_mod = 1;
    f->c.last_mod = 1700000000;
    f->c.has_last_mod_usecs = 1;
    f->c.last_mod_usecs = 123456;
    for (int i = 0; i < 2; i++) {
        Riak__RpbPair p = RIAK__RPB_PAIR__INIT;
        f->um[i] = p;
        f->ump[i] = &f->um[i];
    }
    f->um[0].has_key = 1;
    f->um[0].key = BIN("color");
    f->um[0].has_value = 1;
    f->um[0].value = BIN("blue");
    f->um[1].has_key = 1;
    f->um[1].key = BIN("flag"); /* no value */
    Riak__RpbPair p = RIAK__RPB_PAIR__INIT;
    f->ix[0] = p;
    f->ix[0].has_key = 1;
    f->ix[0].key = BIN("age_int");
    f->ix[0].has_value = 1;
    f->ix[0].value = BIN("42");
    f->ixp[0] = &f->ix[0];
    Riak__RpbLink l = RIAK__RPB_LINK__INIT;
    f->ln[0] = l;
    f->ln[0].has_bucket = 1;
    f->ln[0].bucket = BIN("people");
    f->ln[0].has_key = 1;
    f->ln[0].key = BIN("bob");
    f->ln[0].has_tag = 1;
    f->ln[0].tag = BIN("friend");
    f->lnp[0] = &f->ln[0];
    f->c.n_usermeta = 2;
    f->c.usermeta = f->ump;
    f->c.n_indexes = 1;
    f->c.indexes = f->ixp;
    f->c.n_links = 1;
    f->c.links = f->lnp;
}

static void assert_full(const Riak__RpbContent *c, bool head)
{
    cr_assert(c->has_value);
    cr_assert(bin_eq(c->value, head ? "" : "hello world"));
    cr_assert(bin_eq(c->content_type, "text/plain"));
    cr_assert(bin_eq(c->charset, "utf-8"));
    cr_assert(bin_eq(c->content_encoding, "gzip"));
    cr_assert(bin_eq(c->vtag, "vt1"));
    cr_assert(c->has_last_mod && c->last_mod == 1700000000);
    cr_assert(c->has_last_mod_usecs && c->last_mod_usecs == 123456);
    cr_assert_eq(c->n_usermeta, 2);
    cr_assert(bin_eq(c->usermeta[0]->key, "color"));
    cr_assert(bin_eq(c->usermeta[0]->value, "blue"));
    cr_assert(bin_eq(c->usermeta[1]->key, "flag"));
    cr_assert_not(c->usermeta[1]->has_value);
    cr_assert_eq(c->n_indexes, 1);
    cr_assert(bin_eq(c->indexes[0]->key, "age_int"));
    cr_assert(bin_eq(c->indexes[0]->value, "42"));
    cr_assert_eq(c->n_links, 1);
    cr_assert(bin_eq(c->links[0]->bucket, "people"));
    cr_assert(bin_eq(c->links[0]->key, "bob"));
    cr_assert(bin_eq(c->links[0]->tag, "friend"));
    cr_assert_not(c->has_deleted && c->deleted);
}

Test(kvobj, content_from_pb_borrows_every_field)
{
    full_content_t f;
    full_content(&f);
    store_content_t c;
    cr_assert_eq(kvobj_content_from_pb(&f.c, &c), 0);
    cr_assert(slice_eq(c.value, "hello world"));
    cr_assert_eq(c.value.p, f.c.value.data); /* borrowed, not copied */
    cr_assert(slice_eq(c.content_type, "text/plain"));
    cr_assert(slice_eq(c.charset, "utf-8"));
    cr_assert(slice_eq(c.content_encoding, "gzip"));
    cr_assert(slice_eq(c.vtag, "vt1"));
    cr_assert_eq(c.last_mod, 1700000000);
    cr_assert_eq(c.last_mod_usecs, 123456);
    cr_assert_eq(c.n_usermeta, 2);
    cr_assert(slice_eq(c.usermeta[0].key, "color"));
    cr_assert(slice_eq(c.usermeta[0].value, "blue"));
    cr_assert(slice_eq(c.usermeta[1].value, ""));
    cr_assert_eq(c.n_indexes, 1);
    cr_assert(slice_eq(c.indexes[0].value, "42"));
    cr_assert_eq(c.n_links, 1);
    cr_assert(slice_eq(c.links[0].tag, "friend"));
    cr_assert_not(c.deleted);
    kvobj_content_release(&c);
    cr_assert_null(c.usermeta);
}

Test(kvobj, content_from_null_or_empty)
{
    store_content_t c;
    cr_assert_eq(kvobj_content_from_pb(NULL, &c), -1);
    cr_assert_eq(c.value.n, 0);
    Riak__RpbContent e = RIAK__RPB_CONTENT__INIT;
    e.has_deleted = 1;
    e.deleted = 1;
    cr_assert_eq(kvobj_content_from_pb(&e, &c), 0);
    cr_assert_eq(c.value.n, 0);
    cr_assert(c.deleted);
    cr_assert_null(c.usermeta);
    kvobj_content_release(&c);
    kvobj_content_release(NULL);
}

Test(kvobj, content_round_trip_through_a_sibling_and_the_wire)
{
    full_content_t f;
    full_content(&f);
    store_content_t c;
    cr_assert_eq(kvobj_content_from_pb(&f.c, &c), 0);
    store_dot_t dot = {store_actor_make(1, 2, 3), 7};
    store_sib_t *sib = store_sib_new(&c, &dot);
    kvobj_content_release(&c); /* the sibling holds its own copy */

    for (int head = 0; head < 2; head++) {
        Riak__RpbContent pb;
        kvobj_content_to_pb(&sib->c, head, &pb);
        assert_full(&pb, head);
        size_t len = riak__rpb_content__get_packed_size(&pb);
        uint8_t *buf = malloc(len);
        riak__rpb_content__pack(&pb, buf);
        Riak__RpbContent *back = riak__rpb_content__unpack(NULL, len, buf);
        cr_assert_not_null(back);
        assert_full(back, head);
        riak__rpb_content__free_unpacked(back, NULL);
        free(buf);
        kvobj_pb_content_clear(&pb);
    }
    store_sib_unref(sib);
}

Test(kvobj, deleted_flag_survives)
{
    Riak__RpbContent in = RIAK__RPB_CONTENT__INIT;
    in.has_value = 1;
    in.value = BIN("");
    in.has_deleted = 1;
    in.deleted = 1;
    store_content_t c;
    kvobj_content_from_pb(&in, &c);
    Riak__RpbContent out;
    kvobj_content_to_pb(&c, false, &out);
    cr_assert(out.has_deleted && out.deleted);
    cr_assert(out.has_value && out.value.len == 0);
    kvobj_pb_content_clear(&out);
    kvobj_content_release(&c);
}

/* An object with two concurrent siblings: "old" at t=100 and "new" at t=200. */
static store_obj_t *two_siblings(void)
{
    store_props_t props = store_props_default(false);
    store_content_t a = {.value = STORE_SLICE("old"), .last_mod = 100};
    store_content_t b = {.value = STORE_SLICE("new"), .last_mod = 200};
    store_writer_t w1 = {.actor = store_actor_make(1, 1, 1), .now = 100};
    store_writer_t w2 = {.actor = store_actor_make(1, 2, 1), .now = 200};
    store_obj_t *o1 = NULL, *o2 = NULL, *m = NULL;
    cr_assert_eq(store_obj_coord_put(NULL, NULL, &a, &w1, &props, &o1, NULL), 0);
    cr_assert_eq(store_obj_coord_put(NULL, NULL, &b, &w2, &props, &o2, NULL), 0);
    store_obj_merge(o1, o2, &props, &m, NULL);
    store_obj_free(o1);
    store_obj_free(o2);
    cr_assert_eq(m->n_sibs, 2);
    return m;
}

Test(kvobj, get_resp_keeps_siblings_with_allow_mult)
{
    store_obj_t *o = two_siblings();
    Riak__RpbGetResp resp;
    cr_assert_eq(kvobj_get_resp_build(o, true, false, &resp), 0);
    cr_assert_eq(resp.n_content, 2);
    bool seen_old = false, seen_new = false;
    for (size_t i = 0; i < resp.n_content; i++) {
        seen_old |= bin_eq(resp.content[i]->value, "old");
        seen_new |= bin_eq(resp.content[i]->value, "new");
    }
    cr_assert(seen_old && seen_new);
    cr_assert(resp.has_vclock);
    store_vclock_t vc = STORE_VCLOCK_INIT;
    cr_assert_eq(store_vclock_decode(resp.vclock.data, resp.vclock.len, &vc), 0);
    cr_assert(store_vclock_equal(&vc, &o->clock));
    store_vclock_clear(&vc);
    /* the response packs and unpacks as a client would see it */
    size_t len = riak__rpb_get_resp__get_packed_size(&resp);
    uint8_t *buf = malloc(len);
    riak__rpb_get_resp__pack(&resp, buf);
    Riak__RpbGetResp *back = riak__rpb_get_resp__unpack(NULL, len, buf);
    cr_assert_eq(back->n_content, 2);
    riak__rpb_get_resp__free_unpacked(back, NULL);
    free(buf);
    kvobj_get_resp_clear(&resp);
    store_obj_free(o);
}

Test(kvobj, get_resp_single_value_without_allow_mult_and_head)
{
    store_obj_t *o = two_siblings();
    Riak__RpbGetResp resp;
    cr_assert_eq(kvobj_get_resp_build(o, false, false, &resp), 0);
    cr_assert_eq(resp.n_content, 1);
    cr_assert(bin_eq(resp.content[0]->value, "new")); /* newest last-modified wins */
    kvobj_get_resp_clear(&resp);
    cr_assert_eq(kvobj_get_resp_build(o, true, true, &resp), 0);
    cr_assert_eq(resp.n_content, 2);
    for (size_t i = 0; i < resp.n_content; i++)
        cr_assert(resp.content[i]->has_value && resp.content[i]->value.len == 0);
    kvobj_get_resp_clear(&resp);
    cr_assert_eq(kvobj_get_resp_build(NULL, true, false, &resp), STORE_EINVAL);
    store_obj_free(o);
}

Test(kvobj, put_resp_mirrors_get_resp)
{
    store_obj_t *o = two_siblings();
    Riak__RpbPutResp resp;
    cr_assert_eq(kvobj_put_resp_build(o, true, false, &resp), 0);
    cr_assert_eq(resp.n_content, 2);
    cr_assert(resp.has_vclock);
    cr_assert_not(resp.has_key);
    kvobj_put_resp_clear(&resp);
    cr_assert_eq(kvobj_put_resp_build(o, false, true, &resp), 0);
    cr_assert_eq(resp.n_content, 1);
    cr_assert_eq(resp.content[0]->value.len, 0);
    kvobj_put_resp_clear(&resp);
    store_obj_free(o);
}

Test(kvobj, visible_sibs)
{
    store_obj_t *o = two_siblings();
    const store_sib_t *out[4];
    cr_assert_eq(kvobj_visible_sibs(o, true, out, 4), 2);
    cr_assert_eq(kvobj_visible_sibs(o, true, out, 1), 1);
    cr_assert_eq(kvobj_visible_sibs(o, false, out, 4), 1);
    cr_assert_eq(out[0], store_obj_resolve(o));
    cr_assert_eq(kvobj_visible_sibs(NULL, true, out, 4), 0);
    store_obj_free(o);
}

static bool props_eq(const store_props_t *a, const store_props_t *b)
{
    return a->allow_mult == b->allow_mult && a->last_write_wins == b->last_write_wins &&
           a->prune.small_vclock == b->prune.small_vclock &&
           a->prune.big_vclock == b->prune.big_vclock &&
           a->prune.young_vclock == b->prune.young_vclock &&
           a->prune.old_vclock == b->prune.old_vclock && a->obj_warn == b->obj_warn &&
           a->obj_max == b->obj_max && a->sib_warn == b->sib_warn && a->sib_max == b->sib_max;
}

Test(kvobj, write_props_round_trip)
{
    store_props_t p = store_props_default(false);
    p.last_write_wins = true;
    p.prune.small_vclock = 7;
    p.prune.big_vclock = 9;
    p.prune.young_vclock = 11;
    p.prune.old_vclock = 13;
    p.obj_warn = 1000;
    p.obj_max = 2000;
    p.sib_warn = 3;
    p.sib_max = 4;
    Cairn__Kv__WriteProps pb;
    kvobj_props_to_pb(&p, &pb);
    store_props_t back;
    kvobj_props_from_pb(&pb, &back);
    cr_assert(props_eq(&p, &back));
    Cairn__Kv__WriteProps empty = CAIRN__KV__WRITE_PROPS__INIT;
    kvobj_props_from_pb(&empty, &back);
    store_props_t d = store_props_default(true);
    cr_assert(props_eq(&d, &back));
    kvobj_props_from_pb(NULL, &back);
    cr_assert(props_eq(&d, &back));
}

Test(kvobj, vnode_messages_own_their_bytes)
{
    char bucket[] = "bucket", key[] = "key";
    rt_msg_t *m = kvobj_vnode_get_msg(5, STORE_SLICE("default"), STORE_SLICE_STR(bucket),
                                      STORE_SLICE_STR(key));
    memset(bucket, 'X', 6); /* the message must not see this */
    const Cairn__Kv__VnodeGetReq *g = (const Cairn__Kv__VnodeGetReq *)rt_msg_pb_get(m);
    cr_assert_eq(m->type, KV_MSG_VNODE_GET);
    cr_assert_eq(g->partition, 5);
    cr_assert(bin_eq(g->type, "default"));
    cr_assert(bin_eq(g->bucket, "bucket"));
    cr_assert(bin_eq(g->key, "key"));
    rt_msg_free(m);

    store_props_t p = store_props_default(true);
    char obj[] = "OBJECT";
    m = kvobj_vnode_put_replica_msg(2, STORE_SLICE("t"), STORE_SLICE("b"), STORE_SLICE("k"),
                                    STORE_SLICE_STR(obj), &p, 99, true);
    obj[0] = 'x';
    const Cairn__Kv__VnodePutReq *pr = (const Cairn__Kv__VnodePutReq *)rt_msg_pb_get(m);
    cr_assert(pr->has_coordinate && !pr->coordinate);
    cr_assert(bin_eq(pr->object, "OBJECT"));
    cr_assert(pr->has_read_repair && pr->read_repair);
    cr_assert_eq(pr->now, 99);
    cr_assert_not_null(pr->props);
    cr_assert_eq(pr->props->sib_max, 100);
    /* it packs like any protobuf message (what crossing a node link does) */
    cr_assert_gt(protobuf_c_message_get_packed_size(&pr->base), 0);
    rt_msg_free(m);

    /* a coordinated write takes an unpacked content */
    full_content_t f;
    full_content(&f);
    Riak__RpbContent *content = (Riak__RpbContent *)kvobj_pb_clone(&f.c.base);
    cr_assert_not_null(content);
    m = kvobj_vnode_put_coord_msg(3, STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE("k"),
                                  content, STORE_SLICE("ctx"), &p, 1);
    pr = (const Cairn__Kv__VnodePutReq *)rt_msg_pb_get(m);
    cr_assert(pr->coordinate);
    cr_assert_eq(pr->content, content);
    cr_assert(bin_eq(pr->context, "ctx"));
    rt_msg_free(m); /* frees content too (ASan would report a leak otherwise) */

    m = kvobj_vnode_reap_msg(4, STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE("k"),
                             STORE_SLICE("clock"));
    const Cairn__Kv__VnodeReapReq *rr = (const Cairn__Kv__VnodeReapReq *)rt_msg_pb_get(m);
    cr_assert_eq(m->type, KV_MSG_VNODE_REAP);
    cr_assert(bin_eq(rr->clock, "clock"));
    rt_msg_free(m);
}

Test(kvobj, reply_frames_parse)
{
    Riak__RpbGetResp resp = RIAK__RPB_GET_RESP__INIT;
    resp.has_unchanged = 1;
    resp.unchanged = 1;
    rt_msg_t *m = kv_reply_new(77, false, 10, &resp.base);
    uint8_t code;
    const uint8_t *body;
    size_t len;
    cr_assert(kvobj_reply_frame(m, &code, &body, &len));
    cr_assert_eq(code, 10);
    Riak__RpbGetResp *back = riak__rpb_get_resp__unpack(NULL, len, body);
    cr_assert(back && back->unchanged);
    riak__rpb_get_resp__free_unpacked(back, NULL);
    rt_msg_free(m);

    m = kv_reply_new(1, false, 14, NULL);
    cr_assert(kvobj_reply_frame(m, &code, &body, &len));
    cr_assert_eq(code, 14);
    cr_assert_eq(len, 0);
    rt_msg_free(m);

    m = rt_msg_new(KV_MSG_STREAM_ACK, 0);
    cr_assert_not(kvobj_reply_frame(m, &code, &body, &len));
    rt_msg_free(m);
}

Test(kvobj, pb_clone_is_deep)
{
    full_content_t f;
    full_content(&f);
    Riak__RpbContent *copy = (Riak__RpbContent *)kvobj_pb_clone(&f.c.base);
    cr_assert_not_null(copy);
    cr_assert_neq(copy->value.data, f.c.value.data);
    assert_full(copy, false);
    protobuf_c_message_free_unpacked(&copy->base, NULL);
    cr_assert_null(kvobj_pb_clone(NULL));
}
