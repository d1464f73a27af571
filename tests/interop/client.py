#!/usr/bin/python3
"""gRPC interop test client (grpc.testing.TestService) on Debian's grpcio.

Runs the cases of grpc/grpc doc/interop-test-descriptions.md that a server
takes part in, with the assertions the document gives, against any
TestService server:

    client.py --server_host 127.0.0.1 --server_port N --test_case all
              [--use_tls --ca_file F --server_host_override localhost]

Prints `PASS <case>` or `FAIL <case>: <reason>` per case and exits 0 only if
every requested case passed. Every RPC carries a deadline and every wait has
a timeout, so a hung server fails a case instead of hanging the client.

grpcio cannot report whether a response message arrived compressed, so the
channel turns core's decompression off and inflates messages itself
(harness.decoder); that is how the server_compressed_* cases see the
Compressed-Flag of each message.
"""

import argparse
import queue
import sys
import threading

import grpc
from grpc import _channel as grpc_channel_internals
from grpc._cython import cygrpc

import harness

harness.load_stubs()
from grpc.testing import empty_pb2, messages_pb2  # noqa: E402

m = messages_pb2

ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class Failure(Exception):
    """A case's assertion did not hold."""


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


def zeros(n):
    return bytes(n)


def check_payload(payload, size, what="response"):
    check(len(payload.body) == size, "%s payload is %d bytes, want %d", what, len(payload.body), size)
    check(payload.body == zeros(size), "%s payload is not all zeros", what)
    check(payload.type == m.COMPRESSABLE, "%s payload type %d, want COMPRESSABLE", what, payload.type)


def expect_status(fn, code, details=None):
    """Runs fn, which must fail with `code` (and `details`, if given)."""
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "status %s (%r), want %s", e.code(), e.details(), code)
        if details is not None:
            check(e.details() == details, "status message %r, want %r", e.details(), details)
        return e
    raise Failure("call succeeded, want status %s" % code)


class RequestQueue:
    """A request iterator fed from the test: put() sends, close() half-closes.

    grpcio's consumer thread blocks in __next__; the bounded get() makes sure
    it ends even if the test forgets to close.
    """

    _CLOSE = object()

    def __init__(self, timeout):
        self.q = queue.Queue()
        self.timeout = timeout

    def put(self, req):
        self.q.put(req)

    def close(self):
        self.q.put(self._CLOSE)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self.q.get(timeout=self.timeout)
        except queue.Empty:
            raise StopIteration
        if item is self._CLOSE:
            raise StopIteration
        return item


def next_response(call, what):
    try:
        return next(call)
    except StopIteration:
        raise Failure("stream ended before %s" % what)


class Client:
    """One channel and the TestService methods, per test case."""

    def __init__(self, args):
        self.args = args
        target = "%s:%d" % (args.server_host, args.server_port)
        options = [harness.DECOMPRESSION_OFF]
        if args.use_tls:
            with open(args.ca_file, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            if args.server_host_override:
                options.append(("grpc.ssl_target_name_override", args.server_host_override))
                options.append(("grpc.default_authority", args.server_host_override))
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            if args.server_host_override:
                options.append(("grpc.default_authority", args.server_host_override))
            self.channel = grpc.insecure_channel(target, options=options)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            self.channel.close()
            raise Failure("cannot connect to %s within %ss" % (target, args.connect_timeout))
        self.timeout = args.rpc_timeout

        def method(kind, name, resp, service="grpc.testing.TestService"):
            return getattr(self.channel, kind)(
                "/%s/%s" % (service, name), request_serializer=harness.encode,
                response_deserializer=harness.decoder(resp))

        self.EmptyCall = method("unary_unary", "EmptyCall", empty_pb2.Empty)
        self.UnaryCall = method("unary_unary", "UnaryCall", m.SimpleResponse)
        self.StreamingOutputCall = method("unary_stream", "StreamingOutputCall",
                                          m.StreamingOutputCallResponse)
        self.StreamingInputCall = method("stream_unary", "StreamingInputCall",
                                         m.StreamingInputCallResponse)
        self.FullDuplexCall = method("stream_stream", "FullDuplexCall",
                                     m.StreamingOutputCallResponse)
        self.UnimplementedCall = method("unary_unary", "UnimplementedCall", empty_pb2.Empty)
        self.UnimplementedServiceCall = method("unary_unary", "UnimplementedCall", empty_pb2.Empty,
                                               service="grpc.testing.UnimplementedService")

    def close(self):
        self.channel.close()


# ---------------------------------------------------------------------------
# Sending one message of a compressed stream uncompressed
# ---------------------------------------------------------------------------
#
# grpcio 1.51 offers per-call compression for clients but no per-message
# write flags. Its request-consumer thread builds each SendMessageOperation
# with the module global grpc._channel._EMPTY_FLAGS, fetching the next request
# only after the previous send completed; while a stream-unary call is in
# flight no other operation is started. Setting the global to NO_COMPRESS
# around exactly one request is therefore deterministic. uncompressed_next()
# marks the request that follows it; the flag is restored when the iterator
# is resumed and, whatever happens, when the call is over.

_flags_lock = threading.Lock()


class PerMessageCompression:
    """Iterates [(compress, request), ...] for a call made with compression."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        for compress, req in self.items:
            grpc_channel_internals._EMPTY_FLAGS = 0 if compress else cygrpc.WriteFlag.no_compress
            yield req
            grpc_channel_internals._EMPTY_FLAGS = 0

    def __enter__(self):
        _flags_lock.acquire()
        return self

    def __exit__(self, *exc):
        grpc_channel_internals._EMPTY_FLAGS = 0
        _flags_lock.release()
        return False


# ---------------------------------------------------------------------------
# Test cases, in the order of doc/interop-test-descriptions.md
# ---------------------------------------------------------------------------


def large_request(**kw):
    return m.SimpleRequest(response_type=m.COMPRESSABLE, response_size=314159,
                           payload=m.Payload(body=zeros(271828)), **kw)


def empty_unary(c):
    r = c.EmptyCall(empty_pb2.Empty(), timeout=c.timeout)
    check(r is not None and isinstance(r.msg, empty_pb2.Empty), "no Empty response")
    check(r.wire_len == 0, "Empty response serialized to %d bytes, want 0", r.wire_len)


def large_unary(c):
    r = c.UnaryCall(large_request(), timeout=c.timeout)
    check_payload(r.msg.payload, 314159)


def client_compressed_unary(c):
    probe = large_request(expect_compressed=m.BoolValue(value=True))
    expect_status(lambda: c.UnaryCall(probe, timeout=c.timeout),
                  grpc.StatusCode.INVALID_ARGUMENT)
    r = c.UnaryCall(large_request(expect_compressed=m.BoolValue(value=True)),
                    timeout=c.timeout, compression=grpc.Compression.Gzip)
    check_payload(r.msg.payload, 314159, "compressed call's")
    r = c.UnaryCall(large_request(expect_compressed=m.BoolValue(value=False)), timeout=c.timeout)
    check_payload(r.msg.payload, 314159, "uncompressed call's")


def server_compressed_unary(c):
    for want in (True, False):
        r = c.UnaryCall(large_request(response_compressed=m.BoolValue(value=want)),
                        timeout=c.timeout)
        check(r.compressed == want, "response_compressed=%s but the response %s compressed",
              want, "was" if r.compressed else "was not")
        check_payload(r.msg.payload, 314159)


def client_streaming(c):
    sizes = (27182, 8, 1828, 45904)
    reqs = [m.StreamingInputCallRequest(payload=m.Payload(body=zeros(n))) for n in sizes]
    r = c.StreamingInputCall(iter(reqs), timeout=c.timeout)
    check(r.msg.aggregated_payload_size == 74922,
          "aggregated_payload_size %d, want 74922", r.msg.aggregated_payload_size)


def client_compressed_streaming(c):
    def req(expect, size):
        return m.StreamingInputCallRequest(expect_compressed=m.BoolValue(value=expect),
                                           payload=m.Payload(body=zeros(size)))

    expect_status(lambda: c.StreamingInputCall(iter([req(True, 27182)]), timeout=c.timeout),
                  grpc.StatusCode.INVALID_ARGUMENT)
    with PerMessageCompression([(True, req(True, 27182)), (False, req(False, 45904))]) as reqs:
        r = c.StreamingInputCall(iter(reqs), timeout=c.timeout,
                                 compression=grpc.Compression.Gzip)
    check(r.msg.aggregated_payload_size == 73086,
          "aggregated_payload_size %d, want 73086", r.msg.aggregated_payload_size)


def server_streaming(c):
    sizes = [31415, 9, 2653, 58979]
    req = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=n) for n in sizes])
    call = c.StreamingOutputCall(req, timeout=c.timeout)
    got = list(call)
    check(len(got) == 4, "%d responses, want 4", len(got))
    for r, n in zip(got, sizes):
        check_payload(r.msg.payload, n)
    check(call.code() == grpc.StatusCode.OK, "status %s, want OK", call.code())


def server_compressed_streaming(c):
    plan = [(True, 31415), (False, 92653)]
    req = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=n, compressed=m.BoolValue(value=z))
                             for z, n in plan])
    call = c.StreamingOutputCall(req, timeout=c.timeout)
    got = list(call)
    check(len(got) == 2, "%d responses, want 2", len(got))
    for i, (r, (want, n)) in enumerate(zip(got, plan)):
        check(r.compressed == want, "response %d: compressed=%s, want %s", i, r.compressed, want)
        check_payload(r.msg.payload, n, "response %d" % i)
    check(call.code() == grpc.StatusCode.OK, "status %s, want OK", call.code())


def ping_pong(c):
    steps = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    reqs = RequestQueue(c.timeout)
    call = c.FullDuplexCall(reqs, timeout=c.timeout)
    try:
        for i, (resp_size, req_size) in enumerate(steps):
            reqs.put(m.StreamingOutputCallRequest(
                response_type=m.COMPRESSABLE,
                response_parameters=[m.ResponseParameters(size=resp_size)],
                payload=m.Payload(body=zeros(req_size))))
            r = next_response(call, "response %d" % i)
            check_payload(r.msg.payload, resp_size, "response %d" % i)
        reqs.close()
        extra = list(call)
        check(not extra, "%d responses after the fourth, want none", len(extra))
        check(call.code() == grpc.StatusCode.OK, "status %s, want OK", call.code())
    finally:
        reqs.close()
        call.cancel()


def empty_stream(c):
    call = c.FullDuplexCall(iter([]), timeout=c.timeout)
    got = list(call)
    check(not got, "%d responses, want 0", len(got))
    check(call.code() == grpc.StatusCode.OK, "status %s, want OK", call.code())


def timeout_on_sleeping_server(c):
    # Send one request and keep the stream open (no half-close) until the
    # 1 ms deadline has ended the call.
    reqs = RequestQueue(c.timeout)
    reqs.put(m.StreamingOutputCallRequest(payload=m.Payload(body=zeros(27182))))
    call = c.FullDuplexCall(reqs, timeout=0.001)
    try:
        try:
            got = list(call)
        except grpc.RpcError:
            got = None
        check(got is None, "call completed normally with %s responses", len(got or []))
        check(call.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              "status %s, want DEADLINE_EXCEEDED", call.code())
    finally:
        reqs.close()


def cancel_after_begin(c):
    reqs = RequestQueue(c.timeout)  # never sends anything
    fut = c.StreamingInputCall.future(reqs, timeout=c.timeout)
    try:
        fut.cancel()
        try:
            fut.result(timeout=c.timeout)
            raise Failure("call succeeded after cancel")
        except grpc.FutureCancelledError:
            pass
        except grpc.RpcError:
            pass
        check(fut.cancelled(), "future not cancelled")
        check(fut.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED", fut.code())
    finally:
        reqs.close()


def cancel_after_first_response(c):
    reqs = RequestQueue(c.timeout)
    call = c.FullDuplexCall(reqs, timeout=c.timeout)
    try:
        reqs.put(m.StreamingOutputCallRequest(
            response_type=m.COMPRESSABLE,
            response_parameters=[m.ResponseParameters(size=31415)],
            payload=m.Payload(body=zeros(27182))))
        r = next_response(call, "the first response")
        check_payload(r.msg.payload, 31415)
        call.cancel()
        expect_status(lambda: next(call), grpc.StatusCode.CANCELLED)
        check(call.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED", call.code())
    finally:
        reqs.close()


def check_echo(call, what):
    initial = [(k, v) for k, v in call.initial_metadata() if k == ECHO_INITIAL[0]]
    check(initial == [ECHO_INITIAL], "%s: initial metadata %s is %r, want %r",
          what, ECHO_INITIAL[0], initial, [ECHO_INITIAL])
    trailing = [(k, v) for k, v in call.trailing_metadata() if k == ECHO_TRAILING[0]]
    check(trailing == [ECHO_TRAILING], "%s: trailing metadata %s is %r, want %r",
          what, ECHO_TRAILING[0], trailing, [ECHO_TRAILING])


def custom_metadata(c):
    md = (ECHO_INITIAL, ECHO_TRAILING)
    r, call = c.UnaryCall.with_call(large_request(), metadata=md, timeout=c.timeout)
    check_payload(r.msg.payload, 314159, "UnaryCall")
    check_echo(call, "UnaryCall")

    req = m.StreamingOutputCallRequest(
        response_type=m.COMPRESSABLE,
        response_parameters=[m.ResponseParameters(size=314159)],
        payload=m.Payload(body=zeros(271828)))
    call = c.FullDuplexCall(iter([req]), metadata=md, timeout=c.timeout)
    got = list(call)
    check(len(got) == 1, "FullDuplexCall: %d responses, want 1", len(got))
    check_payload(got[0].msg.payload, 314159, "FullDuplexCall")
    check(call.code() == grpc.StatusCode.OK, "FullDuplexCall: status %s, want OK", call.code())
    check_echo(call, "FullDuplexCall")


def echo_status_unary(c, message):
    req = m.SimpleRequest(response_status=m.EchoStatus(code=2, message=message))
    expect_status(lambda: c.UnaryCall(req, timeout=c.timeout), grpc.StatusCode.UNKNOWN, message)


def status_code_and_message(c):
    message = "test status message"
    echo_status_unary(c, message)
    req = m.StreamingOutputCallRequest(response_status=m.EchoStatus(code=2, message=message))
    call = c.FullDuplexCall(iter([req]), timeout=c.timeout)
    expect_status(lambda: list(call), grpc.StatusCode.UNKNOWN, message)


def special_status_message(c):
    echo_status_unary(c, SPECIAL_MESSAGE)


def unimplemented_method(c):
    expect_status(lambda: c.UnimplementedCall(empty_pb2.Empty(), timeout=c.timeout),
                  grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(c):
    expect_status(lambda: c.UnimplementedServiceCall(empty_pb2.Empty(), timeout=c.timeout),
                  grpc.StatusCode.UNIMPLEMENTED)


CASES = {f.__name__: f for f in (
    empty_unary,
    large_unary,
    client_streaming,
    server_streaming,
    ping_pong,
    empty_stream,
    timeout_on_sleeping_server,
    cancel_after_begin,
    cancel_after_first_response,
    custom_metadata,
    status_code_and_message,
    special_status_message,
    unimplemented_method,
    unimplemented_service,
    client_compressed_unary,
    server_compressed_unary,
    client_compressed_streaming,
    server_compressed_streaming,
)}


def run_case(args, name):
    """Runs one case on a fresh channel; returns None or a failure reason."""
    try:
        c = Client(args)
    except Failure as e:
        return str(e)
    try:
        CASES[name](c)
        return None
    except Failure as e:
        return str(e)
    except grpc.RpcError as e:
        return "unexpected status %s: %r" % (e.code(), e.details())
    except Exception as e:  # a broken driver must fail the case, not crash
        return "%s: %s" % (type(e).__name__, e)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server_host", default="127.0.0.1")
    ap.add_argument("--server_port", type=int)
    ap.add_argument("--server_host_override", default="",
                    help="name for TLS verification and :authority")
    ap.add_argument("--test_case", default="all",
                    help="a case name, several separated by commas, or `all`")
    harness.bool_flag(ap, "use_tls", "connect with TLS (h2 via ALPN)")
    ap.add_argument("--ca_file", help="PEM CA to verify the server with (TLS)")
    ap.add_argument("--rpc_timeout", type=float, default=30.0, help="deadline of each RPC, s")
    ap.add_argument("--connect_timeout", type=float, default=10.0, help="s")
    ap.add_argument("--list_cases", action="store_true", help="print the case names and exit")
    args = ap.parse_args()

    if args.list_cases:
        print("\n".join(CASES))
        return 0
    if args.server_port is None:
        ap.error("--server_port is required")
    if args.use_tls and not args.ca_file:
        ap.error("--use_tls needs --ca_file (certificate checks are never disabled)")
    names = list(CASES) if args.test_case == "all" else args.test_case.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error("unknown test case(s): %s (known: %s)" % (", ".join(unknown), ", ".join(CASES)))

    failed = 0
    for name in names:
        reason = run_case(args, name)
        if reason is None:
            print("PASS %s" % name, flush=True)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, reason), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
