/*
 * admin_json.c — cairn-admin's --json output (admin/admin_json.h): every field of an
 * AdminResp as one JSON object per line. Writes only; owns nothing.
 */
#include "admin/admin_json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void admin_json_str(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_bool(FILE *out, bool b)
{
    fputs(b ? "true" : "false", out);
}

/* ,"key":  — every key but an object's first goes through here. */
static void key(FILE *out, const char *k)
{
    fprintf(out, ",\"%s\":", k);
}

static void str_list(FILE *out, const char *k, char **items, size_t n)
{
    key(out, k);
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        admin_json_str(out, items[i]);
    }
    fputc(']', out);
}

/* ---------------------------------------------------------------- status */

static void json_status(FILE *out, const Cairn__Admin__NodeStatus *s)
{
    fputs("{\"ok\":true,\"node\":", out);
    admin_json_str(out, s->node);
    key(out, "version");
    admin_json_str(out, s->version);
    fprintf(out,
            ",\"uptime_ms\":%" PRIu64 ",\"ring_size\":%u,\"vnodes_running\":%u,\"vnodes_total\":%u"
            ",\"vnodes_foreign\":%u",
            s->uptime_ms, s->ring_size, s->vnodes_running, s->vnodes_total, s->vnodes_foreign);
    key(out, "client_listener");
    admin_json_str(out, s->client_listener);
    key(out, "data_dir");
    admin_json_str(out, s->data_dir);
    key(out, "storage_backend");
    admin_json_str(out, s->storage_backend);
    str_list(out, "connected_nodes", s->connected_nodes, s->n_connected_nodes);
    fputs(",\"ops\":{", out);
    for (size_t i = 0; i < s->n_ops; i++) {
        const Cairn__Admin__OpStats *o = s->ops[i];
        if (i)
            fputc(',', out);
        admin_json_str(out, o->op ? o->op : "?");
        fprintf(out,
                ":{\"count\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"p50_us\":%" PRIu64
                ",\"p95_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64 "}",
                o->count, o->errors, o->p50_us, o->p95_us, o->p99_us, o->max_us);
    }
    fprintf(out,
            "},\"inflight\":%" PRIu64 ",\"read_repairs\":%" PRIu64 ",\"tombstones_reaped\":%" PRIu64
            ",\"overloads\":%" PRIu64 ",\"vnode_crashes\":%" PRIu64 ",\"processes\":%u"
            ",\"ae_passes\":%" PRIu64 ",\"ae_keys\":%" PRIu64,
            s->inflight, s->read_repairs, s->tombstones_reaped, s->overloads, s->vnode_crashes,
            s->processes, s->ae_passes, s->ae_keys);
    fprintf(out,
            ",\"cache\":{\"limit\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"entries\":%" PRIu64
            ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"evictions\":%" PRIu64 "}}\n",
            s->cache_limit, s->cache_bytes, s->cache_entries, s->cache_hits, s->cache_misses,
            s->cache_evictions);
}

/* ---------------------------------------------------------------- the cluster view */

static void json_member(FILE *out, const Cairn__Admin__Member *m)
{
    fputs("{\"node\":", out);
    admin_json_str(out, m->node);
    key(out, "status");
    admin_json_str(out, m->status);
    if (m->has_owned)
        fprintf(out, ",\"owned\":%u", m->owned);
    if (m->has_owned_after)
        fprintf(out, ",\"owned_after\":%u", m->owned_after);
    if (m->has_reachable) {
        key(out, "reachable");
        json_bool(out, m->reachable);
    }
    if (m->has_claimant) {
        key(out, "claimant");
        json_bool(out, m->claimant);
    }
    fputc('}', out);
}

static void json_staged(FILE *out, const Cairn__Admin__Staged *s)
{
    fputs("{\"action\":", out);
    admin_json_str(out, s->action);
    key(out, "node");
    admin_json_str(out, s->node);
    key(out, "new_node");
    admin_json_str(out, s->new_node);
    fputc('}', out);
}

static void json_transfer(FILE *out, const Cairn__Admin__Transfer *t)
{
    fputs("{\"partition\":", out);
    if (t->has_partition)
        fprintf(out, "%u", t->partition);
    else
        fputs("null", out);
    key(out, "owner");
    admin_json_str(out, t->owner);
    key(out, "next_owner");
    admin_json_str(out, t->next_owner);
    key(out, "done");
    json_bool(out, t->has_done && t->done);
    if (t->state) {
        key(out, "state");
        admin_json_str(out, t->state);
    }
    fputc('}', out);
}

static void json_view(FILE *out, const Cairn__Admin__ClusterView *v)
{
    fputs("{\"ring_size\":", out);
    if (v->has_ring_size)
        fprintf(out, "%u", v->ring_size);
    else
        fputs("null", out);
    key(out, "claimant");
    admin_json_str(out, v->claimant && v->claimant[0] ? v->claimant : NULL);
    key(out, "members");
    fputc('[', out);
    bool first = true;
    for (size_t i = 0; i < v->n_members; i++) {
        const Cairn__Admin__Member *m = v->members[i];
        if (m->status && strcmp(m->status, "removed") == 0)
            continue; /* a tombstone, not a member (admin_json.h) */
        if (!first)
            fputc(',', out);
        first = false;
        json_member(out, m);
    }
    fputc(']', out);
    if (v->has_pending)
        fprintf(out, ",\"pending\":%u", v->pending);
    str_list(out, "unreachable", v->unreachable, v->n_unreachable);
    if (v->has_ring_ready) {
        key(out, "ring_ready");
        json_bool(out, v->ring_ready);
    }
    str_list(out, "disagreeing", v->disagreeing, v->n_disagreeing);
    key(out, "staged");
    fputc('[', out);
    for (size_t i = 0; i < v->n_staged; i++) {
        if (i)
            fputc(',', out);
        json_staged(out, v->staged[i]);
    }
    fputc(']', out);
    if (v->has_moved_now)
        fprintf(out, ",\"moved_now\":%u", v->moved_now);
    if (v->has_transfers)
        fprintf(out, ",\"transfers\":%u", v->transfers);
    if (v->has_violations)
        fprintf(out, ",\"violations\":%u", v->violations);
    if (v->has_target_n_val)
        fprintf(out, ",\"target_n_val\":%u", v->target_n_val);
    key(out, "pending_transfers");
    fputc('[', out);
    for (size_t i = 0; i < v->n_pending_transfers; i++) {
        if (i)
            fputc(',', out);
        json_transfer(out, v->pending_transfers[i]);
    }
    fputc(']', out);
    if (v->vclock) {
        key(out, "vclock");
        admin_json_str(out, v->vclock);
    }
    if (v->has_fingerprint)
        fprintf(out, ",\"fingerprint\":\"%016" PRIx64 "\"", v->fingerprint);
    fputc('}', out);
}

/* ---------------------------------------------------------------- transfers, limits */

static void json_active(FILE *out, const Cairn__Admin__ActiveTransfer *t)
{
    fputs("{\"kind\":", out);
    admin_json_str(out, t->kind);
    fprintf(out, ",\"partition\":%u", t->partition);
    key(out, "source");
    admin_json_str(out, t->source);
    key(out, "target");
    admin_json_str(out, t->target);
    key(out, "state");
    admin_json_str(out, t->state);
    fprintf(out, ",\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64,
            t->objects, t->bytes, t->elapsed_ms);
    /* rates while a sender runs (admin_print.h), else null */
    if (t->state && strncmp(t->state, "sending", 7) == 0 && t->elapsed_ms > 0) {
        double secs = (double)t->elapsed_ms / 1000.0;
        fprintf(out, ",\"objects_per_s\":%.3f,\"mb_per_s\":%.3f", (double)t->objects / secs,
                (double)t->bytes / secs / 1e6);
    } else {
        fputs(",\"objects_per_s\":null,\"mb_per_s\":null", out);
    }
    fputc('}', out);
}

static void json_node_handoff(FILE *out, const Cairn__Admin__NodeHandoff *n)
{
    fputs("{\"node\":", out);
    admin_json_str(out, n->node);
    key(out, "answered");
    json_bool(out, n->has_answered && n->answered);
    if (n->has_limit)
        fprintf(out, ",\"limit\":%u", n->limit);
    if (n->has_held)
        fprintf(out, ",\"held\":%u", n->held);
    if (n->error) {
        key(out, "error");
        admin_json_str(out, n->error);
    }
    fputc('}', out);
}

static void json_node_list(FILE *out, const char *k, Cairn__Admin__NodeHandoff **nodes, size_t n)
{
    key(out, k);
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_node_handoff(out, nodes[i]);
    }
    fputc(']', out);
}

static void json_report(FILE *out, const Cairn__Admin__TransfersReport *rep)
{
    fputs("{\"active\":[", out);
    for (size_t i = 0; i < rep->n_active; i++) {
        if (i)
            fputc(',', out);
        json_active(out, rep->active[i]);
    }
    fputs("],\"waiting\":[", out);
    for (size_t i = 0; i < rep->n_waiting; i++) {
        if (i)
            fputc(',', out);
        json_transfer(out, rep->waiting[i]);
    }
    fputc(']', out);
    json_node_list(out, "nodes", rep->nodes, rep->n_nodes);
    fputc('}', out);
}

/* ---------------------------------------------------------------- replicas */

/* A key (bytes) as a JSON string; bytes after an embedded NUL are not shown. */
static void json_bytes(FILE *out, ProtobufCBinaryData b)
{
    char *s = malloc(b.len + 1);
    if (!s)
        abort();
    if (b.len)
        memcpy(s, b.data, b.len);
    s[b.len] = 0;
    admin_json_str(out, s);
    free(s);
}

static void json_replicas(FILE *out, Cairn__Admin__KeyReplicas **keys, size_t n)
{
    key(out, "keys");
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        const Cairn__Admin__KeyReplicas *k = keys[i];
        fputs(i ? ",{\"key\":" : "{\"key\":", out);
        json_bytes(out, k->key);
        fprintf(out, ",\"converged\":%s,\"replicas\":[",
                k->has_converged && k->converged ? "true" : "false");
        for (size_t j = 0; j < k->n_replicas; j++) {
            const Cairn__Admin__Replica *r = k->replicas[j];
            fprintf(out, "%s{\"partition\":%u", j ? "," : "", r->partition);
            key(out, "node");
            admin_json_str(out, r->node);
            key(out, "status");
            admin_json_str(out, r->status);
            if (r->error) {
                key(out, "error");
                admin_json_str(out, r->error);
            }
            if (r->has_siblings)
                fprintf(out, ",\"siblings\":%u", r->siblings);
            if (r->has_digest)
                fprintf(out, ",\"digest\":\"%016" PRIx64 "\"", r->digest);
            fputc('}', out);
        }
        fputs("]}", out);
    }
    fputc(']', out);
}

/* ---------------------------------------------------------------- answers */

void admin_json_answer(FILE *out, const Cairn__Admin__AdminResp *r, Cairn__Admin__Command cmd,
                       const char *command)
{
    if (!r->has_ok || !r->ok) {
        fputs("{\"ok\":false,\"command\":", out);
        admin_json_str(out, command);
        key(out, "node");
        admin_json_str(out, r->node);
        key(out, "error");
        admin_json_str(out, r->errmsg ? r->errmsg : "failed");
        fputs("}\n", out);
        return;
    }
    switch (cmd) {
    case CAIRN__ADMIN__COMMAND__STATUS:
        if (r->status) {
            json_status(out, r->status);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__PING:
    case CAIRN__ADMIN__COMMAND__CRASH_VNODE:
        fputs("{\"ok\":true,\"node\":", out);
        admin_json_str(out, r->node);
        key(out, "version");
        admin_json_str(out, r->version);
        key(out, "message");
        admin_json_str(out, r->message);
        fputs("}\n", out);
        return;
    default: break;
    }
    fputs("{\"ok\":true,\"command\":", out);
    admin_json_str(out, command);
    key(out, "node");
    admin_json_str(out, r->node);
    key(out, "version");
    admin_json_str(out, r->version);
    key(out, "message");
    admin_json_str(out, r->message);
    if (r->cluster) {
        key(out, "cluster");
        json_view(out, r->cluster);
    }
    if (r->transfers) {
        key(out, "transfers");
        json_report(out, r->transfers);
    }
    if (cmd == CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT)
        json_node_list(out, "limits", r->limits, r->n_limits);
    if (cmd == CAIRN__ADMIN__COMMAND__REPLICAS)
        json_replicas(out, r->replicas, r->n_replicas);
    fputs("}\n", out);
}
