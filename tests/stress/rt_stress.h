/*
 * rt_stress.h — helpers for the runtime's ThreadSanitizer stress programs (tests/stress/rt_*.c):
 * a failure check that prints and exits non-zero, starting the runtime quietly, a small
 * per-thread PRNG, and a time bound for each program's work phase.
 */
#ifndef CAIRN_RT_STRESS_H
#define CAIRN_RT_STRESS_H

#include "runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

static inline void stress_start(unsigned schedulers)
{
    rt_config_t c;
    rt_config_default(&c);
    c.schedulers = schedulers;
    rt_log_set_level(RT_LOG_NONE);
    CHECK(rt_start(&c) == 0, "rt_start");
}

static inline uint64_t stress_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline uint64_t stress_ms(void) { return rt_now_ns() / 1000000ull; }

static inline rt_msg_t *stress_u64(uint32_t type, uint64_t v) { return rt_msg_copy(type, &v, sizeof v); }
static inline uint64_t stress_u64_of(const rt_msg_t *m)
{
    uint64_t v;
    memcpy(&v, m->data, sizeof v);
    return v;
}

#endif
