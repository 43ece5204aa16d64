/*
 * kv.c — the small shared parts of the KV layer (node/kv.h): reply frames for client
 * connections, the registration of the vnode message types, and request statistics.
 */
#include "node/kv.h"
#include "node/pb_codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
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

/* ---------------------------------------------------------------- published states */

struct kv_states_s {
    _Atomic(const cstate_t *) current;
    pthread_mutex_t lock;   /* guards the list below (writers only) */
    cstate_t **all;         /* every state ever published, the current one included */
    size_t n, cap;
};

kv_states_t *kv_states_new(cstate_t *first)
{
    kv_states_t *st = calloc(1, sizeof *st);
    if (!st || !first)
        abort();
    pthread_mutex_init(&st->lock, NULL);
    st->cap = 8;
    st->all = calloc(st->cap, sizeof *st->all);
    if (!st->all)
        abort();
    st->all[st->n++] = first;
    atomic_store_explicit(&st->current, first, memory_order_release);
    return st;
}

void kv_publish(kv_node_t *kv, cstate_t *s)
{
    kv_states_t *st = kv->states;
    pthread_mutex_lock(&st->lock);
    if (st->n == st->cap) {
        size_t cap = st->cap * 2;
        cstate_t **all = realloc(st->all, cap * sizeof *all);
        if (!all)
            abort();
        st->all = all;
        st->cap = cap;
    }
    st->all[st->n++] = s;
    atomic_store_explicit(&st->current, s, memory_order_release);
    pthread_mutex_unlock(&st->lock);
}

void kv_states_free(kv_states_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        cstate_free(st->all[i]);
    free(st->all);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

const cstate_t *kv_cstate(const kv_node_t *kv)
{
    return atomic_load_explicit(&kv->states->current, memory_order_acquire);
}

const ring_t *kv_ring(const kv_node_t *kv)
{
    return cstate_ring(kv_cstate(kv));
}

uint32_t kv_self_member(const kv_node_t *kv, const cstate_t *s)
{
    return cstate_member_index(s, kv->cfg->nodename);
}
