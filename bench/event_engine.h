/*
 * event_engine.h — the event engine of cairn-bench and etcd-bench (prefix ee_): loop threads
 * each running epoll over their share of the connections, non-blocking sockets, exactly one
 * request outstanding per connection (send it, read the whole answer, send the next; no
 * pipelining).
 *
 * It owns: resolving the host list (host[:port], [v6addr][:port] or a bare IPv6 address;
 * every address of every node in one list, in host-list order), connecting (before the run,
 * waiting up to 2 s per address, and during it without blocking, each address for up to
 * 2 s, wrapping around once), failover to the next node, the 10 ms pause after a connection
 * error, writing the request, reading the answer, the request deadline, and the state of
 * every connection:
 *
 *   IDLE --issue--> [CONNECTING] --> SENDING <--> WAITING --answer--> (issue the next one)
 *                                        \___ error ___> IDLE, or BACKOFF (10 ms) after a
 *                                                        connection error; DONE at the end
 *
 * The program owns the protocol and the counting, through ee_ops_t: what the next request
 * is (issue), where an answer ends (parse), what it means (answer), and how a failure is
 * counted (failed). Error codes are the program's own ints; the engine raises the ones named
 * in ee_config_t (err_connect and err_io are followed by the pause).
 *
 * Threads: a loop and its connections are used by one thread at a time (the loop's thread
 * during ee_loop_run, the main thread otherwise); the hooks run on the loop's thread.
 * Memory: the engine owns its nodes, loops, connections, their buffers and the per-connection
 * user state (conn_user_size zeroed bytes each), all freed by ee_teardown; the program frees
 * what it hangs inside the user state. ee_config_t's strings are borrowed for the whole run.
 */
#ifndef CAIRN_BENCH_EVENT_ENGINE_H
#define CAIRN_BENCH_EVENT_ENGINE_H

#include "bench/pb_frames.h" /* pbf_buf_t: a growable byte buffer */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EE_WHY_LEN 512                 /* connect reasons and error details */

typedef struct ee_engine ee_engine_t;
typedef struct ee_loop ee_loop_t;

typedef enum { EE_IDLE, EE_CONNECTING, EE_SENDING, EE_WAITING, EE_BACKOFF, EE_DONE } ee_state_t;

/* One connection. The program reads id, loop and user; fills out (emptied by it first) and
 * t_req_ns before ee_send; parses `in`. The rest is the engine's. */
typedef struct ee_conn {
    unsigned id;                    /* 0..concurrency-1 */
    ee_loop_t *loop;                /* the loop that runs it */
    void *user;                     /* the program's state for it (conn_user_size bytes) */
    int fd;                         /* -1: not connected */
    ee_state_t state;
    bool want_out;                  /* EPOLLOUT is in fd's interest set */
    unsigned node;                  /* the node connected to (see ee_failover_t) */
    unsigned target, targets_tried; /* while connecting: the address tried, how many so far */
    char connect_why[EE_WHY_LEN];   /* why this round's attempts failed */
    uint64_t timer_ns;              /* CONNECTING: this attempt's end; BACKOFF: retry time */
    uint64_t req_deadline_ns;       /* the request's end */
    uint64_t t_req_ns;              /* when the request started (set by the program) */
    pbf_buf_t out;                  /* the request; out_sent bytes have left */
    size_t out_sent;
    pbf_buf_t in;                   /* bytes of the answer received so far */
    bool may_resend;                /* nothing left yet: one retry on the next node allowed */
} ee_conn_t;

/* One loop thread's epoll set over its share of the connections (connection i on loop
 * i % threads). */
struct ee_loop {
    ee_engine_t *eng;
    unsigned id;
    void *user;                     /* the program's worker for this loop (set by it) */
    int epfd;                       /* -1: none */
    ee_conn_t **conns;              /* this loop's connections */
    unsigned n_conns, active;       /* active: connections whose phase has not ended */
    bool need_scan;                 /* a connection waits to be served by the scan */
    uint64_t next_timer_ns;         /* earliest deadline among this loop's connections */
};

typedef enum { EE_PARSE_NEED_MORE, EE_PARSE_ANSWER, EE_PARSE_FAILED } ee_parse_t;

/* The protocol hooks, called on the loop's thread. */
typedef struct ee_ops {
    /* Starts c's next operation: writes the request into c->out, sets c->t_req_ns and calls
     * ee_send; or ee_done when the phase has nothing more for c; or ee_fail. */
    void (*issue)(ee_conn_t *c);
    /* Looks for one complete answer at the start of c->in: EE_PARSE_ANSWER with its length
     * in *answer_len (the answer kept in the user state for `answer`), EE_PARSE_NEED_MORE,
     * or EE_PARSE_FAILED after calling ee_fail. */
    ee_parse_t (*parse)(ee_conn_t *c, size_t *answer_len);
    /* The answer parse found, alone in c->in (c->in.len is 0 again, its bytes stay until the
     * next receive). early: it came before the whole request was sent, so the rest of the
     * request would be read as a new one; the hook must fail the request, closing. Otherwise
     * it counts the outcome and goes on (issue the next request, ee_send, or ee_fail). */
    void (*answer)(ee_conn_t *c, bool early);
    /* Counts the failure of the request in flight (detail: why, for the report). */
    void (*failed)(ee_conn_t *c, int code, const char *detail);
    /* Optional (NULL: none): a send broke after some bytes had left; an answer that explains
     * it better than err_io may be waiting. true if the hook found one and called ee_fail. */
    bool (*after_break)(ee_conn_t *c);
} ee_ops_t;

/* Where a connection that must connect again starts. */
typedef enum {
    EE_FAILOVER_ON_RECONNECT,       /* at the node after the last one connected to */
    EE_FAILOVER_ON_ERROR,           /* at the same node, unless a failure closed it (err_connect
                                     * aside): then at the next one */
} ee_failover_t;

typedef struct ee_config {
    const char *prog;               /* prefix of the engine's messages on stderr */
    const char *hosts;              /* the host list, as given */
    const char *default_port;
    const char *node_noun;          /* "node", "member": in "no <noun> of '<hosts>' ..." */
    unsigned concurrency, threads;  /* threads <= concurrency */
    bool spread;                    /* connection i starts at node i mod N (else at the first) */
    ee_failover_t failover;
    uint64_t request_timeout_ns;    /* from the request's start to its deadline */
    const char *timeout_why;        /* the detail of err_timeout, after "<node>: " */
    int err_connect, err_io, err_timeout, err_nomem, err_proto;
    size_t conn_user_size;
    const ee_ops_t *ops;
    atomic_bool *stop;              /* the run's stop flag: read by the loops, set on failure */
} ee_config_t;

struct ee_engine {
    ee_config_t cfg;                /* a copy */
    struct ee_node *nodes;
    unsigned n_nodes;
    struct ee_target *targets;
    unsigned n_targets;
    ee_loop_t *loops;               /* cfg.threads */
    ee_conn_t *conns;               /* cfg.concurrency */
    unsigned char *user;            /* the connections' user state */
};

/* Resolves the hosts, makes the loops and connections (not connected yet). 0, or -1 with the
 * reason printed. Zero-initialise e first; ee_teardown it either way. */
int ee_setup(ee_engine_t *e, const ee_config_t *cfg);
/* Connects connection i before the first phase. 0, or -1 with the reasons in connect_why. */
int ee_connect_sync(ee_engine_t *e, unsigned i);
/* Runs one phase on the loop: issues on every connection until each is done. */
void ee_loop_run(ee_loop_t *loop);
void ee_teardown(ee_engine_t *e);

/* For the hooks. */
void ee_send(ee_conn_t *c);         /* sends c->out, connecting first if c is down */
void ee_done(ee_conn_t *c);         /* c has nothing more to do in this phase */
/* The request in flight failed with `code`: count it (ops->failed), close the connection if
 * its stream can no longer be trusted, and let the connection go on (pausing 10 ms after
 * err_connect and err_io). */
void ee_fail(ee_conn_t *c, int code, bool close_conn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ee_close(ee_conn_t *c);        /* the next request reconnects */
const char *ee_label(const ee_conn_t *c); /* "host:port" of c's node */

#endif
