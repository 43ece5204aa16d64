/*
 * cairn-admin_main.c — cairn-admin, the operator's tool: it joins the node link of one
 * cairnd with the cluster cookie, sends one request (proto/admin.proto) and prints the
 * answer, for people (admin/admin_print.c) or as JSON (admin/admin_json.c).
 *
 * Owns the command table (name, arguments, help line, the registered name on the node that
 * answers: "cairn_admin" for ping/status/crash-vnode, node/admin_endpoint.c; "cairn_ring"
 * for the cluster commands, node/ring_mgr.c), the options, and the exit status.
 *
 * Like riak-admin over Erlang distribution, it starts a tiny runtime of its own, named
 * cairn-admin-<pid>@127.0.0.1:<free port>, connects to the node by name and authenticates
 * with the cookie; it never uses the public client port.
 *
 * Exit status: 0 success; 1 the node could not be reached, refused the cookie, did not
 * answer in time or answered with an error (its message on stderr), `ringready` found
 * the ring not ready, or `transfer-limit N` could not set the limit on every member; 2 bad
 * usage.
 */
#include "admin/admin_json.h"
#include "admin/admin_print.h"
#include "proto/admin.pb-c.h"
#include "runtime/dist.h"
#include "runtime/rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_NODE "cairn@127.0.0.1:8086"
#define DEFAULT_DATA_DIR "./data"
/* Above the ring manager's own waits (10 s for a forward to the claimant or a join's ring
 * request), so its explanation arrives before this tool gives up. */
#define DEFAULT_TIMEOUT_MS 15000u

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define ADMIN_ENDPOINT "cairn_admin" /* node/admin_endpoint.c */
#define RING_ENDPOINT "cairn_ring"   /* node/ring_mgr.h RING_MGR_NAME */

/* ---------------------------------------------------------------- the commands */

typedef enum {
    ARGS_NONE,
    ARGS_PARTITION,
    ARGS_NODE,
    ARGS_OPT_NODE,
    ARGS_TWO_NODES,
    ARGS_LIMIT, /* [[NODE] N] */
    ARGS_KEYS,  /* BUCKET KEY... */
} args_t;

#define REPLICAS_MAX_KEYS 1024 /* node/replica_probe.h REPLICA_PROBE_MAX_KEYS */

#define LIMIT_MAX 1024u /* handoff.concurrency's range, 1.. (node/config.c) */

typedef struct admin_cmd_s {
    const char *name;         /* as typed: "status", "cluster join" */
    const char *args;         /* for the help */
    args_t argspec;
    Cairn__Admin__Command command;
    const char *endpoint;     /* the registered process on the node that answers */
    const char *help;         /* one line */
} admin_cmd_t;

static const admin_cmd_t commands[] = {
    {"ping", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__PING, ADMIN_ENDPOINT,
     "check that the node answers"},
    {"status", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__STATUS, ADMIN_ENDPOINT,
     "this node's stats: vnodes, links, requests, latencies"},
    {"crash-vnode", "P", ARGS_PARTITION, CAIRN__ADMIN__COMMAND__CRASH_VNODE, ADMIN_ENDPOINT,
     "debug: crash partition P's vnode (it is restarted)"},
    {"replicas", "BUCKET KEY...", ARGS_KEYS, CAIRN__ADMIN__COMMAND__REPLICAS, ADMIN_ENDPOINT,
     "debug: each primary copy of the keys, read without repair"},
    {"member-status", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__MEMBER_STATUS, RING_ENDPOINT,
     "members: status, ring share now and once settled"},
    {"ring-status", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__RING_STATUS, RING_ENDPOINT,
     "claimant, ring ready, pending handoffs, unreachable nodes"},
    {"ringready", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__RINGREADY, RING_ENDPOINT,
     "do all members hold the same ring? (exit 1 if not)"},
    {"transfers", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__TRANSFERS, RING_ENDPOINT,
     "transfers running on every member, and those waiting"},
    {"transfer-limit", "[[NODE] N]", ARGS_LIMIT, CAIRN__ADMIN__COMMAND__TRANSFER_LIMIT,
     RING_ENDPOINT, "every member's handoff limit; N: set it (on NODE only)"},
    {"down", "NODE", ARGS_NODE, CAIRN__ADMIN__COMMAND__DOWN, RING_ENDPOINT,
     "mark the unreachable NODE down"},
    {"cluster join", "NODE", ARGS_NODE, CAIRN__ADMIN__COMMAND__CLUSTER_JOIN, RING_ENDPOINT,
     "the --node (alone so far) joins NODE's cluster"},
    {"cluster leave", "[NODE]", ARGS_OPT_NODE, CAIRN__ADMIN__COMMAND__CLUSTER_LEAVE,
     RING_ENDPOINT, "stage: NODE (default the --node) hands off and leaves"},
    {"cluster force-remove", "NODE", ARGS_NODE, CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REMOVE,
     RING_ENDPOINT, "stage: remove NODE at once, its data not moved"},
    {"cluster replace", "OLD NEW", ARGS_TWO_NODES, CAIRN__ADMIN__COMMAND__CLUSTER_REPLACE,
     RING_ENDPOINT, "stage: OLD hands off to NEW (joining) and leaves"},
    {"cluster force-replace", "OLD NEW", ARGS_TWO_NODES,
     CAIRN__ADMIN__COMMAND__CLUSTER_FORCE_REPLACE, RING_ENDPOINT,
     "stage: NEW owns OLD's partitions at once; OLD removed"},
    {"cluster plan", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__CLUSTER_PLAN, RING_ENDPOINT,
     "the staged changes and the ring they would make"},
    {"cluster commit", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__CLUSTER_COMMIT, RING_ENDPOINT,
     "apply the plan"},
    {"cluster clear", "", ARGS_NONE, CAIRN__ADMIN__COMMAND__CLUSTER_CLEAR, RING_ENDPOINT,
     "drop the staged changes"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static bool is_cluster_cmd(const admin_cmd_t *c)
{
    return strncmp(c->name, "cluster ", 8) == 0;
}

static void list_commands(FILE *f, bool cluster_only)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const admin_cmd_t *c = &commands[i];
        if (cluster_only && !is_cluster_cmd(c))
            continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
        fprintf(f, "  %-30s %s\n", left, c->help);
    }
}

/* clang-format off */
static void usage(FILE *f)
{
    fprintf(f,
"Usage: cairn-admin [--node NAME] [--cookie C | --data-dir DIR] [--timeout MS] [--json]\n"
"                   COMMAND [ARGS]\n"
"\n"
"Talks to a running cairnd over its node link (authenticated with the cluster cookie), the\n"
"way riak-admin talks to Riak. NODE names are name@host:port, as in cairnd's nodename.\n"
"\n"
"Commands:\n");
    list_commands(f, false);
    fprintf(f,
"\n"
"Staged changes (leave, force-remove, replace, force-replace) are kept by the claimant until\n"
"`cluster commit`; any node forwards them there. Joining nodes are part of the next plan.\n"
"A cluster: `cluster join` on each new node, then `cluster plan` and `cluster commit`.\n"
"\n"
"`transfer-limit N` sets how many partition transfers each member sends at once (N >= 1),\n"
"on every member that is up; `transfer-limit NODE N` on NODE alone. Until the node\n"
"restarts: then handoff.concurrency from its configuration applies again.\n"
"\n"
"`replicas BUCKET KEY...` reads each key's primary replicas (bucket type default) straight\n"
"from their vnodes, repairing nothing, and tells whether they agree (up to %d keys).\n"
"\n"
"Options:\n"
"  --node NAME       the node to talk to (default " DEFAULT_NODE ")\n"
"  --cookie C        the cluster cookie (default: read from <data dir>/cookie)\n"
"  --data-dir DIR    where to read the cookie file from (default " DEFAULT_DATA_DIR ")\n"
"  --timeout MS      how long to wait for the node (default %u)\n"
"  --json            print the whole answer as one JSON object on one line\n"
"  -v, --verbose     show the runtime's log lines (connection details)\n"
"  -h, --help        this help; `cairn-admin cluster --help`: the cluster commands\n"
"\n"
"Exit status: 0 on success; 1 when the node cannot be reached, refuses the cookie, does not\n"
"answer in time or answers with an error (printed on stderr; with --json also as\n"
"{\"ok\":false,...} on stdout), when `ringready` finds the ring not ready, and when\n"
"`transfer-limit N` could not reach every member; 2 for bad usage.\n",
            REPLICAS_MAX_KEYS, DEFAULT_TIMEOUT_MS);
}

static void usage_cluster(FILE *f)
{
    fprintf(f,
"Usage: cairn-admin [OPTIONS] cluster SUBCOMMAND [ARGS]   (options: cairn-admin --help)\n"
"\n"
"Changing the members of a cluster is staged: stage changes, review them with `cluster\n"
"plan`, apply them with `cluster commit`. Joins need no staging: every joining node is in\n"
"the next plan. Staging, plan, commit and clear run on the claimant (any node forwards).\n"
"\n");
    list_commands(f, true);
    fprintf(f,
"\n"
"Related: member-status, ring-status, ringready, transfers, transfer-limit, down NODE.\n"
"\n"
"Example, three nodes:\n"
"  cairn-admin --node cairn2@127.0.0.1:8096 cluster join cairn1@127.0.0.1:8086\n"
"  cairn-admin --node cairn3@127.0.0.1:8106 cluster join cairn1@127.0.0.1:8086\n"
"  cairn-admin --node cairn1@127.0.0.1:8086 cluster plan\n"
"  cairn-admin --node cairn1@127.0.0.1:8086 cluster commit\n");
}
/* clang-format on */

/* Finds the command named by words[0] (and words[1] after "cluster"); *used: words taken. */
static const admin_cmd_t *find_command(char **words, int nwords, int *used)
{
    char name[64];
    *used = 1;
    if (strcmp(words[0], "cluster") == 0) {
        if (nwords < 2)
            return NULL;
        snprintf(name, sizeof name, "cluster %s", words[1]);
        *used = 2;
    } else {
        snprintf(name, sizeof name, "%s", words[0]);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* name@host:port with something in each part (the node checks the rest). */
static bool looks_like_node(const char *s)
{
    const char *at = strchr(s, '@'), *colon = strrchr(s, ':');
    if (!at || at == s || !colon || colon < at + 2 || !colon[1])
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

/* transfer-limit's N into req. EXIT_OK, or EXIT_USAGE with the reason printed. */
static int parse_limit(const char *arg, Cairn__Admin__AdminReq *req)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(arg, &end, 10);
    if (!arg[0] || *end || errno || arg[0] == '-' || arg[0] == '+') {
        fprintf(stderr, "cairn-admin: transfer-limit: '%s' is not a number (expected a limit in "
                        "1..%u)\n",
                arg, LIMIT_MAX);
        return EXIT_USAGE;
    }
    if (n == 0) {
        fprintf(stderr, "cairn-admin: transfer-limit: the limit must be at least 1 (0 would stop "
                        "every transfer; to keep a node from sending, set handoff.concurrency = "
                        "0 in its configuration)\n");
        return EXIT_USAGE;
    }
    if (n > LIMIT_MAX) {
        fprintf(stderr, "cairn-admin: transfer-limit: %lu is above the largest limit, %u\n", n,
                LIMIT_MAX);
        return EXIT_USAGE;
    }
    req->has_limit = 1;
    req->limit = (uint32_t)n;
    return EXIT_OK;
}

/* Fills req from the command's arguments. EXIT_OK, or EXIT_USAGE with the reason printed. */
static int parse_args(const admin_cmd_t *c, char **args, int nargs, Cairn__Admin__AdminReq *req)
{
    int min = 0, max = 0;
    switch (c->argspec) {
    case ARGS_NONE: break;
    case ARGS_PARTITION:
    case ARGS_NODE: min = max = 1; break;
    case ARGS_OPT_NODE: max = 1; break;
    case ARGS_TWO_NODES: min = max = 2; break;
    case ARGS_LIMIT: max = 2; break;
    case ARGS_KEYS: min = 2; max = 1 + REPLICAS_MAX_KEYS; break;
    }
    if (nargs < min || nargs > max) {
        if (nargs > max)
            fprintf(stderr, "cairn-admin: %s: unexpected argument '%s'", c->name, args[max]);
        else
            fprintf(stderr, "cairn-admin: %s: missing argument", c->name);
        fprintf(stderr, " (usage: cairn-admin %s%s%s)\n", c->name, c->args[0] ? " " : "",
                c->args);
        return EXIT_USAGE;
    }
    if (c->argspec == ARGS_PARTITION) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(args[0], &end, 10);
        if (!args[0][0] || *end || errno || p > UINT32_MAX || args[0][0] == '-') {
            fprintf(stderr, "cairn-admin: crash-vnode needs a partition number (0..ring size-1), "
                            "not '%s'\n",
                    args[0]);
            return EXIT_USAGE;
        }
        req->has_partition = 1;
        req->partition = (uint32_t)p;
        return EXIT_OK;
    }
    if (c->argspec == ARGS_KEYS) {
        for (int i = 0; i < nargs; i++)
            if (!args[i][0]) {
                fprintf(stderr, "cairn-admin: replicas: the %s cannot be empty\n",
                        i ? "key" : "bucket");
                return EXIT_USAGE;
            }
        req->has_bucket = 1;
        req->bucket = (ProtobufCBinaryData){strlen(args[0]), (uint8_t *)args[0]};
        req->n_keys = (size_t)(nargs - 1);
        req->keys = calloc(req->n_keys, sizeof *req->keys);
        if (!req->keys)
            abort();
        for (int i = 1; i < nargs; i++)
            req->keys[i - 1] = (ProtobufCBinaryData){strlen(args[i]), (uint8_t *)args[i]};
        return EXIT_OK;
    }
    if (c->argspec == ARGS_LIMIT) {
        if (nargs == 0)
            return EXIT_OK; /* show */
        if (nargs == 2 && !looks_like_node(args[0])) {
            fprintf(stderr, "cairn-admin: transfer-limit: '%s' is not a node name (expected "
                            "name@host:port, e.g. cairn1@127.0.0.1:8086)\n",
                    args[0]);
            return EXIT_USAGE;
        }
        if (nargs == 2)
            req->node = args[0];
        return parse_limit(args[nargs - 1], req);
    }
    for (int i = 0; i < nargs; i++)
        if (!looks_like_node(args[i])) {
            fprintf(stderr, "cairn-admin: %s: '%s' is not a node name (expected name@host:port, "
                            "e.g. cairn1@127.0.0.1:8086)\n",
                    c->name, args[i]);
            return EXIT_USAGE;
        }
    if (nargs >= 1)
        req->node = args[0];
    if (nargs >= 2)
        req->new_node = args[1];
    return EXIT_OK;
}

/* ---------------------------------------------------------------- setup */

/* Reads the first line of <dir>/cookie into out. 0, or -1 with the reason in err. */
static int read_cookie(const char *dir, char *out, size_t n, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cookie", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the cookie from %s: %s (give --cookie or --data-dir)",
                 path, strerror(errno));
        return -1;
    }
    if (!fgets(out, (int)n, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    if (!out[0]) {
        snprintf(err, errlen, "%s is empty (give --cookie or --data-dir)", path);
        return -1;
    }
    return 0;
}

/* A free TCP port on 127.0.0.1 for this tool's own node-link listener (the runtime needs a
 * concrete port in the node name). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---------------------------------------------------------------- failures */

typedef struct run_s {
    const admin_cmd_t *cmd;
    const char *node;
    bool json;
    bool sets_limit; /* transfer-limit N: every member named must take it */
} run_t;

/* A failure of this tool (not an answer of the node): the reason on stderr and, with
 * --json, the same as {"ok":false,...} on stdout, so scripts always get one object. */
static void fail(const run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const run_t *run, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cairn-admin: %s\n", text);
    if (run->json) {
        Cairn__Admin__AdminResp r = CAIRN__ADMIN__ADMIN_RESP__INIT;
        r.has_ok = 1;
        r.ok = false;
        r.node = (char *)run->node;
        r.errmsg = text;
        admin_json_answer(stdout, &r, run->cmd->command, run->cmd->name);
    }
}

/* ---------------------------------------------------------------- the request */

static bool is_answer(const rt_msg_t *m, void *ctx)
{
    (void)ctx;
    return m->type == CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE || m->type == RT_MSG_NODEDOWN;
}

/* Sends req to the command's endpoint on the node and waits for the answer with the same
 * req_id. The caller frees it (cairn__admin__admin_resp__free_unpacked). NULL with the
 * reason reported on failure. */
static Cairn__Admin__AdminResp *ask(const run_t *run, Cairn__Admin__AdminReq *req,
                                    uint32_t timeout_ms)
{
    size_t n = cairn__admin__admin_req__get_packed_size(req);
    rt_msg_t *m = rt_msg_new(CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST, n);
    cairn__admin__admin_req__pack(req, m->data);
    rt_send_name(run->node, run->cmd->endpoint, m);
    uint64_t end = rt_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint64_t now = rt_now_ns();
        if (now >= end)
            break;
        rt_msg_t *got = NULL;
        if (rt_receive_match((uint32_t)((end - now) / 1000000u) + 1, is_answer, NULL, &got) != 0)
            break;
        if (got->type == RT_MSG_NODEDOWN) {
            rt_msg_free(got);
            fail(run, "the connection to %s dropped before it answered", run->node);
            return NULL;
        }
        Cairn__Admin__AdminResp *r = cairn__admin__admin_resp__unpack(NULL, got->size, got->data);
        rt_msg_free(got);
        if (!r) {
            fail(run, "%s sent a malformed answer", run->node);
            return NULL;
        }
        if (r->has_req_id && r->req_id == req->req_id)
            return r;
        cairn__admin__admin_resp__free_unpacked(r, NULL); /* a late answer to someone else */
    }
    if (strcmp(run->cmd->endpoint, RING_ENDPOINT) == 0)
        fail(run,
             "no answer from %s within %u ms (a cairnd without cluster support, or one still "
             "starting? --timeout MS waits longer)",
             run->node, timeout_ms);
    else
        fail(run, "no answer from %s within %u ms (is it a cairnd with an admin endpoint?)",
             run->node, timeout_ms);
    return NULL;
}

/* Prints a received answer; returns the exit status it means. */
static int print_answer(const run_t *run, const Cairn__Admin__AdminResp *r)
{
    Cairn__Admin__Command cmd = run->cmd->command;
    bool ok = r->has_ok && r->ok;
    if (run->json)
        admin_json_answer(stdout, r, cmd, run->cmd->name);
    if (!ok) {
        fprintf(stderr, "cairn-admin: %s: %s\n", r->node ? r->node : run->node,
                r->errmsg ? r->errmsg : "failed");
        return EXIT_FAILED;
    }
    if (!run->json)
        admin_print_answer(stdout, r, cmd);
    if (cmd == CAIRN__ADMIN__COMMAND__RINGREADY &&
        !(r->cluster && r->cluster->has_ring_ready && r->cluster->ring_ready))
        return EXIT_FAILED;
    if (run->sets_limit) {
        size_t missed = 0;
        for (size_t i = 0; i < r->n_limits; i++)
            missed += !(r->limits[i]->has_answered && r->limits[i]->answered);
        if (missed) {
            fprintf(stderr, "cairn-admin: transfer-limit: %zu member(s) could not be reached; "
                            "set it there once they are up\n",
                    missed);
            return EXIT_FAILED;
        }
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- main */

/* Connects to the node and runs the request; returns the exit status. */
static int run_request(const run_t *run, const char *cookie, Cairn__Admin__AdminReq *req,
                       uint32_t timeout_ms, bool verbose)
{
    int port = free_port();
    if (port <= 0) {
        fail(run, "no free local port for the node link: %s", strerror(errno));
        return EXIT_FAILED;
    }
    char self_name[128];
    snprintf(self_name, sizeof self_name, "cairn-admin-%ld@127.0.0.1:%d", (long)getpid(), port);

    rt_log_set_level(verbose ? RT_LOG_DEBUG : RT_LOG_NONE);
    rt_config_t rc;
    rt_config_default(&rc);
    rc.schedulers = 1;
    rc.workers = 1;
    rc.node_name = self_name;
    rc.cookie = cookie;
    int e = rt_start(&rc);
    if (e != 0) {
        fail(run, "cannot start the node link: %s", rt_strerror(e));
        return EXIT_FAILED;
    }
    int status = EXIT_FAILED;
    e = rt_node_connect(run->node, timeout_ms);
    if (e == RT_EINVAL) {
        fail(run, "--node %s: expected name@host:port", run->node);
        status = EXIT_USAGE;
    } else if (e == RT_EAUTH) {
        fail(run, "%s refused the cookie (wrong --cookie or --data-dir?)", run->node);
    } else if (e != 0) {
        fail(run,
             "cannot reach %s: %s (is cairnd running there, under exactly this name? -v shows "
             "the connection's log)",
             run->node, rt_strerror(e));
    } else {
        rt_node_monitor(true);
        req->has_req_id = 1;
        req->req_id = ((uint64_t)getpid() << 32) ^ rt_now_ns();
        Cairn__Admin__AdminResp *r = ask(run, req, timeout_ms);
        if (r) {
            status = print_answer(run, r);
            cairn__admin__admin_resp__free_unpacked(r, NULL);
        }
    }
    fflush(stdout);
    rt_stop(1000);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"node", required_argument, NULL, 'n'},     {"cookie", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'}, {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},           {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *node = DEFAULT_NODE, *cookie = NULL, *data_dir = DEFAULT_DATA_DIR;
    uint32_t timeout_ms = DEFAULT_TIMEOUT_MS;
    bool json = false, verbose = false, help = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":hv", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': node = optarg; break;
        case 'c': cookie = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'j': json = true; break;
        case 'v': verbose = true; break;
        case 'h': help = true; break;
        case 't': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 3600000) {
                fprintf(stderr, "cairn-admin: --timeout %s: expected milliseconds in 1..3600000\n",
                        optarg);
                return EXIT_USAGE;
            }
            timeout_ms = (uint32_t)v;
            break;
        }
        case ':':
            fprintf(stderr, "cairn-admin: %s needs a value (cairn-admin --help)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "cairn-admin: unknown option %s (cairn-admin --help)\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    char **words = argv + optind;
    int nwords = argc - optind;
    bool cluster_word = nwords > 0 && strcmp(words[0], "cluster") == 0;
    if (help || (nwords >= 1 && strcmp(words[nwords - 1], "help") == 0 && nwords <= 2 &&
                 (nwords == 1 || cluster_word))) {
        if (cluster_word)
            usage_cluster(stdout);
        else
            usage(stdout);
        return EXIT_OK;
    }
    if (nwords == 0) {
        fprintf(stderr, "cairn-admin: no command (cairn-admin --help lists them)\n");
        return EXIT_USAGE;
    }
    int used = 0;
    const admin_cmd_t *cmd = find_command(words, nwords, &used);
    if (!cmd) {
        if (cluster_word && nwords < 2)
            fprintf(stderr, "cairn-admin: cluster: which one? (cairn-admin cluster --help)\n");
        else if (cluster_word)
            fprintf(stderr, "cairn-admin: unknown command 'cluster %s' (cairn-admin cluster "
                            "--help)\n",
                    words[1]);
        else
            fprintf(stderr, "cairn-admin: unknown command '%s' (cairn-admin --help)\n", words[0]);
        return EXIT_USAGE;
    }
    Cairn__Admin__AdminReq req = CAIRN__ADMIN__ADMIN_REQ__INIT;
    req.has_command = 1;
    req.command = cmd->command;
    int rc = parse_args(cmd, words + used, nwords - used, &req);
    if (rc != EXIT_OK)
        return rc;
    if (!looks_like_node(node)) {
        fprintf(stderr, "cairn-admin: --node %s: expected name@host:port (e.g. %s)\n", node,
                DEFAULT_NODE);
        return EXIT_USAGE;
    }

    run_t run = {.cmd = cmd, .node = node, .json = json, .sets_limit = req.has_limit};
    char cookie_buf[512];
    if (!cookie) {
        char err[4200];
        if (read_cookie(data_dir, cookie_buf, sizeof cookie_buf, err, sizeof err) != 0) {
            fail(&run, "%s", err);
            return EXIT_FAILED;
        }
        cookie = cookie_buf;
    }
    rc = run_request(&run, cookie, &req, timeout_ms, verbose);
    free(req.keys);
    return rc;
}
