/* Unit tests for lib/reflect's descriptor index: symbol and file lookup,
 * import closure, corrupt input, and the set embedded at build time. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "reflect.h"

/* ---- a tiny protobuf writer for hand-made FileDescriptorSets ------------ */

struct buf {
	uint8_t b[2048];
	size_t n;
};

static void put_varint(struct buf *b, uint64_t v)
{
	do {
		ck_assert_uint_lt(b->n, sizeof b->b);
		b->b[b->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void put_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
	put_varint(b, (uint64_t)field << 3 | 2);
	put_varint(b, n);
	ck_assert_uint_le(b->n + n, sizeof b->b);
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put_str(struct buf *b, uint32_t field, const char *s)
{
	put_bytes(b, field, s, strlen(s));
}

static void put_msg(struct buf *b, uint32_t field, const struct buf *m)
{
	put_bytes(b, field, m->b, m->n);
}

/* A message or service of one name plus children already encoded. */
static struct buf named(const char *name)
{
	struct buf m = {.n = 0};
	put_str(&m, 1, name);
	return m;
}

/*
 * a.proto: package p; message M { message N { enum NE } enum E } enum TopE;
 *          service S { rpc Do }
 * b.proto: package p.q; import "a.proto"; message B
 * c.proto: no package; import "b.proto", "a.proto"; message C; service CS { rpc Run }
 * plus fields the index skips: a varint, a fixed32, a fixed64.
 */
static struct buf file_a, file_b, file_c, set;

static void make_set(void)
{
	struct buf ne = named("NE"), n = named("N"), e = named("E"), m = named("M");
	put_msg(&n, 4, &ne);
	put_msg(&m, 3, &n);
	put_msg(&m, 4, &e);
	struct buf tope = named("TopE"), s = named("S"), doo = named("Do");
	put_msg(&s, 2, &doo);
	memset(&file_a, 0, sizeof file_a);
	put_str(&file_a, 1, "a.proto");
	put_str(&file_a, 2, "p");
	put_msg(&file_a, 4, &m);
	put_msg(&file_a, 5, &tope);
	put_msg(&file_a, 6, &s);
	put_str(&file_a, 12, "proto3");

	struct buf bm = named("B");
	memset(&file_b, 0, sizeof file_b);
	put_str(&file_b, 1, "b.proto");
	put_str(&file_b, 2, "p.q");
	put_str(&file_b, 3, "a.proto");
	put_varint(&file_b, 10 << 3 | 0); /* public_dependency = 0 */
	put_varint(&file_b, 0);
	put_msg(&file_b, 4, &bm);

	struct buf cm = named("C"), cs = named("CS"), run = named("Run");
	put_msg(&cs, 2, &run);
	memset(&file_c, 0, sizeof file_c);
	put_msg(&file_c, 4, &cm); /* before the name: order must not matter */
	put_str(&file_c, 1, "c.proto");
	put_str(&file_c, 3, "b.proto");
	put_str(&file_c, 3, "a.proto");
	put_msg(&file_c, 6, &cs);
	put_varint(&file_c, 99 << 3 | 5); /* unknown fixed32 */
	for (int i = 0; i < 4; i++)
		file_c.b[file_c.n++] = 0xff;
	put_varint(&file_c, 98 << 3 | 1); /* unknown fixed64 */
	for (int i = 0; i < 8; i++)
		file_c.b[file_c.n++] = 0xee;

	memset(&set, 0, sizeof set);
	put_msg(&set, 1, &file_a);
	put_msg(&set, 1, &file_b);
	put_msg(&set, 1, &file_c);
}

static struct reflect_db *db_of(const struct buf *b)
{
	struct reflect_db *db = NULL;
	ck_assert_int_eq(reflect_db_new(b->b, b->n, &db), 0);
	ck_assert_ptr_nonnull(db);
	return db;
}

static const char *file_of(const struct reflect_db *db, const char *symbol, int *kind)
{
	const uint8_t *bytes;
	size_t len;
	int i = reflect_db_find_symbol(db, symbol, kind);
	return i < 0 ? NULL : reflect_db_file(db, (size_t)i, &bytes, &len);
}

START_TEST(test_reflect_finds_fully_qualified_symbols_of_every_kind)
{
	make_set();
	struct reflect_db *db = db_of(&set);
	static const struct {
		const char *symbol, *file;
		int kind;
	} cases[] = {
	    {"p.M", "a.proto", REFLECT_MESSAGE},   {"p.M.N", "a.proto", REFLECT_MESSAGE},
	    {"p.M.N.NE", "a.proto", REFLECT_ENUM}, {"p.M.E", "a.proto", REFLECT_ENUM},
	    {"p.TopE", "a.proto", REFLECT_ENUM},   {"p.S", "a.proto", REFLECT_SERVICE},
	    {"p.S.Do", "a.proto", REFLECT_METHOD}, {"p.q.B", "b.proto", REFLECT_MESSAGE},
	    {"C", "c.proto", REFLECT_MESSAGE},     {"CS", "c.proto", REFLECT_SERVICE},
	    {"CS.Run", "c.proto", REFLECT_METHOD},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int kind = 0;
		const char *f = file_of(db, cases[i].symbol, &kind);
		ck_assert_msg(f != NULL, "%s not found", cases[i].symbol);
		ck_assert_str_eq(f, cases[i].file);
		ck_assert_int_eq(kind, cases[i].kind);
	}
	static const char *const missing[] = {"p",    "M",       "N",   "p.N", "p.M.X",
	                                      ".p.M", "p.S.Run", "q.B", "",    "p.M."};
	for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
		ck_assert_int_eq(reflect_db_find_symbol(db, missing[i], NULL), -1);
	reflect_db_del(db);
}
END_TEST

START_TEST(test_reflect_finds_files_by_name_with_their_exact_bytes)
{
	make_set();
	struct reflect_db *db = db_of(&set);
	ck_assert_uint_eq(reflect_db_nfiles(db), 3);
	int i = reflect_db_find_file(db, "b.proto");
	ck_assert_int_ge(i, 0);
	const uint8_t *bytes;
	size_t len;
	ck_assert_str_eq(reflect_db_file(db, (size_t)i, &bytes, &len), "b.proto");
	ck_assert_uint_eq(len, file_b.n);
	ck_assert_mem_eq(bytes, file_b.b, len);
	ck_assert_int_eq(reflect_db_find_file(db, "x.proto"), -1);
	ck_assert_int_eq(reflect_db_find_file(db, "b"), -1);
	reflect_db_del(db);
}
END_TEST

START_TEST(test_reflect_closure_is_the_file_then_each_import_once)
{
	make_set();
	struct reflect_db *db = db_of(&set);
	int a = reflect_db_find_file(db, "a.proto"), b = reflect_db_find_file(db, "b.proto"),
	    c = reflect_db_find_file(db, "c.proto");
	int out[3];
	/* c imports b and a, b imports a again: a diamond. */
	ck_assert_uint_eq(reflect_db_closure(db, c, out), 3);
	ck_assert_int_eq(out[0], c);
	ck_assert((out[1] == a && out[2] == b) || (out[1] == b && out[2] == a));
	ck_assert_uint_eq(reflect_db_closure(db, b, out), 2);
	ck_assert_int_eq(out[0], b);
	ck_assert_int_eq(out[1], a);
	ck_assert_uint_eq(reflect_db_closure(db, a, out), 1);
	ck_assert_int_eq(out[0], a);
	reflect_db_del(db);
}
END_TEST

START_TEST(test_reflect_rejects_corrupt_sets)
{
	struct reflect_db *db = NULL;
	make_set();
	/* Cut inside the last file. */
	ck_assert_int_eq(reflect_db_new(set.b, set.n - 3, &db), E_CORRUPT);

	/* An import the set lacks. */
	struct buf s = {.n = 0};
	put_msg(&s, 1, &file_b);
	ck_assert_int_eq(reflect_db_new(s.b, s.n, &db), E_CORRUPT);

	/* A file without a name, and a file twice. */
	struct buf noname = named("x"), f = {.n = 0};
	put_msg(&f, 4, &noname);
	memset(&s, 0, sizeof s);
	put_msg(&s, 1, &f);
	ck_assert_int_eq(reflect_db_new(s.b, s.n, &db), E_CORRUPT);
	memset(&s, 0, sizeof s);
	put_msg(&s, 1, &file_a);
	put_msg(&s, 1, &file_a);
	ck_assert_int_eq(reflect_db_new(s.b, s.n, &db), E_CORRUPT);

	/* A group (wire type 3), which descriptor.proto never uses. */
	static const uint8_t group[] = {1 << 3 | 3};
	ck_assert_int_eq(reflect_db_new(group, sizeof group, &db), E_CORRUPT);
	ck_assert_ptr_null(db);

	/* An empty set is a valid one. */
	static const uint8_t empty[1];
	ck_assert_int_eq(reflect_db_new(empty, 0, &db), 0);
	ck_assert_uint_eq(reflect_db_nfiles(db), 0);
	ck_assert_int_eq(reflect_db_find_symbol(db, "p.M", NULL), -1);
	reflect_db_del(db);
	reflect_db_del(NULL);
}
END_TEST

START_TEST(test_reflect_survives_every_truncation_and_byte_flip)
{
	make_set();
	for (size_t cut = 0; cut <= set.n; cut++) {
		struct reflect_db *db = NULL;
		int rv = reflect_db_new(set.b, cut, &db);
		ck_assert(rv == 0 || rv == E_CORRUPT);
		reflect_db_del(rv == 0 ? db : NULL);
	}
	for (size_t i = 0; i < set.n; i++) {
		static const uint8_t flips[] = {0x01, 0x80, 0xff};
		for (size_t k = 0; k < sizeof flips; k++) {
			struct buf m = set;
			m.b[i] ^= flips[k];
			struct reflect_db *db = NULL;
			int rv = reflect_db_new(m.b, m.n, &db);
			ck_assert(rv == 0 || rv == E_CORRUPT);
			if (rv == 0) {
				size_t n = reflect_db_nfiles(db);
				int *out = malloc((n ? n : 1) * sizeof *out);
				for (size_t f = 0; f < n; f++)
					ck_assert_uint_le(reflect_db_closure(db, (int)f, out), n);
				free(out);
				reflect_db_del(db);
			}
		}
	}
}
END_TEST

START_TEST(test_reflect_embedded_set_indexes_orchd_services)
{
	struct reflect_db *db = NULL;
	ck_assert_int_eq(reflect_db_new(reflect_orchd_set, reflect_orchd_set_len, &db), 0);
	static const struct {
		const char *symbol, *file;
	} cases[] = {
	    {"orchestrator.v1.Scheduler", "orchestrator/v1/orchestrator.proto"},
	    {"orchestrator.v1.Gateway.HealthCheck", "orchestrator/v1/orchestrator.proto"},
	    {"orchestrator.v1.HealthCheckResponse", "orchestrator/v1/orchestrator.proto"},
	    {"grpc.health.v1.Health.Watch", "grpc/health/v1/health.proto"},
	    {"grpc.reflection.v1alpha.ServerReflection",
	     "grpc/reflection/v1alpha/reflection.proto"},
	    {"grpc.reflection.v1.ServerReflectionRequest", "grpc/reflection/v1/reflection.proto"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *f = file_of(db, cases[i].symbol, NULL);
		ck_assert_msg(f != NULL, "%s not found", cases[i].symbol);
		ck_assert_str_eq(f, cases[i].file);
	}
	reflect_db_del(db);
}
END_TEST

Suite *reflect_suite(void)
{
	Suite *s = suite_create("reflect");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_reflect_finds_fully_qualified_symbols_of_every_kind);
	tcase_add_test(tc, test_reflect_finds_files_by_name_with_their_exact_bytes);
	tcase_add_test(tc, test_reflect_closure_is_the_file_then_each_import_once);
	tcase_add_test(tc, test_reflect_rejects_corrupt_sets);
	tcase_add_test(tc, test_reflect_survives_every_truncation_and_byte_flip);
	tcase_add_test(tc, test_reflect_embedded_set_indexes_orchd_services);
	suite_add_tcase(s, tc);
	return s;
}
