/*
 * coord.h — what the get, put and delete coordinators (node/get_fsm.c, put_fsm.c, del_fsm.c)
 * share (prefix coord_):
 *   - admission: coord_admit refuses a request while the node drains or once
 *     max_concurrent_requests requests are alive (kv->inflight; the lister of node/list.c
 *     counts there too); coord_spawn admits and starts the coordinator's process;
 *   - the process's life: coord_init first thing in the behaviour's init, coord_finish to
 *     stop, coord_terminate first thing in its terminate;
 *   - the one reply to the connection (coord_reply, coord_fail: the stats are recorded before
 *     the client can look) and the request's timer (COORD_MSG_TIMEOUT);
 *   - for get and put, which call the vnodes themselves: the key's replica set
 *     (coord_replicas_t: the bucket's properties, the request's N, the preference list and
 *     the vnode calls in flight);
 *   - for put's conditional GET and delete, which compose the other coordinators:
 *     sub-requests through kv_get/kv_put answered to this process.
 *
 * State ownership: each coordinator's state struct holds a coord_t. The coord_t owns the
 * client's request from coord_init until coord_terminate frees it, and the timer;
 * coord_terminate also sends the connection its one reply if none was sent (a crash still
 * answers) and gives back the inflight slot coord_spawn took. A coord_replicas_t owns its
 * replica array (coord_replicas_free); its type/bucket/key slices are borrowed from the
 * request or the coordinator's state and must outlive it.
 */
#ifndef CAIRN_NODE_COORD_H
#define CAIRN_NODE_COORD_H

#include "node/bucket.h"
#include "node/kv.h"
#include "node/quorum.h"

#include <stdbool.h>
#include <stdint.h>

/* Private messages of the coordinators (kv.h: KV_MSG_PRIVATE + 20..49). Each coordinator is
 * its own process, so all three use these two; their own messages start at +22. */
enum {
    COORD_MSG_TIMEOUT = KV_MSG_PRIVATE + 20, /* the request's timer */
    COORD_MSG_KICK = KV_MSG_PRIVATE + 21,    /* wake up to stop (coord_finish) */
};

/* ---------------------------------------------------------------- the process */

typedef struct coord_s {
    kv_node_t *kv;
    kv_op_t op;                  /* which stats the reply counts in */
    rt_pid_t self, reply_to;
    uint64_t req_id, start_ns;
    ProtobufCMessage *req;       /* owned: the client's request */
    uint32_t timeout_ms;         /* the request's time budget (coord_start_timer) */
    rt_timer_t timer;            /* COORD_MSG_TIMEOUT pending (0: none) */
    bool replied, finished;
} coord_t;

/* Admission to the node's request budget (also used by the lister, node/list.c): 0 with one
 * inflight slot taken (give it back with coord_release), or KV_EDRAINING, or KV_EOVERLOAD
 * (counted in stats.overloads) when max_concurrent_requests requests are alive. */
int coord_admit(kv_node_t *kv);
void coord_release(kv_node_t *kv);
/* The body of kv_get/kv_put/kv_del: takes req (ownership, in every case), admits the request
 * and spawns `behaviour`, whose init receives an argument for coord_init. 0 (the reply will
 * come), KV_EDRAINING or KV_EOVERLOAD (no reply will come; counted in stats.overloads). */
int coord_spawn(kv_node_t *kv, const rt_behaviour_t *behaviour, rt_pid_t reply_to,
                uint64_t req_id, ProtobufCMessage *req);
/* Fills c from the init argument coord_spawn passed (c->req is owned from here on). */
void coord_init(coord_t *c, void *arg, kv_op_t op);
/* Arms COORD_MSG_TIMEOUT after the request's timeout (has_timeout/timeout from the request;
 * absent or 0: the node's request_timeout_ms), which is kept in c->timeout_ms. */
void coord_start_timer(coord_t *c, bool has_timeout, uint32_t timeout);
void coord_cancel_timer(coord_t *c);
/* What is left of the request's time budget (at least 1 ms). */
uint32_t coord_remaining_ms(const coord_t *c);
/* Whether handling m ends the request as a timeout: m is COORD_MSG_TIMEOUT (then c->timer is
 * cleared: it fired), or any message handled once the budget is spent with no reply sent
 * yet. A timer fires only when its scheduler polls, so a reply queued while a long handler
 * held that scheduler (the I/O loop runs on scheduler 0) can come before the timer's
 * message; the request still ends as "timeout". */
bool coord_timed_out(coord_t *c, const rt_msg_t *m);

/* Sends the connection its reply (taken), after recording the stats. Once only. */
void coord_reply(coord_t *c, rt_msg_t *reply, bool ok);
/* An RpbErrorResp with text as the reply. */
void coord_reply_error(coord_t *c, const char *text);
/* Stops the process at its next message (a kick is sent to be sure there is one). */
void coord_finish(coord_t *c);
/* The error text as the reply unless one was sent, then stop. */
void coord_fail(coord_t *c, const char *text);
/* The end of the process: "internal error" when no reply was sent, the timer, the request,
 * the inflight slot. */
void coord_terminate(coord_t *c);

/* ---------------------------------------------------------------- the key's replicas */

#define COORD_INLINE_REPLICAS 5

typedef struct coord_replica_s {
    uint32_t partition;
    uint32_t host;               /* member index (in the replica set's state,
                                  * coord_replicas_t.cs) of the node whose vnode holds this
                                  * replica: the partition's owner, or a fallback's host */
    bool local;                  /* hosted by this node */
    bool primary;                /* false: a fallback for the partition's down owner */
    bool answered;
    quorum_reply_t reply;        /* valid once answered */
    rt_ref_t ref;                /* the call in flight (0: none) */
} coord_replica_t;

typedef struct coord_replicas_s {
    store_slice_t type, bucket, key;  /* borrowed */
    const cstate_t *cs;               /* the cluster state the preference list came from
                                       * (borrowed: published states live as long as the node) */
    bucket_props_t props;             /* the bucket's properties */
    uint32_t n;                       /* the request's N */
    coord_replica_t *reps;            /* the preference list: inline_reps or malloc'ed */
    uint32_t n_reps, primaries;
    coord_replica_t inline_reps[COORD_INLINE_REPLICAS];
} coord_replicas_t;

/* A protobuf bytes field as a slice (borrowed; empty when absent). */
store_slice_t coord_slice(protobuf_c_boolean has, ProtobufCBinaryData b);
/* Sets t->type (the request's, or "default" when absent or empty) and t->bucket. 0, or -1
 * with "Bucket cannot be zero-length" in err. */
int coord_replicas_bucket(coord_replicas_t *t, protobuf_c_boolean has_type,
                          ProtobufCBinaryData type, protobuf_c_boolean has_bucket,
                          ProtobufCBinaryData bucket, char *err, size_t errlen);
/* With t->type, bucket and key set: the bucket's properties, the request's N (has_n_val,
 * n_val) and the key's preference list (ring_apl over the nodes the failure detector holds
 * up; with sloppy quorum, has_sloppy ? sloppy : true, down primaries are replaced by
 * fallbacks). 0, or -1 with the client's error in err. */
int coord_replicas_init(coord_replicas_t *t, kv_node_t *kv, protobuf_c_boolean has_n_val,
                        uint32_t n_val, protobuf_c_boolean has_sloppy,
                        protobuf_c_boolean sloppy, char *err, size_t errlen);
void coord_replicas_free(coord_replicas_t *t);

/* The node that hosts replica r (its member name). */
const char *coord_replica_node(const coord_replicas_t *t, const coord_replica_t *r);
/* Calls replica r's vnode with m (taken) from the current process: a local primary by its
 * pid, a remote one by name on its owner's node (rt_call_name), a fallback through its
 * host's vnode starter (VNODE_PROXY_NAME, which starts the fallback vnode on demand and
 * passes the call on). Returns the call's ref, or 0 (m freed) when it cannot be made now:
 * the local vnode is restarting, or the host is down (the failure detector said so: no point
 * waiting for a timeout). The reply, or a CALL_FAILED, comes for a direct call; a call passed
 * on by a proxy whose vnode then dies ends with the request's timer. timeout_ms: RT_INFINITY
 * when the request's timer bounds it. */
rt_ref_t coord_vnode_call(kv_node_t *kv, const coord_replicas_t *t, const coord_replica_t *r,
                          rt_msg_t *m, uint32_t timeout_ms);
/* Whether coord_vnode_call could reach r now (a live local primary vnode, a local fallback,
 * or a host node up). */
bool coord_replica_reachable(kv_node_t *kv, const coord_replicas_t *t, const coord_replica_t *r);

/* The call a message answers: the ref of a reply, or of an RT_MSG_CALL_FAILED notice
 * (*failed = true); 0 for any other message. */
rt_ref_t coord_call_ref(const rt_msg_t *m, bool *failed);
/* The replica whose call in flight is ref, NULL when none (late, or not a vnode call). */
coord_replica_t *coord_replica_by_ref(coord_replicas_t *t, rt_ref_t ref);
/* Marks r answered with reply (its call is over). */
void coord_replica_answered(coord_replica_t *r, quorum_reply_t reply);

/* ---------------------------------------------------------------- sub-requests */

/* Sends a copy of req (borrowed: an RpbGetReq or an RpbPutReq) through kv_get or kv_put,
 * answered to this process with req_id sub_id. true when started; false when it could not
 * be: the coordinator has then failed (coord_fail) with "overload", "The node is shutting
 * down" or "cannot build the sub-request". */
bool coord_submit(coord_t *c, uint64_t sub_id, const ProtobufCMessage *req);
/* True when m is the KV_MSG_REPLY of the sub-request sub_id. */
bool coord_is_sub_reply(const rt_msg_t *m, uint64_t sub_id);
/* The text of an RpbErrorResp body into out[0..outlen); fallback when it has none or does
 * not decode. */
void coord_error_text(const uint8_t *body, size_t len, const char *fallback, char *out,
                      size_t outlen);

#endif
