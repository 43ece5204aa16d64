/*
 * fuzz_pb.c — libFuzzer target for the client-protocol frame reader and request decoder
 * (node/pb_codec.c). The first input byte picks the chunk size the rest is fed in (so frames
 * are split at many different places); every complete frame is decoded as a request. A
 * request that decodes must re-encode to a body that decodes and validates again. Nothing may
 * crash, leak or hang; the reader must end either empty/partial or with a sticky error.
 */
#include "node/pb_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_FRAME = 1 << 16 };

static void check_reencodes(const pb_request_t *req)
{
    if (!req->msg)
        return;
    size_t n = protobuf_c_message_get_packed_size(req->msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    if (protobuf_c_message_pack(req->msg, buf) != n)
        abort();
    pb_request_t again;
    char err[256];
    if (pb_decode_request(req->code, buf, n, &again, err, sizeof err) != 0)
        abort(); /* a valid request must stay valid through an encode/decode cycle */
    pb_request_free(&again);
    free(buf);
}

static void take_frames(pb_reader_t *r)
{
    pb_frame_t f;
    int rc;
    while ((rc = pb_reader_next(r, &f)) == 1) {
        if (f.len + 1 > r->max_frame)
            abort();
        pb_request_t req;
        char err[256];
        if (pb_decode_request(f.code, f.body, f.len, &req, err, sizeof err) == 0) {
            check_reencodes(&req);
            pb_request_free(&req);
        } else if (req.msg != NULL || err[0] == '\0') {
            abort(); /* a refused request carries no message and says why */
        }
    }
    if (rc != 0 && rc != PB_EFRAME_TOO_BIG && rc != PB_EFRAME_EMPTY)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    pb_reader_t r;
    pb_reader_init(&r, MAX_FRAME);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = pb_reader_feed(&r, data + off, n);
        take_frames(&r);
        if (rc != 0)
            break;
    }
    if (r.error == 0 && pb_reader_has_frame(&r))
        abort(); /* every complete frame was taken out */
    pb_reader_free(&r);
    return 0;
}
