/*
 * error: orchd's own error codes and their messages. Library functions
 * return 0 (or a count) on success and a negative code on failure: either
 * -errno for system errors or one of the codes below, which live in a
 * reserved range (-1001 and down) far from any errno value. This module owns
 * only the codes and their text; gRPC status codes are in status.h.
 */
#ifndef ORCHD_ERROR_H
#define ORCHD_ERROR_H

enum {
	E_PROTO = -1001,       /* peer violated the protocol */
	E_TOOBIG = -1002,      /* exceeds a limit */
	E_CORRUPT = -1003,     /* undecodable data */
	E_AGAIN = -1004,       /* would block: wait for writable */
	E_CLOSED = -1005,      /* call/connection closed */
	E_UNSUPPORTED = -1006, /* feature or encoding not supported */
	E_STATE = -1007,       /* wrong state for this operation */
	E_CONNECT = -1008,     /* could not connect to the peer */
};

/* Returns a static description of code, never NULL: strerror(-code) for a
 * negative errno value, fixed text for the codes above, "success" for 0 and
 * "unknown error" for anything else. */
const char *err_str(int code);

#endif
