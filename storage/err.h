/*
 * err.h — the storage layer's error codes (prefix store_/STORE_) and its allocator.
 *
 * Every fallible function in storage/ returns 0 on success or one negative code from
 * STORE_ERRNO_MAP; store_strerror() and store_err_name() name them. I/O failures are always
 * returned, never fatal. Out of memory aborts the node (server policy, as in the runtime).
 */
#ifndef CAIRN_STORE_ERR_H
#define CAIRN_STORE_ERR_H

#include <stddef.h>

#define STORE_ERRNO_MAP(XX)                                                     \
    XX(EINVAL, -1, "invalid argument")                                          \
    XX(ENOTFOUND, -2, "not found")                                              \
    XX(EIO, -3, "i/o error")                                                    \
    XX(ECORRUPT, -4, "data corruption detected")                                \
    XX(ENOSPC, -5, "no space left on device")                                   \
    XX(ELOCKED, -6, "database is locked by another process")                    \
    XX(EDECODE, -7, "malformed object or clock")                                \
    XX(ETOOBIG, -8, "object too large")                                         \
    XX(ESIBLINGS, -9, "too many siblings")                                      \
    XX(EKEY, -10, "invalid key (empty component or too long)")                  \
    XX(ECLOSED, -11, "backend is not open")                                     \
    XX(ELAYOUT, -12, "data dir holds data in the other LevelDB layout")                \
    XX(EENGINE, -13, "data dir holds data of another storage engine")

enum {
#define STORE__ERR_ENUM(name, val, msg) STORE_##name = (val),
    STORE_ERRNO_MAP(STORE__ERR_ENUM)
#undef STORE__ERR_ENUM
    STORE_OK = 0
};

/* A static string describing err ("ok" for 0, "unknown error" for anything unknown). */
const char *store_strerror(int err);
/* The code's name without prefix, e.g. "ENOSPC"; static string. */
const char *store_err_name(int err);

/* Allocation for storage/: never returns NULL (aborts with a message on out of memory).
 * Memory from these is freed with free() / store_free(). */
void *store_malloc(size_t n);
void *store_calloc(size_t n, size_t size);
void *store_realloc(void *p, size_t n);
void store_free(void *p);

#endif
