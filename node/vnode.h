/*
 * vnode.h — vnodes: one process per partition held by this node, each owning that
 * partition's backend (prefix vnode_).
 *
 * A vnode serves the KV_MSG_VNODE_* requests of proto/kv.proto one at a time: get, put
 * (coordinated write with its own actor and counter lease, or replica merge), reap, crash
 * (debug), and the folds of listing. Vnodes run under a simple_one_for_one supervisor
 * (transient children): a crashed vnode is restarted, reopens its backend, and publishes its
 * new pid in the vnode table; calls in flight to the dead one end in CALL_FAILED (never a
 * hang).
 *
 * Actor ids: store_actor_make(node_id, partition, epoch). The epoch and the counter lease
 * live in the partition's own backend under a metadata key (outside the object namespace):
 * a vnode whose metadata is missing (new or lost data) takes a fresh epoch, so it never
 * reuses a dot. The counter lease is taken in blocks and persisted (synced) before use.
 */
#ifndef CAIRN_NODE_VNODE_H
#define CAIRN_NODE_VNODE_H

#include "node/kv.h"
#include "runtime/sup.h"

/* The partition -> pid table (read by coordinators from any thread). */
vnode_table_t *vnode_table_new(uint32_t q);
void vnode_table_free(vnode_table_t *t);
/* The live vnode of partition p, or RT_NOPID while it is (re)starting. */
rt_pid_t vnode_pid(const kv_node_t *kv, uint32_t partition);

/* The object cache budget for kv->obj_cache.limit: cfg->vnode_cache_bytes, or 0 with the
 * memory backend (already in memory). Set it before the first vnode starts. */
uint64_t vnode_cache_limit(const node_config_t *cfg);

/* Starts the vnode supervisor (simple_one_for_one, linked to the caller) and one vnode per
 * partition of kv->ring owned by this node. Blocking (call from the node's start-up code,
 * not from a scheduler-hot path). Returns 0 with *sup, or a negative RT_E* code with a
 * message logged. */
int vnode_sup_start(kv_node_t *kv, rt_pid_t *sup);

/* The vnode supervisor's spec (simple_one_for_one, transient vnodes, the restart intensity)
 * and its child template, for a tree that starts the supervisor itself (node.c). tmpl and
 * spec must outlive the supervisor; spec->children points at tmpl. */
void vnode_sup_spec(kv_node_t *kv, rt_sup_child_spec_t *tmpl, rt_sup_spec_t *spec);

/* The supervisor child spec / behaviour, for node.c's tree. A vnode is started as a dynamic
 * child of a simple_one_for_one supervisor whose template arg is the kv_node_t * and whose
 * per-child extra is (void *)(uintptr_t)(partition + 1) (no free_extra). vnode_sup_start
 * does exactly that; it uses the blocking supervisor calls, so call it from a thread that is
 * not a scheduler (main), after kv->ring, kv->vnodes (vnode_table_new(ring size)),
 * kv->engine and kv->cfg are set. */
extern const rt_behaviour_t vnode_behaviour;

/* True when partition p is owned by this node in the current cluster state (its owner is
 * the member named kv->cfg->nodename). */
bool vnode_is_local(const kv_node_t *kv, uint32_t partition);

/* True when this node should run a vnode for partition p: it owns p, or it is p's pending
 * next owner (the vnode receives p's data by handoff before ownership switches). The vnode
 * starter starts vnodes for these partitions; any other vnode running here (a fallback
 * started on demand, or an old owner's) is "foreign": the handoff service hands its data to
 * the owner and retires it. */
bool vnode_should_run(const kv_node_t *kv, uint32_t partition);

/* Local-only vnode messages (vnode.c's private range of node/kv.h):
 *   VNODE_MSG_DROP    call, payload a packed Cairn__Kv__HandoffBatch (the objects a handoff
 *                     sent and the receiver acknowledged): the vnode deletes each object
 *                     whose stored bytes are still exactly the ones sent (a write that
 *                     landed since keeps it for the next pass). Reply: VNODE_MSG_DROP
 *                     with a vnode_drop_result_t.
 *   VNODE_MSG_RETIRE  call, no payload: the vnode of a partition this node neither owns
 *                     nor is to own (a fallback, or an old owner), found empty, stops for
 *                     good and removes its data directory; it first refuses everything
 *                     that reaches it afterwards. Reply: VNODE_MSG_RETIRE with an int32_t,
 *                     0 (retired: it exits normally and is not restarted), 1 (it is not
 *                     empty: a write landed, hand off again), 2 (this node should run it:
 *                     it stays), or a negative STORE_E* code.
 *   VNODE_MSG_RETIRED plain send to VNODE_PROXY_NAME, payload the uint32_t partition: the
 *                     retired vnode is gone, start a new one on demand. */
enum {
    VNODE_MSG_DROP = KV_MSG_PRIVATE + 1,
    VNODE_MSG_RETIRE = KV_MSG_PRIVATE + 2,
    VNODE_MSG_RETIRED = KV_MSG_PRIVATE + 3,
};
typedef struct vnode_drop_result_s {
    int32_t rc;          /* 0, or a negative STORE_E* code (the batch did not decode: EINVAL) */
    uint32_t dropped;    /* objects deleted */
    uint32_t kept;       /* objects changed since they were sent (kept) */
} vnode_drop_result_t;

/* The process that starts vnodes (node.c's vnode starter) and passes calls on to them:
 * coordinators call a fallback vnode through it (coord_vnode_call), which starts the vnode
 * on demand. */
#define VNODE_PROXY_NAME "cairn_vnode_starter"

/* The partition a KV_MSG_VNODE_GET/PUT/REAP request names: true with *partition, false when
 * m is not such a request or names none. */
bool vnode_request_partition(const rt_msg_t *m, uint32_t *partition);
/* Answers the call m, a KV_MSG_VNODE_GET/PUT/REAP request, with a FAILED response of its type
 * carrying why (m is borrowed; a non-call or another type is ignored). */
void vnode_refuse(rt_msg_t *m, const char *why);

/* True when partition p has a data directory on this node's disk (bitcask or LevelDB): a
 * vnode that ran here before a restart, maybe a fallback whose data was not handed off yet.
 * The vnode starter starts those too, so the handoff service finds them. */
bool vnode_has_data_dir(const kv_node_t *kv, uint32_t partition);

/* The name a vnode registers under ("vnode/<partition>"), by which other nodes call it. */
void vnode_name(uint32_t partition, char *buf, size_t len);
#define VNODE_NAME_MAX 32

/* Folds partition p's backend (store_fold with f, fn, arg) on behalf of listing (and later
 * handoff). For worker-pool threads only: it holds the partition's fold lock for the whole
 * call, which the vnode's terminate waits for, so keep each call short (stop the fold after
 * a bounded chunk and resume with f->after). Returns store_fold's result, or STORE_ECLOSED
 * while the vnode is (re)starting; on an error a message goes to errbuf[0..errlen). */
int vnode_fold(const kv_node_t *kv, uint32_t partition, const store_fold_t *f,
               store_fold_fn fn, void *arg, char *errbuf, size_t errlen);

#endif
