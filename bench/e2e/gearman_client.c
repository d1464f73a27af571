/*
 * gearman_client: the end-to-end workload on gearmand. Submits --tasks
 * foreground "noop" jobs through libgearman's task API, keeping
 * --concurrency in flight (the complete callback adds the next job, so a
 * new one starts as soon as one finishes), and prints the common report
 * (common.h): throughput from the first submit to the last completion,
 * submit->complete percentiles.
 */
#include <libgearman/gearman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "xalloc.h"

static gearman_client_st *client;
static struct e2e_flags fl = {.tasks = 20000, .concurrency = 64, .connections = 1};
static int64_t *submit_us; /* per job */
static long started, done, failed;
static int64_t t0, t_end;
static struct stats lat;
static char *payload;

static void add(void)
{
	gearman_return_t ret;
	long i = started++;
	submit_us[i] = e2e_now_us();
	if (!t0)
		t0 = submit_us[i];
	/* The context carries the job's index; NULL unique: libgearman makes
	 * one, so no two jobs are coalesced. */
	if (!gearman_client_add_task(client, NULL, (void *)(intptr_t)i, "noop", NULL,
	                             fl.payload_size ? payload : NULL, fl.payload_size, &ret))
		e2e_die("gearman_client_add_task: %s", gearman_client_error(client));
}

static void ended(gearman_task_st *task, int ok)
{
	long i = (long)(intptr_t)gearman_task_context(task);
	int64_t now = e2e_now_us();
	stats_add(&lat, now - submit_us[i]);
	if (!ok)
		failed++;
	if (++done == fl.tasks)
		t_end = now;
	if (started < fl.tasks)
		add();
}

static gearman_return_t complete(gearman_task_st *task)
{
	ended(task, 1);
	return GEARMAN_SUCCESS;
}

static gearman_return_t fail(gearman_task_st *task)
{
	ended(task, 0);
	return GEARMAN_SUCCESS;
}

int main(int argc, char **argv)
{
	e2e_parse(argc, argv, &fl);
	stats_init(&lat);
	submit_us = xcalloc((size_t)fl.tasks, sizeof *submit_us);
	payload = xcalloc(fl.payload_size + 1, 1);
	memset(payload, 'x', fl.payload_size);
	client = gearman_client_create(NULL);
	if (!client ||
	    gearman_client_add_server(client, "127.0.0.1", (in_port_t)fl.port) != GEARMAN_SUCCESS)
		e2e_die("gearman client set-up failed");
	gearman_client_add_options(client, GEARMAN_CLIENT_FREE_TASKS);
	gearman_client_set_complete_fn(client, complete);
	gearman_client_set_fail_fn(client, fail);
	for (int k = 0; k < fl.concurrency && started < fl.tasks; k++)
		add();
	while (done < fl.tasks) {
		gearman_return_t ret = gearman_client_run_tasks(client);
		if (ret != GEARMAN_SUCCESS)
			e2e_die("gearman_client_run_tasks: %s", gearman_client_error(client));
	}
	e2e_report("gearmand", fl.tasks, t0, t_end, &lat, failed, fl.concurrency);
	gearman_client_free(client);
	return failed ? 1 : 0;
}
