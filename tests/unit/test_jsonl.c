/*
 * test_jsonl.c — the JSON-lines reader (bench/jsonl.h): history lines parse into the tree the
 * checkers read; nesting, escapes (\u with surrogate pairs) and numbers (negative, the int64
 * limits, beyond them, fractions) decode exactly; malformed lines are refused with a reason
 * and an offset inside the line, never read past their length, and never crash (a seeded
 * mutation loop); the arena is reusable line after line. jsonl_read_file hands each object
 * line of a file to its callback (blank lines and CRLF endings as the jepsen files may have
 * them), names the file and line of a line that is not an object, reports a file it cannot
 * open or read, and stops when the callback asks.
 *
 * The tests link every library of the tree but not bench/ (the Makefile's rule for
 * tests/unit), so the module's source is compiled into this suite directly, with
 * bench_common.c for the bench_hex_digit it uses.
 */
#include "bench/bench_common.c"
#include "bench/jsonl.c"

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jsonl_arena_t arena;

static void arena_done(void)
{
    jsonl_arena_free(&arena);
}

TestSuite(jsonl, .fini = arena_done);

static const jsonl_value_t *parse(const char *text)
{
    jsonl_error_t err = {0};
    const jsonl_value_t *v = jsonl_parse(&arena, text, strlen(text), &err);
    cr_assert(v, "'%s' refused: %s at offset %zu", text, err.what, err.offset);
    return v;
}

/* Asserts text is refused, with a reason and an offset within it. */
static void refused(const char *text, size_t len, const char *why_part)
{
    jsonl_error_t err = {0};
    const jsonl_value_t *v = jsonl_parse(&arena, text, len, &err);
    cr_assert_null(v, "'%.*s' accepted", (int)len, text);
    cr_assert(err.what, "no reason for '%.*s'", (int)len, text);
    cr_assert_leq(err.offset, len, "offset %zu past the end of '%.*s'", err.offset, (int)len,
                  text);
    if (why_part)
        cr_assert(strstr(err.what, why_part), "'%.*s': wanted '%s', got '%s'", (int)len, text,
                  why_part, err.what);
}

Test(jsonl, history_line_members)
{
    const jsonl_value_t *v = parse(
        "{\"time\":58889868,\"process\":9,\"node\":\"n5\",\"type\":\"ok\",\"f\":\"add\","
        "\"key\":\"k3\",\"value\":1,\"siblings_read\":0,\"context\":\"\",\"latency_ns\":988637,"
        "\"ok\":true,\"gone\":null,\"ratio\":0.25}");
    cr_assert_eq(v->type, JSONL_OBJECT);
    cr_assert_eq(v->count, 13);
    int64_t t = 0, lat = 0;
    cr_assert(jsonl_get_int(v, "time", &t));
    cr_assert_eq(t, 58889868);
    cr_assert(jsonl_get_int(v, "latency_ns", &lat));
    cr_assert_eq(lat, 988637);
    cr_assert_str_eq(jsonl_get_string(v, "node"), "n5");
    cr_assert_str_eq(jsonl_get_string(v, "context"), "");
    bool ok = false;
    cr_assert(jsonl_get_bool(v, "ok", &ok));
    cr_assert(ok);
    cr_assert_eq(jsonl_get(v, "gone")->type, JSONL_NULL);
    double ratio = 0;
    cr_assert(jsonl_get_number(v, "ratio", &ratio));
    cr_assert_float_eq(ratio, 0.25, 1e-12);
    /* absent members and members of another type read as absent */
    cr_assert_null(jsonl_get(v, "missing"));
    cr_assert_null(jsonl_get_string(v, "time"));
    cr_assert_not(jsonl_get_int(v, "node", &t));
    cr_assert_not(jsonl_get_int(v, "ratio", &t));
    cr_assert_not(jsonl_get_bool(v, "gone", &ok));
    cr_assert_null(jsonl_get_array(v, "key"));
    cr_assert_null(jsonl_get_object(v, "key"));
    cr_assert_null(jsonl_get(NULL, "time"));
    cr_assert_null(jsonl_get(jsonl_get(v, "time"), "x"));
    /* the first of two members with one name wins */
    const jsonl_value_t *dup = parse("{\"a\":1,\"a\":2}");
    cr_assert(jsonl_get_int(dup, "a", &t));
    cr_assert_eq(t, 1);
}

Test(jsonl, nested_arrays_and_objects)
{
    const jsonl_value_t *v =
        parse(" { \"siblings\" : [ [1,2] , [], [ {\"b\":{\"c\":[true,false,null]}} ] ],"
              "\"grudge\":{\"n1\":[\"n2\",\"n3\"],\"n2\":[]} } ");
    const jsonl_value_t *sibs = jsonl_get_array(v, "siblings");
    cr_assert_not_null(sibs);
    cr_assert_eq(sibs->count, 3);
    const jsonl_value_t *first = jsonl_item(sibs, 0);
    cr_assert_eq(first->count, 2);
    cr_assert_eq(jsonl_item(first, 1)->integer, 2);
    cr_assert_eq(jsonl_item(sibs, 1)->count, 0);
    cr_assert_null(jsonl_first(jsonl_item(sibs, 1)));
    cr_assert_null(jsonl_item(sibs, 3));
    const jsonl_value_t *c = jsonl_get_array(
        jsonl_get_object(jsonl_first(jsonl_item(sibs, 2)), "b"), "c");
    cr_assert_not_null(c);
    cr_assert_eq(c->count, 3);
    cr_assert_eq(jsonl_item(c, 0)->boolean, true);
    cr_assert_eq(jsonl_item(c, 1)->type, JSONL_BOOL);
    cr_assert_eq(jsonl_item(c, 1)->boolean, false);
    cr_assert_eq(jsonl_item(c, 2)->type, JSONL_NULL);

    /* iteration in text order, with member names */
    const jsonl_value_t *grudge = jsonl_get_object(v, "grudge");
    const char *names[2] = {0};
    size_t n = 0;
    for (const jsonl_value_t *m = jsonl_first(grudge); m && n < 2; m = jsonl_next(m))
        names[n++] = m->key;
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "n1");
    cr_assert_str_eq(names[1], "n2");
    cr_assert_str_eq(jsonl_item(jsonl_get_array(grudge, "n1"), 1)->string, "n3");

    /* JSONL_MAX_DEPTH levels are fine, one more is refused */
    char deep[2 * (JSONL_MAX_DEPTH + 1) + 1];
    for (int i = 0; i < JSONL_MAX_DEPTH; i++) {
        deep[i] = '[';
        deep[2 * JSONL_MAX_DEPTH - 1 - i] = ']';
    }
    deep[2 * JSONL_MAX_DEPTH] = '\0';
    cr_assert_eq(parse(deep)->type, JSONL_ARRAY);
    memmove(deep + 1, deep, 2 * JSONL_MAX_DEPTH);
    deep[0] = '[';
    deep[2 * JSONL_MAX_DEPTH + 1] = ']';
    refused(deep, sizeof deep - 1, "nested too deep");
}

Test(jsonl, string_escapes)
{
    const jsonl_value_t *v = parse("\"q\\\"b\\\\s\\/ \\b\\f\\n\\r\\t end\"");
    cr_assert_str_eq(v->string, "q\"b\\s/ \b\f\n\r\t end");
    cr_assert_eq(v->string_len, strlen(v->string));

    cr_assert_str_eq(parse("\"\\u0041\\u00e9\\u20AC\"")->string, "A\xc3\xa9\xe2\x82\xac");
    /* a surrogate pair is one code point (U+1F600); a lone surrogate becomes U+FFFD */
    cr_assert_str_eq(parse("\"\\ud83d\\ude00\"")->string, "\xf0\x9f\x98\x80");
    cr_assert_str_eq(parse("\"\\ud83dx\"")->string, "\xef\xbf\xbdx");
    cr_assert_str_eq(parse("\"\\ude00\"")->string, "\xef\xbf\xbd");
    cr_assert_str_eq(parse("\"\\ud83d\\u0041\"")->string, "\xef\xbf\xbd" "A");
    /* an escaped NUL stays inside the string: the length tells */
    v = parse("\"a\\u0000b\"");
    cr_assert_eq(v->string_len, 3);
    cr_assert_eq(memcmp(v->string, "a\0b", 4), 0);
    /* UTF-8 passes through unchanged; member names are decoded too */
    v = parse("{\"k\\u00e9y\":\"\xc3\xa9t\xc3\xa9\"}");
    cr_assert_str_eq(jsonl_get_string(v, "k\xc3\xa9y"), "\xc3\xa9t\xc3\xa9");
    /* the client writes bytes >= 0x7f as \u00XX */
    cr_assert_str_eq(parse("\"\\u00ff\"")->string, "\xc3\xbf");
}

Test(jsonl, numbers)
{
    const struct {
        const char *text;
        bool is_int;
        int64_t integer;
        double number;
    } cases[] = {
        {"0", true, 0, 0},
        {"-0", true, 0, 0},
        {"-17", true, -17, -17},
        {"16964487123", true, 16964487123, 16964487123.0},
        {"9223372036854775807", true, INT64_MAX, 9223372036854775807.0},
        {"-9223372036854775808", true, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775808", false, 0, 9223372036854775808.0},
        {"-9223372036854775809", false, 0, -9223372036854775809.0},
        {"1.5", false, 0, 1.5},
        {"-2.5e-3", false, 0, -0.0025},
        {"1E+2", false, 0, 100},
        {"2e0", false, 0, 2},
        {"0.000001", false, 0, 1e-6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const jsonl_value_t *v = parse(cases[i].text);
        cr_assert_eq(v->type, JSONL_NUMBER, "%s", cases[i].text);
        cr_assert_eq(v->is_int, cases[i].is_int, "%s", cases[i].text);
        if (cases[i].is_int)
            cr_assert_eq(v->integer, cases[i].integer, "%s", cases[i].text);
        cr_assert_float_eq(v->number, cases[i].number, 1e-9 * (1 + fabs(cases[i].number)),
                           "%s", cases[i].text);
    }
    int64_t out = 0;
    cr_assert(jsonl_to_int64(parse("1.9e3"), &out));
    cr_assert_eq(out, 1900);
    cr_assert(jsonl_to_int64(parse("-7"), &out));
    cr_assert_eq(out, -7);
    cr_assert_not(jsonl_to_int64(parse("1e300"), &out));
    cr_assert_not(jsonl_to_int64(parse("\"7\""), &out));
    cr_assert_eq(out, -7);
}

Test(jsonl, malformed_lines_are_refused)
{
    const struct {
        const char *text;
        const char *why;         /* part of the reason, or NULL */
    } cases[] = {
        {"", "unexpected end"},
        {"   ", "unexpected end"},
        {"{", NULL},
        {"{\"time\":1,\"process\":0,", "unexpected end"},
        {"{\"a\"}", "expected ':'"},
        {"{\"a\":}", "unexpected character"},
        {"{\"a\":1,}", "expected a string"},
        {"{a:1}", "expected a string"},
        {"[1,]", "unexpected character"},
        {"[1 2]", "expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
        {"[1]]", "text after the value"},
        {"{} x", "text after the value"},
        {"01", "text after the value"},
        {"1.", "a digit must follow '.'"},
        {"1.e5", "a digit must follow '.'"},
        {"1e", "a digit must follow the exponent"},
        {"1e+", "a digit must follow the exponent"},
        {"-", "bad number"},
        {"-a", "bad number"},
        {"+1", "unexpected character"},
        {".5", "unexpected character"},
        {"0x10", "text after the value"},
        {"NaN", "unexpected character"},
        {"Infinity", "unexpected character"},
        {"tru", "unexpected character"},
        {"nul", "unexpected character"},
        {"truex", "text after the value"},
        {"'single'", "unexpected character"},
        {"\"abc", "unterminated string"},
        {"\"abc\\", "unterminated string"},
        {"\"abc\\\"", "unterminated string"},
        {"\"a\\x\"", "bad escape"},
        {"\"\\u12G4\"", "bad \\u escape"},
        {"\"\\u12\"", "bad \\u escape"},
        {"\"tab\there\"", "control character"},
        {"\"line\nbreak\"", "control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused(cases[i].text, strlen(cases[i].text), cases[i].why);
    /* a long number token is refused, not truncated */
    char big[600];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    refused(big, strlen(big), "number too long");
    /* the offset points at the trouble: column 11 of the history line */
    jsonl_error_t err = {0};
    const char *line = "{\"time\":1,,\"process\":0}";
    cr_assert_null(jsonl_parse(&arena, line, strlen(line), &err));
    cr_assert_eq(err.offset, 10);
}

Test(jsonl, never_reads_past_the_length)
{
    /* exactly len bytes on the heap, no terminator: ASan catches any over-read */
    const char *texts[] = {"[1,2]", "12345", "\"abc\"", "\"ab\\", "tru", "{\"a\":-", "1e"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]);
        char *exact = malloc(len);
        cr_assert_not_null(exact);
        memcpy(exact, texts[i], len);
        jsonl_error_t err = {0};
        (void)jsonl_parse(&arena, exact, len, &err);
        free(exact);
    }
    /* a prefix of a longer text is parsed on its own */
    jsonl_error_t err = {0};
    const jsonl_value_t *v = jsonl_parse(&arena, "123456", 3, &err);
    cr_assert_not_null(v);
    cr_assert_eq(v->integer, 123);
    v = jsonl_parse(&arena, "[1,2]garbage", 5, &err);
    cr_assert_not_null(v);
    cr_assert_eq(v->count, 2);
    cr_assert_null(jsonl_parse(&arena, "\"abc\"", 4, &err));
    cr_assert_str_eq(err.what, "unterminated string");
}

Test(jsonl, arena_reuse_and_large_lines)
{
    /* a line far larger than one block: 50,000 numbers */
    size_t cap = 50000 * 8 + 16, n = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    text[n++] = '[';
    for (int i = 0; i < 50000; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s%d", i ? "," : "", i);
    text[n++] = ']';
    for (int round = 0; round < 3; round++) {
        const jsonl_value_t *v = parse("{\"a\":[1,2,3],\"s\":\"x\"}");
        cr_assert_eq(jsonl_get_array(v, "a")->count, 3);
        jsonl_error_t err = {0};
        v = jsonl_parse(&arena, text, n, &err);
        cr_assert_not_null(v, "%s", err.what);
        cr_assert_eq(v->count, 50000);
        cr_assert_eq(jsonl_item(v, 49999)->integer, 49999);
        jsonl_arena_reset(&arena);
        cr_assert_not_null(arena.blocks);
        cr_assert_null(arena.blocks->next, "reset keeps one block");
        cr_assert_eq(arena.used, 0);
    }
    free(text);
    jsonl_arena_free(&arena);
    cr_assert_null(arena.blocks);
    /* a freed arena works again */
    cr_assert_eq(parse("[]")->count, 0);
}

Test(jsonl, mutated_lines_never_crash)
{
    const char *seed_line =
        "{\"time\":9675027106,\"process\":5,\"node\":\"n1\",\"type\":\"info\",\"f\":\"add\","
        "\"key\":\"k0\",\"value\":634,\"wrote\":[1,-2,3.5e1],\"grudge\":{\"n1\":[\"n2\"]},"
        "\"error\":\"put: timed out \\u00e9\\ud83d\\ude00\",\"ok\":true,\"x\":null}";
    size_t len = strlen(seed_line);
    char buf[512];
    cr_assert_lt(len, sizeof buf);
    const char alphabet[] = "{}[]\":,\\u0123456789eE+-.tfn \t\x01\x7f\xc3";
    uint64_t state = 12345;
    int accepted = 0, refused_n = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, seed_line, len);
        size_t n = len;
        int edits = 1 + (int)(bench_rng_next(&state) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(bench_rng_next(&state) % n);
            switch (bench_rng_next(&state) % 3) {
            case 0: buf[at] = alphabet[bench_rng_next(&state) % (sizeof alphabet - 1)]; break;
            case 1: n = at + 1; break; /* truncate */
            default: memmove(buf + at, buf + at + 1, n - at - 1); n = n > 1 ? n - 1 : 1; break;
            }
        }
        jsonl_error_t err = {0};
        const jsonl_value_t *v = jsonl_parse(&arena, buf, n, &err);
        if (v) {
            accepted++;
        } else {
            refused_n++;
            cr_assert_not_null(err.what);
            cr_assert_leq(err.offset, n);
        }
        jsonl_arena_reset(&arena);
    }
    cr_assert_gt(refused_n, 1000);
    cr_assert_gt(accepted, 10);
}

/* ------------------------------------------------------------------ jsonl_read_file */

static char file_path[64];

static void make_file(const char *text)
{
    snprintf(file_path, sizeof file_path, "/tmp/cairn-test-jsonl-XXXXXX");
    int fd = mkstemp(file_path);
    cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* What the callback saw: each line's number and member "a", and a copy of member "s". */
typedef struct seen {
    int n;
    long lineno[8];
    int64_t a[8];
    char s[8][16];
    int stop_at;                 /* return 7 at this call (1-based); 0: never */
} seen_t;

static int record_line(void *ctx, const jsonl_value_t *line, long lineno)
{
    seen_t *seen = ctx;
    cr_assert_lt(seen->n, 8);
    cr_assert_eq(line->type, JSONL_OBJECT);
    seen->lineno[seen->n] = lineno;
    cr_assert(jsonl_get_int(line, "a", &seen->a[seen->n]), "line %ld has no a", lineno);
    const char *str = jsonl_get_string(line, "s");
    snprintf(seen->s[seen->n], sizeof seen->s[0], "%s", str ? str : "");
    seen->n++;
    return seen->n == seen->stop_at ? 7 : 0;
}

Test(jsonl, read_file_lines)
{
    make_file("{\"a\":1,\"s\":\"x\"}\n"
              "\n"
              "{\"a\":2}\r\n"
              "\r\n"
              "\n"
              "  {\"a\": 3, \"s\": \"y\\n\"}\r\n"
              "{\"a\":4}"); /* the last line without a newline */
    seen_t seen = {0};
    long lines = -1;
    char err[256] = "";
    int rc = jsonl_read_file(file_path, record_line, &seen, &lines, err, sizeof err);
    unlink(file_path);
    cr_assert_eq(rc, 0, "rc %d: %s", rc, err);
    cr_assert_eq(lines, 7, "blank lines count: %ld", lines);
    cr_assert_eq(seen.n, 4);
    const long want_lineno[] = {1, 3, 6, 7};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(seen.lineno[i], want_lineno[i], "call %d: line %ld", i, seen.lineno[i]);
        cr_assert_eq(seen.a[i], i + 1);
    }
    cr_assert_str_eq(seen.s[0], "x");
    cr_assert_str_eq(seen.s[1], "");
    cr_assert_str_eq(seen.s[2], "y\n");

    /* an empty file: no call, no line */
    make_file("");
    seen = (seen_t){0};
    rc = jsonl_read_file(file_path, record_line, &seen, &lines, err, sizeof err);
    unlink(file_path);
    cr_assert_eq(rc, 0);
    cr_assert_eq(lines, 0);
    cr_assert_eq(seen.n, 0);
}

Test(jsonl, read_file_refuses_a_line_that_is_not_an_object)
{
    make_file("{\"a\":1}\r\n\n{\"a\":}\n{\"a\":4}\n");
    seen_t seen = {0};
    long lines = -1;
    char err[256] = "", want[256];
    errno = 0;
    int rc = jsonl_read_file(file_path, record_line, &seen, &lines, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, EINVAL);
    snprintf(want, sizeof want, "%s:3: not a JSON object (unexpected character at column 6)",
             file_path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(seen.n, 1, "the lines before it were passed on, none after");
    cr_assert_eq(lines, 3);
    unlink(file_path);

    /* valid JSON, but not an object */
    make_file("{\"a\":1}\n[1,2]\n");
    seen = (seen_t){0};
    rc = jsonl_read_file(file_path, record_line, &seen, NULL, err, sizeof err);
    cr_assert_eq(rc, -1);
    snprintf(want, sizeof want, "%s:2: not a JSON object (not an object at column 1)",
             file_path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(seen.n, 1);

    /* the message is truncated to the room given */
    char small[12];
    rc = jsonl_read_file(file_path, record_line, &seen, NULL, small, sizeof small);
    unlink(file_path);
    cr_assert_eq(rc, -1);
    cr_assert_eq(strlen(small), sizeof small - 1);
    cr_assert_eq(strncmp(small, file_path, sizeof small - 1), 0);
}

Test(jsonl, read_file_missing_or_unreadable)
{
    seen_t seen = {0};
    long lines = -1;
    char err[256] = "", want[256];
    errno = 0;
    int rc = jsonl_read_file("/nonexistent/cairn.jsonl", record_line, &seen, &lines, err,
                             sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, ENOENT);
    snprintf(want, sizeof want, "cannot open /nonexistent/cairn.jsonl: %s", strerror(ENOENT));
    cr_assert_str_eq(err, want);
    cr_assert_eq(lines, 0);
    cr_assert_eq(seen.n, 0);

    /* a directory opens but does not read */
    errno = 0;
    rc = jsonl_read_file("/tmp", record_line, &seen, &lines, err, sizeof err);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, EISDIR);
    snprintf(want, sizeof want, "reading /tmp: %s", strerror(EISDIR));
    cr_assert_str_eq(err, want);
    cr_assert_eq(seen.n, 0);
}

Test(jsonl, read_file_stops_when_asked)
{
    make_file("{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\nnot even JSON\n");
    seen_t seen = {.stop_at = 2};
    long lines = -1;
    char err[256] = "";
    int rc = jsonl_read_file(file_path, record_line, &seen, &lines, err, sizeof err);
    unlink(file_path);
    cr_assert_eq(rc, 7, "the callback's value comes back");
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(lines, 3, "lines up to the one that stopped");
}

Test(jsonl, read_file_dash_is_stdin)
{
    make_file("{\"a\":5}\n");
    cr_assert_not_null(freopen(file_path, "r", stdin));
    unlink(file_path);
    seen_t seen = {0};
    long lines = -1;
    char err[256] = "";
    int rc = jsonl_read_file("-", record_line, &seen, &lines, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(seen.n, 1);
    cr_assert_eq(seen.a[0], 5);
    cr_assert_eq(lines, 1);
    cr_assert_neq(fcntl(fileno(stdin), F_GETFD), -1, "stdin is left open");
    cr_assert(feof(stdin));
}
