/*
 * rt_churn_stress.c — TSan stress: processes on 4 schedulers spawn, link, unlink, monitor,
 * demonitor, send exit signals and die at random for a few seconds, while two threads
 * spawn, kill and monitor from outside. Each watcher checks that every DOWN it handles is
 * for a monitor it holds and has not demonitored (exactly once), every pid it learns of
 * is never reused for a live process with the same serial, and at the end the population
 * drains to zero and rt_stop frees everything.
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { T_TICK = RT_MSG_USER + 1, TABLE = 256, MONS = 16, RUN_MS = 2500 };

static _Atomic uint64_t g_table[TABLE]; /* recently spawned pids, packed (id << 32 | serial) */
static atomic_int g_errors, g_stop;
static atomic_uint_fast64_t g_downs, g_spawns, g_exits_seen;

static uint64_t pack(rt_pid_t p) { return ((uint64_t)p.id << 32) | p.serial; }
static rt_pid_t unpack(uint64_t v) { return (rt_pid_t){0, (uint32_t)(v >> 32), (uint32_t)v}; }
static rt_pid_t random_pid(uint64_t *seed) { return unpack(atomic_load(&g_table[stress_rnd(seed) % TABLE])); }

#define ERR(...)                                                                           \
    do {                                                                                   \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fputc('\n', stderr);                                                               \
        atomic_fetch_add(&g_errors, 1);                                                    \
    } while (0)

typedef struct {
    uint64_t seed;
    rt_ref_t mons[MONS]; /* monitors held and not demonitored */
    unsigned ticks;
} churner_t;

static const rt_behaviour_t churner_beh;

static void publish(uint64_t *seed, rt_pid_t p)
{
    atomic_store(&g_table[stress_rnd(seed) % TABLE], pack(p));
    atomic_fetch_add(&g_spawns, 1);
}

static int churner_init(void *st, void *arg)
{
    churner_t *c = st;
    c->seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + rt_self().id + 1;
    if (stress_rnd(&c->seed) % 3 == 0)
        rt_trap_exit(true);
    return 0;
}

static void hold_monitor(churner_t *c, rt_ref_t r)
{
    for (unsigned i = 0; i < MONS; i++)
        if (c->mons[i] == 0) {
            c->mons[i] = r;
            return;
        }
    /* full: demonitor the newcomer right away (also a useful race) */
    rt_demonitor(r, RT_DEMONITOR_FLUSH);
}

static int churner_handle(void *st, rt_msg_t *m)
{
    churner_t *c = st;
    if (m->type == RT_MSG_DOWN) {
        rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
        unsigned i = 0;
        while (i < MONS && c->mons[i] != d->ref)
            i++;
        if (i == MONS)
            ERR("DOWN for a monitor not held (ref %llu): duplicate or after demonitor",
                (unsigned long long)d->ref);
        else
            c->mons[i] = 0;
        if (rt_is_alive(d->pid))
            ERR("DOWN for a pid that is still alive");
        atomic_fetch_add(&g_downs, 1);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_EXIT) {
        atomic_fetch_add(&g_exits_seen, 1);
        return RT_CONTINUE;
    }
    if (m->type != T_TICK)
        return RT_CONTINUE;
    if (atomic_load_explicit(&g_stop, memory_order_relaxed))
        return RT_STOP;
    c->ticks++;
    rt_pid_t other = random_pid(&c->seed);
    switch (stress_rnd(&c->seed) % 12) {
    case 0: { /* spawn a child, linked or monitored */
        rt_pid_t p;
        rt_ref_t r = 0;
        rt_spawn_opts_t o = {.link = stress_rnd(&c->seed) % 2 == 0, .monitor = &r};
        if (rt_spawn_opt(&churner_beh, (void *)(uintptr_t)c->ticks, &o, &p) == 0) {
            hold_monitor(c, r);
            publish(&c->seed, p);
            rt_send(p, rt_msg_new(T_TICK, 0));
        }
        break;
    }
    case 1:
        rt_link(other);
        break;
    case 2:
        rt_unlink(other);
        break;
    case 3:
    case 4:
        hold_monitor(c, rt_monitor(other));
        break;
    case 5: { /* demonitor one we hold */
        unsigned i = (unsigned)(stress_rnd(&c->seed) % MONS);
        if (c->mons[i]) {
            rt_demonitor(c->mons[i], RT_DEMONITOR_FLUSH);
            c->mons[i] = 0;
        }
        break;
    }
    case 6: {
        static const int reasons[] = {RT_R_NORMAL, RT_R_KILL, RT_R_SHUTDOWN, RT_REASON_USER + 1};
        rt_exit_signal(other, reasons[stress_rnd(&c->seed) % 4]);
        break;
    }
    case 7:
        if (stress_rnd(&c->seed) % 4 == 0)
            return (stress_rnd(&c->seed) % 2) ? RT_STOP : -1;
        break;
    case 8:
        rt_trap_exit(stress_rnd(&c->seed) % 2 == 0);
        break;
    default:
        rt_send(other, rt_msg_new(T_TICK, 0)); /* an extra tick for someone else */
        break;
    }
    rt_send(rt_self(), m); /* keep ticking: the same message */
    return RT_CONTINUE;
}
static const rt_behaviour_t churner_beh = {.name = "churner", .state_size = sizeof(churner_t),
                                           .init = churner_init, .handle = churner_handle};

/* Outside threads: keep the population up, kill at random, monitor and demonitor. */
static void *driver(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 7777 + 1;
    rt_ref_t held[32] = {0};
    while (!atomic_load(&g_stop)) {
        if (rt_process_count() < 200) {
            rt_pid_t p;
            if (rt_spawn(&churner_beh, (void *)(uintptr_t)seed, &p) == 0) {
                publish(&seed, p);
                rt_send(p, rt_msg_new(T_TICK, 0));
            }
        }
        rt_pid_t other = random_pid(&seed);
        unsigned k = (unsigned)(stress_rnd(&seed) % 32);
        switch (stress_rnd(&seed) % 4) {
        case 0:
            rt_exit_signal(other, RT_R_KILL);
            break;
        case 1:
            if (held[k])
                rt_demonitor(held[k], RT_DEMONITOR_FLUSH);
            held[k] = rt_monitor(other);
            break;
        default: {
            rt_msg_t *m;
            while (rt_receive(0, &m) == 0) { /* DOWNs (of held monitors only) and EXITs */
                if (m->type == RT_MSG_DOWN) {
                    rt_ref_t r = ((rt_down_msg_t *)(void *)m->data)->ref;
                    unsigned i = 0;
                    while (i < 32 && held[i] != r)
                        i++;
                    if (i == 32)
                        ERR("thread: DOWN for a monitor not held");
                    else
                        held[i] = 0;
                }
                rt_msg_free(m);
            }
            break;
        }
        }
    }
    rt_thread_detach();
    return NULL;
}

int main(void)
{
    stress_start(4);
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, driver, (void *)(i + 1)) == 0, "thread");
    uint64_t end = stress_ms() + RUN_MS;
    while (stress_ms() < end)
        usleep(10000);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* every churner stops on its next tick */
    uint64_t drain = stress_ms() + 20000;
    while (rt_process_count() > 0 && stress_ms() < drain)
        usleep(1000);
    CHECK(rt_process_count() == 0, "%u processes did not stop", rt_process_count());
    CHECK(atomic_load(&g_errors) == 0, "%d invariant violations", atomic_load(&g_errors));
    printf("rt_churn_stress: %llu spawns, %llu DOWNs, %llu EXITs trapped\n",
           (unsigned long long)atomic_load(&g_spawns), (unsigned long long)atomic_load(&g_downs),
           (unsigned long long)atomic_load(&g_exits_seen));
    rt_stop(2000);
    return 0;
}
