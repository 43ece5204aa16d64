/*
 * pb_codec.h — Riak's Protocol Buffers client framing and request decoding (prefix pb_), pure
 * code with no runtime dependency (so a fuzzer can drive it).
 *
 * Wire format (riak-facts 6.1): a 4-byte big-endian length that counts the 1-byte message
 * code plus the protobuf body, then the code, then the body. Bodyless messages are length 1.
 *
 * Three parts:
 *   - PB_* message codes (riak_pb_messages.csv) and their names;
 *   - pb_reader_t, an incremental frame reader: feed it byte chunks of any size, take complete
 *     frames out (code + a view of the body). A frame whose declared length is 0 or above the
 *     configured maximum is refused as soon as its 4-byte header is seen, before its body is
 *     buffered; the error is sticky (a stream cannot be resynchronised after a bad length);
 *   - pb_decode_request: a frame's body decoded by code into the generated riak.pb-c.h
 *     structs and validated (required fields present, bucket/key not zero-length), with the
 *     error text Riak sends back in an RpbErrorResp;
 *   - pb_frame_size/pb_frame_pack: encoding a frame (replies, tests, clients of this code).
 */
#ifndef CAIRN_NODE_PB_CODEC_H
#define CAIRN_NODE_PB_CODEC_H

#include "proto/riak.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- message codes (6.2) */
enum {
    PB_ERROR_RESP = 0,
    PB_PING_REQ = 1,               /* no body */
    PB_PING_RESP = 2,              /* no body */
    PB_GET_CLIENT_ID_REQ = 3,      /* no body */
    PB_GET_CLIENT_ID_RESP = 4,
    PB_SET_CLIENT_ID_REQ = 5,
    PB_SET_CLIENT_ID_RESP = 6,     /* no body */
    PB_GET_SERVER_INFO_REQ = 7,    /* no body */
    PB_GET_SERVER_INFO_RESP = 8,
    PB_GET_REQ = 9,
    PB_GET_RESP = 10,
    PB_PUT_REQ = 11,
    PB_PUT_RESP = 12,
    PB_DEL_REQ = 13,
    PB_DEL_RESP = 14,              /* no body */
    PB_LIST_BUCKETS_REQ = 15,
    PB_LIST_BUCKETS_RESP = 16,
    PB_LIST_KEYS_REQ = 17,
    PB_LIST_KEYS_RESP = 18,
    PB_GET_BUCKET_REQ = 19,
    PB_GET_BUCKET_RESP = 20,
    PB_SET_BUCKET_REQ = 21,
    PB_SET_BUCKET_RESP = 22,       /* no body */
    PB_MAP_RED_REQ = 23,
    PB_MAP_RED_RESP = 24,
    PB_INDEX_REQ = 25,
    PB_INDEX_RESP = 26,
    PB_SEARCH_QUERY_REQ = 27,
    PB_SEARCH_QUERY_RESP = 28,
    PB_RESET_BUCKET_REQ = 29,
    PB_RESET_BUCKET_RESP = 30,     /* no body */
    PB_GET_BUCKET_TYPE_REQ = 31,   /* answered with PB_GET_BUCKET_RESP */
    PB_SET_BUCKET_TYPE_REQ = 32,   /* answered with PB_SET_BUCKET_RESP */
    PB_GET_BUCKET_KEY_PREFLIST_REQ = 33,
    PB_GET_BUCKET_KEY_PREFLIST_RESP = 34,
};

/* "RpbGetReq" etc. for any code in riak_pb_messages.csv; NULL for a code Riak does not
 * define. */
const char *pb_code_name(unsigned code);

/* The classes of codes, as a server sees them. */
typedef enum {
    PB_KIND_UNKNOWN,     /* not a Riak message code */
    PB_KIND_REQUEST,     /* a request this codec decodes (pb_decode_request) */
    PB_KIND_UNSUPPORTED, /* a Riak request Cairn does not serve (map/reduce, 2i, search...) */
    PB_KIND_RESPONSE,    /* a message only a server sends */
} pb_kind_t;
pb_kind_t pb_code_kind(unsigned code);

/* ---------------------------------------------------------------- frame reader */

#define PB_HEADER_BYTES 4

/* Reader errors (negative; pb_reader_next returns them). */
enum {
    PB_EFRAME_TOO_BIG = -1,   /* declared length above the maximum */
    PB_EFRAME_EMPTY = -2,     /* declared length 0 (a frame holds at least its code) */
};

typedef struct pb_frame_s {
    uint8_t code;
    const uint8_t *body;  /* a view into the reader's buffer: valid until the next
                           * pb_reader_feed or pb_reader_free */
    size_t len;           /* body bytes (the declared length minus the code byte) */
} pb_frame_t;

typedef struct pb_reader_s {
    uint8_t *buf;         /* owned */
    size_t cap;
    size_t len;           /* bytes in buf */
    size_t off;           /* start of the first frame not yet taken out */
    size_t scan;          /* start of the first frame not known to be complete */
    uint32_t max_frame;   /* largest declared length accepted */
    uint32_t bad_len;     /* the refused length (error set) */
    int error;            /* 0 or a PB_E* code, sticky */
    uint64_t frames_seen; /* complete frames found so far (not only taken out) */
} pb_reader_t;

/* max_frame_bytes: the largest declared length accepted (code + body); 0 means 64 MiB. */
void pb_reader_init(pb_reader_t *r, uint32_t max_frame_bytes);
void pb_reader_free(pb_reader_t *r);

/* Appends len bytes (copied). After an error nothing more is buffered. Returns 0 or the
 * sticky PB_E* error (frames before the bad header can still be taken out). */
int pb_reader_feed(pb_reader_t *r, const void *data, size_t len);

/* Takes out the next complete frame: returns 1 with *out, 0 when none is complete yet, or a
 * PB_E* code once every frame before a refused header has been taken out. */
int pb_reader_next(pb_reader_t *r, pb_frame_t *out);

/* Once every byte has been taken out: releases a buffer grown large by a big frame (smaller
 * ones are kept for reuse). Invalidates frame views. */
void pb_reader_trim(pb_reader_t *r);

/* Bytes buffered and not taken out (complete frames and the start of an incomplete one). */
static inline size_t pb_reader_buffered(const pb_reader_t *r) { return r->len - r->off; }
/* True when at least one complete frame waits to be taken out. */
static inline bool pb_reader_has_frame(const pb_reader_t *r) { return r->scan > r->off; }
/* True when an incomplete frame has started (bytes beyond the last complete frame). */
static inline bool pb_reader_partial(const pb_reader_t *r) { return r->error == 0 && r->len > r->scan; }

/* A one-line text for a reader error, e.g. "Frame of 70000000 bytes exceeds the maximum of
 * 67108864 bytes" (written to err[0..errlen)). */
void pb_reader_strerror(const pb_reader_t *r, char *err, size_t errlen);

/* ---------------------------------------------------------------- request decoding */

/* A decoded request. msg is NULL for bodyless requests (ping, get client id, server info);
 * otherwise it is the code's Riak__Rpb*Req (e.g. Riak__RpbGetReq for PB_GET_REQ), owned by
 * the request: free it with pb_request_free, or take it (set msg to NULL) and free it later
 * with protobuf_c_message_free_unpacked(msg, NULL). */
typedef struct pb_request_s {
    uint8_t code;
    ProtobufCMessage *msg;
} pb_request_t;

/* Decodes and validates one request frame. Returns 0 with *out, or -1 with the text of the
 * RpbErrorResp to send in err[0..errlen) (NUL-terminated), e.g. "Unknown message code: 99",
 * "Invalid message body for code 9 (RpbGetReq)", "Missing required field: bucket",
 * "Bucket cannot be zero-length", "Key cannot be zero-length". The connection stays usable
 * after any of these. A body sent with a bodyless request is ignored. */
int pb_decode_request(uint8_t code, const uint8_t *body, size_t len, pb_request_t *out,
                      char *err, size_t errlen);
void pb_request_free(pb_request_t *req);

/* ---------------------------------------------------------------- encoding */

/* Bytes of the frame carrying `body` (NULL: no body). */
size_t pb_frame_size(const ProtobufCMessage *body);
/* Writes the frame (header, code, body) to out, which holds pb_frame_size(body) bytes.
 * Returns the bytes written. */
size_t pb_frame_pack(uint8_t code, const ProtobufCMessage *body, uint8_t *out);
/* An RpbErrorResp frame (errcode 0, as Riak sends) with `text` into out[0..cap); returns the
 * frame length, the text cut to fit when cap is too small (cap >= 16). */
size_t pb_error_frame(const char *text, uint8_t *out, size_t cap);

#endif
