/*
 * handler: what runs a task on a worker. The module owns the registry of
 * handlers -- the built-ins noop, echo, sleep, fail and sha256, and exec
 * handlers declared as "NAME=COMMAND" -- and one run per task: its
 * timeout, its cancellation and, for an exec handler, its child process
 * (the payload written to stdin, stdout collected as the output up to a
 * cap, the tail of stderr as the error, progress lines read from file
 * descriptor 3, the child's own process group killed on timeout or cancel,
 * and reaping through the event loop on SIGCHLD).
 *
 * It does not own the scheduler stream, slots or the wire form; those are
 * cmd/worker.c's. Nothing here blocks the loop, and no callback runs from
 * inside a call into this module: results are always delivered from the
 * loop. The caller must ignore SIGPIPE (role_init does), as a child may
 * close its stdin before reading the whole payload.
 */
#ifndef ORCHD_HANDLER_H
#define ORCHD_HANDLER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct handler_set;
struct handler_run;

/* How a run ended. Values equal orchestrator.v1.TaskStatus (and enum
 * task_state), so converting is a cast. */
enum handler_status {
	HANDLER_COMPLETED = 3,
	HANDLER_FAILED = 4,
	HANDLER_CANCELLED = 5,
};

/* A run reports progress: pct 0..100, msg borrowed (never NULL, maybe "",
 * valid UTF-8). Return 0. */
typedef int (*handler_progress_cb)(int pct, const char *msg, void *arg);
/* A run ended: output (len bytes; COMPLETED, or what an exec child wrote
 * before it failed) and error (never NULL; "" on success, else valid
 * UTF-8) are borrowed for the call. The run is freed when it returns.
 * Return 0. */
typedef int (*handler_done_cb)(enum handler_status status, const uint8_t *output, size_t len,
			       const char *error, void *arg);

struct handler_cbs {
	handler_progress_cb on_progress; /* may be NULL */
	handler_done_cb on_done;
};

struct handler_opts {
	size_t max_output; /* output cap in bytes; 0: 1 MiB */
	int kill_grace_ms; /* SIGTERM to SIGKILL on timeout/cancel; 0: 2000 */
	/* Limits set on each exec child before it runs (setrlimit): address
	 * space in bytes (RLIMIT_AS) and CPU time (RLIMIT_CPU, rounded up to
	 * whole seconds; past it SIGXCPU, a second later SIGKILL). 0: none. */
	size_t rlimit_as;
	int64_t rlimit_cpu_ms;
};

/* The built-in handlers, in registration order. */
extern const char *const handler_builtins[];

/* Creates an empty registry whose runs use base (borrowed; it must outlive
 * the set). opts copied; NULL for the defaults. Free with
 * handler_set_del(). */
struct handler_set *handler_set_new(struct event_base *base, const struct handler_opts *opts);
/* Frees the set. Runs still going end without callbacks: their children's
 * process groups get SIGKILL. NULL: no-op. */
void handler_set_del(struct handler_set *set);

/* Registers built-ins: list is "all" (or NULL), "none", or a
 * comma-separated list of names from handler_builtins. Returns 0; -EINVAL
 * with a message in err for an unknown name; -EEXIST if one is already
 * registered. */
int handler_set_add_builtins(struct handler_set *set, const char *list, char *err, size_t errlen);
/* Registers an exec handler from spec "NAME=COMMAND" (borrowed; copied).
 * COMMAND is split into argv by handler_split_argv() and run without a
 * shell, searched in PATH when it has no '/'. Returns 0; -EINVAL with a
 * message in err for a malformed spec; -EEXIST when NAME is taken. */
int handler_set_add_exec(struct handler_set *set, const char *spec, char *err, size_t errlen);
/*
 * An exec child's environment is clean: it holds PATH (the worker's, or
 * "/usr/local/bin:/usr/bin:/bin" when the worker has none), ORCHD_TASK_ID,
 * ORCHD_TASK_NAME and what this function adds, nothing else -- so the
 * worker's own secrets (a token file's path, credentials in its
 * environment) never reach a task. entry (borrowed; copied) is "NAME",
 * which passes the worker's NAME through if it is set, or "NAME=VALUE".
 * Returns 0; -EINVAL with a message in err when NAME is not a valid name
 * ([A-Za-z_][A-Za-z0-9_]*) or is one of ORCHD_TASK_ID and ORCHD_TASK_NAME.
 */
int handler_set_add_env(struct handler_set *set, const char *entry, char *err, size_t errlen);

/* The number of registered handlers and their names, in registration
 * order (borrowed from the set). */
size_t handler_set_count(const struct handler_set *set);
const char *handler_set_name(const struct handler_set *set, size_t i);
/* Whether a handler called name is registered. */
int handler_set_has(const struct handler_set *set, const char *name);

/*
 * Starts handler `name` for a task; task_id, name and payload are copied.
 * timeout_ms > 0 limits the run: past it the run ends FAILED "timeout
 * after N ms" (an exec child gets SIGTERM, then SIGKILL after the grace).
 * cbs is copied, arg borrowed until on_done, which runs exactly once,
 * from the loop. An exec child runs in its own process group, with the
 * environment handler_set_add_env() describes and the limits of
 * handler_opts; it is never started through a shell. Returns the run (owned by the set, valid until on_done
 * returns), or NULL with *err = -ENOENT when no handler has that name.
 * A child that cannot be started ends FAILED with the reason.
 */
struct handler_run *handler_start(struct handler_set *set, const char *task_id, const char *name,
				  const void *payload, size_t len, int64_t timeout_ms,
				  const struct handler_cbs *cbs, void *arg, int *err);

/* Asks a run to stop; it ends CANCELLED with reason (copied; NULL for
 * "cancelled") as the error, from the loop -- or with its own result if
 * it had already finished. An exec child gets SIGTERM, then SIGKILL. */
void handler_cancel(struct handler_run *run, const char *reason);

/* How many runs are going: a run stops counting when its on_done starts. */
size_t handler_set_running(const struct handler_set *set);

/*
 * Parses one progress line "PERCENT [message]" (len bytes, borrowed; a
 * trailing "\n" or "\r\n" allowed): optional leading blanks, an integer
 * 0..100 (a fraction is accepted and dropped, as is a '%' right after the
 * number), then the end or blanks and the message. The message is copied
 * into msg (msglen bytes, NUL-terminated, truncated, surrounding blanks
 * trimmed; msg may be NULL when msglen is 0). Returns 0, or -EINVAL when
 * the line is not a progress line or the percentage is out of range.
 */
int handler_parse_progress(const char *line, size_t len, int *pct, char *msg, size_t msglen);

/*
 * Splits command into argv the way a shell would split plain words,
 * without any expansion: blanks separate words; '...' quotes literally;
 * "..." quotes with \" and \\ as escapes; a backslash outside quotes
 * escapes the next character. Returns the word count (> 0) and sets *argv
 * to a NULL-terminated array freed with handler_argv_free(); -EINVAL for an
 * empty command or an unterminated quote.
 */
int handler_split_argv(const char *command, char ***argv);
void handler_argv_free(char **argv);

#endif
