/*
 * vclock.c — version vector operations (increment, compare, merge, prune).
 * Invariant kept by every function: entries strictly increasing by actor, counters >= 1.
 * Comparisons walk both sorted arrays once, so they cost O(n + m) and never allocate.
 */
#include "storage/vclock.h"

#include "storage/err.h"

#include <string.h>

store_actor_t store_actor_make(uint64_t node_id, uint32_t partition, uint32_t epoch)
{
    store_actor_t a;
    for (int i = 0; i < 8; i++)
        a.b[i] = (uint8_t)(node_id >> (56 - 8 * i));
    for (int i = 0; i < 4; i++) {
        a.b[8 + i] = (uint8_t)(partition >> (24 - 8 * i));
        a.b[12 + i] = (uint8_t)(epoch >> (24 - 8 * i));
    }
    return a;
}

int store_actor_cmp(const store_actor_t *a, const store_actor_t *b)
{
    return memcmp(a->b, b->b, STORE_ACTOR_LEN);
}

void store_vclock_clear(store_vclock_t *vc)
{
    store_free(vc->e);
    vc->e = NULL;
    vc->n = vc->cap = 0;
}

static void reserve(store_vclock_t *vc, uint32_t n)
{
    if (n <= vc->cap)
        return;
    uint32_t cap = vc->cap ? vc->cap : 4;
    while (cap < n)
        cap *= 2;
    vc->e = store_realloc(vc->e, (size_t)cap * sizeof *vc->e);
    vc->cap = cap;
}

void store_vclock_copy(store_vclock_t *dst, const store_vclock_t *src)
{
    if (dst == src)
        return;
    dst->n = 0;
    reserve(dst, src->n);
    if (src->n)
        memcpy(dst->e, src->e, (size_t)src->n * sizeof *src->e);
    dst->n = src->n;
}

/* Index of actor, or -(insertion point) - 1 when absent. */
static long find(const store_vclock_t *vc, const store_actor_t *actor)
{
    long lo = 0, hi = (long)vc->n - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = store_actor_cmp(&vc->e[mid].actor, actor);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

uint64_t store_vclock_get(const store_vclock_t *vc, const store_actor_t *actor)
{
    long i = find(vc, actor);
    return i >= 0 ? vc->e[i].counter : 0;
}

static store_vc_entry_t *slot(store_vclock_t *vc, const store_actor_t *actor)
{
    long i = find(vc, actor);
    if (i >= 0)
        return &vc->e[i];
    size_t at = (size_t)(-i - 1);
    reserve(vc, vc->n + 1);
    memmove(&vc->e[at + 1], &vc->e[at], (vc->n - at) * sizeof *vc->e);
    vc->n++;
    vc->e[at].actor = *actor;
    vc->e[at].counter = 0;
    vc->e[at].ts = 0;
    return &vc->e[at];
}

uint64_t store_vclock_increment(store_vclock_t *vc, const store_actor_t *actor, uint32_t ts)
{
    store_vc_entry_t *e = slot(vc, actor);
    e->counter++;
    e->ts = ts;
    return e->counter;
}

void store_vclock_raise(store_vclock_t *vc, const store_actor_t *actor, uint64_t counter,
                        uint32_t ts)
{
    if (counter == 0 || store_vclock_get(vc, actor) >= counter)
        return;
    store_vc_entry_t *e = slot(vc, actor);
    e->counter = counter;
    e->ts = ts;
}

bool store_vclock_descends(const store_vclock_t *a, const store_vclock_t *b)
{
    uint32_t i = 0, j = 0;
    while (j < b->n) {
        if (i == a->n)
            return false;
        int c = store_actor_cmp(&a->e[i].actor, &b->e[j].actor);
        if (c < 0) {
            i++;
        } else if (c > 0) {
            return false; /* b has an actor a never saw */
        } else {
            if (a->e[i].counter < b->e[j].counter)
                return false;
            i++;
            j++;
        }
    }
    return true;
}

bool store_vclock_dominates(const store_vclock_t *a, const store_vclock_t *b)
{
    return store_vclock_descends(a, b) && !store_vclock_descends(b, a);
}

bool store_vclock_equal(const store_vclock_t *a, const store_vclock_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->e[i].counter != b->e[i].counter ||
            store_actor_cmp(&a->e[i].actor, &b->e[i].actor) != 0)
            return false;
    return true;
}

bool store_vclock_concurrent(const store_vclock_t *a, const store_vclock_t *b)
{
    return !store_vclock_descends(a, b) && !store_vclock_descends(b, a);
}

bool store_vclock_covers(const store_vclock_t *vc, const store_dot_t *dot)
{
    return store_vclock_get(vc, &dot->actor) >= dot->counter;
}

void store_vclock_merge(store_vclock_t *dst, const store_vclock_t *src)
{
    if (src->n == 0 || dst == src)
        return;
    /* Merge into a fresh array from the back would need the final length; two passes keep
     * it simple: count the union, then fill from the end so dst can be extended in place. */
    uint32_t i = 0, j = 0, total = 0;
    while (i < dst->n || j < src->n) {
        int c = i == dst->n ? 1 : j == src->n ? -1
                                               : store_actor_cmp(&dst->e[i].actor, &src->e[j].actor);
        i += c <= 0;
        j += c >= 0;
        total++;
    }
    reserve(dst, total);
    long a = (long)dst->n - 1, b = (long)src->n - 1, out = (long)total - 1;
    while (b >= 0) {
        int c = a < 0 ? -1 : store_actor_cmp(&dst->e[a].actor, &src->e[b].actor);
        if (c > 0) {
            dst->e[out--] = dst->e[a--];
        } else if (c < 0) {
            dst->e[out--] = src->e[b--];
        } else {
            store_vc_entry_t m = dst->e[a];
            const store_vc_entry_t *s = &src->e[b];
            if (s->counter > m.counter || (s->counter == m.counter && s->ts > m.ts)) {
                m.counter = s->counter;
                m.ts = s->ts;
            }
            dst->e[out--] = m;
            a--;
            b--;
        }
    }
    /* the remaining dst entries [0..a] are already in place (out == a) */
    dst->n = total;
}

static bool kept(const store_actor_t *actor, const store_actor_t *keep, size_t n_keep)
{
    for (size_t k = 0; k < n_keep; k++)
        if (store_actor_cmp(actor, &keep[k]) == 0)
            return true;
    return false;
}

size_t store_vclock_prune(store_vclock_t *vc, uint32_t now, const store_prune_t *p,
                          const store_actor_t *keep, size_t n_keep)
{
    size_t dropped = 0;
    while (vc->n > p->small_vclock) {
        long oldest = -1;
        for (uint32_t i = 0; i < vc->n; i++) {
            if (kept(&vc->e[i].actor, keep, n_keep))
                continue;
            if (oldest < 0 || vc->e[i].ts < vc->e[oldest].ts)
                oldest = i;
        }
        if (oldest < 0)
            break;
        uint32_t ts = vc->e[oldest].ts;
        uint32_t age = now > ts ? now - ts : 0;
        if (age < p->young_vclock)
            break;
        if (!(vc->n > p->big_vclock || age > p->old_vclock))
            break;
        memmove(&vc->e[oldest], &vc->e[oldest + 1],
                (vc->n - (size_t)oldest - 1) * sizeof *vc->e);
        vc->n--;
        dropped++;
    }
    return dropped;
}
