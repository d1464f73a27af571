/* Unit tests for lib/utf8: decoding and its rejections (overlong,
 * surrogates, out of range, truncated), terminal columns of narrow, wide
 * and combining text, and fitting a prefix without splitting a character. */
#include <check.h>
#include <string.h>

#include "utf8.h"

START_TEST(decodes_one_to_four_byte_sequences)
{
	uint32_t cp = 0;
	ck_assert_int_eq(utf8_decode("A", 1, &cp), 1);
	ck_assert_uint_eq(cp, 'A');
	ck_assert_int_eq(utf8_decode("\xC3\xA9", 2, &cp), 2); /* é */
	ck_assert_uint_eq(cp, 0xE9);
	ck_assert_int_eq(utf8_decode("\xE2\x82\xAC", 3, &cp), 3); /* € */
	ck_assert_uint_eq(cp, 0x20AC);
	ck_assert_int_eq(utf8_decode("\xF0\x9F\x98\x80", 4, &cp), 4); /* 😀 */
	ck_assert_uint_eq(cp, 0x1F600);
}
END_TEST

START_TEST(rejects_malformed_sequences)
{
	uint32_t cp = 7;
	ck_assert_int_eq(utf8_decode("\x80", 1, &cp), -1);             /* lone continuation */
	ck_assert_int_eq(utf8_decode("\xC0\xAF", 2, &cp), -1);         /* overlong '/' */
	ck_assert_int_eq(utf8_decode("\xE0\x80\xAF", 3, &cp), -1);     /* overlong */
	ck_assert_int_eq(utf8_decode("\xED\xA0\x80", 3, &cp), -1);     /* surrogate */
	ck_assert_int_eq(utf8_decode("\xF4\x90\x80\x80", 4, &cp), -1); /* > U+10FFFF */
	ck_assert_int_eq(utf8_decode("\xE2\x82", 2, &cp), -1);         /* truncated */
	ck_assert_int_eq(utf8_decode("\xC3(", 2, &cp), -1);            /* bad continuation */
	ck_assert_int_eq(utf8_decode("\xFF", 1, &cp), -1);
	ck_assert_uint_eq(cp, 7); /* untouched */
	ck_assert(utf8_valid("plain \xC3\xA9t\xC3\xA9", 11));
	ck_assert(utf8_valid("", 0));
	ck_assert(utf8_valid("a\0b", 3)); /* NUL is a character */
	ck_assert(!utf8_valid("ok\xFF", 3));
	ck_assert(!utf8_valid("\xE2\x82\xAC\xE2\x82", 5));
}
END_TEST

START_TEST(counts_terminal_columns)
{
	ck_assert_uint_eq(utf8_cols("abc", 3), 3);
	ck_assert_uint_eq(utf8_cols("\xC3\xA9t\xC3\xA9", 5), 3);        /* été */
	ck_assert_uint_eq(utf8_cols("e\xCC\x81", 3), 1);                /* e + combining acute */
	ck_assert_uint_eq(utf8_cols("\xE6\x97\xA5\xE6\x9C\xAC", 6), 4); /* 日本 */
	ck_assert_uint_eq(utf8_cols("\xF0\x9F\x98\x80", 4), 2);         /* emoji */
	ck_assert_uint_eq(utf8_cols("a\xFF\xFE", 3), 3);                /* invalid bytes: 1 each */
}
END_TEST

START_TEST(fits_prefixes_without_splitting_characters)
{
	const char *s = "ab\346\227\245\346\234\254cd"; /* ab日本cd: 8 columns */
	size_t n = strlen(s);
	ck_assert_uint_eq(utf8_fit(s, n, 100), n);
	ck_assert_uint_eq(utf8_fit(s, n, 2), 2);
	ck_assert_uint_eq(utf8_fit(s, n, 3), 2); /* 日 needs 2 columns */
	ck_assert_uint_eq(utf8_fit(s, n, 4), 5);
	ck_assert_uint_eq(utf8_fit(s, n, 0), 0);
	ck_assert_uint_eq(utf8_fit("\xC3\xA9\xC3\xA9", 4, 1), 2);
}
END_TEST

Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("utf8");
	tcase_add_test(tc, decodes_one_to_four_byte_sequences);
	tcase_add_test(tc, rejects_malformed_sequences);
	tcase_add_test(tc, counts_terminal_columns);
	tcase_add_test(tc, fits_prefixes_without_splitting_characters);
	suite_add_tcase(s, tc);
	return s;
}
