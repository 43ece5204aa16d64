/*
 * node.h — a running cairnd node (prefix node_): the data dir, the ring, the cookie, the
 * runtime with distribution, and the supervision tree of DESIGN.md:
 *
 *   top supervisor "cairn_sup" (one_for_one)
 *   ├─ vnodes (one_for_all)
 *   │  ├─ vnode supervisor "cairn_vnode_sup" (simple_one_for_one) ── one vnode per partition
 *   │  └─ vnode starter "cairn_vnode_starter" (a vnode for every partition this node owns or
 *   │     is taking over, at every (re)start of the group and on every ring change)
 *   ├─ ring manager "cairn_ring" (node/ring_mgr.h: cluster state, gossip, cluster commands)
 *   ├─ list fold service "cairn_list_fold" (node/list.h)
 *   ├─ handoff service "cairn_handoff" (node/handoff.h)
 *   ├─ admin endpoint "cairn_admin"
 *   └─ client listener ── one connection process per client socket
 *
 * Started children come up in that order and stop in reverse (listener first, vnodes last).
 * One node per OS process (the runtime is per process).
 */
#ifndef CAIRN_NODE_NODE_H
#define CAIRN_NODE_NODE_H

#include "node/config.h"
#include "node/kv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_VERSION "0.4.0"
#define NODE_DRAIN_MS 10000u /* bound on draining client connections at stop */

typedef struct node_s node_t;

/* Starts the node with a copy of cfg (already validated). Creates the data dir if needed and
 * takes its lock, resolves the cookie (cfg->cookie, else <data_dir>/cookie, else a new random
 * one written there with mode 0600), loads or creates <data_dir>/ring (a ring_size that
 * differs from the saved ring's is refused), starts the runtime with distribution under
 * cfg->nodename, opens storage and bucket properties, and starts the supervision tree.
 * Returns once every vnode and the client listener are up: 0 with *out; NODE_ECONFIG when
 * the configuration conflicts with the data dir (ring_size); -1 when the node cannot start
 * (data dir in use, address taken, storage error...). On failure a one-line reason is in
 * err and everything already started is stopped again. Call from main. */
#define NODE_ECONFIG (-2)
int node_start(const node_config_t *cfg, node_t **out, char *err, size_t errlen);

/* Stops the node and frees it: new requests are refused (kv->draining), the client listener
 * drains (no new clients; each connection finishes the request in progress, at most
 * NODE_DRAIN_MS), then the rest of the tree stops in order (admin endpoint, vnodes), storage
 * is closed, the runtime stopped and the data dir unlocked. Call from main. */
void node_stop(node_t *n);

/* Waits up to timeout_ms for the supervision tree to end on its own (a supervisor gave up:
 * restart intensity exceeded). true with *reason (an RT_R_* exit reason) if it ended. */
bool node_wait_down(node_t *n, uint32_t timeout_ms, int *reason);

/* The effective configuration (cookie resolved, storage.data_dir set). */
const node_config_t *node_config(const node_t *n);
/* The client listener's bound port (the real one when listener.protobuf asked for port 0). */
int node_client_port(const node_t *n);
kv_node_t *node_kv(node_t *n);

#endif
