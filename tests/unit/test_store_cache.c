/*
 * test_store_cache.c — the object cache (storage/cache.h): what is put is what is read,
 * rewrites and erases are seen at once, keys are told apart by component, the shared budget
 * is respected (least recently used first, never another cache's entries), and the counters
 * add up.
 */
#include "storage/cache.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static store_slice_t sl(const char *s) { return (store_slice_t){(const uint8_t *)s, strlen(s)}; }

static store_key_t key3(const char *type, const char *bucket, const char *key)
{
    return (store_key_t){sl(type), sl(bucket), sl(key)};
}

/* The cached value of k as a string ("" when missing). */
static char *read_str(store_cache_t *c, const store_key_t *k, char *buf, size_t cap)
{
    store_val_t v = {0};
    buf[0] = 0;
    if (store_cache_get(c, k, &v)) {
        cr_assert_lt(v.n, cap);
        memcpy(buf, v.p, v.n);
        buf[v.n] = 0;
        store_val_release(&v);
    }
    return buf;
}

static void put_str(store_cache_t *c, const store_key_t *k, const char *v)
{
    store_cache_put(c, k, v, strlen(v));
}

Test(store_cache, put_get_rewrite_erase)
{
    store_cache_budget_t b = {.limit = 1 << 20};
    store_cache_t *c = store_cache_new(&b);
    cr_assert_not_null(c);
    char buf[256];
    store_key_t k = key3("default", "b", "k1");
    cr_assert_str_empty(read_str(c, &k, buf, sizeof buf));
    cr_assert_eq(b.misses, 1);

    put_str(c, &k, "first");
    cr_assert_str_eq(read_str(c, &k, buf, sizeof buf), "first");
    put_str(c, &k, "2nd"); /* shorter: in place */
    cr_assert_str_eq(read_str(c, &k, buf, sizeof buf), "2nd");
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    put_str(c, &k, big); /* longer than the entry's room: a new entry */
    cr_assert_str_eq(read_str(c, &k, buf, sizeof buf), big);
    cr_assert_eq(store_cache_count(c), 1);
    cr_assert_eq(b.entries, 1);
    cr_assert_eq(b.used, store_cache_bytes(c));

    store_cache_put(c, &k, NULL, 0); /* an empty value is a value */
    store_val_t v = {0};
    cr_assert(store_cache_get(c, &k, &v));
    cr_assert_eq(v.n, 0);
    store_val_release(&v);

    store_cache_erase(c, &k);
    cr_assert_not(store_cache_get(c, &k, &v));
    store_cache_erase(c, &k); /* not there: nothing happens */
    cr_assert_eq(store_cache_count(c), 0);
    cr_assert_eq(b.used, 0);
    cr_assert_eq(b.hits, 4);
    store_cache_free(c);
}

Test(store_cache, the_copy_is_the_callers)
{
    store_cache_budget_t b = {.limit = 1 << 20};
    store_cache_t *c = store_cache_new(&b);
    store_key_t k = key3("t", "b", "k");
    put_str(c, &k, "abc");
    store_val_t v = {0};
    cr_assert(store_cache_get(c, &k, &v));
    v.p[0] = 'Z'; /* changing the copy does not change the cache */
    put_str(c, &k, "def");
    cr_assert_eq(memcmp(v.p, "Zbc", 3), 0);
    store_val_release(&v);
    char buf[16];
    cr_assert_str_eq(read_str(c, &k, buf, sizeof buf), "def");
    store_cache_free(c);
}

Test(store_cache, components_are_told_apart)
{
    store_cache_budget_t b = {.limit = 1 << 20};
    store_cache_t *c = store_cache_new(&b);
    store_key_t k1 = key3("ab", "c", "d"), k2 = key3("a", "bc", "d"), k3 = key3("a", "b", "cd");
    put_str(c, &k1, "one");
    put_str(c, &k2, "two");
    put_str(c, &k3, "three");
    char buf[16];
    cr_assert_str_eq(read_str(c, &k1, buf, sizeof buf), "one");
    cr_assert_str_eq(read_str(c, &k2, buf, sizeof buf), "two");
    cr_assert_str_eq(read_str(c, &k3, buf, sizeof buf), "three");
    store_cache_free(c);
}

Test(store_cache, many_keys_survive_growth)
{
    store_cache_budget_t b = {.limit = 64u << 20};
    store_cache_t *c = store_cache_new(&b);
    enum { N = 20000 };
    char key[32], val[32], buf[64];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i * 7);
        store_key_t k = key3("default", "bucket", key);
        put_str(c, &k, val);
    }
    cr_assert_eq(store_cache_count(c), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "value-%d", i * 7);
        store_key_t k = key3("default", "bucket", key);
        cr_assert_str_eq(read_str(c, &k, buf, sizeof buf), val, "key %d", i);
    }
    cr_assert_eq(b.evictions, 0);
    store_cache_free(c);
    cr_assert_eq(b.used, 0);
    cr_assert_eq(b.entries, 0);
}

Test(store_cache, evicts_least_recently_used_within_budget)
{
    store_cache_budget_t b = {.limit = 64 * 1024};
    store_cache_t *c = store_cache_new(&b);
    char val[600], key[32], buf[700];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    store_key_t k0 = key3("t", "b", "key-0");
    put_str(c, &k0, val);
    for (int i = 1; i < 400; i++) { /* about 4 times what fits */
        snprintf(key, sizeof key, "key-%d", i);
        store_key_t k = key3("t", "b", key);
        put_str(c, &k, val);
        cr_assert_str_eq(read_str(c, &k0, buf, sizeof buf), val, "key-0 was read last");
        cr_assert_leq(b.used, b.limit);
    }
    cr_assert_gt(b.evictions, 0);
    cr_assert_eq(b.used, store_cache_bytes(c));
    store_key_t k1 = key3("t", "b", "key-1"); /* written early, never read: gone */
    cr_assert_str_empty(read_str(c, &k1, buf, sizeof buf));
    store_key_t last = key3("t", "b", "key-399");
    cr_assert_str_eq(read_str(c, &last, buf, sizeof buf), val);
    store_cache_free(c);
}

Test(store_cache, a_full_budget_never_takes_another_caches_entries)
{
    store_cache_budget_t b = {.limit = 32 * 1024};
    store_cache_t *a = store_cache_new(&b), *other = store_cache_new(&b);
    char val[400], key[32], buf[500];
    memset(val, 'a', sizeof val - 1);
    val[sizeof val - 1] = 0;
    int n = 0;
    while (b.used + 1024 < b.limit) { /* fill the budget through a */
        snprintf(key, sizeof key, "k%d", n++);
        store_key_t k = key3("t", "b", key);
        put_str(a, &k, val);
    }
    size_t held = store_cache_count(a);
    store_key_t ko = key3("t", "b", "other");
    for (int i = 0; i < 10; i++)
        put_str(other, &ko, val); /* fits or not: a keeps everything */
    cr_assert_eq(store_cache_count(a), held);
    for (int i = 0; i < 100; i++) { /* other can never grow past the room left */
        snprintf(key, sizeof key, "o%d", i);
        store_key_t k = key3("t", "b", key);
        put_str(other, &k, val);
    }
    cr_assert_eq(store_cache_count(a), held);
    cr_assert_leq(b.used, b.limit);
    store_key_t first = key3("t", "b", "k0");
    cr_assert_str_eq(read_str(a, &first, buf, sizeof buf), val);
    store_cache_free(other);
    store_cache_free(a);
    cr_assert_eq(b.used, 0);
}

Test(store_cache, too_big_values_and_off)
{
    store_cache_budget_t b = {.limit = 64 * 1024};
    store_cache_t *c = store_cache_new(&b);
    size_t n = b.limit / 64 + 1;
    char *big = calloc(1, n);
    store_key_t k = key3("t", "b", "k");
    put_str(c, &k, "small");
    store_cache_put(c, &k, big, n); /* too big: not cached, and the old value is gone */
    store_val_t v = {0};
    cr_assert_not(store_cache_get(c, &k, &v));
    cr_assert_eq(store_cache_count(c), 0);
    free(big);
    store_cache_free(c);

    store_cache_budget_t off = {.limit = 0};
    cr_assert_null(store_cache_new(&off));
    store_cache_put(NULL, &k, "x", 1); /* a NULL cache is a cache that never holds anything */
    cr_assert_not(store_cache_get(NULL, &k, &v));
    store_cache_erase(NULL, &k);
    store_cache_clear(NULL);
    store_cache_free(NULL);
    cr_assert_eq(off.misses, 0);
}

Test(store_cache, clear_gives_everything_back)
{
    store_cache_budget_t b = {.limit = 1 << 20};
    store_cache_t *c = store_cache_new(&b);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "%d", i);
        store_key_t k = key3("t", "b", key);
        put_str(c, &k, "value");
    }
    cr_assert_gt(b.used, 0);
    store_cache_clear(c);
    cr_assert_eq(b.used, 0);
    cr_assert_eq(store_cache_count(c), 0);
    store_key_t k = key3("t", "b", "5");
    store_val_t v = {0};
    cr_assert_not(store_cache_get(c, &k, &v));
    store_cache_free(c);
}
