/* Unit tests for lib/handler: the progress-line parser, argv splitting, the
 * registry, every built-in on a real event loop (progress, cancel,
 * timeout), and exec handlers running /bin/sh children (output, progress
 * on fd 3, failures, signals, the output cap, timeouts that kill the whole
 * process group). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "handler.h"

/* ---- parsing ------------------------------------------------------------ */

START_TEST(progress_lines_parse)
{
	int pct = -1;
	char msg[64];
	static const struct {
		const char *line;
		int pct;
		const char *msg;
	} ok[] = {
		{"50", 50, ""},
		{"50 half way", 50, "half way"},
		{"0\n", 0, ""},
		{"100 done\r\n", 100, "done"},
		{"  7%   seven percent  \n", 7, "seven percent"},
		{"42.5 fractions drop", 42, "fractions drop"},
		{"9\tTabbed", 9, "Tabbed"},
		{"007 leading zeros", 7, "leading zeros"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_msg(handler_parse_progress(ok[i].line, strlen(ok[i].line), &pct, msg,
						     sizeof msg) == 0,
			      "%s", ok[i].line);
		ck_assert_int_eq(pct, ok[i].pct);
		ck_assert_str_eq(msg, ok[i].msg);
	}
	static const char *const bad[] = {"",	 "\n",	 "abc", "101", "-1",	      "50x",
					  "1e3", "x 50", "  ",	"%50", "99999999999 big"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(handler_parse_progress(bad[i], strlen(bad[i]), &pct, msg,
						     sizeof msg) == -EINVAL,
			      "'%s' should not parse", bad[i]);
}
END_TEST

START_TEST(progress_message_is_truncated_and_length_bounded)
{
	int pct;
	char small[6];
	const char *line = "30 a long message";
	ck_assert_int_eq(handler_parse_progress(line, strlen(line), &pct, small, sizeof small), 0);
	ck_assert_str_eq(small, "a lon");
	/* Only len bytes are read: the rest of the buffer is not the line. */
	ck_assert_int_eq(handler_parse_progress("12 ab|garbage", 5, &pct, small, sizeof small), 0);
	ck_assert_int_eq(pct, 12);
	ck_assert_str_eq(small, "ab");
	/* No message buffer at all. */
	ck_assert_int_eq(handler_parse_progress("64 x", 4, &pct, NULL, 0), 0);
	ck_assert_int_eq(pct, 64);
}
END_TEST

START_TEST(argv_split_quotes_without_a_shell)
{
	char **argv;
	ck_assert_int_eq(handler_split_argv("/bin/sh -c 'cat; echo 50 half >&3'", &argv), 3);
	ck_assert_str_eq(argv[0], "/bin/sh");
	ck_assert_str_eq(argv[1], "-c");
	ck_assert_str_eq(argv[2], "cat; echo 50 half >&3");
	ck_assert_ptr_null(argv[3]);
	handler_argv_free(argv);

	ck_assert_int_eq(handler_split_argv("  a\t\"b c\" \"q\\\"x\\\\\" d\\ e f'g h'i $HOME *  ",
					    &argv),
			 7);
	ck_assert_str_eq(argv[0], "a");
	ck_assert_str_eq(argv[1], "b c");
	ck_assert_str_eq(argv[2], "q\"x\\");
	ck_assert_str_eq(argv[3], "d e");
	ck_assert_str_eq(argv[4], "fg hi");
	ck_assert_str_eq(argv[5], "$HOME");
	ck_assert_str_eq(argv[6], "*");
	handler_argv_free(argv);

	ck_assert_int_eq(handler_split_argv("''", &argv), 1);
	ck_assert_str_eq(argv[0], "");
	handler_argv_free(argv);

	ck_assert_int_eq(handler_split_argv("", &argv), -EINVAL);
	ck_assert_int_eq(handler_split_argv("   ", &argv), -EINVAL);
	ck_assert_int_eq(handler_split_argv("sh -c 'open", &argv), -EINVAL);
	ck_assert_int_eq(handler_split_argv("echo \"open", &argv), -EINVAL);
	handler_argv_free(NULL);
}
END_TEST

START_TEST(registry_names_and_errors)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = handler_set_new(base, NULL);
	char err[128];
	ck_assert_int_eq(handler_set_add_builtins(set, NULL, err, sizeof err), 0);
	ck_assert_uint_eq(handler_set_count(set), 5);
	for (int i = 0; handler_builtins[i]; i++) {
		ck_assert_str_eq(handler_set_name(set, (size_t)i), handler_builtins[i]);
		ck_assert(handler_set_has(set, handler_builtins[i]));
	}
	ck_assert_ptr_null(handler_set_name(set, 5));
	ck_assert_int_eq(handler_set_add_exec(set, "upper=tr a-z A-Z", err, sizeof err), 0);
	ck_assert_uint_eq(handler_set_count(set), 6);
	ck_assert_str_eq(handler_set_name(set, 5), "upper");
	ck_assert_int_eq(handler_set_add_exec(set, "upper=cat", err, sizeof err), -EEXIST);
	ck_assert_int_eq(handler_set_add_exec(set, "echo=cat", err, sizeof err), -EEXIST);
	ck_assert_ptr_nonnull(strstr(err, "echo"));
	ck_assert_int_eq(handler_set_add_exec(set, "noequals", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_exec(set, "=cat", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_exec(set, "x=", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_exec(set, "a b=cat", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_exec(set, "q=sh -c 'x", err, sizeof err), -EINVAL);
	ck_assert(!handler_set_has(set, "nope"));
	int e = 0;
	struct handler_cbs cbs = {0};
	ck_assert_ptr_null(handler_start(set, "t", "nope", "", 0, 0, &cbs, NULL, &e));
	ck_assert_int_eq(e, -ENOENT);
	handler_set_del(set);

	set = handler_set_new(base, NULL);
	ck_assert_int_eq(handler_set_add_builtins(set, "sleep,echo", err, sizeof err), 0);
	ck_assert_uint_eq(handler_set_count(set), 2);
	ck_assert_str_eq(handler_set_name(set, 0), "sleep");
	ck_assert(!handler_set_has(set, "noop"));
	ck_assert_int_eq(handler_set_add_builtins(set, "echo", err, sizeof err), -EEXIST);
	ck_assert_int_eq(handler_set_add_builtins(set, "noop,bogus", err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bogus"));
	handler_set_del(set);

	set = handler_set_new(base, NULL);
	ck_assert_int_eq(handler_set_add_builtins(set, "none", err, sizeof err), 0);
	ck_assert_uint_eq(handler_set_count(set), 0);
	handler_set_del(set);
	handler_set_del(NULL);
	event_base_free(base);
}
END_TEST

/* ---- running handlers on a loop ------------------------------------------ */

#define MAXP 64

/* What one run reported. */
struct rec {
	struct event_base *base;
	struct handler_set *set;
	struct handler_run *run;
	int done;
	int status;
	uint8_t *out;
	size_t len;
	char error[2048];
	int np;
	int pct[MAXP];
	char msg[MAXP][128];
	/* cancel once this many progress reports arrived (0: never) */
	int cancel_after;
	/* handler_set_running() as on_done saw it */
	size_t running_in_done;
	int seq; /* the order on_done ran in, from 1 */
	/* on_done deletes the set (NULL: no) */
	struct handler_set *del_in_done;
	/* on_done activates this event (NULL: no) */
	struct event *mark_in_done;
};

static int done_seq;

static int rec_progress(int pct, const char *msg, void *arg)
{
	struct rec *r = arg;
	ck_assert(!r->done);
	if (r->np < MAXP) {
		r->pct[r->np] = pct;
		snprintf(r->msg[r->np], sizeof r->msg[0], "%s", msg);
	}
	r->np++;
	if (r->cancel_after && r->np == r->cancel_after)
		handler_cancel(r->run, "stop now");
	return 0;
}

static int rec_done(enum handler_status st, const uint8_t *out, size_t len, const char *error,
		    void *arg)
{
	struct rec *r = arg;
	ck_assert(!r->done);
	r->done = 1;
	r->status = (int)st;
	r->out = malloc(len + 1);
	memcpy(r->out, out ? out : (const uint8_t *)"", len);
	r->out[len] = 0;
	r->len = len;
	ck_assert_ptr_nonnull(error);
	snprintf(r->error, sizeof r->error, "%s", error);
	r->run = NULL;
	r->running_in_done = handler_set_running(r->set);
	r->seq = ++done_seq;
	if (r->mark_in_done)
		event_active(r->mark_in_done, 0, 0);
	if (r->del_in_done)
		handler_set_del(r->del_in_done);
	return 0;
}

static const struct handler_cbs rec_cbs = {rec_progress, rec_done};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until every rec in rs is done, at most max_ms. */
static void wait_done(struct event_base *base, struct rec *rs, int n, int max_ms)
{
	int64_t deadline = mono_ms() + max_ms;
	/* Wakes the loop at the deadline even if nothing else happens. */
	struct event *guard = evtimer_new(base, wake_cb, NULL);
	struct timeval tv = {max_ms / 1000, (max_ms % 1000) * 1000};
	evtimer_add(guard, &tv);
	for (;;) {
		int all = 1;
		for (int i = 0; i < n; i++)
			all &= rs[i].done;
		if (all)
			break;
		ck_assert_msg(mono_ms() < deadline, "runs not done within %d ms", max_ms);
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(guard);
}

static struct handler_set *mkset(struct event_base *base, size_t max_output, int grace_ms)
{
	struct handler_opts o = {.max_output = max_output, .kill_grace_ms = grace_ms};
	struct handler_set *set = handler_set_new(base, &o);
	char err[128];
	ck_assert_int_eq(handler_set_add_builtins(set, "all", err, sizeof err), 0);
	return set;
}

static void start(struct rec *r, struct handler_set *set, const char *name, const char *payload,
		  size_t len, int64_t timeout_ms)
{
	memset(r, 0, sizeof *r);
	r->set = set;
	int e = 0;
	r->run = handler_start(set, "task-1", name, payload, len, timeout_ms, &rec_cbs, r, &e);
	ck_assert_ptr_nonnull(r->run);
	/* Never synchronously: a result always comes from the loop. */
	ck_assert(!r->done);
}

static void one(struct event_base *base, struct handler_set *set, struct rec *r, const char *name,
		const char *payload, int64_t timeout_ms, int max_ms)
{
	start(r, set, name, payload, strlen(payload), timeout_ms);
	wait_done(base, r, 1, max_ms);
}

static void rec_free(struct rec *r)
{
	free(r->out);
	r->out = NULL;
}

START_TEST(builtins_noop_echo_fail_sha256)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 0, 0);
	struct rec r;

	one(base, set, &r, "noop", "ignored", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_uint_eq(r.running_in_done, 0);
	ck_assert_uint_eq(r.len, 0);
	ck_assert_str_eq(r.error, "");
	rec_free(&r);

	start(&r, set, "echo", "he\0llo", 6, 0);
	wait_done(base, &r, 1, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_uint_eq(r.len, 6);
	ck_assert_mem_eq(r.out, "he\0llo", 6);
	rec_free(&r);

	one(base, set, &r, "sha256", "abc", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_str_eq((char *)r.out,
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	rec_free(&r);
	one(base, set, &r, "sha256", "", 0, 2000);
	ck_assert_str_eq((char *)r.out,
			 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	rec_free(&r);

	one(base, set, &r, "fail", "disk on fire", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "disk on fire");
	rec_free(&r);
	one(base, set, &r, "fail", "", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "failed");
	rec_free(&r);
	/* Errors travel as protobuf strings: invalid UTF-8 is replaced. */
	one(base, set, &r, "fail", "bad \xff\xfe byte \xc3\xa9", 0, 2000);
	ck_assert_str_eq(r.error, "bad ?? byte \xc3\xa9");
	rec_free(&r);

	/* Cancelling a run whose result is already decided keeps the result. */
	start(&r, set, "echo", "won", 3, 0);
	handler_cancel(r.run, "too late");
	wait_done(base, &r, 1, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_str_eq((char *)r.out, "won");
	rec_free(&r);
	ck_assert_uint_eq(handler_set_running(set), 0);

	handler_set_del(set);
	event_base_free(base);
}
END_TEST

/* Records when it ran, in on_done's sequence. */
static void mark_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = ++done_seq;
}

/* Built-ins that end inside handler_start share one delivery event: each
 * still ends from the loop, once, in the order started, and a timeout
 * given to one cannot fire after it ended. */
START_TEST(runs_ended_at_start_are_delivered_in_order_without_timers)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 0, 0);
	static const char *const names[] = {"noop", "echo", "fail", "sha256", "echo", "noop"};
	enum { N = 6 };
	struct rec r[N];
	for (int i = 0; i < N; i++)
		start(&r[i], set, names[i], "x", 1, i % 2 ? 30 : 0);
	ck_assert_uint_eq(handler_set_running(set), N);
	wait_done(base, r, N, 2000);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(r[i].seq, r[0].seq + i);
		ck_assert_uint_eq(r[i].running_in_done, (size_t)(N - 1 - i));
		ck_assert_int_eq(r[i].status, i == 2 ? HANDLER_FAILED : HANDLER_COMPLETED);
	}
	ck_assert_str_eq((char *)r[1].out, "x");
	ck_assert_str_eq(r[2].error, "x");
	for (int i = 0; i < N; i++)
		rec_free(&r[i]);

	/* Runs decided in one loop turn are delivered in one callback, before
	 * any event the first on_done activates (such as the connection's
	 * flush): so a worker's results of one turn leave in one write. */
	int mark_seq = 0;
	struct event *mark = event_new(base, -1, 0, mark_cb, &mark_seq);
	for (int i = 0; i < 3; i++)
		start(&r[i], set, "noop", "", 0, 0);
	r[0].mark_in_done = mark;
	wait_done(base, r, 3, 2000);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_int_eq(mark_seq, r[2].seq + 1);
	event_free(mark);
	/* Past the timeouts: a second on_done would fail rec_done's check. */
	struct rec past;
	one(base, set, &past, "sleep", "80", 0, 2000);
	ck_assert_int_eq(past.status, HANDLER_COMPLETED);
	for (int i = 0; i < N; i++)
		rec_free(&r[i]);
	rec_free(&past);

	/* on_done may free the set while other runs wait for delivery: they
	 * end without callbacks. */
	for (int i = 0; i < 3; i++)
		start(&r[i], set, "noop", "", 0, 0);
	r[0].del_in_done = set;
	wait_done(base, r, 1, 2000);
	ck_assert(!r[1].done && !r[2].done);
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert(!r[1].done && !r[2].done);
	rec_free(&r[0]);
	event_base_free(base);
}
END_TEST

START_TEST(echo_output_is_capped)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 4, 0);
	struct rec r;
	one(base, set, &r, "echo", "1234", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	rec_free(&r);
	one(base, set, &r, "echo", "12345", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "output exceeds 4 bytes");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(sleep_reports_every_ten_percent)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 0, 0);
	struct rec r;
	int64_t t0 = mono_ms();
	one(base, set, &r, "sleep", " 200\n", 0, 3000);
	int64_t took = mono_ms() - t0;
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_int_ge(took, 195);
	ck_assert_int_lt(took, 2000);
	ck_assert_int_eq(r.np, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(r.pct[i], (i + 1) * 10);
	ck_assert_str_eq(r.msg[9], "slept 200 of 200 ms");
	rec_free(&r);

	one(base, set, &r, "sleep", "0", 0, 2000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_int_eq(r.np, 10);
	rec_free(&r);

	static const char *const bad[] = {"", "abc", "-5", "1.5", "10 ms"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		one(base, set, &r, "sleep", bad[i], 0, 2000);
		ck_assert_int_eq(r.status, HANDLER_FAILED);
		ck_assert_ptr_nonnull(strstr(r.error, "milliseconds"));
		rec_free(&r);
	}
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(sleep_cancel_and_timeout)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 0, 0);
	struct rec r;

	/* Cancelled from its own progress callback after the first report. */
	start(&r, set, "sleep", "1000", 4, 0);
	r.cancel_after = 1;
	int64_t t0 = mono_ms();
	wait_done(base, &r, 1, 3000);
	ck_assert_int_eq(r.status, HANDLER_CANCELLED);
	ck_assert_str_eq(r.error, "stop now");
	ck_assert_int_eq(r.np, 1);
	ck_assert_int_lt(mono_ms() - t0, 600);
	rec_free(&r);

	/* Cancelled from outside, with the default reason. */
	start(&r, set, "sleep", "10000", 5, 0);
	handler_cancel(r.run, NULL);
	wait_done(base, &r, 1, 1000);
	ck_assert_int_eq(r.status, HANDLER_CANCELLED);
	ck_assert_str_eq(r.error, "cancelled");
	ck_assert_int_eq(r.np, 0);
	rec_free(&r);

	t0 = mono_ms();
	one(base, set, &r, "sleep", "10000", 150, 3000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "timeout after 150 ms");
	ck_assert_int_ge(mono_ms() - t0, 145);
	ck_assert_int_lt(mono_ms() - t0, 1500);
	ck_assert_int_eq(r.np, 0); /* the first report would be at 1000 ms */
	rec_free(&r);

	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(many_sleeps_run_at_once)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = mkset(base, 0, 0);
	struct rec r[20];
	int64_t t0 = mono_ms();
	for (int i = 0; i < 20; i++)
		start(&r[i], set, "sleep", "200", 3, 0);
	ck_assert_uint_eq(handler_set_running(set), 20);
	wait_done(base, r, 20, 3000);
	/* Concurrent, not one after the other: the loop never blocks. */
	ck_assert_int_lt(mono_ms() - t0, 1500);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(r[i].status, HANDLER_COMPLETED);
		rec_free(&r[i]);
	}
	ck_assert_uint_eq(handler_set_running(set), 0);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

/* ---- exec handlers -------------------------------------------------------- */

/* Whether any live (non-zombie) process is in process group pgid. */
static int group_alive(int pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int alive = 0;
	while (!alive && d && (de = readdir(d))) {
		char path[300], buf[512];
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		char *p = strrchr(buf, ')');
		char state;
		int ppid, pgrp;
		if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3)
			alive = pgrp == pgid && state != 'Z';
	}
	if (d)
		closedir(d);
	return alive;
}

static void wait_group_gone(int pgid, int max_ms)
{
	int64_t deadline = mono_ms() + max_ms;
	while (group_alive(pgid)) {
		ck_assert_msg(mono_ms() < deadline, "process group %d still alive", pgid);
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
}

static struct handler_set *exec_set(struct event_base *base, size_t max_output, int grace_ms,
				    const char *spec)
{
	struct handler_set *set = mkset(base, max_output, grace_ms);
	char err[128];
	ck_assert_msg(handler_set_add_exec(set, spec, err, sizeof err) == 0, "%s", err);
	return set;
}

static void setup_exec(void)
{
	signal(SIGPIPE, SIG_IGN);
}

START_TEST(exec_output_and_progress_on_fd3)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = exec_set(
		base, 0, 0,
		"upper=/bin/sh -c 'tr a-z A-Z; echo 50 half >&3; echo not progress >&3; "
		"printf \"100\" >&3'");
	struct rec r;
	one(base, set, &r, "upper", "hello, world", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_str_eq(r.error, "");
	ck_assert_str_eq((char *)r.out, "HELLO, WORLD");
	/* The bad line is skipped; the last one counts without its newline. */
	ck_assert_int_eq(r.np, 2);
	ck_assert_int_eq(r.pct[0], 50);
	ck_assert_str_eq(r.msg[0], "half");
	ck_assert_int_eq(r.pct[1], 100);
	ck_assert_str_eq(r.msg[1], "");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_failures_carry_stderr_or_status)
{
	struct event_base *base = event_base_new();
	struct handler_set *set =
		exec_set(base, 0, 0, "x=/bin/sh -c 'echo partial; echo \"it broke\" >&2; exit 3'");
	char err[128];
	ck_assert_int_eq(handler_set_add_exec(set, "quiet=/bin/sh -c 'exit 7'", err, sizeof err),
			 0);
	ck_assert_int_eq(handler_set_add_exec(set, "sig=/bin/sh -c 'kill -9 $$'", err, sizeof err),
			 0);
	ck_assert_int_eq(
		handler_set_add_exec(set, "missing=/nonexistent/orchd-nope", err, sizeof err), 0);
	ck_assert_int_eq(handler_set_add_exec(set,
					      "long=/bin/sh -c 'i=0; while [ $i -lt 300 ]; do echo "
					      "line-$i-xxxxxxxx >&2; i=$((i+1)); done; exit 1'",
					      err, sizeof err),
			 0);
	struct rec r;

	one(base, set, &r, "x", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "it broke");
	ck_assert_str_eq((char *)r.out, "partial\n");
	rec_free(&r);

	one(base, set, &r, "quiet", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "exit status 7");
	rec_free(&r);

	one(base, set, &r, "sig", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "killed by signal 9");
	rec_free(&r);

	one(base, set, &r, "missing", "payload", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "cannot run /nonexistent/orchd-nope: No such file or directory");
	rec_free(&r);

	/* Only the end of a long stderr is kept. */
	one(base, set, &r, "long", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_uint_le(strlen(r.error), 1024);
	ck_assert_uint_ge(strlen(r.error), 900);
	ck_assert_ptr_nonnull(strstr(r.error, "line-299-xxxxxxxx"));
	ck_assert_ptr_null(strstr(r.error, "line-0-"));
	rec_free(&r);

	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_large_payload_round_trips)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = exec_set(base, 0, 0, "cat=cat");
	char err[128];
	ck_assert_int_eq(handler_set_add_exec(set, "true=true", err, sizeof err), 0);
	size_t n = 1 << 20; /* exactly the default cap */
	char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + i % 26);
	struct rec r;
	start(&r, set, "cat", p, n, 0);
	wait_done(base, &r, 1, 10000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_uint_eq(r.len, n);
	ck_assert(memcmp(r.out, p, n) == 0);
	rec_free(&r);

	/* A child that never reads its stdin: the write side just stops. */
	start(&r, set, "true", p, n, 0);
	wait_done(base, &r, 1, 10000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	rec_free(&r);
	free(p);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_output_past_the_cap_fails)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = exec_set(base, 1000, 0, "big=head -c 200000 /dev/zero");
	struct rec r;
	one(base, set, &r, "big", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "output exceeds 1000 bytes");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_environment_names_the_task)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = exec_set(
		base, 0, 0, "env=/bin/sh -c 'printf %s \"$ORCHD_TASK_ID/$ORCHD_TASK_NAME\"'");
	struct rec r;
	one(base, set, &r, "env", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	ck_assert_str_eq((char *)r.out, "task-1/env");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

/* An exec set with opts (NULL: defaults) and one exec handler. */
static struct handler_set *env_set(struct event_base *base, const struct handler_opts *o,
				   const char *spec)
{
	struct handler_set *set = handler_set_new(base, o);
	char err[128];
	ck_assert_msg(handler_set_add_exec(set, spec, err, sizeof err) == 0, "%s", err);
	return set;
}

START_TEST(exec_environment_is_clean_but_for_what_is_named)
{
	setenv("ORCHD_UNIT_SECRET", "must-not-leak", 1);
	setenv("ORCHD_UNIT_KEEP", "kept", 1);
	unsetenv("ORCHD_UNIT_UNSET");
	struct event_base *base = event_base_new();
	struct handler_set *set = env_set(base, NULL, "env=env");
	char err[128];
	ck_assert_int_eq(handler_set_add_env(set, "ORCHD_UNIT_KEEP", err, sizeof err), 0);
	ck_assert_int_eq(handler_set_add_env(set, "ORCHD_UNIT_UNSET", err, sizeof err), 0);
	ck_assert_int_eq(handler_set_add_env(set, "LITERAL=a=b c", err, sizeof err), 0);
	ck_assert_int_eq(handler_set_add_env(set, "PATH=/usr/bin:/bin", err, sizeof err), 0);
	struct rec r;
	one(base, set, &r, "env", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	/* In order: PATH (replaced in place), the named ones, the task's. */
	ck_assert_str_eq((char *)r.out, "PATH=/usr/bin:/bin\n"
					"ORCHD_UNIT_KEEP=kept\n"
					"LITERAL=a=b c\n"
					"ORCHD_TASK_ID=task-1\n"
					"ORCHD_TASK_NAME=env\n");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
	unsetenv("ORCHD_UNIT_SECRET");
	unsetenv("ORCHD_UNIT_KEEP");
}
END_TEST

START_TEST(env_names_are_checked)
{
	struct handler_set *set = handler_set_new(NULL, NULL);
	char err[128];
	ck_assert_int_eq(handler_set_add_env(set, "", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_env(set, "=x", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_env(set, "1ABC", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_env(set, "A-B", err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "'A-B' is not an environment variable name");
	ck_assert_int_eq(handler_set_add_env(set, "ORCHD_TASK_ID=x", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_env(set, "ORCHD_TASK_NAME", err, sizeof err), -EINVAL);
	ck_assert_int_eq(handler_set_add_env(set, "_ok_1=", err, sizeof err), 0);
	handler_set_del(set);
}
END_TEST

START_TEST(exec_limits_are_set_in_the_child)
{
	struct event_base *base = event_base_new();
	struct handler_opts o = {.rlimit_as = 256u << 20, .rlimit_cpu_ms = 1500};
	struct handler_set *set = env_set(base, &o, "lim=/bin/sh -c 'ulimit -v; ulimit -t'");
	struct rec r;
	one(base, set, &r, "lim", "", 0, 5000);
	ck_assert_int_eq(r.status, HANDLER_COMPLETED);
	/* KiB of address space; CPU seconds rounded up. */
	ck_assert_str_eq((char *)r.out, "262144\n2\n");
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_past_the_cpu_limit_fails)
{
	struct event_base *base = event_base_new();
	struct handler_opts o = {.rlimit_cpu_ms = 1};
	struct handler_set *set = env_set(base, &o, "spin=/bin/sh -c 'while :; do :; done'");
	struct rec r;
	one(base, set, &r, "spin", "", 0, 10000);
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_ptr_nonnull(strstr(r.error, "CPU time limit exceeded"));
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

/* The child reports its pid (= its process group) as a progress message,
 * leaves a grandchild in the background and ignores SIGTERM, so only the
 * SIGKILL to the whole group ends it. */
#define STUBBORN                                                                                   \
	"stubborn=/bin/sh -c 'trap \"\" TERM; sleep 30 & echo \"1 $$\" >&3; while :; do wait; "    \
	"done'"

START_TEST(exec_timeout_kills_the_process_group)
{
	struct event_base *base = event_base_new();
	struct handler_set *set = exec_set(base, 0, 300, STUBBORN);
	struct rec r;
	int64_t t0 = mono_ms();
	one(base, set, &r, "stubborn", "", 200, 5000);
	int64_t took = mono_ms() - t0;
	ck_assert_int_eq(r.status, HANDLER_FAILED);
	ck_assert_str_eq(r.error, "timeout after 200 ms");
	/* timeout + kill grace, not the 30 s of the grandchild */
	ck_assert_int_ge(took, 480);
	ck_assert_int_lt(took, 3000);
	ck_assert_int_eq(r.np, 1);
	int pgid = atoi(r.msg[0]);
	ck_assert_int_gt(pgid, 1);
	wait_group_gone(pgid, 2000);
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_cancel_stops_the_child)
{
	struct event_base *base = event_base_new();
	struct handler_set *set =
		exec_set(base, 0, 0, "slow=/bin/sh -c 'echo \"5 $$\" >&3; sleep 30 & wait'");
	struct rec r;
	start(&r, set, "slow", "", 0, 0);
	r.cancel_after = 1;
	int64_t t0 = mono_ms();
	wait_done(base, &r, 1, 5000);
	ck_assert_int_eq(r.status, HANDLER_CANCELLED);
	ck_assert_str_eq(r.error, "stop now");
	ck_assert_int_lt(mono_ms() - t0, 1900); /* SIGTERM did it, no SIGKILL needed */
	wait_group_gone(atoi(r.msg[0]), 2000);
	rec_free(&r);
	handler_set_del(set);
	event_base_free(base);
}
END_TEST

START_TEST(exec_runs_concurrently_and_del_kills_leftovers)
{
	struct event_base *base = event_base_new();
	struct handler_set *set =
		exec_set(base, 0, 0, "nap=/bin/sh -c 'echo \"1 $$\" >&3; exec sleep 0.5'");
	struct rec r[8];
	int64_t t0 = mono_ms();
	for (int i = 0; i < 8; i++)
		start(&r[i], set, "nap", "", 0, 0);
	wait_done(base, r, 8, 10000);
	/* One after the other would take 4 s. */
	ck_assert_int_lt(mono_ms() - t0, 3000);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(r[i].status, HANDLER_COMPLETED);
		rec_free(&r[i]);
	}

	/* A run still going when the set is freed: no callback, no orphan. */
	char err[128];
	ck_assert_int_eq(handler_set_add_exec(set, STUBBORN, err, sizeof err), 0);
	struct rec s;
	start(&s, set, "stubborn", "", 0, 0);
	while (s.np == 0) {
		ck_assert_msg(mono_ms() - t0 < 5000, "no progress from the child");
		event_base_loop(base, EVLOOP_ONCE);
	}
	int pgid = atoi(s.msg[0]);
	handler_set_del(set);
	ck_assert(!s.done);
	wait_group_gone(pgid, 2000);
	event_base_free(base);
}
END_TEST

Suite *handler_suite(void)
{
	Suite *s = suite_create("handler");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, progress_lines_parse);
	tcase_add_test(tc, progress_message_is_truncated_and_length_bounded);
	tcase_add_test(tc, argv_split_quotes_without_a_shell);
	tcase_add_test(tc, registry_names_and_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("builtin");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, builtins_noop_echo_fail_sha256);
	tcase_add_test(tc, runs_ended_at_start_are_delivered_in_order_without_timers);
	tcase_add_test(tc, echo_output_is_capped);
	tcase_add_test(tc, sleep_reports_every_ten_percent);
	tcase_add_test(tc, sleep_cancel_and_timeout);
	tcase_add_test(tc, many_sleeps_run_at_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("exec");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup_exec, NULL);
	tcase_add_test(tc, exec_output_and_progress_on_fd3);
	tcase_add_test(tc, exec_failures_carry_stderr_or_status);
	tcase_add_test(tc, exec_large_payload_round_trips);
	tcase_add_test(tc, exec_output_past_the_cap_fails);
	tcase_add_test(tc, exec_environment_names_the_task);
	tcase_add_test(tc, exec_environment_is_clean_but_for_what_is_named);
	tcase_add_test(tc, env_names_are_checked);
	tcase_add_test(tc, exec_limits_are_set_in_the_child);
	tcase_add_test(tc, exec_past_the_cpu_limit_fails);
	tcase_add_test(tc, exec_timeout_kills_the_process_group);
	tcase_add_test(tc, exec_cancel_stops_the_child);
	tcase_add_test(tc, exec_runs_concurrently_and_del_kills_leftovers);
	suite_add_tcase(s, tc);
	return s;
}
