/* error: text for orchd's error codes (see error.h). */
#include "error.h"

#include <string.h>

/* Our codes count down from E_PROTO; this maps them to 0, 1, ... */
#define IDX(code) (E_PROTO - (code))

static const char *const msgs[] = {
    [IDX(E_PROTO)] = "protocol violation by peer",
    [IDX(E_TOOBIG)] = "exceeds a limit",
    [IDX(E_CORRUPT)] = "undecodable data",
    [IDX(E_AGAIN)] = "would block",
    [IDX(E_CLOSED)] = "closed",
    [IDX(E_UNSUPPORTED)] = "not supported",
    [IDX(E_STATE)] = "wrong state for this operation",
    [IDX(E_CONNECT)] = "could not connect",
};

#define NMSGS ((int)(sizeof(msgs) / sizeof(msgs[0])))

const char *err_str(int code)
{
	if (code == 0)
		return "success";
	if (code <= E_PROTO && IDX(code) < NMSGS)
		return msgs[IDX(code)];
	/* errno values are well below 1000, so the two ranges cannot meet;
	 * a negative code in neither is unknown rather than strerror's
	 * "Unknown error N", which would suggest a system error. */
	if (code < 0 && code > -1000)
		return strerror(-code);
	return "unknown error";
}
