/*
 * frame: gRPC's Length-Prefixed-Message framing, the layer between HTTP/2
 * DATA bytes and protobuf messages: a 1-byte compressed flag, a 4-byte
 * big-endian length, then the message. This module owns the header format
 * and the reassembly of messages from arbitrarily split DATA chunks; it
 * does no I/O and does not decompress (gz.h) or decode protobuf.
 */
#ifndef ORCHD_FRAME_H
#define ORCHD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 5

/* Writes the 5-byte prefix for a message of len bytes; compressed is
 * treated as a boolean. */
void frame_header(uint8_t out[FRAME_HEADER_LEN], int compressed, uint32_t len);

/* Called once per complete message. msg is borrowed for the duration of
 * the call only (it points into the fed chunk or the reader's buffer).
 * Returns 0 to go on, nonzero to stop feeding; that value is passed back
 * from frame_reader_feed(). */
typedef int (*frame_msg_cb)(void *arg, int compressed, const uint8_t *msg, size_t len);

/* Incremental reassembler. A message lying wholly inside one fed chunk is
 * delivered straight from the chunk, without copying; only a message split
 * across feeds is accumulated in buf, which grows with the bytes actually
 * received (never beyond max_len), so a header that merely claims a large
 * length costs nothing. Embed it; use the functions, not the fields. */
struct frame_reader {
	size_t max_len;                /* largest message accepted */
	uint8_t hdr[FRAME_HEADER_LEN]; /* header of the current message */
	size_t hdr_have;               /* header bytes held, 0..5 */
	int compressed;                /* flag of the current message */
	size_t msg_len;                /* its length, once hdr_have == 5 */
	uint8_t *buf;                  /* body of a split message */
	size_t buf_have, buf_cap;
	int err; /* sticky error, 0 if none */
};

void frame_reader_init(struct frame_reader *r, size_t max_len);
/* Releases the buffer; the reader may be initialised again. */
void frame_reader_free(struct frame_reader *r);

/* Feeds len bytes (borrowed) and calls cb for every message they complete,
 * in order. Returns 0 when all bytes were consumed; E_TOOBIG as soon as a
 * header declares a length above max_len (before any of the body is
 * buffered); E_PROTO if a flag byte is neither 0 nor 1; or the nonzero
 * value cb returned, with feeding stopped right after that message. After
 * any nonzero return the stream is out of sync: the reader must not be fed
 * again, and if it is it keeps returning the same value. */
int frame_reader_feed(struct frame_reader *r, const uint8_t *data, size_t len, frame_msg_cb cb,
                      void *arg);

/* Returns the bytes (header and body) of an incomplete message held. A
 * nonzero value at the end of the stream means the peer truncated a
 * message. */
/* A callback's return value asking feed_part to stop after this message
 * and report how far it got; not an error, the reader stays usable. */
#define FRAME_PAUSE 0x7fff

/* As frame_reader_feed, and a callback may return FRAME_PAUSE: feeding
 * stops, FRAME_PAUSE is returned and *used (may be NULL only if no
 * callback pauses) holds the bytes consumed; the caller feeds the rest
 * later. Otherwise *used is len. */
int frame_reader_feed_part(struct frame_reader *r, const uint8_t *data, size_t len,
			   frame_msg_cb cb, void *arg, size_t *used);

size_t frame_reader_pending(const struct frame_reader *r);

#endif
