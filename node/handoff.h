/*
 * handoff.h — ownership handoff (prefix handoff_): moving a partition's data to its next
 * owner after `cluster commit`, before the ring switches the owner.
 *
 * One process per node, the handoff service, registered as HANDOFF_SERVICE_NAME, a
 * permanent child of the node's top supervisor (init arg: the node's kv_node_t *). It is
 * both ends of every transfer:
 *
 *   sending   On HANDOFF_MSG_CHECK (the ring manager sends one every gossip interval) it
 *             looks at the current cluster state: for each partition p this node owns whose
 *             pending next owner X has not been marked done, it starts a sender process
 *             (at most cluster config handoff.concurrency at once; the rest wait). A sender
 *             folds p on the worker pool in bounded chunks (at most HANDOFF_BATCH_OBJECTS
 *             objects or HANDOFF_BATCH_BYTES bytes, values and tombstones included, resumed
 *             strictly after the last key) and calls X's service with each chunk as one
 *             HandoffBatch (proto/kv.proto), waiting for the acknowledgement before folding
 *             the next one. After the last acknowledgement the service sends the ring
 *             manager HANDOFF_MSG_TRANSFER_DONE, which marks the transfer done
 *             (cstate_transfer_done); the claimant's tick then switches the owner. While
 *             the state still shows the transfer not done (a mark lost in a gossip merge),
 *             the service reports it again at every check.
 *   receiving A HandoffBatch for partition p is accepted when this node owns p or is its
 *             next owner (node/vnode.h vnode_should_run; the vnode starter runs vnodes for
 *             both). A short-lived applier process sends every object to the local vnode of
 *             p as a replica write (kvobj_vnode_put_replica_msg: the vnode merges it with
 *             what it holds, store_obj_merge, never a blind overwrite) and answers once all
 *             of them are written.
 *
 * Writes during a transfer. Until the owner switches, requests keep going to the old owner,
 * which keeps serving p, so a write can land on the old owner after the sender folded past
 * its key. To carry those over, once the ring shows the new owner the service runs one more
 * full pass over p (a sweep) to the new owner. What remains open: a write that a
 * coordinator sent to the old owner under the old ring and that arrives after the sweep
 * folded past its key stays only on the old owner (read repair does not look there any
 * more); a node that restarts between the done mark and the switch forgets to sweep.
 *
 * Failures never hang a slot: every batch call is bounded (HANDOFF_CALL_MS), a receiver that
 * dies or whose link drops ends the call at once, and any failure ends the sender; the
 * transfer then starts over from the beginning after a back-off (1 s doubling up to 30 s).
 * Re-sending is harmless: the merge is idempotent.
 *
 * Not done here (follow-ups): the old owner keeps its copy of p after the switch (dropping
 * it, and stopping its vnode, is the next step); hinted handoff; rates and the other nodes'
 * transfers in `cairn-admin transfers` (it shows the asked node's own, handoff_activity);
 * changing the limit at run time; the limit counts outbound transfers only.
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

/* This node's handoff activity, for `cairn-admin transfers`: one line per partition being
 * sent, swept, or handed off and waiting for the switch (partition, target, phase, objects
 * and bytes sent), written into buf (truncated to len, NUL-terminated when len > 0).
 * Returns the number of such partitions (0: nothing in progress here). Any thread. */
size_t handoff_activity(char *buf, size_t len);

/* The service's behaviour; init arg: kv_node_t * (borrowed, must outlive the process). */
extern const rt_behaviour_t handoff_service_behaviour;

#endif
