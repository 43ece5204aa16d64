/*
 * write_queue.c — the node's writes: the writer thread, and grouping at the end of a
 * scheduler's pass (API and protocol in node/write_queue.h).
 *
 * Owns: the writer thread and its FIFO of submitted jobs (a mutex and two condition
 * variables: "work arrived" for the writer, "a job finished" for wq_wait), and each scheduler
 * thread's pass list (thread-local): the jobs written at the end of that thread's pass.
 *
 * Every write goes out in a group (write_group -> store_write_group: in the node layout one
 * LevelDB write, so one log append, for up to GROUP_MAX puts of any partitions).
 *   - Writer active: the writer takes the whole queue at each wake-up and writes it before it
 *     sleeps again. A submitter on a scheduler thread does not wake a sleeping writer itself:
 *     it notes the queue in a thread-local, and the runtime's pass hook (rt_set_pass_hook)
 *     wakes the writer once at the end of the scheduler's pass.
 *   - Writer inactive (off, or auto with too few CPUs): the job joins the scheduler thread's
 *     pass list, and the pass hook writes that list there as one group: no thread hop, and
 *     still one log append per pass instead of one per put.
 * In auto mode the writer also wakes once a second to re-check its CPU affinity.
 */
#include "node/write_queue.h"

#include "runtime/io.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define AUTO_CHECK_MS 1000
#define GROUP_MAX 64 /* writes per group commit */

struct write_queue_s {
    pthread_mutex_t mx;
    pthread_cond_t work_cv;      /* jobs arrived, or stopping */
    pthread_cond_t done_cv;      /* a job finished (only while someone waits) */
    wq_job_t *head, *tail;
    bool writer_asleep;
    bool stopping;
    bool has_thread;             /* false: vnode.write_thread = off */
    unsigned waiters;            /* threads in wq_wait */
    unsigned schedulers;         /* auto mode against this many; 0: always active */
    bool checked;                /* the writer's; auto mode has logged its first decision */
    atomic_bool active;
    pthread_t thread;
};

/* This scheduler thread's pass: the jobs to write at its end (writer inactive), and the
 * queue whose sleeping writer to wake then (writer active). One queue per runtime, so the
 * pass list's jobs are always the installed queue's. */
static _Thread_local wq_job_t *pass_head, *pass_tail;
static _Thread_local write_queue_t *wake_at_end_of_pass;

static wq_job_t *write_group(write_queue_t *q, wq_job_t *batch);

/* Writes this thread's pass list (jobs of q) now. */
static void write_pass(write_queue_t *q)
{
    wq_job_t *batch = pass_head;
    pass_head = pass_tail = NULL;
    while (batch)
        batch = write_group(q, batch);
}

static void wake_writer(write_queue_t *q)
{
    pthread_mutex_lock(&q->mx);
    if (q->writer_asleep && q->head)
        pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mx);
}

/* The runtime's pass hook; arg is the queue that installed it. A wake-up noted for another
 * queue is left from one already stopped (only tests stop a queue with schedulers running)
 * and is dropped, never touched. (A pass list is never left: wq_stop requires every job
 * done.) */
static void on_end_of_pass(void *arg)
{
    if (pass_head)
        write_pass(arg);
    write_queue_t *q = wake_at_end_of_pass;
    wake_at_end_of_pass = NULL;
    if (q && q == arg)
        wake_writer(q);
}

bool wq_active(const write_queue_t *q)
{
    return atomic_load_explicit(&q->active, memory_order_relaxed);
}

/* Auto mode: active when this thread may run on more CPUs than there are schedulers. */
static void check_affinity(write_queue_t *q)
{
    if (!q->schedulers)
        return;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    long cpus = CPU_COUNT(&set);
    bool on = cpus > (long)q->schedulers;
    if (on != atomic_load(&q->active) || !q->checked) {
        rt_info("vnode.write_thread = auto: puts write %s (%ld CPU(s) for %u scheduler(s))",
                on ? "on the writer thread" : "on the schedulers, grouped per pass", cpus,
                q->schedulers);
        atomic_store(&q->active, on);
    }
    q->checked = true;
}

/* The next affinity check (auto mode), on rt_now_ns's clock (CLOCK_MONOTONIC, as work_cv). */
static uint64_t next_check_after_now(void)
{
    return rt_now_ns() + (uint64_t)AUTO_CHECK_MS * 1000000u;
}

/* Writes up to GROUP_MAX jobs from the front of batch with one store_write_group (backends
 * that share a database, the node layout, get one log append for all of them), marks them
 * done and tells their submitters. Returns the jobs not yet written. */
static wq_job_t *write_group(write_queue_t *q, wq_job_t *batch)
{
    store_group_op_t ops[GROUP_MAX];
    wq_job_t *jobs[GROUP_MAX];
    size_t n = 0;
    for (; batch && n < GROUP_MAX; batch = batch->next, n++) {
        jobs[n] = batch;
        ops[n] = (store_group_op_t){
            .backend = batch->backend,
            .op = {.kind = STORE_OP_PUT, .key = *batch->key, .val = batch->val,
                   .val_len = batch->len}};
    }
    store_write_group(ops, n);
    /* Copy what the messages need: once done is set a submitter may free its job. */
    rt_pid_t to[GROUP_MAX];
    uint32_t type[GROUP_MAX];
    for (size_t i = 0; i < n; i++) {
        jobs[i]->rc = ops[i].rc;
        to[i] = jobs[i]->reply_to;
        type[i] = jobs[i]->done_type;
    }
    pthread_mutex_lock(&q->mx);
    for (size_t i = 0; i < n; i++)
        jobs[i]->done = true;
    if (q->waiters)
        pthread_cond_broadcast(&q->done_cv);
    pthread_mutex_unlock(&q->mx);
    for (size_t i = 0; i < n; i++)
        rt_send(to[i], rt_msg_new(type[i], 0)); /* to a process that is gone: freed there */
    return batch;
}

static void *writer_main(void *arg)
{
    write_queue_t *q = arg;
    rt_service_thread_enter();
    check_affinity(q);
    uint64_t next_check = next_check_after_now();
    pthread_mutex_lock(&q->mx);
    for (;;) {
        while (!q->head && !q->stopping) {
            q->writer_asleep = true;
            struct timespec until = {(time_t)(next_check / 1000000000u),
                                     (long)(next_check % 1000000000u)};
            int rc = q->schedulers ? pthread_cond_timedwait(&q->work_cv, &q->mx, &until)
                                   : pthread_cond_wait(&q->work_cv, &q->mx);
            q->writer_asleep = false;
            if (rc == ETIMEDOUT) {
                pthread_mutex_unlock(&q->mx);
                check_affinity(q);
                next_check = next_check_after_now();
                pthread_mutex_lock(&q->mx);
            }
        }
        if (!q->head)
            break; /* stopping with nothing left */
        wq_job_t *batch = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->mx);

        while (batch)
            batch = write_group(q, batch);
        if (q->schedulers && rt_now_ns() >= next_check) { /* busy: no timed wait fired */
            check_affinity(q);
            next_check = next_check_after_now();
        }
        pthread_mutex_lock(&q->mx);
    }
    pthread_mutex_unlock(&q->mx);
    rt_service_thread_exit();
    return NULL;
}

int wq_start(wq_mode_t mode, unsigned schedulers, write_queue_t **out)
{
    write_queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->schedulers = mode == WQ_AUTO ? schedulers : 0;
    q->has_thread = mode != WQ_OFF;
    atomic_init(&q->active, mode != WQ_OFF); /* auto mode: until the writer's first check */
    pthread_mutex_init(&q->mx, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->done_cv, NULL);
    int rc = q->has_thread ? pthread_create(&q->thread, NULL, writer_main, q) : 0;
    if (rc != 0) {
        pthread_cond_destroy(&q->done_cv);
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->mx);
        free(q);
        return -rc;
    }
    if (q->has_thread)
        pthread_setname_np(q->thread, "cairn-writer");
    rt_set_pass_hook(on_end_of_pass, q);
    *out = q;
    return 0;
}

void wq_stop(write_queue_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mx);
    q->stopping = true;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mx);
    if (q->has_thread)
        pthread_join(q->thread, NULL);
    rt_set_pass_hook(NULL, NULL); /* see wq_stop's contract */
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->work_cv);
    pthread_mutex_destroy(&q->mx);
    free(q);
}

void wq_submit(write_queue_t *q, wq_job_t *job)
{
    job->next = NULL;
    job->done = false;
    bool on_scheduler = rt_on_scheduler();
    if (!wq_active(q)) {
        if (!on_scheduler) { /* no pass to end here: write it now */
            write_group(q, job);
            return;
        }
        if (pass_tail)
            pass_tail->next = job;
        else
            pass_head = job;
        pass_tail = job;
        return;
    }
    pthread_mutex_lock(&q->mx);
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    if (q->writer_asleep && on_scheduler)
        wake_at_end_of_pass = q; /* the scheduler's pass hook wakes the writer */
    else if (q->writer_asleep)
        pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mx);
}

int wq_wait(write_queue_t *q, wq_job_t *job)
{
    if (pass_head)
        write_pass(q); /* job may be in it; either way this thread must not wait on itself */
    pthread_mutex_lock(&q->mx);
    q->waiters++;
    if (q->writer_asleep && q->head)
        pthread_cond_signal(&q->work_cv); /* its wake-up may still wait for our pass's end */
    while (!job->done)
        pthread_cond_wait(&q->done_cv, &q->mx);
    q->waiters--;
    pthread_mutex_unlock(&q->mx);
    return job->rc;
}
