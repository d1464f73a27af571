#!/usr/bin/python3
"""bench/submit_stream.py ADDR MODE N INFLIGHT: the load of
bench/submit_stream.sh. Runs N noop tasks on the scheduler at ADDR, INFLIGHT
at a time, each followed to its end: MODE `unary` is a SubmitTask call and a
WatchTask stream per task (the path before SubmitStream), `stream` is one
SubmitStream with follow, `final` the same with final_only (accepted and
the final update only). Exits non-zero unless every task COMPLETED."""

import os
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("B", "build"), "py"))
import grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

FINAL = (pb.TASK_STATUS_COMPLETED, pb.TASK_STATUS_FAILED, pb.TASK_STATUS_CANCELLED)


def unary(stub, n, inflight):
    slots = threading.Semaphore(inflight)
    bad = []

    def one():
        try:
            acc = stub.SubmitTask(pb.TaskSpec(name="noop"), timeout=300)
            last = None
            for last in stub.WatchTask(pb.ProgressRequest(task_id=acc.task_id), timeout=300):
                pass
            if last is None or last.status != pb.TASK_STATUS_COMPLETED:
                bad.append(acc.task_id)
        except grpc.RpcError as e:
            bad.append(str(e.code()))
        finally:
            slots.release()

    threads = []
    for _ in range(n):
        slots.acquire()
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(300)
    return len(bad)


def stream(stub, n, inflight, final_only=False):
    slots = threading.Semaphore(inflight)

    def requests():
        for ref in range(n):
            slots.acquire()
            yield pb.SubmitStreamRequest(ref=ref, spec=pb.TaskSpec(name="noop"), follow=True,
                                         final_only=final_only)

    completed = 0
    for ev in stub.SubmitStream(requests(), timeout=300):
        if ev.WhichOneof("event") == "progress" and ev.progress.status in FINAL:
            completed += ev.progress.status == pb.TASK_STATUS_COMPLETED
            slots.release()
        elif ev.WhichOneof("event") == "rejected":
            return n
    return n - completed


def main():
    addr, mode, n, inflight = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ch = grpc.insecure_channel(addr)
    grpc.channel_ready_future(ch).result(timeout=60)
    modes = {"unary": unary, "stream": stream,
             "final": lambda *a: stream(*a, final_only=True)}
    bad = modes[mode](pb_grpc.SchedulerStub(ch), n, inflight)
    if bad:
        sys.exit("submit_stream: %d of %d tasks did not complete" % (bad, n))


if __name__ == "__main__":
    main()
