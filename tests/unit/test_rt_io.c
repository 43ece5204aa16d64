/*
 * test_rt_io.c — the worker pool and process-owned sockets (runtime/io.h): results come back
 * as messages, slow work never blocks schedulers, an echo server over real loopback sockets,
 * passive mode as back-pressure, owner death closes sockets, clear errors for bad input, and
 * nothing left behind at stop (the ASan build checks leaks). Every wait is bounded.
 */
#include "runtime/io.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { T_PING = RT_MSG_USER + 1, T_PONG, T_GO, T_DONE };

static void start(void)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    c.workers = 4;
    cr_assert_eq(rt_start(&c), 0);
}
static void stop(void) { rt_stop(2000); }

/* The same runtime with the I/O loop on a thread of its own instead of scheduler 0. */
static void start_io_thread(void)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = 2;
    c.workers = 4;
    c.io_thread = true;
    cr_assert_eq(rt_start(&c), 0);
}

/* The ASan build checks leaks inside the test (Criterion does not fail a test on the
 * LeakSanitizer report printed at exit). */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Stops the runtime here (the suite's .fini then has nothing to do) and checks that
 * everything the test made is freed: sockets, leases, jobs, messages, buffers. */
static void stop_and_check_leaks(void)
{
    rt_stop(2000);
    cr_assert_eq(rt_sock_count(), 0);
#ifdef HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (see the report above)");
#endif
}

TestSuite(rt_io, .init = start, .fini = stop, .timeout = 30);

static uint64_t now_ms(void) { return rt_now_ns() / 1000000u; }

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until cond() holds. */
static bool wait_until(bool (*cond)(void), unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!cond()) {
        if (now_ms() > end)
            return false;
        sleep_ms(2);
    }
    return true;
}

/* ------------------------------------------------------------------ selective receive */

typedef struct {
    uint32_t type;
    uint32_t kind; /* RT_MSG_TCP: 0 = any kind */
    rt_sock_t sock; /* RT_MSG_TCP: 0 = any socket */
} want_t;

static bool match_want(const rt_msg_t *m, void *ctx)
{
    const want_t *w = ctx;
    if (m->type != w->type)
        return false;
    const rt_sock_event_t *ev = rt_sock_event(m);
    if (!ev)
        return true;
    return (!w->kind || ev->kind == w->kind) && (!w->sock || ev->sock == w->sock);
}

static rt_msg_t *recv_want(uint32_t type, uint32_t kind, rt_sock_t sock, uint32_t ms)
{
    want_t w = {type, kind, sock};
    rt_msg_t *m = NULL;
    return rt_receive_match(ms, match_want, &w, &m) == 0 ? m : NULL;
}

static const rt_sock_event_t *ev_of(rt_msg_t *m) { return rt_sock_event(m); }

/* ------------------------------------------------------------------ a plain echo process */

static int echo_handle(void *st, rt_msg_t *m)
{
    if (m->type == T_PING && rt_is_call(m))
        rt_reply(rt_call_from(m), rt_msg_new(T_PONG, 0));
    return RT_CONTINUE;
}
static const rt_behaviour_t echo_beh = {.name = "echo", .handle = echo_handle};

/* ================================================================== worker pool */

static rt_msg_t *square_job(void *arg)
{
    uint64_t i = (uint64_t)(uintptr_t)arg;
    return rt_work_done(i, (int64_t)(i * i));
}

Test(rt_io, work_results_come_back_as_messages)
{
    enum { N = 200 };
    for (uintptr_t i = 0; i < N; i++)
        cr_assert_eq(rt_work_submit(square_job, (void *)i, rt_self()), 0);
    bool seen[N] = {0};
    for (int n = 0; n < N; n++) {
        rt_msg_t *m = recv_want(RT_MSG_WORK_DONE, 0, 0, 5000);
        cr_assert_not_null(m, "result %d of %d never came", n, N);
        rt_work_done_t *d = (rt_work_done_t *)(void *)m->data;
        cr_assert_lt(d->tag, (uint64_t)N);
        cr_assert_not(seen[d->tag], "result %llu delivered twice", (unsigned long long)d->tag);
        seen[d->tag] = true;
        cr_assert_eq(d->result, (int64_t)(d->tag * d->tag));
        cr_assert(rt_pid_is_nil(m->from), "a worker has no mailbox");
        rt_msg_free(m);
    }
    cr_assert_eq(rt_work_submit(NULL, NULL, rt_self()), RT_EINVAL);
    stop_and_check_leaks();
}

static atomic_int concurrent, max_concurrent, ran;

static rt_msg_t *sleepy_job(void *arg)
{
    int now = atomic_fetch_add(&concurrent, 1) + 1;
    int seen = atomic_load(&max_concurrent);
    while (now > seen && !atomic_compare_exchange_weak(&max_concurrent, &seen, now))
        ;
    sleep_ms((unsigned)(uintptr_t)arg);
    atomic_fetch_sub(&concurrent, 1);
    atomic_fetch_add(&ran, 1);
    return rt_work_done(0, 0);
}

Test(rt_io, work_runs_in_parallel_on_four_workers)
{
    atomic_store(&concurrent, 0);
    atomic_store(&max_concurrent, 0);
    uint64_t t0 = now_ms();
    for (int i = 0; i < 8; i++)
        cr_assert_eq(rt_work_submit(sleepy_job, (void *)(uintptr_t)150, rt_self()), 0);
    for (int i = 0; i < 8; i++) {
        rt_msg_t *m = recv_want(RT_MSG_WORK_DONE, 0, 0, 5000);
        cr_assert_not_null(m);
        rt_msg_free(m);
    }
    uint64_t took = now_ms() - t0;
    cr_assert_eq(atomic_load(&max_concurrent), 4, "max %d jobs at once", atomic_load(&max_concurrent));
    cr_assert_lt(took, 8 * 150 / 2, "8 x 150 ms on 4 workers took %llu ms", (unsigned long long)took);
    stop_and_check_leaks();
}

static bool four_running(void) { return rt_work_running() == 4; }

Test(rt_io, slow_work_does_not_block_schedulers)
{
    rt_pid_t echo;
    cr_assert_eq(rt_spawn(&echo_beh, NULL, &echo), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(rt_work_submit(sleepy_job, (void *)(uintptr_t)200, rt_self()), 0);
    cr_assert(wait_until(four_running, 2000), "the 4 workers never all ran");
    uint64_t t0 = now_ms();
    for (int i = 0; i < 20; i++) {
        rt_msg_t *reply = NULL;
        cr_assert_eq(rt_call_sync(echo, rt_msg_new(T_PING, 0), 1000, &reply, NULL), 0);
        cr_assert_eq(reply->type, T_PONG);
        rt_msg_free(reply);
    }
    uint64_t took = now_ms() - t0;
    cr_assert_eq(rt_work_running(), 4, "calls must be answered while every worker sleeps");
    cr_assert_lt(took, 190, "20 calls took %llu ms", (unsigned long long)took);
    for (int i = 0; i < 4; i++) {
        rt_msg_t *m = recv_want(RT_MSG_WORK_DONE, 0, 0, 5000);
        cr_assert_not_null(m);
        rt_msg_free(m);
    }
    stop_and_check_leaks();
}

static atomic_int args_freed;
static void count_free(void *arg)
{
    free(arg);
    atomic_fetch_add(&args_freed, 1);
}
static rt_msg_t *consume_job(void *arg)
{
    sleep_ms(*(unsigned *)arg);
    free(arg);
    atomic_fetch_add(&ran, 1);
    return rt_work_done(1, 0); /* to a thread that may be gone by then: freed */
}
static unsigned *ms_arg(unsigned ms)
{
    unsigned *p = malloc(sizeof *p);
    *p = ms;
    return p;
}

Test(rt_io, stop_drops_queued_work_and_releases_args)
{
    atomic_store(&args_freed, 0);
    atomic_store(&ran, 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(rt_work_submit2(consume_job, ms_arg(200), count_free, rt_self()), 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(rt_work_submit2(consume_job, ms_arg(0), count_free, rt_self()), 0);
    cr_assert(wait_until(four_running, 2000));
    cr_assert_eq(rt_work_queued(), 10);
    rt_stop(2000); /* joins the 4 running jobs, drops the 10 queued */
    cr_assert_eq(atomic_load(&ran), 4);
    cr_assert_eq(atomic_load(&args_freed), 10);
    /* after stop: refused, and the arg is released */
    cr_assert_eq(rt_work_submit2(consume_job, ms_arg(0), count_free, RT_NOPID), RT_ESTATE);
    cr_assert_eq(atomic_load(&args_freed), 11);
    stop_and_check_leaks();
}

/* ================================================================== sockets: echo server */

enum { CLIENTS = 20, ROUNDS = 100, MSG_LEN = 64 };

/* A connection process: echoes what it reads, in {active, once} mode re-armed on PASSIVE. */
typedef struct { rt_sock_t sock; } conn_t;
static int conn_init(void *st, void *arg)
{
    ((conn_t *)st)->sock = *(rt_sock_t *)arg;
    return 0;
}
static int conn_handle(void *st, rt_msg_t *m)
{
    conn_t *c = st;
    if (m->type == T_GO) { /* we own the socket now: claim it and start reading */
        RT_ASSERT(rt_sock_set_active(c->sock, RT_SOCK_ONCE) == 0);
        return RT_CONTINUE;
    }
    const rt_sock_event_t *ev = rt_sock_event(m);
    if (!ev)
        return RT_CONTINUE;
    switch (ev->kind) {
    case RT_SOCK_DATA:
        RT_ASSERT(rt_sock_send(c->sock, ev->data, ev->len) == 0);
        return RT_CONTINUE;
    case RT_SOCK_PASSIVE_EV:
        rt_sock_set_active(c->sock, RT_SOCK_ONCE);
        return RT_CONTINUE;
    case RT_SOCK_CLOSED:
    case RT_SOCK_ERROR:
        rt_sock_close(c->sock);
        return RT_STOP;
    default:
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t conn_beh = {.name = "conn", .state_size = sizeof(conn_t),
                                        .init = conn_init, .handle = conn_handle};

/* The listener process: one connection process per accepted socket. */
typedef struct { rt_sock_t sock; unsigned accepted; } listener_t;
static int listener_init(void *st, void *arg)
{
    listener_t *l = st;
    if (rt_tcp_listen("127.0.0.1", 0, 64, &l->sock) != 0)
        return RT_REASON_USER;
    *(int *)arg = rt_sock_local_port(l->sock);
    return 0;
}
static int listener_handle(void *st, rt_msg_t *m)
{
    listener_t *l = st;
    const rt_sock_event_t *ev = rt_sock_event(m);
    if (!ev || ev->kind != RT_SOCK_ACCEPTED)
        return RT_CONTINUE;
    RT_ASSERT(ev->listener == l->sock);
    l->accepted++;
    rt_sock_t s = ev->sock;
    rt_pid_t conn;
    RT_ASSERT(rt_spawn(&conn_beh, &s, &conn) == 0);
    RT_ASSERT(rt_sock_controlling_process(s, conn) == 0);
    rt_send(conn, rt_msg_new(T_GO, 0));
    return RT_CONTINUE;
}
static const rt_behaviour_t listener_beh = {.name = "listener", .state_size = sizeof(listener_t),
                                            .init = listener_init, .handle = listener_handle};

/* A client process: ROUNDS round trips of MSG_LEN bytes, checked byte by byte. */
typedef struct { int port; unsigned index; rt_pid_t report; } client_arg_t;
typedef struct {
    rt_sock_t sock;
    unsigned index, round, got;
    rt_pid_t report;
} client_t;
static unsigned char pattern(unsigned client, unsigned round, unsigned i)
{
    return (unsigned char)(client * 31 + round * 7 + i);
}
static void client_send_round(client_t *c)
{
    unsigned char buf[MSG_LEN];
    for (unsigned i = 0; i < MSG_LEN; i++)
        buf[i] = pattern(c->index, c->round, i);
    RT_ASSERT(rt_sock_send(c->sock, buf, sizeof buf) == 0);
}
static void client_report(client_t *c, int64_t ok)
{
    rt_sock_close(c->sock);
    rt_send(c->report, rt_work_done(c->index, ok));
}
static int client_init(void *st, void *arg)
{
    client_t *c = st;
    const client_arg_t *a = arg;
    c->index = a->index;
    c->report = a->report;
    if (rt_tcp_connect("127.0.0.1", a->port, &c->sock) != 0)
        return RT_REASON_USER;
    rt_sock_set_active(c->sock, RT_SOCK_ACTIVE);
    client_send_round(c); /* written as soon as the connection is up */
    return 0;
}
static int client_handle(void *st, rt_msg_t *m)
{
    client_t *c = st;
    const rt_sock_event_t *ev = rt_sock_event(m);
    if (!ev || ev->kind == RT_SOCK_CONNECTED)
        return RT_CONTINUE;
    if (ev->kind != RT_SOCK_DATA) {
        client_report(c, -1000 - ev->kind);
        return RT_STOP;
    }
    for (uint32_t i = 0; i < ev->len; i++) {
        if (ev->data[i] != pattern(c->index, c->round, c->got + i)) {
            client_report(c, -1);
            return RT_STOP;
        }
    }
    c->got += ev->len;
    RT_ASSERT(c->got <= MSG_LEN);
    if (c->got < MSG_LEN)
        return RT_CONTINUE;
    c->got = 0;
    if (++c->round == ROUNDS) {
        client_report(c, ROUNDS);
        return RT_STOP;
    }
    client_send_round(c);
    return RT_CONTINUE;
}
static const rt_behaviour_t client_beh = {.name = "client", .state_size = sizeof(client_t),
                                          .init = client_init, .handle = client_handle};

static bool only_one_socket(void) { return rt_sock_count() == 1; }
static bool no_sockets(void) { return rt_sock_count() == 0; }

static void echo_server_round_trips(void)
{
    int port = 0;
    rt_pid_t listener;
    cr_assert_eq(rt_spawn(&listener_beh, &port, &listener), 0);
    cr_assert_gt(port, 0);
    for (unsigned i = 0; i < CLIENTS; i++) {
        client_arg_t a = {port, i, rt_self()};
        cr_assert_eq(rt_spawn(&client_beh, &a, NULL), 0);
    }
    bool done[CLIENTS] = {0};
    for (unsigned n = 0; n < CLIENTS; n++) {
        rt_msg_t *m = recv_want(RT_MSG_WORK_DONE, 0, 0, 20000);
        cr_assert_not_null(m, "only %u of %u clients finished", n, CLIENTS);
        rt_work_done_t *d = (rt_work_done_t *)(void *)m->data;
        cr_assert_lt(d->tag, (uint64_t)CLIENTS);
        cr_assert_eq(d->result, ROUNDS, "client %llu failed: %lld", (unsigned long long)d->tag,
                     (long long)d->result);
        cr_assert_not(done[d->tag]);
        done[d->tag] = true;
        rt_msg_free(m);
    }
    /* clients closed their sockets; the connection processes see EOF and close theirs */
    cr_assert(wait_until(only_one_socket, 5000), "%u sockets open, want the listener only",
              rt_sock_count());
    rt_exit_signal(listener, RT_R_KILL);
    cr_assert(wait_until(no_sockets, 5000), "the listener's socket outlived it");
    stop_and_check_leaks();
}

Test(rt_io, echo_server_20_clients_100_round_trips) { echo_server_round_trips(); }

TestSuite(rt_io_thread, .init = start_io_thread, .fini = stop, .timeout = 30);

Test(rt_io_thread, echo_server_20_clients_100_round_trips) { echo_server_round_trips(); }

/* ================================================================== raw peers for the tests */

static int raw_connect(int port, int sndbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    if (sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Waits up to ms for EOF on fd (reading and discarding data). */
static bool raw_sees_eof(int fd, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    char buf[4096];
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return true; /* reset: closed too */
    }
}

/* Listens from the test thread and accepts one raw connection: returns the accepted id. */
static rt_sock_t listen_and_accept(rt_sock_t *listener, int *fd, int sndbuf)
{
    cr_assert_eq(rt_tcp_listen("127.0.0.1", 0, 0, listener), 0);
    int port = rt_sock_local_port(*listener);
    cr_assert_gt(port, 0);
    *fd = raw_connect(port, sndbuf);
    rt_msg_t *m = recv_want(RT_MSG_TCP, RT_SOCK_ACCEPTED, 0, 2000);
    cr_assert_not_null(m, "no ACCEPTED");
    cr_assert_eq(ev_of(m)->listener, *listener);
    rt_sock_t s = ev_of(m)->sock;
    cr_assert(rt_pid_eq(rt_sock_owner(s), rt_self()), "accepted sockets go to the listener's owner");
    rt_msg_free(m);
    return s;
}

static unsigned char stream_byte(size_t off) { return (unsigned char)(off * 7 + (off >> 12)); }

Test(rt_io, passive_socket_backs_up_the_peer)
{
    rt_sock_t lst;
    int fd;
    rt_sock_t s = listen_and_accept(&lst, &fd, 32 * 1024);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    /* The accepted socket is passive: write until the peer's buffers are full. */
    static unsigned char chunk[16384];
    size_t sent = 0;
    uint64_t end = now_ms() + 5000;
    for (;;) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = stream_byte(sent + i);
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "send: %s", strerror(errno));
            sleep_ms(50); /* a last chance for a reader to drain anything */
            n = send(fd, chunk, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0)
                break;
        }
        sent += (size_t)n;
        cr_assert_lt(sent, (size_t)64 << 20, "64 MiB went through a passive socket");
        cr_assert_lt(now_ms(), end);
    }
    cr_assert_gt(sent, 0);
    cr_assert_null(recv_want(RT_MSG_TCP, RT_SOCK_DATA, s, 200), "DATA while passive");

    /* once: exactly one DATA, then PASSIVE and silence again */
    cr_assert_eq(rt_sock_set_active(s, RT_SOCK_ONCE), 0);
    rt_msg_t *m = recv_want(RT_MSG_TCP, 0, s, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(ev_of(m)->kind, RT_SOCK_DATA);
    size_t got = 0;
    for (uint32_t i = 0; i < ev_of(m)->len; i++)
        cr_assert_eq(ev_of(m)->data[i], stream_byte(got + i));
    got += ev_of(m)->len;
    rt_msg_free(m);
    m = recv_want(RT_MSG_TCP, 0, s, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(ev_of(m)->kind, RT_SOCK_PASSIVE_EV);
    rt_msg_free(m);
    cr_assert_null(recv_want(RT_MSG_TCP, RT_SOCK_DATA, s, 100), "DATA after the once was used");

    /* active: the rest arrives, in order, and the peer's EOF follows */
    cr_assert_eq(rt_sock_set_active(s, RT_SOCK_ACTIVE), 0);
    shutdown(fd, SHUT_WR);
    while (got < sent) {
        m = recv_want(RT_MSG_TCP, 0, s, 5000);
        cr_assert_not_null(m, "stalled at %zu of %zu bytes", got, sent);
        cr_assert_eq(ev_of(m)->kind, RT_SOCK_DATA);
        for (uint32_t i = 0; i < ev_of(m)->len; i++)
            cr_assert_eq(ev_of(m)->data[i], stream_byte(got + i), "byte %zu", got + i);
        got += ev_of(m)->len;
        rt_msg_free(m);
    }
    cr_assert_eq(got, sent);
    m = recv_want(RT_MSG_TCP, 0, s, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(ev_of(m)->kind, RT_SOCK_CLOSED);
    rt_msg_free(m);

    /* writes still work after the peer's half-close */
    cr_assert_eq(rt_sock_send(s, "bye", 3), 0);
    char buf[8];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 2000), 1);
    cr_assert_eq(recv(fd, buf, sizeof buf, 0), 3);
    cr_assert_eq(memcmp(buf, "bye", 3), 0);

    cr_assert_eq(rt_sock_close(s), 0);
    cr_assert(raw_sees_eof(fd, 2000));
    close(fd);
    cr_assert_eq(rt_sock_close(lst), 0);
    cr_assert(wait_until(no_sockets, 2000));
    stop_and_check_leaks();
}

/* ================================================================== owner death */

static rt_msg_t *ping_sync(rt_pid_t p)
{
    rt_msg_t *reply = NULL;
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_PING, 0), 2000, &reply, NULL), 0);
    return reply;
}

/* Holds a socket: claims it (set active) on T_GO; answers pings. */
typedef struct { rt_sock_t sock; } holder_t;
static int holder_init(void *st, void *arg)
{
    ((holder_t *)st)->sock = *(rt_sock_t *)arg;
    return 0;
}
static int holder_handle(void *st, rt_msg_t *m)
{
    holder_t *h = st;
    if (m->type == T_GO)
        RT_ASSERT(rt_sock_set_active(h->sock, RT_SOCK_ACTIVE) == 0);
    else if (m->type == T_PING && rt_is_call(m))
        rt_reply(rt_call_from(m), rt_msg_new(T_PONG, 0));
    return RT_CONTINUE;
}
static const rt_behaviour_t holder_beh = {.name = "holder", .state_size = sizeof(holder_t),
                                          .init = holder_init, .handle = holder_handle};

Test(rt_io, killing_the_owner_closes_its_socket)
{
    rt_sock_t lst;
    int fd;
    rt_sock_t s = listen_and_accept(&lst, &fd, 0);
    rt_pid_t holder;
    cr_assert_eq(rt_spawn(&holder_beh, &s, &holder), 0);
    cr_assert_eq(rt_sock_controlling_process(s, holder), 0);
    cr_assert(rt_pid_eq(rt_sock_owner(s), holder));
    cr_assert_eq(rt_sock_controlling_process(s, rt_self()), RT_ECALLER, "only the owner hands over");
    rt_send(holder, rt_msg_new(T_GO, 0));
    rt_msg_free(ping_sync(holder)); /* T_GO handled: the holder has claimed the socket */

    cr_assert_eq(rt_exit_signal(holder, RT_R_KILL), 0);
    cr_assert(raw_sees_eof(fd, 2000), "the peer never saw EOF");
    cr_assert_eq(rt_sock_send(s, "x", 1), RT_ENOTFOUND, "the id is stale once its owner died");
    close(fd);
    cr_assert(wait_until(only_one_socket, 2000));
    rt_sock_close(lst);
    stop_and_check_leaks();
}

Test(rt_io, owner_dying_before_claiming_still_closes)
{
    rt_sock_t lst;
    int fd;
    rt_sock_t s = listen_and_accept(&lst, &fd, 0);
    rt_pid_t holder;
    cr_assert_eq(rt_spawn(&holder_beh, &s, &holder), 0);
    cr_assert_eq(rt_sock_controlling_process(s, holder), 0);
    cr_assert_eq(rt_exit_signal(holder, RT_R_KILL), 0); /* never sent T_GO: never claimed */
    cr_assert(raw_sees_eof(fd, 2000), "an unclaimed socket outlived its owner");
    close(fd);
    cr_assert(wait_until(only_one_socket, 2000));
    rt_sock_close(lst);
    stop_and_check_leaks();
}

/* ================================================================== errors and stale ids */

static rt_msg_t *hand_over_from_worker(void *arg)
{
    rt_sock_t s = *(rt_sock_t *)arg;
    return rt_work_done(0, rt_sock_controlling_process(s, RT_NOPID) == RT_EINVAL &&
                                   rt_sock_controlling_process(s, (rt_pid_t){0, 1, 1}) == RT_ECALLER);
}

Test(rt_io, bad_input_and_port_in_use_are_clear_errors)
{
    rt_sock_t a, b;
    cr_assert_eq(rt_tcp_listen("127.0.0.1", 0, 0, &a), 0);
    int port = rt_sock_local_port(a);
    cr_assert_eq(rt_tcp_listen("127.0.0.1", port, 0, &b), RT_EADDRINUSE);
    cr_assert_eq(b, 0);
    cr_assert_str_eq(rt_strerror(RT_EADDRINUSE), "address already in use");
    cr_assert_eq(rt_tcp_listen("999.0.0.1", 0, 0, &b), RT_EINVAL);
    cr_assert_eq(rt_tcp_listen("not an address", 0, 0, &b), RT_EINVAL);
    cr_assert_eq(rt_tcp_listen("127.0.0.1", 70000, 0, &b), RT_EINVAL);
    cr_assert_eq(rt_tcp_listen("127.0.0.1", -1, 0, &b), RT_EINVAL);
    cr_assert_eq(rt_tcp_connect("127.0.0.1", 0, &b), RT_EINVAL);
    cr_assert_eq(rt_tcp_connect(NULL, port, &b), RT_EINVAL);
    cr_assert_eq(rt_sock_send(a, "x", 1), RT_EINVAL, "a listener cannot send");
    cr_assert_eq(rt_sock_set_active(a, -2), RT_EINVAL);

    /* a worker thread is nobody's owner */
    rt_work_submit(hand_over_from_worker, &a, rt_self());
    rt_msg_t *m = recv_want(RT_MSG_WORK_DONE, 0, 0, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(((rt_work_done_t *)(void *)m->data)->result, 1);
    rt_msg_free(m);

    /* connecting to a closed port: ERROR with ECONNREFUSED */
    cr_assert_eq(rt_sock_close(a), 0);
    cr_assert_eq(rt_tcp_connect("localhost", port, &b), 0);
    m = recv_want(RT_MSG_TCP, 0, b, 2000);
    cr_assert_not_null(m);
    cr_assert_eq(ev_of(m)->kind, RT_SOCK_ERROR);
    cr_assert_eq(ev_of(m)->status, RT_ECONNREFUSED, "status %d", ev_of(m)->status);
    rt_msg_free(m);
    cr_assert_eq(rt_sock_close(b), 0);

    /* stale ids stay stale, even when their slot is reused */
    cr_assert_eq(rt_sock_close(a), RT_ENOTFOUND);
    cr_assert_eq(rt_sock_set_active(a, RT_SOCK_ONCE), RT_ENOTFOUND);
    cr_assert_eq(rt_sock_send(b, "x", 1), RT_ENOTFOUND);
    cr_assert(wait_until(no_sockets, 2000));
    rt_sock_t c;
    cr_assert_eq(rt_tcp_listen(NULL, 0, 0, &c), 0);
    cr_assert_neq(c, a);
    cr_assert_neq(c, b);
    cr_assert_eq(rt_sock_close(a), RT_ENOTFOUND);
    cr_assert_eq(rt_sock_count(), 1);
    cr_assert_eq(rt_sock_close(c), 0);
    stop_and_check_leaks();
}

/* ================================================================== stop frees everything */

Test(rt_io, stop_with_open_sockets_frees_everything)
{
    rt_sock_t lst;
    int fd;
    rt_sock_t s = listen_and_accept(&lst, &fd, 0);
    cr_assert_eq(rt_sock_set_active(s, RT_SOCK_ACTIVE), 0);
    static unsigned char big[1 << 20];
    for (int i = 0; i < 8; i++) /* 8 MiB queued towards a peer that does not read */
        cr_assert_eq(rt_sock_send(s, big, sizeof big), 0);
    rt_sock_t pending;
    cr_assert_eq(rt_tcp_connect("127.0.0.1", rt_sock_local_port(lst), &pending), 0);
    rt_pid_t holder;
    cr_assert_eq(rt_spawn(&holder_beh, &s, &holder), 0);
    rt_stop(2000); /* owners die, the loop closes what is left; ASan checks the rest */
    cr_assert_eq(rt_sock_count(), 0);
    close(fd);
    stop_and_check_leaks();
}
