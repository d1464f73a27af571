"""A worker written with stock python3-grpcio, from docs/protocol.md alone,
joins a real orchd scheduler and completes tasks.

Checks: the welcome comes first; only registered task names are assigned;
never more tasks in hand than slots; results reach WatchTask subscribers with
the output; a worker whose stream breaks mid-task loses its tasks to another
worker, which completes them; a late result from the lost stream is ignored;
a worker that drops the cancel sent at a lease's end gets that slot back once
its heartbeat no longer lists the task, and not before.
"""
import os
import queue
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pbg  # noqa: E402

B = harness.build_dir()
DEADLINE = 60.0


class PyWorker:
    """A worker per docs/protocol.md; results are sent by `finish`."""

    def __init__(self, channel, worker_id, names, slots, auto=True):
        self.out = queue.Queue()
        self.assigned = queue.Queue()
        self.cancels = queue.Queue()
        self.welcome = threading.Event()
        self.in_hand = set()
        self.max_in_hand = 0
        self.order = []
        self.lock = threading.Lock()
        self.auto = auto
        self.worker_id = worker_id
        stub = pbg.SchedulerStub(channel)
        self.out.put(pb.WorkerResponse(registration=pb.WorkerRegistration(
            worker_id=worker_id, slots=slots, task_names=names, version="py-test")))
        self.call = stub.RegisterWorker(self._requests(), timeout=DEADLINE)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self):
        while True:
            m = self.out.get()
            if m is None:
                return
            yield m

    def _read(self):
        try:
            for a in self.call:
                kind = a.WhichOneof("kind")
                if kind == "welcome":
                    self.welcome.set()
                elif kind == "assign":
                    assert self.welcome.is_set(), "assignment before welcome"
                    with self.lock:
                        self.in_hand.add(a.assign.task_id)
                        self.max_in_hand = max(self.max_in_hand, len(self.in_hand))
                        self.order.append(a.assign.spec.name)
                    self.assigned.put(a.assign)
                    if self.auto:
                        self.finish(a.assign)
                elif kind == "cancel":
                    self.cancels.put(a.cancel)
        except grpc.RpcError:
            pass

    def finish(self, assign, status=pb.TASK_STATUS_COMPLETED):
        with self.lock:
            self.in_hand.discard(assign.task_id)
        self.out.put(pb.WorkerResponse(progress=pb.WorkerProgress(
            task_id=assign.task_id, attempt=assign.attempt, percent=50, message="half")))
        self.out.put(pb.WorkerResponse(result=pb.TaskResult(
            task_id=assign.task_id, status=status, attempt=assign.attempt,
            output=assign.spec.payload.upper())))

    def heartbeat(self, running):
        self.out.put(pb.WorkerResponse(heartbeat=pb.WorkerHeartbeat(
            worker_id=self.worker_id, running_task_ids=running)))

    def close(self):
        self.out.put(None)
        self.call.cancel()


def wait_final(stub, task_id):
    """Follows WatchTask to the end; returns the updates."""
    updates = list(stub.WatchTask(pb.ProgressRequest(task_id=task_id), timeout=DEADLINE))
    assert updates, "no updates"
    return updates


def main():
    data = harness.tempdir()
    with harness.Server([B + "/scheduler", "--listen", "127.0.0.1:0", "--data-dir", data,
                         "--log-level", "warn"]) as sched:
        channel = grpc.insecure_channel("127.0.0.1:%d" % sched.port)
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = pbg.SchedulerStub(channel)

        # Tasks wait for a capable worker: submitted before any worker.
        ids = [stub.SubmitTask(pb.TaskSpec(name="upper", payload=b"task-%d" % i),
                               timeout=10).task_id for i in range(20)]
        other = stub.SubmitTask(pb.TaskSpec(name="not-served", payload=b"x"), timeout=10).task_id

        w = PyWorker(channel, "py-1", ["upper"], slots=2, auto=False)
        # Hold every task: the scheduler must stop at 2.
        held = [w.assigned.get(timeout=DEADLINE) for _ in range(2)]
        time_limit = time.monotonic() + 0.5
        while time.monotonic() < time_limit:
            assert w.assigned.empty(), "a third task was assigned to a 2-slot worker"
            time.sleep(0.05)
        w.auto = True
        for a in held:
            w.finish(a)
        for i, tid in enumerate(ids):
            ups = wait_final(stub, tid)
            last = ups[-1]
            assert last.status == pb.TASK_STATUS_COMPLETED, last
            assert last.result.output == b"TASK-%d" % i, last.result
            pct = [u.percent for u in ups]
            assert pct == sorted(pct), "progress went backwards: %s" % pct
        assert w.max_in_hand <= 2, w.max_in_hand
        assert set(w.order) == {"upper"}, w.order
        t = stub.GetTask(pb.GetTaskRequest(task_id=other), timeout=10)
        assert t.status == pb.TASK_STATUS_PENDING, t

        # A worker that vanishes mid-task: its task completes elsewhere.
        lost = PyWorker(channel, "py-lost", ["flaky"], slots=1, auto=False)
        tid = stub.SubmitTask(pb.TaskSpec(name="flaky", payload=b"again", max_attempts=3),
                              timeout=10).task_id
        a = lost.assigned.get(timeout=DEADLINE)
        assert a.task_id == tid and a.attempt == 1, a
        lost.close()
        good = PyWorker(channel, "py-good", ["flaky"], slots=1)
        ups = wait_final(stub, tid)
        assert ups[-1].status == pb.TASK_STATUS_COMPLETED, ups[-1]
        assert ups[-1].result.attempt == 2, ups[-1].result
        listing = stub.ListWorkers(pb.ListWorkersRequest(), timeout=10)
        ids_seen = {x.worker_id for x in listing.workers}
        assert {"py-1", "py-good"} <= ids_seen and "py-lost" not in ids_seen, ids_seen

        # A worker deaf to cancels: the lease (100 ms + the 5 s grace) ends,
        # and the slot stays taken while its heartbeats list the task.
        deaf = PyWorker(channel, "py-deaf", ["deaf"], slots=1, auto=False)
        tid = stub.SubmitTask(pb.TaskSpec(name="deaf", timeout_ms=100, max_attempts=1),
                              timeout=10).task_id
        a = deaf.assigned.get(timeout=DEADLINE)
        assert a.task_id == tid, a
        limit = time.monotonic() + 30
        c = None
        while c is None:
            assert time.monotonic() < limit, "no cancel at the lease's end"
            deaf.heartbeat([tid])  # within the 5 s dead-timeout
            try:
                c = deaf.cancels.get(timeout=0.5)
            except queue.Empty:
                pass
        assert c.task_id == tid and "lease" in c.reason, c
        next_id = stub.SubmitTask(pb.TaskSpec(name="deaf", payload=b"next"),
                                  timeout=10).task_id
        for _ in range(3):
            deaf.heartbeat([tid])
            assert deaf.assigned.empty(), "a slot still held was given away"
            time.sleep(0.1)
        deaf.auto = True
        deaf.heartbeat([])  # dropped: it will never answer
        try:
            a = deaf.assigned.get(timeout=10)
        except queue.Empty:
            raise AssertionError("the dropped task's slot was never freed")
        assert a.task_id == next_id, a
        ups = wait_final(stub, next_id)
        assert ups[-1].status == pb.TASK_STATUS_COMPLETED, ups[-1]
        deaf.close()
        w.close()
        good.close()
        channel.close()
        rc = harness.stop(sched.proc)
        assert rc == 0, "scheduler exit status %s" % rc
    print("PASS py worker against the scheduler")


if __name__ == "__main__":
    main()
