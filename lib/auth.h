/*
 * auth: bearer tokens between orchd's peers. The module owns a set of
 * accepted tokens (loaded from a file, one per line), the constant-time
 * check of an "authorization: Bearer TOKEN" value against them, which
 * paths stay open without a token (health checks and reflection, unless
 * told otherwise), and an rpc_authorize_cb that applies all of it to a
 * server's calls. It also builds the metadata a client presents.
 *
 * It does not own TLS (rpc, tls.c) nor where the file's name comes from
 * (cmd/). Tokens are kept only as SHA-256 digests, except the first one,
 * which a role presents to the roles it calls; no token is ever logged.
 */
#ifndef ORCHD_AUTH_H
#define ORCHD_AUTH_H

#include <stddef.h>

#include "meta.h"
#include "rpc.h"

struct auth;

/* Longest token accepted, in bytes. */
#define AUTH_TOKEN_MAX 4096

/* What auth_check() found. */
enum auth_result {
	AUTH_OK = 0,
	AUTH_MISSING = 1,   /* no authorization value */
	AUTH_MALFORMED = 2, /* not "Bearer TOKEN" */
	AUTH_DENIED = 3,    /* a token, but not one of ours */
};

/* Creates an empty set. protect_health != 0 puts health checks and
 * reflection behind the token too. Free with auth_del(). */
struct auth *auth_new(int protect_health);
/* Frees the set, wiping the token it keeps in clear. NULL: no-op. */
void auth_del(struct auth *a);

/* Adds a token (len bytes, borrowed; only its digest is kept, and a copy
 * of the first one). Returns 0, or -EINVAL when it is empty, longer than
 * AUTH_TOKEN_MAX or has a byte outside printable ASCII without blanks
 * (0x21..0x7E). */
int auth_add_token(struct auth *a, const char *token, size_t len);

/* Adds the tokens of a file: one per line; blank lines and lines starting
 * with '#' are skipped, surrounding blanks and a CR trimmed. Returns the
 * number of tokens added (> 0); -ENODATA when the file has none, -EINVAL
 * for a malformed line, or -errno when it cannot be read; each with a
 * message in err (which names the file and the line, never the token). */
int auth_load_file(struct auth *a, const char *path, char *err, size_t errlen);

/* Replaces the set's tokens with those of a file (as auth_load_file),
 * all or nothing: when the file cannot be loaded the set keeps its tokens,
 * so a bad edit never locks everybody out. The first token becomes the new
 * file's first. Returns the number of tokens now in the set (> 0), or the
 * error of auth_load_file with its message in err. */
int auth_reload_file(struct auth *a, const char *path, char *err, size_t errlen);

/* Number of tokens in the set. */
size_t auth_count(const struct auth *a);
/* The first token added (borrowed from the set), or NULL. */
const char *auth_first(const struct auth *a);

/* Checks an authorization value (len bytes, borrowed; NULL = absent):
 * scheme "Bearer" in any case, blanks, then the token, compared with
 * every token of the set in constant time (time does not depend on which
 * token matches or on how much of one does). Returns an enum auth_result. */
int auth_check(const struct auth *a, const char *value, size_t len);

/* Whether path ("/package.Service/Method", borrowed) needs no token in
 * this set: grpc.health.v1.Health, every service's HealthCheck method and server
 * reflection, unless the set protects health. */
int auth_path_open(const struct auth *a, const char *path);

/* An rpc_authorize_cb (arg: a struct auth, which must outlive the server):
 * open paths pass; otherwise the call's "authorization" metadata must
 * pass auth_check(), else the call ends UNAUTHENTICATED. Refusals are
 * logged (peer, path, reason; at most a few lines a second, the rest
 * counted), never with the token. */
int auth_authorize(const struct rpc_call *call, char *msg, size_t msglen, void *arg);

/* Appends "authorization: Bearer TOKEN" to md (token borrowed, copied). */
void auth_bearer_md(struct meta *md, const char *token);

/* "ok", "missing", "malformed", "denied" (static). */
const char *auth_result_name(int r);

#endif
