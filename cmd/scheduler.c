/*
 * scheduler: `orchd scheduler`, the owner of task state. Glue between the
 * orchestrator.v1.Scheduler service and lib/scheduler.c: decode, call
 * sched_*, encode. One commit per loop turn (a lowest-priority event runs
 * after every request of the turn): submits, SubmitTask's and SubmitStream's
 * alike, are acknowledged only after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "cmd.h"
#include "coalesce.h"
#include "dlist.h"
#include "error.h"
#include "log.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "scheduler.h"
#include "store.h"
#include "taskpb.h"
#include "xalloc.h"

static const char synopsis[] = "[--listen ADDR] [--data-dir DIR] [FLAGS]";

static struct {
	struct role role;
	struct store *store;
	struct sched *sched;
	struct event *commit_ev;
	struct event *tick_ev;
	struct ack *acks;
	size_t max_payload;
	int stopping;
	struct wstream *wstreams; /* open RegisterWorker streams */
	struct watch *watches;	  /* open WatchTask streams */
	struct sstream *streams;  /* open SubmitStream calls */
	size_t max_stream_inflight;
	/* The per-task requests (SubmitTask, SubmitStream, the workers'
	 * messages) are unpacked here, no malloc per field: each is released
	 * before its on_message returns, and the loop has one thread. */
	struct pb_arena arena;
} S;

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Something changed: commit at the end of this loop turn. */
static void touch(void)
{
	event_active(S.commit_ev, 0, 0);
}

/* A store error as the status a client should see. */
static int store_status(int rv)
{
	return rv == -ENOSPC ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_UNAVAILABLE;
}

/* ---- submits: stored in the turn's transaction, answered after its commit ------- */

/*
 * A submit that waits for the turn's commit: a SubmitTask call's, or one
 * on a SubmitStream (embedded in its struct ssub), on one list, so one
 * commit answers both. answer runs once, with the commit's result (0 or
 * the store's error), and owns a from then on.
 */
struct ack {
	void (*answer)(struct ack *a, int rv);
	char id[ID_LEN + 1];
	int64_t accepted_ms;
	int dup;
	struct ack *next; /* S.acks */
};

#define CONTAINER(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Submits spec (borrowed) through sched_submit and, when stored, queues a
 * (taken by the list until its answer; a->answer set by the caller) for
 * the commit. Returns 0, or the gRPC status the submit fails with, its
 * message in err. */
static int submit_spec(const Orchestrator__V1__TaskSpec *spec, struct ack *a, char *err,
		       size_t errlen)
{
	int64_t now = now_ms();
	struct task *t = taskpb_to_task(spec, now);
	const struct task *out;
	int rv = sched_submit(S.sched, t, S.max_payload, now, &out, &a->dup, err, errlen);
	if (rv < 0)
		return rv == -EINVAL   ? GRPC_STATUS_INVALID_ARGUMENT
		       : rv == -ENOSPC ? GRPC_STATUS_RESOURCE_EXHAUSTED
				       : store_status(rv);
	memcpy(a->id, out->id, sizeof a->id);
	a->accepted_ms = out->created_ms;
	a->next = S.acks;
	S.acks = a;
	touch();
	return 0;
}

/* The answer to a stored submit (points into a). */
static void accepted_msg(const struct ack *a, Orchestrator__V1__TaskAccepted *r)
{
	orchestrator__v1__task_accepted__init(r);
	r->task_id = (char *)a->id;
	r->accepted_at_unix_ms = a->accepted_ms;
	r->duplicate = a->dup;
}

/* The message of a submit whose commit failed with rv (its status is
 * store_status(rv)). */
static void not_stored_msg(int rv, char *m, size_t len)
{
	snprintf(m, len, "task not stored: %s", err_str(rv));
}

static void answer_acks(int rv)
{
	struct ack *a = S.acks;
	S.acks = NULL;
	while (a) {
		struct ack *next = a->next;
		a->answer(a, rv);
		a = next;
	}
}

/* ---- SubmitTask ------------------------------------------------------------------ */

struct submit_call {
	struct ack ack;
	struct rpc_call *call; /* NULL once the client went away */
};

static void submit_answer(struct ack *a, int rv)
{
	struct submit_call *c = CONTAINER(a, struct submit_call, ack);
	if (c->call) {
		rpc_call_set_data(c->call, NULL);
		if (rv == 0) {
			Orchestrator__V1__TaskAccepted r;
			accepted_msg(a, &r);
			pb_reply(c->call, &r.base);
		} else {
			char m[160];
			not_stored_msg(rv, m, sizeof m);
			rpc_call_finish(c->call, store_status(rv), m);
		}
	}
	free(c);
}

static int submit_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Orchestrator__V1__TaskSpec *spec = (void *)pb_request(
		call, &orchestrator__v1__task_spec__descriptor, msg, len, &S.arena);
	if (!spec)
		return 0;
	struct submit_call *c = xcalloc(1, sizeof *c);
	c->ack.answer = submit_answer;
	char err[256];
	int code = submit_spec(spec, &c->ack, err, sizeof err);
	pb_arena_release(&S.arena, &spec->base);
	if (code) {
		free(c);
		rpc_call_finish(call, code, err);
		return 0;
	}
	c->call = call;
	rpc_call_set_data(call, c);
	return 0;
}

static void submit_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct submit_call *c = rpc_call_data(call);
	if (c)
		c->call = NULL;
}

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	int rv = sched_commit(S.sched, now_ms());
	if (rv < 0)
		log_error("commit_failed", "error=%s", log_quote(err_str(rv)));
	/* A store that cannot commit serves no submit: health says so, and
	 * says it no more once a commit that stored a submit succeeds (an
	 * empty commit proves nothing about the disk). */
	int serving = rv < 0 ? 0 : S.acks ? 1 : -1;
	if (!S.stopping && S.role.health && serving >= 0 &&
	    health_serving(S.role.health) != serving) {
		log_warn(serving ? "store_recovered" : "store_failing", NULL);
		health_set_serving(S.role.health, serving);
	}
	answer_acks(rv);
}


static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	sched_tick(S.sched, now_ms());
	touch();
}

/* ---- GetTask, CancelTask, ListTasks, ListWorkers ------------------------------- */

static void not_found(struct rpc_call *call, const char *id)
{
	char m[128];
	snprintf(m, sizeof m, "task %.40s not found", id);
	rpc_call_finish(call, GRPC_STATUS_NOT_FOUND, m);
}

static void reply_task_error(struct rpc_call *call, const char *id, int rv)
{
	if (rv == -ENOENT)
		not_found(call, id);
	else
		rpc_call_finish(call, store_status(rv), err_str(rv));
}

static int get_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Orchestrator__V1__GetTaskRequest *req = (void *)pb_request(
		call, &orchestrator__v1__get_task_request__descriptor, msg, len, NULL);
	if (!req)
		return 0;
	struct task *t;
	int rv = sched_get(S.sched, req->task_id, &t);
	if (rv < 0) {
		reply_task_error(call, req->task_id, rv);
	} else {
		struct taskpb b = {0};
		Orchestrator__V1__Task m;
		taskpb_task(&b, t, &m);
		pb_reply(call, &m.base);
		taskpb_free(&b);
		task_del(t);
	}
	orchestrator__v1__get_task_request__free_unpacked(req, NULL);
	return 0;
}

static int cancel_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Orchestrator__V1__CancelTaskRequest *req = (void *)pb_request(
		call, &orchestrator__v1__cancel_task_request__descriptor, msg, len, NULL);
	if (!req)
		return 0;
	int rv = sched_cancel(S.sched, req->task_id, req->reason, now_ms());
	if (rv == E_STATE) {
		char m[128];
		snprintf(m, sizeof m, "task %.40s is already finished", req->task_id);
		rpc_call_finish(call, GRPC_STATUS_FAILED_PRECONDITION, m);
	} else if (rv < 0) {
		reply_task_error(call, req->task_id, rv);
	} else {
		Orchestrator__V1__CancelTaskResponse r = ORCHESTRATOR__V1__CANCEL_TASK_RESPONSE__INIT;
		r.task_id = req->task_id;
		r.status = (Orchestrator__V1__TaskStatus)rv;
		pb_reply(call, &r.base);
		touch();
	}
	orchestrator__v1__cancel_task_request__free_unpacked(req, NULL);
	return 0;
}

/* Most bytes of one ListTasks answer: under the 4 MiB every role and
 * stock gRPC client accept by default. */
#define LIST_MAX_BYTES ((4u << 20) - (64u << 10))

struct listing {
	Orchestrator__V1__Task **tasks;
	Orchestrator__V1__Task *msgs;
	struct taskpb *bufs;
	struct task **owned;
	size_t n, cap;
};

static int list_cb(struct task *t, void *arg)
{
	struct listing *l = arg;
	/* Listings carry no payloads (GetTask does): a page of 1 MiB
	 * payloads would not fit a message. */
	task_set_bytes(&t->payload, &t->payload_len, NULL, 0);
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->msgs = xrealloc(l->msgs, l->cap * sizeof *l->msgs);
		l->bufs = xrealloc(l->bufs, l->cap * sizeof *l->bufs);
		l->owned = xrealloc(l->owned, l->cap * sizeof *l->owned);
	}
	l->owned[l->n] = t;
	l->n++;
	return 0;
}

static int list_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Orchestrator__V1__ListTasksRequest *req = (void *)pb_request(
		call, &orchestrator__v1__list_tasks_request__descriptor, msg, len, NULL);
	if (!req)
		return 0;
	/* proto3 enums are open, so any number decodes; one that is no
	 * TaskStatus is a client's mistake, not a filter matching nothing. */
	if ((int)req->status < TASK_UNSPECIFIED || (int)req->status > TASK_CANCELLED) {
		char m[80];
		snprintf(m, sizeof m, "status %d is not a TaskStatus", (int)req->status);
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, m);
		orchestrator__v1__list_tasks_request__free_unpacked(req, NULL);
		return 0;
	}
	struct store_filter f = {.status = (enum task_state)req->status,
				 .name = req->name,
				 .page_size = req->page_size,
				 .page_token = req->page_token};
	struct listing l = {0};
	char next[ID_LEN + 1] = "";
	int rv = sched_list(S.sched, &f, list_cb, &l, next);
	if (rv == -EINVAL) {
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "invalid page_token");
	} else if (rv < 0) {
		rpc_call_finish(call, store_status(rv), err_str(rv));
	} else {
		/* The message array is final now; point into it. */
		l.tasks = xcalloc(l.n + 1, sizeof *l.tasks);
		for (size_t i = 0; i < l.n; i++) {
			memset(&l.bufs[i], 0, sizeof l.bufs[i]);
			taskpb_task(&l.bufs[i], l.owned[i], &l.msgs[i]);
			l.tasks[i] = &l.msgs[i];
		}
		/* The page must fit in one message: outputs can be large, so it
		 * may end early, its token then pointing after its last task
		 * (tokens are the last id of a page; at least one task a page). */
		size_t keep = 0, bytes = 0;
		for (; keep < l.n; keep++) {
			bytes += orchestrator__v1__task__get_packed_size(&l.msgs[keep]) + 8;
			if (keep > 0 && bytes > LIST_MAX_BYTES)
				break;
		}
		if (keep < l.n)
			snprintf(next, sizeof next, "%s", l.owned[keep - 1]->id);
		Orchestrator__V1__ListTasksResponse r = ORCHESTRATOR__V1__LIST_TASKS_RESPONSE__INIT;
		r.n_tasks = keep;
		r.tasks = l.tasks;
		r.next_page_token = next;
		pb_reply(call, &r.base);
		for (size_t i = 0; i < l.n; i++)
			taskpb_free(&l.bufs[i]);
	}
	for (size_t i = 0; i < l.n; i++)
		task_del(l.owned[i]);
	free(l.tasks);
	free(l.msgs);
	free(l.bufs);
	free(l.owned);
	orchestrator__v1__list_tasks_request__free_unpacked(req, NULL);
	return 0;
}

/* Worker infos are copied out of the callback: its arrays are borrowed
 * for its duration only. */
struct wlist {
	Orchestrator__V1__WorkerInfo **v;
	size_t n;
};

static char **dup_strv(const char *const *v, size_t n)
{
	char **c = xcalloc(n + 1, sizeof *c);
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void worker_cb(const struct sched_worker_info *w, void *arg)
{
	struct wlist *l = arg;
	Orchestrator__V1__WorkerInfo *i = xmalloc(sizeof *i);
	orchestrator__v1__worker_info__init(i);
	i->worker_id = xstrdup(w->id);
	i->n_task_names = w->nnames;
	i->task_names = dup_strv(w->names, w->nnames);
	i->slots = w->slots;
	i->available_slots = w->slots - w->running;
	i->n_running_task_ids = w->nrunning_ids;
	i->running_task_ids = dup_strv(w->running_ids, w->nrunning_ids);
	i->version = xstrdup(w->version);
	i->address = xstrdup(w->address);
	i->connected_unix_ms = w->connected_ms;
	i->last_heartbeat_unix_ms = w->last_seen_ms;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = i;
}

static int workers_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct wlist l = {0};
	sched_workers_foreach(S.sched, worker_cb, &l);
	Orchestrator__V1__ListWorkersResponse r = ORCHESTRATOR__V1__LIST_WORKERS_RESPONSE__INIT;
	r.n_workers = l.n;
	r.workers = l.v;
	pb_reply(call, &r.base);
	for (size_t k = 0; k < l.n; k++) {
		Orchestrator__V1__WorkerInfo *i = l.v[k];
		free(i->worker_id);
		free_strv(i->task_names, i->n_task_names);
		free_strv(i->running_task_ids, i->n_running_task_ids);
		free(i->version);
		free(i->address);
		free(i);
	}
	free(l.v);
	return 0;
}

/* ---- following a task: WatchTask, and SubmitStream's follow ---------------------- */

/*
 * The context every sched_watch gets, first member of the struct of each
 * kind of follower (a WatchTask call, a followed submit), so ops.update
 * hands each update to its own kind without guessing. send gets the
 * update as TaskProgress (p and its strings borrowed for the call); on a
 * final one the task is no longer watched and f may be freed. With
 * final_only, send gets the final update alone: the others are not even
 * built.
 */
struct follow {
	void (*send)(struct follow *f, const Orchestrator__V1__TaskProgress *p, int final);
	char id[ID_LEN + 1];
	int watching;
	int final_only;
};

static void follow_stop(struct follow *f)
{
	if (f->watching) {
		sched_unwatch(S.sched, f->id, f);
		f->watching = 0;
	}
}

static void follow_update(struct follow *f, const struct task *t)
{
	int final = task_state_final(t->status);
	if (final)
		follow_stop(f);
	else if (f->final_only)
		return;
	struct taskpb b = {0};
	Orchestrator__V1__TaskProgress p;
	taskpb_progress(&b, t, now_ms(), &p);
	f->send(f, &p, final);
	taskpb_free(&b);
}

static void on_update(void *ctx, const struct task *t)
{
	follow_update(ctx, t);
}

/* Starts following task id (f->send and f->final_only set): its current
 * state is sent at once (with final_only, if final), then every change
 * until the final one. Returns 0, -ENOENT or a store error (nothing
 * sent). */
static int follow_start(struct follow *f, const char *id)
{
	snprintf(f->id, sizeof f->id, "%s", id);
	struct task *snap;
	int rv = sched_watch(S.sched, id, f, f->final_only, &snap);
	if (rv < 0)
		return rv;
	f->watching = rv == 0;
	if (snap) {
		follow_update(f, snap);
		task_del(snap);
	}
	return 0;
}

/* ---- WatchTask: current state, then changes; coalesced when slow ------------------ */

struct watch {
	struct follow f;
	struct rpc_call *call;
	struct coalesce box; /* a slow watcher gets the newest state only */
	int final_offered;
	struct watch *next, *prev; /* S.watches */
};

static int watch_send_cb(const void *msg, size_t len, void *arg)
{
	struct watch *w = arg;
	return rpc_call_send(w->call, msg, len, 0);
}

/* Ends the call once the final update has left the mailbox. */
static void watch_maybe_end(struct watch *w)
{
	if (w->final_offered && !coalesce_pending(&w->box))
		rpc_call_finish(w->call, GRPC_STATUS_OK, NULL);
}

static void watch_send(struct follow *f, const Orchestrator__V1__TaskProgress *p, int final)
{
	struct watch *w = CONTAINER(f, struct watch, f);
	uint8_t stackbuf[512];
	size_t n = orchestrator__v1__task_progress__get_packed_size(p);
	uint8_t *buf = n <= sizeof stackbuf ? stackbuf : xmalloc(n);
	orchestrator__v1__task_progress__pack(p, buf);
	coalesce_offer(&w->box, buf, n, final);
	if (buf != stackbuf)
		free(buf);
	if (final) {
		w->final_offered = 1;
		watch_maybe_end(w);
	}
}

static void watch_writable(struct rpc_call *call, void *arg)
{
	struct watch *w = rpc_call_data(call);
	coalesce_writable(&w->box);
	watch_maybe_end(w);
}

static int watch_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	if (rpc_call_data(call))
		return GRPC_STATUS_INVALID_ARGUMENT;
	Orchestrator__V1__ProgressRequest *req = (void *)pb_request(
		call, &orchestrator__v1__progress_request__descriptor, msg, len, NULL);
	if (!req)
		return 0;
	struct watch *w = xcalloc(1, sizeof *w);
	w->f.send = watch_send;
	w->call = call;
	coalesce_init(&w->box, watch_send_cb, w);
	DLIST_PUSH(S.watches, w);
	rpc_call_set_data(call, w);
	int rv = follow_start(&w->f, req->task_id);
	if (rv < 0)
		reply_task_error(call, req->task_id, rv);
	orchestrator__v1__progress_request__free_unpacked(req, NULL);
	return 0;
}

static void watch_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct watch *w = rpc_call_data(call);
	if (!w)
		return;
	follow_stop(&w->f);
	DLIST_UNLINK(S.watches, w);
	coalesce_free(&w->box);
	free(w);
}

/* ---- SubmitStream: many submits on one call, each answered, optionally followed -- */

/*
 * One submit on a SubmitStream, from its request until its answer or, when
 * followed, its final update: one allocation is its ack (on S.acks until
 * the commit) and its watch context.
 */
struct ssub {
	struct follow f;
	struct ack ack;
	struct sstream *ss; /* NULL once the stream ended before the commit */
	uint64_t ref;
	int follow;
	int answered;
	int last_status;	  /* status of the last progress sent */
	struct ssub *next, *prev; /* ss->subs */
};

struct sstream {
	struct rpc_call *call;
	struct ssub *subs; /* in flight: unanswered, or followed and not final */
	size_t inflight;
	int half_closed;
	int full; /* the send queue is at its high-water mark: receiving paused */
	uint64_t submits, rejected, dropped; /* for the debug line at the end */
	struct sstream *next, *prev;	     /* S.streams */
};

/*
 * Sends ev. An event that must not be lost (accepted, rejected, a status
 * change) is queued even past the high-water mark; any other (a
 * percent-only update) is dropped then. Either way a full queue pauses
 * receiving until on_writable: no new submit arrives, so what is queued
 * stays within a few events per submit in flight. Returns rpc_call_send's
 * result.
 */
static int stream_send(struct sstream *ss, Orchestrator__V1__SubmitStreamEvent *ev, int must)
{
	int rv = pb_send(ss->call, &ev->base, must ? RPC_SEND_FORCE : 0);
	if (rv == E_AGAIN)
		ss->dropped++;
	if ((rv == RPC_SEND_FULL || rv == E_AGAIN) && !ss->full) {
		ss->full = 1;
		rpc_call_pause_recv(ss->call, 1);
	}
	return rv;
}

static void stream_reject(struct sstream *ss, uint64_t ref, int code, const char *msg)
{
	Orchestrator__V1__SubmitRejected r = ORCHESTRATOR__V1__SUBMIT_REJECTED__INIT;
	r.code = code;
	r.message = (char *)msg;
	Orchestrator__V1__SubmitStreamEvent ev = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__INIT;
	ev.ref = ref;
	ev.event_case = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_REJECTED;
	ev.rejected = &r;
	ss->rejected++;
	stream_send(ss, &ev, 1);
}

/* The stream is over once the client half-closed and nothing is in flight. */
static void stream_maybe_end(struct sstream *ss)
{
	if (ss->half_closed && !ss->subs)
		rpc_call_finish(ss->call, GRPC_STATUS_OK, NULL);
}

/* The submit is answered and, if followed, final: u is freed. */
static void sub_end(struct ssub *u)
{
	struct sstream *ss = u->ss;
	DLIST_UNLINK(ss->subs, u);
	ss->inflight--;
	free(u);
	stream_maybe_end(ss);
}

static void sub_send(struct follow *f, const Orchestrator__V1__TaskProgress *p, int final)
{
	struct ssub *u = CONTAINER(f, struct ssub, f);
	Orchestrator__V1__SubmitStreamEvent ev = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__INIT;
	ev.ref = u->ref;
	ev.event_case = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_PROGRESS;
	ev.progress = (Orchestrator__V1__TaskProgress *)p;
	int change = final || (int)p->status != u->last_status;
	u->last_status = (int)p->status;
	stream_send(u->ss, &ev, change);
	if (final)
		sub_end(u);
}

static void sub_answer(struct ack *a, int rv)
{
	struct ssub *u = CONTAINER(a, struct ssub, ack);
	struct sstream *ss = u->ss;
	if (!ss) {
		free(u);
		return;
	}
	u->answered = 1;
	if (rv < 0) {
		char m[160];
		not_stored_msg(rv, m, sizeof m);
		stream_reject(ss, u->ref, store_status(rv), m);
		sub_end(u);
		return;
	}
	Orchestrator__V1__TaskAccepted r;
	accepted_msg(a, &r);
	Orchestrator__V1__SubmitStreamEvent ev = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__INIT;
	ev.ref = u->ref;
	ev.event_case = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_ACCEPTED;
	ev.accepted = &r;
	stream_send(ss, &ev, 1);
	if (!u->follow) {
		sub_end(u);
		return;
	}
	/* May send the final update at once, and free u. */
	rv = follow_start(&u->f, a->id);
	if (rv < 0) {
		/* Accepted, so not rejected: the stream fails as a WatchTask
		 * of the task would; the task runs all the same. */
		char m[160];
		snprintf(m, sizeof m, "cannot follow task %s: %s", a->id, err_str(rv));
		rpc_call_finish(ss->call, store_status(rv), m);
		sub_end(u);
	}
}

static int stream_start(struct rpc_call *call, void *arg)
{
	if (S.stopping)
		return GRPC_STATUS_UNAVAILABLE;
	struct sstream *ss = xcalloc(1, sizeof *ss);
	ss->call = call;
	DLIST_PUSH(S.streams, ss);
	rpc_call_set_data(call, ss);
	return 0;
}

static int stream_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct sstream *ss = rpc_call_data(call);
	Orchestrator__V1__SubmitStreamRequest *req = (void *)pb_request(
		call, &orchestrator__v1__submit_stream_request__descriptor, msg, len, &S.arena);
	if (!req)
		return 0;
	ss->submits++;
	char err[256];
	if (!req->spec) {
		stream_reject(ss, req->ref, GRPC_STATUS_INVALID_ARGUMENT,
			      "SubmitStreamRequest.spec is missing");
	} else if (ss->inflight >= S.max_stream_inflight) {
		snprintf(err, sizeof err,
			 "too many submits in flight on this stream (limit %zu, "
			 "--max-stream-inflight): wait for answers and final updates",
			 S.max_stream_inflight);
		stream_reject(ss, req->ref, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
	} else {
		struct ssub *u = xcalloc(1, sizeof *u);
		u->f.send = sub_send;
		u->ack.answer = sub_answer;
		int code = submit_spec(req->spec, &u->ack, err, sizeof err);
		if (code) {
			free(u);
			stream_reject(ss, req->ref, code, err);
		} else {
			u->ss = ss;
			u->ref = req->ref;
			u->follow = req->follow;
			u->f.final_only = req->final_only;
			DLIST_PUSH(ss->subs, u);
			ss->inflight++;
		}
	}
	pb_arena_release(&S.arena, &req->base);
	return 0;
}

static void stream_half_close(struct rpc_call *call, void *arg)
{
	struct sstream *ss = rpc_call_data(call);
	ss->half_closed = 1;
	stream_maybe_end(ss);
}

static void stream_writable(struct rpc_call *call, void *arg)
{
	struct sstream *ss = rpc_call_data(call);
	ss->full = 0;
	rpc_call_pause_recv(call, 0);
}

/* However the stream ended: its followed tasks are unwatched, its
 * unanswered submits are left to the commit (stored, they run), which
 * then only frees them. */
static void stream_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct sstream *ss = rpc_call_data(call);
	if (!ss)
		return;
	struct ssub *u;
	while ((u = ss->subs)) {
		ss->subs = u->next;
		if (u->answered) {
			follow_stop(&u->f);
			free(u);
		} else {
			u->ss = NULL;
		}
	}
	DLIST_UNLINK(S.streams, ss);
	log_debug("submit_stream_ended",
		  "peer=%s submits=%" PRIu64 " rejected=%" PRIu64 " dropped_progress=%" PRIu64
		  " in_flight=%zu status=%d",
		  rpc_call_peer(call), ss->submits, ss->rejected, ss->dropped, ss->inflight, status);
	free(ss);
}

/* ---- RegisterWorker ------------------------------------------------------------------ */

struct wstream {
	struct rpc_call *call;
	struct sched_worker *w;
	struct wstream *next, *prev; /* S.wstreams */
};

/* Forced past the stream's high-water mark: an assignment or cancel
 * dropped here would leave a task RUNNING on a worker that never heard of
 * it. Their number is bounded by the worker's slots and registration. */
static void send_assignment(struct rpc_call *call, Orchestrator__V1__TaskAssignment *a)
{
	pb_send(call, &a->base, RPC_SEND_FORCE);
}

static void op_assign(void *ctx, const struct task *t)
{
	struct wstream *ws = ctx;
	struct taskpb b = {0};
	Orchestrator__V1__TaskAssignment__Assign as = ORCHESTRATOR__V1__TASK_ASSIGNMENT__ASSIGN__INIT;
	as.task_id = (char *)t->id;
	as.spec = taskpb_spec(&b, t);
	as.attempt = t->attempt;
	as.deadline_unix_ms = t->deadline_ms;
	Orchestrator__V1__TaskAssignment a = ORCHESTRATOR__V1__TASK_ASSIGNMENT__INIT;
	a.kind_case = ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_ASSIGN;
	a.assign = &as;
	send_assignment(ws->call, &a);
	taskpb_free(&b);
	log_debug("task_assigned", "task=%s worker=%s attempt=%d", t->id, t->worker_id,
		 t->attempt);
}

static void op_cancel(void *ctx, const char *id, const char *reason)
{
	struct wstream *ws = ctx;
	Orchestrator__V1__TaskAssignment__Cancel c = ORCHESTRATOR__V1__TASK_ASSIGNMENT__CANCEL__INIT;
	c.task_id = (char *)id;
	c.reason = (char *)reason;
	Orchestrator__V1__TaskAssignment a = ORCHESTRATOR__V1__TASK_ASSIGNMENT__INIT;
	a.kind_case = ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_CANCEL;
	a.cancel = &c;
	send_assignment(ws->call, &a);
}

static void op_kick(void *ctx, int status, const char *msg)
{
	struct wstream *ws = ctx;
	ws->w = NULL;
	rpc_call_finish(ws->call, status, msg);
}

static void welcome(struct wstream *ws, const char *id, const struct sched_opts *o)
{
	Orchestrator__V1__TaskAssignment__Welcome wm =
		ORCHESTRATOR__V1__TASK_ASSIGNMENT__WELCOME__INIT;
	wm.worker_id = (char *)id;
	wm.heartbeat_interval_ms = o->heartbeat_ms;
	wm.dead_timeout_ms = o->dead_timeout_ms;
	wm.version = (char *)ORCHD_VERSION;
	Orchestrator__V1__TaskAssignment a = ORCHESTRATOR__V1__TASK_ASSIGNMENT__INIT;
	a.kind_case = ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_WELCOME;
	a.welcome = &wm;
	send_assignment(ws->call, &a);
}

static struct sched_opts sopts;

static int worker_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct wstream *ws = rpc_call_data(call);
	if (!ws) {
		ws = xcalloc(1, sizeof *ws);
		ws->call = call;
		rpc_call_set_data(call, ws);
		DLIST_PUSH(S.wstreams, ws);
	}
	Orchestrator__V1__WorkerResponse *m = (void *)pb_request(
		call, &orchestrator__v1__worker_response__descriptor, msg, len, &S.arena);
	if (!m)
		return 0;
	int64_t now = now_ms();
	if (!ws->w && m->kind_case != ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_REGISTRATION) {
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"the first message must be a registration");
	} else if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_REGISTRATION) {
		Orchestrator__V1__WorkerRegistration *r = m->registration;
		char err[256];
		if (ws->w) {
			rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "registered twice");
		} else {
			/* Welcome goes out before any assignment. */
			welcome(ws, r->worker_id, &sopts);
			ws->w = sched_worker_register(
				S.sched, ws, r->worker_id, r->slots, (const char *const *)r->task_names,
				r->n_task_names, (const char *const *)r->running_task_ids,
				r->n_running_task_ids, r->version, r->address, now, err, sizeof err);
			if (!ws->w)
				rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, err);
		}
	} else if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_HEARTBEAT) {
		Orchestrator__V1__WorkerHeartbeat *hb = m->heartbeat;
		sched_worker_heartbeat(S.sched, ws->w, (const char *const *)hb->running_task_ids,
				       hb->n_running_task_ids, now);
		if (hb->draining)
			sched_worker_drain(S.sched, ws->w);
	} else if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_PROGRESS) {
		Orchestrator__V1__WorkerProgress *p = m->progress;
		sched_worker_progress(S.sched, ws->w, p->task_id, p->attempt, p->percent, p->message,
				      now);
	} else if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_RESULT) {
		Orchestrator__V1__TaskResult *r = m->result;
		sched_worker_result(S.sched, ws->w, r->task_id, r->attempt, (enum task_state)r->status,
				    r->output.data, r->output.len, r->error, now);
	} else {
		sched_worker_seen(S.sched, ws->w, now);
	}
	pb_arena_release(&S.arena, &m->base);
	touch();
	return 0;
}

static void worker_half_close(struct rpc_call *call, void *arg)
{
	/* The worker is leaving: end the stream; on_done re-queues. */
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void worker_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct wstream *ws = rpc_call_data(call);
	if (!ws)
		return;
	/* Stopping, we end the stream, not the worker: it keeps its tasks
	 * RUNNING and reclaims them from our next run. */
	if (ws->w && S.stopping)
		sched_worker_detach(S.sched, ws->w);
	else if (ws->w)
		sched_worker_gone(S.sched, ws->w, "stream ended", now_ms());
	DLIST_UNLINK(S.wstreams, ws);
	free(ws);
	touch();
}

/* SIGTERM: streams that never end on their own are ended now, so the
 * drain waits only for unary calls. Workers keep their tasks RUNNING
 * (worker_done detaches them) and reclaim them from our next run;
 * watchers see UNAVAILABLE and re-subscribe through a gateway. */
static void on_stop(void *arg)
{
	S.stopping = 1;
	for (struct wstream *ws = S.wstreams; ws; ws = ws->next)
		rpc_call_finish(ws->call, GRPC_STATUS_UNAVAILABLE, "scheduler shutting down");
	for (struct watch *w = S.watches; w; w = w->next)
		rpc_call_finish(w->call, GRPC_STATUS_UNAVAILABLE, "scheduler shutting down");
	for (struct sstream *ss = S.streams; ss; ss = ss->next)
		rpc_call_finish(ss->call, GRPC_STATUS_UNAVAILABLE, "scheduler shutting down");
}

/* ---- wiring ---------------------------------------------------------------------------- */

static const struct rpc_call_cbs submit_cbs = {.on_message = submit_msg, .on_done = submit_done};
static const struct rpc_call_cbs get_cbs = {.on_message = get_msg};
static const struct rpc_call_cbs cancel_cbs = {.on_message = cancel_msg};
static const struct rpc_call_cbs list_cbs = {.on_message = list_msg};
static const struct rpc_call_cbs workers_cbs = {.on_message = workers_msg};
static const struct rpc_call_cbs watch_cbs = {
	.on_message = watch_msg, .on_writable = watch_writable, .on_done = watch_done};
static const struct rpc_call_cbs stream_cbs = {.on_start = stream_start,
					       .on_message = stream_msg,
					       .on_half_close = stream_half_close,
					       .on_writable = stream_writable,
					       .on_done = stream_done};
static const struct rpc_call_cbs worker_cbs = {
	.on_message = worker_msg, .on_half_close = worker_half_close, .on_done = worker_done};

static const struct sched_ops ops = {
	.assign = op_assign, .cancel = op_cancel, .kick = op_kick, .update = on_update};

int cmd_scheduler(int argc, char **argv)
{
	struct role_flags rf = {.listen = ":50052"};
	const char *data_dir = "./orchd-data";
	int64_t retention = 7 * 86400000LL, dead = 5000, heartbeat = 1000;
	int fsync_all = 0;
	size_t max_payload = 1 << 20, max_active = 1000000, max_inflight = 10000;
	const char *dispatch = "fill";
	struct opt opts[] = {
		ROLE_OPTS(&rf, "ORCHD_SCHEDULER_"),
		{"data-dir", "ORCHD_DATA_DIR", OPT_STR, &data_dir, "DIR",
		 "where the task store lives (default ./orchd-data)"},
		{"retention", "ORCHD_RETENTION", OPT_DUR, &retention, "DURATION",
		 "how long finished tasks are kept (default 7d)"},
		{"dead-timeout", "ORCHD_DEAD_TIMEOUT", OPT_DUR, &dead, "DURATION",
		 "silence after which a worker is dead (default 5s)"},
		{"heartbeat", "ORCHD_HEARTBEAT", OPT_DUR, &heartbeat, "DURATION",
		 "heartbeat interval asked of workers (default 1s)"},
		{"fsync", "ORCHD_FSYNC", OPT_BOOL, &fsync_all, NULL,
		 "fsync every commit (survives power loss; default: survives crashes)"},
		{"max-payload", "ORCHD_MAX_PAYLOAD", OPT_SIZE, &max_payload, "SIZE",
		 "largest task payload (default 1M)"},
		{"max-active", "ORCHD_MAX_ACTIVE", OPT_SIZE, &max_active, "N",
		 "most pending+running tasks; past it SubmitTask is RESOURCE_EXHAUSTED"},
		{"max-stream-inflight", "ORCHD_MAX_STREAM_INFLIGHT", OPT_SIZE, &max_inflight, "N",
		 "submits in flight on one SubmitStream (unanswered, or followed and not final); "
		 "past it a submit is rejected RESOURCE_EXHAUSTED (default 10000)"},
		{"dispatch", "ORCHD_DISPATCH", OPT_STR, &dispatch, "fill|spread",
		 "ready tasks of a turn: the least loaded worker fills its free slots, or "
		 "each goes to the least loaded in turn (default fill)"},
		{NULL, NULL, 0, NULL, NULL, NULL},
	};
	int n = cmd_parse("scheduler", synopsis, opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n > 0) {
		cmd_error("scheduler", "unexpected argument '%s'", argv[0]);
		return EXIT_USAGE;
	}
	if (max_inflight == 0) {
		cmd_error("scheduler", "--max-stream-inflight must be at least 1");
		return EXIT_USAGE;
	}
	enum sched_dispatch disp = SCHED_DISPATCH_FILL;
	if (!strcmp(dispatch, "spread"))
		disp = SCHED_DISPATCH_SPREAD;
	else if (strcmp(dispatch, "fill")) {
		cmd_error("scheduler", "--dispatch must be fill or spread, not '%s'", dispatch);
		return EXIT_USAGE;
	}
	static const char *const services[] = {"orchestrator.v1.Scheduler", NULL};
	/* Each gateway multiplexes its subscribers' watches on one
	 * connection: allow as many streams (--max-streams, default 4096)
	 * as a few gateways' worth. */
	struct rpc_opts ro = {.max_recv_msg = max_payload + (64u << 10), .max_streams = 4096};
	int rv = role_init(&S.role, "scheduler", &rf, &ro, services);
	if (rv != 0) {
		role_free(&S.role);
		return rv;
	}
	struct store_sqlite_options so = {.sync_full = fsync_all};
	rv = store_open_sqlite(data_dir, &so, &S.store);
	if (rv < 0) {
		cmd_error("scheduler", "cannot open the store in %s: %s", data_dir, err_str(rv));
		role_free(&S.role);
		return EXIT_FAIL;
	}
	sopts = (struct sched_opts){.heartbeat_ms = heartbeat,
				    .dead_timeout_ms = dead,
				    .retention_ms = retention,
				    .max_active = max_active,
				    .dispatch = disp};
	S.max_payload = max_payload;
	S.max_stream_inflight = max_inflight;
	pb_arena_init(&S.arena);
	S.sched = sched_new(S.store, &sopts, &ops, now_ms(), &rv);
	if (!S.sched) {
		cmd_error("scheduler", "cannot load tasks: %s", err_str(rv));
		store_del(S.store);
		role_free(&S.role);
		return EXIT_FAIL;
	}
	S.role.on_stop = on_stop;
	S.commit_ev = event_new(S.role.base, -1, 0, commit_cb, NULL);
	event_priority_set(S.commit_ev, 2);
	S.tick_ev = event_new(S.role.base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = {0, 100000};
	event_add(S.tick_ev, &tv);
	struct rpc_server *srv = S.role.srv;
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/SubmitTask", &submit_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/GetTask", &get_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/CancelTask", &cancel_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/ListTasks", &list_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/ListWorkers", &workers_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/WatchTask", &watch_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/RegisterWorker", &worker_cbs, NULL);
	rpc_server_add_method(srv, "/orchestrator.v1.Scheduler/SubmitStream", &stream_cbs, NULL);
	log_info("scheduler_started", "data_dir=%s active=%zu", log_quote(data_dir),
		 sched_active_count(S.sched));
	rv = role_run(&S.role);
	/* Calls still open end first (their on_done touch the scheduler). */
	health_del(S.role.health);
	S.role.health = NULL;
	rpc_server_del(S.role.srv);
	S.role.srv = NULL;
	answer_acks(sched_commit(S.sched, now_ms()));
	event_free(S.commit_ev);
	event_free(S.tick_ev);
	sched_del(S.sched);
	store_del(S.store);
	role_free(&S.role);
	return rv;
}
