/*
 * rt_internal.h — what the runtime's own files share: the process slot, the lock-free MPSC
 * queue, the scheduler, thread-local context, and the hooks between core and distribution.
 * Nothing outside runtime/ includes this file.
 */
#ifndef CAIRN_RT_INTERNAL_H
#define CAIRN_RT_INTERNAL_H

#include "runtime/rt.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ small helpers */

void *rt__xmalloc(size_t n);             /* aborts on OOM */
void *rt__xcalloc(size_t n, size_t sz);  /* aborts on OOM */
void *rt__xrealloc(void *p, size_t n);   /* aborts on OOM */
char *rt__xstrdup(const char *s);

static inline void rt__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* A test-and-test-and-set spinlock for very short critical sections (a few list ops). */
typedef struct { atomic_int v; } rt_spin_t;
void rt__spin_lock_slow(rt_spin_t *l);
static inline void rt__spin_lock(rt_spin_t *l)
{
    if (atomic_exchange_explicit(&l->v, 1, memory_order_acquire) != 0)
        rt__spin_lock_slow(l);
}
static inline void rt__spin_unlock(rt_spin_t *l) { atomic_store_explicit(&l->v, 0, memory_order_release); }

/* ------------------------------------------------------------------ MPSC queue (Vyukov) */

/* Intrusive multi-producer single-consumer queue with a stub node. push() is wait-free
 * (one exchange); pop() is consumer-only and may return NULL while a producer is between its
 * exchange and its link ("in flight"): rt__q_maybe_nonempty() then still says true, so a
 * consumer that checks it after giving up its turn never loses a wake-up.
 *
 * The invariant that makes that check sound: the tail is the stub only when the queue holds
 * nothing and no push is in flight. A producer's exchange always moves the tail away from the
 * stub, and pop() puts the stub back only with a CAS from the node it is taking, which fails
 * if a producer has exchanged the tail in the meantime. */
typedef struct rt_mpscq {
    rt_qnode_t *_Atomic tail; /* producers: exchange here */
    rt_qnode_t *head;         /* consumer only */
    rt_qnode_t stub;
} rt_mpscq_t;

static inline void rt__q_init(rt_mpscq_t *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    q->head = &q->stub;
    atomic_store_explicit(&q->tail, &q->stub, memory_order_relaxed);
}

/* Appends n (wait-free); FIFO with respect to this producer's earlier pushes. */
static inline void rt__q_push(rt_mpscq_t *q, rt_qnode_t *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    /* acq_rel: publishes n's contents to the consumer that follows prev->next (release),
     * and orders after earlier pushes by this thread (FIFO per producer). */
    rt_qnode_t *prev = atomic_exchange_explicit(&q->tail, n, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

static inline rt_qnode_t *rt__q_pop(rt_mpscq_t *q)
{
    rt_qnode_t *head = q->head;
    rt_qnode_t *next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (head == &q->stub) {
        if (next == NULL)
            return NULL;
        q->head = next;
        head = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->head = next;
        return head;
    }
    /* head is the last linked node. Take it by making the stub the tail again, but only if
     * head still is the tail. Pushing the stub unconditionally (the textbook move) would put
     * it behind a producer that exchanged the tail but has not linked yet: the queue would
     * then hold nodes while its tail is the stub, rt__q_maybe_nonempty() would say empty,
     * and the consumer that gives up its turn on that answer would never be woken again. */
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    rt_qnode_t *expected = head;
    /* release: a producer that exchanges the stub out of the tail sees stub.next == NULL */
    if (atomic_compare_exchange_strong_explicit(&q->tail, &expected, &q->stub, memory_order_acq_rel,
                                                memory_order_acquire)) {
        q->head = &q->stub;
        return head;
    }
    /* A producer is in flight (the tail is its node, not the stub): take head once it has
     * linked; otherwise the caller sees NULL now and rt__q_maybe_nonempty() true. */
    next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (next != NULL) {
        q->head = next;
        return head;
    }
    return NULL;
}

/* False only if nothing is queued or being pushed. Reads only the atomic tail, so it is safe
 * after the caller gave up consuming (another thread may be popping by then): see the
 * invariant above (a pop that empties the queue makes the stub the tail again only while no
 * producer is in flight, and a producer's exchange moves the tail away from it before its
 * node is linked). */
static inline bool rt__q_maybe_nonempty(rt_mpscq_t *q)
{
    return atomic_load_explicit(&q->tail, memory_order_seq_cst) != &q->stub;
}

/* ------------------------------------------------------------------ small hash map */

/* Open addressing, linear probing, backward-shift deletion. Keys are two u64 (never both 0);
 * values three u64. Owned by one thread, or guarded by the owner's lock. */
typedef struct rt_hkey { uint64_t a, b; } rt_hkey_t;
typedef struct rt_hent { rt_hkey_t k; uint64_t v[3]; } rt_hent_t;
typedef struct rt_hmap { rt_hent_t *t; uint32_t cap, n; } rt_hmap_t;

rt_hent_t *rt__hmap_get(rt_hmap_t *m, rt_hkey_t k);
rt_hent_t *rt__hmap_put(rt_hmap_t *m, rt_hkey_t k); /* existing or new (v zeroed) */
bool rt__hmap_del(rt_hmap_t *m, rt_hkey_t k, rt_hent_t *out);
void rt__hmap_free(rt_hmap_t *m);
static inline rt_hkey_t rt__pid_key(rt_pid_t p) { return (rt_hkey_t){((uint64_t)p.node << 32) | p.id, (uint64_t)p.serial + 1}; }
static inline rt_hkey_t rt__ref_key(rt_ref_t r) { return (rt_hkey_t){r, 1}; }
static inline rt_pid_t rt__pid_unpack(uint64_t a, uint64_t b) { return (rt_pid_t){(uint32_t)(a >> 32), (uint32_t)a, (uint32_t)(b - 1)}; }

/* ------------------------------------------------------------------ processes */

/* proc->word: serial (high 32 bits) | flags | count of senders inside a push (low 24 bits). */
#define RT_W_REFS 0x00ffffffull
#define RT_W_ALIVE (1ull << 24)
#define RT_W_KILL (1ull << 25)
#define RT_W_SERIAL(w) ((uint32_t)((w) >> 32))

enum { /* proc->flags (atomic): set by the owner, DYING under lock; others may read */
    RT_PF_TRAP_EXIT = 1u << 0,
    RT_PF_EXTERNAL = 1u << 1, /* a thread's mailbox, not a scheduled process */
    RT_PF_DYING = 1u << 2,    /* set under lock when exit begins: no new links/monitors */
    RT_PF_IN_INIT = 1u << 3,
};

/* Rarely used per-process fields, allocated on first use so an idle process stays small. */
typedef struct rt_ext {
    rt_hmap_t links;       /* linked pids (guarded by proc->lock) */
    rt_hmap_t watchers;    /* monitors on me: ref -> watcher pid (guarded by proc->lock) */
    rt_hmap_t monitors;    /* monitors I hold: ref -> target pid, v[2] = call timer (owner) */
    struct rt_res *res;    /* owned resources, newest first (owner) */
    char *name;            /* registered name (registry lock) */
    /* external threads only */
    pthread_mutex_t mx;
    pthread_cond_t cv;
    rt_msg_t *saved_h, *saved_t; /* skipped by a selective receive, in order */
} rt_ext_t;

typedef struct rt_proc {
    rt_mpscq_t mbox;        /* messages and signals, in arrival order */
    atomic_uint sched;      /* 1 while queued, running or dead; senders exchange it */
    _Atomic uint64_t word;  /* serial | ALIVE | KILL | in-flight sender count */
    rt_qnode_t runq;        /* link in run queues */
    const rt_behaviour_t *beh;
    void *state;
    uint32_t id;
    _Atomic uint32_t flags; /* RT_PF_*: atomic, others read EXTERNAL/DYING while the owner sets TRAP_EXIT */
    rt_spin_t lock;         /* links, watchers, DYING */
    int exit_reason;
    rt_ext_t *_Atomic ext;  /* allocated on first use by rt__ext (CAS: owner and others race) */
} __attribute__((aligned(64))) rt_proc_t;

rt_proc_t *rt__slot(uint32_t id);                        /* NULL if never allocated */
rt_proc_t *rt__acquire(rt_pid_t pid);                    /* local pid -> proc with a sender ref */
static inline void rt__release(rt_proc_t *p) { atomic_fetch_sub_explicit(&p->word, 1, memory_order_release); }
static inline uint32_t rt__serial(rt_proc_t *p) { return RT_W_SERIAL(atomic_load_explicit(&p->word, memory_order_relaxed)); }
static inline rt_pid_t rt__pid_of(rt_proc_t *p) { return (rt_pid_t){0, p->id, rt__serial(p)}; }
rt_ext_t *rt__ext(rt_proc_t *p);
/* Pushes m into p's mailbox and makes p runnable (the caller holds a sender ref on p). */
void rt__deliver(rt_proc_t *p, rt_msg_t *m);
/* Sends a runtime signal/message to a local or remote pid. Takes m. */
int rt__send_local(rt_pid_t to, rt_msg_t *m);
void rt__exit_process(rt_proc_t *p, int reason);
int rt__exit_signal_from(rt_pid_t from, rt_pid_t target, int reason); /* exit/2 on behalf of from */
int rt__link_from_remote(rt_pid_t local, rt_pid_t remote);   /* a remote pid links a local one */
void rt__unlink_local_side(rt_pid_t target, rt_pid_t peer);  /* drop peer from target's links */
int rt__monitor_install(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref); /* on local target */
void rt__monitor_remove(rt_pid_t target, rt_ref_t ref);
rt_ref_t rt__monitor_from(rt_proc_t *me, rt_pid_t target);  /* me monitors target */
void rt__monitor_record(rt_proc_t *me, rt_ref_t ref, rt_pid_t target); /* me's side only */
bool rt__demonitor_from(rt_proc_t *me, rt_ref_t ref);        /* true if it was active */
/* What an arriving runtime message means for p: true if it should reach the handler
 * (possibly rewritten), false if consumed here; may set *die_reason. */
bool rt__filter_system(rt_proc_t *p, rt_msg_t **mp, int *die_reason);
void rt__procs_thread_exit(void);   /* return this thread's cached free ids */
int rt__spawn_external(const rt_behaviour_t *b, rt_pid_t *out, rt_proc_t **pp);
void rt__procs_init(uint32_t max_procs);
void rt__procs_kill_all(void);
uint32_t rt__external_count(void);                   /* live thread mailboxes */
void rt__procs_free(void);

/* Internal signal types (never seen by handlers). */
enum {
    RT_SIG_EXIT = 64,      /* rt_exit_msg_t: exit/2 */
    RT_SIG_EXIT_LINK = 65, /* rt_exit_msg_t: a linked process exited */
    RT_SIG_KILL_WAKE = 66, /* empty: look at the KILL flag */
    RT_SIG_CALL_TIMEOUT = 67, /* ref: the call with this ref timed out */
    RT_SIG_UNLINK = 68,    /* from: the sender removed its link to us */
};

/* ------------------------------------------------------------------ thread context */

typedef struct rt_tls {
    struct rt_sched *sched;   /* NULL off scheduler threads */
    rt_proc_t *cur;           /* the process whose code runs now */
    rt_msg_t *cur_msg;        /* the message being handled (runtime-owned unless passed on) */
    jmp_buf *jb;              /* where rt_exit/RT_ASSERT jump to */
    int exit_reason;
    rt_proc_t *thread_proc;   /* this thread's own mailbox (external threads) */
    bool service;             /* the loop thread, workers: never given a mailbox (rt_self()
                               * is RT_NOPID there), so rt_stop has none of theirs to wait for */
} rt_tls_t;
extern _Thread_local rt_tls_t rt__tls;

/* ------------------------------------------------------------------ schedulers */

void rt__make_runnable(rt_proc_t *p);       /* p->sched was just won by the caller */
int rt__sched_start(unsigned n, unsigned batch, unsigned slice_us, unsigned idle_spin,
                    bool host_loop); /* host_loop: scheduler 0 runs the I/O loop */
void rt__sched_stop(void);
void rt__run_init(rt_proc_t *p, void *arg, int *reason); /* runs beh->init under a jump */

/* ------------------------------------------------------------------ messages, pools */

void rt__pool_thread_flush(void);
rt_msg_t *rt__sig_new(uint32_t type, rt_pid_t from, size_t size);
void rt__msg_deliver_to_handler(rt_proc_t *p, rt_msg_t *m); /* runs handle(), may not return */

/* ------------------------------------------------------------------ the I/O loop */

int rt__loop_start(bool own_thread); /* own_thread false: scheduler 0 hosts it (loop.c) */
void rt__loop_stop(void);
void rt__loop_adopt(void);     /* the hosting scheduler's thread, once: it is the loop's now */
void rt__loop_poll(bool wait); /* hosting scheduler: run jobs and ready I/O; wait: sleep until
                                * I/O, a due timer or rt__loop_wake */
void rt__loop_wake(void);      /* any thread: end the host's wait in rt__loop_poll(true) */
/* Runs fn(arg) on the loop thread, soon. Safe from any thread (also the loop itself). */
void rt__loop_call(void (*fn)(void *arg), void *arg);
struct uv_loop_s *rt__loop(void);
bool rt__on_loop(void);

void rt__timers_init(void);
void rt__timers_free(void);

/* ------------------------------------------------------------------ io.c, work.c */

int rt__work_start(unsigned workers);  /* the blocking-work pool (0: 4 threads) */
void rt__work_stop(void);              /* joins workers; drops (and releases) unstarted jobs */
void rt__io_free(void);                /* after the loop thread stopped: frees socket state */
void rt__registry_free(void);
void rt__registry_drop(rt_proc_t *p); /* the name of a dying process */

/* ------------------------------------------------------------------ external threads */

rt_proc_t *rt__thread_proc(void);        /* this thread's mailbox, created on first use */
void rt__external_wake(rt_proc_t *p);    /* signal a waiting thread */
void rt__externals_free(void);

/* ------------------------------------------------------------------ calls */

/* The process received a DOWN/reply/timeout for `ref`: returns true if it concerned a
 * pending call (and delivers the outcome), false to treat it normally. */
bool rt__call_filter(rt_proc_t *p, rt_msg_t **m);

/* ------------------------------------------------------------------ distribution hooks */

int rt__dist_start(const rt_config_t *c);
void rt__dist_stop(void);
void rt__dist_free(void);                    /* after the loop thread stopped */
int rt__dist_send(rt_pid_t to, rt_msg_t *m);                /* takes m */
int rt__dist_send_name(const char *node, const char *name, rt_msg_t *m); /* takes m */
int rt__dist_link(rt_pid_t local, rt_pid_t remote);
int rt__dist_unlink(rt_pid_t local, rt_pid_t remote);
int rt__dist_monitor(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref);
int rt__dist_demonitor(rt_pid_t watcher, rt_pid_t target, rt_ref_t ref);
int rt__dist_exit(rt_pid_t from, rt_pid_t to, int reason, bool linked);
int rt__dist_down(rt_pid_t watcher, rt_ref_t ref, rt_pid_t target, int reason);
/* The node side of rt_call_name to a remote node: records monitor req->ref of local `caller`
 * on the node entry (so a dropped link ends the call with noconnection) and sends req in a
 * CALL_NAME frame; the peer resolves `name` and monitors the process for the caller. Takes
 * req. Every failure arrives as a DOWN for req->ref. Returns the pid the caller records as
 * the monitor's target: {node entry, 0, 0} (the peer alone knows the process), or RT_NOPID
 * when `node` is not a valid node name. */
rt_pid_t rt__dist_call_name(rt_pid_t caller, const char *node, const char *name, rt_msg_t *req);
void rt__dist_flush_thread(void);           /* end of a turn: write what this thread queued */
bool rt__is_local_node_name(const char *node);

/* The global runtime state. */
typedef struct rt_global {
    atomic_int state; /* 0 stopped, 1 running, 2 stopping */
    rt_config_t cfg;
    rt_pid_t root;
    atomic_uint_fast64_t next_ref;
} rt_global_t;
extern rt_global_t rt__g;

#endif
