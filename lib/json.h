/*
 * json: writes JSON text (RFC 8259) into an sbuf, for the client's --json
 * output and `orchd watch`'s JSON lines. The writer owns the punctuation
 * (commas, colons, nesting); the caller says what comes next. Strings are
 * emitted as UTF-8 with '"', '\' and control characters escaped; invalid
 * UTF-8 bytes become U+FFFD, so the output is always valid JSON and valid
 * UTF-8. Bytes that must survive exactly (a task's output) are the
 * caller's to base64 first. Writing only: orchd never parses JSON.
 */
#ifndef ORCHD_JSON_H
#define ORCHD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

/* Deepest nesting the writer tracks; deeper values are still written but
 * their commas may be wrong. orchd's documents are 3 levels deep. */
#define JSON_MAX_DEPTH 16

struct json {
	struct sbuf *out; /* borrowed */
	int depth;
	unsigned char has_items[JSON_MAX_DEPTH]; /* a value was written at this level */
	int after_key;                           /* the next value follows a key */
};

/* Starts a writer appending to out (borrowed; it must outlive j). */
void json_init(struct json *j, struct sbuf *out);

void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
/* Writes an object member's key; the next call writes its value. */
void json_key(struct json *j, const char *key);

/* Values. s NULL writes "". */
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Appends s (n bytes, borrowed) to out as one JSON string literal,
 * quotes included. */
void json_escape(struct sbuf *out, const char *s, size_t n);

#endif
