/*
 * pb_conn.h — one process per client socket speaking Riak's PB protocol (prefix pb_conn_).
 *
 * The listener (node/listener.c) accepts a socket and calls pb_conn_start, which spawns the
 * connection linked to the listener, hands it the socket and tells it to start. From then on
 * the connection owns the socket (an rt_own resource: it is closed when the process exits for
 * any reason) and:
 *   - reads in {active, N} mode and feeds a pb_reader_t; requests are served one at a time in
 *     arrival order; pipelined frames wait in the buffer and reading pauses while a request is
 *     in progress and more bytes are already buffered (flow control reaches the client);
 *   - answers ping, client id (get/set, kept per connection, a random 4-byte id by default)
 *     and server info itself; bucket properties through kv_bucket_* (immediate replies); get,
 *     put, delete, list keys and list buckets through kv_get etc. (node/kv.h), whose
 *     KV_MSG_REPLY frames it writes as they come, dropping any whose req_id is not the
 *     request in progress (stale); streaming replies are acknowledged (KV_MSG_STREAM_ACK)
 *     once the socket's send queue is below PB_CONN_ACK_QUEUE_BYTES;
 *   - answers every bad request with an RpbErrorResp and keeps going; refuses an oversize or
 *     zero-length frame with an error and closes (the stream cannot be resynchronised);
 *     closes a connection whose started frame is not complete within frame_timeout_ms, and
 *     (if idle_timeout_ms > 0) one idle that long; answers "timeout" itself if a request gets
 *     no reply within its timeout plus a margin (a safety net: kv promises a reply);
 *   - exits normally when the peer closes or the socket fails; a crash ends only this
 *     process (the listener traps exits).
 *   - on PB_CONN_MSG_DRAIN (node shutdown) stops reading, finishes the request in progress,
 *     answers frames already received with "node is stopping", flushes and closes.
 * Before closing on its own it waits (bounded) for its replies to leave the send queue, since
 * closing a socket drops unsent bytes.
 */
#ifndef CAIRN_NODE_PB_CONN_H
#define CAIRN_NODE_PB_CONN_H

#include "node/kv.h"
#include "runtime/io.h"

/* Message types of pb_conn.c and listener.c: KV_MSG_PRIVATE + 100..119. */
enum {
    PB_CONN_MSG_BASE = KV_MSG_PRIVATE + 100,
    PB_CONN_MSG_START = PB_CONN_MSG_BASE, /* listener -> connection: the socket is yours */
    PB_CONN_MSG_DRAIN,                    /* listener -> connection: finish, then close */
    PB_CONN_MSG_TICK,                     /* the connection's own timer (payload: due, ns) */
    LISTENER_MSG_DRAIN = PB_CONN_MSG_BASE + 10, /* see listener.h */
    LISTENER_MSG_TICK,
};

/* Tunables. */
#define PB_CONN_ACTIVE_N 8                     /* reads delivered per {active, N} arming */
#define PB_CONN_ACK_QUEUE_BYTES (1024u * 1024) /* stream acks wait while more is unsent */
#define PB_CONN_ACK_RECHECK_MS 5               /* ... re-checked this often */
#define PB_CONN_FLUSH_MS 2000                  /* longest wait for replies to go out at close */
#define PB_CONN_DRAIN_GRACE_MS 500             /* draining: late requests answered "node is
                                                * stopping" this long before the close */
#define PB_CONN_REPLY_MARGIN_MS 2000           /* safety timer: request timeout + this */

/* The init arg of pb_conn_behaviour (copied by init). */
typedef struct pb_conn_args_s {
    kv_node_t *kv;   /* borrowed: must outlive the connection; kv->cfg must be set */
    rt_sock_t sock;  /* the client socket, handed over before PB_CONN_MSG_START */
} pb_conn_args_t;

extern const rt_behaviour_t pb_conn_behaviour;

/* From the process that owns `sock` (the listener): spawns a connection linked to the caller,
 * hands it the socket and starts it. Returns 0 with *out (may be NULL), or an rt_spawn /
 * rt_sock_controlling_process error; on error the socket is closed. */
int pb_conn_start(kv_node_t *kv, rt_sock_t sock, rt_pid_t *out);

#endif
