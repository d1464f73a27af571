#!/usr/bin/python3
"""`kill -9` of the scheduler while submissions are in flight, and a restart
on the same data dir and port: nothing accepted is lost, finished results
survive, and clients see UNAVAILABLE (never a false success) meanwhile.

A scheduler, two workers (8 slots each) and a gateway. 1,000 tasks (echo,
sha256 and, among the first 300, sleep 200..800 ms; six sleep 3 s, so they
are running when the scheduler dies), each with its own idempotency key,
go through the gateway: the first 100 at once; once some have finished and
the long ones run, six client threads submit the other 900 and the
scheduler is killed after 40 of those were accepted. Clients retry a submit that failed (same
key) until it is accepted. Checks:
  * while the scheduler is down, every call through the gateway fails fast
    with UNAVAILABLE (submits, GetTask, SubscribeProgress; progress streams
    that were open end with UNAVAILABLE); the gateway stays SERVING; the
    workers notice (GetWorkerStatus: scheduler_connected false);
  * every error any client saw is UNAVAILABLE;
  * after the restart (same port; workers and gateway reconnect by
    themselves) every task with a TaskAccepted completes with the right
    output; there are exactly 1,000 tasks (a submit retried after the crash
    with the same key found its task instead of making a second one);
  * tasks finished before the kill have the same result after it;
  * the sleeps running through the outage are not run again: their workers
    re-register with them (attempt 1, started once);
  * every role exits 0 on SIGTERM.
"""

import hashlib
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import (COMPLETED, RUNNING, SC, check, code_of, eq, follow, get, pb,  # noqa: E402
                     submit)

import grpc  # noqa: E402
import harness  # noqa: E402

N = 1000
SLEEPY = 300  # tasks past this one are quick (echo, sha256)
FIRST = 100
LONG = 6
SUBMITTERS = 6
roles = []


def spec_of(i):
    """The i-th task and its expected output. The first LONG are sleeps
    that are sure to be running when the scheduler dies."""
    key = "ks-%d-%d" % (os.getpid(), i)
    if i < LONG:
        return dict(name="sleep", payload=b"3000", idempotency_key=key), b""
    if i % 3 == 0 or (i >= SLEEPY and i % 2 == 0):
        p = b"echo %d" % i
        return dict(name="echo", payload=p, idempotency_key=key), p
    if i % 3 == 1 or i >= SLEEPY:
        p = b"digest me %d" % i
        return dict(name="sha256", payload=p, idempotency_key=key), \
            hashlib.sha256(p).hexdigest().encode()
    return dict(name="sleep", payload=b"%d" % (200 + (i * 37) % 600), idempotency_key=key), b""


PACE = 0.02  # seconds between one thread's submissions


class Clients(cluster.Threads):
    """Client threads submitting specs[lo:hi], retrying (same key) after
    an error; records what they saw."""

    def __init__(self, stub, lo, hi):
        self.stub = stub
        self.todo = list(range(lo, hi))
        self.cond = threading.Condition()
        self.accepted = {}  # i -> TaskAccepted
        self.errors = []    # (i, code, details)
        self.retried = set()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(SUBMITTERS)]
        self.deadline = time.monotonic() + 90

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self):
        while True:
            with self.cond:
                if not self.todo:
                    return
                i = self.todo.pop(0)
            spec, _ = spec_of(i)
            while True:
                try:
                    acc = submit(self.stub, timeout=10, **spec)
                    break
                except grpc.RpcError as e:
                    with self.cond:
                        self.errors.append((i, e.code(), e.details()))
                        self.retried.add(i)
                        self.cond.notify_all()
                    if time.monotonic() > self.deadline:
                        return
                    time.sleep(0.05)  # pacing between retries, not a wait for an event
            with self.cond:
                self.accepted[i] = acc
                self.cond.notify_all()
            # A client's submission rate, not a wait for an event: without
            # it six threads could submit everything before the kill, and
            # there would be nothing in flight to kill under.
            time.sleep(PACE)


def main():
    tmp = harness.tempdir()
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"), "--dead-timeout", "3s",
                                   "--heartbeat", "200ms")
    roles.append(sched)
    workers = [cluster.Role.worker(sched.port, "--slots", "8", "--worker-id", "ks-%d" % k,
                                   "--heartbeat", "200ms") for k in (1, 2)]
    gw = cluster.Role.gateway(sched.port, "--log-level", "debug")
    roles.extend(workers + [gw])
    stub, streams_stub, clients_stub = gw.stub(), gw.stub(), gw.stub()
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 2,
                 20, "two workers registered")

    # Phase 1: 100 tasks; wait until some finished and some are running.
    ids = {}
    for i in range(FIRST):
        spec, _ = spec_of(i)
        ids[i] = submit(stub, **spec).task_id

    long_ids = {ids[i] for i in range(LONG)}

    def under_way():
        tasks = cluster.list_all(stub)
        done = [t for t in tasks if t.status == COMPLETED]
        running = [t for t in tasks if t.status == RUNNING and t.task_id in long_ids]
        return len(done) >= 30 and len(running) == LONG and (done, running)
    done, running = cluster.poll(under_way, 30, "30 tasks completed and the long sleeps running")
    before = {t.task_id: get(stub, t.task_id) for t in done}

    # Streams open on the long sleeps: they must end UNAVAILABLE, with no
    # final update.
    stream_ends = {}
    stream_finals = {}
    slock = threading.Lock()

    def watch(tid):
        ups = []
        try:
            for u in streams_stub.SubscribeProgress(pb.ProgressRequest(task_id=tid), timeout=60):
                ups.append(u)
            end = SC.OK
        except grpc.RpcError as e:
            end = e.code()
        with slock:
            stream_ends[tid] = end
            stream_finals[tid] = [u for u in ups if u.status in cluster.FINAL]
    watchers = [threading.Thread(target=watch, args=(t.task_id,), daemon=True)
                for t in running]
    for w in watchers:
        w.start()

    def streams_open():
        with slock:
            check(not stream_ends, "progress streams ended early: %s", stream_ends)
        return gw.log().count("event=subscribe task=") >= len(watchers)
    cluster.poll(streams_open, 10, "progress streams open")

    # Phase 2: clients submit the rest; the scheduler dies under them.
    clients = Clients(clients_stub, FIRST, N)
    clients.start()
    clients.wait(lambda c: len(c.accepted) >= 40, 30, "40 accepted submissions")
    sched.kill9()
    t_kill = time.monotonic()
    with clients.cond:
        accepted_before_kill = dict(clients.accepted)
    log("killed the scheduler: %d + %d accepted, %d completed before", FIRST,
        len(accepted_before_kill), len(before))

    # While it is down: UNAVAILABLE, fast.
    for what, call in [
            ("SubmitTask", lambda: submit(stub, name="echo", payload=b"down")),
            ("GetTask", lambda: get(stub, next(iter(before)))),
            ("ListTasks", lambda: stub.ListTasks(pb.ListTasksRequest(), timeout=10)),
            ("SubscribeProgress", lambda: list(stub.SubscribeProgress(
                pb.ProgressRequest(task_id=next(iter(before))), timeout=10)))]:
        t0 = time.monotonic()
        code, details = code_of(call)
        eq(code, SC.UNAVAILABLE, what + " while the scheduler is down (%s)" % details)
        check(time.monotonic() - t0 < 3, "%s took %.1fs to fail", what, time.monotonic() - t0)
    h = stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
    eq(h.status, pb.HealthCheckResponse.SERVING, "gateway health while the scheduler is down")
    for w in watchers:
        w.join(10)
        check(not w.is_alive(), "a progress stream stayed open with the scheduler gone")
    eq(list(stream_ends.values()), [SC.UNAVAILABLE] * LONG, "ends of the open streams")
    eq([f for f in stream_finals.values() if f], [], "final updates on the open streams")
    for w in workers:
        ws = w.stub()
        cluster.poll(lambda: not ws.GetWorkerStatus(pb.GetWorkerStatusRequest(),
                                                    timeout=10).scheduler_connected,
                     10, "worker noticing the scheduler is gone")
    n_err = len(clients.errors)
    clients.wait(lambda c: len(c.errors) >= n_err + 3, 20, "clients failing while down")
    with clients.cond:
        errors_while_down = len(clients.errors)
    down_for = time.monotonic() - t_kill

    # Back on the same port and data dir.
    sched.restart()
    log("restarted after %d ms down; clients had %d errors", down_for * 1000, errors_while_down)
    cluster.poll(lambda: len(cluster.workers_if_up(stub)) == 2, 30, "scheduler and both workers back")
    clients.join(60)

    bad = [(i, c, d) for i, c, d in clients.errors if c != SC.UNAVAILABLE]
    check(not bad, "clients saw errors other than UNAVAILABLE: %s", bad[:5])
    check(clients.errors, "no client saw UNAVAILABLE")
    eq(len(clients.accepted), N - FIRST, "accepted submissions of the clients")
    for i, acc in clients.accepted.items():
        ids[i] = acc.task_id
    for i, acc in accepted_before_kill.items():
        eq(clients.accepted[i].task_id, acc.task_id, "id of %d" % i)
    dups = sorted(i for i in clients.retried if clients.accepted[i].duplicate)
    log("%d submits retried, %d of them had reached the store before the crash",
        len(clients.retried), len(dups))

    # Everything accepted completes with the right output; nothing twice.
    for i in range(N):
        _, want = spec_of(i)
        last = follow(stub, ids[i], timeout=60)[-1]
        eq((last.status, last.result.output), (COMPLETED, want), "task %d (%s)" % (i, ids[i]))
    everything = cluster.list_all(stub)
    eq(len(everything), N, "tasks in the store")
    eq({t.task_id for t in everything}, set(ids.values()), "task ids")
    for tid, t in before.items():
        after = get(stub, tid)
        eq((after.status, after.result, after.attempt, after.finished_unix_ms),
           (t.status, t.result, t.attempt, t.finished_unix_ms), "finished task %s after restart"
           % tid)
    # The long sleeps went on running on their workers through the outage:
    # the workers re-registered with them, so they were not run again.
    starts = "".join(w.log() for w in workers)
    for tid in long_ids:
        eq(get(stub, tid).attempt, 1, "attempt of the long sleep %s" % tid)
        eq(starts.count("event=task_started task=%s " % tid), 1, "starts of %s" % tid)
    log("all %d tasks completed; %d results from before the kill unchanged", N, len(before))

    cluster.stop_all([gw] + workers + [sched])
    log("PASS kill -9 of the scheduler: nothing accepted lost, clients saw only UNAVAILABLE")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
