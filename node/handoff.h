/*
 * handoff.h — handoff (prefix handoff_): moving a partition's data to the node that should
 * hold it. Two kinds, one mechanism:
 *   - ownership handoff: after `cluster commit`, each partition this node owns whose
 *     pending next owner is another node is transferred there before the ring switches the
 *     owner;
 *   - handing off a foreign vnode: a vnode running here for a partition this node neither
 *     owns nor is to own, that is a fallback vnode (started on demand by a sloppy quorum
 *     while the owner was down) or an old owner's vnode after the switch, hands its data to
 *     the owner as soon as the owner is up, deletes what the owner acknowledged, and
 *     retires (it stops and its directory is removed) once it is empty.
 *
 * One process per node, the handoff service, registered as HANDOFF_SERVICE_NAME, a
 * permanent child of the node's top supervisor (init arg: the node's kv_node_t *). It is
 * both ends of every transfer:
 *
 *   sending   On HANDOFF_MSG_CHECK (the ring manager sends one every gossip interval and
 *             whenever a node comes up or the state changes) it looks at the current cluster
 *             state and starts a sender process per partition that has work, at most
 *             handoff_limit() at once (the rest wait for a free slot). A sender folds the
 *             partition on the worker pool in bounded chunks (at most HANDOFF_BATCH_OBJECTS
 *             objects or HANDOFF_BATCH_BYTES bytes, values and tombstones included, resumed
 *             strictly after the last key) and calls the target's service with each chunk
 *             as one HandoffBatch (proto/kv.proto), waiting for the acknowledgement before
 *             folding the next one.
 *               ownership: after the last acknowledgement the service sends the ring
 *             manager HANDOFF_MSG_TRANSFER_DONE, which marks the transfer done
 *             (cstate_transfer_done); the claimant's tick then switches the owner. While the
 *             state still shows the transfer not done, the service reports it again.
 *               foreign vnode: after each acknowledgement the sender asks the local vnode to
 *             drop the batch (VNODE_MSG_DROP: each object is deleted only if its stored bytes
 *             are still the ones sent, so a write that landed since stays); after the last,
 *             the service asks the vnode to retire (VNODE_MSG_RETIRE), which it does only
 *             when it is empty, else another pass follows.
 *   receiving A HandoffBatch for partition p is accepted when this node owns p or is its
 *             next owner (node/vnode.h vnode_should_run). A short-lived applier process sends
 *             every object to the local vnode of p as a replica write
 *             (kvobj_vnode_put_replica_msg: the vnode merges it with what it holds,
 *             store_obj_merge, never a blind overwrite) and answers once all are written.
 *
 * Writes during a handoff. Until the owner switches, requests go to the old owner, which
 * keeps serving p; after the switch, coordinators still on the old ring may write to it for
 * a moment. Its vnode is then foreign: every write that reached it is handed off by the
 * passes above before it retires, and a write that arrives after it retired is refused (the
 * coordinator counts a failed replica; nothing acknowledged is lost). Writes that reach a
 * fallback during its handoff are handed off by the next pass the same way.
 *
 * Failures never hang a slot: every batch call is bounded (HANDOFF_CALL_MS), a receiver that
 * dies or whose link drops ends the call at once, and any failure ends the sender; the
 * transfer starts over from the beginning after a back-off (1 s doubling up to 30 s).
 * Re-sending is harmless: the merge is idempotent.
 */
#ifndef CAIRN_NODE_HANDOFF_H
#define CAIRN_NODE_HANDOFF_H

#include "node/kv.h"
#include "ring/ring.h"

#define HANDOFF_SERVICE_NAME "cairn_handoff"

#define HANDOFF_BATCH_OBJECTS 500u      /* objects per batch at most ... */
#define HANDOFF_BATCH_BYTES (1u << 20)  /* ... or this many bytes of objects (one object may
                                         * exceed it alone) */
#define HANDOFF_CALL_MS 60000u          /* bound on one batch call */

/* Message types: handoff.c's private range of node/kv.h, KV_MSG_PRIVATE + 120..139. */
enum {
    HANDOFF_MSG_BATCH = KV_MSG_PRIVATE + 120,      /* call: packed Cairn__Kv__HandoffBatch */
    HANDOFF_MSG_BATCH_RESP = KV_MSG_PRIVATE + 121, /* reply: packed Cairn__Kv__HandoffBatchResp */
    HANDOFF_MSG_CHECK = KV_MSG_PRIVATE + 122,      /* ring manager -> service: look for work */
    HANDOFF_MSG_TRANSFER_DONE = KV_MSG_PRIVATE + 123, /* service -> ring manager (local) */
};

/* Payload of HANDOFF_MSG_TRANSFER_DONE (local only, plain bytes): partition's data is
 * across to target. */
typedef struct handoff_done_s {
    uint32_t partition;
    char target[RING_NODE_NAME_MAX];
} handoff_done_t;

/* One transfer running or waiting here (handoff_activity). */
typedef struct handoff_activity_s {
    uint32_t partition;
    char target[RING_NODE_NAME_MAX];
    char kind[32];           /* "ownership", "ownership (final pass)" or "hinted" */
    char state[48];          /* "sending", "sent; waiting for the ownership switch", ... */
    uint64_t objects, bytes; /* sent so far by the running (or last) sender */
    uint64_t elapsed_ms;     /* since that sender started */
} handoff_activity_t;

/* This node's handoff activity, for `cairn-admin transfers`: up to max entries into out (in
 * partition order); returns how many there are (may exceed max). Any thread. */
size_t handoff_activity(handoff_activity_t *out, size_t max);

/* The outbound transfer limit in effect (handoff.concurrency, or the last handoff_set_limit),
 * and a change of it at run time (`cairn-admin transfer-limit`; limit >= 1): transfers above
 * it finish, no new one starts until the count drops below it. Any thread. */
uint32_t handoff_limit(const kv_node_t *kv);
void handoff_set_limit(uint32_t limit);

/* How many vnodes run here for partitions this node neither owns nor is to own (fallbacks
 * and old owners' vnodes, whose data has not been handed off and retired yet). Any thread. */
uint32_t handoff_foreign_vnodes(const kv_node_t *kv);

/* The service's behaviour; init arg: kv_node_t * (borrowed, must outlive the process). */
extern const rt_behaviour_t handoff_service_behaviour;

#endif
