#!/usr/bin/python3
"""The gateway forwards every Gateway call to the scheduler unchanged,
rejects bad specs itself, fails fast while the scheduler is away and
recovers by itself, and relays progress streams: current state first, then
changes, the final update and OK, coalesced for a slow reader within a
bounded memory, with cancellation travelling both ways. Submit streams are
relayed as bytes both ways, bad submits answered by the gateway itself with
their ref, status, half-close and cancel relayed, and a reader that does
not read holds the scheduler back instead of filling the gateway.

Runs the real `$B/gateway --listen 127.0.0.1:0 --scheduler 127.0.0.1:<port>`
against fake_scheduler.py (in this process) and talks to it with
python3-grpcio. Prints PASS/FAIL per case and exits 0 only if every case
passed (77: the gateway is not built).
"""

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_scheduler  # noqa: E402  (loads the stubs)
from fake_scheduler import COMPLETED, FAILED, PENDING, RUNNING, FakeScheduler  # noqa: E402

import grpc  # noqa: E402
import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

GATEWAY = os.path.join(harness.build_dir(), "gateway")
CALL_TIMEOUT_S = 3  # --call-timeout of the main gateway
SLACK_S = 0.05  # how far grpc core's cached clock may misjudge a deadline
SC = grpc.StatusCode


class Failure(Exception):
    """A case's assertion did not hold."""


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r", what, got, want)


def code_of(fn):
    """Runs fn; returns (status code, details) of the RpcError it raises."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise Failure("call succeeded, an error was expected")


def poll(pred, timeout, what, interval=0.05):
    """Polls pred() until true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure("no %s within %.1fs" % (what, timeout))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# The gateway process
# ---------------------------------------------------------------------------


class Gateway:
    """A gateway process with its stderr (the logfmt log) in a file."""

    def __init__(self, sched_port, *flags):
        self.err = tempfile.NamedTemporaryFile(prefix="gateway.", suffix=".log", delete=False)
        env = dict(os.environ)
        # Under AddressSanitizer freed memory sits in a quarantine (256 MB by
        # default) that would swamp the RSS measurement; keep it small.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4"
        argv = [GATEWAY, "--listen", "127.0.0.1:0", "--scheduler",
                "127.0.0.1:%d" % sched_port, "--log-level", "debug"] + list(flags)
        self.proc = harness.start(argv, stderr=self.err, env=env)
        self.port = harness.read_port(self.proc)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        self.stub = pb_grpc.GatewayStub(self.channel)

    def log(self):
        with open(self.err.name, errors="replace") as f:
            return f.read()

    def events(self, name):
        return re.findall(r"^.* event=%s( .*)?$" % re.escape(name), self.log(), re.M)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Failure("no VmRSS for the gateway")

    def stop(self):
        """SIGTERM; returns the exit code (the process must exit within 10 s)."""
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise Failure("gateway did not exit within 10 s of SIGTERM")
        harness.stop(self.proc)
        return rc

    def close(self):
        self.channel.close()
        if self.proc.poll() is None:
            harness.stop(self.proc)
        os.unlink(self.err.name)


fake = None
gw = None
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def sub_stream(task_id, timeout=None, stub=None):
    return (stub or gw.stub).SubscribeProgress(pb.ProgressRequest(task_id=task_id),
                                               timeout=timeout)


# ---------------------------------------------------------------------------
# Forwarding
# ---------------------------------------------------------------------------


@case
def submit_forwards_every_field_and_relays_the_answer():
    spec = pb.TaskSpec(name="resize-image", description="a cat, smaller",
                       payload=b"\x00\x01binary\xff", priority=7, max_attempts=5,
                       timeout_ms=1500, idempotency_key="key-1",
                       labels={"team": "infra", "env": "test"})
    acc = gw.stub.SubmitTask(spec, timeout=5)
    req, _ = fake.last_request("SubmitTask")
    eq(req, spec, "spec the scheduler received")
    t = fake.tasks[acc.task_id]
    eq(acc, pb.TaskAccepted(task_id=t.task_id, accepted_at_unix_ms=t.created_unix_ms),
       "TaskAccepted")
    again = gw.stub.SubmitTask(spec, timeout=5)
    eq((again.task_id, again.duplicate), (acc.task_id, True), "repeated idempotency key")


@case
def submit_forwards_the_original_bytes_unknown_fields_included():
    spec = pb.TaskSpec(name="echo", payload=b"p").SerializeToString()
    unknown = b"\xf8\x06\x2a"  # field 111, varint 42: not in TaskSpec
    submit = gw.channel.unary_unary("/orchestrator.v1.Gateway/SubmitTask",
                                    request_serializer=lambda b: b,
                                    response_deserializer=pb.TaskAccepted.FromString)
    submit(spec + unknown, timeout=5)
    req, _ = fake.last_request("SubmitTask")
    eq(req.SerializeToString(), spec + unknown, "bytes the scheduler received")


@case
def get_task_relays_the_whole_task():
    t = fake.add_task(status=COMPLETED, attempt=2, started_unix_ms=111, finished_unix_ms=222,
                      worker_id="w-1", percent=100, message="done",
                      result=pb.TaskResult(status=COMPLETED, output=b"out\x00put", attempt=2))
    t.spec.labels["k"] = "v"
    t.result.task_id = t.task_id
    got = gw.stub.GetTask(pb.GetTaskRequest(task_id=t.task_id), timeout=5)
    eq(got, t, "Task")


@case
def not_found_passes_through_with_the_scheduler_message():
    for call in (lambda: gw.stub.GetTask(pb.GetTaskRequest(task_id="nope"), timeout=5),
                 lambda: gw.stub.CancelTask(pb.CancelTaskRequest(task_id="nope"), timeout=5),
                 lambda: list(sub_stream("nope", timeout=5))):
        eq(code_of(call), (SC.NOT_FOUND, "task nope not found"), "status")


@case
def cancel_task_forwards_reason_and_relays_status():
    t = fake.add_task(status=PENDING)
    r = gw.stub.CancelTask(pb.CancelTaskRequest(task_id=t.task_id, reason="changed my mind"),
                           timeout=5)
    eq(r, pb.CancelTaskResponse(task_id=t.task_id, status=pb.TASK_STATUS_CANCELLED), "answer")
    eq(fake.last_request("CancelTask")[0].reason, "changed my mind", "reason")
    eq(code_of(lambda: gw.stub.CancelTask(pb.CancelTaskRequest(task_id=t.task_id), timeout=5)),
       (SC.FAILED_PRECONDITION, "task %s is already TASK_STATUS_CANCELLED" % t.task_id),
       "cancelling a finished task")


@case
def list_tasks_forwards_filters_and_pages():
    for i in range(5):
        fake.add_task(name="lister", status=RUNNING if i % 2 else PENDING)
    req = pb.ListTasksRequest(status=PENDING, name="lister", page_size=2)
    page1 = gw.stub.ListTasks(req, timeout=5)
    eq(fake.last_request("ListTasks")[0], req, "request")
    eq(len(page1.tasks), 2, "page size")
    check(all(t.status == PENDING and t.spec.name == "lister" for t in page1.tasks), "filter")
    page2 = gw.stub.ListTasks(pb.ListTasksRequest(status=PENDING, name="lister", page_size=2,
                                                  page_token=page1.next_page_token), timeout=5)
    eq((len(page2.tasks), page2.next_page_token), (1, ""), "last page")


@case
def list_workers_relays_the_workers():
    fake.workers = [pb.WorkerInfo(worker_id="w-%d" % i, task_names=["echo", "sleep"], slots=4,
                                  available_slots=i, running_task_ids=["a", "b"][:4 - i],
                                  version="0.1.0", connected_unix_ms=5, last_heartbeat_unix_ms=6,
                                  address="10.0.0.%d:50053" % i) for i in range(3)]
    got = gw.stub.ListWorkers(pb.ListWorkersRequest(), timeout=5)
    eq(list(got.workers), fake.workers, "workers")


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@case
def invalid_specs_are_rejected_with_what_is_wrong():
    before = fake.count("SubmitTask")
    cases = [
        (pb.TaskSpec(name=""), "name is empty: set TaskSpec.name to the task type"),
        (pb.TaskSpec(name="n" * 257), "name is 257 bytes long, the limit is 256"),
        (pb.TaskSpec(name="big", payload=b"x" * ((1 << 20) + 1)),
         "payload is 1048577 bytes, the limit is 1048576 (--max-payload)"),
        (pb.TaskSpec(name="a", max_attempts=-1), "max_attempts is -1, allowed are 0 (default) to 100"),
        (pb.TaskSpec(name="a", max_attempts=101),
         "max_attempts is 101, allowed are 0 (default) to 100"),
        (pb.TaskSpec(name="a", timeout_ms=-5), "timeout_ms is -5, it must be 0 (none) or positive"),
    ]
    for spec, msg in cases:
        eq(code_of(lambda: gw.stub.SubmitTask(spec, timeout=5)), (SC.INVALID_ARGUMENT, msg),
           "rejection")
    submit = gw.channel.unary_unary("/orchestrator.v1.Gateway/SubmitTask",
                                    request_serializer=lambda b: b,
                                    response_deserializer=pb.TaskAccepted.FromString)
    eq(code_of(lambda: submit(b"\x0a\x05ab", timeout=5)),
       (SC.INVALID_ARGUMENT, "TaskSpec does not decode as protobuf"), "truncated spec")
    eq(fake.count("SubmitTask"), before, "submits that reached the scheduler")
    # At the limit exactly is fine.
    gw.stub.SubmitTask(pb.TaskSpec(name="big", payload=b"x" * (1 << 20)), timeout=5)
    eq(fake.count("SubmitTask"), before + 1, "submits that reached the scheduler")
    check(gw.events("rejected"), "no event=rejected in the log")


# ---------------------------------------------------------------------------
# Deadlines
# ---------------------------------------------------------------------------


@case
def the_clients_deadline_travels_to_the_scheduler():
    n = len(fake.blocked)
    start = time.monotonic()
    code = code_of(lambda: gw.stub.GetTask(pb.GetTaskRequest(task_id="block"), timeout=1.5))[0]
    took = time.monotonic() - start
    eq(code, SC.DEADLINE_EXCEEDED, "status")
    check(took < 3, "took %.2fs for a 1.5s deadline", took)
    fate = fake.wait_for(lambda: len(fake.blocked) > n and fake.blocked[n], what="blocked call")
    left = fate["time_remaining"]
    # grpc core reads a cached clock: allow it a few milliseconds of slack.
    check(left is not None and 0.8 < left <= 1.5 + SLACK_S, "scheduler saw %r s left, want ~1.5",
          left)
    fake.wait_for(lambda: fate["cancelled"], what="cancellation of the upstream call")


@case
def without_a_client_deadline_the_call_timeout_applies():
    n = len(fake.blocked)
    start = time.monotonic()
    code = code_of(lambda: gw.stub.GetTask(pb.GetTaskRequest(task_id="block")))[0]
    took = time.monotonic() - start
    eq(code, SC.DEADLINE_EXCEEDED, "status")
    check(CALL_TIMEOUT_S - 0.5 < took < CALL_TIMEOUT_S + 2, "took %.2fs", took)
    left = fake.blocked[n]["time_remaining"]
    check(left is not None and CALL_TIMEOUT_S - 1 < left <= CALL_TIMEOUT_S + SLACK_S,
          "scheduler saw %r s left, want ~%d", left, CALL_TIMEOUT_S)


# ---------------------------------------------------------------------------
# Progress streams
# ---------------------------------------------------------------------------


@case
def subscribe_relays_current_state_then_changes_then_final_and_ok():
    t = fake.add_task(status=PENDING)
    stream = sub_stream(t.task_id, timeout=20)
    first = next(stream)
    eq((first.task_id, first.status, first.percent), (t.task_id, PENDING, 0), "current state")
    fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")
    steps = [dict(status=RUNNING, attempt=1, percent=0, message="started"),
             dict(percent=10, message="resized 1 of 10"),
             dict(percent=50, message="resized 5 of 10")]
    for st in steps:
        want = fake.update(t.task_id, **st)
        got = next(stream)
        want.timestamp_unix_ms = got.timestamp_unix_ms
        eq(got, want, "update")
    want = fake.update(t.task_id, status=COMPLETED, percent=100,
                       result=pb.TaskResult(task_id=t.task_id, status=COMPLETED,
                                            output=b"ten cats", attempt=1))
    got = next(stream)
    eq((got.status, got.result.output, got.result.attempt), (COMPLETED, b"ten cats", 1), "final")
    check(next(stream, None) is None, "messages after the final one")
    eq(stream.code(), SC.OK, "status")


@case
def subscribe_to_a_finished_task_gives_its_final_update_at_once():
    t = fake.add_task(status=FAILED, attempt=3,
                      result=pb.TaskResult(status=FAILED, error="boom", attempt=3))
    msgs = list(sub_stream(t.task_id, timeout=5))
    eq(len(msgs), 1, "messages")
    eq((msgs[0].status, msgs[0].result.error), (FAILED, "boom"), "final")


@case
def a_slow_subscriber_gets_coalesced_updates_and_the_final_within_bounded_memory():
    t = fake.add_task(status=RUNNING, attempt=1)
    # A client that reads nothing until the end: no BDP probing, so its
    # HTTP/2 window stays small and the gateway has to hold updates back.
    ch = grpc.insecure_channel("127.0.0.1:%d" % gw.port,
                               options=[("grpc.http2.bdp_probe", 0),
                                        ("grpc.max_receive_message_length", 8 << 20)])
    try:
        stream = pb_grpc.GatewayStub(ch).SubscribeProgress(
            pb.ProgressRequest(task_id=t.task_id), timeout=120)
        first = next(stream)
        eq(first.status, RUNNING, "current state")
        w = fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")[0]
        rss0 = gw.rss_kb()
        n, size = 10000, 2048
        fake.burst(t.task_id, n, size)
        final = fake.update(t.task_id, status=COMPLETED, percent=100,
                            result=pb.TaskResult(task_id=t.task_id, status=COMPLETED,
                                                 output=b"the result", attempt=1))
        # The scheduler side finishes writing (the gateway read everything)
        # while our client still has not read a thing.
        fake.wait_for(lambda: w.done, timeout=60, what="end of the watch")
        eq(w.cancelled, False, "watch cancelled")
        eq(w.sent, n + 2, "updates the scheduler sent")
        rss1 = gw.rss_kb()
        got = list(stream)
        eq(stream.code(), SC.OK, "status")
        last = got[-1]
        eq((last.status, last.result.output), (COMPLETED, b"the result"), "final update")
        eq(last.result, final.result, "final result")
        growth = rss1 - rss0
        print("    slow subscriber: %d of %d updates delivered, gateway RSS %d -> %d kB"
              % (len(got) + 1, n + 2, rss0, rss1))
        check(len(got) + 1 < n + 2, "all %d updates delivered: nothing coalesced", len(got) + 1)
        # Uncoalesced, the backlog alone would be n * size = 20 MB.
        check(growth < 10 * 1024, "gateway RSS grew by %d kB", growth)
        check(all(m.status == RUNNING for m in got[:-1]), "non-final updates changed status")
        ends = gw.events("subscribe_end")
        check(any("task=%s" % t.task_id in e and "coalesced=" in e for e in ends),
              "no subscribe_end for the task in the log")
    finally:
        ch.close()


@case
def a_client_cancel_reaches_the_schedulers_watch():
    t = fake.add_task(status=RUNNING)
    stream = sub_stream(t.task_id, timeout=30)
    next(stream)
    w = fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")[0]
    stream.cancel()
    fake.wait_for(lambda: w.done, what="end of the watch")
    eq(w.cancelled, True, "the scheduler saw the watch cancelled")


@case
def a_client_deadline_ends_the_watch_too():
    t = fake.add_task(status=RUNNING)
    stream = sub_stream(t.task_id, timeout=1.0)
    next(stream)
    w = fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")[0]
    check(w.time_remaining is not None and w.time_remaining <= 1.0 + SLACK_S, "watch deadline %r",
          w.time_remaining)
    eq(code_of(lambda: list(stream))[0], SC.DEADLINE_EXCEEDED, "status")
    fake.wait_for(lambda: w.done, what="end of the watch")
    eq(w.cancelled, True, "watch cancelled")


@case
def subscribers_past_the_limit_get_resource_exhausted():
    g = Gateway(fake.port, "--max-subscribers", "2", "--max-payload", "1K")
    try:
        tasks = [fake.add_task(status=RUNNING) for _ in range(2)]
        streams = [sub_stream(t.task_id, timeout=30, stub=g.stub) for t in tasks]
        for s in streams:
            next(s)
        code, msg = code_of(lambda: list(sub_stream(tasks[0].task_id, timeout=5, stub=g.stub)))
        eq(code, SC.RESOURCE_EXHAUSTED, "third subscriber")
        check("--max-subscribers" in msg, "message %r does not name the limit", msg)
        # A submit stream follows tasks too: it counts.
        code, msg = code_of(lambda: list(g.stub.SubmitStream(iter([req(1)]), timeout=5)))
        eq(code, SC.RESOURCE_EXHAUSTED, "submit stream past the limit")
        check("--max-subscribers" in msg, "message %r does not name the limit", msg)
        # Unary calls are not subscribers.
        g.stub.GetTask(pb.GetTaskRequest(task_id=tasks[0].task_id), timeout=5)
        # One leaves; a new one gets in.
        w = fake.watches_of(tasks[0].task_id)[0]
        streams[0].cancel()
        fake.wait_for(lambda: w.done, what="end of the first watch")

        def subscribed():
            s = sub_stream(tasks[1].task_id, timeout=30, stub=g.stub)
            try:
                next(s)
                return s
            except grpc.RpcError as e:
                if e.code() != SC.RESOURCE_EXHAUSTED:
                    raise
                return None

        s3 = poll(subscribed, 5, "free subscriber slot")
        s3.cancel()
        streams[1].cancel()

        # Submit streams hold slots as well: two of them, and a subscriber
        # is one too many.
        def stream_in():
            s = SubmitStream(g.channel, timeout=30)
            s.send(req(1))
            try:
                s.event()
                return s
            except grpc.RpcError as e:
                if e.code() != SC.RESOURCE_EXHAUSTED:
                    raise
                return None

        held = [poll(stream_in, 5, "free slot for a submit stream") for _ in range(2)]
        code, msg = code_of(lambda: list(sub_stream(tasks[0].task_id, timeout=5, stub=g.stub)))
        eq(code, SC.RESOURCE_EXHAUSTED, "subscriber while two submit streams are open")
        for s in held:
            s.call.cancel()
        # --max-payload applies.
        eq(code_of(lambda: g.stub.SubmitTask(pb.TaskSpec(name="a", payload=b"x" * 1025),
                                             timeout=5)),
           (SC.INVALID_ARGUMENT, "payload is 1025 bytes, the limit is 1024 (--max-payload)"),
           "payload over --max-payload 1K")
        eq(g.stop(), 0, "exit status on SIGTERM")
    finally:
        g.close()


# ---------------------------------------------------------------------------
# Submit streams
# ---------------------------------------------------------------------------


class SubmitStream:
    """A client's Gateway/SubmitStream with requests and events as bytes:
    send() queues a request, close() half-closes, events() reads."""

    def __init__(self, channel=None, timeout=30):
        self.q = queue.Queue()
        call = (channel or gw.channel).stream_stream(
            "/orchestrator.v1.Gateway/SubmitStream", request_serializer=lambda b: b,
            response_deserializer=lambda b: b)
        self.call = call(iter(self.q.get, None), timeout=timeout)

    def send(self, req):
        self.q.put(req if isinstance(req, bytes) else req.SerializeToString())

    def close(self):
        self.q.put(None)

    def event(self):
        """The next event as (bytes, SubmitStreamEvent)."""
        raw = next(self.call)
        return raw, pb.SubmitStreamEvent.FromString(raw)

    def rest(self):
        """Every event left, as bytes, until the stream ends (OK or raises)."""
        return list(self.call)


def open_stream(channel=None, timeout=30):
    """A SubmitStream and the fake's side of it."""
    n = len(fake.submit_streams)
    s = SubmitStream(channel, timeout)
    st = fake.wait_for(lambda: len(fake.submit_streams) > n and fake.submit_streams[n],
                       what="SubmitStream")
    return s, st


def req(ref, name="echo", follow=False, **spec):
    return pb.SubmitStreamRequest(ref=ref, spec=pb.TaskSpec(name=name, **spec), follow=follow)


@case
def submit_stream_relays_requests_and_events_as_bytes_then_half_close_and_ok():
    s, st = open_stream()
    unknown = b"\xf8\x06\x2a"  # field 111, varint 42: in no message here
    first = req(7, payload=b"p", follow=True, labels={"k": "v"}).SerializeToString() + unknown
    s.send(first)
    s.send(req(8))
    got = [s.event()[0] for _ in range(3)]  # accepted 7, its state, accepted 8
    evs = [pb.SubmitStreamEvent.FromString(b) for b in got]
    eq([(e.ref, e.WhichOneof("event")) for e in evs],
       [(7, "accepted"), (7, "progress"), (8, "accepted")], "events")
    tid = evs[0].accepted.task_id
    eq(evs[1].progress.status, PENDING, "state at acceptance")
    fake.update(tid, status=RUNNING, percent=40, message="going")
    got += [s.event()[0]]
    s.close()  # the followed task is not final yet: the stream stays open
    fake.wait_for(lambda: st.half_closed, what="half-close relayed to the scheduler")
    check(not st.done, "the scheduler ended the stream before the task did")
    fake.update(tid, status=COMPLETED, percent=100)
    got += s.rest()
    eq(s.call.code(), SC.OK, "status")
    eq(st.raw, [first, req(8).SerializeToString()], "bytes the scheduler received")
    eq(got, st.out, "bytes the client received")
    last = pb.SubmitStreamEvent.FromString(got[-1])
    eq((last.ref, last.progress.status), (7, COMPLETED), "final update")
    eq(st.cancelled, False, "scheduler side cancelled")
    check(any("forwarded=2 rejected=0 events=5" in e for e in gw.events("submit_stream_end")),
          "no submit_stream_end with the counts in the log")


@case
def submit_stream_rejects_bad_specs_itself_with_their_ref_and_the_unary_words():
    s, st = open_stream()
    bad = [(1, pb.TaskSpec(name="")), (2, pb.TaskSpec(name="a", max_attempts=101)),
           (3, pb.TaskSpec(name="big", payload=b"x" * ((1 << 20) + 1)))]
    for ref, spec in bad:
        s.send(pb.SubmitStreamRequest(ref=ref, spec=spec, follow=True))
        want = code_of(lambda: gw.stub.SubmitTask(spec, timeout=5))
        _, ev = s.event()
        eq((ev.ref, ev.WhichOneof("event")), (ref, "rejected"), "event")
        eq((ev.rejected.code, ev.rejected.message), (want[0].value[0], want[1]),
           "rejection of ref %d vs the unary path" % ref)
    # No spec at all is the scheduler's to judge: it goes up.
    s.send(pb.SubmitStreamRequest(ref=4))
    _, ev = s.event()
    eq((ev.ref, ev.rejected.code), (4, SC.INVALID_ARGUMENT.value[0]), "no spec")
    eq(st.raw, [pb.SubmitStreamRequest(ref=4).SerializeToString()], "requests forwarded")
    # Not UTF-8: still named by its ref (field 1 = 5, spec{name = "\xff"}).
    s.send(b"\x08\x05\x12\x03\x0a\x01\xff")
    _, ev = s.event()
    eq((ev.ref, ev.rejected.code), (5, SC.INVALID_ARGUMENT.value[0]), "bad UTF-8")
    check("UTF-8" in ev.rejected.message, "message %r", ev.rejected.message)
    # The stream goes on: a good one is accepted.
    s.send(req(6))
    _, ev = s.event()
    eq((ev.ref, ev.WhichOneof("event")), (6, "accepted"), "after the rejects")
    eq(len(st.raw), 2, "requests that reached the scheduler")
    # Bytes that are no message at all end the stream.
    s.send(b"\x0a\x05ab")
    eq(code_of(s.rest)[0], SC.INVALID_ARGUMENT, "undecodable request")
    fake.wait_for(lambda: st.done, what="end of the scheduler's stream")


@case
def submit_stream_relays_the_schedulers_own_status_text():
    s, st = open_stream()
    s.send(req(1))
    s.event()
    s.send(req(2, name="store-fails"))
    eq(code_of(s.rest), (SC.UNAVAILABLE, fake_scheduler.STORE_FAILS), "status and text")
    # The unary path too: the scheduler answered, so no "scheduler ...
    # unavailable" in front of its words.
    eq(code_of(lambda: gw.stub.SubmitTask(pb.TaskSpec(name="store-fails"), timeout=5)),
       (SC.UNAVAILABLE, fake_scheduler.STORE_FAILS), "SubmitTask")


@case
def submit_stream_client_cancel_and_deadline_reach_the_scheduler():
    s, st = open_stream()
    s.send(req(1, follow=True))
    s.event()
    s.call.cancel()
    fake.wait_for(lambda: st.done, what="end of the scheduler's stream")
    eq(st.cancelled, True, "the scheduler saw the stream cancelled")
    s, st = open_stream(timeout=1.0)
    check(st.time_remaining is not None and st.time_remaining <= 1.0 + SLACK_S,
          "stream deadline %r", st.time_remaining)
    eq(code_of(s.rest)[0], SC.DEADLINE_EXCEEDED, "status")
    fake.wait_for(lambda: st.done, what="end of the scheduler's stream")


@case
def submit_stream_to_a_client_that_does_not_read_holds_the_scheduler_back():
    # A client that reads nothing for now: no BDP probing, so its HTTP/2
    # window stays small and the gateway must stop reading the scheduler.
    ch = grpc.insecure_channel("127.0.0.1:%d" % gw.port, options=[("grpc.http2.bdp_probe", 0)])
    n, size = 20000, 1024  # 20 MB of updates, none of them droppable
    fake.flood = (n, size)
    try:
        s, st = open_stream(ch, timeout=120)
        rss0 = gw.rss_kb()
        s.send(req(1, name="flood", follow=True))
        # The scheduler's sends block: the count stops moving, far short.
        last, still = -1, 0
        for _ in range(300):  # at most 30 s
            sent = st.sent
            still = still + 1 if sent == last else 0
            if still >= 10 or sent >= n:
                break
            last = sent
            time.sleep(0.1)
        rss1 = gw.rss_kb()
        print("    reader that does not read: scheduler sent %d of %d updates, gateway RSS "
              "%d -> %d kB" % (st.sent, n + 2, rss0, rss1))
        check(st.sent * size < 8 << 20, "the scheduler sent %d updates (%d kB): not held back",
              st.sent, st.sent * size >> 10)
        check(rss1 - rss0 < 10 * 1024, "gateway RSS grew by %d kB", rss1 - rss0)
        # Reading now gets every one, in order, none dropped.
        got = [s.event()[1] for _ in range(n + 2)]
        eq([e.WhichOneof("event") for e in got[:2]], ["accepted", "progress"], "first events")
        check(all(e.progress.message.startswith("%d " % i) for i, e in enumerate(got[2:])),
              "updates missing or out of order")
        fake.update(got[0].accepted.task_id, status=COMPLETED)
        s.close()
        eq(len(s.rest()), 1, "events after the flood")
        eq(s.call.code(), SC.OK, "status")
    finally:
        fake.flood = (0, 0)
        ch.close()


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------


@case
def health_is_serving():
    r = gw.stub.HealthCheck(pb.HealthCheckRequest(), timeout=5)
    eq((r.status, r.role), (pb.HealthCheckResponse.SERVING, "gateway"), "HealthCheck")
    h = health_pb2_grpc.HealthStub(gw.channel)
    for svc in ("", "orchestrator.v1.Gateway"):
        eq(h.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5).status,
           health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 Check(%r)" % svc)


# ---------------------------------------------------------------------------
# The scheduler goes away and comes back
# ---------------------------------------------------------------------------


@case
def scheduler_down_fails_fast_and_the_gateway_recovers_by_itself():
    t = fake.add_task(status=RUNNING)
    stream = sub_stream(t.task_id, timeout=30)
    next(stream)
    fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")
    ss, _ = open_stream()
    ss.send(req(1, follow=True))
    ss.event()
    connected = len(gw.events("scheduler_connected"))
    fake.stop()
    # An open progress stream ends with UNAVAILABLE.
    code, msg = code_of(lambda: list(stream))
    eq(code, SC.UNAVAILABLE, "open subscription when the scheduler went away (%s)" % msg)
    code, msg = code_of(ss.rest)
    eq(code, SC.UNAVAILABLE, "open submit stream when the scheduler went away (%s)" % msg)
    # New calls fail fast, each kind, with a message naming the scheduler.
    calls = [lambda: gw.stub.GetTask(pb.GetTaskRequest(task_id=t.task_id), timeout=10),
             lambda: gw.stub.SubmitTask(pb.TaskSpec(name="echo"), timeout=10),
             lambda: gw.stub.ListTasks(pb.ListTasksRequest(), timeout=10),
             lambda: gw.stub.CancelTask(pb.CancelTaskRequest(task_id="x"), timeout=10),
             lambda: gw.stub.ListWorkers(pb.ListWorkersRequest(), timeout=10),
             lambda: list(sub_stream(t.task_id, timeout=10)),
             lambda: list(gw.stub.SubmitStream(iter([req(1)]), timeout=10)),
             lambda: SubmitStream(timeout=10).rest()]  # nothing sent, nor half-closed
    for call in calls * 3:
        start = time.monotonic()
        code, msg = code_of(call)
        took = time.monotonic() - start
        eq(code, SC.UNAVAILABLE, "status while the scheduler is down")
        check(took < 2, "UNAVAILABLE took %.2fs", took)
        check("scheduler 127.0.0.1:%d unavailable" % fake.port in msg, "message %r", msg)
    # The gateway itself stays healthy.
    eq(gw.stub.HealthCheck(pb.HealthCheckRequest(), timeout=5).status,
       pb.HealthCheckResponse.SERVING, "gateway health while the scheduler is down")
    check(gw.events("scheduler_unreachable"), "no event=scheduler_unreachable in the log")
    # Back on the same port: the gateway reconnects without being asked.
    fake.start()
    poll(lambda: len(gw.events("scheduler_connected")) > connected, 10,
         "reconnect by the gateway itself")
    got = gw.stub.GetTask(pb.GetTaskRequest(task_id=t.task_id), timeout=5)
    eq(got.task_id, t.task_id, "GetTask after recovery")


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------


@case
def sigterm_ends_subscriptions_with_unavailable_and_exits_0():
    g = Gateway(fake.port)
    try:
        t = fake.add_task(status=RUNNING)
        stream = sub_stream(t.task_id, timeout=30, stub=g.stub)
        next(stream)
        w = fake.wait_for(lambda: fake.watches_of(t.task_id), what="watch")[0]
        ss, st = open_stream(g.channel)
        ss.send(req(1, follow=True))
        ss.event()
        result = {}

        def drain(key, events):
            try:
                events()
                result[key] = SC.OK
            except grpc.RpcError as e:
                result[key] = e.code()

        th = threading.Thread(target=drain, args=("code", lambda: list(stream)))
        th.start()
        th2 = threading.Thread(target=drain, args=("stream", ss.rest))
        th2.start()
        g.proc.send_signal(signal.SIGTERM)
        try:
            rc = g.proc.wait(10)
        except subprocess.TimeoutExpired:
            raise Failure("gateway did not exit within 10 s of SIGTERM")
        eq(rc, 0, "exit status on SIGTERM")
        th.join(10)
        th2.join(10)
        eq(result.get("code"), SC.UNAVAILABLE, "the subscriber's status")
        eq(result.get("stream"), SC.UNAVAILABLE, "the submit stream's status")
        fake.wait_for(lambda: w.done and st.done, what="end of the watch and stream")
        eq((w.cancelled, st.cancelled), (True, True),
           "the scheduler saw the watch and the stream cancelled")
        check(g.events("shutdown") and g.events("stopped"), "shutdown not logged")
    finally:
        g.close()


def main():
    global fake, gw
    if not os.access(GATEWAY, os.X_OK):
        print("SKIP: %s not built" % GATEWAY)
        return 77
    fake = FakeScheduler().start()
    gw = Gateway(fake.port, "--call-timeout", "%ds" % CALL_TIMEOUT_S)
    failed = 0
    only = sys.argv[1:]
    try:
        for fn in CASES:
            if only and not any(o in fn.__name__ for o in only):
                continue
            start = time.monotonic()
            try:
                fn()
                print("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - start), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s" % fn.__name__, flush=True)
                traceback.print_exc()
            if gw.proc.poll() is not None:
                print("FAIL the gateway died (rc=%s)" % gw.proc.returncode)
                failed += 1
                break
        rc = gw.stop() if gw.proc.poll() is None else gw.proc.returncode
        if rc != 0:
            print("FAIL gateway exited with status %s on SIGTERM" % rc)
            failed += 1
    finally:
        if failed:
            sys.stderr.write("--- gateway log (last 40 lines):\n")
            sys.stderr.write("\n".join(gw.log().splitlines()[-40:]) + "\n")
        gw.close()
        fake.stop()
    print("%d of %d cases failed" % (failed, len(CASES)) if failed else "all cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
