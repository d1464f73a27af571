/*
 * rpc: gRPC over HTTP/2, server and client, on one libevent loop.
 *
 * The module owns connections (plaintext h2c with prior knowledge, or TLS
 * with ALPN "h2"), HTTP/2 sessions (nghttp2 does framing, HPACK and flow
 * control) and calls (one HTTP/2 stream each). It does not own the event
 * base, which the caller creates, runs and frees after the last rpc object.
 *
 * Every call, on either side, is a bidirectional stream of messages; unary,
 * server-streaming and client-streaming are the same machinery with one
 * message on one side or both. A call is driven by callbacks (struct
 * rpc_call_cbs) and ends exactly once with on_done, after which the call
 * object is freed by this module and must not be touched.
 *
 * Backpressure: rpc_call_send() queues at most one message past a per-call
 * high-water mark; when it returns RPC_SEND_FULL the sender waits for
 * on_writable. Messages are delivered to on_message as they are reassembled,
 * so nothing queues on the receive side either: HTTP/2 flow control holds
 * the peer back while a handler is slow only if the handler stops reading
 * with rpc_call_pause_recv().
 *
 * All functions must be called from the loop's thread. None blocks.
 */
#ifndef ORCHD_RPC_H
#define ORCHD_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "status.h"

struct event_base;
struct rpc_call;
struct rpc_server;
struct rpc_channel;

/* ---- calls (both sides) ------------------------------------------------ */

/*
 * Callbacks of a call. Any may be NULL. `arg` is the pointer given when the
 * method was registered (server) or the call was started (client); per-call
 * state goes in rpc_call_set_data().
 */
struct rpc_call_cbs {
	/* Server only: a new call arrived and its request headers are valid.
	 * Return 0 to accept it, or a gRPC status (> 0) to end it at once
	 * with that status (Trailers-Only). */
	int (*on_start)(struct rpc_call *call, void *arg);
	/* A whole message arrived (already decompressed). msg is borrowed for
	 * the duration of the callback. Return 0 to go on, or a gRPC status
	 * (> 0) to end the call with it. */
	int (*on_message)(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg);
	/* The peer will send no more messages (server: the client half-closed;
	 * client: the server's trailers arrived, on_done follows at once). */
	void (*on_half_close)(struct rpc_call *call, void *arg);
	/* Client only: the server's initial metadata arrived
	 * (rpc_call_recv_metadata() now holds it). */
	void (*on_headers)(struct rpc_call *call, void *arg);
	/* The send queue drained below the low-water mark after a send
	 * returned RPC_SEND_FULL. */
	void (*on_writable)(struct rpc_call *call, void *arg);
	/* The call is over: finished by the server, cancelled by either side,
	 * deadline exceeded, or connection lost. status and message (never
	 * NULL, possibly "") are final. Last callback; the call is freed when
	 * it returns. */
	void (*on_done)(struct rpc_call *call, int status, const char *message, void *arg);
};

/* rpc_call_send() results besides errors. */
enum { RPC_SEND_OK = 0, RPC_SEND_FULL = 1 };
/* rpc_call_send() flags. */
enum {
	RPC_SEND_COMPRESS = 1,   /* gzip this message if the call compresses */
	RPC_SEND_NOCOMPRESS = 2, /* never compress this message */
	/* Queue even past the high-water mark (never E_AGAIN): for control
	 * messages that must not be lost and whose number the caller
	 * bounds, e.g. a scheduler's assignments (at most a worker's slots). */
	RPC_SEND_FORCE = 4
};

/*
 * Queues one message (copied). Returns RPC_SEND_OK; RPC_SEND_FULL when the
 * message was queued but the queue is now at its high-water mark (wait for
 * on_writable); E_AGAIN when the queue was already full and nothing was
 * queued (never with RPC_SEND_FORCE); E_STATE after the send side was
 * closed (client) or the call finished (server); E_CLOSED once the call is
 * done; E_TOOBIG when len is over max_send_msg, which also ends the call
 * with RESOURCE_EXHAUSTED.
 */
int rpc_call_send(struct rpc_call *call, const void *msg, size_t len, int flags);

/* Server: ends the call with status and message (borrowed; may be NULL).
 * Queued messages are sent first, then trailers with the status, any
 * trailing metadata, and END_STREAM. on_done follows once the stream is
 * closed. Returns 0, or E_STATE if already finished. */
int rpc_call_finish(struct rpc_call *call, int status, const char *message);

/* Client: half-closes the call (no more messages). Returns 0 or E_STATE. */
int rpc_call_close_send(struct rpc_call *call);

/* Either side: cancels the call (RST_STREAM CANCEL). on_done follows with
 * CANCELLED, from the loop, never from inside this function. */
void rpc_call_cancel(struct rpc_call *call);

/* Stops (pause != 0) or resumes delivery of received messages; while
 * paused, HTTP/2 flow control stops the peer once its window is used. A
 * client call's status waits behind the held messages: on_done comes
 * only after the reader resumed and took them, even if the connection
 * closes meanwhile (a cancel, deadline or reset ends it at once). Works
 * before the call has a connection. */
void rpc_call_pause_recv(struct rpc_call *call, int pause);

/* Metadata the peer sent: the request headers on the server, the response
 * headers on the client. Custom keys only; -bin values decoded. */
const struct meta *rpc_call_recv_metadata(const struct rpc_call *call);
/* Client: trailing metadata from the server (valid in on_done). */
const struct meta *rpc_call_recv_trailers(const struct rpc_call *call);
/* Adds initial metadata to send (copied); before the first send. Server:
 * response headers; client: see rpc_call_opts. Returns 0 or E_STATE. */
int rpc_call_add_metadata(struct rpc_call *call, const char *key, const void *val, size_t len);
/* Server: adds trailing metadata (copied), sent with the status. */
int rpc_call_add_trailer(struct rpc_call *call, const char *key, const void *val, size_t len);
/* Server: compress responses with gzip (if the client accepts it); before
 * the first send. Messages sent with RPC_SEND_NOCOMPRESS stay plain. */
void rpc_call_set_compress(struct rpc_call *call, int on);
/* Whether the last message delivered to on_message was compressed. */
int rpc_call_last_compressed(const struct rpc_call *call);
/* Client, in on_done: whether the status is the one the server sent
 * (its grpc-status), rather than one decided on this side (deadline,
 * cancel, connection lost, a broken response). A proxy relays the
 * former as it is and names the peer in the latter. */
int rpc_call_status_from_peer(const struct rpc_call *call);

const char *rpc_call_path(const struct rpc_call *call);
/* Milliseconds until the call's deadline, or -1 if it has none. */
int64_t rpc_call_remaining_ms(const struct rpc_call *call);
/* The peer's address as "ip:port"; "" for a client call without a
 * connection (not yet, or no longer). */
const char *rpc_call_peer(const struct rpc_call *call);

void rpc_call_set_data(struct rpc_call *call, void *data);
void *rpc_call_data(const struct rpc_call *call);

/* ---- limits and options ------------------------------------------------ */

struct rpc_tls_opts {
	const char *cert_file;  /* PEM chain: server cert, or client cert (mTLS) */
	const char *key_file;
	const char *ca_file;    /* server: verify client certs (mTLS) against it;
				   client: verify the server against it (NULL:
				   system default store) */
	const char *server_name; /* client: name to verify and send as SNI
				    (default: the host part of the target) */
	int insecure;           /* client: skip server verification (tests) */
};

/*
 * Server: decides whether a call may go on, once its request headers are
 * valid and before its method is looked up or its on_start runs (so an
 * unauthenticated peer learns nothing, not even which methods exist). It
 * may read rpc_call_path(), rpc_call_recv_metadata() and rpc_call_peer().
 * Return 0 to let the call in, or a gRPC status (> 0) to end it at once
 * (Trailers-Only) with the NUL-terminated text written to msg (msglen
 * bytes; left empty: the status name) as its message. arg is
 * rpc_opts.authorize_arg.
 */
typedef int (*rpc_authorize_cb)(const struct rpc_call *call, char *msg, size_t msglen, void *arg);

struct rpc_opts {
	size_t max_recv_msg;      /* default 4 MiB; larger: RESOURCE_EXHAUSTED */
	size_t max_send_msg;      /* default 4 MiB; larger: RESOURCE_EXHAUSTED */
	uint32_t max_streams;     /* server: SETTINGS_MAX_CONCURRENT_STREAMS, default 100 */
	uint32_t max_conns;       /* server: open connections (all listeners), default 1024 */
	size_t send_high_water;   /* per call, default 256 KiB */
	int keepalive_ms;         /* PING interval when idle; 0 = off (default) */
	int keepalive_timeout_ms; /* no PING ACK within this: close (default 20 s) */
	int handshake_timeout_ms; /* TLS + HTTP/2 preface + SETTINGS within this, or
				     the connection is closed (default 10 s) */
	int connect_timeout_ms;   /* client, default 5 s */
	int backoff_initial_ms;   /* client reconnect backoff, default 200 ms */
	int backoff_max_ms;       /* default 10 s */
	const struct rpc_tls_opts *tls; /* NULL: plaintext h2c */
	rpc_authorize_cb authorize; /* server: NULL lets every call in */
	void *authorize_arg;	    /* borrowed; must outlive the server */
	/* Client: metadata sent on every call of the channel, before the
	 * call's own (a key the call sets itself is not sent twice), e.g.
	 * "authorization". Borrowed: rpc_channel_new() copies it. */
	const struct meta *default_md;
	/* Client: default_md is borrowed for the channel's life instead of
	 * copied, and read as each call starts, so its owner may change it
	 * between calls (a role's token after a reload). */
	int default_md_shared;
};

/* ---- server ------------------------------------------------------------ */

/* Creates a server on base. opts borrowed (copied), may be NULL for the
 * defaults. Returns NULL with *err set when TLS set-up fails. */
struct rpc_server *rpc_server_new(struct event_base *base, const struct rpc_opts *opts, int *err);
/* Frees the server, closing every connection; calls end with UNAVAILABLE.
 * NULL is a no-op. */
void rpc_server_del(struct rpc_server *srv);

/* Registers a method by full path "/package.Service/Method". cbs and arg
 * are borrowed and must outlive the server. Returns 0 or E_STATE when
 * the path is taken. */
int rpc_server_add_method(struct rpc_server *srv, const char *path, const struct rpc_call_cbs *cbs,
			  void *arg);
/* Whether a service "package.Service" has any method registered. */
int rpc_server_has_service(const struct rpc_server *srv, const char *service);
/* Calls fn for each registered service name once (for reflection). */
void rpc_server_foreach_service(const struct rpc_server *srv,
				void (*fn)(const char *service, void *arg), void *arg);

/* Listens on addr, any form of addr.h: "host:port", "[v6]:port" or ":port"
 * (port 0: ephemeral), "unix:PATH", "unix:///ABS/PATH", "unix-abstract:NAME".
 * A unix socket file is created mode 0660, replaces a stale one (a socket
 * nobody answers on) and is removed when the listener closes. Returns the
 * bound port (> 0; 0 for a unix socket) or a negative error: -EINVAL or
 * -ENAMETOOLONG (addr_parse), -EADDRINUSE (a listener answers at the
 * path), -ENOTSOCK (something else is at the path, left alone), E_TOOBIG
 * (too many listeners) or another -errno. */
int rpc_server_listen(struct rpc_server *srv, const char *addr);

/* Serves an already connected stream socket (taken: closed by the server),
 * e.g. one end of a socketpair in tests and fuzzers. peer is copied.
 * Returns 0, or E_TOOBIG when over max_conns (fd closed). */
int rpc_server_adopt(struct rpc_server *srv, int fd, const char *peer);

/* Graceful shutdown: stops accepting, sends GOAWAY to every connection,
 * lets in-flight calls finish for up to grace_ms, then closes what is
 * left. done(arg) runs once every connection is closed. */
void rpc_server_shutdown(struct rpc_server *srv, int grace_ms, void (*done)(void *arg), void *arg);

/* Connections currently open (for tests and health). */
size_t rpc_server_conn_count(const struct rpc_server *srv);

/* ---- client ------------------------------------------------------------ */

/* Creates a channel to target, any form of addr.h but ":port" means
 * 127.0.0.1 and port 0 is refused. A unix target sends ":authority:
 * localhost", as gRPC does. It connects on the first call
 * and reconnects with exponential backoff after a failure. While it is
 * disconnected, new calls fail at once with UNAVAILABLE (fail fast).
 * opts borrowed (copied). Returns NULL with *err set on bad target/TLS. */
struct rpc_channel *rpc_channel_new(struct event_base *base, const char *target,
				    const struct rpc_opts *opts, int *err);
/* Frees the channel; calls in flight end with CANCELLED. NULL: no-op. */
void rpc_channel_del(struct rpc_channel *ch);

enum rpc_channel_state { RPC_CH_IDLE, RPC_CH_CONNECTING, RPC_CH_READY, RPC_CH_BACKOFF };
enum rpc_channel_state rpc_channel_state(const struct rpc_channel *ch);
/* Starts connecting now if idle or in backoff (resets the backoff timer). */
void rpc_channel_connect(struct rpc_channel *ch);
/* state_cb(ch, state, arg) runs on every state change; NULL to remove. */
void rpc_channel_set_state_cb(struct rpc_channel *ch,
			      void (*cb)(struct rpc_channel *ch, enum rpc_channel_state st, void *arg),
			      void *arg);

struct rpc_call_opts {
	int64_t timeout_ms;        /* 0: no deadline */
	const struct meta *metadata; /* initial metadata to send, borrowed (copied) */
	int compress;              /* gzip request messages */
	int wait_for_ready;        /* queue the call while connecting instead of failing fast */
};

/* Starts a call on path. cbs/arg borrowed; they must live until on_done.
 * opts may be NULL. Never NULL: if the call cannot start, on_done runs
 * from the loop with UNAVAILABLE (or the reason). */
struct rpc_call *rpc_call_start(struct rpc_channel *ch, const char *path,
				const struct rpc_call_cbs *cbs, void *arg,
				const struct rpc_call_opts *opts);

#endif
