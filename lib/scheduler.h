/*
 * scheduler (prefix sched_): the scheduler's brain, without I/O of its own besides the store.
 *
 * Owns the active tasks (pending and running; finished ones live only in
 * the store), the per-name queues, the connected workers with their slots,
 * the watchers of each task, leases, heartbeat deadlines, retries and the
 * retention purge. It decides; the caller (cmd/scheduler.c) carries the
 * decisions out through struct sched_ops and feeds events in.
 *
 * Durability: every change is written to the store's open transaction;
 * sched_commit() makes the turn's changes durable, only then assigns work
 * and tells watchers, so nobody hears of a state the store does not have.
 * The caller acknowledges submits after sched_commit() returns 0.
 *
 * Times are Unix milliseconds passed in by the caller.
 */
#ifndef ORCHD_SCHEDULER_H
#define ORCHD_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "task.h"

struct sched;
struct sched_worker;

/* See dispatch() in scheduler.c. */
enum sched_dispatch {
	SCHED_DISPATCH_FILL,   /* the least loaded worker fills its free slots */
	SCHED_DISPATCH_SPREAD, /* one task each to the least loaded, in turn */
};

struct sched_opts {
	int64_t heartbeat_ms;	 /* interval workers are asked for (default 1 s) */
	int64_t dead_timeout_ms; /* silence that kills a worker (default 5 s) */
	int64_t lease_grace_ms;	 /* past a task's deadline before the lease ends (5 s) */
	int64_t retention_ms;	 /* finished tasks kept this long (default 7 d) */
	size_t max_active;	 /* pending + running cap (default 1,000,000) */
	int max_slots;		 /* largest slots a worker may claim (10,000) */
	enum sched_dispatch dispatch; /* how a turn's ready tasks are shared out */
	struct task_policy policy;
};

struct sched_ops {
	/* Send an assignment for t (borrowed) on the worker's stream. */
	void (*assign)(void *wctx, const struct task *t);
	/* Tell the worker to stop a task. */
	void (*cancel)(void *wctx, const char *task_id, const char *reason);
	/* End the worker's stream with status/msg. The worker is already
	 * forgotten: the caller must not pass wctx's worker to sched again. */
	void (*kick)(void *wctx, int status, const char *msg);
	/* A watched task changed (t borrowed; final when its status is). */
	void (*update)(void *watch_ctx, const struct task *t);
};

struct sched_worker_info {
	const char *id;
	const char *const *names;
	size_t nnames;
	int slots;
	int running;
	const char *const *running_ids; /* nrunning_ids entries, attached tasks only */
	size_t nrunning_ids;
	const char *version;
	const char *address;
	int64_t connected_ms;
	int64_t last_seen_ms;
};

/* Opens the scheduler on an opened store (borrowed; outlives sched) and
 * loads every active task: pending ones are queued, running ones wait for
 * their worker to reclaim them for one dead-timeout, then re-run. opts and
 * ops are copied; NULL opts for defaults. Returns NULL with *err set. */
struct sched *sched_new(struct store *st, const struct sched_opts *opts, const struct sched_ops *ops,
			int64_t now, int *err);
void sched_del(struct sched *s);

/*
 * Submits t (taken; built with task_new and its spec fields, id and
 * created_ms set). Returns 0 with *out the task that stands for the
 * submit (borrowed until the next sched call) and *dup set when an
 * idempotency key matched an existing task (t was then freed). Errors:
 * -EINVAL (a bad spec; message in err), -ENOSPC (too many active tasks),
 * or a store error. The answer may go out only after sched_commit.
 */
int sched_submit(struct sched *s, struct task *t, size_t max_payload, int64_t now,
		 const struct task **out, int *dup, char *err, size_t errlen);

/* Makes this turn's writes durable, then assigns what can be assigned and
 * tells watchers. Returns 0 or the store's error (nothing is assigned or
 * announced then; the writes stay in the next attempt's transaction). */
int sched_commit(struct sched *s, int64_t now);

/* Returns 0 with a copy (task_del it) of the task, -ENOENT, or a store
 * error. */
int sched_get(struct sched *s, const char *id, struct task **out);

/* Cancels: a pending task at once, a running one by telling its worker.
 * Returns the status after the request (CANCELLED or RUNNING), -ENOENT,
 * E_STATE when already final, or a store error. */
int sched_cancel(struct sched *s, const char *id, const char *reason, int64_t now);

/* Lists from the store (after committing what is pending). */
int sched_list(struct sched *s, const struct store_filter *f, store_task_cb cb, void *arg,
	       char next_token[ID_LEN + 1]);

/*
 * A worker stream registered. Returns the worker, or NULL with a message
 * in err (bad registration: the caller ends the stream INVALID_ARGUMENT).
 * Strings are copied. A live worker with the same id is kicked (ABORTED)
 * and replaced; tasks in running[] stay with the new stream.
 */
struct sched_worker *sched_worker_register(struct sched *s, void *wctx, const char *id, int slots,
					   const char *const *names, size_t nnames,
					   const char *const *running, size_t nrunning,
					   const char *version, const char *address, int64_t now,
					   char *err, size_t errlen);
void sched_worker_seen(struct sched *s, struct sched_worker *w, int64_t now);
/* A heartbeat listing the tasks the worker runs (running: nrunning
 * entries, borrowed). Besides sched_worker_seen, frees each slot whose
 * lease is over (the worker was told to cancel) and whose task the list
 * leaves out: no answer will come for it. Returns the slots freed. */
int sched_worker_heartbeat(struct sched *s, struct sched_worker *w, const char *const *running,
			   size_t nrunning, int64_t now);
/* The worker said it is draining: nothing more is assigned to it. */
void sched_worker_drain(struct sched *s, struct sched_worker *w);
void sched_worker_progress(struct sched *s, struct sched_worker *w, const char *task_id,
			   int32_t attempt, int32_t percent, const char *msg, int64_t now);
void sched_worker_result(struct sched *s, struct sched_worker *w, const char *task_id,
			 int32_t attempt, enum task_state status, const void *output, size_t len,
			 const char *error, int64_t now);
/* The worker's stream ended (why: borrowed, becomes the tasks' error
 * detail): its tasks are re-queued (or fail). w is freed. */
void sched_worker_gone(struct sched *s, struct sched_worker *w, const char *why, int64_t now);
/* The worker's stream ended because the scheduler is stopping: w is freed,
 * but its tasks stay RUNNING, in memory and in the store, as after a crash:
 * the worker keeps running them and reclaims them from the next run, rather
 * than each being re-queued with an attempt used up. */
void sched_worker_detach(struct sched *s, struct sched_worker *w);
/* Calls fn for each connected worker, ordered by nothing in particular. */
void sched_workers_foreach(struct sched *s, void (*fn)(const struct sched_worker_info *, void *),
			   void *arg);

/*
 * Starts watching a task. Returns 0 with *snap a copy of its state
 * (task_del it) when watching; 1 with *snap the final state when the task
 * is already finished (nothing registered); -ENOENT; or a store error.
 * final_only: the watcher wants the final state alone, so no copy is made
 * while watching (*snap NULL; the final state comes as an update).
 */
int sched_watch(struct sched *s, const char *id, void *watch_ctx, int final_only,
		struct task **snap);
/* Stops watch_ctx's watch of id (a no-op when there is none). Both may be
 * called from an update callback, for any watcher: one unwatched there is
 * not called again, not even later in the same round; one watching anew
 * there hears from the next update on. */
void sched_unwatch(struct sched *s, const char *id, void *watch_ctx);

/* Heartbeat deadlines, leases, orphans, retry backoff, retention. Call
 * every ~100 ms; then sched_commit. */
void sched_tick(struct sched *s, int64_t now);

size_t sched_active_count(const struct sched *s);
size_t sched_pending_count(const struct sched *s);
size_t sched_worker_count(const struct sched *s);

#endif
