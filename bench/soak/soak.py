#!/usr/bin/python3
"""The soak test's driver (run by bench/soak.sh, which documents it).

Starts a scheduler, a gateway and WORKERS workers with tests/integration/
cluster.py, puts RATE tasks/s of mixed kinds through the gateway for
MINUTES, kills (SIGKILL) or stops (SIGTERM) a random worker every 5-15 s
and restarts it, then lets everything finish and checks that every accepted
task reached exactly one final state, the one its kind calls for. Samples
the scheduler's resident memory throughout. Prints a summary and writes it
as JSON to OUT; exits 1 if a check failed.
"""

import hashlib
import heapq
import json
import os
import random
import re
import signal
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import cluster  # noqa: E402
from cluster import CANCELLED, COMPLETED, FAILED, FINAL, PENDING, RUNNING, pb  # noqa: E402

import grpc  # noqa: E402
import harness  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
RATE = float(os.environ.get("SOAK_RATE", "100"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "4"))
SLOTS = int(os.environ.get("SOAK_SLOTS", "8"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
OUT = os.environ.get("SOAK_OUT", os.path.join(harness.build_dir(), "bench", "soak.json"))
CLIENTS = 4
FOLLOWERS = 16
RELIABLE = 10  # max_attempts of the kinds that must complete despite the kills
LOST = "worker lost"  # the error of a task whose last attempt a kill took

# kind: (weight, what to submit, expected final status)
KINDS = {
    "noop": 8, "echo": 20, "sha256": 15, "sleep": 20, "cat": 10, "large": 2,
    "fail": 8, "timeout": 5, "cancel": 5, "dup": 5,
}

rng = random.Random(SEED)
roles = []
workers = []


def log(fmt, *args):
    sys.stdout.write("[soak %6.1fs] %s\n" % (time.monotonic() - T0, fmt % args if args else fmt))
    sys.stdout.flush()


T0 = time.monotonic()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class State:
    """What the clients did: every accepted task with its kind and what it
    should end as."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tasks = {}  # id -> dict(kind, status, output, max_attempts)
        self.echo_keys = []  # (key, spec, id) of echo tasks, for duplicates
        self.errors = []  # (kind, code, details) of failed calls
        self.dups = 0
        self.follows = 0
        self.follow_errors = []
        self.kills = 0
        self.terms = 0
        self.rss = []  # (seconds since load start, KiB)

    def add(self, tid, **exp):
        with self.lock:
            self.tasks[tid] = exp


S = State()
stop_load = threading.Event()
stop_chaos = threading.Event()
chaos_idle = threading.Event()
all_done = threading.Event()


def spec_for(kind, seq):
    """(spec dict, expected dict) for a new task of this kind."""
    key = "soak-%d-%d" % (SEED, seq)
    if kind == "noop":
        return dict(name="noop"), dict(status=COMPLETED, output=None)
    if kind == "echo":
        p = os.urandom(rng.randrange(0, 2048))
        return dict(name="echo", payload=p, idempotency_key=key), dict(status=COMPLETED, output=p)
    if kind == "large":
        p = os.urandom(200 << 10)
        return dict(name="echo", payload=p), dict(status=COMPLETED, output=p)
    if kind == "sha256":
        p = b"soak %d %s" % (seq, os.urandom(16).hex().encode())
        return dict(name="sha256", payload=p), dict(status=COMPLETED,
                                                     output=hashlib.sha256(p).hexdigest().encode())
    if kind == "sleep":
        return dict(name="sleep", payload=b"%d" % rng.randrange(50, 800)), \
            dict(status=COMPLETED, output=None)
    if kind == "cat":
        p = os.urandom(rng.randrange(1, 4096))
        return dict(name="cat", payload=p), dict(status=COMPLETED, output=p)
    if kind == "fail":
        return dict(name="fail", payload=b"boom %d" % seq, max_attempts=2), \
            dict(status=FAILED, output=None, error=("boom %d" % seq, LOST))
    if kind == "timeout":
        return dict(name="sleep", payload=b"3000", timeout_ms=300, max_attempts=2), \
            dict(status=FAILED, output=None, error=("timeout", LOST))
    if kind == "cancel":
        return dict(name="sleep", payload=b"10000"), dict(status=CANCELLED, output=None)
    raise ValueError(kind)


class Canceller(threading.Thread):
    """Cancels tasks at the time they were given."""

    def __init__(self, stub):
        super().__init__(daemon=True)
        self.stub = stub
        self.cond = threading.Condition()
        self.heap = []
        self.done = False

    def add(self, due, tid):
        with self.cond:
            heapq.heappush(self.heap, (due, tid))
            self.cond.notify()

    def finish(self):
        with self.cond:
            self.done = True
            self.cond.notify()

    def run(self):
        while True:
            with self.cond:
                while True:
                    if not self.heap and self.done:
                        return
                    now = time.monotonic()
                    if self.heap and self.heap[0][0] <= now:
                        _, tid = heapq.heappop(self.heap)
                        break
                    self.cond.wait(self.heap[0][0] - now if self.heap else None)
            try:
                self.stub.CancelTask(pb.CancelTaskRequest(task_id=tid, reason="soak"), timeout=30)
            except grpc.RpcError as e:
                with S.lock:
                    S.errors.append(("cancel", e.code().name, e.details()))


def client(stub, follow_pool, follow_stub, canceller, idx, seqs):
    names = list(KINDS)
    weights = [KINDS[k] for k in names]
    period = CLIENTS / RATE
    next_t = time.monotonic() + rng.random() * period
    while not stop_load.is_set():
        # Pacing of the offered load, not a wait for an event.
        delay = next_t - time.monotonic()
        if delay > 0:
            stop_load.wait(delay)
        next_t += period
        kind = rng.choices(names, weights)[0]
        with S.lock:
            seq = next(seqs)
        if kind == "dup":
            with S.lock:
                if not S.echo_keys:
                    continue
                key, spec, tid = rng.choice(S.echo_keys)
            try:
                acc = cluster.submit(stub, timeout=30, **spec)
            except grpc.RpcError as e:
                with S.lock:
                    S.errors.append((kind, e.code().name, e.details()))
                continue
            with S.lock:
                S.dups += 1
                if not acc.duplicate or acc.task_id != tid:
                    S.errors.append((kind, "DUPLICATE", "key %s gave %s (duplicate=%s), not %s"
                                     % (key, acc.task_id, acc.duplicate, tid)))
            continue
        spec, exp = spec_for(kind, seq)
        if exp["status"] == COMPLETED:
            spec.setdefault("max_attempts", RELIABLE)
        try:
            acc = cluster.submit(stub, timeout=30, **spec)
        except grpc.RpcError as e:
            with S.lock:
                S.errors.append((kind, e.code().name, e.details()))
            continue
        tid = acc.task_id
        S.add(tid, kind=kind, max_attempts=spec.get("max_attempts", 3), **exp)
        if kind == "echo":
            with S.lock:
                S.echo_keys.append((spec["idempotency_key"], spec, tid))
                if len(S.echo_keys) > 1000:
                    S.echo_keys.pop(0)
        if kind == "cancel":
            canceller.add(time.monotonic() + rng.uniform(0.05, 1.0), tid)
        elif rng.random() < 0.05:
            follow_pool.submit(follow, follow_stub, tid)


def follow(stub, tid):
    try:
        cluster.follow(stub, tid, timeout=600)
        with S.lock:
            S.follows += 1
    except Exception as e:  # a stream that broke or went wrong is a finding
        with S.lock:
            S.follow_errors.append((tid, repr(e)[:300]))


def chaos():
    """Every 5-15 s one worker goes: SIGKILL (70%) or SIGTERM (30%); it comes
    back 0.5-3 s later. At most one is down at a time.

    The workers it restarts are its children: they get the parent-death
    signal (harness.start) when the thread that started them ends, so it
    ends only once the run is over (all_done)."""
    while not stop_chaos.wait(rng.uniform(5, 15)):
        w = rng.choice(workers)
        if rng.random() < 0.7:
            w.kill9()
            with S.lock:
                S.kills += 1
        else:
            rc = w.stop(timeout=30)
            with S.lock:
                S.terms += 1
                if rc != 0:
                    S.errors.append(("worker", "EXIT", "worker exited %s on SIGTERM" % rc))
        stop_chaos.wait(rng.uniform(0.5, 3))
        w.restart()
    chaos_idle.set()
    all_done.wait()


def sampler(pid, t_load):
    while not stop_chaos.wait(5):
        S.rss.append((round(time.monotonic() - t_load, 1), rss_kb(pid)))


def list_everything(stub):
    """Every task, paging through ListTasks. A page carries the tasks'
    outputs and must fit in one message (4 MiB): a page refused as too
    large is asked for again in smaller pieces."""
    tasks, token, size = [], "", 1000
    while True:
        try:
            r = stub.ListTasks(pb.ListTasksRequest(page_size=size, page_token=token), timeout=60)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or size == 1:
                raise
            size = max(1, size // 4)
            continue
        tasks.extend(r.tasks)
        token = r.next_page_token
        size = min(1000, size * 2)
        if not token:
            return tasks


def final_transitions(path):
    """From the scheduler's log: task id -> [final statuses it was put in]."""
    rx = re.compile(r"event=task_state task=(\S+) event=\S+ status=(COMPLETED|FAILED|CANCELLED)")
    got = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m:
                got.setdefault(m.group(1), []).append(m.group(2))
    return got


def starts(paths):
    counts = {}
    rx = re.compile(r"event=task_started task=(\S+)")
    for p in paths:
        with open(p, errors="replace") as f:
            for line in f:
                m = rx.search(line)
                if m:
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def main():
    tmp = harness.tempdir("orchd-soak.")
    # At debug the scheduler logs every task's final transition, which the
    # exactly-once check counts (at info it logs failures and cancels only).
    sched = cluster.Role.scheduler(os.path.join(tmp, "data"), "--dead-timeout", "2s",
                                   "--heartbeat", "500ms", "--log-level", "debug")
    roles.append(sched)
    for k in range(WORKERS):
        workers.append(cluster.Role.worker(
            sched.port, "--slots", str(SLOTS), "--worker-id", "soak-%d" % k,
            "--heartbeat", "500ms", "--drain-timeout", "2s", "--handler", "cat=/bin/cat"))
    gw = cluster.Role.gateway(sched.port, "--max-subscribers", "2000")
    roles.extend(workers + [gw])
    stub = gw.stub()
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers)
                 == WORKERS, 30, "workers registered")
    rss_start = rss_kb(sched.proc.pid)
    log("start: %d workers x %d slots, %.0f tasks/s for %.1f min, seed %d; scheduler RSS %d KiB",
        WORKERS, SLOTS, RATE, MINUTES, SEED, rss_start)

    canceller = Canceller(gw.stub())
    canceller.start()
    follow_pool = futures.ThreadPoolExecutor(max_workers=FOLLOWERS)
    follow_stub = gw.stub()
    seqs = iter(range(1, 1 << 62))
    t_load = time.monotonic()
    threads = [threading.Thread(target=client, args=(gw.stub(), follow_pool, follow_stub,
                                                     canceller, i, seqs), daemon=True)
               for i in range(CLIENTS)]
    threads.append(threading.Thread(target=chaos, daemon=True))
    threads.append(threading.Thread(target=sampler, args=(sched.proc.pid, t_load), daemon=True))
    for t in threads:
        t.start()
    end = t_load + MINUTES * 60
    next_report = time.monotonic() + 30
    while time.monotonic() < end:
        stop_load.wait(min(5, max(0, end - time.monotonic())))
        if time.monotonic() >= next_report:
            next_report += 30
            with S.lock:
                log("%d accepted, %d errors, %d kills, %d SIGTERMs, RSS %d KiB", len(S.tasks),
                    len(S.errors), S.kills, S.terms, S.rss[-1][1] if S.rss else 0)
    stop_load.set()
    for t in threads[:CLIENTS]:
        t.join(60)
    load_s = time.monotonic() - t_load
    rss_end_load = rss_kb(sched.proc.pid)
    stop_chaos.set()
    threads[-1].join(60)  # the sampler; the chaos thread waits for all_done
    chaos_idle.wait(60)
    for w in workers:  # all back for the drain
        if w.proc.poll() is not None:
            w.restart()
    canceller.finish()
    canceller.join(60)
    log("load over after %.0fs: %d tasks accepted; draining", load_s, len(S.tasks))

    def drained():
        return not cluster.list_all(stub, status=PENDING) and \
            not cluster.list_all(stub, status=RUNNING)
    cluster.poll(drained, 600, "every task final", interval=1)
    follow_pool.shutdown(wait=True)
    rss_drained = rss_kb(sched.proc.pid)

    # The checks.
    bad = []
    stored = {t.task_id: t for t in list_everything(stub)}
    accepted = S.tasks
    missing = set(accepted) - set(stored)
    extra = set(stored) - set(accepted)
    if missing:
        bad.append("%d accepted tasks missing from the store, e.g. %s" % (len(missing),
                                                                          sorted(missing)[:3]))
    if extra:
        bad.append("%d tasks in the store nobody had accepted, e.g. %s" % (len(extra),
                                                                           sorted(extra)[:3]))
    finals = final_transitions(sched.logpath)
    runs = starts([w.logpath for w in workers])
    by_kind = {}
    rerun = 0
    for tid, exp in accepted.items():
        t = stored.get(tid)
        if t is None:
            continue
        k = by_kind.setdefault(exp["kind"], {})
        name = cluster.status_name(t.status).replace("TASK_STATUS_", "")
        k[name] = k.get(name, 0) + 1
        why = None
        if t.status not in FINAL:
            why = "not final"
        elif t.status != exp["status"]:
            why = "ended %s, not %s" % (name, cluster.status_name(exp["status"]))
        elif exp.get("output") is not None and t.result.output != exp["output"]:
            why = "wrong output (%d bytes)" % len(t.result.output)
        elif exp.get("error") and not any(e in t.result.error for e in exp["error"]):
            why = "error %r has none of %r" % (t.result.error, exp["error"])
        elif len(finals.get(tid, [])) != 1:
            why = "final transitions in the log: %s" % finals.get(tid)
        elif runs.get(tid, 0) > exp["max_attempts"] or t.attempt > exp["max_attempts"]:
            why = "ran %d times (attempt %d), max_attempts %d" % (runs.get(tid, 0), t.attempt,
                                                                   exp["max_attempts"])
        if why:
            bad.append("%s (%s): %s; error %r" % (tid, exp["kind"], why, t.result.error[:200]))
        if runs.get(tid, 0) > 1 and exp["kind"] not in ("fail", "timeout"):
            rerun += 1
    if S.errors:
        bad.append("%d calls failed, e.g. %s" % (len(S.errors), S.errors[:3]))
    if S.follow_errors:
        bad.append("%d progress streams failed, e.g. %s" % (len(S.follow_errors),
                                                           S.follow_errors[:3]))

    cluster.stop_all([gw] + workers + [sched])
    all_done.set()
    db = os.path.join(tmp, "data", "orchd.db")
    warm = next((kb for s, kb in S.rss if s >= 60), rss_start)
    summary = {
        "minutes": round(load_s / 60, 2), "seed": SEED, "rate_offered": RATE,
        "workers": WORKERS, "slots": SLOTS,
        "accepted": len(accepted), "duplicates_resubmitted": S.dups,
        "tasks_per_s": round(len(accepted) / load_s, 1),
        "by_kind": by_kind, "worker_kills": S.kills, "worker_sigterms": S.terms,
        "tasks_run_again_after_a_worker_loss": rerun,
        "progress_streams_followed": S.follows,
        "rss_kib": {"start": rss_start, "after_1_min": warm, "end_of_load": rss_end_load,
                    "after_drain": rss_drained, "max": max([kb for _, kb in S.rss] or [0])},
        "db_bytes": os.path.getsize(db) if os.path.exists(db) else 0,
        "violations": len(bad),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(dict(summary, rss_samples=S.rss, violation_examples=bad[:20]), f, indent=1)
    print(json.dumps(summary, indent=1))
    if bad:
        raise cluster.Failure("%d violations:\n  %s" % (len(bad), "\n  ".join(bad[:20])))
    log("PASS: %d tasks, each reached exactly one final state, the one its kind calls for; "
        "scheduler RSS %d KiB at start, %d after 1 min, %d at the end", len(accepted),
        rss_start, warm, rss_end_load)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        cluster.run(main, lambda: roles)
    finally:
        all_done.set()
