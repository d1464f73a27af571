/*
 * sbuf: a growable string of bytes, always NUL-terminated, for building
 * text (tables, JSON, terminal frames) before writing it in one go. The
 * module owns the bytes; it does no I/O. Out of memory aborts (xalloc).
 * Embed one and use sbuf_init/sbuf_free.
 */
#ifndef ORCHD_SBUF_H
#define ORCHD_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *s;    /* len bytes, then a NUL; NULL until the first append */
	size_t len; /* bytes held, not counting the NUL */
	size_t cap; /* bytes allocated */
};

void sbuf_init(struct sbuf *b);
/* Releases the bytes; leaves an empty, reusable buffer. */
void sbuf_free(struct sbuf *b);
/* Empties the buffer but keeps its memory. */
void sbuf_reset(struct sbuf *b);

/* Append n bytes of p / the string s / one byte c (all borrowed). */
void sbuf_add(struct sbuf *b, const void *p, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addc(struct sbuf *b, char c);
/* Appends s n times (nothing when n <= 0). */
void sbuf_addrep(struct sbuf *b, const char *s, int n);
/* Appends printf-style text. */
void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_vaddf(struct sbuf *b, const char *fmt, va_list ap);

/* Returns the text, borrowed until the next change ("" when empty). */
const char *sbuf_str(const struct sbuf *b);
/* Hands the bytes over: returns them NUL-terminated (the caller frees
 * them; never NULL) and sets *len when not NULL; b is left empty. */
char *sbuf_detach(struct sbuf *b, size_t *len);

#endif
