/* frame: gRPC length-prefixed message framing (see frame.h). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xalloc.h"

/* A split message's buffer above this size is released once the message
 * is delivered, so one large message does not pin memory for the life of
 * a long stream. */
#define KEEP_BUF_MAX (64 * 1024)

void frame_header(uint8_t out[FRAME_HEADER_LEN], int compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

void frame_reader_init(struct frame_reader *r, size_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->max_len = max_len;
}

void frame_reader_free(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->buf_have = r->buf_cap = 0;
}

/* Validates the complete header in r->hdr. Returns 0 or a negative error. */
static int parse_header(struct frame_reader *r)
{
	uint32_t len = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
	               (uint32_t)r->hdr[3] << 8 | r->hdr[4];

	if (r->hdr[0] > 1)
		return E_PROTO;
	if (len > r->max_len)
		return E_TOOBIG;
	r->compressed = r->hdr[0];
	r->msg_len = len;
	return 0;
}

/* Makes room for n more body bytes, doubling so that a message arriving
 * in many small pieces is copied O(1) times per byte. */
static void reserve(struct frame_reader *r, size_t n)
{
	size_t need = r->buf_have + n, cap = r->buf_cap;

	if (need <= cap)
		return;
	cap = cap < 256 ? 256 : cap;
	while (cap < need)
		cap *= 2;
	if (cap > r->msg_len)
		cap = r->msg_len;
	r->buf = xrealloc(r->buf, cap);
	r->buf_cap = cap;
}

int frame_reader_feed(struct frame_reader *r, const uint8_t *data, size_t len, frame_msg_cb cb,
                      void *arg)
{
	return frame_reader_feed_part(r, data, len, cb, arg, NULL);
}

int frame_reader_feed_part(struct frame_reader *r, const uint8_t *data, size_t len,
			   frame_msg_cb cb, void *arg, size_t *used)
{
	const uint8_t *start = data;
	const uint8_t *msg;

	if (used)
		*used = len; /* everything, unless a callback pauses */
	size_t n;
	int rc, copied;

	if (r->err)
		return r->err;
	for (;;) {
		if (r->hdr_have < FRAME_HEADER_LEN) {
			if (len == 0)
				return 0;
			n = FRAME_HEADER_LEN - r->hdr_have;
			n = n < len ? n : len;
			memcpy(r->hdr + r->hdr_have, data, n);
			r->hdr_have += n;
			data += n;
			len -= n;
			if (r->hdr_have < FRAME_HEADER_LEN)
				return 0;
			if ((rc = parse_header(r)) != 0)
				return r->err = rc;
		}
		if (r->buf_have == 0 && len >= r->msg_len) {
			/* Whole message in this chunk: no copy. */
			msg = data;
			copied = 0;
			data += r->msg_len;
			len -= r->msg_len;
		} else {
			if (len == 0)
				return 0;
			n = r->msg_len - r->buf_have;
			n = n < len ? n : len;
			reserve(r, n);
			memcpy(r->buf + r->buf_have, data, n);
			r->buf_have += n;
			data += n;
			len -= n;
			if (r->buf_have < r->msg_len)
				return 0;
			msg = r->buf;
			copied = 1;
		}
		/* Reset before the callback so the reader is consistent
		 * whatever it returns. */
		r->hdr_have = 0;
		r->buf_have = 0;
		rc = cb(arg, r->compressed, msg, r->msg_len);
		if (copied && r->buf_cap > KEEP_BUF_MAX) {
			free(r->buf);
			r->buf = NULL;
			r->buf_cap = 0;
		}
		if (rc == FRAME_PAUSE && used) {
			*used = (size_t)(data - start);
			return FRAME_PAUSE;
		}
		if (rc != 0)
			return r->err = rc;
	}
}

size_t frame_reader_pending(const struct frame_reader *r)
{
	return r->hdr_have + r->buf_have;
}
