"""Shared helpers for the Python interop/integration tests.

This module owns three things every Python test driver needs:
  * finding the protoc-generated stubs (`make pygen` puts them in $B/py) and
    making `grpc.testing` / `grpc.health.v1` importable next to the system
    grpc package;
  * the message codec both interop peers use to see, per message, whether it
    travelled compressed on the wire (grpcio 1.51 has no API for that);
  * child processes: start one, read the `PORT <n>` line it prints, stop it,
    and make sure nothing outlives the test (atexit + parent-death signal).

It does not own the gRPC service logic; that lives in client.py and server.py.
Run with /usr/bin/python3 (Debian's python3-grpcio), never a pyenv python.
"""

import atexit
import collections
import ctypes
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---------------------------------------------------------------------------
# Generated stubs
# ---------------------------------------------------------------------------


def build_dir():
    """Returns the absolute build directory: $B if set, else <repo>/build."""
    return os.path.abspath(os.environ.get("B") or os.path.join(ROOT, "build"))


def load_stubs():
    """Makes the generated stubs importable and returns their directory.

    The stubs for /usr/share/grpc-proto live under $B/py/grpc/..., but `grpc`
    is already the (regular, non-namespace) grpcio package, so Python never
    looks in $B/py/grpc for `grpc.testing`. Extending grpc.__path__ fixes that
    without touching the installed package. Exits with a clear message if the
    stubs were never generated.
    """
    import grpc

    candidates = [p for p in sys.path if p]
    candidates += [os.path.join(build_dir(), "py")]
    for d in candidates:
        d = os.path.abspath(d)
        if os.path.isfile(os.path.join(d, "grpc", "testing", "test_pb2.py")):
            extra = os.path.join(d, "grpc")
            if extra not in grpc.__path__:
                grpc.__path__.append(extra)
            if d not in sys.path:
                sys.path.insert(0, d)
            return d
    sys.stderr.write(
        "interop: generated stubs not found (looked in PYTHONPATH and %s/py);"
        " run `make pygen` first\n" % build_dir())
    sys.exit(2)


# ---------------------------------------------------------------------------
# Command lines
# ---------------------------------------------------------------------------


def bool_flag(parser, name, help):
    """Adds --name to an argparse parser, accepting both the bare flag and the
    interop convention --name=true|false."""

    def parse(text):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)

    parser.add_argument("--" + name, nargs="?", const=True, default=False,
                        type=parse, metavar="BOOL", help=help)


# ---------------------------------------------------------------------------
# Message codec that remembers compression
# ---------------------------------------------------------------------------
#
# Both peers run grpcio with ("grpc.per_message_decompression", 0), so core
# hands the application each message exactly as framed on the wire: gzip or
# zlib bytes when the Compressed-Flag was 1, the plain protobuf when it was 0.
# A serialized protobuf never starts with 0x1f (field 3, wire type 7 does not
# exist), so the gzip magic is unambiguous; deflate (zlib) is recognised by its
# header checksum and only accepted if it actually inflates.

Received = collections.namedtuple("Received", "msg compressed wire_len")

DECOMPRESSION_OFF = ("grpc.per_message_decompression", 0)


def inflate(data):
    """Returns (plain bytes, was_compressed) for a message as received."""
    if data[:2] == b"\x1f\x8b":
        return zlib.decompress(data, 16 + zlib.MAX_WBITS), True
    if len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0:
        try:
            return zlib.decompress(data), True
        except zlib.error:
            pass
    return data, False


def decoder(cls):
    """A grpcio deserializer yielding Received(msg, compressed, wire_len)."""

    def decode(data):
        plain, compressed = inflate(data)
        return Received(cls.FromString(plain), compressed, len(data))

    return decode


def encode(msg):
    """The grpcio serializer that pairs with decoder()."""
    return msg.SerializeToString()


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

_children = []
_tmpdirs = []
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: if the test driver dies
    # without cleaning up (SIGKILL, timeout), the kernel kills the child too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def start(argv, stdout=subprocess.PIPE, stderr=None, env=None):
    """Starts argv in the background; returns the Popen.

    The process is registered for cleanup at exit. stdout is a pipe by
    default so that read_port() can read the `PORT <n>` line.
    """
    proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    _children.append(proc)
    return proc


def read_port(proc, timeout=20.0):
    """Reads proc's stdout until a `PORT <n>` line; returns n.

    Raises RuntimeError if the process exits or prints nothing matching
    within timeout seconds. Lines before the PORT line are echoed to stderr.
    """
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            nl = buf.find(b"\n")
            while nl >= 0:
                line, buf = buf[:nl].decode(errors="replace"), buf[nl + 1:]
                m = re.fullmatch(r"PORT (\d+)\s*", line)
                if m:
                    return int(m.group(1))
                sys.stderr.write("[%s] %s\n" % (proc.args[0], line))
                nl = buf.find(b"\n")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%s: no PORT line within %.0fs" % (proc.args[0], timeout))
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                raise RuntimeError("%s exited (rc=%s) before printing PORT" % (proc.args[0], rc))
            buf += chunk
    finally:
        sel.close()


def stop(proc, timeout=5.0):
    """Stops proc: SIGTERM, then SIGKILL after timeout. Returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if proc.stdout:
        proc.stdout.close()
    if proc in _children:
        _children.remove(proc)
    return proc.returncode


class Server:
    """Context manager: a server process that prints `PORT <n>` when ready.

        with harness.Server([exe, "--port", "0"]) as srv:
            connect("127.0.0.1", srv.port)
    """

    def __init__(self, argv, timeout=20.0):
        self.argv = argv
        self.timeout = timeout
        self.proc = None
        self.port = None

    def __enter__(self):
        self.proc = start(self.argv)
        try:
            self.port = read_port(self.proc, self.timeout)
        except BaseException:
            stop(self.proc)
            raise
        return self

    def __exit__(self, *exc):
        stop(self.proc)
        return False


def tempdir(prefix="orchd-test."):
    """Makes a temporary directory removed at exit; returns its path."""
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


@atexit.register
def _cleanup():
    for proc in list(_children):
        try:
            stop(proc, timeout=2.0)
        except Exception:  # cleanup must go on for the others
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
