/*
 * cairnd_test.h — helpers shared by the suites that drive the real programs against a real
 * cairnd (tests/unit/test_client.c, test_client_cli.c, test_node_cairnd.c,
 * test_node_durability.c): finding a program next to the test binary, running programs with
 * bounded waits, and starting, stopping and restarting cairnd on ports the kernel picks (the
 * client port and the node-link port are both asked for as port 0; the real ones, and the
 * node's real name, are read from its ready line).
 *
 * Every process started here is remembered (in this test process) until it is seen to exit,
 * so that a suite's .fini can end whatever a failed test left running with ct_kill_all().
 * Each suite is one .c compiled alone, so everything here is static.
 */
#ifndef CAIRN_CAIRND_TEST_H
#define CAIRN_CAIRND_TEST_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CT_READY_MS 60000 /* cairnd under ASan on a busy machine: start-up bound */
#define CT_STOP_MS 15000  /* SIGTERM to exit */
#define CT_RUN_MS 60000   /* a program run to completion (cairn-admin, cairn, cairnd --help) */

#include "criterion_lsan.h"

/* ---------------------------------------------------------------- small things */

static inline int64_t ct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void ct_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The program `name` built with this test: $<env> when that is set and not empty, else
 * <dir of this test binary>/../bin/<name> (<BUILD>/<variant>/tests -> <BUILD>/<variant>/bin). */
static inline void ct_program(const char *env, const char *name, char *out, size_t cap)
{
    const char *e = env ? getenv(env) : NULL;
    if (e && *e) {
        snprintf(out, cap, "%s", e);
        return;
    }
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, cap, "%s/../bin/%s", self, name);
}

/* The whole of a file, NUL-terminated (free it); "" when it cannot be read. Never NULL. */
static inline char *ct_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    while (f) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        if (got == 0)
            break;
        len += got;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                abort();
            buf = bigger;
            cap *= 2;
        }
    }
    if (f)
        fclose(f);
    buf[len] = '\0';
    return buf;
}

static inline int ct_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf dir (quietly; a directory that is not there is fine). */
static inline void ct_rmtree(const char *dir)
{
    if (dir && *dir)
        nftw(dir, ct_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes a fresh directory /tmp/cairn-test-<what>-XXXXXX into out; false (errno set) when it
 * cannot. The caller removes it with ct_rmtree. */
static inline bool ct_tmpdir(char *out, size_t cap, const char *what)
{
    snprintf(out, cap, "/tmp/cairn-test-%s-XXXXXX", what);
    return mkdtemp(out) != NULL;
}

/* A loopback port where nothing listens right now (bound to port 0, then closed). Only for
 * "nobody answers there" cases: a server is never started on it (it could be taken by then). */
static inline int ct_unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                  getsockname(fd, (struct sockaddr *)&a, &len) == 0,
              "no free loopback port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------- processes */

#define CT_MAX_PROCS 64
static pid_t ct_procs[CT_MAX_PROCS]; /* started here and not yet seen to exit */

static inline void ct_forget(pid_t pid)
{
    for (int i = 0; i < CT_MAX_PROCS; i++)
        if (ct_procs[i] == pid)
            ct_procs[i] = 0;
}

/* Starts `path` with args (NULL-terminated, argv[0] excluded), stdin from /dev/null, stdout
 * to out_path and stderr to err_path (NULL: the same file as stdout). The child is killed
 * if the thread that started it ends (PR_SET_PDEATHSIG), so nothing outlives a crashed test:
 * start programs from the test's main thread. Returns its pid, or -1 when fork failed. */
static inline pid_t ct_spawn(const char *path, char *const args[], const char *out_path,
                             const char *err_path)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)path;
    for (int i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = err_path ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : out;
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(path, argv);
        _exit(127);
    }
    for (int i = 0; i < CT_MAX_PROCS; i++) {
        if (ct_procs[i] == 0) {
            ct_procs[i] = pid;
            break;
        }
    }
    return pid;
}

/* Waits up to ms for pid to exit: its exit status, 128 + the signal that ended it, -1 if it
 * is still running (it is left running), or -2 if it is not a child of ours (any more). */
static inline int ct_wait_exit(pid_t pid, uint32_t ms)
{
    int64_t end = ct_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            ct_forget(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0 && errno != EINTR) {
            ct_forget(pid);
            return -2;
        }
        if (ct_now_ms() > end)
            return -1;
        ct_sleep_ms(5);
    }
}

/* Sends sig, waits up to ms, and SIGKILLs it if it is still there. Returns what ct_wait_exit
 * saw after sig (-1: it had to be killed). */
static inline int ct_signal_and_wait(pid_t pid, int sig, uint32_t ms)
{
    kill(pid, sig);
    int st = ct_wait_exit(pid, ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        ct_wait_exit(pid, CT_STOP_MS);
    }
    return st;
}

/* Runs a program to completion (bounded by ms: then it is killed and the test fails). Returns
 * its exit status. */
static inline int ct_run(const char *path, char *const args[], const char *out_path,
                         const char *err_path, uint32_t ms)
{
    pid_t pid = ct_spawn(path, args, out_path, err_path);
    cr_assert(pid > 0, "cannot start %s: %s", path, strerror(errno));
    int st = ct_wait_exit(pid, ms);
    cr_assert_neq(st, -2, "lost track of %s", path);
    if (st == -1) {
        kill(pid, SIGKILL);
        ct_wait_exit(pid, CT_STOP_MS);
        cr_assert_fail("%s did not finish within %u ms", path, ms);
    }
    return st;
}

/* Kills (SIGKILL) and reaps every process started here that is still running. */
static inline void ct_kill_all(void)
{
    for (int i = 0; i < CT_MAX_PROCS; i++) {
        pid_t pid = ct_procs[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            ct_procs[i] = 0;
        }
    }
}

/* ---------------------------------------------------------------- a cairnd */

typedef struct ct_node {
    pid_t pid;                /* 0 when not running */
    char dir[256];            /* the test's directory: output files go here */
    char data[272];           /* --data-dir: <dir>/data */
    char out[320], err[320];  /* stdout, stderr of the last start: <dir>/<tag>.out, .err */
    char nodename[160];       /* from the ready line: <name>@127.0.0.1:<real node-link port> */
    char host[80];            /* from the ready line: "127.0.0.1:<real client port>" */
    int client_port;
} ct_node_t;

/* A node whose files live in dir (which the caller made and removes), data in <dir>/data. */
static inline void ct_node_init(ct_node_t *n, const char *dir)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    snprintf(n->data, sizeof n->data, "%s/data", dir);
}

/* Starts cairnd (found with ct_program("CAIRND", "cairnd")) without waiting for it:
 *   cairnd --nodename cairn@127.0.0.1:0 --listen 127.0.0.1:0 --data-dir <data> ARGS...
 * (args NULL-terminated, or NULL), stdout and stderr to <dir>/<tag>.out and <dir>/<tag>.err.
 * The same data dir can be started again after a stop, with another tag. False with the
 * reason in err when it cannot be started at all. Usable outside a test (no assertion). */
static inline bool ct_node_launch(ct_node_t *n, const char *tag, char *const args[], char *err,
                                  size_t errlen)
{
    char bin[PATH_MAX];
    ct_program("CAIRND", "cairnd", bin, sizeof bin);
    if (access(bin, X_OK) != 0) {
        snprintf(err, errlen, "no cairnd at %.500s (build it first, or set $CAIRND)", bin);
        return false;
    }
    char *argv[48] = {"--nodename", "cairn@127.0.0.1:0", "--listen", "127.0.0.1:0",
                      "--data-dir", n->data};
    int argc = 6;
    for (int i = 0; args && args[i] && argc < 47; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    char dir[sizeof n->dir]; /* a copy: gcc cannot tell n->dir from n->out apart (restrict) */
    memcpy(dir, n->dir, sizeof dir);
    snprintf(n->out, sizeof n->out, "%s/%s.out", dir, tag);
    snprintf(n->err, sizeof n->err, "%s/%s.err", dir, tag);
    n->nodename[0] = n->host[0] = '\0';
    n->client_port = 0;
    n->pid = ct_spawn(bin, argv, n->out, n->err);
    if (n->pid < 0) {
        n->pid = 0;
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return false;
    }
    return true;
}

/* ct_node_launch inside a test (fails it when cairnd cannot be started): for a start that is
 * expected to be refused (see ct_node_wait_exit) or is waited for with ct_node_wait_ready. */
static inline pid_t ct_node_spawn(ct_node_t *n, const char *tag, char *const args[])
{
    char err[700];
    bool ok = ct_node_launch(n, tag, args, err, sizeof err);
    cr_assert(ok, "%s", err);
    return n->pid;
}

/* Reads "cairnd: <nodename> ready, client port <host:port>, data <dir>" (a complete line) from
 * out into n. */
static inline bool ct_parse_ready(const char *out, ct_node_t *n)
{
    static const char lead[] = "cairnd: ", mid[] = " ready, client port ", tail[] = ", data ";
    for (const char *line = strstr(out, lead); line; line = strstr(line + 1, lead)) {
        const char *end = strchr(line, '\n');
        if (!end)
            return false; /* not all written yet */
        const char *ready = strstr(line, mid);
        const char *host = ready ? ready + strlen(mid) : NULL;
        const char *host_end = host ? strstr(host, tail) : NULL;
        if (!host_end || host_end > end)
            continue;
        const char *colon = memrchr(host, ':', (size_t)(host_end - host));
        if (!colon)
            continue;
        const char *name = line + strlen(lead);
        snprintf(n->nodename, sizeof n->nodename, "%.*s", (int)(ready - name), name);
        snprintf(n->host, sizeof n->host, "%.*s", (int)(host_end - host), host);
        n->client_port = atoi(colon + 1);
        return n->client_port > 0;
    }
    return false;
}

/* The last `max` bytes of a file, for messages (static buffer). */
static inline const char *ct_tail(const char *path, size_t max)
{
    static char text[4096];
    char *all = ct_slurp(path);
    size_t len = strlen(all);
    if (max > sizeof text - 1)
        max = sizeof text - 1;
    snprintf(text, sizeof text, "%s", all + (len > max ? len - max : 0));
    free(all);
    return text;
}

/* Waits (up to ms) for n's ready line and fills nodename, host and client_port. False with a
 * reason (and the end of cairnd's stderr) in err when it exited first or did not get ready in
 * time (it is killed then). */
static inline bool ct_node_wait_ready(ct_node_t *n, uint32_t ms, char *err, size_t errlen)
{
    int64_t end = ct_now_ms() + ms;
    for (;;) {
        char *out = ct_slurp(n->out);
        bool ready = ct_parse_ready(out, n);
        free(out);
        if (ready)
            return true;
        int st = ct_wait_exit(n->pid, 0);
        if (st != -1) {
            n->pid = 0;
            snprintf(err, errlen, "cairnd exited with status %d before it was ready:\n%.1500s", st,
                     ct_tail(n->err, 1500));
            return false;
        }
        if (ct_now_ms() > end) {
            ct_signal_and_wait(n->pid, SIGKILL, CT_STOP_MS);
            n->pid = 0;
            snprintf(err, errlen, "cairnd printed no ready line within %u ms:\n%.1500s", ms,
                     ct_tail(n->err, 1500));
            return false;
        }
        ct_sleep_ms(10);
    }
}

/* ct_node_launch + ct_node_wait_ready (bounded by CT_READY_MS). Usable outside a test. */
static inline bool ct_node_start(ct_node_t *n, const char *tag, char *const args[], char *err,
                                 size_t errlen)
{
    return ct_node_launch(n, tag, args, err, errlen) &&
           ct_node_wait_ready(n, CT_READY_MS, err, errlen);
}

/* The same inside a test: fails it when cairnd does not get ready. */
static inline void ct_node_start_ok(ct_node_t *n, const char *tag, char *const args[])
{
    char err[2048];
    bool ok = ct_node_start(n, tag, args, err, sizeof err);
    cr_assert(ok, "%s", err);
}

/* Waits up to ms for n to exit on its own: as ct_wait_exit. */
static inline int ct_node_wait_exit(ct_node_t *n, uint32_t ms)
{
    int st = ct_wait_exit(n->pid, ms);
    if (st != -1)
        n->pid = 0;
    return st;
}

/* Sends sig (SIGTERM: a clean stop; SIGKILL: a crash) and waits up to CT_STOP_MS; SIGKILL if
 * it is still there then. Returns its exit status, 128 + signal, or -1 when it had to be
 * killed. */
static inline int ct_node_stop(ct_node_t *n, int sig)
{
    if (n->pid <= 0)
        return -1;
    int st = ct_signal_and_wait(n->pid, sig, CT_STOP_MS);
    n->pid = 0;
    return st;
}

/* Runs cairn-admin --node <n's name> --data-dir <n's data> --timeout 10000 CMD... (cmd
 * NULL-terminated) to completion, output in <dir>/<tag>.out and .err; returns its status. */
static inline int ct_admin(const ct_node_t *n, const char *tag, char *const cmd[])
{
    char bin[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
    ct_program("CAIRN_ADMIN", "cairn-admin", bin, sizeof bin);
    snprintf(out, sizeof out, "%s/%s.out", n->dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", n->dir, tag);
    char *argv[32] = {"--node", (char *)n->nodename, "--data-dir", (char *)n->data, "--timeout",
                      "10000"};
    int argc = 6;
    for (int i = 0; cmd && cmd[i] && argc < 31; i++)
        argv[argc++] = cmd[i];
    argv[argc] = NULL;
    return ct_run(bin, argv, out, err, CT_RUN_MS);
}

/* ---------------------------------------------------------------- one node for a whole suite */

/* The "host:port" of the suite's shared node (see ct_main_with_shared_node); fails the test
 * when it could not be started. */
static inline const char *ct_shared_host(void)
{
    const char *err = getenv("CAIRN_TEST_SERVER_ERROR");
    if (err)
        cr_assert_fail("no cairnd to test against: %s", err);
    const char *h = getenv("CAIRN_TEST_HOST");
    cr_assert(h, "CAIRN_TEST_HOST not set");
    return h;
}

/* A Criterion main() that starts one cairnd (in /tmp/cairn-test-<what>-*, with args) before
 * the tests, which run as separate processes and find it through $CAIRN_TEST_HOST, and stops
 * it (SIGTERM) after them. If it cannot start, every test that asks for it fails with the
 * reason. */
static inline int ct_main_with_shared_node(int argc, char *argv[], const char *what,
                                           char *const args[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true)) {
        ct_node_t shared;
        char dir[256], err[2048];
        bool up = false;
        if (!ct_tmpdir(dir, sizeof dir, what)) {
            snprintf(err, sizeof err, "mkdtemp: %s", strerror(errno));
        } else {
            ct_node_init(&shared, dir);
            up = ct_node_start(&shared, "shared", args, err, sizeof err);
        }
        if (up)
            setenv("CAIRN_TEST_HOST", shared.host, 1);
        else
            setenv("CAIRN_TEST_SERVER_ERROR", err, 1);
        result = !criterion_run_all_tests(tests);
        if (up)
            ct_node_stop(&shared, SIGTERM);
        ct_rmtree(dir);
    }
    criterion_finalize(tests);
    return result;
}

#endif
