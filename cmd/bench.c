/*
 * bench: `orchd bench`, a load generator in the manner of redis-benchmark.
 *
 *   orchd bench [--gateway ADDR] [--tasks N] [--concurrency C] [--name NAME]
 *               [--payload-size B | --payload TEXT] [--json] [--calls]
 *               [--rpc | --no-follow] [--time-limit DURATION] [--no-start]
 *               [TLS and token flags, as the client commands]
 *
 * Submits N tasks through a gateway, keeping C of them in flight: a task
 * is in flight from its submit until its final update, and the next task
 * is submitted the moment one ends. By default every task goes over one
 * Gateway/SubmitStream, one request (follow and final_only: the end is all
 * it times) and two events each, accepted and the final update;
 * --calls takes the two-call path instead, a SubmitTask and then a
 * SubscribeProgress stream per task (opened as soon as the submit is
 * acknowledged; it starts with the task's current state, so an end that
 * came first is not missed), as clients without streams do and as
 * `bench/footprint.sh` needs for its 10,000 progress streams. It reports
 * the throughput
 * from the first submit to the last end seen, and latency percentiles:
 * submit->done as this client saw it (microsecond clock), and submit->start
 * from the tasks' started_unix_ms (millisecond resolution), read after the
 * run with ListTasks so it costs the measured window nothing.
 *
 * --no-follow only submits (latency: submit->accepted; on the stream,
 * follow=false), e.g. to fill a scheduler with tasks no worker serves;
 * --rpc measures unary round trips to Gateway/HealthCheck instead.
 * --time-limit ends a run early and reports what it reached. Everything
 * runs on one libevent loop over one rpc channel (HTTP/2 connection), set
 * up as every client command's (client_init: TLS, token).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "cmd.h"
#include "map.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "sbuf.h"
#include "stats.h"
#include "task.h"
#include "xalloc.h"

#define GATEWAY_PATH "/orchestrator.v1.Gateway/"
/* ListTasks answers hold up to this much payload per page. */
#define LIST_PAGE_BYTES (2u << 20)
#define LIST_PAGE_MAX 1000

static const char synopsis[] = "[--tasks N] [--concurrency C] [--name NAME] [--payload-size B] "
                               "[--json] [--calls] [--rpc | --no-follow] [FLAGS]";

static const char about[] =
    "Submits --tasks tasks through a gateway keeping --concurrency in flight\n"
    "(a task is in flight until its final update; the next one is submitted\n"
    "as soon as one ends), all on one SubmitStream (--calls: a SubmitTask and\n"
    "a SubscribeProgress call per task instead), then prints the\n"
    "throughput from the first submit to the last end seen, and latency\n"
    "percentiles (p50, p90, p99, max) of submit->start (from the tasks'\n"
    "started_unix_ms, 1 ms resolution) and submit->done (this client's\n"
    "clock). --json prints one JSON object instead: tasks, seconds,\n"
    "tasks_per_s, p50_ms, p90_ms, p99_ms, max_ms (submit->done), start_p50_ms\n"
    "... start_max_ms, completed, failed, mode. --no-follow only submits\n"
    "(latency: submit->accepted; on the stream, follow=false); --rpc times\n"
    "unary Gateway/HealthCheck round trips instead (tasks then counts calls).\n"
    "A call that fails or a submit the stream rejects ends the run (exit 1; 3\n"
    "when the gateway cannot be reached); tasks that end FAILED or CANCELLED\n"
    "are counted, not fatal. TLS and token flags are those of the client\n"
    "commands.\n";

enum mode { MODE_TASKS, MODE_SUBMIT, MODE_RPC };
static const char *const mode_names[] = {"tasks", "submit", "rpc"};

struct bench;

/* One task (or call) in flight, then its record for the start latency. */
struct job {
	struct bench *b;
	int64_t submit_us;      /* monotonic */
	int64_t submit_wall_us; /* Unix, to compare with started_unix_ms */
	int64_t start_us;       /* submit->start, -1 until known */
	int final;
	char id[ID_LEN + 1]; /* empty until accepted */
};

struct bench {
	/* flags */
	const char *gateway;
	int64_t deadline_ms;
	int64_t time_limit_ms;
	int calls; /* --calls: SubmitTask + SubscribeProgress, not SubmitStream */
	long tasks;
	int conc;
	const char *name;
	size_t payload_size;
	int json;
	enum mode mode;

	struct client cli;
	struct event_base *base; /* cli's */
	struct rpc_channel *ch;  /* cli's */
	struct event *limit_ev;
	/* The SubmitStream (unless --calls): job i has ref i; a job is
	 * byref's until accepted, then (following) the kept list's. */
	struct rpc_call *stream;
	struct pb_arena arena; /* its events are unpacked here, one at a time */
	struct job **byref;
	int stream_full; /* its send queue is at the high-water mark */
	uint8_t *payload;
	long started, ended; /* submits started; operations ended */
	long completed, failed;
	int inflight;
	int stopping; /* no new work: done, an error, or the time limit */
	int timed_out;
	int rc;
	int64_t t0_us, t_end_us;
	struct stats lat;   /* submit->done, submit->accepted, or round trip (us) */
	struct stats start; /* submit->start (us, from ms timestamps) */
	struct job **jobs;  /* MODE_TASKS: every accepted task, for the start times */
	size_t njobs, capjobs;
	/* ListTasks after the run */
	struct map byid;
	size_t matched;
	char *page_token;
	int pages;
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void stop(struct bench *b)
{
	b->stopping = 1;
	if (!b->t_end_us)
		b->t_end_us = mono_us();
	event_base_loopbreak(b->base);
}

/* A call failed: the run ends with the error on stderr. */
static void call_failed(struct bench *b, const char *what, int status, const char *message)
{
	if (b->rc)
		return;
	if (!b->cli.connected && status == GRPC_STATUS_UNAVAILABLE) {
		fprintf(stderr, "orchd: cannot reach gateway at %s: %s\n", b->gateway,
		        *message ? message : "connection failed");
		b->rc = EXIT_UNAVAIL;
	} else {
		cmd_error("bench", "%s: %s%s%s", what, status_name(status), *message ? ": " : "",
		          message);
		b->rc = status == GRPC_STATUS_UNAVAILABLE ? EXIT_UNAVAIL : EXIT_FAIL;
	}
	stop(b);
}

static void launch(struct bench *b);

/* One operation ended (successfully): record it, start the next. */
static void ended(struct bench *b, struct job *j)
{
	int64_t now = mono_us();
	stats_add(&b->lat, now - j->submit_us);
	b->ended++;
	b->inflight--;
	if (b->ended == b->tasks) {
		b->t_end_us = now;
		stop(b);
		return;
	}
	launch(b);
}

static void keep(struct bench *b, struct job *j)
{
	if (b->njobs == b->capjobs) {
		b->capjobs = b->capjobs ? b->capjobs * 2 : 1024;
		b->jobs = xrealloc(b->jobs, b->capjobs * sizeof *b->jobs);
	}
	b->jobs[b->njobs++] = j;
}

/* One update of j's task (p borrowed), from either path: a final one
 * (a final status, or a result) ends the task's time in flight. */
static void progress(struct bench *b, struct job *j, const Orchestrator__V1__TaskProgress *p)
{
	if (j->final || !(task_state_final((enum task_state)p->status) || p->result))
		return;
	int status = p->result && p->result->status ? (int)p->result->status : (int)p->status;
	j->final = 1;
	if (status == TASK_COMPLETED)
		b->completed++;
	else
		b->failed++;
	ended(b, j);
}

/* An accepted task (a, borrowed): its id, then either the end of a submit
 * (--no-follow) or the start of following it. Returns 0, or a gRPC status
 * for an answer that names no task. */
static int accepted(struct bench *b, struct job *j, const Orchestrator__V1__TaskAccepted *a)
{
	if (!a->task_id || strlen(a->task_id) != ID_LEN)
		return GRPC_STATUS_INTERNAL;
	memcpy(j->id, a->task_id, sizeof j->id);
	if (b->mode == MODE_SUBMIT) {
		b->completed++;
		ended(b, j);
	}
	return 0;
}

/* ---- following a task: SubscribeProgress (--calls) ------------------------ */

static int sub_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct job *j = arg;
	struct bench *b = j->b;
	if (j->final || b->stopping)
		return 0;
	Orchestrator__V1__TaskProgress *p = orchestrator__v1__task_progress__unpack(NULL, len, msg);
	if (!p)
		return GRPC_STATUS_INTERNAL;
	progress(b, j, p);
	orchestrator__v1__task_progress__free_unpacked(p, NULL);
	return 0;
}

static void sub_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct job *j = arg;
	if (!j->final && !j->b->stopping) {
		if (status == GRPC_STATUS_OK) {
			status = GRPC_STATUS_UNKNOWN;
			message = "the progress stream ended before the task did";
		}
		call_failed(j->b, "SubscribeProgress", status, message);
	}
}

static const struct rpc_call_cbs sub_cbs = {.on_message = sub_message, .on_done = sub_done};

static void follow(struct bench *b, struct job *j)
{
	Orchestrator__V1__ProgressRequest r = ORCHESTRATOR__V1__PROGRESS_REQUEST__INIT;
	r.task_id = j->id;
	/* No deadline: a task may wait for a worker for as long as it takes;
	 * --time-limit bounds the run. */
	struct rpc_call *call =
	    rpc_call_start(b->ch, GATEWAY_PATH "SubscribeProgress", &sub_cbs, j, NULL);
	pb_send(call, &r.base, 0);
	rpc_call_close_send(call);
}

/* ---- submitting: SubmitTask (--calls; HealthCheck for --rpc) ---------------- */

/* A unary call's job; freed in on_done unless kept for the start times. */
static int unary_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct job *j = arg;
	struct bench *b = j->b;
	if (b->stopping || j->final)
		return 0;
	j->final = 1; /* the answer came (on_done may still report an error) */
	if (b->mode == MODE_RPC) {
		ended(b, j);
		return 0;
	}
	Orchestrator__V1__TaskAccepted *a = orchestrator__v1__task_accepted__unpack(NULL, len, msg);
	if (!a)
		return GRPC_STATUS_INTERNAL;
	int st = accepted(b, j, a);
	orchestrator__v1__task_accepted__free_unpacked(a, NULL);
	if (st || b->mode == MODE_SUBMIT)
		return st;
	/* MODE_TASKS: the same job now follows the task to its end. */
	struct job *f = xmemdup(j, sizeof *j);
	f->final = 0;
	keep(b, f);
	follow(b, f);
	return 0;
}

static void unary_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct job *j = arg;
	struct bench *b = j->b;
	if (!b->stopping && (status != GRPC_STATUS_OK || !j->final)) {
		if (status == GRPC_STATUS_OK) {
			status = GRPC_STATUS_INTERNAL;
			message = "the server answered without a message";
		}
		call_failed(b, b->mode == MODE_RPC ? "HealthCheck" : "SubmitTask", status, message);
	}
	free(j);
}

static const struct rpc_call_cbs unary_cbs = {.on_message = unary_message, .on_done = unary_done};

/* A new operation, in flight from now. */
static struct job *job_new(struct bench *b)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->b = b;
	j->start_us = -1;
	j->submit_wall_us = wall_us();
	j->submit_us = mono_us();
	if (!b->t0_us)
		b->t0_us = j->submit_us;
	b->started++;
	b->inflight++;
	return j;
}

/* Every task's spec (pointing into b). */
static void spec_init(const struct bench *b, Orchestrator__V1__TaskSpec *s)
{
	orchestrator__v1__task_spec__init(s);
	s->name = (char *)b->name;
	s->payload.data = b->payload;
	s->payload.len = b->payload_size;
}

static void stream_launch(struct bench *b);

/* Starts operations until C are in flight or all N have started. */
static void launch(struct bench *b)
{
	if (b->mode != MODE_RPC && !b->calls) {
		stream_launch(b);
		return;
	}
	while (!b->stopping && b->inflight < b->conc && b->started < b->tasks) {
		struct job *j = job_new(b);
		struct rpc_call_opts o = {.timeout_ms = b->deadline_ms};
		struct rpc_call *call;
		if (b->mode == MODE_RPC) {
			Orchestrator__V1__HealthCheckRequest r =
			    ORCHESTRATOR__V1__HEALTH_CHECK_REQUEST__INIT;
			call = rpc_call_start(b->ch, GATEWAY_PATH "HealthCheck", &unary_cbs, j, &o);
			pb_send(call, &r.base, 0);
		} else {
			Orchestrator__V1__TaskSpec s;
			spec_init(b, &s);
			call = rpc_call_start(b->ch, GATEWAY_PATH "SubmitTask", &unary_cbs, j, &o);
			pb_send(call, &s.base, 0);
		}
		rpc_call_close_send(call);
	}
}

/* ---- submitting and following on one SubmitStream (the default) ------------- */

static void stream_launch(struct bench *b)
{
	if (!b->stream)
		return; /* over: stream_done reported it */
	while (!b->stopping && !b->stream_full && b->inflight < b->conc && b->started < b->tasks) {
		uint64_t ref = (uint64_t)b->started;
		struct job *j = job_new(b);
		b->byref[ref] = j;
		Orchestrator__V1__TaskSpec s;
		spec_init(b, &s);
		Orchestrator__V1__SubmitStreamRequest r =
		    ORCHESTRATOR__V1__SUBMIT_STREAM_REQUEST__INIT;
		r.ref = ref;
		r.spec = &s;
		r.follow = b->mode == MODE_TASKS;
		r.final_only = r.follow;
		int rv = pb_send(b->stream, &r.base, 0);
		if (rv == RPC_SEND_FULL)
			b->stream_full = 1;
		else if (rv < 0)
			return; /* the stream is over: its on_done reports why */
	}
	/* Every submit is out: the gateway ends the stream OK once each has
	 * its answer (and, following, its final update). */
	if (b->started == b->tasks && !b->stopping)
		rpc_call_close_send(b->stream);
}

static int stream_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct bench *b = arg;
	if (b->stopping)
		return 0;
	Orchestrator__V1__SubmitStreamEvent *ev =
	    orchestrator__v1__submit_stream_event__unpack(&b->arena.allocator, len, msg);
	if (!ev) {
		pb_arena_release(&b->arena, NULL);
		return GRPC_STATUS_INTERNAL;
	}
	int st = 0;
	struct job *j = ev->ref < (uint64_t)b->started ? b->byref[ev->ref] : NULL;
	if (!j) {
		st = GRPC_STATUS_INTERNAL; /* a ref we never sent, or done with */
	} else if (ev->event_case == ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_ACCEPTED &&
	           !j->id[0]) {
		st = accepted(b, j, ev->accepted);
		if (!st && b->mode == MODE_TASKS) {
			keep(b, j); /* the kept list's now; byref finds its progress */
		} else if (!st) {
			b->byref[ev->ref] = NULL;
			free(j);
		}
	} else if (ev->event_case == ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_REJECTED) {
		call_failed(b, "SubmitStream: a submit", ev->rejected->code,
		            ev->rejected->message ? ev->rejected->message : "");
	} else if (ev->event_case == ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_PROGRESS &&
	           j->id[0]) {
		progress(b, j, ev->progress);
	} else {
		st = GRPC_STATUS_INTERNAL; /* out of order */
	}
	pb_arena_release(&b->arena, &ev->base);
	return st;
}

static void stream_writable(struct rpc_call *call, void *arg)
{
	struct bench *b = arg;
	b->stream_full = 0;
	stream_launch(b);
}

static void stream_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct bench *b = arg;
	if (!b->stopping) {
		if (status == GRPC_STATUS_OK) {
			status = GRPC_STATUS_UNKNOWN;
			message = "the stream ended before every task did";
		}
		call_failed(b, "SubmitStream", status, message);
	}
	b->stream = NULL;
}

static const struct rpc_call_cbs stream_cbs = {
    .on_message = stream_message,
    .on_writable = stream_writable,
    .on_done = stream_done,
};

static void limit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	b->timed_out = 1;
	stop(b);
}

/* ---- start times: ListTasks after the run ---------------------------------- */

static void list_next(struct bench *b);

static void list_page(struct bench *b, const Orchestrator__V1__ListTasksResponse *r)
{
	for (size_t i = 0; i < r->n_tasks; i++) {
		const Orchestrator__V1__Task *t = r->tasks[i];
		struct job *j = t->task_id ? map_get(&b->byid, t->task_id) : NULL;
		if (!j || j->start_us >= 0 || !t->started_unix_ms)
			continue;
		int64_t d = t->started_unix_ms * 1000 - j->submit_wall_us;
		j->start_us = d > 0 ? d : 0;
		stats_add(&b->start, j->start_us);
		b->matched++;
	}
}

static int list_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct bench *b = arg;
	Orchestrator__V1__ListTasksResponse *r =
	    orchestrator__v1__list_tasks_response__unpack(NULL, len, msg);
	if (!r)
		return GRPC_STATUS_INTERNAL;
	list_page(b, r);
	free(b->page_token);
	b->page_token = NULL;
	/* Ids are time-ordered and pages newest first: past our oldest task
	 * (the first job kept) nothing more can match. */
	int older = r->n_tasks && strcmp(r->tasks[r->n_tasks - 1]->task_id, b->jobs[0]->id) < 0;
	if (r->next_page_token && *r->next_page_token && !older)
		b->page_token = xstrdup(r->next_page_token);
	orchestrator__v1__list_tasks_response__free_unpacked(r, NULL);
	return 0;
}

static void list_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct bench *b = arg;
	if (status != GRPC_STATUS_OK) {
		/* The run's numbers stand; only the start times are missing. */
		fprintf(stderr, "orchd bench: no start times: ListTasks: %s%s%s\n",
		        status_name(status), *message ? ": " : "", message);
		event_base_loopbreak(b->base);
		return;
	}
	if (b->page_token && b->matched < b->njobs)
		list_next(b);
	else
		event_base_loopbreak(b->base);
}

static const struct rpc_call_cbs list_cbs = {.on_message = list_message, .on_done = list_done};

static void list_next(struct bench *b)
{
	Orchestrator__V1__ListTasksRequest r = ORCHESTRATOR__V1__LIST_TASKS_REQUEST__INIT;
	size_t per = LIST_PAGE_BYTES / (b->payload_size + 512);
	r.name = (char *)b->name;
	r.page_size = (int32_t)(per < 1 ? 1 : per > LIST_PAGE_MAX ? LIST_PAGE_MAX : per);
	r.page_token = b->page_token ? b->page_token : "";
	b->pages++;
	struct rpc_call_opts o = {.timeout_ms = b->deadline_ms};
	struct rpc_call *call = rpc_call_start(b->ch, GATEWAY_PATH "ListTasks", &list_cbs, b, &o);
	pb_send(call, &r.base, 0);
	rpc_call_close_send(call);
}

/* Fills b->start from the tasks' started_unix_ms. */
static void start_times(struct bench *b)
{
	if (!b->njobs)
		return;
	map_init(&b->byid);
	for (size_t i = 0; i < b->njobs; i++)
		map_put(&b->byid, b->jobs[i]->id, b->jobs[i]);
	/* The loop runs again for the listing; b->stopping stays set, so
	 * late task callbacks start nothing new. */
	list_next(b);
	event_base_dispatch(b->base);
	map_free(&b->byid);
}

/* ---- report ------------------------------------------------------------------ */

static double ms(int64_t us)
{
	return (double)us / 1000.0;
}

static void json_pcts(struct sbuf *o, const char *prefix, struct stats *s)
{
	static const char *const keys[] = {"p50", "p90", "p99"};
	static const double q[] = {50, 90, 99};
	for (int i = 0; i < 3; i++) {
		if (stats_count(s))
			sbuf_addf(o, ", \"%s%s_ms\": %.3f", prefix, keys[i],
			          ms(stats_percentile(s, q[i])));
		else
			sbuf_addf(o, ", \"%s%s_ms\": null", prefix, keys[i]);
	}
	if (stats_count(s))
		sbuf_addf(o, ", \"%smax_ms\": %.3f", prefix, ms(stats_max(s)));
	else
		sbuf_addf(o, ", \"%smax_ms\": null", prefix);
}

static void text_row(struct sbuf *o, const char *what, struct stats *s)
{
	if (!stats_count(s)) {
		sbuf_addf(o, "  %-18s %10s\n", what, "n/a");
		return;
	}
	sbuf_addf(o, "  %-18s %10.3f %10.3f %10.3f %10.3f\n", what, ms(stats_percentile(s, 50)),
	          ms(stats_percentile(s, 90)), ms(stats_percentile(s, 99)), ms(stats_max(s)));
}

static void report(struct bench *b)
{
	double secs = b->t0_us ? (double)(b->t_end_us - b->t0_us) / 1e6 : 0;
	long n = b->ended;
	double rate = secs > 0 ? (double)n / secs : 0;
	struct sbuf o;
	sbuf_init(&o);
	if (b->json) {
		sbuf_addf(&o,
		          "{\"mode\": \"%s\", \"tasks\": %ld, \"seconds\": %.6f, "
		          "\"tasks_per_s\": %.1f",
		          mode_names[b->mode], n, secs, rate);
		json_pcts(&o, "", &b->lat);
		if (b->mode == MODE_TASKS)
			json_pcts(&o, "start_", &b->start);
		sbuf_addf(&o,
		          ", \"completed\": %ld, \"failed\": %ld, \"concurrency\": %d, "
		          "\"payload_size\": %zu, \"timed_out\": %s}\n",
		          b->completed, b->failed, b->conc, b->payload_size,
		          b->timed_out ? "true" : "false");
	} else {
		const char *unit = b->mode == MODE_RPC ? "calls" : "tasks";
		if (b->mode == MODE_RPC)
			sbuf_addf(&o, "====== orchd bench --rpc: %ld HealthCheck calls ======\n",
			          b->tasks);
		else
			sbuf_addf(&o,
			          "====== orchd bench: %ld %s tasks, %zu-byte payload%s ======\n",
			          b->tasks, b->name, b->payload_size,
			          b->mode == MODE_SUBMIT ? ", submit only" : "");
		sbuf_addf(&o, "  %ld %s in %.3f s, %d in flight, 1 connection to %s%s\n", n,
		          b->mode == MODE_TASKS ? "ended" : unit, secs, b->conc, b->gateway,
		          b->mode == MODE_RPC ? ""
		          : b->calls          ? ", a call per submit and per follow"
		                              : ", one SubmitStream");
		if (b->mode == MODE_TASKS)
			sbuf_addf(&o, "  %ld completed, %ld failed or cancelled\n", b->completed,
			          b->failed);
		if (b->timed_out)
			sbuf_addf(&o, "  stopped by --time-limit after %ld of %ld\n", n, b->tasks);
		sbuf_addf(&o, "  throughput: %.1f %s/s\n\n", rate, unit);
		sbuf_addf(&o, "  %-18s %10s %10s %10s %10s\n", "latency (ms)", "p50", "p90", "p99",
		          "max");
		if (b->mode == MODE_TASKS) {
			text_row(&o, "submit->start", &b->start);
			text_row(&o, "submit->done", &b->lat);
		} else {
			text_row(&o, b->mode == MODE_RPC ? "round trip" : "submit->accepted",
			         &b->lat);
		}
	}
	fwrite(o.s, 1, o.len, stdout);
	fflush(stdout);
	sbuf_free(&o);
}

/* ---- the command -------------------------------------------------------------- */

int cmd_bench(int argc, char **argv)
{
	struct bench b;
	memset(&b, 0, sizeof b);
	struct client_flags cf = {CLIENT_DEFAULT_GATEWAY, 30000, {0}, NULL};
	b.tasks = 10000;
	b.conc = 64;
	b.name = "noop";
	int tasks = 10000, rpc = 0, nofollow = 0, nostart = 0;
	const char *payload = NULL;
	const struct opt opts[] = {
	    {"gateway", "ORCHD_GATEWAY", OPT_STR, &cf.gateway, "ADDR",
	     "gateway to load (default " CLIENT_DEFAULT_GATEWAY ")"},
	    {"tasks", NULL, OPT_INT, &tasks, "N", "tasks (or calls) in all (default 10000)"},
	    {"concurrency", NULL, OPT_INT, &b.conc, "C", "kept in flight (default 64)"},
	    {"name", NULL, OPT_STR, &b.name, "NAME", "task name (default noop)"},
	    {"payload-size", NULL, OPT_SIZE, &b.payload_size, "B",
	     "payload bytes per task (default 0)"},
	    {"payload", NULL, OPT_STR, &payload, "TEXT",
	     "every task's payload, instead of --payload-size bytes (e.g. sleep's ms)"},
	    {"json", NULL, OPT_BOOL, &b.json, NULL, "print one JSON object"},
	    {"calls", NULL, OPT_BOOL, &b.calls, NULL,
	     "a SubmitTask and a SubscribeProgress call per task, not one SubmitStream"},
	    {"rpc", NULL, OPT_BOOL, &rpc, NULL, "time unary Gateway/HealthCheck calls instead"},
	    {"no-follow", NULL, OPT_BOOL, &nofollow, NULL,
	     "only submit: latency is submit->accepted"},
	    {"no-start", NULL, OPT_BOOL, &nostart, NULL,
	     "skip reading the start times after the run (no ListTasks)"},
	    {"time-limit", NULL, OPT_DUR, &b.time_limit_ms, "DURATION",
	     "end the run after this long and report what it reached"},
	    {"deadline", "ORCHD_DEADLINE", OPT_DUR, &cf.deadline_ms, "DURATION",
	     "deadline of each unary call (default 30s)"},
	    CLIENT_SECURITY_OPTS(&cf),
	    {NULL, NULL, 0, NULL, NULL, NULL},
	};
	int n = cmd_parse("bench", synopsis, opts, argc, argv);
	if (n == -1 - EXIT_OK)
		printf("\n%s", about);
	if (n < 0)
		return -1 - n;
	const char *why = NULL;
	if (n > 0)
		why = "unexpected argument";
	else if (tasks < 1 || b.conc < 1)
		why = "--tasks and --concurrency must be at least 1";
	else if (!*b.name)
		why = "--name must not be empty";
	else if (rpc && nofollow)
		why = "--rpc and --no-follow exclude each other";
	else if (payload && b.payload_size)
		why = "--payload and --payload-size exclude each other";
	else if (cf.deadline_ms <= 0 || b.time_limit_ms < 0)
		why = "--deadline must be positive and --time-limit not negative";
	if (why) {
		cmd_error("bench", "%s (see --help)", why);
		return EXIT_USAGE;
	}
	b.tasks = tasks;
	if (b.conc > tasks)
		b.conc = tasks;
	b.mode = rpc ? MODE_RPC : nofollow ? MODE_SUBMIT : MODE_TASKS;
	b.gateway = cf.gateway;
	b.deadline_ms = cf.deadline_ms;
	int rc = client_init(&b.cli, "bench", &cf);
	if (rc) {
		client_free(&b.cli);
		return rc;
	}
	b.base = b.cli.base;
	b.ch = b.cli.ch;

	if (payload) {
		b.payload_size = strlen(payload);
		b.payload = (uint8_t *)xstrdup(payload);
	} else {
		b.payload = xmalloc(b.payload_size + 1);
		for (size_t i = 0; i < b.payload_size; i++)
			b.payload[i] = (uint8_t)('a' + i % 26);
	}
	stats_init(&b.lat);
	stats_init(&b.start);
	if (b.time_limit_ms > 0) {
		b.limit_ev = evtimer_new(b.base, limit_cb, &b);
		struct timeval tv = {b.time_limit_ms / 1000, (b.time_limit_ms % 1000) * 1000};
		evtimer_add(b.limit_ev, &tv);
	}

	if (b.mode != MODE_RPC && !b.calls) {
		/* No deadline: a task may wait for a worker for as long as it
		 * takes; --time-limit bounds the run. */
		b.byref = xcalloc((size_t)b.tasks, sizeof *b.byref);
		pb_arena_init(&b.arena);
		b.stream = rpc_call_start(b.ch, GATEWAY_PATH "SubmitStream", &stream_cbs, &b, NULL);
	}
	launch(&b);
	event_base_dispatch(b.base);
	if (b.limit_ev)
		event_del(b.limit_ev);
	if (b.rc == 0 && b.mode == MODE_TASKS && !nostart)
		start_times(&b);
	if (b.rc == 0)
		report(&b);

	/* Calls still open (a time limit) end CANCELLED; their jobs are
	 * freed by their on_done (unary), with the kept list (followed), or
	 * with byref (not accepted yet). */
	b.stopping = 1;
	if (b.limit_ev)
		event_free(b.limit_ev);
	client_free(&b.cli);
	for (long i = 0; b.byref && i < b.started; i++)
		if (b.byref[i] && !b.byref[i]->id[0])
			free(b.byref[i]);
	free(b.byref);
	for (size_t i = 0; i < b.njobs; i++)
		free(b.jobs[i]);
	free(b.jobs);
	free(b.page_token);
	free(b.payload);
	stats_free(&b.lat);
	stats_free(&b.start);
	return b.rc;
}
