/*
 * test_store_key.c — storage key encoding: arbitrary bytes round-trip, byte order equals
 * tuple order, and a bucket's keys are exactly the keys under its prefix.
 */
#include "storage/err.h"
#include "storage/key.h"
#include "store_test.h"

static size_t rnd_bytes(prng_t *r, uint8_t *b, size_t max)
{
    size_t n = 1 + prng_below(r, (uint32_t)max);
    for (size_t i = 0; i < n; i++) /* favour the bytes the escaping cares about */
        b[i] = prng_below(r, 3) == 0 ? (uint8_t[]){0x00, 0x01, 0xFF}[prng_below(r, 3)]
                                     : (uint8_t)prng_next(r);
    return n;
}

static int tuple_cmp(const store_key_t *a, const store_key_t *b)
{
    const store_slice_t *x[3] = {&a->type, &a->bucket, &a->key};
    const store_slice_t *y[3] = {&b->type, &b->bucket, &b->key};
    for (int i = 0; i < 3; i++) {
        size_t n = x[i]->n < y[i]->n ? x[i]->n : y[i]->n;
        int c = memcmp(x[i]->p, y[i]->p, n);
        if (c)
            return c;
        if (x[i]->n != y[i]->n)
            return x[i]->n < y[i]->n ? -1 : 1;
    }
    return 0;
}

static int bytes_cmp(const uint8_t *a, long an, const uint8_t *b, long bn)
{
    int c = memcmp(a, b, (size_t)(an < bn ? an : bn));
    return c ? c : (an > bn) - (an < bn);
}

Test(store_key, random_binary_keys_round_trip_and_sort_like_tuples)
{
    uint64_t seed = test_seed();
    prng_t r = {seed};
    uint8_t t1[8], b1[8], k1[8], t2[8], b2[8], k2[8], e1[64], e2[64], scratch[64];
    for (int i = 0; i < 20000; i++) {
        store_key_t a = {{t1, rnd_bytes(&r, t1, 3)}, {b1, rnd_bytes(&r, b1, 3)}, {k1, rnd_bytes(&r, k1, 3)}};
        store_key_t b = {{t2, rnd_bytes(&r, t2, 3)}, {b2, rnd_bytes(&r, b2, 3)}, {k2, rnd_bytes(&r, k2, 3)}};
        long na = store_key_encode(&a, e1, sizeof e1), nb = store_key_encode(&b, e2, sizeof e2);
        cr_assert(na > 0 && nb > 0);
        store_key_t d;
        cr_assert_eq(store_key_decode(e1, (size_t)na, scratch, &d), 0);
        cr_assert_eq(tuple_cmp(&a, &d), 0, "seed=%llu: round trip", (unsigned long long)seed);
        int tc = tuple_cmp(&a, &b), bc = bytes_cmp(e1, na, e2, nb);
        cr_assert_eq(tc < 0, bc < 0, "seed=%llu i=%d: order", (unsigned long long)seed, i);
        cr_assert_eq(tc == 0, bc == 0);
        /* a's bucket prefix contains b iff same type and bucket */
        uint8_t pre[64];
        long np = store_key_bucket_prefix(&a.type, &a.bucket, pre, sizeof pre);
        bool same_bucket = a.type.n == b.type.n && !memcmp(t1, t2, a.type.n) &&
                           a.bucket.n == b.bucket.n && !memcmp(b1, b2, a.bucket.n);
        bool under = nb >= np && memcmp(e2, pre, (size_t)np) == 0;
        cr_assert_eq(under, same_bucket, "seed=%llu i=%d: bucket range", (unsigned long long)seed, i);
    }
}

Test(store_key, empty_components_and_oversized_keys_are_refused)
{
    uint8_t buf[16];
    store_key_t k = TKEY("t", "b", "k");
    k.key.n = 0;
    cr_assert_eq(store_key_encode(&k, buf, sizeof buf), STORE_EKEY);
    k = TKEY("t", "", "k");
    cr_assert_eq(store_key_encode(&k, buf, sizeof buf), STORE_EKEY);
    static uint8_t big[STORE_KEY_MAX];
    k = TKEY("t", "b", "k");
    k.key = (store_slice_t){big, sizeof big};
    cr_assert_eq(store_key_encode(&k, buf, sizeof buf), STORE_EKEY);
    uint8_t junk[] = {0x10, 'a', 0x00, 0x07};
    store_key_t d;
    cr_assert_eq(store_key_decode(junk, sizeof junk, buf, &d), STORE_EKEY);
    uint8_t meta[] = {0x01, 'x'};
    cr_assert_eq(store_key_decode(meta, sizeof meta, buf, &d), STORE_EKEY, "not an object key");
}
