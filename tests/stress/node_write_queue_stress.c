/*
 * node_write_queue_stress.c — TSan stress of the node's write queue (node/write_queue.h), in
 * both of its ways: the writer thread (WQ_ON, memory backends) and grouping at the end of
 * each scheduler's pass (WQ_OFF, LevelDB in the node layout, so every group is one shared
 * LevelDB write across partitions). 24 processes on 3 schedulers, each owning a backend,
 * hand it puts one at a time as vnodes do. On each VNODE-style "done" message the process checks the write's result
 * and reads the key back on its own thread (the message must order the writer's write
 * before that read). Every fourth process stops while its last write is still out, so its
 * terminate goes through wq_wait before closing the backend. At the end every write must
 * have been answered and read back, and wq_stop must find the queue empty.
 */
#include "node/write_queue.h"
#include "rt_stress.h"

#include <stdatomic.h>
#include <stdlib.h>

enum { T_DONE = RT_MSG_USER + 1, T_GO, NPROC = 24, ROUNDS = 1500 };

/* Debian's LevelDB is not built with ThreadSanitizer: its memtable is a skiplist that one
 * writer and any number of readers share through std::atomic, which TSan cannot see from an
 * uninstrumented library, so every read beside a write would look like a race inside it.
 * Ignore what the library does itself (its memcmp/memcpy, and those of the C++ strings it
 * builds its batches in: libstdc++ is used by nothing else here); our own accesses stay
 * checked. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:libleveldb.so\ncalled_from_lib:libstdc++.so\n";
}

static write_queue_t *g_q;
static store_engine_t *g_eng;
static atomic_uint_fast64_t g_checked, g_waited, g_errors;
static atomic_int g_finished;

typedef struct {
    store_backend_t *b;
    unsigned id, round;
    bool quitter;
    bool out;
    wq_job_t job;
    store_key_t key;
    char kbuf[32];
    uint64_t val;
} writer_proc_t;

static void submit(writer_proc_t *w)
{
    int n = snprintf(w->kbuf, sizeof w->kbuf, "k%u", w->round % 97);
    w->key = (store_key_t){{(const uint8_t *)"default", 7}, {(const uint8_t *)"b", 1},
                           {(const uint8_t *)w->kbuf, (size_t)n}};
    w->val = ((uint64_t)w->id << 32) | w->round;
    w->job = (wq_job_t){.backend = w->b, .key = &w->key, .val = &w->val, .len = sizeof w->val,
                        .reply_to = rt_self(), .done_type = T_DONE};
    w->out = true;
    wq_submit(g_q, &w->job);
}

static int proc_init(void *st, void *arg)
{
    writer_proc_t *w = st;
    w->id = (unsigned)(uintptr_t)arg;
    w->quitter = w->id % 4 == 3;
    char err[128];
    return store_open(g_eng, w->id, &w->b, err, sizeof err) == 0 ? 0 : 1;
}

static int proc_handle(void *st, rt_msg_t *m)
{
    writer_proc_t *w = st;
    if (m->type == T_GO) {
        submit(w);
        return RT_CONTINUE;
    }
    if (m->type != T_DONE || !w->out) {
        atomic_fetch_add(&g_errors, 1);
        return RT_CONTINUE;
    }
    w->out = false;
    store_val_t v;
    if (w->job.rc != 0 || store_get(w->b, &w->key, &v) != 0) {
        atomic_fetch_add(&g_errors, 1);
    } else {
        uint64_t got;
        memcpy(&got, v.p, sizeof got);
        if (v.n != sizeof got || got != w->val)
            atomic_fetch_add(&g_errors, 1);
        store_val_release(&v);
    }
    atomic_fetch_add(&g_checked, 1);
    if (++w->round == ROUNDS)
        return RT_STOP;
    submit(w);
    if (w->quitter && w->round == ROUNDS - 1)
        return RT_STOP; /* with a write out: terminate must wait for it */
    return RT_CONTINUE;
}

static void proc_terminate(void *st, int reason)
{
    (void)reason;
    writer_proc_t *w = st;
    if (w->out) {
        if (wq_wait(g_q, &w->job) != 0)
            atomic_fetch_add(&g_errors, 1);
        atomic_fetch_add(&g_waited, 1);
    }
    store_close(w->b);
    atomic_fetch_add(&g_finished, 1);
}

static const rt_behaviour_t proc_beh = {.name = "writer-user",
                                        .state_size = sizeof(writer_proc_t),
                                        .init = proc_init,
                                        .handle = proc_handle,
                                        .terminate = proc_terminate};

/* One run: NPROC processes through q in mode, on eng; returns the writes checked. */
static uint64_t run(wq_mode_t mode, const char *what)
{
    atomic_store(&g_checked, 0);
    atomic_store(&g_waited, 0);
    atomic_store(&g_errors, 0);
    atomic_store(&g_finished, 0);
    CHECK(wq_start(mode, 0, &g_q) == 0, "wq_start");
    rt_pid_t pids[NPROC];
    for (unsigned i = 0; i < NPROC; i++)
        CHECK(rt_spawn(&proc_beh, (void *)(uintptr_t)i, &pids[i]) == 0, "spawn %u", i);
    for (unsigned i = 0; i < NPROC; i++)
        CHECK(rt_send(pids[i], rt_msg_new(T_GO, 0)) == 0, "go");
    uint64_t deadline = stress_ms() + 60000;
    while (atomic_load(&g_finished) < NPROC && stress_ms() < deadline) {
        rt_msg_t *m = NULL;
        if (rt_receive(10, &m) == 0)
            rt_msg_free(m);
    }
    CHECK(atomic_load(&g_finished) == NPROC, "%s: only %d of %d processes finished in 60 s",
          what, atomic_load(&g_finished), NPROC);
    uint64_t quitters = NPROC / 4;
    uint64_t want = (uint64_t)(NPROC - quitters) * ROUNDS + quitters * (ROUNDS - 1);
    CHECK(atomic_load(&g_errors) == 0, "%s: %llu errors", what,
          (unsigned long long)atomic_load(&g_errors));
    CHECK(atomic_load(&g_checked) == want, "%s: %llu writes checked, want %llu", what,
          (unsigned long long)atomic_load(&g_checked), (unsigned long long)want);
    CHECK(atomic_load(&g_waited) == quitters, "%s: %llu terminates waited, want %llu", what,
          (unsigned long long)atomic_load(&g_waited), (unsigned long long)quitters);
    return want;
}

int main(void)
{
    stress_start(3);
    store_config_t cfg = store_config_default("/nonexistent");
    cfg.kind = STORE_ENGINE_MEMORY;
    CHECK(store_engine_new(&cfg, &g_eng) == 0, "memory engine");
    uint64_t on = run(WQ_ON, "writer thread");
    /* every process has terminated: no pass submits any more, so the queue may go */
    wq_stop(g_q);
    store_engine_free(g_eng);

    char dir[] = "/tmp/cairn-wq-stress.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    cfg = store_config_default(dir);
    CHECK(store_engine_new(&cfg, &g_eng) == 0, "leveldb engine");
    uint64_t off = run(WQ_OFF, "end-of-pass groups");
    rt_stop(5000);
    wq_stop(g_q);
    store_engine_free(g_eng);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "rm -rf %s", dir);
    printf("node_write_queue_stress: ok (%llu writes on the writer thread, %llu grouped at pass "
           "ends, %d waited at exit in each)\n",
           (unsigned long long)on, (unsigned long long)off, NPROC / 4);
    return 0;
}
