/*
 * reflect: gRPC server reflection (grpc.reflection.v1alpha and v1
 * ServerReflection/ServerReflectionInfo), so stock tools such as grpcurl
 * can list a role's services and call them without a .proto file.
 *
 * The module owns two layers. reflect_db indexes a serialized
 * FileDescriptorSet (`protoc --include_imports --descriptor_set_out`,
 * embedded at build time) with a minimal wire-format walker: file names,
 * their imports, and the fully qualified names of the services, methods,
 * messages and enums each file defines. It does no I/O. struct reflect
 * serves that index on an rpc server. It does not own the descriptors'
 * meaning: answers are the FileDescriptorProto bytes exactly as protoc
 * wrote them, plus their transitive imports (which grpcurl needs).
 */
#ifndef ORCHD_REFLECT_H
#define ORCHD_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

/* orchd's own FileDescriptorSet (orchestrator.v1, grpc.health.v1 and the
 * reflection protos), generated and embedded by the Makefile. */
extern const uint8_t reflect_orchd_set[];
extern const size_t reflect_orchd_set_len;

/* ---- descriptor index (no I/O) ----------------------------------------- */

struct reflect_db;

enum reflect_kind {
	REFLECT_SERVICE = 1,
	REFLECT_METHOD,
	REFLECT_MESSAGE,
	REFLECT_ENUM,
};

/* Indexes the FileDescriptorSet set[0..len) (borrowed: it must outlive the
 * index, answers point into it). Returns 0 and *db, or E_CORRUPT when the
 * bytes are not a FileDescriptorSet or a file imports one the set lacks. */
int reflect_db_new(const uint8_t *set, size_t len, struct reflect_db **db);
/* NULL: no-op. */
void reflect_db_del(struct reflect_db *db);

/* Number of files in the set; file indexes run from 0 to this minus 1. */
size_t reflect_db_nfiles(const struct reflect_db *db);
/* Name of file i ("orchestrator/v1/orchestrator.proto"), owned by db;
 * bytes and len get its serialized FileDescriptorProto (borrowed from
 * set). */
const char *reflect_db_file(const struct reflect_db *db, size_t i, const uint8_t **bytes,
                            size_t *len);
/* Index of the file named name, or -1. */
int reflect_db_find_file(const struct reflect_db *db, const char *name);
/* Index of the file defining the fully qualified symbol ("pkg.Service",
 * "pkg.Service.Method", "pkg.Msg.Nested", "pkg.Enum"; no leading dot), or
 * -1. *kind (may be NULL) gets its enum reflect_kind. */
int reflect_db_find_symbol(const struct reflect_db *db, const char *symbol, int *kind);
/* Writes file and all it imports, transitively, into out (room for
 * reflect_db_nfiles entries): file first, each file once. Returns the
 * count written. */
size_t reflect_db_closure(const struct reflect_db *db, int file, int *out);

/* ---- the reflection service -------------------------------------------- */

struct reflect;

/* Indexes set (borrowed, must outlive the result) and registers
 * ServerReflectionInfo of both grpc.reflection.v1alpha and v1 on srv.
 * list_services answers whatever srv has registered when asked. Returns
 * NULL with *err = E_CORRUPT when set does not parse. */
struct reflect *reflect_new(struct rpc_server *srv, const uint8_t *set, size_t len, int *err);
/* Frees the index. The server's calls use it, so call after
 * rpc_server_del. NULL: no-op. */
void reflect_del(struct reflect *r);

#endif
