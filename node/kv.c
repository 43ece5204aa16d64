/*
 * kv.c — the small shared parts of the KV layer (node/kv.h): reply frames for client
 * connections, the registration of the vnode message types, and request statistics.
 */
#include "node/kv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PB_CODE_ERROR_RESP 0

rt_msg_t *kv_reply_new(uint64_t req_id, bool more, uint8_t code, const ProtobufCMessage *body)
{
    size_t body_len = body ? protobuf_c_message_get_packed_size(body) : 0;
    size_t frame_len = 5 + body_len;
    rt_msg_t *m = rt_msg_new(KV_MSG_REPLY, sizeof(kv_reply_t) + frame_len);
    kv_reply_t *r = (kv_reply_t *)(void *)m->data;
    r->req_id = req_id;
    r->more = more ? 1 : 0;
    r->len = (uint32_t)frame_len;
    uint32_t wire_len = (uint32_t)(body_len + 1); /* the length counts the code byte */
    r->frame[0] = (unsigned char)(wire_len >> 24);
    r->frame[1] = (unsigned char)(wire_len >> 16);
    r->frame[2] = (unsigned char)(wire_len >> 8);
    r->frame[3] = (unsigned char)wire_len;
    r->frame[4] = code;
    if (body_len)
        protobuf_c_message_pack(body, r->frame + 5);
    return m;
}

rt_msg_t *kv_reply_error(uint64_t req_id, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof text)
        n = (int)sizeof text - 1;
    Riak__RpbErrorResp err = RIAK__RPB_ERROR_RESP__INIT;
    err.has_errmsg = 1;
    err.errmsg.data = (uint8_t *)text;
    err.errmsg.len = (size_t)n;
    err.has_errcode = 1; /* riak_pb marks it required; Riak always sends 0 */
    err.errcode = 0;
    return kv_reply_new(req_id, false, PB_CODE_ERROR_RESP, &err.base);
}

void kv_register_msgs(void)
{
    rt_msg_register_pb(KV_MSG_VNODE_GET, &cairn__kv__vnode_get_req__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_GET_RESP, &cairn__kv__vnode_get_resp__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_PUT, &cairn__kv__vnode_put_req__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_PUT_RESP, &cairn__kv__vnode_put_resp__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_REAP, &cairn__kv__vnode_reap_req__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_REAP_RESP, &cairn__kv__vnode_reap_resp__descriptor);
    rt_msg_register_pb(KV_MSG_VNODE_CRASH, &cairn__kv__vnode_crash_req__descriptor);
}

void kv_stats_record(kv_stats_t *s, kv_op_t op, uint64_t start_ns, bool ok)
{
    uint64_t us = (rt_now_ns() - start_ns) / 1000;
    unsigned bucket = 0;
    while (us > 1 && bucket < KV_LAT_BUCKETS - 1) {
        us >>= 1;
        bucket++;
    }
    atomic_fetch_add_explicit(&s->ops[op], 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&s->errors[op], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat_hist[op][bucket], 1, memory_order_relaxed);
}
