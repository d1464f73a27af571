/*
 * rpc_test: lib/rpc's own behaviours, server and client in one process on
 * 127.0.0.1 ephemeral ports, one scenario per command-line argument (or
 * all). Each scenario runs the loop until its outcome is decided, bounded
 * by a watchdog timer; exit 0 when every scenario passed.
 *
 *   deadline     a handler that never answers is told DEADLINE_EXCEEDED
 *   cancel       a client cancel reaches the handler; a server cancel the client
 *   backpressure a paused reader stops a streaming sender; memory stays bounded
 *   shutdown     GOAWAY: the in-flight call finishes, new calls are refused
 *   keepalive    a peer that never answers PINGs is dropped
 *   handshake    a client that never speaks is dropped after the handshake timeout
 *   reconnect    fail fast while down, reconnect with backoff when up
 *   metadata     120 custom keys (ASCII and -bin) both ways, headers and trailers
 *   mtls         a client without a certificate is refused (needs CERTS=dir)
 *   authorize    the server's authorize hook sees the channel's default
 *                metadata; a refused call never reaches its handler
 *   bigmsg       a 3 MiB message echoed intact, plaintext and TLS: larger
 *                than a read buffer, a read event's reads, the output
 *                high-water mark and the socket's buffer
 *   split        a request that arrives one byte per read (preface, frame
 *                headers and HPACK cut everywhere) is answered as a whole
 *   pauseend     a stream that ends while its reader is paused delivers
 *                its messages, then its status, only once it resumes
 *   pausegoaway  ... and still does when the server shuts down at once
 *                and the connection is gone before the reader resumes
 *                (deleting the channel ends such a call); unpaused, no
 *                part of the answer is lost to the closing connection,
 *                plaintext or TLS (needs CERTS=dir)
 *   reuse        a call made after many others (from the pool of ended
 *                calls, on both sides) carries nothing of an earlier life:
 *                metadata, trailers, compression, deadline, status, data
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "error.h"
#include "log.h"
#include "rpc.h"

static struct event_base *base;
static int failures;
static const char *scenario;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s: %s:%d: ", scenario, __FILE__, __LINE__);        \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "FAIL %s: watchdog: no outcome within the bound\n", scenario);
	failures++;
	event_base_loopbreak(base);
}

/* Runs the loop until stop() or the watchdog (ms). */
static void run(int ms)
{
	struct event *wd = evtimer_new(base, watchdog_cb, NULL);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(wd, &tv);
	event_base_dispatch(base);
	event_free(wd);
}

static void stop(void)
{
	event_base_loopbreak(base);
}

static struct event *after(int ms, void (*fn)(evutil_socket_t, short, void *), void *arg)
{
	struct event *ev = evtimer_new(base, fn, arg);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(ev, &tv);
	return ev;
}

static struct rpc_server *server(const struct rpc_opts *o, int *port)
{
	int err = 0;
	struct rpc_server *s = rpc_server_new(base, o, &err);
	if (!s) {
		fprintf(stderr, "server: %s\n", err_str(err));
		exit(1);
	}
	*port = rpc_server_listen(s, "127.0.0.1:0");
	if (*port <= 0) {
		fprintf(stderr, "listen: %s\n", err_str(*port));
		exit(1);
	}
	return s;
}

static struct rpc_channel *channel(int port, const struct rpc_opts *o)
{
	char t[32];
	snprintf(t, sizeof t, "127.0.0.1:%d", port);
	return rpc_channel_new(base, t, o, NULL);
}

/* Options for a TLS server and its client (server certificate only) from
 * the certificates in $CERTS, kept in static storage until the next call.
 * Returns 0, or -1 (a failure of the scenario) when CERTS is not set. */
static int tls_pair(struct rpc_opts *so, struct rpc_opts *co)
{
	static char ca[256], cert[256], key[256];
	static struct rpc_tls_opts st, ct;
	const char *d = getenv("CERTS");
	if (!d) {
		fprintf(stderr, "%s: CERTS not set\n", scenario);
		failures++;
		return -1;
	}
	snprintf(ca, sizeof ca, "%s/ca.pem", d);
	snprintf(cert, sizeof cert, "%s/server.pem", d);
	snprintf(key, sizeof key, "%s/server.key", d);
	st = (struct rpc_tls_opts){.cert_file = cert, .key_file = key};
	ct = (struct rpc_tls_opts){.ca_file = ca, .server_name = "localhost"};
	*so = (struct rpc_opts){.tls = &st};
	*co = (struct rpc_opts){.tls = &ct};
	return 0;
}

/* Runs the loop for ms milliseconds. */
static void run_for(int ms)
{
	struct event *e = after(ms, (void (*)(evutil_socket_t, short, void *))stop, NULL);
	run(ms + 2000);
	event_free(e);
}

/* A plain TCP client socket connected to s on port, returned once s has
 * accepted it (or after a bounded wait: the caller checks). */
static int raw_connect(struct rpc_server *s, int port)
{
	size_t before = rpc_server_conn_count(s);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		exit(1);
	}
	for (int i = 0; i < 40 && rpc_server_conn_count(s) == before; i++)
		run_for(25);
	return fd;
}

/* ---- handlers ---------------------------------------------------------- */

/* The server side's view of the last call that ended. */
static int srv_done_status = -1;
static struct rpc_call *srv_call;

static int hold_start(struct rpc_call *call, void *arg)
{
	srv_call = call;
	return 0;
}

static void hold_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	srv_done_status = status;
	srv_call = NULL;
}

/* Never answers on its own. */
static const struct rpc_call_cbs hold_cbs = {.on_start = hold_start, .on_done = hold_done};

static int echo_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	rpc_call_send(call, msg, len, 0);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
	return 0;
}
static const struct rpc_call_cbs echo_cbs = {.on_message = echo_msg};

/* Client side. */
static int cli_status = -1;
static char cli_msg[256];
static int cli_msgs;

static int cli_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	cli_msgs++;
	return 0;
}

static void cli_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	cli_status = status;
	snprintf(cli_msg, sizeof cli_msg, "%s", m);
	if (arg)
		stop();
}
static const struct rpc_call_cbs cli_cbs = {.on_message = cli_message, .on_done = cli_done};

static struct rpc_call *unary(struct rpc_channel *ch, const char *path, int64_t timeout,
			      int stop_when_done)
{
	struct rpc_call_opts co = {.timeout_ms = timeout};
	cli_status = -1;
	struct rpc_call *c =
		rpc_call_start(ch, path, &cli_cbs, stop_when_done ? (void *)1 : NULL, &co);
	rpc_call_send(c, "hi", 2, 0);
	rpc_call_close_send(c);
	return c;
}

/* ---- scenarios ---------------------------------------------------------- */

static void wait_server_done(void)
{
	for (int i = 0; i < 40 && srv_done_status < 0; i++) {
		struct event *e = after(50, (void (*)(evutil_socket_t, short, void *))stop, NULL);
		run(2000);
		event_free(e);
	}
}

static void deadline(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Hold", &hold_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	srv_done_status = -1;
	unary(ch, "/t.T/Hold", 200, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_DEADLINE_EXCEEDED, "client status %d", cli_status);
	/* The server's own timer (from grpc-timeout) tells the handler. */
	wait_server_done();
	/* Client and server deadlines expire together; whichever side acts
	 * first, the handler hears of it and stops: DEADLINE_EXCEEDED from its
	 * own timer, or CANCELLED from the client's reset a moment earlier. */
	CHECK(srv_done_status == GRPC_STATUS_DEADLINE_EXCEEDED ||
		      srv_done_status == GRPC_STATUS_CANCELLED,
	      "handler told %d", srv_done_status);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

static void cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	rpc_call_cancel(arg);
}

static void server_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	if (srv_call)
		rpc_call_cancel(srv_call);
}

static void cancel(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Hold", &hold_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);

	srv_done_status = -1;
	struct rpc_call *c = unary(ch, "/t.T/Hold", 0, 1);
	struct event *e = after(100, cancel_cb, c);
	run(5000);
	event_free(e);
	CHECK(cli_status == GRPC_STATUS_CANCELLED, "client status %d", cli_status);
	wait_server_done();
	CHECK(srv_done_status == GRPC_STATUS_CANCELLED, "handler told %d", srv_done_status);

	srv_done_status = -1;
	unary(ch, "/t.T/Hold", 0, 1);
	e = after(100, server_cancel_cb, NULL);
	run(5000);
	event_free(e);
	CHECK(cli_status == GRPC_STATUS_CANCELLED, "client status after server cancel %d",
	      cli_status);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

/* Backpressure: the server streams until told to wait; the client pauses
 * reading for a while, then resumes and must get everything. */
enum { BP_MSGS = 4000, BP_SIZE = 4096 };
static int bp_sent, bp_full_waits, bp_writable_while_paused, bp_paused;
static size_t bp_max_ahead;

static void bp_pump(struct rpc_call *call)
{
	static uint8_t buf[BP_SIZE];
	while (bp_sent < BP_MSGS) {
		int rv = rpc_call_send(call, buf, sizeof buf, 0);
		if (rv == E_AGAIN)
			return;
		CHECK(rv >= 0, "send: %s", err_str(rv));
		if (rv < 0)
			return;
		bp_sent++;
		size_t ahead = (size_t)(bp_sent - cli_msgs) * BP_SIZE;
		if (ahead > bp_max_ahead)
			bp_max_ahead = ahead;
		if (rv == RPC_SEND_FULL) {
			bp_full_waits++;
			return;
		}
	}
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static int bp_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	bp_pump(call);
	return 0;
}

static void bp_writable(struct rpc_call *call, void *arg)
{
	if (bp_paused)
		bp_writable_while_paused++;
	bp_pump(call);
}
static const struct rpc_call_cbs bp_cbs = {.on_message = bp_msg, .on_writable = bp_writable};

static void bp_resume(evutil_socket_t fd, short what, void *arg)
{
	/* While paused the sender must have stopped: its queue is full. */
	CHECK(bp_full_waits > 0, "sender never saw a full queue");
	CHECK(bp_sent < BP_MSGS, "sender sent everything into a paused reader");
	bp_paused = 0;
	rpc_call_pause_recv(arg, 0);
}

static void backpressure(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Stream", &bp_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	cli_msgs = 0;
	struct rpc_call *c = unary(ch, "/t.T/Stream", 0, 1);
	rpc_call_pause_recv(c, 1);
	bp_paused = 1;
	struct event *e = after(500, bp_resume, c);
	run(20000);
	event_free(e);
	CHECK(cli_status == GRPC_STATUS_OK, "status %d %s", cli_status, cli_msg);
	CHECK(cli_msgs == BP_MSGS, "got %d of %d", cli_msgs, BP_MSGS);
	/* Bounded by flow-control windows and the queues' high-water marks,
	 * far below the 16 MiB stream. */
	CHECK(bp_max_ahead < (6u << 20), "sender ran %zu bytes ahead", bp_max_ahead);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

/* Pause at the end: a stream that ends (messages and status) while the
 * reader is paused keeps its order: every held message, then the status,
 * once the reader resumes, and nothing while it is paused. */
enum { PE_MSGS = 50, PE_SIZE = 4096 };
static int pe_paused, pe_msgs_while_paused, pe_done_while_paused;

static int pe_start_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	static uint8_t buf[PE_SIZE];
	for (int i = 0; i < PE_MSGS; i++)
		rpc_call_send(call, buf, sizeof buf, RPC_SEND_FORCE);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
	return 0;
}
static const struct rpc_call_cbs pe_srv_cbs = {.on_message = pe_start_msg};

static int pe_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	if (pe_paused)
		pe_msgs_while_paused++;
	cli_msgs++;
	return 0;
}

static void pe_cli_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	if (pe_paused)
		pe_done_while_paused = 1;
	cli_done(call, status, m, arg);
}
static const struct rpc_call_cbs pe_cli_cbs = {.on_message = pe_message, .on_done = pe_cli_done};

static void pe_resume(evutil_socket_t fd, short what, void *arg)
{
	pe_paused = 0;
	rpc_call_pause_recv(arg, 0);
}

static void pauseend(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Burst", &pe_srv_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	cli_msgs = 0;
	cli_status = -1;
	struct rpc_call *c = rpc_call_start(ch, "/t.T/Burst", &pe_cli_cbs, (void *)1, NULL);
	rpc_call_pause_recv(c, 1);
	pe_paused = 1;
	rpc_call_send(c, "go", 2, 0);
	rpc_call_close_send(c);
	/* By then the whole answer has arrived and the stream closed (its
	 * 200 KiB fit every window); if it had not, the checks hold all the
	 * same, they only probe less. */
	struct event *e = after(300, pe_resume, c);
	run(10000);
	event_free(e);
	CHECK(!pe_msgs_while_paused && !pe_done_while_paused,
	      "paused reader got %d messages%s", pe_msgs_while_paused,
	      pe_done_while_paused ? " and its status" : "");
	CHECK(cli_status == GRPC_STATUS_OK, "status %d %s", cli_status, cli_msg);
	CHECK(cli_msgs == PE_MSGS, "got %d of %d messages", cli_msgs, PE_MSGS);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

/* Pause across a shutdown: the server ends a stream (messages and OK)
 * while the reader is paused, then shuts down at once. The reader,
 * resuming only once the connection is gone, still gets every held
 * message, then the stream's own status. Modes: PG_PART keeps a call
 * whose stream has not ended on the same connection, so the connection
 * lasts until the grace is over and that call fails with UNAVAILABLE;
 * without it the connection closes as soon as both sides are done.
 * Without PG_RESUME the channel is deleted instead, which ends the call;
 * without PG_PAUSE nothing of the answer may be lost to the close. PG_TLS:
 * over TLS (needs CERTS). PG_CANCEL: the reader cancels instead, and its
 * on_done (CANCELLED, no message) comes from the loop, not from inside
 * rpc_call_cancel. */
enum { PG_PART = 1, PG_PAUSE = 2, PG_RESUME = 4, PG_TLS = 8, PG_CANCEL = 16 };
static struct rpc_server *pg_srv;
static struct event *pg_shutdown_ev;
static int pg_part_status = -1;

/* The server closed its last connection: it saw ours close. */
static void pg_stopped(void *arg)
{
	if (arg)
		stop();
}

static void pg_shutdown(evutil_socket_t fd, short what, void *arg)
{
	rpc_server_shutdown(pg_srv, 200, pg_stopped, arg);
}

static void pg_burst_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	/* From the loop: not from inside the connection's callbacks. */
	event_active(pg_shutdown_ev, 0, 0);
}
static const struct rpc_call_cbs pg_burst_cbs = {.on_message = pe_start_msg,
						 .on_done = pg_burst_done};

static int pg_part_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	rpc_call_send(call, "part", 4, 0); /* and never finishes */
	return 0;
}
static const struct rpc_call_cbs pg_part_cbs = {.on_message = pg_part_msg};

/* The client's Part ends only when the connection is gone. */
static void pg_part_cli_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	pg_part_status = status;
	stop();
}
static const struct rpc_call_cbs pg_part_cli_cbs = {.on_done = pg_part_cli_done};

static void pg_run(int mode)
{
	int port;
	struct rpc_opts so = {0}, co = {0};
	if ((mode & PG_TLS) && tls_pair(&so, &co) != 0)
		return;
	pg_srv = server(&so, &port);
	rpc_server_add_method(pg_srv, "/t.T/Burst", &pg_burst_cbs, NULL);
	rpc_server_add_method(pg_srv, "/t.T/Part", &pg_part_cbs, NULL);
	/* What says the connection is gone: Part's end; without Part, the
	 * server's (it closes after our side did); unpaused, Burst's. */
	int stop_on_stopped = (mode & (PG_PART | PG_PAUSE)) == PG_PAUSE;
	pg_shutdown_ev = event_new(base, -1, 0, pg_shutdown, stop_on_stopped ? (void *)1 : NULL);
	struct rpc_channel *ch = channel(port, &co);
	cli_msgs = 0;
	cli_status = -1;
	pg_part_status = -1;
	pe_msgs_while_paused = pe_done_while_paused = 0;
	if (mode & PG_PART) {
		struct rpc_call *part =
			rpc_call_start(ch, "/t.T/Part", &pg_part_cli_cbs, NULL, NULL);
		rpc_call_pause_recv(part, 1);
		rpc_call_send(part, "go", 2, 0);
	}
	struct rpc_call *c = rpc_call_start(ch, "/t.T/Burst", &pe_cli_cbs, (void *)1, NULL);
	pe_paused = (mode & PG_PAUSE) != 0;
	rpc_call_pause_recv(c, pe_paused);
	rpc_call_send(c, "go", 2, 0);
	rpc_call_close_send(c);
	run(10000);
	if (mode & PG_PART)
		CHECK(pg_part_status == GRPC_STATUS_UNAVAILABLE,
		      "unfinished call on the lost connection: %d", pg_part_status);
	CHECK(!pe_msgs_while_paused && !pe_done_while_paused,
	      "mode %d: paused reader got %d messages%s", mode, pe_msgs_while_paused,
	      pe_done_while_paused ? " and its status" : "");
	if ((mode & PG_CANCEL) && cli_status < 0) {
		rpc_call_cancel(c);
		CHECK(cli_status < 0, "on_done ran inside rpc_call_cancel");
		run(10000);
		CHECK(cli_status == GRPC_STATUS_CANCELLED && !cli_msgs,
		      "cancelled: status %d, %d messages", cli_status, cli_msgs);
	}
	/* Burst's on_done frees it: touch it only if it has not come. */
	if ((mode & PG_RESUME) && cli_status < 0) {
		pe_paused = 0;
		rpc_call_pause_recv(c, 0);
		run(10000);
	}
	rpc_channel_del(ch);
	if (mode & PG_CANCEL) {
		/* checked above */
	} else if ((mode & PG_RESUME) || !(mode & PG_PAUSE)) {
		CHECK(cli_status == GRPC_STATUS_OK, "mode %d: status %d %s", mode, cli_status,
		      cli_msg);
		CHECK(cli_msgs == PE_MSGS, "mode %d: got %d of %d messages", mode, cli_msgs,
		      PE_MSGS);
	} else {
		CHECK(cli_status == GRPC_STATUS_CANCELLED && !cli_msgs,
		      "deleting the channel: status %d, %d messages", cli_status, cli_msgs);
	}
	rpc_server_del(pg_srv);
	event_free(pg_shutdown_ev);
}

static void pausegoaway(void)
{
	pg_run(PG_PART | PG_PAUSE | PG_RESUME);
	pg_run(PG_PART | PG_PAUSE);
	pg_run(PG_PAUSE | PG_RESUME);
	pg_run(PG_PAUSE | PG_CANCEL);
	pg_run(0);
	pg_run(PG_TLS | PG_PAUSE | PG_RESUME);
	pg_run(PG_TLS);
}

/* Shutdown: a call in flight finishes; a call after GOAWAY is refused. */
static int sd_done;

static void sd_finish(evutil_socket_t fd, short what, void *arg)
{
	if (srv_call) {
		rpc_call_send(srv_call, "late", 4, 0);
		rpc_call_finish(srv_call, GRPC_STATUS_OK, NULL);
	}
}

static void sd_stopped(void *arg)
{
	sd_done = 1;
}

static int sd_second_status = -1;
static void sd_second_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	sd_second_status = status;
}
static const struct rpc_call_cbs sd_second_cbs = {.on_done = sd_second_done};

static void shutdown_(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Hold", &hold_cbs, NULL);
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	srv_done_status = -1;
	sd_done = 0;
	unary(ch, "/t.T/Hold", 0, 1);
	/* Wait for the server to have the call, then shut down. */
	for (int i = 0; i < 40 && !srv_call; i++) {
		struct event *e = after(25, (void (*)(evutil_socket_t, short, void *))stop, NULL);
		run(2000);
		event_free(e);
	}
	CHECK(srv_call != NULL, "server never saw the call");
	rpc_server_shutdown(s, 5000, sd_stopped, NULL);
	struct rpc_channel *ch2 = channel(port, NULL);
	struct rpc_call_opts co = {.timeout_ms = 2000};
	struct rpc_call *c2 = rpc_call_start(ch2, "/t.T/Echo", &sd_second_cbs, NULL, &co);
	rpc_call_close_send(c2);
	struct event *e = after(300, sd_finish, NULL);
	cli_msgs = 0;
	run(5000);
	event_free(e);
	CHECK(cli_status == GRPC_STATUS_OK, "in-flight call ended %d %s", cli_status, cli_msg);
	CHECK(cli_msgs == 1, "in-flight call got %d messages", cli_msgs);
	for (int i = 0; i < 40 && (!sd_done || sd_second_status < 0); i++) {
		struct event *e2 = after(50, (void (*)(evutil_socket_t, short, void *))stop, NULL);
		run(2000);
		event_free(e2);
	}
	CHECK(sd_done, "shutdown never completed");
	CHECK(sd_second_status == GRPC_STATUS_UNAVAILABLE, "new call after GOAWAY: %d",
	      sd_second_status);
	rpc_channel_del(ch);
	rpc_channel_del(ch2);
	rpc_server_del(s);
}

/* Keepalive: a listener that accepts and never speaks. */
static void keepalive(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		perror("listen");
		exit(1);
	}
	struct rpc_opts o = {.keepalive_ms = 200, .keepalive_timeout_ms = 300};
	struct rpc_channel *ch = channel(ntohs(a.sin_port), &o);
	struct rpc_call_opts co = {.wait_for_ready = 0};
	cli_status = -1;
	struct rpc_call *c = rpc_call_start(ch, "/t.T/Hold", &cli_cbs, (void *)1, &co);
	rpc_call_close_send(c);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAVAILABLE, "status %d", cli_status);
	CHECK(strstr(cli_msg, "keepalive") != NULL, "message '%s'", cli_msg);
	rpc_channel_del(ch);
	close(fd);
}

/* Handshake: a client that connects and never speaks is dropped, so idle
 * sockets cannot hold max_conns against everyone else. */
static void handshake(void)
{
	struct rpc_opts o = {.handshake_timeout_ms = 300, .max_conns = 1};
	int port;
	struct rpc_server *s = server(&o, &port);
	int fd = raw_connect(s, port);
	CHECK(rpc_server_conn_count(s) == 1, "silent client not accepted");
	for (int i = 0; i < 80 && rpc_server_conn_count(s) == 1; i++) {
		struct event *e = after(25, (void (*)(evutil_socket_t, short, void *))stop, NULL);
		run(2000);
		event_free(e);
	}
	CHECK(rpc_server_conn_count(s) == 0, "silent client still holds the only slot");
	char b[16];
	CHECK(read(fd, b, sizeof b) >= 0, "socket not closed cleanly");
	close(fd);
	/* The slot is free for a client that speaks. */
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	cli_msgs = 0;
	unary(ch, "/t.T/Echo", 2000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_OK && cli_msgs == 1, "after the drop: %d %s", cli_status,
	      cli_msg);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

/* Metadata: many custom keys, ASCII and -bin, both ways, in headers and
 * trailers; nothing is dropped however many there are (within the
 * header-list limit). */
enum { MD_N = 120 };

static int md_start(struct rpc_call *call, void *arg)
{
	const struct meta *md = rpc_call_recv_metadata(call);
	for (size_t i = 0; i < md->n; i++) {
		const struct meta_kv *kv = &md->v[i];
		if (strncmp(kv->key, "x-md-", 5) != 0)
			continue;
		rpc_call_add_metadata(call, kv->key, kv->val, kv->vallen);
		rpc_call_add_trailer(call, kv->key, kv->val, kv->vallen);
	}
	return 0;
}
static const struct rpc_call_cbs md_cbs = {.on_start = md_start, .on_message = echo_msg};

static int md_count(const struct meta *m)
{
	int n = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct meta_kv *kv = &m->v[i];
		if (strncmp(kv->key, "x-md-", 5) != 0)
			continue;
		/* Values come back exactly: "v<i>" or four bytes with a NUL. */
		int k = atoi(kv->key + 5);
		if (strstr(kv->key, "-bin"))
			n += kv->vallen == 4 && kv->val[0] == 0 && kv->val[3] == (uint8_t)k;
		else
			n += kv->vallen > 1 && atoi((const char *)kv->val + 1) == k;
	}
	return n;
}

static int md_headers_seen, md_trailers_seen;
static void md_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	cli_status = status;
	snprintf(cli_msg, sizeof cli_msg, "%s", m);
	md_headers_seen = md_count(rpc_call_recv_metadata(call));
	md_trailers_seen = md_count(rpc_call_recv_trailers(call));
	stop();
}
static const struct rpc_call_cbs md_cli_cbs = {.on_done = md_done};

static void metadata(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Md", &md_cbs, NULL);
	struct rpc_channel *ch = channel(port, NULL);
	struct meta md;
	meta_init(&md);
	for (int i = 0; i < MD_N; i++) {
		char k[32], v[16];
		if (i % 2) {
			snprintf(k, sizeof k, "x-md-%d-bin", i);
			uint8_t b[4] = {0, 1, 2, (uint8_t)i};
			meta_add(&md, k, strlen(k), b, sizeof b);
		} else {
			snprintf(k, sizeof k, "x-md-%d", i);
			snprintf(v, sizeof v, "v%d", i);
			meta_add(&md, k, strlen(k), v, strlen(v));
		}
	}
	struct rpc_call_opts co = {.timeout_ms = 3000, .metadata = &md};
	cli_status = -1;
	struct rpc_call *c = rpc_call_start(ch, "/t.T/Md", &md_cli_cbs, NULL, &co);
	rpc_call_send(c, "x", 1, 0);
	rpc_call_close_send(c);
	run(5000);
	meta_free(&md);
	CHECK(cli_status == GRPC_STATUS_OK, "status %d %s", cli_status, cli_msg);
	CHECK(md_headers_seen == MD_N, "%d of %d keys came back in headers", md_headers_seen,
	      MD_N);
	CHECK(md_trailers_seen == MD_N, "%d of %d keys came back in trailers", md_trailers_seen,
	      MD_N);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

/* Reconnect: down → fail fast; up → the channel connects by itself. */
static int rc_ready;
static void rc_state(struct rpc_channel *ch, enum rpc_channel_state st, void *arg)
{
	if (st == RPC_CH_READY) {
		rc_ready = 1;
		stop();
	}
}

static void reconnect(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_del(s); /* the port is free now, nobody listens */
	struct rpc_opts o = {.backoff_initial_ms = 50, .backoff_max_ms = 200};
	struct rpc_channel *ch = channel(port, &o);
	unary(ch, "/t.T/Echo", 2000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAVAILABLE, "status while down %d", cli_status);
	CHECK(strstr(cli_msg, "cannot reach") != NULL, "message '%s'", cli_msg);
	/* In backoff: a new call fails at once, without waiting. */
	unary(ch, "/t.T/Echo", 2000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAVAILABLE, "fail-fast status %d", cli_status);
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	s = rpc_server_new(base, NULL, NULL);
	CHECK(rpc_server_listen(s, addr) == port, "port %d taken", port);
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);
	rc_ready = 0;
	rpc_channel_set_state_cb(ch, rc_state, NULL);
	run(5000);
	CHECK(rc_ready, "never reconnected");
	rpc_channel_set_state_cb(ch, NULL, NULL);
	cli_msgs = 0;
	unary(ch, "/t.T/Echo", 2000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_OK && cli_msgs == 1, "after reconnect %d %s", cli_status,
	      cli_msg);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

static void mtls(void)
{
	const char *d = getenv("CERTS");
	if (!d) {
		fprintf(stderr, "mtls: CERTS not set\n");
		failures++;
		return;
	}
	char ca[256], cert[256], key[256], ccert[256], ckey[256];
	snprintf(ca, sizeof ca, "%s/ca.pem", d);
	snprintf(cert, sizeof cert, "%s/server.pem", d);
	snprintf(key, sizeof key, "%s/server.key", d);
	snprintf(ccert, sizeof ccert, "%s/client.pem", d);
	snprintf(ckey, sizeof ckey, "%s/client.key", d);
	struct rpc_tls_opts st = {.cert_file = cert, .key_file = key, .ca_file = ca};
	struct rpc_opts so = {.tls = &st};
	int port;
	struct rpc_server *s = server(&so, &port);
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);

	struct rpc_tls_opts anon = {.ca_file = ca, .server_name = "localhost"};
	struct rpc_opts ao = {.tls = &anon};
	struct rpc_channel *ch = channel(port, &ao);
	unary(ch, "/t.T/Echo", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAVAILABLE, "no client cert: status %d", cli_status);
	rpc_channel_del(ch);

	struct rpc_tls_opts mine = {
		.ca_file = ca, .cert_file = ccert, .key_file = ckey, .server_name = "localhost"};
	struct rpc_opts mo = {.tls = &mine};
	ch = channel(port, &mo);
	cli_msgs = 0;
	unary(ch, "/t.T/Echo", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_OK && cli_msgs == 1, "with client cert: %d %s", cli_status,
	      cli_msg);
	rpc_channel_del(ch);

	/* The server is verified too: a wrong name is refused. */
	struct rpc_tls_opts wrong = {.ca_file = ca, .cert_file = ccert, .key_file = ckey,
				     .server_name = "not-the-server.example"};
	struct rpc_opts wo = {.tls = &wrong};
	ch = channel(port, &wo);
	unary(ch, "/t.T/Echo", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAVAILABLE, "wrong server name: status %d", cli_status);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

static int echo_seen;

static int counting_echo_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	echo_seen++;
	return echo_msg(call, msg, len, arg);
}
static const struct rpc_call_cbs counting_echo_cbs = {.on_message = counting_echo_msg};

/* Lets a call in when its metadata has x-key: open-sesame. */
static int key_check(const struct rpc_call *call, char *msg, size_t msglen, void *arg)
{
	(*(int *)arg)++;
	const struct meta_kv *kv = meta_get(rpc_call_recv_metadata(call), "x-key");
	if (kv && kv->vallen == 11 && memcmp(kv->val, "open-sesame", 11) == 0)
		return 0;
	snprintf(msg, msglen, "no key for %s", rpc_call_path(call));
	return GRPC_STATUS_UNAUTHENTICATED;
}

static void authorize(void)
{
	int asked = 0;
	struct rpc_opts so = {.authorize = key_check, .authorize_arg = &asked};
	int port;
	struct rpc_server *s = server(&so, &port);
	rpc_server_add_method(s, "/t.T/Echo", &counting_echo_cbs, NULL);
	struct meta md;
	meta_init(&md);
	meta_add(&md, "x-key", 5, "open-sesame", 11);
	struct rpc_opts ko = {.default_md = &md};
	struct rpc_channel *keyed = channel(port, &ko);
	meta_free(&md); /* the channel keeps a copy */
	struct rpc_channel *bare = channel(port, NULL);
	echo_seen = 0;

	cli_msgs = 0;
	unary(keyed, "/t.T/Echo", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_OK && cli_msgs == 1, "default metadata: %d %s",
	      cli_status, cli_msg);
	unary(bare, "/t.T/Echo", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAUTHENTICATED && !strcmp(cli_msg, "no key for /t.T/Echo"),
	      "no metadata: %d %s", cli_status, cli_msg);
	/* Refused before the method lookup: an unknown method says nothing. */
	unary(bare, "/t.T/Nope", 3000, 1);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAUTHENTICATED, "unknown method: %d", cli_status);
	/* A call's own value replaces the channel's. */
	struct meta own;
	meta_init(&own);
	meta_add(&own, "x-key", 5, "wrong", 5);
	struct rpc_call_opts co = {.timeout_ms = 3000, .metadata = &own};
	struct rpc_call *c = rpc_call_start(keyed, "/t.T/Echo", &cli_cbs, (void *)1, &co);
	meta_free(&own);
	rpc_call_send(c, "hi", 2, 0);
	rpc_call_close_send(c);
	run(5000);
	CHECK(cli_status == GRPC_STATUS_UNAUTHENTICATED, "call's own metadata: %d", cli_status);
	CHECK(asked == 4, "authorize asked %d times", asked);
	CHECK(echo_seen == 1, "handler saw %d calls", echo_seen);
	rpc_channel_del(keyed);
	rpc_channel_del(bare);
	rpc_server_del(s);
}

/* ---- big messages and split reads -------------------------------------- */

enum { BIG_LEN = 3u << 20 };
static uint8_t *big;
static int big_ok;

static void big_fill(void)
{
	big = malloc(BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
}

static int big_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	big_ok = len == BIG_LEN && memcmp(msg, big, len) == 0;
	return 0;
}
static const struct rpc_call_cbs big_cbs = {.on_message = big_message, .on_done = cli_done};

/* One echo of the big message on a fresh server and channel. */
static void big_echo(const struct rpc_opts *so, const struct rpc_opts *co, const char *what)
{
	int port;
	struct rpc_server *s = server(so, &port);
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);
	struct rpc_channel *ch = channel(port, co);
	struct rpc_call_opts o = {.timeout_ms = 20000};
	cli_status = -1;
	big_ok = 0;
	struct rpc_call *c = rpc_call_start(ch, "/t.T/Echo", &big_cbs, (void *)1, &o);
	rpc_call_send(c, big, BIG_LEN, RPC_SEND_NOCOMPRESS);
	rpc_call_close_send(c);
	run(25000);
	CHECK(cli_status == GRPC_STATUS_OK, "%s: status %d %s", what, cli_status, cli_msg);
	CHECK(big_ok, "%s: the echo differs from the message", what);
	rpc_channel_del(ch);
	rpc_server_del(s);
}

static void bigmsg(void)
{
	big_fill();
	big_echo(NULL, NULL, "plaintext");
	struct rpc_opts so, co;
	if (tls_pair(&so, &co) == 0)
		big_echo(&so, &co, "TLS");
	free(big);
}

/* split: an nghttp2 client session in the test writes the request bytes,
 * the socket gets them one at a time, and one loop pass per byte lets the
 * server read each on its own. */
struct split {
	uint8_t req[64];
	size_t req_len, req_off;
	uint8_t resp[256];
	size_t resp_len;
	int grpc_status;
	int closed;
};

static ssize_t split_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
			  uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct split *sp = ud;
	size_t n = sp->req_len - sp->req_off;
	if (n > len)
		n = len;
	memcpy(buf, sp->req + sp->req_off, n);
	sp->req_off += n;
	if (sp->req_off == sp->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int split_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
		      size_t len, void *ud)
{
	struct split *sp = ud;
	if (sp->resp_len + len <= sizeof sp->resp) {
		memcpy(sp->resp + sp->resp_len, data, len);
		sp->resp_len += len;
	}
	return 0;
}

static int split_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
			size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			void *ud)
{
	struct split *sp = ud;
	if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
		sp->grpc_status = atoi((const char *)value);
	return 0;
}

static int split_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
	((struct split *)ud)->closed = 1;
	return 0;
}

#define NV(n, v)                                                                                   \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE \
	}

static void split(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, "/t.T/Echo", &echo_cbs, NULL);
	struct split sp = {.grpc_status = -1};
	static const char msg[] = "split across reads";
	sp.req_len = 5 + sizeof msg - 1;
	sp.req[4] = (uint8_t)(sizeof msg - 1);
	memcpy(sp.req + 5, msg, sizeof msg - 1);

	nghttp2_session_callbacks *cbs;
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, split_data);
	nghttp2_session_callbacks_set_on_header_callback(cbs, split_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, split_close);
	nghttp2_session *ng;
	nghttp2_session_client_new(&ng, cbs, &sp);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, NULL, 0);
	const nghttp2_nv nv[] = {
	    NV(":method", "POST"),	       NV(":scheme", "http"),
	    NV(":path", "/t.T/Echo"),	       NV(":authority", "localhost"),
	    NV("content-type", "application/grpc"), NV("te", "trailers"),
	};
	nghttp2_data_provider dp = {.read_callback = split_read};
	nghttp2_submit_request(ng, NULL, nv, sizeof nv / sizeof nv[0], &dp, NULL);

	int fd = raw_connect(s, port);
	CHECK(rpc_server_conn_count(s) == 1, "connection not accepted");
	/* Without Nagle every byte is a segment of its own. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	const uint8_t *out;
	ssize_t n;
	size_t sent = 0;
	while ((n = nghttp2_session_mem_send(ng, &out)) > 0) {
		for (ssize_t i = 0; i < n; i++, sent++) {
			CHECK(send(fd, out + i, 1, 0) == 1, "send byte %zu", sent);
			event_base_loop(base, EVLOOP_NONBLOCK);
		}
	}
	/* The answer: whatever the server writes, until the stream closes. */
	uint8_t buf[4096];
	for (int i = 0; i < 400 && !sp.closed; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
			nghttp2_session_mem_recv(ng, buf, (size_t)n);
		if (!sp.closed) {
			run_for(5);
		}
	}
	CHECK(sent > 100, "only %zu request bytes", sent);
	CHECK(sp.closed && sp.grpc_status == GRPC_STATUS_OK, "closed %d grpc-status %d", sp.closed,
	      sp.grpc_status);
	CHECK(sp.resp_len == sp.req_len && memcmp(sp.resp, sp.req, sp.req_len) == 0,
	      "echo of %zu bytes, want %zu", sp.resp_len, sp.req_len);
	nghttp2_session_del(ng);
	close(fd);
	rpc_server_del(s);
}

/* Reuse: ended calls are kept for reuse on both sides. RU_RICH calls
 * that use everything (metadata both ways, trailers, gzip both ways, a
 * deadline, an error status with a message, call data), then RU_PLAIN
 * calls that use nothing, one at a time: more calls than a pool holds, so
 * the plain ones run on objects that had rich lives (in sanitizer builds
 * too, where a pool hands a call out again only once it is full). A
 * plain call is held past the rich calls' deadline: a timer left over
 * from an earlier life would end it. */
enum { RU_RICH = 146, RU_PLAIN = 4, RU_DEADLINE_MS = 250, RU_HOLD_MS = 350 };
/* Longer than what a call keeps without an allocation, path and message. */
#define RU_RICH_PATH "/t.T/RichWithAPathLongerThanTheSixtyFourBytesThatACallKeepsInItself"
#define RU_RICH_MSG "rich 100% failed, with a message longer than a call keeps inline"
#define RU_PLAIN_PATH "/t.T/Plain"
static struct rpc_channel *ru_ch;
static int ru_started, ru_ended, ru_msgs, ru_last_compressed;
static struct rpc_call *ru_held;
static struct event *ru_hold_ev;

static int is_rich(const struct rpc_call *call)
{
	return strcmp(rpc_call_path(call), RU_RICH_PATH) == 0;
}

static int custom_keys(const struct meta *m)
{
	int n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += strncmp(m->v[i].key, "x-", 2) == 0;
	return n;
}

static int ru_start(struct rpc_call *call, void *arg)
{
	const struct meta *md = rpc_call_recv_metadata(call);
	int64_t left = rpc_call_remaining_ms(call);
	CHECK(rpc_call_data(call) == NULL, "server call starts with data");
	if (!is_rich(call)) {
		CHECK(strcmp(rpc_call_path(call), RU_PLAIN_PATH) == 0, "plain call's path %s",
		      rpc_call_path(call));
		CHECK(custom_keys(md) == 0, "plain call has %d custom keys", custom_keys(md));
		CHECK(left == -1, "plain call has a deadline (%lld ms)", (long long)left);
		return 0;
	}
	const struct meta_kv *kv = meta_get(md, "x-a");
	CHECK(kv && kv->vallen == 1 && kv->val[0] == '1' && custom_keys(md) == 1,
	      "rich call's metadata");
	CHECK(left > 0 && left <= RU_DEADLINE_MS, "rich call's deadline %lld", (long long)left);
	rpc_call_set_data(call, call);
	rpc_call_add_metadata(call, "x-h", "h", 1);
	rpc_call_add_trailer(call, "x-t", "t", 1);
	rpc_call_set_compress(call, 1);
	return 0;
}

static void ru_answer(evutil_socket_t fd, short what, void *arg)
{
	if (!ru_held)
		return;
	rpc_call_send(ru_held, "plain", 5, 0);
	rpc_call_finish(ru_held, GRPC_STATUS_OK, NULL);
}

static int ru_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	int rich = is_rich(call);
	CHECK(rpc_call_last_compressed(call) == rich, "server got compressed=%d, rich=%d",
	      rpc_call_last_compressed(call), rich);
	if (rich) {
		rpc_call_send(call, msg, len, 0);
		rpc_call_finish(call, GRPC_STATUS_INVALID_ARGUMENT, RU_RICH_MSG);
		return 0;
	}
	ru_held = call;
	struct timeval tv = {0, RU_HOLD_MS * 1000};
	evtimer_add(ru_hold_ev, &tv);
	return 0;
}

static void ru_srv_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	if (call != ru_held)
		return;
	ru_held = NULL;
	CHECK(status == GRPC_STATUS_OK, "held plain call ended %d %s on the server", status, m);
}
static const struct rpc_call_cbs ru_cbs = {
	.on_start = ru_start, .on_message = ru_message, .on_done = ru_srv_done};

static void ru_next(void);

static int ru_cli_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	ru_msgs++;
	ru_last_compressed = rpc_call_last_compressed(call);
	return 0;
}

static void ru_cli_done(struct rpc_call *call, int status, const char *m, void *arg)
{
	const struct meta *h = rpc_call_recv_metadata(call), *t = rpc_call_recv_trailers(call);
	if (arg) {
		CHECK(status == GRPC_STATUS_INVALID_ARGUMENT && !strcmp(m, RU_RICH_MSG),
		      "rich call ended %d %s", status, m);
		CHECK(meta_get(h, "x-h") && meta_get(t, "x-t"), "rich call's metadata lost");
		CHECK(ru_msgs == 1 && ru_last_compressed, "rich call got %d messages", ru_msgs);
	} else {
		CHECK(status == GRPC_STATUS_OK && !*m, "plain call ended %d '%s'", status, m);
		CHECK(custom_keys(h) == 0 && custom_keys(t) == 0,
		      "plain call got %d custom headers, %d trailers", custom_keys(h),
		      custom_keys(t));
		CHECK(ru_msgs == 1 && !ru_last_compressed, "plain call got %d messages (gzip %d)",
		      ru_msgs, ru_last_compressed);
	}
	if (++ru_ended == RU_RICH + RU_PLAIN)
		stop();
	else
		ru_next();
}
static const struct rpc_call_cbs ru_cli_cbs = {.on_message = ru_cli_message,
					       .on_done = ru_cli_done};

static void ru_next(void)
{
	int rich = ru_started++ < RU_RICH;
	struct meta md;
	meta_init(&md);
	meta_add(&md, "x-a", 3, "1", 1);
	struct rpc_call_opts co = {.timeout_ms = rich ? RU_DEADLINE_MS : 0,
				   .metadata = rich ? &md : NULL,
				   .compress = rich};
	ru_msgs = ru_last_compressed = 0;
	struct rpc_call *c = rpc_call_start(ru_ch, rich ? RU_RICH_PATH : RU_PLAIN_PATH, &ru_cli_cbs,
					    rich ? (void *)1 : NULL, &co);
	meta_free(&md);
	CHECK(rpc_call_data(c) == NULL, "client call starts with data");
	CHECK(rich || rpc_call_remaining_ms(c) == -1, "plain client call has a deadline");
	if (rich)
		rpc_call_set_data(c, c);
	rpc_call_send(c, "x", 1, 0);
	rpc_call_close_send(c);
}

static void reuse(void)
{
	int port;
	struct rpc_server *s = server(NULL, &port);
	rpc_server_add_method(s, RU_RICH_PATH, &ru_cbs, NULL);
	rpc_server_add_method(s, RU_PLAIN_PATH, &ru_cbs, NULL);
	ru_ch = channel(port, NULL);
	ru_hold_ev = evtimer_new(base, ru_answer, NULL);
	ru_started = ru_ended = 0;
	ru_next();
	run(30000);
	CHECK(ru_ended == RU_RICH + RU_PLAIN, "%d of %d calls ended", ru_ended,
	      RU_RICH + RU_PLAIN);
	event_free(ru_hold_ev);
	rpc_channel_del(ru_ch);
	rpc_server_del(s);
}

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{"deadline", deadline},	      {"cancel", cancel},	{"backpressure", backpressure},
	{"shutdown", shutdown_},      {"keepalive", keepalive}, {"handshake", handshake},
	{"reconnect", reconnect},     {"metadata", metadata},
	{"mtls", mtls},		      {"authorize", authorize}, {"bigmsg", bigmsg},
	{"split", split},	      {"reuse", reuse},		{"pauseend", pauseend},
	{"pausegoaway", pausegoaway},
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_OFF);
	base = event_base_new();
	int ran = 0;
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
		int want = argc < 2;
		for (int k = 1; k < argc; k++)
			want |= strcmp(argv[k], scenarios[i].name) == 0;
		if (!want)
			continue;
		scenario = scenarios[i].name;
		int before = failures;
		scenarios[i].fn();
		printf("%s %s\n", failures == before ? "PASS" : "FAIL", scenario);
		fflush(stdout);
		ran++;
	}
	event_base_free(base);
	if (!ran) {
		fprintf(stderr, "rpc_test: no such scenario\n");
		return 2;
	}
	return failures ? 1 : 0;
}
