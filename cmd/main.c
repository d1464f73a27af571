/*
 * orchd: one executable for every role and client command. The command is
 * the name it was started under (symlinks gateway, scheduler, worker) or,
 * when started as orchd, its first argument.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

/* Sorted by name. */
static const struct command commands[] = {
	{"bench", cmd_bench, "load a gateway with tasks and report throughput and latency"},
	{"cancel", cmd_cancel, "cancel a task"},
	{"dev", cmd_dev, "run a scheduler, workers and a gateway on this machine"},
	{"gateway", cmd_gateway, "run the client-facing gateway (port 50051)"},
	{"get", cmd_get, "show one task (--json for JSON)"},
	{"health", cmd_health, "ask a server of any role whether it serves"},
	{"list", cmd_list, "list tasks, newest first"},
	{"scheduler", cmd_scheduler, "run the scheduler that owns task state (port 50052)"},
	{"submit", cmd_submit, "submit a task and print its id (--wait, --watch)"},
	{"watch", cmd_watch, "follow tasks' progress until they end"},
	{"worker", cmd_worker, "run a worker that executes tasks (port 50053)"},
	{"workers", cmd_workers, "list the workers connected to the scheduler"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: orchd COMMAND [FLAGS]   (orchd COMMAND --help for its flags)\n\n"
		   "orchd %s: a distributed task orchestrator.\n\ncommands:\n",
		ORCHD_VERSION);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "  %-10s %s\n", "version", "print the version");
	fprintf(f, "\nclient commands talk to a gateway: --gateway ADDR or ORCHD_GATEWAY\n"
		   "(default 127.0.0.1:50051).\n");
	fprintf(f, "\nexit status: 0 success, 1 failure, 2 usage error, 3 server unreachable\n");
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *c = find(basename(argv[0]));
	if (c)
		return c->fn(argc - 1, argv + 1);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("orchd %s\n", ORCHD_VERSION);
		return EXIT_OK;
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr, "orchd: unknown command '%s' (see orchd --help)\n", argv[1]);
		return EXIT_USAGE;
	}
	return c->fn(argc - 2, argv + 2);
}
