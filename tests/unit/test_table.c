/* Unit tests for lib/table: column widths from the widest cell, left and
 * right alignment, no trailing blanks, non-ASCII widths, truncation, and
 * control characters kept off the line. */
#include <check.h>
#include <string.h>

#include "table.h"

static void add3(struct table *t, const char *a, const char *b, const char *c)
{
	const char *cells[3] = {a, b, c};
	table_add(t, cells);
}

START_TEST(aligns_columns_to_the_widest_cell)
{
	struct table *t = table_new(3);
	add3(t, "ID", "NAME", "AGE");
	add3(t, "1", "resize-image", "5s");
	add3(t, "22", "x", "3m05s");
	table_set_align(t, 2, TABLE_RIGHT);
	struct sbuf b;
	sbuf_init(&b);
	table_render(t, &b);
	ck_assert_str_eq(sbuf_str(&b), "ID  NAME            AGE\n"
	                               "1   resize-image     5s\n"
	                               "22  x             3m05s\n");
	ck_assert_uint_eq(table_rows(t), 3);
	sbuf_free(&b);
	table_del(t);
	table_del(NULL);
}
END_TEST

START_TEST(trims_trailing_blanks_and_empty_cells)
{
	struct table *t = table_new(3);
	add3(t, "a", "long-cell", NULL);
	add3(t, "bb", "", "");
	struct sbuf b;
	sbuf_init(&b);
	table_render(t, &b);
	ck_assert_str_eq(sbuf_str(&b), "a   long-cell\nbb\n");
	sbuf_free(&b);
	table_del(t);
}
END_TEST

START_TEST(measures_non_ascii_in_columns)
{
	struct table *t = table_new(2);
	add3(t, "\xC3\xA9t\xC3\xA9", "x", NULL); /* été: 3 columns */
	add3(t, "\xE6\x97\xA5", "y", NULL);      /* 日: 2 columns */
	add3(t, "abcd", "z", NULL);
	struct sbuf b;
	sbuf_init(&b);
	table_render(t, &b);
	ck_assert_str_eq(sbuf_str(&b), "\xC3\xA9t\xC3\xA9   x\n"
	                               "\xE6\x97\xA5    y\n"
	                               "abcd  z\n");
	sbuf_free(&b);
	table_del(t);
}
END_TEST

START_TEST(truncates_long_cells_and_blanks_control_characters)
{
	struct table *t = table_new(2);
	table_set_max(t, 0, 8);
	add3(t, "abcdefghijkl", "1", NULL);
	add3(t, "abcdefgh", "2", NULL);
	add3(t, "line1\nline2", "3", NULL);
	struct sbuf b;
	sbuf_init(&b);
	table_render(t, &b);
	ck_assert_str_eq(sbuf_str(&b), "abcde...  1\n"
	                               "abcdefgh  2\n"
	                               "line1...  3\n");
	sbuf_free(&b);
	table_del(t);
}
END_TEST

START_TEST(many_rows_grow_the_table)
{
	struct table *t = table_new(1);
	for (int i = 0; i < 100; i++)
		add3(t, "r", NULL, NULL);
	ck_assert_uint_eq(table_rows(t), 100);
	struct sbuf b;
	sbuf_init(&b);
	table_render(t, &b);
	ck_assert_uint_eq(b.len, 200);
	sbuf_free(&b);
	table_del(t);
}
END_TEST

Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, aligns_columns_to_the_widest_cell);
	tcase_add_test(tc, trims_trailing_blanks_and_empty_cells);
	tcase_add_test(tc, measures_non_ascii_in_columns);
	tcase_add_test(tc, truncates_long_cells_and_blanks_control_characters);
	tcase_add_test(tc, many_rows_grow_the_table);
	suite_add_tcase(s, tc);
	return s;
}
