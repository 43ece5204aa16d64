/*
 * admin_print.c — cairn-admin's output for people (admin/admin_print.h): riak-admin's
 * layouts for the cluster commands (banners of 79 columns, the membership table, ownership
 * handoff grouped by owner and next owner), the transfers of every member with their rates,
 * the members' transfer limits, and the node status table. Writes only; owns nothing.
 */
#include "admin/admin_print.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 79 /* riak-admin's line width */

typedef Cairn__Admin__ClusterView view_t;
typedef Cairn__Admin__Member member_t;
typedef Cairn__Admin__Transfer transfer_t;

/* ---------------------------------------------------------------- layout helpers */

static const char *or_unknown(const char *s)
{
    return s && s[0] ? s : "?";
}

/* "======== Title ========", WIDTH wide. */
static void banner(FILE *out, const char *title)
{
    int len = (int)strlen(title) + 2;
    int left = (WIDTH - len) / 2, right = WIDTH - len - left;
    for (int i = 0; i < left; i++)
        fputc('=', out);
    fprintf(out, " %s ", title);
    for (int i = 0; i < right; i++)
        fputc('=', out);
    fputc('\n', out);
}

static void rule(FILE *out, char c)
{
    for (int i = 0; i < WIDTH; i++)
        fputc(c, out);
    fputc('\n', out);
}

/* owned / q as "34.4%". */
static const char *share(char *buf, size_t len, uint32_t owned, uint32_t q)
{
    if (q == 0)
        snprintf(buf, len, "?");
    else
        snprintf(buf, len, "%.1f%%", 100.0 * owned / q);
    return buf;
}

static const member_t *find_member(const view_t *v, const char *name)
{
    for (size_t i = 0; name && i < v->n_members; i++)
        if (v->members[i]->node && strcmp(v->members[i]->node, name) == 0)
            return v->members[i];
    return NULL;
}

static bool is_status(const member_t *m, const char *status)
{
    return m && m->status && strcmp(m->status, status) == 0;
}

static bool is_reachable(const member_t *m)
{
    return m && (!m->has_reachable || m->reachable);
}

/* Riak's "!!! DOWN !!!" after a node in the handoff section; "" for a node that is up. */
static const char *liveness_marker(const member_t *m)
{
    if (is_status(m, "down"))
        return "   !!! DOWN !!!";
    return is_reachable(m) ? "" : "   !!! UNREACHABLE !!!";
}

/* A list of partition numbers after `label`, wrapped at WIDTH with a hanging indent. */
static void partition_list(FILE *out, const char *label, const uint32_t *parts, size_t n)
{
    int col = fprintf(out, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++) {
        char num[16];
        int w = snprintf(num, sizeof num, " %" PRIu32, parts[i]);
        if (col + w > WIDTH) {
            fputs("\n   ", out);
            col = 3;
        }
        fputs(num, out);
        col += w;
    }
    fputc('\n', out);
}

/* ---------------------------------------------------------------- status and ping */

static void print_uptime(FILE *out, uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 86400)
        fprintf(out, "%" PRIu64 "d ", s / 86400);
    if (s >= 3600)
        fprintf(out, "%" PRIu64 "h ", s / 3600 % 24);
    if (s >= 60)
        fprintf(out, "%" PRIu64 "m ", s / 60 % 60);
    fprintf(out, "%" PRIu64 "s\n", s % 60);
}

static void print_us(FILE *out, uint64_t us)
{
    if (us >= 10000000)
        fprintf(out, " %9" PRIu64 "s", us / 1000000);
    else if (us >= 10000)
        fprintf(out, " %8" PRIu64 "ms", us / 1000);
    else
        fprintf(out, " %8" PRIu64 "us", us);
}

static void print_status(FILE *out, const Cairn__Admin__NodeStatus *s)
{
    fprintf(out, "node          %s\n", or_unknown(s->node));
    fprintf(out, "version       %s\n", or_unknown(s->version));
    fprintf(out, "uptime        ");
    print_uptime(out, s->uptime_ms);
    fprintf(out, "ring size     %u\n", s->ring_size);
    fprintf(out, "vnodes        %u of %u running\n", s->vnodes_running, s->vnodes_total);
    if (s->vnodes_foreign)
        fprintf(out, "held vnodes   %u (fallbacks or old owners; handed off when the owner is "
                     "up)\n", s->vnodes_foreign);
    fprintf(out, "client port   %s\n", or_unknown(s->client_listener));
    fprintf(out, "data dir      %s (%s)\n", or_unknown(s->data_dir), or_unknown(s->storage_backend));
    fprintf(out, "connected     ");
    if (!s->n_connected_nodes)
        fprintf(out, "(none)");
    for (size_t i = 0; i < s->n_connected_nodes; i++)
        fprintf(out, "%s%s", i ? ", " : "", s->connected_nodes[i]);
    fprintf(out, "\nin flight     %" PRIu64 " request(s)\n", s->inflight);
    fprintf(out, "processes     %u\n\n", s->processes);
    fprintf(out, "%-8s %10s %8s %10s %10s %10s %10s\n", "op", "count", "errors", "p50", "p95",
            "p99", "max");
    for (size_t i = 0; i < s->n_ops; i++) {
        const Cairn__Admin__OpStats *o = s->ops[i];
        fprintf(out, "%-8s %10" PRIu64 " %8" PRIu64, or_unknown(o->op), o->count, o->errors);
        print_us(out, o->p50_us);
        print_us(out, o->p95_us);
        print_us(out, o->p99_us);
        print_us(out, o->max_us);
        fputc('\n', out);
    }
    fprintf(out,
            "\nread repairs %" PRIu64 ", tombstones reaped %" PRIu64 ", overloads %" PRIu64
            ", vnode crashes %" PRIu64 "\n"
            "anti-entropy: %" PRIu64 " partition passes, %" PRIu64 " keys checked\n",
            s->read_repairs, s->tombstones_reaped, s->overloads, s->vnode_crashes, s->ae_passes,
            s->ae_keys);
    if (!s->cache_limit) {
        fputs("object cache: off\n", out);
        return;
    }
    uint64_t reads = s->cache_hits + s->cache_misses;
    fprintf(out,
            "object cache: %" PRIu64 " objects, %.1f of %.1f MiB; %" PRIu64 " hits, %" PRIu64
            " misses (%.1f%% hit), %" PRIu64 " evictions\n",
            s->cache_entries, s->cache_bytes / 1048576.0, s->cache_limit / 1048576.0,
            s->cache_hits, s->cache_misses, reads ? 100.0 * s->cache_hits / reads : 0.0,
            s->cache_evictions);
}

/* ---------------------------------------------------------------- membership */

/* The Membership table: one line per member that is not removed (status, ring share now,
 * share after the pending transfers or "--" when it does not change, node), then the
 * count per status. */
static void membership(FILE *out, const view_t *v)
{
    static const char *const counted[] = {"valid", "leaving", "exiting", "joining", "down"};
    static const char *const labels[] = {"Valid", "Leaving", "Exiting", "Joining", "Down"};
    unsigned counts[5] = {0};
    uint32_t q = v->has_ring_size ? v->ring_size : 0;
    banner(out, "Membership");
    fprintf(out, "Status     Ring    Pending    Node\n");
    rule(out, '-');
    for (size_t i = 0; i < v->n_members; i++) {
        const member_t *m = v->members[i];
        if (is_status(m, "removed"))
            continue;
        for (size_t k = 0; k < 5; k++)
            counts[k] += is_status(m, counted[k]);
        char now[16], after[16];
        share(now, sizeof now, m->owned, q);
        if (m->has_owned_after && m->owned_after != m->owned)
            share(after, sizeof after, m->owned_after, q);
        else
            snprintf(after, sizeof after, "--   ");
        fprintf(out, "%-9s%6s%11s    %s%s%s\n", or_unknown(m->status), now, after,
                or_unknown(m->node), m->has_claimant && m->claimant ? "  (claimant)" : "",
                is_reachable(m) || is_status(m, "down") ? "" : "  (unreachable)");
    }
    rule(out, '-');
    for (size_t k = 0; k < 5; k++)
        fprintf(out, "%s%s:%u", k ? " / " : "", labels[k], counts[k]);
    fputc('\n', out);
}

static void print_member_status(FILE *out, const view_t *v)
{
    membership(out, v);
}

/* ---------------------------------------------------------------- ring-status */

/* Pending transfers grouped by (owner, next owner), in the order the pairs first appear
 * (the node sends them by partition). */
static void ownership_handoff(FILE *out, const view_t *v)
{
    banner(out, "Ownership Handoff");
    size_t n = v->n_pending_transfers;
    if (n == 0) {
        fprintf(out, "No pending changes.\n");
        return;
    }
    bool *shown = calloc(n, sizeof *shown);
    uint32_t *awaiting = calloc(n, sizeof *awaiting), *done = calloc(n, sizeof *done);
    if (!shown || !awaiting || !done)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (shown[i])
            continue;
        const transfer_t *t = v->pending_transfers[i];
        size_t nawait = 0, ndone = 0;
        for (size_t j = i; j < n; j++) {
            const transfer_t *u = v->pending_transfers[j];
            if (shown[j] || strcmp(or_unknown(u->owner), or_unknown(t->owner)) != 0 ||
                strcmp(or_unknown(u->next_owner), or_unknown(t->next_owner)) != 0)
                continue;
            shown[j] = true;
            if (u->has_done && u->done)
                done[ndone++] = u->partition;
            else
                awaiting[nawait++] = u->partition;
        }
        fprintf(out, "Owner:      %s%s\n", or_unknown(t->owner),
                liveness_marker(find_member(v, t->owner)));
        fprintf(out, "Next Owner: %s%s\n\n", or_unknown(t->next_owner),
                liveness_marker(find_member(v, t->next_owner)));
        if (nawait)
            partition_list(out, "Waiting for transfer, partitions", awaiting, nawait);
        if (ndone)
            partition_list(out, "Transferred, partitions", done, ndone);
        if (!nawait)
            fprintf(out, "  All transfers complete. Waiting for the claimant to change "
                         "ownership.\n");
        rule(out, '-');
    }
    free(shown);
    free(awaiting);
    free(done);
}

static void unreachable_nodes(FILE *out, const view_t *v)
{
    banner(out, "Unreachable Nodes");
    if (v->n_unreachable == 0) {
        fprintf(out, "All nodes are up and reachable\n");
        return;
    }
    bool some_not_down = false;
    fprintf(out, "The following nodes are unreachable:");
    for (size_t i = 0; i < v->n_unreachable; i++) {
        bool down = is_status(find_member(v, v->unreachable[i]), "down");
        some_not_down |= !down;
        fprintf(out, "%s %s%s", i ? "," : "", v->unreachable[i], down ? " (marked down)" : "");
    }
    fputc('\n', out);
    if (some_not_down)
        fprintf(out,
                "\nWARNING: The cluster state will not converge until all nodes\n"
                "are up. Once the above nodes come back online, convergence\n"
                "will continue. If the outages are long-term or permanent, you\n"
                "can either mark the nodes as down (cairn-admin down NODE) or\n"
                "forcibly remove the nodes from the cluster (cairn-admin\n"
                "cluster force-remove NODE) to allow the remaining nodes to\n"
                "settle.\n");
}

static void print_ring_status(FILE *out, const view_t *v)
{
    const char *claimant = v->claimant && v->claimant[0] ? v->claimant : NULL;
    const member_t *c = find_member(v, claimant);
    banner(out, "Claimant");
    fprintf(out, "Claimant:  %s\n", claimant ? claimant : "none (no member is valid or leaving)");
    if (claimant)
        fprintf(out, "Status:     %s\n", is_reachable(c) && !is_status(c, "down") ? "up" : "down");
    fprintf(out, "Ring Ready: %s\n\n",
            v->has_ring_ready ? (v->ring_ready ? "true" : "false") : "unknown");
    ownership_handoff(out, v);
    fputc('\n', out);
    unreachable_nodes(out, v);
}

/* ---------------------------------------------------------------- ringready */

static void print_ringready(FILE *out, const view_t *v)
{
    if (v->has_ring_ready && v->ring_ready) {
        fprintf(out, "TRUE All nodes agree on the ring [");
        bool first = true;
        for (size_t i = 0; i < v->n_members; i++) {
            const member_t *m = v->members[i];
            if (is_status(m, "removed") || is_status(m, "down"))
                continue;
            fprintf(out, "%s%s", first ? "" : ", ", or_unknown(m->node));
            first = false;
        }
        fprintf(out, "]\n");
        return;
    }
    if (v->n_disagreeing == 0) {
        fprintf(out, "FALSE The ring changed while the nodes were asked; try again\n");
        return;
    }
    fprintf(out, "FALSE Nodes do not agree on the ring: [");
    for (size_t i = 0; i < v->n_disagreeing; i++) {
        const member_t *m = find_member(v, v->disagreeing[i]);
        fprintf(out, "%s%s%s", i ? ", " : "", v->disagreeing[i],
                m && !is_reachable(m) ? " (unreachable)" : "");
    }
    fprintf(out, "]\n");
}

/* ---------------------------------------------------------------- transfers */

/* The answer of a cairnd that predates the TransfersReport: its message and the pending
 * ownership changes. */
static void print_transfers_pending(FILE *out, const Cairn__Admin__AdminResp *r, const view_t *v)
{
    size_t n = v ? v->n_pending_transfers : 0;
    if (r->message && r->message[0])
        fprintf(out, "%s\n", r->message);
    else if (n == 0)
        fprintf(out, "No transfers active\n");
    if (n == 0)
        return;
    /* Per owner: how many partitions it still has to hand off (riak's summary lines). */
    fputc('\n', out);
    int wo = (int)strlen("Owner"), wn = (int)strlen("Next owner");
    for (size_t i = 0; i < n; i++) {
        const transfer_t *t = v->pending_transfers[i];
        int a = (int)strlen(or_unknown(t->owner)), b = (int)strlen(or_unknown(t->next_owner));
        wo = a > wo ? a : wo;
        wn = b > wn ? b : wn;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(or_unknown(v->pending_transfers[j]->owner), or_unknown(t->owner)) == 0;
        if (seen)
            continue;
        size_t waiting = 0, done = 0;
        for (size_t j = i; j < n; j++) {
            const transfer_t *u = v->pending_transfers[j];
            if (strcmp(or_unknown(u->owner), or_unknown(t->owner)) != 0)
                continue;
            if (u->has_done && u->done)
                done++;
            else
                waiting++;
        }
        if (waiting)
            fprintf(out, "%s waiting to hand off %zu partition(s)\n", or_unknown(t->owner),
                    waiting);
        if (done)
            fprintf(out,
                    "%s handed off %zu partition(s); the claimant has yet to change their "
                    "owner\n",
                    or_unknown(t->owner), done);
    }
    fprintf(out, "\n%9s  %-*s    %-*s  %s\n", "Partition", wo, "Owner", wn, "Next owner", "State");
    for (size_t i = 0; i < n; i++) {
        const transfer_t *t = v->pending_transfers[i];
        fprintf(out, "%9" PRIu32 "  %-*s -> %-*s  %s\n", t->partition, wo, or_unknown(t->owner),
                wn, or_unknown(t->next_owner), t->has_done && t->done ? "done" : "awaiting");
    }
}

typedef Cairn__Admin__ActiveTransfer active_t;
typedef Cairn__Admin__NodeHandoff node_handoff_t;

/* bytes as "812 B", "1.2 MB": decimal units, as MB/s. */
static const char *size_text(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

/* Rates only mean something while a sender runs: after it, the elapsed time keeps growing. */
static bool is_sending(const active_t *t)
{
    return t->state && strncmp(t->state, "sending", 7) == 0 && t->elapsed_ms > 0;
}

static void active_table(FILE *out, const Cairn__Admin__TransfersReport *rep)
{
    int wk = (int)strlen("Type"), wr = (int)strlen("Source -> Target");
    for (size_t i = 0; i < rep->n_active; i++) {
        const active_t *t = rep->active[i];
        int k = (int)strlen(or_unknown(t->kind));
        int w = (int)(strlen(or_unknown(t->source)) + 4 + strlen(or_unknown(t->target)));
        wk = k > wk ? k : wk;
        wr = w > wr ? w : wr;
    }
    fprintf(out, "\nActive transfers:\n");
    fprintf(out, "  %-*s  %9s  %-*s  %9s  %9s  %9s  %7s  %s\n", wk, "Type", "Partition", wr,
            "Source -> Target", "Objects", "Sent", "Objects/s", "MB/s", "State");
    for (size_t i = 0; i < rep->n_active; i++) {
        const active_t *t = rep->active[i];
        char route[600], sent[32], ops[32], mbs[32];
        snprintf(route, sizeof route, "%s -> %s", or_unknown(t->source), or_unknown(t->target));
        size_text(sent, sizeof sent, t->bytes);
        if (is_sending(t)) {
            double secs = (double)t->elapsed_ms / 1000.0;
            snprintf(ops, sizeof ops, "%.1f", (double)t->objects / secs);
            snprintf(mbs, sizeof mbs, "%.2f", (double)t->bytes / secs / 1e6);
        } else {
            snprintf(ops, sizeof ops, "-");
            snprintf(mbs, sizeof mbs, "-");
        }
        fprintf(out, "  %-*s  %9" PRIu32 "  %-*s  %9" PRIu64 "  %9s  %9s  %7s  %s\n", wk,
                or_unknown(t->kind), t->partition, wr, route, t->objects, sent, ops, mbs,
                or_unknown(t->state));
    }
}

static void waiting_table(FILE *out, const Cairn__Admin__TransfersReport *rep)
{
    int wr = (int)strlen("Owner -> Next owner");
    for (size_t i = 0; i < rep->n_waiting; i++) {
        const transfer_t *t = rep->waiting[i];
        int w = (int)(strlen(or_unknown(t->owner)) + 4 + strlen(or_unknown(t->next_owner)));
        wr = w > wr ? w : wr;
    }
    fprintf(out, "\nWaiting ownership transfers:\n");
    fprintf(out, "  %9s  %-*s  %s\n", "Partition", wr, "Owner -> Next owner", "State");
    for (size_t i = 0; i < rep->n_waiting; i++) {
        const transfer_t *t = rep->waiting[i];
        char route[600];
        snprintf(route, sizeof route, "%s -> %s", or_unknown(t->owner), or_unknown(t->next_owner));
        fprintf(out, "  %9" PRIu32 "  %-*s  %s\n", t->partition, wr, route,
                t->state ? t->state : (t->has_done && t->done ? "handed off" : "waiting"));
    }
}

static bool answered(const node_handoff_t *n)
{
    return n->has_answered && n->answered;
}

/* The members that did not answer, with why, on one line (nothing when all did). */
static void not_answered_line(FILE *out, node_handoff_t **nodes, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!answered(nodes[i]))
            fprintf(out, "%s%s (%s)", k++ ? ", " : "Did not answer: ", or_unknown(nodes[i]->node),
                    nodes[i]->error ? nodes[i]->error : "no reason given");
    if (k)
        fputc('\n', out);
}

static void print_transfers(FILE *out, const Cairn__Admin__AdminResp *r, const view_t *v)
{
    const Cairn__Admin__TransfersReport *rep = r->transfers;
    if (!rep) {
        print_transfers_pending(out, r, v);
        return;
    }
    fprintf(out, "%s\n", r->message && r->message[0] ? r->message : "transfers");
    if (rep->n_active)
        active_table(out, rep);
    if (rep->n_waiting)
        waiting_table(out, rep);
    bool held = false;
    for (size_t i = 0; i < rep->n_nodes; i++) {
        const node_handoff_t *n = rep->nodes[i];
        if (!answered(n) || !n->has_held || n->held == 0)
            continue;
        if (!held)
            fprintf(out, "\nHeld for other owners (fallback or old-owner data, handed off when "
                         "the owner is up):\n");
        held = true;
        fprintf(out, "  %s: %u partition(s)\n", or_unknown(n->node), n->held);
    }
    fprintf(out, "\nTransfer limit per member:");
    size_t shown = 0;
    for (size_t i = 0; i < rep->n_nodes; i++)
        if (answered(rep->nodes[i]) && rep->nodes[i]->has_limit)
            fprintf(out, "%s %s %u", shown++ ? "," : "", or_unknown(rep->nodes[i]->node),
                    rep->nodes[i]->limit);
    fprintf(out, "%s\n", shown ? "" : " unknown");
    not_answered_line(out, rep->nodes, rep->n_nodes);
}

/* ---------------------------------------------------------------- transfer-limit */

static void print_limits(FILE *out, const Cairn__Admin__AdminResp *r)
{
    if (r->message && r->message[0])
        fprintf(out, "%s\n\n", r->message);
    int wn = (int)strlen("Node");
    for (size_t i = 0; i < r->n_limits; i++) {
        int w = (int)strlen(or_unknown(r->limits[i]->node));
        wn = w > wn ? w : wn;
    }
    fprintf(out, "%-*s  %5s\n", wn, "Node", "Limit");
    for (size_t i = 0; i < r->n_limits; i++) {
        const node_handoff_t *n = r->limits[i];
        if (answered(n) && n->has_limit)
            fprintf(out, "%-*s  %5u\n", wn, or_unknown(n->node), n->limit);
        else
            fprintf(out, "%-*s  %5s  (not reached: %s)\n", wn, or_unknown(n->node), "-",
                    n->error ? n->error : "no reason given");
    }
    fprintf(out, "\nThe limit is a run-time setting: a node that restarts takes "
                 "handoff.concurrency\nfrom its configuration again.\n");
}

/* ---------------------------------------------------------------- replicas */

static void print_replicas(FILE *out, const Cairn__Admin__AdminResp *r)
{
    size_t agree = 0;
    for (size_t i = 0; i < r->n_replicas; i++) {
        const Cairn__Admin__KeyReplicas *k = r->replicas[i];
        bool conv = k->has_converged && k->converged;
        agree += conv;
        fprintf(out, "%.*s: %s\n", (int)k->key.len, (const char *)k->key.data,
                conv ? "replicas agree" : "replicas DIFFER");
        for (size_t j = 0; j < k->n_replicas; j++) {
            const Cairn__Admin__Replica *p = k->replicas[j];
            fprintf(out, "  partition %-5u %-28s %-9s", p->partition, or_unknown(p->node),
                    or_unknown(p->status));
            if (p->has_digest)
                fprintf(out, " siblings %u, digest %016" PRIx64, p->siblings, p->digest);
            if (p->error)
                fprintf(out, " (%s)", p->error);
            fputc('\n', out);
        }
    }
    fprintf(out, "%zu of %zu key(s) with every primary replica in agreement\n", agree,
            r->n_replicas);
}

/* ---------------------------------------------------------------- cluster plan */

static void staged_changes(FILE *out, const view_t *v)
{
    banner(out, "Staged Changes");
    fprintf(out, "Action         Details(s)\n");
    rule(out, '-');
    for (size_t i = 0; i < v->n_staged; i++) {
        const Cairn__Admin__Staged *s = v->staged[i];
        fprintf(out, "%-14s %s", or_unknown(s->action), or_unknown(s->node));
        if (s->new_node && s->new_node[0])
            fprintf(out, " with %s", s->new_node);
        fputc('\n', out);
    }
    rule(out, '-');
}

/* Per (owner, next owner) pair: how many partitions move. */
static void transfer_pairs(FILE *out, const view_t *v)
{
    size_t n = v->n_pending_transfers;
    bool *shown = calloc(n ? n : 1, sizeof *shown);
    if (!shown)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (shown[i])
            continue;
        const transfer_t *t = v->pending_transfers[i];
        size_t count = 0;
        for (size_t j = i; j < n; j++) {
            const transfer_t *u = v->pending_transfers[j];
            if (!shown[j] && strcmp(or_unknown(u->owner), or_unknown(t->owner)) == 0 &&
                strcmp(or_unknown(u->next_owner), or_unknown(t->next_owner)) == 0) {
                shown[j] = true;
                count++;
            }
        }
        fprintf(out, "  %zu transfers from %s to %s\n", count, or_unknown(t->owner),
                or_unknown(t->next_owner));
    }
    free(shown);
}

static void print_plan(FILE *out, const view_t *v)
{
    staged_changes(out, v);
    fprintf(out, "\n");
    membership(out, v);
    fputc('\n', out);
    if (v->has_violations && v->violations > 0)
        fprintf(out,
                "WARNING: Not all replicas will be on distinct nodes\n"
                "         (%u windows of %u consecutive partitions have a repeated owner)\n\n",
                v->violations, v->has_target_n_val ? v->target_n_val : 0);
    if (v->has_moved_now && v->moved_now > 0)
        fprintf(out,
                "Partitions changing owner at once, without moving data (force changes): %u\n",
                v->moved_now);
    fprintf(out, "Transfers resulting from cluster changes: %u\n",
            v->has_transfers ? v->transfers : (unsigned)v->n_pending_transfers);
    transfer_pairs(out, v);
}

/* ---------------------------------------------------------------- dispatch */

void admin_print_answer(FILE *out, const Cairn__Admin__AdminResp *r, Cairn__Admin__Command cmd)
{
    const view_t *v = r->cluster;
    switch (cmd) {
    case CAIRN__ADMIN__COMMAND__PING:
        fprintf(out, "pong from %s (cairn %s)\n", or_unknown(r->node), or_unknown(r->version));
        return;
    case CAIRN__ADMIN__COMMAND__STATUS:
        if (r->status) {
            print_status(out, r->status);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__MEMBER_STATUS:
        if (v) {
            print_member_status(out, v);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__RING_STATUS:
        if (v) {
            print_ring_status(out, v);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__RINGREADY:
        if (v) {
            print_ringready(out, v);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__TRANSFERS: print_transfers(out, r, v); return;
    case CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT: print_limits(out, r); return;
    case CAIRN__ADMIN__COMMAND__REPLICAS: print_replicas(out, r); return;
    case CAIRN__ADMIN__COMMAND__CLUSTER_PLAN:
        if (v) {
            print_plan(out, v);
            return;
        }
        break;
    case CAIRN__ADMIN__COMMAND__CLUSTER_LEAVE:
    case CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REMOVE:
    case CAIRN__ADMIN__COMMAND__CLUSTER_REPLACE:
    case CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REPLACE:
        fprintf(out, "%s\n", r->message && r->message[0] ? r->message : "staged");
        fprintf(out, "Review the staged changes with `cairn-admin cluster plan`, then apply "
                     "them with\n`cairn-admin cluster commit` (or drop them with `cairn-admin "
                     "cluster clear`).\n");
        return;
    default: break;
    }
    /* join, commit, clear, down, crash-vnode, and any answer without the expected body. */
    fprintf(out, "%s\n", r->message && r->message[0] ? r->message : "ok");
}
