/*
 * beanstalk_client: the end-to-end workload on beanstalkd, over its raw
 * text protocol. One connection puts jobs into tube "jobs" (body: the
 * job's index), keeping --concurrency in flight; another reserves from
 * tube "results", where a worker puts each finished job's body back, and
 * deletes what it reserved. A job is complete when its result is
 * reserved; the next put goes out at once. Both connections are pipelined
 * and driven by poll(), so the client never waits on one while the other
 * has news. Prints the common report (common.h).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "xalloc.h"

static struct e2e_flags fl = {.tasks = 20000, .concurrency = 64, .connections = 1};
static int64_t *submit_us;
static long started, done, inserted;
static int64_t t0, t_end;
static struct stats lat;
static int put_fd;
static char *pad; /* payload filler after the index */

/* Queues puts until --concurrency are in flight (one write). */
static void launch(void)
{
	char buf[16384];
	size_t n = 0;
	while (started - done < fl.concurrency && started < fl.tasks &&
	       n + 128 + fl.payload_size < sizeof buf) {
		long i = started++;
		char body[32];
		int bl = snprintf(body, sizeof body, "%ld", i);
		size_t len = (size_t)bl + fl.payload_size;
		submit_us[i] = e2e_now_us();
		if (!t0)
			t0 = submit_us[i];
		n += (size_t)sprintf(buf + n, "put 0 0 60 %zu\r\n%s", len, body);
		memcpy(buf + n, pad, fl.payload_size);
		n += fl.payload_size;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
	}
	if (n)
		e2e_write(put_fd, buf, n);
}

int main(int argc, char **argv)
{
	e2e_parse(argc, argv, &fl);
	if (fl.payload_size > 8192)
		e2e_die("--payload-size at most 8192");
	stats_init(&lat);
	submit_us = xcalloc((size_t)fl.tasks, sizeof *submit_us);
	pad = xcalloc(fl.payload_size + 1, 1);
	memset(pad, 'x', fl.payload_size);
	static struct e2e_rd p, r;
	p.fd = put_fd = e2e_connect(fl.port);
	r.fd = e2e_connect(fl.port);
	e2e_write(p.fd, "use jobs\r\n", 10);
	if (strcmp(e2e_line(&p), "USING jobs"))
		e2e_die("use jobs: unexpected answer");
	static const char w[] = "watch results\r\nignore default\r\nreserve\r\n";
	e2e_write(r.fd, w, sizeof w - 1);
	if (strncmp(e2e_line(&r), "WATCHING", 8) || strncmp(e2e_line(&r), "WATCHING", 8))
		e2e_die("watch results: unexpected answer");
	launch();
	while (done < fl.tasks) {
		struct pollfd pf[2] = {{.fd = p.fd, .events = POLLIN},
		                       {.fd = r.fd, .events = POLLIN}};
		if (!e2e_has_line(&p) && !e2e_has_line(&r) && poll(pf, 2, 60000) <= 0)
			e2e_die("no answer from beanstalkd within 60 s");
		if (pf[0].revents)
			e2e_fill(&p);
		if (pf[1].revents)
			e2e_fill(&r);
		while (e2e_has_line(&p)) {
			char *l = e2e_line(&p);
			if (strncmp(l, "INSERTED ", 9))
				e2e_die("put: %s", l);
			inserted++;
		}
		char cmd[64];
		size_t cn = 0;
		while (e2e_has_line(&r)) {
			char *l = e2e_line(&r);
			unsigned long long id;
			size_t len;
			if (!strcmp(l, "DELETED"))
				continue;
			if (sscanf(l, "RESERVED %llu %zu", &id, &len) != 2)
				e2e_die("reserve: %s", l);
			char body[32] = "";
			size_t take = len < 31 ? len : 31;
			e2e_bytes(&r, body, take);
			e2e_bytes(&r, NULL, len - take + 2);
			long i = strtol(body, NULL, 10);
			int64_t now = e2e_now_us();
			if (i < 0 || i >= started)
				e2e_die("result for unknown job %ld", i);
			stats_add(&lat, now - submit_us[i]);
			if (++done == fl.tasks)
				t_end = now;
			cn = (size_t)snprintf(cmd, sizeof cmd, "delete %llu\r\n%s", id,
			                      done < fl.tasks ? "reserve\r\n" : "");
			e2e_write(r.fd, cmd, cn);
			launch();
		}
	}
	e2e_report("beanstalkd", fl.tasks, t0, t_end, &lat, 0, fl.concurrency);
	return 0;
}
