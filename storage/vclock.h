/*
 * vclock.h — version vectors whose actors are vnode incarnations (prefix store_vclock_).
 *
 * A clock is an array of entries kept in strictly increasing actor order (memcmp of the 16
 * actor bytes), every counter >= 1. That canonical form makes every comparison a linear merge
 * and makes equal clocks encode to equal bytes. A clock owns its entry array.
 */
#ifndef CAIRN_STORE_VCLOCK_H
#define CAIRN_STORE_VCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ACTOR_LEN 16

/* A vnode incarnation: node id (u64), partition index (u32), epoch (u32), big-endian, so that
 * a new epoch (after possible data loss) is a new actor that never reuses old counters. */
typedef struct store_actor_s {
    uint8_t b[STORE_ACTOR_LEN];
} store_actor_t;

typedef struct store_vc_entry_s {
    store_actor_t actor;
    uint64_t counter;   /* writes this actor coordinated, >= 1 */
    uint32_t ts;        /* Unix seconds of its latest write; used only for pruning */
} store_vc_entry_t;

typedef struct store_vclock_s {
    store_vc_entry_t *e;  /* owned; sorted by actor, no duplicates */
    uint32_t n;
    uint32_t cap;
} store_vclock_t;

/* The write that created a sibling. Covered by a clock c iff c[actor] >= counter. */
typedef struct store_dot_s {
    store_actor_t actor;
    uint64_t counter;
} store_dot_t;

/* Pruning parameters (Riak's bucket properties, seconds). */
typedef struct store_prune_s {
    uint32_t small_vclock, big_vclock;
    uint32_t young_vclock, old_vclock;
} store_prune_t;

#define STORE_VCLOCK_INIT {NULL, 0, 0}

store_actor_t store_actor_make(uint64_t node_id, uint32_t partition, uint32_t epoch);
int store_actor_cmp(const store_actor_t *a, const store_actor_t *b);

/* Frees the entries; vc is empty (and reusable) afterwards. */
void store_vclock_clear(store_vclock_t *vc);
/* dst := a deep copy of src. dst must be initialised; its old entries are freed. */
void store_vclock_copy(store_vclock_t *dst, const store_vclock_t *src);

uint64_t store_vclock_get(const store_vclock_t *vc, const store_actor_t *actor);
/* Adds one to actor's counter (creating the entry) and stamps ts; returns the new counter. */
uint64_t store_vclock_increment(store_vclock_t *vc, const store_actor_t *actor, uint32_t ts);
/* Sets actor's counter to at least `counter` (ts taken when raised). */
void store_vclock_raise(store_vclock_t *vc, const store_actor_t *actor, uint64_t counter,
                        uint32_t ts);

/* a descends b: every event b saw, a saw too (a >= b pointwise). Everything descends {}. */
bool store_vclock_descends(const store_vclock_t *a, const store_vclock_t *b);
/* a strictly newer than b. */
bool store_vclock_dominates(const store_vclock_t *a, const store_vclock_t *b);
bool store_vclock_equal(const store_vclock_t *a, const store_vclock_t *b);
/* Neither descends the other. */
bool store_vclock_concurrent(const store_vclock_t *a, const store_vclock_t *b);
bool store_vclock_covers(const store_vclock_t *vc, const store_dot_t *dot);

/* dst := pointwise max(dst, src); for equal counters the later timestamp is kept. */
void store_vclock_merge(store_vclock_t *dst, const store_vclock_t *src);

/* Riak's pruning: while the clock is longer than small_vclock and its oldest entry is not
 * younger than young_vclock, drop the oldest entry if the clock is longer than big_vclock or
 * that entry is older than old_vclock. Entries whose actor is in keep[0..n_keep) are never
 * dropped (they hold live siblings' dots). Returns how many entries were dropped. */
size_t store_vclock_prune(store_vclock_t *vc, uint32_t now, const store_prune_t *p,
                          const store_actor_t *keep, size_t n_keep);

/* The opaque client context: *out is malloc'ed (caller frees with free()), canonical bytes. */
int store_vclock_encode(const store_vclock_t *vc, uint8_t **out, size_t *len);
/* Parses bytes from store_vclock_encode(); an empty input is the empty clock. Fails with
 * STORE_EDECODE (out untouched) on anything malformed or not canonical. On success *out
 * (initialised by the caller) is replaced. */
int store_vclock_decode(const uint8_t *buf, size_t len, store_vclock_t *out);

#endif
