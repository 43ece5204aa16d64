/*
 * test_node_cairnd.c — the real cairnd binary (and cairn-admin) as an operator meets them:
 * the ready line with the real client port, a PB ping over a plain socket, refusals of bad
 * configuration (exit 2, key named), a ring-size change against an existing ring, the cookie
 * generated once and reused, one node per data dir, SIGTERM (exit 0, promptly), restart after
 * SIGKILL, and admin ping / status / crash-vnode over the node link.
 *
 * The binaries are found next to this test: <BUILD>/<variant>/tests/test_node_cairnd ->
 * <BUILD>/<variant>/bin/{cairnd,cairn_admin}. Every port is a free port; every wait is
 * bounded; every process started is killed at the end of its test.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 15000

static char bin_dir[PATH_MAX];
static char tmp_dir[256];
static pid_t started[16];
static int nstarted;

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void setup(void)
{
    ssize_t n = readlink("/proc/self/exe", bin_dir, sizeof bin_dir - 1);
    cr_assert(n > 0);
    bin_dir[n] = 0;
    *strrchr(bin_dir, '/') = 0; /* .../tests */
    *strrchr(bin_dir, '/') = 0; /* .../<variant> */
    strcat(bin_dir, "/bin");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cairnd", bin_dir);
    cr_assert(access(path, X_OK) == 0, "no cairnd at %s (build it first)", path);
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/cairn-test-cairnd-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    nstarted = 0;
}

static void teardown(void)
{
    for (int i = 0; i < nstarted; i++) {
        if (started[i] > 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    if (f) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    return buf;
}

/* Starts bin/<prog> with argv (NULL-terminated), stdout/stderr to <tmp>/<tag>.out/.err. */
static pid_t spawn(const char *prog, const char *tag, char *const args[])
{
    char path[PATH_MAX + 32], out[300], err[300];
    snprintf(path, sizeof path, "%s/%s", bin_dir, prog);
    snprintf(out, sizeof out, "%s/%s.out", tmp_dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", tmp_dir, tag);
    char *argv[40];
    int argc = 0;
    argv[argc++] = path;
    for (int i = 0; args[i] && argc < 39; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(path, argv);
        _exit(127);
    }
    if (nstarted < 16)
        started[nstarted++] = pid;
    return pid;
}

static void forget(pid_t pid)
{
    for (int i = 0; i < nstarted; i++)
        if (started[i] == pid)
            started[i] = 0;
}

/* Waits for pid to exit within ms; returns its exit status, or -1 on timeout, or 128+signal. */
static int wait_exit(pid_t pid, uint32_t ms)
{
    uint64_t end = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            forget(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (now_ms() > end)
            return -1;
        usleep(10000);
    }
}

/* Runs a program to completion (bounded); returns its exit status. */
static int run(const char *prog, const char *tag, char *const args[])
{
    pid_t pid = spawn(prog, tag, args);
    int st = wait_exit(pid, 60000);
    cr_assert(st >= 0, "%s did not finish", prog);
    return st;
}

static char *output(const char *tag, const char *stream)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.%s", tmp_dir, tag, stream);
    return slurp(path);
}

typedef struct node_s {
    pid_t pid;
    char tag[32];
    char data[280];
    char nodename[64];
    int node_port;
    int client_port; /* from the ready line */
} node_t;

static void node_init(node_t *n, const char *tag)
{
    memset(n, 0, sizeof *n);
    snprintf(n->tag, sizeof n->tag, "%s", tag);
    snprintf(n->data, sizeof n->data, "%s/data", tmp_dir);
    n->node_port = free_port();
    snprintf(n->nodename, sizeof n->nodename, "t@127.0.0.1:%d", n->node_port);
}

/* Starts cairnd for n with extra flags (NULL-terminated list after ring size). */
static pid_t node_spawn(node_t *n, const char *ring_size, ...)
{
    char *args[32];
    int k = 0;
    args[k++] = "--nodename";
    args[k++] = n->nodename;
    args[k++] = "--listen";
    args[k++] = "127.0.0.1:0";
    args[k++] = "--data-dir";
    args[k++] = n->data;
    args[k++] = "--ring-size";
    args[k++] = (char *)ring_size;
    args[k++] = "--set";
    args[k++] = "buckets.default.n_val=1";
    va_list ap;
    va_start(ap, ring_size);
    char *extra;
    while ((extra = va_arg(ap, char *)) && k < 30)
        args[k++] = extra;
    va_end(ap);
    args[k] = NULL;
    n->pid = spawn("cairnd", n->tag, args);
    return n->pid;
}

/* Waits for the ready line; returns false if cairnd exited or timed out. */
static bool node_wait_ready(node_t *n)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.out", tmp_dir, n->tag);
    uint64_t end = now_ms() + READY_TIMEOUT_MS;
    while (now_ms() < end) {
        char *out = slurp(path);
        char *line = strstr(out, " ready, client port 127.0.0.1:");
        if (line) {
            n->client_port = atoi(line + strlen(" ready, client port 127.0.0.1:"));
            free(out);
            return true;
        }
        free(out);
        if (waitpid(n->pid, NULL, WNOHANG) == n->pid) {
            forget(n->pid);
            return false;
        }
        usleep(20000);
    }
    return false;
}

static void node_start_ok(node_t *n, const char *ring_size)
{
    node_spawn(n, ring_size, NULL);
    bool ready = node_wait_ready(n);
    char *err = ready ? NULL : output(n->tag, "err");
    cr_assert(ready, "cairnd did not get ready:\n%s", err ? err : "");
}

static int node_term(node_t *n)
{
    cr_assert_eq(kill(n->pid, SIGTERM), 0);
    return wait_exit(n->pid, STOP_TIMEOUT_MS);
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

/* cairn_admin --node <n> --data-dir <data> <cmd...>; returns its exit status. */
static int admin(const node_t *n, const char *tag, const char *a1, const char *a2, const char *a3)
{
    char *args[12] = {"--node", (char *)n->nodename, "--data-dir", (char *)n->data, "--timeout",
                      "10000",  (char *)a1,          (char *)a2,   (char *)a3,      NULL};
    return run("cairn-admin", tag, args);
}

/* ---------------------------------------------------------------- tests */

TestSuite(cairnd, .init = setup, .fini = teardown, .timeout = 120);

Test(cairnd, starts_prints_ready_answers_ping_and_stops_on_sigterm)
{
    node_t n;
    node_init(&n, "node");
    node_start_ok(&n, "8");
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

    uint64_t t0 = now_ms();
    int st = node_term(&n);
    uint64_t took = now_ms() - t0;
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
    char *file_log = slurp(path);
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
    node_t n;
    node_init(&n, "r1");
    node_start_ok(&n, "8");
    cr_assert_eq(node_term(&n), 0);

    snprintf(n.tag, sizeof n.tag, "r2");
    node_spawn(&n, "16", NULL);
    int st = wait_exit(n.pid, READY_TIMEOUT_MS);
    char *err = output("r2", "err");
    cr_assert_eq(st, 2, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "ring_size") && strstr(err, "holds a ring of 8 partitions") &&
                  strstr(err, "asks for 16"),
              "%s", err);
    free(err);

    snprintf(n.tag, sizeof n.tag, "r3");
    node_start_ok(&n, "8");
    cr_assert(pb_ping(n.client_port));
    cr_assert_eq(node_term(&n), 0);
}

Test(cairnd, cookie_is_generated_once_and_reused)
{
    node_t n;
    node_init(&n, "k1");
    node_start_ok(&n, "8");
    char path[400];
    snprintf(path, sizeof path, "%s/cookie", n.data);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "a cookie file is generated");
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    char *first = slurp(path);
    cr_assert(strlen(first) >= 16, "cookie '%s'", first);
    cr_assert_eq(node_term(&n), 0);

    snprintf(n.tag, sizeof n.tag, "k2");
    node_start_ok(&n, "8");
    char *second = slurp(path);
    cr_assert_str_eq(first, second, "the cookie is reused on restart");
    cr_assert_eq(admin(&n, "k2a", "ping", NULL, NULL), 0,
                 "cairn-admin authenticates with the file");

    /* a wrong cookie is refused */
    char *args[] = {"--node", n.nodename, "--cookie", "WRONG", "--timeout", "5000", "ping", NULL};
    cr_assert_eq(run("cairn-admin", "k2b", args), 1);
    char *err = output("k2b", "err");
    cr_assert(strstr(err, "refused the cookie"), "%s", err);
    free(err);
    cr_assert_eq(node_term(&n), 0);
    free(first);
    free(second);
}

Test(cairnd, one_node_per_data_dir)
{
    node_t a, b;
    node_init(&a, "d1");
    node_start_ok(&a, "8");
    node_init(&b, "d2"); /* same data dir, other ports */
    node_spawn(&b, "8", NULL);
    int st = wait_exit(b.pid, READY_TIMEOUT_MS);
    char *err = output("d2", "err");
    cr_assert_eq(st, 1, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "in use by another cairnd"), "%s", err);
    free(err);
    cr_assert(pb_ping(a.client_port), "the first node is undisturbed");
    cr_assert_eq(node_term(&a), 0);
}

Test(cairnd, restarts_after_sigkill)
{
    node_t n;
    node_init(&n, "s1");
    node_start_ok(&n, "8");
    cr_assert_eq(kill(n.pid, SIGKILL), 0);
    cr_assert_eq(wait_exit(n.pid, STOP_TIMEOUT_MS), 128 + SIGKILL);

    snprintf(n.tag, sizeof n.tag, "s2"); /* same data dir and node port */
    node_start_ok(&n, "8");
    cr_assert(pb_ping(n.client_port));
    cr_assert_eq(admin(&n, "s2a", "ping", NULL, NULL), 0);
    cr_assert_eq(node_term(&n), 0);
}

Test(cairnd, admin_status_and_crash_vnode)
{
    node_t n;
    node_init(&n, "a1");
    node_start_ok(&n, "8");

    cr_assert_eq(admin(&n, "ping", "ping", NULL, NULL), 0);
    char *out = output("ping", "out");
    cr_assert(strstr(out, "pong from ") && strstr(out, n.nodename), "%s", out);
    free(out);

    cr_assert_eq(admin(&n, "st1", "status", "--json", NULL), 0);
    out = output("st1", "out");
    cr_assert(strstr(out, "\"ring_size\":8,\"vnodes_running\":8,\"vnodes_total\":8"), "%s", out);
    cr_assert(strstr(out, "\"vnode_crashes\":0"), "%s", out);
    free(out);

    cr_assert_eq(admin(&n, "cv", "crash-vnode", "3", NULL), 0);
    out = output("cv", "out");
    cr_assert(strstr(out, "vnode 3"), "%s", out);
    free(out);

    /* the supervisor restarts it: all 8 running again, one crash counted */
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        cr_assert_eq(admin(&n, "st2", "status", "--json", NULL), 0);
        out = output("st2", "out");
        back = strstr(out, "\"vnodes_running\":8,") && strstr(out, "\"vnode_crashes\":1");
        free(out);
        if (!back)
            usleep(100000);
    }
    cr_assert(back, "the crashed vnode came back");
    cr_assert(pb_ping(n.client_port));

    cr_assert_eq(admin(&n, "cv2", "crash-vnode", "99", NULL), 1);
    char *err = output("cv2", "err");
    cr_assert(strstr(err, "no partition 99"), "%s", err);
    free(err);

    cr_assert_eq(admin(&n, "txt", "status", NULL, NULL), 0);
    out = output("txt", "out");
    cr_assert(strstr(out, "vnodes        8 of 8 running"), "%s", out);
    free(out);
    cr_assert_eq(node_term(&n), 0);

    char *args[] = {"--node", n.nodename, "--data-dir", n.data, "--timeout", "3000", "ping", NULL};
    cr_assert_eq(run("cairn-admin", "gone", args), 1, "a stopped node cannot be reached");
    err = output("gone", "err");
    cr_assert(strstr(err, "cannot reach"), "%s", err);
    free(err);
}
