/*
 * utf8: decoding, validation and terminal column counts of UTF-8 text,
 * for the client's tables, progress lines and JSON. Pure functions.
 *
 * Column counts follow the common terminal rules without asking the
 * locale: combining marks take 0 columns, East Asian wide and emoji code
 * points 2, everything else 1; each invalid byte counts as 1 (terminals
 * show one replacement glyph for it).
 */
#ifndef ORCHD_UTF8_H
#define ORCHD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the code point at p (n > 0 bytes available). Returns its
 * length 1..4 and sets *cp, or -1 for an invalid, overlong, surrogate,
 * out-of-range or truncated sequence (*cp untouched). */
int utf8_decode(const void *p, size_t n, uint32_t *cp);

/* Returns 1 if the n bytes at p are entirely valid UTF-8, else 0. */
int utf8_valid(const void *p, size_t n);

/* Columns code point cp takes on a terminal: 0, 1 or 2. */
int utf8_cp_cols(uint32_t cp);

/* Columns the n bytes at s take on a terminal. */
size_t utf8_cols(const char *s, size_t n);

/* Returns the byte length of the longest prefix of s (n bytes) that takes
 * at most cols columns, never splitting a sequence. */
size_t utf8_fit(const char *s, size_t n, size_t cols);

#endif
