#!/usr/bin/python3
"""gRPC interop test server (grpc.testing.TestService) on Debian's grpcio.

Implements the server features of grpc/grpc doc/interop-test-descriptions.md
that our C interop client exercises: EmptyCall, UnaryCall,
StreamingOutputCall, StreamingInputCall, FullDuplexCall, HalfDuplexCall,
CompressedRequest, CompressedResponse, Echo Status, Echo Metadata and
ResponseParameters.interval_us. UnimplementedCall and UnimplementedService
are deliberately absent so that grpcio answers UNIMPLEMENTED.

    server.py --port 0 [--use_tls --tls_cert F --tls_key F]

listens on 127.0.0.1, prints `PORT <n>` on stdout once serving, and stops on
SIGTERM or SIGINT.

grpcio cannot tell an application whether a request arrived compressed, so
the server turns core's decompression off and inflates messages itself
(harness.decoder); that is how expect_compressed is checked per message.
"""

import argparse
import inspect
import signal
import sys
import time
from concurrent import futures

import grpc

import harness

harness.load_stubs()
from grpc.testing import empty_pb2, messages_pb2  # noqa: E402

SERVICE = "grpc.testing.TestService"
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


class Abort(Exception):
    """Raised by handlers to end the call with a status."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


def status_code(number):
    """Maps a numeric gRPC status code to grpc.StatusCode."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


def payload(ptype, size):
    if ptype != messages_pb2.COMPRESSABLE:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type %d" % ptype)
    return messages_pb2.Payload(type=ptype, body=bytes(size))


class Call:
    """Per-call helper: metadata echo, compression and status, in the order
    grpcio needs them (compression must be chosen before initial metadata)."""

    def __init__(self, ctx):
        self.ctx = ctx
        md = {}
        for k, v in ctx.invocation_metadata():
            md.setdefault(k, v)
        self.echo_initial = md.get(ECHO_INITIAL)
        self.echo_trailing = md.get(ECHO_TRAILING)
        self.compressing = False
        self.metadata_sent = False
        if self.echo_trailing is not None:
            ctx.set_trailing_metadata(((ECHO_TRAILING, self.echo_trailing),))

    def compress(self):
        """Turns on gzip for the responses; only effective before metadata."""
        if not self.metadata_sent and not self.compressing:
            self.ctx.set_compression(grpc.Compression.Gzip)
            self.compressing = True

    def send_metadata(self):
        if not self.metadata_sent:
            self.metadata_sent = True
            if self.echo_initial is not None:
                self.ctx.send_initial_metadata(((ECHO_INITIAL, self.echo_initial),))

    def message(self, compressed):
        """Prepares the next response message's compression flag."""
        self.send_metadata()
        if self.compressing and not compressed:
            self.ctx.disable_next_message_compression()

    def echo_status(self, status):
        if status.code != 0:
            raise Abort(status_code(status.code), status.message)


def expect_compressed_ok(parent, received):
    """Checks parent.expect_compressed (UnaryCall / StreamingInputCall)."""
    if not parent.HasField("expect_compressed"):
        return
    want = parent.expect_compressed.value
    if want and not received.compressed:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "expected compressed request")
    if not want and received.compressed:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "expected uncompressed request")


def handler(fn):
    """Adapts fn(request, call) to grpcio: builds the Call, and turns Abort
    into the call's status (echoing the initial metadata first: a server that
    fails a call still sends its headers)."""

    def run(request, ctx):
        call = Call(ctx)
        try:
            return fn(request, call)
        except Abort as e:
            call.send_metadata()
            ctx.abort(e.code, e.details)

    def run_stream(request, ctx):
        call = Call(ctx)
        try:
            yield from fn(request, call)
        except Abort as e:
            call.send_metadata()
            ctx.abort(e.code, e.details)

    return run_stream if inspect.isgeneratorfunction(fn) else run


# ---------------------------------------------------------------------------
# TestService methods
# ---------------------------------------------------------------------------


def empty_call(received, call):
    call.send_metadata()
    return empty_pb2.Empty()


def unary_call(received, call):
    req = received.msg
    if req.response_compressed.value:
        call.compress()
    expect_compressed_ok(req, received)
    call.echo_status(req.response_status)
    resp = messages_pb2.SimpleResponse(payload=payload(req.response_type, req.response_size))
    call.message(req.response_compressed.value)
    return resp


def streaming_input_call(requests, call):
    total = 0
    for received in requests:
        expect_compressed_ok(received.msg, received)
        total += len(received.msg.payload.body)
    call.send_metadata()
    return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)


def respond(call, req):
    """Yields one response per ResponseParameters of req, then echoes status."""
    params = req.response_parameters
    if any(p.compressed.value for p in params):
        call.compress()
    for p in params:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        resp = messages_pb2.StreamingOutputCallResponse(payload=payload(req.response_type, p.size))
        call.message(p.compressed.value)
        yield resp
    call.echo_status(req.response_status)


def streaming_output_call(received, call):
    yield from respond(call, received.msg)
    call.send_metadata()


def full_duplex_call(requests, call):
    # Echo the initial metadata at once: a client may wait for the headers
    # before it sends anything, so they must not depend on a first response.
    if call.echo_initial is not None:
        call.send_metadata()
    for received in requests:
        yield from respond(call, received.msg)
    call.send_metadata()


def half_duplex_call(requests, call):
    buffered = [r.msg for r in requests]
    for req in buffered:
        yield from respond(call, req)
    call.send_metadata()


def service_handler():
    def uu(fn, req):
        return grpc.unary_unary_rpc_method_handler(
            handler(fn), request_deserializer=harness.decoder(req),
            response_serializer=harness.encode)

    def us(fn, req):
        return grpc.unary_stream_rpc_method_handler(
            handler(fn), request_deserializer=harness.decoder(req),
            response_serializer=harness.encode)

    def su(fn, req):
        return grpc.stream_unary_rpc_method_handler(
            handler(fn), request_deserializer=harness.decoder(req),
            response_serializer=harness.encode)

    def ss(fn, req):
        return grpc.stream_stream_rpc_method_handler(
            handler(fn), request_deserializer=harness.decoder(req),
            response_serializer=harness.encode)

    m = messages_pb2
    return grpc.method_handlers_generic_handler(SERVICE, {
        "EmptyCall": uu(empty_call, empty_pb2.Empty),
        "UnaryCall": uu(unary_call, m.SimpleRequest),
        "StreamingOutputCall": us(streaming_output_call, m.StreamingOutputCallRequest),
        "StreamingInputCall": su(streaming_input_call, m.StreamingInputCallRequest),
        "FullDuplexCall": ss(full_duplex_call, m.StreamingOutputCallRequest),
        "HalfDuplexCall": ss(half_duplex_call, m.StreamingOutputCallRequest),
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--host", default="127.0.0.1")
    harness.bool_flag(ap, "use_tls", "serve TLS (h2 via ALPN)")
    ap.add_argument("--tls_cert", help="PEM server certificate chain")
    ap.add_argument("--tls_key", help="PEM server private key")
    args = ap.parse_args()
    if args.use_tls and not (args.tls_cert and args.tls_key):
        ap.error("--use_tls needs --tls_cert and --tls_key")

    # Block the stop signals before grpcio starts its threads so that only
    # sigwait() below sees them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         handlers=[service_handler()],
                         options=[harness.DECOMPRESSION_OFF])
    addr = "%s:%d" % (args.host, args.port)
    if args.use_tls:
        with open(args.tls_key, "rb") as f:
            key = f.read()
        with open(args.tls_cert, "rb") as f:
            cert = f.read()
        port = server.add_secure_port(addr, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(addr)
    if not port:
        sys.stderr.write("server: cannot listen on %s\n" % addr)
        return 1
    server.start()
    print("PORT %d" % port, flush=True)
    signal.sigwait(stop_signals)
    server.stop(grace=1).wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
