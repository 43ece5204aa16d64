/*
 * loop.c — the I/O loop thread: one libuv loop that owns sockets and timers. Other threads
 * hand it work with rt__loop_call(), a mutex-guarded queue drained on a uv_async wake-up.
 * Node-link frames that callbacks here queue (answers to arriving frames, timer messages to
 * remote pids) are written once per loop iteration, before the loop waits for I/O again.
 */
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
} L;

static _Thread_local bool on_loop;

bool rt__on_loop(void) { return on_loop; }
uv_loop_t *rt__loop(void) { return &L.loop; }

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_wake(uv_async_t *a)
{
    pthread_mutex_lock(&L.mx);
    loop_job_t *j = L.head;
    L.head = L.tail = NULL;
    bool stop = L.stopping;
    pthread_mutex_unlock(&L.mx);
    while (j) {
        loop_job_t *n = j->next;
        j->fn(j->arg);
        free(j);
        j = n;
    }
    if (stop)
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
    rt__tls.service = true; /* messages built here come from RT_NOPID */
    uv_run(&L.loop, UV_RUN_DEFAULT);
    rt__pool_thread_flush();
}

int rt__loop_start(void)
{
    pthread_mutex_init(&L.mx, NULL);
    L.head = L.tail = NULL;
    L.stopping = false;
    if (uv_loop_init(&L.loop) != 0)
        return RT_ENOMEM;
    uv_async_init(&L.loop, &L.wake, on_wake);
    uv_prepare_init(&L.loop, &L.flush);
    uv_prepare_start(&L.flush, on_prepare);
    uv_unref((uv_handle_t *)&L.flush); /* never what keeps the loop running */
    if (uv_thread_create(&L.thread, loop_main, NULL) != 0)
        return RT_ENOMEM;
    L.started = true;
    return 0;
}

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
    uv_async_send(&L.wake);
}

/* Stops the loop: every handle is closed (their close callbacks run), then the thread ends. */
void rt__loop_stop(void)
{
    if (!L.started)
        return;
    pthread_mutex_lock(&L.mx);
    L.stopping = true;
    pthread_mutex_unlock(&L.mx);
    uv_async_send(&L.wake);
    uv_thread_join(&L.thread);
    /* jobs queued after the stop never ran: free them */
    for (loop_job_t *j = L.head, *n; j; j = n) {
        n = j->next;
        free(j);
    }
    uv_loop_close(&L.loop);
    pthread_mutex_destroy(&L.mx);
    L.started = false;
}
