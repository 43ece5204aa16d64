/*
 * test_store_props.c — property tests over thousands of random write histories: replicas
 * (vnodes) take coordinated writes from clients with fresh, stale or empty contexts and
 * exchange objects in random orders. Checked: replica merge is commutative, associative and
 * idempotent; a write whose context saw every sibling leaves exactly one; an acknowledged
 * write disappears only when a later write's context covered it (and then never comes
 * back); siblings are always truly concurrent writes, and bounded by the writers.
 * Reproduce a failure with STORE_TEST_SEED=<seed printed in the message>.
 */
#include "storage/err.h"
#include "storage/object.h"
#include "store_test.h"

#define MAX_R 4
#define MAX_C 4
#define MAX_W 64

typedef struct {
    store_dot_t dot;
    store_vclock_t ctx;   /* the context the client sent */
    int client;
} wrec_t;

typedef struct {
    prng_t rng;
    uint64_t seed;
    int hist;
    int nr, nc;
    store_props_t props;
    store_obj_t *rep[MAX_R];
    store_vclock_t ctx[MAX_C];
    wrec_t w[MAX_W];
    int nw;
    bool careful; /* clients merge what they read into their context (for the bound) */
} hist_t;

#define CHECK(h, cond, fmt, ...)                                                             \
    cr_assert(cond, "seed=%llu history=%d: " fmt, (unsigned long long)(h)->seed, (h)->hist,  \
              ##__VA_ARGS__)

static uint8_t *enc(const store_obj_t *o, size_t *len)
{
    uint8_t *b = NULL;
    cr_assert_eq(store_obj_encode(o, &b, len), 0);
    return b;
}

/* Byte-identical canonical encodings (clock timestamps included). */
static bool same(const store_obj_t *a, const store_obj_t *b)
{
    size_t la, lb;
    uint8_t *x = enc(a, &la), *y = enc(b, &lb);
    bool eq = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

static const store_obj_t *pick(hist_t *h)
{
    return h->rep[prng_below(&h->rng, (uint32_t)h->nr)];
}

static void check_merge_laws(hist_t *h)
{
    const store_obj_t *a = pick(h), *b = pick(h), *c = pick(h);
    if (!a || !b || !c)
        return;
    store_obj_t *ab, *ba, *ab_c, *bc, *a_bc, *aa;
    store_obj_merge(a, b, &h->props, &ab, NULL);
    store_obj_merge(b, a, &h->props, &ba, NULL);
    CHECK(h, same(ab, ba), "merge is not commutative");
    store_obj_merge(ab, c, &h->props, &ab_c, NULL);
    store_obj_merge(b, c, &h->props, &bc, NULL);
    store_obj_merge(a, bc, &h->props, &a_bc, NULL);
    CHECK(h, same(ab_c, a_bc), "merge is not associative");
    store_obj_merge(a, a, &h->props, &aa, NULL);
    CHECK(h, same(aa, a), "merge is not idempotent");
    CHECK(h, store_obj_check(ab) == 0, "merge broke the invariants");
    store_obj_free(ab);
    store_obj_free(ba);
    store_obj_free(ab_c);
    store_obj_free(bc);
    store_obj_free(a_bc);
    store_obj_free(aa);
}

static const wrec_t *find_write(const hist_t *h, const store_dot_t *d)
{
    for (int i = 0; i < h->nw; i++)
        if (store_dot_cmp(&h->w[i].dot, d) == 0)
            return &h->w[i];
    return NULL;
}

static bool holds(const store_obj_t *o, const store_dot_t *d)
{
    for (uint32_t i = 0; o && i < o->n_sibs; i++)
        if (store_dot_cmp(&o->sibs[i]->dot, d) == 0)
            return true;
    return false;
}

/* Exactly the acknowledged writes that o knows of and that no write o knows of superseded
 * are present; every pair of siblings is truly concurrent. */
static void check_no_loss(hist_t *h, const store_obj_t *o)
{
    if (!o)
        return;
    for (int i = 0; i < h->nw; i++) {
        const store_dot_t *d = &h->w[i].dot;
        if (!store_vclock_covers(&o->clock, d))
            continue;
        bool superseded = false;
        for (int j = 0; j < h->nw && !superseded; j++)
            superseded = store_vclock_covers(&h->w[j].ctx, d) &&
                         store_vclock_covers(&o->clock, &h->w[j].dot);
        CHECK(h, holds(o, d) == !superseded, "write %d %s", i,
              superseded ? "was superseded but is still there" : "was lost");
    }
    for (uint32_t i = 0; i < o->n_sibs; i++)
        for (uint32_t j = 0; j < o->n_sibs; j++) {
            const wrec_t *wj = find_write(h, &o->sibs[j]->dot);
            CHECK(h, wj != NULL, "a sibling no client wrote");
            CHECK(h, i == j || !store_vclock_covers(&wj->ctx, &o->sibs[i]->dot),
                  "siblings %u and %u are not concurrent", i, j);
        }
}

static void op_write(hist_t *h)
{
    int r = (int)prng_below(&h->rng, (uint32_t)h->nr), c = (int)prng_below(&h->rng, (uint32_t)h->nc);
    bool blind = !h->careful && prng_below(&h->rng, 8) == 0;
    store_vclock_t none = STORE_VCLOCK_INIT;
    const store_vclock_t *ctx = blind ? &none : &h->ctx[c];
    const store_obj_t *stored = h->rep[r];
    test_content_t tc;
    store_writer_t wr = {test_actor((uint32_t)r), 1000 + (uint32_t)h->nw, 0};
    store_obj_t *out = NULL;
    int rc = store_obj_coord_put(stored, ctx, test_content(&tc, (uint64_t)h->nw, wr.now), &wr,
                                 &h->props, &out, NULL);
    CHECK(h, rc == 0, "write failed: %s", store_strerror(rc));
    CHECK(h, store_obj_check(out) == 0, "write broke the invariants");

    bool saw_all = true;
    for (uint32_t i = 0; stored && i < stored->n_sibs; i++)
        saw_all &= store_vclock_covers(ctx, &stored->sibs[i]->dot);
    if (saw_all || !h->props.allow_mult)
        CHECK(h, out->n_sibs == 1, "a write that saw everything left %u siblings", out->n_sibs);

    /* the new sibling: the one carrying the writer's actor at the new counter */
    uint64_t ctr = store_vclock_get(&out->clock, &wr.actor);
    store_dot_t dot = {wr.actor, ctr};
    if (h->props.allow_mult)
        CHECK(h, holds(out, &dot), "the acknowledged write is not in the result");
    wrec_t *w = &h->w[h->nw++];
    w->dot = dot;
    w->client = c;
    w->ctx = (store_vclock_t)STORE_VCLOCK_INIT;
    store_vclock_copy(&w->ctx, ctx);

    store_obj_free(h->rep[r]);
    h->rep[r] = out;
    /* the client gets the new object's clock back (returnbody), as real clients do */
    if (h->careful)
        store_vclock_merge(&h->ctx[c], &out->clock);
    else
        store_vclock_copy(&h->ctx[c], &out->clock);
}

static void op_read(hist_t *h)
{
    int r = (int)prng_below(&h->rng, (uint32_t)h->nr), c = (int)prng_below(&h->rng, (uint32_t)h->nc);
    if (!h->rep[r])
        return;
    if (h->careful)
        store_vclock_merge(&h->ctx[c], &h->rep[r]->clock);
    else
        store_vclock_copy(&h->ctx[c], &h->rep[r]->clock);
}

static void op_replicate(hist_t *h)
{
    int from = (int)prng_below(&h->rng, (uint32_t)h->nr), to = (int)prng_below(&h->rng, (uint32_t)h->nr);
    store_obj_t *m = NULL;
    store_obj_merge(h->rep[to], h->rep[from], &h->props, &m, NULL);
    store_obj_free(h->rep[to]);
    h->rep[to] = m;
}

static void run_history(hist_t *h)
{
    h->nr = 2 + (int)prng_below(&h->rng, MAX_R - 1);
    h->nc = 1 + (int)prng_below(&h->rng, MAX_C);
    int nops = 10 + (int)prng_below(&h->rng, 40);
    for (int i = 0; i < nops && h->nw < MAX_W; i++) {
        uint32_t k = prng_below(&h->rng, 10);
        if (k < 4)
            op_write(h);
        else if (k < 7)
            op_read(h);
        else
            op_replicate(h);
        if (h->props.allow_mult) {
            for (int r = 0; r < h->nr; r++) {
                check_no_loss(h, h->rep[r]);
                if (h->careful && h->rep[r])
                    CHECK(h, h->rep[r]->n_sibs <= (uint32_t)h->nc,
                          "%u siblings from %d writers", h->rep[r]->n_sibs, h->nc);
            }
        }
        if (prng_below(&h->rng, 4) == 0)
            check_merge_laws(h);
    }
    /* anti-entropy in a random order: every replica converges to the same object */
    store_obj_t *all = NULL;
    for (int i = 0; i < h->nr; i++) {
        store_obj_t *m = NULL;
        store_obj_merge(all, h->rep[(i + h->hist) % h->nr], &h->props, &m, NULL);
        store_obj_free(all);
        all = m;
    }
    store_obj_t *rev = NULL;
    for (int i = h->nr - 1; i >= 0; i--) {
        store_obj_t *m = NULL;
        store_obj_merge(h->rep[i], rev, &h->props, &m, NULL);
        store_obj_free(rev);
        rev = m;
    }
    CHECK(h, same(all, rev), "replicas do not converge regardless of merge order");
    if (h->props.allow_mult)
        check_no_loss(h, all);
    if (all->n_sibs) /* every replica's view of the winner is the same */
        CHECK(h, store_sib_equal(store_obj_resolve(all), store_obj_resolve(rev)), "resolve");
    store_obj_free(all);
    store_obj_free(rev);
}

static void histories(int count, bool allow_mult, bool careful)
{
    uint64_t seed = test_seed();
    for (int n = 0; n < count; n++) {
        hist_t *h = calloc(1, sizeof *h);
        h->seed = seed;
        h->hist = n;
        h->rng.s = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
        h->props = store_props_default(!allow_mult);
        h->props.prune.small_vclock = 1000; /* pruning is tested on its own */
        h->careful = careful;
        run_history(h);
        for (int i = 0; i < MAX_R; i++)
            store_obj_free(h->rep[i]);
        for (int i = 0; i < MAX_C; i++)
            store_vclock_clear(&h->ctx[i]);
        for (int i = 0; i < h->nw; i++)
            store_vclock_clear(&h->w[i].ctx);
        free(h);
    }
}

Test(store_props, allow_mult_histories_lose_nothing_and_merge_is_a_semilattice, .timeout = 60)
{
    histories(2000, true, false);
}

Test(store_props, careful_writers_keep_siblings_bounded_by_writer_count, .timeout = 60)
{
    histories(1500, true, true);
}

Test(store_props, allow_mult_false_histories_keep_one_value_and_converge, .timeout = 60)
{
    histories(1500, false, false);
}
