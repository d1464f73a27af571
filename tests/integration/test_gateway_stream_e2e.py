#!/usr/bin/python3
"""Gateway.SubmitStream end to end: a python3-grpcio client, a real
gateway, a real scheduler and a real worker. The scheduler's own
SubmitStream cases (test_submit_stream.py) run again through the gateway,
which must change nothing a client sees:
  * 500 followed submits on one stream: one `accepted` per ref, then that
    task's progress ending with one final update; follow=false gets
    `accepted` only;
  * bad specs and a missing spec are rejected with their ref and the
    stream goes on; idempotent duplicates; an undecodable request ends the
    stream INVALID_ARGUMENT;
  * half-close ends the stream OK once every followed task is final;
  * final_only travels through: accepted and the final update alone, the
    intermediate updates still there without it; a rejected submit with
    final_only gets `rejected`;
  * cancelling early loses no accepted task;
  * the scheduler's --max-stream-inflight rejects exactly the submits past
    it, RESOURCE_EXHAUSTED, in the scheduler's words;
  * a client that stops reading stops being read, through the gateway (its
    submits are not all taken) while the gateway's RSS stays bounded; once
    it reads again every submit is accepted and runs;
  * SIGTERM to the gateway ends an open stream UNAVAILABLE at once, and
    the tasks it accepted stay stored.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import SC, check, eq, log, pb, pb_grpc  # noqa: E402

import harness  # noqa: E402
import test_submit_stream as ss  # noqa: E402

# Every case of the scheduler's test opens its streams on ss.METHOD: here
# they go to the gateway's method of the same contract.
ss.METHOD = "/orchestrator.v1.Gateway/SubmitStream"
roles = []


def main():
    tmp = harness.tempdir()
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"))
    roles.append(sched)
    roles.append(cluster.Role.worker(sched.port, "--slots", "16", "--worker-id", "gs-a"))
    gw = cluster.Role.gateway(sched.port)
    roles.append(gw)
    sched2 = cluster.Role.scheduler(os.path.join(tmp, "data2"), "--max-stream-inflight", "5")
    roles.append(sched2)
    gw2 = cluster.Role.gateway(sched2.port)
    roles.append(gw2)
    stub = sched.stub(pb_grpc.SchedulerStub)
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 1,
                 20, "worker registered")
    gw.stub()  # connected
    ch = gw.channel()

    ss.many_followed(ch, stub)
    ss.rejections_and_duplicates(ch, stub)
    ss.half_close_waits(ch)
    ss.final_only(ch, stub)
    ss.cancel_loses_nothing(ch, stub)
    gw2.stub()
    open_stream = ss.inflight_limit(gw2.channel())
    # The stalled reader, with the gateway in the middle: its RSS is the
    # one that must stay bounded.
    ss.slow_reader(gw, stub)

    # SIGTERM to the gateway: the open stream (5 pending followed tasks)
    # ends UNAVAILABLE at once; its tasks stay stored.
    t0 = time.monotonic()
    eq(gw2.stop(), 0, "second gateway's exit code")
    eq(open_stream.wait_done(10, "end on SIGTERM")[0], SC.UNAVAILABLE, "status on SIGTERM")
    check(time.monotonic() - t0 < 8, "SIGTERM took %.1fs with an open stream",
          time.monotonic() - t0)
    stub2 = sched2.stub(pb_grpc.SchedulerStub)
    eq(len(cluster.list_all(stub2, name="nobody-serves-this")), 5, "tasks stored behind gw2")
    cluster.stop_all(roles)
    log("PASS gateway submit stream end to end")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
