/*
 * replica_probe.h — the admin REPLICAS command's worker (prefix replica_probe_): reads each
 * primary replica of some keys straight from its vnode, with no read repair and no merge
 * written anywhere, and says whether the replicas agree. The fault-injection suite
 * (jepsen/run.sh) polls it after the final heal to time convergence with and without client
 * reads; operators can use it (`cairn-admin replicas`) to look at one key's copies.
 *
 * One short-lived process per request. It asks every primary of every key at once (a key's
 * primaries: ring_apl without fallbacks, so a down primary is reported as such), waits for
 * all of them or REPLICA_PROBE_TIMEOUT_MS, and sends exactly one AdminResp (proto/admin.proto,
 * field `replicas`) to the requester.
 */
#ifndef CAIRN_NODE_REPLICA_PROBE_H
#define CAIRN_NODE_REPLICA_PROBE_H

#include "node/kv.h"
#include "proto/admin.pb-c.h"

#include <stddef.h>

#define REPLICA_PROBE_MAX_KEYS 1024
#define REPLICA_PROBE_TIMEOUT_MS 5000

/* Starts the probe for req (an AdminReq with command REPLICAS; taken in every case: freed
 * with cairn__admin__admin_req__free_unpacked). The AdminResp goes to reply_to with req's
 * req_id, version as its version (borrowed: must outlive the node). 0 when started; -1 with
 * the reason in err when the request is invalid (no bucket, no key, too many keys, an empty
 * key, an unknown bucket type) or the process cannot be spawned: the caller answers then. */
int replica_probe_start(kv_node_t *kv, const char *version, rt_pid_t reply_to,
                        Cairn__Admin__AdminReq *req, char *err, size_t errlen);

#endif
