/* Unit tests for lib/coalesce: direct sends while the consumer keeps up,
 * latest-wins while it is full, finals never lost, consumer errors, and
 * a long fast stream into a slow consumer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coalesce.h"
#include "error.h"

/* A consumer with room for `room` messages before it says full; `refuse`
 * makes it answer E_AGAIN (full before taking), `gone` a hard error. */
struct consumer {
	int room;
	int refuse;
	int gone;
	int n;
	char got[64][16];
};

static int consume(const void *msg, size_t len, void *arg)
{
	struct consumer *k = arg;
	if (k->gone)
		return E_CLOSED;
	if (k->refuse || k->room == 0)
		return E_AGAIN;
	ck_assert_uint_lt(len, sizeof k->got[0]);
	int i = k->n++ % 64;
	memcpy(k->got[i], msg, len);
	k->got[i][len] = '\0';
	k->room--;
	return k->room == 0 ? COALESCE_SENT_FULL : COALESCE_SENT;
}

static const char *last(const struct consumer *k)
{
	return k->got[(k->n - 1) % 64];
}

static void offer(struct coalesce *c, const char *s, int final)
{
	ck_assert_int_eq(coalesce_offer(c, s, strlen(s), final), 0);
}

START_TEST(sends_at_once_while_the_consumer_keeps_up)
{
	struct consumer k = {.room = 100};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "a", 0);
	offer(&c, "b", 0);
	offer(&c, "c", 1);
	ck_assert_int_eq(k.n, 3);
	ck_assert_str_eq(k.got[0], "a");
	ck_assert_str_eq(k.got[2], "c");
	ck_assert_int_eq(coalesce_pending(&c), 0);
	ck_assert_uint_eq(c.sent, 3);
	ck_assert_uint_eq(c.replaced, 0);
	coalesce_free(&c);
}
END_TEST

START_TEST(latest_wins_while_the_consumer_is_full)
{
	struct consumer k = {.room = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "1", 0); /* taken, and now the consumer is full */
	ck_assert_int_eq(k.n, 1);
	char s[16];
	for (int i = 2; i <= 100; i++) {
		snprintf(s, sizeof s, "%d", i);
		offer(&c, s, 0);
	}
	ck_assert_int_eq(k.n, 1);
	ck_assert_int_eq(coalesce_pending(&c), 1);
	ck_assert_uint_eq(c.replaced, 98);
	k.room = 10;
	ck_assert_int_eq(coalesce_writable(&c), 0);
	ck_assert_int_eq(k.n, 2);
	ck_assert_str_eq(last(&k), "100");
	ck_assert_int_eq(coalesce_pending(&c), 0);
	/* Writable again: the next offer goes straight out. */
	offer(&c, "101", 0);
	ck_assert_int_eq(k.n, 3);
	coalesce_free(&c);
}
END_TEST

START_TEST(a_final_message_is_never_replaced_by_a_later_one)
{
	struct consumer k = {.room = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "first", 0);
	offer(&c, "50%", 0);
	offer(&c, "done", 1);
	offer(&c, "stray", 0); /* a producer bug: progress after the end */
	ck_assert_uint_eq(c.dropped, 1);
	ck_assert_uint_eq(c.replaced, 1);
	k.room = 1;
	coalesce_writable(&c);
	ck_assert_str_eq(last(&k), "done");
	ck_assert_int_eq(coalesce_pending(&c), 0);
	coalesce_free(&c);
}
END_TEST

START_TEST(a_later_final_replaces_an_earlier_final)
{
	struct consumer k = {.room = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "x", 0);
	offer(&c, "final-1", 1);
	offer(&c, "final-2", 1);
	k.room = 5;
	coalesce_writable(&c);
	ck_assert_str_eq(last(&k), "final-2");
	coalesce_free(&c);
}
END_TEST

START_TEST(not_taken_is_kept_until_writable)
{
	struct consumer k = {.room = 10, .refuse = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "a", 0);
	ck_assert_int_eq(k.n, 0);
	ck_assert_int_eq(coalesce_pending(&c), 1);
	/* Still refusing when told writable: kept, and still blocked. */
	ck_assert_int_eq(coalesce_writable(&c), 0);
	ck_assert_int_eq(coalesce_pending(&c), 1);
	offer(&c, "b", 0);
	ck_assert_int_eq(k.n, 0);
	k.refuse = 0;
	ck_assert_int_eq(coalesce_writable(&c), 0);
	ck_assert_int_eq(k.n, 1);
	ck_assert_str_eq(last(&k), "b");
	coalesce_free(&c);
}
END_TEST

START_TEST(a_gone_consumer_is_reported_and_nothing_is_kept)
{
	struct consumer k = {.room = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	offer(&c, "a", 0);
	offer(&c, "b", 0);
	k.gone = 1;
	ck_assert_int_eq(coalesce_writable(&c), E_CLOSED);
	ck_assert_int_eq(coalesce_pending(&c), 0);
	ck_assert_int_eq(coalesce_offer(&c, "c", 1, 0), E_CLOSED);
	ck_assert_int_eq(coalesce_pending(&c), 0);
	coalesce_free(&c);
	coalesce_free(&c); /* twice is harmless */
}
END_TEST

START_TEST(ten_thousand_into_a_slow_consumer_keep_one_and_end_with_the_last)
{
	struct consumer k = {.room = 1};
	struct coalesce c;
	coalesce_init(&c, consume, &k);
	char s[16];
	for (int i = 1; i <= 10000; i++) {
		snprintf(s, sizeof s, "%d", i);
		offer(&c, s, i == 10000);
		ck_assert_uint_le(c.cap, 8); /* one message, never a backlog */
		if (i % 100 == 0) {
			k.room = 1;
			coalesce_writable(&c);
		}
	}
	k.room = 1;
	coalesce_writable(&c);
	ck_assert_str_eq(last(&k), "10000");
	ck_assert_int_eq(coalesce_pending(&c), 0);
	ck_assert_uint_eq(c.sent + c.replaced, 10000);
	ck_assert_uint_lt(c.sent, 200);
	coalesce_free(&c);
}
END_TEST

Suite *coalesce_suite(void)
{
	Suite *s = suite_create("coalesce");
	TCase *tc = tcase_create("coalesce");

	tcase_add_test(tc, sends_at_once_while_the_consumer_keeps_up);
	tcase_add_test(tc, latest_wins_while_the_consumer_is_full);
	tcase_add_test(tc, a_final_message_is_never_replaced_by_a_later_one);
	tcase_add_test(tc, a_later_final_replaces_an_earlier_final);
	tcase_add_test(tc, not_taken_is_kept_until_writable);
	tcase_add_test(tc, a_gone_consumer_is_reported_and_nothing_is_kept);
	tcase_add_test(tc, ten_thousand_into_a_slow_consumer_keep_one_and_end_with_the_last);
	suite_add_tcase(s, tc);
	return s;
}
