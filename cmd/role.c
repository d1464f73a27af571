/* role: the run loop every role shares (see cmd.h). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "cmd.h"
#include "error.h"
#include "log.h"

void cmd_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "orchd %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cmd_parse(const char *cmd, const char *synopsis, const struct opt *opts, int argc, char **argv)
{
	char err[256];
	int n = opt_parse(opts, argc, argv, err, sizeof err);
	if (n == OPT_HELP) {
		opt_usage(stdout, cmd, synopsis, opts);
		return -1 - EXIT_OK;
	}
	if (n < 0) {
		cmd_error(cmd, "%s", err);
		return -1 - EXIT_USAGE;
	}
	return n;
}

int role_init(struct role *r, const char *name, const struct role_flags *f,
	      const struct rpc_opts *opts, const char *const *services)
{
	memset(r, 0, sizeof *r);
	r->name = name;
	r->grace_ms = f->grace_ms > 0 ? f->grace_ms : 10000;
	log_set_role(name);
	if (f->log_level) {
		enum log_level lv;
		if (log_parse_level(f->log_level, &lv) != 0) {
			cmd_error(name, "unknown log level '%s' (debug, info, warn, error)",
				  f->log_level);
			return EXIT_USAGE;
		}
		log_set_level(lv);
	}
	signal(SIGPIPE, SIG_IGN);
	r->base = event_base_new();
	/* Three priorities: rpc events run at the middle one, so a role can
	 * run work after everything else of a loop turn at the lowest. */
	event_base_priority_init(r->base, 3);
	int err = 0;
	r->srv = rpc_server_new(r->base, opts, &err);
	if (!r->srv) {
		cmd_error(name, "cannot set up the server: %s", err_str(err));
		return EXIT_FAIL;
	}
	r->health = health_new(r->srv, name, services);
	/* Reflection lists whatever is registered when asked, so the role's
	 * own services, added after role_init, are included. */
	r->reflect = reflect_new(r->srv, reflect_orchd_set, reflect_orchd_set_len, &err);
	if (!r->reflect) {
		cmd_error(name, "cannot index the embedded descriptors: %s", err_str(err));
		return EXIT_FAIL;
	}
	int port = rpc_server_listen(r->srv, f->listen);
	if (port < 0) {
		cmd_error(name, "cannot listen on %s: %s", f->listen, err_str(port));
		return EXIT_FAIL;
	}
	r->port = port;
	/* Tests and scripts read the bound port (--listen with port 0). */
	printf("PORT %d\n", port);
	fflush(stdout);
	log_info("listening", "addr=%s port=%d version=%s", f->listen, port, ORCHD_VERSION);
	return 0;
}

static void drained(void *arg)
{
	struct role *r = arg;
	event_base_loopbreak(r->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct role *r = arg;
	log_info("shutdown", "signal=%d grace_ms=%lld", (int)sig, (long long)r->grace_ms);
	event_del(r->sig[0]);
	event_del(r->sig[1]);
	health_set_serving(r->health, 0);
	r->stopping = 1;
	if (r->on_stop)
		r->on_stop(r->stop_arg);
	if (!r->hold && !r->shut) {
		r->shut = 1;
		rpc_server_shutdown(r->srv, (int)r->grace_ms, drained, r);
	}
}

void role_release(struct role *r)
{
	r->hold = 0;
	if (r->stopping && !r->shut) {
		r->shut = 1;
		rpc_server_shutdown(r->srv, (int)r->grace_ms, drained, r);
	}
}

int role_run(struct role *r)
{
	r->sig[0] = evsignal_new(r->base, SIGTERM, on_signal, r);
	r->sig[1] = evsignal_new(r->base, SIGINT, on_signal, r);
	event_add(r->sig[0], NULL);
	event_add(r->sig[1], NULL);
	event_base_dispatch(r->base);
	log_info("stopped", NULL);
	return EXIT_OK;
}

void role_free(struct role *r)
{
	health_del(r->health);
	rpc_server_del(r->srv);
	reflect_del(r->reflect); /* its calls ended with the server */
	for (int i = 0; i < 2; i++)
		if (r->sig[i])
			event_free(r->sig[i]);
	if (r->base)
		event_base_free(r->base);
	memset(r, 0, sizeof *r);
}
