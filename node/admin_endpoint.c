/*
 * admin_endpoint.c — the process behind "cairn_admin" (node/admin_endpoint.h): decodes an
 * AdminReq, answers ping / status / crash-vnode with one AdminResp to the sender, and keeps
 * the list of connected nodes from the runtime's NODEUP / NODEDOWN events.
 *
 * The endpoint owns only its small state (the node list); everything it reports is read
 * from the shared kv_node_t (atomic counters, the vnode table) without locks.
 */
#include "node/admin_endpoint.h"

#include "node/handoff.h"
#include "node/replica_probe.h"
#include "node/vnode.h"
#include "proto/admin.pb-c.h"
#include "runtime/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST == KV_MSG_PRIVATE + 70,
               "admin.proto's message types must stay in node.c/admin's private range");
_Static_assert(CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE == KV_MSG_PRIVATE + 71,
               "admin.proto's message types must stay in node.c/admin's private range");

#define ADMIN_MAX_NODES 256

typedef struct admin_state_s {
    admin_ctx_t *ctx;
    char *nodes[ADMIN_MAX_NODES]; /* connected node names (owned) */
    unsigned nnodes;
} admin_state_t;

/* ---------------------------------------------------------------- connected nodes */

static void node_up(admin_state_t *s, const char *name)
{
    for (unsigned i = 0; i < s->nnodes; i++)
        if (strcmp(s->nodes[i], name) == 0)
            return;
    if (s->nnodes < ADMIN_MAX_NODES) {
        char *copy = strdup(name);
        if (copy)
            s->nodes[s->nnodes++] = copy;
    }
}

static void node_down(admin_state_t *s, const char *name)
{
    for (unsigned i = 0; i < s->nnodes; i++)
        if (strcmp(s->nodes[i], name) == 0) {
            free(s->nodes[i]);
            s->nodes[i] = s->nodes[--s->nnodes];
            return;
        }
}

/* ---------------------------------------------------------------- replies */

void admin_send_resp(rt_pid_t to, const Cairn__Admin__AdminResp *resp)
{
    size_t n = cairn__admin__admin_resp__get_packed_size(resp);
    rt_msg_t *m = rt_msg_new(CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE, n);
    cairn__admin__admin_resp__pack(resp, m->data);
    rt_send(to, m);
}

void admin_resp_init(Cairn__Admin__AdminResp *r, const char *version, uint64_t req_id, bool ok)
{
    cairn__admin__admin_resp__init(r);
    r->has_req_id = 1;
    r->req_id = req_id;
    r->has_ok = 1;
    r->ok = ok;
    r->node = (char *)rt_node_self();
    r->version = (char *)version;
}

static void reply_error(const admin_state_t *s, rt_pid_t to, uint64_t req_id, const char *why)
{
    Cairn__Admin__AdminResp r;
    admin_resp_init(&r, s->ctx->version, req_id, false);
    r.errmsg = (char *)why;
    admin_send_resp(to, &r);
}

/* ---------------------------------------------------------------- status */

/* The upper bound (µs) of the bucket holding the q-quantile of a log2 histogram. */
static uint64_t quantile_us(const uint64_t *hist, uint64_t total, double q)
{
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < KV_LAT_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank)
            return b >= 63 ? UINT64_MAX : (uint64_t)1 << (b + 1);
    }
    return UINT64_MAX; /* not reached: seen ends at total */
}

static void fill_op(Cairn__Admin__OpStats *o, kv_stats_t *st, kv_op_t op, const char *name)
{
    cairn__admin__op_stats__init(o);
    uint64_t hist[KV_LAT_BUCKETS], total = 0;
    unsigned top = 0;
    for (unsigned b = 0; b < KV_LAT_BUCKETS; b++) {
        hist[b] = atomic_load_explicit(&st->lat_hist[op][b], memory_order_relaxed);
        total += hist[b];
        if (hist[b])
            top = b;
    }
    o->op = (char *)name;
    o->has_count = 1;
    o->count = atomic_load_explicit(&st->ops[op], memory_order_relaxed);
    o->has_errors = 1;
    o->errors = atomic_load_explicit(&st->errors[op], memory_order_relaxed);
    o->has_p50_us = o->has_p95_us = o->has_p99_us = o->has_max_us = 1;
    o->p50_us = quantile_us(hist, total, 0.50);
    o->p95_us = quantile_us(hist, total, 0.95);
    o->p99_us = quantile_us(hist, total, 0.99);
    o->max_us = total ? (uint64_t)1 << (top + 1) : 0;
}

static void reply_status(admin_state_t *s, rt_pid_t to, uint64_t req_id)
{
    kv_node_t *kv = s->ctx->kv;
    Cairn__Admin__NodeStatus st = CAIRN__ADMIN__NODE_STATUS__INIT;
    st.node = (char *)rt_node_self();
    st.version = (char *)s->ctx->version;
    st.has_uptime_ms = 1;
    st.uptime_ms = (rt_now_ns() - s->ctx->started_ns) / 1000000u;
    uint32_t q = ring_size(kv_ring(kv)), running = 0, total = 0;
    for (uint32_t p = 0; p < q; p++) {
        if (!vnode_is_local(kv, p))
            continue;
        total++;
        if (!rt_pid_is_nil(vnode_pid(kv, p)))
            running++;
    }
    st.has_ring_size = st.has_vnodes_running = st.has_vnodes_total = 1;
    st.ring_size = q;
    st.vnodes_running = running;
    st.vnodes_total = total;
    st.has_vnodes_foreign = 1;
    st.vnodes_foreign = handoff_foreign_vnodes(kv);
    st.n_connected_nodes = s->nnodes;
    st.connected_nodes = s->nodes;

    static const char *const names[KV_OP_COUNT] = {"get", "put", "delete", "list"};
    Cairn__Admin__OpStats ops[KV_OP_COUNT], *opp[KV_OP_COUNT];
    for (int i = 0; i < KV_OP_COUNT; i++) {
        fill_op(&ops[i], &kv->stats, (kv_op_t)i, names[i]);
        opp[i] = &ops[i];
    }
    st.n_ops = KV_OP_COUNT;
    st.ops = opp;
    st.has_ae_passes = st.has_ae_keys = 1;
    st.ae_passes = atomic_load_explicit(&kv->stats.ae_passes, memory_order_relaxed);
    st.ae_keys = atomic_load_explicit(&kv->stats.ae_keys, memory_order_relaxed);
    const store_cache_budget_t *oc = &kv->obj_cache;
    st.has_cache_limit = st.has_cache_bytes = st.has_cache_entries = 1;
    st.has_cache_hits = st.has_cache_misses = st.has_cache_evictions = 1;
    st.cache_limit = oc->limit;
    st.cache_bytes = atomic_load_explicit(&oc->used, memory_order_relaxed);
    st.cache_entries = atomic_load_explicit(&oc->entries, memory_order_relaxed);
    st.cache_hits = atomic_load_explicit(&oc->hits, memory_order_relaxed);
    st.cache_misses = atomic_load_explicit(&oc->misses, memory_order_relaxed);
    st.cache_evictions = atomic_load_explicit(&oc->evictions, memory_order_relaxed);
    st.has_inflight = st.has_read_repairs = st.has_tombstones_reaped = 1;
    st.has_overloads = st.has_vnode_crashes = st.has_processes = 1;
    st.inflight = atomic_load_explicit(&kv->inflight, memory_order_relaxed);
    st.read_repairs = atomic_load_explicit(&kv->stats.read_repairs, memory_order_relaxed);
    st.tombstones_reaped = atomic_load_explicit(&kv->stats.tombstones_reaped, memory_order_relaxed);
    st.overloads = atomic_load_explicit(&kv->stats.overloads, memory_order_relaxed);
    st.vnode_crashes = atomic_load_explicit(&kv->stats.vnode_crashes, memory_order_relaxed);
    st.processes = rt_process_count();
    st.data_dir = (char *)kv->cfg->data_dir;
    char listener[96];
    int port = atomic_load_explicit(&s->ctx->client_port, memory_order_relaxed);
    if (strchr(kv->cfg->client_host, ':'))
        snprintf(listener, sizeof listener, "[%s]:%d", kv->cfg->client_host, port);
    else
        snprintf(listener, sizeof listener, "%s:%d", kv->cfg->client_host, port);
    st.client_listener = listener;
    st.storage_backend = (char *)node_engine_name(kv->cfg->storage.kind);

    Cairn__Admin__AdminResp r;
    admin_resp_init(&r, s->ctx->version, req_id, true);
    r.status = &st;
    admin_send_resp(to, &r);
}

/* ---------------------------------------------------------------- crash-vnode */

static void crash_vnode(admin_state_t *s, rt_pid_t to, uint64_t req_id,
                        const Cairn__Admin__AdminReq *req)
{
    kv_node_t *kv = s->ctx->kv;
    char text[160];
    uint32_t q = ring_size(kv_ring(kv));
    if (!req->has_partition || req->partition >= q) {
        snprintf(text, sizeof text, "no partition %u: the ring has partitions 0..%u",
                 req->has_partition ? req->partition : 0, q - 1);
        reply_error(s, to, req_id, text);
        return;
    }
    uint32_t p = req->partition;
    if (!vnode_is_local(kv, p)) {
        snprintf(text, sizeof text, "partition %u is not held by this node", p);
        reply_error(s, to, req_id, text);
        return;
    }
    rt_pid_t v = vnode_pid(kv, p);
    if (rt_pid_is_nil(v)) {
        snprintf(text, sizeof text, "the vnode of partition %u is restarting; try again", p);
        reply_error(s, to, req_id, text);
        return;
    }
    Cairn__Kv__VnodeCrashReq *crash = malloc(sizeof *crash);
    if (!crash)
        abort();
    cairn__kv__vnode_crash_req__init(crash);
    crash->has_partition = 1;
    crash->partition = p;
    rt_send(v, rt_msg_pb(KV_MSG_VNODE_CRASH, &crash->base, NULL));
    rt_warn("admin: crashing the vnode of partition %u (<%u.%u.%u>) on request of %s", p, v.node,
            v.id, v.serial, rt_node_of(to));
    snprintf(text, sizeof text, "vnode %u (<%u.%u.%u>) told to crash; its supervisor restarts it",
             p, v.node, v.id, v.serial);
    Cairn__Admin__AdminResp r;
    admin_resp_init(&r, s->ctx->version, req_id, true);
    r.message = text;
    admin_send_resp(to, &r);
}

/* ---------------------------------------------------------------- the process */

static void handle_request(admin_state_t *s, const rt_msg_t *m)
{
    if (rt_pid_is_nil(m->from))
        return; /* nobody to answer */
    Cairn__Admin__AdminReq *req = cairn__admin__admin_req__unpack(NULL, m->size, m->data);
    if (!req) {
        reply_error(s, m->from, 0, "malformed AdminReq");
        return;
    }
    uint64_t id = req->has_req_id ? req->req_id : 0;
    switch (req->has_command ? req->command : 0) {
    case CAIRN__ADMIN__COMMAND__PING: {
        Cairn__Admin__AdminResp r;
        admin_resp_init(&r, s->ctx->version, id, true);
        r.message = "pong";
        admin_send_resp(m->from, &r);
        break;
    }
    case CAIRN__ADMIN__COMMAND__STATUS: reply_status(s, m->from, id); break;
    case CAIRN__ADMIN__COMMAND__CRASH_VNODE: crash_vnode(s, m->from, id, req); break;
    case CAIRN__ADMIN__COMMAND__REPLICAS: {
        char err[256];
        /* the probe takes req and answers the requester itself */
        if (replica_probe_start(s->ctx->kv, s->ctx->version, m->from, req, err, sizeof err) != 0)
            reply_error(s, m->from, id, err);
        return;
    }
    default: {
        char text[64];
        snprintf(text, sizeof text, "unknown admin command %d",
                 req->has_command ? (int)req->command : 0);
        reply_error(s, m->from, id, text);
        break;
    }
    }
    cairn__admin__admin_req__free_unpacked(req, NULL);
}

static int admin_init(void *state, void *arg)
{
    admin_state_t *s = state;
    s->ctx = arg;
    if (!s->ctx || !s->ctx->kv)
        return RT_R_INIT_FAILED;
    int rc = rt_register(ADMIN_ENDPOINT_NAME, rt_self());
    if (rc != 0) {
        rt_error("admin endpoint: cannot register as %s: %s", ADMIN_ENDPOINT_NAME, rt_strerror(rc));
        return RT_R_INIT_FAILED;
    }
    rt_node_monitor(true);
    return 0;
}

static int admin_handle(void *state, rt_msg_t *m)
{
    admin_state_t *s = state;
    switch (m->type) {
    case CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST: handle_request(s, m); break;
    case RT_MSG_NODEUP: node_up(s, ((const rt_node_msg_t *)(const void *)m->data)->node); break;
    case RT_MSG_NODEDOWN: node_down(s, ((const rt_node_msg_t *)(const void *)m->data)->node); break;
    default: rt_debug("admin endpoint: ignoring a message of type %u", m->type); break;
    }
    return RT_CONTINUE;
}

static void admin_terminate(void *state, int reason)
{
    admin_state_t *s = state;
    rt_node_monitor(false);
    for (unsigned i = 0; i < s->nnodes; i++)
        free(s->nodes[i]);
    s->nnodes = 0;
}

const rt_behaviour_t admin_endpoint_behaviour = {
    .name = "admin_endpoint",
    .state_size = sizeof(admin_state_t),
    .init = admin_init,
    .handle = admin_handle,
    .terminate = admin_terminate,
};
