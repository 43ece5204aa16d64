/*
 * cairn_req.h — libcairn's request building and answer reading as plain functions (prefix
 * cairn_req_), so every client of the Riak PB protocol in this tree (libcairn itself, and
 * cairn-bench's event-driven engine) sends the same fields and reads answers the same way.
 * Internal to the tree: not part of the public client/cairn.h.
 *
 * The fill functions only set fields; the caller validates its arguments first (as
 * cairn_get/cairn_put do) and owns every buffer the message points to, which must outlive
 * the packing of the message.
 */
#ifndef CAIRN_CLIENT_REQ_H
#define CAIRN_CLIENT_REQ_H

#include "client/cairn.h"
#include "proto/riak.pb-c.h"

#include <stdbool.h>
#include <string.h>

/* Views of caller-owned bytes as protobuf-c bytes fields (nothing copied). */
static inline ProtobufCBinaryData cairn_req_bin(cairn_buf_t b)
{
    return (ProtobufCBinaryData){b.len, (uint8_t *)b.data};
}
static inline ProtobufCBinaryData cairn_req_bin_str(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* Optional-field setters for a request struct `msg` (an lvalue): a C string type (NULL or
 * "" leaves it absent), a u32 (0 leaves it absent), a cairn_tri_t, a flag. */
#define CAIRN_REQ_SET_TYPE(msg, t)                     \
    do {                                               \
        if ((t) && *(t)) {                             \
            (msg).has_type = 1;                        \
            (msg).type = cairn_req_bin_str(t);         \
        }                                              \
    } while (0)

#define CAIRN_REQ_SET_U32(msg, field, v)               \
    do {                                               \
        if (v) {                                       \
            (msg).has_##field = 1;                     \
            (msg).field = (v);                         \
        }                                              \
    } while (0)

#define CAIRN_REQ_SET_TRI(msg, field, v)               \
    do {                                               \
        if ((v) != CAIRN_UNSET) {                      \
            (msg).has_##field = 1;                     \
            (msg).field = (v) == CAIRN_TRUE;           \
        }                                              \
    } while (0)

#define CAIRN_REQ_SET_FLAG(msg, field, v)              \
    do {                                               \
        if (v) {                                       \
            (msg).has_##field = 1;                     \
            (msg).field = 1;                           \
        }                                              \
    } while (0)

/* A get of bucket/key with o's options into req (initialised with RIAK__RPB_GET_REQ__INIT). */
void cairn_req_get(Riak__RpbGetReq *req, cairn_buf_t bucket, cairn_buf_t key,
                   const cairn_get_opts_t *o);

/* A put of value under bucket/key (key.len == 0: the server makes one) with o's options into
 * req and its one content (both initialised). Usermeta and indexes are left to the caller. */
void cairn_req_put(Riak__RpbPutReq *req, Riak__RpbContent *content, cairn_buf_t bucket,
                   cairn_buf_t key, cairn_buf_t value, const cairn_put_opts_t *o);

/* The CAIRN_E* code for the text of an RpbErrorResp (riak-facts.md 6.5); if_not_modified:
 * the request was a conditional put, for which "notfound" means modified. */
int cairn_req_error_code(const char *msg, bool if_not_modified);

/* Whether a get answer holds the object: unchanged, or some sibling is not a tombstone. */
bool cairn_req_get_found(const Riak__RpbGetResp *resp);

#endif
