/* role: the run loop every role shares (see cmd.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "addr.h"
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

int cmd_check_addr(const char *cmd, const char *what, const char *addr, int dial)
{
	struct addr a;
	int rv = addr_parse(addr, &a);
	if (rv == 0 && dial && a.family != AF_UNIX && a.port == 0)
		rv = -EINVAL;
	if (rv == 0)
		return 0;
	cmd_error(cmd, "invalid %s address '%s': %s", what, addr, addr_parse_strerror(rv));
	return EXIT_USAGE;
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

/* ---- TLS and tokens, shared with the client commands ---------------------- */

const struct rpc_tls_opts *cmd_tls_dial(const struct tls_flags *f, struct rpc_tls_opts *t)
{
	if (!f->on && !f->ca && !f->cert)
		return NULL;
	*t = (struct rpc_tls_opts){.cert_file = f->cert,
				   .key_file = f->key,
				   .ca_file = f->ca,
				   .server_name = f->server_name};
	return t;
}

int cmd_tls_check(const char *cmd, const struct tls_flags *f)
{
	const char *alone = f->key ? "--tls-key" : f->client_ca ? "--tls-client-ca" : NULL;
	if (!f->cert && alone) {
		cmd_error(cmd, "%s needs --tls-cert", alone);
		return EXIT_USAGE;
	}
	return 0;
}

/* Warns when a token file is readable by others: it holds secrets. */
static void warn_exposed(const char *file)
{
	struct stat st;
	if (stat(file, &st) == 0 && (st.st_mode & 077))
		log_warn("token_file_exposed", "file=%s mode=%04o hint=%s", log_quote(file),
			 (unsigned)(st.st_mode & 07777), log_quote("chmod 600 it"));
}

/* Loads a token file into a (reported as cmd's error on failure). Returns
 * 0 or EXIT_USAGE. */
static int load_tokens(const char *cmd, struct auth *a, const char *file)
{
	char err[512];
	if (auth_load_file(a, file, err, sizeof err) < 0) {
		cmd_error(cmd, "%s", err);
		return EXIT_USAGE;
	}
	warn_exposed(file);
	return 0;
}

int cmd_token_md(const char *cmd, const char *file, const char *env, struct meta *md)
{
	const char *tok = env ? getenv(env) : NULL;
	if (!file && !(tok && *tok))
		return 0;
	struct auth *a = auth_new(0);
	int rc = 0;
	if (file) {
		rc = load_tokens(cmd, a, file);
	} else if (auth_add_token(a, tok, strlen(tok)) != 0) {
		cmd_error(cmd, "%s is not a token (1..%d printable ASCII characters, no blanks)",
			  env, AUTH_TOKEN_MAX);
		rc = EXIT_USAGE;
	}
	if (rc == 0)
		auth_bearer_md(md, auth_first(a));
	auth_del(a);
	return rc;
}

/* The listener's options: opts with the flags' TLS, tokens and limits.
 * srv_tls is where the TLS options live. Returns 0 or an exit code. */
static int listen_opts(struct role *r, const struct role_flags *f, struct rpc_opts *so,
		       struct rpc_tls_opts *srv_tls)
{
	if (f->max_conns < 0 || f->max_streams < 0) {
		cmd_error(r->name, "--max-conns and --max-streams cannot be negative");
		return EXIT_USAGE;
	}
	if (f->max_conns > 0)
		so->max_conns = (uint32_t)f->max_conns;
	if (f->max_streams > 0)
		so->max_streams = (uint32_t)f->max_streams;
	if (f->max_recv_msg > 0)
		so->max_recv_msg = f->max_recv_msg;
	int rc = cmd_tls_check(r->name, &f->tls);
	if (rc)
		return rc;
	if (f->tls.cert) {
		*srv_tls = (struct rpc_tls_opts){.cert_file = f->tls.cert,
						 .key_file = f->tls.key,
						 .ca_file = f->tls.client_ca};
		so->tls = srv_tls;
	}
	r->dial_tls_on = cmd_tls_dial(&f->tls, &r->dial_tls) != NULL;
	meta_init(&r->auth_md);
	if (f->auth_health && !f->token_file) {
		cmd_error(r->name, "--auth-health needs --auth-token-file");
		return EXIT_USAGE;
	}
	if (f->token_file) {
		r->auth = auth_new(f->auth_health);
		rc = load_tokens(r->name, r->auth, f->token_file);
		if (rc)
			return rc;
		so->authorize = auth_authorize;
		so->authorize_arg = r->auth;
		r->token_file = f->token_file;
		auth_bearer_md(&r->auth_md, auth_first(r->auth));
	}
	return 0;
}

void role_dial_opts(const struct role *r, struct rpc_opts *o)
{
	o->tls = r->dial_tls_on ? &r->dial_tls : NULL;
	o->default_md = r->auth_md.n ? &r->auth_md : NULL;
	/* Shared, not copied: a reload changes the token we present. */
	o->default_md_shared = 1;
}

/* SIGHUP: re-reads the token file, which both the listener's tokens and
 * the one we present come from. A file that does not load changes
 * nothing: a bad edit must not lock every client and peer out. */
static void reload_tokens(struct role *r)
{
	if (!r->auth) {
		log_info("tokens_reload_skipped", "reason=%s", log_quote("no --auth-token-file"));
		return;
	}
	char err[512];
	int n = auth_reload_file(r->auth, r->token_file, err, sizeof err);
	if (n < 0) {
		log_error("tokens_reload_failed", "file=%s error=%s tokens_kept=%zu",
			  log_quote(r->token_file), log_quote(err), auth_count(r->auth));
		return;
	}
	warn_exposed(r->token_file);
	meta_free(&r->auth_md);
	auth_bearer_md(&r->auth_md, auth_first(r->auth));
	log_info("tokens_reloaded", "file=%s tokens=%d", log_quote(r->token_file), n);
}

/* ---- the role's life ---------------------------------------------------------- */

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
	if (cmd_check_addr(name, "--listen", f->listen, 0))
		return EXIT_USAGE;
	struct rpc_opts so = {0};
	if (opts)
		so = *opts;
	struct rpc_tls_opts srv_tls;
	int rc = listen_opts(r, f, &so, &srv_tls);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	r->base = event_base_new();
	/* Three priorities: rpc events run at the middle one, so a role can
	 * run work after everything else of a loop turn at the lowest. */
	event_base_priority_init(r->base, 3);
	int err = 0;
	r->srv = rpc_server_new(r->base, &so, &err);
	if (!r->srv) {
		if (so.tls)
			cmd_error(name, "cannot set up TLS with --tls-cert %s%s%s (see the tls_error "
				  "line above)", f->tls.cert, f->tls.client_ca ? " --tls-client-ca " : "",
				  f->tls.client_ca ? f->tls.client_ca : "");
		else
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
		cmd_error(name, "cannot listen on %s: %s", f->listen,
			  port == -ENOTSOCK ? "the path exists and is not a socket (left alone)"
					    : err_str(port));
		return EXIT_FAIL;
	}
	r->port = port;
	log_info("listening", "addr=%s port=%d version=%s tls=%s tokens=%zu auth_health=%d",
		 f->listen, port, ORCHD_VERSION,
		 !so.tls ? "off" : f->tls.client_ca ? "mutual" : "on",
		 r->auth ? auth_count(r->auth) : (size_t)0, f->auth_health);
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
	if (sig == SIGHUP) {
		reload_tokens(r);
		return;
	}
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
	/* Tests, scripts and `orchd dev` read the bound port (--listen with
	 * port 0) as the sign the role is ready: printed only now that
	 * everything the role needs (its store, say) is set up. A unix
	 * socket has no port: "PORT 0", ready all the same. */
	printf("PORT %d\n", r->port);
	fflush(stdout);
	static const int sigs[ROLE_NSIG] = {SIGTERM, SIGINT, SIGHUP};
	for (int i = 0; i < ROLE_NSIG; i++) {
		r->sig[i] = evsignal_new(r->base, sigs[i], on_signal, r);
		event_add(r->sig[i], NULL);
	}
	event_base_dispatch(r->base);
	log_info("stopped", NULL);
	return EXIT_OK;
}

void role_free(struct role *r)
{
	health_del(r->health);
	rpc_server_del(r->srv);
	reflect_del(r->reflect); /* its calls ended with the server */
	auth_del(r->auth);	 /* the server's authorize hook is gone */
	meta_free(&r->auth_md);
	for (int i = 0; i < ROLE_NSIG; i++)
		if (r->sig[i])
			event_free(r->sig[i]);
	if (r->base) {
		/* Bufferevents freed while a deferred callback of theirs was
		 * pending (a connect attempt's error, say) are released by that
		 * callback; event_base_free would cancel it and leak them, TLS
		 * state and all. One non-blocking pass lets them go. */
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		event_base_free(r->base);
	}
	memset(r, 0, sizeof *r);
}
