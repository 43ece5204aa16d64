/*
 * codec.c — bytes <-> store_obj_t and store_vclock_t, in the format of proto/object.proto.
 * Encoding is canonical (sorted clock, sorted siblings, dots as clock indices, empty fields
 * omitted); decoding accepts only that form and checks every invariant before building
 * anything, so corrupt or hostile bytes fail with STORE_EDECODE and allocate nothing lasting.
 * Decoding runs protobuf-c inside a stack arena: one final allocation per sibling plus the
 * object; encoding is hand-written (see below).
 */
#include "storage/arena.h"
#include "storage/err.h"
#include "storage/object.h"

#include "proto/object.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define OBJECT_FORMAT 1

/* ---------------------------------------------------------------- encoding */

/* Encoding is hand-written (protobuf-c's reflective packer cost ~1 µs per small object, most
 * of a LevelDB put). It writes exactly what protobuf-c would for the same message: fields in
 * number order, optional fields only when set; test_store_codec checks the bytes are
 * identical to cairn__object__pack's. Two passes: sizes, then bytes. */

static size_t vsize(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *vput(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* tag + length + bytes of a length-delimited field of n bytes */
static size_t ldsize(size_t n)
{
    return 1 + vsize(n) + n;
}

static uint8_t *ldput(uint8_t *p, uint8_t tag, const void *data, size_t n)
{
    *p++ = tag;
    p = vput(p, n);
    if (n)
        memcpy(p, data, n);
    return p + n;
}

#define OPT_SIZE(s) ((s).n ? ldsize((s).n) : 0)
#define OPT_PUT(p, tag, s) ((s).n ? ldput(p, tag, (s).p, (s).n) : (p))

static size_t entry_size(const store_vc_entry_t *e)
{
    return ldsize(STORE_ACTOR_LEN) + 1 + vsize(e->counter) + 1 + vsize(e->ts);
}

static size_t clock_size(const store_vclock_t *vc)
{
    size_t n = 1 + vsize(vc->n); /* count = 15 */
    for (uint32_t i = 0; i < vc->n; i++)
        n += ldsize(entry_size(&vc->e[i]));
    return n;
}

static uint8_t *clock_put(uint8_t *p, const store_vclock_t *vc)
{
    for (uint32_t i = 0; i < vc->n; i++) {
        const store_vc_entry_t *e = &vc->e[i];
        *p++ = 0x0a;
        p = vput(p, entry_size(e));
        p = ldput(p, 0x0a, e->actor.b, STORE_ACTOR_LEN);
        *p++ = 0x10;
        p = vput(p, e->counter);
        *p++ = 0x18;
        p = vput(p, e->ts);
    }
    *p++ = 0x78;
    return vput(p, vc->n);
}

static size_t pair_size(const store_pair_t *pr)
{
    return ldsize(pr->key.n) + OPT_SIZE(pr->value);
}

static size_t link_size(const store_link_t *l)
{
    return OPT_SIZE(l->bucket) + OPT_SIZE(l->key) + OPT_SIZE(l->tag);
}

static size_t dot_size(uint32_t ix, uint64_t counter)
{
    return 1 + vsize(ix) + 1 + vsize(counter);
}

static size_t sib_size(const store_sib_t *s, uint32_t ix)
{
    const store_content_t *c = &s->c;
    size_t n = ldsize(dot_size(ix, s->dot.counter));
    n += OPT_SIZE(c->value) + OPT_SIZE(c->content_type) + OPT_SIZE(c->charset) +
         OPT_SIZE(c->content_encoding) + OPT_SIZE(c->vtag);
    if (c->last_mod)
        n += 1 + vsize(c->last_mod);
    if (c->last_mod_usecs)
        n += 1 + vsize(c->last_mod_usecs);
    for (uint32_t i = 0; i < c->n_usermeta; i++)
        n += ldsize(pair_size(&c->usermeta[i]));
    for (uint32_t i = 0; i < c->n_indexes; i++)
        n += ldsize(pair_size(&c->indexes[i]));
    for (uint32_t i = 0; i < c->n_links; i++)
        n += ldsize(link_size(&c->links[i]));
    if (c->deleted)
        n += 2;
    return n;
}

static uint8_t *pairs_put(uint8_t *p, uint8_t tag, const store_pair_t *prs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        *p++ = tag;
        p = vput(p, pair_size(&prs[i]));
        p = ldput(p, 0x0a, prs[i].key.p, prs[i].key.n);
        p = OPT_PUT(p, 0x12, prs[i].value);
    }
    return p;
}

static uint8_t *sib_put(uint8_t *p, const store_sib_t *s, uint32_t ix)
{
    const store_content_t *c = &s->c;
    *p++ = 0x0a;
    p = vput(p, dot_size(ix, s->dot.counter));
    *p++ = 0x08;
    p = vput(p, ix);
    *p++ = 0x10;
    p = vput(p, s->dot.counter);
    p = OPT_PUT(p, 0x12, c->value);
    p = OPT_PUT(p, 0x1a, c->content_type);
    p = OPT_PUT(p, 0x22, c->charset);
    p = OPT_PUT(p, 0x2a, c->content_encoding);
    p = OPT_PUT(p, 0x32, c->vtag);
    if (c->last_mod) {
        *p++ = 0x38;
        p = vput(p, c->last_mod);
    }
    if (c->last_mod_usecs) {
        *p++ = 0x40;
        p = vput(p, c->last_mod_usecs);
    }
    p = pairs_put(p, 0x4a, c->usermeta, c->n_usermeta);
    p = pairs_put(p, 0x52, c->indexes, c->n_indexes);
    for (uint32_t i = 0; i < c->n_links; i++) {
        const store_link_t *l = &c->links[i];
        *p++ = 0x5a;
        p = vput(p, link_size(l));
        p = OPT_PUT(p, 0x0a, l->bucket);
        p = OPT_PUT(p, 0x12, l->key);
        p = OPT_PUT(p, 0x1a, l->tag);
    }
    if (c->deleted) {
        *p++ = 0x60;
        *p++ = 1;
    }
    return p;
}

int store_obj_encode(const store_obj_t *o, uint8_t **out, size_t *len)
{
    if (!o || !out || !len || store_obj_check(o) != 0)
        return STORE_EINVAL;
    /* each sibling's dot names its actor by clock index; both arrays are sorted by actor */
    uint32_t ix_small[8];
    uint32_t *ix = o->n_sibs <= 8 ? ix_small : store_malloc(o->n_sibs * sizeof *ix);
    size_t n = 2 + ldsize(clock_size(&o->clock)) + 1 + vsize(o->n_sibs);
    for (uint32_t i = 0, k = 0; i < o->n_sibs; i++) {
        while (store_actor_cmp(&o->clock.e[k].actor, &o->sibs[i]->dot.actor) != 0)
            k++;
        ix[i] = k;
        n += ldsize(sib_size(o->sibs[i], k));
    }
    uint8_t *buf = store_malloc(n), *p = buf;
    *p++ = 0x08;
    *p++ = OBJECT_FORMAT;
    *p++ = 0x12;
    p = vput(p, clock_size(&o->clock));
    p = clock_put(p, &o->clock);
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        *p++ = 0x1a;
        p = vput(p, sib_size(o->sibs[i], ix[i]));
        p = sib_put(p, o->sibs[i], ix[i]);
    }
    *p++ = 0x78;
    p = vput(p, o->n_sibs);
    if (ix != ix_small)
        store_free(ix);
    if ((size_t)(p - buf) != n) { /* sizes and writer disagree: a bug, never data's fault */
        store_free(buf);
        return STORE_EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

int store_vclock_encode(const store_vclock_t *vc, uint8_t **out, size_t *len)
{
    if (!vc || !out || !len)
        return STORE_EINVAL;
    if (vc->n == 0) { /* the empty clock is zero bytes */
        *out = store_malloc(1);
        *len = 0;
        return 0;
    }
    size_t n = clock_size(vc);
    uint8_t *buf = store_malloc(n);
    clock_put(buf, vc);
    *out = buf;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------- decoding */

static store_slice_t slice(ProtobufCBinaryData b)
{
    store_slice_t s = {b.data, b.len};
    return s;
}

static int check_clock(const Cairn__VClock *m)
{
    if (m->count != m->n_entries)
        return STORE_EDECODE;
    for (size_t i = 0; i < m->n_entries; i++) {
        const Cairn__VClockEntry *e = m->entries[i];
        if (e->actor.len != STORE_ACTOR_LEN || e->counter == 0)
            return STORE_EDECODE;
        if (i && memcmp(m->entries[i - 1]->actor.data, e->actor.data, STORE_ACTOR_LEN) >= 0)
            return STORE_EDECODE;
    }
    return 0;
}

static void fill_clock(store_vclock_t *vc, const Cairn__VClock *m)
{
    vc->n = 0;
    if (m->n_entries > vc->cap) {
        vc->e = store_realloc(vc->e, m->n_entries * sizeof *vc->e);
        vc->cap = (uint32_t)m->n_entries;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        memcpy(vc->e[i].actor.b, m->entries[i]->actor.data, STORE_ACTOR_LEN);
        vc->e[i].counter = m->entries[i]->counter;
        vc->e[i].ts = m->entries[i]->timestamp;
    }
    vc->n = (uint32_t)m->n_entries;
}

int store_vclock_decode(const uint8_t *buf, size_t len, store_vclock_t *out)
{
    if (!out || (!buf && len))
        return STORE_EINVAL;
    if (len == 0) {
        out->n = 0;
        return 0;
    }
    store__arena_t ar;
    store__arena_init(&ar);
    Cairn__VClock *m = cairn__vclock__unpack(&ar.pb, len, buf);
    int rc = m ? check_clock(m) : STORE_EDECODE;
    if (rc == 0 && m->n_entries > UINT32_MAX / 2)
        rc = STORE_EDECODE;
    if (rc == 0)
        fill_clock(out, m);
    store__arena_release(&ar);
    return rc;
}

static int check_sibs(const Cairn__Object *m)
{
    const Cairn__VClock *vc = m->clock;
    if (m->n_siblings > STORE_DECODE_MAX_SIBS || m->count != m->n_siblings)
        return STORE_EDECODE;
    for (size_t i = 0; i < m->n_siblings; i++) {
        const Cairn__Sibling *s = m->siblings[i];
        const Cairn__Dot *d = s->dot;
        if (d->actor_index >= vc->n_entries || d->counter == 0 ||
            d->counter > vc->entries[d->actor_index]->counter)
            return STORE_EDECODE; /* the clock must cover its own siblings */
        if (i) {
            const Cairn__Dot *p = m->siblings[i - 1]->dot;
            if (p->actor_index > d->actor_index ||
                (p->actor_index == d->actor_index && p->counter >= d->counter))
                return STORE_EDECODE;
        }
        if (s->n_usermeta > UINT32_MAX / 4 || s->n_indexes > UINT32_MAX / 4 ||
            s->n_links > UINT32_MAX / 4)
            return STORE_EDECODE;
    }
    return 0;
}

static store_pair_t *pairs(store__arena_t *ar, Cairn__Pair **p, size_t n)
{
    if (!n)
        return NULL;
    store_pair_t *v = store__arena_alloc(ar, n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i].key = slice(p[i]->key);
        v[i].value = slice(p[i]->value);
    }
    return v;
}

static store_sib_t *make_sib(store__arena_t *ar, const Cairn__Sibling *s,
                             const store_vclock_t *vc)
{
    store_content_t c = {0};
    c.value = slice(s->value);
    c.content_type = slice(s->content_type);
    c.charset = slice(s->charset);
    c.content_encoding = slice(s->content_encoding);
    c.vtag = slice(s->vtag);
    c.last_mod = s->last_mod;
    c.last_mod_usecs = s->last_mod_usecs;
    c.n_usermeta = (uint32_t)s->n_usermeta;
    c.usermeta = pairs(ar, s->usermeta, s->n_usermeta);
    c.n_indexes = (uint32_t)s->n_indexes;
    c.indexes = pairs(ar, s->indexes, s->n_indexes);
    if (s->n_links) {
        store_link_t *ls = store__arena_alloc(ar, s->n_links * sizeof *ls);
        for (size_t i = 0; i < s->n_links; i++) {
            ls[i].bucket = slice(s->links[i]->bucket);
            ls[i].key = slice(s->links[i]->key);
            ls[i].tag = slice(s->links[i]->tag);
        }
        c.links = ls;
        c.n_links = (uint32_t)s->n_links;
    }
    c.deleted = s->has_deleted && s->deleted;
    store_dot_t dot = {vc->e[s->dot->actor_index].actor, s->dot->counter};
    return store_sib_new(&c, &dot);
}

int store_obj_decode(const uint8_t *buf, size_t len, store_obj_t **out)
{
    if (!out || (!buf && len))
        return STORE_EINVAL;
    store__arena_t ar;
    store__arena_init(&ar);
    Cairn__Object *m = cairn__object__unpack(&ar.pb, len, buf);
    int rc = STORE_EDECODE;
    if (m && m->format == OBJECT_FORMAT && check_clock(m->clock) == 0 && check_sibs(m) == 0) {
        store_obj_t *o = store_obj_new();
        fill_clock(&o->clock, m->clock);
        for (size_t i = 0; i < m->n_siblings; i++)
            store_obj_add_sib(o, make_sib(&ar, m->siblings[i], &o->clock));
        *out = o;
        rc = 0;
    }
    store__arena_release(&ar);
    return rc;
}
