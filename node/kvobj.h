/*
 * kvobj.h — conversions between the client protocol's object messages (riak.RpbContent,
 * RpbGetResp, RpbPutResp), the vnode protocol's WriteProps, and the stored object of
 * storage/object.h (prefix kvobj_). Used by the coordinators (get/put/del fsm) and the vnode.
 *
 * Ownership, in one sentence per direction:
 *   - pb -> store: the store_content_t BORROWS every byte from the pb message (which must
 *     outlive it); only the three arrays (usermeta, indexes, links) are malloc'ed, and
 *     kvobj_content_release() frees them.
 *   - store -> pb: the Riak__RpbContent / response BORROWS every byte from the sibling or
 *     content it was built from (which must outlive it, e.g. until the reply is packed);
 *     the pb structs, pointer arrays and the encoded vclock are malloc'ed here and freed by
 *     the matching *_clear() function (never by protobuf_c_message_free_unpacked).
 * Pure functions; no runtime, no I/O. Thread-safe (no shared state).
 */
#ifndef CAIRN_NODE_KVOBJ_H
#define CAIRN_NODE_KVOBJ_H

#include "proto/kv.pb-c.h"
#include "proto/riak.pb-c.h"
#include "runtime/rt.h"
#include "storage/object.h"

#include <stdbool.h>
#include <stddef.h>

/* ---------------------------------------------------------------- RpbContent <-> content */

/* Fills *out from pb. Absent fields become empty slices / zero; a pair or link with an
 * absent part gets an empty slice there. Slices borrow pb; the usermeta/indexes/links
 * arrays are malloc'ed (release with kvobj_content_release). Returns 0, or -1 when pb is
 * NULL (out is then zeroed, nothing allocated). */
int kvobj_content_from_pb(const Riak__RpbContent *pb, store_content_t *out);
/* Frees the arrays kvobj_content_from_pb allocated; c is zeroed. NULL is ignored. */
void kvobj_content_release(store_content_t *c);

/* Fills *pb (any previous content is overwritten, not freed) from c. Every byte field borrows
 * c; link/pair structs and their pointer arrays are malloc'ed (free with
 * kvobj_pb_content_clear). head = true leaves value empty (has_value = 1, length 0), as Riak
 * does for head requests. deleted is sent only when true. */
void kvobj_content_to_pb(const store_content_t *c, bool head, Riak__RpbContent *pb);
/* Frees what kvobj_content_to_pb allocated inside pb (not pb itself). */
void kvobj_pb_content_clear(Riak__RpbContent *pb);

/* ---------------------------------------------------------------- responses */

/* The siblings a client sees of o: all of them (allow_mult), or the one store_obj_resolve
 * picks (allow_mult = false). Writes up to max borrowed pointers to out; returns the count
 * (0 when o is NULL or has no siblings). */
size_t kvobj_visible_sibs(const store_obj_t *o, bool allow_mult, const store_sib_t **out,
                          size_t max);

/* Fills *resp (initialised here) with one content per visible sibling of o (head: empty
 * values) and vclock = store_vclock_encode(o->clock). o must outlive resp. Free with
 * kvobj_get_resp_clear. Returns 0 or a negative STORE_* code (resp then empty). */
int kvobj_get_resp_build(const store_obj_t *o, bool allow_mult, bool head,
                         Riak__RpbGetResp *resp);
void kvobj_get_resp_clear(Riak__RpbGetResp *resp);

/* The same for RpbPutResp (return_body / return_head); the key field is left unset. */
int kvobj_put_resp_build(const store_obj_t *o, bool allow_mult, bool head,
                         Riak__RpbPutResp *resp);
void kvobj_put_resp_clear(Riak__RpbPutResp *resp);

/* ---------------------------------------------------------------- WriteProps */

/* store_props_t <-> cairn.kv.WriteProps (every field set when sending). Fields absent from
 * a received WriteProps keep the default of store_props_default(true). */
void kvobj_props_to_pb(const store_props_t *p, Cairn__Kv__WriteProps *pb);
void kvobj_props_from_pb(const Cairn__Kv__WriteProps *pb, store_props_t *out);

/* ---------------------------------------------------------------- vnode requests
 * Messages for rt_call to a vnode (KV_MSG_VNODE_*, proto/kv.proto). Each message owns a
 * copy of every byte it carries (one allocation), so it stays valid whatever happens to the
 * sender; the runtime frees it with the message. */

rt_msg_t *kvobj_vnode_get_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                              store_slice_t key);
/* A coordinated write. content is TAKEN (it must come from protobuf_c_message_unpack, e.g.
 * detached from an unpacked RpbPutReq; it is freed with protobuf_c_message_free_unpacked);
 * context (the client's vclock bytes, may be empty) is copied. */
rt_msg_t *kvobj_vnode_put_coord_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                                    store_slice_t key, Riak__RpbContent *content,
                                    store_slice_t context, const store_props_t *props,
                                    uint32_t now);
/* A replica write or read repair of an encoded object (copied). */
rt_msg_t *kvobj_vnode_put_replica_msg(uint32_t partition, store_slice_t type,
                                      store_slice_t bucket, store_slice_t key,
                                      store_slice_t object, const store_props_t *props,
                                      uint32_t now, bool read_repair);
/* Reaps a tombstone whose clock encodes to `clock` (copied). */
rt_msg_t *kvobj_vnode_reap_msg(uint32_t partition, store_slice_t type, store_slice_t bucket,
                               store_slice_t key, store_slice_t clock);

/* ---------------------------------------------------------------- helpers */

/* The client frame inside a KV_MSG_REPLY message (used when a coordinator issues a request
 * of its own through kv_get/kv_put and reads the answer): its code and a view of its body.
 * false when m is not a well-formed reply frame. */
bool kvobj_reply_frame(const rt_msg_t *m, uint8_t *code, const uint8_t **body, size_t *len);

/* A deep copy of m, allocated like protobuf_c_message_unpack's result (free it with
 * protobuf_c_message_free_unpacked), made by packing and unpacking. NULL on failure. */
ProtobufCMessage *kvobj_pb_clone(const ProtobufCMessage *m);

#endif
