/* Unit tests for lib/status: names, the two protocol mappings, grpc-status parsing. */
#include <check.h>
#include <string.h>

#include "status.h"

START_TEST(names_round_trip)
{
	for (int i = 0; i <= GRPC_STATUS_UNAUTHENTICATED; i++)
		ck_assert_int_eq(status_from_name(status_name(i)), i);
	ck_assert_str_eq(status_name(GRPC_STATUS_OK), "OK");
	ck_assert_str_eq(status_name(GRPC_STATUS_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
	ck_assert_str_eq(status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
}
END_TEST

START_TEST(name_out_of_range_is_unknown)
{
	ck_assert_str_eq(status_name(-1), "UNKNOWN");
	ck_assert_str_eq(status_name(17), "UNKNOWN");
	ck_assert_str_eq(status_name(1000), "UNKNOWN");
}
END_TEST

START_TEST(from_name_case_insensitive_and_numeric)
{
	ck_assert_int_eq(status_from_name("not_found"), GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(status_from_name("Unavailable"), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_name("14"), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_name("0"), GRPC_STATUS_OK);
	ck_assert_int_eq(status_from_name("16"), GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_eq(status_from_name("17"), -1);
	ck_assert_int_eq(status_from_name(""), -1);
	ck_assert_int_eq(status_from_name("NOPE"), -1);
	ck_assert_int_eq(status_from_name("OK "), -1);
	ck_assert_int_eq(status_from_name("-1"), -1);
	ck_assert_int_eq(status_from_name("1a"), -1);
}
END_TEST

START_TEST(http_mapping)
{
	ck_assert_int_eq(status_from_http(400), GRPC_STATUS_INTERNAL);
	ck_assert_int_eq(status_from_http(401), GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_eq(status_from_http(403), GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(status_from_http(404), GRPC_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(status_from_http(429), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_http(502), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_http(503), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_http(504), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_http(500), GRPC_STATUS_UNKNOWN);
	ck_assert_int_eq(status_from_http(200), GRPC_STATUS_UNKNOWN);
	ck_assert_int_eq(status_from_http(418), GRPC_STATUS_UNKNOWN);
}
END_TEST

START_TEST(h2_error_mapping)
{
	for (uint32_t c = 0x0; c <= 0x6; c++) /* NO_ERROR .. FRAME_SIZE_ERROR */
		ck_assert_int_eq(status_from_h2_error(c), GRPC_STATUS_INTERNAL);
	ck_assert_int_eq(status_from_h2_error(0x7), GRPC_STATUS_UNAVAILABLE);
	ck_assert_int_eq(status_from_h2_error(0x8), GRPC_STATUS_CANCELLED);
	ck_assert_int_eq(status_from_h2_error(0x9), GRPC_STATUS_INTERNAL);
	ck_assert_int_eq(status_from_h2_error(0xa), GRPC_STATUS_INTERNAL);
	ck_assert_int_eq(status_from_h2_error(0xb), GRPC_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_int_eq(status_from_h2_error(0xc), GRPC_STATUS_PERMISSION_DENIED);
	ck_assert_int_eq(status_from_h2_error(0xdead), GRPC_STATUS_INTERNAL);
}
END_TEST

static int parse(const char *s)
{
	return status_parse(s, strlen(s));
}

START_TEST(parse_grpc_status)
{
	ck_assert_int_eq(parse("0"), 0);
	ck_assert_int_eq(parse("14"), 14);
	ck_assert_int_eq(parse("007"), 7);
	ck_assert_int_eq(parse("99"), 99);
	ck_assert_int_eq(parse("2147483647"), 2147483647);
	ck_assert_int_eq(parse("2147483648"), -1);
	ck_assert_int_eq(parse("99999999999999999999"), -1);
	ck_assert_int_eq(parse(""), -1);
	ck_assert_int_eq(parse("-1"), -1);
	ck_assert_int_eq(parse("+1"), -1);
	ck_assert_int_eq(parse(" 1"), -1);
	ck_assert_int_eq(parse("1 "), -1);
	ck_assert_int_eq(parse("0x1"), -1);
	/* Only len bytes count: the value need not be NUL-terminated. */
	ck_assert_int_eq(status_parse("13xyz", 2), 13);
}
END_TEST

START_TEST(format_round_trips_through_parse)
{
	static const int codes[] = {0, 1, 9, 10, 16, 99, 100, 12345, STATUS_PARSE_MAX};
	char buf[STATUS_BUFLEN];
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		size_t n = status_format(codes[i], buf);
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_int_eq(status_parse(buf, n), codes[i]);
	}
	ck_assert_uint_eq(status_format(0, buf), 1);
	ck_assert_str_eq(buf, "0");
	ck_assert_uint_eq(status_format(14, buf), 2);
	ck_assert_str_eq(buf, "14");
	status_format(-1, buf);
	ck_assert_str_eq(buf, "2");
}
END_TEST

Suite *status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("status");

	tcase_add_test(tc, names_round_trip);
	tcase_add_test(tc, name_out_of_range_is_unknown);
	tcase_add_test(tc, from_name_case_insensitive_and_numeric);
	tcase_add_test(tc, http_mapping);
	tcase_add_test(tc, h2_error_mapping);
	tcase_add_test(tc, parse_grpc_status);
	tcase_add_test(tc, format_round_trips_through_parse);
	suite_add_tcase(s, tc);
	return s;
}
