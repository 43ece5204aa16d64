/*
 * event_engine — the event engine shared by cairn-bench and etcd-bench: host resolution,
 * non-blocking connects with failover, the 10 ms pause after a connection error, request
 * writing, answer reading and deadlines, over one epoll set per loop thread (see
 * event_engine.h; the protocol and the counting are the programs', through ee_ops_t).
 */
#include "bench/event_engine.h"

#include "bench/bench_common.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EV_BATCH 256                    /* events taken per epoll_wait */
#define EV_READ_CHUNK 16384u            /* free space offered to each recv */
#define EV_MAX_NAP_NS 50000000ull       /* idle loops look at the stop flag every 50 ms */
#define RETRY_SLEEP_NS 10000000ull      /* after a connection-class error: 10 ms */
#define CONNECT_TIMEOUT_MS 2000u        /* per address tried */

/* ------------------------------------------------------------------ nodes
 *
 * Resolved once at setup. Every address of every node goes into one list, in host-list
 * order; a connection tries them from its node's first address on and wraps around once. */

struct ee_node {
    char label[300];                /* "host:port" as the user would write it */
    unsigned first_target;          /* its first address in targets */
};

struct ee_target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned node;                  /* index in nodes */
};

/* Splits one host-list entry s[0..len) into host and port; false with *why on a bad entry. */
static bool parse_entry(const char *s, size_t len, const char *default_port, char *host,
                        size_t host_cap, char *port, size_t port_cap, char *why, size_t why_len)
{
    const char *h = s, *p = NULL;
    size_t h_len = len, p_len = 0;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || (close + 1 < s + len && close[1] != ':')) {
            snprintf(why, why_len, "'%.*s': expected [address] or [address]:port", (int)len, s);
            return false;
        }
        h = s + 1;
        h_len = (size_t)(close - h);
        if (close + 1 < s + len) {
            p = close + 2;
            p_len = (size_t)(s + len - p);
        }
    } else {
        const char *colon = memchr(s, ':', len);
        /* One colon separates the port; more than one is a bare IPv6 address. */
        if (colon && !memchr(colon + 1, ':', (size_t)(s + len - colon - 1))) {
            h_len = (size_t)(colon - s);
            p = colon + 1;
            p_len = (size_t)(s + len - p);
        }
    }
    unsigned long port_num = 0;
    for (size_t i = 0; p && i < p_len && port_num <= 65535; i++)
        port_num = (p[i] >= '0' && p[i] <= '9') ? port_num * 10 + (unsigned long)(p[i] - '0')
                                                : 65536;
    if (h_len == 0 || h_len >= host_cap ||
        (p && (p_len == 0 || port_num == 0 || port_num > 65535))) {
        snprintf(why, why_len, "'%.*s': expected host:port with a port in 1-65535", (int)len,
                 s);
        return false;
    }
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    if (p)
        snprintf(port, port_cap, "%lu", port_num);
    else
        snprintf(port, port_cap, "%s", default_port);
    return true;
}

/* Fills nodes and targets from the host list. A node that does not resolve is reported on
 * stderr and skipped; 0, or -1 (message printed) if the list is bad or nothing resolves. */
static int resolve_hosts(ee_engine_t *e)
{
    const char *prog = e->cfg.prog, *hosts = e->cfg.hosts;
    size_t cap = 1;
    for (const char *q = hosts; *q; q++)
        cap += *q == ',';
    e->nodes = calloc(cap, sizeof *e->nodes);
    if (!e->nodes) {
        fprintf(stderr, "%s: out of memory for the host list\n", prog);
        return -1;
    }
    const char *entry = hosts;
    for (;;) {
        const char *end = strchr(entry, ',');
        if (!end)
            end = entry + strlen(entry);
        const char *b = entry, *en = end;
        while (b < en && (*b == ' ' || *b == '\t'))
            b++;
        while (en > b && (en[-1] == ' ' || en[-1] == '\t'))
            en--;
        char host[256], port[8], why[EE_WHY_LEN];
        if (b == en) {
            fprintf(stderr, "%s: empty entry in host list '%s'\n", prog, hosts);
            return -1;
        }
        if (!parse_entry(b, (size_t)(en - b), e->cfg.default_port, host, sizeof host, port,
                         sizeof port, why, sizeof why)) {
            fprintf(stderr, "%s: host list: %s\n", prog, why);
            return -1;
        }
        struct ee_node *node = &e->nodes[e->n_nodes];
        snprintf(node->label, sizeof node->label, strchr(host, ':') ? "[%s]:%s" : "%s:%s",
                 host, port);
        node->first_target = e->n_targets;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0)
            fprintf(stderr, "%s: %s: %s (skipped)\n", prog, node->label, gai_strerror(gai));
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(struct sockaddr_storage))
                continue;
            struct ee_target *grown =
                realloc(e->targets, (e->n_targets + 1) * sizeof *grown);
            if (!grown) {
                freeaddrinfo(res);
                fprintf(stderr, "%s: out of memory for the host list\n", prog);
                return -1;
            }
            e->targets = grown;
            struct ee_target *t = &e->targets[e->n_targets++];
            memset(t, 0, sizeof *t);
            memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
            t->addr_len = ai->ai_addrlen;
            t->node = e->n_nodes;
        }
        if (res)
            freeaddrinfo(res);
        e->n_nodes++;
        if (!*end)
            break;
        entry = end + 1;
    }
    if (e->n_targets == 0) {
        fprintf(stderr, "%s: no %s of '%s' resolves to an address\n", prog, e->cfg.node_noun,
                hosts);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ connections */

const char *ee_label(const ee_conn_t *c)
{
    return c->loop->eng->nodes[c->node].label;
}

static void arm_timer(ee_loop_t *loop, uint64_t at)
{
    if (at < loop->next_timer_ns)
        loop->next_timer_ns = at;
}

void ee_close(ee_conn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set: the fd is never duplicated */
        c->fd = -1;
    }
    c->want_out = false;
    c->in.len = 0;
}

static void set_out_interest(ee_conn_t *c, bool want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = want;
}

/* Is the idle connection still usable (no EOF, no bytes nobody asked for)? libcairn checks
 * the same before each request; the engine checks at the start of each phase. */
static bool conn_alive(const ee_conn_t *c)
{
    char byte;
    ssize_t got = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

void ee_done(ee_conn_t *c)
{
    c->state = EE_DONE;
    c->loop->active--;
}

void ee_fail(ee_conn_t *c, int code, bool close_conn, const char *fmt, ...)
{
    char detail[EE_WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ee_loop_t *loop = c->loop;
    const ee_engine_t *e = loop->eng;
    e->cfg.ops->failed(c, code, detail);
    c->out.len = c->out_sent = 0;
    if (close_conn) {
        ee_close(c);
        if (e->cfg.failover == EE_FAILOVER_ON_ERROR && code != e->cfg.err_connect)
            c->node = (c->node + 1) % e->n_nodes; /* the next request tries another */
    }
    if (code == e->cfg.err_connect || code == e->cfg.err_io) {
        c->state = EE_BACKOFF; /* do not spin against a node that is down */
        c->timer_ns = bench_now_ns() + RETRY_SLEEP_NS;
        arm_timer(loop, c->timer_ns);
    } else {
        c->state = EE_IDLE;
        loop->need_scan = true;
    }
}

/* The address being tried failed: note why and move to the next one. */
static void target_failed(ee_conn_t *c, const char *why)
{
    const ee_engine_t *e = c->loop->eng;
    if (c->connect_why[0])
        bench_append_text(c->connect_why, sizeof c->connect_why, "; ");
    bench_append_text(c->connect_why, sizeof c->connect_why,
                e->nodes[e->targets[c->target].node].label);
    bench_append_text(c->connect_why, sizeof c->connect_why, ": ");
    bench_append_text(c->connect_why, sizeof c->connect_why, why);
    c->target = (c->target + 1) % e->n_targets;
    c->targets_tried++;
}

static void conn_write(ee_conn_t *c);

/* Connected to c->target: send the pending request, if any. */
static void connected(ee_conn_t *c)
{
    bench_tune_socket(c->fd);
    c->node = c->loop->eng->targets[c->target].node;
    if (c->out.len > 0) {
        conn_write(c);
    } else {
        set_out_interest(c, false);
        c->state = EE_IDLE;
        c->loop->need_scan = true;
    }
}

/* Tries the addresses from c->target on until one connects or is in progress; after the last
 * one, the request fails with err_connect. */
static void connect_next(ee_conn_t *c)
{
    const ee_engine_t *e = c->loop->eng;
    while (c->targets_tried < e->n_targets) {
        char why[EE_WHY_LEN];
        int fd = -1;
        const struct ee_target *t = &e->targets[c->target];
        int r = bench_open_nonblocking(&t->addr, t->addr_len, &fd, why, sizeof why);
        if (r >= 0) {
            struct epoll_event ev = {.events = EPOLLIN | (r == 1 ? EPOLLOUT : 0u),
                                     .data.ptr = c};
            if (epoll_ctl(c->loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
                c->fd = fd;
                c->want_out = r == 1;
                if (r == 0) {
                    connected(c);
                } else {
                    c->state = EE_CONNECTING;
                    c->timer_ns = bench_now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
                    arm_timer(c->loop, c->timer_ns);
                }
                return;
            }
            snprintf(why, sizeof why, "epoll_ctl: %s", strerror(errno));
            close(fd);
        }
        target_failed(c, why);
    }
    ee_fail(c, e->cfg.err_connect, false, "%s", c->connect_why);
}

/* A round of attempts starting at the first address of node `start`. */
static void connect_start(ee_conn_t *c, unsigned start)
{
    const ee_engine_t *e = c->loop->eng;
    c->targets_tried = 0;
    c->target = e->nodes[start].first_target % e->n_targets;
    c->connect_why[0] = '\0';
    connect_next(c);
}

/* The in-progress connect finished (writable or an error) or timed out (timed_out). */
static void connect_finished(ee_conn_t *c, bool timed_out)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (timed_out)
        err = ETIMEDOUT;
    else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        connected(c);
        return;
    }
    ee_close(c);
    target_failed(c, err == ETIMEDOUT ? "connect timed out" : strerror(err));
    connect_next(c);
}

int ee_connect_sync(ee_engine_t *e, unsigned i)
{
    ee_conn_t *c = &e->conns[i];
    c->targets_tried = 0;
    c->target = e->nodes[c->node].first_target % e->n_targets;
    c->connect_why[0] = '\0';
    while (c->targets_tried < e->n_targets) {
        char why[EE_WHY_LEN];
        int fd = -1;
        const struct ee_target *t = &e->targets[c->target];
        int r = bench_open_nonblocking(&t->addr, t->addr_len, &fd, why, sizeof why);
        if (r == 1) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int n;
            do
                n = poll(&pfd, 1, (int)CONNECT_TIMEOUT_MS);
            while (n < 0 && errno == EINTR);
            int err = n == 0 ? ETIMEDOUT : n < 0 ? errno : 0;
            socklen_t len = sizeof err;
            if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            if (err) {
                snprintf(why, sizeof why, "%s",
                         err == ETIMEDOUT ? "connect timed out" : strerror(err));
                close(fd);
                r = -1;
            }
        }
        if (r >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(c->loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
                bench_tune_socket(fd);
                c->fd = fd;
                c->want_out = false;
                c->node = e->targets[c->target].node;
                return 0;
            }
            snprintf(why, sizeof why, "epoll_ctl: %s", strerror(errno));
            close(fd);
        }
        target_failed(c, why);
    }
    return -1;
}

/* ------------------------------------------------------------------ requests and answers */

void ee_send(ee_conn_t *c)
{
    const ee_engine_t *e = c->loop->eng;
    c->may_resend = true;
    c->req_deadline_ns = c->t_req_ns + e->cfg.request_timeout_ns;
    arm_timer(c->loop, c->req_deadline_ns);
    if (c->fd >= 0)
        conn_write(c);
    else if (e->cfg.failover == EE_FAILOVER_ON_RECONNECT)
        connect_start(c, (c->node + 1) % e->n_nodes);
    else
        connect_start(c, c->node);
}

/* Writes what is left of c->out; WAITING once all of it is out, SENDING while the socket is
 * full. */
static void conn_write(ee_conn_t *c)
{
    const ee_engine_t *e = c->loop->eng;
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->state = EE_SENDING;
            set_out_interest(c, true);
            return;
        }
        int err = n < 0 ? errno : EPIPE;
        if (c->out_sent == 0 && c->may_resend) {
            /* Nothing left: the request was never seen. Once more, on the next node. */
            c->may_resend = false;
            ee_close(c);
            connect_start(c, (c->node + 1) % e->n_nodes);
            return;
        }
        if (c->out_sent > 0 && e->cfg.ops->after_break && e->cfg.ops->after_break(c))
            return;
        ee_fail(c, e->cfg.err_io, true, "%s: send: %s", ee_label(c), strerror(err));
        return;
    }
    c->state = EE_WAITING;
    set_out_interest(c, false);
}

/* The socket is readable (or has an error or a hang-up). */
static void conn_readable(ee_conn_t *c)
{
    const ee_engine_t *e = c->loop->eng;
    if (c->state != EE_SENDING && c->state != EE_WAITING) {
        /* No request in flight: the server closed the connection or sent bytes nobody asked
         * for. Either way it cannot carry the next request: close it, and the next request
         * reconnects (what libcairn's check before each request does). */
        ee_close(c);
        return;
    }
    if (!pbf_buf_reserve(&c->in, EV_READ_CHUNK)) {
        ee_fail(c, e->cfg.err_nomem, true, "no memory for an answer");
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n == 0) {
        ee_fail(c, e->cfg.err_io, true, "%s: connection closed by the server", ee_label(c));
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return; /* level-triggered: it comes back */
        ee_fail(c, e->cfg.err_io, true, "%s: receive: %s", ee_label(c), strerror(errno));
        return;
    }
    c->in.len += (size_t)n;
    size_t answer_len = 0;
    if (e->cfg.ops->parse(c, &answer_len) != EE_PARSE_ANSWER)
        return;
    if (answer_len != c->in.len) {
        ee_fail(c, e->cfg.err_proto, true, "%s: bytes nobody asked for after the answer",
                ee_label(c));
        return;
    }
    c->in.len = 0; /* the answer's bytes stay: nothing writes into c->in until the next recv */
    e->cfg.ops->answer(c, c->state == EE_SENDING);
}

static void on_event(ee_conn_t *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    switch (c->state) {
    case EE_CONNECTING:
        connect_finished(c, false);
        return;
    case EE_SENDING:
        /* Read first: an early answer (a refusal) or an error explains a stalled send. */
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            conn_readable(c);
            if (c->state != EE_SENDING)
                return;
        }
        if (events & EPOLLOUT)
            conn_write(c);
        return;
    default:
        conn_readable(c);
        return;
    }
}

/* ------------------------------------------------------------------ loops */

/* Serves what waits on time or on the loop: new requests of idle connections, the end of a
 * pause, connect and request deadlines. Recomputes the loop's next timer. */
static void scan(ee_loop_t *loop, uint64_t now)
{
    const ee_engine_t *e = loop->eng;
    loop->need_scan = false;
    bool stopping = atomic_load_explicit(e->cfg.stop, memory_order_relaxed);
    uint64_t next = now + EV_MAX_NAP_NS;
    for (unsigned i = 0; i < loop->n_conns; i++) {
        ee_conn_t *c = loop->conns[i];
        switch (c->state) {
        case EE_IDLE:
            e->cfg.ops->issue(c);
            break;
        case EE_BACKOFF:
            if (stopping || now >= c->timer_ns)
                e->cfg.ops->issue(c);
            break;
        case EE_CONNECTING:
            if (now >= c->timer_ns)
                connect_finished(c, true);
            break;
        case EE_SENDING:
        case EE_WAITING:
            if (now >= c->req_deadline_ns)
                ee_fail(c, e->cfg.err_timeout, true, "%s: %s", ee_label(c),
                        e->cfg.timeout_why);
            break;
        case EE_DONE:
            break;
        }
        if ((c->state == EE_BACKOFF || c->state == EE_CONNECTING) && c->timer_ns < next)
            next = c->timer_ns;
        if ((c->state == EE_SENDING || c->state == EE_WAITING) && c->req_deadline_ns < next)
            next = c->req_deadline_ns;
    }
    loop->next_timer_ns = next;
}

void ee_loop_run(ee_loop_t *loop)
{
    const ee_engine_t *e = loop->eng;
    struct epoll_event evs[EV_BATCH];
    loop->active = loop->n_conns;
    loop->next_timer_ns = bench_now_ns() + EV_MAX_NAP_NS;
    loop->need_scan = false;
    for (unsigned i = 0; i < loop->n_conns; i++) {
        ee_conn_t *c = loop->conns[i];
        c->state = EE_IDLE;
        if (c->fd >= 0 && !conn_alive(c))
            ee_close(c); /* closed between phases: reconnect quietly, as libcairn would */
    }
    for (unsigned i = 0; i < loop->n_conns; i++)
        e->cfg.ops->issue(loop->conns[i]);
    while (loop->active > 0) {
        uint64_t now = bench_now_ns();
        int timeout_ms = 0;
        if (!loop->need_scan && loop->next_timer_ns > now)
            timeout_ms = (int)((loop->next_timer_ns - now + 999999) / 1000000);
        int n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout_ms);
        if (n < 0 && errno != EINTR) {
            int err = errno;
            fprintf(stderr, "%s: epoll_wait (loop %u): %s; stopping the run\n", e->cfg.prog,
                    loop->id, strerror(err));
            atomic_store(e->cfg.stop, true);
            for (unsigned i = 0; i < loop->n_conns; i++) {
                ee_conn_t *c = loop->conns[i];
                if (c->state == EE_CONNECTING || c->state == EE_SENDING ||
                    c->state == EE_WAITING)
                    ee_fail(c, e->cfg.err_io, true, "event loop failed: epoll_wait: %s",
                            strerror(err));
            }
            break;
        }
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
        now = bench_now_ns();
        if (loop->need_scan || now >= loop->next_timer_ns)
            scan(loop, now);
    }
}

/* ------------------------------------------------------------------ setup and teardown */

int ee_setup(ee_engine_t *e, const ee_config_t *cfg)
{
    e->cfg = *cfg;
    if (resolve_hosts(e) != 0)
        return -1;
    e->conns = calloc(cfg->concurrency, sizeof *e->conns);
    for (unsigned i = 0; e->conns && i < cfg->concurrency; i++)
        e->conns[i].fd = -1;
    e->loops = calloc(cfg->threads, sizeof *e->loops);
    for (unsigned t = 0; e->loops && t < cfg->threads; t++)
        e->loops[t].epfd = -1;
    e->user = calloc(cfg->concurrency, cfg->conn_user_size ? cfg->conn_user_size : 1);
    if (!e->conns || !e->loops || !e->user) {
        fprintf(stderr, "%s: out of memory for %u connections\n", cfg->prog,
                cfg->concurrency);
        return -1;
    }
    for (unsigned t = 0; t < cfg->threads; t++) {
        ee_loop_t *loop = &e->loops[t];
        loop->eng = e;
        loop->id = t;
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        loop->conns = calloc(cfg->concurrency / cfg->threads + 1, sizeof *loop->conns);
        if (loop->epfd < 0 || !loop->conns) {
            fprintf(stderr, "%s: cannot set up event loop %u: %s\n", cfg->prog, t,
                    loop->epfd < 0 ? strerror(errno) : "out of memory");
            return -1;
        }
    }
    for (unsigned i = 0; i < cfg->concurrency; i++) {
        ee_conn_t *c = &e->conns[i];
        ee_loop_t *loop = &e->loops[i % cfg->threads];
        c->id = i;
        c->loop = loop;
        c->user = e->user + (size_t)i * cfg->conn_user_size;
        c->state = EE_DONE;
        c->node = cfg->spread ? i % e->n_nodes : 0;
        loop->conns[loop->n_conns++] = c;
    }
    return 0;
}

void ee_teardown(ee_engine_t *e)
{
    for (unsigned t = 0; e->loops && t < e->cfg.threads; t++) {
        if (e->loops[t].epfd >= 0)
            close(e->loops[t].epfd);
        free(e->loops[t].conns);
    }
    for (unsigned i = 0; e->conns && i < e->cfg.concurrency; i++) {
        ee_close(&e->conns[i]);
        pbf_buf_free(&e->conns[i].out);
        pbf_buf_free(&e->conns[i].in);
    }
    free(e->loops);
    free(e->conns);
    free(e->user);
    free(e->nodes);
    free(e->targets);
    memset(e, 0, sizeof *e);
}
