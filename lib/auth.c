/* auth: bearer tokens (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "status.h"
#include "xalloc.h"

#define DIGEST_LEN 32
/* Refusals logged per second; the rest are counted and reported with the
 * next line, so a client hammering without a token cannot flood the log. */
#define LOG_BURST 10

struct auth {
	unsigned char (*digests)[DIGEST_LEN];
	size_t n;
	char *first;
	int protect_health;
	/* log rate limit */
	int64_t log_sec;
	int log_lines;
	unsigned long suppressed;
};

static void digest(const void *p, size_t len, unsigned char out[DIGEST_LEN])
{
	unsigned int n = 0;
	EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

struct auth *auth_new(int protect_health)
{
	struct auth *a = xcalloc(1, sizeof *a);
	a->protect_health = protect_health != 0;
	return a;
}

void auth_del(struct auth *a)
{
	if (!a)
		return;
	if (a->first) {
		OPENSSL_cleanse(a->first, strlen(a->first));
		free(a->first);
	}
	if (a->digests)
		OPENSSL_cleanse(a->digests, a->n * DIGEST_LEN);
	free(a->digests);
	free(a);
}

static int token_valid(const char *t, size_t len)
{
	if (len == 0 || len > AUTH_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return 0;
	return 1;
}

int auth_add_token(struct auth *a, const char *token, size_t len)
{
	if (!token_valid(token, len))
		return -EINVAL;
	a->digests = xrealloc(a->digests, (a->n + 1) * sizeof *a->digests);
	digest(token, len, a->digests[a->n]);
	a->n++;
	if (!a->first)
		a->first = xstrndup(token, len);
	return 0;
}

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int auth_load_file(struct auth *a, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(e));
		return -e;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int added = 0, lineno = 0, rv = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		char *p = line, *end = line + len;
		while (p < end && blank(*p))
			p++;
		while (end > p && blank(end[-1]))
			end--;
		if (p == end || *p == '#')
			continue;
		if (auth_add_token(a, p, (size_t)(end - p)) != 0) {
			snprintf(err, errlen,
			         "token file %s, line %d: a token is 1..%d printable ASCII "
			         "characters without blanks",
			         path, lineno, AUTH_TOKEN_MAX);
			rv = -EINVAL;
			break;
		}
		added++;
	}
	if (line) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	if (rv == 0 && ferror(f)) {
		snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(EIO));
		rv = -EIO;
	}
	fclose(f);
	if (rv == 0 && added == 0) {
		snprintf(err, errlen, "token file %s has no token", path);
		rv = -ENODATA;
	}
	return rv ? rv : added;
}

int auth_reload_file(struct auth *a, const char *path, char *err, size_t errlen)
{
	struct auth *fresh = auth_new(a->protect_health);
	int rv = auth_load_file(fresh, path, err, errlen);
	if (rv > 0) {
		/* Swap the tokens; auth_del wipes the old ones. */
		struct auth old = *fresh;
		fresh->digests = a->digests;
		fresh->n = a->n;
		fresh->first = a->first;
		a->digests = old.digests;
		a->n = old.n;
		a->first = old.first;
	}
	auth_del(fresh);
	return rv;
}

size_t auth_count(const struct auth *a)
{
	return a->n;
}

const char *auth_first(const struct auth *a)
{
	return a->first;
}

int auth_check(const struct auth *a, const char *value, size_t len)
{
	if (!value || len == 0)
		return AUTH_MISSING;
	/* RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is
	 * case-insensitive (RFC 7235 §2.1). */
	if (len < 7 || strncasecmp(value, "bearer", 6) != 0 || value[6] != ' ')
		return AUTH_MALFORMED;
	const char *t = value + 7, *end = value + len;
	while (t < end && *t == ' ')
		t++;
	while (end > t && end[-1] == ' ')
		end--;
	if (!token_valid(t, (size_t)(end - t)))
		return AUTH_MALFORMED;
	/* Digests have one length whatever the tokens' lengths, and every
	 * one is compared: no early exit tells which matched, or how far. */
	unsigned char d[DIGEST_LEN];
	digest(t, (size_t)(end - t), d);
	int match = 0;
	for (size_t i = 0; i < a->n; i++)
		match |= CRYPTO_memcmp(d, a->digests[i], DIGEST_LEN) == 0;
	OPENSSL_cleanse(d, sizeof d);
	return match ? AUTH_OK : AUTH_DENIED;
}

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

int auth_path_open(const struct auth *a, const char *path)
{
	if (a->protect_health || !path)
		return 0;
	size_t n = strlen(path);
	static const char hc[] = "/HealthCheck";
	return has_prefix(path, "/grpc.health.v1.Health/") ||
	       has_prefix(path, "/grpc.reflection.v1alpha.ServerReflection/") ||
	       has_prefix(path, "/grpc.reflection.v1.ServerReflection/") ||
	       (n > sizeof hc - 1 && path[0] == '/' &&
	        strcmp(path + n - (sizeof hc - 1), hc) == 0 &&
	        strchr(path + 1, '/') == path + n - (sizeof hc - 1));
}

const char *auth_result_name(int r)
{
	switch (r) {
	case AUTH_OK:
		return "ok";
	case AUTH_MISSING:
		return "missing";
	case AUTH_MALFORMED:
		return "malformed";
	case AUTH_DENIED:
		return "denied";
	}
	return "unknown";
}

/* Whether a refusal may be logged now (see LOG_BURST). */
static int may_log(struct auth *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != a->log_sec) {
		a->log_sec = ts.tv_sec;
		a->log_lines = 0;
	}
	if (a->log_lines >= LOG_BURST) {
		a->suppressed++;
		return 0;
	}
	a->log_lines++;
	return 1;
}

int auth_authorize(const struct rpc_call *call, char *msg, size_t msglen, void *arg)
{
	struct auth *a = arg;
	const char *path = rpc_call_path(call);
	if (auth_path_open(a, path))
		return 0;
	const struct meta_kv *kv = meta_get(rpc_call_recv_metadata(call), "authorization");
	int r = auth_check(a, kv ? (const char *)kv->val : NULL, kv ? kv->vallen : 0);
	if (r == AUTH_OK)
		return 0;
	if (may_log(a)) {
		log_warn("unauthenticated", "peer=%s path=%s reason=%s suppressed=%lu",
		         rpc_call_peer(call), log_quote(path), auth_result_name(r), a->suppressed);
		a->suppressed = 0;
	}
	snprintf(msg, msglen, "%s",
	         r == AUTH_MISSING ? "missing bearer token: send metadata "
	                             "\"authorization: Bearer TOKEN\""
	         : r == AUTH_MALFORMED
	             ? "malformed authorization metadata: expected \"Bearer TOKEN\""
	             : "invalid bearer token");
	return GRPC_STATUS_UNAUTHENTICATED;
}

void auth_bearer_md(struct meta *md, const char *token)
{
	size_t n = strlen(token) + 8;
	char *v = xmalloc(n);
	snprintf(v, n, "Bearer %s", token);
	meta_add(md, "authorization", 13, v, n - 1);
	OPENSSL_cleanse(v, n);
	free(v);
}
