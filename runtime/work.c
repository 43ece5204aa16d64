/*
 * work.c — the blocking-work pool (API in runtime/io.h): a fixed set of worker threads that
 * run jobs which may block (disk reads, fsync, long folds) so that schedulers and the loop
 * never do, and send each job's result message to the process that asked for it.
 *
 * Owns: the worker threads (started by rt_start, joined by rt_stop) and the FIFO of jobs not
 * yet started (a mutex + condition variable; at most RT_WORK_QUEUE_MAX entries). A job's arg
 * belongs to the pool until fn receives it; a job dropped at stop releases arg with free_arg.
 * Worker threads are "service" threads: they never get a mailbox of their own.
 */
#include "runtime/io.h"
#include "runtime/rt_internal.h"

typedef struct work_job {
    struct work_job *next;
    rt_work_fn fn;
    void *arg;
    void (*free_arg)(void *arg);
    rt_pid_t reply_to;
} work_job_t;

static struct {
    pthread_mutex_t mx;
    pthread_cond_t cv;       /* a job was queued, or the pool is stopping */
    work_job_t *head, *tail; /* jobs not started, oldest first */
    unsigned queued;
    atomic_uint running;
    pthread_t *threads;
    unsigned nthreads;
    bool accepting;          /* submit allowed (between start and stop) */
    bool stopping;           /* workers exit instead of taking more jobs */
} W = {.mx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void rt_service_thread_enter(void)
{
    if (!rt__tls.sched)
        rt__tls.service = true;
}

void rt_service_thread_exit(void)
{
    if (rt__tls.service)
        rt__pool_thread_flush();
}

static void *worker_main(void *unused)
{
    (void)unused;
    rt_service_thread_enter();
    pthread_mutex_lock(&W.mx);
    for (;;) {
        while (!W.head && !W.stopping)
            pthread_cond_wait(&W.cv, &W.mx);
        if (W.stopping)
            break;
        work_job_t *j = W.head;
        W.head = j->next;
        if (!W.head)
            W.tail = NULL;
        W.queued--;
        atomic_fetch_add(&W.running, 1);
        pthread_mutex_unlock(&W.mx);

        rt_msg_t *result = j->fn(j->arg); /* fn owns arg now */
        if (result) {
            if (rt_pid_is_nil(j->reply_to))
                rt_msg_free(result);
            else
                rt_send(j->reply_to, result); /* to a dead process: freed there */
        }
        free(j);
        atomic_fetch_sub(&W.running, 1);
        pthread_mutex_lock(&W.mx);
    }
    pthread_mutex_unlock(&W.mx);
    rt_service_thread_exit();
    return NULL;
}

int rt__work_start(unsigned workers)
{
    if (workers == 0)
        workers = 4;
    pthread_mutex_lock(&W.mx);
    W.head = W.tail = NULL;
    W.queued = 0;
    W.stopping = false;
    W.accepting = true;
    pthread_mutex_unlock(&W.mx);
    W.threads = rt__xcalloc(workers, sizeof *W.threads);
    W.nthreads = 0;
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&W.threads[i], NULL, worker_main, NULL) != 0) {
            rt_error("worker pool: could not start thread %u of %u", i + 1, workers);
            rt__work_stop();
            return RT_ENOMEM;
        }
        W.nthreads++;
    }
    return 0;
}

void rt__work_stop(void)
{
    pthread_mutex_lock(&W.mx);
    W.accepting = false;
    W.stopping = true;
    work_job_t *dropped = W.head;
    W.head = W.tail = NULL;
    W.queued = 0;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mx);

    for (unsigned i = 0; i < W.nthreads; i++) /* running jobs finish first */
        pthread_join(W.threads[i], NULL);
    free(W.threads);
    W.threads = NULL;
    W.nthreads = 0;

    unsigned n = 0;
    for (work_job_t *j = dropped, *next; j; j = next, n++) {
        next = j->next;
        if (j->free_arg)
            j->free_arg(j->arg);
        free(j);
    }
    if (n)
        rt_debug("worker pool: %u job(s) dropped at stop", n);
}

int rt_work_submit2(rt_work_fn fn, void *arg, void (*free_arg)(void *arg), rt_pid_t reply_to)
{
    int rc = 0;
    if (!fn)
        rc = RT_EINVAL;
    work_job_t *j = NULL;
    if (rc == 0) {
        j = rt__xmalloc(sizeof *j);
        *j = (work_job_t){.fn = fn, .arg = arg, .free_arg = free_arg, .reply_to = reply_to};
        pthread_mutex_lock(&W.mx);
        if (!W.accepting || atomic_load(&rt__g.state) != 1)
            rc = RT_ESTATE;
        else if (W.queued >= RT_WORK_QUEUE_MAX)
            rc = RT_ELIMIT;
        else {
            if (W.tail)
                W.tail->next = j;
            else
                W.head = j;
            W.tail = j;
            W.queued++;
            pthread_cond_signal(&W.cv);
        }
        pthread_mutex_unlock(&W.mx);
    }
    if (rc != 0) {
        free(j);
        if (free_arg)
            free_arg(arg);
    }
    return rc;
}

int rt_work_submit(rt_work_fn fn, void *arg, rt_pid_t reply_to)
{
    return rt_work_submit2(fn, arg, NULL, reply_to);
}

rt_msg_t *rt_work_done(uint64_t tag, int64_t result)
{
    rt_work_done_t d = {.tag = tag, .result = result};
    return rt_msg_copy(RT_MSG_WORK_DONE, &d, sizeof d);
}

unsigned rt_work_queued(void)
{
    pthread_mutex_lock(&W.mx);
    unsigned n = W.queued;
    pthread_mutex_unlock(&W.mx);
    return n;
}

unsigned rt_work_running(void) { return atomic_load(&W.running); }
