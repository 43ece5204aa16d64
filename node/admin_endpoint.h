/*
 * admin_endpoint.h — the node's admin endpoint (prefix admin_endpoint_): a process
 * registered as "cairn_admin" that answers cairn-admin over the authenticated node link.
 *
 * Requests and replies are proto/admin.proto messages carried as plain payloads (the packed
 * bytes; message types CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST / _RESPONSE). Each request gets
 * exactly one AdminResp, sent to the request's sender pid: ping, status (request counts and
 * latency percentiles from kv->stats, vnodes, connected nodes, uptime) and crash-vnode (the
 * debug hook that sends KV_MSG_VNODE_CRASH to one vnode so tests can prove restarts).
 * A malformed request is answered with ok = false when it has a sender, else dropped.
 */
#ifndef CAIRN_NODE_ADMIN_ENDPOINT_H
#define CAIRN_NODE_ADMIN_ENDPOINT_H

#include "node/kv.h"
#include "proto/admin.pb-c.h"

#include <stdatomic.h>

#define ADMIN_ENDPOINT_NAME "cairn_admin"

/* What the endpoint reads; owned by the node, outlives the endpoint. */
typedef struct admin_ctx_s {
    kv_node_t *kv;
    uint64_t started_ns;     /* rt_now_ns() when the node started */
    const char *version;     /* CAIRN_VERSION */
    _Atomic int client_port; /* the client listener's bound port (0 until known) */
} admin_ctx_t;

/* The endpoint's behaviour; init arg: admin_ctx_t * (borrowed). A supervisor child. */
extern const rt_behaviour_t admin_endpoint_behaviour;

/* An AdminResp header: req_id, ok, this node's name and `version` (borrowed, as the node
 * name). Also used by the processes the endpoint starts (replica_probe.c). */
void admin_resp_init(Cairn__Admin__AdminResp *r, const char *version, uint64_t req_id, bool ok);
/* Packs resp into an ADMIN_RESPONSE message to `to`. */
void admin_send_resp(rt_pid_t to, const Cairn__Admin__AdminResp *resp);

#endif
