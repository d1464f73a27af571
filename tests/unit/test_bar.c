/* Unit tests for lib/bar: the two lines per task, the bar's fill at 0, 50
 * and 100 percent, lines cut to the terminal width, colour only when asked,
 * and the rewind sequence. */
#include <check.h>
#include <string.h>

#include "bar.h"
#include "utf8.h"

/* b without escape sequences, for comparing what a person sees. */
static const char *plain(const struct sbuf *b)
{
	static char out[4096];
	size_t o = 0;
	for (size_t i = 0; i < b->len && o + 1 < sizeof out; i++) {
		if (b->s[i] == '\033') {
			i++;
			if (i < b->len && b->s[i] == '[')
				while (i + 1 < b->len &&
				       !((b->s[i + 1] >= 'A' && b->s[i + 1] <= 'Z') ||
				         (b->s[i + 1] >= 'a' && b->s[i + 1] <= 'z')))
					i++;
			i++; /* the final letter */
			continue;
		}
		out[o++] = b->s[i];
	}
	out[o] = '\0';
	return out;
}

static const struct bar_task half = {
    .id = "01JB8Z3K4M",
    .name = "sleep",
    .status = "RUNNING",
    .percent = 50,
    .message = "slept 500 of 1000 ms",
    .attempt = 1,
    .max_attempts = 3,
    .elapsed_ms = 2500,
};

START_TEST(renders_status_line_and_bar_line)
{
	struct sbuf b;
	sbuf_init(&b);
	bar_render(&b, &half, 60, 0);
	ck_assert_str_eq(plain(&b), "01JB8Z3K4M  sleep  RUNNING  attempt 1/3  2.5s\n"
	                            "  [##########----------]  50%  slept 500 of 1000 ms\n");
	/* Every line starts by erasing what was there. */
	ck_assert(strncmp(b.s, "\033[2K", 4) == 0);
	ck_assert_ptr_nonnull(strstr(b.s, "\n\033[2K  ["));
	sbuf_free(&b);
}
END_TEST

START_TEST(bar_fill_follows_percent_and_clamps)
{
	struct bar_task t = half;
	struct sbuf b;
	sbuf_init(&b);
	t.percent = 0;
	t.message = NULL;
	bar_render(&b, &t, 60, 0);
	ck_assert_ptr_nonnull(strstr(plain(&b), "[--------------------]   0%\n"));
	sbuf_reset(&b);
	t.percent = 100;
	bar_render(&b, &t, 60, 0);
	ck_assert_ptr_nonnull(strstr(plain(&b), "[####################] 100%\n"));
	sbuf_reset(&b);
	t.percent = 250;
	bar_render(&b, &t, 60, 0);
	ck_assert_ptr_nonnull(strstr(plain(&b), "] 100%\n"));
	sbuf_reset(&b);
	t.percent = -3;
	bar_render(&b, &t, 60, 0);
	ck_assert_ptr_nonnull(strstr(plain(&b), "]   0%\n"));
	sbuf_free(&b);
}
END_TEST

START_TEST(lines_fit_narrow_terminals)
{
	struct bar_task t = half;
	t.id = "01JB8Z3K4M5N6P7Q8R9S0T1V2W";
	t.message = "a very long message that could never fit on a narrow terminal";
	for (int width = 0; width <= 120; width += 7) {
		struct sbuf b;
		sbuf_init(&b);
		bar_render(&b, &t, width, BAR_COLOR);
		const char *p = plain(&b);
		int lines = 0;
		for (const char *line = p; *line; lines++) {
			const char *nl = strchr(line, '\n');
			ck_assert_ptr_nonnull(nl);
			int max = width < 20 ? 19 : width - 1;
			ck_assert_int_le((int)utf8_cols(line, (size_t)(nl - line)), max);
			line = nl + 1;
		}
		ck_assert_int_eq(lines, BAR_LINES);
		sbuf_free(&b);
	}
}
END_TEST

START_TEST(colour_only_when_asked)
{
	struct bar_task t = half;
	t.status = "FAILED";
	struct sbuf b;
	sbuf_init(&b);
	bar_render(&b, &t, 80, 0);
	ck_assert_ptr_null(strstr(b.s, "\033[31m"));
	sbuf_reset(&b);
	bar_render(&b, &t, 80, BAR_COLOR);
	ck_assert_ptr_nonnull(strstr(b.s, "\033[31mFAILED\033[0m"));
	sbuf_free(&b);
}
END_TEST

START_TEST(optional_fields_are_left_out)
{
	struct bar_task t = {.id = "X", .status = "PENDING", .elapsed_ms = -1};
	struct sbuf b;
	sbuf_init(&b);
	bar_render(&b, &t, 40, 0);
	ck_assert_str_eq(plain(&b), "X  PENDING\n  [-------------]   0%\n");
	sbuf_free(&b);
}
END_TEST

START_TEST(rewind_moves_up_over_the_drawn_lines)
{
	struct sbuf b;
	sbuf_init(&b);
	bar_rewind(&b, 0);
	ck_assert_str_eq(sbuf_str(&b), "");
	bar_rewind(&b, 4);
	ck_assert_str_eq(sbuf_str(&b), "\r\033[4A");
	sbuf_free(&b);
}
END_TEST

Suite *bar_suite(void)
{
	Suite *s = suite_create("bar");
	TCase *tc = tcase_create("bar");
	tcase_add_test(tc, renders_status_line_and_bar_line);
	tcase_add_test(tc, bar_fill_follows_percent_and_clamps);
	tcase_add_test(tc, lines_fit_narrow_terminals);
	tcase_add_test(tc, colour_only_when_asked);
	tcase_add_test(tc, optional_fields_are_left_out);
	tcase_add_test(tc, rewind_moves_up_over_the_drawn_lines);
	suite_add_tcase(s, tc);
	return s;
}
