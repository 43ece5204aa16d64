/*
 * test_rt_msg.c — mailboxes and messages (issue 2, properties 1 and 2): FIFO per
 * sender/receiver pair under concurrent producers, no message lost or duplicated over 10^6
 * sends from 4 threads, and message ownership: zero-copy forwarding and replying,
 * rt_msg_keep, destructors run exactly once, protobuf-carrying messages freed with their
 * destructor, and rt_send taking the message even when it fails.
 */
#include "rt_test.h"

#include "build/gen/proto/rt_test.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

enum {
    T_SEQ = RT_MSG_USER + 100, /* payload seq_msg_t */
    T_RESULT,                  /* call: reply with the receiver's verdict */
    T_FWD,                     /* forward the message itself to state->next */
    T_ECHO_SAME,               /* call: reply with the request message itself */
    T_KEEP,                    /* keep this message (rt_msg_keep) */
    T_RELEASE,                 /* call: check and free every kept message; reply the count */
    T_PLAIN,                   /* handled and dropped: the runtime frees it */
    T_PB,                      /* a Cairn__Test__Payload */
    T_PB_SUM,                  /* call: reply with the sum of the seqs of PB messages seen */
    T_CRASH,                   /* handler returns an error */
    T_PRODUCE,                 /* payload produce_msg_t: a producer process sends a batch */
};

/* ------------------------------------------------------------------ FIFO and no-loss */

enum { MAX_SENDERS = 8 };

typedef struct {
    uint32_t sender;
    uint32_t pad;
    uint64_t seq; /* 1, 2, 3, ... per sender (per receiver: strictly increasing) */
    uint64_t val;
} seq_msg_t;

typedef struct {
    uint64_t last[MAX_SENDERS];
    uint64_t count[MAX_SENDERS];
    uint64_t sum[MAX_SENDERS];
    uint64_t errors; /* order violations (a duplicate is one too: seq not increasing) */
} seq_state_t;

static atomic_uint_fast64_t g_consumed;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int seq_handle(void *st, rt_msg_t *m)
{
    seq_state_t *s = st;
    if (m->type == T_SEQ) {
        seq_msg_t *q = (seq_msg_t *)(void *)m->data;
        if (q->sender >= MAX_SENDERS || q->seq <= s->last[q->sender] || q->val != mix(q->seq * 131 + q->sender))
            s->errors++;
        s->last[q->sender] = q->seq;
        s->count[q->sender]++;
        s->sum[q->sender] += q->val;
        atomic_fetch_add_explicit(&g_consumed, 1, memory_order_relaxed);
    } else if (m->type == T_RESULT && rt_is_call(m)) {
        rt_reply(rt_call_from(m), rt_msg_copy(T_RESULT, s, sizeof *s));
    }
    return RT_CONTINUE;
}
static const rt_behaviour_t seq_beh = {.name = "seq", .state_size = sizeof(seq_state_t), .handle = seq_handle};

static void get_result(rt_pid_t p, seq_state_t *out)
{
    rt_msg_t *r = NULL;
    cr_assert_eq(rt_call_sync(p, rt_msg_new(T_RESULT, 0), 10000, &r, NULL), 0);
    cr_assert_eq(r->size, sizeof *out);
    memcpy(out, r->data, sizeof *out);
    rt_msg_free(r);
}

static rt_msg_t *seq_msg(uint32_t sender, uint64_t seq)
{
    rt_msg_t *m = rt_msg_new(T_SEQ, sizeof(seq_msg_t));
    seq_msg_t *q = (seq_msg_t *)(void *)m->data;
    q->sender = sender;
    q->pad = 0;
    q->seq = seq;
    q->val = mix(seq * 131 + sender);
    return m;
}

typedef struct {
    uint32_t index;
    uint64_t n;
    rt_pid_t *to;
    unsigned nto;
    uint64_t *per_to; /* messages sent to each receiver */
    uint64_t *sum_to;
    uint64_t *seq_to; /* next seq per receiver: strictly increasing per pair */
    atomic_uint_fast64_t *sent_total;
} producer_t;

static void *producer_main(void *arg)
{
    producer_t *pr = arg;
    uint64_t r = pr->index * 7919u + 1;
    for (uint64_t i = 0; i < pr->n; i++) {
        r = mix(r + i);
        unsigned k = pr->nto > 1 ? (unsigned)(r % pr->nto) : 0;
        uint64_t seq = ++pr->seq_to[k];
        rt_msg_t *m = seq_msg(pr->index, seq);
        pr->per_to[k]++;
        pr->sum_to[k] += ((seq_msg_t *)(void *)m->data)->val;
        rt_send(pr->to[k], m);
        /* bound the memory held in mailboxes: wait for consumers now and then */
        uint64_t sent = atomic_fetch_add(pr->sent_total, 1) + 1;
        if ((i & 4095) == 0) {
            uint64_t deadline = rt_now_ns() + 20000000000ull;
            while (sent > atomic_load(&g_consumed) + 200000 && rt_now_ns() < deadline)
                sched_yield();
        }
    }
    rt_thread_detach();
    return NULL;
}

/* nthreads producers, each sending n messages spread over nrecv receiver processes. */
static void run_producers(unsigned nthreads, uint64_t n, unsigned nrecv)
{
    rt_pid_t recv[8];
    cr_assert_leq(nrecv, 8);
    cr_assert_leq(nthreads, MAX_SENDERS);
    for (unsigned i = 0; i < nrecv; i++)
        cr_assert_eq(rt_spawn(&seq_beh, NULL, &recv[i]), 0);
    atomic_store(&g_consumed, 0);
    atomic_uint_fast64_t sent_total = 0;
    producer_t pr[MAX_SENDERS];
    uint64_t per_to[MAX_SENDERS][8], sum_to[MAX_SENDERS][8], seq_to[MAX_SENDERS][8];
    memset(per_to, 0, sizeof per_to);
    memset(sum_to, 0, sizeof sum_to);
    memset(seq_to, 0, sizeof seq_to);
    pthread_t th[MAX_SENDERS];
    for (unsigned t = 0; t < nthreads; t++) {
        pr[t] = (producer_t){.index = t, .n = n, .to = recv, .nto = nrecv, .per_to = per_to[t],
                             .sum_to = sum_to[t], .seq_to = seq_to[t], .sent_total = &sent_total};
        cr_assert_eq(pthread_create(&th[t], NULL, producer_main, &pr[t]), 0);
    }
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    /* every producer's pushes completed before join: our call is queued behind them */
    uint64_t total = 0;
    for (unsigned i = 0; i < nrecv; i++) {
        seq_state_t s;
        get_result(recv[i], &s);
        cr_assert_eq(s.errors, 0, "receiver %u saw %llu order/dup/corruption errors", i,
                     (unsigned long long)s.errors);
        for (unsigned t = 0; t < nthreads; t++) {
            cr_assert_eq(s.count[t], per_to[t][i], "receiver %u from producer %u: got %llu of %llu", i, t,
                         (unsigned long long)s.count[t], (unsigned long long)per_to[t][i]);
            cr_assert_eq(s.sum[t], sum_to[t][i], "receiver %u from producer %u: checksum differs", i, t);
            cr_assert_eq(s.last[t], seq_to[t][i]);
            total += s.count[t];
        }
    }
    cr_assert_eq(total, (uint64_t)nthreads * n);
}

static void start2(void) { rt_test_start_n(2); }
static void stop(void) { rt_test_stop(); }
TestSuite(rt_msg, .init = start2, .fini = stop, .timeout = 60);

/* Property 1: FIFO between each sender/receiver pair, two producer threads, one receiver. */
Test(rt_msg, fifo_per_pair_two_producer_threads)
{
    run_producers(2, 200000, 1);
}

/* Property 1: 10^6 sends from 4 threads to 4 receivers: nothing lost or duplicated (exact
 * count and checksum per sender and receiver, strictly increasing sequence per pair). */
Test(rt_msg, million_sends_four_threads_no_loss_no_dup)
{
    run_producers(4, 250000, 4);
}

/* FIFO between processes too: two producer processes (which the schedulers may migrate
 * between threads from one turn to the next) each send 100k messages in batches to one
 * receiver. */
typedef struct { rt_pid_t to; uint32_t index; uint32_t left; uint64_t seq; } produce_msg_t;
static int producer_proc_handle(void *st, rt_msg_t *m)
{
    (void)st;
    if (m->type != T_PRODUCE)
        return RT_CONTINUE;
    produce_msg_t *p = (produce_msg_t *)(void *)m->data;
    for (unsigned i = 0; i < 100 && p->left > 0; i++, p->left--)
        rt_send(p->to, seq_msg(p->index, ++p->seq));
    if (p->left > 0)
        rt_send(rt_self(), m); /* continue in a later turn: the message itself */
    return RT_CONTINUE;
}
static const rt_behaviour_t producer_proc = {.name = "producer", .handle = producer_proc_handle};

Test(rt_msg, fifo_between_processes)
{
    rt_pid_t recv, prod[2];
    cr_assert_eq(rt_spawn(&seq_beh, NULL, &recv), 0);
    enum { N = 100000 };
    for (unsigned i = 0; i < 2; i++) {
        cr_assert_eq(rt_spawn(&producer_proc, NULL, &prod[i]), 0);
        produce_msg_t p = {.to = recv, .index = i, .left = N, .seq = 0};
        rt_send(prod[i], rt_msg_copy(T_PRODUCE, &p, sizeof p));
    }
    seq_state_t s;
    uint64_t deadline = rt_now_ns() + 30000000000ull;
    do {
        get_result(recv, &s);
    } while ((s.count[0] < N || s.count[1] < N) && rt_now_ns() < deadline);
    cr_assert_eq(s.errors, 0);
    cr_assert_eq(s.count[0], N);
    cr_assert_eq(s.count[1], N);
}

/* ------------------------------------------------------------------ ownership */

/* Waits (bounded) until *v reaches want; the exit path frees queued messages after it has
 * sent its DOWNs, so a count may trail the DOWN by a moment. */
static int wait_count(atomic_int *v, int want)
{
    for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
        usleep(1000);
    return atomic_load(v);
}

static atomic_int g_dtor_runs;
static void count_dtor(rt_msg_t *m)
{
    (void)m;
    atomic_fetch_add(&g_dtor_runs, 1);
}

/* A forwarder: T_FWD goes on to state->next unchanged; T_ECHO_SAME calls are answered with
 * the request itself; T_KEEP messages are kept until T_RELEASE. */
typedef struct {
    rt_pid_t next;
    rt_msg_t *kept[64];
    unsigned nkept;
    uint64_t pb_sum;
} own_state_t;

static int own_init(void *st, void *arg)
{
    own_state_t *s = st;
    if (arg)
        s->next = *(rt_pid_t *)arg;
    return 0;
}

static int own_handle(void *st, rt_msg_t *m)
{
    own_state_t *s = st;
    switch (m->type) {
    case T_FWD:
        rt_send(s->next, m);
        return RT_CONTINUE;
    case T_ECHO_SAME:
        rt_reply(rt_call_from(m), m);
        return RT_CONTINUE;
    case T_KEEP:
        RT_ASSERT(s->nkept < 64);
        rt_msg_keep(m);
        s->kept[s->nkept++] = m;
        return RT_CONTINUE;
    case T_RELEASE: {
        uint64_t n = 0;
        for (unsigned i = 0; i < s->nkept; i++) {
            /* the payload must be intact: the runtime did not free or reuse it */
            RT_ASSERT(rt_test_u64_of(s->kept[i]) == 0xabc000u + i);
            rt_msg_free(s->kept[i]);
            n++;
        }
        s->nkept = 0;
        rt_reply(rt_call_from(m), rt_test_u64_msg(T_RELEASE, n));
        return RT_CONTINUE;
    }
    case T_PB: {
        ProtobufCMessage *pb = rt_msg_pb_get(m);
        RT_ASSERT(pb != NULL && pb->descriptor == &cairn__test__payload__descriptor);
        Cairn__Test__Payload *p = (Cairn__Test__Payload *)pb;
        RT_ASSERT(p->n_vals == 3 && p->vals[2] == 3 && strcmp(p->text, "hello") == 0);
        s->pb_sum += p->seq;
        return RT_CONTINUE;
    }
    case T_PB_SUM:
        rt_reply(rt_call_from(m), rt_test_u64_msg(T_PB_SUM, s->pb_sum));
        return RT_CONTINUE;
    case T_CRASH:
        return -1;
    default:
        return RT_CONTINUE;
    }
}
static const rt_behaviour_t own_beh = {.name = "own", .state_size = sizeof(own_state_t),
                                       .init = own_init, .handle = own_handle};

/* Property 2: a local send does not copy; forwarding the handled message passes the same
 * pointer on (two hops: test -> a -> b -> test), and replying with the request too. */
Test(rt_msg, forwarding_and_replying_are_zero_copy)
{
    rt_pid_t self = rt_self(), b, a;
    cr_assert_eq(rt_spawn(&own_beh, &self, &b), 0);
    cr_assert_eq(rt_spawn(&own_beh, &b, &a), 0);
    for (int i = 0; i < 100; i++) {
        rt_msg_t *m = rt_test_u64_msg(T_FWD, (uint64_t)i);
        m->dtor = count_dtor;
        uintptr_t addr = (uintptr_t)m;
        cr_assert_eq(rt_send(a, m), 0);
        rt_msg_t *got = rt_test_recv_type(T_FWD, 5000);
        cr_assert_not_null(got);
        cr_assert_eq((uintptr_t)got, addr, "the forwarded message was copied");
        cr_assert_eq(rt_test_u64_of(got), (uint64_t)i);
        cr_assert_eq(atomic_load(&g_dtor_runs), 0, "a forwarded message was freed on the way");
        rt_msg_free(got);
        cr_assert_eq(atomic_load(&g_dtor_runs), 1);
        atomic_store(&g_dtor_runs, 0);
    }
    rt_msg_t *req = rt_test_u64_msg(T_ECHO_SAME, 77), *rep = NULL;
    uintptr_t addr = (uintptr_t)req;
    cr_assert_eq(rt_call_sync(a, req, 5000, &rep, NULL), 0);
    cr_assert_eq((uintptr_t)rep, addr, "the reply is not the request message itself");
    cr_assert(rep->flags & RT_MSGF_REPLY);
    cr_assert_eq(rt_test_u64_of(rep), 77);
    rt_msg_free(rep);
}

/* rt_msg_keep: kept messages survive the handler (their payload is checked later, under
 * ASan) and are freed exactly once, by the handler; a message not kept is freed by the
 * runtime exactly once after handle() returns. */
Test(rt_msg, keep_lets_a_handler_own_the_message)
{
    rt_pid_t k;
    cr_assert_eq(rt_spawn(&own_beh, NULL, &k), 0);
    atomic_store(&g_dtor_runs, 0);
    for (unsigned i = 0; i < 10; i++) {
        rt_msg_t *m = rt_test_u64_msg(T_KEEP, 0xabc000u + i);
        m->dtor = count_dtor;
        rt_send(k, m);
    }
    /* a call queued behind the keeps: they have all been handled when it returns */
    cr_assert_eq(rt_test_call_u64(k, T_PB_SUM), 0);
    cr_assert_eq(atomic_load(&g_dtor_runs), 0, "the runtime freed a kept message");
    cr_assert_eq(rt_test_call_u64(k, T_RELEASE), 10);
    cr_assert_eq(atomic_load(&g_dtor_runs), 10);

    for (unsigned i = 0; i < 10; i++) {
        rt_msg_t *m = rt_msg_new(T_PLAIN, 0);
        m->dtor = count_dtor;
        rt_send(k, m);
    }
    cr_assert_eq(rt_test_call_u64(k, T_RELEASE), 0); /* FIFO: the plain ones were handled */
    cr_assert_eq(atomic_load(&g_dtor_runs), 20, "a handled message was not freed exactly once");
}

/* rt_send always takes the message: to a dead pid, to a nil pid, with a reserved type. */
Test(rt_msg, send_takes_the_message_even_when_it_fails)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&own_beh, NULL, &p), 0);
    rt_ref_t ref = rt_monitor(p);
    rt_send(p, rt_msg_new(T_CRASH, 0));
    cr_assert_eq(rt_test_wait_down(ref, 5000), RT_R_CRASH);
    atomic_store(&g_dtor_runs, 0);
    rt_msg_t *m = rt_msg_new(T_PLAIN, 0);
    m->dtor = count_dtor;
    cr_assert_eq(rt_send(p, m), RT_ENOPROC);
    m = rt_msg_new(T_PLAIN, 0);
    m->dtor = count_dtor;
    cr_assert_eq(rt_send(RT_NOPID, m), RT_ENOPROC);
    m = rt_msg_new(RT_MSG_SYS_FIRST_INTERNAL + 1, 0); /* internal signals cannot be forged */
    m->dtor = count_dtor;
    cr_assert_eq(rt_send(rt_self(), m), RT_EINVAL);
    cr_assert_eq(atomic_load(&g_dtor_runs), 3);
}

/* A message queued for a process that crashes before handling it is freed with it. */
Test(rt_msg, queued_messages_of_a_dead_process_are_freed)
{
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&own_beh, NULL, &p), 0);
    atomic_store(&g_dtor_runs, 0);
    rt_ref_t ref = rt_monitor(p);
    rt_send(p, rt_msg_new(T_CRASH, 0));
    for (int i = 0; i < 1000; i++) {
        rt_msg_t *m = rt_msg_new(T_PLAIN, 0);
        m->dtor = count_dtor;
        rt_send(p, m);
    }
    cr_assert_eq(rt_test_wait_down(ref, 5000), RT_R_CRASH);
    /* every message was either refused (freed by rt_send) or drained by the exit path */
    cr_assert_eq(wait_count(&g_dtor_runs, 1000), 1000);
}

/* ------------------------------------------------------------------ protobuf messages */

static atomic_int g_pb_frees;
static void pb_free_counted(ProtobufCMessage *pb)
{
    atomic_fetch_add(&g_pb_frees, 1);
    protobuf_c_message_free_unpacked(pb, NULL);
}

/* A heap-allocated Payload, as the decoder would make it (freed by free_unpacked). */
static Cairn__Test__Payload *make_payload(uint64_t seq)
{
    uint32_t vals[3] = {1, 2, 3};
    Cairn__Test__Payload p = CAIRN__TEST__PAYLOAD__INIT;
    p.seq = seq;
    p.text = (char *)"hello";
    p.n_vals = 3;
    p.vals = vals;
    uint8_t buf[128];
    size_t len = cairn__test__payload__pack(&p, buf);
    Cairn__Test__Payload *u = cairn__test__payload__unpack(NULL, len, buf);
    cr_assert_not_null(u);
    return u;
}

/* Property 2: a protobuf message is delivered as is and released with its destructor
 * exactly once (custom free function counted; the default one is checked by ASan's leak
 * detector), also when the receiver crashes or is dead. */
Test(rt_msg, pb_messages_are_freed_with_their_dtor)
{
    cr_assert_eq(rt_msg_register_pb(T_PB, &cairn__test__payload__descriptor), 0);
    cr_assert_eq(rt_msg_descriptor(T_PB), &cairn__test__payload__descriptor);
    rt_pid_t p;
    cr_assert_eq(rt_spawn(&own_beh, NULL, &p), 0);
    atomic_store(&g_pb_frees, 0);
    uint64_t want = 0;
    for (uint64_t i = 1; i <= 100; i++) {
        rt_send(p, rt_msg_pb(T_PB, &make_payload(i)->base, pb_free_counted));
        rt_send(p, rt_msg_pb(T_PB, &make_payload(1000 * i)->base, NULL));
        want += i + 1000 * i;
    }
    cr_assert_eq(rt_test_call_u64(p, T_PB_SUM), want);
    cr_assert_eq(atomic_load(&g_pb_frees), 100);

    /* kept, then forwarded to a thread: still the same pb, freed once by its last owner */
    rt_msg_t *m = rt_msg_pb(T_PB, &make_payload(5)->base, pb_free_counted);
    ProtobufCMessage *pb = rt_msg_pb_get(m);
    rt_pid_t self = rt_self(), f;
    cr_assert_eq(rt_spawn(&own_beh, &self, &f), 0);
    m->type = T_FWD;
    rt_send(f, m);
    rt_msg_t *got = rt_test_recv_type(T_FWD, 5000);
    cr_assert_not_null(got);
    cr_assert_eq(rt_msg_pb_get(got), pb);
    rt_msg_free(got);
    cr_assert_eq(atomic_load(&g_pb_frees), 101);

    /* queued behind a crash: freed by the exit path */
    rt_ref_t ref = rt_monitor(p);
    rt_send(p, rt_msg_new(T_CRASH, 0));
    for (uint64_t i = 0; i < 50; i++)
        rt_send(p, rt_msg_pb(T_PB, &make_payload(i)->base, pb_free_counted));
    cr_assert_eq(rt_test_wait_down(ref, 5000), RT_R_CRASH);
    cr_assert_eq(wait_count(&g_pb_frees, 151), 151);
    /* to a dead pid */
    rt_send(p, rt_msg_pb(T_PB, &make_payload(1)->base, pb_free_counted));
    cr_assert_eq(atomic_load(&g_pb_frees), 152);
}
