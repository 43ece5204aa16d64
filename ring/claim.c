/*
 * claim.c — claim (ring/claim.h): balanced, spaced, minimal-movement assignment of the Q
 * partitions to members, as a pure function.
 *
 * Method. Members are renamed to local indices 0..n-1 in ascending id order (so the order the
 * caller lists them in does not matter). Each member's target is floor(Q/n), and the Q mod n
 * members that already hold the most partitions (ties: lowest id) get one more, so as few
 * partitions as possible have to move.
 *   1. Incremental: partitions of leavers become unassigned; then, one partition at a time,
 *      a member below its target takes either an unassigned partition or one from a member
 *      above its target: the pair where the taker has the fewest owners of its own within
 *      target_n - 1 positions either side (zero: the spacing holds there).
 *      Each such step is one necessary move, so a join moves exactly the newcomer's share.
 *   2. Repair: while some member is closer than target_n to itself, swap that partition with
 *      the one elsewhere that lowers the number of close pairs the most (a swap keeps the
 *      balance). Bounded: every accepted swap strictly lowers that number.
 *   3. If the spacing still fails, full re-spreads are computed: plain striping (p to member
 *      (p + r) mod n, every rotation r), striping with each residue class matched to the old
 *      owner holding most of it, and a greedy walk that handles the tail
 *      (0 < Q mod n < target_n); each gets the same repair. The best one, by (violations,
 *      moves), is kept if it has fewer violations than the incremental ring. A fresh ring
 *      (no old owners) is always such a re-spread.
 * With fewer members than target_n the spacing cannot hold; the repair then aims at windows
 * of n partitions (every member once) and the violations against target_n are reported.
 *
 * Memory: every buffer is allocated and freed inside ring_claim; the caller owns its arrays.
 */
#include "ring/claim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNASSIGNED UINT32_MAX

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return RING_CLAIM_EINVAL;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Local index of member id in the sorted id table, or UNASSIGNED. */
static uint32_t local_index(const uint32_t *sorted_ids, uint32_t n, uint32_t id)
{
    const uint32_t *hit = bsearch(&id, sorted_ids, n, sizeof *sorted_ids, compare_u32);
    return hit ? (uint32_t)(hit - sorted_ids) : UNASSIGNED;
}

/* How many partitions within distance 1..window-1 of p (either side) are owned by who. */
static uint32_t close_owners(const uint32_t *own, uint32_t q, uint32_t window, uint32_t p,
                             uint32_t who)
{
    uint32_t reach = window - 1, count = 0;
    if (2 * reach >= q) /* the two sides overlap: look at every other partition once */
        reach = q / 2;
    for (uint32_t d = 1; d <= reach; d++) {
        uint32_t ahead = (p + d) % q, behind = (p + q - d) % q;
        count += own[ahead] == who;
        if (behind != ahead)
            count += own[behind] == who;
    }
    return count;
}

/* Twice the number of close same-owner pairs (each pair seen from both ends). */
static uint64_t close_pairs(const uint32_t *own, uint32_t q, uint32_t window)
{
    uint64_t total = 0;
    for (uint32_t p = 0; p < q; p++)
        total += close_owners(own, q, window, p, own[p]);
    return total;
}

uint32_t ring_claim_violations(uint32_t q, const uint32_t *owners, unsigned target_n)
{
    if (!owners || q == 0)
        return 0;
    uint32_t window = target_n ? target_n : RING_CLAIM_DEFAULT_TARGET_N;
    uint32_t windows = q;
    if (window >= q) { /* one window: the whole ring */
        window = q;
        windows = 1;
    }
    uint32_t bad = 0;
    for (uint32_t start = 0; start < windows; start++) {
        bool repeated = false;
        for (uint32_t i = 0; i < window && !repeated; i++)
            for (uint32_t j = i + 1; j < window && !repeated; j++)
                repeated = owners[(start + i) % q] == owners[(start + j) % q];
        bad += repeated;
    }
    return bad;
}

bool ring_claim_spacing_possible(uint32_t q, uint32_t nodes, unsigned target_n)
{
    uint32_t window = target_n ? target_n : RING_CLAIM_DEFAULT_TARGET_N;
    if (nodes == 0 || nodes < window)
        return false;
    uint64_t most = (q + nodes - 1) / nodes;
    return most * window <= q;
}

/* The change in close pairs if partitions a and b (different owners) swapped owners. */
static int64_t swap_gain(uint32_t *own, uint32_t q, uint32_t window, uint32_t a, uint32_t b)
{
    uint32_t x = own[a], y = own[b];
    int64_t before = close_owners(own, q, window, a, x) + close_owners(own, q, window, b, y);
    own[a] = y;
    own[b] = x;
    int64_t after = close_owners(own, q, window, a, y) + close_owners(own, q, window, b, x);
    own[a] = x;
    own[b] = y;
    return after - before;
}

/* Step 2: swap owners until no swap lowers the close pairs. Deterministic: the lowest
 * offending partition first, its best partner (lowest index on ties). */
static void repair_spacing(uint32_t *own, uint32_t q, uint32_t window)
{
    if (window < 2)
        return;
    uint64_t budget = close_pairs(own, q, window); /* each swap lowers it by at least 1 */
    while (budget-- > 0) {
        bool improved = false;
        for (uint32_t a = 0; a < q && !improved; a++) {
            if (close_owners(own, q, window, a, own[a]) == 0)
                continue;
            int64_t best_gain = 0;
            uint32_t best_b = UNASSIGNED;
            for (uint32_t b = 0; b < q; b++) {
                if (own[b] == own[a])
                    continue;
                int64_t gain = swap_gain(own, q, window, a, b);
                if (gain < best_gain) {
                    best_gain = gain;
                    best_b = b;
                }
            }
            if (best_b != UNASSIGNED) {
                uint32_t t = own[a];
                own[a] = own[best_b];
                own[best_b] = t;
                improved = true;
            }
        }
        if (!improved)
            break;
    }
}

/* Per-member targets: floor(q/n), plus one for the q mod n members holding the most now. */
static void compute_targets(const uint32_t *count, uint32_t n, uint32_t q, uint32_t *target)
{
    uint32_t base = q / n, extra = q % n;
    for (uint32_t m = 0; m < n; m++)
        target[m] = base;
    for (uint32_t given = 0; given < extra; given++) {
        uint32_t pick = UNASSIGNED;
        for (uint32_t m = 0; m < n; m++)
            if (target[m] == base && (pick == UNASSIGNED || count[m] > count[pick]))
                pick = m;
        target[pick] = base + 1;
    }
}

/* Step 1: hand unassigned and surplus partitions to members below their target, one at a
 * time, always the (member, partition) pair where the member has the fewest owners of its own
 * close by; ties: the member missing the most, then the most crowded giver, then the lowest
 * partition and member. */
static void claim_incremental(uint32_t *own, uint32_t q, uint32_t n, uint32_t window,
                              uint32_t *count, const uint32_t *target)
{
    for (;;) {
        uint32_t best_p = UNASSIGNED, best_m = UNASSIGNED;
        uint32_t best_close = UINT32_MAX, best_missing = 0, best_relief = 0;
        for (uint32_t p = 0; p < q; p++) {
            uint32_t from = own[p];
            if (from != UNASSIGNED && count[from] <= target[from])
                continue;
            /* relief: how crowded the giver is here (taking it away helps the spacing) */
            uint32_t relief = from == UNASSIGNED ? window : close_owners(own, q, window, p, from);
            for (uint32_t m = 0; m < n; m++) {
                if (count[m] >= target[m])
                    continue;
                uint32_t close = close_owners(own, q, window, p, m);
                uint32_t missing = target[m] - count[m];
                if (close < best_close ||
                    (close == best_close &&
                     (missing > best_missing ||
                      (missing == best_missing && relief > best_relief)))) {
                    best_p = p;
                    best_m = m;
                    best_close = close;
                    best_missing = missing;
                    best_relief = relief;
                }
            }
        }
        if (best_p == UNASSIGNED) /* every member at its target: nothing left to hand out */
            return;
        if (own[best_p] != UNASSIGNED)
            count[own[best_p]]--;
        own[best_p] = best_m;
        count[best_m]++;
    }
}

/* A fresh spread by a greedy walk: each partition goes to the member with the most
 * partitions still to place among those not owning any of the window - 1 partitions before
 * it (nor, near the end, the first ones after the wrap); ties go to the member placed
 * longest ago (prefer_oldest) or to the lowest index. This handles the tail (0 < Q mod n < window) that
 * plain striping leaves to the repair. */
static void spread_greedy(uint32_t *own, uint32_t q, uint32_t n, uint32_t window,
                          bool prefer_oldest, uint32_t *remaining, int64_t *last_used)
{
    for (uint32_t m = 0; m < n; m++) {
        remaining[m] = q / n + (m < q % n);
        last_used[m] = -1;
    }
    for (uint32_t p = 0; p < q; p++)
        own[p] = UNASSIGNED;
    for (uint32_t p = 0; p < q; p++) {
        uint32_t pick = UNASSIGNED, fallback = UNASSIGNED;
        for (uint32_t m = 0; m < n; m++) {
            if (remaining[m] == 0)
                continue;
            if (fallback == UNASSIGNED || remaining[m] > remaining[fallback])
                fallback = m;
            if (close_owners(own, q, window, p, m) > 0)
                continue;
            if (pick == UNASSIGNED || remaining[m] > remaining[pick] ||
                (prefer_oldest && remaining[m] == remaining[pick] &&
                 last_used[m] < last_used[pick]))
                pick = m;
        }
        if (pick == UNASSIGNED)
            pick = fallback;
        own[p] = pick;
        remaining[pick]--;
        last_used[pick] = p;
    }
}

static uint32_t count_moves(const uint32_t *own, const uint32_t *old_local, uint32_t q)
{
    uint32_t moves = 0;
    for (uint32_t p = 0; p < q; p++)
        moves += !old_local || own[p] != old_local[p];
    return moves;
}

/* For striping p -> stripe_owner[p mod n]: the member for each residue class that keeps the
 * most partitions where they are (greedy on the overlap counts, ties: lowest class, then
 * lowest member). Only for n <= MATCH_MAX_MEMBERS (the search is cubic); identity otherwise. */
#define MATCH_MAX_MEMBERS 64u
static void match_stripes(const uint32_t *old_local, uint32_t q, uint32_t n,
                          uint32_t *stripe_owner)
{
    for (uint32_t c = 0; c < n; c++)
        stripe_owner[c] = c;
    if (!old_local || n > MATCH_MAX_MEMBERS)
        return;
    uint32_t overlap[MATCH_MAX_MEMBERS][MATCH_MAX_MEMBERS] = {{0}};
    bool class_done[MATCH_MAX_MEMBERS] = {false}, member_done[MATCH_MAX_MEMBERS] = {false};
    for (uint32_t p = 0; p < q; p++)
        if (old_local[p] != UNASSIGNED)
            overlap[p % n][old_local[p]]++;
    for (uint32_t step = 0; step < n; step++) {
        uint32_t best_c = 0, best_m = 0;
        int64_t best = -1;
        for (uint32_t c = 0; c < n; c++)
            for (uint32_t m = 0; m < n && !class_done[c]; m++)
                if (!member_done[m] && (int64_t)overlap[c][m] > best) {
                    best = overlap[c][m];
                    best_c = c;
                    best_m = m;
                }
        stripe_owner[best_c] = best_m;
        class_done[best_c] = true;
        member_done[best_m] = true;
    }
}

/* Step 3: the best full re-spread, by (violations, moves against old_local if any): two
 * greedy spreads, the n rotations (1 if fresh) of plain striping and, from an old ring, the
 * striping matched to it; each repaired. */
static int restripe(uint32_t *own, uint32_t q, uint32_t n, uint32_t window,
                    const uint32_t *old_local)
{
    uint32_t *candidate = malloc(q * sizeof *candidate);
    uint32_t *remaining = malloc(n * sizeof *remaining);
    uint32_t *stripe_owner = malloc(n * sizeof *stripe_owner);
    int64_t *last_used = malloc(n * sizeof *last_used);
    if (!candidate || !remaining || !stripe_owner || !last_used) {
        free(candidate);
        free(remaining);
        free(stripe_owner);
        free(last_used);
        return -1;
    }
    uint32_t best_bad = UINT32_MAX, best_moves = UINT32_MAX;
    uint32_t rotations = old_local ? n : 1;
    match_stripes(old_local, q, n, stripe_owner);
    for (uint32_t r = 0; r < rotations + 3; r++) {
        if (r < rotations)
            for (uint32_t p = 0; p < q; p++)
                candidate[p] = (p + r) % n;
        else if (r == rotations)
            for (uint32_t p = 0; p < q; p++)
                candidate[p] = stripe_owner[p % n];
        else
            spread_greedy(candidate, q, n, window, r == rotations + 1, remaining, last_used);
        repair_spacing(candidate, q, window);
        uint32_t bad = ring_claim_violations(q, candidate, window);
        uint32_t moves = count_moves(candidate, old_local, q);
        if (bad < best_bad || (bad == best_bad && moves < best_moves)) {
            memcpy(own, candidate, q * sizeof *own);
            best_bad = bad;
            best_moves = moves;
        }
    }
    free(candidate);
    free(remaining);
    free(stripe_owner);
    free(last_used);
    return 0;
}

int ring_claim(uint32_t q, const uint32_t *old_owners, const uint32_t *members,
               uint32_t member_count, unsigned target_n, uint32_t *new_owners,
               ring_claim_stats_t *stats, char *err, size_t errlen)
{
    if (q == 0 || q > RING_CLAIM_MAX_PARTITIONS || (q & (q - 1)) != 0)
        return fail(err, errlen, "ring size %u is not a power of two in 1..%u", q,
                    RING_CLAIM_MAX_PARTITIONS);
    if (!members || member_count == 0)
        return fail(err, errlen, "no members to own the partitions");
    if (member_count > q)
        return fail(err, errlen, "%u members for %u partitions: some would own nothing",
                    member_count, q);
    if (!new_owners || new_owners == old_owners)
        return fail(err, errlen, "new_owners missing or aliasing old_owners");

    uint32_t n = member_count, target_window = target_n ? target_n : RING_CLAIM_DEFAULT_TARGET_N;
    uint32_t window = target_window < n ? target_window : n; /* best achievable spacing */
    uint32_t *ids = malloc(n * sizeof *ids);
    uint32_t *own = malloc(q * sizeof *own);
    uint32_t *alt = malloc(q * sizeof *alt);
    uint32_t *old_local = malloc(q * sizeof *old_local);
    uint32_t *count = calloc(n, sizeof *count);
    uint32_t *target = malloc(n * sizeof *target);
    int rc = 0;
    if (!ids || !own || !alt || !old_local || !count || !target) {
        rc = fail(err, errlen, "out of memory");
        goto out;
    }
    memcpy(ids, members, n * sizeof *ids);
    qsort(ids, n, sizeof *ids, compare_u32);
    for (uint32_t m = 1; m < n; m++)
        if (ids[m] == ids[m - 1]) {
            rc = fail(err, errlen, "member %u listed twice", ids[m]);
            goto out;
        }

    bool restriped = true;
    if (old_owners) {
        for (uint32_t p = 0; p < q; p++) {
            own[p] = local_index(ids, n, old_owners[p]);
            if (own[p] != UNASSIGNED)
                count[own[p]]++;
        }
        compute_targets(count, n, q, target);
        claim_incremental(own, q, n, window, count, target);
        if (close_pairs(own, q, window) > 0)
            repair_spacing(own, q, window);
        restriped = false;
        uint32_t bad = ring_claim_violations(q, own, window);
        if (bad > 0) {
            for (uint32_t p = 0; p < q; p++) /* the old ring in local indices, for moves */
                old_local[p] = local_index(ids, n, old_owners[p]);
            if (restripe(alt, q, n, window, old_local) != 0) {
                rc = fail(err, errlen, "out of memory");
                goto out;
            }
            if (ring_claim_violations(q, alt, window) < bad) {
                memcpy(own, alt, q * sizeof *own);
                restriped = true;
            }
        }
    } else if (restripe(own, q, n, window, NULL) != 0) {
        rc = fail(err, errlen, "out of memory");
        goto out;
    }

    uint32_t moved = 0;
    for (uint32_t p = 0; p < q; p++) {
        new_owners[p] = ids[own[p]];
        moved += !old_owners || old_owners[p] != new_owners[p];
    }
    if (stats) {
        stats->moved = moved;
        stats->violations = ring_claim_violations(q, new_owners, target_window);
        stats->restriped = restriped;
    }
out:
    free(ids);
    free(own);
    free(alt);
    free(old_local);
    free(count);
    free(target);
    return rc;
}
