/*
 * proc.c — processes: the slot table, spawn, send, links, monitors, exit signals and the
 * exit path that releases a process and tells everyone linked to or monitoring it.
 *
 * Slots are type-stable (never freed while the runtime runs), so a sender may look at a
 * slot of a dead process safely. A sender takes a "sender ref" on the slot (a CAS on
 * proc->word that succeeds only while the serial matches and the process is alive) for the
 * duration of its push; the exit path clears ALIVE and waits for in-flight senders to leave
 * before it drains the mailbox, so no message ever lands in a dead or reused mailbox.
 * Only a process's own thread runs its exit path, while it holds p->sched.
 */
#include "runtime/rt_internal.h"

#include <stdio.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define FREE_CACHE 256

typedef struct rt_res {
    struct rt_res *next;
    uint64_t handle;
    void (*release)(void *obj);
    void *obj;
} rt_res_t_;

static struct {
    rt_proc_t *_Atomic *chunks;   /* max_procs / CHUNK_SIZE pointers */
    uint32_t nchunks;
    atomic_uint hwm;              /* next never-used id */
    pthread_mutex_t free_mx;      /* the global free-id stack */
    uint32_t *free_ids;
    uint32_t nfree, free_cap;
    atomic_uint count;            /* live processes, thread mailboxes included */
    atomic_uint externals;        /* live thread mailboxes */
    atomic_uint_fast64_t next_res;
} procs;

/* Per-thread cache of free ids, refilled/spilled in batches from the global stack. */
typedef struct id_cache { uint32_t n; uint32_t ids[FREE_CACHE]; } id_cache_t;
static _Thread_local id_cache_t id_tls;

rt_global_t rt__g;
_Thread_local rt_tls_t rt__tls;

/* ------------------------------------------------------------------ table */

void rt__procs_init(uint32_t max_procs)
{
    procs.nchunks = (max_procs + CHUNK_SIZE - 1) / CHUNK_SIZE;
    procs.chunks = rt__xcalloc(procs.nchunks, sizeof *procs.chunks);
    atomic_store(&procs.hwm, 1); /* id 0 is never a process */
    pthread_mutex_init(&procs.free_mx, NULL);
    procs.free_ids = NULL;
    procs.nfree = procs.free_cap = 0;
    atomic_store(&procs.count, 0);
    atomic_store(&procs.next_res, 1);
}

rt_proc_t *rt__slot(uint32_t id)
{
    uint32_t c = id >> CHUNK_BITS;
    if (c >= procs.nchunks)
        return NULL;
    rt_proc_t *chunk = atomic_load_explicit(&procs.chunks[c], memory_order_acquire);
    return chunk ? &chunk[id & (CHUNK_SIZE - 1)] : NULL;
}

static rt_proc_t *slot_create(uint32_t id)
{
    uint32_t c = id >> CHUNK_BITS;
    rt_proc_t *chunk = atomic_load_explicit(&procs.chunks[c], memory_order_acquire);
    if (!chunk) {
        /* aligned_alloc + memset would touch every page now; calloc maps zero pages lazily */
        rt_proc_t *fresh = rt__xcalloc(CHUNK_SIZE, sizeof(rt_proc_t));
        rt_proc_t *expected = NULL;
        if (atomic_compare_exchange_strong(&procs.chunks[c], &expected, fresh))
            chunk = fresh;
        else {
            free(fresh);
            chunk = expected;
        }
    }
    return &chunk[id & (CHUNK_SIZE - 1)];
}

static uint32_t id_alloc(void)
{
    if (id_tls.n == 0) {
        pthread_mutex_lock(&procs.free_mx);
        uint32_t take = procs.nfree < FREE_CACHE / 2 ? procs.nfree : FREE_CACHE / 2;
        procs.nfree -= take;
        if (take)
            memcpy(id_tls.ids, procs.free_ids + procs.nfree, take * sizeof(uint32_t));
        id_tls.n = take;
        pthread_mutex_unlock(&procs.free_mx);
    }
    if (id_tls.n > 0)
        return id_tls.ids[--id_tls.n];
    uint32_t id = atomic_fetch_add(&procs.hwm, 1);
    if (id >= procs.nchunks * CHUNK_SIZE) {
        atomic_fetch_sub(&procs.hwm, 1);
        return 0;
    }
    return id;
}

static void id_spill(uint32_t keep)
{
    pthread_mutex_lock(&procs.free_mx);
    uint32_t give = id_tls.n - keep;
    if (procs.nfree + give > procs.free_cap) {
        procs.free_cap = (procs.nfree + give) * 2;
        procs.free_ids = rt__xrealloc(procs.free_ids, procs.free_cap * sizeof(uint32_t));
    }
    memcpy(procs.free_ids + procs.nfree, id_tls.ids + keep, give * sizeof(uint32_t));
    procs.nfree += give;
    id_tls.n = keep;
    pthread_mutex_unlock(&procs.free_mx);
}

static void id_free(uint32_t id)
{
    if (id_tls.n == FREE_CACHE)
        id_spill(FREE_CACHE / 2);
    id_tls.ids[id_tls.n++] = id;
}

/* Returns this thread's cached free ids to the global stack (thread exit, runtime stop). */
static void id_cache_flush(void)
{
    if (id_tls.n)
        id_spill(0);
}

uint32_t rt_process_count(void) { return atomic_load(&procs.count); }
uint32_t rt__external_count(void) { return atomic_load(&procs.externals); }

rt_proc_t *rt__acquire(rt_pid_t pid)
{
    if (pid.node != 0)
        return NULL;
    rt_proc_t *p = rt__slot(pid.id);
    if (!p)
        return NULL;
    uint64_t w = atomic_load_explicit(&p->word, memory_order_relaxed);
    for (;;) {
        if (RT_W_SERIAL(w) != pid.serial || !(w & RT_W_ALIVE))
            return NULL;
        /* acquire: pairs with the release store of a new incarnation's word, so the
         * sender sees an initialised mailbox */
        if (atomic_compare_exchange_weak_explicit(&p->word, &w, w + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return p;
    }
}

bool rt_is_alive(rt_pid_t pid)
{
    rt_proc_t *p = rt__acquire(pid);
    if (!p)
        return false;
    rt__release(p);
    return true;
}

rt_ext_t *rt__ext(rt_proc_t *p)
{
    /* First use may come from the owner (monitors, resources: no lock) and from another
     * thread at once (a link, a watcher or a name, under p->lock): install with a CAS so
     * neither allocation is lost. */
    rt_ext_t *x = atomic_load_explicit(&p->ext, memory_order_acquire);
    if (x)
        return x;
    rt_ext_t *fresh = rt__xcalloc(1, sizeof *fresh);
    if (atomic_compare_exchange_strong_explicit(&p->ext, &x, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh);
    return x;
}

rt_ref_t rt_make_ref(void) { return atomic_fetch_add_explicit(&rt__g.next_ref, 1, memory_order_relaxed); }

/* ------------------------------------------------------------------ self */

static inline rt_pid_t self_peek(void)
{
    rt_proc_t *p = rt__tls.cur ? rt__tls.cur : rt__tls.thread_proc;
    return p ? rt__pid_of(p) : RT_NOPID;
}

rt_pid_t rt_self(void)
{
    if (rt__tls.cur)
        return rt__pid_of(rt__tls.cur);
    if (atomic_load(&rt__g.state) == 0)
        return RT_NOPID;
    rt_proc_t *p = rt__thread_proc();
    return p ? rt__pid_of(p) : RT_NOPID;
}

void *rt_self_state(void) { return rt__tls.cur ? rt__tls.cur->state : NULL; }

/* The process whose context the caller is in: the running process, or this thread's own
 * mailbox (created on demand). */
static rt_proc_t *current(void)
{
    if (rt__tls.cur)
        return rt__tls.cur;
    return rt__thread_proc();
}

/* ------------------------------------------------------------------ send */

void rt__deliver(rt_proc_t *p, rt_msg_t *m)
{
    m->to_serial_ = rt__serial(p);
    rt__q_push(&p->mbox, &m->q_);
    /* seq_cst: orders the push before the exchange, and pairs with the owner's store of 0
     * followed by its emptiness check (see sched.c end_turn): one of them always wins. */
    if (atomic_exchange_explicit(&p->sched, 1, memory_order_seq_cst) == 0) {
        if (p->flags & RT_PF_EXTERNAL)
            rt__external_wake(p);
        else
            rt__make_runnable(p);
    }
}

int rt__send_local(rt_pid_t to, rt_msg_t *m)
{
    if (to.node != 0)
        return rt__dist_send(to, m);
    rt_proc_t *p = rt__acquire(to);
    if (!p) {
        rt_msg_free(m);
        return RT_ENOPROC;
    }
    rt__deliver(p, m);
    rt__release(p);
    return 0;
}

int rt_send(rt_pid_t to, rt_msg_t *m)
{
    if (!m)
        return RT_EINVAL;
    if (m == rt__tls.cur_msg)
        rt__tls.cur_msg = NULL; /* forwarding the message being handled */
    if (m->type < RT_MSG_USER && m->type >= RT_MSG_SYS_FIRST_INTERNAL) {
        rt_msg_free(m);
        return RT_EINVAL;
    }
    return rt__send_local(to, m);
}

/* ------------------------------------------------------------------ spawn */

static void proc_free_state(rt_proc_t *p)
{
    free(p->state);
    p->state = NULL;
    if (p->ext) {
        rt__hmap_free(&p->ext->links);
        rt__hmap_free(&p->ext->watchers);
        rt__hmap_free(&p->ext->monitors);
        free(p->ext->name);
        free(p->ext);
        p->ext = NULL;
    }
}

static rt_proc_t *proc_new(const rt_behaviour_t *b, uint32_t flags)
{
    uint32_t id = id_alloc();
    if (id == 0)
        return NULL;
    rt_proc_t *p = slot_create(id);
    uint64_t w = atomic_load_explicit(&p->word, memory_order_relaxed);
    uint32_t serial = RT_W_SERIAL(w) + 1;
    if (serial == 0)
        serial = 1;
    if (p->mbox.head == NULL) /* first use of this slot */
        rt__q_init(&p->mbox);
    p->id = id;
    p->beh = b;
    p->flags = flags;
    p->exit_reason = 0;
    p->ext = NULL;
    p->state = (b && b->state_size) ? rt__xcalloc(1, b->state_size) : NULL;
    /* p->lock is not reset: a sender holding a stale pid may hold it right now (lock_live),
     * and every holder releases it, so it is free whenever nobody is inside. */
    atomic_store_explicit(&p->sched, 1, memory_order_relaxed); /* ours until the first turn ends */
    atomic_fetch_add_explicit(&procs.count, 1, memory_order_relaxed);
    /* release: publishes the fields above to any sender that acquires the new serial */
    atomic_store_explicit(&p->word, ((uint64_t)serial << 32) | RT_W_ALIVE, memory_order_release);
    return p;
}

/* Ends a turn of p that the caller owns (p->sched == 1): lets senders schedule it again,
 * unless messages are already waiting, in which case it is made runnable now. */
static void release_sched(rt_proc_t *p)
{
    atomic_store_explicit(&p->sched, 0, memory_order_seq_cst);
    if (rt__q_maybe_nonempty(&p->mbox) &&
        atomic_exchange_explicit(&p->sched, 1, memory_order_seq_cst) == 0) {
        if (p->flags & RT_PF_EXTERNAL)
            rt__external_wake(p);
        else
            rt__make_runnable(p);
    }
}

int rt_spawn(const rt_behaviour_t *b, void *arg, rt_pid_t *out)
{
    return rt_spawn_opt(b, arg, NULL, out);
}

int rt_spawn_opt(const rt_behaviour_t *b, void *arg, const rt_spawn_opts_t *o, rt_pid_t *out)
{
    if (!b || !b->handle)
        return RT_EINVAL;
    if (atomic_load_explicit(&rt__g.state, memory_order_acquire) != 1)
        return RT_ESTATE;
    rt_proc_t *parent = (o && (o->link || o->monitor)) ? current() : NULL;
    rt_proc_t *p = proc_new(b, (o && o->trap_exit) ? RT_PF_TRAP_EXIT : 0);
    if (!p)
        return RT_ELIMIT;
    rt_pid_t pid = rt__pid_of(p);
    if (o && o->name) {
        int rc = rt_register(o->name, pid);
        if (rc != 0) {
            rt__exit_process(p, RT_R_NORMAL);
            return rc;
        }
    }
    int reason = 0;
    if (b->init) {
        p->flags |= RT_PF_IN_INIT;
        rt__run_init(p, arg, &reason);
        p->flags &= ~RT_PF_IN_INIT;
    }
    if (reason != 0) {
        rt_debug("spawn %s: init failed: %s", b->name ? b->name : "?", rt_reason_str(reason));
        p->flags |= RT_PF_IN_INIT; /* no terminate() for a process whose init failed */
        rt__exit_process(p, reason);
        return RT_EINITFAIL;
    }
    if (parent) { /* the caller's context is current again now that init has returned */
        if (o->link)
            rt_link(pid);
        if (o->monitor)
            *o->monitor = rt_monitor(pid);
    }
    if (out)
        *out = pid;
    release_sched(p);
    return 0;
}

/* ------------------------------------------------------------------ links */

/* Locks p if it is the live, non-exiting incarnation `serial`; returns false otherwise. */
static bool lock_live(rt_proc_t *p, uint32_t serial)
{
    rt__spin_lock(&p->lock);
    uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
    if (RT_W_SERIAL(w) == serial && (w & RT_W_ALIVE) && !(p->flags & RT_PF_DYING))
        return true;
    rt__spin_unlock(&p->lock);
    return false;
}

static void send_exit_signal(rt_pid_t to, rt_pid_t from, int reason, bool linked)
{
    if (to.node != 0) {
        rt__dist_exit(from, to, reason, linked);
        return;
    }
    rt_msg_t *m = rt__sig_new(linked ? RT_SIG_EXIT_LINK : RT_SIG_EXIT, from, sizeof(rt_exit_msg_t));
    rt_exit_msg_t *e = (rt_exit_msg_t *)(void *)m->data;
    e->from = from;
    e->reason = reason;
    rt__send_local(to, m);
}

/* Adds `peer` to the link set of the local process `to` if it is alive; false if not. */
static bool link_add_remote_side(rt_pid_t target, rt_pid_t peer)
{
    rt_proc_t *t = rt__slot(target.id);
    if (!t || !lock_live(t, target.serial))
        return false;
    rt__hmap_put(&rt__ext(t)->links, rt__pid_key(peer));
    rt__spin_unlock(&t->lock);
    return true;
}

int rt__link_from_remote(rt_pid_t local, rt_pid_t remote)
{
    if (!link_add_remote_side(local, remote)) {
        send_exit_signal(remote, local, RT_R_NOPROC, true);
        return RT_ENOPROC;
    }
    return 0;
}

int rt_link(rt_pid_t other)
{
    rt_proc_t *me = current();
    if (!me)
        return RT_ESTATE;
    rt_pid_t self = rt__pid_of(me);
    if (rt_pid_eq(other, self))
        return 0;
    if (other.node != 0) {
        rt__spin_lock(&me->lock);
        rt__hmap_put(&rt__ext(me)->links, rt__pid_key(other));
        rt__spin_unlock(&me->lock);
        return rt__dist_link(self, other);
    }
    if (!link_add_remote_side(other, self)) {
        /* Erlang: linking to a dead process delivers exit noproc to the caller */
        rt__spin_lock(&me->lock);
        rt__hmap_put(&rt__ext(me)->links, rt__pid_key(other));
        rt__spin_unlock(&me->lock);
        send_exit_signal(self, other, RT_R_NOPROC, true);
        return RT_ENOPROC;
    }
    rt__spin_lock(&me->lock);
    rt__hmap_put(&rt__ext(me)->links, rt__pid_key(other));
    rt__spin_unlock(&me->lock);
    return 0;
}

void rt__unlink_local_side(rt_pid_t target, rt_pid_t peer)
{
    rt_proc_t *t = rt__slot(target.id);
    if (!t || !lock_live(t, target.serial))
        return;
    if (t->ext)
        rt__hmap_del(&t->ext->links, rt__pid_key(peer), NULL);
    rt__spin_unlock(&t->lock);
}

int rt_unlink(rt_pid_t other)
{
    rt_proc_t *me = current();
    if (!me)
        return RT_ESTATE;
    rt_pid_t self = rt__pid_of(me);
    rt__spin_lock(&me->lock);
    if (me->ext)
        rt__hmap_del(&me->ext->links, rt__pid_key(other), NULL);
    rt__spin_unlock(&me->lock);
    /* An exit signal from `other` already in flight is ignored when it arrives, because
     * the link is gone from our set (see handle_exit_signal). */
    if (other.node != 0)
        return rt__dist_unlink(self, other);
    rt__unlink_local_side(other, self);
    return 0;
}

void rt_trap_exit(bool on)
{
    rt_proc_t *me = current();
    if (!me)
        return;
    if (on)
        me->flags |= RT_PF_TRAP_EXIT;
    else
        me->flags &= ~RT_PF_TRAP_EXIT;
}

int rt_exit_signal(rt_pid_t target, int reason) { return rt__exit_signal_from(self_peek(), target, reason); }

int rt__exit_signal_from(rt_pid_t from, rt_pid_t target, int reason)
{
    if (target.node != 0)
        return rt__dist_exit(from, target, reason, false);
    rt_proc_t *p = rt__acquire(target);
    if (!p)
        return RT_ENOPROC;
    if (reason == RT_R_KILL && !(p->flags & RT_PF_EXTERNAL)) {
        /* Untrappable and prompt: a flag checked before every message, plus a wake-up. */
        atomic_fetch_or_explicit(&p->word, RT_W_KILL, memory_order_release);
        rt__deliver(p, rt__sig_new(RT_SIG_KILL_WAKE, from, 0));
    } else {
        rt_msg_t *m = rt__sig_new(RT_SIG_EXIT, from, sizeof(rt_exit_msg_t));
        rt_exit_msg_t *e = (rt_exit_msg_t *)(void *)m->data;
        e->from = from;
        e->reason = reason;
        rt__deliver(p, m);
    }
    rt__release(p);
    return 0;
}

/* ------------------------------------------------------------------ monitors */

static void send_down(rt_pid_t watcher, rt_ref_t ref, rt_pid_t target, int reason)
{
    if (watcher.node != 0) {
        rt__dist_down(watcher, ref, target, reason);
        return;
    }
    rt_msg_t *m = rt__sig_new(RT_MSG_DOWN, target, sizeof(rt_down_msg_t));
    rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
    d->ref = ref;
    d->pid = target;
    d->reason = reason;
    rt__send_local(watcher, m);
}

/* A watcher (local or remote) asks to monitor the local process `target`. */
int rt__monitor_install(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref)
{
    rt_proc_t *t = rt__slot(target.id);
    if (target.node != 0 || !t || !lock_live(t, target.serial)) {
        send_down(watcher, ref, target, RT_R_NOPROC);
        return RT_ENOPROC;
    }
    rt_hent_t *e = rt__hmap_put(&rt__ext(t)->watchers, rt__ref_key(ref));
    rt_hkey_t wk = rt__pid_key(watcher);
    e->v[0] = wk.a;
    e->v[1] = wk.b;
    rt__spin_unlock(&t->lock);
    return 0;
}

void rt__monitor_remove(rt_pid_t target, rt_ref_t ref)
{
    rt_proc_t *t = rt__slot(target.id);
    if (!t || !lock_live(t, target.serial))
        return;
    if (t->ext)
        rt__hmap_del(&t->ext->watchers, rt__ref_key(ref), NULL);
    rt__spin_unlock(&t->lock);
}

/* Records a monitor held by `me` (owner-only map). */
void rt__monitor_record(rt_proc_t *me, rt_ref_t ref, rt_pid_t target)
{
    rt_hent_t *e = rt__hmap_put(&rt__ext(me)->monitors, rt__ref_key(ref));
    rt_hkey_t tk = rt__pid_key(target);
    e->v[0] = tk.a;
    e->v[1] = tk.b;
    e->v[2] = 0;
}

rt_ref_t rt__monitor_from(rt_proc_t *me, rt_pid_t target)
{
    rt_ref_t ref = rt_make_ref();
    rt_pid_t self = rt__pid_of(me);
    rt__monitor_record(me, ref, target);
    if (target.node != 0)
        rt__dist_monitor(self, target, ref);
    else
        rt__monitor_install(self, target, ref);
    return ref;
}

rt_ref_t rt_monitor(rt_pid_t target)
{
    rt_proc_t *me = current();
    if (!me)
        return 0;
    return rt__monitor_from(me, target);
}

/* Removes ref from me's monitors and from the target; true if it was active. */
bool rt__demonitor_from(rt_proc_t *me, rt_ref_t ref)
{
    rt_hent_t e;
    if (!me->ext || !rt__hmap_del(&me->ext->monitors, rt__ref_key(ref), &e))
        return false;
    rt_pid_t target = rt__pid_unpack(e.v[0], e.v[1]);
    if (target.node != 0)
        rt__dist_demonitor(rt__pid_of(me), target, ref);
    else
        rt__monitor_remove(target, ref);
    return true;
}

bool rt_demonitor(rt_ref_t ref, int flags)
{
    rt_proc_t *me = current();
    if (!me)
        return false;
    /* A DOWN for a ref no longer in our monitor map is dropped on arrival (see
     * rt__filter_system), so every demonitor flushes: nothing more to do for FLUSH. */
    (void)flags;
    return rt__demonitor_from(me, ref);
}

/* ------------------------------------------------------------------ resources */

rt_res_t rt_own(void (*release)(void *obj), void *obj)
{
    rt_proc_t *me = current();
    if (!me || !release)
        return 0;
    rt_res_t_ *r = rt__xmalloc(sizeof *r);
    r->handle = atomic_fetch_add(&procs.next_res, 1);
    r->release = release;
    r->obj = obj;
    rt_ext_t *x = rt__ext(me);
    r->next = x->res;
    x->res = r;
    return r->handle;
}

void rt_disown(rt_res_t h)
{
    rt_proc_t *me = current();
    if (!me || !me->ext)
        return;
    for (rt_res_t_ **pp = &me->ext->res; *pp; pp = &(*pp)->next) {
        if ((*pp)->handle == h) {
            rt_res_t_ *r = *pp;
            *pp = r->next;
            free(r);
            return;
        }
    }
}

/* ------------------------------------------------------------------ system messages */

/* See rt_internal.h. A consumed message is freed here. */
bool rt__filter_system(rt_proc_t *p, rt_msg_t **mp, int *die_reason)
{
    rt_msg_t *m = *mp;
    switch (m->type) {
    case RT_SIG_KILL_WAKE:
        rt_msg_free(m);
        return false;
    case RT_SIG_UNLINK:
        rt__spin_lock(&p->lock);
        if (p->ext)
            rt__hmap_del(&p->ext->links, rt__pid_key(m->from), NULL);
        rt__spin_unlock(&p->lock);
        rt_msg_free(m);
        return false;
    case RT_SIG_EXIT_LINK:
    case RT_SIG_EXIT: {
        rt_exit_msg_t *e = (rt_exit_msg_t *)(void *)m->data;
        bool linked = m->type == RT_SIG_EXIT_LINK;
        if (linked) {
            bool had;
            rt__spin_lock(&p->lock);
            had = p->ext && rt__hmap_del(&p->ext->links, rt__pid_key(e->from), NULL);
            rt__spin_unlock(&p->lock);
            if (!had) { /* unlinked meanwhile: the signal has no effect */
                rt_msg_free(m);
                return false;
            }
        }
        if (!linked && e->reason == RT_R_KILL && !(p->flags & RT_PF_EXTERNAL)) {
            *die_reason = RT_R_KILLED;
            rt_msg_free(m);
            return false;
        }
        if ((p->flags & (RT_PF_TRAP_EXIT | RT_PF_EXTERNAL)) != 0) {
            m->type = RT_MSG_EXIT;
            return true;
        }
        if (e->reason == RT_R_NORMAL && !rt_pid_eq(e->from, rt__pid_of(p))) {
            rt_msg_free(m);
            return false;
        }
        *die_reason = e->reason == RT_R_KILL ? RT_R_KILLED : e->reason;
        rt_msg_free(m);
        return false;
    }
    case RT_MSG_DOWN: {
        rt_down_msg_t *d = (rt_down_msg_t *)(void *)m->data;
        if (rt__call_filter(p, mp))
            return *mp != NULL;
        rt_hent_t e;
        if (!p->ext || !rt__hmap_del(&p->ext->monitors, rt__ref_key(d->ref), &e)) {
            rt_msg_free(m); /* demonitored: flushed */
            return false;
        }
        return true;
    }
    case RT_SIG_CALL_TIMEOUT:
        if (rt__call_filter(p, mp))
            return *mp != NULL;
        rt_msg_free(m);
        return false;
    default:
        if ((m->flags & RT_MSGF_REPLY) && rt__call_filter(p, mp))
            return *mp != NULL;
        return true;
    }
}

/* ------------------------------------------------------------------ exit */

void rt__exit_process(rt_proc_t *p, int reason)
{
    rt_pid_t self = rt__pid_of(p);
    rt_hmap_t links = {0}, watchers = {0};

    /* Not alive from here on: rt_is_alive and new senders see it at once. This comes before
     * DYING so that a monitor refused below (DOWN noproc) never races a still-ALIVE slot. */
    uint64_t w = atomic_load(&p->word);
    while (!atomic_compare_exchange_weak(&p->word, &w, w & ~(RT_W_ALIVE | RT_W_KILL)))
        ;
    /* Links and monitors installed until now are in the sets; lock_live refuses the rest. */
    rt__spin_lock(&p->lock);
    p->flags |= RT_PF_DYING;
    rt_ext_t *x = p->ext;
    if (x) {
        links = x->links;
        watchers = x->watchers;
        memset(&x->links, 0, sizeof links);
        memset(&x->watchers, 0, sizeof watchers);
    }
    rt__spin_unlock(&p->lock);

    /* Wait out senders still inside a push (a few instructions each). */
    for (unsigned spins = 0; atomic_load_explicit(&p->word, memory_order_acquire) & RT_W_REFS; spins++)
        rt__cpu_relax();
    p->exit_reason = reason;

    rt_proc_t *saved = rt__tls.cur;
    rt__tls.cur = p;
    if (p->beh && p->beh->terminate && !(p->flags & RT_PF_IN_INIT))
        p->beh->terminate(p->state, reason);
    if (p->ext) {
        for (rt_res_t_ *r = p->ext->res, *n; r; r = n) {
            n = r->next;
            r->release(r->obj);
            free(r);
        }
        p->ext->res = NULL;
    }
    rt__tls.cur = saved;
    rt__registry_drop(p);
    if (reason != RT_R_NORMAL && reason != RT_R_SHUTDOWN && reason != RT_R_KILLED &&
        reason != RT_R_NOCONNECTION && !(p->flags & RT_PF_EXTERNAL))
        rt_log(reason == RT_R_CRASH || reason == RT_R_ASSERT ? RT_LOG_ERROR : RT_LOG_DEBUG,
               "process <%u.%u.%u> (%s) exited: %s", self.node, self.id, self.serial,
               p->beh && p->beh->name ? p->beh->name : "?", rt_reason_str(reason));

    /* Monitors this process held: remove them at their targets; pending calls' timers. */
    if (p->ext) {
        rt_hmap_t *mons = &p->ext->monitors;
        for (uint32_t i = 0; i < mons->cap; i++) {
            rt_hent_t *e = &mons->t[i];
            if (e->k.a == 0 && e->k.b == 0)
                continue;
            rt_pid_t target = rt__pid_unpack(e->v[0], e->v[1]);
            if (e->v[2])
                rt_cancel_timer(e->v[2]);
            if (target.node != 0)
                rt__dist_demonitor(self, target, e->k.a);
            else
                rt__monitor_remove(target, e->k.a);
        }
    }
    for (uint32_t i = 0; i < links.cap; i++) {
        rt_hent_t *e = &links.t[i];
        if (e->k.a || e->k.b)
            send_exit_signal(rt__pid_unpack(e->k.a, e->k.b), self, reason, true);
    }
    for (uint32_t i = 0; i < watchers.cap; i++) {
        rt_hent_t *e = &watchers.t[i];
        if (e->k.a || e->k.b)
            send_down(rt__pid_unpack(e->v[0], e->v[1]), e->k.a, self, reason);
    }
    rt__hmap_free(&links);
    rt__hmap_free(&watchers);

    /* Drain: nothing more can arrive (ALIVE is clear and no sender is inside a push). */
    rt_qnode_t *n;
    while ((n = rt__q_pop(&p->mbox)) != NULL)
        rt_msg_free((rt_msg_t *)(void *)n);
    if (p->ext) {
        for (rt_msg_t *s = p->ext->saved_h, *nx; s; s = nx) {
            nx = (rt_msg_t *)(void *)atomic_load_explicit(&s->q_.next, memory_order_relaxed);
            rt_msg_free(s);
        }
        if (p->flags & RT_PF_EXTERNAL) {
            pthread_mutex_destroy(&p->ext->mx);
            pthread_cond_destroy(&p->ext->cv);
        }
    }
    if (p->flags & RT_PF_EXTERNAL)
        atomic_fetch_sub(&procs.externals, 1);
    proc_free_state(p);
    p->flags = 0;
    p->beh = NULL;
    atomic_fetch_sub_explicit(&procs.count, 1, memory_order_release);
    id_free(p->id); /* p->sched stays 1: a dead slot is never scheduled */
}

/* ------------------------------------------------------------------ crash paths */

_Noreturn void rt_exit(int reason)
{
    if (rt__tls.jb) {
        rt__tls.exit_reason = reason;
        longjmp(*rt__tls.jb, 1);
    }
    rt_error("rt_exit(%s) called outside a process handler", rt_reason_str(reason));
    abort();
}

void rt__assert_fail(const char *expr, const char *file, int line)
{
    if (rt__tls.jb && rt__tls.cur) {
        rt_pid_t s = rt__pid_of(rt__tls.cur);
        rt_error("assertion failed in <%u.%u.%u>: %s (%s:%d)", s.node, s.id, s.serial, expr, file, line);
        rt__tls.exit_reason = RT_R_ASSERT;
        longjmp(*rt__tls.jb, 1);
    }
    fprintf(stderr, "cairn: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

/* ------------------------------------------------------------------ stop */

void rt__procs_kill_all(void)
{
    uint32_t hwm = atomic_load(&procs.hwm);
    for (uint32_t id = 1; id < hwm; id++) {
        rt_proc_t *p = rt__slot(id);
        if (!p)
            continue;
        uint64_t w = atomic_load(&p->word);
        if ((w & RT_W_ALIVE) && !(p->flags & RT_PF_EXTERNAL))
            rt_exit_signal((rt_pid_t){0, id, RT_W_SERIAL(w)}, RT_R_KILL);
    }
}

void rt__procs_free(void)
{
    id_cache_flush();
    id_tls.n = 0;
    for (uint32_t c = 0; c < procs.nchunks; c++) {
        rt_proc_t *chunk = atomic_load(&procs.chunks[c]);
        if (!chunk)
            continue;
        for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
            rt_proc_t *p = &chunk[i];
            if (p->mbox.head == NULL)
                continue;
            rt_qnode_t *n;
            while ((n = rt__q_pop(&p->mbox)) != NULL)
                rt_msg_free((rt_msg_t *)(void *)n);
            if (atomic_load(&p->word) & RT_W_ALIVE)
                proc_free_state(p);
        }
        free(chunk);
    }
    free(procs.chunks);
    procs.chunks = NULL;
    procs.nchunks = 0;
    free(procs.free_ids);
    procs.free_ids = NULL;
    procs.nfree = procs.free_cap = 0;
    pthread_mutex_destroy(&procs.free_mx);
}

void rt__procs_thread_exit(void) { id_cache_flush(); }

/* A mailbox for a non-scheduler thread (external.c): a slot with no handler, never run. */
int rt__spawn_external(const rt_behaviour_t *b, rt_pid_t *out, rt_proc_t **pp)
{
    rt_proc_t *p = proc_new(b, RT_PF_EXTERNAL | RT_PF_TRAP_EXIT);
    if (!p)
        return RT_ELIMIT;
    atomic_fetch_add(&procs.externals, 1);
    rt__ext(p);
    /* sched stays 1 ("awake") until the thread first waits in rt_receive */
    *out = rt__pid_of(p);
    *pp = p;
    return 0;
}
