/*
 * test_store_cask.c — what only the bitcask backend promises (the shared contract is in
 * test_store_backend.c): puts, deletes and partition drops survive close and reopen; a write
 * torn at the end of a file is cut off and reported, damage followed by good frames refuses
 * the start; merges give the dead bytes back without losing or resurrecting anything; synced
 * writes survive SIGKILL; a full disk is an error that leaves nothing torn, and writes resume
 * when space returns; a second process is told the log is locked; a data dir keeps its
 * engine.
 */
#include "storage/backend.h"
#include "store_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

static store_config_t cask_cfg(const char *dir, uint64_t file_bytes)
{
    store_config_t cfg = store_config_default(dir);
    cfg.kind = STORE_ENGINE_BITCASK;
    if (file_bytes)
        cfg.cask_file_bytes = file_bytes;
    return cfg;
}

static store_engine_t *engine(const char *dir, uint64_t file_bytes)
{
    store_config_t cfg = cask_cfg(dir, file_bytes);
    store_engine_t *e = NULL;
    cr_assert_eq(store_engine_new(&cfg, &e), 0);
    return e;
}

/* Opens partition p; the open's notice (if any) goes to note. */
static store_backend_t *open_p(store_engine_t *e, uint64_t p, char *note, size_t len)
{
    store_backend_t *b = NULL;
    char err[512];
    int rc = store_open(e, p, &b, err, sizeof err);
    cr_assert_eq(rc, 0, "open: %s: %s", store_strerror(rc), err);
    if (note)
        snprintf(note, len, "%s", err);
    return b;
}

static store_key_t key_for(int i, char *buf)
{
    sprintf(buf, "key-%06d", i);
    return (store_key_t){STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE_STR(buf)};
}

/* The value of key i at version ver: distinct per (i, ver), `size` bytes. */
static void value_for(int i, int ver, char *buf, size_t size)
{
    int n = snprintf(buf, size, "value %d version %d ", i, ver);
    for (size_t j = (size_t)n; j < size; j++)
        buf[j] = (char)('a' + (i + ver + (int)j) % 26);
}

static void put_v(store_backend_t *b, int i, int ver, size_t size)
{
    char kb[32], v[4096];
    store_key_t k = key_for(i, kb);
    value_for(i, ver, v, size);
    int rc = store_put(b, &k, v, size);
    cr_assert_eq(rc, 0, "put %d: %s (%s)", i, store_strerror(rc), store_errmsg(b));
}

static void del_k(store_backend_t *b, int i)
{
    char kb[32];
    store_key_t k = key_for(i, kb);
    cr_assert_eq(store_del(b, &k), 0);
}

/* Key i holds version ver (size bytes), or is absent when ver < 0. */
static void expect(store_backend_t *b, int i, int ver, size_t size)
{
    char kb[32], want[4096];
    store_key_t k = key_for(i, kb);
    store_val_t v;
    int rc = store_get(b, &k, &v);
    if (ver < 0) {
        cr_assert_eq(rc, STORE_ENOTFOUND, "key %d should be absent, got %s", i, store_strerror(rc));
        return;
    }
    cr_assert_eq(rc, 0, "key %d: %s (%s)", i, store_strerror(rc), store_errmsg(b));
    value_for(i, ver, want, size);
    cr_assert(v.n == size && memcmp(v.p, want, size) == 0, "key %d: not version %d", i, ver);
    store_val_release(&v);
}

static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    uint64_t total = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (de->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return total;
}

/* The path of the newest (last = true) or oldest log file. */
static void log_file(const char *dir, bool last, char *out, size_t len)
{
    char cdir[3000];
    snprintf(cdir, sizeof cdir, "%s/bitcask", dir);
    DIR *d = opendir(cdir);
    cr_assert_not_null(d);
    char best[300] = "";
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (!strstr(de->d_name, ".log"))
            continue;
        if (!best[0] || (last ? strcmp(de->d_name, best) > 0 : strcmp(de->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(d);
    cr_assert(best[0], "no log file in %s", cdir);
    snprintf(out, len, "%s/%s", cdir, best);
}

Test(store_cask, puts_deletes_and_drops_survive_reopen, .timeout = 60)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, 256 << 10); /* small files: the state spans several */
    store_backend_t *a = open_p(e, 1, NULL, 0), *b = open_p(e, 2, NULL, 0);
    for (int i = 0; i < 2000; i++) {
        put_v(a, i, 0, 300);
        put_v(b, i, 0, 300);
    }
    for (int i = 0; i < 2000; i += 3)
        put_v(a, i, 1, 200);
    for (int i = 0; i < 2000; i += 7)
        del_k(a, i);
    cr_assert_eq(store_drop(b), 0);
    put_v(b, 5, 9, 100); /* written after the drop: survives it */
    store_close(a);
    store_close(b);
    store_engine_free(e);

    e = engine(dir, 256 << 10);
    a = open_p(e, 1, NULL, 0);
    b = open_p(e, 2, NULL, 0);
    for (int i = 0; i < 2000; i++)
        expect(a, i, i % 7 == 0 ? -1 : i % 3 == 0 ? 1 : 0, i % 3 == 0 ? 200 : 300);
    store_status_t st;
    cr_assert_eq(store_status(b, &st), 0);
    cr_assert_eq(st.keys, 1, "partition 2 holds only the key written after its drop");
    cr_assert(st.keys_exact);
    expect(b, 5, 9, 100);
    expect(b, 6, -1, 0);
    store_close(a);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_cask, torn_write_at_the_end_is_cut_off_and_reported)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, 0);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    for (int i = 0; i < 100; i++)
        put_v(b, i, 0, 500);
    store_close(b);
    store_engine_free(e);
    /* a crash in the middle of the last append: its last 100 bytes never reached the disk */
    char path[4096];
    log_file(dir, true, path, sizeof path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - 100), 0);

    char note[512];
    e = engine(dir, 0);
    b = open_p(e, 1, note, sizeof note);
    cr_assert_not_null(strstr(note, "torn"), "the open reports the cut: '%s'", note);
    for (int i = 0; i < 99; i++)
        expect(b, i, 0, 500);
    expect(b, 99, -1, 0);
    put_v(b, 99, 1, 500); /* the log goes on where the good frames end */
    store_close(b);
    store_engine_free(e);

    e = engine(dir, 0);
    b = open_p(e, 1, note, sizeof note);
    cr_assert_str_empty(note, "nothing to cut the second time: '%s'", note);
    expect(b, 99, 1, 500);
    expect(b, 98, 0, 500);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

/* Writes keys 0..n-1 (1000-byte values) into partition 1 of a fresh engine over 64 KiB files,
 * closes it, and returns the path of the oldest (newest = false) or newest log file. */
static void fill(const char *dir, int n, bool newest, char *path, size_t len)
{
    store_engine_t *e = engine(dir, 64 << 10);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    for (int i = 0; i < n; i++)
        put_v(b, i, 0, 1000);
    store_close(b);
    store_engine_free(e);
    log_file(dir, newest, path, len);
}

Test(store_cask, damage_followed_by_good_frames_refuses_the_start_in_any_file)
{
    for (int newest = 0; newest < 2; newest++) {
        char *dir = test_tmpdir();
        char path[4096];
        fill(dir, 500, newest, path, sizeof path); /* about 8 files */
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0);
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_gt(st.st_size, 6000, "%s holds frames after offset 5000", path);
        cr_assert_eq(pwrite(fd, "\xde\xad\xbe\xef", 4, 5000), 4); /* 4 damaged bytes */
        close(fd);

        store_engine_t *e = engine(dir, 64 << 10);
        store_backend_t *b2 = NULL;
        char err[512];
        int rc = store_open(e, 1, &b2, err, sizeof err);
        cr_assert_eq(rc, STORE_ECORRUPT, "got %s: %s", store_err_name(rc), err);
        cr_assert_not_null(strstr(err, path), "the message names the file: %s", err);
        store_engine_free(e);
        test_rmdir(dir);
    }
}

Test(store_cask, a_torn_tail_in_an_older_file_is_cut_off_too)
{
    /* a closed file is synced in the background: a crash can tear its tail as well */
    char *dir = test_tmpdir();
    char path[4096];
    fill(dir, 500, false, path, sizeof path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size - 100), 0);
    char note[512];
    store_engine_t *e = engine(dir, 64 << 10);
    store_backend_t *b = open_p(e, 1, note, sizeof note);
    cr_assert_not_null(strstr(note, "torn"), "'%s'", note);
    int missing = 0;
    for (int i = 0; i < 500; i++) {
        char kb[32];
        store_key_t k = key_for(i, kb);
        store_val_t v;
        if (store_get(b, &k, &v) == 0)
            store_val_release(&v);
        else
            missing++;
    }
    cr_assert_eq(missing, 1, "only the torn write is gone (%d missing)", missing);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_cask, merge_gives_dead_bytes_back_and_keeps_every_key, .timeout = 90)
{
    char *dir = test_tmpdir();
    char cdir[4096];
    snprintf(cdir, sizeof cdir, "%s/bitcask", dir);
    store_engine_t *e = engine(dir, 64 << 10);
    store_backend_t *a = open_p(e, 1, NULL, 0), *b = open_p(e, 2, NULL, 0);
    /* 300 keys of 1000 bytes (about 300 KB live), each written 20 times (6 MB) */
    for (int ver = 0; ver < 20; ver++)
        for (int i = 0; i < 300; i++)
            put_v(ver % 2 ? a : b, i, ver, 1000);
    for (int i = 0; i < 300; i += 2)
        del_k(a, i);
    /* more writes rotate the files, which starts the merge; wait for it (bounded) */
    uint64_t bytes = dir_bytes(cdir);
    for (int round = 0; round < 200 && bytes > 2u << 20; round++) {
        put_v(b, 1000 + round % 10, round, 1000);
        usleep(20000);
        bytes = dir_bytes(cdir);
    }
    cr_assert_leq(bytes, 2u << 20, "the merge gave the dead bytes back: %llu bytes on disk",
                  (unsigned long long)bytes);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 300; i++) {
            expect(a, i, i % 2 == 0 ? -1 : 19, 1000); /* deleted ones stay deleted */
            expect(b, i, 18, 1000);
        }
        if (pass)
            break;
        store_close(a);
        store_close(b);
        store_engine_free(e); /* and after a restart, which replays the merged log */
        e = engine(dir, 64 << 10);
        a = open_p(e, 1, NULL, 0);
        b = open_p(e, 2, NULL, 0);
    }
    store_close(a);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_cask, synced_writes_survive_sigkill, .timeout = 60)
{
    char *dir = test_tmpdir();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* child: no Criterion calls here, only _exit codes */
        close(fds[0]);
        store_config_t cfg = cask_cfg(dir, 256 << 10);
        cfg.sync = STORE_SYNC_ALWAYS;
        store_engine_t *e = NULL;
        store_backend_t *b = NULL;
        if (store_engine_new(&cfg, &e) != 0 || store_open(e, 3, &b, NULL, 0) != 0)
            _exit(2);
        for (int i = 0; i < 1000000; i++) {
            char kb[32], v[200];
            store_key_t k = key_for(i, kb);
            value_for(i, 0, v, sizeof v);
            if (store_put(b, &k, v, sizeof v) != 0)
                _exit(3);
            uint32_t ack = (uint32_t)i;
            if (write(fds[1], &ack, sizeof ack) != sizeof ack)
                _exit(4);
        }
        _exit(5);
    }
    close(fds[1]);
    int64_t last = test_kill_after_acks(pid, fds[0], 300);

    store_engine_t *e = engine(dir, 256 << 10);
    store_backend_t *b = open_p(e, 3, NULL, 0);
    for (int i = 0; i <= last; i++)
        expect(b, i, 0, 200);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_cask, a_second_process_is_told_the_log_is_locked)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, 0);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* flock is per open file: a second engine in a child is a second opener */
        store_config_t cfg = cask_cfg(dir, 0);
        store_engine_t *e2 = NULL;
        store_backend_t *b2 = NULL;
        char err[512];
        if (store_engine_new(&cfg, &e2) != 0)
            _exit(2);
        int rc = store_open(e2, 1, &b2, err, sizeof err);
        _exit(rc == STORE_ELOCKED && strstr(err, "another cairnd") ? 0 : 3);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw no lock (status %d)",
              status);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_cask, a_data_dir_keeps_its_engine)
{
    char *dir = test_tmpdir();
    cr_assert_eq(store_engine_of(dir, STORE_ENGINE_MEMORY), STORE_ENGINE_MEMORY);
    store_engine_t *e = engine(dir, 0);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    put_v(b, 1, 0, 10);
    store_close(b);
    store_engine_free(e);
    cr_assert_eq(store_engine_of(dir, STORE_ENGINE_MEMORY), STORE_ENGINE_BITCASK);
    store_config_t cfg = store_config_default(dir);
    cr_assert_eq(store_engine_new(&cfg, &e), STORE_EENGINE, "LevelDB on a bitcask data dir");

    char *dir2 = test_tmpdir();
    cfg = store_config_default(dir2);
    cr_assert_eq(store_engine_new(&cfg, &e), 0);
    b = open_p(e, 1, NULL, 0);
    put_v(b, 1, 0, 10);
    store_close(b);
    store_engine_free(e);
    cr_assert_eq(store_engine_of(dir2, STORE_ENGINE_MEMORY), STORE_ENGINE_LEVELDB);
    cfg = cask_cfg(dir2, 0);
    cr_assert_eq(store_engine_new(&cfg, &e), STORE_EENGINE, "bitcask on a LevelDB data dir");
    test_rmdir(dir);
    test_rmdir(dir2);
}

Test(store_cask, full_disk_is_an_error_and_writes_resume_when_space_returns, .timeout = 60)
{
    char filler[512];
    char *dir = test_small_disk(filler, sizeof filler);

    store_engine_t *e = engine(dir, 256 << 10);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    int rc = 0, acked = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) { /* 4 MB of writes cannot fit in 1 MiB */
        char kb[32], v[4096];
        store_key_t k = key_for(i, kb);
        value_for(i, 0, v, sizeof v);
        if ((rc = store_put(b, &k, v, sizeof v)) == 0)
            acked++;
    }
    cr_assert_eq(rc, STORE_ENOSPC, "expected ENOSPC, got %s: %s", store_err_name(rc),
                 store_errmsg(b));
    cr_assert_not_null(strstr(store_errmsg(b), "No space left"), "the reason is kept: %s",
                       store_errmsg(b));
    cr_assert_gt(acked, 0);
    expect(b, acked, -1, 0); /* the refused write left nothing behind */

    cr_assert_eq(unlink(filler), 0);
    put_v(b, acked, 1, 4096);
    for (int i = 0; i < acked; i++)
        expect(b, i, 0, 4096);
    store_close(b);
    store_engine_free(e);
    char note[512]; /* the failed appends were cut back: nothing torn to find at start */
    e = engine(dir, 256 << 10);
    b = open_p(e, 1, note, sizeof note);
    cr_assert_str_empty(note, "%s", note);
    for (int i = 0; i < acked; i++)
        expect(b, i, 0, 4096);
    expect(b, acked, 1, 4096);
    store_close(b);
    store_engine_free(e);
    test_small_disk_free(dir);
}

/* ---------------------------------------------------------------- fold order (skip list) */

typedef struct {
    char keys[600][16];
    int n;
} seen_t;

static int seen_fn(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    (void)v;
    (void)n;
    seen_t *s = arg;
    cr_assert_lt(s->n, 600);
    cr_assert_lt(k->key.n, sizeof s->keys[0]);
    memcpy(s->keys[s->n], k->key.p, k->key.n);
    s->keys[s->n][k->key.n] = '\0';
    s->n++;
    return s->n == 37 ? STORE_FOLD_STOP : 0; /* chunks of 37: resumes land anywhere */
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Folds b in chunks (each resuming after the last key seen) and checks the keys are exactly
 * the live ones of the model, in order. */
static void fold_matches(store_backend_t *b, const bool *live, int nkeys)
{
    static char want[600][16];
    int nw = 0;
    for (int i = 0; i < nkeys; i++)
        if (live[i])
            snprintf(want[nw++], sizeof want[0], "k%x", i * 7919 % 4096);
    qsort(want, (size_t)nw, sizeof want[0], cmp_str);
    int got = 0;
    char last[16] = "";
    for (int round = 0; round < 100; round++) {
        seen_t s = {.n = 0};
        store_key_t after = {STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE_STR(last)};
        store_fold_t f = {.after = last[0] ? &after : NULL, .values = round % 2 == 0};
        cr_assert_eq(store_fold(b, &f, seen_fn, &s), 0);
        for (int i = 0; i < s.n; i++, got++) {
            cr_assert_lt(got, nw, "fold saw more keys than are live");
            cr_assert_str_eq(s.keys[i], want[got], "key %d of the fold", got);
        }
        if (s.n < 37)
            break;
        snprintf(last, sizeof last, "%s", s.keys[s.n - 1]);
    }
    cr_assert_eq(got, nw, "fold saw %d of %d live keys", got, nw);
}

Test(store_cask, folds_follow_key_order_through_inserts_and_deletes, .timeout = 60)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, 0);
    store_backend_t *b = open_p(e, 1, NULL, 0);
    enum { NKEYS = 500 };
    bool live[NKEYS] = {false};
    prng_t r = {test_seed()};
    for (int step = 0; step < 6000; step++) {
        int i = (int)prng_below(&r, NKEYS);
        char kb[16];
        snprintf(kb, sizeof kb, "k%x", i * 7919 % 4096);
        store_key_t k = {STORE_SLICE("default"), STORE_SLICE("b"), STORE_SLICE_STR(kb)};
        if (prng_below(&r, 3) == 0) {
            cr_assert_eq(store_del(b, &k), 0);
            live[i] = false;
        } else {
            cr_assert_eq(store_put(b, &k, "v", 1), 0);
            live[i] = true;
        }
        if (step % 1500 == 1499)
            fold_matches(b, live, NKEYS);
    }
    store_close(b);
    store_engine_free(e);
    e = engine(dir, 0); /* the order rebuilt by the replay */
    b = open_p(e, 1, NULL, 0);
    fold_matches(b, live, NKEYS);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}
