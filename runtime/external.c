/*
 * external.c — mailboxes for threads that are not schedulers (main, tests, tools). Such a
 * thread gets a pid on first use; senders wake it through a condition variable instead of a
 * run queue. It receives with rt_receive (optionally selective), always traps exits, and its
 * pid dies when the thread calls rt_thread_detach, exits, or the runtime stops.
 */
#include "runtime/rt_internal.h"

#include <errno.h>
#include <time.h>


static const rt_behaviour_t thread_behaviour = {.name = "thread", .handle = NULL};
static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* Externals alive, so that rt_stop can end those of threads that never detached. */
static pthread_mutex_t ext_mx = PTHREAD_MUTEX_INITIALIZER;

static void thread_gone(void *arg)
{
    (void)arg;
    rt_thread_detach();
}

static void make_key(void) { pthread_key_create(&thread_key, thread_gone); }

static rt_proc_t *proc_new_external(void);
rt_proc_t *rt__thread_proc(void)
{
    if (rt__tls.thread_proc)
        return rt__tls.thread_proc;
    if (rt__tls.sched || rt__tls.service || atomic_load(&rt__g.state) != 1)
        return NULL;
    pthread_once(&key_once, make_key);
    rt_proc_t *p = proc_new_external();
    if (!p)
        return NULL;
    rt_ext_t *x = rt__ext(p);
    pthread_mutex_init(&x->mx, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    rt__tls.thread_proc = p;
    pthread_setspecific(thread_key, p);
    return p;
}

void rt__external_wake(rt_proc_t *p)
{
    pthread_mutex_lock(&p->ext->mx);
    pthread_cond_signal(&p->ext->cv);
    pthread_mutex_unlock(&p->ext->mx);
}

/* Pops the next message for this thread, after the system filter; NULL if none now. */
static rt_msg_t *next_message(rt_proc_t *p)
{
    for (;;) {
        rt_msg_t *m = (rt_msg_t *)(void *)rt__q_pop(&p->mbox);
        if (!m)
            return NULL;
        int die = -1;
        if (m->type < RT_MSG_USER || (m->flags & RT_MSGF_REPLY)) {
            if (!rt__filter_system(p, &m, &die))
                continue; /* consumed; external threads never die of signals */
        }
        return m;
    }
}

static void saved_push(rt_ext_t *x, rt_msg_t *m)
{
    atomic_store_explicit(&m->q_.next, NULL, memory_order_relaxed);
    if (x->saved_t)
        atomic_store_explicit(&x->saved_t->q_.next, &m->q_, memory_order_relaxed);
    else
        x->saved_h = m;
    x->saved_t = m;
}

/* Takes the first saved message that matches, keeping the others in order. */
static rt_msg_t *saved_take(rt_ext_t *x, bool (*match)(const rt_msg_t *, void *), void *ctx)
{
    rt_msg_t *prev = NULL;
    for (rt_msg_t *m = x->saved_h; m; prev = m, m = (rt_msg_t *)(void *)atomic_load_explicit(&m->q_.next, memory_order_relaxed)) {
        if (match && !match(m, ctx))
            continue;
        rt_msg_t *next = (rt_msg_t *)(void *)atomic_load_explicit(&m->q_.next, memory_order_relaxed);
        if (prev)
            atomic_store_explicit(&prev->q_.next, next ? &next->q_ : NULL, memory_order_relaxed);
        else
            x->saved_h = next;
        if (x->saved_t == m)
            x->saved_t = prev;
        return m;
    }
    return NULL;
}

int rt_receive_match(uint32_t timeout_ms, bool (*match)(const rt_msg_t *m, void *ctx), void *ctx,
                     rt_msg_t **out)
{
    if (rt__tls.sched || rt__tls.cur)
        return RT_ECALLER;
    rt_proc_t *p = rt__thread_proc();
    if (!p)
        return RT_ESTATE;
    rt_ext_t *x = p->ext;
    rt_msg_t *m = saved_take(x, match, ctx);
    if (m) {
        *out = m;
        return 0;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms != RT_INFINITY) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        while ((m = next_message(p)) != NULL) {
            if (!match || match(m, ctx)) {
                *out = m;
                return 0;
            }
            saved_push(x, m);
        }
        /* Nothing: give the wake-up flag back and sleep until a sender takes it. */
        pthread_mutex_lock(&x->mx);
        atomic_store_explicit(&p->sched, 0, memory_order_seq_cst);
        if (rt__q_maybe_nonempty(&p->mbox)) {
            atomic_store_explicit(&p->sched, 1, memory_order_seq_cst);
            pthread_mutex_unlock(&x->mx);
            continue;
        }
        int rc = 0;
        if (timeout_ms == RT_INFINITY)
            pthread_cond_wait(&x->cv, &x->mx);
        else
            rc = pthread_cond_timedwait(&x->cv, &x->mx, &deadline);
        atomic_store_explicit(&p->sched, 1, memory_order_seq_cst);
        pthread_mutex_unlock(&x->mx);
        if (rc == ETIMEDOUT) {
            /* one last look: a message may have arrived with the timeout */
            while ((m = next_message(p)) != NULL) {
                if (!match || match(m, ctx)) {
                    *out = m;
                    return 0;
                }
                saved_push(x, m);
            }
            return RT_ETIMEDOUT;
        }
    }
}

int rt_receive(uint32_t timeout_ms, rt_msg_t **out) { return rt_receive_match(timeout_ms, NULL, NULL, out); }

void rt_thread_detach(void)
{
    rt_proc_t *p = rt__tls.thread_proc;
    if (!p)
        return;
    rt__tls.thread_proc = NULL;
    if (key_once != PTHREAD_ONCE_INIT)
        pthread_setspecific(thread_key, NULL);
    pthread_mutex_lock(&ext_mx);
    rt__exit_process(p, RT_R_NORMAL);
    pthread_mutex_unlock(&ext_mx);
    rt__procs_thread_exit();
    rt__pool_thread_flush();
}

void rt__externals_free(void) { rt_thread_detach(); }

/* The external's own "process" is a slot with the EXTERNAL flag and no handler. */
static rt_proc_t *proc_new_external(void)
{
    rt_pid_t pid;
    rt_proc_t *p = NULL;
    if (rt__spawn_external(&thread_behaviour, &pid, &p) != 0)
        return NULL;
    return p;
}
