/*
 * store_test.h — helpers shared by the storage test suites: a seeded PRNG (the seed comes
 * from STORE_TEST_SEED or the clock and is printed with every failure), content builders,
 * temporary directories, a small disk that fills up, and killing a writer mid-stream.
 */
#ifndef CAIRN_STORE_TEST_H
#define CAIRN_STORE_TEST_H

#include "storage/backend.h"
#include "storage/object.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* A fresh directory with a 2 MiB tmpfs mounted on it, 1 MiB of which <dir>/filler takes
 * ("other data": unlinking it is "space returns"; its path goes to filler). Skips the test
 * when the mount is not allowed. Undo with test_small_disk_free(). */
static inline char *test_small_disk(char *filler, size_t len)
{
    char *dir = test_tmpdir();
    if (mount("tmpfs", dir, "tmpfs", 0, "size=2m") != 0) {
        int err = errno;
        test_rmdir(dir);
        cr_skip_test("cannot mount a 2 MiB tmpfs (%s): run as root to test disk-full", strerror(err));
    }
    snprintf(filler, len, "%s/filler", dir);
    FILE *fp = fopen(filler, "w");
    cr_assert_not_null(fp);
    static char mb[1 << 20];
    cr_assert_eq(fwrite(mb, 1, sizeof mb, fp), sizeof mb);
    fclose(fp);
    return dir;
}

static inline void test_small_disk_free(char *dir)
{
    umount2(dir, MNT_DETACH);
    test_rmdir(dir);
}

/* A child that writes acknowledged keys 0, 1, 2, ... and sends each number as a uint32 on
 * ack_fd: waits for at least `min` acknowledgements (bounded: 30 s), SIGKILLs it mid-stream,
 * reaps it, drains the acks that were in flight, closes ack_fd and returns the last one. */
static inline int64_t test_kill_after_acks(pid_t pid, int ack_fd, int64_t min)
{
    int64_t last = -1;
    for (int polls = 0; last < min && polls < 300; polls++) {
        struct pollfd pfd = {ack_fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        uint32_t ack;
        while (last < min && read(ack_fd, &ack, sizeof ack) == sizeof ack)
            last = ack;
    }
    cr_assert_geq(last, min, "child did not get going (last ack %lld)", (long long)last);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was killed, not exited");
    uint32_t ack;
    while (read(ack_fd, &ack, sizeof ack) == sizeof ack)
        last = ack;
    close(ack_fd);
    return last;
}

#endif
