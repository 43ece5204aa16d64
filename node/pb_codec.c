/*
 * pb_codec.c — Riak PB framing and request decoding (node/pb_codec.h). Pure: libc and
 * protobuf-c only, no runtime, so fuzz/fuzz_pb.c links it alone.
 *
 * Invariant of the reader: buf[off..scan) holds only complete frames whose headers were
 * checked; buf[scan..len) is the start of one incomplete frame (or nothing). Once a header is
 * refused, the bytes from it on are dropped and nothing more is buffered.
 */
#include "node/pb_codec.h"
#include "node/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_DEFAULT_MAX_FRAME (64u * 1024 * 1024)
#define PB_KEEP_BUFFER_BYTES (256u * 1024) /* an emptied buffer larger than this is released */

/* ---------------------------------------------------------------- codes */

typedef struct {
    uint8_t code;
    uint8_t kind; /* pb_kind_t */
    const char *name;
} code_info_t;

#define REQ PB_KIND_REQUEST
#define RESP PB_KIND_RESPONSE
#define UNSUP PB_KIND_UNSUPPORTED

/* riak_pb_messages.csv (riak-facts 6.2). */
static const code_info_t CODES[] = {
    {0, RESP, "RpbErrorResp"},
    {1, REQ, "RpbPingReq"},
    {2, RESP, "RpbPingResp"},
    {3, REQ, "RpbGetClientIdReq"},
    {4, RESP, "RpbGetClientIdResp"},
    {5, REQ, "RpbSetClientIdReq"},
    {6, RESP, "RpbSetClientIdResp"},
    {7, REQ, "RpbGetServerInfoReq"},
    {8, RESP, "RpbGetServerInfoResp"},
    {9, REQ, "RpbGetReq"},
    {10, RESP, "RpbGetResp"},
    {11, REQ, "RpbPutReq"},
    {12, RESP, "RpbPutResp"},
    {13, REQ, "RpbDelReq"},
    {14, RESP, "RpbDelResp"},
    {15, REQ, "RpbListBucketsReq"},
    {16, RESP, "RpbListBucketsResp"},
    {17, REQ, "RpbListKeysReq"},
    {18, RESP, "RpbListKeysResp"},
    {19, REQ, "RpbGetBucketReq"},
    {20, RESP, "RpbGetBucketResp"},
    {21, REQ, "RpbSetBucketReq"},
    {22, RESP, "RpbSetBucketResp"},
    {23, UNSUP, "RpbMapRedReq"},
    {24, RESP, "RpbMapRedResp"},
    {25, UNSUP, "RpbIndexReq"},
    {26, RESP, "RpbIndexResp"},
    {27, UNSUP, "RpbSearchQueryReq"},
    {28, RESP, "RpbSearchQueryResp"},
    {29, REQ, "RpbResetBucketReq"},
    {30, RESP, "RpbResetBucketResp"},
    {31, REQ, "RpbGetBucketTypeReq"},
    {32, REQ, "RpbSetBucketTypeReq"},
    {33, UNSUP, "RpbGetBucketKeyPreflistReq"},
    {34, RESP, "RpbGetBucketKeyPreflistResp"},
    {40, UNSUP, "RpbCSBucketReq"},
    {41, RESP, "RpbCSBucketResp"},
    {42, RESP, "RpbIndexBodyResp"},
    {50, UNSUP, "RpbCounterUpdateReq"},
    {51, RESP, "RpbCounterUpdateResp"},
    {52, UNSUP, "RpbCounterGetReq"},
    {53, RESP, "RpbCounterGetResp"},
    {54, UNSUP, "RpbYokozunaIndexGetReq"},
    {55, RESP, "RpbYokozunaIndexGetResp"},
    {56, UNSUP, "RpbYokozunaIndexPutReq"},
    {57, UNSUP, "RpbYokozunaIndexDeleteReq"},
    {58, UNSUP, "RpbYokozunaSchemaGetReq"},
    {59, RESP, "RpbYokozunaSchemaGetResp"},
    {60, UNSUP, "RpbYokozunaSchemaPutReq"},
    {70, UNSUP, "RpbCoverageReq"},
    {71, RESP, "RpbCoverageResp"},
    {80, UNSUP, "DtFetchReq"},
    {81, RESP, "DtFetchResp"},
    {82, UNSUP, "DtUpdateReq"},
    {83, RESP, "DtUpdateResp"},
    {90, UNSUP, "TsQueryReq"},
    {91, RESP, "TsQueryResp"},
    {92, UNSUP, "TsPutReq"},
    {93, RESP, "TsPutResp"},
    {94, UNSUP, "TsDelReq"},
    {95, RESP, "TsDelResp"},
    {96, UNSUP, "TsGetReq"},
    {97, RESP, "TsGetResp"},
    {98, UNSUP, "TsListKeysReq"},
    {99, RESP, "TsListKeysResp"},
    {100, UNSUP, "TsCoverageReq"},
    {101, RESP, "TsCoverageResp"},
    {102, UNSUP, "TsCoverageEntry"},
    {103, UNSUP, "TsRange"},
    {104, UNSUP, "TsTtbMsg"},
    {128, UNSUP, "RpbReplGetReq"},
    {129, UNSUP, "RpbReplGetClusterIdReq"},
    {130, RESP, "RpbReplGetClusterIdResp"},
    {200, UNSUP, "RpbRTEReq"},
    {201, RESP, "RpbRTEResp"},
    {202, UNSUP, "RpbFetchReq"},
    {203, RESP, "RpbFetchResp"},
    {204, UNSUP, "RpbPushReq"},
    {205, RESP, "RpbPushResp"},
    {206, UNSUP, "RpbMembershipReq"},
    {207, RESP, "RpbMembershipResp"},
    {210, UNSUP, "RpbAaeFoldMergeRootNValReq"},
    {211, UNSUP, "RpbAaeFoldMergeBranchNValReq"},
    {212, UNSUP, "RpbAaeFoldFetchClocksNValReq"},
    {213, UNSUP, "RpbAaeFoldMergeTreesRangeReq"},
    {214, UNSUP, "RpbAaeFoldFetchClocksRangeReq"},
    {215, UNSUP, "RpbAaeFoldFindKeysReq"},
    {216, UNSUP, "RpbAaeFoldObjectStatsReq"},
    {217, UNSUP, "RpbAaeFoldReplKeysReq"},
    {218, UNSUP, "RpbAaeFoldFindTombsReq"},
    {219, UNSUP, "RpbAaeFoldRepairKeysReq"},
    {220, RESP, "RpbAaeFoldTreeResp"},
    {221, RESP, "RpbAaeFoldKeyValueResp"},
    {222, RESP, "RpbAaeFoldKeyCountResp"},
    {223, UNSUP, "RpbAaeFoldListBucketsReq"},
    {224, RESP, "RpbAaeFoldListBucketsResp"},
    {230, UNSUP, "RpbAaeFoldReapTombsReq"},
    {231, UNSUP, "RpbAaeFoldEraseKeysReq"},
    {253, UNSUP, "RpbAuthReq"},
    {254, RESP, "RpbAuthResp"},
    {255, UNSUP, "RpbStartTls"},
};

#undef REQ
#undef RESP
#undef UNSUP

static const code_info_t *code_info(unsigned code)
{
    size_t lo = 0, hi = sizeof CODES / sizeof CODES[0];
    while (lo < hi) { /* CODES is sorted by code */
        size_t mid = (lo + hi) / 2;
        if (CODES[mid].code == code)
            return &CODES[mid];
        if (CODES[mid].code < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *pb_code_name(unsigned code)
{
    const code_info_t *c = code_info(code);
    return c ? c->name : NULL;
}

pb_kind_t pb_code_kind(unsigned code)
{
    const code_info_t *c = code_info(code);
    return c ? (pb_kind_t)c->kind : PB_KIND_UNKNOWN;
}

/* ---------------------------------------------------------------- frame reader */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void pb_reader_init(pb_reader_t *r, uint32_t max_frame_bytes)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame_bytes ? max_frame_bytes : PB_DEFAULT_MAX_FRAME;
}

void pb_reader_free(pb_reader_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = r->off = r->scan = 0;
}

/* Moves the unconsumed bytes to the front, releasing a large buffer once it is empty. */
static void compact(pb_reader_t *r)
{
    if (r->off == 0)
        return;
    size_t keep = r->len - r->off;
    if (keep == 0 && r->cap > PB_KEEP_BUFFER_BYTES) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    } else if (keep) {
        memmove(r->buf, r->buf + r->off, keep);
    }
    r->len = keep;
    r->scan -= r->off;
    r->off = 0;
}

void pb_reader_trim(pb_reader_t *r)
{
    if (r->off == r->len)
        compact(r);
}

/* Checks the headers of the frames that became visible; stops at the first incomplete one. */
static void scan_headers(pb_reader_t *r)
{
    while (r->len - r->scan >= PB_HEADER_BYTES) {
        uint32_t declared = be32(r->buf + r->scan);
        if (declared == 0 || declared > r->max_frame) {
            r->error = declared == 0 ? PB_EFRAME_EMPTY : PB_EFRAME_TOO_BIG;
            r->bad_len = declared;
            r->len = r->scan; /* drop the refused frame's bytes */
            return;
        }
        if (r->len - r->scan - PB_HEADER_BYTES < declared)
            return;
        r->scan += PB_HEADER_BYTES + (size_t)declared;
        r->frames_seen++;
    }
}

int pb_reader_feed(pb_reader_t *r, const void *data, size_t len)
{
    if (r->error || len == 0)
        return r->error;
    compact(r);
    size_t need = r->len + len;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(r->buf, cap);
        if (!nb)
            abort(); /* server policy: out of memory ends the node */
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    scan_headers(r);
    return r->error;
}

int pb_reader_next(pb_reader_t *r, pb_frame_t *out)
{
    if (r->scan > r->off) {
        uint32_t declared = be32(r->buf + r->off);
        out->code = r->buf[r->off + PB_HEADER_BYTES];
        out->body = r->buf + r->off + PB_HEADER_BYTES + 1;
        out->len = declared - 1;
        r->off += PB_HEADER_BYTES + (size_t)declared;
        return 1;
    }
    return r->error;
}

void pb_reader_strerror(const pb_reader_t *r, char *err, size_t errlen)
{
    switch (r->error) {
    case 0:
        snprintf(err, errlen, "no error");
        break;
    case PB_EFRAME_TOO_BIG:
        snprintf(err, errlen, "Frame of %u bytes exceeds the maximum of %u bytes", r->bad_len,
                 r->max_frame);
        break;
    case PB_EFRAME_EMPTY:
        snprintf(err, errlen, "Invalid frame length 0 (a frame holds at least its message code)");
        break;
    default:
        snprintf(err, errlen, "Invalid frame (%d)", r->error);
        break;
    }
}

/* ---------------------------------------------------------------- request validation */

/* A required bytes field: present ("Missing required field: <field>") and not empty
 * ("<label> cannot be zero-length"). */
static int need_bytes(bool has, ProtobufCBinaryData v, const char *field, const char *label,
                      char *err, size_t errlen)
{
    if (!has)
        return node_errorf(err, errlen, "Missing required field: %s", field);
    if (v.len == 0)
        return node_errorf(err, errlen, "%s cannot be zero-length", label);
    return 0;
}

static int need_bucket(bool has, ProtobufCBinaryData v, char *err, size_t errlen)
{
    return need_bytes(has, v, "bucket", "Bucket", err, errlen);
}

static int need_key(bool has, ProtobufCBinaryData v, char *err, size_t errlen)
{
    return need_bytes(has, v, "key", "Key", err, errlen);
}

static int need_type(bool has, ProtobufCBinaryData v, char *err, size_t errlen)
{
    return need_bytes(has, v, "type", "Bucket type", err, errlen);
}

static int check_modfun(const Riak__RpbModFun *mf, const char *where, char *err, size_t errlen)
{
    if (!mf)
        return 0;
    if (!mf->has_module)
        return node_errorf(err, errlen, "Missing required field: %s.module", where);
    if (!mf->has_function)
        return node_errorf(err, errlen, "Missing required field: %s.function", where);
    return 0;
}

static int check_hooks(Riak__RpbCommitHook *const *hooks, size_t n, const char *where,
                       char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "props.%s.modfun", where);
    for (size_t i = 0; i < n; i++)
        if (check_modfun(hooks[i]->modfun, path, err, errlen) != 0)
            return -1;
    return 0;
}

static int check_props(const Riak__RpbBucketProps *p, char *err, size_t errlen)
{
    if (!p)
        return node_errorf(err, errlen, "Missing required field: props");
    if (check_modfun(p->chash_keyfun, "props.chash_keyfun", err, errlen) != 0 ||
        check_modfun(p->linkfun, "props.linkfun", err, errlen) != 0 ||
        check_hooks(p->precommit, p->n_precommit, "precommit", err, errlen) != 0 ||
        check_hooks(p->postcommit, p->n_postcommit, "postcommit", err, errlen) != 0)
        return -1;
    return 0;
}

static int check_pairs(Riak__RpbPair *const *pairs, size_t n, const char *where, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!pairs[i]->has_key)
            return node_errorf(err, errlen, "Missing required field: content.%s.key", where);
    return 0;
}

static int check_put(const Riak__RpbPutReq *q, char *err, size_t errlen)
{
    if (need_bucket(q->has_bucket, q->bucket, err, errlen) != 0)
        return -1;
    if (q->has_key && q->key.len == 0) /* absent: the server generates one */
        return node_errorf(err, errlen, "Key cannot be zero-length");
    if (!q->content)
        return node_errorf(err, errlen, "Missing required field: content");
    if (!q->content->has_value)
        return node_errorf(err, errlen, "Missing required field: content.value");
    return check_pairs(q->content->usermeta, q->content->n_usermeta, "usermeta", err, errlen) ||
                   check_pairs(q->content->indexes, q->content->n_indexes, "indexes", err, errlen)
               ? -1
               : 0;
}

/* Validates a decoded request of a code whose kind is PB_KIND_REQUEST. */
static int check_request(uint8_t code, const ProtobufCMessage *m, char *err, size_t errlen)
{
    switch (code) {
    case PB_SET_CLIENT_ID_REQ: {
        const Riak__RpbSetClientIdReq *q = (const void *)m;
        return q->has_client_id ? 0 : node_errorf(err, errlen, "Missing required field: client_id");
    }
    case PB_GET_REQ: {
        const Riak__RpbGetReq *q = (const void *)m;
        if (need_bucket(q->has_bucket, q->bucket, err, errlen) != 0)
            return -1;
        return need_key(q->has_key, q->key, err, errlen);
    }
    case PB_PUT_REQ:
        return check_put((const void *)m, err, errlen);
    case PB_DEL_REQ: {
        const Riak__RpbDelReq *q = (const void *)m;
        if (need_bucket(q->has_bucket, q->bucket, err, errlen) != 0)
            return -1;
        return need_key(q->has_key, q->key, err, errlen);
    }
    case PB_LIST_BUCKETS_REQ:
        return 0;
    case PB_LIST_KEYS_REQ: {
        const Riak__RpbListKeysReq *q = (const void *)m;
        return need_bucket(q->has_bucket, q->bucket, err, errlen);
    }
    case PB_GET_BUCKET_REQ: {
        const Riak__RpbGetBucketReq *q = (const void *)m;
        return need_bucket(q->has_bucket, q->bucket, err, errlen);
    }
    case PB_SET_BUCKET_REQ: {
        const Riak__RpbSetBucketReq *q = (const void *)m;
        if (need_bucket(q->has_bucket, q->bucket, err, errlen) != 0)
            return -1;
        return check_props(q->props, err, errlen);
    }
    case PB_RESET_BUCKET_REQ: {
        const Riak__RpbResetBucketReq *q = (const void *)m;
        return need_bucket(q->has_bucket, q->bucket, err, errlen);
    }
    case PB_GET_BUCKET_TYPE_REQ: {
        const Riak__RpbGetBucketTypeReq *q = (const void *)m;
        return need_type(q->has_type, q->type, err, errlen);
    }
    case PB_SET_BUCKET_TYPE_REQ: {
        const Riak__RpbSetBucketTypeReq *q = (const void *)m;
        if (need_type(q->has_type, q->type, err, errlen) != 0)
            return -1;
        return check_props(q->props, err, errlen);
    }
    default:
        return node_errorf(err, errlen, "Unknown message code: %u", code);
    }
}

/* The body's message type for a request code; NULL for bodyless requests. */
static const ProtobufCMessageDescriptor *request_descriptor(uint8_t code)
{
    switch (code) {
    case PB_SET_CLIENT_ID_REQ: return &riak__rpb_set_client_id_req__descriptor;
    case PB_GET_REQ: return &riak__rpb_get_req__descriptor;
    case PB_PUT_REQ: return &riak__rpb_put_req__descriptor;
    case PB_DEL_REQ: return &riak__rpb_del_req__descriptor;
    case PB_LIST_BUCKETS_REQ: return &riak__rpb_list_buckets_req__descriptor;
    case PB_LIST_KEYS_REQ: return &riak__rpb_list_keys_req__descriptor;
    case PB_GET_BUCKET_REQ: return &riak__rpb_get_bucket_req__descriptor;
    case PB_SET_BUCKET_REQ: return &riak__rpb_set_bucket_req__descriptor;
    case PB_RESET_BUCKET_REQ: return &riak__rpb_reset_bucket_req__descriptor;
    case PB_GET_BUCKET_TYPE_REQ: return &riak__rpb_get_bucket_type_req__descriptor;
    case PB_SET_BUCKET_TYPE_REQ: return &riak__rpb_set_bucket_type_req__descriptor;
    default: return NULL;
    }
}

int pb_decode_request(uint8_t code, const uint8_t *body, size_t len, pb_request_t *out,
                      char *err, size_t errlen)
{
    out->code = code;
    out->msg = NULL;
    switch (pb_code_kind(code)) {
    case PB_KIND_REQUEST:
        break;
    case PB_KIND_UNSUPPORTED:
        return node_errorf(err, errlen, "Unknown message code: %u (%s is not supported by Cairn)", code,
                    pb_code_name(code));
    case PB_KIND_RESPONSE:
        return node_errorf(err, errlen, "Unexpected message code: %u (%s is a response, not a request)",
                    code, pb_code_name(code));
    default:
        return node_errorf(err, errlen, "Unknown message code: %u", code);
    }
    const ProtobufCMessageDescriptor *d = request_descriptor(code);
    if (!d)
        return 0; /* ping, get client id, server info: any body is ignored */
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, body);
    if (!m)
        return node_errorf(err, errlen, "Invalid message body for code %u (%s)", code,
                    pb_code_name(code));
    if (check_request(code, m, err, errlen) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    out->msg = m;
    return 0;
}

void pb_request_free(pb_request_t *req)
{
    if (req->msg)
        protobuf_c_message_free_unpacked(req->msg, NULL);
    req->msg = NULL;
}

/* ---------------------------------------------------------------- encoding */

size_t pb_frame_size(const ProtobufCMessage *body)
{
    return PB_HEADER_BYTES + 1 + (body ? protobuf_c_message_get_packed_size(body) : 0);
}

size_t pb_frame_pack(uint8_t code, const ProtobufCMessage *body, uint8_t *out)
{
    size_t body_len = body ? protobuf_c_message_pack(body, out + PB_HEADER_BYTES + 1) : 0;
    uint32_t declared = (uint32_t)(body_len + 1);
    out[0] = (uint8_t)(declared >> 24);
    out[1] = (uint8_t)(declared >> 16);
    out[2] = (uint8_t)(declared >> 8);
    out[3] = (uint8_t)declared;
    out[4] = code;
    return PB_HEADER_BYTES + 1 + body_len;
}

size_t pb_error_frame(const char *text, uint8_t *out, size_t cap)
{
    /* header 4 + code 1 + errmsg tag 1 + length varint <= 5 + errcode tag and value 2 */
    const size_t overhead = 13;
    size_t n = strlen(text);
    if (cap < overhead + 3)
        return 0;
    if (n > cap - overhead)
        n = cap - overhead;
    Riak__RpbErrorResp e = RIAK__RPB_ERROR_RESP__INIT;
    e.has_errmsg = 1;
    e.errmsg.data = (uint8_t *)(uintptr_t)text;
    e.errmsg.len = n;
    e.has_errcode = 1; /* required in riak_pb; Riak always sends 0 */
    e.errcode = 0;
    return pb_frame_pack(PB_ERROR_RESP, &e.base, out);
}
