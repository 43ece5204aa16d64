/*
 * test_gossip.c — the gossip decisions (ring/gossip.h): peers are never self, removed or down
 * members, and are distinct; gossip_receive's flags for each case (equal, behind, newer,
 * concurrent, removed sender, other cluster, self marked down, self removed); and 50 nodes
 * driven in lockstep rounds by the real protocol converge on one state within a bounded
 * number of rounds, for one change and for two concurrent changes.
 */
#include "ring/gossip.h"

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q 64u
#define MAX_NODES 64u

static char err[512];
static char names[MAX_NODES][32];

/* "n00@h:1", "n01@h:1", ...: sorted by number. */
static const char *node(unsigned k)
{
    snprintf(names[k], sizeof names[k], "n%02u@h:1", k);
    return names[k];
}

static void take(cstate_t **s, cstate_t *next)
{
    cr_assert_not_null(next);
    cstate_free(*s);
    *s = next;
}

/* n valid members n00..n(n-1), balanced, nothing pending; claimant n00. */
static cstate_t *cluster_of(unsigned n)
{
    cstate_t *s = cstate_new(Q, node(0), NULL), *next = NULL;
    for (unsigned k = 1; k < n; k++) {
        cr_assert_eq(cstate_join(s, node(k), Q, &next, err, sizeof err), 0, "%s", err);
        take(&s, next);
    }
    if (n == 1)
        return s;
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(s, NULL, 0, 0, node(0), &plan, err, sizeof err), 0, "%s", err);
    take(&s, plan.result);
    for (uint32_t p = 0; p < Q; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE) {
            cr_assert_eq(cstate_transfer_done(s, p, node(0), &next, err, sizeof err), 0, "%s",
                         err);
            take(&s, next);
        }
    cr_assert_eq(cstate_claimant_tick(s, node(0), &next), 0);
    take(&s, next);
    return s;
}

Test(gossip, peers_are_distinct_and_never_self_removed_or_down)
{
    cstate_t *s = cluster_of(10), *next = NULL;
    cr_assert_eq(cstate_mark_down(s, node(3), node(0), &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cstate_change_t rm;
    memset(&rm, 0, sizeof rm);
    rm.kind = CSTATE_CHANGE_FORCE_REMOVE;
    snprintf(rm.node, sizeof rm.node, "%s", node(4));
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(s, &rm, 1, 0, node(0), &plan, err, sizeof err), 0, "%s", err);
    take(&s, plan.result);

    uint64_t rng = 7;
    uint32_t out[GOSSIP_FANOUT_MAX];
    for (unsigned self = 0; self < 11; self++) { /* 10 is not a member at all */
        unsigned eligible = 8 - (self != 3 && self != 4 && self < 10);
        unsigned seen[10] = {0};
        for (unsigned round = 0; round < 300; round++) {
            unsigned fanout = round % 12;
            size_t n = gossip_pick_peers(s, node(self), &rng, fanout, out);
            cr_assert_eq(n, fanout < eligible ? fanout : eligible, "self %u fanout %u", self,
                         fanout);
            for (size_t i = 0; i < n; i++) {
                const char *peer = cstate_member_name(s, out[i]);
                cr_assert_not_null(peer);
                cr_assert_str_neq(peer, node(self), "never self");
                cstate_status_t st = cstate_member_status(s, out[i]);
                cr_assert(st != CSTATE_REMOVED && st != CSTATE_DOWN, "%s is %s", peer,
                          cstate_status_name(st));
                for (size_t j = 0; j < i; j++)
                    cr_assert_neq(out[i], out[j], "distinct");
                seen[out[i]]++;
            }
        }
        for (unsigned k = 0; k < 10; k++)
            if (k != self && k != 3 && k != 4)
                cr_assert_gt(seen[k], 0, "self %u: %s is picked sometimes", self, node(k));
    }
    cstate_t *one = cstate_new(Q, node(0), NULL);
    cr_assert_eq(gossip_pick_peers(one, node(0), &rng, 2, out), 0, "alone: nobody to tell");
    cstate_free(one);
    cstate_free(s);
}

Test(gossip, receive_tells_the_caller_what_to_do)
{
    cstate_t *base = cluster_of(4), *newer = NULL, *other = NULL, *got = NULL;
    cr_assert_eq(cstate_mark_down(base, node(3), node(1), &newer, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_mark_down(base, node(2), node(0), &other, err, sizeof err), 0, "%s", err);

    cr_assert_eq(gossip_receive(base, base, node(0), node(1), &got), 0u, "equal: nothing");
    cr_assert_null(got);
    cr_assert_eq(gossip_receive(newer, base, node(1), node(0), &got), (unsigned)GOSSIP_REPLY,
                 "the sender is behind");
    cr_assert_null(got);
    cr_assert_eq(gossip_receive(base, newer, node(0), node(1), &got),
                 (unsigned)(GOSSIP_INSTALL | GOSSIP_SPREAD));
    cr_assert_eq(cstate_fingerprint(got), cstate_fingerprint(newer));
    cstate_free(got);
    cr_assert_eq(gossip_receive(other, newer, node(0), node(1), &got),
                 (unsigned)(GOSSIP_INSTALL | GOSSIP_SPREAD | GOSSIP_REPLY), "concurrent");
    cr_assert_eq(cstate_compare(got, newer), CSTATE_ORDER_NEWER);
    cr_assert_eq(cstate_compare(got, other), CSTATE_ORDER_NEWER);
    cstate_free(got);

    cstate_t *foreign = cstate_new(Q, node(9), "elsewhere");
    cr_assert_eq(gossip_receive(base, foreign, node(0), node(9), &got), (unsigned)GOSSIP_FOREIGN);
    cr_assert_null(got);
    cstate_free(foreign);

    /* node3 was marked down but is alive: hearing it, it marks itself up and says so */
    unsigned f = gossip_receive(base, newer, node(3), node(1), &got);
    cr_assert_eq(f, (unsigned)(GOSSIP_INSTALL | GOSSIP_SPREAD | GOSSIP_REPLY | GOSSIP_SELF_UP));
    cr_assert_eq(cstate_member_status(got, cstate_member_index(got, node(3))), CSTATE_VALID);
    cr_assert_eq(cstate_compare(got, newer), CSTATE_ORDER_NEWER);
    cstate_free(got);

    /* a removed member's gossip is ignored and it is told; it learns it is out */
    cstate_change_t rm;
    memset(&rm, 0, sizeof rm);
    rm.kind = CSTATE_CHANGE_FORCE_REMOVE;
    snprintf(rm.node, sizeof rm.node, "%s", node(2));
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(base, &rm, 1, 0, node(0), &plan, err, sizeof err), 0, "%s", err);
    cstate_t *removed = plan.result;
    cr_assert_eq(gossip_receive(removed, other, node(0), node(2), &got),
                 (unsigned)GOSSIP_TELL_REMOVED);
    cr_assert_null(got);
    f = gossip_receive(other, removed, node(2), node(0), &got);
    cr_assert(f & GOSSIP_INSTALL);
    cr_assert(f & GOSSIP_SELF_REMOVED, "flags %#x", f);
    cr_assert(!(f & GOSSIP_SPREAD), "a removed node does not spread");
    cstate_free(got);
    cstate_free(removed);
    cstate_free(other);
    cstate_free(newer);
    cstate_free(base);
}

/* ---------------------------------------------------------------- a lockstep run */

typedef struct msg_s {
    unsigned from, to;
    cstate_t *state;
} msg_t;

typedef struct run_s {
    unsigned n;
    bool alive[MAX_NODES];
    cstate_t *state[MAX_NODES];
    msg_t *queue, *next_queue; /* messages sent this round / queued for the next one */
    size_t nqueue, nnext, cap;
    uint64_t rng;
} run_t;

static void send_state(run_t *r, unsigned from, unsigned to)
{
    cr_assert_lt(r->nnext, r->cap, "message queue bound");
    r->next_queue[r->nnext++] =
        (msg_t){.from = from, .to = to, .state = cstate_dup(r->state[from])};
}

static void push_random(run_t *r, unsigned from, unsigned fanout)
{
    uint32_t peers[GOSSIP_FANOUT_MAX];
    size_t k = gossip_pick_peers(r->state[from], node(from), &r->rng, fanout, peers);
    for (size_t i = 0; i < k; i++) {
        unsigned to = 0;
        cr_assert_eq(sscanf(cstate_member_name(r->state[from], peers[i]), "n%u@", &to), 1);
        send_state(r, from, to);
    }
}

static bool converged(const run_t *r)
{
    uint64_t fp = 0;
    bool first = true;
    for (unsigned k = 0; k < r->n; k++) {
        if (!r->alive[k])
            continue;
        if (!first && cstate_fingerprint(r->state[k]) != fp)
            return false;
        fp = cstate_fingerprint(r->state[k]);
        first = false;
    }
    return true;
}

/* One round: every live node pushes to one random peer (anti-entropy) next to what the last
 * round's deliveries queued; then everything sent this round is delivered. */
static void round_step(run_t *r)
{
    for (unsigned k = 0; k < r->n; k++)
        if (r->alive[k])
            push_random(r, k, 1);
    msg_t *tmp = r->queue;
    r->queue = r->next_queue;
    r->nqueue = r->nnext;
    r->next_queue = tmp;
    r->nnext = 0;
    for (size_t i = 0; i < r->nqueue; i++) {
        msg_t *m = &r->queue[i];
        if (r->alive[m->to]) {
            cstate_t *next = NULL;
            unsigned f =
                gossip_receive(r->state[m->to], m->state, node(m->to), node(m->from), &next);
            if (f & GOSSIP_INSTALL)
                take(&r->state[m->to], next);
            if (f & GOSSIP_SPREAD)
                push_random(r, m->to, GOSSIP_FANOUT);
            if (f & (GOSSIP_REPLY | GOSSIP_TELL_REMOVED))
                send_state(r, m->to, m->from);
        }
        cstate_free(m->state);
    }
    r->nqueue = 0;
}

static void run_init(run_t *r, unsigned n, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->rng = seed;
    r->cap = 64 * n;
    r->queue = calloc(r->cap, sizeof *r->queue);
    r->next_queue = calloc(r->cap, sizeof *r->next_queue);
    cstate_t *base = cluster_of(n);
    for (unsigned k = 0; k < n; k++) {
        r->alive[k] = true;
        r->state[k] = cstate_dup(base);
    }
    cstate_free(base);
}

static void run_free(run_t *r)
{
    for (size_t i = 0; i < r->nnext; i++)
        cstate_free(r->next_queue[i].state);
    for (unsigned k = 0; k < r->n; k++)
        cstate_free(r->state[k]);
    free(r->queue);
    free(r->next_queue);
}

/* A local change at node k: install it and push it to GOSSIP_FANOUT peers. */
static void local_change(run_t *r, unsigned k, cstate_t *next)
{
    take(&r->state[k], next);
    push_random(r, k, GOSSIP_FANOUT);
}

static unsigned rounds_to_converge(run_t *r, unsigned bound)
{
    unsigned rounds = 0;
    while (!converged(r) && rounds < bound) {
        round_step(r);
        rounds++;
    }
    return rounds;
}

#define NODES 50u
#define ROUND_BOUND 30u /* log2(50) ~ 6 hops; anything near the bound means the protocol broke */

Test(gossip, fifty_nodes_converge_on_one_change, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        run_t r;
        run_init(&r, NODES, seed);
        r.alive[NODES - 1] = false; /* dead: node 0 marks it down */
        cstate_t *next = NULL;
        cr_assert_eq(cstate_mark_down(r.state[0], node(NODES - 1), node(0), &next, err, sizeof err),
                     0, "%s", err);
        local_change(&r, 0, next);
        unsigned rounds = rounds_to_converge(&r, ROUND_BOUND);
        cr_assert(converged(&r), "seed %llu: not converged after %u rounds",
                  (unsigned long long)seed, rounds);
        cr_assert_leq(rounds, 12, "seed %llu: %u rounds", (unsigned long long)seed, rounds);
        const cstate_t *s = r.state[1];
        cr_assert_eq(cstate_member_status(s, cstate_member_index(s, node(NODES - 1))), CSTATE_DOWN);
        run_free(&r);
    }
}

Test(gossip, fifty_nodes_converge_on_concurrent_changes, .timeout = 120)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        run_t r;
        run_init(&r, NODES, 100 + seed);
        r.alive[NODES - 1] = false;
        r.alive[NODES - 2] = false;
        cstate_t *a = NULL, *b = NULL;
        /* the claimant plans a leave while another node marks two dead nodes down */
        cstate_change_t leave;
        memset(&leave, 0, sizeof leave);
        leave.kind = CSTATE_CHANGE_LEAVE;
        snprintf(leave.node, sizeof leave.node, "%s", node(7));
        cstate_plan_t plan;
        cr_assert_eq(cstate_plan(r.state[0], &leave, 1, 0, node(0), &plan, err, sizeof err), 0,
                     "%s", err);
        cr_assert_eq(cstate_mark_down(r.state[20], node(NODES - 1), node(20), &a, err, sizeof err),
                     0, "%s", err);
        cr_assert_eq(cstate_mark_down(a, node(NODES - 2), node(20), &b, err, sizeof err), 0, "%s",
                     err);
        cstate_free(a);
        local_change(&r, 0, plan.result);
        local_change(&r, 20, b);
        unsigned rounds = rounds_to_converge(&r, ROUND_BOUND);
        cr_assert(converged(&r), "seed %llu: not converged after %u rounds",
                  (unsigned long long)seed, rounds);
        cr_assert_leq(rounds, 12, "seed %llu: %u rounds", (unsigned long long)seed, rounds);
        const cstate_t *s = r.state[3];
        cr_assert_eq(cstate_member_status(s, cstate_member_index(s, node(7))), CSTATE_LEAVING);
        cr_assert_eq(cstate_member_status(s, cstate_member_index(s, node(NODES - 1))), CSTATE_DOWN);
        cr_assert_eq(cstate_member_status(s, cstate_member_index(s, node(NODES - 2))), CSTATE_DOWN);
        cr_assert_gt(cstate_pending_count(s), 0, "the leave's transfers made it too");
        run_free(&r);
    }
}
