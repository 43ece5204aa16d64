/*
 * ring.c — the consistent-hash ring (ring/ring.h): key hashing (XXH3-64 over length-prefixed
 * type, bucket and key), partition arithmetic, preference lists, and the ring file
 * (proto/ring.proto): the RingFile container (format version, packed state, XXH3 check) with
 * its atomic write, which ring_save and cstate_save (ring/cstate.c) both go through.
 *
 * Invariant: a ring_t is immutable after construction; q is a power of two, every owners[p]
 * is a valid member index, and q_bits = log2(q), so partition arithmetic is shifts only.
 */
#include "ring/ring.h"

#include "proto/ring.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack for long keys */
#include <xxhash.h>

#define RING_FILE_MAX (1u << 20) /* a ring file is a few KiB; anything this big is corrupt */

struct ring_s {
    uint32_t q;
    unsigned q_bits; /* log2(q) */
    uint32_t nmembers;
    char **members;   /* nmembers pointers into names */
    char *names;      /* the member names, NUL-terminated one after the other (owned) */
    uint32_t *owners; /* q member indexes */
};

/* ---------------------------------------------------------------- hashing */

static size_t put_len(uint8_t *p, size_t len)
{
    uint32_t n = (uint32_t)len;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    return 4;
}

/* The hashed bytes are len32be(type) type len32be(bucket) bucket len32be(key) key. Small
 * inputs are laid out in one stack buffer and hashed in one call; larger ones are streamed,
 * which gives the same value for the same bytes. Lengths above 4 GiB cannot occur (every
 * key is bounded by the client frame size). */
uint64_t ring_hash_key(const void *type, size_t type_len, const void *bucket, size_t bucket_len,
                       const void *key, size_t key_len)
{
    const void *part[3] = {type, bucket, key};
    size_t len[3] = {type ? type_len : 0, bucket ? bucket_len : 0, key ? key_len : 0};
    size_t total = 12 + len[0] + len[1] + len[2];
    uint8_t buf[512];
    if (total <= sizeof buf) {
        size_t off = 0;
        for (int i = 0; i < 3; i++) {
            off += put_len(buf + off, len[i]);
            if (len[i])
                memcpy(buf + off, part[i], len[i]);
            off += len[i];
        }
        return XXH3_64bits(buf, off);
    }
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    for (int i = 0; i < 3; i++) {
        uint8_t lb[4];
        put_len(lb, len[i]);
        XXH3_64bits_update(&st, lb, 4);
        if (len[i])
            XXH3_64bits_update(&st, part[i], len[i]);
    }
    return XXH3_64bits_digest(&st);
}

/* ---------------------------------------------------------------- construction */

static bool is_pow2_q(uint32_t q)
{
    return q >= 1 && q <= RING_MAX_PARTITIONS && (q & (q - 1)) == 0;
}

static unsigned log2_u32(uint32_t q)
{
    unsigned b = 0;
    while ((1u << b) < q)
        b++;
    return b;
}

static bool member_name_ok(const char *name)
{
    size_t n = name ? strnlen(name, RING_NODE_NAME_MAX) : 0;
    return n > 0 && n < RING_NODE_NAME_MAX;
}

/* The one constructor every ring goes through: checks the arguments and copies them. The
 * member names are copied into one block (names), so a ring costs three allocations
 * whatever its member count. */
ring_t *ring_new(uint32_t q, const char *const *members, uint32_t nmembers, const uint32_t *owners)
{
    if (!is_pow2_q(q) || !members || nmembers == 0 || nmembers > RING_MAX_MEMBERS)
        return NULL;
    size_t block = 0;
    for (uint32_t i = 0; i < nmembers; i++) {
        if (!member_name_ok(members[i]))
            return NULL;
        block += strlen(members[i]) + 1;
    }
    for (uint32_t p = 0; owners && p < q; p++)
        if (owners[p] >= nmembers)
            return NULL;
    ring_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->q = q;
    r->q_bits = log2_u32(q);
    r->nmembers = nmembers;
    r->members = malloc(nmembers * sizeof *r->members);
    r->names = malloc(block);
    r->owners = calloc(q, sizeof *r->owners);
    if (!r->members || !r->names || !r->owners) {
        ring_free(r);
        return NULL;
    }
    char *at = r->names;
    for (uint32_t i = 0; i < nmembers; i++) {
        size_t len = strlen(members[i]) + 1;
        memcpy(at, members[i], len);
        r->members[i] = at;
        at += len;
    }
    if (owners)
        memcpy(r->owners, owners, q * sizeof *r->owners);
    return r;
}

ring_t *ring_new_single(uint32_t q, const char *node_name)
{
    const char *members[1] = {node_name};
    return ring_new(q, members, 1, NULL); /* owners all 0: member 0 */
}

void ring_free(ring_t *r)
{
    if (!r)
        return;
    free(r->members);
    free(r->names);
    free(r->owners);
    free(r);
}

/* ---------------------------------------------------------------- queries */

uint32_t ring_size(const ring_t *r) { return r->q; }
uint32_t ring_member_count(const ring_t *r) { return r->nmembers; }

const char *ring_member_name(const ring_t *r, uint32_t member)
{
    return member < r->nmembers ? r->members[member] : NULL;
}

uint32_t ring_owner(const ring_t *r, uint32_t partition)
{
    return r->owners[partition & (r->q - 1)];
}

/* The partition whose range contains h: the top q_bits bits of h (0 when q == 1). */
static uint32_t partition_of(const ring_t *r, uint64_t h)
{
    return r->q_bits ? (uint32_t)(h >> (64 - r->q_bits)) : 0;
}

uint32_t ring_first_partition(const ring_t *r, uint64_t h)
{
    return (partition_of(r, h) + 1) & (r->q - 1);
}

uint64_t ring_partition_start(const ring_t *r, uint32_t p)
{
    return r->q_bits ? (uint64_t)(p & (r->q - 1)) << (64 - r->q_bits) : 0;
}

size_t ring_preflist(const ring_t *r, uint64_t h, unsigned n, ring_pref_t *out)
{
    size_t count = n < r->q ? n : r->q;
    uint32_t p = ring_first_partition(r, h);
    for (size_t i = 0; i < count; i++) {
        out[i] = (ring_pref_t){.partition = p, .owner = r->owners[p], .primary = true};
        p = (p + 1) & (r->q - 1);
    }
    return count;
}

size_t ring_apl(const ring_t *r, uint64_t h, unsigned n, const bool *up, bool sloppy,
                ring_pref_t *out)
{
    size_t count = n < r->q ? n : r->q, at = 0;
    uint32_t first = ring_first_partition(r, h);
    for (size_t i = 0; i < count; i++) { /* the up primaries */
        uint32_t p = (first + (uint32_t)i) & (r->q - 1);
        if (up[r->owners[p]])
            out[at++] = (ring_pref_t){.partition = p, .owner = r->owners[p], .primary = true};
    }
    /* The down primaries, in ring order, each take the next up candidate after the
     * primaries; once the candidates run out, every later one has none, so the down
     * primaries with a fallback are a prefix of them. */
    uint32_t candidate = (uint32_t)count; /* offset from first */
    size_t fell_back = 0;
    for (size_t i = 0; i < count && sloppy; i++) {
        uint32_t p = (first + (uint32_t)i) & (r->q - 1);
        if (up[r->owners[p]])
            continue;
        while (candidate < r->q && !up[r->owners[(first + candidate) & (r->q - 1)]])
            candidate++;
        if (candidate == r->q)
            break;
        uint32_t host = r->owners[(first + candidate++) & (r->q - 1)];
        out[at++] = (ring_pref_t){.partition = p, .owner = host, .primary = false};
        fell_back++;
    }
    size_t down_seen = 0; /* the rest stay as unreachable primaries */
    for (size_t i = 0; i < count; i++) {
        uint32_t p = (first + (uint32_t)i) & (r->q - 1);
        if (up[r->owners[p]] || down_seen++ < fell_back)
            continue;
        out[at++] = (ring_pref_t){.partition = p, .owner = r->owners[p], .primary = true};
    }
    return count;
}

/* ---------------------------------------------------------------- the ring file */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Reads the whole file into a malloc'ed buffer. RING_ENOENT, RING_EIO or RING_EINVAL. */
static int read_file(const char *path, uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return fail(err, errlen, RING_ENOENT, "%s: no ring file", path);
        return fail(err, errlen, RING_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, RING_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > RING_FILE_MAX) {
        close(fd);
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file (size %lld bytes)", path,
                    (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len);
    if (!buf) {
        close(fd);
        return fail(err, errlen, RING_EIO, "%s: out of memory", path);
    }
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return fail(err, errlen, RING_EIO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;
}

int ring_file_read(const char *path, uint32_t *format_version, uint8_t **state, size_t *len,
                   char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t buf_len = 0;
    int rc = read_file(path, &buf, &buf_len, err, errlen);
    if (rc != 0)
        return rc;
    Cairn__Ring__RingFile *f = cairn__ring__ring_file__unpack(NULL, buf_len, buf);
    free(buf);
    if (!f)
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file (not a RingFile message)",
                    path);
    if (!f->has_format_version || f->format_version < RING_FILE_FORMAT_RING ||
        f->format_version > RING_FILE_FORMAT_CSTATE) {
        rc = fail(err, errlen, RING_EINVAL,
                  "%s: ring file format version %u is not supported (this build reads %u..%u)",
                  path, f->has_format_version ? f->format_version : 0, RING_FILE_FORMAT_RING,
                  RING_FILE_FORMAT_CSTATE);
        cairn__ring__ring_file__free_unpacked(f, NULL);
        return rc;
    }
    if (!f->has_state || !f->has_state_xxh3 ||
        XXH3_64bits(f->state.data, f->state.len) != f->state_xxh3) {
        cairn__ring__ring_file__free_unpacked(f, NULL);
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file (checksum mismatch)", path);
    }
    uint8_t *copy = malloc(f->state.len ? f->state.len : 1);
    if (!copy) {
        cairn__ring__ring_file__free_unpacked(f, NULL);
        return fail(err, errlen, RING_EIO, "%s: out of memory", path);
    }
    if (f->state.len)
        memcpy(copy, f->state.data, f->state.len);
    *format_version = f->format_version;
    *state = copy;
    *len = f->state.len;
    cairn__ring__ring_file__free_unpacked(f, NULL);
    return 0;
}

/* Builds a ring from a decoded state, checking every invariant. A format-2 state (a cluster
 * state, ring/cstate.h) must carry its cluster fields; its member list includes members that
 * own nothing (joining, removed), which is fine for a ring. */
static int ring_from_state(const Cairn__Ring__RingState *s, uint32_t format, const char *path,
                           ring_t **out, char *err, size_t errlen)
{
    if (!s->has_ring_size || !is_pow2_q(s->ring_size))
        return fail(err, errlen, RING_EINVAL,
                    "%s: corrupt ring file: ring size %u is not a power of two in 1..%u", path,
                    s->has_ring_size ? s->ring_size : 0, RING_MAX_PARTITIONS);
    if (s->n_members == 0 || s->n_members > RING_MAX_MEMBERS)
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file: %zu members", path,
                    s->n_members);
    if (s->n_owners != s->ring_size)
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file: %zu owners for %u partitions",
                    path, s->n_owners, s->ring_size);
    if (format == RING_FILE_FORMAT_CSTATE && (!s->cluster_name || !s->founder))
        return fail(err, errlen, RING_EINVAL,
                    "%s: corrupt ring file: a format-%u file without its cluster fields", path,
                    format);
    for (size_t i = 0; i < s->n_members; i++)
        if (!member_name_ok(s->members[i]))
            return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file: bad member name #%zu",
                        path, i);
    for (size_t p = 0; p < s->n_owners; p++)
        if (s->owners[p] >= s->n_members)
            return fail(err, errlen, RING_EINVAL,
                        "%s: corrupt ring file: partition %zu owned by member %u of %zu", path, p,
                        s->owners[p], s->n_members);
    ring_t *r = ring_new(s->ring_size, (const char *const *)s->members, (uint32_t)s->n_members,
                         s->owners);
    if (!r)
        return fail(err, errlen, RING_EIO, "%s: out of memory", path);
    *out = r;
    return 0;
}

int ring_load(const char *path, ring_t **out, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t format = 0;
    int rc = ring_file_read(path, &format, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    Cairn__Ring__RingState *s = cairn__ring__ring_state__unpack(NULL, len, buf);
    free(buf);
    if (!s)
        return fail(err, errlen, RING_EINVAL, "%s: corrupt ring file (bad ring state)", path);
    rc = ring_from_state(s, format, path, out, err, errlen);
    cairn__ring__ring_state__free_unpacked(s, NULL);
    return rc;
}

/* Writes all of buf to fd; 0 or errno. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int sync_parent_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* The packed RingFile around a packed state (malloc'ed, *len bytes), or NULL when out of
 * memory. */
static uint8_t *file_encode(uint32_t format_version, const uint8_t *state, size_t state_len,
                            size_t *len)
{
    Cairn__Ring__RingFile f = CAIRN__RING__RING_FILE__INIT;
    f.has_format_version = 1;
    f.format_version = format_version;
    f.has_state = 1;
    f.state.data = (uint8_t *)state;
    f.state.len = state_len;
    f.has_state_xxh3 = 1;
    f.state_xxh3 = XXH3_64bits(state, state_len);
    size_t flen = cairn__ring__ring_file__get_packed_size(&f);
    uint8_t *fbuf = malloc(flen);
    if (fbuf) {
        cairn__ring__ring_file__pack(&f, fbuf);
        *len = flen;
    }
    return fbuf;
}

int ring_file_write(const char *path, uint32_t format_version, const uint8_t *state,
                    size_t state_len, char *err, size_t errlen)
{
    size_t len = 0;
    uint8_t *buf = file_encode(format_version, state, state_len, &len);
    if (!buf)
        return fail(err, errlen, RING_EIO, "%s: out of memory", path);
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        free(buf);
        return fail(err, errlen, RING_EINVAL, "%s: path too long", path);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(buf);
        return fail(err, errlen, RING_EIO, "%s: cannot create: %s", tmp, strerror(e));
    }
    int e = write_all(fd, buf, len);
    free(buf);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) != 0)
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return fail(err, errlen, RING_EIO, "%s: cannot write the ring file: %s", path, strerror(e));
    }
    if ((e = sync_parent_dir(path)) != 0)
        return fail(err, errlen, RING_EIO, "%s: cannot sync its directory: %s", path, strerror(e));
    return 0;
}

int ring_save(const ring_t *r, const char *path, char *err, size_t errlen)
{
    Cairn__Ring__RingState s = CAIRN__RING__RING_STATE__INIT;
    s.has_ring_size = 1;
    s.ring_size = r->q;
    s.n_members = r->nmembers;
    s.members = r->members;
    s.n_owners = r->q;
    s.owners = r->owners;
    size_t slen = cairn__ring__ring_state__get_packed_size(&s);
    uint8_t *sbuf = malloc(slen ? slen : 1);
    if (!sbuf)
        return fail(err, errlen, RING_EIO, "%s: out of memory", path);
    cairn__ring__ring_state__pack(&s, sbuf);
    int rc = ring_file_write(path, RING_FILE_FORMAT_RING, sbuf, slen, err, errlen);
    free(sbuf);
    return rc;
}
