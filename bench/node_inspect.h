/*
 * node_inspect.h — cairn-check's offline views of a node's files (prefix inspect_): the
 * owners recorded in a ring file, and what a node's data directory holds per partition.
 * scripts/scale-test.sh uses them to count the partitions a cluster change moved and to
 * check that no node keeps data for a partition it does not own.
 *
 * Both only read: the ring file through ring/cstate.h (cstate_load, which reads the file
 * atomically replaced by a running node), the partitions through storage/backend.h. A
 * partition's LevelDB can be opened only while no cairnd holds it: a running node's
 * partitions show as "busy" (their directory's existence and size are still reported).
 * Output goes to stdout, errors to stderr, prefixed "cairn-check: ".
 */
#ifndef CAIRN_BENCH_NODE_INSPECT_H
#define CAIRN_BENCH_NODE_INSPECT_H

#include <stdbool.h>

/* Prints every partition's owner and pending next owner from ring_path, and the members:
 *   text: "# ..." comment lines (ring size, members with status and ownership), then one
 *         line per partition: "P OWNER NEXT_OWNER" (NEXT_OWNER "-" when not moving);
 *   json: one object {"ring","ring_size","pending","members":[...],"owners":[...],
 *         "next_owners":[... or null]}.
 * Returns 0, or 3 when the file cannot be read (reason printed). */
int inspect_owners(const char *ring_path, bool json);

/* Lists <data_dir>/leveldb/<partition> directories with their role for node `node` in the
 * ring of ring_path (owner, next-owner: the pending new owner, or foreign: neither), their
 * size on disk and, when no process holds them, their object count (a keys-only fold: the
 * vnode's metadata is not counted). Returns 0 when no foreign partition holds an object,
 * 1 when one does, 3 when a directory could not be read or opened (busy ones included) and
 * no foreign one was found holding data. */
int inspect_scan(const char *data_dir, const char *node, const char *ring_path, bool json);

#endif
