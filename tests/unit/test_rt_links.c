/*
 * test_rt_links.c — links, monitors, exit signals and crash isolation (issue 2, properties
 * 3 and 4): exit propagation by reason, trap_exit, untrappable kill, noproc for dead pids,
 * unlink and demonitor (also racing with the peer's death), and a crashing handler ending
 * only its own process after terminate() and its owned resources ran exactly once, in
 * reverse order.
 */
#include "rt_test.h"

#include <stdatomic.h>
#include <unistd.h>

enum {
    C_PING = RT_MSG_USER + 200, /* call: reply 1 */
    C_LINK,                     /* call: rt_link(arg.pid), reply rc */
    C_UNLINK,                   /* call: rt_unlink(arg.pid) */
    C_MONITOR,                  /* call: rt_monitor(arg.pid), reply ref */
    C_DEMONITOR,                /* call: rt_demonitor(arg.ref, FLUSH), reply result */
    C_TRAP,                     /* call: rt_trap_exit(arg.on) */
    C_CRASH,                    /* handler returns an error */
    C_ASSERT,                   /* RT_ASSERT fails */
    C_EXIT,                     /* rt_exit(arg.reason) */
    C_STOP,                     /* RT_STOP */
    C_EXIT_SELF,                /* rt_exit_signal(self, arg.reason) */
    C_BUSY,                     /* spin arg.reason milliseconds */
    C_UNLINK_AFTER_DEATH,       /* wait until arg.pid is dead, then unlink it */
    C_MON_KILL_DEMON,           /* monitor arg.pid, kill it, spin arg.reason loops, demonitor */
    C_OWN,                      /* rt_own two more resources */
    R_EXIT,                     /* report to the owner: an RT_MSG_EXIT (rt_exit_msg_t) */
    R_DOWN,                     /* report to the owner: an RT_MSG_DOWN (rt_down_msg_t) */
};

typedef struct {
    rt_pid_t pid;
    int32_t reason;
    int32_t on;
    uint64_t ref;
} cmd_t;

typedef struct {
    rt_pid_t owner; /* the test thread: receives R_EXIT / R_DOWN reports */
} agent_t;

static int agent_init(void *st, void *arg)
{
    agent_t *a = st;
    a->owner = *(rt_pid_t *)arg;
    return 0;
}

static void spin_ms(int ms)
{
    uint64_t end = rt_now_ns() + (uint64_t)ms * 1000000ull;
    while (rt_now_ns() < end)
        ;
}

static int agent_handle(void *st, rt_msg_t *m)
{
    agent_t *a = st;
    cmd_t *c = (cmd_t *)(void *)m->data;
    uint64_t out = 0;
    switch (m->type) {
    case RT_MSG_EXIT:
        rt_send(a->owner, rt_msg_copy(R_EXIT, m->data, sizeof(rt_exit_msg_t)));
        return RT_CONTINUE;
    case RT_MSG_DOWN:
        rt_send(a->owner, rt_msg_copy(R_DOWN, m->data, sizeof(rt_down_msg_t)));
        return RT_CONTINUE;
    case C_PING:
        out = 1;
        break;
    case C_LINK:
        out = (uint64_t)(int64_t)rt_link(c->pid);
        break;
    case C_UNLINK:
        out = (uint64_t)(int64_t)rt_unlink(c->pid);
        break;
    case C_MONITOR:
        out = rt_monitor(c->pid);
        break;
    case C_DEMONITOR:
        out = rt_demonitor(c->ref, RT_DEMONITOR_FLUSH);
        break;
    case C_TRAP:
        rt_trap_exit(c->on != 0);
        break;
    case C_CRASH:
        return -1;
    case C_ASSERT:
        RT_ASSERT(c->reason == -12345);
        break;
    case C_EXIT:
        rt_exit(c->reason);
    case C_STOP:
        return RT_STOP;
    case C_EXIT_SELF:
        rt_exit_signal(rt_self(), c->reason);
        break;
    case C_BUSY:
        spin_ms(c->reason);
        break;
    case C_UNLINK_AFTER_DEATH: {
        uint64_t end = rt_now_ns() + 5000000000ull;
        while (rt_is_alive(c->pid) && rt_now_ns() < end)
            ;
        spin_ms(30); /* let the dying peer send its exit signals: they queue behind us */
        out = (uint64_t)(int64_t)rt_unlink(c->pid);
        break;
    }
    case C_MON_KILL_DEMON: {
        rt_ref_t ref = rt_monitor(c->pid);
        rt_exit_signal(c->pid, RT_R_KILL);
        for (volatile int i = 0; i < c->reason; i++)
            ;
        rt_demonitor(ref, RT_DEMONITOR_FLUSH);
        out = ref;
        break;
    }
    default:
        return RT_CONTINUE;
    }
    if (rt_is_call(m))
        rt_reply(rt_call_from(m), rt_test_u64_msg(m->type, out));
    return RT_CONTINUE;
}
static const rt_behaviour_t agent_beh = {.name = "agent", .state_size = sizeof(agent_t),
                                         .init = agent_init, .handle = agent_handle};

static rt_pid_t agent(void)
{
    rt_pid_t self = rt_self(), p;
    cr_assert_eq(rt_spawn(&agent_beh, &self, &p), 0);
    return p;
}
static rt_pid_t trapping_agent(void)
{
    rt_pid_t self = rt_self(), p;
    rt_spawn_opts_t o = {.trap_exit = true};
    cr_assert_eq(rt_spawn_opt(&agent_beh, &self, &o, &p), 0);
    return p;
}

static uint64_t cmd_call(rt_pid_t to, uint32_t type, cmd_t c)
{
    rt_msg_t *r = NULL;
    int rc = rt_call_sync(to, rt_msg_copy(type, &c, sizeof c), 5000, &r, NULL);
    cr_assert_eq(rc, 0, "command %u: %s", type, rt_strerror(rc));
    uint64_t v = rt_test_u64_of(r);
    rt_msg_free(r);
    return v;
}
static void cmd_send(rt_pid_t to, uint32_t type, cmd_t c) { rt_send(to, rt_msg_copy(type, &c, sizeof c)); }
static void link_pair(rt_pid_t a, rt_pid_t b) { cr_assert_eq((int64_t)cmd_call(a, C_LINK, (cmd_t){.pid = b}), 0); }

static bool alive_and_answers(rt_pid_t p)
{
    rt_msg_t *r = NULL;
    cmd_t c = {0};
    if (rt_call_sync(p, rt_msg_copy(C_PING, &c, sizeof c), 5000, &r, NULL) != 0)
        return false;
    rt_msg_free(r);
    return true;
}

/* Next report of `type` from agent `from`; fails the test if none arrives in time. */
typedef struct { uint32_t type; rt_pid_t from; } rep_ctx_t;
static bool match_report(const rt_msg_t *m, void *ctx)
{
    rep_ctx_t *c = ctx;
    return m->type == c->type && rt_pid_eq(m->from, c->from);
}
static rt_exit_msg_t expect_exit_report(rt_pid_t from)
{
    rep_ctx_t c = {R_EXIT, from};
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive_match(5000, match_report, &c, &m), 0, "no EXIT report");
    rt_exit_msg_t e;
    memcpy(&e, m->data, sizeof e);
    rt_msg_free(m);
    return e;
}
static rt_down_msg_t expect_down_report(rt_pid_t from)
{
    rep_ctx_t c = {R_DOWN, from};
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive_match(5000, match_report, &c, &m), 0, "no DOWN report");
    rt_down_msg_t d;
    memcpy(&d, m->data, sizeof d);
    rt_msg_free(m);
    return d;
}

static void start2(void) { rt_test_start_n(2); }
static void stop(void) { rt_test_stop(); }
TestSuite(rt_links, .init = start2, .fini = stop, .timeout = 60);

/* ------------------------------------------------------------------ links */

Test(rt_links, abnormal_exit_propagates_normal_does_not)
{
    /* custom reason through exit/2: b dies, and a, linked and not trapping, with it */
    rt_pid_t a = agent(), b = agent();
    link_pair(a, b);
    rt_ref_t ra = rt_monitor(a), rb = rt_monitor(b);
    cr_assert_eq(rt_exit_signal(b, RT_REASON_USER + 1), 0);
    cr_assert_eq(rt_test_wait_down(rb, 5000), RT_REASON_USER + 1);
    cr_assert_eq(rt_test_wait_down(ra, 5000), RT_REASON_USER + 1);

    /* a crash propagates along a chain of links, both directions */
    rt_pid_t c = agent(), d = agent(), e = agent();
    link_pair(c, d);
    link_pair(e, d);
    rt_ref_t rc = rt_monitor(c), re = rt_monitor(e);
    cmd_send(c, C_CRASH, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(rc, 5000), RT_R_CRASH);
    cr_assert_eq(rt_test_wait_down(re, 5000), RT_R_CRASH);
    cr_assert(!rt_is_alive(d));

    /* a normal exit does not */
    rt_pid_t f = agent(), g = agent();
    link_pair(f, g);
    rt_ref_t rg = rt_monitor(g), rf = rt_monitor(f);
    cmd_send(g, C_STOP, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(rg, 5000), RT_R_NORMAL);
    cr_assert(alive_and_answers(f));
    cr_assert_eq(rt_test_wait_down(rf, 200), -1, "a normal exit killed a linked process");
}

Test(rt_links, trap_exit_turns_exit_signals_into_messages)
{
    rt_pid_t a = trapping_agent(), b = agent(), c = agent();
    link_pair(a, b);
    link_pair(a, c);
    cmd_send(b, C_CRASH, (cmd_t){0});
    rt_exit_msg_t e = expect_exit_report(a);
    cr_assert(rt_pid_eq(e.from, b));
    cr_assert_eq(e.reason, RT_R_CRASH);
    cmd_send(c, C_STOP, (cmd_t){0});
    e = expect_exit_report(a);
    cr_assert(rt_pid_eq(e.from, c));
    cr_assert_eq(e.reason, RT_R_NORMAL);
    /* exit/2 with custom reasons reaches a trapping process as a message, from the sender */
    cr_assert_eq(rt_exit_signal(a, RT_REASON_USER + 2), 0);
    e = expect_exit_report(a);
    cr_assert(rt_pid_eq(e.from, rt_self()));
    cr_assert_eq(e.reason, RT_REASON_USER + 2);
    cr_assert_eq(rt_exit_signal(a, RT_R_SHUTDOWN), 0);
    cr_assert_eq(expect_exit_report(a).reason, RT_R_SHUTDOWN);
    cr_assert(alive_and_answers(a));
    /* trap_exit off again: the next abnormal signal kills */
    cmd_call(a, C_TRAP, (cmd_t){.on = 0});
    rt_ref_t ra = rt_monitor(a);
    rt_exit_signal(a, RT_REASON_USER + 3);
    cr_assert_eq(rt_test_wait_down(ra, 5000), RT_REASON_USER + 3);
}

Test(rt_links, kill_is_untrappable_and_prompt)
{
    rt_pid_t a = trapping_agent(), watcher = trapping_agent();
    link_pair(watcher, a);
    rt_ref_t ra = rt_monitor(a);
    /* a has a second of work queued: kill must not wait for it */
    for (int i = 0; i < 200; i++)
        cmd_send(a, C_BUSY, (cmd_t){.reason = 5});
    uint64_t t0 = rt_now_ns();
    cr_assert_eq(rt_exit_signal(a, RT_R_KILL), 0);
    cr_assert_eq(rt_test_wait_down(ra, 5000), RT_R_KILLED);
    cr_assert_lt(rt_now_ns() - t0, 500000000ull, "kill waited for the queued messages");
    /* linked processes see `killed`, which is an ordinary (trappable) reason */
    rt_exit_msg_t e = expect_exit_report(watcher);
    cr_assert(rt_pid_eq(e.from, a));
    cr_assert_eq(e.reason, RT_R_KILLED);
    cr_assert(alive_and_answers(watcher));
}

Test(rt_links, link_to_dead_pid_gives_exit_noproc)
{
    rt_pid_t dead = agent();
    rt_ref_t rd = rt_monitor(dead);
    cmd_send(dead, C_STOP, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(rd, 5000), RT_R_NORMAL);

    rt_pid_t t = trapping_agent();
    cr_assert_eq((int64_t)cmd_call(t, C_LINK, (cmd_t){.pid = dead}), RT_ENOPROC);
    rt_exit_msg_t e = expect_exit_report(t);
    cr_assert(rt_pid_eq(e.from, dead));
    cr_assert_eq(e.reason, RT_R_NOPROC);

    rt_pid_t n = agent();
    rt_ref_t rn = rt_monitor(n);
    cr_assert_eq((int64_t)cmd_call(n, C_LINK, (cmd_t){.pid = dead}), RT_ENOPROC);
    cr_assert_eq(rt_test_wait_down(rn, 5000), RT_R_NOPROC);

    /* a thread (always trapping) gets the EXIT message */
    cr_assert_eq(rt_link(dead), RT_ENOPROC);
    rt_msg_t *m = rt_test_recv_type(RT_MSG_EXIT, 5000);
    cr_assert_not_null(m);
    cr_assert(rt_pid_eq(((rt_exit_msg_t *)(void *)m->data)->from, dead));
    cr_assert_eq(((rt_exit_msg_t *)(void *)m->data)->reason, RT_R_NOPROC);
    rt_msg_free(m);
}

Test(rt_links, unlink_then_peer_dies_no_signal)
{
    /* both sides forget the link */
    rt_pid_t a = trapping_agent(), b = trapping_agent(), c = agent();
    link_pair(a, b);
    link_pair(a, c);
    cmd_call(a, C_UNLINK, (cmd_t){.pid = b});
    cmd_call(a, C_UNLINK, (cmd_t){.pid = c});
    rt_ref_t rb = rt_monitor(b), rc = rt_monitor(c);
    cmd_send(b, C_CRASH, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(rb, 5000), RT_R_CRASH);
    cr_assert(alive_and_answers(a));
    rt_ref_t ra = rt_monitor(a);
    cmd_send(a, C_EXIT, (cmd_t){.reason = RT_REASON_USER + 4});
    cr_assert_eq(rt_test_wait_down(ra, 5000), RT_REASON_USER + 4);
    cr_assert(alive_and_answers(c), "the unlinked side still got the exit");
    cr_assert_eq(rt_test_wait_down(rc, 100), -1);
    rt_test_expect_silence(200); /* no EXIT reports from a or c */

    /* the peer's exit signal is already in flight when we unlink: it has no effect */
    rt_pid_t x = agent(), y = agent();
    link_pair(x, y);
    rt_ref_t rx = rt_monitor(x);
    cmd_send(x, C_UNLINK_AFTER_DEATH, (cmd_t){.pid = y});
    rt_exit_signal(y, RT_REASON_USER + 5);
    cr_assert(alive_and_answers(x), "an in-flight exit signal acted after unlink");
    cr_assert_eq(rt_test_wait_down(rx, 100), -1);
}

Test(rt_links, exit_signal_reasons)
{
    rt_pid_t a = agent();
    rt_ref_t ra = rt_monitor(a);
    cr_assert_eq(rt_exit_signal(a, RT_R_NORMAL), 0); /* ignored by a non-trapping process */
    cr_assert(alive_and_answers(a));
    cr_assert_eq(rt_exit_signal(a, RT_REASON_USER + 9), 0);
    cr_assert_eq(rt_test_wait_down(ra, 5000), RT_REASON_USER + 9);
    cr_assert_eq(rt_exit_signal(a, RT_REASON_USER + 9), RT_ENOPROC);

    /* exit(self(), normal) does end the process */
    rt_pid_t b = agent();
    rt_ref_t rb = rt_monitor(b);
    cmd_send(b, C_EXIT_SELF, (cmd_t){.reason = RT_R_NORMAL});
    cr_assert_eq(rt_test_wait_down(rb, 5000), RT_R_NORMAL);

    /* kill through exit/2 on a trapping process */
    rt_pid_t t = trapping_agent();
    rt_ref_t rt = rt_monitor(t);
    cr_assert_eq(rt_exit_signal(t, RT_R_NORMAL), 0);
    cr_assert_eq(expect_exit_report(t).reason, RT_R_NORMAL);
    cr_assert_eq(rt_exit_signal(t, RT_R_KILL), 0);
    cr_assert_eq(rt_test_wait_down(rt, 5000), RT_R_KILLED);
}

/* ------------------------------------------------------------------ monitors */

Test(rt_links, down_carries_the_exit_reason)
{
    struct { uint32_t cmd; int32_t arg; int want; } cases[] = {
        {C_STOP, 0, RT_R_NORMAL},
        {C_CRASH, 0, RT_R_CRASH},
        {C_ASSERT, 0, RT_R_ASSERT},
        {C_EXIT, RT_REASON_USER + 11, RT_REASON_USER + 11},
        {C_EXIT, RT_R_SHUTDOWN, RT_R_SHUTDOWN},
    };
    rt_pid_t w = agent();
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rt_pid_t t = agent();
        rt_ref_t r1 = rt_monitor(t), r2 = rt_monitor(t);
        cr_assert_neq(r1, r2);
        rt_ref_t rw = cmd_call(w, C_MONITOR, (cmd_t){.pid = t});
        cmd_send(t, cases[i].cmd, (cmd_t){.reason = cases[i].arg});
        cr_assert_eq(rt_test_wait_down(r1, 5000), cases[i].want, "case %u", i);
        cr_assert_eq(rt_test_wait_down(r2, 5000), cases[i].want, "case %u (second monitor)", i);
        rt_down_msg_t d = expect_down_report(w);
        cr_assert_eq(d.ref, rw);
        cr_assert(rt_pid_eq(d.pid, t));
        cr_assert_eq(d.reason, cases[i].want);
    }
    rt_pid_t k = agent();
    rt_ref_t rk = rt_monitor(k);
    rt_exit_signal(k, RT_R_KILL);
    cr_assert_eq(rt_test_wait_down(rk, 5000), RT_R_KILLED);
}

Test(rt_links, monitor_of_dead_pid_is_noproc)
{
    rt_pid_t t = agent();
    rt_ref_t r = rt_monitor(t);
    cmd_send(t, C_STOP, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(r, 5000), RT_R_NORMAL);
    rt_pid_t w = agent();
    rt_ref_t rw = cmd_call(w, C_MONITOR, (cmd_t){.pid = t});
    rt_down_msg_t d = expect_down_report(w);
    cr_assert_eq(d.ref, rw);
    cr_assert(rt_pid_eq(d.pid, t));
    cr_assert_eq(d.reason, RT_R_NOPROC);
    /* a pid that never existed */
    rt_pid_t never = {0, 1000000, 77};
    cr_assert_eq(rt_test_wait_down(rt_monitor(never), 5000), RT_R_NOPROC);
    cr_assert_eq(rt_test_wait_down(rt_monitor(RT_NOPID), 5000), RT_R_NOPROC);
}

Test(rt_links, demonitor_prevents_down)
{
    rt_pid_t t = agent();
    rt_ref_t r = rt_monitor(t);
    cr_assert(rt_demonitor(r, 0));
    cr_assert(!rt_demonitor(r, 0), "a second demonitor found the monitor active");
    rt_pid_t w = agent();
    rt_ref_t rw = cmd_call(w, C_MONITOR, (cmd_t){.pid = t});
    cr_assert_eq(cmd_call(w, C_DEMONITOR, (cmd_t){.ref = rw}), 1);
    rt_ref_t keep = rt_monitor(t);
    cmd_send(t, C_CRASH, (cmd_t){0});
    cr_assert_eq(rt_test_wait_down(keep, 5000), RT_R_CRASH);
    rt_test_expect_silence(200); /* neither our DOWN for r nor a report from w */
}

/* The target dies while the watcher demonitors: the DOWN may already be on its way, but it
 * must never reach a handler (nor a thread's receive) once demonitor(FLUSH) returned. */
Test(rt_links, demonitor_racing_with_death_never_delivers_down)
{
    rt_pid_t w = agent();
    for (int i = 0; i < 300; i++) {
        rt_pid_t t = agent();
        rt_ref_t rt = rt_monitor(t);
        rt_ref_t rw = cmd_call(w, C_MON_KILL_DEMON, (cmd_t){.pid = t, .reason = (i * 37) % 2000});
        cr_assert_neq(rw, 0);
        cr_assert_eq(rt_test_wait_down(rt, 5000), RT_R_KILLED);
        /* the same race on this thread */
        rt_pid_t u = agent();
        rt_ref_t ru = rt_monitor(u);
        rt_exit_signal(u, RT_R_KILL);
        for (volatile int k = 0; k < (i * 53) % 3000; k++)
            ;
        rt_demonitor(ru, RT_DEMONITOR_FLUSH);
    }
    rt_test_expect_silence(300);
}

/* ------------------------------------------------------------------ crash isolation */

static atomic_int g_log[64];
static atomic_int g_nlog;
static void log_ev(int v)
{
    int i = atomic_fetch_add(&g_nlog, 1);
    if (i < 64)
        atomic_store(&g_log[i], v);
}
static void release_res(void *obj) { log_ev((int)(intptr_t)obj); }

enum { EV_TERMINATE = 1000 };

static int res_init(void *st, void *arg)
{
    (void)st;
    rt_own(release_res, (void *)(intptr_t)1);
    int mode = arg ? *(int *)arg : 0;
    if (mode == 1)
        return RT_REASON_USER + 20;
    if (mode == 2)
        rt_exit(RT_REASON_USER + 21);
    return 0;
}
static int res_handle(void *st, rt_msg_t *m)
{
    if (m->type == C_OWN) {
        rt_own(release_res, (void *)(intptr_t)2);
        rt_res_t h = rt_own(release_res, (void *)(intptr_t)99);
        rt_own(release_res, (void *)(intptr_t)3);
        rt_disown(h); /* disowned: never released by the runtime */
        rt_reply(rt_call_from(m), rt_test_u64_msg(C_OWN, 0));
        return RT_CONTINUE;
    }
    return agent_handle(st, m);
}
static void res_terminate(void *st, int reason) { log_ev(EV_TERMINATE + reason); }

static int res_init_mode(void *st, void *arg)
{
    rt_pid_t self = rt_self(); /* the owner field is not used by these */
    agent_init(st, &self);
    return res_init(st, arg);
}
static const rt_behaviour_t res_init_beh = {.name = "res-init", .state_size = sizeof(agent_t),
                                            .init = res_init_mode, .handle = res_handle,
                                            .terminate = res_terminate};

Test(rt_links, crash_runs_terminate_and_releases_resources_once_in_reverse)
{
    struct { uint32_t cmd; int32_t arg; int want; } cases[] = {
        {C_CRASH, 0, RT_R_CRASH},
        {C_ASSERT, 0, RT_R_ASSERT},
        {C_EXIT, RT_REASON_USER + 30, RT_REASON_USER + 30},
        {C_STOP, 0, RT_R_NORMAL},
        {0, RT_R_KILL, RT_R_KILLED},          /* exit/2 kill */
        {0, RT_REASON_USER + 31, RT_REASON_USER + 31}, /* exit/2 custom */
    };
    rt_pid_t sibling = agent();
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        atomic_store(&g_nlog, 0);
        rt_pid_t p;
        cr_assert_eq(rt_spawn(&res_init_beh, NULL, &p), 0); /* init owns resource 1 */
        cr_assert_eq(cmd_call(p, C_OWN, (cmd_t){0}), 0);
        rt_ref_t r = rt_monitor(p);
        if (cases[i].cmd)
            cmd_send(p, cases[i].cmd, (cmd_t){.reason = cases[i].arg});
        else
            rt_exit_signal(p, cases[i].arg);
        cr_assert_eq(rt_test_wait_down(r, 5000), cases[i].want, "case %u", i);
        usleep(50000); /* anything released twice would show up now */
        cr_assert_eq(atomic_load(&g_nlog), 4, "case %u: %d events", i, atomic_load(&g_nlog));
        cr_assert_eq(atomic_load(&g_log[0]), EV_TERMINATE + cases[i].want, "case %u: terminate first", i);
        cr_assert_eq(atomic_load(&g_log[1]), 3, "case %u: newest resource first", i);
        cr_assert_eq(atomic_load(&g_log[2]), 2);
        cr_assert_eq(atomic_load(&g_log[3]), 1);
        cr_assert(alive_and_answers(sibling), "case %u: a sibling stopped answering", i);
    }
}

Test(rt_links, failed_init_releases_resources_without_terminate)
{
    for (int mode = 1; mode <= 2; mode++) {
        atomic_store(&g_nlog, 0);
        rt_pid_t p = RT_NOPID;
        uint32_t before = rt_process_count();
        cr_assert_eq(rt_spawn(&res_init_beh, &mode, &p), RT_EINITFAIL);
        cr_assert(rt_pid_is_nil(p));
        cr_assert_eq(atomic_load(&g_nlog), 1, "mode %d", mode);
        cr_assert_eq(atomic_load(&g_log[0]), 1);
        cr_assert_eq(rt_process_count(), before);
    }
}
