/*
 * merge.c — the two rules that decide correctness: the coordinated write and replica merge.
 * Both are pure: inputs are borrowed and never changed, the result is a new object that
 * shares (references) the surviving siblings. Both keep the object invariants of object.h,
 * which is what makes replica merge commutative, associative and idempotent.
 */
#include "storage/object.h"

#include "storage/err.h"

static const store_vclock_t empty_clock = STORE_VCLOCK_INIT;

static unsigned check_soft(const store_obj_t *o, const store_props_t *p)
{
    unsigned warn = 0;
    if (p && store_obj_size(o) > p->obj_warn)
        warn |= STORE_WARN_SIZE;
    if (p && o->n_sibs > p->sib_warn)
        warn |= STORE_WARN_SIBLINGS;
    return warn;
}

int store_obj_coord_put(const store_obj_t *stored, const store_vclock_t *ctx,
                        const store_content_t *c, const store_writer_t *w,
                        const store_props_t *props, store_obj_t **out, unsigned *warn)
{
    if (!c || !w || !props || !out)
        return STORE_EINVAL;
    if (!ctx)
        ctx = &empty_clock;

    store_obj_t *o = store_obj_new();
    if (stored)
        store_vclock_copy(&o->clock, &stored->clock);
    store_vclock_merge(&o->clock, ctx);
    uint64_t counter = store_vclock_increment(&o->clock, &w->actor, w->now);
    if (counter < w->counter_floor) {
        store_vclock_raise(&o->clock, &w->actor, w->counter_floor, w->now);
        counter = w->counter_floor;
    }
    store_dot_t dot = {w->actor, counter};
    store_sib_t *fresh = store_sib_new(c, &dot);

    /* Survivors: stored siblings the client did not see. They are mutually concurrent and
     * concurrent with the new write (its causal past is exactly ctx). */
    if (stored && !props->last_write_wins)
        for (uint32_t i = 0; i < stored->n_sibs; i++)
            if (!store_vclock_covers(ctx, &stored->sibs[i]->dot))
                store_obj_add_sib(o, store_sib_ref(stored->sibs[i]));
    store_obj_add_sib(o, fresh);

    if (!props->allow_mult && o->n_sibs > 1) {
        store_sib_t *win = store_sib_ref((store_sib_t *)store_obj_resolve(o));
        for (uint32_t i = 0; i < o->n_sibs; i++)
            store_sib_unref(o->sibs[i]);
        o->n_sibs = 0;
        store_obj_add_sib(o, win);
    }
    store_obj_normalize(o);

    if (store_obj_size(o) > props->obj_max || o->n_sibs > props->sib_max) {
        int err = o->n_sibs > props->sib_max ? STORE_ESIBLINGS : STORE_ETOOBIG;
        store_obj_free(o);
        return err;
    }

    store_actor_t keep_small[8];
    store_actor_t *keep = o->n_sibs <= 8 ? keep_small : store_malloc(o->n_sibs * sizeof *keep);
    for (uint32_t i = 0; i < o->n_sibs; i++)
        keep[i] = o->sibs[i]->dot.actor;
    store_vclock_prune(&o->clock, w->now, &props->prune, keep, o->n_sibs);
    if (keep != keep_small)
        store_free(keep);

    if (warn)
        *warn = check_soft(o, props);
    *out = o;
    return 0;
}

/* Total order used only when two siblings carry the same dot but different bytes, which
 * cannot happen for well-formed data (a dot names one write); it keeps merge commutative
 * even then. */
static int content_cmp(const store_sib_t *a, const store_sib_t *b)
{
    const store_content_t *x = &a->c, *y = &b->c;
    if (x->value.n != y->value.n)
        return x->value.n < y->value.n ? -1 : 1;
    int c = x->value.n ? memcmp(x->value.p, y->value.p, x->value.n) : 0;
    if (c)
        return c;
    if (x->last_mod != y->last_mod)
        return x->last_mod < y->last_mod ? -1 : 1;
    if (x->last_mod_usecs != y->last_mod_usecs)
        return x->last_mod_usecs < y->last_mod_usecs ? -1 : 1;
    if (x->deleted != y->deleted)
        return x->deleted ? 1 : -1;
    return a->size < b->size ? -1 : a->size > b->size;
}

void store_obj_merge(const store_obj_t *a, const store_obj_t *b, const store_props_t *props,
                     store_obj_t **out, unsigned *warn)
{
    static const store_obj_t none = {STORE_VCLOCK_INIT, NULL, 0};
    if (!a)
        a = &none;
    if (!b)
        b = &none;

    store_obj_t *o = store_obj_new();
    store_vclock_copy(&o->clock, &a->clock);
    store_vclock_merge(&o->clock, &b->clock);

    uint32_t i = 0, j = 0;
    while (i < a->n_sibs || j < b->n_sibs) {
        store_sib_t *x = i < a->n_sibs ? a->sibs[i] : NULL;
        store_sib_t *y = j < b->n_sibs ? b->sibs[j] : NULL;
        int c = !x ? 1 : !y ? -1 : store_dot_cmp(&x->dot, &y->dot);
        if (c == 0) { /* both hold it: it survives */
            store_sib_t *keep = (x == y || store_sib_equal(x, y) || content_cmp(x, y) <= 0) ? x : y;
            store_obj_add_sib(o, store_sib_ref(keep));
            i++;
            j++;
        } else if (c < 0) { /* only a holds it: b either never saw it or superseded it */
            if (!store_vclock_covers(&b->clock, &x->dot))
                store_obj_add_sib(o, store_sib_ref(x));
            i++;
        } else {
            if (!store_vclock_covers(&a->clock, &y->dot))
                store_obj_add_sib(o, store_sib_ref(y));
            j++;
        }
    }
    if (warn)
        *warn = check_soft(o, props);
    *out = o;
}
