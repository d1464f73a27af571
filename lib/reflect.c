/* reflect: gRPC server reflection from an embedded FileDescriptorSet (see reflect.h). */
#include "reflect.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "map.h"
#include "pb.h"
#include "status.h"
#include "xalloc.h"

/* ---- protobuf wire walker ---------------------------------------------- */

/*
 * Debian ships no runtime descriptor.proto for protobuf-c, and the index
 * needs only names, so we walk the wire format ourselves. Field numbers
 * are descriptor.proto's.
 */
enum {
	SET_FILE = 1,  /* FileDescriptorSet.file */
	FILE_NAME = 1, /* FileDescriptorProto.* */
	FILE_PACKAGE = 2,
	FILE_DEPENDENCY = 3,
	FILE_MESSAGE = 4,
	FILE_ENUM = 5,
	FILE_SERVICE = 6,
	MESSAGE_NAME = 1, /* DescriptorProto.* */
	MESSAGE_NESTED = 3,
	MESSAGE_ENUM = 4,
	ENUM_NAME = 1,    /* EnumDescriptorProto.name */
	SERVICE_NAME = 1, /* ServiceDescriptorProto.* */
	SERVICE_METHOD = 2,
	METHOD_NAME = 1, /* MethodDescriptorProto.name */
	WIRE_LEN = 2,
	MAX_NESTING = 64,
};

struct rd {
	const uint8_t *p, *end;
};

static int varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p == r->end)
			return E_CORRUPT;
		uint8_t b = *r->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return E_CORRUPT;
}

/* Steps over the next field of r. Returns 1 with its number in *field and
 * wire type in *wt (for WIRE_LEN, the payload in *sub), 0 at the end, or
 * E_CORRUPT. */
static int next(struct rd *r, uint32_t *field, int *wt, struct rd *sub)
{
	uint64_t key, v;
	if (r->p == r->end)
		return 0;
	if (varint(r, &key) < 0 || key >> 3 == 0 || key >> 3 > 0x1fffffff)
		return E_CORRUPT;
	*field = (uint32_t)(key >> 3);
	*wt = key & 7;
	size_t skip;
	switch (*wt) {
	case 0:
		return varint(r, &v) < 0 ? E_CORRUPT : 1;
	case 1:
		skip = 8;
		break;
	case 5:
		skip = 4;
		break;
	case WIRE_LEN:
		if (varint(r, &v) < 0)
			return E_CORRUPT;
		skip = v;
		if (v > (uint64_t)(r->end - r->p))
			return E_CORRUPT;
		sub->p = r->p;
		sub->end = r->p + skip;
		break;
	default: /* groups: descriptor.proto has none */
		return E_CORRUPT;
	}
	if (skip > (size_t)(r->end - r->p))
		return E_CORRUPT;
	r->p += skip;
	return 1;
}

/* Steps r to the next length-delimited field numbered want. Returns 1
 * with its payload in *sub, 0 at the end, or E_CORRUPT. */
static int next_sub(struct rd *r, uint32_t want, struct rd *sub)
{
	uint32_t f;
	int wt, rv;
	while ((rv = next(r, &f, &wt, sub)) > 0)
		if (f == want && wt == WIRE_LEN)
			return 1;
	return rv;
}

/* Finds the string field `want` of message m; returns a copy (free it), or
 * NULL when absent or corrupt. */
static char *string_field(struct rd m, uint32_t want)
{
	struct rd sub;
	char *s = NULL;
	int rv;
	while ((rv = next_sub(&m, want, &sub)) > 0) {
		free(s); /* the last occurrence wins, as in protobuf */
		s = xstrndup((const char *)sub.p, (size_t)(sub.end - sub.p));
	}
	if (rv < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---- descriptor index -------------------------------------------------- */

struct sym {
	int file;
	int kind;
	char name[]; /* fully qualified; the map's key */
};

struct file {
	char *name;
	struct rd bytes;
	int *deps;
	size_t ndeps;
};

struct reflect_db {
	struct file *files;
	size_t nfiles;
	struct map by_name; /* file name -> struct file */
	struct map syms;    /* symbol -> struct sym */
};

/* Joins "scope.name" (just name in the empty scope); returns a new string. */
static char *qualify(const char *scope, const char *name)
{
	size_t a = strlen(scope), b = strlen(name);
	char *s = xmalloc(a + b + 2);
	if (a) {
		memcpy(s, scope, a);
		s[a++] = '.';
	}
	memcpy(s + a, name, b + 1);
	return s;
}

/* Adds the symbol scope.name of file (the first definition wins). Returns
 * the qualified name (free it), or NULL when the definition has no name. */
static char *add_sym(struct reflect_db *db, int file, int kind, const char *scope, struct rd def,
                     uint32_t name_field)
{
	char *name = string_field(def, name_field);
	if (!name)
		return NULL;
	char *full = qualify(scope, name);
	free(name);
	if (!map_get(&db->syms, full)) {
		size_t n = strlen(full);
		struct sym *s = xmalloc(sizeof *s + n + 1);
		s->file = file;
		s->kind = kind;
		memcpy(s->name, full, n + 1);
		map_put(&db->syms, s->name, s);
	}
	return full;
}

/* Adds the enum scope.<name> defined by e. */
static int index_enum(struct reflect_db *db, int file, const char *scope, struct rd e)
{
	char *full = add_sym(db, file, REFLECT_ENUM, scope, e, ENUM_NAME);
	int err = full ? 0 : E_CORRUPT;
	free(full);
	return err;
}

/* Adds the message scope.<name> defined by m, and what it nests. */
static int index_message(struct reflect_db *db, int file, const char *scope, struct rd m, int depth)
{
	if (depth > MAX_NESTING)
		return E_CORRUPT;
	char *full = add_sym(db, file, REFLECT_MESSAGE, scope, m, MESSAGE_NAME);
	if (!full)
		return E_CORRUPT;
	struct rd it = m, sub;
	int rv = 0, err = 0;
	while (!err && (rv = next_sub(&it, MESSAGE_NESTED, &sub)) > 0)
		err = index_message(db, file, full, sub, depth + 1);
	it = m;
	while (!err && (rv = next_sub(&it, MESSAGE_ENUM, &sub)) > 0)
		err = index_enum(db, file, full, sub);
	free(full);
	return err ? err : rv;
}

/* Adds the service pkg.<name> defined by s, and its methods. */
static int index_service(struct reflect_db *db, int file, const char *pkg, struct rd s)
{
	char *full = add_sym(db, file, REFLECT_SERVICE, pkg, s, SERVICE_NAME);
	if (!full)
		return E_CORRUPT;
	struct rd it = s, sub;
	int rv = 0, err = 0;
	while (!err && (rv = next_sub(&it, SERVICE_METHOD, &sub)) > 0) {
		char *m = add_sym(db, file, REFLECT_METHOD, full, sub, METHOD_NAME);
		err = m ? 0 : E_CORRUPT;
		free(m);
	}
	free(full);
	return err ? err : rv;
}

/* Indexes file i's symbols and collects its imports' names into *deps. */
static int index_file(struct reflect_db *db, int i, char ***deps)
{
	struct file *f = &db->files[i];
	f->name = string_field(f->bytes, FILE_NAME);
	if (!f->name || map_get(&db->by_name, f->name))
		return E_CORRUPT;
	map_put(&db->by_name, f->name, f);
	char *pkg = string_field(f->bytes, FILE_PACKAGE);
	if (!pkg)
		pkg = xstrdup("");
	struct rd it = f->bytes, sub;
	int rv = 0, err = 0;
	while ((rv = next_sub(&it, FILE_DEPENDENCY, &sub)) > 0) {
		*deps = xrealloc(*deps, (f->ndeps + 1) * sizeof **deps);
		(*deps)[f->ndeps++] = xstrndup((const char *)sub.p, (size_t)(sub.end - sub.p));
	}
	err = rv;
	it = f->bytes;
	while (!err && (rv = next_sub(&it, FILE_MESSAGE, &sub)) > 0)
		err = index_message(db, i, pkg, sub, 0);
	it = f->bytes;
	while (!err && (rv = next_sub(&it, FILE_ENUM, &sub)) > 0)
		err = index_enum(db, i, pkg, sub);
	it = f->bytes;
	while (!err && (rv = next_sub(&it, FILE_SERVICE, &sub)) > 0)
		err = index_service(db, i, pkg, sub);
	free(pkg);
	return err ? err : rv;
}

/* Turns file i's import names into indexes. */
static int link_file(struct reflect_db *db, int i, char **deps)
{
	struct file *f = &db->files[i];
	int err = 0;
	f->deps = xcalloc(f->ndeps ? f->ndeps : 1, sizeof *f->deps);
	for (size_t d = 0; d < f->ndeps; d++) {
		struct file *dep = map_get(&db->by_name, deps[d]);
		if (!dep)
			err = E_CORRUPT;
		else
			f->deps[d] = (int)(dep - db->files);
		free(deps[d]);
	}
	free(deps);
	return err;
}

int reflect_db_new(const uint8_t *set, size_t len, struct reflect_db **out)
{
	struct reflect_db *db = xcalloc(1, sizeof *db);
	map_init(&db->by_name);
	map_init(&db->syms);
	struct rd r = {set, set + len}, sub;
	int rv;
	/* The file array is sized first: the index points into it. */
	while ((rv = next_sub(&r, SET_FILE, &sub)) > 0)
		db->nfiles++;
	int err = rv;
	db->files = xcalloc(db->nfiles ? db->nfiles : 1, sizeof *db->files);
	r.p = set;
	for (size_t i = 0; !err && next_sub(&r, SET_FILE, &sub) > 0; i++)
		db->files[i].bytes = sub;
	char ***deps = xcalloc(db->nfiles ? db->nfiles : 1, sizeof *deps);
	for (size_t i = 0; i < db->nfiles; i++)
		if (!err)
			err = index_file(db, (int)i, &deps[i]);
	for (size_t i = 0; i < db->nfiles; i++) {
		int e = link_file(db, (int)i, deps[i]);
		err = err ? err : e;
	}
	free(deps);
	if (err) {
		reflect_db_del(db);
		return err;
	}
	*out = db;
	return 0;
}

static void free_sym(const char *key, void *val, void *arg)
{
	free(val);
}

void reflect_db_del(struct reflect_db *db)
{
	if (!db)
		return;
	map_foreach(&db->syms, free_sym, NULL);
	map_free(&db->syms);
	map_free(&db->by_name);
	for (size_t i = 0; i < db->nfiles; i++) {
		free(db->files[i].name);
		free(db->files[i].deps);
	}
	free(db->files);
	free(db);
}

size_t reflect_db_nfiles(const struct reflect_db *db)
{
	return db->nfiles;
}

const char *reflect_db_file(const struct reflect_db *db, size_t i, const uint8_t **bytes,
                            size_t *len)
{
	const struct file *f = &db->files[i];
	*bytes = f->bytes.p;
	*len = (size_t)(f->bytes.end - f->bytes.p);
	return f->name;
}

int reflect_db_find_file(const struct reflect_db *db, const char *name)
{
	const struct file *f = map_get(&db->by_name, name);
	return f ? (int)(f - db->files) : -1;
}

int reflect_db_find_symbol(const struct reflect_db *db, const char *symbol, int *kind)
{
	const struct sym *s = map_get(&db->syms, symbol);
	if (s && kind)
		*kind = s->kind;
	return s ? s->file : -1;
}

size_t reflect_db_closure(const struct reflect_db *db, int file, int *out)
{
	char *seen = xcalloc(db->nfiles, 1);
	size_t n = 0;
	out[n++] = file;
	seen[file] = 1;
	/* Breadth first over out itself: each file is appended once. */
	for (size_t i = 0; i < n; i++) {
		const struct file *f = &db->files[out[i]];
		for (size_t d = 0; d < f->ndeps; d++) {
			if (!seen[f->deps[d]]) {
				seen[f->deps[d]] = 1;
				out[n++] = f->deps[d];
			}
		}
	}
	free(seen);
	return n;
}

/* ---- the reflection service -------------------------------------------- */

/*
 * v1alpha and v1 differ only in their package name: the messages are
 * field for field the same, so one set of generated types (v1's) encodes
 * and decodes both.
 */
typedef Grpc__Reflection__V1__ServerReflectionRequest Request;
typedef Grpc__Reflection__V1__ServerReflectionResponse Response;
typedef Grpc__Reflection__V1__ServiceResponse ServiceResponse;
#define REQ(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

struct reflect {
	struct reflect_db *db;
	struct rpc_server *srv;
};

struct services {
	ServiceResponse **v;
	size_t n;
};

static void add_service(const char *service, void *arg)
{
	struct services *s = arg;
	ServiceResponse *r = xmalloc(sizeof *r);
	grpc__reflection__v1__service_response__init(r);
	r->name = xstrdup(service);
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	s->v[s->n++] = r;
}

/* Sends the answer to req on call. Returns what pb_send returns. */
static int answer(struct reflect *r, struct rpc_call *call, Request *req)
{
	Response resp = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse files =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse list =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ExtensionNumberResponse exts =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse error = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	struct services svcs = {0};
	int file = -1, kind = 0;

	resp.valid_host = req->host;
	resp.original_request = req;
	error.error_code = GRPC_STATUS_NOT_FOUND;
	switch (req->message_request_case) {
	case REQ(FILE_BY_FILENAME):
		file = reflect_db_find_file(r->db, req->file_by_filename);
		error.error_message = "file not found";
		break;
	case REQ(FILE_CONTAINING_SYMBOL):
		file = reflect_db_find_symbol(r->db, req->file_containing_symbol, NULL);
		error.error_message = "symbol not found";
		break;
	case REQ(FILE_CONTAINING_EXTENSION):
		/* The index holds no extensions: our protos (proto3) define none. */
		error.error_message = "extension not found";
		break;
	case REQ(ALL_EXTENSION_NUMBERS_OF_TYPE):
		/* Like grpc-go and grpc C++: a known message type has a (here
		 * always empty) list; only an unknown type is NOT_FOUND. */
		if (reflect_db_find_symbol(r->db, req->all_extension_numbers_of_type, &kind) >= 0 &&
		    kind == REFLECT_MESSAGE) {
			exts.base_type_name = req->all_extension_numbers_of_type;
			resp.message_response_case = RESP(ALL_EXTENSION_NUMBERS_RESPONSE);
			resp.all_extension_numbers_response = &exts;
		}
		error.error_message = "type not found";
		break;
	case REQ(LIST_SERVICES):
		rpc_server_foreach_service(r->srv, add_service, &svcs);
		list.service = svcs.v;
		list.n_service = svcs.n;
		resp.message_response_case = RESP(LIST_SERVICES_RESPONSE);
		resp.list_services_response = &list;
		break;
	default:
		error.error_code = GRPC_STATUS_INVALID_ARGUMENT;
		error.error_message = "no request";
		break;
	}

	int *closure = NULL;
	if (file >= 0) {
		/* The file and everything it imports: a client must have every
		 * import to build the file, and may not ask for them. */
		closure = xmalloc(reflect_db_nfiles(r->db) * sizeof *closure);
		files.n_file_descriptor_proto = reflect_db_closure(r->db, file, closure);
		files.file_descriptor_proto =
		    xcalloc(files.n_file_descriptor_proto, sizeof *files.file_descriptor_proto);
		for (size_t i = 0; i < files.n_file_descriptor_proto; i++) {
			const uint8_t *p;
			size_t n;
			reflect_db_file(r->db, (size_t)closure[i], &p, &n);
			/* protobuf-c's type is not const; packing only reads it. */
			files.file_descriptor_proto[i].data = (uint8_t *)p;
			files.file_descriptor_proto[i].len = n;
		}
		resp.message_response_case = RESP(FILE_DESCRIPTOR_RESPONSE);
		resp.file_descriptor_response = &files;
	}
	if (resp.message_response_case == RESP(_NOT_SET)) {
		resp.message_response_case = RESP(ERROR_RESPONSE);
		resp.error_response = &error;
	}

	int rv = pb_send(call, &resp.base, 0);

	free(closure);
	free(files.file_descriptor_proto);
	for (size_t i = 0; i < svcs.n; i++) {
		free(svcs.v[i]->name);
		free(svcs.v[i]);
	}
	free(svcs.v);
	return rv;
}

/* Answers one request. A client that does not read its answers is held
 * back by flow control instead of filling our memory: once the send queue
 * is full the call delivers no more requests (nor the half-close) until
 * on_writable resumes it. */
static int info_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Request *req = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	int rv = answer(arg, call, req);
	grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
	if (rv == RPC_SEND_FULL)
		rpc_call_pause_recv(call, 1);
	else if (rv < 0)
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	return 0;
}

static void info_writable(struct rpc_call *call, void *arg)
{
	rpc_call_pause_recv(call, 0);
}

static void info_half_close(struct rpc_call *call, void *arg)
{
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static const struct rpc_call_cbs info_cbs = {
    .on_message = info_msg,
    .on_half_close = info_half_close,
    .on_writable = info_writable,
};

struct reflect *reflect_new(struct rpc_server *srv, const uint8_t *set, size_t len, int *err)
{
	struct reflect *r = xcalloc(1, sizeof *r);
	int rv = reflect_db_new(set, len, &r->db);
	if (rv < 0) {
		free(r);
		*err = rv;
		return NULL;
	}
	r->srv = srv;
	rpc_server_add_method(srv, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	                      &info_cbs, r);
	rpc_server_add_method(srv, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	                      &info_cbs, r);
	return r;
}

void reflect_del(struct reflect *r)
{
	if (!r)
		return;
	reflect_db_del(r->db);
	free(r);
}
