/*
 * sup.h — supervisors (prefix rt_sup_): OTP's supervisor behaviour on top of rt.h.
 *
 * Supervisors
 * ===========
 * A supervisor is an ordinary process (behaviour rt_sup_behaviour) with trap_exit on,
 * linked to every child it starts. It starts its children in spec order inside its own
 * init, so rt_sup_start returns once the whole tree below it is up.
 *
 * Strategies (what happens when a child exits and must be restarted):
 *   RT_SUP_ONE_FOR_ONE         only that child is restarted;
 *   RT_SUP_ONE_FOR_ALL         all other running children are terminated (reverse start
 *                              order), then every child of the group is started again in order;
 *   RT_SUP_REST_FOR_ONE        the children started after it are terminated (reverse order),
 *                              then it and they are started again in order;
 *   RT_SUP_SIMPLE_ONE_FOR_ONE  one_for_one over dynamic children that all come from one
 *                              template (spec.children[0]); none is started at init.
 * A group restart starts the children that were running when it began (plus the one that
 * exited); children stopped with terminate_child, or transient ones that ended normally, stay
 * stopped. Temporary children caught in a group restart are removed, as in OTP.
 *
 * Restart types: RT_SUP_PERMANENT is always restarted; RT_SUP_TRANSIENT only after an
 * abnormal exit (any reason but RT_R_NORMAL and RT_R_SHUTDOWN); RT_SUP_TEMPORARY never — its
 * spec is removed when it exits. A dynamic (simple_one_for_one) child that is not restarted
 * is removed too.
 *
 * Intensity: more than `intensity` restarts within `period_ms` make the supervisor terminate
 * all its children (reverse start order, each per its shutdown) and exit with
 * RT_R_SUP_INTENSITY, which reaches its parent through the link: a parent supervisor then
 * restarts it like any child, or exceeds its own intensity. The restart history is a ring
 * of timestamps pruned by age: O(1) amortised per restart however long the node runs.
 * A child whose init fails during a restart counts as one more restart attempt; the
 * supervisor retries through a message to itself (never a loop inside one handler), so a
 * child that can never start ends in RT_R_SUP_INTENSITY, not in a busy scheduler.
 *
 * Shutdown of a child: `shutdown_ms` = RT_SUP_BRUTAL_KILL (0): exit(kill) at once; a
 * timeout: exit(shutdown), and exit(kill) if it has not exited after that many ms;
 * RT_INFINITY: exit(shutdown) and wait (use it for child supervisors). The supervisor
 * monitors and unlinks the child first (OTP's way), so it always learns of the exit.
 * Shutdowns never block a scheduler: they are a state machine driven by DOWN messages and
 * rt_send_after timers, one child at a time, in reverse start order. While one is in
 * progress, requests and unrelated child exits are deferred and handled afterwards in
 * arrival order.
 *
 * The supervisor itself shuts down (children in reverse order, then exits with the same
 * reason) on an exit signal from its parent (the process that started it) with any reason,
 * or on an exit signal with a reason other than RT_R_NORMAL from any process that is not
 * one of its children (e.g. rt_exit_signal(sup, RT_R_SHUTDOWN), which is what rt_stop sends
 * to the root). If its init fails (a child's init failed) the children already started are
 * killed in reverse order and rt_sup_start fails with RT_EINITFAIL.
 *
 * Ownership. rt_sup_start and every request copy what they are given: the spec array, each
 * child id string, the name, and — when a child's behaviour is rt_sup_behaviour — the child's
 * arg, which is then a `const rt_sup_spec_t *` copied deeply. Borrowed (must outlive the
 * supervisor; normally static): behaviour pointers and every other child `arg`, which the
 * supervisor passes to init at each (re)start and never frees. A dynamic child's `extra`
 * and its `free_extra` (rt_sup_start_dynamic_child) are taken by the request, even when the
 * start fails or the supervisor is gone: free_extra(extra) runs exactly once (if free_extra
 * is not NULL) when that child's record goes away (start failed, it exited and is not
 * restarted, terminate_child, the supervisor exited) or when an undelivered request is freed.
 * The same extra is passed again at each restart of that child.
 *
 * Requests. Each operation is a call to the supervisor process. Threads that are not
 * schedulers use the blocking functions below (rt_call_sync, bounded by
 * RT_SUP_CALL_TIMEOUT_MS): besides the result codes they return RT_ENOPROC (no such
 * supervisor), RT_EDOWN (it died during the call), RT_ETIMEDOUT, and RT_ECALLER from inside
 * a process. Processes build the
 * request with rt_sup_req_*() and send it with rt_call(sup, req, timeout); the reply then
 * arrives as a message (flags RT_MSGF_REPLY, ref = the call's ref) of type:
 *   RT_SUP_MSG_RESULT    payload rt_sup_result_t  (start/terminate/restart/delete)
 *   RT_SUP_MSG_CHILDREN  payload rt_sup_children_t (which_children)
 *   RT_SUP_MSG_COUNTS    payload rt_sup_counts_t   (count_children)
 * or RT_MSG_CALL_FAILED if the supervisor died or the call timed out. Request and reply
 * messages carry pointers: they are local to a node. Codes in results: 0, RT_ENOTFOUND (no
 * such child), RT_EEXIST (start_child: id in use), RT_ESTATE (restart/delete of a running
 * child), RT_ENOTSUP (operation not valid for the strategy), RT_EINVAL, RT_EINITFAIL.
 * Child lookup by pid is O(1); by id it is a scan of the static children (admin path).
 * Message types RT_SUP_MSG_FIRST..RT_SUP_MSG_LAST are reserved for supervisors.
 *
 * Logging: one INFO line per restart (skipped cheaply when the level filters it), one WARN
 * line when the intensity is exceeded.
 */
#ifndef CAIRN_RT_SUP_H
#define CAIRN_RT_SUP_H

#include "runtime/rt.h"

typedef enum rt_sup_strategy {
    RT_SUP_ONE_FOR_ONE,
    RT_SUP_ONE_FOR_ALL,
    RT_SUP_REST_FOR_ONE,
    RT_SUP_SIMPLE_ONE_FOR_ONE,
} rt_sup_strategy_t;

typedef enum rt_sup_restart {
    RT_SUP_PERMANENT,
    RT_SUP_TRANSIENT,
    RT_SUP_TEMPORARY,
} rt_sup_restart_t;

#define RT_SUP_BRUTAL_KILL 0u
#define RT_SUP_CALL_TIMEOUT_MS 30000u

typedef struct rt_sup_child_spec {
    const char *id;                  /* unique in the supervisor (copied); ignored in a template */
    const rt_behaviour_t *behaviour; /* borrowed; &rt_sup_behaviour for a child supervisor */
    void *arg;                       /* init arg (borrowed), or a const rt_sup_spec_t * (copied) */
    rt_sup_restart_t restart;
    uint32_t shutdown_ms;            /* RT_SUP_BRUTAL_KILL, a timeout, or RT_INFINITY */
} rt_sup_child_spec_t;

typedef struct rt_sup_spec {
    rt_sup_strategy_t strategy;
    uint32_t intensity;                  /* max restarts ... */
    uint32_t period_ms;                  /* ... within this window */
    const rt_sup_child_spec_t *children; /* start order; simple_one_for_one: the template */
    size_t nchildren;                    /* simple_one_for_one: exactly 1 */
    const char *name;                    /* register under this name (copied); NULL: none */
} rt_sup_spec_t;

/* The init arg of a simple_one_for_one child: valid during init only (copy what you keep).
 * A template whose behaviour is rt_sup_behaviour gets its spec instead, as a static child. */
typedef struct rt_sup_dynamic_arg {
    void *arg;   /* the template's arg */
    void *extra; /* this child's extra, as given to start_child (owned by the supervisor) */
} rt_sup_dynamic_arg_t;

/* The behaviour of every supervisor; its init arg is a const rt_sup_spec_t * (copied). */
extern const rt_behaviour_t rt_sup_behaviour;

/* Starts a supervisor; links it to the caller when the caller is a process. Returns 0 with
 * *out (may be NULL), RT_EINVAL for a malformed spec, RT_EINITFAIL when a child failed to
 * start, or rt_spawn_opt's errors. */
int rt_sup_start(const rt_sup_spec_t *spec, rt_pid_t *out);

/* ------------------------------------------------------------------ blocking forms (threads) */

int rt_sup_start_child(rt_pid_t sup, const rt_sup_child_spec_t *spec, rt_pid_t *out);
int rt_sup_start_dynamic_child(rt_pid_t sup, void *extra, void (*free_extra)(void *extra),
                               rt_pid_t *out); /* takes extra */
int rt_sup_terminate_child(rt_pid_t sup, const char *id);
int rt_sup_terminate_child_pid(rt_pid_t sup, rt_pid_t child); /* any strategy; the way for dynamic children */
int rt_sup_restart_child(rt_pid_t sup, const char *id, rt_pid_t *out);
int rt_sup_delete_child(rt_pid_t sup, const char *id);

typedef struct rt_sup_child_info {
    const char *id;          /* NULL for dynamic children; points into the reply message */
    rt_pid_t pid;            /* RT_NOPID when not running */
    rt_sup_restart_t restart;
    bool is_supervisor;
} rt_sup_child_info_t;

typedef struct rt_sup_children {
    uint32_t count;
    rt_sup_child_info_t child[]; /* start order */
} rt_sup_children_t;

/* On success *reply is the reply message (free it with rt_msg_free) and *list points into
 * it. */
int rt_sup_which_children(rt_pid_t sup, rt_msg_t **reply, const rt_sup_children_t **list);

typedef struct rt_sup_counts {
    uint32_t specs;       /* child records (running or not) */
    uint32_t active;      /* running children */
    uint32_t supervisors; /* records whose behaviour is rt_sup_behaviour */
    uint32_t workers;     /* the other records */
} rt_sup_counts_t;

int rt_sup_count_children(rt_pid_t sup, rt_sup_counts_t *out);

/* ------------------------------------------------------------------ requests (processes) */

enum {
    RT_SUP_MSG_FIRST = 0x53550000u, /* "SU" */
    RT_SUP_REQ_START_CHILD = RT_SUP_MSG_FIRST,
    RT_SUP_REQ_TERMINATE_CHILD,
    RT_SUP_REQ_RESTART_CHILD,
    RT_SUP_REQ_DELETE_CHILD,
    RT_SUP_REQ_WHICH_CHILDREN,
    RT_SUP_REQ_COUNT_CHILDREN,
    RT_SUP_MSG_RESULT,
    RT_SUP_MSG_CHILDREN,
    RT_SUP_MSG_COUNTS,
    RT_SUP_MSG_LAST = 0x535500ffu,
};

typedef struct rt_sup_result {
    int rc;       /* 0 or an RT_E* code */
    rt_pid_t pid; /* start_child / restart_child: the child's pid */
} rt_sup_result_t;

/* Each returns a request message (never NULL) for rt_call; the message owns copies of what
 * it is given, so the caller's spec and strings may go away at once. */
rt_msg_t *rt_sup_req_start_child(const rt_sup_child_spec_t *spec);
rt_msg_t *rt_sup_req_start_dynamic_child(void *extra, void (*free_extra)(void *extra)); /* takes extra */
rt_msg_t *rt_sup_req_terminate_child(const char *id);
rt_msg_t *rt_sup_req_terminate_child_pid(rt_pid_t child);
rt_msg_t *rt_sup_req_restart_child(const char *id);
rt_msg_t *rt_sup_req_delete_child(const char *id);
rt_msg_t *rt_sup_req_which_children(void);
rt_msg_t *rt_sup_req_count_children(void);

/* Reading a reply: NULL if m is not a reply of that type. */
const rt_sup_result_t *rt_sup_result_of(const rt_msg_t *m);
const rt_sup_children_t *rt_sup_children_of(const rt_msg_t *m);
const rt_sup_counts_t *rt_sup_counts_of(const rt_msg_t *m);

#endif
