/* Unit tests for lib/human: durations at every unit boundary, sizes, UTC
 * timestamps. */
#include <check.h>

#include "human.h"

static const char *dur(int64_t ms)
{
	static char buf[HUMAN_BUFLEN];
	return human_duration(ms, buf, sizeof buf);
}

START_TEST(durations_use_at_most_two_units)
{
	ck_assert_str_eq(dur(0), "0ms");
	ck_assert_str_eq(dur(-5), "0ms");
	ck_assert_str_eq(dur(850), "850ms");
	ck_assert_str_eq(dur(999), "999ms");
	ck_assert_str_eq(dur(1000), "1.0s");
	ck_assert_str_eq(dur(1250), "1.2s");
	ck_assert_str_eq(dur(9999), "9.9s");
	ck_assert_str_eq(dur(10000), "10s");
	ck_assert_str_eq(dur(59999), "59s");
	ck_assert_str_eq(dur(60000), "1m00s");
	ck_assert_str_eq(dur(185000), "3m05s");
	ck_assert_str_eq(dur(3600000), "1h00m");
	ck_assert_str_eq(dur(7380000), "2h03m");
	ck_assert_str_eq(dur(86400000), "1d00h");
	ck_assert_str_eq(dur(4 * 86400000LL + 2 * 3600000), "4d02h");
}
END_TEST

START_TEST(sizes_pick_a_binary_unit)
{
	char buf[HUMAN_BUFLEN];
	ck_assert_str_eq(human_size(0, buf, sizeof buf), "0 B");
	ck_assert_str_eq(human_size(1023, buf, sizeof buf), "1023 B");
	ck_assert_str_eq(human_size(1536, buf, sizeof buf), "1.5 KiB");
	ck_assert_str_eq(human_size(20u << 20, buf, sizeof buf), "20 MiB");
	ck_assert_str_eq(human_size(3ull << 30, buf, sizeof buf), "3.0 GiB");
}
END_TEST

START_TEST(times_are_utc_iso8601)
{
	char buf[HUMAN_BUFLEN];
	ck_assert_str_eq(human_time(0, buf, sizeof buf), "-");
	ck_assert_str_eq(human_time(1700000000123LL, buf, sizeof buf), "2023-11-14T22:13:20Z");
}
END_TEST

Suite *human_suite(void)
{
	Suite *s = suite_create("human");
	TCase *tc = tcase_create("human");
	tcase_add_test(tc, durations_use_at_most_two_units);
	tcase_add_test(tc, sizes_pick_a_binary_unit);
	tcase_add_test(tc, times_are_utc_iso8601);
	suite_add_tcase(s, tc);
	return s;
}
