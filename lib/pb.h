/*
 * pb: the seam between protobuf-c messages and rpc calls. Owns packing a
 * message straight into a call's send queue and answering a unary call,
 * so no role writes that glue twice.
 */
#ifndef ORCHD_PB_H
#define ORCHD_PB_H

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"

/* Packs m (borrowed) and sends it on call with flags. Returns what
 * rpc_call_send returns. */
int pb_send(struct rpc_call *call, const ProtobufCMessage *m, int flags);

/* Unary answer: sends m and finishes the call with OK. */
void pb_reply(struct rpc_call *call, const ProtobufCMessage *m);

#endif
