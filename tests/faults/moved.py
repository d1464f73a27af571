"""What test_silent_worker.py and test_partition.py share: worker A loses
touch with the scheduler while running tasks, they move to worker B, and A
comes back. The checks of that outcome live here, once."""
import re

import cluster
from cluster import COMPLETED, check, eq, follow, get, pb, submit


def workers(stub):
    return sorted(w.worker_id for w in stub.ListWorkers(pb.ListWorkersRequest(),
                                                         timeout=10).workers)


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
