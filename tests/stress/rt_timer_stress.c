/*
 * rt_timer_stress.c — TSan stress: four threads set timers to themselves and to a counting
 * process, and cancel their own and each other's timers at random, concurrently with the
 * loop thread firing them. A timer whose cancel returned true must never deliver, every
 * other timer must deliver exactly once, and every message is freed exactly once.
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { T_TIMER = RT_MSG_USER + 1, T_COUNT, NTHREADS = 4, PER_THREAD = 4000 };

/* Timer i of thread t: handle, and who won its cancel. Shared so other threads cancel too. */
static _Atomic uint64_t g_handle[NTHREADS][PER_THREAD];
static atomic_bool g_cancelled[NTHREADS][PER_THREAD];
static atomic_int g_freed, g_ready, g_cancel_wins;
static atomic_uint_fast64_t g_proc_got, g_thread_got;

static void dtor(rt_msg_t *m)
{
    (void)m;
    atomic_fetch_add(&g_freed, 1);
}

static int counter_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == T_TIMER) {
        uint64_t v = stress_u64_of(m);
        if (atomic_load(&g_cancelled[v >> 32][(uint32_t)v])) {
            fprintf(stderr, "a cancelled timer reached a process\n");
            exit(1);
        }
        atomic_fetch_add(&g_proc_got, 1);
    } else if (m->type == T_COUNT) {
        rt_reply(rt_call_from(m), stress_u64(T_COUNT, atomic_load(&g_proc_got)));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t counter_beh = {.name = "counter", .handle = counter_handle};
static rt_pid_t g_counter;
static atomic_uint_fast64_t g_to_proc;

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    uint64_t seed = 0x51ed27ull * (t + 1);
    rt_pid_t self = rt_self();
    static _Thread_local bool mine_to_me[PER_THREAD];
    for (unsigned i = 0; i < PER_THREAD; i++) {
        bool to_me = stress_rnd(&seed) % 2;
        mine_to_me[i] = to_me;
        rt_msg_t *m = stress_u64(T_TIMER, ((uint64_t)t << 32) | i);
        m->dtor = dtor;
        if (!to_me)
            atomic_fetch_add(&g_to_proc, 1);
        atomic_store(&g_handle[t][i], rt_send_after((uint32_t)(stress_rnd(&seed) % 40), to_me ? self : g_counter, m));
        /* cancel a random timer of a random thread (maybe already fired, maybe cancelled) */
        unsigned ot = (unsigned)(stress_rnd(&seed) % NTHREADS), oi = (unsigned)(stress_rnd(&seed) % PER_THREAD);
        uint64_t h = atomic_load(&g_handle[ot][oi]);
        if (h && stress_rnd(&seed) % 3 == 0 && rt_cancel_timer(h)) {
            /* a won cancel: its message must never be seen (receivers check this flag
             * when a message arrives, which can only be wrong if the cancel lied) */
            atomic_fetch_add(&g_cancel_wins, 1);
            atomic_store(&g_cancelled[ot][oi], true);
        }
    }
    atomic_fetch_add(&g_ready, 1);
    /* receive our own: each exactly once, none cancelled */
    static _Thread_local bool got[PER_THREAD];
    uint64_t end = stress_ms() + 20000;
    for (;;) {
        unsigned missing = 0;
        for (unsigned i = 0; i < PER_THREAD; i++)
            missing += mine_to_me[i] && !got[i] && !atomic_load(&g_cancelled[t][i]);
        if (missing == 0 && atomic_load(&g_ready) == NTHREADS)
            break;
        rt_msg_t *m;
        if (rt_receive(100, &m) != 0) {
            CHECK(stress_ms() < end, "thread %u: %u timers never fired", t, missing);
            continue;
        }
        uint64_t v = stress_u64_of(m);
        rt_msg_free(m);
        CHECK((v >> 32) == t, "a timer for another thread");
        unsigned i = (uint32_t)v;
        CHECK(!got[i], "timer %u delivered twice", i);
        got[i] = true;
        atomic_fetch_add(&g_thread_got, 1);
    }
    rt_msg_t *m;
    while (rt_receive(100, &m) == 0) {
        uint64_t v = stress_u64_of(m);
        rt_msg_free(m);
        CHECK(!atomic_load(&g_cancelled[t][(uint32_t)v]), "a cancelled timer delivered");
        CHECK(!got[(uint32_t)v], "a timer delivered twice");
    }
    rt_thread_detach();
    return NULL;
}

int main(void)
{
    stress_start(2);
    CHECK(rt_spawn(&counter_beh, NULL, &g_counter) == 0, "spawn");
    pthread_t th[NTHREADS];
    for (uintptr_t t = 0; t < NTHREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)t) == 0, "thread");
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    unsigned cancelled = 0;
    for (unsigned t = 0; t < NTHREADS; t++)
        for (unsigned i = 0; i < PER_THREAD; i++)
            cancelled += atomic_load(&g_cancelled[t][i]);
    /* everything fired or was cancelled by now (max delay 40 ms): every message freed once */
    uint64_t end = stress_ms() + 10000;
    while (atomic_load(&g_freed) < NTHREADS * PER_THREAD && stress_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&g_freed) == NTHREADS * PER_THREAD, "%d of %d timer messages freed",
          atomic_load(&g_freed), NTHREADS * PER_THREAD);
    CHECK((int)cancelled == atomic_load(&g_cancel_wins), "two cancels of one timer both succeeded");
    uint64_t pend = stress_ms() + 5000; /* the counter may still be handling its last few */
    while (atomic_load(&g_proc_got) + atomic_load(&g_thread_got) + cancelled < NTHREADS * PER_THREAD &&
           stress_ms() < pend)
        usleep(1000);
    CHECK(atomic_load(&g_proc_got) + atomic_load(&g_thread_got) + cancelled == NTHREADS * PER_THREAD,
          "delivered %llu + %llu, cancelled %u: not every timer ended exactly once",
          (unsigned long long)atomic_load(&g_proc_got), (unsigned long long)atomic_load(&g_thread_got), cancelled);
    CHECK(cancelled > 100, "too few cancels (%u): the race was not exercised", cancelled);
    printf("rt_timer_stress: %d timers, %u cancelled, %llu delivered to the process\n",
           NTHREADS * PER_THREAD, cancelled, (unsigned long long)atomic_load(&g_proc_got));
    rt_stop(2000);
    return 0;
}
