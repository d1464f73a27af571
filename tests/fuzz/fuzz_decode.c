/*
 * fuzz_decode: libFuzzer target over every protobuf message a role decodes
 * (requests from clients, workers and gateways; answers from the
 * scheduler), and what the roles do with a decoded spec before trusting
 * it. The first input byte picks the message type (table below), the rest
 * is the serialized message, as it would arrive in one gRPC message.
 *
 * Per input:
 *   - protobuf-c's unpack and lib/pb.h's pb_unpack (the UTF-8 and NUL
 *     check the roles apply to requests) must agree: pb_unpack accepts
 *     exactly what unpack accepts and pb_check_strings passes, and then
 *     every string in the decoded message is valid UTF-8; pb_unpack runs
 *     on one pb_arena for every input, as the roles unpack requests, and
 *     what it decodes packs to the same bytes as unpack's;
 *   - a decoded message packs to get_packed_size bytes, and packing what
 *     those bytes unpack to gives the same bytes again;
 *   - TaskSpec (SubmitTask, and the spec inside an assignment): taskpb_to_task,
 *     task_spec_check and task_labels_check as the gateway and scheduler run
 *     them, then the spec the scheduler would send a worker (taskpb_spec),
 *     which must decode back to the same task; task_clone must equal it;
 *   - reflection requests: the descriptor lookups reflect.c answers with.
 *
 * Seeds: tests/fuzz/gen_corpus.py decode. Run: make fuzz-decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "log.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "reflect.h"
#include "task.h"
#include "taskpb.h"
#include "utf8.h"
#include "xalloc.h"

#define MAX_PAYLOAD (1u << 20)

/* Which decoder a message type gets besides unpack. */
enum extra { X_NONE, X_SPEC, X_ASSIGNMENT, X_WORKER, X_REFLECTION };

/* Index = first input byte modulo the count. Keep the order: the seed
 * corpus names its files by index. */
static const struct {
	const ProtobufCMessageDescriptor *d;
	enum extra extra;
} types[] = {
    /* Requests the roles serve. */
    {&orchestrator__v1__task_spec__descriptor, X_SPEC},                           /* 0 */
    {&orchestrator__v1__worker_response__descriptor, X_WORKER},                   /* 1 */
    {&orchestrator__v1__progress_request__descriptor, X_NONE},                    /* 2 */
    {&orchestrator__v1__get_task_request__descriptor, X_NONE},                    /* 3 */
    {&orchestrator__v1__cancel_task_request__descriptor, X_NONE},                 /* 4 */
    {&orchestrator__v1__list_tasks_request__descriptor, X_NONE},                  /* 5 */
    {&orchestrator__v1__list_workers_request__descriptor, X_NONE},                /* 6 */
    {&orchestrator__v1__get_worker_status_request__descriptor, X_NONE},           /* 7 */
    {&grpc__health__v1__health_check_request__descriptor, X_NONE},                /* 8 */
    {&grpc__reflection__v1__server_reflection_request__descriptor, X_REFLECTION}, /* 9 */
    /* Answers a role reads from another (worker and gateway from the
     * scheduler; the client commands from the gateway). */
    {&orchestrator__v1__task_assignment__descriptor, X_ASSIGNMENT}, /* 10 */
    {&orchestrator__v1__task_accepted__descriptor, X_NONE},         /* 11 */
    {&orchestrator__v1__cancel_task_response__descriptor, X_NONE},  /* 12 */
    {&orchestrator__v1__task_progress__descriptor, X_NONE},         /* 13 */
    {&orchestrator__v1__task__descriptor, X_NONE},                  /* 14 */
    {&orchestrator__v1__list_tasks_response__descriptor, X_NONE},   /* 15 */
    {&orchestrator__v1__list_workers_response__descriptor, X_NONE}, /* 16 */
    {&orchestrator__v1__health_check_response__descriptor, X_NONE}, /* 17 */
    {&grpc__health__v1__health_check_response__descriptor, X_NONE}, /* 18 */
};
#define NTYPES (sizeof types / sizeof types[0])

static struct reflect_db *db;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_OFF);
	if (reflect_db_new(reflect_orchd_set, reflect_orchd_set_len, &db) != 0)
		abort();
	return 0;
}

/* ---- checks on any decoded message ---------------------------------------- */

/* Visits m and every message nested in it: checks (when utf8 is set)
 * that each string field is valid UTF-8; returns the count of unknown
 * fields kept. */
static size_t visit(const ProtobufCMessage *m, int utf8)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	size_t unknown = m->n_unknown_fields;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		size_t n = 1;
		const void *const *v = (const void *const *)(base + f->offset);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(base + f->quantifier_offset);
			v = *(const void *const *const *)(base + f->offset);
		}
		for (size_t k = 0; k < n; k++) {
			if (!v[k])
				continue;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE)
				unknown += visit(v[k], utf8);
			else if (utf8 && !utf8_valid(v[k], strlen(v[k])))
				abort();
		}
	}
	return unknown;
}

/* Packing is exact and stable: pack(m) = b, and pack(unpack(b)) = b.
 * Messages with unknown fields pack them back as they were kept, which
 * protobuf-c does not promise to round-trip (it keeps a field number 0,
 * for one, that it then refuses to read): those only pack. */
static void repack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = xmalloc(n + 1);
	if (protobuf_c_message_pack(m, b) != n)
		abort();
	if (visit(m, 0)) {
		free(b);
		return;
	}
	ProtobufCMessage *m2 = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
	if (!m2)
		abort();
	size_t n2 = protobuf_c_message_get_packed_size(m2);
	uint8_t *b2 = xmalloc(n2 + 1);
	if (protobuf_c_message_pack(m2, b2) != n2 || n2 != n || memcmp(b, b2, n) != 0)
		abort();
	free(b2);
	protobuf_c_message_free_unpacked(m2, NULL);
	free(b);
}

/* ---- TaskSpec: what the gateway and the scheduler do with one ------------ */

static int same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static void same_task(const struct task *a, const struct task *b)
{
	if (!same_str(a->name, b->name) || !same_str(a->description, b->description) ||
	    !same_str(a->idempotency_key, b->idempotency_key) || a->priority != b->priority ||
	    a->max_attempts != b->max_attempts || a->timeout_ms != b->timeout_ms ||
	    a->payload_len != b->payload_len ||
	    (a->payload_len && memcmp(a->payload, b->payload, a->payload_len) != 0) ||
	    a->nlabels != b->nlabels)
		abort();
	for (size_t i = 0; i < a->nlabels; i++)
		if (!same_str(a->labels[i].key, b->labels[i].key) ||
		    !same_str(a->labels[i].value, b->labels[i].value))
			abort();
}

static void spec(const Orchestrator__V1__TaskSpec *s)
{
	if (!s)
		return;
	struct task *t = taskpb_to_task(s, 1);
	char err[256];
	err[0] = '\0';
	int bad = task_spec_check(t->name, t->payload_len, t->max_attempts, t->timeout_ms,
	                          MAX_PAYLOAD, err, sizeof err) != 0 ||
	          task_labels_check(t->labels, t->nlabels, err, sizeof err) != 0;
	/* A rejection always says why. */
	if (bad && (!err[0] || strlen(err) >= sizeof err))
		abort();
	for (size_t i = 0; i < t->nlabels && i < 4; i++)
		if (!task_label(t, t->labels[i].key))
			abort();

	/* The spec as the scheduler sends it to a worker, decoded again. */
	struct taskpb b = {0};
	Orchestrator__V1__TaskSpec *p = taskpb_spec(&b, t);
	size_t n = orchestrator__v1__task_spec__get_packed_size(p);
	uint8_t *buf = xmalloc(n + 1);
	orchestrator__v1__task_spec__pack(p, buf);
	taskpb_free(&b);
	Orchestrator__V1__TaskSpec *back = orchestrator__v1__task_spec__unpack(NULL, n, buf);
	if (!back)
		abort();
	struct task *t2 = taskpb_to_task(back, 1);
	same_task(t, t2);
	task_del(t2);
	orchestrator__v1__task_spec__free_unpacked(back, NULL);
	free(buf);

	/* The whole Task and a progress update, as GetTask and WatchTask
	 * answer. */
	Orchestrator__V1__Task tm;
	taskpb_task(&b, t, &tm);
	buf = xmalloc(orchestrator__v1__task__get_packed_size(&tm) + 1);
	orchestrator__v1__task__pack(&tm, buf);
	free(buf);
	taskpb_free(&b);
	Orchestrator__V1__TaskProgress pm;
	taskpb_progress(&b, t, 2, &pm);
	buf = xmalloc(orchestrator__v1__task_progress__get_packed_size(&pm) + 1);
	orchestrator__v1__task_progress__pack(&pm, buf);
	free(buf);
	taskpb_free(&b);

	struct task *c = task_clone(t);
	same_task(t, c);
	task_del(c);
	task_del(t);
}

/* ---- the other message types ----------------------------------------------- */

static void worker(const Orchestrator__V1__WorkerResponse *m)
{
	/* The scheduler's reads: names are looked at one by one. */
	if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_REGISTRATION)
		for (size_t i = 0; i < m->registration->n_task_names; i++)
			(void)strlen(m->registration->task_names[i]);
	if (m->kind_case == ORCHESTRATOR__V1__WORKER_RESPONSE__KIND_RESULT)
		(void)task_state_name((enum task_state)m->result->status);
}

static void reflection(const Grpc__Reflection__V1__ServerReflectionRequest *r)
{
	int file = -1, kind;
	switch (r->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		file = reflect_db_find_file(db, r->file_by_filename);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		file = reflect_db_find_symbol(db, r->file_containing_symbol, &kind);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		file = reflect_db_find_symbol(db, r->all_extension_numbers_of_type, &kind);
		break;
	default:
		break;
	}
	if (file < 0)
		return;
	size_t nfiles = reflect_db_nfiles(db);
	if ((size_t)file >= nfiles)
		abort();
	int *closure = xmalloc(nfiles * sizeof *closure);
	size_t n = reflect_db_closure(db, file, closure);
	if (n < 1 || n > nfiles || closure[0] != file)
		abort();
	free(closure);
}

/* a and b pack to the same bytes. */
static void same_pack(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t n = protobuf_c_message_get_packed_size(a);
	if (protobuf_c_message_get_packed_size(b) != n)
		abort();
	uint8_t *ba = xmalloc(n + 1), *bb = xmalloc(n + 1);
	protobuf_c_message_pack(a, ba);
	protobuf_c_message_pack(b, bb);
	if (memcmp(ba, bb, n) != 0)
		abort();
	free(ba);
	free(bb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pb_arena arena;
	if (!arena.allocator.alloc)
		pb_arena_init(&arena);
	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *d = types[data[0] % NTYPES].d;
	enum extra extra = types[data[0] % NTYPES].extra;
	data++;
	size--;

	char err[128];
	ProtobufCMessage *plain = protobuf_c_message_unpack(d, NULL, size, data);
	int strings_ok = pb_check_strings(d, data, size, err, sizeof err) == 0;
	if (!strings_ok && (!err[0] || strlen(err) >= sizeof err))
		abort();
	ProtobufCMessage *m = pb_unpack(d, data, size, &arena, err, sizeof err);
	if (!!m != (plain && strings_ok) || (!m && arena.used))
		abort();
	if (m)
		same_pack(m, plain);
	if (plain)
		repack(plain);
	if (m) {
		visit(m, 1);
		switch (extra) {
		case X_SPEC:
			spec((const Orchestrator__V1__TaskSpec *)m);
			break;
		case X_ASSIGNMENT: {
			const Orchestrator__V1__TaskAssignment *a = (const void *)m;
			if (a->kind_case == ORCHESTRATOR__V1__TASK_ASSIGNMENT__KIND_ASSIGN)
				spec(a->assign->spec);
			break;
		}
		case X_WORKER:
			worker((const void *)m);
			break;
		case X_REFLECTION:
			reflection((const void *)m);
			break;
		case X_NONE:
			break;
		}
		pb_arena_release(&arena, m);
	}
	if (plain)
		protobuf_c_message_free_unpacked(plain, NULL);
	return 0;
}
