/*
 * msg.c — messages: allocation from per-thread size-class caches (bypassed with
 * RT_POOL_MALLOC so sanitizers see every allocation), protobuf-carrying messages, the
 * registry of descriptors that decode remote messages, and freeing.
 *
 * A message's cls_ records its size class, so any thread frees any message without knowing
 * its type; a freed block goes to the freeing thread's cache (bounded, then to malloc).
 */
#include "runtime/rt_internal.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>

#define POOL_CLASSES 6 /* 128, 256, 512, 1024, 2048, 4096 bytes in all */
#define POOL_CACHE_MAX 4096
#define CLS_MALLOC 0xffff

typedef struct pool_free { struct pool_free *next; } pool_free_t;
typedef struct pool_cache {
    pool_free_t *head[POOL_CLASSES];
    uint32_t count[POOL_CLASSES];
} pool_cache_t;

static _Thread_local pool_cache_t pool_tls;

static inline unsigned size_class(size_t total)
{
#ifdef RT_POOL_MALLOC
    (void)total;
    return CLS_MALLOC;
#else
    if (total <= 128)
        return 0;
    if (total > 4096)
        return CLS_MALLOC;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(total - 1))) - 7;
#endif
}

static inline void *pool_alloc(unsigned cls, size_t total)
{
    if (cls == CLS_MALLOC)
        return rt__xmalloc(total);
    pool_free_t *f = pool_tls.head[cls];
    if (f) {
        pool_tls.head[cls] = f->next;
        pool_tls.count[cls]--;
        return f;
    }
    return rt__xmalloc((size_t)128 << cls);
}

static inline void pool_release(unsigned cls, void *p)
{
    if (cls == CLS_MALLOC || pool_tls.count[cls] >= POOL_CACHE_MAX) {
        free(p);
        return;
    }
    pool_free_t *f = p;
    f->next = pool_tls.head[cls];
    pool_tls.head[cls] = f;
    pool_tls.count[cls]++;
}

void rt__pool_thread_flush(void)
{
    for (unsigned c = 0; c < POOL_CLASSES; c++) {
        pool_free_t *f = pool_tls.head[c];
        while (f) {
            pool_free_t *n = f->next;
            free(f);
            f = n;
        }
        pool_tls.head[c] = NULL;
        pool_tls.count[c] = 0;
    }
}

rt_msg_t *rt_msg_new(uint32_t type, size_t size)
{
    size_t total = sizeof(rt_msg_t) + size;
    unsigned cls = size_class(total);
    rt_msg_t *m = pool_alloc(cls, total);
    m->type = type;
    m->size = (uint32_t)size;
    m->from = rt_self();
    m->to_serial_ = 0;
    m->flags = 0;
    m->cls_ = (uint16_t)cls;
    m->ref = 0;
    m->dtor = NULL;
    return m;
}

rt_msg_t *rt_msg_copy(uint32_t type, const void *data, size_t size)
{
    rt_msg_t *m = rt_msg_new(type, size);
    if (size)
        memcpy(m->data, data, size);
    return m;
}

rt_msg_t *rt__sig_new(uint32_t type, rt_pid_t from, size_t size)
{
    rt_msg_t *m = rt_msg_new(type, size);
    m->from = from;
    return m;
}

/* The payload of a PB message: the message pointer and how to free it. */
typedef struct pb_payload {
    ProtobufCMessage *pb;
    void (*free_pb)(ProtobufCMessage *);
} pb_payload_t;

static void pb_dtor(rt_msg_t *m)
{
    pb_payload_t *p = (pb_payload_t *)(void *)m->data;
    if (!p->pb)
        return;
    if (p->free_pb)
        p->free_pb(p->pb);
    else
        protobuf_c_message_free_unpacked(p->pb, NULL);
}

rt_msg_t *rt_msg_pb(uint32_t type, ProtobufCMessage *pb, void (*free_pb)(ProtobufCMessage *))
{
    rt_msg_t *m = rt_msg_new(type, sizeof(pb_payload_t));
    pb_payload_t *p = (pb_payload_t *)(void *)m->data;
    p->pb = pb;
    p->free_pb = free_pb;
    m->flags |= RT_MSGF_PB;
    m->dtor = pb_dtor;
    return m;
}

void rt_msg_free(rt_msg_t *m)
{
    if (!m)
        return;
    if (m->dtor)
        m->dtor(m);
    pool_release(m->cls_, m);
}

void rt_msg_keep(rt_msg_t *m)
{
    if (rt__tls.cur_msg == m)
        rt__tls.cur_msg = NULL;
}

/* ------------------------------------------------------------------ PB descriptor registry */

#define PB_TYPES_MAX 4096
static const ProtobufCMessageDescriptor *_Atomic pb_types[PB_TYPES_MAX];

int rt_msg_register_pb(uint32_t type, const ProtobufCMessageDescriptor *d)
{
    if (type < RT_MSG_USER || type - RT_MSG_USER >= PB_TYPES_MAX || !d)
        return RT_EINVAL;
    atomic_store(&pb_types[type - RT_MSG_USER], d);
    return 0;
}

const ProtobufCMessageDescriptor *rt_msg_descriptor(uint32_t type)
{
    if (type < RT_MSG_USER || type - RT_MSG_USER >= PB_TYPES_MAX)
        return NULL;
    return atomic_load_explicit(&pb_types[type - RT_MSG_USER], memory_order_acquire);
}
