/*
 * call: one gRPC call on one HTTP/2 stream, both sides (see rpc.h).
 *
 * Outgoing messages are framed into the call's evbuffer and handed to
 * nghttp2 through a data provider that never copies: the send_data callback
 * moves the chain into the socket buffer. Incoming DATA goes through the
 * frame reader, which delivers whole messages straight from nghttp2's
 * buffer when they are not split. The status rules follow PROTOCOL-HTTP2.md
 * in grpc/grpc (Trailers-Only for early errors, status from trailers, HTTP
 * status and RST_STREAM codes mapped when trailers are missing).
 *
 * A call costs as little as the protocol lets: it keeps its path and
 * status message inline, a server's request metadata as nghttp2's own
 * buffers until asked for, and an ended call goes back to its server's or
 * channel's pool (struct call_pool) with its evbuffer and timer, wiped.
 */
#include <string.h>

#include <event2/buffer.h>

#include "dlist.h"
#include "error.h"
#include "gz.h"
#include "log.h"
#include "rpc_int.h"
#include "status.h"
#include "xalloc.h"

#define USER_AGENT "orchd/" ORCHD_VERSION
#define ACCEPT_ENCODING "identity,gzip"

/* ---- header lists ------------------------------------------------------- */

/* nghttp2 copies name/value pairs on submit, so values we had to encode
 * only live until the submit returns: in the list's own buffers, or on the
 * heap (owned) when they may be long. nv_init sets only the counters: the
 * inline arrays are written before they are read, and clearing them would
 * cost more than the rest of a submit. */
struct nvlist {
	nghttp2_nv *v; /* inl until more are needed */
	size_t n, cap;
	char **owned;
	size_t nowned, capowned;
	nghttp2_nv inl[16];
	char *inl_owned[8];
	char status[STATUS_BUFLEN];	  /* grpc-status */
	char timeout[META_TIMEOUT_BUFLEN]; /* grpc-timeout */
};

static void nv_init(struct nvlist *l)
{
	l->v = l->inl;
	l->n = 0;
	l->cap = sizeof l->inl / sizeof l->inl[0];
	l->owned = l->inl_owned;
	l->nowned = 0;
	l->capowned = sizeof l->inl_owned / sizeof l->inl_owned[0];
}

/* Doubles an array that starts in inline storage; no limit but memory. */
static void *grow(void *p, const void *inl, size_t *cap, size_t size)
{
	size_t ncap = *cap * 2;
	void *q;
	if (p == inl) {
		q = xmalloc(ncap * size);
		memcpy(q, p, *cap * size);
	} else {
		q = xrealloc(p, ncap * size);
	}
	*cap = ncap;
	return q;
}

static void nv_put(struct nvlist *l, const char *name, size_t namelen, const char *value,
		   size_t vlen, uint8_t flags)
{
	if (l->n == l->cap)
		l->v = grow(l->v, l->inl, &l->cap, sizeof *l->v);
	l->v[l->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, namelen, vlen, flags};
}

/* A header whose name is a string literal: its length is known, and
 * nghttp2 need not copy it (it lives as long as the program). */
#define nv_litn(l, name, value, vlen)                                                              \
	nv_put(l, "" name, sizeof name - 1, value, vlen, NGHTTP2_NV_FLAG_NO_COPY_NAME)
#define nv_lit(l, name, value) nv_litn(l, name, value, strlen(value))

/* Takes value, freed by nv_free; returns it. */
static char *nv_keep(struct nvlist *l, char *value)
{
	if (l->nowned == l->capowned)
		l->owned = grow(l->owned, l->inl_owned, &l->capowned, sizeof *l->owned);
	l->owned[l->nowned++] = value;
	return value;
}

/* Adds m's entries but those whose key is in except (may be NULL). */
static void nv_add_md(struct nvlist *l, const struct meta *m, const struct meta *except)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct meta_kv *kv = &m->v[i];
		const char *v = (const char *)kv->val;
		size_t n = kv->vallen;
		if (except && meta_get(except, kv->key))
			continue;
		if (meta_key_is_bin(kv->key, kv->keylen))
			v = nv_keep(l, meta_b64_encode(kv->val, kv->vallen, &n));
		nv_put(l, kv->key, kv->keylen, v, n, NGHTTP2_NV_FLAG_NONE);
	}
}

/* grpc-status and grpc-message. The message goes as it is unless it needs
 * percent-encoding (rare: a '%' or a byte outside printable ASCII). */
static void nv_status(struct nvlist *l, struct rpc_call *call)
{
	nv_litn(l, "grpc-status", l->status, status_format(call->status, l->status));
	size_t len = strlen(call->message);
	if (!len)
		return;
	size_t n = meta_pct_encoded_len(call->message, len);
	nv_litn(l, "grpc-message",
		n == len ? call->message : nv_keep(l, meta_pct_encode(call->message, len, NULL)), n);
}

static void nv_free(struct nvlist *l)
{
	for (size_t i = 0; i < l->nowned; i++)
		free(l->owned[i]);
	if (l->owned != l->inl_owned)
		free(l->owned);
	if (l->v != l->inl)
		free(l->v);
}

/* A server keeps its custom request headers as nghttp2 received them (a
 * reference each, no copy) and decodes them into recv_md only when asked:
 * most handlers never look, and copying user-agent alone took three
 * allocations per call. */
static void raw_keep(struct rpc_call *call, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
	if (call->nraw == call->capraw)
		call->raw = grow(call->raw, call->raw_inl, &call->capraw, sizeof *call->raw);
	nghttp2_rcbuf_incref(name);
	nghttp2_rcbuf_incref(value);
	call->raw[call->nraw++] = (struct call_hdr){name, value};
}

static void raw_release(struct rpc_call *call)
{
	for (size_t i = 0; i < call->nraw; i++) {
		nghttp2_rcbuf_decref(call->raw[i].name);
		nghttp2_rcbuf_decref(call->raw[i].value);
	}
	call->nraw = 0;
}

/* ---- life ---------------------------------------------------------------- */

/* Copies n bytes of s, NUL-terminated, into inl (cap bytes) when they
 * fit, else into the heap. Most paths and status messages are short, so a
 * call keeps them without an allocation; unkeep releases the copy. */
static char *keep(char *inl, size_t cap, const char *s, size_t n)
{
	char *p = n < cap ? inl : xmalloc(n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void unkeep(char *p, const char *inl)
{
	if (p != inl)
		free(p);
}

/* AddressSanitizer (gcc says __SANITIZE_ADDRESS__, clang __has_feature)
 * is told that a pooled call is off limits until it is handed out again. */
#if defined(__SANITIZE_ADDRESS__)
#define CALL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CALL_ASAN 1
#endif
#endif
#ifdef CALL_ASAN
#include <sanitizer/asan_interface.h>
/* Quarantine, as free() has under ASan: a call is reused only once the
 * ring is full, so each released call stays poisoned while CALL_POOL_MAX
 * - 1 newer ones are released, and a stale pointer to it is caught. */
#define POOL_KEEP CALL_POOL_MAX
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POOL_KEEP 1
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct rpc_call *call_new(struct call_pool *pool, struct conn *c, int is_client,
			  const struct rpc_opts *opts)
{
	struct rpc_call *call;
	if (pool && pool->n >= POOL_KEEP) {
		/* Cleared when it was released: only out, deadline_ev and
		 * pool survive from its last life. */
		call = pool->ring[pool->head];
		pool->head = (pool->head + 1) % CALL_POOL_MAX;
		pool->n--;
		UNPOISON(call, sizeof *call);
	} else {
		call = xcalloc(1, sizeof *call);
		call->out = evbuffer_new();
		call->pool = pool;
	}
	call->conn = c;
	call->is_client = is_client;
	call->status = -1;
	call->max_recv = opts->max_recv_msg;
	call->max_send = opts->max_send_msg;
	call->high_water = opts->send_high_water;
	frame_reader_init(&call->fr, opts->max_recv_msg);
	call->raw = call->raw_inl;
	call->capraw = sizeof call->raw_inl / sizeof call->raw_inl[0];
	meta_init(&call->recv_md);
	meta_init(&call->recv_trailers);
	meta_init(&call->send_md);
	meta_init(&call->send_trailers);
	return call;
}

/* Frees what the call holds for one life only; keeps out (drained) and
 * deadline_ev (stopped by call_end) for the next. */
static void call_clear(struct rpc_call *call)
{
	if (call->defer_ev)
		event_free(call->defer_ev); /* its callback varies by use */
	frame_reader_free(&call->fr);
	evbuffer_drain(call->out, evbuffer_get_length(call->out));
	if (call->held)
		evbuffer_free(call->held);
	raw_release(call);
	if (call->raw != call->raw_inl)
		free(call->raw);
	meta_free(&call->recv_md);
	meta_free(&call->recv_trailers);
	meta_free(&call->send_md);
	meta_free(&call->send_trailers);
	unkeep(call->path, call->path_inl);
	unkeep(call->message, call->msg_inl);
	free(call->recv_message);
}

static void call_destroy(struct rpc_call *call)
{
	evbuffer_free(call->out);
	if (call->deadline_ev)
		event_free(call->deadline_ev);
	free(call);
}

/* Back to its pool, wiped so that nothing of this life (metadata, status,
 * deadline, flags, callbacks) reaches the next; freed when the pool is
 * full. */
static void call_release(struct rpc_call *call)
{
	struct call_pool *pool = call->pool;
	call_clear(call);
	if (!pool || pool->n == CALL_POOL_MAX) {
		call_destroy(call);
		return;
	}
	struct evbuffer *out = call->out;
	struct event *deadline_ev = call->deadline_ev;
	memset(call, 0, sizeof *call);
	call->out = out;
	call->deadline_ev = deadline_ev;
	call->pool = pool;
	POISON(call, sizeof *call);
	pool->ring[(pool->head + pool->n) % CALL_POOL_MAX] = call;
	pool->n++;
}

void call_pool_free(struct call_pool *pool)
{
	for (; pool->n; pool->n--) {
		struct rpc_call *call = pool->ring[pool->head];
		pool->head = (pool->head + 1) % CALL_POOL_MAX;
		UNPOISON(call, sizeof *call);
		call_destroy(call);
	}
}

void call_set_path(struct rpc_call *call, const char *path, size_t len)
{
	unkeep(call->path, call->path_inl);
	call->path = keep(call->path_inl, sizeof call->path_inl, path, len);
}

void call_set_status(struct rpc_call *call, int status, const char *msg)
{
	if (call->status >= 0)
		return;
	call->status = status;
	call->message = keep(call->msg_inl, sizeof call->msg_inl, msg, msg ? strlen(msg) : 0);
}

void call_end(struct rpc_call *call, int status, const char *msg)
{
	if (call->done)
		return;
	call->done = 1;
	call_set_status(call, status, msg);
	if (call->deadline_ev)
		event_del(call->deadline_ev);
	if (call->cbs && call->cbs->on_done)
		call->cbs->on_done(call, call->status, call->message, call->arg);
	if (call->conn) {
		DLIST_UNLINK(call->conn->calls, call);
		call->conn->ncalls--;
	} else if (call->ch) {
		channel_forget_call(call->ch, call);
	}
	call_release(call);
}

static int live(const struct rpc_call *call)
{
	return !call->done && call->conn && !call->conn->dead && call->stream_id > 0 &&
	       !call->close_pending;
}

/* A client call whose stream already closed, its messages held for a
 * paused reader, has no stream left to reset: a local end (cancel,
 * deadline, error) ends it here, with the status already set. Returns
 * whether it did. */
static int end_if_closed(struct rpc_call *call)
{
	if (!call->close_pending || call->done)
		return 0;
	if (call->draining) {
		/* From a handler inside drain_held: the call must outlive it. */
		call->end_pending = 1;
		return 1;
	}
	call->close_pending = 0;
	call_end(call, call->status, call->message);
	return 1;
}

/* Ends the call from our side because of a local error or a handler's
 * verdict: the server answers with the status, the client resets. */
static void call_abort(struct rpc_call *call, int status, const char *msg)
{
	if (call->done)
		return;
	if (!call->is_client) {
		rpc_call_finish(call, status, msg);
		return;
	}
	call_set_status(call, status, msg);
	if (!call->stream_id) {
		/* Still waiting for a connection: nothing to reset, and the
		 * channel skips a call that has a status, so end it here. */
		call_end_later(call, channel_base(call->ch), status, msg);
		return;
	}
	if (end_if_closed(call))
		return;
	if (live(call) && !call->cancelled) {
		call->cancelled = 1;
		nghttp2_submit_rst_stream(call->conn->ng, NGHTTP2_FLAG_NONE, call->stream_id,
					  NGHTTP2_CANCEL);
		conn_schedule(call->conn);
	}
}

/* ---- sending ------------------------------------------------------------- */

static void submit_trailers(struct rpc_call *call)
{
	struct nvlist l;
	nv_init(&l);
	nv_status(&l, call);
	nv_add_md(&l, &call->send_trailers, NULL);
	nghttp2_submit_trailer(call->conn->ng, call->stream_id, l.v, l.n);
	nv_free(&l);
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct rpc_call *call = src->ptr;
	size_t avail = evbuffer_get_length(call->out);
	int last = call->is_client ? call->send_closed : call->finished;
	if (avail == 0 && !last) {
		call->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	size_t n = avail < length ? avail : length;
	if (n)
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n == avail && last) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (!call->is_client) {
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			submit_trailers(call);
		}
	}
	return (ssize_t)n;
}

int call_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
		   size_t length, nghttp2_data_source *src, void *ud)
{
	struct conn *c = ud;
	struct rpc_call *call = src->ptr;
	struct evbuffer *o = c->out;
	if (evbuffer_get_length(o) >= CONN_OUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	evbuffer_add(o, framehd, 9);
	evbuffer_remove_buffer(call->out, o, length);
	if (call->want_writable && evbuffer_get_length(call->out) <= call->high_water / 2) {
		call->want_writable = 0;
		call->notify_writable = 1;
	}
	return 0;
}

static nghttp2_data_provider provider(struct rpc_call *call)
{
	nghttp2_data_provider p;
	p.source.ptr = call;
	p.read_callback = data_read;
	return p;
}

static void submit_response_headers(struct rpc_call *call)
{
	struct nvlist l;
	nv_init(&l);
	nv_lit(&l, ":status", "200");
	nv_lit(&l, "content-type", "application/grpc");
	nv_lit(&l, "grpc-accept-encoding", ACCEPT_ENCODING);
	if (call->compress && call->peer_gzip)
		nv_lit(&l, "grpc-encoding", "gzip");
	nv_add_md(&l, &call->send_md, NULL);
	nghttp2_data_provider p = provider(call);
	nghttp2_submit_response(call->conn->ng, call->stream_id, l.v, l.n, &p);
	nv_free(&l);
	call->headers_sent = 1;
}

/* Trailers-Only: one HEADERS frame with END_STREAM carrying the status.
 * http_status is "200", or the answer to a request that is not gRPC. */
static void submit_trailers_only(struct rpc_call *call, const char *http_status)
{
	struct nvlist l;
	nv_init(&l);
	nv_lit(&l, ":status", http_status);
	nv_lit(&l, "content-type", "application/grpc");
	if (strcmp(http_status, "200") == 0) {
		nv_lit(&l, "grpc-accept-encoding", ACCEPT_ENCODING);
		nv_status(&l, call);
		nv_add_md(&l, &call->send_md, NULL);
		nv_add_md(&l, &call->send_trailers, NULL);
	}
	nghttp2_submit_response(call->conn->ng, call->stream_id, l.v, l.n, NULL);
	nv_free(&l);
	call->headers_sent = 1;
}

static void kick(struct rpc_call *call)
{
	if (!live(call))
		return;
	if (call->deferred) {
		call->deferred = 0;
		nghttp2_session_resume_data(call->conn->ng, call->stream_id);
	}
	conn_schedule(call->conn);
}

static void free_cb(const void *data, size_t len, void *arg)
{
	free((void *)data);
}

int rpc_call_send(struct rpc_call *call, const void *msg, size_t len, int flags)
{
	if (call->done)
		return E_CLOSED;
	if (call->is_client ? call->send_closed : call->finished)
		return E_STATE;
	if (call->conn && call->conn->dead)
		return E_CLOSED;
	if (len > UINT32_MAX || len > call->max_send) {
		/* rpc.h promises RESOURCE_EXHAUSTED for an oversized message,
		 * as gRPC does; the limit applies before compression. */
		char m[128];
		snprintf(m, sizeof m, "sent message larger than max (%zu vs. %zu bytes)", len,
			 call->max_send);
		call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED, m);
		return E_TOOBIG;
	}
	size_t queued = evbuffer_get_length(call->out);
	if (queued >= call->high_water && queued > 0 && !(flags & RPC_SEND_FORCE)) {
		call->want_writable = 1;
		return E_AGAIN;
	}
	int gzip = call->compress && (call->is_client || call->peer_gzip) &&
		   !(flags & RPC_SEND_NOCOMPRESS);
	uint8_t hdr[FRAME_HEADER_LEN];
	if (gzip) {
		uint8_t *z;
		size_t zlen;
		if (gz_compress(msg, len, &z, &zlen) != 0)
			return E_CORRUPT;
		frame_header(hdr, 1, (uint32_t)zlen);
		evbuffer_add(call->out, hdr, sizeof hdr);
		evbuffer_add_reference(call->out, z, zlen, free_cb, NULL);
		len = zlen;
	} else {
		frame_header(hdr, 0, (uint32_t)len);
		evbuffer_add(call->out, hdr, sizeof hdr);
		evbuffer_add(call->out, msg, len);
	}
	if (!call->is_client && !call->headers_sent && live(call))
		submit_response_headers(call);
	kick(call);
	if (queued + len + FRAME_HEADER_LEN >= call->high_water) {
		call->want_writable = 1;
		return RPC_SEND_FULL;
	}
	return RPC_SEND_OK;
}

int rpc_call_finish(struct rpc_call *call, int status, const char *message)
{
	if (call->is_client || call->done)
		return call->done ? E_CLOSED : E_STATE;
	if (call->finished)
		return E_STATE;
	call->finished = 1;
	call_set_status(call, status, message);
	if (!live(call))
		return 0;
	if (!call->headers_sent)
		submit_trailers_only(call, "200");
	kick(call);
	return 0;
}

int rpc_call_close_send(struct rpc_call *call)
{
	if (!call->is_client || call->send_closed || call->done)
		return E_STATE;
	call->send_closed = 1;
	kick(call);
	return 0;
}

static void defer_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_call *call = arg;
	call_end(call, call->status >= 0 ? call->status : GRPC_STATUS_CANCELLED,
		 call->message ? call->message : "Cancelled");
}

/* Ends a call whose stream is not to be touched (it has none, or it is
 * over) from the next loop turn, never from inside the caller's own call
 * into us. The event may have served a resume before: the end replaces
 * it. */
void call_end_later(struct rpc_call *call, struct event_base *base, int status, const char *msg)
{
	call_set_status(call, status, msg);
	if (call->defer_ev) {
		event_del(call->defer_ev);
		event_assign(call->defer_ev, base, -1, 0, defer_end_cb, call);
	} else {
		call->defer_ev = event_new(base, -1, 0, defer_end_cb, call);
	}
	event_active(call->defer_ev, 0, 0);
}

void rpc_call_cancel(struct rpc_call *call)
{
	if (call->done || call->cancelled)
		return;
	if (call->is_client && !call->stream_id) {
		call_end_later(call, channel_base(call->ch), GRPC_STATUS_CANCELLED, "Cancelled");
		return;
	}
	if (call->close_pending && !call->draining) {
		/* The stream is over and its end waits behind held messages
		 * (possibly without a connection any more): nothing to reset.
		 * A cancelled call gets no more messages, and its on_done
		 * comes from the loop, as for any cancel. */
		call->close_pending = 0;
		call->cancelled = 1;
		evbuffer_drain(call->held, evbuffer_get_length(call->held));
		call_end_later(call, channel_base(call->ch), GRPC_STATUS_CANCELLED, "Cancelled");
		return;
	}
	call_set_status(call, GRPC_STATUS_CANCELLED, "Cancelled");
	call->finished = 1;
	call->cancelled = 1;
	if (end_if_closed(call))
		return;
	if (live(call)) {
		nghttp2_submit_rst_stream(call->conn->ng, NGHTTP2_FLAG_NONE, call->stream_id,
					  NGHTTP2_CANCEL);
		conn_schedule(call->conn);
	}
}

void call_after_send(struct rpc_call *call)
{
	if (call->notify_writable && !call->done) {
		call->notify_writable = 0;
		if (call->cbs && call->cbs->on_writable)
			call->cbs->on_writable(call, call->arg);
	}
}

/* ---- receiving ----------------------------------------------------------- */

static int deliver(void *arg, int compressed, const uint8_t *msg, size_t len)
{
	struct rpc_call *call = arg;
	if (call->done || call->cancelled || (!call->is_client && call->finished))
		return 1;
	uint8_t *plain = NULL;
	if (compressed) {
		if (!call->recv_gzip) {
			call_abort(call, GRPC_STATUS_INTERNAL,
				   "compressed message without a grpc-encoding");
			return 1;
		}
		size_t plen;
		int rv = gz_decompress(msg, len, call->max_recv, &plain, &plen);
		if (rv == E_TOOBIG) {
			call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "decompressed message larger than the maximum");
			return 1;
		}
		if (rv != 0) {
			call_abort(call, GRPC_STATUS_INTERNAL, "cannot decompress message");
			return 1;
		}
		msg = plain;
		len = plen;
	}
	call->last_compressed = compressed != 0;
	int st = 0;
	if (call->cbs && call->cbs->on_message)
		st = call->cbs->on_message(call, msg, len, call->arg);
	free(plain);
	if (st > 0) {
		call_abort(call, st, status_name(st));
		return 1;
	}
	if (call->done)
		return 1;
	return call->paused ? FRAME_PAUSE : 0;
}

/* Feeds data to the frame reader; returns the bytes consumed, which is
 * less than len when the handler paused the call mid-chunk. */
static size_t feed(struct rpc_call *call, const uint8_t *data, size_t len)
{
	size_t used = len;
	int rv = frame_reader_feed_part(&call->fr, data, len, deliver, call, &used);
	if (rv == E_TOOBIG) {
		char m[128];
		snprintf(m, sizeof m, "received message larger than max (%zu bytes)", call->max_recv);
		call_abort(call, GRPC_STATUS_RESOURCE_EXHAUSTED, m);
	} else if (rv == E_PROTO) {
		call_abort(call, GRPC_STATUS_INTERNAL, "malformed message framing");
	}
	return rv == FRAME_PAUSE ? used : len;
}

static void hold(struct rpc_call *call, const uint8_t *data, size_t len)
{
	if (!call->held)
		call->held = evbuffer_new();
	evbuffer_add(call->held, data, len);
}

void call_recv_data(struct rpc_call *call, const uint8_t *data, size_t len)
{
	size_t used = 0;
	/* After a resume, data held earlier goes first (drain_held, from
	 * the loop): what comes meanwhile queues behind it, or the frame
	 * reader would see the stream out of order. */
	if (!call->paused && !(call->held && evbuffer_get_length(call->held)))
		used = call->bad_request ? len : feed(call, data, len);
	/* What the handler did not take waits, and so does its flow-control
	 * credit: the peer stops once the stream window is used. */
	if (used < len && !call->done)
		hold(call, data + used, len - used);
	if (used && call->conn && !call->conn->dead)
		nghttp2_session_consume_stream(call->conn->ng, call->stream_id, used);
}

/* Delivers what arrived while paused, until paused again. Returns 0 when
 * the call ended here (it is released: the caller must not touch it),
 * else 1. */
static int drain_held(struct rpc_call *call)
{
	size_t len;
	call->draining = 1;
	while (call->held && !call->done && !call->paused && !call->end_pending &&
	       (len = evbuffer_get_contiguous_space(call->held)) > 0) {
		size_t used = feed(call, evbuffer_pullup(call->held, (ssize_t)len), len);
		if (call->held)
			evbuffer_drain(call->held, used);
		if (live(call)) {
			nghttp2_session_consume_stream(call->conn->ng, call->stream_id, used);
			conn_schedule(call->conn);
		}
	}
	call->draining = 0;
	if (call->done)
		return 1; /* ended before: released by whoever ends it */
	if (call->end_pending) {
		call->end_pending = 0;
		call->close_pending = 0;
		call_end(call, call->status, call->message);
		return 0;
	}
	/* The stream's end waited behind the held messages: now it comes. */
	if (call->close_pending && !(call->held && evbuffer_get_length(call->held))) {
		call->close_pending = 0;
		call_stream_closed(call, call->close_error);
		return 0;
	}
	return 1;
}

void call_server_half_closed(struct rpc_call *call)
{
	/* While paused, resume_cb comes here after the held messages. */
	if (call->done || call->bad_request || call->paused || call->half_closed)
		return;
	call->half_closed = 1;
	/* END_STREAM in the middle of a message: the request is truncated,
	 * and a handler waiting for that message would wait forever. */
	if (frame_reader_pending(&call->fr)) {
		rpc_call_finish(call, GRPC_STATUS_INTERNAL, "truncated message");
		return;
	}
	if (call->cbs && call->cbs->on_half_close)
		call->cbs->on_half_close(call, call->arg);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_call *call = arg;
	if (!drain_held(call))
		return;
	if (!call->done && !call->paused && !call->is_client && call->conn &&
	    nghttp2_session_get_stream_remote_close(call->conn->ng, call->stream_id) &&
	    !call->finished)
		call_server_half_closed(call);
}

void rpc_call_pause_recv(struct rpc_call *call, int pause)
{
	if (call->done)
		return;
	/* A client call still waiting for its connection pauses too: it
	 * holds from its first message on. */
	call->paused = pause != 0;
	/* One that outlived its connection (call_conn_lost) still has its
	 * held messages and status to deliver. */
	if (!call->conn && !call->close_pending)
		return;
	/* A server call also resumes to deliver a half-close that came
	 * while paused, held messages or not. */
	if (!pause && ((call->held && evbuffer_get_length(call->held)) || !call->is_client)) {
		if (!call->defer_ev)
			call->defer_ev = event_new(call->conn ? call->conn->base
							      : channel_base(call->ch),
						   -1, 0, resume_cb, call);
		event_active(call->defer_ev, 0, 0);
	}
}

/* ---- headers -------------------------------------------------------------- */

/* Whether name (len bytes) is the string literal lit; the constant length
 * lets the compiler turn the comparison into a few loads, which matters for
 * the nine or so headers of every call. */
#define is(name, len, lit) ((len) == sizeof "" lit - 1 && memcmp(name, lit, sizeof lit - 1) == 0)

static void add_custom(struct meta *m, const uint8_t *name, size_t namelen, const uint8_t *value,
		       size_t valuelen)
{
	if (namelen >= 5 && memcmp(name, "grpc-", 5) == 0)
		return; /* reserved for the protocol */
	if (meta_key_is_bin((const char *)name, namelen)) {
		uint8_t *bin;
		size_t n;
		if (meta_b64_decode((const char *)value, valuelen, &bin, &n) != 0)
			return;
		meta_add(m, (const char *)name, namelen, bin, n);
		free(bin);
	} else {
		meta_add(m, (const char *)name, namelen, value, valuelen);
	}
}

static int grpc_content_type(const uint8_t *ct, size_t len)
{
	/* "application/grpc", optionally followed by "+proto" or ";…". */
	if (len < 16 || memcmp(ct, "application/grpc", 16) != 0)
		return 0;
	return len == 16 || ct[16] == '+' || ct[16] == ';';
}

static void set_encoding(struct rpc_call *call, const uint8_t *v, size_t n)
{
	call->recv_gzip = is(v, n, "gzip");
	call->recv_identity = is(v, n, "identity");
}

void call_on_header(struct rpc_call *call, nghttp2_rcbuf *namebuf, nghttp2_rcbuf *valuebuf)
{
	nghttp2_vec nv = nghttp2_rcbuf_get_buf(namebuf), vv = nghttp2_rcbuf_get_buf(valuebuf);
	const uint8_t *name = nv.base, *value = vv.base;
	size_t namelen = nv.len, valuelen = vv.len;
	if (!call->is_client) {
		if (is(name, namelen, ":path")) {
			call_set_path(call, (const char *)value, valuelen);
		} else if (is(name, namelen, "content-type")) {
			call->grpc_ct = grpc_content_type(value, valuelen);
		} else if (is(name, namelen, "grpc-timeout")) {
			if (meta_timeout_parse((const char *)value, valuelen, &call->timeout_ms) != 0)
				call->timeout_ms = -1;
		} else if (is(name, namelen, "grpc-encoding")) {
			set_encoding(call, value, valuelen);
			call->bad_encoding = !call->recv_gzip && !call->recv_identity;
		} else if (is(name, namelen, "grpc-accept-encoding")) {
			call->peer_gzip = memmem(value, valuelen, "gzip", 4) != NULL;
		} else if (namelen && name[0] != ':' && !is(name, namelen, "te")) {
			raw_keep(call, namebuf, valuebuf);
		}
		return;
	}
	if (is(name, namelen, ":status")) {
		call->http_status = atoi((const char *)value);
	} else if (is(name, namelen, "content-type")) {
		call->grpc_ct = grpc_content_type(value, valuelen);
	} else if (is(name, namelen, "grpc-status")) {
		int st = status_parse((const char *)value, valuelen);
		call->trailers_seen = 1;
		call->recv_status = st < 0 ? GRPC_STATUS_UNKNOWN : st;
	} else if (is(name, namelen, "grpc-message")) {
		free(call->recv_message);
		call->recv_message = meta_pct_decode((const char *)value, valuelen, NULL);
	} else if (is(name, namelen, "grpc-encoding")) {
		set_encoding(call, value, valuelen);
	} else if (namelen && name[0] != ':') {
		add_custom(call->in_trailers ? &call->recv_trailers : &call->recv_md, name, namelen,
			   value, valuelen);
	}
}

static void reject(struct rpc_call *call, int status, const char *msg)
{
	call->bad_request = 1;
	call->finished = 1;
	call_set_status(call, status, msg);
	submit_trailers_only(call, "200");
	conn_schedule(call->conn);
}

void call_server_headers_done(struct rpc_call *call)
{
	if (call->status >= 0) {
		/* conn.c refused an oversized header list. */
		reject(call, call->status, call->message);
		return;
	}
	if (!call->grpc_ct) {
		/* Not gRPC: plain HTTP answer (PROTOCOL-HTTP2.md: 415). */
		call->bad_request = 1;
		call->finished = 1;
		call_set_status(call, GRPC_STATUS_INTERNAL, "unsupported content-type");
		submit_trailers_only(call, "415");
		conn_schedule(call->conn);
		return;
	}
	const struct rpc_opts *o = call->conn->opts;
	if (o->authorize) {
		char m[256] = "";
		int st = o->authorize(call, m, sizeof m, o->authorize_arg);
		if (st > 0) {
			reject(call, st, *m ? m : status_name(st));
			return;
		}
	}
	void *arg = NULL;
	const struct rpc_call_cbs *cbs =
		call->path ? server_find_method(call->conn->srv, call->path, &arg) : NULL;
	if (!cbs) {
		char m[256];
		const char *p = call->path ? call->path : "";
		const char *slash = p[0] == '/' ? strchr(p + 1, '/') : NULL;
		if (slash) {
			char svc[200];
			snprintf(svc, sizeof svc, "%.*s", (int)(slash - p - 1), p + 1);
			if (rpc_server_has_service(call->conn->srv, svc))
				snprintf(m, sizeof m, "unknown method %s for service %s", slash + 1,
					 svc);
			else
				snprintf(m, sizeof m, "unknown service %s", svc);
		} else {
			snprintf(m, sizeof m, "malformed method name %s", p);
		}
		reject(call, GRPC_STATUS_UNIMPLEMENTED, m);
		return;
	}
	if (call->bad_encoding) {
		reject(call, GRPC_STATUS_UNIMPLEMENTED, "unsupported grpc-encoding (accepted: "
							ACCEPT_ENCODING ")");
		return;
	}
	if (call->timeout_ms < 0) {
		reject(call, GRPC_STATUS_INTERNAL, "malformed grpc-timeout");
		return;
	}
	call->cbs = cbs;
	call->arg = arg;
	call_arm_deadline(call, call->conn->base);
	if (cbs->on_start) {
		int st = cbs->on_start(call, arg);
		if (st > 0 && !call->done)
			rpc_call_finish(call, st, status_name(st));
	}
}

void call_client_headers_done(struct rpc_call *call, int end_stream)
{
	if (!call->in_trailers) {
		if (end_stream) {
			/* Trailers-Only: what came is the trailer block. */
			struct meta t = call->recv_trailers;
			call->recv_trailers = call->recv_md;
			call->recv_md = t;
		} else if (call->cbs && call->cbs->on_headers) {
			call->cbs->on_headers(call, call->arg);
		}
	}
	if (!end_stream || call->done)
		return;
	/* The response is complete. rpc.h promises on_half_close here; and
	 * if our side is still open, PROTOCOL-HTTP2.md ("Early Server
	 * Closure") has the client reset the stream with NO_ERROR, which
	 * closes it, so on_done follows without waiting for the server. */
	if (call->cbs && call->cbs->on_half_close)
		call->cbs->on_half_close(call, call->arg);
	if (live(call) && !call->cancelled &&
	    !nghttp2_session_get_stream_local_close(call->conn->ng, call->stream_id)) {
		nghttp2_submit_rst_stream(call->conn->ng, NGHTTP2_FLAG_NONE, call->stream_id,
					  NGHTTP2_NO_ERROR);
		conn_schedule(call->conn);
	}
}

/* ---- end of stream -------------------------------------------------------- */

void call_stream_closed(struct rpc_call *call, uint32_t error_code)
{
	if (call->held && evbuffer_get_length(call->held)) {
		/* A client stream that ended cleanly keeps its order for a
		 * paused reader: the held messages, then the status, as it
		 * resumes (drain_held). Delivering them now would hand a
		 * reader messages it asked not to get yet, and a relay that
		 * paused because its own queue was full would have to drop
		 * them. Anything else (a reset, a server call, whose client
		 * can only have gone) ends now and drops what is held. */
		if (call->is_client && error_code == NGHTTP2_NO_ERROR && !call->done) {
			if (!drain_held(call))
				return;
			if (!call->done && call->held && evbuffer_get_length(call->held)) {
				call->close_pending = 1;
				call->close_error = error_code;
				return;
			}
		} else {
			evbuffer_drain(call->held, evbuffer_get_length(call->held));
		}
	}
	if (call->done)
		return;
	if (!call->is_client) {
		/* A client resets (CANCEL) when its deadline passes; when ours
		 * has passed too, that is what the handler is told. */
		if (!call->finished && error_code == NGHTTP2_CANCEL && call->deadline &&
		    rpc_now_ms() >= call->deadline)
			call_set_status(call, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
		else if (!call->finished)
			call_set_status(call, status_from_h2_error(error_code),
					error_code == NGHTTP2_CANCEL ? "Cancelled by client"
								     : "stream reset by client");
		call_end(call, call->status, call->message);
		return;
	}
	char m[96];
	if (call->status >= 0) {
		/* Our own verdict (deadline, cancel, local error) stands. */
	} else if (call->http_status && call->http_status != 200) {
		snprintf(m, sizeof m, "HTTP status %d", call->http_status);
		call_set_status(call, status_from_http(call->http_status), m);
	} else if (call->trailers_seen) {
		if (frame_reader_pending(&call->fr))
			call_set_status(call, GRPC_STATUS_INTERNAL, "truncated message");
		else {
			call_set_status(call, call->recv_status,
					call->recv_message ? call->recv_message : "");
			call->peer_status = 1;
		}
	} else if (error_code != NGHTTP2_NO_ERROR) {
		snprintf(m, sizeof m, "stream reset by server (HTTP/2 error %u)", error_code);
		call_set_status(call, status_from_h2_error(error_code), m);
	} else if (call->http_status == 200 && !call->grpc_ct) {
		call_set_status(call, GRPC_STATUS_UNKNOWN, "response is not gRPC");
	} else {
		call_set_status(call, GRPC_STATUS_INTERNAL, "server closed the stream without a status");
	}
	call_end(call, call->status, call->message);
}

void call_conn_lost(struct rpc_call *call, int status, const char *msg)
{
	struct conn *c = call->conn;
	if (!call->close_pending || call->done) {
		call_end(call, status, msg);
		return;
	}
	/* Its stream ended cleanly before the connection went (a server
	 * that shuts down right after answering): the held messages and the
	 * stream's status are all in the call already, and a relay that
	 * paused for its own slow reader must not lose them to an
	 * UNAVAILABLE. It lets go of the connection, which is being freed,
	 * and waits on its channel until the reader resumes (drain_held) or
	 * ends it. */
	DLIST_UNLINK(c->calls, call);
	c->ncalls--;
	call->conn = NULL;
	channel_keep_call(call->ch, call);
}

/* ---- deadlines ------------------------------------------------------------ */

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_call *call = arg;
	if (call->done)
		return;
	if (!call->is_client) {
		/* The handler hears of it in on_done. */
		if (!call->finished)
			rpc_call_finish(call, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
		return;
	}
	call_set_status(call, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
	if (!call->stream_id) {
		call_end(call, call->status, call->message);
		return;
	}
	call_abort(call, GRPC_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded");
}

void call_arm_deadline(struct rpc_call *call, struct event_base *base)
{
	if (call->timeout_ms <= 0 || call->deadline)
		return;
	call->deadline = rpc_now_ms() + call->timeout_ms;
	/* A pooled call keeps its timer: same loop, same call, same callback. */
	if (!call->deadline_ev)
		call->deadline_ev = evtimer_new(base, deadline_cb, call);
	struct timeval tv = {call->timeout_ms / 1000, (call->timeout_ms % 1000) * 1000};
	evtimer_add(call->deadline_ev, &tv);
}

/* ---- client submit --------------------------------------------------------- */

int call_client_submit(struct rpc_call *call, struct conn *c, const struct meta *defaults,
		       const struct meta *md)
{
	struct nvlist l;
	nv_init(&l);
	nv_lit(&l, ":method", "POST");
	nv_lit(&l, ":scheme", channel_is_tls(call->ch) ? "https" : "http");
	nv_lit(&l, ":path", call->path);
	nv_lit(&l, ":authority", channel_authority(call->ch));
	nv_lit(&l, "te", "trailers");
	nv_lit(&l, "content-type", "application/grpc");
	nv_lit(&l, "user-agent", USER_AGENT);
	nv_lit(&l, "grpc-accept-encoding", ACCEPT_ENCODING);
	if (call->compress)
		nv_lit(&l, "grpc-encoding", "gzip");
	if (call->deadline) {
		int64_t left = call->deadline - rpc_now_ms();
		size_t n = meta_timeout_format(left > 0 ? left : 1, l.timeout);
		nv_litn(&l, "grpc-timeout", l.timeout, n);
	}
	nv_add_md(&l, defaults, md);
	if (md)
		nv_add_md(&l, md, NULL);
	nghttp2_data_provider p = provider(call);
	int32_t id = nghttp2_submit_request(c->ng, NULL, l.v, l.n, &p, call);
	nv_free(&l);
	if (id < 0)
		return E_STATE;
	call->stream_id = id;
	call->conn = c;
	DLIST_PUSH(c->calls, call);
	c->ncalls++;
	conn_schedule(c);
	return 0;
}

/* ---- accessors -------------------------------------------------------------- */

const struct meta *rpc_call_recv_metadata(const struct rpc_call *call)
{
	/* Decoded on first use (see raw_keep); no call object is const
	 * itself, only this accessor's view of it. */
	struct rpc_call *c = (struct rpc_call *)call;
	for (size_t i = 0; i < c->nraw; i++) {
		nghttp2_vec n = nghttp2_rcbuf_get_buf(c->raw[i].name);
		nghttp2_vec v = nghttp2_rcbuf_get_buf(c->raw[i].value);
		add_custom(&c->recv_md, n.base, n.len, v.base, v.len);
	}
	raw_release(c);
	return &c->recv_md;
}

const struct meta *rpc_call_recv_trailers(const struct rpc_call *call)
{
	return &call->recv_trailers;
}

int rpc_call_add_metadata(struct rpc_call *call, const char *key, const void *val, size_t len)
{
	if (call->headers_sent || (call->stream_id > 0 && call->is_client))
		return E_STATE;
	meta_add(&call->send_md, key, strlen(key), val, len);
	return 0;
}

int rpc_call_add_trailer(struct rpc_call *call, const char *key, const void *val, size_t len)
{
	if (call->is_client || call->finished)
		return E_STATE;
	meta_add(&call->send_trailers, key, strlen(key), val, len);
	return 0;
}

void rpc_call_set_compress(struct rpc_call *call, int on)
{
	call->compress = on != 0;
}

int rpc_call_last_compressed(const struct rpc_call *call)
{
	return call->last_compressed;
}

int rpc_call_status_from_peer(const struct rpc_call *call)
{
	return call->peer_status;
}

const char *rpc_call_path(const struct rpc_call *call)
{
	return call->path ? call->path : "";
}

int64_t rpc_call_remaining_ms(const struct rpc_call *call)
{
	if (!call->deadline)
		return -1;
	int64_t left = call->deadline - rpc_now_ms();
	return left > 0 ? left : 0;
}

const char *rpc_call_peer(const struct rpc_call *call)
{
	return call->conn ? call->conn->peer : "";
}

void rpc_call_set_data(struct rpc_call *call, void *data)
{
	call->data = data;
}

void *rpc_call_data(const struct rpc_call *call)
{
	return call->data;
}
