/* Unit tests for lib/frame: the message prefix and the incremental reassembler. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "frame.h"

/* Records what the reader delivered. */
struct sink {
	int n;          /* messages delivered */
	int stop_after; /* return 7 from the nth message, 0 = never */
	int compressed[16];
	size_t len[16];
	uint8_t *copy[16];      /* copies of the messages */
	const uint8_t *ptr[16]; /* where they were delivered from */
};

static int on_msg(void *arg, int compressed, const uint8_t *msg, size_t len)
{
	struct sink *s = arg;

	ck_assert_int_lt(s->n, 16);
	s->compressed[s->n] = compressed;
	s->len[s->n] = len;
	s->copy[s->n] = malloc(len ? len : 1);
	if (len)
		memcpy(s->copy[s->n], msg, len);
	s->ptr[s->n] = msg;
	s->n++;
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static void sink_free(struct sink *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->copy[i]);
}

/* Appends a framed message to buf at *off. */
static void put(uint8_t *buf, size_t *off, int compressed, const void *msg, size_t len)
{
	frame_header(buf + *off, compressed, (uint32_t)len);
	if (len)
		memcpy(buf + *off + FRAME_HEADER_LEN, msg, len);
	*off += FRAME_HEADER_LEN + len;
}

START_TEST(header_layout)
{
	uint8_t h[FRAME_HEADER_LEN];

	frame_header(h, 0, 0x01020304);
	ck_assert_mem_eq(h, "\0\1\2\3\4", 5);
	frame_header(h, 5, 0xffffffff);
	ck_assert_mem_eq(h, "\1\xff\xff\xff\xff", 5);
}
END_TEST

START_TEST(several_messages_in_one_chunk_without_copy)
{
	uint8_t buf[64];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "hello", 5);
	put(buf, &off, 1, "", 0);
	put(buf, &off, 0, "world!", 6);
	frame_reader_init(&r, 100);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), 0);
	ck_assert_int_eq(s.n, 3);
	ck_assert_uint_eq(s.len[0], 5);
	ck_assert_mem_eq(s.copy[0], "hello", 5);
	ck_assert_int_eq(s.compressed[0], 0);
	ck_assert_uint_eq(s.len[1], 0);
	ck_assert_int_eq(s.compressed[1], 1);
	ck_assert_mem_eq(s.copy[2], "world!", 6);
	/* Delivered in place from the fed chunk. */
	ck_assert_ptr_eq(s.ptr[0], buf + 5);
	ck_assert_ptr_eq(s.ptr[2], buf + 20);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	ck_assert_ptr_null(r.buf);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(byte_by_byte)
{
	uint8_t buf[64];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "abc", 3);
	put(buf, &off, 0, "", 0);
	put(buf, &off, 1, "defgh", 5);
	frame_reader_init(&r, 100);
	for (size_t i = 0; i < off; i++) {
		ck_assert_int_eq(frame_reader_feed(&r, buf + i, 1, on_msg, &s), 0);
		/* Pending counts header and body bytes held. */
		if (i == 0)
			ck_assert_uint_eq(frame_reader_pending(&r), 1);
		if (i == 5)
			ck_assert_uint_eq(frame_reader_pending(&r), 6);
	}
	ck_assert_int_eq(s.n, 3);
	ck_assert_mem_eq(s.copy[0], "abc", 3);
	ck_assert_uint_eq(s.len[1], 0);
	ck_assert_mem_eq(s.copy[2], "defgh", 5);
	ck_assert_int_eq(s.compressed[2], 1);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(every_split_point)
{
	uint8_t buf[64];
	size_t off = 0;
	struct frame_reader r;

	put(buf, &off, 0, "first", 5);
	put(buf, &off, 0, "second", 6);
	for (size_t cut = 0; cut <= off; cut++) {
		struct sink s = {0};
		frame_reader_init(&r, 100);
		ck_assert_int_eq(frame_reader_feed(&r, buf, cut, on_msg, &s), 0);
		ck_assert_int_eq(frame_reader_feed(&r, buf + cut, off - cut, on_msg, &s), 0);
		ck_assert_int_eq(s.n, 2);
		ck_assert_mem_eq(s.copy[0], "first", 5);
		ck_assert_mem_eq(s.copy[1], "second", 6);
		/* A message wholly inside the second chunk is not copied. */
		if (cut == 0 || cut == 10)
			ck_assert_ptr_eq(s.ptr[1], buf + 15);
		frame_reader_free(&r);
		sink_free(&s);
	}
}
END_TEST

START_TEST(large_message_across_many_chunks)
{
	const size_t len = 3 * 1024 * 1024 + 17;
	uint8_t *buf = malloc(len + FRAME_HEADER_LEN);
	struct sink s = {0};
	struct frame_reader r;
	size_t chunk = 16384, off;

	frame_header(buf, 0, (uint32_t)len);
	for (size_t i = 0; i < len; i++)
		buf[FRAME_HEADER_LEN + i] = (uint8_t)(i % 251);
	frame_reader_init(&r, len);
	for (off = 0; off < len + FRAME_HEADER_LEN; off += chunk) {
		size_t n =
		    len + FRAME_HEADER_LEN - off < chunk ? len + FRAME_HEADER_LEN - off : chunk;
		ck_assert_int_eq(frame_reader_feed(&r, buf + off, n, on_msg, &s), 0);
		if (off + n < len + FRAME_HEADER_LEN) {
			ck_assert_int_eq(s.n, 0);
			ck_assert_uint_eq(frame_reader_pending(&r), off + n);
			/* The buffer follows the data, not the declared length. */
			ck_assert_uint_le(r.buf_cap, 2 * (off + n) + 256);
		}
	}
	ck_assert_int_eq(s.n, 1);
	ck_assert_uint_eq(s.len[0], len);
	ck_assert_mem_eq(s.copy[0], buf + FRAME_HEADER_LEN, len);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	/* A large reassembly buffer is not kept after delivery. */
	ck_assert_ptr_null(r.buf);
	frame_reader_free(&r);
	sink_free(&s);
	free(buf);
}
END_TEST

START_TEST(max_len_is_inclusive)
{
	uint8_t buf[32];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "12345678", 8);
	frame_reader_init(&r, 8);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), 0);
	ck_assert_int_eq(s.n, 1);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(oversize_rejected_before_buffering)
{
	uint8_t buf[32];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "ok", 2);
	/* Only the header of the next message: it claims 4 GiB - 1. */
	frame_header(buf + off, 0, 0xffffffff);
	off += FRAME_HEADER_LEN;
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), E_TOOBIG);
	ck_assert_int_eq(s.n, 1);
	ck_assert_ptr_null(r.buf);
	/* The error sticks. */
	ck_assert_int_eq(frame_reader_feed(&r, buf, 2, on_msg, &s), E_TOOBIG);
	ck_assert_int_eq(s.n, 1);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(oversize_header_split_across_feeds)
{
	uint8_t h[FRAME_HEADER_LEN];
	struct sink s = {0};
	struct frame_reader r;

	frame_header(h, 0, 1025);
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, h, 3, on_msg, &s), 0);
	ck_assert_int_eq(frame_reader_feed(&r, h + 3, 2, on_msg, &s), E_TOOBIG);
	ck_assert_int_eq(s.n, 0);
	frame_reader_free(&r);
}
END_TEST

START_TEST(bad_flag_byte)
{
	uint8_t buf[32];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "ok", 2);
	put(buf, &off, 0, "x", 1);
	buf[7] = 2;
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), E_PROTO);
	ck_assert_int_eq(s.n, 1);
	frame_reader_free(&r);
	sink_free(&s);

	/* 0x80 is not "compressed" either: the flag is a whole byte. */
	s = (struct sink){0};
	frame_header(buf, 0, 1);
	buf[0] = 0x80;
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, buf, 6, on_msg, &s), E_PROTO);
	ck_assert_int_eq(s.n, 0);
	frame_reader_free(&r);
}
END_TEST

START_TEST(callback_stops_feeding)
{
	uint8_t buf[64];
	size_t off = 0;
	struct sink s = {.stop_after = 2};
	struct frame_reader r;

	put(buf, &off, 0, "a", 1);
	put(buf, &off, 0, "b", 1);
	put(buf, &off, 0, "c", 1);
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), 7);
	ck_assert_int_eq(s.n, 2);
	ck_assert_int_eq(frame_reader_feed(&r, buf, off, on_msg, &s), 7);
	ck_assert_int_eq(s.n, 2);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(pending_after_truncation)
{
	uint8_t buf[64];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "whole", 5);
	put(buf, &off, 0, "truncated", 9);
	frame_reader_init(&r, 1024);
	/* Cut 4 bytes into the second message's body. */
	ck_assert_int_eq(frame_reader_feed(&r, buf, 10 + 5 + 4, on_msg, &s), 0);
	ck_assert_int_eq(s.n, 1);
	ck_assert_uint_eq(frame_reader_pending(&r), 9);
	frame_reader_free(&r);

	/* Cut inside a header. */
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, buf, 10 + 2, on_msg, &s), 0);
	ck_assert_uint_eq(frame_reader_pending(&r), 2);
	frame_reader_free(&r);

	/* An empty feed changes nothing. */
	frame_reader_init(&r, 1024);
	ck_assert_int_eq(frame_reader_feed(&r, NULL, 0, on_msg, &s), 0);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

START_TEST(zero_length_message_completes_at_chunk_end)
{
	uint8_t buf[16];
	size_t off = 0;
	struct sink s = {0};
	struct frame_reader r;

	put(buf, &off, 0, "", 0);
	frame_reader_init(&r, 0);
	ck_assert_int_eq(frame_reader_feed(&r, buf, 2, on_msg, &s), 0);
	ck_assert_int_eq(s.n, 0);
	ck_assert_int_eq(frame_reader_feed(&r, buf + 2, 3, on_msg, &s), 0);
	ck_assert_int_eq(s.n, 1);
	ck_assert_uint_eq(s.len[0], 0);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_free(&r);
	sink_free(&s);
}
END_TEST

/* A callback that pauses after the first message: feed_part reports how
 * far it got, and the rest, fed later, yields the second message. */
static int pause_first(void *arg, int compressed, const uint8_t *msg, size_t len)
{
	int *n = arg;
	return ++*n == 1 ? FRAME_PAUSE : 0;
}

START_TEST(pause_stops_after_the_message_and_resumes)
{
	uint8_t buf[64];
	size_t off = 0, used = 0;
	put(buf, &off, 0, "abc", 3);
	put(buf, &off, 0, "de", 2);
	struct frame_reader r;
	frame_reader_init(&r, 100);
	int n = 0;
	ck_assert_int_eq(frame_reader_feed_part(&r, buf, off, pause_first, &n, &used), FRAME_PAUSE);
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(used, 5 + 3);
	ck_assert_int_eq(frame_reader_feed_part(&r, buf + used, off - used, pause_first, &n, &used),
			 0);
	ck_assert_int_eq(n, 2);
	ck_assert_uint_eq(used, 5 + 2);
	ck_assert_uint_eq(frame_reader_pending(&r), 0);
	frame_reader_free(&r);
}
END_TEST

Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");

	tcase_add_test(tc, header_layout);
	tcase_add_test(tc, several_messages_in_one_chunk_without_copy);
	tcase_add_test(tc, byte_by_byte);
	tcase_add_test(tc, every_split_point);
	tcase_add_test(tc, large_message_across_many_chunks);
	tcase_add_test(tc, max_len_is_inclusive);
	tcase_add_test(tc, oversize_rejected_before_buffering);
	tcase_add_test(tc, oversize_header_split_across_feeds);
	tcase_add_test(tc, bad_flag_byte);
	tcase_add_test(tc, callback_stops_feeding);
	tcase_add_test(tc, pending_after_truncation);
	tcase_add_test(tc, zero_length_message_completes_at_chunk_end);
	tcase_add_test(tc, pause_stops_after_the_message_and_resumes);
	suite_add_tcase(s, tc);
	return s;
}
