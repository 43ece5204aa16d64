/*
 * cstate.h — the cluster state (prefix cstate_): the members of a cluster with their status,
 * the ring's owners and pending owners, the claimant, and the version vector that orders
 * states; the changes a node makes to it (join, staged leave/remove/replace planned and
 * committed by the claimant, down/rejoin, transfer completion, the claimant's tick); the
 * gossip merge of two states (Riak's reconcile); and its encoding (proto/ring.proto), which
 * is both the ring file in the data dir and the gossip payload.
 *
 * Pure data, deterministic: no clocks, no randomness, no I/O except cstate_load/cstate_save.
 * A cstate_t is immutable once built and may be read by any thread; every change returns a
 * new state (the caller owns it and frees it with cstate_free) and leaves its input alone.
 *
 * Members are kept sorted by name (bytewise), so two states with the same content encode to
 * the same bytes; member index i here is member index i of cstate_ring(s) (ring_owner values).
 * Removed members stay listed with status REMOVED (a tombstone), so gossip that still names
 * them cannot bring them back and a removed node can be told it is out. At most
 * CSTATE_MAX_MEMBERS members, tombstones included.
 *
 * Names: a member name is 1..RING_NODE_NAME_MAX-1 bytes of printable ASCII without spaces
 * (0x21..0x7e) holding an '@' with something on both sides ("name@host:port"); a cluster
 * name is 1..RING_NODE_NAME_MAX-1 printable bytes without spaces. A cluster is identified by
 * its name and its founder (the node that called cstate_new; joiners adopt both), so two
 * clusters that were started apart under the same name never merge (Riak's clustername is
 * {founder, timestamp} for the same reason).
 *
 * Versioning:
 *   - the state's version vector (entries node -> counter; every node named is a member,
 *     tombstones included) gets self's entry incremented by every change a node makes;
 *   - each member entry has its own version (mver), raised above every earlier value when
 *     its status changes; a merge of concurrent states takes, per member, the entry with
 *     the higher mver, and on equal mver the status by precedence
 *     removed > down > joining > valid > exiting > leaving (Riak's order);
 *   - ownership (owners, pending owners and the recorded claimant, which travel together)
 *     has a version (rvsn) raised whenever one of them changes; a merge of concurrent states
 *     takes the ownership with the higher rvsn, and on equal rvsn the one whose claimant
 *     sorts first by name, then the one whose owners (then pending owners), compared by
 *     member name partition by partition, sort first. When both ownerships are the same,
 *     the transfers marked done are the union of both (transfer_done does not raise rvsn).
 * These rules make the merge a join (commutative, associative, idempotent) and every change
 * an increase, so a merge does NOT bump any entry: its version vector is the pointwise
 * maximum of both, and two nodes merging the same two states get the same bytes. That is
 * what lets n nodes settle on one state (a bump per merge would create a new version at
 * every concurrent exchange, forever).
 */
#ifndef CAIRN_RING_CSTATE_H
#define CAIRN_RING_CSTATE_H

#include "ring/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSTATE_NONE UINT32_MAX     /* "no member" (cstate_next_owner, cstate_member_index) */
#define CSTATE_MAX_MEMBERS RING_MAX_MEMBERS /* members of a state, tombstones included */
#define CSTATE_ENCODED_MAX (1u << 20)       /* cstate_decode refuses longer input */
#define CSTATE_EINVAL (-22)        /* bad input or a change that is not allowed; reason in err */
#define CSTATE_ENOENT (-2)         /* cstate_load: no file */
#define CSTATE_EIO (-5)            /* cstate_save/load: I/O error; reason in err */

typedef enum {
    CSTATE_JOINING,
    CSTATE_VALID,
    CSTATE_LEAVING,
    CSTATE_EXITING,
    CSTATE_DOWN,
    CSTATE_REMOVED
} cstate_status_t;

/* "joining", "valid", "leaving", "exiting", "down", "removed". */
const char *cstate_status_name(cstate_status_t st);

typedef struct cstate_s cstate_t;

/* A fresh cluster of one: self valid and claimant (and founder), every partition owned by
 * self, nothing pending, version vector {self: 1}. q: a power of two, 1..RING_MAX_PARTITIONS.
 * cluster_name: NULL means "cairn". NULL on bad arguments (see Names above). */
cstate_t *cstate_new(uint32_t q, const char *self, const char *cluster_name);
/* An identical copy (same fingerprint), or NULL when out of memory. Caller frees it. */
cstate_t *cstate_dup(const cstate_t *s);
void cstate_free(cstate_t *s);               /* NULL is fine */

/* ---------------------------------------------------------------- reading */

/* Owners and member names for preference lists; borrowed, valid while s lives. Its member
 * list is every member of s (non-owning ones included), in s's order. */
const ring_t *cstate_ring(const cstate_t *s);
uint32_t cstate_size(const cstate_t *s);                 /* Q */
uint32_t cstate_member_count(const cstate_t *s);         /* removed members included */
/* Member i's name and status; NULL and CSTATE_REMOVED for an index out of range. */
const char *cstate_member_name(const cstate_t *s, uint32_t i);
cstate_status_t cstate_member_status(const cstate_t *s, uint32_t i);
uint32_t cstate_member_index(const cstate_t *s, const char *name); /* CSTATE_NONE if absent */
/* The member's version (mver, see Versioning); 0 out of range. */
uint64_t cstate_member_version(const cstate_t *s, uint32_t i);
const char *cstate_cluster_name(const cstate_t *s);
const char *cstate_founder(const cstate_t *s);
/* The ownership version (rvsn, see Versioning). */
uint64_t cstate_ring_version(const cstate_t *s);
/* The recorded claimant. cstate_claimant_effective: the recorded claimant if it is valid or
 * leaving, else the first member by name that is valid or leaving (Riak's rule), else NULL. */
const char *cstate_claimant(const cstate_t *s);
const char *cstate_claimant_effective(const cstate_t *s);
/* Partition p's pending owner (member index), or CSTATE_NONE if p is not moving. */
uint32_t cstate_next_owner(const cstate_t *s, uint32_t p);
/* Whether p's pending transfer was reported complete (cstate_transfer_done). */
bool cstate_transfer_is_done(const cstate_t *s, uint32_t p);
uint32_t cstate_pending_count(const cstate_t *s);        /* partitions with a next owner */
/* Partitions member i owns now / will own once every pending transfer is done. */
uint32_t cstate_owned(const cstate_t *s, uint32_t i);
uint32_t cstate_owned_after(const cstate_t *s, uint32_t i);
/* A 64-bit hash of the whole content (version vector included): two nodes hold the same
 * state exactly when their fingerprints match (up to hash collisions). */
uint64_t cstate_fingerprint(const cstate_t *s);
/* The version vector as text, "a@h:1=3,b@h:2=1" (sorted by node), into buf; returns the
 * length it needed (like snprintf). */
size_t cstate_vclock_text(const cstate_t *s, char *buf, size_t len);

typedef enum {
    CSTATE_ORDER_EQUAL,      /* same version vector */
    CSTATE_ORDER_NEWER,      /* a descends b (a is newer) */
    CSTATE_ORDER_OLDER,      /* b descends a */
    CSTATE_ORDER_CONCURRENT
} cstate_order_t;
cstate_order_t cstate_compare(const cstate_t *a, const cstate_t *b);

/* ---------------------------------------------------------------- gossip merge */

typedef enum {
    CSTATE_MERGE_KEPT,       /* mine is newer or equal: *out = NULL, nothing to install */
    CSTATE_MERGE_ADOPTED,    /* theirs is newer: *out = a copy of theirs */
    CSTATE_MERGE_MERGED,     /* concurrent (or same version vector, different content):
                              * *out = the deterministic merge (no entry bumped, see
                              * Versioning), newer than both */
    CSTATE_MERGE_IGNORED     /* another cluster (name, founder or ring size), sent by a
                              * removed member (cstate_sender_is_removed), a merge that would
                              * exceed CSTATE_MAX_MEMBERS, or out of memory: *out = NULL */
} cstate_merge_t;

/* Reconciles an incoming state with mine, as node `self` (self does not change the result:
 * every node computes the same merge). sender: the node that sent it (for the removed-sender
 * rule; NULL: not checked). Returns the outcome; *out as above (caller frees). */
cstate_merge_t cstate_merge(const cstate_t *mine, const cstate_t *theirs, const char *self,
                            const char *sender, cstate_t **out);

/* The removed-sender rule: mine records `sender` as removed and theirs does not show it
 * joined again since (its entry for sender is not of a higher mver). Such gossip is ignored
 * and the sender is to be told it is out (gossip.h). */
bool cstate_sender_is_removed(const cstate_t *mine, const cstate_t *theirs, const char *sender);

/* ---------------------------------------------------------------- changes
 * Each returns 0 with *out a new state (self's version entry bumped), or CSTATE_EINVAL with
 * the reason in err (Riak's wording where Riak has one) and *out untouched. */

/* Join: `joiner` (a fresh single-node cluster) adopts `cluster` (the state it fetched from
 * the node it joins) and adds itself as joining. Refused when the joiner is already a
 * member (unless removed: a removed node may join again as a fresh member), or when
 * joiner_q differs from the cluster's ring size ("different_ring_sizes"). */
int cstate_join(const cstate_t *cluster, const char *joiner, uint32_t joiner_q, cstate_t **out,
                char *err, size_t errlen);

/* Staged changes (held by the node until commit; they are not part of the state). Joins are
 * not staged: every joining member is part of the next plan. */
typedef enum {
    CSTATE_CHANGE_LEAVE,         /* node: leaving; its partitions move by transfer */
    CSTATE_CHANGE_FORCE_REMOVE,  /* node: removed now; its partitions reassigned at once */
    CSTATE_CHANGE_REPLACE,       /* node leaving, its partitions move to new_node by transfer */
    CSTATE_CHANGE_FORCE_REPLACE  /* new_node owns node's partitions at once; node removed */
} cstate_change_kind_t;

typedef struct cstate_change_s {
    cstate_change_kind_t kind;
    char node[RING_NODE_NAME_MAX];
    char new_node[RING_NODE_NAME_MAX]; /* REPLACE, FORCE_REPLACE: a joining member */
} cstate_change_t;

/* Checks one change against s and the changes already staged: the node is a member that is
 * valid or leaving (or down, for the force changes), not already named by a staged change,
 * not the last valid member (joining members count as valid: commit makes them so); a
 * replacement is a joining member not named elsewhere; the force changes are refused for
 * the effective claimant ("is_claimant": mark it down first, another node takes over).
 * 0 or CSTATE_EINVAL. */
int cstate_change_check(const cstate_t *s, const cstate_change_t *staged, size_t nstaged,
                        const cstate_change_t *c, char *err, size_t errlen);

typedef struct cstate_plan_s {
    cstate_t *result;          /* the state commit installs (owned; cstate_plan_free) */
    uint32_t moved_now;        /* partitions whose owner changed at once (force changes) */
    uint32_t transfers;        /* partitions given a pending owner */
    uint32_t violations;       /* target_n windows with a repeated owner (after transfers) */
    bool restriped;            /* claim fell back to a full re-striping */
    bool nothing;              /* no staged change and no joining member: nothing to do */
} cstate_plan_t;

/* What committing `changes` would do, computed by the claimant `self`: joining members
 * become valid, then claim (ring/claim.h) over the members that will own partitions
 * (valid and down ones, plus new replacements, minus leavers and removed ones) decides the
 * owners after the change; a replaced member's partitions are handed to its replacement
 * before claim runs. Partitions of force-removed/force-replaced members change owner at
 * once (moved_now), every other change of owner becomes a pending transfer (next owner,
 * awaiting). If transfers are already pending, the plan is refused ("transfers pending").
 * Refused when self is not the effective claimant, when a change fails cstate_change_check,
 * or when more members would own partitions than there are partitions. Deterministic: the
 * same state and changes give the same result. When `nothing` is set, result is NULL. */
int cstate_plan(const cstate_t *s, const cstate_change_t *changes, size_t nchanges,
                unsigned target_n, const char *self, cstate_plan_t *out, char *err,
                size_t errlen);
void cstate_plan_free(cstate_plan_t *p);

/* `node` is unreachable: valid/leaving/exiting -> down (Riak's `down`). Refused for self,
 * for a non-member, and for the only valid member. */
int cstate_mark_down(const cstate_t *s, const char *node, const char *self, cstate_t **out,
                     char *err, size_t errlen);
/* A down member is back: down -> valid. node may be self (a node that finds itself marked
 * down in gossip marks itself up, which is how it rejoins; gossip_receive does that).
 * Refused for a member that is not down. */
int cstate_mark_up(const cstate_t *s, const char *node, const char *self, cstate_t **out,
                   char *err, size_t errlen);

/* Partition p's pending transfer has finished (the handoff issue calls this when the data
 * is across). Refused when p has no pending owner or is already marked done. Does not raise
 * rvsn: a mark made concurrently with a claimant's change of ownership can be lost in the
 * merge (the claimant's newer ownership wins), so the reporter re-reports when it sees its
 * finished transfer still awaiting (cstate_transfer_is_done). */
int cstate_transfer_done(const cstate_t *s, uint32_t p, const char *self, cstate_t **out,
                         char *err, size_t errlen);

/* The claimant's periodic duty (Riak's claimant tick), as `self`; does nothing (returns 0
 * with *out = NULL) unless self is the effective claimant or when nothing applies:
 *   - records self as claimant if the recorded one is no longer valid/leaving;
 *   - every transfer marked done: owner = next owner, pending cleared;
 *   - pending transfers to or from down/removed members are dropped (the partition keeps
 *     its owner; a removed owner's partitions were reassigned by the plan);
 *   - partitions still owned by a removed member (possible after concurrent changes met in
 *     a merge) are reassigned at once, by claim over the valid members;
 *   - when nothing is pending and a leaving member still owns partitions (its transfers were
 *     dropped), claim over the valid members plans those partitions again as transfers;
 *   - a leaving member that owns nothing and has nothing pending -> exiting;
 *   - an exiting member -> removed (on the tick after it became exiting, so it can see it).
 * Claim runs here with RING_CLAIM_DEFAULT_TARGET_N (ring/claim.h).
 * Returns 0 with *out NULL (no change) or a new state; CSTATE_EINVAL only when out of
 * memory. */
int cstate_claimant_tick(const cstate_t *s, const char *self, cstate_t **out);

/* ---------------------------------------------------------------- encoding and the file */

/* The packed state (proto/ring.proto RingState, format 2), canonical: equal states encode
 * to equal bytes. The gossip payload. malloc'd, caller frees. NULL on OOM. */
uint8_t *cstate_encode(const cstate_t *s, size_t *len);
/* Decodes and validates everything (it is fed by the network): len <= CSTATE_ENCODED_MAX,
 * Q a power of two <= 1024, 1..CSTATE_MAX_MEMBERS well-formed member names sorted and
 * distinct, one status/version/clock entry per member, owners and next owners in range, a
 * claimant and a founder that are members, pending transfers sorted and moving, and the
 * pending count written last (so any truncation is refused). Never crashes on bad bytes.
 * *out is set only on success. CSTATE_EINVAL with the reason on anything malformed. */
int cstate_decode(const uint8_t *buf, size_t len, cstate_t **out, char *err, size_t errlen);
/* The ring file (RingFile: format version 2, packed state, XXH3 check; ring.c's
 * ring_file_write/ring_file_read). Save is atomic (temp file, fsync, rename, fsync dir).
 * Load also reads format-1 files (members and owners only: every member valid, the first
 * the claimant and founder, cluster name "cairn", version vector {first member: 1}).
 * Errors name the path. */
int cstate_save(const cstate_t *s, const char *path, char *err, size_t errlen);
int cstate_load(const char *path, cstate_t **out, char *err, size_t errlen);

#endif
