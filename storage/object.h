/*
 * object.h — the stored object: a version vector plus one or more siblings (prefix store_).
 *
 * Siblings are immutable once built and reference counted (atomically, so objects may be
 * shared between threads), which lets the merge rules share them instead of copying bytes.
 * Invariants of every store_obj_t (checked by store_obj_check, enforced by the decoder):
 *   - siblings are in strictly increasing dot order (actor bytes, then counter);
 *   - the object's clock covers every sibling's dot (a sibling never outlives its history).
 * The two rules that decide correctness are pure functions: store_obj_coord_put (the
 * coordinating vnode's write) and store_obj_merge (replica merge). See docs/storage.md.
 */
#ifndef CAIRN_STORE_OBJECT_H
#define CAIRN_STORE_OBJECT_H

#include "storage/vclock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A borrowed byte range. */
typedef struct store_slice_s {
    const uint8_t *p;
    size_t n;
} store_slice_t;

#define STORE_SLICE(s) ((store_slice_t){(const uint8_t *)(s), sizeof(s) - 1})
#define STORE_SLICE_STR(s) ((store_slice_t){(const uint8_t *)(s), strlen(s)})

typedef struct store_pair_s {
    store_slice_t key, value;
} store_pair_t;

typedef struct store_link_s {
    store_slice_t bucket, key, tag;
} store_link_t;

/* A sibling's content (everything but its dot). As an argument every slice is borrowed;
 * inside a store_sib_t every slice points into the sibling's own allocation. */
typedef struct store_content_s {
    store_slice_t value, content_type, charset, content_encoding, vtag;
    uint32_t last_mod, last_mod_usecs;      /* wall clock of the write (Unix s + µs) */
    const store_pair_t *usermeta;
    const store_pair_t *indexes;
    const store_link_t *links;
    uint32_t n_usermeta, n_indexes, n_links;
    bool deleted;                           /* a tombstone */
} store_content_t;

typedef struct store_sib_s {
    store_dot_t dot;
    store_content_t c;
    size_t size;        /* bytes of content (the value and all metadata), for limits */
    unsigned refs;      /* atomic; the sibling is freed when it drops to zero */
} store_sib_t;

typedef struct store_obj_s {
    store_vclock_t clock;
    store_sib_t **sibs;   /* owned references, sorted by dot */
    uint32_t n_sibs;
} store_obj_t;

/* What a bucket's properties say about writes and merges (Riak's names and defaults). */
typedef struct store_props_s {
    bool allow_mult;            /* keep concurrent writes as siblings */
    bool last_write_wins;       /* a coordinated write replaces everything (loses data!) */
    store_prune_t prune;
    size_t obj_warn, obj_max;   /* bytes of content; default 5 MiB / 50 MiB */
    uint32_t sib_warn, sib_max; /* default 25 / 100 */
} store_props_t;

/* Warnings a successful write reports (bit set). */
enum { STORE_WARN_SIZE = 1u << 0, STORE_WARN_SIBLINGS = 1u << 1 };

/* Riak's defaults: default_type=true gives the `default` bucket type (allow_mult=false),
 * false gives a custom bucket type (allow_mult=true). Pruning 50/50/20 s/86400 s. */
store_props_t store_props_default(bool default_type);

/* ---------------------------------------------------------------- siblings */

/* A new sibling (refs = 1) holding a deep copy of c in one allocation, with dot `dot`.
 * Release with store_sib_unref(). */
store_sib_t *store_sib_new(const store_content_t *c, const store_dot_t *dot);
/* Adds a reference; returns s. */
store_sib_t *store_sib_ref(store_sib_t *s);
/* Drops a reference; frees on the last one. NULL is ignored. */
void store_sib_unref(store_sib_t *s);
/* Orders siblings by dot (actor bytes, then counter). */
int store_dot_cmp(const store_dot_t *a, const store_dot_t *b);
/* Byte-for-byte equal content and dot. */
bool store_sib_equal(const store_sib_t *a, const store_sib_t *b);

/* ---------------------------------------------------------------- objects */

/* An empty object (no clock entries, no siblings). Free with store_obj_free(). */
store_obj_t *store_obj_new(void);
/* Releases the clock and every sibling reference. NULL is ignored. */
void store_obj_free(store_obj_t *o);
/* A new object with a copy of o's clock that shares o's siblings. Free with store_obj_free. */
store_obj_t *store_obj_dup(const store_obj_t *o);
/* Appends a sibling, taking over the caller's reference. The caller restores the invariants
 * (store_obj_normalize) before using the object. */
void store_obj_add_sib(store_obj_t *o, store_sib_t *s);
/* Sorts siblings by dot, drops duplicate dots, and raises the clock to cover every dot. */
void store_obj_normalize(store_obj_t *o);
/* 0 if both invariants hold, STORE_EDECODE otherwise. */
int store_obj_check(const store_obj_t *o);
/* Same clock, same siblings (dots and content). */
bool store_obj_equal(const store_obj_t *a, const store_obj_t *b);
/* True when o has siblings and every one is deleted. A tombstone keeps its clock. */
bool store_obj_is_tombstone(const store_obj_t *o);
/* Sum of the siblings' content sizes (what the object-size limit counts). */
size_t store_obj_size(const store_obj_t *o);

/* The one sibling a client of an allow_mult=false bucket sees: the newest by last-modified
 * (seconds, then µs), ties broken by the larger dot. Deterministic for a given set of
 * siblings. Borrowed pointer into o; NULL if o has no siblings. */
const store_sib_t *store_obj_resolve(const store_obj_t *o);

/* ---------------------------------------------------------------- the two rules */

/* Who coordinates a write: the vnode's actor, the time (Unix s), and a counter floor. The
 * floor comes from the vnode's own monotonic write sequence (persisted by lease); it keeps a
 * counter from restarting after pruning dropped the actor's entry, which would reuse a dot.
 * 0 means "no floor" (safe only while pruning cannot drop this actor). */
typedef struct store_writer_s {
    store_actor_t actor;
    uint32_t now;
    uint64_t counter_floor;
} store_writer_t;

/* Coordinated write at the vnode w->actor:
 *   stored  the object this vnode holds (NULL when not found); borrowed.
 *   ctx     the client's context clock (NULL or empty when the client sent none); borrowed.
 *   c       the new content; copied.
 * Produces *out (caller frees with store_obj_free): clock = stored ∨ ctx with the actor's
 * counter advanced past both (and to at least counter_floor); the new sibling gets dot
 * (actor, that counter); stored siblings whose dots ctx covers are dropped, the others stay.
 * allow_mult=false keeps one sibling of the survivors by store_obj_resolve's rule (they are
 * all concurrent with the new write, so no causally newer write is ever discarded);
 * last_write_wins=true keeps only the new sibling (the documented exception: it discards
 * concurrent writes). The clock is then pruned per props, never an actor that owns a dot.
 * Fails with STORE_ETOOBIG / STORE_ESIBLINGS (nothing produced) beyond props' hard limits,
 * STORE_EINVAL on bad arguments; sets *warn (may be NULL) to STORE_WARN_* bits. */
int store_obj_coord_put(const store_obj_t *stored, const store_vclock_t *ctx,
                        const store_content_t *c, const store_writer_t *w,
                        const store_props_t *props, store_obj_t **out, unsigned *warn);

/* Replica merge (handoff, read repair, replication): *out gets clock a ∨ b and every sibling
 * of either side that the other side holds too or whose dot the other side's clock does not
 * cover. Commutative, associative and idempotent; never refuses (limits apply at the
 * coordinator) but sets *warn (may be NULL). a or b may be NULL (not found). Borrowed inputs;
 * *out is new (caller frees with store_obj_free). */
void store_obj_merge(const store_obj_t *a, const store_obj_t *b, const store_props_t *props,
                     store_obj_t **out, unsigned *warn);

/* ---------------------------------------------------------------- codec (codec.c) */

/* Size limits for decoding untrusted bytes. */
#define STORE_DECODE_MAX_SIBS 100000u

/* Encodes o canonically. *out is malloc'ed (caller frees with free()). */
int store_obj_encode(const store_obj_t *o, uint8_t **out, size_t *len);
/* Parses bytes from store_obj_encode. Fails with STORE_EDECODE (nothing allocated) on
 * truncated, malformed, non-canonical or inconsistent input. *out: free with store_obj_free. */
int store_obj_decode(const uint8_t *buf, size_t len, store_obj_t **out);

#endif
