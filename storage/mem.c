/*
 * mem.c — the in-memory backend: a skip list of (encoded key, value) in bytewise key order,
 * so folds, bucket ranges and resume points behave exactly as in LevelDB. Values are copied
 * in and copied out (get returns a private copy). For tests and ring-size experiments; it
 * keeps nothing across close.
 */
#include "storage/backend.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LEVEL 24

typedef struct node_s {
    uint8_t *key, *val;     /* one allocation: key bytes then value bytes, after next[] */
    size_t klen, vlen;
    int level;
    struct node_s *next[];
} node_t;

typedef struct mem_s {
    store_backend_t base;
    node_t *head;
    int level;
    uint64_t rng;
    uint64_t count, bytes;
} mem_t;

static const store_backend_ops_t mem_ops;

static int keycmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (an > bn) - (an < bn);
}

static int random_level(mem_t *m)
{
    int lvl = 1;
    while (lvl < MAX_LEVEL) {
        m->rng ^= m->rng << 13; /* xorshift64: deterministic per backend */
        m->rng ^= m->rng >> 7;
        m->rng ^= m->rng << 17;
        if (m->rng & 3)
            break; /* p = 1/4 */
        lvl++;
    }
    return lvl;
}

static node_t *node_new(int level, const uint8_t *k, size_t kn, const void *v, size_t vn)
{
    node_t *n = store_malloc(sizeof *n + (size_t)level * sizeof(node_t *) + kn + vn);
    n->level = level;
    n->key = (uint8_t *)&n->next[level];
    n->val = n->key + kn;
    n->klen = kn;
    n->vlen = vn;
    if (kn)
        memcpy(n->key, k, kn);
    if (vn)
        memcpy(n->val, v, vn);
    for (int i = 0; i < level; i++)
        n->next[i] = NULL;
    return n;
}

/* Fills prev[] with the last node < key at each level; returns the first node >= key. */
static node_t *seek(mem_t *m, const uint8_t *k, size_t kn, node_t **prev)
{
    node_t *x = m->head;
    for (int i = m->level - 1; i >= 0; i--) {
        while (x->next[i] && keycmp(x->next[i]->key, x->next[i]->klen, k, kn) < 0)
            x = x->next[i];
        if (prev)
            prev[i] = x;
    }
    return x->next[0];
}

static void mem_set(mem_t *m, const uint8_t *k, size_t kn, const void *v, size_t vn)
{
    node_t *prev[MAX_LEVEL];
    node_t *x = seek(m, k, kn, prev);
    int replace = x && keycmp(x->key, x->klen, k, kn) == 0;
    int level = replace ? x->level : random_level(m);
    node_t *n = node_new(level, k, kn, v, vn);
    if (level > m->level) {
        for (int i = m->level; i < level; i++)
            prev[i] = m->head;
        m->level = level;
    }
    for (int i = 0; i < level; i++) {
        n->next[i] = replace ? x->next[i] : prev[i]->next[i];
        prev[i]->next[i] = n;
    }
    if (replace) {
        m->bytes -= x->klen + x->vlen;
        store_free(x);
    } else {
        m->count++;
    }
    m->bytes += kn + vn;
}

static void mem_unset(mem_t *m, const uint8_t *k, size_t kn)
{
    node_t *prev[MAX_LEVEL];
    node_t *x = seek(m, k, kn, prev);
    if (!x || keycmp(x->key, x->klen, k, kn) != 0)
        return;
    for (int i = 0; i < x->level; i++)
        prev[i]->next[i] = x->next[i];
    m->count--;
    m->bytes -= x->klen + x->vlen;
    store_free(x);
}

static void release_copy(void *p)
{
    store_free(p);
}

static int mem_get(store_backend_t *b, const store_key_t *k, store_val_t *out)
{
    mem_t *m = (mem_t *)b;
    store__kbuf_t kb;
    int rc = store__kbuf_key(b, &kb, k);
    if (rc < 0)
        return rc;
    node_t *x = seek(m, kb.p, kb.n, NULL);
    if (!x || keycmp(x->key, x->klen, kb.p, kb.n) != 0) {
        rc = STORE_ENOTFOUND;
    } else {
        out->p = store_malloc(x->vlen);
        if (x->vlen)
            memcpy(out->p, x->val, x->vlen);
        out->n = x->vlen;
        out->release = release_copy;
    }
    store__kbuf_free(&kb);
    return rc;
}

static int mem_write(store_backend_t *b, const store_op_t *ops, size_t n)
{
    mem_t *m = (mem_t *)b;
    /* validate everything first: all or nothing */
    for (size_t i = 0; i < n; i++) {
        store__kbuf_t kb;
        int rc = store__kbuf_key(b, &kb, &ops[i].key);
        if (rc < 0)
            return rc;
        store__kbuf_free(&kb);
        if (ops[i].kind != STORE_OP_PUT && ops[i].kind != STORE_OP_DEL)
            return store__set_err(b, STORE_EINVAL, "unknown batch operation");
    }
    for (size_t i = 0; i < n; i++) {
        store__kbuf_t kb;
        store__kbuf_key(b, &kb, &ops[i].key);
        if (ops[i].kind == STORE_OP_PUT)
            mem_set(m, kb.p, kb.n, ops[i].val, ops[i].val_len);
        else
            mem_unset(m, kb.p, kb.n);
        store__kbuf_free(&kb);
    }
    return 0;
}

static int mem_put(store_backend_t *b, const store_key_t *k, const void *val, size_t len)
{
    store_op_t op = {.kind = STORE_OP_PUT, .key = *k, .val = val, .val_len = len};
    return mem_write(b, &op, 1);
}

static int mem_del(store_backend_t *b, const store_key_t *k)
{
    store_op_t op = {.kind = STORE_OP_DEL, .key = *k};
    return mem_write(b, &op, 1);
}

static int mem_fold(store_backend_t *b, const store_fold_t *f, store_fold_fn fn, void *arg)
{
    mem_t *m = (mem_t *)b;
    store__range_t r;
    int rc = store__range(b, f, &r);
    if (rc < 0)
        return rc;
    bool values = f && f->values;
    node_t *x = seek(m, r.lo.p, r.lo.n, NULL);
    if (r.after.n && keycmp(r.after.p, r.after.n, r.lo.p, r.lo.n) > 0)
        x = seek(m, r.after.p, r.after.n, NULL);
    uint8_t *scratch = NULL;
    size_t cap = 0;
    /* A callback may not modify this backend (as with LevelDB's snapshot, it would not see
     * its own writes); we hold the next key only through the current node. */
    for (; x; x = x->next[0]) {
        if (keycmp(x->key, x->klen, r.hi.p, r.hi.n) >= 0)
            break;
        if (r.after.n && keycmp(x->key, x->klen, r.after.p, r.after.n) <= 0)
            continue;
        if (x->klen > cap) {
            store_free(scratch);
            scratch = store_malloc(x->klen);
            cap = x->klen;
        }
        store_key_t key;
        if (store_key_decode(x->key, x->klen, scratch, &key) < 0) {
            rc = store__set_err(b, STORE_ECORRUPT, "undecodable key in object range");
            break;
        }
        rc = fn(arg, &key, values ? x->val : NULL, values ? x->vlen : 0);
        if (rc != 0)
            break;
    }
    store_free(scratch);
    store__range_free(&r);
    return rc == STORE_FOLD_STOP ? 0 : rc;
}

static void clear(mem_t *m)
{
    node_t *x = m->head->next[0];
    while (x) {
        node_t *n = x->next[0];
        store_free(x);
        x = n;
    }
    for (int i = 0; i < MAX_LEVEL; i++)
        m->head->next[i] = NULL;
    m->level = 1;
    m->count = m->bytes = 0;
}

static int mem_is_empty(store_backend_t *b)
{
    return ((mem_t *)b)->count == 0;
}

static int mem_drop(store_backend_t *b)
{
    clear((mem_t *)b);
    return 0;
}

static int mem_status(store_backend_t *b, store_status_t *st)
{
    mem_t *m = (mem_t *)b;
    st->engine = "memory";
    st->bytes = m->bytes;
    st->keys = m->count;
    st->keys_exact = true;
    return 0;
}

static int mem_sync(store_backend_t *b)
{
    (void)b;
    return 0;
}

static void mem_close(store_backend_t *b)
{
    mem_t *m = (mem_t *)b;
    clear(m);
    store_free(m->head);
    store_free(m);
}

int store__mem_open(store_engine_t *e, uint64_t partition, store_backend_t **out)
{
    (void)e;
    mem_t *m = store_calloc(1, sizeof *m);
    m->base.ops = &mem_ops;
    m->base.partition = partition;
    m->head = node_new(MAX_LEVEL, NULL, 0, NULL, 0);
    m->level = 1;
    m->rng = 0x9E3779B97F4A7C15ull ^ partition;
    *out = &m->base;
    return 0;
}

static const store_backend_ops_t mem_ops = {
    .name = "memory",
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .write = mem_write,
    .fold = mem_fold,
    .is_empty = mem_is_empty,
    .drop = mem_drop,
    .status = mem_status,
    .sync = mem_sync,
    .close = mem_close,
};
