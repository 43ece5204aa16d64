/*
 * list.h — the list fold service of node/list.c (prefix list_): the process through which
 * listers on other nodes fold the partitions this node owns.
 *
 * Listing (kv_list_keys, kv_list_buckets of node/kv.h) folds every partition of the ring on
 * the node that owns it. A lister folds its own node's partitions on the worker pool; for a
 * partition owned by another node it calls that node's service, registered as
 * LIST_FOLD_SERVICE_NAME, with rt_call_name. One call = one bounded chunk of one partition:
 *
 *   request  LIST_MSG_FOLD_REQ:  a packed cairn.kv.ListFoldReq (proto/kv.proto) as plain
 *            payload bytes: partition, keys or buckets, type, bucket, the resume point;
 *   reply    LIST_MSG_FOLD_RESP: a packed cairn.kv.ListFoldResp: status, names found, next
 *            resume point (absent: the partition is done), unreadable count, rc, errmsg.
 *
 * The service runs the same fold job as a local lister (on its own node's worker pool) and
 * replies when the job is done; it keeps no state between calls, so a lister may resume a
 * partition anywhere. It answers LIST_FOLD_RETRY while the partition's vnode is restarting
 * or too many folds (64) are in flight here, LIST_FOLD_NOT_OWNER when this node does not own
 * the partition in its current cluster state, LIST_FOLD_FAILED (errmsg) on a malformed
 * request or a storage error.
 *
 * The service is a permanent child of the node's top supervisor (node/node.c); its init arg
 * is the node's kv_node_t *. It registers its name in init (init fails if the name is taken).
 */
#ifndef CAIRN_NODE_LIST_H
#define CAIRN_NODE_LIST_H

#include "node/kv.h"

#define LIST_FOLD_SERVICE_NAME "cairn_list_fold"

/* The service's messages (list.c's private range of node/kv.h, KV_MSG_PRIVATE + 50..69). */
enum {
    LIST_MSG_FOLD_REQ = KV_MSG_PRIVATE + 60,  /* packed Cairn__Kv__ListFoldReq (plain bytes) */
    LIST_MSG_FOLD_RESP = KV_MSG_PRIVATE + 61, /* packed Cairn__Kv__ListFoldResp (plain bytes) */
};

/* The service's behaviour; init arg: kv_node_t * (borrowed, must outlive the process). */
extern const rt_behaviour_t list_fold_service_behaviour;

#endif
