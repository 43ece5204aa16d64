/*
 * test_rt_sched.c — scheduling and the services around processes (issue 2, properties 1,
 * 5, 6, 7 and 11): pids never alias a dead process, the per-turn batch limit keeps a
 * flooded process from starving others, async calls from inside a process (reply, timeout
 * with the late reply dropped, target death), timers (deadline order, cancel), the name
 * registry, and a clean rt_stop that frees everything and can be followed by a second
 * rt_start/rt_stop cycle.
 */
#include "rt_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum {
    S_SPAWN = RT_MSG_USER + 300, /* call to the factory: spawn a counter, reply its pid */
    S_HIT,                       /* counter: count it */
    S_COUNT,                     /* call: reply the count */
    S_WORK,                      /* flooder: spin a few microseconds */
    S_ECHO,                      /* server: reply now */
    S_IGNORE,                    /* server: never reply */
    S_LATE,                      /* server: reply after arg ms */
    S_LATE_FIRE,                 /* server, internal: the late reply is due */
    S_DIE_LATER,                 /* server: exit with arg2 after arg ms, without replying */
    S_DIE_NOW,                   /* server, internal */
    S_CALL,                      /* caller: rt_call(arg) and reply the ref */
    S_OUTCOME,                   /* caller -> test: what arrived (outcome_t) */
    S_TIMER,                     /* a timer message with an index */
    S_SHUTDOWN_PING,
};

static void start1(void) { rt_test_start_n(1); }
static void start2(void) { rt_test_start_n(2); }
static void stop(void) { rt_test_stop(); }

/* ------------------------------------------------------------------ pids never alias */

static int counter_handle(void *st, rt_msg_t *m)
{
    uint64_t *n = st;
    if (m->type == S_HIT)
        (*n)++;
    else if (m->type == S_COUNT)
        rt_reply(rt_call_from(m), rt_test_u64_msg(S_COUNT, *n));
    return RT_CONTINUE;
}
static const rt_behaviour_t counter_beh = {.name = "counter", .state_size = sizeof(uint64_t), .handle = counter_handle};

static int factory_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == S_SPAWN) {
        rt_pid_t p = RT_NOPID;
        RT_ASSERT(rt_spawn(&counter_beh, NULL, &p) == 0);
        rt_reply(rt_call_from(m), rt_msg_copy(S_SPAWN, &p, sizeof p));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t factory_beh = {.name = "factory", .handle = factory_handle};

TestSuite(rt_sched1, .init = start1, .fini = stop, .timeout = 60);

/* With one scheduler, a process that spawns right after a child died on the same thread
 * gets the child's slot back: the new pid differs (serial), the old pid is dead, and sends
 * to it never reach the new process. */
Test(rt_sched1, pids_never_alias_a_dead_process)
{
    rt_pid_t factory;
    cr_assert_eq(rt_spawn(&factory_beh, NULL, &factory), 0);
    enum { N = 2000, OLD = 64 };
    rt_pid_t old[OLD];
    unsigned nold = 0, reused = 0;
    for (unsigned i = 0; i < N; i++) {
        rt_msg_t *r = NULL;
        cr_assert_eq(rt_call_sync(factory, rt_msg_new(S_SPAWN, 0), 5000, &r, NULL), 0);
        rt_pid_t p;
        memcpy(&p, r->data, sizeof p);
        rt_msg_free(r);
        cr_assert(rt_is_alive(p));
        for (unsigned k = 0; k < nold; k++) {
            cr_assert(!rt_pid_eq(old[k], p), "a pid was handed out twice");
            if (old[k].id == p.id)
                reused++;
            cr_assert(!rt_is_alive(old[k]));
            cr_assert_eq(rt_send(old[k], rt_msg_new(S_HIT, 0)), RT_ENOPROC);
            cr_assert_eq(rt_link(old[k]), RT_ENOPROC);
            rt_msg_t *ex = rt_test_recv_type(RT_MSG_EXIT, 5000); /* the noproc exit */
            cr_assert_not_null(ex);
            rt_msg_free(ex);
            cr_assert_eq(rt_register("alias-test", old[k]), RT_ENOPROC);
            cr_assert_eq(rt_exit_signal(old[k], RT_R_KILL), RT_ENOPROC);
        }
        cr_assert_eq(rt_test_call_u64(p, S_COUNT), 0, "a message for an old pid reached the new process");
        rt_send(p, rt_msg_new(S_HIT, 0));
        cr_assert_eq(rt_test_call_u64(p, S_COUNT), 1);
        rt_ref_t ref = rt_monitor(p);
        if (i % 2)
            rt_exit_signal(p, RT_R_KILL);
        else
            rt_exit_signal(p, RT_REASON_USER);
        cr_assert_geq(rt_test_wait_down(ref, 5000), 0);
        if (nold < OLD)
            old[nold++] = p;
        else
            old[i % OLD] = p;
    }
    cr_assert_gt(reused, N / 4, "slots were not reused (%u): the test proves nothing", reused);
}

/* ------------------------------------------------------------------ batch limit */

static atomic_uint_fast64_t g_flood_done;
static int flooder_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == S_WORK) {
        uint64_t end = rt_now_ns() + 5000;
        while (rt_now_ns() < end)
            ;
        atomic_fetch_add(&g_flood_done, 1);
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t flooder_beh = {.name = "flooder", .handle = flooder_handle};

/* One scheduler, a process with 10^5 messages queued (0.5 s of work): calls to another
 * process complete quickly, long before the flood is drained. Without the batch limit the
 * probe would wait for the whole backlog. */
Test(rt_sched1, batch_limit_keeps_a_flooded_process_from_starving_others)
{
    rt_pid_t flooder, probe;
    cr_assert_eq(rt_spawn(&flooder_beh, NULL, &flooder), 0);
    cr_assert_eq(rt_spawn(&counter_beh, NULL, &probe), 0);
    atomic_store(&g_flood_done, 0);
    enum { N = 100000 };
    for (unsigned i = 0; i < N; i++)
        rt_send(flooder, rt_msg_new(S_WORK, 0));
    for (int i = 0; i < 20; i++) {
        uint64_t t0 = rt_now_ns();
        rt_test_call_u64(probe, S_COUNT);
        uint64_t dt = rt_now_ns() - t0;
        uint64_t done = atomic_load(&g_flood_done);
        cr_assert_lt(done, N, "the probe's call waited for the whole flood");
        cr_assert_lt(dt, 1000000000ull, "call %d took %llu us behind the flood", i,
                     (unsigned long long)(dt / 1000));
    }
    uint64_t deadline = rt_now_ns() + 30000000000ull;
    while (atomic_load(&g_flood_done) < N && rt_now_ns() < deadline)
        usleep(1000);
    cr_assert_eq(atomic_load(&g_flood_done), N);
}

/* ------------------------------------------------------------------ calls from processes */

typedef struct { uint32_t cmd; uint32_t ms; int32_t reason; uint32_t pad; rt_pid_t to; uint32_t timeout; } call_cmd_t;
typedef struct { uint64_t ref; uint32_t type; uint32_t flags; int32_t reason; uint32_t pad; uint64_t value; } outcome_t;

typedef struct { rt_from_t late; int die_reason; } server_t;
static int server_handle(void *st, rt_msg_t *m)
{
    server_t *s = st;
    switch (m->type) {
    case S_ECHO:
        rt_reply(rt_call_from(m), rt_test_u64_msg(S_ECHO, rt_test_u64_of(m) + 1));
        break;
    case S_LATE:
        s->late = rt_call_from(m);
        rt_send_after((uint32_t)rt_test_u64_of(m), rt_self(), rt_msg_new(S_LATE_FIRE, 0));
        break;
    case S_LATE_FIRE:
        rt_reply(s->late, rt_test_u64_msg(S_LATE, 42));
        break;
    case S_DIE_LATER: {
        uint64_t v = rt_test_u64_of(m);
        s->die_reason = (int)(v >> 32);
        rt_send_after((uint32_t)v, rt_self(), rt_msg_new(S_DIE_NOW, 0));
        break;
    }
    case S_DIE_NOW:
        rt_exit(s->die_reason);
    default:
        break;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t server_beh = {.name = "server", .state_size = sizeof(server_t), .handle = server_handle};

/* The caller: S_CALL makes an async call described by call_cmd_t (the request carries
 * arg in its payload) and answers with the ref; everything else that arrives is reported
 * to the owner as an S_OUTCOME. */
typedef struct { rt_pid_t owner; } caller_t;
static int caller_init(void *st, void *arg)
{
    ((caller_t *)st)->owner = *(rt_pid_t *)arg;
    return 0;
}
static int caller_handle(void *st, rt_msg_t *m)
{
    caller_t *c = st;
    if (m->type == S_CALL) {
        call_cmd_t *cc = (call_cmd_t *)(void *)m->data;
        uint64_t arg = ((uint64_t)(uint32_t)cc->reason << 32) | cc->ms;
        rt_ref_t ref = rt_call(cc->to, rt_test_u64_msg(cc->cmd, arg), cc->timeout);
        rt_reply(rt_call_from(m), rt_test_u64_msg(S_CALL, ref));
        return RT_CONTINUE;
    }
    outcome_t o = {.ref = m->ref, .type = m->type, .flags = m->flags};
    if (m->type == RT_MSG_CALL_FAILED) {
        rt_call_failed_t *f = (rt_call_failed_t *)(void *)m->data;
        o.ref = f->ref;
        o.reason = f->reason;
    } else if (m->size >= 8) {
        o.value = rt_test_u64_of(m);
    }
    rt_send(c->owner, rt_msg_copy(S_OUTCOME, &o, sizeof o));
    return RT_CONTINUE;
}
static const rt_behaviour_t caller_beh = {.name = "caller", .state_size = sizeof(caller_t),
                                          .init = caller_init, .handle = caller_handle};

static rt_ref_t async_call(rt_pid_t caller, uint32_t cmd, rt_pid_t to, uint32_t ms, int32_t reason, uint32_t timeout)
{
    call_cmd_t cc = {.cmd = cmd, .ms = ms, .reason = reason, .to = to, .timeout = timeout};
    rt_msg_t *r = NULL;
    cr_assert_eq(rt_call_sync(caller, rt_msg_copy(S_CALL, &cc, sizeof cc), 5000, &r, NULL), 0);
    rt_ref_t ref = rt_test_u64_of(r);
    rt_msg_free(r);
    cr_assert_neq(ref, 0);
    return ref;
}
static outcome_t next_outcome(uint32_t ms)
{
    rt_msg_t *m = rt_test_recv_type(S_OUTCOME, ms);
    cr_assert_not_null(m, "no outcome within %u ms: the call hangs", ms);
    outcome_t o;
    memcpy(&o, m->data, sizeof o);
    rt_msg_free(m);
    return o;
}

TestSuite(rt_sched, .init = start2, .fini = stop, .timeout = 60);

Test(rt_sched, async_call_reply_timeout_and_death)
{
    rt_pid_t self = rt_self(), caller, server;
    cr_assert_eq(rt_spawn(&caller_beh, &self, &caller), 0);
    cr_assert_eq(rt_spawn(&server_beh, NULL, &server), 0);

    /* reply: exactly one outcome, and the timer was cancelled (nothing after the timeout) */
    rt_ref_t ref = async_call(caller, S_ECHO, server, 41, 0, 100);
    outcome_t o = next_outcome(5000);
    cr_assert_eq(o.ref, ref);
    cr_assert(o.flags & RT_MSGF_REPLY);
    cr_assert_eq(o.type, S_ECHO);
    cr_assert_eq(o.value, 42);
    rt_test_expect_silence(250);

    /* no reply: RT_R_TIMEOUT */
    ref = async_call(caller, S_IGNORE, server, 0, 0, 50);
    o = next_outcome(5000);
    cr_assert_eq(o.type, RT_MSG_CALL_FAILED);
    cr_assert_eq(o.ref, ref);
    cr_assert_eq(o.reason, RT_R_TIMEOUT);

    /* a reply after the timeout is dropped */
    ref = async_call(caller, S_LATE, server, 200, 0, 50);
    o = next_outcome(5000);
    cr_assert_eq(o.type, RT_MSG_CALL_FAILED);
    cr_assert_eq(o.reason, RT_R_TIMEOUT);
    rt_test_expect_silence(400);

    /* ...and so is a DOWN after the timeout: the call's monitor is gone */
    rt_ref_t rs = rt_monitor(server);
    rt_exit_signal(server, RT_REASON_USER + 1);
    cr_assert_eq(rt_test_wait_down(rs, 5000), RT_REASON_USER + 1);
    rt_test_expect_silence(200);

    /* the target dies mid-call: CALL_FAILED with its reason, long before the timeout */
    cr_assert_eq(rt_spawn(&server_beh, NULL, &server), 0);
    uint64_t t0 = rt_now_ns();
    ref = async_call(caller, S_DIE_LATER, server, 50, RT_REASON_USER + 5, 10000);
    o = next_outcome(5000);
    cr_assert_eq(o.type, RT_MSG_CALL_FAILED);
    cr_assert_eq(o.ref, ref);
    cr_assert_eq(o.reason, RT_REASON_USER + 5);
    cr_assert_lt(rt_now_ns() - t0, 3000000000ull);

    /* a dead target: noproc */
    ref = async_call(caller, S_ECHO, server, 0, 0, 10000);
    o = next_outcome(5000);
    cr_assert_eq(o.type, RT_MSG_CALL_FAILED);
    cr_assert_eq(o.ref, ref);
    cr_assert_eq(o.reason, RT_R_NOPROC);
    rt_test_expect_silence(200);
}

/* Many concurrent calls from one process, some answered, some timing out, some to a target
 * that dies: every call ends in exactly one outcome. */
Test(rt_sched, many_concurrent_calls_each_end_exactly_once)
{
    rt_pid_t self = rt_self(), caller, echo, mute, doomed;
    cr_assert_eq(rt_spawn(&caller_beh, &self, &caller), 0);
    cr_assert_eq(rt_spawn(&server_beh, NULL, &echo), 0);
    cr_assert_eq(rt_spawn(&server_beh, NULL, &mute), 0);
    cr_assert_eq(rt_spawn(&server_beh, NULL, &doomed), 0);
    enum { N = 300 };
    rt_ref_t refs[N];
    for (unsigned i = 0; i < N; i++) {
        switch (i % 3) {
        case 0: refs[i] = async_call(caller, S_ECHO, echo, i, 0, 5000); break;
        case 1: refs[i] = async_call(caller, S_IGNORE, mute, 0, 0, 20 + i % 50); break;
        default: refs[i] = async_call(caller, S_IGNORE, doomed, 0, 0, 10000); break;
        }
    }
    rt_exit_signal(doomed, RT_REASON_USER + 6);
    unsigned seen[N] = {0};
    for (unsigned k = 0; k < N; k++) {
        outcome_t o = next_outcome(5000);
        unsigned i = 0;
        while (i < N && refs[i] != o.ref)
            i++;
        cr_assert_lt(i, N, "an outcome for an unknown ref");
        cr_assert_eq(seen[i]++, 0, "call %u ended twice", i);
        if (i % 3 == 0) {
            cr_assert(o.flags & RT_MSGF_REPLY);
            cr_assert_eq(o.value, i + 1);
        } else {
            cr_assert_eq(o.type, RT_MSG_CALL_FAILED);
            cr_assert_eq(o.reason, i % 3 == 1 ? RT_R_TIMEOUT : RT_REASON_USER + 6);
        }
    }
    rt_test_expect_silence(200);
}

/* ------------------------------------------------------------------ timers */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(rt_sched, timers_fire_in_deadline_order_never_early)
{
    enum { N = 200 };
    uint64_t lo[N], hi[N], seed = 0x1234567;
    rt_timer_t h[N];
    rt_pid_t self = rt_self();
    for (unsigned i = 0; i < N; i++) {
        uint32_t ms = 1 + (uint32_t)(rnd(&seed) % 300);
        lo[i] = rt_now_ns() + (uint64_t)ms * 1000000ull;
        h[i] = rt_send_after(ms, self, rt_test_u64_msg(S_TIMER, i));
        hi[i] = rt_now_ns() + (uint64_t)ms * 1000000ull;
        cr_assert_neq(h[i], 0);
    }
    int prev = -1;
    for (unsigned k = 0; k < N; k++) {
        rt_msg_t *m = rt_test_recv_type(S_TIMER, 5000);
        cr_assert_not_null(m, "timer %u of %u never fired", k, N);
        uint64_t now = rt_now_ns();
        unsigned i = (unsigned)rt_test_u64_of(m);
        rt_msg_free(m);
        cr_assert_geq(now, lo[i], "timer %u fired %llu us early", i, (unsigned long long)((lo[i] - now) / 1000));
        if (prev >= 0)
            cr_assert_geq(hi[i], lo[prev], "timer %u fired before timer %d with an earlier deadline", i, prev);
        prev = (int)i;
        cr_assert(!rt_cancel_timer(h[i]), "cancel after fire returned true");
    }
    rt_test_expect_silence(100);
    cr_assert(!rt_cancel_timer(0));
    cr_assert(!rt_cancel_timer(~0ull));
}

static atomic_int g_timer_frees;
static void timer_dtor(rt_msg_t *m)
{
    (void)m;
    atomic_fetch_add(&g_timer_frees, 1);
}

Test(rt_sched, cancelled_timers_never_deliver)
{
    enum { N = 3000 };
    static rt_timer_t h[N];
    static bool cancelled[N], got[N];
    uint64_t seed = 0xfeedbeef;
    rt_pid_t self = rt_self();
    unsigned ncancel = 0;
    atomic_store(&g_timer_frees, 0);
    for (unsigned i = 0; i < N; i++) {
        rt_msg_t *m = rt_test_u64_msg(S_TIMER, i);
        m->dtor = timer_dtor;
        h[i] = rt_send_after((uint32_t)(rnd(&seed) % 60), self, m);
        /* cancel a random earlier one: some have fired already, some not */
        unsigned j = (unsigned)(rnd(&seed) % (i + 1));
        if (!cancelled[j] && rnd(&seed) % 2 && rt_cancel_timer(h[j])) {
            cancelled[j] = true;
            ncancel++;
        }
    }
    cr_assert_eq(atomic_load(&g_timer_frees), (int)ncancel, "a cancel did not free the message");
    cr_assert_gt(ncancel, 100);
    for (unsigned k = 0; k < N - ncancel; k++) {
        rt_msg_t *m = rt_test_recv_type(S_TIMER, 5000);
        cr_assert_not_null(m, "only %u of %u live timers fired", k, N - ncancel);
        unsigned i = (unsigned)rt_test_u64_of(m);
        rt_msg_free(m);
        cr_assert(!cancelled[i], "cancelled timer %u delivered", i);
        cr_assert(!got[i], "timer %u delivered twice", i);
        got[i] = true;
    }
    rt_test_expect_silence(200);
    cr_assert_eq(atomic_load(&g_timer_frees), N);
    /* a timer to a process that dies first: its message is freed, not leaked (ASan) */
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&server_beh, NULL, &p), 0);
    rt_ref_t r = rt_monitor(p);
    rt_msg_t *m = rt_msg_new(S_TIMER, 0);
    m->dtor = timer_dtor;
    rt_send_after(30, p, m);
    rt_exit_signal(p, RT_R_KILL);
    cr_assert_eq(rt_test_wait_down(r, 5000), RT_R_KILLED);
    for (int i = 0; i < 2000 && atomic_load(&g_timer_frees) < N + 1; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&g_timer_frees), N + 1);
}

/* ------------------------------------------------------------------ registry */

Test(rt_sched, registry_register_whereis_unregister_and_reuse)
{
    rt_pid_t a, b;
    cr_assert_eq(rt_spawn(&counter_beh, NULL, &a), 0);
    cr_assert_eq(rt_spawn(&counter_beh, NULL, &b), 0);
    cr_assert(rt_pid_is_nil(rt_whereis("svc")));
    cr_assert_eq(rt_register("svc", a), 0);
    cr_assert(rt_pid_eq(rt_whereis("svc"), a));
    cr_assert_eq(rt_register("svc", b), RT_EEXIST);
    cr_assert_eq(rt_register("other", a), RT_EEXIST, "one name per process");
    cr_assert_eq(rt_register("", a), RT_EINVAL);
    cr_assert_eq(rt_register(NULL, a), RT_EINVAL);
    cr_assert_eq(rt_send_name(NULL, "svc", rt_msg_new(S_HIT, 0)), 0);
    cr_assert_eq(rt_test_call_u64(a, S_COUNT), 1);
    cr_assert_eq(rt_send_name(NULL, "nobody", rt_msg_new(S_HIT, 0)), RT_ENOPROC);

    cr_assert_eq(rt_unregister("svc"), 0);
    cr_assert_eq(rt_unregister("svc"), RT_ENOTFOUND);
    cr_assert(rt_pid_is_nil(rt_whereis("svc")));
    cr_assert_eq(rt_register("svc", b), 0);
    cr_assert_eq(rt_register("svc2", a), 0, "unregister did not free the process's name slot");
    cr_assert(rt_pid_eq(rt_whereis("svc"), b));

    /* the name dies with its process (any reason), and is free for a new one at once */
    rt_ref_t rb = rt_monitor(b);
    rt_exit_signal(b, RT_R_KILL);
    cr_assert_eq(rt_test_wait_down(rb, 5000), RT_R_KILLED);
    cr_assert(rt_pid_is_nil(rt_whereis("svc")));
    cr_assert_eq(rt_register("svc", b), RT_ENOPROC);
    rt_pid_t c;
    rt_spawn_opts_t o = {.name = "svc"};
    cr_assert_eq(rt_spawn_opt(&counter_beh, NULL, &o, &c), 0);
    cr_assert(rt_pid_eq(rt_whereis("svc"), c));
    uint32_t n = rt_process_count();
    rt_pid_t d = RT_NOPID;
    cr_assert_eq(rt_spawn_opt(&counter_beh, NULL, &o, &d), RT_EEXIST);
    cr_assert(rt_pid_is_nil(d));
    cr_assert_eq(rt_process_count(), n, "a spawn refused for its name left a process behind");
    cr_assert(rt_pid_eq(rt_whereis("svc"), c));
    rt_ref_t rc = rt_monitor(c);
    rt_exit_signal(c, RT_REASON_USER);
    cr_assert_eq(rt_test_wait_down(rc, 5000), RT_REASON_USER);
    cr_assert(rt_pid_is_nil(rt_whereis("svc")));
    cr_assert(rt_pid_eq(rt_whereis("svc2"), a));
}

/* ------------------------------------------------------------------ clean shutdown */

static atomic_int g_terms, g_root_term_reason, g_term_order, g_root_term_pos, g_released;
static void release_count(void *obj)
{
    (void)obj;
    atomic_fetch_add(&g_released, 1);
}
typedef struct { int is_root; int stubborn; } life_t;
static int life_init(void *st, void *arg)
{
    life_t *l = st;
    if (arg)
        *l = *(life_t *)arg;
    rt_own(release_count, NULL);
    return 0;
}
static int life_handle(void *st, rt_msg_t *m)
{
    life_t *l = st;
    if (m->type == RT_MSG_EXIT && l->is_root && !l->stubborn)
        rt_exit(((rt_exit_msg_t *)(void *)m->data)->reason); /* a supervisor's way */
    if (m->type == S_SHUTDOWN_PING && rt_is_call(m))
        rt_reply(rt_call_from(m), rt_test_u64_msg(S_SHUTDOWN_PING, 7));
    return RT_CONTINUE;
}
static void life_terminate(void *st, int reason)
{
    life_t *l = st;
    int pos = atomic_fetch_add(&g_term_order, 1);
    if (l->is_root) {
        atomic_store(&g_root_term_reason, reason);
        atomic_store(&g_root_term_pos, pos);
    }
    atomic_fetch_add(&g_terms, 1);
}
static const rt_behaviour_t life_beh = {.name = "life", .state_size = sizeof(life_t), .init = life_init,
                                        .handle = life_handle, .terminate = life_terminate};

static void *helper_thread(void *arg)
{
    rt_pid_t to = *(rt_pid_t *)arg;
    rt_msg_t *r = NULL;
    if (rt_call_sync(to, rt_msg_new(S_SHUTDOWN_PING, 0), 5000, &r, NULL) == 0)
        rt_msg_free(r);
    return NULL; /* exits without rt_thread_detach: its mailbox goes with the thread */
}

/* One cycle: a root plus live processes with owned resources, names, links, queued
 * messages and pending timers; rt_stop shuts the root down first (reason shutdown), kills
 * the rest, runs every terminate and release once, and frees everything (ASan's leak
 * check). Returns how long rt_stop took. */
static uint64_t life_cycle(bool stubborn_root)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    cr_assert_eq(rt_start(&c), 0);
    cr_assert(rt_running());
    atomic_store(&g_terms, 0);
    atomic_store(&g_released, 0);
    atomic_store(&g_term_order, 0);
    atomic_store(&g_root_term_reason, -1);
    atomic_store(&g_root_term_pos, -1);
    life_t root_cfg = {.is_root = 1, .stubborn = stubborn_root};
    rt_spawn_opts_t ro = {.trap_exit = true, .name = "root"};
    rt_pid_t root;
    cr_assert_eq(rt_spawn_opt(&life_beh, &root_cfg, &ro, &root), 0);
    rt_set_root(root);
    enum { N = 100 };
    rt_pid_t prev = root;
    for (int i = 0; i < N; i++) {
        rt_pid_t p;
        char name[32];
        snprintf(name, sizeof name, "life-%d", i);
        rt_spawn_opts_t o = {.name = name, .trap_exit = i % 2 == 0};
        cr_assert_eq(rt_spawn_opt(&life_beh, NULL, &o, &p), 0);
        for (int k = 0; k < 10; k++)
            rt_send(p, rt_msg_new(S_HIT, 64));
        rt_send_after(60000, p, rt_msg_new(S_HIT, 16));
        if (i % 3 == 0) {
            cr_assert_eq(rt_link(p), 0); /* this thread links too: it goes away first */
            rt_monitor(p);
        }
        prev = p;
    }
    rt_send_after(60000, rt_self(), rt_msg_new(S_HIT, 0));
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, helper_thread, &prev), 0);
    pthread_join(th, NULL);
    uint64_t t0 = rt_now_ns();
    rt_stop(300);
    uint64_t dt = rt_now_ns() - t0;
    cr_assert(!rt_running());
    cr_assert_eq(atomic_load(&g_terms), N + 1, "terminate ran %d times", atomic_load(&g_terms));
    cr_assert_eq(atomic_load(&g_released), N + 1);
    cr_assert_eq(atomic_load(&g_root_term_pos), 0, "the root was not shut down first");
    cr_assert_eq(atomic_load(&g_root_term_reason), stubborn_root ? RT_R_KILLED : RT_R_SHUTDOWN);
    rt_test_assert_no_leaks();
    return dt;
}

Test(rt_shutdown, stop_frees_everything_and_restarts, .timeout = 60)
{
    rt_log_set_level(RT_LOG_NONE);
    uint64_t dt = life_cycle(false);
    cr_assert_lt(dt, 2000000000ull);
    /* a second cycle in the same OS process, with a root that ignores shutdown (killed
     * after the shutdown timeout) */
    dt = life_cycle(true);
    cr_assert_lt(dt, 3000000000ull);
    /* and a third, plain one: the runtime is usable again */
    rt_test_start_n(2);
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&counter_beh, NULL, &p), 0);
    rt_send(p, rt_msg_new(S_HIT, 0));
    cr_assert_eq(rt_test_call_u64(p, S_COUNT), 1);
    rt_stop(1000);
    cr_assert(!rt_running());
    cr_assert(rt_pid_is_nil(rt_self()));
    rt_test_assert_no_leaks();
}
