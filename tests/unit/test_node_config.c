/*
 * test_node_config.c — cairnd's configuration (node/config.h): defaults, every value syntax,
 * refusals that name the file, line, key and reason, cross-field checks, --print-config
 * reading back to the same configuration, and every key documented in docs/configuration.md.
 */
#include "node/config.h"
#include "runtime/rt.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char conf_path[256];

static void make_conf(void)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/cairn-test-conf-XXXXXX");
    int fd = mkstemp(conf_path);
    cr_assert(fd >= 0);
    close(fd);
}

static void drop_conf(void) { unlink(conf_path); }

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text; returns the rc and leaves the message in err. */
static int load_text(node_config_t *c, const char *text, char *err, size_t n)
{
    write_conf(text);
    err[0] = 0;
    return node_config_load(c, conf_path, err, n);
}

static void set_ok(node_config_t *c, const char *k, const char *v)
{
    char err[512] = "";
    cr_assert_eq(node_config_set(c, k, v, err, sizeof err), 0, "%s = %s: %s", k, v, err);
}

static void set_bad(const char *k, const char *v, const char *expect_in_reason)
{
    node_config_t c;
    node_config_default(&c);
    char err[512] = "";
    cr_assert_eq(node_config_set(&c, k, v, err, sizeof err), -1, "%s = '%s' was accepted", k, v);
    cr_assert(strstr(err, expect_in_reason) != NULL, "%s = '%s': reason '%s' lacks '%s'", k, v, err,
              expect_in_reason);
}

/* ---------------------------------------------------------------- defaults */

Test(node_config, defaults_are_riaks)
{
    node_config_t c;
    node_config_default(&c);
    cr_assert_str_eq(c.nodename, "cairn@127.0.0.1:8086");
    cr_assert_str_eq(c.client_host, "127.0.0.1");
    cr_assert_eq(c.client_port, 8087);
    cr_assert_str_eq(c.data_dir, "./data");
    cr_assert_str_eq(c.cookie, "");
    cr_assert_eq(c.ring_size, 64);
    cr_assert_eq(c.log_level, RT_LOG_INFO);
    cr_assert(c.storage_auto, "storage.backend = auto: the data dir's engine, else bitcask");
    cr_assert_eq(c.storage.kind, STORE_ENGINE_BITCASK);
    cr_assert_eq(c.max_frame_bytes, 64u << 20);
    cr_assert_eq(c.request_timeout_ms, 60000);
    cr_assert_eq(c.list_timeout_ms, 480000);
    cr_assert_eq(c.delete_mode, DELETE_MODE_DELAY);
    cr_assert_eq(c.delete_delay_ms, 3000);
    cr_assert_eq(c.object_warn_bytes, 5u << 20);
    cr_assert_eq(c.object_max_bytes, 50u << 20);
    cr_assert_eq(c.siblings_warn, 25);
    cr_assert_eq(c.siblings_max, 100);
    cr_assert_eq(c.max_concurrent_requests, 50000);
    const node_bucket_defaults_t *b = &c.bucket_defaults;
    cr_assert_eq(b->n_val, 3);
    cr_assert_eq(b->r, NODE_QUORUM_QUORUM);
    cr_assert_eq(b->w, NODE_QUORUM_QUORUM);
    cr_assert_eq(b->dw, NODE_QUORUM_QUORUM);
    cr_assert_eq(b->rw, NODE_QUORUM_QUORUM);
    cr_assert_eq(b->pr, 0);
    cr_assert_eq(b->pw, 0);
    cr_assert(!b->allow_mult && !b->last_write_wins && b->notfound_ok && !b->basic_quorum);
    cr_assert_eq(b->small_vclock, 50);
    cr_assert_eq(b->big_vclock, 50);
    cr_assert_eq(b->young_vclock, 20);
    cr_assert_eq(b->old_vclock, 86400);
    char err[256] = "";
    cr_assert_eq(node_config_validate(&c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.vnode_write_thread, 0);
    cr_assert_eq(c.storage.layout, STORE_LAYOUT_NODE);
    cr_assert_eq(c.storage.write_buffer_bytes, 0, "auto: the layout's default");
    cr_assert_eq(c.storage.max_open_files, 0, "auto: the layout's default");
    char buf[300];
    cr_assert_str_eq(node_config_log_path(&c, buf, sizeof buf), "./data/cairnd.log");
}

/* ---------------------------------------------------------------- value syntax */

Test(node_config, sizes_durations_booleans_quorums)
{
    node_config_t c;
    node_config_default(&c);
    set_ok(&c, "leveldb.cache_size", "128MB");
    cr_assert_eq(c.storage.cache_bytes, (size_t)128 << 20);
    set_ok(&c, "leveldb.cache_size", "2 GiB");
    cr_assert_eq(c.storage.cache_bytes, (size_t)2 << 30);
    set_ok(&c, "leveldb.write_buffer_size", "512kb");
    cr_assert_eq(c.storage.write_buffer_bytes, (size_t)512 << 10);
    set_ok(&c, "leveldb.write_buffer_size", "auto");
    cr_assert_eq(c.storage.write_buffer_bytes, 0);
    set_ok(&c, "leveldb.max_open_files", "500");
    cr_assert_eq(c.storage.max_open_files, 500);
    set_ok(&c, "leveldb.max_open_files", "Auto");
    cr_assert_eq(c.storage.max_open_files, 0);
    set_ok(&c, "leveldb.layout", "partition");
    cr_assert_eq(c.storage.layout, STORE_LAYOUT_PARTITION);
    set_ok(&c, "leveldb.layout", "node");
    cr_assert_eq(c.storage.layout, STORE_LAYOUT_NODE);
    set_ok(&c, "object.size.maximum", "1048576");
    cr_assert_eq(c.object_max_bytes, 1048576);
    set_ok(&c, "request.timeout", "500ms");
    cr_assert_eq(c.request_timeout_ms, 500);
    set_ok(&c, "request.timeout", "1m30s");
    cr_assert_eq(c.request_timeout_ms, 90000);
    set_ok(&c, "request.list_timeout", "2h");
    cr_assert_eq(c.list_timeout_ms, 7200000);
    set_ok(&c, "protobuf.idle_timeout", "off");
    cr_assert_eq(c.idle_timeout_ms, 0);
    set_ok(&c, "protobuf.idle_timeout", "5m");
    cr_assert_eq(c.idle_timeout_ms, 300000);
    set_ok(&c, "buckets.default.allow_mult", "on");
    cr_assert(c.bucket_defaults.allow_mult);
    set_ok(&c, "buckets.default.allow_mult", "FALSE");
    cr_assert(!c.bucket_defaults.allow_mult);
    set_ok(&c, "buckets.default.r", "one");
    cr_assert_eq(c.bucket_defaults.r, NODE_QUORUM_ONE);
    set_ok(&c, "buckets.default.w", "all");
    cr_assert_eq(c.bucket_defaults.w, NODE_QUORUM_ALL);
    set_ok(&c, "buckets.default.pw", "2");
    cr_assert_eq(c.bucket_defaults.pw, 2);
    set_ok(&c, "buckets.default.old_vclock", "3600");
    cr_assert_eq(c.bucket_defaults.old_vclock, 3600);
    set_ok(&c, "buckets.default.young_vclock", "1m");
    cr_assert_eq(c.bucket_defaults.young_vclock, 60);
    set_ok(&c, "delete_mode", "keep");
    cr_assert_eq(c.delete_mode, DELETE_MODE_KEEP);
    set_ok(&c, "delete_mode", "immediate");
    cr_assert_eq(c.delete_mode, DELETE_MODE_IMMEDIATE);
    set_ok(&c, "delete_mode", "1500");
    cr_assert_eq(c.delete_mode, DELETE_MODE_DELAY);
    cr_assert_eq(c.delete_delay_ms, 1500);
    set_ok(&c, "delete_mode", "10s");
    cr_assert_eq(c.delete_delay_ms, 10000);
    set_ok(&c, "storage.backend", "memory");
    cr_assert_eq(c.storage.kind, STORE_ENGINE_MEMORY);
    set_ok(&c, "vnode.write_thread", "off");
    cr_assert_eq(c.vnode_write_thread, 0);
    set_ok(&c, "vnode.write_thread", "on");
    cr_assert_eq(c.vnode_write_thread, 1);
    set_ok(&c, "vnode.write_thread", "AUTO");
    cr_assert_eq(c.vnode_write_thread, NODE_AUTO);
    set_ok(&c, "storage.sync", "interval");
    set_ok(&c, "storage.sync_interval", "200ms");
    cr_assert_eq(c.storage.sync, STORE_SYNC_INTERVAL);
    cr_assert_eq(c.storage.sync_interval_ms, 200);
    set_ok(&c, "log.level", "debug");
    cr_assert_eq(c.log_level, RT_LOG_DEBUG);
    set_ok(&c, "log.level", "warn");
    cr_assert_eq(c.log_level, RT_LOG_WARN);
    set_ok(&c, "listener.protobuf", "[::1]:0");
    cr_assert_str_eq(c.client_host, "::1");
    cr_assert_eq(c.client_port, 0);
    set_ok(&c, "listener.protobuf", "0.0.0.0:18087");
    cr_assert_str_eq(c.client_host, "0.0.0.0");
    cr_assert_eq(c.client_port, 18087);
    set_ok(&c, "nodename", "node_1.a-b@10.0.0.7:9000");
    set_ok(&c, "ring_size", "1024");
    set_ok(&c, "ring_size", "1");
    set_ok(&c, "distribution.cookie", "s3cr#t!");
    cr_assert_str_eq(c.cookie, "s3cr#t!");
    set_ok(&c, "log.file", "off");
    char buf[300];
    cr_assert_null(node_config_log_path(&c, buf, sizeof buf));
    set_ok(&c, "platform_data_dir", "/var/lib/cairn");
    set_ok(&c, "log.file", "$(platform_data_dir)/logs/x.log");
    cr_assert_str_eq(node_config_log_path(&c, buf, sizeof buf), "/var/lib/cairn/logs/x.log");
    set_ok(&c, "log.file", "/tmp/y.log");
    cr_assert_str_eq(node_config_log_path(&c, buf, sizeof buf), "/tmp/y.log");
}

Test(node_config, bad_values_are_refused_with_a_reason)
{
    set_bad("ring_size", "100", "power of two");
    set_bad("ring_size", "0", "power of two");
    set_bad("ring_size", "2048", "power of two");
    set_bad("ring_size", "-64", "power of two");
    set_bad("ring_size", "64x", "power of two");
    set_bad("leveldb.cache_size", "lots", "not a size");
    set_bad("leveldb.cache_size", "64XB", "not a size");
    set_bad("leveldb.cache_size", "1KB", "out of range");
    set_bad("leveldb.cache_size", "99999999999999999999999", "not a size");
    set_bad("request.timeout", "60", "not a duration");
    set_bad("request.timeout", "10 parsecs", "not a duration");
    set_bad("request.timeout", "0", "out of range");
    set_bad("request.timeout", "", "empty value");
    set_bad("buckets.default.allow_mult", "maybe", "not a boolean");
    set_bad("vnode.write_thread", "sometimes", "not on, off or auto");
    set_bad("leveldb.layout", "bucket", "not a LevelDB layout (node, partition)");
    set_bad("leveldb.write_buffer_size", "1KB", "64KB");
    set_bad("leveldb.max_open_files", "some", "");
    set_bad("buckets.default.allow_mult", "1", "not a boolean");
    set_bad("buckets.default.r", "twoo", "not a quorum");
    set_bad("buckets.default.r", "0", "out of range");
    set_bad("buckets.default.r", "default", "this very setting");
    set_bad("buckets.default.n_val", "0", "out of range");
    set_bad("buckets.default.young_vclock", "1500ms", "whole number of seconds");
    set_bad("storage.backend", "rocksdb", "not a backend");
    set_bad("storage.sync", "sometimes", "not a sync mode");
    set_bad("log.level", "loud", "not a log level");
    set_bad("delete_mode", "never", "keep, immediate");
    set_bad("delete_mode", "0", "out of range");
    set_bad("nodename", "cairn", "name@host:port");
    set_bad("nodename", "cairn@127.0.0.1:65536", "port");
    set_bad("nodename", "cairn@localhost:8086", "not an IP address");
    set_bad("nodename", "ca irn@127.0.0.1:8086", "name part");
    set_bad("listener.protobuf", "8087", "host:port");
    set_bad("listener.protobuf", "127.0.0.1:70000", "port");
    set_bad("listener.protobuf", "example.org:8087", "not an IP address");
    set_bad("listener.protobuf", "::1:8087", "host:port");
    set_bad("distribution.cookie", "has space", "printable");
    set_bad("platform_data_dir", "", "empty");
    set_bad("runtime.workers", "0", "out of range");
    set_bad("protobuf.max_frame_size", "2GB", "out of range");
}

Test(node_config, unknown_keys_are_refused_by_name)
{
    set_bad("lisener.protobuf", "127.0.0.1:8087", "did you mean 'listener.protobuf'");
    set_bad("ring_siz", "64", "did you mean 'ring_size'");
    set_bad("completely.unrelated", "1", "unknown key");
    set_bad("", "1", "empty key");
}

/* ---------------------------------------------------------------- the file */

Test(node_config, file_with_comments_and_overrides, .init = make_conf, .fini = drop_conf)
{
    node_config_t c;
    node_config_default(&c);
    char err[512];
    int rc = load_text(&c,
                       "# a comment\n"
                       "\n"
                       "   nodename   =   a@127.0.0.1:9001   \n"
                       "ring_size = 16 # inline comment\n"
                       "distribution.cookie = a#b\n"
                       "buckets.default.n_val=2\n"
                       "ring_size = 32\n"
                       "\t# indented comment\n",
                       err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(c.nodename, "a@127.0.0.1:9001");
    cr_assert_eq(c.ring_size, 32, "the last value of a repeated key wins");
    cr_assert_str_eq(c.cookie, "a#b", "'#' inside a value is not a comment");
    cr_assert_eq(c.bucket_defaults.n_val, 2);
    cr_assert_eq(c.client_port, 8087, "keys not in the file keep their values");
}

Test(node_config, file_errors_name_file_line_key_and_reason, .init = make_conf, .fini = drop_conf)
{
    node_config_t c;
    node_config_default(&c);
    char err[512], want[512];
    cr_assert_eq(load_text(&c, "ring_size = 64\n\nbuckets.default.r = twoo\n", err, sizeof err),
                 -1);
    snprintf(want, sizeof want, "%s:3: buckets.default.r: 'twoo' is not a quorum", conf_path);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);

    cr_assert_eq(load_text(&c, "# x\nfoo.bar = 1\n", err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: foo.bar: unknown key", conf_path);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "got '%s'", err);

    cr_assert_eq(load_text(&c, "ring_size 64\n", err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:1: ring_size 64: expected 'key = value'", conf_path);
    cr_assert_str_eq(err, want);

    cr_assert_eq(load_text(&c, " = 5\n", err, sizeof err), -1);
    cr_assert(strstr(err, ":1:") && strstr(err, "no key"), "got '%s'", err);

    cr_assert_eq(load_text(&c, "ring_size =\n", err, sizeof err), -1);
    cr_assert(strstr(err, ":1: ring_size:"), "got '%s'", err);

    write_conf("");
    FILE *f = fopen(conf_path, "wb");
    fwrite("ring_size = 8\0\n", 1, 15, f);
    fclose(f);
    cr_assert_eq(node_config_load(&c, conf_path, err, sizeof err), -1);
    cr_assert(strstr(err, "NUL"), "got '%s'", err);

    cr_assert_eq(node_config_load(&c, "/nonexistent/cairn.conf", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/cairn.conf: cannot open"), "got '%s'", err);
}

/* ---------------------------------------------------------------- cross-field checks */

static void expect_invalid(const char *k1, const char *v1, const char *k2, const char *v2,
                           const char *expect_prefix)
{
    node_config_t c;
    node_config_default(&c);
    set_ok(&c, k1, v1);
    if (k2)
        set_ok(&c, k2, v2);
    char err[512] = "";
    cr_assert_eq(node_config_validate(&c, err, sizeof err), -1, "%s=%s %s=%s accepted", k1, v1,
                 k2 ? k2 : "", k2 ? v2 : "");
    cr_assert(strncmp(err, expect_prefix, strlen(expect_prefix)) == 0, "got '%s', want '%s...'",
              err, expect_prefix);
}

Test(node_config, cross_field_rules)
{
    expect_invalid("buckets.default.r", "4", NULL, NULL,
                   "buckets.default.r: 4 is larger than buckets.default.n_val (3)");
    expect_invalid("buckets.default.n_val", "1", "buckets.default.w", "2", "buckets.default.w:");
    expect_invalid("buckets.default.pr", "5", NULL, NULL, "buckets.default.pr:");
    expect_invalid("buckets.default.pw", "5", NULL, NULL, "buckets.default.pw:");
    expect_invalid("buckets.default.dw", "5", NULL, NULL, "buckets.default.dw:");
    expect_invalid("buckets.default.rw", "5", NULL, NULL, "buckets.default.rw:");
    expect_invalid("ring_size", "2", NULL, NULL,
                   "buckets.default.n_val: 3 is larger than ring_size (2)");
    expect_invalid("protobuf.max_frame_size", "1MB", NULL, NULL, "object.size.maximum:");
    expect_invalid("listener.protobuf", "127.0.0.1:8086", NULL, NULL, "listener.protobuf:");

    node_config_t c; /* symbolic quorums are fine with any N */
    node_config_default(&c);
    set_ok(&c, "buckets.default.n_val", "1");
    set_ok(&c, "buckets.default.r", "all");
    set_ok(&c, "buckets.default.w", "quorum");
    char err[256] = "";
    cr_assert_eq(node_config_validate(&c, err, sizeof err), 0, "%s", err);

    /* one key changed alone never trips over another key's default */
    const char *alone[][2] = {{"object.size.maximum", "1MB"},
                              {"object.siblings.maximum", "10"},
                              {"buckets.default.big_vclock", "10"},
                              {"buckets.default.old_vclock", "10s"},
                              {"buckets.default.n_val", "1"},
                              {"ring_size", "4"}};
    for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++) {
        node_config_default(&c);
        set_ok(&c, alone[i][0], alone[i][1]);
        cr_assert_eq(node_config_validate(&c, err, sizeof err), 0, "%s = %s: %s", alone[i][0],
                     alone[i][1], err);
    }
}

/* ---------------------------------------------------------------- print */

static char *print_to_string(const node_config_t *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    node_config_print(c, f);
    fclose(f);
    return buf;
}

Test(node_config, print_reads_back_to_the_same_config, .init = make_conf, .fini = drop_conf)
{
    node_config_t a, b;
    node_config_default(&a);
    set_ok(&a, "distribution.cookie", "xyz");
    set_ok(&a, "leveldb.cache_size", "3MB");
    set_ok(&a, "leveldb.write_buffer_size", "100000");
    set_ok(&a, "request.timeout", "1500ms");
    set_ok(&a, "delete_mode", "keep");
    set_ok(&a, "buckets.default.r", "2");
    set_ok(&a, "buckets.default.w", "one");
    set_ok(&a, "buckets.default.allow_mult", "on");
    set_ok(&a, "log.level", "error");
    set_ok(&a, "listener.protobuf", "[::1]:9999");
    set_ok(&a, "storage.sync", "always");
    set_ok(&a, "storage.backend", "memory");
    char *text = print_to_string(&a);
    cr_assert(strstr(text, "ring_size = 64\n"), "%s", text);
    cr_assert(strstr(text, "leveldb.cache_size = 3MB\n"), "%s", text);
    cr_assert(strstr(text, "request.timeout = 1500ms\n"), "%s", text);
    cr_assert(strstr(text, "buckets.default.dw = quorum\n"), "%s", text);
    cr_assert(strstr(text, "listener.protobuf = [::1]:9999\n"), "%s", text);

    node_config_default(&b);
    char err[512];
    cr_assert_eq(load_text(&b, text, err, sizeof err), 0, "%s\n%s", err, text);
    char *again = print_to_string(&b);
    cr_assert_str_eq(again, text);
    free(again);
    free(text);

    /* the defaults too, where the cookie line is a comment */
    node_config_default(&a);
    text = print_to_string(&a);
    cr_assert(strstr(text, "# distribution.cookie ="), "%s", text);
    cr_assert(strstr(text, "log.file = $(platform_data_dir)/cairnd.log"), "%s", text);
    free(text);
}

/* ---------------------------------------------------------------- documentation */

/* docs/configuration.md, found by walking up from the test binary to the source tree. */
static char *read_docs(void)
{
    char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    cr_assert(n > 0);
    dir[n] = 0;
    for (int up = 0; up < 8; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        *slash = 0;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/docs/configuration.md", dir);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *buf = calloc(1, 1 << 20);
        size_t got = fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        buf[got] = 0;
        return buf;
    }
    cr_assert_fail("docs/configuration.md not found above the test binary");
    return NULL;
}

Test(node_config, every_key_is_documented_in_order)
{
    char *docs = read_docs();
    const char *last = docs;
    cr_assert(node_config_key_count() > 40);
    for (size_t i = 0; i < node_config_key_count(); i++) {
        char pat[128];
        snprintf(pat, sizeof pat, "| `%s` |", node_config_key_name(i));
        const char *at = strstr(docs, pat);
        cr_assert_not_null(at, "key %s is not documented in docs/configuration.md",
                           node_config_key_name(i));
        cr_assert(at > last, "key %s is documented out of order", node_config_key_name(i));
        last = at;
    }
    cr_assert_null(node_config_key_name(node_config_key_count()));
    free(docs);
}
