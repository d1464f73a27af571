/*
 * xalloc: the one out-of-memory policy of orchd. Allocation failure is not
 * a recoverable condition for a server of this size, so every allocation
 * goes through these wrappers, which abort with a message instead of
 * returning NULL. Callers never check their results.
 */
#ifndef ORCHD_XALLOC_H
#define ORCHD_XALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees with free(); never NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies n bytes of s and NUL-terminates. */
char *xstrndup(const char *s, size_t n);
/* Copies n bytes; xmemdup(NULL, 0) returns a valid 1-byte allocation. */
void *xmemdup(const void *p, size_t n);

#endif
