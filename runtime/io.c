/*
 * io.c — process-owned TCP sockets on the loop thread (API and semantics in runtime/io.h).
 *
 * Owns: the socket table (slots with generation counters, guarded by S.mx), each socket's
 * libuv handle and loop-side state (sock_t, touched only on the loop thread once created),
 * the owners' leases (rt_own resources that close a socket when its owner exits), and the
 * sweep timer that closes sockets whose new owner died before claiming them.
 *
 * Threads. The public calls run on any thread: they validate the id under S.mx, update what
 * the slot holds (owner, lease, send-queue size) and post the real work to the loop with
 * rt__loop_call; nothing waits for the loop. The loop thread alone creates handles, reads,
 * writes, closes and frees sock_t. A slot is freed (its generation bumped) only when its
 * handle's close callback has run, so a loop job that names an id finds either the same
 * socket or nothing.
 *
 * Lifetime of a slot: used (id valid) -> !used (closed or owner gone; close job posted)
 * -> free (handle closed, gen++). Leases never own the slot: a lease is freed by its release
 * (the owner exited) or by its holder (close, hand-over); the slot only remembers it.
 */
#include "runtime/io.h"
#include "runtime/rt_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

enum {
    SLOT_CHUNK = 1024,       /* slots per chunk: chunks never move once allocated */
    SLOT_CHUNKS_MAX = 1024,  /* so at most 1M sockets at once */
    SWEEP_MS = 100,          /* how often unclaimed sockets' owners are checked */
    READ_BUF = 64 * 1024,
    DEFAULT_BACKLOG = 128,
};

/* The loop-side state of one socket. Allocated by whoever creates the socket, then touched
 * only on the loop thread; freed by the handle's close callback (or by rt__io_free). */
typedef struct sock {
    uv_tcp_t tcp;             /* tcp.data = this */
    uv_connect_t connect_req;
    rt_sock_t id;
    bool listener;
    bool handle_ready;        /* uv_tcp_init done: must be closed with uv_close */
    bool connecting;
    bool connected;
    bool read_done;           /* EOF or read error: reading is over */
    bool reading;             /* uv_read_start in effect */
    bool closing;
    int active;               /* RT_SOCK_PASSIVE / ACTIVE / a remaining count */
    int fd;                   /* listener: the bound fd until the loop adopts it, else -1 */
    int backlog;
    struct sockaddr_storage peer; /* connect target */
} sock_t;

/* An owner's tie to a socket, registered with rt_own in the owner's context. */
typedef struct lease {
    rt_sock_t id;
} lease_t;

typedef struct slot {
    uint32_t gen;
    bool used;          /* the id is valid for the API */
    bool listener;
    bool unclaimed;     /* owner set, but it holds no lease yet */
    sock_t *sock;       /* non-NULL from creation until the handle is closed */
    rt_pid_t owner;
    lease_t *lease;     /* the owner's lease, if claimed (freed only by its holder/release) */
    rt_res_t lease_res;
    rt_pid_t lease_pid;
    size_t send_queue;  /* bytes handed to rt_sock_send, not yet written */
    int wfd;            /* connected: the fd rt_sock_send may write to directly; else -1.
                         * Written under S.mx and wmx both; read under either. */
    pthread_mutex_t wmx;/* held across a direct write (a zeroed mutex is a valid one) */
    int local_port;
    uint32_t next_free;
} slot_t;

static struct {
    pthread_mutex_t mx;
    slot_t *chunks[SLOT_CHUNKS_MAX];
    uint32_t hwm;            /* slots ever used */
    uint32_t free_head;      /* UINT32_MAX: none (valid once hwm > 0) */
    unsigned count;          /* used slots */
    unsigned unclaimed;      /* used && unclaimed */
    /* loop thread only */
    uv_timer_t sweep;
    bool sweep_ready, sweep_on;
    bool sigpipe_blocked;
} S = {.mx = PTHREAD_MUTEX_INITIALIZER};

static char read_buf[READ_BUF]; /* loop thread only: every read lands here, then is copied */

/* ------------------------------------------------------------------ the table (S.mx held) */

static slot_t *slot_at(uint32_t idx) { return &S.chunks[idx / SLOT_CHUNK][idx % SLOT_CHUNK]; }

static rt_sock_t id_of(uint32_t idx) { return ((uint64_t)slot_at(idx)->gen << 32) | (idx + 1); }

/* The slot the id names, whatever its state, or NULL if the id is stale. */
static slot_t *slot_get(rt_sock_t id)
{
    uint32_t idx = (uint32_t)id - 1, gen = (uint32_t)(id >> 32);
    if ((uint32_t)id == 0 || idx >= S.hwm)
        return NULL;
    slot_t *s = slot_at(idx);
    return s->gen == gen && s->sock ? s : NULL;
}

/* The slot, if the id is valid for the API (not closed). */
static slot_t *slot_live(rt_sock_t id)
{
    slot_t *s = slot_get(id);
    return s && s->used ? s : NULL;
}

static int slot_alloc(sock_t *k, rt_pid_t owner, bool listener, rt_sock_t *out)
{
    uint32_t idx;
    if (S.hwm > 0 && S.free_head != UINT32_MAX) {
        idx = S.free_head;
        S.free_head = slot_at(idx)->next_free;
    } else {
        if (S.hwm == 0)
            S.free_head = UINT32_MAX;
        if (S.hwm == (uint32_t)SLOT_CHUNK * SLOT_CHUNKS_MAX)
            return RT_ELIMIT;
        idx = S.hwm;
        if (idx % SLOT_CHUNK == 0)
            S.chunks[idx / SLOT_CHUNK] = rt__xcalloc(SLOT_CHUNK, sizeof(slot_t));
        S.hwm++;
        slot_at(idx)->gen = 1;
    }
    slot_t *s = slot_at(idx);
    uint32_t gen = s->gen;
    pthread_mutex_t wmx = s->wmx; /* the slot's lifetime mutex survives reuse */
    *s = (slot_t){.gen = gen, .used = true, .listener = listener, .sock = k, .owner = owner,
                  .wfd = -1, .wmx = wmx};
    S.count++;
    k->id = *out = id_of(idx);
    return 0;
}

/* Makes the id stale for the API (the handle is still to be closed). */
static void slot_retire(slot_t *s)
{
    if (!s->used)
        return;
    s->used = false;
    pthread_mutex_lock(&s->wmx); /* waits out a direct write in progress */
    s->wfd = -1;
    pthread_mutex_unlock(&s->wmx);
    if (s->unclaimed)
        S.unclaimed--;
    s->unclaimed = false;
    s->lease = NULL; /* its holder frees it (rt_sock_close) or its release does */
    S.count--;
}

static void slot_free(rt_sock_t id)
{
    slot_t *s = slot_get(id);
    if (!s)
        return;
    slot_retire(s);
    uint32_t idx = (uint32_t)id - 1;
    s->sock = NULL;
    s->owner = RT_NOPID;
    if (++s->gen == 0)
        s->gen = 1;
    s->next_free = S.free_head;
    S.free_head = idx;
}

/* ------------------------------------------------------------------ leases */

static void lease_release(void *obj);

/* The caller's pid without creating a mailbox for threads that never had one. */
static rt_pid_t caller_pid(void)
{
    if (rt__tls.cur || rt__tls.thread_proc)
        return rt_self();
    return RT_NOPID;
}

/* If the caller is the owner and holds no lease yet, registers one (S.mx held). */
static void claim_if_owner(slot_t *s, rt_sock_t id)
{
    if (!s->unclaimed)
        return;
    rt_pid_t me = caller_pid();
    if (rt_pid_is_nil(me) || !rt_pid_eq(me, s->owner))
        return;
    lease_t *l = rt__xmalloc(sizeof *l);
    l->id = id;
    rt_res_t h = rt_own(lease_release, l);
    if (h == 0) {
        free(l);
        return;
    }
    s->lease = l;
    s->lease_res = h;
    s->lease_pid = me;
    s->unclaimed = false;
    S.unclaimed--;
}

/* The caller gives up its lease, if it holds the slot's (S.mx held). */
static void drop_own_lease(slot_t *s)
{
    if (!s->lease || !rt_pid_eq(s->lease_pid, caller_pid()))
        return;
    rt_disown(s->lease_res);
    free(s->lease);
    s->lease = NULL;
}

/* ------------------------------------------------------------------ loop jobs */

enum { OP_OPEN_LISTENER, OP_CONNECT, OP_SET_ACTIVE, OP_WRITE, OP_CLOSE, OP_SWEEP };

/* One piece of work for the loop; a WRITE job is also the libuv write request. */
typedef struct io_job {
    uv_write_t wr;      /* first: the write callback gets &wr */
    int op;
    rt_sock_t id;
    int mode;
    size_t len;
    unsigned char data[];
} io_job_t;

static void run_job(void *arg);

static void post(int op, rt_sock_t id, int mode, const void *data, size_t len)
{
    io_job_t *j = rt__xmalloc(sizeof *j + len);
    j->op = op;
    j->id = id;
    j->mode = mode;
    j->len = len;
    if (len)
        memcpy(j->data, data, len);
    rt__loop_call(run_job, j);
}

static void lease_release(void *obj)
{
    lease_t *l = obj;
    bool close = false;
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(l->id);
    if (s && s->lease == l) {
        slot_retire(s);
        close = true;
    }
    pthread_mutex_unlock(&S.mx);
    if (close)
        post(OP_CLOSE, l->id, 0, NULL, 0);
    free(l);
}

/* ------------------------------------------------------------------ errors */

static int rt_code_of(int uverr)
{
    switch (uverr) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
        return RT_ECONNREFUSED;
    case UV_ETIMEDOUT:
        return RT_ETIMEDOUT;
    case UV_EADDRINUSE:
        return RT_EADDRINUSE;
    case UV_EINVAL:
    case UV_EAFNOSUPPORT:
    case UV_EADDRNOTAVAIL:
        return RT_EINVAL;
    case UV_ENOTCONN:
        return RT_ENOTCONN;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return RT_ENOMEM;
    default:
        return RT_EIO;
    }
}

/* ------------------------------------------------------------------ loop side */

static void close_sock(sock_t *k);

static sock_t *sock_of(rt_sock_t id, bool must_be_live)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = must_be_live ? slot_live(id) : slot_get(id);
    sock_t *k = s ? s->sock : NULL;
    pthread_mutex_unlock(&S.mx);
    return k;
}

/* Sends an event about socket `id` to its owner. An owner that is gone means nobody will
 * ever close the socket: close it here. Returns false if the socket was closed. */
static bool emit(rt_sock_t id, uint32_t kind, int uverr, rt_sock_t listener, const void *data,
                 size_t len)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(id);
    rt_pid_t owner = s ? s->owner : RT_NOPID;
    sock_t *k = s ? s->sock : NULL;
    pthread_mutex_unlock(&S.mx);
    if (!k)
        return false; /* closed by the API: no more events */
    rt_msg_t *m = rt_msg_new(RT_MSG_TCP, sizeof(rt_sock_event_t) + len);
    rt_sock_event_t *ev = (rt_sock_event_t *)(void *)m->data;
    *ev = (rt_sock_event_t){.sock = id, .listener = listener, .kind = kind,
                            .status = rt_code_of(uverr), .sys_error = uverr,
                            .len = (uint32_t)len};
    if (len)
        memcpy(ev->data, data, len);
    if (rt_send(owner, m) == RT_ENOPROC) {
        close_sock(k);
        return false;
    }
    return true;
}

static void on_closed(uv_handle_t *h)
{
    sock_t *k = h->data;
    pthread_mutex_lock(&S.mx);
    slot_free(k->id);
    pthread_mutex_unlock(&S.mx);
    free(k);
}

/* Loop thread: retires the id (if not yet) and closes the handle; idempotent. */
static void close_sock(sock_t *k)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_get(k->id);
    if (s)
        slot_retire(s);
    pthread_mutex_unlock(&S.mx);
    if (k->closing)
        return;
    k->closing = true;
    if (k->handle_ready) {
        uv_close((uv_handle_t *)&k->tcp, on_closed); /* cancels pending writes/connect */
        return;
    }
    if (k->fd >= 0)
        close(k->fd);
    pthread_mutex_lock(&S.mx);
    slot_free(k->id);
    pthread_mutex_unlock(&S.mx);
    free(k);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Starts or stops reading to match the active mode. */
static void apply_reading(sock_t *k)
{
    bool want = k->connected && !k->read_done && !k->closing && k->active != RT_SOCK_PASSIVE;
    if (want && !k->reading) {
        int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
        if (rc != 0) {
            k->read_done = true;
            emit(k->id, RT_SOCK_ERROR, rc, 0, NULL, 0);
            return;
        }
        k->reading = true;
    } else if (!want && k->reading) {
        uv_read_stop((uv_stream_t *)&k->tcp);
        k->reading = false;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sock_t *k = stream->data;
    (void)buf;
    if (nread == 0 || k->closing)
        return; /* EAGAIN */
    if (nread > 0) {
        bool ran_out = k->active > 0 && --k->active == 0;
        if (ran_out)
            apply_reading(k); /* stop before anything else is read */
        if (emit(k->id, RT_SOCK_DATA, 0, 0, read_buf, (size_t)nread) && ran_out)
            emit(k->id, RT_SOCK_PASSIVE_EV, 0, 0, NULL, 0);
        return;
    }
    k->read_done = true;
    apply_reading(k);
    if (nread == UV_EOF)
        emit(k->id, RT_SOCK_CLOSED, 0, 0, NULL, 0);
    else
        emit(k->id, RT_SOCK_ERROR, (int)nread, 0, NULL, 0);
}

static void record_local_port(sock_t *k)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int port = 0;
    if (uv_tcp_getsockname(&k->tcp, (struct sockaddr *)&ss, &len) == 0)
        port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_os_fd_t fd = -1;
    if (uv_fileno((uv_handle_t *)&k->tcp, &fd) != 0)
        fd = -1;
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_get(k->id);
    if (s && s->used) {
        s->local_port = port;
        pthread_mutex_lock(&s->wmx);
        s->wfd = fd; /* valid until the slot is retired: the handle closes only after that */
        pthread_mutex_unlock(&s->wmx);
    }
    pthread_mutex_unlock(&S.mx);
}

static void on_connect(uv_connect_t *req, int status)
{
    sock_t *k = req->data;
    k->connecting = false;
    if (status == UV_ECANCELED || k->closing)
        return;
    if (status < 0) {
        k->read_done = true;
        emit(k->id, RT_SOCK_ERROR, status, 0, NULL, 0);
        return;
    }
    k->connected = true;
    record_local_port(k);
    if (emit(k->id, RT_SOCK_CONNECTED, 0, 0, NULL, 0))
        apply_reading(k);
}

static void sweep_start(void);

static void on_connection(uv_stream_t *server, int status)
{
    sock_t *lk = server->data;
    if (lk->closing)
        return;
    if (status < 0) {
        rt_warn("io: accept on socket %llx failed: %s", (unsigned long long)lk->id,
                uv_strerror(status));
        emit(lk->id, RT_SOCK_ERROR, status, 0, NULL, 0);
        return;
    }
    sock_t *k = rt__xcalloc(1, sizeof *k);
    k->fd = -1;
    uv_tcp_init(rt__loop(), &k->tcp);
    k->tcp.data = k;
    k->handle_ready = true;
    int rc = uv_accept(server, (uv_stream_t *)&k->tcp);
    pthread_mutex_lock(&S.mx);
    slot_t *ls = slot_live(lk->id);
    if (rc == 0 && !ls)
        rc = UV_ECANCELED; /* the listener was closed meanwhile */
    if (rc == 0 && slot_alloc(k, ls->owner, false, &k->id) != 0)
        rc = UV_EMFILE;
    if (rc == 0) {
        slot_t *s = slot_get(k->id);
        s->unclaimed = true;
        S.unclaimed++;
    }
    pthread_mutex_unlock(&S.mx);
    if (rc != 0) {
        if (rc != UV_ECANCELED)
            rt_warn("io: could not take a connection: %s", uv_strerror(rc));
        k->closing = true;
        uv_close((uv_handle_t *)&k->tcp, on_closed); /* id 0: no slot to free */
        return;
    }
    k->connected = true;
    record_local_port(k);
    sweep_start();
    emit(k->id, RT_SOCK_ACCEPTED, 0, lk->id, NULL, 0);
}

static void do_open_listener(sock_t *k)
{
    uv_tcp_init(rt__loop(), &k->tcp);
    k->tcp.data = k;
    k->handle_ready = true;
    int rc = uv_tcp_open(&k->tcp, k->fd);
    if (rc == 0)
        k->fd = -1; /* the handle owns it now */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&k->tcp, k->backlog, on_connection);
    if (rc != 0) {
        rt_warn("io: listen failed on the loop: %s", uv_strerror(rc));
        emit(k->id, RT_SOCK_ERROR, rc, 0, NULL, 0);
    }
}

static void do_connect(sock_t *k)
{
    uv_tcp_init(rt__loop(), &k->tcp);
    k->tcp.data = k;
    k->handle_ready = true;
    k->connect_req.data = k;
    int rc = uv_tcp_connect(&k->connect_req, &k->tcp, (const struct sockaddr *)&k->peer,
                            on_connect);
    if (rc != 0) {
        k->read_done = true;
        emit(k->id, RT_SOCK_ERROR, rc, 0, NULL, 0);
        return;
    }
    k->connecting = true;
}

static void send_queue_sub(rt_sock_t id, size_t len)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_get(id);
    if (s)
        s->send_queue -= len;
    pthread_mutex_unlock(&S.mx);
}

static void on_write(uv_write_t *req, int status)
{
    io_job_t *j = (io_job_t *)(void *)req;
    send_queue_sub(j->id, j->len);
    if (status < 0 && status != UV_ECANCELED)
        emit(j->id, RT_SOCK_ERROR, status, 0, NULL, 0);
    free(j);
}

/* Returns true if the job was handed to libuv (a write request: freed by on_write). */
static bool do_write(sock_t *k, io_job_t *j)
{
    uv_buf_t b = uv_buf_init((char *)j->data, (unsigned)j->len);
    int rc = k->closing ? UV_ECANCELED : uv_write(&j->wr, (uv_stream_t *)&k->tcp, &b, 1, on_write);
    if (rc == 0)
        return true;
    send_queue_sub(j->id, j->len);
    if (rc != UV_ECANCELED)
        emit(k->id, RT_SOCK_ERROR, rc, 0, NULL, 0);
    return false;
}

static void on_sweep(uv_timer_t *t)
{
    enum { BATCH = 64 };
    rt_sock_t dead[BATCH];
    unsigned n = 0, left;
    pthread_mutex_lock(&S.mx);
    for (uint32_t i = 0; i < S.hwm && n < BATCH; i++) {
        slot_t *s = slot_at(i);
        if (s->used && s->unclaimed && !rt_is_alive(s->owner))
            dead[n++] = id_of(i);
    }
    left = S.unclaimed - n;
    pthread_mutex_unlock(&S.mx);
    for (unsigned i = 0; i < n; i++) {
        sock_t *k = sock_of(dead[i], true);
        if (k)
            close_sock(k);
    }
    if (left == 0) {
        uv_timer_stop(t);
        S.sweep_on = false;
    }
}

static void sweep_start(void)
{
    if (!S.sweep_ready) {
        uv_timer_init(rt__loop(), &S.sweep);
        S.sweep_ready = true;
    }
    if (!S.sweep_on) {
        uv_timer_start(&S.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        S.sweep_on = true;
    }
}

static void run_job(void *arg)
{
    io_job_t *j = arg;
    if (!S.sigpipe_blocked) { /* a write to a reset peer must give EPIPE, not kill us */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        S.sigpipe_blocked = true;
    }
    if (j->op == OP_SWEEP) {
        sweep_start();
        free(j);
        return;
    }
    sock_t *k = sock_of(j->id, j->op != OP_CLOSE);
    if (!k) { /* closed meanwhile */
        if (j->op == OP_WRITE)
            send_queue_sub(j->id, j->len);
        free(j);
        return;
    }
    switch (j->op) {
    case OP_OPEN_LISTENER:
        do_open_listener(k);
        break;
    case OP_CONNECT:
        do_connect(k);
        break;
    case OP_SET_ACTIVE:
        k->active = j->mode;
        if (!k->listener)
            apply_reading(k);
        break;
    case OP_WRITE:
        if (do_write(k, j))
            return; /* libuv holds j until on_write */
        break;
    case OP_CLOSE:
        close_sock(k);
        break;
    }
    free(j);
}

/* ------------------------------------------------------------------ public API */

static int parse_addr(const char *host, int port, bool listening, struct sockaddr_storage *ss)
{
    if (port < 0 || port > 65535 || (!listening && port == 0))
        return RT_EINVAL;
    if (!host || !*host) {
        if (!listening)
            return RT_EINVAL;
        host = "0.0.0.0";
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return RT_EINVAL;
}

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Registers a new socket owned by the caller (claimed at once). */
static int register_new(sock_t *k, bool listener, int local_port, rt_sock_t *out)
{
    rt_pid_t me = caller_pid();
    if (rt_pid_is_nil(me))
        me = rt_self(); /* a thread's first call: give it its mailbox */
    if (rt_pid_is_nil(me))
        return RT_ECALLER; /* a service thread (the loop, a worker) cannot own sockets */
    pthread_mutex_lock(&S.mx);
    int rc = slot_alloc(k, me, listener, out);
    if (rc == 0) {
        slot_t *s = slot_get(*out);
        s->local_port = local_port;
        s->unclaimed = true;
        S.unclaimed++;
        claim_if_owner(s, *out);
    }
    pthread_mutex_unlock(&S.mx);
    return rc;
}

int rt_tcp_listen(const char *host, int port, int backlog, rt_sock_t *out)
{
    if (!out)
        return RT_EINVAL;
    *out = 0;
    if (!rt_running())
        return RT_ESTATE;
    struct sockaddr_storage ss;
    int rc = parse_addr(host, port, true, &ss);
    if (rc != 0)
        return rc;
    /* Bind and listen here, so that errors (port in use) are returned now. These calls do
     * not block; the loop adopts the listening fd afterwards. */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = errno;
        rt_warn("io: socket: %s", strerror(rc));
        return rt_code_of(uv_translate_sys_error(rc));
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); /* not SO_REUSEPORT */
    if (backlog <= 0)
        backlog = DEFAULT_BACKLOG;
    if (bind(fd, (struct sockaddr *)&ss, addr_len(&ss)) != 0 || listen(fd, backlog) != 0) {
        int err = errno;
        close(fd);
        rc = rt_code_of(uv_translate_sys_error(err));
        rt_debug("io: listen on %s:%d: %s", host ? host : "*", port, strerror(err));
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    int local_port = port;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        local_port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    sock_t *k = rt__xcalloc(1, sizeof *k);
    k->listener = true;
    k->fd = fd;
    k->backlog = backlog;
    rc = register_new(k, true, local_port, out);
    if (rc != 0) {
        close(fd);
        free(k);
        return rc;
    }
    post(OP_OPEN_LISTENER, *out, 0, NULL, 0);
    return 0;
}

int rt_tcp_connect(const char *host, int port, rt_sock_t *out)
{
    if (!out)
        return RT_EINVAL;
    *out = 0;
    if (!rt_running())
        return RT_ESTATE;
    struct sockaddr_storage ss;
    int rc = parse_addr(host, port, false, &ss);
    if (rc != 0)
        return rc;
    sock_t *k = rt__xcalloc(1, sizeof *k);
    k->fd = -1;
    k->peer = ss;
    rc = register_new(k, false, 0, out);
    if (rc != 0) {
        free(k);
        return rc;
    }
    post(OP_CONNECT, *out, 0, NULL, 0);
    return 0;
}

int rt_sock_set_active(rt_sock_t sock, int mode)
{
    if (mode < RT_SOCK_ACTIVE)
        return RT_EINVAL;
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    if (s)
        claim_if_owner(s, sock);
    pthread_mutex_unlock(&S.mx);
    if (!s)
        return RT_ENOTFOUND;
    post(OP_SET_ACTIVE, sock, mode, NULL, 0);
    return 0;
}

int rt_sock_send(rt_sock_t sock, const void *data, size_t len)
{
    if (!data && len)
        return RT_EINVAL;
    if (len > UINT32_MAX)
        return RT_EINVAL; /* one uv_buf_t */
    int rc = 0;
    size_t done = 0;
    slot_t *direct = NULL;
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    if (!s)
        rc = RT_ENOTFOUND;
    else if (s->listener)
        rc = RT_EINVAL;
    else {
        claim_if_owner(s, sock);
        /* Fast path: nothing queued on the loop for this socket, so a direct non-blocking
         * write from this thread keeps the byte order and saves the hop to the loop thread
         * and back (the usual case for a request/response protocol; a socket has one
         * sender, its owner). The fd stays open while we hold wmx: a socket is retired
         * (wfd = -1 under wmx) before its handle closes. */
        if (s->wfd >= 0 && s->send_queue == 0 && len > 0) {
            direct = s;
            pthread_mutex_lock(&s->wmx); /* lock order: S.mx, then wmx */
        } else {
            s->send_queue += len;
        }
    }
    pthread_mutex_unlock(&S.mx);
    if (direct) {
        if (direct->wfd >= 0) {
            ssize_t n = send(direct->wfd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                done = (size_t)n;
        }
        pthread_mutex_unlock(&direct->wmx);
        if (done < len) {
            /* What the kernel did not take (or an error, which the loop's write then
             * reports as an ERROR event) goes the usual way, still in order. */
            pthread_mutex_lock(&S.mx);
            if ((s = slot_live(sock)) != NULL)
                s->send_queue += len - done;
            else
                done = len; /* closed meanwhile: nothing more to write */
            pthread_mutex_unlock(&S.mx);
        }
    }
    if (rc == 0 && len > done)
        post(OP_WRITE, sock, 0, (const char *)data + done, len - done);
    return rc;
}

size_t rt_sock_send_queue(rt_sock_t sock)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    size_t n = s ? s->send_queue : 0;
    pthread_mutex_unlock(&S.mx);
    return n;
}

int rt_sock_close(rt_sock_t sock)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    if (s) {
        drop_own_lease(s);
        slot_retire(s);
    }
    pthread_mutex_unlock(&S.mx);
    if (!s)
        return RT_ENOTFOUND;
    post(OP_CLOSE, sock, 0, NULL, 0);
    return 0;
}

int rt_sock_controlling_process(rt_sock_t sock, rt_pid_t new_owner)
{
    if (rt_pid_is_nil(new_owner) || new_owner.node != 0)
        return RT_EINVAL;
    int rc = 0;
    bool handed = false;
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    rt_pid_t me = caller_pid();
    if (!s)
        rc = RT_ENOTFOUND;
    else if (rt_pid_is_nil(me) || !rt_pid_eq(me, s->owner))
        rc = RT_ECALLER;
    else if (rt_pid_eq(me, new_owner))
        rc = 0;
    else if (!rt_is_alive(new_owner))
        rc = RT_ENOPROC;
    else {
        drop_own_lease(s);
        s->owner = new_owner;
        if (!s->unclaimed) {
            s->unclaimed = true;
            S.unclaimed++;
        }
        handed = true;
    }
    pthread_mutex_unlock(&S.mx);
    if (handed)
        post(OP_SWEEP, 0, 0, NULL, 0); /* in case new_owner dies before claiming */
    return rc;
}

rt_pid_t rt_sock_owner(rt_sock_t sock)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    rt_pid_t p = s ? s->owner : RT_NOPID;
    pthread_mutex_unlock(&S.mx);
    return p;
}

int rt_sock_local_port(rt_sock_t sock)
{
    pthread_mutex_lock(&S.mx);
    slot_t *s = slot_live(sock);
    int port = s ? s->local_port : 0;
    pthread_mutex_unlock(&S.mx);
    return port;
}

unsigned rt_sock_count(void)
{
    pthread_mutex_lock(&S.mx);
    unsigned n = S.count;
    pthread_mutex_unlock(&S.mx);
    return n;
}

/* After the loop thread stopped (its handles were closed by rt__loop_stop's walk, without
 * our callbacks): frees what is left and resets the module for the next rt_start. */
void rt__io_free(void)
{
    pthread_mutex_lock(&S.mx);
    for (uint32_t i = 0; i < S.hwm; i++) {
        slot_t *s = slot_at(i);
        if (!s->sock)
            continue;
        if (s->sock->fd >= 0)
            close(s->sock->fd);
        free(s->sock);
    }
    for (uint32_t c = 0; c < SLOT_CHUNKS_MAX && S.chunks[c]; c++) {
        free(S.chunks[c]);
        S.chunks[c] = NULL;
    }
    S.hwm = 0;
    S.free_head = UINT32_MAX;
    S.count = 0;
    S.unclaimed = 0;
    S.sweep_ready = S.sweep_on = false;
    S.sigpipe_blocked = false;
    pthread_mutex_unlock(&S.mx);
}
