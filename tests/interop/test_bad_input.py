#!/usr/bin/python3
"""The C interop server answers bad input with the right HTTP/2 or gRPC
error, enforces its limits, and keeps serving everyone else.

Each case talks raw HTTP/2 over its own socket (h2raw.py) and checks what
the server sends back: GOAWAY or a closed connection for a broken
connection, RST_STREAM or a gRPC status for a broken request. After every
case two bystanders must still be served: an HTTP/2 connection opened before
the first case (so no case may take other connections down with it) and a
grpcio channel. At the end the server must exit 0 on SIGTERM, which under a
sanitizer build (B=build-san) also means no leak and no report. The limit
cases (max connections per listener, max received message size) run
against a second server started with --max_conns and --max_recv_msg.

Runs against $B/interop_server; prints PASS/FAIL per case and exits 0 only
if every case passed (77: server not built).
"""

import os
import socket
import sys
import time
import traceback

import grpc

import h2raw
import harness
from h2raw import (COMPRESSION_ERROR, DATA, FRAME_SIZE_ERROR, GRPC_INTERNAL,
                   GRPC_OK, GRPC_RESOURCE_EXHAUSTED, GRPC_UNIMPLEMENTED, HEADERS,
                   PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS_MAX_CONCURRENT_STREAMS,
                   UNARY_CALL, Conn, frame, grpc_message, request_headers)

harness.load_stubs()
from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

MAX_MSG = 4 << 20  # its max_recv_msg default


class Failure(Exception):
    """A case's assertion did not hold."""


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


CASES = []
LIMIT_CASES = []  # against a server started with LIMIT_ARGS
LIMIT_MAX_CONNS = 4
LIMIT_MAX_RECV = 1024
LIMIT_ARGS = ["--max_conns", str(LIMIT_MAX_CONNS), "--max_recv_msg", str(LIMIT_MAX_RECV)]


def case(fn):
    CASES.append(fn)
    return fn


def limit_case(fn):
    LIMIT_CASES.append(fn)
    return fn


def expect_status(st, want, what):
    """The stream ended with grpc-status want."""
    check(st.grpc_status == want, "%s: want grpc-status %d, got %r", what, want, st)
    check(st.header(":status", 0) == "200", "%s: want :status 200, got %r", what, st)


def expect_conn_error(c, codes, what):
    """The server ends the connection, with a GOAWAY carrying one of codes
    if it sends one at all."""
    c.wait_eof()
    if c.goaway is not None:
        check(c.goaway[1] in codes, "%s: GOAWAY code %d, want one of %s", what, c.goaway[1],
              codes)


# ---- connection-level garbage ---------------------------------------------


@case
def garbage_instead_of_preface(port):
    with Conn(port, handshake=False) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        expect_conn_error(c, (PROTOCOL_ERROR,), "HTTP/1.1 request")
    with Conn(port, handshake=False) as c:
        c.send(bytes(range(256)))
        expect_conn_error(c, (PROTOCOL_ERROR,), "binary garbage")


@case
def truncated_frame_then_close(port):
    # A HEADERS frame that declares 100 bytes and brings 10: the server
    # waits for the rest, then sees the end of the connection.
    with Conn(port) as c:
        c.handshake()
        c.send(frame(HEADERS, 0x4, 1, b"\x00" * 100)[:9 + 10])
        c.sock.shutdown(socket.SHUT_WR)
        c.wait_eof()
    # Cut inside the preface, and inside a frame header, then a plain close.
    with Conn(port, handshake=False) as c:
        c.send(h2raw.PREFACE[:10])
    with Conn(port) as c:
        c.send(frame(DATA, 0, 1, b"x" * 50)[:5])


@case
def frame_larger_than_max_frame_size(port):
    with Conn(port) as c:
        c.handshake()
        sid = c.new_stream_id()
        c.send(c.headers_frame(sid, request_headers()) +
               frame(DATA, 0, sid, b"\x00" * (16384 + 1)))
        expect_conn_error(c, (FRAME_SIZE_ERROR,), "DATA over SETTINGS_MAX_FRAME_SIZE")


@case
def data_on_idle_stream(port):
    with Conn(port) as c:
        c.handshake()
        c.send(frame(DATA, 1, 7, grpc_message()))
        expect_conn_error(c, (PROTOCOL_ERROR,), "DATA on a stream never opened")


@case
def bad_hpack(port):
    blocks = {
        "indexed field 0": b"\x80",
        "index past both tables": b"\xbf",
        "integer overflow": b"\x00\x7f\xff\xff\xff\xff\xff\xff\x0f",
        "Huffman string with EOS": b"\x00\x84\xff\xff\xff\xff\x01a",
        "table size over SETTINGS": b"\x3f\xe2\x1f",
        "string past the block": b"\x00\x05ab",
    }
    for what, block in blocks.items():
        with Conn(port) as c:
            c.handshake()
            c.send(c.headers_frame(1, None, end_stream=True, raw_block=block))
            expect_conn_error(c, (COMPRESSION_ERROR,), what)
            check(c.goaway is not None, "%s: no GOAWAY before the close", what)


# ---- broken requests ---------------------------------------------------------


@case
def length_prefix_beyond_data(port):
    with Conn(port) as c:
        # The prefix promises 100 bytes, 10 follow, then END_STREAM.
        st = c.wait_closed(c.request(body=grpc_message(b"\x00" * 10, declared=100)))
        check(st.grpc_status == GRPC_INTERNAL or st.rst not in (None, 0),
              "truncated message: want grpc-status INTERNAL or RST_STREAM, got %r", st)
        # The prefix itself cut short.
        st = c.wait_closed(c.request(body=b"\x00\x00\x00"))
        check(st.grpc_status == GRPC_INTERNAL or st.rst not in (None, 0),
              "truncated prefix: want grpc-status INTERNAL or RST_STREAM, got %r", st)


@case
def unary_without_request(port):
    # END_STREAM on the request HEADERS: the handler never gets a message
    # and must not wait for one.
    with Conn(port) as c:
        st = c.wait_closed(c.request(body=None))
        expect_status(st, GRPC_INTERNAL, "EmptyCall without a request message")
        st = c.wait_closed(c.request(body=b""))
        expect_status(st, GRPC_INTERNAL, "EmptyCall with an empty DATA frame")


@case
def message_over_max_declared(port):
    with Conn(port) as c:
        # Only the prefix is sent: the server must refuse on the declared size
        # alone, without waiting for (or buffering) the body.
        st = c.wait_closed(c.request(headers=request_headers(UNARY_CALL),
                                     body=grpc_message(declared=MAX_MSG + 1), end_stream=False))
        expect_status(st, GRPC_RESOURCE_EXHAUSTED, "4 MiB + 1 declared")
        st = c.wait_closed(c.request(headers=request_headers(UNARY_CALL),
                                     body=grpc_message(declared=0xFFFFFFFF), end_stream=False))
        expect_status(st, GRPC_RESOURCE_EXHAUSTED, "4 GiB - 1 declared")


@case
def compressed_flag_without_encoding(port):
    with Conn(port) as c:
        st = c.wait_closed(c.request(body=grpc_message(compressed=True)))
        expect_status(st, GRPC_INTERNAL, "compressed flag, no grpc-encoding")
        check("grpc-encoding" in (st.grpc_message or ""), "message %r does not say why",
              st.grpc_message)
        st = c.wait_closed(c.request(
            headers=request_headers(extra=[("grpc-encoding", "identity")]),
            body=grpc_message(compressed=True)))
        expect_status(st, GRPC_INTERNAL, "compressed flag, grpc-encoding identity")
        st = c.wait_closed(c.request(
            headers=request_headers(extra=[("grpc-encoding", "gzip")]),
            body=grpc_message(b"this is not gzip", compressed=True)))
        expect_status(st, GRPC_INTERNAL, "gzip flag on bytes that are not gzip")
        st = c.wait_closed(c.request(body=b"\x02\x00\x00\x00\x00"))
        expect_status(st, GRPC_INTERNAL, "flag byte 2")


@case
def headers_without_path(port):
    with Conn(port) as c:
        st = c.wait_closed(c.request(headers=request_headers(omit=(":path",))))
        check(st.rst == PROTOCOL_ERROR, "no :path: want RST_STREAM PROTOCOL_ERROR, got %r", st)
        st = c.wait_closed(c.request(headers=request_headers(omit=(":method",))))
        check(st.rst == PROTOCOL_ERROR, "no :method: want RST_STREAM PROTOCOL_ERROR, got %r", st)
        st = c.wait_closed(c.request(headers=request_headers(extra=[("connection", "close")])))
        check(st.rst == PROTOCOL_ERROR,
              "connection-specific header: want RST_STREAM PROTOCOL_ERROR, got %r", st)
        check(c.goaway is None, "a stream error took the connection down: %r", c.goaway)
        st = c.empty_call()
        expect_status(st, GRPC_OK, "EmptyCall after the stream errors")


@case
def content_type_not_grpc(port):
    with Conn(port) as c:
        st = c.wait_closed(c.request(headers=request_headers(content_type="text/plain"),
                                     body=grpc_message()))
        check(st.header(":status", 0) == "415", "text/plain: want :status 415, got %r", st)
        st = c.wait_closed(c.request(headers=request_headers(omit=("content-type",))))
        check(st.header(":status", 0) == "415", "no content-type: want :status 415, got %r", st)
        st = c.wait_closed(c.request(headers=request_headers(content_type="application/grpcx")))
        check(st.header(":status", 0) == "415", "application/grpcx: want :status 415, got %r",
              st)


@case
def unknown_method_or_service(port):
    with Conn(port) as c:
        st = c.wait_closed(c.request(
            headers=request_headers("/grpc.testing.TestService/NoSuchMethod"),
            body=grpc_message()))
        expect_status(st, GRPC_UNIMPLEMENTED, "unknown method")
        check("NoSuchMethod" in (st.grpc_message or ""), "message %r does not name the method",
              st.grpc_message)
        st = c.wait_closed(c.request(headers=request_headers("/no.such.Service/Call"),
                                     body=grpc_message()))
        expect_status(st, GRPC_UNIMPLEMENTED, "unknown service")
        check("no.such.Service" in (st.grpc_message or ""),
              "message %r does not name the service", st.grpc_message)
        st = c.wait_closed(c.request(headers=request_headers("/nomethod"), body=grpc_message()))
        expect_status(st, GRPC_UNIMPLEMENTED, "path without a method")
        check(st.grpc_message, "no grpc-message for a malformed path")


@case
def invalid_grpc_timeout(port):
    with Conn(port) as c:
        for value in ("abc", "1x", "123456789S", "S", "", "-1S", "1.5S", " 1S"):
            st = c.wait_closed(c.request(headers=request_headers(
                extra=[("grpc-timeout", value)]), body=grpc_message()))
            check(st.grpc_status == GRPC_INTERNAL or st.rst == PROTOCOL_ERROR,
                  "grpc-timeout %r: want INTERNAL or RST_STREAM PROTOCOL_ERROR, got %r",
                  value, st)
        st = c.wait_closed(c.request(headers=request_headers(extra=[("grpc-timeout", "99999999H")]),
                                     body=grpc_message()))
        expect_status(st, GRPC_OK, "grpc-timeout 99999999H (valid, very long)")


def max_streams(port):
    """The server's SETTINGS_MAX_CONCURRENT_STREAMS (rpc_opts default 100)."""
    with Conn(port) as c:
        c.handshake()
        n = c.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
    check(n is not None and 0 < n <= 1000, "SETTINGS_MAX_CONCURRENT_STREAMS is %r", n)
    return n


@case
def streams_beyond_max_concurrent_before_settings_ack(port):
    # Everything in one write, before the client has even read the server's
    # SETTINGS: the server has not had our ACK, so it refuses the excess
    # stream (REFUSED_STREAM) and serves the first `limit`.
    limit = max_streams(port)
    with Conn(port) as c:
        ids = [c.new_stream_id() for _ in range(limit + 1)]
        c.send(b"".join(c.headers_frame(sid, request_headers()) for sid in ids))
        extra = c.wait_closed(ids[-1])
        check(c.goaway is None, "flood: GOAWAY %r instead of refusing one stream", c.goaway)
        check(extra.rst in (REFUSED_STREAM, PROTOCOL_ERROR),
              "stream %d beyond the limit: want RST_STREAM REFUSED_STREAM, got %r",
              extra.id, extra)
        c.send(b"".join(c.data_frame(sid, grpc_message(), end_stream=True)
                        for sid in ids[:-1]))
        c.run_until(lambda: all(c.stream(s).closed for s in ids[:-1]), 20,
                    "%d responses" % limit)
        bad = [c.stream(s) for s in ids[:-1] if c.stream(s).grpc_status != GRPC_OK]
        check(not bad, "flood: %d of the first %d streams failed, e.g. %r", len(bad),
              limit, bad[:1])
        # The slots are free again.
        expect_status(c.empty_call(), GRPC_OK, "EmptyCall after the flood")


@case
def streams_beyond_max_concurrent_after_settings_ack(port):
    # Once the server knows we saw its limit, exceeding it is the client's
    # fault: REFUSED_STREAM for the excess, or (nghttp2's choice) a
    # connection error PROTOCOL_ERROR.
    limit = max_streams(port)
    with Conn(port) as c:
        c.handshake()
        ids = [c.new_stream_id() for _ in range(limit + 1)]
        c.send(b"".join(c.headers_frame(sid, request_headers()) for sid in ids))
        extra = c.wait_closed(ids[-1])
        if c.goaway is not None:
            check(c.goaway[1] == PROTOCOL_ERROR, "flood: GOAWAY code %d, want PROTOCOL_ERROR",
                  c.goaway[1])
            check(c.goaway[0] < ids[-1], "flood: GOAWAY last stream %d includes the excess",
                  c.goaway[0])
            c.wait_eof()
            print("  (excess stream answered with GOAWAY PROTOCOL_ERROR)", flush=True)
        else:
            check(extra.rst in (REFUSED_STREAM, PROTOCOL_ERROR),
                  "stream %d beyond the limit: want RST_STREAM REFUSED_STREAM, got %r",
                  extra.id, extra)
            print("  (excess stream answered with RST_STREAM %d)" % extra.rst, flush=True)


# ---- limits --------------------------------------------------------------------


@limit_case
def max_connections_per_listener(port):
    # The two bystanders hold two connections already (Bystanders connects
    # both before the first case); fill the rest.
    held = []
    try:
        for _ in range(LIMIT_MAX_CONNS - 2):
            c = Conn(port)
            held.append(c)
            c.handshake()
        try:
            over = Conn(port)
            held.append(over)
            over.wait_eof()
            served = over.settings_seen
        except (BrokenPipeError, ConnectionResetError):
            served = False  # closed before our preface was even sent: refused too
        check(not served, "connection %d of %d was served (SETTINGS came)",
              LIMIT_MAX_CONNS + 1, LIMIT_MAX_CONNS)
        for c in held[:-1]:
            expect_status(c.empty_call(), GRPC_OK, "EmptyCall on a connection within the limit")
        # A slot frees up when a connection goes: the server must notice the
        # close, so try a few times (bounded) before calling it a failure.
        held.pop(0).close()
        deadline = time.monotonic() + 10
        while True:
            c = Conn(port)
            held.append(c)
            try:
                c.handshake(timeout=2)
                break
            except (h2raw.Timeout, OSError):
                check(time.monotonic() < deadline,
                      "no new connection accepted after one of %d closed", LIMIT_MAX_CONNS)
                time.sleep(0.1)
        expect_status(c.empty_call(), GRPC_OK, "EmptyCall on the connection that took the slot")
    finally:
        for c in held:
            c.close()


def grpcio_unary(port, size, compression=None):
    """A grpcio UnaryCall whose request carries size bytes; returns the
    status code."""
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        # Let the freed slots of the last case come back first.
        grpc.channel_ready_future(ch).result(timeout=10)
        stub = test_pb2_grpc.TestServiceStub(ch)
        req = messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=bytes(size)))
        try:
            stub.UnaryCall(req, timeout=10, compression=compression)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


@limit_case
def max_receive_message_size(port):
    small, big = LIMIT_MAX_RECV - 100, LIMIT_MAX_RECV + 100
    code = grpcio_unary(port, small)
    check(code == grpc.StatusCode.OK, "request under the limit: %s", code)
    code = grpcio_unary(port, big)
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED, "request over the limit: %s", code)
    # Small on the wire, over the limit once inflated.
    code = grpcio_unary(port, 20 * LIMIT_MAX_RECV, grpc.Compression.Gzip)
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED, "gzip request over the limit: %s", code)
    code = grpcio_unary(port, small, grpc.Compression.Gzip)
    check(code == grpc.StatusCode.OK, "gzip request under the limit: %s", code)
    with Conn(port) as c:
        st = c.wait_closed(c.request(headers=request_headers(UNARY_CALL),
                                     body=grpc_message(declared=LIMIT_MAX_RECV + 1),
                                     end_stream=False))
        expect_status(st, GRPC_RESOURCE_EXHAUSTED, "limit + 1 declared")
        st = c.wait_closed(c.request(headers=request_headers(UNARY_CALL),
                                     body=grpc_message(b"\x00" * LIMIT_MAX_RECV)))
        check(st.grpc_status != GRPC_RESOURCE_EXHAUSTED,
              "a message of exactly the limit was refused: %r", st)


# ---- driver --------------------------------------------------------------------


class Bystanders:
    """Clients that did nothing wrong and must be served after every case."""

    def __init__(self, port):
        self.raw = Conn(port)
        self.raw.handshake()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)
        self.check()  # both connected before the first case

    def check(self):
        st = self.raw.empty_call()
        check(st.grpc_status == GRPC_OK and st.rst is None,
              "the connection opened before the cases got %r", st)
        check(self.raw.goaway is None, "the connection opened before got GOAWAY %r",
              self.raw.goaway)
        try:
            self.stub.EmptyCall(empty_pb2.Empty(), timeout=10)
        except grpc.RpcError as e:
            raise Failure("grpcio EmptyCall on its own connection: %s %s" % (
                e.code(), e.details())) from None

    def close(self):
        self.raw.close()
        self.channel.close()


def run_cases(port, cases):
    """Runs each case, then the bystander check; returns the failed names."""
    failed = []
    by = Bystanders(port)
    try:
        for fn in cases:
            name = fn.__name__
            try:
                fn(port)
                by.check()
                print("PASS %s" % name, flush=True)
            except (Failure, h2raw.Timeout, OSError) as e:
                print("FAIL %s: %s" % (name, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
                failed.append(name)
                try:
                    by.close()
                    by = Bystanders(port)  # the next case gets fresh bystanders
                except (OSError, h2raw.Timeout) as e2:
                    print("FAIL server unreachable after %s: %s" % (name, e2), flush=True)
                    return failed + ["server_unreachable"]
    finally:
        by.close()
    return failed


def server_exe():
    exe = os.path.join(harness.build_dir(), "interop_server")
    if not os.access(exe, os.X_OK):
        print("SKIP: %s not built" % exe)
        sys.exit(77)
    return exe


def serve_and_run(cases, extra_args=()):
    """Starts the interop server, runs cases against it, stops it; returns
    the process exit status for the test (0 only if all passed and the
    server exited 0 on SIGTERM)."""
    proc = harness.start([server_exe(), "--port", "0"] + list(extra_args))
    port = harness.read_port(proc)
    failed = run_cases(port, cases)
    rc = harness.stop(proc, timeout=10)
    if rc != 0:
        print("FAIL server exited with status %s on SIGTERM (sanitizer report or leak?)" % rc)
        failed.append("server_exit")
    names = {c.__name__ for c in cases}
    print("%d passed, %d failed" % (len(names - set(failed)), len(failed)))
    return 1 if failed else 0


def main():
    only = sys.argv[1:]

    def pick(cases):
        return [c for c in cases if not only or any(o in c.__name__ for o in only)]

    rc = 0
    for cases, args in ((pick(CASES), []), (pick(LIMIT_CASES), LIMIT_ARGS)):
        if cases:
            rc |= serve_and_run(cases, args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
