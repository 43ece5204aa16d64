/*
 * store_cask_stress.c — TSan stress of the bitcask backend (storage/cask.c): 4 threads, each
 * owning two partitions of one engine, overwrite and delete keys (single puts, batches and
 * group writes across their two partitions), read every write back, and fold their
 * partitions, while 64 KiB files make the log rotate and the merge thread copy and delete
 * files underneath them. Each thread keeps the expected state; at the end, and again after
 * the engine is reopened (replaying the merged log), every key must hold exactly its last
 * value or be absent.
 */
#include "storage/backend.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NTHREADS = 4, NKEYS = 200, ROUNDS = 6000, VAL = 600 };

static store_engine_t *g_eng;
static char g_dir[] = "/tmp/cairn-cask-stress.XXXXXX";

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "store_cask_stress: " __VA_ARGS__);                           \
            fprintf(stderr, "\n");                                                         \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

typedef struct {
    unsigned id;
    store_backend_t *b[2];
    int version[2][NKEYS];  /* -1: absent */
} worker_t;

static store_key_t key_of(int i, char *buf)
{
    int n = snprintf(buf, 32, "k%04d", i);
    return (store_key_t){{(const uint8_t *)"default", 7}, {(const uint8_t *)"b", 1},
                         {(const uint8_t *)buf, (size_t)n}};
}

static void value_of(const worker_t *w, int part, int i, int ver, char *v)
{
    int n = snprintf(v, VAL, "t%u p%d k%d v%d ", w->id, part, i, ver);
    memset(v + n, 'a' + ver % 26, (size_t)(VAL - n));
}

static void check_key(worker_t *w, int part, int i)
{
    char kb[32], want[VAL];
    store_key_t k = key_of(i, kb);
    store_val_t v;
    int rc = store_get(w->b[part], &k, &v);
    if (w->version[part][i] < 0) {
        CHECK(rc == STORE_ENOTFOUND, "thread %u p%d key %d: deleted, got %s", w->id, part, i,
              store_strerror(rc));
        return;
    }
    CHECK(rc == 0, "thread %u p%d key %d: %s (%s)", w->id, part, i, store_strerror(rc),
          store_errmsg(w->b[part]));
    value_of(w, part, i, w->version[part][i], want);
    CHECK(v.n == VAL && memcmp(v.p, want, VAL) == 0, "thread %u p%d key %d: wrong value",
          w->id, part, i);
    store_val_release(&v);
}

static int count_fn(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    (void)k;
    (void)v;
    ++*(int *)arg;
    return n == VAL ? 0 : -100;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    unsigned seed = w->id * 7919u + 1;
    char v[VAL], v2[VAL], kb[32], kb2[32];
    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)(rand_r(&seed) % NKEYS), part = (int)(rand_r(&seed) % 2);
        int ver = r + 1, op = (int)(rand_r(&seed) % 10);
        store_key_t k = key_of(i, kb);
        if (op < 6) {
            value_of(w, part, i, ver, v);
            CHECK(store_put(w->b[part], &k, v, VAL) == 0, "put");
            w->version[part][i] = ver;
        } else if (op < 7) {
            CHECK(store_del(w->b[part], &k) == 0, "del");
            w->version[part][i] = -1;
        } else if (op < 9) { /* one group write across both partitions */
            int j = (int)(rand_r(&seed) % NKEYS);
            store_key_t k2 = key_of(j, kb2);
            value_of(w, 0, i, ver, v);
            value_of(w, 1, j, ver, v2);
            store_group_op_t g[2] = {
                {w->b[0], {STORE_OP_PUT, k, v, VAL}, 0},
                {w->b[1], {STORE_OP_PUT, k2, v2, VAL}, 0},
            };
            store_write_group(g, 2);
            CHECK(g[0].rc == 0 && g[1].rc == 0, "group write");
            w->version[0][i] = ver;
            w->version[1][j] = ver;
            check_key(w, 1, j);
            part = 0;
        } else {
            int n = 0, live = 0;
            CHECK(store_fold(w->b[part], &(store_fold_t){.values = true}, count_fn, &n) == 0,
                  "fold");
            for (int j = 0; j < NKEYS; j++)
                live += w->version[part][j] >= 0;
            CHECK(n == live, "thread %u fold saw %d keys, %d live", w->id, n, live);
        }
        check_key(w, part, i);
    }
    return NULL;
}

/* Bytes of the log files: far below what was written once merges have run. */
static unsigned long long log_bytes(void)
{
    char dir[64], path[400];
    snprintf(dir, sizeof dir, "%s/bitcask", g_dir);
    DIR *d = opendir(dir);
    unsigned long long total = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            total += (unsigned long long)st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

static void open_all(worker_t *ws)
{
    store_config_t cfg = store_config_default(g_dir);
    cfg.kind = STORE_ENGINE_BITCASK;
    cfg.cask_file_bytes = 64u << 10;
    CHECK(store_engine_new(&cfg, &g_eng) == 0, "engine");
    for (unsigned t = 0; t < NTHREADS; t++)
        for (int p = 0; p < 2; p++)
            CHECK(store_open(g_eng, t * 2 + (unsigned)p, &ws[t].b[p], NULL, 0) == 0, "open");
}

static void close_all(worker_t *ws)
{
    for (unsigned t = 0; t < NTHREADS; t++)
        for (int p = 0; p < 2; p++)
            store_close(ws[t].b[p]);
    store_engine_free(g_eng);
}

int main(void)
{
    CHECK(mkdtemp(g_dir), "mkdtemp");
    static worker_t ws[NTHREADS];
    for (unsigned t = 0; t < NTHREADS; t++) {
        ws[t].id = t;
        memset(ws[t].version, 0xff, sizeof ws[t].version);
    }
    open_all(ws);
    pthread_t th[NTHREADS];
    for (unsigned t = 0; t < NTHREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker_main, &ws[t]) == 0, "thread");
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    /* about 10 MB were written, 1 MB of it live at most: the background thread (which
     * fsyncs each closed file before it merges) must give the space back; bounded: 60 s */
    unsigned long long bytes = log_bytes();
    for (int i = 0; i < 600 && bytes >= (6u << 20); i++) {
        usleep(100 * 1000);
        bytes = log_bytes();
    }
    CHECK(bytes < (6u << 20), "%llu bytes of log 60 s after the writes: no merge gave space "
          "back", bytes);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned t = 0; t < NTHREADS; t++)
            for (int p = 0; p < 2; p++)
                for (int i = 0; i < NKEYS; i++)
                    check_key(&ws[t], p, i);
        close_all(ws);
        if (pass == 0)
            open_all(ws);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    CHECK(system(cmd) == 0, "rm");
    printf("store_cask_stress: %d threads x %d rounds, every key as last written\n", NTHREADS,
           ROUNDS);
    return 0;
}
