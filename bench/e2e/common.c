/* common: shared plumbing of the end-to-end peers (see common.h). */
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t e2e_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void e2e_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void e2e_parse(int argc, char **argv, struct e2e_flags *f)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s needs a value\n", argv[0], a);
			exit(2);
		}
		long v = strtol(argv[++i], NULL, 10);
		if (!strcmp(a, "--port"))
			f->port = (int)v;
		else if (!strcmp(a, "--tasks"))
			f->tasks = v;
		else if (!strcmp(a, "--concurrency"))
			f->concurrency = (int)v;
		else if (!strcmp(a, "--connections"))
			f->connections = (int)v;
		else if (!strcmp(a, "--payload-size"))
			f->payload_size = (size_t)v;
		else {
			fprintf(stderr, "%s: unknown flag %s\n", argv[0], a);
			exit(2);
		}
	}
	if (f->port <= 0 || f->tasks < 1 || f->concurrency < 1 || f->connections < 1) {
		fprintf(stderr,
		        "%s: --port, --tasks, --concurrency, --connections must be positive\n",
		        argv[0]);
		exit(2);
	}
}

void e2e_report(const char *system, long tasks, int64_t t0_us, int64_t t_end_us, struct stats *lat,
                long failed, int concurrency)
{
	double secs = (double)(t_end_us - t0_us) / 1e6;
	printf("{\"system\": \"%s\", \"tasks\": %ld, \"seconds\": %.6f, \"tasks_per_s\": %.1f, "
	       "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
	       "\"completed\": %ld, \"failed\": %ld, \"concurrency\": %d}\n",
	       system, tasks, secs, secs > 0 ? (double)tasks / secs : 0.0,
	       (double)stats_percentile(lat, 50) / 1000, (double)stats_percentile(lat, 90) / 1000,
	       (double)stats_percentile(lat, 99) / 1000, (double)stats_max(lat) / 1000,
	       tasks - failed, failed, concurrency);
	fflush(stdout);
}

int e2e_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		e2e_die("connect 127.0.0.1:%d: %s", port, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

void e2e_fill(struct e2e_rd *r)
{
	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len == sizeof r->buf)
		e2e_die("line longer than %zu bytes", sizeof r->buf);
	ssize_t n;
	do
		n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		e2e_die("connection closed by the server%s%s", n < 0 ? ": " : "",
		        n < 0 ? strerror(errno) : "");
	r->len += (size_t)n;
}

int e2e_has_line(const struct e2e_rd *r)
{
	return memchr(r->buf + r->off, '\n', r->len - r->off) != NULL;
}

char *e2e_line(struct e2e_rd *r)
{
	for (;;) {
		char *p = r->buf + r->off;
		char *nl = memchr(p, '\n', r->len - r->off);
		if (nl) {
			*nl = '\0';
			if (nl > p && nl[-1] == '\r')
				nl[-1] = '\0';
			r->off = (size_t)(nl + 1 - r->buf);
			return p;
		}
		e2e_fill(r);
	}
}

void e2e_bytes(struct e2e_rd *r, void *out, size_t n)
{
	while (n) {
		if (r->off == r->len)
			e2e_fill(r);
		size_t k = r->len - r->off < n ? r->len - r->off : n;
		if (out) {
			memcpy(out, r->buf + r->off, k);
			out = (char *)out + k;
		}
		r->off += k;
		n -= k;
	}
}

void e2e_write(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			e2e_die("write: %s", strerror(errno));
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}
