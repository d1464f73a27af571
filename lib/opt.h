/*
 * opt: command-line flags and their environment variables, declared once
 * in a table per command. The module owns parsing (--name VALUE,
 * --name=VALUE, repeated flags for lists, "--" to end flags), the
 * precedence rule (flag over environment over the default already in the
 * destination), the value syntaxes (durations "500ms" "30s" "5m" "2h" "7d",
 * sizes "64", "512K", "1M", "1G") and the help text. It prints nothing
 * itself: errors come back in a buffer and usage goes to a FILE the
 * caller chooses.
 */
#ifndef ORCHD_OPT_H
#define ORCHD_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum opt_type {
	OPT_STR,  /* const char **: points into argv/environ (not copied) */
	OPT_INT,  /* int * */
	OPT_DUR,  /* int64_t *, milliseconds */
	OPT_SIZE, /* size_t *, bytes */
	OPT_BOOL, /* int *: a flag without a value; env "1"/"true"/"yes" */
	OPT_LIST, /* struct opt_list *: every occurrence appended */
};

struct opt_list {
	const char **v; /* xmalloc'd array of borrowed strings */
	size_t n;
};

struct opt {
	const char *name; /* flag without the leading "--" */
	const char *env;  /* environment variable, or NULL */
	enum opt_type type;
	void *dst;
	const char *arg;  /* value's name in help, e.g. "ADDR" */
	const char *help; /* one line */
};

/* Returned by opt_parse for --help / -h. */
#define OPT_HELP (-2)

/*
 * Parses argv[0..argc) (argv[0] is the first argument, not the command)
 * against opts, a table ended by an entry with name NULL, then fills what
 * the flags left unset from the environment. Positional arguments are
 * moved, in order, to the front of argv. Returns their count, OPT_HELP,
 * or -1 with a message in err.
 */
int opt_parse(const struct opt *opts, int argc, char **argv, char *err, size_t errlen);

/* Writes "usage: orchd CMD SYNOPSIS", then one line per flag with its
 * environment variable and help. */
void opt_usage(FILE *f, const char *cmd, const char *synopsis, const struct opt *opts);

/* Returns 0 and sets *ms, or -1 if s is not a duration. A bare number is
 * milliseconds. */
int opt_parse_duration(const char *s, int64_t *ms);
/* Returns 0 and sets *out, or -1. */
int opt_parse_size(const char *s, size_t *out);
/* Splits "KEY=VALUE" (a --label flag) at its first '='. Returns 0 and sets
 * *keylen and *value (pointing into s, borrowed), or -1 when there is no
 * '=' or KEY is empty. VALUE may be empty and may contain '='. */
int opt_parse_kv(const char *s, size_t *keylen, const char **value);

void opt_list_free(struct opt_list *l);

#endif
