/*
 * test_node_write_queue.c — the node's writer thread (node/write_queue.h): a put handed
 * over is stored and answered with the done message, in submission order; wq_wait returns
 * the result; auto mode takes puts only while the writer may use more CPUs than there are
 * schedulers (a node pinned to one CPU writes inline).
 */
#include "node/write_queue.h"
#include "runtime/rt.h"
#include "store_test.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <unistd.h>

enum { T_DONE = RT_MSG_USER + 7 };

static store_engine_t *eng;
static store_backend_t *b;

static void setup(void)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 1;
    rt_log_set_level(RT_LOG_NONE);
    cr_assert_eq(rt_start(&c), 0);
    store_config_t cfg = store_config_default("/nonexistent");
    cfg.kind = STORE_ENGINE_MEMORY;
    cr_assert_eq(store_engine_new(&cfg, &eng), 0);
    char err[128];
    cr_assert_eq(store_open(eng, 7, &b, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    store_close(b);
    store_engine_free(eng);
    rt_stop(2000);
}

TestSuite(node_write_queue, .init = setup, .fini = teardown, .timeout = 30);

Test(node_write_queue, puts_are_stored_and_answered_in_order)
{
    write_queue_t *q;
    cr_assert_eq(wq_start(0, &q), 0);
    cr_assert(wq_active(q));
    enum { N = 50 };
    wq_job_t jobs[N];
    store_key_t keys[N];
    char names[N][16];
    uint32_t vals[N];
    for (uint32_t i = 0; i < N; i++) {
        int n = snprintf(names[i], sizeof names[i], "k%u", i % 5); /* rewrites: order shows */
        keys[i] = (store_key_t){STORE_SLICE("default"), STORE_SLICE("b"),
                                {(const uint8_t *)names[i], (size_t)n}};
        vals[i] = i;
        jobs[i] = (wq_job_t){.backend = b, .key = &keys[i], .val = &vals[i],
                             .len = sizeof vals[i], .reply_to = rt_self(), .done_type = T_DONE};
        wq_submit(q, &jobs[i]);
    }
    for (uint32_t i = 0; i < N; i++) {
        rt_msg_t *m = NULL;
        cr_assert_eq(rt_receive(5000, &m), 0, "done message %u of %u", i, N);
        cr_assert_eq(m->type, T_DONE);
        rt_msg_free(m);
    }
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(wq_wait(q, &jobs[i]), 0);
    for (uint32_t k = 0; k < 5; k++) { /* the last write of each key won */
        store_val_t v;
        cr_assert_eq(store_get(b, &keys[k], &v), 0);
        uint32_t got;
        cr_assert_eq(v.n, sizeof got);
        memcpy(&got, v.p, sizeof got);
        cr_assert_eq(got, N - 5 + k);
        store_val_release(&v);
    }
    wq_stop(q);
}

/* Waits (bounded) for the writer's first affinity check to settle on want. */
static bool settles_to(write_queue_t *q, bool want)
{
    for (int i = 0; i < 200; i++) {
        if (wq_active(q) == want)
            return true;
        usleep(10000);
    }
    return false;
}

Test(node_write_queue, auto_mode_follows_the_cpu_affinity)
{
    cpu_set_t all, one;
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    long cpus = CPU_COUNT(&all);

    write_queue_t *q;
    cr_assert_eq(wq_start(1, &q), 0); /* one scheduler: active iff the writer has 2+ CPUs */
    if (cpus > 1) { /* active from the start; the writer's first check (at once) keeps it */
        usleep(200000);
        cr_assert(wq_active(q), "%ld CPUs, one scheduler: should take puts", cpus);
    }
    wq_stop(q);

    cr_assert_eq(wq_start((unsigned)cpus, &q), 0); /* as many schedulers as CPUs */
    cr_assert(settles_to(q, false), "%ld CPUs for %ld schedulers: should write inline", cpus,
              cpus);
    wq_stop(q);

    /* A writer started on a thread pinned to one CPU inherits the pin. */
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    int rc = wq_start(1, &q);
    cr_assert_eq(sched_setaffinity(0, sizeof all, &all), 0);
    cr_assert_eq(rc, 0);
    cr_assert(settles_to(q, false), "pinned to one CPU with one scheduler: inline");
    wq_stop(q);
}
