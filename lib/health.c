/* health: grpc.health.v1.Health and orchestrator.v1 HealthCheck (see health.h). */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "orchestrator/v1/orchestrator.pb-c.h"
#include "pb.h"
#include "xalloc.h"

struct watcher {
	struct rpc_call *call;
	char *service;
	struct watcher *next;
};

struct health {
	const char *role;
	int serving;
	int64_t started_ms;
	char **services; /* the services we answer for, NULL-terminated */
	struct watcher *watchers;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The standard status of one service: "" is the whole server. */
static int status_of(const struct health *h, const char *service, int *known)
{
	*known = !service || !*service;
	for (char **s = h->services; !*known && *s; s++)
		*known = strcmp(*s, service) == 0;
	if (!*known)
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	return h->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void send_status(struct rpc_call *call, int st)
{
	Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = st;
	pb_send(call, &r.base, 0);
}

static int check_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct health *h = arg;
	Grpc__Health__V1__HealthCheckRequest *req =
		grpc__health__v1__health_check_request__unpack(NULL, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	int known;
	int st = status_of(h, req->service, &known);
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	if (!known) {
		rpc_call_finish(call, GRPC_STATUS_NOT_FOUND, "unknown service");
		return 0;
	}
	send_status(call, st);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
	return 0;
}

static int watch_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct health *h = arg;
	if (rpc_call_data(call))
		return GRPC_STATUS_INVALID_ARGUMENT; /* one request per Watch */
	Grpc__Health__V1__HealthCheckRequest *req =
		grpc__health__v1__health_check_request__unpack(NULL, len, msg);
	if (!req)
		return GRPC_STATUS_INVALID_ARGUMENT;
	struct watcher *w = xcalloc(1, sizeof *w);
	w->call = call;
	w->service = xstrdup(req->service ? req->service : "");
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
	w->next = h->watchers;
	h->watchers = w;
	rpc_call_set_data(call, w);
	int known;
	/* Watch answers SERVICE_UNKNOWN instead of failing (health-checking.md). */
	send_status(call, status_of(h, w->service, &known));
	return 0;
}

static void watch_done(struct rpc_call *call, int status, const char *message, void *arg)
{
	struct health *h = arg;
	struct watcher *w = rpc_call_data(call);
	if (!w)
		return;
	for (struct watcher **p = &h->watchers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w->service);
	free(w);
}

static int role_check_msg(struct rpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
	struct health *h = arg;
	Orchestrator__V1__HealthCheckResponse r = ORCHESTRATOR__V1__HEALTH_CHECK_RESPONSE__INIT;
	r.status = h->serving ? ORCHESTRATOR__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
			      : ORCHESTRATOR__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	r.role = (char *)h->role;
	r.version = (char *)ORCHD_VERSION;
	r.uptime_ms = now_ms() - h->started_ms;
	pb_reply(call, &r.base);
	return 0;
}

static const struct rpc_call_cbs check_cbs = {.on_message = check_msg};
static const struct rpc_call_cbs watch_cbs = {.on_message = watch_msg, .on_done = watch_done};
static const struct rpc_call_cbs role_cbs = {.on_message = role_check_msg};

struct health *health_new(struct rpc_server *srv, const char *role, const char *const *services)
{
	struct health *h = xcalloc(1, sizeof *h);
	h->role = role;
	h->serving = 1;
	h->started_ms = now_ms();
	size_t n = 0;
	while (services && services[n])
		n++;
	h->services = xcalloc(n + 1, sizeof *h->services);
	for (size_t i = 0; i < n; i++) {
		char path[256];
		h->services[i] = xstrdup(services[i]);
		snprintf(path, sizeof path, "/%s/HealthCheck", services[i]);
		rpc_server_add_method(srv, path, &role_cbs, h);
	}
	rpc_server_add_method(srv, "/grpc.health.v1.Health/Check", &check_cbs, h);
	rpc_server_add_method(srv, "/grpc.health.v1.Health/Watch", &watch_cbs, h);
	return h;
}

void health_set_serving(struct health *h, int serving)
{
	if (h->serving == (serving != 0))
		return;
	h->serving = serving != 0;
	for (struct watcher *w = h->watchers; w; w = w->next) {
		int known;
		send_status(w->call, status_of(h, w->service, &known));
	}
}

int health_serving(const struct health *h)
{
	return h->serving;
}

void health_del(struct health *h)
{
	if (!h)
		return;
	while (h->watchers) {
		struct watcher *w = h->watchers;
		/* Detach first: the call's on_done must not find us. */
		h->watchers = w->next;
		rpc_call_set_data(w->call, NULL);
		rpc_call_finish(w->call, GRPC_STATUS_UNAVAILABLE, "shutting down");
		free(w->service);
		free(w);
	}
	for (char **s = h->services; *s; s++)
		free(*s);
	free(h->services);
	free(h);
}
