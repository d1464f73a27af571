/*
 * pb: the seam between protobuf-c messages and rpc calls. Owns packing a
 * message straight into a call's send queue, answering a unary call, and
 * unpacking a request with the checks protobuf-c leaves out, so no role
 * writes that glue twice.
 */
#ifndef ORCHD_PB_H
#define ORCHD_PB_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"

/* Packs m (borrowed) and sends it on call with flags. Returns what
 * rpc_call_send returns. */
int pb_send(struct rpc_call *call, const ProtobufCMessage *m, int flags);

/* Unary answer: sends m and finishes the call with OK. */
void pb_reply(struct rpc_call *call, const ProtobufCMessage *m);

/*
 * Checks what protobuf-c's unpack does not: that every string field of a
 * message of type d in msg[0..len) (nested messages, repeated fields and
 * map entries included) is valid UTF-8, as proto3 requires, and holds no
 * NUL byte (which would silently cut the C string short). A string we
 * stored unchecked would break every client that later reads it back.
 * Wire-format errors are left to unpack. No allocation. Returns 0, or
 * -EINVAL with a message for the client naming the field in err (errlen
 * bytes, always NUL-terminated).
 */
int pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                     char *err, size_t errlen);

/*
 * An allocator for unpacking one message at a time out of a fixed buffer,
 * so that a small message costs no malloc per field and no walk to free
 * them: what does not fit goes to malloc. Embed it, pb_arena_init() it,
 * pass &arena->allocator to a generated __unpack(), and give the message
 * back with pb_arena_release() once done with it; the arena then serves
 * the next one. One message at a time per arena.
 */
struct pb_arena {
	ProtobufCAllocator allocator;
	size_t used;
	int spilled; /* something went to malloc: release walks the message */
	_Alignas(max_align_t) unsigned char buf[4096];
};

void pb_arena_init(struct pb_arena *a);
/* Frees m (taken; unpacked with a's allocator, or NULL when the unpack
 * failed) and makes the whole arena free again. */
void pb_arena_release(struct pb_arena *a, ProtobufCMessage *m);

/*
 * Unpacks a request of type d from msg[0..len) (borrowed) into arena
 * (borrowed; NULL: malloc): the message if it decodes and passes
 * pb_check_strings, else NULL with a message for the client in err (answer
 * it with INVALID_ARGUMENT) and the arena free again. Free the result
 * with pb_arena_release(arena, m), or without an arena with
 * protobuf_c_message_free_unpacked(m, NULL).
 */
ProtobufCMessage *pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                            struct pb_arena *arena, char *err, size_t errlen);

/* pb_unpack for a server's on_message: on failure, finishes call with
 * INVALID_ARGUMENT and the reason, and returns NULL. */
ProtobufCMessage *pb_request(struct rpc_call *call, const ProtobufCMessageDescriptor *d,
                             const uint8_t *msg, size_t len, struct pb_arena *arena);

#endif
