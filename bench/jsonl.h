/*
 * jsonl.h — a small JSON reader for JSON-lines files (prefix jsonl_): the jepsen suite's
 * history.jsonl and convergence.jsonl, read by jepsen-check and jepsen-report.
 *
 * It owns parsing one line (one JSON value, RFC 8259) into a tree of values allocated in an
 * arena, the look-ups over that tree, and the loop over a file (jsonl_read_file: one JSON
 * object per line, blank lines skipped, a callback per line). The parser is strict: a line
 * is exactly one value with optional white space around it; numbers follow JSON's grammar;
 * strings hold no raw control characters and only JSON's escapes (\uXXXX is decoded to
 * UTF-8, surrogate pairs combined, a lone surrogate becomes U+FFFD); nesting is at most
 * JSONL_MAX_DEPTH deep. Anything else is refused with a message and the byte offset where
 * parsing stopped; the parser never reads past the length it is given, so the text need not
 * be NUL-terminated.
 *
 * Memory: every value, member name and decoded string lives in the arena passed to
 * jsonl_parse, and stays valid until jsonl_arena_reset or jsonl_arena_free on that arena. The
 * values do not point into the parsed text, which the caller may reuse at once. The usual
 * loop (jsonl_read_file's) parses a line, uses it, and resets the arena, which keeps its
 * largest block for the next line. Not thread-safe per arena; separate arenas are
 * independent.
 */
#ifndef CAIRN_BENCH_JSONL_H
#define CAIRN_BENCH_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONL_MAX_DEPTH 64 /* arrays and objects nested deeper are refused */

typedef enum jsonl_type {
    JSONL_NULL,
    JSONL_BOOL,
    JSONL_NUMBER,
    JSONL_STRING,
    JSONL_ARRAY,
    JSONL_OBJECT,
} jsonl_type_t;

/* One parsed value. Arrays and objects list their items through child / next in the order
 * of the text; an object's items carry their member name in key. */
typedef struct jsonl_value {
    jsonl_type_t type;
    bool boolean;                /* JSONL_BOOL */
    bool is_int;                 /* JSONL_NUMBER written without fraction or exponent and
                                  * within int64_t: integer holds it exactly */
    int64_t integer;             /* JSONL_NUMBER when is_int */
    double number;               /* JSONL_NUMBER, always (rounded for big integers) */
    const char *string;          /* JSONL_STRING: decoded UTF-8, NUL-terminated */
    size_t string_len;           /* its length in bytes (a \u0000 escape is a NUL inside) */
    const char *key;             /* member name when the value is an object's item, else NULL */
    struct jsonl_value *child;   /* JSONL_ARRAY, JSONL_OBJECT: the first item, or NULL */
    struct jsonl_value *next;    /* the next item of the enclosing array or object, or NULL */
    size_t count;                /* JSONL_ARRAY, JSONL_OBJECT: the number of items */
} jsonl_value_t;

/* Blocks the values live in. Zero-initialise; free with jsonl_arena_free. */
typedef struct jsonl_block jsonl_block_t;
typedef struct jsonl_arena {
    jsonl_block_t *blocks;       /* newest first */
    size_t used;                 /* bytes taken from the newest block */
} jsonl_arena_t;

/* Why a parse failed: what (a static string such as "expected ',' or ']'") and the byte
 * offset into the text where the parser stopped (0-based; add 1 for a column number). */
typedef struct jsonl_error {
    const char *what;
    size_t offset;
} jsonl_error_t;

/* Parses text[0..len) as one JSON value. Returns the root, allocated in arena, or NULL with
 * *err filled in (a malformed text, or "out of memory"). err may be NULL. */
const jsonl_value_t *jsonl_parse(jsonl_arena_t *arena, const char *text, size_t len,
                                 jsonl_error_t *err);

/* Forgets every value parsed into the arena (pointers to them become invalid) and keeps its
 * largest block for reuse. */
void jsonl_arena_reset(jsonl_arena_t *arena);
/* Frees every block; the arena is then empty and may be used again. */
void jsonl_arena_free(jsonl_arena_t *arena);

/* ------------------------------------------------------------------ look-ups
 * Each takes any value (or NULL) and answers "absent" (NULL or false) when it is not of the
 * kind asked for, so a chain of look-ups needs no checks in between. Member look-ups return
 * the first member of that name. */

const jsonl_value_t *jsonl_get(const jsonl_value_t *object, const char *name);
/* The member's decoded string, or NULL when absent or not a string. */
const char *jsonl_get_string(const jsonl_value_t *object, const char *name);
/* true and *out set when the member is a number with is_int. */
bool jsonl_get_int(const jsonl_value_t *object, const char *name, int64_t *out);
/* true and *out set when the member is a number (integers converted to double). */
bool jsonl_get_number(const jsonl_value_t *object, const char *name, double *out);
bool jsonl_get_bool(const jsonl_value_t *object, const char *name, bool *out);
/* The member when it is an array (resp. an object), else NULL. */
const jsonl_value_t *jsonl_get_array(const jsonl_value_t *object, const char *name);
const jsonl_value_t *jsonl_get_object(const jsonl_value_t *object, const char *name);

/* Iteration: the first item of an array or object (NULL when empty or not a container),
 * then jsonl_next until NULL. jsonl_item walks to item index (NULL past the end). */
const jsonl_value_t *jsonl_first(const jsonl_value_t *container);
const jsonl_value_t *jsonl_next(const jsonl_value_t *item);
const jsonl_value_t *jsonl_item(const jsonl_value_t *array, size_t index);

/* A number as int64_t: exact when is_int, else truncated toward zero when finite and within
 * range. false (and *out untouched) for anything else. */
bool jsonl_to_int64(const jsonl_value_t *value, int64_t *out);

/* ------------------------------------------------------------------ reading a file */

/* Called by jsonl_read_file for each non-blank line: line is the line's JSON object, lineno
 * its 1-based number in the file (blank lines counted). line and every value under it are
 * valid only during the call (the arena is reset for the next line): copy what you keep.
 * Return 0 to go on; any other value stops the reading and jsonl_read_file returns it (use
 * positive values, so that a stop is not taken for a failure). */
typedef int (*jsonl_line_fn)(void *ctx, const jsonl_value_t *line, long lineno);

/* Reads the JSON-lines file at path ("-": standard input, read but not closed) line by line,
 * any line length: trailing '\n' and '\r' are stripped, blank lines skipped, and every other
 * line must be one JSON object, which is passed to fn. When lines is not NULL, *lines is set
 * to the number of lines read, blank ones included (up to and including the line where the
 * reading stopped or failed). Returns
 *   0    every line was read;
 *   fn's non-zero value, when fn stopped the reading after its line;
 *   -1   a failure: err (errlen bytes, truncated to fit) holds the message and errno says
 *        why. "cannot open PATH: REASON" (fopen's errno, ENOENT when the file does not
 *        exist), "reading PATH: REASON" (the read error's errno), or
 *        "PATH:LINE: not a JSON object (WHAT at column N)" (EINVAL: a line that does not
 *        parse, or parses to something other than an object: WHAT is "not an object").
 * Nothing stays allocated and the file is closed whatever the outcome. */
int jsonl_read_file(const char *path, jsonl_line_fn fn, void *ctx, long *lines, char *err,
                    size_t errlen);

#endif
