/*
 * key.c — the order-preserving storage key encoding described in key.h.
 * Invariant: decode(encode(k)) == k for every k with non-empty components, and
 * encode(a) < encode(b) bytewise iff (type, bucket, key) of a < that of b.
 */
#include "storage/key.h"

#include "storage/err.h"

#include <string.h>

static size_t esc_len(store_slice_t s)
{
    size_t n = s.n;
    for (size_t i = 0; i < s.n; i++)
        n += s.p[i] == 0;
    return n + 2; /* terminator */
}

static uint8_t *esc(uint8_t *o, store_slice_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        *o++ = s.p[i];
        if (s.p[i] == 0)
            *o++ = 0xFF;
    }
    *o++ = 0x00;
    *o++ = 0x01;
    return o;
}

size_t store_key_encoded_len(const store_key_t *k)
{
    return 1 + esc_len(k->type) + esc_len(k->bucket) + k->key.n;
}

long store_key_encode(const store_key_t *k, uint8_t *buf, size_t cap)
{
    if (!k || k->type.n == 0 || k->bucket.n == 0 || k->key.n == 0)
        return STORE_EKEY;
    size_t n = store_key_encoded_len(k);
    if (n > STORE_KEY_MAX)
        return STORE_EKEY;
    if (n > cap)
        return STORE_EINVAL;
    uint8_t *o = buf;
    *o++ = STORE_KEY_NS_OBJECT;
    o = esc(o, k->type);
    o = esc(o, k->bucket);
    memcpy(o, k->key.p, k->key.n);
    return (long)n;
}

long store_key_bucket_prefix(const store_slice_t *type, const store_slice_t *bucket,
                             uint8_t *buf, size_t cap)
{
    if (!bucket) {
        if (cap < 1)
            return STORE_EINVAL;
        buf[0] = STORE_KEY_NS_OBJECT;
        return 1;
    }
    if (!type || type->n == 0 || bucket->n == 0)
        return STORE_EKEY;
    size_t n = 1 + esc_len(*type) + esc_len(*bucket);
    if (n > STORE_KEY_MAX)
        return STORE_EKEY;
    if (n > cap)
        return STORE_EINVAL;
    uint8_t *o = buf;
    *o++ = STORE_KEY_NS_OBJECT;
    o = esc(o, *type);
    esc(o, *bucket);
    return (long)n;
}

/* Unescapes one component starting at *pos; returns 0 or STORE_EKEY. */
static int unesc(const uint8_t *buf, size_t len, size_t *pos, uint8_t **scratch,
                 store_slice_t *out)
{
    uint8_t *start = *scratch, *o = *scratch;
    size_t i = *pos;
    for (;;) {
        if (i >= len)
            return STORE_EKEY;
        if (buf[i] != 0) {
            *o++ = buf[i++];
            continue;
        }
        if (i + 1 >= len)
            return STORE_EKEY;
        if (buf[i + 1] == 0xFF) {
            *o++ = 0;
            i += 2;
        } else if (buf[i + 1] == 0x01) {
            i += 2;
            break;
        } else {
            return STORE_EKEY;
        }
    }
    out->p = start;
    out->n = (size_t)(o - start);
    *pos = i;
    *scratch = o;
    return out->n ? 0 : STORE_EKEY;
}

int store_key_decode(const uint8_t *buf, size_t len, uint8_t *scratch, store_key_t *out)
{
    if (len < 1 || buf[0] != STORE_KEY_NS_OBJECT)
        return STORE_EKEY;
    size_t pos = 1;
    int rc = unesc(buf, len, &pos, &scratch, &out->type);
    if (rc == 0)
        rc = unesc(buf, len, &pos, &scratch, &out->bucket);
    if (rc == 0 && pos >= len)
        rc = STORE_EKEY;
    if (rc == 0) {
        out->key.p = buf + pos;
        out->key.n = len - pos;
    }
    return rc;
}
