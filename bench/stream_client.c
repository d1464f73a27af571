/*
 * stream_client: reads one bench.v1.Echo/Stream call on a lib/rpc channel
 * and reports how fast the messages came, for bench/transport.sh. The same
 * client loads every server, so only the server differs between runs.
 *
 *   stream_client --target HOST:PORT [--count N] [--size BYTES] [--timeout S]
 *
 * Prints "MSGS n SECONDS s RATE msgs_per_s" and exits 0 when the call
 * ended with OK after exactly count messages of the asked size; otherwise
 * prints why on stderr and exits 1. The first message is decoded in full;
 * the others are checked by length, which keeps the client cheap enough
 * that the server, not the client, sets the pace.
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

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "stream_client: no end within the time limit (%ld messages)\n", got);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	int timeout_s = 60;
	static const struct option longopts[] = {
	    {"target", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'n'},
	    {"size", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 'T'},
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
		default:
			target = NULL;
			optind = argc;
			break;
		}
	}
	if (!target || count < 1 || size < 0) {
		fprintf(stderr, "usage: stream_client --target HOST:PORT [--count N] "
		                "[--size BYTES] [--timeout S]\n");
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

	struct rpc_call_opts copts = {.wait_for_ready = 1};
	t_start = now();
	struct rpc_call *call = rpc_call_start(ch, "/bench.v1.Echo/Stream", &cbs, NULL, &copts);
	Bench__V1__StreamReq req = BENCH__V1__STREAM_REQ__INIT;
	req.count = (int32_t)count;
	req.size = (int32_t)size;
	pb_send(call, &req.base, 0);
	rpc_call_close_send(call);
	event_base_dispatch(base);

	event_free(to);
	rpc_channel_del(ch);
	event_base_free(base);
	if (final_status != GRPC_STATUS_OK || got != count || bad) {
		fprintf(stderr, "stream_client: status %d (%s), %ld of %ld messages, %ld bad\n",
		        final_status, final_msg, got, count, bad);
		return 1;
	}
	double secs = t_end - t_start;
	printf("MSGS %ld SECONDS %.3f RATE %.0f\n", got, secs, (double)got / secs);
	return 0;
}
