#!/usr/bin/python3
"""A stand-in for `orchd scheduler`, in python3-grpcio, for testing the
gateway (and anything else that talks to orchestrator.v1.Scheduler) without
the real scheduler, store or workers.

It owns an in-memory task table and answers every task call of the
Scheduler service the way the proto documents them: SubmitTask (with
idempotency keys), GetTask, CancelTask (pending: CANCELLED at once; running:
still RUNNING; finished: FAILED_PRECONDITION; unknown: NOT_FOUND), ListTasks
(filters, newest first, page tokens), ListWorkers (whatever the test set),
HealthCheck, WatchTask: the task's current state first, then every
update the test pushes with update(), ending after the final one with OK,
and SubmitStream: `accepted` per submit, then for a followed task the same
updates as WatchTask, ending OK once the caller half-closed and every
followed task is final. It does not run tasks: the test drives every change.

For the test it records what arrived (each request, the deadline it carried
as seconds left, whether its caller cancelled) and lets it wait for those
events with a bound (wait_for). Special task ids make GetTask misbehave on
purpose: "block" holds the call until the caller gives up (for deadline
tests). Special task names make submits misbehave: "store-fails" ends
SubmitTask, or the whole SubmitStream, with UNAVAILABLE and the store's
words (STORE_FAILS), as the real scheduler does when its store fails; on a
SubmitStream, "flood" is followed by fake.flood = (n, size) progress
updates sent as fast as the caller takes them, counted in Stream.sent
(backpressure tests). SubmitStream requests are recorded as the bytes that
came (Stream.raw). Tasks whose name is in fake.complete are COMPLETED as
they are stored, so a load generator (`orchd bench`) can drive the fake.

    fake = FakeScheduler().start()          # fake.port, fake.stop(), fake.start() again
    fake.add_task("t1", status=RUNNING)
    fake.update("t1", percent=50, message="half")

Standalone: `fake_scheduler.py [--port N] [--complete NAME]...` serves until
SIGTERM and prints `PORT <n>` once listening.
"""

import argparse
import os
import queue
import signal
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import harness  # noqa: E402

harness.load_stubs()
import grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2 as pb  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

PENDING = pb.TASK_STATUS_PENDING
RUNNING = pb.TASK_STATUS_RUNNING
COMPLETED = pb.TASK_STATUS_COMPLETED
FAILED = pb.TASK_STATUS_FAILED
CANCELLED = pb.TASK_STATUS_CANCELLED
FINAL = (COMPLETED, FAILED, CANCELLED)
STORE_FAILS = "store: disk I/O error (the fake's store is broken on purpose)"
SUBMIT_STREAM = "/orchestrator.v1.Scheduler/SubmitStream"


def now_ms():
    return int(time.time() * 1000)


class Call:
    """What the test sees of any streaming call of the fake."""

    def __init__(self, time_remaining):
        self.time_remaining = time_remaining
        self.q = queue.Queue()  # messages to send, None to end
        self.sent = 0           # messages taken by grpc (the caller's flow control)
        self.ended = False      # the handler returned by itself
        self.cancelled = False  # the caller went away before the end
        self.done = False       # the RPC is over, whichever way

    def track(self, cond, context):
        """Notes (under cond) the end of the RPC, whichever way it ends."""
        def over():
            with cond:
                self.done = True
                self.cancelled = not self.ended
                cond.notify_all()
            self.q.put(None)

        context.add_callback(over)


class Watch(Call):
    """One open WatchTask call."""

    def __init__(self, task_id, time_remaining):
        super().__init__(time_remaining)
        self.task_id = task_id


class Stream(Call):
    """One open SubmitStream call."""

    def __init__(self, time_remaining):
        super().__init__(time_remaining)
        self.raw = []            # each request's bytes, as they came
        self.out = []            # each event's bytes, as sent
        self.follows = {}        # task id -> [refs] followed, not yet final
        self.half_closed = False

    def _maybe_end(self):
        if self.half_closed and not self.follows:
            self.q.put(None)


class FakeScheduler(pb_grpc.SchedulerServicer):
    """The fake; see the module comment."""

    def __init__(self, port=0):
        self.port = port
        self.server = None
        self.cond = threading.Condition()
        self.tasks = {}        # id -> pb.Task
        self.order = []        # ids, oldest first
        self.keys = {}         # idempotency_key -> id
        self.workers = []      # pb.WorkerInfo, for ListWorkers
        self.requests = []     # (method, request, seconds left or None)
        self.watches = []      # Watch, every one ever opened
        self.blocked = []      # GetTask("block") calls: dicts with their fate
        self.submit_streams = []  # Stream, every SubmitStream ever opened
        self.flood = (0, 0)    # SubmitStream "flood": (updates, message bytes)
        self.complete = set()  # task names COMPLETED as they are stored
        self.next_id = 1

    # ---- life --------------------------------------------------------

    def start(self):
        """Serves on 127.0.0.1:self.port (0: pick one; again after stop:
        the same port). Returns self."""
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                                  options=[("grpc.so_reuseport", 0)])
        # SubmitStream takes raw bytes, to see what the gateway forwarded;
        # this handler comes first, so it wins over the servicer's.
        raw = grpc.stream_stream_rpc_method_handler(
            self.SubmitStream, request_deserializer=None,
            response_serializer=pb.SubmitStreamEvent.SerializeToString)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("orchestrator.v1.Scheduler",
                                                  {"SubmitStream": raw}),))
        pb_grpc.add_SchedulerServicer_to_server(self, self.server)
        port = self.server.add_insecure_port("127.0.0.1:%d" % self.port)
        if port == 0:
            raise RuntimeError("fake scheduler: cannot bind 127.0.0.1:%d" % self.port)
        self.port = port
        self.server.start()
        return self

    def stop(self):
        """Stops serving at once: open calls are cancelled, the port closes."""
        if self.server:
            self.server.stop(None).wait(5)
            self.server = None
        with self.cond:
            for w in self.watches:
                if not w.done:
                    w.q.put(None)
            for st in self.submit_streams:
                if not st.done:
                    st.q.put(None)
            self.cond.notify_all()

    # ---- what the test drives -----------------------------------------

    def add_task(self, task_id=None, name="echo", status=PENDING, **fields):
        """Adds a task directly (as if submitted earlier). Returns it."""
        with self.cond:
            if task_id is None:
                task_id = self._new_id()
            t = pb.Task(task_id=task_id, spec=pb.TaskSpec(name=name, max_attempts=3),
                        status=status, created_unix_ms=now_ms(), **fields)
            self.tasks[task_id] = t
            self.order.append(task_id)
            self.cond.notify_all()
            return t

    def update(self, task_id, status=None, percent=None, message=None, attempt=None,
               result=None):
        """Changes a task and sends the new state to its watchers. A final
        status without a result gets one. Returns the TaskProgress sent."""
        with self.cond:
            t = self.tasks[task_id]
            if status is not None:
                t.status = status
            if percent is not None:
                t.percent = percent
            if message is not None:
                t.message = message
            if attempt is not None:
                t.attempt = attempt
            if t.status in FINAL:
                t.finished_unix_ms = now_ms()
                if result is None:
                    result = pb.TaskResult(task_id=task_id, status=t.status, attempt=t.attempt)
                t.result.CopyFrom(result)
            p = self._progress(t)
            for w in self.watches:
                if w.task_id == task_id and not w.done:
                    w.q.put(p)
            self._tell_streams(t, p)
            self.cond.notify_all()
            return p

    def burst(self, task_id, n, message_size=0):
        """Sends n progress updates (percent i % 100, a message of
        message_size bytes) to the task's watchers as fast as they can be
        written, without touching the stored task. Returns the last one."""
        with self.cond:
            t = self.tasks[task_id]
            ws = [w for w in self.watches if w.task_id == task_id and not w.done]
            pad = "x" * message_size
            p = None
            for i in range(n):
                p = pb.TaskProgress(task_id=task_id, status=t.status, percent=i % 100,
                                    message="%d %s" % (i, pad), attempt=t.attempt,
                                    timestamp_unix_ms=now_ms())
                for w in ws:
                    w.q.put(p)
            return p

    def wait_for(self, pred, timeout=10.0, what="condition"):
        """Waits until pred() (called under the lock) is true; raises
        TimeoutError after timeout seconds. Returns pred()'s value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("fake scheduler: no %s within %.1fs" % (what, timeout))
                self.cond.wait(min(left, 0.5))

    def watches_of(self, task_id):
        return [w for w in self.watches if w.task_id == task_id]

    def last_request(self, method):
        """The most recent (request, seconds left) of method, or None."""
        with self.cond:
            for m, req, left in reversed(self.requests):
                if m == method:
                    return req, left
        return None

    def count(self, method):
        with self.cond:
            return sum(1 for m, _, _ in self.requests if m == method)

    # ---- helpers -----------------------------------------------------

    def _new_id(self):
        i = self.next_id
        self.next_id += 1
        return "t%025d" % i  # as long as a real id

    def _record(self, method, request, context):
        with self.cond:
            self.requests.append((method, request, context.time_remaining()))
            self.cond.notify_all()

    @staticmethod
    def _progress(t):
        p = pb.TaskProgress(task_id=t.task_id, status=t.status, percent=t.percent,
                            message=t.message, timestamp_unix_ms=now_ms(), attempt=t.attempt)
        if t.status in FINAL:
            p.result.CopyFrom(t.result)
        return p

    def _get(self, task_id, context):
        t = self.tasks.get(task_id)
        if t is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "task %s not found" % task_id)
        return t

    # ---- the Scheduler service -----------------------------------------

    def HealthCheck(self, request, context):
        return pb.HealthCheckResponse(status=pb.HealthCheckResponse.SERVING, role="scheduler",
                                      version="fake")

    def SubmitTask(self, request, context):
        self._record("SubmitTask", request, context)
        if request.name == "store-fails":
            context.abort(grpc.StatusCode.UNAVAILABLE, STORE_FAILS)
        with self.cond:
            return self._submit(request)

    def _submit(self, request):
        """Stores a spec (under the lock); returns its TaskAccepted."""
        key = request.idempotency_key
        if key and key in self.keys:
            t = self.tasks[self.keys[key]]
            return pb.TaskAccepted(task_id=t.task_id, accepted_at_unix_ms=t.created_unix_ms,
                                   duplicate=True)
        tid = self._new_id()
        spec = pb.TaskSpec()
        spec.CopyFrom(request)
        if not spec.max_attempts:
            spec.max_attempts = 3
        t = pb.Task(task_id=tid, spec=spec, status=PENDING, created_unix_ms=now_ms())
        if spec.name in self.complete:
            t.status = COMPLETED
            t.started_unix_ms = t.finished_unix_ms = t.created_unix_ms
            t.result.CopyFrom(pb.TaskResult(task_id=tid, status=COMPLETED, attempt=1))
        self.tasks[tid] = t
        self.order.append(tid)
        if key:
            self.keys[key] = tid
        self.cond.notify_all()
        return pb.TaskAccepted(task_id=tid, accepted_at_unix_ms=t.created_unix_ms)

    def SubmitStream(self, request_iterator, context):
        st = Stream(context.time_remaining())
        with self.cond:
            self.submit_streams.append(st)
            self.cond.notify_all()

        st.track(self.cond, context)
        failed = []

        def read():
            try:
                for raw in request_iterator:
                    with self.cond:
                        st.raw.append(raw)
                        self.cond.notify_all()
                    r = pb.SubmitStreamRequest.FromString(raw)
                    if not r.HasField("spec"):
                        st.q.put(pb.SubmitStreamEvent(ref=r.ref, rejected=pb.SubmitRejected(
                            code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                            message="SubmitStreamRequest.spec is missing")))
                        continue
                    if r.spec.name == "store-fails":
                        failed.append(STORE_FAILS)
                        st.q.put(None)
                        return
                    self._stream_submit(st, r)
            except grpc.RpcError:
                return  # the caller went away; over() ends the stream
            with self.cond:
                st.half_closed = True
                st._maybe_end()
                self.cond.notify_all()

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                ev = st.q.get()
                if ev is None:
                    break
                with self.cond:
                    st.out.append(ev.SerializeToString())
                yield ev
                with self.cond:
                    st.sent += 1
                    self.cond.notify_all()
            if failed:
                context.abort(grpc.StatusCode.UNAVAILABLE, failed[0])
        finally:
            with self.cond:
                st.ended = not st.done
                self.cond.notify_all()

    def _stream_submit(self, st, r):
        """One submit on a SubmitStream: accepted, then what it follows."""
        with self.cond:
            acc = self._submit(r.spec)
            st.q.put(pb.SubmitStreamEvent(ref=r.ref, accepted=acc))
            t = self.tasks[acc.task_id]
            if r.follow:
                st.follows.setdefault(t.task_id, []).append(r.ref)
                self._tell_streams(t, self._progress(t), only=st)
            n, size = self.flood
        if r.follow and r.spec.name == "flood":
            pad = "x" * size
            for i in range(n):
                st.q.put(pb.SubmitStreamEvent(ref=r.ref, progress=pb.TaskProgress(
                    task_id=t.task_id, status=RUNNING, percent=i % 100,
                    message="%d %s" % (i, pad))))

    def _tell_streams(self, t, p, only=None):
        """Sends progress p of task t to the streams following it (under
        the lock); a final one ends the following."""
        for st in [only] if only else self.submit_streams:
            refs = st.follows.get(t.task_id)
            if not refs or st.done:
                continue
            for ref in refs:
                st.q.put(pb.SubmitStreamEvent(ref=ref, progress=p))
            if t.status in FINAL:
                del st.follows[t.task_id]
                st._maybe_end()

    def GetTask(self, request, context):
        self._record("GetTask", request, context)
        if request.task_id == "block":
            fate = {"cancelled": False, "time_remaining": context.time_remaining()}
            with self.cond:
                self.blocked.append(fate)
                self.cond.notify_all()
            gone = threading.Event()
            context.add_callback(gone.set)
            gone.wait(60)
            with self.cond:
                fate["cancelled"] = not context.is_active()
                self.cond.notify_all()
            context.abort(grpc.StatusCode.INTERNAL, "block: caller did not give up")
        with self.cond:
            return self._get(request.task_id, context)

    def CancelTask(self, request, context):
        self._record("CancelTask", request, context)
        with self.cond:
            t = self._get(request.task_id, context)
            if t.status in FINAL:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "task %s is already %s" % (t.task_id, pb.TaskStatus.Name(t.status)))
            if t.status == PENDING:
                t.status = CANCELLED
                t.finished_unix_ms = now_ms()
                t.result.CopyFrom(pb.TaskResult(task_id=t.task_id, status=CANCELLED,
                                                error=request.reason or "cancelled"))
            return pb.CancelTaskResponse(task_id=t.task_id, status=t.status)

    def ListTasks(self, request, context):
        self._record("ListTasks", request, context)
        with self.cond:
            ids = [i for i in reversed(self.order)
                   if (not request.status or self.tasks[i].status == request.status)
                   and (not request.name or self.tasks[i].spec.name == request.name)]
            start = int(request.page_token or 0)
            size = request.page_size or 100
            page = ids[start:start + size]
            more = start + size < len(ids)
            return pb.ListTasksResponse(tasks=[self.tasks[i] for i in page],
                                        next_page_token=str(start + size) if more else "")

    def ListWorkers(self, request, context):
        self._record("ListWorkers", request, context)
        with self.cond:
            return pb.ListWorkersResponse(workers=list(self.workers))

    def WatchTask(self, request, context):
        self._record("WatchTask", request, context)
        with self.cond:
            t = self._get(request.task_id, context)
            w = Watch(request.task_id, context.time_remaining())
            first = self._progress(t)
            self.watches.append(w)
            self.cond.notify_all()

        w.track(self.cond, context)
        try:
            msg = first
            while msg is not None:
                yield msg
                with self.cond:
                    w.sent += 1
                    self.cond.notify_all()
                if msg.status in FINAL:
                    break
                msg = w.q.get()
        finally:
            with self.cond:
                w.ended = not w.done
                self.cond.notify_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--complete", action="append", default=[], metavar="NAME",
                    help="tasks of this name are COMPLETED as they are stored")
    args = ap.parse_args()
    fake = FakeScheduler(args.port)
    fake.complete = set(args.complete)
    fake.start()
    print("PORT %d" % fake.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    fake.stop()


if __name__ == "__main__":
    main()
