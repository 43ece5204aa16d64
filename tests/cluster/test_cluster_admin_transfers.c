/*
 * test_cluster_admin_transfers.c — `cairn-admin transfer-limit` and `cairn-admin transfers`
 * against real cairnd processes: the asked node gathers every member's answer.
 *
 *   - transfer-limit shows every member's limit (the default 2), sets it on every member or
 *     on one, refuses 0, refuses a node that is not a member, and names a member it could
 *     not reach (exit status 1).
 *   - transfers, asked of nodes that send nothing, lists the transfers the old owner runs
 *     while two nodes join under data (source, target, state, objects), those that wait,
 *     the limit each member runs with; with the old owner's limit set to 1 at run time it
 *     never runs two at once; and at the end every node says "No transfers active".
 */
#include "tests/cluster/cluster_test.h"

#define KEYS 4000 /* ~750 objects per partition: each transfer takes several batches */

/* ---------------------------------------------------------------- helpers */

/* cairn-admin that must fail: returns its exit status, *err its stderr (caller frees). */
static int admin_fails(cl_cluster_t *c, size_t i, char **out, char **err, char *const cmd[])
{
    static int seq;
    char tag[32], path[400];
    snprintf(tag, sizeof tag, "adminf-%d", ++seq);
    int st = ct_admin(&c->nodes[i].n, tag, cmd);
    snprintf(path, sizeof path, "%s/%s.out", c->nodes[i].n.dir, tag);
    *out = ct_slurp(path);
    snprintf(path, sizeof path, "%s/%s.err", c->nodes[i].n.dir, tag);
    *err = ct_slurp(path);
    cr_assert_neq(st, 0, "cairn-admin %s %s on node %zu succeeded:\n%s", cmd[0],
                  cmd[1] ? cmd[1] : "", i + 1, *out);
    return st;
}

/* `"node":"<name>","answered":true,"limit":<limit>` is in the JSON js. */
static bool has_limit(const char *js, const char *name, unsigned limit)
{
    char want[256];
    snprintf(want, sizeof want, "{\"node\":\"%s\",\"answered\":true,\"limit\":%u", name, limit);
    return strstr(js, want) != NULL;
}

static void assert_limits(cl_cluster_t *c, size_t via, const unsigned limits[])
{
    char *js = cl_admin_ok(c, via, (char *const[]){"--json", "transfer-limit", NULL});
    for (size_t i = 0; i < c->count; i++)
        cr_assert(has_limit(js, c->nodes[i].name, limits[i]),
                  "node %zu's limit is not %u, asked via node %zu:\n%s", i + 1, limits[i],
                  via + 1, js);
    free(js);
}

static void write_keys(cl_cluster_t *c, size_t via, int count)
{
    cairn_t *k = cl_connect(c, via);
    cairn_put_opts_t o = {.w = 3};
    for (int i = 0; i < count; i++) {
        char key[64], value[96];
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(value, sizeof value, "value of key-%d", i);
        int rc = cairn_put(k, cl_buf("tb"), cl_buf(key), cl_buf(value), &o, NULL);
        cr_assert_eq(rc, CAIRN_OK, "put %s: %s: %s", key, cairn_strerror(rc), cairn_errmsg(k));
    }
    cairn_close(k);
}

/* What one `--json transfers` answer says about the active list (objects hold no nested
 * braces, so each is the text up to its closing brace). */
typedef struct seen_s {
    bool running;     /* a transfer from `source` to one of `targets`, sending */
    unsigned sending; /* transfers `source` is sending at once */
    bool waiting;     /* an ownership change waits for a slot */
} seen_t;

static seen_t look(const char *js, const char *source, const char *const targets[])
{
    seen_t s = {0};
    const char *a = strstr(js, "\"active\":[");
    const char *end = a ? strstr(a, "],\"waiting\":[") : NULL;
    cr_assert(a && end, "no active/waiting lists in:\n%s", js);
    s.waiting = strncmp(end, "],\"waiting\":[{", 14) == 0;
    char from[160];
    snprintf(from, sizeof from, "\"source\":\"%s\"", source);
    for (const char *o = strchr(a, '{'); o && o < end; o = strchr(o + 1, '{')) {
        const char *close = strchr(o, '}');
        cr_assert(close);
        size_t len = (size_t)(close - o);
        char *obj = strndup(o, len);
        cr_assert(obj);
        bool mine = strstr(obj, from) != NULL, sending = strstr(obj, "\"state\":\"sending\"");
        s.sending += mine && sending;
        for (int t = 0; mine && sending && targets[t]; t++) {
            char to[400];
            snprintf(to, sizeof to, "%s,\"target\":\"%s\"", from, targets[t]);
            s.running |= strstr(obj, to) != NULL && strstr(obj, "\"objects\":") != NULL;
        }
        free(obj);
    }
    return s;
}

/* ---------------------------------------------------------------- transfer-limit */

Test(cluster_admin_transfers, transfer_limit_show_set_and_refuse, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "cltlimit");
    cl_start_all(&c);
    cl_form(&c);

    /* Every member's limit, from any member: the default. */
    assert_limits(&c, 0, (const unsigned[]){2, 2, 2});
    char *out = cl_admin_ok(&c, 2, (char *const[]){"transfer-limit", NULL});
    for (size_t i = 0; i < 3; i++)
        cr_assert(strstr(out, c.nodes[i].name), "transfer-limit lacks node %zu:\n%s", i + 1, out);
    free(out);

    /* Set on every member through node 2, read back through node 3. */
    out = cl_admin_ok(&c, 1, (char *const[]){"transfer-limit", "1", NULL});
    cr_assert(strstr(out, "transfer limit set to 1 on 3 of 3 member(s)"), "%s", out);
    free(out);
    assert_limits(&c, 2, (const unsigned[]){1, 1, 1});

    /* One member alone, set through another one. */
    out = cl_admin_ok(&c, 0, (char *const[]){"transfer-limit", c.nodes[2].name, "3", NULL});
    cr_assert(strstr(out, "set to 3"), "%s", out);
    free(out);
    assert_limits(&c, 1, (const unsigned[]){1, 1, 3});
    out = cl_admin_ok(&c, 0, (char *const[]){"transfer-limit", c.nodes[0].name, "4", NULL});
    free(out);
    assert_limits(&c, 2, (const unsigned[]){4, 1, 3});

    /* 0 is refused, on all members or one, and nothing changes. */
    char *err = NULL;
    int st = admin_fails(&c, 0, &out, &err, (char *const[]){"transfer-limit", "0", NULL});
    cr_assert_eq(st, 2, "exit status %d for transfer-limit 0", st);
    cr_assert(strstr(err, "at least 1"), "stderr: %s", err);
    free(out);
    free(err);
    st = admin_fails(&c, 0, &out, &err,
                     (char *const[]){"transfer-limit", c.nodes[1].name, "0", NULL});
    cr_assert_eq(st, 2);
    cr_assert(strstr(err, "at least 1"), "stderr: %s", err);
    free(out);
    free(err);
    st = admin_fails(&c, 0, &out, &err, (char *const[]){"transfer-limit", "two", NULL});
    cr_assert_eq(st, 2);
    cr_assert(strstr(err, "not a number"), "stderr: %s", err);
    free(out);
    free(err);
    assert_limits(&c, 0, (const unsigned[]){4, 1, 3});

    /* A node that is not a member is refused by the node. */
    st = admin_fails(&c, 0, &out, &err,
                     (char *const[]){"transfer-limit", "stranger@127.0.0.1:1", "2", NULL});
    cr_assert_eq(st, 1);
    cr_assert(strstr(err, "not_member"), "stderr: %s", err);
    free(out);
    free(err);

    /* A member that is down: the others take the limit, and it is named. */
    ct_node_stop(&c.nodes[2].n, SIGTERM);
    st = admin_fails(&c, 0, &out, &err, (char *const[]){"transfer-limit", "2", NULL});
    cr_assert_eq(st, 1);
    cr_assert(strstr(out, "on 2 of 3 member(s); not reached: "), "%s", out);
    cr_assert(strstr(out, c.nodes[2].name), "the unreachable node is not named:\n%s", out);
    cr_assert(strstr(err, "could not be reached"), "stderr: %s", err);
    free(out);
    free(err);
    char *js = cl_admin_ok(&c, 1, (char *const[]){"--json", "transfer-limit", NULL});
    cr_assert(has_limit(js, c.nodes[0].name, 2) && has_limit(js, c.nodes[1].name, 2), "%s", js);
    char down[160];
    snprintf(down, sizeof down, "{\"node\":\"%s\",\"answered\":false,", c.nodes[2].name);
    cr_assert(strstr(js, down), "the stopped node is not reported as not answering:\n%s", js);
    free(js);

    /* Run time only: the restarted node has its configured limit again. */
    cl_start(&c, 2, NULL);
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (;;) {
        js = NULL;
        bool ok = cl_admin(&c, 0, &js, (char *const[]){"--json", "transfer-limit", NULL}) == 0 &&
                  has_limit(js, c.nodes[2].name, 2);
        if (ok)
            break;
        cr_assert(ct_now_ms() < end, "the restarted node does not answer with limit 2:\n%s", js);
        free(js);
        ct_sleep_ms(300);
    }
    free(js);
    cl_cleanup(&c);
}

/* ---------------------------------------------------------------- transfers */

Test(cluster_admin_transfers, transfers_of_every_member_during_a_join, .timeout = 600)
{
    cl_cluster_t c;
    cl_init(&c, 3, "cltransfers");
    cl_start(&c, 0, NULL);
    write_keys(&c, 0, KEYS);
    /* Alone, nothing moves. */
    char *alone = cl_admin_ok(&c, 0, (char *const[]){"transfers", NULL});
    cr_assert(strncmp(alone, "No transfers active\n", 20) == 0, "%s", alone);
    free(alone);
    /* One transfer at a time from node 1, set at run time. */
    free(cl_admin_ok(&c, 0, (char *const[]){"transfer-limit", "1", NULL}));
    cl_start(&c, 1, NULL);
    cl_start(&c, 2, NULL);
    for (size_t i = 1; i < 3; i++)
        free(cl_admin_ok(&c, i, (char *const[]){"cluster", "join", c.nodes[0].name, NULL}));
    for (size_t i = 1; i < 3; i++) {
        char want[128];
        snprintf(want, sizeof want, "\"%s\"", c.nodes[i].name);
        cl_wait_members(&c, 0, (const char *const[]){want, NULL}, NULL);
    }
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "plan", NULL}));
    free(cl_admin_ok(&c, 0, (char *const[]){"cluster", "commit", NULL}));

    /* Asked of the joining nodes (which send nothing), alternately as JSON and for people:
     * node 1's transfers show up with source, target and progress, others wait, and node 1
     * never sends two at once. */
    const char *const targets[] = {c.nodes[1].name, c.nodes[2].name, NULL};
    bool json_running = false, human_running = false, waited = false;
    char route[2][200];
    for (size_t t = 0; t < 2; t++)
        snprintf(route[t], sizeof route[t], "%s -> %s", c.nodes[0].name, targets[t]);
    int64_t end = ct_now_ms() + CL_SETTLE_MS;
    for (unsigned round = 0; !(json_running && human_running && waited); round++) {
        char *out = NULL;
        if (round % 2 == 0) {
            cr_assert_eq(cl_admin(&c, 1, &out, (char *const[]){"--json", "transfers", NULL}), 0,
                         "%s", out);
            seen_t s = look(out, c.nodes[0].name, targets);
            cr_assert_leq(s.sending, 1, "node 1 sends %u transfers at once with limit 1:\n%s",
                          s.sending, out);
            json_running |= s.running;
            waited |= s.waiting;
            char lim[200];
            snprintf(lim, sizeof lim, "{\"node\":\"%s\",\"answered\":true,\"limit\":1",
                     c.nodes[0].name);
            cr_assert(strstr(out, lim), "node 1's limit 1 is not in:\n%s", out);
        } else {
            cr_assert_eq(cl_admin(&c, 2, &out, (char *const[]){"transfers", NULL}), 0, "%s", out);
            const char *act = strstr(out, "Active transfers:\n");
            const char *wait = strstr(out, "Waiting ownership transfers:\n");
            for (const char *line = act; line && (!wait || line < wait) && !human_running;
                 line = strchr(line + 1, '\n')) {
                const char *eol = strchr(line + 1, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                char *l = strndup(line, len);
                cr_assert(l);
                human_running = strstr(l, "ownership") && strstr(l, " sending") &&
                                (strstr(l, route[0]) || strstr(l, route[1]));
                free(l);
            }
        }
        if (!(json_running && human_running && waited))
            cr_assert(ct_now_ms() < end,
                      "within %d ms: running transfer in JSON %d, for people %d, waiting %d; "
                      "last:\n%s",
                      CL_SETTLE_MS, json_running, human_running, waited, out);
        free(out);
        ct_sleep_ms(20);
    }

    cl_wait_members(&c, 0, (const char *const[]){"\"pending\":0", NULL},
                    (const char *const[]){"\"joining\"", NULL});
    /* Everything moved, the old owner's copies handed off and retired: nothing anywhere. */
    cl_wait_transfers_idle(&c, 1);
    for (size_t i = 0; i < 3; i++) {
        char *js = cl_admin_ok(&c, i, (char *const[]){"--json", "transfers", NULL});
        cr_assert(strstr(js, "\"message\":\"No transfers active\""), "node %zu:\n%s", i + 1, js);
        cr_assert(strstr(js, "\"active\":[],\"waiting\":[]"), "node %zu:\n%s", i + 1, js);
        cr_assert(!strstr(js, "\"answered\":false"), "node %zu:\n%s", i + 1, js);
        free(js);
    }
    cl_cleanup(&c);
}
