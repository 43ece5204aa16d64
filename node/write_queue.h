/*
 * write_queue.h — the node's writer thread (node/write_queue.c, prefix wq_): vnodes hand it
 * their LevelDB puts so that the write (log append, memtable insert, LevelDB's own stalls)
 * runs beside the schedulers instead of on them.
 *
 * Why: a put's LevelDB write is most of its cost on the scheduler thread, and on a memtable
 * that many partitions share the scheduler's caches with everything else. On one thread of
 * its own the write is cheaper (its caches stay warm), it overlaps with the scheduler's
 * request handling, and one wake-up drains every write queued meanwhile
 * (docs/benchmarks.md, "Sixth sitting").
 *
 * Protocol: the submitter (a vnode) owns a wq_job_t, fills it and calls wq_submit; the
 * writer stores job->val under job->key in job->backend, sets job->rc, and then sends an
 * empty message of type job->done_type to job->reply_to. From wq_submit until that message
 * (or wq_wait) the job and everything it points to belong to the writer: the submitter must
 * not touch the backend, free the key or value, or reuse the job. A vnode therefore handles
 * no other message while its write is out (node/vnode.c keeps them in order for later), so
 * what the vnode reads afterwards is exactly what it would have read had it written inline.
 *
 * Jobs run one at a time in submission order. Any thread may submit; wq_wait blocks (for
 * the process's terminate, which must not leave the writer a backend it is about to close).
 *
 * Auto mode: the hop to the writer only pays when the writer has a CPU the schedulers do not
 * fill. Started with a scheduler count, the writer checks its CPU affinity (which `taskset
 * -a` or a cgroup cpuset may change while the node runs) at start and then every second,
 * and wq_active says whether submitters should use it now; a submitter that is told no
 * writes inline, as with the writer off.
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
    int rc;                      /* set by the writer: store_put's result */
    bool done;                   /* under the queue's lock; see wq_wait */
} wq_job_t;

typedef struct write_queue_s write_queue_t;

/* Starts the writer thread. schedulers 0: always active; else auto mode against that many
 * schedulers. 0 and *out, or a negative errno (thread creation failed). Call after rt_start:
 * the writer sends runtime messages. */
int wq_start(unsigned schedulers, write_queue_t **out);
/* Whether submitters should hand their writes over now (see auto mode). Any thread. */
bool wq_active(const write_queue_t *q);
/* Stops and joins the writer; every submitted job must be done (wq_wait) or its submitter's
 * process gone with the runtime. NULL: no-op. */
void wq_stop(write_queue_t *q);
/* Queues job (see the protocol above). Never blocks on the write itself. */
void wq_submit(write_queue_t *q, wq_job_t *job);
/* Blocks until job (submitted to q) is done; returns job->rc. */
int wq_wait(write_queue_t *q, wq_job_t *job);

#endif
