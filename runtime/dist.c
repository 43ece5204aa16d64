/*
 * dist.c — distribution's node table and routing: turning sends, links, monitors and exit
 * signals to remote pids into frames, turning arriving frames into local deliveries, and
 * the bookkeeping that lets a dropped node link deliver `noconnection` to every local
 * process linked to or monitoring a pid over there (and NODEDOWN to node monitors).
 *
 * Calls by name (rt_call_name) to another node travel as one CALL_NAME frame: the caller
 * records its monitor on the node entry with a target it does not know ({node, 0, 0}); the
 * receiving node resolves the name, monitors the process for the caller (remembering which
 * process in name_calls, since the caller's DEMONITOR names none) and delivers the request,
 * or answers DOWN noproc at once when the name is not registered.
 */
#include "runtime/dist_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

dist_state_t rt__dist;

/* Nodes this thread queued frames for; flushed at the end of the current turn. */
#define DIRTY_MAX 16
static _Thread_local uint32_t dirty[DIRTY_MAX];
static _Thread_local unsigned ndirty;

/* ------------------------------------------------------------------ node table */

rt_node_t *rt__node_get(uint32_t index)
{
    if (index == 0 || index >= DIST_MAX_NODES)
        return NULL;
    return __atomic_load_n(&rt__dist.nodes[index], __ATOMIC_ACQUIRE);
}

bool rt__is_local_node_name(const char *node)
{
    return !rt__dist.enabled ? true : strcmp(node, rt__dist.self) == 0;
}

const char *rt_node_self(void) { return rt__dist.enabled ? rt__dist.self : "nonode@nohost"; }

const char *rt_node_of(rt_pid_t pid)
{
    if (pid.node == 0)
        return rt_node_self();
    rt_node_t *n = rt__node_get(pid.node);
    return n ? n->name : "unknown";
}

/* The newest entry for `name` (under rt__dist.mx); NULL if none. */
static rt_node_t *find_latest_locked(const char *name)
{
    for (uint32_t i = rt__dist.nnodes; i-- > 1;) {
        rt_node_t *n = rt__dist.nodes[i];
        if (n && strcmp(n->name, name) == 0)
            return n;
    }
    return NULL;
}

static rt_node_t *node_new_locked(const char *name)
{
    if (rt__dist.nnodes >= DIST_MAX_NODES) {
        rt_error("dist: node table full (%u entries): cannot connect to %s", DIST_MAX_NODES, name);
        return NULL;
    }
    rt_node_t *n = rt__xcalloc(1, sizeof *n);
    n->index = rt__dist.nnodes;
    snprintf(n->name, sizeof n->name, "%s", name);
    atomic_store(&n->state, NODE_CONNECTING);
    pthread_mutex_init(&n->mx, NULL);
    n->fd = -1;
    __atomic_store_n(&rt__dist.nodes[rt__dist.nnodes], n, __ATOMIC_RELEASE);
    rt__dist.nnodes++;
    return n;
}

/* The live (connecting or up) entry for name, creating one and starting a connection if
 * there is none. NULL if name is invalid or the table is full. */
static rt_node_t *node_for_send(const char *name)
{
    if (!rt__dist.enabled || !rt__node_name_valid(name, NULL, 0, NULL))
        return NULL;
    pthread_mutex_lock(&rt__dist.mx);
    rt_node_t *n = find_latest_locked(name);
    bool fresh = false;
    if (!n || atomic_load(&n->state) == NODE_DOWN) {
        n = node_new_locked(name);
        fresh = n != NULL;
    }
    pthread_mutex_unlock(&rt__dist.mx);
    if (fresh)
        rt__loop_call(rt__link_connect, n);
    return n;
}

/* Loop thread: an incoming handshake claims to be `name`. Returns the entry the connection
 * should attach to, or NULL with *reject when an existing link wins (duplicate, or a
 * simultaneous connect that our outgoing connection wins by name order). */
rt_node_t *rt__node_for_incoming(const char *name, dist_conn_t *c, bool *reject)
{
    *reject = false;
    pthread_mutex_lock(&rt__dist.mx);
    rt_node_t *n = find_latest_locked(name);
    if (n && atomic_load(&n->state) == NODE_UP) {
        *reject = true;
        n = NULL;
    } else if (n && atomic_load(&n->state) == NODE_CONNECTING && n->conn && n->conn != c) {
        /* Both sides dialled at once: the connection started by the smaller name wins. */
        if (strcmp(rt__dist.self, name) < 0) {
            *reject = true;
            n = NULL;
        } else {
            dist_conn_t *old = n->conn;
            n->conn = NULL;
            rt__link_close(old, "superseded by the peer's simultaneous connection");
        }
    } else if (!n || atomic_load(&n->state) == NODE_DOWN) {
        n = node_new_locked(name);
    }
    pthread_mutex_unlock(&rt__dist.mx);
    return n;
}

/* A DOWN for the local watcher, made here (the remote side cannot send it: unreachable). */
static void down_local(rt_pid_t watcher, rt_ref_t ref, rt_pid_t target, int reason)
{
    rt_msg_t *m = rt__sig_new(RT_MSG_DOWN, target, sizeof(rt_down_msg_t));
    *(rt_down_msg_t *)(void *)m->data = (rt_down_msg_t){ref, target, reason};
    rt__send_local(watcher, m);
}

/* ------------------------------------------------------------------ subscribers */

static void notify_subscribers(uint32_t type, const char *node)
{
    pthread_mutex_lock(&rt__dist.mx);
    size_t n = rt__dist.nsubs;
    rt_pid_t *subs = n ? rt__xmalloc(n * sizeof *subs) : NULL;
    if (n)
        memcpy(subs, rt__dist.subs, n * sizeof *subs);
    pthread_mutex_unlock(&rt__dist.mx);
    for (size_t i = 0; i < n; i++) {
        rt_msg_t *m = rt__sig_new(type, RT_NOPID, sizeof(rt_node_msg_t));
        snprintf(((rt_node_msg_t *)(void *)m->data)->node, sizeof(rt_node_msg_t), "%s", node);
        rt__send_local(subs[i], m);
    }
    free(subs);
}

int rt_node_monitor(bool on)
{
    rt_pid_t self = rt_self();
    if (rt_pid_is_nil(self))
        return RT_ESTATE;
    pthread_mutex_lock(&rt__dist.mx);
    size_t i;
    for (i = 0; i < rt__dist.nsubs; i++)
        if (rt_pid_eq(rt__dist.subs[i], self))
            break;
    if (on && i == rt__dist.nsubs) {
        if (rt__dist.nsubs == rt__dist.csubs) {
            rt__dist.csubs = rt__dist.csubs ? rt__dist.csubs * 2 : 8;
            rt__dist.subs = rt__xrealloc(rt__dist.subs, rt__dist.csubs * sizeof *rt__dist.subs);
        }
        rt__dist.subs[rt__dist.nsubs++] = self;
    } else if (!on && i < rt__dist.nsubs) {
        rt__dist.subs[i] = rt__dist.subs[--rt__dist.nsubs];
    }
    pthread_mutex_unlock(&rt__dist.mx);
    return 0;
}

/* ------------------------------------------------------------------ up / down */

void rt__node_up(rt_node_t *n)
{
    rt_info("dist: node %s up", n->name);
    notify_subscribers(RT_MSG_NODEUP, n->name);
}

void rt__node_down(rt_node_t *n, int err)
{
    pthread_mutex_lock(&n->mx);
    int prev = atomic_load(&n->state);
    if (prev == NODE_DOWN) {
        pthread_mutex_unlock(&n->mx);
        return;
    }
    atomic_store(&n->state, NODE_DOWN);
    n->fail_err = prev == NODE_CONNECTING ? err : 0;
    n->fd = -1;
    free(n->obuf);
    n->obuf = NULL;
    n->olen = n->ocap = 0;
    rt_hmap_t links = n->links, mons = n->monitors, name_calls = n->name_calls;
    memset(&n->links, 0, sizeof links);
    memset(&n->monitors, 0, sizeof mons);
    memset(&n->name_calls, 0, sizeof name_calls);
    pthread_mutex_unlock(&n->mx);

    /* noconnection to every local process linked to, or monitoring, a pid over there */
    for (uint32_t i = 0; i < links.cap; i++) {
        rt_hent_t *e = &links.t[i];
        if (!e->k.a && !e->k.b)
            continue;
        rt_pid_t local = {0, (uint32_t)(e->k.a >> 32), (uint32_t)e->k.a};
        rt_pid_t remote = {n->index, (uint32_t)(e->k.b >> 32), (uint32_t)e->k.b};
        rt_msg_t *m = rt__sig_new(RT_SIG_EXIT_LINK, remote, sizeof(rt_exit_msg_t));
        *(rt_exit_msg_t *)(void *)m->data = (rt_exit_msg_t){remote, RT_R_NOCONNECTION};
        rt__send_local(local, m);
    }
    for (uint32_t i = 0; i < mons.cap; i++) {
        rt_hent_t *e = &mons.t[i];
        if (!e->k.a && !e->k.b)
            continue;
        rt_pid_t watcher = rt__pid_unpack(e->v[0], e->v[1]);
        rt_pid_t target = {n->index, (uint32_t)(e->v[2] >> 32), (uint32_t)e->v[2]};
        down_local(watcher, e->k.a, target, RT_R_NOCONNECTION);
    }
    /* calls by name from over there: nobody is left to answer, drop their monitors */
    for (uint32_t i = 0; i < name_calls.cap; i++) {
        rt_hent_t *e = &name_calls.t[i];
        if (e->k.a || e->k.b)
            rt__monitor_remove(rt__pid_unpack(e->v[0], e->v[1]), e->k.a);
    }
    rt__hmap_free(&links);
    rt__hmap_free(&mons);
    rt__hmap_free(&name_calls);
    if (prev == NODE_UP) {
        rt_info("dist: node %s down", n->name);
        notify_subscribers(RT_MSG_NODEDOWN, n->name);
    }
}

/* ------------------------------------------------------------------ sending frames */

static void mark_dirty(rt_node_t *n)
{
    for (unsigned i = 0; i < ndirty; i++)
        if (dirty[i] == n->index)
            return;
    if (ndirty == DIRTY_MAX) {
        rt__link_flush(n);
        return;
    }
    dirty[ndirty++] = n->index;
}

void rt__dist_flush_thread(void)
{
    while (ndirty > 0) {
        rt_node_t *n = rt__node_get(dirty[--ndirty]);
        if (n)
            rt__link_flush(n);
    }
}

/* Queues a frame to node n. Off a scheduler (no end of turn to batch to) it is written now. */
static int send_frame(rt_node_t *n, Cairn__Rt__DistFrame *f, const ProtobufCMessage *pb,
                      const void *raw, size_t rawlen)
{
    bool now = !rt__tls.sched && !rt__on_loop();
    int rc = rt__link_append(n, f, pb, raw, rawlen, now);
    if (rc == 0 && !now)
        mark_dirty(n);
    return rc;
}

static void frame_pids(Cairn__Rt__DistFrame *f, rt_pid_t from, rt_pid_t to)
{
    f->to_id = to.id;
    f->to_serial = to.serial;
    if (from.node == 0) { /* a pid on a third node cannot be named in a frame: sent as none */
        f->from_id = from.id;
        f->from_serial = from.serial;
    }
}

static int send_msg_frame(rt_node_t *n, Cairn__Rt__DistFrame *f, rt_msg_t *m)
{
    f->type = m->type;
    f->flags = m->flags;
    f->ref = m->ref;
    int rc;
    if (m->flags & RT_MSGF_PB)
        rc = send_frame(n, f, rt_msg_pb_get(m), NULL, 0);
    else
        rc = send_frame(n, f, NULL, m->data, m->size);
    rt_msg_free(m);
    return rc;
}

int rt__dist_send(rt_pid_t to, rt_msg_t *m)
{
    rt_node_t *n = rt__node_get(to.node);
    if (!n || atomic_load(&n->state) == NODE_DOWN) {
        rt_msg_free(m);
        return RT_ENOTCONN;
    }
    Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
    f.kind = CAIRN__RT__DIST_FRAME__KIND__MSG;
    frame_pids(&f, m->from, to);
    return send_msg_frame(n, &f, m);
}

int rt__dist_send_name(const char *node, const char *name, rt_msg_t *m)
{
    rt_node_t *n = node_for_send(node);
    if (!n) {
        rt_msg_free(m);
        return rt__dist.enabled ? RT_EINVAL : RT_ENOTCONN;
    }
    Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
    f.kind = CAIRN__RT__DIST_FRAME__KIND__REG_SEND;
    frame_pids(&f, m->from, RT_NOPID);
    f.to_name = (char *)name;
    return send_msg_frame(n, &f, m);
}

static rt_hkey_t link_key(rt_pid_t local, rt_pid_t remote)
{
    return (rt_hkey_t){((uint64_t)local.id << 32) | local.serial, ((uint64_t)remote.id << 32) | remote.serial};
}

static void track_link(rt_node_t *n, rt_pid_t local, rt_pid_t remote, bool add)
{
    pthread_mutex_lock(&n->mx);
    if (atomic_load(&n->state) != NODE_DOWN) {
        if (add)
            rt__hmap_put(&n->links, link_key(local, remote));
        else
            rt__hmap_del(&n->links, link_key(local, remote), NULL);
    }
    pthread_mutex_unlock(&n->mx);
}

/* A control frame (link, monitor, exit, down) between local pid `local` and remote `remote`. */
static int control(rt_node_t *n, Cairn__Rt__DistFrame__Kind kind, rt_pid_t local, rt_pid_t remote,
                   rt_ref_t ref, int reason, bool linked)
{
    Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
    f.kind = kind;
    frame_pids(&f, local, remote);
    f.ref = ref;
    f.reason = reason;
    f.linked = linked;
    return send_frame(n, &f, NULL, NULL, 0);
}

/* The node for a remote pid if its link is not down (the caller handles NULL). */
static rt_node_t *live_node(rt_pid_t remote)
{
    rt_node_t *n = rt__node_get(remote.node);
    return (n && atomic_load(&n->state) != NODE_DOWN) ? n : NULL;
}

int rt__dist_link(rt_pid_t local, rt_pid_t remote)
{
    rt_node_t *n = live_node(remote);
    if (!n) {
        rt_msg_t *m = rt__sig_new(RT_SIG_EXIT_LINK, remote, sizeof(rt_exit_msg_t));
        *(rt_exit_msg_t *)(void *)m->data = (rt_exit_msg_t){remote, RT_R_NOCONNECTION};
        rt__send_local(local, m);
        return RT_ENOTCONN;
    }
    track_link(n, local, remote, true);
    return control(n, CAIRN__RT__DIST_FRAME__KIND__LINK, local, remote, 0, 0, false);
}

int rt__dist_unlink(rt_pid_t local, rt_pid_t remote)
{
    rt_node_t *n = live_node(remote);
    if (!n)
        return RT_ENOTCONN;
    track_link(n, local, remote, false);
    return control(n, CAIRN__RT__DIST_FRAME__KIND__UNLINK, local, remote, 0, 0, false);
}

/* Records watcher's monitor `ref` on n, so that the link dropping delivers its DOWN. False
 * if n is down already (checked under n->mx: rt__node_down has taken the map, or will see
 * this entry). */
static bool track_monitor(rt_node_t *n, rt_pid_t watcher, rt_pid_t target, rt_ref_t ref)
{
    pthread_mutex_lock(&n->mx);
    bool live = atomic_load(&n->state) != NODE_DOWN;
    if (live) {
        rt_hent_t *e = rt__hmap_put(&n->monitors, rt__ref_key(ref));
        rt_hkey_t wk = rt__pid_key(watcher);
        e->v[0] = wk.a;
        e->v[1] = wk.b;
        e->v[2] = ((uint64_t)target.id << 32) | target.serial;
    }
    pthread_mutex_unlock(&n->mx);
    return live;
}

/* Removes monitor `ref` from n; false if it was not there (its DOWN was delivered). */
static bool untrack_monitor(rt_node_t *n, rt_ref_t ref)
{
    pthread_mutex_lock(&n->mx);
    bool had = rt__hmap_del(&n->monitors, rt__ref_key(ref), NULL);
    pthread_mutex_unlock(&n->mx);
    return had;
}

int rt__dist_monitor(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref)
{
    rt_node_t *n = live_node(target);
    if (!n || !track_monitor(n, watcher, target, ref)) {
        down_local(watcher, ref, target, RT_R_NOCONNECTION);
        return RT_ENOTCONN;
    }
    return control(n, CAIRN__RT__DIST_FRAME__KIND__MONITOR, watcher, target, ref, 0, false);
}

int rt__dist_demonitor(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref)
{
    rt_node_t *n = live_node(target);
    if (!n)
        return RT_ENOTCONN;
    untrack_monitor(n, ref);
    return control(n, CAIRN__RT__DIST_FRAME__KIND__DEMONITOR, watcher, target, ref, 0, false);
}

int rt__dist_exit(rt_pid_t from, rt_pid_t to, int reason, bool linked)
{
    rt_node_t *n = live_node(to);
    if (!n)
        return RT_ENOTCONN;
    if (linked)
        track_link(n, from, to, false);
    return control(n, CAIRN__RT__DIST_FRAME__KIND__EXIT, from, to, 0, reason, linked);
}

/* The process a call by name from n resolved to, monitored for the caller with ref. */
static void name_call_track(rt_node_t *n, rt_ref_t ref, rt_pid_t target)
{
    pthread_mutex_lock(&n->mx);
    if (atomic_load(&n->state) != NODE_DOWN) {
        rt_hent_t *e = rt__hmap_put(&n->name_calls, rt__ref_key(ref));
        rt_hkey_t tk = rt__pid_key(target);
        e->v[0] = tk.a;
        e->v[1] = tk.b;
    }
    pthread_mutex_unlock(&n->mx);
}

/* Forgets call-by-name monitor ref; true with *target if it was there. */
static bool name_call_untrack(rt_node_t *n, rt_ref_t ref, rt_pid_t *target)
{
    rt_hent_t e;
    pthread_mutex_lock(&n->mx);
    bool had = n->name_calls.n > 0 && rt__hmap_del(&n->name_calls, rt__ref_key(ref), &e);
    pthread_mutex_unlock(&n->mx);
    if (had && target)
        *target = rt__pid_unpack(e.v[0], e.v[1]);
    return had;
}

int rt__dist_down(rt_pid_t watcher, rt_ref_t ref, rt_pid_t target, int reason)
{
    rt_node_t *n = live_node(watcher);
    if (!n)
        return RT_ENOTCONN;
    name_call_untrack(n, ref, NULL); /* if it was a call by name's monitor, it ends here */
    return control(n, CAIRN__RT__DIST_FRAME__KIND__DOWN, target, watcher, ref, reason, false);
}

rt_pid_t rt__dist_call_name(rt_pid_t caller, const char *node, const char *name, rt_msg_t *req)
{
    rt_ref_t ref = req->ref;
    rt_node_t *n = node_for_send(node);
    if (!n) {
        rt_msg_free(req);
        rt_debug("dist: call to '%s' on %s: not a valid node name", name, node);
        down_local(caller, ref, RT_NOPID, RT_R_NOCONNECTION);
        return RT_NOPID;
    }
    rt_pid_t target = {n->index, 0, 0};
    if (!track_monitor(n, caller, target, ref)) {
        rt_msg_free(req);
        down_local(caller, ref, target, RT_R_NOCONNECTION);
        return target;
    }
    Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
    f.kind = CAIRN__RT__DIST_FRAME__KIND__CALL_NAME;
    frame_pids(&f, caller, RT_NOPID);
    f.to_name = (char *)name;
    /* Not queued (the link went down: its DOWN went out with the link's monitors; or the
     * frame is too large or too much is queued, logged by the link): end the call now,
     * unless the link's DOWN already did. */
    if (send_msg_frame(n, &f, req) != 0 && untrack_monitor(n, ref))
        down_local(caller, ref, target, RT_R_NOCONNECTION);
    return target;
}

/* ------------------------------------------------------------------ arriving frames */

static rt_msg_t *msg_from_frame(rt_node_t *n, Cairn__Rt__DistFrame *f)
{
    if (f->type < RT_MSG_USER) {
        rt_warn("dist: dropped a message of reserved type %u from %s", f->type, n->name);
        return NULL;
    }
    rt_msg_t *m;
    if (f->flags & RT_MSGF_PB) {
        const ProtobufCMessageDescriptor *d = rt_msg_descriptor(f->type);
        if (!d) {
            rt_warn("dist: dropped a message of type %u from %s: no descriptor registered", f->type, n->name);
            return NULL;
        }
        ProtobufCMessage *pb = protobuf_c_message_unpack(d, NULL, f->payload.len, f->payload.data);
        if (!pb) {
            rt_warn("dist: dropped a malformed %s message (type %u) from %s", d->name, f->type, n->name);
            return NULL;
        }
        m = rt_msg_pb(f->type, pb, NULL);
    } else {
        m = rt_msg_copy(f->type, f->payload.data, f->payload.len);
    }
    m->flags = (uint16_t)(m->flags | (f->flags & (RT_MSGF_CALL | RT_MSGF_REPLY)));
    m->ref = f->ref;
    m->from = f->from_id ? (rt_pid_t){n->index, f->from_id, f->from_serial} : RT_NOPID;
    return m;
}

/* A call from a process on n, whose request could not be decoded here: the caller hears
 * at once rather than at its timeout. */
static void call_undecodable(rt_node_t *n, Cairn__Rt__DistFrame *f, rt_pid_t target)
{
    if (!(f->flags & RT_MSGF_CALL) || !f->from_id || !f->ref)
        return;
    rt__dist_down((rt_pid_t){n->index, f->from_id, f->from_serial}, f->ref, target, RT_R_BADMSG);
}

/* CALL_NAME: resolve, monitor the process for the caller, deliver. Exactly one answer goes
 * back through the usual paths: the callee's reply, the DOWN of its monitor, or a DOWN now
 * (noproc: the name is not registered; badmsg: the request cannot be decoded). */
static void call_name_arrived(rt_node_t *n, Cairn__Rt__DistFrame *f)
{
    rt_pid_t caller = {n->index, f->from_id, f->from_serial};
    if (!f->from_id || !f->ref || !f->to_name || !(f->flags & RT_MSGF_CALL)) {
        rt_warn("dist: ignored a malformed call by name from %s", n->name);
        return;
    }
    rt_pid_t target = rt_whereis(f->to_name);
    if (rt_pid_is_nil(target)) {
        rt_debug("dist: %s called unregistered name '%s'", n->name, f->to_name);
        rt__dist_down(caller, f->ref, RT_NOPID, RT_R_NOPROC);
        return;
    }
    rt_msg_t *m = msg_from_frame(n, f);
    if (!m) {
        call_undecodable(n, f, target);
        return;
    }
    /* Tracked before the monitor exists: a DOWN sent from here on (the process dead
     * already, or exiting soon) untracks it, so no entry outlives its monitor. */
    name_call_track(n, f->ref, target);
    rt__monitor_install(caller, target, f->ref);
    rt__send_local(target, m);
}

void rt__node_dispatch(rt_node_t *n, Cairn__Rt__DistFrame *f)
{
    rt_pid_t local = {0, f->to_id, f->to_serial};
    rt_pid_t remote = {n->index, f->from_id, f->from_serial};
    switch (f->kind) {
    case CAIRN__RT__DIST_FRAME__KIND__MSG: {
        rt_msg_t *m = msg_from_frame(n, f);
        if (m) {
            rt__send_local(local, m);
        } else if (f->flags & RT_MSGF_CALL) { /* the caller monitors local with this ref */
            rt__monitor_remove(local, f->ref);
            call_undecodable(n, f, local);
        }
        break;
    }
    case CAIRN__RT__DIST_FRAME__KIND__CALL_NAME:
        call_name_arrived(n, f);
        break;
    case CAIRN__RT__DIST_FRAME__KIND__REG_SEND: {
        rt_msg_t *m = msg_from_frame(n, f);
        if (m && f->to_name && rt_send_name(NULL, f->to_name, m) == RT_ENOPROC)
            rt_debug("dist: %s sent to unregistered name '%s'", n->name, f->to_name);
        else if (m && !f->to_name)
            rt_msg_free(m);
        break;
    }
    case CAIRN__RT__DIST_FRAME__KIND__LINK:
        if (rt__link_from_remote(local, remote) == 0)
            track_link(n, local, remote, true);
        break;
    case CAIRN__RT__DIST_FRAME__KIND__UNLINK:
        track_link(n, local, remote, false);
        rt__unlink_local_side(local, remote);
        break;
    case CAIRN__RT__DIST_FRAME__KIND__EXIT:
        if (f->linked) {
            track_link(n, local, remote, false);
            rt_msg_t *m = rt__sig_new(RT_SIG_EXIT_LINK, remote, sizeof(rt_exit_msg_t));
            *(rt_exit_msg_t *)(void *)m->data = (rt_exit_msg_t){remote, f->reason};
            rt__send_local(local, m);
        } else {
            rt__exit_signal_from(remote, local, f->reason);
        }
        break;
    case CAIRN__RT__DIST_FRAME__KIND__MONITOR:
        rt__monitor_install(remote, local, f->ref);
        break;
    case CAIRN__RT__DIST_FRAME__KIND__DEMONITOR:
        if (f->to_id == 0) { /* a call by name's: the caller never learnt the pid */
            rt_pid_t target;
            if (name_call_untrack(n, f->ref, &target))
                rt__monitor_remove(target, f->ref);
        } else {
            rt__monitor_remove(local, f->ref);
        }
        break;
    case CAIRN__RT__DIST_FRAME__KIND__DOWN:
        untrack_monitor(n, f->ref);
        down_local(local, f->ref, f->from_id ? remote : RT_NOPID, f->reason);
        break;
    case CAIRN__RT__DIST_FRAME__KIND__HEARTBEAT:
        break;
    default:
        rt_warn("dist: ignored a frame of unknown kind %d from %s", (int)f->kind, n->name);
        break;
    }
}

/* ------------------------------------------------------------------ public API */

int rt_node_connect(const char *node, uint32_t timeout_ms)
{
    if (!rt__dist.enabled)
        return RT_ENOTCONN;
    if (!node || !rt__node_name_valid(node, NULL, 0, NULL))
        return RT_EINVAL;
    if (rt__is_local_node_name(node))
        return 0;
    if (rt__tls.sched)
        return RT_ECALLER;
    rt_node_t *n = node_for_send(node);
    if (!n)
        return RT_ELIMIT;
    uint64_t end = rt_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        int st = atomic_load(&n->state);
        if (st == NODE_UP)
            return 0;
        if (st == NODE_DOWN) {
            pthread_mutex_lock(&n->mx); /* fail_err is written under it, with the state */
            int err = n->fail_err;
            pthread_mutex_unlock(&n->mx);
            return err ? err : RT_ENOTCONN;
        }
        if (rt_now_ns() >= end)
            return RT_ETIMEDOUT;
        usleep(1000);
    }
}

bool rt_node_is_up(const char *node)
{
    if (!rt__dist.enabled || !node)
        return false;
    pthread_mutex_lock(&rt__dist.mx);
    rt_node_t *n = find_latest_locked(node);
    bool up = n && atomic_load(&n->state) == NODE_UP;
    pthread_mutex_unlock(&rt__dist.mx);
    return up;
}

size_t rt_node_list(char (*names)[RT_NODE_NAME_MAX], size_t max)
{
    if (!rt__dist.enabled)
        return 0;
    size_t count = 0;
    pthread_mutex_lock(&rt__dist.mx);
    /* At most one entry per name is not down (a new entry is made only when the newest is
     * down), so no name appears twice. */
    for (uint32_t i = 1; i < rt__dist.nnodes; i++) {
        rt_node_t *n = rt__dist.nodes[i];
        if (!n || atomic_load(&n->state) != NODE_UP)
            continue;
        if (count < max)
            snprintf(names[count], RT_NODE_NAME_MAX, "%s", n->name);
        count++;
    }
    pthread_mutex_unlock(&rt__dist.mx);
    return count;
}

static void disconnect_on_loop(void *arg)
{
    rt_node_t *n = arg;
    if (n->conn)
        rt__link_close(n->conn, "disconnected on request");
    else
        rt__node_down(n, RT_ENOTCONN);
}

int rt_node_disconnect(const char *node)
{
    if (!rt__dist.enabled || !node)
        return RT_ENOTCONN;
    pthread_mutex_lock(&rt__dist.mx);
    rt_node_t *n = find_latest_locked(node);
    pthread_mutex_unlock(&rt__dist.mx);
    if (!n || atomic_load(&n->state) == NODE_DOWN)
        return RT_ENOTCONN;
    rt__loop_call(disconnect_on_loop, n);
    return 0;
}

int rt_pid_from_wire(const char *node, uint32_t id, uint32_t serial, rt_pid_t *out)
{
    if (!node || rt__is_local_node_name(node)) {
        *out = (rt_pid_t){0, id, serial};
        return 0;
    }
    rt_node_t *n = node_for_send(node);
    if (!n)
        return RT_EINVAL;
    *out = (rt_pid_t){n->index, id, serial};
    return 0;
}

/* ------------------------------------------------------------------ start / stop */

int rt__dist_start(const rt_config_t *c)
{
    memset(&rt__dist, 0, sizeof rt__dist);
    if (!c->node_name)
        return 0;
    /* name@host:0 asks for a free port; the node's name then carries the bound one. */
    char host[256], name[256];
    int port;
    size_t nlen = strlen(c->node_name);
    bool any_port = nlen > 2 && nlen < sizeof name && strcmp(c->node_name + nlen - 2, ":0") == 0;
    snprintf(name, sizeof name, "%s", c->node_name);
    if (any_port)
        snprintf(name + nlen - 1, sizeof name - (nlen - 1), "1");
    if (!rt__node_name_valid(name, host, sizeof host, &port)) {
        rt_error("dist: bad node name '%s' (expected name@host:port)", c->node_name);
        return RT_EINVAL;
    }
    if (any_port)
        port = 0;
    if (!c->cookie || !*c->cookie || strlen(c->cookie) >= sizeof rt__dist.cookie) {
        rt_error("dist: a cookie (1..255 bytes) is required with a node name");
        return RT_EINVAL;
    }
    snprintf(rt__dist.self, sizeof rt__dist.self, "%s", c->node_name);
    snprintf(rt__dist.cookie, sizeof rt__dist.cookie, "%s", c->cookie);
    if (getrandom(&rt__dist.creation, sizeof rt__dist.creation, 0) != sizeof rt__dist.creation)
        rt__dist.creation = (uint32_t)getpid();
    rt__dist.heartbeat_ms = c->heartbeat_ms;
    rt__dist.net_timeout_ms = c->net_timeout_ms;
    pthread_mutex_init(&rt__dist.mx, NULL);
    rt__dist.nnodes = 1;
    rt__dist.enabled = true;
    int rc = rt__link_listen(host, &port);
    if (rc != 0) {
        rt__dist.enabled = false;
        pthread_mutex_destroy(&rt__dist.mx);
        return rc;
    }
    /* with any_port, rt__link_listen has put the bound port into rt__dist.self already,
     * before it started accepting: no peer ever sees the name change */
    rt_info("dist: node %s listening on %s:%d", rt__dist.self, host, port);
    return 0;
}

static void stop_on_loop(void *arg)
{
    (void)arg;
    rt__link_stop_all();
}

void rt__dist_stop(void)
{
    if (!rt__dist.enabled)
        return;
    rt__loop_call(stop_on_loop, NULL);
    /* wait (bounded) until every link is down, so peers see a clean close */
    for (int i = 0; i < 2000; i++) {
        bool any = false;
        pthread_mutex_lock(&rt__dist.mx);
        for (uint32_t k = 1; k < rt__dist.nnodes; k++)
            if (rt__dist.nodes[k] && atomic_load(&rt__dist.nodes[k]->state) != NODE_DOWN)
                any = true;
        pthread_mutex_unlock(&rt__dist.mx);
        if (!any)
            break;
        usleep(1000);
    }
}

/* After the loop stopped: free the node table. */
void rt__dist_free(void)
{
    if (!rt__dist.enabled)
        return;
    for (uint32_t k = 1; k < rt__dist.nnodes; k++) {
        rt_node_t *n = rt__dist.nodes[k];
        if (!n)
            continue;
        free(n->obuf);
        rt__hmap_free(&n->links);
        rt__hmap_free(&n->monitors);
        rt__hmap_free(&n->name_calls);
        pthread_mutex_destroy(&n->mx);
        free(n);
        rt__dist.nodes[k] = NULL;
    }
    free(rt__dist.subs);
    pthread_mutex_destroy(&rt__dist.mx);
    memset(&rt__dist, 0, sizeof rt__dist);
}
