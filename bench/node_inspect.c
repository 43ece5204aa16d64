/*
 * node_inspect.c — the owners of a ring file and the partitions of a data directory, for
 * cairn-check (see node_inspect.h).
 */
#include "bench/node_inspect.h"

#include "bench/bench_common.h"
#include "ring/cstate.h"
#include "storage/backend.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "cairn-check"

static cstate_t *load_ring(const char *path)
{
    cstate_t *s = NULL;
    char err[600];
    int rc = cstate_load(path, &s, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, PROG ": reading the ring file: %s\n",
                rc == CSTATE_ENOENT ? "no such file" : err);
        if (rc == CSTATE_ENOENT)
            fprintf(stderr, PROG ": (looked for %s)\n", path);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ owners */

static const char *owner_name(const cstate_t *s, uint32_t p)
{
    return ring_member_name(cstate_ring(s), ring_owner(cstate_ring(s), p));
}

static const char *next_owner_name(const cstate_t *s, uint32_t p)
{
    uint32_t next = cstate_next_owner(s, p);
    return next == CSTATE_NONE ? NULL : cstate_member_name(s, next);
}

int inspect_owners(const char *ring_path, bool json)
{
    cstate_t *s = load_ring(ring_path);
    if (!s)
        return 3;
    uint32_t q = cstate_size(s), members = cstate_member_count(s);
    if (json) {
        printf("{\"ring\":");
        bench_json_string(ring_path);
        printf(",\"ring_size\":%" PRIu32 ",\"pending\":%" PRIu32 ",\"fingerprint\":\"%016" PRIx64
               "\",\"members\":[",
               q, cstate_pending_count(s), cstate_fingerprint(s));
        for (uint32_t i = 0; i < members; i++) {
            printf("%s{\"node\":", i ? "," : "");
            bench_json_string(cstate_member_name(s, i));
            printf(",\"status\":\"%s\",\"owned\":%" PRIu32 ",\"owned_after\":%" PRIu32 "}",
                   cstate_status_name(cstate_member_status(s, i)), cstate_owned(s, i),
                   cstate_owned_after(s, i));
        }
        printf("],\"owners\":[");
        for (uint32_t p = 0; p < q; p++) {
            printf("%s", p ? "," : "");
            bench_json_string(owner_name(s, p));
        }
        printf("],\"next_owners\":[");
        for (uint32_t p = 0; p < q; p++) {
            const char *next = next_owner_name(s, p);
            printf("%s", p ? "," : "");
            if (next)
                bench_json_string(next);
            else
                printf("null");
        }
        printf("]}\n");
    } else {
        printf("# ring %s: ring_size %" PRIu32 ", %" PRIu32 " member(s), %" PRIu32
               " partition(s) pending, fingerprint %016" PRIx64 "\n",
               ring_path, q, members, cstate_pending_count(s), cstate_fingerprint(s));
        for (uint32_t i = 0; i < members; i++)
            printf("# member %s %s owned %" PRIu32 " owned_after %" PRIu32 "\n",
                   cstate_member_name(s, i), cstate_status_name(cstate_member_status(s, i)),
                   cstate_owned(s, i), cstate_owned_after(s, i));
        printf("# partition owner next_owner\n");
        for (uint32_t p = 0; p < q; p++) {
            const char *next = next_owner_name(s, p);
            printf("%" PRIu32 " %s %s\n", p, owner_name(s, p), next ? next : "-");
        }
    }
    cstate_free(s);
    return 0;
}

/* ------------------------------------------------------------------ data directory scan */

typedef enum { ROLE_OWNER, ROLE_NEXT, ROLE_FOREIGN } role_t;
static const char *const role_names[] = {"owner", "next-owner", "foreign"};

typedef struct part_entry {
    uint32_t partition;
    role_t role;
    uint64_t bytes;              /* files in the directory, summed */
    int64_t objects;             /* -1: not counted (busy or error) */
    char state[16];              /* "ok", "busy" or "error" */
    char error[300];
} part_entry_t;

static int cmp_entry(const void *a, const void *b)
{
    uint32_t x = ((const part_entry_t *)a)->partition, y = ((const part_entry_t *)b)->partition;
    return x < y ? -1 : x > y;
}

static uint64_t dir_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4400];
        struct stat st;
        int w = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (w > 0 && (size_t)w < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static int count_one(void *arg, const store_key_t *key, const uint8_t *val, size_t len)
{
    (void)key, (void)val, (void)len;
    (*(int64_t *)arg)++;
    return 0;
}

/* Opens partition p and counts its objects into e. */
static void count_objects(store_engine_t *engine, part_entry_t *e)
{
    store_backend_t *b = NULL;
    char err[300] = "";
    int rc = store_open(engine, e->partition, &b, err, sizeof err);
    if (rc != 0) {
        snprintf(e->state, sizeof e->state, "%s", rc == STORE_ELOCKED ? "busy" : "error");
        snprintf(e->error, sizeof e->error, "%.60s%s%.200s", store_strerror(rc),
                 err[0] ? ": " : "", err);
        return;
    }
    e->objects = 0;
    store_fold_t f = {.values = false};
    rc = store_fold(b, &f, count_one, &e->objects);
    if (rc != 0) {
        snprintf(e->state, sizeof e->state, "error");
        snprintf(e->error, sizeof e->error, "fold: %.60s: %.200s", store_strerror(rc),
                 store_errmsg(b));
        e->objects = -1;
    } else {
        snprintf(e->state, sizeof e->state, "ok");
    }
    store_close(b);
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* The partition directories under dir/leveldb, with their roles (objects not counted yet).
 * *n entries, malloc'd (caller frees); NULL with *n 0 when there is no such directory. */
static part_entry_t *list_partitions(const char *leveldb_dir, const cstate_t *s, const char *node,
                                     size_t *n)
{
    *n = 0;
    DIR *d = opendir(leveldb_dir);
    if (!d)
        return NULL;
    part_entry_t *list = NULL;
    size_t cap = 0;
    uint32_t self = cstate_member_index(s, node);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!all_digits(de->d_name) || strlen(de->d_name) > 9) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                fprintf(stderr, PROG ": %s/%s: not a partition directory (ignored)\n",
                        leveldb_dir, de->d_name);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            part_entry_t *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                fprintf(stderr, PROG ": out of memory\n");
                exit(3);
            }
            list = grown;
        }
        part_entry_t *e = &list[(*n)++];
        memset(e, 0, sizeof *e);
        e->partition = (uint32_t)strtoul(de->d_name, NULL, 10);
        e->objects = -1;
        bool in_ring = e->partition < cstate_size(s);
        if (in_ring && self != CSTATE_NONE &&
            ring_owner(cstate_ring(s), e->partition) == self)
            e->role = ROLE_OWNER;
        else if (in_ring && self != CSTATE_NONE && cstate_next_owner(s, e->partition) == self)
            e->role = ROLE_NEXT;
        else
            e->role = ROLE_FOREIGN;
        char path[4400];
        int w = snprintf(path, sizeof path, "%s/%s", leveldb_dir, de->d_name);
        e->bytes = w > 0 && (size_t)w < sizeof path ? dir_bytes(path) : 0;
    }
    closedir(d);
    qsort(list, *n, sizeof *list, cmp_entry);
    return list;
}

int inspect_scan(const char *data_dir, const char *node, const char *ring_path, bool json)
{
    cstate_t *s = load_ring(ring_path);
    if (!s)
        return 3;
    if (cstate_member_index(s, node) == CSTATE_NONE)
        fprintf(stderr, PROG ": %s is not a member in %s: every partition counts as foreign\n",
                node, ring_path);
    char leveldb_dir[4096];
    snprintf(leveldb_dir, sizeof leveldb_dir, "%s/leveldb", data_dir);
    size_t n = 0;
    part_entry_t *list = list_partitions(leveldb_dir, s, node, &n);
    store_config_t cfg = store_config_default(data_dir);
    cfg.kind = store_engine_of(data_dir, cfg.kind);
    cfg.layout = store_layout_of(data_dir, cfg.layout);
    cfg.cache_bytes = 8u << 20;
    store_engine_t *engine = NULL;
    if (n > 0 && store_engine_new(&cfg, &engine) != 0) {
        fprintf(stderr, PROG ": cannot set up the storage engine\n");
        free(list);
        cstate_free(s);
        return 3;
    }
    size_t by_role[3] = {0}, busy = 0, errors = 0, foreign_with_data = 0;
    uint64_t foreign_objects = 0;
    for (size_t i = 0; i < n; i++) {
        part_entry_t *e = &list[i];
        count_objects(engine, e);
        by_role[e->role]++;
        busy += strcmp(e->state, "busy") == 0;
        errors += strcmp(e->state, "error") == 0;
        if (e->role == ROLE_FOREIGN && e->objects > 0) {
            foreign_with_data++;
            foreign_objects += (uint64_t)e->objects;
        }
    }
    if (json) {
        printf("{\"data_dir\":");
        bench_json_string(data_dir);
        printf(",\"node\":");
        bench_json_string(node);
        printf(",\"partitions\":[");
        for (size_t i = 0; i < n; i++) {
            const part_entry_t *e = &list[i];
            printf("%s{\"partition\":%" PRIu32 ",\"role\":\"%s\",\"bytes\":%" PRIu64
                   ",\"state\":\"%s\"",
                   i ? "," : "", e->partition, role_names[e->role], e->bytes, e->state);
            if (e->objects >= 0)
                printf(",\"objects\":%" PRId64, e->objects);
            if (e->error[0]) {
                printf(",\"error\":");
                bench_json_string(e->error);
            }
            printf("}");
        }
        printf("],\"owner\":%zu,\"next_owner\":%zu,\"foreign\":%zu,\"foreign_with_data\":%zu,"
               "\"foreign_objects\":%" PRIu64 ",\"busy\":%zu,\"errors\":%zu}\n",
               by_role[ROLE_OWNER], by_role[ROLE_NEXT], by_role[ROLE_FOREIGN], foreign_with_data,
               foreign_objects, busy, errors);
    } else {
        printf("# %s for %s (ring %s)\n", leveldb_dir, node, ring_path);
        printf("# partition role objects bytes state\n");
        for (size_t i = 0; i < n; i++) {
            const part_entry_t *e = &list[i];
            char objects[32];
            if (e->objects >= 0)
                snprintf(objects, sizeof objects, "%" PRId64, e->objects);
            else
                snprintf(objects, sizeof objects, "?");
            printf("%" PRIu32 " %s %s %" PRIu64 " %s%s%s\n", e->partition, role_names[e->role],
                   objects, e->bytes, e->state, e->error[0] ? " " : "", e->error);
        }
        printf("summary: %zu partition directories: owner %zu, next-owner %zu, foreign %zu "
               "(with data %zu, %" PRIu64 " objects), busy %zu, errors %zu\n",
               n, by_role[ROLE_OWNER], by_role[ROLE_NEXT], by_role[ROLE_FOREIGN],
               foreign_with_data, foreign_objects, busy, errors);
    }
    store_engine_free(engine);
    free(list);
    cstate_free(s);
    if (foreign_with_data > 0)
        return 1;
    return busy + errors > 0 ? 3 : 0;
}
