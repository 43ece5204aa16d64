/*
 * anti_entropy.c — the read-repair sweeps (node/anti_entropy.h).
 *
 * One process, registered as AE_NAME. A timer ticks every AE_TICK_MS; the process is in one
 * of three phases:
 *   IDLE      waiting for the next pass (anti_entropy.interval after the last one ended);
 *   FOLDING   a fold job (ae_job_t, on the worker pool) collects up to AE_CHUNK_KEYS keys of
 *             the partition whose first replica is that partition, after the last key seen;
 *   CHECKING  one get per collected key, at most AE_CONCURRENCY in flight and at most
 *             anti_entropy.max_rate started per second (a token bucket refilled each tick).
 * Ownership: a fold job belongs to the worker pool while it runs, then to the message that
 * carries it back, then to the process (s->job) until its keys are checked.
 */
#include "node/anti_entropy.h"

#include "node/config.h"
#include "node/kvobj.h"
#include "node/pb_codec.h"
#include "node/vnode.h"
#include "ring/cstate.h"
#include "ring/ring.h"
#include "runtime/io.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
    AE_MSG_TICK = KV_MSG_PRIVATE + 140,  /* node/kv.h: anti_entropy.c +140..149 */
    AE_MSG_CHUNK = KV_MSG_PRIVATE + 141, /* a fold job's result (payload: ae_job_t *) */
};

#define AE_TICK_MS 100u

/* One key found by a fold: slices into the job's byte buffer. */
typedef struct ae_key_s {
    size_t type_at, bucket_at, key_at;
    uint32_t type_n, bucket_n, key_n;
} ae_key_t;

typedef struct ae_job_s {
    const kv_node_t *kv;
    const ring_t *ring;      /* the published ring the pass started with (lives as long as
                              * the node) */
    uint32_t partition;
    uint8_t *bytes;          /* every key's type, bucket and key, back to back (owned) */
    size_t nbytes, capbytes;
    ae_key_t *keys;          /* owned */
    size_t n, cap;
    uint8_t *from;           /* the key to resume after: type, bucket, key (owned; NULL:
                              * from the start) */
    uint32_t from_type_n, from_bucket_n, from_key_n;
    bool more;               /* stopped at AE_CHUNK_KEYS: resume after keys[n - 1], the
                              * last key the fold saw */
    int rc;
    char err[256];
} ae_job_t;

typedef enum { AE_IDLE, AE_FOLDING, AE_CHECKING } ae_phase_t;

typedef struct ae_s {
    kv_node_t *kv;
    rt_pid_t self;
    ae_phase_t phase;
    uint32_t next_partition;     /* round robin over the ring */
    uint32_t partition;          /* the pass's partition */
    uint64_t next_pass_ns;
    uint64_t pass_start_ns;
    uint64_t pass_keys;
    ae_job_t *job;               /* CHECKING: the chunk being checked (owned) */
    size_t next_key;             /* of job->keys */
    uint32_t inflight;
    bool stopped;                /* a get was refused: the pass ends once those in flight
                                  * answer, and does not count as done */
    double tokens;               /* gets that may start now */
    uint64_t req_seq;
} ae_t;

/* ---------------------------------------------------------------- fold jobs */

static void *ae_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void ae_job_free(void *arg)
{
    ae_job_t *j = arg;
    if (!j)
        return;
    free(j->bytes);
    free(j->keys);
    free(j->from);
    free(j);
}

static size_t ae_push_bytes(ae_job_t *j, const void *p, size_t n)
{
    if (j->nbytes + n > j->capbytes) {
        j->capbytes = (j->nbytes + n) * 2 + 256;
        j->bytes = ae_xrealloc(j->bytes, j->capbytes);
    }
    size_t at = j->nbytes;
    if (n)
        memcpy(j->bytes + at, p, n);
    j->nbytes += n;
    return at;
}

static int ae_fold_cb(void *arg, const store_key_t *k, const uint8_t *val, size_t len)
{
    (void)val;
    (void)len;
    ae_job_t *j = arg;
    uint64_t h = ring_hash_key(k->type.p, k->type.n, k->bucket.p, k->bucket.n, k->key.p, k->key.n);
    if (ring_first_partition(j->ring, h) == j->partition) {
        if (j->n == j->cap) {
            j->cap = j->cap ? j->cap * 2 : 64;
            j->keys = ae_xrealloc(j->keys, j->cap * sizeof *j->keys);
        }
        ae_key_t *e = &j->keys[j->n++];
        e->type_at = ae_push_bytes(j, k->type.p, k->type.n);
        e->bucket_at = ae_push_bytes(j, k->bucket.p, k->bucket.n);
        e->key_at = ae_push_bytes(j, k->key.p, k->key.n);
        e->type_n = (uint32_t)k->type.n;
        e->bucket_n = (uint32_t)k->bucket.n;
        e->key_n = (uint32_t)k->key.n;
        if (j->n >= AE_CHUNK_KEYS) {
            j->more = true;
            return STORE_FOLD_STOP;
        }
    }
    return 0;
}

static void ae_chunk_dtor(rt_msg_t *m)
{
    ae_job_t *j;
    memcpy(&j, m->data, sizeof j);
    ae_job_free(j);
}

/* Runs on a worker thread: one chunk of the partition's keys. */
static rt_msg_t *ae_job_run(void *arg)
{
    ae_job_t *j = arg;
    store_fold_t f = {.values = false};
    store_key_t after;
    if (j->from) {
        after.type = (store_slice_t){j->from, j->from_type_n};
        after.bucket = (store_slice_t){j->from + j->from_type_n, j->from_bucket_n};
        after.key = (store_slice_t){j->from + j->from_type_n + j->from_bucket_n, j->from_key_n};
        f.after = &after;
    }
    j->rc = vnode_fold(j->kv, j->partition, &f, ae_fold_cb, j, j->err, sizeof j->err);
    rt_msg_t *m = rt_msg_new(AE_MSG_CHUNK, sizeof j);
    memcpy(m->data, &j, sizeof j);
    m->dtor = ae_chunk_dtor;
    return m;
}

/* A job for partition p after prev's last key (prev NULL or empty: from the start). The
 * three parts of a key sit back to back in prev->bytes (ae_push_bytes). */
static ae_job_t *ae_job_new(const kv_node_t *kv, const ring_t *ring, uint32_t p,
                            const ae_job_t *prev)
{
    ae_job_t *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->kv = kv;
    j->ring = ring;
    j->partition = p;
    if (prev && prev->n) {
        const ae_key_t *last = &prev->keys[prev->n - 1];
        size_t n = (size_t)last->type_n + last->bucket_n + last->key_n;
        j->from = ae_xrealloc(NULL, n);
        memcpy(j->from, prev->bytes + last->type_at, n);
        j->from_type_n = last->type_n;
        j->from_bucket_n = last->bucket_n;
        j->from_key_n = last->key_n;
    }
    return j;
}

/* ---------------------------------------------------------------- passes */

static void ae_pass_end(ae_t *s, bool completed)
{
    const node_config_t *cfg = s->kv->cfg;
    if (completed) {
        atomic_fetch_add_explicit(&s->kv->stats.ae_passes, 1, memory_order_relaxed);
        rt_debug("anti-entropy: partition %u: %" PRIu64 " keys checked in %" PRIu64 " ms",
                 s->partition, s->pass_keys, (rt_now_ns() - s->pass_start_ns) / 1000000u);
    }
    ae_job_free(s->job);
    s->job = NULL;
    s->phase = AE_IDLE;
    s->next_pass_ns = rt_now_ns() + (uint64_t)cfg->ae_interval_ms * 1000000u;
}

static bool ae_submit(ae_t *s, ae_job_t *j)
{
    int rc = rt_work_submit2(ae_job_run, j, ae_job_free, s->self);
    if (rc != 0) {
        rt_debug("anti-entropy: cannot start a fold: %s", rt_strerror(rc));
        return false;
    }
    s->phase = AE_FOLDING;
    return true;
}

/* The next partition this node owns, from next_partition on; false when it owns none. */
static bool ae_pick_partition(ae_t *s, const ring_t **ring, uint32_t *p)
{
    const cstate_t *cs = kv_cstate(s->kv);
    const ring_t *r = cstate_ring(cs);
    uint32_t me = kv_self_member(s->kv, cs);
    uint32_t q = ring_size(r);
    for (uint32_t i = 0; i < q; i++) {
        uint32_t cand = (s->next_partition + i) % q;
        if (ring_owner(r, cand) == me && !rt_pid_is_nil(vnode_pid(s->kv, cand))) {
            s->next_partition = (cand + 1) % q;
            *ring = r;
            *p = cand;
            return true;
        }
    }
    return false;
}

static void ae_start_pass(ae_t *s)
{
    const ring_t *ring;
    uint32_t p;
    if (!ae_pick_partition(s, &ring, &p)) {
        ae_pass_end(s, false);
        return;
    }
    s->partition = p;
    s->pass_start_ns = rt_now_ns();
    s->pass_keys = 0;
    s->stopped = false;
    if (!ae_submit(s, ae_job_new(s->kv, ring, p, NULL)))
        ae_pass_end(s, false);
}

/* Starts gets for the chunk's keys as tokens and the concurrency allow. */
static void ae_check_some(ae_t *s)
{
    ae_job_t *j = s->job;
    while (s->next_key < j->n && s->inflight < AE_CONCURRENCY && s->tokens >= 1.0) {
        const ae_key_t *k = &j->keys[s->next_key];
        Riak__RpbGetReq req = RIAK__RPB_GET_REQ__INIT;
        req.has_type = req.has_bucket = req.has_key = 1;
        req.type = (ProtobufCBinaryData){k->type_n, j->bytes + k->type_at};
        req.bucket = (ProtobufCBinaryData){k->bucket_n, j->bytes + k->bucket_at};
        req.key = (ProtobufCBinaryData){k->key_n, j->bytes + k->key_at};
        req.has_head = 1; /* the replicas still send whole objects to the coordinator */
        req.head = 1;
        req.has_timeout = 1;
        req.timeout = AE_GET_TIMEOUT_MS;
        /* Primaries only: with a node down, a sloppy get would start a fallback for it and
         * read-repair the whole range into that fallback, to be handed back when the node
         * returns. The sweep repairs between the primaries that are up; hinted handoff and
         * the sweeps after the node's return cover the rest (as Riak's AAE, which exchanges
         * only between primaries). */
        req.has_sloppy_quorum = 1;
        req.sloppy_quorum = 0;
        Riak__RpbGetReq *copy = (Riak__RpbGetReq *)kvobj_pb_clone(&req.base);
        int rc = copy ? kv_get(s->kv, s->self, ++s->req_seq, copy) : -1;
        if (rc != 0) { /* overload, draining, out of memory: leave the rest for later */
            rt_debug("anti-entropy: partition %u: get refused (%d): pass stopped", s->partition,
                     rc);
            if (s->inflight == 0)
                ae_pass_end(s, false);
            else { /* finish the gets in flight, then end the pass */
                s->next_key = j->n;
                j->more = false;
                s->stopped = true;
            }
            return;
        }
        s->next_key++;
        s->inflight++;
        s->tokens -= 1.0;
    }
}

/* After a reply or a tick in CHECKING: the next chunk, or the end of the pass. */
static void ae_checking_step(ae_t *s)
{
    ae_check_some(s);
    if (s->phase != AE_CHECKING || s->inflight || s->next_key < s->job->n)
        return;
    ae_job_t *done = s->job;
    if (done->more) {
        s->job = NULL;
        ae_job_t *next = ae_job_new(s->kv, done->ring, done->partition, done);
        ae_job_free(done);
        if (!ae_submit(s, next))
            ae_pass_end(s, false);
        return;
    }
    ae_pass_end(s, !s->stopped);
}

static void ae_on_chunk(ae_t *s, rt_msg_t *m)
{
    ae_job_t *j;
    memcpy(&j, m->data, sizeof j);
    memset(m->data, 0, sizeof j); /* taken */
    if (j->rc != 0 && j->rc != STORE_FOLD_STOP) {
        rt_debug("anti-entropy: partition %u: fold failed: %s", j->partition,
                 j->err[0] ? j->err : "vnode restarting");
        ae_job_free(j);
        ae_pass_end(s, false);
        return;
    }
    s->job = j;
    s->next_key = 0;
    s->phase = AE_CHECKING;
    ae_checking_step(s);
}

static void ae_tick(ae_t *s)
{
    const node_config_t *cfg = s->kv->cfg;
    double cap = cfg->ae_max_rate < AE_CONCURRENCY ? AE_CONCURRENCY : cfg->ae_max_rate;
    s->tokens += (double)cfg->ae_max_rate * AE_TICK_MS / 1000.0;
    if (s->tokens > cap)
        s->tokens = cap;
    if (s->phase == AE_IDLE && cfg->anti_entropy && rt_now_ns() >= s->next_pass_ns)
        ae_start_pass(s);
    else if (s->phase == AE_CHECKING)
        ae_checking_step(s);
}

/* ---------------------------------------------------------------- the process */

static int ae_init(void *state, void *arg)
{
    ae_t *s = state;
    s->kv = arg;
    s->self = rt_self();
    s->phase = AE_IDLE;
    s->next_pass_ns = rt_now_ns() + (uint64_t)s->kv->cfg->ae_interval_ms * 1000000u;
    int rc = rt_register(AE_NAME, s->self);
    if (rc != 0) {
        rt_error("anti-entropy: cannot register as %s: %s", AE_NAME, rt_strerror(rc));
        return RT_R_INIT_FAILED;
    }
    rt_send_after(AE_TICK_MS, s->self, rt_msg_new(AE_MSG_TICK, 0));
    return 0;
}

static int ae_handle(void *state, rt_msg_t *m)
{
    ae_t *s = state;
    switch (m->type) {
    case AE_MSG_TICK:
        ae_tick(s);
        rt_send_after(AE_TICK_MS, s->self, rt_msg_new(AE_MSG_TICK, 0));
        break;
    case AE_MSG_CHUNK:
        if (s->phase == AE_FOLDING)
            ae_on_chunk(s, m);
        break;
    case KV_MSG_REPLY:
        if (s->phase == AE_CHECKING && s->inflight) {
            s->inflight--;
            s->pass_keys++;
            atomic_fetch_add_explicit(&s->kv->stats.ae_keys, 1, memory_order_relaxed);
            ae_checking_step(s);
        }
        break;
    default: rt_debug("anti-entropy: ignoring a message of type %u", m->type); break;
    }
    return RT_CONTINUE;
}

static void ae_terminate(void *state, int reason)
{
    (void)reason;
    ae_t *s = state;
    ae_job_free(s->job);
    s->job = NULL;
}

const rt_behaviour_t ae_service_behaviour = {
    .name = "anti_entropy",
    .state_size = sizeof(ae_t),
    .init = ae_init,
    .handle = ae_handle,
    .terminate = ae_terminate,
};
