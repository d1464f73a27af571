/* scheduler: task scheduling decisions (see scheduler.h). */
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "map.h"
#include "queue.h"
#include "status.h"
#include "xalloc.h"

/* One slot of a worker: the task it runs, or, once the scheduler took the
 * task away (lease over), just its id and attempt until the worker answers
 * for that attempt or stops listing the task (sched_worker_heartbeat). A
 * worker holds at most one slot per task id (slot_take), so slot_of is
 * never ambiguous; the attempt tells a result for the slot's run from a
 * stale one. */
struct slot {
	char id[ID_LEN + 1];
	int32_t attempt; /* the run the worker was given, t's attempt while t is set */
	struct task *t;
};

struct sched_worker {
	char *id;
	char **names;
	size_t nnames;
	int slots;
	struct slot *run; /* nrun entries, at most slots */
	int nrun;
	int nover; /* of them, lease over (t NULL) */
	char *version;
	char *address;
	int64_t connected_ms;
	int64_t last_seen_ms;
	int draining;
	void *ctx;
	struct sched_worker *next;
};

struct watchers {
	char id[ID_LEN + 1];
	void **ctx; /* n entries (cap room): inl, or the heap beyond it */
	size_t n, cap;
	/* notify's depth. While it walks, unwatch leaves a NULL entry
	 * instead of moving others, and the walk's end closes the holes. */
	int walking;
	void *inl[2]; /* most tasks have one watcher: no allocation for it */
};

/* A submit that waits for its commit. */
struct fresh {
	struct task *t;
};

/* An assignment decided by dispatch, sent once the commit holds it. */
struct sent {
	struct sched_worker *w;
	struct task *t;
};

struct sched {
	struct store *st;
	struct sched_opts o;
	struct sched_ops ops;
	struct queue *q;
	struct map tasks;   /* id → active task */
	struct map idem;    /* idempotency key → active task */
	struct map watch;   /* id → struct watchers */
	struct map changed; /* id → task changed since the last commit */
	struct task **fresh; /* put since the last good flush */
	size_t nfresh, capfresh;
	struct sent *out; /* assignments decided this turn, sent after the commit */
	size_t nout, capout;
	struct task **orphans; /* RUNNING at startup, waiting for their worker */
	size_t norphans;
	int64_t orphan_deadline;
	struct sched_worker *workers;
	size_t nworkers;
	int64_t next_purge;
	struct task *scratch; /* a stored task handed out by sched_submit */
};

static void changed(struct sched *s, struct task *t)
{
	map_put(&s->changed, t->id, t);
}

static void watchers_free(struct watchers *w)
{
	if (w->ctx != w->inl)
		free(w->ctx);
	free(w);
}

/* Closes the holes unwatch left, and forgets w once nobody watches; not
 * while a walk is on. */
static void watchers_tidy(struct sched *s, struct watchers *w)
{
	if (w->walking)
		return;
	size_t k = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->ctx[i])
			w->ctx[k++] = w->ctx[i];
	w->n = k;
	if (k == 0) {
		map_del(&s->watch, w->id);
		watchers_free(w);
	}
}

static void notify(struct sched *s, struct task *t)
{
	struct watchers *w = map_get(&s->watch, t->id);
	if (!w)
		return;
	/* A watcher's update may unwatch itself or others (a call ends on a
	 * final update) or watch anew. Indexes hold while walking (holes,
	 * appends past n, which hear from the next update), but w->ctx may
	 * move: it is read afresh each time. */
	size_t n = w->n;
	w->walking++;
	for (size_t i = 0; i < n; i++)
		if (w->ctx[i])
			s->ops.update(w->ctx[i], t);
	w->walking--;
	watchers_tidy(s, w);
}

/* ---- life ------------------------------------------------------------------ */

static int load_cb(struct task *t, void *arg)
{
	struct sched *s = arg;
	map_put(&s->tasks, t->id, t);
	if (t->idempotency_key)
		map_put(&s->idem, t->idempotency_key, t);
	if (t->status == TASK_PENDING) {
		queue_push(s->q, t, 0);
	} else {
		s->orphans = xrealloc(s->orphans, (s->norphans + 1) * sizeof *s->orphans);
		s->orphans[s->norphans++] = t;
	}
	return 0;
}

struct sched *sched_new(struct store *st, const struct sched_opts *opts, const struct sched_ops *ops,
			int64_t now, int *err)
{
	struct sched *s = xcalloc(1, sizeof *s);
	s->st = st;
	if (opts)
		s->o = *opts;
	if (!s->o.heartbeat_ms)
		s->o.heartbeat_ms = 1000;
	if (!s->o.dead_timeout_ms)
		s->o.dead_timeout_ms = 5000;
	if (!s->o.lease_grace_ms)
		s->o.lease_grace_ms = 5000;
	if (!s->o.retention_ms)
		s->o.retention_ms = 7 * 86400000LL;
	if (!s->o.max_active)
		s->o.max_active = 1000000;
	if (!s->o.max_slots)
		s->o.max_slots = 10000;
	if (!s->o.policy.default_max_attempts)
		s->o.policy = task_policy_default;
	s->ops = *ops;
	s->q = queue_new();
	map_init(&s->tasks);
	map_init(&s->idem);
	map_init(&s->watch);
	map_init(&s->changed);
	int rv = store_load_active(st, load_cb, s);
	if (rv < 0) {
		*err = rv;
		sched_del(s);
		return NULL;
	}
	s->orphan_deadline = now + s->o.dead_timeout_ms;
	s->next_purge = now;
	log_info("sched_loaded", "pending=%zu running=%zu", queue_size(s->q), s->norphans);
	return s;
}

static void free_task(const char *key, void *val, void *arg)
{
	struct sched *s = arg;
	struct task *t = val;
	if (t->qwhere)
		queue_remove(s->q, t);
	task_del(t);
}

static void free_watchers(const char *key, void *val, void *arg)
{
	watchers_free(val);
}

static void worker_free(struct sched_worker *w)
{
	for (size_t i = 0; i < w->nnames; i++)
		free(w->names[i]);
	free(w->names);
	free(w->run);
	free(w->id);
	free(w->version);
	free(w->address);
	free(w);
}

void sched_del(struct sched *s)
{
	if (!s)
		return;
	while (s->workers) {
		struct sched_worker *w = s->workers;
		s->workers = w->next;
		worker_free(w);
	}
	map_foreach(&s->tasks, free_task, s);
	map_foreach(&s->watch, free_watchers, NULL);
	map_free(&s->tasks);
	map_free(&s->idem);
	map_free(&s->watch);
	map_free(&s->changed);
	queue_del(s->q);
	free(s->fresh);
	free(s->out);
	free(s->orphans);
	task_del(s->scratch);
	free(s);
}

/* A task reached a final state: it leaves memory after the commit. */
static void transition(struct sched *s, struct task *t, enum task_event ev, const struct task_ev *e,
		       int64_t now)
{
	struct task_ev ev2 = e ? *e : (struct task_ev){0};
	ev2.policy = &s->o.policy;
	int st = task_transition(t, ev, &ev2, now);
	if (st < 0)
		return;
	/* A task's normal path (assigned, completed) is debug: at info it
	 * would be lines per task at tens of thousands of tasks a second.
	 * What departs from it (a failure, a retry, a lease or worker lost, a
	 * cancel) stays at info, with its reason. */
	enum log_level lv = ev == TASK_EV_ASSIGN || ev == TASK_EV_COMPLETE ? LOG_DEBUG : LOG_INFO;
	log_at(lv, "task_state", "task=%s event=%s status=%s attempt=%d%s%s", t->id,
		 task_event_name(ev), task_state_name(t->status), t->attempt,
		 ev2.error ? " reason=" : "", ev2.error ? log_quote(ev2.error) : "");
	if (t->status == TASK_PENDING && !t->qwhere)
		queue_push(s->q, t, now);
	store_update(s->st, t);
	changed(s, t);
}

/* ---- submit and commit ------------------------------------------------------- */

int sched_submit(struct sched *s, struct task *t, size_t max_payload, int64_t now,
		 const struct task **out, int *dup, char *err, size_t errlen)
{
	*dup = 0;
	if (task_spec_check(t->name, t->payload_len, t->max_attempts, t->timeout_ms, max_payload,
			    err, errlen) != 0 ||
	    task_labels_check(t->labels, t->nlabels, err, errlen) != 0) {
		task_del(t);
		return -EINVAL;
	}
	if (t->idempotency_key) {
		struct task *old = map_get(&s->idem, t->idempotency_key);
		if (!old && store_find_idempotent(s->st, t->idempotency_key, &old) == 0) {
			/* Finished and out of memory: the copy lives until the
			 * next submit. */
			task_del(s->scratch);
			s->scratch = old;
		}
		if (old) {
			*dup = 1;
			*out = old;
			task_del(t);
			return 0;
		}
	}
	if (map_get(&s->tasks, t->id) || s->tasks.n >= s->o.max_active) {
		snprintf(err, errlen, "too many active tasks (limit %zu)", s->o.max_active);
		task_del(t);
		return -ENOSPC;
	}
	t->max_attempts = task_max_attempts(t, &s->o.policy);
	int rv = store_put(s->st, t);
	if (rv < 0) {
		snprintf(err, errlen, "store: %s", err_str(rv));
		task_del(t);
		return rv;
	}
	map_put(&s->tasks, t->id, t);
	if (t->idempotency_key)
		map_put(&s->idem, t->idempotency_key, t);
	if (s->nfresh == s->capfresh) {
		s->capfresh = s->capfresh ? s->capfresh * 2 : 64;
		s->fresh = xrealloc(s->fresh, s->capfresh * sizeof *s->fresh);
	}
	s->fresh[s->nfresh++] = t;
	*out = t;
	return 0;
}

static void forget(struct sched *s, struct task *t)
{
	map_del(&s->tasks, t->id);
	if (t->idempotency_key && map_get(&s->idem, t->idempotency_key) == t)
		map_del(&s->idem, t->idempotency_key);
	if (t->qwhere)
		queue_remove(s->q, t);
	task_del(t);
}

static struct slot *slot_of(struct sched_worker *w, const char *id);

/*
 * Gives t a slot of w. When w still holds t's id from an attempt whose
 * lease is over, the new attempt takes that slot over instead of a second
 * one: a worker given a new attempt of a task it still has stops the old
 * one and never answers for it (docs/protocol.md section 5), so that slot
 * would wait for its result forever, and two slots of one id would let a
 * result free the other attempt's. A worker that answers for the old
 * attempt anyway is told apart by the attempt and ignored.
 */
static void slot_take(struct sched_worker *w, struct task *t)
{
	/* Only a worker with a lease over pays for the look. */
	struct slot *sl = w->nover ? slot_of(w, t->id) : NULL;
	if (sl)
		w->nover--;
	else
		sl = &w->run[w->nrun++];
	memcpy(sl->id, t->id, sizeof sl->id);
	sl->attempt = t->attempt;
	sl->t = t;
}

/* Least loaded capable worker with a free slot: fewest running per slot. */
static struct sched_worker *pick(struct sched *s, int64_t now, struct task **tp)
{
	struct sched_worker *best = NULL;
	struct task *bt = NULL;
	for (struct sched_worker *w = s->workers; w; w = w->next) {
		if (w->nrun >= w->slots || w->draining)
			continue;
		if (best && (int64_t)w->nrun * best->slots >= (int64_t)best->nrun * w->slots)
			continue;
		struct task *t = queue_peek(s->q, (const char *const *)w->names, w->nnames, now);
		if (!t)
			continue;
		best = w;
		bt = t;
	}
	*tp = bt;
	return best;
}

/* Gives t, ready, to w, which has a free slot. */
static void assign(struct sched *s, struct sched_worker *w, struct task *t, int64_t now)
{
	queue_remove(s->q, t);
	struct task_ev e = {.worker_id = w->id};
	transition(s, t, TASK_EV_ASSIGN, &e, now);
	if (t->status != TASK_RUNNING)
		return;
	slot_take(w, t);
	if (s->nout == s->capout) {
		s->capout = s->capout ? s->capout * 2 : 64;
		s->out = xrealloc(s->out, s->capout * sizeof *s->out);
	}
	s->out[s->nout++] = (struct sent){w, t};
}

/*
 * The least loaded worker takes as many of the turn's ready tasks as it
 * has free slots (SCHED_DISPATCH_FILL) before the next is picked, or one
 * (SCHED_DISPATCH_SPREAD). Filling sends a burst to one worker as one
 * message: what a message costs (a write, a read and a wake-up on each
 * side) is then shared by its tasks, where spreading a turn's tasks over
 * many workers pays it once per task. Across turns either way balances,
 * since each turn starts from the least loaded.
 */
static void dispatch(struct sched *s, int64_t now)
{
	queue_release(s->q, now);
	struct task *t;
	struct sched_worker *w;
	while ((w = pick(s, now, &t))) {
		assign(s, w, t, now);
		if (s->o.dispatch != SCHED_DISPATCH_FILL)
			continue;
		while (w->nrun < w->slots && !w->draining &&
		       (t = queue_peek(s->q, (const char *const *)w->names, w->nnames, now)))
			assign(s, w, t, now);
	}
}

/* Sends the assignments dispatch decided, in order. */
static void send_assignments(struct sched *s)
{
	for (size_t i = 0; i < s->nout; i++)
		s->ops.assign(s->out[i].w->ctx, s->out[i].t);
	s->nout = 0;
}

static void slot_free(struct sched_worker *w, struct slot *sl);

/* The batch that held the fresh tasks is lost: they were never
 * acknowledged, so they are forgotten, together with the slots and the
 * unsent assignments dispatch gave them. Older tasks' assignments still go
 * out: their updates stay in the store's redo list for the next batch. */
static void drop_fresh(struct sched *s)
{
	struct map gone;
	map_init(&gone);
	for (size_t i = 0; i < s->nfresh; i++)
		map_put(&gone, s->fresh[i]->id, s->fresh[i]);
	size_t keep = 0;
	for (size_t i = 0; i < s->nout; i++) {
		struct sent *o = &s->out[i];
		if (!map_get(&gone, o->t->id)) {
			s->out[keep++] = *o;
			continue;
		}
		struct slot *sl = slot_of(o->w, o->t->id);
		if (sl)
			slot_free(o->w, sl);
	}
	s->nout = keep;
	map_free(&gone);
	for (size_t i = 0; i < s->nfresh; i++) {
		map_del(&s->changed, s->fresh[i]->id);
		forget(s, s->fresh[i]);
	}
	s->nfresh = 0;
}

static void announce(struct sched *s)
{
	for (size_t i = 0; i < s->changed.cap; i++) {
		struct map_ent *e = &s->changed.e[i];
		if (!e->key)
			continue;
		struct task *t = e->val;
		notify(s, t);
		if (task_state_final(t->status))
			forget(s, t);
	}
	map_free(&s->changed);
}

/*
 * One commit per turn: the turn's new tasks are queued and dispatched
 * before it, so their inserts and their assignments (RUNNING) share one
 * transaction. Nothing leaves the scheduler until the commit holds it:
 * assignments are sent, and watchers told, after it (and the caller
 * answers submits after that).
 */
int sched_commit(struct sched *s, int64_t now)
{
	for (size_t i = 0; i < s->nfresh; i++)
		queue_push(s->q, s->fresh[i], now);
	dispatch(s, now);
	int rv = store_flush(s->st);
	if (rv < 0) {
		/* The caller fails the fresh tasks' submits. */
		drop_fresh(s);
		send_assignments(s);
		return rv;
	}
	s->nfresh = 0;
	send_assignments(s);
	announce(s);
	return 0;
}

/* ---- queries ----------------------------------------------------------------- */

int sched_get(struct sched *s, const char *id, struct task **out)
{
	struct task *t = map_get(&s->tasks, id);
	if (t) {
		*out = task_clone(t);
		return 0;
	}
	return store_get(s->st, id, out);
}

/* The store has no progress (it is not durable): a listed task that is
 * still active is answered from memory instead, as sched_get does. */
struct live_list {
	struct sched *s;
	store_task_cb cb;
	void *arg;
};

static int live_cb(struct task *t, void *arg)
{
	struct live_list *l = arg;
	struct task *live = map_get(&l->s->tasks, t->id);
	if (live) {
		task_del(t);
		t = task_clone(live);
	}
	return l->cb(t, l->arg);
}

int sched_list(struct sched *s, const struct store_filter *f, store_task_cb cb, void *arg,
	       char next_token[ID_LEN + 1])
{
	/* No flush here: only sched_commit may commit, or a failed flush
	 * would lose a turn's submits behind its back. Tasks in memory are
	 * answered from memory, so the listing is current all the same. */
	struct live_list l = {s, cb, arg};
	return store_list(s->st, f, live_cb, &l, next_token);
}

static struct sched_worker *worker_by_id(struct sched *s, const char *id)
{
	for (struct sched_worker *w = s->workers; w; w = w->next)
		if (strcmp(w->id, id) == 0)
			return w;
	return NULL;
}

int sched_cancel(struct sched *s, const char *id, const char *reason, int64_t now)
{
	struct task *t = map_get(&s->tasks, id);
	if (!t) {
		struct task *old;
		int rv = store_get(s->st, id, &old);
		if (rv < 0)
			return rv;
		task_del(old);
		return E_STATE; /* out of memory means finished */
	}
	if (task_state_final(t->status))
		return E_STATE;
	struct task_ev e = {.error = reason && *reason ? reason : "cancelled by client"};
	if (t->qwhere)
		queue_remove(s->q, t);
	transition(s, t, TASK_EV_CANCEL, &e, now);
	if (t->status == TASK_RUNNING && t->worker_id) {
		struct sched_worker *w = worker_by_id(s, t->worker_id);
		if (w)
			s->ops.cancel(w->ctx, t->id, e.error);
	}
	return t->status;
}

/* ---- workers ------------------------------------------------------------------ */

static struct slot *slot_of(struct sched_worker *w, const char *id)
{
	/* Every result scans the worker's slots, up to --max-slots of them:
	 * two characters of the counter first (id.h) spare a strcmp with
	 * almost every other slot. Only an id of ID_LEN characters has them. */
	int quick = strlen(id) == ID_LEN;
	for (int i = 0; i < w->nrun; i++) {
		const char *s = w->run[i].id;
		if (quick && (s[ID_COUNTER_LOW] != id[ID_COUNTER_LOW] ||
			      s[ID_COUNTER_LOW + 1] != id[ID_COUNTER_LOW + 1]))
			continue;
		if (strcmp(s, id) == 0)
			return &w->run[i];
	}
	return NULL;
}

static void slot_free(struct sched_worker *w, struct slot *sl)
{
	if (!sl->t)
		w->nover--;
	*sl = w->run[--w->nrun];
}

static void unlink_worker(struct sched *s, struct sched_worker *w)
{
	for (struct sched_worker **p = &s->workers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			s->nworkers--;
			return;
		}
	}
}

/* Takes over a task another stream of the same worker, or the previous
 * scheduler run, left RUNNING. */
static int claim(struct sched *s, struct sched_worker *w, const char *id, struct sched_worker *old)
{
	struct task *t = map_get(&s->tasks, id);
	if (!t || t->status != TASK_RUNNING || !t->worker_id || strcmp(t->worker_id, w->id) != 0)
		return 0;
	/* Listed twice: one slot, or the second would outlive the task. */
	if (slot_of(w, id))
		return 1;
	if (w->nrun >= w->slots)
		return 0;
	if (old) {
		struct slot *sl = slot_of(old, id);
		if (sl)
			slot_free(old, sl);
	}
	for (size_t i = 0; i < s->norphans; i++) {
		if (s->orphans[i] == t) {
			s->orphans[i] = s->orphans[--s->norphans];
			break;
		}
	}
	slot_take(w, t);
	/* A cancel asked for while the worker was away still stands. */
	if (t->cancel_requested)
		s->ops.cancel(w->ctx, t->id, t->error ? t->error : "cancelled by client");
	return 1;
}

struct sched_worker *sched_worker_register(struct sched *s, void *wctx, const char *id, int slots,
					   const char *const *names, size_t nnames,
					   const char *const *running, size_t nrunning,
					   const char *version, const char *address, int64_t now,
					   char *err, size_t errlen)
{
	if (!id || !*id || strlen(id) > 256) {
		snprintf(err, errlen, "registration needs a worker_id of 1 to 256 bytes");
		return NULL;
	}
	if (slots < 1 || slots > s->o.max_slots) {
		snprintf(err, errlen, "slots must be 1..%d, not %d", s->o.max_slots, slots);
		return NULL;
	}
	if (nnames == 0 || nnames > 1024) {
		snprintf(err, errlen, "registration needs 1 to 1024 task names");
		return NULL;
	}
	for (size_t i = 0; i < nnames; i++) {
		if (!names[i] || !*names[i] || strlen(names[i]) > TASK_NAME_MAX) {
			snprintf(err, errlen, "task name %zu is empty or too long", i);
			return NULL;
		}
	}
	struct sched_worker *w = xcalloc(1, sizeof *w);
	w->id = xstrdup(id);
	w->slots = slots;
	w->names = xcalloc(nnames, sizeof *w->names);
	for (size_t i = 0; i < nnames; i++)
		w->names[i] = xstrdup(names[i]);
	w->nnames = nnames;
	w->run = xcalloc((size_t)slots, sizeof *w->run);
	w->version = xstrdup(version ? version : "");
	w->address = xstrdup(address ? address : "");
	w->connected_ms = w->last_seen_ms = now;
	w->ctx = wctx;

	struct sched_worker *old = worker_by_id(s, id);
	for (size_t i = 0; i < nrunning; i++) {
		if (!claim(s, w, running[i], old))
			/* Not ours (any more): stop it rather than let it run
			 * for nothing; its result would be ignored. */
			s->ops.cancel(wctx, running[i], "not assigned to this worker");
	}
	if (old) {
		log_warn("worker_replaced", "worker=%s", log_quote(id));
		s->ops.kick(old->ctx, GRPC_STATUS_ABORTED, "replaced by a new stream of this worker");
		sched_worker_gone(s, old, "replaced by a new stream", now);
	}
	w->next = s->workers;
	s->workers = w;
	s->nworkers++;
	log_info("worker_registered", "worker=%s slots=%d names=%zu reclaimed=%d", log_quote(id), slots,
		 nnames, w->nrun);
	return w;
}

void sched_worker_seen(struct sched *s, struct sched_worker *w, int64_t now)
{
	w->last_seen_ms = now;
}

/*
 * A lease-over slot waits for the worker's answer for that attempt; a
 * worker that no longer lists the task will never send one (it dropped
 * the cancel, or lost the task), and the slot would be gone for the
 * stream's life. Not being listed is proof enough: the worker lists a task
 * until its result is on the stream, which carries the result before the
 * heartbeat, and a heartbeat sent before the cancel arrived still lists
 * it. Live slots are left alone: their assignment may still be on its way
 * (a lease-over slot's went out a timeout and the grace ago). A map of the
 * lease-over slots keeps this linear in the slots and the list; a worker
 * with none, the usual case, pays nothing.
 */
int sched_worker_heartbeat(struct sched *s, struct sched_worker *w, const char *const *running,
			   size_t nrunning, int64_t now)
{
	sched_worker_seen(s, w, now);
	if (!w->nover)
		return 0;
	struct map over; /* id → lease-over slot the list has not named */
	map_init(&over);
	for (int i = 0; i < w->nrun; i++)
		if (!w->run[i].t)
			map_put(&over, w->run[i].id, &w->run[i]);
	for (size_t i = 0; i < nrunning && over.n; i++)
		map_del(&over, running[i]);
	int freed = 0;
	/* Downwards, each entry leaving the map before its slot is freed:
	 * slot_free moves the last slot, already passed, into the hole, so
	 * every key left in the map points at an unmoved slot. */
	for (int i = w->nrun - 1; i >= 0 && over.n; i--) {
		struct slot *sl = &w->run[i];
		if (sl->t || !map_del(&over, sl->id))
			continue;
		log_info("slot_reclaimed", "worker=%s task=%s attempt=%d reason=not_running",
			 log_quote(w->id), log_quote(sl->id), sl->attempt);
		slot_free(w, sl);
		freed++;
	}
	map_free(&over);
	return freed;
}

void sched_worker_drain(struct sched *s, struct sched_worker *w)
{
	if (!w->draining)
		log_info("worker_draining", "worker=%s running=%d", log_quote(w->id), w->nrun);
	w->draining = 1;
}

void sched_worker_progress(struct sched *s, struct sched_worker *w, const char *task_id,
			   int32_t attempt, int32_t percent, const char *msg, int64_t now)
{
	w->last_seen_ms = now;
	struct slot *sl = slot_of(w, task_id);
	if (!sl || !sl->t)
		return;
	if (task_progress(sl->t, attempt, percent, msg) == 1)
		notify(s, sl->t);
}

void sched_worker_result(struct sched *s, struct sched_worker *w, const char *task_id,
			 int32_t attempt, enum task_state status, const void *output, size_t len,
			 const char *error, int64_t now)
{
	w->last_seen_ms = now;
	struct slot *sl = slot_of(w, task_id);
	if (!sl) {
		log_warn("result_ignored", "worker=%s task=%s attempt=%d reason=not_assigned", log_quote(w->id),
			 log_quote(task_id), attempt);
		return;
	}
	if (attempt && attempt != sl->attempt) {
		/* An older attempt's answer: the slot belongs to a later one,
		 * which is still running. */
		log_info("result_ignored", "worker=%s task=%s attempt=%d current=%d", log_quote(w->id),
			 log_quote(task_id), attempt, sl->attempt);
		return;
	}
	struct task *t = sl->t;
	slot_free(w, sl);
	if (!t) {
		log_info("result_ignored", "worker=%s task=%s attempt=%d reason=lease_over", log_quote(w->id),
			 log_quote(task_id), attempt);
		return;
	}
	struct task_ev e = {.worker_id = w->id,
			    .attempt = attempt,
			    .output = output,
			    .output_len = len,
			    .error = error};
	enum task_event ev = status == TASK_COMPLETED ? TASK_EV_COMPLETE
			     : status == TASK_CANCELLED ? TASK_EV_CANCELLED
							: TASK_EV_FAIL;
	transition(s, t, ev, &e, now);
}

void sched_worker_gone(struct sched *s, struct sched_worker *w, const char *why, int64_t now)
{
	unlink_worker(s, w);
	log_info("worker_gone", "worker=%s running=%d reason=%s", log_quote(w->id), w->nrun, log_quote(why));
	for (int i = 0; i < w->nrun; i++) {
		struct task *t = w->run[i].t;
		if (!t)
			continue;
		struct task_ev e = {.worker_id = w->id, .error = why};
		transition(s, t, TASK_EV_WORKER_LOST, &e, now);
	}
	worker_free(w);
}

void sched_worker_detach(struct sched *s, struct sched_worker *w)
{
	unlink_worker(s, w);
	log_info("worker_detached", "worker=%s running=%d", log_quote(w->id), w->nrun);
	worker_free(w);
}

void sched_workers_foreach(struct sched *s, void (*fn)(const struct sched_worker_info *, void *),
			   void *arg)
{
	for (struct sched_worker *w = s->workers; w; w = w->next) {
		const char *ids[w->nrun + 1];
		size_t n = 0;
		for (int i = 0; i < w->nrun; i++)
			if (w->run[i].t)
				ids[n++] = w->run[i].id;
		struct sched_worker_info info = {
			.id = w->id,
			.names = (const char *const *)w->names,
			.nnames = w->nnames,
			.slots = w->slots,
			.running = w->nrun,
			.running_ids = ids,
			.nrunning_ids = n,
			.version = w->version,
			.address = w->address,
			.connected_ms = w->connected_ms,
			.last_seen_ms = w->last_seen_ms,
		};
		fn(&info, arg);
	}
}

/* ---- watchers ------------------------------------------------------------------ */

int sched_watch(struct sched *s, const char *id, void *watch_ctx, int final_only,
		struct task **snap)
{
	struct task *t = map_get(&s->tasks, id);
	if (!t) {
		int rv = store_get(s->st, id, snap);
		if (rv < 0)
			return rv;
		return 1;
	}
	struct watchers *w = map_get(&s->watch, id);
	if (!w) {
		w = xcalloc(1, sizeof *w);
		memcpy(w->id, t->id, sizeof w->id);
		w->ctx = w->inl;
		w->cap = sizeof w->inl / sizeof w->inl[0];
		map_put(&s->watch, w->id, w);
	}
	if (w->n == w->cap) {
		void **ctx = xmalloc(2 * w->cap * sizeof *ctx);
		memcpy(ctx, w->ctx, w->n * sizeof *ctx);
		if (w->ctx != w->inl)
			free(w->ctx);
		w->ctx = ctx;
		w->cap *= 2;
	}
	w->ctx[w->n++] = watch_ctx;
	/* Even a task final in memory (cancelled this turn) is announced
	 * after the commit: a final_only watcher hears of it then. */
	*snap = final_only ? NULL : task_clone(t);
	return 0;
}

void sched_unwatch(struct sched *s, const char *id, void *watch_ctx)
{
	struct watchers *w = map_get(&s->watch, id);
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		if (w->ctx[i] == watch_ctx) {
			w->ctx[i] = NULL;
			break;
		}
	}
	watchers_tidy(s, w);
}

/* ---- time ------------------------------------------------------------------------ */

void sched_tick(struct sched *s, int64_t now)
{
	/* First, while no batch is open: WAL checkpoints (store.h). */
	store_maintain(s->st);
	/* Silent workers are dead (docs/protocol.md §3). */
	for (struct sched_worker *w = s->workers, *next; w; w = next) {
		next = w->next;
		if (now - w->last_seen_ms <= s->o.dead_timeout_ms)
			continue;
		log_warn("worker_silent", "worker=%s silent_ms=%lld", log_quote(w->id),
			 (long long)(now - w->last_seen_ms));
		s->ops.kick(w->ctx, GRPC_STATUS_UNAVAILABLE, "no heartbeat within the dead-timeout");
		sched_worker_gone(s, w, "no heartbeat within the dead-timeout", now);
	}
	/* Leases: a task past its deadline and the grace is taken back. */
	for (struct sched_worker *w = s->workers; w; w = w->next) {
		for (int i = 0; i < w->nrun; i++) {
			struct task *t = w->run[i].t;
			if (!t || !t->deadline_ms || now <= t->deadline_ms + s->o.lease_grace_ms)
				continue;
			s->ops.cancel(w->ctx, t->id, "lease expired");
			/* The slot stays used: the worker may still be running the
			 * attempt (a child between SIGTERM and SIGKILL, a handler
			 * deaf to cancels), and slots are credits for what it
			 * runs. It comes back with that attempt's answer, or
			 * passes to the task's next attempt on this worker
			 * (slot_take), or is freed once a heartbeat leaves the
			 * task out (sched_worker_heartbeat); not at a timeout,
			 * which would hand the worker more than it can run. */
			w->run[i].t = NULL;
			w->nover++;
			struct task_ev e = {.worker_id = w->id, .error = "lease expired"};
			transition(s, t, TASK_EV_TIMEOUT, &e, now);
		}
	}
	/* Tasks left RUNNING by the previous run whose worker never came back. */
	if (s->norphans && now >= s->orphan_deadline) {
		for (size_t i = 0; i < s->norphans; i++) {
			struct task_ev e = {.error = "worker lost across a scheduler restart"};
			transition(s, s->orphans[i], TASK_EV_WORKER_LOST, &e, now);
		}
		s->norphans = 0;
	}
	if (now >= s->next_purge) {
		int n = store_purge(s->st, now - s->o.retention_ms, 1000);
		if (n > 0)
			log_info("purged", "tasks=%d", n);
		s->next_purge = now + (n == 1000 ? 1000 : 60000);
	}
}

size_t sched_active_count(const struct sched *s)
{
	return s->tasks.n;
}

size_t sched_pending_count(const struct sched *s)
{
	return queue_size(s->q);
}

size_t sched_worker_count(const struct sched *s)
{
	return s->nworkers;
}
