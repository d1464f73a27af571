/*
 * fuzz_progress: libFuzzer target over the worker's progress-line parser
 * (lib/handler.h handler_parse_progress), which reads whatever a task's
 * handler writes, and the UTF-8 functions the message then meets on its
 * way to a terminal (lib/utf8.h: the client's progress bar and tables).
 *
 * The input is one line, parsed with message buffers of several sizes
 * (none, one byte, short, long). On success: 0 <= percent <= 100, the
 * message is NUL-terminated inside its buffer and, when not truncated,
 * has no surrounding blanks and matches the bytes after the number. The
 * UTF-8 helpers must agree with each other: utf8_fit never returns more
 * bytes than asked nor more columns than allowed, and never splits a
 * valid sequence.
 *
 * Seeds: tests/fuzz/gen_corpus.py progress. Run: make fuzz-progress.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "log.h"
#include "utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_OFF);
	return 0;
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

static void parse(const char *line, size_t len, size_t msglen)
{
	/* Exactly msglen bytes, so that a write past it is caught. */
	char *msg = msglen ? malloc(msglen) : NULL;
	int pct = -1;
	if (handler_parse_progress(line, len, &pct, msg, msglen) == 0) {
		if (pct < 0 || pct > 100)
			abort();
		if (msglen) {
			size_t n = strnlen(msg, msglen);
			if (n == msglen)
				abort(); /* not terminated */
			/* Untruncated messages are trimmed, and are what the line
			 * holds (the message never contains a NUL of its own
			 * unless the line did). */
			if (n + 1 < msglen && n && (blank(msg[0]) || blank(msg[n - 1])) &&
			    !memchr(line, 0, len))
				abort();
			if (n && !memmem(line, len, msg, n))
				abort();
		}
	}
	free(msg);
}

static void text(const char *s, size_t n)
{
	int valid = utf8_valid(s, n);
	size_t cols = utf8_cols(s, n);
	if (cols > 2 * n)
		abort();
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		int k = utf8_decode(s + i, n - i, &cp);
		if (k == 0 || k > 4 || (k > 0 && (size_t)k > n - i))
			abort();
		if (k < 0) {
			if (valid)
				abort();
			k = 1;
		} else if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
			abort();
		}
		i += (size_t)k;
	}
	for (size_t want = 0; want < 12; want += 3) {
		size_t keep = utf8_fit(s, n, want);
		if (keep > n || utf8_cols(s, keep) > want)
			abort();
		/* The kept prefix of valid text is valid: nothing split. */
		if (valid && !utf8_valid(s, keep))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	static const size_t sizes[] = {0, 1, 8, 512};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		parse(line, size, sizes[i]);
	text(line, size);
	return 0;
}
