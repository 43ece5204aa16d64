/*
 * cairn.c — libcairn, the C client of Cairn (public header client/cairn.h).
 *
 * Owns: the host list and failover, the blocking TCP connection (non-blocking socket driven
 * by poll() against one deadline per request), Riak PB framing (4-byte big-endian length
 * counting the code byte, the code byte, the protobuf body), the mapping of RpbErrorResp
 * texts to CAIRN_E* codes, and every call of cairn.h. Depends only on protobuf-c and libc.
 *
 * Memory: an object returned to the caller (cairn_object_t) is ONE allocation holding the
 * struct, its siblings and every byte they point to, so cairn_object_free is a single free().
 * It is built in two passes over the decoded message: the first measures, the second copies.
 */
#include "client/cairn.h"
#include "client/cairn_req.h"
#include "proto/riak.pb-c.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- protocol constants */

/* Riak PB message codes (riak_pb_messages.csv; ../shared/reference/riak-facts.md 6.2). */
enum {
    MSG_ERROR_RESP = 0,
    MSG_PING_REQ = 1,
    MSG_PING_RESP = 2,
    MSG_GET_CLIENT_ID_REQ = 3,
    MSG_GET_CLIENT_ID_RESP = 4,
    MSG_SET_CLIENT_ID_REQ = 5,
    MSG_SET_CLIENT_ID_RESP = 6,
    MSG_GET_SERVER_INFO_REQ = 7,
    MSG_GET_SERVER_INFO_RESP = 8,
    MSG_GET_REQ = 9,
    MSG_GET_RESP = 10,
    MSG_PUT_REQ = 11,
    MSG_PUT_RESP = 12,
    MSG_DEL_REQ = 13,
    MSG_DEL_RESP = 14,
    MSG_LIST_BUCKETS_REQ = 15,
    MSG_LIST_BUCKETS_RESP = 16,
    MSG_LIST_KEYS_REQ = 17,
    MSG_LIST_KEYS_RESP = 18,
    MSG_GET_BUCKET_REQ = 19,
    MSG_GET_BUCKET_RESP = 20,
    MSG_SET_BUCKET_REQ = 21,
    MSG_SET_BUCKET_RESP = 22,
    MSG_RESET_BUCKET_REQ = 29,
    MSG_RESET_BUCKET_RESP = 30,
};

#define DEFAULT_PORT "8087"
#define DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define DEFAULT_TIMEOUT_MS 60000u
#define DEFAULT_MAX_FRAME_BYTES (64u << 20)
/* When a request carries its own timeout (sent to the server), the client waits this much
 * longer, so that the server's own "timeout" answer normally arrives first. */
#define SERVER_TIMEOUT_GRACE_MS 1000u
#define FRAME_HEADER_BYTES 5u
#define ERRMSG_BYTES 1024u

/* Context of a request, for the error mapping. */
enum { CTX_PLAIN = 0, CTX_IF_NOT_MODIFIED = 1 };

typedef struct node_addr {
    char *host;       /* without brackets */
    char port[6];
    char label[300];  /* "host:port" as the user would write it */
} node_addr_t;

struct cairn {
    node_addr_t *nodes;
    size_t n_nodes;
    size_t current;   /* index of the node connected to (or last connected to) */
    int fd;           /* -1: not connected */
    uint32_t connect_timeout_ms, timeout_ms, max_frame_bytes;
    uint8_t *rbuf;    /* last frame read: code byte then body */
    size_t rcap;
    char errmsg[ERRMSG_BYTES];
};

/* The details of the last failed cairn_connect on this thread (cairn_errmsg(NULL)). */
static _Thread_local char connect_errmsg[ERRMSG_BYTES];

/* The error text of a node that refuses a request because it is stopping (node/pb_conn.c):
 * nothing was done, so the request may go to another node. */
#define SERVER_STOPPING "node is stopping"


/* ---------------------------------------------------------------- errors */

const char *cairn_strerror(int err)
{
    switch (err) {
    case CAIRN_OK: return "success";
    case CAIRN_ENOTFOUND: return "not found";
    case CAIRN_EINVAL: return "invalid argument";
    case CAIRN_ECONNECT: return "no node accepted a connection";
    case CAIRN_EIO: return "connection broken during the request (outcome unknown)";
    case CAIRN_ETIMEOUT: return "timed out";
    case CAIRN_ESERVER: return "server error";
    case CAIRN_EPROTO: return "malformed answer from the server";
    case CAIRN_ENOMEM: return "out of memory";
    case CAIRN_EOVERLOAD: return "server overloaded: retry later";
    case CAIRN_EMODIFIED: return "object was modified (or is missing) since the context was read";
    case CAIRN_EEXISTS: return "key already exists";
    case CAIRN_ETOOBIG: return "value or request too large";
    default: return "unknown error";
    }
}

static int set_err(cairn_t *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(cairn_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

const char *cairn_errmsg(const cairn_t *c)
{
    return c ? c->errmsg : connect_errmsg;
}

const char *cairn_current_node(const cairn_t *c)
{
    if (!c || c->fd < 0)
        return "";
    return c->nodes[c->current].label;
}

/* ---------------------------------------------------------------- host list */

static void free_nodes(node_addr_t *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(nodes[i].host);
    free(nodes);
}

/* Parses one "host[:port]", "[v6addr][:port]" or a bare IPv6 address (s[0..len)). */
static int parse_node(const char *s, size_t len, node_addr_t *out, char *err, size_t errlen)
{
    const char *host = s, *port = NULL;
    size_t host_len = len, port_len = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) {
            snprintf(err, errlen, "'%.*s': missing ']'", (int)len, s);
            return CAIRN_EINVAL;
        }
        host = s + 1;
        host_len = (size_t)(close - host);
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':') {
                snprintf(err, errlen, "'%.*s': expected ':' after ']'", (int)len, s);
                return CAIRN_EINVAL;
            }
            port = close + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        /* One colon separates the port; more than one is a bare IPv6 address. */
        if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
            host_len = (size_t)(colon - s);
            port = colon + 1;
            port_len = len - host_len - 1;
        }
    }
    if (host_len == 0) {
        snprintf(err, errlen, "'%.*s': empty host name", (int)len, s);
        return CAIRN_EINVAL;
    }
    unsigned long port_num = 8087;
    if (port) {
        if (port_len == 0 || port_len > 5) {
            snprintf(err, errlen, "'%.*s': bad port", (int)len, s);
            return CAIRN_EINVAL;
        }
        port_num = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9') {
                snprintf(err, errlen, "'%.*s': bad port", (int)len, s);
                return CAIRN_EINVAL;
            }
            port_num = port_num * 10 + (unsigned long)(port[i] - '0');
        }
        if (port_num == 0 || port_num > 65535) {
            snprintf(err, errlen, "'%.*s': port out of range 1-65535", (int)len, s);
            return CAIRN_EINVAL;
        }
    }
    out->host = strndup(host, host_len);
    if (!out->host) {
        snprintf(err, errlen, "out of memory");
        return CAIRN_ENOMEM;
    }
    snprintf(out->port, sizeof out->port, "%lu", port_num);
    bool v6 = memchr(host, ':', host_len) != NULL;
    snprintf(out->label, sizeof out->label, v6 ? "[%s]:%s" : "%s:%s", out->host, out->port);
    return CAIRN_OK;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Splits "a:1, b:2,[::1]:3" into nodes. *out: free with free_nodes. */
static int parse_hosts(const char *hosts, node_addr_t **out, size_t *n_out, char *err,
                       size_t errlen)
{
    size_t cap = 1;
    for (const char *p = hosts; *p; p++)
        cap += *p == ',';
    node_addr_t *nodes = calloc(cap, sizeof *nodes);
    if (!nodes) {
        snprintf(err, errlen, "out of memory");
        return CAIRN_ENOMEM;
    }
    size_t n = 0;
    const char *p = hosts;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_space(*b))
            b++;
        while (e > b && is_space(e[-1]))
            e--;
        if (b == e) {
            free_nodes(nodes, n);
            snprintf(err, errlen, "empty entry in host list '%s'", hosts);
            return CAIRN_EINVAL;
        }
        int rc = parse_node(b, (size_t)(e - b), &nodes[n], err, errlen);
        if (rc) {
            free_nodes(nodes, n);
            return rc;
        }
        n++;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = nodes;
    *n_out = n;
    return CAIRN_OK;
}

/* ---------------------------------------------------------------- sockets and deadlines */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static void drop_connection(cairn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Connects to one node within the connect timeout. Returns the socket or -1 with *why set. */
static int connect_node(const cairn_t *c, const node_addr_t *node, char *why, size_t whylen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(node->host, node->port, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "%s", gai_strerror(gai));
        return -1;
    }
    int64_t deadline = now_ms() + c->connect_timeout_ms;
    int fd = -1;
    snprintf(why, whylen, "no address");
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            snprintf(why, whylen, "socket: %s", strerror(errno));
            continue;
        }
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            err = errno;
            if (err == EINPROGRESS) {
                int w = wait_fd(fd, POLLOUT, deadline);
                if (w == 0) {
                    err = ETIMEDOUT;
                } else if (w < 0) {
                    err = errno;
                } else {
                    socklen_t len = sizeof err;
                    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                }
            }
        }
        if (err == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            break;
        }
        snprintf(why, whylen, "%s", err == ETIMEDOUT ? "connect timed out" : strerror(err));
        close(fd);
        fd = -1;
        if (now_ms() >= deadline)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

/* Tries every node once, starting at index `start`. On failure, the reasons go to `err`. */
static int connect_any(cairn_t *c, size_t start, char *err, size_t errlen)
{
    size_t used = 0;
    err[0] = '\0';
    for (size_t k = 0; k < c->n_nodes; k++) {
        size_t i = (start + k) % c->n_nodes;
        char why[256];
        int fd = connect_node(c, &c->nodes[i], why, sizeof why);
        if (fd >= 0) {
            c->fd = fd;
            c->current = i;
            err[0] = '\0';
            return CAIRN_OK;
        }
        if (used < errlen)
            used += (size_t)snprintf(err + used, errlen - used, "%s%s: %s", k ? "; " : "",
                                     c->nodes[i].label, why);
    }
    return CAIRN_ECONNECT;
}

/* Is the idle connection still usable? A peer that closed it (or sent something unasked,
 * which would desynchronise the stream) makes it unusable. */
static bool connection_alive(const cairn_t *c)
{
    /* One system call on the hot path: nothing to read (EAGAIN) is the healthy case; EOF
     * (0) or unasked bytes (> 0) or an error make the connection unusable. */
    char byte;
    ssize_t got = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

/* Makes sure there is a live connection; after a broken one, starts at the next node. */
static int ensure_connected(cairn_t *c)
{
    if (c->fd >= 0 && connection_alive(c))
        return CAIRN_OK;
    drop_connection(c);
    return connect_any(c, (c->current + 1) % c->n_nodes, c->errmsg, sizeof c->errmsg);
}

/* Sends all of buf; *sent counts the bytes that left. */
static int send_all(cairn_t *c, const uint8_t *buf, size_t len, int64_t deadline, size_t *sent)
{
    *sent = 0;
    while (*sent < len) {
        ssize_t n = send(c->fd, buf + *sent, len - *sent, MSG_NOSIGNAL);
        if (n > 0) {
            *sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(c->fd, POLLOUT, deadline);
            if (w > 0)
                continue;
            if (w == 0)
                return set_err(c, CAIRN_ETIMEOUT, "%s: sending timed out",
                               c->nodes[c->current].label);
        }
        return set_err(c, CAIRN_EIO, "%s: send: %s", c->nodes[c->current].label,
                       strerror(errno));
    }
    return CAIRN_OK;
}

static int recv_all(cairn_t *c, uint8_t *buf, size_t len, int64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(c->fd, buf + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            return set_err(c, CAIRN_EIO, "%s: connection closed by the server",
                           c->nodes[c->current].label);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, deadline);
            if (w > 0)
                continue;
            if (w == 0)
                return set_err(c, CAIRN_ETIMEOUT, "%s: no answer before the deadline",
                               c->nodes[c->current].label);
        }
        return set_err(c, CAIRN_EIO, "%s: receive: %s", c->nodes[c->current].label,
                       strerror(errno));
    }
    return CAIRN_OK;
}

/* Reads one frame into c->rbuf. On any failure the connection is dropped (the stream can no
 * longer be trusted). */
static int read_frame(cairn_t *c, int64_t deadline, uint8_t *code, const uint8_t **body,
                      size_t *body_len)
{
    uint8_t hdr[4];
    int rc = recv_all(c, hdr, sizeof hdr, deadline);
    if (rc) {
        drop_connection(c);
        return rc;
    }
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
                   hdr[3];
    if (len == 0) {
        drop_connection(c);
        return set_err(c, CAIRN_EPROTO, "%s: frame of length 0 (no message code)",
                       c->nodes[c->current].label);
    }
    if (len - 1 > c->max_frame_bytes) {
        drop_connection(c);
        return set_err(c, CAIRN_ETOOBIG, "%s: answer of %u bytes exceeds max_frame_bytes %u",
                       c->nodes[c->current].label, len - 1, c->max_frame_bytes);
    }
    if (len > c->rcap) {
        uint8_t *nb = realloc(c->rbuf, len);
        if (!nb) {
            drop_connection(c);
            return set_err(c, CAIRN_ENOMEM, "no memory for an answer of %u bytes", len);
        }
        c->rbuf = nb;
        c->rcap = len;
    }
    rc = recv_all(c, c->rbuf, len, deadline);
    if (rc) {
        drop_connection(c);
        return rc;
    }
    *code = c->rbuf[0];
    *body = c->rbuf + 1;
    *body_len = len - 1;
    return CAIRN_OK;
}

/* Decodes an RpbErrorResp body: its text goes to c->errmsg, its code is returned. */
static int server_error(cairn_t *c, const uint8_t *body, size_t len, unsigned ctx)
{
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, len, body);
    if (!e) {
        drop_connection(c);
        return set_err(c, CAIRN_EPROTO, "%s: malformed error response",
                       c->nodes[c->current].label);
    }
    size_t n = e->has_errmsg ? e->errmsg.len : 0;
    if (n >= sizeof c->errmsg)
        n = sizeof c->errmsg - 1;
    for (size_t i = 0; i < n; i++)
        c->errmsg[i] = e->errmsg.data[i] ? (char)e->errmsg.data[i] : '?';
    c->errmsg[n] = '\0';
    riak__rpb_error_resp__free_unpacked(e, NULL);
    return cairn_req_error_code(c->errmsg, (ctx & CTX_IF_NOT_MODIFIED) != 0);
}

/* Reads the answer to a request: a frame with code `want`, or an RpbErrorResp mapped to a
 * code (the connection stays up), or anything else: CAIRN_EPROTO and the connection drops. */
static int read_answer(cairn_t *c, uint8_t want, unsigned ctx, int64_t deadline,
                       const uint8_t **body, size_t *body_len)
{
    uint8_t code = 0;
    int rc = read_frame(c, deadline, &code, body, body_len);
    if (rc)
        return rc;
    if (code == want)
        return CAIRN_OK;
    if (code == MSG_ERROR_RESP)
        return server_error(c, *body, *body_len, ctx);
    drop_connection(c);
    return set_err(c, CAIRN_EPROTO, "%s: unexpected message code %u (expected %u)",
                   c->nodes[c->current].label, code, want);
}

/* The deadline of a request: its own timeout (sent to the server) plus a grace period, or the
 * connection's default. */
static int64_t deadline_for(const cairn_t *c, uint32_t request_timeout_ms)
{
    if (request_timeout_ms)
        return now_ms() + request_timeout_ms + SERVER_TIMEOUT_GRACE_MS;
    return now_ms() + c->timeout_ms;
}

/* The connection broke while a request was being sent. A server that refuses a request it
 * will not read to the end (a frame above its limit) answers with an error and closes; that
 * answer, if it arrived, explains the break better than CAIRN_EIO. Returns its code, or rc. */
static int answer_after_break(cairn_t *c, int rc)
{
    char broken[ERRMSG_BYTES];
    memcpy(broken, c->errmsg, sizeof broken);
    uint8_t code = 0;
    const uint8_t *body;
    size_t len;
    if (read_frame(c, now_ms() + 100, &code, &body, &len) == CAIRN_OK && code == MSG_ERROR_RESP)
        return server_error(c, body, len, CTX_PLAIN);
    memcpy(c->errmsg, broken, sizeof broken);
    return rc;
}

/* Frames and sends one request. A connection found broken before anything was sent is
 * replaced (next node) and the request sent there, once; a break after bytes left is
 * CAIRN_EIO (outcome unknown). */
static int send_request(cairn_t *c, uint8_t code, const ProtobufCMessage *msg, int64_t deadline)
{
    size_t body = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    if (body >= UINT32_MAX - 1)
        return set_err(c, CAIRN_ETOOBIG, "request of %zu bytes exceeds the 4 GiB frame limit",
                       body);
    uint8_t *frame = malloc(FRAME_HEADER_BYTES + body);
    if (!frame)
        return set_err(c, CAIRN_ENOMEM, "no memory for a request of %zu bytes", body);
    uint32_t len = (uint32_t)body + 1;
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    frame[4] = code;
    if (msg)
        protobuf_c_message_pack(msg, frame + FRAME_HEADER_BYTES);

    int rc = ensure_connected(c);
    for (int attempt = 0; rc == CAIRN_OK; attempt++) {
        size_t sent = 0;
        rc = send_all(c, frame, FRAME_HEADER_BYTES + body, deadline, &sent);
        if (rc == CAIRN_OK)
            break;
        size_t broken = c->current;
        if (rc == CAIRN_EIO && sent > 0)
            rc = answer_after_break(c, rc);
        drop_connection(c);
        if (rc != CAIRN_EIO || sent > 0 || attempt > 0)
            break;
        /* Nothing left: the request was never seen. Once more, on the next node. */
        rc = connect_any(c, (broken + 1) % c->n_nodes, c->errmsg, sizeof c->errmsg);
    }
    free(frame);
    return rc;
}

/* One request, one answer. On CAIRN_OK, *body and *body_len give the answer's body (valid until the
 * next call on c). */
static int call(cairn_t *c, uint8_t code, const ProtobufCMessage *req, uint8_t want,
                unsigned ctx, uint32_t request_timeout_ms, const uint8_t **body,
                size_t *body_len)
{
    int64_t deadline = deadline_for(c, request_timeout_ms);
    int rc;
    /* A node that is stopping refuses requests before doing anything ("node is stopping"):
     * such a request is sent again to each other node at most once. */
    for (size_t tries = 0;; tries++) {
        rc = send_request(c, code, req, deadline);
        if (rc)
            return rc;
        const uint8_t *b;
        size_t bl;
        rc = read_answer(c, want, ctx, deadline, body ? body : &b, body_len ? body_len : &bl);
        if (rc == CAIRN_OK || tries + 1 >= c->n_nodes || strcmp(c->errmsg, SERVER_STOPPING) != 0)
            return rc;
        size_t stopping = c->current;
        drop_connection(c);
        rc = connect_any(c, (stopping + 1) % c->n_nodes, c->errmsg, sizeof c->errmsg);
        if (rc)
            return rc;
    }
}

/* Every public call starts here: NULL handle check and a clean error message. */
#define ENTER(c)                      \
    do {                              \
        if (!(c))                     \
            return CAIRN_EINVAL;      \
        (c)->errmsg[0] = '\0';        \
    } while (0)

static int malformed(cairn_t *c, const char *what)
{
    drop_connection(c);
    return set_err(c, CAIRN_EPROTO, "%s: malformed %s", c->nodes[c->current].label, what);
}

/* ---------------------------------------------------------------- connect, close */

int cairn_connect(const char *hosts, const cairn_opts_t *opts, cairn_t **out)
{
    connect_errmsg[0] = '\0';
    if (!out)
        return CAIRN_EINVAL;
    *out = NULL;
    if (!hosts || !*hosts) {
        snprintf(connect_errmsg, sizeof connect_errmsg, "empty host list");
        return CAIRN_EINVAL;
    }
    cairn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(connect_errmsg, sizeof connect_errmsg, "out of memory");
        return CAIRN_ENOMEM;
    }
    c->fd = -1;
    c->connect_timeout_ms = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                              : DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_frame_bytes = opts && opts->max_frame_bytes ? opts->max_frame_bytes
                                                        : DEFAULT_MAX_FRAME_BYTES;
    int rc = parse_hosts(hosts, &c->nodes, &c->n_nodes, connect_errmsg, sizeof connect_errmsg);
    if (rc == CAIRN_OK)
        rc = connect_any(c, 0, connect_errmsg, sizeof connect_errmsg);
    if (rc) {
        cairn_close(c);
        return rc;
    }
    *out = c;
    return CAIRN_OK;
}

void cairn_close(cairn_t *c)
{
    if (!c)
        return;
    drop_connection(c);
    free_nodes(c->nodes, c->n_nodes);
    free(c->rbuf);
    free(c);
}

void cairn_free(void *p)
{
    free(p);
}

/* ---------------------------------------------------------------- objects */

/* Bump allocator over one block; with base == NULL it only measures. */
typedef struct arena {
    char *base;
    size_t used;
} arena_t;

static void *arena_take(arena_t *a, size_t n, size_t align)
{
    size_t off = (a->used + align - 1) & ~(align - 1);
    a->used = off + n;
    return a->base ? a->base + off : NULL;
}

/* A copy of d, followed by a NUL byte that len does not count. */
static cairn_buf_t arena_bytes(arena_t *a, ProtobufCBinaryData d)
{
    char *p = arena_take(a, d.len + 1, 1);
    if (p) {
        if (d.len)
            memcpy(p, d.data, d.len);
        p[d.len] = '\0';
    }
    return (cairn_buf_t){p, d.len};
}

static const char *arena_str(arena_t *a, protobuf_c_boolean has, ProtobufCBinaryData d)
{
    return has ? arena_bytes(a, d).data : NULL;
}

static const cairn_pair_t *arena_pairs(arena_t *a, Riak__RpbPair **pairs, size_t n)
{
    if (n == 0)
        return NULL;
    cairn_pair_t *out = arena_take(a, n * sizeof *out, alignof(cairn_pair_t));
    for (size_t i = 0; i < n; i++) {
        static const ProtobufCBinaryData none = {0, NULL};
        cairn_buf_t k = arena_bytes(a, pairs[i]->has_key ? pairs[i]->key : none);
        cairn_buf_t v = arena_bytes(a, pairs[i]->has_value ? pairs[i]->value : none);
        if (out)
            out[i] = (cairn_pair_t){k, v};
    }
    return out;
}

static void arena_content(arena_t *a, cairn_content_t *out, const Riak__RpbContent *in)
{
    static const ProtobufCBinaryData none = {0, NULL};
    cairn_content_t s = {0};
    s.value = arena_bytes(a, in->has_value ? in->value : none);
    s.content_type = arena_str(a, in->has_content_type, in->content_type);
    s.charset = arena_str(a, in->has_charset, in->charset);
    s.content_encoding = arena_str(a, in->has_content_encoding, in->content_encoding);
    s.vtag = arena_str(a, in->has_vtag, in->vtag);
    s.last_mod = in->has_last_mod ? in->last_mod : 0;
    s.last_mod_usecs = in->has_last_mod_usecs ? in->last_mod_usecs : 0;
    s.deleted = in->has_deleted && in->deleted;
    s.usermeta = arena_pairs(a, in->usermeta, in->n_usermeta);
    s.n_usermeta = in->n_usermeta;
    s.indexes = arena_pairs(a, in->indexes, in->n_indexes);
    s.n_indexes = in->n_indexes;
    if (out)
        *out = s;
}

typedef struct object_src {
    Riak__RpbContent **content;
    size_t n_content;
    const ProtobufCBinaryData *context; /* NULL: none */
    const ProtobufCBinaryData *key;     /* NULL: none */
    bool unchanged;
} object_src_t;

static cairn_object_t *arena_object(arena_t *a, const object_src_t *src)
{
    cairn_object_t *o = arena_take(a, sizeof *o, alignof(cairn_object_t));
    cairn_content_t *sibs = src->n_content
        ? arena_take(a, src->n_content * sizeof *sibs, alignof(cairn_content_t))
        : NULL;
    for (size_t i = 0; i < src->n_content; i++)
        arena_content(a, sibs ? &sibs[i] : NULL, src->content[i]);
    cairn_buf_t context = {NULL, 0}, key = {NULL, 0};
    if (src->context)
        context = arena_bytes(a, *src->context);
    if (src->key)
        key = arena_bytes(a, *src->key);
    if (o)
        *o = (cairn_object_t){.siblings = sibs, .n_siblings = src->n_content,
                              .context = context, .key = key, .unchanged = src->unchanged};
    return o;
}

/* The object as one allocation (free with cairn_object_free), or NULL without memory. */
static cairn_object_t *object_new(const object_src_t *src)
{
    arena_t measure = {NULL, 0};
    arena_object(&measure, src);
    arena_t fill = {malloc(measure.used), 0};
    if (!fill.base)
        return NULL;
    return arena_object(&fill, src);
}

void cairn_object_free(cairn_object_t *o)
{
    free(o);
}

/* ---------------------------------------------------------------- request helpers */

static bool buf_ok(cairn_buf_t b)
{
    return b.len == 0 || b.data != NULL;
}

static int check_bucket(cairn_t *c, cairn_buf_t bucket)
{
    if (bucket.len == 0 || !bucket.data)
        return set_err(c, CAIRN_EINVAL, "bucket cannot be empty");
    return CAIRN_OK;
}

static int check_bucket_key(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key)
{
    int rc = check_bucket(c, bucket);
    if (rc == CAIRN_OK && (key.len == 0 || !key.data))
        rc = set_err(c, CAIRN_EINVAL, "key cannot be empty");
    return rc;
}

/* ---------------------------------------------------------------- get, put, delete */

int cairn_get(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, const cairn_get_opts_t *o,
              cairn_object_t **out)
{
    ENTER(c);
    if (!out)
        return set_err(c, CAIRN_EINVAL, "out is NULL");
    *out = NULL;
    int rc = check_bucket_key(c, bucket, key);
    if (rc)
        return rc;
    static const cairn_get_opts_t defaults;
    if (!o)
        o = &defaults;
    if (!buf_ok(o->if_modified))
        return set_err(c, CAIRN_EINVAL, "if_modified has a length but no data");

    Riak__RpbGetReq req = RIAK__RPB_GET_REQ__INIT;
    cairn_req_get(&req, bucket, key, o);

    const uint8_t *body;
    size_t len;
    rc = call(c, MSG_GET_REQ, &req.base, MSG_GET_RESP, CTX_PLAIN, o->timeout_ms, &body, &len);
    if (rc)
        return rc;
    Riak__RpbGetResp *resp = riak__rpb_get_resp__unpack(NULL, len, body);
    if (!resp)
        return malformed(c, "get response");

    bool unchanged = resp->has_unchanged && resp->unchanged;
    bool found = cairn_req_get_found(resp);
    /* Not found; with deletedvclock, a tombstone still gives its context. */
    bool want_object = found || (o->deletedvclock && (resp->has_vclock || resp->n_content));
    rc = found ? CAIRN_OK : CAIRN_ENOTFOUND;
    if (want_object) {
        object_src_t src = {resp->content, resp->n_content,
                            resp->has_vclock ? &resp->vclock : NULL, NULL, unchanged};
        *out = object_new(&src);
        if (!*out)
            rc = set_err(c, CAIRN_ENOMEM, "no memory for the object");
    }
    riak__rpb_get_resp__free_unpacked(resp, NULL);
    return rc;
}

/* RpbPair array views of cairn pairs (the bytes stay the caller's). One allocation; free
 * the returned pointer array. */
static Riak__RpbPair **pairs_view(const cairn_pair_t *pairs, size_t n)
{
    if (n == 0)
        return NULL;
    void *mem = calloc(n, sizeof(Riak__RpbPair *) + sizeof(Riak__RpbPair));
    if (!mem)
        return NULL;
    Riak__RpbPair **ptrs = mem;
    Riak__RpbPair *items = (Riak__RpbPair *)(ptrs + n);
    for (size_t i = 0; i < n; i++) {
        Riak__RpbPair p = RIAK__RPB_PAIR__INIT;
        p.has_key = 1;
        p.key = cairn_req_bin(pairs[i].key);
        p.has_value = 1;
        p.value = cairn_req_bin(pairs[i].value);
        items[i] = p;
        ptrs[i] = &items[i];
    }
    return ptrs;
}

static bool pairs_ok(const cairn_pair_t *pairs, size_t n)
{
    if (n && !pairs)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!buf_ok(pairs[i].key) || !buf_ok(pairs[i].value) || pairs[i].key.len == 0)
            return false;
    return true;
}

int cairn_put(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, cairn_buf_t value,
              const cairn_put_opts_t *o, cairn_object_t **out)
{
    ENTER(c);
    if (out)
        *out = NULL;
    int rc = check_bucket(c, bucket);
    if (rc)
        return rc;
    static const cairn_put_opts_t defaults;
    if (!o)
        o = &defaults;
    if (!buf_ok(key) || !buf_ok(value) || !buf_ok(o->context))
        return set_err(c, CAIRN_EINVAL, "a buffer has a length but no data");
    if (!pairs_ok(o->usermeta, o->n_usermeta) || !pairs_ok(o->indexes, o->n_indexes))
        return set_err(c, CAIRN_EINVAL, "bad usermeta or index pair (empty key or NULL data)");

    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    Riak__RpbPutReq req = RIAK__RPB_PUT_REQ__INIT;
    cairn_req_put(&req, &content, bucket, key, value, o);
    Riak__RpbPair **usermeta = pairs_view(o->usermeta, o->n_usermeta);
    Riak__RpbPair **indexes = pairs_view(o->indexes, o->n_indexes);
    if ((o->n_usermeta && !usermeta) || (o->n_indexes && !indexes)) {
        free(usermeta);
        free(indexes);
        return set_err(c, CAIRN_ENOMEM, "no memory for metadata");
    }
    content.n_usermeta = o->n_usermeta;
    content.usermeta = usermeta;
    content.n_indexes = o->n_indexes;
    content.indexes = indexes;

    const uint8_t *body;
    size_t len;
    rc = call(c, MSG_PUT_REQ, &req.base, MSG_PUT_RESP,
              o->if_not_modified ? CTX_IF_NOT_MODIFIED : CTX_PLAIN, o->timeout_ms, &body, &len);
    free(usermeta);
    free(indexes);
    if (rc || !out)
        return rc;
    Riak__RpbPutResp *resp = riak__rpb_put_resp__unpack(NULL, len, body);
    if (!resp)
        return malformed(c, "put response");
    object_src_t src = {resp->content, resp->n_content, resp->has_vclock ? &resp->vclock : NULL,
                        resp->has_key ? &resp->key : NULL, false};
    *out = object_new(&src);
    riak__rpb_put_resp__free_unpacked(resp, NULL);
    if (!*out)
        return set_err(c, CAIRN_ENOMEM, "no memory for the object");
    return CAIRN_OK;
}

int cairn_delete(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, const cairn_del_opts_t *o)
{
    ENTER(c);
    int rc = check_bucket_key(c, bucket, key);
    if (rc)
        return rc;
    static const cairn_del_opts_t defaults;
    if (!o)
        o = &defaults;
    if (!buf_ok(o->context))
        return set_err(c, CAIRN_EINVAL, "context has a length but no data");
    Riak__RpbDelReq req = RIAK__RPB_DEL_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = cairn_req_bin(bucket);
    req.has_key = 1;
    req.key = cairn_req_bin(key);
    if (o->context.len) {
        req.has_vclock = 1;
        req.vclock = cairn_req_bin(o->context);
    }
    CAIRN_REQ_SET_TYPE(req, o->type);
    CAIRN_REQ_SET_U32(req, rw, o->rw);
    CAIRN_REQ_SET_U32(req, r, o->r);
    CAIRN_REQ_SET_U32(req, w, o->w);
    CAIRN_REQ_SET_U32(req, pr, o->pr);
    CAIRN_REQ_SET_U32(req, pw, o->pw);
    CAIRN_REQ_SET_U32(req, dw, o->dw);
    CAIRN_REQ_SET_U32(req, n_val, o->n_val);
    CAIRN_REQ_SET_TRI(req, sloppy_quorum, o->sloppy_quorum);
    CAIRN_REQ_SET_U32(req, timeout, o->timeout_ms);
    return call(c, MSG_DEL_REQ, &req.base, MSG_DEL_RESP, CTX_PLAIN, o->timeout_ms, NULL, NULL);
}

/* ---------------------------------------------------------------- listing */

/* Reads a listing stream until done=true. cb's non-zero return stops the callbacks, not the
 * reading (the stream must be drained to keep the connection usable). */
static int read_listing(cairn_t *c, bool keys, uint32_t timeout_ms, cairn_name_cb cb, void *arg)
{
    uint8_t want = keys ? MSG_LIST_KEYS_RESP : MSG_LIST_BUCKETS_RESP;
    int64_t deadline = deadline_for(c, timeout_ms);
    bool stopped = false;
    for (;;) {
        const uint8_t *body;
        size_t len;
        int rc = read_answer(c, want, CTX_PLAIN, deadline, &body, &len);
        if (rc)
            return rc;
        size_t n;
        ProtobufCBinaryData *names;
        bool done;
        Riak__RpbListKeysResp *kr = NULL;
        Riak__RpbListBucketsResp *br = NULL;
        if (keys) {
            kr = riak__rpb_list_keys_resp__unpack(NULL, len, body);
            if (!kr)
                return malformed(c, "list keys response");
            n = kr->n_keys, names = kr->keys, done = kr->has_done && kr->done;
        } else {
            br = riak__rpb_list_buckets_resp__unpack(NULL, len, body);
            if (!br)
                return malformed(c, "list buckets response");
            n = br->n_buckets, names = br->buckets, done = br->has_done && br->done;
        }
        for (size_t i = 0; i < n && !stopped; i++)
            stopped = cb(arg, (cairn_buf_t){names[i].data, names[i].len}) != 0;
        if (kr)
            riak__rpb_list_keys_resp__free_unpacked(kr, NULL);
        if (br)
            riak__rpb_list_buckets_resp__free_unpacked(br, NULL);
        if (done)
            return CAIRN_OK;
        /* Without a request timeout, the deadline is per message: a long listing that keeps
         * streaming is not cut off. */
        if (!timeout_ms)
            deadline = deadline_for(c, 0);
    }
}

int cairn_list_keys(cairn_t *c, const char *type, cairn_buf_t bucket, uint32_t timeout_ms,
                    cairn_name_cb cb, void *arg)
{
    ENTER(c);
    int rc = check_bucket(c, bucket);
    if (rc)
        return rc;
    if (!cb)
        return set_err(c, CAIRN_EINVAL, "callback is NULL");
    Riak__RpbListKeysReq req = RIAK__RPB_LIST_KEYS_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = cairn_req_bin(bucket);
    CAIRN_REQ_SET_TYPE(req, type);
    CAIRN_REQ_SET_U32(req, timeout, timeout_ms);
    rc = send_request(c, MSG_LIST_KEYS_REQ, &req.base, deadline_for(c, timeout_ms));
    return rc ? rc : read_listing(c, true, timeout_ms, cb, arg);
}

int cairn_list_buckets(cairn_t *c, const char *type, uint32_t timeout_ms, cairn_name_cb cb,
                       void *arg)
{
    ENTER(c);
    if (!cb)
        return set_err(c, CAIRN_EINVAL, "callback is NULL");
    Riak__RpbListBucketsReq req = RIAK__RPB_LIST_BUCKETS_REQ__INIT;
    req.has_stream = 1;
    req.stream = 1;
    CAIRN_REQ_SET_TYPE(req, type);
    CAIRN_REQ_SET_U32(req, timeout, timeout_ms);
    int rc = send_request(c, MSG_LIST_BUCKETS_REQ, &req.base, deadline_for(c, timeout_ms));
    return rc ? rc : read_listing(c, false, timeout_ms, cb, arg);
}

/* ---------------------------------------------------------------- bucket properties */

/* One row per property: its bit, and where it lives in both structs. */
#define PROP_U32(bit, field)                                                     \
    {bit, offsetof(cairn_bucket_props_t, field), offsetof(Riak__RpbBucketProps, field), \
     offsetof(Riak__RpbBucketProps, has_##field), false}
#define PROP_BOOL(bit, field)                                                    \
    {bit, offsetof(cairn_bucket_props_t, field), offsetof(Riak__RpbBucketProps, field), \
     offsetof(Riak__RpbBucketProps, has_##field), true}

static const struct prop_map {
    uint32_t bit;
    size_t ours, theirs, has;
    bool is_bool;
} prop_map[] = {
    PROP_U32(CAIRN_PROP_N_VAL, n_val),
    PROP_BOOL(CAIRN_PROP_ALLOW_MULT, allow_mult),
    PROP_BOOL(CAIRN_PROP_LAST_WRITE_WINS, last_write_wins),
    PROP_U32(CAIRN_PROP_R, r),
    PROP_U32(CAIRN_PROP_W, w),
    PROP_U32(CAIRN_PROP_PR, pr),
    PROP_U32(CAIRN_PROP_PW, pw),
    PROP_U32(CAIRN_PROP_DW, dw),
    PROP_U32(CAIRN_PROP_RW, rw),
    PROP_BOOL(CAIRN_PROP_NOTFOUND_OK, notfound_ok),
    PROP_BOOL(CAIRN_PROP_BASIC_QUORUM, basic_quorum),
    PROP_U32(CAIRN_PROP_SMALL_VCLOCK, small_vclock),
    PROP_U32(CAIRN_PROP_BIG_VCLOCK, big_vclock),
    PROP_U32(CAIRN_PROP_YOUNG_VCLOCK, young_vclock),
    PROP_U32(CAIRN_PROP_OLD_VCLOCK, old_vclock),
};

static void props_from_pb(const Riak__RpbBucketProps *pb, cairn_bucket_props_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof prop_map / sizeof prop_map[0]; i++) {
        const struct prop_map *m = &prop_map[i];
        const char *src = (const char *)pb;
        char *dst = (char *)out;
        if (!*(const protobuf_c_boolean *)(src + m->has))
            continue;
        out->fields |= m->bit;
        if (m->is_bool)
            *(bool *)(dst + m->ours) = *(const protobuf_c_boolean *)(src + m->theirs) != 0;
        else
            *(uint32_t *)(dst + m->ours) = *(const uint32_t *)(src + m->theirs);
    }
}

static void props_to_pb(const cairn_bucket_props_t *in, Riak__RpbBucketProps *pb)
{
    for (size_t i = 0; i < sizeof prop_map / sizeof prop_map[0]; i++) {
        const struct prop_map *m = &prop_map[i];
        const char *src = (const char *)in;
        char *dst = (char *)pb;
        if (!(in->fields & m->bit))
            continue;
        *(protobuf_c_boolean *)(dst + m->has) = 1;
        if (m->is_bool)
            *(protobuf_c_boolean *)(dst + m->theirs) = *(const bool *)(src + m->ours);
        else
            *(uint32_t *)(dst + m->theirs) = *(const uint32_t *)(src + m->ours);
    }
}

int cairn_bucket_get(cairn_t *c, const char *type, cairn_buf_t bucket, cairn_bucket_props_t *out)
{
    ENTER(c);
    int rc = check_bucket(c, bucket);
    if (rc)
        return rc;
    if (!out)
        return set_err(c, CAIRN_EINVAL, "out is NULL");
    Riak__RpbGetBucketReq req = RIAK__RPB_GET_BUCKET_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = cairn_req_bin(bucket);
    CAIRN_REQ_SET_TYPE(req, type);
    const uint8_t *body;
    size_t len;
    rc = call(c, MSG_GET_BUCKET_REQ, &req.base, MSG_GET_BUCKET_RESP, CTX_PLAIN, 0, &body, &len);
    if (rc)
        return rc;
    Riak__RpbGetBucketResp *resp = riak__rpb_get_bucket_resp__unpack(NULL, len, body);
    if (!resp || !resp->props) {
        if (resp)
            riak__rpb_get_bucket_resp__free_unpacked(resp, NULL);
        return malformed(c, "bucket properties response");
    }
    props_from_pb(resp->props, out);
    riak__rpb_get_bucket_resp__free_unpacked(resp, NULL);
    return CAIRN_OK;
}

int cairn_bucket_set(cairn_t *c, const char *type, cairn_buf_t bucket,
                     const cairn_bucket_props_t *props)
{
    ENTER(c);
    int rc = check_bucket(c, bucket);
    if (rc)
        return rc;
    if (!props || props->fields == 0)
        return set_err(c, CAIRN_EINVAL, "no property to set (props->fields is 0)");
    Riak__RpbBucketProps pb = RIAK__RPB_BUCKET_PROPS__INIT;
    props_to_pb(props, &pb);
    Riak__RpbSetBucketReq req = RIAK__RPB_SET_BUCKET_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = cairn_req_bin(bucket);
    req.props = &pb;
    CAIRN_REQ_SET_TYPE(req, type);
    return call(c, MSG_SET_BUCKET_REQ, &req.base, MSG_SET_BUCKET_RESP, CTX_PLAIN, 0, NULL, NULL);
}

int cairn_bucket_reset(cairn_t *c, const char *type, cairn_buf_t bucket)
{
    ENTER(c);
    int rc = check_bucket(c, bucket);
    if (rc)
        return rc;
    Riak__RpbResetBucketReq req = RIAK__RPB_RESET_BUCKET_REQ__INIT;
    req.has_bucket = 1;
    req.bucket = cairn_req_bin(bucket);
    CAIRN_REQ_SET_TYPE(req, type);
    return call(c, MSG_RESET_BUCKET_REQ, &req.base, MSG_RESET_BUCKET_RESP, CTX_PLAIN, 0, NULL,
                NULL);
}

/* ---------------------------------------------------------------- node */

int cairn_ping(cairn_t *c)
{
    ENTER(c);
    return call(c, MSG_PING_REQ, NULL, MSG_PING_RESP, CTX_PLAIN, 0, NULL, NULL);
}

/* Copies d into dst (NUL-terminated, truncated); dst may be NULL when cap is 0. */
static void copy_out(char *dst, size_t cap, protobuf_c_boolean has, ProtobufCBinaryData d)
{
    if (!dst || cap == 0)
        return;
    size_t n = has ? d.len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, d.data, n);
    dst[n] = '\0';
}

int cairn_server_info(cairn_t *c, char *node, size_t node_len, char *version,
                      size_t version_len)
{
    ENTER(c);
    if ((!node && node_len) || (!version && version_len))
        return set_err(c, CAIRN_EINVAL, "NULL buffer with a non-zero length");
    const uint8_t *body;
    size_t len;
    int rc = call(c, MSG_GET_SERVER_INFO_REQ, NULL, MSG_GET_SERVER_INFO_RESP, CTX_PLAIN, 0, &body,
                  &len);
    if (rc)
        return rc;
    Riak__RpbGetServerInfoResp *resp = riak__rpb_get_server_info_resp__unpack(NULL, len, body);
    if (!resp)
        return malformed(c, "server info response");
    copy_out(node, node_len, resp->has_node, resp->node);
    copy_out(version, version_len, resp->has_server_version, resp->server_version);
    riak__rpb_get_server_info_resp__free_unpacked(resp, NULL);
    return CAIRN_OK;
}

int cairn_get_client_id(cairn_t *c, cairn_buf_t *out)
{
    ENTER(c);
    if (!out)
        return set_err(c, CAIRN_EINVAL, "out is NULL");
    *out = (cairn_buf_t){NULL, 0};
    const uint8_t *body;
    size_t len;
    int rc = call(c, MSG_GET_CLIENT_ID_REQ, NULL, MSG_GET_CLIENT_ID_RESP, CTX_PLAIN, 0, &body,
                  &len);
    if (rc)
        return rc;
    Riak__RpbGetClientIdResp *resp = riak__rpb_get_client_id_resp__unpack(NULL, len, body);
    if (!resp)
        return malformed(c, "client id response");
    size_t n = resp->has_client_id ? resp->client_id.len : 0;
    uint8_t *copy = malloc(n ? n : 1);
    if (copy && n)
        memcpy(copy, resp->client_id.data, n);
    riak__rpb_get_client_id_resp__free_unpacked(resp, NULL);
    if (!copy)
        return set_err(c, CAIRN_ENOMEM, "no memory for the client id");
    *out = (cairn_buf_t){copy, n};
    return CAIRN_OK;
}

int cairn_set_client_id(cairn_t *c, cairn_buf_t id)
{
    ENTER(c);
    if (!buf_ok(id))
        return set_err(c, CAIRN_EINVAL, "client id has a length but no data");
    Riak__RpbSetClientIdReq req = RIAK__RPB_SET_CLIENT_ID_REQ__INIT;
    req.has_client_id = 1;
    req.client_id = cairn_req_bin(id);
    return call(c, MSG_SET_CLIENT_ID_REQ, &req.base, MSG_SET_CLIENT_ID_RESP, CTX_PLAIN, 0, NULL,
                NULL);
}
