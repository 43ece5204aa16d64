/*
 * claim.h — claim: which member owns each of the Q partitions after a membership change
 * (Riak's choose_claim_v2 idea, reimplemented as a pure function over plain arrays).
 *
 * Members are named by caller-chosen uint32_t ids (for example indices into ring.h's member
 * list); claim never interprets them except to compare them. Given the current owners (or
 * none, for a fresh ring) and the members that should own partitions after the change
 * (joiners added, leavers removed), ring_claim writes the new owner array such that:
 *   - every member owns floor(Q/n) or ceil(Q/n) partitions (n = member count);
 *   - any target_n consecutive partitions (wrapping round the ring) have distinct owners
 *     whenever that is possible (see ring_claim_spacing_possible); otherwise the count of
 *     offending windows is reported in the stats, never printed;
 *   - as few partitions as possible change owner: on a join the newcomers take exactly their
 *     share from the members above theirs, on a leave only the leaver's partitions and any
 *     surplus move; a full re-striping is used only when moving fewer cannot keep the
 *     spacing;
 *   - the same inputs give the same ring (no randomness; the order of `members` is ignored).
 */
#ifndef CAIRN_RING_CLAIM_H
#define CAIRN_RING_CLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_CLAIM_DEFAULT_TARGET_N 4u
#define RING_CLAIM_MAX_PARTITIONS 1024u
#define RING_CLAIM_EINVAL (-22)

typedef struct ring_claim_stats_s {
    uint32_t moved;      /* partitions whose owner differs from old_owners (all Q when fresh) */
    uint32_t violations; /* windows of target_n consecutive partitions with a repeated owner */
    bool restriped;      /* true: the result is a full re-striping, not incremental moves */
} ring_claim_stats_t;

/*
 * Compute the owners after a membership change.
 *   q            ring size: a power of two, 1..RING_CLAIM_MAX_PARTITIONS
 *   old_owners   q member ids (the current ring), or NULL for a fresh ring; ids not in
 *                `members` are leavers and lose all their partitions
 *   members      member_count distinct ids (1..q of them) that own partitions afterwards
 *   target_n     the spacing window; 0 means RING_CLAIM_DEFAULT_TARGET_N
 *   new_owners   q entries written by the call (caller-owned; may not alias old_owners)
 *   stats        optional (NULL allowed)
 * Returns 0, or RING_CLAIM_EINVAL with a reason in err (if err is non-NULL) on bad input;
 * new_owners is untouched on error.
 */
int ring_claim(uint32_t q, const uint32_t *old_owners, const uint32_t *members,
               uint32_t member_count, unsigned target_n, uint32_t *new_owners,
               ring_claim_stats_t *stats, char *err, size_t errlen);

/* The number of windows of target_n (0: default) consecutive partitions, wrapping, whose
 * owners are not all distinct. A window longer than the ring is the whole ring once. */
uint32_t ring_claim_violations(uint32_t q, const uint32_t *owners, unsigned target_n);

/* Whether a balanced ring of q partitions over `nodes` members can keep every target_n
 * window distinct: nodes >= target_n and ceil(q / nodes) * target_n <= q (a member owning
 * ceil(q/nodes) partitions needs target_n - 1 others between each two of them). This is
 * the condition under which ring_claim guarantees zero violations on a fresh ring. */
bool ring_claim_spacing_possible(uint32_t q, uint32_t nodes, unsigned target_n);

#endif
