/*
 * err.c — names for the storage error codes (one table, in err.h) and the allocator.
 * The allocator's only policy: out of memory is fatal, everything else is the caller's.
 */
#include "storage/err.h"

#include <stdio.h>
#include <stdlib.h>

const char *store_strerror(int err)
{
    switch (err) {
    case STORE_OK:
        return "ok";
#define STORE__ERR_CASE(name, val, msg) \
    case STORE_##name:                  \
        return msg;
        STORE_ERRNO_MAP(STORE__ERR_CASE)
#undef STORE__ERR_CASE
    default:
        return "unknown error";
    }
}

const char *store_err_name(int err)
{
    switch (err) {
    case STORE_OK:
        return "OK";
#define STORE__NAME_CASE(name, val, msg) \
    case STORE_##name:                   \
        return #name;
        STORE_ERRNO_MAP(STORE__NAME_CASE)
#undef STORE__NAME_CASE
    default:
        return "UNKNOWN";
    }
}

static void oom(size_t n)
{
    fprintf(stderr, "cairn storage: out of memory allocating %zu bytes\n", n);
    abort();
}

void *store_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *store_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *store_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

void store_free(void *p)
{
    free(p);
}
