#!/usr/bin/python3
"""End to end: a real scheduler, two workers and a gateway on 127.0.0.1,
driven through the gateway with python3-grpcio.

Worker A serves the built-ins (16 slots). Worker B serves no built-in, only
exec handlers (1 slot): `upper` (tr a-z A-Z), `gate` (sleeps until
cancelled) and `rec` (appends its payload to a file, so the order tasks ran
in is on disk). Checks:
  * bad specs are INVALID_ARGUMENT with a message naming the field, and
    create nothing; unknown ids are NOT_FOUND on every call;
  * idempotency: the same key twice gives the same id, duplicate=true, one
    task;
  * routing by name: `upper` runs on B only (output upper-cased), built-ins
    on A only; a name nobody serves stays PENDING;
  * 300 tasks of every built-in kind, each followed on its own
    SubscribeProgress stream from right after submit: the stream never goes
    back in the task's life, percent never goes down within an attempt, it
    ends OK with one final update carrying the right result (echo = payload,
    sha256 = hashlib's hex digest, noop empty, sleep completed, fail FAILED
    after max_attempts=2 with the payload in the error); GetTask agrees
    (spec, status, attempt, worker, timestamps); a late subscriber gets
    exactly one update, the final one, equal to what the first saw;
  * priority: with B busy on `gate`, `rec` tasks submitted in mixed
    priorities run highest first, FIFO within a priority;
  * retries (attempt 2 then FAILED), timeouts (sleep 5000 with
    timeout_ms=300 FAILED with a timeout error well before 5 s), cancel of a
    pending task (CANCELLED at once; its stream: PENDING, then CANCELLED),
    of a running one (stream ends CANCELLED), of a finished one
    (FAILED_PRECONDITION);
  * the scheduler's log at info: a retry, a final failure and a cancel each
    have a `task_state` line with the reason, a completed task none;
  * every role exits 0 on SIGTERM.
"""

import hashlib
import os
import random
import re
import sys
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import (CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, SC, check,  # noqa: E402
                     code_of, eq, follow, get, pb, submit)

import harness  # noqa: E402

WA, WB = "e2e-a", "e2e-b"
BUILTINS = ["noop", "echo", "sleep", "fail", "sha256"]
MAX_PAYLOAD = 64 << 10

roles = []
stub = None
tmp = None
sched = None


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


def invalid_specs_and_unknown_ids():
    before = len(cluster.list_all(stub))
    bad = [
        (dict(name="", payload=b"x"), "name"),
        (dict(name="echo", payload=b"x" * (MAX_PAYLOAD + 1)), "payload"),
        (dict(name="echo", max_attempts=-1), "max_attempts"),
        (dict(name="echo", timeout_ms=-5), "timeout_ms"),
    ]
    for spec, word in bad:
        code, details = code_of(lambda: submit(stub, **spec))
        eq(code, SC.INVALID_ARGUMENT, "code for %s" % word)
        check(word in (details or ""), "message %r does not name %s", details, word)
    eq(len(cluster.list_all(stub)), before, "tasks after invalid submits")
    # The largest allowed payload is fine.
    acc = submit(stub, name="echo", payload=b"y" * MAX_PAYLOAD)
    last = follow(stub, acc.task_id)[-1]
    eq((last.status, last.result.output), (COMPLETED, b"y" * MAX_PAYLOAD), "largest payload")

    for what, call in [
            ("GetTask", lambda: get(stub, "no-such-task")),
            ("CancelTask", lambda: stub.CancelTask(pb.CancelTaskRequest(task_id="no-such-task"),
                                                   timeout=10)),
            ("SubscribeProgress", lambda: list(stub.SubscribeProgress(
                pb.ProgressRequest(task_id="no-such-task"), timeout=10)))]:
        eq(code_of(call)[0], SC.NOT_FOUND, what + " of an unknown id")
    log("ok invalid specs and unknown ids")


def idempotency():
    name = "idem-%d" % os.getpid()  # nobody serves it: it stays put
    a = submit(stub, name=name, payload=b"1", idempotency_key="key-%s" % name)
    b = submit(stub, name=name, payload=b"1", idempotency_key="key-%s" % name)
    eq(b.task_id, a.task_id, "id of the repeated submit")
    eq((a.duplicate, b.duplicate), (False, True), "duplicate flags")
    eq(b.accepted_at_unix_ms, a.accepted_at_unix_ms, "accepted_at of the repeat")
    c = submit(stub, name=name, payload=b"1", idempotency_key="other-%s" % name)
    check(c.task_id != a.task_id and not c.duplicate, "another key made a new task")
    eq(sorted(t.task_id for t in cluster.list_all(stub, name=name)),
       sorted([a.task_id, c.task_id]), "tasks of that name")
    for t in (a.task_id, c.task_id):
        stub.CancelTask(pb.CancelTaskRequest(task_id=t), timeout=10)
    log("ok idempotency")


def routing_and_cancel_pending():
    ws = {w.worker_id: set(w.task_names)
          for w in stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers}
    eq(ws, {WA: set(BUILTINS), WB: {"upper", "gate", "rec"}}, "workers and their names")

    ids = [(submit(stub, name="upper", payload=b"hello %d, World" % i).task_id, i)
           for i in range(20)]
    for tid, i in ids:
        last = follow(stub, tid)[-1]
        eq((last.status, last.result.output), (COMPLETED, b"HELLO %d, WORLD" % i), "upper")
        eq(get(stub, tid).worker_id, WB, "worker of an upper task")

    # Nobody serves it: PENDING until cancelled, and the cancel is immediate.
    tid = submit(stub, name="nobody-serves-this", payload=b"p").task_id
    t = get(stub, tid)
    eq((t.status, t.attempt, t.worker_id), (PENDING, 0, ""), "unserved task")
    call = stub.SubscribeProgress(pb.ProgressRequest(task_id=tid), timeout=30)
    first = next(call)
    eq((first.status, first.attempt), (PENDING, 0), "first update of a pending task")
    r = stub.CancelTask(pb.CancelTaskRequest(task_id=tid, reason="not needed"), timeout=10)
    eq((r.task_id, r.status), (tid, CANCELLED), "CancelTask of a pending task")
    rest = list(call)
    cluster.check_stream([first] + rest, tid)
    eq(rest[-1].status, CANCELLED, "stream end of a cancelled pending task")
    t = get(stub, tid)
    eq((t.status, t.result.status), (CANCELLED, CANCELLED), "GetTask after cancel")
    check("not needed" in t.result.error, "cancel reason not kept: %r", t.result.error)
    eq(code_of(lambda: stub.CancelTask(pb.CancelTaskRequest(task_id=tid), timeout=10))[0],
       SC.FAILED_PRECONDITION, "cancel of a cancelled task")
    log("ok routing by name, cancel pending")


def make_bulk(rng):
    """300 specs of every built-in kind, shuffled; each with its check."""
    specs = []
    for i in range(80):
        p = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 17, 300, 4096])))
        specs.append((dict(name="echo", payload=p, labels={"i": str(i)}),
                      (COMPLETED, p, None)))
    for i in range(80):
        p = b"sha-%d-" % i + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 2000)))
        specs.append((dict(name="sha256", payload=p, description="digest %d" % i),
                      (COMPLETED, hashlib.sha256(p).hexdigest().encode(), None)))
    for i in range(50):
        specs.append((dict(name="noop", priority=rng.randrange(-3, 4)), (COMPLETED, b"", None)))
    for i in range(60):
        specs.append((dict(name="sleep", payload=b"%d" % rng.randrange(20, 200)),
                      (COMPLETED, b"", None)))
    for i in range(30):
        p = "error number %d" % i
        specs.append((dict(name="fail", payload=p.encode(), max_attempts=2), (FAILED, b"", p)))
    rng.shuffle(specs)
    return specs


def run_one(spec, want):
    """Submits spec, follows its stream from right after the submit, checks
    the end and GetTask. Returns (task_id, updates)."""
    acc = submit(stub, **spec)
    check(acc.task_id and not acc.duplicate and acc.accepted_at_unix_ms > 0, "accepted: %s",
          acc)
    ups = follow(stub, acc.task_id)
    last = ups[-1]
    status, output, err = want
    what = "%s %s" % (spec["name"], acc.task_id)
    eq(last.status, status, what + " final status")
    eq(last.result.output, output, what + " output")
    max_attempts = spec.get("max_attempts") or 3
    if status == FAILED:
        eq(last.attempt, max_attempts, what + " attempts")
        check(err in last.result.error, "%s: error %r does not carry %r", what,
              last.result.error, err)
    else:
        eq((last.attempt, last.result.error), (1, ""), what + " attempt and error")
    t = get(stub, acc.task_id)
    eq(t.status, status, what + " GetTask status")
    eq(t.result, last.result, what + " GetTask result")
    eq(t.attempt, last.attempt, what + " GetTask attempt")
    eq(t.worker_id, WA, what + " worker")
    want_spec = pb.TaskSpec(**spec)
    want_spec.max_attempts = max_attempts
    eq(t.spec, want_spec, what + " spec")
    check(t.created_unix_ms == acc.accepted_at_unix_ms, "%s: created %d != accepted %d", what,
          t.created_unix_ms, acc.accepted_at_unix_ms)
    check(t.created_unix_ms <= t.started_unix_ms <= t.finished_unix_ms, "%s: times %d %d %d",
          what, t.created_unix_ms, t.started_unix_ms, t.finished_unix_ms)
    return acc.task_id, ups


def bulk():
    specs = make_bulk(random.Random(1234))
    t0 = time.monotonic()
    with futures.ThreadPoolExecutor(max_workers=64) as ex:
        done = list(ex.map(lambda s: run_one(*s), specs))
    kinds = {}
    for spec, _ in specs:
        kinds[spec["name"]] = kinds.get(spec["name"], 0) + 1
    log("ok %d tasks %s in %.1fs", len(done), kinds, time.monotonic() - t0)
    # The stream checks were not vacuous: sleeps showed progress, and
    # failures their retry.
    progressed = sum(1 for _, ups in done
                     if len({u.percent for u in ups if u.status == RUNNING}) >= 3)
    retried = sum(1 for _, ups in done
                  if any(u.status == PENDING and u.attempt == 1 for u in ups))
    check(progressed >= 10, "only %d sleep streams showed 3 progress steps", progressed)
    check(retried >= 5, "only %d fail streams showed the retry", retried)
    log("ok %d streams with progress, %d with a retry", progressed, retried)

    # A late subscriber: one update, the final one, as the first saw it.
    def late(item):
        tid, ups = item
        last = ups[-1]
        ups = list(stub.SubscribeProgress(pb.ProgressRequest(task_id=tid), timeout=30))
        eq(len(ups), 1, "updates for a late subscriber of %s" % tid)
        eq((ups[0].status, ups[0].attempt, ups[0].result), (last.status, last.attempt,
                                                            last.result), "late final update")
    with futures.ThreadPoolExecutor(max_workers=32) as ex:
        list(ex.map(late, done))
    eq(len(cluster.list_all(stub, status=FAILED, name="fail")), 30, "FAILED fail tasks")
    log("ok late subscribers see the final update at once")


def priority():
    order = os.path.join(tmp, "order")
    gate = submit(stub, name="gate", payload=b"")
    gate_ups = []
    call = stub.SubscribeProgress(pb.ProgressRequest(task_id=gate.task_id), timeout=60)
    for u in call:  # B's only slot is taken once gate runs
        gate_ups.append(u)
        if u.status == RUNNING:
            break
    eq(gate_ups[-1].status, RUNNING, "gate running")
    # Interleaved priorities; expected: highest first, FIFO within one.
    plan = []
    for i in range(4):
        for label, prio in (("low", 0), ("high", 10), ("neg", -5), ("mid", 5)):
            plan.append(("%s-%d" % (label, i), prio))
    ids = [submit(stub, name="rec", payload=lbl.encode(), priority=prio).task_id
           for lbl, prio in plan]
    for tid in ids:
        eq(get(stub, tid).status, PENDING, "rec task while B is busy")
    r = stub.CancelTask(pb.CancelTaskRequest(task_id=gate.task_id), timeout=10)
    eq(r.status in (RUNNING, CANCELLED), True, "CancelTask of the running gate")
    for u in call:
        gate_ups.append(u)
    cluster.check_stream(gate_ups, gate.task_id)
    eq(gate_ups[-1].status, CANCELLED, "gate end")
    for tid in ids:
        eq(follow(stub, tid)[-1].status, COMPLETED, "rec task")
    with open(order) as f:
        got = f.read().split()
    want = [lbl for lbl, prio in sorted(plan, key=lambda x: -x[1])]  # stable sort: FIFO
    eq(got, want, "run order")
    log("ok priority order")


def retries_timeouts_cancel_running():
    # Retries: attempt 1 fails, attempt 2 fails, FAILED.
    tid = retried = submit(stub, name="fail", payload=b"retry me", max_attempts=2).task_id
    ups = follow(stub, tid)
    eq((ups[-1].status, ups[-1].attempt), (FAILED, 2), "retried task")
    check("retry me" in ups[-1].result.error, "error %r", ups[-1].result.error)
    eq(get(stub, tid).attempt, 2, "GetTask attempt")
    tid = submit(stub, name="fail", payload=b"once", max_attempts=1).task_id
    eq((follow(stub, tid)[-1].status, get(stub, tid).attempt), (FAILED, 1), "max_attempts=1")

    # Timeouts: the worker stops the sleep at 300 ms, twice.
    t0 = time.monotonic()
    tid = submit(stub, name="sleep", payload=b"5000", timeout_ms=300, max_attempts=2).task_id
    last = follow(stub, tid)[-1]
    took = time.monotonic() - t0
    eq((last.status, last.attempt), (FAILED, 2), "timed-out task")
    check("time" in last.result.error.lower(), "timeout error %r", last.result.error)
    check(took < 4.5, "timed-out task took %.1fs, its sleep is 5 s", took)
    log("ok retries and timeouts (%.1fs; error %r)", took, last.result.error)

    # Cancel a running sleep.
    tid = cancelled = submit(stub, name="sleep", payload=b"20000").task_id
    call = stub.SubscribeProgress(pb.ProgressRequest(task_id=tid), timeout=30)
    ups = []
    for u in call:
        ups.append(u)
        if u.status == RUNNING and u.percent >= 10:
            break
    eq(ups[-1].status, RUNNING, "sleep running")
    t0 = time.monotonic()
    r = stub.CancelTask(pb.CancelTaskRequest(task_id=tid, reason="stop it"), timeout=10)
    check(r.status in (RUNNING, CANCELLED), "CancelTask answer %s", r)
    ups.extend(call)
    cluster.check_stream(ups, tid)
    eq(ups[-1].status, CANCELLED, "cancelled running sleep")
    check(time.monotonic() - t0 < 5, "cancel took %.1fs", time.monotonic() - t0)
    t = get(stub, tid)
    eq((t.status, t.worker_id), (CANCELLED, WA), "GetTask of the cancelled sleep")
    eq(code_of(lambda: stub.CancelTask(pb.CancelTaskRequest(task_id=tid), timeout=10))[0],
       SC.FAILED_PRECONDITION, "cancel of a cancelled task")

    # Cancel a finished task.
    tid = submit(stub, name="echo", payload=b"done").task_id
    eq(follow(stub, tid)[-1].status, COMPLETED, "echo")
    code, details = code_of(lambda: stub.CancelTask(pb.CancelTaskRequest(task_id=tid),
                                                    timeout=10))
    eq(code, SC.FAILED_PRECONDITION, "cancel of a completed task")
    eq(get(stub, tid).status, COMPLETED, "completed task after a refused cancel")
    log("ok cancel running and finished")
    log_levels(retried, cancelled, tid)


def log_levels(retried, cancelled, completed):
    """At info (the default) the scheduler logs what departs from a task's
    normal path, with the reason, and nothing for a task that ran once and
    completed. Each line is written before the client hears of it."""
    text = sched.log()

    def lines(tid):
        return re.findall(r"^.*event=task_(?:state|assigned) task=%s .*$" % tid, text, re.M)

    retry = [ln for ln in lines(retried) if "event=fail " in ln]
    eq(len(retry), 2, "fail transitions of the retried task: %s" % retry)
    check("level=info" in retry[0] and "status=PENDING attempt=1 reason=" in retry[0]
          and "retry me" in retry[0], "the retry's line: %s", retry[0])
    check("level=info" in retry[1] and "status=FAILED attempt=2 reason=" in retry[1],
          "the final failure's line: %s", retry[1])
    check(any("event=cancel " in ln and 'reason="stop it"' in ln for ln in lines(cancelled)),
          "no cancel line with its reason: %s", lines(cancelled))
    eq(lines(completed), [], "info lines of a task that completed")
    log("ok log levels: %d lines for the retried task, none for the completed one",
        len(lines(retried)))


def main():
    global stub, tmp, sched
    tmp = harness.tempdir()
    order = os.path.join(tmp, "order")
    # At the default log level, which log_levels checks.
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"), "--dead-timeout", "2s",
                                   "--heartbeat", "200ms")
    roles.append(sched)
    roles.append(cluster.Role.worker(sched.port, "--slots", "16", "--worker-id", WA,
                                     "--heartbeat", "200ms"))
    roles.append(cluster.Role.worker(
        sched.port, "--slots", "1", "--worker-id", WB, "--builtins", "none",
        "--handler", "upper=/usr/bin/tr a-z A-Z",
        "--handler", "gate=/bin/sleep 60",
        "--handler", "rec=/bin/sh -c 'cat >> %s; echo >> %s'" % (order, order)))
    gw = cluster.Role.gateway(sched.port, "--max-payload", str(MAX_PAYLOAD))
    roles.append(gw)
    stub = gw.stub()
    # Both workers registered before anything is submitted.
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 2,
                 20, "two workers registered")

    invalid_specs_and_unknown_ids()
    idempotency()
    routing_and_cancel_pending()
    bulk()
    priority()
    retries_timeouts_cancel_running()

    # Gateway first, then workers, then the scheduler; each must exit 0.
    cluster.stop_all([gw] + roles[1:3] + [sched])
    log("PASS end to end")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
