/*
 * listener.c — the client listener process (node/listener.h): accepts client sockets, starts
 * one linked connection process per socket, counts them (a hash set of pids, so a connection
 * limit of any size costs O(1) per accept and exit), refuses clients above the limit, and
 * drains the connections at shutdown.
 *
 * Refused sockets stay with the listener until their error frame has left the send queue
 * (closing drops unsent bytes), checked on a short tick and bounded by REFUSE_FLUSH_MS.
 */
#include "node/listener.h"

#include "node/pb_codec.h"
#include "node/pb_conn.h"
#include "runtime/io.h"

#include <stdlib.h>
#include <string.h>

#define REFUSE_FLUSH_MS 1000
#define TICK_MS 2

/* ---------------------------------------------------------------- a set of local pids */

/* Open addressing with linear probing and backward-shift deletion (no tombstones). A live
 * local process owns its slot id, so the id alone spreads well. */
typedef struct {
    rt_pid_t *slots; /* id 0: empty */
    size_t cap;      /* power of two */
    size_t count;
} pid_set_t;

static size_t pid_hash(rt_pid_t p, size_t mask)
{
    uint64_t x = ((uint64_t)p.id << 32 | p.serial) * 0x9E3779B97F4A7C15u;
    return (size_t)(x >> 32) & mask;
}

static void pid_set_grow(pid_set_t *s)
{
    size_t old_cap = s->cap;
    rt_pid_t *old = s->slots;
    s->cap = old_cap ? old_cap * 2 : 64;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (!s->slots)
        abort();
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id == 0)
            continue;
        size_t j = pid_hash(old[i], s->cap - 1);
        while (s->slots[j].id != 0)
            j = (j + 1) & (s->cap - 1);
        s->slots[j] = old[i];
    }
    free(old);
}

static void pid_set_add(pid_set_t *s, rt_pid_t p)
{
    if ((s->count + 1) * 4 > s->cap * 3)
        pid_set_grow(s);
    size_t mask = s->cap - 1, i = pid_hash(p, mask);
    while (s->slots[i].id != 0) {
        if (rt_pid_eq(s->slots[i], p))
            return;
        i = (i + 1) & mask;
    }
    s->slots[i] = p;
    s->count++;
}

static bool pid_set_remove(pid_set_t *s, rt_pid_t p)
{
    if (!s->cap)
        return false;
    size_t mask = s->cap - 1, i = pid_hash(p, mask);
    while (s->slots[i].id != 0 && !rt_pid_eq(s->slots[i], p))
        i = (i + 1) & mask;
    if (s->slots[i].id == 0)
        return false;
    /* backward shift: move later members of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; s->slots[j].id != 0; j = (j + 1) & mask) {
        size_t home = pid_hash(s->slots[j], mask);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole] = RT_NOPID;
    s->count--;
    return true;
}

/* ---------------------------------------------------------------- the process */

typedef struct {
    rt_sock_t sock;
    uint64_t deadline_ns;
} refused_t;

typedef struct {
    listener_args_t *args;
    kv_node_t *kv;
    rt_sock_t lsock;
    pid_set_t conns;
    bool draining;
    int exit_reason;
    uint64_t drain_deadline_ns;
    refused_t *refused;
    size_t nrefused, cap_refused;
    bool tick_armed;
} listener_t;

static void publish_count(listener_t *l)
{
    atomic_store_explicit(&l->args->connections, (uint32_t)l->conns.count,
                          memory_order_release);
}

static void stop_accepting(listener_t *l)
{
    if (!l->lsock)
        return;
    rt_sock_close(l->lsock); /* new clients get connection refused from now on */
    l->lsock = 0;
    atomic_store(&l->args->port, 0);
    rt_info("client listener: stopped accepting clients");
}

static void arm_tick(listener_t *l, uint32_t ms)
{
    if (l->tick_armed)
        return;
    l->tick_armed = true;
    rt_send_after(ms, rt_self(), rt_msg_new(LISTENER_MSG_TICK, 0));
}

static void refuse(listener_t *l, rt_sock_t sock)
{
    uint8_t frame[64];
    size_t n = pb_error_frame("too many connections", frame, sizeof frame);
    if (rt_sock_send(sock, frame, n) != 0) {
        rt_sock_close(sock);
        return;
    }
    if (l->nrefused == l->cap_refused) {
        l->cap_refused = l->cap_refused ? l->cap_refused * 2 : 16;
        l->refused = realloc(l->refused, l->cap_refused * sizeof *l->refused);
        if (!l->refused)
            abort();
    }
    l->refused[l->nrefused++] =
        (refused_t){sock, rt_now_ns() + (uint64_t)REFUSE_FLUSH_MS * 1000000u};
    arm_tick(l, TICK_MS);
}

/* Closes refused sockets whose error frame is out (or that waited long enough). */
static void flush_refused(listener_t *l)
{
    uint64_t now = rt_now_ns();
    size_t kept = 0;
    for (size_t i = 0; i < l->nrefused; i++) {
        refused_t r = l->refused[i];
        if (rt_sock_send_queue(r.sock) == 0 || now >= r.deadline_ns)
            rt_sock_close(r.sock);
        else
            l->refused[kept++] = r;
    }
    l->nrefused = kept;
}

static void on_accept(listener_t *l, rt_sock_t sock)
{
    const node_config_t *cfg = l->kv->cfg;
    if (l->draining || !l->lsock) {
        rt_sock_close(sock); /* accepted just before we stopped accepting */
        return;
    }
    if (cfg->max_connections && l->conns.count >= cfg->max_connections) {
        rt_info("client listener: %zu connections (max_connections); refusing a client",
                l->conns.count);
        refuse(l, sock);
        return;
    }
    rt_pid_t pid;
    int rc = pb_conn_start(l->kv, sock, &pid); /* closes sock on failure */
    if (rc != 0) {
        rt_warn("client listener: cannot start a connection process: %s", rt_strerror(rc));
        return;
    }
    pid_set_add(&l->conns, pid);
    publish_count(l);
}

/* Ends the remaining connections and returns the handler's result for the listener. */
static int finish(listener_t *l)
{
    for (size_t i = 0; i < l->conns.cap; i++)
        if (l->conns.slots[i].id != 0)
            rt_exit_signal(l->conns.slots[i], RT_R_SHUTDOWN);
    if (l->conns.count)
        rt_info("client listener: %zu connections still busy after the drain; closed",
                l->conns.count);
    if (l->exit_reason != RT_R_NORMAL)
        rt_exit(l->exit_reason);
    return RT_STOP;
}

static int begin_drain(listener_t *l, int reason)
{
    if (l->draining)
        return RT_CONTINUE;
    l->draining = true;
    l->exit_reason = reason;
    stop_accepting(l);
    uint32_t drain_ms = l->args->drain_ms ? l->args->drain_ms : LISTENER_DRAIN_MS_DEFAULT;
    l->drain_deadline_ns = rt_now_ns() + (uint64_t)drain_ms * 1000000u;
    rt_info("client listener: draining %zu connections (at most %u ms)",
            l->conns.count, drain_ms);
    if (l->conns.count == 0)
        return finish(l);
    for (size_t i = 0; i < l->conns.cap; i++)
        if (l->conns.slots[i].id != 0)
            rt_send(l->conns.slots[i], rt_msg_new(PB_CONN_MSG_DRAIN, 0));
    arm_tick(l, l->nrefused ? TICK_MS : drain_ms);
    return RT_CONTINUE;
}

static int on_exit_msg(listener_t *l, const rt_exit_msg_t *e)
{
    if (pid_set_remove(&l->conns, e->from)) {
        if (e->reason != RT_R_NORMAL && e->reason != RT_R_SHUTDOWN)
            rt_debug("client listener: a connection ended: %s", rt_reason_str(e->reason));
        publish_count(l);
        if (l->draining && l->conns.count == 0)
            return finish(l);
        return RT_CONTINUE;
    }
    if (e->reason == RT_R_NORMAL)
        return RT_CONTINUE;
    return begin_drain(l, e->reason); /* our supervisor (or the process that linked us) */
}

static int on_tick(listener_t *l)
{
    l->tick_armed = false;
    flush_refused(l);
    if (l->draining && rt_now_ns() >= l->drain_deadline_ns)
        return finish(l);
    if (l->nrefused) {
        arm_tick(l, TICK_MS);
    } else if (l->draining) {
        uint64_t left_ms = (l->drain_deadline_ns - rt_now_ns()) / 1000000u + 1;
        arm_tick(l, (uint32_t)left_ms);
    }
    return RT_CONTINUE;
}

static int listener_init(void *state, void *arg)
{
    listener_t *l = state;
    listener_args_t *a = arg;
    if (!a || !a->kv || !a->kv->cfg)
        return RT_R_INIT_FAILED;
    l->args = a;
    l->kv = a->kv;
    atomic_store(&a->connections, 0);
    atomic_store(&a->port, 0);
    const node_config_t *cfg = a->kv->cfg;
    rt_trap_exit(true);
    int rc = rt_tcp_listen(cfg->client_host, cfg->client_port, LISTENER_BACKLOG, &l->lsock);
    atomic_store(&a->error, rc);
    if (rc != 0) {
        rt_error("client listener: cannot listen on %s:%d: %s", cfg->client_host,
                 cfg->client_port, rt_strerror(rc));
        return RT_R_INIT_FAILED;
    }
    int port = rt_sock_local_port(l->lsock);
    atomic_store(&a->port, port);
    rt_info("client listener: listening on %s:%d", cfg->client_host, port);
    return 0;
}

static int listener_handle(void *state, rt_msg_t *m)
{
    listener_t *l = state;
    switch (m->type) {
    case RT_MSG_TCP: {
        const rt_sock_event_t *ev = rt_sock_event(m);
        if (ev->kind == RT_SOCK_ACCEPTED)
            on_accept(l, ev->sock);
        else if (ev->kind == RT_SOCK_ERROR && ev->sock == l->lsock)
            rt_warn("client listener: accept failed: %s", rt_strerror(ev->status));
        return RT_CONTINUE; /* events of refused sockets need nothing */
    }
    case RT_MSG_EXIT:
        return on_exit_msg(l, (const rt_exit_msg_t *)(const void *)m->data);
    case LISTENER_MSG_DRAIN:
        return begin_drain(l, RT_R_NORMAL);

    case LISTENER_MSG_TICK:
        return on_tick(l);
    default:
        rt_debug("client listener: unexpected message type %u ignored", m->type);
        return RT_CONTINUE;
    }
}

static void listener_terminate(void *state, int reason)
{
    listener_t *l = state;
    if (l->lsock)
        rt_sock_close(l->lsock);
    for (size_t i = 0; i < l->nrefused; i++)
        rt_sock_close(l->refused[i].sock);
    free(l->refused);
    free(l->conns.slots);
    if (l->args) {
        atomic_store(&l->args->connections, 0);
        atomic_store(&l->args->port, 0);
    }
}

const rt_behaviour_t listener_behaviour = {
    .name = "client_listener",
    .state_size = sizeof(listener_t),
    .init = listener_init,
    .handle = listener_handle,
    .terminate = listener_terminate,
};

int listener_start(listener_args_t *args, rt_pid_t *out)
{
    return rt_spawn(&listener_behaviour, args, out);
}

int listener_drain(rt_pid_t listener)
{
    return rt_send(listener, rt_msg_new(LISTENER_MSG_DRAIN, 0));
}

typedef struct {
    rt_ref_t ref;
} down_ctx_t;

static bool match_down(const rt_msg_t *m, void *ctx)
{
    return m->type == RT_MSG_DOWN &&
           ((const rt_down_msg_t *)(const void *)m->data)->ref == ((down_ctx_t *)ctx)->ref;
}

static bool match_nothing(const rt_msg_t *m, void *ctx) { return false; }

int listener_stop(rt_pid_t listener, uint32_t timeout_ms)
{
    rt_msg_t *m = NULL;
    if (rt_receive_match(0, match_nothing, NULL, &m) == RT_ECALLER)
        return RT_ECALLER; /* a process cannot block */
    down_ctx_t ctx = {rt_monitor(listener)};
    listener_drain(listener);
    if (rt_receive_match(timeout_ms, match_down, &ctx, &m) == 0) {
        rt_msg_free(m);
        return 0;
    }
    rt_exit_signal(listener, RT_R_KILL);
    if (rt_receive_match(2000, match_down, &ctx, &m) == 0)
        rt_msg_free(m);
    else
        rt_demonitor(ctx.ref, RT_DEMONITOR_FLUSH);
    return RT_ETIMEDOUT;
}
