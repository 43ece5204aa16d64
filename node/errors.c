/*
 * errors.c — node_errorf (node/errors.h).
 */
#include "node/errors.h"

#include <stdarg.h>
#include <stdio.h>

int node_errorf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
