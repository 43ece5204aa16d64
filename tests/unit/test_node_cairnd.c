/*
 * test_node_cairnd.c — the real cairnd binary (and cairn-admin) as an operator meets them:
 * the ready line with the real client port, a PB ping over a plain socket, refusals of bad
 * configuration (exit 2, key named), a ring-size change against an existing ring, the cookie
 * generated once and reused, one node per data dir, SIGTERM (exit 0, promptly), restart after
 * SIGKILL, and admin ping / status / crash-vnode over the node link.
 *
 * The programs are found next to this test (cairnd_test.h): <BUILD>/<variant>/tests ->
 * <BUILD>/<variant>/bin/{cairnd,cairn-admin}. Every port is picked by the kernel; every wait is
 * bounded; every process started is killed at the end of its test.
 */
#include "cairnd_test.h"

#include <sys/time.h>

static char tmp_dir[256];

/* ---------------------------------------------------------------- helpers */

static void setup(void)
{
    char path[PATH_MAX];
    ct_program("CAIRND", "cairnd", path, sizeof path);
    cr_assert(access(path, X_OK) == 0, "no cairnd at %s (build it first)", path);
    cr_assert(ct_tmpdir(tmp_dir, sizeof tmp_dir, "cairnd"), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    ct_kill_all();
    ct_rmtree(tmp_dir);
}

/* Runs bin/<prog> ARGS... to completion, stdout/stderr to <tmp>/<tag>.out/.err; its status. */
static int run(const char *prog, const char *tag, char *const args[])
{
    char path[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
    ct_program(strcmp(prog, "cairnd") == 0 ? "CAIRND" : "CAIRN_ADMIN", prog, path, sizeof path);
    snprintf(out, sizeof out, "%s/%s.out", tmp_dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", tmp_dir, tag);
    return ct_run(path, args, out, err, CT_RUN_MS);
}

/* What a run (or a node started with this tag) wrote to stream "out" or "err"; free it. */
static char *output(const char *tag, const char *stream)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.%s", tmp_dir, tag, stream);
    return ct_slurp(path);
}

/* Starts cairnd on the suite's data dir with ring_size partitions (n_val 1, so that a ring of
 * one partition is allowed), without waiting for it. */
static void spawn_node(ct_node_t *n, const char *tag, const char *ring_size)
{
    char *args[] = {"--ring-size", (char *)ring_size, "--set", "buckets.default.n_val=1", NULL};
    ct_node_spawn(n, tag, args);
}

/* The same, and waits for its ready line (fails the test with cairnd's stderr if none). */
static void start_node(ct_node_t *n, const char *tag, const char *ring_size)
{
    char *args[] = {"--ring-size", (char *)ring_size, "--set", "buckets.default.n_val=1", NULL};
    ct_node_start_ok(n, tag, args);
}

/* One PB ping over a plain socket: 00 00 00 01 01 -> 00 00 00 01 02. */
static bool pb_ping(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        static const unsigned char req[] = {0, 0, 0, 1, 1}, want[] = {0, 0, 0, 1, 2};
        unsigned char got[5];
        size_t have = 0;
        if (write(fd, req, sizeof req) == (ssize_t)sizeof req) {
            while (have < sizeof got) {
                ssize_t r = read(fd, got + have, sizeof got - have);
                if (r <= 0)
                    break;
                have += (size_t)r;
            }
            ok = have == sizeof got && memcmp(got, want, sizeof want) == 0;
        }
    }
    close(fd);
    return ok;
}

/* cairn-admin --node <n> --data-dir <data> CMD [ARG...]; returns its exit status. */
static int admin(const ct_node_t *n, const char *tag, const char *cmd, const char *arg)
{
    char *args[] = {(char *)cmd, (char *)arg, NULL};
    return ct_admin(n, tag, args);
}

/* ---------------------------------------------------------------- tests */

TestSuite(cairnd, .init = setup, .fini = teardown, .timeout = 120);

Test(cairnd, starts_prints_ready_answers_ping_and_stops_on_sigterm)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    start_node(&n, "node", "8");
    cr_assert(n.client_port > 0, "the ready line shows the real port, not 0");
    cr_assert(pb_ping(n.client_port), "PB ping on port %d", n.client_port);
    cr_assert(pb_ping(n.client_port), "a second connection too");
    char *log = output("node", "err");
    cr_assert(strstr(log, " INFO  "), "log lines carry a level:\n%s", log);
    free(log);

    /* an idle client connection does not hold the stop up; it is closed */
    int idle = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n.client_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(idle, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    uint64_t t0 = ct_now_ms();
    int st = ct_node_stop(&n, SIGTERM);
    uint64_t took = ct_now_ms() - t0;
    char byte;
    cr_assert(read(idle, &byte, 1) <= 0, "the idle connection was closed");
    close(idle);
    char *err = output("node", "err");
    cr_assert_eq(st, 0, "SIGTERM exits 0 (got %d):\n%s", st, err);
    cr_assert(took < 10000, "stopped in %llu ms", (unsigned long long)took);
    cr_assert(strstr(err, "stopped"), "%s", err);
    free(err);
    char path[400];
    snprintf(path, sizeof path, "%s/cairnd.log", n.data);
    char *file_log = ct_slurp(path);
    cr_assert(strstr(file_log, "received SIGTERM"), "the log file has the events:\n%s", file_log);
    free(file_log);
}

Test(cairnd, bad_configuration_is_refused_with_the_key)
{
    char conf[300];
    snprintf(conf, sizeof conf, "%s/cairn.conf", tmp_dir);
    FILE *f = fopen(conf, "w");
    fputs("# test\nring_size = 8\nbuckets.default.r = twoo\n", f);
    fclose(f);
    char data[300];
    snprintf(data, sizeof data, "%s/never", tmp_dir);

    char *a1[] = {"-c", conf, "--data-dir", data, NULL};
    cr_assert_eq(run("cairnd", "c1", a1), 2);
    char *err = output("c1", "err"), want[400];
    snprintf(want, sizeof want, "%s:3: buckets.default.r: 'twoo' is not a quorum", conf);
    cr_assert(strstr(err, want), "stderr: %s", err);
    free(err);

    char *a2[] = {"--data-dir", data, "--set", "lisener.protobuf=127.0.0.1:1", NULL};
    cr_assert_eq(run("cairnd", "c2", a2), 2);
    err = output("c2", "err");
    cr_assert(strstr(err, "lisener.protobuf: unknown key"), "stderr: %s", err);
    free(err);

    char *a3[] = {"--data-dir", data, "--ring-size", "100", NULL};
    cr_assert_eq(run("cairnd", "c3", a3), 2);
    err = output("c3", "err");
    cr_assert(strstr(err, "--ring-size 100: ring_size:"), "stderr: %s", err);
    free(err);

    char *a4[] = {"--data-dir", data, "--set", "buckets.default.w=5", NULL};
    cr_assert_eq(run("cairnd", "c4", a4), 2);
    err = output("c4", "err");
    cr_assert(strstr(err, "buckets.default.w: 5 is larger than buckets.default.n_val"),
              "stderr: %s", err);
    free(err);

    char *a5[] = {"--no-such-flag", NULL};
    cr_assert_eq(run("cairnd", "c5", a5), 2);
    char *a6[] = {"-c", "/nonexistent.conf", NULL};
    cr_assert_eq(run("cairnd", "c6", a6), 2);

    struct stat st;
    cr_assert(stat(data, &st) != 0, "a refused start creates nothing");

    char *a7[] = {"--help", NULL};
    cr_assert_eq(run("cairnd", "c7", a7), 0);
    char *out = output("c7", "out");
    cr_assert(strstr(out, "--print-config") && strstr(out, "--set KEY=VALUE") &&
                  strstr(out, "SIGTERM"),
              "%s", out);
    free(out);

    f = fopen(conf, "w");
    fputs("ring_size = 8\nbuckets.default.r = 1\n", f);
    fclose(f);
    char *a8[] = {"--set", "buckets.default.r=2", "-c", conf, "--data-dir",
                  data,    "--print-config",      NULL};
    cr_assert_eq(run("cairnd", "c8", a8), 0);
    out = output("c8", "out");
    cr_assert(strstr(out, "ring_size = 8\n") && strstr(out, "buckets.default.r = 2\n"),
              "flags override the file:\n%s", out);
    free(out);
}

Test(cairnd, ring_size_change_is_refused)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    start_node(&n, "r1", "8");
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);

    spawn_node(&n, "r2", "16");
    int st = ct_node_wait_exit(&n, CT_READY_MS);
    char *err = output("r2", "err");
    cr_assert_eq(st, 2, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "ring_size") && strstr(err, "holds a ring of 8 partitions") &&
                  strstr(err, "asks for 16"),
              "%s", err);
    free(err);

    start_node(&n, "r3", "8");
    cr_assert(pb_ping(n.client_port));
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

Test(cairnd, a_data_dir_keeps_its_storage_engine)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    char *leveldb[] = {"--ring-size", "8", "--set", "storage.backend=leveldb", NULL};
    ct_node_start_ok(&n, "e1", leveldb);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);

    /* another engine, named: refused, and told which value to set */
    char *bitcask[] = {"--ring-size", "8", "--set", "storage.backend=bitcask", NULL};
    ct_node_spawn(&n, "e2", bitcask);
    int st = ct_node_wait_exit(&n, CT_READY_MS);
    char *err = output("e2", "err");
    cr_assert_neq(st, 0, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "holds leveldb data") && strstr(err, "storage.backend = leveldb"),
              "%s", err);
    free(err);

    /* the default (auto) follows the data dir: LevelDB here, bitcask in a new one */
    start_node(&n, "e3", "8");
    err = output("e3", "err");
    cr_assert(strstr(err, "storage leveldb (storage.backend = auto)"), "%s", err);
    free(err);
    cr_assert(pb_ping(n.client_port));
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

Test(cairnd, cookie_is_generated_once_and_reused)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    start_node(&n, "k1", "8");
    char path[400];
    snprintf(path, sizeof path, "%s/cookie", n.data);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "a cookie file is generated");
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    char *first = ct_slurp(path);
    cr_assert(strlen(first) >= 16, "cookie '%s'", first);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);

    start_node(&n, "k2", "8");
    char *second = ct_slurp(path);
    cr_assert_str_eq(first, second, "the cookie is reused on restart");
    cr_assert_eq(admin(&n, "k2a", "ping", NULL), 0,
                 "cairn-admin authenticates with the file");

    /* a wrong cookie is refused */
    char *args[] = {"--node", n.nodename, "--cookie", "WRONG", "--timeout", "5000", "ping", NULL};
    cr_assert_eq(run("cairn-admin", "k2b", args), 1);
    char *err = output("k2b", "err");
    cr_assert(strstr(err, "refused the cookie"), "%s", err);
    free(err);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
    free(first);
    free(second);
}

Test(cairnd, one_node_per_data_dir)
{
    ct_node_t a, b;
    ct_node_init(&a, tmp_dir);
    start_node(&a, "d1", "8");
    ct_node_init(&b, tmp_dir); /* same data dir, other ports */
    spawn_node(&b, "d2", "8");
    int st = ct_node_wait_exit(&b, CT_READY_MS);
    char *err = output("d2", "err");
    cr_assert_eq(st, 1, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "in use by another cairnd"), "%s", err);
    free(err);
    cr_assert(pb_ping(a.client_port), "the first node is undisturbed");
    cr_assert_eq(ct_node_stop(&a, SIGTERM), 0);
}

Test(cairnd, restarts_after_sigkill)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    start_node(&n, "s1", "8");
    cr_assert_eq(ct_node_stop(&n, SIGKILL), 128 + SIGKILL);

    start_node(&n, "s2", "8"); /* same data dir */
    cr_assert(pb_ping(n.client_port));
    cr_assert_eq(admin(&n, "s2a", "ping", NULL), 0);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);
}

Test(cairnd, admin_status_and_crash_vnode)
{
    ct_node_t n;
    ct_node_init(&n, tmp_dir);
    start_node(&n, "a1", "8");

    cr_assert_eq(admin(&n, "ping", "ping", NULL), 0);
    char *out = output("ping", "out");
    cr_assert(strstr(out, "pong from ") && strstr(out, n.nodename), "%s", out);
    free(out);

    cr_assert_eq(admin(&n, "st1", "status", "--json"), 0);
    out = output("st1", "out");
    cr_assert(strstr(out, "\"ring_size\":8,\"vnodes_running\":8,\"vnodes_total\":8"), "%s", out);
    cr_assert(strstr(out, "\"vnode_crashes\":0"), "%s", out);
    free(out);

    cr_assert_eq(admin(&n, "cv", "crash-vnode", "3"), 0);
    out = output("cv", "out");
    cr_assert(strstr(out, "vnode 3"), "%s", out);
    free(out);

    /* the supervisor restarts it: all 8 running again, one crash counted */
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        cr_assert_eq(admin(&n, "st2", "status", "--json"), 0);
        out = output("st2", "out");
        back = strstr(out, "\"vnodes_running\":8,") && strstr(out, "\"vnode_crashes\":1");
        free(out);
        if (!back)
            usleep(100000);
    }
    cr_assert(back, "the crashed vnode came back");
    cr_assert(pb_ping(n.client_port));

    cr_assert_eq(admin(&n, "cv2", "crash-vnode", "99"), 1);
    char *err = output("cv2", "err");
    cr_assert(strstr(err, "no partition 99"), "%s", err);
    free(err);

    cr_assert_eq(admin(&n, "txt", "status", NULL), 0);
    out = output("txt", "out");
    cr_assert(strstr(out, "vnodes        8 of 8 running"), "%s", out);
    free(out);
    cr_assert_eq(ct_node_stop(&n, SIGTERM), 0);

    char *args[] = {"--node", n.nodename, "--data-dir", n.data, "--timeout", "3000", "ping", NULL};
    cr_assert_eq(run("cairn-admin", "gone", args), 1, "a stopped node cannot be reached");
    err = output("gone", "err");
    cr_assert(strstr(err, "cannot reach"), "%s", err);
    free(err);
}
