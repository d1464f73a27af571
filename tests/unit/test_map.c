/* Tests for lib/map.c: a model check against a plain array. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

/* Random puts and deletes of keys[0..n), checked against a model. */
static void model_check(char (*keys)[48], int n)
{
	int *present = calloc((size_t)n, sizeof *present);
	struct map m;
	map_init(&m);
	srand(7);
	for (int step = 0; step < 12 * n; step++) {
		int k = rand() % n;
		if (rand() % 3) {
			void *prev = map_put(&m, keys[k], &present[k]);
			ck_assert_ptr_eq(prev, present[k] ? &present[k] : NULL);
			present[k] = 1;
		} else {
			void *v = map_del(&m, keys[k]);
			ck_assert_ptr_eq(v, present[k] ? &present[k] : NULL);
			present[k] = 0;
		}
	}
	size_t count = 0;
	for (int k = 0; k < n; k++) {
		ck_assert_ptr_eq(map_get(&m, keys[k]), present[k] ? &present[k] : NULL);
		count += present[k];
	}
	ck_assert_uint_eq(m.n, count);
	map_free(&m);
	free(present);
}

START_TEST(test_map_put_get_del_against_model)
{
	enum { N = 5000 };
	static char keys[N][48];
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof keys[i], "k%d", i);
	model_check(keys, N);
}
END_TEST

START_TEST(test_map_keys_of_every_length_against_model)
{
	/* The hash takes 8 bytes a step: lengths 4 to 40 cover whole steps
	 * and every tail, after long shared prefixes like task ids have. The
	 * length tells the prefix, the last 4 digits i: all keys differ. */
	enum { N = 5000 };
	static char keys[N][48];
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof keys[i], "%.*s%04d", i % 37,
		         "01M8BFPX6QRDJHANW1YWFH2VPM01M8BFPX6QR", i);
	model_check(keys, N);
}
END_TEST

START_TEST(test_map_empty_lookups)
{
	struct map m;
	map_init(&m);
	ck_assert_ptr_null(map_get(&m, "x"));
	ck_assert_ptr_null(map_del(&m, "x"));
	map_free(&m);
}
END_TEST

START_TEST(test_map_next_visits_each_entry_once)
{
	enum { N = 300 };
	static char keys[N][16];
	int seen[N] = {0};
	struct map m;
	map_init(&m);
	size_t pos = 0;
	ck_assert_ptr_null(map_next(&m, &pos));
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		map_put(&m, keys[i], &seen[i]);
	}
	for (int i = 0; i < N; i += 3)
		map_del(&m, keys[i]);
	const struct map_ent *e;
	size_t walked = 0;
	pos = 0;
	while ((e = map_next(&m, &pos)) && walked <= N) {
		int *v = e->val;
		ck_assert_ptr_eq(map_get(&m, e->key), v);
		(*v)++;
		walked++;
	}
	ck_assert_uint_eq(walked, m.n);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], i % 3 ? 1 : 0);
	/* The walk ended for good, and a walk may stop and be resumed. */
	ck_assert_ptr_null(map_next(&m, &pos));
	pos = 0;
	const struct map_ent *first = map_next(&m, &pos);
	size_t resumed = 1;
	while (map_next(&m, &pos) && resumed <= N)
		resumed++;
	ck_assert_ptr_nonnull(first);
	ck_assert_uint_eq(resumed, m.n);
	map_free(&m);
}
END_TEST

Suite *map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_map_put_get_del_against_model);
	tcase_add_test(tc, test_map_keys_of_every_length_against_model);
	tcase_add_test(tc, test_map_empty_lookups);
	tcase_add_test(tc, test_map_next_visits_each_entry_once);
	suite_add_tcase(s, tc);
	return s;
}
