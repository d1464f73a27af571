/* Unit tests for lib/stats: nearest-rank percentiles at the edges, on
 * unsorted input, after more samples arrive, and on an empty set. */
#include <check.h>

#include "stats.h"

START_TEST(empty_set_reports_zero)
{
	struct stats s;
	stats_init(&s);
	ck_assert_uint_eq(stats_count(&s), 0);
	ck_assert_int_eq(stats_percentile(&s, 50), 0);
	ck_assert_int_eq(stats_max(&s), 0);
	ck_assert_int_eq(stats_min(&s), 0);
	ck_assert(stats_mean(&s) == 0);
	stats_free(&s);
}
END_TEST

START_TEST(one_sample_is_every_percentile)
{
	struct stats s;
	stats_init(&s);
	stats_add(&s, 42);
	ck_assert_int_eq(stats_percentile(&s, 0), 42);
	ck_assert_int_eq(stats_percentile(&s, 50), 42);
	ck_assert_int_eq(stats_percentile(&s, 99.9), 42);
	ck_assert_int_eq(stats_max(&s), 42);
	stats_free(&s);
}
END_TEST

START_TEST(nearest_rank_on_one_to_hundred)
{
	struct stats s;
	stats_init(&s);
	/* 1..100 in a scrambled order: the q-th percentile is q. */
	for (int i = 0; i < 100; i++)
		stats_add(&s, (i * 37) % 100 + 1);
	ck_assert_int_eq(stats_percentile(&s, 50), 50);
	ck_assert_int_eq(stats_percentile(&s, 90), 90);
	ck_assert_int_eq(stats_percentile(&s, 99), 99);
	ck_assert_int_eq(stats_percentile(&s, 99.5), 100);
	ck_assert_int_eq(stats_percentile(&s, 100), 100);
	ck_assert_int_eq(stats_percentile(&s, 0), 1);
	ck_assert_int_eq(stats_percentile(&s, 0.5), 1);
	ck_assert_int_eq(stats_percentile(&s, 1.5), 2);
	ck_assert_int_eq(stats_min(&s), 1);
	ck_assert(stats_mean(&s) == 50.5);
	stats_free(&s);
}
END_TEST

START_TEST(exact_quantiles_do_not_round_up)
{
	struct stats s;
	stats_init(&s);
	for (int i = 1; i <= 10; i++)
		stats_add(&s, i * 10);
	/* rank ceil(0.5 * 10) = 5, not 6; ceil(0.9 * 10) = 9. */
	ck_assert_int_eq(stats_percentile(&s, 50), 50);
	ck_assert_int_eq(stats_percentile(&s, 90), 90);
	ck_assert_int_eq(stats_percentile(&s, 99), 100);
	ck_assert_int_eq(stats_percentile(&s, 10), 10);
	stats_free(&s);
}
END_TEST

START_TEST(out_of_range_quantiles_clamp)
{
	struct stats s;
	stats_init(&s);
	stats_add(&s, 7);
	stats_add(&s, 3);
	ck_assert_int_eq(stats_percentile(&s, -5), 3);
	ck_assert_int_eq(stats_percentile(&s, 250), 7);
	stats_free(&s);
}
END_TEST

START_TEST(samples_added_after_a_query_count)
{
	struct stats s;
	stats_init(&s);
	for (int i = 0; i < 5000; i++)
		stats_add(&s, 5);
	ck_assert_int_eq(stats_max(&s), 5);
	stats_add(&s, 1000000);
	stats_add(&s, -1);
	ck_assert_uint_eq(stats_count(&s), 5002);
	ck_assert_int_eq(stats_max(&s), 1000000);
	ck_assert_int_eq(stats_min(&s), -1);
	ck_assert_int_eq(stats_percentile(&s, 99.99), 1000000);
	ck_assert_int_eq(stats_percentile(&s, 99.9), 5);
	stats_free(&s);
	/* Reusable after free. */
	stats_add(&s, 9);
	ck_assert_int_eq(stats_percentile(&s, 50), 9);
	stats_free(&s);
}
END_TEST

Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	tcase_add_test(tc, empty_set_reports_zero);
	tcase_add_test(tc, one_sample_is_every_percentile);
	tcase_add_test(tc, nearest_rank_on_one_to_hundred);
	tcase_add_test(tc, exact_quantiles_do_not_round_up);
	tcase_add_test(tc, out_of_range_quantiles_clamp);
	tcase_add_test(tc, samples_added_after_a_query_count);
	suite_add_tcase(s, tc);
	return s;
}
