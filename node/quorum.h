/*
 * quorum.h — the quorum arithmetic of the get/put/delete coordinators, as pure functions
 * (prefix quorum_): symbolic values (one/quorum/all/default), validation with Riak's error
 * texts, the get side's "enough / failed / done" decision (notfound_ok, basic_quorum, PR),
 * the put side's W/DW/PW counting, and the read-repair / tombstone-reap decisions.
 *
 * Follows riak_kv_get_core / riak_kv_put_core and riak_kv_{get,put}_fsm:validate
 * (reference/riak-facts.md 5.2, 5.3). Error texts are Erlang-term renderings that clients
 * match: "{n_val_violation,3}", "{r_val_unsatisfied,2,1}", "overload", ...
 * No I/O, no runtime, no allocation: every function here is safe to call from anywhere.
 */
#ifndef CAIRN_NODE_QUORUM_H
#define CAIRN_NODE_QUORUM_H

#include "node/bucket.h"
#include "node/config.h"
#include "storage/vclock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Riak's name of a symbolic quorum value ("one", "quorum", "all", "default"), or NULL for
 * a plain number. */
const char *quorum_symbol_name(uint32_t v);
/* v as Riak renders the option: the symbol's name or the decimal number. Returns buf. */
const char *quorum_value_text(uint32_t v, char *buf, size_t len);

/* Expands one quorum value against N: one -> 1, quorum -> N/2+1, all -> N, a number ->
 * itself (validation compares it with N later), default -> the bucket's value expanded the
 * same way. false when it cannot be expanded (the bucket's own value is `default`). */
bool quorum_expand(uint32_t value, uint32_t bucket_value, uint32_t n, uint32_t *out);

/* The N of a request: the bucket's n_val, or the request's when given, which may only lower
 * it (0 or above the bucket's: "{n_val_violation,<requested>}"). 0 or -1 with err. */
int quorum_n(uint32_t bucket_n, bool has_req_n, uint32_t req_n, uint32_t *n, char *err,
             size_t errlen);

/* What a request's outcome is, once enough replies have arrived. */
typedef enum {
    QUORUM_PENDING,   /* keep waiting */
    QUORUM_OK,        /* reply with the merged result (get: a value, a tombstone or notfound) */
    QUORUM_NOTFOUND,  /* get only: failed, but every failure was a notfound: reply notfound */
    QUORUM_FAILED     /* reply the error text written to err */
} quorum_verdict_t;

/* One vnode's answer as the quorum counts it. */
typedef enum {
    QUORUM_REPLY_VALUE,      /* an object with at least one live sibling */
    QUORUM_REPLY_TOMBSTONE,  /* an object whose siblings are all deleted */
    QUORUM_REPLY_NOTFOUND,   /* nothing stored */
    QUORUM_REPLY_ERROR,      /* a vnode error, a crash, a restarting vnode */
    QUORUM_REPLY_OVERLOAD    /* the vnode refused: its mailbox is full */
} quorum_reply_t;

/* ---------------------------------------------------------------- get */

typedef struct quorum_get_s {
    uint32_t n;              /* replies expected: the preference list's length */
    uint32_t r, pr;          /* expanded, r >= 1 */
    bool notfound_ok, basic_quorum;
    uint32_t fail_threshold; /* N - max(R,PR) + 1, or min(N/2+1, that) with basic_quorum */
    uint32_t num_ok;         /* values, tombstones, and notfounds when notfound_ok */
    uint32_t num_pok;        /* of which from primaries */
    uint32_t num_notfound;   /* notfounds that did not count as ok */
    uint32_t num_fail;       /* errors and overloads */
    uint32_t num_overload;
    uint32_t num_primaries;  /* primaries in the preference list */
    uint32_t num_pfail;      /* primaries that answered without counting as ok */
    uint32_t num_values;     /* live objects among the oks */
    uint32_t num_tombstones; /* tombstones among the oks */
} quorum_get_t;

/* Validates and starts a get. n: the request's N (quorum_n); r/pr: the request's values
 * (NODE_QUORUM_DEFAULT when absent); notfound_ok/basic_quorum: -1 when absent (bucket value),
 * else 0/1; n_vnodes/n_primaries: the preference list. 0, or -1 with Riak's error in err:
 * {r_val_violation,R} {pr_val_violation,PR} {n_val_violation,N} {pr_val_unsatisfied,PR,P}
 * {insufficient_vnodes,Have,need,R}. */
int quorum_get_init(quorum_get_t *q, const bucket_props_t *bp, uint32_t n, uint32_t r,
                    uint32_t pr, int notfound_ok, int basic_quorum, uint32_t n_vnodes,
                    uint32_t n_primaries, char *err, size_t errlen);
void quorum_get_add(quorum_get_t *q, quorum_reply_t reply, bool primary);
/* Every expected reply has arrived. */
bool quorum_get_done(const quorum_get_t *q);
/* The outcome so far; err gets the text for QUORUM_FAILED ({r_val_unsatisfied,R,Got},
 * {pr_val_unsatisfied,PR,Got}, overload). */
quorum_verdict_t quorum_get_verdict(const quorum_get_t *q, char *err, size_t errlen);

/* ---------------------------------------------------------------- put */

typedef struct quorum_put_s {
    uint32_t n;             /* replicas written: the preference list's length */
    uint32_t w, dw, pw;     /* expanded; dw >= 1 (the coordinator writes durably first) */
    uint32_t num_w, num_dw, num_pw, num_fail, num_overload;
} quorum_put_t;

/* Validates and starts a put (or a delete's tombstone write). w/dw/pw as for
 * quorum_get_init. 0, or -1 with err: {w_val_violation,W} {dw_val_violation,DW}
 * {pw_val_violation,PW} {n_val_violation,N} {pw_val_unsatisfied,PW,P}
 * {insufficient_vnodes,Have,need,Min}. */
int quorum_put_init(quorum_put_t *q, const bucket_props_t *bp, uint32_t n, uint32_t w,
                    uint32_t dw, uint32_t pw, uint32_t n_vnodes, uint32_t n_primaries, char *err,
                    size_t errlen);
/* A vnode's write: ok counts as both w and dw (our vnodes reply after their write). */
void quorum_put_add(quorum_put_t *q, quorum_reply_t reply, bool primary);
bool quorum_put_done(const quorum_put_t *q);
/* QUORUM_OK, QUORUM_PENDING or QUORUM_FAILED with {pw_val_unsatisfied,PW,Got},
 * {dw_val_unsatisfied,DW,Got}, {w_val_unsatisfied,W,Got} or overload in err. */
quorum_verdict_t quorum_put_verdict(const quorum_put_t *q, char *err, size_t errlen);

/* ---------------------------------------------------------------- after the reply */

/* Read repair (riak_kv_get_core:final_action): a replica gets the merged object when it
 * answered notfound, or answered an object whose clock the merged clock strictly dominates.
 * Errors get nothing. merged NULL (nothing found anywhere): nothing. */
bool quorum_needs_repair(quorum_reply_t reply, const store_vclock_t *merged,
                         const store_vclock_t *replica);

/* Tombstone reaping: the merged object is a tombstone, every one of the bucket's N replicas
 * answered with an object (n_objects == n_val, no custom lower N) and none needs a repair. */
bool quorum_may_reap(bool merged_is_tombstone, uint32_t n_objects, uint32_t n_val,
                     uint32_t bucket_n, uint32_t n_repairs);

#endif
