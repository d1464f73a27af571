/*
 * interop_server: grpc.testing.TestService on lib/rpc, for the server
 * side of the gRPC interop test descriptions (doc/interop-test-
 * descriptions.md in grpc/grpc). Command line as the interop servers of
 * grpc/grpc: --port N (0: ephemeral, printed as "PORT n"), --use_tls with
 * --tls_cert/--tls_key. --max_conns N and --max_recv_msg BYTES set the
 * matching struct rpc_opts limits, for the tests that check them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "log.h"
#include "reflect.h"
#include "rpc.h"
#include "xalloc.h"
#include "../serve.h"

/* grpc.testing's descriptors for reflection, embedded by the Makefile. */
extern const uint8_t reflect_interop_set[];
extern const size_t reflect_interop_set_len;

enum kind { K_EMPTY, K_UNARY, K_SOUT, K_SIN, K_FDX };

struct pend {
	int32_t size;
	int32_t interval_us;
	int compressed;
	int waited;
};

struct tcall {
	struct rpc_call *call;
	enum kind kind;
	struct pend *q;
	size_t qhead, qn, qcap;
	int half_closed;
	int status;
	char *status_msg;
	int64_t agg;
	struct event *timer;
	int timer_armed;
};

static struct event_base *base;

/* Sends a protobuf message; returns rpc_call_send's result. */
static int send_pb(struct rpc_call *call, const ProtobufCMessage *m, int flags)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(n);
	protobuf_c_message_pack(m, buf);
	int rv = rpc_call_send(call, buf, n, flags);
	free(buf);
	return rv;
}

static void fill_payload(Grpc__Testing__Payload *p, int32_t size)
{
	p->type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
	p->body.len = size > 0 ? (size_t)size : 0;
	p->body.data = xcalloc(1, p->body.len + 1);
}

static void echo_metadata(struct rpc_call *call)
{
	const struct meta *md = rpc_call_recv_metadata(call);
	const struct meta_kv *kv = meta_get(md, "x-grpc-test-echo-initial");
	if (kv)
		rpc_call_add_metadata(call, kv->key, kv->val, kv->vallen);
	kv = meta_get(md, "x-grpc-test-echo-trailing-bin");
	if (kv)
		rpc_call_add_trailer(call, kv->key, kv->val, kv->vallen);
}

static int on_start(struct rpc_call *call, void *arg)
{
	struct tcall *t = xcalloc(1, sizeof *t);
	t->call = call;
	t->kind = (enum kind)(intptr_t)arg;
	rpc_call_set_data(call, t);
	echo_metadata(call);
	return 0;
}

static void on_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct tcall *t = rpc_call_data(call);
	if (!t)
		return;
	if (t->timer)
		event_free(t->timer);
	free(t->q);
	free(t->status_msg);
	free(t);
}

static void pump(struct tcall *t);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcall *t = arg;
	t->timer_armed = 0;
	pump(t);
}

static void finish(struct tcall *t)
{
	rpc_call_finish(t->call, t->status, t->status_msg);
}

/* Sends queued responses in order, honouring intervals and backpressure;
 * ends the call when the script is done. */
static void pump(struct tcall *t)
{
	while (t->qhead < t->qn && !t->timer_armed) {
		struct pend *p = &t->q[t->qhead];
		if (p->interval_us > 0 && !p->waited) {
			p->waited = 1;
			if (!t->timer)
				t->timer = evtimer_new(base, timer_cb, t);
			struct timeval tv = {p->interval_us / 1000000, p->interval_us % 1000000};
			evtimer_add(t->timer, &tv);
			t->timer_armed = 1;
			return;
		}
		Grpc__Testing__StreamingOutputCallResponse r =
			GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
		Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
		fill_payload(&pl, p->size);
		r.payload = &pl;
		int rv = send_pb(t->call, &r.base, p->compressed ? 0 : RPC_SEND_NOCOMPRESS);
		free(pl.body.data);
		if (rv == E_AGAIN)
			return; /* on_writable calls us again */
		if (rv < 0)
			return;
		t->qhead++;
		if (rv == RPC_SEND_FULL)
			return;
	}
	if (t->qhead == t->qn && !t->timer_armed && (t->kind == K_SOUT || t->half_closed))
		finish(t);
}

static void on_writable(struct rpc_call *call, void *arg)
{
	pump(rpc_call_data(call));
}

static void set_status(struct tcall *t, const Grpc__Testing__EchoStatus *st)
{
	if (!st || st->code == 0)
		return;
	t->status = st->code;
	free(t->status_msg);
	t->status_msg = xstrdup(st->message ? st->message : "");
}

static int check_compressed(struct rpc_call *call, const Grpc__Testing__BoolValue *expect)
{
	if (expect && expect->value && !rpc_call_last_compressed(call)) {
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT,
				"expected a compressed message");
		return -1;
	}
	return 0;
}

static void queue_params(struct tcall *t, const Grpc__Testing__StreamingOutputCallRequest *req)
{
	for (size_t i = 0; i < req->n_response_parameters; i++) {
		const Grpc__Testing__ResponseParameters *rp = req->response_parameters[i];
		if (t->qn == t->qcap) {
			t->qcap = t->qcap ? t->qcap * 2 : 8;
			t->q = xrealloc(t->q, t->qcap * sizeof *t->q);
		}
		int comp = rp->compressed && rp->compressed->value;
		if (comp)
			rpc_call_set_compress(t->call, 1);
		t->q[t->qn++] = (struct pend){rp->size, rp->interval_us, comp, 0};
	}
}

static int on_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct tcall *t = rpc_call_data(call);
	switch (t->kind) {
	case K_EMPTY: {
		Grpc__Testing__Empty *req = grpc__testing__empty__unpack(NULL, len, msg);
		if (!req)
			return GRPC_STATUS_INVALID_ARGUMENT;
		grpc__testing__empty__free_unpacked(req, NULL);
		Grpc__Testing__Empty r = GRPC__TESTING__EMPTY__INIT;
		send_pb(call, &r.base, 0);
		rpc_call_finish(call, GRPC_STATUS_OK, NULL);
		return 0;
	}
	case K_UNARY: {
		Grpc__Testing__SimpleRequest *req =
			grpc__testing__simple_request__unpack(NULL, len, msg);
		if (!req)
			return GRPC_STATUS_INVALID_ARGUMENT;
		if (check_compressed(call, req->expect_compressed) == 0) {
			set_status(t, req->response_status);
			if (t->status) {
				finish(t);
			} else {
				Grpc__Testing__SimpleResponse r = GRPC__TESTING__SIMPLE_RESPONSE__INIT;
				Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
				fill_payload(&pl, req->response_size);
				r.payload = &pl;
				int comp = req->response_compressed && req->response_compressed->value;
				rpc_call_set_compress(call, comp);
				send_pb(call, &r.base, 0);
				free(pl.body.data);
				finish(t);
			}
		}
		grpc__testing__simple_request__free_unpacked(req, NULL);
		return 0;
	}
	case K_SIN: {
		Grpc__Testing__StreamingInputCallRequest *req =
			grpc__testing__streaming_input_call_request__unpack(NULL, len, msg);
		if (!req)
			return GRPC_STATUS_INVALID_ARGUMENT;
		if (check_compressed(call, req->expect_compressed) == 0 && req->payload)
			t->agg += (int64_t)req->payload->body.len;
		grpc__testing__streaming_input_call_request__free_unpacked(req, NULL);
		return 0;
	}
	case K_SOUT:
	case K_FDX: {
		Grpc__Testing__StreamingOutputCallRequest *req =
			grpc__testing__streaming_output_call_request__unpack(NULL, len, msg);
		if (!req)
			return GRPC_STATUS_INVALID_ARGUMENT;
		queue_params(t, req);
		set_status(t, req->response_status);
		grpc__testing__streaming_output_call_request__free_unpacked(req, NULL);
		if (t->status)
			t->half_closed = 1; /* end with it once queued responses are out */
		pump(t);
		return 0;
	}
	}
	return 0;
}

static void on_half_close(struct rpc_call *call, void *arg)
{
	struct tcall *t = rpc_call_data(call);
	t->half_closed = 1;
	if (t->kind == K_SIN) {
		Grpc__Testing__StreamingInputCallResponse r =
			GRPC__TESTING__STREAMING_INPUT_CALL_RESPONSE__INIT;
		r.aggregated_payload_size = (int32_t)t->agg;
		send_pb(call, &r.base, 0);
		finish(t);
	} else if (t->kind == K_FDX || t->kind == K_SOUT) {
		pump(t);
	} else {
		/* Unary: on_message has finished the call, unless no request
		 * came (E_STATE then, ignored). */
		rpc_call_finish(call, GRPC_STATUS_INTERNAL, "half-closed without a request");
	}
}

static const struct rpc_call_cbs cbs = {
	.on_start = on_start,
	.on_message = on_message,
	.on_half_close = on_half_close,
	.on_writable = on_writable,
	.on_done = on_done,
};

int main(int argc, char **argv)
{
	int port = 0, use_tls = 0;
	const char *cert = NULL, *key = NULL;
	struct rpc_opts opts = {0};
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"use_tls", optional_argument, NULL, 't'},
		{"tls_cert", required_argument, NULL, 'c'},
		{"tls_key", required_argument, NULL, 'k'},
		{"max_conns", required_argument, NULL, 'C'},
		{"max_recv_msg", required_argument, NULL, 'M'},
		{0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			use_tls = !optarg || strcmp(optarg, "false") != 0;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'C':
			opts.max_conns = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'M':
			opts.max_recv_msg = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: interop_server --port N [--use_tls --tls_cert F "
					"--tls_key F] [--max_conns N] [--max_recv_msg BYTES]\n");
			return 2;
		}
	}
	base = serve_init("interop_server");
	struct rpc_tls_opts tls = {.cert_file = cert, .key_file = key};
	opts.tls = use_tls ? &tls : NULL;
	int err = 0;
	struct rpc_server *srv = rpc_server_new(base, &opts, &err);
	if (!srv) {
		fprintf(stderr, "interop_server: cannot set up TLS: %s\n", err_str(err));
		return 1;
	}
	static const struct {
		const char *path;
		enum kind kind;
	} methods[] = {
		{"/grpc.testing.TestService/EmptyCall", K_EMPTY},
		{"/grpc.testing.TestService/UnaryCall", K_UNARY},
		{"/grpc.testing.TestService/CacheableUnaryCall", K_UNARY},
		{"/grpc.testing.TestService/StreamingOutputCall", K_SOUT},
		{"/grpc.testing.TestService/StreamingInputCall", K_SIN},
		{"/grpc.testing.TestService/FullDuplexCall", K_FDX},
	};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		rpc_server_add_method(srv, methods[i].path, &cbs, (void *)(intptr_t)methods[i].kind);
	struct reflect *reflect = reflect_new(srv, reflect_interop_set, reflect_interop_set_len, &err);
	if (!reflect) {
		fprintf(stderr, "interop_server: cannot index descriptors: %s\n", err_str(err));
		return 1;
	}
	int rc = serve_run(base, srv, port, 5000, "interop_server");
	reflect_del(reflect);
	event_base_free(base);
	return rc;
}
