/*
 * ring_mgr.c — the ring manager (node/ring_mgr.h): this node's cluster state, gossip, the
 * claimant's duties and the cluster commands of cairn-admin.
 *
 * Every message here is a packed protobuf in a plain payload (proto/cluster.proto between
 * ring managers, proto/admin.proto with cairn-admin), so it crosses node links as bytes.
 *
 * State ownership: the ring manager is the only writer of the published state (kv_publish);
 * the states it publishes are owned by kv->states. It owns the staged changes (meaningful on
 * the claimant), the table of requests waiting for another node's answer (forwards to the
 * claimant, joins, ringready collections, the transfers and transfer-limit gatherings) and
 * the timers.
 */
#include "node/ring_mgr.h"

#include "node/handoff.h"
#include "node/node.h"
#include "node/vnode.h"
#include "proto/admin.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "ring/gossip.h"
#include "runtime/dist.h"

#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(CAIRN__CLUSTER__MSG_TYPE__GOSSIP == KV_MSG_PRIVATE + 72 &&
                   CAIRN__CLUSTER__MSG_TYPE__STATE_RESP == KV_MSG_PRIVATE + 74,
               "cluster.proto's message types must stay in node.c/admin's private range");

enum {
    RM_MSG_GOSSIP_TICK = KV_MSG_PRIVATE + 77,
    RM_MSG_CLAIMANT_TICK = KV_MSG_PRIVATE + 78,
    RM_MSG_STOP_NODE = KV_MSG_PRIVATE + 79,
};

#define RM_MAX_STAGED 64
#define RM_MAX_WAITING 64
#define RM_CALL_MS 10000u    /* a forward to the claimant, a join's state request */
#define RM_READY_CALL_MS 5000u
#define RM_STOP_DELAY_MS 3000u /* a removed node gossips this long before it stops */
#define RM_STOP_POLL_MS 500u   /* ... then waits for its handoffs, looking this often ... */
#define RM_STOP_MAX_WAIT_MS 300000u /* ... at most this long */

/* A request waiting for other nodes: the admin requester and what it waits for. */
typedef enum { WAIT_FORWARD, WAIT_JOIN, WAIT_READY, WAIT_GATHER } wait_kind_t;

/* WAIT_GATHER (TRANSFERS, TRANSFER_LIMIT): the members' answers as they come back. */
typedef struct gather_s {
    Cairn__Admin__AdminResp *resp[RM_MAX_WAITING]; /* owned (unpacked); NULL: none (yet) */
    int reason[RM_MAX_WAITING];     /* the call failed: why */
    uint32_t limit;                 /* TRANSFER_LIMIT: the limit set (0: only shown) */
    bool self_included;             /* the answering node is one of the nodes reported */
} gather_t;

typedef struct waiting_s {
    bool used;
    wait_kind_t kind;
    rt_pid_t reply_to;       /* the requester (cairn-admin, or a forwarding ring manager) */
    rt_ref_t reply_ref;      /* nonzero: reply_to called us (answer with rt_reply) */
    uint64_t req_id;
    int command;
    char node[RING_NODE_NAME_MAX];  /* WAIT_JOIN: the node joined */
    /* WAIT_READY: the calls out and what came back */
    rt_ref_t refs[RM_MAX_WAITING];
    char *names[RM_MAX_WAITING];    /* owned */
    uint32_t ncalls, answered;
    bool disagree[RM_MAX_WAITING];
    uint64_t fingerprint;           /* ours when the collection started */
    gather_t *gather;               /* WAIT_GATHER (owned) */
} waiting_t;

typedef struct ring_mgr_s {
    kv_node_t *kv;
    const ring_mgr_args_t *args;
    const char *self;
    cstate_change_t staged[RM_MAX_STAGED];
    size_t nstaged;
    waiting_t waiting[RM_MAX_WAITING];
    uint64_t rng;
    bool stopping;           /* removed: the node stops soon */
    uint32_t stop_waited_ms; /* how long it has waited for handoffs to finish */
    uint64_t shown_plan;     /* fingerprint of the last plan `cluster plan` showed (0: none
                              * since the staged changes last changed) */
} ring_mgr_t;

/* ---------------------------------------------------------------- sending */

static rt_msg_t *packed_msg(uint32_t type, const ProtobufCMessage *pb)
{
    size_t n = protobuf_c_message_get_packed_size(pb);
    rt_msg_t *m = rt_msg_new(type, n);
    protobuf_c_message_pack(pb, m->data);
    return m;
}

static rt_msg_t *gossip_msg(ring_mgr_t *s, uint32_t type)
{
    size_t len = 0;
    uint8_t *bytes = cstate_encode(kv_cstate(s->kv), &len);
    if (!bytes)
        abort();
    Cairn__Cluster__Gossip g = CAIRN__CLUSTER__GOSSIP__INIT;
    g.sender = (char *)s->self;
    g.has_state = 1;
    g.state = (ProtobufCBinaryData){len, bytes};
    rt_msg_t *m = packed_msg(type, &g.base);
    free(bytes);
    return m;
}

static void push_to(ring_mgr_t *s, const char *node)
{
    if (strcmp(node, s->self) != 0)
        rt_send_name(node, RING_MGR_NAME, gossip_msg(s, CAIRN__CLUSTER__MSG_TYPE__GOSSIP));
}

static void push_random(ring_mgr_t *s, unsigned fanout)
{
    const cstate_t *cs = kv_cstate(s->kv);
    uint32_t peers[GOSSIP_FANOUT_MAX];
    if (fanout > GOSSIP_FANOUT_MAX)
        fanout = GOSSIP_FANOUT_MAX;
    size_t n = gossip_pick_peers(cs, s->self, &s->rng, fanout, peers);
    for (size_t i = 0; i < n; i++)
        push_to(s, cstate_member_name(cs, peers[i]));
}

/* Admin responses: to a caller (a forwarding ring manager) as a reply, else as a message. */
static void answer(rt_pid_t to, rt_ref_t ref, Cairn__Admin__AdminResp *r)
{
    rt_msg_t *m = packed_msg(CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE, &r->base);
    if (ref)
        rt_reply((rt_from_t){to, ref}, m);
    else
        rt_send(to, m);
}

static void resp_init(Cairn__Admin__AdminResp *r, uint64_t req_id, bool ok)
{
    cairn__admin__admin_resp__init(r);
    r->has_req_id = 1;
    r->req_id = req_id;
    r->has_ok = 1;
    r->ok = ok;
    r->node = (char *)rt_node_self();
    r->version = CAIRN_VERSION;
}

static void answer_error(rt_pid_t to, rt_ref_t ref, uint64_t req_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_error(rt_pid_t to, rt_ref_t ref, uint64_t req_id, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Cairn__Admin__AdminResp r;
    resp_init(&r, req_id, false);
    r.errmsg = text;
    answer(to, ref, &r);
}

/* ---------------------------------------------------------------- installing a state */

static void schedule_stop(ring_mgr_t *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    rt_warn("cluster: %s; this node stops in %u s and starts over as a node of its own when "
            "restarted",
            why, RM_STOP_DELAY_MS / 1000);
    rt_send_after(RM_STOP_DELAY_MS, rt_self(), rt_msg_new(RM_MSG_STOP_NODE, 0));
}

/* Saves ns (taken), then publishes it and wakes the vnode starter. */
static void install(ring_mgr_t *s, cstate_t *ns, const char *why)
{
    char err[512];
    if (cstate_save(ns, s->args->ring_path, err, sizeof err) != 0)
        rt_error("cluster: cannot save the ring (%s); running on the state in memory: %s", why,
                 err);
    kv_publish(s->kv, ns);
    const char *claimant = cstate_claimant_effective(ns);
    rt_info("cluster: new state %016" PRIx64 " (%s): %" PRIu32 " members, claimant %s, %" PRIu32
            " partitions pending",
            cstate_fingerprint(ns), why, cstate_member_count(ns), claimant ? claimant : "none",
            cstate_pending_count(ns));
    rt_send_name(NULL, VNODE_PROXY_NAME, rt_msg_new(RING_MGR_MSG_VNODES_CHANGED, 0));
    uint32_t me = cstate_member_index(ns, s->self);
    if (me != CSTATE_NONE) {
        cstate_status_t st = cstate_member_status(ns, me);
        if (st == CSTATE_REMOVED)
            schedule_stop(s, "this node was removed from the cluster");
        else if (st == CSTATE_EXITING)
            rt_info("cluster: this node is exiting (it owns no partitions any more)");
    }
}

/* Installs ns (taken) as a change made here, and spreads it. */
static void change(ring_mgr_t *s, cstate_t *ns, const char *why)
{
    install(s, ns, why);
    push_random(s, GOSSIP_FANOUT);
}

/* ---------------------------------------------------------------- gossip in */

static void on_gossip(ring_mgr_t *s, const rt_msg_t *m)
{
    Cairn__Cluster__Gossip *g = cairn__cluster__gossip__unpack(NULL, m->size, m->data);
    if (!g || !g->sender || !g->has_state) {
        rt_warn("cluster: malformed gossip dropped");
        if (g)
            cairn__cluster__gossip__free_unpacked(g, NULL);
        return;
    }
    char err[256];
    cstate_t *theirs = NULL;
    if (cstate_decode(g->state.data, g->state.len, &theirs, err, sizeof err) != 0) {
        rt_warn("cluster: gossip from %s refused: %s", g->sender, err);
        cairn__cluster__gossip__free_unpacked(g, NULL);
        return;
    }
    /* A member marked down that gossips again learns it from the reply and marks itself up
     * (gossip_receive's GOSSIP_SELF_UP on its side). */
    const cstate_t *mine = kv_cstate(s->kv);
    cstate_t *merged = NULL;
    unsigned act = gossip_receive(mine, theirs, s->self, g->sender, &merged);
    if (act & GOSSIP_INSTALL)
        install(s, merged, "gossip");
    if (act & GOSSIP_SPREAD)
        push_random(s, GOSSIP_FANOUT);
    /* A removed sender sees its removal in our state and stops (GOSSIP_SELF_REMOVED there). */
    if (act & (GOSSIP_REPLY | GOSSIP_TELL_REMOVED))
        push_to(s, g->sender);
    cstate_free(theirs);
    cairn__cluster__gossip__free_unpacked(g, NULL);
}

static void on_state_req(ring_mgr_t *s, const rt_msg_t *m)
{
    if (rt_is_call(m))
        rt_reply(rt_call_from(m), gossip_msg(s, CAIRN__CLUSTER__MSG_TYPE__STATE_RESP));
}

/* ---------------------------------------------------------------- waiting requests */

static waiting_t *wait_new(ring_mgr_t *s, wait_kind_t kind, rt_pid_t to, rt_ref_t ref,
                           uint64_t req_id, int command)
{
    for (size_t i = 0; i < RM_MAX_WAITING; i++)
        if (!s->waiting[i].used) {
            waiting_t *w = &s->waiting[i];
            memset(w, 0, sizeof *w);
            *w = (waiting_t){.used = true, .kind = kind, .reply_to = to, .reply_ref = ref,
                             .req_id = req_id, .command = command};
            return w;
        }
    return NULL;
}

static void wait_free(waiting_t *w)
{
    for (uint32_t i = 0; i < w->ncalls; i++)
        free(w->names[i]);
    if (w->gather)
        for (uint32_t i = 0; i < RM_MAX_WAITING; i++)
            if (w->gather->resp[i])
                cairn__admin__admin_resp__free_unpacked(w->gather->resp[i], NULL);
    free(w->gather);
    memset(w, 0, sizeof *w);
}

static waiting_t *wait_by_ref(ring_mgr_t *s, rt_ref_t ref, uint32_t *call)
{
    for (size_t i = 0; i < RM_MAX_WAITING; i++) {
        waiting_t *w = &s->waiting[i];
        if (!w->used)
            continue;
        for (uint32_t c = 0; c < w->ncalls; c++)
            if (w->refs[c] == ref) {
                *call = c;
                return w;
            }
    }
    return NULL;
}

/* ---------------------------------------------------------------- views for the admin */

static void fill_member(Cairn__Admin__Member *mb, const cstate_t *cs, uint32_t i, const char *self,
                        const char *claimant)
{
    cairn__admin__member__init(mb);
    const char *name = cstate_member_name(cs, i);
    mb->node = (char *)name;
    mb->status = (char *)cstate_status_name(cstate_member_status(cs, i));
    mb->has_owned = mb->has_owned_after = mb->has_reachable = mb->has_claimant = 1;
    mb->owned = cstate_owned(cs, i);
    mb->owned_after = cstate_owned_after(cs, i);
    mb->reachable = strcmp(name, self) == 0 || rt_node_is_up(name);
    mb->claimant = claimant && strcmp(name, claimant) == 0;
}

/* A view of cs into v; the arrays are malloc'ed (view_free). */
typedef struct view_s {
    Cairn__Admin__ClusterView v;
    Cairn__Admin__Member *members, **member_ptrs;
    Cairn__Admin__Transfer *transfers, **transfer_ptrs;
    Cairn__Admin__Staged *staged, **staged_ptrs;
    char **unreachable;
    char vclock[4096];
} view_t;

static const char *change_action(cstate_change_kind_t k)
{
    switch (k) {
    case CSTATE_CHANGE_LEAVE: return "leave";
    case CSTATE_CHANGE_FORCE_REMOVE: return "force-remove";
    case CSTATE_CHANGE_REPLACE: return "replace";
    case CSTATE_CHANGE_FORCE_REPLACE: return "force-replace";
    }
    return "?";
}

/* A view of cs; the staged changes are `staged` plus a join for every joining member of
 * joins_from (the state before a plan; NULL: cs). */
static void view_fill(view_t *w, ring_mgr_t *s, const cstate_t *cs, const cstate_change_t *staged,
                      size_t nstaged, const cstate_t *joins_from)
{
    memset(w, 0, sizeof *w);
    Cairn__Admin__ClusterView *v = &w->v;
    cairn__admin__cluster_view__init(v);
    uint32_t n = cstate_member_count(cs), q = cstate_size(cs);
    const char *claimant = cstate_claimant_effective(cs);
    v->has_ring_size = v->has_pending = v->has_fingerprint = v->has_target_n_val = 1;
    v->ring_size = q;
    v->claimant = (char *)(claimant ? claimant : "");
    v->pending = cstate_pending_count(cs);
    v->fingerprint = cstate_fingerprint(cs);
    v->target_n_val = s->kv->cfg->target_n_val;
    cstate_vclock_text(cs, w->vclock, sizeof w->vclock);
    v->vclock = w->vclock;
    w->members = calloc(n ? n : 1, sizeof *w->members);
    w->member_ptrs = calloc(n ? n : 1, sizeof *w->member_ptrs);
    w->unreachable = calloc(n ? n : 1, sizeof *w->unreachable);
    w->transfers = calloc(q, sizeof *w->transfers);
    w->transfer_ptrs = calloc(q, sizeof *w->transfer_ptrs);
    w->staged = calloc(nstaged + n + 1, sizeof *w->staged);
    w->staged_ptrs = calloc(nstaged + n + 1, sizeof *w->staged_ptrs);
    if (!w->members || !w->member_ptrs || !w->unreachable || !w->transfers ||
        !w->transfer_ptrs || !w->staged || !w->staged_ptrs)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        fill_member(&w->members[i], cs, i, s->self, claimant);
        w->member_ptrs[v->n_members++] = &w->members[i];
        cstate_status_t st = cstate_member_status(cs, i);
        if (!w->members[i].reachable && st != CSTATE_REMOVED)
            w->unreachable[v->n_unreachable++] = (char *)cstate_member_name(cs, i);
    }
    const cstate_t *jf = joins_from ? joins_from : cs;
    for (uint32_t i = 0; i < cstate_member_count(jf) && v->n_staged < nstaged + n; i++) {
        if (cstate_member_status(jf, i) != CSTATE_JOINING)
            continue; /* joins are implicit staged changes */
        Cairn__Admin__Staged *sg = &w->staged[v->n_staged];
        cairn__admin__staged__init(sg);
        sg->action = "join";
        sg->node = (char *)cstate_member_name(jf, i);
        w->staged_ptrs[v->n_staged++] = sg;
    }
    v->members = w->member_ptrs;
    v->unreachable = w->unreachable;
    const ring_t *r = cstate_ring(cs);
    for (uint32_t p = 0; p < q; p++) {
        uint32_t next = cstate_next_owner(cs, p);
        if (next == CSTATE_NONE)
            continue;
        Cairn__Admin__Transfer *t = &w->transfers[v->n_pending_transfers];
        cairn__admin__transfer__init(t);
        t->has_partition = t->has_done = 1;
        t->partition = p;
        t->owner = (char *)cstate_member_name(cs, ring_owner(r, p));
        t->next_owner = (char *)cstate_member_name(cs, next);
        t->done = cstate_transfer_is_done(cs, p);
        w->transfer_ptrs[v->n_pending_transfers++] = t;
    }
    v->pending_transfers = w->transfer_ptrs;
    for (size_t i = 0; i < nstaged; i++) {
        Cairn__Admin__Staged *sg = &w->staged[v->n_staged];
        cairn__admin__staged__init(sg);
        sg->action = (char *)change_action(staged[i].kind);
        sg->node = (char *)staged[i].node;
        if (staged[i].new_node[0])
            sg->new_node = (char *)staged[i].new_node;
        w->staged_ptrs[v->n_staged++] = sg;
    }
    v->staged = w->staged_ptrs;
}

static void view_free(view_t *w)
{
    free(w->members);
    free(w->member_ptrs);
    free(w->unreachable);
    free(w->transfers);
    free(w->transfer_ptrs);
    free(w->staged);
    free(w->staged_ptrs);
}

static void answer_view(rt_pid_t to, rt_ref_t ref, uint64_t req_id, const char *message,
                        view_t *w)
{
    Cairn__Admin__AdminResp r;
    resp_init(&r, req_id, true);
    r.message = (char *)message;
    r.cluster = &w->v;
    answer(to, ref, &r);
}

/* ---------------------------------------------------------------- claimant commands */

static bool is_claimant_command(int c)
{
    return c == CAIRN__ADMIN__COMMAND__CLUSTER_LEAVE ||
           c == CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REMOVE ||
           c == CAIRN__ADMIN__COMMAND__CLUSTER_REPLACE ||
           c == CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REPLACE ||
           c == CAIRN__ADMIN__COMMAND__CLUSTER_PLAN || c == CAIRN__ADMIN__COMMAND__CLUSTER_COMMIT ||
           c == CAIRN__ADMIN__COMMAND__CLUSTER_CLEAR;
}

static void stage(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req,
                  cstate_change_kind_t kind)
{
    uint64_t id = req->req_id;
    if (!req->node || !req->node[0]) {
        answer_error(to, ref, id, "no node named");
        return;
    }
    if ((kind == CSTATE_CHANGE_REPLACE || kind == CSTATE_CHANGE_FORCE_REPLACE) &&
        (!req->new_node || !req->new_node[0])) {
        answer_error(to, ref, id, "no replacement node named");
        return;
    }
    if (s->nstaged == RM_MAX_STAGED) {
        answer_error(to, ref, id, "too many staged changes (%d): commit or clear them first",
                     RM_MAX_STAGED);
        return;
    }
    cstate_change_t c = {.kind = kind};
    snprintf(c.node, sizeof c.node, "%s", req->node);
    if (req->new_node)
        snprintf(c.new_node, sizeof c.new_node, "%s", req->new_node);
    char err[512];
    if (cstate_change_check(kv_cstate(s->kv), s->staged, s->nstaged, &c, err, sizeof err) != 0) {
        answer_error(to, ref, id, "%s", err);
        return;
    }
    s->staged[s->nstaged++] = c;
    s->shown_plan = 0;
    char text[RING_NODE_NAME_MAX * 2 + 64];
    snprintf(text, sizeof text, "staged: %s %s%s%s", change_action(kind), c.node,
             c.new_node[0] ? " -> " : "", c.new_node);
    rt_info("cluster: %s", text);
    view_t w;
    view_fill(&w, s, kv_cstate(s->kv), s->staged, s->nstaged, NULL);
    answer_view(to, ref, id, text, &w);
    view_free(&w);
}

static void plan_or_commit(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, uint64_t id, bool commit)
{
    const cstate_t *cs = kv_cstate(s->kv);
    cstate_plan_t plan;
    char err[512];
    if (cstate_plan(cs, s->staged, s->nstaged, s->kv->cfg->target_n_val, s->self, &plan, err,
                    sizeof err) != 0) {
        answer_error(to, ref, id, "%s", err);
        return;
    }
    if (plan.nothing) {
        cstate_plan_free(&plan);
        s->shown_plan = 0;
        answer_error(to, ref, id, "nothing_planned: there are no staged changes and no joining "
                                  "members");
        return;
    }
    view_t w;
    view_fill(&w, s, plan.result, s->staged, s->nstaged, cs);
    /* The plan's members carry the state before (owned) and after (owned_after). */
    for (size_t i = 0; i < w.v.n_members; i++) {
        uint32_t before = cstate_member_index(cs, w.members[i].node);
        w.members[i].owned = before == CSTATE_NONE ? 0 : cstate_owned(cs, before);
    }
    w.v.has_moved_now = w.v.has_transfers = w.v.has_violations = 1;
    w.v.moved_now = plan.moved_now;
    w.v.transfers = plan.transfers;
    w.v.violations = plan.violations;
    /* The joins the plan makes valid are staged too: list them from the state before. */
    char text[160];
    uint64_t fp = cstate_fingerprint(plan.result);
    if (commit && s->shown_plan && s->shown_plan != fp) {
        /* Riak's plan_changed: what would be committed is not what the operator saw. */
        view_free(&w);
        cstate_plan_free(&plan);
        s->shown_plan = 0;
        answer_error(to, ref, id,
                     "plan_changed: the cluster changed since `cluster plan` was shown (a node "
                     "joined, went down or a transfer finished); run `cluster plan` again");
        return;
    }
    if (commit) {
        snprintf(text, sizeof text,
                 "committed: %" PRIu32 " partitions change owner now, %" PRIu32
                 " move by transfer",
                 plan.moved_now, plan.transfers);
        answer_view(to, ref, id, text, &w);
        view_free(&w);
        cstate_t *result = plan.result;
        plan.result = NULL;
        cstate_plan_free(&plan);
        s->nstaged = 0;
        s->shown_plan = 0;
        change(s, result, "cluster commit");
        return;
    }
    snprintf(text, sizeof text, "plan: %" PRIu32 " partitions change owner at commit, %" PRIu32
                                " move by transfer",
             plan.moved_now, plan.transfers);
    s->shown_plan = fp;
    answer_view(to, ref, id, text, &w);
    view_free(&w);
    cstate_plan_free(&plan);
}

static void claimant_command(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref,
                             const Cairn__Admin__AdminReq *req)
{
    uint64_t id = req->req_id;
    switch ((int)req->command) {
    case CAIRN__ADMIN__COMMAND__CLUSTER_LEAVE: stage(s, to, ref, req, CSTATE_CHANGE_LEAVE); break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REMOVE:
        stage(s, to, ref, req, CSTATE_CHANGE_FORCE_REMOVE);
        break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_REPLACE: stage(s, to, ref, req, CSTATE_CHANGE_REPLACE); break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REPLACE:
        stage(s, to, ref, req, CSTATE_CHANGE_FORCE_REPLACE);
        break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_PLAN: plan_or_commit(s, to, ref, id, false); break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_COMMIT: plan_or_commit(s, to, ref, id, true); break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_CLEAR: {
        size_t n = s->nstaged;
        s->nstaged = 0;
        s->shown_plan = 0;
        char text[96];
        snprintf(text, sizeof text, "cleared %zu staged change(s)", n);
        Cairn__Admin__AdminResp r;
        resp_init(&r, id, true);
        r.message = text;
        answer(to, ref, &r);
        break;
    }
    }
}

/* ---------------------------------------------------------------- local commands */

static void cmd_join(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req)
{
    uint64_t id = req->req_id;
    const cstate_t *cs = kv_cstate(s->kv);
    if (!req->node || !req->node[0]) {
        answer_error(to, ref, id, "cluster join: name the node to join");
        return;
    }
    if (strcmp(req->node, s->self) == 0) {
        answer_error(to, ref, id, "self_join: a node cannot join itself");
        return;
    }
    uint32_t active = 0;
    for (uint32_t i = 0; i < cstate_member_count(cs); i++)
        active += cstate_member_status(cs, i) != CSTATE_REMOVED;
    if (active > 1) {
        answer_error(to, ref, id,
                     "not_single_node: this node is already a member of a cluster of %" PRIu32
                     " nodes; only a node on its own can join",
                     active);
        return;
    }
    waiting_t *w = wait_new(s, WAIT_JOIN, to, ref, id, (int)req->command);
    if (!w) {
        answer_error(to, ref, id, "busy: too many cluster requests in progress");
        return;
    }
    snprintf(w->node, sizeof w->node, "%s", req->node);
    Cairn__Cluster__StateReq sr = CAIRN__CLUSTER__STATE_REQ__INIT;
    sr.sender = (char *)s->self;
    w->refs[0] = rt_call_name(req->node, RING_MGR_NAME,
                              packed_msg(CAIRN__CLUSTER__MSG_TYPE__STATE_REQ, &sr.base), RM_CALL_MS);
    w->ncalls = 1;
}

static void join_answered(ring_mgr_t *s, waiting_t *w, const rt_msg_t *m, int failed_reason)
{
    if (failed_reason) {
        answer_error(w->reply_to, w->reply_ref, w->req_id,
                     "not_reachable: cannot get the ring of %s (%s); check that it runs, that "
                     "the name is right and that both nodes share the cookie",
                     w->node, rt_reason_str(failed_reason));
        return;
    }
    Cairn__Cluster__Gossip *g = cairn__cluster__gossip__unpack(NULL, m->size, m->data);
    char err[512];
    cstate_t *theirs = NULL, *joined = NULL;
    if (!g || !g->has_state ||
        cstate_decode(g->state.data, g->state.len, &theirs, err, sizeof err) != 0) {
        answer_error(w->reply_to, w->reply_ref, w->req_id,
                     "unable_to_get_join_ring: %s sent a ring that does not decode", w->node);
    } else if (cstate_join(theirs, s->self, cstate_size(kv_cstate(s->kv)), &joined, err,
                           sizeof err) != 0) {
        answer_error(w->reply_to, w->reply_ref, w->req_id, "%s", err);
    } else {
        char text[RING_NODE_NAME_MAX + 128];
        snprintf(text, sizeof text,
                 "joining the cluster of %s: run `cairn-admin cluster plan` and "
                 "`cairn-admin cluster commit` to make it a member",
                 w->node);
        install(s, joined, "cluster join");
        push_to(s, w->node);
        push_random(s, GOSSIP_FANOUT);
        Cairn__Admin__AdminResp r;
        resp_init(&r, w->req_id, true);
        r.message = text;
        answer(w->reply_to, w->reply_ref, &r);
    }
    cstate_free(theirs);
    if (g)
        cairn__cluster__gossip__free_unpacked(g, NULL);
}

static void cmd_down(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req)
{
    uint64_t id = req->req_id;
    if (!req->node || !req->node[0]) {
        answer_error(to, ref, id, "down: name the node");
        return;
    }
    if (rt_node_is_up(req->node)) {
        answer_error(to, ref, id,
                     "is_up: %s is reachable; only an unreachable node can be marked down",
                     req->node);
        return;
    }
    cstate_t *ns = NULL;
    char err[512];
    if (cstate_mark_down(kv_cstate(s->kv), req->node, s->self, &ns, err, sizeof err) != 0) {
        answer_error(to, ref, id, "%s", err);
        return;
    }
    char text[RING_NODE_NAME_MAX + 32];
    snprintf(text, sizeof text, "%s marked down", req->node);
    change(s, ns, text);
    Cairn__Admin__AdminResp r;
    resp_init(&r, id, true);
    r.message = text;
    answer(to, ref, &r);
}

/* RINGREADY and RING_STATUS: ask every member that should agree for its state. */
static void cmd_collect(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req)
{
    const cstate_t *cs = kv_cstate(s->kv);
    waiting_t *w = wait_new(s, WAIT_READY, to, ref, req->req_id, (int)req->command);
    if (!w) {
        answer_error(to, ref, req->req_id, "busy: too many cluster requests in progress");
        return;
    }
    w->fingerprint = cstate_fingerprint(cs);
    Cairn__Cluster__StateReq sr = CAIRN__CLUSTER__STATE_REQ__INIT;
    sr.sender = (char *)s->self;
    for (uint32_t i = 0; i < cstate_member_count(cs) && w->ncalls < RM_MAX_WAITING; i++) {
        cstate_status_t st = cstate_member_status(cs, i);
        const char *name = cstate_member_name(cs, i);
        if (strcmp(name, s->self) == 0 ||
            (st != CSTATE_VALID && st != CSTATE_LEAVING && st != CSTATE_EXITING &&
             st != CSTATE_JOINING))
            continue;
        w->names[w->ncalls] = strdup(name);
        if (!w->names[w->ncalls])
            abort();
        w->refs[w->ncalls] =
            rt_call_name(name, RING_MGR_NAME,
                         packed_msg(CAIRN__CLUSTER__MSG_TYPE__STATE_REQ, &sr.base), RM_READY_CALL_MS);
        w->ncalls++;
    }
    if (w->ncalls == 0) { /* alone: trivially ready */
        view_t v;
        view_fill(&v, s, cs, NULL, 0, NULL);
        v.v.has_ring_ready = 1;
        v.v.ring_ready = true;
        answer_view(to, ref, req->req_id, "ring ready: this node is the only member", &v);
        view_free(&v);
        wait_free(w);
    }
}

static void collect_answered(ring_mgr_t *s, waiting_t *w, uint32_t call, const rt_msg_t *m,
                             int failed_reason)
{
    w->refs[call] = 0;
    w->answered++;
    bool agree = false;
    if (!failed_reason) {
        Cairn__Cluster__Gossip *g = cairn__cluster__gossip__unpack(NULL, m->size, m->data);
        cstate_t *theirs = NULL;
        char err[256];
        if (g && g->has_state &&
            cstate_decode(g->state.data, g->state.len, &theirs, err, sizeof err) == 0) {
            agree = cstate_fingerprint(theirs) == w->fingerprint;
            cstate_free(theirs);
        }
        if (g)
            cairn__cluster__gossip__free_unpacked(g, NULL);
    }
    w->disagree[call] = !agree;
    if (w->answered < w->ncalls)
        return;
    const cstate_t *cs = kv_cstate(s->kv);
    view_t v;
    view_fill(&v, s, cs, NULL, 0, NULL);
    char **dis = calloc(w->ncalls, sizeof *dis);
    if (!dis)
        abort();
    for (uint32_t i = 0; i < w->ncalls; i++)
        if (w->disagree[i])
            dis[v.v.n_disagreeing++] = w->names[i];
    v.v.disagreeing = dis;
    v.v.has_ring_ready = 1;
    v.v.ring_ready = v.v.n_disagreeing == 0 && cstate_fingerprint(cs) == w->fingerprint;
    char text[128];
    if (v.v.ring_ready)
        snprintf(text, sizeof text, "ring ready: all %u members agree on the ring", w->ncalls + 1);
    else
        snprintf(text, sizeof text, "ring not ready: %zu of %u members disagree or did not answer",
                 v.v.n_disagreeing, w->ncalls + 1);
    answer_view(w->reply_to, w->reply_ref, w->req_id, text, &v);
    free(dis);
    view_free(&v);
    wait_free(w);
}

/* MEMBER_STATUS: the view of this node's state. */
static void cmd_view(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req)
{
    view_t v;
    view_fill(&v, s, kv_cstate(s->kv), NULL, 0, NULL);
    answer_view(to, ref, req->req_id, NULL, &v);
    view_free(&v);
}

/* ---------------------------------------------------------------- transfers, transfer limit */

/* TRANSFERS and TRANSFER_LIMIT are gathered from every member: the asked ring manager calls
 * the other members' ring managers with this_node_only set (each answers for itself, from
 * node/handoff.h), goes on with its other messages meanwhile, and answers once every call
 * has ended (a reply, or a failure within RM_READY_CALL_MS). A member that cannot be asked
 * is reported as such, never left out. */

#define RM_LIMIT_MAX 1024u /* handoff.concurrency's upper bound (node/config.c) */

static void gather_finish(ring_mgr_t *s, waiting_t *w);

/* This node's entry: its limit and, with_held, the vnodes it holds for other owners. */
static void self_handoff(ring_mgr_t *s, Cairn__Admin__NodeHandoff *nh, bool with_held)
{
    cairn__admin__node_handoff__init(nh);
    nh->node = (char *)s->self;
    nh->has_answered = nh->has_limit = 1;
    nh->answered = true;
    nh->limit = handoff_limit(s->kv);
    if (with_held) {
        nh->has_held = 1;
        nh->held = handoff_foreign_vnodes(s->kv);
    }
}

static void set_limit_here(ring_mgr_t *s, uint32_t limit)
{
    uint32_t before = handoff_limit(s->kv);
    handoff_set_limit(limit);
    rt_info("handoff: transfer limit %" PRIu32 " -> %" PRIu32 " (cairn-admin transfer-limit; "
            "until restart)",
            before, limit);
}

/* This node's handoff activity as ActiveTransfer messages, which point into act (both
 * owned; local_act_free). */
typedef struct local_act_s {
    handoff_activity_t *act;
    Cairn__Admin__ActiveTransfer *msgs;
    size_t n;
} local_act_t;

static void local_act_fill(local_act_t *l, ring_mgr_t *s)
{
    size_t max = cstate_size(kv_cstate(s->kv));
    l->act = calloc(max ? max : 1, sizeof *l->act);
    l->msgs = calloc(max ? max : 1, sizeof *l->msgs);
    if (!l->act || !l->msgs)
        abort();
    size_t n = handoff_activity(l->act, max);
    l->n = n < max ? n : max;
    for (size_t i = 0; i < l->n; i++) {
        handoff_activity_t *a = &l->act[i];
        Cairn__Admin__ActiveTransfer *t = &l->msgs[i];
        cairn__admin__active_transfer__init(t);
        t->kind = a->kind;
        t->has_partition = t->has_objects = t->has_bytes = t->has_elapsed_ms = 1;
        t->partition = a->partition;
        t->source = (char *)s->self;
        t->target = a->target;
        t->state = a->state;
        t->objects = a->objects;
        t->bytes = a->bytes;
        t->elapsed_ms = a->elapsed_ms;
    }
}

static void local_act_free(local_act_t *l)
{
    free(l->act);
    free(l->msgs);
}

/* A call from another member's ring manager (or any request with this_node_only): answer
 * for this node alone. */
static void answer_this_node(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref,
                             const Cairn__Admin__AdminReq *req)
{
    Cairn__Admin__AdminResp r;
    resp_init(&r, req->req_id, true);
    Cairn__Admin__NodeHandoff me, *mep = &me;
    if (req->command == CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT) {
        if (req->has_limit)
            set_limit_here(s, req->limit);
        self_handoff(s, &me, false);
        r.n_limits = 1;
        r.limits = &mep;
        answer(to, ref, &r);
        return;
    }
    local_act_t l;
    local_act_fill(&l, s);
    Cairn__Admin__ActiveTransfer **ptrs = calloc(l.n ? l.n : 1, sizeof *ptrs);
    if (!ptrs)
        abort();
    for (size_t i = 0; i < l.n; i++)
        ptrs[i] = &l.msgs[i];
    Cairn__Admin__TransfersReport rep = CAIRN__ADMIN__TRANSFERS_REPORT__INIT;
    rep.n_active = l.n;
    rep.active = ptrs;
    self_handoff(s, &me, true);
    rep.n_nodes = 1;
    rep.nodes = &mep;
    r.transfers = &rep;
    answer(to, ref, &r);
    free(ptrs);
    local_act_free(&l);
}

static void cmd_gather(ring_mgr_t *s, rt_pid_t to, rt_ref_t ref, const Cairn__Admin__AdminReq *req)
{
    uint64_t id = req->req_id;
    bool is_limit = req->command == CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT;
    if (is_limit && req->has_limit && (req->limit < 1 || req->limit > RM_LIMIT_MAX)) {
        answer_error(to, ref, id,
                     "bad_limit: the transfer limit must be 1..%u, not %" PRIu32
                     " (to stop transfers, set handoff.concurrency = 0 in the configuration)",
                     RM_LIMIT_MAX, req->limit);
        return;
    }
    if (req->has_this_node_only && req->this_node_only) {
        answer_this_node(s, to, ref, req);
        return;
    }
    const cstate_t *cs = kv_cstate(s->kv);
    const char *only = is_limit && req->node && req->node[0] ? req->node : NULL;
    if (only) {
        uint32_t i = cstate_member_index(cs, only);
        if (i == CSTATE_NONE || cstate_member_status(cs, i) == CSTATE_REMOVED) {
            answer_error(to, ref, id,
                         "not_member: %s is not a member of this cluster (`cairn-admin "
                         "member-status` lists them)",
                         only);
            return;
        }
    }
    waiting_t *w = wait_new(s, WAIT_GATHER, to, ref, id, (int)req->command);
    if (!w) {
        answer_error(to, ref, id, "busy: too many cluster requests in progress");
        return;
    }
    gather_t *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    w->gather = g;
    g->limit = is_limit && req->has_limit ? req->limit : 0;
    g->self_included = !only || strcmp(only, s->self) == 0;
    if (only)
        snprintf(w->node, sizeof w->node, "%s", only);
    if (g->limit && g->self_included)
        set_limit_here(s, g->limit);
    Cairn__Admin__AdminReq fw = CAIRN__ADMIN__ADMIN_REQ__INIT;
    fw.has_req_id = fw.has_command = fw.has_this_node_only = 1;
    fw.req_id = id;
    fw.command = req->command;
    fw.this_node_only = true;
    fw.has_limit = g->limit != 0;
    fw.limit = g->limit;
    for (uint32_t i = 0; i < cstate_member_count(cs) && w->ncalls < RM_MAX_WAITING; i++) {
        const char *name = cstate_member_name(cs, i);
        if (strcmp(name, s->self) == 0 || cstate_member_status(cs, i) == CSTATE_REMOVED ||
            (only && strcmp(name, only) != 0))
            continue;
        w->names[w->ncalls] = strdup(name);
        if (!w->names[w->ncalls])
            abort();
        w->refs[w->ncalls] =
            rt_call_name(name, RING_MGR_NAME,
                         packed_msg(CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST, &fw.base),
                         RM_READY_CALL_MS);
        w->ncalls++;
    }
    if (w->ncalls == 0) {
        gather_finish(s, w);
        wait_free(w);
    }
}

/* The entry of call i of w into nh: answered with its limit (and, for TRANSFERS, what it
 * holds), or why not (the text goes to err, which nh then points to). */
static void gathered_entry(const waiting_t *w, uint32_t i, bool transfers,
                           Cairn__Admin__NodeHandoff *nh, char *err, size_t errlen)
{
    const gather_t *g = w->gather;
    const Cairn__Admin__AdminResp *r = g->resp[i];
    cairn__admin__node_handoff__init(nh);
    nh->node = w->names[i];
    nh->has_answered = 1;
    const Cairn__Admin__NodeHandoff *theirs = NULL;
    if (r && r->has_ok && r->ok) {
        if (transfers && r->transfers && r->transfers->n_nodes >= 1)
            theirs = r->transfers->nodes[0];
        else if (!transfers && r->n_limits >= 1)
            theirs = r->limits[0];
    }
    if (theirs) {
        nh->answered = true;
        nh->has_limit = theirs->has_limit;
        nh->limit = theirs->limit;
        nh->has_held = theirs->has_held;
        nh->held = theirs->held;
        return;
    }
    if (r && r->has_ok && r->ok)
        snprintf(err, errlen, "answered without %s (a cairnd of an older version?)",
                 transfers ? "its transfers" : "its limit");
    else if (r)
        snprintf(err, errlen, "%s", r->errmsg ? r->errmsg : "failed");
    else if (g->reason[i])
        snprintf(err, errlen, "%s", rt_reason_str(g->reason[i]));
    else
        snprintf(err, errlen, "sent a malformed answer");
    nh->error = err;
}

#define RM_ERR_LEN 256

static int active_order(const void *a, const void *b)
{
    const Cairn__Admin__ActiveTransfer *x = *(Cairn__Admin__ActiveTransfer *const *)a;
    const Cairn__Admin__ActiveTransfer *y = *(Cairn__Admin__ActiveTransfer *const *)b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return strcmp(x->source ? x->source : "", y->source ? y->source : "");
}

static const Cairn__Admin__NodeHandoff *find_node(Cairn__Admin__NodeHandoff **nodes, size_t n,
                                                  const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (nodes[i]->node && strcmp(nodes[i]->node, name) == 0)
            return nodes[i];
    return NULL;
}

/* Puts the entries in the order of the members in cs (names cs no longer has last). */
static void order_by_member(const cstate_t *cs, Cairn__Admin__NodeHandoff **nodes, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Cairn__Admin__NodeHandoff *x = nodes[i];
        uint32_t xi = cstate_member_index(cs, x->node);
        size_t j = i;
        while (j > 0 && cstate_member_index(cs, nodes[j - 1]->node) > xi) {
            nodes[j] = nodes[j - 1];
            j--;
        }
        nodes[j] = x;
    }
}

/* TRANSFERS, every call ended: what runs on every member that answered, the pending
 * ownership changes nobody is sending, and who did not answer. */
static void finish_transfers(ring_mgr_t *s, waiting_t *w)
{
    const gather_t *g = w->gather;
    const cstate_t *cs = kv_cstate(s->kv);
    uint32_t q = cstate_size(cs);
    local_act_t l;
    local_act_fill(&l, s);
    /* the members: this node, then each one asked */
    Cairn__Admin__NodeHandoff *nh = calloc(w->ncalls + 1, sizeof *nh);
    Cairn__Admin__NodeHandoff **nhp = calloc(w->ncalls + 1, sizeof *nhp);
    char(*errs)[RM_ERR_LEN] = calloc(w->ncalls + 1, sizeof *errs);
    if (!nh || !nhp || !errs)
        abort();
    size_t nn = 0, not_answered = 0;
    uint64_t held = 0;
    self_handoff(s, &nh[nn], true);
    held += nh[nn].held;
    nhp[nn] = &nh[nn];
    nn++;
    size_t nactive = l.n;
    for (uint32_t i = 0; i < w->ncalls; i++) {
        gathered_entry(w, i, true, &nh[nn], errs[nn], sizeof errs[nn]);
        not_answered += !nh[nn].answered;
        held += nh[nn].held;
        if (nh[nn].answered)
            nactive += g->resp[i]->transfers->n_active;
        nhp[nn] = &nh[nn];
        nn++;
    }
    /* what runs, by partition (the members' messages stay owned by their answers) */
    Cairn__Admin__ActiveTransfer **act = calloc(nactive ? nactive : 1, sizeof *act);
    if (!act)
        abort();
    size_t na = 0;
    for (size_t i = 0; i < l.n; i++)
        act[na++] = &l.msgs[i];
    for (uint32_t i = 0; i < w->ncalls; i++) {
        if (!nh[i + 1].answered)
            continue;
        const Cairn__Admin__TransfersReport *rep = g->resp[i]->transfers;
        for (size_t k = 0; k < rep->n_active && na < nactive; k++)
            act[na++] = rep->active[k];
    }
    qsort(act, na, sizeof *act, active_order);
    /* what waits: a pending owner change whose owner runs nothing for it */
    Cairn__Admin__Transfer *wt = calloc(q ? q : 1, sizeof *wt);
    Cairn__Admin__Transfer **wtp = calloc(q ? q : 1, sizeof *wtp);
    if (!wt || !wtp)
        abort();
    size_t nw = 0;
    const ring_t *r = cstate_ring(cs);
    for (uint32_t p = 0; p < q; p++) {
        uint32_t next = cstate_next_owner(cs, p);
        if (next == CSTATE_NONE)
            continue;
        const char *owner = cstate_member_name(cs, ring_owner(r, p));
        const char *target = cstate_member_name(cs, next);
        bool running = false;
        for (size_t k = 0; k < na && !running; k++)
            running = act[k]->partition == p && act[k]->source && act[k]->target &&
                      strcmp(act[k]->source, owner) == 0 && strcmp(act[k]->target, target) == 0;
        if (running)
            continue;
        const Cairn__Admin__NodeHandoff *on = find_node(nhp, nn, owner);
        Cairn__Admin__Transfer *t = &wt[nw];
        cairn__admin__transfer__init(t);
        t->has_partition = t->has_done = 1;
        t->partition = p;
        t->owner = (char *)owner;
        t->next_owner = (char *)target;
        t->done = cstate_transfer_is_done(cs, p);
        t->state = t->done                 ? "handed off; the claimant switches the owner next"
                   : !on || !on->answered ? "waiting; its owner did not answer"
                                          : "waiting for a free transfer slot or a retry";
        wtp[nw++] = t;
    }
    order_by_member(cs, nhp, nn);
    Cairn__Admin__TransfersReport rep = CAIRN__ADMIN__TRANSFERS_REPORT__INIT;
    rep.n_active = na;
    rep.active = act;
    rep.n_waiting = nw;
    rep.waiting = wtp;
    rep.n_nodes = nn;
    rep.nodes = nhp;
    char text[256];
    if (na == 0 && nw == 0 && held == 0) {
        snprintf(text, sizeof text, "%s",
                 not_answered ? "No transfers active on the members that answered"
                              : "No transfers active");
    } else {
        int at = snprintf(text, sizeof text, "%zu transfer(s) active, %zu waiting", na, nw);
        uint32_t pending = cstate_pending_count(cs);
        if (pending && at > 0 && (size_t)at < sizeof text)
            at += snprintf(text + at, sizeof text - (size_t)at,
                           "; %" PRIu32 " partition(s) change owner", pending);
        if (held && at > 0 && (size_t)at < sizeof text)
            snprintf(text + at, sizeof text - (size_t)at,
                     "; %" PRIu64 " partition(s) held for other owners", held);
    }
    view_t v;
    view_fill(&v, s, cs, NULL, 0, NULL);
    Cairn__Admin__AdminResp resp;
    resp_init(&resp, w->req_id, true);
    resp.message = text;
    resp.cluster = &v.v;
    resp.transfers = &rep;
    answer(w->reply_to, w->reply_ref, &resp);
    view_free(&v);
    free(wt);
    free(wtp);
    free(act);
    free(nh);
    free(nhp);
    free(errs);
    local_act_free(&l);
}

/* TRANSFER_LIMIT, every call ended: each member's limit (set, or shown). */
static void finish_limit(ring_mgr_t *s, waiting_t *w)
{
    const gather_t *g = w->gather;
    Cairn__Admin__NodeHandoff *nh = calloc(w->ncalls + 1, sizeof *nh);
    Cairn__Admin__NodeHandoff **nhp = calloc(w->ncalls + 1, sizeof *nhp);
    char(*errs)[RM_ERR_LEN] = calloc(w->ncalls + 1, sizeof *errs);
    if (!nh || !nhp || !errs)
        abort();
    size_t nn = 0, failed = 0;
    if (g->self_included) {
        self_handoff(s, &nh[nn], false);
        nhp[nn] = &nh[nn];
        nn++;
    }
    for (uint32_t i = 0; i < w->ncalls; i++) {
        gathered_entry(w, i, false, &nh[nn], errs[nn], sizeof errs[nn]);
        failed += !nh[nn].answered;
        nhp[nn] = &nh[nn];
        nn++;
    }
    order_by_member(kv_cstate(s->kv), nhp, nn);
    if (w->node[0] && failed) { /* one member named, and it could not be reached */
        if (g->limit)
            answer_error(w->reply_to, w->reply_ref, w->req_id,
                         "could not set the transfer limit of %s: %s", w->node, nh[0].error);
        else
            answer_error(w->reply_to, w->reply_ref, w->req_id,
                         "could not get the transfer limit of %s: %s", w->node, nh[0].error);
    } else {
        char text[1024] = ""; /* stays empty when only shown: the table says it all */
        int at = 0;
        if (g->limit && w->node[0])
            at = snprintf(text, sizeof text, "transfer limit of %s set to %" PRIu32, w->node,
                          g->limit);
        else if (g->limit)
            at = snprintf(text, sizeof text,
                          "transfer limit set to %" PRIu32 " on %zu of %zu member(s)", g->limit,
                          nn - failed, nn);
        for (size_t i = 0, k = 0; g->limit && i < nn && at > 0 && (size_t)at < sizeof text; i++)
            if (!nh[i].answered)
                at += snprintf(text + at, sizeof text - (size_t)at, "%s%s (%s)",
                               k++ ? ", " : "; not reached: ", nh[i].node, nh[i].error);
        Cairn__Admin__AdminResp resp;
        resp_init(&resp, w->req_id, true);
        resp.message = text[0] ? text : NULL;
        resp.n_limits = nn;
        resp.limits = nhp;
        answer(w->reply_to, w->reply_ref, &resp);
    }
    free(nh);
    free(nhp);
    free(errs);
}

static void gather_finish(ring_mgr_t *s, waiting_t *w)
{
    if (w->command == CAIRN__ADMIN__COMMAND__TRANSFERS)
        finish_transfers(s, w);
    else
        finish_limit(s, w);
}

/* The answer (or failure) of call `call` of a gathering; answers when it was the last. */
static void gather_answered(ring_mgr_t *s, waiting_t *w, uint32_t call, const rt_msg_t *m,
                            int failed_reason)
{
    gather_t *g = w->gather;
    w->refs[call] = 0;
    w->answered++;
    if (failed_reason)
        g->reason[call] = failed_reason;
    else
        g->resp[call] = cairn__admin__admin_resp__unpack(NULL, m->size, m->data);
    if (w->answered < w->ncalls)
        return;
    gather_finish(s, w);
    wait_free(w);
}

/* ---------------------------------------------------------------- admin requests */

static void on_admin(ring_mgr_t *s, const rt_msg_t *m)
{
    rt_pid_t to = m->from;
    rt_ref_t ref = rt_is_call(m) ? m->ref : 0;
    if (rt_pid_is_nil(to))
        return;
    Cairn__Admin__AdminReq *req = cairn__admin__admin_req__unpack(NULL, m->size, m->data);
    if (!req) {
        answer_error(to, ref, 0, "malformed AdminReq");
        return;
    }
    int c = req->has_command ? (int)req->command : 0;
    if (c == CAIRN__ADMIN__COMMAND__CLUSTER_LEAVE && (!req->node || !req->node[0]))
        req->node = strdup(s->self); /* freed with the request (the default allocator) */
    if (is_claimant_command(c)) {
        const char *claimant = cstate_claimant_effective(kv_cstate(s->kv));
        if (!claimant) {
            answer_error(to, ref, req->req_id, "no claimant: no member is valid or leaving");
        } else if (strcmp(claimant, s->self) == 0) {
            claimant_command(s, to, ref, req);
        } else if (ref) {
            answer_error(to, ref, req->req_id,
                         "not the claimant: %s forwarded this to %s, which says the claimant "
                         "is %s; try again once the ring has settled",
                         rt_node_of(to), s->self, claimant);
        } else {
            waiting_t *w = wait_new(s, WAIT_FORWARD, to, 0, req->req_id, c);
            if (!w) {
                answer_error(to, ref, req->req_id, "busy: too many cluster requests in progress");
            } else {
                w->refs[0] = rt_call_name(claimant, RING_MGR_NAME,
                                          packed_msg(CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST,
                                                     &req->base),
                                          RM_CALL_MS);
                w->ncalls = 1;
                snprintf(w->node, sizeof w->node, "%s", claimant);
            }
        }
        cairn__admin__admin_req__free_unpacked(req, NULL);
        return;
    }
    switch (c) {
    case CAIRN__ADMIN__COMMAND__CLUSTER_JOIN: cmd_join(s, to, ref, req); break;
    case CAIRN__ADMIN__COMMAND__DOWN: cmd_down(s, to, ref, req); break;
    case CAIRN__ADMIN__COMMAND__RINGREADY:
    case CAIRN__ADMIN__COMMAND__RING_STATUS: cmd_collect(s, to, ref, req); break;
    case CAIRN__ADMIN__COMMAND__MEMBER_STATUS: cmd_view(s, to, ref, req); break;
    case CAIRN__ADMIN__COMMAND__TRANSFERS:
    case CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT: cmd_gather(s, to, ref, req); break;
    default: answer_error(to, ref, req->req_id, "unknown cluster command %d", c); break;
    }
    cairn__admin__admin_req__free_unpacked(req, NULL);
}

/* The reply (or failure) of one of our calls. */
static void on_call_outcome(ring_mgr_t *s, const rt_msg_t *m, rt_ref_t ref, bool failed)
{
    uint32_t call = 0;
    waiting_t *w = wait_by_ref(s, ref, &call);
    if (!w)
        return;
    int reason = failed ? ((const rt_call_failed_t *)(const void *)m->data)->reason : 0;
    switch (w->kind) {
    case WAIT_FORWARD:
        if (failed) {
            answer_error(w->reply_to, 0, w->req_id,
                         "the claimant %s did not answer (%s); if it is gone for good, mark it "
                         "down (`cairn-admin down %s`) and another member takes over",
                         w->node, rt_reason_str(reason), w->node);
        } else { /* pass the claimant's answer on as it is */
            rt_send(w->reply_to, rt_msg_copy(CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE, m->data,
                                             m->size));
        }
        wait_free(w);
        break;
    case WAIT_JOIN:
        join_answered(s, w, m, failed ? (reason ? reason : RT_R_NOPROC) : 0);
        wait_free(w);
        break;
    case WAIT_READY: collect_answered(s, w, call, m, failed ? (reason ? reason : 1) : 0); break;
    case WAIT_GATHER:
        gather_answered(s, w, call, m, failed ? (reason ? reason : RT_R_NOPROC) : 0);
        break;
    }
}

/* ---------------------------------------------------------------- ticks */

/* Transfers are the handoff service's (node/handoff.h): it looks at the state each gossip
 * interval and when a member comes up, starts senders for partitions this node owns that
 * have a pending next owner and for foreign vnodes whose owner is up, and reports each
 * finished ownership transfer back (on_transfer_done). */
static void kick_handoff(void)
{
    rt_send_name(NULL, HANDOFF_SERVICE_NAME, rt_msg_new(HANDOFF_MSG_CHECK, 0));
}

/* HANDOFF_MSG_TRANSFER_DONE from the local handoff service: partition p's data is across to
 * its next owner. Marks the transfer done if the state still says p moves from here to that
 * node (a stale report, for a transfer dropped or replaced meanwhile, changes nothing). */
static void on_transfer_done(ring_mgr_t *s, const rt_msg_t *m)
{
    if (m->size != sizeof(handoff_done_t) || m->from.node != 0)
        return; /* local messages only */
    handoff_done_t d;
    memcpy(&d, m->data, sizeof d);
    d.target[sizeof d.target - 1] = 0;
    const cstate_t *cs = kv_cstate(s->kv);
    uint32_t me = cstate_member_index(cs, s->self);
    if (me == CSTATE_NONE || d.partition >= cstate_size(cs) ||
        ring_owner(cstate_ring(cs), d.partition) != me ||
        cstate_next_owner(cs, d.partition) != cstate_member_index(cs, d.target) ||
        cstate_transfer_is_done(cs, d.partition)) {
        rt_debug("cluster: transfer of partition %" PRIu32 " to %s reported finished, but the "
                 "ring no longer waits for it",
                 d.partition, d.target);
        return;
    }
    cstate_t *next = NULL;
    char err[256];
    if (cstate_transfer_done(cs, d.partition, s->self, &next, err, sizeof err) != 0) {
        rt_warn("cluster: cannot mark the transfer of partition %" PRIu32 " done: %s",
                d.partition, err);
        return;
    }
    char why[RING_NODE_NAME_MAX + 64];
    snprintf(why, sizeof why, "partition %" PRIu32 " handed off to %s", d.partition, d.target);
    change(s, next, why);
}

static void gossip_tick(ring_mgr_t *s)
{
    const cstate_t *cs = kv_cstate(s->kv);
    /* Keep a link to every member that should be up: the first send connects, and the
     * runtime's heartbeats then say when it goes away. */
    for (uint32_t i = 0; i < cstate_member_count(cs); i++) {
        cstate_status_t st = cstate_member_status(cs, i);
        const char *name = cstate_member_name(cs, i);
        if (st != CSTATE_REMOVED && strcmp(name, s->self) != 0 && !rt_node_is_up(name))
            push_to(s, name);
    }
    push_random(s, 1);
    kick_handoff();
    rt_send_after(s->kv->cfg->gossip_interval_ms, rt_self(), rt_msg_new(RM_MSG_GOSSIP_TICK, 0));
}

static void claimant_tick(ring_mgr_t *s)
{
    cstate_t *ns = NULL;
    if (cstate_claimant_tick(kv_cstate(s->kv), s->self, &ns) == 0 && ns)
        change(s, ns, "claimant tick");
    rt_send_after(s->kv->cfg->claimant_tick_ms, rt_self(), rt_msg_new(RM_MSG_CLAIMANT_TICK, 0));
}

static void stop_node(ring_mgr_t *s)
{
    /* A state installed since the stop was scheduled may list this node again: a node that
     * restarts after leaving can hear the old cluster's "removed" by gossip just before its
     * own `cluster join` lands. It then stays. */
    const cstate_t *cs = kv_cstate(s->kv);
    uint32_t me = cstate_member_index(cs, s->self);
    if (me != CSTATE_NONE && cstate_member_status(cs, me) != CSTATE_REMOVED) {
        rt_info("cluster: this node is a member again (%s): it keeps running",
                cstate_status_name(cstate_member_status(cs, me)));
        s->stopping = false;
        s->stop_waited_ms = 0;
        return;
    }
    /* Data held for others is handed off first (bounded: a node whose owners stay away
     * stops anyway after RM_STOP_MAX_WAIT_MS, keeping that data on disk). */
    uint32_t foreign = handoff_foreign_vnodes(s->kv);
    if (foreign && s->stop_waited_ms < RM_STOP_MAX_WAIT_MS) {
        if (s->stop_waited_ms == 0)
            rt_info("cluster: waiting for %" PRIu32 " partition(s) to be handed off before "
                    "stopping", foreign);
        s->stop_waited_ms += RM_STOP_POLL_MS;
        rt_send_after(RM_STOP_POLL_MS, rt_self(), rt_msg_new(RM_MSG_STOP_NODE, 0));
        return;
    }
    if (foreign)
        rt_warn("cluster: stopping with %" PRIu32 " partition(s) not handed off (they stay "
                "in the data dir)", foreign);
    /* Start over as a node of its own: a fresh single-node ring on disk. */
    cstate_t *fresh = cstate_new(cstate_size(kv_cstate(s->kv)), s->self, NULL);
    char err[512];
    if (!fresh || cstate_save(fresh, s->args->ring_path, err, sizeof err) != 0)
        rt_error("cluster: cannot reset the ring file %s", s->args->ring_path);
    cstate_free(fresh);
    rt_warn("cluster: removed from the cluster: stopping");
    kill(getpid(), SIGTERM);
}

/* ---------------------------------------------------------------- the process */

static int rm_init(void *state, void *arg)
{
    ring_mgr_t *s = state;
    s->args = arg;
    s->kv = s->args->kv;
    s->self = s->kv->cfg->nodename;
    s->rng = (uint64_t)rt_now_ns() ^ ((uint64_t)getpid() << 32) ^ s->kv->node_id;
    int rc = rt_register(RING_MGR_NAME, rt_self());
    if (rc != 0) {
        rt_error("ring manager: cannot register as %s: %s", RING_MGR_NAME, rt_strerror(rc));
        return RT_R_INIT_FAILED;
    }
    rt_node_monitor(true);
    rt_send(rt_self(), rt_msg_new(RM_MSG_GOSSIP_TICK, 0));
    rt_send_after(s->kv->cfg->claimant_tick_ms, rt_self(), rt_msg_new(RM_MSG_CLAIMANT_TICK, 0));
    const cstate_t *cs = kv_cstate(s->kv);
    uint32_t me = cstate_member_index(cs, s->self);
    if (me != CSTATE_NONE && cstate_member_status(cs, me) == CSTATE_REMOVED)
        schedule_stop(s, "the saved ring says this node was removed from the cluster");
    return 0;
}

static int rm_handle(void *state, rt_msg_t *m)
{
    ring_mgr_t *s = state;
    bool failed;
    rt_ref_t ref = (m->flags & RT_MSGF_REPLY) ? m->ref : 0;
    failed = m->type == RT_MSG_CALL_FAILED;
    if (failed)
        ref = ((const rt_call_failed_t *)(const void *)m->data)->ref;
    if (ref) {
        on_call_outcome(s, m, ref, failed);
        return RT_CONTINUE;
    }
    switch (m->type) {
    case CAIRN__CLUSTER__MSG_TYPE__GOSSIP: on_gossip(s, m); break;
    case CAIRN__CLUSTER__MSG_TYPE__STATE_REQ: on_state_req(s, m); break;
    case CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST: on_admin(s, m); break;
    case RM_MSG_GOSSIP_TICK: gossip_tick(s); break;
    case RM_MSG_CLAIMANT_TICK: claimant_tick(s); break;
    case RM_MSG_STOP_NODE: stop_node(s); break;
    case HANDOFF_MSG_TRANSFER_DONE: on_transfer_done(s, m); break;
    case RT_MSG_NODEUP: {
        const char *node = ((const rt_node_msg_t *)(const void *)m->data)->node;
        if (cstate_member_index(kv_cstate(s->kv), node) != CSTATE_NONE) {
            rt_info("cluster: %s is up", node);
            push_to(s, node);
            kick_handoff(); /* fallbacks hand their data back to it now */
        }
        break;
    }
    case RT_MSG_NODEDOWN: {
        const char *node = ((const rt_node_msg_t *)(const void *)m->data)->node;
        if (cstate_member_index(kv_cstate(s->kv), node) != CSTATE_NONE)
            rt_warn("cluster: %s is unreachable", node);
        break;
    }
    default: rt_debug("ring manager: ignoring a message of type %u", m->type); break;
    }
    return RT_CONTINUE;
}

static void rm_terminate(void *state, int reason)
{
    ring_mgr_t *s = state;
    rt_node_monitor(false);
    for (size_t i = 0; i < RM_MAX_WAITING; i++)
        if (s->waiting[i].used)
            wait_free(&s->waiting[i]);
}

const rt_behaviour_t ring_mgr_behaviour = {
    .name = "ring_mgr",
    .state_size = sizeof(ring_mgr_t),
    .init = rm_init,
    .handle = rm_handle,
    .terminate = rm_terminate,
};
