/*
 * jsonl.c — the JSON-lines reader (see jsonl.h): a recursive-descent parser over one line,
 * bounded by the line's length and JSONL_MAX_DEPTH, building its values in a bump arena.
 *
 * Arena: a list of blocks, newest first; an allocation that does not fit the newest block
 * opens a new one (at least JSONL_BLOCK_MIN, doubling up to JSONL_BLOCK_GROW_MAX, or the
 * size asked for). Reset keeps only the largest block, so a file whose lines fit in one
 * block allocates once. Allocation failure is reported as the parse error "out of memory".
 *
 * jsonl_read_file reads with getline into one growing buffer and parses each line into one
 * arena, reset after the line's callback.
 */
#include "bench/jsonl.h"

#include "bench/bench_common.h" /* bench_hex_digit */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define JSONL_BLOCK_MIN ((size_t)64 << 10)
#define JSONL_BLOCK_GROW_MAX ((size_t)4 << 20)
#define JSONL_ALIGN ((size_t)16)
#define JSONL_NUMBER_MAX 400 /* longest number token accepted, in characters */

struct jsonl_block {
    jsonl_block_t *next;
    size_t cap;                  /* usable bytes after the header */
};

/* The header rounded up, so that every allocation is JSONL_ALIGN-aligned. */
#define JSONL_BLOCK_HEADER ((sizeof(jsonl_block_t) + JSONL_ALIGN - 1) & ~(JSONL_ALIGN - 1))

static unsigned char *block_data(jsonl_block_t *b)
{
    return (unsigned char *)b + JSONL_BLOCK_HEADER;
}

static void *arena_alloc(jsonl_arena_t *a, size_t n)
{
    if (n > ((size_t)1 << 40))
        return NULL;
    n = (n + JSONL_ALIGN - 1) & ~(JSONL_ALIGN - 1);
    jsonl_block_t *b = a->blocks;
    if (!b || b->cap - a->used < n) {
        size_t cap = JSONL_BLOCK_MIN;
        if (b && b->cap < JSONL_BLOCK_GROW_MAX)
            cap = b->cap * 2 < JSONL_BLOCK_GROW_MAX ? b->cap * 2 : JSONL_BLOCK_GROW_MAX;
        else if (b)
            cap = JSONL_BLOCK_GROW_MAX;
        if (cap < n)
            cap = n;
        jsonl_block_t *fresh = malloc(JSONL_BLOCK_HEADER + cap);
        if (!fresh)
            return NULL;
        fresh->cap = cap;
        fresh->next = b;
        a->blocks = b = fresh;
        a->used = 0;
    }
    void *p = block_data(b) + a->used;
    a->used += n;
    return p;
}

void jsonl_arena_reset(jsonl_arena_t *arena)
{
    jsonl_block_t *largest = NULL;
    for (jsonl_block_t *b = arena->blocks; b; b = b->next)
        if (!largest || b->cap > largest->cap)
            largest = b;
    jsonl_block_t *b = arena->blocks;
    while (b) {
        jsonl_block_t *next = b->next;
        if (b != largest)
            free(b);
        b = next;
    }
    if (largest)
        largest->next = NULL;
    arena->blocks = largest;
    arena->used = 0;
}

void jsonl_arena_free(jsonl_arena_t *arena)
{
    jsonl_block_t *b = arena->blocks;
    while (b) {
        jsonl_block_t *next = b->next;
        free(b);
        b = next;
    }
    arena->blocks = NULL;
    arena->used = 0;
}

/* ------------------------------------------------------------------ the parser */

typedef struct parser {
    const char *p, *end;
    jsonl_arena_t *arena;
    const char *what;            /* the first error, or NULL */
    int depth;                   /* arrays and objects currently open */
} parser_t;

/* Records the error (the first one wins) and returns NULL for the caller to pass up. */
static void *fail(parser_t *ps, const char *what)
{
    if (!ps->what)
        ps->what = what;
    return NULL;
}

static void skip_space(parser_t *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
}

static jsonl_value_t *new_value(parser_t *ps, jsonl_type_t type)
{
    jsonl_value_t *v = arena_alloc(ps->arena, sizeof *v);
    if (!v)
        return fail(ps, "out of memory");
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

/* The four hex digits at s[0..4) (the caller checked they are in the text), or -1. */
static long hex4(const char *s)
{
    long cp = 0;
    for (int k = 0; k < 4; k++) {
        int h = bench_hex_digit(s[k]);
        if (h < 0)
            return -1;
        cp = cp * 16 + h;
    }
    return cp;
}

static char *put_utf8(char *w, long cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/* A \u escape whose 'u' is at r (inside the string ending at close): the code point, with a
 * surrogate pair combined (*r_out then points at the last hex digit of the pair) and a lone
 * surrogate replaced by U+FFFD; -1 on bad hex digits. */
static long unicode_escape(const char *r, const char *close, const char **r_out)
{
    if (close - r < 5)
        return -1;
    long cp = hex4(r + 1);
    if (cp < 0)
        return -1;
    *r_out = r + 4;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return 0xfffd;
    if (cp < 0xd800 || cp > 0xdbff)
        return cp;
    /* a high surrogate: a low one must follow as \uDC00..\uDFFF */
    if (close - r >= 11 && r[5] == '\\' && r[6] == 'u') {
        long low = hex4(r + 7);
        if (low >= 0xdc00 && low <= 0xdfff) {
            *r_out = r + 10;
            return 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
    }
    return 0xfffd;
}

/* A string starting at the opening quote: decoded into the arena, *len_out its length. */
static char *parse_string(parser_t *ps, size_t *len_out)
{
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, "expected a string");
    const char *start = ps->p + 1, *q = start;
    /* first pass: find the closing quote; raw control characters are not JSON */
    while (q < ps->end && *q != '"') {
        if ((unsigned char)*q < 0x20) {
            ps->p = q;
            return fail(ps, "control character in a string");
        }
        if (*q == '\\' && ps->end - q < 2) {
            q = ps->end; /* a backslash that ends the text: unterminated */
            break;
        }
        q += *q == '\\' ? 2 : 1;
    }
    if (q >= ps->end) {
        ps->p = ps->end;
        return fail(ps, "unterminated string");
    }
    const char *close = q;
    /* decoding never grows: an escape of n characters yields at most n bytes */
    char *out = arena_alloc(ps->arena, (size_t)(close - start) + 1), *w = out;
    if (!out)
        return fail(ps, "out of memory");
    for (const char *r = start; r < close; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            long cp = unicode_escape(r, close, &r);
            if (cp < 0) {
                ps->p = r - 1;
                return fail(ps, "bad \\u escape");
            }
            w = put_utf8(w, cp);
            break;
        }
        default:
            ps->p = r - 1;
            return fail(ps, "bad escape in a string");
        }
    }
    *w = '\0';
    *len_out = (size_t)(w - out);
    ps->p = close + 1;
    return out;
}

static bool is_digit(const parser_t *ps, const char *q)
{
    return q < ps->end && *q >= '0' && *q <= '9';
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static jsonl_value_t *parse_number(parser_t *ps)
{
    const char *q = ps->p;
    bool integral = true;
    if (q < ps->end && *q == '-')
        q++;
    if (!is_digit(ps, q))
        return fail(ps, "bad number");
    if (*q == '0')
        q++;
    else
        while (is_digit(ps, q))
            q++;
    if (q < ps->end && *q == '.') {
        integral = false;
        if (!is_digit(ps, ++q)) {
            ps->p = q;
            return fail(ps, "bad number: a digit must follow '.'");
        }
        while (is_digit(ps, q))
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(ps, q)) {
            ps->p = q;
            return fail(ps, "bad number: a digit must follow the exponent");
        }
        while (is_digit(ps, q))
            q++;
    }
    size_t n = (size_t)(q - ps->p);
    if (n > JSONL_NUMBER_MAX)
        return fail(ps, "number too long");
    char token[JSONL_NUMBER_MAX + 1];
    memcpy(token, ps->p, n);
    token[n] = '\0';
    jsonl_value_t *v = new_value(ps, JSONL_NUMBER);
    if (!v)
        return NULL;
    v->number = strtod(token, NULL);
    if (integral) {
        errno = 0;
        long long ll = strtoll(token, NULL, 10);
        if (errno == 0) {
            v->is_int = true;
            v->integer = ll;
        }
    }
    ps->p = q;
    return v;
}

static jsonl_value_t *parse_value(parser_t *ps);

/* An array or object starting at its opening bracket. */
static jsonl_value_t *parse_container(parser_t *ps, bool object)
{
    if (++ps->depth > JSONL_MAX_DEPTH)
        return fail(ps, "nested too deep");
    jsonl_value_t *v = new_value(ps, object ? JSONL_OBJECT : JSONL_ARRAY);
    if (!v)
        return NULL;
    jsonl_value_t **tail = &v->child;
    char close = object ? '}' : ']';
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    /* each turn consumes at least one character, so the loop ends with the text */
    while (ps->p < ps->end) {
        char *key = NULL;
        skip_space(ps);
        if (object) {
            size_t key_len;
            if (!(key = parse_string(ps, &key_len)))
                return NULL;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
        }
        jsonl_value_t *item = parse_value(ps);
        if (!item)
            return NULL;
        item->key = key;
        *tail = item;
        tail = &item->next;
        v->count++;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    return fail(ps, "unexpected end");
}

static bool literal(parser_t *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

static jsonl_value_t *parse_value(parser_t *ps)
{
    skip_space(ps);
    if (ps->p >= ps->end)
        return fail(ps, "unexpected end");
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, c == '{');
    if (c == '"') {
        size_t len;
        char *s = parse_string(ps, &len);
        jsonl_value_t *v = s ? new_value(ps, JSONL_STRING) : NULL;
        if (v) {
            v->string = s;
            v->string_len = len;
        }
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps);
    if (literal(ps, "null", 4))
        return new_value(ps, JSONL_NULL);
    bool is_true = literal(ps, "true", 4);
    if (is_true || literal(ps, "false", 5)) {
        jsonl_value_t *v = new_value(ps, JSONL_BOOL);
        if (v)
            v->boolean = is_true;
        return v;
    }
    return fail(ps, "unexpected character");
}

const jsonl_value_t *jsonl_parse(jsonl_arena_t *arena, const char *text, size_t len,
                                 jsonl_error_t *err)
{
    parser_t ps = {.p = text, .end = text + len, .arena = arena};
    jsonl_value_t *root = parse_value(&ps);
    if (root) {
        skip_space(&ps);
        if (ps.p != ps.end) {
            root = NULL;
            fail(&ps, "text after the value");
        }
    }
    if (!root && err) {
        err->what = ps.what ? ps.what : "unexpected end";
        err->offset = (size_t)(ps.p - text);
    }
    return root;
}

/* ------------------------------------------------------------------ look-ups */

const jsonl_value_t *jsonl_get(const jsonl_value_t *object, const char *name)
{
    if (!object || object->type != JSONL_OBJECT)
        return NULL;
    for (const jsonl_value_t *m = object->child; m; m = m->next)
        if (!strcmp(m->key, name))
            return m;
    return NULL;
}

const char *jsonl_get_string(const jsonl_value_t *object, const char *name)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    return v && v->type == JSONL_STRING ? v->string : NULL;
}

bool jsonl_get_int(const jsonl_value_t *object, const char *name, int64_t *out)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    if (!v || v->type != JSONL_NUMBER || !v->is_int)
        return false;
    *out = v->integer;
    return true;
}

bool jsonl_get_number(const jsonl_value_t *object, const char *name, double *out)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    if (!v || v->type != JSONL_NUMBER)
        return false;
    *out = v->number;
    return true;
}

bool jsonl_get_bool(const jsonl_value_t *object, const char *name, bool *out)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    if (!v || v->type != JSONL_BOOL)
        return false;
    *out = v->boolean;
    return true;
}

const jsonl_value_t *jsonl_get_array(const jsonl_value_t *object, const char *name)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    return v && v->type == JSONL_ARRAY ? v : NULL;
}

const jsonl_value_t *jsonl_get_object(const jsonl_value_t *object, const char *name)
{
    const jsonl_value_t *v = jsonl_get(object, name);
    return v && v->type == JSONL_OBJECT ? v : NULL;
}

const jsonl_value_t *jsonl_first(const jsonl_value_t *container)
{
    if (!container || (container->type != JSONL_ARRAY && container->type != JSONL_OBJECT))
        return NULL;
    return container->child;
}

const jsonl_value_t *jsonl_next(const jsonl_value_t *item)
{
    return item ? item->next : NULL;
}

const jsonl_value_t *jsonl_item(const jsonl_value_t *array, size_t index)
{
    if (!array || array->type != JSONL_ARRAY || index >= array->count)
        return NULL;
    const jsonl_value_t *v = array->child;
    for (size_t i = 0; i < index && v; i++)
        v = v->next;
    return v;
}

bool jsonl_to_int64(const jsonl_value_t *value, int64_t *out)
{
    if (!value || value->type != JSONL_NUMBER)
        return false;
    if (value->is_int) {
        *out = value->integer;
        return true;
    }
    /* -2^63 is exact in a double; 2^63 is the first value out of range */
    if (!(value->number >= -9223372036854775808.0 && value->number < 9223372036854775808.0))
        return false;
    *out = (int64_t)value->number;
    return true;
}

/* ------------------------------------------------------------------ reading a file */

int jsonl_read_file(const char *path, jsonl_line_fn fn, void *ctx, long *lines, char *err,
                    size_t errlen)
{
    if (lines)
        *lines = 0;
    bool is_stdin = !strcmp(path, "-");
    FILE *in = is_stdin ? stdin : fopen(path, "r");
    if (!in) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    jsonl_arena_t arena = {0};
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0, e = 0;
    while (rc == 0 && (len = getline(&buf, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        jsonl_error_t perr = {"not an object", 0};
        const jsonl_value_t *line = jsonl_parse(&arena, buf, (size_t)len, &perr);
        if (!line || line->type != JSONL_OBJECT) {
            snprintf(err, errlen, "%s:%ld: not a JSON object (%s at column %zu)", path, lineno,
                     perr.what, perr.offset + 1);
            rc = -1;
            e = EINVAL;
        } else {
            rc = fn(ctx, line, lineno);
        }
        jsonl_arena_reset(&arena);
    }
    if (rc == 0 && ferror(in)) {
        e = errno;
        snprintf(err, errlen, "reading %s: %s", path, strerror(e));
        rc = -1;
    }
    if (!is_stdin)
        fclose(in);
    free(buf);
    jsonl_arena_free(&arena);
    if (lines)
        *lines = lineno;
    if (rc == -1 && e)
        errno = e;
    return rc;
}
