/* Unit tests for lib/error: every code has its own text, errno passes through. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "error.h"

START_TEST(own_codes_have_distinct_text)
{
	for (int a = E_CONNECT; a <= E_PROTO; a++) {
		ck_assert_str_ne(err_str(a), "unknown error");
		for (int b = E_CONNECT; b < a; b++)
			ck_assert_str_ne(err_str(a), err_str(b));
	}
}
END_TEST

START_TEST(negative_errno_maps_to_strerror)
{
	ck_assert_str_eq(err_str(-ENOENT), strerror(ENOENT));
	ck_assert_str_eq(err_str(-ECONNREFUSED), strerror(ECONNREFUSED));
}
END_TEST

START_TEST(zero_and_strays)
{
	ck_assert_str_eq(err_str(0), "success");
	ck_assert_str_eq(err_str(5), "unknown error");
	ck_assert_str_eq(err_str(E_CONNECT - 1), "unknown error");
	ck_assert_str_eq(err_str(-1000), "unknown error");
}
END_TEST

Suite *error_suite(void)
{
	Suite *s = suite_create("error");
	TCase *tc = tcase_create("err_str");

	tcase_add_test(tc, own_codes_have_distinct_text);
	tcase_add_test(tc, negative_errno_maps_to_strerror);
	tcase_add_test(tc, zero_and_strays);
	suite_add_tcase(s, tc);
	return s;
}
