/*
 * log: structured logging, one logfmt line per event on stderr:
 *   ts=2026-11-26T05:02:28.123Z level=info role=scheduler event=worker_registered worker=...
 * The module owns the level threshold and the role name; callers pass the
 * event name and any further key=value pairs as a printf-style tail, e.g.
 *   log_info("worker_registered", "worker=%s slots=%d", log_quote(id), slots);
 * Values containing spaces, quotes or '=' should be passed through
 * log_quote() first. lib/ writes to stderr only through this module.
 */
#ifndef ORCHD_LOG_H
#define ORCHD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Sets the role printed in every line; the string is borrowed and must
 * outlive all logging (a literal). */
void log_set_role(const char *role);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off". Returns 0, or -1 if the
 * name is unknown (the level is then unchanged). */
int log_parse_level(const char *name, enum log_level *out);

/* Writes one line if level passes the threshold. Call it through
 * log_at() or log_debug() and its siblings, which test the level before
 * the arguments are evaluated: a per-task debug line with log_quote()
 * arguments then costs a compare when debug is off. */
void log_emit(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The threshold, for the macros only: read it with log_get_level(). */
extern enum log_level log_threshold_;

#define log_at(level, ev, ...)                                     \
	do {                                                       \
		enum log_level log_lv_ = (level);                  \
		if (log_lv_ >= log_threshold_)                     \
			log_emit(log_lv_, ev, __VA_ARGS__);        \
	} while (0)
#define log_debug(ev, ...) log_at(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_at(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_at(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_at(LOG_ERROR, ev, __VA_ARGS__)

/* Returns s quoted for logfmt when it needs quoting, else s itself. The
 * result lives in one of a few rotating static buffers (truncated at 255
 * bytes), valid until a few more calls: use it directly in one log line. */
const char *log_quote(const char *s);

#endif
