/*
 * cache.h — the object cache: recently used stored values of one partition, in memory, in
 * front of its backend (prefix store_cache_).
 *
 * Why: a LevelDB get that is answered from the memtable walks a skiplist whose nodes are
 * spread over megabytes of arena, about two cache misses per level; on the node benchmark
 * that walk was a quarter to a third of the server's CPU per get, and every put pays it
 * again for its read-before-write. A hit here is one hash probe.
 *
 * Coherence is the owner's job: the cache holds exactly what the backend holds only if every
 * write to the backend goes through the owner, which updates the cache after a successful
 * write (store_cache_put) and drops the key after a failed or uncertain one
 * (store_cache_erase). In Cairn the owner is the partition's vnode, the only writer of its
 * backend (node/vnode.c). Folds read the backend directly and never see the cache.
 *
 * Memory: all caches of a node share one byte budget (store_cache_budget_t). Each entry
 * counts its key, its value and its bookkeeping. An insert that would take the node over the
 * budget first evicts this cache's least recently used entries; when this cache has none
 * left to give, the value is simply not cached. Values larger than budget/64 are never
 * cached. A budget of 0 turns caching off.
 *
 * Threads: a cache is used by one thread at a time (its owner; the runtime orders a
 * process's turns). The budget is shared and atomic.
 */
#ifndef CAIRN_STORE_CACHE_H
#define CAIRN_STORE_CACHE_H

#include "storage/backend.h"
#include "storage/key.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Shared by every cache of a node; must outlive them. Set limit before the first cache is
 * created; the counters are for stats. */
typedef struct store_cache_budget_s {
    uint64_t limit;               /* bytes; 0: caching off */
    _Atomic uint64_t used;        /* bytes held by all caches */
    _Atomic uint64_t entries;     /* entries held by all caches */
    _Atomic uint64_t hits, misses, evictions;
} store_cache_budget_t;

typedef struct store_cache_s store_cache_t;

/* A new empty cache charged to budget (borrowed). NULL when budget->limit is 0. */
store_cache_t *store_cache_new(store_cache_budget_t *budget);
/* Frees every entry and gives its bytes back to the budget. NULL is fine. */
void store_cache_free(store_cache_t *c);

/* On a hit: true, with *out a copy of the cached value (malloc'ed; the caller releases it
 * with store_val_release). On a miss: false, *out untouched. Counts a hit or a miss. A NULL
 * cache always misses (and counts nothing). */
bool store_cache_get(store_cache_t *c, const store_key_t *k, store_val_t *out);
/* Caches a copy of val[0..n) under k, replacing what was cached for k. */
void store_cache_put(store_cache_t *c, const store_key_t *k, const void *val, size_t n);
/* Forgets k (nothing happens when it is not cached). */
void store_cache_erase(store_cache_t *c, const store_key_t *k);
/* Forgets everything (the backend was replaced or wiped). */
void store_cache_clear(store_cache_t *c);

/* Entries and bytes this cache holds (tests, stats). */
size_t store_cache_count(const store_cache_t *c);
uint64_t store_cache_bytes(const store_cache_t *c);

#endif
