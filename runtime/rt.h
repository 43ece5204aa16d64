/*
 * rt.h — the public API of Cairn's actor runtime (prefix rt_).
 *
 * An Erlang/OTP-style runtime for C: stackless processes with a behaviour (init, handle one
 * message at a time, terminate), lock-free mailboxes, M:N scheduling over a few scheduler
 * threads, links, monitors, exit signals, timers, request/reply calls, a name registry,
 * supervisors (runtime/sup.h), process-owned sockets and a blocking-work pool (runtime/io.h),
 * and transparent distribution between OS processes (runtime/dist.h).
 *
 * Threads. A handler runs on a scheduler thread and must not block. Any thread may send. A
 * thread that is not a scheduler (main, tests, tools) gets its own pid and mailbox on first
 * use, so it can receive (rt_receive), be monitored and make blocking calls (rt_call_sync).
 *
 * Ownership. A message belongs to exactly one owner. rt_send() always takes it, even when it
 * fails. A message handed to handle() belongs to the runtime, which frees it when handle()
 * returns, unless the handler passed it on (rt_send/rt_reply of that same message) or kept it
 * with rt_msg_keep(), after which the handler owns it and frees it with rt_msg_free().
 *
 * Errors are negative codes from RT_ERRNO_MAP (0 = success); rt_strerror() names them.
 * Exit reasons are non-negative codes from RT_REASON_MAP; user reasons start at
 * RT_REASON_USER. Out of memory aborts the node (server policy).
 */
#ifndef CAIRN_RT_H
#define CAIRN_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ProtobufCMessage ProtobufCMessage;
typedef struct ProtobufCMessageDescriptor ProtobufCMessageDescriptor;

/* ------------------------------------------------------------------ errors and reasons */

#define RT_ERRNO_MAP(XX)                                                        \
    XX(EINVAL, -1, "invalid argument")                                          \
    XX(ENOMEM, -2, "out of memory")                                             \
    XX(ENOPROC, -3, "no such process")                                          \
    XX(ETIMEDOUT, -4, "timed out")                                              \
    XX(EEXIST, -5, "name already registered")                                   \
    XX(ENOTSUP, -6, "not supported")                                            \
    XX(ELIMIT, -7, "process limit reached")                                     \
    XX(ENOTCONN, -8, "node not connected")                                      \
    XX(ECONNREFUSED, -9, "connection refused")                                  \
    XX(EBADMSG, -10, "malformed message")                                       \
    XX(EDOWN, -11, "target went down")                                          \
    XX(ESTATE, -12, "runtime not started or already stopping")                  \
    XX(EAUTH, -13, "authentication failed")                                     \
    XX(EIO, -14, "i/o error")                                                   \
    XX(EINITFAIL, -15, "process init failed")                                   \
    XX(ENOTFOUND, -16, "not found")                                             \
    XX(ECALLER, -17, "not allowed from this thread")                          \
    XX(EADDRINUSE, -18, "address already in use")

enum {
#define RT__ERR_ENUM(name, val, msg) RT_##name = (val),
    RT_ERRNO_MAP(RT__ERR_ENUM)
#undef RT__ERR_ENUM
    RT_OK = 0
};

#define RT_REASON_MAP(XX)                                                       \
    XX(NORMAL, 0, "normal")                                                     \
    XX(KILL, 1, "kill")                                                         \
    XX(KILLED, 2, "killed")                                                     \
    XX(SHUTDOWN, 3, "shutdown")                                                 \
    XX(NOPROC, 4, "noproc")                                                     \
    XX(NOCONNECTION, 5, "noconnection")                                         \
    XX(TIMEOUT, 6, "timeout")                                                   \
    XX(CRASH, 7, "crash")                                                       \
    XX(ASSERT, 8, "assertion failed")                                           \
    XX(INIT_FAILED, 9, "init failed")                                           \
    XX(SUP_INTENSITY, 10, "reached_max_restart_intensity")                      \
    XX(BADMSG, 11, "badmsg") /* a call's request could not be decoded by the callee's node */

enum {
#define RT__REASON_ENUM(name, val, msg) RT_R_##name = (val),
    RT_REASON_MAP(RT__REASON_ENUM)
#undef RT__REASON_ENUM
    RT_REASON_USER = 1000 /* first code free for applications */
};

const char *rt_strerror(int err);
const char *rt_reason_str(int reason); /* "user(1003)" style for user codes, static buffer */

/* ------------------------------------------------------------------ pids and references */

/* A process id. node 0 is this node; other values index this node's table of peers. id 0 is
 * never a process. serial makes a pid unique for the life of the runtime: a pid of a dead
 * process never reaches the process that later reuses its slot. */
typedef struct rt_pid {
    uint32_t node;
    uint32_t id;
    uint32_t serial;
} rt_pid_t;

#define RT_NOPID ((rt_pid_t){0, 0, 0})

static inline bool rt_pid_eq(rt_pid_t a, rt_pid_t b)
{
    return a.node == b.node && a.id == b.id && a.serial == b.serial;
}
static inline bool rt_pid_is_nil(rt_pid_t p) { return p.id == 0; }

/* A reference, unique on this node for the life of the runtime. 0 is "no reference". */
typedef uint64_t rt_ref_t;
rt_ref_t rt_make_ref(void);

/* ------------------------------------------------------------------ messages */

/* Message types: values below RT_MSG_USER are the runtime's own. */
enum {
    RT_MSG_EXIT = 1,        /* payload rt_exit_msg_t: an exit signal turned into a message */
    RT_MSG_DOWN = 2,        /* payload rt_down_msg_t: a monitored process/node went down */
    RT_MSG_CALL_FAILED = 3, /* payload rt_call_failed_t: an async call ended without reply */
    RT_MSG_NODEUP = 4,      /* payload rt_node_msg_t */
    RT_MSG_NODEDOWN = 5,    /* payload rt_node_msg_t */
    RT_MSG_WORK_DONE = 6,   /* runtime/io.h */
    RT_MSG_TCP = 7,         /* runtime/io.h: socket events */
    RT_MSG_SYS_FIRST_INTERNAL = 64, /* 64..1023: internal signals, never seen by handlers */
    RT_MSG_USER = 1024
};

enum {
    RT_MSGF_PB = 1u << 0,    /* payload is a ProtobufCMessage* (see rt_msg_pb) */
    RT_MSGF_CALL = 1u << 1,  /* a call request: reply with rt_reply() */
    RT_MSGF_REPLY = 1u << 2, /* the reply to the call whose reference is in ref */
};

/* The link of an intrusive lock-free queue (mailboxes, run queues): runtime-owned. */
typedef struct rt_qnode {
    struct rt_qnode *_Atomic next;
} rt_qnode_t;

typedef struct rt_msg rt_msg_t;
struct rt_msg {
    rt_qnode_t q_;             /* runtime: mailbox link (must stay first) */
    uint32_t type;             /* the type tag */
    uint32_t size;             /* payload size in bytes */
    rt_pid_t from;             /* the sender (RT_NOPID for timer/runtime messages) */
    uint32_t to_serial_;       /* runtime: serial of the addressee */
    uint16_t flags;            /* RT_MSGF_* */
    uint16_t cls_;             /* runtime: allocation class */
    rt_ref_t ref;              /* call reference (RT_MSGF_CALL / RT_MSGF_REPLY), else 0 */
    void (*dtor)(rt_msg_t *m); /* optional: releases what the payload points to */
    _Alignas(16) unsigned char data[];
};

/* Returns a new message with `size` bytes of uninitialised payload at m->data. Never NULL. */
rt_msg_t *rt_msg_new(uint32_t type, size_t size);
/* A message whose payload is a copy of `size` bytes at `data`. */
rt_msg_t *rt_msg_copy(uint32_t type, const void *data, size_t size);
/* A message carrying a protobuf-c message; the message takes ownership of `pb`, releasing it
 * with `free_pb` (NULL: protobuf_c_message_free_unpacked). Only such messages (or plain
 * payloads without pointers) may cross nodes: the remote side decodes with the descriptor
 * registered for `type` (rt_msg_register_pb). */
rt_msg_t *rt_msg_pb(uint32_t type, ProtobufCMessage *pb, void (*free_pb)(ProtobufCMessage *));
static inline ProtobufCMessage *rt_msg_pb_get(const rt_msg_t *m)
{
    return (m->flags & RT_MSGF_PB) ? *(ProtobufCMessage *const *)(const void *)m->data : NULL;
}
/* Register the descriptor that decodes remote messages of `type` (do it on every node). */
int rt_msg_register_pb(uint32_t type, const ProtobufCMessageDescriptor *d);
const ProtobufCMessageDescriptor *rt_msg_descriptor(uint32_t type);

void rt_msg_free(rt_msg_t *m);
/* Inside handle(): keep the current message past the handler's return (caller now owns it). */
void rt_msg_keep(rt_msg_t *m);

/* ------------------------------------------------------------------ processes */

enum { RT_CONTINUE = 0, RT_STOP = 1 }; /* handle() results; a negative result is a crash */

typedef struct rt_behaviour {
    const char *name;     /* for logs */
    size_t state_size;    /* the runtime allocates (zeroed) and frees the state; may be 0 */
    /* Runs in the spawner's thread, before rt_spawn returns; rt_self() is the new pid.
     * Returns 0, or a non-zero exit reason: the process then exits and rt_spawn fails. */
    int (*init)(void *state, void *arg);
    /* One message at a time. Returns RT_CONTINUE, RT_STOP (exit normal), or < 0 (crash). */
    int (*handle)(void *state, rt_msg_t *msg);
    /* Optional: runs once when the process exits for any reason (also after a crash or a
     * kill); releases what the state owns. Must not block. */
    void (*terminate)(void *state, int reason);
} rt_behaviour_t;

typedef struct rt_spawn_opts {
    bool link;           /* link to the caller once init succeeded (spawn_link) */
    bool trap_exit;      /* start with trap_exit on */
    const char *name;    /* register under this name before init runs (NULL: none) */
    rt_ref_t *monitor;   /* if non-NULL: the caller monitors the new process; ref here */
} rt_spawn_opts_t;

/* Spawns a process; on success *out (may be NULL) is its pid. Returns RT_EINITFAIL when init
 * refused (the reason is logged), RT_ELIMIT, RT_EEXIST (name taken), RT_ESTATE. */
int rt_spawn(const rt_behaviour_t *b, void *arg, rt_pid_t *out);
int rt_spawn_opt(const rt_behaviour_t *b, void *arg, const rt_spawn_opts_t *o, rt_pid_t *out);

/* The current process, or the calling thread's own pid outside a process. */
rt_pid_t rt_self(void);
/* The state of the current process (NULL outside a handler). */
void *rt_self_state(void);
bool rt_is_alive(rt_pid_t p);   /* local pids only; remote pids: false */
uint32_t rt_process_count(void);

/* Sends m to `to` (local or remote). Always takes m. Returns 0, or RT_ENOPROC / RT_ENOTCONN
 * for information only: like Erlang's send, a send to a dead process is not an error for
 * the sender's logic. FIFO between any pair of sender and receiver. */
int rt_send(rt_pid_t to, rt_msg_t *m);
/* Sends to a registered name on `node` (NULL or this node's name: local). */
int rt_send_name(const char *node, const char *name, rt_msg_t *m);

/* ------------------------------------------------------------------ links, monitors, exits */

int rt_link(rt_pid_t other);    /* current process <-> other; other dead: exit noproc */
int rt_unlink(rt_pid_t other);  /* afterwards the link has no effect, even if in flight */
void rt_trap_exit(bool on);     /* exit signals become RT_MSG_EXIT messages (not kill) */

typedef struct rt_exit_msg {
    rt_pid_t from;
    int reason;
} rt_exit_msg_t;

/* Monitor `target`: one RT_MSG_DOWN with this ref when it exits (RT_R_NOPROC if already
 * dead, RT_R_NOCONNECTION if its node link drops). Returns the ref. */
rt_ref_t rt_monitor(rt_pid_t target);
enum { RT_DEMONITOR_FLUSH = 1 };
/* Removes the monitor. With RT_DEMONITOR_FLUSH (only for the thread/process that owns the
 * mailbox) a DOWN already queued for it is removed too. Returns true if it was active. */
bool rt_demonitor(rt_ref_t ref, int flags);

typedef struct rt_down_msg {
    rt_ref_t ref;
    rt_pid_t pid;
    int reason;
} rt_down_msg_t;

/* Erlang's exit/2: send an exit signal with `reason` to target. RT_R_KILL cannot be
 * trapped and ends the target with RT_R_KILLED. */
int rt_exit_signal(rt_pid_t target, int reason);
/* From inside a handler: ends the current process now with `reason` (does not return). */
_Noreturn void rt_exit(int reason);
/* An invariant check that, when false inside a handler, ends only the current process
 * (reason RT_R_ASSERT) and logs where; outside a process it aborts. Always on. */
#define RT_ASSERT(e) ((e) ? (void)0 : rt__assert_fail(#e, __FILE__, __LINE__))
void rt__assert_fail(const char *expr, const char *file, int line);

/* Resources owned by the current process, released (release(obj)) when it exits, in
 * reverse order of acquisition. Returns a handle for rt_disown (which does not release). */
typedef uint64_t rt_res_t;
rt_res_t rt_own(void (*release)(void *obj), void *obj);
void rt_disown(rt_res_t h);

/* ------------------------------------------------------------------ timers */

typedef uint64_t rt_timer_t;
/* Delivers m to `to` after `ms` milliseconds. Takes m. Returns a timer handle (never 0). */
rt_timer_t rt_send_after(uint32_t ms, rt_pid_t to, rt_msg_t *m);
/* true: the timer was pending and its message is freed, never delivered. false: it already
 * fired (the message may be in the mailbox) or the handle is unknown. */
bool rt_cancel_timer(rt_timer_t t);

/* ------------------------------------------------------------------ call / reply */

/* From a process: send req as a call (monitor + timeout, matched by a fresh reference).
 * Exactly one outcome arrives later as a message: the reply (flags RT_MSGF_REPLY, ref ==
 * the returned ref) or RT_MSG_CALL_FAILED (rt_call_failed_t: RT_R_TIMEOUT, the target's
 * exit reason, RT_R_NOPROC / RT_R_NOCONNECTION as for monitors, or RT_R_BADMSG when the
 * target's node cannot decode req). Replies that arrive after the timeout are dropped. Takes
 * req. */
rt_ref_t rt_call(rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms);
typedef struct rt_call_failed {
    rt_ref_t ref;
    int reason;
} rt_call_failed_t;

/* From a thread that is not a scheduler: the blocking form. Returns 0 with *reply (the
 * caller frees it), RT_ETIMEDOUT, RT_EDOWN (*reason_out = the target's exit reason),
 * RT_ECALLER from inside a process. Takes req. */
int rt_call_sync(rt_pid_t to, rt_msg_t *req, uint32_t timeout_ms, rt_msg_t **reply,
                 int *reason_out);

/* rt_call to whatever process is registered as `name` on `node` (NULL or this node's name:
 * local), resolved when the request arrives there, as Erlang's gen_server:call({Name, Node}):
 * callers need no pid, so a process restarted under the same name is reached by the next
 * call. The callee sees an ordinary call (rt_is_call, rt_reply(rt_call_from(req), ...)).
 * Exactly one outcome arrives, like rt_call: the reply, or RT_MSG_CALL_FAILED with
 *   RT_R_NOPROC        the name is not registered there (answered by that node at once),
 *   the exit reason    the process the name resolved to exited before replying,
 *   RT_R_NOCONNECTION  the node is unreachable, or its link dropped while the call waited
 *                      (as soon as the link's failure detection says so),
 *   RT_R_BADMSG        that node could not decode the request (no descriptor registered),
 *   RT_R_TIMEOUT       no outcome within timeout_ms; a reply after it is dropped.
 * Returns the call's reference (0 outside a process). Takes req. */
rt_ref_t rt_call_name(const char *node, const char *name, rt_msg_t *req, uint32_t timeout_ms);
/* The blocking form of rt_call_name, for threads that are not schedulers: the results of
 * rt_call_sync (RT_EDOWN with *reason_out = one of the reasons above). Takes req. */
int rt_call_name_sync(const char *node, const char *name, rt_msg_t *req, uint32_t timeout_ms,
                      rt_msg_t **reply, int *reason_out);

/* The caller of a request, for replying later (gen_server's From). */
typedef struct rt_from {
    rt_pid_t pid;
    rt_ref_t ref;
} rt_from_t;
static inline bool rt_is_call(const rt_msg_t *m) { return (m->flags & RT_MSGF_CALL) != 0; }
static inline rt_from_t rt_call_from(const rt_msg_t *req) { return (rt_from_t){req->from, req->ref}; }
/* Replies to a call. Takes reply. */
int rt_reply(rt_from_t to, rt_msg_t *reply);

/* ------------------------------------------------------------------ receive (threads) */

/* For a thread that is not a scheduler: waits up to timeout_ms (RT_INFINITY: forever) for
 * the next message in this thread's mailbox. Returns 0 with *out (caller frees), or
 * RT_ETIMEDOUT, RT_ECALLER from inside a process. */
#define RT_INFINITY UINT32_MAX
int rt_receive(uint32_t timeout_ms, rt_msg_t **out);
/* Like rt_receive, but only a message for which match(m, ctx) is true; others stay queued
 * in order (a selective receive). */
int rt_receive_match(uint32_t timeout_ms, bool (*match)(const rt_msg_t *m, void *ctx),
                     void *ctx, rt_msg_t **out);
/* Drops this thread's pid and mailbox (pending messages are freed). */
void rt_thread_detach(void);

/* ------------------------------------------------------------------ registry */

int rt_register(const char *name, rt_pid_t pid); /* RT_EEXIST, RT_ENOPROC, RT_EINVAL */
int rt_unregister(const char *name);             /* RT_ENOTFOUND */
rt_pid_t rt_whereis(const char *name);           /* RT_NOPID if none */

/* ------------------------------------------------------------------ the runtime */

typedef struct rt_config {
    unsigned schedulers;     /* scheduler threads; 0: one per core */
    unsigned batch;          /* max messages per process turn (default 64) */
    unsigned slice_us;       /* max time per process turn (default 100 µs) */
    uint32_t max_procs;      /* process table size (default 1 << 22) */
    unsigned workers;        /* blocking-work threads (default 4) */
    unsigned idle_spin;      /* rounds an idle scheduler spins before it sleeps (default
                              * 2000, ~100-300 µs: lowest wake-up latency; fewer rounds
                              * leave more CPU to other threads on a busy host; 0: sleep
                              * at once) */
    bool io_thread;          /* sockets and timers on a thread of their own; false (default):
                              * scheduler 0 polls them between process turns and sleeps in
                              * their wait, so a request reaches its process on the thread
                              * that read it (no hand-over, no wake-up) */
    /* Distribution (runtime/dist.h); node_name NULL: not distributed. */
    const char *node_name;   /* "name@host:port"; the node listens on host:port (port 0:
                              * a free one, and rt_node_self() names the bound port) */
    const char *cookie;      /* shared secret; required with node_name */
    unsigned heartbeat_ms;   /* tick on idle node links (default 1000) */
    unsigned net_timeout_ms; /* a silent peer is down after this long (default 4000) */
} rt_config_t;

void rt_config_default(rt_config_t *c);
/* Starts the runtime (one per OS process). */
int rt_start(const rt_config_t *c);
/* Names a process (normally the top supervisor) that rt_stop shuts down first, in order. */
void rt_set_root(rt_pid_t root);
/* Stops the runtime: shuts the root down (exit shutdown, waits up to shutdown_ms, then
 * kills), kills every remaining process, joins all threads and frees everything. Must be
 * called from a thread that is not a scheduler. */
void rt_stop(uint32_t shutdown_ms);
bool rt_running(void);

/* Monotonic time in nanoseconds. */
uint64_t rt_now_ns(void);

/* ------------------------------------------------------------------ logging */

enum { RT_LOG_DEBUG, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR, RT_LOG_NONE };
void rt_log_set_level(int level);
int rt_log_level(void);
int rt_log_set_file(const char *path); /* also append to this file (NULL: stderr only) */
void rt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rt_debug(...) (rt_log_level() <= RT_LOG_DEBUG ? rt_log(RT_LOG_DEBUG, __VA_ARGS__) : (void)0)
#define rt_info(...) rt_log(RT_LOG_INFO, __VA_ARGS__)
#define rt_warn(...) rt_log(RT_LOG_WARN, __VA_ARGS__)
#define rt_error(...) rt_log(RT_LOG_ERROR, __VA_ARGS__)

#endif
