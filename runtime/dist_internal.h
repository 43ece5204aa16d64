/*
 * dist_internal.h — shared by dist.c (node table, routing, link/monitor bookkeeping) and
 * dist_link.c (connections: TCP, handshake, framing, heartbeats, writes).
 *
 * A node entry is one connection lifetime to a named peer: it starts CONNECTING, becomes UP
 * after the handshake and ends DOWN for good. A later connection to the same name gets a new
 * entry (a new node index), so pids of a dead connection — or of a restarted peer — never
 * reach a new incarnation. Pids carry the entry's index in their node field.
 */
#ifndef CAIRN_RT_DIST_INTERNAL_H
#define CAIRN_RT_DIST_INTERNAL_H

#include "proto/rt_dist.pb-c.h"
#include "runtime/dist.h"
#include "runtime/rt_internal.h"

#define DIST_MAX_NODES 4096
#define DIST_MAX_FRAME (64u << 20)      /* a larger length prefix is a protocol error */
#define DIST_MAX_BUFFERED (256u << 20)  /* per node, while connecting or slow */
#define DIST_FLUSH_AT (64u << 10)       /* a sender flushes inline past this much */

enum { NODE_CONNECTING, NODE_UP, NODE_DOWN };

typedef struct dist_conn dist_conn_t;

typedef struct rt_node {
    uint32_t index;
    char name[256];
    atomic_int state;        /* NODE_*; changes under mx */
    int fail_err;            /* why it went down before UP (RT_ECONNREFUSED, RT_EAUTH, ...) */
    uint32_t creation;       /* the peer's, after the handshake */
    pthread_mutex_t mx;      /* everything below */
    int fd;                  /* the socket once UP, else -1 */
    char *obuf;              /* frames not yet written */
    size_t olen, ocap;
    bool loop_writing;       /* the loop thread owns writing until its queue drains */
    bool dropped_warned;
    rt_hmap_t links;         /* (local pid, remote pid) pairs linked across this link */
    rt_hmap_t monitors;      /* ref -> local watcher (v0,v1), remote target id/serial (v2) */
    rt_hmap_t name_calls;    /* ref -> local process (v0,v1) that a call by name from a
                              * process over there resolved to and monitors, until the DOWN
                              * goes back or the caller demonitors (it knows no pid) */
    atomic_uint_fast64_t last_sent_ns;
    dist_conn_t *conn;       /* loop thread only */
} rt_node_t;

typedef struct dist_state {
    bool enabled;
    char self[256];
    char cookie[256];
    uint32_t creation;
    unsigned heartbeat_ms, net_timeout_ms;
    pthread_mutex_t mx;      /* the node table and the subscriber list */
    rt_node_t *nodes[DIST_MAX_NODES];
    uint32_t nnodes;         /* entries used; index 0 is this node (never allocated) */
    rt_pid_t *subs;          /* node monitors */
    size_t nsubs, csubs;
} dist_state_t;
extern dist_state_t rt__dist;

/* dist.c */
rt_node_t *rt__node_get(uint32_t index);
void rt__node_dispatch(rt_node_t *n, Cairn__Rt__DistFrame *f);  /* loop thread, node UP */
void rt__node_up(rt_node_t *n);                               /* loop thread */
void rt__node_down(rt_node_t *n, int err);                    /* loop thread */
rt_node_t *rt__node_for_incoming(const char *name, dist_conn_t *c, bool *reject); /* loop */

/* dist_link.c */
/* Listens on host:*port; returns 0 with *port = the bound port. A node named "...:0" gets
 * the bound port into rt__dist.self before the first connection can be accepted. */
int rt__link_listen(const char *host, int *port);
void rt__link_connect(void *node);                 /* loop thread (via rt__loop_call) */
void rt__link_close(dist_conn_t *c, const char *why); /* loop thread */
void rt__link_stop_all(void);                       /* loop thread */
/* Appends one frame (and optionally a payload) to n's output, flushing per policy.
 * pb: a protobuf to pack as the payload field, or raw/rawlen bytes. Returns 0 or error. */
int rt__link_append(rt_node_t *n, Cairn__Rt__DistFrame *f, const ProtobufCMessage *pb,
                    const void *raw, size_t rawlen, bool flush_now);
void rt__link_flush(rt_node_t *n);
bool rt__node_name_valid(const char *name, char *host, size_t hostlen, int *port);

#endif
