/*
 * test_ring_claim.c — claim (ring/claim.h): over every member count 1..32 and Q in
 * {8, 16, 64, 256, 1024}, a fresh ring and every sequential join and leave is balanced to
 * floor/ceil(Q/n), keeps any target_n (4) consecutive partitions on distinct members whenever
 * ring_claim_spacing_possible says it can (and reports violations when it cannot), moves close
 * to the ideal Q/(n+1) per join; claim is deterministic, handles Riak's 4 -> 5 nodes at Q=64,
 * and refuses bad input. The moves table (docs/ring.md) is printed by the "moves_table" test.
 */
#include "ring/claim.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_N 4u
#define MAX_NODES 32u

static const uint32_t ring_sizes[] = {8, 16, 64, 256, 1024};
#define RING_SIZE_COUNT (sizeof ring_sizes / sizeof ring_sizes[0])

/* Member ids 100, 101, ...: not 0-based, so ids are never confused with indices. */
static void member_ids(uint32_t *ids, uint32_t first, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        ids[i] = 100 + first + i;
}

static void assert_balanced(uint32_t q, const uint32_t *owners, const uint32_t *ids, uint32_t n)
{
    uint32_t lo = q / n, hi = (q + n - 1) / n;
    for (uint32_t m = 0; m < n; m++) {
        uint32_t owned = 0;
        for (uint32_t p = 0; p < q; p++)
            owned += owners[p] == ids[m];
        cr_assert(owned >= lo && owned <= hi, "Q=%u n=%u: member %u owns %u, want %u..%u", q, n,
                  ids[m], owned, lo, hi);
    }
    for (uint32_t p = 0; p < q; p++) {
        bool known = false;
        for (uint32_t m = 0; m < n && !known; m++)
            known = owners[p] == ids[m];
        cr_assert(known, "Q=%u n=%u: partition %u owned by non-member %u", q, n, p, owners[p]);
    }
}

/* The spacing promise: zero violations when possible, a truthful warning otherwise. */
static void assert_spacing(uint32_t q, const uint32_t *owners, uint32_t n,
                           const ring_claim_stats_t *st, const char *what)
{
    uint32_t bad = ring_claim_violations(q, owners, TARGET_N);
    cr_assert_eq(st->violations, bad, "%s Q=%u n=%u: stats say %u violations, ring has %u", what,
                 q, n, st->violations, bad);
    if (ring_claim_spacing_possible(q, n, TARGET_N))
        cr_assert_eq(bad, 0, "%s Q=%u n=%u: %u windows of %u repeat an owner", what, q, n, bad,
                     TARGET_N);
    else
        cr_assert_gt(bad, 0, "%s Q=%u n=%u: spacing called impossible but met", what, q, n);
}

static void claim_ok(uint32_t q, const uint32_t *old, const uint32_t *ids, uint32_t n,
                     uint32_t *out, ring_claim_stats_t *st)
{
    char err[128] = "";
    int rc = ring_claim(q, old, ids, n, TARGET_N, out, st, err, sizeof err);
    cr_assert_eq(rc, 0, "Q=%u n=%u: ring_claim failed: %s", q, n, err);
}

Test(ring_claim, violations_counts_windows)
{
    uint32_t striped[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    uint32_t tail[8] = {1, 2, 3, 4, 5, 1, 2, 3}; /* wrap: 2 3 | 1 2 ... */
    cr_assert_eq(ring_claim_violations(8, striped, 4), 0);
    cr_assert_eq(ring_claim_violations(8, striped, 5), 8);
    cr_assert_eq(ring_claim_violations(8, tail, 4), 3); /* windows starting at 5, 6, 7 */
    cr_assert_eq(ring_claim_violations(8, tail, 100), 1); /* one window: the whole ring */
    cr_assert(ring_claim_spacing_possible(64, 4, 4));
    cr_assert(!ring_claim_spacing_possible(64, 3, 4));
    cr_assert(ring_claim_spacing_possible(16, 5, 4)); /* 4,3,3,3,3: the 4 exactly 4 apart */
    cr_assert(!ring_claim_spacing_possible(10, 4, 4)); /* 3 owned need 12 partitions */
}

Test(ring_claim, fresh_ring_balanced_and_spaced_on_every_size)
{
    static uint32_t owners[RING_CLAIM_MAX_PARTITIONS];
    uint32_t ids[MAX_NODES];
    member_ids(ids, 0, MAX_NODES);
    for (size_t s = 0; s < RING_SIZE_COUNT; s++) {
        uint32_t q = ring_sizes[s];
        for (uint32_t n = 1; n <= MAX_NODES && n <= q; n++) {
            ring_claim_stats_t st;
            claim_ok(q, NULL, ids, n, owners, &st);
            assert_balanced(q, owners, ids, n);
            assert_spacing(q, owners, n, &st, "fresh");
            cr_assert_eq(st.moved, q);
        }
    }
}

/* Moves bound for one join or leave between n_from and n_to members: within 1.5x the ideal
 * (the share that has to change hands) plus TARGET_N once both rings have at least
 * TARGET_N + 2 members. Smaller rings are tight (at n = TARGET_N every member must own
 * exactly every n-th partition): getting there re-stripes, bounded only by Q (measured in
 * docs/ring.md). */
static uint32_t moves_bound(uint32_t q, uint32_t n_from, uint32_t n_to)
{
    uint32_t smaller = n_from < n_to ? n_from : n_to, bigger = n_from ^ n_to ^ smaller;
    if (smaller < TARGET_N + 2)
        return q;
    uint32_t ideal = (q + bigger - 1) / bigger;
    return ideal + ideal / 2 + TARGET_N;
}

Test(ring_claim, sequential_joins_keep_balance_spacing_and_move_little)
{
    uint32_t ids[MAX_NODES];
    static uint32_t old[RING_CLAIM_MAX_PARTITIONS], now[RING_CLAIM_MAX_PARTITIONS];
    member_ids(ids, 0, MAX_NODES);
    for (size_t s = 0; s < RING_SIZE_COUNT; s++) {
        uint32_t q = ring_sizes[s];
        ring_claim_stats_t st;
        claim_ok(q, NULL, ids, 1, old, &st);
        for (uint32_t n = 2; n <= MAX_NODES && n <= q; n++) {
            claim_ok(q, old, ids, n, now, &st);
            assert_balanced(q, now, ids, n);
            assert_spacing(q, now, n, &st, "join");
            cr_assert_geq(st.moved, q / n, "Q=%u join to %u: moved %u < newcomer's share", q, n,
                          st.moved);
            cr_assert_leq(st.moved, moves_bound(q, n - 1, n), "Q=%u join %u->%u moved %u", q,
                          n - 1, n, st.moved);
            memcpy(old, now, q * sizeof *old);
        }
    }
}

Test(ring_claim, sequential_leaves_keep_balance_spacing_and_move_little)
{
    uint32_t ids[MAX_NODES];
    static uint32_t old[RING_CLAIM_MAX_PARTITIONS], now[RING_CLAIM_MAX_PARTITIONS];
    for (size_t s = 0; s < RING_SIZE_COUNT; s++) {
        uint32_t q = ring_sizes[s], n = q < MAX_NODES ? q : MAX_NODES;
        ring_claim_stats_t st;
        member_ids(ids, 0, n);
        claim_ok(q, NULL, ids, n, old, &st);
        while (n > 1) {
            /* the member in the middle leaves: the rest shift down one slot */
            uint32_t leaver = ids[n / 2];
            memmove(&ids[n / 2], &ids[n / 2 + 1], (n - n / 2 - 1) * sizeof *ids);
            n--;
            claim_ok(q, old, ids, n, now, &st);
            assert_balanced(q, now, ids, n);
            assert_spacing(q, now, n, &st, "leave");
            uint32_t leaver_had = 0;
            for (uint32_t p = 0; p < q; p++)
                leaver_had += old[p] == leaver;
            cr_assert_geq(st.moved, leaver_had);
            cr_assert_leq(st.moved, moves_bound(q, n + 1, n), "Q=%u leave %u->%u moved %u", q,
                          n + 1, n, st.moved);
            memcpy(old, now, q * sizeof *old);
        }
    }
}

/* Riak's known bad case (basho/riak#348): 4 -> 5 nodes at Q=64 left one node at 16. */
Test(ring_claim, four_to_five_nodes_at_q64_ends_balanced)
{
    uint32_t ids[5], old[64], now[64];
    ring_claim_stats_t st;
    member_ids(ids, 0, 5);
    claim_ok(64, NULL, ids, 4, old, &st);
    claim_ok(64, old, ids, 5, now, &st);
    assert_balanced(64, now, ids, 5); /* 12 or 13 each, nobody left at 16 */
    cr_assert_eq(st.violations, 0);
    cr_assert(!st.restriped);
    cr_assert_leq(st.moved, 13, "moved %u, ideal 12.8", st.moved);
}

Test(ring_claim, same_inputs_same_ring_whatever_the_member_order)
{
    uint32_t ids[12], shuffled[12], old[256], a[256], b[256], c[256];
    ring_claim_stats_t sa, sb, sc;
    member_ids(ids, 0, 12);
    claim_ok(256, NULL, ids, 7, old, &sa);
    claim_ok(256, old, ids, 12, a, &sa);
    claim_ok(256, old, ids, 12, b, &sb);
    for (uint32_t i = 0; i < 12; i++)
        shuffled[i] = ids[(i * 5) % 12];
    claim_ok(256, old, shuffled, 12, c, &sc);
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert_arr_eq(a, c, sizeof a);
    cr_assert_eq(sa.moved, sb.moved);
    cr_assert_eq(sa.moved, sc.moved);
}

Test(ring_claim, replace_moves_only_the_leavers_share)
{
    uint32_t ids[8], old[64], now[64];
    ring_claim_stats_t st;
    member_ids(ids, 0, 8);
    claim_ok(64, NULL, ids, 8, old, &st);
    ids[3] = 500; /* member 103 replaced by 500 */
    claim_ok(64, old, ids, 8, now, &st);
    assert_balanced(64, now, ids, 8);
    cr_assert_eq(st.violations, 0);
    cr_assert_eq(st.moved, 8);
    for (uint32_t p = 0; p < 64; p++)
        cr_assert(old[p] == 103 ? now[p] == 500 : now[p] == old[p]);
}

Test(ring_claim, bad_input_is_refused_with_a_reason)
{
    uint32_t ids[3] = {1, 2, 3}, dup[3] = {1, 2, 1}, out[16], sentinel[16];
    char err[128];
    memset(out, 0xAB, sizeof out);
    memcpy(sentinel, out, sizeof out);
    const struct {
        uint32_t q;
        const uint32_t *members;
        uint32_t count;
    } bad[] = {{0, ids, 3}, {12, ids, 3}, {2048, ids, 3}, {16, NULL, 3},
               {16, ids, 0}, {16, dup, 3}, {2, ids, 3}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = ring_claim(bad[i].q, NULL, bad[i].members, bad[i].count, 0, out, NULL, err,
                            sizeof err);
        cr_assert_eq(rc, RING_CLAIM_EINVAL, "case %zu accepted", i);
        cr_assert_neq(err[0], '\0', "case %zu: no reason", i);
        cr_assert_arr_eq(out, sentinel, sizeof out);
    }
    cr_assert_eq(ring_claim(16, out, ids, 3, 0, out, NULL, NULL, 0), RING_CLAIM_EINVAL);
    cr_assert_eq(ring_claim(16, NULL, ids, 3, 0, NULL, NULL, NULL, 0), RING_CLAIM_EINVAL);
}

/* The table in docs/ring.md: partitions moved per join (n-1 -> n) and per leave (n -> n-1,
 * the highest id leaving) against the ideal Q/n, for Q = 64 and 256. */
Test(ring_claim, moves_table)
{
    static const uint32_t sizes[] = {64, 256};
    uint32_t ids[17], old[256], now[256];
    member_ids(ids, 0, 17);
    printf("| Q | n-1 -> n | join moved | leave n -> n-1 moved | ideal Q/n | violations |\n"
           "|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < 2; s++) {
        uint32_t q = sizes[s];
        ring_claim_stats_t st;
        claim_ok(q, NULL, ids, 1, old, &st);
        for (uint32_t n = 2; n <= 17; n++) {
            ring_claim_stats_t leave;
            claim_ok(q, old, ids, n, now, &st);
            claim_ok(q, now, ids, n - 1, old, &leave); /* the newcomer leaves again */
            printf("| %u | %u -> %u | %u%s | %u%s | %.1f | %u |\n", q, n - 1, n, st.moved,
                   st.restriped ? " (re-striped)" : "", leave.moved,
                   leave.restriped ? " (re-striped)" : "", (double)q / n, st.violations);
            cr_assert_eq(st.violations, ring_claim_violations(q, now, TARGET_N));
            memcpy(old, now, q * sizeof *old);
        }
    }
    fflush(stdout);
}
