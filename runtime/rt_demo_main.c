/*
 * rt_demo_main.c — `make run` until cairnd exists: a two-node demo of the actor runtime.
 *
 * Node a (this process) and node b (a child OS process) connect over loopback TCP with a
 * shared cookie. Each runs a supervision tree. On node a a pinger calls the echo server
 * registered on node b twice a second and prints the round trip; a chaos process crashes a
 * random worker of node a's supervisor every 2 s and the supervisor restarts it. Ctrl-C (or
 * --seconds N) stops both nodes cleanly.
 */
#include "runtime/dist.h"
#include "runtime/rt.h"
#include "runtime/sup.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_PING = RT_MSG_USER + 900, T_PONG, T_TICK, T_CRASH };

static char node_a[64], node_b[64];
static const char *cookie = "cairn-demo";
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

/* ---------------------------------------------------------------- node b: the echo server */

static int echo_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == T_PING && rt_is_call(m))
        rt_reply(rt_call_from(m), rt_msg_copy(T_PONG, m->data, m->size));
    else if (m->type == T_PONG) /* a hello by name: answer from our pid */
        rt_send(m->from, rt_msg_new(T_PONG, 0));
    return RT_CONTINUE;
}
static int echo_init(void *st, void *arg)
{
    (void)st;
    (void)arg;
    return rt_register("echo", rt_self()) == 0 ? 0 : RT_R_INIT_FAILED;
}
static const rt_behaviour_t echo = {.name = "echo", .init = echo_init, .handle = echo_handle};

/* ---------------------------------------------------------------- node a: workers */

typedef struct worker { int index; } worker_t;

static int worker_init(void *st, void *arg)
{
    worker_t *w = st;
    w->index = (int)(intptr_t)arg;
    printf("  [a] worker %d started as <%u.%u.%u>\n", w->index, rt_self().node, rt_self().id, rt_self().serial);
    return 0;
}
static int worker_handle(void *st, rt_msg_t *m)
{
    (void)st;
    return m->type == T_CRASH ? -1 : RT_CONTINUE; /* a crash: the supervisor restarts us */
}

typedef struct pinger { uint32_t seq; uint64_t sent_ns; rt_pid_t echo; } pinger_t;

static int pinger_init(void *st, void *arg)
{
    (void)st;
    (void)arg;
    rt_send_after(200, rt_self(), rt_msg_new(T_TICK, 0));
    return 0;
}
static int pinger_handle(void *st, rt_msg_t *m)
{
    pinger_t *p = st;
    if (m->type == T_TICK) {
        rt_send_after(500, rt_self(), rt_msg_new(T_TICK, 0));
        if (rt_pid_is_nil(p->echo)) /* first contact by name; the answer carries its pid */
            rt_send_name(node_b, "echo", rt_msg_new(T_PONG, 0));
        p->seq++;
        p->sent_ns = rt_now_ns();
        if (!rt_pid_is_nil(p->echo))
            rt_call(p->echo, rt_msg_copy(T_PING, &p->seq, sizeof p->seq), 1000);
        return RT_CONTINUE;
    }
    if (m->type == T_PONG && !(m->flags & RT_MSGF_REPLY)) {
        p->echo = m->from;
        printf("  [a] found echo on %s at <%u.%u.%u>\n", node_b, p->echo.node, p->echo.id, p->echo.serial);
        return RT_CONTINUE;
    }
    if (m->flags & RT_MSGF_REPLY) {
        printf("  [a] call to echo on %s: reply in %.0f us\n", node_b, (double)(rt_now_ns() - p->sent_ns) / 1000.0);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_CALL_FAILED) {
        printf("  [a] call to echo failed: %s\n", rt_reason_str(((rt_call_failed_t *)(void *)m->data)->reason));
        p->echo = RT_NOPID;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t pinger = {.name = "pinger", .state_size = sizeof(pinger_t),
                                      .init = pinger_init, .handle = pinger_handle};

/* ---------------------------------------------------------------- chaos */

typedef struct chaos { unsigned seed; } chaos_t;
static int chaos_init(void *st, void *arg)
{
    chaos_t *c = st;
    (void)arg;
    c->seed = (unsigned)getpid();
    rt_send_after(2000, rt_self(), rt_msg_new(T_TICK, 0));
    return 0;
}
static int chaos_handle(void *st, rt_msg_t *m)
{
    chaos_t *c = st;
    if (m->type == T_TICK) {
        rt_send_after(2000, rt_self(), rt_msg_new(T_TICK, 0));
        char id[16];
        snprintf(id, sizeof id, "worker%d", rand_r(&c->seed) % 3);
        rt_pid_t w = rt_whereis(id);
        if (!rt_pid_is_nil(w)) {
            printf("  [a] chaos: crashing %s <%u.%u.%u>\n", id, w.node, w.id, w.serial);
            rt_send(w, rt_msg_new(T_CRASH, 0));
        }
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t chaos = {.name = "chaos", .state_size = sizeof(chaos_t),
                                     .init = chaos_init, .handle = chaos_handle};

/* Workers register themselves so chaos can find them. */
static int named_worker_init(void *st, void *arg)
{
    char id[16];
    snprintf(id, sizeof id, "worker%d", (int)(intptr_t)arg);
    rt_register(id, rt_self());
    return worker_init(st, arg);
}
static const rt_behaviour_t named_worker = {.name = "worker", .state_size = sizeof(worker_t),
                                            .init = named_worker_init, .handle = worker_handle};

/* ---------------------------------------------------------------- main */

static int start_node(const char *name, unsigned schedulers)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = schedulers;
    c.node_name = name;
    c.cookie = cookie;
    c.heartbeat_ms = 500;
    c.net_timeout_ms = 3000;
    int rc = rt_start(&c);
    if (rc != 0)
        fprintf(stderr, "rt_demo: cannot start node %s: %s\n", name, rt_strerror(rc));
    return rc;
}

static int run_node_b(void)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (start_node(node_b, 1) != 0)
        return 1;
    rt_sup_child_spec_t kids[] = {{.id = "echo", .behaviour = &echo, .restart = RT_SUP_PERMANENT, .shutdown_ms = 1000}};
    rt_sup_spec_t spec = {.strategy = RT_SUP_ONE_FOR_ONE, .intensity = 10, .period_ms = 1000,
                          .children = kids, .nchildren = 1, .name = "b_sup"};
    rt_pid_t sup;
    if (rt_sup_start(&spec, &sup) != 0)
        return 1;
    rt_set_root(sup);
    printf("  [b] node %s up: supervisor <%u.%u.%u>, echo registered\n", node_b, sup.node, sup.id, sup.serial);
    fflush(stdout);
    while (!stop_requested)
        pause();
    rt_stop(3000);
    printf("  [b] stopped cleanly\n");
    return 0;
}

int main(int argc, char **argv)
{
    int seconds = 0, port = 7101;
    const char *role = "a";
    static const struct option opts[] = {{"seconds", required_argument, 0, 's'},
                                         {"port", required_argument, 0, 'p'},
                                         {"role", required_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "s:p:r:h", opts, NULL)) != -1) {
        switch (o) {
        case 's': seconds = atoi(optarg); break;
        case 'p': port = atoi(optarg); break;
        case 'r': role = optarg; break;
        case 'h':
        default:
            printf("usage: rt_demo [--seconds N] [--port P]\n"
                   "  Runs two runtime nodes (a@127.0.0.1:P and b@127.0.0.1:P+1) with supervision\n"
                   "  trees, cross-node calls and injected crashes. Ctrl-C stops (N=0: run until).\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (port <= 0 || port > 65534) {
        fprintf(stderr, "rt_demo: --port must be 1..65534\n");
        return 2;
    }
    snprintf(node_a, sizeof node_a, "a@127.0.0.1:%d", port);
    snprintf(node_b, sizeof node_b, "b@127.0.0.1:%d", port + 1);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(role, "b") == 0)
        return run_node_b();

    pid_t child = fork();
    if (child == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        execl("/proc/self/exe", argv[0], "--role", "b", "--port", p, (char *)NULL);
        _exit(127);
    }
    if (start_node(node_a, 2) != 0) {
        kill(child, SIGTERM);
        return 1;
    }
    printf("Cairn runtime demo: node %s (this process) and %s (pid %d)\n", node_a, node_b, (int)child);
    int rc = 1;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = rt_node_connect(node_b, 1000);
        if (rc != 0)
            usleep(100000);
    }
    if (rc != 0) {
        fprintf(stderr, "rt_demo: cannot reach %s: %s\n", node_b, rt_strerror(rc));
        rt_stop(1000);
        kill(child, SIGTERM);
        return 1;
    }
    rt_sup_child_spec_t kids[] = {
        {.id = "worker0", .behaviour = &named_worker, .arg = (void *)0, .restart = RT_SUP_PERMANENT, .shutdown_ms = 500},
        {.id = "worker1", .behaviour = &named_worker, .arg = (void *)1, .restart = RT_SUP_PERMANENT, .shutdown_ms = 500},
        {.id = "worker2", .behaviour = &named_worker, .arg = (void *)2, .restart = RT_SUP_PERMANENT, .shutdown_ms = 500},
        {.id = "pinger", .behaviour = &pinger, .restart = RT_SUP_PERMANENT, .shutdown_ms = 500},
    };
    rt_sup_spec_t spec = {.strategy = RT_SUP_ONE_FOR_ONE, .intensity = 20, .period_ms = 5000,
                          .children = kids, .nchildren = 4, .name = "a_sup"};
    rt_pid_t sup;
    if ((rc = rt_sup_start(&spec, &sup)) != 0) {
        fprintf(stderr, "rt_demo: supervisor failed to start: %s\n", rt_strerror(rc));
        rt_stop(1000);
        kill(child, SIGTERM);
        return 1;
    }
    rt_set_root(sup);
    rt_pid_t ch;
    rt_spawn(&chaos, NULL, &ch);
    printf("Supervisor <%u.%u.%u> runs 3 workers and a pinger. Ctrl-C to stop.\n", sup.node, sup.id, sup.serial);

    uint64_t end = seconds > 0 ? rt_now_ns() + (uint64_t)seconds * 1000000000ull : 0;
    while (!stop_requested && (end == 0 || rt_now_ns() < end)) {
        rt_msg_t *m;
        if (rt_receive(200, &m) == 0)
            rt_msg_free(m);
    }
    printf("Stopping: the supervision tree shuts down in order, then the node links close.\n");
    rt_exit_signal(ch, RT_R_KILL);
    rt_stop(3000);
    kill(child, SIGTERM);
    int status = 0;
    waitpid(child, &status, 0);
    printf("Both nodes stopped (node b exit status %d).\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
