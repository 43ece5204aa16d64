/*
 * dist_link.c — node link connections, on the loop thread: listen/accept/connect, the
 * cookie handshake, frame parsing, heartbeats and the write path.
 *
 * Handshake (mutual HMAC-SHA256 on the cookie; the acceptor refuses a wrong cookie first):
 *   connector -> HELLO{name, creation, Cc}
 *   acceptor  -> HELLO{name, creation, Ca}
 *   connector -> AUTH{digest = HMAC(cookie, Ca || "C")}     acceptor checks, else refuses
 *   acceptor  -> ACK{digest = HMAC(cookie, Cc || "A")}      connector checks, else drops
 * Writes: a sender thread appends frames to the node's buffer and writes them with a
 * non-blocking send(2) at the end of its turn. If the socket is full, the loop thread takes
 * over (uv_write) until its queue drains; senders only buffer meanwhile, so frames stay in
 * order. Reads: uv_read into a per-connection buffer, split into length-prefixed frames.
 */
#include "runtime/dist_internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <uv.h>

#define CHALLENGE_LEN 32
#define DIST_VERSION 1

enum { HS_CONNECTING, HS_WAIT_HELLO, HS_WAIT_AUTH, HS_WAIT_ACK, HS_UP };

struct dist_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;       /* handshake deadline, then heartbeats */
    uv_connect_t creq;
    rt_node_t *node;        /* NULL on an accepted link until its HELLO names it */
    bool outgoing;
    bool closing;
    int handles_open;
    int hs;
    uint8_t my_challenge[CHALLENGE_LEN];
    uint8_t peer_challenge[CHALLENGE_LEN];
    char *ibuf;
    size_t ilen, icap;
    uint64_t last_recv_ns;
    char peer[300];         /* address, for logs */
};

static uv_tcp_t listener;
static bool listening;

/* Every live connection, so that stop can close them all. Loop thread only. */
static dist_conn_t **conns;
static size_t nconns, cconns;

static void conns_add(dist_conn_t *c)
{
    if (nconns == cconns) {
        cconns = cconns ? cconns * 2 : 16;
        conns = rt__xrealloc(conns, cconns * sizeof *conns);
    }
    conns[nconns++] = c;
}

static void conns_del(dist_conn_t *c)
{
    for (size_t i = 0; i < nconns; i++)
        if (conns[i] == c) {
            conns[i] = conns[--nconns];
            return;
        }
}

/* ------------------------------------------------------------------ names */

bool rt__node_name_valid(const char *name, char *host, size_t hostlen, int *port)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    const char *at = strchr(name, '@');
    const char *colon = strrchr(name, ':');
    if (len == 0 || len >= 256 || !at || at == name || !colon || colon < at + 2 || !colon[1])
        return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return false;
    if (host) {
        size_t hl = (size_t)(colon - at - 1);
        if (hl >= hostlen)
            return false;
        memcpy(host, at + 1, hl);
        host[hl] = 0;
    }
    if (port)
        *port = (int)p;
    return true;
}

/* ------------------------------------------------------------------ crypto */

static void digest(const uint8_t *challenge, char role, uint8_t out[32])
{
    uint8_t data[CHALLENGE_LEN + 1];
    memcpy(data, challenge, CHALLENGE_LEN);
    data[CHALLENGE_LEN] = (uint8_t)role;
    unsigned int olen = 32;
    HMAC(EVP_sha256(), rt__dist.cookie, (int)strlen(rt__dist.cookie), data, sizeof data, out, &olen);
}

static bool digest_ok(const uint8_t *challenge, char role, const ProtobufCBinaryData *got)
{
    uint8_t want[32];
    digest(challenge, role, want);
    return got->len == 32 && CRYPTO_memcmp(want, got->data, 32) == 0;
}

/* ------------------------------------------------------------------ buffers */

static void buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    *buf = rt__xrealloc(*buf, ncap);
    *cap = ncap;
}

typedef struct append_ctx {
    ProtobufCBuffer base;
    rt_node_t *n;
} append_ctx_t;

static void append_cb(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    rt_node_t *n = ((append_ctx_t *)b)->n;
    memcpy(n->obuf + n->olen, data, len);
    n->olen += len;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Writes what it can now (mx held). Partial or EAGAIN: the loop thread takes over. */
static void loop_flush(void *arg);
static void flush_locked(rt_node_t *n)
{
    if (n->olen == 0 || n->loop_writing || atomic_load(&n->state) != NODE_UP || n->fd < 0)
        return;
    size_t off = 0;
    while (off < n->olen) {
        ssize_t w = send(n->fd, n->obuf + off, n->olen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            /* the read side sees the failure and takes the node down; drop what is queued */
            n->olen = 0;
            return;
        }
        break;
    }
    if (off < n->olen) {
        memmove(n->obuf, n->obuf + off, n->olen - off);
        n->olen -= off;
        n->loop_writing = true;
        rt__loop_call(loop_flush, n);
    } else {
        n->olen = 0;
    }
    atomic_store_explicit(&n->last_sent_ns, rt_now_ns(), memory_order_relaxed);
}

void rt__link_flush(rt_node_t *n)
{
    pthread_mutex_lock(&n->mx);
    flush_locked(n);
    pthread_mutex_unlock(&n->mx);
}

int rt__link_append(rt_node_t *n, Cairn__Rt__DistFrame *f, const ProtobufCMessage *pb,
                    const void *raw, size_t rawlen, bool flush_now)
{
    size_t plen = pb ? protobuf_c_message_get_packed_size(pb) : rawlen;
    bool has_payload = pb || rawlen > 0;
    size_t flen = cairn__rt__dist_frame__get_packed_size(f);
    size_t total = flen + (has_payload ? 1 + varint_len(plen) + plen : 0);
    if (total > DIST_MAX_FRAME) {
        rt_warn("dist: message of %zu bytes to %s exceeds the frame limit: dropped", total, n->name);
        return RT_EINVAL;
    }
    pthread_mutex_lock(&n->mx);
    int st = atomic_load(&n->state);
    if (st == NODE_DOWN) {
        pthread_mutex_unlock(&n->mx);
        return RT_ENOTCONN;
    }
    if (n->olen + total + 4 > DIST_MAX_BUFFERED) {
        if (!n->dropped_warned)
            rt_warn("dist: more than %u MiB queued for %s: dropping messages", DIST_MAX_BUFFERED >> 20, n->name);
        n->dropped_warned = true;
        pthread_mutex_unlock(&n->mx);
        return RT_ELIMIT;
    }
    buf_reserve(&n->obuf, &n->ocap, n->olen + total + 4);
    uint8_t *hdr = (uint8_t *)n->obuf + n->olen;
    hdr[0] = (uint8_t)(total >> 24);
    hdr[1] = (uint8_t)(total >> 16);
    hdr[2] = (uint8_t)(total >> 8);
    hdr[3] = (uint8_t)total;
    n->olen += 4;
    append_ctx_t ctx = {.base = {.append = append_cb}, .n = n};
    cairn__rt__dist_frame__pack_to_buffer(f, &ctx.base);
    if (has_payload) {
        uint8_t *p = (uint8_t *)n->obuf + n->olen;
        p[0] = (10 << 3) | 2; /* field 10 (payload), length-delimited */
        n->olen += 1 + put_varint(p + 1, plen);
        if (pb)
            protobuf_c_message_pack_to_buffer(pb, &ctx.base);
        else {
            memcpy(n->obuf + n->olen, raw, rawlen);
            n->olen += rawlen;
        }
    }
    if (st == NODE_UP && (flush_now || n->olen >= DIST_FLUSH_AT))
        flush_locked(n);
    pthread_mutex_unlock(&n->mx);
    return 0;
}

typedef struct write_req {
    uv_write_t req;
    rt_node_t *node;
    char *buf;
} write_req_t;

static void write_done(uv_write_t *req, int status);

/* Loop thread: hand the node's buffer to libuv, or give writing back to senders. */
static void loop_write_next(rt_node_t *n)
{
    pthread_mutex_lock(&n->mx);
    if (atomic_load(&n->state) != NODE_UP || !n->conn || n->conn->closing) {
        n->loop_writing = false;
        pthread_mutex_unlock(&n->mx);
        return;
    }
    if (n->olen == 0) {
        n->loop_writing = false;
        pthread_mutex_unlock(&n->mx);
        return;
    }
    write_req_t *w = rt__xmalloc(sizeof *w);
    w->node = n;
    w->buf = n->obuf;
    uv_buf_t b = uv_buf_init(n->obuf, (unsigned)n->olen);
    n->obuf = NULL;
    n->olen = n->ocap = 0;
    atomic_store_explicit(&n->last_sent_ns, rt_now_ns(), memory_order_relaxed);
    dist_conn_t *c = n->conn;
    pthread_mutex_unlock(&n->mx);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
        free(w->buf);
        free(w);
        rt__link_close(c, "write failed");
    }
}

static void write_done(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    rt_node_t *n = w->node;
    free(w->buf);
    free(w);
    if (status < 0)
        return; /* the read side or close path takes the node down */
    loop_write_next(n);
}

static void loop_flush(void *arg) { loop_write_next(arg); }

static void hs_write_done(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    free(w->buf);
    free(w);
}

/* Handshake frames go straight to libuv (the node is not UP, senders only buffer). */
static void hs_send(dist_conn_t *c, Cairn__Rt__DistFrame *f)
{
    size_t len = cairn__rt__dist_frame__get_packed_size(f);
    write_req_t *w = rt__xmalloc(sizeof *w);
    w->node = NULL;
    w->buf = rt__xmalloc(len + 4);
    w->buf[0] = (char)(len >> 24);
    w->buf[1] = (char)(len >> 16);
    w->buf[2] = (char)(len >> 8);
    w->buf[3] = (char)len;
    cairn__rt__dist_frame__pack(f, (uint8_t *)w->buf + 4);
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)(len + 4));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, hs_write_done) != 0) {
        free(w->buf);
        free(w);
        rt__link_close(c, "handshake write failed");
    }
}

/* ------------------------------------------------------------------ close */

static void conn_free_if_closed(dist_conn_t *c)
{
    if (--c->handles_open == 0) {
        free(c->ibuf);
        free(c);
    }
}

static void on_handle_closed(uv_handle_t *h) { conn_free_if_closed(h->data); }

void rt__link_close(dist_conn_t *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    conns_del(c);
    rt_node_t *n = c->node;
    if (n && n->conn == c) {
        /* A peer that hangs up (a cairn-admin run ending, a node stopping) is routine; errors
         * on a link that was up are not. Losing a cluster member is the node's to report. */
        bool up = atomic_load(&n->state) == NODE_UP;
        bool routine = strcmp(why, "closed by peer") == 0;
        if ((up && !routine) || rt_log_level() <= RT_LOG_INFO)
            rt_log(up && !routine ? RT_LOG_WARN : RT_LOG_INFO, "dist: link to %s closed: %s",
                   n->name, why);
        n->conn = NULL;
        /* a peer that hangs up right after our AUTH refused our cookie */
        bool auth = strstr(why, "cookie") || (c->outgoing && c->hs == HS_WAIT_ACK);
        if (auth && c->hs == HS_WAIT_ACK)
            rt_error("dist: node %s refused this node's cookie", n->name);
        int err = auth ? RT_EAUTH : RT_ECONNREFUSED;
        rt__node_down(n, err);
    } else if (!n) {
        rt_info("dist: connection from %s closed: %s", c->peer, why);
    }
    uv_timer_stop(&c->timer);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    else
        conn_free_if_closed(c);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    else
        conn_free_if_closed(c);
}

void rt__link_stop_all(void)
{
    while (nconns > 0)
        rt__link_close(conns[nconns - 1], "runtime stopping");
    if (listening) {
        uv_close((uv_handle_t *)&listener, NULL);
        listening = false;
    }
    free(conns);
    conns = NULL;
    nconns = cconns = 0;
    /* entries still connecting with no connection object yet */
    for (uint32_t k = 1; k < rt__dist.nnodes; k++) {
        rt_node_t *n = rt__node_get(k);
        if (n && atomic_load(&n->state) != NODE_DOWN)
            rt__node_down(n, RT_ENOTCONN);
    }
}

/* ------------------------------------------------------------------ timers */

static void on_tick(uv_timer_t *t)
{
    dist_conn_t *c = t->data;
    uint64_t now = rt_now_ns();
    uint64_t silent_ms = (now - c->last_recv_ns) / 1000000ull;
    if (c->hs != HS_UP) {
        rt__link_close(c, "handshake timed out");
        return;
    }
    if (silent_ms >= rt__dist.net_timeout_ms) {
        char why[96];
        snprintf(why, sizeof why, "no heartbeat for %llu ms", (unsigned long long)silent_ms);
        rt__link_close(c, why);
        return;
    }
    rt_node_t *n = c->node;
    uint64_t sent = atomic_load_explicit(&n->last_sent_ns, memory_order_relaxed);
    if ((now - sent) / 1000000ull >= rt__dist.heartbeat_ms / 2) {
        Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
        f.kind = CAIRN__RT__DIST_FRAME__KIND__HEARTBEAT;
        rt__link_append(n, &f, NULL, NULL, 0, true);
    }
}

/* ------------------------------------------------------------------ reading */

static void go_up(dist_conn_t *c)
{
    rt_node_t *n = c->node;
    c->hs = HS_UP;
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&c->tcp, &fd);
    pthread_mutex_lock(&n->mx);
    n->fd = fd;
    n->loop_writing = true; /* frames buffered while connecting go out via libuv first */
    atomic_store(&n->state, NODE_UP);
    pthread_mutex_unlock(&n->mx);
    atomic_store(&n->last_sent_ns, rt_now_ns());
    uv_timer_stop(&c->timer);
    uint64_t tick = rt__dist.heartbeat_ms / 2 ? rt__dist.heartbeat_ms / 2 : 1;
    uv_timer_start(&c->timer, on_tick, tick, tick);
    loop_write_next(n);
    rt__node_up(n);
}

static void send_hello(dist_conn_t *c)
{
    Cairn__Rt__DistHello h = CAIRN__RT__DIST_HELLO__INIT;
    h.node = rt__dist.self;
    h.creation = rt__dist.creation;
    h.challenge = (ProtobufCBinaryData){CHALLENGE_LEN, c->my_challenge};
    h.version = DIST_VERSION;
    Cairn__Rt__DistFrame f = CAIRN__RT__DIST_FRAME__INIT;
    f.kind = CAIRN__RT__DIST_FRAME__KIND__HELLO;
    f.hello = &h;
    hs_send(c, &f);
}

/* Returns false if the connection was closed. */
static bool handshake_frame(dist_conn_t *c, Cairn__Rt__DistFrame *f)
{
    Cairn__Rt__DistFrame out = CAIRN__RT__DIST_FRAME__INIT;
    uint8_t d[32];
    switch (c->hs) {
    case HS_WAIT_HELLO: {
        if (f->kind != CAIRN__RT__DIST_FRAME__KIND__HELLO || !f->hello || !f->hello->node ||
            f->hello->challenge.len != CHALLENGE_LEN || !rt__node_name_valid(f->hello->node, NULL, 0, NULL)) {
            rt__link_close(c, "bad handshake hello");
            return false;
        }
        memcpy(c->peer_challenge, f->hello->challenge.data, CHALLENGE_LEN);
        if (c->outgoing) {
            if (strcmp(f->hello->node, c->node->name) != 0) {
                char why[320];
                snprintf(why, sizeof why, "peer calls itself %s", f->hello->node);
                rt__link_close(c, why);
                return false;
            }
            c->node->creation = f->hello->creation;
            digest(c->peer_challenge, 'C', d);
            out.kind = CAIRN__RT__DIST_FRAME__KIND__AUTH;
            out.digest = (ProtobufCBinaryData){32, d};
            hs_send(c, &out);
            c->hs = HS_WAIT_ACK;
            return true;
        }
        if (strcmp(f->hello->node, rt__dist.self) == 0) {
            rt__link_close(c, "peer uses this node's own name");
            return false;
        }
        bool reject;
        rt_node_t *n = rt__node_for_incoming(f->hello->node, c, &reject);
        if (!n) {
            rt_info("dist: refused a second link from %s (%s)", f->hello->node, reject ? "already linked" : "node table full");
            rt__link_close(c, "duplicate link");
            return false;
        }
        c->node = n;
        n->conn = c;
        n->creation = f->hello->creation;
        send_hello(c);
        c->hs = HS_WAIT_AUTH;
        return true;
    }
    case HS_WAIT_AUTH:
        if (f->kind != CAIRN__RT__DIST_FRAME__KIND__AUTH || !digest_ok(c->my_challenge, 'C', &f->digest)) {
            rt_error("dist: refused node %s from %s: wrong cookie", c->node->name, c->peer);
            rt__link_close(c, "wrong cookie");
            return false;
        }
        digest(c->peer_challenge, 'A', d);
        out.kind = CAIRN__RT__DIST_FRAME__KIND__ACK;
        out.digest = (ProtobufCBinaryData){32, d};
        hs_send(c, &out);
        go_up(c);
        return true;
    case HS_WAIT_ACK:
        if (f->kind != CAIRN__RT__DIST_FRAME__KIND__ACK || !digest_ok(c->my_challenge, 'A', &f->digest)) {
            rt_error("dist: node %s failed the cookie challenge: wrong cookie", c->node->name);
            rt__link_close(c, "wrong cookie");
            return false;
        }
        go_up(c);
        return true;
    default:
        rt__link_close(c, "unexpected handshake state");
        return false;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    dist_conn_t *c = h->data;
    buf_reserve(&c->ibuf, &c->icap, c->ilen + 65536);
    *buf = uv_buf_init(c->ibuf + c->ilen, (unsigned)(c->icap - c->ilen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    dist_conn_t *c = s->data;
    if (nread < 0) {
        rt__link_close(c, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    c->ilen += (size_t)nread;
    c->last_recv_ns = rt_now_ns();
    size_t off = 0;
    while (c->ilen - off >= 4) {
        const uint8_t *p = (const uint8_t *)c->ibuf + off;
        uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (len > DIST_MAX_FRAME) {
            rt__link_close(c, "frame length over the limit (protocol error)");
            return;
        }
        if (c->ilen - off - 4 < len)
            break;
        Cairn__Rt__DistFrame *f = cairn__rt__dist_frame__unpack(NULL, len, p + 4);
        off += 4 + len;
        if (!f) {
            if (c->hs != HS_UP) {
                rt__link_close(c, "malformed handshake frame");
                return;
            }
            rt_warn("dist: skipped a malformed frame of %u bytes from %s", len, c->node->name);
            continue;
        }
        bool alive = true;
        if (c->hs != HS_UP)
            alive = handshake_frame(c, f);
        else
            rt__node_dispatch(c->node, f);
        cairn__rt__dist_frame__free_unpacked(f, NULL);
        if (!alive)
            return;
    }
    if (off > 0) {
        memmove(c->ibuf, c->ibuf + off, c->ilen - off);
        c->ilen -= off;
    }
    if (c->icap > (1u << 20) && c->ilen < c->icap / 4) { /* give back a big burst's buffer */
        c->icap = c->ilen + 65536;
        c->ibuf = rt__xrealloc(c->ibuf, c->icap);
    }
}

/* ------------------------------------------------------------------ connect / accept */

static dist_conn_t *conn_new(bool outgoing)
{
    dist_conn_t *c = rt__xcalloc(1, sizeof *c);
    c->outgoing = outgoing;
    c->hs = outgoing ? HS_CONNECTING : HS_WAIT_HELLO;
    if (getrandom(c->my_challenge, CHALLENGE_LEN, 0) != CHALLENGE_LEN) {
        for (int i = 0; i < CHALLENGE_LEN; i++) /* getrandom on Linux does not fail here */
            c->my_challenge[i] = (uint8_t)(rt_now_ns() >> (i % 8));
    }
    uv_tcp_init(rt__loop(), &c->tcp);
    uv_timer_init(rt__loop(), &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->last_recv_ns = rt_now_ns();
    uv_tcp_nodelay(&c->tcp, 1);
    conns_add(c);
    /* the whole handshake must finish within the net timeout */
    uv_timer_start(&c->timer, on_tick, rt__dist.net_timeout_ms, 0);
    return c;
}

static void on_connected(uv_connect_t *req, int status)
{
    dist_conn_t *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        rt__link_close(c, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->hs = HS_WAIT_HELLO;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_hello(c);
}

void rt__link_connect(void *arg)
{
    rt_node_t *n = arg;
    if (atomic_load(&n->state) != NODE_CONNECTING || n->conn)
        return;
    char host[256];
    int port;
    struct sockaddr_storage sa;
    if (!rt__node_name_valid(n->name, host, sizeof host, &port) ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
        rt_warn("dist: cannot connect to %s: host must be a numeric IP address", n->name);
        rt__node_down(n, RT_EINVAL);
        return;
    }
    dist_conn_t *c = conn_new(true);
    c->node = n;
    n->conn = c;
    snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&sa, on_connected);
    if (rc != 0)
        rt__link_close(c, uv_strerror(rc));
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        rt_warn("dist: accept failed: %s", uv_strerror(status));
        return;
    }
    dist_conn_t *c = conn_new(false);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        rt__link_close(c, "accept failed");
        return;
    }
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        char ip[64] = "?";
        if (sa.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
        else
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
        snprintf(c->peer, sizeof c->peer, "%s", ip);
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

typedef struct listen_req {
    char host[256];
    int port;
    int rc;
    bool done;
    pthread_mutex_t mx;
    pthread_cond_t cv;
} listen_req_t;

static void listen_on_loop(void *arg)
{
    listen_req_t *r = arg;
    struct sockaddr_storage sa;
    int rc = uv_ip4_addr(r->host, r->port, (struct sockaddr_in *)&sa);
    if (rc != 0)
        rc = uv_ip6_addr(r->host, r->port, (struct sockaddr_in6 *)&sa);
    if (rc == 0)
        rc = uv_tcp_init(rt__loop(), &listener);
    if (rc == 0) {
        listening = true;
        rc = uv_tcp_bind(&listener, (struct sockaddr *)&sa, 0);
        if (rc == 0) {
            struct sockaddr_storage bound;
            int blen = sizeof bound;
            if (uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen) == 0)
                r->port = ntohs(bound.ss_family == AF_INET6
                                    ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                    : ((struct sockaddr_in *)&bound)->sin_port);
            /* name@host:0 takes the bound port into its name before the first peer can
             * connect and read it (here, on the thread that answers handshakes) */
            size_t len = strlen(rt__dist.self);
            if (len > 2 && strcmp(rt__dist.self + len - 2, ":0") == 0)
                snprintf(rt__dist.self + len - 1, sizeof rt__dist.self - (len - 1), "%d", r->port);
            rc = uv_listen((uv_stream_t *)&listener, 128, on_connection);
        }
        if (rc != 0) {
            uv_close((uv_handle_t *)&listener, NULL);
            listening = false;
        }
    }
    pthread_mutex_lock(&r->mx);
    r->rc = rc;
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mx);
}

int rt__link_listen(const char *host, int *port)
{
    listen_req_t r = {.port = *port};
    snprintf(r.host, sizeof r.host, "%s", host);
    pthread_mutex_init(&r.mx, NULL);
    pthread_cond_init(&r.cv, NULL);
    rt__loop_call(listen_on_loop, &r);
    pthread_mutex_lock(&r.mx);
    while (!r.done)
        pthread_cond_wait(&r.cv, &r.mx);
    pthread_mutex_unlock(&r.mx);
    pthread_mutex_destroy(&r.mx);
    pthread_cond_destroy(&r.cv);
    if (r.rc != 0) {
        rt_error("dist: cannot listen on %s:%d: %s", host, *port, uv_strerror(r.rc));
        return r.rc == UV_EADDRINUSE ? RT_EEXIST : RT_EINVAL;
    }
    *port = r.port;
    return 0;
}
