"""A real orchd cluster on 127.0.0.1 for the end-to-end and fault tests.

This module owns starting, killing and restarting the role processes
(`$B/scheduler`, `$B/worker`, `$B/gateway`, each on an ephemeral port, its
logfmt log in a file), a python3-grpcio Gateway client, and the checks every
test applies to a progress stream. It does not own any test's scenario.

    sched = Role.scheduler(data_dir, "--dead-timeout", "1s")
    wa = Role.worker(sched.port, "--slots", "8", "--worker-id", "a")
    gw = Role.gateway(sched.port)
    stub = gw.stub()
    ups = follow(stub, task_id)        # the whole stream, checked
    ...
    assert gw.stop() == 0              # SIGTERM: must exit 0

Every wait is bounded: poll() for a condition with a deadline, follow() with
a call timeout. Process helpers come from tests/interop/harness.py.
"""

import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))
# Restarting a role forks this process while grpc threads are busy; grpc's
# fork handlers would make that fork wait (indefinitely, at times) for them
# to go idle. The child execs at once, so it needs none of that.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"
import harness  # noqa: E402

harness.load_stubs()
import grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

B = harness.build_dir()
SC = grpc.StatusCode

PENDING = pb.TASK_STATUS_PENDING
RUNNING = pb.TASK_STATUS_RUNNING
COMPLETED = pb.TASK_STATUS_COMPLETED
FAILED = pb.TASK_STATUS_FAILED
CANCELLED = pb.TASK_STATUS_CANCELLED
FINAL = (COMPLETED, FAILED, CANCELLED)


class Failure(Exception):
    """A check did not hold."""


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args if args else fmt)


def eq(got, want, what):
    check(got == want, "%s: got %r, want %r", what, got, want)


def status_name(s):
    return pb.TaskStatus.Name(s)


def poll(pred, timeout, what, interval=0.02):
    """Calls pred() until it returns something true; returns that. Raises
    Failure after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure("no %s within %.1fs" % (what, timeout))
        time.sleep(interval)


def code_of(fn):
    """Runs fn; returns (code, details) of the RpcError it raises."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise Failure("call succeeded, an error was expected")


# ---------------------------------------------------------------------------
# Role processes
# ---------------------------------------------------------------------------

_logdir = None


def log(fmt, *args):
    """A progress line of the test on stdout, flushed at once."""
    sys.stdout.write((fmt % args if args else fmt) + "\n")
    sys.stdout.flush()


def logdir():
    global _logdir
    if _logdir is None:
        _logdir = harness.tempdir("orchd-logs.")
    return _logdir


def target(sched):
    """A role's --scheduler: a port on 127.0.0.1, or an address as given."""
    return sched if isinstance(sched, str) else "127.0.0.1:%d" % sched


class Role:
    """One role process. `argv` starts with `--listen 127.0.0.1:<port>`, so a
    restart() comes back on the same port (0 the first time); with listen
    (e.g. "unix:/dir/s.sock") on that address instead."""

    count = 0

    def __init__(self, role, flags, port=0, listen=None):
        Role.count += 1
        self.role = role
        self.flags = list(flags)
        self.logpath = os.path.join(logdir(), "%s-%d.log" % (role, Role.count))
        self.port = port
        self.listen = listen
        self.proc = None
        self.channels = []
        self._start()

    @classmethod
    def scheduler(cls, data_dir, *flags, port=0, listen=None):
        return cls("scheduler", ["--data-dir", data_dir] + list(flags), port, listen)

    @classmethod
    def watchful_scheduler(cls, data_dir, *flags):
        """The fault tests' scheduler: a worker silent for 1 s is dead
        (heartbeats every 200 ms), and every task transition is logged
        (debug), which their exactly-once checks count."""
        return cls.scheduler(data_dir, "--dead-timeout", "1s", "--heartbeat", "200ms",
                             "--log-level", "debug", *flags)

    @classmethod
    def worker(cls, sched, *flags, listen=None):
        """sched: the scheduler's port on 127.0.0.1 or its address."""
        return cls("worker", ["--scheduler", target(sched)] + list(flags), listen=listen)

    @classmethod
    def gateway(cls, sched, *flags, port=0, listen=None):
        return cls("gateway", ["--scheduler", target(sched)] + list(flags), port, listen)

    def _start(self):
        argv = [os.path.join(B, self.role), "--listen", self.addr()] + self.flags
        with open(self.logpath, "ab") as err:
            err.write(("# %s\n" % " ".join(argv)).encode())
            err.flush()
            self.proc = harness.start(argv, stderr=err)
        port = harness.read_port(self.proc)
        check(self.port in (0, port), "%s came back on port %d, not %d", self.role, port,
              self.port)
        self.port = port

    def addr(self):
        return self.listen or "127.0.0.1:%d" % self.port

    def channel(self, options=()):
        """A new channel with a connection of its own (grpc core would
        otherwise share one connection among channels to the same address).
        It reconnects within a second of the role coming back."""
        opts = [("grpc.use_local_subchannel_pool", 1),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000)] + list(options)
        ch = grpc.insecure_channel(self.addr(), options=opts)
        self.channels.append(ch)
        return ch

    def stub(self, cls=None):
        """A stub of class cls (default: the role's own service, Gateway for
        the gateway) on a new channel, connected: fail-fast calls on a
        channel still connecting can fail with UNAVAILABLE."""
        ch = self.channel()
        grpc.channel_ready_future(ch).result(timeout=20)
        if cls is None:
            cls = {"scheduler": pb_grpc.SchedulerStub, "worker": pb_grpc.WorkerStub,
                   "gateway": pb_grpc.GatewayStub}[self.role]
        return cls(ch)

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def kill9(self):
        """SIGKILL, and waits for the process to be gone."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        harness.stop(self.proc)

    def restart(self):
        """Starts the role again with the same flags on the same port."""
        check(self.proc.poll() is not None, "%s still running", self.role)
        self._start()

    def stop(self, timeout=15.0):
        """SIGTERM; returns the exit code. Raises Failure if the process is
        still there after timeout seconds (then it is killed). The test's
        channels to it stay open (they reconnect after a restart())."""
        if self.proc.poll() is not None:
            return harness.stop(self.proc)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            harness.stop(self.proc, timeout=1)
            raise Failure("%s did not exit within %.0fs of SIGTERM" % (self.role, timeout))
        return harness.stop(self.proc)

    def tail(self, n=40):
        return "".join(self.log().splitlines(True)[-n:])


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def stop_all(roles):
    """Stops every role (SIGTERM) in order and checks each exits 0. Also
    checks that no role's log (killed ones included) has a sanitizer
    report."""
    bad = []
    for r in roles:
        if r.proc.poll() is not None and r.proc not in harness._children:
            continue  # killed on purpose and reaped
        rc = r.stop()
        if rc != 0:
            bad.append("%s exited %s; log tail:\n%s" % (r.role, rc, r.tail()))
    for r in roles:
        for ch in r.channels:
            ch.close()
        r.channels = []
    for r in roles:
        text = r.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                i = text.index(mark)
                bad.append("%s log has a sanitizer report:\n%s" % (r.role, text[i:i + 3000]))
                break
    check(not bad, "\n".join(bad))


def dump_logs(roles, n=30):
    for r in roles:
        try:
            sys.stderr.write("---- %s (%s), last %d lines:\n%s" % (r.role, r.logpath, n, r.tail(n)))
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Progress streams
# ---------------------------------------------------------------------------


def order_key(u):
    """Where an update sits in a task's life: attempts count up, and within
    attempt n RUNNING comes before the PENDING of its retry, which comes
    before attempt n+1 (PENDING before the first run has attempt 0)."""
    if u.status == RUNNING:
        return (u.attempt, 0)
    if u.status == PENDING:
        return (u.attempt, 1)
    return (u.attempt, 2)


def check_stream(ups, task_id):
    """Checks a whole SubscribeProgress stream: every update is about the
    task and has a real status; updates never go back in the task's life;
    the percent of the RUNNING updates (and a COMPLETED one) never goes down
    within an attempt and stays in 0..100; only the last update is final and
    it carries the result. Returns the last update."""
    check(ups, "%s: empty stream", task_id)
    last_pct = {}
    for i, u in enumerate(ups):
        eq(u.task_id, task_id, "update's task_id")
        check(u.status in (PENDING, RUNNING) + FINAL, "%s: update %d has status %d", task_id,
              i, u.status)
        check(0 <= u.percent <= 100, "%s: percent %d", task_id, u.percent)
        check(u.timestamp_unix_ms > 0, "%s: update without timestamp", task_id)
        if i:
            p = ups[i - 1]
            check(order_key(u) >= order_key(p), "%s: went back from %s/%d to %s/%d: %s",
                  task_id, status_name(p.status), p.attempt, status_name(u.status), u.attempt,
                  [(status_name(x.status), x.attempt, x.percent) for x in ups])
        if u.status in (RUNNING, COMPLETED):
            check(u.percent >= last_pct.get(u.attempt, 0),
                  "%s: percent went down in attempt %d: %s", task_id, u.attempt,
                  [(status_name(x.status), x.attempt, x.percent) for x in ups])
            last_pct[u.attempt] = u.percent
        final = u.status in FINAL
        check(final == (i == len(ups) - 1), "%s: final update %d of %d", task_id, i + 1,
              len(ups))
        check(u.HasField("result") == final, "%s: result on update %d (%s)", task_id, i,
              status_name(u.status))
    last = ups[-1]
    eq(last.result.task_id, task_id, "result's task_id")
    eq(last.result.status, last.status, "result's status")
    eq(last.result.attempt, last.attempt, "result's attempt")
    return last


def follow(stub, task_id, timeout=60.0, on_update=None):
    """Reads task_id's whole SubscribeProgress stream (it must end OK) and
    checks it with check_stream; returns the updates. on_update(u) is called
    for each as it arrives."""
    ups = []
    for u in stub.SubscribeProgress(pb.ProgressRequest(task_id=task_id), timeout=timeout):
        ups.append(u)
        if on_update:
            on_update(u)
    check_stream(ups, task_id)
    return ups


def submit(stub, timeout=10.0, **spec):
    return stub.SubmitTask(pb.TaskSpec(**spec), timeout=timeout)


def workers(stub):
    """The ids of the workers connected to the scheduler, sorted."""
    return sorted(w.worker_id for w in stub.ListWorkers(pb.ListWorkersRequest(),
                                                         timeout=10).workers)


def workers_if_up(stub):
    """As workers(), but [] while the scheduler is UNAVAILABLE (restarting)."""
    try:
        return workers(stub)
    except grpc.RpcError as e:
        check(e.code() == SC.UNAVAILABLE, "ListWorkers after restart: %s", e.code())
        return []


class Threads:
    """Client threads that report under one condition: a subclass sets
    self.cond and self.threads, and notifies cond when its state changes."""

    def wait(self, pred, timeout, what):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self), timeout):
                raise Failure("no %s within %.0fs" % (what, timeout))

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
            check(not t.is_alive(), "client threads still running after %.0fs", timeout)


def get(stub, task_id, timeout=10.0):
    return stub.GetTask(pb.GetTaskRequest(task_id=task_id), timeout=timeout)


def list_all(stub, status=0, name="", timeout=10.0):
    """Every task (all pages) matching the filter."""
    tasks, token = [], ""
    while True:
        r = stub.ListTasks(pb.ListTasksRequest(status=status, name=name, page_size=1000,
                                               page_token=token), timeout=timeout)
        tasks.extend(r.tasks)
        token = r.next_page_token
        if not token:
            return tasks


def task_events(log, kind):
    """From a scheduler log: task id -> how many `task_state ... event=KIND`
    lines it has (e.g. kind "complete"). `assign` and `complete` are logged
    at debug only: run the scheduler with `--log-level debug` to count them."""
    counts = {}
    for m in re.finditer(r"event=task_state task=(\S+) event=%s\b" % re.escape(kind), log):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def task_starts(log):
    """From a worker log: task id -> how many `task_started` lines it has."""
    counts = {}
    for m in re.finditer(r"event=task_started task=(\S+)", log):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def run(main, roles_fn):
    """Runs main(); on failure prints the roles' log tails and then the
    error, keeps the role logs in $B/test-logs/<script>.roles/ and exits 1.
    roles_fn() returns the roles."""
    try:
        main()
    except Exception:
        import shutil
        import traceback
        try:
            dump_logs(roles_fn(), 15)
            if _logdir:
                name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
                keep = os.path.join(B, "test-logs", name + ".roles")
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(_logdir, keep)
                sys.stderr.write("role logs kept in %s\n" % keep)
        except Exception:
            pass
        traceback.print_exc()  # last, where tests/run.sh's tail shows it
        sys.exit(1)
