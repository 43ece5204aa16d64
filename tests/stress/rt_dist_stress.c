/*
 * rt_dist_stress.c — distribution under ThreadSanitizer: two runtimes in two OS processes.
 * Eight sender processes on node a (two schedulers) stream numbered messages to an echo on
 * node b while four callers make calls; every echoed message must come back exactly once
 * and in order per sender. Then node b is killed mid-traffic and every remote monitor must
 * report noconnection. Exits 0 when all checks hold.
 */
#include "runtime/dist.h"
#include "runtime/rt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_DATA = RT_MSG_USER + 1, T_GO, T_DONE, T_HELLO };
enum { SENDERS = 8, PER_SENDER = 5000, CALLERS = 4, CALLS = 500 };

typedef struct data { uint32_t sender, seq; } data_t;

static char name_a[64], name_b[64];
static rt_pid_t main_pid;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "rt_dist_stress: check failed: %s: ", #cond);        \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* node b */
static int echo_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == T_DATA || m->type == T_HELLO) {
        rt_msg_t *r = rt_msg_copy(m->type, m->data, m->size);
        if (rt_is_call(m))
            rt_reply(rt_call_from(m), r);
        else
            rt_send(m->from, r);
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t echo = {.name = "echo", .handle = echo_handle};

/* node a: a sender streams PER_SENDER messages and checks they come back in order */
typedef struct sender { uint32_t id, next_expected, sent; rt_pid_t echo; } sender_t;
static int sender_init(void *st, void *arg)
{
    sender_t *s = st;
    s->id = (uint32_t)(uintptr_t)arg;
    return 0;
}
static int sender_handle(void *st, rt_msg_t *m)
{
    sender_t *s = st;
    if (m->type == T_GO) {
        memcpy(&s->echo, m->data, sizeof s->echo);
        for (uint32_t i = 0; i < PER_SENDER; i++) {
            data_t d = {s->id, i};
            rt_send(s->echo, rt_msg_copy(T_DATA, &d, sizeof d));
        }
    } else if (m->type == T_DATA) {
        data_t d;
        memcpy(&d, m->data, sizeof d);
        CHECK(d.sender == s->id && d.seq == s->next_expected, "sender %u got %u/%u, expected %u",
              s->id, d.sender, d.seq, s->next_expected);
        if (++s->next_expected == PER_SENDER)
            rt_send(main_pid, rt_msg_new(T_DONE, 0));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t sender = {.name = "sender", .state_size = sizeof(sender_t),
                                      .init = sender_init, .handle = sender_handle};

typedef struct caller { uint32_t done; rt_pid_t echo; rt_ref_t ref; } caller_t;
static int caller_handle(void *st, rt_msg_t *m)
{
    caller_t *c = st;
    if (m->type == T_GO)
        memcpy(&c->echo, m->data, sizeof c->echo);
    else if (m->flags & RT_MSGF_REPLY) {
        CHECK(m->ref == c->ref, "reply for an unknown call");
        if (++c->done == CALLS) {
            rt_send(main_pid, rt_msg_new(T_DONE, 0));
            return RT_CONTINUE;
        }
    } else if (m->type == RT_MSG_CALL_FAILED) {
        CHECK(0, "call failed: %s", rt_reason_str(((rt_call_failed_t *)(void *)m->data)->reason));
    } else
        return RT_CONTINUE;
    data_t d = {99, c->done};
    c->ref = rt_call(c->echo, rt_msg_copy(T_DATA, &d, sizeof d), 10000);
    return RT_CONTINUE;
}
static const rt_behaviour_t caller = {.name = "caller", .state_size = sizeof(caller_t), .handle = caller_handle};

static rt_config_t config(const char *name, unsigned schedulers)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = schedulers;
    c.node_name = name;
    c.cookie = "stress";
    c.heartbeat_ms = 200;
    c.net_timeout_ms = 2000;
    return c;
}

int main(void)
{
    /* Port 0: each node listens where the kernel says, and its name carries the bound port
     * (a port derived from the pid could be taken, e.g. by another program's client). */
    snprintf(name_a, sizeof name_a, "a@127.0.0.1:0");
    snprintf(name_b, sizeof name_b, "b@127.0.0.1:0");
    rt_log_set_level(getenv("STRESS_DEBUG") ? RT_LOG_DEBUG : RT_LOG_ERROR);
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        rt_config_t c = config(name_b, 2);
        if (rt_start(&c) != 0)
            _exit(3);
        rt_spawn_opt(&echo, NULL, &(rt_spawn_opts_t){.name = "echo"}, NULL);
        snprintf(name_b, sizeof name_b, "%s", rt_node_self());
        if (write(ready[1], name_b, sizeof name_b) != (ssize_t)sizeof name_b)
            _exit(4);
        for (;;)
            pause();
    }
    CHECK(read(ready[0], name_b, sizeof name_b) == (ssize_t)sizeof name_b, "peer did not start");
    rt_config_t c = config(name_a, 2);
    CHECK(rt_start(&c) == 0, "start");
    main_pid = rt_self();

    rt_send_name(name_b, "echo", rt_msg_copy(T_HELLO, "", 0));
    rt_msg_t *m = NULL;
    CHECK(rt_receive(10000, &m) == 0 && m->type == T_HELLO, "no hello back");
    rt_pid_t echo_pid = m->from;
    rt_msg_free(m);

    rt_pid_t pids[SENDERS + CALLERS];
    for (uint32_t i = 0; i < SENDERS; i++)
        CHECK(rt_spawn(&sender, (void *)(uintptr_t)i, &pids[i]) == 0, "spawn");
    for (uint32_t i = 0; i < CALLERS; i++)
        CHECK(rt_spawn(&caller, NULL, &pids[SENDERS + i]) == 0, "spawn");
    for (uint32_t i = 0; i < SENDERS + CALLERS; i++) /* a caller makes its first call on GO */
        rt_send(pids[i], rt_msg_copy(T_GO, &echo_pid, sizeof echo_pid));
    int done = 0;
    while (done < SENDERS + CALLERS) {
        CHECK(rt_receive(30000, &m) == 0, "timed out with %d of %d done", done, SENDERS + CALLERS);
        if (m->type == T_DONE)
            done++;
        rt_msg_free(m);
    }

    /* kill node b while calls are in flight: every monitor must get noconnection */
    rt_ref_t ref = rt_monitor(echo_pid);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    bool down = false;
    while (!down && rt_receive(10000, &m) == 0) {
        if (m->type == RT_MSG_DOWN) {
            rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
            CHECK(d->ref == ref && d->reason == RT_R_NOCONNECTION, "bad DOWN (%s)", rt_reason_str(d->reason));
            down = true;
        }
        rt_msg_free(m);
    }
    CHECK(down, "no DOWN after the peer was killed");
    rt_stop(2000);
    printf("rt_dist_stress: %d senders x %d messages and %d callers x %d calls across nodes: ok\n",
           SENDERS, PER_SENDER, CALLERS, CALLS);
    return 0;
}
