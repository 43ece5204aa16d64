/*
 * rt_registry_stress.c — TSan stress: processes on 3 schedulers register, look up, send to
 * and unregister a small pool of names while two threads kill them at random and spawn
 * replacements. A name has at most one owner at a time: a process that registers a name
 * claims it in a shared table and gives it up before unregistering (or in terminate, which
 * runs before the runtime drops the name), so two successful registrations of one name
 * without a release in between are caught. At the end every name is free.
 */
#include "rt_stress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { T_TICK = RT_MSG_USER + 1, T_HELLO, NAMES = 8, POP = 64, RUN_MS = 2500 };

static _Atomic uint64_t g_owner[NAMES]; /* packed pid of the process holding the name, or 0 */
static _Atomic uint64_t g_pids[POP];
static atomic_int g_errors, g_stop;
static atomic_uint_fast64_t g_regs, g_hellos;

static uint64_t pack(rt_pid_t p) { return ((uint64_t)p.id << 32) | p.serial; }
static rt_pid_t unpack(uint64_t v) { return (rt_pid_t){0, (uint32_t)(v >> 32), (uint32_t)v}; }
static void name_of(unsigned i, char *buf) { snprintf(buf, 16, "name-%u", i); }

typedef struct { uint64_t seed; int held; /* name index + 1, or 0 */ } reg_t;

static int reg_init(void *st, void *arg)
{
    reg_t *r = st;
    r->seed = (uint64_t)(uintptr_t)arg * 2654435761u + rt_self().id;
    return 0;
}

static void release_name(reg_t *r, bool unregister)
{
    if (!r->held)
        return;
    unsigned i = (unsigned)r->held - 1;
    uint64_t me = pack(rt_self());
    if (!atomic_compare_exchange_strong(&g_owner[i], &me, 0)) {
        fprintf(stderr, "name %u: owner table does not name us\n", i);
        atomic_fetch_add(&g_errors, 1);
    }
    if (unregister) {
        char n[16];
        name_of(i, n);
        if (rt_unregister(n) != 0) {
            fprintf(stderr, "unregister of a name we hold failed\n");
            atomic_fetch_add(&g_errors, 1);
        }
    }
    r->held = 0;
}

static int reg_handle(void *st, rt_msg_t *m)
{
    reg_t *r = st;
    if (m->type == T_HELLO) {
        atomic_fetch_add(&g_hellos, 1);
        return RT_CONTINUE;
    }
    if (m->type != T_TICK)
        return RT_CONTINUE;
    if (atomic_load(&g_stop))
        return RT_STOP;
    unsigned i = (unsigned)(stress_rnd(&r->seed) % NAMES);
    char n[16];
    name_of(i, n);
    switch (stress_rnd(&r->seed) % 5) {
    case 0:
        if (!r->held) {
            int rc = rt_register(n, rt_self());
            if (rc == 0) {
                uint64_t zero = 0;
                if (!atomic_compare_exchange_strong(&g_owner[i], &zero, pack(rt_self()))) {
                    fprintf(stderr, "name %u registered twice\n", i);
                    atomic_fetch_add(&g_errors, 1);
                }
                r->held = (int)i + 1;
                atomic_fetch_add(&g_regs, 1);
            } else if (rc != RT_EEXIST) {
                fprintf(stderr, "register: %s\n", rt_strerror(rc));
                atomic_fetch_add(&g_errors, 1);
            }
        } else if (rt_register(n, rt_self()) != RT_EEXIST) {
            fprintf(stderr, "a second name for one process\n");
            atomic_fetch_add(&g_errors, 1);
        }
        break;
    case 1:
        release_name(r, true);
        break;
    case 2: {
        rt_pid_t w = rt_whereis(n);
        if (r->held == (int)i + 1 && !rt_pid_eq(w, rt_self())) {
            fprintf(stderr, "whereis does not name the holder\n");
            atomic_fetch_add(&g_errors, 1);
        }
        break;
    }
    case 3:
        rt_send_name(NULL, n, rt_msg_new(T_HELLO, 0));
        break;
    default:
        if (stress_rnd(&r->seed) % 8 == 0)
            return RT_STOP; /* the name dies with us */
        break;
    }
    rt_send_after((uint32_t)(stress_rnd(&r->seed) % 2), rt_self(), m);
    return RT_CONTINUE;
}
static void reg_terminate(void *st, int reason)
{
    (void)reason;
    release_name(st, false); /* the runtime drops the name right after terminate */
}
static const rt_behaviour_t reg_beh = {.name = "reg", .state_size = sizeof(reg_t), .init = reg_init,
                                       .handle = reg_handle, .terminate = reg_terminate};

static void *driver(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg + 17;
    while (!atomic_load(&g_stop)) {
        unsigned k = (unsigned)(stress_rnd(&seed) % POP);
        rt_pid_t p = unpack(atomic_load(&g_pids[k]));
        if (!rt_is_alive(p)) {
            if (rt_spawn(&reg_beh, (void *)(uintptr_t)seed, &p) == 0) {
                atomic_store(&g_pids[k], pack(p));
                rt_send(p, rt_msg_new(T_TICK, 0));
            }
        } else if (stress_rnd(&seed) % 4 == 0) {
            rt_exit_signal(p, stress_rnd(&seed) % 2 ? RT_R_KILL : RT_REASON_USER);
        }
        char n[16];
        name_of((unsigned)(stress_rnd(&seed) % NAMES), n);
        rt_whereis(n);
        usleep(100);
    }
    rt_thread_detach();
    return NULL;
}

int main(void)
{
    stress_start(3);
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, driver, (void *)i) == 0, "thread");
    usleep(RUN_MS * 1000);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    uint64_t end = stress_ms() + 20000;
    while (rt_process_count() > 0 && stress_ms() < end)
        usleep(1000);
    CHECK(rt_process_count() == 0, "%u processes left", rt_process_count());
    for (unsigned i = 0; i < NAMES; i++) {
        char n[16];
        name_of(i, n);
        CHECK(rt_pid_is_nil(rt_whereis(n)), "name %u outlived its process", i);
        CHECK(atomic_load(&g_owner[i]) == 0, "name %u still claimed", i);
    }
    CHECK(atomic_load(&g_errors) == 0, "%d errors", atomic_load(&g_errors));
    CHECK(atomic_load(&g_regs) > 100, "too few registrations");
    printf("rt_registry_stress: %llu registrations, %llu sends by name\n",
           (unsigned long long)atomic_load(&g_regs), (unsigned long long)atomic_load(&g_hellos));
    rt_stop(2000);
    return 0;
}
