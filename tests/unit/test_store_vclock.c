/*
 * test_store_vclock.c — version vectors: the comparisons a merge relies on, pruning by Riak's
 * four rules, and the client context codec (round trip, hostile bytes rejected).
 */
#include "storage/err.h"
#include "storage/vclock.h"
#include "store_test.h"

#include "proto/object.pb-c.h"

static store_vclock_t clock_of(const uint64_t *counters, uint32_t n)
{
    store_vclock_t vc = STORE_VCLOCK_INIT;
    for (uint32_t i = 0; i < n; i++) {
        store_actor_t a = test_actor(i);
        if (counters[i])
            store_vclock_raise(&vc, &a, counters[i], 100 + i);
    }
    return vc;
}

Test(store_vclock, increment_counts_per_actor_and_keeps_actor_order)
{
    store_vclock_t vc = STORE_VCLOCK_INIT;
    store_actor_t a = test_actor(2), b = test_actor(1);
    cr_assert_eq(store_vclock_increment(&vc, &a, 10), 1);
    cr_assert_eq(store_vclock_increment(&vc, &b, 11), 1);
    cr_assert_eq(store_vclock_increment(&vc, &a, 12), 2);
    cr_assert_eq(vc.n, 2);
    cr_assert_lt(store_actor_cmp(&vc.e[0].actor, &vc.e[1].actor), 0);
    cr_assert_eq(store_vclock_get(&vc, &a), 2);
    cr_assert_eq(store_vclock_get(&vc, &b), 1);
    cr_assert_eq(store_vclock_get(&vc, &(store_actor_t){{9}}), 0);
    store_vclock_clear(&vc);
}

Test(store_vclock, descends_dominates_concurrent_equal)
{
    store_vclock_t a = clock_of((uint64_t[]){2, 1, 0}, 3);
    store_vclock_t b = clock_of((uint64_t[]){1, 1, 0}, 3);
    store_vclock_t c = clock_of((uint64_t[]){1, 0, 3}, 3);
    store_vclock_t none = STORE_VCLOCK_INIT;
    cr_assert(store_vclock_descends(&a, &b));
    cr_assert(store_vclock_dominates(&a, &b));
    cr_assert_not(store_vclock_descends(&b, &a));
    cr_assert(store_vclock_concurrent(&a, &c));
    cr_assert_not(store_vclock_dominates(&a, &c));
    cr_assert(store_vclock_descends(&a, &none), "everything descends the empty clock");
    cr_assert_not(store_vclock_descends(&none, &a));
    cr_assert(store_vclock_equal(&a, &a));
    cr_assert_not(store_vclock_dominates(&a, &a), "a clock does not dominate itself");
    store_vclock_clear(&a);
    store_vclock_clear(&b);
    store_vclock_clear(&c);
}

Test(store_vclock, merge_is_pointwise_max_and_descends_both)
{
    store_vclock_t a = clock_of((uint64_t[]){2, 0, 5, 0}, 4);
    store_vclock_t b = clock_of((uint64_t[]){1, 4, 0, 1}, 4);
    store_vclock_t m = STORE_VCLOCK_INIT;
    store_vclock_copy(&m, &a);
    store_vclock_merge(&m, &b);
    uint64_t want[] = {2, 4, 5, 1};
    for (uint32_t i = 0; i < 4; i++) {
        store_actor_t act = test_actor(i);
        cr_assert_eq(store_vclock_get(&m, &act), want[i]);
    }
    cr_assert(store_vclock_descends(&m, &a) && store_vclock_descends(&m, &b));
    for (uint32_t i = 1; i < m.n; i++)
        cr_assert_lt(store_actor_cmp(&m.e[i - 1].actor, &m.e[i].actor), 0);
    store_vclock_clear(&a);
    store_vclock_clear(&b);
    store_vclock_clear(&m);
}

Test(store_vclock, merge_random_clocks_matches_a_naive_model)
{
    uint64_t seed = test_seed();
    prng_t r = {seed};
    for (int iter = 0; iter < 2000; iter++) {
        uint64_t ca[12] = {0}, cb[12] = {0};
        for (int i = 0; i < 12; i++) {
            ca[i] = prng_below(&r, 3) ? 0 : prng_below(&r, 5);
            cb[i] = prng_below(&r, 3) ? 0 : prng_below(&r, 5);
        }
        store_vclock_t a = clock_of(ca, 12), b = clock_of(cb, 12), m = STORE_VCLOCK_INIT;
        store_vclock_copy(&m, &a);
        store_vclock_merge(&m, &b);
        bool a_ge_b = true;
        for (int i = 0; i < 12; i++) {
            store_actor_t act = test_actor((uint32_t)i);
            uint64_t want = ca[i] > cb[i] ? ca[i] : cb[i];
            cr_assert_eq(store_vclock_get(&m, &act), want, "seed=%llu iter=%d", (unsigned long long)seed, iter);
            a_ge_b &= ca[i] >= cb[i];
        }
        cr_assert_eq(store_vclock_descends(&a, &b), a_ge_b, "seed=%llu iter=%d",
                     (unsigned long long)seed, iter);
        store_vclock_clear(&a);
        store_vclock_clear(&b);
        store_vclock_clear(&m);
    }
}

static store_vclock_t aged_clock(uint32_t n, uint32_t now, uint32_t age_step)
{
    store_vclock_t vc = STORE_VCLOCK_INIT;
    for (uint32_t i = 0; i < n; i++) {
        store_actor_t a = test_actor(i);
        store_vclock_increment(&vc, &a, now - i * age_step); /* actor i is i*age_step old */
    }
    return vc;
}

Test(store_vclock, prune_keeps_small_or_young_clocks)
{
    store_prune_t p = {.small_vclock = 3, .big_vclock = 3, .young_vclock = 20, .old_vclock = 100};
    store_vclock_t vc = aged_clock(3, 1000000, 1000);
    cr_assert_eq(store_vclock_prune(&vc, 1000000, &p, NULL, 0), 0, "<= small_vclock: kept");
    store_vclock_clear(&vc);
    vc = aged_clock(10, 1000000, 1); /* oldest is 9 s old: younger than young_vclock */
    cr_assert_eq(store_vclock_prune(&vc, 1000000, &p, NULL, 0), 0, "all young: kept");
    store_vclock_clear(&vc);
}

Test(store_vclock, prune_drops_oldest_beyond_big_or_older_than_old)
{
    store_prune_t p = {.small_vclock = 2, .big_vclock = 4, .young_vclock = 20, .old_vclock = 100};
    uint32_t now = 1000000;
    /* ages 0, 30, 60, 90, 120, 150: longer than big -> drop oldest until 4 remain; then the
     * oldest left is 90 s old (< old_vclock) so stop. */
    store_vclock_t vc = aged_clock(6, now, 30);
    cr_assert_eq(store_vclock_prune(&vc, now, &p, NULL, 0), 2);
    cr_assert_eq(vc.n, 4);
    cr_assert_eq(store_vclock_get(&vc, &(store_actor_t[]){test_actor(5)}[0]), 0, "oldest gone");
    cr_assert_eq(store_vclock_get(&vc, &(store_actor_t[]){test_actor(3)}[0]), 1, "90 s kept");
    store_vclock_clear(&vc);
    /* ages 0, 200, 400: length 3 <= big but the old ones are older than old_vclock */
    vc = aged_clock(3, now, 200);
    cr_assert_eq(store_vclock_prune(&vc, now, &p, NULL, 0), 1, "drops to small_vclock");
    cr_assert_eq(vc.n, 2);
    store_vclock_clear(&vc);
}

Test(store_vclock, prune_never_drops_an_actor_holding_a_live_dot)
{
    store_prune_t p = {.small_vclock = 1, .big_vclock = 1, .young_vclock = 0, .old_vclock = 0};
    uint32_t now = 1000000;
    store_vclock_t vc = aged_clock(5, now, 100);
    store_actor_t keep = test_actor(4); /* the oldest */
    store_vclock_prune(&vc, now, &p, &keep, 1);
    cr_assert_eq(vc.n, 1);
    cr_assert_eq(store_vclock_get(&vc, &keep), 1);
    store_vclock_clear(&vc);
}

Test(store_vclock, context_round_trips_and_empty_is_empty)
{
    store_vclock_t vc = aged_clock(5, 5000, 3), back = STORE_VCLOCK_INIT;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(store_vclock_encode(&vc, &buf, &len), 0);
    cr_assert_eq(store_vclock_decode(buf, len, &back), 0);
    cr_assert_eq(back.n, vc.n);
    cr_assert(store_vclock_equal(&vc, &back));
    for (uint32_t i = 0; i < vc.n; i++)
        cr_assert_eq(back.e[i].ts, vc.e[i].ts);
    free(buf);
    cr_assert_eq(store_vclock_decode(NULL, 0, &back), 0);
    cr_assert_eq(back.n, 0, "an empty context is the empty clock");
    store_vclock_clear(&vc);
    store_vclock_clear(&back);
}

Test(store_vclock, hostile_contexts_fail_cleanly)
{
    store_vclock_t vc = aged_clock(3, 5000, 3), out = STORE_VCLOCK_INIT;
    uint8_t *buf;
    size_t len;
    store_vclock_encode(&vc, &buf, &len);
    for (size_t cut = 1; cut < len; cut++)
        cr_assert_eq(store_vclock_decode(buf, cut, &out), STORE_EDECODE, "truncated at %zu", cut);
    /* well-formed protobuf, but not a canonical clock: built with protobuf-c directly */
    Cairn__VClockEntry e0 = CAIRN__VCLOCK_ENTRY__INIT, e1 = CAIRN__VCLOCK_ENTRY__INIT;
    e0.has_node = e1.has_node = 1;
    e0.node = 2;
    e0.counter = 1;
    e1.node = 1;
    e1.counter = 1;
    Cairn__VClockEntry *ents[2] = {&e0, &e1};
    Cairn__VClock m = CAIRN__VCLOCK__INIT;
    m.n_entries = m.count = 2;
    m.entries = ents;
    uint8_t raw[256];
    size_t rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), STORE_EDECODE, "unsorted actors");
    e1.node = 2;
    rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), STORE_EDECODE, "duplicate actor");
    e0.node = 1;
    e1.node = 2;
    rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), 0, "the sorted version is fine");
    e1.has_epoch = 1; /* epoch 0 written out: not the canonical form */
    rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), STORE_EDECODE, "explicit default");
    e1.has_epoch = 0;
    e0.counter = 0;
    rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), STORE_EDECODE, "zero counter");
    e0.counter = 1;
    m.count = 3;
    rn = cairn__vclock__pack(&m, raw);
    cr_assert_eq(store_vclock_decode(raw, rn, &out), STORE_EDECODE, "count mismatch");
    const uint8_t junk[] = {0x0a, 0x04, 0x08, 0x01, 0x20, 0x01, 0x78, 0x01}; /* no timestamp */
    cr_assert_eq(store_vclock_decode(junk, sizeof junk, &out), STORE_EDECODE);
    const uint8_t shortv[] = {0x0a, 0x09, 0x08, 0x01, 0x20, 0x01, 0x2d, 1, 0, 0, 0, 0x78, 0x01};
    cr_assert_eq(store_vclock_decode(shortv, sizeof shortv, &out), 0, "node 1, minimal varint");
    const uint8_t longv[] = {0x0a, 0x0a, 0x08, 0x81, 0x00, 0x20, 0x01, 0x2d, 1, 0, 0, 0,
                             0x78, 0x01}; /* the same with node 1 as a two-byte varint */
    cr_assert_eq(store_vclock_decode(longv, sizeof longv, &out), STORE_EDECODE, "over-long varint");
    const uint8_t huge_len[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    cr_assert_eq(store_vclock_decode(huge_len, sizeof huge_len, &out), STORE_EDECODE);
    prng_t r = {test_seed()};
    uint8_t rnd[64];
    for (int i = 0; i < 20000; i++) {
        size_t n = prng_below(&r, sizeof rnd) + 1;
        for (size_t j = 0; j < n; j++)
            rnd[j] = (uint8_t)prng_next(&r);
        int rc = store_vclock_decode(rnd, n, &out);
        cr_assert(rc == 0 || rc == STORE_EDECODE);
    }
    free(buf);
    store_vclock_clear(&vc);
    store_vclock_clear(&out);
}
