/*
 * test_store_object.c — the coordinated write and replica merge on hand-built histories:
 * what a user sees (which values survive, how many siblings) for each bucket setting, plus
 * the limits and tombstones.
 */
#include "storage/err.h"
#include "storage/object.h"
#include "store_test.h"

static store_props_t multi(void)
{
    return store_props_default(false);
}

/* A coordinated write of value id at actor a with context ctx (NULL = none). */
static store_obj_t *put(const store_obj_t *stored, const store_vclock_t *ctx, uint32_t a,
                        uint64_t id, uint32_t ts, const store_props_t *p)
{
    test_content_t tc;
    store_writer_t w = {test_actor(a), ts, 0};
    store_obj_t *out = NULL;
    cr_assert_eq(store_obj_coord_put(stored, ctx, test_content(&tc, id, ts), &w, p, &out, NULL), 0);
    cr_assert_eq(store_obj_check(out), 0, "invariants hold after a write");
    return out;
}

static bool has_value(const store_obj_t *o, uint64_t id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "v%llu", (unsigned long long)id);
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (o->sibs[i]->c.value.n == strlen(buf) && !memcmp(o->sibs[i]->c.value.p, buf, strlen(buf)))
            return true;
    return false;
}

Test(store_object, first_write_has_one_sibling_with_its_dot)
{
    store_props_t p = multi();
    store_obj_t *o = put(NULL, NULL, 1, 1, 1000, &p);
    cr_assert_eq(o->n_sibs, 1);
    cr_assert_eq(o->sibs[0]->dot.counter, 1);
    cr_assert_eq(store_actor_cmp(&o->sibs[0]->dot.actor, &(store_actor_t[]){test_actor(1)}[0]), 0);
    cr_assert_eq(store_vclock_get(&o->clock, &o->sibs[0]->dot.actor), 1);
    store_obj_free(o);
}

Test(store_object, write_with_full_context_replaces_every_sibling)
{
    store_props_t p = multi();
    store_obj_t *a = put(NULL, NULL, 1, 1, 1000, &p);
    store_obj_t *b = put(a, NULL, 1, 2, 1001, &p); /* blind: concurrent with v1 */
    cr_assert_eq(b->n_sibs, 2);
    store_obj_t *c = put(b, &b->clock, 1, 3, 1002, &p); /* saw both */
    cr_assert_eq(c->n_sibs, 1);
    cr_assert(has_value(c, 3));
    store_obj_free(a);
    store_obj_free(b);
    store_obj_free(c);
}

Test(store_object, stale_context_keeps_the_write_it_did_not_see)
{
    store_props_t p = multi();
    store_obj_t *v1 = put(NULL, NULL, 1, 1, 1000, &p);
    store_vclock_t ctx = STORE_VCLOCK_INIT;
    store_vclock_copy(&ctx, &v1->clock);               /* client A reads v1 */
    store_obj_t *v2 = put(v1, &v1->clock, 1, 2, 1001, &p); /* B replaces v1 */
    store_obj_t *v3 = put(v2, &ctx, 1, 3, 1002, &p);   /* A writes with its stale context */
    cr_assert_eq(v3->n_sibs, 2, "B's write is concurrent with A's: both kept");
    cr_assert(has_value(v3, 2) && has_value(v3, 3));
    cr_assert_not(has_value(v3, 1), "v1 was seen by both writers");
    store_vclock_clear(&ctx);
    store_obj_free(v1);
    store_obj_free(v2);
    store_obj_free(v3);
}

Test(store_object, interleaved_stale_writers_do_not_explode)
{
    /* Two clients that each write with the context returned by their own previous write:
     * without dots every write would add a sibling; with dots it stays at two. */
    store_props_t p = multi();
    store_obj_t *o = NULL;
    store_vclock_t ctx[2] = {STORE_VCLOCK_INIT, STORE_VCLOCK_INIT};
    for (int i = 0; i < 50; i++) {
        int c = i % 2;
        store_obj_t *n = put(o, &ctx[c], 1, (uint64_t)i, 1000 + (uint32_t)i, &p);
        store_vclock_copy(&ctx[c], &n->clock);
        store_obj_free(o);
        o = n;
        cr_assert_leq(o->n_sibs, 2, "write %d left %u siblings", i, o->n_sibs);
    }
    store_vclock_clear(&ctx[0]);
    store_vclock_clear(&ctx[1]);
    store_obj_free(o);
}

Test(store_object, allow_mult_false_keeps_one_newest_concurrent_value)
{
    store_props_t p = store_props_default(true);
    cr_assert_not(p.allow_mult);
    store_obj_t *a = put(NULL, NULL, 1, 1, 2000, &p);
    store_obj_t *b = put(a, NULL, 1, 2, 1000, &p); /* blind write with an older wall clock */
    cr_assert_eq(b->n_sibs, 1);
    cr_assert(has_value(b, 1), "concurrent writes resolve by last-modified, not arrival");
    store_obj_t *c = put(b, NULL, 1, 3, 3000, &p);
    cr_assert_eq(c->n_sibs, 1);
    cr_assert(has_value(c, 3));
    store_obj_free(a);
    store_obj_free(b);
    store_obj_free(c);
}

Test(store_object, allow_mult_false_never_discards_a_causally_newer_write)
{
    /* The client saw v1 and writes v2, but its wall clock is behind v1's. v2 is causally newer,
     * so it must win even though its timestamp is older. */
    store_props_t p = store_props_default(true);
    store_obj_t *a = put(NULL, NULL, 1, 1, 5000, &p);
    store_obj_t *b = put(a, &a->clock, 2, 2, 10, &p);
    cr_assert_eq(b->n_sibs, 1);
    cr_assert(has_value(b, 2));
    store_obj_free(a);
    store_obj_free(b);
}

Test(store_object, last_write_wins_is_the_explicit_exception)
{
    store_props_t p = multi();
    p.last_write_wins = true;
    store_obj_t *a = put(NULL, NULL, 1, 1, 1000, &p);
    store_obj_t *b = put(a, NULL, 2, 2, 900, &p); /* blind and older: still replaces */
    cr_assert_eq(b->n_sibs, 1);
    cr_assert(has_value(b, 2));
    cr_assert(store_vclock_descends(&b->clock, &a->clock), "the clock still advances");
    store_obj_free(a);
    store_obj_free(b);
}

Test(store_object, delete_makes_a_tombstone_that_keeps_the_clock)
{
    store_props_t p = multi();
    store_obj_t *a = put(NULL, NULL, 1, 1, 1000, &p);
    store_content_t del = {.deleted = true, .last_mod = 1001};
    store_writer_t w = {test_actor(1), 1001, 0};
    store_obj_t *t = NULL;
    cr_assert_eq(store_obj_coord_put(a, &a->clock, &del, &w, &p, &t, NULL), 0);
    cr_assert(store_obj_is_tombstone(t));
    cr_assert_eq(t->n_sibs, 1);
    cr_assert(store_vclock_dominates(&t->clock, &a->clock));
    /* a replica still holding v1 merges with the tombstone: v1 is gone, not resurrected */
    store_obj_t *m = NULL;
    store_obj_merge(a, t, &p, &m, NULL);
    cr_assert(store_obj_is_tombstone(m));
    cr_assert_not(store_obj_is_tombstone(a));
    store_obj_free(a);
    store_obj_free(t);
    store_obj_free(m);
}

Test(store_object, sibling_limit_refuses_and_warns)
{
    store_props_t p = multi();
    p.sib_warn = 3;
    p.sib_max = 5;
    store_obj_t *o = NULL;
    unsigned warn = 0;
    for (uint64_t i = 0; i < 5; i++) {
        test_content_t tc;
        store_writer_t w = {test_actor(1), 1000, 0};
        store_obj_t *n = NULL;
        cr_assert_eq(store_obj_coord_put(o, NULL, test_content(&tc, i, 1000), &w, &p, &n, &warn), 0);
        cr_assert_eq(!!(warn & STORE_WARN_SIBLINGS), i + 1 > 3, "warn after 3 siblings (i=%llu)",
                     (unsigned long long)i);
        store_obj_free(o);
        o = n;
    }
    test_content_t tc;
    store_writer_t w = {test_actor(1), 1000, 0};
    store_obj_t *n = NULL;
    cr_assert_eq(store_obj_coord_put(o, NULL, test_content(&tc, 99, 1000), &w, &p, &n, &warn),
                 STORE_ESIBLINGS);
    cr_assert_null(n);
    /* a write that resolves them is still accepted */
    cr_assert_eq(store_obj_coord_put(o, &o->clock, &tc.c, &w, &p, &n, &warn), 0);
    cr_assert_eq(n->n_sibs, 1);
    store_obj_free(o);
    store_obj_free(n);
}

Test(store_object, object_size_limit_refuses_and_warns)
{
    store_props_t p = multi();
    p.obj_warn = 1000;
    p.obj_max = 10000;
    static uint8_t big[20000];
    store_content_t c = {.value = {big, 5000}};
    store_writer_t w = {test_actor(1), 1000, 0};
    store_obj_t *o = NULL;
    unsigned warn = 0;
    cr_assert_eq(store_obj_coord_put(NULL, NULL, &c, &w, &p, &o, &warn), 0);
    cr_assert(warn & STORE_WARN_SIZE);
    c.value.n = 20000;
    store_obj_t *n = NULL;
    cr_assert_eq(store_obj_coord_put(o, &o->clock, &c, &w, &p, &n, &warn), STORE_ETOOBIG);
    cr_assert_null(n);
    store_obj_free(o);
}

Test(store_object, counter_floor_prevents_dot_reuse_after_pruning)
{
    store_props_t p = multi();
    p.prune = (store_prune_t){.small_vclock = 1, .big_vclock = 1, .young_vclock = 0, .old_vclock = 0};
    /* actor 1 writes at t=0, then actor 2 overwrites at t=1000: pruning drops actor 1 */
    store_obj_t *a = put(NULL, NULL, 1, 1, 1, &p);
    store_obj_t *b = put(a, &a->clock, 2, 2, 1000, &p);
    cr_assert_eq(store_vclock_get(&b->clock, &(store_actor_t[]){test_actor(1)}[0]), 0, "pruned");
    test_content_t tc;
    store_writer_t w = {test_actor(1), 2000, 2}; /* the vnode's own sequence is at 2 */
    store_obj_t *c = NULL;
    cr_assert_eq(store_obj_coord_put(b, NULL, test_content(&tc, 3, 2000), &w, &p, &c, NULL), 0);
    for (uint32_t i = 0; i < c->n_sibs; i++)
        if (store_actor_cmp(&c->sibs[i]->dot.actor, &w.actor) == 0)
            cr_assert_geq(c->sibs[i]->dot.counter, 2, "dot (actor1, 1) must not be reused");
    store_obj_free(a);
    store_obj_free(b);
    store_obj_free(c);
}

Test(store_object, merge_keeps_concurrent_and_drops_superseded)
{
    store_props_t p = multi();
    store_obj_t *base = put(NULL, NULL, 1, 1, 1000, &p);
    store_obj_t *x = put(base, &base->clock, 1, 2, 1001, &p); /* replica 1 replaces v1 */
    store_obj_t *y = put(base, NULL, 2, 3, 1002, &p);         /* replica 2 (has v1), blind */
    cr_assert_eq(y->n_sibs, 2);
    store_obj_t *m = NULL;
    store_obj_merge(x, y, &p, &m, NULL);
    cr_assert_eq(m->n_sibs, 2, "v2 and v3 are concurrent, v1 was superseded by v2");
    cr_assert(has_value(m, 2) && has_value(m, 3) && !has_value(m, 1));
    store_obj_t *m2 = NULL;
    store_obj_merge(m, NULL, &p, &m2, NULL);
    cr_assert(store_obj_equal(m, m2), "merging with not-found changes nothing");
    store_obj_free(base);
    store_obj_free(x);
    store_obj_free(y);
    store_obj_free(m);
    store_obj_free(m2);
}

Test(store_object, resolve_is_deterministic_on_equal_timestamps)
{
    store_props_t p = multi();
    store_obj_t *a = put(NULL, NULL, 1, 1, 1000, &p);
    store_obj_t *b = put(NULL, NULL, 2, 2, 1000, &p);
    store_obj_t *ab = NULL, *ba = NULL;
    store_obj_merge(a, b, &p, &ab, NULL);
    store_obj_merge(b, a, &p, &ba, NULL);
    cr_assert_eq(ab->n_sibs, 2);
    cr_assert(store_sib_equal(store_obj_resolve(ab), store_obj_resolve(ba)));
    store_obj_free(a);
    store_obj_free(b);
    store_obj_free(ab);
    store_obj_free(ba);
}
