/* log: level parsing, the threshold, and that a line below it costs no
 * argument evaluation. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int evaluated;

static const char *counted(const char *s)
{
	evaluated++;
	return s;
}

/* Runs the logging in fn with stderr sent to a temporary file; returns
 * what was written (static buffer). */
static const char *captured(void (*fn)(void))
{
	static char buf[1024];
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	int saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fileno(f), 2), 2);
	fn();
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	rewind(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

START_TEST(levels_parse_by_name)
{
	enum log_level lv = LOG_WARN;
	ck_assert_int_eq(log_parse_level("debug", &lv), 0);
	ck_assert_int_eq(lv, LOG_DEBUG);
	ck_assert_int_eq(log_parse_level("off", &lv), 0);
	ck_assert_int_eq(lv, LOG_OFF);
	ck_assert_int_eq(log_parse_level("loud", &lv), -1);
	ck_assert_int_eq(lv, LOG_OFF);
}
END_TEST

static void debug_and_warn(void)
{
	log_debug("below", "x=%s", counted("a"));
	log_warn("above", "x=%s", counted("b"));
}

START_TEST(lines_below_the_threshold_evaluate_nothing)
{
	enum log_level saved = log_get_level();
	log_set_level(LOG_WARN);
	evaluated = 0;
	const char *out = captured(debug_and_warn);
	log_set_level(saved);
	ck_assert_int_eq(evaluated, 1);
	ck_assert_ptr_null(strstr(out, "event=below"));
	ck_assert_ptr_nonnull(strstr(out, "level=warn"));
	ck_assert_ptr_nonnull(strstr(out, "event=above x=b\n"));
}
END_TEST

static void one_error(void)
{
	log_error("quiet", "x=%s", counted("c"));
}

START_TEST(off_writes_nothing)
{
	enum log_level saved = log_get_level();
	log_set_level(LOG_OFF);
	evaluated = 0;
	const char *out = captured(one_error);
	log_set_level(saved);
	ck_assert_int_eq(evaluated, 0);
	ck_assert_str_eq(out, "");
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	tcase_add_test(tc, levels_parse_by_name);
	tcase_add_test(tc, lines_below_the_threshold_evaluate_nothing);
	tcase_add_test(tc, off_writes_nothing);
	suite_add_tcase(s, tc);
	return s;
}
