/*
 * gateway: the client-facing front door, orchestrator.v1.Gateway.
 *
 *   orchd gateway [--listen ADDR] [--scheduler ADDR] [--max-payload SIZE]
 *                 [--max-subscribers N] [--max-subscribers-per-task N]
 *                 [--call-timeout DURATION] [TLS, token and limit flags]
 *
 * Stateless: every call is forwarded over one rpc channel to the
 * Scheduler method of the same name (SubscribeProgress to WatchTask), with
 * the request bytes as they came and the scheduler's answer (message, or
 * status and text) relayed unchanged; a SubmitStream is relayed message by
 * message on one scheduler SubmitStream. The gateway itself only rejects
 * what it can judge alone: specs that fail task_spec_check
 * (INVALID_ARGUMENT, the same words the scheduler would use; on a
 * SubmitStream as a `rejected` event with the submit's ref) and followers
 * past --max-subscribers (progress streams and SubmitStreams together), or
 * subscribers past --max-subscribers-per-task on one task
 * (RESOURCE_EXHAUSTED). With --auth-token-file, clients must present one
 * of its tokens, and the gateway presents the first to the scheduler
 * (its own token, never the client's). While the scheduler is
 * unreachable, calls fail at once with UNAVAILABLE (the channel fails fast
 * and reconnects by itself); the gateway stays SERVING.
 *
 * A progress stream runs through a coalesce mailbox (lib/coalesce.h): a
 * subscriber that reads slower than the scheduler writes gets the latest
 * update instead of a backlog, so each subscriber costs at most one waiting
 * message plus the rpc send queue. Reads from the scheduler are never
 * paused for it: pausing would move the backlog into HTTP/2 buffers here
 * and in the scheduler instead of dropping it.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cmd.h"
#include "coalesce.h"
#include "dlist.h"
#include "error.h"
#include "log.h"
#include "map.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "task.h"
#include "xalloc.h"

#define GATEWAY_SERVICE "orchestrator.v1.Gateway"
#define SCHEDULER_PATH "/orchestrator.v1.Scheduler/"

/* The scheduler is one peer in the same cluster: retrying it at least every
 * second bounds how long the gateway keeps failing after it comes back, at
 * the cost of one connection attempt per second while it is down. */
#define RECONNECT_INITIAL_MS 100
#define RECONNECT_MAX_MS 1000
#define CONNECT_TIMEOUT_MS 2000
/* A progress stream may carry nothing for minutes; without pings a
 * scheduler host that vanished (no FIN, no RST) would leave it hanging
 * forever instead of ending it with UNAVAILABLE. */
#define KEEPALIVE_MS 20000
#define KEEPALIVE_TIMEOUT_MS 10000
/* Per progress stream: what the rpc layer queues for a slow subscriber
 * before the coalesce mailbox takes over. Unary answers are unaffected
 * (a single message always fits). */
#define STREAM_HIGH_WATER (64u << 10)

struct gateway {
	struct role role;
	struct rpc_channel *sched;
	const char *sched_addr;
	size_t max_payload;
	int max_subs;
	int max_subs_per_task;
	int64_t call_timeout_ms;
	int nsubs;                  /* followers open: progress streams and SubmitStreams */
	struct map per_task;        /* task id -> struct task_subs */
	struct follower *followers; /* for shutdown */
	int stopping;               /* SIGTERM seen: no new followers */
	int sched_reported;         /* 1 up, -1 down, 0 nothing said yet */
	/* The specs it judges (SubmitTask, SubmitStream) are unpacked here,
	 * no malloc per field: each is released before its on_message
	 * returns, and the loop has one thread. */
	struct pb_arena arena;
};

/* What a progress stream and a SubmitStream share: each counts against
 * --max-subscribers (both follow tasks for as long as they take) and ends
 * at once on SIGTERM. The first member of its stream's struct. */
struct follower {
	struct follower *next, *prev;
	/* SIGTERM: ends the client's stream with UNAVAILABLE and the call to
	 * the scheduler, unless already ended. */
	void (*stop)(struct follower *fl);
};

/* One forwarded unary call: the client's call and ours to the scheduler.
 * Freed when both have ended (each on_done clears its side). */
struct fwd {
	struct gateway *gw;
	const struct method *m;
	struct rpc_call *client;
	struct rpc_call *up;
	int64_t start_ms;
	char name[TASK_NAME_MAX + 1]; /* SubmitTask: the task name, for the log */
};

/* How many progress streams follow one task (for --max-subscribers-per-task). */
struct task_subs {
	char task[80]; /* the map's key */
	int n;
};

/* One progress stream: client SubscribeProgress <- scheduler WatchTask. */
struct sub {
	struct follower fl; /* first */
	struct gateway *gw;
	struct rpc_call *client;
	struct rpc_call *up;
	struct coalesce box;
	uint64_t received;
	int64_t start_ms;
	int up_done;  /* the watch ended: finish once the box is empty */
	int finished; /* we ended the client's stream */
	int up_status;
	char *up_message; /* as the client will see it (relay_message) */
	int final_status; /* status of the last final update seen, 0 = none */
	char task[80];
	struct task_subs *count;
};

struct method {
	const char *name; /* Gateway method; the Scheduler one has the same name */
	/* Judges the request before it is forwarded: returns 0, or a gRPC
	 * status with a message in err. NULL: forwarded as is. */
	int (*check)(struct fwd *f, const uint8_t *msg, size_t len, char *err, size_t errlen);
	void (*log_reply)(struct fwd *f, const uint8_t *msg, size_t len);
};

/* A registered method's argument. */
struct binding {
	struct gateway *gw;
	const struct method *m;
};

/* ---- helpers ----------------------------------------------------------- */

/* Milliseconds on the loop's cached clock, for durations in the log. */
static int64_t now_ms(const struct gateway *gw)
{
	struct timeval tv;
	event_base_gettimeofday_cached(gw->role.base, &tv);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t call_timeout(const struct gateway *gw, struct rpc_call *client, int dflt)
{
	int64_t left = rpc_call_remaining_ms(client);
	if (left >= 0)
		return left > 0 ? left : 1; /* the client's deadline travels on */
	return dflt ? gw->call_timeout_ms : 0;
}

/* The text a client sees with the status of a call to the scheduler
 * (up, in its on_done): the scheduler's own words when it answered (its
 * store may be what failed), and for an UNAVAILABLE decided on our side
 * the peer that could not be reached. Returns msg or buf. */
static const char *relay_message(const struct gateway *gw, const struct rpc_call *up, int status,
                                 const char *msg, char *buf, size_t len)
{
	if (status != GRPC_STATUS_UNAVAILABLE || rpc_call_status_from_peer(up))
		return msg;
	snprintf(buf, len, "scheduler %s unavailable: %s", gw->sched_addr,
	         *msg ? msg : "connection lost");
	return buf;
}

/* Whether a status from the scheduler is worth a warning: answers about
 * the request (NOT_FOUND, FAILED_PRECONDITION, ...) are the client's
 * business, and UNAVAILABLE is logged once per outage (sched_state). */
static int unexpected(int status)
{
	return status == GRPC_STATUS_UNKNOWN || status == GRPC_STATUS_INTERNAL ||
	       status == GRPC_STATUS_DATA_LOSS || status == GRPC_STATUS_UNIMPLEMENTED;
}

/* Lets a new follower (progress stream or SubmitStream) in, or ends its
 * call: UNAVAILABLE while stopping, RESOURCE_EXHAUSTED past
 * --max-subscribers. Returns 0 when admitted, -1 when the call was ended. */
static int admit(struct gateway *gw, struct rpc_call *call)
{
	if (gw->stopping) {
		rpc_call_finish(call, GRPC_STATUS_UNAVAILABLE,
		                "gateway is shutting down: use another gateway");
		return -1;
	}
	if (gw->nsubs < gw->max_subs)
		return 0;
	char err[200];
	snprintf(err, sizeof err,
	         "gateway has %d progress subscribers and submit streams, its limit "
	         "(--max-subscribers); retry later or use another gateway",
	         gw->nsubs);
	log_warn("subscriber_limit", "limit=%d peer=%s path=%s", gw->max_subs, rpc_call_peer(call),
	         rpc_call_path(call));
	rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
	return -1;
}

static void follower_add(struct gateway *gw, struct follower *fl, void (*stop)(struct follower *))
{
	fl->stop = stop;
	DLIST_PUSH(gw->followers, fl);
	gw->nsubs++;
}

static void follower_del(struct gateway *gw, struct follower *fl)
{
	DLIST_UNLINK(gw->followers, fl);
	gw->nsubs--;
}

/* ---- per-method checks and logs ------------------------------------------ */

/* The gateway's verdict on a spec (s borrowed), for SubmitTask and each
 * submit of a SubmitStream: 0, or INVALID_ARGUMENT with the scheduler's
 * words in err. */
static int spec_verdict(const struct gateway *gw, const Orchestrator__V1__TaskSpec *s, char *err,
                        size_t errlen)
{
	int rv = task_spec_check(s->name, s->payload.len, s->max_attempts, s->timeout_ms,
	                         gw->max_payload, err, errlen);
	if (rv == 0 && s->n_labels) {
		/* The labels as task_labels_check sees them (pointers only). */
		struct task_label *l = xcalloc(s->n_labels + 1, sizeof *l);
		for (size_t i = 0; i < s->n_labels; i++)
			l[i] = (struct task_label){s->labels[i]->key, s->labels[i]->value};
		rv = task_labels_check(l, s->n_labels, err, errlen);
		free(l);
	}
	return rv == 0 ? 0 : GRPC_STATUS_INVALID_ARGUMENT;
}

static int check_spec(struct fwd *f, const uint8_t *msg, size_t len, char *err, size_t errlen)
{
	struct pb_arena *arena = &f->gw->arena;
	Orchestrator__V1__TaskSpec *s = (void *)pb_unpack(&orchestrator__v1__task_spec__descriptor,
	                                                  msg, len, arena, err, errlen);
	if (!s)
		return GRPC_STATUS_INVALID_ARGUMENT;
	int st = spec_verdict(f->gw, s, err, errlen);
	snprintf(f->name, sizeof f->name, "%s", s->name ? s->name : "");
	pb_arena_release(arena, &s->base);
	return st;
}

static void log_accepted(struct fwd *f, const uint8_t *msg, size_t len)
{
	Orchestrator__V1__TaskAccepted *a = orchestrator__v1__task_accepted__unpack(NULL, len, msg);
	if (!a)
		return;
	log_debug("task_submitted", "task=%s name=%s duplicate=%d", log_quote(a->task_id),
	         log_quote(f->name), (int)a->duplicate);
	orchestrator__v1__task_accepted__free_unpacked(a, NULL);
}

static void log_cancelled(struct fwd *f, const uint8_t *msg, size_t len)
{
	Orchestrator__V1__CancelTaskResponse *r =
	    orchestrator__v1__cancel_task_response__unpack(NULL, len, msg);
	if (!r)
		return;
	log_info("task_cancel", "task=%s status=%s", log_quote(r->task_id),
	         task_state_name((enum task_state)r->status));
	orchestrator__v1__cancel_task_response__free_unpacked(r, NULL);
}

/* Sorted by name. HealthCheck is health.c's; SubscribeProgress is below. */
static const struct method methods[] = {
    {"CancelTask", NULL, log_cancelled},
    {"GetTask", NULL, NULL},
    {"ListTasks", NULL, NULL},
    {"ListWorkers", NULL, NULL},
    {"SubmitTask", check_spec, log_accepted},
};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* ---- unary forwarding -------------------------------------------------- */

static void fwd_free(struct fwd *f)
{
	free(f);
}

static int up_message(struct rpc_call *up, const uint8_t *msg, size_t len, void *arg)
{
	struct fwd *f = arg;
	if (!f->client)
		return 0;
	if (f->m->log_reply)
		f->m->log_reply(f, msg, len);
	rpc_call_send(f->client, msg, len, 0);
	return 0;
}

static void up_done(struct rpc_call *up, int status, const char *message, void *arg)
{
	struct fwd *f = arg;
	f->up = NULL;
	if (!f->client) {
		fwd_free(f);
		return;
	}
	char buf[512];
	const char *text = relay_message(f->gw, up, status, message, buf, sizeof buf);
	log_at(unexpected(status) ? LOG_WARN : LOG_DEBUG, "forwarded",
	         "method=%s status=%s ms=%lld message=%s", f->m->name, status_name(status),
	         (long long)(now_ms(f->gw) - f->start_ms), log_quote(text));
	rpc_call_finish(f->client, status, text);
}

static const struct rpc_call_cbs up_cbs = {.on_message = up_message, .on_done = up_done};

static int client_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct binding *b = arg;
	struct gateway *gw = b->gw;
	if (rpc_call_data(call))
		return GRPC_STATUS_INVALID_ARGUMENT; /* a unary call takes one message */
	struct fwd *f = xcalloc(1, sizeof *f);
	f->gw = gw;
	f->m = b->m;
	f->start_ms = now_ms(gw);
	rpc_call_set_data(call, f);
	if (b->m->check) {
		char err[256];
		int st = b->m->check(f, msg, len, err, sizeof err);
		if (st) {
			log_info("rejected", "method=%s status=%s peer=%s reason=%s", b->m->name,
			         status_name(st), rpc_call_peer(call), log_quote(err));
			rpc_call_finish(call, st, err);
			return 0;
		}
	}
	f->client = call;
	char path[96];
	snprintf(path, sizeof path, SCHEDULER_PATH "%s", b->m->name);
	struct rpc_call_opts o = {.timeout_ms = call_timeout(gw, call, 1)};
	f->up = rpc_call_start(gw->sched, path, &up_cbs, f, &o);
	rpc_call_send(f->up, msg, len, 0);
	rpc_call_close_send(f->up);
	return 0;
}

static void client_half_close(struct rpc_call *call, void *arg)
{
	if (!rpc_call_data(call))
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
}

static void client_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct fwd *f = rpc_call_data(call);
	if (!f)
		return;
	if (!f->client) { /* rejected before forwarding */
		fwd_free(f);
		return;
	}
	f->client = NULL;
	if (f->up) {
		/* The client cancelled or its deadline passed: so does ours.
		 * up_done frees f. */
		log_debug("forward_cancelled", "method=%s status=%s", f->m->name,
		          status_name(status));
		rpc_call_cancel(f->up);
		return;
	}
	fwd_free(f);
}

static const struct rpc_call_cbs unary_cbs = {
    .on_message = client_message,
    .on_half_close = client_half_close,
    .on_done = client_done,
};

/* ---- progress streams -------------------------------------------------- */

/* SIGTERM: see gateway_stop. */
static void sub_stop(struct follower *fl)
{
	struct sub *s = (struct sub *)fl;
	if (!s->client || s->finished)
		return;
	log_info("subscribe_end", "task=%s status=UNAVAILABLE reason=shutdown", log_quote(s->task));
	s->finished = 1;
	rpc_call_finish(s->client, GRPC_STATUS_UNAVAILABLE,
	                "gateway is shutting down: subscribe again");
	if (s->up)
		rpc_call_cancel(s->up);
}

static int send_progress(const void *msg, size_t len, void *arg)
{
	struct sub *s = arg;
	return rpc_call_send(s->client, msg, len, 0);
}

static void sub_free(struct sub *s)
{
	struct gateway *gw = s->gw;
	follower_del(gw, &s->fl);
	if (s->count && --s->count->n == 0) {
		map_del(&gw->per_task, s->count->task);
		free(s->count);
	}
	coalesce_free(&s->box);
	free(s->up_message);
	free(s);
}

/* Ends the client's stream with the watch's status, once every update
 * that matters has been handed to the rpc layer. */
static void sub_finish_if_flushed(struct sub *s)
{
	if (!s->client || s->finished || !s->up_done || coalesce_pending(&s->box))
		return;
	const char *text = s->up_message;
	/* A stream that ends as it should is routine: debug, like the
	 * scheduler's per-task lines; any other end is worth an operator's eye. */
	log_at(s->up_status == GRPC_STATUS_OK ? LOG_DEBUG : LOG_INFO, "subscribe_end",
	         "task=%s status=%s final=%s received=%llu sent=%llu "
	         "coalesced=%llu ms=%lld message=%s",
	         log_quote(s->task), status_name(s->up_status),
	         s->final_status ? task_state_name((enum task_state)s->final_status) : "none",
	         (unsigned long long)s->received, (unsigned long long)s->box.sent,
	         (unsigned long long)(s->box.replaced + s->box.dropped),
	         (long long)(now_ms(s->gw) - s->start_ms), log_quote(text));
	s->finished = 1; /* sub_done follows */
	rpc_call_finish(s->client, s->up_status, text);
}

/* Whether a TaskProgress is a task's last: a final status or a result. */
static int is_final(struct sub *s, const uint8_t *msg, size_t len)
{
	Orchestrator__V1__TaskProgress *p = orchestrator__v1__task_progress__unpack(NULL, len, msg);
	if (!p)
		return 0;
	int final = task_state_final((enum task_state)p->status) || p->result;
	if (final)
		s->final_status =
		    p->result && p->result->status ? (int)p->result->status : (int)p->status;
	orchestrator__v1__task_progress__free_unpacked(p, NULL);
	return final;
}

static int watch_message(struct rpc_call *up, const uint8_t *msg, size_t len, void *arg)
{
	struct sub *s = arg;
	s->received++;
	if (!s->client || s->finished)
		return 0;
	/* An error means the client is gone; its on_done cancels us. */
	coalesce_offer(&s->box, msg, len, is_final(s, msg, len));
	return 0;
}

static void watch_done(struct rpc_call *up, int status, const char *message, void *arg)
{
	struct sub *s = arg;
	s->up = NULL;
	if (!s->client) {
		sub_free(s);
		return;
	}
	char buf[512];
	s->up_done = 1;
	s->up_status = status;
	s->up_message = xstrdup(relay_message(s->gw, up, status, message, buf, sizeof buf));
	sub_finish_if_flushed(s);
}

static const struct rpc_call_cbs watch_cbs = {.on_message = watch_message, .on_done = watch_done};

static int sub_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct gateway *gw = arg;
	if (rpc_call_data(call))
		return GRPC_STATUS_INVALID_ARGUMENT; /* one request per stream */
	if (admit(gw, call))
		return 0;
	char task[sizeof((struct sub *)0)->task];
	Orchestrator__V1__ProgressRequest *r =
	    orchestrator__v1__progress_request__unpack(NULL, len, msg);
	snprintf(task, sizeof task, "%s", r && r->task_id ? r->task_id : "");
	if (r)
		orchestrator__v1__progress_request__free_unpacked(r, NULL);
	struct task_subs *count = map_get(&gw->per_task, task);
	if (count && count->n >= gw->max_subs_per_task) {
		char err[200];
		snprintf(err, sizeof err,
		         "task %.80s has %d progress subscribers on this gateway, its limit "
		         "(--max-subscribers-per-task); retry later",
		         task, count->n);
		log_warn("subscriber_limit", "task=%s limit_per_task=%d peer=%s", log_quote(task),
		         gw->max_subs_per_task, rpc_call_peer(call));
		rpc_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
		return 0;
	}
	if (!count) {
		count = xcalloc(1, sizeof *count);
		memcpy(count->task, task, sizeof task);
		map_put(&gw->per_task, count->task, count);
	}
	count->n++;
	struct sub *s = xcalloc(1, sizeof *s);
	s->gw = gw;
	s->client = call;
	s->start_ms = now_ms(gw);
	s->count = count;
	coalesce_init(&s->box, send_progress, s);
	memcpy(s->task, task, sizeof task);
	follower_add(gw, &s->fl, sub_stop);
	rpc_call_set_data(call, s);
	log_debug("subscribe", "task=%s peer=%s subscribers=%d", log_quote(s->task),
	         rpc_call_peer(call), gw->nsubs);
	/* Only the client's own deadline: a progress stream may last. */
	struct rpc_call_opts o = {.timeout_ms = call_timeout(gw, call, 0)};
	s->up = rpc_call_start(gw->sched, SCHEDULER_PATH "WatchTask", &watch_cbs, s, &o);
	rpc_call_send(s->up, msg, len, 0);
	rpc_call_close_send(s->up);
	return 0;
}

static void sub_writable(struct rpc_call *call, void *arg)
{
	struct sub *s = rpc_call_data(call);
	if (!s || !s->client || s->finished)
		return;
	coalesce_writable(&s->box);
	sub_finish_if_flushed(s);
}

static void sub_half_close(struct rpc_call *call, void *arg)
{
	if (!rpc_call_data(call))
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
}

static void sub_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct sub *s = rpc_call_data(call);
	if (!s)
		return;
	s->client = NULL;
	if (s->up) {
		/* The subscriber left (cancel, deadline, connection lost):
		 * stop watching. watch_done frees s. */
		if (!s->finished)
			log_info("subscribe_cancelled", "task=%s status=%s received=%llu sent=%llu",
			         log_quote(s->task), status_name(status),
			         (unsigned long long)s->received, (unsigned long long)s->box.sent);
		rpc_call_cancel(s->up);
		return;
	}
	sub_free(s);
}

static const struct rpc_call_cbs sub_cbs = {
    .on_message = sub_message,
    .on_half_close = sub_half_close,
    .on_writable = sub_writable,
    .on_done = sub_done,
};

/* ---- submit streams -------------------------------------------------------- */

/*
 * One client SubmitStream relayed on one scheduler SubmitStream. Requests
 * go up as the bytes that came (after the spec check), events come down
 * the same way; only a request the gateway rejects itself is answered
 * here. Neither direction queues past the rpc layer's high-water mark:
 * while the scheduler's send queue is full the client's stream is paused,
 * and while the client's is full both the scheduler's stream (its events)
 * and the client's (our rejects) are, so HTTP/2 flow control holds each
 * peer back instead of the gateway buffering for it.
 */
struct sstream {
	struct follower fl; /* first */
	struct gateway *gw;
	struct rpc_call *client;
	struct rpc_call *up;
	int client_full; /* the client's send queue is at its high-water mark */
	int up_full;     /* the scheduler's is */
	int client_held; /* we paused the client's stream */
	int up_held;     /* we paused the scheduler's */
	int finished;    /* we ended the client's stream */
	uint64_t forwarded, rejected, events;
	int64_t start_ms;
};

static void sstream_free(struct sstream *s)
{
	follower_del(s->gw, &s->fl);
	free(s);
}

/* Pauses or resumes each side's reading from the two queues' fill. */
static void sstream_flow(struct sstream *s)
{
	int hold_client = s->client_full || s->up_full;
	if (s->client && hold_client != s->client_held) {
		s->client_held = hold_client;
		rpc_call_pause_recv(s->client, hold_client);
	}
	if (s->up && s->client_full != s->up_held) {
		s->up_held = s->client_full;
		rpc_call_pause_recv(s->up, s->client_full);
	}
}

/* Sends msg to the client; a full queue holds both producers back. Never
 * dropped (RPC_SEND_FORCE): an event relayed is one the scheduler counts
 * as delivered, and the pause bounds how far past the mark a queue gets. */
static void sstream_down(struct sstream *s, const void *msg, size_t len)
{
	if (rpc_call_send(s->client, msg, len, RPC_SEND_FORCE) == RPC_SEND_FULL) {
		s->client_full = 1;
		sstream_flow(s);
	}
}

static void sstream_end(struct sstream *s, int status, const char *text, const char *reason)
{
	log_info("submit_stream_end",
	         "status=%s forwarded=%llu rejected=%llu events=%llu ms=%lld reason=%s message=%s",
	         status_name(status), (unsigned long long)s->forwarded,
	         (unsigned long long)s->rejected, (unsigned long long)s->events,
	         (long long)(now_ms(s->gw) - s->start_ms), reason, log_quote(text));
	s->finished = 1; /* sstream_client_done follows */
	rpc_call_finish(s->client, status, text);
}

/* SIGTERM: see gateway_stop. */
static void sstream_stop(struct follower *fl)
{
	struct sstream *s = (struct sstream *)fl;
	if (!s->client || s->finished)
		return;
	sstream_end(s, GRPC_STATUS_UNAVAILABLE,
	            "gateway is shutting down: accepted tasks go on; follow them through "
	            "another gateway",
	            "shutdown");
	if (s->up)
		rpc_call_cancel(s->up);
}

/* Answers one submit here with a `rejected` event. */
static void sstream_reject(struct sstream *s, uint64_t ref, int status, const char *err)
{
	log_info("rejected", "method=SubmitStream ref=%llu status=%s peer=%s reason=%s",
	         (unsigned long long)ref, status_name(status), rpc_call_peer(s->client),
	         log_quote(err));
	Orchestrator__V1__SubmitRejected rej = ORCHESTRATOR__V1__SUBMIT_REJECTED__INIT;
	rej.code = status;
	rej.message = (char *)err;
	Orchestrator__V1__SubmitStreamEvent ev = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__INIT;
	ev.ref = ref;
	ev.event_case = ORCHESTRATOR__V1__SUBMIT_STREAM_EVENT__EVENT_REJECTED;
	ev.rejected = &rej;
	uint8_t small[512];
	size_t n = protobuf_c_message_get_packed_size(&ev.base);
	uint8_t *buf = n <= sizeof small ? small : xmalloc(n);
	protobuf_c_message_pack(&ev.base, buf);
	s->rejected++;
	sstream_down(s, buf, n);
	if (buf != small)
		free(buf);
}

static int sstream_up_message(struct rpc_call *up, const uint8_t *msg, size_t len, void *arg)
{
	struct sstream *s = arg;
	if (!s->client || s->finished)
		return 0;
	s->events++;
	sstream_down(s, msg, len);
	return 0;
}

static void sstream_up_writable(struct rpc_call *up, void *arg)
{
	struct sstream *s = arg;
	s->up_full = 0;
	sstream_flow(s);
}

static void sstream_up_done(struct rpc_call *up, int status, const char *message, void *arg)
{
	struct sstream *s = arg;
	s->up = NULL;
	if (!s->client) {
		sstream_free(s);
		return;
	}
	if (s->finished)
		return;
	char buf[512];
	const char *text = relay_message(s->gw, up, status, message, buf, sizeof buf);
	sstream_end(s, status, text, "scheduler");
}

static const struct rpc_call_cbs sstream_up_cbs = {
    .on_message = sstream_up_message,
    .on_writable = sstream_up_writable,
    .on_done = sstream_up_done,
};

static int sstream_start(struct rpc_call *call, void *arg)
{
	struct gateway *gw = arg;
	if (admit(gw, call))
		return 0;
	struct sstream *s = xcalloc(1, sizeof *s);
	s->gw = gw;
	s->client = call;
	s->start_ms = now_ms(gw);
	follower_add(gw, &s->fl, sstream_stop);
	rpc_call_set_data(call, s);
	log_info("submit_stream", "peer=%s subscribers=%d", rpc_call_peer(call), gw->nsubs);
	/* Only the client's own deadline: a stream may last. An unreachable
	 * scheduler ends it at once (sstream_up_done) as it fails a unary
	 * call. */
	struct rpc_call_opts o = {.timeout_ms = call_timeout(gw, call, 0)};
	s->up = rpc_call_start(gw->sched, SCHEDULER_PATH "SubmitStream", &sstream_up_cbs, s, &o);
	return 0;
}

static int sstream_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct sstream *s = rpc_call_data(call);
	if (!s || !s->up || s->finished)
		return 0; /* ending: what comes now has nowhere to go */
	char err[256];
	struct pb_arena *arena = &s->gw->arena;
	Orchestrator__V1__SubmitStreamRequest *r = (void *)pb_unpack(
	    &orchestrator__v1__submit_stream_request__descriptor, msg, len, arena, err, sizeof err);
	if (!r) {
		/* Bad UTF-8 still decodes far enough to name the submit; only
		 * bytes that are no message at all end the stream. */
		r = orchestrator__v1__submit_stream_request__unpack(NULL, len, msg);
		if (!r)
			return GRPC_STATUS_INVALID_ARGUMENT;
		sstream_reject(s, r->ref, GRPC_STATUS_INVALID_ARGUMENT, err);
		orchestrator__v1__submit_stream_request__free_unpacked(r, NULL);
		return 0;
	}
	/* A missing spec is the scheduler's to answer, in its words. */
	int st = r->spec ? spec_verdict(s->gw, r->spec, err, sizeof err) : 0;
	uint64_t ref = r->ref;
	pb_arena_release(arena, &r->base);
	if (st) {
		sstream_reject(s, ref, st, err);
		return 0;
	}
	s->forwarded++;
	if (rpc_call_send(s->up, msg, len, RPC_SEND_FORCE) == RPC_SEND_FULL) {
		s->up_full = 1;
		sstream_flow(s);
	}
	return 0;
}

static void sstream_half_close(struct rpc_call *call, void *arg)
{
	struct sstream *s = rpc_call_data(call);
	if (s && s->up)
		rpc_call_close_send(s->up);
}

static void sstream_writable(struct rpc_call *call, void *arg)
{
	struct sstream *s = rpc_call_data(call);
	if (!s || !s->client)
		return;
	s->client_full = 0;
	sstream_flow(s);
}

static void sstream_client_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct sstream *s = rpc_call_data(call);
	if (!s)
		return;
	s->client = NULL;
	if (s->up) {
		/* The client left (cancel, deadline, connection lost): so do
		 * we; its accepted tasks go on. sstream_up_done frees s. */
		if (!s->finished)
			log_info("submit_stream_cancelled",
			         "status=%s forwarded=%llu rejected=%llu events=%llu",
			         status_name(status), (unsigned long long)s->forwarded,
			         (unsigned long long)s->rejected, (unsigned long long)s->events);
		rpc_call_cancel(s->up);
		return;
	}
	sstream_free(s);
}

static const struct rpc_call_cbs sstream_cbs = {
    .on_start = sstream_start,
    .on_message = sstream_message,
    .on_half_close = sstream_half_close,
    .on_writable = sstream_writable,
    .on_done = sstream_client_done,
};

/* ---- the role ------------------------------------------------------------ */

static void sched_state(struct rpc_channel *ch, enum rpc_channel_state st, void *arg)
{
	struct gateway *gw = arg;
	if (st == RPC_CH_READY && gw->sched_reported != 1) {
		gw->sched_reported = 1;
		log_info("scheduler_connected", "addr=%s", gw->sched_addr);
	} else if (st == RPC_CH_BACKOFF && gw->sched_reported != -1) {
		gw->sched_reported = -1;
		log_warn("scheduler_unreachable", "addr=%s retry_max_ms=%d", gw->sched_addr,
		         RECONNECT_MAX_MS);
	}
}

/* SIGTERM: progress streams and SubmitStreams would hold the drain for
 * the whole grace period, so they end now with UNAVAILABLE (clients
 * resubscribe elsewhere and get the current state first; accepted tasks go
 * on); unary calls in flight finish. */
static void gateway_stop(void *arg)
{
	struct gateway *gw = arg;
	gw->stopping = 1;
	for (struct follower *fl = gw->followers; fl; fl = fl->next)
		fl->stop(fl);
}

int cmd_gateway(int argc, char **argv)
{
	struct gateway gw = {
	    .sched_addr = "127.0.0.1:50052",
	    .max_payload = 1u << 20,
	    .max_subs = 1000,
	    .max_subs_per_task = 100,
	    .call_timeout_ms = 10000,
	};
	struct role_flags rf = {.listen = ":50051"};
	const struct opt opts[] = {
	    ROLE_OPTS(&rf, "ORCHD_GATEWAY_"),
	    {"scheduler", "ORCHD_SCHEDULER", OPT_STR, &gw.sched_addr, "ADDR",
	     "scheduler to forward to (default 127.0.0.1:50052)"},
	    {"max-payload", "ORCHD_MAX_PAYLOAD", OPT_SIZE, &gw.max_payload, "SIZE",
	     "largest task payload accepted (default 1M)"},
	    {"max-subscribers", "ORCHD_GATEWAY_MAX_SUBSCRIBERS", OPT_INT, &gw.max_subs, "N",
	     "concurrent progress streams, SubscribeProgress and SubmitStream together; past it "
	     "RESOURCE_EXHAUSTED (default 1000)"},
	    {"max-subscribers-per-task", "ORCHD_GATEWAY_MAX_SUBSCRIBERS_PER_TASK", OPT_INT,
	     &gw.max_subs_per_task, "N",
	     "concurrent progress streams of one task; past it RESOURCE_EXHAUSTED (default 100)"},
	    {"call-timeout", "ORCHD_GATEWAY_CALL_TIMEOUT", OPT_DUR, &gw.call_timeout_ms, "DURATION",
	     "deadline of forwarded calls whose client set none (default 10s)"},
	    {NULL, NULL, 0, NULL, NULL, NULL},
	};
	int n = cmd_parse("gateway", "[FLAGS]", opts, argc, argv);
	if (n < 0)
		return -1 - n;
	if (n > 0) {
		cmd_error("gateway", "unexpected argument '%s' (see --help)", argv[0]);
		return EXIT_USAGE;
	}
	if (cmd_check_addr("gateway", "--scheduler", gw.sched_addr, 1))
		return EXIT_USAGE;
	if (gw.max_subs < 1 || gw.max_subs_per_task < 1) {
		cmd_error("gateway", "--max-subscribers and --max-subscribers-per-task must be at "
		                     "least 1");
		return EXIT_USAGE;
	}
	if (gw.call_timeout_ms <= 0) {
		cmd_error("gateway", "--call-timeout must be positive");
		return EXIT_USAGE;
	}

	/* Room for a full payload plus the rest of the spec, and for answers
	 * that carry a payload and an output (GetTask). */
	size_t limit = gw.max_payload + (2u << 20);
	if (limit < (4u << 20))
		limit = 4u << 20;
	struct rpc_opts so = {
	    .max_recv_msg = limit,
	    .max_send_msg = limit,
	    .send_high_water = STREAM_HIGH_WATER,
	    .max_streams = (uint32_t)gw.max_subs + 100,
	};
	static const char *const services[] = {GATEWAY_SERVICE, NULL};
	int rc = role_init(&gw.role, "gateway", &rf, &so, services);
	if (rc) {
		role_free(&gw.role);
		return rc;
	}
	struct rpc_opts co = {
	    .max_recv_msg = limit,
	    .max_send_msg = limit,
	    .connect_timeout_ms = CONNECT_TIMEOUT_MS,
	    .backoff_initial_ms = RECONNECT_INITIAL_MS,
	    .backoff_max_ms = RECONNECT_MAX_MS,
	    .keepalive_ms = KEEPALIVE_MS,
	    .keepalive_timeout_ms = KEEPALIVE_TIMEOUT_MS,
	};
	role_dial_opts(&gw.role, &co); /* TLS and our token towards the scheduler */
	int err = 0;
	gw.sched = rpc_channel_new(gw.role.base, gw.sched_addr, &co, &err);
	if (!gw.sched) {
		cmd_error("gateway", "cannot use scheduler address %s: %s", gw.sched_addr,
		          err_str(err));
		role_free(&gw.role);
		return EXIT_USAGE;
	}
	rpc_channel_set_state_cb(gw.sched, sched_state, &gw);
	pb_arena_init(&gw.arena);

	struct binding bind[NMETHODS];
	char path[128];
	for (size_t i = 0; i < NMETHODS; i++) {
		bind[i] = (struct binding){&gw, &methods[i]};
		snprintf(path, sizeof path, "/" GATEWAY_SERVICE "/%s", methods[i].name);
		rpc_server_add_method(gw.role.srv, path, &unary_cbs, &bind[i]);
	}
	rpc_server_add_method(gw.role.srv, "/" GATEWAY_SERVICE "/SubscribeProgress", &sub_cbs, &gw);
	rpc_server_add_method(gw.role.srv, "/" GATEWAY_SERVICE "/SubmitStream", &sstream_cbs, &gw);
	gw.role.on_stop = gateway_stop;
	gw.role.stop_arg = &gw;
	log_info("gateway_config",
	         "scheduler=%s max_payload=%zu max_subscribers=%d max_subscribers_per_task=%d "
	         "call_timeout_ms=%lld scheduler_tls=%d scheduler_token=%d",
	         gw.sched_addr, gw.max_payload, gw.max_subs, gw.max_subs_per_task,
	         (long long)gw.call_timeout_ms, co.tls != NULL, co.default_md != NULL);
	rpc_channel_connect(gw.sched); /* do not make the first client wait */

	rc = role_run(&gw.role);
	/* Upstream calls end first (CANCELLED), then whatever the drain left
	 * of client calls; each side's on_done lets go of its half. */
	rpc_channel_del(gw.sched);
	role_free(&gw.role);
	map_free(&gw.per_task);
	return rc;
}
