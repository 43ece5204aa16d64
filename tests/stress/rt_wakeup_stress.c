/*
 * rt_wakeup_stress.c — TSan stress: no wake-up is lost when a message arrives while its
 * receiver takes the last one. A thread sends a message to a process and at once calls it,
 * so the call's request is pushed just as the process (woken by the first message) empties
 * its mailbox and ends its turn; the same race runs on the schedulers' inboxes, which the
 * threads fill while a scheduler drains them. A lost wake-up leaves the request queued with
 * nobody to run it, so the call fails with RT_ETIMEDOUT (a bound far above any latency).
 * Each reply must also count every message the calling thread sent before it (FIFO).
 *
 * Phase 1 is the sharpest form (one scheduler, one calling thread: nothing else would wake
 * the process); phase 2 adds concurrency (two schedulers, four threads, shared processes).
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>

enum { W_HIT = RT_MSG_USER + 1, W_COUNT, NPROC = 4, MAX_THREADS = 4, CALL_BOUND_MS = 10000,
       SPIN_MAX = 1000 };

static int counter_handle(void *st, rt_msg_t *m)
{
    uint64_t *n = st;
    if (m->type == W_HIT)
        (*n)++;
    else if (m->type == W_COUNT)
        rt_reply(rt_call_from(m), stress_u64(W_COUNT, *n));
    return RT_CONTINUE;
}
static const rt_behaviour_t counter_beh = {.name = "counter", .state_size = sizeof(uint64_t), .handle = counter_handle};

static rt_pid_t g_proc[NPROC];
static unsigned g_rounds;
static atomic_int g_threads_done;

static void *caller_thread(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (t + 1), hits[NPROC] = {0};
    for (unsigned i = 0; i < g_rounds; i++) {
        unsigned k = (unsigned)(stress_rnd(&seed) % NPROC);
        CHECK(rt_send(g_proc[k], rt_msg_new(W_HIT, 0)) == 0, "send");
        hits[k]++;
        /* a varying pause, so that over the rounds the call's push sweeps across the
         * moment the process takes the message just sent */
        for (volatile unsigned spin = (unsigned)(stress_rnd(&seed) % SPIN_MAX); spin > 0; spin--)
            ;
        rt_msg_t *r = NULL;
        int rc = rt_call_sync(g_proc[k], rt_msg_new(W_COUNT, 0), CALL_BOUND_MS, &r, NULL);
        CHECK(rc == 0, "thread %u round %u: call to process %u: %s (a lost wake-up)", t, i, k, rt_strerror(rc));
        uint64_t count = stress_u64_of(r);
        rt_msg_free(r);
        CHECK(count >= hits[k], "thread %u: process %u counted %llu of this thread's %llu messages", t, k,
              (unsigned long long)count, (unsigned long long)hits[k]);
    }
    atomic_fetch_add(&g_threads_done, 1);
    rt_thread_detach();
    return NULL;
}

static void run(unsigned schedulers, unsigned threads, unsigned rounds)
{
    stress_start(schedulers);
    g_rounds = rounds;
    atomic_store(&g_threads_done, 0);
    for (unsigned k = 0; k < NPROC; k++)
        CHECK(rt_spawn(&counter_beh, NULL, &g_proc[k]) == 0, "spawn");
    pthread_t th[MAX_THREADS];
    for (unsigned t = 0; t < threads; t++)
        CHECK(pthread_create(&th[t], NULL, caller_thread, (void *)(uintptr_t)t) == 0, "thread");
    for (unsigned t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    CHECK(atomic_load(&g_threads_done) == (int)threads, "callers did not finish");
    rt_stop(2000);
}

int main(void)
{
    enum { ROUNDS1 = 150000, THREADS2 = MAX_THREADS, ROUNDS2 = 25000 };
    run(1, 1, ROUNDS1);
    run(2, THREADS2, ROUNDS2);
    printf("rt_wakeup_stress: %u calls right after a send, none lost\n", ROUNDS1 + THREADS2 * ROUNDS2);
    return 0;
}
