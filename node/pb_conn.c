/*
 * pb_conn.c — the client connection process (node/pb_conn.h): owns one socket, reads Riak PB
 * frames, serves one request at a time in order, writes the replies.
 *
 * States (phase):
 *   RUNNING   reading and serving; `busy` while a kv request is in progress
 *   DRAINING  asked to stop: the request in progress finishes; then, for PB_CONN_DRAIN_GRACE_MS
 *             (or until the client closes), every request that arrives is answered
 *             "node is stopping" unread, so a client learns the node is going away before
 *             the socket closes and can send it elsewhere (libcairn does); then CLOSING
 *   CLOSING   not reading; waits (at most PB_CONN_FLUSH_MS) for the send queue to empty,
 *             then the process exits and the socket closes
 * Reading is armed ({active, N}) exactly when RUNNING, the peer has not closed, the reader has
 * no error, and not (busy with bytes already buffered).
 *
 * Timers are lazy: one PB_CONN_MSG_TICK carries its due time; after every event the deadlines
 * (frame, request, idle, ack re-check, flush) are evaluated and a tick is armed only when the
 * earliest deadline is earlier than the tick already pending. A busy connection therefore arms
 * about one timer per request timeout, not one per request, and never cancels any.
 */
#include "node/pb_conn.h"

#include "node/node.h" /* CAIRN_VERSION: server_version is "cairn <version>" */
#include "node/pb_codec.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef enum { PHASE_RUNNING, PHASE_DRAINING, PHASE_CLOSING } phase_t;

typedef struct conn_s {
    kv_node_t *kv;
    const node_config_t *cfg;
    rt_sock_t sock;
    pb_reader_t reader;
    phase_t phase;
    bool started;         /* PB_CONN_MSG_START seen: the socket is ours */
    bool armed;           /* reading requested ({active, N}) as far as we know */
    bool peer_closed;     /* EOF: serve what is buffered, then close */
    bool done;            /* exit at the end of this message */

    /* the request in progress */
    bool busy;
    uint8_t req_code;
    uint64_t req_id;      /* of the request in progress; replies with another id are stale */
    uint64_t next_req_id;
    uint32_t req_timeout_ms;
    uint64_t req_deadline_ns; /* safety net: answer "timeout" ourselves after this */
    bool ack_pending;     /* a stream reply was written; the lister waits for our ack */
    rt_pid_t ack_to;

    /* timers */
    uint64_t tick_due_ns;     /* due time of the earliest tick known to be pending, 0: none */
    uint64_t partial_since_ns;/* when the incomplete frame at the end of the buffer started */
    uint64_t partial_mark;    /* reader.frames_seen when partial_since_ns was taken */
    uint64_t last_activity_ns;
    uint64_t close_deadline_ns;
    uint64_t drain_until_ns;     /* DRAINING: when the grace for late requests ends */

    /* RpbGetClientIdResp / RpbSetClientIdReq */
    uint8_t *client_id;   /* owned */
    size_t client_id_len;
} conn_t;

static uint64_t ms_to_ns(uint64_t ms) { return ms * 1000000u; }

/* ---------------------------------------------------------------- writing */

static void send_bytes(conn_t *c, const void *p, size_t n)
{
    if (rt_sock_send(c->sock, p, n) != 0)
        c->done = true; /* the socket is gone */
}

static void send_frame(conn_t *c, uint8_t code, const ProtobufCMessage *body)
{
    uint8_t small[512];
    size_t n = pb_frame_size(body);
    uint8_t *buf = n <= sizeof small ? small : malloc(n);
    if (!buf)
        abort();
    send_bytes(c, buf, pb_frame_pack(code, body, buf));
    if (buf != small)
        free(buf);
}

static void send_error(conn_t *c, const char *text)
{
    uint8_t buf[1100];
    send_bytes(c, buf, pb_error_frame(text, buf, sizeof buf));
}

/* Writes a KV_MSG_REPLY message's frames; returns the reply, or NULL if it is malformed. */
static const kv_reply_t *reply_of(const rt_msg_t *m)
{
    if (m->type != KV_MSG_REPLY || m->size < sizeof(kv_reply_t))
        return NULL;
    const kv_reply_t *r = (const kv_reply_t *)(const void *)m->data;
    return r->len <= m->size - sizeof(kv_reply_t) ? r : NULL;
}

/* ---------------------------------------------------------------- reading and timers */

static void update_reading(conn_t *c)
{
    if (!c->started || c->done)
        return;
    bool want = (c->phase == PHASE_RUNNING || c->phase == PHASE_DRAINING) && !c->peer_closed &&
                c->reader.error == 0 && !(c->busy && pb_reader_buffered(&c->reader) > 0);
    if (want == c->armed)
        return;
    if (rt_sock_set_active(c->sock, want ? PB_CONN_ACTIVE_N : RT_SOCK_PASSIVE) != 0) {
        c->done = true;
        return;
    }
    c->armed = want;
}

/* Makes sure a tick fires no later than due_ns. */
static void schedule(conn_t *c, uint64_t due_ns, uint64_t now)
{
    if (c->tick_due_ns && c->tick_due_ns <= due_ns)
        return;
    uint64_t ms = due_ns > now ? (due_ns - now + 999999u) / 1000000u : 1;
    if (ms == 0)
        ms = 1;
    if (ms > UINT32_MAX - 1)
        ms = UINT32_MAX - 1;
    rt_send_after((uint32_t)ms, rt_self(), rt_msg_copy(PB_CONN_MSG_TICK, &due_ns, sizeof due_ns));
    c->tick_due_ns = due_ns;
}

static void begin_close(conn_t *c)
{
    if (c->phase == PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    c->busy = false;
    c->ack_pending = false;
    c->close_deadline_ns = rt_now_ns() + ms_to_ns(PB_CONN_FLUSH_MS);
}

static void try_ack(conn_t *c)
{
    if (!c->ack_pending)
        return;
    if (rt_sock_send_queue(c->sock) >= PB_CONN_ACK_QUEUE_BYTES)
        return; /* back-pressure: re-checked by the tick */
    c->ack_pending = false;
    if (!rt_pid_is_nil(c->ack_to))
        rt_send(c->ack_to, rt_msg_new(KV_MSG_STREAM_ACK, 0));
}

/* The request in progress got no reply in time (should not happen: kv promises one). */
static void request_timed_out(conn_t *c)
{
    rt_warn("client connection: %s (req %llu) got no reply within %u ms; answering timeout",
            pb_code_name(c->req_code), (unsigned long long)c->req_id,
            c->req_timeout_ms + PB_CONN_REPLY_MARGIN_MS);
    c->busy = false;
    c->ack_pending = false;
    send_error(c, "timeout");
}

/* Evaluates every deadline; returns true if a request timed out (the caller pumps again). */
static bool check_deadlines(conn_t *c)
{
    uint64_t now = rt_now_ns();
    uint64_t next = UINT64_MAX;
    if (c->phase == PHASE_CLOSING) {
        if (rt_sock_send_queue(c->sock) == 0 || now >= c->close_deadline_ns) {
            c->done = true;
            return false;
        }
        next = now + ms_to_ns(2);
        if (next > c->close_deadline_ns)
            next = c->close_deadline_ns;
        schedule(c, next, now);
        return false;
    }
    /* a frame the client started must be complete within frame_timeout_ms (counted only
     * while we are reading, i.e. not while a request of ours is in progress) */
    if (c->phase == PHASE_RUNNING && !c->busy && pb_reader_partial(&c->reader) &&
        c->cfg->frame_timeout_ms > 0) {
        if (!c->partial_since_ns || c->partial_mark != c->reader.frames_seen) {
            c->partial_since_ns = now;
            c->partial_mark = c->reader.frames_seen;
        }
        uint64_t due = c->partial_since_ns + ms_to_ns(c->cfg->frame_timeout_ms);
        if (now >= due) {
            rt_info("client connection: a frame was started but not completed within %u ms "
                    "(%zu bytes buffered); closing",
                    c->cfg->frame_timeout_ms, pb_reader_buffered(&c->reader));
            c->done = true;
            return false;
        }
        if (due < next)
            next = due;
    } else {
        c->partial_since_ns = 0;
    }
    if (c->phase == PHASE_DRAINING && !c->busy) {
        if (now >= c->drain_until_ns) {
            begin_close(c);
            return check_deadlines(c);
        }
        if (c->drain_until_ns < next)
            next = c->drain_until_ns;
    }
    if (c->busy) {
        if (now >= c->req_deadline_ns) {
            request_timed_out(c);
            return true;
        }
        if (c->req_deadline_ns < next)
            next = c->req_deadline_ns;
    }
    if (c->ack_pending) {
        try_ack(c);
        if (c->ack_pending && now + ms_to_ns(PB_CONN_ACK_RECHECK_MS) < next)
            next = now + ms_to_ns(PB_CONN_ACK_RECHECK_MS);
    }
    if (c->cfg->idle_timeout_ms > 0 && c->phase == PHASE_RUNNING && !c->busy &&
        pb_reader_buffered(&c->reader) == 0) {
        uint64_t due = c->last_activity_ns + ms_to_ns(c->cfg->idle_timeout_ms);
        if (now >= due) {
            rt_debug("client connection: idle for %u ms; closing", c->cfg->idle_timeout_ms);
            begin_close(c);
            return check_deadlines(c);
        }
        if (due < next)
            next = due;
    }
    if (next != UINT64_MAX)
        schedule(c, next, now);
    return false;
}

/* ---------------------------------------------------------------- requests */

static uint32_t timeout_of(const conn_t *c, uint8_t code, const ProtobufCMessage *m)
{
    bool has = false;
    uint32_t t = 0;
    switch (code) {
    case PB_GET_REQ: {
        const Riak__RpbGetReq *q = (const void *)m;
        has = q->has_timeout;
        t = q->timeout;
        break;
    }
    case PB_PUT_REQ: {
        const Riak__RpbPutReq *q = (const void *)m;
        has = q->has_timeout;
        t = q->timeout;
        break;
    }
    case PB_DEL_REQ: {
        const Riak__RpbDelReq *q = (const void *)m;
        has = q->has_timeout;
        t = q->timeout;
        break;
    }
    case PB_LIST_KEYS_REQ: {
        const Riak__RpbListKeysReq *q = (const void *)m;
        has = q->has_timeout;
        t = q->timeout;
        break;
    }
    case PB_LIST_BUCKETS_REQ: {
        const Riak__RpbListBucketsReq *q = (const void *)m;
        has = q->has_timeout;
        t = q->timeout;
        break;
    }
    default:
        break;
    }
    if (has && t > 0)
        return t;
    bool listing = code == PB_LIST_KEYS_REQ || code == PB_LIST_BUCKETS_REQ;
    return listing ? c->cfg->list_timeout_ms : c->cfg->request_timeout_ms;
}

/* Hands a decoded request to its kv entry point (which takes msg). */
static void start_kv_request(conn_t *c, uint8_t code, ProtobufCMessage *msg)
{
    uint64_t id = ++c->next_req_id;
    c->busy = true;
    c->req_code = code;
    c->req_id = id;
    c->req_timeout_ms = timeout_of(c, code, msg);
    c->req_deadline_ns =
        rt_now_ns() + ms_to_ns((uint64_t)c->req_timeout_ms + PB_CONN_REPLY_MARGIN_MS);
    c->ack_pending = false;
    rt_pid_t me = rt_self();
    int rc;
    switch (code) {
    case PB_GET_REQ:
        rc = kv_get(c->kv, me, id, (Riak__RpbGetReq *)(void *)msg);
        break;
    case PB_PUT_REQ:
        rc = kv_put(c->kv, me, id, (Riak__RpbPutReq *)(void *)msg);
        break;
    case PB_DEL_REQ:
        rc = kv_del(c->kv, me, id, (Riak__RpbDelReq *)(void *)msg);
        break;
    case PB_LIST_KEYS_REQ:
        rc = kv_list_keys(c->kv, me, id, (Riak__RpbListKeysReq *)(void *)msg);
        break;
    default: /* PB_LIST_BUCKETS_REQ */
        rc = kv_list_buckets(c->kv, me, id, (Riak__RpbListBucketsReq *)(void *)msg);
        break;
    }
    if (rc == 0)
        return;
    c->busy = false;
    send_error(c, rc == KV_EOVERLOAD ? "overload"
                  : rc == KV_EDRAINING ? "node is stopping"
                                       : "internal error: request not started");
}

/* Bucket properties: the entry point answers at once; req stays ours. */
static void bucket_request(conn_t *c, uint8_t code, const ProtobufCMessage *msg)
{
    uint64_t id = ++c->next_req_id;
    rt_msg_t *reply;
    switch (code) {
    case PB_GET_BUCKET_REQ:
        reply = kv_bucket_get(c->kv, id, (const Riak__RpbGetBucketReq *)(const void *)msg);
        break;
    case PB_SET_BUCKET_REQ:
        reply = kv_bucket_set(c->kv, id, (const Riak__RpbSetBucketReq *)(const void *)msg);
        break;
    case PB_RESET_BUCKET_REQ:
        reply = kv_bucket_reset(c->kv, id, (const Riak__RpbResetBucketReq *)(const void *)msg);
        break;
    case PB_GET_BUCKET_TYPE_REQ:
        reply = kv_bucket_type_get(c->kv, id,
                                   (const Riak__RpbGetBucketTypeReq *)(const void *)msg);
        break;
    default: /* PB_SET_BUCKET_TYPE_REQ */
        reply = kv_bucket_type_set(c->kv, id,
                                   (const Riak__RpbSetBucketTypeReq *)(const void *)msg);
        break;
    }
    const kv_reply_t *r = reply ? reply_of(reply) : NULL;
    if (r)
        send_bytes(c, r->frame, r->len);
    else
        send_error(c, "internal error: no reply");
    if (reply)
        rt_msg_free(reply);
}

static void server_info(conn_t *c)
{
    static const char version[] = "cairn " CAIRN_VERSION;
    Riak__RpbGetServerInfoResp resp = RIAK__RPB_GET_SERVER_INFO_RESP__INIT;
    resp.has_node = 1;
    resp.node.data = (uint8_t *)(uintptr_t)c->cfg->nodename;
    resp.node.len = strnlen(c->cfg->nodename, sizeof c->cfg->nodename);
    resp.has_server_version = 1;
    resp.server_version.data = (uint8_t *)(uintptr_t)version;
    resp.server_version.len = sizeof version - 1;
    send_frame(c, PB_GET_SERVER_INFO_RESP, &resp.base);
}

static void set_client_id(conn_t *c, const Riak__RpbSetClientIdReq *q)
{
    uint8_t *copy = malloc(q->client_id.len ? q->client_id.len : 1);
    if (!copy)
        abort();
    if (q->client_id.len)
        memcpy(copy, q->client_id.data, q->client_id.len);
    free(c->client_id);
    c->client_id = copy;
    c->client_id_len = q->client_id.len;
    send_frame(c, PB_SET_CLIENT_ID_RESP, NULL);
}

static void get_client_id(conn_t *c)
{
    Riak__RpbGetClientIdResp resp = RIAK__RPB_GET_CLIENT_ID_RESP__INIT;
    resp.has_client_id = 1; /* required in riak_pb */
    resp.client_id.data = c->client_id;
    resp.client_id.len = c->client_id_len;
    send_frame(c, PB_GET_CLIENT_ID_RESP, &resp.base);
}

static void handle_frame(conn_t *c, const pb_frame_t *f)
{
    pb_request_t req;
    char err[256];
    if (pb_decode_request(f->code, f->body, f->len, &req, err, sizeof err) != 0) {
        send_error(c, err);
        return;
    }
    switch (req.code) {
    case PB_PING_REQ:
        send_frame(c, PB_PING_RESP, NULL);
        break;
    case PB_GET_CLIENT_ID_REQ:
        get_client_id(c);
        break;
    case PB_SET_CLIENT_ID_REQ:
        set_client_id(c, (const Riak__RpbSetClientIdReq *)(const void *)req.msg);
        break;
    case PB_GET_SERVER_INFO_REQ:
        server_info(c);
        break;
    case PB_GET_REQ:
    case PB_PUT_REQ:
    case PB_DEL_REQ:
    case PB_LIST_KEYS_REQ:
    case PB_LIST_BUCKETS_REQ: {
        ProtobufCMessage *msg = req.msg;
        req.msg = NULL; /* the entry point takes it */
        start_kv_request(c, req.code, msg);
        break;
    }
    case PB_GET_BUCKET_REQ:
    case PB_SET_BUCKET_REQ:
    case PB_RESET_BUCKET_REQ:
    case PB_GET_BUCKET_TYPE_REQ:
    case PB_SET_BUCKET_TYPE_REQ:
        bucket_request(c, req.code, req.msg);
        break;
    default: /* pb_decode_request accepts only the codes above */
        send_error(c, "internal error: unhandled request");
        break;
    }
    pb_request_free(&req);
}

/* Serves complete frames while no request is in progress, then re-evaluates reading and
 * deadlines. Called after every event. */
static void progress(conn_t *c)
{
    for (;;) {
        while (c->phase == PHASE_RUNNING && !c->busy && !c->done) {
            pb_frame_t f;
            int rc = pb_reader_next(&c->reader, &f);
            if (rc == 0)
                break;
            if (rc < 0) {
                char text[160];
                pb_reader_strerror(&c->reader, text, sizeof text);
                rt_info("client connection: %s; closing", text);
                send_error(c, text);
                begin_close(c);
                break;
            }
            handle_frame(c, &f);
        }
        if (c->phase == PHASE_RUNNING && !c->busy && c->peer_closed &&
            !pb_reader_has_frame(&c->reader))
            begin_close(c); /* the client is gone once its requests are answered */
        if (c->phase == PHASE_DRAINING && !c->busy) {
            pb_frame_t f;
            while (pb_reader_next(&c->reader, &f) == 1)
                send_error(c, "node is stopping");
            if (c->peer_closed || c->reader.error || rt_now_ns() >= c->drain_until_ns)
                begin_close(c);
        }
        if (c->done)
            return;
        pb_reader_trim(&c->reader); /* releases a buffer a big frame left behind */
        update_reading(c);
        if (!check_deadlines(c))
            return;
    }
}

/* ---------------------------------------------------------------- events */

static void on_socket(conn_t *c, const rt_sock_event_t *ev)
{
    if (ev->sock != c->sock)
        return;
    switch (ev->kind) {
    case RT_SOCK_DATA:
        if (c->phase == PHASE_CLOSING)
            return; /* closing: input is no longer read */
        c->last_activity_ns = rt_now_ns();
        pb_reader_feed(&c->reader, ev->data, ev->len); /* errors surface in progress() */
        break;
    case RT_SOCK_PASSIVE_EV:
        c->armed = false;
        break;
    case RT_SOCK_CLOSED:
        c->peer_closed = true;
        break;
    case RT_SOCK_ERROR:
        rt_debug("client connection: socket error: %s", rt_strerror(ev->status));
        c->done = true;
        break;
    default:
        break;
    }
}

static void on_reply(conn_t *c, const rt_msg_t *m)
{
    const kv_reply_t *r = reply_of(m);
    if (!r) {
        rt_warn("client connection: malformed KV reply (%u bytes) dropped", m->size);
        return;
    }
    if (!c->busy || r->req_id != c->req_id) {
        rt_debug("client connection: stale reply for req %llu dropped",
                 (unsigned long long)r->req_id);
        return;
    }
    send_bytes(c, r->frame, r->len);
    uint64_t now = rt_now_ns();
    c->last_activity_ns = now;
    if (r->more) {
        /* progress: the safety net restarts; the lister waits for our ack */
        c->req_deadline_ns =
            now + ms_to_ns((uint64_t)c->req_timeout_ms + PB_CONN_REPLY_MARGIN_MS);
        c->ack_pending = true;
        c->ack_to = m->from;
        try_ack(c);
    } else {
        c->busy = false;
        c->ack_pending = false;
    }
}

static int conn_init(void *state, void *arg)
{
    conn_t *c = state;
    const pb_conn_args_t *a = arg;
    if (!a || !a->kv || !a->kv->cfg || !a->sock)
        return RT_R_INIT_FAILED;
    c->kv = a->kv;
    c->cfg = a->kv->cfg;
    c->sock = a->sock;
    pb_reader_init(&c->reader, c->cfg->max_frame_bytes);
    c->phase = PHASE_RUNNING;
    c->last_activity_ns = rt_now_ns();
    c->client_id_len = 4;
    c->client_id = malloc(4);
    if (!c->client_id)
        abort();
    if (getrandom(c->client_id, 4, GRND_NONBLOCK) != 4) {
        uint64_t x = rt_now_ns() ^ ((uint64_t)rt_self().id << 32) ^ rt_self().serial;
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9u;
        x ^= x >> 32;
        memcpy(c->client_id, &x, 4);
    }
    return 0;
}

static int conn_handle(void *state, rt_msg_t *m)
{
    conn_t *c = state;
    switch (m->type) {
    case RT_MSG_TCP:
        on_socket(c, rt_sock_event(m));
        break;
    case KV_MSG_REPLY:
        on_reply(c, m);
        break;
    case PB_CONN_MSG_START:
        c->started = true;
        c->last_activity_ns = rt_now_ns();
        break;
    case PB_CONN_MSG_DRAIN:
        if (!c->started)
            return RT_STOP;
        if (c->phase == PHASE_RUNNING) {
            c->phase = PHASE_DRAINING;
            c->drain_until_ns = rt_now_ns() + ms_to_ns(PB_CONN_DRAIN_GRACE_MS);
        }
        break;
    case PB_CONN_MSG_TICK: {
        uint64_t due = 0;
        if (m->size >= sizeof due)
            memcpy(&due, m->data, sizeof due);
        if (due == c->tick_due_ns)
            c->tick_due_ns = 0;
        break;
    }
    default:
        rt_debug("client connection: unexpected message type %u ignored", m->type);
        return RT_CONTINUE;
    }
    if (!c->done && c->started)
        progress(c);
    return c->done ? RT_STOP : RT_CONTINUE;
}

static void conn_terminate(void *state, int reason)
{
    conn_t *c = state;
    if (c->sock)
        rt_sock_close(c->sock); /* no-op if already stale */
    pb_reader_free(&c->reader);
    free(c->client_id);
    c->client_id = NULL;
}

const rt_behaviour_t pb_conn_behaviour = {
    .name = "pb_conn",
    .state_size = sizeof(conn_t),
    .init = conn_init,
    .handle = conn_handle,
    .terminate = conn_terminate,
};

int pb_conn_start(kv_node_t *kv, rt_sock_t sock, rt_pid_t *out)
{
    pb_conn_args_t args = {.kv = kv, .sock = sock};
    rt_spawn_opts_t opts = {.link = true};
    rt_pid_t pid;
    int rc = rt_spawn_opt(&pb_conn_behaviour, &args, &opts, &pid);
    if (rc != 0) {
        rt_sock_close(sock);
        return rc;
    }
    rc = rt_sock_controlling_process(sock, pid);
    if (rc != 0) {
        rt_sock_close(sock);
        rt_unlink(pid); /* its end must not look like a crash to the caller */
        rt_exit_signal(pid, RT_R_KILL);
        return rc;
    }
    rt_send(pid, rt_msg_new(PB_CONN_MSG_START, 0));
    if (out)
        *out = pid;
    return 0;
}
