/*
 * test_cstate.c — the cluster state (ring/cstate.h): a fresh state; join and its refusals;
 * plans for joins 1 -> 5 at Q=64 (balanced, transfers = the partitions that move); leave
 * through transfers and claimant ticks to leaving -> exiting -> removed; force-remove,
 * replace and force-replace; down/up and the claimant moving off a down claimant; the merge
 * (newer adopted, older kept, concurrent merged the same on both sides, other clusters and
 * removed senders ignored, a rejoin accepted); the encoding (round trip, every truncation
 * and flipped byte handled, garbage refused); the ring file (round trip, format 1).
 */
#include "proto/ring.pb-c.h"
#include "ring/cstate.h"

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define Q 64u
#define TARGET_N 4u

static char err[512];

/* "nodeK@h:1": sorted by K for K < 10. */
static const char *node(unsigned k)
{
    static char names[16][32];
    snprintf(names[k], sizeof names[k], "node%u@h:1", k);
    return names[k];
}

/* Replaces *s by next (freeing the old one); next must not be NULL. */
static void take(cstate_t **s, cstate_t *next)
{
    cr_assert_not_null(next);
    cstate_free(*s);
    *s = next;
}

static cstate_status_t status_of(const cstate_t *s, const char *name)
{
    uint32_t i = cstate_member_index(s, name);
    cr_assert_neq(i, CSTATE_NONE, "%s is a member", name);
    return cstate_member_status(s, i);
}

static uint32_t owned_by(const cstate_t *s, const char *name)
{
    return cstate_owned(s, cstate_member_index(s, name));
}

/* Marks every pending transfer done (as `self`) and lets the claimant tick once. */
static void finish_transfers(cstate_t **s, const char *self, const char *claimant)
{
    for (uint32_t p = 0; p < cstate_size(*s); p++) {
        if (cstate_next_owner(*s, p) == CSTATE_NONE || cstate_transfer_is_done(*s, p))
            continue;
        cstate_t *next = NULL;
        cr_assert_eq(cstate_transfer_done(*s, p, self, &next, err, sizeof err), 0, "%s", err);
        take(s, next);
    }
    cstate_t *next = NULL;
    cr_assert_eq(cstate_claimant_tick(*s, claimant, &next), 0);
    if (next)
        take(s, next);
    cr_assert_eq(cstate_pending_count(*s), 0);
}

/* Commits a plan of `changes` at node(1), the claimant; returns the plan's figures. */
static cstate_plan_t commit_plan(cstate_t **s, const cstate_change_t *changes, size_t n)
{
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(*s, changes, n, TARGET_N, node(1), &plan, err, sizeof err), 0, "%s",
                 err);
    cr_assert(!plan.nothing);
    cstate_t *result = plan.result;
    plan.result = NULL;
    take(s, result);
    return plan;
}

/* A cluster of n valid members node1..noden, balanced, nothing pending; claimant node1. */
static cstate_t *cluster_of(unsigned n)
{
    cstate_t *s = cstate_new(Q, node(1), NULL);
    cr_assert_not_null(s);
    for (unsigned k = 2; k <= n; k++) {
        cstate_t *next = NULL;
        cr_assert_eq(cstate_join(s, node(k), Q, &next, err, sizeof err), 0, "%s", err);
        take(&s, next);
    }
    if (n > 1) {
        commit_plan(&s, NULL, 0);
        finish_transfers(&s, node(1), node(1));
    }
    return s;
}

static cstate_change_t change(cstate_change_kind_t kind, const char *who, const char *with)
{
    cstate_change_t c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    snprintf(c.node, sizeof c.node, "%s", who);
    if (with)
        snprintf(c.new_node, sizeof c.new_node, "%s", with);
    return c;
}

/* ---------------------------------------------------------------- fresh state and join */

Test(cstate, fresh_state_is_one_valid_claimant_owning_everything)
{
    cstate_t *s = cstate_new(Q, "a@h:1", NULL);
    cr_assert_not_null(s);
    cr_assert_eq(cstate_size(s), Q);
    cr_assert_eq(cstate_member_count(s), 1);
    cr_assert_str_eq(cstate_member_name(s, 0), "a@h:1");
    cr_assert_null(cstate_member_name(s, 1));
    cr_assert_eq(cstate_member_status(s, 0), CSTATE_VALID);
    cr_assert_str_eq(cstate_cluster_name(s), "cairn");
    cr_assert_str_eq(cstate_founder(s), "a@h:1");
    cr_assert_str_eq(cstate_claimant(s), "a@h:1");
    cr_assert_str_eq(cstate_claimant_effective(s), "a@h:1");
    cr_assert_eq(cstate_owned(s, 0), Q);
    cr_assert_eq(cstate_owned_after(s, 0), Q);
    cr_assert_eq(cstate_pending_count(s), 0);
    cr_assert_eq(cstate_member_index(s, "b@h:1"), CSTATE_NONE);
    const ring_t *r = cstate_ring(s);
    cr_assert_eq(ring_size(r), Q);
    cr_assert_eq(ring_owner(r, 17), 0);
    char text[64];
    cr_assert_eq(cstate_vclock_text(s, text, sizeof text), strlen("a@h:1=1"));
    cr_assert_str_eq(text, "a@h:1=1");
    cr_assert_eq(cstate_vclock_text(s, text, 3), strlen("a@h:1=1"), "reports the length needed");
    cr_assert_str_eq(text, "a@");
    cstate_t *named = cstate_new(Q, "a@h:1", "prod");
    cr_assert_str_eq(cstate_cluster_name(named), "prod");
    cr_assert_neq(cstate_fingerprint(named), cstate_fingerprint(s));
    cstate_t *copy = cstate_dup(s);
    cr_assert_eq(cstate_fingerprint(copy), cstate_fingerprint(s));
    cr_assert_eq(cstate_compare(copy, s), CSTATE_ORDER_EQUAL);
    cstate_free(copy);
    cstate_free(named);
    cstate_free(s);
    cstate_free(NULL);
}

Test(cstate, bad_arguments_make_no_state)
{
    char longname[RING_NODE_NAME_MAX + 8];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    longname[1] = '@';
    const char *bad_names[] = {NULL, "", "nohost", "@h:1", "a@", "a b@h:1", "a@h:1\n",
                               longname};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        cr_assert_null(cstate_new(Q, bad_names[i], NULL), "name #%zu", i);
    cr_assert_null(cstate_new(0, "a@h:1", NULL));
    cr_assert_null(cstate_new(48, "a@h:1", NULL));
    cr_assert_null(cstate_new(2048, "a@h:1", NULL));
    cr_assert_null(cstate_new(Q, "a@h:1", "two words"));
    cr_assert_null(cstate_new(Q, "a@h:1", ""));
}

Test(cstate, join_adds_a_joining_member_and_refuses_bad_joins)
{
    cstate_t *s = cstate_new(Q, "b@h:1", NULL), *j = NULL;
    uint64_t before = cstate_fingerprint(s);
    cr_assert_eq(cstate_join(s, "a@h:1", Q, &j, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_fingerprint(s), before, "the input is left alone");
    cr_assert_eq(cstate_member_count(j), 2);
    cr_assert_str_eq(cstate_member_name(j, 0), "a@h:1", "members sorted by name");
    cr_assert_eq(status_of(j, "a@h:1"), CSTATE_JOINING);
    cr_assert_eq(status_of(j, "b@h:1"), CSTATE_VALID);
    cr_assert_eq(owned_by(j, "b@h:1"), Q, "a joiner owns nothing until a plan is committed");
    cr_assert_eq(ring_owner(cstate_ring(j), 0), 1, "owner indexes follow the sorted members");
    cr_assert_str_eq(cstate_founder(j), "b@h:1");
    cr_assert_eq(cstate_compare(j, s), CSTATE_ORDER_NEWER);
    char text[128];
    cstate_vclock_text(j, text, sizeof text);
    cr_assert_str_eq(text, "a@h:1=1,b@h:1=1");

    cstate_t *x = NULL;
    cr_assert_eq(cstate_join(j, "c@h:1", 128, &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "different_ring_sizes"), "%s", err);
    cr_assert_eq(cstate_join(j, "a@h:1", Q, &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "already_member"), "%s", err);
    cr_assert_eq(cstate_join(j, "b@h:1", Q, &x, err, sizeof err), CSTATE_EINVAL, "self-join");
    cr_assert_eq(cstate_join(j, "no host", Q, &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert_null(x);
    cstate_free(s);
    cstate_free(j);
}

/* ---------------------------------------------------------------- plans */

Test(cstate, joins_one_to_five_plan_balanced_transfers)
{
    cstate_t *s = cstate_new(Q, node(1), NULL);
    for (unsigned n = 2; n <= 5; n++) {
        cstate_t *next = NULL;
        cr_assert_eq(cstate_join(s, node(n), Q, &next, err, sizeof err), 0, "%s", err);
        take(&s, next);
        uint32_t before[8] = {0};
        for (unsigned k = 1; k <= n; k++)
            before[k] = owned_by(s, node(k));
        cstate_plan_t plan = commit_plan(&s, NULL, 0);
        cr_assert_eq(status_of(s, node(n)), CSTATE_VALID, "commit makes the joiner valid");
        cr_assert_eq(plan.moved_now, 0);
        cr_assert_eq(plan.transfers, cstate_pending_count(s));
        uint32_t gained = 0, lo = Q / n, hi = (Q + n - 1) / n;
        for (unsigned k = 1; k <= n; k++) {
            uint32_t i = cstate_member_index(s, node(k));
            cr_assert_eq(cstate_owned(s, i), before[k], "nothing moves before the transfers");
            uint32_t after = cstate_owned_after(s, i);
            cr_assert(after >= lo && after <= hi, "n=%u: %s will own %u", n, node(k), after);
            if (after > before[k])
                gained += after - before[k];
        }
        /* claim's moves (docs/ring.md); below 5 members spacing re-spreads, so more than the
         * newcomer's gain moves */
        static const uint32_t moved[6] = {0, 0, 32, 42, 46, 12};
        cr_assert_eq(plan.transfers, moved[n], "n=%u: %u transfers", n, plan.transfers);
        cr_assert_geq(plan.transfers, gained);
        if (n == 2 || n == 5)
            cr_assert_eq(plan.transfers, gained, "n=%u: only the newcomer's share moves", n);
        if (n >= 4)
            cr_assert_eq(plan.violations, 0, "n=%u: spacing holds", n);
        finish_transfers(&s, node(2), node(1));
        for (unsigned k = 1; k <= n; k++) {
            uint32_t owned = owned_by(s, node(k));
            cr_assert(owned >= lo && owned <= hi, "n=%u: %s owns %u", n, node(k), owned);
        }
    }
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(1), &plan, err, sizeof err), 0, "%s", err);
    cr_assert(plan.nothing, "no change and no joiner: nothing to plan");
    cr_assert_null(plan.result);
    cstate_free(s);
}

Test(cstate, plan_is_refused_off_the_claimant_and_while_transfers_are_pending)
{
    cstate_t *s = cluster_of(3), *next = NULL;
    cstate_plan_t plan;
    cr_assert_eq(cstate_join(s, node(4), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(2), &plan, err, sizeof err),
                 CSTATE_EINVAL);
    cr_assert(strstr(err, "not_claimant"), "%s", err);
    cr_assert_null(plan.result);
    commit_plan(&s, NULL, 0);
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(1), &plan, err, sizeof err),
                 CSTATE_EINVAL);
    cr_assert(strstr(err, "transfers pending"), "%s", err);
    /* the same plan twice gives the same state */
    finish_transfers(&s, node(1), node(1));
    cstate_plan_t a, b;
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(1), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(1), &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_fingerprint(a.result), cstate_fingerprint(b.result));
    cstate_plan_free(&a);
    cstate_plan_free(&b);
    cstate_free(s);
}

Test(cstate, leave_transfers_then_exiting_then_removed)
{
    cstate_t *s = cluster_of(4), *next = NULL;
    cstate_change_t leave = change(CSTATE_CHANGE_LEAVE, node(4), NULL);
    uint32_t had = owned_by(s, node(4));
    cstate_plan_t plan = commit_plan(&s, &leave, 1);
    cr_assert_eq(status_of(s, node(4)), CSTATE_LEAVING);
    cr_assert_eq(plan.moved_now, 0, "a leave moves nothing at once");
    cr_assert_geq(plan.transfers, had, "at least the leaver's partitions move");
    cr_assert_eq(cstate_owned_after(s, cstate_member_index(s, node(4))), 0);
    cr_assert_eq(owned_by(s, node(4)), had, "it serves them until the transfers are done");

    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    cr_assert_null(next, "nothing to do while every transfer is awaiting");
    cr_assert_eq(cstate_claimant_tick(s, node(2), &next), 0);
    cr_assert_null(next, "only the claimant ticks");

    for (uint32_t p = 0; p < Q; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE) {
            cr_assert_eq(cstate_transfer_done(s, p, node(4), &next, err, sizeof err), 0, "%s",
                         err);
            take(&s, next);
            cr_assert(cstate_transfer_is_done(s, p));
            cr_assert_eq(cstate_transfer_done(s, p, node(4), &next, err, sizeof err),
                         CSTATE_EINVAL, "already done");
        }
    cr_assert_eq(cstate_transfer_done(s, 0, "x@h:1", &next, err, sizeof err), CSTATE_EINVAL);
    cr_assert_eq(cstate_transfer_done(s, Q, node(1), &next, err, sizeof err), CSTATE_EINVAL);

    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    take(&s, next);
    cr_assert_eq(cstate_pending_count(s), 0);
    cr_assert_eq(owned_by(s, node(4)), 0);
    cr_assert_eq(status_of(s, node(4)), CSTATE_EXITING);
    for (unsigned k = 1; k <= 3; k++)
        cr_assert(owned_by(s, node(k)) == 21 || owned_by(s, node(k)) == 22);
    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    take(&s, next);
    cr_assert_eq(status_of(s, node(4)), CSTATE_REMOVED, "the tick after exiting removes it");
    cr_assert_eq(cstate_member_count(s), 4, "a removed member stays as a tombstone");
    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    cr_assert_null(next, "then nothing is left to do");
    cr_assert_eq(cstate_change_check(s, NULL, 0, &leave, err, sizeof err), CSTATE_EINVAL);
    cstate_free(s);
}

Test(cstate, force_remove_reassigns_at_once)
{
    cstate_t *s = cluster_of(4);
    cstate_change_t rm = change(CSTATE_CHANGE_FORCE_REMOVE, node(3), NULL);
    uint32_t had = owned_by(s, node(3));
    cstate_plan_t plan = commit_plan(&s, &rm, 1);
    cr_assert_eq(status_of(s, node(3)), CSTATE_REMOVED);
    cr_assert_eq(owned_by(s, node(3)), 0, "no handoff: its partitions changed owner now");
    cr_assert_eq(plan.moved_now, had);
    cr_assert_eq(cstate_owned_after(s, cstate_member_index(s, node(3))), 0);
    for (uint32_t p = 0; p < Q; p++)
        cr_assert_neq(cstate_next_owner(s, p), cstate_member_index(s, node(3)));
    /* the claimant cannot be force-removed: mark it down first */
    cstate_change_t rm1 = change(CSTATE_CHANGE_FORCE_REMOVE, node(1), NULL);
    cr_assert_eq(cstate_change_check(s, NULL, 0, &rm1, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "is_claimant"), "%s", err);
    cstate_free(s);
}

Test(cstate, replace_hands_partitions_to_the_replacement)
{
    cstate_t *s = cluster_of(4), *next = NULL;
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    uint32_t had = owned_by(s, node(2));
    uint32_t old = cstate_member_index(s, node(2)), repl = cstate_member_index(s, node(5));
    cstate_change_t c = change(CSTATE_CHANGE_REPLACE, node(2), node(5));
    cstate_plan_t plan = commit_plan(&s, &c, 1);
    cr_assert_eq(status_of(s, node(2)), CSTATE_LEAVING);
    cr_assert_eq(status_of(s, node(5)), CSTATE_VALID);
    cr_assert_eq(plan.transfers, had, "exactly the replaced member's partitions move");
    for (uint32_t p = 0; p < Q; p++)
        if (ring_owner(cstate_ring(s), p) == old)
            cr_assert_eq(cstate_next_owner(s, p), repl, "partition %u goes to the replacement", p);
    cr_assert_eq(cstate_owned_after(s, repl), had);
    finish_transfers(&s, node(5), node(1));
    cr_assert_eq(status_of(s, node(2)), CSTATE_EXITING);
    cstate_free(s);
}

Test(cstate, force_replace_gives_the_partitions_at_once)
{
    cstate_t *s = cluster_of(4), *next = NULL;
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    uint32_t had = owned_by(s, node(3));
    cstate_change_t c = change(CSTATE_CHANGE_FORCE_REPLACE, node(3), node(5));
    cstate_plan_t plan = commit_plan(&s, &c, 1);
    cr_assert_eq(status_of(s, node(3)), CSTATE_REMOVED);
    cr_assert_eq(status_of(s, node(5)), CSTATE_VALID);
    cr_assert_eq(plan.moved_now, had);
    cr_assert_eq(plan.transfers, 0);
    cr_assert_eq(owned_by(s, node(5)), had);
    cstate_free(s);
}

Test(cstate, staged_changes_are_checked)
{
    cstate_t *s = cluster_of(3), *next = NULL;
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cstate_change_t staged[2] = {change(CSTATE_CHANGE_LEAVE, node(2), NULL),
                                 change(CSTATE_CHANGE_REPLACE, node(3), node(5))};
    cr_assert_eq(cstate_change_check(s, NULL, 0, &staged[0], err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_change_check(s, staged, 1, &staged[1], err, sizeof err), 0, "%s", err);
    struct {
        cstate_change_t c;
        const char *why;
    } bad[] = {
        {change(CSTATE_CHANGE_LEAVE, "x@h:1", NULL), "not_member"},
        {change(CSTATE_CHANGE_LEAVE, node(2), NULL), "already has a staged change"},
        {change(CSTATE_CHANGE_FORCE_REMOVE, node(5), NULL), "joining"},
        {change(CSTATE_CHANGE_REPLACE, node(1), node(5)), "already_replacement"},
        {change(CSTATE_CHANGE_REPLACE, node(1), node(1)), "cannot replace itself"},
        {change(CSTATE_CHANGE_REPLACE, node(1), node(2)), "invalid_replacement"},
        {change(CSTATE_CHANGE_REPLACE, node(1), "x@h:1"), "not_member"},
        {change((cstate_change_kind_t)9, node(1), NULL), "unknown change"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        cr_assert_eq(cstate_change_check(s, staged, 2, &bad[i].c, err, sizeof err),
                     CSTATE_EINVAL, "case %zu", i);
        cr_assert(strstr(err, bad[i].why), "case %zu: %s", i, err);
    }
    cstate_change_t unterminated = change(CSTATE_CHANGE_LEAVE, node(1), NULL);
    memset(unterminated.node, 'a', sizeof unterminated.node);
    cr_assert_eq(cstate_change_check(s, NULL, 0, &unterminated, err, sizeof err), CSTATE_EINVAL);

    /* the last valid member cannot go */
    cstate_t *two = cluster_of(2);
    cstate_change_t l2 = change(CSTATE_CHANGE_LEAVE, node(2), NULL);
    cstate_change_t l1 = change(CSTATE_CHANGE_LEAVE, node(1), NULL);
    cr_assert_eq(cstate_change_check(two, &l2, 1, &l1, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "only_member"), "%s", err);
    cr_assert_eq(cstate_change_check(two, NULL, 0, &l1, err, sizeof err), 0, "%s", err);
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(two, staged, 1, TARGET_N, node(1), &plan, err, sizeof err), 0,
                 "%s", err);
    cstate_plan_free(&plan);
    cstate_t *one = cstate_new(Q, node(1), NULL);
    cr_assert_eq(cstate_change_check(one, NULL, 0, &l1, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "only_member"), "%s", err);
    cstate_free(one);
    cstate_free(two);
    cstate_free(s);
}

/* ---------------------------------------------------------------- down, up, claimant */

Test(cstate, down_and_up)
{
    cstate_t *s = cluster_of(3), *d = NULL, *u = NULL, *x = NULL;
    cr_assert_eq(cstate_mark_down(s, node(3), node(1), &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(status_of(d, node(3)), CSTATE_DOWN);
    cr_assert_eq(owned_by(d, node(3)), owned_by(s, node(3)), "down keeps its partitions");
    cr_assert_eq(cstate_mark_down(d, node(3), node(1), &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert_eq(cstate_mark_down(s, node(1), node(1), &x, err, sizeof err), CSTATE_EINVAL,
                 "not self");
    cr_assert_eq(cstate_mark_down(s, "x@h:1", node(1), &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "not_member"), "%s", err);
    cr_assert_eq(cstate_mark_down(s, node(2), "x@h:1", &x, err, sizeof err), CSTATE_EINVAL,
                 "self must be a member");
    cr_assert_eq(cstate_mark_up(s, node(2), node(1), &x, err, sizeof err), CSTATE_EINVAL,
                 "a valid member is not down");
    cr_assert_null(x);
    cr_assert_eq(cstate_mark_up(d, node(3), node(3), &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(status_of(u, node(3)), CSTATE_VALID);
    cr_assert_gt(cstate_member_version(u, 2), cstate_member_version(d, 2));

    /* two members: the other one cannot be marked down when it is the only valid one */
    cstate_t *two = cluster_of(2), *t = NULL;
    cr_assert_eq(cstate_mark_down(two, node(2), node(1), &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_mark_down(t, node(1), node(2), &x, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "only_member"), "%s", err);
    cstate_free(t);
    cstate_free(two);
    cstate_free(s);
    cstate_free(d);
    cstate_free(u);
}

Test(cstate, claimant_moves_off_a_down_claimant)
{
    cstate_t *s = cluster_of(3), *next = NULL;
    cr_assert_eq(cstate_mark_down(s, node(1), node(3), &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cr_assert_str_eq(cstate_claimant(s), node(1), "the record stays until a tick");
    cr_assert_str_eq(cstate_claimant_effective(s), node(2), "first valid member by name");
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(s, NULL, 0, TARGET_N, node(1), &plan, err, sizeof err),
                 CSTATE_EINVAL);
    cr_assert_eq(cstate_claimant_tick(s, node(3), &next), 0);
    cr_assert_null(next);
    cr_assert_eq(cstate_claimant_tick(s, node(2), &next), 0);
    take(&s, next);
    cr_assert_str_eq(cstate_claimant(s), node(2));
    /* the down claimant can now be force-removed; its partitions go at once */
    cstate_change_t rm = change(CSTATE_CHANGE_FORCE_REMOVE, node(1), NULL);
    cr_assert_eq(cstate_plan(s, &rm, 1, TARGET_N, node(2), &plan, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(owned_by(plan.result, node(1)), 0);
    cstate_plan_free(&plan);
    cstate_free(s);
}

Test(cstate, transfers_to_a_down_member_are_dropped)
{
    cstate_t *s = cluster_of(4), *next = NULL;
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    commit_plan(&s, NULL, 0);
    cr_assert_eq(cstate_pending_count(s), 12, "4 -> 5: the newcomer's share, all to node5");
    cr_assert_eq(cstate_mark_down(s, node(5), node(2), &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    take(&s, next);
    cr_assert_eq(cstate_pending_count(s), 0, "every transfer went to the down member");
    cr_assert_eq(owned_by(s, node(5)), 0);
    cstate_free(s);
}

Test(cstate, a_leavers_dropped_transfers_are_planned_again)
{
    cstate_t *s = cluster_of(5), *next = NULL;
    cstate_change_t leave = change(CSTATE_CHANGE_LEAVE, node(5), NULL);
    commit_plan(&s, &leave, 1);
    uint32_t to4 = 0, n4 = cstate_member_index(s, node(4)), n5 = cstate_member_index(s, node(5));
    for (uint32_t p = 0; p < Q; p++)
        to4 += cstate_next_owner(s, p) == n4 && ring_owner(cstate_ring(s), p) == n5;
    cr_assert_gt(to4, 0, "some of node5's partitions go to node4");
    cr_assert_eq(cstate_mark_down(s, node(4), node(2), &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    /* the others finish; the tick drops those to node4, moves the finished ones, and with
     * nothing pending and a leaver that still owns partitions, plans them again */
    for (uint32_t p = 0; p < Q; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE && cstate_next_owner(s, p) != n4) {
            cr_assert_eq(cstate_transfer_done(s, p, node(5), &next, err, sizeof err), 0, "%s",
                         err);
            take(&s, next);
        }
    cr_assert_eq(cstate_claimant_tick(s, node(1), &next), 0);
    take(&s, next);
    cr_assert_eq(status_of(s, node(5)), CSTATE_LEAVING);
    cr_assert_eq(owned_by(s, node(5)), to4, "it still owns what node4 was to take");
    cr_assert_eq(cstate_pending_count(s), to4);
    for (uint32_t p = 0; p < Q; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE) {
            cr_assert_eq(ring_owner(cstate_ring(s), p), n5);
            cr_assert_eq(cstate_member_status(s, cstate_next_owner(s, p)), CSTATE_VALID);
        }
    finish_transfers(&s, node(5), node(1));
    cr_assert_eq(status_of(s, node(5)), CSTATE_EXITING);
    cstate_free(s);
}

/* ---------------------------------------------------------------- merge */

Test(cstate_merge, newer_adopted_older_kept_equal_kept)
{
    cstate_t *s = cluster_of(3), *d = NULL, *out = NULL;
    cr_assert_eq(cstate_mark_down(s, node(3), node(2), &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_compare(d, s), CSTATE_ORDER_NEWER);
    cr_assert_eq(cstate_compare(s, d), CSTATE_ORDER_OLDER);
    cr_assert_eq(cstate_merge(s, d, node(1), node(2), &out), CSTATE_MERGE_ADOPTED);
    cr_assert_eq(cstate_fingerprint(out), cstate_fingerprint(d));
    cstate_free(out);
    cr_assert_eq(cstate_merge(d, s, node(2), node(1), &out), CSTATE_MERGE_KEPT);
    cr_assert_null(out);
    cr_assert_eq(cstate_merge(d, d, node(2), node(1), &out), CSTATE_MERGE_KEPT);
    cr_assert_null(out);
    cstate_free(s);
    cstate_free(d);
}

/* Merges at both ends of an exchange and checks both get the same state. */
static cstate_t *merge_both_ways(const cstate_t *a, const char *at_a, const cstate_t *b,
                                 const char *at_b)
{
    cstate_t *ab = NULL, *ba = NULL, *again = NULL;
    cr_assert_eq(cstate_compare(a, b), CSTATE_ORDER_CONCURRENT);
    cr_assert_eq(cstate_merge(a, b, at_a, at_b, &ab), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_merge(b, a, at_b, at_a, &ba), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_fingerprint(ab), cstate_fingerprint(ba), "merge(a,b) == merge(b,a)");
    cr_assert_eq(cstate_compare(ab, a), CSTATE_ORDER_NEWER);
    cr_assert_eq(cstate_compare(ab, b), CSTATE_ORDER_NEWER);
    /* merging again changes nothing: both sides already hold the same state */
    cr_assert_eq(cstate_merge(ab, ba, at_a, at_b, &again), CSTATE_MERGE_KEPT);
    cr_assert_eq(cstate_merge(a, ab, at_a, at_b, &again), CSTATE_MERGE_ADOPTED);
    cr_assert_eq(cstate_fingerprint(again), cstate_fingerprint(ab));
    cstate_free(again);
    cstate_free(ba);
    return ab;
}

Test(cstate_merge, concurrent_changes_merge_the_same_on_both_sides)
{
    cstate_t *base = cluster_of(5), *a = NULL, *b = NULL;
    cr_assert_eq(cstate_mark_down(base, node(4), node(2), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_mark_down(base, node(5), node(3), &b, err, sizeof err), 0, "%s", err);
    cstate_t *m = merge_both_ways(a, node(2), b, node(3));
    cr_assert_eq(status_of(m, node(4)), CSTATE_DOWN);
    cr_assert_eq(status_of(m, node(5)), CSTATE_DOWN);
    char text[256];
    cstate_vclock_text(m, text, sizeof text);
    cr_assert(strstr(text, "node2@h:1=2") && strstr(text, "node3@h:1=2"), "%s", text);
    cstate_free(m);

    /* an ownership change at the claimant meets a member change elsewhere */
    cstate_t *plan_side = cstate_dup(base), *other = NULL;
    cstate_change_t leave = change(CSTATE_CHANGE_LEAVE, node(5), NULL);
    commit_plan(&plan_side, &leave, 1);
    cr_assert_eq(cstate_mark_down(base, node(4), node(3), &other, err, sizeof err), 0, "%s",
                 err);
    m = merge_both_ways(plan_side, node(1), other, node(3));
    cr_assert_eq(status_of(m, node(5)), CSTATE_LEAVING);
    cr_assert_eq(status_of(m, node(4)), CSTATE_DOWN);
    cr_assert_eq(cstate_pending_count(m), cstate_pending_count(plan_side), "the plan's transfers");

    /* three-way: the order of merging does not matter */
    cstate_t *ab = NULL, *abc = NULL, *bc = NULL, *abc2 = NULL;
    cr_assert_eq(cstate_merge(a, plan_side, node(2), node(1), &ab), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_merge(ab, b, node(2), node(3), &abc), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_merge(plan_side, b, node(1), node(3), &bc), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_merge(bc, a, node(1), node(2), &abc2), CSTATE_MERGE_MERGED);
    cr_assert_eq(cstate_fingerprint(abc), cstate_fingerprint(abc2), "associative");
    cstate_free(ab);
    cstate_free(abc);
    cstate_free(bc);
    cstate_free(abc2);
    cstate_free(m);
    cstate_free(other);
    cstate_free(plan_side);
    cstate_free(a);
    cstate_free(b);
    cstate_free(base);
}

Test(cstate_merge, equal_member_versions_follow_riak_precedence)
{
    cstate_t *base = cluster_of(4), *down = NULL;
    /* the same member changed from the same version on two sides: down beats leaving */
    cr_assert_eq(cstate_mark_down(base, node(4), node(2), &down, err, sizeof err), 0, "%s", err);
    cstate_t *leave_side = cstate_dup(base);
    cstate_change_t leave = change(CSTATE_CHANGE_LEAVE, node(4), NULL);
    commit_plan(&leave_side, &leave, 1);
    uint32_t i = cstate_member_index(base, node(4));
    cr_assert_eq(cstate_member_version(down, i), cstate_member_version(leave_side, i));
    cstate_t *m = merge_both_ways(down, node(2), leave_side, node(1));
    cr_assert_eq(status_of(m, node(4)), CSTATE_DOWN);
    cstate_free(m);
    cstate_free(down);
    cstate_free(leave_side);
    cstate_free(base);
}

Test(cstate_merge, done_marks_meet_in_a_merge)
{
    cstate_t *s = cluster_of(4), *next = NULL, *a = NULL, *b = NULL, *m = NULL;
    cr_assert_eq(cstate_join(s, node(5), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    commit_plan(&s, NULL, 0);
    uint32_t first = CSTATE_NONE, second = CSTATE_NONE;
    for (uint32_t p = 0; p < Q; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE) {
            if (first == CSTATE_NONE)
                first = p;
            else if (second == CSTATE_NONE)
                second = p;
        }
    cr_assert_neq(second, CSTATE_NONE);
    cr_assert_eq(cstate_transfer_done(s, first, node(2), &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_transfer_done(s, second, node(3), &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_merge(a, b, node(2), node(3), &m), CSTATE_MERGE_MERGED);
    cr_assert(cstate_transfer_is_done(m, first) && cstate_transfer_is_done(m, second));
    cstate_free(m);
    cstate_free(a);
    cstate_free(b);
    cstate_free(s);
}

Test(cstate_merge, other_clusters_are_ignored)
{
    cstate_t *s = cluster_of(2), *out = NULL;
    cstate_t *other_name = cstate_new(Q, node(3), "other");
    cstate_t *other_founder = cstate_new(Q, node(3), NULL); /* also "cairn", founded apart */
    cstate_t *other_size = cstate_new(2 * Q, node(1), NULL);
    cr_assert_eq(cstate_merge(s, other_name, node(1), node(3), &out), CSTATE_MERGE_IGNORED);
    cr_assert_eq(cstate_merge(s, other_founder, node(1), node(3), &out), CSTATE_MERGE_IGNORED);
    cr_assert_eq(cstate_merge(s, other_size, node(1), node(1), &out), CSTATE_MERGE_IGNORED);
    cr_assert_null(out);
    cstate_free(other_name);
    cstate_free(other_founder);
    cstate_free(other_size);
    cstate_free(s);
}

Test(cstate_merge, removed_senders_are_ignored_until_they_rejoin)
{
    cstate_t *base = cluster_of(4), *removed = NULL, *stale = NULL, *out = NULL, *rejoin = NULL;
    cstate_change_t rm = change(CSTATE_CHANGE_FORCE_REMOVE, node(3), NULL);
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(base, &rm, 1, TARGET_N, node(1), &plan, err, sizeof err), 0, "%s",
                 err);
    removed = plan.result;
    /* node3 did not hear of it and made a change of its own */
    cr_assert_eq(cstate_mark_down(base, node(4), node(3), &stale, err, sizeof err), 0, "%s", err);
    cr_assert(cstate_sender_is_removed(removed, stale, node(3)));
    cr_assert_eq(cstate_merge(removed, stale, node(1), node(3), &out), CSTATE_MERGE_IGNORED);
    cr_assert_null(out);
    cr_assert(!cstate_sender_is_removed(removed, stale, node(2)));
    cr_assert_eq(cstate_merge(removed, stale, node(1), NULL, &out), CSTATE_MERGE_MERGED,
                 "not checked without a sender");
    cstate_free(out);
    /* it joins again as a fresh member: its gossip counts again */
    cr_assert_eq(cstate_join(removed, node(3), Q, &rejoin, err, sizeof err), 0, "%s", err);
    cr_assert_eq(status_of(rejoin, node(3)), CSTATE_JOINING);
    cr_assert(!cstate_sender_is_removed(removed, rejoin, node(3)));
    cr_assert_eq(cstate_merge(removed, rejoin, node(1), node(3), &out), CSTATE_MERGE_ADOPTED);
    cstate_free(out);
    cstate_free(rejoin);
    cstate_free(stale);
    cstate_free(removed);
    cstate_free(base);
}

Test(cstate_merge, a_concurrent_removal_and_ownership_are_repaired_by_the_claimant)
{
    /* the claimant force-removes node4 while node2, claimant-to-be, re-records itself:
     * whichever ownership wins, no partition may stay with a removed member after a tick */
    cstate_t *base = cluster_of(5), *a = NULL, *b = NULL, *m = NULL, *next = NULL;
    cstate_change_t rm = change(CSTATE_CHANGE_FORCE_REMOVE, node(4), NULL);
    cstate_plan_t plan;
    cr_assert_eq(cstate_plan(base, &rm, 1, TARGET_N, node(1), &plan, err, sizeof err), 0, "%s",
                 err);
    a = plan.result;
    cr_assert_eq(cstate_mark_down(base, node(1), node(2), &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_claimant_tick(b, node(2), &next), 0);
    take(&b, next);
    cr_assert_eq(cstate_merge(a, b, node(3), node(2), &m), CSTATE_MERGE_MERGED);
    cr_assert_eq(status_of(m, node(4)), CSTATE_REMOVED);
    cr_assert_eq(status_of(m, node(1)), CSTATE_DOWN);
    const char *claimant = cstate_claimant_effective(m);
    cr_assert_str_eq(claimant, node(2));
    cr_assert_eq(cstate_claimant_tick(m, claimant, &next), 0);
    if (next)
        take(&m, next);
    cr_assert_eq(owned_by(m, node(4)), 0, "the tick gave the removed member's partitions away");
    cstate_free(m);
    cstate_free(a);
    cstate_free(b);
    cstate_free(base);
}

/* ---------------------------------------------------------------- encoding */

/* A state with a bit of everything: joining, down, leaving, removed members, transfers some
 * of which are done. */
static cstate_t *busy_state(void)
{
    cstate_t *s = cluster_of(5), *next = NULL;
    cr_assert_eq(cstate_join(s, node(6), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cstate_change_t changes[2] = {change(CSTATE_CHANGE_LEAVE, node(5), NULL),
                                  change(CSTATE_CHANGE_FORCE_REMOVE, node(4), NULL)};
    commit_plan(&s, changes, 2);
    for (uint32_t p = 0, marked = 0; p < Q && marked < 3; p++)
        if (cstate_next_owner(s, p) != CSTATE_NONE) {
            cr_assert_eq(cstate_transfer_done(s, p, node(2), &next, err, sizeof err), 0, "%s",
                         err);
            take(&s, next);
            marked++;
        }
    cr_assert_eq(cstate_join(s, node(7), Q, &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    cr_assert_eq(cstate_mark_down(s, node(3), node(2), &next, err, sizeof err), 0, "%s", err);
    take(&s, next);
    return s;
}

Test(cstate_codec, round_trip_keeps_the_fingerprint)
{
    cstate_t *s = busy_state(), *back = NULL;
    size_t len = 0, len2 = 0;
    uint8_t *bytes = cstate_encode(s, &len);
    cr_assert_not_null(bytes);
    cr_assert_eq(cstate_decode(bytes, len, &back, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_fingerprint(back), cstate_fingerprint(s));
    cr_assert_eq(cstate_compare(back, s), CSTATE_ORDER_EQUAL);
    uint8_t *again = cstate_encode(back, &len2);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(bytes, again, len), 0, "the encoding is canonical");
    cr_assert_gt(cstate_pending_count(back), 0);
    uint32_t done = 0;
    for (uint32_t p = 0; p < Q; p++)
        done += cstate_transfer_is_done(back, p);
    cr_assert_eq(done, 3);
    free(again);
    free(bytes);
    cstate_free(back);
    cstate_free(s);
}

Test(cstate_codec, truncations_flips_and_garbage_never_crash)
{
    cstate_t *s = busy_state(), *got = NULL;
    size_t len = 0;
    uint8_t *good = cstate_encode(s, &len);
    uint8_t *buf = malloc(len);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, good, cut);
        got = NULL;
        cr_assert_eq(cstate_decode(buf, cut, &got, err, sizeof err), CSTATE_EINVAL,
                     "truncated to %zu of %zu bytes", cut, len);
        cr_assert_null(got);
    }
    /* a flipped byte is refused, or (in a counter or a status) decodes to another valid
     * state, which then round-trips like any other */
    uint64_t rng = 12345;
    for (size_t i = 0; i < len; i++) {
        for (int t = 0; t < 4; t++) {
            memcpy(buf, good, len);
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] ^= (uint8_t)(1u + (rng >> 33) % 255u);
            got = NULL;
            int rc = cstate_decode(buf, len, &got, err, sizeof err);
            if (rc != 0) {
                cr_assert_eq(rc, CSTATE_EINVAL);
                cr_assert_null(got);
                continue;
            }
            size_t l2 = 0;
            uint8_t *re = cstate_encode(got, &l2);
            cstate_t *again = NULL;
            cr_assert_eq(cstate_decode(re, l2, &again, err, sizeof err), 0, "%s", err);
            cr_assert_eq(cstate_fingerprint(again), cstate_fingerprint(got));
            cstate_free(again);
            free(re);
            cstate_free(got);
        }
    }
    /* random garbage */
    uint8_t junk[512];
    for (int t = 0; t < 2000; t++) {
        size_t n = 1 + (size_t)(rng >> 40) % sizeof junk;
        for (size_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            junk[i] = (uint8_t)(rng >> 56);
        }
        got = NULL;
        cr_assert_eq(cstate_decode(junk, n, &got, err, sizeof err), CSTATE_EINVAL);
    }
    cr_assert_eq(cstate_decode(NULL, 0, &got, err, sizeof err), CSTATE_EINVAL);
    cr_assert_eq(cstate_decode(good, CSTATE_ENCODED_MAX + 1, &got, err, sizeof err),
                 CSTATE_EINVAL, "too long (not read)");
    free(buf);
    free(good);
    cstate_free(s);
}

/* Packs m and decodes it, expecting a refusal mentioning `why`. */
static void expect_decode_refused(const Cairn__Ring__RingState *m, const char *why)
{
    size_t len = cairn__ring__ring_state__get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    cairn__ring__ring_state__pack(m, buf);
    cstate_t *got = NULL;
    err[0] = 0;
    cr_assert_eq(cstate_decode(buf, len, &got, err, sizeof err), CSTATE_EINVAL, "%s", why);
    cr_assert(strstr(err, why), "want '%s' in: %s", why, err);
    free(buf);
}

Test(cstate_codec, inconsistent_states_are_refused)
{
    char *members[3] = {"a@h:1", "b@h:1", "c@h:1"};
    uint32_t owners[4] = {0, 1, 2, 0}, status[3] = {1, 1, 1};
    uint64_t mver[3] = {1, 1, 1}, vclock[3] = {1, 0, 0};
    Cairn__Ring__PendingTransfer t = CAIRN__RING__PENDING_TRANSFER__INIT, *tp = &t;
    Cairn__Ring__RingState m = CAIRN__RING__RING_STATE__INIT;
    m.has_ring_size = 1;
    m.ring_size = 4;
    m.n_members = 3;
    m.members = members;
    m.n_owners = 4;
    m.owners = owners;
    m.cluster_name = "cairn";
    m.founder = "a@h:1";
    m.n_member_status = m.n_member_version = m.n_vclock = 3;
    m.member_status = status;
    m.member_version = mver;
    m.vclock = vclock;
    m.has_claimant = 1;
    m.has_ring_version = 1;
    m.ring_version = 1;
    m.has_pending_count = 1;
    t.has_partition = t.has_next_owner = 1;
    t.partition = 1;
    t.next_owner = 2;
    m.n_pending = 1;
    m.pending = &tp;
    m.pending_count = 1;
    {   /* the valid one first */
        size_t len = cairn__ring__ring_state__get_packed_size(&m);
        uint8_t buf[512];
        cairn__ring__ring_state__pack(&m, buf);
        cstate_t *got = NULL;
        cr_assert_eq(cstate_decode(buf, len, &got, err, sizeof err), 0, "%s", err);
        cr_assert_eq(cstate_next_owner(got, 1), 2);
        cstate_free(got);
    }
    m.ring_size = 3;
    expect_decode_refused(&m, "power of two");
    m.ring_size = 4;
    members[1] = "a@h:1";
    expect_decode_refused(&m, "sorted and distinct");
    members[1] = "b h";
    expect_decode_refused(&m, "node name");
    members[1] = "b@h:1";
    owners[3] = 3;
    expect_decode_refused(&m, "owned by member 3");
    owners[3] = 0;
    status[2] = 6;
    expect_decode_refused(&m, "unknown status");
    status[2] = 1;
    m.n_vclock = 2;
    expect_decode_refused(&m, "clock entries");
    m.n_vclock = 3;
    m.claimant = 3;
    expect_decode_refused(&m, "claimant");
    m.claimant = 0;
    m.founder = "z@h:1";
    expect_decode_refused(&m, "founder");
    m.founder = "a@h:1";
    m.cluster_name = NULL;
    expect_decode_refused(&m, "cluster name");
    m.cluster_name = "cairn";
    t.next_owner = 1; /* partition 1 is already member 1's */
    expect_decode_refused(&m, "bad next owner");
    t.next_owner = 2;
    t.partition = 4;
    expect_decode_refused(&m, "out of range");
    t.partition = 1;
    m.pending_count = 2;
    expect_decode_refused(&m, "truncated");
}

/* ---------------------------------------------------------------- the file */

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/cairn-test-cstate-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(cstate_file, save_load_round_trip, .init = make_dir, .fini = remove_dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ring", dir);
    cstate_t *s = busy_state(), *back = NULL;
    cr_assert_eq(cstate_load(path, &back, err, sizeof err), CSTATE_ENOENT);
    cr_assert_eq(cstate_save(s, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_load(path, &back, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_fingerprint(back), cstate_fingerprint(s));
    /* ring_load (node.c today) reads the members and owners of the same file */
    ring_t *r = NULL;
    cr_assert_eq(ring_load(path, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ring_member_count(r), cstate_member_count(s));
    for (uint32_t p = 0; p < Q; p++)
        cr_assert_eq(ring_owner(r, p), ring_owner(cstate_ring(s), p));
    ring_free(r);
    /* a flipped byte in the file is refused by the checksum */
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
    cstate_t *bad = NULL;
    cr_assert_eq(cstate_load(path, &bad, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, path), "the message names the file: %s", err);
    snprintf(path, sizeof path, "%s/nope/ring", dir);
    cr_assert_eq(cstate_save(s, path, err, sizeof err), CSTATE_EIO);
    cstate_free(back);
    cstate_free(s);
}

Test(cstate_file, format_1_files_load, .init = make_dir, .fini = remove_dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ring", dir);
    const char *members[3] = {"c@h:1", "a@h:1", "b@h:1"}; /* ring_save's order, unsorted */
    uint32_t owners[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    ring_t *r = ring_new(8, members, 3, owners);
    cr_assert_not_null(r);
    cr_assert_eq(ring_save(r, path, err, sizeof err), 0, "%s", err);
    cstate_t *s = NULL;
    cr_assert_eq(cstate_load(path, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_size(s), 8);
    cr_assert_eq(cstate_member_count(s), 3);
    cr_assert_str_eq(cstate_member_name(s, 0), "a@h:1");
    cr_assert_str_eq(cstate_member_name(s, 2), "c@h:1");
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(cstate_member_status(s, i), CSTATE_VALID);
    for (uint32_t p = 0; p < 8; p++)
        cr_assert_str_eq(cstate_member_name(s, ring_owner(cstate_ring(s), p)), members[owners[p]]);
    cr_assert_str_eq(cstate_claimant(s), "c@h:1", "the first member of the file");
    cr_assert_str_eq(cstate_founder(s), "c@h:1");
    cr_assert_str_eq(cstate_cluster_name(s), "cairn");
    char text[64];
    cstate_vclock_text(s, text, sizeof text);
    cr_assert_str_eq(text, "c@h:1=1");
    cr_assert_eq(cstate_pending_count(s), 0);
    cstate_free(s);
    ring_free(r);

    /* a single-node ring written by node.c today */
    r = ring_new_single(64, "cairn@127.0.0.1:8086");
    cr_assert_eq(ring_save(r, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_load(path, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_owned(s, 0), 64);
    cstate_free(s);
    ring_free(r);

    /* a format-1 file whose names cstate cannot take is refused with the reason */
    const char *dup[2] = {"a@h:1", "a@h:1"};
    r = ring_new(8, dup, 2, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(ring_save(r, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cstate_load(path, &s, err, sizeof err), CSTATE_EINVAL);
    cr_assert(strstr(err, "twice"), "%s", err);
    ring_free(r);
}

Test(ring_new, copies_and_checks_its_input)
{
    const char *members[2] = {"a@h:1", "b@h:1"};
    uint32_t owners[4] = {1, 0, 1, 0};
    char name[16];
    snprintf(name, sizeof name, "a@h:1");
    const char *mutable_members[2] = {name, "b@h:1"};
    ring_t *r = ring_new(4, mutable_members, 2, owners);
    cr_assert_not_null(r);
    name[0] = 'z';
    owners[0] = 0;
    cr_assert_str_eq(ring_member_name(r, 0), "a@h:1", "names are copied");
    cr_assert_eq(ring_owner(r, 0), 1, "owners are copied");
    ring_free(r);
    owners[0] = 2;
    cr_assert_null(ring_new(4, members, 2, owners), "owner out of range");
    owners[0] = 1;
    cr_assert_null(ring_new(3, members, 2, owners));
    cr_assert_null(ring_new(4, members, 0, owners));
    cr_assert_null(ring_new(4, NULL, 2, owners));
    const char *empty[2] = {"a@h:1", ""};
    cr_assert_null(ring_new(4, empty, 2, owners));
    r = ring_new(4, members, 2, NULL);
    cr_assert_eq(ring_owner(r, 3), 0, "no owners: member 0 owns everything");
    ring_free(r);
}
