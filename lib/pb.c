/* pb: protobuf-c messages on rpc calls (see pb.h). */
#include "pb.h"

#include <stdlib.h>

#include "xalloc.h"

int pb_send(struct rpc_call *call, const ProtobufCMessage *m, int flags)
{
	uint8_t stackbuf[1024];
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = n <= sizeof stackbuf ? stackbuf : xmalloc(n);
	protobuf_c_message_pack(m, buf);
	int rv = rpc_call_send(call, buf, n, flags);
	if (buf != stackbuf)
		free(buf);
	return rv;
}

void pb_reply(struct rpc_call *call, const ProtobufCMessage *m)
{
	pb_send(call, m, 0);
	rpc_call_finish(call, GRPC_STATUS_OK, NULL);
}
