/*
 * arena.c — bump allocation for transient protobuf-c structures (see arena.h).
 * Invariant: cur <= end within the current block; blocks are only freed all together.
 */
#include "storage/arena.h"

#include "storage/err.h"

struct store__arena_block_s {
    store__arena_block_t *next;
    _Alignas(16) uint8_t data[];
};

static void *pb_alloc(void *data, size_t n)
{
    return store__arena_alloc(data, n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void store__arena_init(store__arena_t *a)
{
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    a->cur = a->inline_buf;
    a->end = a->inline_buf + sizeof a->inline_buf;
    a->blocks = NULL;
    a->next_size = 8192;
}

void *store__arena_alloc(store__arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) < n) {
        size_t sz = a->next_size;
        while (sz < n)
            sz *= 2;
        a->next_size = sz * 2;
        store__arena_block_t *b = store_malloc(sizeof *b + sz);
        b->next = a->blocks;
        a->blocks = b;
        a->cur = b->data;
        a->end = b->data + sz;
    }
    void *p = a->cur;
    a->cur += n;
    return p;
}

void store__arena_release(store__arena_t *a)
{
    while (a->blocks) {
        store__arena_block_t *n = a->blocks->next;
        store_free(a->blocks);
        a->blocks = n;
    }
    a->cur = a->inline_buf;
    a->end = a->inline_buf + sizeof a->inline_buf;
}
