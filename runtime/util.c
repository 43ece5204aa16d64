/*
 * util.c — the runtime's allocation wrappers (abort on out-of-memory: server policy), the
 * spinlock's slow path, and a small open-addressing hash map keyed by two u64 words.
 */
#include "runtime/rt_internal.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "cairn: out of memory allocating %zu bytes\n", n);
    abort();
}

void *rt__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *rt__xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        oom(n * sz);
    return p;
}

void *rt__xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *rt__xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(rt__xmalloc(n), s, n);
}

void rt__spin_lock_slow(rt_spin_t *l)
{
    for (unsigned spins = 0;; spins++) {
        while (atomic_load_explicit(&l->v, memory_order_relaxed) != 0) {
            if (spins++ < 200)
                rt__cpu_relax();
            else
                sched_yield();
        }
        if (atomic_exchange_explicit(&l->v, 1, memory_order_acquire) == 0)
            return;
    }
}

/* ------------------------------------------------------------------ hash map */

static inline uint64_t hkey_hash(rt_hkey_t k)
{
    uint64_t h = k.a * 0x9E3779B97F4A7C15ull ^ (k.b + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static inline bool hkey_empty(rt_hkey_t k) { return k.a == 0 && k.b == 0; }
static inline bool hkey_eq(rt_hkey_t x, rt_hkey_t y) { return x.a == y.a && x.b == y.b; }

rt_hent_t *rt__hmap_get(rt_hmap_t *m, rt_hkey_t k)
{
    if (m->n == 0)
        return NULL;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)hkey_hash(k) & mask;; i = (i + 1) & mask) {
        rt_hent_t *e = &m->t[i];
        if (hkey_empty(e->k))
            return NULL;
        if (hkey_eq(e->k, k))
            return e;
    }
}

static void hmap_grow(rt_hmap_t *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 4;
    rt_hent_t *old = m->t;
    uint32_t ocap = m->cap;
    m->t = rt__xcalloc(ncap, sizeof *m->t);
    m->cap = ncap;
    for (uint32_t i = 0; i < ocap; i++) {
        if (hkey_empty(old[i].k))
            continue;
        uint32_t j = (uint32_t)hkey_hash(old[i].k) & (ncap - 1);
        while (!hkey_empty(m->t[j].k))
            j = (j + 1) & (ncap - 1);
        m->t[j] = old[i];
    }
    free(old);
}

rt_hent_t *rt__hmap_put(rt_hmap_t *m, rt_hkey_t k)
{
    rt_hent_t *e = rt__hmap_get(m, k);
    if (e)
        return e;
    if ((m->n + 1) * 4 > m->cap * 3)
        hmap_grow(m);
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)hkey_hash(k) & mask;
    while (!hkey_empty(m->t[i].k))
        i = (i + 1) & mask;
    e = &m->t[i];
    memset(e, 0, sizeof *e);
    e->k = k;
    m->n++;
    return e;
}

bool rt__hmap_del(rt_hmap_t *m, rt_hkey_t k, rt_hent_t *out)
{
    rt_hent_t *e = rt__hmap_get(m, k);
    if (!e)
        return false;
    if (out)
        *out = *e;
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)(e - m->t);
    /* Backward-shift: move later entries of the probe run into the hole. */
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (hkey_empty(m->t[j].k))
            break;
        uint32_t home = (uint32_t)hkey_hash(m->t[j].k) & mask;
        /* Entry j may move to i if its home is not in the cyclic range (i, j]. */
        bool in_range = (i < j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->t[i] = m->t[j];
            i = j;
        }
    }
    memset(&m->t[i], 0, sizeof m->t[i]);
    m->n--;
    return true;
}

void rt__hmap_free(rt_hmap_t *m)
{
    free(m->t);
    m->t = NULL;
    m->cap = m->n = 0;
}
