/* status: gRPC status names and protocol mappings (see status.h). */
#include "status.h"

#include <strings.h>

static const char *const names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))

const char *status_name(int code)
{
	if (code < 0 || code >= NNAMES)
		return "UNKNOWN";
	return names[code];
}

int status_from_name(const char *name)
{
	size_t len = 0;

	while (name[len] >= '0' && name[len] <= '9')
		len++;
	if (len > 0 && name[len] == '\0') {
		int code = status_parse(name, len);
		return code < NNAMES ? code : -1;
	}
	for (int i = 0; i < NNAMES; i++)
		if (strcasecmp(name, names[i]) == 0)
			return i;
	return -1;
}

int status_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return GRPC_STATUS_INTERNAL;
	case 401:
		return GRPC_STATUS_UNAUTHENTICATED;
	case 403:
		return GRPC_STATUS_PERMISSION_DENIED;
	case 404:
		return GRPC_STATUS_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_STATUS_UNAVAILABLE;
	default:
		return GRPC_STATUS_UNKNOWN;
	}
}

/* HTTP/2 error codes, RFC 9113 section 7. */
enum {
	H2_REFUSED_STREAM = 0x7,
	H2_CANCEL = 0x8,
	H2_ENHANCE_YOUR_CALM = 0xb,
	H2_INADEQUATE_SECURITY = 0xc,
};

int status_from_h2_error(uint32_t h2_error_code)
{
	switch (h2_error_code) {
	case H2_REFUSED_STREAM:
		/* The server did not process the stream: safe to retry. */
		return GRPC_STATUS_UNAVAILABLE;
	case H2_CANCEL:
		return GRPC_STATUS_CANCELLED;
	case H2_ENHANCE_YOUR_CALM:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case H2_INADEQUATE_SECURITY:
		return GRPC_STATUS_PERMISSION_DENIED;
	default:
		/* NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR,
		 * SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR,
		 * CONNECT_ERROR and codes we do not know. */
		return GRPC_STATUS_INTERNAL;
	}
}

int status_parse(const char *s, size_t len)
{
	long long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > STATUS_PARSE_MAX)
			return -1;
	}
	return (int)v;
}

size_t status_format(int code, char out[STATUS_BUFLEN])
{
	char rev[STATUS_BUFLEN];
	size_t n = 0, i = 0;
	unsigned v = code < 0 ? GRPC_STATUS_UNKNOWN : (unsigned)code;

	do {
		rev[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		out[i++] = rev[--n];
	out[i] = '\0';
	return i;
}
