/* Tests for lib/scheduler.c: decisions checked through recorded ops on a
 * real SQLite store in a temporary directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "scheduler.h"
#include "status.h"
#include "store.h"
#include "task.h"

struct rec {
	char kind;   /* 'a' assign, 'c' cancel, 'k' kick, 'u' update */
	char who[16];
	char task[ID_LEN + 1];
	int attempt;
	int status;
};

static struct rec recs[4096];
static int nrec;

/* A worker context is its name. */
static void rec_add(char kind, const char *who, const char *task, int attempt, int status)
{
	ck_assert_int_lt(nrec, 4096);
	struct rec *r = &recs[nrec++];
	r->kind = kind;
	snprintf(r->who, sizeof r->who, "%s", who ? who : "");
	snprintf(r->task, sizeof r->task, "%s", task ? task : "");
	r->attempt = attempt;
	r->status = status;
}

static void op_assign(void *w, const struct task *t)
{
	rec_add('a', w, t->id, t->attempt, t->status);
}
static void op_cancel(void *w, const char *id, const char *reason)
{
	rec_add('c', w, id, 0, 0);
}
static void op_kick(void *w, int status, const char *msg)
{
	rec_add('k', w, NULL, 0, status);
}
/* Set by a test: what a watcher does from inside its update. */
static void (*on_update)(const char *w, const struct task *t);

static void op_update(void *w, const struct task *t)
{
	rec_add('u', w, t->id, t->attempt, t->status);
	if (on_update)
		on_update(w, t);
}

static const struct sched_ops ops = {op_assign, op_cancel, op_kick, op_update};
static char dir[64];
static struct store *st;
static struct sched *s;
static int64_t now = 1700000000000;

/* The dispatch policy open_all gives the scheduler (setup: the default). */
static enum sched_dispatch dispatch;

static void open_all(void)
{
	ck_assert_int_eq(store_open_sqlite(dir, NULL, &st), 0);
	int err = 0;
	struct sched_opts o = {.dead_timeout_ms = 5000, .lease_grace_ms = 1000, .dispatch = dispatch};
	s = sched_new(st, &o, &ops, now, &err);
	ck_assert_ptr_nonnull(s);
}

static void close_all(void)
{
	sched_del(s);
	store_del(st);
	s = NULL;
	st = NULL;
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/orchd-sched.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	nrec = 0;
	on_update = NULL;
	dispatch = SCHED_DISPATCH_FILL;
	open_all();
}

static void teardown(void)
{
	close_all();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Submits t (taken) and commits; returns the id in a static rotating
 * buffer. */
static const char *submit_task(struct task *t)
{
	static char ids[8][ID_LEN + 1];
	static int next;
	const struct task *out;
	int dup;
	char err[128];
	ck_assert_int_eq(sched_submit(s, t, 1 << 20, now, &out, &dup, err, sizeof err), 0);
	char *id = ids[next++ & 7];
	memcpy(id, out->id, ID_LEN + 1);
	ck_assert_int_eq(sched_commit(s, now), 0);
	return id;
}

/* Submits n tasks of this name in one turn: one commit for all. */
static void submit_turn(const char *name, int n)
{
	for (int i = 0; i < n; i++) {
		const struct task *out;
		int dup;
		char err[128];
		ck_assert_int_eq(sched_submit(s, task_new(NULL, name, now), 1 << 20, now, &out, &dup,
					      err, sizeof err),
				 0);
	}
	ck_assert_int_eq(sched_commit(s, now), 0);
}

static const char *submit(const char *name, int prio, const char *key)
{
	struct task *t = task_new(NULL, name, now);
	t->priority = prio;
	t->max_attempts = 2;
	task_set_str(&t->idempotency_key, key);
	return submit_task(t);
}

/* A task whose attempts each have a lease of timeout_ms (+ the grace). */
static const char *submit_timed(const char *name, int64_t timeout_ms, int max_attempts)
{
	struct task *t = task_new(NULL, name, now);
	t->timeout_ms = timeout_ms;
	t->max_attempts = max_attempts;
	return submit_task(t);
}

static struct sched_worker *reg(const char *id, int slots, const char *name)
{
	char err[128];
	const char *names[] = {name};
	struct sched_worker *w = sched_worker_register(s, (void *)id, id, slots, names, 1, NULL, 0,
						       "t", "", now, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(sched_commit(s, now), 0);
	return w;
}

static int count(char kind, const char *who)
{
	int n = 0;
	for (int i = 0; i < nrec; i++)
		n += recs[i].kind == kind && (!who || !strcmp(recs[i].who, who));
	return n;
}

struct busy {
	const char *worker;
	int running;
};

static void busy_cb(const struct sched_worker_info *i, void *arg)
{
	struct busy *b = arg;
	if (strcmp(i->id, b->worker) == 0)
		b->running = i->running;
}

/* The slots the scheduler counts as taken on a worker (-1: not connected). */
static int busy(const char *worker)
{
	struct busy b = {worker, -1};
	sched_workers_foreach(s, busy_cb, &b);
	return b.running;
}

/* A worker's result for an attempt, then the turn's commit. */
static void answer(struct sched_worker *w, const char *id, int attempt, enum task_state status,
		   const char *output)
{
	sched_worker_result(s, w, id, attempt, status, output, output ? strlen(output) : 0, NULL,
			    now);
	ck_assert_int_eq(sched_commit(s, now), 0);
}

/* Moves time by ms; the worker stays alive and the scheduler ticks. */
static void pass(struct sched_worker *w, int64_t ms)
{
	now += ms;
	sched_worker_seen(s, w, now);
	sched_tick(s, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
}

static struct task *get(const char *id)
{
	struct task *t;
	ck_assert_int_eq(sched_get(s, id, &t), 0);
	return t;
}

static int status_of(const char *id)
{
	struct task *t = get(id);
	int st_ = t->status;
	task_del(t);
	return st_;
}

START_TEST(test_tasks_go_only_to_workers_of_their_name_within_slots)
{
	char a[4][ID_LEN + 1];
	for (int i = 0; i < 4; i++)
		memcpy(a[i], submit("resize", 0, NULL), ID_LEN + 1);
	const char *other = submit("encode", 0, NULL);
	reg("w1", 2, "resize");
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_int_eq(status_of(other), TASK_PENDING);
	/* FIFO within a priority: the first two were assigned. */
	ck_assert_str_eq(recs[0].task, a[0]);
	ck_assert_str_eq(recs[1].task, a[1]);
}
END_TEST

START_TEST(test_priority_first_then_fifo)
{
	const char *lo = submit("x", 0, NULL);
	char hi[ID_LEN + 1];
	memcpy(hi, submit("x", 5, NULL), sizeof hi);
	(void)lo;
	reg("w1", 1, "x");
	ck_assert_int_eq(nrec, 1);
	ck_assert_str_eq(recs[0].task, hi);
}
END_TEST

START_TEST(test_least_loaded_worker_gets_the_task)
{
	struct sched_worker *w1 = reg("w1", 4, "x");
	reg("w2", 4, "x");
	(void)w1;
	for (int i = 0; i < 4; i++)
		submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_int_eq(count('a', "w2"), 2);
}
END_TEST

/* Fill: a turn's ready tasks go to the least loaded worker up to its free
 * slots, then to the next; the next turn starts from the least loaded. */
START_TEST(test_fill_gives_a_turns_tasks_to_the_least_loaded_first)
{
	reg("w1", 4, "x");
	reg("w2", 4, "x");
	submit_turn("x", 3);
	/* Equally loaded, either may be first. */
	const char *first = !strcmp(recs[nrec - 1].who, "w1") ? "w1" : "w2";
	const char *second = first[1] == '1' ? "w2" : "w1";
	ck_assert_int_eq(count('a', first), 3);
	ck_assert_int_eq(count('a', second), 0);
	submit_turn("x", 3);
	ck_assert_int_eq(count('a', second), 3);
	ck_assert_int_eq(count('a', first), 3);
	/* Past the least loaded's free slots the rest go on to the next. */
	submit_turn("x", 2);
	ck_assert_int_eq(busy("w1"), 4);
	ck_assert_int_eq(busy("w2"), 4);
	submit_turn("x", 1);
	ck_assert_int_eq(count('a', NULL), 8);
}
END_TEST

START_TEST(test_spread_gives_a_turns_tasks_one_each_in_turn)
{
	close_all();
	dispatch = SCHED_DISPATCH_SPREAD;
	open_all();
	reg("w1", 4, "x");
	reg("w2", 4, "x");
	submit_turn("x", 4);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_int_eq(count('a', "w2"), 2);
	/* In turn: the assignments alternate. */
	ck_assert_str_ne(recs[nrec - 1].who, recs[nrec - 2].who);
}
END_TEST

START_TEST(test_fill_skips_a_draining_worker)
{
	struct sched_worker *w1 = reg("w1", 4, "x");
	reg("w2", 4, "x");
	sched_worker_drain(s, w1);
	submit_turn("x", 3);
	ck_assert_int_eq(count('a', "w1"), 0);
	ck_assert_int_eq(count('a', "w2"), 3);
}
END_TEST

START_TEST(test_result_completes_and_frees_the_slot)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	const char *b = submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 1);
	sched_worker_result(s, w, a, 1, TASK_COMPLETED, "out", 3, NULL, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_str_eq(recs[nrec - 1].task, b);
	struct task *t = get(a);
	ck_assert_int_eq(t->status, TASK_COMPLETED);
	ck_assert_int_eq((int)t->output_len, 3);
	ck_assert(memcmp(t->output, "out", 3) == 0);
	task_del(t);
}
END_TEST

START_TEST(test_lost_worker_requeues_then_fails_past_max_attempts)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	sched_worker_gone(s, w, "test", now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(status_of(a), TASK_PENDING);
	w = reg("w2", 1, "x");
	ck_assert_int_eq(recs[nrec - 1].attempt, 2);
	sched_worker_gone(s, w, "test", now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	struct task *t = get(a);
	ck_assert_int_eq(t->status, TASK_FAILED);
	ck_assert_ptr_nonnull(t->error);
	task_del(t);
}
END_TEST

START_TEST(test_silent_worker_is_kicked_and_its_task_reassigned)
{
	reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	struct sched_worker *w2 = reg("w2", 1, "x");
	now += 3000;
	sched_worker_seen(s, w2, now);
	now += 3000; /* w1 silent for 6 s, w2 for 3 s */
	sched_tick(s, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('k', "w1"), 1);
	ck_assert_int_eq(count('k', "w2"), 0);
	ck_assert_str_eq(recs[nrec - 1].who, "w2");
	ck_assert_str_eq(recs[nrec - 1].task, a);
	/* A late result from the dead stream's attempt 1 cannot complete
	 * attempt 2: w1 is gone, so it has no slot to answer from. */
	ck_assert_int_eq(status_of(a), TASK_RUNNING);
}
END_TEST

START_TEST(test_lease_expiry_cancels_and_retries)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char id[ID_LEN + 1];
	memcpy(id, submit_timed("x", 100, 3), sizeof id);
	pass(w, 100 + 1001);
	ck_assert_int_eq(count('c', "w1"), 1);
	ck_assert_int_eq(status_of(id), TASK_PENDING);
	/* The slot stays used until the worker answers for the old run. */
	pass(w, 60000);
	ck_assert_int_eq(count('a', "w1"), 1);
	ck_assert_int_eq(busy("w1"), 1);
	answer(w, id, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_int_eq(status_of(id), TASK_RUNNING);
	answer(w, id, 2, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(id), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
}
END_TEST

/* Every slot of the worker takes work again: none was lost. */
static void takes_work(const char *worker, int slots)
{
	int before = count('a', worker);
	for (int i = 0; i < slots; i++)
		submit("x", 0, NULL);
	ck_assert_int_eq(count('a', worker), before + slots);
	ck_assert_int_eq(busy(worker), slots);
}

/* A task whose lease ran out on w1 (two slots, one free) comes back to it
 * as attempt 2 while w1 may still be stopping attempt 1. Returns its id. */
static const char *lease_out_and_back(struct sched_worker *w)
{
	const char *id = submit_timed("x", 100, 3);
	ck_assert_int_eq(count('a', "w1"), 1);
	pass(w, 100 + 1001); /* past the deadline and the grace */
	ck_assert_int_eq(count('c', "w1"), 1);
	ck_assert_int_eq(status_of(id), TASK_PENDING);
	pass(w, 500); /* the retry backoff */
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_str_eq(recs[nrec - 1].task, id);
	ck_assert_int_eq(recs[nrec - 1].attempt, 2);
	/* Attempt 2 took over attempt 1's slot: a worker given a new attempt
	 * of a task it still has stops the old one and never answers for it
	 * (docs/protocol.md section 5). */
	ck_assert_int_eq(busy("w1"), 1);
	return id;
}

/* The given attempt's result decided the task: COMPLETED with its output. */
static void completed_by(const char *id, int attempt, const char *output)
{
	struct task *t = get(id);
	ck_assert_int_eq(t->status, TASK_COMPLETED);
	ck_assert_int_eq(t->attempt, attempt);
	ck_assert_uint_eq(t->output_len, strlen(output));
	ck_assert(memcmp(t->output, output, t->output_len) == 0);
	task_del(t);
}

START_TEST(test_lease_over_task_back_on_its_worker_new_attempt_answers_first)
{
	struct sched_worker *w = reg("w1", 2, "x");
	char id[ID_LEN + 1];
	memcpy(id, lease_out_and_back(w), sizeof id);
	answer(w, id, 2, TASK_COMPLETED, "new");
	completed_by(id, 2, "new");
	ck_assert_int_eq(busy("w1"), 0);
	/* A worker that answers for the old attempt anyway changes nothing. */
	answer(w, id, 1, TASK_CANCELLED, NULL);
	completed_by(id, 2, "new");
	ck_assert_int_eq(busy("w1"), 0);
	takes_work("w1", 2);
}
END_TEST

START_TEST(test_lease_over_task_back_on_its_worker_old_attempt_answers_first)
{
	struct sched_worker *w = reg("w1", 2, "x");
	char id[ID_LEN + 1];
	memcpy(id, lease_out_and_back(w), sizeof id);
	/* Attempt 1 finished after all: too late, attempt 2 decides. */
	answer(w, id, 1, TASK_COMPLETED, "old");
	struct task *t = get(id);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 2);
	task_del(t);
	ck_assert_int_eq(busy("w1"), 1);
	answer(w, id, 2, TASK_COMPLETED, "new");
	completed_by(id, 2, "new");
	ck_assert_int_eq(busy("w1"), 0);
	takes_work("w1", 2);
}
END_TEST

/* Attempt 2 took attempt 1's slot and its lease ran out too: the slot is
 * attempt 2's now, and only attempt 2's answer gives it back. */
START_TEST(test_lease_over_slot_waits_for_its_own_attempt_not_an_older_one)
{
	struct sched_worker *w = reg("w1", 2, "x");
	char id[ID_LEN + 1];
	memcpy(id, lease_out_and_back(w), sizeof id);
	pass(w, 100 + 1001);
	ck_assert_int_eq(count('c', "w1"), 2);
	ck_assert_int_eq(status_of(id), TASK_PENDING);
	answer(w, id, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(busy("w1"), 1);
	answer(w, id, 2, TASK_CANCELLED, NULL);
	ck_assert_int_eq(busy("w1"), 0);
	ck_assert_int_eq(status_of(id), TASK_PENDING);
}
END_TEST

START_TEST(test_late_answer_frees_a_lease_over_slot_after_the_task_finished_elsewhere)
{
	struct sched_worker *w1 = reg("w1", 1, "x");
	char id[ID_LEN + 1];
	memcpy(id, submit_timed("x", 100, 3), sizeof id);
	pass(w1, 100 + 1001);
	struct sched_worker *w2 = reg("w2", 1, "x");
	sched_worker_seen(s, w2, now + 500);
	pass(w1, 500);
	ck_assert_int_eq(count('a', "w2"), 1);
	answer(w2, id, 2, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(id), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 1);
	answer(w1, id, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(status_of(id), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
	ck_assert_int_eq(busy("w2"), 0);
}
END_TEST

START_TEST(test_cancel_unanswered_ends_at_the_lease_and_the_late_answer_frees_the_slot)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char id[ID_LEN + 1];
	memcpy(id, submit_timed("x", 100, 3), sizeof id);
	ck_assert_int_eq(sched_cancel(s, id, "stop", now), TASK_RUNNING);
	ck_assert_int_eq(sched_commit(s, now), 0);
	pass(w, 100 + 1001);
	ck_assert_int_eq(status_of(id), TASK_CANCELLED);
	ck_assert_int_eq(busy("w1"), 1); /* w1 may still be running it */
	answer(w, id, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(status_of(id), TASK_CANCELLED);
	ck_assert_int_eq(busy("w1"), 0);
	takes_work("w1", 1);
}
END_TEST

/* A heartbeat from w listing ids (n of them), then the turn's commit.
 * Returns the slots it freed. */
static int heartbeat(struct sched_worker *w, const char *const *ids, size_t n)
{
	int freed = sched_worker_heartbeat(s, w, ids, n, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	return freed;
}

/* A task whose lease ran out on w (one attempt: it fails), leaving its
 * slot lease-over. Returns its id. */
static const char *lease_over(struct sched_worker *w)
{
	const char *id = submit_timed("x", 100, 1);
	pass(w, 100 + 1001);
	ck_assert_int_eq(status_of(id), TASK_FAILED);
	return id;
}

START_TEST(test_heartbeat_without_a_lease_over_task_frees_its_slot)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, lease_over(w), sizeof a);
	ck_assert_int_eq(count('c', "w1"), 1);
	ck_assert_int_eq(busy("w1"), 1);
	/* The worker dropped the cancel: it runs nothing, and never answers. */
	ck_assert_int_eq(heartbeat(w, NULL, 0), 1);
	ck_assert_int_eq(busy("w1"), 0);
	const char *b = submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_str_eq(recs[nrec - 1].task, b);
	ck_assert_int_eq(busy("w1"), 1);
	/* An answer for a after all has no slot to free: b keeps its own. */
	answer(w, a, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(busy("w1"), 1);
	ck_assert_int_eq(status_of(b), TASK_RUNNING);
	ck_assert_int_eq(heartbeat(w, (const char *[]){b}, 1), 0);
	ck_assert_int_eq(busy("w1"), 1);
}
END_TEST

START_TEST(test_heartbeat_still_listing_a_lease_over_task_keeps_its_slot)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, lease_over(w), sizeof a);
	/* Sent before the cancel arrived, or the task is still stopping. */
	ck_assert_int_eq(heartbeat(w, (const char *[]){"other", a}, 2), 0);
	ck_assert_int_eq(busy("w1"), 1);
	const char *b = submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 1);
	answer(w, a, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_str_eq(recs[nrec - 1].task, b);
}
END_TEST

/* An assignment may still be on its way when the worker beats: a live
 * slot is never the heartbeat's to free, even one that took over a
 * lease-over slot. */
START_TEST(test_heartbeat_never_frees_a_live_assignment_it_omits)
{
	struct sched_worker *w = reg("w1", 4, "x");
	char a[ID_LEN + 1], b[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	ck_assert_int_eq(heartbeat(w, NULL, 0), 0);
	ck_assert_int_eq(busy("w1"), 1);
	memcpy(b, submit_timed("x", 100, 3), sizeof b);
	lease_over(w); /* b's lease runs out with it */
	pass(w, 500);  /* b's retry takes over its own lease-over slot */
	ck_assert_str_eq(recs[nrec - 1].task, b);
	ck_assert_int_eq(recs[nrec - 1].attempt, 2);
	ck_assert_int_eq(busy("w1"), 3);
	/* Only the failed task's slot goes. */
	ck_assert_int_eq(heartbeat(w, NULL, 0), 1);
	ck_assert_int_eq(busy("w1"), 2);
	answer(w, a, 1, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(a), TASK_COMPLETED);
	answer(w, b, 2, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(b), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
}
END_TEST

START_TEST(test_cancel_lost_to_a_completion_completes_and_frees_the_slot)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char id[ID_LEN + 1];
	memcpy(id, submit("x", 0, NULL), sizeof id);
	ck_assert_int_eq(sched_cancel(s, id, "stop", now), TASK_RUNNING);
	answer(w, id, 1, TASK_COMPLETED, "done");
	ck_assert_int_eq(status_of(id), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
	takes_work("w1", 1);
}
END_TEST

START_TEST(test_draining_worker_gets_nothing_new_and_its_handed_back_task_runs_elsewhere)
{
	struct sched_worker *w = reg("w1", 2, "x");
	char a[ID_LEN + 1], b[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	sched_worker_drain(s, w);
	memcpy(b, submit("x", 0, NULL), sizeof b);
	ck_assert_int_eq(count('a', "w1"), 1);
	ck_assert_int_eq(status_of(b), TASK_PENDING);
	/* w1 stops a rather than finish it: the worker's doing, so a runs
	 * again at once, but not on w1. */
	answer(w, a, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(busy("w1"), 0);
	ck_assert_int_eq(status_of(a), TASK_PENDING);
	ck_assert_int_eq(count('a', "w1"), 1);
	reg("w2", 2, "x");
	ck_assert_int_eq(count('a', "w2"), 2);
	struct task *t = get(a);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 2);
	ck_assert_str_eq(t->worker_id, "w2");
	task_del(t);
}
END_TEST

START_TEST(test_cancel_pending_running_finished_unknown)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char run[ID_LEN + 1], pend[ID_LEN + 1];
	memcpy(run, submit("x", 0, NULL), sizeof run);
	memcpy(pend, submit("x", 0, NULL), sizeof pend);
	ck_assert_int_eq(sched_cancel(s, pend, "no", now), TASK_CANCELLED);
	ck_assert_int_eq(sched_cancel(s, run, "stop", now), TASK_RUNNING);
	ck_assert_int_eq(count('c', "w1"), 1);
	sched_worker_result(s, w, run, 1, TASK_CANCELLED, NULL, 0, "stopped", now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(status_of(run), TASK_CANCELLED);
	ck_assert_int_eq(status_of(pend), TASK_CANCELLED);
	ck_assert_int_eq(sched_cancel(s, run, NULL, now), E_STATE);
	ck_assert_int_eq(sched_cancel(s, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", NULL, now), -ENOENT);
}
END_TEST

START_TEST(test_idempotency_key_returns_the_first_task)
{
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, "k1"), sizeof a);
	const char *b = submit("x", 0, "k1");
	ck_assert_str_eq(a, b);
	/* Still true once the task is finished and out of memory. */
	ck_assert_int_eq(sched_cancel(s, a, NULL, now), TASK_CANCELLED);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_uint_eq(sched_active_count(s), 0);
	ck_assert_str_eq(submit("x", 0, "k1"), a);
}
END_TEST

START_TEST(test_watchers_hear_changes_after_the_commit)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	struct task *snap;
	ck_assert_int_eq(sched_watch(s, a, "watcher", 0, &snap), 0);
	ck_assert_int_eq(snap->status, TASK_RUNNING);
	task_del(snap);
	sched_worker_progress(s, w, a, 1, 40, "forty", now);
	ck_assert_int_eq(count('u', "watcher"), 1);
	sched_worker_result(s, w, a, 1, TASK_COMPLETED, NULL, 0, NULL, now);
	ck_assert_int_eq(count('u', "watcher"), 1); /* not before the commit */
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('u', "watcher"), 2);
	ck_assert_int_eq(recs[nrec - 1].status, TASK_COMPLETED);
	sched_unwatch(s, a, "watcher");
	/* A finished task answers a new watcher from the store at once. */
	ck_assert_int_eq(sched_watch(s, a, "late", 0, &snap), 1);
	ck_assert_int_eq(snap->status, TASK_COMPLETED);
	task_del(snap);
}
END_TEST

START_TEST(test_final_only_watcher_gets_no_copy_until_the_end)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	struct task *snap = (void *)1;
	ck_assert_int_eq(sched_watch(s, a, "fin", 1, &snap), 0);
	ck_assert_ptr_null(snap);
	sched_worker_result(s, w, a, 1, TASK_COMPLETED, NULL, 0, NULL, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('u', "fin"), 1);
	ck_assert_int_eq(recs[nrec - 1].status, TASK_COMPLETED);
	sched_unwatch(s, a, "fin");
	/* A finished task: its final state, from the store, all the same. */
	ck_assert_int_eq(sched_watch(s, a, "late", 1, &snap), 1);
	ck_assert_int_eq(snap->status, TASK_COMPLETED);
	task_del(snap);

	/* Cancelled before the commit: final in memory, heard of after it. */
	memcpy(a, submit("nobody", 0, NULL), sizeof a);
	ck_assert_int_eq(sched_cancel(s, a, NULL, now), TASK_CANCELLED);
	ck_assert_int_eq(sched_watch(s, a, "fin2", 1, &snap), 0);
	ck_assert_ptr_null(snap);
	ck_assert_int_eq(count('u', "fin2"), 0);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('u', "fin2"), 1);
	ck_assert_int_eq(recs[nrec - 1].status, TASK_CANCELLED);
	sched_unwatch(s, a, "fin2");
}
END_TEST

/* Watcher "a" ends its own watch and "c"'s, and adds "e", from inside its
 * first update; "d" ends its own watch on the final update. */
static void unwatch_from_update(const char *w, const struct task *t)
{
	struct task *snap;
	if (strcmp(w, "a") == 0 && t->status == TASK_RUNNING) {
		sched_unwatch(s, t->id, "a");
		sched_unwatch(s, t->id, "c");
		/* A fifth watcher: the list outgrows its room mid-walk. */
		ck_assert_int_eq(sched_watch(s, t->id, "e", 0, &snap), 0);
		task_del(snap);
	}
	if (strcmp(w, "d") == 0 && task_state_final(t->status))
		sched_unwatch(s, t->id, "d");
}

START_TEST(test_watchers_may_unwatch_themselves_and_others_during_an_update)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	const char *const names[] = {"a", "b", "c", "d"};
	for (size_t i = 0; i < 4; i++) {
		struct task *snap;
		ck_assert_int_eq(sched_watch(s, a, (void *)names[i], 0, &snap), 0);
		task_del(snap);
	}
	on_update = unwatch_from_update;
	sched_worker_progress(s, w, a, 1, 50, "half", now);
	/* "c" was unwatched before its turn and is not called; "e" joined
	 * during the walk and hears from the next update on. */
	ck_assert_int_eq(count('u', "a"), 1);
	ck_assert_int_eq(count('u', "b"), 1);
	ck_assert_int_eq(count('u', "c"), 0);
	ck_assert_int_eq(count('u', "d"), 1);
	ck_assert_int_eq(count('u', "e"), 0);

	sched_worker_result(s, w, a, 1, TASK_COMPLETED, NULL, 0, NULL, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('u', "a"), 1);
	ck_assert_int_eq(count('u', "b"), 2);
	ck_assert_int_eq(count('u', "c"), 0);
	ck_assert_int_eq(count('u', "d"), 2);
	ck_assert_int_eq(count('u', "e"), 1);
	ck_assert_int_eq(recs[nrec - 1].status, TASK_COMPLETED);

	/* The last two leave; the list goes with them (the sanitizer build
	 * checks nothing is left behind or used after it is freed). */
	sched_unwatch(s, a, "b");
	sched_unwatch(s, a, "e");
	sched_unwatch(s, a, "e"); /* twice is harmless */
}
END_TEST

START_TEST(test_restart_keeps_pending_and_reclaims_or_requeues_running)
{
	reg("w1", 2, "x");
	char r1[ID_LEN + 1], r2[ID_LEN + 1], p[ID_LEN + 1];
	memcpy(r1, submit("x", 0, NULL), sizeof r1);
	memcpy(r2, submit("x", 0, NULL), sizeof r2);
	memcpy(p, submit("x", 0, NULL), sizeof p);
	close_all(); /* as after kill -9: every commit is on disk */
	open_all();
	nrec = 0;
	ck_assert_int_eq(status_of(p), TASK_PENDING);
	ck_assert_int_eq(status_of(r1), TASK_RUNNING);
	/* w1 comes back still running r1 only. */
	char err[64];
	const char *names[] = {"x"};
	const char *running[] = {r1};
	struct sched_worker *w = sched_worker_register(s, "w1", "w1", 2, names, 1, running, 1, "t",
						       "", now, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('a', "w1"), 1); /* p, into the free slot */
	now += 6000;
	sched_worker_seen(s, w, now);
	sched_tick(s, now);
	ck_assert_int_eq(sched_commit(s, now), 0);
	/* r2 was not reclaimed: re-queued with attempt 2 (slots are full,
	 * so it waits). r1 stays where it is. */
	struct task *t = get(r2);
	ck_assert_int_eq(t->status, TASK_PENDING);
	task_del(t);
	ck_assert_int_eq(status_of(r1), TASK_RUNNING);
}
END_TEST

/* The worker of the previous run registers again, running ids (borrowed). */
static struct sched_worker *reg_running(const char *id, int slots, const char *const *running,
					size_t nrunning)
{
	char err[64];
	const char *names[] = {"x"};
	struct sched_worker *w = sched_worker_register(s, (void *)id, id, slots, names, 1, running,
						       nrunning, "t", "", now, err, sizeof err);
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(sched_commit(s, now), 0);
	return w;
}

START_TEST(test_reclaim_takes_one_slot_per_task_even_when_listed_twice)
{
	reg("w1", 2, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	close_all();
	open_all();
	nrec = 0;
	const char *running[] = {a, a};
	struct sched_worker *w = reg_running("w1", 2, running, 2);
	ck_assert_int_eq(busy("w1"), 1);
	ck_assert_int_eq(count('c', "w1"), 0); /* a is w1's: nothing to stop */
	answer(w, a, 1, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(a), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
	takes_work("w1", 2);
	/* Nothing of the finished a is left for this to touch (the sanitizer
	 * build would see a use after free). */
	sched_worker_gone(s, w, "test", now);
}
END_TEST

START_TEST(test_reclaimed_task_past_its_lease_is_taken_back_and_its_slot_freed_by_the_answer)
{
	reg("w1", 1, "x");
	char id[ID_LEN + 1];
	memcpy(id, submit_timed("x", 100, 3), sizeof id);
	close_all();
	open_all();
	nrec = 0;
	const char *running[] = {id};
	struct sched_worker *w = reg_running("w1", 1, running, 1);
	ck_assert_int_eq(busy("w1"), 1);
	pass(w, 100 + 1001);
	ck_assert_int_eq(count('c', "w1"), 1);
	ck_assert_int_eq(status_of(id), TASK_PENDING);
	ck_assert_int_eq(busy("w1"), 1);
	answer(w, id, 1, TASK_CANCELLED, NULL);
	ck_assert_int_eq(busy("w1"), 0);
	pass(w, 500);
	ck_assert_int_eq(count('a', "w1"), 1);
	answer(w, id, 2, TASK_COMPLETED, NULL);
	ck_assert_int_eq(status_of(id), TASK_COMPLETED);
	ck_assert_int_eq(busy("w1"), 0);
}
END_TEST

START_TEST(test_worker_detached_at_shutdown_keeps_its_tasks_running)
{
	struct sched_worker *w = reg("w1", 1, "x");
	char a[ID_LEN + 1];
	memcpy(a, submit("x", 0, NULL), sizeof a);
	sched_worker_detach(s, w);
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(status_of(a), TASK_RUNNING);
	close_all();
	open_all();
	nrec = 0;
	/* The worker reclaims it from the next run, still attempt 1. */
	char err[64];
	const char *names[] = {"x"};
	const char *running[] = {a};
	ck_assert_ptr_nonnull(sched_worker_register(s, "w1", "w1", 1, names, 1, running, 1, "t",
						    "", now, err, sizeof err));
	ck_assert_int_eq(sched_commit(s, now), 0);
	ck_assert_int_eq(count('a', NULL) + count('c', NULL), 0);
	struct task *t = get(a);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 1);
	task_del(t);
}
END_TEST

START_TEST(test_bad_registrations_are_refused)
{
	char err[128];
	const char *names[] = {"x"};
	ck_assert_ptr_null(sched_worker_register(s, "w", "", 1, names, 1, NULL, 0, "", "", now, err,
						 sizeof err));
	ck_assert_ptr_null(sched_worker_register(s, "w", "w", 0, names, 1, NULL, 0, "", "", now,
						 err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "slots"));
	ck_assert_ptr_null(sched_worker_register(s, "w", "w", 1, names, 0, NULL, 0, "", "", now,
						 err, sizeof err));
}
END_TEST

/* One commit per turn: new tasks are dispatched before the commit, so a
 * lost batch (here: the store is full) must take them back -- forgotten,
 * their slots free again, none of their assignments sent. */
START_TEST(test_lost_batch_forgets_its_new_tasks_and_sends_nothing_for_them)
{
	close_all();
	struct store_sqlite_options so = {.max_db_bytes = 128 << 10};
	ck_assert_int_eq(store_open_sqlite(dir, &so, &st), 0);
	int err = 0;
	s = sched_new(st, NULL, &ops, now, &err);
	ck_assert_ptr_nonnull(s);
	reg("w1", 2, "x");
	submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 1);

	/* One turn: a small task, then one the store has no room for. */
	const struct task *out;
	int dup;
	char msg[128], b[ID_LEN + 1];
	struct task *t = task_new(NULL, "x", now);
	ck_assert_int_eq(sched_submit(s, t, 1 << 20, now, &out, &dup, msg, sizeof msg), 0);
	memcpy(b, out->id, sizeof b);
	static uint8_t big[512 << 10];
	t = task_new(NULL, "x", now);
	task_set_bytes(&t->payload, &t->payload_len, big, sizeof big);
	ck_assert_int_lt(sched_submit(s, t, 1 << 20, now, &out, &dup, msg, sizeof msg), 0);
	ck_assert_int_lt(sched_commit(s, now), 0);
	ck_assert_int_eq(count('a', "w1"), 1); /* nothing sent for b */
	struct task *gone;
	ck_assert_int_eq(sched_get(s, b, &gone), -ENOENT);
	ck_assert_uint_eq(sched_active_count(s), 1);

	/* b's slot is free again: the next task takes it. */
	const char *c = submit("x", 0, NULL);
	ck_assert_int_eq(count('a', "w1"), 2);
	ck_assert_str_eq(recs[nrec - 1].task, c);
}
END_TEST

Suite *scheduler_suite(void)
{
	Suite *su = suite_create("scheduler");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tasks_go_only_to_workers_of_their_name_within_slots);
	tcase_add_test(tc, test_priority_first_then_fifo);
	tcase_add_test(tc, test_least_loaded_worker_gets_the_task);
	tcase_add_test(tc, test_fill_gives_a_turns_tasks_to_the_least_loaded_first);
	tcase_add_test(tc, test_spread_gives_a_turns_tasks_one_each_in_turn);
	tcase_add_test(tc, test_fill_skips_a_draining_worker);
	tcase_add_test(tc, test_result_completes_and_frees_the_slot);
	tcase_add_test(tc, test_lost_worker_requeues_then_fails_past_max_attempts);
	tcase_add_test(tc, test_silent_worker_is_kicked_and_its_task_reassigned);
	tcase_add_test(tc, test_lease_expiry_cancels_and_retries);
	tcase_add_test(tc, test_lease_over_task_back_on_its_worker_new_attempt_answers_first);
	tcase_add_test(tc, test_lease_over_task_back_on_its_worker_old_attempt_answers_first);
	tcase_add_test(tc, test_lease_over_slot_waits_for_its_own_attempt_not_an_older_one);
	tcase_add_test(tc, test_late_answer_frees_a_lease_over_slot_after_the_task_finished_elsewhere);
	tcase_add_test(tc, test_cancel_unanswered_ends_at_the_lease_and_the_late_answer_frees_the_slot);
	tcase_add_test(tc, test_heartbeat_without_a_lease_over_task_frees_its_slot);
	tcase_add_test(tc, test_heartbeat_still_listing_a_lease_over_task_keeps_its_slot);
	tcase_add_test(tc, test_heartbeat_never_frees_a_live_assignment_it_omits);
	tcase_add_test(tc, test_cancel_lost_to_a_completion_completes_and_frees_the_slot);
	tcase_add_test(tc, test_draining_worker_gets_nothing_new_and_its_handed_back_task_runs_elsewhere);
	tcase_add_test(tc, test_cancel_pending_running_finished_unknown);
	tcase_add_test(tc, test_idempotency_key_returns_the_first_task);
	tcase_add_test(tc, test_watchers_hear_changes_after_the_commit);
	tcase_add_test(tc, test_final_only_watcher_gets_no_copy_until_the_end);
	tcase_add_test(tc, test_watchers_may_unwatch_themselves_and_others_during_an_update);
	tcase_add_test(tc, test_restart_keeps_pending_and_reclaims_or_requeues_running);
	tcase_add_test(tc, test_reclaim_takes_one_slot_per_task_even_when_listed_twice);
	tcase_add_test(tc, test_reclaimed_task_past_its_lease_is_taken_back_and_its_slot_freed_by_the_answer);
	tcase_add_test(tc, test_worker_detached_at_shutdown_keeps_its_tasks_running);
	tcase_add_test(tc, test_bad_registrations_are_refused);
	tcase_add_test(tc, test_lost_batch_forgets_its_new_tasks_and_sends_nothing_for_them);
	suite_add_tcase(su, tc);
	return su;
}
