/*
 * test_node_durability.c — what a real cairnd promises about data when things go wrong,
 * checked through libcairn (client/cairn.h) and cairn-admin:
 *   - kill -9 loses no acknowledged write and no acknowledged delete;
 *   - vnodes crashed on purpose while clients write and read: every call returns (an error at
 *     worst, never a timeout or a dropped connection) and no acknowledged write is lost;
 *   - both of these with the default engine (bitcask) and with storage.backend = leveldb;
 *   - tombstones are reaped after delete_mode, and kept with delete_mode = keep;
 *   - SIGTERM while requests are in flight: exit 0 promptly, every acknowledged write kept.
 *
 * Each test starts its own cairnd (cairnd_test.h) with a small ring in its own directory and
 * default bucket properties (n_val 3, r = w = quorum). Client threads never assert (Criterion
 * asserts only on the test's thread): they count what they saw, the test thread checks.
 * A key has one writer, and every value names its key and a sequence number, so what a read
 * may return is exact: the last acknowledged write, or a later write whose outcome the client
 * could not know (an error answer; Riak's rule: a failed write may still have been applied).
 */
#include "cairnd_test.h"
#include "client/cairn.h"
#include "storage/backend.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#define CLIENT_TIMEOUT_MS 10000 /* far above any answer a live node gives; a hang shows */
#define VALUE_MAX 512
#define THREADS 4

static char tmp_dir[256];

static void setup(void)
{
    cr_assert(ct_tmpdir(tmp_dir, sizeof tmp_dir, "durability"), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    ct_kill_all();
    ct_rmtree(tmp_dir);
}

TestSuite(durability, .init = setup, .fini = teardown, .timeout = 120);

/* ---------------------------------------------------------------- values and keys */

static void key_name(uint32_t id, char *out, size_t cap)
{
    snprintf(out, cap, "key-%06u", id);
}

/* The value written to key `id` by its write number `seq`: "id=<id> seq=<seq>:" then 0 to 299
 * bytes of any value, chosen by id and seq. Returns its length. */
static size_t make_value(uint32_t id, uint32_t seq, uint8_t out[VALUE_MAX])
{
    int head = snprintf((char *)out, VALUE_MAX, "id=%u seq=%u:", id, seq);
    uint64_t x = ((uint64_t)id << 32 | seq) * 0x9E3779B97F4A7C15ull + 1;
    size_t len = (size_t)head + (size_t)(x >> 33) % 300;
    for (size_t i = (size_t)head; i < len; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (uint8_t)(x >> 56);
    }
    return len;
}

/* The sequence number of a value make_value wrote for key id, or 0 when the bytes are not
 * exactly such a value (a torn or foreign value). */
static uint32_t value_seq(uint32_t id, cairn_buf_t v)
{
    char head[64];
    size_t n = v.len < sizeof head - 1 ? v.len : sizeof head - 1;
    if (n)
        memcpy(head, v.data, n);
    head[n] = '\0';
    unsigned got_id, seq;
    if (sscanf(head, "id=%u seq=%u:", &got_id, &seq) != 2 || got_id != id || seq == 0)
        return 0;
    uint8_t want[VALUE_MAX];
    size_t len = make_value(id, seq, want);
    return len == v.len && memcmp(want, v.data, len) == 0 ? seq : 0;
}

static cairn_t *connect_node(const ct_node_t *n)
{
    cairn_t *c = NULL;
    cairn_opts_t o = {.timeout_ms = CLIENT_TIMEOUT_MS};
    int rc = cairn_connect(n->host, &o, &c);
    return rc == CAIRN_OK ? c : NULL;
}

/* What a client thread saw: counts, and the first few problems in words. */
typedef struct tally {
    uint64_t ok, errors, bad; /* bad: an answer the test does not allow */
    int64_t max_ms;           /* slowest call */
    char problems[1024];
} tally_t;

static void tally_problem(tally_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tally_problem(tally_t *t, const char *fmt, ...)
{
    t->bad++;
    size_t used = strlen(t->problems);
    if (t->bad > 5 || used + 2 >= sizeof t->problems)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->problems + used, sizeof t->problems - used - 1, fmt, ap);
    va_end(ap);
    strcat(t->problems, "\n");
}

/* connect_node for a client thread: a failure is one of its problems. */
static cairn_t *connect_client(const ct_node_t *n, tally_t *t)
{
    cairn_t *c = connect_node(n);
    if (!c)
        tally_problem(t, "connect %s: %s", n->host, cairn_errmsg(NULL));
    return c;
}

static void tally_add(tally_t *sum, const tally_t *t)
{
    sum->ok += t->ok;
    sum->errors += t->errors;
    sum->bad += t->bad;
    if (t->max_ms > sum->max_ms)
        sum->max_ms = t->max_ms;
    size_t used = strlen(sum->problems);
    snprintf(sum->problems + used, sizeof sum->problems - used, "%s", t->problems);
}

/* A key's history as its one writer knows it. */
typedef struct key_state {
    uint32_t acked;     /* seq of the last acknowledged write (0: none) */
    uint32_t attempted; /* seq of the last write sent (>= acked) */
    bool deleted;       /* the last acknowledged operation was a delete */
} key_state_t;

/* Checks one read of key id against its history: found (with v) or not. */
static void check_read(tally_t *t, uint32_t id, const key_state_t *k, bool found, cairn_buf_t v,
                       const char *how)
{
    if (!found) {
        if (k->acked && !k->deleted)
            tally_problem(t, "key %u (%s): not found, but write %u was acknowledged", id, how,
                          k->acked);
        return;
    }
    uint32_t seq = value_seq(id, v);
    if (seq == 0)
        tally_problem(t, "key %u (%s): a value that was never written (%zu bytes)", id, how,
                      v.len);
    else if (k->deleted && seq <= k->acked)
        tally_problem(t, "key %u (%s): write %u came back after an acknowledged delete", id, how,
                      seq);
    else if (seq < k->acked || seq > k->attempted)
        tally_problem(t, "key %u (%s): write %u, but %u was acknowledged and %u the last sent",
                      id, how, seq, k->acked, k->attempted);
}

/* Reads key id (with the options, NULL: the bucket's) and checks it against k. Returns the
 * call's result. */
static int read_and_check(cairn_t *c, tally_t *t, uint32_t id, const key_state_t *k,
                          const cairn_get_opts_t *o, const char *how)
{
    char key[32];
    key_name(id, key, sizeof key);
    cairn_object_t *obj = NULL;
    int64_t t0 = ct_now_ms();
    int rc = cairn_get(c, CAIRN_S("dur"), CAIRN_S(key), o, &obj);
    int64_t took = ct_now_ms() - t0;
    if (took > t->max_ms)
        t->max_ms = took;
    if (rc == CAIRN_OK && obj->n_siblings != 1)
        tally_problem(t, "key %u (%s): %zu siblings (allow_mult is off)", id, how,
                      obj->n_siblings);
    else if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
        check_read(t, id, k, rc == CAIRN_OK, rc == CAIRN_OK ? obj->siblings[0].value
                                                            : (cairn_buf_t){NULL, 0}, how);
    cairn_object_free(obj);
    return rc;
}

static int put_value(cairn_t *c, uint32_t id, uint32_t seq, tally_t *t)
{
    char key[32];
    uint8_t value[VALUE_MAX];
    key_name(id, key, sizeof key);
    size_t len = make_value(id, seq, value);
    int64_t t0 = ct_now_ms();
    int rc = cairn_put(c, CAIRN_S("dur"), CAIRN_S(key), (cairn_buf_t){value, len}, NULL, NULL);
    int64_t took = ct_now_ms() - t0;
    if (took > t->max_ms)
        t->max_ms = took;
    return rc;
}

/* Runs fn(&args[i]) on THREADS threads and waits for them all. */
static void run_threads(void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

/* ---------------------------------------------------------------- kill -9 */

#define KILL_KEYS 3000

typedef struct kill_job {
    const ct_node_t *node;
    int index;           /* this thread writes and reads the keys id % THREADS == index */
    key_state_t *keys;   /* shared array, one writer per key */
    tally_t tally;
} kill_job_t;

/* Writes every key of the thread once, a second time for one in ten, and deletes one in a
 * hundred: all must be acknowledged. */
static void *kill_writer(void *arg)
{
    kill_job_t *j = arg;
    cairn_t *c = connect_client(j->node, &j->tally);
    if (!c)
        return NULL;
    for (uint32_t id = (uint32_t)j->index; id < KILL_KEYS; id += THREADS) {
        key_state_t *k = &j->keys[id];
        uint32_t writes = id % 10 == 0 ? 2 : 1;
        for (uint32_t seq = 1; seq <= writes; seq++) {
            k->attempted = seq;
            int rc = put_value(c, id, seq, &j->tally);
            if (rc != CAIRN_OK) {
                tally_problem(&j->tally, "put %u: %s (%s)", id, cairn_strerror(rc),
                              cairn_errmsg(c));
                break;
            }
            k->acked = seq;
            j->tally.ok++;
        }
        if (id % 100 == 7 && k->acked) {
            char key[32];
            key_name(id, key, sizeof key);
            int rc = cairn_delete(c, CAIRN_S("dur"), CAIRN_S(key), NULL);
            if (rc == CAIRN_OK)
                k->deleted = true;
            else
                tally_problem(&j->tally, "delete %u: %s (%s)", id, cairn_strerror(rc),
                              cairn_errmsg(c));
        }
    }
    cairn_close(c);
    return NULL;
}

/* Reads back every key of the thread (R = quorum) and one in ten also with R = all. */
static void *kill_reader(void *arg)
{
    kill_job_t *j = arg;
    cairn_t *c = connect_client(j->node, &j->tally);
    if (!c)
        return NULL;
    cairn_get_opts_t all = {.r = CAIRN_Q_ALL};
    for (uint32_t id = (uint32_t)j->index; id < KILL_KEYS; id += THREADS) {
        const key_state_t *k = &j->keys[id];
        int rc = read_and_check(c, &j->tally, id, k, NULL, "r=quorum");
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
            j->tally.ok++;
        else
            tally_problem(&j->tally, "get %u: %s (%s)", id, cairn_strerror(rc), cairn_errmsg(c));
        if (id % 10 == 3 || k->deleted) {
            rc = read_and_check(c, &j->tally, id, k, &all, "r=all");
            if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
                tally_problem(&j->tally, "get %u r=all: %s (%s)", id, cairn_strerror(rc),
                              cairn_errmsg(c));
        }
    }
    cairn_close(c);
    return NULL;
}

/* args: cairnd's flags, the storage engine's among them */
static void kill_9_keeps_everything(char **args)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    ct_node_start_ok(&n, "before", args);

    key_state_t *keys = calloc(KILL_KEYS, sizeof *keys);
    kill_job_t jobs[THREADS];
    for (int i = 0; i < THREADS; i++)
        jobs[i] = (kill_job_t){.node = &n, .index = i, .keys = keys};
    run_threads(kill_writer, jobs, sizeof jobs[0]);
    tally_t written = {0};
    for (int i = 0; i < THREADS; i++)
        tally_add(&written, &jobs[i].tally);
    cr_assert_eq(written.bad, 0, "every write is acknowledged (n_val 3, w 2):\n%s",
                 written.problems);

    cr_assert_eq(ct_node_stop(&n, SIGKILL), 128 + SIGKILL);
    ct_node_start_ok(&n, "after", args); /* the same data dir */

    for (int i = 0; i < THREADS; i++)
        jobs[i].tally = (tally_t){0};
    run_threads(kill_reader, jobs, sizeof jobs[0]);
    tally_t read = {0};
    for (int i = 0; i < THREADS; i++)
        tally_add(&read, &jobs[i].tally);
    cr_log_info("kill -9: %llu acknowledged writes, %llu reads after the restart",
                (unsigned long long)written.ok, (unsigned long long)read.ok);
    cr_assert_eq(read.bad, 0, "after kill -9 and a restart:\n%s", read.problems);
    cr_assert_eq(read.ok, KILL_KEYS);
    free(keys);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
    /* the data is where the configured engine keeps it */
    bool leveldb = false;
    for (int i = 0; args[i]; i++)
        leveldb = leveldb || strcmp(args[i], "storage.backend=leveldb") == 0;
    cr_assert_eq(store_engine_of(n.data, STORE_ENGINE_MEMORY),
                 leveldb ? STORE_ENGINE_LEVELDB : STORE_ENGINE_BITCASK);
}

Test(durability, kill_9_keeps_every_acknowledged_write_and_delete)
{
    char *args[] = {"--ring-size", "16", NULL};
    kill_9_keeps_everything(args);
}

Test(durability, kill_9_keeps_every_acknowledged_write_and_delete_with_leveldb)
{
    char *args[] = {"--ring-size", "16", "--set", "storage.backend=leveldb", NULL};
    kill_9_keeps_everything(args);
}

/* ---------------------------------------------------------------- vnodes crashing */

#define CRASH_KEYS_PER_THREAD 25
#define CRASHES 20
#define CRASH_RING 16

typedef struct crash_job {
    const ct_node_t *node;
    int index;
    atomic_bool *stop;
    key_state_t keys[CRASH_KEYS_PER_THREAD]; /* ids index*100 + i */
    uint64_t puts_ok, gets_ok;
    tally_t tally;
} crash_job_t;

/* Whether rc is an answer a client may get while vnodes crash: success, not found, or an
 * error the server sent (a quorum it could not reach, overload). */
static bool allowed_while_crashing(int rc)
{
    return rc == CAIRN_OK || rc == CAIRN_ENOTFOUND || rc == CAIRN_ESERVER ||
           rc == CAIRN_EOVERLOAD;
}

static void *crash_client(void *arg)
{
    crash_job_t *j = arg;
    cairn_t *c = connect_client(j->node, &j->tally);
    if (!c)
        return NULL;
    uint64_t x = (uint64_t)j->index * 7919 + 1;
    while (!atomic_load(j->stop)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t i = (uint32_t)(x >> 40) % CRASH_KEYS_PER_THREAD;
        uint32_t id = (uint32_t)j->index * 100 + i;
        key_state_t *k = &j->keys[i];
        int rc;
        if ((x >> 20) & 1) {
            uint32_t seq = ++k->attempted;
            rc = put_value(c, id, seq, &j->tally);
            if (rc == CAIRN_OK) {
                k->acked = seq;
                j->puts_ok++;
            }
        } else {
            /* a read sees at least this thread's last acknowledged write */
            rc = read_and_check(c, &j->tally, id, k, NULL, "while crashing");
            if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
                j->gets_ok++;
        }
        if (rc == CAIRN_OK || rc == CAIRN_ENOTFOUND)
            j->tally.ok++;
        else if (allowed_while_crashing(rc))
            j->tally.errors++;
        else
            tally_problem(&j->tally, "key %u: %s (%s)", id, cairn_strerror(rc), cairn_errmsg(c));
    }
    cairn_close(c);
    return NULL;
}

/* cairn-admin status --json (free it), or NULL when it failed. */
static char *admin_status(const ct_node_t *n)
{
    char *status[] = {"status", "--json", NULL};
    if (ct_admin(n, "status", status) != 0)
        return NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/status.out", n->dir);
    return ct_slurp(path);
}

/* Polls the status until every vnode runs again (bounded); returns the vnodes crashed so far,
 * or -1 when they did not all come back. */
static int wait_all_vnodes_running(const ct_node_t *n, int ring)
{
    char want[64];
    snprintf(want, sizeof want, "\"vnodes_running\":%d,", ring);
    for (int i = 0; i < 100; i++) {
        char *out = admin_status(n);
        const char *crashes = out && strstr(out, want) ? strstr(out, "\"vnode_crashes\":") : NULL;
        int n_crashes = crashes ? atoi(crashes + strlen("\"vnode_crashes\":")) : -1;
        free(out);
        if (n_crashes >= 0)
            return n_crashes;
        ct_sleep_ms(100);
    }
    return -1;
}

/* args: cairnd's flags (a ring of CRASH_RING), the storage engine's among them */
static void crashed_vnodes_lose_nothing(char **args)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    ct_node_start_ok(&n, "node", args);

    atomic_bool stop = false;
    static crash_job_t jobs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].node = &n;
        jobs[i].index = i;
        jobs[i].stop = &stop;
        cr_assert_eq(pthread_create(&th[i], NULL, crash_client, &jobs[i]), 0);
    }
    /* ~20 crashes of random partitions over ~3 s, from this thread (cairn-admin) */
    int64_t start = ct_now_ms();
    int crashed = 0;
    uint64_t x = (uint64_t)start;
    for (int i = 0; i < CRASHES; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        char partition[16];
        snprintf(partition, sizeof partition, "%u", (unsigned)((x >> 33) % CRASH_RING));
        char *cmd[] = {"crash-vnode", partition, NULL};
        crashed += ct_admin(&n, "crash", cmd) == 0; /* a vnode restarting right now: 1 */
        int64_t next = start + (int64_t)(i + 1) * 3000 / CRASHES;
        int64_t now = ct_now_ms();
        if (next > now)
            ct_sleep_ms((unsigned)(next - now));
    }
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    tally_t sum = {0};
    uint64_t puts = 0, gets = 0;
    for (int i = 0; i < THREADS; i++) {
        tally_add(&sum, &jobs[i].tally);
        puts += jobs[i].puts_ok;
        gets += jobs[i].gets_ok;
    }
    cr_log_info("vnode crashes: %d crashes, %llu puts and %llu gets answered, %llu errors, "
                "slowest call %lld ms",
                crashed, (unsigned long long)puts, (unsigned long long)gets,
                (unsigned long long)sum.errors, (long long)sum.max_ms);
    cr_assert_eq(sum.bad, 0, "while vnodes crashed:\n%s", sum.problems);
    cr_assert_gt(crashed, CRASHES / 2, "cairn-admin crash-vnode worked %d times", crashed);
    cr_assert_gt(puts, 0);
    cr_assert_gt(gets, 0);

    /* once every vnode is back, every key holds its last acknowledged write (or a later one
     * whose put failed) */
    int vnode_crashes = wait_all_vnodes_running(&n, CRASH_RING);
    cr_assert_geq(vnode_crashes, 0, "the crashed vnodes came back");
    cr_assert_geq(vnode_crashes, crashed, "the node counted every crash");
    cairn_t *c = connect_node(&n);
    cr_assert_not_null(c, "connect: %s", cairn_errmsg(NULL));
    tally_t after = {0};
    for (int t = 0; t < THREADS; t++) {
        for (uint32_t i = 0; i < CRASH_KEYS_PER_THREAD; i++) {
            uint32_t id = (uint32_t)t * 100 + i;
            int rc = read_and_check(c, &after, id, &jobs[t].keys[i], NULL, "after");
            if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND)
                tally_problem(&after, "get %u after: %s (%s)", id, cairn_strerror(rc),
                              cairn_errmsg(c));
        }
    }
    cairn_close(c);
    cr_assert_eq(after.bad, 0, "after the crashes:\n%s", after.problems);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

Test(durability, vnodes_crashed_while_requests_flow_fail_fast_and_lose_nothing)
{
    char *args[] = {"--ring-size", "16", NULL}; /* CRASH_RING */
    crashed_vnodes_lose_nothing(args);
}

Test(durability, vnodes_crashed_while_requests_flow_lose_nothing_with_leveldb)
{
    char *args[] = {"--ring-size", "16", "--set", "storage.backend=leveldb", NULL};
    crashed_vnodes_lose_nothing(args);
}

/* ---------------------------------------------------------------- tombstones */

/* A get of dur/key with deletedvclock: CAIRN_ENOTFOUND expected; true when it came with a
 * context (a tombstone is there). */
static bool tombstone_there(cairn_t *c, const char *key)
{
    cairn_get_opts_t o = {.deletedvclock = true};
    cairn_object_t *obj = NULL;
    int rc = cairn_get(c, CAIRN_S("dur"), CAIRN_S(key), &o, &obj);
    cr_assert_eq(rc, CAIRN_ENOTFOUND, "get %s of a deleted key: %s (%s)", key,
                 cairn_strerror(rc), cairn_errmsg(c));
    bool there = obj && obj->context.len > 0;
    cairn_object_free(obj);
    return there;
}

static void put_and_delete(cairn_t *c, const char *key)
{
    int rc = cairn_put(c, CAIRN_S("dur"), CAIRN_S(key), CAIRN_S("doomed"), NULL, NULL);
    cr_assert_eq(rc, CAIRN_OK, "put: %s (%s)", cairn_strerror(rc), cairn_errmsg(c));
    rc = cairn_delete(c, CAIRN_S("dur"), CAIRN_S(key), NULL);
    cr_assert_eq(rc, CAIRN_OK, "delete: %s (%s)", cairn_strerror(rc), cairn_errmsg(c));
}

#define REAP_DELAY_MS 200

Test(durability, tombstones_are_reaped_after_delete_mode)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    char *args[] = {"--ring-size", "8", "--set", "delete_mode=200", NULL}; /* ms */
    ct_node_start_ok(&n, "node", args);
    cairn_t *c = connect_node(&n);
    cr_assert_not_null(c, "connect: %s", cairn_errmsg(NULL));

    /* Right after the delete the tombstone is there. A machine too busy to look within the
     * delay cannot tell: then try again with another key. */
    char key[32] = "";
    bool seen = false;
    for (int attempt = 0; attempt < 5 && !seen; attempt++) {
        snprintf(key, sizeof key, "reaped-%d", attempt);
        put_and_delete(c, key);
        int64_t deleted = ct_now_ms();
        seen = tombstone_there(c, key);
        int64_t looked = ct_now_ms() - deleted;
        cr_assert(seen || looked >= REAP_DELAY_MS,
                  "no tombstone %lld ms after the delete (delete_mode is %d ms)",
                  (long long)looked, REAP_DELAY_MS);
    }
    cr_assert(seen, "the tombstone was never seen in time");

    int64_t end = ct_now_ms() + 5000;
    bool reaped = false;
    while (!reaped && ct_now_ms() < end) {
        reaped = !tombstone_there(c, key);
        if (!reaped)
            ct_sleep_ms(50);
    }
    cr_assert(reaped, "the tombstone is still there 5 s after the delete");
    cairn_object_t *obj = NULL;
    cr_assert_eq(cairn_get(c, CAIRN_S("dur"), CAIRN_S(key), NULL, &obj), CAIRN_ENOTFOUND);
    cairn_close(c);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

Test(durability, tombstones_are_kept_with_delete_mode_keep)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    char *args[] = {"--ring-size", "8", "--set", "delete_mode=keep", NULL};
    ct_node_start_ok(&n, "node", args);
    cairn_t *c = connect_node(&n);
    cr_assert_not_null(c, "connect: %s", cairn_errmsg(NULL));
    put_and_delete(c, "kept");
    cr_assert(tombstone_there(c, "kept"), "a tombstone right after the delete");
    ct_sleep_ms(1000);
    cr_assert(tombstone_there(c, "kept"), "keep: the tombstone is still there after 1 s");
    cairn_object_t *obj = NULL;
    cr_assert_eq(cairn_get(c, CAIRN_S("dur"), CAIRN_S("kept"), NULL, &obj), CAIRN_ENOTFOUND,
                 "a plain get does not show it");
    cr_assert_null(obj);
    cairn_close(c);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

/* ---------------------------------------------------------------- SIGTERM */

#define TERM_MAX_PUTS 200000

typedef struct term_job {
    const ct_node_t *node;
    int index;
    atomic_bool *stop;
    atomic_uint *acked_total;
    uint32_t *acked;  /* ids of the acknowledged puts (each put writes a new key) */
    uint32_t n_acked;
    tally_t tally;
} term_job_t;

/* Puts new keys (id = n * THREADS + index) as fast as it can until told to stop; after the
 * node went away every call fails, which is fine: only acknowledged puts count. */
static void *term_client(void *arg)
{
    term_job_t *j = arg;
    cairn_t *c = connect_client(j->node, &j->tally);
    if (!c)
        return NULL;
    for (uint32_t n = 0; !atomic_load(j->stop) && n < TERM_MAX_PUTS / THREADS; n++) {
        uint32_t id = n * THREADS + (uint32_t)j->index;
        int rc = put_value(c, id, 1, &j->tally);
        if (rc == CAIRN_OK) {
            j->acked[j->n_acked++] = id;
            atomic_fetch_add(j->acked_total, 1);
        } else {
            j->tally.errors++;
            ct_sleep_ms(5); /* the node is stopping or gone */
        }
    }
    cairn_close(c);
    return NULL;
}

Test(durability, sigterm_with_requests_in_flight_exits_0_and_keeps_acknowledged_writes)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    char *args[] = {"--ring-size", "16", NULL};
    ct_node_start_ok(&n, "before", args);

    atomic_bool stop = false;
    atomic_uint acked_total = 0;
    static term_job_t jobs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (term_job_t){.node = &n, .index = i, .stop = &stop, .acked_total = &acked_total};
        jobs[i].acked = calloc(TERM_MAX_PUTS / THREADS, sizeof *jobs[i].acked);
        cr_assert_eq(pthread_create(&th[i], NULL, term_client, &jobs[i]), 0);
    }
    /* let the writes flow, then stop the node under them */
    for (int i = 0; i < 500 && atomic_load(&acked_total) < 400; i++)
        ct_sleep_ms(10);
    ct_sleep_ms(200);
    int64_t t0 = ct_now_ms();
    cr_assert_eq(kill(n.pid, SIGTERM), 0);
    int status = ct_node_wait_exit(&n, CT_STOP_MS);
    int64_t took = ct_now_ms() - t0;
    atomic_store(&stop, true);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(status, 0, "SIGTERM under load: exit 0 (got %d):\n%s", status,
                 ct_tail(n.err, 1500));
    cr_log_info("SIGTERM under load: stopped in %lld ms after %u acknowledged puts",
                (long long)took, atomic_load(&acked_total));
    cr_assert_gt(atomic_load(&acked_total), 0);

    ct_node_start_ok(&n, "after", args);
    cairn_t *c = connect_node(&n);
    cr_assert_not_null(c, "connect: %s", cairn_errmsg(NULL));
    tally_t after = {0};
    uint32_t checked = 0;
    for (int t = 0; t < THREADS; t++) {
        for (uint32_t i = 0; i < jobs[t].n_acked; i++) {
            key_state_t k = {.acked = 1, .attempted = 1};
            uint32_t id = jobs[t].acked[i];
            int rc = read_and_check(c, &after, id, &k, NULL, "after SIGTERM");
            if (rc != CAIRN_OK && rc != CAIRN_ENOTFOUND) /* not found: check_read said so */
                tally_problem(&after, "get %u: %s (%s)", id, cairn_strerror(rc),
                              cairn_errmsg(c));
            checked++;
        }
        free(jobs[t].acked);
    }
    cairn_close(c);
    cr_assert_eq(after.bad, 0, "after SIGTERM and a restart:\n%s", after.problems);
    cr_assert_eq(checked, atomic_load(&acked_total));
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}
