/*
 * test_node_pb_codec.c — Riak PB framing and request decoding (node/pb_codec.c): frames split
 * at every byte boundary, many frames in one chunk, oversize and zero lengths refused before
 * buffering, every request type round-tripped, and every bad request answered with Riak's
 * error text.
 */
#include "node/pb_codec.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

#define BIN(s) ((ProtobufCBinaryData){strlen(s), (uint8_t *)(s)})

typedef struct {
    uint8_t bytes[8192];
    size_t len;
} stream_t;

static void append_frame(stream_t *s, uint8_t code, const ProtobufCMessage *body)
{
    cr_assert_leq(s->len + pb_frame_size(body), sizeof s->bytes);
    s->len += pb_frame_pack(code, body, s->bytes + s->len);
}

typedef struct {
    uint8_t code;
    size_t len;
    uint8_t body[2048];
} got_t;

/* Takes every complete frame out of r into got[]; returns how many. */
static size_t drain(pb_reader_t *r, got_t *got, size_t max, size_t have)
{
    pb_frame_t f;
    int rc;
    while ((rc = pb_reader_next(r, &f)) == 1) {
        cr_assert_lt(have, max);
        got[have].code = f.code;
        got[have].len = f.len;
        cr_assert_leq(f.len, sizeof got[have].body);
        memcpy(got[have].body, f.body, f.len);
        have++;
    }
    cr_assert_eq(rc, 0);
    return have;
}

/* A stream of five frames of different shapes. */
static void sample_stream(stream_t *s)
{
    s->len = 0;
    append_frame(s, PB_PING_REQ, NULL);
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    get.has_bucket = 1;
    get.bucket = BIN("b");
    get.has_key = 1;
    get.key = BIN("k");
    append_frame(s, PB_GET_REQ, &get.base);
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    content.has_value = 1;
    content.value = BIN("a value that is a little longer than the others");
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    put.has_bucket = 1;
    put.bucket = BIN("bucket");
    put.content = &content;
    append_frame(s, PB_PUT_REQ, &put.base);
    append_frame(s, PB_LIST_BUCKETS_REQ, NULL);
    append_frame(s, PB_GET_SERVER_INFO_REQ, NULL);
}

static void check_sample(const got_t *got, size_t n, const stream_t *s)
{
    cr_assert_eq(n, 5);
    uint8_t codes[] = {PB_PING_REQ, PB_GET_REQ, PB_PUT_REQ, PB_LIST_BUCKETS_REQ,
                       PB_GET_SERVER_INFO_REQ};
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(got[i].code, codes[i], "frame %zu", i);
        uint32_t declared = (uint32_t)s->bytes[off] << 24 | (uint32_t)s->bytes[off + 1] << 16 |
                            (uint32_t)s->bytes[off + 2] << 8 | s->bytes[off + 3];
        cr_assert_eq(got[i].len, declared - 1);
        cr_assert_eq(memcmp(got[i].body, s->bytes + off + 5, got[i].len), 0);
        off += 4 + declared;
    }
}

/* ---------------------------------------------------------------- the frame reader */

Test(pb_codec, riak_example_frame_is_read)
{
    /* riak-facts 6.1: GetReq bucket "b" key "k" */
    const uint8_t wire[] = {0, 0, 0, 7, 9, 0x0A, 1, 'b', 0x12, 1, 'k'};
    pb_reader_t r;
    pb_reader_init(&r, 1024);
    cr_assert_eq(pb_reader_feed(&r, wire, sizeof wire), 0);
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    cr_assert_eq(f.code, PB_GET_REQ);
    cr_assert_eq(f.len, 6);
    pb_request_t req;
    char err[256];
    cr_assert_eq(pb_decode_request(f.code, f.body, f.len, &req, err, sizeof err), 0, "%s", err);
    Riak__RpbGetReq *g = (Riak__RpbGetReq *)req.msg;
    cr_assert(g->has_bucket && g->bucket.len == 1 && g->bucket.data[0] == 'b');
    cr_assert(g->has_key && g->key.len == 1 && g->key.data[0] == 'k');
    pb_request_free(&req);
    cr_assert_eq(pb_reader_next(&r, &f), 0);
    cr_assert_eq(pb_reader_buffered(&r), 0);
    pb_reader_free(&r);
}

Test(pb_codec, frames_split_at_every_byte_boundary)
{
    stream_t s;
    sample_stream(&s);
    for (size_t cut = 0; cut <= s.len; cut++) {
        pb_reader_t r;
        pb_reader_init(&r, 4096);
        got_t got[8];
        cr_assert_eq(pb_reader_feed(&r, s.bytes, cut), 0);
        size_t n = drain(&r, got, 8, 0);
        cr_assert_eq(pb_reader_feed(&r, s.bytes + cut, s.len - cut), 0);
        n = drain(&r, got, 8, n);
        check_sample(got, n, &s);
        cr_assert_eq(pb_reader_buffered(&r), 0);
        cr_assert_not(pb_reader_partial(&r));
        pb_reader_free(&r);
    }
}

Test(pb_codec, frames_fed_one_byte_at_a_time)
{
    stream_t s;
    sample_stream(&s);
    pb_reader_t r;
    pb_reader_init(&r, 4096);
    got_t got[8];
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        cr_assert_eq(pb_reader_feed(&r, s.bytes + i, 1), 0);
        n = drain(&r, got, 8, n);
        if (i + 1 < s.len && n < 5)
            cr_assert(pb_reader_partial(&r) || pb_reader_buffered(&r) == 0);
    }
    check_sample(got, n, &s);
    cr_assert_eq(r.frames_seen, 5);
    pb_reader_free(&r);
}

Test(pb_codec, several_frames_in_one_chunk_wait_until_taken)
{
    stream_t s;
    sample_stream(&s);
    pb_reader_t r;
    pb_reader_init(&r, 4096);
    cr_assert_eq(pb_reader_feed(&r, s.bytes, s.len), 0);
    cr_assert(pb_reader_has_frame(&r));
    cr_assert_not(pb_reader_partial(&r));
    cr_assert_eq(pb_reader_buffered(&r), s.len);
    got_t got[8];
    check_sample(got, drain(&r, got, 8, 0), &s);
    cr_assert_not(pb_reader_has_frame(&r));
    pb_reader_free(&r);
}

Test(pb_codec, frame_of_exactly_the_maximum_is_accepted)
{
    uint8_t frame[4 + 100] = {0, 0, 0, 100, PB_PING_REQ};
    pb_reader_t r;
    pb_reader_init(&r, 100);
    cr_assert_eq(pb_reader_feed(&r, frame, sizeof frame), 0);
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    cr_assert_eq(f.len, 99);
    pb_reader_free(&r);
}

Test(pb_codec, oversize_frame_is_refused_before_its_body_is_buffered)
{
    pb_reader_t r;
    pb_reader_init(&r, 100);
    const uint8_t ping[] = {0, 0, 0, 1, PB_PING_REQ};
    const uint8_t big_header[] = {0, 0x10, 0, 0}; /* 1 MiB */
    cr_assert_eq(pb_reader_feed(&r, ping, sizeof ping), 0);
    /* the header arrives in two pieces: nothing is refused until it is whole */
    cr_assert_eq(pb_reader_feed(&r, big_header, 2), 0);
    cr_assert_eq(pb_reader_feed(&r, big_header + 2, 2), PB_EFRAME_TOO_BIG);
    uint8_t junk[1000];
    memset(junk, 'x', sizeof junk);
    cr_assert_eq(pb_reader_feed(&r, junk, sizeof junk), PB_EFRAME_TOO_BIG);
    cr_assert_eq(pb_reader_buffered(&r), sizeof ping, "only the ping stays buffered");
    /* the frame before the bad header is still delivered, then the error */
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    cr_assert_eq(f.code, PB_PING_REQ);
    cr_assert_eq(pb_reader_next(&r, &f), PB_EFRAME_TOO_BIG);
    cr_assert_eq(pb_reader_next(&r, &f), PB_EFRAME_TOO_BIG, "the error is sticky");
    char err[128];
    pb_reader_strerror(&r, err, sizeof err);
    cr_assert_str_eq(err, "Frame of 1048576 bytes exceeds the maximum of 100 bytes");
    pb_reader_free(&r);
}

Test(pb_codec, huge_declared_length_in_one_chunk)
{
    pb_reader_t r;
    pb_reader_init(&r, 0); /* default 64 MiB */
    const uint8_t wire[] = {0xFF, 0xFF, 0xFF, 0xFF, PB_PUT_REQ, 1, 2, 3};
    cr_assert_eq(pb_reader_feed(&r, wire, sizeof wire), PB_EFRAME_TOO_BIG);
    cr_assert_eq(pb_reader_buffered(&r), 0);
    cr_assert_not(pb_reader_partial(&r));
    pb_reader_free(&r);
}

Test(pb_codec, zero_length_frame_is_refused)
{
    pb_reader_t r;
    pb_reader_init(&r, 100);
    const uint8_t wire[] = {0, 0, 0, 0, 0, 0, 0, 1, PB_PING_REQ};
    cr_assert_eq(pb_reader_feed(&r, wire, sizeof wire), PB_EFRAME_EMPTY);
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), PB_EFRAME_EMPTY);
    char err[128];
    pb_reader_strerror(&r, err, sizeof err);
    cr_assert(strstr(err, "length 0"), "%s", err);
    pb_reader_free(&r);
}

Test(pb_codec, large_frame_grows_and_releases_the_buffer)
{
    enum { BODY = 1 << 20 };
    uint8_t *wire = calloc(1, 5 + BODY);
    uint32_t declared = BODY + 1;
    wire[0] = (uint8_t)(declared >> 24);
    wire[1] = (uint8_t)(declared >> 16);
    wire[2] = (uint8_t)(declared >> 8);
    wire[3] = (uint8_t)declared;
    wire[4] = PB_PING_REQ;
    pb_reader_t r;
    pb_reader_init(&r, 2 * BODY);
    for (size_t off = 0; off < 5 + (size_t)BODY; off += 65536) {
        size_t n = 5 + (size_t)BODY - off < 65536 ? 5 + (size_t)BODY - off : 65536;
        cr_assert_eq(pb_reader_feed(&r, wire + off, n), 0);
    }
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    cr_assert_eq(f.len, BODY);
    const uint8_t ping[] = {0, 0, 0, 1, PB_PING_REQ};
    cr_assert_eq(pb_reader_feed(&r, ping, sizeof ping), 0);
    cr_assert_leq(r.cap, 256 * 1024, "an emptied large buffer is released (cap %zu)", r.cap);
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    pb_reader_free(&r);
    free(wire);
}

/* ---------------------------------------------------------------- request decoding */

/* Packs body as a frame, reads it back through a reader and decodes it. */
static int roundtrip(uint8_t code, const ProtobufCMessage *body, pb_request_t *out, char *err,
                     size_t errlen)
{
    stream_t s = {.len = 0};
    append_frame(&s, code, body);
    pb_reader_t r;
    pb_reader_init(&r, 4096);
    cr_assert_eq(pb_reader_feed(&r, s.bytes, s.len), 0);
    pb_frame_t f;
    cr_assert_eq(pb_reader_next(&r, &f), 1);
    cr_assert_eq(f.code, code);
    int rc = pb_decode_request(f.code, f.body, f.len, out, err, errlen);
    pb_reader_free(&r);
    return rc;
}

static void expect_ok(uint8_t code, const ProtobufCMessage *body, pb_request_t *out)
{
    char err[256] = "";
    cr_assert_eq(roundtrip(code, body, out, err, sizeof err), 0, "code %u: %s", code, err);
    cr_assert_eq(out->code, code);
}

static void expect_error(uint8_t code, const ProtobufCMessage *body, const char *text)
{
    pb_request_t req;
    char err[256] = "";
    cr_assert_eq(roundtrip(code, body, &req, err, sizeof err), -1, "code %u accepted", code);
    cr_assert_null(req.msg);
    cr_assert_str_eq(err, text);
}

static bool bin_is(ProtobufCBinaryData b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

Test(pb_codec, bodyless_requests_decode_without_a_message)
{
    uint8_t codes[] = {PB_PING_REQ, PB_GET_CLIENT_ID_REQ, PB_GET_SERVER_INFO_REQ};
    for (size_t i = 0; i < sizeof codes; i++) {
        pb_request_t req;
        expect_ok(codes[i], NULL, &req);
        cr_assert_null(req.msg);
    }
    /* a body sent with a ping is ignored, even garbage */
    pb_request_t req;
    char err[64];
    const uint8_t junk[] = {0xFF, 0xFF};
    cr_assert_eq(pb_decode_request(PB_PING_REQ, junk, 2, &req, err, sizeof err), 0);
    cr_assert_null(req.msg);
}

Test(pb_codec, get_put_del_roundtrip)
{
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    get.has_bucket = get.has_key = get.has_r = get.has_timeout = get.has_type = 1;
    get.bucket = BIN("users");
    get.key = BIN("alice");
    get.r = 4294967293u; /* quorum */
    get.timeout = 1500;
    get.type = BIN("default");
    pb_request_t req;
    expect_ok(PB_GET_REQ, &get.base, &req);
    Riak__RpbGetReq *g = (Riak__RpbGetReq *)req.msg;
    cr_assert(bin_is(g->bucket, "users") && bin_is(g->key, "alice") && bin_is(g->type, "default"));
    cr_assert(g->has_r && g->r == 4294967293u && g->has_timeout && g->timeout == 1500);
    cr_assert_not(g->has_pr);
    pb_request_free(&req);
    cr_assert_null(req.msg);

    Riak__RpbPair meta = RIAK__RPB_PAIR__INIT;
    meta.has_key = meta.has_value = 1;
    meta.key = BIN("m");
    meta.value = BIN("v");
    Riak__RpbPair *metas[] = {&meta};
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    content.has_value = content.has_content_type = 1;
    content.value = BIN("hello");
    content.content_type = BIN("text/plain");
    content.n_usermeta = 1;
    content.usermeta = metas;
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    put.has_bucket = put.has_key = put.has_vclock = put.has_w = put.has_return_body = 1;
    put.bucket = BIN("users");
    put.key = BIN("alice");
    put.vclock = BIN("opaque-vclock");
    put.w = 1;
    put.return_body = 1;
    put.content = &content;
    expect_ok(PB_PUT_REQ, &put.base, &req);
    Riak__RpbPutReq *p = (Riak__RpbPutReq *)req.msg;
    cr_assert(bin_is(p->bucket, "users") && bin_is(p->key, "alice"));
    cr_assert(bin_is(p->vclock, "opaque-vclock") && p->w == 1 && p->return_body);
    cr_assert(bin_is(p->content->value, "hello") && bin_is(p->content->content_type, "text/plain"));
    cr_assert_eq(p->content->n_usermeta, 1);
    cr_assert(bin_is(p->content->usermeta[0]->key, "m"));
    pb_request_free(&req);

    /* no key: the server generates one */
    put.has_key = 0;
    expect_ok(PB_PUT_REQ, &put.base, &req);
    cr_assert_not(((Riak__RpbPutReq *)req.msg)->has_key);
    pb_request_free(&req);
    /* an empty value is a value */
    content.value = BIN("");
    expect_ok(PB_PUT_REQ, &put.base, &req);
    cr_assert(((Riak__RpbPutReq *)req.msg)->content->has_value);
    pb_request_free(&req);

    Riak__RpbDelReq del = RIAK__RPB_DEL_REQ__INIT;
    del.has_bucket = del.has_key = del.has_rw = 1;
    del.bucket = BIN("users");
    del.key = BIN("alice");
    del.rw = 2;
    expect_ok(PB_DEL_REQ, &del.base, &req);
    Riak__RpbDelReq *d = (Riak__RpbDelReq *)req.msg;
    cr_assert(bin_is(d->bucket, "users") && bin_is(d->key, "alice") && d->rw == 2);
    pb_request_free(&req);
}

Test(pb_codec, listing_and_client_id_roundtrip)
{
    pb_request_t req;
    /* list buckets: no body at all, or options */
    expect_ok(PB_LIST_BUCKETS_REQ, NULL, &req);
    cr_assert_not_null(req.msg, "an empty body is a valid RpbListBucketsReq");
    pb_request_free(&req);
    Riak__RpbListBucketsReq lb = RIAK__RPB_LIST_BUCKETS_REQ__INIT;
    lb.has_stream = lb.has_timeout = 1;
    lb.stream = 1;
    lb.timeout = 9000;
    expect_ok(PB_LIST_BUCKETS_REQ, &lb.base, &req);
    cr_assert(((Riak__RpbListBucketsReq *)req.msg)->stream);
    pb_request_free(&req);

    Riak__RpbListKeysReq lk = RIAK__RPB_LIST_KEYS_REQ__INIT;
    lk.has_bucket = 1;
    lk.bucket = BIN("b");
    expect_ok(PB_LIST_KEYS_REQ, &lk.base, &req);
    cr_assert(bin_is(((Riak__RpbListKeysReq *)req.msg)->bucket, "b"));
    pb_request_free(&req);

    Riak__RpbSetClientIdReq cid = RIAK__RPB_SET_CLIENT_ID_REQ__INIT;
    cid.has_client_id = 1;
    cid.client_id = BIN("\x01\x02\x03\x04");
    expect_ok(PB_SET_CLIENT_ID_REQ, &cid.base, &req);
    cr_assert(bin_is(((Riak__RpbSetClientIdReq *)req.msg)->client_id, "\x01\x02\x03\x04"));
    pb_request_free(&req);
}

Test(pb_codec, bucket_property_requests_roundtrip)
{
    pb_request_t req;
    Riak__RpbGetBucketReq gb = RIAK__RPB_GET_BUCKET_REQ__INIT;
    gb.has_bucket = 1;
    gb.bucket = BIN("b");
    expect_ok(PB_GET_BUCKET_REQ, &gb.base, &req);
    cr_assert(bin_is(((Riak__RpbGetBucketReq *)req.msg)->bucket, "b"));
    pb_request_free(&req);

    Riak__RpbModFun mf = RIAK__RPB_MOD_FUN__INIT;
    mf.has_module = mf.has_function = 1;
    mf.module = BIN("riak_core_util");
    mf.function = BIN("chash_std_keyfun");
    Riak__RpbBucketProps props = RIAK__RPB_BUCKET_PROPS__INIT;
    props.has_n_val = props.has_allow_mult = 1;
    props.n_val = 1;
    props.allow_mult = 1;
    props.chash_keyfun = &mf;
    Riak__RpbSetBucketReq sb = RIAK__RPB_SET_BUCKET_REQ__INIT;
    sb.has_bucket = 1;
    sb.bucket = BIN("b");
    sb.props = &props;
    expect_ok(PB_SET_BUCKET_REQ, &sb.base, &req);
    Riak__RpbSetBucketReq *s = (Riak__RpbSetBucketReq *)req.msg;
    cr_assert(s->props->has_n_val && s->props->n_val == 1 && s->props->allow_mult);
    cr_assert(bin_is(s->props->chash_keyfun->module, "riak_core_util"));
    pb_request_free(&req);

    Riak__RpbResetBucketReq rb = RIAK__RPB_RESET_BUCKET_REQ__INIT;
    rb.has_bucket = 1;
    rb.bucket = BIN("b");
    expect_ok(PB_RESET_BUCKET_REQ, &rb.base, &req);
    pb_request_free(&req);

    Riak__RpbGetBucketTypeReq gt = RIAK__RPB_GET_BUCKET_TYPE_REQ__INIT;
    gt.has_type = 1;
    gt.type = BIN("default");
    expect_ok(PB_GET_BUCKET_TYPE_REQ, &gt.base, &req);
    cr_assert(bin_is(((Riak__RpbGetBucketTypeReq *)req.msg)->type, "default"));
    pb_request_free(&req);

    Riak__RpbSetBucketTypeReq st = RIAK__RPB_SET_BUCKET_TYPE_REQ__INIT;
    st.has_type = 1;
    st.type = BIN("default");
    st.props = &props;
    expect_ok(PB_SET_BUCKET_TYPE_REQ, &st.base, &req);
    cr_assert(((Riak__RpbSetBucketTypeReq *)req.msg)->props->allow_mult);
    pb_request_free(&req);
}

Test(pb_codec, unknown_unsupported_and_response_codes_are_errors)
{
    pb_request_t req;
    char err[256];
    cr_assert_eq(pb_decode_request(150, NULL, 0, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Unknown message code: 150");
    cr_assert_eq(pb_decode_request(PB_MAP_RED_REQ, NULL, 0, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Unknown message code: 23 (RpbMapRedReq is not supported by Cairn)");
    cr_assert_eq(pb_decode_request(PB_GET_RESP, NULL, 0, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Unexpected message code: 10 (RpbGetResp is a response, not a request)");
    cr_assert_eq(pb_decode_request(PB_ERROR_RESP, NULL, 0, &req, err, sizeof err), -1);
    cr_assert(strstr(err, "RpbErrorResp is a response"), "%s", err);
    for (unsigned code = 0; code < 256; code++) {
        pb_kind_t k = pb_code_kind(code);
        if (k == PB_KIND_REQUEST)
            continue;
        cr_assert_eq(pb_decode_request((uint8_t)code, NULL, 0, &req, err, sizeof err), -1,
                     "code %u", code);
        cr_assert_null(req.msg);
    }
    cr_assert_str_eq(pb_code_name(PB_SET_BUCKET_TYPE_REQ), "RpbSetBucketTypeReq");
    cr_assert_null(pb_code_name(35));
}

Test(pb_codec, malformed_bodies_are_errors)
{
    pb_request_t req;
    char err[256];
    const uint8_t truncated[] = {0x0A, 0x05, 'a'};          /* bucket says 5 bytes, has 1 */
    const uint8_t bad_varint[] = {0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const uint8_t wrong_wire_type[] = {0x0D, 1, 2, 3, 4};   /* field 1 as fixed32 */
    const uint8_t bad_tag[] = {0x00};                       /* field number 0 */
    cr_assert_eq(pb_decode_request(PB_GET_REQ, truncated, sizeof truncated, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Invalid message body for code 9 (RpbGetReq)");
    cr_assert_eq(pb_decode_request(PB_GET_REQ, bad_varint, sizeof bad_varint, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Invalid message body for code 9 (RpbGetReq)");
    cr_assert_eq(pb_decode_request(PB_PUT_REQ, wrong_wire_type, sizeof wrong_wire_type, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Invalid message body for code 11 (RpbPutReq)");
    cr_assert_eq(pb_decode_request(PB_DEL_REQ, bad_tag, sizeof bad_tag, &req, err, sizeof err), -1);
    cr_assert_str_eq(err, "Invalid message body for code 13 (RpbDelReq)");
    cr_assert_null(req.msg);
}

Test(pb_codec, missing_and_zero_length_fields_are_errors)
{
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    expect_error(PB_GET_REQ, &get.base, "Missing required field: bucket");
    expect_error(PB_GET_REQ, NULL, "Missing required field: bucket");
    get.has_bucket = 1;
    get.bucket = BIN("");
    get.has_key = 1;
    get.key = BIN("k");
    expect_error(PB_GET_REQ, &get.base, "Bucket cannot be zero-length");
    get.bucket = BIN("b");
    get.has_key = 0;
    expect_error(PB_GET_REQ, &get.base, "Missing required field: key");
    get.has_key = 1;
    get.key = BIN("");
    expect_error(PB_GET_REQ, &get.base, "Key cannot be zero-length");

    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    expect_error(PB_PUT_REQ, &put.base, "Missing required field: bucket");
    put.has_bucket = 1;
    put.bucket = BIN("b");
    expect_error(PB_PUT_REQ, &put.base, "Missing required field: content");
    put.content = &content;
    expect_error(PB_PUT_REQ, &put.base, "Missing required field: content.value");
    content.has_value = 1;
    content.value = BIN("v");
    put.has_key = 1;
    put.key = BIN("");
    expect_error(PB_PUT_REQ, &put.base, "Key cannot be zero-length");
    put.has_key = 0;
    Riak__RpbPair idx = RIAK__RPB_PAIR__INIT; /* no key */
    Riak__RpbPair *idxs[] = {&idx};
    content.n_indexes = 1;
    content.indexes = idxs;
    expect_error(PB_PUT_REQ, &put.base, "Missing required field: content.indexes.key");

    Riak__RpbDelReq del = RIAK__RPB_DEL_REQ__INIT;
    del.has_bucket = 1;
    del.bucket = BIN("b");
    expect_error(PB_DEL_REQ, &del.base, "Missing required field: key");
    del.has_key = 1;
    del.key = BIN("");
    expect_error(PB_DEL_REQ, &del.base, "Key cannot be zero-length");

    Riak__RpbListKeysReq lk = RIAK__RPB_LIST_KEYS_REQ__INIT;
    expect_error(PB_LIST_KEYS_REQ, &lk.base, "Missing required field: bucket");
    lk.has_bucket = 1;
    lk.bucket = BIN("");
    expect_error(PB_LIST_KEYS_REQ, &lk.base, "Bucket cannot be zero-length");

    Riak__RpbGetBucketReq gb = RIAK__RPB_GET_BUCKET_REQ__INIT;
    expect_error(PB_GET_BUCKET_REQ, &gb.base, "Missing required field: bucket");
    Riak__RpbResetBucketReq rb = RIAK__RPB_RESET_BUCKET_REQ__INIT;
    rb.has_bucket = 1;
    rb.bucket = BIN("");
    expect_error(PB_RESET_BUCKET_REQ, &rb.base, "Bucket cannot be zero-length");

    Riak__RpbSetBucketReq sb = RIAK__RPB_SET_BUCKET_REQ__INIT;
    sb.has_bucket = 1;
    sb.bucket = BIN("b");
    expect_error(PB_SET_BUCKET_REQ, &sb.base, "Missing required field: props");
    Riak__RpbModFun mf = RIAK__RPB_MOD_FUN__INIT;
    mf.has_function = 1;
    mf.function = BIN("f");
    Riak__RpbCommitHook hook = RIAK__RPB_COMMIT_HOOK__INIT;
    hook.modfun = &mf;
    Riak__RpbCommitHook *hooks[] = {&hook};
    Riak__RpbBucketProps props = RIAK__RPB_BUCKET_PROPS__INIT;
    props.n_precommit = 1;
    props.precommit = hooks;
    sb.props = &props;
    expect_error(PB_SET_BUCKET_REQ, &sb.base, "Missing required field: props.precommit.modfun.module");

    Riak__RpbGetBucketTypeReq gt = RIAK__RPB_GET_BUCKET_TYPE_REQ__INIT;
    expect_error(PB_GET_BUCKET_TYPE_REQ, &gt.base, "Missing required field: type");
    gt.has_type = 1;
    gt.type = BIN("");
    expect_error(PB_GET_BUCKET_TYPE_REQ, &gt.base, "Bucket type cannot be zero-length");
    Riak__RpbSetBucketTypeReq st = RIAK__RPB_SET_BUCKET_TYPE_REQ__INIT;
    st.has_type = 1;
    st.type = BIN("t");
    expect_error(PB_SET_BUCKET_TYPE_REQ, &st.base, "Missing required field: props");

    Riak__RpbSetClientIdReq cid = RIAK__RPB_SET_CLIENT_ID_REQ__INIT;
    expect_error(PB_SET_CLIENT_ID_REQ, &cid.base, "Missing required field: client_id");
}

Test(pb_codec, error_frames_are_riak_error_responses)
{
    uint8_t buf[64];
    size_t n = pb_error_frame("overload", buf, sizeof buf);
    cr_assert_gt(n, 5);
    cr_assert_eq(buf[4], PB_ERROR_RESP);
    uint32_t declared = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    cr_assert_eq(declared + 4, n);
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, n - 5, buf + 5);
    cr_assert_not_null(e);
    cr_assert(e->has_errmsg && bin_is(e->errmsg, "overload"));
    cr_assert(e->has_errcode && e->errcode == 0, "errcode is sent (required in riak_pb)");
    riak__rpb_error_resp__free_unpacked(e, NULL);

    /* a text longer than the buffer is cut, never overflowing it */
    char longtext[300];
    memset(longtext, 'e', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    n = pb_error_frame(longtext, buf, sizeof buf);
    cr_assert_leq(n, sizeof buf);
    e = riak__rpb_error_resp__unpack(NULL, n - 5, buf + 5);
    cr_assert_not_null(e);
    cr_assert_gt(e->errmsg.len, 40);
    riak__rpb_error_resp__free_unpacked(e, NULL);
}
