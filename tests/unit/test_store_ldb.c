/*
 * test_store_ldb.c — what only the LevelDB backend promises: data survives close/reopen
 * (100k real objects), synced writes survive SIGKILL, a full disk is an error and not a
 * crash (and writes resume once space returns), a second opener is told the store is locked,
 * partitions stay apart in both layouts, a group write spans partitions, and a data dir
 * keeps the layout it was created with.
 */
#include "storage/backend.h"
#include "storage/object.h"
#include "store_test.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

/* Criterion 2.4.1's runner leaks 48 bytes of its own bookkeeping when this suite runs with
 * --jobs 2 (allocated inside libcriterion, after every test passed). LeakSanitizer reads
 * this hook from the executable; only leaks whose stack is inside libcriterion are ignored. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcriterion.so\n";
}

static store_engine_t *engine_in(const char *dir, store_layout_t layout, store_sync_t sync,
                                 size_t wbuf)
{
    store_config_t cfg = store_config_default(dir);
    cfg.layout = layout;
    cfg.sync = sync;
    cfg.sync_interval_ms = 50;
    if (wbuf)
        cfg.write_buffer_bytes = wbuf;
    store_engine_t *e = NULL;
    cr_assert_eq(store_engine_new(&cfg, &e), 0);
    return e;
}

static store_engine_t *engine(const char *dir, store_sync_t sync, size_t wbuf)
{
    return engine_in(dir, STORE_LAYOUT_NODE, sync, wbuf);
}

static store_backend_t *open_p(store_engine_t *e, uint64_t p)
{
    store_backend_t *b = NULL;
    char err[256];
    int rc = store_open(e, p, &b, err, sizeof err);
    cr_assert_eq(rc, 0, "open: %s: %s", store_strerror(rc), err);
    return b;
}

/* The encoded object for key i: one sibling whose value names i. */
static void object_for(uint64_t i, uint8_t **buf, size_t *len)
{
    test_content_t tc;
    store_props_t p = store_props_default(false);
    store_writer_t w = {test_actor(1), 1000, 0};
    store_obj_t *o = NULL;
    cr_assert_eq(store_obj_coord_put(NULL, NULL, test_content(&tc, i, 1000), &w, &p, &o, NULL), 0);
    cr_assert_eq(store_obj_encode(o, buf, len), 0);
    store_obj_free(o);
}

static store_key_t key_for(uint64_t i, char *buf)
{
    sprintf(buf, "key-%08llu", (unsigned long long)i);
    return (store_key_t){STORE_SLICE("default"), STORE_SLICE("bench"), STORE_SLICE_STR(buf)};
}

static bool holds_key(store_backend_t *b, const store_key_t *k)
{
    store_val_t v;
    if (store_get(b, k, &v) != 0)
        return false;
    store_val_release(&v);
    return true;
}

static bool holds_object(store_backend_t *b, uint64_t i)
{
    char kb[32];
    store_key_t k = key_for(i, kb);
    store_val_t v;
    if (store_get(b, &k, &v) != 0)
        return false;
    store_obj_t *o = NULL;
    bool ok = store_obj_decode(v.p, v.n, &o) == 0 && o->n_sibs == 1;
    char want[32];
    snprintf(want, sizeof want, "v%llu", (unsigned long long)i);
    ok = ok && o->sibs[0]->c.value.n == strlen(want) && !memcmp(o->sibs[0]->c.value.p, want, strlen(want));
    store_obj_free(o);
    store_val_release(&v);
    return ok;
}

Test(store_ldb, hundred_thousand_objects_survive_close_and_reopen, .timeout = 120)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, STORE_SYNC_NONE, 1 << 20);
    store_backend_t *b = open_p(e, 7);
    enum { N = 100000, BATCH = 100 };
    for (uint64_t i = 0; i < N; i += BATCH) {
        store_op_t ops[BATCH];
        uint8_t *vals[BATCH];
        char keys[BATCH][32];
        for (int j = 0; j < BATCH; j++) {
            ops[j].kind = STORE_OP_PUT;
            ops[j].key = key_for(i + (uint64_t)j, keys[j]);
            object_for(i + (uint64_t)j, &vals[j], &ops[j].val_len);
            ops[j].val = vals[j];
        }
        cr_assert_eq(store_write(b, ops, BATCH), 0, "%s", store_errmsg(b));
        for (int j = 0; j < BATCH; j++)
            free(vals[j]);
    }
    store_close(b);
    store_engine_free(e);

    e = engine(dir, STORE_SYNC_NONE, 0);
    b = open_p(e, 7);
    for (uint64_t i = 0; i < N; i++)
        cr_assert(holds_object(b, i), "key %llu missing after reopen", (unsigned long long)i);
    store_status_t st;
    cr_assert_eq(store_status(b, &st), 0);
    cr_assert_gt(st.keys, N / 3, "estimate %llu", (unsigned long long)st.keys);
    cr_assert_lt(st.keys, N * 3, "estimate %llu", (unsigned long long)st.keys);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_ldb, synced_writes_survive_sigkill, .timeout = 60)
{
    char *dir = test_tmpdir();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* child: no Criterion calls here, only _exit codes */
        close(fds[0]);
        store_config_t cfg = store_config_default(dir);
        cfg.sync = STORE_SYNC_ALWAYS;
        store_engine_t *e = NULL;
        store_backend_t *b = NULL;
        if (store_engine_new(&cfg, &e) != 0 || store_open(e, 3, &b, NULL, 0) != 0)
            _exit(2);
        test_content_t tc;
        store_props_t p = store_props_default(false);
        store_writer_t w = {test_actor(1), 1000, 0};
        for (uint64_t i = 0; i < 1000000; i++) {
            char kb[32];
            store_key_t k = key_for(i, kb);
            store_obj_t *o = NULL;
            uint8_t *v;
            size_t n;
            if (store_obj_coord_put(NULL, NULL, test_content(&tc, i, 1000), &w, &p, &o, NULL) != 0 ||
                store_obj_encode(o, &v, &n) != 0 || store_put(b, &k, v, n) != 0)
                _exit(3);
            store_obj_free(o);
            free(v);
            uint32_t ack = (uint32_t)i;
            if (write(fds[1], &ack, sizeof ack) != sizeof ack)
                _exit(4);
        }
        _exit(5); /* never reached in practice: the parent kills us first */
    }
    close(fds[1]);
    int64_t last = test_kill_after_acks(pid, fds[0], 300);

    store_engine_t *e = engine(dir, STORE_SYNC_NONE, 0);
    store_backend_t *b = open_p(e, 3);
    for (int64_t i = 0; i <= last; i++)
        cr_assert(holds_object(b, (uint64_t)i), "acknowledged key %lld lost (last ack %lld)",
                  (long long)i, (long long)last);
    store_close(b);
    store_engine_free(e);
    test_rmdir(dir);
}

Test(store_ldb, full_disk_is_an_error_and_writes_resume_when_space_returns, .timeout = 60)
{
    char filler[512];
    char *dir = test_small_disk(filler, sizeof filler);

    store_engine_t *e = engine(dir, STORE_SYNC_ALWAYS, 64 << 10);
    store_backend_t *b = open_p(e, 1);
    static char val[8192];
    prng_t r = {test_seed()};
    for (size_t i = 0; i < sizeof val; i++) /* incompressible, so Snappy cannot shrink it */
        val[i] = (char)prng_next(&r);
    int rc = 0, acked = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) { /* 8 MB of writes cannot fit in 1 MiB */
        char kb[32];
        store_key_t k = key_for((uint64_t)i, kb);
        val[0] = (char)i;
        rc = store_put(b, &k, val, sizeof val);
        if (rc == 0)
            acked++;
    }
    cr_assert_eq(rc, STORE_ENOSPC, "expected ENOSPC, got %s: %s", store_err_name(rc), store_errmsg(b));
    cr_assert_not_null(strstr(store_errmsg(b), "No space left"), "LevelDB's message is kept: %s",
                       store_errmsg(b));
    cr_assert_gt(acked, 0);
    char kb[32];
    store_key_t k = key_for(999999, kb);
    rc = store_put(b, &k, "x", 1);
    cr_assert(rc == STORE_ENOSPC || rc == 0, "still full: %s", store_strerror(rc));

    cr_assert_eq(unlink(filler), 0);
    /* a reopen that failed while the disk was full is not retried for 100 ms */
    for (int i = 0; i < 50; i++) {
        if ((rc = store_put(b, &k, "x", 1)) == 0)
            break;
        usleep(20 * 1000);
    }
    cr_assert_eq(rc, 0, "write within 1 s of space returning: %s: %s", store_strerror(rc),
                 store_errmsg(b));
    for (int i = 0; i < acked; i++) {
        store_key_t ki = key_for((uint64_t)i, kb);
        store_val_t v;
        cr_assert_eq(store_get(b, &ki, &v), 0, "acknowledged key %d lost", i);
        cr_assert_eq(v.n, sizeof val);
        cr_assert_eq(v.p[0], (uint8_t)(char)i);
        store_val_release(&v);
    }
    store_close(b);
    store_engine_free(e);
    test_small_disk_free(dir);
}

Test(store_ldb, second_opener_gets_locked_with_message)
{
    for (int layout = 0; layout < 2; layout++) {
        char *dir = test_tmpdir();
        store_engine_t *e = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        store_backend_t *b = open_p(e, 9), *b2 = NULL;
        char err[256];
        int rc = store_open(e, 9, &b2, err, sizeof err);
        cr_assert_eq(rc, STORE_ELOCKED, "got %s: %s", store_err_name(rc), err);
        cr_assert_not_null(strstr(err, "LOCK"), "message: %s", err);
        store_close(b);
        /* another engine on the same data dir (as a second node process would be) */
        store_engine_t *e2 = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        b = open_p(e, 9);
        rc = store_open(e2, layout == STORE_LAYOUT_NODE ? 10 : 9, &b2, err, sizeof err);
        cr_assert_eq(rc, STORE_ELOCKED, "second engine: %s: %s", store_err_name(rc), err);
        cr_assert_not_null(strstr(err, "LOCK"), "message: %s", err);
        store_close(b);
        store_engine_free(e2);
        store_engine_free(e);
        test_rmdir(dir);
    }
}

Test(store_ldb, interval_sync_policy_and_explicit_sync)
{
    char *dir = test_tmpdir();
    store_engine_t *e = engine(dir, STORE_SYNC_INTERVAL, 0);
    store_backend_t *b = open_p(e, 2);
    for (int i = 0; i < 50; i++) {
        char kb[32];
        store_key_t k = key_for((uint64_t)i, kb);
        cr_assert_eq(store_put(b, &k, "v", 1), 0);
    }
    cr_assert_eq(store_sync(b), 0);
    store_close(b);
    store_engine_free(e);
    store_config_t bad = store_config_default(dir);
    bad.sync = STORE_SYNC_INTERVAL; /* an interval of 0 ms is refused */
    cr_assert_eq(store_engine_new(&bad, &e), STORE_EINVAL);
    test_rmdir(dir);
}

Test(store_ldb, partitions_are_separate_in_both_layouts)
{
    for (int layout = 0; layout < 2; layout++) {
        char *dir = test_tmpdir();
        store_engine_t *e = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        /* 1 and 256: in the node layout their prefixes differ in different bytes */
        store_backend_t *a = open_p(e, 1), *b = open_p(e, 256);
        char kb[32];
        store_key_t k = key_for(1, kb);
        cr_assert_eq(store_put(a, &k, "a", 1), 0);
        store_val_t v;
        cr_assert_eq(store_get(b, &k, &v), STORE_ENOTFOUND);
        cr_assert_eq(store_is_empty(b), 1);
        cr_assert_eq(store_put(b, &k, "b", 1), 0);
        cr_assert_eq(store_drop(b), 0);
        cr_assert_eq(store_get(a, &k, &v), 0, "dropping one partition leaves the other");
        cr_assert(v.n == 1 && v.p[0] == 'a');
        store_val_release(&v);
        store_close(a);
        store_close(b);
        store_engine_free(e);
        test_rmdir(dir);
    }
}

static int count_keys(void *arg, const store_key_t *k, const uint8_t *v, size_t n)
{
    (void)k, (void)v, (void)n;
    ++*(int *)arg;
    return 0;
}

Test(store_ldb, group_write_spans_partitions_in_both_layouts)
{
    for (int layout = 0; layout < 2; layout++) {
        char *dir = test_tmpdir();
        store_engine_t *e = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        store_backend_t *p[3] = {open_p(e, 3), open_p(e, 4), open_p(e, 5)};
        char kb[6][32];
        store_group_op_t ops[6];
        for (int i = 0; i < 6; i++)
            ops[i] = (store_group_op_t){.backend = p[i % 3],
                                        .op = {.kind = STORE_OP_PUT, .key = key_for((uint64_t)i, kb[i]),
                                               .val = "v", .val_len = 1},
                                        .rc = 99};
        store_write_group(ops, 6);
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(ops[i].rc, 0, "op %d: %s", i, store_errmsg(ops[i].backend));
            cr_assert(holds_key(p[i % 3], &ops[i].op.key));
        }
        for (int i = 0; i < 3; i++) {
            int n = 0;
            cr_assert_eq(store_fold(p[i], NULL, count_keys, &n), 0);
            cr_assert_eq(n, 2, "partition %d holds its two keys only, not %d", i, n);
        }
        /* a bad key fails its group; in the node layout the group is one write: nothing of it
         * is stored, and every op reports the error */
        store_group_op_t bad[2] = {
            {.backend = p[0], .op = {.kind = STORE_OP_PUT, .key = key_for(100, kb[0]), .val = "v", .val_len = 1}},
            {.backend = p[1], .op = {.kind = STORE_OP_PUT, .key = {STORE_SLICE("default"), STORE_SLICE("b"), {NULL, 0}}, .val = "v", .val_len = 1}},
        };
        store_write_group(bad, 2);
        cr_assert_eq(bad[1].rc, STORE_EKEY);
        if (layout == STORE_LAYOUT_NODE) {
            cr_assert_eq(bad[0].rc, STORE_EKEY);
            cr_assert_not(holds_key(p[0], &bad[0].op.key), "a failed group stores nothing");
            cr_assert_not_null(strstr(store_errmsg(p[0]), "empty"), "%s", store_errmsg(p[0]));
        } else {
            cr_assert_eq(bad[0].rc, 0, "partition layout: one write per op");
        }
        for (int i = 0; i < 3; i++)
            store_close(p[i]);
        store_engine_free(e);
        test_rmdir(dir);
    }
}

Test(store_ldb, a_data_dir_keeps_its_layout)
{
    for (int layout = 0; layout < 2; layout++) {
        char *dir = test_tmpdir();
        store_layout_t other = layout == STORE_LAYOUT_NODE ? STORE_LAYOUT_PARTITION : STORE_LAYOUT_NODE;
        cr_assert_eq(store_layout_of(dir, other), other, "an empty data dir: the fallback");
        store_engine_t *e = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        store_backend_t *b = open_p(e, 2);
        char kb[32];
        store_key_t k = key_for(1, kb);
        cr_assert_eq(store_put(b, &k, "v", 1), 0);
        store_close(b);
        store_engine_free(e);
        cr_assert_eq(store_layout_of(dir, other), (store_layout_t)layout);

        store_config_t cfg = store_config_default(dir);
        cfg.layout = other;
        cr_assert_eq(store_engine_new(&cfg, &e), STORE_ELAYOUT, "an engine in the other layout");

        /* the same check per partition: two engines made while the dir was still empty */
        char *dir2 = test_tmpdir();
        store_engine_t *mine = engine_in(dir2, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        store_engine_t *theirs = engine_in(dir2, other, STORE_SYNC_NONE, 0);
        b = open_p(mine, 2);
        cr_assert_eq(store_put(b, &k, "v", 1), 0);
        store_backend_t *b2 = NULL;
        char err[256];
        int rc = store_open(theirs, other == STORE_LAYOUT_NODE ? 2 : 3, &b2, err, sizeof err);
        cr_assert_eq(rc, STORE_ELAYOUT, "got %s: %s", store_err_name(rc), err);
        const char *want = layout == STORE_LAYOUT_NODE ? "leveldb.layout = node"
                                                       : "leveldb.layout = partition";
        cr_assert_not_null(strstr(err, want), "the message says what to set: %s", err);
        store_close(b);
        store_engine_free(theirs);
        store_engine_free(mine);
        test_rmdir(dir2);

        e = engine_in(dir, (store_layout_t)layout, STORE_SYNC_NONE, 0);
        b = open_p(e, 2);
        cr_assert(holds_key(b, &k), "the data is still there in its own layout");
        store_close(b);
        store_engine_free(e);
        test_rmdir(dir);
    }
}
