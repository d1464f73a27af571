#!/usr/bin/python3
"""Writes the seed corpus of fuzz_server: what a client sends on one h2c
connection, for each of a few conversations with the methods the fuzz
target registers (/fuzz.Fuzz/Echo, Stream, Fail, Pause, Cancel).

    tests/fuzz/gen_corpus.py [DIR]     (default tests/fuzz/corpus/server)

The output is committed, so `make fuzz-regress` needs no Python; run this
again after changing it and commit what changed. Frames come from
tests/interop/h2raw.py, header blocks from python3-hpack (some with Huffman
and the dynamic table, some plain, so both decoder paths are seeded).
"""

import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

import hpack  # noqa: E402

from h2raw import (CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS,  # noqa: E402
                   PING, PREFACE, RST_STREAM, WINDOW_UPDATE, frame, grpc_message,
                   request_headers, settings_frame)

SVC = "/fuzz.Fuzz/"


class Client:
    """Builds one connection's bytes."""

    def __init__(self, huffman=True, ack=True):
        self.enc = hpack.Encoder()
        self.huffman = huffman
        # ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1 MiB; and the ACK of the
        # server's SETTINGS, which a real client sends once it read them.
        self.out = PREFACE + settings_frame([(0x2, 0), (0x4, 1 << 20)])
        if ack:
            self.out += settings_frame(ack=True)

    def headers(self, sid, method, extra=(), end=False, **kw):
        block = self.enc.encode(request_headers(SVC + method, extra=extra, **kw),
                                huffman=self.huffman)
        self.out += frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block)

    def split_headers(self, sid, method, extra=()):
        """HEADERS plus CONTINUATION frames."""
        block = self.enc.encode(request_headers(SVC + method, extra=extra), huffman=self.huffman)
        a, b, c = block[:5], block[5:12], block[12:]
        self.out += frame(HEADERS, 0, sid, a) + frame(CONTINUATION, 0, sid, b) + \
            frame(CONTINUATION, END_HEADERS, sid, c)

    def data(self, sid, payload, end=False):
        self.out += frame(DATA, END_STREAM if end else 0, sid, payload)

    def raw(self, b):
        self.out += b


def gz(b):
    return gzip.compress(b, mtime=0)


def corpus():
    c = Client()
    c.headers(1, "Echo")
    c.data(1, grpc_message(b"hello"), end=True)
    yield "unary_echo", c.out

    c = Client(huffman=False)
    c.headers(1, "Echo", extra=[("grpc-timeout", "5S"), ("x-echo", "v"),
                                ("x-echo-bin", "AAEC"), ("grpc-accept-encoding", "gzip")])
    c.data(1, grpc_message(b"a") + grpc_message(b"bc"))
    c.data(1, grpc_message(b"def"), end=True)
    yield "echo_metadata_plain_hpack", c.out

    c = Client()
    c.headers(1, "Stream", extra=[("grpc-accept-encoding", "identity,gzip"), ("x-compress", "1")])
    c.data(1, grpc_message(b"\x04" + b"z" * 300))
    c.data(1, grpc_message(b"\x01\xfe"), end=True)
    yield "stream_gzip_responses", c.out

    c = Client()
    c.headers(1, "Echo", extra=[("grpc-encoding", "gzip")])
    c.data(1, grpc_message(gz(b"compressed request " * 20), compressed=True), end=True)
    yield "gzip_request", c.out

    c = Client()
    c.headers(1, "Echo")
    c.headers(3, "Stream")
    msg = grpc_message(b"\x02split across frames")
    c.data(1, msg[:3])
    c.data(3, msg[:7])
    c.raw(frame(PING, 0, 0, b"12345678"))
    c.data(1, msg[3:], end=True)
    c.raw(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1000)))
    c.data(3, msg[7:], end=True)
    yield "interleaved_streams_ping", c.out

    c = Client()
    c.headers(1, "Pause")
    for i in range(4):
        c.data(1, grpc_message(bytes([i]) * 10))
    c.data(1, b"", end=True)
    yield "pause_resume", c.out

    # Half-close with nothing held while paused, and by a trailer block.
    c = Client()
    c.headers(1, "Pause")
    c.data(1, b"", end=True)
    c.headers(3, "Pause")
    c.data(3, grpc_message(b"\x01t"))
    c.raw(frame(HEADERS, END_HEADERS | END_STREAM, 3, c.enc.encode([("x-t", "1")])))
    yield "pause_half_close", c.out

    c = Client()
    c.headers(1, "Fail", end=True)
    c.headers(3, "Cancel")
    c.data(3, grpc_message(b"x"))
    c.headers(5, "Nope", end=True)
    c.headers(7, "Echo", content_type="text/plain", end=True)
    yield "fail_cancel_unknown", c.out

    c = Client()
    c.headers(1, "Stream")
    c.data(1, grpc_message(b"\x03abc"))
    c.raw(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
    c.headers(3, "Echo")
    c.data(3, grpc_message(b"bye"), end=True)
    c.raw(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
    yield "client_rst_goaway", c.out

    c = Client()
    c.split_headers(1, "Echo", extra=[("x-long", "y" * 200)])
    c.data(1, grpc_message(b"q"), end=True)
    yield "continuation", c.out

    c = Client()
    c.headers(1, "Echo", extra=[("grpc-timeout", "1n")])
    c.data(1, grpc_message(b"\x00" * 10, declared=100), end=True)
    c.headers(3, "Echo")
    c.data(3, grpc_message(b"", compressed=True), end=True)
    yield "truncated_and_bad_flag", c.out

    # fuzz_server allows 8 concurrent streams.
    c = Client()
    for sid in range(1, 17, 2):
        c.headers(sid, "Stream")
    for sid in range(1, 17, 2):
        c.data(sid, grpc_message(b"\x04" + b"s" * 1000), end=True)
    yield "many_streams_backpressure", c.out

    c = Client(ack=False)
    for sid in range(1, 19, 2):
        c.headers(sid, "Echo")
    for sid in range(1, 19, 2):
        c.data(sid, grpc_message(b"r"), end=True)
    yield "refused_stream", c.out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "server")
    os.makedirs(out, exist_ok=True)
    for name, data in corpus():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
