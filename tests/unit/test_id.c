/* Unit tests for lib/id: format, time round trip, strict order, validation,
 * time bounds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "id.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(new_id_is_well_formed_and_carries_the_clock)
{
	char id[ID_LEN + 1];
	int64_t before = now_ms();
	id_new(id);
	int64_t after = now_ms();
	ck_assert_uint_eq(strlen(id), ID_LEN);
	ck_assert(id_valid(id));
	ck_assert_int_ge(id_time_ms(id), before);
	ck_assert_int_le(id_time_ms(id), after);
}
END_TEST

START_TEST(time_round_trips_through_the_string)
{
	/* Ascending, since the id clock never goes backwards. */
	int64_t base = now_ms();
	const int64_t times[] = {base, base + 1, base + 1000, base + 86400000};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char id[ID_LEN + 1];
		id_new_at(times[i], id);
		ck_assert(id_valid(id));
		ck_assert_int_eq(id_time_ms(id), times[i]);
	}
}
END_TEST

START_TEST(ids_sort_strictly_in_creation_order)
{
	enum { N = 100000 };
	char(*ids)[ID_LEN + 1] = malloc(N * sizeof *ids);
	int64_t t = now_ms();
	for (int i = 0; i < N; i++)
		/* Many per millisecond, and a clock that jumps back now and
		 * then: order must hold regardless. */
		id_new_at(t + i / 1000 - (i % 777 == 0 ? 5000 : 0), ids[i]);
	for (int i = 1; i < N; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) < 0, "%s !< %s at %d", ids[i - 1], ids[i],
		              i);
	free(ids);
}
END_TEST

START_TEST(clock_going_backwards_does_not_reorder)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];
	int64_t t = now_ms() + 10000;
	id_new_at(t, a);
	id_new_at(t - 5000, b);
	ck_assert_str_lt(a, b);
	ck_assert_int_eq(id_time_ms(b), id_time_ms(a));
}
END_TEST

START_TEST(validation_rejects_malformed_ids)
{
	char id[ID_LEN + 1];
	id_new(id);
	ck_assert(id_valid(id));
	ck_assert(!id_valid(NULL));
	ck_assert(!id_valid(""));
	ck_assert_int_eq(id_time_ms("nope"), -1);

	char bad[ID_LEN + 2];
	memcpy(bad, id, sizeof id);
	bad[ID_LEN - 1] = '\0'; /* too short */
	ck_assert(!id_valid(bad));
	memcpy(bad, id, sizeof id);
	bad[ID_LEN] = 'A'; /* too long */
	bad[ID_LEN + 1] = '\0';
	ck_assert(!id_valid(bad));
	const char excluded[] = {'I', 'L', 'O', 'U', 'a', '-', '~'};
	for (size_t i = 0; i < sizeof excluded; i++) {
		memcpy(bad, id, sizeof id);
		bad[5] = excluded[i];
		ck_assert_msg(!id_valid(bad), "accepted '%c'", excluded[i]);
	}
	/* The first character holds only 3 bits. */
	memcpy(bad, id, sizeof id);
	bad[0] = '8';
	ck_assert(!id_valid(bad));
}
END_TEST

START_TEST(first_id_of_a_millisecond_bounds_it)
{
	char first[ID_LEN + 1], next[ID_LEN + 1], before[ID_LEN + 1], at[ID_LEN + 1];
	int64_t t = now_ms();
	id_first_at(t + 100000, next); /* far ahead: must not move the clock */
	id_first_at(t, first);
	id_new_at(t - 1, before);
	id_new_at(t, at);
	ck_assert(id_valid(first));
	ck_assert_int_eq(id_time_ms(first), t);
	ck_assert_int_eq(id_time_ms(at), t);
	ck_assert_str_lt(before, first);
	ck_assert_str_le(first, at);
	ck_assert_str_lt(at, next);
}
END_TEST

START_TEST(largest_time_round_trips)
{
	/* Last in the suite: it moves the never-backwards clock to the end. */
	char id[ID_LEN + 1];
	id_new_at(((int64_t)1 << 48) - 1, id);
	ck_assert(id_valid(id));
	ck_assert_int_eq(id_time_ms(id), ((int64_t)1 << 48) - 1);
	ck_assert_int_eq(id[0], '7');
}
END_TEST

Suite *id_suite(void)
{
	Suite *s = suite_create("id");
	TCase *tc = tcase_create("id");

	tcase_add_test(tc, new_id_is_well_formed_and_carries_the_clock);
	tcase_add_test(tc, time_round_trips_through_the_string);
	tcase_add_test(tc, ids_sort_strictly_in_creation_order);
	tcase_add_test(tc, clock_going_backwards_does_not_reorder);
	tcase_add_test(tc, validation_rejects_malformed_ids);
	tcase_add_test(tc, first_id_of_a_millisecond_bounds_it);
	tcase_add_test(tc, largest_time_round_trips);
	suite_add_tcase(s, tc);
	return s;
}
