/*
 * cmd: the orchd executable's commands and the plumbing they share.
 * main.c picks a command from the program name or the first argument;
 * each role file wires lib/ pieces together; role.c is the run loop every
 * role shares (event base, listener, health, reflection, signals,
 * graceful stop).
 */
#ifndef ORCHD_CMD_H
#define ORCHD_CMD_H

#include <stdint.h>

#include "health.h"
#include "opt.h"
#include "reflect.h"
#include "rpc.h"

int cmd_gateway(int argc, char **argv);
int cmd_scheduler(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_dev(int argc, char **argv);
/* The client commands (client.c). */
int cmd_cancel(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_workers(int argc, char **argv);

/* Exit codes shared by every command (documented in --help and orchd.1). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	  /* runtime failure, or a task that did not complete */
	EXIT_USAGE = 2,	  /* bad flags or arguments */
	EXIT_UNAVAIL = 3, /* cannot reach the server */
};

struct role {
	const char *name; /* "gateway", "scheduler", "worker" */
	struct event_base *base;
	struct rpc_server *srv;
	struct health *health;
	struct reflect *reflect;
	int port;	  /* bound port */
	int64_t grace_ms; /* in-flight calls get this long on SIGTERM */
	/* Called once on SIGTERM/SIGINT before the listener drains; may start
	 * asynchronous work (a worker hands back its tasks). */
	void (*on_stop)(void *arg);
	void *stop_arg;
	/* Set (before role_run) by a role whose stop takes asynchronous work
	 * that still needs the listener, e.g. a worker draining its tasks:
	 * on SIGTERM the listener keeps serving (health NOT_SERVING) until
	 * the role calls role_release(), then drains as usual. */
	int hold;
	int stopping; /* SIGTERM/SIGINT arrived */
	int shut;     /* the listener's drain has started */
	struct event *sig[2];
};

/* Common flags of every role, appended to a role's table by ROLE_OPTS. */
struct role_flags {
	const char *listen;
	const char *log_level;
	int64_t grace_ms;
};
#define ROLE_OPTS(f, env_prefix)                                                                 \
	{"listen", env_prefix "LISTEN", OPT_STR, &(f)->listen, "ADDR", "address to serve on"},    \
	{"log-level", "ORCHD_LOG", OPT_STR, &(f)->log_level, "LEVEL",                             \
	 "debug, info, warn or error (default info)"},                                            \
	{"grace", "ORCHD_GRACE", OPT_DUR, &(f)->grace_ms, "DURATION",                             \
	 "time in-flight calls get on SIGTERM (default 10s)"}

/* Parses argv for cmd with opts; prints usage on --help and errors on bad
 * flags. Returns the positional count, or -1 - exit code to return. */
int cmd_parse(const char *cmd, const char *synopsis, const struct opt *opts, int argc, char **argv);

/* Sets up the loop, logging, the server on flags->listen, health for
 * services and server reflection. Returns 0 or an exit code (already
 * reported). */
int role_init(struct role *r, const char *name, const struct role_flags *flags,
	      const struct rpc_opts *opts, const char *const *services);
/* Runs until SIGTERM/SIGINT and a graceful drain. Returns an exit code. */
int role_run(struct role *r);
/* Ends a hold (see struct role): after SIGTERM, starts the listener's
 * drain; before it, the next SIGTERM drains at once. */
void role_release(struct role *r);
void role_free(struct role *r);

/* Prints "orchd CMD: message" on stderr. */
void cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
