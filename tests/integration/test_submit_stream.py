#!/usr/bin/python3
"""Scheduler.SubmitStream against a real scheduler and a real worker (built-in
handlers), driven with python3-grpcio. Checks:
  * 500 followed submits (noop and echo) on one stream: exactly one
    `accepted` per ref, before any progress of it; progress per ref never
    goes back and ends with one final update (COMPLETED, echo's output =
    its payload); GetTask agrees;
  * follow=false gets `accepted` only;
  * a bad spec (empty name) and a missing spec get `rejected`
    INVALID_ARGUMENT and the stream goes on; a message that does not decode
    ends the stream INVALID_ARGUMENT;
  * idempotency: the same key twice gives the same id with duplicate=true;
    a duplicate of a finished task, followed, gets `accepted` and its final
    update;
  * half-close ends the stream OK only once every followed task is final;
  * final_only: a followed task that reports progress (sleep) or is retried
    (fail, 2 attempts) gets `accepted` then exactly one progress event, its
    final update, while the same tasks followed without final_only on the
    same stream still get the updates before it; a rejected submit with
    final_only still gets `rejected`, a duplicate of a finished task its
    final update, and final_only without follow `accepted` only;
  * cancelling the stream early loses nothing: every task it stored
    completes;
  * --max-stream-inflight: with tasks nobody serves, exactly the submits past
    the limit are rejected RESOURCE_EXHAUSTED;
  * a client that stops reading stops being read (flow control reaches it:
    its submits are not all taken), while the scheduler answers health
    checks and its RSS stays bounded; once it reads again, every submit is
    accepted and runs;
  * SIGTERM ends an open stream UNAVAILABLE at once; roles exit 0;
    --max-stream-inflight 0 is a usage error.
"""

import os
import queue
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Freed memory held in ASan's quarantine would count as RSS in the stalled
# reader case; a small quarantine keeps the bound meaningful under
# B=build-san.
os.environ["ASAN_OPTIONS"] = ":".join(
    x for x in (os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16") if x)
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import (COMPLETED, FAILED, FINAL, PENDING, RUNNING, SC, check, eq, get,  # noqa: E402
                     pb, pb_grpc)

import grpc  # noqa: E402
import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

METHOD = "/orchestrator.v1.Scheduler/SubmitStream"
roles = []


class Stream:
    """One SubmitStream: send() queues a request, close() half-closes; a
    thread reads the events into a list (or, with reading=False, not until
    resume() is called). done is (code, details) once the stream ended."""

    def __init__(self, channel, timeout=120.0, reading=True):
        self.q = queue.Queue()
        self.taken = 0  # requests grpcio took from us to send
        self.cond = threading.Condition()
        self.events = []
        self.done = None
        self.go = threading.Event()
        if reading:
            self.go.set()
        fn = channel.stream_stream(METHOD,
                                   request_serializer=pb.SubmitStreamRequest.SerializeToString,
                                   response_deserializer=pb.SubmitStreamEvent.FromString)
        self.call = fn(self._requests(), timeout=timeout)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _requests(self):
        while True:
            r = self.q.get()
            if r is None:
                return
            with self.cond:
                self.taken += 1
            yield r

    def _read(self):
        self.go.wait()
        try:
            for ev in self.call:
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
            done = (SC.OK, "")
        except grpc.RpcError as e:
            done = (e.code(), e.details())
        with self.cond:
            self.done = done
            self.cond.notify_all()

    def send(self, ref, follow=True, spec=True, final_only=False, **fields):
        r = pb.SubmitStreamRequest(ref=ref, follow=follow, final_only=final_only)
        if spec:
            r.spec.CopyFrom(pb.TaskSpec(**fields))
        self.q.put(r)

    def close(self):
        self.q.put(None)

    def resume(self):
        self.go.set()

    def wait(self, pred, timeout, what):
        """Waits until pred(events, done) holds; returns the events."""
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.events, self.done), timeout):
                raise cluster.Failure("no %s within %.0fs (%d events, done %r)" %
                                      (what, timeout, len(self.events), self.done))
            return list(self.events)

    def wait_done(self, timeout, what):
        self.wait(lambda ev, d: d is not None, timeout, what)
        return self.done


def by_ref(events):
    """ref -> that ref's events, in order."""
    out = {}
    for e in events:
        out.setdefault(e.ref, []).append(e)
    return out


def kind(e):
    return e.WhichOneof("event")


def final_count(events):
    return sum(1 for e in events if kind(e) == "progress" and e.progress.status in FINAL)


def check_followed(evs, ref):
    """One followed submit's events: accepted first and once, then progress
    of that task that never goes back, ending with one final update. Returns
    (accepted, last progress)."""
    check(evs and kind(evs[0]) == "accepted", "ref %d: first event is %s", ref,
          kind(evs[0]) if evs else None)
    acc = evs[0].accepted
    ups = [e.progress for e in evs[1:]]
    check(all(kind(e) == "progress" for e in evs[1:]), "ref %d: events after accepted: %s", ref,
          [kind(e) for e in evs])
    cluster.check_stream(ups, acc.task_id)
    return acc, ups[-1]


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


def many_followed(ch, stub):
    n = 500
    s = Stream(ch)
    for ref in range(n):
        if ref % 2:
            s.send(ref, name="echo", payload=b"payload-%d" % ref)
        else:
            s.send(ref, name="noop")
    # One not followed: accepted only.
    s.send(n, follow=False, name="echo", payload=b"unfollowed")
    s.close()
    eq(s.wait_done(120, "end of the 500-submit stream"), (SC.OK, ""), "stream status")
    refs = by_ref(s.events)
    eq(sorted(refs), list(range(n + 1)), "refs with events")
    ids = set()
    for ref in range(n):
        acc, last = check_followed(refs[ref], ref)
        eq(acc.duplicate, False, "ref %d duplicate" % ref)
        check(acc.accepted_at_unix_ms > 0, "ref %d: no accepted_at", ref)
        eq(last.status, COMPLETED, "ref %d final status" % ref)
        eq(last.result.output, b"payload-%d" % ref if ref % 2 else b"", "ref %d output" % ref)
        ids.add(acc.task_id)
    eq(len(ids), n, "distinct task ids")
    unf = refs[n]
    eq([kind(e) for e in unf], ["accepted"], "events of the unfollowed submit")
    t = cluster.poll(lambda: (lambda t: t if t.status in FINAL else None)(
        get(stub, unf[0].accepted.task_id)), 30, "unfollowed task final")
    eq((t.status, t.result.output), (COMPLETED, b"unfollowed"), "unfollowed task")
    for ref in (1, 2, 499):
        eq(get(stub, refs[ref][0].accepted.task_id).status, COMPLETED, "GetTask of ref %d" % ref)
    log("ok 500 followed submits on one stream")


def rejections_and_duplicates(ch, stub):
    s = Stream(ch)
    s.send(1, name="")
    s.send(2, spec=False)
    s.send(3, name="echo", payload=b"after", idempotency_key="ss-dup")
    s.wait(lambda ev, d: final_count(ev) == 1, 30, "ref 3 final")
    s.send(4, name="echo", payload=b"other", idempotency_key="ss-dup")
    s.send(5, follow=False, name="echo", idempotency_key="ss-dup")
    s.close()
    eq(s.wait_done(30, "end"), (SC.OK, ""), "stream status")
    refs = by_ref(s.events)
    for ref, word in ((1, "name"), (2, "spec")):
        evs = refs[ref]
        eq([kind(e) for e in evs], ["rejected"], "events of ref %d" % ref)
        eq(evs[0].rejected.code, SC.INVALID_ARGUMENT.value[0], "ref %d code" % ref)
        check(word in evs[0].rejected.message, "ref %d message %r does not name %s", ref,
              evs[0].rejected.message, word)
    acc3, last3 = check_followed(refs[3], 3)
    eq((acc3.duplicate, last3.result.output), (False, b"after"), "ref 3")
    # A followed duplicate of a finished task: accepted, then its final state.
    acc4, last4 = check_followed(refs[4], 4)
    eq((acc4.task_id, acc4.duplicate), (acc3.task_id, True), "ref 4 (duplicate)")
    eq(len(refs[4]), 2, "ref 4 events (accepted, final)")
    eq(last4.result.output, b"after", "ref 4 output (the first task's)")
    eq([kind(e) for e in refs[5]], ["accepted"], "ref 5 events")
    eq((refs[5][0].accepted.task_id, refs[5][0].accepted.duplicate), (acc3.task_id, True),
       "ref 5 (duplicate)")

    # A message that does not decode ends the stream INVALID_ARGUMENT.
    raw = ch.stream_stream(METHOD, request_serializer=lambda b: b,
                           response_deserializer=pb.SubmitStreamEvent.FromString)
    try:
        list(raw(iter([b"\xff\xff\xff"]), timeout=10))
        raise cluster.Failure("an undecodable request did not end the stream")
    except grpc.RpcError as e:
        eq(e.code(), SC.INVALID_ARGUMENT, "status after an undecodable request")
    log("ok rejections, duplicates, undecodable")


def half_close_waits(ch):
    n = 20
    s = Stream(ch)
    for ref in range(n):
        s.send(ref, name="sleep", payload=b"300")
    s.close()
    eq(s.wait_done(60, "end after half-close"), (SC.OK, ""), "stream status")
    refs = by_ref(s.events)
    eq(len(refs), n, "refs answered")
    for ref in range(n):
        _, last = check_followed(refs[ref], ref)
        eq(last.status, COMPLETED, "ref %d final" % ref)
    # sleep reports percent as it goes: some RUNNING updates carry it.
    check(any(e.progress.status == RUNNING and e.progress.percent > 0 for e in s.events
              if kind(e) == "progress"), "no percent update was streamed")
    log("ok half-close ends the stream once all followed tasks are final")


def final_only(ch, stub):
    n = 8
    s = Stream(ch)
    # The same work twice, refs < 100 with final_only, refs >= 100 without:
    # sleep reports ten percent updates, fail is retried once after a
    # backoff (PENDING, RUNNING again) before it ends FAILED.
    for ref in range(n):
        for base, fo in ((0, True), (100, False)):
            if ref % 4 == 3:
                s.send(base + ref, final_only=fo, name="fail", payload=b"no %d" % ref,
                       max_attempts=2)
            else:
                s.send(base + ref, final_only=fo, name="sleep", payload=b"300")
    s.send(200, final_only=True, name="")
    s.send(201, final_only=True, follow=False, name="echo", payload=b"fo-unfollowed")
    s.send(202, final_only=True, name="echo", payload=b"fo-first", idempotency_key="fo-dup")
    s.wait(lambda ev, d: any(e.ref == 202 and kind(e) == "progress" for e in ev), 30,
           "ref 202 final")
    s.send(203, final_only=True, name="echo", payload=b"fo-second", idempotency_key="fo-dup")
    s.close()
    eq(s.wait_done(60, "end of the final_only stream"), (SC.OK, ""), "stream status")
    refs = by_ref(s.events)
    for ref in range(n):
        want = FAILED if ref % 4 == 3 else COMPLETED
        acc, last = check_followed(refs[ref], ref)
        eq([kind(e) for e in refs[ref]], ["accepted", "progress"], "events of ref %d" % ref)
        eq(last.status, want, "ref %d final status" % ref)
        eq(get(stub, acc.task_id).status, want, "GetTask of ref %d" % ref)
        # Without final_only: the state at acceptance and the changes too.
        _, last = check_followed(refs[100 + ref], 100 + ref)
        eq(last.status, want, "ref %d final status" % (100 + ref))
        ups = [e.progress for e in refs[100 + ref][1:]]
        if want == FAILED:
            check(len({u.attempt for u in ups}) >= 2, "ref %d: updates of one attempt: %s",
                  100 + ref, [(u.status, u.attempt) for u in ups])
        else:
            check(any(u.status == RUNNING and u.percent > 0 for u in ups),
                  "ref %d: no percent update: %s", 100 + ref,
                  [(u.status, u.percent) for u in ups])
    err = refs[3][-1].progress.result.error
    check(err.startswith("gave up after 2 of 2 attempts"), "error of ref 3: %r", err)
    eq([kind(e) for e in refs[200]], ["rejected"], "events of ref 200")
    eq(refs[200][0].rejected.code, SC.INVALID_ARGUMENT.value[0], "ref 200 code")
    eq([kind(e) for e in refs[201]], ["accepted"], "events of ref 201 (not followed)")
    acc202, last202 = check_followed(refs[202], 202)
    eq([kind(e) for e in refs[202]], ["accepted", "progress"], "events of ref 202")
    acc203, last203 = check_followed(refs[203], 203)
    eq([kind(e) for e in refs[203]], ["accepted", "progress"], "events of ref 203")
    eq((acc203.task_id, acc203.duplicate), (acc202.task_id, True), "ref 203 (duplicate)")
    eq(last203.result.output, b"fo-first", "ref 203 output (the first task's)")
    log("ok final_only: accepted and the final update alone")


def cancel_loses_nothing(ch, stub):
    before = {t.task_id for t in cluster.list_all(stub, name="sleep")}
    n = 200
    s = Stream(ch)
    for ref in range(n):
        s.send(ref, name="sleep", payload=b"20")
    s.wait(lambda ev, d: sum(1 for e in ev if kind(e) == "accepted") >= 30, 30, "30 accepted")
    s.call.cancel()
    eq(s.wait_done(10, "end after cancel")[0], SC.CANCELLED, "status after cancel")
    accepted = {e.accepted.task_id for e in s.events if kind(e) == "accepted"}
    stored = {t.task_id for t in cluster.list_all(stub, name="sleep")} - before
    check(accepted <= stored, "accepted tasks not stored: %s", accepted - stored)

    def all_final():
        return all(get(stub, tid).status == COMPLETED for tid in stored)
    cluster.poll(all_final, 60, "every stored task COMPLETED after the cancel")
    log("ok cancel: %d accepted, %d stored, all completed", len(accepted), len(stored))


def inflight_limit(ch2):
    limit, extra = 5, 3
    s = Stream(ch2)
    for ref in range(limit + extra):
        s.send(ref, name="nobody-serves-this")
    s.wait(lambda ev, d: len(ev) >= 2 * limit + extra, 30, "answers to every submit")
    refs = by_ref(s.events)
    rejected = sorted(r for r, evs in refs.items() if kind(evs[0]) == "rejected")
    eq(rejected, list(range(limit, limit + extra)), "refs rejected past the limit")
    for ref in rejected:
        eq(refs[ref][0].rejected.code, SC.RESOURCE_EXHAUSTED.value[0], "code of ref %d" % ref)
        check("max-stream-inflight" in refs[ref][0].rejected.message, "message %r",
              refs[ref][0].rejected.message)
    for ref in range(limit):
        eq([kind(e) for e in refs[ref]], ["accepted", "progress"], "events of ref %d" % ref)
        eq(refs[ref][1].progress.status, PENDING, "ref %d state" % ref)
    log("ok --max-stream-inflight %d: exactly %d rejected", limit, extra)
    return s


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise cluster.Failure("no VmRSS for %d" % pid)


def slow_reader(sched, stub):
    # Without BDP probing the client's receive window stays small, so a
    # client that does not read holds the scheduler's sends back.
    ch = sched.channel(options=[("grpc.http2.bdp_probe", 0)])
    health = health_pb2_grpc.HealthStub(sched.channel())
    # 40,000 submits of ~230 bytes: 9 MB, far past the 1 MiB a stream's
    # receive window lets a client send unread.
    n = 40000
    rss0 = rss_kib(sched.proc.pid)
    s = Stream(ch, timeout=300, reading=False)
    for ref in range(n):
        s.send(ref, follow=False, name="noop", payload=b"p" * 200)
    s.close()

    # The scheduler stops reading once its send queue is full: what grpcio
    # could hand over stops growing, short of everything.
    last, steady_since = -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() - steady_since < 1.0:
        check(time.monotonic() < deadline, "the client's sends never stopped (%d)", s.taken)
        with s.cond:
            taken = s.taken
        if taken != last:
            last, steady_since = taken, time.monotonic()
        time.sleep(0.05)
    check(last < n, "all %d submits were taken while nobody read" % n)
    resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    eq(resp.status, health_pb2.HealthCheckResponse.SERVING, "health while a reader stalls")
    grown = rss_kib(sched.proc.pid) - rss0
    check(grown < 64 << 10, "scheduler RSS grew %d KiB while the reader stalled", grown)
    log("ok stalled reader: %d of %d submits taken, RSS +%d KiB", last, n, grown)

    s.resume()
    eq(s.wait_done(240, "end after reading resumed"), (SC.OK, ""), "stream status")
    evs = s.events
    eq(len(evs), n, "events")
    check(all(kind(e) == "accepted" for e in evs), "an event other than accepted")
    eq(sorted(e.ref for e in evs), list(range(n)), "refs accepted")
    last_id = evs[-1].accepted.task_id
    t = cluster.poll(lambda: (lambda t: t if t.status in FINAL else None)(get(stub, last_id)),
                     120, "the last task final")
    eq(t.status, COMPLETED, "last task")
    log("ok reading resumed: all %d accepted", n)


def zero_inflight_is_a_usage_error(tmp):
    p = subprocess.run([os.path.join(cluster.B, "scheduler"), "--listen", "127.0.0.1:0",
                        "--data-dir", os.path.join(tmp, "data0"), "--max-stream-inflight", "0"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
    eq(p.returncode, 2, "exit code with --max-stream-inflight 0")
    check(b"--max-stream-inflight" in p.stderr, "stderr %r", p.stderr)


def main():
    tmp = harness.tempdir()
    zero_inflight_is_a_usage_error(tmp)
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"))
    roles.append(sched)
    roles.append(cluster.Role.worker(sched.port, "--slots", "16", "--worker-id", "ss-a"))
    sched2 = cluster.Role.scheduler(os.path.join(tmp, "data2"), "--max-stream-inflight", "5")
    roles.append(sched2)
    stub = sched.stub(pb_grpc.SchedulerStub)
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 1,
                 20, "worker registered")
    ch = sched.channel()

    many_followed(ch, stub)
    rejections_and_duplicates(ch, stub)
    half_close_waits(ch)
    final_only(ch, stub)
    cancel_loses_nothing(ch, stub)
    open_stream = inflight_limit(sched2.channel())
    slow_reader(sched, stub)

    # SIGTERM: the open stream (5 pending followed tasks) ends UNAVAILABLE.
    t0 = time.monotonic()
    eq(sched2.stop(), 0, "second scheduler's exit code")
    eq(open_stream.wait_done(10, "end on SIGTERM")[0], SC.UNAVAILABLE, "status on SIGTERM")
    check(time.monotonic() - t0 < 8, "SIGTERM took %.1fs with an open stream",
          time.monotonic() - t0)
    cluster.stop_all(roles)
    log("PASS submit stream")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
