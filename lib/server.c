/*
 * server: the listening side of rpc (see rpc.h). Owns listeners, the
 * method table, the list of accepted connections and graceful shutdown.
 * What a request means is decided per call in call.c.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "addr.h"
#include "error.h"
#include "log.h"
#include "rpc_int.h"
#include "xalloc.h"

struct method {
	char *path;
	const struct rpc_call_cbs *cbs;
	void *arg;
};

#define MAX_LISTENERS 8

struct rpc_server {
	struct event_base *base;
	struct rpc_opts opts;
	SSL_CTX *ssl_ctx;
	struct method *methods; /* open addressing, power-of-two size */
	size_t nmethods, cap;
	struct evconnlistener *lis[MAX_LISTENERS];
	int nlis;
	struct conn *conns;
	size_t nconns;
	int shutting_down;
	struct event *grace_ev;
	void (*done)(void *arg);
	void *done_arg;
	struct call_pool pool;
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct rpc_server *rpc_server_new(struct event_base *base, const struct rpc_opts *opts, int *err)
{
	struct rpc_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	rpc_opts_fill(&srv->opts, opts);
	if (srv->opts.tls) {
		srv->ssl_ctx = tls_server_ctx(srv->opts.tls);
		srv->opts.tls = NULL; /* the context holds all we need */
		if (!srv->ssl_ctx) {
			free(srv);
			if (err)
				*err = E_UNSUPPORTED;
			return NULL;
		}
	}
	srv->cap = 64;
	srv->methods = xcalloc(srv->cap, sizeof *srv->methods);
	return srv;
}

void rpc_server_del(struct rpc_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; i < srv->nlis; i++)
		evconnlistener_free(srv->lis[i]);
	srv->nlis = 0;
	srv->done = NULL;
	while (srv->conns)
		conn_free(srv->conns, GRPC_STATUS_UNAVAILABLE, "server stopped");
	call_pool_free(&srv->pool);
	if (srv->grace_ev)
		event_free(srv->grace_ev);
	for (size_t i = 0; i < srv->cap; i++)
		free(srv->methods[i].path);
	free(srv->methods);
	if (srv->ssl_ctx)
		SSL_CTX_free(srv->ssl_ctx);
	free(srv);
}

static struct method *slot(struct rpc_server *srv, const char *path)
{
	size_t mask = srv->cap - 1;
	for (size_t i = hash(path) & mask;; i = (i + 1) & mask) {
		struct method *m = &srv->methods[i];
		if (!m->path || strcmp(m->path, path) == 0)
			return m;
	}
}

int rpc_server_add_method(struct rpc_server *srv, const char *path, const struct rpc_call_cbs *cbs,
			  void *arg)
{
	if (srv->nmethods * 2 >= srv->cap) {
		struct method *old = srv->methods;
		size_t oldcap = srv->cap;
		srv->cap *= 2;
		srv->methods = xcalloc(srv->cap, sizeof *srv->methods);
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].path)
				*slot(srv, old[i].path) = old[i];
		free(old);
	}
	struct method *m = slot(srv, path);
	if (m->path)
		return E_STATE;
	m->path = xstrdup(path);
	m->cbs = cbs;
	m->arg = arg;
	srv->nmethods++;
	return 0;
}

const struct rpc_call_cbs *server_find_method(struct rpc_server *srv, const char *path, void **arg)
{
	struct method *m = slot(srv, path);
	if (!m->path)
		return NULL;
	*arg = m->arg;
	return m->cbs;
}

/* The service part of "/svc/Method", compared with svc. */
static int in_service(const char *path, const char *svc)
{
	size_t n = strlen(svc);
	return path[0] == '/' && strncmp(path + 1, svc, n) == 0 && path[n + 1] == '/';
}

int rpc_server_has_service(const struct rpc_server *srv, const char *service)
{
	for (size_t i = 0; i < srv->cap; i++)
		if (srv->methods[i].path && in_service(srv->methods[i].path, service))
			return 1;
	return 0;
}

void rpc_server_foreach_service(const struct rpc_server *srv,
				void (*fn)(const char *service, void *arg), void *arg)
{
	for (size_t i = 0; i < srv->cap; i++) {
		const char *p = srv->methods[i].path;
		if (!p)
			continue;
		const char *slash = strchr(p + 1, '/');
		if (!slash)
			continue;
		char svc[256];
		snprintf(svc, sizeof svc, "%.*s", (int)(slash - p - 1), p + 1);
		/* Report a service at its first slot only. */
		size_t first = i;
		for (size_t j = 0; j < srv->cap; j++) {
			if (srv->methods[j].path && in_service(srv->methods[j].path, svc)) {
				first = j;
				break;
			}
		}
		if (first == i)
			fn(svc, arg);
	}
}

int rpc_server_adopt(struct rpc_server *srv, int fd, const char *peer)
{
	if (srv->shutting_down || srv->nconns >= srv->opts.max_conns) {
		log_warn("conn_refused", "peer=%s reason=%s", peer,
			 srv->shutting_down ? "shutting_down" : "max_conns");
		close(fd);
		return E_TOOBIG;
	}
	evutil_make_socket_nonblocking(fd);
	struct bufferevent *bev;
	SSL *ssl = NULL;
	if (srv->ssl_ctx) {
		ssl = SSL_new(srv->ssl_ctx);
		bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
	} else {
		bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	struct conn *c = conn_new(srv->base, bev, ssl, &srv->opts, srv, NULL, peer);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	log_debug("conn_accepted", "peer=%s tls=%d", peer, ssl != NULL);
	conn_start_io(c);
	return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	char peer[64];
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	rpc_server_adopt(arg, fd, addr_format(sa, peer, sizeof peer));
}

void server_conn_closed(struct rpc_server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	if (srv->shutting_down && srv->nconns == 0 && srv->done) {
		void (*done)(void *) = srv->done;
		srv->done = NULL;
		if (srv->grace_ev)
			event_del(srv->grace_ev);
		done(srv->done_arg);
	}
}

int rpc_server_listen(struct rpc_server *srv, const char *addr)
{
	char host[256];
	int port;
	struct sockaddr_storage ss;
	socklen_t len;
	if (srv->nlis == MAX_LISTENERS)
		return E_TOOBIG;
	if (addr_parse(addr, host, sizeof host, &port) != 0)
		return -EINVAL;
	int rv = addr_resolve(host, port, 1, &ss, &len);
	if (rv != 0)
		return -EADDRNOTAVAIL;
	struct evconnlistener *l =
		evconnlistener_new_bind(srv->base, accept_cb, srv,
					LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						LEV_OPT_CLOSE_ON_EXEC,
					511, (struct sockaddr *)&ss, (int)len);
	if (!l)
		return -errno;
	srv->lis[srv->nlis++] = l;
	len = sizeof ss;
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len);
	return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					: ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rpc_server *srv = arg;
	log_info("shutdown_grace_over", "conns=%zu", srv->nconns);
	while (srv->conns)
		conn_free(srv->conns, GRPC_STATUS_UNAVAILABLE, "server shutting down");
}

void rpc_server_shutdown(struct rpc_server *srv, int grace_ms, void (*done)(void *arg), void *arg)
{
	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	for (int i = 0; i < srv->nlis; i++)
		evconnlistener_free(srv->lis[i]);
	srv->nlis = 0;
	srv->done = done;
	srv->done_arg = arg;
	if (srv->nconns == 0) {
		srv->done = NULL;
		if (done)
			done(arg);
		return;
	}
	for (struct conn *c = srv->conns; c; c = c->next)
		conn_goaway(c);
	srv->grace_ev = evtimer_new(srv->base, grace_cb, srv);
	struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
	evtimer_add(srv->grace_ev, &tv);
}

struct call_pool *server_call_pool(struct rpc_server *srv)
{
	return &srv->pool;
}

size_t rpc_server_conn_count(const struct rpc_server *srv)
{
	return srv->nconns;
}
