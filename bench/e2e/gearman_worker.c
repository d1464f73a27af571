/*
 * gearman_worker: --connections worker connections to gearmand, one
 * thread each (libgearman's worker is blocking), all serving the "noop"
 * function, which returns an empty result at once. bench/e2e.sh runs 4 of
 * these with 16 connections each, as orchd runs 4 workers with 16 slots.
 */
#include <libgearman/gearman.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static struct e2e_flags fl = {.tasks = 1, .concurrency = 1, .connections = 16};

static gearman_return_t noop(gearman_job_st *job, void *context)
{
	return GEARMAN_SUCCESS;
}

static void *serve(void *arg)
{
	gearman_worker_st *w = gearman_worker_create(NULL);
	if (!w || gearman_worker_add_server(w, "127.0.0.1", (in_port_t)fl.port) != GEARMAN_SUCCESS)
		e2e_die("gearman worker set-up failed");
	gearman_function_t fn = gearman_function_create(noop);
	if (gearman_worker_define_function(w, "noop", 4, fn, 0, NULL) != GEARMAN_SUCCESS)
		e2e_die("gearman_worker_define_function: %s", gearman_worker_error(w));
	for (;;) {
		gearman_return_t ret = gearman_worker_work(w);
		if (ret != GEARMAN_SUCCESS && ret != GEARMAN_IO_WAIT && ret != GEARMAN_NO_JOBS)
			e2e_die("gearman_worker_work: %s", gearman_worker_error(w));
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
