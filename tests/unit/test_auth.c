/* Unit tests for lib/auth: token files, the Bearer check (prefixes,
 * extensions and case of a token are refused), open paths, and the
 * metadata a client sends. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"

static int check_str(const struct auth *a, const char *v)
{
	return auth_check(a, v, v ? strlen(v) : 0);
}

/* Writes text to a new temporary file; returns its path (static). */
static const char *tmpfile_with(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/orchd-auth-test.XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(bearer_token_in_the_set_passes)
{
	struct auth *a = auth_new(0);
	ck_assert_int_eq(auth_add_token(a, "s3cret-one", 10), 0);
	ck_assert_int_eq(auth_add_token(a, "other.token_2", 13), 0);
	ck_assert_uint_eq(auth_count(a), 2);
	ck_assert_int_eq(check_str(a, "Bearer s3cret-one"), AUTH_OK);
	ck_assert_int_eq(check_str(a, "Bearer other.token_2"), AUTH_OK);
	/* The scheme is case-insensitive; extra blanks are tolerated. */
	ck_assert_int_eq(check_str(a, "bearer s3cret-one"), AUTH_OK);
	ck_assert_int_eq(check_str(a, "BEARER   s3cret-one  "), AUTH_OK);
	auth_del(a);
}
END_TEST

START_TEST(near_misses_are_denied)
{
	struct auth *a = auth_new(0);
	auth_add_token(a, "s3cret-one", 10);
	ck_assert_int_eq(check_str(a, "Bearer s3cret-on"), AUTH_DENIED);
	ck_assert_int_eq(check_str(a, "Bearer s3cret-one1"), AUTH_DENIED);
	ck_assert_int_eq(check_str(a, "Bearer S3CRET-ONE"), AUTH_DENIED);
	ck_assert_int_eq(check_str(a, "Bearer x"), AUTH_DENIED);
	auth_del(a);
}
END_TEST

START_TEST(missing_and_malformed_values_are_told_apart)
{
	struct auth *a = auth_new(0);
	auth_add_token(a, "tok", 3);
	ck_assert_int_eq(check_str(a, NULL), AUTH_MISSING);
	ck_assert_int_eq(check_str(a, ""), AUTH_MISSING);
	ck_assert_int_eq(check_str(a, "tok"), AUTH_MALFORMED);
	ck_assert_int_eq(check_str(a, "Basic dG9rOg=="), AUTH_MALFORMED);
	ck_assert_int_eq(check_str(a, "Bearer"), AUTH_MALFORMED);
	ck_assert_int_eq(check_str(a, "Bearer "), AUTH_MALFORMED);
	ck_assert_int_eq(check_str(a, "Bearertok"), AUTH_MALFORMED);
	ck_assert_int_eq(check_str(a, "Bearer to k"), AUTH_MALFORMED);
	ck_assert_str_eq(auth_result_name(AUTH_DENIED), "denied");
	auth_del(a);
}
END_TEST

START_TEST(an_empty_set_denies_everything)
{
	struct auth *a = auth_new(0);
	ck_assert_ptr_null(auth_first(a));
	ck_assert_int_eq(check_str(a, "Bearer anything"), AUTH_DENIED);
	auth_del(a);
	auth_del(NULL);
}
END_TEST

START_TEST(tokens_must_be_printable_without_blanks)
{
	struct auth *a = auth_new(0);
	ck_assert_int_eq(auth_add_token(a, "", 0), -EINVAL);
	ck_assert_int_eq(auth_add_token(a, "a b", 3), -EINVAL);
	ck_assert_int_eq(auth_add_token(a, "a\x01", 2), -EINVAL);
	ck_assert_int_eq(auth_add_token(a, "caf\xc3\xa9", 5), -EINVAL);
	char *big = malloc(AUTH_TOKEN_MAX + 2);
	memset(big, 'x', AUTH_TOKEN_MAX + 1);
	ck_assert_int_eq(auth_add_token(a, big, AUTH_TOKEN_MAX + 1), -EINVAL);
	ck_assert_int_eq(auth_add_token(a, big, AUTH_TOKEN_MAX), 0);
	free(big);
	ck_assert_uint_eq(auth_count(a), 1);
	auth_del(a);
}
END_TEST

START_TEST(token_file_skips_comments_and_blanks)
{
	const char *p =
	    tmpfile_with("# tokens for the gateway\n\n  first-tok \r\nsecond\n\t\n# x\nthird");
	struct auth *a = auth_new(0);
	char err[256];
	ck_assert_int_eq(auth_load_file(a, p, err, sizeof err), 3);
	ck_assert_str_eq(auth_first(a), "first-tok");
	ck_assert_int_eq(check_str(a, "Bearer second"), AUTH_OK);
	ck_assert_int_eq(check_str(a, "Bearer third"), AUTH_OK);
	ck_assert_int_eq(check_str(a, "Bearer # x"), AUTH_MALFORMED);
	auth_del(a);
	unlink(p);
}
END_TEST

START_TEST(bad_token_files_say_why_without_the_token)
{
	char err[256];
	struct auth *a = auth_new(0);
	const char *p = tmpfile_with("# nothing\n\n");
	ck_assert_int_eq(auth_load_file(a, p, err, sizeof err), -ENODATA);
	ck_assert_ptr_nonnull(strstr(err, "no token"));
	unlink(p);
	p = tmpfile_with("good\nhas secret blank\n");
	ck_assert_int_eq(auth_load_file(a, p, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "line 2"));
	ck_assert_ptr_null(strstr(err, "secret"));
	unlink(p);
	ck_assert_int_eq(auth_load_file(a, "/nonexistent/orchd-tokens", err, sizeof err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/orchd-tokens"));
	auth_del(a);
}
END_TEST

START_TEST(reload_replaces_all_tokens_or_none)
{
	char err[256];
	struct auth *a = auth_new(0);
	const char *p = tmpfile_with("old-one\nold-two\n");
	ck_assert_int_eq(auth_load_file(a, p, err, sizeof err), 2);
	unlink(p);
	p = tmpfile_with("new-one\nold-two\nnew-three\n");
	ck_assert_int_eq(auth_reload_file(a, p, err, sizeof err), 3);
	unlink(p);
	ck_assert_uint_eq(auth_count(a), 3);
	ck_assert_str_eq(auth_first(a), "new-one");
	ck_assert_int_eq(check_str(a, "Bearer old-one"), AUTH_DENIED);
	ck_assert_int_eq(check_str(a, "Bearer old-two"), AUTH_OK);
	ck_assert_int_eq(check_str(a, "Bearer new-three"), AUTH_OK);
	/* A file that fails half-way, an empty one or a missing one changes
	 * nothing: not even the tokens before the bad line get in. */
	const char *bad[] = {"half-good\nhas a blank\n", "# none\n"};
	const int why[] = {-EINVAL, -ENODATA};
	for (int i = 0; i < 2; i++) {
		p = tmpfile_with(bad[i]);
		ck_assert_int_eq(auth_reload_file(a, p, err, sizeof err), why[i]);
		unlink(p);
		ck_assert_uint_eq(auth_count(a), 3);
		ck_assert_str_eq(auth_first(a), "new-one");
		ck_assert_int_eq(check_str(a, "Bearer half-good"), AUTH_DENIED);
		ck_assert_int_eq(check_str(a, "Bearer new-three"), AUTH_OK);
	}
	ck_assert_int_eq(auth_reload_file(a, "/nonexistent/orchd-tokens", err, sizeof err),
	                 -ENOENT);
	ck_assert_uint_eq(auth_count(a), 3);
	ck_assert_int_eq(check_str(a, "Bearer new-one"), AUTH_OK);
	auth_del(a);
}
END_TEST

START_TEST(health_and_reflection_are_open_unless_protected)
{
	struct auth *a = auth_new(0);
	ck_assert(auth_path_open(a, "/grpc.health.v1.Health/Check"));
	ck_assert(auth_path_open(a, "/grpc.health.v1.Health/Watch"));
	ck_assert(auth_path_open(a, "/orchestrator.v1.Gateway/HealthCheck"));
	ck_assert(
	    auth_path_open(a, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
	ck_assert(auth_path_open(a, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
	ck_assert(!auth_path_open(a, "/orchestrator.v1.Gateway/SubmitTask"));
	ck_assert(!auth_path_open(a, "/orchestrator.v1.Gateway/HealthCheckX"));
	ck_assert(!auth_path_open(a, "/a/b/HealthCheck"));
	ck_assert(!auth_path_open(a, "/HealthCheck"));
	ck_assert(!auth_path_open(a, "/grpc.health.v1.HealthX/Check"));
	ck_assert(!auth_path_open(a, NULL));
	auth_del(a);
	a = auth_new(1);
	ck_assert(!auth_path_open(a, "/grpc.health.v1.Health/Check"));
	ck_assert(!auth_path_open(a, "/orchestrator.v1.Gateway/HealthCheck"));
	auth_del(a);
}
END_TEST

START_TEST(bearer_metadata_round_trips)
{
	struct auth *a = auth_new(0);
	auth_add_token(a, "abc.DEF-123", 11);
	struct meta md;
	meta_init(&md);
	auth_bearer_md(&md, auth_first(a));
	const struct meta_kv *kv = meta_get(&md, "authorization");
	ck_assert_ptr_nonnull(kv);
	ck_assert_str_eq((const char *)kv->val, "Bearer abc.DEF-123");
	ck_assert_int_eq(auth_check(a, (const char *)kv->val, kv->vallen), AUTH_OK);
	meta_free(&md);
	auth_del(a);
}
END_TEST

Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("auth");
	tcase_add_test(tc, bearer_token_in_the_set_passes);
	tcase_add_test(tc, near_misses_are_denied);
	tcase_add_test(tc, missing_and_malformed_values_are_told_apart);
	tcase_add_test(tc, an_empty_set_denies_everything);
	tcase_add_test(tc, tokens_must_be_printable_without_blanks);
	tcase_add_test(tc, token_file_skips_comments_and_blanks);
	tcase_add_test(tc, bad_token_files_say_why_without_the_token);
	tcase_add_test(tc, reload_replaces_all_tokens_or_none);
	tcase_add_test(tc, health_and_reflection_are_open_unless_protected);
	tcase_add_test(tc, bearer_metadata_round_trips);
	suite_add_tcase(s, tc);
	return s;
}
