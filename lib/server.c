/*
 * server: the listening side of rpc (see rpc.h). Owns listeners (and the
 * socket files of unix ones), the method table, the list of accepted
 * connections and graceful shutdown. What a request means is decided per
 * call in call.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "addr.h"
#include "dlist.h"
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
/* Mode of a unix listener's socket file: connecting needs write access,
 * given to the owner and its group; the directory decides who reaches it. */
#define UNIX_SOCKET_MODE 0660

struct listener {
	struct evconnlistener *l;
	char *path; /* a unix listener's socket file, removed with it; else NULL */
	dev_t dev;  /* the file we created, so a successor's is never removed */
	ino_t ino;
};

struct rpc_server {
	struct event_base *base;
	struct rpc_opts opts;
	SSL_CTX *ssl_ctx;
	struct method *methods; /* open addressing, power-of-two size */
	size_t nmethods, cap;
	struct listener lis[MAX_LISTENERS];
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

static void close_listeners(struct rpc_server *srv)
{
	for (int i = 0; i < srv->nlis; i++) {
		struct listener *li = &srv->lis[i];
		struct stat st;
		evconnlistener_free(li->l);
		if (li->path && lstat(li->path, &st) == 0 && st.st_dev == li->dev &&
		    st.st_ino == li->ino)
			unlink(li->path);
		free(li->path);
	}
	srv->nlis = 0;
}

void rpc_server_del(struct rpc_server *srv)
{
	if (!srv)
		return;
	close_listeners(srv);
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
	DLIST_PUSH(srv->conns, c);
	srv->nconns++;
	log_debug("conn_accepted", "peer=%s tls=%d", peer, ssl != NULL);
	conn_start_io(c);
	return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	char peer[64];
	rpc_server_adopt(arg, fd, addr_format(sa, peer, sizeof peer));
}

void server_conn_closed(struct rpc_server *srv, struct conn *c)
{
	DLIST_UNLINK(srv->conns, c);
	srv->nconns--;
	if (srv->shutting_down && srv->nconns == 0 && srv->done) {
		void (*done)(void *) = srv->done;
		srv->done = NULL;
		if (srv->grace_ev)
			event_del(srv->grace_ev);
		done(srv->done_arg);
	}
}

/* A socket file at a's path is left by a listener that died without
 * removing it when nobody answers there: it is removed. Anything else at
 * the path stays. Returns 0 (the path is free), -EADDRINUSE (a listener
 * answers), -ENOTSOCK (not a socket) or another -errno. */
static int clear_stale(const struct addr *a)
{
	struct stat st;
	if (lstat(a->un.sun_path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rv = connect(fd, (const struct sockaddr *)&a->un, a->unlen);
	int e = rv == 0 ? 0 : errno;
	close(fd);
	if (e == 0 || e == EAGAIN) /* EAGAIN: alive, its backlog full */
		return -EADDRINUSE;
	if (e != ECONNREFUSED)
		return -e;
	return unlink(a->un.sun_path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* A bound unix socket for a, its file (if any) recorded in li. Returns
 * the descriptor or a negative error (as clear_stale, or -errno). */
static int bind_unix(const struct addr *a, struct listener *li)
{
	int path = addr_is_unix_path(a);
	int rv = path ? clear_stale(a) : 0;
	if (rv)
		return rv;
	/* Non-blocking, as the listener accepts until EAGAIN. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)&a->un, a->unlen) != 0) {
		rv = -errno;
		close(fd);
		return rv;
	}
	struct stat st;
	/* Before listen(), so nobody connects while the mode is the umask's. */
	if (path && (chmod(a->un.sun_path, UNIX_SOCKET_MODE) != 0 ||
		     lstat(a->un.sun_path, &st) != 0)) {
		rv = -errno;
		unlink(a->un.sun_path);
		close(fd);
		return rv;
	}
	if (path) {
		li->path = xstrdup(a->un.sun_path);
		li->dev = st.st_dev;
		li->ino = st.st_ino;
	}
	return fd;
}

int rpc_server_listen(struct rpc_server *srv, const char *s)
{
	struct addr a;
	struct sockaddr_storage ss;
	socklen_t len;
	if (srv->nlis == MAX_LISTENERS)
		return E_TOOBIG;
	int rv = addr_parse(s, &a);
	if (rv != 0)
		return rv;
	struct listener *li = &srv->lis[srv->nlis];
	*li = (struct listener){0};
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	int fd = -1;
	if (a.family == AF_UNIX) {
		fd = bind_unix(&a, li);
		if (fd < 0)
			return fd;
		li->l = evconnlistener_new(srv->base, accept_cb, srv, flags, 511, fd);
	} else {
		if (addr_resolve(&a, 1, &ss, &len) != 0)
			return -EADDRNOTAVAIL;
		li->l = evconnlistener_new_bind(srv->base, accept_cb, srv,
						flags | LEV_OPT_REUSEABLE, 511,
						(struct sockaddr *)&ss, (int)len);
	}
	if (!li->l) {
		rv = -errno;
		if (li->path)
			unlink(li->path);
		free(li->path);
		if (fd >= 0) /* a failed evconnlistener_new leaves it open */
			close(fd);
		return rv;
	}
	srv->nlis++;
	if (a.family == AF_UNIX)
		return 0;
	len = sizeof ss;
	getsockname(evconnlistener_get_fd(li->l), (struct sockaddr *)&ss, &len);
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
	close_listeners(srv);
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
