/*
 * sup.c — supervisors (see sup.h for the semantics and the ownership rules).
 *
 * This module owns the supervisor process: its children (a doubly linked list in start
 * order, indexed by pid and by a private uid in two small hash maps), its restart history
 * (a ring of timestamps), the shutdown state machine ("job") and the requests it serves.
 *
 * It stands on the public rt.h API; the one internal it reads is rt__tls.cur, to tell a
 * caller that is a process (linked to the new supervisor) from a plain thread.
 *
 * A job terminates a range [first .. last] of the child list, one child at a time from the
 * end towards `first`: monitor + unlink the child, send exit(shutdown) (or kill), arm a kill
 * timer, and go on when its DOWN arrives. The children to stop carry `pending_stop`. What
 * happens when the walk is over is the job's `then`: reply to a terminate_child call, start
 * a restart group again, or exit. While a job runs, every message that is not about it is
 * deferred and handled in arrival order once it ends; the list is not changed meanwhile
 * (only pids), so the walk's prev pointers stay valid.
 */
#include "runtime/sup.h"
#include "runtime/rt_internal.h"

#include <string.h>

/* Messages a supervisor sends itself (inside the reserved range, never from outside). */
enum {
    SUP_MSG_RETRY = RT_SUP_MSG_FIRST + 0xf0, /* uint64_t uid: start a child whose start failed */
    SUP_MSG_KILL_TIMER,                     /* uint64_t seq: a shutdown timeout expired */
    SUP_MSG_CHILD_EXIT,                     /* a deferred RT_MSG_EXIT from a child */
};

/* ------------------------------------------------------------------ spec copies */

static rt_sup_spec_t *spec_clone(const rt_sup_spec_t *s);
static void spec_free(rt_sup_spec_t *s);

/* dst becomes a deep copy of src: id string, and a nested supervisor spec. */
static void child_spec_clone(rt_sup_child_spec_t *dst, const rt_sup_child_spec_t *src)
{
    *dst = *src;
    dst->id = src->id ? rt__xstrdup(src->id) : NULL;
    if (src->behaviour == &rt_sup_behaviour && src->arg)
        dst->arg = spec_clone(src->arg);
}

static void child_spec_release(rt_sup_child_spec_t *s)
{
    free((char *)s->id);
    if (s->behaviour == &rt_sup_behaviour)
        spec_free(s->arg);
}

static rt_sup_spec_t *spec_clone(const rt_sup_spec_t *s)
{
    rt_sup_spec_t *c = rt__xmalloc(sizeof *c);
    *c = *s;
    c->name = s->name ? rt__xstrdup(s->name) : NULL;
    rt_sup_child_spec_t *kids = s->nchildren ? rt__xcalloc(s->nchildren, sizeof *kids) : NULL;
    for (size_t i = 0; i < s->nchildren; i++)
        child_spec_clone(&kids[i], &s->children[i]);
    c->children = kids;
    return c;
}

static void spec_free(rt_sup_spec_t *s)
{
    if (!s)
        return;
    rt_sup_child_spec_t *kids = (rt_sup_child_spec_t *)s->children;
    for (size_t i = 0; i < s->nchildren; i++)
        child_spec_release(&kids[i]);
    free(kids);
    free((char *)s->name);
    free(s);
}

static bool spec_valid(const rt_sup_spec_t *s);

static bool child_spec_valid(const rt_sup_child_spec_t *c, bool needs_id)
{
    if (!c->behaviour || !c->behaviour->handle || (needs_id && !c->id) ||
        (unsigned)c->restart > RT_SUP_TEMPORARY)
        return false;
    return c->behaviour != &rt_sup_behaviour || (c->arg && spec_valid(c->arg));
}

static bool spec_valid(const rt_sup_spec_t *s)
{
    if (!s || (unsigned)s->strategy > RT_SUP_SIMPLE_ONE_FOR_ONE || (s->nchildren && !s->children))
        return false;
    bool simple = s->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE;
    if (simple && s->nchildren != 1)
        return false;
    for (size_t i = 0; i < s->nchildren; i++) {
        if (!child_spec_valid(&s->children[i], !simple))
            return false;
        for (size_t j = 0; !simple && j < i; j++)
            if (strcmp(s->children[i].id, s->children[j].id) == 0)
                return false;
    }
    return true;
}

/* ------------------------------------------------------------------ children */

typedef struct sup_child {
    struct sup_child *prev, *next; /* start order */
    uint64_t uid;                  /* never reused within a supervisor */
    rt_pid_t pid;                  /* RT_NOPID when not running */
    rt_sup_child_spec_t spec;      /* owned copy (id, nested spec); template's for dynamic */
    void *extra;                   /* dynamic children: owned, released by free_extra */
    void (*free_extra)(void *extra);
    bool dynamic;      /* simple_one_for_one child: spec borrowed from the template */
    bool pending_stop; /* in the running job's range, not reached yet */
    bool in_group;     /* to be started when the group restart's terminations are done */
    bool retry_pending;/* a SUP_MSG_RETRY for it is on its way */
} sup_child_t;

/* u64 -> child, open addressing with linear probing and backward-shift deletion. Keys are
 * never 0. */
typedef struct child_map {
    uint64_t *keys;
    sup_child_t **vals;
    uint32_t cap, n;
} child_map_t;

static inline uint64_t key_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static inline uint64_t pid_key(rt_pid_t p) { return ((uint64_t)p.id << 32) | p.serial; }

static sup_child_t *map_get(const child_map_t *m, uint64_t k)
{
    if (m->cap == 0)
        return NULL;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = (uint32_t)key_hash(k) & mask; m->keys[i]; i = (i + 1) & mask)
        if (m->keys[i] == k)
            return m->vals[i];
    return NULL;
}

static void map_insert_raw(child_map_t *m, uint64_t k, sup_child_t *v)
{
    uint32_t mask = m->cap - 1, i = (uint32_t)key_hash(k) & mask;
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & mask;
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
}

static void map_put(child_map_t *m, uint64_t k, sup_child_t *v)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        child_map_t old = *m;
        m->cap = old.cap ? old.cap * 2 : 16;
        m->n = 0;
        m->keys = rt__xcalloc(m->cap, sizeof *m->keys);
        m->vals = rt__xcalloc(m->cap, sizeof *m->vals);
        for (uint32_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                map_insert_raw(m, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    map_insert_raw(m, k, v);
}

static void map_del(child_map_t *m, uint64_t k)
{
    if (m->cap == 0)
        return;
    uint32_t mask = m->cap - 1, i = (uint32_t)key_hash(k) & mask;
    while (m->keys[i] != k) {
        if (!m->keys[i])
            return;
        i = (i + 1) & mask;
    }
    m->n--;
    /* Backward shift: pull later entries of the probe run into the hole when their home
     * slot does not lie cyclically in (hole, j]. */
    for (uint32_t j = i;;) {
        m->keys[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!m->keys[j])
                return;
            uint32_t home = (uint32_t)key_hash(m->keys[j]) & mask;
            bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        i = j;
    }
}

static void map_free(child_map_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ small rings */

/* Restart timestamps, oldest first; pruned by age, so O(1) amortised per restart. */
typedef struct restart_ring {
    uint64_t *t;
    uint32_t cap, head, n;
} restart_ring_t;

static void ring_push(restart_ring_t *r, uint64_t v)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        uint64_t *t = rt__xmalloc(cap * sizeof *t);
        for (uint32_t i = 0; i < r->n; i++)
            t[i] = r->t[(r->head + i) % r->cap];
        free(r->t);
        r->t = t;
        r->cap = cap;
        r->head = 0;
    }
    r->t[(r->head + r->n) % r->cap] = v;
    r->n++;
}

static void ring_prune_older(restart_ring_t *r, uint64_t oldest_kept)
{
    while (r->n && r->t[r->head] < oldest_kept) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
}

/* Messages deferred while a job runs, in arrival order (owned). */
typedef struct msg_fifo {
    rt_msg_t **m;
    uint32_t cap, head, n;
} msg_fifo_t;

static void fifo_push(msg_fifo_t *f, rt_msg_t *m)
{
    if (f->n == f->cap) {
        uint32_t cap = f->cap ? f->cap * 2 : 16;
        rt_msg_t **a = rt__xmalloc(cap * sizeof *a);
        for (uint32_t i = 0; i < f->n; i++)
            a[i] = f->m[(f->head + i) % f->cap];
        free(f->m);
        f->m = a;
        f->cap = cap;
        f->head = 0;
    }
    f->m[(f->head + f->n) % f->cap] = m;
    f->n++;
}

static rt_msg_t *fifo_pop(msg_fifo_t *f)
{
    if (f->n == 0)
        return NULL;
    rt_msg_t *m = f->m[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
    return m;
}

/* ------------------------------------------------------------------ the supervisor's state */

typedef enum { JOB_THEN_REPLY, JOB_THEN_RESTART_GROUP, JOB_THEN_EXIT } job_then_t;

typedef struct sup_job {
    bool active;
    job_then_t then;
    sup_child_t *first;   /* the walk ends with this child */
    sup_child_t *cursor;  /* next child to look at (walking backwards), NULL: done */
    sup_child_t *cur;     /* the child being terminated now, or NULL */
    rt_ref_t mon;         /* monitor on cur */
    rt_timer_t timer;     /* kill timer for cur (0: none) */
    uint64_t seq;         /* matches a kill timer to the termination that armed it */
    int exit_reason;      /* JOB_THEN_EXIT */
    rt_from_t reply_to;   /* JOB_THEN_REPLY (ref 0: the request was not a call) */
    sup_child_t *target;  /* JOB_THEN_REPLY: the terminated child */
} sup_job_t;

typedef struct sup_state {
    rt_pid_t self, parent;
    rt_sup_strategy_t strategy;
    uint32_t intensity;
    uint64_t period_ns;
    rt_sup_child_spec_t tmpl; /* simple_one_for_one: owned copy of the template */
    bool has_tmpl;
    sup_child_t *head, *tail;
    uint32_t nchildren;
    child_map_t by_pid, by_uid;
    uint64_t next_uid;
    restart_ring_t restarts;
    sup_job_t job;
    msg_fifo_t deferred;
    int stop_reason; /* >= 0: shut down with it once the running job ends */
    int exit_reason; /* >= 0: exit with it at the end of this handler turn */
} sup_state_t;

/* The supervisor that is starting a process on this thread (its parent, seen from a child
 * supervisor's init). */
static _Thread_local rt_pid_t spawning_parent;

static void log_child(int level, const sup_state_t *st, const sup_child_t *c, const char *what,
                      int reason)
{
    if (rt_log_level() > level)
        return;
    rt_log(level, "supervisor <%u.%u.%u>: child %s <%u.%u.%u> %s (%s)", st->self.node,
           st->self.id, st->self.serial, c->dynamic ? "(dynamic)" : c->spec.id, c->pid.node,
           c->pid.id, c->pid.serial, what, rt_reason_str(reason));
}

static sup_child_t *child_add(sup_state_t *st)
{
    sup_child_t *c = rt__xcalloc(1, sizeof *c);
    c->uid = st->next_uid++;
    c->prev = st->tail;
    if (st->tail)
        st->tail->next = c;
    else
        st->head = c;
    st->tail = c;
    st->nchildren++;
    map_put(&st->by_uid, c->uid, c);
    return c;
}

/* Removes a child record (not running) and releases what it owns. */
static void child_delete(sup_state_t *st, sup_child_t *c)
{
    if (!rt_pid_is_nil(c->pid))
        map_del(&st->by_pid, pid_key(c->pid));
    map_del(&st->by_uid, c->uid);
    if (c->prev)
        c->prev->next = c->next;
    else
        st->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        st->tail = c->prev;
    st->nchildren--;
    if (!c->dynamic)
        child_spec_release(&c->spec);
    if (c->free_extra)
        c->free_extra(c->extra);
    free(c);
}

/* The child is known to be dead: forget its pid. */
static void child_gone(sup_state_t *st, sup_child_t *c)
{
    if (!rt_pid_is_nil(c->pid))
        map_del(&st->by_pid, pid_key(c->pid));
    c->pid = RT_NOPID;
}

static int child_spawn(sup_state_t *st, sup_child_t *c)
{
    rt_sup_dynamic_arg_t dyn = {c->spec.arg, c->extra};
    bool is_sup = c->spec.behaviour == &rt_sup_behaviour;
    void *arg = (c->dynamic && !is_sup) ? &dyn : c->spec.arg;
    rt_spawn_opts_t o = {.link = true, .name = is_sup ? ((rt_sup_spec_t *)c->spec.arg)->name : NULL};
    rt_pid_t saved = spawning_parent, pid;
    spawning_parent = st->self;
    int rc = rt_spawn_opt(c->spec.behaviour, arg, &o, &pid);
    spawning_parent = saved;
    if (rc != 0)
        return rc;
    c->pid = pid;
    c->in_group = false;
    c->retry_pending = false;
    map_put(&st->by_pid, pid_key(pid), c);
    return 0;
}

static sup_child_t *child_by_id(sup_state_t *st, const char *id)
{
    for (sup_child_t *c = st->head; c; c = c->next)
        if (!c->dynamic && strcmp(c->spec.id, id) == 0)
            return c;
    return NULL;
}

/* ------------------------------------------------------------------ the shutdown job */

static void job_advance(sup_state_t *st);

static void job_begin(sup_state_t *st, sup_child_t *first, sup_child_t *last, job_then_t then)
{
    sup_job_t *j = &st->job;
    j->active = true;
    j->then = then;
    j->first = first;
    j->cursor = first ? last : NULL;
    j->cur = NULL;
    j->timer = 0;
    job_advance(st);
}

/* Marks every running child of [first .. tail] for termination. */
static void mark_running_from(sup_child_t *first, bool group)
{
    for (sup_child_t *c = first; c; c = c->next) {
        if (!rt_pid_is_nil(c->pid)) {
            c->pending_stop = true;
            if (group)
                c->in_group = true;
        }
    }
}

static void shutdown_all(sup_state_t *st, int reason)
{
    mark_running_from(st->head, false);
    st->job.exit_reason = reason;
    job_begin(st, st->head, st->tail, JOB_THEN_EXIT);
}

static void stop_child_begin(sup_state_t *st, sup_child_t *c)
{
    sup_job_t *j = &st->job;
    j->cur = c;
    j->mon = rt_monitor(c->pid); /* DOWN even if it unlinked, noproc if already gone */
    rt_unlink(c->pid);           /* its EXIT, even one in flight, is now dropped */
    j->seq++;
    if (c->spec.shutdown_ms == RT_SUP_BRUTAL_KILL) {
        rt_exit_signal(c->pid, RT_R_KILL);
        return;
    }
    rt_exit_signal(c->pid, RT_R_SHUTDOWN);
    if (c->spec.shutdown_ms != RT_INFINITY) {
        rt_msg_t *t = rt_msg_copy(SUP_MSG_KILL_TIMER, &j->seq, sizeof j->seq);
        j->timer = rt_send_after(c->spec.shutdown_ms, st->self, t);
    }
}

static void reply_result(rt_from_t to, int rc, rt_pid_t pid)
{
    if (to.ref == 0)
        return;
    rt_sup_result_t r = {rc, pid};
    rt_reply(to, rt_msg_copy(RT_SUP_MSG_RESULT, &r, sizeof r));
}

static void restart_group_members(sup_state_t *st, sup_child_t *first);

static void job_finish(sup_state_t *st)
{
    sup_job_t *j = &st->job;
    j->active = false;
    switch (j->then) {
    case JOB_THEN_EXIT:
        st->exit_reason = j->exit_reason;
        return;
    case JOB_THEN_REPLY:
        if (j->target->dynamic || j->target->spec.restart == RT_SUP_TEMPORARY)
            child_delete(st, j->target); /* before the reply: the caller sees it done */
        reply_result(j->reply_to, 0, RT_NOPID);
        break;
    case JOB_THEN_RESTART_GROUP:
        if (st->stop_reason < 0) {
            restart_group_members(st, j->first);
        } else { /* about to shut down: do not start what would be stopped at once */
            for (sup_child_t *c = j->first, *n; c; c = n) {
                n = c->next;
                c->in_group = false;
                if (rt_pid_is_nil(c->pid) && c->spec.restart == RT_SUP_TEMPORARY)
                    child_delete(st, c);
            }
        }
        break;
    }
    if (st->stop_reason >= 0 && !st->job.active) {
        int reason = st->stop_reason;
        st->stop_reason = -1;
        shutdown_all(st, reason);
    }
}

static void job_advance(sup_state_t *st)
{
    sup_job_t *j = &st->job;
    while (j->cursor) {
        sup_child_t *c = j->cursor;
        j->cursor = (c == j->first) ? NULL : c->prev;
        if (!c->pending_stop)
            continue;
        c->pending_stop = false;
        if (!rt_pid_is_nil(c->pid)) {
            stop_child_begin(st, c);
            return;
        }
    }
    job_finish(st);
}

static void on_down(sup_state_t *st, const rt_down_msg_t *d)
{
    sup_job_t *j = &st->job;
    if (!j->active || !j->cur || d->ref != j->mon)
        return; /* stale */
    if (j->timer)
        rt_cancel_timer(j->timer); /* a late timer message is ignored by its seq */
    j->timer = 0;
    child_gone(st, j->cur);
    j->cur = NULL;
    job_advance(st);
}

static void on_kill_timer(sup_state_t *st, uint64_t seq)
{
    sup_job_t *j = &st->job;
    if (!j->active || !j->cur || seq != j->seq)
        return;
    j->timer = 0;
    log_child(RT_LOG_WARN, st, j->cur, "did not stop in time: killed", RT_R_KILLED);
    rt_exit_signal(j->cur->pid, RT_R_KILL);
}

/* ------------------------------------------------------------------ restarts */

/* Records a restart now; false if that exceeds the intensity. */
static bool note_restart(sup_state_t *st)
{
    uint64_t now = rt_now_ns();
    ring_prune_older(&st->restarts, now > st->period_ns ? now - st->period_ns : 0);
    ring_push(&st->restarts, now);
    return st->restarts.n <= st->intensity;
}

static void escalate(sup_state_t *st)
{
    rt_warn("supervisor <%u.%u.%u>: more than %u restarts in %llu ms: shutting down",
            st->self.node, st->self.id, st->self.serial, st->intensity,
            (unsigned long long)(st->period_ns / 1000000));
    shutdown_all(st, RT_R_SUP_INTENSITY);
}

static void schedule_retry(sup_state_t *st, sup_child_t *c)
{
    c->retry_pending = true;
    log_child(RT_LOG_INFO, st, c, "failed to start: will retry", RT_R_INIT_FAILED);
    rt_send(st->self, rt_msg_copy(SUP_MSG_RETRY, &c->uid, sizeof c->uid));
}

/* Starts, in order, the group members from `first` on whose terminations are done. Stops at
 * the first failure, which is retried; the members after it keep in_group for that retry. */
static void restart_group_members(sup_state_t *st, sup_child_t *first)
{
    for (sup_child_t *c = first, *n; c; c = n) {
        n = c->next;
        if (!c->in_group || !rt_pid_is_nil(c->pid))
            continue;
        if (c->spec.restart == RT_SUP_TEMPORARY) {
            child_delete(st, c);
            continue;
        }
        if (child_spawn(st, c) != 0) {
            schedule_retry(st, c);
            return;
        }
    }
}

/* Terminates the running members of [first .. tail] and starts the group again. */
static void start_group_restart(sup_state_t *st, sup_child_t *first, sup_child_t *trigger)
{
    mark_running_from(first, true);
    trigger->in_group = true;
    job_begin(st, first, st->tail, JOB_THEN_RESTART_GROUP);
}

/* Restarts c (dead, to be restarted) per the strategy; the restart is already counted. */
static void restart_child_now(sup_state_t *st, sup_child_t *c)
{
    switch (st->strategy) {
    case RT_SUP_ONE_FOR_ALL:
        start_group_restart(st, st->head, c);
        break;
    case RT_SUP_REST_FOR_ONE:
        start_group_restart(st, c, c);
        break;
    default:
        if (child_spawn(st, c) != 0)
            schedule_retry(st, c);
        break;
    }
}

static bool should_restart(const sup_child_t *c, int reason)
{
    switch (c->spec.restart) {
    case RT_SUP_PERMANENT:
        return true;
    case RT_SUP_TRANSIENT:
        return reason != RT_R_NORMAL && reason != RT_R_SHUTDOWN;
    default:
        return false;
    }
}

static void child_exited(sup_state_t *st, sup_child_t *c, int reason)
{
    if (!should_restart(c, reason)) {
        child_gone(st, c);
        if (c->dynamic || c->spec.restart == RT_SUP_TEMPORARY)
            child_delete(st, c);
        return;
    }
    log_child(RT_LOG_INFO, st, c, "exited: restarting", reason);
    child_gone(st, c);
    if (!note_restart(st)) {
        escalate(st);
        return;
    }
    restart_child_now(st, c);
}

static void on_retry(sup_state_t *st, uint64_t uid)
{
    sup_child_t *c = map_get(&st->by_uid, uid);
    if (!c || !c->retry_pending || !rt_pid_is_nil(c->pid))
        return; /* deleted, or started meanwhile (restart_child) */
    c->retry_pending = false;
    if (!note_restart(st)) {
        escalate(st);
        return;
    }
    restart_child_now(st, c);
}

/* Stops the supervisor now if idle, or once the running job ends. */
static void request_stop(sup_state_t *st, int reason)
{
    if (st->job.active) {
        if (st->stop_reason < 0 && st->job.then != JOB_THEN_EXIT)
            st->stop_reason = reason;
        return;
    }
    shutdown_all(st, reason);
}

/* ------------------------------------------------------------------ requests */

typedef struct req_start {
    rt_sup_child_spec_t *spec; /* owned deep copy (static start), taken by the supervisor */
    void *extra;               /* dynamic start: owned until taken */
    void (*free_extra)(void *extra);
    bool dynamic;
} req_start_t;

typedef struct req_child {
    rt_pid_t pid;  /* used when id is empty */
    char id[];     /* NUL-terminated */
} req_child_t;

static void req_start_dtor(rt_msg_t *m)
{
    req_start_t *r = (req_start_t *)(void *)m->data;
    if (r->spec) {
        child_spec_release(r->spec);
        free(r->spec);
        r->spec = NULL;
    }
    if (r->free_extra) {
        r->free_extra(r->extra);
        r->free_extra = NULL;
    }
}

static void serve_start(sup_state_t *st, rt_from_t from, req_start_t *r)
{
    bool simple = st->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE;
    if (r->dynamic != simple) {
        reply_result(from, RT_ENOTSUP, RT_NOPID);
        return;
    }
    sup_child_t *c;
    if (simple) {
        c = child_add(st);
        c->dynamic = true;
        c->spec = st->tmpl;
        c->extra = r->extra;
        c->free_extra = r->free_extra;
        r->free_extra = NULL; /* taken */
    } else {
        if (!child_spec_valid(r->spec, true)) {
            reply_result(from, RT_EINVAL, RT_NOPID);
            return;
        }
        if (child_by_id(st, r->spec->id)) {
            reply_result(from, RT_EEXIST, RT_NOPID);
            return;
        }
        c = child_add(st);
        c->spec = *r->spec;
        free(r->spec);
        r->spec = NULL; /* taken */
    }
    int rc = child_spawn(st, c);
    rt_pid_t pid = c->pid;
    if (rc != 0)
        child_delete(st, c);
    reply_result(from, rc == 0 ? 0 : RT_EINITFAIL, pid);
}

static sup_child_t *find_child(sup_state_t *st, const req_child_t *r)
{
    return r->id[0] ? child_by_id(st, r->id) : map_get(&st->by_pid, pid_key(r->pid));
}

static void serve_terminate(sup_state_t *st, rt_from_t from, const req_child_t *r)
{
    sup_child_t *c = find_child(st, r);
    if (!c) {
        reply_result(from, RT_ENOTFOUND, RT_NOPID);
        return;
    }
    c->retry_pending = false;
    c->in_group = false;
    if (rt_pid_is_nil(c->pid)) {
        if (c->dynamic || c->spec.restart == RT_SUP_TEMPORARY)
            child_delete(st, c);
        reply_result(from, 0, RT_NOPID);
        return;
    }
    c->pending_stop = true;
    st->job.reply_to = from;
    st->job.target = c;
    job_begin(st, c, c, JOB_THEN_REPLY);
}

static void serve_restart(sup_state_t *st, rt_from_t from, const req_child_t *r)
{
    sup_child_t *c = st->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE ? NULL : find_child(st, r);
    if (st->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE)
        reply_result(from, RT_ENOTSUP, RT_NOPID);
    else if (!c)
        reply_result(from, RT_ENOTFOUND, RT_NOPID);
    else if (!rt_pid_is_nil(c->pid))
        reply_result(from, RT_ESTATE, c->pid);
    else if (child_spawn(st, c) != 0)
        reply_result(from, RT_EINITFAIL, RT_NOPID);
    else
        reply_result(from, 0, c->pid);
}

static void serve_delete(sup_state_t *st, rt_from_t from, const req_child_t *r)
{
    sup_child_t *c = st->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE ? NULL : find_child(st, r);
    if (st->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE) {
        reply_result(from, RT_ENOTSUP, RT_NOPID);
    } else if (!c) {
        reply_result(from, RT_ENOTFOUND, RT_NOPID);
    } else if (!rt_pid_is_nil(c->pid)) {
        reply_result(from, RT_ESTATE, c->pid);
    } else {
        child_delete(st, c);
        reply_result(from, 0, RT_NOPID);
    }
}

static void serve_which(sup_state_t *st, rt_from_t from)
{
    if (from.ref == 0)
        return;
    size_t ids = 0;
    for (sup_child_t *c = st->head; c; c = c->next)
        ids += c->spec.id && !c->dynamic ? strlen(c->spec.id) + 1 : 0;
    size_t head = sizeof(rt_sup_children_t) + st->nchildren * sizeof(rt_sup_child_info_t);
    rt_msg_t *m = rt_msg_new(RT_SUP_MSG_CHILDREN, head + ids);
    rt_sup_children_t *list = (rt_sup_children_t *)(void *)m->data;
    char *names = (char *)m->data + head;
    uint32_t i = 0;
    for (sup_child_t *c = st->head; c; c = c->next, i++) {
        rt_sup_child_info_t *info = &list->child[i];
        info->id = NULL;
        if (c->spec.id && !c->dynamic) {
            size_t len = strlen(c->spec.id) + 1;
            memcpy(names, c->spec.id, len);
            info->id = names;
            names += len;
        }
        info->pid = c->pid;
        info->restart = c->spec.restart;
        info->is_supervisor = c->spec.behaviour == &rt_sup_behaviour;
    }
    list->count = i;
    rt_reply(from, m);
}

static void serve_count(sup_state_t *st, rt_from_t from)
{
    if (from.ref == 0)
        return;
    rt_sup_counts_t n = {0};
    for (sup_child_t *c = st->head; c; c = c->next) {
        n.specs++;
        n.active += !rt_pid_is_nil(c->pid);
        if (c->spec.behaviour == &rt_sup_behaviour)
            n.supervisors++;
        else
            n.workers++;
    }
    rt_reply(from, rt_msg_copy(RT_SUP_MSG_COUNTS, &n, sizeof n));
}

static void serve_request(sup_state_t *st, rt_msg_t *m)
{
    rt_from_t from = rt_is_call(m) ? rt_call_from(m) : (rt_from_t){RT_NOPID, 0};
    switch (m->type) {
    case RT_SUP_REQ_START_CHILD:
        serve_start(st, from, (req_start_t *)(void *)m->data);
        break;
    case RT_SUP_REQ_TERMINATE_CHILD:
        serve_terminate(st, from, (const req_child_t *)(const void *)m->data);
        break;
    case RT_SUP_REQ_RESTART_CHILD:
        serve_restart(st, from, (const req_child_t *)(const void *)m->data);
        break;
    case RT_SUP_REQ_DELETE_CHILD:
        serve_delete(st, from, (const req_child_t *)(const void *)m->data);
        break;
    case RT_SUP_REQ_WHICH_CHILDREN:
        serve_which(st, from);
        break;
    case RT_SUP_REQ_COUNT_CHILDREN:
        serve_count(st, from);
        break;
    default:
        reply_result(from, RT_EINVAL, RT_NOPID);
        break;
    }
}

/* ------------------------------------------------------------------ the behaviour */

/* An exit signal turned into a message (we trap exits). Takes m. */
static void on_exit_msg(sup_state_t *st, rt_msg_t *m)
{
    const rt_exit_msg_t *e = (const rt_exit_msg_t *)(const void *)m->data;
    bool deferred = m->type == SUP_MSG_CHILD_EXIT;
    sup_child_t *c = map_get(&st->by_pid, pid_key(e->from));
    if (!c || e->from.node != 0) {
        /* A deferred child exit whose child was replaced since is stale; anything else
         * comes from the parent or a stranger. */
        if (!deferred && (rt_pid_eq(e->from, st->parent) || e->reason != RT_R_NORMAL))
            request_stop(st, e->reason);
        rt_msg_free(m);
        return;
    }
    if (st->job.active) {
        if (c->pending_stop) {
            child_gone(st, c); /* died before its turn: nothing to terminate */
            rt_msg_free(m);
        } else {
            m->type = SUP_MSG_CHILD_EXIT;
            fifo_push(&st->deferred, m);
        }
        return;
    }
    int reason = e->reason;
    rt_msg_free(m);
    child_exited(st, c, reason);
}

/* Handles one owned message: frees it, or defers it while a job runs. */
static void dispatch(sup_state_t *st, rt_msg_t *m)
{
    switch (m->type) {
    case RT_MSG_EXIT:
    case SUP_MSG_CHILD_EXIT:
        on_exit_msg(st, m);
        return;
    case RT_MSG_DOWN:
        on_down(st, (const rt_down_msg_t *)(const void *)m->data);
        break;
    case SUP_MSG_KILL_TIMER:
        on_kill_timer(st, *(const uint64_t *)(const void *)m->data);
        break;
    case SUP_MSG_RETRY:
        if (st->job.active) {
            fifo_push(&st->deferred, m);
            return;
        }
        on_retry(st, *(const uint64_t *)(const void *)m->data);
        break;
    default:
        if (m->type >= RT_SUP_REQ_START_CHILD && m->type <= RT_SUP_REQ_COUNT_CHILDREN) {
            if (st->job.active) {
                fifo_push(&st->deferred, m);
                return;
            }
            serve_request(st, m);
        } else if (rt_is_call(m)) {
            reply_result(rt_call_from(m), RT_EINVAL, RT_NOPID);
        }
        break;
    }
    rt_msg_free(m);
}

static int sup_handle(void *state, rt_msg_t *m)
{
    sup_state_t *st = state;
    rt_msg_keep(m);
    dispatch(st, m);
    while (!st->job.active && st->exit_reason < 0 && st->deferred.n)
        dispatch(st, fifo_pop(&st->deferred));
    if (st->exit_reason >= 0)
        rt_exit(st->exit_reason);
    return RT_CONTINUE;
}

static void state_free(sup_state_t *st)
{
    if (st->job.timer)
        rt_cancel_timer(st->job.timer);
    if (st->job.active && st->job.cur && !rt_pid_is_nil(st->job.cur->pid))
        rt_exit_signal(st->job.cur->pid, RT_R_KILL); /* unlinked: the link would not tell it */
    while (st->head) {
        sup_child_t *c = st->head;
        c->pid = RT_NOPID;
        child_delete(st, c);
    }
    if (st->has_tmpl)
        child_spec_release(&st->tmpl);
    map_free(&st->by_pid);
    map_free(&st->by_uid);
    free(st->restarts.t);
    for (rt_msg_t *m; (m = fifo_pop(&st->deferred)) != NULL;)
        rt_msg_free(m);
    free(st->deferred.m);
    memset(st, 0, sizeof *st);
}

static int sup_init(void *state, void *arg)
{
    sup_state_t *st = state;
    const rt_sup_spec_t *spec = arg;
    if (!spec_valid(spec))
        return RT_R_INIT_FAILED;
    rt_trap_exit(true);
    st->self = rt_self();
    st->parent = spawning_parent;
    st->strategy = spec->strategy;
    st->intensity = spec->intensity;
    st->period_ns = (uint64_t)spec->period_ms * 1000000ull;
    st->next_uid = 1;
    st->stop_reason = -1;
    st->exit_reason = -1;
    if (spec->strategy == RT_SUP_SIMPLE_ONE_FOR_ONE) {
        child_spec_clone(&st->tmpl, &spec->children[0]);
        st->has_tmpl = true;
        return 0;
    }
    for (size_t i = 0; i < spec->nchildren; i++) {
        sup_child_t *c = child_add(st);
        child_spec_clone(&c->spec, &spec->children[i]);
        if (child_spawn(st, c) != 0) {
            /* No handler runs before init returns: kill what started, newest first. */
            for (sup_child_t *k = c->prev; k; k = k->prev) {
                rt_unlink(k->pid);
                rt_exit_signal(k->pid, RT_R_KILL);
            }
            rt_warn("supervisor <%u.%u.%u>: child %s failed to start", st->self.node,
                    st->self.id, st->self.serial, c->spec.id);
            state_free(st);
            return RT_R_INIT_FAILED;
        }
    }
    return 0;
}

static void sup_terminate(void *state, int reason)
{
    (void)reason;
    state_free(state);
}

const rt_behaviour_t rt_sup_behaviour = {
    .name = "supervisor",
    .state_size = sizeof(sup_state_t),
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

int rt_sup_start(const rt_sup_spec_t *spec, rt_pid_t *out)
{
    if (!spec_valid(spec))
        return RT_EINVAL;
    bool in_process = rt__tls.cur != NULL;
    rt_spawn_opts_t o = {.link = in_process, .trap_exit = true, .name = spec->name};
    rt_pid_t saved = spawning_parent;
    spawning_parent = in_process ? rt_self() : RT_NOPID;
    int rc = rt_spawn_opt(&rt_sup_behaviour, (void *)spec, &o, out);
    spawning_parent = saved;
    return rc;
}

/* ------------------------------------------------------------------ request messages */

rt_msg_t *rt_sup_req_start_child(const rt_sup_child_spec_t *spec)
{
    rt_msg_t *m = rt_msg_new(RT_SUP_REQ_START_CHILD, sizeof(req_start_t));
    req_start_t *r = (req_start_t *)(void *)m->data;
    memset(r, 0, sizeof *r);
    r->spec = rt__xmalloc(sizeof *r->spec);
    child_spec_clone(r->spec, spec);
    m->dtor = req_start_dtor;
    return m;
}

rt_msg_t *rt_sup_req_start_dynamic_child(void *extra, void (*free_extra)(void *extra))
{
    rt_msg_t *m = rt_msg_new(RT_SUP_REQ_START_CHILD, sizeof(req_start_t));
    req_start_t *r = (req_start_t *)(void *)m->data;
    memset(r, 0, sizeof *r);
    r->extra = extra;
    r->free_extra = free_extra;
    r->dynamic = true;
    m->dtor = req_start_dtor;
    return m;
}

static rt_msg_t *req_child(uint32_t type, const char *id, rt_pid_t pid)
{
    size_t len = id ? strlen(id) : 0;
    rt_msg_t *m = rt_msg_new(type, sizeof(req_child_t) + len + 1);
    req_child_t *r = (req_child_t *)(void *)m->data;
    r->pid = pid;
    if (len)
        memcpy(r->id, id, len);
    r->id[len] = '\0';
    return m;
}

rt_msg_t *rt_sup_req_terminate_child(const char *id) { return req_child(RT_SUP_REQ_TERMINATE_CHILD, id, RT_NOPID); }
rt_msg_t *rt_sup_req_terminate_child_pid(rt_pid_t child) { return req_child(RT_SUP_REQ_TERMINATE_CHILD, NULL, child); }
rt_msg_t *rt_sup_req_restart_child(const char *id) { return req_child(RT_SUP_REQ_RESTART_CHILD, id, RT_NOPID); }
rt_msg_t *rt_sup_req_delete_child(const char *id) { return req_child(RT_SUP_REQ_DELETE_CHILD, id, RT_NOPID); }
rt_msg_t *rt_sup_req_which_children(void) { return rt_msg_new(RT_SUP_REQ_WHICH_CHILDREN, 0); }
rt_msg_t *rt_sup_req_count_children(void) { return rt_msg_new(RT_SUP_REQ_COUNT_CHILDREN, 0); }

const rt_sup_result_t *rt_sup_result_of(const rt_msg_t *m)
{
    return m && m->type == RT_SUP_MSG_RESULT && m->size >= sizeof(rt_sup_result_t)
               ? (const rt_sup_result_t *)(const void *)m->data
               : NULL;
}

const rt_sup_children_t *rt_sup_children_of(const rt_msg_t *m)
{
    return m && m->type == RT_SUP_MSG_CHILDREN ? (const rt_sup_children_t *)(const void *)m->data : NULL;
}

const rt_sup_counts_t *rt_sup_counts_of(const rt_msg_t *m)
{
    return m && m->type == RT_SUP_MSG_COUNTS && m->size >= sizeof(rt_sup_counts_t)
               ? (const rt_sup_counts_t *)(const void *)m->data
               : NULL;
}

/* ------------------------------------------------------------------ blocking forms */

/* One call; a supervisor that is gone reads as RT_ENOPROC. */
static int sup_call(rt_pid_t sup, rt_msg_t *req, rt_msg_t **reply)
{
    int reason = 0;
    int rc = rt_call_sync(sup, req, RT_SUP_CALL_TIMEOUT_MS, reply, &reason);
    if (rc == RT_EDOWN && reason == RT_R_NOPROC)
        return RT_ENOPROC;
    return rc;
}

static int sup_call_result(rt_pid_t sup, rt_msg_t *req, rt_pid_t *out)
{
    rt_msg_t *reply = NULL;
    int rc = sup_call(sup, req, &reply);
    if (rc != 0)
        return rc;
    const rt_sup_result_t *r = rt_sup_result_of(reply);
    rc = r ? r->rc : RT_EBADMSG;
    if (r && rc == 0 && out)
        *out = r->pid;
    rt_msg_free(reply);
    return rc;
}

int rt_sup_start_child(rt_pid_t sup, const rt_sup_child_spec_t *spec, rt_pid_t *out)
{
    if (!spec)
        return RT_EINVAL;
    return sup_call_result(sup, rt_sup_req_start_child(spec), out);
}

int rt_sup_start_dynamic_child(rt_pid_t sup, void *extra, void (*free_extra)(void *extra), rt_pid_t *out)
{
    return sup_call_result(sup, rt_sup_req_start_dynamic_child(extra, free_extra), out);
}

int rt_sup_terminate_child(rt_pid_t sup, const char *id)
{
    if (!id || !*id)
        return RT_EINVAL;
    return sup_call_result(sup, rt_sup_req_terminate_child(id), NULL);
}

int rt_sup_terminate_child_pid(rt_pid_t sup, rt_pid_t child)
{
    return sup_call_result(sup, rt_sup_req_terminate_child_pid(child), NULL);
}

int rt_sup_restart_child(rt_pid_t sup, const char *id, rt_pid_t *out)
{
    if (!id || !*id)
        return RT_EINVAL;
    return sup_call_result(sup, rt_sup_req_restart_child(id), out);
}

int rt_sup_delete_child(rt_pid_t sup, const char *id)
{
    if (!id || !*id)
        return RT_EINVAL;
    return sup_call_result(sup, rt_sup_req_delete_child(id), NULL);
}

int rt_sup_which_children(rt_pid_t sup, rt_msg_t **reply, const rt_sup_children_t **list)
{
    rt_msg_t *m = NULL;
    int rc = sup_call(sup, rt_sup_req_which_children(), &m);
    if (rc != 0)
        return rc;
    if (!rt_sup_children_of(m)) {
        rt_msg_free(m);
        return RT_EBADMSG;
    }
    *reply = m;
    *list = rt_sup_children_of(m);
    return 0;
}

int rt_sup_count_children(rt_pid_t sup, rt_sup_counts_t *out)
{
    rt_msg_t *m = NULL;
    int rc = sup_call(sup, rt_sup_req_count_children(), &m);
    if (rc != 0)
        return rc;
    const rt_sup_counts_t *n = rt_sup_counts_of(m);
    if (n)
        *out = *n;
    rt_msg_free(m);
    return n ? 0 : RT_EBADMSG;
}
