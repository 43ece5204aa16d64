/*
 * cache.c — the object cache (storage/cache.h): a chained hash table of entries, each holding
 * its (type, bucket, key) and value bytes in one allocation, on a least-recently-used list.
 * The budget is charged per entry (bookkeeping, bytes, and an allowance for the allocator and
 * the table slot) with relaxed atomics: caches of different vnodes can overshoot the limit by
 * at most one entry each at the same instant.
 */
#include "storage/cache.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CACHE_MIN_BUCKETS 64u
#define ENTRY_OVERHEAD 32u        /* malloc's rounding, two table slots */
#define MAX_VALUE_SHARE 64u       /* a value above limit/64 bytes is never cached */
#define DATA_ROUND 32u            /* data[] is allocated in steps of this: a new version of
                                   * an object is usually the same size, give or take a few
                                   * bytes of clock, and is then written in place */

typedef struct entry_s {
    struct entry_s *chain;        /* next in the same table bucket */
    struct entry_s *older, *newer;/* the LRU list */
    uint64_t hash;
    uint32_t tlen, blen, klen;
    uint32_t vlen;
    uint32_t cap;                 /* bytes allocated for data[] (a rewrite that fits stays) */
    uint8_t data[];               /* type, bucket, key, value */
} entry_t;

struct store_cache_s {
    store_cache_budget_t *budget;
    entry_t **table;
    uint32_t nbuckets;            /* power of two */
    size_t count;
    uint64_t bytes;               /* charged to the budget */
    entry_t *newest, *oldest;
};

static uint64_t key_hash(const store_key_t *k)
{
    uint64_t h = XXH3_64bits(k->type.p, k->type.n);
    h = XXH3_64bits_withSeed(k->bucket.p, k->bucket.n, h);
    return XXH3_64bits_withSeed(k->key.p, k->key.n, h);
}

/* What an entry with cap bytes of data[] costs the budget (taken at insert, given back at
 * removal). */
static uint64_t charge_for(size_t cap)
{
    return sizeof(entry_t) + cap + ENTRY_OVERHEAD;
}

static bool entry_is(const entry_t *e, uint64_t h, const store_key_t *k)
{
    if (e->hash != h || e->tlen != k->type.n || e->blen != k->bucket.n || e->klen != k->key.n)
        return false;
    const uint8_t *p = e->data;
    return memcmp(p, k->type.p, e->tlen) == 0 &&
           memcmp(p + e->tlen, k->bucket.p, e->blen) == 0 &&
           memcmp(p + e->tlen + e->blen, k->key.p, e->klen) == 0;
}

static entry_t **slot_of(store_cache_t *c, uint64_t h)
{
    return &c->table[h & (c->nbuckets - 1)];
}

static void lru_unlink(store_cache_t *c, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_push_newest(store_cache_t *c, entry_t *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* Makes e (on the list) the most recently used. */
static void lru_touch(store_cache_t *c, entry_t *e)
{
    if (c->newest != e) {
        lru_unlink(c, e);
        lru_push_newest(c, e);
    }
}

/* Unlinks e from its bucket and the LRU list, frees it and returns its bytes. */
static void entry_remove(store_cache_t *c, entry_t *e)
{
    entry_t **pp = slot_of(c, e->hash);
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(c, e);
    uint64_t charge = charge_for(e->cap);
    c->count--;
    c->bytes -= charge;
    atomic_fetch_sub_explicit(&c->budget->used, charge, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->budget->entries, 1, memory_order_relaxed);
    free(e);
}

static entry_t *find(store_cache_t *c, uint64_t h, const store_key_t *k)
{
    for (entry_t *e = *slot_of(c, h); e; e = e->chain)
        if (entry_is(e, h, k))
            return e;
    return NULL;
}

/* Doubles the table when it holds more than one entry per two buckets: every hop along a
 * chain is a cache miss (no-op when out of memory: the chains just get longer). */
static void maybe_grow(store_cache_t *c)
{
    if (c->count * 2 < c->nbuckets)
        return;
    uint32_t n = c->nbuckets * 2;
    entry_t **t = calloc(n, sizeof *t);
    if (!t)
        return;
    for (uint32_t i = 0; i < c->nbuckets; i++) {
        for (entry_t *e = c->table[i], *next; e; e = next) {
            next = e->chain;
            entry_t **s = &t[e->hash & (n - 1)];
            e->chain = *s;
            *s = e;
        }
    }
    free(c->table);
    c->table = t;
    c->nbuckets = n;
}

store_cache_t *store_cache_new(store_cache_budget_t *budget)
{
    if (!budget || budget->limit == 0)
        return NULL;
    store_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->table = calloc(CACHE_MIN_BUCKETS, sizeof *c->table);
    if (!c->table) {
        free(c);
        return NULL;
    }
    c->budget = budget;
    c->nbuckets = CACHE_MIN_BUCKETS;
    return c;
}

void store_cache_clear(store_cache_t *c)
{
    while (c && c->oldest)
        entry_remove(c, c->oldest);
}

void store_cache_free(store_cache_t *c)
{
    if (!c)
        return;
    store_cache_clear(c);
    free(c->table);
    free(c);
}

bool store_cache_get(store_cache_t *c, const store_key_t *k, store_val_t *out)
{
    if (!c)
        return false;
    entry_t *e = find(c, key_hash(k), k);
    if (!e) {
        atomic_fetch_add_explicit(&c->budget->misses, 1, memory_order_relaxed);
        return false;
    }
    uint8_t *copy = malloc(e->vlen ? e->vlen : 1);
    if (!copy)
        return false; /* the backend will answer */
    memcpy(copy, e->data + e->tlen + e->blen + e->klen, e->vlen);
    lru_touch(c, e);
    atomic_fetch_add_explicit(&c->budget->hits, 1, memory_order_relaxed);
    *out = (store_val_t){copy, e->vlen, free};
    return true;
}

void store_cache_erase(store_cache_t *c, const store_key_t *k)
{
    if (!c)
        return;
    entry_t *e = find(c, key_hash(k), k);
    if (e)
        entry_remove(c, e);
}

/* Writes val as e's value (it fits in e->cap). */
static void entry_set_value(entry_t *e, const void *val, size_t n)
{
    if (n)
        memcpy(e->data + e->tlen + e->blen + e->klen, val, n);
    e->vlen = (uint32_t)n;
}

void store_cache_put(store_cache_t *c, const store_key_t *k, const void *val, size_t n)
{
    if (!c)
        return;
    store_cache_budget_t *b = c->budget;
    uint64_t h = key_hash(k);
    entry_t *old = find(c, h, k);
    size_t klen = k->type.n + k->bucket.n + k->key.n;
    bool cacheable = n <= b->limit / MAX_VALUE_SHARE && n <= UINT32_MAX / 2 &&
                     klen <= UINT32_MAX / 2;
    if (old && cacheable && klen + n <= old->cap) {
        entry_set_value(old, val, n);
        lru_touch(c, old);
        return;
    }
    if (old)
        entry_remove(c, old);
    if (!cacheable)
        return;
    size_t cap = (klen + n + DATA_ROUND - 1) / DATA_ROUND * DATA_ROUND;
    uint64_t charge = charge_for(cap);
    while (atomic_load_explicit(&b->used, memory_order_relaxed) + charge > b->limit) {
        if (!c->oldest)
            return; /* nothing of ours to give back: not cached */
        entry_remove(c, c->oldest);
        atomic_fetch_add_explicit(&b->evictions, 1, memory_order_relaxed);
    }
    entry_t *e = malloc(sizeof *e + cap);
    if (!e)
        return;
    e->hash = h;
    e->tlen = (uint32_t)k->type.n;
    e->blen = (uint32_t)k->bucket.n;
    e->klen = (uint32_t)k->key.n;
    e->cap = (uint32_t)cap;
    uint8_t *p = e->data;
    memcpy(p, k->type.p, e->tlen);
    memcpy(p += e->tlen, k->bucket.p, e->blen);
    memcpy(p + e->blen, k->key.p, e->klen);
    entry_set_value(e, val, n);
    maybe_grow(c);
    entry_t **s = slot_of(c, h);
    e->chain = *s;
    *s = e;
    lru_push_newest(c, e);
    c->count++;
    c->bytes += charge;
    atomic_fetch_add_explicit(&b->used, charge, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->entries, 1, memory_order_relaxed);
}

size_t store_cache_count(const store_cache_t *c) { return c ? c->count : 0; }
uint64_t store_cache_bytes(const store_cache_t *c) { return c ? c->bytes : 0; }
