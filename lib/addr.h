/*
 * addr: the one address syntax of orchd's flags and of the rpc module.
 * TCP: "host:port", "[v6addr]:port", ":port" (every local address) and a
 * bare "port". Unix domain sockets, as gRPC's naming document spells them
 * (doc/naming.md in grpc/grpc): "unix:PATH" (relative or absolute),
 * "unix:///ABS/PATH" and, Linux only, "unix-abstract:NAME". The module owns
 * parsing and resolution; it opens no sockets.
 */
#ifndef ORCHD_ADDR_H
#define ORCHD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A parsed address. family AF_UNIX: un/unlen are ready for bind() or
 * connect() (an abstract name starts with a NUL byte and is counted by
 * unlen, not terminated). Otherwise family is AF_UNSPEC and host/port
 * wait for addr_resolve(). */
struct addr {
	sa_family_t family;
	char host[256]; /* brackets removed; "" when absent */
	int port;
	struct sockaddr_un un;
	socklen_t unlen;
};

/* Parses s into a. Returns 0, -ENAMETOOLONG when a unix path or name does
 * not fit sun_path, or -EINVAL when s is malformed (an empty unix path
 * included) or the port is not 0..65535. s borrowed. */
int addr_parse(const char *s, struct addr *a);

/* Why addr_parse failed with err, for a message after the address. */
const char *addr_parse_strerror(int err);

/* 1 when a names a path in the file system (unix:), else 0. */
int addr_is_unix_path(const struct addr *a);

/* The sockaddr of a into ss: a unix address as parsed, a host/port
 * resolved (first result). passive: for bind(), with "" meaning any
 * address. Blocks only for non-numeric names. Returns 0 or a negative
 * getaddrinfo-style error; addr_strerror() describes it. */
int addr_resolve(const struct addr *a, int passive, struct sockaddr_storage *ss, socklen_t *len);
const char *addr_strerror(int err);

/* Formats sa as "ip:port" / "[ip6]:port" into buf ("unix" for a unix
 * socket, whose peers have no name). Returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
