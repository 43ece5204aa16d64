/*
 * cairnd_main.c — the cairnd program: configuration from a file and flags, start of the
 * node, the ready line, and the clean stop on SIGTERM/SIGINT.
 *
 * Exit status: 0 after a clean stop, 2 for a bad configuration or bad flags (also a ring_size
 * that conflicts with the data dir), 1 when the node cannot start or its tree gives up.
 */
#include "node/config.h"
#include "node/node.h"
#include "runtime/rt.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* jemalloc's options, read before main (release builds link jemalloc, see the Makefile; the
 * sanitizer builds do not, and there this is an unused string). Transparent huge pages for
 * the heap: LevelDB's memtables and the object cache are pointer-chasing structures spread
 * over hundreds of MB, and with 4 KiB pages nearly every hop is also a TLB miss; huge pages
 * cut cairnd's CPU per put by about a tenth on the node benchmark (docs/benchmarks.md).
 * MALLOC_CONF in the environment still overrides it. */
const char *malloc_conf = "thp:always,metadata_thp:auto";

/* clang-format off */
static void usage(FILE *f)
{
    fprintf(f,
"Usage: cairnd [-c FILE] [options]\n"
"\n"
"Starts one Cairn node: a Dynamo-style key-value store that speaks Riak's Protocol Buffers\n"
"client API. Runs in the foreground and logs to stderr and to the log file.\n"
"\n"
"Options (each overrides the configuration file, wherever it appears):\n"
"  -c, --config FILE     read `key = value` settings from FILE (riak.conf style; every key\n"
"                        is in docs/configuration.md). Without it: the defaults.\n"
"      --nodename N      node name, name@host:port; host:port is where other nodes and\n"
"                        cairn-admin reach this node (key nodename, default\n"
"                        cairn@127.0.0.1:8086)\n"
"      --listen H:P      client (Riak PB) address (key listener.protobuf, default\n"
"                        127.0.0.1:8087); port 0 picks a free port, shown in the ready line\n"
"      --data-dir DIR    data directory, created if missing (key platform_data_dir, default\n"
"                        ./data)\n"
"      --ring-size Q     partitions, a power of two in 1..1024 (key ring_size, default 64);\n"
"                        fixed once the data dir holds a ring\n"
"      --cookie C        node-link secret (key distribution.cookie; default: the file\n"
"                        <data dir>/cookie, generated on first start)\n"
"      --log-level L     debug, info, warning, error or none (key log.level, default info)\n"
"      --set KEY=VALUE   set any configuration key (repeatable)\n"
"      --print-config    print the resulting configuration, one `key = value` per line, and\n"
"                        exit without starting\n"
"  -h, --help            this help\n"
"  -V, --version         print the version\n"
"\n"
"When the node is up it prints one line on stdout:\n"
"  cairnd: <nodename> ready, client port <host:port>, data <dir>\n"
"SIGTERM or SIGINT stops it cleanly: new requests are refused, requests in flight get up to\n"
"%u s to finish, then the listener, the admin endpoint and the vnodes stop in that order and\n"
"storage is closed.\n"
"\n"
"Exit status: 0 after a clean stop; 2 for a bad configuration or bad flags (the message names\n"
"the file, line, key and reason), including a ring_size that differs from the data dir's\n"
"ring; 1 when the node cannot start (the data dir is in use, an address is taken, storage\n"
"fails) or its supervision tree gives up.\n",
            NODE_DRAIN_MS / 1000);
}
/* clang-format on */

/* A flag that maps to a configuration key, applied after the file. */
typedef struct flag_set_s {
    const char *flag; /* as the user wrote it, for messages */
    const char *key;
    char *value; /* owned */
} flag_set_t;

enum {
    OPT_NODENAME = 1000,
    OPT_LISTEN,
    OPT_DATA_DIR,
    OPT_RING_SIZE,
    OPT_COOKIE,
    OPT_LOG_LEVEL,
    OPT_SET,
    OPT_PRINT_CONFIG
};

static const struct {
    int opt;
    const char *flag, *key;
} flag_keys[] = {
    {OPT_NODENAME, "--nodename", "nodename"},
    {OPT_LISTEN, "--listen", "listener.protobuf"},
    {OPT_DATA_DIR, "--data-dir", "platform_data_dir"},
    {OPT_RING_SIZE, "--ring-size", "ring_size"},
    {OPT_COOKIE, "--cookie", "distribution.cookie"},
    {OPT_LOG_LEVEL, "--log-level", "log.level"},
};

static int bad_usage(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "cairnd: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(cairnd --help lists the options)\n");
    return 2;
}

/* Parses argv into *cfg. Returns -1 to go on, or an exit status. */
static int configure(int argc, char **argv, node_config_t *cfg, bool *print_config)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"nodename", required_argument, NULL, OPT_NODENAME},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"ring-size", required_argument, NULL, OPT_RING_SIZE},
        {"cookie", required_argument, NULL, OPT_COOKIE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"set", required_argument, NULL, OPT_SET},
        {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_file = NULL;
    flag_set_t *sets = calloc((size_t)argc + 1, sizeof *sets);
    size_t nsets = 0;
    int status = -1, opt;
    opterr = 0;
    while (status < 0 && (opt = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_file = optarg; break;
        case 'h':
            usage(stdout);
            status = 0;
            break;
        case 'V':
            printf("cairnd %s\n", CAIRN_VERSION);
            status = 0;
            break;
        case OPT_PRINT_CONFIG: *print_config = true; break;
        case OPT_SET: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                status = bad_usage("--set %s: expected KEY=VALUE%s", optarg, "");
                break;
            }
            size_t klen = (size_t)(eq - optarg);
            char *kv = strdup(optarg);
            kv[klen] = 0;
            sets[nsets++] = (flag_set_t){"--set", kv, kv}; /* key and value share one buffer */
            sets[nsets - 1].value = kv + klen + 1;
            break;
        }
        case ':': status = bad_usage("%s needs a value%s", argv[optind - 1], ""); break;
        case '?': status = bad_usage("unknown option %s%s", argv[optind - 1], ""); break;
        default:
            for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++)
                if (flag_keys[i].opt == opt)
                    sets[nsets++] = (flag_set_t){flag_keys[i].flag, flag_keys[i].key, optarg};
            break;
        }
    }
    if (status < 0 && optind < argc)
        status = bad_usage("unexpected argument '%s'%s", argv[optind], "");

    char err[1024];
    if (status < 0 && conf_file && node_config_load(cfg, conf_file, err, sizeof err) != 0) {
        fprintf(stderr, "cairnd: %s\n", err);
        status = 2;
    }
    for (size_t i = 0; status < 0 && i < nsets; i++) {
        if (node_config_set(cfg, sets[i].key, sets[i].value, err, sizeof err) != 0) {
            if (strcmp(sets[i].flag, "--set") == 0)
                fprintf(stderr, "cairnd: --set %s=%s: %s: %s\n", sets[i].key, sets[i].value,
                        sets[i].key, err);
            else
                fprintf(stderr, "cairnd: %s %s: %s: %s\n", sets[i].flag, sets[i].value, sets[i].key,
                        err);
            status = 2;
        }
    }
    if (status < 0 && node_config_validate(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cairnd: %s\n", err);
        status = 2;
    }
    for (size_t i = 0; i < nsets; i++)
        if (strcmp(sets[i].flag, "--set") == 0)
            free((char *)sets[i].key);
    free(sets);
    return status;
}

/* Waits for SIGTERM/SIGINT (blocked in every thread) or the end of the tree. Returns the
 * signal, or 0 when the tree ended (reason in *reason). */
static int wait_for_stop(node_t *n, const sigset_t *stop_signals, int *reason)
{
    const struct timespec poll = {0, 0};
    for (;;) {
        int sig = sigtimedwait(stop_signals, NULL, &poll);
        if (sig > 0)
            return sig;
        if (node_wait_down(n, 100, reason))
            return 0;
    }
}

/* Raises the soft limit on open descriptors to the hard one: client connections and
 * LevelDB's table files (leveldb.max_open_files, 1000 in the node layout) both need them,
 * and many systems start processes at a soft 1024. A shortfall is logged, not fatal:
 * LevelDB closes table files it cannot keep, and the listener refuses what it cannot take. */
static void raise_fd_limit(const node_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    store_config_t st = store_config_resolved(&cfg->storage);
    rlim_t open_files = (rlim_t)st.max_open_files;
    if (st.layout == STORE_LAYOUT_PARTITION)
        open_files *= cfg->ring_size; /* per partition */
    rlim_t want = (rlim_t)cfg->max_connections + open_files + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        fprintf(stderr, "cairnd: warning: open-file limit %llu is below the %llu that "
                "protobuf.max_connections and leveldb.max_open_files may need (ulimit -n)\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int main(int argc, char **argv)
{
    node_config_t cfg;
    node_config_default(&cfg);
    bool print_config = false;
    int status = configure(argc, argv, &cfg, &print_config);
    if (status >= 0)
        return status;
    if (print_config) {
        node_config_print(&cfg, stdout);
        return 0;
    }

    /* Block the stop signals before any thread exists, so every runtime thread inherits the
     * mask and only main takes them (sigtimedwait). */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&cfg);

    node_t *n = NULL;
    char err[1024];
    int rc = node_start(&cfg, &n, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "cairnd: %s\n", err);
        return rc == NODE_ECONFIG ? 2 : 1;
    }
    const node_config_t *eff = node_config(n);
    if (strchr(eff->client_host, ':'))
        printf("cairnd: %s ready, client port [%s]:%d, data %s\n", eff->nodename, eff->client_host,
               node_client_port(n), eff->data_dir);
    else
        printf("cairnd: %s ready, client port %s:%d, data %s\n", eff->nodename, eff->client_host,
               node_client_port(n), eff->data_dir);
    fflush(stdout);

    int reason = 0;
    int sig = wait_for_stop(n, &stop_signals, &reason);
    if (sig)
        rt_info("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    else
        rt_error("the supervision tree stopped (%s): stopping the node", rt_reason_str(reason));
    node_stop(n);
    fprintf(stderr, "cairnd: stopped\n");
    return sig ? 0 : 1;
}
