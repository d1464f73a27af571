/* log: logfmt lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *role = "orchd";
enum log_level log_threshold_ = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void log_set_role(const char *r)
{
	role = r;
}

void log_set_level(enum log_level level)
{
	log_threshold_ = level;
}

enum log_level log_get_level(void)
{
	return log_threshold_;
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_OFF; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_emit(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level < log_threshold_ || level >= LOG_OFF)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s role=%s event=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(tv.tv_usec / 1000), names[level], role, event);
	if (fmt && *fmt && n > 0 && (size_t)n < sizeof line - 2) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write per line so lines from concurrent processes do not mix. */
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
}

const char *log_quote(const char *s)
{
	static char bufs[4][256];
	static int next;
	if (!s)
		return "\"\"";
	if (*s && !strpbrk(s, " \"=\t\n\\"))
		return s;
	char *b = bufs[next++ & 3];
	size_t o = 0;
	b[o++] = '"';
	for (; *s && o < sizeof bufs[0] - 3; s++) {
		if (*s == '"' || *s == '\\') {
			b[o++] = '\\';
			b[o++] = *s;
		} else if (*s == '\n') {
			b[o++] = '\\';
			b[o++] = 'n';
		} else {
			b[o++] = *s;
		}
	}
	b[o++] = '"';
	b[o] = '\0';
	return b;
}
