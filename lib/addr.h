/*
 * addr: "host:port" strings, the one address syntax of orchd's flags and
 * of the rpc module: "host:port", "[v6addr]:port", ":port" (every local
 * address) and a bare "port". The module owns parsing and resolution;
 * it opens no sockets.
 */
#ifndef ORCHD_ADDR_H
#define ORCHD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Splits s into host (brackets removed; "" when absent) and port.
 * Returns 0, or -1 when s is malformed or the port is not 0..65535. */
int addr_parse(const char *s, char *host, size_t hostlen, int *port);

/* Resolves host/port into ss (first result). passive: for bind(), with
 * "" meaning any address. Blocks only for non-numeric names. Returns 0 or
 * a negative getaddrinfo-style error; addr_strerror() describes it. */
int addr_resolve(const char *host, int port, int passive, struct sockaddr_storage *ss,
		 socklen_t *len);
const char *addr_strerror(int err);

/* Formats sa as "ip:port" / "[ip6]:port" into buf. Returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
