/*
 * rt_bench — the actor runtime's side of the BEAM comparison (../shared/bench/beam/).
 *
 * Runs the workloads of actbench.erl on this runtime (the README there defines each one) and
 * prints the same figure names with the c_ prefix instead of erl_, one "name value unit" line
 * per figure, so compare.sh matches them.
 *
 *   rt_bench [group ...]            every group (default: all) REPS times (env REPS, default
 *                                   3), each run in a fresh child process (fork + exec of
 *                                   this program); prints the median per figure
 *   rt_bench --raw FILE [group ...] also keeps every run's lines in FILE
 *   rt_bench --one GROUP            one run of one group in this process (what a child does)
 *
 * Groups: spawn ring ring_s1 call fanout fair sup dist.
 *
 * The mirror is literal: every actor of the Erlang code is an rt process, every Erlang
 * message is an rt message (a fresh one per send, as the BEAM copies each term), calls are
 * rt_call (async, from a process, monitor + 5 s timeout) like gen_server:call. The
 * coordinator (the Erlang "main" process) is the main thread's own mailbox where it only
 * starts a phase and collects its end; wherever the Erlang main process itself sends or
 * receives in a timed loop (ping-pong, calls, the fairness probe, the supervisor driver,
 * the dist client), that loop runs in an rt process.
 */
#include "runtime/dist.h"
#include "runtime/rt.h"
#if __has_include("runtime/sup.h") && !defined(RT_BENCH_NO_SUP)
#include "runtime/sup.h"
#define HAVE_SUP 1
#else
#define HAVE_SUP 0
#endif
#include "proto/rt_bench.pb-c.h"

#include <errno.h>
#include <sched.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "rt_bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    fflush(stdout);
    _exit(1);
}

static int cmp_d(const void *a, const void *b);
static uint64_t now_ns(void) { return rt_now_ns(); }
static double secs(uint64_t ns) { return (double)ns / 1e9; }

/* Same number format as actbench.erl's emit/fmt. */
static void emit(const char *name, double v, const char *unit)
{
    double a = fabs(v);
    if (a >= 1000)
        printf("%s %.1f %s\n", name, v, unit);
    else if (a >= 1)
        printf("%s %.3f %s\n", name, v, unit);
    else
        printf("%s %.6f %s\n", name, v, unit);
}

/* Resident set size from /proc/self/statm. */
static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &res) != 2)
        res = 0;
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

/* Message types of the local groups. */
enum {
    M_TOK = RT_MSG_USER + 1, /* {tok, K}: u64 */
    M_NEXT,                  /* {next, Pid} */
    M_STOP,                  /* stop */
    M_RING_DONE,             /* ring_done */
    M_PING,                  /* {From, ping} */
    M_PONG,                  /* ping (the echo's answer) / pong (a call reply) */
    M_GO,                    /* go */
    M_MSG,                   /* {msg, ProducerId, K} */
    M_CONSUMED,              /* {consumed, Pid} */
    M_RESULT,                /* a figure back to the main thread: u64 values */
    M_CMD,                   /* main thread -> a process: op + args */
    M_CONT,                  /* a process to itself: continue a chunked job */
    M_HOG_GO,                /* the hog's self-message */
    M_HOG_STOP,              /* {stop, From} */
    M_STARTED,               /* {started, I, Pid} */
    M_CALL_PING,             /* the request of gen_server:call(S, ping) */
    /* dist (protobuf): registered on both nodes */
    M_D_PING = RT_MSG_USER + 100,
    M_D_PONG,
    M_D_CALL,
    M_D_DATA,
    M_D_SMALL,
    M_D_DONE,
    M_D_SUNK,
    M_D_WHERE,
    M_D_SRV,
};

static rt_msg_t *msg_u64(uint32_t type, uint64_t v)
{
    rt_msg_t *m = rt_msg_new(type, sizeof v);
    memcpy(m->data, &v, sizeof v);
    return m;
}
static uint64_t get_u64(const rt_msg_t *m, unsigned i)
{
    uint64_t v;
    memcpy(&v, m->data + i * sizeof v, sizeof v);
    return v;
}
static rt_msg_t *msg_pid(uint32_t type, rt_pid_t p) { return rt_msg_copy(type, &p, sizeof p); }
static rt_pid_t get_pid(const rt_msg_t *m)
{
    rt_pid_t p;
    memcpy(&p, m->data, sizeof p);
    return p;
}

/* A result to the main thread: up to 4 u64 values. */
static void report(rt_pid_t to, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t v[4] = {a, b, c, d};
    rt_send(to, rt_msg_copy(M_RESULT, v, sizeof v));
}

static bool match_type(const rt_msg_t *m, void *ctx) { return m->type == *(uint32_t *)ctx; }

/* The main thread waits for a message of `type` (bounded: 10 minutes). */
static rt_msg_t *main_recv(uint32_t type)
{
    rt_msg_t *m = NULL;
    if (rt_receive_match(600000, match_type, &type, &m) != 0)
        die("timed out waiting for message type %s", type == M_RESULT ? "result" : "other");
    return m;
}
static void main_result(uint64_t out[4])
{
    rt_msg_t *m = main_recv(M_RESULT);
    memcpy(out, m->data, 4 * sizeof(uint64_t));
    rt_msg_free(m);
}

static void wait_process_count(uint32_t max)
{
    for (unsigned i = 0; rt_process_count() > max; i++) {
        if (i > 600000)
            die("%s", "process count never came back down");
        usleep(100);
    }
}

static void start_runtime(unsigned schedulers, const char *node, const char *cookie)
{
    rt_log_set_level(RT_LOG_WARN);
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = schedulers;
    c.max_procs = 1u << 22; /* the BEAM runs with +P 4000000 */
    c.node_name = node;
    c.cookie = cookie;
    int rc = rt_start(&c);
    if (rc != 0)
        die("rt_start: %s", rt_strerror(rc));
    (void)rt_self(); /* the main thread's mailbox exists before any process count is taken */
}

/* ------------------------------------------------------------------ a. spawn */

static int idle_handle(void *st, rt_msg_t *m)
{
    (void)st;
    return m->type == M_STOP ? RT_STOP : RT_CONTINUE;
}
static const rt_behaviour_t idle_beh = {.name = "idle", .handle = idle_handle};

/* A spawner: spawns (or kills) its share in chunks of 1000 per message, so that it yields
 * like a BEAM process does after its reductions. */
enum { OP_SPAWN = 1, OP_KILL = 2 };
typedef struct spawner {
    rt_pid_t main;
    rt_pid_t *pids;
    size_t n, done;
    int op;
    uint64_t t_first, t_last;
} spawner_t;

static int spawner_handle(void *st, rt_msg_t *m)
{
    spawner_t *s = st;
    if (m->type == M_CMD) {
        s->op = (int)get_u64(m, 0);
        s->pids = (rt_pid_t *)(uintptr_t)get_u64(m, 1);
        s->n = (size_t)get_u64(m, 2);
        s->main = m->from;
        s->done = 0;
        s->t_first = now_ns();
    } else if (m->type != M_CONT)
        return RT_CONTINUE;
    size_t end = s->done + 1000 < s->n ? s->done + 1000 : s->n;
    for (size_t i = s->done; i < end; i++) {
        if (s->op == OP_SPAWN) {
            int rc = rt_spawn(&idle_beh, NULL, &s->pids[i]);
            if (rc != 0)
                die("spawn: %s", rt_strerror(rc));
        } else
            rt_exit_signal(s->pids[i], RT_R_KILL);
    }
    s->done = end;
    if (s->done < s->n) {
        rt_send(rt_self(), rt_msg_new(M_CONT, 0));
        return RT_CONTINUE;
    }
    s->t_last = now_ns();
    report(s->main, s->t_first, s->t_last, 0, 0);
    return RT_CONTINUE;
}
static const rt_behaviour_t spawner_beh = {.name = "spawner", .state_size = sizeof(spawner_t),
                                           .handle = spawner_handle};

static void spawner_cmd(rt_pid_t sp, int op, rt_pid_t *pids, size_t n)
{
    uint64_t v[3] = {(uint64_t)op, (uint64_t)(uintptr_t)pids, n};
    rt_send(sp, rt_msg_copy(M_CMD, v, sizeof v));
}

static void bench_spawn(void)
{
    const size_t N = 1000000;
    rt_pid_t *pids = calloc(N, sizeof *pids), *pids2 = calloc(N, sizeof *pids2);
    if (!pids || !pids2)
        die("%s", "out of memory");
    memset(pids, 0xff, N * sizeof *pids); /* touched now: the spawner's own growth is not */
    memset(pids2, 0xff, N * sizeof *pids2); /* counted (the BEAM figure subtracts it) */
    rt_pid_t sp;
    rt_spawn(&spawner_beh, NULL, &sp);
    uint64_t r[4];
    /* warm nothing: round 1 is cold on purpose */
    uint32_t base = rt_process_count();
    long long m0 = rss_bytes();
    spawner_cmd(sp, OP_SPAWN, pids, N);
    main_result(r);
    uint64_t t0 = r[0], t1 = r[1];
    /* "settled": a C process has no first run to reach its receive; nothing is queued */
    uint64_t t2 = now_ns();
    long long m1 = rss_bytes();
    double per_proc = (double)(m1 - m0) / (double)N;
    uint64_t t3 = now_ns();
    spawner_cmd(sp, OP_KILL, pids, N);
    main_result(r);
    wait_process_count(base);
    uint64_t t4 = now_ns();
    /* round 2: warm */
    spawner_cmd(sp, OP_SPAWN, pids2, N);
    main_result(r);
    uint64_t t5 = r[0], t6 = r[1];
    spawner_cmd(sp, OP_KILL, pids2, N);
    main_result(r);
    wait_process_count(base);
    /* two spawners, 500k each */
    rt_pid_t sp2[2];
    rt_spawn(&spawner_beh, NULL, &sp2[0]);
    rt_spawn(&spawner_beh, NULL, &sp2[1]);
    base = rt_process_count();
    uint64_t p0 = now_ns();
    spawner_cmd(sp2[0], OP_SPAWN, pids, N / 2);
    spawner_cmd(sp2[1], OP_SPAWN, pids + N / 2, N / 2);
    main_result(r);
    main_result(r);
    uint64_t p1 = now_ns();
    uint64_t p2 = now_ns();
    spawner_cmd(sp2[0], OP_KILL, pids, N / 2);
    spawner_cmd(sp2[1], OP_KILL, pids + N / 2, N / 2);
    main_result(r);
    main_result(r);
    wait_process_count(base);
    uint64_t p3 = now_ns();

    emit("c_spawn_1m_cold_wall", secs(t1 - t0), "s");
    emit("c_spawn_1m_cold_rate", N / secs(t1 - t0), "spawns/s");
    emit("c_spawn_1m_cold_ns_per_spawn", (double)(t1 - t0) / N, "ns");
    emit("c_spawn_1m_cold_settled_wall", secs(t2 - t0), "s");
    emit("c_spawn_1m_warm_wall", secs(t6 - t5), "s");
    emit("c_spawn_1m_warm_rate", N / secs(t6 - t5), "spawns/s");
    emit("c_spawn_par2_1m_rate", N / secs(p1 - p0), "spawns/s");
    emit("c_proc_idle_mem_delta", per_proc, "bytes/proc");
    emit("c_kill_1m_wall", secs(t4 - t3), "s");
    emit("c_kill_1m_rate", N / secs(t4 - t3), "kills/s");
    emit("c_kill_par2_1m_rate", N / secs(p3 - p2), "kills/s");
    free(pids);
    free(pids2);
}

/* ------------------------------------------------------------------ b. ring */

typedef struct ring_node {
    rt_pid_t next, main;
} ring_node_t;

static atomic_uint ring_linked; /* nodes that have their next pid (setup of the 100k ring) */

static int ring_init(void *st, void *arg)
{
    ((ring_node_t *)st)->main = *(rt_pid_t *)arg;
    return 0;
}

static int ring_handle(void *st, rt_msg_t *m)
{
    ring_node_t *r = st;
    switch (m->type) {
    case M_TOK: {
        uint64_t k = get_u64(m, 0);
        if (k == 0)
            rt_send(r->main, rt_msg_new(M_RING_DONE, 0));
        else
            rt_send(r->next, msg_u64(M_TOK, k - 1));
        return RT_CONTINUE;
    }
    case M_NEXT:
        r->next = get_pid(m);
        atomic_fetch_add_explicit(&ring_linked, 1, memory_order_relaxed);
        return RT_CONTINUE;
    case M_STOP:
        return RT_STOP;
    default:
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t ring_beh = {.name = "ring", .state_size = sizeof(ring_node_t),
                                        .init = ring_init, .handle = ring_handle};

static rt_pid_t *make_ring(size_t n)
{
    rt_pid_t self = rt_self();
    rt_pid_t *pids = malloc(n * sizeof *pids);
    if (!pids)
        die("%s", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (rt_spawn(&ring_beh, &self, &pids[i]) != 0)
            die("%s", "spawn failed");
    for (size_t i = 0; i < n; i++)
        rt_send(pids[i], msg_pid(M_NEXT, pids[(i + 1) % n]));
    return pids;
}

static void stop_ring(rt_pid_t *pids, size_t n)
{
    uint32_t base = rt_process_count() - (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        rt_send(pids[i], rt_msg_new(M_STOP, 0));
    wait_process_count(base);
    free(pids);
}

/* `tokens` tokens injected at evenly spaced positions, each making `hops` hops: seconds. */
static double run_ring(rt_pid_t *pids, size_t n, size_t tokens, uint64_t hops)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < tokens; i++)
        rt_send(pids[(i * n) / tokens], msg_u64(M_TOK, hops));
    for (size_t i = 0; i < tokens; i++)
        rt_msg_free(main_recv(M_RING_DONE));
    return secs(now_ns() - t0);
}

static void bench_ring(void)
{
    rt_pid_t *r1k = make_ring(1000);
    (void)run_ring(r1k, 1000, 1, 10000); /* warm-up */
    double s1 = run_ring(r1k, 1000, 1, 1000000);
    double smulti = run_ring(r1k, 1000, 100, 100000);
    stop_ring(r1k, 1000);
    atomic_store(&ring_linked, 0);
    uint64_t t0 = now_ns();
    rt_pid_t *r100k = make_ring(100000);
    for (unsigned i = 0; atomic_load(&ring_linked) < 100000; i++) {
        if (i > 100000000)
            die("%s", "ring setup never finished");
        sched_yield();
    }
    double setup = secs(now_ns() - t0);
    double s100k = run_ring(r100k, 100000, 1, 100 * 100000);
    stop_ring(r100k, 100000);
    emit("c_ring1k_1m_hops_rate", 1000000 / s1, "hops/s");
    emit("c_ring1k_1m_ns_per_hop", s1 * 1e9 / 1000000, "ns");
    emit("c_ring1k_100tok_10m_hops_rate", 10000000 / smulti, "hops/s");
    emit("c_ring100k_setup_wall", setup, "s");
    emit("c_ring100k_100laps_hops_rate", 10000000 / s100k, "hops/s");
    emit("c_ring100k_100laps_ns_per_hop", s100k * 1e9 / 10000000, "ns");
}

static void bench_ring_s1(void)
{
    rt_pid_t *r1k = make_ring(1000);
    (void)run_ring(r1k, 1000, 1, 10000);
    double s1 = run_ring(r1k, 1000, 1, 1000000);
    stop_ring(r1k, 1000);
    emit("c_s1_ring1k_1m_hops_rate", 1000000 / s1, "hops/s");
    emit("c_s1_ring1k_1m_ns_per_hop", s1 * 1e9 / 1000000, "ns");
}

/* ------------------------------------------------------------------ c. call */

/* echo(): {From, ping} -> From ! ping */
static int echo_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type == M_PING)
        rt_send(get_pid(m), rt_msg_new(M_PONG, 0));
    return m->type == M_STOP ? RT_STOP : RT_CONTINUE;
}
static const rt_behaviour_t echo_beh = {.name = "echo", .handle = echo_handle};

/* ab_srv: a gen_server that answers ping with pong and counts. */
typedef struct srv { uint64_t n; } srv_t;
static int srv_handle(void *st, rt_msg_t *m)
{
    srv_t *s = st;
    if (rt_is_call(m) && m->type == M_CALL_PING) {
        s->n++;
        rt_reply(rt_call_from(m), rt_msg_new(M_PONG, 0));
    }
    return m->type == M_STOP ? RT_STOP : RT_CONTINUE;
}
static const rt_behaviour_t srv_beh = {.name = "ab_srv", .state_size = sizeof(srv_t), .handle = srv_handle};

/* A client that makes `warm` then `n` sequential round trips, either raw ping-pong with
 * `target` (an echo) or rt_call to it (a server), and reports the timed part's start and
 * end to `main`. With `vnodes`, each call goes to a random vnode and its latency is kept. */
typedef struct client {
    rt_pid_t main, target;
    bool call;
    uint64_t warm, n, i, t0, tcall;
    const rt_pid_t *vnodes;
    uint32_t nv;
    uint64_t *lat;
    uint64_t rng;
} client_t;

typedef struct client_args {
    rt_pid_t target;
    bool call;
    uint64_t warm, n;
    const rt_pid_t *vnodes;
    uint32_t nv;
    uint64_t *lat;
} client_args_t;

static int client_init(void *st, void *arg)
{
    client_t *c = st;
    const client_args_t *a = arg;
    c->target = a->target;
    c->call = a->call;
    c->warm = a->warm;
    c->n = a->n;
    c->vnodes = a->vnodes;
    c->nv = a->nv;
    c->lat = a->lat;
    c->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)st;
    return 0;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void client_next(client_t *c)
{
    if (c->vnodes) {
        c->target = c->vnodes[xorshift(&c->rng) % c->nv];
        c->tcall = now_ns();
    }
    if (c->call)
        rt_call(c->target, rt_msg_new(M_CALL_PING, 0), 5000);
    else
        rt_send(c->target, msg_pid(M_PING, rt_self()));
}

static int client_handle(void *st, rt_msg_t *m)
{
    client_t *c = st;
    if (m->type == M_GO) {
        c->main = m->from;
        c->i = 0;
        c->t0 = now_ns();
        client_next(c);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_CALL_FAILED)
        die("%s", "a call failed");
    if (m->type != M_PONG)
        return RT_CONTINUE;
    if (c->lat && c->i >= c->warm)
        c->lat[c->i - c->warm] = now_ns() - c->tcall;
    c->i++;
    if (c->i == c->warm)
        c->t0 = now_ns();
    if (c->i == c->warm + c->n) {
        report(c->main, c->t0, now_ns(), 0, 0);
        return RT_STOP;
    }
    client_next(c);
    return RT_CONTINUE;
}
static const rt_behaviour_t client_beh = {.name = "client", .state_size = sizeof(client_t),
                                          .init = client_init, .handle = client_handle};

static rt_pid_t spawn_client(const client_args_t *a)
{
    rt_pid_t p;
    if (rt_spawn(&client_beh, (void *)a, &p) != 0)
        die("%s", "spawn client");
    return p;
}

static void bench_call(void)
{
    const uint64_t N = 1000000;
    uint64_t r[4];
    rt_pid_t echo, srv;
    rt_spawn(&echo_beh, NULL, &echo);
    rt_pid_t c = spawn_client(&(client_args_t){.target = echo, .warm = 10000, .n = N});
    rt_send(c, rt_msg_new(M_GO, 0));
    main_result(r);
    double pp = secs(r[1] - r[0]);
    rt_send(echo, rt_msg_new(M_STOP, 0));

    rt_spawn(&srv_beh, NULL, &srv);
    c = spawn_client(&(client_args_t){.target = srv, .call = true, .warm = 10000, .n = N});
    rt_send(c, rt_msg_new(M_GO, 0));
    main_result(r);
    double c1 = secs(r[1] - r[0]);

    enum { NC = 100 };
    const uint64_t per = N / NC;
    rt_pid_t cs[NC];
    for (int i = 0; i < NC; i++)
        cs[i] = spawn_client(&(client_args_t){.target = srv, .call = true, .warm = 0, .n = per});
    uint64_t t2 = now_ns();
    for (int i = 0; i < NC; i++)
        rt_send(cs[i], rt_msg_new(M_GO, 0));
    double mean_us = 0;
    for (int i = 0; i < NC; i++) {
        main_result(r);
        mean_us += (double)(r[1] - r[0]) / (double)per / 1000.0;
    }
    double cm = secs(now_ns() - t2);
    mean_us /= NC;
    rt_send(srv, rt_msg_new(M_STOP, 0));
    emit("c_pingpong_1m_rate", N / pp, "roundtrips/s");
    emit("c_pingpong_1m_mean", pp * 1e6 / N, "us");
    emit("c_call_1c_1m_rate", N / c1, "calls/s");
    emit("c_call_1c_1m_mean", c1 * 1e6 / N, "us");
    emit("c_call_100c_1m_rate", N / cm, "calls/s");
    emit("c_call_100c_1m_mean", mean_us, "us");
}

/* ------------------------------------------------------------------ d. fan-in */

typedef struct consumer { rt_pid_t main; uint64_t left; } consumer_t;
static int consumer_init(void *st, void *arg)
{
    *(consumer_t *)st = *(const consumer_t *)arg;
    return 0;
}
static int consumer_handle(void *st, rt_msg_t *m)
{
    consumer_t *c = st;
    if (m->type != M_MSG)
        return RT_CONTINUE;
    if (--c->left == 0) {
        rt_send(c->main, msg_pid(M_CONSUMED, rt_self()));
        return RT_STOP;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t consumer_beh = {.name = "consumer", .state_size = sizeof(consumer_t),
                                            .init = consumer_init, .handle = consumer_handle};

typedef struct producer { const rt_pid_t *cons; uint32_t nc; uint64_t per, id; } producer_t;
static int producer_init(void *st, void *arg)
{
    *(producer_t *)st = *(const producer_t *)arg;
    return 0;
}
static int producer_handle(void *st, rt_msg_t *m)
{
    producer_t *p = st;
    if (m->type != M_GO)
        return RT_CONTINUE;
    for (uint64_t k = p->per; k > 0; k--) {
        uint64_t v[2] = {p->id, k};
        rt_send(p->cons[k % p->nc], rt_msg_copy(M_MSG, v, sizeof v));
    }
    return RT_STOP;
}
static const rt_behaviour_t producer_beh = {.name = "producer", .state_size = sizeof(producer_t),
                                            .init = producer_init, .handle = producer_handle};

static double fanout(uint32_t np, uint32_t nc, uint64_t per)
{
    rt_pid_t self = rt_self();
    uint64_t each = np * per / nc;
    rt_pid_t *cons = malloc(nc * sizeof *cons), *prods = malloc(np * sizeof *prods);
    if (!cons || !prods)
        die("%s", "out of memory");
    for (uint32_t i = 0; i < nc; i++) {
        consumer_t a = {self, each};
        rt_spawn(&consumer_beh, &a, &cons[i]);
    }
    for (uint32_t i = 0; i < np; i++) {
        producer_t a = {cons, nc, per, i + 1};
        rt_spawn(&producer_beh, &a, &prods[i]);
    }
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < np; i++)
        rt_send(prods[i], rt_msg_new(M_GO, 0));
    for (uint32_t i = 0; i < nc; i++)
        rt_msg_free(main_recv(M_CONSUMED));
    double s = secs(now_ns() - t0);
    free(cons);
    free(prods);
    return (double)(np * per) / s;
}

static void bench_fanout(void)
{
    (void)fanout(100, 10, 1000);
    double r1 = fanout(1000, 10, 1000);
    emit("c_fanin_1000p_10c_1m_rate", r1, "msgs/s");
    emit("c_fanin_1000p_10c_1m_ns_per_msg", 1e9 / r1, "ns");
}

/* ------------------------------------------------------------------ fairness */

typedef struct hog { uint64_t count; } hog_t;
static int hog_handle(void *st, rt_msg_t *m)
{
    hog_t *h = st;
    if (m->type == M_HOG_GO) {
        uint64_t until = now_ns() + 2000;
        for (unsigned i = 0; now_ns() < until && i < 100000000; i++)
            ;
        rt_send(rt_self(), rt_msg_new(M_HOG_GO, 0));
        h->count++;
        return RT_CONTINUE;
    }
    if (m->type == M_HOG_STOP) {
        report(get_pid(m), h->count, 0, 0, 0);
        return RT_STOP;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t hog_beh = {.name = "hog", .state_size = sizeof(hog_t), .handle = hog_handle};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
/* actbench's pct/3: the round(P*Len)-th smallest (1-based, clamped), in µs */
static double pct(const uint64_t *sorted, size_t len, double p)
{
    long i = lround(p * (double)len);
    if (i < 1)
        i = 1;
    if (i > (long)len)
        i = (long)len;
    return (double)sorted[i - 1] / 1000.0;
}

static void timed_calls(const rt_pid_t *vs, uint32_t nv, uint64_t n, uint64_t *lat)
{
    uint64_t r[4];
    rt_pid_t c = spawn_client(&(client_args_t){.call = true, .warm = 0, .n = n, .vnodes = vs,
                                               .nv = nv, .lat = lat});
    rt_send(c, rt_msg_new(M_GO, 0));
    main_result(r);
    qsort(lat, n, sizeof *lat, cmp_u64);
}

static void bench_fair(void)
{
    enum { NV = 1000, NCALLS = 10000, NHOGCALLS = 1000, NHOGS = 8 };
    static rt_pid_t vs[NV];
    static uint64_t lat[NCALLS];
    for (int i = 0; i < NV; i++)
        rt_spawn(&srv_beh, NULL, &vs[i]);
    timed_calls(vs, NV, 2000, lat);
    timed_calls(vs, NV, NCALLS, lat);
    double i50 = pct(lat, NCALLS, 0.50), i99 = pct(lat, NCALLS, 0.99), i999 = pct(lat, NCALLS, 0.999);
    rt_pid_t hogs[NHOGS];
    for (int i = 0; i < NHOGS; i++)
        rt_spawn(&hog_beh, NULL, &hogs[i]);
    uint64_t tg = now_ns();
    for (int i = 0; i < NHOGS; i++)
        rt_send(hogs[i], rt_msg_new(M_HOG_GO, 0));
    usleep(20000);
    uint64_t t0 = now_ns();
    timed_calls(vs, NV, NHOGCALLS, lat);
    double s = secs(now_ns() - t0);
    rt_pid_t self = rt_self();
    for (int i = 0; i < NHOGS; i++)
        rt_send(hogs[i], msg_pid(M_HOG_STOP, self));
    uint64_t hog_msgs = 0, r[4];
    for (int i = 0; i < NHOGS; i++) {
        main_result(r);
        hog_msgs += r[0];
    }
    double hog_s = secs(now_ns() - tg);
    double h50 = pct(lat, NHOGCALLS, 0.50), h99 = pct(lat, NHOGCALLS, 0.99);
    for (int i = 0; i < NV; i++)
        rt_send(vs[i], rt_msg_new(M_STOP, 0));
    emit("c_fair_idle_call_p50", i50, "us");
    emit("c_fair_idle_call_p99", i99, "us");
    emit("c_fair_idle_call_p999", i999, "us");
    emit("c_fair_8hogs_call_p50", h50, "us");
    emit("c_fair_8hogs_call_p99", h99, "us");
    emit("c_fair_8hogs_call_rate", NHOGCALLS / s, "calls/s");
    emit("c_fair_8hogs_hog_msgs_rate", (double)hog_msgs / hog_s, "msgs/s");
}

/* ------------------------------------------------------------------ e. supervisor */

#if HAVE_SUP
/* ab_child: a gen_server whose init announces {started, I, self()} to Notify (if any). */
typedef struct child_arg { uint64_t idx; rt_pid_t notify; } child_arg_t;
typedef struct ab_child { uint64_t idx; } ab_child_t;
static int ab_child_init(void *st, void *arg)
{
    const child_arg_t *a = arg;
    ((ab_child_t *)st)->idx = a->idx;
    if (!rt_pid_is_nil(a->notify)) {
        rt_pid_t self = rt_self();
        uint64_t v[3] = {a->idx, 0, 0};
        memcpy(&v[1], &self, sizeof self);
        rt_send(a->notify, rt_msg_copy(M_STARTED, v, sizeof v));
    }
    return 0;
}
static int ab_child_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (rt_is_call(m))
        rt_reply(rt_call_from(m), rt_msg_new(M_PONG, 0));
    return RT_CONTINUE;
}
static const rt_behaviour_t ab_child_beh = {.name = "ab_child", .state_size = sizeof(ab_child_t),
                                            .init = ab_child_init, .handle = ab_child_handle};

/* ab_sup: one_for_one over n permanent brutal-kill children, intensity per 1 s. */
typedef struct sup_def {
    rt_sup_spec_t spec;
    rt_sup_child_spec_t *cs;
    child_arg_t *args;
    char (*ids)[12];
} sup_def_t;

static void sup_def_init(sup_def_t *d, uint32_t n, uint32_t intensity, rt_pid_t notify)
{
    d->cs = calloc(n, sizeof *d->cs);
    d->args = calloc(n, sizeof *d->args);
    d->ids = calloc(n, sizeof *d->ids);
    if (!d->cs || !d->args || !d->ids)
        die("%s", "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        snprintf(d->ids[i], sizeof d->ids[i], "%u", i + 1);
        d->args[i] = (child_arg_t){i + 1, notify};
        d->cs[i] = (rt_sup_child_spec_t){.id = d->ids[i], .behaviour = &ab_child_beh,
                                         .arg = &d->args[i], .restart = RT_SUP_PERMANENT,
                                         .shutdown_ms = RT_SUP_BRUTAL_KILL};
    }
    d->spec = (rt_sup_spec_t){.strategy = RT_SUP_ONE_FOR_ONE, .intensity = intensity,
                              .period_ms = 1000, .children = d->cs, .nchildren = n};
}
static void sup_def_free(sup_def_t *d)
{
    free(d->cs);
    free(d->args);
    free(d->ids);
}

/* The driver: starts the supervisor (linked, like start_link), collects the 1000 first
 * {started, ...}, then kills child (k rem 1000)+1 and waits for its restart, `warm` times
 * then `kills` times (timed), then stops the supervisor and reports. */
enum { SUP_N = 1000 };
typedef struct sup_driver {
    rt_pid_t main, sup;
    sup_def_t def;
    rt_pid_t map[SUP_N + 1];
    uint64_t warm, kills, k, started, t0, t1;
    int phase; /* 0 collect, 1 warm-up, 2 timed, 3 stopping */
    rt_ref_t mon;
} sup_driver_t;

static int sup_driver_init(void *st, void *arg)
{
    sup_driver_t *d = st;
    d->warm = ((const uint64_t *)arg)[0];
    d->kills = ((const uint64_t *)arg)[1];
    return 0;
}

static void sup_kill_next(sup_driver_t *d)
{
    uint64_t i = (d->k % SUP_N) + 1;
    rt_exit_signal(d->map[i], RT_R_KILL);
}

static void sup_phase_next(sup_driver_t *d)
{
    if (d->phase < 1 && d->warm > 0) {
        d->phase = 1;
        d->k = d->warm;
        sup_kill_next(d);
        return;
    }
    if (d->phase < 2) {
        d->phase = 2;
        d->k = d->kills;
        d->t0 = now_ns();
        sup_kill_next(d);
        return;
    }
    d->t1 = now_ns();
    d->phase = 3;
    rt_unlink(d->sup);
    d->mon = rt_monitor(d->sup);
    rt_exit_signal(d->sup, RT_R_SHUTDOWN);
}

static int sup_driver_handle(void *st, rt_msg_t *m)
{
    sup_driver_t *d = st;
    if (m->type == M_GO) {
        d->main = m->from;
        sup_def_init(&d->def, SUP_N, 100000000, rt_self());
        int rc = rt_sup_start(&d->def.spec, &d->sup);
        if (rc != 0)
            die("rt_sup_start: %s", rt_strerror(rc));
        return RT_CONTINUE;
    }
    if (m->type == M_STARTED) {
        uint64_t i = get_u64(m, 0);
        rt_pid_t p;
        memcpy(&p, m->data + sizeof(uint64_t), sizeof p);
        if (i < 1 || i > SUP_N)
            die("%s", "bad child index");
        d->map[i] = p;
        if (d->phase == 0) {
            if (++d->started == SUP_N)
                sup_phase_next(d);
            return RT_CONTINUE;
        }
        if (i != (d->k % SUP_N) + 1)
            die("%s", "a different child restarted");
        if (--d->k == 0)
            sup_phase_next(d);
        else
            sup_kill_next(d);
        return RT_CONTINUE;
    }
    if (m->type == RT_MSG_DOWN && d->phase == 3) {
        report(d->main, d->t0, d->t1, 0, 0);
        sup_def_free(&d->def);
        return RT_STOP;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t sup_driver_beh = {.name = "sup_driver", .state_size = sizeof(sup_driver_t),
                                              .init = sup_driver_init, .handle = sup_driver_handle};

static double sup_restarts(uint64_t kills, uint64_t warm)
{
    uint64_t a[2] = {warm, kills}, r[4];
    rt_pid_t d;
    if (rt_spawn(&sup_driver_beh, a, &d) != 0)
        die("%s", "spawn sup driver");
    rt_send(d, rt_msg_new(M_GO, 0));
    main_result(r);
    return (double)kills / secs(r[1] - r[0]);
}

static bool match_down(const rt_msg_t *m, void *ctx)
{
    return m->type == RT_MSG_DOWN && ((const rt_down_msg_t *)(const void *)m->data)->ref == *(rt_ref_t *)ctx;
}

/* supervisor:start_link with n children and no Notify: the median of `iters` starts, ms. */
static double sup_start_ms(uint32_t n, int iters)
{
    double ts[32];
    sup_def_t def;
    sup_def_init(&def, n, 10, RT_NOPID);
    for (int it = 0; it < iters; it++) {
        rt_pid_t sup;
        uint64_t t0 = now_ns();
        int rc = rt_sup_start(&def.spec, &sup);
        uint64_t t = now_ns() - t0;
        if (rc != 0)
            die("rt_sup_start: %s", rt_strerror(rc));
        rt_ref_t ref = rt_monitor(sup);
        rt_exit_signal(sup, RT_R_SHUTDOWN);
        rt_msg_t *m = NULL;
        if (rt_receive_match(60000, match_down, &ref, &m) != 0)
            die("%s", "the supervisor did not stop");
        rt_msg_free(m);
        ts[it] = (double)t / 1e6;
    }
    sup_def_free(&def);
    qsort(ts, (size_t)iters, sizeof ts[0], cmp_d);
    return ts[(iters + 1) / 2 - 1];
}

static void bench_sup(void)
{
    double r1k = sup_restarts(100000, 1000);
    double burst = sup_restarts(1000, 0);
    double s64 = sup_start_ms(64, 21);
    double s1024 = sup_start_ms(1024, 7);
    emit("c_sup1k_o4o_restart_rate", r1k, "restarts/s");
    emit("c_sup1k_o4o_restart_latency", 1e6 / r1k, "us");
    emit("c_sup1k_o4o_burst1k_restart_rate", burst, "restarts/s");
    emit("c_sup1k_o4o_burst1k_restart_latency", 1e6 / burst, "us");
    emit("c_sup_start_64", s64, "ms");
    emit("c_sup_start_1024", s1024, "ms");
}
#else
static void bench_sup(void) { die("%s", "the sup group needs runtime/sup.h, which is not in this tree yet"); }
#endif

/* ------------------------------------------------------------------ f. distribution */

typedef struct ping_box { Cairn__Bench__Ping p; Cairn__Bench__BenchPid b; } ping_box_t;
typedef struct done_box { Cairn__Bench__Done p; Cairn__Bench__BenchPid b; } done_box_t;
typedef struct srv_box { Cairn__Bench__SrvPid p; Cairn__Bench__BenchPid b; } srv_box_t;

static void free_box(ProtobufCMessage *pb) { free(pb); } /* one malloc per message */

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("%s", "out of memory");
    return p;
}

static void pid_to_wire(Cairn__Bench__BenchPid *w, rt_pid_t p)
{
    *w = (Cairn__Bench__BenchPid)CAIRN__BENCH__BENCH_PID__INIT;
    w->node = (char *)rt_node_of(p);
    w->id = p.id;
    w->serial = p.serial;
}

/* Wire pid -> pid, with a one-entry cache (the BEAM caches node atoms per connection). */
typedef struct pid_cache { char node[256]; uint32_t id, serial; rt_pid_t pid; } pid_cache_t;
static rt_pid_t pid_from_wire(pid_cache_t *c, const Cairn__Bench__BenchPid *w)
{
    if (!w || !w->node)
        return RT_NOPID;
    if (c->pid.id && c->id == w->id && c->serial == w->serial && strcmp(c->node, w->node) == 0)
        return c->pid;
    rt_pid_t p = RT_NOPID;
    if (rt_pid_from_wire(w->node, w->id, w->serial, &p) != 0)
        return RT_NOPID;
    snprintf(c->node, sizeof c->node, "%s", w->node);
    c->id = w->id;
    c->serial = w->serial;
    c->pid = p;
    return p;
}

static rt_msg_t *pb_ping(uint32_t type, rt_pid_t from)
{
    ping_box_t *b = xmalloc(sizeof *b);
    b->p = (Cairn__Bench__Ping)CAIRN__BENCH__PING__INIT;
    pid_to_wire(&b->b, from);
    b->p.from = &b->b;
    return rt_msg_pb(type, &b->p.base, free_box);
}
static rt_msg_t *pb_done(rt_pid_t from)
{
    done_box_t *b = xmalloc(sizeof *b);
    b->p = (Cairn__Bench__Done)CAIRN__BENCH__DONE__INIT;
    pid_to_wire(&b->b, from);
    b->p.from = &b->b;
    return rt_msg_pb(M_D_DONE, &b->p.base, free_box);
}
static rt_msg_t *pb_empty(uint32_t type, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    protobuf_c_message_init(d, m);
    return rt_msg_pb(type, m, free_box);
}
static unsigned char kib[1024];
static rt_msg_t *pb_data(void)
{
    Cairn__Bench__Data *d = xmalloc(sizeof *d);
    *d = (Cairn__Bench__Data)CAIRN__BENCH__DATA__INIT;
    d->data.data = kib;
    d->data.len = sizeof kib;
    return rt_msg_pb(M_D_DATA, &d->base, free_box);
}
static rt_msg_t *pb_small(uint64_t i)
{
    Cairn__Bench__Small *d = xmalloc(sizeof *d);
    *d = (Cairn__Bench__Small)CAIRN__BENCH__SMALL__INIT;
    d->i = i;
    return rt_msg_pb(M_D_SMALL, &d->base, free_box);
}

static void register_pb_types(void)
{
    rt_msg_register_pb(M_D_PING, &cairn__bench__ping__descriptor);
    rt_msg_register_pb(M_D_PONG, &cairn__bench__pong__descriptor);
    rt_msg_register_pb(M_D_CALL, &cairn__bench__call_ping__descriptor);
    rt_msg_register_pb(M_D_DATA, &cairn__bench__data__descriptor);
    rt_msg_register_pb(M_D_SMALL, &cairn__bench__small__descriptor);
    rt_msg_register_pb(M_D_DONE, &cairn__bench__done__descriptor);
    rt_msg_register_pb(M_D_SUNK, &cairn__bench__sunk__descriptor);
    rt_msg_register_pb(M_D_WHERE, &cairn__bench__where_srv__descriptor);
    rt_msg_register_pb(M_D_SRV, &cairn__bench__srv_pid__descriptor);
}

/* The peer node's processes: ab_echo (also answers WhereSrv), ab_sink, and an ab_srv. */
typedef struct d_echo { pid_cache_t pc; rt_pid_t srv; } d_echo_t;
static int d_echo_init(void *st, void *arg)
{
    ((d_echo_t *)st)->srv = *(rt_pid_t *)arg;
    return 0;
}
static int d_echo_handle(void *st, rt_msg_t *m)
{
    d_echo_t *e = st;
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (m->type == M_D_PING && pb) {
        rt_pid_t to = pid_from_wire(&e->pc, ((const Cairn__Bench__Ping *)pb)->from);
        rt_send(to, pb_empty(M_D_PONG, &cairn__bench__pong__descriptor));
    } else if (m->type == M_D_WHERE && pb) {
        rt_pid_t to = pid_from_wire(&e->pc, ((const Cairn__Bench__WhereSrv *)pb)->from);
        srv_box_t *b = xmalloc(sizeof *b);
        b->p = (Cairn__Bench__SrvPid)CAIRN__BENCH__SRV_PID__INIT;
        pid_to_wire(&b->b, e->srv);
        b->p.pid = &b->b;
        rt_send(to, rt_msg_pb(M_D_SRV, &b->p.base, free_box));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t d_echo_beh = {.name = "ab_echo", .state_size = sizeof(d_echo_t),
                                          .init = d_echo_init, .handle = d_echo_handle};

typedef struct d_sink { uint64_t msgs, bytes; pid_cache_t pc; } d_sink_t;
static int d_sink_handle(void *st, rt_msg_t *m)
{
    d_sink_t *s = st;
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    if (!pb)
        return RT_CONTINUE;
    if (m->type == M_D_DATA) {
        s->msgs++;
        s->bytes += ((const Cairn__Bench__Data *)pb)->data.len;
    } else if (m->type == M_D_SMALL) {
        s->msgs++;
    } else if (m->type == M_D_DONE) {
        Cairn__Bench__Sunk *k = xmalloc(sizeof *k);
        *k = (Cairn__Bench__Sunk)CAIRN__BENCH__SUNK__INIT;
        k->msgs = s->msgs;
        k->bytes = s->bytes;
        rt_send(pid_from_wire(&s->pc, ((const Cairn__Bench__Done *)pb)->from),
                rt_msg_pb(M_D_SUNK, &k->base, free_box));
        s->msgs = s->bytes = 0;
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t d_sink_beh = {.name = "ab_sink", .state_size = sizeof(d_sink_t),
                                          .handle = d_sink_handle};

static int d_srv_handle(void *st, rt_msg_t *m)
{
    srv_t *s = st;
    if (rt_is_call(m) && m->type == M_D_CALL) {
        s->n++;
        rt_reply(rt_call_from(m), pb_empty(M_D_PONG, &cairn__bench__pong__descriptor));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t d_srv_beh = {.name = "ab_srv", .state_size = sizeof(srv_t), .handle = d_srv_handle};

/* The client on node a: the whole of bench_dist's timed part, phase by phase. */
enum { DP_PING_WARM, DP_PING, DP_WHERE, DP_CALL_WARM, DP_CALL, DP_BIN_WARM, DP_BIN, DP_SMALL, DP_END };
typedef struct d_client {
    rt_pid_t main, srv;
    const char *peer;
    int phase;
    uint64_t i, n, t0;
    uint64_t res[8]; /* ping ns, call ns, bin ns, bin bytes, small ns */
    pid_cache_t pc;
} d_client_t;

static const uint64_t D_NPING = 200000, D_NCALL = 100000, D_NBIN = 200000, D_NSMALL = 1000000;

static void d_send_echo(d_client_t *c, rt_msg_t *m) { rt_send_name(c->peer, "ab_echo", m); }
static void d_send_sink(d_client_t *c, rt_msg_t *m) { rt_send_name(c->peer, "ab_sink", m); }

/* Starts phase p (sends its first message, or its whole one-way stream in chunks). */
static void d_phase(d_client_t *c, int p)
{
    c->phase = p;
    c->i = 0;
    c->t0 = now_ns();
    switch (p) {
    case DP_PING_WARM:
    case DP_PING:
        c->n = p == DP_PING ? D_NPING : 2000;
        d_send_echo(c, pb_ping(M_D_PING, rt_self()));
        break;
    case DP_WHERE:
        d_send_echo(c, pb_ping(M_D_WHERE, rt_self())); /* same layout as WhereSrv */
        break;
    case DP_CALL_WARM:
    case DP_CALL:
        c->n = p == DP_CALL ? D_NCALL : 1000;
        rt_call(c->srv, pb_empty(M_D_CALL, &cairn__bench__call_ping__descriptor), 5000);
        break;
    case DP_BIN_WARM:
    case DP_BIN:
    case DP_SMALL:
        c->n = p == DP_BIN ? D_NBIN : p == DP_SMALL ? D_NSMALL : 1000;
        rt_send(rt_self(), rt_msg_new(M_CONT, 0));
        break;
    default:
        break;
    }
}

static int d_client_handle(void *st, rt_msg_t *m)
{
    d_client_t *c = st;
    const ProtobufCMessage *pb = rt_msg_pb_get(m);
    switch (m->type) {
    case M_GO:
        c->main = m->from;
        d_phase(c, DP_PING_WARM);
        return RT_CONTINUE;
    case RT_MSG_CALL_FAILED:
        die("%s", "a remote call failed");
        return RT_CONTINUE;
    case M_D_PONG:
        if (++c->i < c->n) {
            if (c->phase == DP_PING || c->phase == DP_PING_WARM)
                d_send_echo(c, pb_ping(M_D_PING, rt_self()));
            else
                rt_call(c->srv, pb_empty(M_D_CALL, &cairn__bench__call_ping__descriptor), 5000);
            return RT_CONTINUE;
        }
        if (c->phase == DP_PING)
            c->res[0] = now_ns() - c->t0;
        if (c->phase == DP_CALL)
            c->res[1] = now_ns() - c->t0;
        d_phase(c, c->phase + 1);
        return RT_CONTINUE;
    case M_D_SRV:
        c->srv = pid_from_wire(&c->pc, pb ? ((const Cairn__Bench__SrvPid *)pb)->pid : NULL);
        if (rt_pid_is_nil(c->srv))
            die("%s", "no call server pid from the peer");
        d_phase(c, DP_CALL_WARM);
        return RT_CONTINUE;
    case M_CONT: { /* a one-way stream: 1000 messages per turn, then the marker */
        uint64_t end = c->i + 1000 < c->n ? c->i + 1000 : c->n;
        for (; c->i < end; c->i++)
            d_send_sink(c, c->phase == DP_SMALL ? pb_small(c->n - c->i) : pb_data());
        if (c->i < c->n)
            rt_send(rt_self(), rt_msg_new(M_CONT, 0));
        else
            d_send_sink(c, pb_done(rt_self()));
        return RT_CONTINUE;
    }
    case M_D_SUNK: {
        const Cairn__Bench__Sunk *k = (const Cairn__Bench__Sunk *)pb;
        uint64_t el = now_ns() - c->t0;
        if (!k || k->msgs != c->n)
            die("%s", "the sink did not get every message");
        if (c->phase == DP_BIN) {
            c->res[2] = el;
            c->res[3] = k->bytes;
        } else if (c->phase == DP_SMALL) {
            c->res[4] = el;
        }
        if (c->phase == DP_SMALL) {
            report(c->main, c->res[0], c->res[1], c->res[2], c->res[3]);
            report(c->main, c->res[4], 0, 0, 0);
            return RT_STOP;
        }
        d_phase(c, c->phase + 1);
        return RT_CONTINUE;
    }
    default:
        return RT_CONTINUE;
    }
}
static int d_client_init(void *st, void *arg)
{
    ((d_client_t *)st)->peer = arg;
    return 0;
}
static const rt_behaviour_t d_client_beh = {.name = "dist_client", .state_size = sizeof(d_client_t),
                                            .init = d_client_init, .handle = d_client_handle};

static int free_port(void);

static void bench_dist(void)
{
    char cookie[64], na[128], nb[128];
    snprintf(cookie, sizeof cookie, "rtbench_%d", (int)getpid());
    snprintf(na, sizeof na, "a@127.0.0.1:%d", free_port());
    snprintf(nb, sizeof nb, "b@127.0.0.1:%d", free_port());
    memset(kib, 'x', sizeof kib);
    int ready[2], hold[2];
    if (pipe(ready) != 0 || pipe(hold) != 0)
        die("%s", "pipe");
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        die("%s", "fork");
    if (child == 0) { /* the peer node b */
        close(ready[0]);
        close(hold[1]);
        alarm(900);
        register_pb_types();
        start_runtime(0, nb, cookie);
        rt_pid_t srv, echo, sink;
        rt_spawn(&d_srv_beh, NULL, &srv);
        rt_spawn_opt(&d_echo_beh, &srv, &(rt_spawn_opts_t){.name = "ab_echo"}, &echo);
        rt_spawn_opt(&d_sink_beh, NULL, &(rt_spawn_opts_t){.name = "ab_sink"}, &sink);
        char ok = 'r';
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        char buf;
        while (read(hold[0], &buf, 1) > 0) /* until the parent closes its end */
            ;
        rt_stop(1000);
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    char ok;
    if (read(ready[0], &ok, 1) != 1)
        die("%s", "the peer node did not start");
    register_pb_types();
    start_runtime(0, na, cookie);
    int rc = rt_node_connect(nb, 10000);
    if (rc != 0)
        die("connect to the peer: %s", rt_strerror(rc));
    rt_pid_t c;
    rt_spawn(&d_client_beh, nb, &c);
    rt_send(c, rt_msg_new(M_GO, 0));
    uint64_t r[4], r2[4];
    main_result(r);
    main_result(r2);
    emit("c_dist_ping_200k_rate", D_NPING / secs(r[0]), "roundtrips/s");
    emit("c_dist_ping_200k_mean", secs(r[0]) * 1e6 / D_NPING, "us");
    emit("c_dist_call_100k_rate", D_NCALL / secs(r[1]), "calls/s");
    emit("c_dist_call_100k_mean", secs(r[1]) * 1e6 / D_NCALL, "us");
    emit("c_dist_1kib_oneway_200k_tput", (double)r[3] / secs(r[2]) / 1e6, "MB/s");
    emit("c_dist_1kib_oneway_200k_rate", D_NBIN / secs(r[2]), "msgs/s");
    emit("c_dist_small_oneway_1m_rate", D_NSMALL / secs(r2[0]), "msgs/s");
    fflush(stdout);
    rt_stop(1000);
    close(hold[1]);
    int status;
    waitpid(child, &status, 0);
}

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A port that was free a moment ago (bind to port 0, read it back, close). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("%s", "cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------------ driver */

static const char *const ALL_GROUPS[] = {"spawn", "ring", "ring_s1", "call", "fanout", "fair", "sup", "dist"};
enum { NGROUPS = sizeof ALL_GROUPS / sizeof ALL_GROUPS[0] };

static int run_one(const char *g)
{
    alarm(900); /* bounded: a stuck run ends */
    if (strcmp(g, "dist") == 0) {
        bench_dist();
        fflush(stdout);
        return 0;
    }
    start_runtime(strcmp(g, "ring_s1") == 0 ? 1 : 0, NULL, NULL);
    if (strcmp(g, "spawn") == 0)
        bench_spawn();
    else if (strcmp(g, "ring") == 0)
        bench_ring();
    else if (strcmp(g, "ring_s1") == 0)
        bench_ring_s1();
    else if (strcmp(g, "call") == 0)
        bench_call();
    else if (strcmp(g, "fanout") == 0)
        bench_fanout();
    else if (strcmp(g, "fair") == 0)
        bench_fair();
    else if (strcmp(g, "sup") == 0)
        bench_sup();
    else
        die("unknown group %s", g);
    fflush(stdout);
    rt_stop(2000);
    return 0;
}

/* Figures collected over runs, in first-seen order. */
typedef struct fig { char name[96], unit[32]; double v[64]; unsigned n; } fig_t;
static fig_t figs[256];
static unsigned nfigs;

static void collect(const char *line)
{
    char name[96], unit[32];
    double v;
    if (sscanf(line, "%95s %lf %31s", name, &v, unit) != 3)
        return;
    unsigned i;
    for (i = 0; i < nfigs && strcmp(figs[i].name, name) != 0; i++)
        ;
    if (i == nfigs) {
        if (nfigs == 256)
            return;
        nfigs++;
        snprintf(figs[i].name, sizeof figs[i].name, "%s", name);
        snprintf(figs[i].unit, sizeof figs[i].unit, "%s", unit);
    }
    if (figs[i].n < 64)
        figs[i].v[figs[i].n++] = v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Like median.awk: "name median unit". */
static void print_medians(void)
{
    for (unsigned i = 0; i < nfigs; i++) {
        fig_t *f = &figs[i];
        qsort(f->v, f->n, sizeof f->v[0], cmp_d);
        double med = f->n % 2 ? f->v[f->n / 2] : (f->v[f->n / 2 - 1] + f->v[f->n / 2]) / 2;
        double a = fabs(med);
        if (med == floor(med) && a < 1e15)
            printf("%s %lld %s\n", f->name, (long long)med, f->unit);
        else if (a >= 1000)
            printf("%s %.0f %s\n", f->name, med, f->unit);
        else if (a >= 1)
            printf("%s %.3f %s\n", f->name, med, f->unit);
        else
            printf("%s %.6f %s\n", f->name, med, f->unit);
    }
}

/* Runs `self --one g` in a fresh process; its lines go to `raw` and into the figures. */
static int run_child(const char *self, const char *g, FILE *raw)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execl(self, self, "--one", g, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *in = fdopen(fd[0], "r");
    char line[512];
    while (in && fgets(line, sizeof line, in)) {
        if (raw) {
            fputs(line, raw);
            fflush(raw);
        }
        collect(line);
    }
    if (in)
        fclose(in);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--one") == 0)
        return run_one(argv[2]);
    const char *rawpath = NULL;
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "--raw") == 0) {
        rawpath = argv[2];
        a = 3;
    }
    const char *sel[NGROUPS * 4];
    int nsel = 0;
    for (; a < argc && nsel < (int)(sizeof sel / sizeof sel[0]); a++) {
        bool known = false;
        for (int i = 0; i < NGROUPS; i++)
            known = known || strcmp(argv[a], ALL_GROUPS[i]) == 0;
        if (!known) {
            fprintf(stderr, "usage: rt_bench [--raw FILE] [group ...]   (REPS=3)\n"
                            "       rt_bench --one GROUP\ngroups: spawn ring ring_s1 call fanout fair sup dist\n");
            return 2;
        }
        sel[nsel++] = argv[a];
    }
    if (nsel == 0)
        for (int i = 0; i < NGROUPS; i++)
            sel[nsel++] = ALL_GROUPS[i];
    const char *e = getenv("REPS");
    int reps = e && atoi(e) > 0 ? atoi(e) : 3;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = 0;
    FILE *raw = rawpath ? fopen(rawpath, "w") : NULL;
    int failed = 0;
    for (int i = 0; i < nsel; i++)
        for (int r = 1; r <= reps; r++) {
            fprintf(stderr, "[rt_bench] %s run %d/%d\n", sel[i], r, reps);
            if (run_child(self, sel[i], raw) != 0) {
                fprintf(stderr, "[rt_bench] %s run %d failed\n", sel[i], r);
                failed++;
            }
        }
    if (raw)
        fclose(raw);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("c_meta_schedulers %ld count\n", ncpu);
    printf("c_meta_reps %d count\n", reps);
    print_medians();
    return failed ? 1 : 0;
}
