/*
 * store_test.h — helpers shared by the storage test suites: a seeded PRNG (the seed comes
 * from STORE_TEST_SEED or the clock and is printed with every failure), content builders,
 * and temporary directories.
 */
#ifndef CAIRN_STORE_TEST_H
#define CAIRN_STORE_TEST_H

#include "storage/backend.h"
#include "storage/object.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint64_t s;
} prng_t;

static inline uint64_t prng_next(prng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t prng_below(prng_t *r, uint32_t n)
{
    return (uint32_t)(prng_next(r) % n);
}

static inline uint64_t test_seed(void)
{
    const char *e = getenv("STORE_TEST_SEED");
    if (e && *e)
        return strtoull(e, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
}

static inline store_actor_t test_actor(uint32_t i)
{
    return store_actor_make(0xC0FFEE00u + i, i * 7, 1);
}

/* Content whose value is the text of id (so every write is distinguishable). */
typedef struct {
    char buf[32];
    store_content_t c;
} test_content_t;

static inline store_content_t *test_content(test_content_t *t, uint64_t id, uint32_t ts)
{
    snprintf(t->buf, sizeof t->buf, "v%llu", (unsigned long long)id);
    memset(&t->c, 0, sizeof t->c);
    t->c.value = STORE_SLICE_STR(t->buf);
    t->c.content_type = STORE_SLICE("text/plain");
    t->c.last_mod = ts;
    return &t->c;
}

/* Makes a fresh directory under /tmp; caller removes it with test_rmdir(). */
static inline char *test_tmpdir(void)
{
    char *d = strdup("/tmp/cairn-store-XXXXXX");
    cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
    return d;
}

static inline void test_rmdir(char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", d);
    free(d);
}

#define TKEY(t, b, k) ((store_key_t){STORE_SLICE(t), STORE_SLICE(b), STORE_SLICE(k)})

#endif
