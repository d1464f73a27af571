#!/usr/bin/python3
"""`orchd worker` against a fake scheduler written in python3-grpcio.

The fake (FakeScheduler from fake_scheduler.py plus RegisterWorker) records
every message the worker sends on its stream and lets the test send
assignments and cancels. Checks, each against docs/protocol.md: the
registration (first message, its fields), heartbeats, the health and
Worker services, every built-in's result (the sha256 digest value), exec
handlers (output, progress lines from fd 3, failure with stderr, the output
cap), slots (never more running than slots; an over-assignment refused),
timeouts that kill the child's whole process group, cancel of a running
built-in and exec task, a task being cancelled still listed in heartbeats
until its result, reconnect after the scheduler restarts
(re-registration with running_task_ids, results produced while
disconnected sent afterwards), the SIGTERM drain (running task finishes,
new work is held and handed back, exit 0) and the drain timeout (tasks
handed back, children killed), and --help listing every flag with its
environment variable.

Every wait polls for its condition with a deadline. Exit 0: pass; 77: skip.
"""

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
import harness  # noqa: E402
import fake_scheduler  # noqa: E402  (loads the stubs)

import grpc  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

B = harness.build_dir()
WORKER = os.path.join(B, "worker")

COMPLETED = pb.TASK_STATUS_COMPLETED
FAILED = pb.TASK_STATUS_FAILED
CANCELLED = pb.TASK_STATUS_CANCELLED

# Exec handlers: COMMAND is split into argv by the worker (no shell); the
# tests use /bin/sh as the program.
UPPER = "upper=/bin/sh -c 'tr a-z A-Z; echo 50 half way >&3; echo not-progress >&3'"
BAD = "bad=/bin/sh -c 'echo partial; echo \"it broke: code 3\" >&2; exit 3'"
# Reports its pid (= its process group) as progress, ignores SIGTERM and
# leaves a grandchild: only SIGKILL to the whole group ends it.
HANG = ("hang=/bin/sh -c 'trap \"\" TERM; sleep 60 & echo \"1 $$\" >&3; "
        "while :; do wait; done'")
SLOW = "slow=/bin/sh -c 'echo \"1 $$\" >&3; sleep 60 & wait'"
BIG = "big=head -c 200000 /dev/zero"


class Failure(Exception):
    pass


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


# ---------------------------------------------------------------------------
# The fake scheduler's worker side
# ---------------------------------------------------------------------------


class Stream:
    """One RegisterWorker stream as the fake sees it. Read fields under the
    fake's cond."""

    def __init__(self):
        self.msgs = []           # WorkerResponse, in arrival order
        self.registration = None
        self.results = {}        # task_id -> TaskResult (the first one)
        self.nresults = 0
        self.progress = {}       # task_id -> [WorkerProgress]
        self.heartbeats = []     # (monotonic time, WorkerHeartbeat)
        self.half_closed = False  # the worker closed its side
        self.ended = False       # the call is over
        self.out = queue.Queue()  # TaskAssignment to send; None ends

    def assign(self, task_id, name, payload=b"", timeout_ms=0, attempt=1):
        self.out.put(pb.TaskAssignment(assign=pb.TaskAssignment.Assign(
            task_id=task_id, attempt=attempt,
            spec=pb.TaskSpec(name=name, payload=payload, timeout_ms=timeout_ms),
            deadline_unix_ms=int(time.time() * 1000) + timeout_ms if timeout_ms else 0)))

    def cancel(self, task_id, reason):
        self.out.put(pb.TaskAssignment(cancel=pb.TaskAssignment.Cancel(
            task_id=task_id, reason=reason)))


class Fake(fake_scheduler.FakeScheduler):
    """FakeScheduler plus RegisterWorker."""

    def __init__(self, port=0):
        super().__init__(port)
        self.streams = []

    def start(self):
        # As FakeScheduler.start, but tolerating the worker's keepalive
        # PINGs (grpc core would answer frequent ones with GOAWAY).
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32),
            options=[("grpc.so_reuseport", 0),
                     ("grpc.http2.min_ping_interval_without_data_ms", 1000),
                     ("grpc.http2.max_ping_strikes", 0)])
        pb_grpc.add_SchedulerServicer_to_server(self, self.server)
        port = self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        check(port != 0, "fake scheduler: cannot bind 127.0.0.1:%d", self.port)
        self.port = port
        self.server.start()
        return self

    def stop(self):
        super().stop()
        with self.cond:
            for s in self.streams:
                s.out.put(None)

    def RegisterWorker(self, request_iterator, context):
        st = Stream()
        with self.cond:
            self.streams.append(st)
            self.cond.notify_all()

        def read():
            try:
                for m in request_iterator:
                    with self.cond:
                        st.msgs.append(m)
                        kind = m.WhichOneof("kind")
                        if kind == "registration" and st.registration is None:
                            st.registration = m.registration
                            st.out.put(pb.TaskAssignment(welcome=pb.TaskAssignment.Welcome(
                                worker_id=m.registration.worker_id, heartbeat_interval_ms=1000,
                                dead_timeout_ms=5000, version="fake")))
                        elif kind == "heartbeat":
                            st.heartbeats.append((time.monotonic(), m.heartbeat))
                        elif kind == "progress":
                            st.progress.setdefault(m.progress.task_id, []).append(m.progress)
                        elif kind == "result":
                            st.results.setdefault(m.result.task_id, m.result)
                            st.nresults += 1
                        self.cond.notify_all()
            except grpc.RpcError:
                pass
            finally:
                with self.cond:
                    st.half_closed = True
                    self.cond.notify_all()
                st.out.put(None)

        threading.Thread(target=read, daemon=True).start()
        context.add_callback(lambda: st.out.put(None))
        try:
            while True:
                a = st.out.get()
                if a is None:
                    return
                yield a
        finally:
            with self.cond:
                st.ended = True
                self.cond.notify_all()

    # ---- waiting, for the test ----------------------------------------

    def stream(self, n, timeout=10.0):
        """Waits for the n-th stream (1-based) to have registered."""
        return self.wait_for(lambda: len(self.streams) >= n and self.streams[n - 1].registration
                             and self.streams[n - 1], timeout, "registration #%d" % n)

    def result(self, st, task_id, timeout=10.0):
        return self.wait_for(lambda: st.results.get(task_id), timeout, "result of " + task_id)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

LOGS = []


def start_worker(fake, *flags):
    """Starts $B/worker against fake; returns (proc, port, stderr path)."""
    d = harness.tempdir()
    errpath = os.path.join(d, "worker.err")
    err = open(errpath, "w")
    argv = [WORKER, "--scheduler", "127.0.0.1:%d" % fake.port, "--listen", "127.0.0.1:0"]
    argv += list(flags)
    proc = harness.start(argv, stderr=err)
    err.close()
    LOGS.append(errpath)
    return proc, harness.read_port(proc), errpath


def poll(pred, timeout, what, interval=0.02):
    """Calls pred until it returns something true; raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure("no %s within %.1fs" % (what, timeout))
        time.sleep(interval)


def worker_status(port):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        return pb_grpc.WorkerStub(ch).GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)


def running_ids(port):
    return {r.task_id for r in worker_status(port).running}


def group_alive(pgid):
    """Whether a live (non-zombie) process is in process group pgid."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def pgid_of(fake, st, task_id):
    """The process group an exec task reported as its first progress."""
    p = fake.wait_for(lambda: st.progress.get(task_id), 10, "progress of " + task_id)
    return int(p[0].message)


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("worker still running %.0fs after SIGTERM" % timeout)


SEQ = [0]


def tid(prefix):
    SEQ[0] += 1
    return "%s-%03d" % (prefix, SEQ[0])


def run(fake, st, name, payload=b"", timeout_ms=0, attempt=1, wait=10.0):
    t = tid(name)
    st.assign(t, name, payload, timeout_ms, attempt)
    return t, fake.result(st, t, wait)


# ---------------------------------------------------------------------------
# Cases (sharing one worker, in order)
# ---------------------------------------------------------------------------

NAMES = {"noop", "echo", "sleep", "fail", "sha256", "upper", "bad", "hang", "slow", "big"}


def registration(fake, st, port):
    r = st.registration
    check(st.msgs[0].WhichOneof("kind") == "registration", "first message: %r", st.msgs[0])
    check(r.worker_id == "w-test", "worker_id %r", r.worker_id)
    check(r.slots == 2, "slots %d", r.slots)
    check(set(r.task_names) == NAMES and len(r.task_names) == len(NAMES),
          "task_names %r", list(r.task_names))
    check(r.version, "no version")
    check(r.address == "127.0.0.1:%d" % port, "address %r", r.address)
    check(not r.running_task_ids, "running ids on a first registration: %r",
          list(r.running_task_ids))


def heartbeats(fake, st, port):
    t0 = time.monotonic()
    fake.wait_for(lambda: len(st.heartbeats) >= 4, 5, "4 heartbeats")
    hbs = [hb for _, hb in st.heartbeats]
    check(all(hb.worker_id == "w-test" and hb.available_slots == 2 for hb in hbs),
          "heartbeats %r", hbs)
    # --heartbeat 200ms: four of them take about 0.8 s, not 4 s.
    check(time.monotonic() - t0 < 3, "heartbeats too slow")


def health(fake, st, port):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        h = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        check(h.status == health_pb2.HealthCheckResponse.SERVING, "health %r", h)
        h = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="orchestrator.v1.Worker"), timeout=5)
        check(h.status == health_pb2.HealthCheckResponse.SERVING, "Worker health %r", h)
        r = pb_grpc.WorkerStub(ch).HealthCheck(pb.HealthCheckRequest(), timeout=5)
        check(r.role == "worker" and r.status == pb.HealthCheckResponse.SERVING, "%r", r)
    s = worker_status(port)
    check(s.worker_id == "w-test" and s.slots == 2 and s.available_slots == 2, "%r", s)
    check(s.scheduler_connected and set(s.task_names) == NAMES and s.version, "%r", s)
    check(not s.running, "running %r", s.running)


def builtins(fake, st, port):
    t, r = run(fake, st, "noop", b"ignored")
    check(r.status == COMPLETED and r.output == b"" and r.error == "" and r.task_id == t,
          "noop %r", r)
    _, r = run(fake, st, "echo", b"hello \x00\xff bytes", attempt=3)
    check(r.status == COMPLETED and r.output == b"hello \x00\xff bytes", "echo %r", r)
    check(r.attempt == 3, "attempt not echoed: %r", r)
    payload = os.urandom(100000)
    _, r = run(fake, st, "sha256", payload)
    check(r.status == COMPLETED and r.output == hashlib.sha256(payload).hexdigest().encode(),
          "sha256 %r", r)
    _, r = run(fake, st, "sha256", b"abc")
    check(r.output == b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          "sha256(abc) %r", r)
    _, r = run(fake, st, "fail", b"disk on fire")
    check(r.status == FAILED and r.error == "disk on fire", "fail %r", r)
    t0 = time.monotonic()
    t, r = run(fake, st, "sleep", b"300", attempt=2)
    check(r.status == COMPLETED and r.attempt == 2, "sleep %r", r)
    check(time.monotonic() - t0 >= 0.29, "sleep 300 took %.3fs", time.monotonic() - t0)
    ps = st.progress.get(t, [])
    check([p.percent for p in ps] == list(range(10, 101, 10)), "sleep progress %r",
          [p.percent for p in ps])
    check(all(p.attempt == 2 and p.task_id == t for p in ps), "progress attempts %r", ps)
    # Result after the last progress on the stream.
    last_p = max(i for i, m in enumerate(st.msgs) if m.WhichOneof("kind") == "progress"
                 and m.progress.task_id == t)
    res_i = [i for i, m in enumerate(st.msgs) if m.WhichOneof("kind") == "result"
             and m.result.task_id == t][0]
    check(last_p < res_i, "progress after the result")
    _, r = run(fake, st, "sleep", b"soon")
    check(r.status == FAILED and "milliseconds" in r.error, "sleep bad payload %r", r)
    _, r = run(fake, st, "resize-image", b"x")
    check(r.status == FAILED and "no handler" in r.error, "unknown name %r", r)


def exec_handlers(fake, st, port):
    t, r = run(fake, st, "upper", b"hello, worker")
    check(r.status == COMPLETED and r.output == b"HELLO, WORKER", "upper %r", r)
    ps = [(p.percent, p.message) for p in st.progress.get(t, [])]
    check(ps == [(50, "half way")], "upper progress %r", ps)
    _, r = run(fake, st, "bad")
    check(r.status == FAILED and r.error == "it broke: code 3", "bad %r", r)
    check(r.output == b"partial\n", "bad output %r", r.output)
    _, r = run(fake, st, "big")
    check(r.status == FAILED and r.error == "output exceeds 65536 bytes", "big %r", r)


def slots(fake, st, port):
    # Credits as a scheduler keeps them: 2 at first, one back per result.
    ids = [tid("slot") for _ in range(5)]
    pending = list(ids)
    inflight = set()
    seen_max = 0
    deadline = time.monotonic() + 20
    while pending or inflight:
        check(time.monotonic() < deadline, "5 sleeps not done in 20s")
        with fake.cond:
            done = {t for t in inflight if t in st.results}
        inflight -= done
        while pending and len(inflight) < 2:
            t = pending.pop(0)
            st.assign(t, "sleep", b"250")
            inflight.add(t)
        n = len(worker_status(port).running)
        check(n <= 2, "%d tasks running on 2 slots", n)
        seen_max = max(seen_max, n)
        time.sleep(0.02)
    check(seen_max == 2, "never saw both slots busy (max %d)", seen_max)
    for t in ids:
        check(st.results[t].status == COMPLETED, "%s: %r", t, st.results[t])
    with fake.cond:
        check(all(len(hb.running_task_ids) <= 2 for _, hb in st.heartbeats), "heartbeat > 2")

    # A scheduler that over-assigns gets the extra one refused.
    a, b, c = tid("over"), tid("over"), tid("over")
    st.assign(a, "sleep", b"600")
    st.assign(b, "sleep", b"600")
    st.assign(c, "sleep", b"600")
    r = fake.result(st, c, 5)
    check(r.status == FAILED and "no free slot" in r.error, "over-assignment %r", r)
    check(a not in st.results and b not in st.results, "refused the wrong one")
    for t in (a, b):
        check(fake.result(st, t, 5).status == COMPLETED, "%s", t)


def timeout_kill(fake, st, port):
    t = tid("hang")
    t0 = time.monotonic()
    st.assign(t, "hang", b"", timeout_ms=300)
    pgid = pgid_of(fake, st, t)
    check(group_alive(pgid), "child group %d not alive while running", pgid)
    r = fake.result(st, t, 8)
    took = time.monotonic() - t0
    check(r.status == FAILED and r.error == "timeout after 300 ms", "hang %r", r)
    # SIGTERM is ignored, so SIGKILL 2 s later ends it.
    check(2.2 <= took < 6, "timeout result after %.2fs", took)
    poll(lambda: not group_alive(pgid), 3, "end of process group %d" % pgid)


def cancel(fake, st, port):
    t = tid("sleep")
    st.assign(t, "sleep", b"10000")
    poll(lambda: t in running_ids(port), 5, "sleep running")
    t0 = time.monotonic()
    st.cancel(t, "user asked")
    r = fake.result(st, t, 3)
    check(r.status == CANCELLED and r.error == "user asked", "cancel %r", r)
    check(time.monotonic() - t0 < 2, "cancel took %.2fs", time.monotonic() - t0)

    t = tid("slow")
    st.assign(t, "slow")
    pgid = pgid_of(fake, st, t)
    st.cancel(t, "")
    r = fake.result(st, t, 5)
    check(r.status == CANCELLED and r.error == "cancelled", "exec cancel %r", r)
    poll(lambda: not group_alive(pgid), 3, "end of process group %d" % pgid)

    # A cancel for a task the worker does not run is ignored.
    with fake.cond:
        before = st.nresults
    st.cancel("no-such-task", "x")
    _, r = run(fake, st, "echo", b"still here")
    check(r.output == b"still here", "%r", r)
    with fake.cond:
        check(st.nresults == before + 1, "a result for an unknown cancel")


def cancelling_listed(fake, st, port):
    """Heartbeats list a task told to stop until its result is sent: the
    scheduler frees a lease-over slot whose task a heartbeat leaves out
    (docs/protocol.md section 3), so leaving it out early would let it
    over-assign."""
    t = tid("hang")
    st.assign(t, "hang")
    pgid_of(fake, st, t)
    with fake.cond:
        first = len(st.msgs)
    st.cancel(t, "lease expired")
    # HANG ignores SIGTERM: it is being stopped for the 2 s before SIGKILL.
    r = fake.result(st, t, 8)
    check(r.status == CANCELLED, "hang cancel %r", r)

    def split():
        """The heartbeats before t's result and after it, once one is after."""
        msgs = st.msgs[first:]
        end = next(i for i, m in enumerate(msgs)
                   if m.WhichOneof("kind") == "result" and m.result.task_id == t)
        hbs = [[m.heartbeat for m in part if m.WhichOneof("kind") == "heartbeat"]
               for part in (msgs[:end], msgs[end:])]
        return hbs if hbs[1] else None

    before, after = fake.wait_for(split, 5, "a heartbeat after the result")
    check(len(before) >= 5, "%d heartbeats while it was stopping", len(before))
    check(all(t in hb.running_task_ids for hb in before), "a heartbeat left out %s: %r",
          t, [list(hb.running_task_ids) for hb in before])
    check(all(t not in hb.running_task_ids for hb in after),
          "still listed after its result: %r", [list(hb.running_task_ids) for hb in after])


def reconnect(fake, st, port):
    a, b = tid("sleep"), tid("sleep")
    st.assign(a, "sleep", b"700")
    st.assign(b, "sleep", b"3000")
    poll(lambda: running_ids(port) == {a, b}, 5, "both sleeps running")
    nstreams = len(fake.streams)
    fake.stop()
    # a finishes while the worker has no scheduler; its result is kept.
    poll(lambda: not worker_status(port).scheduler_connected, 5, "worker noticing")
    poll(lambda: running_ids(port) == {b}, 5, "a finishing while disconnected")
    check(worker_status(port).available_slots == 0, "a kept result must hold its slot")
    fake.start()
    st2 = fake.stream(nstreams + 1, 15)
    r = st2.registration
    check(r.worker_id == "w-test", "worker_id changed: %r", r.worker_id)
    check(set(r.running_task_ids) == {a, b}, "running_task_ids %r", list(r.running_task_ids))
    ra = fake.result(st2, a, 5)
    check(ra.status == COMPLETED and ra.attempt == 1, "kept result %r", ra)
    rb = fake.result(st2, b, 8)
    check(rb.status == COMPLETED, "b %r", rb)
    return st2


def drain(fake, st, proc, port):
    t1, t2 = tid("sleep"), tid("sleep")
    st.assign(t1, "sleep", b"1500")
    poll(lambda: t1 in running_ids(port), 5, "sleep running")
    proc.send_signal(signal.SIGTERM)
    # Still serving (for status) while draining, but not SERVING.
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        hs = health_pb2_grpc.HealthStub(ch)
        poll(lambda: hs.Check(health_pb2.HealthCheckRequest(), timeout=5).status
             == health_pb2.HealthCheckResponse.NOT_SERVING, 5, "NOT_SERVING while draining")
    check(worker_status(port).available_slots == 0, "draining worker offers slots")
    # Work assigned while draining is not started; closing hands it back.
    st.assign(t2, "sleep", b"10")
    r = fake.result(st, t1, 5)
    check(r.status == COMPLETED, "drained task %r", r)
    fake.wait_for(lambda: st.half_closed and st.ended, 8, "stream closed after the drain")
    check(t2 not in st.results, "task assigned while draining was run: %r", st.results.get(t2))
    rc = wait_exit(proc, 10)
    check(rc == 0, "worker exit status %d after SIGTERM", rc)


def drain_timeout(fake):
    # Counted before the start: the worker may register before
    # start_worker returns.
    n = len(fake.streams)
    proc, port, _ = start_worker(fake, "--slots", "3", "--worker-id", "w-drain",
                                 "--drain-timeout", "500ms", "--builtins", "sleep",
                                 "--handler", HANG)
    st = fake.wait_for(lambda: len(fake.streams) > n and fake.streams[-1].registration
                       and fake.streams[-1], 10, "w-drain registration")
    check(list(st.registration.task_names) == ["sleep", "hang"], "%r",
          list(st.registration.task_names))
    h, s = tid("hang"), tid("sleep")
    st.assign(h, "hang")
    st.assign(s, "sleep", b"30000")
    pgid = pgid_of(fake, st, h)
    poll(lambda: running_ids(port) == {h, s}, 5, "both running")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    fake.wait_for(lambda: st.ended, 5, "stream closed at the drain timeout")
    rc = wait_exit(proc, 8)
    took = time.monotonic() - t0
    check(rc == 0, "worker exit status %d", rc)
    check(0.4 <= took < 6, "drain timeout exit after %.2fs", took)
    check(not st.results, "handed-back tasks reported results: %r", st.results)
    # SIGKILL is sent before the worker exits but lands asynchronously.
    poll(lambda: not group_alive(pgid), 3, "child group %d dying with the worker" % pgid)


def help_and_bad_flags():
    out = subprocess.run([os.path.join(B, "orchd"), "worker", "--help"], capture_output=True,
                         text=True, timeout=10)
    check(out.returncode == 0, "--help exit %d", out.returncode)
    for flag, env in [("listen", "ORCHD_WORKER_LISTEN"), ("scheduler", "ORCHD_SCHEDULER"),
                      ("slots", "ORCHD_SLOTS"), ("handler", "ORCHD_HANDLER"),
                      ("builtins", "ORCHD_BUILTINS"), ("worker-id", "ORCHD_WORKER_ID"),
                      ("heartbeat", "ORCHD_HEARTBEAT"), ("drain-timeout", "ORCHD_DRAIN_TIMEOUT"),
                      ("max-output", "ORCHD_MAX_OUTPUT"), ("log-level", "ORCHD_LOG"),
                      ("grace", "ORCHD_GRACE")]:
        flags = out.stdout[out.stdout.index("\nflags"):]
        line = [ln for ln in flags.splitlines() if ln.strip().startswith("--" + flag + " ")]
        check(line and "[%s]" % env in line[0], "--help: --%s [%s] missing:\n%s", flag, env,
              out.stdout)
    for bad in (["--slots", "0"], ["--handler", "noequals"], ["--builtins", "bogus"],
                ["--handler", "x=sh -c 'open"], ["--builtins", "none"], ["stray"]):
        r = subprocess.run([WORKER, "--listen", "127.0.0.1:0"] + bad, capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 2 and "PORT" not in r.stdout, "%r: exit %d, %r", bad, r.returncode,
              r.stdout + r.stderr)


def main():
    if not os.access(WORKER, os.X_OK):
        print("SKIP: %s not built" % WORKER)
        return 77
    fake = Fake().start()
    proc, port, _ = start_worker(fake, "--slots", "2", "--heartbeat", "200ms", "--worker-id",
                                 "w-test", "--max-output", "64K", "--handler", UPPER, "--handler",
                                 BAD, "--handler", HANG, "--handler", SLOW, "--handler", BIG)
    st = fake.stream(1)
    failed = 0
    cases = [("registration", lambda: registration(fake, st, port)),
             ("heartbeats", lambda: heartbeats(fake, st, port)),
             ("health_and_status", lambda: health(fake, st, port)),
             ("builtins", lambda: builtins(fake, st, port)),
             ("exec_handlers", lambda: exec_handlers(fake, st, port)),
             ("slots", lambda: slots(fake, st, port)),
             ("timeout_kills_process_group", lambda: timeout_kill(fake, st, port)),
             ("cancel", lambda: cancel(fake, st, port)),
             ("cancelling_task_listed", lambda: cancelling_listed(fake, st, port))]
    for name, fn in cases:
        try:
            fn()
            print("PASS %s" % name, flush=True)
        except Exception as e:  # report every case, then fail
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    # These change the world (scheduler restart, worker exit): in order,
    # and each needs the previous one.
    try:
        st = reconnect(fake, st, port)
        print("PASS reconnect", flush=True)
        drain(fake, st, proc, port)
        print("PASS sigterm_drain", flush=True)
    except Exception as e:
        failed += 1
        print("FAIL reconnect/drain: %s: %s" % (type(e).__name__, e), flush=True)
    for name, fn in [("drain_timeout_hands_back", lambda: drain_timeout(fake)),
                     ("help_and_bad_flags", help_and_bad_flags)]:
        try:
            fn()
            print("PASS %s" % name, flush=True)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    if proc.poll() is None:
        harness.stop(proc)
    fake.stop()
    if failed:
        for path in LOGS:
            print("--- %s (last 40 lines)" % path)
            with open(path) as f:
                sys.stdout.writelines(f.readlines()[-40:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
