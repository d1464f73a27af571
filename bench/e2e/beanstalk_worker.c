/*
 * beanstalk_worker: --connections worker connections to beanstalkd, one
 * blocking thread each: reserve from tube "jobs", put the body into tube
 * "results" (the noop's result), delete the job, reserve again -- the last
 * three in one write, so a job costs the worker one round trip.
 * bench/e2e.sh runs 4 of these with 16 connections each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "xalloc.h"

static struct e2e_flags fl = {.tasks = 1, .concurrency = 1, .connections = 16};

static void *serve(void *arg)
{
	struct e2e_rd *r = xcalloc(1, sizeof *r);
	r->fd = e2e_connect(fl.port);
	static const char hello[] = "watch jobs\r\nignore default\r\nuse results\r\nreserve\r\n";
	e2e_write(r->fd, hello, sizeof hello - 1);
	e2e_line(r);
	e2e_line(r);
	e2e_line(r);
	size_t cap = 1 << 16;
	char *out = xmalloc(cap + 128);
	for (;;) {
		char *l = e2e_line(r);
		unsigned long long id;
		size_t len;
		if (sscanf(l, "RESERVED %llu %zu", &id, &len) != 2)
			e2e_die("reserve: %s", l);
		if (len > cap)
			e2e_die("job of %zu bytes is too large", len);
		int n = sprintf(out, "put 0 0 60 %zu\r\n", len);
		e2e_bytes(r, out + n, len + 2); /* the body and its CRLF */
		n += (int)len + 2;
		n += sprintf(out + n, "delete %llu\r\nreserve\r\n", id);
		e2e_write(r->fd, out, (size_t)n);
		l = e2e_line(r);
		if (strncmp(l, "INSERTED ", 9))
			e2e_die("put: %s", l);
		l = e2e_line(r);
		if (strcmp(l, "DELETED"))
			e2e_die("delete: %s", l);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	e2e_parse(argc, argv, &fl);
	pthread_t t[1024];
	if (fl.connections > 1024)
		fl.connections = 1024;
	for (int i = 0; i < fl.connections; i++)
		pthread_create(&t[i], NULL, serve, NULL);
	for (int i = 0; i < fl.connections; i++)
		pthread_join(t[i], NULL);
	return 0;
}
