/*
 * rt_test.h — small helpers shared by the runtime's Criterion suites (tests/unit/test_rt_*.c):
 * starting the runtime with a given number of schedulers, bounded selective receives, and a
 * tiny "probe" behaviour that answers calls with a snapshot of a counter.
 */
#ifndef CAIRN_RT_TEST_H
#define CAIRN_RT_TEST_H

#include "runtime/rt.h"

#include <criterion/criterion.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define RT_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RT_TEST_LSAN 1
#endif
#endif
#ifdef RT_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static inline void rt_test_start_n(unsigned schedulers)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = schedulers;
    rt_log_set_level(RT_LOG_NONE); /* crashes are expected here: keep the output readable */
    cr_assert_eq(rt_start(&c), 0);
}

/* Fails the test if LeakSanitizer finds unreachable memory now (ASan builds; a no-op
 * elsewhere). Criterion ignores leak reports printed at exit, so the suites ask here. */
static inline void rt_test_assert_no_leaks(void)
{
#ifdef RT_TEST_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks (see above)");
#endif
}

/* Stops the runtime and checks that it freed everything. */
static inline void rt_test_stop(void)
{
    rt_stop(2000);
    rt_test_assert_no_leaks();
}

/* A selective receive on the calling (non-scheduler) thread, bounded by ms. */
static inline bool rt_test_match_type(const rt_msg_t *m, void *ctx)
{
    return m->type == *(const uint32_t *)ctx;
}
static inline rt_msg_t *rt_test_recv_type(uint32_t type, uint32_t ms)
{
    rt_msg_t *m = NULL;
    return rt_receive_match(ms, rt_test_match_type, &type, &m) == 0 ? m : NULL;
}

typedef struct { rt_ref_t ref; } rt_test_ref_ctx_t;
static inline bool rt_test_match_down(const rt_msg_t *m, void *ctx)
{
    return m->type == RT_MSG_DOWN && ((const rt_down_msg_t *)(const void *)m->data)->ref == *(const rt_ref_t *)ctx;
}
/* Waits for the DOWN of monitor `ref`; returns its reason, or -1 if none came within ms. */
static inline int rt_test_wait_down(rt_ref_t ref, uint32_t ms)
{
    rt_msg_t *m = NULL;
    if (rt_receive_match(ms, rt_test_match_down, &ref, &m) != 0)
        return -1;
    int reason = ((rt_down_msg_t *)(void *)m->data)->reason;
    rt_msg_free(m);
    return reason;
}

/* Asserts that nothing at all arrives on this thread's mailbox within ms. */
static inline void rt_test_expect_silence(uint32_t ms)
{
    rt_msg_t *m = NULL;
    int rc = rt_receive(ms, &m);
    if (rc == 0) {
        uint32_t type = m->type;
        rt_msg_free(m);
        cr_assert_fail("unexpected message of type %u", type);
    }
}

/* Calls `to` with an empty message of `type` and returns the reply's first u64 (payload). */
static inline uint64_t rt_test_call_u64(rt_pid_t to, uint32_t type)
{
    rt_msg_t *r = NULL;
    int rc = rt_call_sync(to, rt_msg_new(type, 0), 5000, &r, NULL);
    cr_assert_eq(rc, 0, "call failed: %s", rt_strerror(rc));
    cr_assert_geq(r->size, sizeof(uint64_t));
    uint64_t v;
    memcpy(&v, r->data, sizeof v);
    rt_msg_free(r);
    return v;
}

static inline rt_msg_t *rt_test_u64_msg(uint32_t type, uint64_t v) { return rt_msg_copy(type, &v, sizeof v); }
static inline uint64_t rt_test_u64_of(const rt_msg_t *m)
{
    uint64_t v;
    memcpy(&v, m->data, sizeof v);
    return v;
}

#endif
