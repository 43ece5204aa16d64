/*
 * quorum.c — the coordinators' quorum arithmetic (node/quorum.h): Riak's get_core and
 * put_core counting, validation with Riak's error texts, and the post-reply decisions.
 */
#include "node/quorum.h"

#include <stdio.h>

const char *quorum_symbol_name(uint32_t v)
{
    switch (v) {
    case NODE_QUORUM_ONE: return "one";
    case NODE_QUORUM_QUORUM: return "quorum";
    case NODE_QUORUM_ALL: return "all";
    case NODE_QUORUM_DEFAULT: return "default";
    default: return NULL;
    }
}

const char *quorum_value_text(uint32_t v, char *buf, size_t len)
{
    const char *name = quorum_symbol_name(v);
    if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%u", v);
    return buf;
}

static bool expand_plain(uint32_t value, uint32_t n, uint32_t *out)
{
    switch (value) {
    case NODE_QUORUM_ONE: *out = 1; return true;
    case NODE_QUORUM_QUORUM: *out = n / 2 + 1; return true;
    case NODE_QUORUM_ALL: *out = n; return true;
    case NODE_QUORUM_DEFAULT: return false;
    default: *out = value; return true;
    }
}

bool quorum_expand(uint32_t value, uint32_t bucket_value, uint32_t n, uint32_t *out)
{
    if (value == NODE_QUORUM_DEFAULT)
        return expand_plain(bucket_value, n, out);
    return expand_plain(value, n, out);
}

int quorum_n(uint32_t bucket_n, bool has_req_n, uint32_t req_n, uint32_t *n, char *err,
             size_t errlen)
{
    if (!has_req_n) {
        *n = bucket_n;
        return 0;
    }
    if (req_n == 0 || req_n > bucket_n) {
        snprintf(err, errlen, "{n_val_violation,%u}", req_n);
        return -1;
    }
    *n = req_n;
    return 0;
}

static uint32_t max2(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min2(uint32_t a, uint32_t b) { return a < b ? a : b; }

static int violation(char *err, size_t errlen, const char *what, uint32_t given)
{
    char text[32];
    snprintf(err, errlen, "{%s_val_violation,%s}", what,
             quorum_value_text(given, text, sizeof text));
    return -1;
}

/* Errors and overloads both count as failures; overloads also apart (the error text). */
static void count_failure(quorum_reply_t reply, uint32_t *num_fail, uint32_t *num_overload)
{
    if (reply == QUORUM_REPLY_OVERLOAD)
        (*num_overload)++;
    (*num_fail)++;
}

/* ---------------------------------------------------------------- get */

int quorum_get_init(quorum_get_t *q, const bucket_props_t *bp, uint32_t n, uint32_t r,
                    uint32_t pr, int notfound_ok, int basic_quorum, uint32_t n_vnodes,
                    uint32_t n_primaries, char *err, size_t errlen)
{
    *q = (quorum_get_t){0};
    uint32_t R, PR;
    if (!quorum_expand(r, bp->r, n, &R))
        return violation(err, errlen, "r", r);
    if (R > n) {
        snprintf(err, errlen, "{n_val_violation,%u}", n);
        return -1;
    }
    if (!quorum_expand(pr, bp->pr, n, &PR))
        return violation(err, errlen, "pr", pr);
    if (PR > n) {
        snprintf(err, errlen, "{n_val_violation,%u}", n);
        return -1;
    }
    if (PR > n_primaries) {
        snprintf(err, errlen, "{pr_val_unsatisfied,%u,%u}", PR, n_primaries);
        return -1;
    }
    if (R == 0)
        R = 1; /* a read needs at least one answer to say anything */
    if (R > n_vnodes) {
        snprintf(err, errlen, "{insufficient_vnodes,%u,need,%u}", n_vnodes, R);
        return -1;
    }
    q->n = n_vnodes;
    q->r = R;
    q->pr = PR;
    q->num_primaries = n_primaries;
    q->notfound_ok = notfound_ok < 0 ? bp->notfound_ok : notfound_ok != 0;
    q->basic_quorum = basic_quorum < 0 ? bp->basic_quorum : basic_quorum != 0;
    uint32_t need = max2(R, PR);
    uint32_t threshold = n_vnodes >= need ? n_vnodes - need + 1 : 1;
    if (q->basic_quorum)
        threshold = min2(n_vnodes / 2 + 1, threshold);
    q->fail_threshold = threshold;
    return 0;
}

void quorum_get_add(quorum_get_t *q, quorum_reply_t reply, bool primary)
{
    bool ok = false;
    switch (reply) {
    case QUORUM_REPLY_VALUE:
        q->num_values++;
        ok = true;
        break;
    case QUORUM_REPLY_TOMBSTONE:
        q->num_tombstones++;
        ok = true;
        break;
    case QUORUM_REPLY_NOTFOUND:
        if (q->notfound_ok)
            ok = true;
        else
            q->num_notfound++;
        break;
    case QUORUM_REPLY_OVERLOAD:
    case QUORUM_REPLY_ERROR:
        count_failure(reply, &q->num_fail, &q->num_overload);
        break;
    }
    if (ok) {
        q->num_ok++;
        if (primary)
            q->num_pok++;
    } else if (primary) {
        q->num_pfail++;
    }
}

bool quorum_get_done(const quorum_get_t *q)
{
    return q->num_ok + q->num_notfound + q->num_fail >= q->n;
}

quorum_verdict_t quorum_get_verdict(const quorum_get_t *q, char *err, size_t errlen)
{
    if (q->num_ok >= q->r && q->num_pok >= q->pr)
        return QUORUM_OK;
    bool pr_impossible = q->num_primaries - min2(q->num_pfail, q->num_primaries) < q->pr;
    bool enough = q->num_notfound + q->num_fail >= q->fail_threshold || quorum_get_done(q) ||
                  pr_impossible;
    if (!enough)
        return QUORUM_PENDING;
    if (q->num_ok >= q->r) { /* R met, PR not */
        snprintf(err, errlen, "{pr_val_unsatisfied,%u,%u}", q->pr, q->num_pok);
        return QUORUM_FAILED;
    }
    /* riak_kv_get_core:fail_reply: nothing but notfounds (tombstones count as such) */
    if (q->num_values == 0 && q->num_fail == 0 && q->num_notfound + q->num_tombstones > 0)
        return QUORUM_NOTFOUND;
    if (q->num_overload > 0) {
        snprintf(err, errlen, "overload");
        return QUORUM_FAILED;
    }
    if (pr_impossible && q->num_notfound + q->num_fail < q->fail_threshold &&
        !quorum_get_done(q)) {
        snprintf(err, errlen, "{pr_val_unsatisfied,%u,%u}", q->pr, q->num_pok);
        return QUORUM_FAILED;
    }
    snprintf(err, errlen, "{r_val_unsatisfied,%u,%u}", q->r, q->num_ok);
    return QUORUM_FAILED;
}

/* ---------------------------------------------------------------- put */

int quorum_put_init(quorum_put_t *q, const bucket_props_t *bp, uint32_t n, uint32_t w,
                    uint32_t dw, uint32_t pw, uint32_t n_vnodes, uint32_t n_primaries, char *err,
                    size_t errlen)
{
    *q = (quorum_put_t){0};
    uint32_t W, DW, PW;
    if (!quorum_expand(w, bp->w, n, &W))
        return violation(err, errlen, "w", w);
    if (!quorum_expand(dw, bp->dw, n, &DW))
        return violation(err, errlen, "dw", dw);
    DW = max2(DW, 1); /* the coordinating vnode always writes durably first */
    if (!quorum_expand(pw, bp->pw, n, &PW))
        return violation(err, errlen, "pw", pw);
    if (W > n || DW > n || PW > n) {
        snprintf(err, errlen, "{n_val_violation,%u}", n);
        return -1;
    }
    if (PW > n_primaries) {
        snprintf(err, errlen, "{pw_val_unsatisfied,%u,%u}", PW, n_primaries);
        return -1;
    }
    uint32_t min_vnodes = max2(max2(1, W), max2(DW, PW));
    if (n_vnodes < min_vnodes) {
        snprintf(err, errlen, "{insufficient_vnodes,%u,need,%u}", n_vnodes, min_vnodes);
        return -1;
    }
    q->n = n_vnodes;
    q->w = W;
    q->dw = DW;
    q->pw = PW;
    return 0;
}

void quorum_put_add(quorum_put_t *q, quorum_reply_t reply, bool primary)
{
    switch (reply) {
    case QUORUM_REPLY_VALUE:
    case QUORUM_REPLY_TOMBSTONE:
    case QUORUM_REPLY_NOTFOUND:
        q->num_w++;
        q->num_dw++;
        if (primary)
            q->num_pw++;
        break;
    case QUORUM_REPLY_OVERLOAD:
    case QUORUM_REPLY_ERROR:
        count_failure(reply, &q->num_fail, &q->num_overload);
        break;
    }
}

bool quorum_put_done(const quorum_put_t *q)
{
    return q->num_dw + q->num_fail >= q->n;
}

static quorum_verdict_t put_failed(const quorum_put_t *q, char *err, size_t errlen,
                                   const char *fmt, uint32_t want, uint32_t got)
{
    if (q->num_overload > 0)
        snprintf(err, errlen, "overload");
    else
        snprintf(err, errlen, fmt, want, got);
    return QUORUM_FAILED;
}

quorum_verdict_t quorum_put_verdict(const quorum_put_t *q, char *err, size_t errlen)
{
    bool w_met = q->num_w >= q->w, dw_met = q->num_dw >= q->dw, pw_met = q->num_pw >= q->pw;
    if (w_met && dw_met && pw_met)
        return QUORUM_OK;
    /* riak_kv_put_core: failure thresholds N - X + 1 */
    bool pw_lost = q->pw > 0 && q->num_fail >= q->n - q->pw + 1;
    bool dw_lost = q->num_fail >= q->n - q->dw + 1;
    bool w_lost = q->num_fail >= q->n - min2(q->w, q->n) + 1;
    bool done = quorum_put_done(q);
    if (w_met && dw_met && !pw_met && (pw_lost || done))
        return put_failed(q, err, errlen, "{pw_val_unsatisfied,%u,%u}", q->pw, q->num_pw);
    if (pw_lost && q->pw >= q->dw)
        return put_failed(q, err, errlen, "{pw_val_unsatisfied,%u,%u}", q->pw, q->num_pw);
    if (dw_lost)
        return put_failed(q, err, errlen, "{dw_val_unsatisfied,%u,%u}", q->dw, q->num_dw);
    if (w_lost && !w_met)
        return put_failed(q, err, errlen, "{w_val_unsatisfied,%u,%u}", q->w, q->num_w);
    if (pw_lost)
        return put_failed(q, err, errlen, "{pw_val_unsatisfied,%u,%u}", q->pw, q->num_pw);
    if (done) /* cannot happen with consistent counts; never leave a request hanging */
        return put_failed(q, err, errlen, "{dw_val_unsatisfied,%u,%u}", q->dw, q->num_dw);
    return QUORUM_PENDING;
}

/* ---------------------------------------------------------------- after the reply */

bool quorum_needs_repair(quorum_reply_t reply, const store_vclock_t *merged,
                         const store_vclock_t *replica)
{
    if (!merged)
        return false;
    switch (reply) {
    case QUORUM_REPLY_NOTFOUND:
        return true;
    case QUORUM_REPLY_VALUE:
    case QUORUM_REPLY_TOMBSTONE:
        return replica && store_vclock_dominates(merged, replica);
    default:
        return false;
    }
}

bool quorum_may_reap(bool merged_is_tombstone, uint32_t n_objects, uint32_t n_val,
                     uint32_t bucket_n, uint32_t n_repairs)
{
    return merged_is_tombstone && n_val == bucket_n && n_objects == n_val && n_repairs == 0;
}
