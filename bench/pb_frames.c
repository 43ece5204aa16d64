/*
 * pb_frames.c — Riak PB frames for cairn-bench's event-driven engine (see pb_frames.h).
 *
 * The requests are filled and the answers read by libcairn's own code (client/cairn_req.h),
 * so a run with --engine event sends and counts what --engine blocking does.
 */
#include "bench/pb_frames.h"
#include "client/cairn_req.h"
#include "proto/riak.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRMSG_BYTES 1024u             /* libcairn keeps this much of a server's message */

/* ---------------------------------------------------------------- buffers */

bool pbf_buf_reserve(pbf_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return false;
    size_t want = b->len + extra;
    if (want <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    uint8_t *nd = realloc(b->data, cap);
    if (!nd)
        return false;
    b->data = nd;
    b->cap = cap;
    return true;
}

bool pbf_buf_set(pbf_buf_t *b, const void *bytes, size_t n)
{
    size_t keep = b->len;
    b->len = 0;
    if (!pbf_buf_reserve(b, n)) {
        b->len = keep;
        return false;
    }
    if (n)
        memcpy(b->data, bytes, n);
    b->len = n;
    return true;
}

void pbf_buf_consume(pbf_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void pbf_buf_free(pbf_buf_t *b)
{
    free(b->data);
    *b = (pbf_buf_t){0};
}

/* ---------------------------------------------------------------- requests */

static bool buf_ok(cairn_buf_t b)
{
    return b.len == 0 || b.data != NULL;
}

/* Appends header, code and packed message. */
static int append_frame(pbf_buf_t *out, uint8_t code, const ProtobufCMessage *msg)
{
    size_t body = protobuf_c_message_get_packed_size(msg);
    if (body >= UINT32_MAX - 1)
        return CAIRN_ETOOBIG;
    if (!pbf_buf_reserve(out, PBF_HEADER_BYTES + body))
        return CAIRN_ENOMEM;
    uint8_t *frame = out->data + out->len;
    uint32_t len = (uint32_t)body + 1;
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    frame[4] = code;
    protobuf_c_message_pack(msg, frame + PBF_HEADER_BYTES);
    out->len += PBF_HEADER_BYTES + body;
    return CAIRN_OK;
}

int pbf_append_get(pbf_buf_t *out, cairn_buf_t bucket, cairn_buf_t key,
                   const cairn_get_opts_t *o)
{
    static const cairn_get_opts_t defaults;
    if (!o)
        o = &defaults;
    if (bucket.len == 0 || !bucket.data || key.len == 0 || !key.data ||
        !buf_ok(o->if_modified))
        return CAIRN_EINVAL;
    Riak__RpbGetReq req = RIAK__RPB_GET_REQ__INIT;
    cairn_req_get(&req, bucket, key, o);
    return append_frame(out, PBF_GET_REQ, &req.base);
}

int pbf_append_put(pbf_buf_t *out, cairn_buf_t bucket, cairn_buf_t key, cairn_buf_t value,
                   const cairn_put_opts_t *o)
{
    static const cairn_put_opts_t defaults;
    if (!o)
        o = &defaults;
    if (bucket.len == 0 || !bucket.data || !buf_ok(key) || !buf_ok(value) ||
        !buf_ok(o->context) || o->n_usermeta || o->n_indexes)
        return CAIRN_EINVAL;
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    Riak__RpbPutReq req = RIAK__RPB_PUT_REQ__INIT;
    cairn_req_put(&req, &content, bucket, key, value, o);
    return append_frame(out, PBF_PUT_REQ, &req.base);
}

/* ---------------------------------------------------------------- answers */

pbf_parse_t pbf_parse(const uint8_t *bytes, size_t len, uint32_t max_body, pbf_frame_t *out,
                      size_t *need)
{
    *need = 0;
    if (len < 4)
        return PBF_NEED_MORE;
    uint32_t flen = (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 |
                    (uint32_t)bytes[2] << 8 | bytes[3];
    if (flen == 0)
        return PBF_BAD_EMPTY;
    if (flen - 1 > max_body)
        return PBF_BAD_TOO_BIG;
    size_t total = 4 + (size_t)flen;
    if (len < total) {
        *need = total;
        return PBF_NEED_MORE;
    }
    *out = (pbf_frame_t){.code = bytes[4], .body = bytes + PBF_HEADER_BYTES,
                         .body_len = flen - 1, .frame_len = total};
    return PBF_FRAME;
}

int pbf_error_code(const uint8_t *body, size_t len, bool if_not_modified, char *msg,
                   size_t msg_len)
{
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
    if (!e) {
        if (msg_len)
            snprintf(msg, msg_len, "malformed error response");
        return CAIRN_EPROTO;
    }
    char text[ERRMSG_BYTES];
    size_t n = e->has_errmsg ? e->errmsg.len : 0;
    if (n >= sizeof text)
        n = sizeof text - 1;
    for (size_t i = 0; i < n; i++)
        text[i] = e->errmsg.data[i] ? (char)e->errmsg.data[i] : '?';
    text[n] = '\0';
    riak__rpb_error_resp__free_unpacked(e, NULL);
    if (msg_len)
        snprintf(msg, msg_len, "%s", text);
    return cairn_req_error_code(text, if_not_modified);
}

int pbf_get_result(const uint8_t *body, size_t len, pbf_buf_t *context)
{
    Riak__RpbGetResp *resp = riak__rpb_get_resp__unpack(NULL, len, body);
    if (!resp)
        return CAIRN_EPROTO;
    bool found = cairn_req_get_found(resp); /* as cairn_get */
    int rc = found ? CAIRN_OK : CAIRN_ENOTFOUND;
    if (found && context) {
        bool ok = resp->has_vclock ? pbf_buf_set(context, resp->vclock.data, resp->vclock.len)
                                   : pbf_buf_set(context, NULL, 0);
        if (!ok)
            rc = CAIRN_ENOMEM;
    }
    riak__rpb_get_resp__free_unpacked(resp, NULL);
    return rc;
}
