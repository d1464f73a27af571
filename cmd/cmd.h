/*
 * cmd: the orchd executable's commands and the plumbing they share.
 * main.c picks a command from the program name or the first argument;
 * each role file wires lib/ pieces together; role.c is the run loop every
 * role shares (event base, listener, health, reflection, signals,
 * graceful stop) and the one place flags become TLS, tokens and listener
 * limits, for the roles and the client commands alike.
 */
#ifndef ORCHD_CMD_H
#define ORCHD_CMD_H

#include <stdint.h>

#include "auth.h"
#include "health.h"
#include "meta.h"
#include "opt.h"
#include "reflect.h"
#include "rpc.h"

int cmd_gateway(int argc, char **argv);
int cmd_scheduler(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_dev(int argc, char **argv);
int cmd_bench(int argc, char **argv);
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

enum { ROLE_NSIG = 3 };

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
	struct event *sig[ROLE_NSIG]; /* SIGTERM, SIGINT (stop), SIGHUP (reload) */
	/* Security, from the role's flags (role_init): the tokens its
	 * listener accepts (NULL: none asked for), the token it presents to
	 * the roles it calls, and TLS for those connections. */
	struct auth *auth;
	struct meta auth_md;
	const char *token_file; /* --auth-token-file, re-read on SIGHUP */
	struct rpc_tls_opts dial_tls;
	int dial_tls_on;
};

/*
 * TLS flags, the same for every role and client command (TLS_OPTS,
 * ROLE_OPTS, the client's CLIENT_OPTS). A role's certificate serves its
 * listener and is its client certificate towards the roles it calls;
 * --tls-ca verifies those roles (and, with --tls-client-ca, a listener
 * asks its clients for certificates signed by that CA: mutual TLS).
 */
struct tls_flags {
	const char *cert;	 /* --tls-cert: certificate chain, PEM */
	const char *key;	 /* --tls-key: its private key, PEM */
	const char *ca;		 /* --tls-ca: CAs that verify the servers we call */
	const char *client_ca;	 /* --tls-client-ca (roles): mutual TLS */
	const char *server_name; /* --tls-server-name: name the servers we call must have */
	int on;			 /* --tls (client commands): TLS with the system's CAs */
};
/* clang-format off */
#define TLS_OPTS(f, cert_help)                                                                   \
	{"tls-cert", "ORCHD_TLS_CERT", OPT_STR, &(f)->cert, "FILE", cert_help},                   \
	{"tls-key", "ORCHD_TLS_KEY", OPT_STR, &(f)->key, "FILE",                                  \
	 "private key of --tls-cert (PEM; default: in the --tls-cert file)"},                     \
	{"tls-ca", "ORCHD_TLS_CA", OPT_STR, &(f)->ca, "FILE",                                     \
	 "CA certificates (PEM) that verify the servers we connect to (default: the system's)"}, \
	{"tls-server-name", "ORCHD_TLS_SERVER_NAME", OPT_STR, &(f)->server_name, "NAME",          \
	 "name the server's certificate must carry (default: the host we connect to)"}
/* clang-format on */

/* Rejects flags that make no sense alone (--tls-key or --tls-client-ca
 * without --tls-cert). Returns 0 or EXIT_USAGE (reported as cmd's). */
int cmd_tls_check(const char *cmd, const struct tls_flags *f);
/* TLS towards a server: on when f has --tls, --tls-ca or --tls-cert (the
 * certificate is then our client certificate). Fills t and returns it, or
 * returns NULL for plaintext. f is borrowed by t. */
const struct rpc_tls_opts *cmd_tls_dial(const struct tls_flags *f, struct rpc_tls_opts *t);
/* Appends "authorization: Bearer TOKEN" to md with the first token of
 * file, or without a file the token in the environment variable env (if
 * set). Returns 0 or an exit code (reported as cmd's error). */
int cmd_token_md(const char *cmd, const char *file, const char *env, struct meta *md);

/* Common flags of every role, appended to a role's table by ROLE_OPTS:
 * the listener, logging, shutdown, TLS, tokens and the listener's limits
 * (0: the role's own default, given in its rpc_opts to role_init). */
struct role_flags {
	const char *listen;
	const char *log_level;
	int64_t grace_ms;
	struct tls_flags tls;
	const char *token_file; /* --auth-token-file */
	int auth_health;	/* --auth-health */
	int max_conns;
	int max_streams;
	size_t max_recv_msg;
};
/* clang-format off */
#define ROLE_OPTS(f, env_prefix)                                                                 \
	{"listen", env_prefix "LISTEN", OPT_STR, &(f)->listen, "ADDR",                            \
	 "address to serve on: HOST:PORT, unix:PATH or unix-abstract:NAME"},                     \
	{"log-level", "ORCHD_LOG", OPT_STR, &(f)->log_level, "LEVEL",                             \
	 "debug, info, warn or error (default info)"},                                            \
	{"grace", "ORCHD_GRACE", OPT_DUR, &(f)->grace_ms, "DURATION",                             \
	 "time in-flight calls get on SIGTERM (default 10s)"},                                    \
	TLS_OPTS(&(f)->tls, "serve TLS with this certificate chain (PEM); also our client "       \
		 "certificate towards other roles"),                                                \
	{"tls-client-ca", "ORCHD_TLS_CLIENT_CA", OPT_STR, &(f)->tls.client_ca, "FILE",           \
	 "mutual TLS: refuse clients without a certificate signed by these CAs (PEM)"},           \
	{"auth-token-file", "ORCHD_AUTH_TOKEN_FILE", OPT_STR, &(f)->token_file, "FILE",           \
	 "accept only calls with \"authorization: Bearer T\", T a token of FILE (one a line, "  \
	 "# comments); the first is also what we present to other roles"},                       \
	{"auth-health", "ORCHD_AUTH_HEALTH", OPT_BOOL, &(f)->auth_health, NULL,                   \
	 "health checks and reflection need a token too (default: open)"},                        \
	{"max-conns", env_prefix "MAX_CONNS", OPT_INT, &(f)->max_conns, "N",                      \
	 "open connections on the listener; more are closed at once (default 1024)"},            \
	{"max-streams", env_prefix "MAX_STREAMS", OPT_INT, &(f)->max_streams, "N",                \
	 "concurrent calls per connection (default: scheduler 4096, gateway "                     \
	 "--max-subscribers + 100, worker 100)"},                                                 \
	{"max-recv-msg", env_prefix "MAX_RECV_MSG", OPT_SIZE, &(f)->max_recv_msg, "SIZE",         \
	 "largest request message; past it RESOURCE_EXHAUSTED (default: room for a "             \
	 "--max-payload task, at least 4M on a gateway; 4M on a worker)"}
/* clang-format on */

/* Checks addr, the value of flag what, against addr.h's syntax (dial: it
 * is a target, so a TCP port must not be 0) and reports a bad one as
 * cmd's. Returns 0 or EXIT_USAGE. */
int cmd_check_addr(const char *cmd, const char *what, const char *addr, int dial);

/* Parses argv for cmd with opts; prints usage on --help and errors on bad
 * flags. Returns the positional count, or -1 - exit code to return. */
int cmd_parse(const char *cmd, const char *synopsis, const struct opt *opts, int argc, char **argv);

/* Sets up the loop, logging, the server on flags->listen (its TLS, tokens
 * and limits from flags over those of opts), health for services and
 * server reflection. flags are borrowed for the role's life. Returns 0 or
 * an exit code (already reported). */
int role_init(struct role *r, const char *name, const struct role_flags *flags,
	      const struct rpc_opts *opts, const char *const *services);
/* Sets o's TLS and default metadata (the role's token) for a channel to
 * another role. They point into r, which must outlive the channel. */
void role_dial_opts(const struct role *r, struct rpc_opts *o);
/* Runs until SIGTERM/SIGINT and a graceful drain; SIGHUP re-reads the
 * token file meanwhile. Returns an exit code. */
int role_run(struct role *r);
/* Ends a hold (see struct role): after SIGTERM, starts the listener's
 * drain; before it, the next SIGTERM drains at once. */
void role_release(struct role *r);
void role_free(struct role *r);

/* ---- client commands (client.c; bench.c shares their set-up) ---------- */

#define CLIENT_DEFAULT_GATEWAY "127.0.0.1:50051"

/* A client command's loop and its one channel to a gateway. */
struct client {
	const char *cmd;  /* "get", for messages */
	const char *addr; /* the server */
	const char *peer; /* how errors name it: "gateway at " or "" */
	int64_t deadline_ms;
	struct event_base *base;
	struct rpc_channel *ch;
	int connected; /* the channel has been up at least once */
	int tls;       /* the channel uses TLS */
	int stopped;   /* client_stop ran: late callbacks do nothing */
	int rc;
};

/* Flags every client command has. */
struct client_flags {
	const char *gateway;
	int64_t deadline_ms;
	struct tls_flags tls;
	const char *token_file;
};
/* The flags of struct client_flags past --gateway and --deadline: TLS and
 * the token, the same for every command that talks to a gateway. */
/* clang-format off */
#define CLIENT_SECURITY_OPTS(f)                                                                   \
	{"tls", "ORCHD_TLS", OPT_BOOL, &(f)->tls.on, NULL,                                        \
	 "use TLS (implied by --tls-ca and --tls-cert)"},                                         \
	TLS_OPTS(&(f)->tls, "client certificate (PEM) for a gateway that asks for one"),          \
	{"token-file", "ORCHD_TOKEN_FILE", OPT_STR, &(f)->token_file, "FILE",                     \
	 "send \"authorization: Bearer T\", T the first token in FILE (default: $ORCHD_TOKEN)"}
/* clang-format on */

/* Sets up logging (errors only, or $ORCHD_LOG), the loop and the channel
 * to f->gateway with f's TLS and token; f borrowed. Returns 0, or an exit
 * code (reported as cmd's error). Free with client_free() either way. */
int client_init(struct client *c, const char *cmd, const struct client_flags *f);
/* Closes the channel (open calls end CANCELLED) and frees the loop. */
void client_free(struct client *c);

/* Prints "orchd CMD: message" on stderr. */
void cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
