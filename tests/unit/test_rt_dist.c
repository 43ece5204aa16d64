/*
 * test_rt_dist.c — distribution between two real OS processes over loopback TCP: remote
 * sends and calls, registered names, remote links and monitors, the cookie handshake, and
 * noconnection within the heartbeat bound when the peer is killed or stops answering.
 */
#include "runtime/dist.h"
#include "runtime/rt.h"

#include <criterion/criterion.h>

#include "tests/unit/rt_test.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_ECHO = RT_MSG_USER + 50, T_CRASH, T_SPAWN_WORKER, T_WORKER };

static char name_a[64], name_b[64];
static pid_t child;

static int echo_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == T_CRASH)
        return -1;
    if (m->type == T_SPAWN_WORKER) { /* replies from a fresh process, so tests get extra pids */
        extern const rt_behaviour_t echo_behaviour;
        rt_pid_t w;
        rt_spawn(&echo_behaviour, NULL, &w);
        rt_msg_t *r = rt_msg_new(T_WORKER, 0);
        r->from = w;
        rt_send(m->from, r);
        return RT_CONTINUE;
    }
    if (m->type == T_ECHO) {
        rt_msg_t *r = rt_msg_copy(T_ECHO, m->data, m->size);
        if (rt_is_call(m))
            rt_reply(rt_call_from(m), r);
        else
            rt_send(m->from, r);
    }
    return RT_CONTINUE;
}
const rt_behaviour_t echo_behaviour = {.name = "echo", .handle = echo_handle};

/* Runs node b in a child OS process with `cookie`, until killed or orphaned. */
static void start_peer(const char *cookie, unsigned net_timeout_ms)
{
    /* Port 0: each node listens where the kernel says, and its name carries the bound port
     * (a port derived from the pid could be taken, e.g. by another program's client). */
    snprintf(name_a, sizeof name_a, "a@127.0.0.1:0");
    snprintf(name_b, sizeof name_b, "b@127.0.0.1:0");
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        rt_config_t c;
        rt_config_default(&c);
        c.schedulers = 1;
        c.node_name = name_b;
        c.cookie = cookie;
        c.heartbeat_ms = 200;
        c.net_timeout_ms = net_timeout_ms;
        if (rt_start(&c) != 0)
            _exit(3);
        rt_pid_t e;
        rt_spawn_opt(&echo_behaviour, NULL, &(rt_spawn_opts_t){.name = "echo"}, &e);
        snprintf(name_b, sizeof name_b, "%s", rt_node_self());
        if (write(ready[1], name_b, sizeof name_b) != (ssize_t)sizeof name_b)
            _exit(4);
        for (;;)
            pause();
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], name_b, sizeof name_b), (ssize_t)sizeof name_b,
                 "peer node did not start");
    close(ready[0]);
}

static void start_self(const char *cookie, unsigned net_timeout_ms)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    c.node_name = name_a;
    c.cookie = cookie;
    c.heartbeat_ms = 200;
    c.net_timeout_ms = net_timeout_ms;
    cr_assert_eq(rt_start(&c), 0);
}

static void teardown(void)
{
    rt_test_stop();
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
}

static void setup(void)
{
    start_peer("secret", 1000);
    start_self("secret", 1000);
}

TestSuite(rt_dist, .init = setup, .fini = teardown, .timeout = 60);

#define recv_type rt_test_recv_type

/* A pid of the peer's echo process, learned from its reply. */
static rt_pid_t remote_echo(void)
{
    cr_assert_eq(rt_send_name(name_b, "echo", rt_msg_copy(T_ECHO, "hi", 2)), 0);
    rt_msg_t *m = recv_type(T_ECHO, 5000);
    cr_assert_not_null(m, "no echo from the peer node");
    cr_assert_eq(m->size, 2);
    cr_assert_eq(memcmp(m->data, "hi", 2), 0);
    rt_pid_t p = m->from;
    rt_msg_free(m);
    cr_assert_neq(p.node, 0);
    return p;
}

static rt_pid_t remote_worker(rt_pid_t echo)
{
    rt_send(echo, rt_msg_new(T_SPAWN_WORKER, 0));
    rt_msg_t *m = recv_type(T_WORKER, 5000);
    cr_assert_not_null(m);
    rt_pid_t w = m->from;
    rt_msg_free(m);
    return w;
}

Test(rt_dist, send_to_name_and_pid_in_order)
{
    rt_pid_t echo = remote_echo();
    cr_assert(rt_node_is_up(name_b));
    cr_assert_str_eq(rt_node_of(echo), name_b);
    for (uint32_t i = 0; i < 2000; i++)
        rt_send(echo, rt_msg_copy(T_ECHO, &i, sizeof i));
    for (uint32_t i = 0; i < 2000; i++) {
        rt_msg_t *m = recv_type(T_ECHO, 5000);
        cr_assert_not_null(m);
        uint32_t got;
        memcpy(&got, m->data, sizeof got);
        cr_assert_eq(got, i, "out of order: got %u expected %u", got, i);
        rt_msg_free(m);
    }
}

Test(rt_dist, remote_call_and_call_to_dead_remote)
{
    rt_pid_t echo = remote_echo();
    for (int i = 0; i < 500; i++) {
        rt_msg_t *r = NULL;
        cr_assert_eq(rt_call_sync(echo, rt_msg_copy(T_ECHO, "x", 1), 5000, &r, NULL), 0);
        cr_assert_eq(r->type, T_ECHO);
        rt_msg_free(r);
    }
    rt_pid_t w = remote_worker(echo);
    rt_msg_t *r = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_sync(w, rt_msg_new(T_CRASH, 0), 5000, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_CRASH);
    cr_assert_eq(rt_call_sync(w, rt_msg_new(T_ECHO, 0), 5000, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_NOPROC);
}

Test(rt_dist, remote_monitor_and_link)
{
    rt_pid_t echo = remote_echo();
    rt_pid_t w1 = remote_worker(echo), w2 = remote_worker(echo);
    rt_ref_t ref = rt_monitor(w1);
    cr_assert_eq(rt_link(w2), 0);
    rt_send(w1, rt_msg_new(T_CRASH, 0));
    rt_msg_t *m = recv_type(RT_MSG_DOWN, 5000);
    cr_assert_not_null(m);
    rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
    cr_assert_eq(d->ref, ref);
    cr_assert_eq(d->reason, RT_R_CRASH);
    cr_assert(rt_pid_eq(d->pid, w1));
    rt_msg_free(m);
    rt_exit_signal(w2, RT_REASON_USER + 3); /* kills w2 (not trapping); the link reports back */
    m = recv_type(RT_MSG_EXIT, 5000);
    cr_assert_not_null(m);
    rt_exit_msg_t *e = (rt_exit_msg_t *)(void *)m->data;
    cr_assert(rt_pid_eq(e->from, w2));
    cr_assert_eq(e->reason, RT_REASON_USER + 3);
    rt_msg_free(m);
}

Test(rt_dist, killing_the_peer_gives_noconnection_to_every_monitor)
{
    rt_pid_t echo = remote_echo();
    rt_pid_t pids[5] = {echo};
    for (int i = 1; i < 5; i++)
        pids[i] = remote_worker(echo);
    rt_ref_t refs[5];
    for (int i = 0; i < 5; i++)
        refs[i] = rt_monitor(pids[i]);
    cr_assert_eq(rt_link(pids[1]), 0);
    rt_node_monitor(true);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = 0;
    int downs = 0, exits = 0, nodedowns = 0;
    rt_msg_t *m;
    while ((downs < 5 || exits < 1 || nodedowns < 1) && rt_receive(3000, &m) == 0) {
        if (m->type == RT_MSG_DOWN) {
            rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
            cr_assert_eq(d->reason, RT_R_NOCONNECTION);
            bool known = false;
            for (int i = 0; i < 5; i++)
                known |= d->ref == refs[i];
            cr_assert(known);
            downs++;
        } else if (m->type == RT_MSG_EXIT) {
            cr_assert_eq(((rt_exit_msg_t *)(void *)m->data)->reason, RT_R_NOCONNECTION);
            exits++;
        } else if (m->type == RT_MSG_NODEDOWN) {
            cr_assert_str_eq(((rt_node_msg_t *)(void *)m->data)->node, name_b);
            nodedowns++;
        }
        rt_msg_free(m);
    }
    cr_assert_eq(downs, 5);
    cr_assert_eq(exits, 1);
    cr_assert_eq(nodedowns, 1);
    cr_assert(!rt_node_is_up(name_b));
}

Test(rt_dist, silent_peer_is_declared_down_by_heartbeat)
{
    rt_pid_t echo = remote_echo();
    rt_ref_t ref = rt_monitor(echo);
    kill(child, SIGSTOP); /* the socket stays open; only heartbeats stop */
    uint64_t t0 = rt_now_ns();
    rt_msg_t *m = recv_type(RT_MSG_DOWN, 10000);
    uint64_t ms = (rt_now_ns() - t0) / 1000000;
    kill(child, SIGCONT);
    cr_assert_not_null(m, "no DOWN within 10 s of the peer going silent");
    cr_assert_eq(((rt_down_msg_t *)(void *)m->data)->ref, ref);
    cr_assert_eq(((rt_down_msg_t *)(void *)m->data)->reason, RT_R_NOCONNECTION);
    rt_msg_free(m);
    cr_log_info("silent peer declared down after %llu ms (net_timeout 1000 ms)", (unsigned long long)ms);
}

static void wrong_cookie_setup(void)
{
    start_peer("right-cookie", 1000);
    start_self("wrong-cookie", 1000);
}

Test(rt_dist_cookie, wrong_cookie_is_refused, .init = wrong_cookie_setup, .fini = teardown, .timeout = 60)
{
    cr_assert_eq(rt_node_connect(name_b, 5000), RT_EAUTH);
    cr_assert(!rt_node_is_up(name_b));
    /* a send to the refusing node is dropped, not delivered */
    rt_send_name(name_b, "echo", rt_msg_copy(T_ECHO, "x", 1));
    rt_msg_t *m = NULL;
    cr_assert_eq(rt_receive(500, &m), RT_ETIMEDOUT);
}

Test(rt_dist, bad_node_names_are_rejected)
{
    cr_assert_eq(rt_node_connect("nohost", 100), RT_EINVAL);
    cr_assert_eq(rt_node_connect("x@127.0.0.1", 100), RT_EINVAL);
    cr_assert_eq(rt_node_connect("x@127.0.0.1:99999", 100), RT_EINVAL);
    cr_assert_eq(rt_send_name("bad", "echo", rt_msg_new(T_ECHO, 0)), RT_EINVAL);
}
