/*
 * test_rt_call_name.c — calls by registered name (rt_call_name, rt_call_name_sync), on this
 * node and to a second runtime in a child OS process over loopback TCP: replies, noproc for
 * an unregistered name, the callee's exit reason when it dies before replying, a process
 * restarted by its supervisor reached again by its name, noconnection when the peer is
 * killed mid-call or not running, badmsg for a request the callee's node cannot decode,
 * late replies dropped after a timeout, and rt_node_list.
 *
 * Calls that must fail fast are made with a 60 s timeout and their outcome is awaited for
 * at most 15 s: an outcome that only came from the timeout would fail the test.
 */
#include "proto/rt_test.pb-c.h"
#include "runtime/dist.h"
#include "runtime/rt.h"
#include "runtime/sup.h"

#include <criterion/criterion.h>

#include "tests/unit/rt_test.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    T_ECHO = RT_MSG_USER + 70, /* call: reply with the same payload */
    T_CRASH,                   /* call: the callee crashes instead of replying */
    T_QUIT,                    /* call: the callee exits normally without replying */
    T_SLOW,                    /* call, payload u32 ms: reply after that long */
    T_SLOW_TICK,               /* the slow service's own timer */
    T_LATE_SENT,               /* slow service -> caller, right after its late reply */
    T_HOLD,                    /* call: never replied; the callee says T_HELD to the caller */
    T_HELD,
    T_PB,                      /* a protobuf type node b has no descriptor for */
    T_DO,                      /* test -> caller process: make one call (call_req_t) */
    T_OUTCOME,                 /* caller process -> test: what it received (outcome_t) */
};

#define FAST_MS 15000u     /* bound on waiting for an outcome that must not wait for a timeout */
#define LONG_CALL 60000u   /* the timeout of calls that must end sooner */

static char name_a[RT_NODE_NAME_MAX], name_b[RT_NODE_NAME_MAX];
static pid_t child;

/* ------------------------------------------------------------------ node b's services */

static int service_handle(void *st, rt_msg_t *m)
{
    (void)st;
    switch (m->type) {
    case T_ECHO:
        if (rt_is_call(m))
            rt_reply(rt_call_from(m), rt_msg_copy(T_ECHO, m->data, m->size));
        return RT_CONTINUE;
    case T_CRASH:
        return -1;
    case T_QUIT:
        return RT_STOP;
    case T_SLOW: {
        uint32_t ms;
        memcpy(&ms, m->data, sizeof ms);
        rt_from_t from = rt_call_from(m);
        rt_send_after(ms, rt_self(), rt_msg_copy(T_SLOW_TICK, &from, sizeof from));
        return RT_CONTINUE;
    }
    case T_SLOW_TICK: {
        rt_from_t from;
        memcpy(&from, m->data, sizeof from);
        rt_reply(from, rt_msg_copy(T_ECHO, "late", 4));
        rt_send(from.pid, rt_msg_new(T_LATE_SENT, 0)); /* same link, after the reply */
        return RT_CONTINUE;
    }
    case T_HOLD:
        rt_send(m->from, rt_msg_new(T_HELD, 0));
        return RT_CONTINUE;
    default:
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t service = {.name = "service", .handle = service_handle};

/* A supervised child that registers the name it is given at every (re)start. */
static int named_init(void *st, void *arg)
{
    (void)st;
    return rt_register(arg, rt_self()) == 0 ? 0 : RT_R_INIT_FAILED;
}
static const rt_behaviour_t named_service = {.name = "named_service", .init = named_init,
                                             .handle = service_handle};

static void peer_main(int ready_fd)
{
    rt_log_set_level(RT_LOG_NONE); /* crashes are the point here */
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 1;
    c.node_name = "b@127.0.0.1:0";
    c.cookie = "secret";
    c.heartbeat_ms = 200;
    c.net_timeout_ms = 1000;
    if (rt_start(&c) != 0)
        _exit(3);
    static const char *const names[] = {"vnode/12", "crasher", "quitter", "slow", "holder"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (rt_spawn_opt(&service, NULL, &(rt_spawn_opts_t){.name = names[i]}, NULL) != 0)
            _exit(4);
    static const rt_sup_child_spec_t kids[] = {
        {.id = "vnode7", .behaviour = &named_service, .arg = "vnode/7", .restart = RT_SUP_PERMANENT},
    };
    rt_sup_spec_t spec = {.strategy = RT_SUP_ONE_FOR_ONE, .intensity = 100, .period_ms = 1000,
                          .children = kids, .nchildren = 1};
    if (rt_sup_start(&spec, NULL) != 0)
        _exit(5);
    char name[RT_NODE_NAME_MAX];
    snprintf(name, sizeof name, "%s", rt_node_self()); /* the bound port is in the name */
    if (write(ready_fd, name, sizeof name) != (ssize_t)sizeof name)
        _exit(6);
    for (;;)
        pause();
}

/* ------------------------------------------------------------------ node a's caller */

/* What the test asks the caller process to do. */
typedef struct call_req {
    char node[RT_NODE_NAME_MAX]; /* "": NULL (this node) */
    char name[64];
    bool by_pid;                 /* call `pid` with rt_call instead */
    rt_pid_t pid;
    uint32_t type;
    uint32_t arg;                /* 4 bytes of payload */
    uint32_t timeout_ms;
    bool pb;                     /* send a protobuf of type T_PB instead */
} call_req_t;

/* What the caller process received, forwarded to the test thread. */
typedef struct outcome {
    rt_ref_t call_ref;           /* the ref of the caller's last call */
    rt_ref_t ref;                /* the message's ref (reply / call failed) */
    uint32_t type;
    bool reply;                  /* RT_MSGF_REPLY was set */
    int reason;                  /* RT_MSG_CALL_FAILED: the reason */
    rt_pid_t from;
    uint32_t size;
    char data[16];
} outcome_t;

typedef struct caller_state {
    rt_pid_t test;
    rt_ref_t ref;
} caller_state_t;

static void pb_free(ProtobufCMessage *pb) { free(pb); }

static int caller_init(void *st, void *arg)
{
    ((caller_state_t *)st)->test = *(rt_pid_t *)arg;
    return 0;
}

static int caller_handle(void *st, rt_msg_t *m)
{
    caller_state_t *s = st;
    if (m->type == T_DO) {
        call_req_t r;
        memcpy(&r, m->data, sizeof r);
        rt_msg_t *req;
        if (r.pb) {
            Cairn__Test__Payload *p = malloc(sizeof *p);
            cairn__test__payload__init(p);
            p->seq = r.arg;
            req = rt_msg_pb(T_PB, &p->base, pb_free);
        } else {
            req = rt_msg_copy(r.type, &r.arg, sizeof r.arg);
        }
        if (r.by_pid)
            s->ref = rt_call(r.pid, req, r.timeout_ms);
        else
            s->ref = rt_call_name(r.node[0] ? r.node : NULL, r.name, req, r.timeout_ms);
        return RT_CONTINUE;
    }
    outcome_t o = {.call_ref = s->ref, .ref = m->ref, .type = m->type, .from = m->from,
                   .reply = (m->flags & RT_MSGF_REPLY) != 0};
    if (m->type == RT_MSG_CALL_FAILED) {
        rt_call_failed_t *cf = (rt_call_failed_t *)(void *)m->data;
        o.ref = cf->ref;
        o.reason = cf->reason;
    } else if (!(m->flags & RT_MSGF_PB)) {
        o.size = m->size < sizeof o.data ? m->size : (uint32_t)sizeof o.data;
        memcpy(o.data, m->data, o.size);
    }
    rt_send(s->test, rt_msg_copy(T_OUTCOME, &o, sizeof o));
    return RT_CONTINUE;
}
static const rt_behaviour_t caller_behaviour = {.name = "caller", .state_size = sizeof(caller_state_t),
                                                .init = caller_init, .handle = caller_handle};

static rt_pid_t caller_spawn(void)
{
    rt_pid_t me = rt_self(), c;
    cr_assert_eq(rt_spawn(&caller_behaviour, &me, &c), 0);
    return c;
}

/* Asks caller `c` to call `name` on `node` (NULL: this node) and returns the first thing it
 * receives afterwards (fails the test if nothing comes within wait_ms). */
static outcome_t call_via(rt_pid_t c, const char *node, const char *name, uint32_t type, uint32_t arg,
                          uint32_t timeout_ms, uint32_t wait_ms)
{
    call_req_t r = {.type = type, .arg = arg, .timeout_ms = timeout_ms};
    snprintf(r.node, sizeof r.node, "%s", node ? node : "");
    snprintf(r.name, sizeof r.name, "%s", name);
    rt_send(c, rt_msg_copy(T_DO, &r, sizeof r));
    rt_msg_t *m = rt_test_recv_type(T_OUTCOME, wait_ms);
    cr_assert_not_null(m, "no outcome for a call to '%s' on %s within %u ms", name, node ? node : "this node", wait_ms);
    outcome_t o;
    memcpy(&o, m->data, sizeof o);
    rt_msg_free(m);
    return o;
}

static outcome_t next_outcome(uint32_t wait_ms)
{
    rt_msg_t *m = rt_test_recv_type(T_OUTCOME, wait_ms);
    cr_assert_not_null(m, "the caller received nothing within %u ms", wait_ms);
    outcome_t o;
    memcpy(&o, m->data, sizeof o);
    rt_msg_free(m);
    return o;
}

static void assert_reply(outcome_t o, const void *data, uint32_t size)
{
    cr_assert(o.reply && o.type == T_ECHO, "expected a reply, got type %u (%s)", o.type,
              o.type == RT_MSG_CALL_FAILED ? rt_reason_str(o.reason) : "not a failure");
    cr_assert_eq(o.ref, o.call_ref, "the reply's ref is not the call's");
    cr_assert_eq(o.size, size);
    cr_assert_eq(memcmp(o.data, data, size), 0);
}

static void assert_failed(outcome_t o, int reason)
{
    cr_assert_eq(o.type, RT_MSG_CALL_FAILED, "expected a failed call, got type %u", o.type);
    cr_assert_eq(o.ref, o.call_ref, "the failure's ref is not the call's");
    cr_assert_eq(o.reason, reason, "failed with %s, expected %s", rt_reason_str(o.reason),
                 rt_reason_str(reason));
}

/* ------------------------------------------------------------------ setup */

static void start_peer(void)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        peer_main(ready[1]);
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], name_b, sizeof name_b), (ssize_t)sizeof name_b, "peer node did not start");
    close(ready[0]);
}

static void setup(void)
{
    start_peer();
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    c.node_name = "a@127.0.0.1:0";
    c.cookie = "secret";
    c.heartbeat_ms = 200;
    c.net_timeout_ms = 1000;
    rt_log_set_level(RT_LOG_ERROR);
    cr_assert_eq(rt_start(&c), 0);
    snprintf(name_a, sizeof name_a, "%s", rt_node_self());
    cr_assert_eq(rt_msg_register_pb(T_PB, &cairn__test__payload__descriptor), 0); /* here only */
}

static void kill_peer(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = 0;
    }
}

static void teardown(void)
{
    rt_test_stop();
    kill_peer();
}

TestSuite(rt_call_name, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t ms_since(uint64_t t0_ns) { return (rt_now_ns() - t0_ns) / 1000000u; }

/* ------------------------------------------------------------------ tests */

Test(rt_call_name, local_name_is_called_like_a_pid)
{
    rt_pid_t svc;
    cr_assert_eq(rt_spawn_opt(&service, NULL, &(rt_spawn_opts_t){.name = "vnode/3"}, &svc), 0);
    rt_pid_t c = caller_spawn();
    outcome_t o = call_via(c, NULL, "vnode/3", T_ECHO, 7, 5000, FAST_MS);
    assert_reply(o, &(uint32_t){7}, 4);
    cr_assert(rt_pid_eq(o.from, svc));
    /* this node's own name is local too */
    assert_reply(call_via(c, name_a, "vnode/3", T_ECHO, 8, 5000, FAST_MS), &(uint32_t){8}, 4);
    assert_failed(call_via(c, NULL, "vnode/4", T_ECHO, 9, LONG_CALL, FAST_MS), RT_R_NOPROC);
    assert_failed(call_via(c, NULL, "", T_ECHO, 9, LONG_CALL, FAST_MS), RT_R_NOPROC);

    /* the blocking form, from this thread */
    rt_msg_t *r = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_name_sync(NULL, "vnode/3", rt_msg_copy(T_ECHO, "ab", 2), 5000, &r, &reason), 0);
    cr_assert_eq(r->size, 2);
    cr_assert_eq(memcmp(r->data, "ab", 2), 0);
    rt_msg_free(r);
    cr_assert_eq(rt_call_name_sync(NULL, "nobody", rt_msg_new(T_ECHO, 0), LONG_CALL, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_NOPROC);
}

Test(rt_call_name, remote_name_replies_and_the_callee_sees_an_ordinary_call)
{
    rt_pid_t c = caller_spawn();
    outcome_t o = {0};
    for (uint32_t i = 0; i < 200; i++) {
        o = call_via(c, name_b, "vnode/12", T_ECHO, i, 5000, FAST_MS);
        assert_reply(o, &i, 4);
    }
    cr_assert_str_eq(rt_node_of(o.from), name_b);
    /* the same process called by its pid gives the same answer */
    call_req_t r = {.by_pid = true, .pid = o.from, .type = T_ECHO, .arg = 42, .timeout_ms = 5000};
    rt_send(c, rt_msg_copy(T_DO, &r, sizeof r));
    assert_reply(next_outcome(FAST_MS), &(uint32_t){42}, 4);

    rt_msg_t *reply = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_name_sync(name_b, "vnode/12", rt_msg_copy(T_ECHO, "xyz", 3), 5000, &reply, &reason), 0);
    cr_assert(reply->flags & RT_MSGF_REPLY);
    cr_assert_eq(reply->size, 3);
    cr_assert_eq(memcmp(reply->data, "xyz", 3), 0);
    rt_msg_free(reply);
}

Test(rt_call_name, unregistered_remote_name_fails_with_noproc_at_once)
{
    rt_pid_t c = caller_spawn();
    assert_reply(call_via(c, name_b, "vnode/12", T_ECHO, 1, 5000, FAST_MS), &(uint32_t){1}, 4);
    uint64_t t0 = rt_now_ns();
    assert_failed(call_via(c, name_b, "vnode/99", T_ECHO, 1, LONG_CALL, FAST_MS), RT_R_NOPROC);
    cr_log_info("noproc from the remote node after %llu ms", (unsigned long long)ms_since(t0));
    rt_msg_t *r = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_name_sync(name_b, "vnode/99", rt_msg_new(T_ECHO, 0), LONG_CALL, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_NOPROC);
    /* the link is fine afterwards */
    assert_reply(call_via(c, name_b, "vnode/12", T_ECHO, 2, 5000, FAST_MS), &(uint32_t){2}, 4);
}

Test(rt_call_name, callee_exit_before_replying_ends_the_call_with_its_reason)
{
    rt_pid_t c = caller_spawn();
    assert_failed(call_via(c, name_b, "crasher", T_CRASH, 0, LONG_CALL, FAST_MS), RT_R_CRASH);
    /* gone now: its name with it */
    assert_failed(call_via(c, name_b, "crasher", T_ECHO, 0, LONG_CALL, FAST_MS), RT_R_NOPROC);
    assert_failed(call_via(c, name_b, "quitter", T_QUIT, 0, LONG_CALL, FAST_MS), RT_R_NORMAL);
}

Test(rt_call_name, a_restarted_process_is_reached_by_its_name)
{
    rt_pid_t c = caller_spawn();
    outcome_t first = call_via(c, name_b, "vnode/7", T_ECHO, 1, 5000, FAST_MS);
    assert_reply(first, &(uint32_t){1}, 4);
    assert_failed(call_via(c, name_b, "vnode/7", T_CRASH, 0, LONG_CALL, FAST_MS), RT_R_CRASH);
    /* the supervisor restarts it under the same name; until then the name is unknown */
    outcome_t o = {0};
    int noprocs = 0;
    for (int attempt = 0; attempt < 500; attempt++) {
        o = call_via(c, name_b, "vnode/7", T_ECHO, 2, 5000, FAST_MS);
        if (o.type != RT_MSG_CALL_FAILED)
            break;
        assert_failed(o, RT_R_NOPROC);
        noprocs++;
        usleep(10 * 1000);
    }
    assert_reply(o, &(uint32_t){2}, 4);
    cr_assert(!rt_pid_eq(o.from, first.from), "the reply came from the crashed incarnation");
    cr_log_info("restarted callee answered after %d noproc answers", noprocs);
}

Test(rt_call_name, killing_the_peer_ends_a_waiting_call_with_noconnection)
{
    rt_pid_t c = caller_spawn();
    call_req_t r = {.type = T_HOLD, .timeout_ms = LONG_CALL};
    snprintf(r.node, sizeof r.node, "%s", name_b);
    snprintf(r.name, sizeof r.name, "holder");
    rt_send(c, rt_msg_copy(T_DO, &r, sizeof r));
    outcome_t held = next_outcome(FAST_MS); /* the callee has the request: the call waits */
    cr_assert_eq(held.type, T_HELD);
    cr_assert(!held.reply);
    uint64_t t0 = rt_now_ns();
    kill_peer();
    assert_failed(next_outcome(FAST_MS), RT_R_NOCONNECTION);
    cr_log_info("noconnection %llu ms after the peer was killed (call timeout %u ms)",
                (unsigned long long)ms_since(t0), LONG_CALL);
    /* and a new call to the dead node fails the same way, without waiting */
    assert_failed(call_via(c, name_b, "holder", T_HOLD, 0, LONG_CALL, FAST_MS), RT_R_NOCONNECTION);
}

Test(rt_call_name, call_to_a_node_that_is_not_running_fails_with_noconnection)
{
    /* a port that is bound but not listening: a connection is refused at once */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char dead[RT_NODE_NAME_MAX];
    snprintf(dead, sizeof dead, "c@127.0.0.1:%u", ntohs(sa.sin_port));

    rt_pid_t c = caller_spawn();
    uint64_t t0 = rt_now_ns();
    assert_failed(call_via(c, dead, "vnode/12", T_ECHO, 0, LONG_CALL, FAST_MS), RT_R_NOCONNECTION);
    cr_log_info("noconnection for a node not running after %llu ms", (unsigned long long)ms_since(t0));
    rt_msg_t *r = NULL;
    int reason = -1;
    cr_assert_eq(rt_call_name_sync(dead, "vnode/12", rt_msg_new(T_ECHO, 0), LONG_CALL, &r, &reason), RT_EDOWN);
    cr_assert_eq(reason, RT_R_NOCONNECTION);
    /* a name that is no node name at all */
    assert_failed(call_via(c, "nohost", "vnode/12", T_ECHO, 0, LONG_CALL, FAST_MS), RT_R_NOCONNECTION);
    close(fd);
}

Test(rt_call_name, a_reply_after_the_timeout_is_dropped)
{
    rt_pid_t c = caller_spawn();
    /* reply after 600 ms to a call that times out after 100 ms */
    assert_failed(call_via(c, name_b, "slow", T_SLOW, 600, 100, FAST_MS), RT_R_TIMEOUT);
    /* the service replies, then says so on the same link: the caller must see only the
     * second message */
    outcome_t o = next_outcome(FAST_MS);
    cr_assert(!o.reply, "a reply reached the caller after its call timed out");
    cr_assert_eq(o.type, T_LATE_SENT);
    /* and the callee, still registered, answers in time calls */
    assert_reply(call_via(c, name_b, "slow", T_SLOW, 1, 5000, FAST_MS), "late", 4);
    cr_assert_eq(next_outcome(FAST_MS).type, T_LATE_SENT);
}

Test(rt_call_name, a_request_the_callee_node_cannot_decode_fails_with_badmsg)
{
    rt_pid_t c = caller_spawn();
    call_req_t r = {.pb = true, .arg = 5, .timeout_ms = LONG_CALL};
    snprintf(r.node, sizeof r.node, "%s", name_b);
    snprintf(r.name, sizeof r.name, "vnode/12");
    rt_send(c, rt_msg_copy(T_DO, &r, sizeof r));
    outcome_t o = next_outcome(FAST_MS);
    assert_failed(o, RT_R_BADMSG);
    /* the same by pid */
    outcome_t echo = call_via(c, name_b, "vnode/12", T_ECHO, 1, 5000, FAST_MS);
    assert_reply(echo, &(uint32_t){1}, 4);
    r.by_pid = true;
    r.pid = echo.from;
    rt_send(c, rt_msg_copy(T_DO, &r, sizeof r));
    assert_failed(next_outcome(FAST_MS), RT_R_BADMSG);
    /* the callee lives on */
    assert_reply(call_via(c, name_b, "vnode/12", T_ECHO, 3, 5000, FAST_MS), &(uint32_t){3}, 4);
}

Test(rt_call_name, node_list_shows_connected_peers)
{
    char names[4][RT_NODE_NAME_MAX];
    cr_assert_eq(rt_node_list(names, 4), 0);
    rt_pid_t c = caller_spawn();
    assert_reply(call_via(c, name_b, "vnode/12", T_ECHO, 1, 5000, FAST_MS), &(uint32_t){1}, 4);
    cr_assert_eq(rt_node_list(NULL, 0), 1);
    cr_assert_eq(rt_node_list(names, 4), 1);
    cr_assert_str_eq(names[0], name_b);

    rt_node_monitor(true);
    cr_assert_eq(rt_node_disconnect(name_b), 0);
    rt_msg_t *m = rt_test_recv_type(RT_MSG_NODEDOWN, FAST_MS);
    cr_assert_not_null(m, "no NODEDOWN after disconnecting");
    rt_msg_free(m);
    cr_assert_eq(rt_node_list(names, 4), 0);
}
