/*
 * sched.c — the schedulers: one thread per core by default, each running runnable
 * processes one turn at a time. A turn handles at most `batch` messages and at most
 * `slice_us` of time, so a busy process cannot starve the others.
 *
 * Each scheduler owns two FIFO lists and an inbox:
 *   ready   processes that just became runnable (woken by a message) — run first, so a
 *           call to an idle process is not stuck behind CPU hogs (Go's runnext, in spirit);
 *   yielded processes that used up their turn — run when `ready` is empty, or after
 *           STREAK_MAX consecutive ready turns, so nothing starves;
 *   inbox   a lock-free MPSC queue where other threads put processes for this scheduler.
 * A process woken by a process runs on the waker's scheduler (cache locality). An idle
 * scheduler spins briefly, then sleeps; a scheduler with surplus work hands one process to a
 * sleeping peer and wakes it (work sharing rather than stealing: the lists stay owner-only).
 *
 * Scheduler 0 hosts the I/O loop unless rt_config_t.io_thread gives it a thread (loop.c):
 * it polls for I/O without waiting every POLL_EVERY process turns and whenever it runs out
 * of work, and it sleeps in the loop's wait instead of on its condition variable, so a
 * wake-up for it is a uv_async wake-up.
 *
 * The pass hook (rt_set_pass_hook) runs on a scheduler thread at the end of each pass: when
 * it runs out of work, and every POLL_EVERY turns while it stays busy. A service that
 * batches what processes hand it (node/write_queue.c) wakes its thread there, once for the
 * whole pass, as Redis's beforeSleep does.
 */
#include "runtime/io.h"
#include "runtime/rt_internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STREAK_MAX 16
#define POLL_EVERY 32 /* process turns between I/O polls of a busy hosting scheduler */

typedef struct rt_sched {
    unsigned index;
    pthread_t thread;
    rt_mpscq_t inbox;
    rt_qnode_t *ready_h, *ready_t;
    rt_qnode_t *yield_h, *yield_t;
    unsigned nlocal;
    unsigned streak;
    bool hosts_loop;      /* scheduler 0 unless the loop has its own thread */
    atomic_int sleeping;
    atomic_int idle;      /* 1 while it has nothing to run (spinning or asleep) */
    pthread_mutex_t mx;
    pthread_cond_t cv;
} __attribute__((aligned(64))) rt_sched_t;

static struct {
    _Atomic(rt_pass_hook_fn) pass_hook; /* set last, read first: pass_arg is valid by then */
    void *_Atomic pass_arg;
    rt_sched_t *s;
    unsigned n;
    unsigned batch;
    unsigned spin_rounds; /* idle rounds before sleeping (rt_config_t.idle_spin) */
    uint64_t slice_ns;
    atomic_int stop;
    atomic_int n_sleeping;
    atomic_uint rr;
} S;

static inline rt_proc_t *proc_of_runq(rt_qnode_t *n)
{
    return (rt_proc_t *)(void *)((char *)n - offsetof(rt_proc_t, runq));
}

uint64_t rt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool rt_on_scheduler(void) { return rt__tls.sched != NULL; }

/* ------------------------------------------------------------------ local lists */

static inline void list_push(rt_qnode_t **h, rt_qnode_t **t, rt_qnode_t *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    if (*t)
        atomic_store_explicit(&(*t)->next, n, memory_order_relaxed);
    else
        *h = n;
    *t = n;
}

static inline rt_qnode_t *list_pop(rt_qnode_t **h, rt_qnode_t **t)
{
    rt_qnode_t *n = *h;
    if (n) {
        *h = atomic_load_explicit(&n->next, memory_order_relaxed);
        if (!*h)
            *t = NULL;
    }
    return n;
}

/* ------------------------------------------------------------------ wake-ups */

static void sched_wake(rt_sched_t *s)
{
    /* seq_cst: pairs with the sleeper's store of sleeping=1 before its final inbox check */
    if (atomic_load_explicit(&s->sleeping, memory_order_seq_cst)) {
        if (s->hosts_loop) {
            rt__loop_wake();
            return;
        }
        pthread_mutex_lock(&s->mx);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mx);
    }
}

static void inject(rt_sched_t *s, rt_proc_t *p)
{
    rt__q_push(&s->inbox, &p->runq);
    sched_wake(s);
}

/* Picks a scheduler for work from outside (timers, I/O, threads): an idle one if any (a
 * spinning one first: it is awake), else round robin. Never preferring a busy scheduler
 * matters: work queued behind a long-running handler waits until that handler returns. */
static rt_sched_t *pick_target(void)
{
    rt_sched_t *asleep = NULL;
    for (unsigned i = 0; i < S.n; i++) {
        rt_sched_t *o = &S.s[i];
        if (!atomic_load_explicit(&o->idle, memory_order_relaxed))
            continue;
        if (!atomic_load_explicit(&o->sleeping, memory_order_relaxed))
            return o;
        if (!asleep)
            asleep = o;
    }
    if (asleep)
        return asleep;
    return &S.s[atomic_fetch_add_explicit(&S.rr, 1, memory_order_relaxed) % S.n];
}

void rt__make_runnable(rt_proc_t *p)
{
    rt_sched_t *s = rt__tls.sched;
    if (s) {
        list_push(&s->ready_h, &s->ready_t, &p->runq);
        s->nlocal++;
        return;
    }
    inject(pick_target(), p);
}

/* Hands one process to a sleeping peer when this scheduler has more than it can run now. */
static void share_work(rt_sched_t *s)
{
    if (s->nlocal < 1 || atomic_load_explicit(&S.n_sleeping, memory_order_relaxed) == 0)
        return;
    for (unsigned i = 0; i < S.n; i++) {
        rt_sched_t *o = &S.s[i];
        if (o == s || !atomic_load_explicit(&o->sleeping, memory_order_relaxed))
            continue;
        rt_qnode_t *n = list_pop(&s->yield_h, &s->yield_t);
        if (!n)
            n = list_pop(&s->ready_h, &s->ready_t);
        if (!n)
            return;
        s->nlocal--;
        inject(o, proc_of_runq(n));
        return;
    }
}

/* ------------------------------------------------------------------ running a process */

void rt__run_init(rt_proc_t *p, void *arg, int *reason)
{
    jmp_buf jb;
    rt_tls_t saved = rt__tls;
    rt__tls.cur = p;
    rt__tls.cur_msg = NULL;
    rt__tls.jb = &jb;
    if (setjmp(jb) == 0)
        *reason = p->beh->init(p->state, arg);
    else
        *reason = rt__tls.exit_reason ? rt__tls.exit_reason : RT_R_INIT_FAILED;
    rt__tls.cur = saved.cur;
    rt__tls.cur_msg = saved.cur_msg;
    rt__tls.jb = saved.jb;
    rt__tls.exit_reason = saved.exit_reason;
}


/* Runs one turn of p. Returns the exit reason if p must exit, or -1 to keep it alive. The
 * turn's messages are handled under one setjmp, so rt_exit/RT_ASSERT in a handler lands
 * here with the process's reason. */
static int run_turn(rt_proc_t *p, bool *used_turn)
{
    jmp_buf jb;
    /* volatile: modified between setjmp and a possible longjmp */
    volatile unsigned n = 0;
    volatile int die = -1;
    volatile bool limit = false;
    rt__tls.cur = p;
    rt__tls.jb = &jb;
    rt__tls.exit_reason = 0;
    if (setjmp(jb) != 0) {
        die = rt__tls.exit_reason;
        goto out;
    }
    uint64_t start = 0;
    for (;;) {
        if (n >= S.batch) {
            limit = true;
            break;
        }
        if (atomic_load_explicit(&p->word, memory_order_acquire) & RT_W_KILL) {
            die = RT_R_KILLED;
            break;
        }
        rt_msg_t *m = (rt_msg_t *)(void *)rt__q_pop(&p->mbox);
        if (!m)
            break;
        n = n + 1;
        int reason = -1;
        if (m->type < RT_MSG_USER || (m->flags & RT_MSGF_REPLY)) {
            if (!rt__filter_system(p, &m, &reason)) {
                if (reason >= 0) {
                    die = reason;
                    break;
                }
                continue;
            }
        }
        rt__tls.cur_msg = m;
        int rc = p->beh->handle(p->state, m);
        if (rt__tls.cur_msg) {
            rt_msg_free(rt__tls.cur_msg);
            rt__tls.cur_msg = NULL;
        }
        if (rc != RT_CONTINUE) {
            die = rc == RT_STOP ? RT_R_NORMAL : RT_R_CRASH;
            break;
        }
        if ((n & 7) == 0 && S.slice_ns) {
            uint64_t now = rt_now_ns();
            if (start == 0)
                start = now;
            else if (now - start >= S.slice_ns) {
                limit = true;
                break;
            }
        }
    }
out:
    if (rt__tls.cur_msg) { /* a longjmp out of handle() */
        rt_msg_free(rt__tls.cur_msg);
        rt__tls.cur_msg = NULL;
    }
    rt__tls.jb = NULL;
    *used_turn = limit;
    return die;
}

static void run_process(rt_sched_t *s, rt_proc_t *p)
{
    bool used_turn;
    int die = run_turn(p, &used_turn);
    rt__dist_flush_thread(); /* what this turn sent to other nodes goes out now, in one write */
    if (die >= 0) {
        rt__exit_process(p, die);
        rt__tls.cur = NULL;
        return;
    }
    rt__tls.cur = NULL;
    if (used_turn) {
        /* Used its whole turn with more waiting: back of the line, still scheduled. */
        list_push(&s->yield_h, &s->yield_t, &p->runq);
        s->nlocal++;
        return;
    }
    atomic_store_explicit(&p->sched, 0, memory_order_seq_cst);
    if (rt__q_maybe_nonempty(&p->mbox) &&
        atomic_exchange_explicit(&p->sched, 1, memory_order_seq_cst) == 0) {
        list_push(&s->yield_h, &s->yield_t, &p->runq);
        s->nlocal++;
    }
}

/* ------------------------------------------------------------------ the scheduler loop */

static rt_proc_t *next_local(rt_sched_t *s)
{
    rt_qnode_t *n = NULL;
    if (s->ready_h && (s->streak < STREAK_MAX || !s->yield_h)) {
        n = list_pop(&s->ready_h, &s->ready_t);
        s->streak++;
    } else if (s->yield_h) {
        n = list_pop(&s->yield_h, &s->yield_t);
        s->streak = 0;
    }
    if (n) {
        s->nlocal--;
        return proc_of_runq(n);
    }
    return NULL;
}

static bool drain_inbox(rt_sched_t *s)
{
    bool got = false;
    rt_qnode_t *n;
    while ((n = rt__q_pop(&s->inbox)) != NULL) {
        list_push(&s->ready_h, &s->ready_t, n);
        s->nlocal++;
        got = true;
    }
    return got;
}

/* The hosting scheduler's sleep: in the loop's wait, which I/O, a due timer or a wake-up for
 * this scheduler (sched_wake) ends. */
static void sched_sleep_in_loop(rt_sched_t *s)
{
    rt__dist_flush_thread();
    atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
    atomic_fetch_add(&S.n_sleeping, 1);
    if (!rt__q_maybe_nonempty(&s->inbox) && !atomic_load(&S.stop))
        rt__loop_poll(true);
    atomic_fetch_sub(&S.n_sleeping, 1);
    atomic_store_explicit(&s->sleeping, 0, memory_order_seq_cst);
}

static void sched_sleep(rt_sched_t *s)
{
    if (s->hosts_loop) {
        sched_sleep_in_loop(s);
        return;
    }
    rt__dist_flush_thread();
    pthread_mutex_lock(&s->mx);
    atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
    atomic_fetch_add(&S.n_sleeping, 1);
    while (!rt__q_maybe_nonempty(&s->inbox) && !atomic_load(&S.stop))
        pthread_cond_wait(&s->cv, &s->mx);
    atomic_fetch_sub(&S.n_sleeping, 1);
    atomic_store_explicit(&s->sleeping, 0, memory_order_seq_cst);
    pthread_mutex_unlock(&s->mx);
}


void rt_set_pass_hook(rt_pass_hook_fn fn, void *arg)
{
    atomic_store_explicit(&S.pass_arg, arg, memory_order_relaxed);
    atomic_store_explicit(&S.pass_hook, fn, memory_order_release);
}

static inline void end_of_pass(void)
{
    rt_pass_hook_fn fn = atomic_load_explicit(&S.pass_hook, memory_order_acquire);
    if (fn)
        fn(atomic_load_explicit(&S.pass_arg, memory_order_relaxed));
}

static void *sched_main(void *arg)
{
    rt_sched_t *s = arg;
    rt__tls.sched = s;
    char name[16];
    snprintf(name, sizeof name, "cairn-sched%u", s->index);
    pthread_setname_np(pthread_self(), name);
    if (s->hosts_loop)
        rt__loop_adopt();
    unsigned idle = 0, since_poll = 0;
    while (!atomic_load_explicit(&S.stop, memory_order_relaxed)) {
        if (since_poll >= POLL_EVERY) {
            since_poll = 0;
            end_of_pass();
            if (s->hosts_loop)
                rt__loop_poll(false); /* busy: every POLL_EVERY turns */
        } else if (s->hosts_loop && (idle & 7) == 1) {
            rt__loop_poll(false); /* idle: at once and every 8th spin round */
        }
        rt_proc_t *p = next_local(s);
        if (!p) {
            if (drain_inbox(s))
                continue;
            if (idle == 0) {
                atomic_store_explicit(&s->idle, 1, memory_order_relaxed);
                end_of_pass();
                since_poll = 0;
                if (rt__q_maybe_nonempty(&s->inbox) || s->ready_h || s->yield_h)
                    continue; /* the hook's work woke someone here */
            }
            rt__dist_flush_thread();
            if (++idle < S.spin_rounds) {
                /* Every 8th round, let another runnable thread have this CPU: with more
                 * threads than cores (the loop thread reading node sockets, a second node
                 * on the same host), a pure pause-spin holds the core that would produce
                 * the very work this scheduler waits for. */
                if ((idle & 7) == 0)
                    sched_yield();
                else
                    rt__cpu_relax();
                continue;
            }
            idle = 0;
            sched_sleep(s);
            continue;
        }
        if (idle != 0 || atomic_load_explicit(&s->idle, memory_order_relaxed))
            atomic_store_explicit(&s->idle, 0, memory_order_relaxed);
        idle = 0;
        if ((s->nlocal & 15) == 0 || !s->ready_h)
            drain_inbox(s);
        share_work(s);
        run_process(s, p);
        since_poll++;
    }
    end_of_pass();
    rt__dist_flush_thread();
    rt__procs_thread_exit();
    rt__pool_thread_flush();
    return NULL;
}

int rt__sched_start(unsigned n, unsigned batch, unsigned slice_us, unsigned idle_spin,
                    bool host_loop)
{
    memset(&S, 0, sizeof S);
    S.n = n;
    S.spin_rounds = idle_spin;
    S.batch = batch ? batch : 64;
    S.slice_ns = (uint64_t)slice_us * 1000;
    S.s = rt__xcalloc(n, sizeof(rt_sched_t));
    for (unsigned i = 0; i < n; i++) {
        rt_sched_t *s = &S.s[i];
        s->index = i;
        s->hosts_loop = host_loop && i == 0;
        rt__q_init(&s->inbox);
        pthread_mutex_init(&s->mx, NULL);
        pthread_cond_init(&s->cv, NULL);
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&S.s[i].thread, NULL, sched_main, &S.s[i]) != 0) {
            rt_error("cannot start scheduler thread %u", i);
            S.n = i;
            rt__sched_stop();
            return RT_ENOMEM;
        }
    }
    return 0;
}

void rt__sched_stop(void)
{
    atomic_store(&S.stop, 1);
    for (unsigned i = 0; i < S.n; i++) {
        if (S.s[i].hosts_loop)
            rt__loop_wake();
        pthread_mutex_lock(&S.s[i].mx);
        pthread_cond_broadcast(&S.s[i].cv);
        pthread_mutex_unlock(&S.s[i].mx);
    }
    for (unsigned i = 0; i < S.n; i++)
        pthread_join(S.s[i].thread, NULL);
    for (unsigned i = 0; i < S.n; i++) {
        pthread_mutex_destroy(&S.s[i].mx);
        pthread_cond_destroy(&S.s[i].cv);
    }
    free(S.s);
    S.s = NULL;
    S.n = 0;
}
