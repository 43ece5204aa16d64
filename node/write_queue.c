/*
 * write_queue.c — the node's writer thread (API and protocol in node/write_queue.h).
 *
 * Owns: the thread, the FIFO of submitted jobs (a mutex and two condition variables: "work
 * arrived" for the writer, "a job finished" for wq_wait). The writer takes the whole queue at
 * each wake-up and writes it out before it sleeps again, so under load one wake-up serves
 * many puts; the submitter signals only a writer that is actually asleep. In auto mode the
 * writer also wakes once a second to re-check its CPU affinity.
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

struct write_queue_s {
    pthread_mutex_t mx;
    pthread_cond_t work_cv;      /* jobs arrived, or stopping */
    pthread_cond_t done_cv;      /* a job finished (only while someone waits) */
    wq_job_t *head, *tail;
    bool writer_asleep;
    bool stopping;
    unsigned waiters;            /* threads in wq_wait */
    unsigned schedulers;         /* auto mode against this many; 0: always active */
    bool checked;                /* the writer's; auto mode has logged its first decision */
    atomic_bool active;
    pthread_t thread;
};

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
                on ? "on the writer thread" : "inline", cpus, q->schedulers);
        atomic_store(&q->active, on);
    }
    q->checked = true;
}

/* The next affinity check (auto mode), on rt_now_ns's clock (CLOCK_MONOTONIC, as work_cv). */
static uint64_t next_check_after_now(void)
{
    return rt_now_ns() + (uint64_t)AUTO_CHECK_MS * 1000000u;
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

        for (wq_job_t *j = batch, *next; j; j = next) {
            next = j->next;
            j->rc = store_put(j->backend, j->key, j->val, j->len);
            /* Copy what the message needs: once done is set the submitter may free j. */
            rt_pid_t to = j->reply_to;
            uint32_t type = j->done_type;
            pthread_mutex_lock(&q->mx);
            j->done = true;
            if (q->waiters)
                pthread_cond_broadcast(&q->done_cv);
            pthread_mutex_unlock(&q->mx);
            rt_msg_t *m = rt_msg_new(type, 0);
            if (m)
                rt_send(to, m); /* to a process that is gone: freed there */
        }
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

int wq_start(unsigned schedulers, write_queue_t **out)
{
    write_queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->schedulers = schedulers;
    atomic_init(&q->active, true); /* auto mode: until the writer's first check */
    pthread_mutex_init(&q->mx, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->done_cv, NULL);
    int rc = pthread_create(&q->thread, NULL, writer_main, q);
    if (rc != 0) {
        pthread_cond_destroy(&q->done_cv);
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->mx);
        free(q);
        return -rc;
    }
    pthread_setname_np(q->thread, "cairn-writer");
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
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->work_cv);
    pthread_mutex_destroy(&q->mx);
    free(q);
}

void wq_submit(write_queue_t *q, wq_job_t *job)
{
    job->next = NULL;
    job->done = false;
    pthread_mutex_lock(&q->mx);
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    if (q->writer_asleep)
        pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mx);
}

int wq_wait(write_queue_t *q, wq_job_t *job)
{
    pthread_mutex_lock(&q->mx);
    q->waiters++;
    while (!job->done)
        pthread_cond_wait(&q->done_cv, &q->mx);
    q->waiters--;
    pthread_mutex_unlock(&q->mx);
    return job->rc;
}
