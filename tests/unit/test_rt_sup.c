/*
 * test_rt_sup.c — supervisors (runtime/sup.h): restarts per strategy and restart type,
 * intensity and escalation through a nested tree, ordered shutdown with kill after the
 * timeout, the child-management requests (blocking and from inside a process),
 * simple_one_for_one with many dynamic children, and sustained restarts.
 *
 * Workers record "start:<tag>" / "stop:<tag>" in a shared, mutex-protected event log from
 * init and terminate, so tests can check which children were restarted and in what order.
 */
#include "runtime/rt.h"
#include "runtime/sup.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { T_CRASH = RT_MSG_USER + 1, T_STOP, T_GET, T_VALUE, T_GO, T_COUNTS, T_STARTED };

static void start(void)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    rt_log_set_level(RT_LOG_NONE); /* crashes and restarts are expected: keep output short */
    cr_assert_eq(rt_start(&c), 0);
}
static void stop(void) { rt_stop(2000); }

TestSuite(rt_sup, .init = start, .fini = stop, .timeout = 60);

/* ------------------------------------------------------------------ event log */

#define MAX_EVENTS 256
static pthread_mutex_t events_mx = PTHREAD_MUTEX_INITIALIZER;
static char events[MAX_EVENTS][32];
static int n_events;

static void event(const char *what, const char *tag)
{
    pthread_mutex_lock(&events_mx);
    if (n_events < MAX_EVENTS)
        snprintf(events[n_events++], sizeof events[0], "%s:%s", what, tag);
    pthread_mutex_unlock(&events_mx);
}

static void events_reset(void)
{
    pthread_mutex_lock(&events_mx);
    n_events = 0;
    pthread_mutex_unlock(&events_mx);
}

static void assert_events(const char *const *expected, int n)
{
    pthread_mutex_lock(&events_mx);
    char got[MAX_EVENTS * 12] = "";
    for (int i = 0; i < n_events; i++) {
        strncat(got, events[i], sizeof got - strlen(got) - 2);
        strcat(got, " ");
    }
    int count = n_events;
    bool same = count == n;
    for (int i = 0; same && i < n; i++)
        same = strcmp(events[i], expected[i]) == 0;
    pthread_mutex_unlock(&events_mx);
    cr_assert(same, "events: %s(%d, expected %d)", got, count, n);
}

/* ------------------------------------------------------------------ workers */

typedef struct worker_cfg {
    const char *tag;        /* event-log tag; NULL: no events */
    bool trap;              /* traps exits and ignores them: never stops on shutdown */
    atomic_int init_calls;  /* every init, failed or not */
    atomic_int inits;       /* successful inits */
    atomic_int fail_next;   /* so many next inits fail */
    atomic_int stops;
    atomic_int last_reason;
} worker_cfg_t;

typedef struct worker {
    worker_cfg_t *cfg;
    intptr_t value; /* dynamic children: *(int *)extra */
} worker_t;

static int worker_start(worker_t *w, worker_cfg_t *cfg)
{
    w->cfg = cfg;
    atomic_fetch_add(&cfg->init_calls, 1);
    int left = atomic_load(&cfg->fail_next);
    while (left > 0 && !atomic_compare_exchange_weak(&cfg->fail_next, &left, left - 1))
        ;
    if (left > 0)
        return RT_REASON_USER + 1;
    if (cfg->trap)
        rt_trap_exit(true);
    atomic_fetch_add(&cfg->inits, 1);
    if (cfg->tag)
        event("start", cfg->tag);
    return 0;
}

static int worker_init(void *state, void *arg) { return worker_start(state, arg); }

static int dyn_worker_init(void *state, void *arg)
{
    const rt_sup_dynamic_arg_t *d = arg;
    worker_t *w = state;
    w->value = *(const int *)d->extra;
    return worker_start(w, d->arg);
}

static int worker_handle(void *state, rt_msg_t *m)
{
    worker_t *w = state;
    switch (m->type) {
    case T_CRASH:
        return -1;
    case T_STOP:
        return RT_STOP;
    case T_GET:
        rt_reply(rt_call_from(m), rt_msg_copy(T_VALUE, &w->value, sizeof w->value));
        return RT_CONTINUE;
    default:
        return RT_CONTINUE; /* including RT_MSG_EXIT when trapping: ignored */
    }
}

static void worker_terminate(void *state, int reason)
{
    worker_t *w = state;
    atomic_fetch_add(&w->cfg->stops, 1);
    atomic_store(&w->cfg->last_reason, reason);
    if (w->cfg->tag)
        event("stop", w->cfg->tag);
}

static const rt_behaviour_t worker = {.name = "worker", .state_size = sizeof(worker_t),
                                      .init = worker_init, .handle = worker_handle,
                                      .terminate = worker_terminate};
static const rt_behaviour_t dyn_worker = {.name = "dyn_worker", .state_size = sizeof(worker_t),
                                          .init = dyn_worker_init, .handle = worker_handle,
                                          .terminate = worker_terminate};

static rt_sup_child_spec_t wspec(const char *id, worker_cfg_t *cfg, rt_sup_restart_t restart,
                                 uint32_t shutdown_ms)
{
    return (rt_sup_child_spec_t){.id = id, .behaviour = &worker, .arg = cfg, .restart = restart,
                                 .shutdown_ms = shutdown_ms};
}

/* ------------------------------------------------------------------ helpers */

static bool match_down(const rt_msg_t *m, void *ctx)
{
    return m->type == RT_MSG_DOWN && ((const rt_down_msg_t *)(const void *)m->data)->ref == *(rt_ref_t *)ctx;
}

/* The reason of monitor ref's DOWN, or -1 if none came within ms. */
static int wait_down(rt_ref_t ref, uint32_t ms)
{
    rt_msg_t *m = NULL;
    if (rt_receive_match(ms, match_down, &ref, &m) != 0)
        return -1;
    int reason = ((rt_down_msg_t *)(void *)m->data)->reason;
    rt_msg_free(m);
    return reason;
}

static bool match_type(const rt_msg_t *m, void *ctx) { return m->type == *(uint32_t *)ctx; }
static rt_msg_t *recv_type(uint32_t type, uint32_t ms)
{
    rt_msg_t *m = NULL;
    return rt_receive_match(ms, match_type, &type, &m) == 0 ? m : NULL;
}

/* Sends `type` to p and returns p's exit reason (-1: it did not exit within 5 s). Once this
 * returns, the supervisor has the child's EXIT queued before any later request of ours: the
 * exit path signals links before monitors. */
static int send_and_wait_exit(rt_pid_t p, uint32_t type)
{
    rt_ref_t ref = rt_monitor(p);
    rt_send(p, rt_msg_new(type, 0));
    return wait_down(ref, 5000);
}

static int kill_and_wait_exit(rt_pid_t p, int reason)
{
    rt_ref_t ref = rt_monitor(p);
    rt_exit_signal(p, reason);
    return wait_down(ref, 10000);
}

/* The pid of child `id` (RT_NOPID if not running); *found says whether the record exists. */
static rt_pid_t child_pid(rt_pid_t sup, const char *id, bool *found)
{
    rt_msg_t *reply;
    const rt_sup_children_t *list;
    cr_assert_eq(rt_sup_which_children(sup, &reply, &list), 0);
    rt_pid_t pid = RT_NOPID;
    bool hit = false;
    for (uint32_t i = 0; i < list->count; i++) {
        if (list->child[i].id && strcmp(list->child[i].id, id) == 0) {
            pid = list->child[i].pid;
            hit = true;
        }
    }
    rt_msg_free(reply);
    if (found)
        *found = hit;
    return pid;
}

static rt_pid_t running_child(rt_pid_t sup, const char *id)
{
    rt_pid_t p = child_pid(sup, id, NULL);
    cr_assert(!rt_pid_is_nil(p) && rt_is_alive(p), "child %s is not running", id);
    return p;
}

static intptr_t get_value(rt_pid_t p)
{
    rt_msg_t *reply = NULL;
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_GET, 0), 5000, &reply, NULL), 0);
    intptr_t v = *(intptr_t *)(void *)reply->data;
    rt_msg_free(reply);
    return v;
}

static rt_sup_spec_t sup_spec(rt_sup_strategy_t strategy, uint32_t intensity,
                              const rt_sup_child_spec_t *children, size_t n)
{
    return (rt_sup_spec_t){.strategy = strategy, .intensity = intensity, .period_ms = 60000,
                           .children = children, .nchildren = n};
}

/* ------------------------------------------------------------------ restarts */

Test(rt_sup, crash_in_child_restarts_it_and_leaves_siblings_running)
{
    static worker_cfg_t a, b, c;
    rt_sup_child_spec_t kids[] = {wspec("a", &a, RT_SUP_PERMANENT, 1000),
                                  wspec("b", &b, RT_SUP_PERMANENT, 1000),
                                  wspec("c", &c, RT_SUP_PERMANENT, 1000)};
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 10, kids, 3);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    rt_pid_t pa = running_child(sup, "a"), pb = running_child(sup, "b"), pc = running_child(sup, "c");

    cr_assert_eq(send_and_wait_exit(pb, T_CRASH), RT_R_CRASH);
    rt_pid_t pb2 = running_child(sup, "b");
    cr_assert(!rt_pid_eq(pb, pb2), "b was not restarted under a new pid");
    cr_assert_eq(atomic_load(&b.inits), 2, "b's init did not run again");
    get_value(pb2); /* the new b serves requests */
    cr_assert(rt_pid_eq(running_child(sup, "a"), pa));
    cr_assert(rt_pid_eq(running_child(sup, "c"), pc));
    cr_assert_eq(atomic_load(&a.inits), 1);
    cr_assert_eq(atomic_load(&c.inits), 1);
    cr_assert_eq(atomic_load(&a.stops) + atomic_load(&c.stops), 0);
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
}

/* Crashes inner's worker until inner exceeds its intensity (2 restarts allowed). */
static void exhaust_inner(rt_pid_t inner)
{
    for (int i = 0; i < 3; i++)
        cr_assert_eq(send_and_wait_exit(running_child(inner, "w"), T_CRASH), RT_R_CRASH);
}

Test(rt_sup, intensity_exceeded_escalates_to_the_parent)
{
    static worker_cfg_t w, s;
    rt_sup_child_spec_t inner_kids[] = {wspec("w", &w, RT_SUP_PERMANENT, 1000)};
    rt_sup_spec_t inner = sup_spec(RT_SUP_ONE_FOR_ONE, 2, inner_kids, 1);
    inner.name = "inner_sup";
    rt_sup_child_spec_t top_kids[] = {
        {.id = "inner", .behaviour = &rt_sup_behaviour, .arg = &inner,
         .restart = RT_SUP_PERMANENT, .shutdown_ms = RT_INFINITY},
        wspec("s", &s, RT_SUP_PERMANENT, 1000),
    };
    rt_sup_spec_t top_spec = sup_spec(RT_SUP_ONE_FOR_ONE, 1, top_kids, 2);
    rt_pid_t top;
    cr_assert_eq(rt_sup_start(&top_spec, &top), 0);

    /* inner gives up: exits with RT_R_SUP_INTENSITY, and top restarts it */
    rt_pid_t inner1 = running_child(top, "inner");
    cr_assert(rt_pid_eq(rt_whereis("inner_sup"), inner1));
    rt_ref_t mon = rt_monitor(inner1);
    exhaust_inner(inner1);
    cr_assert_eq(wait_down(mon, 5000), RT_R_SUP_INTENSITY);
    rt_pid_t inner2 = running_child(top, "inner");
    cr_assert(!rt_pid_eq(inner1, inner2));
    cr_assert(rt_pid_eq(rt_whereis("inner_sup"), inner2), "the restarted supervisor lost its name");
    running_child(inner2, "w");
    cr_assert_eq(atomic_load(&w.inits), 4, "1 start + 2 restarts + 1 start by the new inner");
    cr_assert_eq(atomic_load(&s.inits), 1, "the sibling of inner was touched");

    /* again: top's intensity (1) is exceeded too, it stops s and exits the same way */
    rt_ref_t top_mon = rt_monitor(top);
    mon = rt_monitor(inner2);
    exhaust_inner(inner2);
    cr_assert_eq(wait_down(mon, 5000), RT_R_SUP_INTENSITY);
    cr_assert_eq(wait_down(top_mon, 5000), RT_R_SUP_INTENSITY);
    cr_assert_eq(atomic_load(&s.stops), 1);
    cr_assert_eq(atomic_load(&s.last_reason), RT_R_SHUTDOWN);
}

/* Four logged children under `strategy`; crashes b and checks the event log. */
static void group_restart_case(rt_sup_strategy_t strategy, const char *const *expected, int n,
                               bool a_restarted)
{
    static worker_cfg_t a, b, c, d;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c), memset(&d, 0, sizeof d);
    a.tag = "a", b.tag = "b", c.tag = "c", d.tag = "d";
    rt_sup_child_spec_t kids[] = {
        wspec("a", &a, RT_SUP_PERMANENT, 1000), wspec("b", &b, RT_SUP_PERMANENT, 1000),
        wspec("c", &c, RT_SUP_PERMANENT, 1000), wspec("d", &d, RT_SUP_PERMANENT, 1000)};
    rt_sup_spec_t spec = sup_spec(strategy, 10, kids, 4);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    rt_pid_t before[4], after[4];
    const char *ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        before[i] = running_child(sup, ids[i]);
    events_reset();

    cr_assert_eq(send_and_wait_exit(before[1], T_CRASH), RT_R_CRASH);
    /* requests wait while the group's terminations run: this reply comes after the restart */
    for (int i = 0; i < 4; i++)
        after[i] = running_child(sup, ids[i]);
    assert_events(expected, n);
    cr_assert_eq(rt_pid_eq(before[0], after[0]), !a_restarted);
    for (int i = 1; i < 4; i++)
        cr_assert(!rt_pid_eq(before[i], after[i]), "%s was not restarted", ids[i]);
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
}

Test(rt_sup, one_for_all_restarts_every_child_in_order)
{
    static const char *const expected[] = {"stop:b", "stop:d", "stop:c", "stop:a",
                                           "start:a", "start:b", "start:c", "start:d"};
    group_restart_case(RT_SUP_ONE_FOR_ALL, expected, 8, true);
}

Test(rt_sup, rest_for_one_restarts_the_crashed_child_and_later_ones)
{
    static const char *const expected[] = {"stop:b", "stop:d", "stop:c",
                                           "start:b", "start:c", "start:d"};
    group_restart_case(RT_SUP_REST_FOR_ONE, expected, 6, false);
}

Test(rt_sup, restart_types_permanent_transient_temporary)
{
    static worker_cfg_t perm, trans, temp;
    rt_sup_child_spec_t kids[] = {wspec("perm", &perm, RT_SUP_PERMANENT, 1000),
                                  wspec("trans", &trans, RT_SUP_TRANSIENT, 1000),
                                  wspec("temp", &temp, RT_SUP_TEMPORARY, 1000)};
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 10, kids, 3);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    bool found;

    /* temporary: never restarted, and its spec is gone */
    cr_assert_eq(send_and_wait_exit(running_child(sup, "temp"), T_CRASH), RT_R_CRASH);
    child_pid(sup, "temp", &found);
    cr_assert(!found, "a temporary child was kept");
    cr_assert_eq(atomic_load(&temp.init_calls), 1);

    /* transient: restarted after a crash, not after a normal exit */
    cr_assert_eq(send_and_wait_exit(running_child(sup, "trans"), T_CRASH), RT_R_CRASH);
    rt_pid_t t2 = running_child(sup, "trans");
    cr_assert_eq(atomic_load(&trans.inits), 2);
    cr_assert_eq(send_and_wait_exit(t2, T_STOP), RT_R_NORMAL);
    rt_pid_t t3 = child_pid(sup, "trans", &found);
    cr_assert(found && rt_pid_is_nil(t3), "a transient child that ended normally was restarted");
    cr_assert_eq(atomic_load(&trans.init_calls), 2);

    /* permanent: restarted even after a normal exit */
    cr_assert_eq(send_and_wait_exit(running_child(sup, "perm"), T_STOP), RT_R_NORMAL);
    running_child(sup, "perm");
    cr_assert_eq(atomic_load(&perm.inits), 2);
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
}

Test(rt_sup, failed_init_on_restart_is_retried_through_the_intensity)
{
    static worker_cfg_t f;
    rt_sup_child_spec_t kids[] = {wspec("f", &f, RT_SUP_PERMANENT, 1000)};
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 5, kids, 1);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    rt_ref_t mon = rt_monitor(sup);

    /* two failed restarts, then one that works: 3 restarts counted, the child runs */
    atomic_store(&f.fail_next, 2);
    cr_assert_eq(send_and_wait_exit(running_child(sup, "f"), T_CRASH), RT_R_CRASH);
    rt_pid_t p = RT_NOPID;
    for (int i = 0; i < 500 && rt_pid_is_nil(p); i++) {
        p = child_pid(sup, "f", NULL);
        if (rt_pid_is_nil(p))
            usleep(2000);
    }
    cr_assert(!rt_pid_is_nil(p) && rt_is_alive(p), "the retries never started the child");
    cr_assert_eq(atomic_load(&f.init_calls), 4);

    /* a child that can never start: more than 5 attempts in the period end the supervisor */
    atomic_store(&f.fail_next, 1000000);
    cr_assert_eq(send_and_wait_exit(p, T_CRASH), RT_R_CRASH);
    cr_assert_eq(wait_down(mon, 5000), RT_R_SUP_INTENSITY);
    /* restarts 4 and 5 are attempted (and fail); the 6th exceeds the intensity */
    cr_assert_eq(atomic_load(&f.init_calls), 4 + 2, "attempts: %d", atomic_load(&f.init_calls));
}

/* ------------------------------------------------------------------ shutdown */

Test(rt_sup, ordered_shutdown_in_reverse_and_kills_a_child_that_ignores_it)
{
    static worker_cfg_t a = {.tag = "a"}, stub = {.tag = "stub", .trap = true}, c = {.tag = "c"};
    rt_sup_child_spec_t kids[] = {wspec("a", &a, RT_SUP_PERMANENT, 5000),
                                  wspec("stub", &stub, RT_SUP_PERMANENT, 300),
                                  wspec("c", &c, RT_SUP_PERMANENT, 5000)};
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 10, kids, 3);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    events_reset();

    uint64_t t0 = rt_now_ns();
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
    uint64_t waited_ms = (rt_now_ns() - t0) / 1000000;
    static const char *const expected[] = {"stop:c", "stop:stub", "stop:a"};
    assert_events(expected, 3);
    cr_assert_eq(atomic_load(&stub.last_reason), RT_R_KILLED, "the stubborn child was not killed");
    cr_assert_eq(atomic_load(&a.last_reason), RT_R_SHUTDOWN);
    cr_assert_eq(atomic_load(&c.last_reason), RT_R_SHUTDOWN);
    cr_assert_geq(waited_ms, 250, "killed before its shutdown timeout (%llu ms)",
                  (unsigned long long)waited_ms);
}

/* ------------------------------------------------------------------ requests */

/* A process that makes asynchronous requests to a supervisor and reports to the test. */
typedef struct client {
    rt_pid_t test, sup;
    rt_ref_t count_ref, start_ref;
} client_t;

static int client_init(void *state, void *arg)
{
    *(client_t *)state = *(client_t *)arg;
    return 0;
}

static int client_handle(void *state, rt_msg_t *m)
{
    client_t *cl = state;
    static worker_cfg_t dyn_cfg;
    if (m->type == T_GO) {
        char id[16]; /* on this stack: the request must carry its own copy */
        snprintf(id, sizeof id, "from-proc");
        rt_sup_child_spec_t spec = wspec(id, &dyn_cfg, RT_SUP_PERMANENT, 1000);
        cl->start_ref = rt_call(cl->sup, rt_sup_req_start_child(&spec), 5000);
        memset(id, 'x', sizeof id - 1);
        cl->count_ref = rt_call(cl->sup, rt_sup_req_count_children(), 5000);
    } else if ((m->flags & RT_MSGF_REPLY) && m->ref == cl->start_ref && rt_sup_result_of(m)) {
        rt_send(cl->test, rt_msg_copy(T_STARTED, rt_sup_result_of(m), sizeof(rt_sup_result_t)));
    } else if ((m->flags & RT_MSGF_REPLY) && m->ref == cl->count_ref && rt_sup_counts_of(m)) {
        rt_send(cl->test, rt_msg_copy(T_COUNTS, rt_sup_counts_of(m), sizeof(rt_sup_counts_t)));
    }
    return RT_CONTINUE;
}

static const rt_behaviour_t client = {.name = "client", .state_size = sizeof(client_t),
                                      .init = client_init, .handle = client_handle};

Test(rt_sup, child_management_requests)
{
    static worker_cfg_t a, b, fail, stub = {.trap = true}, sw;
    rt_sup_child_spec_t kids[] = {wspec("a", &a, RT_SUP_PERMANENT, 1000)};
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 10, kids, 1);
    rt_pid_t sup, pb, p;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);

    /* start_child: new id works, duplicate id refused, failing init reported and not kept */
    rt_sup_child_spec_t bs = wspec("b", &b, RT_SUP_PERMANENT, 1000);
    cr_assert_eq(rt_sup_start_child(sup, &bs, &pb), 0);
    cr_assert(rt_is_alive(pb) && rt_pid_eq(running_child(sup, "b"), pb));
    cr_assert_eq(rt_sup_start_child(sup, &bs, &p), RT_EEXIST);
    atomic_store(&fail.fail_next, 1);
    rt_sup_child_spec_t fs = wspec("fail", &fail, RT_SUP_PERMANENT, 1000);
    cr_assert_eq(rt_sup_start_child(sup, &fs, &p), RT_EINITFAIL);
    bool found;
    child_pid(sup, "fail", &found);
    cr_assert(!found);

    /* a child supervisor from a spec on this stack (copied), counted as a supervisor */
    {
        char sub_id[8] = "sub";
        rt_sup_child_spec_t sub_kids[] = {wspec("sw", &sw, RT_SUP_PERMANENT, 1000)};
        rt_sup_spec_t sub = sup_spec(RT_SUP_ONE_FOR_ONE, 10, sub_kids, 1);
        rt_sup_child_spec_t subs = {.id = sub_id, .behaviour = &rt_sup_behaviour, .arg = &sub,
                                    .restart = RT_SUP_PERMANENT, .shutdown_ms = RT_INFINITY};
        cr_assert_eq(rt_sup_start_child(sup, &subs, &p), 0);
        memset(sub_kids, 0, sizeof sub_kids);
        memset(sub_id, 0, sizeof sub_id);
    }
    rt_sup_counts_t n;
    cr_assert_eq(rt_sup_count_children(sup, &n), 0);
    cr_assert_eq(n.specs, 3);
    cr_assert_eq(n.active, 3);
    cr_assert_eq(n.supervisors, 1);
    cr_assert_eq(n.workers, 2);
    rt_pid_t sub_pid = running_child(sup, "sub");
    running_child(sub_pid, "sw");

    /* terminate_child keeps the record; restart_child starts it again */
    cr_assert_eq(rt_sup_terminate_child(sup, "b"), 0);
    cr_assert(!rt_is_alive(pb));
    cr_assert_eq(atomic_load(&b.last_reason), RT_R_SHUTDOWN);
    cr_assert(rt_pid_is_nil(child_pid(sup, "b", &found)) && found);
    cr_assert_eq(rt_sup_restart_child(sup, "a", &p), RT_ESTATE);
    cr_assert_eq(rt_sup_restart_child(sup, "b", &p), 0);
    cr_assert(rt_is_alive(p) && !rt_pid_eq(p, pb));
    cr_assert_eq(atomic_load(&b.inits), 2);

    /* delete_child: only when not running */
    cr_assert_eq(rt_sup_delete_child(sup, "b"), RT_ESTATE);
    cr_assert_eq(rt_sup_terminate_child(sup, "b"), 0);
    cr_assert_eq(rt_sup_delete_child(sup, "b"), 0);
    child_pid(sup, "b", &found);
    cr_assert(!found);
    cr_assert_eq(rt_sup_delete_child(sup, "b"), RT_ENOTFOUND);
    cr_assert_eq(rt_sup_terminate_child(sup, "nope"), RT_ENOTFOUND);
    cr_assert_eq(rt_sup_start_dynamic_child(sup, NULL, NULL, &p), RT_ENOTSUP);

    /* terminate_child of a child that ignores shutdown: killed after its timeout */
    rt_sup_child_spec_t ss = wspec("stub", &stub, RT_SUP_PERMANENT, 200);
    rt_pid_t pstub;
    cr_assert_eq(rt_sup_start_child(sup, &ss, &pstub), 0);
    cr_assert_eq(rt_sup_terminate_child_pid(sup, pstub), 0);
    cr_assert(!rt_is_alive(pstub));
    cr_assert_eq(atomic_load(&stub.last_reason), RT_R_KILLED);

    /* the asynchronous form, from inside a process */
    client_t init = {.test = rt_self(), .sup = sup};
    rt_pid_t cl;
    cr_assert_eq(rt_spawn(&client, &init, &cl), 0);
    rt_send(cl, rt_msg_new(T_GO, 0));
    rt_msg_t *m = recv_type(T_STARTED, 5000);
    cr_assert_not_null(m);
    const rt_sup_result_t *r = (const rt_sup_result_t *)(const void *)m->data;
    cr_assert_eq(r->rc, 0);
    cr_assert(rt_pid_eq(running_child(sup, "from-proc"), r->pid));
    rt_msg_free(m);
    m = recv_type(T_COUNTS, 5000);
    cr_assert_not_null(m);
    const rt_sup_counts_t *cn = (const rt_sup_counts_t *)(const void *)m->data;
    cr_assert_eq(cn->specs, 4); /* a, sub, stub (stopped), from-proc */
    cr_assert_eq(cn->active, 3);
    rt_msg_free(m);

    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
    cr_assert(!rt_is_alive(sub_pid));
    cr_assert_eq(atomic_load(&sw.last_reason), RT_R_SHUTDOWN);
}

static atomic_int extras_freed;
static void free_extra(void *extra)
{
    atomic_fetch_add(&extras_freed, 1);
    free(extra);
}

Test(rt_sup, simple_one_for_one_with_1000_dynamic_children)
{
    enum { N = 1000 };
    static worker_cfg_t dyn;
    static rt_pid_t pids[N];
    rt_sup_child_spec_t tmpl = {.behaviour = &dyn_worker, .arg = &dyn,
                                .restart = RT_SUP_PERMANENT, .shutdown_ms = 1000};
    rt_sup_spec_t spec = sup_spec(RT_SUP_SIMPLE_ONE_FOR_ONE, 10, &tmpl, 1);
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);
    for (int i = 0; i < N; i++) {
        int *extra = malloc(sizeof *extra);
        *extra = i;
        cr_assert_eq(rt_sup_start_dynamic_child(sup, extra, free_extra, &pids[i]), 0);
    }
    rt_sup_counts_t n;
    cr_assert_eq(rt_sup_count_children(sup, &n), 0);
    cr_assert_eq(n.specs, N);
    cr_assert_eq(n.active, N);
    cr_assert_eq(get_value(pids[777]), 777);

    /* a crashed dynamic child comes back with the same extra, in the same place */
    cr_assert_eq(send_and_wait_exit(pids[500], T_CRASH), RT_R_CRASH);
    rt_msg_t *reply;
    const rt_sup_children_t *list;
    cr_assert_eq(rt_sup_which_children(sup, &reply, &list), 0);
    cr_assert_eq(list->count, N);
    rt_pid_t p500 = list->child[500].pid;
    cr_assert_null(list->child[500].id);
    rt_msg_free(reply);
    cr_assert(!rt_pid_eq(p500, pids[500]) && rt_is_alive(p500));
    cr_assert_eq(get_value(p500), 500);

    /* terminate_child by pid removes it; the static-child operations do not apply */
    cr_assert_eq(rt_sup_terminate_child_pid(sup, pids[10]), 0);
    cr_assert(!rt_is_alive(pids[10]));
    cr_assert_eq(atomic_load(&extras_freed), 1, "extras freed: %d", atomic_load(&extras_freed));
    cr_assert_eq(rt_sup_count_children(sup, &n), 0);
    cr_assert_eq(n.specs, N - 1);
    cr_assert_eq(rt_sup_restart_child(sup, "x", NULL), RT_ENOTSUP);
    cr_assert_eq(rt_sup_delete_child(sup, "x"), RT_ENOTSUP);
    rt_sup_child_spec_t other = wspec("x", &dyn, RT_SUP_PERMANENT, 0);
    cr_assert_eq(rt_sup_start_child(sup, &other, NULL), RT_ENOTSUP);

    /* shutdown stops all of them and releases every extra exactly once */
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
    cr_assert_eq(atomic_load(&dyn.stops), N + 1); /* + the crash */
    cr_assert_eq(atomic_load(&extras_freed), N);
    for (int i = 0; i < N; i++)
        cr_assert(!rt_is_alive(pids[i]));
}

/* ------------------------------------------------------------------ sustained restarts */

Test(rt_sup, sustained_restarts_of_random_children_of_a_1000_child_supervisor)
{
    enum { N = 1000, KILLS = 20000, PER_ROUND = 250 };
    static worker_cfg_t w;
    static rt_sup_child_spec_t kids[N];
    static char ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "w%u", (unsigned)i % N);
        kids[i] = wspec(ids[i], &w, RT_SUP_PERMANENT, 1000);
    }
    rt_sup_spec_t spec = sup_spec(RT_SUP_ONE_FOR_ONE, 1000000, kids, N);
    spec.period_ms = 1000;
    rt_pid_t sup;
    cr_assert_eq(rt_sup_start(&spec, &sup), 0);

    static int order[N];
    static rt_ref_t mons[PER_ROUND];
    for (int i = 0; i < N; i++)
        order[i] = i;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int kills = 0;
    for (int round = 0; kills < KILLS && round < 10 * KILLS / PER_ROUND; round++) {
        rt_msg_t *reply;
        const rt_sup_children_t *list;
        cr_assert_eq(rt_sup_which_children(sup, &reply, &list), 0);
        cr_assert_eq(list->count, N);
        int nv = 0;
        for (int k = 0; k < PER_ROUND && kills + nv < KILLS; k++) { /* distinct picks */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int j = k + (int)(rng % (uint64_t)(N - k));
            int t = order[k];
            order[k] = order[j], order[j] = t;
            rt_pid_t p = list->child[order[k]].pid;
            if (rt_pid_is_nil(p))
                continue;
            mons[nv] = rt_monitor(p);
            if (rt_exit_signal(p, RT_R_KILL) == 0)
                nv++;
            else
                rt_demonitor(mons[nv], RT_DEMONITOR_FLUSH);
        }
        rt_msg_free(reply);
        /* every victim is dead before the next listing, so none is killed twice */
        for (int k = 0; k < nv; k++)
            cr_assert_eq(wait_down(mons[k], 10000), RT_R_KILLED);
        kills += nv;
    }
    cr_assert_eq(kills, KILLS);

    rt_msg_t *reply;
    const rt_sup_children_t *list;
    cr_assert_eq(rt_sup_which_children(sup, &reply, &list), 0);
    cr_assert_eq(list->count, N);
    for (uint32_t i = 0; i < list->count; i++)
        cr_assert(!rt_pid_is_nil(list->child[i].pid) && rt_is_alive(list->child[i].pid),
                  "child %u is not running", i);
    rt_msg_free(reply);
    cr_assert_eq(atomic_load(&w.inits), N + KILLS);
    cr_assert_eq(kill_and_wait_exit(sup, RT_R_SHUTDOWN), RT_R_SHUTDOWN);
}
