/*
 * loop.c — the I/O loop: one libuv loop that owns sockets and timers. Other threads hand it
 * work with rt__loop_call(), a mutex-guarded queue drained on a uv_async wake-up.
 * Node-link frames that callbacks here queue (answers to arriving frames, timer messages to
 * remote pids) are written once per loop iteration, before the loop waits for I/O again.
 *
 * Who runs it. By default scheduler 0 does (rt_config_t.io_thread false), as BEAM's
 * schedulers poll for I/O themselves: it polls without waiting between process turns
 * (rt__loop_poll(false)) and, when it has nothing to run, sleeps in the loop's own wait
 * (rt__loop_poll(true)), which a uv_async wake-up ends (rt__loop_wake). A request that
 * arrives on a socket then reaches its process without crossing threads, and jobs that
 * scheduler 0 posts (re-arming a socket's reads, a timer) cost no wake-up: they run at its
 * next poll. With io_thread the loop has a thread of its own, as before.
 */
#include "runtime/io.h"
#include "runtime/rt_internal.h"

#include <uv.h>

typedef struct loop_job {
    struct loop_job *next;
    void (*fn)(void *arg);
    void *arg;
} loop_job_t;

static struct {
    uv_loop_t loop;
    uv_async_t wake;
    uv_prepare_t flush;     /* end of each iteration: write the frames queued on this thread */
    uv_thread_t thread;
    pthread_mutex_t mx;
    loop_job_t *head, *tail;
    bool stopping;
    bool started;
    bool hosted;            /* run by scheduler 0 (rt__loop_poll), not by a thread of its own */
} L;

static _Thread_local bool on_loop;

bool rt__on_loop(void) { return on_loop; }
uv_loop_t *rt__loop(void) { return &L.loop; }

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Runs the queued jobs (and those they queue); returns whether the loop is stopping. */
static bool run_jobs(void)
{
    for (;;) {
        pthread_mutex_lock(&L.mx);
        loop_job_t *j = L.head;
        L.head = L.tail = NULL;
        bool stop = L.stopping;
        pthread_mutex_unlock(&L.mx);
        if (!j)
            return stop;
        while (j) {
            loop_job_t *n = j->next;
            j->fn(j->arg);
            free(j);
            j = n;
        }
    }
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    if (run_jobs())
        uv_walk(&L.loop, close_walk, NULL);
}

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    rt__dist_flush_thread();
}

static void loop_main(void *arg)
{
    on_loop = true;
    rt_service_thread_enter(); /* messages built here come from RT_NOPID */
    uv_run(&L.loop, UV_RUN_DEFAULT);
    rt_service_thread_exit();
}

int rt__loop_start(bool own_thread)
{
    pthread_mutex_init(&L.mx, NULL);
    L.head = L.tail = NULL;
    L.stopping = false;
    L.hosted = !own_thread;
    if (uv_loop_init(&L.loop) != 0)
        return RT_ENOMEM;
    uv_async_init(&L.loop, &L.wake, on_wake);
    uv_prepare_init(&L.loop, &L.flush);
    uv_prepare_start(&L.flush, on_prepare);
    uv_unref((uv_handle_t *)&L.flush); /* never what keeps the loop running */
    if (!L.hosted && uv_thread_create(&L.thread, loop_main, NULL) != 0)
        return RT_ENOMEM;
    L.started = true;
    return 0;
}

void rt__loop_adopt(void) { on_loop = true; }

void rt__loop_poll(bool wait)
{
    run_jobs();
    uv_run(&L.loop, wait ? UV_RUN_ONCE : UV_RUN_NOWAIT);
    run_jobs(); /* what the callbacks just queued */
}

void rt__loop_wake(void) { uv_async_send(&L.wake); }

void rt__loop_call(void (*fn)(void *arg), void *arg)
{
    loop_job_t *j = rt__xmalloc(sizeof *j);
    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&L.mx);
    if (L.tail)
        L.tail->next = j;
    else
        L.head = j;
    L.tail = j;
    pthread_mutex_unlock(&L.mx);
    if (!(L.hosted && on_loop)) /* the hosting scheduler runs it at its next poll */
        uv_async_send(&L.wake);
}

/* Stops the loop: every handle is closed (their close callbacks run), then the thread ends.
 * A hosted loop (its scheduler has stopped) is run to its end here, on the caller's thread. */
void rt__loop_stop(void)
{
    if (!L.started)
        return;
    pthread_mutex_lock(&L.mx);
    L.stopping = true;
    pthread_mutex_unlock(&L.mx);
    if (L.hosted) {
        bool was_on_loop = on_loop;
        on_loop = true;
        run_jobs();
        uv_walk(&L.loop, close_walk, NULL);
        uv_run(&L.loop, UV_RUN_DEFAULT);
        on_loop = was_on_loop;
    } else {
        uv_async_send(&L.wake);
        uv_thread_join(&L.thread);
    }
    /* jobs queued after the stop never ran: free them */
    for (loop_job_t *j = L.head, *n; j; j = n) {
        n = j->next;
        free(j);
    }
    uv_loop_close(&L.loop);
    pthread_mutex_destroy(&L.mx);
    L.started = false;
}
