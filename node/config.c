/*
 * config.c — cairnd's configuration (node/config.h): the table of every key with its parser
 * and printer, the riak.conf-style file reader, and the cross-field checks.
 *
 * One table drives everything: node_config_set finds the key there and runs its parser,
 * node_config_print walks it in order, and docs/configuration.md documents the same keys in
 * the same order (a unit test checks that every key is documented). Values: sizes take
 * B/KB/MB/GB/TB (1024-based), durations ms/s/m/h/d (a unit is required, "0" aside),
 * booleans on/off/true/false, quorums a number or one/quorum/all.
 */
#include "node/config.h"

#include "node/quorum.h"
#include "ring/ring.h"
#include "runtime/rt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RING_MAX_Q RING_MAX_PARTITIONS

/* ---------------------------------------------------------------- value parsers */

/* A decimal number made only of digits (no sign, no spaces); *end after the digits. */
static bool parse_digits(const char *s, uint64_t *out, const char **end)
{
    if (!isdigit((unsigned char)*s))
        return false;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    *end = s;
    return true;
}

static bool parse_uint(const char *s, uint64_t *out)
{
    const char *end;
    return parse_digits(s, out, &end) && *end == 0;
}

/* "64MB", "512 KB", "1GiB", "4096": bytes (units 1024-based, case-insensitive). */
static bool parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
                 {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
                 {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
    uint64_t v;
    const char *end;
    if (!parse_digits(s, &v, &end))
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit) == 0) {
            if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
                return false;
            *out = v << units[i].shift;
            return true;
        }
    }
    return false;
}

/* "10s", "500ms", "1h30m", "0": milliseconds. A number without unit is refused (is "60" a
 * minute or 60 ms?), except 0. */
static bool parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    uint64_t total = 0;
    if (!*s)
        return false;
    while (*s) {
        uint64_t v;
        const char *end;
        if (!parse_digits(s, &v, &end))
            return false;
        size_t ulen = 0;
        while (isalpha((unsigned char)end[ulen]))
            ulen++;
        if (ulen == 0)
            return false;
        bool found = false;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (strlen(units[i].unit) == ulen && strncasecmp(end, units[i].unit, ulen) == 0) {
                if (v > (UINT64_MAX - total) / units[i].ms)
                    return false;
                total += v * units[i].ms;
                found = true;
                break;
            }
        }
        if (!found)
            return false;
        s = end + ulen;
    }
    *out = total;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "on") || !strcasecmp(s, "true")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(s, "off") || !strcasecmp(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

static bool ip_literal_ok(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* ---------------------------------------------------------------- value printers */

static void print_size(char *buf, size_t n, uint64_t v)
{
    static const char *units[] = {"TB", "GB", "MB", "KB"};
    for (int i = 0; i < 4; i++) {
        unsigned shift = (unsigned)(40 - 10 * i);
        if (v && (v & ((UINT64_C(1) << shift) - 1)) == 0) {
            snprintf(buf, n, "%" PRIu64 "%s", v >> shift, units[i]);
            return;
        }
    }
    snprintf(buf, n, "%" PRIu64 "B", v);
}

static void print_duration(char *buf, size_t n, uint64_t ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            snprintf(buf, n, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return;
        }
    snprintf(buf, n, "%" PRIu64 "ms", ms);
}

static void print_number(char *buf, size_t n, uint64_t v)
{
    snprintf(buf, n, "%" PRIu64, v);
}

/* ---------------------------------------------------------------- the key table */

typedef struct key_s conf_key_t;
typedef int (*set_fn)(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                      size_t errlen);
typedef void (*print_fn)(const node_config_t *c, const conf_key_t *k, char *buf, size_t n);

struct key_s {
    const char *name;
    set_fn set;
    print_fn print;
    size_t off, width; /* the field: offset in node_config_t and its size */
    uint64_t min, max; /* numeric bounds, in the field's unit */
};

static void *field(node_config_t *c, const conf_key_t *k) { return (char *)c + k->off; }
static const void *cfield(const node_config_t *c, const conf_key_t *k)
{
    return (const char *)c + k->off;
}

static void store_uint(void *p, size_t width, uint64_t v)
{
    switch (width) {
    case 1: *(uint8_t *)p = (uint8_t)v; break;
    case 2: *(uint16_t *)p = (uint16_t)v; break;
    case 4: *(uint32_t *)p = (uint32_t)v; break;
    default: *(uint64_t *)p = v; break;
    }
}

static uint64_t load_uint(const void *p, size_t width)
{
    switch (width) {
    case 1: return *(const uint8_t *)p;
    case 2: return *(const uint16_t *)p;
    case 4: return *(const uint32_t *)p;
    default: return *(const uint64_t *)p;
    }
}

/* v (the text `shown`) against the key's bounds, which the error shows printed by show. */
static int check_range(const conf_key_t *k, uint64_t v, const char *shown,
                       void (*show)(char *buf, size_t n, uint64_t v), char *err, size_t errlen)
{
    if (v >= k->min && v <= k->max)
        return 0;
    char lo[32], hi[32];
    show(lo, sizeof lo, k->min);
    show(hi, sizeof hi, k->max);
    return node_errorf(err, errlen, "%s is out of range (%s..%s)", shown, lo, hi);
}

/* --- numbers */

/* A whole number within the key's bounds. */
static int parse_ranged_uint(const conf_key_t *k, const char *v, uint64_t *x, char *err,
                             size_t errlen)
{
    if (!parse_uint(v, x))
        return node_errorf(err, errlen, "'%s' is not a whole number", v);
    return check_range(k, *x, v, print_number, err, errlen);
}

static int set_uint(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    uint64_t x;
    if (parse_ranged_uint(k, v, &x, err, errlen))
        return -1;
    store_uint(field(c, k), k->width, x);
    return 0;
}
static void print_uint(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%" PRIu64, load_uint(cfield(c, k), k->width));
}

/* int fields (bloom_bits, max_open_files) are stored through an int */
static int set_int(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    uint64_t x;
    if (parse_ranged_uint(k, v, &x, err, errlen))
        return -1;
    *(int *)field(c, k) = (int)x;
    return 0;
}
static void print_int(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%d", *(const int *)cfield(c, k));
}

/* --- sizes */
static int set_size(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    uint64_t x;
    if (!parse_size(v, &x))
        return node_errorf(err, errlen, "'%s' is not a size (e.g. 4096, 512KB, 64MB, 1GB)", v);
    if (check_range(k, x, v, print_size, err, errlen))
        return -1;
    store_uint(field(c, k), k->width, x);
    return 0;
}
static void print_size_key(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    print_size(buf, n, load_uint(cfield(c, k), k->width));
}

/* --- sizes and ints whose default depends on leveldb.layout: "auto" is stored as 0 */
static bool set_if_auto(node_config_t *c, const conf_key_t *k, const char *v)
{
    if (strcasecmp(v, "auto"))
        return false;
    store_uint(field(c, k), k->width, 0);
    return true;
}
static bool print_if_auto(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (load_uint(cfield(c, k), k->width) != 0)
        return false;
    snprintf(buf, n, "auto");
    return true;
}
static int set_size_auto(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                         size_t errlen)
{
    return set_if_auto(c, k, v) ? 0 : set_size(c, k, v, err, errlen);
}
static void print_size_auto(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (!print_if_auto(c, k, buf, n))
        print_size_key(c, k, buf, n);
}
static int set_int_auto(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                        size_t errlen)
{
    return set_if_auto(c, k, v) ? 0 : set_int(c, k, v, err, errlen);
}
static void print_int_auto(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (!print_if_auto(c, k, buf, n))
        print_int(c, k, buf, n);
}

/* --- durations (fields in milliseconds) */
static int set_duration(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                        size_t errlen)
{
    uint64_t x;
    if (k->min == 0 && !strcasecmp(v, "off"))
        x = 0;
    else if (!parse_duration_ms(v, &x))
        return node_errorf(err, errlen,
                      "'%s' is not a duration (a number with a unit: 500ms, 10s, 5m, 1h, 1d)", v);
    if (check_range(k, x, v, print_duration, err, errlen))
        return -1;
    store_uint(field(c, k), k->width, x);
    return 0;
}
static void print_duration_key(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    uint64_t ms = load_uint(cfield(c, k), k->width);
    if (ms == 0 && k->min == 0)
        snprintf(buf, n, "off");
    else
        print_duration(buf, n, ms);
}

/* --- durations stored in seconds (vclock ages); a plain number is seconds, as in Riak's
 *     bucket properties */
static int set_seconds(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                       size_t errlen)
{
    uint64_t x, ms;
    if (parse_uint(v, &x)) {
        /* seconds */
    } else if (parse_duration_ms(v, &ms)) {
        if (ms % 1000)
            return node_errorf(err, errlen, "'%s' is not a whole number of seconds", v);
        x = ms / 1000;
    } else {
        return node_errorf(err, errlen, "'%s' is not a duration (seconds, or 20s, 30m, 1d)", v);
    }
    if (check_range(k, x, v, print_number, err, errlen))
        return -1;
    store_uint(field(c, k), k->width, x);
    return 0;
}
static void print_seconds(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    print_duration(buf, n, load_uint(cfield(c, k), k->width) * 1000);
}

/* --- booleans */
static int set_bool(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    if (!parse_bool(v, (bool *)field(c, k)))
        return node_errorf(err, errlen, "'%s' is not a boolean (on, off, true, false)", v);
    return 0;
}
static void print_bool(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s", *(const bool *)cfield(c, k) ? "on" : "off");
}

/* --- on, off or auto (an int: 1, 0, NODE_AUTO) */
static int set_auto_bool(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                         size_t errlen)
{
    bool b;
    if (!strcasecmp(v, "auto"))
        *(int *)field(c, k) = NODE_AUTO;
    else if (parse_bool(v, &b))
        *(int *)field(c, k) = b;
    else
        return node_errorf(err, errlen, "'%s' is not on, off or auto", v);
    return 0;
}
static void print_auto_bool(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    int x = *(const int *)cfield(c, k);
    snprintf(buf, n, "%s", x == NODE_AUTO ? "auto" : x ? "on" : "off");
}

/* --- quorum values: a number in [min, max], or one/quorum/all */
static int set_quorum(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                      size_t errlen)
{
    uint32_t q;
    uint64_t x;
    if (!strcasecmp(v, "one"))
        q = NODE_QUORUM_ONE;
    else if (!strcasecmp(v, "quorum"))
        q = NODE_QUORUM_QUORUM;
    else if (!strcasecmp(v, "all"))
        q = NODE_QUORUM_ALL;
    else if (!strcasecmp(v, "default"))
        return node_errorf(err, errlen,
                      "'default' means this very setting; give a number, one, quorum or all");
    else if (!parse_uint(v, &x))
        return node_errorf(err, errlen, "'%s' is not a quorum (a number, one, quorum or all)", v);
    else if (check_range(k, x, v, print_number, err, errlen))
        return -1;
    else
        q = (uint32_t)x;
    *(uint32_t *)field(c, k) = q;
    return 0;
}
static void print_quorum_key(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    quorum_value_text(*(const uint32_t *)cfield(c, k), buf, n);
}

/* --- strings */
static int set_str(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    if (!*v)
        return node_errorf(err, errlen, "empty value");
    if (strlen(v) >= k->width)
        return node_errorf(err, errlen, "too long (at most %zu bytes)", k->width - 1);
    snprintf((char *)field(c, k), k->width, "%s", v);
    return 0;
}
static void print_str(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s", (const char *)cfield(c, k));
}

/* --- specific keys */

/* The host and port of an address: an IP literal (no name resolution) and 0..65535. */
static int parse_host_port(const char *host, const char *portp, uint64_t *port, char *err,
                           size_t errlen)
{
    if (!ip_literal_ok(host))
        return node_errorf(err, errlen, "host '%s' is not an IP address (host names are not resolved)",
                      host);
    if (!parse_uint(portp, port) || *port > 65535)
        return node_errorf(err, errlen, "port '%s' is not in 0..65535 (0: any free port)", portp);
    return 0;
}

static int set_nodename(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                        size_t errlen)
{
    size_t len = strlen(v);
    const char *at = strchr(v, '@'), *colon = strrchr(v, ':');
    if (!at || at == v || !colon || colon < at)
        return node_errorf(err, errlen, "'%s' is not name@host:port (e.g. cairn@127.0.0.1:8086)", v);
    if (len >= sizeof c->nodename)
        return node_errorf(err, errlen, "too long (at most %zu bytes)", sizeof c->nodename - 1);
    for (const char *p = v; p < at; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return node_errorf(err, errlen,
                          "the name part '%.*s' may hold only letters, digits, '_', '-' and '.'",
                          (int)(at - v), v);
    char host[256];
    size_t hl = (size_t)(colon - at - 1);
    memcpy(host, at + 1, hl);
    host[hl] = 0;
    uint64_t port;
    if (parse_host_port(host, colon + 1, &port, err, errlen))
        return -1;
    memcpy(c->nodename, v, len + 1);
    return 0;
}

static int set_listener(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                        size_t errlen)
{
    char host[128];
    const char *portp;
    if (v[0] == '[') { /* [v6]:port */
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':' || (size_t)(close - v - 1) >= sizeof host)
            return node_errorf(err, errlen, "'%s' is not host:port (IPv6: [::1]:8087)", v);
        memcpy(host, v + 1, (size_t)(close - v - 1));
        host[close - v - 1] = 0;
        portp = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v || (size_t)(colon - v) >= sizeof host ||
            memchr(v, ':', (size_t)(colon - v)))
            return node_errorf(err, errlen, "'%s' is not host:port (e.g. 127.0.0.1:8087)", v);
        memcpy(host, v, (size_t)(colon - v));
        host[colon - v] = 0;
        portp = colon + 1;
    }
    uint64_t port;
    if (parse_host_port(host, portp, &port, err, errlen))
        return -1;
    if (strlen(host) >= sizeof c->client_host) /* an IP literal always fits: defensive */
        return node_errorf(err, errlen, "host '%s' is too long", host);
    memcpy(c->client_host, host, strlen(host) + 1);
    c->client_port = (int)port;
    return 0;
}
static void print_listener(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (strchr(c->client_host, ':'))
        snprintf(buf, n, "[%s]:%d", c->client_host, c->client_port);
    else
        snprintf(buf, n, "%s:%d", c->client_host, c->client_port);
}

static int set_ring_size(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                         size_t errlen)
{
    uint64_t x;
    if (!parse_uint(v, &x) || x < 1 || x > RING_MAX_Q || (x & (x - 1)))
        return node_errorf(err, errlen, "'%s' is not a power of two in 1..%u", v, RING_MAX_Q);
    c->ring_size = (uint32_t)x;
    return 0;
}

static int set_cookie(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                      size_t errlen)
{
    size_t len = strlen(v);
    if (len == 0)
        return node_errorf(err, errlen, "empty value");
    if (len >= sizeof c->cookie)
        return node_errorf(err, errlen, "too long (at most %zu bytes)", sizeof c->cookie - 1);
    for (const char *p = v; *p; p++)
        if (!isgraph((unsigned char)*p))
            return node_errorf(err, errlen, "may hold only printable characters without spaces");
    memcpy(c->cookie, v, len + 1);
    return 0;
}

static const char *const level_names[] = {"debug", "info", "warning", "error", "none"};

static int set_log_level(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                         size_t errlen)
{
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(v, level_names[i])) {
            c->log_level = i;
            return 0;
        }
    if (!strcasecmp(v, "warn")) {
        c->log_level = RT_LOG_WARN;
        return 0;
    }
    return node_errorf(err, errlen, "'%s' is not a log level (debug, info, warning, error, none)", v);
}
static void print_log_level(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    int l = c->log_level;
    snprintf(buf, n, "%s", l >= 0 && l <= RT_LOG_NONE ? level_names[l] : "info");
}

static int set_log_file(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                        size_t errlen)
{
    if (!*v)
        return node_errorf(err, errlen, "empty value (use 'off' for no log file)");
    return set_str(c, k, v, err, errlen);
}
static void print_log_file(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (!c->log_file[0])
        snprintf(buf, n, "$(platform_data_dir)/cairnd.log");
    else
        snprintf(buf, n, "%s", c->log_file);
}

static int set_backend(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                       size_t errlen)
{
    c->storage_auto = !strcasecmp(v, "auto");
    if (c->storage_auto)
        c->storage.kind = STORE_ENGINE_BITCASK;
    else if (!strcasecmp(v, "leveldb"))
        c->storage.kind = STORE_ENGINE_LEVELDB;
    else if (!strcasecmp(v, "bitcask"))
        c->storage.kind = STORE_ENGINE_BITCASK;
    else if (!strcasecmp(v, "memory"))
        c->storage.kind = STORE_ENGINE_MEMORY;
    else
        return node_errorf(err, errlen, "'%s' is not a backend (auto, bitcask, leveldb, "
                           "memory)", v);
    return 0;
}
static void print_backend(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s", c->storage_auto ? "auto" : node_engine_name(c->storage.kind));
}

const char *node_engine_name(store_engine_kind_t kind)
{
    return kind == STORE_ENGINE_MEMORY ? "memory" : kind == STORE_ENGINE_BITCASK ? "bitcask"
                                                                                 : "leveldb";
}

static int set_layout(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                      size_t errlen)
{
    if (!strcasecmp(v, "node"))
        c->storage.layout = STORE_LAYOUT_NODE;
    else if (!strcasecmp(v, "partition"))
        c->storage.layout = STORE_LAYOUT_PARTITION;
    else
        return node_errorf(err, errlen, "'%s' is not a LevelDB layout (node, partition)", v);
    return 0;
}
static void print_layout(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s", c->storage.layout == STORE_LAYOUT_PARTITION ? "partition" : "node");
}

static int set_sync(node_config_t *c, const conf_key_t *k, const char *v, char *err, size_t errlen)
{
    if (!strcasecmp(v, "none"))
        c->storage.sync = STORE_SYNC_NONE;
    else if (!strcasecmp(v, "always"))
        c->storage.sync = STORE_SYNC_ALWAYS;
    else if (!strcasecmp(v, "interval"))
        c->storage.sync = STORE_SYNC_INTERVAL;
    else
        return node_errorf(err, errlen, "'%s' is not a sync mode (none, always, interval)", v);
    return 0;
}
static void print_sync(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    static const char *names[] = {"none", "always", "interval"};
    unsigned s = (unsigned)c->storage.sync;
    snprintf(buf, n, "%s", s < 3 ? names[s] : "none");
}

static int set_delete_mode(node_config_t *c, const conf_key_t *k, const char *v, char *err,
                           size_t errlen)
{
    uint64_t ms;
    if (!strcasecmp(v, "keep")) {
        c->delete_mode = DELETE_MODE_KEEP;
        return 0;
    }
    if (!strcasecmp(v, "immediate")) {
        c->delete_mode = DELETE_MODE_IMMEDIATE;
        return 0;
    }
    if (!parse_uint(v, &ms) && !parse_duration_ms(v, &ms)) /* a plain number is ms, as in Riak */
        return node_errorf(err, errlen, "'%s' is not keep, immediate, or a delay (3000, 3s)", v);
    if (ms < k->min || ms > k->max)
        return node_errorf(err, errlen, "delay %s is out of range (1ms..1d; use 'immediate' for none)",
                      v);
    c->delete_mode = DELETE_MODE_DELAY;
    c->delete_delay_ms = (uint32_t)ms;
    return 0;
}
static void print_delete_mode(const node_config_t *c, const conf_key_t *k, char *buf, size_t n)
{
    if (c->delete_mode == DELETE_MODE_KEEP)
        snprintf(buf, n, "keep");
    else if (c->delete_mode == DELETE_MODE_IMMEDIATE)
        snprintf(buf, n, "immediate");
    else
        print_duration(buf, n, c->delete_delay_ms);
}

/* clang-format off */
#define F(member) offsetof(node_config_t, member), sizeof(((node_config_t *)0)->member)
#define NUM(name, member, lo, hi) {name, set_uint, print_uint, F(member), lo, hi}
#define INT(name, member, lo, hi) {name, set_int, print_int, F(member), lo, hi}
#define SIZE(name, member, lo, hi) {name, set_size, print_size_key, F(member), lo, hi}
#define DUR(name, member, lo, hi) {name, set_duration, print_duration_key, F(member), lo, hi}
#define BOOL(name, member) {name, set_bool, print_bool, F(member), 0, 1}
#define QUORUM(name, member, lo) {name, set_quorum, print_quorum_key, F(member), lo, 1024}
#define SECONDS(name, member) {name, set_seconds, print_seconds, F(member), 0, CENTURY_S}
#define SPECIAL(name, member, set, print) {name, set, print, F(member), 0, 0}
#define KB UINT64_C(1024)
#define MB (KB * 1024)
#define GB (MB * 1024)
#define SEC UINT64_C(1000)
#define DAY (86400 * SEC)
#define CENTURY_S (UINT64_C(100) * 365 * 86400)

static const conf_key_t keys[] = {
    /* identity and addresses */
    SPECIAL("nodename", nodename, set_nodename, print_str),
    SPECIAL("listener.protobuf", client_host, set_listener, print_listener),
    {"platform_data_dir", set_str, print_str, F(data_dir), 0, 0},
    SPECIAL("ring_size", ring_size, set_ring_size, print_uint),
    SPECIAL("distribution.cookie", cookie, set_cookie, print_str),
    /* logging */
    SPECIAL("log.level", log_level, set_log_level, print_log_level),
    {"log.file", set_log_file, print_log_file, F(log_file), 0, 0},
    /* runtime */
    NUM("runtime.schedulers", schedulers, 0, 1024),
    NUM("runtime.workers", workers, 1, 256),
    NUM("runtime.idle_spin", idle_spin, 0, 1000000),
    BOOL("runtime.io_thread", io_thread),
    /* cluster */
    DUR("cluster.heartbeat_interval", heartbeat_ms, 10, 60 * SEC),
    DUR("cluster.node_timeout", node_timeout_ms, 50, 600 * SEC),
    DUR("cluster.gossip_interval", gossip_interval_ms, 10, 600 * SEC),
    DUR("cluster.claimant_tick", claimant_tick_ms, 10, 600 * SEC),
    NUM("cluster.target_n_val", target_n_val, 1, 1024),
    BOOL("anti_entropy", anti_entropy),
    DUR("anti_entropy.interval", ae_interval_ms, 10, DAY),
    NUM("anti_entropy.max_rate", ae_max_rate, 1, 1000000),
    NUM("handoff.concurrency", handoff_concurrency, 0, 1024),
    /* storage */
    SPECIAL("storage.backend", storage.kind, set_backend, print_backend),
    SPECIAL("storage.sync", storage.sync, set_sync, print_sync),
    DUR("storage.sync_interval", storage.sync_interval_ms, 1, 3600 * SEC),
    SPECIAL("leveldb.layout", storage.layout, set_layout, print_layout),
    SIZE("leveldb.cache_size", storage.cache_bytes, 1 * MB, 1024 * GB),
    {"leveldb.write_buffer_size", set_size_auto, print_size_auto, F(storage.write_buffer_bytes),
     64 * KB, 1 * GB},
    {"leveldb.max_open_files", set_int_auto, print_int_auto, F(storage.max_open_files), 16,
     65536},
    INT("leveldb.bloom_bits", storage.bloom_bits, 0, 64),
    BOOL("leveldb.compression", storage.compression),
    SIZE("bitcask.max_file_size", storage.cask_file_bytes, 64 * KB, 4 * GB),
    NUM("bitcask.merge_threshold", storage.cask_merge_percent, 1, 100),
    /* client protocol */
    SIZE("protobuf.max_frame_size", max_frame_bytes, 1 * KB, 1 * GB),
    NUM("protobuf.max_connections", max_connections, 1, 1000000),
    DUR("protobuf.frame_timeout", frame_timeout_ms, 100, DAY),
    DUR("protobuf.idle_timeout", idle_timeout_ms, 0, 30 * DAY),
    /* requests */
    NUM("request.max_concurrent", max_concurrent_requests, 1, 10000000),
    DUR("request.timeout", request_timeout_ms, 1, DAY),
    DUR("request.list_timeout", list_timeout_ms, 1, DAY),
    NUM("vnode.queue_max", vnode_queue_max, 1, 10000000),
    SIZE("vnode.cache_size", vnode_cache_bytes, 0, 1024 * GB),
    SPECIAL("vnode.write_thread", vnode_write_thread, set_auto_bool, print_auto_bool),
    {"delete_mode", set_delete_mode, print_delete_mode, F(delete_delay_ms), 1, DAY},
    SIZE("object.size.warning_threshold", object_warn_bytes, 1, 1 * GB),
    SIZE("object.size.maximum", object_max_bytes, 1, 1 * GB),
    NUM("object.siblings.warning_threshold", siblings_warn, 1, 1000000),
    NUM("object.siblings.maximum", siblings_max, 1, 1000000),
    /* bucket defaults */
    NUM("buckets.default.n_val", bucket_defaults.n_val, 1, 1024),
    QUORUM("buckets.default.r", bucket_defaults.r, 1),
    QUORUM("buckets.default.w", bucket_defaults.w, 1),
    QUORUM("buckets.default.dw", bucket_defaults.dw, 0),
    QUORUM("buckets.default.rw", bucket_defaults.rw, 1),
    QUORUM("buckets.default.pr", bucket_defaults.pr, 0),
    QUORUM("buckets.default.pw", bucket_defaults.pw, 0),
    BOOL("buckets.default.allow_mult", bucket_defaults.allow_mult),
    BOOL("buckets.default.last_write_wins", bucket_defaults.last_write_wins),
    BOOL("buckets.default.notfound_ok", bucket_defaults.notfound_ok),
    BOOL("buckets.default.basic_quorum", bucket_defaults.basic_quorum),
    NUM("buckets.default.small_vclock", bucket_defaults.small_vclock, 1, 1000000),
    NUM("buckets.default.big_vclock", bucket_defaults.big_vclock, 1, 1000000),
    SECONDS("buckets.default.young_vclock", bucket_defaults.young_vclock),
    SECONDS("buckets.default.old_vclock", bucket_defaults.old_vclock),
};
/* clang-format on */
#define NKEYS (sizeof keys / sizeof keys[0])

size_t node_config_key_count(void) { return NKEYS; }
const char *node_config_key_name(size_t i) { return i < NKEYS ? keys[i].name : NULL; }

/* ---------------------------------------------------------------- defaults */

void node_config_default(node_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->nodename, sizeof c->nodename, "cairn@127.0.0.1:8086");
    snprintf(c->client_host, sizeof c->client_host, "127.0.0.1");
    c->client_port = 8087;
    snprintf(c->data_dir, sizeof c->data_dir, "./data");
    c->ring_size = 64;
    c->log_level = RT_LOG_INFO;
    c->schedulers = 0;
    c->workers = 4;
    c->idle_spin = 100;
    c->heartbeat_ms = 1000;
    c->node_timeout_ms = 4000;
    c->gossip_interval_ms = 1000;
    c->claimant_tick_ms = 1000;
    c->target_n_val = 3;
    c->handoff_concurrency = 2;
    c->anti_entropy = true;
    c->ae_interval_ms = 2000;
    c->ae_max_rate = 500;
    c->storage = store_config_default(NULL); /* data_dir is set by the node at start */
    c->storage.kind = STORE_ENGINE_BITCASK;   /* storage.backend = auto, for a new data dir */
    c->storage_auto = true;
    c->storage.sync_interval_ms = 1000;
    c->max_frame_bytes = 64u << 20;
    c->max_connections = 1024;
    c->frame_timeout_ms = 10000;
    c->idle_timeout_ms = 0;
    c->max_concurrent_requests = 50000;
    c->request_timeout_ms = 60000;
    c->list_timeout_ms = 480000;
    c->vnode_queue_max = 10000;
    c->vnode_cache_bytes = 128 * MB;
    c->vnode_write_thread = 0; /* off: grouped on the scheduler (docs/benchmarks.md) */
    c->delete_mode = DELETE_MODE_DELAY;
    c->delete_delay_ms = 3000;
    c->object_warn_bytes = 5u << 20;
    c->object_max_bytes = 50u << 20;
    c->siblings_warn = 25;
    c->siblings_max = 100;
    c->bucket_defaults = (node_bucket_defaults_t){
        .n_val = 3,
        .r = NODE_QUORUM_QUORUM,
        .w = NODE_QUORUM_QUORUM,
        .dw = NODE_QUORUM_QUORUM,
        .rw = NODE_QUORUM_QUORUM,
        .pr = 0,
        .pw = 0,
        .allow_mult = false,
        .last_write_wins = false,
        .notfound_ok = true,
        .basic_quorum = false,
        .small_vclock = 50,
        .big_vclock = 50,
        .young_vclock = 20,
        .old_vclock = 86400,
    };
}

/* ---------------------------------------------------------------- set / load */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const conf_key_t *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

int node_config_set(node_config_t *c, const char *key, const char *value, char *err, size_t errlen)
{
    if (!key || !*key)
        return node_errorf(err, errlen, "empty key");
    const conf_key_t *k = find_key(key);
    if (!k) {
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t i = 0; i < NKEYS; i++) {
            size_t d = edit_distance(key, keys[i].name);
            if (d < best_d) {
                best_d = d;
                best = keys[i].name;
            }
        }
        size_t limit = strlen(key) / 4 > 2 ? strlen(key) / 4 : 2;
        if (best && best_d <= limit)
            return node_errorf(err, errlen, "unknown key (did you mean '%s'?)", best);
        return node_errorf(err, errlen, "unknown key (see docs/configuration.md)");
    }
    if (!value || !*value)
        return node_errorf(err, errlen, "empty value");
    return k->set(c, k, value, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Cuts a comment: '#' at the start of the line or after whitespace. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = 0;
            return;
        }
}

int node_config_load(node_config_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return node_errorf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)got)) {
            rc = node_errorf(err, errlen, "%s:%u: a NUL byte in the file (not a text file?)", path,
                        lineno);
            break;
        }
        strip_comment(line);
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = node_errorf(err, errlen, "%s:%u: %.64s: expected 'key = value'", path, lineno, s);
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        char why[512];
        if (!*key) {
            rc = node_errorf(err, errlen, "%s:%u: a line with '=' but no key", path, lineno);
            break;
        }
        if (node_config_set(c, key, value, why, sizeof why) != 0) {
            rc = node_errorf(err, errlen, "%s:%u: %.128s: %s", path, lineno, key, why);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = node_errorf(err, errlen, "%s: read error: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- validation */

static int check_quorum(const node_config_t *c, const char *name, uint32_t q, char *err,
                        size_t errlen)
{
    uint32_t n = c->bucket_defaults.n_val;
    if (q >= NODE_QUORUM_DEFAULT) /* symbolic: resolved against N per request */
        return 0;
    if (q > n)
        return node_errorf(err, errlen,
                      "buckets.default.%s: %" PRIu32
                      " is larger than buckets.default.n_val (%" PRIu32 ")",
                      name, q, n);
    return 0;
}

static bool same_endpoint(const node_config_t *c)
{
    const char *at = strchr(c->nodename, '@'), *colon = strrchr(c->nodename, ':');
    if (!at || !colon || colon < at)
        return false;
    size_t hl = (size_t)(colon - at - 1);
    return c->client_port != 0 && strlen(c->client_host) == hl && !strncmp(c->client_host, at + 1, hl) &&
           atoi(colon + 1) == c->client_port;
}

int node_config_validate(const node_config_t *c, char *err, size_t errlen)
{
    const node_bucket_defaults_t *b = &c->bucket_defaults;
    if (!c->data_dir[0])
        return node_errorf(err, errlen, "platform_data_dir: empty");
    if (b->n_val > c->ring_size)
        return node_errorf(err, errlen,
                      "buckets.default.n_val: %" PRIu32 " is larger than ring_size (%" PRIu32
                      "): the replicas of a key are distinct partitions",
                      b->n_val, c->ring_size);
    const struct {
        const char *name;
        uint32_t v;
    } quorums[] = {{"r", b->r},   {"w", b->w},   {"dw", b->dw},
                   {"rw", b->rw}, {"pr", b->pr}, {"pw", b->pw}};
    for (size_t i = 0; i < sizeof quorums / sizeof quorums[0]; i++)
        if (check_quorum(c, quorums[i].name, quorums[i].v, err, errlen))
            return -1;
    if (c->object_max_bytes > c->max_frame_bytes)
        return node_errorf(err, errlen,
                      "object.size.maximum: larger than protobuf.max_frame_size, so such "
                      "objects could never be written");
    if (same_endpoint(c))
        return node_errorf(err, errlen,
                      "listener.protobuf: %s:%d is also the node link address in nodename",
                      c->client_host, c->client_port);
    if (c->ring_size == 0 || c->ring_size > RING_MAX_Q || (c->ring_size & (c->ring_size - 1)))
        return node_errorf(err, errlen, "ring_size: %" PRIu32 " is not a power of two in 1..%u",
                      c->ring_size, RING_MAX_Q);
    if (c->node_timeout_ms <= c->heartbeat_ms)
        return node_errorf(err, errlen,
                      "cluster.node_timeout: %" PRIu32 " ms must exceed cluster.heartbeat_interval "
                      "(%" PRIu32 " ms), or idle links would be seen as down",
                      c->node_timeout_ms, c->heartbeat_ms);
    return 0;
}

/* ---------------------------------------------------------------- print */

void node_config_print(const node_config_t *c, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < NKEYS; i++) {
        const conf_key_t *k = &keys[i];
        char buf[NODE_CONFIG_STR + 64];
        k->print(c, k, buf, sizeof buf);
        if (k->set == set_cookie && !c->cookie[0])
            fprintf(f, "# %s = (from $(platform_data_dir)/cookie, generated on first start)\n",
                    k->name);
        else
            fprintf(f, "%s = %s\n", k->name, buf);
    }
}

const char *node_config_log_path(const node_config_t *c, char *buf, size_t n)
{
    static const char var[] = "$(platform_data_dir)";
    if (!strcasecmp(c->log_file, "off"))
        return NULL;
    if (!c->log_file[0])
        snprintf(buf, n, "%s/cairnd.log", c->data_dir);
    else if (strncmp(c->log_file, var, sizeof var - 1) == 0) /* riak.conf-style substitution */
        snprintf(buf, n, "%s%s", c->data_dir, c->log_file + sizeof var - 1);
    else
        snprintf(buf, n, "%s", c->log_file);
    return buf;
}
