/* addr: address parsing and resolution (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *p, int *port)
{
	char *end;
	if (!*p)
		return -1;
	long v = strtol(p, &end, 10);
	if (*end || v < 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

int addr_parse(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon;
	size_t hl;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= hostlen)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		return parse_port(rb + 2, port);
	}
	colon = strrchr(s, ':');
	if (!colon) {
		host[0] = '\0';
		return parse_port(s, port);
	}
	if (strchr(s, ':') != colon)
		return -1; /* bare IPv6 needs brackets */
	hl = (size_t)(colon - s);
	if (hl >= hostlen)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	return parse_port(colon + 1, port);
}

int addr_resolve(const char *host, int port, int passive, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	struct addrinfo hints = {0}, *res;
	char ps[8];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(ps, sizeof ps, "%d", port);
	int rv = getaddrinfo(*host ? host : NULL, ps, &hints, &res);
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
