/*
 * worker: `orchd worker`, the role that runs tasks. Glue only: lib/handler
 * runs the tasks; this file holds the one RegisterWorker stream to the
 * scheduler exactly as docs/protocol.md says (registration first,
 * heartbeats, assignments as credits, progress and results echoing the
 * attempt, cancels), reconnects after any stream failure and registers
 * again with the tasks it still has, keeps results produced while
 * disconnected until they can be sent, serves orchestrator.v1.Worker for
 * introspection, and drains on SIGTERM.
 *
 * A task holds one slot from its assignment until its result has been
 * handed to the stream, so a result waiting for a reconnect still counts:
 * that bounds what is kept by --slots, and matches the scheduler's count,
 * which frees a credit only when the result arrives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cmd.h"
#include "error.h"
#include "handler.h"
#include "log.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "status.h"
#include "xalloc.h"

static const char synopsis[] =
	"[--scheduler ADDR] [--slots N] [--handler NAME=COMMAND]... [FLAGS]\n\n"
	"Runs tasks for the scheduler: the built-in handlers noop, echo, sleep (payload:\n"
	"milliseconds), fail (payload: the error) and sha256, and one exec handler per\n"
	"--handler NAME=COMMAND. COMMAND is split into words (quotes group, no shell) and\n"
	"run per task: the payload on stdin, the output from stdout, progress as lines\n"
	"\"PERCENT [message]\" on file descriptor 3, exit 0 = COMPLETED, otherwise FAILED\n"
	"with the end of stderr. The command runs in its own process group with a clean\n"
	"environment: PATH, ORCHD_TASK_ID, ORCHD_TASK_NAME and what --handler-env names,\n"
	"nothing else. SIGTERM lets running tasks finish (--drain-timeout),\n"
	"hands back the rest and exits 0. orchestrator.v1.Worker (status, health) is\n"
	"served on --listen, default :50053.";

#define WORKER_SERVICE "orchestrator.v1.Worker"
#define REGISTER_PATH "/orchestrator.v1.Scheduler/RegisterWorker"
/* Between stream attempts (the channel backs off connects on its own). */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
/* After our half-close, how long the scheduler gets to end the stream. */
#define CLOSE_WAIT_MS 3000
/* Results travel in one message; the scheduler accepts up to 4 MiB. */
#define MAX_OUTPUT_LIMIT ((4u << 20) - (64u << 10))

enum tstate {
	TS_RUNNING, /* its handler runs */
	TS_DONE,    /* finished; the result waits for the stream */
	TS_HELD,    /* assigned while draining: never run, handed back on close */
};

/* One task on this worker, from its assignment until its result has been
 * handed to the stream. */
struct wtask {
	struct wtask *next, *prev; /* w->tasks */
	struct wtask *done_next;   /* w->done: TS_DONE and not dropped */
	struct worker *w;
	char *id; /* id and name point into mem */
	char *name;
	int32_t attempt;
	enum tstate state;
	int64_t started_unix_ms;
	int64_t deadline_unix_ms;
	struct timespec started;
	int percent;
	struct handler_run *run; /* TS_RUNNING */
	/* Set through task_cancelling() and task_drop(), which keep
	 * w->used. */
	int cancelling; /* told to stop: its slot is on its way back */
	int drop;	/* its result is not to be sent (handed back) */
	/* TS_DONE */
	enum handler_status status;
	uint8_t *output;
	size_t output_len;
	char *error; /* NULL for none */
	char mem[];  /* one allocation per task */
};

struct worker {
	struct role role;
	struct event_base *base;
	struct handler_set *hs;
	struct rpc_channel *ch;
	const char *sched_addr;
	char id[300];
	char address[300];
	int slots;
	int64_t heartbeat_ms; /* asked for */
	int64_t hb_ms;	      /* in effect */
	int64_t drain_ms;
	struct rpc_call *call; /* the stream; NULL between attempts */
	int up;		       /* the scheduler has answered on this stream */
	int retry_ms;
	struct event *hb_ev, *retry_ev, *drain_ev, *close_ev;
	struct wtask *tasks, *tasks_tail; /* in assignment order */
	int used;			  /* slots in use, see slots_used() */
	struct wtask *done, **done_tail;  /* results to send, in the order finished */
	int stopping;	     /* SIGTERM: no new work */
	int closing;	     /* the stream is closed for good */
	int released;
	struct pb_arena arena; /* what the scheduler sends is unpacked here */
};

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t since_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(ev, &tv);
}

static const char *status_str(enum handler_status st)
{
	return st == HANDLER_COMPLETED ? "COMPLETED"
	       : st == HANDLER_FAILED	 ? "FAILED"
					 : "CANCELLED";
}

/* ---- tasks ---------------------------------------------------------------- */

/* A walk: at the slot counts workers usually have it costs less than
 * hashing the id into a map would (docs/performance.md, "Worker hot
 * path"). */
static struct wtask *find_task(struct worker *w, const char *id)
{
	for (struct wtask *t = w->tasks; t; t = t->next)
		if (!t->drop && strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

/* Slots in use: tasks being told to stop are on their way out (the
 * scheduler may already count theirs as free, e.g. after a reconnect). */
static int slots_used(const struct worker *w)
{
	return w->used;
}

/* Whether t holds a slot by slots_used()'s rule. */
static int holds_slot(const struct wtask *t)
{
	return !t->cancelling && !t->drop;
}

static void task_cancelling(struct worker *w, struct wtask *t)
{
	w->used -= holds_slot(t);
	t->cancelling = 1;
}

static void task_drop(struct worker *w, struct wtask *t)
{
	if (t->drop)
		return;
	w->used -= holds_slot(t);
	t->drop = 1;
}

static int count_state(const struct worker *w, enum tstate st)
{
	int n = 0;
	for (const struct wtask *t = w->tasks; t; t = t->next)
		n += t->state == st;
	return n;
}

/* Appends a new task, counted as holding a slot. */
static void task_add(struct worker *w, struct wtask *t)
{
	t->prev = w->tasks_tail;
	if (w->tasks_tail)
		w->tasks_tail->next = t;
	else
		w->tasks = t;
	w->tasks_tail = t;
	w->used++;
}

static void task_remove(struct worker *w, struct wtask *t)
{
	task_drop(w, t);
	if (t->prev)
		t->prev->next = t->next;
	else
		w->tasks = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		w->tasks_tail = t->prev;
	/* flush_results takes the head: a walk only for other removals. */
	for (struct wtask **p = &w->done; t->state == TS_DONE && *p; p = &(*p)->done_next) {
		if (*p == t) {
			*p = t->done_next;
			if (!*p)
				w->done_tail = p;
			break;
		}
	}
	free(t->output);
	free(t->error);
	free(t);
}

static void check_drain(struct worker *w);
static void check_exit(struct worker *w);

/* ---- sending on the stream ------------------------------------------------ */

static int send_msg(struct worker *w, Orchestrator__V1__WorkerResponse *m)
{
	return pb_send(w->call, &m->base, 0);
}

/* The ids the scheduler should consider ours: everything not handed back,
 * tasks told to stop included until their result is sent: the scheduler
 * frees a lease-over slot whose task a heartbeat leaves out
 * (docs/protocol.md section 3). The array is the caller's to free; the ids
 * are borrowed. */
static char **task_ids(struct worker *w, size_t *n)
{
	size_t all = 0;
	for (struct wtask *t = w->tasks; t; t = t->next)
		all++;
	char **ids = xcalloc(all + 1, sizeof *ids);
	*n = 0;
	for (struct wtask *t = w->tasks; t; t = t->next)
		if (!t->drop)
			ids[(*n)++] = t->id;
	return ids;
}

static void send_registration(struct worker *w)
{
	Orchestrator__V1__WorkerRegistration reg = ORCHESTRATOR__V1__WORKER_REGISTRATION__INIT;
	reg.worker_id = w->id;
	reg.slots = w->slots;
	reg.n_task_names = handler_set_count(w->hs);
	reg.task_names = xcalloc(reg.n_task_names, sizeof *reg.task_names);
	for (size_t i = 0; i < reg.n_task_names; i++)
		reg.task_names[i] = (char *)handler_set_name(w->hs, i);
	reg.version = (char *)ORCHD_VERSION;
	reg.address = w->address;
	reg.running_task_ids = task_ids(w, &reg.n_running_task_ids);
	Orchestrator__V1__WorkerResponse m = ORCHESTRATOR__V1__WORKER_RESPONSE__INIT;
	m.kind_case = ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_REGISTRATION;
	m.registration = &reg;
	send_msg(w, &m);
	log_debug("registration_sent", "worker=%s slots=%d names=%zu running=%zu", w->id, w->slots,
		  reg.n_task_names, reg.n_running_task_ids);
	free(reg.task_names);
	free(reg.running_task_ids);
}

static void send_heartbeat(struct worker *w)
{
	if (!w->call || !w->up)
		return;
	Orchestrator__V1__WorkerHeartbeat hb = ORCHESTRATOR__V1__WORKER_HEARTBEAT__INIT;
	hb.worker_id = w->id;
	int free_slots = w->slots - slots_used(w);
	hb.available_slots = w->stopping || free_slots < 0 ? 0 : free_slots;
	hb.draining = w->stopping;
	hb.running_task_ids = task_ids(w, &hb.n_running_task_ids);
	Orchestrator__V1__WorkerResponse m = ORCHESTRATOR__V1__WORKER_RESPONSE__INIT;
	m.kind_case = ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_HEARTBEAT;
	m.heartbeat = &hb;
	/* A full queue already tells the scheduler we are alive. */
	send_msg(w, &m);
	free(hb.running_task_ids);
}

/* Hands finished tasks' results to the stream, in the order they
 * finished, while it takes them; each one sent frees its slot. */
static void flush_results(struct worker *w)
{
	while (w->done && w->call && w->up) {
		struct wtask *t = w->done;
		Orchestrator__V1__TaskResult r = ORCHESTRATOR__V1__TASK_RESULT__INIT;
		r.task_id = t->id;
		r.status = (Orchestrator__V1__TaskStatus)t->status;
		r.output.data = t->output;
		r.output.len = t->output_len;
		r.error = t->error ? t->error : "";
		r.attempt = t->attempt;
		Orchestrator__V1__WorkerResponse m = ORCHESTRATOR__V1__WORKER_RESPONSE__INIT;
		m.kind_case = ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_RESULT;
		m.result = &r;
		int rv = send_msg(w, &m);
		if (rv < 0)
			break; /* E_AGAIN: on_writable brings us back; else on_done */
		log_debug("result_sent", "task=%s attempt=%d status=%s", t->id, t->attempt,
			  status_str(t->status));
		task_remove(w, t);
		if (rv == RPC_SEND_FULL)
			break;
	}
}

/* ---- task callbacks ----------------------------------------------------- */

static int task_progress(int pct, const char *msg, void *arg)
{
	struct wtask *t = arg;
	struct worker *w = t->w;
	t->percent = pct;
	log_debug("task_progress", "task=%s percent=%d message=%s", t->id, pct, log_quote(msg));
	if (!w->call || !w->up || t->drop)
		return 0;
	Orchestrator__V1__WorkerProgress p = ORCHESTRATOR__V1__WORKER_PROGRESS__INIT;
	p.task_id = t->id;
	p.attempt = t->attempt;
	p.percent = pct;
	p.message = (char *)msg;
	Orchestrator__V1__WorkerResponse m = ORCHESTRATOR__V1__WORKER_RESPONSE__INIT;
	m.kind_case = ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_PROGRESS;
	m.progress = &p;
	/* Progress is not durable: under backpressure it is dropped. */
	send_msg(w, &m);
	return 0;
}

/* Records a task's result and sends it if the stream is up. */
static void task_finish(struct wtask *t, enum handler_status st, const uint8_t *out, size_t len,
			const char *error)
{
	struct worker *w = t->w;
	t->run = NULL;
	if (t->drop) {
		log_info("task_handed_back", "task=%s name=%s attempt=%d", t->id,
			 log_quote(t->name), t->attempt);
		task_remove(w, t);
		check_exit(w);
		return;
	}
	t->state = TS_DONE;
	*w->done_tail = t;
	w->done_tail = &t->done_next;
	t->status = st;
	t->output = len ? xmemdup(out, len) : NULL;
	t->output_len = len;
	t->error = error && *error ? xstrdup(error) : NULL;
	log_info("task_finished", "task=%s name=%s attempt=%d status=%s ms=%lld bytes=%zu error=%s",
		 t->id, log_quote(t->name), t->attempt, status_str(st),
		 (long long)since_ms(&t->started), len, log_quote(t->error));
	if (!w->up)
		log_info("result_kept", "task=%s reason=disconnected", t->id);
	flush_results(w);
	check_drain(w);
}

static int task_done(enum handler_status st, const uint8_t *out, size_t len, const char *error,
		     void *arg)
{
	task_finish(arg, st, out, len, error);
	return 0;
}

static const struct handler_cbs task_cbs = {task_progress, task_done};

/* ---- what the scheduler sends ----------------------------------------- */

static void on_assign(struct worker *w, const Orchestrator__V1__TaskAssignment__Assign *a)
{
	const Orchestrator__V1__TaskSpec *spec = a->spec;
	const char *name = spec && spec->name ? spec->name : "";
	if (!a->task_id || !*a->task_id) {
		log_warn("assignment_ignored", "reason=%s", log_quote("no task id"));
		return;
	}
	struct wtask *old = find_task(w, a->task_id);
	if (old && old->attempt == a->attempt) {
		log_warn("assignment_ignored", "task=%s attempt=%d reason=duplicate", a->task_id,
			 a->attempt);
		return;
	}
	if (old) {
		/* A new attempt of a task we still have (re-queued while we were
		 * away): the old attempt's result must never be sent. */
		log_warn("attempt_superseded", "task=%s old_attempt=%d attempt=%d", old->id,
			 old->attempt, a->attempt);
		task_drop(w, old);
		if (old->state == TS_RUNNING)
			handler_cancel(old->run, "superseded by a new attempt");
		else
			task_remove(w, old);
	}
	int used = slots_used(w);
	size_t idlen = strlen(a->task_id) + 1, namelen = strlen(name) + 1;
	struct wtask *t = xmalloc(sizeof *t + idlen + namelen);
	memset(t, 0, sizeof *t);
	t->w = w;
	t->id = memcpy(t->mem, a->task_id, idlen);
	t->name = memcpy(t->mem + idlen, name, namelen);
	t->attempt = a->attempt;
	t->started_unix_ms = unix_ms();
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	int64_t timeout = spec ? spec->timeout_ms : 0;
	t->deadline_unix_ms = timeout > 0 ? t->started_unix_ms + timeout : 0;
	task_add(w, t);

	if (w->stopping) {
		t->state = TS_HELD;
		log_info("task_held", "task=%s name=%s attempt=%d reason=draining", t->id,
			 log_quote(name), t->attempt);
		return;
	}
	char e[512];
	if (used >= w->slots) {
		snprintf(e, sizeof e, "worker %s has no free slot (slots=%d)", w->id, w->slots);
		log_warn("assignment_rejected", "task=%s attempt=%d reason=%s", t->id, t->attempt,
			 log_quote(e));
		task_finish(t, HANDLER_FAILED, NULL, 0, e);
		return;
	}
	if (!handler_set_has(w->hs, name)) {
		snprintf(e, sizeof e, "worker %s has no handler for task name '%s'", w->id, name);
		log_warn("assignment_rejected", "task=%s attempt=%d reason=%s", t->id, t->attempt,
			 log_quote(e));
		task_finish(t, HANDLER_FAILED, NULL, 0, e);
		return;
	}
	t->state = TS_RUNNING;
	log_info("task_started", "task=%s name=%s attempt=%d timeout_ms=%lld bytes=%zu", t->id,
		 log_quote(name), t->attempt, (long long)timeout,
		 spec ? spec->payload.len : (size_t)0);
	t->run = handler_start(w->hs, t->id, name, spec ? spec->payload.data : NULL,
			       spec ? spec->payload.len : 0, timeout, &task_cbs, t, NULL);
}

static void on_cancel(struct worker *w, const Orchestrator__V1__TaskAssignment__Cancel *c)
{
	struct wtask *t = c->task_id ? find_task(w, c->task_id) : NULL;
	const char *reason = c->reason && *c->reason ? c->reason : "cancelled";
	if (!t) {
		log_info("cancel_ignored", "task=%s reason=not_running",
			 log_quote(c->task_id ? c->task_id : ""));
		return;
	}
	log_info("task_cancel", "task=%s attempt=%d reason=%s", t->id, t->attempt,
		 log_quote(reason));
	if (t->state == TS_RUNNING) {
		task_cancelling(w, t);
		handler_cancel(t->run, reason);
	} else if (t->state == TS_HELD) {
		task_finish(t, HANDLER_CANCELLED, NULL, 0, reason);
	}
	/* TS_DONE: its result is already on its way. */
}

static void stream_up(struct worker *w, const Orchestrator__V1__TaskAssignment__Welcome *wel)
{
	w->up = 1;
	w->retry_ms = RETRY_MIN_MS;
	int64_t hb = w->heartbeat_ms;
	/* Beat at least as often as the scheduler expects. */
	if (wel && wel->heartbeat_interval_ms > 0 && wel->heartbeat_interval_ms < hb)
		hb = wel->heartbeat_interval_ms;
	if (hb != w->hb_ms) {
		w->hb_ms = hb;
		arm(w->hb_ev, hb);
	}
	log_info("connected",
		 "scheduler=%s worker=%s running=%d results_pending=%d heartbeat_ms=%lld "
		 "dead_timeout_ms=%lld",
		 w->sched_addr, w->id, count_state(w, TS_RUNNING), count_state(w, TS_DONE),
		 (long long)w->hb_ms, (long long)(wel ? wel->dead_timeout_ms : 0));
	flush_results(w);
	check_drain(w);
}

static int stream_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct worker *w = arg;
	Orchestrator__V1__TaskAssignment *a =
		orchestrator__v1__task_assignment__unpack(&w->arena.allocator, len, msg);
	if (!a) {
		pb_arena_release(&w->arena, NULL);
		log_warn("bad_message", "scheduler=%s bytes=%zu", w->sched_addr, len);
		return GRPC_STATUS_INTERNAL;
	}
	if (!w->up)
		stream_up(w, a->kind_case == ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_WELCOME
				     ? a->welcome
				     : NULL);
	switch (a->kind_case) {
	case ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_ASSIGN:
		on_assign(w, a->assign);
		break;
	case ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_CANCEL:
		on_cancel(w, a->cancel);
		break;
	case ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_WELCOME:
		break;
	default:
		log_debug("message_ignored", "kind=%d", (int)a->kind_case);
		break;
	}
	pb_arena_release(&w->arena, &a->base);
	return 0;
}

static void stream_writable(struct rpc_call *call, void *arg)
{
	flush_results(arg);
}

static void stream_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct worker *w = arg;
	int was_up = w->up;
	w->call = NULL;
	w->up = 0;
	event_del(w->close_ev);
	/* The scheduler re-queues what it had assigned and we never ran. */
	for (struct wtask *t = w->tasks, *next; t; t = next) {
		next = t->next;
		if (t->state == TS_HELD) {
			log_info("task_handed_back", "task=%s name=%s attempt=%d", t->id,
				 log_quote(t->name), t->attempt);
			task_remove(w, t);
		}
	}
	if (w->closing) {
		log_info("disconnected", "scheduler=%s status=%s reason=closing", w->sched_addr,
			 status_name(status));
		check_exit(w);
		return;
	}
	int ms = w->retry_ms;
	ms += (int)(random() % (ms / 5 + 1));
	w->retry_ms = w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
	if (was_up)
		log_warn("disconnected",
			 "scheduler=%s status=%s message=%s running=%d results_pending=%d "
			 "retry_ms=%d",
			 w->sched_addr, status_name(status), log_quote(message),
			 count_state(w, TS_RUNNING), count_state(w, TS_DONE), ms);
	else
		log_warn("register_failed", "scheduler=%s status=%s message=%s retry_ms=%d",
			 w->sched_addr, status_name(status), log_quote(message), ms);
	arm(w->retry_ev, ms);
}

static const struct rpc_call_cbs stream_cbs = {
	.on_message = stream_msg, .on_writable = stream_writable, .on_done = stream_done};

/* Starts a stream attempt. It waits for the channel to connect (the
 * channel backs off on its own), and the registration goes out first. */
static void stream_open(struct worker *w)
{
	struct rpc_call_opts o = {.wait_for_ready = 1};
	w->up = 0;
	w->call = rpc_call_start(w->ch, REGISTER_PATH, &stream_cbs, w, &o);
	send_registration(w);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	if (!w->closing && !w->call)
		stream_open(w);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	send_heartbeat(w);
	arm(w->hb_ev, w->hb_ms);
}

/* ---- stopping ------------------------------------------------------------- */

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	if (w->call)
		rpc_call_cancel(w->call);
}

/* Closes the stream for good: whatever the scheduler still counts as ours
 * goes back to its queue. */
static void close_stream(struct worker *w)
{
	if (w->closing)
		return;
	w->closing = 1;
	event_del(w->retry_ev);
	event_del(w->hb_ev);
	event_del(w->drain_ev);
	if (w->call && w->up) {
		/* Half-close: queued results go out first. */
		rpc_call_close_send(w->call);
		arm(w->close_ev, CLOSE_WAIT_MS);
	} else if (w->call) {
		rpc_call_cancel(w->call);
	}
	check_exit(w);
}

/* Ends the drain once nothing runs and every result has been sent. */
static void check_drain(struct worker *w)
{
	if (!w->stopping || w->closing)
		return;
	if (count_state(w, TS_RUNNING) || count_state(w, TS_DONE))
		return;
	log_info("drained", "held=%d", count_state(w, TS_HELD));
	close_stream(w);
}

/* Lets the role exit once the stream is over and every child is reaped. */
static void check_exit(struct worker *w)
{
	if (!w->closing || w->call || handler_set_running(w->hs) || w->released)
		return;
	w->released = 1;
	log_info("worker_stopped", "worker=%s", w->id);
	role_release(&w->role);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	log_warn("drain_timeout", "running=%d results_pending=%d", count_state(w, TS_RUNNING),
		 count_state(w, TS_DONE));
	for (struct wtask *t = w->tasks, *next; t; t = next) {
		next = t->next;
		if (t->state == TS_RUNNING) {
			task_drop(w, t);
			handler_cancel(t->run, "worker shutting down");
		} else if (t->state == TS_DONE) {
			log_warn("result_dropped", "task=%s reason=%s", t->id,
				 log_quote("not sent within the drain timeout"));
			task_remove(w, t);
		}
	}
	close_stream(w);
}

/* SIGTERM: take no more work, let running tasks finish for up to the
 * drain timeout, then hand back the rest by closing the stream. */
static void worker_stop(void *arg)
{
	struct worker *w = arg;
	w->stopping = 1;
	send_heartbeat(w); /* tells the scheduler at once: no more assignments */
	log_info("drain_started", "running=%d results_pending=%d drain_timeout_ms=%lld",
		 count_state(w, TS_RUNNING), count_state(w, TS_DONE), (long long)w->drain_ms);
	arm(w->drain_ev, w->drain_ms);
	check_drain(w);
}

/* ---- orchestrator.v1.Worker --------------------------------------------- */

static int status_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct worker *w = arg;
	Orchestrator__V1__GetWorkerStatusRequest *req =
		orchestrator__v1__get_worker_status_request__unpack(NULL, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	orchestrator__v1__get_worker_status_request__free_unpacked(req, NULL);

	Orchestrator__V1__WorkerStatus st = ORCHESTRATOR__V1__WORKER_STATUS__INIT;
	st.worker_id = w->id;
	st.slots = w->slots;
	int free_slots = w->slots - slots_used(w);
	st.available_slots = w->stopping || free_slots < 0 ? 0 : free_slots;
	size_t n = (size_t)count_state(w, TS_RUNNING);
	Orchestrator__V1__RunningTask *rt = xcalloc(n + 1, sizeof *rt);
	st.running = xcalloc(n + 1, sizeof *st.running);
	for (struct wtask *t = w->tasks; t; t = t->next) {
		if (t->state != TS_RUNNING)
			continue;
		Orchestrator__V1__RunningTask *r = &rt[st.n_running];
		orchestrator__v1__running_task__init(r);
		r->task_id = t->id;
		r->name = t->name;
		r->attempt = t->attempt;
		r->percent = t->percent;
		r->started_unix_ms = t->started_unix_ms;
		r->deadline_unix_ms = t->deadline_unix_ms;
		st.running[st.n_running++] = r;
	}
	st.n_task_names = handler_set_count(w->hs);
	st.task_names = xcalloc(st.n_task_names + 1, sizeof *st.task_names);
	for (size_t i = 0; i < st.n_task_names; i++)
		st.task_names[i] = (char *)handler_set_name(w->hs, i);
	st.scheduler_connected = w->up;
	st.version = (char *)ORCHD_VERSION;
	pb_reply(call, &st.base);
	free(rt);
	free(st.running);
	free(st.task_names);
	return 0;
}

static const struct rpc_call_cbs status_cbs = {.on_message = status_msg};

/* ---- set-up --------------------------------------------------------------- */

struct worker_flags {
	struct role_flags role;
	const char *scheduler;
	int slots;
	struct opt_list handlers;
	const char *builtins;
	const char *worker_id;
	int64_t heartbeat_ms;
	int64_t drain_ms;
	size_t max_output;
	struct opt_list handler_env;
	size_t rlimit_as;
	int64_t rlimit_cpu_ms;
};

/* Fills set from the flags. Returns 0, or -1 after reporting the error. */
static int load_handlers(struct handler_set *set, const struct worker_flags *f)
{
	char err[512];
	if (handler_set_add_builtins(set, f->builtins, err, sizeof err) != 0) {
		cmd_error("worker", "--builtins: %s", err);
		return -1;
	}
	for (size_t i = 0; i < f->handlers.n; i++) {
		if (handler_set_add_exec(set, f->handlers.v[i], err, sizeof err) != 0) {
			cmd_error("worker", "--handler: %s", err);
			return -1;
		}
	}
	for (size_t i = 0; i < f->handler_env.n; i++) {
		if (handler_set_add_env(set, f->handler_env.v[i], err, sizeof err) != 0) {
			cmd_error("worker", "--handler-env: %s", err);
			return -1;
		}
	}
	if (handler_set_count(set) == 0) {
		cmd_error("worker", "no task names to serve: --builtins none and no --handler");
		return -1;
	}
	return 0;
}

static int check_flags(const struct worker_flags *f)
{
	if (f->slots < 1 || f->slots > 10000) {
		cmd_error("worker", "--slots must be 1..10000, not %d", f->slots);
		return -1;
	}
	if (f->heartbeat_ms < 10) {
		cmd_error("worker", "--heartbeat must be at least 10ms");
		return -1;
	}
	if (f->max_output < 1 || f->max_output > MAX_OUTPUT_LIMIT) {
		cmd_error("worker", "--max-output must be 1..%u bytes", MAX_OUTPUT_LIMIT);
		return -1;
	}
	if (cmd_check_addr("worker", "--scheduler", f->scheduler, 1))
		return -1;
	if (f->worker_id && (!*f->worker_id || strlen(f->worker_id) > 256)) {
		cmd_error("worker", "--worker-id must be 1..256 bytes");
		return -1;
	}
	return 0;
}

/* "host:port" of our listener for display, and the default worker id
 * "HOST-PORT" (stable across reconnects, and across restarts when the
 * port is fixed). A unix listener has no port: its address is shown as
 * given and the id is "HOST-ADDRESS", unique among the host's sockets. */
static void set_identity(struct worker *w, const struct worker_flags *f)
{
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	const char *listen = f->role.listen;
	if (!strncmp(listen, "unix", 4)) { /* unix: or unix-abstract: */
		snprintf(w->address, sizeof w->address, "%s", listen);
		if (f->worker_id)
			snprintf(w->id, sizeof w->id, "%s", f->worker_id);
		else
			snprintf(w->id, sizeof w->id, "%.64s-%s", host, listen);
		return;
	}
	const char *colon = strrchr(listen, ':');
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	char lhost[256];
	snprintf(lhost, sizeof lhost, "%.*s", (int)hl, listen);
	if (!*lhost || !strcmp(lhost, "0.0.0.0") || !strcmp(lhost, "[::]") || !strcmp(lhost, "*"))
		snprintf(w->address, sizeof w->address, "%s:%d", host, w->role.port);
	else
		snprintf(w->address, sizeof w->address, "%s:%d", lhost, w->role.port);
	if (f->worker_id)
		snprintf(w->id, sizeof w->id, "%s", f->worker_id);
	else
		snprintf(w->id, sizeof w->id, "%s-%d", host, w->role.port);
}

int cmd_worker(int argc, char **argv)
{
	struct worker_flags f = {
		.role = {.listen = ":50053"},
		.scheduler = "127.0.0.1:50052",
		.slots = 4,
		.builtins = "all",
		.heartbeat_ms = 1000,
		.drain_ms = 30000,
		.max_output = 1u << 20,
	};
	struct opt opts[] = {
		ROLE_OPTS(&f.role, "ORCHD_WORKER_"),
		{"scheduler", "ORCHD_SCHEDULER", OPT_STR, &f.scheduler, "ADDR",
		 "scheduler to register with (default 127.0.0.1:50052)"},
		{"slots", "ORCHD_SLOTS", OPT_INT, &f.slots, "N",
		 "tasks run at once, 1..10000 (default 4)"},
		{"handler", "ORCHD_HANDLER", OPT_LIST, &f.handlers, "NAME=COMMAND",
		 "run COMMAND for tasks named NAME (repeatable; the variable holds one)"},
		{"builtins", "ORCHD_BUILTINS", OPT_STR, &f.builtins, "LIST",
		 "built-ins to serve: all (default), none, or e.g. echo,sleep"},
		{"worker-id", "ORCHD_WORKER_ID", OPT_STR, &f.worker_id, "ID",
		 "id kept across reconnects (default HOSTNAME-PORT)"},
		{"heartbeat", "ORCHD_HEARTBEAT", OPT_DUR, &f.heartbeat_ms, "DURATION",
		 "heartbeat interval (default 1s; the scheduler's if shorter)"},
		{"drain-timeout", "ORCHD_DRAIN_TIMEOUT", OPT_DUR, &f.drain_ms, "DURATION",
		 "on SIGTERM, how long running tasks may finish (default 30s)"},
		{"max-output", "ORCHD_MAX_OUTPUT", OPT_SIZE, &f.max_output, "SIZE",
		 "output kept per task; more fails the task (default 1M)"},
		{"handler-env", "ORCHD_HANDLER_ENV", OPT_LIST, &f.handler_env, "NAME[=VALUE]",
		 "give exec handlers NAME from our environment, or set to VALUE (repeatable)"},
		{"handler-rlimit-as", "ORCHD_HANDLER_RLIMIT_AS", OPT_SIZE, &f.rlimit_as, "SIZE",
		 "address space of each exec handler (RLIMIT_AS; default unlimited)"},
		{"handler-rlimit-cpu", "ORCHD_HANDLER_RLIMIT_CPU", OPT_DUR, &f.rlimit_cpu_ms,
		 "DURATION", "CPU time of each exec handler, whole seconds (default unlimited)"},
		{NULL, NULL, 0, NULL, NULL, NULL},
	};
	int n = cmd_parse("worker", synopsis, opts, argc, argv);
	if (n < 0) {
		opt_list_free(&f.handlers);
		opt_list_free(&f.handler_env);
		return -1 - n;
	}
	if (n > 0) {
		cmd_error("worker", "unexpected argument '%s'", argv[0]);
		opt_list_free(&f.handlers);
		opt_list_free(&f.handler_env);
		return EXIT_USAGE;
	}
	struct handler_opts ho = {.max_output = f.max_output,
				  .rlimit_as = f.rlimit_as,
				  .rlimit_cpu_ms = f.rlimit_cpu_ms};
	/* Flags are checked before anything listens. */
	struct handler_set *probe = handler_set_new(NULL, &ho);
	int bad = check_flags(&f) != 0 || load_handlers(probe, &f) != 0;
	handler_set_del(probe);
	if (bad) {
		opt_list_free(&f.handlers);
		opt_list_free(&f.handler_env);
		return EXIT_USAGE;
	}

	struct worker *w = xcalloc(1, sizeof *w);
	static const char *const services[] = {WORKER_SERVICE, NULL};
	int rc = role_init(&w->role, "worker", &f.role, NULL, services);
	if (rc != 0) {
		role_free(&w->role);
		opt_list_free(&f.handlers);
		opt_list_free(&f.handler_env);
		free(w);
		return rc;
	}
	w->base = w->role.base;
	w->sched_addr = f.scheduler;
	w->slots = f.slots;
	w->heartbeat_ms = w->hb_ms = f.heartbeat_ms;
	w->drain_ms = f.drain_ms;
	w->retry_ms = RETRY_MIN_MS;
	pb_arena_init(&w->arena);
	w->done_tail = &w->done;
	set_identity(w, &f);
	w->hs = handler_set_new(w->base, &ho);
	load_handlers(w->hs, &f);

	/* PINGs when the scheduler has been quiet a while, so a scheduler
	 * host that vanished is noticed without waiting for TCP. */
	struct rpc_opts co = {.keepalive_ms = 15000, .keepalive_timeout_ms = 10000,
			      .backoff_max_ms = 5000};
	role_dial_opts(&w->role, &co); /* TLS and our token towards the scheduler */
	int err = 0;
	w->ch = rpc_channel_new(w->base, f.scheduler, &co, &err);
	if (!w->ch) {
		cmd_error("worker", "bad --scheduler address '%s': %s", f.scheduler, err_str(err));
		handler_set_del(w->hs);
		role_free(&w->role);
		opt_list_free(&f.handlers);
		opt_list_free(&f.handler_env);
		free(w);
		return EXIT_USAGE;
	}
	rpc_server_add_method(w->role.srv, "/" WORKER_SERVICE "/GetWorkerStatus", &status_cbs, w);
	w->hb_ev = evtimer_new(w->base, heartbeat_cb, w);
	w->retry_ev = evtimer_new(w->base, retry_cb, w);
	w->drain_ev = evtimer_new(w->base, drain_timeout_cb, w);
	w->close_ev = evtimer_new(w->base, close_timeout_cb, w);
	w->role.on_stop = worker_stop;
	w->role.stop_arg = w;
	w->role.hold = 1;

	char names[512] = "";
	for (size_t i = 0, off = 0; i < handler_set_count(w->hs) && off < sizeof names; i++)
		off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? "," : "",
					handler_set_name(w->hs, i));
	log_info("worker_config",
		 "worker=%s scheduler=%s slots=%d names=%s heartbeat_ms=%lld drain_timeout_ms=%lld "
		 "max_output=%zu address=%s scheduler_tls=%d scheduler_token=%d handler_env=%zu "
		 "rlimit_as=%zu rlimit_cpu_ms=%lld",
		 log_quote(w->id), f.scheduler, w->slots, log_quote(names),
		 (long long)w->heartbeat_ms, (long long)w->drain_ms, f.max_output, w->address,
		 co.tls != NULL, co.default_md != NULL, f.handler_env.n, f.rlimit_as,
		 (long long)f.rlimit_cpu_ms);

	stream_open(w);
	arm(w->hb_ev, w->hb_ms);
	rc = role_run(&w->role);

	/* Anything still open ends now; on_done must not reconnect. */
	w->closing = 1;
	w->released = 1;
	rpc_channel_del(w->ch);
	handler_set_del(w->hs);
	while (w->tasks)
		task_remove(w, w->tasks);
	event_free(w->hb_ev);
	event_free(w->retry_ev);
	event_free(w->drain_ev);
	event_free(w->close_ev);
	role_free(&w->role);
	opt_list_free(&f.handlers);
	opt_list_free(&f.handler_env);
	free(w);
	return rc;
}
