/*
 * anti_entropy.h — active anti-entropy by read-repair sweeps (prefix ae_): the process that
 * brings replicas a client never reads back into agreement.
 *
 * Hinted handoff repairs what fallbacks held; read repair repairs what clients read. A write
 * that reached W replicas but not the third one (a paused node, a partition the failure
 * detector had not noticed yet, a crash between the call and its ack) leaves that replica
 * stale until someone reads the key. This service closes the gap: it visits the partitions
 * this node owns, one every `anti_entropy.interval`, folds the partition's keys (keys only,
 * on the worker pool, in chunks) and, for every key whose first replica is that partition,
 * runs an ordinary get through the get coordinator, which reads the N primaries (no
 * fallbacks: sloppy_quorum=false) and read-repairs the stale or missing ones
 * (node/get_fsm.c). At most `anti_entropy.max_rate`
 * keys per second are checked, AE_CONCURRENCY at once; on overload the pass stops and the
 * partition is visited again later. Counters: kv->stats.ae_passes and ae_keys (`status`).
 *
 * Cost: every key is read from its N replicas once per sweep, whether it differs or not.
 * Riak exchanges hash trees to find only the keys that differ; that is the next step if the
 * sweeps' read load matters (docs/architecture.md, anti-entropy).
 *
 * Each key is swept by the owner of its first partition, so a key whose first partition's
 * owner is down waits until that node returns (its other replicas are reached by read
 * repair and hinted handoff meanwhile).
 */
#ifndef CAIRN_NODE_ANTI_ENTROPY_H
#define CAIRN_NODE_ANTI_ENTROPY_H

#include "node/kv.h"

#define AE_NAME "cairn_aae"
#define AE_CONCURRENCY 8          /* gets in flight */
#define AE_CHUNK_KEYS 1000        /* keys per fold chunk */
#define AE_GET_TIMEOUT_MS 5000    /* each sweep get's timeout */

/* The service's behaviour; init arg: kv_node_t * (borrowed). A supervisor child. With
 * anti_entropy off in the configuration it idles. */
extern const rt_behaviour_t ae_service_behaviour;

#endif
