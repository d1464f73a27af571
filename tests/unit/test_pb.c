/* Unit tests for lib/pb's request checks: pb_check_strings and pb_unpack. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"

/* Appends a length-delimited field (len < 128) to b at *n. */
static void field(uint8_t *b, size_t *n, int num, const void *p, size_t len)
{
	b[(*n)++] = (uint8_t)(num << 3 | 2);
	b[(*n)++] = (uint8_t)len;
	memcpy(b + *n, p, len);
	*n += len;
}

static int check_spec(const uint8_t *b, size_t n, char *err, size_t errlen)
{
	return pb_check_strings(&orchestrator__v1__task_spec__descriptor, b, n, err, errlen);
}

START_TEST(valid_strings_pass)
{
	uint8_t b[128], entry[32];
	size_t n = 0, en = 0;
	char err[128] = "";
	field(b, &n, 1, "resize \xe6\x97\xa5", 10); /* name, with a 3-byte sequence */
	field(entry, &en, 1, "k", 1);
	field(entry, &en, 2, "", 0);
	field(b, &n, 8, entry, en);         /* a label */
	field(b, &n, 3, "\xff\x00\xfe", 3); /* payload: bytes, anything goes */
	field(b, &n, 99, "\xff", 1);        /* unknown: never read */
	ck_assert_int_eq(check_spec(b, n, err, sizeof err), 0);
	ck_assert_str_eq(err, "");
	ProtobufCMessage *m =
	    pb_unpack(&orchestrator__v1__task_spec__descriptor, b, n, NULL, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(((Orchestrator__V1__TaskSpec *)m)->name, "resize \xe6\x97\xa5");
	protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

START_TEST(invalid_utf8_is_named)
{
	uint8_t b[128];
	size_t n = 0;
	char err[128];
	field(b, &n, 1, "ok", 2);
	field(b, &n, 2, "bad \xc0\xaf", 6); /* overlong '/' in the description */
	ck_assert_int_eq(check_spec(b, n, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "TaskSpec.description is not valid UTF-8");
	ck_assert_ptr_null(
	    pb_unpack(&orchestrator__v1__task_spec__descriptor, b, n, NULL, err, sizeof err));
	ck_assert_str_eq(err, "TaskSpec.description is not valid UTF-8");
}
END_TEST

START_TEST(nested_and_nul)
{
	uint8_t b[128], entry[32];
	size_t n = 0, en = 0;
	char err[128];
	field(entry, &en, 1, "k", 1);
	field(entry, &en, 2, "\xed\xa0\x80", 3); /* a surrogate */
	field(b, &n, 8, entry, en);
	ck_assert_int_eq(check_spec(b, n, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "LabelsEntry.value is not valid UTF-8");

	n = 0;
	field(b, &n, 7, "a\0b", 3);
	ck_assert_int_eq(check_spec(b, n, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "TaskSpec.idempotency_key contains a NUL byte");
}
END_TEST

START_TEST(wire_errors_are_left_to_unpack)
{
	/* A name declaring 100 bytes and bringing 2: the walk stops, unpack
	 * refuses, and pb_unpack says so. */
	static const uint8_t b[] = {0x0a, 100, 'a', 'b'};
	char err[128];
	ck_assert_int_eq(check_spec(b, sizeof b, err, sizeof err), 0);
	ck_assert_ptr_null(pb_unpack(&orchestrator__v1__task_spec__descriptor, b, sizeof b, NULL,
	                             err, sizeof err));
	ck_assert_str_eq(err, "TaskSpec does not decode as protobuf");
	/* Truncated varints and a group wire type, too. */
	static const uint8_t v[] = {0x20, 0xff};
	ck_assert_int_eq(check_spec(v, sizeof v, err, sizeof err), 0);
	static const uint8_t g[] = {0x0b};
	ck_assert_int_eq(check_spec(g, sizeof g, err, sizeof err), 0);
}
END_TEST

START_TEST(oneof_message_is_walked)
{
	/* WorkerResponse.progress (field 3) holding a message (field 4) that is
	 * not UTF-8. */
	uint8_t inner[32], b[64];
	size_t in = 0, n = 0;
	char err[128];
	field(inner, &in, 4, "\xff", 1);
	field(b, &n, 3, inner, in);
	ck_assert_int_eq(
	    pb_check_strings(&orchestrator__v1__worker_response__descriptor, b, n, err, sizeof err),
	    -EINVAL);
	ck_assert_str_eq(err, "WorkerProgress.message is not valid UTF-8");
}
END_TEST

/* Packs an assignment of task id with a payload of n bytes of c; the
 * caller frees the buffer. */
static uint8_t *assignment(const char *id, size_t n, int c, size_t *len)
{
	Orchestrator__V1__TaskSpec spec = ORCHESTRATOR__V1__TASK_SPEC__INIT;
	spec.name = "echo";
	uint8_t *payload = malloc(n + 1);
	memset(payload, c, n);
	spec.payload.data = payload;
	spec.payload.len = n;
	Orchestrator__V1__TaskAssignment__Assign as =
	    ORCHESTRATOR__V1__TASK_ASSIGNMENT__ASSIGN__INIT;
	as.task_id = (char *)id;
	as.spec = &spec;
	as.attempt = 2;
	Orchestrator__V1__TaskAssignment m = ORCHESTRATOR__V1__TASK_ASSIGNMENT__INIT;
	m.kind_case = ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_ASSIGN;
	m.assign = &as;
	*len = orchestrator__v1__task_assignment__get_packed_size(&m);
	uint8_t *b = malloc(*len);
	orchestrator__v1__task_assignment__pack(&m, b);
	free(payload);
	return b;
}

static void check_assignment(Orchestrator__V1__TaskAssignment *m, const char *id, size_t n, int c)
{
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->kind_case, ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_ASSIGN);
	ck_assert_str_eq(m->assign->task_id, id);
	ck_assert_int_eq(m->assign->attempt, 2);
	ck_assert_str_eq(m->assign->spec->name, "echo");
	ck_assert_uint_eq(m->assign->spec->payload.len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(m->assign->spec->payload.data[i], c);
}

/* The arena serves one message after another: each sees its own fields,
 * nothing of the one before; a message too big for it goes to malloc and
 * is freed on release (the SAN build checks for leaks). */
START_TEST(arena_unpacks_message_after_message)
{
	struct pb_arena arena;
	pb_arena_init(&arena);
	size_t len;
	uint8_t *b = assignment("first-task", 100, 'a', &len);
	Orchestrator__V1__TaskAssignment *m =
	    orchestrator__v1__task_assignment__unpack(&arena.allocator, len, b);
	check_assignment(m, "first-task", 100, 'a');
	ck_assert_int_eq(arena.spilled, 0);
	ck_assert_uint_gt(arena.used, 100);
	pb_arena_release(&arena, &m->base);
	ck_assert_uint_eq(arena.used, 0);
	free(b);

	b = assignment("big", 3 * sizeof arena.buf, 'b', &len);
	m = orchestrator__v1__task_assignment__unpack(&arena.allocator, len, b);
	check_assignment(m, "big", 3 * sizeof arena.buf, 'b');
	ck_assert_int_eq(arena.spilled, 1);
	pb_arena_release(&arena, &m->base);
	ck_assert_int_eq(arena.spilled, 0);

	/* Cut short: unpack fails and gives back what it took. */
	ck_assert_ptr_null(orchestrator__v1__task_assignment__unpack(&arena.allocator, len - 1, b));
	pb_arena_release(&arena, NULL);
	ck_assert_uint_eq(arena.used, 0);
	free(b);

	b = assignment("t2", 3, 'c', &len);
	m = orchestrator__v1__task_assignment__unpack(&arena.allocator, len, b);
	check_assignment(m, "t2", 3, 'c');
	pb_arena_release(&arena, &m->base);
	free(b);
}
END_TEST

/* pb_unpack into an arena: a request decodes into it, and one that does
 * not decode leaves it free for the next. */
START_TEST(unpack_into_arena)
{
	struct pb_arena arena;
	pb_arena_init(&arena);
	uint8_t b[64];
	size_t n = 0;
	char err[128];
	field(b, &n, 1, "resize", 6);
	field(b, &n, 3, "\xff\x00", 2);
	Orchestrator__V1__TaskSpec *m = (void *)pb_unpack(&orchestrator__v1__task_spec__descriptor,
	                                                  b, n, &arena, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->name, "resize");
	ck_assert_uint_eq(m->payload.len, 2);
	ck_assert_uint_gt(arena.used, 0);
	ck_assert_int_eq(arena.spilled, 0);
	pb_arena_release(&arena, &m->base);
	ck_assert_uint_eq(arena.used, 0);

	/* The name declares more bytes than come: unpack fails part way. */
	static const uint8_t cut[] = {0x12, 2, 'o', 'k', 0x0a, 100, 'a', 'b'};
	ck_assert_ptr_null(pb_unpack(&orchestrator__v1__task_spec__descriptor, cut, sizeof cut,
	                             &arena, err, sizeof err));
	ck_assert_str_eq(err, "TaskSpec does not decode as protobuf");
	ck_assert_uint_eq(arena.used, 0);
	ck_assert_int_eq(arena.spilled, 0);
}
END_TEST

Suite *pb_suite(void)
{
	Suite *s = suite_create("pb");
	TCase *tc = tcase_create("pb");

	tcase_add_test(tc, valid_strings_pass);
	tcase_add_test(tc, invalid_utf8_is_named);
	tcase_add_test(tc, nested_and_nul);
	tcase_add_test(tc, wire_errors_are_left_to_unpack);
	tcase_add_test(tc, oneof_message_is_walked);
	tcase_add_test(tc, arena_unpacks_message_after_message);
	tcase_add_test(tc, unpack_into_arena);
	suite_add_tcase(s, tc);
	return s;
}
