/*
 * codec.c — bytes <-> store_obj_t and store_vclock_t, in the format of proto/object.proto.
 * Encoding is canonical (sorted clock, sorted siblings, actors as three varints, dots and
 * last-modified relative to the clock, common content types interned, default-valued fields
 * omitted, minimal varints). Decoding is hand-written too and accepts only that form: fields
 * in number order, no unknown or repeated-optional fields, no explicit defaults, every
 * invariant checked before the object is handed out, so corrupt or hostile bytes fail with
 * STORE_EDECODE and nothing stays allocated. protobuf-c reads and packs the same bytes
 * (test_store_codec checks that pack(unpack(ours)) is byte-identical).
 */
#include "storage/arena.h"
#include "storage/err.h"
#include "storage/object.h"

#include <stdlib.h>
#include <string.h>

#define OBJECT_FORMAT 2

/* Interned content types: a sibling whose content type is one of these stores its 1-based
 * index (content_type_id) instead of the bytes. Part of the format: append only. */
static const store_slice_t content_types[] = {
    STORE_SLICE("application/octet-stream"),
    STORE_SLICE("text/plain"),
    STORE_SLICE("application/json"),
    STORE_SLICE("text/html"),
    STORE_SLICE("application/xml"),
    STORE_SLICE("text/xml"),
    STORE_SLICE("text/csv"),
    STORE_SLICE("application/x-erlang-binary"),
    STORE_SLICE("image/png"),
    STORE_SLICE("image/jpeg"),
    STORE_SLICE("multipart/mixed"),
};
#define N_CONTENT_TYPES (sizeof content_types / sizeof content_types[0])

static uint32_t content_type_id(store_slice_t ct)
{
    if (ct.n < 8 || ct.n > 27)
        return 0;
    for (uint32_t i = 0; i < N_CONTENT_TYPES; i++)
        if (content_types[i].n == ct.n && memcmp(content_types[i].p, ct.p, ct.n) == 0)
            return i + 1;
    return 0;
}

static uint64_t be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* ---------------------------------------------------------------- encoding */

/* Encoding is hand-written (protobuf-c's reflective packer cost ~1 µs per small object, most
 * of a LevelDB put). It writes exactly what protobuf-c would for the same message: fields in
 * number order, optional fields only when set. Two passes: sizes, then bytes. */

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
/* an optional varint field, omitted when 0 */
#define OPTV_SIZE(v) ((v) ? 1 + vsize(v) : 0)

static uint8_t *optv_put(uint8_t *p, uint8_t tag, uint64_t v)
{
    if (!v)
        return p;
    *p++ = tag;
    return vput(p, v);
}

static size_t entry_size(const store_vc_entry_t *e)
{
    const uint8_t *b = e->actor.b;
    return OPTV_SIZE(be64(b)) + OPTV_SIZE(be32(b + 8)) + OPTV_SIZE(be32(b + 12)) + 1 +
           vsize(e->counter) + 5;
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
        p = optv_put(p, 0x08, be64(e->actor.b));
        p = optv_put(p, 0x10, be32(e->actor.b + 8));
        p = optv_put(p, 0x18, be32(e->actor.b + 12));
        *p++ = 0x20;
        p = vput(p, e->counter);
        *p++ = 0x2d; /* fixed32, little-endian */
        for (int k = 0; k < 4; k++)
            *p++ = (uint8_t)(e->ts >> (8 * k));
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

/* What a sibling's encoding derives from the clock, computed once for both passes. */
typedef struct {
    uint32_t ix;     /* dot_index */
    uint32_t ctid;   /* content_type_id, 0 if not interned */
    uint64_t back;   /* dot_back */
    uint64_t lmz;    /* last_mod_delta, zigzag */
    size_t size;     /* bytes of the Sibling message */
} sib_aux_t;

static void sib_prepare(const store_sib_t *s, const store_vc_entry_t *e, uint32_t ix,
                        sib_aux_t *a)
{
    const store_content_t *c = &s->c;
    int64_t d = (int64_t)c->last_mod - (int64_t)e->ts;
    a->ix = ix;
    a->back = e->counter - s->dot.counter;
    a->ctid = content_type_id(c->content_type);
    a->lmz = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
    size_t n = OPTV_SIZE(a->ix) + OPTV_SIZE(a->back) + OPT_SIZE(c->value);
    n += a->ctid ? OPTV_SIZE(a->ctid) : OPT_SIZE(c->content_type);
    n += OPT_SIZE(c->charset) + OPT_SIZE(c->content_encoding) + OPT_SIZE(c->vtag);
    n += OPTV_SIZE(a->lmz) + OPTV_SIZE(c->last_mod_usecs);
    for (uint32_t i = 0; i < c->n_usermeta; i++)
        n += ldsize(pair_size(&c->usermeta[i]));
    for (uint32_t i = 0; i < c->n_indexes; i++)
        n += ldsize(pair_size(&c->indexes[i]));
    for (uint32_t i = 0; i < c->n_links; i++)
        n += ldsize(link_size(&c->links[i]));
    if (c->deleted)
        n += 2;
    a->size = n;
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

static uint8_t *sib_put(uint8_t *p, const store_sib_t *s, const sib_aux_t *a)
{
    const store_content_t *c = &s->c;
    p = optv_put(p, 0x08, a->ix);
    p = optv_put(p, 0x10, a->back);
    p = OPT_PUT(p, 0x1a, c->value);
    p = a->ctid ? optv_put(p, 0x20, a->ctid) : OPT_PUT(p, 0x2a, c->content_type);
    p = OPT_PUT(p, 0x32, c->charset);
    p = OPT_PUT(p, 0x3a, c->content_encoding);
    p = OPT_PUT(p, 0x42, c->vtag);
    p = optv_put(p, 0x48, a->lmz);
    p = optv_put(p, 0x50, c->last_mod_usecs);
    p = pairs_put(p, 0x5a, c->usermeta, c->n_usermeta);
    p = pairs_put(p, 0x62, c->indexes, c->n_indexes);
    for (uint32_t i = 0; i < c->n_links; i++) {
        const store_link_t *l = &c->links[i];
        *p++ = 0x6a;
        p = vput(p, link_size(l));
        p = OPT_PUT(p, 0x0a, l->bucket);
        p = OPT_PUT(p, 0x12, l->key);
        p = OPT_PUT(p, 0x1a, l->tag);
    }
    if (c->deleted) {
        *p++ = 0x70;
        *p++ = 1;
    }
    return p;
}

int store_obj_encode(const store_obj_t *o, uint8_t **out, size_t *len)
{
    if (!o || !out || !len || store_obj_check(o) != 0)
        return STORE_EINVAL;
    /* each sibling's dot names its actor by clock index; both arrays are sorted by actor */
    sib_aux_t aux_small[4];
    sib_aux_t *aux = o->n_sibs <= 4 ? aux_small : store_malloc(o->n_sibs * sizeof *aux);
    size_t csize = clock_size(&o->clock);
    size_t n = 2 + ldsize(csize) + 1 + vsize(o->n_sibs);
    for (uint32_t i = 0, k = 0; i < o->n_sibs; i++) {
        while (store_actor_cmp(&o->clock.e[k].actor, &o->sibs[i]->dot.actor) != 0)
            k++;
        sib_prepare(o->sibs[i], &o->clock.e[k], k, &aux[i]);
        n += ldsize(aux[i].size);
    }
    uint8_t *buf = store_malloc(n), *p = buf;
    *p++ = 0x08;
    *p++ = OBJECT_FORMAT;
    *p++ = 0x12;
    p = vput(p, csize);
    p = clock_put(p, &o->clock);
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        *p++ = 0x1a;
        p = vput(p, aux[i].size);
        p = sib_put(p, o->sibs[i], &aux[i]);
    }
    *p++ = 0x78;
    p = vput(p, o->n_sibs);
    if (aux != aux_small)
        store_free(aux);
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

/* A strict reader of the canonical form. Every field number is below 16, so every tag is one
 * byte; a field is read only if the next byte is exactly its tag, in number order, so unknown,
 * misordered or duplicated fields leave bytes unread and the message is rejected. */
typedef struct {
    const uint8_t *p, *end;
} rd_t;

/* A minimal varint of at most 64 bits. */
static bool rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return false;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return false; /* over 64 bits */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift) /* over-long: protobuf-c would write fewer bytes */
                return false;
            *v = x;
            return true;
        }
    }
    return false;
}

static bool rd_tag(rd_t *r, uint8_t tag)
{
    if (r->p < r->end && *r->p == tag) {
        r->p++;
        return true;
    }
    return false;
}

/* The body of a length-delimited field whose tag was just read. */
static bool rd_ld(rd_t *r, rd_t *sub)
{
    uint64_t n;
    if (!rd_varint(r, &n) || n > (uint64_t)(r->end - r->p))
        return false;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return true;
}

/* Required varint field (may be 0). */
static bool rd_req(rd_t *r, uint8_t tag, uint64_t *v)
{
    return rd_tag(r, tag) && rd_varint(r, v);
}

/* Optional varint field: absent is 0; present must be non-zero and at most max. */
static bool rd_opt(rd_t *r, uint8_t tag, uint64_t max, uint64_t *v)
{
    *v = 0;
    if (!rd_tag(r, tag))
        return true;
    return rd_varint(r, v) && *v != 0 && *v <= max;
}

/* Optional bytes field: absent is empty; present must be non-empty. */
static bool rd_bytes(rd_t *r, uint8_t tag, store_slice_t *s)
{
    s->p = NULL;
    s->n = 0;
    if (!rd_tag(r, tag))
        return true;
    rd_t sub;
    if (!rd_ld(r, &sub) || sub.p == sub.end)
        return false;
    s->p = sub.p;
    s->n = (size_t)(sub.end - sub.p);
    return true;
}

static bool rd_done(const rd_t *r)
{
    return r->p == r->end;
}

static bool rd_entry(rd_t *r, store_vc_entry_t *e)
{
    uint64_t node, part, epoch;
    rd_t m;
    if (!rd_ld(r, &m) || !rd_opt(&m, 0x08, UINT64_MAX, &node) ||
        !rd_opt(&m, 0x10, UINT32_MAX, &part) || !rd_opt(&m, 0x18, UINT32_MAX, &epoch) ||
        !rd_req(&m, 0x20, &e->counter) || e->counter == 0 || !rd_tag(&m, 0x2d) ||
        m.end - m.p != 4)
        return false;
    e->ts = (uint32_t)m.p[0] | (uint32_t)m.p[1] << 8 | (uint32_t)m.p[2] << 16 |
            (uint32_t)m.p[3] << 24;
    e->actor = store_actor_make(node, (uint32_t)part, (uint32_t)epoch);
    return true;
}

/* A VClock message filling vc (whose old entries are discarded; vc keeps its array). */
static bool rd_clock(rd_t *r, store_vclock_t *vc)
{
    vc->n = 0;
    while (rd_tag(r, 0x0a)) {
        if (vc->n == vc->cap) {
            if (vc->cap >= UINT32_MAX / 4)
                return false;
            vc->cap = vc->cap ? 2 * vc->cap : 4;
            vc->e = store_realloc(vc->e, vc->cap * sizeof *vc->e);
        }
        store_vc_entry_t *e = &vc->e[vc->n];
        if (!rd_entry(r, e))
            return false;
        if (vc->n && store_actor_cmp(&vc->e[vc->n - 1].actor, &e->actor) >= 0)
            return false; /* strictly increasing actors */
        vc->n++;
    }
    uint64_t count;
    return rd_req(r, 0x78, &count) && count == vc->n && rd_done(r);
}

int store_vclock_decode(const uint8_t *buf, size_t len, store_vclock_t *out)
{
    if (!out || (!buf && len))
        return STORE_EINVAL;
    if (len == 0) {
        out->n = 0;
        return 0;
    }
    store_vclock_t vc = STORE_VCLOCK_INIT;
    rd_t r = {buf, buf + len};
    if (!rd_clock(&r, &vc)) {
        store_vclock_clear(&vc);
        return STORE_EDECODE;
    }
    store_vclock_clear(out);
    *out = vc;
    return 0;
}

/* How many consecutive fields with this (length-delimited) tag start at r; r is unchanged. */
static bool count_repeated(rd_t r, uint8_t tag, uint32_t *n)
{
    rd_t sub;
    *n = 0;
    while (rd_tag(&r, tag)) {
        if (!rd_ld(&r, &sub) || *n == UINT32_MAX / 4)
            return false;
        (*n)++;
    }
    return true;
}

static bool rd_pairs(rd_t *r, store__arena_t *ar, uint8_t tag, const store_pair_t **out,
                     uint32_t *n)
{
    *out = NULL;
    if (!count_repeated(*r, tag, n))
        return false;
    if (!*n)
        return true;
    store_pair_t *v = store__arena_alloc(ar, *n * sizeof *v);
    for (uint32_t i = 0; i < *n; i++) {
        rd_t m, k;
        rd_tag(r, tag);
        if (!rd_ld(r, &m) || !rd_tag(&m, 0x0a) || !rd_ld(&m, &k) ||
            !rd_bytes(&m, 0x12, &v[i].value) || !rd_done(&m))
            return false;
        v[i].key.p = k.p;
        v[i].key.n = (size_t)(k.end - k.p);
    }
    *out = v;
    return true;
}

static bool rd_links(rd_t *r, store__arena_t *ar, store_content_t *c)
{
    if (!count_repeated(*r, 0x6a, &c->n_links))
        return false;
    if (!c->n_links)
        return true;
    store_link_t *v = store__arena_alloc(ar, c->n_links * sizeof *v);
    for (uint32_t i = 0; i < c->n_links; i++) {
        rd_t m;
        rd_tag(r, 0x6a);
        if (!rd_ld(r, &m) || !rd_bytes(&m, 0x0a, &v[i].bucket) ||
            !rd_bytes(&m, 0x12, &v[i].key) || !rd_bytes(&m, 0x1a, &v[i].tag) || !rd_done(&m))
            return false;
    }
    c->links = v;
    return true;
}

/* One Sibling message against the already-decoded clock; prev is the previous sibling's dot
 * (NULL for the first). Slices point into the input; arrays into the arena. */
static bool rd_sib(rd_t *r, store__arena_t *ar, const store_vclock_t *vc, const store_dot_t *prev,
                   store_content_t *c, store_dot_t *dot)
{
    rd_t m;
    uint64_t ix, back, ctid, lmz, usecs, del;
    memset(c, 0, sizeof *c);
    if (!rd_ld(r, &m) || !rd_opt(&m, 0x08, UINT32_MAX, &ix) || ix >= vc->n)
        return false; /* the dot names no clock entry */
    const store_vc_entry_t *e = &vc->e[ix];
    if (!rd_opt(&m, 0x10, UINT64_MAX, &back) || back >= e->counter)
        return false; /* a dot counter is >= 1, so the clock covers it */
    dot->actor = e->actor;
    dot->counter = e->counter - back;
    if (prev && store_dot_cmp(prev, dot) >= 0)
        return false; /* siblings in strictly increasing dot order */
    if (!rd_bytes(&m, 0x1a, &c->value) || !rd_opt(&m, 0x20, N_CONTENT_TYPES, &ctid) ||
        !rd_bytes(&m, 0x2a, &c->content_type))
        return false;
    if (ctid) {
        if (c->content_type.n)
            return false;
        c->content_type = content_types[ctid - 1];
    } else if (content_type_id(c->content_type)) {
        return false; /* an interned type spelt out is not canonical */
    }
    if (!rd_bytes(&m, 0x32, &c->charset) || !rd_bytes(&m, 0x3a, &c->content_encoding) ||
        !rd_bytes(&m, 0x42, &c->vtag) || !rd_opt(&m, 0x48, UINT64_MAX, &lmz) ||
        !rd_opt(&m, 0x50, UINT32_MAX, &usecs))
        return false;
    if (lmz >> 33)
        return false; /* |delta| >= 2^32: last_mod would not be a uint32 */
    int64_t lm = (int64_t)e->ts + ((int64_t)(lmz >> 1) ^ -(int64_t)(lmz & 1));
    if (lm < 0 || lm > (int64_t)UINT32_MAX)
        return false; /* last_mod is a uint32 */
    c->last_mod = (uint32_t)lm;
    c->last_mod_usecs = (uint32_t)usecs;
    if (!rd_pairs(&m, ar, 0x5a, &c->usermeta, &c->n_usermeta) ||
        !rd_pairs(&m, ar, 0x62, &c->indexes, &c->n_indexes) || !rd_links(&m, ar, c) ||
        !rd_opt(&m, 0x70, 1, &del) || !rd_done(&m))
        return false;
    c->deleted = del != 0;
    return true;
}

int store_obj_decode(const uint8_t *buf, size_t len, store_obj_t **out)
{
    if (!out || (!buf && len))
        return STORE_EINVAL;
    rd_t r = {buf, buf + len}, clk;
    uint64_t format, count;
    if (!rd_req(&r, 0x08, &format) || format != OBJECT_FORMAT || !rd_tag(&r, 0x12) ||
        !rd_ld(&r, &clk))
        return STORE_EDECODE;
    store__arena_t ar;
    store__arena_init(&ar);
    store_obj_t *o = store_obj_new();
    bool ok = rd_clock(&clk, &o->clock);
    while (ok && rd_tag(&r, 0x1a)) {
        store_content_t c;
        store_dot_t dot;
        const store_dot_t *prev = o->n_sibs ? &o->sibs[o->n_sibs - 1]->dot : NULL;
        ok = o->n_sibs < STORE_DECODE_MAX_SIBS && rd_sib(&r, &ar, &o->clock, prev, &c, &dot);
        if (ok)
            store_obj_add_sib(o, store_sib_new(&c, &dot));
    }
    ok = ok && rd_req(&r, 0x78, &count) && count == o->n_sibs && rd_done(&r);
    store__arena_release(&ar);
    if (!ok) {
        store_obj_free(o);
        return STORE_EDECODE;
    }
    *out = o;
    return 0;
}
