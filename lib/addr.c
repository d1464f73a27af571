/* addr: address parsing and resolution (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *p, int *port)
{
	char *end;
	if (!*p)
		return -EINVAL;
	long v = strtol(p, &end, 10);
	if (*end || v < 0 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int parse_tcp(const char *s, struct addr *a)
{
	const char *colon;
	size_t hl;
	a->family = AF_UNSPEC;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof a->host)
			return -EINVAL;
		memcpy(a->host, s + 1, hl);
		a->host[hl] = '\0';
		return parse_port(rb + 2, &a->port);
	}
	colon = strrchr(s, ':');
	if (!colon) {
		a->host[0] = '\0';
		return parse_port(s, &a->port);
	}
	if (strchr(s, ':') != colon)
		return -EINVAL; /* bare IPv6 needs brackets */
	hl = (size_t)(colon - s);
	if (hl >= sizeof a->host)
		return -EINVAL;
	memcpy(a->host, s, hl);
	a->host[hl] = '\0';
	return parse_port(colon + 1, &a->port);
}

/* name goes to sun_path after skip bytes (1 for the abstract namespace's
 * leading NUL). A file path keeps room for its terminating NUL. */
static int set_unix(struct addr *a, const char *name, size_t skip)
{
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (skip + n + !skip > sizeof a->un.sun_path)
		return -ENAMETOOLONG;
	a->family = AF_UNIX;
	a->un.sun_family = AF_UNIX;
	memcpy(a->un.sun_path + skip, name, n);
	a->unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + skip + n + !skip);
	return 0;
}

int addr_parse(const char *s, struct addr *a)
{
	memset(a, 0, sizeof *a);
	if (!strncmp(s, "unix-abstract:", 14))
		return set_unix(a, s + 14, 1);
	if (strncmp(s, "unix:", 5))
		return parse_tcp(s, a);
	s += 5;
	/* "unix://" starts an authority, which must be empty: the path after
	 * it is absolute, hence three slashes in all. */
	if (!strncmp(s, "//", 2)) {
		s += 2;
		if (*s != '/')
			return -EINVAL;
	}
	return set_unix(a, s, 0);
}

const char *addr_parse_strerror(int err)
{
	if (err == -ENAMETOOLONG)
		return "unix socket path too long (at most 107 bytes)";
	return "expected HOST:PORT, unix:PATH, unix:///ABS/PATH or unix-abstract:NAME";
}

int addr_is_unix_path(const struct addr *a)
{
	return a->family == AF_UNIX && a->un.sun_path[0] != '\0';
}

int addr_resolve(const struct addr *a, int passive, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {0}, *res;
	char ps[8];
	if (a->family == AF_UNIX) {
		memcpy(ss, &a->un, a->unlen);
		*len = a->unlen;
		return 0;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(ps, sizeof ps, "%d", a->port);
	int rv = getaddrinfo(*a->host ? a->host : NULL, ps, &hints, &res);
	if (rv != 0)
		return rv < 0 ? rv : -rv;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

const char *addr_strerror(int err)
{
	return gai_strerror(err);
}

char *addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%d", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%d", ip, port);
	} else {
		snprintf(buf, len, "unix");
	}
	return buf;
}
