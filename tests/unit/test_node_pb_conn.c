/*
 * test_node_pb_conn.c — the client port over real loopback sockets (node/listener.c,
 * node/pb_conn.c), driven by plain POSIX sockets from the test thread as a Riak client would.
 *
 * Suite pb_conn: the runtime, a kv_node_t holding only the configuration, and the listener
 * on port 0. Everything the connection answers itself (ping, server info, client id), every
 * bad input (unknown code, response code, malformed body, missing or zero-length bucket and
 * key, oversize and zero-length frames, half a frame then silence), pipelining order, the
 * connection limit, the idle timeout and the drain.
 * Suite pb_node: a whole node (node_start, memory storage, node-link port 0) for requests
 * that go through the KV layer: put/get, pipelining, list keys, and clients that vanish
 * mid-request without disturbing others.
 * Every wait is bounded; the pb_conn tests check at the end that no socket or memory leaked.
 */
#include "node/listener.h"
#include "node/node.h"
#include "node/pb_codec.h"
#include "node/pb_conn.h"
#include "node_test.h"
#include "runtime/io.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIN(s) ((ProtobufCBinaryData){strlen(s), (uint8_t *)(s)})
#define WAIT_MS 5000

static uint64_t now_ms(void) { return rt_now_ns() / 1000000u; }

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ================================================================ a tiny blocking client */

static int tc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void tc_send(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}

static void tc_send_frame(int fd, uint8_t code, const ProtobufCMessage *body)
{
    size_t n = pb_frame_size(body);
    uint8_t *buf = malloc(n);
    tc_send(fd, buf, pb_frame_pack(code, body, buf));
    free(buf);
}

/* Reads exactly n bytes within the deadline: 1 ok, 0 EOF/reset, -1 timeout. */
static int tc_read_exact(int fd, uint8_t *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        uint64_t now = now_ms();
        if (now >= deadline_ms)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(deadline_ms - now));
        if (pr == 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 0;
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        cr_assert_gt(r, 0, "recv: %s", strerror(errno));
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

typedef struct {
    uint8_t code;
    size_t len;
    uint8_t *body; /* malloc'ed */
} reply_t;

/* Reads one frame: 1 ok, 0 EOF, -1 timeout. */
static int tc_read_frame(int fd, reply_t *out, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    uint8_t hdr[5];
    int rc = tc_read_exact(fd, hdr, 5, deadline);
    if (rc != 1)
        return rc;
    uint32_t declared = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    cr_assert_geq(declared, 1);
    out->code = hdr[4];
    out->len = declared - 1;
    out->body = malloc(out->len ? out->len : 1);
    rc = tc_read_exact(fd, out->body, out->len, deadline);
    cr_assert_eq(rc, 1, "frame body cut short");
    return 1;
}

static reply_t tc_expect(int fd, uint8_t code)
{
    reply_t r;
    int rc = tc_read_frame(fd, &r, WAIT_MS);
    cr_assert_eq(rc, 1, "no reply (rc %d) while waiting for code %u", rc, code);
    if (r.code == PB_ERROR_RESP && code != PB_ERROR_RESP) {
        Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, r.len, r.body);
        cr_assert_fail("expected code %u, got error \"%.*s\"", code, e ? (int)e->errmsg.len : 0,
                       e ? (const char *)e->errmsg.data : "");
    }
    cr_assert_eq(r.code, code, "expected code %u, got %u", code, r.code);
    return r;
}

static void tc_expect_empty(int fd, uint8_t code)
{
    reply_t r = tc_expect(fd, code);
    cr_assert_eq(r.len, 0);
    free(r.body);
}

static void tc_expect_error(int fd, const char *text)
{
    reply_t r = tc_expect(fd, PB_ERROR_RESP);
    Riak__RpbErrorResp *e = riak__rpb_error_resp__unpack(NULL, r.len, r.body);
    cr_assert_not_null(e, "an RpbErrorResp that does not decode");
    cr_assert(e->has_errmsg && e->has_errcode, "errmsg and errcode are required in riak_pb");
    cr_assert_eq(e->errcode, 0);
    cr_assert(e->errmsg.len == strlen(text) && memcmp(e->errmsg.data, text, e->errmsg.len) == 0,
              "error \"%.*s\", expected \"%s\"", (int)e->errmsg.len, (const char *)e->errmsg.data,
              text);
    riak__rpb_error_resp__free_unpacked(e, NULL);
    free(r.body);
}

/* Sends one request frame and expects the error reply `text` to it. */
static void tc_send_expect_error(int fd, uint8_t code, const ProtobufCMessage *body,
                                 const char *text)
{
    tc_send_frame(fd, code, body);
    tc_expect_error(fd, text);
}

/* Expects a reply with `code` and ignores its body. */
static void tc_expect_ok(int fd, uint8_t code)
{
    reply_t r = tc_expect(fd, code);
    free(r.body);
}

/* True when the server closes the connection within ms (after any pending replies). */
static bool tc_closed_within(int fd, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    for (;;) {
        reply_t r;
        int rc = tc_read_frame(fd, &r, (uint32_t)(deadline > now_ms() ? deadline - now_ms() : 0));
        if (rc == 0)
            return true;
        if (rc < 0)
            return false;
        free(r.body); /* something else came first: keep waiting for the close */
    }
}

static void tc_ping(int fd)
{
    static const uint8_t ping[] = {0, 0, 0, 1, PB_PING_REQ};
    tc_send(fd, ping, sizeof ping);
    tc_expect_empty(fd, PB_PING_RESP);
}

/* ================================================================ suite pb_conn */

static node_config_t cfg;
static kv_node_t kv;
static listener_args_t largs;
static rt_pid_t listener;
static int port;

static void conn_setup(void)
{
    rt_config_t rc;
    rt_config_default(&rc);
    rc.schedulers = 2;
    rc.workers = 2;
    rt_log_set_level(RT_LOG_WARN);
    cr_assert_eq(rt_start(&rc), 0);
    kv_register_msgs();
    node_config_default(&cfg);
    snprintf(cfg.nodename, sizeof cfg.nodename, "wire@127.0.0.1:1");
    cfg.client_port = 0;
    cfg.max_frame_bytes = 4096;
    cfg.frame_timeout_ms = 300;
    cfg.max_connections = 64;
    kv.cfg = &cfg;
}

/* Starts the listener with the configuration as the test left it. */
static void start_listener(void)
{
    largs = (listener_args_t){.kv = &kv, .drain_ms = 2000};
    cr_assert_eq(listener_start(&largs, &listener), 0);
    port = atomic_load(&largs.port);
    cr_assert_gt(port, 0, "port 0 must give a real port");
}

static void conn_teardown(void)
{
    if (rt_running())
        rt_stop(2000);
}

/* Stops the listener (draining), then the runtime, and checks nothing leaked. */
static void stop_and_check(void)
{
    cr_assert_eq(listener_stop(listener, 5000), 0, "the listener did not drain in time");
    rt_stop(2000);
    cr_assert_eq(rt_sock_count(), 0, "sockets left open");
    rt_test_assert_no_leaks();
}

static bool wait_connections(uint32_t n, uint32_t ms)
{
    uint64_t end = now_ms() + ms;
    while (atomic_load(&largs.connections) != n) {
        if (now_ms() > end)
            return false;
        sleep_ms(2);
    }
    return true;
}

TestSuite(pb_conn, .init = conn_setup, .fini = conn_teardown, .timeout = 60);

Test(pb_conn, ping)
{
    start_listener();
    int fd = tc_connect(port);
    tc_ping(fd);
    tc_ping(fd);
    close(fd);
    stop_and_check();
}

Test(pb_conn, server_info_names_the_node_and_version)
{
    start_listener();
    int fd = tc_connect(port);
    tc_send_frame(fd, PB_GET_SERVER_INFO_REQ, NULL);
    reply_t r = tc_expect(fd, PB_GET_SERVER_INFO_RESP);
    Riak__RpbGetServerInfoResp *info = riak__rpb_get_server_info_resp__unpack(NULL, r.len, r.body);
    cr_assert_not_null(info);
    cr_assert(info->has_node && info->node.len == strlen(cfg.nodename) &&
              memcmp(info->node.data, cfg.nodename, info->node.len) == 0);
    const char want[] = "cairn " CAIRN_VERSION;
    cr_assert(info->has_server_version && info->server_version.len == strlen(want) &&
              memcmp(info->server_version.data, want, strlen(want)) == 0);
    riak__rpb_get_server_info_resp__free_unpacked(info, NULL);
    free(r.body);
    close(fd);
    stop_and_check();
}

/* Asks for the connection's client id; copies it into id[] and returns its length. */
static size_t get_client_id(int fd, uint8_t id[64])
{
    tc_send_frame(fd, PB_GET_CLIENT_ID_REQ, NULL);
    reply_t r = tc_expect(fd, PB_GET_CLIENT_ID_RESP);
    Riak__RpbGetClientIdResp *g = riak__rpb_get_client_id_resp__unpack(NULL, r.len, r.body);
    cr_assert_not_null(g);
    cr_assert(g->has_client_id, "client_id is required in riak_pb");
    size_t n = g->client_id.len;
    cr_assert_leq(n, 64);
    memcpy(id, g->client_id.data, n);
    riak__rpb_get_client_id_resp__free_unpacked(g, NULL);
    free(r.body);
    return n;
}

Test(pb_conn, client_id_is_random_then_set_per_connection)
{
    start_listener();
    int a = tc_connect(port), b = tc_connect(port);
    uint8_t id[64];
    cr_assert_eq(get_client_id(a, id), 4, "the default client id has 4 bytes");

    Riak__RpbSetClientIdReq set = RIAK__RPB_SET_CLIENT_ID_REQ__INIT;
    set.has_client_id = 1;
    set.client_id = BIN("wire-client");
    tc_send_frame(a, PB_SET_CLIENT_ID_REQ, &set.base);
    tc_expect_empty(a, PB_SET_CLIENT_ID_RESP);
    cr_assert_eq(get_client_id(a, id), 11);
    cr_assert_eq(memcmp(id, "wire-client", 11), 0);
    cr_assert_eq(get_client_id(b, id), 4, "another connection keeps its own id");

    Riak__RpbSetClientIdReq missing = RIAK__RPB_SET_CLIENT_ID_REQ__INIT;
    tc_send_frame(b, PB_SET_CLIENT_ID_REQ, &missing.base);
    tc_expect_error(b, "Missing required field: client_id");
    close(a);
    close(b);
    stop_and_check();
}

Test(pb_conn, pipelined_requests_are_answered_in_order)
{
    start_listener();
    int fd = tc_connect(port);
    enum { N = 200 };
    uint8_t wire[N * 5 + 32];
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        uint8_t code = i % 10 == 5 ? PB_GET_SERVER_INFO_REQ : i % 10 == 7 ? 150 : PB_PING_REQ;
        uint8_t f[] = {0, 0, 0, 1, code};
        memcpy(wire + n, f, 5);
        n += 5;
    }
    tc_send(fd, wire, n);
    for (int i = 0; i < N; i++) {
        if (i % 10 == 5) {
            reply_t r = tc_expect(fd, PB_GET_SERVER_INFO_RESP);
            free(r.body);
        } else if (i % 10 == 7) {
            tc_expect_error(fd, "Unknown message code: 150");
        } else {
            tc_expect_empty(fd, PB_PING_RESP);
        }
    }
    close(fd);
    stop_and_check();
}

Test(pb_conn, bad_codes_and_bodies_get_errors_and_the_connection_goes_on)
{
    start_listener();
    int fd = tc_connect(port);
    tc_send_expect_error(fd, 150, NULL, "Unknown message code: 150");
    tc_send_expect_error(fd, PB_MAP_RED_REQ, NULL,
                         "Unknown message code: 23 (RpbMapRedReq is not supported by Cairn)");
    tc_send_expect_error(fd, PB_GET_RESP, NULL,
                         "Unexpected message code: 10 (RpbGetResp is a response, not a request)");
    const uint8_t malformed[] = {0, 0, 0, 4, PB_GET_REQ, 0x0A, 0x05, 'b'};
    tc_send(fd, malformed, sizeof malformed);
    tc_expect_error(fd, "Invalid message body for code 9 (RpbGetReq)");
    tc_ping(fd);
    close(fd);
    stop_and_check();
}

Test(pb_conn, missing_or_zero_length_bucket_and_key_are_refused)
{
    start_listener();
    int fd = tc_connect(port);
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    tc_send_expect_error(fd, PB_GET_REQ, &get.base, "Missing required field: bucket");
    get.has_bucket = 1;
    get.bucket = BIN("");
    get.has_key = 1;
    get.key = BIN("k");
    tc_send_expect_error(fd, PB_GET_REQ, &get.base, "Bucket cannot be zero-length");
    get.bucket = BIN("b");
    get.has_key = 0;
    tc_send_expect_error(fd, PB_GET_REQ, &get.base, "Missing required field: key");
    get.has_key = 1;
    get.key = BIN("");
    tc_send_expect_error(fd, PB_GET_REQ, &get.base, "Key cannot be zero-length");

    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    content.has_value = 1;
    content.value = BIN("v");
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    put.has_bucket = put.has_key = 1;
    put.bucket = BIN("b");
    put.key = BIN("");
    put.content = &content;
    tc_send_expect_error(fd, PB_PUT_REQ, &put.base, "Key cannot be zero-length");
    put.has_bucket = 0;
    tc_send_expect_error(fd, PB_PUT_REQ, &put.base, "Missing required field: bucket");

    Riak__RpbDelReq del = RIAK__RPB_DEL_REQ__INIT;
    del.has_bucket = 1;
    del.bucket = BIN("b");
    tc_send_expect_error(fd, PB_DEL_REQ, &del.base, "Missing required field: key");

    Riak__RpbListKeysReq lk = RIAK__RPB_LIST_KEYS_REQ__INIT;
    lk.has_bucket = 1;
    lk.bucket = BIN("");
    tc_send_expect_error(fd, PB_LIST_KEYS_REQ, &lk.base, "Bucket cannot be zero-length");

    Riak__RpbSetBucketReq sb = RIAK__RPB_SET_BUCKET_REQ__INIT;
    sb.has_bucket = 1;
    sb.bucket = BIN("b");
    tc_send_expect_error(fd, PB_SET_BUCKET_REQ, &sb.base, "Missing required field: props");
    tc_ping(fd);
    close(fd);
    stop_and_check();
}

Test(pb_conn, oversize_frame_is_refused_and_the_connection_closed)
{
    start_listener();
    int fd = tc_connect(port), other = tc_connect(port);
    uint8_t wire[4 + 200] = {0, 0, 0x13, 0x88, PB_PUT_REQ}; /* declares 5000 > 4096 */
    tc_send(fd, wire, sizeof wire);
    tc_expect_error(fd, "Frame of 5000 bytes exceeds the maximum of 4096 bytes");
    cr_assert(tc_closed_within(fd, WAIT_MS), "the connection must close: it cannot resync");
    close(fd);
    tc_ping(other); /* nobody else noticed */

    fd = tc_connect(port);
    const uint8_t zero[] = {0, 0, 0, 0};
    tc_send(fd, zero, sizeof zero);
    tc_expect_error(fd, "Invalid frame length 0 (a frame holds at least its message code)");
    cr_assert(tc_closed_within(fd, WAIT_MS));
    close(fd);

    /* a frame of exactly the maximum is fine */
    fd = tc_connect(port);
    uint8_t *max = calloc(1, 4 + 4096);
    max[2] = 0x10; /* 4096 */
    max[4] = PB_PING_REQ;
    tc_send(fd, max, 4 + 4096);
    free(max);
    tc_expect_empty(fd, PB_PING_RESP);
    close(fd);
    close(other);
    stop_and_check();
}

Test(pb_conn, half_a_frame_then_silence_is_timed_out)
{
    start_listener(); /* frame_timeout_ms = 300 */
    int idle = tc_connect(port), fd = tc_connect(port);
    const uint8_t half[] = {0, 0, 0, 16, PB_GET_REQ, 0x0A};
    uint64_t t0 = now_ms();
    tc_send(fd, half, sizeof half);
    cr_assert(tc_closed_within(fd, WAIT_MS), "a stalled frame must be timed out");
    uint64_t took = now_ms() - t0;
    cr_assert_geq(took, 250, "closed after %llu ms, before the frame timeout", (unsigned long long)took);
    close(fd);

    /* a header cut in the middle counts too */
    fd = tc_connect(port);
    tc_send(fd, half, 2);
    cr_assert(tc_closed_within(fd, WAIT_MS));
    close(fd);

    /* an idle connection (no frame started) is not affected by the frame timeout */
    sleep_ms(200);
    tc_ping(idle);
    close(idle);
    stop_and_check();
}

Test(pb_conn, idle_timeout_closes_quiet_connections)
{
    cfg.idle_timeout_ms = 200;
    start_listener();
    int fd = tc_connect(port);
    tc_ping(fd);
    uint64_t t0 = now_ms();
    cr_assert(tc_closed_within(fd, WAIT_MS));
    cr_assert_geq(now_ms() - t0, 150);
    close(fd);
    stop_and_check();
}

Test(pb_conn, connection_limit_refuses_with_an_error)
{
    cfg.max_connections = 3;
    start_listener();
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tc_connect(port);
        tc_ping(fds[i]);
    }
    cr_assert(wait_connections(3, WAIT_MS));
    int extra = tc_connect(port);
    tc_expect_error(extra, "too many connections");
    cr_assert(tc_closed_within(extra, WAIT_MS));
    close(extra);
    for (int i = 0; i < 3; i++)
        tc_ping(fds[i]); /* the others are untouched */

    close(fds[0]);
    cr_assert(wait_connections(2, WAIT_MS), "a closed client is no longer counted");
    fds[0] = tc_connect(port);
    tc_ping(fds[0]);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    cr_assert(wait_connections(0, WAIT_MS));
    stop_and_check();
}

Test(pb_conn, garbage_on_one_connection_disturbs_no_other)
{
    start_listener();
    int good = tc_connect(port);
    unsigned seed = 12345;
    for (int round = 0; round < 30; round++) {
        int bad = tc_connect(port);
        uint8_t junk[512];
        for (size_t i = 0; i < sizeof junk; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (uint8_t)(seed >> 16);
        }
        if (round % 3 == 0) { /* small declared lengths, random codes and bodies */
            for (size_t i = 0; i + 8 < sizeof junk; i += 8) {
                junk[i] = junk[i + 1] = junk[i + 2] = 0;
                junk[i + 3] = 4;
            }
        }
        send(bad, junk, sizeof junk, MSG_NOSIGNAL);
        if (round % 2)
            close(bad); /* vanish at once */
        else {
            tc_closed_within(bad, 50);
            close(bad);
        }
        tc_ping(good);
    }
    tc_ping(good);
    close(good);
    stop_and_check();
}

Test(pb_conn, half_closed_client_gets_its_answers)
{
    start_listener();
    int fd = tc_connect(port);
    const uint8_t two_pings[] = {0, 0, 0, 1, PB_PING_REQ, 0, 0, 0, 1, PB_PING_REQ};
    tc_send(fd, two_pings, sizeof two_pings);
    shutdown(fd, SHUT_WR);
    tc_expect_empty(fd, PB_PING_RESP);
    tc_expect_empty(fd, PB_PING_RESP);
    cr_assert(tc_closed_within(fd, WAIT_MS));
    close(fd);
    stop_and_check();
}

Test(pb_conn, drain_closes_connections_and_stops_accepting)
{
    start_listener();
    int a = tc_connect(port), b = tc_connect(port);
    tc_ping(a);
    tc_ping(b);
    cr_assert(wait_connections(2, WAIT_MS));
    rt_ref_t mon = rt_monitor(listener);
    cr_assert_eq(listener_drain(listener), 0);
    cr_assert(tc_closed_within(a, WAIT_MS));
    cr_assert(tc_closed_within(b, WAIT_MS));
    rt_msg_t *m = NULL;
    uint64_t end = now_ms() + WAIT_MS;
    bool down = false;
    while (!down && now_ms() < end && rt_receive(100, &m) == 0) {
        down = m->type == RT_MSG_DOWN && ((rt_down_msg_t *)(void *)m->data)->ref == mon;
        rt_msg_free(m);
    }
    cr_assert(down, "the listener exits once its connections are gone");
    cr_assert_eq(atomic_load(&largs.connections), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_neq(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0, "no more clients accepted");
    close(fd);
    close(a);
    close(b);
    rt_stop(2000);
    cr_assert_eq(rt_sock_count(), 0);
}

/* A request that reaches a draining connection is refused with "node is stopping" (the
 * client can send it elsewhere), not cut off by the close. */
Test(pb_conn, drain_answers_late_requests_before_closing)
{
    start_listener();
    int a = tc_connect(port);
    tc_ping(a);
    cr_assert(wait_connections(1, WAIT_MS));
    cr_assert_eq(listener_drain(listener), 0);
    usleep(50 * 1000); /* the drain reaches the connection */
    static const uint8_t ping[] = {0, 0, 0, 1, PB_PING_REQ};
    tc_send(a, ping, sizeof ping);
    tc_expect_error(a, "node is stopping");
    cr_assert(tc_closed_within(a, WAIT_MS), "closed after the grace");
    close(a);
    rt_stop(2000);
    cr_assert_eq(rt_sock_count(), 0);
}

Test(pb_conn, listening_on_a_port_in_use_fails_at_start)
{
    start_listener();
    rt_log_set_level(RT_LOG_NONE); /* the refusal is logged as an error: expected here */
    cfg.client_port = port;
    listener_args_t again = {.kv = &kv};
    rt_pid_t pid;
    cr_assert_eq(listener_start(&again, &pid), RT_EINITFAIL);
    cr_assert_eq(atomic_load(&again.error), RT_EADDRINUSE);
    stop_and_check();
}

/* ================================================================ suite pb_node */

static node_t *node;
static char data_dir[64];

static void node_setup(void)
{
    snprintf(data_dir, sizeof data_dir, "/tmp/cairn-pbconn-XXXXXX");
    cr_assert_not_null(mkdtemp(data_dir));
    node_config_t c;
    node_config_default(&c);
    snprintf(c.nodename, sizeof c.nodename, "wire@127.0.0.1:0"); /* a free node-link port */
    snprintf(c.data_dir, sizeof c.data_dir, "%s", data_dir);
    snprintf(c.log_file, sizeof c.log_file, "off");
    c.log_level = RT_LOG_WARN;
    c.client_port = 0;
    c.ring_size = 8;
    c.schedulers = 2;
    c.workers = 2;
    c.storage.kind = STORE_ENGINE_MEMORY;
    char err[512];
    int rc = node_start(&c, &node, err, sizeof err);
    cr_assert_eq(rc, 0, "node_start: %s", err);
    port = node_client_port(node);
    cr_assert_gt(port, 0);
}

static void node_teardown(void)
{
    if (node)
        node_stop(node);
    node = NULL;
    node_test_rmtree(data_dir);
}

TestSuite(pb_node, .init = node_setup, .fini = node_teardown, .timeout = 60);

static void put_value(int fd, const char *bucket, const char *key, const char *value)
{
    Riak__RpbContent content = RIAK__RPB_CONTENT__INIT;
    content.has_value = 1;
    content.value = BIN(value);
    Riak__RpbPutReq put = RIAK__RPB_PUT_REQ__INIT;
    put.has_bucket = put.has_key = 1;
    put.bucket = BIN(bucket);
    put.key = BIN(key);
    put.content = &content;
    tc_send_frame(fd, PB_PUT_REQ, &put.base);
}

static void send_get(int fd, const char *bucket, const char *key)
{
    Riak__RpbGetReq get = RIAK__RPB_GET_REQ__INIT;
    get.has_bucket = get.has_key = 1;
    get.bucket = BIN(bucket);
    get.key = BIN(key);
    tc_send_frame(fd, PB_GET_REQ, &get.base);
}

/* Reads a GetResp and checks its single value (NULL: not found). */
static void expect_value(int fd, const char *value)
{
    reply_t r = tc_expect(fd, PB_GET_RESP);
    Riak__RpbGetResp *g = riak__rpb_get_resp__unpack(NULL, r.len, r.body);
    cr_assert_not_null(g);
    if (!value) {
        cr_assert_eq(g->n_content, 0, "expected not found");
    } else {
        cr_assert_eq(g->n_content, 1);
        cr_assert(g->content[0]->value.len == strlen(value) &&
                  memcmp(g->content[0]->value.data, value, strlen(value)) == 0);
    }
    riak__rpb_get_resp__free_unpacked(g, NULL);
    free(r.body);
}

Test(pb_node, put_then_get_through_the_client_port)
{
    int fd = tc_connect(port);
    put_value(fd, "b", "k", "hello");
    tc_expect_ok(fd, PB_PUT_RESP);
    send_get(fd, "b", "k");
    expect_value(fd, "hello");
    send_get(fd, "b", "missing");
    expect_value(fd, NULL);
    close(fd);
}

Test(pb_node, pipelined_kv_requests_are_answered_in_order)
{
    int fd = tc_connect(port);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        put_value(fd, "pipe", key, val);
        send_get(fd, "pipe", key);
        tc_send_frame(fd, PB_PING_REQ, NULL);
    }
    for (int i = 0; i < N; i++) {
        char val[16];
        snprintf(val, sizeof val, "v%d", i);
        tc_expect_ok(fd, PB_PUT_RESP);
        expect_value(fd, val);
        tc_expect_empty(fd, PB_PING_RESP);
    }
    close(fd);
}

Test(pb_node, list_keys_streams_until_done)
{
    int fd = tc_connect(port);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        put_value(fd, "listed", key, "x");
        tc_expect_ok(fd, PB_PUT_RESP);
    }
    Riak__RpbListKeysReq lk = RIAK__RPB_LIST_KEYS_REQ__INIT;
    lk.has_bucket = 1;
    lk.bucket = BIN("listed");
    tc_send_frame(fd, PB_LIST_KEYS_REQ, &lk.base);
    size_t keys = 0;
    bool done = false;
    for (int frames = 0; !done && frames < 10000; frames++) {
        reply_t r = tc_expect(fd, PB_LIST_KEYS_RESP);
        Riak__RpbListKeysResp *k = riak__rpb_list_keys_resp__unpack(NULL, r.len, r.body);
        cr_assert_not_null(k);
        keys += k->n_keys;
        done = k->has_done && k->done;
        riak__rpb_list_keys_resp__free_unpacked(k, NULL);
        free(r.body);
    }
    cr_assert(done);
    cr_assert_eq(keys, N);
    tc_ping(fd); /* the connection serves the next request after the stream */
    close(fd);
}

Test(pb_node, clients_vanishing_mid_request_disturb_no_one)
{
    int good = tc_connect(port);
    for (int round = 0; round < 40; round++) {
        int gone = tc_connect(port);
        char key[16];
        snprintf(key, sizeof key, "gone%d", round);
        put_value(gone, "vanish", key, "v");
        send_get(gone, "vanish", key);
        if (round % 2) { /* a reset instead of a clean close */
            struct linger lg = {1, 0};
            setsockopt(gone, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(gone);
        send_get(good, "vanish", "never-written");
        expect_value(good, NULL);
    }
    /* the abandoned writes were still applied or not; either way the node answers */
    put_value(good, "vanish", "after", "ok");
    tc_expect_ok(good, PB_PUT_RESP);
    send_get(good, "vanish", "after");
    expect_value(good, "ok");
    close(good);
}
