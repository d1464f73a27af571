/* gz: gzip message compression on zlib (see gz.h). */
#define ZLIB_CONST
#include "gz.h"

#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "error.h"
#include "xalloc.h"

/* windowBits 15 with 16 added selects the gzip wrapper instead of zlib's. */
#define GZIP_WBITS (15 + 16)

/* zlib counts in uInt: larger buffers are handed over in pieces. */
static uInt piece(size_t n)
{
	return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

int gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream z = {0};
	size_t left = len, total = 0, cap;
	uint8_t *buf;
	int rc;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WBITS, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return E_CORRUPT;
	/* The bound makes one pass enough; the growth below is a safety net. */
	cap = deflateBound(&z, len);
	buf = xmalloc(cap);
	z.next_in = in;
	do {
		if (z.avail_in == 0) {
			z.avail_in = piece(left);
			left -= z.avail_in;
		}
		if (total == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		z.next_out = buf + total;
		z.avail_out = piece(cap - total);
		rc = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
		total = (size_t)((uint8_t *)z.next_out - buf);
	} while (rc == Z_OK || rc == Z_BUF_ERROR);
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return E_CORRUPT;
	}
	*out = buf;
	*outlen = total;
	return 0;
}

int gz_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **out, size_t *outlen)
{
	z_stream z = {0};
	size_t left = len, total = 0, cap;
	uint8_t *buf, spill;
	int rc, full;

	if (inflateInit2(&z, GZIP_WBITS) != Z_OK)
		return E_CORRUPT;
	/* Guess a typical ratio; grow by doubling, never beyond max_out. */
	cap = len < SIZE_MAX / 4 ? len * 4 : len;
	cap = cap < 256 ? 256 : cap > (1 << 20) ? (1 << 20) : cap;
	cap = cap > max_out ? max_out : cap;
	buf = xmalloc(cap);
	z.next_in = in;
	for (;;) {
		if (z.avail_in == 0) {
			z.avail_in = piece(left);
			left -= z.avail_in;
		}
		if (total == cap && cap < max_out) {
			cap = cap > max_out / 2 ? max_out : cap * 2;
			buf = xrealloc(buf, cap);
		}
		/* At the limit, inflate into one spare byte: producing it
		 * proves the output is too big, without inflating more. */
		full = total == cap;
		z.next_out = full ? &spill : buf + total;
		z.avail_out = full ? 1 : piece(cap - total);
		rc = inflate(&z, Z_NO_FLUSH);
		if (full && z.avail_out == 0) {
			rc = E_TOOBIG;
			break;
		}
		if (!full)
			total = (size_t)(z.next_out - buf);
		if (rc == Z_STREAM_END) {
			if (z.avail_in == 0 && left == 0) {
				rc = 0;
				break;
			}
			/* Another gzip member follows (RFC 1952 2.2). */
			rc = inflateReset(&z);
		}
		/* Z_BUF_ERROR means no progress was possible: with input left
		 * that cannot be (there is output space), so it is truncation. */
		if (rc == Z_BUF_ERROR && z.avail_in == 0 && left == 0) {
			rc = E_CORRUPT;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			rc = E_CORRUPT;
			break;
		}
	}
	inflateEnd(&z);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = total;
	return 0;
}
