/*
 * errors.h — the error convention of the node's parsers and start-up code (prefix node_):
 * a function that fails writes a human-readable reason into a caller's buffer and returns -1.
 * Kept apart from config.c so that pure modules (pb_codec.c, fuzzed alone) can use it.
 */
#ifndef CAIRN_NODE_ERRORS_H
#define CAIRN_NODE_ERRORS_H

#include <stddef.h>

/* Writes the printf-formatted reason into err[0..errlen) (if err) and returns -1. */
int node_errorf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
