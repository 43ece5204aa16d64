/*
 * gossip-sim_main.c — bin/gossip-sim: how fast a change of the cluster state reaches every
 * node. n nodes run inside one process, each with its own cstate_t, and act exactly by the
 * real protocol code: gossip_pick_peers, gossip_receive (cstate_merge) and the cstate_*
 * changes (ring/gossip.h, ring/cstate.h). Only the network and the clock are simulated.
 *
 * A change is made at t = 0 (see --change); the run ends when every live node holds a state
 * with the same cstate_fingerprint, and the sim checks that this state carries the change.
 * Two time models (--model):
 *   rounds  lockstep: one round = one gossip interval. In a round every live node pushes its
 *           state to one random peer (anti-entropy), and every message sent in the round
 *           (those pushes, plus the spreads and replies the previous round's deliveries
 *           produced) is delivered at its end, in random order; what a delivery sends goes
 *           out in the next round. Every hop costs a whole interval: a pessimistic bound.
 *   events  discrete events: each node's anti-entropy timer fires every interval from a
 *           random phase; a message arrives after a random latency (--latency-ms); spreads
 *           and replies leave as soon as a message is handled. Closer to a real LAN, where a
 *           change-triggered epidemic finishes in milliseconds and only its stragglers wait
 *           for anti-entropy.
 * Messages are dropped with probability --loss. States are shared between messages and nodes
 * by reference counts (they are immutable), not copied: a copy per message would only cost
 * time, the decisions are the same.
 *
 * The initial cluster (every node valid, identical states, partitions striped round-robin)
 * is built through cstate_decode of a RingState, so 1000 members cost no claim run.
 */
#include "proto/ring.pb-c.h"
#include "ring/cstate.h"
#include "ring/gossip.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX_NODES (CSTATE_MAX_MEMBERS - 1) /* one slot left for a joiner */

typedef enum { CHANGE_COMMIT, CHANGE_DOWN, CHANGE_JOIN, CHANGE_CONCURRENT, CHANGE_COUNT } change_t;
static const char *const change_names[CHANGE_COUNT] = {"commit", "down", "join", "concurrent"};

typedef enum { MODEL_ROUNDS, MODEL_EVENTS } model_t;

typedef struct options_s {
    unsigned nodes, seeds, max_rounds;
    uint64_t first_seed;
    uint32_t ring_size;            /* 0: the smallest power of two >= max(64, nodes) */
    int change;                    /* a change_t, or -1: all of them */
    model_t model;
    double latency_min_ms, latency_max_ms, loss;
    bool json;
} options_t;

/* ---------------------------------------------------------------- shared states */

typedef struct sref_s {
    cstate_t *state;
    uint32_t refs;
} sref_t;

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "gossip-sim: out of memory\n");
        exit(2);
    }
    return p;
}

static sref_t *sref_new(cstate_t *s)
{
    if (!s) {
        fprintf(stderr, "gossip-sim: a cluster state change failed (out of memory?)\n");
        exit(2);
    }
    sref_t *r = xmalloc(sizeof *r);
    r->state = s;
    r->refs = 1;
    return r;
}

static sref_t *sref_hold(sref_t *r)
{
    r->refs++;
    return r;
}

static void sref_drop(sref_t *r)
{
    if (r && --r->refs == 0) {
        cstate_free(r->state);
        free(r);
    }
}

/* ---------------------------------------------------------------- the simulated cluster */

typedef struct msg_s {
    uint32_t from, to;
    sref_t *state;
} msg_t;

typedef struct event_s {
    uint64_t at_us, seq;
    bool is_timer;                 /* timer of node msg.to, or delivery of msg */
    msg_t msg;
} event_t;

typedef struct sim_s {
    const options_t *opt;
    unsigned n;                    /* nodes, the joiner included */
    char (*names)[32];
    bool *alive;
    sref_t **state;
    uint64_t rng;
    uint64_t messages;
    /* fingerprint census of the live nodes: distinct values and how many hold each */
    uint64_t *fp;
    uint32_t *fp_count, nfp, live;
    /* rounds model: the messages of this round */
    msg_t *round, *next_round;
    size_t nround, nnext, cap_round;
    /* events model: a binary heap */
    event_t *heap;
    size_t nheap, cap_heap;
    uint64_t now_us, seq;
} sim_t;

static void census_add(sim_t *s, uint64_t fp, int delta)
{
    for (uint32_t i = 0; i < s->nfp; i++)
        if (s->fp[i] == fp) {
            s->fp_count[i] = (uint32_t)((int)s->fp_count[i] + delta);
            if (s->fp_count[i] == 0) {
                s->fp[i] = s->fp[s->nfp - 1];
                s->fp_count[i] = s->fp_count[s->nfp - 1];
                s->nfp--;
            }
            return;
        }
    s->fp[s->nfp] = fp;
    s->fp_count[s->nfp++] = (uint32_t)delta;
}

static bool converged(const sim_t *s)
{
    return s->nfp == 1 && s->fp_count[0] == s->live;
}

/* Node k now holds next (a new reference). */
static void install(sim_t *s, uint32_t k, sref_t *next)
{
    if (s->alive[k] && s->state[k])
        census_add(s, cstate_fingerprint(s->state[k]->state), -1);
    sref_drop(s->state[k]);
    s->state[k] = next;
    if (s->alive[k])
        census_add(s, cstate_fingerprint(next->state), +1);
}

static uint32_t node_of(const sim_t *s, const char *name)
{
    unsigned k = 0;
    if (sscanf(name, "node%u@", &k) != 1 || k >= s->n) {
        fprintf(stderr, "gossip-sim: unknown member %s\n", name);
        exit(2);
    }
    return k;
}

static double uniform(uint64_t *rng)
{
    return (double)(gossip_random(rng) >> 11) / (double)(UINT64_C(1) << 53);
}

static void heap_push(sim_t *s, event_t e)
{
    if (s->nheap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? 2 * s->cap_heap : 1024;
        event_t *grown = realloc(s->heap, s->cap_heap * sizeof *grown);
        if (!grown) {
            fprintf(stderr, "gossip-sim: out of memory\n");
            exit(2);
        }
        s->heap = grown;
    }
    e.seq = s->seq++;
    size_t i = s->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        event_t *p = &s->heap[up];
        if (p->at_us < e.at_us || (p->at_us == e.at_us && p->seq < e.seq))
            break;
        s->heap[i] = *p;
        i = up;
    }
    s->heap[i] = e;
}

static event_t heap_pop(sim_t *s)
{
    event_t top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && (s->heap[c + 1].at_us < s->heap[c].at_us ||
                                 (s->heap[c + 1].at_us == s->heap[c].at_us &&
                                  s->heap[c + 1].seq < s->heap[c].seq)))
            c++;
        if (last.at_us < s->heap[c].at_us ||
            (last.at_us == s->heap[c].at_us && last.seq < s->heap[c].seq))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = last;
    return top;
}

/* Sends node from's current state to node to (or loses it). */
static void send_state(sim_t *s, uint32_t from, uint32_t to)
{
    s->messages++;
    if (s->opt->loss > 0 && uniform(&s->rng) < s->opt->loss)
        return;
    msg_t m = {.from = from, .to = to, .state = sref_hold(s->state[from])};
    if (s->opt->model == MODEL_ROUNDS) {
        if (s->nnext == s->cap_round) {
            s->cap_round *= 2;
            msg_t *grown = realloc(s->next_round, s->cap_round * sizeof *grown);
            msg_t *grown2 = grown ? realloc(s->round, s->cap_round * sizeof *grown2) : NULL;
            if (!grown || !grown2) {
                fprintf(stderr, "gossip-sim: out of memory\n");
                exit(2);
            }
            s->next_round = grown;
            s->round = grown2;
        }
        s->next_round[s->nnext++] = m;
    } else {
        double ms = s->opt->latency_min_ms +
                    uniform(&s->rng) * (s->opt->latency_max_ms - s->opt->latency_min_ms);
        heap_push(s, (event_t){.at_us = s->now_us + (uint64_t)(ms * 1000.0), .msg = m});
    }
}

static void push_random(sim_t *s, uint32_t from, unsigned fanout)
{
    uint32_t peers[GOSSIP_FANOUT_MAX];
    const cstate_t *cs = s->state[from]->state;
    size_t k = gossip_pick_peers(cs, s->names[from], &s->rng, fanout, peers);
    for (size_t i = 0; i < k; i++)
        send_state(s, from, node_of(s, cstate_member_name(cs, peers[i])));
}

/* Node m.to handles a pushed state, exactly as a ring manager would. */
static void deliver(sim_t *s, msg_t m)
{
    if (s->alive[m.to]) {
        cstate_t *next = NULL;
        unsigned f = gossip_receive(s->state[m.to]->state, m.state->state, s->names[m.to],
                                    s->names[m.from], &next);
        if (f & GOSSIP_INSTALL)
            install(s, m.to, sref_new(next));
        if (f & GOSSIP_SPREAD)
            push_random(s, m.to, GOSSIP_FANOUT);
        if (f & (GOSSIP_REPLY | GOSSIP_TELL_REMOVED))
            send_state(s, m.to, m.from);
    }
    sref_drop(m.state);
}

/* A change made by node k itself: install and push to GOSSIP_FANOUT peers. */
static void local_change(sim_t *s, uint32_t k, cstate_t *next)
{
    install(s, k, sref_new(next));
    push_random(s, k, GOSSIP_FANOUT);
}

/* ---------------------------------------------------------------- the initial cluster */

/* n valid members node0000..: identical states, built from a RingState through
 * cstate_decode (the gossip payload path). */
static cstate_t *initial_state(const sim_t *s, unsigned n, uint32_t q)
{
    Cairn__Ring__RingState m = CAIRN__RING__RING_STATE__INIT;
    char **members = xmalloc(n * sizeof *members);
    uint32_t *owners = xmalloc(q * sizeof *owners), *status = xmalloc(n * sizeof *status);
    uint64_t *mver = xmalloc(n * sizeof *mver), *vclock = xmalloc(n * sizeof *vclock);
    for (unsigned k = 0; k < n; k++) {
        members[k] = (char *)s->names[k];
        status[k] = CSTATE_VALID;
        mver[k] = 1;
        vclock[k] = 1;
    }
    for (uint32_t p = 0; p < q; p++)
        owners[p] = p % n;
    m.has_ring_size = 1;
    m.ring_size = q;
    m.n_members = n;
    m.members = members;
    m.n_owners = q;
    m.owners = owners;
    m.cluster_name = "sim";
    m.founder = members[0];
    m.n_member_status = m.n_member_version = m.n_vclock = n;
    m.member_status = status;
    m.member_version = mver;
    m.vclock = vclock;
    m.has_claimant = 1;
    m.has_ring_version = 1;
    m.ring_version = 1;
    m.has_pending_count = 1;
    size_t len = cairn__ring__ring_state__get_packed_size(&m);
    uint8_t *buf = xmalloc(len);
    cairn__ring__ring_state__pack(&m, buf);
    char err[256];
    cstate_t *out = NULL;
    if (cstate_decode(buf, len, &out, err, sizeof err) != 0) {
        fprintf(stderr, "gossip-sim: initial state refused: %s\n", err);
        exit(2);
    }
    free(buf);
    free(members);
    free(owners);
    free(status);
    free(mver);
    free(vclock);
    return out;
}

/* ---------------------------------------------------------------- one run */

typedef struct result_s {
    bool converged;
    double seconds;                /* simulated time to convergence */
    unsigned rounds;               /* gossip intervals started until then */
    uint64_t messages;
    unsigned live;
} result_t;

static void must(int rc, const char *what, const char *err)
{
    if (rc != 0) {
        fprintf(stderr, "gossip-sim: %s: %s\n", what, err);
        exit(2);
    }
}

/* Makes the change at t = 0 (see --help): node 0 is the claimant, node n-1 the one that
 * dies (down, concurrent), node n-2 the one that leaves (commit, concurrent), node 1 the one
 * that marks the dead node down, node n the joiner. */
static void make_change(sim_t *s, change_t change, unsigned n)
{
    char err[256];
    cstate_t *next = NULL;
    const unsigned claimant = 0, dead = n - 1, leaver = n >= 3 ? n - 2 : 1, marker = 1;
    cstate_change_t leave;
    memset(&leave, 0, sizeof leave);
    leave.kind = CSTATE_CHANGE_LEAVE;
    snprintf(leave.node, sizeof leave.node, "%s", s->names[leaver]);
    cstate_plan_t plan;
    switch (change) {
    case CHANGE_COMMIT:
        must(cstate_plan(s->state[claimant]->state, &leave, 1, 0, s->names[claimant], &plan, err,
                         sizeof err), "plan", err);
        local_change(s, claimant, plan.result);
        break;
    case CHANGE_DOWN:
        s->alive[dead] = false;
        census_add(s, cstate_fingerprint(s->state[dead]->state), -1);
        s->live--;
        must(cstate_mark_down(s->state[marker]->state, s->names[dead], s->names[marker], &next,
                              err, sizeof err), "mark_down", err);
        local_change(s, marker, next);
        break;
    case CHANGE_JOIN: {
        unsigned via = (unsigned)(gossip_random(&s->rng) % n), joiner = n;
        must(cstate_join(s->state[via]->state, s->names[joiner], cstate_size(s->state[via]->state),
                         &next, err, sizeof err), "join", err);
        s->alive[joiner] = true;
        s->live++;
        census_add(s, cstate_fingerprint(s->state[joiner]->state), +1);
        local_change(s, joiner, next);
        break;
    }
    case CHANGE_CONCURRENT:
        s->alive[dead] = false;
        census_add(s, cstate_fingerprint(s->state[dead]->state), -1);
        s->live--;
        must(cstate_plan(s->state[claimant]->state, &leave, 1, 0, s->names[claimant], &plan, err,
                         sizeof err), "plan", err);
        must(cstate_mark_down(s->state[marker]->state, s->names[dead], s->names[marker], &next,
                              err, sizeof err), "mark_down", err);
        local_change(s, claimant, plan.result);
        local_change(s, marker, next);
        break;
    case CHANGE_COUNT:
        break;
    }
}

/* Whether the agreed state carries the change. */
static bool change_arrived(const sim_t *s, change_t change, unsigned n)
{
    const cstate_t *cs = NULL;
    for (unsigned k = 0; k < s->n && !cs; k++)
        if (s->alive[k])
            cs = s->state[k]->state;
    const unsigned dead = n - 1, leaver = n >= 3 ? n - 2 : 1;
    uint32_t i;
    switch (change) {
    case CHANGE_COMMIT:
        i = cstate_member_index(cs, s->names[leaver]);
        return cstate_member_status(cs, i) == CSTATE_LEAVING;
    case CHANGE_DOWN:
        return cstate_member_status(cs, cstate_member_index(cs, s->names[dead])) == CSTATE_DOWN;
    case CHANGE_JOIN:
        i = cstate_member_index(cs, s->names[n]);
        return i != CSTATE_NONE && cstate_member_status(cs, i) == CSTATE_JOINING;
    case CHANGE_CONCURRENT:
        i = cstate_member_index(cs, s->names[leaver]);
        return cstate_member_status(cs, i) == CSTATE_LEAVING &&
               cstate_member_status(cs, cstate_member_index(cs, s->names[dead])) == CSTATE_DOWN;
    case CHANGE_COUNT:
        break;
    }
    return false;
}

static void run_rounds(sim_t *s, result_t *res)
{
    unsigned round = 0;
    while (!converged(s) && round < s->opt->max_rounds) {
        round++;
        for (uint32_t k = 0; k < s->n; k++)
            if (s->alive[k])
                push_random(s, k, 1);
        msg_t *tmp = s->round;
        s->round = s->next_round;
        s->nround = s->nnext;
        s->next_round = tmp;
        s->nnext = 0;
        for (size_t i = s->nround; i > 1; i--) { /* delivered in random order */
            size_t j = (size_t)(gossip_random(&s->rng) % i);
            msg_t t = s->round[i - 1];
            s->round[i - 1] = s->round[j];
            s->round[j] = t;
        }
        for (size_t i = 0; i < s->nround; i++)
            deliver(s, s->round[i]);
        s->nround = 0;
    }
    res->rounds = round;
    res->seconds = round * (GOSSIP_INTERVAL_MS / 1000.0);
}

static void run_events(sim_t *s, result_t *res)
{
    const uint64_t interval_us = GOSSIP_INTERVAL_MS * 1000ull;
    const uint64_t end_us = (uint64_t)s->opt->max_rounds * interval_us;
    for (uint32_t k = 0; k < s->n; k++)
        if (s->alive[k])
            heap_push(s, (event_t){.at_us = gossip_random(&s->rng) % interval_us,
                                   .is_timer = true, .msg = {.to = k}});
    while (!converged(s) && s->nheap > 0) {
        event_t e = heap_pop(s);
        if (e.at_us > end_us) {
            if (!e.is_timer)
                sref_drop(e.msg.state);
            break;
        }
        s->now_us = e.at_us;
        if (e.is_timer) {
            if (s->alive[e.msg.to]) {
                push_random(s, e.msg.to, 1);
                e.at_us += interval_us;
                heap_push(s, e);
            }
        } else {
            deliver(s, e.msg);
        }
    }
    res->seconds = (double)s->now_us / 1e6;
    res->rounds = (unsigned)((s->now_us + interval_us - 1) / interval_us);
}

static result_t run_once(const options_t *opt, change_t change, uint64_t seed)
{
    unsigned n = opt->nodes;
    uint32_t q = opt->ring_size;
    sim_t s;
    memset(&s, 0, sizeof s);
    s.opt = opt;
    s.n = n + 1; /* slot n: the joiner of CHANGE_JOIN, otherwise never alive */
    s.rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
    s.names = xmalloc(s.n * sizeof *s.names);
    s.alive = xmalloc(s.n * sizeof *s.alive);
    s.state = xmalloc(s.n * sizeof *s.state);
    s.fp = xmalloc((s.n + 1) * sizeof *s.fp);
    s.fp_count = xmalloc((s.n + 1) * sizeof *s.fp_count);
    s.cap_round = 8 * (size_t)s.n;
    s.round = xmalloc(s.cap_round * sizeof *s.round);
    s.next_round = xmalloc(s.cap_round * sizeof *s.next_round);
    for (unsigned k = 0; k < s.n; k++)
        snprintf(s.names[k], sizeof s.names[k], "node%04u@sim:1", k);
    sref_t *base = sref_new(initial_state(&s, n, q));
    for (unsigned k = 0; k < n; k++) {
        s.alive[k] = true;
        s.live++;
        install(&s, k, sref_hold(base));
    }
    s.state[n] = sref_new(cstate_new(q, s.names[n], "sim")); /* the joiner, alone */
    sref_drop(base);

    make_change(&s, change, n);
    result_t res = {0};
    if (opt->model == MODEL_ROUNDS)
        run_rounds(&s, &res);
    else
        run_events(&s, &res);
    res.converged = converged(&s);
    if (res.converged && !change_arrived(&s, change, n)) {
        fprintf(stderr, "gossip-sim: seed %" PRIu64 ": the nodes agree on a state without the "
                "change\n", seed);
        res.converged = false;
    }
    res.messages = s.messages;
    res.live = s.live;

    for (size_t i = 0; i < s.nnext; i++)
        sref_drop(s.next_round[i].state);
    for (size_t i = 0; i < s.nheap; i++)
        if (!s.heap[i].is_timer)
            sref_drop(s.heap[i].msg.state);
    for (unsigned k = 0; k < s.n; k++)
        sref_drop(s.state[k]);
    free(s.heap);
    free(s.round);
    free(s.next_round);
    free(s.fp);
    free(s.fp_count);
    free(s.state);
    free(s.alive);
    free(s.names);
    return res;
}

/* ---------------------------------------------------------------- the report */

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double maximum(const double *v, unsigned n)
{
    double m = v[0];
    for (unsigned i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* Runs every seed of one change and prints its summary; returns whether all converged. */
static bool run_change(const options_t *opt, change_t change, bool first)
{
    unsigned n = opt->seeds;
    double *rounds = xmalloc(n * sizeof *rounds), *secs = xmalloc(n * sizeof *secs);
    double *msgs = xmalloc(n * sizeof *msgs);
    unsigned failed = 0, live = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t seed = opt->first_seed + i;
        result_t r = run_once(opt, change, seed);
        failed += !r.converged;
        live = r.live;
        rounds[i] = r.rounds;
        secs[i] = r.seconds;
        msgs[i] = (double)r.messages / r.live;
        if (!opt->json)
            printf("  %-10s seed %-4" PRIu64 " %s after %3u rounds, %8.3f s, %6.1f messages/node\n",
                   change_names[change], seed, r.converged ? "converged" : "NOT CONVERGED",
                   r.rounds, r.seconds, msgs[i]);
    }
    double med_rounds = median(rounds, n), max_rounds = maximum(rounds, n);
    double med_secs = median(secs, n), max_secs = maximum(secs, n);
    double med_msgs = median(msgs, n);
    if (opt->json) {
        printf("%s{\"nodes\": %u, \"live\": %u, \"ring_size\": %u, \"change\": \"%s\", "
               "\"model\": \"%s\", \"seeds\": %u, \"fanout\": %u, \"interval_ms\": %u, "
               "\"loss\": %g, \"not_converged\": %u, "
               "\"rounds\": {\"median\": %g, \"max\": %g}, "
               "\"seconds\": {\"median\": %.4f, \"max\": %.4f}, "
               "\"messages_per_node\": {\"median\": %.2f}}",
               first ? "" : ",\n ", opt->nodes, live, opt->ring_size, change_names[change],
               opt->model == MODEL_ROUNDS ? "rounds" : "events", n, GOSSIP_FANOUT,
               GOSSIP_INTERVAL_MS, opt->loss, failed, med_rounds, max_rounds, med_secs, max_secs,
               med_msgs);
    } else {
        printf("%-10s %5u nodes: rounds median %g max %g; seconds median %.3f max %.3f; "
               "messages/node median %.1f%s\n",
               change_names[change], opt->nodes, med_rounds, max_rounds, med_secs, max_secs,
               med_msgs, failed ? "; SOME RUNS DID NOT CONVERGE" : "");
    }
    free(rounds);
    free(secs);
    free(msgs);
    return failed == 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gossip-sim [options]\n"
            "Simulates n nodes running the cluster-state gossip (ring/gossip.h) in one process\n"
            "and reports how many gossip intervals (%u ms) a change takes to reach every node.\n"
            "  --nodes N          nodes in the cluster (3..%u, default 100)\n"
            "  --seeds S          runs with seeds first..first+S-1 (default 10)\n"
            "  --seed X           the first seed (default 1)\n"
            "  --change C         commit (the claimant commits a leave), down (a node marks a\n"
            "                     dead node down), join (a new node joins), concurrent (a commit\n"
            "                     and a mark-down at two nodes at once), or all (default)\n"
            "  --model M          rounds (lockstep, default) or events (timers + latency)\n"
            "  --latency-ms A-B   events model: message latency uniform in [A, B] ms (1-5)\n"
            "  --loss P           drop each message with probability P (default 0)\n"
            "  --ring-size Q      partitions (default: smallest power of two >= max(64, N))\n"
            "  --max-rounds R     give up after R intervals (default 100)\n"
            "  --json             one JSON array of summaries on stdout\n"
            "  --help             this text\n"
            "Exit status: 0 when every run converged, 1 when one did not, 2 on bad usage.\n",
            GOSSIP_INTERVAL_MS, SIM_MAX_NODES);
}

static bool parse_unsigned(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    options_t opt = {.nodes = 100, .seeds = 10, .first_seed = 1, .max_rounds = 100,
                     .change = -1, .model = MODEL_ROUNDS, .latency_min_ms = 1,
                     .latency_max_ms = 5};
    static const struct option longs[] = {
        {"nodes", required_argument, 0, 'n'},      {"seeds", required_argument, 0, 's'},
        {"seed", required_argument, 0, 'x'},       {"change", required_argument, 0, 'c'},
        {"model", required_argument, 0, 'm'},      {"latency-ms", required_argument, 0, 'l'},
        {"loss", required_argument, 0, 'p'},       {"ring-size", required_argument, 0, 'q'},
        {"max-rounds", required_argument, 0, 'r'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    int c;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_unsigned(optarg, SIM_MAX_NODES, &v) || v < 3)
                goto bad;
            opt.nodes = (unsigned)v;
            break;
        case 's':
            if (!parse_unsigned(optarg, 100000, &v) || v < 1)
                goto bad;
            opt.seeds = (unsigned)v;
            break;
        case 'x':
            if (!parse_unsigned(optarg, UINT64_MAX / 2, &v))
                goto bad;
            opt.first_seed = v;
            break;
        case 'r':
            if (!parse_unsigned(optarg, 100000, &v) || v < 1)
                goto bad;
            opt.max_rounds = (unsigned)v;
            break;
        case 'q':
            if (!parse_unsigned(optarg, RING_MAX_PARTITIONS, &v) || v == 0 || (v & (v - 1)))
                goto bad;
            opt.ring_size = (uint32_t)v;
            break;
        case 'c':
            opt.change = -2;
            for (int i = 0; i < CHANGE_COUNT; i++)
                if (strcmp(optarg, change_names[i]) == 0)
                    opt.change = i;
            if (strcmp(optarg, "all") == 0)
                opt.change = -1;
            if (opt.change == -2)
                goto bad;
            break;
        case 'm':
            if (strcmp(optarg, "rounds") == 0)
                opt.model = MODEL_ROUNDS;
            else if (strcmp(optarg, "events") == 0)
                opt.model = MODEL_EVENTS;
            else
                goto bad;
            break;
        case 'l':
            if (sscanf(optarg, "%lf-%lf", &opt.latency_min_ms, &opt.latency_max_ms) != 2 ||
                opt.latency_min_ms < 0 || opt.latency_max_ms < opt.latency_min_ms ||
                opt.latency_max_ms > 60000)
                goto bad;
            break;
        case 'p':
            if (sscanf(optarg, "%lf", &opt.loss) != 1 || opt.loss < 0 || opt.loss >= 1)
                goto bad;
            break;
        case 'j':
            opt.json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (opt.ring_size == 0) {
        opt.ring_size = 64;
        while (opt.ring_size < opt.nodes)
            opt.ring_size *= 2;
    }
    if (opt.ring_size < opt.nodes) {
        fprintf(stderr, "gossip-sim: --ring-size %u is smaller than --nodes %u: every member "
                "needs a partition\n", opt.ring_size, opt.nodes);
        return 2;
    }

    if (opt.json)
        printf("[");
    else
        printf("gossip-sim: %u nodes, Q=%u, model %s, %u seed(s) from %" PRIu64
               ", fanout %u, interval %u ms, loss %g%s\n",
               opt.nodes, opt.ring_size, opt.model == MODEL_ROUNDS ? "rounds" : "events",
               opt.seeds, opt.first_seed, GOSSIP_FANOUT, GOSSIP_INTERVAL_MS, opt.loss,
               opt.model == MODEL_EVENTS ? "" : " (1 round = 1 interval)");
    bool ok = true, first = true;
    for (int ch = 0; ch < CHANGE_COUNT; ch++) {
        if (opt.change >= 0 && ch != opt.change)
            continue;
        ok &= run_change(&opt, (change_t)ch, first);
        first = false;
    }
    if (opt.json)
        printf("]\n");
    return ok ? 0 : 1;

bad:
    fprintf(stderr, "gossip-sim: bad arguments (see --help)\n");
    usage(stderr);
    return 2;
}
