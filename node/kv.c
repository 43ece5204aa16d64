/*
 * kv.c — the small shared parts of the KV layer (node/kv.h): reply frames for client
 * connections, the registration of the vnode message types, and request statistics.
 */
#include "node/kv.h"
#include "node/pb_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

rt_msg_t *kv_reply_new(uint64_t req_id, bool more, uint8_t code, const ProtobufCMessage *body)
{
    size_t frame_len = pb_frame_size(body);
    rt_msg_t *m = rt_msg_new(KV_MSG_REPLY, sizeof(kv_reply_t) + frame_len);
    kv_reply_t *r = (kv_reply_t *)(void *)m->data;
    r->req_id = req_id;
    r->more = more ? 1 : 0;
    r->len = (uint32_t)pb_frame_pack(code, body, r->frame);
    return m;
}

rt_msg_t *kv_reply_error(uint64_t req_id, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    enum { FRAME_MAX = sizeof text + 16 };
    rt_msg_t *m = rt_msg_new(KV_MSG_REPLY, sizeof(kv_reply_t) + FRAME_MAX);
    kv_reply_t *r = (kv_reply_t *)(void *)m->data;
    r->req_id = req_id;
    r->more = 0;
    r->len = (uint32_t)pb_error_frame(text, r->frame, FRAME_MAX);
    return m;
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
