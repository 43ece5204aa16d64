/*
 * pb_frames.c — Riak PB frames for cairn-bench's event-driven engine (see pb_frames.h).
 *
 * The request builders mirror cairn_get and cairn_put in client/cairn.c: the same fields,
 * set under the same conditions (0, NULL or unset means "not sent"), so that a run with
 * --engine event sends what --engine blocking sends.
 */
#include "bench/pb_frames.h"
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

static ProtobufCBinaryData bin(cairn_buf_t b)
{
    return (ProtobufCBinaryData){b.len, (uint8_t *)b.data};
}

static ProtobufCBinaryData bin_str(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static bool buf_ok(cairn_buf_t b)
{
    return b.len == 0 || b.data != NULL;
}

/* The same setters as client/cairn.c. */
#define SET_TYPE(msg, t)                     \
    do {                                     \
        if ((t) && *(t)) {                   \
            (msg).has_type = 1;              \
            (msg).type = bin_str(t);         \
        }                                    \
    } while (0)

#define SET_U32(msg, field, v)               \
    do {                                     \
        if (v) {                             \
            (msg).has_##field = 1;           \
            (msg).field = (v);               \
        }                                    \
    } while (0)

#define SET_TRI(msg, field, v)               \
    do {                                     \
        if ((v) != CAIRN_UNSET) {            \
            (msg).has_##field = 1;           \
            (msg).field = (v) == CAIRN_TRUE; \
        }                                    \
    } while (0)

#define SET_FLAG(msg, field, v)              \
    do {                                     \
        if (v) {                             \
            (msg).has_##field = 1;           \
            (msg).field = 1;                 \
        }                                    \
    } while (0)

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
    req.has_bucket = 1;
    req.bucket = bin(bucket);
    req.has_key = 1;
    req.key = bin(key);
    SET_TYPE(req, o->type);
    SET_U32(req, r, o->r);
    SET_U32(req, pr, o->pr);
    SET_U32(req, n_val, o->n_val);
    SET_TRI(req, notfound_ok, o->notfound_ok);
    SET_TRI(req, basic_quorum, o->basic_quorum);
    SET_TRI(req, sloppy_quorum, o->sloppy_quorum);
    SET_FLAG(req, head, o->head);
    SET_FLAG(req, deletedvclock, o->deletedvclock);
    if (o->if_modified.len) {
        req.has_if_modified = 1;
        req.if_modified = bin(o->if_modified);
    }
    SET_U32(req, timeout, o->timeout_ms);
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
    content.has_value = 1;
    content.value = bin(value);
    content.has_content_type = 1;
    content.content_type = bin_str(o->content_type ? o->content_type
                                                   : "application/octet-stream");
    if (o->charset) {
        content.has_charset = 1;
        content.charset = bin_str(o->charset);
    }
    if (o->content_encoding) {
        content.has_content_encoding = 1;
        content.content_encoding = bin_str(o->content_encoding);
    }
    Riak__RpbPutReq req = RIAK__RPB_PUT_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = bin(bucket);
    if (key.len) {
        req.has_key = 1;
        req.key = bin(key);
    }
    if (o->context.len) {
        req.has_vclock = 1;
        req.vclock = bin(o->context);
    }
    req.content = &content;
    SET_TYPE(req, o->type);
    SET_U32(req, w, o->w);
    SET_U32(req, dw, o->dw);
    SET_U32(req, pw, o->pw);
    SET_U32(req, n_val, o->n_val);
    SET_TRI(req, sloppy_quorum, o->sloppy_quorum);
    SET_FLAG(req, return_body, o->return_body);
    SET_FLAG(req, return_head, o->return_head);
    SET_FLAG(req, if_not_modified, o->if_not_modified);
    SET_FLAG(req, if_none_match, o->if_none_match);
    SET_U32(req, timeout, o->timeout_ms);
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

/* client/cairn.c's map_server_error (riak-facts.md 6.5). */
static int map_server_error(const char *msg, bool if_not_modified)
{
    if (strcmp(msg, "overload") == 0)
        return CAIRN_EOVERLOAD;
    if (strcmp(msg, "timeout") == 0)
        return CAIRN_ETIMEOUT;
    if (strcmp(msg, "match_found") == 0)
        return CAIRN_EEXISTS;
    if (strcmp(msg, "modified") == 0)
        return CAIRN_EMODIFIED;
    if (strcmp(msg, "notfound") == 0 && if_not_modified)
        return CAIRN_EMODIFIED;
    static const char *const too_big[] = {"too_large", "too large", "too big", "too_big",
                                          "exceeds maximum", "exceeds the maximum"};
    for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++)
        if (strstr(msg, too_big[i]))
            return CAIRN_ETOOBIG;
    return CAIRN_ESERVER;
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
    return map_server_error(text, if_not_modified);
}

int pbf_get_result(const uint8_t *body, size_t len, pbf_buf_t *context)
{
    Riak__RpbGetResp *resp = riak__rpb_get_resp__unpack(NULL, len, body);
    if (!resp)
        return CAIRN_EPROTO;
    /* As cairn_get: found if unchanged, or if some sibling is not a tombstone. */
    bool unchanged = resp->has_unchanged && resp->unchanged;
    bool all_deleted = resp->n_content > 0;
    for (size_t i = 0; i < resp->n_content; i++)
        all_deleted = all_deleted && resp->content[i]->has_deleted && resp->content[i]->deleted;
    bool found = unchanged || (resp->n_content > 0 && !all_deleted);
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
