/*
 * io.h — process-owned TCP sockets (runtime/io.c) and the blocking-work pool (runtime/work.c).
 *
 * Sockets live on the runtime's libuv loop ("the loop thread": scheduler 0's thread, or a
 * thread of its own with rt_config_t.io_thread; runtime/loop.c). Each one is owned by a process (or a
 * non-scheduler thread's mailbox) and reports everything as RT_MSG_TCP messages to its owner,
 * Erlang's ports in spirit: bytes arrive as DATA messages while the socket is active; a passive
 * socket is not read at all, so a slow owner makes the peer's writes back up (TCP flow control).
 * Every function here is callable from any thread and never blocks; the work happens later on
 * the loop thread and its outcome (connected, write failed, ...) arrives as a message.
 *
 * Ownership. The creator owns a socket (rt_tcp_listen / rt_tcp_connect). Sockets accepted on a
 * listener belong to the listener's owner, start passive, and are announced by an ACCEPTED
 * message. rt_sock_controlling_process hands a socket to another process; the new owner takes
 * it up ("claims" it) with its first call on the socket (normally rt_sock_set_active). A
 * claimed socket is an rt_own resource of its owner and is closed as soon as the owner exits;
 * an unclaimed one is closed within ~100 ms of its owner's death (the loop checks). A socket
 * whose owner is gone when one of its events is delivered is closed too.
 *
 * Lifetime of an id. An rt_sock_t stays valid until rt_sock_close or its owner's exit; after
 * that it is stale forever (a generation counter: a stale id never reaches a newer socket) and
 * calls on it return RT_ENOTFOUND. A CLOSED (peer EOF) or ERROR event does not free the id:
 * the owner still calls rt_sock_close (like close(2) after read() returned 0).
 */
#ifndef CAIRN_RT_IO_H
#define CAIRN_RT_IO_H

#include "runtime/rt.h"

/* ------------------------------------------------------------------ sockets */

/* An opaque socket handle: generation << 32 | slot + 1. 0 is "no socket". */
typedef uint64_t rt_sock_t;

/* Active modes (rt_sock_set_active). A positive n is Erlang's {active, N}: deliver n DATA
 * messages, then turn passive and send a PASSIVE event. */
enum {
    RT_SOCK_PASSIVE = 0,  /* not read: data waits in the kernel, then at the peer */
    RT_SOCK_ONCE = 1,     /* one DATA message, then passive */
    RT_SOCK_ACTIVE = -1,  /* every read becomes a DATA message (no flow control) */
};

/* The kinds of RT_MSG_TCP events. */
enum {
    RT_SOCK_ACCEPTED = 1,  /* `sock` is a new connection accepted on `listener`; it is
                            * passive and owned by the receiver of this message */
    RT_SOCK_CONNECTED = 2, /* rt_tcp_connect of `sock` succeeded */
    RT_SOCK_DATA = 3,      /* `len` bytes at `data` were read from `sock` */
    RT_SOCK_CLOSED = 4,    /* the peer closed its side (EOF); reading stops */
    RT_SOCK_ERROR = 5,     /* `status` says what failed: a connect (then the socket is dead),
                            * a read (reading stops), a write, or an accept on a listener */
    RT_SOCK_PASSIVE_EV = 6 /* an {active, N} count ran out: the socket is passive now */
};

/* The payload of an RT_MSG_TCP message (m->data). from is RT_NOPID. */
typedef struct rt_sock_event {
    rt_sock_t sock;     /* the socket the event is about */
    rt_sock_t listener; /* ACCEPTED: the listening socket; else 0 */
    uint32_t kind;      /* RT_SOCK_ACCEPTED .. RT_SOCK_PASSIVE_EV */
    int32_t status;     /* ERROR: a negative RT_E* code (rt_strerror); else 0 */
    int32_t sys_error;  /* ERROR: the libuv code behind it (uv_strerror), for logs; else 0 */
    uint32_t len;       /* DATA: number of bytes at data */
    unsigned char data[];
} rt_sock_event_t;

/* The event in an RT_MSG_TCP message, NULL for any other message. */
static inline const rt_sock_event_t *rt_sock_event(const rt_msg_t *m)
{
    return m->type == RT_MSG_TCP ? (const rt_sock_event_t *)(const void *)m->data : NULL;
}

/* Listens on host:port (host: a numeric IPv4/IPv6 address, "localhost", or NULL/"" for any
 * IPv4 address; port 0 picks a free port, see rt_sock_local_port). The caller owns the
 * listener; connections are accepted as they come and announced as ACCEPTED events to the
 * listener's owner (backlog <= 0: 128). Returns 0 with *out, RT_EINVAL (bad host or port),
 * RT_EADDRINUSE, RT_EIO (other socket errors, logged), RT_ESTATE, RT_ECALLER (called on a
 * worker or the loop thread: they cannot own sockets). */
int rt_tcp_listen(const char *host, int port, int backlog, rt_sock_t *out);

/* Starts connecting to host:port (numeric address or "localhost"; resolve other names
 * first, e.g. on the worker pool). Returns 0 with *out at once; the outcome arrives later as
 * CONNECTED or ERROR (status RT_ECONNREFUSED, RT_ETIMEDOUT, RT_EIO). The caller owns the
 * socket; it starts passive (call rt_sock_set_active at any time, even before CONNECTED).
 * Returns RT_EINVAL for a bad address, RT_ESTATE when the runtime is not running,
 * RT_ECALLER on a worker or the loop thread. */
int rt_tcp_connect(const char *host, int port, rt_sock_t *out);

/* Sets the active mode (RT_SOCK_PASSIVE, RT_SOCK_ONCE, RT_SOCK_ACTIVE or a count n > 0;
 * each call replaces the previous mode). Takes effect on the loop thread in call order with
 * other calls from the same thread. No effect on a listener (it always accepts).
 * Returns 0, RT_ENOTFOUND (stale id), RT_EINVAL. */
int rt_sock_set_active(rt_sock_t sock, int mode);

/* Queues len bytes for writing. The bytes are copied: the caller keeps `data`. Writes happen
 * in order on the loop thread; a failure is reported to the owner as an ERROR event. The send
 * queue is unbounded (rt_sock_send_queue tells its size, for callers that want to pace
 * themselves). Returns 0, RT_ENOTFOUND (stale id), RT_EINVAL (a listener). */
int rt_sock_send(rt_sock_t sock, const void *data, size_t len);
/* Bytes queued by rt_sock_send and not yet written to the kernel (0 for a stale id). */
size_t rt_sock_send_queue(rt_sock_t sock);

/* Closes the socket (pending writes are dropped) and makes the id stale. No more events are
 * sent for it, though some may already be in the owner's mailbox. Returns 0, RT_ENOTFOUND. */
int rt_sock_close(rt_sock_t sock);

/* Hands the socket to new_owner (a local pid); only the current owner may do it
 * (RT_ECALLER otherwise). Later events go to new_owner; events already sent stay with the old
 * owner, so hand a socket over while it is passive. Returns 0, RT_ENOTFOUND, RT_EINVAL
 * (remote or nil pid), RT_ENOPROC (new_owner is dead: the socket stays with the caller). */
int rt_sock_controlling_process(rt_sock_t sock, rt_pid_t new_owner);

/* The owner of a socket (RT_NOPID for a stale id). */
rt_pid_t rt_sock_owner(rt_sock_t sock);
/* The local port (listeners: known at once; other sockets: once connected/accepted; else 0). */
int rt_sock_local_port(rt_sock_t sock);
/* Number of sockets whose ids are not stale yet (tests, diagnostics). */
unsigned rt_sock_count(void);

/* ------------------------------------------------------------------ the worker pool */

/* Work that may block (disk, fsync, a long fold) runs on a pool of rt_config.workers threads
 * (default 4), never on a scheduler or the loop. fn(arg) runs on a worker thread and owns
 * arg; the message it returns (NULL: none) is sent to reply_to (RT_NOPID: dropped). A worker
 * thread has no mailbox: messages built there have from == RT_NOPID, and fn must not use
 * rt_receive or rt_call_sync (plain rt_send is fine).
 *
 * The queue holds at most RT_WORK_QUEUE_MAX jobs that have not started; beyond that
 * submit fails with RT_ELIMIT (back-pressure: the submitter should shed or delay load).
 * At rt_stop, running jobs finish (rt_stop waits for them) and jobs not started are dropped:
 * their arg is released with free_arg. On a failed submit, arg is released with free_arg
 * too; with free_arg NULL the runtime never touches arg except by passing it to fn. */
#define RT_WORK_QUEUE_MAX 65536

typedef rt_msg_t *(*rt_work_fn)(void *arg);

/* Returns 0, RT_ELIMIT (queue full), RT_ESTATE (runtime not running), RT_EINVAL (fn NULL). */
int rt_work_submit(rt_work_fn fn, void *arg, rt_pid_t reply_to);
int rt_work_submit2(rt_work_fn fn, void *arg, void (*free_arg)(void *arg), rt_pid_t reply_to);

/* A small completion message for work that has nothing else to say: RT_MSG_WORK_DONE with
 * an rt_work_done_t payload. */
typedef struct rt_work_done {
    uint64_t tag;   /* the submitter's own identification of the job */
    int64_t result; /* the job's outcome: a count, or a negative error code */
} rt_work_done_t;
rt_msg_t *rt_work_done(uint64_t tag, int64_t result);

/* A thread the application starts itself to serve processes (node/write_queue.c's writer):
 * rt_service_thread_enter() before its first rt_send makes it a service thread like the
 * pool's workers (no mailbox; its messages come from RT_NOPID); rt_service_thread_exit()
 * before it returns hands back the message memory it cached. Not for scheduler threads. */
void rt_service_thread_enter(void);
void rt_service_thread_exit(void);

/* The pass hook: fn(arg) runs on each scheduler thread at the end of each pass, i.e. when it
 * runs out of work and every few dozen turns while it stays busy (runtime/sched.c). For a
 * service that batches what processes hand it: the processes note on their thread that
 * the service has work, and the hook wakes it once for the pass, or does the batched work
 * itself (node/write_queue.c writes LevelDB groups there). Every scheduler's next pass
 * waits for it, so keep it short and never wait on a process. One hook per runtime; NULL
 * clears it. fn and arg are published separately: change them only to or from NULL, and
 * clear them only while no scheduler runs (after rt_stop) or passes may see the old pair
 * once more. */
typedef void (*rt_pass_hook_fn)(void *arg);
void rt_set_pass_hook(rt_pass_hook_fn fn, void *arg);
/* Whether the calling thread is a scheduler's, i.e. one whose passes end in the hook. */
bool rt_on_scheduler(void);

/* Jobs queued and not started / running right now (diagnostics, tests). */
unsigned rt_work_queued(void);
unsigned rt_work_running(void);

#endif
