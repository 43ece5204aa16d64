/*
 * test_node_quorum.c — the coordinators' quorum arithmetic (node/quorum.c) as pure
 * functions: symbolic values, validation texts, the get and put verdicts (notfound_ok,
 * basic_quorum, PR/PW, DW forced >= 1) and the read-repair / reap decisions.
 */
#include "node/quorum.h"

#include <criterion/criterion.h>
#include <string.h>

static bucket_props_t defaults(void)
{
    bucket_props_t bp;
    memset(&bp, 0, sizeof bp);
    bp.n_val = 3;
    bp.r = bp.w = bp.dw = bp.rw = NODE_QUORUM_QUORUM;
    bp.pr = bp.pw = 0;
    bp.notfound_ok = true;
    bp.basic_quorum = false;
    return bp;
}

#define D NODE_QUORUM_DEFAULT

/* ---------------------------------------------------------------- symbolic values */

Test(quorum, symbols_have_riak_names)
{
    char buf[32];
    cr_assert_str_eq(quorum_symbol_name(NODE_QUORUM_ONE), "one");
    cr_assert_str_eq(quorum_symbol_name(NODE_QUORUM_QUORUM), "quorum");
    cr_assert_str_eq(quorum_symbol_name(NODE_QUORUM_ALL), "all");
    cr_assert_str_eq(quorum_symbol_name(NODE_QUORUM_DEFAULT), "default");
    cr_assert_null(quorum_symbol_name(3));
    cr_assert_str_eq(quorum_value_text(7, buf, sizeof buf), "7");
    cr_assert_str_eq(quorum_value_text(4294967294u, buf, sizeof buf), "one");
}

Test(quorum, expand_follows_riak)
{
    uint32_t v;
    for (uint32_t n = 1; n <= 6; n++) {
        cr_assert(quorum_expand(NODE_QUORUM_ONE, 0, n, &v));
        cr_assert_eq(v, 1);
        cr_assert(quorum_expand(NODE_QUORUM_QUORUM, 0, n, &v));
        cr_assert_eq(v, n / 2 + 1, "quorum of %u", n);
        cr_assert(quorum_expand(NODE_QUORUM_ALL, 0, n, &v));
        cr_assert_eq(v, n);
    }
    cr_assert(quorum_expand(NODE_QUORUM_QUORUM, 0, 3, &v) && v == 2);
    cr_assert(quorum_expand(NODE_QUORUM_QUORUM, 0, 4, &v) && v == 3);
    cr_assert(quorum_expand(NODE_QUORUM_QUORUM, 0, 5, &v) && v == 3);
    /* default takes the bucket's value, which may itself be symbolic */
    cr_assert(quorum_expand(NODE_QUORUM_DEFAULT, NODE_QUORUM_ALL, 5, &v) && v == 5);
    cr_assert(quorum_expand(NODE_QUORUM_DEFAULT, 2, 5, &v) && v == 2);
    /* plain numbers pass through (validation compares them with N) */
    cr_assert(quorum_expand(9, NODE_QUORUM_ONE, 3, &v) && v == 9);
    /* a bucket value of `default` cannot be expanded */
    cr_assert_not(quorum_expand(NODE_QUORUM_DEFAULT, NODE_QUORUM_DEFAULT, 3, &v));
}

Test(quorum, request_n_val_may_only_lower_n)
{
    char err[64] = "";
    uint32_t n = 0;
    cr_assert_eq(quorum_n(3, false, 0, &n, err, sizeof err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(quorum_n(3, true, 2, &n, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(quorum_n(3, true, 3, &n, err, sizeof err), 0);
    cr_assert_eq(quorum_n(3, true, 4, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,4}");
    cr_assert_eq(quorum_n(3, true, 0, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,0}");
}

/* ---------------------------------------------------------------- get validation */

Test(quorum, get_validation_texts)
{
    bucket_props_t bp = defaults();
    quorum_get_t q;
    char err[64];
    cr_assert_eq(quorum_get_init(&q, &bp, 3, 4, D, -1, -1, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,3}");
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, 4, -1, -1, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,3}");
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, NODE_QUORUM_ALL, -1, -1, 3, 2, err, sizeof err),
                 -1);
    cr_assert_str_eq(err, "{pr_val_unsatisfied,3,2}");
    cr_assert_eq(quorum_get_init(&q, &bp, 3, NODE_QUORUM_ALL, D, -1, -1, 2, 2, err, sizeof err),
                 -1);
    cr_assert_str_eq(err, "{insufficient_vnodes,2,need,3}");
    bp.r = NODE_QUORUM_DEFAULT; /* a bucket whose own r is `default` */
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, D, -1, -1, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{r_val_violation,default}");
    bp = defaults();
    bp.pr = NODE_QUORUM_DEFAULT;
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, D, -1, -1, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{pr_val_violation,default}");
}

Test(quorum, get_defaults_and_overrides)
{
    bucket_props_t bp = defaults();
    quorum_get_t q;
    char err[64];
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, D, -1, -1, 3, 3, err, sizeof err), 0);
    cr_assert_eq(q.r, 2);
    cr_assert_eq(q.pr, 0);
    cr_assert(q.notfound_ok);
    cr_assert_not(q.basic_quorum);
    cr_assert_eq(q.fail_threshold, 2); /* N - R + 1 */
    cr_assert_eq(quorum_get_init(&q, &bp, 3, NODE_QUORUM_ONE, D, 0, 1, 3, 3, err, sizeof err), 0);
    cr_assert_eq(q.r, 1);
    cr_assert_not(q.notfound_ok);
    cr_assert(q.basic_quorum);
    cr_assert_eq(q.fail_threshold, 2); /* min(N/2+1, N-R+1) = min(2, 3) */
    cr_assert_eq(quorum_get_init(&q, &bp, 5, 1, 3, -1, -1, 5, 5, err, sizeof err), 0);
    cr_assert_eq(q.fail_threshold, 3); /* N - max(R,PR) + 1 */
    /* R = 0 still waits for one answer */
    cr_assert_eq(quorum_get_init(&q, &bp, 3, 0, D, -1, -1, 3, 3, err, sizeof err), 0);
    cr_assert_eq(q.r, 1);
}

/* ---------------------------------------------------------------- get verdicts */

static quorum_get_t get_q(uint32_t r, uint32_t pr, int notfound_ok, int basic_quorum)
{
    bucket_props_t bp = defaults();
    quorum_get_t q;
    char err[64];
    cr_assert_eq(quorum_get_init(&q, &bp, 3, r, pr, notfound_ok, basic_quorum, 3, 3, err,
                                 sizeof err),
                 0, "%s", err);
    return q;
}

Test(quorum, get_two_values_reach_r)
{
    quorum_get_t q = get_q(D, D, -1, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_OK);
    cr_assert_not(quorum_get_done(&q));
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert(quorum_get_done(&q));
}

Test(quorum, get_notfound_ok_two_fast_notfounds_win)
{
    /* riak-facts 5.2's gotcha: with notfound_ok=true and R=2, two notfounds are enough */
    quorum_get_t q = get_q(D, D, -1, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_OK);
}

Test(quorum, get_notfound_not_ok_waits_for_the_value)
{
    quorum_get_t q = get_q(D, D, 0, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_OK);
}

Test(quorum, get_notfound_not_ok_all_missing_is_notfound)
{
    quorum_get_t q = get_q(D, D, 0, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true); /* threshold N-R+1 = 2 reached */
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_NOTFOUND);
}

Test(quorum, get_errors_give_r_val_unsatisfied)
{
    quorum_get_t q = get_q(D, D, -1, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_get_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{r_val_unsatisfied,2,1}");
}

Test(quorum, get_notfound_and_error_is_not_notfound)
{
    /* a real error among the failures: Riak answers r_val_unsatisfied, not notfound */
    quorum_get_t q = get_q(NODE_QUORUM_ALL, D, 0, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{r_val_unsatisfied,3,0}");
}

Test(quorum, get_tombstones_count_as_notfound_when_failing)
{
    quorum_get_t q = get_q(NODE_QUORUM_ALL, D, 0, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_TOMBSTONE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_NOTFOUND);
}

Test(quorum, get_overload_is_reported)
{
    quorum_get_t q = get_q(D, D, -1, -1);
    char err[64];
    quorum_get_add(&q, QUORUM_REPLY_OVERLOAD, true);
    quorum_get_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "overload");
}

Test(quorum, get_basic_quorum_fails_early)
{
    char err[64];
    /* R=1, notfound_ok=false: without basic_quorum all three must miss */
    quorum_get_t q = get_q(NODE_QUORUM_ONE, D, 0, 0);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_OK);
    /* with basic_quorum two misses (a majority) end it */
    q = get_q(NODE_QUORUM_ONE, D, 0, 1);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_NOTFOUND, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_NOTFOUND);
}

Test(quorum, get_pr_needs_primaries)
{
    char err[64];
    quorum_get_t q = get_q(D, NODE_QUORUM_ALL, -1, -1);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING); /* R met, PR not */
    quorum_get_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{pr_val_unsatisfied,3,2}");

    /* fallbacks do not count for PR */
    bucket_props_t bp = defaults();
    cr_assert_eq(quorum_get_init(&q, &bp, 3, D, 2, -1, -1, 3, 2, err, sizeof err), 0);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, false);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_get_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_get_verdict(&q, err, sizeof err), QUORUM_OK);
}

/* ---------------------------------------------------------------- put */

Test(quorum, put_validation_texts)
{
    bucket_props_t bp = defaults();
    quorum_put_t q;
    char err[64];
    cr_assert_eq(quorum_put_init(&q, &bp, 3, 4, D, D, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,3}");
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, 5, D, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,3}");
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, D, 4, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{n_val_violation,3}");
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, D, NODE_QUORUM_ALL, 3, 2, err, sizeof err), -1);
    cr_assert_str_eq(err, "{pw_val_unsatisfied,3,2}");
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, D, D, 1, 1, err, sizeof err), -1);
    cr_assert_str_eq(err, "{insufficient_vnodes,1,need,2}");
    bp.w = NODE_QUORUM_DEFAULT;
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, D, D, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{w_val_violation,default}");
    bp = defaults();
    bp.dw = NODE_QUORUM_DEFAULT;
    cr_assert_eq(quorum_put_init(&q, &bp, 3, D, D, D, 3, 3, err, sizeof err), -1);
    cr_assert_str_eq(err, "{dw_val_violation,default}");
}

Test(quorum, put_dw_is_at_least_one)
{
    bucket_props_t bp = defaults();
    quorum_put_t q;
    char err[64];
    cr_assert_eq(quorum_put_init(&q, &bp, 3, 1, 0, 0, 3, 3, err, sizeof err), 0);
    cr_assert_eq(q.w, 1);
    cr_assert_eq(q.dw, 1);
    cr_assert_eq(q.pw, 0);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_OK);
}

static quorum_put_t put_q(uint32_t w, uint32_t dw, uint32_t pw, uint32_t primaries)
{
    bucket_props_t bp = defaults();
    quorum_put_t q;
    char err[64];
    cr_assert_eq(quorum_put_init(&q, &bp, 3, w, dw, pw, 3, primaries, err, sizeof err), 0, "%s",
                 err);
    return q;
}

Test(quorum, put_succeeds_at_w)
{
    quorum_put_t q = put_q(D, D, D, 3);
    char err[64];
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_OK);
}

Test(quorum, put_one_failure_tolerated_two_not)
{
    quorum_put_t q = put_q(D, D, D, 3);
    char err[64];
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_OK);

    q = put_q(D, D, D, 3);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{dw_val_unsatisfied,2,1}");
}

Test(quorum, put_riak_test_texts)
{
    /* riak_test pr_pw: one failing vnode of three */
    char err[64];
    quorum_put_t q = put_q(D, D, NODE_QUORUM_ALL, 3);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{pw_val_unsatisfied,3,2}");
    q = put_q(D, NODE_QUORUM_ALL, D, 3);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{dw_val_unsatisfied,3,2}");
}

Test(quorum, put_w_above_dw_fails_with_w_text)
{
    char err[64];
    quorum_put_t q = put_q(NODE_QUORUM_ALL, 1, 0, 3);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{w_val_unsatisfied,3,1}");
}

Test(quorum, put_pw_counts_only_primaries)
{
    char err[64];
    quorum_put_t q = put_q(D, D, 2, 2);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, false);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_OK);

    q = put_q(D, D, 2, 2);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, true);
    quorum_put_add(&q, QUORUM_REPLY_VALUE, false);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert(quorum_put_done(&q));
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "{pw_val_unsatisfied,2,1}");
}

Test(quorum, put_overload_is_reported)
{
    char err[64];
    quorum_put_t q = put_q(D, D, D, 3);
    quorum_put_add(&q, QUORUM_REPLY_OVERLOAD, true);
    quorum_put_add(&q, QUORUM_REPLY_ERROR, true);
    cr_assert_eq(quorum_put_verdict(&q, err, sizeof err), QUORUM_FAILED);
    cr_assert_str_eq(err, "overload");
}

Test(quorum, put_every_outcome_is_decided_once_all_answered)
{
    /* whatever mix of answers, once all N are in the verdict is never PENDING */
    char err[64];
    quorum_reply_t kinds[] = {QUORUM_REPLY_VALUE, QUORUM_REPLY_ERROR, QUORUM_REPLY_OVERLOAD};
    uint32_t values[] = {1, 2, 3, NODE_QUORUM_ONE, NODE_QUORUM_QUORUM, NODE_QUORUM_ALL, 0};
    for (unsigned w = 0; w < 7; w++)
        for (unsigned dw = 0; dw < 7; dw++)
            for (unsigned pw = 0; pw < 7; pw++)
                for (unsigned mix = 0; mix < 27; mix++) {
                    bucket_props_t bp = defaults();
                    quorum_put_t q;
                    if (quorum_put_init(&q, &bp, 3, values[w], values[dw], values[pw], 3, 3, err,
                                        sizeof err) != 0)
                        continue;
                    unsigned m = mix;
                    for (int i = 0; i < 3; i++, m /= 3)
                        quorum_put_add(&q, kinds[m % 3], true);
                    cr_assert_neq(quorum_put_verdict(&q, err, sizeof err), QUORUM_PENDING);
                }
}

Test(quorum, get_every_outcome_is_decided_once_all_answered)
{
    char err[64];
    quorum_reply_t kinds[] = {QUORUM_REPLY_VALUE, QUORUM_REPLY_TOMBSTONE, QUORUM_REPLY_NOTFOUND,
                              QUORUM_REPLY_ERROR, QUORUM_REPLY_OVERLOAD};
    uint32_t values[] = {1, 2, 3, NODE_QUORUM_ONE, NODE_QUORUM_QUORUM, NODE_QUORUM_ALL, 0};
    for (unsigned r = 0; r < 7; r++)
        for (unsigned pr = 0; pr < 7; pr++)
            for (int nfok = 0; nfok < 2; nfok++)
                for (int bq = 0; bq < 2; bq++)
                    for (unsigned mix = 0; mix < 125; mix++) {
                        bucket_props_t bp = defaults();
                        quorum_get_t q;
                        if (quorum_get_init(&q, &bp, 3, values[r], values[pr], nfok, bq, 3, 3, err,
                                            sizeof err) != 0)
                            continue;
                        unsigned m = mix;
                        for (int i = 0; i < 3; i++, m /= 5)
                            quorum_get_add(&q, kinds[m % 5], true);
                        cr_assert(quorum_get_done(&q));
                        cr_assert_neq(quorum_get_verdict(&q, err, sizeof err), QUORUM_PENDING);
                    }
}

/* ---------------------------------------------------------------- read repair and reaping */

static store_actor_t actor(uint32_t p)
{
    return store_actor_make(42, p, 1);
}

Test(quorum, repair_goes_to_notfound_and_dominated_replicas)
{
    store_vclock_t merged = STORE_VCLOCK_INIT, old = STORE_VCLOCK_INIT, same = STORE_VCLOCK_INIT,
                   other = STORE_VCLOCK_INIT;
    store_actor_t a = actor(1), b = actor(2);
    store_vclock_increment(&old, &a, 100);
    store_vclock_copy(&merged, &old);
    store_vclock_increment(&merged, &b, 101);
    store_vclock_copy(&same, &merged);
    store_vclock_increment(&other, &b, 101);
    store_vclock_increment(&other, &b, 102); /* b:2, not covered by merged (b:1) */

    cr_assert(quorum_needs_repair(QUORUM_REPLY_NOTFOUND, &merged, NULL));
    cr_assert(quorum_needs_repair(QUORUM_REPLY_VALUE, &merged, &old));
    cr_assert(quorum_needs_repair(QUORUM_REPLY_TOMBSTONE, &merged, &old));
    cr_assert_not(quorum_needs_repair(QUORUM_REPLY_VALUE, &merged, &same));
    cr_assert_not(quorum_needs_repair(QUORUM_REPLY_VALUE, &merged, &other)); /* not dominated */
    cr_assert_not(quorum_needs_repair(QUORUM_REPLY_ERROR, &merged, NULL));
    cr_assert_not(quorum_needs_repair(QUORUM_REPLY_OVERLOAD, &merged, NULL));
    cr_assert_not(quorum_needs_repair(QUORUM_REPLY_NOTFOUND, NULL, NULL)); /* nothing anywhere */
    store_vclock_clear(&merged);
    store_vclock_clear(&old);
    store_vclock_clear(&same);
    store_vclock_clear(&other);
}

Test(quorum, reap_only_when_every_replica_holds_the_tombstone)
{
    cr_assert(quorum_may_reap(true, 3, 3, 3, 0));
    cr_assert_not(quorum_may_reap(false, 3, 3, 3, 0)); /* a live value */
    cr_assert_not(quorum_may_reap(true, 2, 3, 3, 0));  /* one replica did not answer */
    cr_assert_not(quorum_may_reap(true, 3, 3, 3, 1));  /* a repair is pending */
    cr_assert_not(quorum_may_reap(true, 2, 2, 3, 0));  /* a custom, lower N */
}
