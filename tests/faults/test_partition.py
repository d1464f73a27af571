#!/usr/bin/python3
"""A network partition between a worker and the scheduler: the scheduler
re-queues the worker's tasks after the dead-timeout, they complete on
another worker, nothing is applied twice, and once the network heals the
cut-off worker registers again and takes work.

The partition is a TCP proxy in this script between worker A and the
scheduler. While partitioned it stops forwarding in both directions without
closing anything (bytes wait in the socket buffers, as they would in a
network that drops packets and TCP that retransmits them); healing resumes
forwarding, so what was sent meanwhile arrives late, in order.

A scheduler (--dead-timeout 1s, --heartbeat 200ms), worker A (10 slots,
sleep and echo) through the proxy, and a gateway. 10 sleep tasks run on A:
5 short (1.5 s) and 5 long (6 s). Worker B (sleep only) registers directly,
then the link to A is cut. The network heals once the short tasks have
completed on B, while the long ones still run on both. Checks:
  * the scheduler logs `worker_silent` for A and re-assigns its tasks to B
    as attempt 2; A itself notices nothing (GetWorkerStatus: connected, 10
    running) and finishes the short sleeps, sending their results into the
    partition;
  * after healing, A gets the end of its old stream (UNAVAILABLE), registers
    again with the long sleeps it still runs, is told to cancel them, and
    its results for them are logged as `result_ignored`; the results it
    sent into the partition arrive on a stream that is over and are
    dropped;
  * every task ends COMPLETED on B with attempt 2, one `complete` each, no
    illegal transition; A and B each started every task once;
  * A works again: echo tasks (only A serves echo) complete on it;
  * every role exits 0 on SIGTERM.
"""

import os
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import COMPLETED, RUNNING, check, eq, get, pb  # noqa: E402

import harness  # noqa: E402
from moved import OnA, check_moved_once, ignored_results  # noqa: E402
from cluster import workers  # noqa: E402

SHORT_MS = 1500
LONG_MS = 6000
N = 10  # half short, half long
roles = []


class Proxy:
    """A TCP proxy on 127.0.0.1 to upstream_port that can be partitioned:
    two threads per connection copy bytes each way; while partitioned they
    hold still (reading nothing, writing nothing), and heal() lets them go
    on. Connections are never closed by the proxy except by close()."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.cond = threading.Condition()
        self.cut = False
        self.closed = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def partition(self):
        with self.cond:
            self.cut = True

    def heal(self):
        with self.cond:
            self.cut = False
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cut = False
            self.cond.notify_all()
        self.lsock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass

    def _wait_open(self):
        """Blocks while partitioned; returns False once closed."""
        with self.cond:
            self.cond.wait_for(lambda: not self.cut or self.closed)
            return not self.closed

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if not self._wait_open():
                c.close()
                return
            u = socket.create_connection(self.upstream, timeout=10)
            u.settimeout(None)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while self._wait_open():
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                # Cut while we were reading: the bytes wait for the heal.
                if not self._wait_open():
                    return
                dst.sendall(data)
        except OSError:
            pass





def main():
    tmp = harness.tempdir()
    sched = cluster.Role.watchful_scheduler(os.path.join(tmp, "data"))
    roles.append(sched)
    proxy = Proxy(sched.port)
    wa = cluster.Role.worker(proxy.port, "--slots", "10", "--worker-id", "part-a",
                             "--heartbeat", "200ms", "--builtins", "sleep,echo")
    gw = cluster.Role.gateway(sched.port)
    roles.extend([wa, gw])
    stub, streams_stub, a_stub = gw.stub(), gw.stub(), wa.stub()
    cluster.poll(lambda: workers(stub) == ["part-a"], 20, "worker A registered")

    on_a = OnA(stub, streams_stub, sched.port, 'part-a', 'part-b', N, SHORT_MS, LONG_MS)
    roles.append(on_a.wb)
    ids, short, long_, streams = on_a.ids, on_a.short, on_a.long_, on_a.streams
    wb, t_start = on_a.wb, on_a.t_start

    proxy.partition()
    t_cut = time.monotonic()
    try:
        cluster.poll(lambda: re.search(r"event=worker_silent worker=part-a", sched.log()),
                     10, "worker_silent for A")
        eq(workers(stub), ["part-b"], "workers during the partition")

        def moved():
            return all(t.status == RUNNING and t.worker_id == "part-b" and t.attempt == 2
                       for t in (get(stub, tid) for tid in ids))
        cluster.poll(moved, 10, "A's tasks running on B as attempt 2")
        log("partitioned; A's %d tasks re-assigned to B %.1fs later", N,
            time.monotonic() - t_cut)
        cluster.poll(lambda: all(get(stub, tid).status == COMPLETED for tid in short), 10,
                     "short tasks completed on B")
        # A sees nothing wrong: its stream looks up, and it finished the
        # short sleeps (their results went into the partition).
        st = a_stub.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=10)
        check(st.scheduler_connected, "A noticed the partition")
        eq(sorted(r.task_id for r in st.running), sorted(long_), "tasks A still runs")
        for tid in short:
            check(re.search(r"event=task_finished task=%s .*status=COMPLETED" % tid, wa.log()),
                  "A did not finish the short %s during the partition", tid)
        ran = time.monotonic() - t_start
        check(ran < LONG_MS / 1000.0 - 1, "healing %.1fs after the long sleeps started", ran)
    finally:
        proxy.heal()
    log("healed after %.1fs", time.monotonic() - t_cut)

    def a_back():
        return (len(re.findall(r"event=worker_registered worker=part-a", sched.log())) == 2
                and len(ignored_results(sched.log(), "part-a")) >= len(long_))
    cluster.poll(a_back, 15, "A re-registered and its late results ignored")
    ign = ignored_results(sched.log(), "part-a")
    eq({tid: ign.get(tid) for tid in long_}, {tid: [1] for tid in long_},
       "ignored results of A's long tasks (task -> attempts)")
    check(set(ign) <= set(ids), "result_ignored for unknown tasks: %s", set(ign) - set(ids))
    eq(workers(stub), ["part-a", "part-b"], "workers after healing")
    alog = wa.log()
    check(re.search(r"event=disconnected .*status=UNAVAILABLE", alog),
          "A did not log the scheduler ending its stream")
    for tid in long_:
        check(re.search(r"event=task_cancel task=%s attempt=1 " % tid, alog),
              "A was not told to cancel %s", tid)
    log("A re-registered; %d late results ignored and logged", len(ign))

    on_a.finish()
    check_moved_once(stub, sched, wa, wb, ids, streams, 'part-a', 'part-b')

    cluster.stop_all([gw, wa, wb, sched])
    proxy.close()
    log("PASS a partitioned worker's tasks completed once on another worker; it works again "
        "after healing")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
