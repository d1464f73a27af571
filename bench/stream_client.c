/*
 * stream_client: reads one bench.v1.Echo/Stream call on a lib/rpc channel
 * and reports how fast the messages came, for bench/transport.sh. The same
 * client loads every server, so only the server differs between runs.
 *
 *   stream_client --target HOST:PORT [--count N] [--size BYTES] [--timeout S]
 *   stream_client --target HOST:PORT --unary N [--inflight C] [--timeout S]
 *
 * Prints "MSGS n SECONDS s RATE msgs_per_s" and exits 0 when the call
 * ended with OK after exactly count messages of the asked size; otherwise
 * prints why on stderr and exits 1. The first message is decoded in full;
 * the others are checked by length, which keeps the client cheap enough
 * that the server, not the client, sets the pace.
 *
 * With --unary it makes N Echo calls instead, C (default 64) in flight, a
 * new one as each ends, and prints "CALLS n SECONDS s RATE calls_per_s";
 * every call must end OK with its 64-byte payload echoed. This is the
 * client side of a unary call, counted by bench/instructions.sh.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "bench/v1/echo.pb-c.h"
#include "error.h"
#include "log.h"
#include "pb.h"
#include "rpc.h"

static struct event_base *base;
static long count = 200000, size = 64;
static long got, bad;
static size_t want_len;
static int final_status = -1;
static char final_msg[256];
static double t_start, t_end;
static long unary_left, unary_done, unary_bad;
static struct rpc_channel *chan;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	if (got++ == 0) {
		Bench__V1__EchoMsg *m = bench__v1__echo_msg__unpack(NULL, len, msg);
		if (!m || m->data.len != (size_t)size)
			bad++;
		if (m)
			bench__v1__echo_msg__free_unpacked(m, NULL);
		want_len = len;
	} else if (len != want_len) {
		bad++;
	}
	return 0;
}

static void on_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	t_end = now();
	final_status = status;
	snprintf(final_msg, sizeof final_msg, "%s", message);
	event_base_loopbreak(base);
}

static const struct rpc_call_cbs cbs = {
    .on_message = on_message,
    .on_done = on_done,
};

/* ---- unary mode -------------------------------------------------------- */

static const uint8_t echo_payload[64] = {0};

static int unary_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	Bench__V1__EchoMsg *m = bench__v1__echo_msg__unpack(NULL, len, msg);
	if (m && m->data.len == sizeof echo_payload)
		rpc_call_set_data(call, call); /* answered */
	if (m)
		bench__v1__echo_msg__free_unpacked(m, NULL);
	return 0;
}

static void unary_start(void);

static void unary_end(struct rpc_call *call, int status, const char *message, void *arg)
{
	if (status != GRPC_STATUS_OK || !rpc_call_data(call)) {
		if (!unary_bad++) {
			final_status = status;
			snprintf(final_msg, sizeof final_msg, "%s", message);
		}
	}
	if (++unary_done == count) {
		t_end = now();
		event_base_loopbreak(base);
		return;
	}
	if (unary_left > 0)
		unary_start();
}

static const struct rpc_call_cbs unary_cbs = {
    .on_message = unary_message,
    .on_done = unary_end,
};

static void unary_start(void)
{
	struct rpc_call_opts o = {.wait_for_ready = 1};
	Bench__V1__EchoMsg m = BENCH__V1__ECHO_MSG__INIT;
	m.data.len = sizeof echo_payload;
	m.data.data = (uint8_t *)echo_payload;
	unary_left--;
	struct rpc_call *call = rpc_call_start(chan, "/bench.v1.Echo/Echo", &unary_cbs, NULL, &o);
	pb_send(call, &m.base, 0);
	rpc_call_close_send(call);
}

/* Makes the calls; returns 0 when every one ended OK with its answer. */
static int run_unary(long inflight)
{
	unary_left = count;
	t_start = now();
	for (long i = 0; i < inflight && unary_left > 0; i++)
		unary_start();
	event_base_dispatch(base);
	if (unary_done != count || unary_bad) {
		fprintf(stderr, "stream_client: %ld of %ld calls ended, %ld bad (first: %d %s)\n",
		        unary_done, count, unary_bad, final_status, final_msg);
		return 1;
	}
	return 0;
}

/* Reads one Stream; returns 0 when it ended OK with count good messages. */
static int run_stream(void)
{
	struct rpc_call_opts copts = {.wait_for_ready = 1};
	t_start = now();
	struct rpc_call *call = rpc_call_start(chan, "/bench.v1.Echo/Stream", &cbs, NULL, &copts);
	Bench__V1__StreamReq req = BENCH__V1__STREAM_REQ__INIT;
	req.count = (int32_t)count;
	req.size = (int32_t)size;
	pb_send(call, &req.base, 0);
	rpc_call_close_send(call);
	event_base_dispatch(base);
	if (final_status != GRPC_STATUS_OK || got != count || bad) {
		fprintf(stderr, "stream_client: status %d (%s), %ld of %ld messages, %ld bad\n",
		        final_status, final_msg, got, count, bad);
		return 1;
	}
	return 0;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "stream_client: no end within the time limit (%ld messages)\n", got);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	int timeout_s = 60, unary = 0;
	long inflight = 64;
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"unary", required_argument, NULL, 'u'},
	    {"inflight", required_argument, NULL, 'i'},
	    {0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 't':
			target = optarg;
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		case 's':
			size = strtol(optarg, NULL, 10);
			break;
		case 'T':
			timeout_s = atoi(optarg);
			break;
		case 'u':
			unary = 1;
			count = strtol(optarg, NULL, 10);
			break;
		case 'i':
			inflight = strtol(optarg, NULL, 10);
			break;
		default:
			target = NULL;
			optind = argc;
			break;
		}
	}
	if (!target || count < 1 || size < 0 || inflight < 1) {
		fprintf(stderr, "usage: stream_client --target HOST:PORT [--count N] "
		                "[--size BYTES] [--timeout S]\n"
		                "       stream_client --target HOST:PORT --unary N [--inflight C] "
		                "[--timeout S]\n");
		return 2;
	}
	log_set_role("stream_client");
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	int err = 0;
	struct rpc_channel *ch = rpc_channel_new(base, target, NULL, &err);
	if (!ch) {
		fprintf(stderr, "stream_client: bad target %s: %s\n", target, err_str(err));
		return 2;
	}
	struct event *to = evtimer_new(base, timeout_cb, NULL);
	struct timeval tv = {timeout_s, 0};
	evtimer_add(to, &tv);

	chan = ch;
	int rv = unary ? run_unary(inflight) : run_stream();
	event_free(to);
	rpc_channel_del(ch);
	event_base_free(base);
	if (rv)
		return 1;
	double secs = t_end - t_start;
	printf("%s %ld SECONDS %.3f RATE %.0f\n", unary ? "CALLS" : "MSGS", count, secs,
	       (double)count / secs);
	return 0;
}
