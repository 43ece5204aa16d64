/*
 * ring.h — the consistent-hash ring: keys to partitions, partitions to owners, preference
 * lists, and the ring file in the data dir (prefix ring_).
 *
 * Keys hash to a 64-bit space (XXH3-64 of the bucket type, bucket and key, each length-
 * prefixed so ("ab","c") and ("a","bc") differ). The space is cut into Q equal partitions
 * (Q a power of two); partition i covers hashes [i * 2^64/Q, (i+1) * 2^64/Q). As in Riak, a
 * key belongs to the partition that FOLLOWS its hash: the first replica of hash h is
 * partition (h / (2^64/Q) + 1) mod Q, the next N-1 replicas are the following partitions
 * clockwise.
 *
 * This module knows nothing of LevelDB or of the vnodes; it is pure data plus the ring file.
 * A ring_t is immutable once built and may be read by any thread; a change makes a new ring
 * (copy-on-write), which the cluster issue's ring manager publishes.
 */
#ifndef CAIRN_RING_H
#define CAIRN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAX_PARTITIONS 1024u
#define RING_MAX_MEMBERS 1024u     /* member names a ring (and a cluster state) may list */
#define RING_NODE_NAME_MAX 256     /* a member name is 1..RING_NODE_NAME_MAX-1 bytes */

typedef struct ring_s ring_t;

/* One entry of a preference list. */
typedef struct ring_pref_s {
    uint32_t partition;      /* index 0..Q-1 */
    uint32_t owner;          /* index into the ring's member list (ring_member_name) */
    bool primary;            /* true: hosted by the partition's owner; false: a fallback, hosted
                              * by `owner` for the partition's down owner (ring_apl) */
} ring_pref_t;

/* The 64-bit ring hash of (type, bucket, key). */
uint64_t ring_hash_key(const void *type, size_t type_len, const void *bucket, size_t bucket_len,
                       const void *key, size_t key_len);

/* A ring of q partitions (power of two, 1..RING_MAX_PARTITIONS) over nmembers member names
 * (1..RING_MAX_MEMBERS, each 1..RING_NODE_NAME_MAX-1 bytes; the caller keeps them distinct,
 * which is not checked), partition p owned by member owners[p] (< nmembers; owners NULL:
 * every partition owned by member 0). Copies its inputs. NULL on bad arguments or out of
 * memory. Free with ring_free. */
ring_t *ring_new(uint32_t q, const char *const *members, uint32_t nmembers, const uint32_t *owners);
/* ring_new of one member owning everything. */
ring_t *ring_new_single(uint32_t q, const char *node_name);
void ring_free(ring_t *r);

uint32_t ring_size(const ring_t *r);                      /* Q */
uint32_t ring_member_count(const ring_t *r);
const char *ring_member_name(const ring_t *r, uint32_t member);
uint32_t ring_owner(const ring_t *r, uint32_t partition); /* member index */

/* The partition holding the first replica of hash h (see the top of this file). */
uint32_t ring_first_partition(const ring_t *r, uint64_t h);

/* The start of partition p's hash range as Riak shows it (p * 2^64/Q), for display only. */
uint64_t ring_partition_start(const ring_t *r, uint32_t p);

/* The primary preference list of hash h: min(n, Q) entries written to out[0..], in ring
 * order starting at ring_first_partition. Returns the count. */
size_t ring_preflist(const ring_t *r, uint64_t h, unsigned n, ring_pref_t *out);

/* The annotated preference list of hash h (Riak's apl): the min(n, Q) primaries of
 * ring_preflist, each replaced when its owner is down (up[owner] false; up has one flag per
 * ring member):
 *   - sloppy: by a fallback, the down primary's partition hosted by the owner of the next
 *     partition after the primaries (ring order, each used at most once, Riak's rule: a node
 *     may host a fallback beside one of its own primaries) whose owner is up;
 *   - not sloppy, or no fallback left: it stays as is (primary, owner down), and the caller
 *     finds it unreachable.
 * Up primaries come first, in ring order, then the fallbacks, then the unreachable primaries.
 * Returns the count (min(n, Q)). */
size_t ring_apl(const ring_t *r, uint64_t h, unsigned n, const bool *up, bool sloppy,
                ring_pref_t *out);

/* The ring file. ring_load: 0 with *out; RING_ENOENT if the file does not exist;
 * RING_EINVAL with a reason in err on a corrupt file. It reads format 1 (ring_save) and the
 * members and owners of format 2 (cstate_save, ring/cstate.h). ring_save writes format 1
 * atomically (temp file, fsync, rename, fsync of the directory). */
#define RING_ENOENT (-2)
#define RING_EINVAL (-22)
#define RING_EIO (-5)
int ring_load(const char *path, ring_t **out, char *err, size_t errlen);
int ring_save(const ring_t *r, const char *path, char *err, size_t errlen);

/* The RingFile container (proto/ring.proto) under both ring_save and cstate_save: one
 * implementation of the atomic write and of the XXH3 check.
 * ring_file_write: wraps the packed RingState `state` with format_version and its XXH3-64 and
 *   writes it atomically to path. 0, RING_EIO or RING_EINVAL (path too long), reason in err.
 * ring_file_read: reads path, checks the container (a known format version, the checksum)
 *   and returns the packed state (*state malloc'ed, caller frees) and its format version.
 *   0, RING_ENOENT, RING_EIO or RING_EINVAL, reason (naming the path) in err. */
#define RING_FILE_FORMAT_RING 1u   /* RingState with members and owners only */
#define RING_FILE_FORMAT_CSTATE 2u /* RingState with the cluster-state fields (cstate.h) */
int ring_file_write(const char *path, uint32_t format_version, const uint8_t *state,
                    size_t state_len, char *err, size_t errlen);
int ring_file_read(const char *path, uint32_t *format_version, uint8_t **state, size_t *len,
                   char *err, size_t errlen);

#endif
