/*
 * admin_json.h — cairn-admin's --json output (prefix admin_json_): one JSON object per command
 * on one line, carrying every field of the node's answer (proto/admin.proto AdminResp), for
 * scripts and tests. The shapes (stable; new fields may be added):
 *
 *   error (any command)    {"ok":false,"command":C,"node":N,"error":TEXT}
 *   ping, crash-vnode      {"ok":true,"node":N,"version":V,"message":TEXT}
 *   status                 {"ok":true,"node":N,...every NodeStatus field...}
 *   cluster commands       {"ok":true,"command":C,"node":N,"version":V,"message":TEXT|null,
 *                           "cluster":{...}}   ("cluster" absent when the node sent none)
 *
 * "cluster" holds the ClusterView: ring_size, claimant, members [{node, status, owned,
 * owned_after, reachable, claimant}], pending, unreachable [names], ring_ready,
 * disagreeing [names], staged [{action, node, new_node}], moved_now, transfers, violations,
 * target_n_val, pending_transfers [{partition, owner, next_owner, done}], vclock,
 * fingerprint. Lists are always present (possibly empty); a scalar the node did not send
 * is left out (ring_ready only comes with ring-status and ringready, moved_now, transfers
 * and violations only with cluster plan and commit). The fingerprint is a 16-digit hex
 * string (a JSON number cannot hold 64 bits exactly). Removed members are left out of
 * "members", as in the human output: the node keeps them only as tombstones (so that gossip
 * cannot bring them back), they are no longer members.
 *
 * transfers adds "transfers":{"active":[{kind, partition, source, target, state, objects,
 * bytes, elapsed_ms, objects_per_s, mb_per_s}], "waiting":[{partition, owner, next_owner,
 * done, state}], "nodes":[{node, answered, limit, held, error}]}: what every member that
 * answered runs (the rates are null unless a sender runs), the pending ownership changes
 * nobody sends, and every member asked ("error" only when it did not answer).
 * transfer-limit adds "limits":[{node, answered, limit, error}].
 */
#ifndef CAIRN_ADMIN_JSON_H
#define CAIRN_ADMIN_JSON_H

#include "proto/admin.pb-c.h"

#include <stdio.h>

/* Writes s as a JSON string (quotes and escapes; NULL writes null). */
void admin_json_str(FILE *out, const char *s);

/* Writes the answer r to the command `command` (its user-facing name, "member-status",
 * "cluster plan"...; cmd its protocol value) as one JSON object and a newline. Handles the
 * error answer (!r->ok) too. */
void admin_json_answer(FILE *out, const Cairn__Admin__AdminResp *r, Cairn__Admin__Command cmd,
                       const char *command);

#endif
