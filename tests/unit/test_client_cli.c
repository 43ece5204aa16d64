/*
 * test_client_cli.c — the `cairn` command-line client (<BUILD>/asan/bin/cairn, or $CAIRN_CLI)
 * run as a user would, against a real cairnd (<BUILD>/asan/bin/cairnd, or $CAIRND) that
 * main() starts on ports the kernel picks (cairnd_test.h): every command in text and --json
 * form (the JSON is parsed), values from arguments, files and stdin, siblings shown and
 * resolved with the printed context, exit statuses (0 ok, 1 not found, 2 usage, 3 error,
 * 4 precondition), --help.
 */
#include "cairnd_test.h"

#include <poll.h>
#include <stdarg.h>

static char *const node_args[] = {"--ring-size", "8", NULL};

/* ---------------------------------------------------------------- running the CLI */

typedef struct run {
    int status;          /* exit status, or 128+signal */
    char *out, *err;     /* NUL-terminated */
    size_t out_len;
} run_t;

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    cr_assert(nb);
    memcpy(nb + *len, data, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

/* Runs `cairn ARGS...` with `in` on stdin (NULL: empty) and $CAIRN_HOST set to env_host
 * (NULL: unset); bounded by 30 s. */
static void cli_argv(run_t *r, const void *in, size_t in_len, const char *env_host,
                     char *const *args)
{
    char bin[PATH_MAX];
    ct_program("CAIRN_CLI", "cairn", bin, sizeof bin);
    cr_assert(access(bin, X_OK) == 0, "cairn not found at %s", bin);
    int pin[2], pout[2], perr[2];
    cr_assert(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
    char *argv[64] = {bin};
    size_t n = 1;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pin[0], 0), dup2(pout[1], 1), dup2(perr[1], 2);
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        close(perr[0]), close(perr[1]);
        if (env_host)
            setenv("CAIRN_HOST", env_host, 1);
        else
            unsetenv("CAIRN_HOST");
        execv(bin, argv);
        _exit(127);
    }
    close(pin[0]), close(pout[1]), close(perr[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    memset(r, 0, sizeof *r);
    size_t err_len = 0, in_off = 0;
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    int in_fd = pin[1];
    if (in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    bool out_open = true, err_open = true;
    int64_t deadline = ct_now_ms() + 30000;
    while (out_open || err_open) {
        int64_t left = deadline - ct_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert_fail("cairn %s %s did not finish within 30 s", args[0] ? args[0] : "",
                           args[0] && args[1] ? args[1] : "");
        }
        struct pollfd p[3] = {{out_open ? pout[0] : -1, POLLIN, 0},
                              {err_open ? perr[0] : -1, POLLIN, 0},
                              {in_fd, POLLOUT, 0}};
        poll(p, 3, (int)left);
        char buf[65536];
        if (p[0].revents) {
            ssize_t got = read(pout[0], buf, sizeof buf);
            if (got > 0)
                append(&r->out, &r->out_len, buf, (size_t)got);
            else
                out_open = false;
        }
        if (p[1].revents) {
            ssize_t got = read(perr[0], buf, sizeof buf);
            if (got > 0)
                append(&r->err, &err_len, buf, (size_t)got);
            else
                err_open = false;
        }
        if (in_fd >= 0 && p[2].revents) {
            ssize_t put = write(in_fd, (const char *)in + in_off, in_len - in_off);
            if (put > 0)
                in_off += (size_t)put;
            if (put < 0 || in_off == in_len) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    close(pout[0]), close(perr[0]);
    int status;
    waitpid(pid, &status, 0);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define EXPECT_STATUS(r, want)                                                         \
    cr_assert_eq((r).status, (want), "exit %d, want %d\nstdout: %s\nstderr: %s",        \
                 (r).status, (want), (r).out, (r).err)

static void cli_va(run_t *r, const char *in, va_list ap)
{
    char *args[60] = {"-h", (char *)ct_shared_host()};
    size_t n = 2;
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 59;)
        args[n++] = a;
    args[n] = NULL;
    cli_argv(r, in, in ? strlen(in) : 0, NULL, args);
}

/* cairn -h <server> ARGS... (NULL-terminated), stdin from `in` (a C string or NULL). */
static void cli(run_t *r, const char *in, ...)
{
    va_list ap;
    va_start(ap, in);
    cli_va(r, in, ap);
    va_end(ap);
}

/* The same for a step that must simply succeed (exit 0); its output is not looked at. */
static void cli_ok(const char *in, ...)
{
    run_t r;
    va_list ap;
    va_start(ap, in);
    cli_va(&r, in, ap);
    va_end(ap);
    EXPECT_STATUS(r, 0);
    run_free(&r);
}

/* The same without a host (no server needed, $CAIRN_HOST unset). */
static void cli_plain(run_t *r, ...)
{
    char *args[60];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 59;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    cli_argv(r, NULL, 0, NULL, args);
}

/* ---------------------------------------------------------------- a minimal JSON checker */

typedef struct json_in {
    const char *p, *end;
} json_in_t;

static void json_ws(json_in_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
        j->p++;
}

static bool json_value(json_in_t *j, int depth);

static bool json_string(json_in_t *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    for (j->p++; j->p < j->end; j->p++) {
        unsigned char ch = (unsigned char)*j->p;
        if (ch == '"') {
            j->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            j->p++;
            if (j->p >= j->end || !strchr("\"\\/bfnrtu", *j->p))
                return false;
            if (*j->p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p))
                        return false;
            }
        }
    }
    return false;
}

static bool json_literal(json_in_t *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool json_number(json_in_t *j)
{
    const char *start = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || strchr(".eE+-", *j->p)))
        j->p++;
    return j->p > start && (start[0] != '-' || j->p > start + 1);
}

static bool json_value(json_in_t *j, int depth)
{
    if (depth > 64)
        return false;
    json_ws(j);
    if (j->p >= j->end)
        return false;
    char ch = *j->p;
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return true;
        }
        for (;;) {
            json_ws(j);
            if (ch == '{') {
                if (!json_string(j))
                    return false;
                json_ws(j);
                if (j->p >= j->end || *j->p++ != ':')
                    return false;
            }
            if (!json_value(j, depth + 1))
                return false;
            json_ws(j);
            if (j->p >= j->end)
                return false;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p++ != close)
                return false;
            return true;
        }
    }
    if (ch == '"')
        return json_string(j);
    if (ch == 't')
        return json_literal(j, "true");
    if (ch == 'f')
        return json_literal(j, "false");
    if (ch == 'n')
        return json_literal(j, "null");
    return json_number(j);
}

/* Exactly one JSON object (and a newline) on stdout. */
static void assert_json_object(const run_t *r)
{
    json_in_t j = {r->out, r->out + r->out_len};
    json_ws(&j);
    cr_assert(j.p < j.end && *j.p == '{', "not a JSON object: %s", r->out);
    cr_assert(json_value(&j, 0), "invalid JSON near '%.40s' in: %s", j.p, r->out);
    json_ws(&j);
    cr_assert(j.p == j.end, "trailing bytes after the JSON: %s", j.p);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The value after "context: " on its own line (static buffer). */
static const char *text_context(const char *out)
{
    static char ctx[4096];
    const char *p = strstr(out, "context: ");
    cr_assert(p, "no context line in: %s", out);
    p += strlen("context: ");
    size_t n = strcspn(p, "\n");
    cr_assert(n < sizeof ctx);
    memcpy(ctx, p, n);
    ctx[n] = '\0';
    return ctx;
}

/* The string value of "name":"..." in a JSON text (static buffer; no escapes expected). */
static const char *json_field(const char *out, const char *name)
{
    static char val[4096];
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(out, pat);
    cr_assert(p, "no %s in: %s", name, out);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    cr_assert(n < sizeof val);
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

/* ---------------------------------------------------------------- without a server */

TestSuite(cli_offline, .timeout = 60);

Test(cli_offline, help_for_cairn_and_every_command)
{
    run_t r;
    cli_plain(&r, "--help", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "usage: cairn"));
    cr_assert(strstr(r.out, "Exit status"));
    run_free(&r);
    static const char *const cmds[] = {"get", "put", "del", "keys", "buckets", "props",
                                       "ping", "info"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_plain(&r, cmds[i], "--help", NULL);
        EXPECT_STATUS(r, 0);
        char want[64];
        snprintf(want, sizeof want, "usage: cairn %s", cmds[i]);
        cr_assert(strstr(r.out, want), "%s --help: %s", cmds[i], r.out);
        run_free(&r);
    }
}

Test(cli_offline, usage_errors_exit_2_with_a_message)
{
    static const char *const cases[][8] = {
        {NULL},
        {"frobnicate", NULL},
        {"get", "b", NULL},
        {"get", "b", "k", "extra", NULL},
        {"get", "", "k", NULL},
        {"get", "b", "k", "--w", "2", NULL},
        {"get", "b", "k", "--r", "bogus", NULL},
        {"get", "b", "k", "--notfound-ok", "maybe", NULL},
        {"put", "b", "k", NULL},
        {"put", "b", "k", "v", "-f", "/etc/hostname", NULL},
        {"put", "b", "k", "v", "--context", "!!!", NULL},
        {"put", "b", "k", "v", "--if-not-modified", NULL},
        {"props", "frob", "b", NULL},
        {"props", "set", "b", "n_val=x", NULL},
        {"props", "set", "b", "colour=red", NULL},
        {"props", "set", "b", NULL},
        {"--timeout", "abc", "ping", NULL},
        {"ping", "--bogus", NULL},
        {"-h", "host:notaport", "ping", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_t r;
        cli_argv(&r, NULL, 0, NULL, (char *const *)cases[i]);
        cr_assert_eq(r.status, 2, "case %zu (%s %s): exit %d, stderr %s", i,
                     cases[i][0] ? cases[i][0] : "", cases[i][0] && cases[i][1] ? cases[i][1] : "",
                     r.status, r.err);
        cr_assert(*r.err, "case %zu: no message on stderr", i);
        run_free(&r);
    }
}

Test(cli_offline, no_server_is_exit_3_with_the_reason)
{
    char host[32];
    snprintf(host, sizeof host, "127.0.0.1:%d", ct_unused_port());
    run_t r;
    cli_plain(&r, "-h", host, "ping", NULL);
    EXPECT_STATUS(r, 3);
    cr_assert(strstr(r.err, host), "%s", r.err);
    cr_assert_eq(r.out_len, 0);
    run_free(&r);
    cli_plain(&r, "-h", host, "--json", "get", "b", "k", NULL);
    EXPECT_STATUS(r, 3);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"error\""));
    cr_assert(strstr(r.out, "ECONNECT"));
    run_free(&r);
}

/* ---------------------------------------------------------------- against cairnd */

TestSuite(cli, .timeout = 120);

Test(cli, ping_and_info)
{
    run_t r;
    cli(&r, NULL, "ping", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "pong"));
    cr_assert(strstr(r.out, ct_shared_host()));
    run_free(&r);
    cli(&r, NULL, "ping", "--json", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"ok\":true"));
    run_free(&r);
    cli(&r, NULL, "info", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "node: ") && strstr(r.out, "version: "));
    run_free(&r);
    cli(&r, NULL, "--json", "info", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"server_version\":\""));
    run_free(&r);
}

Test(cli, put_then_get_as_text_raw_and_json)
{
    run_t r;
    cli_ok(NULL, "put", "cli-rt", "k", "hello world", "--content-type", "text/plain",
           "--meta", "owner=alice", NULL);

    cli(&r, NULL, "get", "cli-rt", "k", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "hello world\n"), "%s", r.out);
    cr_assert(strstr(r.out, "content-type: text/plain"), "%s", r.out);
    cr_assert(strstr(r.out, "last-modified: "), "%s", r.out);
    cr_assert(strstr(r.out, "meta: owner=alice"), "%s", r.out);
    cr_assert(strlen(text_context(r.out)) > 0);
    cr_assert(!strstr(r.out, "sibling"), "one value shows no sibling header");
    run_free(&r);

    cli(&r, NULL, "get", "--raw", "cli-rt", "k", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(r.out, "hello world");
    run_free(&r);

    /* Request options and the global timeout, after the command. */
    cli(&r, NULL, "get", "--type", "default", "--r", "quorum", "--pr", "1", "--notfound-ok",
        "false", "--raw", "cli-rt", "k", "--timeout", "5000", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(r.out, "hello world");
    run_free(&r);
    cli(&r, NULL, "get", "--head", "cli-rt", "k", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "content-type: text/plain") && !strstr(r.out, "hello"), "%s", r.out);
    run_free(&r);

    cli(&r, NULL, "get", "cli-rt", "k", "--json", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"found\":true"));
    cr_assert(strstr(r.out, "\"value\":\"hello world\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"content_type\":\"text/plain\""));
    cr_assert_eq(count(r.out, "\"value\":"), 2, "value + the usermeta value: %s", r.out);
    cr_assert(strlen(json_field(r.out, "context")) > 0);
    run_free(&r);
}

Test(cli, values_from_stdin_and_files)
{
    run_t r;
    cli_ok("from stdin\n", "put", "cli-in", "a", "-f", "-", NULL);
    cli(&r, NULL, "get", "--raw", "cli-in", "a", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(r.out, "from stdin\n");
    run_free(&r);

    char path[] = "/tmp/cairn-cli-value-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "from a file", 11), 11);
    close(fd);
    cli(&r, NULL, "put", "cli-in", "b", "-f", path, NULL);
    unlink(path);
    EXPECT_STATUS(r, 0);
    run_free(&r);
    cli(&r, NULL, "get", "--raw", "cli-in", "b", NULL);
    cr_assert_str_eq(r.out, "from a file");
    run_free(&r);

    cli(&r, NULL, "put", "cli-in", "c", "-f", "/nonexistent/file", NULL);
    EXPECT_STATUS(r, 3);
    cr_assert(strstr(r.err, "/nonexistent/file"));
    run_free(&r);

    /* Binary from stdin: --raw gives the bytes back, JSON marks them base64. */
    static const char bin[] = {'\x01', '\xff', '\x00', '\xfe', 'z'};
    char *args[] = {"-h", (char *)ct_shared_host(), "put", "cli-in", "bin", "-f", "-", NULL};
    cli_argv(&r, bin, sizeof bin, NULL, args);
    EXPECT_STATUS(r, 0);
    run_free(&r);
    cli(&r, NULL, "get", "--raw", "cli-in", "bin", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_eq(r.out_len, sizeof bin);
    cr_assert_eq(memcmp(r.out, bin, sizeof bin), 0);
    run_free(&r);
    cli(&r, NULL, "get", "--json", "cli-in", "bin", NULL);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"value\":{\"base64\":\"Af8A/no=\"}"), "%s", r.out);
    run_free(&r);
    cli(&r, NULL, "get", "cli-in", "bin", NULL);
    cr_assert(strstr(r.out, "(binary, 5 bytes, base64) Af8A/no="), "%s", r.out);
    run_free(&r);
}

Test(cli, get_of_a_missing_key_exits_1)
{
    run_t r;
    cli(&r, NULL, "get", "cli-nf", "nobody", NULL);
    EXPECT_STATUS(r, 1);
    cr_assert(strstr(r.err, "not found"));
    cr_assert_eq(r.out_len, 0);
    run_free(&r);
    cli(&r, NULL, "--json", "get", "cli-nf", "nobody", NULL);
    EXPECT_STATUS(r, 1);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"found\":false"));
    run_free(&r);
}

/* Two writes without a context in an allow_mult bucket: two numbered siblings; writing back
 * with the printed context resolves them. */
Test(cli, siblings_shown_and_resolved_with_the_context)
{
    run_t r;
    cli_ok(NULL, "props", "set", "cli-sib", "allow_mult=true", NULL);
    cli_ok(NULL, "put", "cli-sib", "k", "apple", "--content-type", "text/plain", NULL);
    cli_ok(NULL, "put", "cli-sib", "k", "banana", "--content-type", "text/plain", NULL);

    cli(&r, NULL, "get", "cli-sib", "k", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "siblings: 2"), "%s", r.out);
    cr_assert(strstr(r.out, "--- sibling 1 of 2 ---"));
    cr_assert(strstr(r.out, "--- sibling 2 of 2 ---"));
    cr_assert(strstr(r.out, "apple\n") && strstr(r.out, "banana\n"));
    cr_assert_eq(count(r.out, "content-type: text/plain"), 2);
    cr_assert_eq(count(r.out, "last-modified: "), 2);
    char context[4096];
    snprintf(context, sizeof context, "%s", text_context(r.out));
    run_free(&r);

    cli(&r, NULL, "get", "--json", "cli-sib", "k", NULL);
    assert_json_object(&r);
    cr_assert_eq(count(r.out, "\"content_type\":"), 2, "%s", r.out);
    cr_assert_str_eq(json_field(r.out, "context"), context);
    run_free(&r);

    cli(&r, NULL, "get", "--raw", "cli-sib", "k", NULL);
    EXPECT_STATUS(r, 3);
    cr_assert(strstr(r.err, "2 siblings"));
    run_free(&r);

    cli(&r, NULL, "put", "cli-sib", "k", "apple+banana", "--context", context,
        "--return-body", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "apple+banana"), "%s", r.out);
    cr_assert(!strstr(r.out, "sibling"), "%s", r.out);
    run_free(&r);
    cli(&r, NULL, "get", "--raw", "cli-sib", "k", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(r.out, "apple+banana");
    run_free(&r);
}

Test(cli, delete_then_not_found)
{
    run_t r;
    cli_ok(NULL, "put", "cli-del", "k", "v", NULL);
    cli_ok(NULL, "del", "cli-del", "k", NULL);
    cli(&r, NULL, "get", "cli-del", "k", NULL);
    EXPECT_STATUS(r, 1);
    run_free(&r);
    cli(&r, NULL, "--json", "del", "cli-del", "never-there", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"ok\":true"));
    run_free(&r);
}

Test(cli, keys_and_buckets)
{
    run_t r;
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cli_ok(NULL, "put", "cli-keys", key, "v", NULL);
    }
    cli(&r, NULL, "keys", "cli-keys", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_eq(count(r.out, "\n"), 3, "%s", r.out);
    cr_assert(strstr(r.out, "k0\n") && strstr(r.out, "k1\n") && strstr(r.out, "k2\n"));
    run_free(&r);
    cli(&r, NULL, "--json", "keys", "cli-keys", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"count\":3"), "%s", r.out);
    cr_assert(strstr(r.out, "\"k1\""));
    run_free(&r);
    cli(&r, NULL, "buckets", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "cli-keys\n"), "%s", r.out);
    run_free(&r);
    cli(&r, NULL, "buckets", "--json", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"cli-keys\""));
    run_free(&r);
}

Test(cli, props_get_set_reset)
{
    run_t r;
    cli(&r, NULL, "props", "get", "cli-props", NULL);
    EXPECT_STATUS(r, 0);
    cr_assert(strstr(r.out, "n_val: 3\n"), "%s", r.out);
    cr_assert(strstr(r.out, "allow_mult: false\n"));
    run_free(&r);
    cli_ok(NULL, "props", "set", "cli-props", "n_val=2", "allow-mult=true", "r=one", NULL);
    cli(&r, NULL, "--json", "props", "get", "cli-props", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "\"n_val\":2"), "%s", r.out);
    cr_assert(strstr(r.out, "\"allow_mult\":true"));
    cr_assert(strstr(r.out, "\"r\":\"one\""));
    run_free(&r);
    cli(&r, NULL, "--json", "props", "reset", "cli-props", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    run_free(&r);
    cli(&r, NULL, "props", "get", "cli-props", NULL);
    cr_assert(strstr(r.out, "n_val: 3\n"), "%s", r.out);
    run_free(&r);
}

Test(cli, conditional_puts_exit_4)
{
    run_t r;
    cli_ok(NULL, "put", "--if-none-match", "cli-cond", "k", "first", NULL);
    cli(&r, NULL, "put", "--if-none-match", "cli-cond", "k", "second", NULL);
    EXPECT_STATUS(r, 4);
    cr_assert(strstr(r.err, "exists"), "%s", r.err);
    run_free(&r);
    cli(&r, NULL, "get", "cli-cond", "k", NULL);
    char context[4096];
    snprintf(context, sizeof context, "%s", text_context(r.out));
    run_free(&r);
    cli_ok(NULL, "put", "cli-cond", "k", "third", "--context", context, NULL);
    cli(&r, NULL, "--json", "put", "cli-cond", "k", "stale", "--context", context,
        "--if-not-modified", NULL);
    EXPECT_STATUS(r, 4);
    assert_json_object(&r);
    cr_assert(strstr(r.out, "EMODIFIED"), "%s", r.out);
    run_free(&r);
}

Test(cli, auto_key_prints_the_new_key)
{
    run_t r;
    cli(&r, NULL, "put", "--auto-key", "cli-auto", "made up", NULL);
    EXPECT_STATUS(r, 0);
    char key[256];
    size_t n = strcspn(r.out, "\n");
    cr_assert(n > 0 && n < sizeof key, "%s", r.out);
    memcpy(key, r.out, n);
    key[n] = '\0';
    run_free(&r);
    cli(&r, NULL, "get", "--raw", "cli-auto", key, NULL);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(r.out, "made up");
    run_free(&r);
    cli(&r, NULL, "--json", "put", "--auto-key", "cli-auto", "again", NULL);
    EXPECT_STATUS(r, 0);
    assert_json_object(&r);
    cr_assert(strlen(json_field(r.out, "key")) > 0);
    run_free(&r);
}

Test(cli, host_from_the_environment_and_failover)
{
    run_t r;
    char *ping[] = {"ping", NULL};
    cli_argv(&r, NULL, 0, ct_shared_host(), ping);
    EXPECT_STATUS(r, 0);
    run_free(&r);
    char hosts[128];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,%s", ct_unused_port(), ct_shared_host());
    char *args[] = {"-h", hosts, "--json", "ping", NULL};
    cli_argv(&r, NULL, 0, NULL, args);
    EXPECT_STATUS(r, 0);
    cr_assert_str_eq(json_field(r.out, "node"), ct_shared_host());
    run_free(&r);
}

Test(cli, server_errors_exit_3_with_the_server_text)
{
    run_t r;
    cli(&r, NULL, "get", "--r", "9", "cli-err", "k", NULL);
    EXPECT_STATUS(r, 3);
    cr_assert(strstr(r.err, "cairn: get: server error: "), "%s", r.err);
    run_free(&r);
}

/* ---------------------------------------------------------------- main: the shared server */

int main(int argc, char *argv[])
{
    return ct_main_with_shared_node(argc, argv, "cli", node_args);
}
