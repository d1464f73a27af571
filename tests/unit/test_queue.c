/* Unit tests for lib/queue: priority order, FIFO within a priority, routing
 * by name, removal from the middle, backoff holding, and volume. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "queue.h"
#include "task.h"

static struct task *mk(const char *name, int32_t prio)
{
	struct task *t = task_new(NULL, name, 0);
	t->priority = prio;
	return t;
}

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static const char *const A[] = {"a"};

/* Pops everything ready for names at now_ms, checking that priorities never
 * rise and equal ones come oldest first. Returns how many were popped. */
static size_t drain_in_order(struct queue *q, const char *const *names, int64_t now_ms)
{
	size_t n = 0;
	struct task *p, *prev = NULL;
	while ((p = queue_pop(q, names, 1, now_ms))) {
		if (prev) {
			ck_assert_int_ge(prev->priority, p->priority);
			if (prev->priority == p->priority)
				ck_assert_uint_lt(prev->seq, p->seq);
		}
		prev = p;
		n++;
	}
	return n;
}

START_TEST(higher_priority_first_fifo_within)
{
	struct queue *q = queue_new();
	const int32_t prio[] = {1, 5, 3, 5, 0, 3, 5};
	struct task *t[7];
	for (int i = 0; i < 7; i++) {
		t[i] = mk("a", prio[i]);
		ck_assert_int_eq(queue_push(q, t[i], 0), 0);
	}
	ck_assert_uint_eq(queue_size(q), 7);
	ck_assert_uint_eq(queue_ready(q, "a"), 7);
	const int order[] = {1, 3, 6, 2, 5, 0, 4};
	for (int i = 0; i < 7; i++) {
		ck_assert_ptr_eq(queue_peek(q, A, 1, 0), t[order[i]]);
		ck_assert_ptr_eq(queue_pop(q, A, 1, 0), t[order[i]]);
		ck_assert_int_eq(t[order[i]]->qwhere, 0);
	}
	ck_assert_ptr_null(queue_pop(q, A, 1, 0));
	ck_assert_uint_eq(queue_size(q), 0);
	for (int i = 0; i < 7; i++)
		task_del(t[i]);
	queue_del(q);
}
END_TEST

START_TEST(only_named_tasks_are_handed_out)
{
	struct queue *q = queue_new();
	struct task *a1 = mk("a", 0), *b1 = mk("b", 0), *b2 = mk("b", 9), *c1 = mk("c", 100);
	queue_push(q, a1, 0);
	queue_push(q, b1, 0);
	queue_push(q, b2, 0);
	queue_push(q, c1, 0);
	const char *const ab[] = {"a", "b"};
	const char *const none[] = {"zzz"};
	ck_assert_ptr_null(queue_pop(q, none, 1, 0));
	ck_assert_ptr_null(queue_pop(q, ab, 0, 0));
	/* Across names: highest priority first, then oldest. */
	ck_assert_ptr_eq(queue_pop(q, ab, 2, 0), b2);
	ck_assert_ptr_eq(queue_pop(q, ab, 2, 0), a1);
	ck_assert_ptr_eq(queue_pop(q, ab, 2, 0), b1);
	ck_assert_ptr_null(queue_pop(q, ab, 2, 0));
	ck_assert_uint_eq(queue_ready(q, "c"), 1);
	ck_assert_uint_eq(queue_ready(q, "unknown"), 0);
	task_del(a1);
	task_del(b1);
	task_del(b2);
	queue_del(q);
	/* Tasks left in a deleted queue are free to go. */
	ck_assert_int_eq(c1->qwhere, 0);
	task_del(c1);
}
END_TEST

START_TEST(removal_from_the_middle_keeps_order)
{
	enum { N = 3000 };
	struct queue *q = queue_new();
	struct task **t = malloc(N * sizeof *t);
	uint32_t x = 12345;
	for (int i = 0; i < N; i++) {
		t[i] = mk("a", (int32_t)(rnd(&x) % 20));
		queue_push(q, t[i], 0);
	}
	for (int i = 0; i < N; i += 3)
		ck_assert_int_eq(queue_remove(q, t[i]), 0);
	ck_assert_int_eq(queue_remove(q, t[0]), -ENOENT);
	ck_assert_uint_eq(queue_size(q), N - N / 3);
	/* Exactly the others come out, still in order. */
	ck_assert_uint_eq(drain_in_order(q, A, 0), N - N / 3);
	for (int i = 0; i < N; i++)
		task_del(t[i]);
	free(t);
	queue_del(q);
}
END_TEST

START_TEST(double_push_and_foreign_remove_are_refused)
{
	struct queue *q = queue_new(), *other = queue_new();
	struct task *t = mk("a", 0), *u = mk("a", 0);
	ck_assert_int_eq(queue_push(q, t, 0), 0);
	ck_assert_int_eq(queue_push(q, t, 0), -EEXIST);
	ck_assert_int_eq(queue_push(other, t, 0), -EEXIST);
	ck_assert_int_eq(queue_push(other, u, 0), 0);
	ck_assert_int_eq(queue_remove(q, u), -ENOENT); /* u lives in other */
	ck_assert_int_eq(queue_remove(other, u), 0);
	ck_assert_int_eq(queue_remove(other, u), -ENOENT);
	ck_assert_uint_eq(queue_size(q), 1);
	ck_assert_int_eq(queue_remove(q, t), 0);
	task_del(t);
	task_del(u);
	queue_del(q);
	queue_del(other);
}
END_TEST

START_TEST(backoff_keeps_tasks_out_until_their_time)
{
	struct queue *q = queue_new();
	struct task *late = mk("a", 10), *later = mk("a", 10), *now = mk("a", 0);
	late->not_before_ms = 1000;
	later->not_before_ms = 2000;
	queue_push(q, later, 0);
	queue_push(q, late, 0);
	queue_push(q, now, 0);
	ck_assert_uint_eq(queue_held(q), 2);
	ck_assert_uint_eq(queue_ready(q, "a"), 1);
	ck_assert_uint_eq(queue_size(q), 3);
	ck_assert_int_eq(queue_next_release_ms(q), 1000);
	/* Despite its priority, the held task is not handed out early. */
	ck_assert_ptr_eq(queue_pop(q, A, 1, 999), now);
	ck_assert_ptr_null(queue_pop(q, A, 1, 999));
	ck_assert_ptr_eq(queue_pop(q, A, 1, 1000), late);
	ck_assert_int_eq(queue_next_release_ms(q), 2000);
	/* A held task can be cancelled. */
	ck_assert_int_eq(queue_remove(q, later), 0);
	ck_assert_int_eq(queue_next_release_ms(q), INT64_MAX);
	ck_assert_ptr_null(queue_pop(q, A, 1, 5000));
	/* queue_release moves due tasks without popping them. */
	later->not_before_ms = 3000;
	queue_push(q, later, 0);
	ck_assert_uint_eq(queue_release(q, 2999), 0);
	ck_assert_uint_eq(queue_release(q, 3000), 1);
	ck_assert_uint_eq(queue_ready(q, "a"), 1);
	ck_assert_uint_eq(queue_held(q), 0);
	ck_assert_ptr_eq(queue_pop(q, A, 1, 0), later);
	task_del(late);
	task_del(later);
	task_del(now);
	queue_del(q);
}
END_TEST

START_TEST(a_retried_task_keeps_its_place)
{
	struct queue *q = queue_new();
	struct task *first = mk("a", 1), *second = mk("a", 1);
	queue_push(q, first, 0);
	queue_push(q, second, 0);
	ck_assert_ptr_eq(queue_pop(q, A, 1, 0), first);
	/* first failed and comes back after second was queued. */
	queue_push(q, first, 0);
	ck_assert_ptr_eq(queue_pop(q, A, 1, 0), first);
	ck_assert_ptr_eq(queue_pop(q, A, 1, 0), second);
	task_del(first);
	task_del(second);
	queue_del(q);
}
END_TEST

static int count_names(const char *name, size_t ready, void *arg)
{
	size_t *sum = arg;
	sum[0]++;
	sum[1] += ready;
	return 0;
}

static int stop_at_first(const char *name, size_t ready, void *arg)
{
	return 7;
}

START_TEST(many_names_each_get_their_own_queue)
{
	enum { NAMES = 2000, PER = 3 };
	struct queue *q = queue_new();
	struct task **t = malloc(NAMES * PER * sizeof *t);
	char name[32];
	for (int i = 0; i < NAMES * PER; i++) {
		snprintf(name, sizeof name, "task-%d", i % NAMES);
		t[i] = mk(name, i / NAMES);
		queue_push(q, t[i], 0);
	}
	size_t sum[2] = {0, 0};
	ck_assert_int_eq(queue_foreach_ready(q, count_names, sum), 0);
	ck_assert_uint_eq(sum[0], NAMES);
	ck_assert_uint_eq(sum[1], NAMES * PER);
	ck_assert_int_eq(queue_foreach_ready(q, stop_at_first, NULL), 7);
	for (int n = 0; n < NAMES; n++) {
		snprintf(name, sizeof name, "task-%d", n);
		const char *names[] = {name};
		ck_assert_uint_eq(queue_ready(q, name), PER);
		for (int k = PER - 1; k >= 0; k--)
			ck_assert_ptr_eq(queue_pop(q, names, 1, 0), t[k * NAMES + n]);
	}
	ck_assert_uint_eq(queue_size(q), 0);
	sum[0] = sum[1] = 0;
	queue_foreach_ready(q, count_names, sum);
	ck_assert_uint_eq(sum[0], 0);
	for (int i = 0; i < NAMES * PER; i++)
		task_del(t[i]);
	free(t);
	queue_del(q);
}
END_TEST

START_TEST(hundred_thousand_push_pop)
{
	enum { N = 100000 };
	struct queue *q = queue_new();
	struct task *t = calloc(N, sizeof *t); /* one block: only queue fields used */
	uint32_t x = 777;
	for (int i = 0; i < N; i++) {
		t[i].name = "bulk";
		t[i].priority = (int32_t)(rnd(&x) % 100) - 50;
		if (i % 10 == 0)
			t[i].not_before_ms = rnd(&x) % 1000;
		ck_assert_int_eq(queue_push(q, &t[i], 0), 0);
	}
	ck_assert_uint_eq(queue_size(q), N);
	const char *const names[] = {"bulk"};
	/* Interleave pops with cancels and re-pushes. */
	for (int i = 0; i < N; i += 97)
		if (t[i].qwhere)
			ck_assert_int_eq(queue_remove(q, &t[i]), 0);
	size_t removed = N - queue_size(q);
	for (int i = 0; i < N; i += 97)
		ck_assert_int_eq(queue_push(q, &t[i], 0), 0);
	ck_assert_uint_eq(queue_size(q), N);
	ck_assert_uint_gt(removed, 0);

	size_t n = drain_in_order(q, names, 0);
	ck_assert_uint_eq(queue_held(q), N - n);
	/* The held ones come after their time, in the same order. */
	n += drain_in_order(q, names, 1000);
	ck_assert_uint_eq(n, N);
	ck_assert_uint_eq(queue_size(q), 0);
	free(t);
	queue_del(q);
}
END_TEST

Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("queue");

	tcase_add_test(tc, higher_priority_first_fifo_within);
	tcase_add_test(tc, only_named_tasks_are_handed_out);
	tcase_add_test(tc, removal_from_the_middle_keeps_order);
	tcase_add_test(tc, double_push_and_foreign_remove_are_refused);
	tcase_add_test(tc, backoff_keeps_tasks_out_until_their_time);
	tcase_add_test(tc, a_retried_task_keeps_its_place);
	tcase_add_test(tc, many_names_each_get_their_own_queue);
	tcase_add_test(tc, hundred_thousand_push_pop);
	suite_add_tcase(s, tc);
	return s;
}
