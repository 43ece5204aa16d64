/*
 * runtime.c — starting and stopping the runtime: configuration defaults, bringing up the
 * process table, timers, the loop thread, schedulers and distribution; and the ordered stop
 * (root supervisor tree first, then every remaining process, then the threads).
 */
#include "runtime/rt_internal.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

void rt_config_default(rt_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->schedulers = 0;
    c->batch = 64;
    c->slice_us = 100;
    c->max_procs = 1u << 22;
    c->workers = 4;
    c->idle_spin = 2000;
    c->heartbeat_ms = 1000;
    c->net_timeout_ms = 4000;
}

bool rt_running(void) { return atomic_load(&rt__g.state) == 1; }

int rt_start(const rt_config_t *cfg)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&rt__g.state, &expected, 3))
        return RT_ESTATE;
    rt_config_t c;
    if (cfg)
        c = *cfg;
    else
        rt_config_default(&c);
    if (c.schedulers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.schedulers = n > 0 ? (unsigned)n : 1;
    }
    if (c.batch == 0)
        c.batch = 64;
    if (c.max_procs < 1024)
        c.max_procs = 1024;
    if (c.heartbeat_ms == 0)
        c.heartbeat_ms = 1000;
    if (c.net_timeout_ms == 0)
        c.net_timeout_ms = 4000;
    rt__g.cfg = c;
    rt__g.root = RT_NOPID;
    atomic_store(&rt__g.next_ref, ((((uint64_t)getpid() << 40) ^ ((uint64_t)time(NULL) << 20)) | 1));
    rt__procs_init(c.max_procs);
    rt__timers_init();
    int rc = rt__loop_start(c.io_thread);
    if (rc == 0)
        rc = rt__sched_start(c.schedulers, c.batch, c.slice_us, c.idle_spin, !c.io_thread);
    if (rc == 0 && (rc = rt__work_start(c.workers)) != 0)
        rt__sched_stop();
    if (rc != 0) {
        rt__loop_stop();
        rt__io_free();
        rt__timers_free();
        rt__procs_free();
        atomic_store(&rt__g.state, 0);
        return rc;
    }
    atomic_store(&rt__g.state, 1);
    rc = rt__dist_start(&c);
    if (rc != 0) {
        rt_stop(0);
        return rc;
    }
    return 0;
}

void rt_set_root(rt_pid_t root) { rt__g.root = root; }

static bool wait_down(rt_ref_t ref, uint32_t ms)
{
    rt_msg_t *m;
    uint64_t end = rt_now_ns() + (uint64_t)ms * 1000000ull;
    for (;;) {
        uint64_t now = rt_now_ns();
        if (now >= end)
            return false;
        if (rt_receive((uint32_t)((end - now) / 1000000ull) + 1, &m) != 0)
            return false;
        bool hit = m->type == RT_MSG_DOWN && ((rt_down_msg_t *)(void *)m->data)->ref == ref;
        rt_msg_free(m);
        if (hit)
            return true;
    }
}

/* Waits until only external (thread) mailboxes are alive; false on timeout. */
static bool wait_all_dead(uint32_t ms, uint32_t externals)
{
    uint64_t end = rt_now_ns() + (uint64_t)ms * 1000000ull;
    while (rt_process_count() > externals) {
        if (rt_now_ns() > end)
            return false;
        usleep(1000);
    }
    return true;
}

void rt_stop(uint32_t shutdown_ms)
{
    if (atomic_load(&rt__g.state) != 1 || rt__tls.sched)
        return;
    if (!rt_pid_is_nil(rt__g.root)) {
        rt_ref_t ref = rt_monitor(rt__g.root);
        rt_exit_signal(rt__g.root, RT_R_SHUTDOWN);
        if (!wait_down(ref, shutdown_ms ? shutdown_ms : 5000)) {
            rt_warn("root process did not stop within %u ms: killing it", shutdown_ms);
            rt_exit_signal(rt__g.root, RT_R_KILL);
            /* the root tree goes first: wait for the kill (prompt) before killing the rest */
            wait_down(ref, 2000);
        }
    }
    rt__dist_stop();
    atomic_store(&rt__g.state, 2); /* no more spawns */
    rt_thread_detach();
    for (int round = 0; round < 3 && rt_process_count() > rt__external_count(); round++) {
        rt__procs_kill_all();
        if (wait_all_dead(2000, rt__external_count()))
            break;
    }
    if (rt_process_count() > rt__external_count())
        rt_warn("%u process(es) still alive at stop (stuck in a handler?)",
                rt_process_count() - rt__external_count());
    rt__work_stop();
    rt__sched_stop();
    rt__loop_stop();
    rt__io_free();
    rt__dist_free();
    rt__timers_free();
    rt__registry_free();
    rt__procs_free();
    rt__pool_thread_flush();
    atomic_store(&rt__g.state, 0);
}
