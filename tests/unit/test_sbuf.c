/* Unit tests for lib/sbuf: appends of every kind, growth past the first
 * allocation, printf longer than the stack buffer, reset and detach. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

START_TEST(empty_buffer_reads_as_empty_string)
{
	struct sbuf b;
	sbuf_init(&b);
	ck_assert_str_eq(sbuf_str(&b), "");
	ck_assert_uint_eq(b.len, 0);
	sbuf_free(&b);
	sbuf_free(&b); /* twice is harmless */
}
END_TEST

START_TEST(appends_keep_order_and_nul_termination)
{
	struct sbuf b;
	sbuf_init(&b);
	sbuf_add(&b, "ab", 2);
	sbuf_adds(&b, "cd");
	sbuf_addc(&b, 'e');
	sbuf_addrep(&b, "-", 3);
	sbuf_addrep(&b, "x", 0);
	sbuf_addrep(&b, "x", -1);
	sbuf_addf(&b, "%d%s", 42, "!");
	ck_assert_str_eq(sbuf_str(&b), "abcde---42!");
	ck_assert_uint_eq(b.len, strlen("abcde---42!"));
	sbuf_free(&b);
}
END_TEST

START_TEST(grows_for_long_text_and_long_printf)
{
	struct sbuf b;
	sbuf_init(&b);
	for (int i = 0; i < 1000; i++)
		sbuf_adds(&b, "0123456789");
	ck_assert_uint_eq(b.len, 10000);
	char big[2000];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	sbuf_reset(&b);
	ck_assert_str_eq(sbuf_str(&b), "");
	sbuf_addf(&b, "<%s>", big);
	ck_assert_uint_eq(b.len, sizeof big + 1);
	ck_assert_int_eq(b.s[0], '<');
	ck_assert_int_eq(b.s[b.len - 1], '>');
	ck_assert_int_eq(b.s[b.len], '\0');
	sbuf_free(&b);
}
END_TEST

START_TEST(detach_hands_over_and_empties)
{
	struct sbuf b;
	sbuf_init(&b);
	size_t len = 99;
	char *s = sbuf_detach(&b, &len);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	free(s);
	sbuf_adds(&b, "hello");
	s = sbuf_detach(&b, &len);
	ck_assert_str_eq(s, "hello");
	ck_assert_uint_eq(len, 5);
	ck_assert_ptr_null(b.s);
	free(s);
}
END_TEST

Suite *sbuf_suite(void)
{
	Suite *s = suite_create("sbuf");
	TCase *tc = tcase_create("sbuf");
	tcase_add_test(tc, empty_buffer_reads_as_empty_string);
	tcase_add_test(tc, appends_keep_order_and_nul_termination);
	tcase_add_test(tc, grows_for_long_text_and_long_printf);
	tcase_add_test(tc, detach_hands_over_and_empties);
	suite_add_tcase(s, tc);
	return s;
}
