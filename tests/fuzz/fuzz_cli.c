/*
 * fuzz_cli: libFuzzer target over the command line's value parsers
 * (lib/opt.h: opt_parse_duration, opt_parse_size, opt_parse_kv; lib/task.h:
 * task_state_from_name for --status) and opt_parse itself over a fuzzed
 * argv, with one flag of each type and an environment fallback.
 *
 * The input is split at NUL bytes: the first piece goes to every value
 * parser, all pieces (at most MAXARGS) form the argv, and the last one
 * is also the value of $ORCHD_FUZZ_TIMEOUT when there are several.
 * Checks: durations are never negative and sizes never come from a
 * negative number; a parsed KEY=VALUE splits where the first '=' is; opt_parse returns OPT_HELP, -1
 * with a message, or a positional count no larger than argc whose entries are argv's own strings in
 * their order.
 *
 * Seeds: tests/fuzz/gen_corpus.py cli. Run: make fuzz-cli.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "human.h"
#include "log.h"
#include "opt.h"
#include "task.h"

#define MAXARGS 24

/* The environment entry, put once and rewritten per input: glibc's setenv
 * never frees the strings it allocates, so calling it per input would grow
 * without bound. A name other than ORCHD_FUZZ_TIMEOUT leaves it unset. */
#define ENV_NAME "ORCHD_FUZZ_TIMEOUT="
#define ENV_UNSET "ORCHD_FUZZ_UNUSEDX="
static char envbuf[sizeof ENV_NAME + 256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_OFF);
	memcpy(envbuf, ENV_UNSET, sizeof ENV_UNSET);
	putenv(envbuf);
	return 0;
}

static void values(const char *s)
{
	int64_t ms = -1;
	if (opt_parse_duration(s, &ms) == 0) {
		if (ms < 0)
			abort();
		char buf[HUMAN_BUFLEN];
		human_duration(ms, buf, sizeof buf);
		if (!memchr(buf, 0, sizeof buf))
			abort();
	}
	size_t size;
	if (opt_parse_size(s, &size) == 0 && strchr(s, '-'))
		abort();
	size_t klen;
	const char *v;
	if (opt_parse_kv(s, &klen, &v) == 0) {
		if (klen == 0 || s[klen] != '=' || memchr(s, '=', klen) || v != s + klen + 1)
			abort();
	}
	int st = task_state_from_name(s);
	if (st != -1 && (st < TASK_PENDING || st > TASK_CANCELLED))
		abort();
}

static void parse(char **argv, int argc)
{
	const char *str = NULL;
	int n = 0, flag = 0;
	int64_t dur = 0, env_dur = 0;
	size_t size = 0;
	struct opt_list list = {0};
	const struct opt opts[] = {
	    {"listen", NULL, OPT_STR, &str, "ADDR", "a string"},
	    {"slots", NULL, OPT_INT, &n, "N", "an int"},
	    {"heartbeat", NULL, OPT_DUR, &dur, "DURATION", "a duration"},
	    {"timeout", "ORCHD_FUZZ_TIMEOUT", OPT_DUR, &env_dur, "DURATION", "from env"},
	    {"max-payload", NULL, OPT_SIZE, &size, "SIZE", "a size"},
	    {"tls", NULL, OPT_BOOL, &flag, NULL, "a flag"},
	    {"label", NULL, OPT_LIST, &list, "KEY=VALUE", "a list"},
	    {NULL, NULL, 0, NULL, NULL, NULL},
	};
	char *orig[MAXARGS];
	memcpy(orig, argv, (size_t)argc * sizeof *argv);
	char err[256];
	err[0] = '\0';
	int rv = opt_parse(opts, argc, argv, err, sizeof err);
	if (rv == -1) {
		if (!err[0])
			abort();
	} else if (rv != OPT_HELP) {
		if (rv < 0 || rv > argc || dur < 0 || env_dur < 0 || list.n > (size_t)argc)
			abort();
		/* Positionals are argv's strings, in their original order. */
		int j = 0;
		for (int i = 0; i < rv; i++) {
			while (j < argc && orig[j] != argv[i])
				j++;
			if (j++ == argc)
				abort();
		}
	}
	opt_list_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A NUL-terminated copy, split at its NULs into strings. */
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	values(buf);

	char *argv[MAXARGS];
	int argc = 0;
	for (char *p = buf; p <= buf + size && argc < MAXARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	/* Set from the last word (cut to fit) when there are several. */
	snprintf(envbuf, sizeof envbuf, "%s%s", argc > 1 ? ENV_NAME : ENV_UNSET,
	         argc > 1 ? argv[argc - 1] : "");
	parse(argv, argc);
	free(buf);
	return 0;
}
