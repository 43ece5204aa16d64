/*
 * object.c — sibling and object lifecycle, invariants, and the allow_mult=false resolver.
 * A sibling is one allocation (header, pair/link arrays, then every byte field) that never
 * changes after store_sib_new; an object owns one reference to each of its siblings.
 */
#include "storage/object.h"

#include "storage/err.h"

#include <stdlib.h>
#include <string.h>

store_props_t store_props_default(bool default_type)
{
    store_props_t p = {
        .allow_mult = !default_type,
        .last_write_wins = false,
        .prune = {.small_vclock = 50, .big_vclock = 50, .young_vclock = 20, .old_vclock = 86400},
        .obj_warn = 5u << 20,
        .obj_max = 50u << 20,
        .sib_warn = 25,
        .sib_max = 100,
    };
    return p;
}

/* ---------------------------------------------------------------- siblings */

static size_t content_bytes(const store_content_t *c)
{
    size_t n = c->value.n + c->content_type.n + c->charset.n + c->content_encoding.n + c->vtag.n;
    for (uint32_t i = 0; i < c->n_usermeta; i++)
        n += c->usermeta[i].key.n + c->usermeta[i].value.n;
    for (uint32_t i = 0; i < c->n_indexes; i++)
        n += c->indexes[i].key.n + c->indexes[i].value.n;
    for (uint32_t i = 0; i < c->n_links; i++)
        n += c->links[i].bucket.n + c->links[i].key.n + c->links[i].tag.n;
    return n;
}

static store_slice_t put_bytes(uint8_t **cursor, store_slice_t src)
{
    store_slice_t s = {*cursor, src.n};
    if (src.n)
        memcpy(*cursor, src.p, src.n);
    else
        s.p = (const uint8_t *)"";
    *cursor += src.n;
    return s;
}

store_sib_t *store_sib_new(const store_content_t *c, const store_dot_t *dot)
{
    size_t bytes = content_bytes(c);
    size_t arrays = ((size_t)c->n_usermeta + c->n_indexes) * sizeof(store_pair_t) +
                    (size_t)c->n_links * sizeof(store_link_t);
    store_sib_t *s = store_malloc(sizeof *s + arrays + bytes);
    store_pair_t *um = (store_pair_t *)(s + 1);
    store_pair_t *ix = um + c->n_usermeta;
    store_link_t *ln = (store_link_t *)(ix + c->n_indexes);
    uint8_t *cur = (uint8_t *)(ln + c->n_links);

    s->dot = *dot;
    s->size = bytes;
    s->refs = 1;
    s->c = *c;
    s->c.value = put_bytes(&cur, c->value);
    s->c.content_type = put_bytes(&cur, c->content_type);
    s->c.charset = put_bytes(&cur, c->charset);
    s->c.content_encoding = put_bytes(&cur, c->content_encoding);
    s->c.vtag = put_bytes(&cur, c->vtag);
    for (uint32_t i = 0; i < c->n_usermeta; i++) {
        um[i].key = put_bytes(&cur, c->usermeta[i].key);
        um[i].value = put_bytes(&cur, c->usermeta[i].value);
    }
    for (uint32_t i = 0; i < c->n_indexes; i++) {
        ix[i].key = put_bytes(&cur, c->indexes[i].key);
        ix[i].value = put_bytes(&cur, c->indexes[i].value);
    }
    for (uint32_t i = 0; i < c->n_links; i++) {
        ln[i].bucket = put_bytes(&cur, c->links[i].bucket);
        ln[i].key = put_bytes(&cur, c->links[i].key);
        ln[i].tag = put_bytes(&cur, c->links[i].tag);
    }
    s->c.usermeta = c->n_usermeta ? um : NULL;
    s->c.indexes = c->n_indexes ? ix : NULL;
    s->c.links = c->n_links ? ln : NULL;
    return s;
}

store_sib_t *store_sib_ref(store_sib_t *s)
{
    __atomic_fetch_add(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void store_sib_unref(store_sib_t *s)
{
    /* acq_rel: the thread that frees must see every other holder's reads finished */
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        store_free(s);
}

int store_dot_cmp(const store_dot_t *a, const store_dot_t *b)
{
    int c = store_actor_cmp(&a->actor, &b->actor);
    if (c)
        return c;
    return a->counter < b->counter ? -1 : a->counter > b->counter;
}

static bool slice_eq(store_slice_t a, store_slice_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool pairs_eq(const store_pair_t *a, const store_pair_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!slice_eq(a[i].key, b[i].key) || !slice_eq(a[i].value, b[i].value))
            return false;
    return true;
}

bool store_sib_equal(const store_sib_t *a, const store_sib_t *b)
{
    const store_content_t *x = &a->c, *y = &b->c;
    if (a == b)
        return true;
    if (store_dot_cmp(&a->dot, &b->dot) || x->last_mod != y->last_mod ||
        x->last_mod_usecs != y->last_mod_usecs || x->deleted != y->deleted ||
        x->n_usermeta != y->n_usermeta || x->n_indexes != y->n_indexes ||
        x->n_links != y->n_links)
        return false;
    if (!slice_eq(x->value, y->value) || !slice_eq(x->content_type, y->content_type) ||
        !slice_eq(x->charset, y->charset) || !slice_eq(x->content_encoding, y->content_encoding) ||
        !slice_eq(x->vtag, y->vtag))
        return false;
    if (!pairs_eq(x->usermeta, y->usermeta, x->n_usermeta) ||
        !pairs_eq(x->indexes, y->indexes, x->n_indexes))
        return false;
    for (uint32_t i = 0; i < x->n_links; i++)
        if (!slice_eq(x->links[i].bucket, y->links[i].bucket) ||
            !slice_eq(x->links[i].key, y->links[i].key) ||
            !slice_eq(x->links[i].tag, y->links[i].tag))
            return false;
    return true;
}

/* ---------------------------------------------------------------- objects */

store_obj_t *store_obj_new(void)
{
    return store_calloc(1, sizeof(store_obj_t));
}

void store_obj_free(store_obj_t *o)
{
    if (!o)
        return;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        store_sib_unref(o->sibs[i]);
    store_free(o->sibs);
    store_vclock_clear(&o->clock);
    store_free(o);
}

store_obj_t *store_obj_dup(const store_obj_t *o)
{
    store_obj_t *d = store_obj_new();
    store_vclock_copy(&d->clock, &o->clock);
    for (uint32_t i = 0; i < o->n_sibs; i++)
        store_obj_add_sib(d, store_sib_ref(o->sibs[i]));
    return d;
}

void store_obj_add_sib(store_obj_t *o, store_sib_t *s)
{
    /* grow in powers of two: capacity is implied by n_sibs, so every object's sibs array
     * must come from this function */
    uint32_t n = o->n_sibs;
    if ((n & (n - 1)) == 0)
        o->sibs = store_realloc(o->sibs, (n ? 2 * (size_t)n : 1) * sizeof *o->sibs);
    o->sibs[o->n_sibs++] = s;
}

static int sib_cmp(const void *a, const void *b)
{
    const store_sib_t *x = *(store_sib_t *const *)a, *y = *(store_sib_t *const *)b;
    return store_dot_cmp(&x->dot, &y->dot);
}

void store_obj_normalize(store_obj_t *o)
{
    if (o->n_sibs > 1)
        qsort(o->sibs, o->n_sibs, sizeof *o->sibs, sib_cmp);
    uint32_t w = 0;
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        if (w && store_dot_cmp(&o->sibs[w - 1]->dot, &o->sibs[i]->dot) == 0) {
            store_sib_unref(o->sibs[i]);
            continue;
        }
        o->sibs[w++] = o->sibs[i];
    }
    o->n_sibs = w;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        store_vclock_raise(&o->clock, &o->sibs[i]->dot.actor, o->sibs[i]->dot.counter,
                           o->sibs[i]->c.last_mod);
}

int store_obj_check(const store_obj_t *o)
{
    for (uint32_t i = 1; i < o->clock.n; i++)
        if (store_actor_cmp(&o->clock.e[i - 1].actor, &o->clock.e[i].actor) >= 0)
            return STORE_EDECODE;
    for (uint32_t i = 0; i < o->clock.n; i++)
        if (o->clock.e[i].counter == 0)
            return STORE_EDECODE;
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        if (i && store_dot_cmp(&o->sibs[i - 1]->dot, &o->sibs[i]->dot) >= 0)
            return STORE_EDECODE;
        if (o->sibs[i]->dot.counter == 0 || !store_vclock_covers(&o->clock, &o->sibs[i]->dot))
            return STORE_EDECODE;
    }
    return 0;
}

bool store_obj_equal(const store_obj_t *a, const store_obj_t *b)
{
    if (!store_vclock_equal(&a->clock, &b->clock) || a->n_sibs != b->n_sibs)
        return false;
    for (uint32_t i = 0; i < a->n_sibs; i++)
        if (!store_sib_equal(a->sibs[i], b->sibs[i]))
            return false;
    return true;
}

bool store_obj_is_tombstone(const store_obj_t *o)
{
    if (o->n_sibs == 0)
        return false;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (!o->sibs[i]->c.deleted)
            return false;
    return true;
}

size_t store_obj_size(const store_obj_t *o)
{
    size_t n = 0;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        n += o->sibs[i]->size;
    return n;
}

/* > 0 when a should win over b under allow_mult=false. */
static int newer(const store_sib_t *a, const store_sib_t *b)
{
    if (a->c.last_mod != b->c.last_mod)
        return a->c.last_mod > b->c.last_mod ? 1 : -1;
    if (a->c.last_mod_usecs != b->c.last_mod_usecs)
        return a->c.last_mod_usecs > b->c.last_mod_usecs ? 1 : -1;
    return store_dot_cmp(&a->dot, &b->dot);
}

const store_sib_t *store_obj_resolve(const store_obj_t *o)
{
    const store_sib_t *best = NULL;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (!best || newer(o->sibs[i], best) > 0)
            best = o->sibs[i];
    return best;
}
