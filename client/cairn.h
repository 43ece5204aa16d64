/*
 * cairn.h — libcairn, the C client of Cairn (prefix cairn_).
 *
 * It speaks Riak's Protocol Buffers client API over TCP (default port 8087), so it also
 * works against Riak itself. The library is plain blocking C: each call sends one request
 * and waits for its answer (with a deadline), on the calling thread. It depends only on
 * protobuf-c and libc.
 *
 * Thread safety: a cairn_t is one connection; use it from one thread at a time (or guard it
 * with your own lock). Different cairn_t handles are independent and may be used from
 * different threads at once. cairn_strerror is thread-safe.
 *
 * Failover: cairn_connect takes a comma-separated list of host:port. It connects to the
 * first that answers. When a connection breaks, the next call reconnects, trying each node
 * in turn from the one after the broken one. A request whose connection broke BEFORE it was
 * sent is retried once on the next node; one whose connection broke AFTER it was sent fails
 * with CAIRN_EIO, because its outcome is unknown (it may or may not have been applied). A
 * request a stopping node refused unread ("node is stopping") goes to each other node in
 * turn, once each.
 *
 * Memory: every object the library allocates for you has one free function, named in the
 * comment of the call that returns it. Strings and buffers you pass in are borrowed for the
 * duration of the call only.
 *
 * Errors: every call returns CAIRN_OK (0) or a negative CAIRN_E* code; cairn_strerror gives
 * its text and cairn_errmsg the details of the last failure on that handle (for
 * CAIRN_ESERVER, the server's own message, e.g. "{r_val_unsatisfied,2,1}").
 */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
enum {
    CAIRN_OK = 0,
    CAIRN_ENOTFOUND = -1,  /* get: no such key (or deleted) */
    CAIRN_EINVAL = -2,     /* bad argument (empty bucket, NULL handle, ...) */
    CAIRN_ECONNECT = -3,   /* no node in the list accepted a connection */
    CAIRN_EIO = -4,        /* the connection broke during the request: outcome unknown */
    CAIRN_ETIMEOUT = -5,   /* no answer within the deadline (client side or server side) */
    CAIRN_ESERVER = -6,    /* the server answered with an error; see cairn_errmsg */
    CAIRN_EPROTO = -7,     /* the server's answer was malformed */
    CAIRN_ENOMEM = -8,
    CAIRN_EOVERLOAD = -9,  /* the server is overloaded: retry later */
    CAIRN_EMODIFIED = -10, /* put with if_not_modified: the object changed (or is missing) */
    CAIRN_EEXISTS = -11,   /* put with if_none_match: the key already exists */
    CAIRN_ETOOBIG = -12,   /* value or request larger than the server (or client) accepts */
};

/* The text of an error code (static string; never NULL). */
const char *cairn_strerror(int err);

/* ---------------------------------------------------------------- values and options */

/* A byte string (binary-safe bucket, key, value). CAIRN_S("text") makes one from a C
 * string. */
typedef struct cairn_buf {
    const void *data;
    size_t len;
} cairn_buf_t;
#define CAIRN_S(s) ((cairn_buf_t){(s), __builtin_strlen(s)})

/* Riak's symbolic quorum values (for r, w, pr, pw, dw, rw). 0 means "not sent": the bucket's
 * own value applies. */
#define CAIRN_Q_ONE 4294967294u
#define CAIRN_Q_QUORUM 4294967293u
#define CAIRN_Q_ALL 4294967292u
#define CAIRN_Q_DEFAULT 4294967291u

/* An optional boolean: zero (unset) leaves the server's default. */
typedef enum { CAIRN_UNSET = 0, CAIRN_TRUE = 1, CAIRN_FALSE = 2 } cairn_tri_t;

typedef struct cairn_pair {
    cairn_buf_t key, value;
} cairn_pair_t;

/* Connection settings; NULL or zero fields mean the defaults. */
typedef struct cairn_opts {
    uint32_t connect_timeout_ms; /* per node tried, default 2000 */
    uint32_t timeout_ms;         /* per request when the request gives none, default 60000 */
    uint32_t max_frame_bytes;    /* largest answer accepted, default 64 MiB */
} cairn_opts_t;

typedef struct cairn cairn_t;

/* Connects to the first node of `hosts` ("host:port[,host:port...]"; a missing port means
 * 8087; IPv6 as "[::1]:8087") that accepts. *out: close with cairn_close. On failure *out is
 * NULL and cairn_errmsg(NULL) tells why (CAIRN_EINVAL: a bad host list; CAIRN_ECONNECT: each
 * node tried and its reason). */
int cairn_connect(const char *hosts, const cairn_opts_t *opts, cairn_t **out);
void cairn_close(cairn_t *c); /* NULL is ignored */

/* Details of the last error on c ("" if none). Valid until the next call on c. With c NULL:
 * the details of the last failed cairn_connect on the calling thread. */
const char *cairn_errmsg(const cairn_t *c);
/* The node ("host:port") c is connected to now, "" if none. */
const char *cairn_current_node(const cairn_t *c);

/* ---------------------------------------------------------------- objects */

/* One sibling. Every pointer points into the cairn_object_t that holds it. Every byte string
 * (value, usermeta and index keys and values) is followed by a NUL byte that len does not
 * count, so text values can be used as C strings. */
typedef struct cairn_content {
    cairn_buf_t value;
    const char *content_type;      /* NULL if absent */
    const char *charset;
    const char *content_encoding;
    const char *vtag;
    uint32_t last_mod, last_mod_usecs;
    bool deleted;                  /* a tombstone (seen only with deletedvclock) */
    const cairn_pair_t *usermeta;
    size_t n_usermeta;
    const cairn_pair_t *indexes;
    size_t n_indexes;
} cairn_content_t;

/* A read (or a put's returned body). More than one sibling means concurrent writes: resolve
 * them and write the result back with `context`. */
typedef struct cairn_object {
    cairn_content_t *siblings;
    size_t n_siblings;
    cairn_buf_t context;           /* the opaque causal context (vclock); may be empty */
    cairn_buf_t key;               /* put without a key: the key the server made */
    bool unchanged;                /* get with if_modified: not modified since */
} cairn_object_t;

void cairn_object_free(cairn_object_t *o); /* NULL is ignored */

/* ---------------------------------------------------------------- get, put, delete */

typedef struct cairn_get_opts {
    const char *type;              /* bucket type; NULL: "default" */
    uint32_t r, pr, n_val;         /* 0: bucket default */
    cairn_tri_t notfound_ok, basic_quorum, sloppy_quorum;
    bool head;                     /* metadata only: values come back empty */
    bool deletedvclock;            /* a tombstone returns its context instead of not found */
    cairn_buf_t if_modified;       /* a context: answer `unchanged` if still current */
    uint32_t timeout_ms;           /* 0: the connection's default (nothing sent); otherwise
                                    * sent to the server, and the client waits 1 s longer */
} cairn_get_opts_t;

/* Reads bucket/key. CAIRN_OK with *out (free with cairn_object_free), or CAIRN_ENOTFOUND
 * (*out = NULL; with deletedvclock a tombstone gives CAIRN_ENOTFOUND and, when the server
 * sent one, an object with only the context). */
int cairn_get(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, const cairn_get_opts_t *o,
              cairn_object_t **out);

typedef struct cairn_put_opts {
    const char *type;
    cairn_buf_t context;           /* from a previous get: this write supersedes what it saw */
    const char *content_type;      /* NULL: "application/octet-stream" */
    const char *charset, *content_encoding;
    const cairn_pair_t *usermeta;
    size_t n_usermeta;
    const cairn_pair_t *indexes;
    size_t n_indexes;
    uint32_t w, dw, pw, n_val;
    cairn_tri_t sloppy_quorum;
    bool return_body;              /* *out gets the stored siblings and the new context */
    bool return_head;              /* like return_body without the values */
    bool if_not_modified;          /* fail with CAIRN_EMODIFIED unless context is current */
    bool if_none_match;            /* fail with CAIRN_EEXISTS if the key exists */
    uint32_t timeout_ms;
} cairn_put_opts_t;

/* Writes value under bucket/key. key.len == 0 asks the server to make a key (returned in
 * (*out)->key). out may be NULL; otherwise *out (free with cairn_object_free) holds what the
 * server returned (siblings only with return_body/return_head). */
int cairn_put(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, cairn_buf_t value,
              const cairn_put_opts_t *o, cairn_object_t **out);

typedef struct cairn_del_opts {
    const char *type;
    cairn_buf_t context;           /* from a get: delete what was seen (recommended) */
    uint32_t rw, r, w, pr, pw, dw, n_val;
    cairn_tri_t sloppy_quorum;
    uint32_t timeout_ms;
} cairn_del_opts_t;

/* Deletes bucket/key (deleting a missing key succeeds). */
int cairn_delete(cairn_t *c, cairn_buf_t bucket, cairn_buf_t key, const cairn_del_opts_t *o);

/* ---------------------------------------------------------------- listing */

/* Called once per key or bucket name, in arrival order; the bytes are valid only during the
 * call. Return 0 to go on, non-zero to stop receiving (the call then drains the rest of the
 * stream and returns CAIRN_OK). */
typedef int (*cairn_name_cb)(void *arg, cairn_buf_t name);

/* Streams every key of a bucket (expensive: it visits every key the node stores).
 * timeout_ms 0: no limit is sent and each streamed message must arrive within the
 * connection's timeout; otherwise it bounds the whole listing (plus 1 s of grace). An error
 * mid-stream ends the call with that error. */
int cairn_list_keys(cairn_t *c, const char *type, cairn_buf_t bucket, uint32_t timeout_ms,
                    cairn_name_cb cb, void *arg);
/* Streams every bucket name that holds at least one live key. */
int cairn_list_buckets(cairn_t *c, const char *type, uint32_t timeout_ms, cairn_name_cb cb,
                       void *arg);

/* ---------------------------------------------------------------- bucket properties */

/* Which fields of cairn_bucket_props_t are set (get: what the server sent; set: what to
 * change). */
enum {
    CAIRN_PROP_N_VAL = 1u << 0,
    CAIRN_PROP_ALLOW_MULT = 1u << 1,
    CAIRN_PROP_LAST_WRITE_WINS = 1u << 2,
    CAIRN_PROP_R = 1u << 3,
    CAIRN_PROP_W = 1u << 4,
    CAIRN_PROP_PR = 1u << 5,
    CAIRN_PROP_PW = 1u << 6,
    CAIRN_PROP_DW = 1u << 7,
    CAIRN_PROP_RW = 1u << 8,
    CAIRN_PROP_NOTFOUND_OK = 1u << 9,
    CAIRN_PROP_BASIC_QUORUM = 1u << 10,
    CAIRN_PROP_SMALL_VCLOCK = 1u << 11,
    CAIRN_PROP_BIG_VCLOCK = 1u << 12,
    CAIRN_PROP_YOUNG_VCLOCK = 1u << 13,
    CAIRN_PROP_OLD_VCLOCK = 1u << 14,
};

typedef struct cairn_bucket_props {
    uint32_t fields;               /* CAIRN_PROP_* bits */
    uint32_t n_val;
    bool allow_mult, last_write_wins, notfound_ok, basic_quorum;
    uint32_t r, w, pr, pw, dw, rw; /* numbers or CAIRN_Q_* */
    uint32_t small_vclock, big_vclock, young_vclock, old_vclock;
} cairn_bucket_props_t;

int cairn_bucket_get(cairn_t *c, const char *type, cairn_buf_t bucket, cairn_bucket_props_t *out);
int cairn_bucket_set(cairn_t *c, const char *type, cairn_buf_t bucket,
                     const cairn_bucket_props_t *props);
/* Back to the defaults. */
int cairn_bucket_reset(cairn_t *c, const char *type, cairn_buf_t bucket);

/* ---------------------------------------------------------------- node */

int cairn_ping(cairn_t *c);
/* Copies the node name and server version (NUL-terminated, truncated to fit). */
int cairn_server_info(cairn_t *c, char *node, size_t node_len, char *version,
                      size_t version_len);
/* Riak's client id (kept for compatibility; Cairn's clocks use vnode ids). out->data: free
 * with cairn_free. */
int cairn_get_client_id(cairn_t *c, cairn_buf_t *out);
int cairn_set_client_id(cairn_t *c, cairn_buf_t id);

/* Frees memory the library returned as a bare buffer (cairn_get_client_id). */
void cairn_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
