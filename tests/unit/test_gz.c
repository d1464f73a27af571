/* Unit tests for lib/gz: round trips, corrupt input, the output limit. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "error.h"
#include "gz.h"

static uint8_t *pseudo_random(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void round_trip(const uint8_t *in, size_t len)
{
	uint8_t *z, *back;
	size_t zlen, blen;

	ck_assert_int_eq(gz_compress(in, len, &z, &zlen), 0);
	/* A gzip member: magic 1f 8b, method deflate. */
	ck_assert_uint_ge(zlen, 18);
	ck_assert_int_eq(z[0], 0x1f);
	ck_assert_int_eq(z[1], 0x8b);
	ck_assert_int_eq(z[2], 8);
	ck_assert_int_eq(gz_decompress(z, zlen, len, &back, &blen), 0);
	ck_assert_uint_eq(blen, len);
	if (len)
		ck_assert_mem_eq(back, in, len);
	free(z);
	free(back);
}

START_TEST(round_trips)
{
	static const size_t sizes[] = {0, 1, 100, 65536, 1 << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = pseudo_random(sizes[i]);
		round_trip(p, sizes[i]);
		memset(p, 'a', sizes[i]);
		round_trip(p, sizes[i]);
		free(p);
	}
	round_trip((const uint8_t *)"hello, gzip", 11);
}
END_TEST

START_TEST(interoperates_with_zlib_gzip)
{
	/* Decompress what zlib's own gzip writer produced, at another
	 * compression level, so we do not only test against ourselves. */
	static const char text[] = "the quick brown fox jumps over the lazy dog, twice: "
	                           "the quick brown fox jumps over the lazy dog";
	uint8_t z[256], *back;
	size_t blen;
	z_stream s = {0};

	ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, 15 + 16, 9, Z_FILTERED), Z_OK);
	s.next_in = (Bytef *)text;
	s.avail_in = sizeof(text);
	s.next_out = z;
	s.avail_out = sizeof(z);
	ck_assert_int_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
	ck_assert_int_eq(gz_decompress(z, s.total_out, 1000, &back, &blen), 0);
	ck_assert_uint_eq(blen, sizeof(text));
	ck_assert_mem_eq(back, text, sizeof(text));
	free(back);
	deflateEnd(&s);
}
END_TEST

START_TEST(concatenated_members)
{
	uint8_t *a, *b, *both, *back;
	size_t alen, blen, n;

	ck_assert_int_eq(gz_compress((const uint8_t *)"foo", 3, &a, &alen), 0);
	ck_assert_int_eq(gz_compress((const uint8_t *)"barbaz", 6, &b, &blen), 0);
	both = malloc(alen + blen);
	memcpy(both, a, alen);
	memcpy(both + alen, b, blen);
	ck_assert_int_eq(gz_decompress(both, alen + blen, 100, &back, &n), 0);
	ck_assert_uint_eq(n, 9);
	ck_assert_mem_eq(back, "foobarbaz", 9);
	free(a);
	free(b);
	free(both);
	free(back);
}
END_TEST

START_TEST(corrupt_input)
{
	uint8_t *z, *back = (uint8_t *)"untouched", *bad;
	size_t zlen, n;
	uint8_t *p = pseudo_random(4096);

	ck_assert_int_eq(gz_compress(p, 4096, &z, &zlen), 0);

	/* Empty, garbage, zlib-wrapped instead of gzip. */
	ck_assert_int_eq(gz_decompress(z, 0, 1 << 20, &back, &n), E_CORRUPT);
	ck_assert_int_eq(gz_decompress(p, 100, 1 << 20, &back, &n), E_CORRUPT);
	ck_assert_int_eq(gz_decompress((const uint8_t *)"\x78\x9c\x03\x00\x00\x00\x00\x01", 8,
	                               1 << 20, &back, &n),
	                 E_CORRUPT);

	/* Truncated anywhere, including in the CRC/length trailer. */
	ck_assert_int_eq(gz_decompress(z, zlen / 2, 1 << 20, &back, &n), E_CORRUPT);
	ck_assert_int_eq(gz_decompress(z, zlen - 1, 1 << 20, &back, &n), E_CORRUPT);
	ck_assert_int_eq(gz_decompress(z, 10, 1 << 20, &back, &n), E_CORRUPT);

	/* A flipped bit in the body or in the CRC. */
	bad = malloc(zlen + 3);
	memcpy(bad, z, zlen);
	bad[zlen - 6] ^= 0x01;
	ck_assert_int_eq(gz_decompress(bad, zlen, 1 << 20, &back, &n), E_CORRUPT);
	memcpy(bad, z, zlen);
	bad[zlen / 2] ^= 0x40;
	ck_assert_int_eq(gz_decompress(bad, zlen, 1 << 20, &back, &n), E_CORRUPT);

	/* Trailing garbage after a valid member. */
	memcpy(bad, z, zlen);
	memcpy(bad + zlen, "xyz", 3);
	ck_assert_int_eq(gz_decompress(bad, zlen + 3, 1 << 20, &back, &n), E_CORRUPT);

	ck_assert_str_eq((char *)back, "untouched");
	free(bad);
	free(z);
	free(p);
}
END_TEST

START_TEST(max_out_stops_zip_bomb)
{
	const size_t big = 10 << 20;
	uint8_t *p = calloc(1, big), *z, *back = NULL;
	size_t zlen, n;

	ck_assert_int_eq(gz_compress(p, big, &z, &zlen), 0);
	ck_assert_uint_lt(zlen, 64 * 1024);
	ck_assert_int_eq(gz_decompress(z, zlen, 1 << 20, &back, &n), E_TOOBIG);
	ck_assert_ptr_null(back);
	ck_assert_int_eq(gz_decompress(z, zlen, big - 1, &back, &n), E_TOOBIG);
	ck_assert_int_eq(gz_decompress(z, zlen, 0, &back, &n), E_TOOBIG);
	/* Exactly the limit is allowed. */
	ck_assert_int_eq(gz_decompress(z, zlen, big, &back, &n), 0);
	ck_assert_uint_eq(n, big);
	ck_assert_mem_eq(back, p, big);
	free(back);
	free(z);
	free(p);
}
END_TEST

START_TEST(max_out_zero_allows_empty)
{
	uint8_t *z, *back;
	size_t zlen, n;

	ck_assert_int_eq(gz_compress(NULL, 0, &z, &zlen), 0);
	ck_assert_int_eq(gz_decompress(z, zlen, 0, &back, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(back);
	free(z);
}
END_TEST

Suite *gz_suite(void)
{
	Suite *s = suite_create("gz");
	TCase *tc = tcase_create("gz");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, interoperates_with_zlib_gzip);
	tcase_add_test(tc, concatenated_members);
	tcase_add_test(tc, corrupt_input);
	tcase_add_test(tc, max_out_stops_zip_bomb);
	tcase_add_test(tc, max_out_zero_allows_empty);
	suite_add_tcase(s, tc);
	return s;
}
