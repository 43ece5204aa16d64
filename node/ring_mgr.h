/*
 * ring_mgr.h — the ring manager (prefix ring_mgr_): the one process per node, registered as
 * "cairn_ring", that owns this node's copy of the cluster state (ring/cstate.h). It
 *   - installs every new state: saves the ring file first, then publishes it to the node's
 *     readers (kv_publish) and asks the vnode starter to start vnodes for partitions the
 *     node now owns;
 *   - gossips (ring/gossip.h): pushes a changed state to random members at once and one
 *     random member every cluster.gossip_interval, merges what it receives, answers state
 *     requests, tells removed nodes they are out;
 *   - keeps node links to every member up (the runtime's heartbeats then tell liveness);
 *   - runs the cluster commands of cairn-admin (proto/admin.proto): join here; leave,
 *     force-remove, replace, force-replace, plan, commit and clear on the claimant (forwarded
 *     there by any other node); down; member-status, ring-status, ringready, transfers;
 *   - on the claimant, runs the claimant tick every cluster.claimant_tick;
 *   - stops the node (SIGTERM to itself) once it has been removed from the cluster, after
 *     writing a fresh single-node ring so the data dir starts over as a node of its own.
 *
 * A pending transfer is carried out by the handoff service (node/handoff.h), which the ring
 * manager prompts every gossip interval; when the last batch is acknowledged the service
 * reports it and the ring manager marks the transfer done (the claimant then moves
 * ownership).
 */
#ifndef CAIRN_NODE_RING_MGR_H
#define CAIRN_NODE_RING_MGR_H

#include "node/kv.h"

#define RING_MGR_NAME "cairn_ring"

typedef struct ring_mgr_args_s {
    kv_node_t *kv;          /* kv->states holds the state loaded at start */
    char ring_path[4096];   /* the ring file */
} ring_mgr_args_t;

/* The behaviour for node.c's tree (arg: ring_mgr_args_t *, which must outlive it). */
extern const rt_behaviour_t ring_mgr_behaviour;

/* Message to the vnode starter: the published state changed, start what is missing. */
#define RING_MGR_MSG_VNODES_CHANGED (KV_MSG_PRIVATE + 76)

#endif
