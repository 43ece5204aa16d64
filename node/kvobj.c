/*
 * kvobj.c — conversions between riak.RpbContent / RpbGetResp / RpbPutResp / WriteProps and
 * the stored object (node/kvobj.h). Byte fields are always borrowed; only the arrays and
 * structs that protobuf-c needs are allocated here, each freed by the matching clear.
 */
#include "node/kvobj.h"

#include "node/kv.h"
#include "storage/err.h"

#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort(); /* out of memory aborts the node (server policy) */
    return p;
}

static store_slice_t slice_of(protobuf_c_boolean has, ProtobufCBinaryData b)
{
    if (!has || !b.len)
        return (store_slice_t){NULL, 0};
    return (store_slice_t){b.data, b.len};
}

static ProtobufCBinaryData bin_of(store_slice_t s)
{
    static uint8_t empty[1];
    return (ProtobufCBinaryData){s.n, s.n ? (uint8_t *)s.p : empty};
}

/* An optional bytes field from s (borrowed), left absent when s is empty. */
static void set_opt_bytes(store_slice_t s, protobuf_c_boolean *has, ProtobufCBinaryData *field)
{
    if (s.n) {
        *has = 1;
        *field = bin_of(s);
    }
}

/* ---------------------------------------------------------------- RpbContent -> content */

static store_pair_t *pairs_from_pb(Riak__RpbPair *const *pb, size_t n)
{
    if (!n)
        return NULL;
    store_pair_t *out = xcalloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (!pb[i])
            continue;
        out[i].key = slice_of(pb[i]->has_key, pb[i]->key);
        out[i].value = slice_of(pb[i]->has_value, pb[i]->value);
    }
    return out;
}

int kvobj_content_from_pb(const Riak__RpbContent *pb, store_content_t *out)
{
    memset(out, 0, sizeof *out);
    if (!pb)
        return -1;
    out->value = slice_of(pb->has_value, pb->value);
    out->content_type = slice_of(pb->has_content_type, pb->content_type);
    out->charset = slice_of(pb->has_charset, pb->charset);
    out->content_encoding = slice_of(pb->has_content_encoding, pb->content_encoding);
    out->vtag = slice_of(pb->has_vtag, pb->vtag);
    out->last_mod = pb->has_last_mod ? pb->last_mod : 0;
    out->last_mod_usecs = pb->has_last_mod_usecs ? pb->last_mod_usecs : 0;
    out->deleted = pb->has_deleted && pb->deleted;
    out->usermeta = pairs_from_pb(pb->usermeta, pb->n_usermeta);
    out->n_usermeta = (uint32_t)pb->n_usermeta;
    out->indexes = pairs_from_pb(pb->indexes, pb->n_indexes);
    out->n_indexes = (uint32_t)pb->n_indexes;
    if (pb->n_links) {
        store_link_t *links = xcalloc(pb->n_links, sizeof *links);
        for (size_t i = 0; i < pb->n_links; i++) {
            const Riak__RpbLink *l = pb->links[i];
            if (!l)
                continue;
            links[i].bucket = slice_of(l->has_bucket, l->bucket);
            links[i].key = slice_of(l->has_key, l->key);
            links[i].tag = slice_of(l->has_tag, l->tag);
        }
        out->links = links;
        out->n_links = (uint32_t)pb->n_links;
    }
    return 0;
}

void kvobj_content_release(store_content_t *c)
{
    if (!c)
        return;
    free((void *)c->usermeta);
    free((void *)c->indexes);
    free((void *)c->links);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- content -> RpbContent */

/* One block: n pointers followed by n pair structs. */
static Riak__RpbPair **pairs_to_pb(const store_pair_t *pairs, uint32_t n)
{
    if (!n)
        return NULL;
    Riak__RpbPair **ptrs = xcalloc(1, n * (sizeof(Riak__RpbPair *) + sizeof(Riak__RpbPair)));
    Riak__RpbPair *items = (Riak__RpbPair *)(void *)(ptrs + n);
    for (uint32_t i = 0; i < n; i++) {
        Riak__RpbPair init = RIAK__RPB_PAIR__INIT;
        items[i] = init;
        items[i].has_key = 1; /* required in riak_pb */
        items[i].key = bin_of(pairs[i].key);
        set_opt_bytes(pairs[i].value, &items[i].has_value, &items[i].value);
        ptrs[i] = &items[i];
    }
    return ptrs;
}

/* One block: n pointers followed by n link structs. */
static Riak__RpbLink **links_to_pb(const store_link_t *links, uint32_t n)
{
    if (!n)
        return NULL;
    Riak__RpbLink **ptrs = xcalloc(1, n * (sizeof(Riak__RpbLink *) + sizeof(Riak__RpbLink)));
    Riak__RpbLink *items = (Riak__RpbLink *)(void *)(ptrs + n);
    for (uint32_t i = 0; i < n; i++) {
        Riak__RpbLink init = RIAK__RPB_LINK__INIT;
        items[i] = init;
        set_opt_bytes(links[i].bucket, &items[i].has_bucket, &items[i].bucket);
        set_opt_bytes(links[i].key, &items[i].has_key, &items[i].key);
        set_opt_bytes(links[i].tag, &items[i].has_tag, &items[i].tag);
        ptrs[i] = &items[i];
    }
    return ptrs;
}

void kvobj_content_to_pb(const store_content_t *c, bool head, Riak__RpbContent *pb)
{
    Riak__RpbContent init = RIAK__RPB_CONTENT__INIT;
    *pb = init;
    pb->has_value = 1; /* required in riak_pb */
    pb->value = bin_of(head ? (store_slice_t){NULL, 0} : c->value);
    set_opt_bytes(c->content_type, &pb->has_content_type, &pb->content_type);
    set_opt_bytes(c->charset, &pb->has_charset, &pb->charset);
    set_opt_bytes(c->content_encoding, &pb->has_content_encoding, &pb->content_encoding);
    set_opt_bytes(c->vtag, &pb->has_vtag, &pb->vtag);
    if (c->last_mod || c->last_mod_usecs) {
        pb->has_last_mod = 1;
        pb->last_mod = c->last_mod;
        pb->has_last_mod_usecs = 1;
        pb->last_mod_usecs = c->last_mod_usecs;
    }
    if (c->deleted) {
        pb->has_deleted = 1;
        pb->deleted = 1;
    }
    pb->usermeta = pairs_to_pb(c->usermeta, c->n_usermeta);
    pb->n_usermeta = c->n_usermeta;
    pb->indexes = pairs_to_pb(c->indexes, c->n_indexes);
    pb->n_indexes = c->n_indexes;
    pb->links = links_to_pb(c->links, c->n_links);
    pb->n_links = c->n_links;
}

void kvobj_pb_content_clear(Riak__RpbContent *pb)
{
    if (!pb)
        return;
    free(pb->usermeta);
    free(pb->indexes);
    free(pb->links);
    pb->usermeta = pb->indexes = NULL;
    pb->links = NULL;
    pb->n_usermeta = pb->n_indexes = pb->n_links = 0;
}

/* ---------------------------------------------------------------- responses */

size_t kvobj_visible_sibs(const store_obj_t *o, bool allow_mult, const store_sib_t **out,
                          size_t max)
{
    if (!o || !o->n_sibs || !max)
        return 0;
    if (!allow_mult) {
        out[0] = store_obj_resolve(o);
        return out[0] ? 1 : 0;
    }
    size_t n = o->n_sibs < max ? o->n_sibs : max;
    for (size_t i = 0; i < n; i++)
        out[i] = o->sibs[i];
    return n;
}

/* RpbGetResp and RpbPutResp carry an object in the same fields (content, vclock); both are
 * built and cleared here. Builds the content array (one block: pointers then structs) and the
 * vclock bytes; on an error nothing is allocated and the fields stay empty. */
static int build_resp_object(const store_obj_t *o, bool allow_mult, bool head,
                             Riak__RpbContent ***content, size_t *n_content,
                             protobuf_c_boolean *has_vclock, ProtobufCBinaryData *vclock)
{
    if (!o)
        return STORE_EINVAL;
    uint8_t *vc = NULL;
    size_t vc_len = 0;
    int rc = store_vclock_encode(&o->clock, &vc, &vc_len);
    if (rc != 0)
        return rc;
    size_t max = o->n_sibs ? o->n_sibs : 1;
    const store_sib_t **sibs = xcalloc(max, sizeof *sibs);
    size_t n = kvobj_visible_sibs(o, allow_mult, sibs, max);
    if (n) {
        Riak__RpbContent **ptrs =
            xcalloc(1, n * (sizeof(Riak__RpbContent *) + sizeof(Riak__RpbContent)));
        Riak__RpbContent *items = (Riak__RpbContent *)(void *)(ptrs + n);
        for (size_t i = 0; i < n; i++) {
            kvobj_content_to_pb(&sibs[i]->c, head, &items[i]);
            ptrs[i] = &items[i];
        }
        *content = ptrs;
        *n_content = n;
    }
    free(sibs);
    *has_vclock = 1;
    vclock->data = vc;
    vclock->len = vc_len;
    return 0;
}

static void clear_resp_object(Riak__RpbContent **content, size_t n_content,
                              protobuf_c_boolean has_vclock, ProtobufCBinaryData vclock)
{
    for (size_t i = 0; i < n_content; i++)
        kvobj_pb_content_clear(content[i]);
    free(content);
    if (has_vclock)
        free(vclock.data);
}

int kvobj_get_resp_build(const store_obj_t *o, bool allow_mult, bool head,
                         Riak__RpbGetResp *resp)
{
    Riak__RpbGetResp init = RIAK__RPB_GET_RESP__INIT;
    *resp = init;
    return build_resp_object(o, allow_mult, head, &resp->content, &resp->n_content,
                             &resp->has_vclock, &resp->vclock);
}

void kvobj_get_resp_clear(Riak__RpbGetResp *resp)
{
    if (!resp)
        return;
    clear_resp_object(resp->content, resp->n_content, resp->has_vclock, resp->vclock);
    Riak__RpbGetResp init = RIAK__RPB_GET_RESP__INIT;
    *resp = init;
}

int kvobj_put_resp_build(const store_obj_t *o, bool allow_mult, bool head,
                         Riak__RpbPutResp *resp)
{
    Riak__RpbPutResp init = RIAK__RPB_PUT_RESP__INIT;
    *resp = init;
    return build_resp_object(o, allow_mult, head, &resp->content, &resp->n_content,
                             &resp->has_vclock, &resp->vclock);
}

void kvobj_put_resp_clear(Riak__RpbPutResp *resp)
{
    if (!resp)
        return;
    clear_resp_object(resp->content, resp->n_content, resp->has_vclock, resp->vclock);
    Riak__RpbPutResp init = RIAK__RPB_PUT_RESP__INIT;
    *resp = init;
}

/* ---------------------------------------------------------------- WriteProps */

void kvobj_props_to_pb(const store_props_t *p, Cairn__Kv__WriteProps *pb)
{
    Cairn__Kv__WriteProps init = CAIRN__KV__WRITE_PROPS__INIT;
    *pb = init;
    pb->has_allow_mult = 1;
    pb->allow_mult = p->allow_mult;
    pb->has_last_write_wins = 1;
    pb->last_write_wins = p->last_write_wins;
    pb->has_small_vclock = 1;
    pb->small_vclock = p->prune.small_vclock;
    pb->has_big_vclock = 1;
    pb->big_vclock = p->prune.big_vclock;
    pb->has_young_vclock = 1;
    pb->young_vclock = p->prune.young_vclock;
    pb->has_old_vclock = 1;
    pb->old_vclock = p->prune.old_vclock;
    pb->has_obj_warn = 1;
    pb->obj_warn = p->obj_warn;
    pb->has_obj_max = 1;
    pb->obj_max = p->obj_max;
    pb->has_sib_warn = 1;
    pb->sib_warn = p->sib_warn;
    pb->has_sib_max = 1;
    pb->sib_max = p->sib_max;
}

void kvobj_props_from_pb(const Cairn__Kv__WriteProps *pb, store_props_t *out)
{
    *out = store_props_default(true);
    if (!pb)
        return;
    if (pb->has_allow_mult)
        out->allow_mult = pb->allow_mult;
    if (pb->has_last_write_wins)
        out->last_write_wins = pb->last_write_wins;
    if (pb->has_small_vclock)
        out->prune.small_vclock = pb->small_vclock;
    if (pb->has_big_vclock)
        out->prune.big_vclock = pb->big_vclock;
    if (pb->has_young_vclock)
        out->prune.young_vclock = pb->young_vclock;
    if (pb->has_old_vclock)
        out->prune.old_vclock = pb->old_vclock;
    if (pb->has_obj_warn)
        out->obj_warn = (size_t)pb->obj_warn;
    if (pb->has_obj_max)
        out->obj_max = (size_t)pb->obj_max;
    if (pb->has_sib_warn)
        out->sib_warn = pb->sib_warn;
    if (pb->has_sib_max)
        out->sib_max = pb->sib_max;
}

/* ---------------------------------------------------------------- vnode requests */

/* Appends a copy of s at *cursor and points d at it. */
static void put_bytes(uint8_t **cursor, store_slice_t s, protobuf_c_boolean *has,
                      ProtobufCBinaryData *d)
{
    *has = 1;
    d->len = s.n;
    d->data = *cursor;
    if (s.n)
        memcpy(*cursor, s.p, s.n);
    *cursor += s.n;
}

typedef struct get_box_s {
    Cairn__Kv__VnodeGetReq req; /* first: the pb pointer is the box */
    uint8_t bytes[];
} get_box_t;

static void box_free(ProtobufCMessage *pb)
{
    free(pb);
}

rt_msg_t *kvobj_vnode_get_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                              store_slice_t key)
{
    get_box_t *box = xcalloc(1, sizeof *box + type.n + bucket.n + key.n);
    cairn__kv__vnode_get_req__init(&box->req);
    box->req.has_partition = 1;
    box->req.partition = partition;
    uint8_t *cur = box->bytes;
    put_bytes(&cur, type, &box->req.has_type, &box->req.type);
    put_bytes(&cur, bucket, &box->req.has_bucket, &box->req.bucket);
    put_bytes(&cur, key, &box->req.has_key, &box->req.key);
    return rt_msg_pb(KV_MSG_VNODE_GET, &box->req.base, box_free);
}

typedef struct put_box_s {
    Cairn__Kv__VnodePutReq req; /* first: the pb pointer is the box */
    Cairn__Kv__WriteProps props;
    uint8_t bytes[];
} put_box_t;

static void put_box_free(ProtobufCMessage *pb)
{
    put_box_t *box = (put_box_t *)(void *)pb;
    if (box->req.content)
        protobuf_c_message_free_unpacked(&box->req.content->base, NULL);
    free(box);
}

static put_box_t *put_box_new(uint32_t partition, store_slice_t type, store_slice_t bucket,
                              store_slice_t key, size_t extra, const store_props_t *props,
                              uint32_t now, uint8_t **cursor)
{
    put_box_t *box = xcalloc(1, sizeof *box + type.n + bucket.n + key.n + extra);
    cairn__kv__vnode_put_req__init(&box->req);
    box->req.has_partition = 1;
    box->req.partition = partition;
    *cursor = box->bytes;
    put_bytes(cursor, type, &box->req.has_type, &box->req.type);
    put_bytes(cursor, bucket, &box->req.has_bucket, &box->req.bucket);
    put_bytes(cursor, key, &box->req.has_key, &box->req.key);
    kvobj_props_to_pb(props, &box->props);
    box->req.props = &box->props;
    box->req.has_now = 1;
    box->req.now = now;
    return box;
}

rt_msg_t *kvobj_vnode_put_coord_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                                    store_slice_t key, Riak__RpbContent *content,
                                    store_slice_t context, const store_props_t *props,
                                    uint32_t now)
{
    uint8_t *cur;
    put_box_t *box = put_box_new(partition, type, bucket, key, context.n, props, now, &cur);
    box->req.has_coordinate = 1;
    box->req.coordinate = 1;
    box->req.content = content;
    if (context.n)
        put_bytes(&cur, context, &box->req.has_context, &box->req.context);
    return rt_msg_pb(KV_MSG_VNODE_PUT, &box->req.base, put_box_free);
}

rt_msg_t *kvobj_vnode_put_replica_msg(uint32_t partition, store_slice_t type,
                                      store_slice_t bucket, store_slice_t key,
                                      store_slice_t object, const store_props_t *props,
                                      uint32_t now, bool read_repair)
{
    uint8_t *cur;
    put_box_t *box = put_box_new(partition, type, bucket, key, object.n, props, now, &cur);
    box->req.has_coordinate = 1;
    box->req.coordinate = 0;
    put_bytes(&cur, object, &box->req.has_object, &box->req.object);
    if (read_repair) {
        box->req.has_read_repair = 1;
        box->req.read_repair = 1;
    }
    return rt_msg_pb(KV_MSG_VNODE_PUT, &box->req.base, put_box_free);
}

typedef struct reap_box_s {
    Cairn__Kv__VnodeReapReq req; /* first: the pb pointer is the box */
    uint8_t bytes[];
} reap_box_t;

rt_msg_t *kvobj_vnode_reap_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                               store_slice_t key, store_slice_t clock)
{
    reap_box_t *box = xcalloc(1, sizeof *box + type.n + bucket.n + key.n + clock.n);
    cairn__kv__vnode_reap_req__init(&box->req);
    box->req.has_partition = 1;
    box->req.partition = partition;
    uint8_t *cur = box->bytes;
    put_bytes(&cur, type, &box->req.has_type, &box->req.type);
    put_bytes(&cur, bucket, &box->req.has_bucket, &box->req.bucket);
    put_bytes(&cur, key, &box->req.has_key, &box->req.key);
    put_bytes(&cur, clock, &box->req.has_clock, &box->req.clock);
    return rt_msg_pb(KV_MSG_VNODE_REAP, &box->req.base, box_free);
}

/* ---------------------------------------------------------------- helpers */

bool kvobj_reply_frame(const rt_msg_t *m, uint8_t *code, const uint8_t **body, size_t *len)
{
    if (!m || m->type != KV_MSG_REPLY || m->size < sizeof(kv_reply_t))
        return false;
    const kv_reply_t *r = (const kv_reply_t *)(const void *)m->data;
    if (r->len < 5 || sizeof(kv_reply_t) + r->len > m->size)
        return false;
    uint32_t wire = (uint32_t)r->frame[0] << 24 | (uint32_t)r->frame[1] << 16 |
                    (uint32_t)r->frame[2] << 8 | r->frame[3];
    if (wire < 1 || (size_t)wire + 4 > r->len)
        return false;
    *code = r->frame[4];
    *body = r->frame + 5;
    *len = wire - 1;
    return true;
}

ProtobufCMessage *kvobj_pb_clone(const ProtobufCMessage *m)
{
    if (!m)
        return NULL;
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = xcalloc(1, len);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}
