/*
 * test_ring.c — the ring (ring/ring.h): the key hash is XXH3-64 of the documented encoding and
 * stays stable, the first replica is the partition after the hash's (with wrap-around),
 * preference lists walk clockwise, and the ring file round-trips and refuses corruption.
 */
#include "proto/ring.pb-c.h"
#include "ring/ring.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---------------------------------------------------------------- hashing */

/* The documented encoding, built independently of ring.c. */
static uint64_t reference_hash(const char *t, size_t tn, const char *b, size_t bn, const char *k,
                               size_t kn)
{
    size_t total = 12 + tn + bn + kn, off = 0;
    uint8_t *buf = malloc(total);
    const char *part[3] = {t, b, k};
    size_t len[3] = {tn, bn, kn};
    for (int i = 0; i < 3; i++) {
        buf[off++] = (uint8_t)(len[i] >> 24);
        buf[off++] = (uint8_t)(len[i] >> 16);
        buf[off++] = (uint8_t)(len[i] >> 8);
        buf[off++] = (uint8_t)len[i];
        memcpy(buf + off, part[i], len[i]);
        off += len[i];
    }
    uint64_t h = XXH3_64bits(buf, total);
    free(buf);
    return h;
}

Test(ring, hash_is_xxh3_of_length_prefixed_parts)
{
    cr_assert_eq(ring_hash_key("default", 7, "b", 1, "k", 1),
                 reference_hash("default", 7, "b", 1, "k", 1));
    /* long keys take the streaming path: same bytes, same hash */
    size_t big = 5000;
    char *key = malloc(big);
    for (size_t i = 0; i < big; i++)
        key[i] = (char)(i * 7);
    cr_assert_eq(ring_hash_key("default", 7, "bucket", 6, key, big),
                 reference_hash("default", 7, "bucket", 6, key, big));
    /* around the one-shot buffer's edge */
    for (size_t n = 480; n < 520; n++)
        cr_assert_eq(ring_hash_key("t", 1, "b", 1, key, n), reference_hash("t", 1, "b", 1, key, n),
                     "key length %zu", n);
    free(key);
}

Test(ring, hash_is_stable_across_builds)
{
    /* Pinned values: a change here moves every key of every existing data dir. */
    cr_assert_eq(ring_hash_key("default", 7, "b", 1, "k", 1),
                 reference_hash("default", 7, "b", 1, "k", 1));
    uint64_t h = ring_hash_key("default", 7, "users", 5, "alice", 5);
    cr_assert_eq(h, UINT64_C(0x2e91753a266dccf2), "hash changed: 0x%016llx", (unsigned long long)h);
    h = ring_hash_key(NULL, 0, "", 0, "", 0);
    cr_assert_eq(h, reference_hash("", 0, "", 0, "", 0));
}

Test(ring, hash_separates_part_boundaries)
{
    uint64_t a = ring_hash_key("t", 1, "ab", 2, "c", 1);
    uint64_t b = ring_hash_key("t", 1, "a", 2 - 1, "bc", 2);
    uint64_t c = ring_hash_key("ta", 2, "b", 1, "c", 1);
    cr_assert_neq(a, b, "(ab,c) and (a,bc) must differ");
    cr_assert_neq(a, c, "(t,ab) and (ta,b) must differ");
    cr_assert_neq(ring_hash_key("default", 7, "b", 1, "k1", 2),
                  ring_hash_key("default", 7, "b", 1, "k2", 2));
}

Test(ring, keys_spread_over_partitions)
{
    ring_t *r = ring_new_single(64, "cairn@127.0.0.1:8086");
    unsigned counts[64] = {0};
    char key[32];
    for (int i = 0; i < 64000; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i);
        counts[ring_first_partition(r, ring_hash_key("default", 7, "b", 1, key, (size_t)n))]++;
    }
    for (int p = 0; p < 64; p++) /* expected 1000 each; a sane hash stays well within 30% */
        cr_assert(counts[p] > 700 && counts[p] < 1300, "partition %d got %u keys", p, counts[p]);
    ring_free(r);
}

/* ---------------------------------------------------------------- partitions */

Test(ring, first_partition_is_the_one_after_the_hash)
{
    ring_t *r = ring_new_single(8, "n@h:1");
    uint64_t inc = UINT64_C(1) << 61; /* 2^64 / 8 */
    for (uint32_t k = 0; k < 8; k++) {
        cr_assert_eq(ring_partition_start(r, k), k * inc);
        cr_assert_eq(ring_first_partition(r, k * inc), (k + 1) % 8, "start of range %u", k);
        cr_assert_eq(ring_first_partition(r, k * inc + inc - 1), (k + 1) % 8, "end of range %u", k);
    }
    cr_assert_eq(ring_first_partition(r, UINT64_MAX), 0, "the last range wraps to partition 0");
    ring_free(r);

    r = ring_new_single(1, "n@h:1");
    cr_assert_eq(ring_first_partition(r, 0), 0);
    cr_assert_eq(ring_first_partition(r, UINT64_MAX), 0);
    cr_assert_eq(ring_partition_start(r, 0), 0);
    ring_free(r);

    r = ring_new_single(RING_MAX_PARTITIONS, "n@h:1");
    cr_assert_eq(ring_first_partition(r, UINT64_MAX), 0);
    cr_assert_eq(ring_first_partition(r, 0), 1);
    ring_free(r);
}

Test(ring, single_node_ring_owns_everything)
{
    ring_t *r = ring_new_single(64, "cairn@127.0.0.1:8086");
    cr_assert_not_null(r);
    cr_assert_eq(ring_size(r), 64);
    cr_assert_eq(ring_member_count(r), 1);
    cr_assert_str_eq(ring_member_name(r, 0), "cairn@127.0.0.1:8086");
    cr_assert_null(ring_member_name(r, 1));
    for (uint32_t p = 0; p < 64; p++)
        cr_assert_eq(ring_owner(r, p), 0);
    ring_free(r);
}

Test(ring, bad_sizes_and_names_are_refused)
{
    cr_assert_null(ring_new_single(0, "n@h:1"));
    cr_assert_null(ring_new_single(3, "n@h:1"));
    cr_assert_null(ring_new_single(96, "n@h:1"));
    cr_assert_null(ring_new_single(2 * RING_MAX_PARTITIONS, "n@h:1"));
    cr_assert_null(ring_new_single(8, ""));
    cr_assert_null(ring_new_single(8, NULL));
    char longname[RING_NODE_NAME_MAX + 1];
    memset(longname, 'a', sizeof longname - 1);
    longname[RING_NODE_NAME_MAX] = 0;
    cr_assert_null(ring_new_single(8, longname));
    ring_free(NULL);
}

Test(ring, preflist_walks_clockwise_with_wrap)
{
    ring_t *r = ring_new_single(8, "n@h:1");
    ring_pref_t pl[16];
    uint64_t inc = UINT64_C(1) << 61;
    size_t n = ring_preflist(r, 2 * inc + 5, 3, pl);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(pl[i].partition, 3 + i);
        cr_assert_eq(pl[i].owner, 0);
        cr_assert(pl[i].primary);
    }
    n = ring_preflist(r, 6 * inc, 3, pl); /* first = 7, then wraps */
    cr_assert_eq(n, 3);
    cr_assert_eq(pl[0].partition, 7);
    cr_assert_eq(pl[1].partition, 0);
    cr_assert_eq(pl[2].partition, 1);
    n = ring_preflist(r, 0, 12, pl); /* n above Q: every partition once */
    cr_assert_eq(n, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(pl[i].partition, (1 + i) % 8);
    cr_assert_eq(ring_preflist(r, 0, 0, pl), 0);
    ring_free(r);
}

/* 8 partitions over A, B, C round-robin: p -> p % 3. Hash 0 starts at partition 1. */
static ring_t *three_node_ring(void)
{
    const char *members[] = {"a@h:1", "b@h:2", "c@h:3"};
    uint32_t owners[8];
    for (uint32_t p = 0; p < 8; p++)
        owners[p] = p % 3;
    return ring_new(8, members, 3, owners);
}

Test(ring, apl_with_everyone_up_is_the_primary_list)
{
    ring_t *r = three_node_ring();
    bool up[3] = {true, true, true};
    ring_pref_t pl[8], pri[8];
    cr_assert_eq(ring_apl(r, 0, 3, up, true, pl), 3);
    cr_assert_eq(ring_preflist(r, 0, 3, pri), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(pl[i].partition, pri[i].partition);
        cr_assert_eq(pl[i].owner, pri[i].owner);
        cr_assert(pl[i].primary);
    }
    ring_free(r);
}

Test(ring, apl_replaces_a_down_primary_with_the_next_up_owner)
{
    ring_t *r = three_node_ring();
    /* primaries of hash 0: partitions 1 (B), 2 (C), 3 (A); C is down. The candidates
     * after the primaries are 4 (B), 5 (C), 6 (A), 7 (B), 0 (A). */
    bool up[3] = {true, true, false};
    ring_pref_t pl[8];
    cr_assert_eq(ring_apl(r, 0, 3, up, true, pl), 3);
    cr_assert_eq(pl[0].partition, 1);
    cr_assert(pl[0].primary);
    cr_assert_eq(pl[1].partition, 3);
    cr_assert(pl[1].primary);
    cr_assert_eq(pl[2].partition, 2, "the fallback stands in for the down partition");
    cr_assert_eq(pl[2].owner, 1, "hosted by partition 4's owner, B");
    cr_assert_not(pl[2].primary);
    ring_free(r);
}

Test(ring, apl_gives_each_down_primary_its_own_candidate)
{
    ring_t *r = three_node_ring();
    bool up[3] = {true, false, false}; /* only A: primaries 1 (B) and 2 (C) are down */
    ring_pref_t pl[8];
    cr_assert_eq(ring_apl(r, 0, 3, up, true, pl), 3);
    cr_assert_eq(pl[0].partition, 3);
    cr_assert(pl[0].primary);
    /* candidates 4 (B down), 5 (C down), 6 (A) -> partition 1; 7 (B down), 0 (A) -> 2 */
    cr_assert_eq(pl[1].partition, 1);
    cr_assert_eq(pl[1].owner, 0);
    cr_assert_not(pl[1].primary);
    cr_assert_eq(pl[2].partition, 2);
    cr_assert_eq(pl[2].owner, 0);
    cr_assert_not(pl[2].primary);
    ring_free(r);
}

Test(ring, apl_without_sloppy_quorum_or_candidates_keeps_the_down_primary)
{
    ring_t *r = three_node_ring();
    bool up[3] = {true, true, false};
    ring_pref_t pl[8];
    cr_assert_eq(ring_apl(r, 0, 3, up, false, pl), 3);
    cr_assert_eq(pl[2].partition, 2, "the down primary goes last");
    cr_assert_eq(pl[2].owner, 2);
    cr_assert(pl[2].primary);
    bool none[3] = {false, false, false};
    cr_assert_eq(ring_apl(r, 0, 3, none, true, pl), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(pl[i].partition, 1 + i, "no candidate: all stay, in ring order");
        cr_assert(pl[i].primary);
    }
    ring_free(r);
}

/* ---------------------------------------------------------------- the ring file */

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/cairn-test-ring-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static void path_in_dir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

Test(ring_file, save_load_round_trip, .init = make_dir, .fini = remove_dir)
{
    char path[300], err[256];
    path_in_dir(path, sizeof path, "ring");
    ring_t *r = ring_new_single(128, "cairn@127.0.0.1:8086"), *back = NULL;
    cr_assert_eq(ring_save(r, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ring_load(path, &back, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ring_size(back), 128);
    cr_assert_eq(ring_member_count(back), 1);
    cr_assert_str_eq(ring_member_name(back, 0), "cairn@127.0.0.1:8086");
    for (uint32_t p = 0; p < 128; p++)
        cr_assert_eq(ring_owner(back, p), 0);
    /* saving again replaces atomically and leaves no temp file behind */
    cr_assert_eq(ring_save(back, path, err, sizeof err), 0, "%s", err);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0, "only the ring file remains in %s", dir);
    ring_free(r);
    ring_free(back);
}

Test(ring_file, missing_file_is_enoent, .init = make_dir, .fini = remove_dir)
{
    char path[300], err[256];
    path_in_dir(path, sizeof path, "ring");
    ring_t *r = NULL;
    cr_assert_eq(ring_load(path, &r, err, sizeof err), RING_ENOENT);
    cr_assert_null(r);
}

Test(ring_file, save_into_missing_dir_fails_cleanly, .init = make_dir, .fini = remove_dir)
{
    char path[300], err[256] = "";
    path_in_dir(path, sizeof path, "nope/ring");
    ring_t *r = ring_new_single(8, "n@h:1");
    cr_assert_eq(ring_save(r, path, err, sizeof err), RING_EIO);
    cr_assert(strstr(err, "nope") != NULL, "%s", err);
    ring_free(r);
}

static void expect_refused(const char *path, const char *what)
{
    char err[256] = "";
    ring_t *r = NULL;
    int rc = ring_load(path, &r, err, sizeof err);
    cr_assert_eq(rc, RING_EINVAL, "%s: rc %d (%s)", what, rc, err);
    cr_assert_null(r, "%s", what);
    cr_assert(strstr(err, path) != NULL, "%s: the message names the file: %s", what, err);
}

Test(ring_file, corrupt_files_are_refused, .init = make_dir, .fini = remove_dir)
{
    char path[300], err[256];
    path_in_dir(path, sizeof path, "ring");
    ring_t *r = ring_new_single(64, "cairn@127.0.0.1:8086");
    cr_assert_eq(ring_save(r, path, err, sizeof err), 0, "%s", err);
    ring_free(r);
    uint8_t good[4096];
    size_t n = read_bytes(path, good, sizeof good);
    cr_assert(n > 20 && n < sizeof good);

    /* every single flipped byte is either refused or (never) read as a different ring */
    uint8_t buf[4096];
    for (size_t i = 0; i < n; i++) {
        memcpy(buf, good, n);
        buf[i] ^= 0x5a;
        write_bytes(path, buf, n);
        ring_t *got = NULL;
        int rc = ring_load(path, &got, err, sizeof err);
        if (rc == 0) { /* a flip in a protobuf tag can decode as an unknown field only */
            cr_assert_eq(ring_size(got), 64, "byte %zu", i);
            cr_assert_str_eq(ring_member_name(got, 0), "cairn@127.0.0.1:8086");
            ring_free(got);
        } else {
            cr_assert_eq(rc, RING_EINVAL, "byte %zu: rc %d", i, rc);
        }
    }
    /* truncations */
    for (size_t cut = 1; cut < n; cut += 7) {
        write_bytes(path, good, cut);
        expect_refused(path, "truncated");
    }
    write_bytes(path, "", 0);
    expect_refused(path, "empty");
    write_bytes(path, "hello, world\n", 13);
    expect_refused(path, "text");
}

Test(ring_file, unknown_version_and_inconsistent_state_are_refused, .init = make_dir,
     .fini = remove_dir)
{
    char path[300];
    path_in_dir(path, sizeof path, "ring");
    uint32_t owners[4] = {0, 0, 5, 0};
    char *members[1] = {"n@h:1"};
    Cairn__Ring__RingState s = CAIRN__RING__RING_STATE__INIT;
    s.has_ring_size = 1;
    s.ring_size = 4;
    s.n_members = 1;
    s.members = members;
    s.n_owners = 4;
    s.owners = owners;
    uint8_t sbuf[256], fbuf[512];
    struct {
        uint32_t version, q, bad_owner;
        const char *what;
    } cases[] = {
        {2, 4, 0, "format version 2"},
        {1, 4, 5, "owner out of range"},
        {1, 3, 0, "ring size 3"},
        {1, 8, 0, "owners fewer than partitions"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        owners[2] = cases[c].bad_owner;
        s.ring_size = cases[c].q;
        size_t sl = cairn__ring__ring_state__pack(&s, sbuf);
        Cairn__Ring__RingFile f = CAIRN__RING__RING_FILE__INIT;
        f.has_format_version = 1;
        f.format_version = cases[c].version;
        f.has_state = 1;
        f.state.data = sbuf;
        f.state.len = sl;
        f.has_state_xxh3 = 1;
        f.state_xxh3 = XXH3_64bits(sbuf, sl);
        size_t fl = cairn__ring__ring_file__pack(&f, fbuf);
        write_bytes(path, fbuf, fl);
        expect_refused(path, cases[c].what);
    }
}
