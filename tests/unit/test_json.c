/* Unit tests for lib/json: commas and nesting, escapes of quotes,
 * backslashes and control characters, UTF-8 kept as is and invalid bytes
 * replaced so the output is always valid JSON. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "json.h"

START_TEST(objects_and_arrays_get_their_commas)
{
	struct sbuf b;
	struct json j;
	sbuf_init(&b);
	json_init(&j, &b);
	json_obj_begin(&j);
	json_key(&j, "a");
	json_int(&j, 1);
	json_key(&j, "b");
	json_arr_begin(&j);
	json_str(&j, "x");
	json_bool(&j, 0);
	json_null(&j);
	json_obj_begin(&j);
	json_obj_end(&j);
	json_arr_end(&j);
	json_key(&j, "c");
	json_arr_begin(&j);
	json_arr_end(&j);
	json_key(&j, "d");
	json_int(&j, INT64_MIN);
	json_obj_end(&j);
	ck_assert_str_eq(
	    sbuf_str(&b),
	    "{\"a\":1,\"b\":[\"x\",false,null,{}],\"c\":[],\"d\":-9223372036854775808}");
	sbuf_free(&b);
}
END_TEST

START_TEST(a_null_string_is_written_as_empty)
{
	struct sbuf b;
	struct json j;
	sbuf_init(&b);
	json_init(&j, &b);
	json_str(&j, NULL);
	ck_assert_str_eq(sbuf_str(&b), "\"\"");
	sbuf_free(&b);
}
END_TEST

static const char *esc(struct sbuf *b, const char *s, size_t n)
{
	sbuf_reset(b);
	json_escape(b, s, n);
	return sbuf_str(b);
}

START_TEST(escapes_quotes_backslashes_and_controls)
{
	struct sbuf b;
	sbuf_init(&b);
	ck_assert_str_eq(esc(&b, "say \"hi\"", 8), "\"say \\\"hi\\\"\"");
	ck_assert_str_eq(esc(&b, "a\\b", 3), "\"a\\\\b\"");
	ck_assert_str_eq(esc(&b, "l1\nl2\r\t", 7), "\"l1\\nl2\\r\\t\"");
	ck_assert_str_eq(esc(&b, "\b\f", 2), "\"\\b\\f\"");
	ck_assert_str_eq(esc(&b, "\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
	ck_assert_str_eq(esc(&b, "a\0b", 3), "\"a\\u0000b\"");
	ck_assert_str_eq(esc(&b, "/ ok", 4), "\"/ ok\"");
	sbuf_free(&b);
}
END_TEST

START_TEST(keeps_utf8_and_replaces_invalid_bytes)
{
	struct sbuf b;
	sbuf_init(&b);
	ck_assert_str_eq(esc(&b, "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80", 10),
	                 "\"\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\"");
	ck_assert_str_eq(esc(&b, "a\377b", 3), "\"a\357\277\275b\"");
	ck_assert_str_eq(esc(&b, "\xE2\x82", 2), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
	sbuf_free(&b);
}
END_TEST

Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("json");
	tcase_add_test(tc, objects_and_arrays_get_their_commas);
	tcase_add_test(tc, a_null_string_is_written_as_empty);
	tcase_add_test(tc, escapes_quotes_backslashes_and_controls);
	tcase_add_test(tc, keeps_utf8_and_replaces_invalid_bytes);
	suite_add_tcase(s, tc);
	return s;
}
