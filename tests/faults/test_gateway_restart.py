#!/usr/bin/python3
"""The gateway restarted while clients follow progress streams: the
streams end with UNAVAILABLE, the clients re-subscribe once it is back and
see the final state; nothing is lost, since the gateway holds no state.

A scheduler, a worker (20 slots), and two gateways. 20 `sleep` tasks are
followed through gateway 1. Twice, with the tasks still running, gateway 1
goes away, first by `kill -9`, then by SIGTERM (it must end its open
streams with UNAVAILABLE at once and exit 0):
  * every open stream ends with UNAVAILABLE, never with a made-up final
    update;
  * while it is down, gateway 2 serves the same tasks (GetTask,
    SubscribeProgress);
  * gateway 1 restarted on the same port: each client re-subscribes (its
    first update is the task's current state, never older than what it had
    seen), follows to the end, and sees COMPLETED on attempt 1; a late
    subscriber gets the same final update;
  * every role exits 0 on SIGTERM.
"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import (COMPLETED, RUNNING, SC, check, code_of, eq, get, pb, pb_grpc,  # noqa: E402
                     submit)

import grpc  # noqa: E402
import harness  # noqa: E402

N = 20
SLEEP_MS = 4000
roles = []


class Subscriber:
    """A client following one task through a gateway: after a stream ends
    with UNAVAILABLE it re-subscribes, waiting (bounded) for the gateway to
    be back (wait_for_ready: grpcio reconnects at once then, whereas
    fail-fast calls in a loop can hold its reconnect back for seconds),
    until a stream ends OK."""

    def __init__(self, stub, task_id):
        self.stub = stub
        self.task_id = task_id
        self.cond = threading.Condition()
        self.updates = []     # every update, across subscriptions
        self.firsts = []      # index in updates of each subscription's first
        self.ends = []        # how each subscription ended (status code)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for _ in range(10):
            got = 0
            try:
                for u in self.stub.SubscribeProgress(pb.ProgressRequest(task_id=self.task_id),
                                                     timeout=30, wait_for_ready=True):
                    with self.cond:
                        if not got:
                            self.firsts.append(len(self.updates))
                        got += 1
                        self.updates.append(u)
                        self.cond.notify_all()
                end = SC.OK
            except grpc.RpcError as e:
                end = e.code()
            with self.cond:
                self.ends.append(end)
                self.cond.notify_all()
            if end != SC.UNAVAILABLE:
                return

    def wait(self, pred, timeout, what):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self), timeout):
                raise cluster.Failure("%s: no %s within %.0fs (stream ends %s, updates %s)"
                                      % (self.task_id, what, timeout, self.ends,
                                         [(cluster.status_name(u.status), u.percent)
                                          for u in self.updates]))


def outage(gw, stub2, subs, how):
    """Takes gateway 1 away (how: "kill" or "term") while every subscriber
    has an open stream with a RUNNING update; brings it back once the
    other gateway has shown it serves the same tasks. Returns how long
    gateway 1 was away."""
    for s in subs:
        s.wait(lambda x: x.updates and x.updates[-1].status == RUNNING
               and len(x.firsts) > len(x.ends), 20, "open stream with a RUNNING update")
    n_ends = {s.task_id: len(s.ends) for s in subs}
    t0 = time.monotonic()
    if how == "kill":
        gw.kill9()
    else:
        rc = gw.stop()
        eq(rc, 0, "gateway exit status on SIGTERM with open streams")
    for s in subs:
        s.wait(lambda x: len(x.ends) > n_ends[x.task_id], 10, "end of the stream")
        eq(s.ends[n_ends[s.task_id]], SC.UNAVAILABLE, "%s: stream end when the gateway went "
           "(%s)" % (s.task_id, how))
        check(all(u.status == RUNNING for u in s.updates), "%s: final update before the end",
              s.task_id)
    ended = time.monotonic() - t0
    # SIGTERM ends progress streams at once rather than after --grace (5 s):
    # they would never end by themselves.
    check(ended < 3, "open streams took %.1fs to end (%s)", ended, how)
    # A fail-fast call finds it gone.
    probe = pb_grpc.GatewayStub(gw.channel())
    eq(code_of(lambda: probe.GetTask(pb.GetTaskRequest(task_id=subs[0].task_id),
                                     timeout=5))[0], SC.UNAVAILABLE, "GetTask via the dead gateway")
    # The other gateway serves meanwhile.
    eq(get(stub2, subs[0].task_id).status, RUNNING, "task via gateway 2")
    call = stub2.SubscribeProgress(pb.ProgressRequest(task_id=subs[0].task_id), timeout=10)
    eq(next(call).status, RUNNING, "first update via gateway 2")
    call.cancel()
    gw.restart()
    away = time.monotonic() - t0
    for s in subs:
        s.wait(lambda x: len(x.firsts) > len(x.ends) or x.ends[-1] == SC.OK, 20,
               "re-subscription")
    return away


def main():
    tmp = harness.tempdir()
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"), "--heartbeat", "200ms")
    roles.append(sched)
    worker = cluster.Role.worker(sched.port, "--slots", str(N), "--heartbeat", "200ms",
                                 "--builtins", "sleep,echo")
    gw = cluster.Role.gateway(sched.port, "--grace", "5s")
    gw2 = cluster.Role.gateway(sched.port)
    roles.extend([worker, gw, gw2])
    stub, stub2 = gw.stub(), gw2.stub()
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 1,
                 20, "worker registered")

    ids = [submit(stub, name="sleep", payload=b"%d" % SLEEP_MS).task_id for _ in range(N)]
    subs = [Subscriber(stub, tid) for tid in ids]
    away = outage(gw, stub2, subs, "kill")
    log("kill -9: %d streams ended UNAVAILABLE, gateway back after %d ms", N, away * 1000)
    away = outage(gw, stub2, subs, "term")
    log("SIGTERM: %d streams ended UNAVAILABLE, gateway exited 0, back after %d ms", N, away * 1000)

    for s in subs:
        s.thread.join(30)
        check(not s.thread.is_alive(), "%s: subscriber did not finish", s.task_id)
        eq(s.ends, [SC.UNAVAILABLE, SC.UNAVAILABLE, SC.OK], "%s: stream ends" % s.task_id)
        # Each subscription on its own is a well-formed stream...
        bounds = s.firsts + [len(s.updates)]
        for a, b in zip(bounds, bounds[1:]):
            if b == len(s.updates):
                cluster.check_stream(s.updates[a:b], s.task_id)  # the one that ended OK
            else:
                pct = [u.percent for u in s.updates[a:b]]
                check(pct == sorted(pct), "%s: percent went down: %s", s.task_id, pct)
        # ...and a re-subscription starts from the current state, which is
        # never older than what the client had already seen.
        for k in s.firsts[1:]:
            prev, first = s.updates[k - 1], s.updates[k]
            check(cluster.order_key(first) >= cluster.order_key(prev) and
                  (first.status != RUNNING or first.percent >= prev.percent),
                  "%s: re-subscription started at %s/%d%%, before %s/%d%%", s.task_id,
                  cluster.status_name(first.status), first.percent,
                  cluster.status_name(prev.status), prev.percent)
        last = s.updates[-1]
        eq((last.status, last.attempt, last.result.status), (COMPLETED, 1, COMPLETED),
           "%s: final update" % s.task_id)
        late = list(stub.SubscribeProgress(pb.ProgressRequest(task_id=s.task_id), timeout=10))
        eq([(u.status, u.result) for u in late], [(last.status, last.result)],
           "%s: late subscriber" % s.task_id)
    # Nothing else was disturbed.
    eq(len(cluster.list_all(stub, status=COMPLETED, name="sleep")), N, "completed tasks")
    eq(code_of(lambda: get(stub, "no-such-task"))[0], SC.NOT_FOUND, "unknown id after restarts")
    log("all %d subscribers saw the final state after two gateway restarts", N)

    cluster.stop_all([gw, gw2, worker, sched])
    log("PASS gateway restart during SubscribeProgress")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
