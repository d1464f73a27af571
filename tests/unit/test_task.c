/* Unit tests for lib/task: every legal and illegal transition, retries with
 * backoff until attempts run out, cancellation, stale events, progress. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "task.h"

#define T0 1700000000000LL

static void quiet(void)
{
	/* Illegal transitions are logged by design; keep the output clean. */
	log_set_level(LOG_OFF);
}

static struct task *pending(void)
{
	return task_new(NULL, "resize", T0);
}

static int ev(struct task *t, enum task_event e, int64_t now)
{
	return task_transition(t, e, NULL, now);
}

static int assign(struct task *t, const char *worker, int64_t now)
{
	struct task_ev e = {.worker_id = worker};
	return task_transition(t, TASK_EV_ASSIGN, &e, now);
}

static int fail_with(struct task *t, const char *why, int64_t now)
{
	struct task_ev e = {.error = why};
	return task_transition(t, TASK_EV_FAIL, &e, now);
}

/* A task in state s, reached through legal transitions only. */
static struct task *in_state(enum task_state s)
{
	struct task *t = pending();
	if (s == TASK_PENDING)
		return t;
	ck_assert_int_eq(assign(t, "w1", T0 + 1), TASK_RUNNING);
	switch (s) {
	case TASK_COMPLETED:
		ck_assert_int_eq(ev(t, TASK_EV_COMPLETE, T0 + 2), TASK_COMPLETED);
		break;
	case TASK_FAILED: {
		struct task_ev e = {.error = "boom", .no_retry = 1};
		ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &e, T0 + 2), TASK_FAILED);
		break;
	}
	case TASK_CANCELLED:
		ck_assert_int_eq(ev(t, TASK_EV_CANCEL, T0 + 2), TASK_RUNNING);
		ck_assert_int_eq(ev(t, TASK_EV_CANCELLED, T0 + 3), TASK_CANCELLED);
		break;
	default:
		break;
	}
	return t;
}

START_TEST(new_task_is_pending_and_never_run)
{
	struct task *t = pending();
	ck_assert_int_eq(t->status, TASK_PENDING);
	ck_assert_int_eq(t->attempt, 0);
	ck_assert_int_eq(t->created_ms, T0);
	ck_assert(id_valid(t->id));
	ck_assert_str_eq(t->name, "resize");
	ck_assert_int_eq(task_max_attempts(t, NULL), 3);
	task_del(t);
	task_del(NULL);
}
END_TEST

START_TEST(assign_starts_an_attempt_with_a_lease)
{
	struct task *t = pending();
	t->timeout_ms = 5000;
	ck_assert_int_eq(assign(t, "w1", T0 + 10), TASK_RUNNING);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 1);
	ck_assert_int_eq(t->started_ms, T0 + 10);
	ck_assert_int_eq(t->deadline_ms, T0 + 5010);
	ck_assert_str_eq(t->worker_id, "w1");
	task_del(t);

	t = pending(); /* no timeout, no lease */
	ck_assert_int_eq(assign(t, "w1", T0 + 10), TASK_RUNNING);
	ck_assert_int_eq(t->deadline_ms, 0);
	task_del(t);
}
END_TEST

START_TEST(complete_records_output_and_finish_time)
{
	struct task *t = pending();
	assign(t, "w1", T0 + 1);
	struct task_ev e = {.worker_id = "w1", .attempt = 1, .output = "a\0b", .output_len = 3};
	ck_assert_int_eq(task_transition(t, TASK_EV_COMPLETE, &e, T0 + 7), TASK_COMPLETED);
	ck_assert_int_eq(t->finished_ms, T0 + 7);
	ck_assert_uint_eq(t->output_len, 3);
	ck_assert_mem_eq(t->output, "a\0b", 3);
	ck_assert_ptr_null(t->error);
	ck_assert_int_eq(t->deadline_ms, 0);
	ck_assert(task_state_final(t->status));
	task_del(t);
}
END_TEST

START_TEST(failure_retries_with_exponential_backoff_then_fails)
{
	struct task *t = pending();
	int64_t now = T0;
	for (int a = 1; a <= 2; a++) {
		ck_assert_int_eq(assign(t, "w1", now), TASK_RUNNING);
		ck_assert_int_eq(t->attempt, a);
		ck_assert_int_eq(fail_with(t, "disk on fire", now + 10), TASK_PENDING);
		/* 500 ms after attempt 1, 1000 ms after attempt 2. */
		int64_t wait = 500LL << (a - 1);
		ck_assert_int_eq(t->not_before_ms, now + 10 + wait);
		ck_assert_str_eq(t->error, "failed: disk on fire");
		ck_assert_int_eq(t->finished_ms, 0);
		/* Not assignable during the backoff, and unchanged by trying. */
		ck_assert_int_eq(assign(t, "w1", t->not_before_ms - 1), E_STATE);
		ck_assert_int_eq(t->status, TASK_PENDING);
		ck_assert_int_eq(t->attempt, a);
		now = t->not_before_ms;
	}
	ck_assert_int_eq(assign(t, "w2", now), TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 3);
	ck_assert_int_eq(fail_with(t, "still on fire", now + 5), TASK_FAILED);
	ck_assert_int_eq(t->finished_ms, now + 5);
	ck_assert_str_eq(t->error, "gave up after 3 of 3 attempts; last: failed: still on fire");
	ck_assert_int_eq(assign(t, "w1", now + 10000), E_STATE);
	task_del(t);
}
END_TEST

START_TEST(worker_loss_requeues_at_once_until_attempts_run_out)
{
	struct task *t = pending();
	t->max_attempts = 2;
	assign(t, "w1", T0);
	struct task_ev e = {.worker_id = "w1", .error = "silent for 5000 ms"};
	ck_assert_int_eq(task_transition(t, TASK_EV_WORKER_LOST, &e, T0 + 100), TASK_PENDING);
	ck_assert_int_eq(t->not_before_ms, 0);
	ck_assert_str_eq(t->error, "worker lost: silent for 5000 ms");
	ck_assert_int_eq(assign(t, "w2", T0 + 100), TASK_RUNNING);
	ck_assert_int_eq(t->attempt, 2);
	/* A late loss report about w1 must not touch w2's attempt. */
	ck_assert_int_eq(task_transition(t, TASK_EV_WORKER_LOST, &e, T0 + 200), E_STATE);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	e.worker_id = "w2";
	ck_assert_int_eq(task_transition(t, TASK_EV_WORKER_LOST, &e, T0 + 300), TASK_FAILED);
	ck_assert_ptr_nonnull(strstr(t->error, "gave up after 2 of 2 attempts"));
	ck_assert_ptr_nonnull(strstr(t->error, "worker lost"));
	task_del(t);
}
END_TEST

START_TEST(timeout_retries_with_backoff)
{
	struct task *t = pending();
	t->timeout_ms = 250;
	assign(t, "w1", T0);
	ck_assert_int_eq(ev(t, TASK_EV_TIMEOUT, T0 + 300), TASK_PENDING);
	ck_assert_int_eq(t->not_before_ms, T0 + 300 + 500);
	ck_assert_str_eq(t->error, "timed out after 250 ms");
	task_del(t);
}
END_TEST

START_TEST(permanent_failure_skips_retries)
{
	struct task *t = pending();
	assign(t, "w1", T0);
	struct task_ev e = {.error = "no such handler", .no_retry = 1};
	ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &e, T0 + 1), TASK_FAILED);
	ck_assert_int_eq(t->attempt, 1);
	ck_assert_str_eq(t->error, "no such handler");
	task_del(t);
}
END_TEST

START_TEST(cancel_pending_is_immediate)
{
	struct task *t = pending();
	struct task_ev e = {.error = "user asked"};
	ck_assert_int_eq(task_transition(t, TASK_EV_CANCEL, &e, T0 + 5), TASK_CANCELLED);
	ck_assert_int_eq(t->finished_ms, T0 + 5);
	ck_assert_str_eq(t->error, "user asked");
	task_del(t);
}
END_TEST

START_TEST(cancel_running_asks_the_worker_then_ends_cancelled)
{
	/* However the running attempt ends after a cancel request, the task is
	 * not retried; only a completion that won the race stands. */
	const enum task_event endings[] = {TASK_EV_CANCELLED, TASK_EV_FAIL, TASK_EV_WORKER_LOST,
	                                   TASK_EV_TIMEOUT, TASK_EV_COMPLETE};
	const enum task_state expect[] = {TASK_CANCELLED, TASK_CANCELLED, TASK_CANCELLED,
	                                  TASK_CANCELLED, TASK_COMPLETED};
	for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++) {
		struct task *t = pending();
		assign(t, "w1", T0);
		ck_assert_int_eq(ev(t, TASK_EV_CANCEL, T0 + 1), TASK_RUNNING);
		ck_assert(t->cancel_requested);
		/* Asking twice is harmless. */
		ck_assert_int_eq(ev(t, TASK_EV_CANCEL, T0 + 2), TASK_RUNNING);
		ck_assert_int_eq(ev(t, endings[i], T0 + 3), expect[i]);
		ck_assert_int_eq(t->status, expect[i]);
		ck_assert_int_eq(t->attempt, 1);
		ck_assert(!t->cancel_requested);
		ck_assert_int_eq(t->finished_ms, T0 + 3);
		task_del(t);
	}
}
END_TEST

START_TEST(worker_stopping_on_its_own_is_retried)
{
	struct task *t = pending();
	assign(t, "w1", T0);
	ck_assert_int_eq(ev(t, TASK_EV_CANCELLED, T0 + 1), TASK_PENDING);
	ck_assert_int_eq(t->not_before_ms, 0);
	ck_assert_str_eq(t->error, "stopped by the worker");
	task_del(t);
}
END_TEST

START_TEST(cancel_of_finished_task_is_refused)
{
	const enum task_state finals[] = {TASK_COMPLETED, TASK_FAILED, TASK_CANCELLED};
	for (size_t i = 0; i < 3; i++) {
		struct task *t = in_state(finals[i]);
		ck_assert_int_eq(ev(t, TASK_EV_CANCEL, T0 + 100), E_STATE);
		ck_assert_int_eq(t->status, finals[i]);
		task_del(t);
	}
}
END_TEST

START_TEST(every_state_event_pair_is_legal_or_refused_unchanged)
{
	const enum task_state states[] = {TASK_PENDING, TASK_RUNNING, TASK_COMPLETED, TASK_FAILED,
	                                  TASK_CANCELLED};
	const enum task_event events[] = {TASK_EV_ASSIGN,      TASK_EV_COMPLETE, TASK_EV_FAIL,
	                                  TASK_EV_WORKER_LOST, TASK_EV_TIMEOUT,  TASK_EV_CANCEL,
	                                  TASK_EV_CANCELLED};
	/* The state each legal pair leads to (a fresh task, attempt 1 of 3);
	 * 0 = illegal. */
	const int next[5][7] = {
	    /* PENDING */ {TASK_RUNNING, 0, 0, 0, 0, TASK_CANCELLED, 0},
	    /* RUNNING */
	    {0, TASK_COMPLETED, TASK_PENDING, TASK_PENDING, TASK_PENDING, TASK_RUNNING,
	     TASK_PENDING},
	    /* COMPLETED */ {0, 0, 0, 0, 0, 0, 0},
	    /* FAILED */ {0, 0, 0, 0, 0, 0, 0},
	    /* CANCELLED */ {0, 0, 0, 0, 0, 0, 0},
	};
	for (size_t s = 0; s < 5; s++) {
		for (size_t e = 0; e < 7; e++) {
			struct task *t = in_state(states[s]);
			struct task *before = task_clone(t);
			int r = ev(t, events[e], T0 + 1000);
			if (next[s][e]) {
				ck_assert_msg(r == next[s][e], "%s + %s gave %d",
				              task_state_name(states[s]),
				              task_event_name(events[e]), r);
				ck_assert_int_eq(t->status, next[s][e]);
			} else {
				ck_assert_msg(r == E_STATE, "%s + %s accepted (%d)",
				              task_state_name(states[s]),
				              task_event_name(events[e]), r);
				ck_assert_int_eq(t->status, before->status);
				ck_assert_int_eq(t->attempt, before->attempt);
				ck_assert_int_eq(t->finished_ms, before->finished_ms);
				ck_assert_int_eq(t->not_before_ms, before->not_before_ms);
				ck_assert_str_eq(t->error ? t->error : "",
				                 before->error ? before->error : "");
			}
			task_del(before);
			task_del(t);
		}
	}
	struct task *t = pending();
	ck_assert_int_eq(ev(t, (enum task_event)99, T0), -EINVAL);
	ck_assert_int_eq(t->status, TASK_PENDING);
	task_del(t);
}
END_TEST

START_TEST(stale_results_are_refused)
{
	struct task *t = pending();
	assign(t, "w1", T0);
	struct task_ev wrong_worker = {.worker_id = "w9"};
	struct task_ev wrong_attempt = {.worker_id = "w1", .attempt = 2};
	ck_assert_int_eq(task_transition(t, TASK_EV_COMPLETE, &wrong_worker, T0 + 1), E_STATE);
	ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &wrong_attempt, T0 + 1), E_STATE);
	ck_assert_int_eq(t->status, TASK_RUNNING);
	struct task_ev right = {.worker_id = "w1", .attempt = 1};
	ck_assert_int_eq(task_transition(t, TASK_EV_COMPLETE, &right, T0 + 2), TASK_COMPLETED);
	/* The same result sent again (e.g. after a reconnect) is refused. */
	ck_assert_int_eq(task_transition(t, TASK_EV_COMPLETE, &right, T0 + 3), E_STATE);
	ck_assert_int_eq(t->finished_ms, T0 + 2);
	task_del(t);
}
END_TEST

START_TEST(policy_and_task_set_the_attempt_budget)
{
	struct task_policy p = {
	    .default_max_attempts = 1, .backoff_base_ms = 10, .backoff_max_ms = 40};
	struct task *t = pending();
	struct task_ev a = {.worker_id = "w1", .policy = &p};
	struct task_ev f = {.error = "x", .policy = &p};
	ck_assert_int_eq(task_transition(t, TASK_EV_ASSIGN, &a, T0), TASK_RUNNING);
	ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &f, T0), TASK_FAILED);
	task_del(t);

	t = pending();
	t->max_attempts = 5; /* the task's own value wins */
	for (int i = 1; i < 5; i++) {
		ck_assert_int_eq(task_transition(t, TASK_EV_ASSIGN, &a, t->not_before_ms),
		                 TASK_RUNNING);
		ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &f, t->started_ms), TASK_PENDING);
	}
	ck_assert_int_eq(t->not_before_ms - t->started_ms, 40); /* capped */
	ck_assert_int_eq(task_transition(t, TASK_EV_ASSIGN, &a, t->not_before_ms), TASK_RUNNING);
	ck_assert_int_eq(task_transition(t, TASK_EV_FAIL, &f, T0), TASK_FAILED);
	ck_assert_int_eq(t->attempt, 5);
	task_del(t);

	/* A pending task that somehow has no attempts left cannot start. */
	t = pending();
	t->attempt = 3;
	ck_assert_int_eq(assign(t, "w1", T0), E_STATE);
	task_del(t);
}
END_TEST

START_TEST(backoff_doubles_up_to_the_cap)
{
	ck_assert_int_eq(task_backoff_ms(NULL, 1), 500);
	ck_assert_int_eq(task_backoff_ms(NULL, 2), 1000);
	ck_assert_int_eq(task_backoff_ms(NULL, 3), 2000);
	ck_assert_int_eq(task_backoff_ms(NULL, 7), 30000);
	ck_assert_int_eq(task_backoff_ms(NULL, 1000000), 30000);
	ck_assert_int_eq(task_backoff_ms(NULL, 0), 500);
}
END_TEST

START_TEST(progress_is_clamped_monotonic_and_per_attempt)
{
	struct task *t = pending();
	ck_assert_int_eq(task_progress(t, 0, 10, NULL), E_STATE);
	assign(t, "w1", T0);
	ck_assert_int_eq(task_progress(t, 1, 30, "a third"), 1);
	ck_assert_int_eq(t->percent, 30);
	ck_assert_str_eq(t->message, "a third");
	ck_assert_int_eq(task_progress(t, 1, 20, NULL), 0); /* never backwards */
	ck_assert_int_eq(t->percent, 30);
	ck_assert_int_eq(task_progress(t, 1, 30, "a third"), 0);
	ck_assert_int_eq(task_progress(t, 1, 250, NULL), 1);
	ck_assert_int_eq(t->percent, 100);
	ck_assert_int_eq(task_progress(t, 2, 50, NULL), E_STATE); /* other attempt */
	/* A retry starts from zero. */
	ck_assert_int_eq(ev(t, TASK_EV_WORKER_LOST, T0 + 1), TASK_PENDING);
	ck_assert_int_eq(t->percent, 0);
	ck_assert_ptr_null(t->message);
	task_del(t);
}
END_TEST

START_TEST(spec_check_says_what_is_wrong)
{
	char err[200];
	ck_assert_int_eq(task_spec_check("echo", 10, 0, 0, 1024, err, sizeof err), 0);
	ck_assert_int_eq(task_spec_check("", 10, 0, 0, 1024, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "name is empty"));
	ck_assert_int_eq(task_spec_check(NULL, 10, 0, 0, 1024, err, sizeof err), -EINVAL);
	ck_assert_int_eq(task_spec_check("echo", 2000, 0, 0, 1024, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "payload is 2000 bytes, the limit is 1024 (--max-payload)");
	ck_assert_int_eq(task_spec_check("echo", 1024, 0, 0, 1024, err, sizeof err), 0);
	ck_assert_int_eq(task_spec_check("echo", 0, -1, 0, 1024, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "max_attempts"));
	ck_assert_int_eq(task_spec_check("echo", 0, 101, 0, 1024, err, sizeof err), -EINVAL);
	ck_assert_int_eq(task_spec_check("echo", 0, 0, -5, 1024, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "timeout_ms"));
	char longname[TASK_NAME_MAX + 2];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ck_assert_int_eq(task_spec_check(longname, 0, 0, 0, 1024, err, 8), -EINVAL);
	ck_assert_uint_eq(strlen(err), 7); /* truncated, terminated */
}
END_TEST

START_TEST(labels_check_bounds_count_and_sizes)
{
	char err[200];
	char key[TASK_LABEL_KEY_MAX + 2] = "", val[TASK_LABEL_VALUE_MAX + 2] = "";
	memset(key, 'k', sizeof key - 1);
	memset(val, 'v', sizeof val - 1);
	key[TASK_LABEL_KEY_MAX] = val[TASK_LABEL_VALUE_MAX] = '\0';
	struct task_label l[TASK_LABELS_MAX + 1];
	for (size_t i = 0; i <= TASK_LABELS_MAX; i++)
		l[i] = (struct task_label){key, val};
	/* At every limit: accepted. */
	ck_assert_int_eq(task_labels_check(l, TASK_LABELS_MAX, err, sizeof err), 0);
	ck_assert_int_eq(task_labels_check(NULL, 0, err, sizeof err), 0);
	/* One past any: refused, saying which. */
	ck_assert_int_eq(task_labels_check(l, TASK_LABELS_MAX + 1, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "65 labels, the limit is 64");
	key[TASK_LABEL_KEY_MAX] = 'k';
	ck_assert_int_eq(task_labels_check(l, 1, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "129 bytes, the limit is 128"));
	key[TASK_LABEL_KEY_MAX] = '\0';
	val[TASK_LABEL_VALUE_MAX] = 'v';
	ck_assert_int_eq(task_labels_check(l, 1, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "value is 1025 bytes"));
	struct task_label empty[] = {{"a", "b"}, {"", "x"}, {NULL, NULL}};
	ck_assert_int_eq(task_labels_check(empty, 2, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "label 2 has an empty key");
	ck_assert_int_eq(task_labels_check(empty + 2, 1, err, sizeof err), -EINVAL);
}
END_TEST

START_TEST(clone_is_deep_and_labels_round_trip)
{
	struct task *t = pending();
	task_set_str(&t->description, "make it small");
	task_set_str(&t->idempotency_key, "");
	ck_assert_ptr_null(t->idempotency_key); /* "" is stored as NULL */
	task_set_bytes(&t->payload, &t->payload_len, "\x00\x01\x02", 3);
	task_add_label(t, "team", "imaging");
	task_add_label(t, "env", NULL);
	struct task *c = task_clone(t);
	ck_assert_ptr_ne(c->payload, t->payload);
	ck_assert_mem_eq(c->payload, "\x00\x01\x02", 3);
	ck_assert_str_eq(task_label(c, "team"), "imaging");
	ck_assert_str_eq(task_label(c, "env"), "");
	ck_assert_ptr_null(task_label(c, "nope"));
	task_set_str(&c->description, "other");
	ck_assert_str_eq(t->description, "make it small");
	ck_assert_str_eq(c->id, t->id);
	task_del(t);
	task_del(c);
}
END_TEST

START_TEST(names_cover_every_value)
{
	ck_assert_str_eq(task_state_name(TASK_PENDING), "PENDING");
	ck_assert_str_eq(task_state_name(TASK_CANCELLED), "CANCELLED");
	ck_assert_str_eq(task_state_name((enum task_state)42), "UNKNOWN");
	ck_assert_str_eq(task_event_name(TASK_EV_WORKER_LOST), "worker_lost");
	ck_assert_str_eq(task_event_name((enum task_event)42), "unknown");
	ck_assert(!task_state_final(TASK_RUNNING));
	ck_assert(task_state_final(TASK_FAILED));
}
END_TEST

START_TEST(state_names_parse_back_in_any_case_and_with_the_proto_prefix)
{
	for (int st = TASK_PENDING; st <= TASK_CANCELLED; st++)
		ck_assert_int_eq(task_state_from_name(task_state_name((enum task_state)st)), st);
	ck_assert_int_eq(task_state_from_name("running"), TASK_RUNNING);
	ck_assert_int_eq(task_state_from_name("Completed"), TASK_COMPLETED);
	ck_assert_int_eq(task_state_from_name("TASK_STATUS_FAILED"), TASK_FAILED);
	ck_assert_int_eq(task_state_from_name("task_status_pending"), TASK_PENDING);
	ck_assert_int_eq(task_state_from_name("UNSPECIFIED"), -1);
	ck_assert_int_eq(task_state_from_name("runnin"), -1);
	ck_assert_int_eq(task_state_from_name(""), -1);
}
END_TEST

Suite *task_suite(void)
{
	Suite *s = suite_create("task");
	TCase *tc = tcase_create("transitions");

	tcase_add_checked_fixture(tc, quiet, NULL);
	tcase_add_test(tc, new_task_is_pending_and_never_run);
	tcase_add_test(tc, assign_starts_an_attempt_with_a_lease);
	tcase_add_test(tc, complete_records_output_and_finish_time);
	tcase_add_test(tc, failure_retries_with_exponential_backoff_then_fails);
	tcase_add_test(tc, worker_loss_requeues_at_once_until_attempts_run_out);
	tcase_add_test(tc, timeout_retries_with_backoff);
	tcase_add_test(tc, permanent_failure_skips_retries);
	tcase_add_test(tc, cancel_pending_is_immediate);
	tcase_add_test(tc, cancel_running_asks_the_worker_then_ends_cancelled);
	tcase_add_test(tc, worker_stopping_on_its_own_is_retried);
	tcase_add_test(tc, cancel_of_finished_task_is_refused);
	tcase_add_test(tc, every_state_event_pair_is_legal_or_refused_unchanged);
	tcase_add_test(tc, stale_results_are_refused);
	tcase_add_test(tc, policy_and_task_set_the_attempt_budget);
	tcase_add_test(tc, backoff_doubles_up_to_the_cap);
	tcase_add_test(tc, progress_is_clamped_monotonic_and_per_attempt);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_add_test(tc, spec_check_says_what_is_wrong);
	tcase_add_test(tc, labels_check_bounds_count_and_sizes);
	tcase_add_test(tc, clone_is_deep_and_labels_round_trip);
	tcase_add_test(tc, names_cover_every_value);
	tcase_add_test(tc, state_names_parse_back_in_any_case_and_with_the_proto_prefix);
	suite_add_tcase(s, tc);
	return s;
}
