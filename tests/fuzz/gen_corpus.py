#!/usr/bin/python3
"""Writes the seed corpora of the libFuzzer targets in tests/fuzz/, one
directory per target under tests/fuzz/corpus/:

    tests/fuzz/gen_corpus.py [TARGET...]     (default: every target)

  server    what a client sends on one h2c connection, for each of a few
            conversations with the methods fuzz_server registers
            (/fuzz.Fuzz/Echo, Stream, Fail, Pause, Cancel);
  decode    one type byte (fuzz_decode.c's table) and a serialized message
            of that type, for each message a role decodes, plus malformed
            ones (invalid UTF-8, NUL bytes, lengths past the end);
  progress  handler progress lines;
  cli       NUL-separated command-line words; the first is also fed to
            each value parser.

Files named regress-* reproduce a crash or false alarm a target once
found, so `make fuzz-regress` keeps it fixed.

The output is committed, so `make fuzz-regress` needs no Python; run this
again after changing it and commit what changed. Frames come from
tests/interop/h2raw.py, header blocks from python3-hpack (some with Huffman
and the dynamic table, some plain, so both decoder paths are seeded);
messages from the Python stubs `make pygen` writes to $B/py (B=build).
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


def server_corpus():
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


# ---- decode ------------------------------------------------------------------

# fuzz_decode.c's table of message types, by index.
SPEC, WORKER_RESPONSE, PROGRESS_REQUEST, GET_TASK, CANCEL_TASK, LIST_TASKS, LIST_WORKERS, \
    WORKER_STATUS, HEALTH, REFLECTION, ASSIGNMENT, ACCEPTED, CANCEL_RESPONSE, PROGRESS, TASK, \
    LIST_TASKS_RESPONSE, LIST_WORKERS_RESPONSE, ORCHD_HEALTH_RESPONSE, HEALTH_RESPONSE = range(19)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited field, written by hand (no library would send
    invalid UTF-8 in a string)."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def decode_corpus():
    import harness
    harness.load_stubs()
    from grpc.health.v1 import health_pb2
    from grpc.reflection.v1 import reflection_pb2 as refl
    from orchestrator.v1 import orchestrator_pb2 as pb

    def m(kind, msg):
        return bytes([kind]) + (msg if isinstance(msg, bytes) else
                                msg.SerializeToString(deterministic=True))

    spec = pb.TaskSpec(name="resize", description="thumbnails", payload=b"\x00\x01img",
                       priority=5, max_attempts=3, timeout_ms=30000, idempotency_key="k-1",
                       labels={"team": "media", "size": "small"})
    yield "spec_full", m(SPEC, spec)
    yield "spec_minimal", m(SPEC, pb.TaskSpec(name="echo"))
    yield "spec_rejected", m(SPEC, pb.TaskSpec(name="", max_attempts=-1, timeout_ms=-5,
                                               labels={"": "v"}))
    yield "spec_invalid_utf8_name", m(SPEC, field(1, b"bad\xff\xfename"))
    yield "spec_invalid_utf8_label", m(SPEC, field(1, b"ok") +
                                       field(8, field(1, b"k") + field(2, b"\xc3\x28")))
    yield "spec_nul_in_key", m(SPEC, field(1, b"ok") + field(7, b"a\x00b"))
    yield "spec_length_past_end", m(SPEC, varint(1 << 3 | 2) + varint(1 << 30) + b"abc")
    yield "spec_unknown_fields", m(SPEC, field(1, b"ok") + field(99, b"x") +
                                   varint(100 << 3) + varint(7))
    reg = pb.WorkerRegistration(worker_id="w1", slots=4, task_names=["echo", "sleep"],
                                version="0.1.0", running_task_ids=["t1"], address="127.0.0.1:1")
    yield "worker_registration", m(WORKER_RESPONSE, pb.WorkerResponse(registration=reg))
    yield "worker_heartbeat", m(WORKER_RESPONSE, pb.WorkerResponse(
        heartbeat=pb.WorkerHeartbeat(worker_id="w1", available_slots=2,
                                     running_task_ids=["t1"], draining=True)))
    yield "worker_progress", m(WORKER_RESPONSE, pb.WorkerResponse(
        progress=pb.WorkerProgress(task_id="t1", attempt=1, percent=40, message="half")))
    yield "worker_result", m(WORKER_RESPONSE, pb.WorkerResponse(
        result=pb.TaskResult(task_id="t1", status=pb.TASK_STATUS_FAILED, output=b"o",
                             error="boom", attempt=2)))
    yield "worker_result_status_99", m(WORKER_RESPONSE, bytes.fromhex("22") + bytes(
        [4]) + bytes.fromhex("1063") + bytes.fromhex("2801"))
    yield "progress_request", m(PROGRESS_REQUEST, pb.ProgressRequest(task_id="t1"))
    yield "get_task", m(GET_TASK, pb.GetTaskRequest(task_id="t1"))
    yield "cancel_task", m(CANCEL_TASK, pb.CancelTaskRequest(task_id="t1", reason="user"))
    yield "list_tasks", m(LIST_TASKS, pb.ListTasksRequest(
        status=pb.TASK_STATUS_RUNNING, name="echo", page_size=10, page_token="tok"))
    yield "list_tasks_status_99", m(LIST_TASKS, pb.ListTasksRequest(status=99))
    yield "list_workers", m(LIST_WORKERS, b"")
    yield "worker_status", m(WORKER_STATUS, b"")
    yield "health", m(HEALTH, health_pb2.HealthCheckRequest(service="orchestrator.v1.Gateway"))
    for name, req in [
            ("list_services", refl.ServerReflectionRequest(host="h", list_services="")),
            ("file_by_filename", refl.ServerReflectionRequest(
                file_by_filename="orchestrator/v1/orchestrator.proto")),
            ("file_containing_symbol", refl.ServerReflectionRequest(
                file_containing_symbol="orchestrator.v1.Gateway.SubmitTask")),
            ("extension_numbers", refl.ServerReflectionRequest(
                all_extension_numbers_of_type="orchestrator.v1.TaskSpec")),
            ("extension", refl.ServerReflectionRequest(
                file_containing_extension=refl.ExtensionRequest(
                    containing_type="orchestrator.v1.TaskSpec", extension_number=5)))]:
        yield "reflection_" + name, m(REFLECTION, req)
    yield "assignment_assign", m(ASSIGNMENT, pb.TaskAssignment(assign=pb.TaskAssignment.Assign(
        task_id="t1", spec=spec, attempt=1, deadline_unix_ms=1700000000000)))
    yield "assignment_cancel", m(ASSIGNMENT, pb.TaskAssignment(
        cancel=pb.TaskAssignment.Cancel(task_id="t1", reason="lease expired")))
    yield "assignment_welcome", m(ASSIGNMENT, pb.TaskAssignment(
        welcome=pb.TaskAssignment.Welcome(worker_id="w1", heartbeat_interval_ms=1000,
                                          dead_timeout_ms=5000, version="0.1.0")))
    yield "accepted", m(ACCEPTED, pb.TaskAccepted(task_id="t1", accepted_at_unix_ms=1,
                                                  duplicate=True))
    yield "cancel_response", m(CANCEL_RESPONSE, pb.CancelTaskResponse(
        task_id="t1", status=pb.TASK_STATUS_CANCELLED))
    result = pb.TaskResult(task_id="t1", status=pb.TASK_STATUS_COMPLETED, output=b"out",
                           attempt=1)
    yield "progress", m(PROGRESS, pb.TaskProgress(
        task_id="t1", status=pb.TASK_STATUS_COMPLETED, percent=100, message="done",
        timestamp_unix_ms=2, result=result, attempt=1))
    task = pb.Task(task_id="t1", spec=spec, status=pb.TASK_STATUS_COMPLETED, attempt=1,
                   created_unix_ms=1, started_unix_ms=2, finished_unix_ms=3, result=result,
                   worker_id="w1", percent=100, message="done")
    yield "task", m(TASK, task)
    yield "list_tasks_response", m(LIST_TASKS_RESPONSE, pb.ListTasksResponse(
        tasks=[task, pb.Task(task_id="t2")], next_page_token="t2"))
    yield "list_workers_response", m(LIST_WORKERS_RESPONSE, pb.ListWorkersResponse(workers=[
        pb.WorkerInfo(worker_id="w1", task_names=["echo"], slots=2, available_slots=1,
                      running_task_ids=["t1"], version="0.1.0", connected_unix_ms=1,
                      last_heartbeat_unix_ms=2, address="127.0.0.1:1")]))
    yield "orchd_health_response", m(ORCHD_HEALTH_RESPONSE, pb.HealthCheckResponse(
        status=pb.HealthCheckResponse.SERVING, role="gateway", version="0.1.0", uptime_ms=9))
    yield "health_response", m(HEALTH_RESPONSE, health_pb2.HealthCheckResponse(status=1))
    # A field number 0 kept as an unknown field, which protobuf-c packs but
    # will not read back: the round-trip check must leave it alone.
    yield "regress-unknown_field_zero", bytes([TASK]) + b"\x80\x00\x3b"


# ---- progress ----------------------------------------------------------------

def progress_corpus():
    lines = {
        "bare": b"50",
        "message": b"50 half way there\n",
        "percent_sign_crlf": b"  7.5% resizing images\r\n",
        "hundred": b"100%",
        "over_hundred": b"101 too much",
        "huge_number": b"99999999999999999999999 x",
        "not_a_number": b"abc 50",
        "tabs": b"\t42\tmsg with\ttabs\t\t",
        "invalid_utf8": b"30 \xff\xfe\xc3\x28 bytes",
        "wide_and_emoji": "60 日本語 ✓ 🚀".encode(),
        "combining": "70 e\u0301te\u0301".encode(),
        "long_message": b"80 " + b"m" * 600,
        "nul_inside": b"90 a\x00b",
    }
    for name, line in lines.items():
        yield name, line


# ---- cli -----------------------------------------------------------------------

def cli_corpus():
    words = {
        "duration": ["1.5m"],
        "size": ["512KiB"],
        "label": ["team=media=x"],
        "status": ["TASK_STATUS_RUNNING"],
        "flags": ["pos1", "--listen", "127.0.0.1:1", "--slots=4", "--heartbeat", "2s",
                  "--max-payload=1M", "--tls", "--label", "k=v", "--label=a=b", "--", "-x",
                  "250ms"],
        "help": ["-h"],
        "unknown_flag": ["--nope=1", "x"],
        "missing_value": ["--heartbeat"],
        "bad_values": ["--slots", "9999999999", "--max-payload", "1T"],
        # Found by fuzz_cli: strtod took " -8" (or "\n-8") as -8 ms, and
        # strtoull negated " -1" into a huge size.
        "regress-negative_after_blank": ["\n-8", "--timeout", " -8", "--max-payload", " -1"],
        "regress-nan": ["nan", "--heartbeat=nan"],
    }
    for name, w in words.items():
        yield name, b"\0".join(x.encode() for x in w)


CORPORA = {
    "server": server_corpus,
    "decode": decode_corpus,
    "progress": progress_corpus,
    "cli": cli_corpus,
}


def main():
    targets = sys.argv[1:] or list(CORPORA)
    for t in targets:
        if t not in CORPORA:
            sys.stderr.write("gen_corpus.py: no target %r (have: %s)\n" % (t, " ".join(CORPORA)))
            return 2
    for t in targets:
        out = os.path.join(HERE, "corpus", t)
        os.makedirs(out, exist_ok=True)
        for name, data in CORPORA[t]():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
