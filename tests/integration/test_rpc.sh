#!/bin/bash
# lib/rpc's behaviours end to end on 127.0.0.1 (tests/integration/rpc_test.c):
# deadlines, cancellation both ways, backpressure, graceful shutdown,
# keepalive, reconnection with backoff, mutual TLS, the authorize hook, a
# message larger than every buffer, a request read one byte at a time,
# metadata both ways, that a pooled call carries nothing of its last life,
# that a paused reader gets a finished stream's messages and status after
# its end, even once a server shutdown closed the connection, and that a
# server shutting down right after an answer loses none of it.
. "$(dirname "$0")/../lib.sh"

need_exe "$B/rpc_test"
CERTS=$(make_tmpdir)
scripts/gen-dev-certs.sh "$CERTS"
export CERTS
bounded 120 "$B/rpc_test"
