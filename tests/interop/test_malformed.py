#!/usr/bin/python3
"""Malformed requests over real connections to real roles: each gets a
clear gRPC status, nothing crashes or leaks, and everyone else is served.

Starts a scheduler, a gateway (--max-streams 8, for the flood case) and a
worker (built-in handlers) on 127.0.0.1 (tests/integration/cluster.py),
then sends what no well-behaved client would: raw request bytes through
python3-grpcio (no serializer, so any bytes go out as the message), a
worker stream driven by the test, and raw HTTP/2 (h2raw.py) for a client
that opens streams and never reads. Cases:

  * invalid UTF-8 and NUL bytes in string fields: INVALID_ARGUMENT naming
    the field (lib/pb.h pb_unpack; protobuf-c itself checks neither), at the
    gateway and at the scheduler, for specs, labels, cancel reasons, list
    filters, task ids and worker messages; nothing stored, so every client
    can still read every task;
  * huge declared lengths (a field, a nested entry, the gRPC frame):
    INVALID_ARGUMENT, or RESOURCE_EXHAUSTED past the message size limit;
  * unknown enum values: ListTasks with status 99 or -1 is INVALID_ARGUMENT
    (a filter naming no status is a client bug, not "match nothing"); a
    worker result with status 99 counts as a failure (only COMPLETED and
    CANCELLED are anything else); unknown fields are ignored, as proto3
    says;
  * zero-length names: an empty task name, label key, worker id or handler
    name is INVALID_ARGUMENT; an empty task id names no task (NOT_FOUND);
  * 10,000 labels: INVALID_ARGUMENT (task_labels_check, TASK_LABELS_MAX);
  * deeply repeated fields: 100,000 task names or 500,000 empty ones in a
    registration, 100,000 label entries: INVALID_ARGUMENT; a singular field
    repeated 100,000 times: the last one counts;
  * a registration claiming 20,000 running tasks: a Cancel for each, none
    dropped; four assignments at the payload limit in one turn: all sent;
  * clients that open as many streams as allowed and never read: the
    gateway holds at most --max-streams answers per connection (its RSS
    stays bounded), one stream more than allowed is refused, other clients
    are served meanwhile, and the slow readers get every answer when they
    read at last.

After every case the bystanders (clients opened before the first case, and
a fresh one) must be served: health SERVING on gateway and scheduler, a
task submitted and COMPLETED, every task listed and decoded. At the end
each role must exit 0 on SIGTERM (under B=build-san: no leak, no report).
Prints PASS/FAIL per case; exits 0 only if all passed (77: roles not
built). Arguments: case names (substrings) to run only those.
"""

import os
import queue
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
# Freed memory held in ASan's quarantine would count as RSS in the flood
# case; a small quarantine keeps the bound meaningful under B=build-san.
os.environ["ASAN_OPTIONS"] = ":".join(
    x for x in (os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16") if x)
import cluster  # noqa: E402  (loads the stubs)
from cluster import COMPLETED, FAILED, SC, Failure, Role, check, eq, pb, poll  # noqa: E402

import grpc  # noqa: E402
import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from h2raw import (REFUSED_STREAM, WINDOW_UPDATE, Conn, frame, grpc_message,  # noqa: E402
                   request_headers, settings_frame)

GW = "/orchestrator.v1.Gateway/"
SCHED = "/orchestrator.v1.Scheduler/"
GW_MAX_STREAMS = 8  # the gateway's --max-streams
SETTINGS_INITIAL_WINDOW_SIZE = 0x4


# ---- wire helpers ----------------------------------------------------------------


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def field(num, payload):
    """A length-delimited field by hand: grpcio's stubs would refuse to
    serialize the invalid strings these tests need."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, value):
    """A varint field (value as the wire's unsigned 64 bits)."""
    return varint(num << 3) + varint(value & (2**64 - 1))


def label(key, value):
    return field(8, field(1, key) + field(2, value))


def spec_bytes(**kw):
    return pb.TaskSpec(**kw).SerializeToString()


# ---- the cluster and raw calls ---------------------------------------------------


class Cluster:
    def __init__(self, tmp):
        self.sched = Role.scheduler(os.path.join(tmp, "data"))
        self.gw = Role.gateway(self.sched.port, "--max-streams", str(GW_MAX_STREAMS))
        self.worker = Role.worker(self.sched.port, "--slots", "4", "--worker-id", "w-main")
        self.roles = [self.worker, self.gw, self.sched]
        self.raw = {r: r.channel() for r in (self.gw, self.sched)}

    def alive(self):
        for r in self.roles:
            check(r.proc.poll() is None, "%s exited with %s; log tail:\n%s", r.role,
                  r.proc.returncode, r.tail())


C = None  # the Cluster


def call(role, method, body, timeout=10):
    """Unary method (a full path) on role with body as the request's bytes.
    Returns (code, details, response bytes or None)."""
    fn = C.raw[role].unary_unary(method)
    try:
        return SC.OK, "", fn(body, timeout=timeout)
    except grpc.RpcError as e:
        return e.code(), e.details(), None


def stream_call(role, method, body, timeout=10):
    """Server-streaming method: returns (code, details, messages)."""
    fn = C.raw[role].unary_stream(method)
    got = []
    try:
        for m in fn(body, timeout=timeout):
            got.append(m)
        return SC.OK, "", got
    except grpc.RpcError as e:
        return e.code(), e.details(), got


def expect(role, method, body, code, text=None, what=""):
    got, details, _ = call(role, method, body)
    check(got == code, "%s %s: got %s %r, want %s", what or method, role.role, got, details,
          code)
    if text is not None:
        check(text in details, "%s %s: message %r does not say %r", what or method, role.role,
              details, text)
    return details


def both(method, body, code, text=None, what=""):
    """The same request through the gateway and straight to the scheduler
    (the gateway checks specs itself, then forwards the bytes unchanged)."""
    expect(C.gw, GW + method, body, code, text, what)
    expect(C.sched, SCHED + method, body, code, text, what)


class WorkerStream:
    """A RegisterWorker stream driven by the test: messages are raw bytes
    (put with send), answers are decoded into self.got as they come."""

    def __init__(self, first=None, timeout=60):
        self.q = queue.Queue()
        self.got = queue.Queue()
        self.code = None
        self.details = None
        self.done = threading.Event()
        if first is not None:
            self.q.put(first)
        fn = C.sched.channel().stream_stream(SCHED + "RegisterWorker",
                                             response_deserializer=pb.TaskAssignment.FromString)
        self.call = fn(self._requests(), timeout=timeout)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self):
        while True:
            m = self.q.get()
            if m is None:
                return
            yield m

    def _read(self):
        try:
            for a in self.call:
                self.got.put(a)
            self.code, self.details = SC.OK, ""
        except grpc.RpcError as e:
            self.code, self.details = e.code(), e.details()
        self.done.set()

    def send(self, msg):
        self.q.put(msg if isinstance(msg, bytes) else msg.SerializeToString())

    def next(self, kind, timeout=10):
        """The next answer with kind set (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                a = self.got.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise Failure("no %s on the worker stream within %ds (ended: %s %r)" % (
                    kind, timeout, self.code, self.details)) from None
            if a.WhichOneof("kind") == kind:
                return getattr(a, kind)

    def ended(self, timeout=10):
        """Waits for the stream's end; returns (code, details)."""
        check(self.done.wait(timeout), "worker stream still open after %ds", timeout)
        return self.code, self.details

    def close(self):
        self.q.put(None)
        self.call.cancel()
        self.thread.join(10)


def registration(**kw):
    kw.setdefault("slots", 1)
    kw.setdefault("version", "test")
    return pb.WorkerResponse(registration=pb.WorkerRegistration(**kw)).SerializeToString()


def expect_refused(reg, code, text, what):
    """A registration (bytes) the scheduler must refuse."""
    ws = WorkerStream(reg)
    try:
        got, details = ws.ended()
        check(got == code, "%s: stream ended %s %r, want %s", what, got, details, code)
        check(text in details, "%s: message %r does not say %r", what, details, text)
    finally:
        ws.close()


# ---- the cases ----------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


BAD_UTF8 = {
    "lone continuation": b"abc\x80",
    "truncated sequence": b"\xe6\x97",
    "overlong slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "past U+10FFFF": b"\xf4\x90\x80\x80",
    "0xff": b"\xff",
}


@case
def invalid_utf8_in_string_fields():
    for what, bad in BAD_UTF8.items():
        both("SubmitTask", field(1, bad), SC.INVALID_ARGUMENT, "TaskSpec.name is not valid UTF-8",
             "name with " + what)
    both("SubmitTask", field(1, b"echo") + field(2, b"desc \xff"), SC.INVALID_ARGUMENT,
         "TaskSpec.description is not valid UTF-8")
    both("SubmitTask", field(1, b"echo") + field(7, b"key\xc3"), SC.INVALID_ARGUMENT,
         "TaskSpec.idempotency_key is not valid UTF-8")
    both("SubmitTask", field(1, b"echo") + label(b"k\xfe", b"v"), SC.INVALID_ARGUMENT,
         "LabelsEntry.key is not valid UTF-8")
    both("SubmitTask", field(1, b"echo") + label(b"k", b"\xed\xbf\xbf"), SC.INVALID_ARGUMENT,
         "LabelsEntry.value is not valid UTF-8")
    # A NUL would cut the C string short: "a\0b" must not become "a".
    both("SubmitTask", field(1, b"echo\x00rm"), SC.INVALID_ARGUMENT,
         "TaskSpec.name contains a NUL byte")
    both("SubmitTask", field(1, b"echo") + field(7, b"k\x00"), SC.INVALID_ARGUMENT,
         "TaskSpec.idempotency_key contains a NUL byte")
    # Bytes fields carry anything.
    expect(C.gw, GW + "SubmitTask", field(1, b"echo") + field(3, b"\xff\x00\xfe"), SC.OK,
           what="binary payload")

    # Every other request with a string in it.
    both("GetTask", field(1, b"\xff" * 26), SC.INVALID_ARGUMENT,
         "GetTaskRequest.task_id is not valid UTF-8")
    both("CancelTask", field(1, b"01ARZ3NDEKTSV4RRFFQ69G5FAV") + field(2, b"why \xc3("),
         SC.INVALID_ARGUMENT, "CancelTaskRequest.reason is not valid UTF-8")
    both("ListTasks", field(2, b"echo\xff"), SC.INVALID_ARGUMENT,
         "ListTasksRequest.name is not valid UTF-8")
    both("ListTasks", field(4, b"\xc0\x80"), SC.INVALID_ARGUMENT,
         "ListTasksRequest.page_token is not valid UTF-8")
    for role, method in ((C.gw, GW + "SubscribeProgress"), (C.sched, SCHED + "WatchTask")):
        code, details, got = stream_call(role, method, field(1, b"t\xff"))
        check(code == SC.INVALID_ARGUMENT and "ProgressRequest.task_id" in details,
              "%s with an invalid task_id: %s %r", method, code, details)

    # Worker streams: the registration, then a later message.
    expect_refused(registration(worker_id="w", task_names=["echo"])[:-1], SC.INVALID_ARGUMENT,
                   "WorkerResponse does not decode as protobuf", "truncated registration")
    bad_reg = field(1, field(1, b"w\xff") + vfield(2, 1) + field(3, b"echo"))
    expect_refused(bad_reg, SC.INVALID_ARGUMENT, "WorkerRegistration.worker_id is not valid",
                   "worker_id")
    bad_names = field(1, field(1, b"w-utf8") + vfield(2, 1) + field(3, b"ok") +
                      field(3, b"\xe2\x82"))
    expect_refused(bad_names, SC.INVALID_ARGUMENT, "WorkerRegistration.task_names", "task_names")
    ws = WorkerStream(registration(worker_id="w-utf8-progress", task_names=["nothing"]))
    try:
        ws.next("welcome")
        ws.send(field(3, field(1, b"t") + field(4, b"50% \xff")))
        code, details = ws.ended()
        check(code == SC.INVALID_ARGUMENT and "WorkerProgress.message" in details,
              "progress with invalid UTF-8: %s %r", code, details)
    finally:
        ws.close()


@case
def huge_declared_lengths():
    # A string declaring 2 GiB and bringing 3 bytes.
    both("SubmitTask", b"\x0a" + varint(2**31) + b"abc", SC.INVALID_ARGUMENT,
         "TaskSpec does not decode as protobuf", "2 GiB name")
    # A length that does not fit 64 bits, and one cut short.
    both("SubmitTask", b"\x0a" + b"\xff" * 10 + b"\x01", SC.INVALID_ARGUMENT,
         "does not decode", "11-byte varint")
    both("SubmitTask", b"\x0a\x85", SC.INVALID_ARGUMENT, "does not decode", "truncated varint")
    # A label entry longer than the spec around it.
    entry = field(1, b"k") + field(2, b"v")
    both("SubmitTask", field(1, b"echo") + b"\x42" + varint(len(entry) + 100) + entry,
         SC.INVALID_ARGUMENT, "does not decode", "label entry past the end")
    # Inside the entry: a key declaring more than the entry holds.
    both("SubmitTask", field(1, b"echo") + field(8, b"\x0a\x7fk"), SC.INVALID_ARGUMENT,
         "does not decode", "key past its entry")
    both("CancelTask", b"\x12" + varint(1 << 40), SC.INVALID_ARGUMENT, "does not decode",
         "2^40 reason")
    # The gRPC frame itself declaring 4 GiB: refused before any is read.
    for role, path in ((C.gw, GW + "SubmitTask"), (C.sched, SCHED + "SubmitTask")):
        with Conn(role.port) as c:
            c.handshake()
            sid = c.request(headers=request_headers(path),
                            body=grpc_message(b"\x0a\x01x", declared=0xFFFFFFFF),
                            end_stream=False)
            st = c.wait_closed(sid)
            check(st.grpc_status == SC.RESOURCE_EXHAUSTED.value[0],
                  "%s: 4 GiB gRPC frame got %r", role.role, st)


@case
def unknown_enum_values():
    for status in (99, -1, 6):
        both("ListTasks", vfield(1, status), SC.INVALID_ARGUMENT,
             "status %d is not a TaskStatus" % status, "ListTasks status %d" % status)
    for status in range(0, 6):
        both("ListTasks", vfield(1, status), SC.OK, None, "ListTasks status %d" % status)
    # Unknown fields are skipped (proto3): a newer client still submits.
    body = field(1, b"echo") + field(3, b"u") + field(99, b"from the future") + vfield(100, 7)
    code, details, raw = call(C.gw, GW + "SubmitTask", body)
    eq(code, SC.OK, "spec with unknown fields")
    tid = pb.TaskAccepted.FromString(raw).task_id
    eq(cluster.follow(C.gw.stub(), tid)[-1].result.output, b"u", "its output")

    # A worker's result with status 99 is a failure (not COMPLETED, not
    # CANCELLED): with one attempt allowed, the task ends FAILED.
    ws = WorkerStream(registration(worker_id="w-enum", task_names=["enum99"]))
    try:
        ws.next("welcome")
        stub = C.gw.stub()
        tid = cluster.submit(stub, name="enum99", max_attempts=1).task_id
        a = ws.next("assign")
        eq(a.task_id, tid, "assigned task")
        ws.send(pb.WorkerResponse(result=pb.TaskResult(task_id=tid, status=99, attempt=a.attempt,
                                                       error="odd status")))
        t = poll(lambda: (lambda t: t if t.status == FAILED else None)(cluster.get(stub, tid)),
                 10, "task %s FAILED" % tid)
        check("odd status" in t.result.error, "its error: %r", t.result.error)
        ws.send(pb.WorkerResponse(heartbeat=pb.WorkerHeartbeat(worker_id="w-enum")))
    finally:
        ws.close()


@case
def zero_length_names():
    both("SubmitTask", spec_bytes(name=""), SC.INVALID_ARGUMENT, "name is empty")
    both("SubmitTask", b"", SC.INVALID_ARGUMENT, "name is empty", "empty message")
    both("SubmitTask", spec_bytes(name="echo", labels={"": "v"}), SC.INVALID_ARGUMENT,
         "empty key")
    both("SubmitTask", spec_bytes(name="echo", labels={"k": ""}), SC.OK, None, "empty value")
    # An empty id names no task.
    both("GetTask", b"", SC.NOT_FOUND)
    both("CancelTask", b"", SC.NOT_FOUND)
    code, _, _ = stream_call(C.gw, GW + "SubscribeProgress", b"")
    eq(code, SC.NOT_FOUND, "SubscribeProgress of an empty id")
    expect_refused(registration(worker_id="", task_names=["echo"]), SC.INVALID_ARGUMENT,
                   "worker_id", "empty worker_id")
    expect_refused(registration(worker_id="w-empty", task_names=["echo", ""]),
                   SC.INVALID_ARGUMENT, "empty", "empty task name")
    expect_refused(registration(worker_id="w-none", task_names=[]), SC.INVALID_ARGUMENT,
                   "task names", "no task names")
    # The first message of a worker stream must be a registration.
    expect_refused(pb.WorkerResponse(heartbeat=pb.WorkerHeartbeat()).SerializeToString(),
                   SC.INVALID_ARGUMENT, "registration", "heartbeat first")
    expect_refused(b"", SC.INVALID_ARGUMENT, "registration", "empty message first")


@case
def ten_thousand_labels():
    labels = {"k%05d" % i: "v" for i in range(10000)}
    both("SubmitTask", spec_bytes(name="echo", labels=labels), SC.INVALID_ARGUMENT,
         "10000 labels, the limit is 64")
    # The limit itself is fine, one more is not.
    at = {"k%02d" % i: "v" for i in range(64)}
    both("SubmitTask", spec_bytes(name="echo", labels=at), SC.OK, None, "64 labels")
    at["k64"] = "v"
    both("SubmitTask", spec_bytes(name="echo", labels=at), SC.INVALID_ARGUMENT,
         "65 labels", "65 labels")


@case
def deeply_repeated_fields():
    expect_refused(registration(worker_id="w-many", task_names=["n%d" % i for i in range(100000)]),
                   SC.INVALID_ARGUMENT, "1 to 1024 task names", "100,000 task names")
    expect_refused(registration(worker_id="w-empties", task_names=[""] * 500000),
                   SC.INVALID_ARGUMENT, "1 to 1024 task names", "500,000 empty task names")
    # Map entries repeat too (the scheduler takes 1 MiB messages): one key
    # 100,000 times is 100,000 labels.
    both("SubmitTask", field(1, b"echo") + label(b"k", b"") * 100000, SC.INVALID_ARGUMENT,
         "100000 labels, the limit is 64", "100,000 label entries")
    # A singular field sent 100,000 times: the last one counts.
    body = b"".join(field(1, b"n%d" % i) for i in range(99999)) + field(1, b"echo") + \
        field(3, b"last")
    code, details, raw = call(C.gw, GW + "SubmitTask", body)
    eq(code, SC.OK, "100,000 names, last one echo")
    up = cluster.follow(C.gw.stub(), pb.TaskAccepted.FromString(raw).task_id)[-1]
    eq((up.status, up.result.output), (COMPLETED, b"last"), "its result")


@case
def repeated_running_ids_and_big_assignments():
    """A registration claiming 20,000 running tasks the scheduler never
    assigned gets a Cancel for each, none dropped, and the stream stays
    usable; four assignments at the payload limit in one turn all arrive.
    (The scheduler used to drop what its worker stream's queue could not
    take: cancels past the high-water mark, and big assignments after the
    first, leaving those tasks RUNNING on a worker that never heard of
    them.)"""
    n = 20000
    ids = ["%026d" % i for i in range(n)]
    ws = WorkerStream(registration(worker_id="w-claims", task_names=["claims"],
                                   running_task_ids=ids))
    try:
        ws.next("welcome")
        cancelled = set()
        for _ in range(n):
            cancelled.add(ws.next("cancel").task_id)
        eq(cancelled, set(ids), "cancelled ids")
        ws.send(pb.WorkerResponse(heartbeat=pb.WorkerHeartbeat(worker_id="w-claims")))
        check(not ws.done.wait(0.5), "stream ended: %s %r", ws.code, ws.details)
    finally:
        ws.close()

    stub = C.gw.stub()
    big = 1000 * 1000  # under --max-payload's 1 MiB default
    tids = {cluster.submit(stub, name="bigpay", payload=bytes([48 + i]) * big).task_id
            for i in range(4)}
    ws = WorkerStream(registration(worker_id="w-big", slots=4, task_names=["bigpay"]))
    try:
        ws.next("welcome")
        got = {ws.next("assign").task_id for _ in range(4)}
        eq(got, tids, "assigned tasks")
        for tid in tids:
            ws.send(pb.WorkerResponse(result=pb.TaskResult(task_id=tid, status=COMPLETED,
                                                           attempt=1)))
        for tid in tids:
            poll(lambda: cluster.get(stub, tid).status == COMPLETED, 10, "%s COMPLETED" % tid)
    finally:
        ws.close()


def rss_mb(role):
    with open("/proc/%d/status" % role.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise Failure("no VmRSS for %s" % role.role)


def flood(path, body, n):
    """A connection that opens n streams of path with body and reads
    nothing more after the handshake. Returns (conn, stream ids)."""
    c = Conn(C.gw.port, timeout=30)
    c.handshake()
    sids = [c.new_stream_id() for _ in range(n)]
    c.send(b"".join(c.headers_frame(sid, request_headers(path)) +
                    c.data_frame(sid, grpc_message(body), end_stream=True) for sid in sids))
    return c, sids


@case
def streams_never_read():
    """Clients that open as many ListTasks streams as allowed, with ~2 MB
    answers, and never read: the gateway holds at most --max-streams
    answers per connection, serves everyone else meanwhile, and delivers
    every answer once they read. One stream more than allowed ends that
    connection (nghttp2: GOAWAY PROTOCOL_ERROR) or is refused."""
    conns, answer_tasks, desc = 2, 100, 20000
    stub = C.gw.stub()
    for i in range(answer_tasks):
        # No worker runs "parked": they stay PENDING.
        cluster.submit(stub, name="parked", description="%05d" % i + "d" * desc)
    req = pb.ListTasksRequest(name="parked", page_size=answer_tasks).SerializeToString()
    answer = len(stub.ListTasks(pb.ListTasksRequest(name="parked", page_size=answer_tasks),
                                timeout=10).SerializeToString())
    check(answer > answer_tasks * desc, "answer of %d bytes", answer)

    # Over the limit.
    c, sids = flood(GW + "ListTasks", req, GW_MAX_STREAMS + 1)
    with c:
        eq(c.server_settings.get(3), GW_MAX_STREAMS, "SETTINGS_MAX_CONCURRENT_STREAMS")
        c.run_until(lambda: c.stream(sids[-1]).closed or c.goaway is not None, 30,
                    "the stream over the limit refused")
        check(c.stream(sids[-1]).rst == REFUSED_STREAM or
              (c.goaway is not None and c.goaway[0] < sids[-1]),
              "the stream over the limit: %r, goaway %r", c.stream(sids[-1]), c.goaway)

    base = rss_mb(C.gw)
    floods = []
    try:
        for _ in range(conns):
            floods.append(flood(GW + "ListTasks", req, GW_MAX_STREAMS))
        # Let the gateway fetch and queue what it will.
        peak, last, stable = base, -1.0, 0
        deadline = time.monotonic() + 20
        while stable < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
            now = rss_mb(C.gw)
            peak = max(peak, now)
            stable = stable + 1 if abs(now - last) < 1 else 0
            last = now
        # At most --max-streams answers per connection, with the relay's
        # copies (received from the scheduler, queued for the client).
        limit = 3 * conns * GW_MAX_STREAMS * answer / 2**20 + 32
        print("  gateway RSS %.0f MB, peak %.0f MB with %d x %d streams of %d-byte answers "
              "unread (bound %.0f MB)" % (base, peak, conns, GW_MAX_STREAMS, answer, limit))
        check(peak - base < limit, "gateway RSS grew %.0f MB (from %.0f), bound %.0f MB",
              peak - base, base, limit)

        # Meanwhile, everyone else is served.
        t0 = time.monotonic()
        Bystanders.quick(C.gw.stub())
        check(time.monotonic() - t0 < 5, "bystanders took %.1fs", time.monotonic() - t0)

        # When they read at last (and open their flow-control windows, which
        # they never did), every stream ends OK with its answer.
        for c, sids in floods:
            c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 2**31 - 1)]) +
                   frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535)))
            c.run_until(lambda: all(c.stream(s).closed for s in sids), 60,
                        "every flooded stream closed")
            for s in sids:
                st = c.stream(s)
                check(st.grpc_status == 0, "flooded stream %d: %r", s, st)
                eq(len(st.data), answer + 5, "stream %d's answer" % s)
                eq(len(pb.ListTasksResponse.FromString(st.data[5:]).tasks), answer_tasks,
                   "tasks in stream %d's answer" % s)
    finally:
        for c, _ in floods:
            c.close()


# ---- bystanders and the driver ----------------------------------------------------


class Bystanders:
    """Clients that did nothing wrong and must be served after every case;
    their connections are opened before the first case."""

    def __init__(self):
        self.gw = C.gw.stub()
        self.health = {r: health_pb2_grpc.HealthStub(r.channel()) for r in (C.gw, C.sched)}
        self.check()

    @staticmethod
    def quick(stub):
        """A submit that completes and a small listing, on stub."""
        tid = cluster.submit(stub, name="echo", payload=b"ping").task_id
        last = cluster.follow(stub, tid, timeout=30)[-1]
        eq((last.status, last.result.output), (COMPLETED, b"ping"), "bystander task")
        stub.ListTasks(pb.ListTasksRequest(page_size=5), timeout=10)

    def check(self):
        C.alive()
        for role, h in self.health.items():
            r = h.Check(health_pb2.HealthCheckRequest(), timeout=10)
            eq(r.status, health_pb2.HealthCheckResponse.SERVING, "%s health" % role.role)
        self.quick(self.gw)
        # A new connection, and every task listed: python's decoder rejects
        # invalid UTF-8, so this fails if any got stored.
        fresh = C.gw.stub()
        self.quick(fresh)
        cluster.list_all(fresh)


def main():
    only = sys.argv[1:]
    B = harness.build_dir()
    for r in ("scheduler", "gateway", "worker"):
        if not os.access(os.path.join(B, r), os.X_OK):
            print("SKIP: %s/%s not built" % (B, r))
            return 77
    global C
    C = Cluster(harness.tempdir())
    failed = []
    try:
        by = Bystanders()
        for fn in CASES:
            name = fn.__name__
            if only and not any(o in name for o in only):
                continue
            t0 = time.monotonic()
            try:
                fn()
                by.check()
                print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            except Exception as e:  # noqa: BLE001  (a case's error is its failure)
                print("FAIL %s: %s" % (name, e), flush=True)
                if not isinstance(e, Failure):
                    traceback.print_exc()
                failed.append(name)
                try:
                    C.alive()
                except Failure as dead:
                    print("FAIL roles after %s: %s" % (name, dead), flush=True)
                    break
    finally:
        try:
            cluster.stop_all(C.roles)
        except Failure as e:
            print("FAIL stop: %s" % e, flush=True)
            failed.append("stop")
    if failed:
        cluster.dump_logs(C.roles, 20)
    print("%d failed%s" % (len(failed), (": " + " ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
