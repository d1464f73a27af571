/*
 * fuzz_server: libFuzzer target over the server's whole input path, from
 * the socket through nghttp2 (preface, frames, HPACK, flow control) to
 * call.c (headers, framing, decompression, status) and back out.
 *
 * Each input is the byte stream a client sends on one h2c connection, so
 * corpus files are plain wire captures (tests/fuzz/gen_corpus.py writes
 * the seeds). Per input: a fresh event base and rpc_server with a few
 * methods that use most of the call API, one end of a socketpair adopted
 * by the server, the input written to the other end in chunks whose sizes
 * derive from the input itself (so splits are reproducible), the loop run
 * without blocking until the server goes quiet, its output read and
 * dropped; then, for some inputs, a graceful shutdown; then our end
 * half-closed and closed, and everything freed, so LeakSanitizer sees each
 * input on its own.
 *
 * Build and run: make fuzz FUZZ_SECONDS=N; corpus replay: make fuzz-regress.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "rpc.h"
#include "status.h"
#include "xalloc.h"

enum kind { K_ECHO, K_STREAM, K_FAIL, K_PAUSE, K_CANCEL };

static const struct {
	const char *path;
	enum kind kind;
} methods[] = {
    {"/fuzz.Fuzz/Echo", K_ECHO},   {"/fuzz.Fuzz/Stream", K_STREAM}, {"/fuzz.Fuzz/Fail", K_FAIL},
    {"/fuzz.Fuzz/Pause", K_PAUSE}, {"/fuzz.Fuzz/Cancel", K_CANCEL},
};

/* Small limits, so that short inputs reach them: refused streams, too
 * large messages, a send queue at its high-water mark. */
static const struct rpc_opts opts = {
    .max_recv_msg = 64u << 10,
    .max_send_msg = 64u << 10,
    .max_streams = 8,
    .max_conns = 2,
    .send_high_water = 2048,
};

static struct event_base *base;

/* Per-call state of the handlers. */
struct fcall {
	enum kind kind;
	struct event *resume;
};

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	rpc_call_pause_recv(arg, 0);
}

/* Pauses delivery and resumes it from the next loop turn. */
static void pause_once(struct rpc_call *call, struct fcall *f)
{
	rpc_call_pause_recv(call, 1);
	if (!f->resume)
		f->resume = evtimer_new(base, resume_cb, call);
	event_active(f->resume, EV_TIMEOUT, 0);
}

static int on_start(struct rpc_call *call, void *arg)
{
	struct fcall *f = xcalloc(1, sizeof *f);
	f->kind = (enum kind)(intptr_t)arg;
	rpc_call_set_data(call, f);
	const struct meta *md = rpc_call_recv_metadata(call);
	const struct meta_kv *kv = meta_get(md, "x-echo");
	if (kv)
		rpc_call_add_metadata(call, kv->key, kv->val, kv->vallen);
	kv = meta_get(md, "x-echo-bin");
	if (kv)
		rpc_call_add_trailer(call, kv->key, kv->val, kv->vallen);
	if (meta_get(md, "x-compress"))
		rpc_call_set_compress(call, 1);
	(void)rpc_call_remaining_ms(call);
	(void)rpc_call_peer(call);
	switch (f->kind) {
	case K_FAIL:
		return GRPC_STATUS_NOT_FOUND;
	case K_PAUSE:
		pause_once(call, f);
		break;
	default:
		break;
	}
	return 0;
}

static int on_message(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct fcall *f = rpc_call_data(call);
	switch (f->kind) {
	case K_ECHO:
		rpc_call_send(call, msg, len,
		              rpc_call_last_compressed(call) ? RPC_SEND_COMPRESS : 0);
		return 0;
	case K_STREAM: {
		/* First byte: how many copies; 0xff in the second: a verdict. */
		int n = len ? msg[0] % 5 : 1;
		if (len > 1 && msg[1] == 0xff)
			return GRPC_STATUS_INVALID_ARGUMENT;
		for (int i = 0; i < n; i++)
			if (rpc_call_send(call, msg, len, i & 1 ? RPC_SEND_NOCOMPRESS : 0) !=
			    RPC_SEND_OK)
				break;
		if (len > 1 && msg[1] == 0xfe)
			rpc_call_finish(call, GRPC_STATUS_ABORTED, "handler ends early");
		return 0;
	}
	case K_PAUSE:
		rpc_call_send(call, msg, len, 0);
		if (len && (msg[0] & 1))
			pause_once(call, f);
		return 0;
	case K_CANCEL:
		rpc_call_cancel(call);
		return 0;
	case K_FAIL:
		break;
	}
	return 0;
}

static void on_half_close(struct rpc_call *call, void *arg)
{
	rpc_call_add_trailer(call, "x-trailer", "t", 1);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}

static void on_writable(struct rpc_call *call, void *arg)
{
	rpc_call_send(call, "w", 1, 0);
}

static void on_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct fcall *f = rpc_call_data(call);
	if (!f)
		return;
	if (f->resume)
		event_free(f->resume);
	free(f);
}

static const struct rpc_call_cbs cbs = {
    .on_start = on_start,
    .on_message = on_message,
    .on_half_close = on_half_close,
    .on_writable = on_writable,
    .on_done = on_done,
};

/* Reads and drops what the server wrote; returns the byte count. */
static size_t drain(int fd)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += (size_t)n;
	return total;
}

/* Runs the loop without blocking until two passes in a row bring no
 * output (bounded: a server that keeps writing is cut off). */
static void settle(int fd)
{
	int quiet = 0;
	for (int i = 0; i < 64 && quiet < 2; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		quiet = drain(fd) ? 0 : quiet + 1;
	}
}

static void shutdown_done(void *arg)
{
	*(int *)arg = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_OFF);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	base = event_base_new();
	struct rpc_server *srv = rpc_server_new(base, &opts, NULL);
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		rpc_server_add_method(srv, methods[i].path, &cbs,
		                      (void *)(intptr_t)methods[i].kind);
	rpc_server_adopt(srv, sv[0], "fuzz:1");

	/* Chunk sizes from a generator seeded with the input: the same input
	 * is always split the same way. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	size_t off = 0;
	int stuck = 0;
	while (off < size && stuck < 64) {
		h ^= h << 13;
		h ^= h >> 17;
		h ^= h << 5;
		size_t n = h % 4 == 0 ? size - off : 1 + h % (size - off < 512 ? size - off : 512);
		ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			break; /* the server closed the connection */
		stuck = w > 0 ? 0 : stuck + 1;
		if (w > 0)
			off += (size_t)w;
		settle(sv[1]);
	}
	/* Some inputs end with a graceful shutdown (GOAWAY, then a grace
	 * period that is over at once or outlasts the connection). */
	int stopped = 0;
	if (h & 0x100) {
		rpc_server_shutdown(srv, h & 0x200 ? 0 : 60000, shutdown_done, &stopped);
		settle(sv[1]);
	}
	/* The client half-closes, then goes away. */
	shutdown(sv[1], SHUT_WR);
	settle(sv[1]);
	close(sv[1]);
	settle(-1);
	if (h & 0x100 && !stopped && rpc_server_conn_count(srv) == 0)
		abort(); /* every connection closed, yet shutdown never finished */

	rpc_server_del(srv);
	event_base_free(base);
	base = NULL;
	return 0;
}
