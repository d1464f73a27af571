/*
 * echo_server: bench.v1.Echo on lib/rpc, the orchd side of the transport
 * benchmarks (bench/transport.sh). `echo_server --port N` (0: ephemeral,
 * printed as "PORT n"); SIGTERM or SIGINT shut it down gracefully.
 *
 * Echo decodes the request and encodes the answer, as a real handler
 * would, with no heap allocation: protobuf-c unpacks into a per-process
 * arena and pb_send packs on the stack. Stream packs its message once per
 * call and sends that same buffer count times, waiting for on_writable
 * whenever rpc_call_send says the call's queue is full.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bench/v1/echo.pb-c.h"
#include "error.h"
#include "log.h"
#include "pb.h"
#include "rpc.h"
#include "xalloc.h"
#include "../tests/serve.h"

/* Largest Stream message size accepted; larger asks are INVALID_ARGUMENT. */
#define MAX_STREAM_SIZE (1 << 20)

/* ---- unpack arena ----------------------------------------------------- */

/* protobuf-c allocates the unpacked message; a request of the benchmark's
 * size fits this arena, which is reset after each message (the loop is
 * single-threaded and no unpacked message outlives its callback). Larger
 * requests fall back to the heap. */
static _Alignas(16) uint8_t arena[4096];
static size_t arena_used;

static void *arena_alloc(void *data, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size <= sizeof arena - arena_used) {
		void *p = arena + arena_used;
		arena_used += size;
		return p;
	}
	return xmalloc(size);
}

static void arena_free(void *data, void *p)
{
	if ((uint8_t *)p < arena || (uint8_t *)p >= arena + sizeof arena)
		free(p);
}

static ProtobufCAllocator arena_allocator = {arena_alloc, arena_free, NULL};

/* ---- Echo --------------------------------------------------------------- */

static int echo_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	arena_used = 0;
	Bench__V1__EchoMsg *req = bench__v1__echo_msg__unpack(&arena_allocator, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	pb_reply(call, &req->base);
	bench__v1__echo_msg__free_unpacked(req, &arena_allocator);
	return 0;
}

static void echo_half_close(struct rpc_call *call, void *arg)
{
	/* on_message has answered already (this finish then returns
	 * E_STATE, harmlessly), unless no request came. */
	rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, "half-closed without a request");
}

static const struct rpc_call_cbs echo_cbs = {
    .on_message = echo_message,
    .on_half_close = echo_half_close,
};

/* ---- Stream ------------------------------------------------------------- */

struct stream {
	uint8_t *msg; /* the packed EchoMsg, sent count times */
	size_t len;
	int32_t left;
	int started;
};

/* Sends until the count is reached (then finishes the call) or the queue
 * is full (on_writable calls again). */
static void pump(struct rpc_call *call, struct stream *s)
{
	while (s->left > 0) {
		int rv = rpc_call_send(call, s->msg, s->len, 0);
		if (rv == E_AGAIN)
			return;
		if (rv < 0)
			return; /* the call is ending; on_done follows */
		s->left--;
		if (rv == RPC_SEND_FULL)
			return;
	}
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static int stream_start(struct rpc_call *call, void *arg)
{
	rpc_call_set_data(call, xcalloc(1, sizeof(struct stream)));
	return 0;
}

static int stream_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct stream *s = rpc_call_data(call);
	if (s->started)
		return GRPC_STATUS_INVALID_ARGUMENT; /* server streaming: one request */
	arena_used = 0;
	Bench__V1__StreamReq *req = bench__v1__stream_req__unpack(&arena_allocator, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	int32_t count = req->count, size = req->size;
	bench__v1__stream_req__free_unpacked(req, &arena_allocator);
	if (count < 0 || size < 0 || size > MAX_STREAM_SIZE)
		return GRPC_STATUS_INVALID_ARGUMENT;

	Bench__V1__EchoMsg m = BENCH__V1__ECHO_MSG__INIT;
	m.data.len = (size_t)size;
	m.data.data = xcalloc(1, (size_t)size + 1);
	memset(m.data.data, 'x', (size_t)size);
	s->len = bench__v1__echo_msg__get_packed_size(&m);
	s->msg = xmalloc(s->len);
	bench__v1__echo_msg__pack(&m, s->msg);
	free(m.data.data);
	s->left = count;
	s->started = 1;
	pump(call, s);
	return 0;
}

static void stream_writable(struct rpc_call *call, void *arg)
{
	pump(call, rpc_call_data(call));
}

static void stream_half_close(struct rpc_call *call, void *arg)
{
	struct stream *s = rpc_call_data(call);
	if (!s->started)
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
		                "half-closed without a request");
}

static void stream_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct stream *s = rpc_call_data(call);
	if (!s)
		return;
	free(s->msg);
	free(s);
}

static const struct rpc_call_cbs stream_cbs = {
    .on_start = stream_start,
    .on_message = stream_message,
    .on_half_close = stream_half_close,
    .on_writable = stream_writable,
    .on_done = stream_done,
};

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int port = 0;
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: echo_server --port N\n");
			return 2;
		}
	}
	struct event_base *base = serve_init("echo_server");
	int err = 0;
	struct rpc_server *srv = rpc_server_new(base, NULL, &err);
	if (!srv) {
		fprintf(stderr, "echo_server: %s\n", err_str(err));
		return 1;
	}
	rpc_server_add_method(srv, "/bench.v1.Echo/Echo", &echo_cbs, NULL);
	rpc_server_add_method(srv, "/bench.v1.Echo/Stream", &stream_cbs, NULL);
	int rc = serve_run(base, srv, port, 2000, "echo_server");
	event_base_free(base);
	return rc;
}
