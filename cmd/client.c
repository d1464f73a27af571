/*
 * client: the commands people use, talking to a gateway.
 *
 *   orchd submit NAME [FLAGS]        orchd watch ID...
 *   orchd get ID [--json]            orchd cancel ID [--reason TEXT]
 *   orchd list [FILTERS] [--json]    orchd workers [--json]
 *   orchd health [ADDR] [--json]
 *
 * Each command is a small state machine on one libevent loop with one rpc
 * channel to --gateway (ORCHD_GATEWAY, default 127.0.0.1:50051): it starts
 * its calls, the loop runs until the command stops it, and the exit code
 * says how it went (0 ok; 1 an error from the server, or a task that did not
 * complete; 2 usage; 3 unreachable or UNAVAILABLE). Unary calls carry
 * --deadline (default 10s); progress streams (watch, submit --wait/--watch)
 * have none and re-subscribe when their gateway goes away, which is safe
 * because a gateway keeps no state: a new stream starts with the task's
 * current state.
 *
 * Results go to stdout, errors to stderr as one line naming the gRPC status
 * and the server's message. Rendering (tables, JSON, progress bars,
 * durations) lives in lib/: table.h, json.h, bar.h, human.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bar.h"
#include "cmd.h"
#include "error.h"
#include "grpc/health/v1/health.pb-c.h"
#include "human.h"
#include "json.h"
#include "log.h"
#include "meta.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "sbuf.h"
#include "table.h"
#include "task.h"
#include "utf8.h"
#include "xalloc.h"

#define DEFAULT_DEADLINE_MS 10000
#define GATEWAY_PATH "/orchestrator.v1.Gateway/"
/* Answers carry payloads and outputs (1 MiB each by default), a page of
 * ListTasks up to 100 of them. */
#define MAX_MSG (64u << 20)
/* Largest --payload-file read; the gateway's own limit is usually lower
 * and its INVALID_ARGUMENT says so. */
#define MAX_PAYLOAD_READ (64u << 20)
/* Pause between attempts to re-subscribe after a stream broke. */
#define RESUBSCRIBE_MS 500
/* Terminal redraws: at most this often, and this often while a task runs
 * (the elapsed clock moves). */
#define REDRAW_MS 200
/* Rows `orchd list` shows unless told otherwise. */
#define DEFAULT_LIMIT 50

static const char exit_help[] =
    "exit status: 0 success; 1 failure (an error from the server, or a task\n"
    "that did not complete); 2 usage error; 3 gateway unreachable (or\n"
    "UNAVAILABLE).\n";

/* ---- the client: loop, channel, errors -------------------------------------- */

/* clang-format off */
#define CLIENT_FLAGS_INIT {CLIENT_DEFAULT_GATEWAY, DEFAULT_DEADLINE_MS, {0}, NULL}
#define CLIENT_OPTS(f)                                                                            \
	{"gateway", "ORCHD_GATEWAY", OPT_STR, &(f)->gateway, "ADDR",                              \
	 "gateway to talk to (default " CLIENT_DEFAULT_GATEWAY ")"},                             \
	{"deadline", "ORCHD_DEADLINE", OPT_DUR, &(f)->deadline_ms, "DURATION",                    \
	 "deadline of each call, e.g. 500ms, 30s, 5m (default 10s)"},                             \
	CLIENT_SECURITY_OPTS(f)
#define OPTS_END {NULL, NULL, 0, NULL, NULL, NULL}
/* clang-format on */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cmd_parse, and on --help the command's description and the exit codes
 * after the flags. Returns what cmd_parse returns. */
static int parse(const char *cmd, const char *synopsis, const char *about, const struct opt *opts,
                 int argc, char **argv)
{
	int n = cmd_parse(cmd, synopsis, opts, argc, argv);
	if (n == -1 - EXIT_OK)
		printf("\n%s\n%s", about, exit_help);
	return n;
}

static void channel_state(struct rpc_channel *ch, enum rpc_channel_state st, void *arg)
{
	struct client *c = arg;
	if (st == RPC_CH_READY)
		c->connected = 1;
}

int client_init(struct client *c, const char *cmd, const struct client_flags *f)
{
	memset(c, 0, sizeof *c);
	c->cmd = cmd;
	c->addr = f->gateway;
	c->peer = "gateway at ";
	c->deadline_ms = f->deadline_ms;
	if (c->deadline_ms <= 0) {
		cmd_error(cmd, "--deadline must be positive");
		return EXIT_USAGE;
	}
	if (cmd_check_addr(cmd, "gateway", c->addr, 1))
		return EXIT_USAGE;
	/* Library logs are for servers; a client speaks through its errors,
	 * so only log errors (a bug, such as an illegal transition) show.
	 * ORCHD_LOG=debug shows the rest when digging. */
	enum log_level lv = LOG_ERROR;
	const char *env = getenv("ORCHD_LOG");
	if (env)
		log_parse_level(env, &lv);
	log_set_level(lv);
	log_set_role(cmd);
	/* A closed stdout (orchd watch | head -1) shows up as a write error,
	 * and a dropped connection as a call status, not as a signal. */
	signal(SIGPIPE, SIG_IGN);
	struct meta md;
	meta_init(&md);
	int rc = cmd_tls_check(cmd, &f->tls);
	if (!rc)
		rc = cmd_token_md(cmd, f->token_file, "ORCHD_TOKEN", &md);
	if (rc)
		return rc;
	c->base = event_base_new();
	struct rpc_tls_opts tls;
	struct rpc_opts o = {
	    .max_recv_msg = MAX_MSG,
	    .max_send_msg = MAX_MSG,
	    .connect_timeout_ms = c->deadline_ms < 5000 ? (int)c->deadline_ms : 5000,
	    .backoff_initial_ms = 200,
	    .backoff_max_ms = 1000,
	    .tls = cmd_tls_dial(&f->tls, &tls),
	    .default_md = md.n ? &md : NULL,
	};
	int err = 0;
	c->ch = rpc_channel_new(c->base, c->addr, &o, &err);
	meta_free(&md); /* the channel has its copy */
	c->tls = o.tls != NULL;
	if (!c->ch && err == E_UNSUPPORTED) {
		cmd_error(cmd, "cannot set up TLS (--tls-ca, --tls-cert, --tls-key): %s",
		          "see the tls_error line above");
		return EXIT_USAGE;
	}
	if (!c->ch) {
		cmd_error(cmd, "cannot use address '%s': %s", c->addr, err_str(err));
		return EXIT_USAGE;
	}
	rpc_channel_set_state_cb(c->ch, channel_state, c);
	return 0;
}

static void client_stop(struct client *c, int rc)
{
	if (!c->stopped) {
		c->stopped = 1;
		c->rc = rc;
	}
	event_base_loopbreak(c->base);
}

/* Runs the loop until the command stops it; returns its exit code. */
static int client_run(struct client *c)
{
	event_base_dispatch(c->base);
	return c->rc;
}

/* Closes the channel: calls still open end (CANCELLED) and their
 * callbacks see c->stopped. The command's own state may go after this,
 * its timers before client_free. */
static void client_close(struct client *c)
{
	c->stopped = 1;
	rpc_channel_del(c->ch);
	c->ch = NULL;
}

void client_free(struct client *c)
{
	client_close(c);
	if (c->base)
		event_base_free(c->base);
	c->base = NULL;
}

/* Prints one line on stderr for a call that ended with status and returns
 * the exit code that means. */
static int report(const struct client *c, int status, const char *message)
{
	char dur[HUMAN_BUFLEN];
	human_duration(c->deadline_ms, dur, sizeof dur);
	if (!c->connected &&
	    (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_DEADLINE_EXCEEDED)) {
		char why[256];
		const char *p = message;
		/* The channel says "cannot reach ADDR: reason"; we name the
		 * peer ourselves. */
		if (!strncmp(p, "cannot reach ", 13) && strstr(p, ": "))
			p = strstr(p, ": ") + 2;
		if (status == GRPC_STATUS_DEADLINE_EXCEEDED)
			snprintf(why, sizeof why, "no connection within %s (--deadline)", dur);
		else
			snprintf(why, sizeof why, "%s", *p ? p : "connection failed");
		/* "Connection refused" reads as part of our sentence. */
		if (why[0] >= 'A' && why[0] <= 'Z' && why[1] >= 'a' && why[1] <= 'z')
			why[0] = (char)(why[0] - 'A' + 'a');
		fprintf(stderr, "orchd: cannot reach %s%s: %s\n", c->peer, c->addr, why);
		return EXIT_UNAVAIL;
	}
	if (status == GRPC_STATUS_DEADLINE_EXCEEDED)
		cmd_error(c->cmd, "%s: %s (--deadline %s)", status_name(status),
		          *message ? message : "no answer in time", dur);
	else if (status == GRPC_STATUS_UNAVAILABLE && !c->tls &&
	         (!strcmp(message, "connection error") ||
	          !strcmp(message, "connection closed by peer")))
		/* A TLS listener hangs up on plaintext at once. */
		cmd_error(c->cmd, "%s: %s (if the %sserver uses TLS, add --tls-ca or --tls)",
		          status_name(status), message, *c->peer ? "gateway " : "");
	else if (*message)
		cmd_error(c->cmd, "%s: %s", status_name(status), message);
	else
		cmd_error(c->cmd, "%s", status_name(status));
	return status == GRPC_STATUS_UNAVAILABLE ? EXIT_UNAVAIL : EXIT_FAIL;
}

/* Reports a failed call and stops with its exit code. */
static void client_fail(struct client *c, int status, const char *message)
{
	client_stop(c, report(c, status, message));
}

static void bad_answer(struct client *c)
{
	client_fail(c, GRPC_STATUS_INTERNAL, "cannot decode the server's answer");
}

/* Writes out (len bytes) to stdout and flushes. Returns 0, or -1 when
 * stdout is gone (a closed pipe). */
static int emit(const char *s, size_t len)
{
	if (len)
		fwrite(s, 1, len, stdout);
	fflush(stdout);
	return ferror(stdout) ? -1 : 0;
}

/* ---- unary calls ---------------------------------------------------------------- */

/* The outcome of a unary call: status 0 with the answer (msg, len bytes,
 * borrowed for the callback), or an error status and message. */
typedef void (*unary_cb)(struct client *c, int status, const char *message, const uint8_t *msg,
                         size_t len, void *arg);

struct unary {
	struct client *c;
	unary_cb cb;
	void *arg;
	uint8_t *msg;
	size_t len;
	int got;
};

static int unary_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct unary *u = arg;
	if (u->got)
		return GRPC_STATUS_INTERNAL; /* a unary answer is one message */
	u->msg = xmemdup(msg, len);
	u->len = len;
	u->got = 1;
	return 0;
}

static void unary_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct unary *u = arg;
	if (!u->c->stopped) {
		if (status == GRPC_STATUS_OK && !u->got) {
			status = GRPC_STATUS_INTERNAL;
			message = "the server answered without a message";
		}
		u->cb(u->c, status, message, u->msg, u->len, u->arg);
	}
	free(u->msg);
	free(u);
}

static const struct rpc_call_cbs unary_cbs = {.on_message = unary_message, .on_done = unary_done};

/* Calls path with req (borrowed) under --deadline; cb(arg) runs once with
 * the outcome, unless the client has stopped by then. */
static void unary_start(struct client *c, const char *path, const ProtobufCMessage *req,
                        unary_cb cb, void *arg)
{
	struct unary *u = xcalloc(1, sizeof *u);
	u->c = c;
	u->cb = cb;
	u->arg = arg;
	struct rpc_call_opts o = {.timeout_ms = c->deadline_ms};
	struct rpc_call *call = rpc_call_start(c->ch, path, &unary_cbs, u, &o);
	pb_send(call, req, 0);
	rpc_call_close_send(call);
}

/* ---- shared rendering ------------------------------------------------------------ */

/* Writes "key": bytes as a JSON string when they are valid UTF-8, else
 * "key_base64": standard padded base64 (RFC 4648), so any output survives
 * exactly and the text stays valid JSON and UTF-8. */
static void json_bytes(struct json *j, const char *key, const uint8_t *p, size_t n)
{
	if (utf8_valid(p, n)) {
		json_key(j, key);
		json_strn(j, (const char *)p, n);
		return;
	}
	char k[64];
	size_t len;
	char *b64 = meta_b64_encode(p, n, &len);
	struct sbuf s;
	sbuf_init(&s);
	sbuf_add(&s, b64, len);
	while (s.len % 4)
		sbuf_addc(&s, '='); /* gRPC's base64 is unpadded; RFC 4648's is not */
	snprintf(k, sizeof k, "%s_base64", key);
	json_key(j, k);
	json_strn(j, s.s, s.len);
	sbuf_free(&s);
	free(b64);
}

static void json_kv_str(struct json *j, const char *k, const char *v)
{
	json_key(j, k);
	json_str(j, v);
}

static void json_kv_int(struct json *j, const char *k, int64_t v)
{
	json_key(j, k);
	json_int(j, v);
}

static const char *status_str(int st)
{
	return task_state_name((enum task_state)st);
}

/* A task as JSON (get --json, list --json). */
static void task_json(struct json *j, const Orchestrator__V1__Task *t)
{
	const Orchestrator__V1__TaskSpec *s = t->spec;
	json_obj_begin(j);
	json_kv_str(j, "task_id", t->task_id);
	json_kv_str(j, "name", s ? s->name : "");
	json_kv_str(j, "status", status_str(t->status));
	json_kv_int(j, "attempt", t->attempt);
	json_kv_int(j, "max_attempts", s ? s->max_attempts : 0);
	json_kv_int(j, "priority", s ? s->priority : 0);
	json_kv_str(j, "description", s ? s->description : "");
	json_kv_int(j, "timeout_ms", s ? s->timeout_ms : 0);
	json_kv_str(j, "idempotency_key", s ? s->idempotency_key : "");
	json_key(j, "labels");
	json_obj_begin(j);
	for (size_t i = 0; s && i < s->n_labels; i++)
		json_kv_str(j, s->labels[i]->key, s->labels[i]->value);
	json_obj_end(j);
	json_bytes(j, "payload", s ? s->payload.data : NULL, s ? s->payload.len : 0);
	json_kv_int(j, "created_unix_ms", t->created_unix_ms);
	json_kv_int(j, "started_unix_ms", t->started_unix_ms);
	json_kv_int(j, "finished_unix_ms", t->finished_unix_ms);
	json_kv_int(j, "not_before_unix_ms", t->not_before_unix_ms);
	json_kv_str(j, "worker_id", t->worker_id);
	json_kv_int(j, "percent", t->percent);
	json_kv_str(j, "message", t->message);
	json_key(j, "result");
	if (t->result) {
		json_obj_begin(j);
		json_kv_str(j, "status", status_str(t->result->status));
		json_bytes(j, "output", t->result->output.data, t->result->output.len);
		json_kv_str(j, "error", t->result->error);
		json_kv_int(j, "attempt", t->result->attempt);
		json_obj_end(j);
	} else {
		json_null(j);
	}
	json_obj_end(j);
}

/* "5m03s ago" style age of a Unix ms time, or "-" when unset. */
static const char *age(int64_t at_ms, int64_t now, char *buf, size_t len)
{
	if (!at_ms)
		return "-";
	return human_duration(now - at_ms, buf, len);
}

/* ---- following tasks: watch, submit --wait, submit --watch ------------------------ */

enum view {
	VIEW_WAIT, /* nothing until the end, then the output (submit --wait) */
	VIEW_BAR,  /* progress bars redrawn in place on a terminal */
	VIEW_JSON, /* one JSON line per update */
};

/* What one followed task goes through. */
enum track_state {
	TR_INFO,    /* GetTask in flight: name, creation time, attempts (bars) */
	TR_FOLLOW,  /* SubscribeProgress open */
	TR_BACKOFF, /* the stream broke; re-subscribing after a pause */
	TR_DONE,    /* the final update came, or the task cannot be followed */
};

enum track_event {
	TE_INFO,  /* GetTask ended (status 0: answered) */
	TE_END,   /* the progress stream ended */
	TE_RETRY, /* the pause before re-subscribing is over */
};

struct watcher;

struct track {
	struct watcher *w;
	const char *id; /* borrowed from argv or the submit answer */
	enum track_state state;
	char *name;
	int max_attempts;
	int64_t created_ms;
	int64_t retry_until_ms; /* re-subscribe until then (monotonic) */
	struct event *retry_ev;
	/* The latest update. */
	int status, percent, attempt;
	char *message;
	int64_t ts_ms;
	/* The end. */
	int64_t end_ms; /* when it ended (wall clock), 0 before */
	int final;      /* the final update came */
	uint8_t *output;
	size_t output_len;
	char *error;
	int err_status; /* the task could not be followed: why */
	char *err_message;
};

struct watcher {
	struct client *c;
	enum view view;
	struct track *t;
	size_t n, ndone;
	/* VIEW_BAR */
	struct event *tick;
	int drawn_lines;
	int dirty;
	int color;
	int64_t last_draw_ms;
	int64_t start_ms; /* wall clock, for tasks whose creation time is unknown */
};

static void track_step(struct track *t, enum track_event ev, int status, const char *message);

static int term_width(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static void draw(struct watcher *w)
{
	struct sbuf b;
	sbuf_init(&b);
	bar_rewind(&b, w->drawn_lines);
	int width = term_width();
	int64_t now = wall_ms();
	for (size_t i = 0; i < w->n; i++) {
		struct track *t = &w->t[i];
		int64_t since = t->created_ms ? t->created_ms : w->start_ms;
		int64_t until = t->end_ms ? t->end_ms : now;
		const char *st = status_str(t->status);
		if (t->err_status)
			st = status_name(t->err_status);
		else if (t->state == TR_BACKOFF)
			st = "RECONNECTING";
		else if (t->state == TR_INFO)
			st = "...";
		struct bar_task bt = {
		    .id = t->id,
		    .name = t->name,
		    .status = st,
		    .percent = t->percent,
		    .message = t->err_status                       ? t->err_message
		               : t->final && t->error && *t->error ? t->error
		                                                   : t->message,
		    .attempt = t->attempt,
		    .max_attempts = t->max_attempts,
		    .elapsed_ms = t->err_status || t->state == TR_INFO ? -1 : until - since,
		};
		bar_render(&b, &bt, width, w->color ? BAR_COLOR : 0);
	}
	w->drawn_lines = (int)w->n * BAR_LINES;
	w->dirty = 0;
	w->last_draw_ms = mono_ms();
	if (emit(b.s, b.len) != 0)
		client_stop(w->c, EXIT_FAIL);
	sbuf_free(&b);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watcher *w = arg;
	/* Nothing to show before the gateway answered. */
	if (w->c->connected && (w->dirty || w->ndone < w->n))
		draw(w);
}

/* One JSON line for update p of t, exactly as the gateway sent it. */
static void print_json_update(struct track *t, const Orchestrator__V1__TaskProgress *p, int final)
{
	const Orchestrator__V1__TaskResult *r = p->result;
	struct sbuf b;
	struct json j;
	sbuf_init(&b);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_kv_str(&j, "task_id", t->id);
	json_kv_str(&j, "status", status_str(final ? t->status : (int)p->status));
	json_kv_int(&j, "percent", p->percent);
	json_kv_str(&j, "message", p->message);
	json_kv_int(&j, "timestamp_unix_ms", p->timestamp_unix_ms);
	json_kv_int(&j, "attempt", p->attempt);
	if (final) {
		json_bytes(&j, "output", r ? r->output.data : NULL, r ? r->output.len : 0);
		json_kv_str(&j, "error", r ? r->error : "");
		json_key(&j, "final");
		json_bool(&j, 1);
	}
	json_obj_end(&j);
	sbuf_addc(&b, '\n');
	if (emit(b.s, b.len) != 0)
		client_stop(t->w->c, EXIT_FAIL);
	sbuf_free(&b);
}

/* The output of a finished task after its status line: raw bytes when
 * asked (submit --wait, for scripts), else text with a final newline, or
 * a note for binary output that would garble a terminal. */
static void print_output(const struct track *t, int raw)
{
	if (!t->output_len)
		return;
	if (raw) {
		fwrite(t->output, 1, t->output_len, stdout);
		if (isatty(STDOUT_FILENO) && t->output[t->output_len - 1] != '\n')
			putchar('\n');
	} else if (utf8_valid(t->output, t->output_len)) {
		fwrite(t->output, 1, t->output_len, stdout);
		if (t->output[t->output_len - 1] != '\n')
			putchar('\n');
	} else {
		char sz[HUMAN_BUFLEN];
		printf("(%s of binary output; `orchd get %s --json` shows it in base64)\n",
		       human_size(t->output_len, sz, sizeof sz), t->id);
	}
}

/* Everything is over: the last frame or the output, then the exit code:
 * 3 if the gateway could not be reached, 0 if every task COMPLETED, else
 * 1. */
static void watcher_finish(struct watcher *w)
{
	int rc = EXIT_OK;
	if (w->tick)
		event_del(w->tick);
	if (w->view == VIEW_BAR)
		draw(w);
	for (size_t i = 0; i < w->n; i++) {
		struct track *t = &w->t[i];
		if (t->err_status) {
			/* JSON and wait views reported it when it happened. */
			int r = w->view == VIEW_BAR
			            ? report(w->c, t->err_status, t->err_message)
			            : (t->err_status == GRPC_STATUS_UNAVAILABLE ? EXIT_UNAVAIL
			                                                        : EXIT_FAIL);
			if (r > rc)
				rc = r;
			continue;
		}
		if (t->status != TASK_COMPLETED && rc == EXIT_OK)
			rc = EXIT_FAIL;
		if (w->view == VIEW_BAR) {
			printf("%s: %s", t->id, status_str(t->status));
			if (t->error && *t->error)
				printf(": %s", t->error);
			putchar('\n');
			print_output(t, 0);
		} else if (w->view == VIEW_WAIT) {
			print_output(t, 1);
			if (t->status != TASK_COMPLETED) {
				fflush(stdout);
				cmd_error(w->c->cmd, "task %s %s%s%s", t->id, status_str(t->status),
				          t->error && *t->error ? ": " : "",
				          t->error ? t->error : "");
			}
		}
	}
	if (emit(NULL, 0) != 0 && rc == EXIT_OK)
		rc = EXIT_FAIL;
	client_stop(w->c, rc);
}

static void track_done(struct track *t)
{
	struct watcher *w = t->w;
	t->state = TR_DONE;
	t->end_ms = t->final && t->ts_ms ? t->ts_ms : wall_ms();
	w->ndone++;
	w->dirty = 1;
	if (w->ndone == w->n)
		watcher_finish(w);
}

/* t cannot be followed: the gateway said why (NOT_FOUND, ...). */
static void track_fail(struct track *t, int status, const char *message)
{
	struct watcher *w = t->w;
	struct client *c = w->c;
	if (!c->connected &&
	    (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_DEADLINE_EXCEEDED)) {
		/* Nothing can be followed: say so once. */
		client_fail(c, status, message);
		return;
	}
	t->err_status = status;
	t->err_message = xstrdup(message);
	if (w->view != VIEW_BAR)
		report(c, status, message);
	track_done(t);
}

static int sub_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct track *t = arg;
	struct watcher *w = t->w;
	if (w->c->stopped || t->state != TR_FOLLOW || t->final)
		return 0;
	Orchestrator__V1__TaskProgress *p = orchestrator__v1__task_progress__unpack(NULL, len, msg);
	if (!p)
		return GRPC_STATUS_INTERNAL;
	t->retry_until_ms = mono_ms() + w->c->deadline_ms;
	/* The bar keeps the last words of an attempt ("slept 1000 of 1000
	 * ms") when the final update carries none. */
	if ((p->message && *p->message) || p->attempt != t->attempt) {
		free(t->message);
		t->message = xstrdup(p->message ? p->message : "");
	}
	t->status = p->status;
	t->percent = p->percent;
	t->attempt = p->attempt;
	t->ts_ms = p->timestamp_unix_ms;
	if (task_state_final((enum task_state)p->status) || p->result) {
		const Orchestrator__V1__TaskResult *r = p->result;
		t->final = 1;
		if (r && r->status)
			t->status = r->status;
		if (r && r->output.len) {
			t->output = xmemdup(r->output.data, r->output.len);
			t->output_len = r->output.len;
		}
		t->error = xstrdup(r && r->error ? r->error : "");
	}
	if (w->view == VIEW_JSON)
		print_json_update(t, p, t->final);
	orchestrator__v1__task_progress__free_unpacked(p, NULL);
	if (w->view == VIEW_BAR) {
		w->dirty = 1;
		if (mono_ms() - w->last_draw_ms >= REDRAW_MS)
			draw(w);
	}
	return 0;
}

static void sub_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct track *t = arg;
	if (!t->w->c->stopped)
		track_step(t, TE_END, status, message);
}

static const struct rpc_call_cbs sub_cbs = {.on_message = sub_message, .on_done = sub_done};

static void subscribe(struct track *t)
{
	Orchestrator__V1__ProgressRequest r = ORCHESTRATOR__V1__PROGRESS_REQUEST__INIT;
	r.task_id = (char *)t->id;
	/* No deadline: a task may run for hours. */
	struct rpc_call *call =
	    rpc_call_start(t->w->c->ch, GATEWAY_PATH "SubscribeProgress", &sub_cbs, t, NULL);
	pb_send(call, &r.base, 0);
	rpc_call_close_send(call);
}

static void info_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                       size_t len, void *arg)
{
	struct track *t = arg;
	if (status == GRPC_STATUS_OK) {
		Orchestrator__V1__Task *k = orchestrator__v1__task__unpack(NULL, len, msg);
		if (k) {
			t->name = xstrdup(k->spec && k->spec->name ? k->spec->name : "");
			t->max_attempts = k->spec ? k->spec->max_attempts : 0;
			t->created_ms = k->created_unix_ms;
			t->status = k->status;
			t->attempt = k->attempt;
			t->percent = k->percent;
			orchestrator__v1__task__free_unpacked(k, NULL);
		}
	}
	track_step(t, TE_INFO, status, message);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	track_step(arg, TE_RETRY, 0, "");
}

/* Whether a stream that ended with status before the final update should
 * be opened again: the gateway (or its scheduler) went away, UNAVAILABLE
 * (restart, shutdown, lost connection), and not for longer than
 * --deadline since the last update. */
static int resumable(const struct track *t, int status)
{
	return status == GRPC_STATUS_UNAVAILABLE && t->w->c->connected &&
	       mono_ms() < t->retry_until_ms;
}

/* The one transition function of a followed task. */
static void track_step(struct track *t, enum track_event ev, int status, const char *message)
{
	struct watcher *w = t->w;
	switch (t->state) {
	case TR_INFO:
		if (ev != TE_INFO)
			break;
		if (status != GRPC_STATUS_OK) {
			track_fail(t, status, message);
			return;
		}
		t->state = TR_FOLLOW;
		t->retry_until_ms = mono_ms() + w->c->deadline_ms;
		subscribe(t);
		return;
	case TR_FOLLOW:
		if (ev != TE_END)
			break;
		if (t->final) {
			track_done(t);
			return;
		}
		if (resumable(t, status)) {
			t->state = TR_BACKOFF;
			w->dirty = 1;
			if (!t->retry_ev)
				t->retry_ev = evtimer_new(w->c->base, retry_cb, t);
			struct timeval tv = {0, RESUBSCRIBE_MS * 1000};
			evtimer_add(t->retry_ev, &tv);
			return;
		}
		if (status == GRPC_STATUS_OK) {
			status = GRPC_STATUS_UNKNOWN;
			message = "the progress stream ended before the task finished";
		}
		track_fail(t, status, message);
		return;
	case TR_BACKOFF:
		if (ev != TE_RETRY)
			break;
		t->state = TR_FOLLOW;
		rpc_channel_connect(w->c->ch); /* now, not when the backoff says */
		subscribe(t);
		return;
	case TR_DONE:
		break;
	}
	log_error("illegal_transition", "task=%s state=%d event=%d", t->id, (int)t->state, (int)ev);
}

/* Prepares w to follow ids (borrowed; they must outlive w) in view. */
static void watcher_init(struct watcher *w, struct client *c, enum view view, char **ids, size_t n)
{
	memset(w, 0, sizeof *w);
	w->c = c;
	w->view = view;
	w->n = n;
	w->t = xcalloc(n, sizeof *w->t);
	w->start_ms = wall_ms();
	for (size_t i = 0; i < n; i++) {
		w->t[i].w = w;
		w->t[i].id = ids[i];
	}
	if (view == VIEW_BAR) {
		const char *term = getenv("TERM");
		w->color = !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
		w->tick = event_new(c->base, -1, EV_PERSIST, tick_cb, w);
		struct timeval tv = {0, REDRAW_MS * 1000};
		event_add(w->tick, &tv);
	}
}

/* Starts following every task: on a terminal the task's details first. */
static void watcher_start(struct watcher *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct track *t = &w->t[i];
		if (w->view == VIEW_BAR) {
			t->state = TR_INFO;
			Orchestrator__V1__GetTaskRequest r =
			    ORCHESTRATOR__V1__GET_TASK_REQUEST__INIT;
			r.task_id = (char *)t->id;
			unary_start(w->c, GATEWAY_PATH "GetTask", &r.base, info_reply, t);
		} else {
			t->state = TR_FOLLOW;
			t->retry_until_ms = mono_ms() + w->c->deadline_ms;
			subscribe(t);
		}
	}
}

/* Frees w's tasks and timers: after client_close, before client_free. */
static void watcher_free(struct watcher *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct track *t = &w->t[i];
		if (t->retry_ev)
			event_free(t->retry_ev);
		free(t->name);
		free(t->message);
		free(t->output);
		free(t->error);
		free(t->err_message);
	}
	free(w->t);
	if (w->tick)
		event_free(w->tick);
	memset(w, 0, sizeof *w);
}

static enum view watch_view(void)
{
	return isatty(STDOUT_FILENO) ? VIEW_BAR : VIEW_JSON;
}

/* ---- orchd watch ---------------------------------------------------------------- */

static const char watch_about[] =
    "Follows tasks until each one ends. On a terminal: a progress bar per task\n"
    "(percent, message, elapsed time since submission, status), redrawn in\n"
    "place, then each task's final status and output. Otherwise: one JSON line\n"
    "per update,\n"
    "  {\"task_id\",\"status\",\"percent\",\"message\",\"timestamp_unix_ms\",\"attempt\"}\n"
    "and on the final one also \"error\", \"final\": true and the output: as\n"
    "\"output\" (a JSON string) when it is valid UTF-8, else as \"output_base64\"\n"
    "(standard base64, padded). A stream broken by a gateway restart is\n"
    "re-opened for up to --deadline. Exits 0 when every task COMPLETED.\n";

int cmd_watch(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	const struct opt opts[] = {CLIENT_OPTS(&cf), OPTS_END};
	int n = parse("watch", "ID... [FLAGS]", watch_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n == 0) {
		cmd_error("watch", "expected at least one task ID (see --help)");
		return EXIT_USAGE;
	}
	struct client c;
	int rc = client_init(&c, "watch", &cf);
	if (rc) {
		client_free(&c);
		return rc;
	}
	struct watcher w;
	watcher_init(&w, &c, watch_view(), argv, (size_t)n);
	watcher_start(&w);
	rc = client_run(&c);
	client_close(&c);
	watcher_free(&w);
	client_free(&c);
	return rc;
}

/* ---- orchd submit ----------------------------------------------------------------- */

static const char submit_about[] =
    "Submits a task and prints its id on stdout (only the id, so scripts can\n"
    "capture it). The payload is --payload's text, or the bytes of\n"
    "--payload-file (- for stdin), or empty. --wait then blocks until the task\n"
    "ends and prints its output after the id line; the exit status is 0 for\n"
    "COMPLETED and 1 otherwise, with the error on stderr. --watch shows\n"
    "progress as `orchd watch` does. A repeated --idempotency-key prints the\n"
    "first task's id and creates nothing (a note on stderr says so).\n";

struct submit {
	struct client c;
	Orchestrator__V1__TaskSpec spec;
	int follow; /* 0, or 1 + the view */
	enum view view;
	char *id;
	struct watcher w;
};

static void submit_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                         size_t len, void *arg)
{
	struct submit *s = arg;
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	Orchestrator__V1__TaskAccepted *a = orchestrator__v1__task_accepted__unpack(NULL, len, msg);
	if (!a || !a->task_id || !*a->task_id) {
		if (a)
			orchestrator__v1__task_accepted__free_unpacked(a, NULL);
		bad_answer(c);
		return;
	}
	s->id = xstrdup(a->task_id);
	if (a->duplicate)
		fprintf(stderr,
		        "orchd submit: idempotency key '%s' matched task %s: nothing new "
		        "was created\n",
		        s->spec.idempotency_key, s->id);
	orchestrator__v1__task_accepted__free_unpacked(a, NULL);
	printf("%s\n", s->id);
	if (emit(NULL, 0) != 0) {
		client_stop(c, EXIT_FAIL);
		return;
	}
	if (!s->follow) {
		client_stop(c, EXIT_OK);
		return;
	}
	watcher_init(&s->w, c, s->view, &s->id, 1);
	watcher_start(&s->w);
}

/* Reads the whole of path ("-": stdin) into out. Returns 0 or -errno
 * (-EFBIG past MAX_PAYLOAD_READ). */
static int read_all(const char *path, struct sbuf *out)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return -errno;
	char buf[65536];
	int rv = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rv = -errno;
			break;
		}
		sbuf_add(out, buf, (size_t)r);
		if (out->len > MAX_PAYLOAD_READ) {
			rv = -EFBIG;
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return rv;
}

int cmd_submit(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	const char *payload = NULL, *payload_file = NULL, *idem = NULL, *desc = NULL;
	int priority = 0, max_attempts = 0, wait = 0, watch = 0;
	int64_t timeout_ms = 0;
	struct opt_list labels = {0};
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"payload", NULL, OPT_STR, &payload, "TEXT", "the task's input"},
	    {"payload-file", NULL, OPT_STR, &payload_file, "PATH",
	     "read the input from a file (- for stdin)"},
	    {"priority", NULL, OPT_INT, &priority, "N", "higher runs first (default 0)"},
	    {"max-attempts", NULL, OPT_INT, &max_attempts, "N",
	     "attempts before the task fails (default: the scheduler's, 3)"},
	    {"timeout", NULL, OPT_DUR, &timeout_ms, "DURATION",
	     "run time limit per attempt, e.g. 30s, 5m (default none)"},
	    {"idempotency-key", NULL, OPT_STR, &idem, "KEY",
	     "a repeated key returns the first task instead of a new one"},
	    {"label", NULL, OPT_LIST, &labels, "KEY=VALUE",
	     "a tag stored with the task (repeatable)"},
	    {"description", NULL, OPT_STR, &desc, "TEXT", "free text for people"},
	    {"wait", NULL, OPT_BOOL, &wait, NULL, "wait for the end and print the output"},
	    {"watch", NULL, OPT_BOOL, &watch, NULL, "show progress until the end"},
	    OPTS_END,
	};
	int n = parse("submit", "NAME [FLAGS]", submit_about, opts, argc, argv);
	if (n < 0) {
		opt_list_free(&labels);
		return -1 - n;
	}
	int rc = EXIT_USAGE;
	const char *why = NULL;
	if (n != 1)
		why = n ? "expected one task NAME, got more" : "expected a task NAME";
	else if (!*argv[0])
		why = "the task NAME must not be empty";
	else if (payload && payload_file)
		why = "--payload and --payload-file exclude each other";
	else if (wait && watch)
		why = "--wait and --watch exclude each other";
	else if (max_attempts < 0)
		why = "--max-attempts must not be negative";
	if (why) {
		cmd_error("submit", "%s (see --help)", why);
		opt_list_free(&labels);
		return EXIT_USAGE;
	}

	Orchestrator__V1__TaskSpec__LabelsEntry *entries = xcalloc(labels.n + 1, sizeof *entries);
	Orchestrator__V1__TaskSpec__LabelsEntry **lp = xcalloc(labels.n + 1, sizeof *lp);
	struct sbuf data;
	sbuf_init(&data);
	struct submit s;
	memset(&s, 0, sizeof s);
	orchestrator__v1__task_spec__init(&s.spec);
	for (size_t i = 0; i < labels.n; i++) {
		size_t klen;
		const char *val;
		if (opt_parse_kv(labels.v[i], &klen, &val) != 0) {
			cmd_error("submit", "invalid --label '%s' (expected KEY=VALUE)",
			          labels.v[i]);
			goto out;
		}
		orchestrator__v1__task_spec__labels_entry__init(&entries[i]);
		entries[i].key = xstrndup(labels.v[i], klen);
		entries[i].value = (char *)val;
		lp[i] = &entries[i];
	}
	if (payload_file) {
		int err = read_all(payload_file, &data);
		if (err) {
			cmd_error("submit", "cannot read --payload-file %s: %s", payload_file,
			          err == -EFBIG ? "larger than 64 MiB" : strerror(-err));
			rc = EXIT_FAIL;
			goto out;
		}
	} else if (payload) {
		sbuf_adds(&data, payload);
	}
	s.spec.name = argv[0];
	s.spec.description = (char *)(desc ? desc : "");
	s.spec.payload.data = (uint8_t *)data.s;
	s.spec.payload.len = data.len;
	s.spec.priority = priority;
	s.spec.max_attempts = max_attempts;
	s.spec.timeout_ms = timeout_ms;
	s.spec.idempotency_key = (char *)(idem ? idem : "");
	s.spec.n_labels = labels.n;
	s.spec.labels = lp;
	s.follow = wait || watch;
	s.view = wait ? VIEW_WAIT : watch_view();

	rc = client_init(&s.c, "submit", &cf);
	if (rc == 0) {
		unary_start(&s.c, GATEWAY_PATH "SubmitTask", &s.spec.base, submit_reply, &s);
		rc = client_run(&s.c);
	}
	client_close(&s.c);
	if (s.w.c)
		watcher_free(&s.w);
	client_free(&s.c);
out:
	for (size_t i = 0; i < labels.n; i++)
		free(entries[i].key);
	free(entries);
	free(lp);
	free(s.id);
	sbuf_free(&data);
	opt_list_free(&labels);
	return rc;
}

/* ---- orchd get ------------------------------------------------------------------- */

static const char get_about[] =
    "Shows one task: a table of its fields (unset ones left out; payload and\n"
    "output as one-line previews), or with --json one JSON object with every\n"
    "field. In JSON, payload and output are strings when they are valid UTF-8,\n"
    "else \"payload_base64\" / \"output_base64\" (standard base64, padded).\n";

/* A one-line preview of bytes for the table. */
static void preview(struct sbuf *b, const uint8_t *p, size_t n)
{
	char sz[HUMAN_BUFLEN];
	human_size(n, sz, sizeof sz);
	if (utf8_valid(p, n))
		sbuf_addf(b, "%.*s (%s)", (int)n, (const char *)p, sz);
	else
		sbuf_addf(b, "(%s of binary data; --json shows it in base64)", sz);
}

static void row(struct table *tb, const char *key, const char *val)
{
	const char *cells[2] = {key, val};
	table_add(tb, cells);
}

static void rowf(struct table *tb, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rowf(struct table *tb, const char *key, const char *fmt, ...)
{
	struct sbuf b;
	sbuf_init(&b);
	va_list ap;
	va_start(ap, fmt);
	sbuf_vaddf(&b, fmt, ap);
	va_end(ap);
	row(tb, key, sbuf_str(&b));
	sbuf_free(&b);
}

/* A time row: "2025-01-31T09:05:00Z (3m05s ago)". */
static void time_row(struct table *tb, const char *key, int64_t at, int64_t now)
{
	char t[HUMAN_BUFLEN], d[HUMAN_BUFLEN];
	if (at)
		rowf(tb, key, "%s (%s ago)", human_time(at, t, sizeof t),
		     human_duration(now - at, d, sizeof d));
}

static void task_table(struct sbuf *out, const Orchestrator__V1__Task *t)
{
	static const Orchestrator__V1__TaskSpec empty = ORCHESTRATOR__V1__TASK_SPEC__INIT;
	const Orchestrator__V1__TaskSpec *s = t->spec ? t->spec : &empty;
	int64_t now = wall_ms();
	char d[HUMAN_BUFLEN];
	struct table *tb = table_new(2);
	table_set_max(tb, 1, 100);
	row(tb, "id:", t->task_id);
	row(tb, "name:", s->name);
	row(tb, "status:", status_str(t->status));
	if (s->max_attempts)
		rowf(tb, "attempt:", "%d of %d", t->attempt, s->max_attempts);
	else
		rowf(tb, "attempt:", "%d", t->attempt);
	if (t->status == ORCHESTRATOR__V1__TASK_STATUS__TASK_STATUS_RUNNING || t->percent ||
	    (t->message && *t->message))
		rowf(tb, "progress:", "%d%%%s%s", t->percent, t->message && *t->message ? "  " : "",
		     t->message ? t->message : "");
	if (s->description && *s->description)
		row(tb, "description:", s->description);
	rowf(tb, "priority:", "%d", s->priority);
	if (s->n_labels) {
		struct sbuf b;
		sbuf_init(&b);
		for (size_t i = 0; i < s->n_labels; i++)
			sbuf_addf(&b, "%s%s=%s", i ? ", " : "", s->labels[i]->key,
			          s->labels[i]->value);
		row(tb, "labels:", sbuf_str(&b));
		sbuf_free(&b);
	}
	if (s->timeout_ms)
		row(tb, "timeout:", human_duration(s->timeout_ms, d, sizeof d));
	if (s->idempotency_key && *s->idempotency_key)
		row(tb, "idempotency key:", s->idempotency_key);
	time_row(tb, "created:", t->created_unix_ms, now);
	time_row(tb, "started:", t->started_unix_ms, now);
	time_row(tb, "finished:", t->finished_unix_ms, now);
	if (t->finished_unix_ms && t->started_unix_ms)
		row(tb, "ran for:",
		    human_duration(t->finished_unix_ms - t->started_unix_ms, d, sizeof d));
	if (t->not_before_unix_ms > now)
		rowf(tb, "retry in:", "%s",
		     human_duration(t->not_before_unix_ms - now, d, sizeof d));
	if (t->worker_id && *t->worker_id)
		row(tb, "worker:", t->worker_id);
	struct sbuf b;
	sbuf_init(&b);
	if (s->payload.len) {
		preview(&b, s->payload.data, s->payload.len);
		row(tb, "payload:", sbuf_str(&b));
	}
	if (t->result && t->result->output.len) {
		sbuf_reset(&b);
		preview(&b, t->result->output.data, t->result->output.len);
		row(tb, "output:", sbuf_str(&b));
	}
	if (t->result && t->result->error && *t->result->error)
		row(tb, "error:", t->result->error);
	sbuf_free(&b);
	table_render(tb, out);
	table_del(tb);
}

struct get {
	struct client c;
	int json;
};

static void get_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                      size_t len, void *arg)
{
	struct get *g = arg;
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	Orchestrator__V1__Task *t = orchestrator__v1__task__unpack(NULL, len, msg);
	if (!t) {
		bad_answer(c);
		return;
	}
	struct sbuf b;
	sbuf_init(&b);
	if (g->json) {
		struct json j;
		json_init(&j, &b);
		task_json(&j, t);
		sbuf_addc(&b, '\n');
	} else {
		task_table(&b, t);
	}
	orchestrator__v1__task__free_unpacked(t, NULL);
	client_stop(c, emit(b.s, b.len) == 0 ? EXIT_OK : EXIT_FAIL);
	sbuf_free(&b);
}

int cmd_get(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	struct get g = {.json = 0};
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"json", NULL, OPT_BOOL, &g.json, NULL, "print one JSON object"},
	    OPTS_END,
	};
	int n = parse("get", "ID [FLAGS]", get_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n != 1) {
		cmd_error("get", "expected one task ID (see --help)");
		return EXIT_USAGE;
	}
	int rc = client_init(&g.c, "get", &cf);
	if (rc == 0) {
		Orchestrator__V1__GetTaskRequest r = ORCHESTRATOR__V1__GET_TASK_REQUEST__INIT;
		r.task_id = argv[0];
		unary_start(&g.c, GATEWAY_PATH "GetTask", &r.base, get_reply, &g);
		rc = client_run(&g.c);
	}
	client_free(&g.c);
	return rc;
}

/* ---- orchd cancel ---------------------------------------------------------------- */

static const char cancel_about[] =
    "Cancels a task: a pending one at once (\"ID: CANCELLED\"), a running one by\n"
    "telling its worker, after which it ends CANCELLED (\"ID: cancel requested\").\n"
    "A finished task cannot be cancelled (FAILED_PRECONDITION, exit 1).\n";

static void cancel_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                         size_t len, void *arg)
{
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	Orchestrator__V1__CancelTaskResponse *r =
	    orchestrator__v1__cancel_task_response__unpack(NULL, len, msg);
	if (!r) {
		bad_answer(c);
		return;
	}
	if (r->status == ORCHESTRATOR__V1__TASK_STATUS__TASK_STATUS_CANCELLED)
		printf("%s: CANCELLED\n", r->task_id);
	else
		printf("%s: cancel requested (%s; its worker is stopping it)\n", r->task_id,
		       status_str(r->status));
	orchestrator__v1__cancel_task_response__free_unpacked(r, NULL);
	client_stop(c, emit(NULL, 0) == 0 ? EXIT_OK : EXIT_FAIL);
}

int cmd_cancel(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	const char *reason = NULL;
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"reason", NULL, OPT_STR, &reason, "TEXT", "why, stored as the task's error"},
	    OPTS_END,
	};
	int n = parse("cancel", "ID [FLAGS]", cancel_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n != 1) {
		cmd_error("cancel", "expected one task ID (see --help)");
		return EXIT_USAGE;
	}
	struct client c;
	int rc = client_init(&c, "cancel", &cf);
	if (rc == 0) {
		Orchestrator__V1__CancelTaskRequest r = ORCHESTRATOR__V1__CANCEL_TASK_REQUEST__INIT;
		r.task_id = argv[0];
		r.reason = (char *)(reason ? reason : "");
		unary_start(&c, GATEWAY_PATH "CancelTask", &r.base, cancel_reply, NULL);
		rc = client_run(&c);
	}
	client_free(&c);
	return rc;
}

/* ---- orchd list ------------------------------------------------------------------ */

static const char list_about[] =
    "Lists tasks newest first as an aligned table (ID, NAME, STATUS, ATTEMPT,\n"
    "PROGRESS, AGE, RAN), at most --limit of them (0: all; a note on stderr\n"
    "says when more exist). --status takes PENDING, RUNNING, COMPLETED, FAILED\n"
    "or CANCELLED (any case). --json prints one JSON array of task objects as\n"
    "`orchd get --json` does.\n";

struct list {
	struct client c;
	Orchestrator__V1__ListTasksRequest req;
	int limit;
	int json;
	Orchestrator__V1__ListTasksResponse **pages;
	size_t npages;
	size_t count; /* tasks kept, at most limit */
	int more;     /* tasks past the limit exist */
};

static void list_print(struct list *l)
{
	struct sbuf b;
	sbuf_init(&b);
	size_t shown = 0;
	if (l->json) {
		struct json j;
		json_init(&j, &b);
		json_arr_begin(&j);
		for (size_t p = 0; p < l->npages; p++)
			for (size_t i = 0; i < l->pages[p]->n_tasks && shown < l->count;
			     i++, shown++)
				task_json(&j, l->pages[p]->tasks[i]);
		json_arr_end(&j);
		sbuf_addc(&b, '\n');
	} else if (l->count) {
		static const char *const head[] = {"ID",       "NAME", "STATUS", "ATTEMPT",
		                                   "PROGRESS", "AGE",  "RAN"};
		struct table *tb = table_new(7);
		table_set_max(tb, 1, 32);
		table_set_align(tb, 3, TABLE_RIGHT);
		table_set_align(tb, 4, TABLE_RIGHT);
		table_set_align(tb, 5, TABLE_RIGHT);
		table_set_align(tb, 6, TABLE_RIGHT);
		table_add(tb, head);
		int64_t now = wall_ms();
		for (size_t p = 0; p < l->npages; p++) {
			for (size_t i = 0; i < l->pages[p]->n_tasks && shown < l->count;
			     i++, shown++) {
				const Orchestrator__V1__Task *t = l->pages[p]->tasks[i];
				char att[32], pct[16], ag[HUMAN_BUFLEN], ran[HUMAN_BUFLEN];
				int max = t->spec ? t->spec->max_attempts : 0;
				if (max)
					snprintf(att, sizeof att, "%d/%d", t->attempt, max);
				else
					snprintf(att, sizeof att, "%d", t->attempt);
				if (t->status == ORCHESTRATOR__V1__TASK_STATUS__TASK_STATUS_RUNNING)
					snprintf(pct, sizeof pct, "%d%%", t->percent);
				else
					snprintf(pct, sizeof pct, "-");
				if (t->started_unix_ms)
					human_duration(
					    (t->finished_unix_ms ? t->finished_unix_ms : now) -
					        t->started_unix_ms,
					    ran, sizeof ran);
				else
					snprintf(ran, sizeof ran, "-");
				const char *cells[7] = {t->task_id,
				                        t->spec ? t->spec->name : "",
				                        status_str(t->status),
				                        att,
				                        pct,
				                        age(t->created_unix_ms, now, ag, sizeof ag),
				                        ran};
				table_add(tb, cells);
			}
		}
		table_render(tb, &b);
		table_del(tb);
	}
	int rc = emit(b.s, b.len) == 0 ? EXIT_OK : EXIT_FAIL;
	sbuf_free(&b);
	if (!l->count && !l->json)
		fprintf(stderr, "orchd list: no tasks%s\n",
		        l->req.status || *l->req.name ? " match" : "");
	if (l->more)
		fprintf(stderr, "orchd list: showing the newest %zu; --limit N or 0 shows more\n",
		        l->count);
	client_stop(&l->c, rc);
}

static void list_next(struct list *l);

static void list_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                       size_t len, void *arg)
{
	struct list *l = arg;
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	Orchestrator__V1__ListTasksResponse *r =
	    orchestrator__v1__list_tasks_response__unpack(NULL, len, msg);
	if (!r) {
		bad_answer(c);
		return;
	}
	l->pages = xrealloc(l->pages, (l->npages + 1) * sizeof *l->pages);
	l->pages[l->npages++] = r;
	l->count += r->n_tasks;
	int last = !r->next_page_token || !*r->next_page_token || r->n_tasks == 0;
	if (l->limit > 0 && l->count >= (size_t)l->limit) {
		l->more = l->count > (size_t)l->limit || !last;
		l->count = (size_t)l->limit;
		last = 1;
	}
	if (last) {
		list_print(l);
		return;
	}
	l->req.page_token = r->next_page_token;
	list_next(l);
}

static void list_next(struct list *l)
{
	size_t want = l->limit > 0 ? (size_t)l->limit - l->count : 100;
	l->req.page_size = want < 100 ? (int32_t)want : 100;
	unary_start(&l->c, GATEWAY_PATH "ListTasks", &l->req.base, list_reply, l);
}

int cmd_list(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	const char *status = NULL, *name = NULL;
	struct list l;
	memset(&l, 0, sizeof l);
	l.limit = DEFAULT_LIMIT;
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"status", NULL, OPT_STR, &status, "STATUS", "only tasks in this status"},
	    {"name", NULL, OPT_STR, &name, "NAME", "only tasks of this name"},
	    {"limit", NULL, OPT_INT, &l.limit, "N", "at most N tasks, 0 for all (default 50)"},
	    {"json", NULL, OPT_BOOL, &l.json, NULL, "print a JSON array"},
	    OPTS_END,
	};
	int n = parse("list", "[FLAGS]", list_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n > 0) {
		cmd_error("list", "unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	orchestrator__v1__list_tasks_request__init(&l.req);
	if (status) {
		int st = task_state_from_name(status);
		if (st < 0) {
			cmd_error("list",
			          "unknown --status '%s' (PENDING, RUNNING, COMPLETED, FAILED "
			          "or CANCELLED)",
			          status);
			return EXIT_USAGE;
		}
		l.req.status = (Orchestrator__V1__TaskStatus)st;
	}
	if (l.limit < 0) {
		cmd_error("list", "--limit must not be negative");
		return EXIT_USAGE;
	}
	l.req.name = (char *)(name ? name : "");
	int rc = client_init(&l.c, "list", &cf);
	if (rc == 0) {
		list_next(&l);
		rc = client_run(&l.c);
	}
	client_free(&l.c);
	for (size_t i = 0; i < l.npages; i++)
		orchestrator__v1__list_tasks_response__free_unpacked(l.pages[i], NULL);
	free(l.pages);
	return rc;
}

/* ---- orchd workers --------------------------------------------------------------- */

static const char workers_about[] =
    "Lists the workers connected to the scheduler: id, slots in use of total,\n"
    "the task names they run, time since their last heartbeat, version and\n"
    "address. --json prints one JSON array instead.\n";

struct workers {
	struct client c;
	int json;
};

static void workers_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                          size_t len, void *arg)
{
	struct workers *wk = arg;
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	Orchestrator__V1__ListWorkersResponse *r =
	    orchestrator__v1__list_workers_response__unpack(NULL, len, msg);
	if (!r) {
		bad_answer(c);
		return;
	}
	int64_t now = wall_ms();
	struct sbuf b;
	sbuf_init(&b);
	if (wk->json) {
		struct json j;
		json_init(&j, &b);
		json_arr_begin(&j);
		for (size_t i = 0; i < r->n_workers; i++) {
			const Orchestrator__V1__WorkerInfo *w = r->workers[i];
			json_obj_begin(&j);
			json_kv_str(&j, "worker_id", w->worker_id);
			json_kv_int(&j, "slots", w->slots);
			json_kv_int(&j, "available_slots", w->available_slots);
			json_key(&j, "task_names");
			json_arr_begin(&j);
			for (size_t k = 0; k < w->n_task_names; k++)
				json_str(&j, w->task_names[k]);
			json_arr_end(&j);
			json_key(&j, "running_task_ids");
			json_arr_begin(&j);
			for (size_t k = 0; k < w->n_running_task_ids; k++)
				json_str(&j, w->running_task_ids[k]);
			json_arr_end(&j);
			json_kv_str(&j, "version", w->version);
			json_kv_str(&j, "address", w->address);
			json_kv_int(&j, "connected_unix_ms", w->connected_unix_ms);
			json_kv_int(&j, "last_heartbeat_unix_ms", w->last_heartbeat_unix_ms);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		sbuf_addc(&b, '\n');
	} else if (r->n_workers) {
		static const char *const head[] = {"ID", "SLOTS",   "TASKS",  "HEARTBEAT",
		                                   "UP", "VERSION", "ADDRESS"};
		struct table *tb = table_new(7);
		table_set_max(tb, 2, 40);
		table_set_align(tb, 1, TABLE_RIGHT);
		table_set_align(tb, 3, TABLE_RIGHT);
		table_set_align(tb, 4, TABLE_RIGHT);
		table_add(tb, head);
		for (size_t i = 0; i < r->n_workers; i++) {
			const Orchestrator__V1__WorkerInfo *w = r->workers[i];
			char slots[32], hb[HUMAN_BUFLEN + 8], up[HUMAN_BUFLEN], d[HUMAN_BUFLEN];
			struct sbuf names;
			sbuf_init(&names);
			for (size_t k = 0; k < w->n_task_names; k++)
				sbuf_addf(&names, "%s%s", k ? "," : "", w->task_names[k]);
			snprintf(slots, sizeof slots, "%d/%d", w->slots - w->available_slots,
			         w->slots);
			if (w->last_heartbeat_unix_ms)
				snprintf(hb, sizeof hb, "%s ago",
				         age(w->last_heartbeat_unix_ms, now, d, sizeof d));
			else
				snprintf(hb, sizeof hb, "-");
			const char *cells[7] = {w->worker_id,
			                        slots,
			                        sbuf_str(&names),
			                        hb,
			                        age(w->connected_unix_ms, now, up, sizeof up),
			                        w->version && *w->version ? w->version : "-",
			                        w->address && *w->address ? w->address : "-"};
			table_add(tb, cells);
			sbuf_free(&names);
		}
		table_render(tb, &b);
		table_del(tb);
	}
	size_t nw = r->n_workers;
	orchestrator__v1__list_workers_response__free_unpacked(r, NULL);
	int rc = emit(b.s, b.len) == 0 ? EXIT_OK : EXIT_FAIL;
	sbuf_free(&b);
	if (!nw && !wk->json)
		fprintf(stderr, "orchd workers: no workers connected\n");
	client_stop(c, rc);
}

int cmd_workers(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	struct workers wk = {.json = 0};
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"json", NULL, OPT_BOOL, &wk.json, NULL, "print a JSON array"},
	    OPTS_END,
	};
	int n = parse("workers", "[FLAGS]", workers_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n > 0) {
		cmd_error("workers", "unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	int rc = client_init(&wk.c, "workers", &cf);
	if (rc == 0) {
		Orchestrator__V1__ListWorkersRequest r =
		    ORCHESTRATOR__V1__LIST_WORKERS_REQUEST__INIT;
		unary_start(&wk.c, GATEWAY_PATH "ListWorkers", &r.base, workers_reply, &wk);
		rc = client_run(&wk.c);
	}
	client_free(&wk.c);
	return rc;
}

/* ---- orchd health ---------------------------------------------------------------- */

static const char health_about[] =
    "Asks a server whether it serves: ADDR (default --gateway) may run any\n"
    "orchd role. It tries orchestrator.v1.Gateway/HealthCheck, then the\n"
    "Scheduler's and the Worker's, then the standard grpc.health.v1.Health;\n"
    "it prints the role, status, version and uptime. Exits 0 when SERVING, 1\n"
    "when not, 3 when unreachable.\n";

/* Which service health asks, in order. */
enum probe { PROBE_GATEWAY, PROBE_SCHEDULER, PROBE_WORKER, PROBE_STANDARD, PROBE_END };

static const char *const probe_path[] = {
    "/orchestrator.v1.Gateway/HealthCheck",
    "/orchestrator.v1.Scheduler/HealthCheck",
    "/orchestrator.v1.Worker/HealthCheck",
    "/grpc.health.v1.Health/Check",
};

struct health_cmd {
	struct client c;
	enum probe probe;
	int json;
};

static void health_probe(struct health_cmd *h);

static void health_print(struct health_cmd *h, const char *role, int serving, const char *version,
                         int64_t uptime_ms)
{
	const char *st = serving ? "SERVING" : "NOT_SERVING";
	struct sbuf b;
	sbuf_init(&b);
	if (h->json) {
		struct json j;
		json_init(&j, &b);
		json_obj_begin(&j);
		json_kv_str(&j, "address", h->c.addr);
		json_kv_str(&j, "role", role);
		json_kv_str(&j, "status", st);
		json_kv_str(&j, "version", version);
		json_kv_int(&j, "uptime_ms", uptime_ms);
		json_kv_str(&j, "service", probe_path[h->probe] + 1);
		json_obj_end(&j);
		sbuf_addc(&b, '\n');
	} else if (*role) {
		char up[HUMAN_BUFLEN];
		sbuf_addf(&b, "%s: %s %s, version %s, up %s\n", h->c.addr, role, st,
		          *version ? version : "?", human_duration(uptime_ms, up, sizeof up));
	} else {
		sbuf_addf(&b, "%s: %s (grpc.health.v1; not an orchd role)\n", h->c.addr, st);
	}
	int rc = emit(b.s, b.len) == 0 && serving ? EXIT_OK : EXIT_FAIL;
	sbuf_free(&b);
	client_stop(&h->c, rc);
}

static void health_reply(struct client *c, int status, const char *message, const uint8_t *msg,
                         size_t len, void *arg)
{
	struct health_cmd *h = arg;
	if (status == GRPC_STATUS_UNIMPLEMENTED && h->probe + 1 < PROBE_END) {
		h->probe++;
		health_probe(h);
		return;
	}
	if (status != GRPC_STATUS_OK) {
		client_fail(c, status, message);
		return;
	}
	if (h->probe == PROBE_STANDARD) {
		Grpc__Health__V1__HealthCheckResponse *r =
		    grpc__health__v1__health_check_response__unpack(NULL, len, msg);
		if (!r) {
			bad_answer(c);
			return;
		}
		int serving =
		    r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
		grpc__health__v1__health_check_response__free_unpacked(r, NULL);
		health_print(h, "", serving, "", 0);
		return;
	}
	Orchestrator__V1__HealthCheckResponse *r =
	    orchestrator__v1__health_check_response__unpack(NULL, len, msg);
	if (!r) {
		bad_answer(c);
		return;
	}
	static const char *const roles[] = {"gateway", "scheduler", "worker"};
	health_print(h, r->role && *r->role ? r->role : roles[h->probe],
	             r->status == ORCHESTRATOR__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
	             r->version ? r->version : "", r->uptime_ms);
	orchestrator__v1__health_check_response__free_unpacked(r, NULL);
}

static void health_probe(struct health_cmd *h)
{
	if (h->probe == PROBE_STANDARD) {
		Grpc__Health__V1__HealthCheckRequest r =
		    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		unary_start(&h->c, probe_path[h->probe], &r.base, health_reply, h);
	} else {
		Orchestrator__V1__HealthCheckRequest r =
		    ORCHESTRATOR__V1__HEALTH_CHECK_REQUEST__INIT;
		unary_start(&h->c, probe_path[h->probe], &r.base, health_reply, h);
	}
}

int cmd_health(int argc, char **argv)
{
	struct client_flags cf = CLIENT_FLAGS_INIT;
	struct health_cmd h;
	memset(&h, 0, sizeof h);
	const struct opt opts[] = {
	    CLIENT_OPTS(&cf),
	    {"json", NULL, OPT_BOOL, &h.json, NULL, "print one JSON object"},
	    OPTS_END,
	};
	int n = parse("health", "[ADDR] [FLAGS]", health_about, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n > 1) {
		cmd_error("health", "expected at most one ADDR (see --help)");
		return EXIT_USAGE;
	}
	if (n == 1)
		cf.gateway = argv[0];
	int rc = client_init(&h.c, "health", &cf);
	if (rc == 0) {
		h.c.peer = ""; /* any role may listen there */
		health_probe(&h);
		rc = client_run(&h.c);
	}
	client_free(&h.c);
	return rc;
}
