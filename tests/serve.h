/*
 * serve: the main-loop shell shared by the stand-alone lib/rpc servers
 * that tests and benchmarks start (tests/interop/interop_server.c,
 * bench/echo_server.c): process set-up, "PORT n" for the harness, and a
 * graceful stop on SIGTERM or SIGINT. The roles have their own (cmd/role.c).
 */
#ifndef ORCHD_TESTS_SERVE_H
#define ORCHD_TESTS_SERVE_H

struct event_base;
struct rpc_server;

/* Logs as prog (borrowed, must outlive the process' logging) at warn
 * level, ignores SIGPIPE and returns a new event base (the caller frees
 * it after serve_run). */
struct event_base *serve_init(const char *prog);

/* Listens on 127.0.0.1:port (0: ephemeral), prints "PORT n" on stdout,
 * and runs base until SIGTERM or SIGINT has shut srv down, giving
 * in-flight calls grace_ms. Frees srv (taken) in every case. Returns 0, or
 * 1 after saying on stderr why it could not listen. */
int serve_run(struct event_base *base, struct rpc_server *srv, int port, int grace_ms,
              const char *prog);

#endif
