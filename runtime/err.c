/*
 * err.c — names for the runtime's error codes and exit reasons (one table each, in rt.h).
 */
#include "runtime/rt.h"

#include <stdio.h>

const char *rt_strerror(int err)
{
    switch (err) {
    case RT_OK:
        return "ok";
#define RT__ERR_CASE(name, val, msg) \
    case RT_##name:                  \
        return msg;
        RT_ERRNO_MAP(RT__ERR_CASE)
#undef RT__ERR_CASE
    default:
        return "unknown error";
    }
}

const char *rt_reason_str(int reason)
{
    static _Thread_local char buf[32];
    switch (reason) {
#define RT__REASON_CASE(name, val, msg) \
    case RT_R_##name:                   \
        return msg;
        RT_REASON_MAP(RT__REASON_CASE)
#undef RT__REASON_CASE
    default:
        snprintf(buf, sizeof buf, "%s(%d)", reason >= RT_REASON_USER ? "user" : "reason", reason);
        return buf;
    }
}
