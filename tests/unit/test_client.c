/*
 * test_client.c — libcairn (client/cairn.h) against a real cairnd: every call of the header,
 * siblings made by concurrent writes and resolved with the context, conditional puts,
 * listing, bucket properties, failover and the error codes. Cases a real server cannot be
 * made to produce (a wrong message code, a malformed body, an error in the middle of a
 * stream, silence) are driven by a scripted fake server on a local socket.
 *
 * One cairnd (<BUILD>/<variant>/bin/cairnd, or $CAIRND) is started by main() before the
 * tests, on ports the kernel picks with a temporary data dir, and stopped at the end (see
 * cairnd_test.h); the tests (separate processes) find it through $CAIRN_TEST_HOST and use
 * buckets named after themselves.
 */
#include "cairnd_test.h"
#include "client/cairn.h"
#include "proto/riak.pb-c.h"

#include <poll.h>
#include <pthread.h>

/* The flags of every cairnd this suite starts: small objects and frames, so that the limits
 * can be reached cheaply. */
static char *const node_args[] = {"--ring-size", "8",
                                  "--set", "object.size.maximum=1048576",
                                  "--set", "object.size.warning_threshold=524288",
                                  "--set", "protobuf.max_frame_size=2097152",
                                  NULL};

static cairn_t *connect_to(const char *hosts)
{
    cairn_t *c = NULL;
    cairn_opts_t o = {.timeout_ms = 20000};
    int rc = cairn_connect(hosts, &o, &c);
    cr_assert_eq(rc, CAIRN_OK, "connect %s: %s: %s", hosts, cairn_strerror(rc),
                 cairn_errmsg(NULL));
    return c;
}

static cairn_t *connect_server(void)
{
    return connect_to(ct_shared_host());
}

#define OK(c, call)                                                                       \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        cr_assert_eq(rc_, CAIRN_OK, "%s: %s (%s)", #call, cairn_strerror(rc_),            \
                     cairn_errmsg(c));                                                    \
    } while (0)

#define EXPECT(c, want, call)                                                             \
    do {                                                                                  \
        int rc_ = (call);                                                                 \
        cr_assert_eq(rc_, (want), "%s: got %s (%s), want %s", #call, cairn_strerror(rc_), \
                     cairn_errmsg(c), cairn_strerror(want));                              \
    } while (0)

static bool buf_eq(cairn_buf_t b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

static cairn_object_t *get_ok(cairn_t *c, const char *bucket, const char *key)
{
    cairn_object_t *o = NULL;
    OK(c, cairn_get(c, CAIRN_S(bucket), CAIRN_S(key), NULL, &o));
    cr_assert(o);
    return o;
}

/* Asserts that bucket/key holds exactly one value, `value`. */
static void expect_single(cairn_t *c, const char *bucket, const char *key, const char *value)
{
    cairn_object_t *o = get_ok(c, bucket, key);
    cr_assert_eq(o->n_siblings, 1, "%s/%s: %zu siblings", bucket, key, o->n_siblings);
    cr_assert(buf_eq(o->siblings[0].value, value), "%s/%s: not \"%s\"", bucket, key, value);
    cairn_object_free(o);
}

static void put_text(cairn_t *c, const char *bucket, const char *key, const char *value)
{
    cairn_put_opts_t po = {.content_type = "text/plain"};
    OK(c, cairn_put(c, CAIRN_S(bucket), CAIRN_S(key), CAIRN_S(value), &po, NULL));
}

static bool has_sibling(const cairn_object_t *o, const char *value)
{
    for (size_t i = 0; i < o->n_siblings; i++)
        if (buf_eq(o->siblings[i].value, value))
            return true;
    return false;
}

/* ---------------------------------------------------------------- without a server */

TestSuite(client_offline, .timeout = 30);

Test(client_offline, strerror_has_a_distinct_text_per_code)
{
    for (int a = CAIRN_ETOOBIG; a <= CAIRN_OK; a++) {
        const char *ta = cairn_strerror(a);
        cr_assert(ta && *ta);
        cr_assert_str_neq(ta, "unknown error", "code %d has no text", a);
        for (int b = CAIRN_ETOOBIG; b < a; b++)
            cr_assert_str_neq(ta, cairn_strerror(b), "codes %d and %d share a text", a, b);
    }
    cr_assert_str_eq(cairn_strerror(-1000), "unknown error");
    cr_assert_str_eq(cairn_strerror(7), "unknown error");
}

Test(client_offline, bad_host_lists_are_refused_with_a_reason)
{
    static const char *const bad[] = {"", ",", "127.0.0.1:", "127.0.0.1:0", "h:65536",
                                      "h:80x", "h:-1", "[::1", "[::1]x", ":8087", "a:1,,b:2",
                                      " , a:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cairn_t *c = (cairn_t *)1;
        int rc = cairn_connect(bad[i], NULL, &c);
        cr_assert_eq(rc, CAIRN_EINVAL, "'%s': got %s", bad[i], cairn_strerror(rc));
        cr_assert_null(c, "'%s': *out must be NULL on failure", bad[i]);
        cr_assert(*cairn_errmsg(NULL), "'%s': no reason given", bad[i]);
    }
    cairn_t *c = NULL;
    cr_assert_eq(cairn_connect(NULL, NULL, &c), CAIRN_EINVAL);
    cr_assert_eq(cairn_connect("a:1", NULL, NULL), CAIRN_EINVAL);
}

Test(client_offline, no_listening_node_is_ECONNECT_naming_each_node)
{
    int p1 = ct_unused_port(), p2 = ct_unused_port();
    char hosts[128], n1[32], n2[32];
    snprintf(n1, sizeof n1, "127.0.0.1:%d", p1);
    snprintf(n2, sizeof n2, "127.0.0.1:%d", p2);
    snprintf(hosts, sizeof hosts, " %s , %s ", n1, n2);
    cairn_t *c = (cairn_t *)1;
    cr_assert_eq(cairn_connect(hosts, NULL, &c), CAIRN_ECONNECT);
    cr_assert_null(c);
    cr_assert(strstr(cairn_errmsg(NULL), n1), "%s", cairn_errmsg(NULL));
    cr_assert(strstr(cairn_errmsg(NULL), n2), "%s", cairn_errmsg(NULL));
    cr_assert(strstr(cairn_errmsg(NULL), "refused"), "%s", cairn_errmsg(NULL));
}

Test(client_offline, unresolvable_host_is_ECONNECT)
{
    cairn_t *c = NULL;
    cairn_opts_t o = {.connect_timeout_ms = 500};
    cr_assert_eq(cairn_connect("no-such-host.invalid:8087", &o, &c), CAIRN_ECONNECT);
    cr_assert(strstr(cairn_errmsg(NULL), "no-such-host.invalid:8087"));
}

Test(client_offline, null_handles_and_frees_are_harmless)
{
    cr_assert_eq(cairn_ping(NULL), CAIRN_EINVAL);
    cr_assert_eq(cairn_get(NULL, CAIRN_S("b"), CAIRN_S("k"), NULL, NULL), CAIRN_EINVAL);
    cr_assert_str_eq(cairn_current_node(NULL), "");
    cairn_close(NULL);
    cairn_object_free(NULL);
    cairn_free(NULL);
}

/* ---------------------------------------------------------------- a scripted fake server */

/* One step: read one request frame, then write `reply` (may be empty), then maybe close. */
typedef struct fake_step {
    const uint8_t *reply;
    size_t len;
    bool close_after;
    bool silent;           /* read the request and then say nothing (until the end) */
} fake_step_t;

typedef struct fake {
    int listen_fd;
    int port;
    const fake_step_t *steps;
    size_t n_steps;
    pthread_t thread;
    uint8_t last_code;     /* code of the last request read */
} fake_t;

static bool read_n(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            return false;
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void *fake_main(void *arg)
{
    fake_t *f = arg;
    struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0)
        return NULL;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    for (size_t i = 0; i < f->n_steps; i++) {
        uint8_t hdr[4];
        if (!read_n(fd, hdr, 4))
            break;
        uint32_t len = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
        uint8_t *body = malloc(len ? len : 1);
        bool ok = read_n(fd, body, len);
        f->last_code = len ? body[0] : 0;
        free(body);
        if (!ok)
            break;
        if (f->steps[i].silent) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            poll(&q, 1, 10000); /* until the client gives up and closes */
            break;
        }
        if (f->steps[i].len && write(fd, f->steps[i].reply, f->steps[i].len) < 0)
            break;
        if (f->steps[i].close_after)
            break;
    }
    close(fd);
    return NULL;
}

static void fake_start(fake_t *f, const fake_step_t *steps, size_t n)
{
    memset(f, 0, sizeof *f);
    f->steps = steps;
    f->n_steps = n;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(f->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(f->listen_fd, 4), 0);
    cr_assert_eq(getsockname(f->listen_fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

static cairn_t *connect_fake(const fake_t *f, uint32_t timeout_ms)
{
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", f->port);
    cairn_t *c = NULL;
    cairn_opts_t o = {.timeout_ms = timeout_ms};
    cr_assert_eq(cairn_connect(host, &o, &c), CAIRN_OK, "%s", cairn_errmsg(NULL));
    return c;
}

/* A frame: header, code, the packed message (NULL: no body). Free it. */
static uint8_t *frame(uint8_t code, const ProtobufCMessage *m, size_t *len)
{
    size_t body = m ? protobuf_c_message_get_packed_size(m) : 0;
    uint8_t *f = malloc(5 + body);
    uint32_t l = (uint32_t)body + 1;
    f[0] = (uint8_t)(l >> 24), f[1] = (uint8_t)(l >> 16), f[2] = (uint8_t)(l >> 8);
    f[3] = (uint8_t)l, f[4] = code;
    if (m)
        protobuf_c_message_pack(m, f + 5);
    *len = 5 + body;
    return f;
}

static uint8_t *error_frame(const char *text, size_t *len)
{
    Riak__RpbErrorResp e = RIAK__RPB_ERROR_RESP__INIT;
    e.has_errmsg = 1;
    e.errmsg = (ProtobufCBinaryData){strlen(text), (uint8_t *)text};
    e.has_errcode = 1;
    return frame(0, &e.base, len);
}

/* The server's error texts map to codes; the text is kept in cairn_errmsg. */
Test(client_offline, server_error_texts_map_to_codes)
{
    static const struct {
        const char *text;
        bool conditional;
        int want;
    } cases[] = {
        {"overload", false, CAIRN_EOVERLOAD},
        {"timeout", false, CAIRN_ETIMEOUT},
        {"match_found", false, CAIRN_EEXISTS},
        {"modified", true, CAIRN_EMODIFIED},
        {"notfound", true, CAIRN_EMODIFIED},
        {"notfound", false, CAIRN_ESERVER},
        {"{too_large,70000000}", false, CAIRN_ETOOBIG},
        {"Frame of 70000000 bytes exceeds the maximum of 67108864 bytes", false, CAIRN_ETOOBIG},
        {"Object exceeds maximum size (2097152 > 1048576 bytes)", false, CAIRN_ETOOBIG},
        {"{r_val_unsatisfied,2,1}", false, CAIRN_ESERVER},
    };
    size_t n = sizeof cases / sizeof cases[0];
    uint8_t *frames[16];
    fake_step_t steps[16];
    for (size_t i = 0; i < n; i++) {
        frames[i] = error_frame(cases[i].text, &steps[i].len);
        steps[i] = (fake_step_t){frames[i], steps[i].len, false, false};
    }
    fake_t f;
    fake_start(&f, steps, n);
    cairn_t *c = connect_fake(&f, 5000);
    for (size_t i = 0; i < n; i++) {
        cairn_put_opts_t po = {.if_not_modified = cases[i].conditional,
                               .context = CAIRN_S("ctx")};
        int rc = cairn_put(c, CAIRN_S("b"), CAIRN_S("k"), CAIRN_S("v"), &po, NULL);
        cr_assert_eq(rc, cases[i].want, "'%s': got %s", cases[i].text, cairn_strerror(rc));
        cr_assert_str_eq(cairn_errmsg(c), cases[i].text);
        /* An error answer leaves the connection usable. */
        cr_assert_str_neq(cairn_current_node(c), "");
    }
    cairn_close(c);
    fake_stop(&f);
    for (size_t i = 0; i < n; i++)
        free(frames[i]);
}

/* A wrong code or a malformed body is CAIRN_EPROTO and drops the connection. */
Test(client_offline, malformed_answers_are_EPROTO_and_drop_the_connection)
{
    size_t ping_len;
    uint8_t *ping = frame(2, NULL, &ping_len);
    static const uint8_t bad_body[] = {0, 0, 0, 3, 10, 0xff, 0xff}; /* GetResp, junk */
    static const uint8_t empty_frame[] = {0, 0, 0, 0};
    fake_step_t s1[] = {{ping, ping_len, false, false}}; /* ping answer to a get */
    fake_step_t s2[] = {{bad_body, sizeof bad_body, false, false}};
    fake_step_t s3[] = {{empty_frame, sizeof empty_frame, false, false}};
    const fake_step_t *scripts[] = {s1, s2, s3};
    for (size_t i = 0; i < 3; i++) {
        fake_t f;
        fake_start(&f, scripts[i], 1);
        cairn_t *c = connect_fake(&f, 5000);
        cairn_object_t *o = (cairn_object_t *)1;
        EXPECT(c, CAIRN_EPROTO, cairn_get(c, CAIRN_S("b"), CAIRN_S("k"), NULL, &o));
        cr_assert_null(o);
        cr_assert(*cairn_errmsg(c));
        cr_assert_str_eq(cairn_current_node(c), "", "connection kept after EPROTO");
        cairn_close(c);
        fake_stop(&f);
    }
    free(ping);
}

Test(client_offline, silence_is_ETIMEOUT_within_the_deadline)
{
    fake_step_t steps[] = {{NULL, 0, false, true}};
    fake_t f;
    fake_start(&f, steps, 1);
    cairn_t *c = connect_fake(&f, 300);
    int64_t t0 = ct_now_ms();
    EXPECT(c, CAIRN_ETIMEOUT, cairn_ping(c));
    int64_t took = ct_now_ms() - t0;
    cr_assert(took >= 250 && took < 3000, "took %lld ms", (long long)took);
    cr_assert_str_eq(cairn_current_node(c), "");
    cairn_close(c);
    fake_stop(&f);
}

Test(client_offline, answer_above_max_frame_bytes_is_ETOOBIG)
{
    static const uint8_t huge_hdr[] = {0x10, 0, 0, 0, 10}; /* 256 MiB GetResp */
    fake_step_t steps[] = {{huge_hdr, sizeof huge_hdr, false, false}};
    fake_t f;
    fake_start(&f, steps, 1);
    cairn_t *c = connect_fake(&f, 5000);
    cairn_object_t *o = NULL;
    EXPECT(c, CAIRN_ETOOBIG, cairn_get(c, CAIRN_S("b"), CAIRN_S("k"), NULL, &o));
    cairn_close(c);
    fake_stop(&f);
}

/* The request left, then the connection broke: the outcome is unknown, so no retry. */
Test(client_offline, connection_closed_after_the_request_is_EIO)
{
    fake_step_t steps[] = {{NULL, 0, true, false}};
    fake_t f;
    fake_start(&f, steps, 1);
    cairn_t *c = connect_fake(&f, 5000);
    EXPECT(c, CAIRN_EIO, cairn_put(c, CAIRN_S("b"), CAIRN_S("k"), CAIRN_S("v"), NULL, NULL));
    cr_assert_eq(f.last_code, 11);
    cairn_close(c);
    fake_stop(&f);
}

/* A connection the server closed while idle is replaced before the request is sent: the
 * request goes to the next node and succeeds. */
Test(client_offline, idle_connection_closed_by_the_server_fails_over_before_sending)
{
    size_t n_ping;
    uint8_t *ping = frame(2, NULL, &n_ping);
    fake_step_t answer[] = {{ping, n_ping, false, false}};
    fake_t closer, good;
    fake_start(&closer, NULL, 0); /* accepts, then closes at once */
    fake_start(&good, answer, 1);
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,127.0.0.1:%d", closer.port, good.port);
    cairn_t *c = connect_to(hosts);
    char first[32], second[32];
    snprintf(first, sizeof first, "127.0.0.1:%d", closer.port);
    snprintf(second, sizeof second, "127.0.0.1:%d", good.port);
    cr_assert_str_eq(cairn_current_node(c), first);
    fake_stop(&closer); /* its close is done */
    usleep(50000);
    OK(c, cairn_ping(c));
    cr_assert_str_eq(cairn_current_node(c), second);
    cr_assert_eq(good.last_code, 1);
    cairn_close(c);
    fake_stop(&good);
    free(ping);
}

static int collect_names(void *arg, cairn_buf_t name)
{
    char *out = arg;
    strncat(out, name.data, name.len);
    strcat(out, ",");
    return 0;
}

/* Keys stream over several messages until done; an error mid-stream ends the call. */
Test(client_offline, listing_streams_until_done_and_stops_at_an_error)
{
    ProtobufCBinaryData k1[] = {{1, (uint8_t *)"a"}, {1, (uint8_t *)"b"}};
    ProtobufCBinaryData k2[] = {{1, (uint8_t *)"c"}};
    Riak__RpbListKeysResp r1 = RIAK__RPB_LIST_KEYS_RESP__INIT;
    r1.n_keys = 2, r1.keys = k1;
    Riak__RpbListKeysResp r2 = RIAK__RPB_LIST_KEYS_RESP__INIT;
    r2.n_keys = 1, r2.keys = k2;
    Riak__RpbListKeysResp done = RIAK__RPB_LIST_KEYS_RESP__INIT;
    done.has_done = 1, done.done = 1;
    size_t l1, l2, l3, le;
    uint8_t *f1 = frame(18, &r1.base, &l1), *f2 = frame(18, &r2.base, &l2);
    uint8_t *f3 = frame(18, &done.base, &l3), *fe = error_frame("timeout", &le);
    uint8_t all_ok[512], with_err[512];
    memcpy(all_ok, f1, l1), memcpy(all_ok + l1, f2, l2), memcpy(all_ok + l1 + l2, f3, l3);
    memcpy(with_err, f1, l1), memcpy(with_err + l1, fe, le);
    size_t n_ping;
    uint8_t *ping = frame(2, NULL, &n_ping);
    fake_step_t steps[] = {{all_ok, l1 + l2 + l3, false, false},
                           {with_err, l1 + le, false, false},
                           {ping, n_ping, false, false}};
    fake_t f;
    fake_start(&f, steps, 3);
    cairn_t *c = connect_fake(&f, 5000);
    char names[64] = "";
    OK(c, cairn_list_keys(c, NULL, CAIRN_S("b"), 0, collect_names, names));
    cr_assert_str_eq(names, "a,b,c,");
    names[0] = '\0';
    EXPECT(c, CAIRN_ETIMEOUT, cairn_list_keys(c, NULL, CAIRN_S("b"), 0, collect_names, names));
    cr_assert_str_eq(names, "a,b,");
    OK(c, cairn_ping(c)); /* an error answer leaves the connection in step */
    cairn_close(c);
    fake_stop(&f);
    free(f1), free(f2), free(f3), free(fe), free(ping);
}

/* ---------------------------------------------------------------- against cairnd */

TestSuite(client, .timeout = 60);

Test(client, ping_info_and_current_node)
{
    cairn_t *c = connect_server();
    OK(c, cairn_ping(c));
    cr_assert_str_eq(cairn_current_node(c), ct_shared_host());
    char node[128], version[128];
    OK(c, cairn_server_info(c, node, sizeof node, version, sizeof version));
    cr_assert(*node, "empty node name");
    cr_assert(*version, "empty server version");
    char tiny[4];
    OK(c, cairn_server_info(c, tiny, sizeof tiny, NULL, 0));
    cr_assert_eq(strlen(tiny), 3, "truncated to fit with its NUL");
    cr_assert_str_eq(cairn_errmsg(c), "");
    cairn_close(c);
}

Test(client, client_id_set_and_get)
{
    cairn_t *c = connect_server();
    cairn_buf_t id = {0};
    OK(c, cairn_get_client_id(c, &id));
    cairn_free((void *)id.data);
    OK(c, cairn_set_client_id(c, CAIRN_S("abcd")));
    OK(c, cairn_get_client_id(c, &id));
    cr_assert(buf_eq(id, "abcd"), "client id %.*s", (int)id.len, (const char *)id.data);
    cairn_free((void *)id.data);
    cairn_close(c);
}

Test(client, put_get_round_trip_with_metadata)
{
    cairn_t *c = connect_server();
    cairn_pair_t meta[] = {{CAIRN_S("owner"), CAIRN_S("alice")}, {CAIRN_S("n"), CAIRN_S("1")}};
    cairn_pair_t idx[] = {{CAIRN_S("email_bin"), CAIRN_S("a@example.com")}};
    cairn_put_opts_t po = {.content_type = "text/plain", .charset = "utf-8",
                           .content_encoding = "identity", .usermeta = meta, .n_usermeta = 2,
                           .indexes = idx, .n_indexes = 1};
    OK(c, cairn_put(c, CAIRN_S("rt"), CAIRN_S("k1"), CAIRN_S("hello"), &po, NULL));
    cairn_object_t *o = get_ok(c, "rt", "k1");
    cr_assert_eq(o->n_siblings, 1);
    const cairn_content_t *s = &o->siblings[0];
    cr_assert(buf_eq(s->value, "hello"));
    cr_assert_str_eq(s->value.data, "hello", "values are NUL-terminated");
    cr_assert_str_eq(s->content_type, "text/plain");
    cr_assert_str_eq(s->charset, "utf-8");
    cr_assert_str_eq(s->content_encoding, "identity");
    cr_assert_eq(s->n_usermeta, 2);
    bool owner = false;
    for (size_t i = 0; i < s->n_usermeta; i++)
        owner = owner || (buf_eq(s->usermeta[i].key, "owner") &&
                          buf_eq(s->usermeta[i].value, "alice"));
    cr_assert(owner, "usermeta owner=alice lost");
    cr_assert_eq(s->n_indexes, 1);
    cr_assert(buf_eq(s->indexes[0].key, "email_bin"));
    int64_t now = time(NULL);
    cr_assert(s->last_mod > now - 600 && s->last_mod < now + 600, "last_mod %u", s->last_mod);
    cr_assert(!s->deleted);
    cr_assert_gt(o->context.len, 0, "no context");
    cairn_object_free(o);

    /* Binary bucket, key and value (NUL bytes included); the default content type. */
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0, 'x'};
    cairn_buf_t bk = {"\x00k\xfe", 3}, bb = {"b\x00in", 4}, bv = {bin, sizeof bin};
    OK(c, cairn_put(c, bb, bk, bv, NULL, NULL));
    OK(c, cairn_get(c, bb, bk, NULL, &o));
    cr_assert_eq(o->n_siblings, 1);
    cr_assert_eq(o->siblings[0].value.len, sizeof bin);
    cr_assert_eq(memcmp(o->siblings[0].value.data, bin, sizeof bin), 0);
    cr_assert_str_eq(o->siblings[0].content_type, "application/octet-stream");
    cairn_object_free(o);

    /* An empty value is a value. */
    OK(c, cairn_put(c, CAIRN_S("rt"), CAIRN_S("empty"), (cairn_buf_t){NULL, 0}, NULL, NULL));
    o = get_ok(c, "rt", "empty");
    cr_assert_eq(o->n_siblings, 1);
    cr_assert_eq(o->siblings[0].value.len, 0);
    cairn_object_free(o);
    cairn_close(c);
}

Test(client, get_of_a_missing_key_is_ENOTFOUND)
{
    cairn_t *c = connect_server();
    cairn_object_t *o = (cairn_object_t *)1;
    EXPECT(c, CAIRN_ENOTFOUND, cairn_get(c, CAIRN_S("nf"), CAIRN_S("nobody"), NULL, &o));
    cr_assert_null(o);
    OK(c, cairn_ping(c));
    cairn_close(c);
}

/* Two writes without a context in an allow_mult bucket are concurrent: two siblings. One
 * write with the context of the read that saw both resolves them. */
Test(client, siblings_from_concurrent_writes_resolved_with_the_context)
{
    cairn_t *c = connect_server();
    cairn_bucket_props_t p = {.fields = CAIRN_PROP_ALLOW_MULT, .allow_mult = true};
    OK(c, cairn_bucket_set(c, NULL, CAIRN_S("sib"), &p));
    put_text(c, "sib", "k", "one");
    put_text(c, "sib", "k", "two");
    cairn_object_t *o = get_ok(c, "sib", "k");
    cr_assert_eq(o->n_siblings, 2, "siblings: %zu", o->n_siblings);
    cr_assert(has_sibling(o, "one") && has_sibling(o, "two"));
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(o->siblings[i].content_type, "text/plain");
        cr_assert_gt(o->siblings[i].last_mod, 0);
    }

    cairn_put_opts_t po = {.context = o->context, .content_type = "text/plain",
                           .return_body = true};
    cairn_object_t *after = NULL;
    OK(c, cairn_put(c, CAIRN_S("sib"), CAIRN_S("k"), CAIRN_S("one+two"), &po, &after));
    cairn_object_free(o);
    cr_assert_eq(after->n_siblings, 1);
    cr_assert(buf_eq(after->siblings[0].value, "one+two"));
    cairn_object_free(after);

    expect_single(c, "sib", "k", "one+two");
    cairn_close(c);
}

Test(client, allow_mult_false_keeps_one_value)
{
    cairn_t *c = connect_server();
    put_text(c, "single", "k", "one");
    put_text(c, "single", "k", "two");
    expect_single(c, "single", "k", "two"); /* the newer write wins */
    cairn_close(c);
}

Test(client, return_body_and_return_head)
{
    cairn_t *c = connect_server();
    cairn_put_opts_t po = {.content_type = "text/plain", .return_body = true};
    cairn_object_t *o = NULL;
    OK(c, cairn_put(c, CAIRN_S("rb"), CAIRN_S("k"), CAIRN_S("body"), &po, &o));
    cr_assert_eq(o->n_siblings, 1);
    cr_assert(buf_eq(o->siblings[0].value, "body"));
    cr_assert_gt(o->context.len, 0);
    cr_assert_eq(o->key.len, 0, "key only when the server made it");
    /* The returned context is current: a conditional put with it succeeds. */
    cairn_put_opts_t cond = {.context = o->context, .if_not_modified = true};
    OK(c, cairn_put(c, CAIRN_S("rb"), CAIRN_S("k"), CAIRN_S("body2"), &cond, NULL));
    cairn_object_free(o);

    cairn_put_opts_t head = {.return_head = true};
    OK(c, cairn_put(c, CAIRN_S("rb"), CAIRN_S("k2"), CAIRN_S("value"), &head, &o));
    cr_assert_eq(o->n_siblings, 1);
    cr_assert_eq(o->siblings[0].value.len, 0, "return_head leaves the value out");
    cairn_object_free(o);

    /* Without return_body: an object with no siblings (out may also be NULL). */
    OK(c, cairn_put(c, CAIRN_S("rb"), CAIRN_S("k3"), CAIRN_S("v"), NULL, &o));
    cr_assert_eq(o->n_siblings, 0);
    cairn_object_free(o);
    cairn_close(c);
}

Test(client, server_generated_key)
{
    cairn_t *c = connect_server();
    cairn_object_t *o = NULL;
    OK(c, cairn_put(c, CAIRN_S("gen"), (cairn_buf_t){NULL, 0}, CAIRN_S("made"), NULL, &o));
    cr_assert_gt(o->key.len, 0, "no key returned");
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)o->key.len, (const char *)o->key.data);
    cairn_object_free(o);
    o = get_ok(c, "gen", key);
    cr_assert(buf_eq(o->siblings[0].value, "made"));
    cairn_object_free(o);
    /* Two such puts make two keys. */
    cairn_object_t *o2 = NULL;
    OK(c, cairn_put(c, CAIRN_S("gen"), (cairn_buf_t){NULL, 0}, CAIRN_S("x"), NULL, &o2));
    cr_assert(!buf_eq(o2->key, key));
    cairn_object_free(o2);
    cairn_close(c);
}

Test(client, conditional_puts)
{
    cairn_t *c = connect_server();
    cairn_put_opts_t none_match = {.if_none_match = true};
    OK(c, cairn_put(c, CAIRN_S("cond"), CAIRN_S("k"), CAIRN_S("first"), &none_match, NULL));
    EXPECT(c, CAIRN_EEXISTS,
           cairn_put(c, CAIRN_S("cond"), CAIRN_S("k"), CAIRN_S("second"), &none_match, NULL));

    cairn_object_t *o = get_ok(c, "cond", "k");
    cr_assert(buf_eq(o->siblings[0].value, "first"));
    cairn_put_opts_t stale = {.context = o->context};
    cairn_object_t *newer = NULL;
    cairn_put_opts_t rb = {.context = o->context, .return_body = true};
    OK(c, cairn_put(c, CAIRN_S("cond"), CAIRN_S("k"), CAIRN_S("third"), &rb, &newer));
    /* o's context is now stale. */
    stale.if_not_modified = true;
    EXPECT(c, CAIRN_EMODIFIED,
           cairn_put(c, CAIRN_S("cond"), CAIRN_S("k"), CAIRN_S("lost"), &stale, NULL));
    cairn_put_opts_t fresh = {.context = newer->context, .if_not_modified = true};
    OK(c, cairn_put(c, CAIRN_S("cond"), CAIRN_S("k"), CAIRN_S("fourth"), &fresh, NULL));
    /* if_not_modified on a key that does not exist. */
    EXPECT(c, CAIRN_EMODIFIED,
           cairn_put(c, CAIRN_S("cond"), CAIRN_S("missing"), CAIRN_S("x"), &fresh, NULL));
    cairn_object_free(o);
    cairn_object_free(newer);

    expect_single(c, "cond", "k", "fourth");
    cairn_close(c);
}

Test(client, get_options_head_if_modified_and_quorums)
{
    cairn_t *c = connect_server();
    put_text(c, "gopt", "k", "value");
    cairn_object_t *o = get_ok(c, "gopt", "k");

    cairn_get_opts_t head = {.head = true};
    cairn_object_t *h = NULL;
    OK(c, cairn_get(c, CAIRN_S("gopt"), CAIRN_S("k"), &head, &h));
    cr_assert_eq(h->n_siblings, 1);
    cr_assert_eq(h->siblings[0].value.len, 0, "head returns no value");
    cr_assert_str_eq(h->siblings[0].content_type, "text/plain");
    cairn_object_free(h);

    cairn_get_opts_t im = {.if_modified = o->context};
    OK(c, cairn_get(c, CAIRN_S("gopt"), CAIRN_S("k"), &im, &h));
    cr_assert(h->unchanged, "if_modified with the current context: unchanged");
    cairn_object_free(h);

    cairn_get_opts_t q = {.r = CAIRN_Q_ALL, .pr = CAIRN_Q_ONE, .notfound_ok = CAIRN_FALSE,
                          .basic_quorum = CAIRN_TRUE, .sloppy_quorum = CAIRN_TRUE,
                          .timeout_ms = 5000};
    OK(c, cairn_get(c, CAIRN_S("gopt"), CAIRN_S("k"), &q, &h));
    cr_assert(buf_eq(h->siblings[0].value, "value"));
    cairn_object_free(h);
    cairn_object_free(o);
    cairn_close(c);
}

Test(client, delete_then_not_found)
{
    cairn_t *c = connect_server();
    put_text(c, "del", "k", "v");
    cairn_object_t *o = get_ok(c, "del", "k");
    cairn_del_opts_t d = {.context = o->context};
    OK(c, cairn_delete(c, CAIRN_S("del"), CAIRN_S("k"), &d));
    cairn_object_free(o);
    o = (cairn_object_t *)1;
    EXPECT(c, CAIRN_ENOTFOUND, cairn_get(c, CAIRN_S("del"), CAIRN_S("k"), NULL, &o));
    cr_assert_null(o);
    /* With deletedvclock: still not found; an object, if any, only carries a context. */
    cairn_get_opts_t dv = {.deletedvclock = true};
    EXPECT(c, CAIRN_ENOTFOUND, cairn_get(c, CAIRN_S("del"), CAIRN_S("k"), &dv, &o));
    cairn_object_free(o);
    /* Without a context; and deleting a missing key succeeds. */
    put_text(c, "del", "k2", "v");
    OK(c, cairn_delete(c, CAIRN_S("del"), CAIRN_S("k2"), NULL));
    EXPECT(c, CAIRN_ENOTFOUND, cairn_get(c, CAIRN_S("del"), CAIRN_S("k2"), NULL, &o));
    OK(c, cairn_delete(c, CAIRN_S("del"), CAIRN_S("never-there"), NULL));
    /* Written again after a delete, the key is back. */
    put_text(c, "del", "k", "again");
    o = get_ok(c, "del", "k");
    cr_assert(buf_eq(o->siblings[0].value, "again"));
    cairn_object_free(o);
    cairn_close(c);
}

typedef struct names {
    size_t n;
    char seen[64][32];
    size_t stop_after;     /* 0: never stop */
} names_t;

static int collect(void *arg, cairn_buf_t name)
{
    names_t *ns = arg;
    if (ns->n < 64)
        snprintf(ns->seen[ns->n], sizeof ns->seen[0], "%.*s", (int)name.len,
                 (const char *)name.data);
    ns->n++;
    return ns->stop_after && ns->n >= ns->stop_after;
}

static bool names_has(const names_t *ns, const char *name)
{
    for (size_t i = 0; i < ns->n && i < 64; i++)
        if (!strcmp(ns->seen[i], name))
            return true;
    return false;
}

Test(client, list_keys_and_buckets)
{
    cairn_t *c = connect_server();
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "key%d", i);
        put_text(c, "listing", key, "v");
    }
    put_text(c, "listing-other", "x", "v");
    names_t ns = {0};
    OK(c, cairn_list_keys(c, NULL, CAIRN_S("listing"), 0, collect, &ns));
    cr_assert_eq(ns.n, 10, "keys: %zu", ns.n);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "key%d", i);
        cr_assert(names_has(&ns, key), "%s missing", key);
    }
    /* Deleted keys are not listed. */
    OK(c, cairn_delete(c, CAIRN_S("listing"), CAIRN_S("key0"), NULL));
    memset(&ns, 0, sizeof ns);
    OK(c, cairn_list_keys(c, "default", CAIRN_S("listing"), 10000, collect, &ns));
    cr_assert_eq(ns.n, 9);
    cr_assert(!names_has(&ns, "key0"));
    /* A callback that stops early: OK, and the connection is still in step. */
    memset(&ns, 0, sizeof ns);
    ns.stop_after = 2;
    OK(c, cairn_list_keys(c, NULL, CAIRN_S("listing"), 0, collect, &ns));
    cr_assert_eq(ns.n, 2);
    OK(c, cairn_ping(c));
    /* An empty bucket lists nothing. */
    memset(&ns, 0, sizeof ns);
    OK(c, cairn_list_keys(c, NULL, CAIRN_S("listing-empty"), 0, collect, &ns));
    cr_assert_eq(ns.n, 0);

    names_t bs = {0};
    OK(c, cairn_list_buckets(c, NULL, 0, collect, &bs));
    cr_assert(names_has(&bs, "listing") && names_has(&bs, "listing-other"));
    cr_assert(!names_has(&bs, "listing-empty"));
    cairn_close(c);
}

Test(client, bucket_properties_get_set_reset)
{
    cairn_t *c = connect_server();
    cairn_bucket_props_t p;
    OK(c, cairn_bucket_get(c, NULL, CAIRN_S("props"), &p));
    cr_assert(p.fields & CAIRN_PROP_N_VAL);
    cr_assert_eq(p.n_val, 3);
    cr_assert(p.fields & CAIRN_PROP_ALLOW_MULT);
    cr_assert(!p.allow_mult);
    cr_assert(p.fields & CAIRN_PROP_R);

    cairn_bucket_props_t set = {.fields = CAIRN_PROP_N_VAL | CAIRN_PROP_ALLOW_MULT |
                                          CAIRN_PROP_R | CAIRN_PROP_NOTFOUND_OK,
                                .n_val = 2, .allow_mult = true, .r = CAIRN_Q_ONE,
                                .notfound_ok = false};
    OK(c, cairn_bucket_set(c, "default", CAIRN_S("props"), &set));
    OK(c, cairn_bucket_get(c, NULL, CAIRN_S("props"), &p));
    cr_assert_eq(p.n_val, 2);
    cr_assert(p.allow_mult);
    cr_assert_eq(p.r, CAIRN_Q_ONE);
    cr_assert(!p.notfound_ok);

    OK(c, cairn_bucket_reset(c, NULL, CAIRN_S("props")));
    OK(c, cairn_bucket_get(c, NULL, CAIRN_S("props"), &p));
    cr_assert_eq(p.n_val, 3);
    cr_assert(!p.allow_mult);
    cr_assert(p.notfound_ok);

    cairn_bucket_props_t nothing = {0};
    EXPECT(c, CAIRN_EINVAL, cairn_bucket_set(c, NULL, CAIRN_S("props"), &nothing));
    cairn_close(c);
}

Test(client, failover_skips_a_dead_first_node)
{
    char hosts[128];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,%s", ct_unused_port(), ct_shared_host());
    cairn_t *c = connect_to(hosts);
    cr_assert_str_eq(cairn_current_node(c), ct_shared_host());
    OK(c, cairn_ping(c));
    cairn_close(c);
}

/* The node a connection is on dies between requests: the next call reconnects to the next
 * node and succeeds there (nothing had been sent, so the request is safe to send). */
Test(client, failover_when_the_connected_node_dies, .timeout = 120)
{
    char dir[256];
    cr_assert(ct_tmpdir(dir, sizeof dir, "client-own"), "mkdtemp: %s", strerror(errno));
    ct_node_t own;
    ct_node_init(&own, dir);
    ct_node_start_ok(&own, "own1", node_args);
    char hosts[128];
    snprintf(hosts, sizeof hosts, "%s,%s", own.host, ct_shared_host());
    cairn_t *c = connect_to(hosts);
    cr_assert_str_eq(cairn_current_node(c), own.host);
    put_text(c, "fo", "k", "v");
    ct_node_stop(&own, SIGKILL);
    OK(c, cairn_ping(c));
    cr_assert_str_eq(cairn_current_node(c), ct_shared_host());
    /* And when every node is gone, a call says so. */
    cairn_close(c);

    ct_node_start_ok(&own, "own2", node_args);
    c = connect_to(own.host);
    ct_node_stop(&own, SIGKILL);
    int rc = cairn_ping(c);
    cr_assert(rc == CAIRN_ECONNECT || rc == CAIRN_EIO, "got %s", cairn_strerror(rc));
    cr_assert(*cairn_errmsg(c));
    cairn_close(c);
    ct_rmtree(dir);
}

Test(client, bad_arguments_are_EINVAL)
{
    cairn_t *c = connect_server();
    cairn_object_t *o = NULL;
    EXPECT(c, CAIRN_EINVAL, cairn_get(c, CAIRN_S(""), CAIRN_S("k"), NULL, &o));
    cr_assert(strstr(cairn_errmsg(c), "bucket"));
    EXPECT(c, CAIRN_EINVAL, cairn_get(c, CAIRN_S("b"), CAIRN_S(""), NULL, &o));
    EXPECT(c, CAIRN_EINVAL, cairn_get(c, CAIRN_S("b"), CAIRN_S("k"), NULL, NULL));
    EXPECT(c, CAIRN_EINVAL, cairn_put(c, CAIRN_S(""), CAIRN_S("k"), CAIRN_S("v"), NULL, NULL));
    EXPECT(c, CAIRN_EINVAL,
           cairn_put(c, CAIRN_S("b"), CAIRN_S("k"), (cairn_buf_t){NULL, 3}, NULL, NULL));
    EXPECT(c, CAIRN_EINVAL, cairn_delete(c, CAIRN_S("b"), CAIRN_S(""), NULL));
    EXPECT(c, CAIRN_EINVAL, cairn_list_keys(c, NULL, CAIRN_S(""), 0, collect, NULL));
    EXPECT(c, CAIRN_EINVAL, cairn_list_keys(c, NULL, CAIRN_S("b"), 0, NULL, NULL));
    EXPECT(c, CAIRN_EINVAL, cairn_bucket_get(c, NULL, CAIRN_S(""), NULL));
    cairn_pair_t bad_meta[] = {{CAIRN_S(""), CAIRN_S("v")}};
    cairn_put_opts_t po = {.usermeta = bad_meta, .n_usermeta = 1};
    EXPECT(c, CAIRN_EINVAL, cairn_put(c, CAIRN_S("b"), CAIRN_S("k"), CAIRN_S("v"), &po, NULL));
    /* None of this touched the connection. */
    OK(c, cairn_ping(c));
    cairn_close(c);
}

/* The server refuses impossible quorums with its own message. */
Test(client, server_errors_keep_the_server_text)
{
    cairn_t *c = connect_server();
    cairn_object_t *o = NULL;
    cairn_get_opts_t g = {.r = 5};
    EXPECT(c, CAIRN_ESERVER, cairn_get(c, CAIRN_S("se"), CAIRN_S("k"), &g, &o));
    cr_assert(*cairn_errmsg(c), "no server text");
    cairn_put_opts_t p = {.w = 7};
    EXPECT(c, CAIRN_ESERVER, cairn_put(c, CAIRN_S("se"), CAIRN_S("k"), CAIRN_S("v"), &p, NULL));
    cr_assert(strstr(cairn_errmsg(c), "val_violation"), "%s", cairn_errmsg(c));
    OK(c, cairn_ping(c));
    cairn_close(c);
}

/* The test server takes objects up to 1 MiB and frames up to 2 MiB. */
Test(client, a_value_above_the_server_maximum_is_ETOOBIG)
{
    cairn_t *c = connect_server();
    size_t n = 8u << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    /* Above the object limit: the server reads the request and refuses it. */
    int rc = cairn_put(c, CAIRN_S("big"), CAIRN_S("k"), (cairn_buf_t){big, 1536u << 10}, NULL,
                       NULL);
    cr_assert_eq(rc, CAIRN_ETOOBIG, "got %s (%s)", cairn_strerror(rc), cairn_errmsg(c));
    OK(c, cairn_ping(c));
    /* Above the frame limit: the server answers and closes without reading it all. */
    rc = cairn_put(c, CAIRN_S("big"), CAIRN_S("k"), (cairn_buf_t){big, n}, NULL, NULL);
    cr_assert_eq(rc, CAIRN_ETOOBIG, "got %s (%s)", cairn_strerror(rc), cairn_errmsg(c));
    free(big);
    /* The next request works (on a new connection). */
    OK(c, cairn_ping(c));
    cairn_object_t *o = (cairn_object_t *)1;
    EXPECT(c, CAIRN_ENOTFOUND, cairn_get(c, CAIRN_S("big"), CAIRN_S("k"), NULL, &o));
    cairn_close(c);
}

/* ---------------------------------------------------------------- main: the shared server */

int main(int argc, char *argv[])
{
    return ct_main_with_shared_node(argc, argv, "client", node_args);
}
