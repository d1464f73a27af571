/* pb: protobuf-c messages on rpc calls (see pb.h). */
#include "pb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

int pb_send(struct rpc_call *call, const ProtobufCMessage *m, int flags)
{
	uint8_t stackbuf[1024];
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = n <= sizeof stackbuf ? stackbuf : xmalloc(n);
	protobuf_c_message_pack(m, buf);
	int rv = rpc_call_send(call, buf, n, flags);
	if (buf != stackbuf)
		free(buf);
	return rv;
}

/* ---- the arena ------------------------------------------------------------ */

static void *arena_alloc(void *data, size_t size)
{
	struct pb_arena *a = data;
	size_t align = _Alignof(max_align_t);
	size_t at = (a->used + align - 1) & ~(align - 1);
	if (size <= sizeof a->buf && at <= sizeof a->buf - size) {
		a->used = at + size;
		return a->buf + at;
	}
	a->spilled = 1;
	return xmalloc(size ? size : 1);
}

static void arena_free(void *data, void *p)
{
	struct pb_arena *a = data;
	unsigned char *c = p;
	if (c < a->buf || c >= a->buf + sizeof a->buf)
		free(p);
}

void pb_arena_init(struct pb_arena *a)
{
	a->allocator = (ProtobufCAllocator){arena_alloc, arena_free, a};
	a->used = 0;
	a->spilled = 0;
}

void pb_arena_release(struct pb_arena *a, ProtobufCMessage *m)
{
	/* Without a spill every byte of m is in buf: nothing to walk. */
	if (m && a->spilled)
		protobuf_c_message_free_unpacked(m, &a->allocator);
	a->used = 0;
	a->spilled = 0;
}

void pb_reply(struct rpc_call *call, const ProtobufCMessage *m)
{
	pb_send(call, m, 0);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

/* ---- unpacking requests -------------------------------------------------- */

/* Deeper nesting than any orchd message has; bounds the recursion below
 * should a recursive message type ever appear. */
#define PB_MAX_DEPTH 32

/* Reads a varint at *p (below end). Returns 0, or -1 when it is cut short
 * or longer than 10 bytes. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* Walks the fields in p[0..end) as the wire format lays them out. A
 * wire-format error ends the walk of that message with 0: unpack judges
 * those, and rejects the whole request. */
static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                int depth, char *err, size_t errlen)
{
	while (p < end) {
		uint64_t tag, n;
		if (varint(&p, end, &tag) != 0)
			return 0;
		switch (tag & 7) {
		case 0: /* varint */
			if (varint(&p, end, &n) != 0)
				return 0;
			continue;
		case 1: /* 64-bit */
			if (end - p < 8)
				return 0;
			p += 8;
			continue;
		case 5: /* 32-bit */
			if (end - p < 4)
				return 0;
			p += 4;
			continue;
		case 2: /* length-delimited */
			break;
		default: /* groups, or not a wire type */
			return 0;
		}
		if (varint(&p, end, &n) != 0 || n > (uint64_t)(end - p) || tag >> 3 > UINT32_MAX)
			return 0;
		const uint8_t *v = p;
		p += n;
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
		if (!f)
			continue; /* an unknown field: kept as bytes, never read */
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			const char *why = !utf8_valid(v, n)   ? "is not valid UTF-8"
			                  : memchr(v, 0, n) ? "contains a NUL byte"
			                                      : NULL;
			if (why) {
				snprintf(err, errlen, "%s.%s %s", d->short_name, f->name, why);
				return -EINVAL;
			}
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			if (depth >= PB_MAX_DEPTH) {
				snprintf(err, errlen, "%s.%s is nested too deeply", d->short_name,
				         f->name);
				return -EINVAL;
			}
			int rv = walk(f->descriptor, v, v + n, depth + 1, err, errlen);
			if (rv < 0)
				return rv;
		}
	}
	return 0;
}

int pb_check_strings(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                     char *err, size_t errlen)
{
	char buf[200];
	int rv = walk(d, msg, msg + len, 0, buf, sizeof buf);
	if (rv < 0 && err && errlen)
		snprintf(err, errlen, "%s", buf);
	return rv;
}

ProtobufCMessage *pb_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *msg, size_t len,
                            struct pb_arena *arena, char *err, size_t errlen)
{
	if (pb_check_strings(d, msg, len, err, errlen) != 0)
		return NULL;
	ProtobufCMessage *m =
	    protobuf_c_message_unpack(d, arena ? &arena->allocator : NULL, len, msg);
	if (!m && arena)
		pb_arena_release(arena, NULL);
	if (!m && err && errlen)
		snprintf(err, errlen, "%s does not decode as protobuf", d->short_name);
	return m;
}

ProtobufCMessage *pb_request(struct rpc_call *call, const ProtobufCMessageDescriptor *d,
                             const uint8_t *msg, size_t len, struct pb_arena *arena)
{
	char err[200];
	ProtobufCMessage *m = pb_unpack(d, msg, len, arena, err, sizeof err);
	if (!m)
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, err);
	return m;
}
