/* serve: main loop of the test and bench servers (see serve.h). */
#include "serve.h"

#include <signal.h>
#include <stdio.h>

#include <event2/event.h>

#include "error.h"
#include "log.h"
#include "rpc.h"

struct serve {
	struct event_base *base;
	struct rpc_server *srv;
	int grace_ms;
};

struct event_base *serve_init(const char *prog)
{
	log_set_role(prog);
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	return event_base_new();
}

static void stopped(void *arg)
{
	struct serve *s = arg;
	event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct serve *s = arg;
	rpc_server_shutdown(s->srv, s->grace_ms, stopped, s);
}

int serve_run(struct event_base *base, struct rpc_server *srv, int port, int grace_ms,
              const char *prog)
{
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int bound = rpc_server_listen(srv, addr);
	if (bound < 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, addr, err_str(bound));
		rpc_server_del(srv);
		return 1;
	}
	printf("PORT %d\n", bound);
	fflush(stdout);
	struct serve s = {base, srv, grace_ms};
	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &s);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, &s);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_base_dispatch(base);
	event_free(sigterm);
	event_free(sigint);
	rpc_server_del(srv);
	return 0;
}
