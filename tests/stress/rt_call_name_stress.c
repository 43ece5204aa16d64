/*
 * rt_call_name_stress.c — calls by registered name under ThreadSanitizer, two runtimes in
 * two OS processes. On node b a supervisor keeps eight services registered as "vnode/0".."7";
 * on node a another keeps "lvnode/0".."3". Six caller processes on node a keep four calls by
 * name each in flight (three in four to node b, the rest local); one call in forty asks the
 * callee to crash, so names vanish and come back with new pids while other calls wait on
 * them, and the main thread lists the connected nodes meanwhile. Every call must end exactly
 * once: the right reply, or a failure whose reason the caller can explain. Then each caller
 * parks calls at a service on b that never replies, node b is killed, and every parked call
 * must end with noconnection, long before its timeout. Exits 0 when all checks hold.
 */
#include "runtime/dist.h"
#include "runtime/rt.h"
#include "runtime/sup.h"
#include "tests/stress/rt_stress.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

enum { T_ECHO = RT_MSG_USER + 1, T_CRASH, T_HOLD, T_HELD, T_GO, T_PARK, T_PARKED, T_DONE };
enum { CALLERS = 6, CALLS = 5000, PIPE = 4, PARKED = 8, REMOTE_SVCS = 8, LOCAL_SVCS = 4 };
#define CALL_TIMEOUT 20000u
#define PARK_TIMEOUT 120000u

typedef struct payload { uint32_t caller, seq; } payload_t;

static char name_b[RT_NODE_NAME_MAX];
static rt_pid_t main_pid;

/* ------------------------------------------------------------------ services (both nodes) */

static int service_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == T_CRASH)
        return -1;
    if (m->type == T_ECHO && rt_is_call(m))
        rt_reply(rt_call_from(m), rt_msg_copy(T_ECHO, m->data, m->size));
    else if (m->type == T_HOLD)
        rt_send(m->from, rt_msg_new(T_HELD, 0)); /* and never replies */
    return RT_CONTINUE;
}

static int service_init(void *st, void *arg)
{
    (void)st;
    return rt_register(arg, rt_self()) == 0 ? 0 : RT_R_INIT_FAILED;
}
static const rt_behaviour_t service = {.name = "service", .init = service_init, .handle = service_handle};

static char svc_names[REMOTE_SVCS][16];

/* A one_for_one supervisor of n services registered as prefix0..prefix(n-1). */
static void start_services(const char *prefix, int n)
{
    rt_sup_child_spec_t kids[REMOTE_SVCS];
    char ids[REMOTE_SVCS][16];
    for (int i = 0; i < n; i++) {
        snprintf(svc_names[i], sizeof svc_names[i], "%s%d", prefix, i);
        snprintf(ids[i], sizeof ids[i], "svc%d", i);
        kids[i] = (rt_sup_child_spec_t){.id = ids[i], .behaviour = &service, .arg = svc_names[i],
                                        .restart = RT_SUP_PERMANENT, .shutdown_ms = 1000};
    }
    rt_sup_spec_t spec = {.strategy = RT_SUP_ONE_FOR_ONE, .intensity = 1000000, .period_ms = 1000,
                          .children = kids, .nchildren = (size_t)n};
    CHECK(rt_sup_start(&spec, NULL) == 0, "supervisor of %s*", prefix);
}

/* ------------------------------------------------------------------ callers (node a) */

typedef struct pending { rt_ref_t ref; uint32_t seq; bool crash; } pending_t;

typedef struct caller {
    uint32_t id;
    uint64_t rnd;
    uint32_t started, finished;
    pending_t pend[PIPE];
    uint32_t replies, noprocs, crashes;
    /* the parking phase */
    uint32_t held, park_ended;
    rt_ref_t park_refs[PARKED];
} caller_t;

typedef struct report { uint32_t replies, noprocs, crashes; } report_t;

static void start_call(caller_t *c, pending_t *slot)
{
    uint64_t r = stress_rnd(&c->rnd);
    char name[16];
    bool local = r % 4 == 0;
    snprintf(name, sizeof name, "%s%u", local ? "lvnode/" : "vnode/",
             (unsigned)((r >> 8) % (local ? LOCAL_SVCS : REMOTE_SVCS)));
    slot->seq = c->started++;
    slot->crash = (r >> 16) % 40 == 0;
    payload_t p = {c->id, slot->seq};
    rt_msg_t *req = rt_msg_copy(slot->crash ? T_CRASH : T_ECHO, &p, sizeof p);
    slot->ref = rt_call_name(local ? NULL : name_b, name, req, CALL_TIMEOUT);
    CHECK(slot->ref != 0, "rt_call_name from a process returned no ref");
}

static pending_t *find_pending(caller_t *c, rt_ref_t ref)
{
    for (int i = 0; i < PIPE; i++)
        if (c->pend[i].ref == ref)
            return &c->pend[i];
    return NULL;
}

/* One outcome of the traffic phase: a reply or a failure the caller can explain. */
static void traffic_outcome(caller_t *c, rt_msg_t *m)
{
    bool failed = m->type == RT_MSG_CALL_FAILED;
    rt_ref_t ref = failed ? ((rt_call_failed_t *)(void *)m->data)->ref : m->ref;
    pending_t *p = find_pending(c, ref);
    CHECK(p && ref != 0, "caller %u: an outcome for no pending call (type %u)", c->id, m->type);
    if (failed) {
        int reason = ((rt_call_failed_t *)(void *)m->data)->reason;
        /* noproc: the name was between incarnations; crash: this call's callee crashed,
         * asked to by this call or by another one queued before it */
        CHECK(reason == RT_R_NOPROC || reason == RT_R_CRASH, "caller %u call %u failed: %s", c->id,
              p->seq, rt_reason_str(reason));
        if (reason == RT_R_NOPROC)
            c->noprocs++;
        else
            c->crashes++;
    } else {
        CHECK(!p->crash, "caller %u: a reply to a request that crashes its callee", c->id);
        payload_t got;
        CHECK(m->type == T_ECHO && m->size == sizeof got, "caller %u: bad reply", c->id);
        memcpy(&got, m->data, sizeof got);
        CHECK(got.caller == c->id && got.seq == p->seq, "caller %u: reply %u/%u for call %u", c->id,
              got.caller, got.seq, p->seq);
        c->replies++;
    }
    p->ref = 0;
    if (++c->finished == CALLS) {
        report_t rep = {c->replies, c->noprocs, c->crashes};
        rt_send(main_pid, rt_msg_copy(T_DONE, &rep, sizeof rep));
    } else if (c->started < CALLS) {
        start_call(c, p);
    }
}

static int caller_init(void *st, void *arg)
{
    caller_t *c = st;
    c->id = (uint32_t)(uintptr_t)arg;
    c->rnd = 0x9e3779b97f4a7c15ull * (c->id + 1);
    return 0;
}

static int caller_handle(void *st, rt_msg_t *m)
{
    caller_t *c = st;
    switch (m->type) {
    case T_GO:
        for (int i = 0; i < PIPE; i++)
            start_call(c, &c->pend[i]);
        break;
    case T_PARK:
        for (int i = 0; i < PARKED; i++)
            c->park_refs[i] = rt_call_name(name_b, "holder", rt_msg_new(T_HOLD, 0), PARK_TIMEOUT);
        break;
    case T_HELD:
        if (++c->held == PARKED)
            rt_send(main_pid, rt_msg_new(T_PARKED, 0));
        break;
    case RT_MSG_CALL_FAILED:
        if (c->finished < CALLS) {
            traffic_outcome(c, m);
        } else {
            rt_call_failed_t *cf = (rt_call_failed_t *)(void *)m->data;
            bool known = false;
            for (int i = 0; i < PARKED; i++)
                if (c->park_refs[i] == cf->ref) {
                    c->park_refs[i] = 0;
                    known = true;
                }
            CHECK(known, "caller %u: a failure for no parked call", c->id);
            CHECK(cf->reason == RT_R_NOCONNECTION, "caller %u: a parked call ended with %s", c->id,
                  rt_reason_str(cf->reason));
            if (++c->park_ended == PARKED)
                rt_send(main_pid, rt_msg_new(T_DONE, 0));
        }
        break;
    default:
        if (m->flags & RT_MSGF_REPLY) {
            CHECK(c->finished < CALLS, "caller %u: a reply to a parked call", c->id);
            traffic_outcome(c, m);
        }
        break;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t caller = {.name = "caller", .state_size = sizeof(caller_t),
                                      .init = caller_init, .handle = caller_handle};

/* ------------------------------------------------------------------ main */

static rt_config_t config(const char *name)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    c.node_name = name;
    c.cookie = "stress";
    c.heartbeat_ms = 200;
    c.net_timeout_ms = 2000;
    return c;
}

static void peer_main(int ready_fd)
{
    rt_config_t c = config("b@127.0.0.1:0");
    if (rt_start(&c) != 0)
        _exit(3);
    start_services("vnode/", REMOTE_SVCS);
    static const char holder_name[] = "holder";
    if (rt_spawn(&service, (void *)holder_name, NULL) != 0)
        _exit(4);
    char name[RT_NODE_NAME_MAX];
    snprintf(name, sizeof name, "%s", rt_node_self());
    if (write(ready_fd, name, sizeof name) != (ssize_t)sizeof name)
        _exit(5);
    for (;;)
        pause();
}

/* Waits for n messages of `type`, listing the connected nodes while it waits. */
static void wait_for(uint32_t type, int n, const char *what)
{
    uint64_t deadline = stress_ms() + 240000;
    int got = 0;
    while (got < n) {
        CHECK(stress_ms() < deadline, "%s: %d of %d after 240 s", what, got, n);
        char nodes[4][RT_NODE_NAME_MAX];
        size_t count = rt_node_list(nodes, 4);
        CHECK(count <= 1, "%zu nodes connected, expected at most 1", count);
        rt_msg_t *m = NULL;
        if (rt_receive(20, &m) != 0)
            continue;
        if (m->type == type)
            got++;
        rt_msg_free(m);
    }
}

int main(void)
{
    rt_log_set_level(getenv("STRESS_DEBUG") ? RT_LOG_DEBUG : RT_LOG_NONE);
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        peer_main(ready[1]);
    }
    close(ready[1]);
    CHECK(read(ready[0], name_b, sizeof name_b) == (ssize_t)sizeof name_b, "peer did not start");
    close(ready[0]);

    rt_config_t c = config("a@127.0.0.1:0");
    CHECK(rt_start(&c) == 0, "start");
    main_pid = rt_self();
    start_services("lvnode/", LOCAL_SVCS);
    CHECK(rt_node_connect(name_b, 10000) == 0, "connect to %s", name_b);

    rt_pid_t callers[CALLERS];
    for (uint32_t i = 0; i < CALLERS; i++)
        CHECK(rt_spawn(&caller, (void *)(uintptr_t)i, &callers[i]) == 0, "spawn");
    for (int i = 0; i < CALLERS; i++)
        rt_send(callers[i], rt_msg_new(T_GO, 0));
    report_t total = {0};
    uint64_t deadline = stress_ms() + 240000;
    for (int done = 0; done < CALLERS;) {
        CHECK(stress_ms() < deadline, "traffic: %d of %d callers done after 240 s", done, CALLERS);
        char nodes[4][RT_NODE_NAME_MAX];
        size_t count = rt_node_list(nodes, 4);
        CHECK(count == 1 && strcmp(nodes[0], name_b) == 0, "node list: %zu nodes", count);
        rt_msg_t *m = NULL;
        if (rt_receive(20, &m) != 0)
            continue;
        if (m->type == T_DONE) {
            report_t r;
            memcpy(&r, m->data, sizeof r);
            total.replies += r.replies;
            total.noprocs += r.noprocs;
            total.crashes += r.crashes;
            done++;
        }
        rt_msg_free(m);
    }
    CHECK(total.replies + total.noprocs + total.crashes == CALLERS * CALLS, "outcomes do not add up");
    CHECK(total.replies > CALLERS * CALLS / 2, "only %u replies", total.replies);
    CHECK(total.crashes > 0, "no callee ever crashed");

    /* park calls at b, kill b: each must end with noconnection, well before its timeout */
    for (int i = 0; i < CALLERS; i++)
        rt_send(callers[i], rt_msg_new(T_PARK, 0));
    wait_for(T_PARKED, CALLERS, "parking");
    uint64_t t0 = stress_ms();
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    wait_for(T_DONE, CALLERS, "parked calls ending");
    uint64_t ended_ms = stress_ms() - t0;
    CHECK(ended_ms < PARK_TIMEOUT / 2, "parked calls ended only after %llu ms", (unsigned long long)ended_ms);
    CHECK(rt_node_list(NULL, 0) == 0, "a node is still listed after the peer died");
    rt_stop(2000);
    printf("rt_call_name_stress: %d callers x %d calls by name (%u replies, %u noproc, %u crash); "
           "%d parked calls ended with noconnection %llu ms after the peer was killed: ok\n",
           CALLERS, CALLS, total.replies, total.noprocs, total.crashes, CALLERS * PARKED,
           (unsigned long long)ended_ms);
    return 0;
}
