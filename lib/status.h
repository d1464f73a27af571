/*
 * status: gRPC status codes, their canonical names, and the mappings the
 * gRPC HTTP/2 protocol defines from HTTP statuses and RST_STREAM error codes
 * to them. Pure functions, no state. The grpc-message text that travels
 * with a status is encoded by meta.h, not here.
 */
#ifndef ORCHD_STATUS_H
#define ORCHD_STATUS_H

#include <stddef.h>
#include <stdint.h>

enum grpc_status {
	GRPC_STATUS_OK = 0,
	GRPC_STATUS_CANCELLED = 1,
	GRPC_STATUS_UNKNOWN = 2,
	GRPC_STATUS_INVALID_ARGUMENT = 3,
	GRPC_STATUS_DEADLINE_EXCEEDED = 4,
	GRPC_STATUS_NOT_FOUND = 5,
	GRPC_STATUS_ALREADY_EXISTS = 6,
	GRPC_STATUS_PERMISSION_DENIED = 7,
	GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
	GRPC_STATUS_FAILED_PRECONDITION = 9,
	GRPC_STATUS_ABORTED = 10,
	GRPC_STATUS_OUT_OF_RANGE = 11,
	GRPC_STATUS_UNIMPLEMENTED = 12,
	GRPC_STATUS_INTERNAL = 13,
	GRPC_STATUS_UNAVAILABLE = 14,
	GRPC_STATUS_DATA_LOSS = 15,
	GRPC_STATUS_UNAUTHENTICATED = 16,
};

/* Largest value status_parse() accepts. Codes above 16 are legal on the
 * wire (future codes) and callers treat them as UNKNOWN. */
#define STATUS_PARSE_MAX 2147483647

/* Returns the static canonical name ("OK", "CANCELLED", ...); "UNKNOWN" for
 * codes outside 0..16. */
const char *status_name(int code);

/* Inverse of status_name(), case-insensitive; also accepts a decimal code
 * ("14"). name is borrowed. Returns the code 0..16, or -1 if unknown. */
int status_from_name(const char *name);

/* Maps the HTTP status of a response that carries no grpc-status, per
 * gRPC's http-grpc-status-mapping.md. Returns the gRPC status. */
int status_from_http(int http_status);

/* Maps an HTTP/2 RST_STREAM (or GOAWAY) error code to a gRPC status, per
 * PROTOCOL-HTTP2.md; unknown codes give INTERNAL. The caller should report
 * DEADLINE_EXCEEDED instead of CANCELLED when the call's deadline has
 * passed: the spec leaves that distinction to it. */
int status_from_h2_error(uint32_t h2_error_code);

/* Parses a grpc-status header value: one or more decimal digits, value at
 * most STATUS_PARSE_MAX, nothing else (no sign, no spaces). s is borrowed
 * and need not be NUL-terminated. Returns the value, or -1 if malformed. */
int status_parse(const char *s, size_t len);

/* Buffer size status_format() needs: 10 digits of a non-negative int, a NUL. */
#define STATUS_BUFLEN 12

/* Writes code (>= 0; a negative code is written as 2, UNKNOWN) in
 * decimal, NUL-terminated, the grpc-status header value that
 * status_parse() reads back. Returns the string length. Used for every
 * response, so no stdio. */
size_t status_format(int code, char out[STATUS_BUFLEN]);

#endif
