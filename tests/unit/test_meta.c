/* Unit tests for lib/meta: grpc-timeout, percent-encoding, base64, key rules, the list. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

/* ---- grpc-timeout ---------------------------------------------------- */

static int tparse(const char *s, int64_t *ms)
{
	return meta_timeout_parse(s, strlen(s), ms);
}

static int64_t tval(const char *s)
{
	int64_t ms = -12345;
	ck_assert_msg(tparse(s, &ms) == 0, "\"%s\" should parse", s);
	return ms;
}

START_TEST(timeout_parses_every_unit)
{
	ck_assert_int_eq(tval("2H"), 2 * 3600000LL);
	ck_assert_int_eq(tval("3M"), 3 * 60000LL);
	ck_assert_int_eq(tval("5S"), 5000);
	ck_assert_int_eq(tval("250m"), 250);
	ck_assert_int_eq(tval("7000u"), 7);
	ck_assert_int_eq(tval("9000000n"), 9);
	ck_assert_int_eq(tval("99999999H"), 99999999LL * 3600000);
	ck_assert_int_eq(tval("00000001S"), 1000);
}
END_TEST

START_TEST(timeout_rounds_up_to_ms)
{
	ck_assert_int_eq(tval("1n"), 1);
	ck_assert_int_eq(tval("0n"), 0);
	ck_assert_int_eq(tval("1u"), 1);
	ck_assert_int_eq(tval("999u"), 1);
	ck_assert_int_eq(tval("1000u"), 1);
	ck_assert_int_eq(tval("1001u"), 2);
	ck_assert_int_eq(tval("1000000n"), 1);
	ck_assert_int_eq(tval("1000001n"), 2);
	ck_assert_int_eq(tval("0m"), 0);
}
END_TEST

START_TEST(timeout_rejects_malformed)
{
	static const char *const bad[] = {
	    "",   "S",   "5",   "123456789S", "-5S", "+5S", "5s",   "5h",
	    "5x", "5 S", " 5S", "5S ",        "5SS", "S5",  "0x5S", "1.5S",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 42;
		ck_assert_msg(tparse(bad[i], &ms) == -1, "\"%s\" should be rejected", bad[i]);
		ck_assert_int_eq(ms, 42);
	}
	/* Exactly 8 digits is the limit. */
	ck_assert_int_eq(tval("12345678m"), 12345678);
}
END_TEST

static const char *tfmt(int64_t ms, char *buf)
{
	size_t n = meta_timeout_format(ms, buf);
	ck_assert_uint_eq(n, strlen(buf));
	return buf;
}

START_TEST(timeout_format_shortest_exact)
{
	char b[META_TIMEOUT_BUFLEN];

	ck_assert_str_eq(tfmt(5000, b), "5S");
	ck_assert_str_eq(tfmt(7200000, b), "2H");
	ck_assert_str_eq(tfmt(120000, b), "2M");
	ck_assert_str_eq(tfmt(1, b), "1m");
	ck_assert_str_eq(tfmt(1500, b), "1500m");
	ck_assert_str_eq(tfmt(99999999, b), "99999999m");
	/* 9 digits of ms: exact in seconds when divisible... */
	ck_assert_str_eq(tfmt(100000000, b), "100000S");
	/* ...else rounded up to the next second. */
	ck_assert_str_eq(tfmt(100000001, b), "100001S");
	/* Expired deadlines still send a positive timeout. */
	ck_assert_str_eq(tfmt(0, b), "1n");
	ck_assert_str_eq(tfmt(-5, b), "1n");
	/* Beyond 99999999H, clamp. */
	ck_assert_str_eq(tfmt(INT64_MAX, b), "99999999H");
}
END_TEST

START_TEST(timeout_format_round_trips_up)
{
	static const int64_t v[] = {1,
	                            2,
	                            999,
	                            1000,
	                            1001,
	                            59999,
	                            60000,
	                            60001,
	                            3599999,
	                            3600000,
	                            3600001,
	                            99999999,
	                            100000000,
	                            100000001,
	                            123456789012LL,
	                            99999999000LL,
	                            99999999001LL,
	                            359999996400000LL};
	char b[META_TIMEOUT_BUFLEN];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int64_t back;
		size_t n = meta_timeout_format(v[i], b);
		ck_assert_uint_le(n, 9);
		ck_assert_int_eq(meta_timeout_parse(b, n, &back), 0);
		ck_assert_msg(back >= v[i], "%lld -> %s -> %lld", (long long)v[i], b,
		              (long long)back);
		/* Anything that fits 8 digits of ms must come back exact. */
		if (v[i] <= 99999999)
			ck_assert_int_eq(back, v[i]);
	}
}
END_TEST

/* ---- percent-encoding ------------------------------------------------ */

START_TEST(pct_encode_escapes_only_what_it_must)
{
	size_t n;
	char *e = meta_pct_encode("ok: 100% done~", 14, &n);
	ck_assert_str_eq(e, "ok: 100%25 done~");
	ck_assert_uint_eq(n, strlen(e));
	free(e);

	/* UTF-8 "héllo" and control characters. */
	e = meta_pct_encode("h\xc3\xa9llo\n\x7f\t", 9, &n);
	ck_assert_str_eq(e, "h%C3%A9llo%0A%7F%09");
	free(e);

	/* Embedded NUL. */
	e = meta_pct_encode("a\0b", 3, &n);
	ck_assert_str_eq(e, "a%00b");
	free(e);

	e = meta_pct_encode("", 0, &n);
	ck_assert_str_eq(e, "");
	ck_assert_uint_eq(n, 0);
	free(e);
}
END_TEST

START_TEST(pct_encoded_len_says_when_no_escape_is_needed)
{
	/* Equal to the input length exactly when the text can go as it is,
	 * which is how call.c avoids a copy for most grpc-message values. */
	ck_assert_uint_eq(meta_pct_encoded_len("Deadline Exceeded", 17), 17);
	ck_assert_uint_eq(meta_pct_encoded_len("", 0), 0);
	ck_assert_uint_eq(meta_pct_encoded_len("100%", 4), 6);
	ck_assert_uint_eq(meta_pct_encoded_len("a\0b\n", 4), 8);
	ck_assert_uint_eq(meta_pct_encoded_len("h\xc3\xa9", 3), 7);
}
END_TEST

START_TEST(pct_decode_inverts_and_accepts_lower_hex)
{
	size_t n;
	char *d = meta_pct_decode("h%C3%A9llo%0a %25", 17, &n);
	ck_assert_uint_eq(n, 9);
	ck_assert_mem_eq(d, "h\xc3\xa9llo\n %", 9);
	ck_assert_int_eq(d[n], '\0');
	free(d);

	d = meta_pct_decode("a%00b", 5, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(d, "a\0b", 3);
	free(d);
}
END_TEST

START_TEST(pct_decode_passes_malformed_through)
{
	static const char *const cases[][2] = {
	    {"100%", "100%"},   {"%", "%"},   {"%4", "%4"},   {"%zz", "%zz"}, {"%4g!", "%4g!"},
	    {"50%%41", "50%A"}, {"%%", "%%"}, {"a%2", "a%2"}, {"%%25", "%%"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		char *d = meta_pct_decode(cases[i][0], strlen(cases[i][0]), &n);
		ck_assert_str_eq(d, cases[i][1]);
		ck_assert_uint_eq(n, strlen(cases[i][1]));
		free(d);
	}
}
END_TEST

START_TEST(pct_round_trip_all_bytes)
{
	unsigned char all[256];
	size_t n, m;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *e = meta_pct_encode((const char *)all, sizeof(all), &n);
	for (size_t i = 0; i < n; i++)
		ck_assert(e[i] >= 0x20 && e[i] <= 0x7e);
	char *d = meta_pct_decode(e, n, &m);
	ck_assert_uint_eq(m, sizeof(all));
	ck_assert_mem_eq(d, all, sizeof(all));
	free(e);
	free(d);
}
END_TEST

/* ---- base64 ---------------------------------------------------------- */

START_TEST(b64_encode_is_unpadded)
{
	static const char *const cases[][2] = {
	    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		char *e = meta_b64_encode((const uint8_t *)cases[i][0], strlen(cases[i][0]), &n);
		ck_assert_str_eq(e, cases[i][1]);
		ck_assert_uint_eq(n, strlen(cases[i][1]));
		free(e);
	}
	/* The standard alphabet, not the URL one. */
	char *e = meta_b64_encode((const uint8_t *)"\xfb\xff", 2, NULL);
	ck_assert_str_eq(e, "+/8");
	free(e);
}
END_TEST

static void b64_ok(const char *in, const char *want)
{
	uint8_t *out = NULL;
	size_t n;
	ck_assert_msg(meta_b64_decode(in, strlen(in), &out, &n) == 0, "\"%s\" should decode", in);
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(out, want, n);
	free(out);
}

START_TEST(b64_decode_padded_and_unpadded)
{
	b64_ok("", "");
	b64_ok("Zg", "f");
	b64_ok("Zg==", "f");
	b64_ok("Zm8", "fo");
	b64_ok("Zm8=", "fo");
	b64_ok("Zm9v", "foo");
	b64_ok("Zm9vYmE", "fooba");
	b64_ok("Zm9vYmE=", "fooba");
	b64_ok("Zm9vYmFy", "foobar");
	b64_ok("+/8", "\xfb\xff");
}
END_TEST

START_TEST(b64_decode_rejects_invalid)
{
	static const char *const bad[] = {
	    "Z",    "Zm9vY", "Zg=",   "Zg===",  "Z===", "====",  "=",     "Zg=a",
	    "Z=g=", "Zm9v!", "Zm 9v", "Zm9v\n", "-_8",  "Zm9v=", "Zm8==", "\x80g",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *out = (uint8_t *)"untouched";
		size_t n = 77;
		ck_assert_msg(meta_b64_decode(bad[i], strlen(bad[i]), &out, &n) == -1,
		              "\"%s\" should be rejected", bad[i]);
		ck_assert_str_eq((char *)out, "untouched");
	}
}
END_TEST

START_TEST(b64_binary_round_trip)
{
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 167 + 13);
	for (size_t len = 0; len <= sizeof(buf); len += len < 20 ? 1 : 97) {
		size_t n, m;
		uint8_t *d;
		char *e = meta_b64_encode(buf, len, &n);
		ck_assert_int_eq(meta_b64_decode(e, n, &d, &m), 0);
		ck_assert_uint_eq(m, len);
		ck_assert_mem_eq(d, buf, len);
		free(e);
		free(d);
	}
}
END_TEST

/* ---- keys and values ------------------------------------------------- */

START_TEST(key_rules)
{
	ck_assert(meta_key_is_bin("trace-bin", 9));
	ck_assert(meta_key_is_bin("-bin", 4));
	ck_assert(!meta_key_is_bin("bin", 3));
	ck_assert(!meta_key_is_bin("trace-BIN", 9));
	ck_assert(!meta_key_is_bin("trace-bin2", 10));
	/* Only len bytes count. */
	ck_assert(meta_key_is_bin("x-binary", 5));

	ck_assert(meta_key_valid("x-request-id", 12));
	ck_assert(meta_key_valid("a.b_c-9", 7));
	ck_assert(!meta_key_valid("", 0));
	ck_assert(!meta_key_valid("X-Upper", 7));
	ck_assert(!meta_key_valid(":path", 5));
	ck_assert(!meta_key_valid("sp ace", 6));
	ck_assert(!meta_key_valid("nul\0x", 5));
	ck_assert(!meta_key_valid("caf\xc3\xa9", 5));
}
END_TEST

START_TEST(value_rules)
{
	ck_assert(meta_value_valid("", 0));
	ck_assert(meta_value_valid(" hello ~world! ", 15));
	ck_assert(!meta_value_valid("tab\there", 8));
	ck_assert(!meta_value_valid("nl\n", 3));
	ck_assert(!meta_value_valid("del\x7f", 4));
	ck_assert(!meta_value_valid("\xc3\xa9", 2));
	ck_assert(!meta_value_valid("a\0b", 3));
}
END_TEST

/* ---- list ------------------------------------------------------------ */

START_TEST(list_copies_and_finds_first)
{
	struct meta m;
	char key[] = "k-bin";
	uint8_t val[] = {0, 1, 2, 0};

	meta_init(&m);
	ck_assert_ptr_null(meta_get(&m, "k-bin"));
	meta_add(&m, key, 5, val, sizeof(val));
	meta_add(&m, "k-bin", 5, "second", 6);
	meta_add(&m, "empty", 5, NULL, 0);
	/* keylen counts, not the NUL. */
	meta_add(&m, "longer-key", 4, "x", 1);
	key[0] = 'z';
	val[1] = 9;

	const struct meta_kv *kv = meta_get(&m, "k-bin");
	ck_assert_ptr_nonnull(kv);
	ck_assert_uint_eq(kv->vallen, 4);
	ck_assert_mem_eq(kv->val, "\0\1\2\0", 4);
	ck_assert_int_eq(kv->val[4], 0);
	ck_assert_str_eq(kv->key, "k-bin");

	kv = meta_get(&m, "empty");
	ck_assert_ptr_nonnull(kv);
	ck_assert_uint_eq(kv->vallen, 0);
	ck_assert_str_eq((char *)kv->val, "");

	ck_assert_ptr_nonnull(meta_get(&m, "long"));
	ck_assert_ptr_null(meta_get(&m, "longer-key"));
	ck_assert_ptr_null(meta_get(&m, "K-BIN"));
	ck_assert_ptr_null(meta_get(&m, "k-bi"));
	ck_assert_uint_eq(m.n, 4);
	meta_free(&m);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(meta_get(&m, "k-bin"));
}
END_TEST

START_TEST(list_grows_and_is_reusable)
{
	struct meta m;
	char k[16];

	meta_init(&m);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 100; i++) {
			int n = snprintf(k, sizeof(k), "k%d", i);
			meta_add(&m, k, (size_t)n, k, (size_t)n);
		}
		ck_assert_uint_eq(m.n, 100);
		const struct meta_kv *kv = meta_get(&m, "k73");
		ck_assert_ptr_nonnull(kv);
		ck_assert_str_eq((char *)kv->val, "k73");
		meta_free(&m);
	}
	meta_free(&m);
}
END_TEST

Suite *meta_suite(void)
{
	Suite *s = suite_create("meta");
	TCase *tc;

	tc = tcase_create("timeout");
	tcase_add_test(tc, timeout_parses_every_unit);
	tcase_add_test(tc, timeout_rounds_up_to_ms);
	tcase_add_test(tc, timeout_rejects_malformed);
	tcase_add_test(tc, timeout_format_shortest_exact);
	tcase_add_test(tc, timeout_format_round_trips_up);
	suite_add_tcase(s, tc);

	tc = tcase_create("percent");
	tcase_add_test(tc, pct_encode_escapes_only_what_it_must);
	tcase_add_test(tc, pct_encoded_len_says_when_no_escape_is_needed);
	tcase_add_test(tc, pct_decode_inverts_and_accepts_lower_hex);
	tcase_add_test(tc, pct_decode_passes_malformed_through);
	tcase_add_test(tc, pct_round_trip_all_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("base64");
	tcase_add_test(tc, b64_encode_is_unpadded);
	tcase_add_test(tc, b64_decode_padded_and_unpadded);
	tcase_add_test(tc, b64_decode_rejects_invalid);
	tcase_add_test(tc, b64_binary_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, key_rules);
	tcase_add_test(tc, value_rules);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_test(tc, list_copies_and_finds_first);
	tcase_add_test(tc, list_grows_and_is_reusable);
	suite_add_tcase(s, tc);
	return s;
}
