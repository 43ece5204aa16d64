/*
 * cairn_admin_main.c — cairn-admin, the operator's tool (a first, small version): it joins
 * the node link of one cairnd with the cluster cookie, sends one request to the node's admin
 * endpoint ("cairn_admin", proto/admin.proto) and prints the answer.
 *
 * Like riak-admin over Erlang distribution, it starts a tiny runtime of its own, named
 * cairn-admin-<pid>@127.0.0.1:<free port>, connects to the node by name and authenticates
 * with the cookie; it never uses the public client port.
 * Exit status: 0 success, 1 the node could not be reached or refused, 2 bad usage.
 */
#include "proto/admin.pb-c.h"
#include "runtime/dist.h"
#include "runtime/rt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_NODE "cairn@127.0.0.1:8086"
#define DEFAULT_DATA_DIR "./data"
#define DEFAULT_TIMEOUT_MS 10000u

/* clang-format off */
static void usage(FILE *f)
{
    fprintf(f,
"Usage: cairn-admin [--node NAME] [--cookie C | --data-dir DIR] [--timeout MS] [--json]\n"
"                   COMMAND [ARGS]\n"
"\n"
"Talks to a running cairnd over its node link (authenticated with the cluster cookie), the\n"
"way riak-admin talks to Riak. Commands:\n"
"  ping              check that the node answers\n"
"  status            node name, version, uptime, ring size, vnodes running, connected\n"
"                    nodes, requests completed and failed per operation with latency\n"
"                    percentiles (upper bounds of power-of-two microsecond buckets),\n"
"                    read repairs, tombstones reaped, overloads, vnode crashes\n"
"  crash-vnode P     debug: make the vnode of partition P crash on purpose; its supervisor\n"
"                    restarts it (used by tests to prove that requests never hang)\n"
"\n"
"Options:\n"
"  --node NAME       the node, name@host:port as in its nodename (default " DEFAULT_NODE ")\n"
"  --cookie C        the node's cookie (default: read from <data dir>/cookie)\n"
"  --data-dir DIR    the node's data dir, for its cookie file (default " DEFAULT_DATA_DIR ")\n"
"  --timeout MS      how long to wait for the node (default %u)\n"
"  --json            print the answer as one JSON object\n"
"  -v, --verbose     show the runtime's log lines (connection details)\n"
"  -h, --help        this help\n"
"\n"
"Exit status: 0 on success; 1 when the node cannot be reached, refuses the cookie or\n"
"answers with an error; 2 for bad usage.\n",
            DEFAULT_TIMEOUT_MS);
}
/* clang-format on */

/* ---------------------------------------------------------------- setup */

static int read_cookie(const char *dir, char *out, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cookie", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr,
                "cairn-admin: cannot read the cookie from %s: %s (give --cookie or "
                "--data-dir)\n",
                path, strerror(errno));
        return -1;
    }
    if (!fgets(out, (int)n, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    if (!out[0]) {
        fprintf(stderr, "cairn-admin: %s is empty\n", path);
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

/* ---------------------------------------------------------------- the request */

typedef struct match_s {
    uint64_t req_id;
} match_t;

static bool is_answer(const rt_msg_t *m, void *ctx)
{
    (void)ctx;
    return m->type == CAIRN__ADMIN__MSG_TYPE__ADMIN_RESPONSE || m->type == RT_MSG_NODEDOWN;
}

/* Sends req and waits for the matching response. NULL with a message printed on failure. */
static Cairn__Admin__AdminResp *ask(const char *node, Cairn__Admin__AdminReq *req,
                                    uint32_t timeout_ms)
{
    size_t n = cairn__admin__admin_req__get_packed_size(req);
    rt_msg_t *m = rt_msg_new(CAIRN__ADMIN__MSG_TYPE__ADMIN_REQUEST, n);
    cairn__admin__admin_req__pack(req, m->data);
    rt_send_name(node, "cairn_admin", m);
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
            fprintf(stderr, "cairn-admin: the connection to %s dropped before it answered\n", node);
            return NULL;
        }
        Cairn__Admin__AdminResp *r = cairn__admin__admin_resp__unpack(NULL, got->size, got->data);
        rt_msg_free(got);
        if (!r) {
            fprintf(stderr, "cairn-admin: %s sent a malformed answer\n", node);
            return NULL;
        }
        if (r->has_req_id && r->req_id == req->req_id)
            return r;
        cairn__admin__admin_resp__free_unpacked(r, NULL); /* a late answer to someone else */
    }
    fprintf(stderr,
            "cairn-admin: no answer from %s within %u ms (is it a cairnd with an admin "
            "endpoint?)\n",
            node, timeout_ms);
    return NULL;
}

/* ---------------------------------------------------------------- output */

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_uptime(uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 86400)
        printf("%" PRIu64 "d ", s / 86400);
    if (s >= 3600)
        printf("%" PRIu64 "h ", s / 3600 % 24);
    if (s >= 60)
        printf("%" PRIu64 "m ", s / 60 % 60);
    printf("%" PRIu64 "s\n", s % 60);
}

static void print_us(uint64_t us)
{
    if (us >= 10000000)
        printf(" %9" PRIu64 "s", us / 1000000);
    else if (us >= 10000)
        printf(" %8" PRIu64 "ms", us / 1000);
    else
        printf(" %8" PRIu64 "us", us);
}

static void print_status(const Cairn__Admin__NodeStatus *s, bool json)
{
    if (json) {
        printf("{\"ok\":true,\"node\":");
        json_str(s->node);
        printf(",\"version\":");
        json_str(s->version);
        printf(",\"uptime_ms\":%" PRIu64
               ",\"ring_size\":%u,\"vnodes_running\":%u,\"vnodes_total\":%u",
               s->uptime_ms, s->ring_size, s->vnodes_running, s->vnodes_total);
        printf(",\"client_listener\":");
        json_str(s->client_listener);
        printf(",\"data_dir\":");
        json_str(s->data_dir);
        printf(",\"storage_backend\":");
        json_str(s->storage_backend);
        printf(",\"connected_nodes\":[");
        for (size_t i = 0; i < s->n_connected_nodes; i++) {
            if (i)
                putchar(',');
            json_str(s->connected_nodes[i]);
        }
        printf("],\"ops\":{");
        for (size_t i = 0; i < s->n_ops; i++) {
            const Cairn__Admin__OpStats *o = s->ops[i];
            printf("%s", i ? "," : "");
            json_str(o->op);
            printf(":{\"count\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"p50_us\":%" PRIu64
                   ",\"p95_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64 "}",
                   o->count, o->errors, o->p50_us, o->p95_us, o->p99_us, o->max_us);
        }
        printf("},\"inflight\":%" PRIu64 ",\"read_repairs\":%" PRIu64
               ",\"tombstones_reaped\":%" PRIu64 ",\"overloads\":%" PRIu64
               ",\"vnode_crashes\":%" PRIu64 ",\"processes\":%u}\n",
               s->inflight, s->read_repairs, s->tombstones_reaped, s->overloads, s->vnode_crashes,
               s->processes);
        return;
    }
    printf("node          %s\n", s->node ? s->node : "?");
    printf("version       %s\n", s->version ? s->version : "?");
    printf("uptime        ");
    print_uptime(s->uptime_ms);
    printf("ring size     %u\n", s->ring_size);
    printf("vnodes        %u of %u running\n", s->vnodes_running, s->vnodes_total);
    printf("client port   %s\n", s->client_listener ? s->client_listener : "?");
    printf("data dir      %s (%s)\n", s->data_dir ? s->data_dir : "?",
           s->storage_backend ? s->storage_backend : "?");
    printf("connected     ");
    if (!s->n_connected_nodes)
        printf("(none)");
    for (size_t i = 0; i < s->n_connected_nodes; i++)
        printf("%s%s", i ? ", " : "", s->connected_nodes[i]);
    printf("\nin flight     %" PRIu64 " request(s)\n", s->inflight);
    printf("processes     %u\n\n", s->processes);
    printf("%-8s %10s %8s %10s %10s %10s %10s\n", "op", "count", "errors", "p50", "p95", "p99",
           "max");
    for (size_t i = 0; i < s->n_ops; i++) {
        const Cairn__Admin__OpStats *o = s->ops[i];
        printf("%-8s %10" PRIu64 " %8" PRIu64, o->op ? o->op : "?", o->count, o->errors);
        print_us(o->p50_us);
        print_us(o->p95_us);
        print_us(o->p99_us);
        print_us(o->max_us);
        putchar('\n');
    }
    printf("\nread repairs %" PRIu64 ", tombstones reaped %" PRIu64 ", overloads %" PRIu64
           ", vnode crashes %" PRIu64 "\n",
           s->read_repairs, s->tombstones_reaped, s->overloads, s->vnode_crashes);
}

static int print_answer(const Cairn__Admin__AdminResp *r, Cairn__Admin__Command cmd, bool json)
{
    if (!r->has_ok || !r->ok) {
        if (json) {
            printf("{\"ok\":false,\"error\":");
            json_str(r->errmsg ? r->errmsg : "failed");
            printf("}\n");
        }
        fprintf(stderr, "cairn-admin: %s: %s\n", r->node ? r->node : "node",
                r->errmsg ? r->errmsg : "failed");
        return 1;
    }
    if (cmd == CAIRN__ADMIN__COMMAND__STATUS && r->status) {
        print_status(r->status, json);
        return 0;
    }
    if (json) {
        printf("{\"ok\":true,\"node\":");
        json_str(r->node);
        printf(",\"version\":");
        json_str(r->version);
        printf(",\"message\":");
        json_str(r->message);
        printf("}\n");
    } else if (cmd == CAIRN__ADMIN__COMMAND__PING) {
        printf("pong from %s (cairn %s)\n", r->node ? r->node : "?", r->version ? r->version : "?");
    } else {
        printf("%s\n", r->message ? r->message : "ok");
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

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
    bool json = false, verbose = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":hv", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': node = optarg; break;
        case 'c': cookie = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'j': json = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        case 't': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > 3600000) {
                fprintf(stderr, "cairn-admin: --timeout %s: expected milliseconds in 1..3600000\n",
                        optarg);
                return 2;
            }
            timeout_ms = (uint32_t)v;
            break;
        }
        case ':':
            fprintf(stderr, "cairn-admin: %s needs a value (cairn-admin --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "cairn-admin: unknown option %s (cairn-admin --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr,
                "cairn-admin: no command (ping, status, crash-vnode P; cairn-admin --help)\n");
        return 2;
    }
    const char *cmd_name = argv[optind];
    Cairn__Admin__AdminReq req = CAIRN__ADMIN__ADMIN_REQ__INIT;
    req.has_command = 1;
    int want_args = 0;
    if (!strcmp(cmd_name, "ping")) {
        req.command = CAIRN__ADMIN__COMMAND__PING;
    } else if (!strcmp(cmd_name, "status")) {
        req.command = CAIRN__ADMIN__COMMAND__STATUS;
    } else if (!strcmp(cmd_name, "crash-vnode")) {
        req.command = CAIRN__ADMIN__COMMAND__CRASH_VNODE;
        want_args = 1;
        char *end;
        unsigned long p = optind + 1 < argc ? strtoul(argv[optind + 1], &end, 10) : 0;
        if (optind + 1 >= argc || !argv[optind + 1][0] || *end || p > UINT32_MAX) {
            fprintf(stderr, "cairn-admin: crash-vnode needs a partition number (0..ring size-1)\n");
            return 2;
        }
        req.has_partition = 1;
        req.partition = (uint32_t)p;
    } else {
        fprintf(stderr, "cairn-admin: unknown command '%s' (ping, status, crash-vnode P)\n",
                cmd_name);
        return 2;
    }
    if (optind + 1 + want_args != argc) {
        fprintf(stderr, "cairn-admin: unexpected argument '%s'\n", argv[optind + 1 + want_args]);
        return 2;
    }

    char cookie_buf[512];
    if (!cookie) {
        if (read_cookie(data_dir, cookie_buf, sizeof cookie_buf) != 0)
            return 1;
        cookie = cookie_buf;
    }
    int port = free_port();
    if (port <= 0) {
        fprintf(stderr, "cairn-admin: no free local port for the node link: %s\n", strerror(errno));
        return 1;
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
        fprintf(stderr, "cairn-admin: cannot start the node link: %s\n", rt_strerror(e));
        return 1;
    }
    int status = 1;
    e = rt_node_connect(node, timeout_ms);
    if (e == RT_EINVAL) {
        fprintf(stderr, "cairn-admin: --node %s: expected name@host:port\n", node);
        status = 2;
    } else if (e == RT_EAUTH) {
        fprintf(stderr, "cairn-admin: %s refused the cookie (wrong --cookie or --data-dir?)\n",
                node);
    } else if (e != 0) {
        fprintf(stderr, "cairn-admin: cannot reach %s: %s (is cairnd running there?)\n", node,
                rt_strerror(e));
    } else {
        rt_node_monitor(true);
        req.has_req_id = 1;
        req.req_id = ((uint64_t)getpid() << 32) ^ rt_now_ns();
        Cairn__Admin__AdminResp *r = ask(node, &req, timeout_ms);
        if (r) {
            status = print_answer(r, req.command, json);
            cairn__admin__admin_resp__free_unpacked(r, NULL);
        }
    }
    rt_stop(1000);
    return status;
}
