"""What test_silent_worker.py and test_partition.py share: worker A loses
touch with the scheduler while running tasks, they move to worker B, and A
comes back. The checks of that outcome live here, once."""
import re
import threading
import time
from concurrent import futures

import cluster
from cluster import COMPLETED, RUNNING, check, eq, follow, get, submit


def ignored_results(text, worker):
    """task id -> attempts of the `result_ignored` lines for worker."""
    got = {}
    for m in re.finditer(r"event=result_ignored worker=%s task=(\S+) attempt=(\d+)"
                         % re.escape(worker), text):
        got.setdefault(m.group(1), []).append(int(m.group(2)))
    return got


def check_moved_once(stub, sched, wa, wb, ids, streams, a_id, b_id):
    """Every task of ids ended COMPLETED exactly once, as attempt 2 on B
    (streams: task id -> its progress updates), started once on each
    worker; then A, back, takes work again."""
    for tid in ids:
        ups = streams[tid]
        last = ups[-1]
        eq(sum(1 for u in ups if u.status in cluster.FINAL), 1, "final updates of %s" % tid)
        eq((last.status, last.attempt), (COMPLETED, 2), "final update of %s" % tid)
        t = get(stub, tid)
        eq((t.status, t.attempt, t.worker_id, t.result), (COMPLETED, 2, b_id, last.result),
           "GetTask of %s" % tid)
    slog = sched.log()
    completes = cluster.task_events(slog, "complete")
    eq({tid: completes.get(tid, 0) for tid in ids}, {tid: 1 for tid in ids},
       "scheduler `complete` transitions per task")
    check("task_illegal_transition" not in slog, "the scheduler logged an illegal transition")
    sa, sb = cluster.task_starts(wa.log()), cluster.task_starts(wb.log())
    eq({tid: (sa.get(tid, 0), sb.get(tid, 0)) for tid in ids}, {tid: (1, 1) for tid in ids},
       "starts per task on A, B")

    echo = [submit(stub, name="echo", payload=b"after %d" % i).task_id for i in range(5)]
    for i, tid in enumerate(echo):
        last = follow(stub, tid, timeout=20)[-1]
        eq((last.status, last.result.output), (COMPLETED, b"after %d" % i), "echo %s" % tid)
        eq(get(stub, tid).worker_id, a_id, "worker of echo %s" % tid)


class OnA:
    """n sleeps (alternately short_ms and long_ms) submitted through stub
    and followed to their end on streams_stub, all running on worker
    a_id; then worker B (b_id) joins on sched_port. Attributes: ids,
    short, long_, streams (task id -> updates, filled as they end),
    pending (the followers' futures), wb, t_start."""

    def __init__(self, stub, streams_stub, sched_port, a_id, b_id, n, short_ms, long_ms):
        self.ids = [submit(stub, name="sleep",
                           payload=b"%d" % (short_ms if i % 2 else long_ms)).task_id
                    for i in range(n)]
        self.short, self.long_ = self.ids[1::2], self.ids[0::2]
        self.t_start = time.monotonic()
        self.streams = {}
        lock = threading.Lock()

        def watch(tid):
            ups = follow(streams_stub, tid, timeout=60)
            with lock:
                self.streams[tid] = ups
            return ups

        self.ex = futures.ThreadPoolExecutor(max_workers=n)
        self.pending = [self.ex.submit(watch, tid) for tid in self.ids]

        def all_running():
            ts = cluster.list_all(stub, status=RUNNING, name="sleep")
            return len(ts) == n and all(t.worker_id == a_id and t.percent > 0 for t in ts)
        cluster.poll(all_running, 20, "%d tasks running on A with progress" % n)

        self.wb = cluster.Role.worker(sched_port, "--slots", "10", "--worker-id", b_id,
                                      "--heartbeat", "200ms", "--builtins", "sleep")
        cluster.poll(lambda: cluster.workers(stub) == sorted([a_id, b_id]), 20, "worker B registered")

    def finish(self):
        """Waits for every follower; returns nothing, raises on failure."""
        for f in self.pending:
            f.result(timeout=60)
        self.ex.shutdown()
