/*
 * interop_client: the client side of the gRPC interop test descriptions
 * (doc/interop-test-descriptions.md in grpc/grpc) on lib/rpc's channel API,
 * against any grpc.testing.TestService server. The cases, their assertions
 * and the command line are those of tests/interop/client.py:
 *
 *   interop_client --server_host H --server_port N --test_case NAME[,NAME]|all
 *                  [--use_tls --ca_file F [--server_host_override NAME]]
 *                  [--rpc_timeout S] [--connect_timeout S] [--list_cases]
 *
 * Prints `PASS <case>` or `FAIL <case>: <reason>` per case and exits 0 only
 * if every case passed.
 *
 * Everything runs on one event loop. Each case is a transition function
 * over its own numbered steps; the call callbacks only record what arrived
 * and schedule the case's next run from the loop, so a case never runs
 * inside the library's callbacks. A case gets a fresh channel (as client.py
 * does), each RPC a deadline, and the case a watchdog on top, so a hung
 * server fails a case instead of hanging the client.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "error.h"
#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "xalloc.h"

#define SERVICE "/grpc.testing.TestService/"
#define ECHO_INITIAL_KEY "x-grpc-test-echo-initial"
#define ECHO_INITIAL_VAL "test_initial_metadata_value"
#define ECHO_TRAILING_KEY "x-grpc-test-echo-trailing-bin"
#define ECHO_TRAILING_VAL "\xab\xab\xab"
#define SPECIAL_MESSAGE                                                                            \
	"\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88"    \
	"\t\n"
/* A BoolValue field of a request: absent, or present with a value. */
enum { ABSENT = -1 };

static struct {
	const char *host;
	int port;
	const char *host_override;
	int use_tls;
	const char *ca_file;
	int64_t rpc_timeout_ms;
	int64_t connect_timeout_ms;
} cfg = {"127.0.0.1", -1, NULL, 0, NULL, 30000, 10000};

static struct event_base *base;

/* ---- one RPC of a case ---------------------------------------------------- */

struct resp {
	uint8_t *buf;
	size_t len;
	int compressed;
};

struct out {
	uint8_t *buf;
	size_t len;
	int flags;
};

/* An RPC and what came back. A case runs its RPCs one after another, so one
 * of these serves them all (xcall_reset in between). */
struct xcall {
	struct tc *t;
	struct rpc_call *call; /* NULL before the start and after on_done */
	struct out *outq;      /* requests rpc_call_send has not taken yet */
	size_t outhead, outn, outcap;
	int close_pending; /* half-close once outq is empty */
	struct resp *resps;
	size_t nresps, rcap;
	size_t next; /* responses the case has consumed */
	int done;
	int status;
	char *message;
	struct meta headers, trailers;
};

/* ---- cases ---------------------------------------------------------------- */

enum phase { PH_CONNECTING, PH_RUNNING, PH_OVER };

struct tc;
struct tcase {
	const char *name;
	void (*run)(struct tc *t);
};

/* A running case. */
struct tc {
	const struct tcase *c;
	struct rpc_channel *ch;
	enum phase phase;
	int step; /* the case's own state, 0 at the start */
	int i;    /* a counter some cases keep across steps */
	struct xcall x;
	int failed;
	struct event *kick_ev;     /* runs the case from the loop */
	struct event *watchdog_ev; /* connect timeout, then case timeout */
	struct event *end_ev;      /* tears the case down from the loop */
};

static const char **todo;
static size_t ntodo, nextcase;
static int nfailed;

static void start_case(const struct tcase *c);

/* Quotes s for a one-line report: printable ASCII as is, the rest escaped
 * as Python's repr() would. Returns a static buffer, one of four used in turn. */
static const char *repr(const void *p, size_t len)
{
	static char bufs[4][512];
	static unsigned which;
	char *b = bufs[which++ % 4];
	const uint8_t *s = p;
	size_t n = 0;
	b[n++] = '\'';
	for (size_t i = 0; i < len && n < sizeof bufs[0] - 8; i++) {
		uint8_t ch = s[i];
		if (ch == '\n')
			n += (size_t)sprintf(b + n, "\\n");
		else if (ch == '\r')
			n += (size_t)sprintf(b + n, "\\r");
		else if (ch == '\t')
			n += (size_t)sprintf(b + n, "\\t");
		else if (ch == '\'' || ch == '\\')
			n += (size_t)sprintf(b + n, "\\%c", ch);
		else if (ch < 0x20 || ch > 0x7e)
			n += (size_t)sprintf(b + n, "\\x%02x", ch);
		else
			b[n++] = (char)ch;
	}
	b[n++] = '\'';
	b[n] = '\0';
	return b;
}

static const char *reprs(const char *s)
{
	return repr(s, strlen(s));
}

static const char *pybool(int v)
{
	return v ? "True" : "False";
}

/* Ends the case: reason NULL is a pass, anything else the failure. The
 * first verdict stands; teardown follows from the loop. */
static void over(struct tc *t, const char *reason)
{
	if (t->phase == PH_OVER)
		return;
	t->phase = PH_OVER;
	t->failed = reason != NULL;
	if (reason)
		printf("FAIL %s: %s\n", t->c->name, reason);
	else
		printf("PASS %s\n", t->c->name);
	fflush(stdout);
	event_active(t->end_ev, 0, 0);
}

static void vfail(struct tc *t, const char *fmt, va_list ap)
{
	char reason[1024];
	vsnprintf(reason, sizeof reason, fmt, ap);
	over(t, reason);
}

static void fail(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct tc *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(t, fmt, ap);
	va_end(ap);
}

static void pass(struct tc *t)
{
	over(t, NULL);
}

/* Returns cond; when it is false the case fails with the message. */
static int check(struct tc *t, int cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int check(struct tc *t, int cond, const char *fmt, ...)
{
	if (!cond) {
		va_list ap;
		va_start(ap, fmt);
		vfail(t, fmt, ap);
		va_end(ap);
	}
	return cond;
}

static void kick(struct tc *t)
{
	if (t->phase != PH_OVER)
		event_active(t->kick_ev, 0, 0);
}

/* ---- xcall: callbacks ------------------------------------------------------ */

static void md_copy(struct meta *dst, const struct meta *src)
{
	for (size_t i = 0; i < src->n; i++)
		meta_add(dst, src->v[i].key, src->v[i].keylen, src->v[i].val, src->v[i].vallen);
}

/* Hands queued requests to the call while it takes them, then half-closes
 * if the case asked to. */
static void xpump(struct xcall *x)
{
	while (x->call && x->outhead < x->outn) {
		struct out *o = &x->outq[x->outhead];
		int rv = rpc_call_send(x->call, o->buf, o->len, o->flags);
		if (rv == E_AGAIN)
			return; /* on_writable brings us back */
		if (rv < 0)
			return; /* call over: on_done tells the case */
		free(o->buf);
		o->buf = NULL;
		x->outhead++;
		if (rv == RPC_SEND_FULL)
			return;
	}
	if (x->call && x->close_pending) {
		x->close_pending = 0;
		rpc_call_close_send(x->call);
	}
}

static int on_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct xcall *x = arg;
	if (x->nresps == x->rcap) {
		x->rcap = x->rcap ? x->rcap * 2 : 8;
		x->resps = xrealloc(x->resps, x->rcap * sizeof *x->resps);
	}
	x->resps[x->nresps++] =
	    (struct resp){xmemdup(msg, len), len, rpc_call_last_compressed(call)};
	kick(x->t);
	return 0;
}

static void on_writable(struct rpc_call *call, void *arg)
{
	xpump(arg);
}

static void on_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct xcall *x = arg;
	x->call = NULL;
	x->done = 1;
	x->status = status;
	x->message = xstrdup(message);
	md_copy(&x->headers, rpc_call_recv_metadata(call));
	md_copy(&x->trailers, rpc_call_recv_trailers(call));
	kick(x->t);
}

static const struct rpc_call_cbs xcall_cbs = {
    .on_message = on_message,
    .on_writable = on_writable,
    .on_done = on_done,
};

/* ---- xcall: what cases call ------------------------------------------------ */

/* Starts method (after SERVICE unless it begins with '/') on the case's
 * channel. timeout_ms 0: the --rpc_timeout. md borrowed, may be NULL. */
static void xstart(struct tc *t, const char *method, int64_t timeout_ms, int compress,
                   const struct meta *md)
{
	char path[128];
	snprintf(path, sizeof path, "%s%s", method[0] == '/' ? "" : SERVICE, method);
	struct rpc_call_opts o = {
	    .timeout_ms = timeout_ms ? timeout_ms : cfg.rpc_timeout_ms,
	    .metadata = md,
	    .compress = compress,
	};
	t->x.call = rpc_call_start(t->ch, path, &xcall_cbs, &t->x, &o);
}

/* Queues message m (packed here) for the current call. */
static void xsend(struct tc *t, const ProtobufCMessage *m, int flags)
{
	struct xcall *x = &t->x;
	if (x->outn == x->outcap) {
		x->outcap = x->outcap ? x->outcap * 2 : 8;
		x->outq = xrealloc(x->outq, x->outcap * sizeof *x->outq);
	}
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(n + 1);
	protobuf_c_message_pack(m, buf);
	x->outq[x->outn++] = (struct out){buf, n, flags};
	xpump(x);
}

/* Half-closes the current call after the queued requests. */
static void xclose(struct tc *t)
{
	t->x.close_pending = 1;
	xpump(&t->x);
}

/* Forgets a finished call, ready for the case's next one. */
static void xcall_reset(struct xcall *x)
{
	for (size_t i = x->outhead; i < x->outn; i++)
		free(x->outq[i].buf);
	free(x->outq);
	for (size_t i = 0; i < x->nresps; i++)
		free(x->resps[i].buf);
	free(x->resps);
	free(x->message);
	meta_free(&x->headers);
	meta_free(&x->trailers);
	struct tc *t = x->t;
	memset(x, 0, sizeof *x);
	x->t = t;
	meta_init(&x->headers);
	meta_init(&x->trailers);
}

/* ---- requests -------------------------------------------------------------- */

/* Sends SimpleRequest{COMPRESSABLE, response_size 314159, payload of
 * 271828 zeros}, with expect_compressed / response_compressed when not
 * ABSENT. */
static void send_large_request(struct tc *t, int expect_compressed, int response_compressed,
                               int flags)
{
	Grpc__Testing__SimpleRequest r = GRPC__TESTING__SIMPLE_REQUEST__INIT;
	Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
	Grpc__Testing__BoolValue ec = GRPC__TESTING__BOOL_VALUE__INIT;
	Grpc__Testing__BoolValue rc = GRPC__TESTING__BOOL_VALUE__INIT;
	r.response_type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
	r.response_size = 314159;
	pl.body.len = 271828;
	pl.body.data = xcalloc(1, pl.body.len);
	r.payload = &pl;
	if (expect_compressed != ABSENT) {
		ec.value = expect_compressed != 0;
		r.expect_compressed = &ec;
	}
	if (response_compressed != ABSENT) {
		rc.value = response_compressed != 0;
		r.response_compressed = &rc;
	}
	xsend(t, &r.base, flags);
	free(pl.body.data);
}

/* Sends SimpleRequest{response_status: {code, message}}. */
static void send_echo_status_request(struct tc *t, int code, const char *message)
{
	Grpc__Testing__SimpleRequest r = GRPC__TESTING__SIMPLE_REQUEST__INIT;
	Grpc__Testing__EchoStatus st = GRPC__TESTING__ECHO_STATUS__INIT;
	st.code = code;
	st.message = (char *)message;
	r.response_status = &st;
	xsend(t, &r.base, 0);
}

/* Sends StreamingInputCallRequest{payload of size zeros}, with
 * expect_compressed when not ABSENT. */
static void send_input_request(struct tc *t, int32_t size, int expect_compressed, int flags)
{
	Grpc__Testing__StreamingInputCallRequest r =
	    GRPC__TESTING__STREAMING_INPUT_CALL_REQUEST__INIT;
	Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
	Grpc__Testing__BoolValue ec = GRPC__TESTING__BOOL_VALUE__INIT;
	pl.body.len = (size_t)size;
	pl.body.data = xcalloc(1, pl.body.len + 1);
	r.payload = &pl;
	if (expect_compressed != ABSENT) {
		ec.value = expect_compressed != 0;
		r.expect_compressed = &ec;
	}
	xsend(t, &r.base, flags);
	free(pl.body.data);
}

/* One ResponseParameters: size, and compressed when not ABSENT. */
struct rparam {
	int32_t size;
	int compressed;
};

/* Sends StreamingOutputCallRequest{COMPRESSABLE, one ResponseParameters
 * per params[i], a payload of payload_size zeros unless it is negative,
 * response_status when st is not NULL}. */
static void send_output_request(struct tc *t, const struct rparam *params, size_t n,
                                int32_t payload_size, Grpc__Testing__EchoStatus *st)
{
	Grpc__Testing__StreamingOutputCallRequest r =
	    GRPC__TESTING__STREAMING_OUTPUT_CALL_REQUEST__INIT;
	Grpc__Testing__ResponseParameters rp[8];
	Grpc__Testing__ResponseParameters *rpp[8];
	Grpc__Testing__BoolValue comp[8];
	Grpc__Testing__Payload pl = GRPC__TESTING__PAYLOAD__INIT;
	r.response_type = GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
	for (size_t i = 0; i < n && i < 8; i++) {
		grpc__testing__response_parameters__init(&rp[i]);
		rp[i].size = params[i].size;
		if (params[i].compressed != ABSENT) {
			grpc__testing__bool_value__init(&comp[i]);
			comp[i].value = params[i].compressed != 0;
			rp[i].compressed = &comp[i];
		}
		rpp[i] = &rp[i];
	}
	r.n_response_parameters = n < 8 ? n : 8;
	r.response_parameters = rpp;
	if (payload_size >= 0) {
		pl.body.len = (size_t)payload_size;
		pl.body.data = xcalloc(1, pl.body.len + 1);
		r.payload = &pl;
	}
	r.response_status = st;
	xsend(t, &r.base, 0);
	free(pl.body.data);
}

static void send_empty(struct tc *t)
{
	Grpc__Testing__Empty e = GRPC__TESTING__EMPTY__INIT;
	xsend(t, &e.base, 0);
}

/* ---- checks ---------------------------------------------------------------- */

/* Response i unpacked as d (free with protobuf_c_message_free_unpacked), or
 * NULL after failing the case. */
static void *response(struct tc *t, size_t i, const ProtobufCMessageDescriptor *d)
{
	struct resp *r = &t->x.resps[i];
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, r->len, r->buf);
	if (!m)
		fail(t, "response %zu does not parse as %s", i, d->name);
	return m;
}

static int status_ok(struct tc *t)
{
	return check(t, t->x.status == GRPC_STATUS_OK, "unexpected status %s: %s",
	             status_name(t->x.status), reprs(t->x.message));
}

/* The one response of a finished unary call, or NULL after failing. */
static void *unary_response(struct tc *t, const ProtobufCMessageDescriptor *d)
{
	if (!status_ok(t) ||
	    !check(t, t->x.nresps == 1, "%zu responses to a unary call, want 1", t->x.nresps))
		return NULL;
	return response(t, 0, d);
}

/* The finished call must have failed with code (and details unless NULL). */
static int expect_status(struct tc *t, int code, const char *details)
{
	struct xcall *x = &t->x;
	if (!check(t, x->status != GRPC_STATUS_OK, "call succeeded, want status %s",
	           status_name(code)) ||
	    !check(t, x->status == code, "status %s (%s), want %s", status_name(x->status),
	           reprs(x->message), status_name(code)))
		return 0;
	return !details || check(t, strcmp(x->message, details) == 0, "status message %s, want %s",
	                         reprs(x->message), reprs(details));
}

static int check_payload(struct tc *t, const Grpc__Testing__Payload *p, int32_t size,
                         const char *what)
{
	size_t len = p ? p->body.len : 0;
	if (!check(t, len == (size_t)size, "%s payload is %zu bytes, want %d", what, len, size))
		return 0;
	size_t i = 0;
	while (i < len && p->body.data[i] == 0)
		i++;
	if (!check(t, i == len, "%s payload is not all zeros", what))
		return 0;
	int type = p ? (int)p->type : GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE;
	return check(t, type == GRPC__TESTING__PAYLOAD_TYPE__COMPRESSABLE,
	             "%s payload type %d, want COMPRESSABLE", what, type);
}

/* Checks the payload of response i as a StreamingOutputCallResponse. */
static int check_output_response(struct tc *t, size_t i, int32_t size, const char *what)
{
	Grpc__Testing__StreamingOutputCallResponse *r =
	    response(t, i, &grpc__testing__streaming_output_call_response__descriptor);
	if (!r)
		return 0;
	int ok = check_payload(t, r->payload, size, what);
	grpc__testing__streaming_output_call_response__free_unpacked(r, NULL);
	return ok;
}

/* Checks the payload of the one response of a finished UnaryCall. */
static int check_simple_response(struct tc *t, int32_t size, const char *what)
{
	Grpc__Testing__SimpleResponse *r =
	    unary_response(t, &grpc__testing__simple_response__descriptor);
	if (!r)
		return 0;
	int ok = check_payload(t, r->payload, size, what);
	grpc__testing__simple_response__free_unpacked(r, NULL);
	return ok;
}

/* The aggregated_payload_size of a finished StreamingInputCall. */
static int check_aggregate(struct tc *t, int32_t want)
{
	Grpc__Testing__StreamingInputCallResponse *r =
	    unary_response(t, &grpc__testing__streaming_input_call_response__descriptor);
	if (!r)
		return 0;
	int32_t got = r->aggregated_payload_size;
	grpc__testing__streaming_input_call_response__free_unpacked(r, NULL);
	return check(t, got == want, "aggregated_payload_size %d, want %d", got, want);
}

/* Every entry of md with key must equal val: exactly one of them. */
static int check_echo_one(struct tc *t, const char *what, const char *kind, const struct meta *md,
                          const char *key, const char *val, size_t vallen)
{
	char got[600] = "[";
	size_t n = 0, same = 0;
	for (size_t i = 0; i < md->n; i++) {
		if (strcmp(md->v[i].key, key) != 0)
			continue;
		same += md->v[i].vallen == vallen && memcmp(md->v[i].val, val, vallen) == 0;
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s(%s, %s)", n++ ? ", " : "",
		         reprs(key), repr(md->v[i].val, md->v[i].vallen));
	}
	snprintf(got + strlen(got), sizeof got - strlen(got), "]");
	return check(t, n == 1 && same == 1, "%s: %s metadata %s is %s, want [(%s, %s)]", what,
	             kind, key, got, reprs(key), repr(val, vallen));
}

static int check_echo(struct tc *t, const char *what)
{
	return check_echo_one(t, what, "initial", &t->x.headers, ECHO_INITIAL_KEY, ECHO_INITIAL_VAL,
	                      strlen(ECHO_INITIAL_VAL)) &&
	       check_echo_one(t, what, "trailing", &t->x.trailers, ECHO_TRAILING_KEY,
	                      ECHO_TRAILING_VAL, strlen(ECHO_TRAILING_VAL));
}

/* For cases that wait: the next response not yet consumed, or -1 while
 * none is there. When the call ended first the case fails (what names the
 * awaited response) and -2 is returned. */
static int next_response(struct tc *t, const char *what)
{
	struct xcall *x = &t->x;
	if (x->next < x->nresps)
		return (int)x->next++;
	if (!x->done)
		return -1;
	if (status_ok(t))
		fail(t, "stream ended before %s", what);
	return -2;
}

/* ---- the cases, in the order of doc/interop-test-descriptions.md ----------- */

static void empty_unary(struct tc *t)
{
	switch (t->step) {
	case 0:
		xstart(t, "EmptyCall", 0, 0, NULL);
		send_empty(t);
		xclose(t);
		t->step = 1;
		return;
	case 1: {
		if (!t->x.done)
			return;
		Grpc__Testing__Empty *r = unary_response(t, &grpc__testing__empty__descriptor);
		if (!r)
			return;
		grpc__testing__empty__free_unpacked(r, NULL);
		/* client.py checks the length on the wire, where a compressed
		 * empty message is not 0 bytes. */
		const struct resp *r0 = &t->x.resps[0];
		if (check(t, !r0->compressed, "Empty response arrived compressed, want 0 bytes") &&
		    check(t, r0->len == 0, "Empty response serialized to %zu bytes, want 0",
		          r0->len))
			pass(t);
		return;
	}
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void large_unary(struct tc *t)
{
	switch (t->step) {
	case 0:
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_large_request(t, ABSENT, ABSENT, 0);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (t->x.done && check_simple_response(t, 314159, "response"))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void client_compressed_unary(struct tc *t)
{
	switch (t->step) {
	case 0: /* probe: the server must refuse an uncompressed request */
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_large_request(t, 1, ABSENT, 0);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done || !expect_status(t, GRPC_STATUS_INVALID_ARGUMENT, NULL))
			return;
		xcall_reset(&t->x);
		xstart(t, "UnaryCall", 0, 1, NULL);
		send_large_request(t, 1, ABSENT, 0);
		xclose(t);
		t->step = 2;
		return;
	case 2:
		if (!t->x.done || !check_simple_response(t, 314159, "compressed call's"))
			return;
		xcall_reset(&t->x);
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_large_request(t, 0, ABSENT, 0);
		xclose(t);
		t->step = 3;
		return;
	case 3:
		if (t->x.done && check_simple_response(t, 314159, "uncompressed call's"))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void server_compressed_unary(struct tc *t)
{
	/* t->i: 0 asks for a compressed response, 1 for a plain one. */
	int want = t->i == 0;
	switch (t->step) {
	case 0:
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_large_request(t, ABSENT, want, 0);
		xclose(t);
		t->step = 1;
		return;
	case 1: {
		if (!t->x.done)
			return;
		Grpc__Testing__SimpleResponse *r =
		    unary_response(t, &grpc__testing__simple_response__descriptor);
		if (!r)
			return;
		int got = t->x.resps[0].compressed;
		int ok =
		    check(t, got == want, "response_compressed=%s but the response %s compressed",
		          pybool(want), got ? "was" : "was not") &&
		    check_payload(t, r->payload, 314159, "response");
		grpc__testing__simple_response__free_unpacked(r, NULL);
		if (!ok)
			return;
		if (t->i++ == 1) {
			pass(t);
			return;
		}
		xcall_reset(&t->x);
		t->step = 0;
		kick(t);
		return;
	}
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void client_streaming(struct tc *t)
{
	static const int32_t sizes[] = {27182, 8, 1828, 45904};
	switch (t->step) {
	case 0:
		xstart(t, "StreamingInputCall", 0, 0, NULL);
		for (size_t i = 0; i < 4; i++)
			send_input_request(t, sizes[i], ABSENT, 0);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (t->x.done && check_aggregate(t, 74922))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void client_compressed_streaming(struct tc *t)
{
	switch (t->step) {
	case 0: /* probe: the server must refuse an uncompressed request */
		xstart(t, "StreamingInputCall", 0, 0, NULL);
		send_input_request(t, 27182, 1, 0);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done || !expect_status(t, GRPC_STATUS_INVALID_ARGUMENT, NULL))
			return;
		xcall_reset(&t->x);
		xstart(t, "StreamingInputCall", 0, 1, NULL);
		send_input_request(t, 27182, 1, 0);
		send_input_request(t, 45904, 0, RPC_SEND_NOCOMPRESS);
		xclose(t);
		t->step = 2;
		return;
	case 2:
		if (t->x.done && check_aggregate(t, 73086))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void server_streaming(struct tc *t)
{
	static const struct rparam params[] = {
	    {31415, ABSENT}, {9, ABSENT}, {2653, ABSENT}, {58979, ABSENT}};
	switch (t->step) {
	case 0:
		xstart(t, "StreamingOutputCall", 0, 0, NULL);
		send_output_request(t, params, 4, -1, NULL);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done || !status_ok(t) ||
		    !check(t, t->x.nresps == 4, "%zu responses, want 4", t->x.nresps))
			return;
		for (size_t i = 0; i < 4; i++)
			if (!check_output_response(t, i, params[i].size, "response"))
				return;
		pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void server_compressed_streaming(struct tc *t)
{
	static const struct rparam params[] = {{31415, 1}, {92653, 0}};
	switch (t->step) {
	case 0:
		xstart(t, "StreamingOutputCall", 0, 0, NULL);
		send_output_request(t, params, 2, -1, NULL);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done || !status_ok(t) ||
		    !check(t, t->x.nresps == 2, "%zu responses, want 2", t->x.nresps))
			return;
		for (size_t i = 0; i < 2; i++) {
			char what[32];
			snprintf(what, sizeof what, "response %zu", i);
			int got = t->x.resps[i].compressed;
			if (!check(t, got == params[i].compressed,
			           "response %zu: compressed=%s, want %s", i, pybool(got),
			           pybool(params[i].compressed)) ||
			    !check_output_response(t, i, params[i].size, what))
				return;
		}
		pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void ping_pong(struct tc *t)
{
	static const struct {
		int32_t resp_size, req_size;
	} steps[] = {{31415, 27182}, {9, 8}, {2653, 1828}, {58979, 45904}};
	char what[32];
	switch (t->step) {
	case 0:
		xstart(t, "FullDuplexCall", 0, 0, NULL);
		t->step = 1;
		/* fall through */
	case 1: { /* send request t->i */
		struct rparam p = {steps[t->i].resp_size, ABSENT};
		send_output_request(t, &p, 1, steps[t->i].req_size, NULL);
		t->step = 2;
		return;
	}
	case 2: { /* wait for response t->i */
		snprintf(what, sizeof what, "response %d", t->i);
		int r = next_response(t, what);
		if (r < 0 || !check_output_response(t, (size_t)r, steps[t->i].resp_size, what))
			return;
		if (++t->i < 4) {
			t->step = 1;
			kick(t);
			return;
		}
		xclose(t);
		t->step = 3;
		return;
	}
	case 3:
		if (!t->x.done || !status_ok(t))
			return;
		if (check(t, t->x.nresps == 4, "%zu responses after the fourth, want none",
		          t->x.nresps - 4))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void empty_stream(struct tc *t)
{
	switch (t->step) {
	case 0:
		xstart(t, "FullDuplexCall", 0, 0, NULL);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (t->x.done && status_ok(t) &&
		    check(t, t->x.nresps == 0, "%zu responses, want 0", t->x.nresps))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void timeout_on_sleeping_server(struct tc *t)
{
	switch (t->step) {
	case 0:
		/* One request and no half-close: the 1 ms deadline must end
		 * the call while the stream is open. */
		xstart(t, "FullDuplexCall", 1, 0, NULL);
		send_output_request(t, NULL, 0, 27182, NULL);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done ||
		    !check(t, t->x.status != GRPC_STATUS_OK,
		           "call completed normally with %zu responses", t->x.nresps) ||
		    !check(t, t->x.status == GRPC_STATUS_DEADLINE_EXCEEDED,
		           "status %s, want DEADLINE_EXCEEDED", status_name(t->x.status)))
			return;
		pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void cancel_after_begin(struct tc *t)
{
	switch (t->step) {
	case 0:
		xstart(t, "StreamingInputCall", 0, 0, NULL);
		rpc_call_cancel(t->x.call);
		t->step = 1;
		return;
	case 1:
		if (!t->x.done ||
		    !check(t, t->x.status != GRPC_STATUS_OK, "call succeeded after cancel") ||
		    !check(t, t->x.status == GRPC_STATUS_CANCELLED, "status %s, want CANCELLED",
		           status_name(t->x.status)))
			return;
		pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void cancel_after_first_response(struct tc *t)
{
	switch (t->step) {
	case 0: {
		struct rparam p = {31415, ABSENT};
		xstart(t, "FullDuplexCall", 0, 0, NULL);
		send_output_request(t, &p, 1, 27182, NULL);
		t->step = 1;
		return;
	}
	case 1: {
		int r = next_response(t, "the first response");
		if (r < 0 || !check_output_response(t, (size_t)r, 31415, "response"))
			return;
		if (t->x.call) /* NULL if the call ended meanwhile */
			rpc_call_cancel(t->x.call);
		t->step = 2;
		return;
	}
	case 2:
		if (t->x.done && expect_status(t, GRPC_STATUS_CANCELLED, NULL))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void custom_metadata(struct tc *t)
{
	struct meta md;
	meta_init(&md);
	meta_add(&md, ECHO_INITIAL_KEY, strlen(ECHO_INITIAL_KEY), ECHO_INITIAL_VAL,
	         strlen(ECHO_INITIAL_VAL));
	meta_add(&md, ECHO_TRAILING_KEY, strlen(ECHO_TRAILING_KEY), ECHO_TRAILING_VAL,
	         strlen(ECHO_TRAILING_VAL));
	switch (t->step) {
	case 0:
		xstart(t, "UnaryCall", 0, 0, &md);
		send_large_request(t, ABSENT, ABSENT, 0);
		xclose(t);
		t->step = 1;
		break;
	case 1: {
		if (!t->x.done || !check_simple_response(t, 314159, "UnaryCall") ||
		    !check_echo(t, "UnaryCall"))
			break;
		struct rparam p = {314159, ABSENT};
		xcall_reset(&t->x);
		xstart(t, "FullDuplexCall", 0, 0, &md);
		send_output_request(t, &p, 1, 271828, NULL);
		xclose(t);
		t->step = 2;
		break;
	}
	case 2:
		if (!t->x.done || !status_ok(t) ||
		    !check(t, t->x.nresps == 1, "FullDuplexCall: %zu responses, want 1",
		           t->x.nresps) ||
		    !check_output_response(t, 0, 314159, "FullDuplexCall") ||
		    !check_echo(t, "FullDuplexCall"))
			break;
		pass(t);
		break;
	default:
		fail(t, "internal: step %d", t->step);
	}
	meta_free(&md);
}

static void status_code_and_message(struct tc *t)
{
	static const char message[] = "test status message";
	switch (t->step) {
	case 0:
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_echo_status_request(t, GRPC_STATUS_UNKNOWN, message);
		xclose(t);
		t->step = 1;
		return;
	case 1: {
		if (!t->x.done || !expect_status(t, GRPC_STATUS_UNKNOWN, message))
			return;
		Grpc__Testing__EchoStatus st = GRPC__TESTING__ECHO_STATUS__INIT;
		st.code = GRPC_STATUS_UNKNOWN;
		st.message = (char *)message;
		xcall_reset(&t->x);
		xstart(t, "FullDuplexCall", 0, 0, NULL);
		send_output_request(t, NULL, 0, -1, &st);
		xclose(t);
		t->step = 2;
		return;
	}
	case 2:
		if (t->x.done && expect_status(t, GRPC_STATUS_UNKNOWN, message))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void special_status_message(struct tc *t)
{
	switch (t->step) {
	case 0:
		xstart(t, "UnaryCall", 0, 0, NULL);
		send_echo_status_request(t, GRPC_STATUS_UNKNOWN, SPECIAL_MESSAGE);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (t->x.done && expect_status(t, GRPC_STATUS_UNKNOWN, SPECIAL_MESSAGE))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

/* Calls path with an Empty request; it must fail with UNIMPLEMENTED. */
static void expect_unimplemented(struct tc *t, const char *path)
{
	switch (t->step) {
	case 0:
		xstart(t, path, 0, 0, NULL);
		send_empty(t);
		xclose(t);
		t->step = 1;
		return;
	case 1:
		if (t->x.done && expect_status(t, GRPC_STATUS_UNIMPLEMENTED, NULL))
			pass(t);
		return;
	default:
		fail(t, "internal: step %d", t->step);
	}
}

static void unimplemented_method(struct tc *t)
{
	expect_unimplemented(t, SERVICE "UnimplementedCall");
}

static void unimplemented_service(struct tc *t)
{
	expect_unimplemented(t, "/grpc.testing.UnimplementedService/UnimplementedCall");
}

/* Same names and order as client.py's CASES. */
static const struct tcase cases[] = {
    {"empty_unary", empty_unary},
    {"large_unary", large_unary},
    {"client_streaming", client_streaming},
    {"server_streaming", server_streaming},
    {"ping_pong", ping_pong},
    {"empty_stream", empty_stream},
    {"timeout_on_sleeping_server", timeout_on_sleeping_server},
    {"cancel_after_begin", cancel_after_begin},
    {"cancel_after_first_response", cancel_after_first_response},
    {"custom_metadata", custom_metadata},
    {"status_code_and_message", status_code_and_message},
    {"special_status_message", special_status_message},
    {"unimplemented_method", unimplemented_method},
    {"unimplemented_service", unimplemented_service},
    {"client_compressed_unary", client_compressed_unary},
    {"server_compressed_unary", server_compressed_unary},
    {"client_compressed_streaming", client_compressed_streaming},
    {"server_compressed_streaming", server_compressed_streaming},
};
static const size_t ncases = sizeof cases / sizeof cases[0];

/* ---- running cases --------------------------------------------------------- */

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tc *t = arg;
	if (t->phase == PH_CONNECTING && rpc_channel_state(t->ch) == RPC_CH_READY) {
		t->phase = PH_RUNNING;
		/* Every RPC has --rpc_timeout; a case runs a few in a row. */
		arm(t->watchdog_ev, 3 * cfg.rpc_timeout_ms + 5000);
	}
	if (t->phase == PH_RUNNING)
		t->c->run(t);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tc *t = arg;
	if (t->phase == PH_CONNECTING)
		fail(t, "cannot connect to %s:%d within %gs", cfg.host, cfg.port,
		     (double)cfg.connect_timeout_ms / 1000);
	else
		fail(t, "case did not end in time");
}

static void state_cb(struct rpc_channel *ch, enum rpc_channel_state st, void *arg)
{
	if (st == RPC_CH_READY)
		kick(arg);
}

static void run_next(void)
{
	if (nextcase == ntodo) {
		event_base_loopbreak(base);
		return;
	}
	const char *name = todo[nextcase++];
	for (size_t i = 0; i < ncases; i++)
		if (strcmp(cases[i].name, name) == 0)
			start_case(&cases[i]);
}

/* Tears the case down (from the loop: the channel must not be freed inside
 * its own callbacks) and starts the next one. Calls still running end with
 * CANCELLED in rpc_channel_del; their on_done only records. */
static void end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tc *t = arg;
	rpc_channel_del(t->ch);
	xcall_reset(&t->x);
	nfailed += t->failed;
	event_free(t->kick_ev);
	event_free(t->watchdog_ev);
	event_free(t->end_ev);
	free(t);
	run_next();
}

static void start_case(const struct tcase *c)
{
	struct tc *t = xcalloc(1, sizeof *t);
	t->c = c;
	t->x.t = t;
	xcall_reset(&t->x);
	t->kick_ev = event_new(base, -1, 0, kick_cb, t);
	t->watchdog_ev = evtimer_new(base, watchdog_cb, t);
	t->end_ev = event_new(base, -1, 0, end_cb, t);

	char target[300];
	if (strchr(cfg.host, ':'))
		snprintf(target, sizeof target, "[%s]:%d", cfg.host, cfg.port);
	else
		snprintf(target, sizeof target, "%s:%d", cfg.host, cfg.port);
	struct rpc_tls_opts tls = {.ca_file = cfg.ca_file, .server_name = cfg.host_override};
	struct rpc_opts opts = {.tls = cfg.use_tls ? &tls : NULL};
	int err = 0;
	t->ch = rpc_channel_new(base, target, &opts, &err);
	if (!t->ch) {
		fail(t, "cannot create a channel to %s: %s", target, err_str(err));
		return;
	}
	rpc_channel_set_state_cb(t->ch, state_cb, t);
	arm(t->watchdog_ev, cfg.connect_timeout_ms);
	rpc_channel_connect(t->ch);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: interop_client --server_host H --server_port N "
	                "--test_case NAME[,NAME...]|all\n"
	                "       [--use_tls --ca_file F [--server_host_override NAME]]\n"
	                "       [--rpc_timeout S] [--connect_timeout S] [--list_cases]\n");
	exit(2);
}

static int parse_bool(const char *s)
{
	return !s || strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0 ||
	       strcmp(s, "on") == 0;
}

static int64_t parse_seconds(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || v <= 0)
		usage();
	return (int64_t)(v * 1000 + 0.5) > 0 ? (int64_t)(v * 1000 + 0.5) : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"server_host", required_argument, NULL, 'h'},
	    {"server_port", required_argument, NULL, 'p'},
	    {"server_host_override", required_argument, NULL, 'o'},
	    {"test_case", required_argument, NULL, 'c'},
	    {"use_tls", optional_argument, NULL, 't'},
	    {"ca_file", required_argument, NULL, 'a'},
	    {"rpc_timeout", required_argument, NULL, 'r'},
	    {"connect_timeout", required_argument, NULL, 'T'},
	    {"list_cases", no_argument, NULL, 'l'},
	    {0, 0, 0, 0},
	};
	const char *test_case = "all";
	int o;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'h':
			cfg.host = optarg;
			break;
		case 'p':
			cfg.port = atoi(optarg);
			break;
		case 'o':
			cfg.host_override = *optarg ? optarg : NULL;
			break;
		case 'c':
			test_case = optarg;
			break;
		case 't':
			cfg.use_tls = parse_bool(optarg);
			break;
		case 'a':
			cfg.ca_file = optarg;
			break;
		case 'r':
			cfg.rpc_timeout_ms = parse_seconds(optarg);
			break;
		case 'T':
			cfg.connect_timeout_ms = parse_seconds(optarg);
			break;
		case 'l':
			for (size_t i = 0; i < ncases; i++)
				printf("%s\n", cases[i].name);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc || cfg.port <= 0 || cfg.port > 65535) {
		fprintf(stderr, "interop_client: --server_port is required\n");
		usage();
	}
	if (cfg.use_tls && !cfg.ca_file) {
		/* As client.py: certificate checks are never disabled. */
		fprintf(stderr, "interop_client: --use_tls needs --ca_file\n");
		usage();
	}

	char *names = xstrdup(test_case);
	todo =
	    xcalloc(strcmp(test_case, "all") == 0 ? ncases : strlen(test_case) + 1, sizeof *todo);
	if (strcmp(test_case, "all") == 0) {
		for (size_t i = 0; i < ncases; i++)
			todo[ntodo++] = cases[i].name;
	} else {
		for (char *save, *n = strtok_r(names, ",", &save); n;
		     n = strtok_r(NULL, ",", &save)) {
			size_t i = 0;
			while (i < ncases && strcmp(cases[i].name, n) != 0)
				i++;
			if (i == ncases) {
				fprintf(stderr, "interop_client: unknown test case %s\n", n);
				usage();
			}
			todo[ntodo++] = cases[i].name;
		}
	}

	log_set_role("interop_client");
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	run_next();
	event_base_dispatch(base);
	event_base_free(base);
	free(todo);
	free(names);
	return nfailed ? 1 : 0;
}
