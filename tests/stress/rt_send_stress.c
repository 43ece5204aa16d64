/*
 * rt_send_stress.c — TSan stress: many producers (4 threads and 4 processes) send tagged
 * messages to 4 receiver processes on 3 schedulers. Each receiver checks a strictly
 * increasing sequence per producer (FIFO, no duplicates) and the totals must match exactly
 * (nothing lost). Also exercises scheduler hand-offs and idle/wake-up paths.
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>

enum { T_SEQ = RT_MSG_USER + 1, T_RESULT, T_GO, NPROD = 8, NRECV = 4, PER_PROD = 20000 };

typedef struct { uint32_t prod, recv; uint64_t seq; } seq_t;
typedef struct { uint64_t last[NPROD]; uint64_t count[NPROD]; uint64_t errors; } recv_t;

static int recv_handle(void *st, rt_msg_t *m)
{
    recv_t *r = st;
    if (m->type == T_SEQ) {
        seq_t *q = (seq_t *)(void *)m->data;
        if (q->prod >= NPROD || q->seq <= r->last[q->prod])
            r->errors++;
        else
            r->last[q->prod] = q->seq;
        r->count[q->prod < NPROD ? q->prod : 0]++;
    } else if (m->type == T_RESULT) {
        rt_reply(rt_call_from(m), rt_msg_copy(T_RESULT, r, sizeof *r));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t recv_beh = {.name = "recv", .state_size = sizeof(recv_t), .handle = recv_handle};

static rt_pid_t g_recv[NRECV];
static uint64_t g_sent[NPROD][NRECV]; /* written by each producer only, read after it ends */
static atomic_int g_prod_done;

static void produce(uint32_t prod, uint64_t *seed, uint64_t *next_seq, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (unsigned)(stress_rnd(seed) % NRECV);
        rt_msg_t *m = rt_msg_new(T_SEQ, sizeof(seq_t));
        seq_t *q = (seq_t *)(void *)m->data;
        q->prod = prod;
        q->recv = k;
        q->seq = ++next_seq[k];
        g_sent[prod][k]++;
        CHECK(rt_send(g_recv[k], m) == 0, "send");
    }
}

static void *thread_producer(void *arg)
{
    uint32_t prod = (uint32_t)(uintptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (prod + 1), next[NRECV] = {0};
    produce(prod, &seed, next, PER_PROD);
    atomic_fetch_add(&g_prod_done, 1);
    rt_thread_detach();
    return NULL;
}

/* A producer process: sends in chunks, re-queuing its own T_GO so it is rescheduled (and
 * may move between scheduler threads) between chunks. */
typedef struct { uint32_t prod; uint32_t left; uint64_t seed; uint64_t next[NRECV]; } pp_t;
static int pp_init(void *st, void *arg)
{
    pp_t *p = st;
    p->prod = (uint32_t)(uintptr_t)arg;
    p->left = PER_PROD;
    p->seed = 0x12345ull * (p->prod + 7);
    return 0;
}
static int pp_handle(void *st, rt_msg_t *m)
{
    pp_t *p = st;
    if (m->type != T_GO)
        return RT_CONTINUE;
    unsigned n = p->left < 97 ? p->left : 97;
    produce(p->prod, &p->seed, p->next, n);
    p->left -= n;
    if (p->left) {
        rt_send(rt_self(), m);
        return RT_CONTINUE;
    }
    atomic_fetch_add(&g_prod_done, 1);
    return RT_STOP;
}
static const rt_behaviour_t pp_beh = {.name = "pp", .state_size = sizeof(pp_t), .init = pp_init, .handle = pp_handle};

int main(void)
{
    stress_start(3);
    for (unsigned i = 0; i < NRECV; i++)
        CHECK(rt_spawn(&recv_beh, NULL, &g_recv[i]) == 0, "spawn");
    pthread_t th[NPROD / 2];
    for (unsigned i = 0; i < NPROD / 2; i++)
        CHECK(pthread_create(&th[i], NULL, thread_producer, (void *)(uintptr_t)i) == 0, "thread");
    for (unsigned i = NPROD / 2; i < NPROD; i++) {
        rt_pid_t p;
        CHECK(rt_spawn(&pp_beh, (void *)(uintptr_t)i, &p) == 0, "spawn");
        rt_send(p, rt_msg_new(T_GO, 0));
    }
    for (unsigned i = 0; i < NPROD / 2; i++)
        pthread_join(th[i], NULL);
    uint64_t end = stress_ms() + 60000;
    while (atomic_load(&g_prod_done) < NPROD && stress_ms() < end)
        ;
    CHECK(atomic_load(&g_prod_done) == NPROD, "producers did not finish");
    /* the last producer process may still be inside its final sends: wait on its exit */
    uint64_t want[NRECV] = {0}, got[NRECV] = {0};
    for (unsigned k = 0; k < NRECV; k++)
        for (unsigned p = 0; p < NPROD; p++)
            want[k] += g_sent[p][k];
    for (unsigned k = 0; k < NRECV; k++) {
        recv_t r;
        do {
            rt_msg_t *m = NULL;
            CHECK(rt_call_sync(g_recv[k], rt_msg_new(T_RESULT, 0), 10000, &m, NULL) == 0, "result");
            memcpy(&r, m->data, sizeof r);
            rt_msg_free(m);
            got[k] = 0;
            for (unsigned p = 0; p < NPROD; p++)
                got[k] += r.count[p];
        } while (got[k] < want[k] && stress_ms() < end);
        CHECK(r.errors == 0, "receiver %u: %llu FIFO/duplicate errors", k, (unsigned long long)r.errors);
        for (unsigned p = 0; p < NPROD; p++)
            CHECK(r.count[p] == g_sent[p][k], "receiver %u producer %u: %llu of %llu", k, p,
                  (unsigned long long)r.count[p], (unsigned long long)g_sent[p][k]);
    }
    rt_stop(2000);
    printf("rt_send_stress: %u messages ok\n", NPROD * PER_PROD);
    return 0;
}
