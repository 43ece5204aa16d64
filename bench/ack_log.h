/*
 * ack_log.h — the acknowledged-write log (prefix ack_): what cairn-bench writes with
 * --ack-log and cairn-check reads back to verify, after a cluster change, that every write
 * the cluster acknowledged is still there.
 *
 * It owns the file format, its writer (shared by the load threads, each with its own
 * buffer) and its line parser, and the value digest both sides compute. The format is text,
 * one record per line, fields separated by one space:
 *
 *   # comment (the writer puts one header line first: "# cairn-ack-log 1 ...")
 *   ok   T_START T_END TYPE BUCKET KEY LEN DIGEST
 *   fail T_START T_END TYPE BUCKET KEY LEN DIGEST ERROR
 *
 *   ok        the server acknowledged the put (RpbPutResp);
 *   fail      the put ended with ERROR (a libcairn code name: timeout, eio, server, ...): its
 *             outcome is unknown, it may or may not have been applied on some replicas;
 *   T_START, T_END  wall-clock (CLOCK_REALTIME) milliseconds since the epoch when the put
 *             was started and when its answer (or failure) came;
 *   TYPE      the bucket type, or "-" when none was sent (the default type);
 *   TYPE, BUCKET, KEY  percent-encoded: every byte outside 0x21..0x7e, and '%', as %XX
 *             (upper-case hex); a type that is literally "-" is written %2D;
 *   LEN       the value's length in bytes;
 *   DIGEST    XXH3-64 of the value's bytes, 16 lower-case hex digits (ack_digest).
 *
 * Threads: one ack_log_t is shared; each thread appends to its own ack_buf_t, which goes to
 * the file (under the log's mutex, with write(2), so the bytes reach the kernel and survive
 * the process being killed) when it holds more than ACK_FLUSH_BYTES, when it was last
 * flushed more than a second ago, and at ack_buf_flush. A record is never split between two
 * writes. Memory: the log and the buffers own their allocations (ack_log_close,
 * ack_buf_free); records passed in are borrowed for the call.
 */
#ifndef CAIRN_BENCH_ACK_LOG_H
#define CAIRN_BENCH_ACK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACK_LOG_MAGIC "# cairn-ack-log 1"
#define ACK_FLUSH_BYTES 16384u

/* One put as logged. The byte strings are borrowed (writer) or point into the parsed line
 * (reader, decoded in place: not NUL-terminated where they contain NUL bytes; use the
 * lengths). type == NULL means no type was sent. */
typedef struct ack_rec {
    bool acked;                    /* "ok"; false: "fail" */
    int64_t t_start_ms, t_end_ms;
    const char *type;
    size_t type_len;
    const char *bucket;
    size_t bucket_len;
    const char *key;
    size_t key_len;
    uint64_t value_len;
    uint64_t digest;
    const char *error;             /* "fail" only: the error's name; NULL for "ok" */
} ack_rec_t;

typedef struct ack_log ack_log_t;

/* A thread's pending lines. Zero-initialised is empty and valid. */
typedef struct ack_buf {
    char *data;
    size_t len, cap;
    uint64_t last_flush_ns;        /* CLOCK_MONOTONIC */
} ack_buf_t;

/* The digest of a value (XXH3-64 of its bytes). */
uint64_t ack_digest(const void *value, size_t len);
/* Wall-clock milliseconds since the epoch. */
int64_t ack_now_ms(void);

/* Creates (truncates) path and writes the header line: ACK_LOG_MAGIC, then `about` (one line
 * of text, may be NULL). 0 with *out, or -1 with the reason in err. */
int ack_log_open(const char *path, const char *about, ack_log_t **out, char *err,
                 size_t errlen);
/* Appends r to buf, and writes buf to the file when it is due (see the top). false once a
 * write to the file has failed (the first failure's reason is kept for ack_log_close); the
 * record is dropped then. */
bool ack_log_record(ack_log_t *log, ack_buf_t *buf, const ack_rec_t *r);
/* Writes whatever buf holds. false as ack_log_record. */
bool ack_buf_flush(ack_log_t *log, ack_buf_t *buf);
void ack_buf_free(ack_buf_t *buf);
/* Closes the file and frees log (NULL is fine). 0, or -1 with the reason of the first
 * failed write or of the close in err: the log is incomplete then. */
int ack_log_close(ack_log_t *log, char *err, size_t errlen);

/* Parses one line (without its newline), decoding the names in place. 1 with *out filled,
 * 0 for a comment or an empty line, -1 with the reason in err for anything else. The
 * pointers in *out point into line. */
int ack_parse_line(char *line, ack_rec_t *out, char *err, size_t errlen);

/* Percent-encodes s[0..len) as the format does into out (cap bytes, NUL-terminated, at most
 * 3 * len + 1 needed); returns the encoded length, or SIZE_MAX when cap is too small. */
size_t ack_encode_name(const char *s, size_t len, char *out, size_t cap);
/* Decodes the percent-encoded, NUL-terminated name s in place (the result is NUL-terminated
 * too); its decoded length, or SIZE_MAX when a '%' is not followed by two hex digits. */
size_t ack_decode_name(char *s);

#endif
