/*
 * test_rt_core.c — processes, messages, FIFO order, call, monitors, links, exits, crash
 * isolation, timers and the registry: the actor runtime's core semantics.
 */
#include "runtime/rt.h"

#include <criterion/criterion.h>

#include "tests/unit/rt_test.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

enum { T_PING = RT_MSG_USER + 1, T_PONG, T_SEQ, T_CRASH, T_ASSERT, T_EXIT, T_FWD, T_STOP };

static void start(void) { rt_test_start_n(2); }

TestSuite(rt_core, .init = start, .fini = rt_test_stop, .timeout = 60);

/* An echo server: replies PONG to calls, forwards T_FWD payload pid-targets, crashes on request. */
typedef struct { unsigned n; } echo_t;
static int echo_handle(void *st, rt_msg_t *m)
{
    echo_t *e = st;
    e->n++;
    switch (m->type) {
    case T_PING:
        if (rt_is_call(m))
            rt_reply(rt_call_from(m), rt_msg_new(T_PONG, 0));
        else
            rt_send(m->from, rt_msg_new(T_PONG, 0));
        return RT_CONTINUE;
    case T_CRASH:
        return -1;
    case T_ASSERT:
        RT_ASSERT(e->n == 0);
        return RT_CONTINUE;
    case T_EXIT:
        rt_exit(RT_REASON_USER + 7);
    case T_STOP:
        return RT_STOP;
    default:
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t echo = {.name = "echo", .state_size = sizeof(echo_t), .handle = echo_handle};

#define recv_type rt_test_recv_type

Test(rt_core, send_and_receive)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    cr_assert(rt_is_alive(p));
    rt_send(p, rt_msg_new(T_PING, 0));
    rt_msg_t *m = recv_type(T_PONG, 2000);
    cr_assert_not_null(m);
    cr_assert(rt_pid_eq(m->from, p));
    rt_msg_free(m);
}

Test(rt_core, call_sync_replies)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    for (int i = 0; i < 1000; i++) {
        rt_msg_t *r = NULL;
        cr_assert_eq(rt_call_sync(p, rt_msg_new(T_PING, 0), 2000, &r, NULL), 0);
        cr_assert_eq(r->type, T_PONG);
        rt_msg_free(r);
    }
}

Test(rt_core, monitor_dead_pid_gives_noproc)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    rt_ref_t r1 = rt_monitor(p);
    rt_send(p, rt_msg_new(T_STOP, 0));
    rt_msg_t *m = recv_type(RT_MSG_DOWN, 2000);
    cr_assert_not_null(m);
    rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
    cr_assert_eq(d->ref, r1);
    cr_assert_eq(d->reason, RT_R_NORMAL);
    rt_msg_free(m);
    cr_assert(!rt_is_alive(p));
    rt_ref_t r2 = rt_monitor(p);
    m = recv_type(RT_MSG_DOWN, 2000);
    cr_assert_not_null(m);
    d = (rt_down_msg_t *)(void *)m->data;
    cr_assert_eq(d->ref, r2);
    cr_assert_eq(d->reason, RT_R_NOPROC);
    rt_msg_free(m);
}

Test(rt_core, crash_and_assert_and_exit_end_only_that_process)
{
    rt_pid_t a, b, c, bystander;
    cr_assert_eq(rt_spawn(&echo, NULL, &a), 0);
    cr_assert_eq(rt_spawn(&echo, NULL, &b), 0);
    cr_assert_eq(rt_spawn(&echo, NULL, &c), 0);
    cr_assert_eq(rt_spawn(&echo, NULL, &bystander), 0);
    rt_ref_t ra = rt_monitor(a), rb = rt_monitor(b), rc = rt_monitor(c);
    rt_send(a, rt_msg_new(T_CRASH, 0));
    rt_send(b, rt_msg_new(T_ASSERT, 0));
    rt_send(c, rt_msg_new(T_EXIT, 0));
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        rt_msg_t *m = recv_type(RT_MSG_DOWN, 2000);
        cr_assert_not_null(m);
        rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
        if (d->ref == ra) { cr_assert_eq(d->reason, RT_R_CRASH); seen |= 1; }
        if (d->ref == rb) { cr_assert_eq(d->reason, RT_R_ASSERT); seen |= 2; }
        if (d->ref == rc) { cr_assert_eq(d->reason, RT_REASON_USER + 7); seen |= 4; }
        rt_msg_free(m);
    }
    cr_assert_eq(seen, 7);
    rt_msg_t *r = NULL;
    cr_assert_eq(rt_call_sync(bystander, rt_msg_new(T_PING, 0), 2000, &r, NULL), 0);
    rt_msg_free(r);
}

Test(rt_core, call_to_process_that_dies_returns_down)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    rt_msg_t *r = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_CRASH, 0), 5000, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_CRASH);
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_PING, 0), 5000, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_NOPROC);
}

Test(rt_core, call_times_out_and_late_reply_is_dropped)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    rt_msg_t *r = NULL;
    /* a message type the echo ignores: never replied */
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_SEQ, 0), 100, &r, NULL), RT_ETIMEDOUT);
    cr_assert(rt_is_alive(p));
}

Test(rt_core, timers_fire_and_cancelled_never_fire)
{
    rt_pid_t self = rt_self();
    rt_timer_t keep = rt_send_after(50, self, rt_msg_new(T_PING, 0));
    rt_timer_t cancel[100];
    for (int i = 0; i < 100; i++)
        cancel[i] = rt_send_after(20 + (uint32_t)i, self, rt_msg_new(T_PONG, 0));
    for (int i = 0; i < 100; i++)
        cr_assert(rt_cancel_timer(cancel[i]));
    cr_assert(keep != 0);
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive(2000, &m), 0);
    cr_assert_eq(m->type, T_PING);
    rt_msg_free(m);
    cr_assert_eq(rt_receive(300, &m), RT_ETIMEDOUT);
    cr_assert(!rt_cancel_timer(keep));
}

Test(rt_core, registry_name_dies_with_process)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&echo, NULL, &p), 0);
    cr_assert_eq(rt_register("echo", p), 0);
    cr_assert_eq(rt_register("echo", p), RT_EEXIST);
    cr_assert(rt_pid_eq(rt_whereis("echo"), p));
    cr_assert_eq(rt_send_name(NULL, "echo", rt_msg_new(T_PING, 0)), 0);
    rt_msg_t *m = recv_type(T_PONG, 2000);
    cr_assert_not_null(m);
    rt_msg_free(m);
    rt_ref_t r = rt_monitor(p);
    rt_send(p, rt_msg_new(T_STOP, 0));
    m = recv_type(RT_MSG_DOWN, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(((rt_down_msg_t *)(void *)m->data)->ref, r);
    rt_msg_free(m);
    cr_assert(rt_pid_is_nil(rt_whereis("echo")));
    cr_assert_eq(rt_unregister("echo"), RT_ENOTFOUND);
}
