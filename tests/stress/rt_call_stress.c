/*
 * rt_call_stress.c — TSan stress: call storms. Caller processes make async calls (with
 * timeouts) to a pool of servers that reply, ignore, or die at random, while threads make
 * blocking calls and a driver kills and respawns servers. Every async call must end in
 * exactly one outcome (reply or CALL_FAILED) and none may be left pending once the
 * storm is over; every blocking call must return within its bound.
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { T_REQ = RT_MSG_USER + 1, T_TICK, NSERV = 16, NCALLERS = 8, PENDING = 64, RUN_MS = 2500 };

static _Atomic uint64_t g_servers[NSERV]; /* packed pids */
static atomic_int g_errors, g_stop, g_callers_done;
static atomic_uint_fast64_t g_replies, g_failed, g_sync_ok, g_sync_down, g_sync_timeout;

static uint64_t pack(rt_pid_t p) { return ((uint64_t)p.id << 32) | p.serial; }
static rt_pid_t unpack(uint64_t v) { return (rt_pid_t){0, (uint32_t)(v >> 32), (uint32_t)v}; }

/* A server: the request's u64 says what to do. */
static int server_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type != T_REQ || !rt_is_call(m))
        return RT_CONTINUE;
    switch (stress_u64_of(m) % 8) {
    case 0:
        return RT_CONTINUE; /* never reply: the caller times out */
    case 1:
        if (stress_u64_of(m) % 64 == 1)
            return -1; /* die mid-call */
        /* fallthrough */
    default:
        rt_reply(rt_call_from(m), m); /* the request itself is the reply */
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t server_beh = {.name = "server", .handle = server_handle};

typedef struct { uint64_t seed; rt_ref_t pending[PENDING]; unsigned left; } caller_t;

static int caller_init(void *st, void *arg)
{
    caller_t *c = st;
    c->seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 3;
    return 0;
}

static bool take_pending(caller_t *c, rt_ref_t ref)
{
    for (unsigned i = 0; i < PENDING; i++)
        if (c->pending[i] == ref) {
            c->pending[i] = 0;
            return true;
        }
    return false;
}

static int caller_handle(void *st, rt_msg_t *m)
{
    caller_t *c = st;
    if (m->flags & RT_MSGF_REPLY) {
        if (!take_pending(c, m->ref)) {
            fprintf(stderr, "reply for a call not pending\n");
            atomic_fetch_add(&g_errors, 1);
        }
        atomic_fetch_add(&g_replies, 1);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_CALL_FAILED) {
        rt_call_failed_t *f = (rt_call_failed_t *)(void *)m->data;
        if (!take_pending(c, f->ref) || f->ref != m->ref) {
            fprintf(stderr, "CALL_FAILED for a call not pending\n");
            atomic_fetch_add(&g_errors, 1);
        }
        atomic_fetch_add(&g_failed, 1);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_DOWN) {
        fprintf(stderr, "a call's DOWN reached the handler\n");
        atomic_fetch_add(&g_errors, 1);
        return RT_CONTINUE;
    }
    if (m->type != T_TICK)
        return RT_CONTINUE;
    if (atomic_load(&g_stop)) { /* stop calling; report once everything has ended */
        unsigned busy = 0;
        for (unsigned i = 0; i < PENDING; i++)
            busy += c->pending[i] != 0;
        if (busy == 0) {
            atomic_fetch_add(&g_callers_done, 1);
            return RT_STOP;
        }
        rt_send_after(5, rt_self(), m);
        return RT_CONTINUE;
    }
    for (unsigned i = 0; i < PENDING; i++) {
        if (c->pending[i])
            continue;
        rt_pid_t to = unpack(atomic_load(&g_servers[stress_rnd(&c->seed) % NSERV]));
        c->pending[i] = rt_call(to, stress_u64(T_REQ, stress_rnd(&c->seed)), 5 + (uint32_t)(stress_rnd(&c->seed) % 40));
        if (c->pending[i] == 0) {
            fprintf(stderr, "rt_call returned no ref\n");
            atomic_fetch_add(&g_errors, 1);
        }
    }
    rt_send_after(1, rt_self(), m);
    return RT_CONTINUE;
}
static const rt_behaviour_t caller_beh = {.name = "caller", .state_size = sizeof(caller_t),
                                          .init = caller_init, .handle = caller_handle};

static void respawn(unsigned i)
{
    rt_pid_t p;
    CHECK(rt_spawn(&server_beh, NULL, &p) == 0, "spawn server");
    atomic_store(&g_servers[i], pack(p));
}

static void *killer(void *arg)
{
    uint64_t seed = 99;
    (void)arg;
    while (!atomic_load(&g_stop)) {
        unsigned i = (unsigned)(stress_rnd(&seed) % NSERV);
        rt_pid_t p = unpack(atomic_load(&g_servers[i]));
        rt_exit_signal(p, stress_rnd(&seed) % 2 ? RT_R_KILL : RT_REASON_USER + 1);
        if (!rt_is_alive(p) || stress_rnd(&seed) % 2)
            respawn(i);
        usleep(500);
        for (unsigned k = 0; k < NSERV; k++)
            if (!rt_is_alive(unpack(atomic_load(&g_servers[k]))))
                respawn(k);
    }
    rt_thread_detach();
    return NULL;
}

static void *sync_caller(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg + 1000;
    while (!atomic_load(&g_stop)) {
        rt_pid_t to = unpack(atomic_load(&g_servers[stress_rnd(&seed) % NSERV]));
        rt_msg_t *r = NULL;
        int reason = -1;
        uint64_t t0 = stress_ms();
        int rc = rt_call_sync(to, stress_u64(T_REQ, stress_rnd(&seed)), 20, &r, &reason);
        CHECK(stress_ms() - t0 < 5000, "a blocking call hung");
        if (rc == 0) {
            CHECK(r->flags & RT_MSGF_REPLY, "reply flag");
            rt_msg_free(r);
            atomic_fetch_add(&g_sync_ok, 1);
        } else if (rc == RT_EDOWN) {
            CHECK(reason >= 0, "EDOWN without a reason");
            atomic_fetch_add(&g_sync_down, 1);
        } else {
            CHECK(rc == RT_ETIMEDOUT, "rt_call_sync: %s", rt_strerror(rc));
            atomic_fetch_add(&g_sync_timeout, 1);
        }
    }
    /* late replies to timed-out calls must not surface as ordinary messages */
    rt_msg_t *m;
    while (rt_receive(50, &m) == 0) {
        CHECK(!(m->flags & RT_MSGF_REPLY) && m->type != RT_MSG_CALL_FAILED, "a late reply surfaced (type %u)", m->type);
        rt_msg_free(m);
    }
    rt_thread_detach();
    return NULL;
}

int main(void)
{
    stress_start(4);
    for (unsigned i = 0; i < NSERV; i++)
        respawn(i);
    for (uintptr_t i = 0; i < NCALLERS; i++) {
        rt_pid_t p;
        CHECK(rt_spawn(&caller_beh, (void *)i, &p) == 0, "spawn caller");
        rt_send(p, rt_msg_new(T_TICK, 0));
    }
    pthread_t th[3];
    CHECK(pthread_create(&th[0], NULL, killer, NULL) == 0, "thread");
    for (uintptr_t i = 1; i < 3; i++)
        CHECK(pthread_create(&th[i], NULL, sync_caller, (void *)i) == 0, "thread");
    usleep(RUN_MS * 1000);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    uint64_t end = stress_ms() + 20000;
    while (atomic_load(&g_callers_done) < NCALLERS && stress_ms() < end)
        usleep(1000);
    CHECK(atomic_load(&g_callers_done) == NCALLERS, "%d callers still have calls pending",
          NCALLERS - atomic_load(&g_callers_done));
    CHECK(atomic_load(&g_errors) == 0, "%d errors", atomic_load(&g_errors));
    CHECK(atomic_load(&g_replies) > 0 && atomic_load(&g_failed) > 0, "no mix of outcomes");
    printf("rt_call_stress: %llu replies, %llu failed; sync: %llu ok, %llu down, %llu timeout\n",
           (unsigned long long)atomic_load(&g_replies), (unsigned long long)atomic_load(&g_failed),
           (unsigned long long)atomic_load(&g_sync_ok), (unsigned long long)atomic_load(&g_sync_down),
           (unsigned long long)atomic_load(&g_sync_timeout));
    rt_stop(2000);
    return 0;
}
