#!/usr/bin/python3
"""SIGTERM on each role is a graceful stop: a worker finishes its running
tasks within --drain-timeout (or hands them back past it, and they complete
elsewhere), the scheduler commits everything and leaves running tasks to
their workers, the gateway finishes its in-flight calls; each exits 0.

A scheduler (--grace 2s), a gateway and workers, in three parts:
  * worker: term-1 (--drain-timeout 1500ms) runs two sleeps that end
    within the drain (700 ms) and two that do not (4 s); worker term-2
    registers, term-1 gets SIGTERM. Nothing more is assigned to term-1
    (echo tasks submitted during its drain run on term-2); the short
    sleeps complete on term-1 (attempt 1); past the drain timeout the long
    ones are cancelled there and handed back, and complete on term-2
    (attempt 2); term-1 exits 0 soon after the drain timeout. term-3
    (--drain-timeout 20s) runs two exec-handler tasks (`sleep 0.8`) that it
    alone serves, gets SIGTERM, finishes them and exits 0 at once, long
    before its drain timeout.
  * scheduler: four 2.5 s sleeps run on term-2 and four client threads
    submit echo tasks through the gateway when the scheduler gets SIGTERM.
    It exits 0 within its grace; clients saw only TaskAccepted or
    UNAVAILABLE. Restarted on the same data dir and port: exactly the
    accepted tasks are there and complete with their output; the sleeps
    were left to their worker (attempt 1, started once), not re-run.
  * gateway: with the scheduler stopped (SIGSTOP), six SubmitTask calls
    are forwarded (they sit in the scheduler's socket buffer), then the
    gateway gets SIGTERM: it takes no new call, and once the scheduler is
    resumed (SIGCONT) every in-flight call gets its TaskAccepted, the tasks
    are stored, and the gateway exits 0.
"""

import os
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import (COMPLETED, RUNNING, SC, check, code_of, eq, follow, get, pb,  # noqa: E402
                     pb_grpc, submit)

import grpc  # noqa: E402
import harness  # noqa: E402

roles = []


def term(role):
    """Sends SIGTERM; returns the time it was sent."""
    role.proc.send_signal(signal.SIGTERM)
    return time.monotonic()


def exited(role, t0, timeout):
    """Waits (bounded) for role to exit after a SIGTERM sent at t0; returns
    (exit code, seconds it took)."""
    try:
        role.proc.wait(timeout)
    except Exception:
        raise cluster.Failure("%s did not exit within %.0fs of SIGTERM" % (role.role, timeout))
    took = time.monotonic() - t0
    return harness.stop(role.proc), took


def starts(text, tid):
    return len(re.findall(r"event=task_started task=%s " % tid, text))


def rx_queued(port):
    """Bytes waiting in the receive queues of the TCP sockets listening-side
    on 127.0.0.1:port (what its peers sent that it has not read)."""
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, queues = fields[1], fields[4]
            if local == "0100007F:%04X" % port:
                total += int(queues.split(":")[1], 16)
    return total


def part_worker(stub, sched):
    w1 = cluster.Role.worker(sched.port, "--slots", "4", "--worker-id", "term-1",
                             "--heartbeat", "200ms", "--drain-timeout", "1500ms",
                             "--builtins", "sleep,echo")
    roles.append(w1)
    cluster.poll(lambda: cluster.workers(stub) == ["term-1"], 20, "term-1 registered")
    short = [submit(stub, name="sleep", payload=b"700").task_id for _ in range(2)]
    long_ = [submit(stub, name="sleep", payload=b"4000").task_id for _ in range(2)]
    cluster.poll(lambda: len(cluster.list_all(stub, status=RUNNING)) == 4, 20,
                 "4 sleeps running on term-1")
    w2 = cluster.Role.worker(sched.port, "--slots", "8", "--worker-id", "term-2",
                             "--heartbeat", "200ms", "--builtins", "sleep,echo")
    roles.append(w2)
    cluster.poll(lambda: cluster.workers(stub) == ["term-1", "term-2"], 20, "term-2 registered")

    t0 = term(w1)
    cluster.poll(lambda: re.search(r"event=worker_draining worker=term-1", sched.log()), 10,
                 "the scheduler seeing term-1 drain")
    echo = [submit(stub, name="echo", payload=b"drain %d" % i).task_id for i in range(3)]
    for i, tid in enumerate(echo):
        last = follow(stub, tid, timeout=20)[-1]
        eq((last.status, last.result.output), (COMPLETED, b"drain %d" % i), "echo %s" % tid)
        eq(get(stub, tid).worker_id, "term-2", "worker of echo %s (during the drain)" % tid)
    rc, took = exited(w1, t0, 15)
    eq(rc, 0, "term-1 exit status")
    # libevent timers run on the loop's cached clock, a few ms early at most.
    check(1.4 <= took < 5.5, "term-1 exited %.2fs after SIGTERM (drain timeout 1.5s)", took)
    for tid in short:
        t = follow(stub, tid, timeout=20)[-1]
        eq((t.status, t.attempt, get(stub, tid).worker_id), (COMPLETED, 1, "term-1"),
           "short sleep %s" % tid)
    for tid in long_:
        t = follow(stub, tid, timeout=20)[-1]
        eq((t.status, t.attempt, get(stub, tid).worker_id), (COMPLETED, 2, "term-2"),
           "long sleep %s" % tid)
    l1 = w1.log()
    for what in ("drain_started", "drain_timeout", "worker_stopped"):
        check("event=%s" % what in l1, "term-1 did not log %s", what)
    for tid in long_:
        check(re.search(r"event=task_handed_back task=%s " % tid, l1),
              "term-1 did not hand back %s", tid)
    log("worker: drained 2 tasks, handed back 2 past --drain-timeout, exited 0 after %.1fs", took)

    # A worker whose tasks end within the drain exits as soon as they do.
    w3 = cluster.Role.worker(sched.port, "--slots", "2", "--worker-id", "term-3",
                             "--heartbeat", "200ms", "--drain-timeout", "20s",
                             "--builtins", "none", "--handler", "nap=sleep 0.8")
    roles.append(w3)
    cluster.poll(lambda: cluster.workers(stub) == ["term-2", "term-3"], 20, "term-3 registered")
    naps = [submit(stub, name="nap").task_id for _ in range(2)]
    cluster.poll(lambda: all(get(stub, tid).status == RUNNING for tid in naps), 10,
                 "naps running on term-3")
    t0 = term(w3)
    rc, took = exited(w3, t0, 15)
    eq(rc, 0, "term-3 exit status")
    check(took < 5, "term-3 took %.1fs to drain two 0.8s tasks", took)
    for tid in naps:
        t = get(stub, tid)
        eq((t.status, t.attempt, t.worker_id), (COMPLETED, 1, "term-3"), "nap %s" % tid)
    log("worker: finished its exec tasks within the drain and exited 0 after %.1fs", took)
    return w2


class Submitters(cluster.Threads):
    """Client threads submitting echo tasks until each has seen an error
    (the scheduler going away) or the deadline passes."""

    def __init__(self, stub, n):
        self.stub = stub
        self.cond = threading.Condition()
        self.accepted = {}  # key -> (task id, payload)
        self.errors = []
        self.seq = 0
        self.deadline = time.monotonic() + 30
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self):
        while time.monotonic() < self.deadline:
            with self.cond:
                self.seq += 1
                i = self.seq
            key = "term-%d-%d" % (os.getpid(), i)
            p = b"sub %d" % i
            try:
                acc = submit(self.stub, timeout=10, name="echo", payload=p, idempotency_key=key)
            except grpc.RpcError as e:
                with self.cond:
                    self.errors.append((e.code(), e.details()))
                    self.cond.notify_all()
                return
            with self.cond:
                self.accepted[key] = (acc.task_id, p)
                self.cond.notify_all()


def part_scheduler(stub, clients_stub, sched, w2):
    before = {t.task_id: t for t in cluster.list_all(stub)}
    sleeps = [submit(stub, name="sleep", payload=b"2500").task_id for _ in range(4)]
    cluster.poll(lambda: all(get(stub, tid).status == RUNNING for tid in sleeps), 10,
                 "sleeps running on term-2")
    subs = Submitters(clients_stub, 4)
    subs.wait(lambda s: len(s.accepted) >= 40, 20, "40 accepted submissions")
    t0 = term(sched)
    rc, took = exited(sched, t0, 15)
    eq(rc, 0, "scheduler exit status")
    check(took < 2 + 3, "the scheduler took %.1fs to stop (--grace 2s)", took)
    subs.join(20)
    bad = [e for e in subs.errors if e[0] != SC.UNAVAILABLE]
    check(not bad, "clients saw errors other than UNAVAILABLE: %s", bad[:3])
    check(re.search(r"event=stopped", sched.log()), "the scheduler did not log stopped")
    log("scheduler: exited 0 %.1fs after SIGTERM; %d submits accepted, %d refused", took,
        len(subs.accepted), len(subs.errors))

    sched.restart()
    cluster.poll(lambda: cluster.workers_if_up(stub) == ["term-2"], 30,
                 "term-2 back with the scheduler")
    for key, (tid, p) in subs.accepted.items():
        last = follow(stub, tid, timeout=30)[-1]
        eq((last.status, last.result.output), (COMPLETED, p), "accepted task %s" % tid)
    for tid in sleeps:
        last = follow(stub, tid, timeout=30)[-1]
        eq((last.status, last.attempt), (COMPLETED, 1), "sleep %s across the restart" % tid)
        eq(starts(w2.log(), tid), 1, "starts of %s" % tid)
    everything = {t.task_id: t for t in cluster.list_all(stub)}
    want = set(before) | set(sleeps) | {tid for tid, _ in subs.accepted.values()}
    eq(set(everything), want, "tasks in the store after the restart")
    for tid, t in before.items():
        eq((everything[tid].status, everything[tid].result), (t.status, t.result),
           "task %s from before the stop" % tid)
    log("scheduler: all %d accepted tasks stored and completed; running sleeps kept attempt 1",
        len(subs.accepted))


def part_gateway(sched):
    gw2 = cluster.Role.gateway(sched.port, "--grace", "10s")
    roles.append(gw2)
    stub = gw2.stub()
    sstub = sched.stub()
    eq(cluster.workers(stub), ["term-2"], "workers seen through the second gateway")
    n, size = 6, 2000
    sched.proc.send_signal(signal.SIGSTOP)
    try:
        base = rx_queued(sched.port)
        calls = [stub.SubmitTask.future(pb.TaskSpec(name="echo", payload=b"%d" % i * size),
                                        timeout=20) for i in range(n)]
        # Every request has reached the scheduler's socket: the gateway
        # holds six forwarded calls.
        cluster.poll(lambda: rx_queued(sched.port) - base >= n * size, 10,
                     "the gateway's %d forwarded calls at the stopped scheduler" % n)
        t0 = term(gw2)
        cluster.poll(lambda: "event=shutdown" in gw2.log(), 10, "gateway shutdown logged")
        check(not any(c.done() for c in calls), "a call ended before the scheduler resumed")
        # No new calls once it drains (a new connection is refused).
        fresh = pb_grpc.GatewayStub(gw2.channel())
        eq(code_of(lambda: fresh.GetTask(pb.GetTaskRequest(task_id="x"), timeout=5))[0],
           SC.UNAVAILABLE, "a new call to the draining gateway")
    finally:
        sched.proc.send_signal(signal.SIGCONT)
    accepted = [c.result(timeout=20) for c in calls]
    rc, took = exited(gw2, t0, 15)
    eq(rc, 0, "gateway exit status")
    for i, acc in enumerate(accepted):
        t = sstub.GetTask(pb.GetTaskRequest(task_id=acc.task_id), timeout=10)
        eq(t.spec.payload, b"%d" % i * size, "payload of in-flight submit %d" % i)
    log("gateway: %d in-flight calls answered after SIGTERM; exited 0 after %.1fs", n, took)


def main():
    tmp = harness.tempdir()
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"), "--dead-timeout", "3s",
                                   "--heartbeat", "200ms", "--grace", "2s")
    roles.append(sched)
    gw = cluster.Role.gateway(sched.port)
    roles.append(gw)
    stub, clients_stub = gw.stub(), gw.stub()

    w2 = part_worker(stub, sched)
    part_scheduler(stub, clients_stub, sched, w2)
    part_gateway(sched)

    cluster.stop_all([r for r in roles if r.proc.poll() is None])
    log("PASS SIGTERM on each role: graceful")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
