/*
 * cairn_main.c — the `cairn` command-line client, a thin layer over libcairn (client/cairn.h).
 *
 * Owns: argument parsing (global options, commands, per-request options), reading values
 * from arguments, files or stdin, and the two output forms: text for people (siblings
 * numbered with their metadata, the context in base64 to write back with) and --json for
 * programs (one JSON document per command on stdout). docs/client.md is the user guide.
 *
 * Exit status: 0 success; 1 get found nothing; 2 usage error; 3 any other error; 4 a
 * conditional put's precondition failed (--if-none-match, --if-not-modified).
 */
#include "client/cairn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    EXIT_OK = 0,
    EXIT_NOTFOUND = 1,
    EXIT_USAGE = 2,
    EXIT_ERROR = 3,
    EXIT_PRECONDITION = 4,
};

#define DEFAULT_HOSTS "127.0.0.1:8087"

/* ---------------------------------------------------------------- commands and help */

enum {
    C_GET = 1u << 0,
    C_PUT = 1u << 1,
    C_DEL = 1u << 2,
    C_KEYS = 1u << 3,
    C_BUCKETS = 1u << 4,
    C_PROPS = 1u << 5,
    C_PING = 1u << 6,
    C_INFO = 1u << 7,
    C_ANY = 0xffu,
};

static const char usage_text[] =
    "usage: cairn [-h HOST:PORT[,HOST:PORT...]] [--json] [--timeout MS] COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  get BUCKET KEY              read a key: every sibling and the context\n"
    "  put BUCKET KEY [VALUE]      write a value (VALUE, -f FILE, or -f - for stdin)\n"
    "  del BUCKET KEY              delete a key\n"
    "  keys BUCKET                 list the keys of a bucket (expensive)\n"
    "  buckets                     list the buckets that hold keys (expensive)\n"
    "  props get|set|reset BUCKET [NAME=VALUE...]   bucket properties\n"
    "  ping                        check that a node answers\n"
    "  info                        the node's name and server version\n"
    "\n"
    "Global options (before or after the command):\n"
    "  -h, --host LIST   nodes to try in order, comma-separated (default: $CAIRN_HOST,\n"
    "                    else 127.0.0.1:8087); on a connection error the next is tried\n"
    "  --json            print one JSON document on stdout (binary strings as\n"
    "                    {\"base64\": \"...\"}; contexts are always base64 strings)\n"
    "  --timeout MS      per-request timeout in milliseconds (default 60000)\n"
    "  --help            this text; `cairn COMMAND --help` for a command's options\n"
    "\n"
    "Exit status: 0 success, 1 not found (get), 2 usage error, 3 error (message on stderr),\n"
    "4 precondition failed (put --if-none-match / --if-not-modified).\n";

static const struct command_help {
    const char *name;
    unsigned id;
    const char *text;
} commands[] = {
    {"get", C_GET,
     "usage: cairn get [OPTIONS] BUCKET KEY\n"
     "\n"
     "Reads a key. Text output: the context, then each sibling numbered with its content\n"
     "type, last-modified time and metadata, then its value (binary values as base64).\n"
     "More than one sibling means concurrent writes: resolve them by writing one value back\n"
     "with `cairn put BUCKET KEY VALUE --context CONTEXT`. Exit status 1 if not found.\n"
     "\n"
     "Options:\n"
     "  --type TYPE            bucket type (default \"default\")\n"
     "  --r Q, --pr Q          read quorums: a number or one|quorum|all|default\n"
     "  --n-val N              replicas to read from (may only lower the bucket's)\n"
     "  --notfound-ok BOOL     count a not-found as a successful read (true|false)\n"
     "  --basic-quorum BOOL    stop early when a majority did not find it\n"
     "  --sloppy-quorum BOOL   allow fallback replicas\n"
     "  --head                 metadata only (values are left out)\n"
     "  --deletedvclock        for a deleted key, print the tombstone's context\n"
     "  --if-modified CONTEXT  print \"unchanged\" if CONTEXT is still current\n"
     "  --raw                  write only the value's bytes (fails on siblings)\n"},
    {"put", C_PUT,
     "usage: cairn put [OPTIONS] BUCKET KEY [VALUE]\n"
     "       cairn put [OPTIONS] --auto-key BUCKET [VALUE]\n"
     "\n"
     "Writes a value, given as an argument, read from a file (-f FILE) or from stdin (-f -).\n"
     "Without --context the write is concurrent with what is stored (a new sibling when the\n"
     "bucket has allow_mult=true). With --auto-key the server makes the key and it is\n"
     "printed.\n"
     "\n"
     "Options:\n"
     "  -f FILE                read the value from FILE (- for stdin)\n"
     "  --context CONTEXT      the context printed by get (base64): this write replaces\n"
     "                         what that read saw (resolves its siblings)\n"
     "  --content-type T       default application/octet-stream\n"
     "  --charset C, --content-encoding E\n"
     "  --meta NAME=VALUE      user metadata (repeatable)\n"
     "  --index NAME=VALUE     secondary index entry, e.g. email_bin=a@b.c (repeatable)\n"
     "  --type TYPE            bucket type\n"
     "  --w Q, --dw Q, --pw Q  write quorums: a number or one|quorum|all|default\n"
     "  --n-val N              replicas (may only lower the bucket's)\n"
     "  --sloppy-quorum BOOL   allow fallback replicas\n"
     "  --if-none-match        fail (exit 4) if the key exists\n"
     "  --if-not-modified      fail (exit 4) unless --context is still current\n"
     "  --return-body          print what is stored after the write (siblings, context)\n"
     "  --return-head          like --return-body without the values\n"
     "  --auto-key             let the server make the key (printed)\n"},
    {"del", C_DEL,
     "usage: cairn del [OPTIONS] BUCKET KEY\n"
     "\n"
     "Deletes a key (deleting a missing key succeeds).\n"
     "\n"
     "Options:\n"
     "  --context CONTEXT      the context printed by get: delete what was seen\n"
     "  --type TYPE            bucket type\n"
     "  --rw Q, --r Q, --w Q, --pr Q, --pw Q, --dw Q   quorums (number or\n"
     "                         one|quorum|all|default)\n"
     "  --n-val N, --sloppy-quorum BOOL\n"},
    {"keys", C_KEYS,
     "usage: cairn keys [--type TYPE] BUCKET\n"
     "\n"
     "Lists the keys of a bucket, one per line as they stream in (bytes that are not\n"
     "printable are shown as \\xNN, a backslash as \\\\). Expensive: the node visits every\n"
     "key it stores.\n"},
    {"buckets", C_BUCKETS,
     "usage: cairn buckets [--type TYPE]\n"
     "\n"
     "Lists the buckets that hold at least one live key, one per line (escaped like\n"
     "`keys`). Expensive.\n"},
    {"props", C_PROPS,
     "usage: cairn props get BUCKET\n"
     "       cairn props set BUCKET NAME=VALUE [NAME=VALUE...]\n"
     "       cairn props reset BUCKET\n"
     "\n"
     "Reads, changes or resets (to the defaults) a bucket's properties. Names:\n"
     "  n_val, small_vclock, big_vclock, young_vclock, old_vclock   numbers\n"
     "  allow_mult, last_write_wins, notfound_ok, basic_quorum      true|false\n"
     "  r, w, pr, pw, dw, rw        a number or one|quorum|all|default\n"
     "Example: cairn props set users allow_mult=true n_val=3\n"
     "\n"
     "Options:\n"
     "  --type TYPE            bucket type\n"},
    {"ping", C_PING,
     "usage: cairn ping\n"
     "\n"
     "Checks that a node answers, and prints which one and the round-trip time.\n"},
    {"info", C_INFO,
     "usage: cairn info\n"
     "\n"
     "Prints the node's name, its server version and the address connected to.\n"},
};

/* ---------------------------------------------------------------- parsed arguments */

typedef struct pair_list {
    cairn_pair_t *items;
    size_t n;
} pair_list_t;

typedef struct args {
    const char *hosts;
    bool json, help;
    uint32_t timeout_ms;
    unsigned cmd;
    const char *cmd_name;
    const char **pos;             /* positional arguments after the command */
    size_t n_pos;
    const char *type, *content_type, *charset, *content_encoding;
    const char *context, *if_modified, *file;
    uint32_t r, w, pr, pw, dw, rw, n_val;
    cairn_tri_t notfound_ok, basic_quorum, sloppy_quorum;
    bool head, deletedvclock, raw, if_none_match, if_not_modified, return_body, return_head,
        auto_key;
    pair_list_t meta, index;
} args_t;

typedef enum { OT_FLAG, OT_STR, OT_QUORUM, OT_U32, OT_TRI, OT_PAIR } opt_kind_t;

static const struct option_spec {
    const char *name;      /* without the leading -- */
    char short_name;       /* 0: none */
    opt_kind_t kind;
    unsigned cmds;         /* commands that take it (C_ANY: global) */
    size_t offset;         /* into args_t */
} option_specs[] = {
#define OPT(n, s, k, c, f) {n, s, k, c, offsetof(args_t, f)}
    OPT("host", 'h', OT_STR, C_ANY, hosts),
    OPT("json", 0, OT_FLAG, C_ANY, json),
    OPT("timeout", 0, OT_U32, C_ANY, timeout_ms),
    OPT("help", 0, OT_FLAG, C_ANY, help),
    OPT("type", 0, OT_STR, C_GET | C_PUT | C_DEL | C_KEYS | C_BUCKETS | C_PROPS, type),
    OPT("r", 0, OT_QUORUM, C_GET | C_DEL, r),
    OPT("pr", 0, OT_QUORUM, C_GET | C_DEL, pr),
    OPT("w", 0, OT_QUORUM, C_PUT | C_DEL, w),
    OPT("pw", 0, OT_QUORUM, C_PUT | C_DEL, pw),
    OPT("dw", 0, OT_QUORUM, C_PUT | C_DEL, dw),
    OPT("rw", 0, OT_QUORUM, C_DEL, rw),
    OPT("n-val", 0, OT_U32, C_GET | C_PUT | C_DEL, n_val),
    OPT("notfound-ok", 0, OT_TRI, C_GET, notfound_ok),
    OPT("basic-quorum", 0, OT_TRI, C_GET, basic_quorum),
    OPT("sloppy-quorum", 0, OT_TRI, C_GET | C_PUT | C_DEL, sloppy_quorum),
    OPT("head", 0, OT_FLAG, C_GET, head),
    OPT("deletedvclock", 0, OT_FLAG, C_GET, deletedvclock),
    OPT("if-modified", 0, OT_STR, C_GET, if_modified),
    OPT("raw", 0, OT_FLAG, C_GET, raw),
    OPT("context", 0, OT_STR, C_PUT | C_DEL, context),
    OPT("content-type", 0, OT_STR, C_PUT, content_type),
    OPT("charset", 0, OT_STR, C_PUT, charset),
    OPT("content-encoding", 0, OT_STR, C_PUT, content_encoding),
    OPT("meta", 0, OT_PAIR, C_PUT, meta),
    OPT("index", 0, OT_PAIR, C_PUT, index),
    OPT("if-none-match", 0, OT_FLAG, C_PUT, if_none_match),
    OPT("if-not-modified", 0, OT_FLAG, C_PUT, if_not_modified),
    OPT("return-body", 0, OT_FLAG, C_PUT, return_body),
    OPT("return-head", 0, OT_FLAG, C_PUT, return_head),
    OPT("auto-key", 0, OT_FLAG, C_PUT, auto_key),
    OPT("file", 'f', OT_STR, C_PUT, file),
#undef OPT
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cairn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see cairn --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* ---------------------------------------------------------------- value parsing */

static bool parse_u32(const char *s, uint32_t *out)
{
    if (!*s || *s == '-' || *s == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* The symbolic quorum values, as options take them and props print them. */
static const struct quorum_symbol {
    const char *name;
    uint32_t v;
} quorum_symbols[] = {{"one", CAIRN_Q_ONE},
                      {"quorum", CAIRN_Q_QUORUM},
                      {"all", CAIRN_Q_ALL},
                      {"default", CAIRN_Q_DEFAULT}};

/* The name of a symbolic quorum value, NULL for a plain number. */
static const char *quorum_name(uint32_t v)
{
    for (size_t i = 0; i < sizeof quorum_symbols / sizeof quorum_symbols[0]; i++)
        if (quorum_symbols[i].v == v)
            return quorum_symbols[i].name;
    return NULL;
}

static bool parse_quorum(const char *s, uint32_t *out)
{
    for (size_t i = 0; i < sizeof quorum_symbols / sizeof quorum_symbols[0]; i++)
        if (strcmp(s, quorum_symbols[i].name) == 0) {
            *out = quorum_symbols[i].v;
            return true;
        }
    return parse_u32(s, out) && *out < CAIRN_Q_DEFAULT;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0")) {
        *out = false;
        return true;
    }
    return false;
}

static bool parse_pair(const char *s, cairn_pair_t *out)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return false;
    out->key = (cairn_buf_t){s, (size_t)(eq - s)};
    out->value = CAIRN_S(eq + 1);
    return true;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes standard or URL-safe base64, padded or not. *out: free(). */
static bool base64_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return false;
    uint8_t *buf = malloc(n * 3 / 4 + 1);
    if (!buf)
        return false;
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v;
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+' || ch == '-')
            v = 62;
        else if (ch == '/' || ch == '_')
            v = 63;
        else {
            free(buf);
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = len;
    return true;
}

static void base64_write(FILE *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        fputc(b64_alphabet[v >> 18], f);
        fputc(b64_alphabet[(v >> 12) & 63], f);
        fputc(b64_alphabet[(v >> 6) & 63], f);
        fputc(b64_alphabet[v & 63], f);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        fputc(b64_alphabet[v >> 18], f);
        fputc(b64_alphabet[(v >> 12) & 63], f);
        fputs("==", f);
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        fputc(b64_alphabet[v >> 18], f);
        fputc(b64_alphabet[(v >> 12) & 63], f);
        fputc(b64_alphabet[(v >> 6) & 63], f);
        fputc('=', f);
    }
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool is_utf8(const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

/* Text a terminal can show: valid UTF-8 without control characters other than tab, CR, LF. */
static bool is_printable_text(const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t' && p[i] != '\r') || p[i] == 0x7f)
            return false;
    return is_utf8(data, len);
}

/* ---------------------------------------------------------------- output: text */

/* A name on one line: printable UTF-8 as is, other bytes as \xNN, a backslash as \\. */
static void write_escaped(FILE *f, cairn_buf_t b)
{
    const uint8_t *p = b.data;
    for (size_t i = 0; i < b.len;) {
        size_t n = p[i] >= 0x20 && p[i] != 0x7f ? utf8_seq(p + i, b.len - i) : 0;
        if (n == 1 && p[i] == '\\') {
            fputs("\\\\", f);
        } else if (n) {
            fwrite(p + i, 1, n, f);
        } else {
            fprintf(f, "\\x%02x", p[i]);
            n = 1;
        }
        i += n;
    }
}

static void format_time(uint32_t secs, uint32_t usecs, char *out, size_t cap)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06uZ", base, usecs % 1000000u);
}

static void text_value(const cairn_content_t *s)
{
    cairn_buf_t v = s->value;
    if (s->deleted && v.len == 0) {
        fputs("(deleted: a tombstone written concurrently with the other siblings)\n", stdout);
    } else if (v.len == 0) {
        fputs("(empty value)\n", stdout);
    } else if (is_printable_text(v.data, v.len)) {
        fwrite(v.data, 1, v.len, stdout);
        if (((const char *)v.data)[v.len - 1] != '\n')
            fputc('\n', stdout);
    } else {
        printf("(binary, %zu bytes, base64) ", v.len);
        base64_write(stdout, v.data, v.len);
        fputc('\n', stdout);
    }
}

static void text_pairs(const char *label, const cairn_pair_t *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%s: ", label);
        write_escaped(stdout, pairs[i].key);
        fputc('=', stdout);
        write_escaped(stdout, pairs[i].value);
        fputc('\n', stdout);
    }
}

static void text_sibling_meta(const cairn_content_t *s)
{
    printf("content-type: %s\n", s->content_type ? s->content_type : "(none)");
    if (s->charset)
        printf("charset: %s\n", s->charset);
    if (s->content_encoding)
        printf("content-encoding: %s\n", s->content_encoding);
    if (s->last_mod) {
        char when[48];
        format_time(s->last_mod, s->last_mod_usecs, when, sizeof when);
        printf("last-modified: %s\n", when);
    }
    if (s->vtag)
        printf("vtag: %s\n", s->vtag);
    if (s->deleted)
        printf("deleted: true\n");
    text_pairs("meta", s->usermeta, s->n_usermeta);
    text_pairs("index", s->indexes, s->n_indexes);
}

static void text_context(cairn_buf_t ctx)
{
    fputs("context: ", stdout);
    if (ctx.len)
        base64_write(stdout, ctx.data, ctx.len);
    else
        fputs("(none)", stdout);
    fputc('\n', stdout);
}

/* An object (get, or put's returned body): one sibling as headers + blank line + value;
 * several numbered, after a line that says how to resolve them. */
static void text_object(const cairn_object_t *o, bool with_values)
{
    if (o->key.len) {
        fputs("key: ", stdout);
        write_escaped(stdout, o->key);
        fputc('\n', stdout);
    }
    text_context(o->context);
    if (o->n_siblings == 1) {
        text_sibling_meta(&o->siblings[0]);
        if (with_values) {
            fputc('\n', stdout);
            text_value(&o->siblings[0]);
        }
        return;
    }
    if (o->n_siblings > 1)
        printf("siblings: %zu (concurrent writes: resolve by writing one value back with "
               "--context)\n", o->n_siblings);
    for (size_t i = 0; i < o->n_siblings; i++) {
        printf("\n--- sibling %zu of %zu ---\n", i + 1, o->n_siblings);
        text_sibling_meta(&o->siblings[i]);
        if (with_values) {
            fputc('\n', stdout);
            text_value(&o->siblings[i]);
        }
    }
}

/* ---------------------------------------------------------------- output: JSON */

static void json_string(FILE *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        switch (ch) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void json_cstr(FILE *f, const char *s)
{
    json_string(f, s, strlen(s));
}

/* Bytes: a JSON string when they are printable text (valid UTF-8 without control
 * characters other than tab, CR and LF), else {"base64": "..."}. */
static void json_bytes(FILE *f, cairn_buf_t b)
{
    if (is_printable_text(b.data, b.len)) {
        json_string(f, b.data, b.len);
        return;
    }
    fputs("{\"base64\":\"", f);
    base64_write(f, b.data, b.len);
    fputs("\"}", f);
}

static void json_base64(FILE *f, cairn_buf_t b)
{
    fputc('"', f);
    base64_write(f, b.data, b.len);
    fputc('"', f);
}

static void json_pairs(const cairn_pair_t *pairs, size_t n)
{
    fputc('[', stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",{\"key\":" : "{\"key\":", stdout);
        json_bytes(stdout, pairs[i].key);
        fputs(",\"value\":", stdout);
        json_bytes(stdout, pairs[i].value);
        fputc('}', stdout);
    }
    fputc(']', stdout);
}

static void json_sibling(const cairn_content_t *s, bool with_value)
{
    fputc('{', stdout);
    if (with_value) {
        fputs("\"value\":", stdout);
        json_bytes(stdout, s->value);
        fputc(',', stdout);
    }
    fputs("\"content_type\":", stdout);
    if (s->content_type)
        json_cstr(stdout, s->content_type);
    else
        fputs("null", stdout);
    if (s->charset) {
        fputs(",\"charset\":", stdout);
        json_cstr(stdout, s->charset);
    }
    if (s->content_encoding) {
        fputs(",\"content_encoding\":", stdout);
        json_cstr(stdout, s->content_encoding);
    }
    if (s->vtag) {
        fputs(",\"vtag\":", stdout);
        json_cstr(stdout, s->vtag);
    }
    char when[48];
    format_time(s->last_mod, s->last_mod_usecs, when, sizeof when);
    printf(",\"last_modified\":\"%s\",\"last_mod\":%u,\"last_mod_usecs\":%u,\"deleted\":%s",
           s->last_mod ? when : "", s->last_mod, s->last_mod_usecs,
           s->deleted ? "true" : "false");
    fputs(",\"usermeta\":", stdout);
    json_pairs(s->usermeta, s->n_usermeta);
    fputs(",\"indexes\":", stdout);
    json_pairs(s->indexes, s->n_indexes);
    fputc('}', stdout);
}

/* Opens the JSON document of a one-key command (get, put, del) with its bucket and key
 * members ("ok":true first when ok); the caller adds members and closes it. */
static void json_open_key(bool ok, cairn_buf_t bucket, cairn_buf_t key)
{
    fputs(ok ? "{\"ok\":true,\"bucket\":" : "{\"bucket\":", stdout);
    json_bytes(stdout, bucket);
    fputs(",\"key\":", stdout);
    json_bytes(stdout, key);
}

/* The members of an object, after an opening '{' and at least one member. */
static void json_object_members(const cairn_object_t *o, bool with_values)
{
    fputs(",\"context\":", stdout);
    json_base64(stdout, o->context);
    if (o->unchanged)
        fputs(",\"unchanged\":true", stdout);
    fputs(",\"siblings\":[", stdout);
    for (size_t i = 0; i < o->n_siblings; i++) {
        if (i)
            fputc(',', stdout);
        json_sibling(&o->siblings[i], with_values);
    }
    fputc(']', stdout);
}

static const char *error_name(int rc)
{
    switch (rc) {
    case CAIRN_ENOTFOUND: return "ENOTFOUND";
    case CAIRN_EINVAL: return "EINVAL";
    case CAIRN_ECONNECT: return "ECONNECT";
    case CAIRN_EIO: return "EIO";
    case CAIRN_ETIMEOUT: return "ETIMEOUT";
    case CAIRN_ESERVER: return "ESERVER";
    case CAIRN_EPROTO: return "EPROTO";
    case CAIRN_ENOMEM: return "ENOMEM";
    case CAIRN_EOVERLOAD: return "EOVERLOAD";
    case CAIRN_EMODIFIED: return "EMODIFIED";
    case CAIRN_EEXISTS: return "EEXISTS";
    case CAIRN_ETOOBIG: return "ETOOBIG";
    default: return "EUNKNOWN";
    }
}

/* ---------------------------------------------------------------- errors */

/* Reports a failed call: the message on stderr and, with --json, an error document on
 * stdout (after `prefix`, which completes an open JSON object, or NULL to start one).
 * Returns the exit status. */
static int report(const args_t *a, int rc, const char *detail, const char *json_open)
{
    bool has_detail = detail && *detail;
    fprintf(stderr, "cairn: %s: %s%s%s\n", a->cmd_name, cairn_strerror(rc),
            has_detail ? ": " : "", has_detail ? detail : "");
    if (a->json) {
        fputs(json_open ? json_open : "{", stdout);
        fputs(json_open ? ",\"error\":{\"code\":" : "\"error\":{\"code\":", stdout);
        json_cstr(stdout, error_name(rc));
        fputs(",\"message\":", stdout);
        json_cstr(stdout, cairn_strerror(rc));
        fputs(",\"detail\":", stdout);
        json_cstr(stdout, detail ? detail : "");
        fputs("}}\n", stdout);
    }
    if (rc == CAIRN_EMODIFIED || rc == CAIRN_EEXISTS)
        return EXIT_PRECONDITION;
    return EXIT_ERROR;
}

static int fail(const args_t *a, cairn_t *c, int rc)
{
    return report(a, rc, cairn_errmsg(c), NULL);
}

static cairn_t *open_connection(const args_t *a, int *status)
{
    cairn_opts_t opts = {0};
    if (a->timeout_ms) {
        opts.timeout_ms = a->timeout_ms;
        opts.connect_timeout_ms = a->timeout_ms < 2000 ? a->timeout_ms : 2000;
    }
    cairn_t *c = NULL;
    int rc = cairn_connect(a->hosts, &opts, &c);
    if (rc) {
        *status = report(a, rc, cairn_errmsg(NULL), NULL);
        if (rc == CAIRN_EINVAL)
            *status = EXIT_USAGE;
        return NULL;
    }
    return c;
}

static cairn_buf_t arg_buf(const char *s)
{
    return CAIRN_S(s);
}

static int need_positionals(const args_t *a, size_t min, size_t max, const char *what)
{
    if (a->n_pos < min || a->n_pos > max)
        return usage_error("%s: expected %s", a->cmd_name, what);
    for (size_t i = 0; i < a->n_pos && i < 2; i++)
        if (!*a->pos[i])
            return usage_error("%s: %s cannot be empty", a->cmd_name, i ? "key" : "bucket");
    return EXIT_OK;
}

/* For a command that needs nothing else before connecting: checks the positionals, then
 * connects. The connection, or NULL with the exit status in *status. */
static cairn_t *connect_for(const args_t *a, size_t min, size_t max, const char *what,
                            int *status)
{
    *status = need_positionals(a, min, max, what);
    return *status ? NULL : open_connection(a, status);
}

/* ---------------------------------------------------------------- get */

static int cmd_get(const args_t *a)
{
    int st = need_positionals(a, 2, 2, "BUCKET KEY");
    if (st)
        return st;
    cairn_get_opts_t o = {.type = a->type, .r = a->r, .pr = a->pr, .n_val = a->n_val,
                          .notfound_ok = a->notfound_ok, .basic_quorum = a->basic_quorum,
                          .sloppy_quorum = a->sloppy_quorum, .head = a->head,
                          .deletedvclock = a->deletedvclock, .timeout_ms = a->timeout_ms};
    uint8_t *if_modified = NULL;
    size_t if_modified_len = 0;
    if (a->if_modified && !base64_decode(a->if_modified, &if_modified, &if_modified_len))
        return usage_error("get: --if-modified: not a base64 context");
    o.if_modified = (cairn_buf_t){if_modified, if_modified_len};

    cairn_t *c = open_connection(a, &st);
    if (!c) {
        free(if_modified);
        return st;
    }
    cairn_object_t *obj = NULL;
    int rc = cairn_get(c, arg_buf(a->pos[0]), arg_buf(a->pos[1]), &o, &obj);
    free(if_modified);
    if (rc && rc != CAIRN_ENOTFOUND) {
        st = fail(a, c, rc);
        cairn_close(c);
        return st;
    }
    if (a->json) {
        json_open_key(false, arg_buf(a->pos[0]), arg_buf(a->pos[1]));
        printf(",\"found\":%s", rc == CAIRN_OK ? "true" : "false");
        if (obj)
            json_object_members(obj, !a->head);
        fputs("}\n", stdout);
    } else if (rc == CAIRN_ENOTFOUND) {
        fprintf(stderr, "cairn: get: not found\n");
        if (obj)
            text_context(obj->context);
    } else if (obj->unchanged) {
        printf("unchanged\n");
    } else if (a->raw) {
        if (obj->n_siblings != 1) {
            fprintf(stderr, "cairn: get: %zu siblings: run without --raw to see them\n",
                    obj->n_siblings);
            st = EXIT_ERROR;
        } else {
            fwrite(obj->siblings[0].value.data, 1, obj->siblings[0].value.len, stdout);
        }
    } else {
        text_object(obj, !a->head);
    }
    if (!st)
        st = rc == CAIRN_ENOTFOUND ? EXIT_NOTFOUND : EXIT_OK;
    cairn_object_free(obj);
    cairn_close(c);
    return st;
}

/* ---------------------------------------------------------------- put */

/* Reads a whole stream. *out: free(). */
static bool read_stream(FILE *f, uint8_t **out, size_t *out_len)
{
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return false;
    for (;;) {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return false;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                free(buf);
                return false;
            }
            break;
        }
    }
    *out = buf;
    *out_len = len;
    return true;
}

static int read_value_file(const args_t *a, uint8_t **out, size_t *out_len)
{
    bool from_stdin = strcmp(a->file, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(a->file, "rb");
    if (!f) {
        fprintf(stderr, "cairn: put: %s: %s\n", a->file, strerror(errno));
        return EXIT_ERROR;
    }
    bool ok = read_stream(f, out, out_len);
    int err = errno;
    if (!from_stdin)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "cairn: put: reading %s: %s\n", from_stdin ? "stdin" : a->file,
                strerror(err));
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int cmd_put(const args_t *a)
{
    size_t n_key = a->auto_key ? 0 : 1;
    int st = a->auto_key ? need_positionals(a, 1, 2, "BUCKET [VALUE] with --auto-key")
                         : need_positionals(a, 2, 3, "BUCKET KEY [VALUE]");
    if (st)
        return st;
    bool value_arg = a->n_pos == 2 + n_key;
    if (value_arg && a->file)
        return usage_error("put: give the value either as an argument or with -f, not both");
    if (!value_arg && !a->file)
        return usage_error("put: no value: give VALUE, -f FILE, or -f - for stdin");
    if (a->if_not_modified && !a->context)
        return usage_error("put: --if-not-modified needs --context");
    if (a->return_body && a->return_head)
        return usage_error("put: --return-body and --return-head exclude each other");

    uint8_t *context = NULL, *file_value = NULL;
    size_t context_len = 0, file_len = 0;
    if (a->context && !base64_decode(a->context, &context, &context_len))
        return usage_error("put: --context: not a base64 context");
    if (a->file && (st = read_value_file(a, &file_value, &file_len)) != EXIT_OK) {
        free(context);
        return st;
    }
    cairn_buf_t value = value_arg ? arg_buf(a->pos[1 + n_key])
                                  : (cairn_buf_t){file_value, file_len};
    cairn_buf_t key = a->auto_key ? (cairn_buf_t){NULL, 0} : arg_buf(a->pos[1]);
    cairn_put_opts_t o = {.type = a->type, .context = {context, context_len},
                          .content_type = a->content_type, .charset = a->charset,
                          .content_encoding = a->content_encoding,
                          .usermeta = a->meta.items, .n_usermeta = a->meta.n,
                          .indexes = a->index.items, .n_indexes = a->index.n,
                          .w = a->w, .dw = a->dw, .pw = a->pw, .n_val = a->n_val,
                          .sloppy_quorum = a->sloppy_quorum, .return_body = a->return_body,
                          .return_head = a->return_head, .if_not_modified = a->if_not_modified,
                          .if_none_match = a->if_none_match, .timeout_ms = a->timeout_ms};
    cairn_object_t *obj = NULL;
    cairn_t *c = open_connection(a, &st);
    if (c) {
        int rc = cairn_put(c, arg_buf(a->pos[0]), key, value, &o, &obj);
        if (rc) {
            st = fail(a, c, rc);
        } else if (a->json) {
            json_open_key(true, arg_buf(a->pos[0]), obj->key.len ? obj->key : key);
            if (a->return_body || a->return_head)
                json_object_members(obj, a->return_body);
            fputs("}\n", stdout);
        } else if (a->return_body || a->return_head) {
            text_object(obj, a->return_body);
        } else if (obj->key.len) {
            write_escaped(stdout, obj->key);
            fputc('\n', stdout);
        }
        cairn_close(c);
    }
    cairn_object_free(obj);
    free(context);
    free(file_value);
    return st;
}

/* ---------------------------------------------------------------- del */

static int cmd_del(const args_t *a)
{
    int st = need_positionals(a, 2, 2, "BUCKET KEY");
    if (st)
        return st;
    uint8_t *context = NULL;
    size_t context_len = 0;
    if (a->context && !base64_decode(a->context, &context, &context_len))
        return usage_error("del: --context: not a base64 context");
    cairn_del_opts_t o = {.type = a->type, .context = {context, context_len}, .rw = a->rw,
                          .r = a->r, .w = a->w, .pr = a->pr, .pw = a->pw, .dw = a->dw,
                          .n_val = a->n_val, .sloppy_quorum = a->sloppy_quorum,
                          .timeout_ms = a->timeout_ms};
    cairn_t *c = open_connection(a, &st);
    if (c) {
        int rc = cairn_delete(c, arg_buf(a->pos[0]), arg_buf(a->pos[1]), &o);
        if (rc) {
            st = fail(a, c, rc);
        } else if (a->json) {
            json_open_key(true, arg_buf(a->pos[0]), arg_buf(a->pos[1]));
            fputs("}\n", stdout);
        }
        cairn_close(c);
    }
    free(context);
    return st;
}

/* ---------------------------------------------------------------- keys, buckets */

typedef struct listing {
    bool json;
    size_t count;
} listing_t;

static int print_name(void *arg, cairn_buf_t name)
{
    listing_t *l = arg;
    if (l->json) {
        if (l->count)
            fputc(',', stdout);
        json_bytes(stdout, name);
    } else {
        write_escaped(stdout, name);
        fputc('\n', stdout);
    }
    l->count++;
    return 0;
}

static int cmd_list(const args_t *a, bool keys)
{
    int st;
    cairn_t *c = keys ? connect_for(a, 1, 1, "BUCKET", &st)
                      : connect_for(a, 0, 0, "no argument", &st);
    if (!c)
        return st;
    listing_t l = {a->json, 0};
    if (a->json) {
        if (keys) {
            fputs("{\"bucket\":", stdout);
            json_bytes(stdout, arg_buf(a->pos[0]));
            fputs(",\"keys\":[", stdout);
        } else {
            fputs("{\"buckets\":[", stdout);
        }
    }
    int rc = keys ? cairn_list_keys(c, a->type, arg_buf(a->pos[0]), a->timeout_ms, print_name, &l)
                  : cairn_list_buckets(c, a->type, a->timeout_ms, print_name, &l);
    if (rc) {
        st = report(a, rc, cairn_errmsg(c), a->json ? "]" : NULL);
    } else if (a->json) {
        printf("],\"count\":%zu}\n", l.count);
    }
    cairn_close(c);
    return st;
}

/* ---------------------------------------------------------------- props */

static const struct prop_name {
    const char *name;
    uint32_t bit;
    enum { P_U32, P_BOOL, P_QUORUM } kind;
    size_t offset;
} prop_names[] = {
#define PROP(n, b, k) {#n, b, k, offsetof(cairn_bucket_props_t, n)}
    PROP(n_val, CAIRN_PROP_N_VAL, P_U32),
    PROP(allow_mult, CAIRN_PROP_ALLOW_MULT, P_BOOL),
    PROP(last_write_wins, CAIRN_PROP_LAST_WRITE_WINS, P_BOOL),
    PROP(r, CAIRN_PROP_R, P_QUORUM),
    PROP(w, CAIRN_PROP_W, P_QUORUM),
    PROP(pr, CAIRN_PROP_PR, P_QUORUM),
    PROP(pw, CAIRN_PROP_PW, P_QUORUM),
    PROP(dw, CAIRN_PROP_DW, P_QUORUM),
    PROP(rw, CAIRN_PROP_RW, P_QUORUM),
    PROP(notfound_ok, CAIRN_PROP_NOTFOUND_OK, P_BOOL),
    PROP(basic_quorum, CAIRN_PROP_BASIC_QUORUM, P_BOOL),
    PROP(small_vclock, CAIRN_PROP_SMALL_VCLOCK, P_U32),
    PROP(big_vclock, CAIRN_PROP_BIG_VCLOCK, P_U32),
    PROP(young_vclock, CAIRN_PROP_YOUNG_VCLOCK, P_U32),
    PROP(old_vclock, CAIRN_PROP_OLD_VCLOCK, P_U32),
#undef PROP
};

static void print_props(const args_t *a, const cairn_bucket_props_t *p)
{
    if (a->json) {
        fputs("{\"bucket\":", stdout);
        json_bytes(stdout, arg_buf(a->pos[1]));
        fputs(",\"props\":{", stdout);
    }
    bool first = true;
    for (size_t i = 0; i < sizeof prop_names / sizeof prop_names[0]; i++) {
        const struct prop_name *pn = &prop_names[i];
        if (!(p->fields & pn->bit))
            continue;
        const char *field = (const char *)p + pn->offset;
        char value[32];
        bool quoted = false;
        if (pn->kind == P_BOOL) {
            snprintf(value, sizeof value, "%s", *(const bool *)field ? "true" : "false");
        } else {
            uint32_t v = *(const uint32_t *)field;
            const char *q = pn->kind == P_QUORUM ? quorum_name(v) : NULL;
            quoted = q != NULL;
            if (q)
                snprintf(value, sizeof value, "%s", q);
            else
                snprintf(value, sizeof value, "%u", v);
        }
        if (a->json)
            printf(quoted ? "%s\"%s\":\"%s\"" : "%s\"%s\":%s", first ? "" : ",", pn->name, value);
        else
            printf("%s: %s\n", pn->name, value);
        first = false;
    }
    if (a->json)
        fputs("}}\n", stdout);
}

static int parse_prop_assignments(const args_t *a, cairn_bucket_props_t *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 2; i < a->n_pos; i++) {
        const char *s = a->pos[i];
        const char *eq = strchr(s, '=');
        if (!eq)
            return usage_error("props set: '%s': expected NAME=VALUE", s);
        size_t name_len = (size_t)(eq - s);
        const struct prop_name *pn = NULL;
        for (size_t k = 0; k < sizeof prop_names / sizeof prop_names[0]; k++) {
            const char *n = prop_names[k].name;
            bool same = strlen(n) == name_len;
            for (size_t j = 0; same && j < name_len; j++)
                same = n[j] == s[j] || (n[j] == '_' && s[j] == '-');
            if (same)
                pn = &prop_names[k];
        }
        if (!pn)
            return usage_error("props set: unknown property '%.*s'", (int)name_len, s);
        char *field = (char *)p + pn->offset;
        const char *v = eq + 1;
        bool ok = pn->kind == P_BOOL     ? parse_bool(v, (bool *)field)
                  : pn->kind == P_QUORUM ? parse_quorum(v, (uint32_t *)field)
                                         : parse_u32(v, (uint32_t *)field);
        if (!ok)
            return usage_error("props set: %s: bad value '%s' (%s)", pn->name, v,
                               pn->kind == P_BOOL     ? "true or false"
                               : pn->kind == P_QUORUM ? "a number or one|quorum|all|default"
                                                      : "a number");
        p->fields |= pn->bit;
    }
    if (!p->fields)
        return usage_error("props set: no NAME=VALUE given");
    return EXIT_OK;
}

static int cmd_props(const args_t *a)
{
    if (a->n_pos < 2)
        return usage_error("props: expected get|set|reset BUCKET");
    const char *sub = a->pos[0];
    bool get = !strcmp(sub, "get"), set = !strcmp(sub, "set"), reset = !strcmp(sub, "reset");
    if (!get && !set && !reset)
        return usage_error("props: unknown subcommand '%s' (get, set or reset)", sub);
    if (!*a->pos[1])
        return usage_error("props: bucket cannot be empty");
    if (!set && a->n_pos != 2)
        return usage_error("props %s: expected BUCKET only", sub);
    cairn_bucket_props_t props;
    int st = set ? parse_prop_assignments(a, &props) : EXIT_OK;
    if (st)
        return st;
    cairn_t *c = open_connection(a, &st);
    if (!c)
        return st;
    cairn_buf_t bucket = arg_buf(a->pos[1]);
    int rc = get ? cairn_bucket_get(c, a->type, bucket, &props)
             : set ? cairn_bucket_set(c, a->type, bucket, &props)
                   : cairn_bucket_reset(c, a->type, bucket);
    if (rc)
        st = fail(a, c, rc);
    else if (get)
        print_props(a, &props);
    else if (a->json)
        fputs("{\"ok\":true}\n", stdout);
    cairn_close(c);
    return st;
}

/* ---------------------------------------------------------------- ping, info */

static double elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 + (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static int cmd_ping(const args_t *a)
{
    int st;
    cairn_t *c = connect_for(a, 0, 0, "no argument", &st);
    if (!c)
        return st;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = cairn_ping(c);
    double ms = elapsed_ms(&t0);
    if (rc) {
        st = fail(a, c, rc);
    } else if (a->json) {
        fputs("{\"ok\":true,\"node\":", stdout);
        json_cstr(stdout, cairn_current_node(c));
        printf(",\"ms\":%.3f}\n", ms);
    } else {
        printf("pong from %s in %.3f ms\n", cairn_current_node(c), ms);
    }
    cairn_close(c);
    return st;
}

static int cmd_info(const args_t *a)
{
    int st;
    cairn_t *c = connect_for(a, 0, 0, "no argument", &st);
    if (!c)
        return st;
    char node[256], version[256];
    int rc = cairn_server_info(c, node, sizeof node, version, sizeof version);
    if (rc) {
        st = fail(a, c, rc);
    } else if (a->json) {
        fputs("{\"node\":", stdout);
        json_cstr(stdout, node);
        fputs(",\"server_version\":", stdout);
        json_cstr(stdout, version);
        fputs(",\"connected_to\":", stdout);
        json_cstr(stdout, cairn_current_node(c));
        fputs("}\n", stdout);
    } else {
        printf("node: %s\nversion: %s\nconnected-to: %s\n", node, version,
               cairn_current_node(c));
    }
    cairn_close(c);
    return st;
}

/* ---------------------------------------------------------------- argument parsing */

static const struct command_help *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static const struct option_spec *find_option(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
        for (size_t i = 0; i < sizeof option_specs / sizeof option_specs[0]; i++)
            if (option_specs[i].short_name == arg[1])
                return &option_specs[i];
        return NULL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t i = 0; i < sizeof option_specs / sizeof option_specs[0]; i++) {
        const char *n = option_specs[i].name;
        if (strlen(n) == len && !strncmp(n, name, len)) {
            if (eq)
                *inline_value = eq + 1;
            return &option_specs[i];
        }
    }
    return NULL;
}

/* Applies one option (its value already taken). */
static int apply_option(args_t *a, const struct option_spec *o, const char *value)
{
    char *field = (char *)a + o->offset;
    bool b;
    switch (o->kind) {
    case OT_FLAG:
        *(bool *)field = true;
        return EXIT_OK;
    case OT_STR:
        *(const char **)field = value;
        return EXIT_OK;
    case OT_U32:
        if (!parse_u32(value, (uint32_t *)field) || *(uint32_t *)field == 0)
            return usage_error("--%s: expected a positive number, got '%s'", o->name, value);
        return EXIT_OK;
    case OT_QUORUM:
        if (!parse_quorum(value, (uint32_t *)field) || *(uint32_t *)field == 0)
            return usage_error("--%s: expected a positive number or one|quorum|all|default, "
                               "got '%s'", o->name, value);
        return EXIT_OK;
    case OT_TRI:
        if (!parse_bool(value, &b))
            return usage_error("--%s: expected true or false, got '%s'", o->name, value);
        *(cairn_tri_t *)field = b ? CAIRN_TRUE : CAIRN_FALSE;
        return EXIT_OK;
    case OT_PAIR: {
        pair_list_t *l = (pair_list_t *)field;
        if (!parse_pair(value, &l->items[l->n]))
            return usage_error("--%s: expected NAME=VALUE, got '%s'", o->name, value);
        l->n++;
        return EXIT_OK;
    }
    }
    return EXIT_USAGE;
}

/* Parses argv into a: global options, the command, then its options and positionals in any
 * order ("--" ends the options). Returns EXIT_OK or EXIT_USAGE (message printed). */
static int parse_args(int argc, char **argv, args_t *a)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        bool is_option = !options_done && arg[0] == '-' && arg[1] != '\0';
        if (!is_option) {
            if (!a->cmd_name) {
                const struct command_help *ch = find_command(arg);
                if (!ch)
                    return usage_error("unknown command '%s'", arg);
                a->cmd_name = ch->name;
                a->cmd = ch->id;
            } else {
                a->pos[a->n_pos++] = arg;
            }
            continue;
        }
        const char *value;
        const struct option_spec *o = find_option(arg, &value);
        if (!o)
            return usage_error("unknown option '%s'", arg);
        if (o->cmds != C_ANY && !(a->cmd && (o->cmds & a->cmd)))
            return usage_error("option '%s' does not apply to %s", arg,
                               a->cmd_name ? a->cmd_name : "cairn (put it after the command)");
        if (o->kind == OT_FLAG) {
            if (value)
                return usage_error("option --%s takes no value", o->name);
        } else if (!value) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", arg);
            value = argv[++i];
        }
        int st = apply_option(a, o, value);
        if (st)
            return st;
    }
    return EXIT_OK;
}

static int run(int argc, char **argv)
{
    args_t a = {0};
    const char *env = getenv("CAIRN_HOST");
    a.hosts = env && *env ? env : DEFAULT_HOSTS;
    size_t slots = (size_t)argc + 1;
    a.pos = calloc(slots, sizeof *a.pos);
    a.meta.items = calloc(slots, sizeof *a.meta.items);
    a.index.items = calloc(slots, sizeof *a.index.items);
    int st;
    if (!a.pos || !a.meta.items || !a.index.items) {
        fprintf(stderr, "cairn: out of memory\n");
        st = EXIT_ERROR;
        goto out;
    }
    st = parse_args(argc, argv, &a);
    if (st)
        goto out;
    if (a.help) {
        const struct command_help *ch = a.cmd_name ? find_command(a.cmd_name) : NULL;
        fputs(ch ? ch->text : usage_text, stdout);
        goto out;
    }
    if (!a.cmd_name) {
        fputs(usage_text, stderr);
        st = EXIT_USAGE;
        goto out;
    }
    switch (a.cmd) {
    case C_GET: st = cmd_get(&a); break;
    case C_PUT: st = cmd_put(&a); break;
    case C_DEL: st = cmd_del(&a); break;
    case C_KEYS: st = cmd_list(&a, true); break;
    case C_BUCKETS: st = cmd_list(&a, false); break;
    case C_PROPS: st = cmd_props(&a); break;
    case C_PING: st = cmd_ping(&a); break;
    case C_INFO: st = cmd_info(&a); break;
    default: st = EXIT_USAGE;
    }
out:
    free(a.pos);
    free(a.meta.items);
    free(a.index.items);
    return st;
}

int main(int argc, char **argv)
{
    int st = run(argc, argv);
    if (fflush(stdout) != 0 && st == EXIT_OK) {
        fprintf(stderr, "cairn: writing output: %s\n", strerror(errno));
        st = EXIT_ERROR;
    }
    return st;
}
