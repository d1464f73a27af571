/*
 * conn: one HTTP/2 connection, server or client side (see rpc_int.h).
 *
 * A plaintext connection owns its socket: one recv into a stack buffer
 * feeds nghttp2_session_mem_recv, and each flush writes the output with
 * one sendmsg, waiting for writability only when the socket is full. A
 * TLS connection goes through bufferevent_openssl instead (its input
 * chains fed to nghttp2 without a copy, its output written by libevent).
 * Frames go out through one nghttp2_session_send per loop turn
 * (conn_schedule), DATA payload moved from a call's queue into the output
 * buffer without a copy (NGHTTP2_DATA_FLAG_NO_COPY). A connection is
 * never freed inside an nghttp2 callback: conn_fail marks it and the
 * flush event frees it. A session that ends gracefully lingers before its
 * socket closes (see linger).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "dlist.h"
#include "error.h"
#include "log.h"
#include "rpc_int.h"
#include <openssl/err.h>
#include "status.h"
#include "xalloc.h"

int64_t rpc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rpc_opts_fill(struct rpc_opts *d, const struct rpc_opts *s)
{
	memset(d, 0, sizeof *d);
	if (s)
		*d = *s;
	if (!d->max_recv_msg)
		d->max_recv_msg = RPC_DEFAULT_MAX_MSG;
	if (!d->max_send_msg)
		d->max_send_msg = RPC_DEFAULT_MAX_MSG;
	if (!d->max_streams)
		d->max_streams = 100;
	if (!d->max_conns)
		d->max_conns = 1024;
	if (!d->send_high_water)
		d->send_high_water = 256u << 10;
	if (!d->keepalive_timeout_ms)
		d->keepalive_timeout_ms = 20000;
	if (!d->handshake_timeout_ms)
		d->handshake_timeout_ms = 10000;
	if (!d->connect_timeout_ms)
		d->connect_timeout_ms = 5000;
	if (!d->backoff_initial_ms)
		d->backoff_initial_ms = 200;
	if (!d->backoff_max_ms)
		d->backoff_max_ms = 10000;
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct conn *c = ud;
	if (evbuffer_get_length(c->out) >= CONN_OUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	evbuffer_add(c->out, data, len);
	return (ssize_t)len;
}

static struct rpc_call *stream_call(nghttp2_session *ng, int32_t id)
{
	return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	struct rpc_call *call;
	if (!c->is_client && f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		call = call_new(server_call_pool(c->srv), c, 0, c->opts);
		call->stream_id = f->hd.stream_id;
		DLIST_PUSH(c->calls, call);
		c->ncalls++;
		nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, call);
	} else {
		call = stream_call(ng, f->hd.stream_id);
		if (call && c->is_client) {
			if (f->headers.cat == NGHTTP2_HCAT_HEADERS)
				call->in_trailers = 1;
			call->header_bytes = 0;
		}
	}
	/* A header block is never interleaved with another frame (RFC 9113
	 * section 4.3), so on_header need not look the call up per header. */
	c->hdr_call = call;
	c->hdr_stream = f->hd.stream_id;
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, nghttp2_rcbuf *name,
		     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
	struct conn *c = ud;
	struct rpc_call *call =
		f->hd.stream_id == c->hdr_stream ? c->hdr_call : stream_call(ng, f->hd.stream_id);
	if (!call || call->done)
		return 0;
	/* nghttp2 only advertises our SETTINGS_MAX_HEADER_LIST_SIZE; without
	 * this count a peer could grow a call's metadata without bound.
	 * Counted as RFC 9113 section 6.5.2 does. Past the limit the rest of
	 * the block is dropped: the server answers RESOURCE_EXHAUSTED once
	 * the block is over (call_server_headers_done), the client resets
	 * the stream (nghttp2 sends RST_STREAM INTERNAL_ERROR). */
	call->header_bytes +=
		nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len + 32;
	if (call->header_bytes > RPC_MAX_HEADER_LIST) {
		char m[64];
		snprintf(m, sizeof m, "header list larger than %u bytes", RPC_MAX_HEADER_LIST);
		call_set_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, m);
		return call->is_client ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
	}
	call_on_header(call, name, value);
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	struct rpc_call *call = f->hd.stream_id ? stream_call(ng, f->hd.stream_id) : NULL;
	int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (!call || call->done)
			break;
		if (c->is_client)
			call_client_headers_done(call, end);
		else if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
			call_server_headers_done(call);
		if (!c->is_client && end)
			call_server_half_closed(call);
		break;
	case NGHTTP2_DATA:
		/* Half-close while paused is delivered on resume, after the
		 * held messages. */
		if (call && end && !c->is_client && !call->paused)
			call_server_half_closed(call);
		break;
	case NGHTTP2_SETTINGS:
		/* The peer's first SETTINGS ends the handshake (TLS and the
		 * HTTP/2 preface): its timer stops. */
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !c->greeted) {
			c->greeted = 1;
			if (!c->ping_out)
				event_del(c->ka_to_ev);
		}
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK) {
			c->ping_out = 0;
			event_del(c->ka_to_ev);
		}
		break;
	case NGHTTP2_GOAWAY:
		c->draining = 1;
		if (c->ch)
			channel_conn_goaway(c->ch, c);
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	/* The connection window is ours to give back at once: a paused call
	 * holds only its own stream window, never the other calls'. */
	nghttp2_session_consume_connection(ng, len);
	struct rpc_call *call = stream_call(ng, id);
	if (!call || call->done) {
		nghttp2_session_consume_stream(ng, id, len);
		return 0;
	}
	call_recv_data(call, data, len);
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	/* A server that ends its side before the client did resets the
	 * stream with NO_ERROR, as PROTOCOL-HTTP2.md describes, so the
	 * client stops sending a request nobody will read. */
	if (!c->is_client && f->hd.type == NGHTTP2_HEADERS &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    !nghttp2_session_get_stream_remote_close(ng, f->hd.stream_id))
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
	struct rpc_call *call = stream_call(ng, id);
	if (!call)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	call_stream_closed(call, error_code);
	return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
	static nghttp2_session_callbacks *cbs;
	if (cbs)
		return cbs;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		abort();
	nghttp2_session_callbacks_set_send_callback(cbs, on_send);
	nghttp2_session_callbacks_set_send_data_callback(cbs, call_send_data);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	return cbs;
}

/* ---- I/O ---------------------------------------------------------------- */

/* A plaintext connection reads with recv into a stack buffer of this size,
 * straight into nghttp2: one system call per read, where a bufferevent
 * spends an ioctl(FIONREAD) and a readv. At most CONN_READS_PER_EVENT
 * full buffers per wake-up, so one busy peer cannot starve the others;
 * epoll is level-triggered and brings the rest on the next turn. */
#define CONN_READ_BUF (64u << 10)
#define CONN_READS_PER_EVENT 4
/* Buffer chains handed to one sendmsg. */
#define CONN_WRITE_IOV 64
/* How long a session that ended waits for its peer to close (linger). */
#define CONN_LINGER_MS 2000

/* A session that ended gracefully (GOAWAY exchanged, every stream done)
 * does not close its socket at once: close() with input still unread (a
 * SETTINGS ACK or WINDOW_UPDATE the peer sent meanwhile) makes the kernel
 * answer with a reset and drop what it had not sent yet, so a server that
 * shuts down right after answering would lose the answer's tail and its
 * trailers. Our side is shut instead (TLS: close_notify first), so the
 * peer reads everything, then EOF, and input is dropped until the peer
 * closes (plain_read_cb, tls_read_cb), or for CONN_LINGER_MS
 * (ka_timeout_cb). Returns whether c lingers. */
static int linger(struct conn *c)
{
	if (c->dead)
		return 0;
	if (c->lingering)
		return 1;
	c->lingering = 1;
	if (c->bev) {
		/* A close_notify that did not fit the socket must not be cut
		 * short: then the peer, whose session is over too, closes. */
		bufferevent_disable(c->bev, EV_WRITE);
		if (SSL_shutdown(c->ssl) >= 0)
			shutdown(bufferevent_getfd(c->bev), SHUT_WR);
		else
			ERR_clear_error(); /* not to be blamed on a later read */
	} else {
		shutdown(c->fd, SHUT_WR);
		event_del(c->wr_ev);
	}
	if (c->ka_ev)
		event_del(c->ka_ev);
	struct timeval tv = {CONN_LINGER_MS / 1000, (CONN_LINGER_MS % 1000) * 1000};
	event_add(c->ka_to_ev, &tv);
	return 1;
}

/* Frees c if it waits only for its output to drain and the output has
 * (or lets it linger). Returns 1 if c was freed. */
static int free_if_flushed(struct conn *c)
{
	if (!c->close_when_flushed || evbuffer_get_length(c->out) != 0 || linger(c))
		return 0;
	conn_free(c, c->dead ? c->dead_status : GRPC_STATUS_UNAVAILABLE,
		  c->dead ? c->dead_msg : "connection closed");
	return 1;
}

/* Plaintext: hands what c->out holds to the socket with one sendmsg
 * (MSG_NOSIGNAL: lib/ must not depend on the process ignoring SIGPIPE),
 * and waits for the socket to be writable only when something is left,
 * so a connection whose writes fit costs no epoll_ctl and no extra
 * wake-up. Returns 0, or -1 after failing c. */
static int write_out(struct conn *c)
{
	struct evbuffer_iovec v[CONN_WRITE_IOV];
	struct iovec iov[CONN_WRITE_IOV];
	int n = evbuffer_peek(c->out, -1, NULL, v, CONN_WRITE_IOV);
	if (n > CONN_WRITE_IOV)
		n = CONN_WRITE_IOV;
	if (n > 0) {
		for (int i = 0; i < n; i++)
			iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("conn_closed", "peer=%s reason=%s", c->peer,
				  log_quote(strerror(errno)));
			evbuffer_drain(c->out, evbuffer_get_length(c->out));
			c->close_when_flushed = 0;
			conn_fail(c, GRPC_STATUS_UNAVAILABLE, "connection error");
			return -1;
		}
		if (w > 0)
			evbuffer_drain(c->out, (size_t)w);
	}
	/* nghttp2 still wanting to write here means on_send stopped it at
	 * CONN_OUT_HIGH: go on once the socket takes more. */
	if (evbuffer_get_length(c->out) || nghttp2_session_want_write(c->ng))
		event_add(c->wr_ev, NULL);
	else
		event_del(c->wr_ev);
	return 0;
}

static void flush(struct conn *c)
{
	if (c->dead) {
		conn_free(c, c->dead_status, c->dead_msg);
		return;
	}
	int rv = nghttp2_session_send(c->ng);
	if (rv != 0) {
		conn_free(c, GRPC_STATUS_UNAVAILABLE, nghttp2_strerror(rv));
		return;
	}
	for (struct rpc_call *call = c->calls, *next; call; call = next) {
		next = call->next;
		call_after_send(call);
	}
	if (c->dead) {
		conn_free(c, c->dead_status, c->dead_msg);
		return;
	}
	/* Session over (GOAWAY exchanged, all streams done): close once the
	 * last bytes are on the wire. */
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
		c->close_when_flushed = 1;
	if (c->fd >= 0 && write_out(c) < 0)
		return;
	free_if_flushed(c);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

void conn_schedule(struct conn *c)
{
	if (c->flush_ev)
		event_active(c->flush_ev, 0, 0);
}

void conn_fail(struct conn *c, int status, const char *msg)
{
	if (c->dead)
		return;
	c->dead = 1;
	c->dead_status = status;
	c->dead_msg = xstrdup(msg ? msg : "");
	conn_schedule(c);
}

/* Hands received bytes to nghttp2. Returns 0, or -1 after a protocol
 * error, when c is failing (its GOAWAY on the way if it fits). */
static int feed(struct conn *c, const uint8_t *data, size_t len)
{
	ssize_t rv = nghttp2_session_mem_recv(c->ng, data, len);
	if (rv >= 0)
		return 0;
	log_debug("h2_recv_error", "peer=%s error=%s", c->peer,
		  log_quote(nghttp2_strerror((int)rv)));
	if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
		/* Not HTTP/2 at all: a GOAWAY tells a confused HTTP/2 peer
		 * why; then close. */
		nghttp2_session_terminate_session(c->ng, NGHTTP2_PROTOCOL_ERROR);
	else
		nghttp2_session_terminate_session(c->ng, NGHTTP2_INTERNAL_ERROR);
	nghttp2_session_send(c->ng);
	c->close_when_flushed = 1;
	if (c->fd >= 0)
		write_out(c);
	conn_fail(c, GRPC_STATUS_UNAVAILABLE, "protocol error");
	return -1;
}

/* The peer closed or the socket failed (e: an OpenSSL error, or 0). */
static void lost(struct conn *c, int eof, unsigned long e)
{
	const char *why = eof ? "connection closed by peer" : "connection error";
	char buf[160];
	if (e)
		why = tls_error_string(e, buf, sizeof buf);
	/* A TLS failure (a peer without a valid certificate, plaintext on a
	 * TLS port) is worth an operator's attention; a plain close is not. */
	log_at(e ? LOG_WARN : LOG_DEBUG, e ? "tls_failed" : "conn_closed", "peer=%s reason=%s",
		 c->peer, log_quote(why));
	conn_free(c, GRPC_STATUS_UNAVAILABLE, why);
}

static void plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[CONN_READ_BUF];
	c->last_recv = rpc_now_ms();
	for (int i = 0; i < CONN_READS_PER_EVENT && !c->dead; i++) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			if (n < 0)
				log_debug("conn_error", "peer=%s error=%s", c->peer,
					  log_quote(strerror(errno)));
			lost(c, n == 0, 0);
			return;
		}
		if (!c->lingering && feed(c, buf, (size_t)n) < 0)
			return;
		/* A short read emptied the socket: save the recv that would
		 * say EAGAIN. */
		if ((size_t)n < sizeof buf)
			break;
	}
	/* Flushed from the flush event, after the loop pass's other
	 * callbacks, so what they answer goes out in the same write. */
	conn_schedule(c);
}

static void plain_write_cb(evutil_socket_t fd, short what, void *arg)
{
	flush(arg);
}

/* TLS: bufferevent_openssl reads and decrypts; its input chains go to
 * nghttp2 without a copy. */
static void tls_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	c->last_recv = rpc_now_ms();
	if (c->lingering) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (!c->dead && (len = evbuffer_get_contiguous_space(in)) > 0) {
		if (feed(c, evbuffer_pullup(in, (ssize_t)len), len) < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		evbuffer_drain(in, len);
	}
	conn_schedule(c);
}

static void tls_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (!free_if_flushed(c))
		flush(c);
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_CONNECTED)
		return; /* handled by the channel before conn_new */
	lost(arg, (what & BEV_EVENT_EOF) != 0,
	     (what & BEV_EVENT_ERROR) ? bufferevent_get_openssl_error(bev) : 0);
}

/* ---- keepalive ---------------------------------------------------------- */

static void ka_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	if (c->lingering) {
		conn_free(c, GRPC_STATUS_UNAVAILABLE, "connection closed");
		return;
	}
	if (!c->ping_out) {
		/* A peer that holds a connection without ever speaking would
		 * use up max_conns for everyone else. */
		log_warn("handshake_timeout", "peer=%s", c->peer);
		conn_free(c, GRPC_STATUS_UNAVAILABLE, "handshake timeout");
		return;
	}
	log_info("keepalive_timeout", "peer=%s", c->peer);
	conn_free(c, GRPC_STATUS_UNAVAILABLE, "keepalive timeout");
}

static void ka_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	/* Traffic since the last tick proves the peer alive. */
	if (c->ping_out || rpc_now_ms() - c->last_recv < c->opts->keepalive_ms)
		return;
	if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
		return;
	c->ping_out = 1;
	struct timeval tv = {c->opts->keepalive_timeout_ms / 1000,
			     (c->opts->keepalive_timeout_ms % 1000) * 1000};
	event_add(c->ka_to_ev, &tv);
	conn_schedule(c);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* The socket options of a connection, by family, for both sides: TCP
 * gets no Nagle delay (gRPC's small frames would wait for ACKs); a unix
 * socket has no such options and needs none. */
static void tune_socket(int fd)
{
	int family = 0, one = 1;
	socklen_t len = sizeof family;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0)
		return;
	if (family == AF_INET || family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct conn *conn_new(struct event_base *base, struct bufferevent *bev, SSL *ssl,
		      const struct rpc_opts *opts, struct rpc_server *srv, struct rpc_channel *ch,
		      const char *peer)
{
	struct conn *c = xcalloc(1, sizeof *c);
	tune_socket(bufferevent_getfd(bev));
	c->base = base;
	c->ssl = ssl;
	if (ssl) {
		c->bev = bev;
		c->fd = -1;
		c->out = bufferevent_get_output(bev);
	} else {
		/* A plaintext bufferevent only carried the socket (through the
		 * channel's connect): take the descriptor, let the rest go. */
		c->fd = bufferevent_getfd(bev);
		bufferevent_setfd(bev, -1);
		bufferevent_free(bev);
		c->out = evbuffer_new();
		c->rd_ev = event_new(base, c->fd, EV_READ | EV_PERSIST, plain_read_cb, c);
		c->wr_ev = event_new(base, c->fd, EV_WRITE, plain_write_cb, c);
	}
	c->opts = opts;
	c->srv = srv;
	c->ch = ch;
	c->is_client = ch != NULL;
	c->last_recv = rpc_now_ms();
	snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");

	nghttp2_option *opt;
	nghttp2_option_new(&opt);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_send_header_block_length(opt, 64u << 10);
	int rv = c->is_client ? nghttp2_session_client_new2(&c->ng, callbacks(), c, opt)
			      : nghttp2_session_server_new2(&c->ng, callbacks(), c, opt);
	nghttp2_option_del(opt);
	if (rv != 0)
		abort();

	nghttp2_settings_entry iv[4];
	size_t n = 0;
	if (!c->is_client)
		iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
						   opts->max_streams};
	else
		iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
	iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, RPC_STREAM_WINDOW};
	iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
					   RPC_MAX_HEADER_LIST};
	nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, n);
	nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, RPC_CONN_WINDOW);

	c->flush_ev = event_new(base, -1, 0, flush_cb, c);
	c->ka_to_ev = evtimer_new(base, ka_timeout_cb, c);
	struct timeval hs = {opts->handshake_timeout_ms / 1000,
			     (opts->handshake_timeout_ms % 1000) * 1000};
	event_add(c->ka_to_ev, &hs);
	if (opts->keepalive_ms > 0) {
		c->ka_ev = event_new(base, -1, EV_PERSIST, ka_cb, c);
		struct timeval tv = {opts->keepalive_ms / 1000, (opts->keepalive_ms % 1000) * 1000};
		event_add(c->ka_ev, &tv);
	}
	c->connected = 1;
	return c;
}

void conn_start_io(struct conn *c)
{
	conn_schedule(c);
	if (c->fd >= 0) {
		event_add(c->rd_ev, NULL);
		return;
	}
	bufferevent_setcb(c->bev, tls_read_cb, tls_write_cb, tls_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_OUT_HIGH / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* Bytes that arrived with the TLS handshake are already buffered. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)))
		tls_read_cb(c->bev, c);
}

void conn_goaway(struct conn *c)
{
	if (c->draining || c->dead)
		return;
	c->draining = 1;
	nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
			      NULL, 0);
	conn_schedule(c);
}

void conn_free(struct conn *c, int status, const char *msg)
{
	/* Ending a call may run user code that touches this connection:
	 * mark it dead first so nothing new is submitted. */
	c->dead = 1;
	char *m = xstrdup(msg ? msg : "");
	/* The channel lets go first, so calls started from on_done below
	 * never land on this connection. */
	if (c->ch)
		channel_conn_closed(c->ch, c, status, m);
	c->ch = NULL;
	while (c->calls) {
		struct rpc_call *call = c->calls;
		if (call->stream_id)
			nghttp2_session_set_stream_user_data(c->ng, call->stream_id, NULL);
		call_conn_lost(call, status, m);
	}
	if (c->srv)
		server_conn_closed(c->srv, c);
	free(m);
	nghttp2_session_del(c->ng);
	if (c->bev) {
		SSL_set_shutdown(c->ssl, SSL_RECEIVED_SHUTDOWN);
		SSL_shutdown(c->ssl);
		bufferevent_free(c->bev);
	} else {
		event_free(c->rd_ev);
		event_free(c->wr_ev);
		evbuffer_free(c->out);
		close(c->fd);
	}
	if (c->ka_ev)
		event_free(c->ka_ev);
	event_free(c->ka_to_ev);
	event_free(c->flush_ev);
	free(c->dead_msg);
	free(c);
}
