/*
 * cstate.c — the cluster state (ring/cstate.h): members with status and version, the ring's
 * owners and pending owners, the claimant, the version vector; the changes, the gossip merge
 * (a join of two states), the encoding (proto/ring.proto RingState, format 2) with its
 * validation, and the ring file through ring.c's RingFile container.
 *
 * Representation. Every array is indexed by member (members sorted by name) or by partition;
 * the version vector is one counter per member (0: no entry), so every node it names is a
 * member, tombstones included. A change works on a draft_t (plain arrays, names borrowed
 * from the source state), and build() turns the draft into an immutable cstate_t: it copies
 * the names into the state's ring_t (cstate_ring), takes the draft's arrays, and computes the
 * fingerprint, an XXH3-64 of the encoding (which is canonical: sorted members, pending
 * transfers sorted by partition).
 *
 * Memory: a cstate_t owns its ring, its arrays and one block holding the cluster name and the
 * founder; names[i] point into the ring. Nothing here keeps a pointer into a caller's state.
 */
#include "ring/cstate.h"

#include "proto/ring.pb-c.h"
#include "ring/claim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

_Static_assert(CSTATE_ENOENT == RING_ENOENT && CSTATE_EIO == RING_EIO &&
                   CSTATE_EINVAL == RING_EINVAL,
               "cstate_load passes ring_file_read's codes through");

#define DEFAULT_CLUSTER_NAME "cairn"

/* A state under construction. names are borrowed (from the states it was made from, or from
 * the caller); every array is owned. */
typedef struct draft_s {
    uint32_t q, n;
    const char **names;   /* n, sorted bytewise, distinct */
    uint32_t *status;     /* n cstate_status_t */
    uint64_t *mver;       /* n member versions */
    uint64_t *vclock;     /* n version-vector counters (0: no entry) */
    uint32_t *owners;     /* q member indexes */
    uint32_t *next;       /* q pending owner or CSTATE_NONE */
    uint8_t *done;        /* q: the pending transfer finished (0 when nothing is pending) */
    uint32_t claimant;    /* member index */
    uint64_t rvsn;        /* ownership version */
    const char *cluster_name, *founder;
} draft_t;

struct cstate_s {
    draft_t d;            /* names point into ring; cluster_name, founder into strings */
    ring_t *ring;         /* owned: names and owners, for preference lists */
    char *strings;        /* owned: cluster name, NUL, founder, NUL */
    uint32_t pending;     /* partitions with a next owner */
    uint64_t fingerprint; /* XXH3-64 of the encoding */
};

/* ---------------------------------------------------------------- small helpers */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CSTATE_EINVAL;
}

static bool q_ok(uint32_t q)
{
    return q >= 1 && q <= RING_MAX_PARTITIONS && (q & (q - 1)) == 0;
}

/* 1..RING_NODE_NAME_MAX-1 bytes of 0x21..0x7e. */
static bool printable_ok(const char *s)
{
    if (!s)
        return false;
    size_t len = strnlen(s, RING_NODE_NAME_MAX);
    if (len == 0 || len >= RING_NODE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static bool node_name_ok(const char *s)
{
    if (!printable_ok(s))
        return false;
    const char *at = strchr(s, '@');
    return at && at != s && at[1] != '\0';
}

/* A fixed-size name field of cstate_change_t holds a NUL. */
static bool field_ok(const char *field)
{
    return memchr(field, '\0', RING_NODE_NAME_MAX) != NULL;
}

const char *cstate_status_name(cstate_status_t st)
{
    switch (st) {
    case CSTATE_JOINING: return "joining";
    case CSTATE_VALID: return "valid";
    case CSTATE_LEAVING: return "leaving";
    case CSTATE_EXITING: return "exiting";
    case CSTATE_DOWN: return "down";
    case CSTATE_REMOVED: return "removed";
    }
    return "unknown";
}

/* Riak's precedence on equal member versions: removed > down > joining > valid > exiting >
 * leaving. */
static int status_rank(uint32_t st)
{
    switch (st) {
    case CSTATE_REMOVED: return 5;
    case CSTATE_DOWN: return 4;
    case CSTATE_JOINING: return 3;
    case CSTATE_VALID: return 2;
    case CSTATE_EXITING: return 1;
    default: return 0; /* leaving */
    }
}

/* Index of name in sorted names, or CSTATE_NONE; *slot (optional) gets where it would go. */
static uint32_t find_name(const char *const *names, uint32_t n, const char *name, uint32_t *slot)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, names[mid]);
        if (c == 0) {
            if (slot)
                *slot = mid;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (slot)
        *slot = lo;
    return CSTATE_NONE;
}

/* ---------------------------------------------------------------- drafts */

static void draft_free(draft_t *d)
{
    free(d->names);
    free(d->status);
    free(d->mver);
    free(d->vclock);
    free(d->owners);
    free(d->next);
    free(d->done);
    memset(d, 0, sizeof *d);
}

/* An empty draft of q partitions and n members (entries zero, nothing pending). */
static bool draft_alloc(draft_t *d, uint32_t q, uint32_t n)
{
    memset(d, 0, sizeof *d);
    d->q = q;
    d->n = n;
    d->names = calloc(n, sizeof *d->names);
    d->status = calloc(n, sizeof *d->status);
    d->mver = calloc(n, sizeof *d->mver);
    d->vclock = calloc(n, sizeof *d->vclock);
    d->owners = calloc(q, sizeof *d->owners);
    d->next = malloc(q * sizeof *d->next);
    d->done = calloc(q, sizeof *d->done);
    if (!d->names || !d->status || !d->mver || !d->vclock || !d->owners || !d->next || !d->done) {
        draft_free(d);
        return false;
    }
    for (uint32_t p = 0; p < q; p++)
        d->next[p] = CSTATE_NONE;
    return true;
}

/* A draft equal to s (names borrowed from s). */
static bool draft_copy(draft_t *d, const cstate_t *s)
{
    const draft_t *src = &s->d;
    if (!draft_alloc(d, src->q, src->n))
        return false;
    memcpy(d->names, src->names, src->n * sizeof *d->names);
    memcpy(d->status, src->status, src->n * sizeof *d->status);
    memcpy(d->mver, src->mver, src->n * sizeof *d->mver);
    memcpy(d->vclock, src->vclock, src->n * sizeof *d->vclock);
    memcpy(d->owners, src->owners, src->q * sizeof *d->owners);
    memcpy(d->next, src->next, src->q * sizeof *d->next);
    memcpy(d->done, src->done, src->q * sizeof *d->done);
    d->claimant = src->claimant;
    d->rvsn = src->rvsn;
    d->cluster_name = src->cluster_name;
    d->founder = src->founder;
    return true;
}

/* A draft equal to s with `name` inserted as a new member (entries zero); *at gets its index. */
static bool draft_insert(draft_t *d, const cstate_t *s, const char *name, uint32_t *at)
{
    const draft_t *src = &s->d;
    uint32_t slot = 0;
    find_name(src->names, src->n, name, &slot);
    if (!draft_alloc(d, src->q, src->n + 1))
        return false;
    for (uint32_t i = 0; i < src->n; i++) {
        uint32_t k = i + (i >= slot);
        d->names[k] = src->names[i];
        d->status[k] = src->status[i];
        d->mver[k] = src->mver[i];
        d->vclock[k] = src->vclock[i];
    }
    d->names[slot] = name;
    for (uint32_t p = 0; p < src->q; p++) {
        d->owners[p] = src->owners[p] + (src->owners[p] >= slot);
        if (src->next[p] != CSTATE_NONE)
            d->next[p] = src->next[p] + (src->next[p] >= slot);
        d->done[p] = src->done[p];
    }
    d->claimant = src->claimant + (src->claimant >= slot);
    d->rvsn = src->rvsn;
    d->cluster_name = src->cluster_name;
    d->founder = src->founder;
    *at = slot;
    return true;
}

static void set_status(draft_t *d, uint32_t i, cstate_status_t st)
{
    d->status[i] = st;
    d->mver[i]++;
}

static uint32_t draft_index(const draft_t *d, const char *name)
{
    return find_name(d->names, d->n, name, NULL);
}

/* ---------------------------------------------------------------- encoding */

/* The packed RingState (format 2) of s; malloc'ed, NULL when out of memory. */
static uint8_t *pack_state(const cstate_t *s, size_t *len)
{
    const draft_t *d = &s->d;
    Cairn__Ring__RingState m = CAIRN__RING__RING_STATE__INIT;
    m.has_ring_size = 1;
    m.ring_size = d->q;
    m.n_members = d->n;
    m.members = (char **)d->names; /* pack only reads */
    m.n_owners = d->q;
    m.owners = d->owners;
    m.cluster_name = (char *)d->cluster_name;
    m.founder = (char *)d->founder;
    m.n_member_status = d->n;
    m.member_status = d->status;
    m.n_member_version = d->n;
    m.member_version = d->mver;
    m.n_vclock = d->n;
    m.vclock = d->vclock;
    m.has_claimant = 1;
    m.claimant = d->claimant;
    m.has_ring_version = 1;
    m.ring_version = d->rvsn;

    Cairn__Ring__PendingTransfer *pt = malloc((s->pending ? s->pending : 1) * sizeof *pt);
    Cairn__Ring__PendingTransfer **pp = malloc((s->pending ? s->pending : 1) * sizeof *pp);
    uint8_t *buf = NULL;
    if (!pt || !pp)
        goto out;
    size_t k = 0;
    for (uint32_t p = 0; p < d->q && k < s->pending; p++) {
        if (d->next[p] == CSTATE_NONE)
            continue;
        Cairn__Ring__PendingTransfer t = CAIRN__RING__PENDING_TRANSFER__INIT;
        t.has_partition = 1;
        t.partition = p;
        t.has_next_owner = 1;
        t.next_owner = d->next[p];
        t.has_done = d->done[p] != 0; /* absent means awaiting */
        t.done = d->done[p] != 0;
        pt[k] = t;
        pp[k] = &pt[k];
        k++;
    }
    m.n_pending = k;
    m.pending = pp;
    m.has_pending_count = 1;
    m.pending_count = (uint32_t)k;
    size_t size = cairn__ring__ring_state__get_packed_size(&m);
    buf = malloc(size ? size : 1);
    if (buf) {
        cairn__ring__ring_state__pack(&m, buf);
        *len = size;
    }
out:
    free(pt);
    free(pp);
    return buf;
}

uint8_t *cstate_encode(const cstate_t *s, size_t *len)
{
    return pack_state(s, len);
}

/* ---------------------------------------------------------------- building */

void cstate_free(cstate_t *s)
{
    if (!s)
        return;
    draft_free(&s->d);
    ring_free(s->ring);
    free(s->strings);
    free(s);
}

/* The immutable state of a draft. Always consumes the draft (its arrays move into the
 * state, or are freed on failure). fp: the fingerprint when already known (a copy). NULL
 * when out of memory or when the draft breaks an invariant ring_new checks. */
static cstate_t *build(draft_t *d, const uint64_t *fp)
{
    cstate_t *s = calloc(1, sizeof *s);
    if (!s) {
        draft_free(d);
        return NULL;
    }
    size_t cl = strlen(d->cluster_name) + 1, fl = strlen(d->founder) + 1;
    s->ring = ring_new(d->q, d->names, d->n, d->owners);
    s->strings = malloc(cl + fl);
    if (!s->ring || !s->strings) {
        draft_free(d);
        cstate_free(s);
        return NULL;
    }
    memcpy(s->strings, d->cluster_name, cl);
    memcpy(s->strings + cl, d->founder, fl);
    s->d = *d;
    memset(d, 0, sizeof *d);
    for (uint32_t i = 0; i < s->d.n; i++)
        s->d.names[i] = ring_member_name(s->ring, i);
    s->d.cluster_name = s->strings;
    s->d.founder = s->strings + cl;
    for (uint32_t p = 0; p < s->d.q; p++) {
        if (s->d.next[p] != CSTATE_NONE)
            s->pending++;
        else
            s->d.done[p] = 0;
    }
    if (fp) {
        s->fingerprint = *fp;
    } else {
        size_t len = 0;
        uint8_t *bytes = pack_state(s, &len);
        if (!bytes) {
            cstate_free(s);
            return NULL;
        }
        s->fingerprint = XXH3_64bits(bytes, len);
        free(bytes);
    }
    return s;
}

/* Bumps self's version-vector entry and builds: the end of every change. */
static cstate_t *commit(draft_t *d, uint32_t self_index)
{
    d->vclock[self_index]++;
    return build(d, NULL);
}

cstate_t *cstate_new(uint32_t q, const char *self, const char *cluster_name)
{
    if (!cluster_name)
        cluster_name = DEFAULT_CLUSTER_NAME;
    if (!q_ok(q) || !node_name_ok(self) || !printable_ok(cluster_name))
        return NULL;
    draft_t d;
    if (!draft_alloc(&d, q, 1))
        return NULL;
    d.names[0] = self;
    d.status[0] = CSTATE_VALID;
    d.mver[0] = 1;
    d.vclock[0] = 1;
    d.claimant = 0;
    d.rvsn = 1;
    d.cluster_name = cluster_name;
    d.founder = self;
    return build(&d, NULL);
}

cstate_t *cstate_dup(const cstate_t *s)
{
    draft_t d;
    if (!s || !draft_copy(&d, s))
        return NULL;
    return build(&d, &s->fingerprint);
}

/* ---------------------------------------------------------------- reading */

const ring_t *cstate_ring(const cstate_t *s) { return s->ring; }
uint32_t cstate_size(const cstate_t *s) { return s->d.q; }
uint32_t cstate_member_count(const cstate_t *s) { return s->d.n; }
const char *cstate_cluster_name(const cstate_t *s) { return s->d.cluster_name; }
const char *cstate_founder(const cstate_t *s) { return s->d.founder; }
uint64_t cstate_ring_version(const cstate_t *s) { return s->d.rvsn; }
uint32_t cstate_pending_count(const cstate_t *s) { return s->pending; }
uint64_t cstate_fingerprint(const cstate_t *s) { return s->fingerprint; }
const char *cstate_claimant(const cstate_t *s) { return s->d.names[s->d.claimant]; }

const char *cstate_member_name(const cstate_t *s, uint32_t i)
{
    return i < s->d.n ? s->d.names[i] : NULL;
}

cstate_status_t cstate_member_status(const cstate_t *s, uint32_t i)
{
    return i < s->d.n ? (cstate_status_t)s->d.status[i] : CSTATE_REMOVED;
}

uint64_t cstate_member_version(const cstate_t *s, uint32_t i)
{
    return i < s->d.n ? s->d.mver[i] : 0;
}

uint32_t cstate_member_index(const cstate_t *s, const char *name)
{
    return name ? find_name(s->d.names, s->d.n, name, NULL) : CSTATE_NONE;
}

static bool may_claim(uint32_t st)
{
    return st == CSTATE_VALID || st == CSTATE_LEAVING;
}

static uint32_t effective_claimant_index(const draft_t *d)
{
    if (may_claim(d->status[d->claimant]))
        return d->claimant;
    for (uint32_t i = 0; i < d->n; i++)
        if (may_claim(d->status[i]))
            return i;
    return CSTATE_NONE;
}

const char *cstate_claimant_effective(const cstate_t *s)
{
    uint32_t i = effective_claimant_index(&s->d);
    return i == CSTATE_NONE ? NULL : s->d.names[i];
}

uint32_t cstate_next_owner(const cstate_t *s, uint32_t p)
{
    return p < s->d.q ? s->d.next[p] : CSTATE_NONE;
}

bool cstate_transfer_is_done(const cstate_t *s, uint32_t p)
{
    return p < s->d.q && s->d.next[p] != CSTATE_NONE && s->d.done[p];
}

uint32_t cstate_owned(const cstate_t *s, uint32_t i)
{
    uint32_t count = 0;
    for (uint32_t p = 0; p < s->d.q; p++)
        count += s->d.owners[p] == i;
    return count;
}

uint32_t cstate_owned_after(const cstate_t *s, uint32_t i)
{
    uint32_t count = 0;
    for (uint32_t p = 0; p < s->d.q; p++)
        count += (s->d.next[p] != CSTATE_NONE ? s->d.next[p] : s->d.owners[p]) == i;
    return count;
}

size_t cstate_vclock_text(const cstate_t *s, char *buf, size_t len)
{
    size_t need = 0;
    if (buf && len)
        buf[0] = '\0';
    for (uint32_t i = 0; i < s->d.n; i++) {
        if (s->d.vclock[i] == 0)
            continue;
        size_t room = buf && need < len ? len - need : 0;
        int w = snprintf(room ? buf + need : NULL, room, "%s%s=%llu", need ? "," : "",
                         s->d.names[i], (unsigned long long)s->d.vclock[i]);
        need += (size_t)w;
    }
    return need;
}

cstate_order_t cstate_compare(const cstate_t *a, const cstate_t *b)
{
    bool a_ahead = false, b_ahead = false;
    uint32_t i = 0, j = 0;
    while (i < a->d.n || j < b->d.n) {
        int c = i >= a->d.n ? 1 : j >= b->d.n ? -1 : strcmp(a->d.names[i], b->d.names[j]);
        uint64_t va = c <= 0 ? a->d.vclock[i] : 0, vb = c >= 0 ? b->d.vclock[j] : 0;
        if (va > vb)
            a_ahead = true;
        else if (vb > va)
            b_ahead = true;
        i += c <= 0;
        j += c >= 0;
    }
    if (a_ahead && b_ahead)
        return CSTATE_ORDER_CONCURRENT;
    return a_ahead ? CSTATE_ORDER_NEWER : b_ahead ? CSTATE_ORDER_OLDER : CSTATE_ORDER_EQUAL;
}

/* ---------------------------------------------------------------- merge */

bool cstate_sender_is_removed(const cstate_t *mine, const cstate_t *theirs, const char *sender)
{
    if (!sender)
        return false;
    uint32_t i = cstate_member_index(mine, sender);
    if (i == CSTATE_NONE || mine->d.status[i] != CSTATE_REMOVED)
        return false;
    uint32_t j = cstate_member_index(theirs, sender);
    return j == CSTATE_NONE || theirs->d.mver[j] <= mine->d.mver[i];
}

/* The name of member idx of s, "" for CSTATE_NONE (so "not moving" sorts first). */
static const char *name_or_empty(const cstate_t *s, uint32_t idx)
{
    return idx == CSTATE_NONE ? "" : s->d.names[idx];
}

/* Which ownership a merge keeps: > 0 a's, < 0 b's, 0 they are the same (see cstate.h). */
static int ownership_order(const cstate_t *a, const cstate_t *b)
{
    if (a->d.rvsn != b->d.rvsn)
        return a->d.rvsn > b->d.rvsn ? 1 : -1;
    int c = strcmp(a->d.names[a->d.claimant], b->d.names[b->d.claimant]);
    for (uint32_t p = 0; c == 0 && p < a->d.q; p++)
        c = strcmp(a->d.names[a->d.owners[p]], b->d.names[b->d.owners[p]]);
    for (uint32_t p = 0; c == 0 && p < a->d.q; p++)
        c = strcmp(name_or_empty(a, a->d.next[p]), name_or_empty(b, b->d.next[p]));
    return c < 0 ? 1 : c > 0 ? -1 : 0;
}

/* Whether member entry (mver x, status sx) wins over (y, sy). */
static bool entry_wins(uint64_t x, uint32_t sx, uint64_t y, uint32_t sy)
{
    return x != y ? x > y : status_rank(sx) > status_rank(sy);
}

/* The join of two states of the same cluster (see Versioning in cstate.h). NULL when the
 * union would exceed CSTATE_MAX_MEMBERS or out of memory. */
static cstate_t *join_states(const cstate_t *a, const cstate_t *b)
{
    const draft_t *da = &a->d, *db = &b->d;
    uint32_t *ma = malloc(da->n * sizeof *ma), *mb = malloc(db->n * sizeof *mb);
    uint8_t *from_a = NULL;
    draft_t d;
    memset(&d, 0, sizeof d);
    cstate_t *out = NULL;
    if (!ma || !mb)
        goto done;
    /* the union of the sorted member lists, and where each side's members land in it */
    uint32_t n = 0, i = 0, j = 0;
    while (i < da->n || j < db->n) {
        int c = i >= da->n ? 1 : j >= db->n ? -1 : strcmp(da->names[i], db->names[j]);
        if (c <= 0)
            ma[i++] = n;
        if (c >= 0)
            mb[j++] = n;
        n++;
    }
    if (n > CSTATE_MAX_MEMBERS || !draft_alloc(&d, da->q, n) || !(from_a = calloc(n, 1)))
        goto done;
    for (i = 0; i < da->n; i++) {
        uint32_t k = ma[i];
        d.names[k] = da->names[i];
        d.status[k] = da->status[i];
        d.mver[k] = da->mver[i];
        d.vclock[k] = da->vclock[i];
        from_a[k] = 1;
    }
    for (j = 0; j < db->n; j++) {
        uint32_t k = mb[j];
        if (!from_a[k]) {
            d.names[k] = db->names[j];
            d.status[k] = db->status[j];
            d.mver[k] = db->mver[j];
            d.vclock[k] = db->vclock[j];
            continue;
        }
        if (db->vclock[j] > d.vclock[k])
            d.vclock[k] = db->vclock[j];
        if (entry_wins(db->mver[j], db->status[j], d.mver[k], d.status[k])) {
            d.mver[k] = db->mver[j];
            d.status[k] = db->status[j];
        }
    }
    int order = ownership_order(a, b);
    const draft_t *win = order >= 0 ? da : db, *other = order >= 0 ? db : da;
    const uint32_t *map = order >= 0 ? ma : mb;
    for (uint32_t p = 0; p < d.q; p++) {
        d.owners[p] = map[win->owners[p]];
        if (win->next[p] != CSTATE_NONE) {
            d.next[p] = map[win->next[p]];
            d.done[p] = win->done[p] | (order == 0 ? other->done[p] : 0);
        }
    }
    d.claimant = map[win->claimant];
    d.rvsn = win->rvsn;
    d.cluster_name = da->cluster_name;
    d.founder = da->founder;
    out = build(&d, NULL);
done:
    draft_free(&d);
    free(from_a);
    free(ma);
    free(mb);
    return out;
}

cstate_merge_t cstate_merge(const cstate_t *mine, const cstate_t *theirs, const char *self,
                            const char *sender, cstate_t **out)
{
    (void)self; /* the merge is the same on every node (see Versioning in cstate.h) */
    *out = NULL;
    if (!mine || !theirs || mine->d.q != theirs->d.q ||
        strcmp(mine->d.cluster_name, theirs->d.cluster_name) != 0 ||
        strcmp(mine->d.founder, theirs->d.founder) != 0)
        return CSTATE_MERGE_IGNORED;
    if (cstate_sender_is_removed(mine, theirs, sender))
        return CSTATE_MERGE_IGNORED;
    if (mine->fingerprint == theirs->fingerprint)
        return CSTATE_MERGE_KEPT;
    switch (cstate_compare(mine, theirs)) {
    case CSTATE_ORDER_NEWER:
        return CSTATE_MERGE_KEPT;
    case CSTATE_ORDER_OLDER:
        *out = cstate_dup(theirs);
        return *out ? CSTATE_MERGE_ADOPTED : CSTATE_MERGE_IGNORED;
    case CSTATE_ORDER_EQUAL:      /* same versions, different content: only after a bug or */
    case CSTATE_ORDER_CONCURRENT: /* a lost write elsewhere; the join settles it either way */
        break;
    }
    cstate_t *joined = join_states(mine, theirs);
    if (!joined)
        return CSTATE_MERGE_IGNORED;
    if (joined->fingerprint == mine->fingerprint) {
        cstate_free(joined);
        return CSTATE_MERGE_KEPT;
    }
    *out = joined;
    return joined->fingerprint == theirs->fingerprint ? CSTATE_MERGE_ADOPTED : CSTATE_MERGE_MERGED;
}

/* ---------------------------------------------------------------- changes */

/* Index of self in s, or CSTATE_NONE with the reason in err. */
static uint32_t self_index(const cstate_t *s, const char *self, char *err, size_t errlen)
{
    uint32_t i = cstate_member_index(s, self);
    if (i == CSTATE_NONE)
        fail(err, errlen, "%s is not a member of this cluster state", self ? self : "(null)");
    return i;
}

int cstate_join(const cstate_t *cluster, const char *joiner, uint32_t joiner_q, cstate_t **out,
                char *err, size_t errlen)
{
    if (!cluster || !out)
        return fail(err, errlen, "no cluster state to join");
    if (!node_name_ok(joiner))
        return fail(err, errlen, "'%s' is not a node name (name@host:port)",
                    joiner ? joiner : "(null)");
    if (joiner_q != cluster->d.q)
        return fail(err, errlen,
                    "different_ring_sizes: this node has a ring of %u partitions, the cluster %u",
                    joiner_q, cluster->d.q);
    uint32_t i = cstate_member_index(cluster, joiner);
    if (i != CSTATE_NONE && cluster->d.status[i] != CSTATE_REMOVED)
        return fail(err, errlen, "already_member: %s is already a member of the cluster (%s)",
                    joiner, cstate_status_name(cluster->d.status[i]));
    if (i == CSTATE_NONE && cluster->d.n >= CSTATE_MAX_MEMBERS)
        return fail(err, errlen, "the cluster lists %u members, the most it can hold",
                    cluster->d.n);
    draft_t d;
    bool ok = i == CSTATE_NONE ? draft_insert(&d, cluster, joiner, &i) : draft_copy(&d, cluster);
    if (!ok)
        return fail(err, errlen, "out of memory");
    set_status(&d, i, CSTATE_JOINING); /* a tombstone's version goes up: the rejoin wins */
    cstate_t *s = commit(&d, i);
    if (!s)
        return fail(err, errlen, "out of memory");
    *out = s;
    return 0;
}

static bool is_replace(cstate_change_kind_t k)
{
    return k == CSTATE_CHANGE_REPLACE || k == CSTATE_CHANGE_FORCE_REPLACE;
}

static bool is_force(cstate_change_kind_t k)
{
    return k == CSTATE_CHANGE_FORCE_REMOVE || k == CSTATE_CHANGE_FORCE_REPLACE;
}

static const char *change_name(cstate_change_kind_t k)
{
    switch (k) {
    case CSTATE_CHANGE_LEAVE: return "leave";
    case CSTATE_CHANGE_FORCE_REMOVE: return "force-remove";
    case CSTATE_CHANGE_REPLACE: return "replace";
    case CSTATE_CHANGE_FORCE_REPLACE: return "force-replace";
    }
    return "unknown";
}

/* Whether staged change c names node (as the node or as the replacement). */
static bool names_node(const cstate_change_t *c, const char *node)
{
    return strcmp(c->node, node) == 0 || (is_replace(c->kind) && strcmp(c->new_node, node) == 0);
}

int cstate_change_check(const cstate_t *s, const cstate_change_t *staged, size_t nstaged,
                        const cstate_change_t *c, char *err, size_t errlen)
{
    if (!s || !c || (nstaged && !staged))
        return fail(err, errlen, "no change to check");
    if ((unsigned)c->kind > CSTATE_CHANGE_FORCE_REPLACE)
        return fail(err, errlen, "unknown change kind %d", (int)c->kind);
    if (!field_ok(c->node) || (is_replace(c->kind) && !field_ok(c->new_node)))
        return fail(err, errlen, "a node name of the change is not terminated");
    const char *what = change_name(c->kind);
    uint32_t i = cstate_member_index(s, c->node);
    if (i == CSTATE_NONE)
        return fail(err, errlen, "not_member: %s is not a member of the cluster", c->node);
    uint32_t st = s->d.status[i];
    if (!(st == CSTATE_VALID || st == CSTATE_LEAVING || (is_force(c->kind) && st == CSTATE_DOWN)))
        return fail(err, errlen, "%s: %s is %s; only a valid or leaving member%s can be changed",
                    what, c->node, cstate_status_name(st),
                    is_force(c->kind) ? " (or a down one)" : "");
    for (size_t k = 0; k < nstaged; k++)
        if (names_node(&staged[k], c->node))
            return fail(err, errlen, "%s: %s already has a staged change (%s)", what, c->node,
                        change_name(staged[k].kind));
    if (is_replace(c->kind)) {
        if (strcmp(c->node, c->new_node) == 0)
            return fail(err, errlen, "invalid_replacement: %s cannot replace itself", c->node);
        uint32_t j = cstate_member_index(s, c->new_node);
        if (j == CSTATE_NONE)
            return fail(err, errlen,
                        "not_member: %s is not a member of the cluster (join it first, then "
                        "replace)", c->new_node);
        if (s->d.status[j] != CSTATE_JOINING)
            return fail(err, errlen,
                        "invalid_replacement: %s is %s; a replacement must be a joining member",
                        c->new_node, cstate_status_name(s->d.status[j]));
        for (size_t k = 0; k < nstaged; k++)
            if (names_node(&staged[k], c->new_node))
                return fail(err, errlen, "already_replacement: %s is already named by a staged %s",
                            c->new_node, change_name(staged[k].kind));
    }
    uint32_t claimant = effective_claimant_index(&s->d);
    if (is_force(c->kind) && claimant == i)
        return fail(err, errlen,
                    "is_claimant: %s is the claimant; mark it down first so that another node "
                    "takes over", c->node);
    /* members that will be valid after commit: valid and joining ones, minus those changed */
    uint32_t remaining = 0;
    for (uint32_t m = 0; m < s->d.n; m++) {
        if (s->d.status[m] != CSTATE_VALID && s->d.status[m] != CSTATE_JOINING)
            continue;
        bool changed = strcmp(s->d.names[m], c->node) == 0;
        for (size_t k = 0; k < nstaged && !changed; k++)
            changed = strcmp(s->d.names[m], staged[k].node) == 0;
        remaining += !changed;
    }
    if (remaining == 0)
        return fail(err, errlen, "only_member: %s is the last valid member of the cluster",
                    c->node);
    return 0;
}

void cstate_plan_free(cstate_plan_t *p)
{
    if (!p)
        return;
    cstate_free(p->result);
    p->result = NULL;
}

/* Runs claim over the members whose status is valid or down (the ones that keep or take
 * partitions) from old_owners into new_owners. 0, or CSTATE_EINVAL with the reason. */
static int claim_over_owning(const draft_t *d, const uint32_t *old_owners, unsigned target_n,
                             uint32_t *new_owners, ring_claim_stats_t *stats, char *err,
                             size_t errlen)
{
    uint32_t *ids = malloc(d->n * sizeof *ids), k = 0;
    if (!ids)
        return fail(err, errlen, "out of memory");
    for (uint32_t i = 0; i < d->n; i++)
        if (d->status[i] == CSTATE_VALID || d->status[i] == CSTATE_DOWN)
            ids[k++] = i;
    int rc = 0;
    char why[160];
    if (k == 0)
        rc = fail(err, errlen, "no member would own partitions");
    else if (k > d->q)
        rc = fail(err, errlen,
                  "%u members would own partitions but the ring has only %u; every member of a "
                  "cluster needs one (ring_size is fixed when the cluster is created)", k, d->q);
    else if (ring_claim(d->q, old_owners, ids, k, target_n, new_owners, stats, why, sizeof why))
        rc = fail(err, errlen, "claim: %s", why);
    free(ids);
    return rc;
}

int cstate_plan(const cstate_t *s, const cstate_change_t *changes, size_t nchanges,
                unsigned target_n, const char *self, cstate_plan_t *out, char *err,
                size_t errlen)
{
    if (!out)
        return fail(err, errlen, "no plan to fill");
    memset(out, 0, sizeof *out);
    if (!s || (nchanges && !changes))
        return fail(err, errlen, "no cluster state or changes to plan");
    const char *claimant = cstate_claimant_effective(s);
    if (!self || !claimant || strcmp(claimant, self) != 0)
        return fail(err, errlen, "not_claimant: only the claimant (%s) plans changes",
                    claimant ? claimant : "none: no valid member");
    for (size_t k = 0; k < nchanges; k++) {
        int rc = cstate_change_check(s, changes, k, &changes[k], err, errlen);
        if (rc != 0)
            return rc;
    }
    uint32_t joining = 0;
    for (uint32_t i = 0; i < s->d.n; i++)
        joining += s->d.status[i] == CSTATE_JOINING;
    if (nchanges == 0 && joining == 0) {
        out->nothing = true;
        return 0;
    }
    if (s->pending > 0)
        return fail(err, errlen,
                    "transfers pending: %u partitions are still moving; plan again once the "
                    "claimant has finished them", s->pending);

    draft_t d;
    uint32_t *virtual_owners = malloc(s->d.q * sizeof *virtual_owners);
    uint32_t *new_owners = malloc(s->d.q * sizeof *new_owners);
    if (!virtual_owners || !new_owners || !draft_copy(&d, s)) {
        free(virtual_owners);
        free(new_owners);
        return fail(err, errlen, "out of memory");
    }
    for (uint32_t i = 0; i < d.n; i++)
        if (d.status[i] == CSTATE_JOINING)
            set_status(&d, i, CSTATE_VALID);
    memcpy(virtual_owners, d.owners, d.q * sizeof *virtual_owners);
    for (size_t k = 0; k < nchanges; k++) {
        const cstate_change_t *c = &changes[k];
        uint32_t i = draft_index(&d, c->node);
        bool removed = is_force(c->kind);
        set_status(&d, i, removed ? CSTATE_REMOVED : CSTATE_LEAVING);
        if (is_replace(c->kind)) { /* the replacement stands in for the node before claim */
            uint32_t j = draft_index(&d, c->new_node);
            for (uint32_t p = 0; p < d.q; p++)
                if (virtual_owners[p] == i)
                    virtual_owners[p] = j;
        }
    }
    ring_claim_stats_t stats;
    int rc = claim_over_owning(&d, virtual_owners, target_n, new_owners, &stats, err, errlen);
    if (rc == 0) {
        uint32_t self_i = draft_index(&d, self);
        bool ownership_changed = d.claimant != self_i;
        for (uint32_t p = 0; p < d.q; p++) {
            if (new_owners[p] == d.owners[p])
                continue;
            if (d.status[d.owners[p]] == CSTATE_REMOVED) {
                d.owners[p] = new_owners[p];
                out->moved_now++;
            } else {
                d.next[p] = new_owners[p];
                d.done[p] = 0;
                out->transfers++;
            }
            ownership_changed = true;
        }
        d.claimant = self_i;
        if (ownership_changed)
            d.rvsn++;
        out->violations = ring_claim_violations(d.q, new_owners, target_n);
        out->restriped = stats.restriped;
        out->result = commit(&d, self_i);
        if (!out->result)
            rc = fail(err, errlen, "out of memory");
    }
    draft_free(&d);
    free(virtual_owners);
    free(new_owners);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int cstate_mark_down(const cstate_t *s, const char *node, const char *self, cstate_t **out,
                     char *err, size_t errlen)
{
    if (!s || !node || !out)
        return fail(err, errlen, "no cluster state or node");
    uint32_t si = self_index(s, self, err, errlen);
    if (si == CSTATE_NONE)
        return CSTATE_EINVAL;
    if (strcmp(node, self) == 0)
        return fail(err, errlen, "%s cannot mark itself down", node);
    uint32_t i = cstate_member_index(s, node);
    if (i == CSTATE_NONE)
        return fail(err, errlen, "not_member: %s is not a member of the cluster", node);
    uint32_t st = s->d.status[i];
    if (st != CSTATE_VALID && st != CSTATE_LEAVING && st != CSTATE_EXITING)
        return fail(err, errlen,
                    "%s is %s; only a valid, leaving or exiting member can be marked down", node,
                    cstate_status_name(st));
    if (st == CSTATE_VALID) {
        uint32_t valid = 0;
        for (uint32_t m = 0; m < s->d.n; m++)
            valid += s->d.status[m] == CSTATE_VALID;
        if (valid == 1)
            return fail(err, errlen, "only_member: %s is the only valid member", node);
    }
    draft_t d;
    if (!draft_copy(&d, s))
        return fail(err, errlen, "out of memory");
    set_status(&d, i, CSTATE_DOWN);
    if (!(*out = commit(&d, si)))
        return fail(err, errlen, "out of memory");
    return 0;
}

int cstate_mark_up(const cstate_t *s, const char *node, const char *self, cstate_t **out,
                   char *err, size_t errlen)
{
    if (!s || !node || !out)
        return fail(err, errlen, "no cluster state or node");
    uint32_t si = self_index(s, self, err, errlen);
    if (si == CSTATE_NONE)
        return CSTATE_EINVAL;
    uint32_t i = cstate_member_index(s, node);
    if (i == CSTATE_NONE)
        return fail(err, errlen, "not_member: %s is not a member of the cluster", node);
    if (s->d.status[i] != CSTATE_DOWN)
        return fail(err, errlen, "%s is %s, not down", node, cstate_status_name(s->d.status[i]));
    draft_t d;
    if (!draft_copy(&d, s))
        return fail(err, errlen, "out of memory");
    set_status(&d, i, CSTATE_VALID);
    if (!(*out = commit(&d, si)))
        return fail(err, errlen, "out of memory");
    return 0;
}

int cstate_transfer_done(const cstate_t *s, uint32_t p, const char *self, cstate_t **out,
                         char *err, size_t errlen)
{
    if (!s || !out)
        return fail(err, errlen, "no cluster state");
    uint32_t si = self_index(s, self, err, errlen);
    if (si == CSTATE_NONE)
        return CSTATE_EINVAL;
    if (p >= s->d.q)
        return fail(err, errlen, "partition %u is not in 0..%u", p, s->d.q - 1);
    if (s->d.next[p] == CSTATE_NONE)
        return fail(err, errlen, "partition %u has no pending transfer", p);
    if (s->d.done[p])
        return fail(err, errlen, "the transfer of partition %u is already marked done", p);
    draft_t d;
    if (!draft_copy(&d, s))
        return fail(err, errlen, "out of memory");
    d.done[p] = 1; /* ownership stays the same: no rvsn bump (see cstate.h) */
    if (!(*out = commit(&d, si)))
        return fail(err, errlen, "out of memory");
    return 0;
}

static bool gone(uint32_t st)
{
    return st == CSTATE_DOWN || st == CSTATE_REMOVED;
}

/* Claim over the valid members only, from d's owners into fresh (q entries). */
static bool claim_over_valid(const draft_t *d, uint32_t *fresh)
{
    uint32_t *ids = malloc(d->n * sizeof *ids), k = 0;
    if (!ids)
        return false;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->status[i] == CSTATE_VALID)
            ids[k++] = i;
    bool ok = k > 0 && k <= d->q &&
              ring_claim(d->q, d->owners, ids, k, 0, fresh, NULL, NULL, 0) == 0;
    free(ids);
    return ok;
}

/* Claimant tick, step: partitions owned by a member of status `from` get an owner (at once)
 * or a next owner (by transfer) among the valid members, chosen by claim; no other
 * partition changes. Returns whether anything changed. */
static bool tick_reassign(draft_t *d, cstate_status_t from, bool at_once)
{
    bool any = false;
    for (uint32_t p = 0; p < d->q && !any; p++)
        any = d->status[d->owners[p]] == from;
    uint32_t *fresh = any ? malloc(d->q * sizeof *fresh) : NULL;
    bool changed = false;
    if (fresh && claim_over_valid(d, fresh)) {
        for (uint32_t p = 0; p < d->q; p++) {
            if (d->status[d->owners[p]] != from || fresh[p] == d->owners[p])
                continue;
            if (at_once) {
                d->owners[p] = fresh[p];
                d->next[p] = CSTATE_NONE;
            } else {
                d->next[p] = fresh[p];
            }
            d->done[p] = 0;
            changed = true;
        }
    }
    free(fresh);
    return changed;
}

/* Claimant tick, step: partitions owned by removed members go at once to valid members. */
static bool tick_reassign_orphans(draft_t *d)
{
    return tick_reassign(d, CSTATE_REMOVED, true);
}

/* Claimant tick, step: with nothing pending, partitions still owned by leaving members are
 * planned again, to valid members (their earlier transfers were dropped). Returns whether
 * anything changed. */
static bool tick_replan_leavers(draft_t *d)
{
    for (uint32_t p = 0; p < d->q; p++)
        if (d->next[p] != CSTATE_NONE)
            return false;
    return tick_reassign(d, CSTATE_LEAVING, false);
}

int cstate_claimant_tick(const cstate_t *s, const char *self, cstate_t **out)
{
    if (!out)
        return CSTATE_EINVAL;
    *out = NULL;
    const char *claimant = s ? cstate_claimant_effective(s) : NULL;
    if (!claimant || !self || strcmp(claimant, self) != 0)
        return 0;
    uint32_t si = cstate_member_index(s, self);
    draft_t d;
    if (!draft_copy(&d, s))
        return CSTATE_EINVAL;
    bool ownership = false, members = false;
    if (d.claimant != si) {
        d.claimant = si;
        ownership = true;
    }
    for (uint32_t p = 0; p < d.q; p++) {
        uint32_t next = d.next[p];
        if (next == CSTATE_NONE)
            continue;
        if (!gone(d.status[next]) && d.done[p])
            d.owners[p] = next; /* the data is across: ownership moves */
        else if (!gone(d.status[next]) && !gone(d.status[d.owners[p]]))
            continue;           /* still awaiting, both ends alive */
        d.next[p] = CSTATE_NONE; /* done, or dropped: an end is down or removed */
        d.done[p] = 0;
        ownership = true;
    }
    ownership |= tick_reassign_orphans(&d);
    ownership |= tick_replan_leavers(&d);
    for (uint32_t i = 0; i < d.n; i++) {
        if (s->d.status[i] == CSTATE_EXITING && d.status[i] == CSTATE_EXITING) {
            set_status(&d, i, CSTATE_REMOVED);
            members = true;
        } else if (d.status[i] == CSTATE_LEAVING) {
            bool involved = false;
            for (uint32_t p = 0; p < d.q && !involved; p++)
                involved = d.owners[p] == i || d.next[p] == i;
            if (!involved) {
                set_status(&d, i, CSTATE_EXITING);
                members = true;
            }
        }
    }
    if (!ownership && !members) {
        draft_free(&d);
        return 0;
    }
    if (ownership)
        d.rvsn++;
    *out = commit(&d, si);
    return *out ? 0 : CSTATE_EINVAL;
}

/* ---------------------------------------------------------------- decoding and the file */

/* A state from a format-2 RingState, checking everything. */
static int from_message(const Cairn__Ring__RingState *m, cstate_t **out, char *err, size_t errlen)
{
    if (!m->has_ring_size || !q_ok(m->ring_size))
        return fail(err, errlen, "ring size %u is not a power of two in 1..%u",
                    m->has_ring_size ? m->ring_size : 0, RING_MAX_PARTITIONS);
    uint32_t q = m->ring_size;
    if (m->n_members == 0 || m->n_members > CSTATE_MAX_MEMBERS)
        return fail(err, errlen, "%zu members (1..%u)", m->n_members, CSTATE_MAX_MEMBERS);
    uint32_t n = (uint32_t)m->n_members;
    for (uint32_t i = 0; i < n; i++) {
        if (!node_name_ok(m->members[i]))
            return fail(err, errlen, "member #%u has no valid node name", i);
        if (i > 0 && strcmp(m->members[i - 1], m->members[i]) >= 0)
            return fail(err, errlen, "members are not sorted and distinct at #%u", i);
    }
    if (m->n_owners != q)
        return fail(err, errlen, "%zu owners for %u partitions", m->n_owners, q);
    for (uint32_t p = 0; p < q; p++)
        if (m->owners[p] >= n)
            return fail(err, errlen, "partition %u owned by member %u of %u", p, m->owners[p], n);
    if (!printable_ok(m->cluster_name))
        return fail(err, errlen, "no valid cluster name");
    if (!node_name_ok(m->founder) ||
        find_name((const char *const *)m->members, n, m->founder, NULL) == CSTATE_NONE)
        return fail(err, errlen, "the founder is not a member");
    if (m->n_member_status != n || m->n_member_version != n || m->n_vclock != n)
        return fail(err, errlen, "%zu statuses, %zu versions, %zu clock entries for %u members",
                    m->n_member_status, m->n_member_version, m->n_vclock, n);
    for (uint32_t i = 0; i < n; i++)
        if (m->member_status[i] > CSTATE_REMOVED)
            return fail(err, errlen, "member #%u has an unknown status %u", i,
                        m->member_status[i]);
    if (!m->has_claimant || m->claimant >= n)
        return fail(err, errlen, "the claimant is not a member");
    if (!m->has_ring_version)
        return fail(err, errlen, "no ring version");
    if (!m->has_pending_count || m->pending_count != m->n_pending)
        return fail(err, errlen, "truncated: %zu pending transfers, %u announced", m->n_pending,
                    m->has_pending_count ? m->pending_count : 0);
    if (m->n_pending > q)
        return fail(err, errlen, "%zu pending transfers for %u partitions", m->n_pending, q);
    for (size_t k = 0; k < m->n_pending; k++) {
        const Cairn__Ring__PendingTransfer *t = m->pending[k];
        if (!t->has_partition || t->partition >= q ||
            (k > 0 && t->partition <= m->pending[k - 1]->partition))
            return fail(err, errlen, "pending transfer #%zu: partition missing, out of range or "
                        "out of order", k);
        if (!t->has_next_owner || t->next_owner >= n || t->next_owner == m->owners[t->partition])
            return fail(err, errlen, "pending transfer of partition %u: bad next owner",
                        t->partition);
    }
    draft_t d;
    if (!draft_alloc(&d, q, n))
        return fail(err, errlen, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        d.names[i] = m->members[i];
        d.status[i] = m->member_status[i];
        d.mver[i] = m->member_version[i];
        d.vclock[i] = m->vclock[i];
    }
    memcpy(d.owners, m->owners, q * sizeof *d.owners);
    for (size_t k = 0; k < m->n_pending; k++) {
        d.next[m->pending[k]->partition] = m->pending[k]->next_owner;
        d.done[m->pending[k]->partition] = m->pending[k]->has_done && m->pending[k]->done;
    }
    d.claimant = m->claimant;
    d.rvsn = m->ring_version;
    d.cluster_name = m->cluster_name;
    d.founder = m->founder;
    if (!(*out = build(&d, NULL)))
        return fail(err, errlen, "out of memory");
    return 0;
}

int cstate_decode(const uint8_t *buf, size_t len, cstate_t **out, char *err, size_t errlen)
{
    if (!out)
        return fail(err, errlen, "nowhere to decode to");
    if (!buf || len == 0)
        return fail(err, errlen, "empty cluster state");
    if (len > CSTATE_ENCODED_MAX)
        return fail(err, errlen, "cluster state of %zu bytes (at most %u)", len,
                    CSTATE_ENCODED_MAX);
    Cairn__Ring__RingState *m = cairn__ring__ring_state__unpack(NULL, len, buf);
    if (!m)
        return fail(err, errlen, "not a RingState message");
    cstate_t *s = NULL;
    int rc = from_message(m, &s, err, errlen);
    cairn__ring__ring_state__free_unpacked(m, NULL);
    if (rc == 0)
        *out = s;
    return rc;
}

typedef struct named_index_s {
    const char *name;
    uint32_t index;
} named_index_t;

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const named_index_t *)a)->name, ((const named_index_t *)b)->name);
}

/* A state from a format-1 RingState (ring_save): members and owners only. */
static int from_legacy(const Cairn__Ring__RingState *m, cstate_t **out, char *err, size_t errlen)
{
    if (!m->has_ring_size || !q_ok(m->ring_size))
        return fail(err, errlen, "ring size %u is not a power of two in 1..%u",
                    m->has_ring_size ? m->ring_size : 0, RING_MAX_PARTITIONS);
    uint32_t q = m->ring_size;
    if (m->n_members == 0 || m->n_members > CSTATE_MAX_MEMBERS)
        return fail(err, errlen, "%zu members (1..%u)", m->n_members, CSTATE_MAX_MEMBERS);
    uint32_t n = (uint32_t)m->n_members;
    for (uint32_t i = 0; i < n; i++)
        if (!node_name_ok(m->members[i]))
            return fail(err, errlen, "member #%u has no valid node name", i);
    if (m->n_owners != q)
        return fail(err, errlen, "%zu owners for %u partitions", m->n_owners, q);
    for (uint32_t p = 0; p < q; p++)
        if (m->owners[p] >= n)
            return fail(err, errlen, "partition %u owned by member %u of %u", p, m->owners[p], n);
    named_index_t *order = malloc(n * sizeof *order);
    uint32_t *rank = malloc(n * sizeof *rank);
    draft_t d;
    memset(&d, 0, sizeof d);
    int rc = 0;
    if (!order || !rank || !draft_alloc(&d, q, n)) {
        rc = fail(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = (named_index_t){.name = m->members[i], .index = i};
    qsort(order, n, sizeof *order, compare_by_name);
    for (uint32_t k = 0; k < n; k++) {
        if (k > 0 && strcmp(order[k - 1].name, order[k].name) == 0) {
            rc = fail(err, errlen, "member %s is listed twice", order[k].name);
            goto out;
        }
        rank[order[k].index] = k;
        d.names[k] = order[k].name;
        d.status[k] = CSTATE_VALID;
        d.mver[k] = 1;
    }
    for (uint32_t p = 0; p < q; p++)
        d.owners[p] = rank[m->owners[p]];
    d.vclock[rank[0]] = 1;
    d.claimant = rank[0];
    d.rvsn = 1;
    d.cluster_name = DEFAULT_CLUSTER_NAME;
    d.founder = m->members[0];
    if (!(*out = build(&d, NULL)))
        rc = fail(err, errlen, "out of memory");
out:
    draft_free(&d);
    free(order);
    free(rank);
    return rc;
}

int cstate_save(const cstate_t *s, const char *path, char *err, size_t errlen)
{
    if (!s)
        return fail(err, errlen, "%s: no cluster state to save", path);
    size_t len = 0;
    uint8_t *bytes = pack_state(s, &len);
    if (!bytes) {
        fail(err, errlen, "%s: out of memory", path);
        return CSTATE_EIO;
    }
    int rc = ring_file_write(path, RING_FILE_FORMAT_CSTATE, bytes, len, err, errlen);
    free(bytes);
    return rc;
}

int cstate_load(const char *path, cstate_t **out, char *err, size_t errlen)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint32_t format = 0;
    int rc = ring_file_read(path, &format, &bytes, &len, err, errlen);
    if (rc != 0)
        return rc;
    char why[256] = "";
    cstate_t *s = NULL;
    if (format == RING_FILE_FORMAT_CSTATE) {
        rc = cstate_decode(bytes, len, &s, why, sizeof why);
    } else {
        Cairn__Ring__RingState *m = cairn__ring__ring_state__unpack(NULL, len, bytes);
        rc = m ? from_legacy(m, &s, why, sizeof why) : fail(why, sizeof why, "bad ring state");
        if (m)
            cairn__ring__ring_state__free_unpacked(m, NULL);
    }
    free(bytes);
    if (rc != 0)
        return fail(err, errlen, "%s: corrupt ring file (format %u): %s", path, format, why);
    *out = s;
    return 0;
}
