/*
 * channel: the connecting side of rpc (see rpc.h). Owns one target, the
 * connection to it (plus any that drain after a GOAWAY), the calls that
 * wait for a connection, those that outlived theirs with messages still to
 * deliver (call_conn_lost), and reconnection with jittered exponential
 * backoff. While backing off, new calls fail fast with UNAVAILABLE unless
 * they asked to wait for ready.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>

#include "addr.h"
#include "dlist.h"
#include "error.h"
#include "log.h"
#include "rpc_int.h"
#include <openssl/err.h>
#include "xalloc.h"

struct rpc_channel {
	struct event_base *base;
	struct rpc_opts opts;
	char *target;
	struct addr addr;
	SSL_CTX *ssl_ctx;
	char *server_name;
	int insecure;
	enum rpc_channel_state state;
	struct conn *conn;	/* ready connection */
	struct conn *draining;	/* after GOAWAY, linked through next/prev */
	struct bufferevent *connecting;
	SSL *connecting_ssl;
	struct rpc_call *pending; /* calls waiting for a connection */
	struct rpc_call *kept;	  /* calls that outlived theirs (channel_keep_call) */
	struct event *retry_ev;
	struct event *connect_to_ev;
	int backoff_ms;
	char last_error[160];
	struct meta default_md; /* rpc_opts.default_md, copied */
	const struct meta *md;  /* &default_md, or the caller's if shared */
	void (*state_cb)(struct rpc_channel *, enum rpc_channel_state, void *);
	void *state_arg;
	struct call_pool pool;
};

static void set_state(struct rpc_channel *ch, enum rpc_channel_state st)
{
	if (ch->state == st)
		return;
	ch->state = st;
	if (ch->state_cb)
		ch->state_cb(ch, st, ch->state_arg);
}

/* The host a target names: for a unix socket "localhost", the authority
 * gRPC sends for one (and so the name its certificate must carry). */
static const char *authority_host(const struct rpc_channel *ch)
{
	return ch->addr.family == AF_UNIX ? "localhost" : ch->addr.host;
}

struct rpc_channel *rpc_channel_new(struct event_base *base, const char *target,
				    const struct rpc_opts *opts, int *err)
{
	struct rpc_channel *ch = xcalloc(1, sizeof *ch);
	ch->base = base;
	rpc_opts_fill(&ch->opts, opts);
	int rv = addr_parse(target, &ch->addr);
	if (rv == 0 && ch->addr.family != AF_UNIX && ch->addr.port == 0)
		rv = -EINVAL;
	if (rv != 0) {
		free(ch);
		if (err)
			*err = rv;
		return NULL;
	}
	if (ch->addr.family != AF_UNIX && !ch->addr.host[0])
		snprintf(ch->addr.host, sizeof ch->addr.host, "127.0.0.1");
	ch->target = xstrdup(target);
	meta_init(&ch->default_md);
	ch->md = &ch->default_md;
	if (ch->opts.default_md && ch->opts.default_md_shared)
		ch->md = ch->opts.default_md;
	else if (ch->opts.default_md)
		for (size_t i = 0; i < ch->opts.default_md->n; i++) {
			const struct meta_kv *kv = &ch->opts.default_md->v[i];
			meta_add(&ch->default_md, kv->key, kv->keylen, kv->val, kv->vallen);
		}
	ch->opts.default_md = NULL;
	if (ch->opts.tls) {
		const struct rpc_tls_opts *t = ch->opts.tls;
		ch->ssl_ctx = tls_client_ctx(t);
		ch->server_name = xstrdup(t->server_name ? t->server_name : authority_host(ch));
		ch->insecure = t->insecure;
		ch->opts.tls = NULL;
		if (!ch->ssl_ctx) {
			meta_free(&ch->default_md);
			free(ch->server_name);
			free(ch->target);
			free(ch);
			if (err)
				*err = E_UNSUPPORTED;
			return NULL;
		}
	}
	ch->retry_ev = evtimer_new(base, NULL, NULL);
	ch->connect_to_ev = evtimer_new(base, NULL, NULL);
	ch->backoff_ms = ch->opts.backoff_initial_ms;
	return ch;
}

static void fail_pending(struct rpc_channel *ch, int only_fail_fast, const char *why)
{
	for (struct rpc_call *call = ch->pending, *next; call; call = next) {
		next = call->next;
		if ((only_fail_fast && call->wait_for_ready) || call->status >= 0)
			continue;
		call_end_later(call, ch->base, GRPC_STATUS_UNAVAILABLE, why);
	}
}

void rpc_channel_del(struct rpc_channel *ch)
{
	if (!ch)
		return;
	ch->state_cb = NULL;
	if (ch->connecting)
		bufferevent_free(ch->connecting);
	while (ch->pending)
		call_end(ch->pending, GRPC_STATUS_CANCELLED, "channel closed");
	struct conn *all[2] = {ch->conn, ch->draining};
	for (int i = 0; i < 2; i++) {
		for (struct conn *c = all[i], *next; c; c = next) {
			next = i ? c->next : NULL;
			c->ch = NULL;
			conn_free(c, GRPC_STATUS_CANCELLED, "channel closed");
		}
	}
	/* After the connections: freeing one may keep a call. */
	while (ch->kept)
		call_end(ch->kept, GRPC_STATUS_CANCELLED, "channel closed");
	call_pool_free(&ch->pool);
	event_free(ch->retry_ev);
	event_free(ch->connect_to_ev);
	if (ch->ssl_ctx)
		SSL_CTX_free(ch->ssl_ctx);
	meta_free(&ch->default_md);
	free(ch->server_name);
	free(ch->target);
	free(ch);
}

/* ---- connecting -------------------------------------------------------- */

static void start_connect(struct rpc_channel *ch);

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	start_connect(arg);
}

static void connect_failed(struct rpc_channel *ch, const char *why)
{
	if (ch->connecting) {
		bufferevent_free(ch->connecting);
		ch->connecting = NULL;
	}
	event_del(ch->connect_to_ev);
	snprintf(ch->last_error, sizeof ch->last_error, "cannot reach %s: %s", ch->target, why);
	log_debug("connect_failed", "target=%s reason=%s retry_ms=%d", ch->target, log_quote(why),
		  ch->backoff_ms);
	fail_pending(ch, 1, ch->last_error);
	set_state(ch, RPC_CH_BACKOFF);
	/* Jitter of ±20 % keeps a fleet of workers from reconnecting in step. */
	int ms = ch->backoff_ms;
	ms += (int)((random() % (ms / 5 * 2 + 1)) - ms / 5);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_assign(ch->retry_ev, ch->base, -1, 0, retry_cb, ch);
	evtimer_add(ch->retry_ev, &tv);
	ch->backoff_ms = ch->backoff_ms * 2 > ch->opts.backoff_max_ms ? ch->opts.backoff_max_ms
								       : ch->backoff_ms * 2;
}

/* md: the call's own metadata (borrowed until the submit returns). */
static void submit(struct rpc_channel *ch, struct rpc_call *call, struct conn *c,
		   const struct meta *md)
{
	if (call_client_submit(call, c, ch->md, md) != 0) {
		DLIST_PUSH(ch->pending, call);
		call_end_later(call, ch->base, GRPC_STATUS_UNAVAILABLE, "cannot start stream");
	}
}

static void connected(struct rpc_channel *ch)
{
	struct bufferevent *bev = ch->connecting;
	SSL *ssl = ch->connecting_ssl;
	ch->connecting = NULL;
	event_del(ch->connect_to_ev);
	if (ssl && !tls_alpn_is_h2(ssl)) {
		ch->connecting = bev;
		connect_failed(ch, "server did not negotiate h2 (ALPN)");
		return;
	}
	ch->conn = conn_new(ch->base, bev, ssl, &ch->opts, NULL, ch, ch->target);
	ch->backoff_ms = ch->opts.backoff_initial_ms;
	conn_start_io(ch->conn);
	set_state(ch, RPC_CH_READY);
	for (struct rpc_call *call = ch->pending, *next; call && ch->conn && !ch->conn->dead;
	     call = next) {
		next = call->next;
		if (call->status >= 0)
			continue; /* already failed, its end is on its way */
		DLIST_UNLINK(ch->pending, call);
		submit(ch, call, ch->conn, &call->send_md);
	}
}

static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct rpc_channel *ch = arg;
	if (what & BEV_EVENT_CONNECTED) {
		connected(ch);
		return;
	}
	const char *why = "connection closed";
	char buf[160];
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = ch->connecting_ssl ? bufferevent_get_openssl_error(bev) : 0;
		if (e) {
			why = tls_error_string(e, buf, sizeof buf);
			/* Certificates that do not match are a configuration
			 * error, not a network blip: say so loudly. */
			log_warn("tls_failed", "target=%s reason=%s", ch->target, log_quote(why));
		} else if (EVUTIL_SOCKET_ERROR()) {
			why = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
		}
	}
	connect_failed(ch, why);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	connect_failed(arg, "connect timeout");
}

static void start_connect(struct rpc_channel *ch)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (ch->connecting || ch->conn)
		return;
	event_del(ch->retry_ev);
	set_state(ch, RPC_CH_CONNECTING);
	int rv = addr_resolve(&ch->addr, 0, &ss, &len);
	if (rv != 0) {
		connect_failed(ch, addr_strerror(rv));
		return;
	}
	ch->connecting_ssl = NULL;
	if (ch->ssl_ctx) {
		ch->connecting_ssl = tls_client_ssl(ch->ssl_ctx, ch->server_name, ch->insecure);
		ch->connecting = bufferevent_openssl_socket_new(
			ch->base, -1, ch->connecting_ssl, BUFFEREVENT_SSL_CONNECTING,
			BEV_OPT_CLOSE_ON_FREE);
	} else {
		ch->connecting = bufferevent_socket_new(ch->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	bufferevent_setcb(ch->connecting, NULL, NULL, connect_event_cb, ch);
	if (bufferevent_socket_connect(ch->connecting, (struct sockaddr *)&ss, (int)len) != 0) {
		connect_failed(ch, strerror(errno));
		return;
	}
	int ms = ch->opts.connect_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_assign(ch->connect_to_ev, ch->base, -1, 0, connect_timeout_cb, ch);
	evtimer_add(ch->connect_to_ev, &tv);
}

void rpc_channel_connect(struct rpc_channel *ch)
{
	if (ch->state == RPC_CH_IDLE || ch->state == RPC_CH_BACKOFF)
		start_connect(ch);
}

/* ---- connection events (from conn.c) ------------------------------------ */


void channel_conn_goaway(struct rpc_channel *ch, struct conn *c)
{
	if (ch->conn != c)
		return;
	ch->conn = NULL;
	DLIST_PUSH(ch->draining, c);
	set_state(ch, RPC_CH_IDLE);
	if (ch->pending)
		start_connect(ch);
}

void channel_conn_closed(struct rpc_channel *ch, struct conn *c, int status, const char *msg)
{
	if (ch->conn != c) {
		DLIST_UNLINK(ch->draining, c);
		return;
	}
	ch->conn = NULL;
	log_debug("channel_disconnected", "target=%s reason=%s", ch->target, log_quote(msg));
	/* A connection that was up is retried after the initial backoff. */
	ch->backoff_ms = ch->opts.backoff_initial_ms;
	connect_failed(ch, msg);
}

const char *channel_authority(const struct rpc_channel *ch)
{
	return ch->addr.family == AF_UNIX ? authority_host(ch) : ch->target;
}

int channel_is_tls(const struct rpc_channel *ch)
{
	return ch->ssl_ctx != NULL;
}

struct event_base *channel_base(const struct rpc_channel *ch)
{
	return ch->base;
}

struct call_pool *channel_call_pool(struct rpc_channel *ch)
{
	return &ch->pool;
}

void channel_keep_call(struct rpc_channel *ch, struct rpc_call *call)
{
	DLIST_PUSH(ch->kept, call);
}

void channel_forget_call(struct rpc_channel *ch, struct rpc_call *call)
{
	/* Only a kept call has a stream (rpc_int.h, struct rpc_call). */
	if (call->stream_id)
		DLIST_UNLINK(ch->kept, call);
	else
		DLIST_UNLINK(ch->pending, call);
}

enum rpc_channel_state rpc_channel_state(const struct rpc_channel *ch)
{
	return ch->state;
}

void rpc_channel_set_state_cb(struct rpc_channel *ch,
			      void (*cb)(struct rpc_channel *ch, enum rpc_channel_state st, void *arg),
			      void *arg)
{
	ch->state_cb = cb;
	ch->state_arg = arg;
}

/* ---- calls ---------------------------------------------------------------- */

struct rpc_call *rpc_call_start(struct rpc_channel *ch, const char *path,
				const struct rpc_call_cbs *cbs, void *arg,
				const struct rpc_call_opts *opts)
{
	struct rpc_call *call = call_new(&ch->pool, NULL, 1, &ch->opts);
	call->ch = ch;
	call->cbs = cbs;
	call->arg = arg;
	call_set_path(call, path, strlen(path));
	const struct meta *md = opts ? opts->metadata : NULL;
	if (opts) {
		call->timeout_ms = opts->timeout_ms;
		call->compress = opts->compress != 0;
		call->wait_for_ready = opts->wait_for_ready != 0;
	}
	call_arm_deadline(call, ch->base);
	if (ch->conn && !ch->conn->dead) {
		/* nghttp2 copies the headers: the metadata need not be. */
		submit(ch, call, ch->conn, md);
		return call;
	}
	/* Every call without a stream sits in pending, even one that is
	 * failing fast, so rpc_channel_del can always find it. */
	if (md)
		for (size_t i = 0; i < md->n; i++) {
			const struct meta_kv *kv = &md->v[i];
			meta_add(&call->send_md, kv->key, kv->keylen, kv->val, kv->vallen);
		}
	DLIST_PUSH(ch->pending, call);
	if (ch->state == RPC_CH_BACKOFF && !call->wait_for_ready) {
		call_end_later(call, ch->base, GRPC_STATUS_UNAVAILABLE, ch->last_error);
		return call;
	}
	if (ch->state == RPC_CH_IDLE)
		start_connect(ch);
	return call;
}
