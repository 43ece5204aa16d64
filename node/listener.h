/*
 * listener.h — the client (PB) listener process (prefix listener_).
 *
 * It listens on cfg->client_host:cfg->client_port (bound in init, so a port in use fails the
 * start at once) and starts one connection process (node/pb_conn.h) per accepted socket.
 *
 * Links. The listener traps exits and is linked to every connection it starts:
 *   - a connection that ends (normally or by a crash) only sends the listener an EXIT
 *     message, which removes it from the live set: one bad client never takes the listener or
 *     other clients down;
 *   - if the listener itself dies (crash or kill), the links end every connection with it, so
 *     a restarted listener never lives next to orphans it does not count.
 * Any other EXIT with a reason other than normal (its supervisor shutting it down) starts the
 * drain below and the listener then exits with that reason.
 *
 * Limit. Above cfg->max_connections live connections (0: no limit) a new client gets one
 * RpbErrorResp "too many connections" and is closed once that frame is written.
 *
 * Drain (node shutdown). On the exit signal from its supervisor (rt_sup_terminate_child, or
 * the tree's ordered shutdown) or LISTENER_MSG_DRAIN (listener_drain / listener_stop), the
 * listener
 *   1. closes the listening socket: new clients get connection refused;
 *   2. sends PB_CONN_MSG_DRAIN to every connection: each stops reading, finishes the request
 *      in progress, answers frames it already received with "node is stopping", flushes its
 *      replies and closes;
 *   3. exits when the last connection has gone, or after drain_ms, when it ends the remaining
 *      ones (exit signal shutdown).
 * Under a supervisor, give the child spec shutdown_ms = listener_shutdown_ms(args) so the
 * supervisor's kill comes only after the drain bound, and start the listener after the KV
 * services (vnodes, coordinators) so that it stops before them (reverse start order).
 *
 * Example child spec (node/node.c):
 *   static listener_args_t client_args = {.kv = &node_kv};
 *   {"client_listener", &listener_behaviour, &client_args, RT_SUP_PERMANENT,
 *    listener_shutdown_ms(&client_args)}
 */
#ifndef CAIRN_NODE_LISTENER_H
#define CAIRN_NODE_LISTENER_H

#include "node/kv.h"

#include <stdatomic.h>

#define LISTENER_DRAIN_MS_DEFAULT 5000u
#define LISTENER_BACKLOG 1024

/* The init arg of listener_behaviour. Borrowed by the listener: it must outlive it (and each
 * restart reuses it). The out fields are written by the listener and may be read from any
 * thread. */
typedef struct listener_args_s {
    kv_node_t *kv;                 /* in: borrowed; kv->cfg gives address and limits */
    uint32_t drain_ms;             /* in: bound on the drain; 0: LISTENER_DRAIN_MS_DEFAULT */
    _Atomic int port;              /* out: the bound port (each start; real port for port 0);
                                    * 0 once the listener has stopped accepting */
    _Atomic int error;             /* out: 0, or the RT_E* code of a failed listen */
    _Atomic uint32_t connections;  /* out: live connection processes */
} listener_args_t;

/* The listener's behaviour (init arg: listener_args_t *), for supervisor child specs. Init
 * fails (RT_EINITFAIL for the spawner; args->error says why, e.g. RT_EADDRINUSE) when it
 * cannot listen. */
extern const rt_behaviour_t listener_behaviour;

/* The shutdown_ms a supervisor should give the listener: the drain bound plus a margin. */
static inline uint32_t listener_shutdown_ms(const listener_args_t *a)
{
    return (a->drain_ms ? a->drain_ms : LISTENER_DRAIN_MS_DEFAULT) + 1000u;
}

/* Starts a listener that is not linked to the caller (tests, tools). Returns 0 with *out and
 * args->port set, or RT_EINITFAIL (args->error says why) / rt_spawn's errors. */
int listener_start(listener_args_t *args, rt_pid_t *out);

/* Asks the listener to drain and exit normally (no reply; monitor it to learn when it has).
 * Do not use it on a supervised PERMANENT listener: the supervisor would restart it; use
 * rt_sup_terminate_child there. */
int listener_drain(rt_pid_t listener);

/* From a thread that is not a scheduler: listener_drain, then waits for the listener to exit
 * (at most timeout_ms, after which it is killed). Returns 0, RT_ETIMEDOUT (it had to be
 * killed), RT_ECALLER (called from a process). */
int listener_stop(rt_pid_t listener, uint32_t timeout_ms);

#endif
