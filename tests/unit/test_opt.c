/* Unit tests for lib/opt: flag forms, positionals, "--", precedence of
 * flag over environment over default, value syntaxes (durations, sizes,
 * KEY=VALUE), lists, and the errors a person sees. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

struct flags {
	const char *addr;
	int n;
	int64_t dur;
	size_t size;
	int on;
	struct opt_list list;
};

static int run(struct flags *f, char *err, int argc, char **argv)
{
	const struct opt opts[] = {
	    {"addr", "OPT_TEST_ADDR", OPT_STR, &f->addr, "ADDR", "an address"},
	    {"n", NULL, OPT_INT, &f->n, "N", "a number"},
	    {"dur", "OPT_TEST_DUR", OPT_DUR, &f->dur, "DURATION", "a duration"},
	    {"size", NULL, OPT_SIZE, &f->size, "SIZE", "a size"},
	    {"on", NULL, OPT_BOOL, &f->on, NULL, "a switch"},
	    {"item", NULL, OPT_LIST, &f->list, "X", "repeatable"},
	    {NULL, NULL, 0, NULL, NULL, NULL},
	};
	return opt_parse(opts, argc, argv, err, 256);
}

START_TEST(parses_every_flag_form_and_keeps_positionals_in_order)
{
	struct flags f = {.addr = "default"};
	char err[256] = "";
	char *argv[] = {"pos1",  "--addr",   "a:1",       "--n=7",       "pos2",
	                "--dur", "1.5s",     "--size=2M", "--on",        "--item",
	                "x",     "--item=y", "--",        "--not-a-flag"};
	int n = run(&f, err, 14, argv);
	ck_assert_msg(n == 3, "n=%d err=%s", n, err);
	ck_assert_str_eq(argv[0], "pos1");
	ck_assert_str_eq(argv[1], "pos2");
	ck_assert_str_eq(argv[2], "--not-a-flag");
	ck_assert_str_eq(f.addr, "a:1");
	ck_assert_int_eq(f.n, 7);
	ck_assert_int_eq(f.dur, 1500);
	ck_assert_uint_eq(f.size, 2u << 20);
	ck_assert_int_eq(f.on, 1);
	ck_assert_uint_eq(f.list.n, 2);
	ck_assert_str_eq(f.list.v[1], "y");
	opt_list_free(&f.list);
}
END_TEST

START_TEST(flag_beats_environment_beats_default)
{
	struct flags f = {.addr = "default", .dur = 10000};
	char err[256];
	setenv("OPT_TEST_ADDR", "from-env", 1);
	setenv("OPT_TEST_DUR", "5m", 1);
	char *a1[] = {"--addr", "from-flag"};
	ck_assert_int_eq(run(&f, err, 2, a1), 0);
	ck_assert_str_eq(f.addr, "from-flag");
	ck_assert_int_eq(f.dur, 300000);
	unsetenv("OPT_TEST_ADDR");
	unsetenv("OPT_TEST_DUR");
	struct flags g = {.addr = "default", .dur = 10000};
	ck_assert_int_eq(run(&g, err, 0, a1), 0);
	ck_assert_str_eq(g.addr, "default");
	ck_assert_int_eq(g.dur, 10000);
}
END_TEST

START_TEST(errors_name_the_flag_and_what_was_expected)
{
	struct flags f = {0};
	char err[256];
	char *a1[] = {"--bogus"};
	ck_assert_int_eq(run(&f, err, 1, a1), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown flag '--bogus'"));
	char *a2[] = {"--dur", "soon"};
	ck_assert_int_eq(run(&f, err, 2, a2), -1);
	ck_assert_ptr_nonnull(strstr(err, "--dur"));
	ck_assert_ptr_nonnull(strstr(err, "duration"));
	char *a3[] = {"--n"};
	ck_assert_int_eq(run(&f, err, 1, a3), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	char *a4[] = {"--n", "12abc"};
	ck_assert_int_eq(run(&f, err, 2, a4), -1);
	char *a5[] = {"x", "--help"};
	ck_assert_int_eq(run(&f, err, 2, a5), OPT_HELP);
	opt_list_free(&f.list);
}
END_TEST

START_TEST(durations_accept_ms_s_m_h_d_and_bare_milliseconds)
{
	int64_t ms;
	ck_assert_int_eq(opt_parse_duration("500ms", &ms), 0);
	ck_assert_int_eq(ms, 500);
	ck_assert_int_eq(opt_parse_duration("30s", &ms), 0);
	ck_assert_int_eq(ms, 30000);
	ck_assert_int_eq(opt_parse_duration("5m", &ms), 0);
	ck_assert_int_eq(ms, 300000);
	ck_assert_int_eq(opt_parse_duration("2h", &ms), 0);
	ck_assert_int_eq(ms, 7200000);
	ck_assert_int_eq(opt_parse_duration("1d", &ms), 0);
	ck_assert_int_eq(ms, 86400000);
	ck_assert_int_eq(opt_parse_duration("250", &ms), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(opt_parse_duration("0.5s", &ms), 0);
	ck_assert_int_eq(ms, 500);
	ck_assert_int_eq(opt_parse_duration("-1s", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("5 m", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("5x", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("s", &ms), -1);
	/* What strtod takes but a duration is not (found by fuzz_cli). */
	ck_assert_int_eq(opt_parse_duration(" -8", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("\n-8s", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("+5s", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("nan", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("infs", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("0x10s", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("1e3s", &ms), -1);
	ck_assert_int_eq(opt_parse_duration("1.2.3s", &ms), -1);
}
END_TEST

START_TEST(sizes_accept_k_m_g_suffixes)
{
	size_t n;
	ck_assert_int_eq(opt_parse_size("64", &n), 0);
	ck_assert_uint_eq(n, 64);
	ck_assert_int_eq(opt_parse_size("512K", &n), 0);
	ck_assert_uint_eq(n, 512u << 10);
	ck_assert_int_eq(opt_parse_size("1MiB", &n), 0);
	ck_assert_uint_eq(n, 1u << 20);
	ck_assert_int_eq(opt_parse_size("1G", &n), 0);
	ck_assert_uint_eq(n, 1u << 30);
	ck_assert_int_eq(opt_parse_size("1T", &n), -1);
	ck_assert_int_eq(opt_parse_size("-1", &n), -1);
	ck_assert_int_eq(opt_parse_size(" -1", &n), -1);
	ck_assert_int_eq(opt_parse_size("+1K", &n), -1);
}
END_TEST

START_TEST(key_value_splits_at_the_first_equals_sign)
{
	size_t klen;
	const char *v;
	ck_assert_int_eq(opt_parse_kv("team=infra", &klen, &v), 0);
	ck_assert_uint_eq(klen, 4);
	ck_assert_str_eq(v, "infra");
	ck_assert_int_eq(opt_parse_kv("expr=a=b", &klen, &v), 0);
	ck_assert_uint_eq(klen, 4);
	ck_assert_str_eq(v, "a=b");
	ck_assert_int_eq(opt_parse_kv("empty=", &klen, &v), 0);
	ck_assert_str_eq(v, "");
	ck_assert_int_eq(opt_parse_kv("=value", &klen, &v), -1);
	ck_assert_int_eq(opt_parse_kv("novalue", &klen, &v), -1);
	ck_assert_int_eq(opt_parse_kv(NULL, &klen, &v), -1);
}
END_TEST

Suite *opt_suite(void)
{
	Suite *s = suite_create("opt");
	TCase *tc = tcase_create("opt");
	tcase_add_test(tc, parses_every_flag_form_and_keeps_positionals_in_order);
	tcase_add_test(tc, flag_beats_environment_beats_default);
	tcase_add_test(tc, errors_name_the_flag_and_what_was_expected);
	tcase_add_test(tc, durations_accept_ms_s_m_h_d_and_bare_milliseconds);
	tcase_add_test(tc, sizes_accept_k_m_g_suffixes);
	tcase_add_test(tc, key_value_splits_at_the_first_equals_sign);
	suite_add_tcase(s, tc);
	return s;
}
