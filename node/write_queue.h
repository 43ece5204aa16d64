/*
 * write_queue.h — the node's writes (node/write_queue.c, prefix wq_): vnodes hand it their
 * LevelDB puts, and it writes them in groups, either on the node's writer thread or on the
 * vnode's scheduler at the end of its pass.
 *
 * Why: a put's LevelDB write is most of its cost. Grouped, the puts of many partitions share
 * one LevelDB write, so one log append (in the node layout, storage/backend.h). On a thread
 * of its own, when the node has a CPU to spare, the writes also overlap with the scheduler's
 * request handling (docs/benchmarks.md, "Sixth sitting" and "Seventh sitting").
 *
 * Protocol: the submitter (a vnode) owns a wq_job_t, fills it and calls wq_submit; the
 * writer (the thread, or the pass hook) stores job->val under job->key in job->backend,
 * sets job->rc, and then sends an
 * empty message of type job->done_type to job->reply_to. From wq_submit until that message
 * (or wq_wait) the job and everything it points to belong to the writer: the submitter must
 * not touch the backend, free the key or value, or reuse the job. A vnode therefore handles
 * no other message while its write is out (node/vnode.c keeps them in order for later), so
 * what the vnode reads afterwards is exactly what it would have read had it written inline.
 *
 * Jobs are written in groups, in the order they were queued (on the writer's FIFO, or on
 * the submitting scheduler's pass list); a vnode has at most one out at a time. Any thread
 * may submit; wq_wait blocks (for the process's terminate, which must not leave the writer a
 * backend it is about to close).
 *
 * Auto mode: the hop to the writer only pays when the writer has a CPU the schedulers do not
 * fill. Started with a scheduler count, the writer checks its CPU affinity (which `taskset
 * -a` or a cgroup cpuset may change while the node runs) at start and then every second,
 * and wq_active says whether it takes the writes now; when it does not, wq_submit puts them
 * on the submitting scheduler's pass list, as with the writer off.
 */
#ifndef CAIRN_NODE_WRITE_QUEUE_H
#define CAIRN_NODE_WRITE_QUEUE_H

#include "runtime/rt.h"
#include "storage/backend.h"

#include <stdbool.h>

typedef struct wq_job_s {
    struct wq_job_s *next;       /* the queue's */
    store_backend_t *backend;
    const store_key_t *key;
    const void *val;
    size_t len;
    rt_pid_t reply_to;
    uint32_t done_type;          /* the message type sent to reply_to when the write is done */
    int rc;                      /* set by the writer: the write's result */
    bool done;                   /* under the queue's lock; see wq_wait */
} wq_job_t;

typedef struct write_queue_s write_queue_t;

/* vnode.write_thread: WQ_ON always writes on the writer thread; WQ_OFF starts no thread, so
 * every write is grouped at the end of its scheduler's pass; WQ_AUTO decides by CPU affinity
 * (above). */
typedef enum { WQ_OFF, WQ_ON, WQ_AUTO } wq_mode_t;

/* Starts the queue (and the writer thread unless WQ_OFF; schedulers: for WQ_AUTO) and
 * installs its runtime pass hook. 0 and *out, or a negative errno (thread creation failed).
 * Call after rt_start: the writer sends runtime messages. One queue per runtime. */
int wq_start(wq_mode_t mode, unsigned schedulers, write_queue_t **out);
/* Whether submitters should hand their writes over now (see auto mode). Any thread. */
bool wq_active(const write_queue_t *q);
/* Stops and joins the writer and clears the pass hook; every submitted job must be done
 * (wq_wait) or its submitter's process gone with the runtime. Call after rt_stop, or while
 * no process submits. NULL: no-op. */
void wq_stop(write_queue_t *q);
/* Queues job (see the protocol above). On a scheduler thread it never blocks on the write
 * itself; on any other thread, with the writer inactive, it writes the job at once. */
void wq_submit(write_queue_t *q, wq_job_t *job);
/* Blocks until job (submitted to q) is done; returns job->rc. Writes the calling thread's
 * pending pass list first (a vnode's terminate may wait for its own write there). */
int wq_wait(write_queue_t *q, wq_job_t *job);

#endif
