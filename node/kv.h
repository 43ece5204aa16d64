/*
 * kv.h — the node's key/value service as its callers see it (prefix kv_): the shared node
 * context, the message types of the KV layer, and the entry points a client connection
 * calls for each request.
 *
 * Request flow: a connection process (node/pb_conn.c) decodes and validates a request
 * (bucket and key present and non-empty), then calls one kv_* entry point with its own pid
 * and a request id. The entry point starts the work (a coordinator process, a listing) and
 * returns at once. The answer comes back to the connection as KV_MSG_REPLY messages whose
 * payload is a ready-to-write client-protocol frame:
 *   - get, put, delete: exactly one reply (more = 0), success or error, within the request's
 *     timeout plus a small margin; never zero replies;
 *   - list keys, list buckets: replies with more = 1 then one with more = 0. After each
 *     more = 1 reply the connection sends KV_MSG_STREAM_ACK to the reply's sender (m->from)
 *     once the bytes are on their way (back-pressure); the lister sends nothing more until
 *     then. A connection that goes away simply stops acking: the lister times out and ends.
 *
 * Threads: the entry points may be called from any process; kv_node_t is shared read-only
 * after start (its counters are atomic).
 */
#ifndef CAIRN_NODE_KV_H
#define CAIRN_NODE_KV_H

#include "node/config.h"
#include "proto/kv.pb-c.h"
#include "proto/riak.pb-c.h"
#include "ring/cstate.h"
#include "ring/ring.h"
#include "runtime/rt.h"
#include "storage/backend.h"
#include "storage/cache.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---------------------------------------------------------------- message types */
enum {
    KV_MSG_BASE = RT_MSG_USER + 200,
    KV_MSG_REPLY = KV_MSG_BASE,      /* kv_reply_t payload (plain bytes) */
    KV_MSG_STREAM_ACK,               /* no payload: connection -> lister */
    /* vnode requests (rt_call) and replies: protobuf, see proto/kv.proto */
    KV_MSG_VNODE_GET,                /* Cairn__Kv__VnodeGetReq */
    KV_MSG_VNODE_GET_RESP,           /* Cairn__Kv__VnodeGetResp */
    KV_MSG_VNODE_PUT,                /* Cairn__Kv__VnodePutReq */
    KV_MSG_VNODE_PUT_RESP,           /* Cairn__Kv__VnodePutResp */
    KV_MSG_VNODE_REAP,               /* Cairn__Kv__VnodeReapReq */
    KV_MSG_VNODE_REAP_RESP,          /* Cairn__Kv__VnodeReapResp */
    KV_MSG_VNODE_CRASH,              /* Cairn__Kv__VnodeCrashReq (plain send, no reply) */
    KV_MSG_PRIVATE = KV_MSG_BASE + 100 /* modules number their internal messages from here:
                                        * vnode.c +0..19, get/put/del fsm +20..49,
                                        * list.c +50..69, node.c/admin +70..99
                                        * (replica_probe.c +85),
                                        * pb_conn.c/listener.c +100..119,
                                        * handoff.c +120..139,
                                        * anti_entropy.c +140..149 */
};

/* Registers the protobuf descriptors of every KV_MSG_* type with the runtime (call once at
 * start, before any vnode or coordinator runs). */
void kv_register_msgs(void);

/* ---------------------------------------------------------------- replies to connections */
typedef struct kv_reply_s {
    uint64_t req_id;
    uint32_t more;            /* 1: more replies of this stream follow */
    uint32_t len;             /* bytes at frame */
    unsigned char frame[];    /* one or more complete client-protocol frames */
} kv_reply_t;

/* A reply carrying one frame: message code `code` with `body` encoded (NULL: no body).
 * body is borrowed. */
rt_msg_t *kv_reply_new(uint64_t req_id, bool more, uint8_t code, const ProtobufCMessage *body);
/* An RpbErrorResp reply (errcode 0, as Riak sends); the text is printf-formatted. */
rt_msg_t *kv_reply_error(uint64_t req_id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- stats */
typedef enum { KV_OP_GET, KV_OP_PUT, KV_OP_DEL, KV_OP_LIST, KV_OP_COUNT } kv_op_t;
#define KV_LAT_BUCKETS 64
typedef struct kv_stats_s {
    _Atomic uint64_t ops[KV_OP_COUNT];          /* completed requests */
    _Atomic uint64_t errors[KV_OP_COUNT];       /* of which answered with an error */
    _Atomic uint64_t lat_hist[KV_OP_COUNT][KV_LAT_BUCKETS]; /* log2 µs buckets */
    _Atomic uint64_t read_repairs;
    _Atomic uint64_t tombstones_reaped;
    _Atomic uint64_t overloads;
    _Atomic uint64_t vnode_crashes;
    _Atomic uint64_t ae_passes;                 /* anti-entropy partition passes done */
    _Atomic uint64_t ae_keys;                   /* keys the sweeps checked */
} kv_stats_t;
void kv_stats_record(kv_stats_t *s, kv_op_t op, uint64_t start_ns, bool ok);

/* ---------------------------------------------------------------- the node context */
typedef struct vnode_table_s vnode_table_t;   /* node/vnode.h */
typedef struct bucket_store_s bucket_store_t; /* node/bucket.h */
typedef struct write_queue_s write_queue_t;   /* node/write_queue.h */

/* The published cluster state: the ring manager (node/ring_mgr.c) installs each new state
 * with kv_publish; readers on any thread take kv_cstate/kv_ring without a reference count.
 * So a state is never freed while the node runs: replaced states are kept on a list until
 * kv_states_free at node stop (membership changes are rare, so the list stays short). */
typedef struct kv_states_s kv_states_t;

typedef struct kv_node_s {
    const node_config_t *cfg;
    kv_states_t *states;          /* kv_states_new; the current state and the replaced ones */
    uint64_t node_id;             /* 64-bit hash of the node name: the node part of actors */
    store_engine_t *engine;       /* shared by every vnode's backend */
    vnode_table_t *vnodes;        /* partition -> current vnode pid */
    write_queue_t *writes;        /* the writer thread of vnodes' puts (NULL: they write inline) */
    bucket_store_t *buckets;      /* bucket properties */
    kv_stats_t stats;
    store_cache_budget_t obj_cache; /* every vnode's object cache (vnode.cache_size) */
    _Atomic uint32_t inflight;    /* coordinators alive (max_concurrent_requests) */
    _Atomic bool draining;        /* shutting down: new requests get an error */
} kv_node_t;

/* The published states: kv_states_new at start (takes first, which must not be NULL);
 * kv_publish installs s (taken) as the current state; kv_states_free frees them all (only
 * once nothing can read them: after the runtime stopped). */
kv_states_t *kv_states_new(cstate_t *first);
void kv_publish(kv_node_t *kv, cstate_t *s);
void kv_states_free(kv_states_t *st);
/* The current cluster state and its ring (owners, member names); valid while the node runs. */
const cstate_t *kv_cstate(const kv_node_t *kv);
const ring_t *kv_ring(const kv_node_t *kv);
/* This node's member index in s (CSTATE_NONE when s does not list it). */
uint32_t kv_self_member(const kv_node_t *kv, const cstate_t *s);

/* Error codes of the entry points (no reply is sent when one is returned). */
#define KV_EOVERLOAD (-1)   /* reply "overload" yourself */
#define KV_EDRAINING (-2)   /* the node is stopping */

/* ---------------------------------------------------------------- entry points
 * Each takes ownership of req (freed with protobuf_c_message_free_unpacked(req, NULL)) in
 * every case, and returns 0 (the reply will come) or KV_E* (no reply will come).
 * node/get_fsm.c, put_fsm.c, del_fsm.c: */
int kv_get(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbGetReq *req);
int kv_put(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbPutReq *req);
int kv_del(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbDelReq *req);
/* node/list.c: every partition is folded on the node that owns it (another node's through
 * its list fold service, node/list.h); a partition that cannot be reached ends the listing
 * with an error, never a partial answer. */
int kv_list_keys(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id, Riak__RpbListKeysReq *req);
int kv_list_buckets(kv_node_t *kv, rt_pid_t reply_to, uint64_t req_id,
                    Riak__RpbListBucketsReq *req);
/* node/bucket.c: bucket properties are answered at once (a table lookup, or a small
 * durable file write for set/reset); the returned message is the reply. req is borrowed. */
rt_msg_t *kv_bucket_get(kv_node_t *kv, uint64_t req_id, const Riak__RpbGetBucketReq *req);
rt_msg_t *kv_bucket_set(kv_node_t *kv, uint64_t req_id, const Riak__RpbSetBucketReq *req);
rt_msg_t *kv_bucket_reset(kv_node_t *kv, uint64_t req_id, const Riak__RpbResetBucketReq *req);
rt_msg_t *kv_bucket_type_get(kv_node_t *kv, uint64_t req_id,
                             const Riak__RpbGetBucketTypeReq *req);
rt_msg_t *kv_bucket_type_set(kv_node_t *kv, uint64_t req_id,
                             const Riak__RpbSetBucketTypeReq *req);

#endif
