/*
 * key.h — storage keys: (bucket type, bucket, key) <-> one byte string (prefix store_key_).
 *
 * Layout: 0x10, esc(type), 0x00 0x01, esc(bucket), 0x00 0x01, key (raw). esc() doubles as
 * 0x00 -> 0x00 0xFF, so any bytes (NUL, '/', UTF-8) round-trip, the encoding sorts like the
 * tuple, and every key of one bucket shares the prefix store_key_bucket_prefix() returns:
 * one bucket is one contiguous range. Byte 0x10 is the object namespace; other leading bytes
 * are free for per-partition metadata and are never visited by folds.
 */
#ifndef CAIRN_STORE_KEY_H
#define CAIRN_STORE_KEY_H

#include "storage/object.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_NS_OBJECT 0x10
#define STORE_KEY_MAX 65536 /* bytes of an encoded key */

/* A borrowed (type, bucket, key). Every component must be non-empty. */
typedef struct store_key_s {
    store_slice_t type, bucket, key;
} store_key_t;

/* The bytes that store_key_encode() needs for k (before the STORE_KEY_MAX check). */
size_t store_key_encoded_len(const store_key_t *k);
/* Writes k into buf[0..cap); returns the length, or STORE_EKEY (empty component, encoding
 * longer than STORE_KEY_MAX) / STORE_EINVAL (cap too small). */
long store_key_encode(const store_key_t *k, uint8_t *buf, size_t cap);
/* The prefix shared by every key of (type, bucket); bucket NULL gives the prefix of every
 * object key (one byte). Same return convention as store_key_encode. */
long store_key_bucket_prefix(const store_slice_t *type, const store_slice_t *bucket,
                             uint8_t *buf, size_t cap);
/* Parses an encoded key. The type and bucket are unescaped into scratch (at least len
 * bytes); the key points into buf. Returns 0 or STORE_EKEY if buf is not an object key. */
int store_key_decode(const uint8_t *buf, size_t len, uint8_t *scratch, store_key_t *out);

#endif
