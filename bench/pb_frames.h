/*
 * pb_frames.h — Riak PB frames for cairn-bench's event-driven engine (prefix pbf_).
 *
 * It owns the wire side of the few messages a load generator needs, with no I/O and no
 * global state, so an event loop can build requests into its own buffers and parse answers
 * out of whatever bytes have arrived:
 *   - the framing (riak-facts 6.1): a 4-byte big-endian length that counts the 1-byte message
 *     code plus the protobuf body, then the code, then the body;
 *   - RpbGetReq and RpbPutReq built from the same option structs as libcairn's cairn_get and
 *     cairn_put (client/cairn.h), filled by libcairn's own code (client/cairn_req.h), so both of
 *     cairn-bench's engines send the same requests;
 *   - RpbGetResp (found, not found, the vclock), RpbPutResp (accepted; its body is not
 *     decoded, as libcairn does not decode it when the caller asks for no object) and
 *     RpbErrorResp mapped to CAIRN_E* codes with libcairn's rules.
 *
 * Memory: a pbf_buf_t owns its bytes (free with pbf_buf_free). Every other pointer passed in
 * is borrowed for the duration of the call; a parsed frame points into the caller's buffer.
 */
#ifndef CAIRN_BENCH_PB_FRAMES_H
#define CAIRN_BENCH_PB_FRAMES_H

#include "client/cairn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The message codes used here (riak_pb_messages.csv). */
enum {
    PBF_ERROR_RESP = 0,
    PBF_GET_REQ = 9,
    PBF_GET_RESP = 10,
    PBF_PUT_REQ = 11,
    PBF_PUT_RESP = 12,
};

#define PBF_HEADER_BYTES 5u            /* length (4) + code (1) */

/* A growable byte buffer: data[0..len) is in use, cap bytes are allocated. Zero-initialised
 * is empty and valid. */
typedef struct pbf_buf {
    uint8_t *data;
    size_t len, cap;
} pbf_buf_t;

/* Makes room for `extra` more bytes after len. false: out of memory (b unchanged). */
bool pbf_buf_reserve(pbf_buf_t *b, size_t extra);
/* Replaces the contents with bytes[0..n). false: out of memory (b unchanged). */
bool pbf_buf_set(pbf_buf_t *b, const void *bytes, size_t n);
/* Drops the first n bytes (n <= len), moving the rest to the front. */
void pbf_buf_consume(pbf_buf_t *b, size_t n);
void pbf_buf_free(pbf_buf_t *b);

/* Append one framed request to `out`. They return CAIRN_OK, CAIRN_EINVAL for what cairn_get
 * / cairn_put would refuse (empty bucket or key, a length without data) or for usermeta and
 * indexes (not supported here), CAIRN_ETOOBIG above the 4 GiB frame limit, or CAIRN_ENOMEM;
 * on error `out` is unchanged. */
int pbf_append_get(pbf_buf_t *out, cairn_buf_t bucket, cairn_buf_t key,
                   const cairn_get_opts_t *o);
int pbf_append_put(pbf_buf_t *out, cairn_buf_t bucket, cairn_buf_t key, cairn_buf_t value,
                   const cairn_put_opts_t *o);

/* One frame at the front of a byte stream. */
typedef struct pbf_frame {
    uint8_t code;
    const uint8_t *body;               /* points into the parsed bytes */
    size_t body_len;
    size_t frame_len;                  /* header + body: what to consume */
} pbf_frame_t;

typedef enum {
    PBF_NEED_MORE,                     /* *need: total bytes the frame needs, 0 if unknown */
    PBF_FRAME,                         /* *out holds the frame */
    PBF_BAD_EMPTY,                     /* declared length 0: no code (stream unusable) */
    PBF_BAD_TOO_BIG,                   /* body above max_body (stream unusable) */
} pbf_parse_t;

/* Looks for one complete frame at the start of bytes[0..len). A bad length is reported as
 * soon as the 4-byte header is there. */
pbf_parse_t pbf_parse(const uint8_t *bytes, size_t len, uint32_t max_body, pbf_frame_t *out,
                      size_t *need);

/* An RpbErrorResp body: its text goes to msg (NUL-terminated, truncated to msg_len, NUL bytes
 * shown as '?'), and the CAIRN_E* code libcairn maps it to is returned (a put with
 * if_not_modified maps "notfound" to CAIRN_EMODIFIED: pass if_not_modified). CAIRN_EPROTO if
 * the body is malformed. */
int pbf_error_code(const uint8_t *body, size_t len, bool if_not_modified, char *msg,
                   size_t msg_len);

/* An RpbGetResp body: CAIRN_OK (found: unchanged, or at least one sibling that is not a
 * tombstone), CAIRN_ENOTFOUND, CAIRN_EPROTO (malformed) or CAIRN_ENOMEM. When found and
 * `context` is not NULL, *context is set to the vclock (emptied if the answer has none). */
int pbf_get_result(const uint8_t *body, size_t len, pbf_buf_t *context);

#endif
