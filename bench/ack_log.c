/*
 * ack_log.c — the acknowledged-write log: its writer, its parser and the value digest (see
 * ack_log.h for the format).
 */
#include "bench/ack_log.h"

#include "bench/bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define FLUSH_AGE_NS 1000000000ull /* a buffer older than this goes out with its next record */

struct ack_log {
    int fd;
    pthread_mutex_t lock;
    bool failed;                   /* a write failed: everything after is dropped */
    char why[256];                 /* the first failure */
};

uint64_t ack_digest(const void *value, size_t len)
{
    return XXH3_64bits(value, len);
}

int64_t ack_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ writing */

/* Writes all of p[0..n) to fd; 0 or an errno value. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ack_log_open(const char *path, const char *about, ack_log_t **out, char *err,
                 size_t errlen)
{
    ack_log_t *log = calloc(1, sizeof *log);
    if (!log) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    log->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log->fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(log);
        return -1;
    }
    pthread_mutex_init(&log->lock, NULL);
    char header[1024];
    int n = snprintf(header, sizeof header, "%s%s%s\n", ACK_LOG_MAGIC, about ? " " : "",
                     about ? about : "");
    if (n < 0 || (size_t)n >= sizeof header)
        n = snprintf(header, sizeof header, "%s\n", ACK_LOG_MAGIC);
    int e = write_all(log->fd, header, (size_t)n);
    if (e) {
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        close(log->fd);
        pthread_mutex_destroy(&log->lock);
        free(log);
        return -1;
    }
    *out = log;
    return 0;
}

static bool buf_reserve(ack_buf_t *b, size_t more)
{
    if (b->cap - b->len >= more)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return false;
    b->data = d;
    b->cap = cap;
    return true;
}

size_t ack_encode_name(const char *s, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    bool dash = len == 1 && s[0] == '-'; /* "-" alone means "no type" */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = c >= 0x21 && c <= 0x7e && c != '%' && !dash;
        if (o + (plain ? 1 : 3) >= cap)
            return SIZE_MAX;
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= cap)
        return SIZE_MAX;
    out[o] = '\0';
    return o;
}

/* Appends " " and the encoded name (or "-" for a missing type). */
static bool put_name(ack_buf_t *b, const char *s, size_t len, bool may_be_absent)
{
    if (!buf_reserve(b, 3 * len + 2))
        return false;
    b->data[b->len++] = ' ';
    if (may_be_absent && !s) {
        b->data[b->len++] = '-';
        return true;
    }
    size_t n = ack_encode_name(s, len, b->data + b->len, b->cap - b->len);
    if (n == SIZE_MAX)
        return false;
    b->len += n;
    return true;
}

bool ack_buf_flush(ack_log_t *log, ack_buf_t *buf)
{
    bool ok;
    pthread_mutex_lock(&log->lock);
    if (!log->failed && buf->len > 0) {
        int e = write_all(log->fd, buf->data, buf->len);
        if (e) {
            log->failed = true;
            snprintf(log->why, sizeof log->why, "write: %s", strerror(e));
        }
    }
    ok = !log->failed;
    pthread_mutex_unlock(&log->lock);
    buf->len = 0;
    buf->last_flush_ns = mono_ns();
    return ok;
}

bool ack_log_record(ack_log_t *log, ack_buf_t *buf, const ack_rec_t *r)
{
    size_t mark = buf->len;
    char head[64], tail[128];
    int hn = snprintf(head, sizeof head, "%s %" PRId64 " %" PRId64, r->acked ? "ok" : "fail",
                      r->t_start_ms, r->t_end_ms);
    int tn = snprintf(tail, sizeof tail, " %" PRIu64 " %016" PRIx64 "%s%s\n", r->value_len,
                      r->digest, r->acked ? "" : " ", r->acked ? "" : r->error);
    bool ok = hn > 0 && tn > 0 && (size_t)tn < sizeof tail && buf_reserve(buf, (size_t)hn);
    if (ok) {
        memcpy(buf->data + buf->len, head, (size_t)hn);
        buf->len += (size_t)hn;
        ok = put_name(buf, r->type, r->type ? r->type_len : 0, true) &&
             put_name(buf, r->bucket, r->bucket_len, false) &&
             put_name(buf, r->key, r->key_len, false) && buf_reserve(buf, (size_t)tn);
    }
    if (!ok) {
        buf->len = mark;
        pthread_mutex_lock(&log->lock);
        if (!log->failed) {
            log->failed = true;
            snprintf(log->why, sizeof log->why, "out of memory for a record");
        }
        pthread_mutex_unlock(&log->lock);
        return false;
    }
    memcpy(buf->data + buf->len, tail, (size_t)tn);
    buf->len += (size_t)tn;
    if (buf->len >= ACK_FLUSH_BYTES || mono_ns() - buf->last_flush_ns >= FLUSH_AGE_NS)
        return ack_buf_flush(log, buf);
    return true;
}

void ack_buf_free(ack_buf_t *buf)
{
    free(buf->data);
    *buf = (ack_buf_t){0};
}

int ack_log_close(ack_log_t *log, char *err, size_t errlen)
{
    if (!log)
        return 0;
    int rc = 0;
    if (log->failed) {
        snprintf(err, errlen, "%s", log->why);
        rc = -1;
    }
    if (close(log->fd) != 0 && rc == 0) {
        snprintf(err, errlen, "close: %s", strerror(errno));
        rc = -1;
    }
    pthread_mutex_destroy(&log->lock);
    free(log);
    return rc;
}

/* ------------------------------------------------------------------ parsing */

size_t ack_decode_name(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] != '%') {
            s[o++] = s[i];
            continue;
        }
        int hi = bench_hex_digit(s[i + 1]), lo = hi < 0 ? -1 : bench_hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0)
            return SIZE_MAX;
        s[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    s[o] = '\0';
    return o;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, int base, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+')
        return false;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

int ack_parse_line(char *line, ack_rec_t *out, char *err, size_t errlen)
{
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    char *f[10];
    int n = 0;
    for (char *p = line; n < 10;) {
        f[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = '\0';
        p = sp + 1;
    }
    bool acked = strcmp(f[0], "ok") == 0;
    if (!acked && strcmp(f[0], "fail") != 0) {
        snprintf(err, errlen, "a record starts with ok or fail, not '%.40s'", f[0]);
        return -1;
    }
    if (n != (acked ? 8 : 9)) {
        snprintf(err, errlen, "an '%s' record has %d fields, not %d", f[0], n, acked ? 8 : 9);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->acked = acked;
    if (!parse_i64(f[1], &out->t_start_ms) || !parse_i64(f[2], &out->t_end_ms)) {
        snprintf(err, errlen, "bad time '%.30s' or '%.30s'", f[1], f[2]);
        return -1;
    }
    if (!parse_u64(f[6], 10, &out->value_len) || strlen(f[7]) != 16 ||
        !parse_u64(f[7], 16, &out->digest)) {
        snprintf(err, errlen, "bad value length '%.30s' or digest '%.30s'", f[6], f[7]);
        return -1;
    }
    if (strcmp(f[3], "-") != 0) {
        out->type = f[3];
        out->type_len = ack_decode_name(f[3]);
    }
    out->bucket = f[4];
    out->bucket_len = ack_decode_name(f[4]);
    out->key = f[5];
    out->key_len = ack_decode_name(f[5]);
    if (out->type_len == SIZE_MAX || out->bucket_len == SIZE_MAX || out->key_len == SIZE_MAX ||
        out->bucket_len == 0 || out->key_len == 0 || (out->type && out->type_len == 0)) {
        snprintf(err, errlen, "a bad type, bucket or key (empty, or %% not followed by two hex "
                              "digits)");
        return -1;
    }
    out->error = acked ? NULL : f[8];
    return 1;
}
