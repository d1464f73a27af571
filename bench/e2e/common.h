/*
 * common: what the end-to-end benchmark's peer clients and workers share
 * (bench/e2e.sh builds them): the clock, flag parsing, a buffered
 * blocking line reader for text protocols, and the one report every
 * client prints -- the same JSON object as `orchd bench --json`, with the
 * same percentile code (lib/stats.c), so the systems are measured alike.
 */
#ifndef BENCH_E2E_COMMON_H
#define BENCH_E2E_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

/* Microseconds on the monotonic clock. */
int64_t e2e_now_us(void);

/* Flags: --port N --tasks N --concurrency N --connections N --payload-size
 * B; unknown ones exit 2. Fields keep their defaults when not given. */
struct e2e_flags {
	int port;
	long tasks;
	int concurrency;
	int connections;
	size_t payload_size;
};
void e2e_parse(int argc, char **argv, struct e2e_flags *f);

/* Prints {"system", "tasks", "seconds", "tasks_per_s", "p50_ms", "p90_ms",
 * "p99_ms", "max_ms", "completed", "failed", "concurrency"} on stdout;
 * lat holds submit->complete in microseconds. */
void e2e_report(const char *system, long tasks, int64_t t0_us, int64_t t_end_us, struct stats *lat,
                long failed, int concurrency);

/* Connects a TCP socket to 127.0.0.1:port with TCP_NODELAY; exits on
 * failure. */
int e2e_connect(int port);

/* A buffered reader over a blocking socket. */
struct e2e_rd {
	int fd;
	size_t off, len;
	char buf[65536];
};
/* Returns the next line without its CRLF (NUL-terminated, valid until the
 * next call); exits when the peer closes. */
char *e2e_line(struct e2e_rd *r);
/* Reads exactly n bytes into out (skips them when out is NULL). */
void e2e_bytes(struct e2e_rd *r, void *out, size_t n);
/* Whether a whole line is buffered (no read needed). */
int e2e_has_line(const struct e2e_rd *r);
/* Reads once from the socket into the buffer (after poll says
 * readable); exits when the peer closes. */
void e2e_fill(struct e2e_rd *r);
/* Writes all of p; exits on error. */
void e2e_write(int fd, const void *p, size_t n);

/* Prints "NAME: message" and exits 1. */
void e2e_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
