/*
 * arena.h — a bump allocator that serves protobuf-c while one message is built or parsed
 * (prefix store__arena_, internal to storage/). The first block lives in the struct (on the
 * caller's stack); larger needs chain malloc'ed blocks. Everything is released at once by
 * store__arena_release(); protobuf-c's per-pointer free is a no-op.
 */
#ifndef CAIRN_STORE_ARENA_H
#define CAIRN_STORE_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define STORE__ARENA_INLINE 2048

typedef struct store__arena_block_s store__arena_block_t;

typedef struct store__arena_s {
    ProtobufCAllocator pb;          /* hand &arena->pb to protobuf-c */
    uint8_t *cur, *end;
    store__arena_block_t *blocks;   /* malloc'ed blocks, newest first */
    size_t next_size;
    _Alignas(16) uint8_t inline_buf[STORE__ARENA_INLINE];
} store__arena_t;

void store__arena_init(store__arena_t *a);
/* 16-byte aligned memory valid until store__arena_release(); never NULL. */
void *store__arena_alloc(store__arena_t *a, size_t n);
void store__arena_release(store__arena_t *a);

#endif
