/*
 * rpc_int: the inside of the rpc module, shared by its files and by no one
 * else. conn.c owns connections (socket, TLS, nghttp2 session, keepalive,
 * GOAWAY); call.c owns the gRPC call on one stream (framing, queues, status,
 * deadline) and the pools of ended calls kept for reuse; server.c and
 * channel.c own the listening and the connecting side, one pool each, and
 * decide what a connection's events mean for their calls.
 */
#ifndef ORCHD_RPC_INT_H
#define ORCHD_RPC_INT_H

#include <event2/event.h>
#include <event2/bufferevent.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "frame.h"
#include "meta.h"
#include "rpc.h"

#define RPC_DEFAULT_MAX_MSG (4u << 20)
/* Output bytes buffered per connection before nghttp2 is told to wait. */
#define CONN_OUT_HIGH (1u << 20)
/* Flow-control windows we grant: per stream and per connection. */
#define RPC_STREAM_WINDOW (1u << 20)
#define RPC_CONN_WINDOW (16u << 20)
#define RPC_MAX_HEADER_LIST (16u << 10)

struct conn;
struct rpc_call;

/* Ended calls kept for reuse, with their evbuffer and deadline timer, by
 * the server or channel whose calls they were (a ring, oldest first). */
#define CALL_POOL_MAX 64
struct call_pool {
	struct rpc_call *ring[CALL_POOL_MAX];
	size_t head, n;
};

struct rpc_call {
	struct conn *conn;	  /* client: NULL while waiting for a connection (no
				     stream_id yet), and after outliving it
				     (stream_id set; see call_conn_lost) */
	struct rpc_channel *ch;	  /* client calls */
	int32_t stream_id;	  /* 0 until submitted */
	const struct rpc_call_cbs *cbs;
	void *arg;
	void *data;
	char *path;	/* path_inl, or xmalloc'd when longer */
	char path_inl[64];

	struct frame_reader fr;
	struct evbuffer *out;	 /* framed messages not yet handed to nghttp2 */
	struct evbuffer *held;	 /* received DATA while paused (bounded by our window) */
	size_t max_recv;
	size_t max_send;
	size_t high_water;

	unsigned is_client : 1;
	unsigned headers_sent : 1; /* server: response HEADERS submitted */
	unsigned finished : 1;	   /* server: status set, trailers pending */
	unsigned send_closed : 1;  /* client: half-closed */
	unsigned deferred : 1;	   /* data provider returned DEFERRED */
	unsigned want_writable : 1;
	unsigned notify_writable : 1;
	unsigned compress : 1;	   /* compress outgoing messages */
	unsigned peer_gzip : 1;	   /* server: client accepts gzip */
	unsigned recv_gzip : 1;	   /* incoming grpc-encoding is gzip */
	unsigned recv_identity : 1;
	unsigned last_compressed : 1;
	unsigned paused : 1;
	unsigned close_pending : 1; /* client: stream closed while messages were held */
	unsigned draining : 1;	    /* drain_held is delivering */
	unsigned end_pending : 1;   /* ended locally meanwhile: drain_held ends it */
	unsigned cancelled : 1;	   /* RST_STREAM submitted by us */
	unsigned trailers_seen : 1; /* client: grpc-status received */
	unsigned peer_status : 1;   /* client: the final status is the server's grpc-status */
	unsigned in_trailers : 1;  /* client: parsing the trailer block */
	unsigned done : 1;
	unsigned bad_request : 1;   /* server: request headers rejected */
	unsigned half_closed : 1;   /* server: client's END_STREAM dealt with */
	unsigned bad_encoding : 1;  /* server: grpc-encoding we cannot decode */
	unsigned wait_for_ready : 1; /* client: survive connection failures */
	unsigned grpc_ct : 1;	    /* content-type is application/grpc[+…|;…] */

	uint32_t close_error; /* client: the HTTP/2 error of a pending close */
	int status;	  /* final status once known, -1 before */
	char *message;	  /* final message: msg_inl, or xmalloc'd when longer */
	char msg_inl[32];
	int http_status;  /* client: :status of the response */
	int recv_status;  /* client: grpc-status received (trailers_seen) */
	char *recv_message; /* client: grpc-message received, decoded */
	int64_t timeout_ms; /* from grpc-timeout or the client's opts; 0: none */
	size_t header_bytes; /* of the header block being received */
	int64_t deadline;   /* monotonic ms, 0: none */
	struct event *deadline_ev;
	struct event *defer_ev; /* ends a call from the loop (call_end_later), or resumes it */

	/* Server: custom request headers not yet decoded into recv_md, held
	 * as nghttp2's references (see rpc_call_recv_metadata). */
	struct call_hdr {
		nghttp2_rcbuf *name, *value;
	} *raw, raw_inl[2];
	size_t nraw, capraw;

	struct meta recv_md;
	struct meta recv_trailers;
	struct meta send_md;
	struct meta send_trailers;

	struct rpc_call *next, *prev; /* the connection's or channel's list */
	struct call_pool *pool;	      /* where it goes when it ends; NULL: freed */
};

struct conn {
	struct event_base *base;
	struct bufferevent *bev;  /* TLS only; NULL for plaintext */
	int fd;			  /* plaintext: the socket, owned; -1 with TLS */
	struct evbuffer *out;	  /* bytes for the peer: ours (plaintext) or bev's */
	struct event *rd_ev;	  /* plaintext: socket readable (persistent) */
	struct event *wr_ev;	  /* plaintext: socket writable, armed while output waits */
	nghttp2_session *ng;
	SSL *ssl;
	const struct rpc_opts *opts;
	struct rpc_server *srv;	 /* server side */
	struct rpc_channel *ch;	 /* client side; NULL once detached */
	struct event *flush_ev;
	struct event *ka_ev;	 /* keepalive interval */
	struct event *ka_to_ev;	 /* handshake, keepalive ACK or linger timeout */
	struct rpc_call *calls;
	size_t ncalls;
	int64_t last_recv;
	unsigned is_client : 1;
	unsigned connected : 1;	 /* TCP (and TLS) up, session created */
	unsigned ping_out : 1;
	unsigned greeted : 1;	 /* the peer's SETTINGS arrived */
	unsigned draining : 1;	 /* GOAWAY sent or received */
	unsigned dead : 1;	 /* being torn down */
	unsigned close_when_flushed : 1;
	unsigned lingering : 1;	 /* session over, our side shut: waits for the peer's EOF */
	int dead_status;
	char *dead_msg;
	struct rpc_call *hdr_call; /* of the header block being received */
	int32_t hdr_stream;	   /* its stream */
	char peer[64];
	struct conn *next, *prev; /* server's list */
};

/* ---- conn.c ---- */
/* Takes ownership of bev (without ssl, only its socket is kept and bev is
 * freed). Sets the socket options its family takes (the one place that
 * decides them), creates the nghttp2 session (server or client role),
 * sends our SETTINGS, arms keepalive. */
struct conn *conn_new(struct event_base *base, struct bufferevent *bev, SSL *ssl,
		      const struct rpc_opts *opts, struct rpc_server *srv, struct rpc_channel *ch,
		      const char *peer);
/* Tears the connection down from the loop (never inside nghttp2): every
 * call ends with status/msg (but see call_conn_lost). Safe to call more
 * than once. */
void conn_fail(struct conn *c, int status, const char *msg);
/* Immediate teardown; must not be called from inside an nghttp2 callback.
 * Each call goes through call_conn_lost(call, status, msg). */
void conn_free(struct conn *c, int status, const char *msg);
/* Schedules one nghttp2_session_send for this loop turn. */
void conn_schedule(struct conn *c);
/* Server: GOAWAY with the last stream we processed; existing streams go on. */
void conn_goaway(struct conn *c);
void conn_start_io(struct conn *c);

/* ---- call.c ---- */
/* A call from pool (borrowed; NULL: none), or a new one; it returns there
 * when it ends. */
struct rpc_call *call_new(struct call_pool *pool, struct conn *c, int is_client,
			  const struct rpc_opts *opts);
/* Frees the calls kept in pool; the pool is then empty. Every call that
 * may return to it must have ended. */
void call_pool_free(struct call_pool *pool);
/* Ends the call: on_done, unlink, back to its pool. Idempotent through
 * call->done. */
void call_end(struct rpc_call *call, int status, const char *msg);
void call_set_status(struct rpc_call *call, int status, const char *msg);
/* Copies path (len bytes, borrowed) into the call. */
void call_set_path(struct rpc_call *call, const char *path, size_t len);
/* Ends a call that never reached a stream, from the next loop turn. */
void call_end_later(struct rpc_call *call, struct event_base *base, int status, const char *msg);
/* nghttp2's NO_COPY send callback for DATA frames of calls. */
int call_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
		   size_t length, nghttp2_data_source *source, void *user_data);
/* Server: the client half-closed (END_STREAM); tells the handler, or ends
 * the call with INTERNAL when a message was cut short. */
void call_server_half_closed(struct rpc_call *call);
/* Received DATA payload for the call; errors end the call. */
void call_recv_data(struct rpc_call *call, const uint8_t *data, size_t len);
void call_stream_closed(struct rpc_call *call, uint32_t error_code);
/* The call's connection is being freed (conn_free). A client call whose
 * stream already closed cleanly, its messages held for a paused reader,
 * is detached instead: taken off the connection and kept by its channel
 * (channel_keep_call), it delivers the rest when its reader resumes. Any
 * other call ends with status and msg (borrowed). */
void call_conn_lost(struct rpc_call *call, int status, const char *msg);
void call_arm_deadline(struct rpc_call *call, struct event_base *base);
/* Server: request headers complete; validates and dispatches. */
void call_server_headers_done(struct rpc_call *call);
/* One received header; name and value borrowed (a server call keeps a
 * reference to its custom ones). */
void call_on_header(struct rpc_call *call, nghttp2_rcbuf *name, nghttp2_rcbuf *value);
/* Client: submit the request on c with the channel's default metadata
 * (but for the keys md has) and the call's own md (may be NULL); both
 * borrowed, nghttp2 copies what it sends. Returns 0 or a negative error. */
int call_client_submit(struct rpc_call *call, struct conn *c, const struct meta *defaults,
		       const struct meta *md);
/* Client: response or trailer headers complete (end_stream: the frame
 * closed the stream). */
void call_client_headers_done(struct rpc_call *call, int end_stream);
/* After each send pass: deliver pending on_writable callbacks. */
void call_after_send(struct rpc_call *call);

/* ---- server.c ---- */
struct call_pool *server_call_pool(struct rpc_server *srv);
const struct rpc_call_cbs *server_find_method(struct rpc_server *srv, const char *path,
					      void **arg);
void server_conn_closed(struct rpc_server *srv, struct conn *c);

/* ---- channel.c ---- */
struct call_pool *channel_call_pool(struct rpc_channel *ch);
void channel_conn_closed(struct rpc_channel *ch, struct conn *c, int status, const char *msg);
void channel_conn_goaway(struct rpc_channel *ch, struct conn *c);
const char *channel_authority(const struct rpc_channel *ch);
int channel_is_tls(const struct rpc_channel *ch);
struct event_base *channel_base(const struct rpc_channel *ch);
/* Keeps a call that outlived its connection (call_conn_lost) until it
 * ends; rpc_channel_del ends it if it has not. */
void channel_keep_call(struct rpc_channel *ch, struct rpc_call *call);
/* Removes a call without a connection (waiting for one, or kept) from
 * the channel, as it ends. */
void channel_forget_call(struct rpc_channel *ch, struct rpc_call *call);

/* ---- tls.c ---- */
/* Returns a new SSL_CTX or NULL with a logged reason. */
SSL_CTX *tls_server_ctx(const struct rpc_tls_opts *t);
SSL_CTX *tls_client_ctx(const struct rpc_tls_opts *t);
/* Client SSL for one connection: SNI + hostname verification. */
SSL *tls_client_ssl(SSL_CTX *ctx, const char *name, int insecure);
/* Whether ALPN settled on h2. */
int tls_alpn_is_h2(SSL *ssl);
/* Describes e, an error from bufferevent_get_openssl_error(), in buf.
 * Returns buf. */
const char *tls_error_string(unsigned long e, char *buf, size_t len);

/* ---- shared helpers ---- */
int64_t rpc_now_ms(void);
void rpc_opts_fill(struct rpc_opts *dst, const struct rpc_opts *src);

#endif
