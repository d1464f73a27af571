"""A raw HTTP/2 client for tests that must send what no gRPC library would.

This module owns one thing: talking HTTP/2 (h2c, prior knowledge) over a
plain socket, frame by frame, so a test can send malformed frames, bad
HPACK, floods of streams, and read exactly what the server answers (frames,
RST_STREAM codes, GOAWAY, end of connection). Frames are built by hand
here; header blocks are encoded and decoded with Debian's python3-hpack
(the server's nghttp2 answers with Huffman coding and a dynamic table),
and a test that wants broken HPACK writes the block bytes itself.

It does not know gRPC semantics beyond the helpers that frame a message
and read grpc-status; the assertions are the tests'. Every read is bounded
by a deadline: a server that stays silent fails the test, never hangs it.
"""

import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = range(10)
# Settings.
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3

# gRPC status codes the tests look for.
GRPC_OK = 0
GRPC_UNIMPLEMENTED = 12
GRPC_INTERNAL = 13
GRPC_RESOURCE_EXHAUSTED = 8

EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"
UNARY_CALL = "/grpc.testing.TestService/UnaryCall"


class Timeout(Exception):
    """The awaited frame or event did not come in time."""


def frame(ftype, flags, stream_id, payload=b""):
    """Returns one frame's bytes: the 9-byte header, then payload."""
    n = len(payload)
    hdr = struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF)
    return hdr + payload


def settings_frame(pairs=(), ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in pairs)
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def grpc_message(body=b"", compressed=False, declared=None):
    """A gRPC Length-Prefixed-Message; declared overrides the length field."""
    n = len(body) if declared is None else declared
    return struct.pack(">BI", 1 if compressed else 0, n) + body


def request_headers(path=EMPTY_CALL, content_type="application/grpc", extra=(), omit=()):
    """The header list of a gRPC request, minus the names in omit."""
    h = [(":method", "POST"), (":scheme", "http"), (":path", path),
         (":authority", "localhost"), ("te", "trailers"),
         ("content-type", content_type)]
    h = [(k, v) for k, v in h if k not in omit]
    return h + list(extra)


class Stream:
    """What the server sent on one stream."""

    def __init__(self, sid):
        self.id = sid
        self.blocks = []   # decoded header blocks, in order
        self.data = b""
        self.rst = None    # RST_STREAM error code
        self.ended = False  # END_STREAM received

    @property
    def closed(self):
        return self.ended or self.rst is not None

    def header(self, name, block=None):
        """The value of name in the given block (all blocks when None)."""
        blocks = self.blocks if block is None else [self.blocks[block]]
        for b in blocks:
            for k, v in b:
                if k == name:
                    return v
        return None

    @property
    def grpc_status(self):
        v = self.header("grpc-status")
        return None if v is None else int(v)

    @property
    def grpc_message(self):
        return self.header("grpc-message")

    def __repr__(self):
        return "<stream %d blocks=%r data=%d bytes rst=%r ended=%r>" % (
            self.id, self.blocks, len(self.data), self.rst, self.ended)


class Conn:
    """One raw HTTP/2 connection to 127.0.0.1:port.

    With handshake=True (the default) it sends the preface and an empty
    SETTINGS at once; frames read later are sorted into Stream objects
    (self.streams), GOAWAY into self.goaway = (last_stream_id, code, debug),
    and the end of the connection into self.eof. The server's SETTINGS are
    acknowledged as they are read, unless auto_ack is False.
    """

    def __init__(self, port, handshake=True, auto_ack=True, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.streams = {}
        self.goaway = None
        self.eof = False
        self.settings_seen = False
        self.server_settings = {}  # identifier -> value, from its SETTINGS
        self.settings_acked = False  # the server acknowledged ours
        self.pings = []
        self.frames = []  # (type, flags, stream id) of every frame read
        self._hdr = None  # (stream id, flags, fragments) of a header block in progress
        self.next_id = 1
        if handshake:
            self.send(PREFACE + settings_frame())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- sending ----------------------------------------------------------

    def send(self, data):
        self.sock.settimeout(self.timeout)  # reads leave a shorter one behind
        self.sock.sendall(data)

    def new_stream_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def encode(self, headers):
        return self.enc.encode(headers)

    def headers_frame(self, sid, headers, end_stream=False, raw_block=None):
        block = self.encode(headers) if raw_block is None else raw_block
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block)

    def data_frame(self, sid, payload, end_stream=False):
        return frame(DATA, END_STREAM if end_stream else 0, sid, payload)

    def request(self, headers=None, body=None, end_stream=True, sid=None):
        """Sends HEADERS (and DATA with body, if given); returns the stream id.
        end_stream goes on the last frame sent."""
        sid = sid or self.new_stream_id()
        headers = request_headers() if headers is None else headers
        out = self.headers_frame(sid, headers, end_stream=end_stream and body is None)
        if body is not None:
            out += self.data_frame(sid, body, end_stream=end_stream)
        self.send(out)
        return sid

    def ping(self, opaque=b"orchdpng"):
        self.send(frame(PING, 0, 0, opaque))

    # ---- receiving --------------------------------------------------------

    def stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout() from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_frame(self, deadline):
        """Reads one frame; returns (type, flags, stream_id, payload), or
        None at the end of the connection. Raises Timeout after deadline."""
        while True:
            if len(self.buf) >= 9:
                hi, lo, ftype, flags, sid = struct.unpack(">BHBBI", self.buf[:9])
                n = hi << 16 | lo
                if len(self.buf) >= 9 + n:
                    payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                    return ftype, flags, sid & 0x7FFFFFFF, payload
            if self.eof:
                return None
            self._recv(deadline)

    def _header_block(self, sid, flags, fragment):
        if self._hdr is None:
            self._hdr = (sid, flags, [fragment])
        else:
            self._hdr[2].append(fragment)
        if not flags & END_HEADERS:
            return
        sid, first_flags, frags = self._hdr
        self._hdr = None
        st = self.stream(sid)
        st.blocks.append([(k.decode() if isinstance(k, bytes) else k,
                           v.decode() if isinstance(v, bytes) else v)
                          for k, v in self.dec.decode(b"".join(frags))])
        if first_flags & END_STREAM:
            st.ended = True

    def handle(self, f):
        """Sorts one frame into the connection's state."""
        ftype, flags, sid, payload = f
        self.frames.append((ftype, flags, sid))
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acked = True
            else:
                self.settings_seen = True
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
                if self.auto_ack:
                    self.send(settings_frame(ack=True))
        elif ftype == HEADERS:
            if flags & PADDED:
                pad = payload[0]
                payload = payload[1:len(payload) - pad]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self._header_block(sid, flags, payload)
        elif ftype == CONTINUATION:
            self._header_block(sid, flags, payload)
        elif ftype == DATA:
            if flags & PADDED:
                pad = payload[0]
                payload = payload[1:len(payload) - pad]
            st = self.stream(sid)
            st.data += payload
            if flags & END_STREAM:
                st.ended = True
        elif ftype == RST_STREAM:
            self.stream(sid).rst = struct.unpack(">I", payload)[0]
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
        elif ftype == PING:
            if flags & ACK:
                self.pings.append(payload)
            else:
                try:
                    self.send(frame(PING, ACK, 0, payload))
                except OSError:
                    pass

    def run_until(self, pred, timeout=None, what="the awaited event"):
        """Reads frames until pred() is true; returns True. Returns False if
        the connection ended first. Raises Timeout naming what."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not pred():
            try:
                f = self.read_frame(deadline)
            except Timeout:
                raise Timeout("no %s within %.1fs (frames so far: %s)" % (
                    what, timeout or self.timeout, self.summary())) from None
            if f is None:
                return pred()
            self.handle(f)
        return True

    def wait_closed(self, sid, timeout=None):
        """Reads until stream sid is closed (END_STREAM or RST_STREAM), a
        GOAWAY arrives or the connection ends; returns the Stream."""
        self.run_until(lambda: self.stream(sid).closed or self.goaway is not None,
                       timeout, "end of stream %d" % sid)
        return self.stream(sid)

    def wait_eof(self, timeout=None):
        """Reads (and sorts) frames until the server closes the connection."""
        self.run_until(lambda: self.eof, timeout, "end of connection")
        # Whatever was buffered before the end is still to be sorted.
        while True:
            f = self.read_frame(time.monotonic() + 1)
            if f is None:
                break
            self.handle(f)

    def handshake(self, timeout=None):
        """Waits until the server's SETTINGS came and ours were acknowledged
        (with auto_ack, the server has then read our ACK too once a PING
        round trip is done)."""
        self.run_until(lambda: self.settings_seen and self.settings_acked, timeout,
                       "SETTINGS exchange")
        n = len(self.pings)
        self.ping()
        self.run_until(lambda: len(self.pings) > n, timeout, "PING ACK")

    def summary(self):
        names = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
                 "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
        out = ["%s(s=%d,f=%#x)" % (names[t] if t < len(names) else t, s, fl)
               for t, fl, s in self.frames[-12:]]
        if self.eof:
            out.append("EOF")
        return " ".join(out) or "none"

    def empty_call(self, timeout=None):
        """One EmptyCall on a new stream; returns its Stream once closed."""
        sid = self.request(body=grpc_message())
        return self.wait_closed(sid, timeout)
