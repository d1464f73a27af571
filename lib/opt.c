/* opt: flag and environment parsing (see opt.h). */
#include "opt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

int opt_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1}};
	char *end;
	/* Digits and one '.': strtod alone would also take leading blanks,
	 * signs (" -5s"), "nan", "inf", hex and exponents. */
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end != s + strspn(s, "0123456789."))
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) == 0) {
			double r = v * (double)units[i].ms;
			if (r > (double)INT64_MAX / 2)
				return -1;
			*ms = (int64_t)(r + 0.5);
			return 0;
		}
	}
	return -1;
}

int opt_parse_size(const char *s, size_t *out)
{
	char *end;
	/* strtoull alone would take leading blanks and a sign, and negate
	 * " -1" into a huge size. */
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end == 'B' || *end == 'i') /* 1MiB, 1MB */
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || (shift && v > (SIZE_MAX >> shift)))
		return -1;
	*out = (size_t)(v << shift);
	return 0;
}

int opt_parse_kv(const char *s, size_t *keylen, const char **value)
{
	const char *eq = s ? strchr(s, '=') : NULL;
	if (!eq || eq == s)
		return -1;
	*keylen = (size_t)(eq - s);
	*value = eq + 1;
	return 0;
}

static int set_value(const struct opt *o, const char *v, char *err, size_t errlen,
		     const char *from)
{
	char *end;
	switch (o->type) {
	case OPT_STR:
		*(const char **)o->dst = v;
		return 0;
	case OPT_INT: {
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < INT_MIN || n > INT_MAX)
			break;
		*(int *)o->dst = (int)n;
		return 0;
	}
	case OPT_DUR:
		if (opt_parse_duration(v, (int64_t *)o->dst) != 0)
			break;
		return 0;
	case OPT_SIZE:
		if (opt_parse_size(v, (size_t *)o->dst) != 0)
			break;
		return 0;
	case OPT_BOOL:
		if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
		    !strcasecmp(v, "on"))
			*(int *)o->dst = 1;
		else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
			 !strcasecmp(v, "off") || !*v)
			*(int *)o->dst = 0;
		else
			break;
		return 0;
	case OPT_LIST: {
		struct opt_list *l = o->dst;
		l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
		l->v[l->n++] = v;
		return 0;
	}
	}
	static const char *const kinds[] = {"a string", "an integer", "a duration (e.g. 500ms, 30s, 5m)",
					    "a size (e.g. 512K, 1M)", "a boolean", "a string"};
	snprintf(err, errlen, "invalid value '%s' for %s: expected %s", v, from, kinds[o->type]);
	return -1;
}

static const struct opt *find(const struct opt *opts, const char *name, size_t len)
{
	for (const struct opt *o = opts; o->name; o++)
		if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return NULL;
}

int opt_parse(const struct opt *opts, int argc, char **argv, char *err, size_t errlen)
{
	size_t nopts = 0;
	while (opts[nopts].name)
		nopts++;
	char *seen = xcalloc(nopts + 1, 1);
	int npos = 0, rv = -1, flags_done = 0;
	char from[80];
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (flags_done || a[0] != '-' || a[1] == '\0') {
			argv[npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			flags_done = 1;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			rv = OPT_HELP;
			goto out;
		}
		const char *name = a + (a[1] == '-' ? 2 : 1);
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct opt *o = find(opts, name, len);
		if (!o) {
			snprintf(err, errlen, "unknown flag '%.*s' (see --help)", (int)(len + 2), a);
			goto out;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else if (o->type == OPT_BOOL) {
			v = "1";
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			snprintf(err, errlen, "flag --%s needs a value (%s)", o->name,
				 o->arg ? o->arg : "VALUE");
			goto out;
		}
		snprintf(from, sizeof from, "--%s", o->name);
		if (set_value(o, v, err, errlen, from) != 0)
			goto out;
		seen[o - opts] = 1;
	}
	for (size_t k = 0; k < nopts; k++) {
		const struct opt *o = &opts[k];
		const char *v = o->env ? getenv(o->env) : NULL;
		if (seen[k] || !v)
			continue;
		/* A list from the environment is one entry. */
		snprintf(from, sizeof from, "$%s", o->env);
		if (set_value(o, v, err, errlen, from) != 0)
			goto out;
	}
	rv = npos;
out:
	free(seen);
	return rv;
}

void opt_usage(FILE *f, const char *cmd, const char *synopsis, const struct opt *opts)
{
	fprintf(f, "usage: orchd %s%s%s\n", cmd, synopsis && *synopsis ? " " : "",
		synopsis ? synopsis : "");
	if (!opts || !opts->name)
		return;
	fprintf(f, "\nflags (environment variable in brackets):\n");
	for (const struct opt *o = opts; o->name; o++) {
		char left[64];
		snprintf(left, sizeof left, "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		fprintf(f, "  %-26s %s", left, o->help);
		if (o->env)
			fprintf(f, " [%s]", o->env);
		fputc('\n', f);
	}
	fprintf(f, "  %-26s %s\n", "-h, --help", "show this help");
}

void opt_list_free(struct opt_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
