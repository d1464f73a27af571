#!/usr/bin/python3
"""`kill -9` of a worker in the middle of 100 running tasks: each ends
COMPLETED on the other worker, none is reported COMPLETED twice, none runs
more than max_attempts times.

A scheduler (--dead-timeout 1s), two workers with 50 slots each
(--heartbeat 200ms) and a gateway; 100 `sleep 2500` tasks submitted through
the gateway and followed on their SubscribeProgress streams. Once all 100
are RUNNING and have reported progress, worker A gets SIGKILL. Checks:
  * every stream ends OK with exactly one final update, COMPLETED; the tasks
    A held end on B with attempt 2, B's own with attempt 1;
  * the scheduler logged one `complete` per task, and the two workers
    together started each task at most max_attempts times;
  * A is gone from ListWorkers; the survivors exit 0 on SIGTERM.
"""

import os
import re
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import COMPLETED, RUNNING, check, eq, follow, get, pb, submit  # noqa: E402

import harness  # noqa: E402

N = 100
SLEEP_MS = 2500
MAX_ATTEMPTS = 3
roles = []


def main():
    tmp = harness.tempdir()
    sched = cluster.Role.watchful_scheduler(os.path.join(tmp, "data"))
    roles.append(sched)
    wa = cluster.Role.worker(sched.port, "--slots", "50", "--worker-id", "kill-a",
                             "--heartbeat", "200ms", "--builtins", "sleep")
    wb = cluster.Role.worker(sched.port, "--slots", "50", "--worker-id", "kill-b",
                             "--heartbeat", "200ms", "--builtins", "sleep")
    gw = cluster.Role.gateway(sched.port)
    roles.extend([wa, wb, gw])
    # The 100 progress streams get a connection of their own, apart from
    # the calls that check on them.
    stub, streams_stub = gw.stub(), gw.stub()
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 2,
                 20, "two workers registered")

    ids = [submit(stub, name="sleep", payload=b"%d" % SLEEP_MS).task_id for _ in range(N)]
    streams = {}
    lock = threading.Lock()

    def watch(tid):
        ups = follow(streams_stub, tid, timeout=60)
        with lock:
            streams[tid] = ups
        return ups

    ex = futures.ThreadPoolExecutor(max_workers=N)
    pending = [ex.submit(watch, tid) for tid in ids]

    # All 100 running (50 on each worker) and under way.
    def all_running():
        ts = cluster.list_all(stub, status=RUNNING, name="sleep")
        return len(ts) == N and all(t.percent >= 10 for t in ts) and ts
    running = cluster.poll(all_running, 30, "100 tasks running with progress")
    on_a = {t.task_id for t in running if t.worker_id == "kill-a"}
    on_b = {t.task_id for t in running if t.worker_id == "kill-b"}
    eq((len(on_a), len(on_b)), (50, 50), "tasks per worker")
    t_kill = time.monotonic()
    wa.kill9()
    log("killed worker A holding %d running tasks", len(on_a))

    for f in pending:
        f.result(timeout=60)
    took = time.monotonic() - t_kill
    ex.shutdown()
    log("all %d streams ended %.1fs after the kill", N, took)

    for tid in ids:
        ups = streams[tid]
        last = ups[-1]
        eq(last.status, COMPLETED, "final status of %s" % tid)
        eq(sum(1 for u in ups if u.status == COMPLETED), 1, "COMPLETED updates of %s" % tid)
        t = get(stub, tid)
        eq((t.status, t.result), (COMPLETED, last.result), "GetTask of %s" % tid)
        eq(t.worker_id, "kill-b", "worker that completed %s" % tid)
        want = 2 if tid in on_a else 1
        eq(last.attempt, want, "attempt of %s" % tid)
        check(last.attempt <= MAX_ATTEMPTS, "%s: attempt %d", tid, last.attempt)

    completes = cluster.task_events(sched.log(), "complete")
    eq({tid: completes.get(tid, 0) for tid in ids}, {tid: 1 for tid in ids},
       "scheduler `complete` transitions per task")
    starts_a, starts_b = cluster.task_starts(wa.log()), cluster.task_starts(wb.log())
    for tid in ids:
        a, b = starts_a.get(tid, 0), starts_b.get(tid, 0)
        check(a + b <= MAX_ATTEMPTS, "%s started %d times on A and %d on B", tid, a, b)
        eq((a, b), (1, 1) if tid in on_a else (0, 1), "starts of %s on A, B" % tid)
    ws = [w.worker_id for w in stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers]
    eq(ws, ["kill-b"], "workers after the kill")
    check(re.search(r"event=worker_gone worker=kill-a", sched.log()), "no worker_gone for A")

    cluster.stop_all([gw, wb, sched, wa])
    log("PASS kill -9 of a worker with %d running tasks: all completed on the other, "
        "each exactly once", len(on_a))


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
