/* Unit tests for lib/id: format, time round trip, strict order, validation,
 * time bounds, the encoder against a bitwise reference. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "id.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(new_id_is_well_formed_and_carries_the_clock)
{
	char id[ID_LEN + 1];
	int64_t before = now_ms();
	id_new(id);
	int64_t after = now_ms();
	ck_assert_uint_eq(strlen(id), ID_LEN);
	ck_assert(id_valid(id));
	ck_assert_int_ge(id_time_ms(id), before);
	ck_assert_int_le(id_time_ms(id), after);
}
END_TEST

START_TEST(time_round_trips_through_the_string)
{
	/* Ascending, since the id clock never goes backwards. */
	int64_t base = now_ms();
	const int64_t times[] = {base, base + 1, base + 1000, base + 86400000};
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		char id[ID_LEN + 1];
		id_new_at(times[i], id);
		ck_assert(id_valid(id));
		ck_assert_int_eq(id_time_ms(id), times[i]);
	}
}
END_TEST

START_TEST(ids_sort_strictly_in_creation_order)
{
	enum { N = 100000 };
	char(*ids)[ID_LEN + 1] = malloc(N * sizeof *ids);
	int64_t t = now_ms();
	for (int i = 0; i < N; i++)
		/* Many per millisecond, and a clock that jumps back now and
		 * then: order must hold regardless. */
		id_new_at(t + i / 1000 - (i % 777 == 0 ? 5000 : 0), ids[i]);
	for (int i = 1; i < N; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) < 0, "%s !< %s at %d", ids[i - 1], ids[i],
		              i);
	free(ids);
}
END_TEST

START_TEST(clock_going_backwards_does_not_reorder)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];
	int64_t t = now_ms() + 10000;
	id_new_at(t, a);
	id_new_at(t - 5000, b);
	ck_assert_str_lt(a, b);
	ck_assert_int_eq(id_time_ms(b), id_time_ms(a));
}
END_TEST

START_TEST(validation_rejects_malformed_ids)
{
	char id[ID_LEN + 1];
	id_new(id);
	ck_assert(id_valid(id));
	ck_assert(!id_valid(NULL));
	ck_assert(!id_valid(""));
	ck_assert_int_eq(id_time_ms("nope"), -1);

	char bad[ID_LEN + 2];
	memcpy(bad, id, sizeof id);
	bad[ID_LEN - 1] = '\0'; /* too short */
	ck_assert(!id_valid(bad));
	memcpy(bad, id, sizeof id);
	bad[ID_LEN] = 'A'; /* too long */
	bad[ID_LEN + 1] = '\0';
	ck_assert(!id_valid(bad));
	const char excluded[] = {'I', 'L', 'O', 'U', 'a', '-', '~'};
	for (size_t i = 0; i < sizeof excluded; i++) {
		memcpy(bad, id, sizeof id);
		bad[5] = excluded[i];
		ck_assert_msg(!id_valid(bad), "accepted '%c'", excluded[i]);
	}
	/* The first character holds only 3 bits. */
	memcpy(bad, id, sizeof id);
	bad[0] = '8';
	ck_assert(!id_valid(bad));
}
END_TEST

START_TEST(first_id_of_a_millisecond_bounds_it)
{
	char first[ID_LEN + 1], next[ID_LEN + 1], before[ID_LEN + 1], at[ID_LEN + 1];
	int64_t t = now_ms();
	id_first_at(t + 100000, next); /* far ahead: must not move the clock */
	id_first_at(t, first);
	id_new_at(t - 1, before);
	id_new_at(t, at);
	ck_assert(id_valid(first));
	ck_assert_int_eq(id_time_ms(first), t);
	ck_assert_int_eq(id_time_ms(at), t);
	ck_assert_str_lt(before, first);
	ck_assert_str_le(first, at);
	ck_assert_str_lt(at, next);
}
END_TEST

/* The format spelled out bit by bit, as lib/id built it before it worked in
 * 5-bit groups: the reference the fast encoder must match. */
static void reference_encode(int64_t ms, uint32_t c, const uint8_t nd[6], char out[ID_LEN + 1])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint8_t b[16];
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
	for (int i = 0; i < 4; i++)
		b[6 + i] = (uint8_t)(c >> (24 - 8 * i));
	memcpy(b + 10, nd, 6);
	for (int i = 0; i < ID_LEN; i++) {
		unsigned v = 0;
		for (int bit = i * 5 - 2; bit < i * 5 + 3; bit++)
			v = v << 1 | (bit < 0 ? 0 : (b[bit / 8] >> (7 - bit % 8)) & 1);
		out[i] = alphabet[v];
	}
	out[ID_LEN] = '\0';
}

/* A fixed-seed generator, so a failure repeats. */
static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

struct parts {
	int64_t ms;
	uint32_t c;
	uint8_t nd[6];
};

/* Random parts, with the extremes of each field now and then. */
static void random_parts(uint64_t *x, struct parts *p)
{
	uint64_t r = rnd(x);
	p->ms = (int64_t)(rnd(x) & 0xffffffffffffULL);
	p->c = (uint32_t)rnd(x);
	uint64_t n = rnd(x);
	for (int i = 0; i < 6; i++)
		p->nd[i] = (uint8_t)(n >> (8 * i));
	if (r % 7 == 0)
		p->ms = r % 2 ? 0 : 0xffffffffffffLL;
	if (r % 11 == 0)
		p->c = r % 3 ? 0 : UINT32_MAX;
	if (r % 13 == 0)
		memset(p->nd, r % 2 ? 0 : 0xff, sizeof p->nd);
}

static int parts_cmp(const struct parts *a, const struct parts *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->c != b->c)
		return a->c < b->c ? -1 : 1;
	return memcmp(a->nd, b->nd, sizeof a->nd);
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

START_TEST(encoder_matches_the_bitwise_reference)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 200000; i++) {
		struct parts p;
		random_parts(&x, &p);
		char got[ID_LEN + 1], want[ID_LEN + 1];
		memset(got, '?', sizeof got);
		id_encode(p.ms, p.c, p.nd, got);
		reference_encode(p.ms, p.c, p.nd, want);
		ck_assert_msg(strcmp(got, want) == 0, "%s != %s (ms %lld counter %u)", got, want,
		              (long long)p.ms, p.c);
		ck_assert(id_valid(got));
		ck_assert_int_eq(id_time_ms(got), p.ms);
	}
}
END_TEST

START_TEST(encoded_ids_sort_as_their_parts)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;
	for (int i = 0; i < 100000; i++) {
		struct parts a, b;
		random_parts(&x, &a);
		random_parts(&x, &b);
		/* Often the same millisecond, so the counter and node decide. */
		if (i % 2)
			b.ms = a.ms;
		if (i % 4 == 1)
			b.c = a.c + 1;
		char ia[ID_LEN + 1], ib[ID_LEN + 1];
		id_encode(a.ms, a.c, a.nd, ia);
		id_encode(b.ms, b.c, b.nd, ib);
		ck_assert_int_eq(sign(strcmp(ia, ib)), sign(parts_cmp(&a, &b)));
	}
}
END_TEST

START_TEST(order_holds_at_a_millisecond_boundary)
{
	static const uint8_t lo[6], hi[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint64_t x = 0x853c49e6748fea9bULL;
	for (int i = 0; i < 10000; i++) {
		int64_t ms = (int64_t)(rnd(&x) % 0xffffffffffffULL);
		/* The greatest id of ms against the smallest of ms + 1, and
		 * against the first id of ms + 1 that id_first_at makes. */
		char last[ID_LEN + 1], next[ID_LEN + 1], first[ID_LEN + 1];
		id_encode(ms, UINT32_MAX, hi, last);
		id_encode(ms + 1, 0, lo, next);
		id_first_at(ms + 1, first);
		ck_assert_str_lt(last, next);
		ck_assert_str_eq(first, next);
		/* Within ms: every counter step, carries included. */
		uint32_t c = (uint32_t)rnd(&x);
		if (i % 3 == 0)
			c |= 0xffff; /* carry from the low into the high word */
		if (c == UINT32_MAX)
			c--;
		char a[ID_LEN + 1], b[ID_LEN + 1];
		id_encode(ms, c, hi, a);
		id_encode(ms, c + 1, lo, b);
		ck_assert_str_lt(a, b);
	}
}
END_TEST

START_TEST(close_ids_differ_in_the_counter_low_characters)
{
	/* The scheduler matches a worker's result to its slot by these two
	 * characters first (lib/scheduler.c, slot_of). */
	uint64_t x = 0x5851f42d4c957f2dULL;
	for (int i = 0; i < 2000; i++) {
		uint8_t nd[6];
		uint64_t n = rnd(&x);
		memcpy(nd, &n, sizeof nd);
		uint32_t c = (uint32_t)rnd(&x);
		int64_t ms = (int64_t)(rnd(&x) & 0xffffffffffffULL);
		char a[ID_LEN + 1], b[ID_LEN + 1];
		id_encode(ms, c, nd, a);
		for (uint32_t d = 1; d < 128; d++) {
			id_encode(ms + (d % 3 == 0), c + d, nd, b);
			ck_assert_msg(memcmp(a + ID_COUNTER_LOW, b + ID_COUNTER_LOW, 2) != 0,
			              "%s and %s (counters %u apart)", a, b, d);
		}
	}
}
END_TEST

START_TEST(largest_time_round_trips)
{
	/* Last in the suite: it moves the never-backwards clock to the end. */
	char id[ID_LEN + 1];
	id_new_at(((int64_t)1 << 48) - 1, id);
	ck_assert(id_valid(id));
	ck_assert_int_eq(id_time_ms(id), ((int64_t)1 << 48) - 1);
	ck_assert_int_eq(id[0], '7');
}
END_TEST

Suite *id_suite(void)
{
	Suite *s = suite_create("id");
	TCase *tc = tcase_create("id");

	tcase_add_test(tc, new_id_is_well_formed_and_carries_the_clock);
	tcase_add_test(tc, time_round_trips_through_the_string);
	tcase_add_test(tc, ids_sort_strictly_in_creation_order);
	tcase_add_test(tc, clock_going_backwards_does_not_reorder);
	tcase_add_test(tc, validation_rejects_malformed_ids);
	tcase_add_test(tc, first_id_of_a_millisecond_bounds_it);
	tcase_add_test(tc, encoder_matches_the_bitwise_reference);
	tcase_add_test(tc, encoded_ids_sort_as_their_parts);
	tcase_add_test(tc, order_holds_at_a_millisecond_boundary);
	tcase_add_test(tc, close_ids_differ_in_the_counter_low_characters);
	tcase_add_test(tc, largest_time_round_trips);
	suite_add_tcase(s, tc);
	return s;
}
