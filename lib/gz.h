/*
 * gz: whole-message gzip compression for "grpc-encoding: gzip" (zlib with
 * the gzip wrapper, RFC 1952). This module owns only the byte
 * transformation; deciding whether to compress, and the compressed flag of
 * the message prefix, belong to the caller (see frame.h).
 */
#ifndef ORCHD_GZ_H
#define ORCHD_GZ_H

#include <stddef.h>
#include <stdint.h>

/* Compresses len bytes of in (borrowed) into one gzip member. Returns 0 and
 * sets *out (the caller frees) and *outlen, or E_CORRUPT if zlib fails,
 * which it should not for valid arguments. */
int gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

/* Decompresses gzip data (borrowed; several concatenated members are
 * accepted, as RFC 1952 allows). Returns 0 and sets *out (the caller frees)
 * and *outlen; E_CORRUPT on invalid, truncated or trailing data; or
 * E_TOOBIG as soon as the output would exceed max_out bytes, having
 * inflated at most max_out + 1 of them, so a small "zip bomb" costs
 * nothing beyond the limit. On error *out is untouched. */
int gz_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **out, size_t *outlen);

#endif
