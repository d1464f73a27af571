/*
 * meta: gRPC metadata. The wire encodings of single header values
 * (grpc-timeout, the percent-encoded grpc-message, base64 for "-bin" keys),
 * the validity rules for custom keys and values, and a simple ordered list
 * of key/value pairs that holds values decoded (raw bytes for "-bin" keys).
 * Pure functions: no I/O. Which headers a call sends, and HPACK, belong to
 * the transport (h2conn), not here.
 */
#ifndef ORCHD_META_H
#define ORCHD_META_H

#include <stddef.h>
#include <stdint.h>

/* ---- grpc-timeout ---------------------------------------------------- */

/* Buffer size meta_timeout_format() needs: 8 digits, a unit, a NUL. */
#define META_TIMEOUT_BUFLEN 16

/* Parses a grpc-timeout value: 1 to 8 ASCII digits then one unit of
 * H, M, S, m (milliseconds), u (microseconds), n (nanoseconds). s is
 * borrowed and need not be NUL-terminated. The result is in milliseconds,
 * rounded up (1n gives 1, 0n gives 0); the largest possible value,
 * 99999999H, is about 3.6e14 ms, far below INT64_MAX/2, so callers may add
 * it to a monotonic clock reading without overflow. Returns 0 and sets
 * *out_ms, or -1 if malformed (then *out_ms is untouched). */
int meta_timeout_parse(const char *s, size_t len, int64_t *out_ms);

/* Writes the shortest exact encoding of ms into out, NUL-terminated, using
 * the largest unit that divides it and fits 8 digits; when none does, the
 * smallest unit whose rounded-up value fits. Parsing the result gives a
 * value >= ms, except that ms beyond 99999999H is clamped to that. ms <= 0
 * (an already expired deadline) becomes "1n", the smallest positive timeout,
 * because the spec requires a positive value. Returns the string length. */
size_t meta_timeout_format(int64_t ms, char out[META_TIMEOUT_BUFLEN]);

/* ---- grpc-message percent-encoding ----------------------------------- */

/* Percent-encodes s for grpc-message: bytes outside 0x20..0x7E, and '%'
 * itself, become %XX with upper-case hex. s is borrowed. Returns a
 * NUL-terminated string the caller frees; *outlen (if not NULL) gets its
 * length. */
char *meta_pct_encode(const char *s, size_t len, size_t *outlen);

/* The length meta_pct_encode() would give s: len itself when s needs no
 * escape and can go on the wire as it is. s is borrowed. */
size_t meta_pct_encoded_len(const char *s, size_t len);

/* Inverse of meta_pct_encode(); accepts either hex case. A '%' not followed
 * by two hex digits is kept verbatim, because the spec says a malformed
 * grpc-message must not fail the call. s is borrowed. Returns a
 * NUL-terminated string the caller frees (it may contain NULs decoded from
 * %00; use *outlen); *outlen (if not NULL) gets its length. */
char *meta_pct_decode(const char *s, size_t len, size_t *outlen);

/* ---- base64 for "-bin" values ---------------------------------------- */

/* Encodes p with the standard alphabet and no padding, as gRPC sends it.
 * p is borrowed. Returns a NUL-terminated string the caller frees;
 * *outlen (if not NULL) gets its length. */
char *meta_b64_encode(const uint8_t *p, size_t len, size_t *outlen);

/* Decodes standard-alphabet base64, padded or not (the spec requires
 * accepting both). Unused low bits of the last character are ignored.
 * s is borrowed. Returns 0 and sets *out to a buffer the caller frees
 * (valid even when *outlen is 0) and *outlen, or -1 on a character outside
 * the alphabet, misplaced padding or an impossible length. */
int meta_b64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen);

/* ---- keys and values ------------------------------------------------- */

/* Returns 1 if key ends with "-bin" (its value is binary, sent base64). */
int meta_key_is_bin(const char *key, size_t len);

/* Returns 1 if key is a legal custom-metadata key: non-empty, only
 * 0-9 a-z _ - . (HTTP/2 requires lower case); 0 otherwise. It does not
 * reject the reserved "grpc-" prefix: that is the caller's policy. */
int meta_key_valid(const char *key, size_t len);

/* Returns 1 if v is a legal ASCII (non-"-bin") value: every byte printable,
 * 0x20..0x7E; 0 otherwise. The empty value is legal. */
int meta_value_valid(const char *v, size_t len);

/* ---- metadata list --------------------------------------------------- */

/* One entry. key and val are owned by the list, each NUL-terminated after
 * keylen/vallen bytes (val may also contain NULs for "-bin" keys). */
struct meta_kv {
	char *key;
	uint8_t *val;
	size_t keylen, vallen;
};

/* An ordered list of entries; duplicate keys are allowed and keep their
 * order, as HTTP/2 headers do. Embed it and use meta_init/meta_free. */
struct meta {
	struct meta_kv *v;
	size_t n, cap;
};

void meta_init(struct meta *m);
/* Releases every entry and the array; leaves an empty, reusable list. */
void meta_free(struct meta *m);
/* Appends a copy of key and of val (the decoded value). Both borrowed. */
void meta_add(struct meta *m, const char *key, size_t keylen, const void *val, size_t vallen);
/* Returns the first entry whose key equals key (NUL-terminated, borrowed,
 * exact match: keys are lower case), borrowed from the list until it
 * changes; NULL if none. */
const struct meta_kv *meta_get(const struct meta *m, const char *key);

#endif
