/*
 * test_store_codec.c — the stored object's bytes: every field round-trips, the encoding is
 * canonical, protobuf-c reads it as proto/object.proto says, and truncated, oversized,
 * inconsistent or random bytes are rejected without a crash or a leak.
 */
#include "storage/err.h"
#include "storage/object.h"
#include "store_test.h"

#include "proto/object.pb-c.h"

static store_obj_t *rich_object(void)
{
    store_pair_t um[2] = {{STORE_SLICE("X-Owner"), STORE_SLICE("ann")},
                          {STORE_SLICE("bin\0key"), {NULL, 0}}};
    store_pair_t ix[1] = {{STORE_SLICE("age_int"), STORE_SLICE("42")}};
    store_link_t ln[2] = {{STORE_SLICE("people"), STORE_SLICE("bob"), STORE_SLICE("friend")},
                          {STORE_SLICE("b"), {NULL, 0}, {NULL, 0}}};
    store_content_t c = {
        .value = STORE_SLICE("hello\0world\xff"),
        .content_type = STORE_SLICE("application/json"),
        .charset = STORE_SLICE("utf-8"),
        .content_encoding = STORE_SLICE("gzip"),
        .vtag = STORE_SLICE("3ZxJq9wV"),
        .last_mod = 1700000000,
        .last_mod_usecs = 123456,
        .usermeta = um, .n_usermeta = 2,
        .indexes = ix, .n_indexes = 1,
        .links = ln, .n_links = 2,
    };
    store_obj_t *o = store_obj_new();
    store_actor_t a = test_actor(3), b = test_actor(1);
    store_vclock_increment(&o->clock, &a, 1700000000);
    store_vclock_increment(&o->clock, &a, 1700000001);
    store_vclock_increment(&o->clock, &b, 1700000002);
    store_obj_add_sib(o, store_sib_new(&c, &(store_dot_t){a, 2}));
    store_content_t t = {.deleted = true, .last_mod = 5};
    store_obj_add_sib(o, store_sib_new(&t, &(store_dot_t){b, 1}));
    store_obj_normalize(o);
    return o;
}

Test(store_codec, every_field_round_trips)
{
    store_obj_t *o = rich_object(), *back = NULL;
    uint8_t *buf;
    size_t len;
    cr_assert_eq(store_obj_encode(o, &buf, &len), 0);
    cr_assert_eq(store_obj_decode(buf, len, &back), 0);
    cr_assert(store_obj_equal(o, back));
    for (uint32_t i = 0; i < o->clock.n; i++)
        cr_assert_eq(back->clock.e[i].ts, o->clock.e[i].ts);
    const store_sib_t *s = back->sibs[0]->c.deleted ? back->sibs[1] : back->sibs[0];
    cr_assert_eq(s->c.value.n, 12);
    cr_assert_eq(memcmp(s->c.value.p, "hello\0world\xff", 12), 0);
    cr_assert_eq(s->c.usermeta[1].key.n, 7, "NUL inside metadata keys survives");
    cr_assert_eq(s->c.links[0].tag.n, 6);
    cr_assert_eq(s->c.last_mod_usecs, 123456);
    /* canonical: encoding the decoded object gives the same bytes */
    uint8_t *buf2;
    size_t len2;
    cr_assert_eq(store_obj_encode(back, &buf2, &len2), 0);
    cr_assert(len == len2 && memcmp(buf, buf2, len) == 0);
    free(buf);
    free(buf2);
    store_obj_free(o);
    store_obj_free(back);
}

Test(store_codec, bytes_follow_object_proto)
{
    store_obj_t *o = rich_object();
    uint8_t *buf;
    size_t len;
    store_obj_encode(o, &buf, &len);
    Cairn__Object *m = cairn__object__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_eq(m->format, 2);
    cr_assert_eq(m->n_siblings, 2);
    cr_assert_eq(m->clock->n_entries, 2);
    /* actors as (node, partition, epoch), sorted: test_actor(1) before test_actor(3) */
    const Cairn__VClockEntry *e0 = m->clock->entries[0], *e1 = m->clock->entries[1];
    cr_assert(e0->has_node && e0->node == 0xC0FFEE01u && e0->partition == 7 && e0->epoch == 1);
    cr_assert(e1->node == 0xC0FFEE03u && e1->partition == 21 && e1->counter == 2);
    cr_assert_eq(e1->timestamp, 1700000001);
    /* the tombstone (dot (1,1), last_mod 5) sorts first; the rich sibling is (3,2) */
    const Cairn__Sibling *t = m->siblings[0], *s = m->siblings[1];
    cr_assert(!t->has_dot_index && !t->has_dot_back, "dot = clock entry 0 at its counter");
    cr_assert(t->has_last_mod_delta && t->last_mod_delta == 5 - 1700000002LL);
    cr_assert(t->has_deleted && t->deleted);
    cr_assert(s->has_dot_index && s->dot_index == 1 && !s->has_dot_back);
    cr_assert(s->has_content_type_id && s->content_type_id == 3 && !s->has_content_type,
              "application/json is interned");
    cr_assert(s->has_last_mod_delta && s->last_mod_delta == -1, "1700000000 - 1700000001");
    cr_assert_eq(s->last_mod_usecs, 123456);
    /* our hand-written encoder and protobuf-c's packer agree byte for byte */
    uint8_t *re = malloc(len);
    cr_assert_eq(cairn__object__pack(m, re), len);
    cr_assert_eq(memcmp(re, buf, len), 0);
    free(re);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    free(buf);
    store_obj_free(o);
}

Test(store_codec, tombstone_round_trips_as_a_tombstone)
{
    store_obj_t *o = store_obj_new(), *back;
    store_actor_t a = test_actor(1);
    store_vclock_increment(&o->clock, &a, 9);
    store_obj_add_sib(o, store_sib_new(&(store_content_t){.deleted = true}, &(store_dot_t){a, 1}));
    uint8_t *buf;
    size_t len;
    store_obj_encode(o, &buf, &len);
    cr_assert_eq(store_obj_decode(buf, len, &back), 0);
    cr_assert(store_obj_is_tombstone(back));
    free(buf);
    store_obj_free(o);
    store_obj_free(back);
}

Test(store_codec, every_truncation_is_rejected)
{
    store_obj_t *o = rich_object(), *back = NULL;
    uint8_t *buf;
    size_t len;
    store_obj_encode(o, &buf, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees any overread */
        memcpy(copy, buf, cut);
        cr_assert_eq(store_obj_decode(copy, cut, &back), STORE_EDECODE, "cut at %zu of %zu", cut, len);
        free(copy);
    }
    free(buf);
    store_obj_free(o);
}

static int decode_packed(Cairn__Object *m)
{
    uint8_t *buf = malloc(protobuf_c_message_get_packed_size(&m->base));
    size_t n = cairn__object__pack(m, buf);
    store_obj_t *o = NULL;
    int rc = store_obj_decode(buf, n, &o);
    store_obj_free(o);
    free(buf);
    return rc;
}

Test(store_codec, inconsistent_objects_are_rejected)
{
    store_obj_t *o = rich_object();
    uint8_t *buf;
    size_t len;
    store_obj_encode(o, &buf, &len);
    Cairn__Object *m = cairn__object__unpack(NULL, len, buf);
    cr_assert_eq(decode_packed(m), 0, "the untouched object decodes");
    m->format = 1;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "old or unknown format");
    m->format = 2;
    Cairn__Sibling *s0 = m->siblings[0], *s1 = m->siblings[1];
    Cairn__Sibling saved = *s1;
    uint64_t c1 = m->clock->entries[1]->counter; /* s1's dot is (entry 1, c1) */
    s1->dot_back = c1;
    s1->has_dot_back = 1;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "dot counter 0");
    s1->dot_back = UINT64_MAX;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "dot below zero");
    *s1 = saved;
    s1->dot_index = 7;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "dot names no clock entry");
    *s1 = saved;
    s0->has_dot_index = 1; /* explicit default */
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "dot_index 0 written out");
    s0->has_dot_index = 0;
    s0->has_dot_back = 1;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "dot_back 0 written out");
    s0->has_dot_back = 0;
    s0->has_deleted = 1;
    s0->deleted = 0;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "deleted=false written out");
    s0->deleted = 1;
    s1->has_content_type_id = 0;
    s1->has_content_type = 1;
    s1->content_type = (ProtobufCBinaryData){16, (uint8_t *)"application/json"};
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "an interned content type spelt out");
    s1->has_content_type_id = 1;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "both the id and the bytes");
    s1->content_type = (ProtobufCBinaryData){9, (uint8_t *)"text/rtf!"};
    s1->has_content_type_id = 0;
    cr_assert_eq(decode_packed(m), 0, "an uncommon type is stored as bytes");
    *s1 = saved;
    s1->content_type_id = 99;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "content type id out of the table");
    *s1 = saved;
    s1->last_mod_delta = -1800000000LL;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "last_mod below 0");
    s1->last_mod_delta = 3000000000LL;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "last_mod above 2^32-1");
    s1->last_mod_delta = INT64_MIN;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "huge last_mod delta");
    *s1 = saved;
    m->clock->entries[0]->has_partition = 1;
    m->clock->entries[0]->partition = 0;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "partition 0 written out");
    m->clock->entries[0]->partition = 7;
    m->clock->entries[0]->counter = 0;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "zero clock counter");
    m->clock->entries[0]->counter = 1;
    cr_assert_eq(decode_packed(m), 0, "the restored object decodes");
    m->siblings[0] = s1;
    m->siblings[1] = s0;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "siblings out of order");
    m->siblings[0] = s0;
    m->siblings[1] = s0;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "duplicate dot");
    m->siblings[1] = s1;
    m->n_siblings = 1;
    cr_assert_eq(decode_packed(m), STORE_EDECODE, "count disagrees with siblings");
    m->n_siblings = 2;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    free(buf);
    store_obj_free(o);
}

Test(store_codec, oversized_length_and_random_bytes_fail_cleanly)
{
    const uint8_t huge[] = {0x08, 0x02, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    store_obj_t *o = NULL;
    cr_assert_eq(store_obj_decode(huge, sizeof huge, &o), STORE_EDECODE);
    cr_assert_eq(store_obj_decode(NULL, 0, &o), STORE_EDECODE, "empty is not an object");
    uint64_t seed = test_seed();
    prng_t r = {seed};
    store_obj_t *rich = rich_object();
    uint8_t *good;
    size_t glen;
    store_obj_encode(rich, &good, &glen);
    uint8_t *buf = malloc(glen);
    for (int i = 0; i < 20000; i++) {
        /* flip a few bytes of a valid object, or use pure noise */
        size_t n = glen;
        if (i % 2) {
            memcpy(buf, good, glen);
            for (int k = 0; k < 1 + (int)prng_below(&r, 4); k++)
                buf[prng_below(&r, (uint32_t)glen)] = (uint8_t)prng_next(&r);
        } else {
            n = 1 + prng_below(&r, (uint32_t)glen);
            for (size_t j = 0; j < n; j++)
                buf[j] = (uint8_t)prng_next(&r);
        }
        int rc = store_obj_decode(buf, n, &o);
        cr_assert(rc == 0 || rc == STORE_EDECODE, "seed=%llu i=%d rc=%d", (unsigned long long)seed, i, rc);
        if (rc == 0) {
            cr_assert_eq(store_obj_check(o), 0, "a decoded object always satisfies the invariants");
            store_obj_free(o);
        }
    }
    free(buf);
    free(good);
    store_obj_free(rich);
}
