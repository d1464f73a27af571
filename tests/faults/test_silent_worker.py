#!/usr/bin/python3
"""A worker that goes silent without closing its stream (SIGSTOP) while it
runs tasks: the scheduler re-queues them after the dead-timeout, they
complete on another worker, and when the stopped worker wakes (SIGCONT) its
late results for them are ignored and logged, never applied twice.

A scheduler (--dead-timeout 1s, --heartbeat 200ms), worker A (10 slots,
sleep and echo) and a gateway. 10 sleep tasks run on A, followed on their
SubscribeProgress streams: 5 short (1.5 s) and 5 long (6 s). Worker B
(sleep only) registers and A gets SIGSTOP. A gets SIGCONT once the short
ones have completed on B, while the long ones still run on both. Checks:
  * the scheduler logs `worker_silent` for A, drops it from ListWorkers and
    re-assigns its tasks to B as attempt 2 (while A is still stopped);
  * after SIGCONT, A finishes the short sleeps at once (their time is up)
    and keeps those results for the next stream; it re-registers listing
    all 10, and the scheduler tells it to cancel them (they are B's now).
    A's result for each (attempt 1: COMPLETED for a task already final on
    B, CANCELLED for one B still runs) is logged as `result_ignored`, not
    applied;
  * every stream ends with exactly one final update, COMPLETED on B with
    attempt 2; the scheduler logged one `complete` per task and no illegal
    transition; A and B each started every task once;
  * A works again: echo tasks (only A serves echo) complete on it;
  * every role exits 0 on SIGTERM.
"""

import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import COMPLETED, RUNNING, check, eq, get  # noqa: E402

import harness  # noqa: E402
from moved import OnA, check_moved_once, ignored_results  # noqa: E402
from cluster import workers  # noqa: E402

SHORT_MS = 1500
LONG_MS = 6000
N = 10  # half short, half long
roles = []





def main():
    tmp = harness.tempdir()
    sched = cluster.Role.watchful_scheduler(os.path.join(tmp, "data"))
    roles.append(sched)
    wa = cluster.Role.worker(sched.port, "--slots", "10", "--worker-id", "silent-a",
                             "--heartbeat", "200ms", "--builtins", "sleep,echo")
    gw = cluster.Role.gateway(sched.port)
    roles.extend([wa, gw])
    stub, streams_stub = gw.stub(), gw.stub()
    cluster.poll(lambda: workers(stub) == ["silent-a"], 20, "worker A registered")

    on_a = OnA(stub, streams_stub, sched.port, 'silent-a', 'silent-b', N, SHORT_MS, LONG_MS)
    roles.append(on_a.wb)
    ids, short, long_, streams = on_a.ids, on_a.short, on_a.long_, on_a.streams
    wb, t_start = on_a.wb, on_a.t_start

    wa.proc.send_signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        # The scheduler finds A silent and hands its tasks to B.
        cluster.poll(lambda: re.search(r"event=worker_silent worker=silent-a", sched.log()),
                     10, "worker_silent for A")
        eq(workers(stub), ["silent-b"], "workers while A is stopped")

        def moved():
            ts = [get(stub, tid) for tid in ids]
            return all(t.status == RUNNING and t.worker_id == "silent-b" and t.attempt == 2
                       for t in ts)
        cluster.poll(moved, 10, "A's tasks running on B as attempt 2")
        log("A stopped; its %d tasks re-assigned to B %.1fs later", N,
            time.monotonic() - t_stop)
        cluster.poll(lambda: all(get(stub, tid).status == COMPLETED for tid in short), 10,
                     "short tasks completed on B")
        # The long sleeps must still be running on A when it wakes.
        ran = time.monotonic() - t_start
        check(ran < LONG_MS / 1000.0 - 1, "A woke %.1fs after its long sleeps started", ran)
    finally:
        wa.proc.send_signal(signal.SIGCONT)

    # A wakes with its attempt-1 sleeps still running: it learns its
    # stream was ended, registers again listing them, is told to cancel
    # them, and its results for them are ignored.
    def a_back():
        return (len(re.findall(r"event=worker_registered worker=silent-a", sched.log())) == 2
                and len(ignored_results(sched.log(), "silent-a")) == N)
    cluster.poll(a_back, 15, "A re-registered and its %d late results ignored" % N)
    ign = ignored_results(sched.log(), "silent-a")
    eq(ign, {tid: [1] for tid in ids}, "ignored results of A (task -> attempts)")
    eq(workers(stub), ["silent-a", "silent-b"], "workers after A woke")
    alog = wa.log()
    check(re.search(r"event=disconnected .*status=UNAVAILABLE", alog),
          "A did not log the scheduler ending its stream")
    for tid in short:
        check(re.search(r"event=task_finished task=%s .*status=COMPLETED" % tid, alog),
              "A did not finish the short %s", tid)
        check(re.search(r"event=result_kept task=%s " % tid, alog),
              "A did not keep the result of %s for the next stream", tid)
    for tid in long_:
        check(re.search(r"event=task_cancel task=%s attempt=1 " % tid, alog),
              "A was not told to cancel %s", tid)
    log("A re-registered; its %d late results were ignored and logged", len(ign))

    on_a.finish()
    check_moved_once(stub, sched, wa, wb, ids, streams, 'silent-a', 'silent-b')

    cluster.stop_all([gw, wa, wb, sched])
    log("PASS a silent worker's tasks completed once on another worker; its late results "
        "ignored")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
