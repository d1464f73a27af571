"""grpc_check: proves with python3-grpcio, a gRPC peer nobody here wrote,
that a benchmark server gives real gRPC answers (status OK and the right
messages), so the throughput bench/transport.sh measures is of successes.

  grpc_check.py [--echo HOST:PORT]... [--stream HOST:PORT]...

Messages are built by hand (EchoMsg is field 1, bytes; StreamReq is fields
1 and 2, varints), so no generated code is needed. Exits 0 when every check
passed, 1 with the reason otherwise.
"""
import argparse
import sys

import grpc

PAYLOAD = b"a" * 64
ECHO_REQ = b"\x0a\x40" + PAYLOAD          # EchoMsg{data: 64 bytes}
STREAM_REQ = b"\x08\x05\x10\x40"           # StreamReq{count: 5, size: 64}
STREAM_MSG = b"\x0a\x40" + b"x" * 64       # what each Stream message holds


def ident(b):
    return b


def check_echo(target):
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_unary("/bench.v1.Echo/Echo", request_serializer=ident,
                              response_deserializer=ident)
        resp, c = call.with_call(ECHO_REQ, timeout=10)
        if c.code() != grpc.StatusCode.OK or resp != ECHO_REQ:
            raise SystemExit(f"grpc_check: {target} Echo: {c.code()} {resp!r:.40}")


def check_stream(target):
    with grpc.insecure_channel(target) as ch:
        call = ch.unary_stream("/bench.v1.Echo/Stream", request_serializer=ident,
                               response_deserializer=ident)
        it = call(STREAM_REQ, timeout=10)
        msgs = list(it)
        if it.code() != grpc.StatusCode.OK or msgs != [STREAM_MSG] * 5:
            raise SystemExit(f"grpc_check: {target} Stream: {it.code()}, {len(msgs)} messages")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", action="append", default=[])
    ap.add_argument("--stream", action="append", default=[])
    a = ap.parse_args()
    for t in a.echo:
        check_echo(t)
    for t in a.stream:
        check_stream(t)
    print(f"grpc_check: ok ({len(a.echo)} Echo, {len(a.stream)} Stream)")


if __name__ == "__main__":
    sys.exit(main())
