/* handler: built-in and exec task handlers (see handler.h). */
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "dlist.h"
#include "log.h"
#include "utf8.h"
#include "xalloc.h"

#define DEFAULT_MAX_OUTPUT (1u << 20)
#define DEFAULT_KILL_GRACE_MS 2000
/* The error of a failed child is the end of its stderr. */
#define STDERR_TAIL 1024
/* Longer progress lines are cut here; the rest of the line is skipped. */
#define PROGRESS_LINE_MAX 1024
#define READ_CHUNK 65536
/* PATH of an exec child when the worker has none (execvp's own default
 * would include the current directory on some systems). */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

const char *const handler_builtins[] = {"noop", "echo", "sleep", "fail", "sha256", NULL};

enum kind { K_NOOP, K_ECHO, K_SLEEP, K_FAIL, K_SHA256, K_EXEC };

struct handler {
	char *name;
	enum kind kind;
	char **argv; /* K_EXEC */
};

struct handler_set {
	struct event_base *base;
	struct handler_opts opts;
	struct handler *v;
	size_t n;
	struct event *sigchld; /* created with the first child */
	struct handler_run *runs;
	size_t nruns;
	/* Runs whose outcome is decided, oldest first: one event delivers
	 * them from the loop, so a run needs no event of its own to end. */
	struct handler_run *done_head, **done_tail;
	struct event *deliver_ev; /* made with the first run */
	int delivering; /* deliver_cb is running */
	int doomed;	/* handler_set_del was called meanwhile: deliver_cb frees */
	char **env; /* "NAME=VALUE" each exec child gets, xmalloc'd */
	size_t nenv;
	pid_t pid; /* the worker's, for children to check their parent */
};

/* Why an exec child is being stopped; the first reason wins. */
enum why { WHY_NONE, WHY_TIMEOUT, WHY_CANCEL, WHY_OVERFLOW };

/* What only an exec run needs, allocated when its child is started: a
 * built-in run does without these two kilobytes of buffers. */
struct child {
	pid_t pid;
	int reaped;
	int wstatus;
	int fd_in, fd_out, fd_err, fd_prog;
	struct event *ev_in, *ev_out, *ev_err, *ev_prog;
	size_t in_off;
	char errtail[STDERR_TAIL];
	size_t errtail_len;
	char line[PROGRESS_LINE_MAX];
	size_t line_len;
	enum why why;
	char *cancel_reason;
	struct event *kill_ev;
};

struct handler_run {
	struct handler_set *set;
	struct handler_run *next, *prev;
	struct handler_run *done_next; /* in the set's delivery queue */
	enum kind kind;
	char **argv; /* borrowed from the handler, which the set never frees early */
	const char *task_id; /* these three point into mem */
	const char *name;
	const uint8_t *payload;
	size_t payload_len;
	struct handler_cbs cbs;
	void *arg;
	int64_t timeout_ms;
	struct event *timeout_ev; /* made only for a run still going after its start */
	int ended;		  /* outcome decided, delivery pending */
	enum handler_status status;
	char *error;
	uint8_t *out; /* output */
	size_t out_len, out_cap;

	/* sleep */
	struct event *tick_ev;
	struct timespec t0;
	int64_t sleep_ms;
	int step;

	struct child *x; /* exec, once started */
	char mem[];	 /* task id, name and payload: one allocation per run */
};

/* ---- small helpers ------------------------------------------------------ */

/* Replaces bytes that are not valid UTF-8 with '?', in place: errors and
 * messages travel in protobuf strings, which must be UTF-8. */
static void utf8_clean(char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int k = utf8_decode(s + i, n - i, &cp);
		if (k < 0) {
			s[i++] = '?';
			continue;
		}
		i += (size_t)k;
	}
}

static int64_t elapsed_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static struct timeval tv_ms(int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	return tv;
}

static void close_fd(int *fd, struct event **ev)
{
	if (*ev) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* ---- argv and progress lines -------------------------------------------- */

int handler_split_argv(const char *s, char ***argv_out)
{
	size_t len = strlen(s), n = 0;
	char **argv = xcalloc(len / 2 + 2, sizeof *argv);
	char *word = xmalloc(len + 1);
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		size_t w = 0;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
			if (*p == '\'') {
				const char *q = strchr(p + 1, '\'');
				if (!q)
					goto bad;
				memcpy(word + w, p + 1, (size_t)(q - p - 1));
				w += (size_t)(q - p - 1);
				p = q + 1;
			} else if (*p == '"') {
				for (p++; *p != '"'; p++) {
					if (!*p)
						goto bad;
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					word[w++] = *p;
				}
				p++;
			} else if (*p == '\\' && p[1]) {
				word[w++] = p[1];
				p += 2;
			} else {
				word[w++] = *p++;
			}
		}
		argv[n++] = xstrndup(word, w);
	}
	free(word);
	if (n == 0) {
		free(argv);
		return -EINVAL;
	}
	*argv_out = argv;
	return (int)n;
bad:
	free(word);
	handler_argv_free(argv);
	return -EINVAL;
}

void handler_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

int handler_parse_progress(const char *line, size_t len, int *pct, char *msg, size_t msglen)
{
	const char *p = line, *end = line + len;
	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;
	while (p < end && blank(*p))
		p++;
	if (p == end || *p < '0' || *p > '9')
		return -EINVAL;
	int v = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (v <= 100)
			v = v * 10 + (*p - '0');
		p++;
	}
	if (p < end && *p == '.') {
		p++;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && *p == '%')
		p++;
	if (p < end && !blank(*p))
		return -EINVAL;
	if (v > 100)
		return -EINVAL;
	while (p < end && blank(*p))
		p++;
	while (end > p && blank(end[-1]))
		end--;
	*pct = v;
	if (msglen) {
		size_t n = (size_t)(end - p);
		if (n > msglen - 1)
			n = msglen - 1;
		memcpy(msg, p, n);
		msg[n] = '\0';
	}
	return 0;
}

/* ---- the registry -------------------------------------------------------- */

struct handler_set *handler_set_new(struct event_base *base, const struct handler_opts *opts)
{
	struct handler_set *set = xcalloc(1, sizeof *set);
	set->base = base;
	set->pid = getpid();
	if (opts)
		set->opts = *opts;
	if (!set->opts.max_output)
		set->opts.max_output = DEFAULT_MAX_OUTPUT;
	if (set->opts.kill_grace_ms <= 0)
		set->opts.kill_grace_ms = DEFAULT_KILL_GRACE_MS;
	const char *path = getenv("PATH");
	size_t n = strlen(path ? path : DEFAULT_PATH) + 6;
	set->env = xcalloc(1, sizeof *set->env);
	set->env[0] = xmalloc(n);
	snprintf(set->env[0], n, "PATH=%s", path ? path : DEFAULT_PATH);
	set->nenv = 1;
	return set;
}

int handler_set_add_env(struct handler_set *set, const char *entry, char *err, size_t errlen)
{
	size_t n = strcspn(entry, "=");
	int ok = n > 0 && !(entry[0] >= '0' && entry[0] <= '9');
	for (size_t i = 0; i < n && ok; i++) {
		char c = entry[i];
		ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		     (c >= '0' && c <= '9');
	}
	if (!ok) {
		snprintf(err, errlen, "'%.*s' is not an environment variable name", (int)n, entry);
		return -EINVAL;
	}
	if ((n == 13 && !strncmp(entry, "ORCHD_TASK_ID", n)) ||
	    (n == 15 && !strncmp(entry, "ORCHD_TASK_NAME", n))) {
		snprintf(err, errlen, "%.*s is set by the worker for each task", (int)n, entry);
		return -EINVAL;
	}
	char *kv;
	if (entry[n] == '=') {
		kv = xstrdup(entry);
	} else {
		const char *v = getenv(entry);
		if (!v)
			return 0; /* nothing to pass through */
		size_t len = n + strlen(v) + 2;
		kv = xmalloc(len);
		snprintf(kv, len, "%s=%s", entry, v);
	}
	/* A later entry for the same name replaces the earlier one. */
	for (size_t i = 0; i < set->nenv; i++) {
		if (!strncmp(set->env[i], kv, n + 1)) {
			free(set->env[i]);
			set->env[i] = kv;
			return 0;
		}
	}
	set->env = xrealloc(set->env, (set->nenv + 1) * sizeof *set->env);
	set->env[set->nenv++] = kv;
	return 0;
}

static struct handler *find(const struct handler_set *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

static int add(struct handler_set *set, const char *name, size_t namelen, enum kind kind,
	       char **argv)
{
	char *nm = xstrndup(name, namelen);
	if (find(set, nm)) {
		free(nm);
		return -EEXIST;
	}
	set->v = xrealloc(set->v, (set->n + 1) * sizeof *set->v);
	set->v[set->n++] = (struct handler){nm, kind, argv};
	return 0;
}

int handler_set_add_builtins(struct handler_set *set, const char *list, char *err, size_t errlen)
{
	if (!list || strcmp(list, "all") == 0) {
		for (int i = 0; handler_builtins[i]; i++) {
			int rv = add(set, handler_builtins[i], strlen(handler_builtins[i]),
				     (enum kind)i, NULL);
			if (rv != 0) {
				snprintf(err, errlen, "handler '%s' is defined twice",
					 handler_builtins[i]);
				return rv;
			}
		}
		return 0;
	}
	if (strcmp(list, "none") == 0)
		return 0;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		int i = 0;
		while (handler_builtins[i] && !(strlen(handler_builtins[i]) == n &&
						strncmp(handler_builtins[i], p, n) == 0))
			i++;
		if (!handler_builtins[i]) {
			snprintf(err, errlen, "unknown built-in '%.*s' (%s)", (int)n, p,
				 "noop, echo, sleep, fail, sha256");
			return -EINVAL;
		}
		int rv = add(set, p, n, (enum kind)i, NULL);
		if (rv != 0) {
			snprintf(err, errlen, "handler '%.*s' is defined twice", (int)n, p);
			return rv;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int handler_set_add_exec(struct handler_set *set, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec) {
		snprintf(err, errlen, "handler '%s' is not NAME=COMMAND", spec);
		return -EINVAL;
	}
	for (const char *p = spec; p < eq; p++) {
		if ((unsigned char)*p <= ' ' || *p == ',') {
			snprintf(err, errlen, "handler name '%.*s' contains a blank or comma",
				 (int)(eq - spec), spec);
			return -EINVAL;
		}
	}
	char **argv;
	if (handler_split_argv(eq + 1, &argv) < 0) {
		snprintf(err, errlen, "handler '%.*s': empty command or unterminated quote",
			 (int)(eq - spec), spec);
		return -EINVAL;
	}
	int rv = add(set, spec, (size_t)(eq - spec), K_EXEC, argv);
	if (rv != 0) {
		snprintf(err, errlen, "handler '%.*s' is defined twice", (int)(eq - spec), spec);
		handler_argv_free(argv);
	}
	return rv;
}

size_t handler_set_count(const struct handler_set *set)
{
	return set->n;
}

const char *handler_set_name(const struct handler_set *set, size_t i)
{
	return i < set->n ? set->v[i].name : NULL;
}

int handler_set_has(const struct handler_set *set, const char *name)
{
	return find(set, name) != NULL;
}

size_t handler_set_running(const struct handler_set *set)
{
	return set->nruns;
}

/* ---- runs: common part --------------------------------------------------- */

static void run_unlink(struct handler_run *run)
{
	struct handler_set *set = run->set;
	DLIST_UNLINK(set->runs, run);
	set->nruns--;
}

static void child_free(struct child *x)
{
	if (!x)
		return;
	close_fd(&x->fd_in, &x->ev_in);
	close_fd(&x->fd_out, &x->ev_out);
	close_fd(&x->fd_err, &x->ev_err);
	close_fd(&x->fd_prog, &x->ev_prog);
	if (x->kill_ev)
		event_free(x->kill_ev);
	free(x->cancel_reason);
	free(x);
}

/* Whether the run has a child not yet reaped. */
static int child_running(const struct handler_run *run)
{
	return run->x && run->x->pid > 0 && !run->x->reaped;
}

/* Frees an unlinked run. */
static void run_free(struct handler_run *run)
{
	if (run->timeout_ev)
		event_free(run->timeout_ev);
	if (run->tick_ev)
		event_free(run->tick_ev);
	child_free(run->x);
	free(run->error);
	free(run->out);
	free(run);
}

/* Delivers every decided run, oldest first, in one callback: the worker
 * sends each result as it hears of it, and results handed over in one
 * callback leave in one write (one callback per run made the connection
 * flush between them, a sendmsg per result). on_done may delete the set:
 * the loop stops then and frees it here, with the runs still queued. */
static void set_free(struct handler_set *set);

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct handler_set *set = arg;
	set->delivering = 1;
	while (!set->doomed && set->done_head) {
		struct handler_run *run = set->done_head;
		set->done_head = run->done_next;
		if (!set->done_head)
			set->done_tail = &set->done_head;
		/* Gone from the set first: on_done may ask how many still run. */
		run_unlink(run);
		run->cbs.on_done(run->status, run->out, run->out_len,
				 run->error ? run->error : "", run->arg);
		run_free(run);
	}
	set->delivering = 0;
	if (set->doomed)
		set_free(set);
}

/* Decides the outcome (error copied, may be NULL) and delivers it from the
 * loop. The output is whatever run->out holds. */
static void conclude(struct handler_run *run, enum handler_status st, const char *error)
{
	if (run->ended)
		return;
	run->ended = 1;
	run->status = st;
	if (error) {
		run->error = xstrdup(error);
		utf8_clean(run->error);
	}
	if (run->timeout_ev)
		event_del(run->timeout_ev);
	if (run->tick_ev)
		event_del(run->tick_ev);
	struct handler_set *set = run->set;
	*set->done_tail = run;
	set->done_tail = &run->done_next;
	event_active(set->deliver_ev, 0, 0);
}

static void set_output(struct handler_run *run, const void *p, size_t n)
{
	free(run->out);
	run->out = n ? xmemdup(p, n) : NULL;
	run->out_len = run->out_cap = n;
}

static void progress(struct handler_run *run, int pct, char *msg)
{
	if (run->ended || (run->x && run->x->why != WHY_NONE) || !run->cbs.on_progress)
		return;
	utf8_clean(msg);
	run->cbs.on_progress(pct, msg, run->arg);
}

static void timeout_msg(struct handler_run *run, char *buf, size_t len)
{
	snprintf(buf, len, "timeout after %lld ms", (long long)run->timeout_ms);
}

/* ---- built-ins ----------------------------------------------------------- */

static void sleep_tick(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	run->step++;
	char msg[96];
	snprintf(msg, sizeof msg, "slept %lld of %lld ms",
		 (long long)(run->sleep_ms * run->step / 10), (long long)run->sleep_ms);
	progress(run, run->step * 10, msg);
	if (run->ended)
		return; /* cancelled from the progress callback */
	if (run->step >= 10) {
		conclude(run, HANDLER_COMPLETED, NULL);
		return;
	}
	/* Each tick is placed from the start, so delays never accumulate. */
	int64_t at = run->sleep_ms * (run->step + 1) / 10;
	struct timeval tv = tv_ms(at - elapsed_ms(&run->t0));
	evtimer_add(run->tick_ev, &tv);
}

static int space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int parse_ms(const uint8_t *p, size_t n, int64_t *out)
{
	size_t i = 0;
	while (i < n && space(p[i]))
		i++;
	while (n > i && space(p[n - 1]))
		n--;
	if (i == n)
		return -1;
	int64_t v = 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > INT64_MAX / 10 / 2)
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

static void start_builtin(struct handler_run *run)
{
	struct handler_set *set = run->set;
	switch (run->kind) {
	case K_NOOP:
		conclude(run, HANDLER_COMPLETED, NULL);
		break;
	case K_ECHO:
		if (run->payload_len > set->opts.max_output) {
			char e[64];
			snprintf(e, sizeof e, "output exceeds %zu bytes", set->opts.max_output);
			conclude(run, HANDLER_FAILED, e);
			break;
		}
		set_output(run, run->payload, run->payload_len);
		conclude(run, HANDLER_COMPLETED, NULL);
		break;
	case K_FAIL: {
		char *e = xstrndup((const char *)run->payload, run->payload_len);
		conclude(run, HANDLER_FAILED, *e ? e : "failed");
		free(e);
		break;
	}
	case K_SHA256: {
		unsigned char md[32];
		char hex[65];
		unsigned int mdlen = 0;
		EVP_Digest(run->payload, run->payload_len, md, &mdlen, EVP_sha256(), NULL);
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		set_output(run, hex, 64);
		conclude(run, HANDLER_COMPLETED, NULL);
		break;
	}
	case K_SLEEP:
		if (parse_ms(run->payload, run->payload_len, &run->sleep_ms) != 0) {
			conclude(run, HANDLER_FAILED,
				 "sleep: the payload must be a number of milliseconds in decimal");
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &run->t0);
		run->tick_ev = evtimer_new(set->base, sleep_tick, run);
		struct timeval tv = tv_ms(run->sleep_ms / 10);
		evtimer_add(run->tick_ev, &tv);
		break;
	case K_EXEC:
		break;
	}
}

/* ---- exec: the child ----------------------------------------------------- */

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	if (!run->x->reaped) {
		log_debug("handler_kill", "task=%s pid=%d signal=KILL", run->task_id,
			  (int)run->x->pid);
		kill(-run->x->pid, SIGKILL);
	}
}

/* Stops the child for why: SIGTERM to its group now, SIGKILL after the
 * grace. The outcome is decided when it has been reaped. */
static void stop_child(struct handler_run *run, enum why why)
{
	if (run->x->why != WHY_NONE || run->ended)
		return;
	run->x->why = why;
	if (run->x->reaped)
		return;
	log_debug("handler_kill", "task=%s pid=%d signal=TERM", run->task_id, (int)run->x->pid);
	kill(-run->x->pid, SIGTERM);
	run->x->kill_ev = evtimer_new(run->set->base, kill_cb, run);
	struct timeval tv = tv_ms(run->set->opts.kill_grace_ms);
	evtimer_add(run->x->kill_ev, &tv);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	while (run->x->in_off < run->payload_len) {
		size_t left = run->payload_len - run->x->in_off;
		ssize_t n = write(run->x->fd_in, run->payload + run->x->in_off, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break; /* EPIPE: the child does not want the rest */
		run->x->in_off += (size_t)n;
	}
	close_fd(&run->x->fd_in, &run->x->ev_in);
}

/* Reports the progress line collected in run->x->line, if it is one. */
static void progress_line(struct handler_run *run)
{
	int pct;
	char msg[PROGRESS_LINE_MAX];
	if (handler_parse_progress(run->x->line, run->x->line_len, &pct, msg, sizeof msg) == 0) {
		progress(run, pct, msg);
	} else {
		run->x->line[run->x->line_len] = '\0';
		log_debug("handler_bad_progress", "task=%s line=%s", run->task_id,
			  log_quote(run->x->line));
	}
	run->x->line_len = 0;
}

/* Reads what fd has now into the run: 1 on EOF or error, else 0. */
static int read_some(struct handler_run *run, int fd, int which)
{
	char buf[READ_CHUNK];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			/* A last line without its newline still counts. */
			if (which == 3 && run->x->line_len)
				progress_line(run);
			return 1;
		}
		if (which == 1) {
			size_t max = run->set->opts.max_output;
			if (run->x->why == WHY_OVERFLOW)
				continue;
			if (run->out_len + (size_t)n > max) {
				stop_child(run, WHY_OVERFLOW);
				continue;
			}
			if (run->out_len + (size_t)n > run->out_cap) {
				size_t cap = run->out_cap ? run->out_cap * 2 : 4096;
				while (cap < run->out_len + (size_t)n)
					cap *= 2;
				run->out_cap = cap < max ? cap : max;
				run->out = xrealloc(run->out, run->out_cap);
			}
			memcpy(run->out + run->out_len, buf, (size_t)n);
			run->out_len += (size_t)n;
		} else if (which == 2) {
			size_t k = (size_t)n;
			if (k >= STDERR_TAIL) {
				memcpy(run->x->errtail, buf + k - STDERR_TAIL, STDERR_TAIL);
				run->x->errtail_len = STDERR_TAIL;
			} else {
				size_t keep = run->x->errtail_len + k > STDERR_TAIL
						      ? STDERR_TAIL - k
						      : run->x->errtail_len;
				memmove(run->x->errtail,
					run->x->errtail + run->x->errtail_len - keep, keep);
				memcpy(run->x->errtail + keep, buf, k);
				run->x->errtail_len = keep + k;
			}
		} else {
			for (ssize_t i = 0; i < n; i++) {
				char c = buf[i];
				if (c != '\n') {
					/* An over-long line is cut, not split. */
					if (run->x->line_len < sizeof run->x->line - 1)
						run->x->line[run->x->line_len++] = c;
					continue;
				}
				progress_line(run);
			}
		}
	}
}

/* Decides the outcome of an exec run once its child has been reaped. */
static void child_exited(struct handler_run *run)
{
	struct handler_set *set = run->set;
	run->x->reaped = 1;
	if (run->x->kill_ev)
		event_del(run->x->kill_ev);
	/* Leftovers in its group (a background grandchild) go with it. The
	 * group id cannot have been reused: nothing was spawned since the
	 * reap, and a group with members keeps its id. */
	kill(-run->x->pid, SIGKILL);
	/* Everything the child itself wrote is in the pipes by now. */
	if (run->x->fd_out >= 0)
		read_some(run, run->x->fd_out, 1);
	if (run->x->fd_err >= 0)
		read_some(run, run->x->fd_err, 2);
	if (run->x->fd_prog >= 0)
		read_some(run, run->x->fd_prog, 3);
	close_fd(&run->x->fd_in, &run->x->ev_in);
	close_fd(&run->x->fd_out, &run->x->ev_out);
	close_fd(&run->x->fd_err, &run->x->ev_err);
	close_fd(&run->x->fd_prog, &run->x->ev_prog);

	char e[STDERR_TAIL + 64];
	int st = run->x->wstatus;
	switch (run->x->why) {
	case WHY_TIMEOUT:
		timeout_msg(run, e, sizeof e);
		conclude(run, HANDLER_FAILED, e);
		return;
	case WHY_CANCEL:
		conclude(run, HANDLER_CANCELLED, run->x->cancel_reason);
		return;
	case WHY_OVERFLOW:
		snprintf(e, sizeof e, "output exceeds %zu bytes", set->opts.max_output);
		conclude(run, HANDLER_FAILED, e);
		return;
	case WHY_NONE:
		break;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		conclude(run, HANDLER_COMPLETED, NULL);
		return;
	}
	size_t n = run->x->errtail_len;
	while (n > 0 && (run->x->errtail[n - 1] == '\n' || run->x->errtail[n - 1] == '\r' ||
			 run->x->errtail[n - 1] == ' ' || run->x->errtail[n - 1] == '\t'))
		n--;
	size_t skip = 0;
	while (skip < n && run->x->errtail[skip] == '\0')
		skip++;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
		snprintf(e, sizeof e, "CPU time limit exceeded (killed by signal %d, SIGXCPU)",
			 SIGXCPU);
	else if (WIFSIGNALED(st))
		snprintf(e, sizeof e, "killed by signal %d", WTERMSIG(st));
	else if (n > skip)
		snprintf(e, sizeof e, "%.*s", (int)(n - skip), run->x->errtail + skip);
	else
		snprintf(e, sizeof e, "exit status %d", WEXITSTATUS(st));
	conclude(run, HANDLER_FAILED, e);
}

static void try_reap(struct handler_run *run)
{
	if (!child_running(run))
		return;
	int st;
	pid_t r = waitpid(run->x->pid, &st, WNOHANG);
	if (r == run->x->pid) {
		run->x->wstatus = st;
		child_exited(run);
	} else if (r < 0 && errno == ECHILD) {
		/* Someone else reaped it: the status is lost. */
		run->x->wstatus = 255 << 8;
		child_exited(run);
	}
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct handler_set *set = arg;
	for (struct handler_run *run = set->runs, *next; run; run = next) {
		next = run->next;
		try_reap(run);
	}
}

static void on_pipe(struct handler_run *run, int *fd, struct event **ev, int which)
{
	if (read_some(run, *fd, which)) {
		close_fd(fd, ev);
		/* EOF usually means the child exited: do not wait for SIGCHLD. */
		try_reap(run);
	}
}

static void on_stdout(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	on_pipe(run, &run->x->fd_out, &run->x->ev_out, 1);
}

static void on_stderr(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	on_pipe(run, &run->x->fd_err, &run->x->ev_err, 2);
}

static void on_progress_fd(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	on_pipe(run, &run->x->fd_prog, &run->x->ev_prog, 3);
}

/* Moves a child's end of a pipe to 10 or above, so that the dup2 of one
 * end onto 0..3 in the child never clobbers another. */
static int move_high(int fd)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return n;
}

/* What a child reports on its error pipe when it cannot exec. */
struct spawn_failure {
	int step; /* 0 exec, 1 RLIMIT_AS, 2 RLIMIT_CPU */
	int err;
};

/* The child's side of spawn_child: only async-signal-safe calls. */
static void child_setup(const struct handler_run *run, const int fds[4], int errfd, char **envp)
{
	const struct handler_opts *o = &run->set->opts;
	struct spawn_failure f = {0, 0};
	setpgid(0, 0); /* its own group, killed as one */
	/* A worker killed with SIGKILL cannot stop its children; the kernel
	 * does it for the direct child (grandchildren it starts are its own
	 * business: they see their parent die). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != run->set->pid)
		_exit(127); /* the worker died before the line above */
	/* Dispositions a role sets (SIGPIPE ignored, libevent's handlers)
	 * must not leak into tasks; signals were blocked around fork. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int i = 0; i < 4; i++)
		dup2(fds[i], i); /* fds are >= 10, so none is clobbered */
	/* The error pipe goes to 4 (close-on-exec: a successful exec closes
	 * it, which is how the parent knows); everything else is closed. */
	dup3(errfd, 4, O_CLOEXEC);
	errfd = 4;
	closefrom(5);
	if (o->rlimit_as) {
		struct rlimit rl = {(rlim_t)o->rlimit_as, (rlim_t)o->rlimit_as};
		if (setrlimit(RLIMIT_AS, &rl) != 0) {
			f = (struct spawn_failure){1, errno};
			goto fail;
		}
	}
	if (o->rlimit_cpu_ms > 0) {
		rlim_t sec = (rlim_t)((o->rlimit_cpu_ms + 999) / 1000);
		struct rlimit rl = {sec, sec + 1};
		if (setrlimit(RLIMIT_CPU, &rl) != 0) {
			f = (struct spawn_failure){2, errno};
			goto fail;
		}
	}
	execvpe(run->argv[0], run->argv, envp);
	f = (struct spawn_failure){0, errno};
fail:
	(void)!write(errfd, &f, sizeof f);
	_exit(127);
}

/*
 * Starts the child with fds as its 0..3 and envp as its environment, in
 * its own process group with the set's limits: fork and exec rather than
 * posix_spawn, which has no way to set limits on the child alone. Returns
 * 0 with run->x->pid set, or -1 with the reason in e.
 */
static int spawn_child(struct handler_run *run, const int fds[4], char **envp, char *e,
		       size_t elen)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) != 0) {
		snprintf(e, elen, "cannot start %s: %s", run->argv[0], strerror(errno));
		return -1;
	}
	/* Above 0..4, where the child puts its own descriptors. */
	ep[0] = move_high(ep[0]);
	ep[1] = move_high(ep[1]);
	if (ep[0] < 0 || ep[1] < 0) {
		snprintf(e, elen, "cannot start %s: %s", run->argv[0], strerror(errno));
		if (ep[0] >= 0)
			close(ep[0]);
		if (ep[1] >= 0)
			close(ep[1]);
		return -1;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		close(ep[0]);
		child_setup(run, fds, ep[1], envp);
	}
	int saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	if (pid < 0) {
		close(ep[0]);
		snprintf(e, elen, "cannot start %s: %s", run->argv[0], strerror(saved));
		return -1;
	}
	/* Also here, so a kill of the group cannot race the child's own. */
	setpgid(pid, pid);
	struct spawn_failure f;
	ssize_t n;
	do
		n = read(ep[0], &f, sizeof f);
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n != (ssize_t)sizeof f) {
		run->x->pid = pid; /* EOF: the exec succeeded */
		return 0;
	}
	waitpid(pid, NULL, 0);
	if (f.step == 1)
		snprintf(e, elen, "cannot limit %s to %zu bytes of address space: %s", run->argv[0],
			 run->set->opts.rlimit_as, strerror(f.err));
	else if (f.step == 2)
		snprintf(e, elen, "cannot limit %s's CPU time: %s", run->argv[0], strerror(f.err));
	else
		snprintf(e, elen, "cannot run %s: %s", run->argv[0], strerror(f.err));
	return -1;
}

static void start_exec(struct handler_run *run)
{
	struct handler_set *set = run->set;
	int p[4][2], child[4] = {-1, -1, -1, -1}, i, made = 0;
	char e[256];
	run->x = xcalloc(1, sizeof *run->x);
	run->x->fd_in = run->x->fd_out = run->x->fd_err = run->x->fd_prog = -1;
	for (i = 0; i < 4; i++) {
		if (pipe2(p[i], O_CLOEXEC) != 0)
			break;
		made++;
	}
	/* p[0] is stdin (the child reads p[0][0]); the others the child writes. */
	for (i = 0; i < made; i++) {
		int ci = i == 0 ? 0 : 1;
		child[i] = move_high(p[i][ci]);
		p[i][ci] = -1;
		fcntl(p[i][1 - ci], F_SETFL, O_NONBLOCK);
	}
	if (made < 4 || child[0] < 0 || child[1] < 0 || child[2] < 0 || child[3] < 0) {
		int saved = errno;
		for (i = 0; i < made; i++) {
			if (child[i] >= 0)
				close(child[i]);
			close(p[i][i == 0 ? 1 : 0]);
		}
		snprintf(e, sizeof e, "cannot start %s: %s", run->argv[0], strerror(saved));
		conclude(run, HANDLER_FAILED, e);
		return;
	}
	if (!set->sigchld) {
		set->sigchld = evsignal_new(set->base, SIGCHLD, sigchld_cb, set);
		event_add(set->sigchld, NULL);
	}

	char **envp = xcalloc(set->nenv + 3, sizeof *envp);
	memcpy(envp, set->env, set->nenv * sizeof *envp);
	size_t idlen = strlen(run->task_id) + 16, nmlen = strlen(run->name) + 18;
	char *env_id = xmalloc(idlen), *env_nm = xmalloc(nmlen);
	snprintf(env_id, idlen, "ORCHD_TASK_ID=%s", run->task_id);
	snprintf(env_nm, nmlen, "ORCHD_TASK_NAME=%s", run->name);
	envp[set->nenv] = env_id;
	envp[set->nenv + 1] = env_nm;

	int rv = spawn_child(run, child, envp, e, sizeof e);
	free(envp);
	free(env_id);
	free(env_nm);
	for (i = 0; i < 4; i++)
		close(child[i]);
	run->x->fd_in = p[0][1];
	run->x->fd_out = p[1][0];
	run->x->fd_err = p[2][0];
	run->x->fd_prog = p[3][0];
	if (rv != 0) {
		run->x->pid = 0;
		conclude(run, HANDLER_FAILED, e);
		return;
	}
	log_debug("handler_spawned", "task=%s pid=%d cmd=%s", run->task_id, (int)run->x->pid,
		  log_quote(run->argv[0]));
	if (run->payload_len) {
		run->x->ev_in =
			event_new(set->base, run->x->fd_in, EV_WRITE | EV_PERSIST, on_stdin, run);
		event_add(run->x->ev_in, NULL);
	} else {
		close_fd(&run->x->fd_in, &run->x->ev_in);
	}
	run->x->ev_out = event_new(set->base, run->x->fd_out, EV_READ | EV_PERSIST, on_stdout, run);
	run->x->ev_err = event_new(set->base, run->x->fd_err, EV_READ | EV_PERSIST, on_stderr, run);
	run->x->ev_prog =
		event_new(set->base, run->x->fd_prog, EV_READ | EV_PERSIST, on_progress_fd, run);
	event_add(run->x->ev_out, NULL);
	event_add(run->x->ev_err, NULL);
	event_add(run->x->ev_prog, NULL);
}

/* ---- runs: the public part ---------------------------------------------- */

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct handler_run *run = arg;
	if (child_running(run)) {
		stop_child(run, WHY_TIMEOUT);
		return;
	}
	char e[64];
	timeout_msg(run, e, sizeof e);
	conclude(run, HANDLER_FAILED, e);
}

struct handler_run *handler_start(struct handler_set *set, const char *task_id, const char *name,
				  const void *payload, size_t len, int64_t timeout_ms,
				  const struct handler_cbs *cbs, void *arg, int *err)
{
	struct handler *h = find(set, name);
	if (!h) {
		if (err)
			*err = -ENOENT;
		return NULL;
	}
	if (!set->deliver_ev) {
		set->deliver_ev = event_new(set->base, -1, 0, deliver_cb, set);
		set->done_tail = &set->done_head;
	}
	size_t idlen = strlen(task_id) + 1, namelen = strlen(name) + 1;
	struct handler_run *run = xmalloc(sizeof *run + idlen + namelen + len);
	/* Only the fixed part is zeroed: the rest is copied over at once. */
	memset(run, 0, sizeof *run);
	run->set = set;
	run->kind = h->kind;
	run->argv = h->argv;
	run->task_id = memcpy(run->mem, task_id, idlen);
	run->name = memcpy(run->mem + idlen, name, namelen);
	run->payload = (const uint8_t *)run->mem + idlen + namelen;
	if (len)
		memcpy(run->mem + idlen + namelen, payload, len);
	run->payload_len = len;
	run->cbs = *cbs;
	run->arg = arg;
	run->timeout_ms = timeout_ms;
	DLIST_PUSH(set->runs, run);
	set->nruns++;
	if (run->kind == K_EXEC)
		start_exec(run);
	else
		start_builtin(run);
	/* A built-in that finished at once needs no timer. */
	if (timeout_ms > 0 && !run->ended) {
		run->timeout_ev = evtimer_new(set->base, timeout_cb, run);
		struct timeval tv = tv_ms(timeout_ms);
		evtimer_add(run->timeout_ev, &tv);
	}
	return run;
}

void handler_cancel(struct handler_run *run, const char *reason)
{
	if (run->ended)
		return;
	if (!reason || !*reason)
		reason = "cancelled";
	if (child_running(run)) {
		if (run->x->why == WHY_NONE) {
			free(run->x->cancel_reason);
			run->x->cancel_reason = xstrdup(reason);
		}
		stop_child(run, WHY_CANCEL);
		return;
	}
	conclude(run, HANDLER_CANCELLED, reason);
}

void handler_set_del(struct handler_set *set)
{
	if (!set)
		return;
	if (set->delivering)
		set->doomed = 1; /* an on_done deletes its own set: deliver_cb frees it */
	else
		set_free(set);
}

static void set_free(struct handler_set *set)
{
	while (set->runs) {
		struct handler_run *run = set->runs;
		if (child_running(run)) {
			kill(-run->x->pid, SIGKILL);
			waitpid(run->x->pid, NULL, WNOHANG);
		}
		run_unlink(run);
		run_free(run);
	}
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].name);
		handler_argv_free(set->v[i].argv);
	}
	free(set->v);
	for (size_t i = 0; i < set->nenv; i++)
		free(set->env[i]);
	free(set->env);
	if (set->sigchld)
		event_free(set->sigchld);
	if (set->deliver_ev)
		event_free(set->deliver_ev);
	free(set);
}
