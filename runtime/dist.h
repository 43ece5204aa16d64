/*
 * dist.h — distribution: transparent messaging between runtimes in different OS processes.
 *
 * A node is named "name@host:port" and listens on host:port (rt_config.node_name) with a
 * shared-secret cookie (rt_config.cookie). Sending to a remote pid, or to a registered name
 * on another node (rt_send_name), is the same call as a local send; the first send to a node
 * connects to it. One TCP connection per node pair, authenticated by HMAC-SHA256
 * challenge/response on the cookie (a peer with a wrong cookie is refused and logged).
 * Frames are a 4-byte big-endian length and a protobuf (proto/rt_dist.proto).
 *
 * Calls work across nodes, to a pid (rt_call) or to a registered name (rt_call_name: the
 * receiving node resolves the name and monitors that process for the caller).
 *
 * Links and monitors work across nodes; when a node link drops (closed, or silent for
 * net_timeout_ms: heartbeats every heartbeat_ms), every link to a pid there delivers an exit
 * signal and every monitor a DOWN with RT_R_NOCONNECTION, and node monitors get NODEDOWN.
 *
 * Only messages made with rt_msg_pb (whose type has a descriptor registered on the
 * receiving node with rt_msg_register_pb) or with a plain pointer-free payload
 * (rt_msg_new / rt_msg_copy: the bytes travel as they are) may cross nodes.
 */
#ifndef CAIRN_RT_DIST_H
#define CAIRN_RT_DIST_H

#include "runtime/rt.h"

/* This node's name, or "nonode@nohost" when not distributed. */
const char *rt_node_self(void);
/* The name of the node a pid lives on (this node's name for local pids). */
const char *rt_node_of(rt_pid_t pid);
/* Connects to `node` now (from a thread that is not a scheduler: waits up to timeout_ms).
 * Returns 0, RT_ECONNREFUSED, RT_EAUTH, RT_ETIMEDOUT, RT_EINVAL (bad name). */
int rt_node_connect(const char *node, uint32_t timeout_ms);
/* Closes the connection to `node` (peers see a node-down). */
int rt_node_disconnect(const char *node);
/* Is `node` connected now? */
bool rt_node_is_up(const char *node);
/* The current process (or thread) receives RT_MSG_NODEUP / RT_MSG_NODEDOWN. */
int rt_node_monitor(bool on);

/* Room for a node name and its terminating NUL. */
#define RT_NODE_NAME_MAX 256

/* The nodes connected now (handshake done, link up), oldest link first. Copies up to `max`
 * names into names[0..max-1] (NUL-terminated) and returns how many nodes are connected,
 * which may exceed max: call with max 0 to size the array, and again if it grew meanwhile.
 * Returns 0 when the runtime is not distributed. A snapshot: links may come and go after. */
size_t rt_node_list(char (*names)[RT_NODE_NAME_MAX], size_t max);

typedef struct rt_node_msg {
    char node[RT_NODE_NAME_MAX];
} rt_node_msg_t;

/* Pids inside protobuf payloads travel as (node name, id, serial): convert with these. */
int rt_pid_from_wire(const char *node, uint32_t id, uint32_t serial, rt_pid_t *out);

#endif
