/*
 * cask.c — the Bitcask-style backend (storage.backend = bitcask): every partition's writes are
 * appended to one node-wide log of numbered files, <data_dir>/bitcask/<id>.log, and a key
 * directory in memory per partition maps each live key to its value's place in the log. A
 * put is one append and one hash-table update; a get is one hash lookup and one pread (most
 * gets never get here: the vnode's object cache answers them). Riak's default backend works
 * the same way; see docs/architecture.md, "Storage engines".
 *
 * The log. A file is a sequence of frames; one frame is one atomic write (a put, a batch, or
 * a whole group of puts of many partitions: store_write_group). Frame: u32 magic, u32 payload
 * length, u64 XXH3 of the payload, then the payload: entries of u8 kind (put, delete, drop
 * partition), u64 partition, u32 key length, u32 value length, key (the encoded storage key,
 * no partition prefix), value. Integers are little-endian. Files are only ever appended to,
 * and the active (newest) file is closed at bitcask.max_file_size and a new one begun; the
 * background thread fsyncs each closed file at once (outside the lock, so a rotation never
 * stalls writers).
 *
 * Start. The first store_open of the engine reads every file in order and rebuilds the key
 * directories. A frame that is cut short or fails its checksum, with no good frame after it
 * in its file, is the tail of a write torn by a crash before it was durable: it is cut off
 * and the store_open reports it in its errbuf (the vnode logs it). A bad frame with good
 * frames after it is damage: the engine refuses to start and names the file and offset.
 *
 * Merge. Overwritten and deleted records stay in the log until a merge. When at least
 * bitcask.merge_threshold percent of the bytes in the immutable files are dead (and they hold
 * at least one full file), the merge thread copies every live record of those files to the
 * end of the log (an ordinary append, under the lock, checking that the key directory still
 * points at the record), fsyncs, and deletes the old files oldest first, syncing the
 * directory after each and stopping at a file it cannot delete. Deletes and drops need no
 * copy: every record they hide is in the same or an older file, so all of them go together.
 * Writing is never paused for longer than one batch of copies (256 KiB).
 *
 * Locks. One mutex, `mu`, guards the key directories, the file table and appending; it is
 * never held across a read of a value or an fsync, except the fsync that sync = always asks
 * of each append. A reader pins the file it reads under the lock (get, fold, sync), so a
 * merge that removes the file meanwhile leaves the closing to the last reader.
 *
 * Failures. A failed append is cut back off the file. A failed fsync latches the log
 * broken: every later write is refused until the node restarts and replays the log (after
 * a failed fsync the kernel may have dropped the pages, and a later fsync would succeed over
 * the hole).
 */
#include "storage/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define CASK_MAGIC 0x314b5343u  /* "CSK1" */
#define FRAME_HDR 16u
#define ENTRY_HDR 17u
#define FILE_FMT "%010u.log"
#define MERGE_BATCH_BYTES (256u << 10) /* copies appended per hold of the lock */
#define FOLD_CHUNK 256u                /* keys copied out of the directory per hold */

enum { REC_PUT = 1, REC_DEL = 2, REC_DROP = 3 };

/* ---------------------------------------------------------------- key directory */

#define KD_MAX_LEVEL 24

/* One live key: where its value is, and its links in the partition's skip list. One
 * allocation: the entry, next[level], then the key (ekey). */
typedef struct kd_entry_s {
    uint32_t file;          /* id of the file holding the record */
    uint32_t vlen;
    uint64_t voff;          /* offset of the value in that file */
    uint32_t klen;
    uint8_t level;          /* skip-list levels: next[0..level) */
    struct kd_entry_s *next[];
} kd_entry_t;

/* The encoded storage key of e (no partition prefix), klen bytes after next[]. */
static const uint8_t *ekey(const kd_entry_t *e)
{
    return (const uint8_t *)(e->next + e->level);
}

typedef struct kd_slot_s {
    uint64_t hash;
    kd_entry_t *e;          /* NULL: empty */
} kd_slot_t;

/* One partition's live keys, twice: a hash table for gets and puts (open addressing, linear
 * probing, backward-shift deletion) and a skip list in key order for folds. Overwriting a
 * key touches only the hash table; a new key or a delete also links or unlinks it in the
 * skip list (O(log n)). */
typedef struct keydir_s {
    uint64_t partition;
    kd_slot_t *slots;
    size_t cap, count;      /* cap: a power of two, or 0 */
    uint64_t live_bytes;    /* record bytes of the live entries */
    kd_entry_t *head;       /* skip-list sentinel: KD_MAX_LEVEL levels, no key */
    int level;              /* levels in use, >= 1 */
    uint64_t rng;           /* xorshift state for new entries' levels */
} keydir_t;

static size_t record_bytes(size_t klen, size_t vlen)
{
    return ENTRY_HDR + klen + vlen;
}

static int keycmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (an > bn) - (an < bn);
}

static kd_slot_t *kd_find_slot(const keydir_t *kd, const uint8_t *k, size_t kn, uint64_t h)
{
    if (!kd->cap)
        return NULL;
    for (size_t i = h & (kd->cap - 1);; i = (i + 1) & (kd->cap - 1)) {
        kd_slot_t *s = &kd->slots[i];
        if (!s->e)
            return NULL;
        if (s->hash == h && s->e->klen == kn && memcmp(ekey(s->e), k, kn) == 0)
            return s;
    }
}

static void kd_place(kd_slot_t *slots, size_t cap, uint64_t h, kd_entry_t *e)
{
    size_t i = h & (cap - 1);
    while (slots[i].e)
        i = (i + 1) & (cap - 1);
    slots[i].hash = h;
    slots[i].e = e;
}

static void kd_grow(keydir_t *kd)
{
    size_t cap = kd->cap ? kd->cap * 2 : 64;
    kd_slot_t *slots = store_calloc(cap, sizeof *slots);
    for (size_t i = 0; i < kd->cap; i++)
        if (kd->slots[i].e)
            kd_place(slots, cap, kd->slots[i].hash, kd->slots[i].e);
    store_free(kd->slots);
    kd->slots = slots;
    kd->cap = cap;
}

static void kd_remove_slot(keydir_t *kd, kd_slot_t *s)
{
    size_t mask = kd->cap - 1, i = (size_t)(s - kd->slots);
    kd->slots[i].e = NULL;
    /* backward shift: pull later entries of the run into the hole they may not skip */
    for (size_t j = (i + 1) & mask; kd->slots[j].e; j = (j + 1) & mask) {
        size_t home = kd->slots[j].hash & mask;
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            kd->slots[i] = kd->slots[j];
            kd->slots[j].e = NULL;
            i = j;
        }
    }
    kd->count--;
}

static keydir_t *kd_new(uint64_t partition)
{
    keydir_t *kd = store_calloc(1, sizeof *kd);
    kd->partition = partition;
    kd->head = store_calloc(1, sizeof *kd->head + KD_MAX_LEVEL * sizeof kd->head->next[0]);
    kd->head->level = KD_MAX_LEVEL;
    kd->level = 1;
    kd->rng = (partition + 1) * 0x9E3779B97F4A7C15ull;
    return kd;
}

static int kd_random_level(keydir_t *kd)
{
    int lvl = 1;
    while (lvl < KD_MAX_LEVEL) {
        kd->rng ^= kd->rng << 13; /* xorshift64 */
        kd->rng ^= kd->rng >> 7;
        kd->rng ^= kd->rng << 17;
        if (kd->rng & 3)
            break; /* p = 1/4 */
        lvl++;
    }
    return lvl;
}

/* The first entry whose key is > k (after) or >= k, or NULL; prev (if not NULL) gets the
 * last entry before that point on each level in use. */
static kd_entry_t *kd_seek(const keydir_t *kd, const uint8_t *k, size_t kn, bool after,
                           kd_entry_t **prev)
{
    kd_entry_t *x = kd->head;
    for (int i = kd->level - 1; i >= 0; i--) {
        for (kd_entry_t *nx; (nx = x->next[i]) != NULL; x = nx) {
            int c = keycmp(ekey(nx), nx->klen, k, kn);
            if (c > 0 || (c == 0 && !after))
                break;
        }
        if (prev)
            prev[i] = x;
    }
    return x->next[0];
}

/* Links e (a key not in the list) in order. */
static void kd_link(keydir_t *kd, kd_entry_t *e)
{
    kd_entry_t *prev[KD_MAX_LEVEL];
    kd_seek(kd, ekey(e), e->klen, false, prev);
    for (; kd->level < e->level; kd->level++)
        prev[kd->level] = kd->head;
    for (int i = 0; i < e->level; i++) {
        e->next[i] = prev[i]->next[i];
        prev[i]->next[i] = e;
    }
}

static void kd_unlink(keydir_t *kd, kd_entry_t *e)
{
    kd_entry_t *prev[KD_MAX_LEVEL];
    kd_seek(kd, ekey(e), e->klen, false, prev);
    for (int i = 0; i < e->level; i++)
        if (prev[i]->next[i] == e)
            prev[i]->next[i] = e->next[i];
}

static void kd_free(keydir_t *kd)
{
    for (size_t i = 0; i < kd->cap; i++)
        store_free(kd->slots[i].e);
    store_free(kd->slots);
    store_free(kd->head);
    store_free(kd);
}

/* ---------------------------------------------------------------- the engine's log */

typedef struct cfile_s {
    uint32_t id;
    int fd;
    uint64_t size;          /* bytes written */
    uint64_t live;          /* record bytes still pointed at by a key directory */
    unsigned pins;          /* readers using fd outside the lock (pin / unpin, under mu) */
    bool removed;           /* out of the table: the last unpin closes fd and frees it */
    bool synced;            /* closed and fdatasynced (the background thread does it) */
} cfile_t;

typedef struct store__cask_s {
    const store_config_t *cfg;  /* the engine's, which outlives us */
    char *dir;
    int lock_fd;
    pthread_mutex_t mu;
    cfile_t **files;            /* ascending ids; the last one is the active file */
    size_t n_files, cap_files;
    keydir_t **parts;           /* partition -> key directory: open addressing on partition */
    size_t parts_cap, parts_n;
    uint8_t *buf;               /* the frame being built (under mu) */
    size_t buf_cap;
    bool dirty;                 /* written since the last fsync */
    uint64_t last_sync_ns;
    int broken;                 /* a failed fsync or cut-back: every write is refused */
    char broken_msg[200];
    /* the background thread: syncs closed files, merges */
    pthread_t merger;
    bool merger_started, stopping, merge_failed;
    pthread_cond_t merge_cv;
} cask_t;

typedef struct cask_backend_s {
    store_backend_t base;       /* first: a store_backend_t * is a cask_backend_t * */
    cask_t *c;
    keydir_t *kd;
} cb_t;

static const store_backend_ops_t cask_ops;

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int errno_code(int e)
{
    return e == ENOSPC || e == EDQUOT ? STORE_ENOSPC : STORE_EIO;
}

/* Records errno's failure of `what` on `path` in errbuf; returns the STORE_* code. */
static int sys_err(char *errbuf, size_t errlen, const char *what, const char *path)
{
    int e = errno;
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s %s: %s", what, path, strerror(e));
    return errno_code(e);
}

static keydir_t *part_find(const cask_t *c, uint64_t p)
{
    if (!c->parts_cap)
        return NULL;
    uint64_t h = XXH3_64bits(&p, sizeof p);
    for (size_t i = h & (c->parts_cap - 1);; i = (i + 1) & (c->parts_cap - 1))
        if (!c->parts[i] || c->parts[i]->partition == p)
            return c->parts[i];
}

static void part_place(keydir_t **parts, size_t cap, keydir_t *kd)
{
    uint64_t h = XXH3_64bits(&kd->partition, sizeof kd->partition);
    size_t i = h & (cap - 1);
    while (parts[i])
        i = (i + 1) & (cap - 1);
    parts[i] = kd;
}

/* The partition's key directory, created empty if it has none. Under mu (or alone). */
static keydir_t *part_get(cask_t *c, uint64_t p)
{
    keydir_t *kd = part_find(c, p);
    if (kd)
        return kd;
    if ((c->parts_n + 1) * 2 > c->parts_cap) {
        size_t cap = c->parts_cap ? c->parts_cap * 2 : 64;
        keydir_t **parts = store_calloc(cap, sizeof *parts);
        for (size_t i = 0; i < c->parts_cap; i++)
            if (c->parts[i])
                part_place(parts, cap, c->parts[i]);
        store_free(c->parts);
        c->parts = parts;
        c->parts_cap = cap;
    }
    kd = kd_new(p);
    part_place(c->parts, c->parts_cap, kd);
    c->parts_n++;
    return kd;
}

static cfile_t *file_of(cask_t *c, uint32_t id)
{
    size_t lo = 0, hi = c->n_files;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->files[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_files && c->files[lo]->id == id ? c->files[lo] : NULL;
}

static cfile_t *active(cask_t *c)
{
    return c->files[c->n_files - 1];
}

/* A file's descriptor stays open between pin and unpin, even if a merge removes the file
 * meanwhile. Both under mu. */
static cfile_t *pin(cfile_t *f)
{
    if (f)
        f->pins++;
    return f;
}

static void unpin(cfile_t *f)
{
    if (f && --f->pins == 0 && f->removed) {
        close(f->fd);
        store_free(f);
    }
}

/* From now on every write is refused, with the reason (`what` failed with errno err): after
 * a failed fsync the kernel may have dropped the pages it could not write, so a later sync
 * would succeed over a hole. Returns the STORE_* code. Under mu. */
static int break_log(cask_t *c, int err, const char *what, char *errbuf, size_t errlen)
{
    c->broken = errno_code(err);
    snprintf(c->broken_msg, sizeof c->broken_msg, "%s of the bitcask log failed (%s): writes "
             "are refused until the node restarts and replays its log", what, strerror(err));
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", c->broken_msg);
    return c->broken;
}

/* Adds a file to the end of the table. Under mu (or alone). */
static cfile_t *table_add(cask_t *c, uint32_t id, int fd, uint64_t size)
{
    if (c->n_files == c->cap_files) {
        c->cap_files = c->cap_files ? c->cap_files * 2 : 16;
        c->files = store_realloc(c->files, c->cap_files * sizeof *c->files);
    }
    cfile_t *f = store_calloc(1, sizeof *f);
    *f = (cfile_t){.id = id, .fd = fd, .size = size};
    c->files[c->n_files++] = f;
    return f;
}

/* The record a directory entry points at is dead from now on. */
static void forget(cask_t *c, keydir_t *kd, const kd_entry_t *e)
{
    uint64_t n = record_bytes(e->klen, e->vlen);
    cfile_t *f = file_of(c, e->file);
    if (f)
        f->live -= n;
    kd->live_bytes -= n;
}

/* Applies one logged entry to the directories: the state after the record at (file, voff). */
static void apply(cask_t *c, keydir_t *kd, int kind, const uint8_t *k, size_t kn, uint32_t file,
                  uint64_t voff, uint32_t vlen)
{
    if (kind == REC_DROP) {
        for (size_t i = 0; i < kd->cap; i++)
            if (kd->slots[i].e) {
                forget(c, kd, kd->slots[i].e);
                store_free(kd->slots[i].e);
                kd->slots[i].e = NULL;
            }
        kd->count = 0;
        for (int i = 0; i < KD_MAX_LEVEL; i++)
            kd->head->next[i] = NULL;
        kd->level = 1;
        return;
    }
    uint64_t h = XXH3_64bits(k, kn);
    kd_slot_t *s = kd_find_slot(kd, k, kn, h);
    if (kind == REC_DEL) {
        if (s) {
            kd_entry_t *gone = s->e;
            forget(c, kd, gone);
            kd_unlink(kd, gone);
            kd_remove_slot(kd, s);
            store_free(gone);
        }
        return;
    }
    kd_entry_t *e;
    if (s) {
        e = s->e;
        forget(c, kd, e);
    } else {
        if ((kd->count + 1) * 10 > kd->cap * 7)
            kd_grow(kd);
        int level = kd_random_level(kd);
        e = store_malloc(sizeof *e + (size_t)level * sizeof e->next[0] + kn);
        e->klen = (uint32_t)kn;
        e->level = (uint8_t)level;
        if (kn)
            memcpy((uint8_t *)(e->next + level), k, kn);
        kd_place(kd->slots, kd->cap, h, e);
        kd->count++;
        kd_link(kd, e);
    }
    e->file = file;
    e->voff = voff;
    e->vlen = vlen;
    uint64_t n = record_bytes(kn, vlen);
    kd->live_bytes += n;
    cfile_t *f = file_of(c, file);
    if (f)
        f->live += n;
}

/* ---------------------------------------------------------------- appending */

/* One entry to append: kind, the partition's directory, key and value (borrowed). */
typedef struct wop_s {
    int kind;
    keydir_t *kd;
    const uint8_t *key;
    size_t klen;
    const void *val;
    size_t vlen;
} wop_t;

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* shorter than the directory says: the file was cut */
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static char *file_path(const cask_t *c, uint32_t id)
{
    char *path;
    if (asprintf(&path, "%s/" FILE_FMT, c->dir, id) < 0)
        abort();
    return path;
}

static void sync_dir(const cask_t *c)
{
    int fd = open(c->dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Adds file `id` (created empty) as the active file. Under mu. */
static int add_file(cask_t *c, uint32_t id, char *errbuf, size_t errlen)
{
    char *path = file_path(c, id);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = fd < 0 ? sys_err(errbuf, errlen, "create", path) : 0;
    free(path);
    if (rc < 0)
        return rc;
    sync_dir(c);
    table_add(c, id, fd, 0);
    return 0;
}

/* Whether the immutable files hold enough dead bytes to merge. Under mu. */
static bool merge_due(const cask_t *c)
{
    uint64_t size = 0, live = 0;
    for (size_t i = 0; i + 1 < c->n_files; i++) {
        size += c->files[i]->size;
        live += c->files[i]->live;
    }
    return !c->merge_failed && size >= c->cfg->cask_file_bytes &&
           (size - live) * 100 >= size * c->cfg->cask_merge_percent;
}

/* After an append: an fsync the policy asks for, and rotation at the file size limit. The
 * closed file is synced by the background thread, not here under the lock. */
static int after_append(cask_t *c, char *errbuf, size_t errlen)
{
    cfile_t *f = active(c);
    c->dirty = true;
    bool sync = c->cfg->sync == STORE_SYNC_ALWAYS ||
                (c->cfg->sync == STORE_SYNC_INTERVAL &&
                 store__now_ns() - c->last_sync_ns >= (uint64_t)c->cfg->sync_interval_ms * 1000000u);
    if (sync) {
        if (fdatasync(f->fd) != 0)
            return break_log(c, errno, "fdatasync", errbuf, errlen);
        c->dirty = false;
        c->last_sync_ns = store__now_ns();
    }
    /* The write is in the log either way: a file that cannot be created now (disk full)
     * leaves the full one active, and the next append tries again. */
    if (f->size >= c->cfg->cask_file_bytes && add_file(c, f->id + 1, NULL, 0) == 0) {
        c->merge_failed = false; /* a failed merge gets another try */
        pthread_cond_signal(&c->merge_cv);
    }
    return 0;
}

/* Appends ops[0..n) as one frame and applies them to the directories. Under mu. If the write
 * fails nothing is applied and the file is cut back to where the frame began; if the fsync
 * that sync = always asks for fails, the write is applied but the caller gets the error (a
 * failed write may still be visible, as in Riak). */
static int append(cask_t *c, const wop_t *ops, size_t n, char *errbuf, size_t errlen)
{
    if (c->broken) {
        snprintf(errbuf, errlen, "%s", c->broken_msg);
        return c->broken;
    }
    size_t size = FRAME_HDR;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].vlen > UINT32_MAX) { /* keys: STORE_KEY_MAX, checked when encoded */
            snprintf(errbuf, errlen, "a value of %zu bytes is beyond the log's 4 GiB limit",
                     ops[i].vlen);
            return STORE_ETOOBIG;
        }
        size += record_bytes(ops[i].klen, ops[i].vlen);
    }
    if (size - FRAME_HDR > UINT32_MAX) {
        snprintf(errbuf, errlen, "a write of %zu bytes is beyond the log's 4 GiB frame limit",
                 size);
        return STORE_ETOOBIG;
    }
    if (size > c->buf_cap) {
        c->buf_cap = size > 2 * c->buf_cap ? size : 2 * c->buf_cap;
        store_free(c->buf);
        c->buf = store_malloc(c->buf_cap);
    }
    uint8_t *p = c->buf + FRAME_HDR;
    for (size_t i = 0; i < n; i++) {
        p[0] = (uint8_t)ops[i].kind;
        put_u64(p + 1, ops[i].kd->partition);
        put_u32(p + 9, (uint32_t)ops[i].klen);
        put_u32(p + 13, (uint32_t)ops[i].vlen);
        p += ENTRY_HDR;
        if (ops[i].klen)
            memcpy(p, ops[i].key, ops[i].klen);
        p += ops[i].klen;
        if (ops[i].vlen)
            memcpy(p, ops[i].val, ops[i].vlen);
        p += ops[i].vlen;
    }
    put_u32(c->buf, CASK_MAGIC);
    put_u32(c->buf + 4, (uint32_t)(size - FRAME_HDR));
    put_u64(c->buf + 8, XXH3_64bits(c->buf + FRAME_HDR, size - FRAME_HDR));
    cfile_t *f = active(c);
    if (write_all(f->fd, c->buf, size, f->size) != 0) {
        int rc = sys_err(errbuf, errlen, "append to", "the active bitcask file");
        /* cut the part-written frame back off; if that fails too, a later append would
         * leave garbage after it, so the log takes no more writes */
        if (ftruncate(f->fd, (off_t)f->size) != 0)
            return break_log(c, errno, "cutting back a failed append", errbuf, errlen);
        return rc;
    }
    uint64_t off = f->size + FRAME_HDR;
    for (size_t i = 0; i < n; i++) {
        off += ENTRY_HDR + ops[i].klen;
        apply(c, ops[i].kd, ops[i].kind, ops[i].key, ops[i].klen, f->id, off,
              (uint32_t)ops[i].vlen);
        off += ops[i].vlen;
    }
    f->size += size;
    return after_append(c, errbuf, errlen);
}

/* ---------------------------------------------------------------- start-up scan */

/* Whether a whole frame with a good checksum starts at h, within `room` bytes. */
static bool frame_ok(const uint8_t *h, uint64_t room)
{
    if (room < FRAME_HDR)
        return false;
    uint64_t len = get_u32(h + 4);
    return get_u32(h) == CASK_MAGIC && len <= room - FRAME_HDR &&
           XXH3_64bits(h + FRAME_HDR, len) == get_u64(h + 8);
}

/* Replays the frames of file f (mapped at m, f->size bytes). Returns the offset where the
 * readable frames end (f->size when all are). */
static uint64_t replay(cask_t *c, cfile_t *f, const uint8_t *m)
{
    uint64_t pos = 0;
    while (f->size - pos >= FRAME_HDR) {
        const uint8_t *h = m + pos;
        uint64_t len = get_u32(h + 4);
        if (!frame_ok(h, f->size - pos))
            return pos;
        /* check the entries' lengths before applying any of them */
        const uint8_t *p = h + FRAME_HDR, *end = p + len;
        while (end - p >= (long)ENTRY_HDR) {
            uint64_t kn = get_u32(p + 9), vn = get_u32(p + 13);
            if (p[0] < REC_PUT || p[0] > REC_DROP || kn + vn > (uint64_t)(end - p) - ENTRY_HDR)
                return pos;
            p += ENTRY_HDR + kn + vn;
        }
        if (p != end)
            return pos;
        for (p = h + FRAME_HDR; p < end;) {
            uint32_t kn = get_u32(p + 9), vn = get_u32(p + 13);
            keydir_t *kd = part_get(c, get_u64(p + 1));
            uint64_t voff = (uint64_t)(p - m) + ENTRY_HDR + kn;
            apply(c, kd, p[0], p + ENTRY_HDR, kn, f->id, voff, vn);
            p += ENTRY_HDR + kn + vn;
        }
        pos += FRAME_HDR + len;
    }
    return pos;
}

/* Whether a whole, checksummed frame starts anywhere in m(from, size): then what stopped
 * the replay at `from` is damage, not the tail of a write cut short by a crash. */
static bool frame_after(const uint8_t *m, uint64_t from, uint64_t size)
{
    for (uint64_t pos = from + 1; pos + FRAME_HDR <= size; pos++)
        if (frame_ok(m + pos, size - pos))
            return true;
    return false;
}

/* Whether name is a log file's (FILE_FMT); its id to *id. */
static bool log_name(const char *name, unsigned *id)
{
    char tail;
    return strlen(name) == 14 && sscanf(name, "%10u.lo%c", id, &tail) == 2 && tail == 'g';
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The ids of the log files in c->dir, ascending (*n of them; free the array). */
static int list_files(cask_t *c, uint32_t **ids, size_t *n, char *errbuf, size_t errlen)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return sys_err(errbuf, errlen, "open", c->dir);
    size_t cap = 16;
    *ids = store_malloc(cap * sizeof **ids);
    *n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        unsigned id;
        if (!log_name(de->d_name, &id))
            continue;
        if (*n == cap)
            *ids = store_realloc(*ids, (cap *= 2) * sizeof **ids);
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    qsort(*ids, *n, sizeof **ids, cmp_u32);
    return 0;
}

/* Opens and replays every file; errbuf gets a notice of a cut-off torn tail (rc 0). */
static int load(cask_t *c, char *errbuf, size_t errlen)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = list_files(c, &ids, &n, errbuf, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = file_path(c, ids[i]);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = sys_err(errbuf, errlen, "open", path);
            if (fd >= 0)
                close(fd);
            free(path);
            break;
        }
        cfile_t *f = table_add(c, ids[i], fd, (uint64_t)st.st_size);
        /* synced stays false: after a crash of the process (not the machine) a closed file
         * may not have been fsynced yet; the background thread does it now */
        uint64_t good = 0;
        bool more = false;
        if (f->size) {
            void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                rc = sys_err(errbuf, errlen, "map", path);
                free(path);
                break;
            }
            good = replay(c, f, m);
            more = good < f->size && frame_after(m, good, f->size);
            munmap(m, f->size);
        }
        if (more) {
            snprintf(errbuf, errlen, "%s: damaged frame at offset %llu, and good frames after "
                     "it: not a torn write but damage; restore the file, or move it away to "
                     "start without it", path, (unsigned long long)good);
            rc = STORE_ECORRUPT;
        } else if (good < f->size) {
            if (ftruncate(fd, (off_t)good) != 0) {
                rc = sys_err(errbuf, errlen, "truncate", path);
            } else {
                snprintf(errbuf, errlen, "%s: cut off %llu bytes of a write torn by a crash "
                         "at offset %llu", path, (unsigned long long)(f->size - good),
                         (unsigned long long)good);
                f->size = good;
            }
        }
        free(path);
    }
    uint32_t next = n ? ids[n - 1] + 1 : 1;
    store_free(ids);
    if (rc == 0 && c->n_files == 0)
        rc = add_file(c, next, errbuf, errlen);
    return rc;
}

/* ---------------------------------------------------------------- merge */

/* A record of the file being merged that may still be live. */
typedef struct cand_s {
    uint64_t partition, voff;
    const uint8_t *key, *val;
    uint32_t klen, vlen;
} cand_t;

/* Copies the candidates that the directories still point at (in file `id`) to the end of
 * the log. Takes mu. */
static int copy_live(cask_t *c, uint32_t id, const cand_t *cs, size_t n, wop_t *ops)
{
    char err[256] = "";
    pthread_mutex_lock(&c->mu);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        keydir_t *kd = part_find(c, cs[i].partition);
        kd_slot_t *s = kd ? kd_find_slot(kd, cs[i].key, cs[i].klen,
                                         XXH3_64bits(cs[i].key, cs[i].klen))
                          : NULL;
        if (s && s->e->file == id && s->e->voff == cs[i].voff)
            ops[k++] = (wop_t){REC_PUT, kd, cs[i].key, cs[i].klen, cs[i].val, cs[i].vlen};
    }
    int rc = k ? append(c, ops, k, err, sizeof err) : 0;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Copies file f's live records to the end of the log, MERGE_BATCH_BYTES per hold of the
 * lock. A closed file never changes and only this thread removes files, so it is read
 * without the lock. Returns 0, a STORE_* code, or 1 when the engine is stopping. */
static int merge_file(cask_t *c, const cfile_t *f)
{
    uint64_t size = f->size;
    uint8_t *m = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, f->fd, 0) : NULL;
    if (m == MAP_FAILED)
        return errno_code(errno);
    size_t cap = 1024, n = 0, batch = 0;
    cand_t *cs = store_malloc(cap * sizeof *cs);
    wop_t *ops = store_malloc(cap * sizeof *ops);
    int rc = 0;
    for (uint64_t pos = 0; pos + FRAME_HDR <= size && rc == 0;) {
        uint32_t len = get_u32(m + pos + 4);
        const uint8_t *p = m + pos + FRAME_HDR, *end = p + len;
        while (p < end && rc == 0) {
            uint32_t kn = get_u32(p + 9), vn = get_u32(p + 13);
            if (p[0] == REC_PUT) {
                if (n == cap) {
                    cs = store_realloc(cs, (cap *= 2) * sizeof *cs);
                    ops = store_realloc(ops, cap * sizeof *ops);
                }
                cs[n++] = (cand_t){get_u64(p + 1), (uint64_t)(p - m) + ENTRY_HDR + kn,
                                   p + ENTRY_HDR, p + ENTRY_HDR + kn, kn, vn};
                batch += record_bytes(kn, vn);
            }
            p += ENTRY_HDR + kn + vn;
            if (batch >= MERGE_BATCH_BYTES) {
                rc = copy_live(c, f->id, cs, n, ops);
                n = batch = 0;
            }
        }
        pos += FRAME_HDR + len;
        pthread_mutex_lock(&c->mu);
        if (c->stopping && rc == 0)
            rc = 1;
        pthread_mutex_unlock(&c->mu);
    }
    if (n && rc == 0)
        rc = copy_live(c, f->id, cs, n, ops);
    store_free(cs);
    store_free(ops);
    if (m)
        munmap(m, size);
    return rc;
}

/* One merge of every file older than the active one. Called without locks. */
static int merge_once(cask_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t nv = c->n_files - 1;
    cfile_t **victims = store_malloc((nv ? nv : 1) * sizeof *victims);
    memcpy(victims, c->files, nv * sizeof *victims);
    pthread_mutex_unlock(&c->mu);

    int rc = 0;
    for (size_t i = 0; i < nv && rc == 0; i++)
        rc = merge_file(c, victims[i]);
    /* The copies are durable before their originals go: every file after the victims may
     * hold some (a rotation during the merge closes one, and this thread would sync it). */
    for (size_t i = nv; rc == 0; i++) {
        pthread_mutex_lock(&c->mu);
        cfile_t *f = i < c->n_files ? pin(c->files[i]) : NULL;
        pthread_mutex_unlock(&c->mu);
        if (!f)
            break;
        int bad = fdatasync(f->fd) != 0, e = errno;
        pthread_mutex_lock(&c->mu);
        unpin(f);
        if (bad)
            rc = break_log(c, e, "fdatasync", NULL, 0);
        pthread_mutex_unlock(&c->mu);
    }
    if (rc == 0) {
        /* Oldest first, each made durable before the next, and none after one that failed:
         * a delete or drop is never gone while a file it hides a record of is still there. */
        size_t gone = 0;
        for (; gone < nv; gone++) {
            char *path = file_path(c, victims[gone]->id);
            int bad = unlink(path) != 0;
            free(path);
            if (bad)
                break;
            sync_dir(c);
        }
        pthread_mutex_lock(&c->mu);
        memmove(c->files, c->files + gone, (c->n_files - gone) * sizeof *c->files);
        c->n_files -= gone;
        for (size_t i = 0; i < gone; i++) {
            victims[i]->removed = true;
            unpin(pin(victims[i])); /* closed now, or by the last reader still using it */
        }
        pthread_mutex_unlock(&c->mu);
        if (gone < nv)
            rc = STORE_EIO; /* the rest stay in the table for the next merge */
    }
    store_free(victims);
    return rc;
}

/* The background thread: fdatasyncs each file once it is closed (outside the lock, so a
 * rotation never stalls writers), and merges when merge_due. */
static void *merger_main(void *arg)
{
    cask_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        cfile_t *f = NULL;
        for (size_t i = 0; i + 1 < c->n_files && !f; i++)
            if (!c->files[i]->synced)
                f = pin(c->files[i]);
        if (f) {
            pthread_mutex_unlock(&c->mu);
            int bad = fdatasync(f->fd) != 0, e = errno;
            pthread_mutex_lock(&c->mu);
            if (bad && !c->broken)
                break_log(c, e, "fdatasync of a closed file", NULL, 0);
            f->synced = true;
            unpin(f);
            continue;
        }
        if (!merge_due(c)) {
            pthread_cond_wait(&c->merge_cv, &c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        int rc = merge_once(c);
        pthread_mutex_lock(&c->mu);
        /* a failed merge (disk full) is retried after the next rotation */
        if (rc < 0)
            c->merge_failed = true;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---------------------------------------------------------------- engine part */

void store__cask_free(cask_t *c)
{
    if (!c)
        return;
    if (c->merger_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_cond_signal(&c->merge_cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->merger, NULL);
    }
    if (c->dirty && c->n_files)
        (void)fdatasync(active(c)->fd);
    for (size_t i = 0; i < c->n_files; i++) {
        close(c->files[i]->fd);
        store_free(c->files[i]);
    }
    for (size_t i = 0; i < c->parts_cap; i++)
        if (c->parts[i])
            kd_free(c->parts[i]);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    store_free(c->parts);
    store_free(c->files);
    store_free(c->buf);
    pthread_cond_destroy(&c->merge_cv);
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    store_free(c);
}

/* Opens the engine's log under <data_dir>/bitcask: locks it against a second process,
 * replays it, starts the merge thread. */
static int cask_new(const store_config_t *cfg, cask_t **out, char *errbuf, size_t errlen)
{
    cask_t *c = store_calloc(1, sizeof *c);
    c->cfg = cfg;
    c->lock_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->merge_cv, NULL);
    if (asprintf(&c->dir, "%s/bitcask", cfg->data_dir) < 0)
        abort();
    int rc = 0;
    char *lock = NULL;
    if ((rc = store__mkdirs(c->dir, errbuf, errlen)) < 0)
        goto fail;
    if (asprintf(&lock, "%s/LOCK", c->dir) < 0)
        abort();
    if ((c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        rc = sys_err(errbuf, errlen, "open", lock);
        goto fail;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(errbuf, errlen, "%s is locked: another cairnd uses this data dir", lock);
        rc = STORE_ELOCKED;
        goto fail;
    }
    if ((rc = load(c, errbuf, errlen)) < 0)
        goto fail;
    c->last_sync_ns = store__now_ns();
    if (pthread_create(&c->merger, NULL, merger_main, c) != 0) {
        snprintf(errbuf, errlen, "cannot start the bitcask merge thread");
        rc = STORE_EIO;
        goto fail;
    }
    c->merger_started = true;
    free(lock);
    *out = c;
    return 0;
fail:
    free(lock);
    store__cask_free(c);
    return rc;
}

bool store__cask_present(const char *data_dir)
{
    char *dir;
    if (asprintf(&dir, "%s/bitcask", data_dir) < 0)
        abort();
    DIR *d = opendir(dir);
    free(dir);
    bool found = false;
    unsigned id;
    for (struct dirent *de; d && !found && (de = readdir(d)) != NULL;)
        found = log_name(de->d_name, &id);
    if (d)
        closedir(d);
    return found;
}

/* ---------------------------------------------------------------- backend operations */

static int cb_err(cb_t *b, int rc, const char *msg)
{
    return store__set_err(&b->base, rc, msg[0] ? msg : store_strerror(rc));
}

static int cask_get(store_backend_t *base, const store_key_t *k, store_val_t *out)
{
    cb_t *b = (cb_t *)base;
    cask_t *c = b->c;
    store__kbuf_t kb;
    int rc = store__kbuf_key(base, &kb, k);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->mu);
    kd_slot_t *s = kd_find_slot(b->kd, kb.p, kb.n, XXH3_64bits(kb.p, kb.n));
    cfile_t *f = NULL;
    uint64_t off = 0;
    uint32_t n = 0;
    if (s) {
        f = pin(file_of(c, s->e->file));
        off = s->e->voff;
        n = s->e->vlen;
    }
    pthread_mutex_unlock(&c->mu);
    if (!s) {
        rc = STORE_ENOTFOUND;
    } else {
        uint8_t *v = store_malloc(n ? n : 1);
        if (!f || read_all(f->fd, v, n, off) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "reading a value from the bitcask log: %s",
                     f ? strerror(errno) : "its file is gone");
            rc = store__set_err(base, STORE_EIO, msg);
            store_free(v);
        } else {
            out->p = v;
            out->n = n;
            out->release = free;
        }
        pthread_mutex_lock(&c->mu);
        unpin(f);
        pthread_mutex_unlock(&c->mu);
    }
    store__kbuf_free(&kb);
    return rc;
}

/* Encodes op's key into kb and fills w; 0 or base's key error. */
static int prepare(store_backend_t *base, keydir_t *kd, const store_op_t *op, store__kbuf_t *kb,
                   wop_t *w)
{
    int rc = store__kbuf_key(base, kb, &op->key);
    if (rc < 0)
        return rc;
    if (op->kind != STORE_OP_PUT && op->kind != STORE_OP_DEL) {
        store__kbuf_free(kb);
        return store__set_err(base, STORE_EINVAL, "unknown batch operation");
    }
    *w = (wop_t){op->kind == STORE_OP_PUT ? REC_PUT : REC_DEL, kd, kb->p, kb->n,
                 op->kind == STORE_OP_PUT ? op->val : NULL,
                 op->kind == STORE_OP_PUT ? op->val_len : 0};
    return 0;
}

/* Appends n operations as one frame, all or nothing: ops[i] of `report`'s partition, or
 * (group != NULL) group[i].op of group[i].backend. A failure's text goes to `report`. */
static int write_ops(store_backend_t *report, size_t n, const store_op_t *ops,
                     const store_group_op_t *group)
{
    store__kbuf_t kb_inl[8], *kbs = n <= 8 ? kb_inl : store_malloc(n * sizeof *kbs);
    wop_t w_inl[8], *ws = n <= 8 ? w_inl : store_malloc(n * sizeof *ws);
    int rc = 0;
    size_t done = 0;
    for (; done < n; done++) {
        store_backend_t *b = group ? group[done].backend : report;
        const store_op_t *op = group ? &group[done].op : &ops[done];
        if ((rc = prepare(b, ((cb_t *)b)->kd, op, &kbs[done], &ws[done])) < 0) {
            if (b != report)
                store__set_err(report, rc, store_errmsg(b));
            break;
        }
    }
    if (rc == 0) {
        cask_t *c = ((cb_t *)report)->c;
        char err[256] = "";
        pthread_mutex_lock(&c->mu);
        rc = append(c, ws, n, err, sizeof err);
        pthread_mutex_unlock(&c->mu);
        if (rc < 0)
            cb_err((cb_t *)report, rc, err);
    }
    for (size_t i = 0; i < done; i++)
        store__kbuf_free(&kbs[i]);
    if (kbs != kb_inl)
        store_free(kbs);
    if (ws != w_inl)
        store_free(ws);
    return rc;
}

static int cask_write(store_backend_t *b, const store_op_t *ops, size_t n)
{
    return n ? write_ops(b, n, ops, NULL) : 0;
}

static int cask_put(store_backend_t *b, const store_key_t *k, const void *val, size_t len)
{
    store_op_t op = {.kind = STORE_OP_PUT, .key = *k, .val = val, .val_len = len};
    return cask_write(b, &op, 1);
}

static int cask_del(store_backend_t *b, const store_key_t *k)
{
    store_op_t op = {.kind = STORE_OP_DEL, .key = *k};
    return cask_write(b, &op, 1);
}

/* Group commit: every op's backend shares b's log; a failure is recorded in each. */
static int cask_write_shared(store_backend_t *b, const store_group_op_t *ops, size_t n)
{
    int rc = write_ops(b, n, NULL, ops);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            if (ops[i].backend != b)
                store__set_err(ops[i].backend, rc, store_errmsg(b));
    return rc;
}

static int cask_sync(store_backend_t *base)
{
    cask_t *c = ((cb_t *)base)->c;
    pthread_mutex_lock(&c->mu);
    cfile_t *f = c->dirty ? pin(active(c)) : NULL;
    c->dirty = false;
    pthread_mutex_unlock(&c->mu);
    if (!f)
        return 0;
    int bad = fdatasync(f->fd) != 0, e = errno, rc = 0;
    char msg[sizeof c->broken_msg];
    pthread_mutex_lock(&c->mu);
    unpin(f);
    if (bad) {
        rc = break_log(c, e, "fdatasync", msg, sizeof msg);
        c->dirty = true;
    } else {
        c->last_sync_ns = store__now_ns();
    }
    pthread_mutex_unlock(&c->mu);
    return rc < 0 ? store__set_err(base, rc, msg) : 0;
}

/* A chunk of a fold: keys (copied) and where their values are. */
typedef struct fold_item_s {
    size_t koff, klen;
    cfile_t *f;             /* pinned until the chunk is done */
    uint64_t voff;
    uint32_t vlen;
} fold_item_t;

static int cask_fold(store_backend_t *base, const store_fold_t *f, store_fold_fn fn, void *arg)
{
    cb_t *b = (cb_t *)base;
    cask_t *c = b->c;
    store__range_t r;
    int rc = store__range(base, f, &r);
    if (rc < 0)
        return rc;
    bool values = f && f->values;
    fold_item_t items[FOLD_CHUNK];
    size_t keys_cap = 16384, vcap = 4096, scap = 256;
    uint8_t *keys = store_malloc(keys_cap), *vbuf = store_malloc(vcap), *scratch = store_malloc(scap);
    /* the cursor: from lo inclusive, or strictly after `after` or the last key handed out */
    uint8_t *cur = store_malloc(r.lo.n);
    memcpy(cur, r.lo.p, r.lo.n);
    size_t cur_n = r.lo.n;
    bool exclusive = false;
    if (r.after.n && keycmp(r.after.p, r.after.n, r.lo.p, r.lo.n) >= 0) {
        cur = store_realloc(cur, r.after.n);
        memcpy(cur, r.after.p, r.after.n);
        cur_n = r.after.n;
        exclusive = true;
    }
    while (rc == 0) {
        pthread_mutex_lock(&c->mu);
        size_t n = 0, used = 0;
        const kd_entry_t *e = kd_seek(b->kd, cur, cur_n, exclusive, NULL);
        for (; e && n < FOLD_CHUNK; e = e->next[0], n++) {
            if (keycmp(ekey(e), e->klen, r.hi.p, r.hi.n) >= 0)
                break;
            if (used + e->klen > keys_cap) {
                keys_cap = 2 * (used + e->klen);
                keys = store_realloc(keys, keys_cap);
            }
            memcpy(keys + used, ekey(e), e->klen);
            items[n] = (fold_item_t){used, e->klen, pin(file_of(c, e->file)), e->voff, e->vlen};
            used += e->klen;
        }
        pthread_mutex_unlock(&c->mu);
        if (n == 0)
            break;
        for (size_t j = 0; j < n && rc == 0; j++) {
            const fold_item_t *it = &items[j];
            const uint8_t *kp = keys + it->koff;
            if (it->klen > scap)
                scratch = store_realloc(scratch, scap = it->klen);
            store_key_t key;
            if (store_key_decode(kp, it->klen, scratch, &key) < 0) {
                rc = store__set_err(base, STORE_ECORRUPT, "undecodable key in object range");
                break;
            }
            if (values && it->vlen > vcap)
                vbuf = store_realloc(vbuf, vcap = it->vlen);
            if (values && (!it->f || read_all(it->f->fd, vbuf, it->vlen, it->voff) != 0)) {
                rc = store__set_err(base, STORE_EIO, "reading a value from the bitcask log");
                break;
            }
            rc = fn(arg, &key, values ? vbuf : NULL, values ? it->vlen : 0);
        }
        pthread_mutex_lock(&c->mu);
        for (size_t j = 0; j < n; j++)
            unpin(items[j].f);
        pthread_mutex_unlock(&c->mu);
        const fold_item_t *last = &items[n - 1];
        cur = store_realloc(cur, last->klen);
        memcpy(cur, keys + last->koff, last->klen);
        cur_n = last->klen;
        exclusive = true;
        if (n < FOLD_CHUNK)
            break;
    }
    if (rc == STORE_FOLD_STOP)
        rc = 0;
    store_free(keys);
    store_free(vbuf);
    store_free(scratch);
    store_free(cur);
    store__range_free(&r);
    return rc;
}

static int cask_is_empty(store_backend_t *base)
{
    cb_t *b = (cb_t *)base;
    pthread_mutex_lock(&b->c->mu);
    int empty = b->kd->count == 0;
    pthread_mutex_unlock(&b->c->mu);
    return empty;
}

/* One drop record: at replay it empties the partition, as it does now. */
static int cask_drop(store_backend_t *base)
{
    cb_t *b = (cb_t *)base;
    char err[256] = "";
    wop_t w = {REC_DROP, b->kd, NULL, 0, NULL, 0};
    pthread_mutex_lock(&b->c->mu);
    int rc = b->kd->count ? append(b->c, &w, 1, err, sizeof err) : 0;
    pthread_mutex_unlock(&b->c->mu);
    return rc < 0 ? cb_err(b, rc, err) : 0;
}

static int cask_status(store_backend_t *base, store_status_t *st)
{
    cb_t *b = (cb_t *)base;
    pthread_mutex_lock(&b->c->mu);
    st->engine = "bitcask";
    st->bytes = b->kd->live_bytes;
    st->keys = b->kd->count;
    st->keys_exact = true;
    pthread_mutex_unlock(&b->c->mu);
    return 0;
}

static void cask_close(store_backend_t *base)
{
    store_free(base);
}

int store__cask_open(store_engine_t *e, uint64_t partition, store_backend_t **out, char *errbuf,
                     size_t errlen)
{
    const store_config_t *cfg = store__engine_config(e);
    char *pdir = store__partition_dir(cfg->data_dir, partition); /* the vnode's own files */
    int rc = store__mkdirs(pdir, errbuf, errlen);
    free(pdir);
    if (rc < 0)
        return rc;
    store__engine_lock(e);
    cask_t **cp = store__engine_cask(e);
    if (!*cp)
        rc = cask_new(cfg, cp, errbuf, errlen); /* errbuf: a notice even on success */
    store__engine_unlock(e);
    if (rc < 0)
        return rc;
    cask_t *c = *cp;
    cb_t *b = store_calloc(1, sizeof *b);
    b->base.ops = &cask_ops;
    b->base.partition = partition;
    b->base.shared = c;
    b->c = c;
    pthread_mutex_lock(&c->mu);
    b->kd = part_get(c, partition);
    pthread_mutex_unlock(&c->mu);
    *out = &b->base;
    return 0;
}

static const store_backend_ops_t cask_ops = {
    .name = "bitcask",
    .get = cask_get,
    .put = cask_put,
    .del = cask_del,
    .write = cask_write,
    .fold = cask_fold,
    .is_empty = cask_is_empty,
    .drop = cask_drop,
    .status = cask_status,
    .sync = cask_sync,
    .close = cask_close,
    .write_shared = cask_write_shared,
};
