/*
 * test_node_write_queue.c — the node's write queue (node/write_queue.h): a put handed over
 * is stored and answered with the done message, in submission order; wq_wait returns the
 * result; with the writer off, a process's puts wait for the end of its scheduler's pass and
 * are then written together, and a process that waits for its own write is not stuck; auto
 * mode takes puts only while the writer may use more CPUs than there are schedulers (a node
 * pinned to one CPU groups them on the scheduler).
 */
#include "node/write_queue.h"
#include "runtime/rt.h"
#include "store_test.h"

#include <criterion/criterion.h>
#include <sched.h>
#include <unistd.h>

enum { T_DONE = RT_MSG_USER + 7, T_GO, T_REPORT };

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
    cr_assert_eq(wq_start(WQ_ON, 0, &q), 0);
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

/* A process submitting as a vnode does, with the writer off. */
typedef struct {
    write_queue_t *q;
    rt_pid_t test;
    wq_job_t jobs[3];
    store_key_t keys[3];
    char names[3][8];
    uint32_t vals[3];
    int pending_after_submit; /* jobs not yet done when the handler that submitted returned */
    int done_msgs;
    bool wait_inline;         /* wq_wait on its own write at once instead of the messages */
} submitter_t;

typedef struct {
    write_queue_t *q;
    rt_pid_t test;
    bool wait_inline;
} submitter_arg_t;

static int sub_init(void *st, void *arg)
{
    submitter_t *p = st;
    const submitter_arg_t *a = arg;
    p->q = a->q;
    p->test = a->test;
    p->wait_inline = a->wait_inline;
    return 0;
}

static int sub_handle(void *st, rt_msg_t *m)
{
    submitter_t *p = st;
    if (m->type == T_GO) {
        for (uint32_t i = 0; i < 3; i++) {
            int n = snprintf(p->names[i], sizeof p->names[i], "off%u", i);
            p->keys[i] = (store_key_t){STORE_SLICE("default"), STORE_SLICE("b"),
                                       {(const uint8_t *)p->names[i], (size_t)n}};
            p->vals[i] = 100 + i;
            p->jobs[i] = (wq_job_t){.backend = b, .key = &p->keys[i], .val = &p->vals[i],
                                    .len = sizeof p->vals[i], .reply_to = rt_self(),
                                    .done_type = T_DONE};
            wq_submit(p->q, &p->jobs[i]);
        }
        for (int i = 0; i < 3; i++)
            p->pending_after_submit += !p->jobs[i].done;
        if (p->wait_inline) { /* as a terminating vnode does: its write is on this thread */
            int rc = 0;
            for (int i = 0; i < 3; i++)
                rc |= wq_wait(p->q, &p->jobs[i]);
            int32_t report[2] = {p->pending_after_submit, rc};
            rt_send(p->test, rt_msg_copy(T_REPORT, report, sizeof report));
        }
        return RT_CONTINUE;
    }
    if (m->type == T_DONE && ++p->done_msgs == 3) {
        int rc = p->jobs[0].rc | p->jobs[1].rc | p->jobs[2].rc;
        int32_t report[2] = {p->pending_after_submit, rc};
        if (!p->wait_inline)
            rt_send(p->test, rt_msg_copy(T_REPORT, report, sizeof report));
        return RT_STOP;
    }
    return RT_CONTINUE;
}

static const rt_behaviour_t submitter_beh = {.name = "wq-submitter",
                                             .state_size = sizeof(submitter_t),
                                             .init = sub_init,
                                             .handle = sub_handle};

Test(node_write_queue, writer_off_groups_a_pass_at_its_end)
{
    write_queue_t *q;
    cr_assert_eq(wq_start(WQ_OFF, 0, &q), 0);
    cr_assert_not(wq_active(q));
    for (int inline_wait = 0; inline_wait < 2; inline_wait++) {
        submitter_arg_t a = {.q = q, .test = rt_self(), .wait_inline = inline_wait};
        rt_pid_t pid;
        cr_assert_eq(rt_spawn(&submitter_beh, &a, &pid), 0);
        cr_assert_eq(rt_send(pid, rt_msg_new(T_GO, 0)), 0);
        rt_msg_t *m = NULL;
        cr_assert_eq(rt_receive(5000, &m), 0, "no report (wait_inline %d): a write never went out",
                     inline_wait);
        cr_assert_eq(m->type, T_REPORT);
        int32_t report[2];
        memcpy(report, m->data, sizeof report);
        rt_msg_free(m);
        cr_assert_eq(report[0], 3, "the puts were written before the pass ended (%d pending)",
                     report[0]);
        cr_assert_eq(report[1], 0, "a write failed");
    }
    for (uint32_t i = 0; i < 3; i++) {
        char name[8];
        int n = snprintf(name, sizeof name, "off%u", i);
        store_key_t k = {STORE_SLICE("default"), STORE_SLICE("b"), {(const uint8_t *)name, (size_t)n}};
        store_val_t v;
        cr_assert_eq(store_get(b, &k, &v), 0);
        uint32_t got;
        memcpy(&got, v.p, sizeof got);
        cr_assert_eq(got, 100 + i);
        store_val_release(&v);
    }
    wq_stop(q); /* both processes are done: nothing submits any more */
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
    cr_assert_eq(wq_start(WQ_AUTO, 1, &q), 0); /* one scheduler: active iff the writer has 2+ CPUs */
    if (cpus > 1) { /* active from the start; the writer's first check (at once) keeps it */
        usleep(200000);
        cr_assert(wq_active(q), "%ld CPUs, one scheduler: should take puts", cpus);
    }
    wq_stop(q);

    cr_assert_eq(wq_start(WQ_AUTO, (unsigned)cpus, &q), 0); /* as many schedulers as CPUs */
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
    int rc = wq_start(WQ_AUTO, 1, &q);
    cr_assert_eq(sched_setaffinity(0, sizeof all, &all), 0);
    cr_assert_eq(rc, 0);
    cr_assert(settles_to(q, false), "pinned to one CPU with one scheduler: inline");
    wq_stop(q);
}
