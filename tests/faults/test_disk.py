#!/usr/bin/python3
"""The scheduler's disk fills up, then fails read-only, under a running
cluster: SubmitTask fails with RESOURCE_EXHAUSTED (full) or UNAVAILABLE
(read-only) and a message saying the task was not stored, the scheduler's
health is NOT_SERVING while its commits fail, and nothing already stored is
damaged.

The data dir lives on a small ext4 file system in a loop-mounted image file
made by the test (skipped where it cannot mount one: it needs root and a
loop device). A scheduler with --fsync, a worker (echo, sleep) and a
gateway. (--fsync because the read-only failure is an ext4 abort, which,
like a power cut, throws away what is not yet on the device: with the
default synchronous=NORMAL the last commits before it would be lost, as
docs/reliability.md says.)
  * before: 20 echo tasks completed, 3 tasks parked PENDING (a name no
    worker serves), and one 1.5 s sleep running;
  * disk full (filler files take every free block): 64 KiB submits go on
    until one fails with RESOURCE_EXHAUSTED "task not stored: No space
    left on device"; the scheduler's grpc.health.v1 status is NOT_SERVING;
    the running sleep finishes meanwhile (its result is kept in memory and
    written by a later commit);
  * space freed: submits succeed again at once and health is SERVING; the
    sleep is COMPLETED;
  * read-only (`mount -o remount,abort`: ext4 drops to read-only at once,
    with the files still open): submits fail with UNAVAILABLE "task not
    stored: Read-only file system" (the errno under SQLite's I/O error),
    health is NOT_SERVING, reads still answer; the scheduler stops on
    SIGTERM;
  * after e2fsck and a fresh mount, the scheduler restarted on the same
    data dir: every task that got a TaskAccepted is there with its status
    and result unchanged (the parked ones still PENDING), no failed submit
    left a task behind, and SQLite's integrity_check says ok.
"""

import atexit
import os
import re
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster  # noqa: E402
from cluster import log  # noqa: E402
from cluster import COMPLETED, PENDING, RUNNING, SC, check, code_of, eq, follow, get, pb  # noqa
from cluster import submit  # noqa: E402

import grpc  # noqa: E402
import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

IMAGE_MB = 16
BIG = 64 << 10
roles = []
mounted = []


def skip(why):
    print("SKIP: %s" % why)
    sys.exit(77)


def sh(*argv):
    """Runs a command; returns (exit code, its output)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def mount(image, mnt):
    rc, out = sh("mount", "-o", "loop", image, mnt)
    check(rc == 0, "mount %s: %s", image, out)
    mounted.append(mnt)


def umount(mnt):
    rc, out = sh("umount", mnt)
    check(rc == 0, "umount %s: %s", mnt, out)
    mounted.remove(mnt)


@atexit.register
def _unmount():
    # Registered after harness's cleanup, so it runs first: the roles
    # holding files on the mount must go before it can be unmounted.
    if not mounted:
        return
    for p in list(harness._children):
        try:
            harness.stop(p, timeout=2)
        except Exception:
            pass
    for mnt in list(mounted):
        if sh("umount", mnt)[0] != 0:
            sh("umount", "-l", mnt)


def make_fs(tmp):
    """A fresh ext4 image mounted on tmp/mnt, or a skip."""
    if os.geteuid() != 0:
        skip("needs root to loop-mount a small file system")
    image, mnt = os.path.join(tmp, "fs.img"), os.path.join(tmp, "mnt")
    os.mkdir(mnt)
    with open(image, "wb") as f:
        f.truncate(IMAGE_MB << 20)
    rc, out = sh("mkfs.ext4", "-q", "-F", "-m", "0", image)
    if rc != 0:
        skip("mkfs.ext4 failed: %s" % out.strip())
    rc, out = sh("mount", "-o", "loop", image, mnt)
    if rc != 0:
        skip("cannot loop-mount a file system here: %s" % out.strip())
    mounted.append(mnt)
    return image, mnt


def fill(mnt):
    """Takes every free block of the file system; returns the filler
    files."""
    files = []
    for size in (1 << 20, 4096):
        path = os.path.join(mnt, "filler-%d" % size)
        files.append(path)
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                check(e.errno == 28, "filling the disk: %s", e)
    return files


def health(hstub):
    st = hstub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    return health_pb2.HealthCheckResponse.ServingStatus.Name(st)


def main():
    tmp = harness.tempdir()
    image, mnt = make_fs(tmp)
    data = os.path.join(mnt, "data")
    # debug: a `complete` transition is awaited in the scheduler's log.
    sched = cluster.Role.scheduler(data, "--fsync", "--heartbeat", "200ms", "--grace", "1s",
                                   "--log-level", "debug")
    roles.append(sched)
    worker = cluster.Role.worker(sched.port, "--slots", "4", "--worker-id", "disk-w",
                                 "--heartbeat", "200ms", "--builtins", "echo,sleep")
    gw = cluster.Role.gateway(sched.port)
    roles.extend([worker, gw])
    stub = gw.stub()
    hstub = health_pb2_grpc.HealthStub(sched.channel())
    cluster.poll(lambda: len(stub.ListWorkers(pb.ListWorkersRequest(), timeout=10).workers) == 1,
                 20, "worker registered")
    eq(health(hstub), "SERVING", "scheduler health at start")

    # Stored before anything goes wrong.
    accepted = {}  # task id -> expected output (None: stays PENDING; b"": sleep)
    for i in range(20):
        tid = submit(stub, name="echo", payload=b"before %d" % i).task_id
        accepted[tid] = b"before %d" % i
    parked = [submit(stub, name="parked", payload=b"p").task_id for _ in range(3)]
    accepted.update({tid: None for tid in parked})
    for tid, want in accepted.items():
        if want is not None:
            eq(follow(stub, tid, timeout=20)[-1].result.output, want, "output of %s" % tid)
    inflight = submit(stub, name="sleep", payload=b"1500").task_id
    accepted[inflight] = b""
    cluster.poll(lambda: get(stub, inflight).status == RUNNING, 10, "the sleep running")
    before = {tid: get(stub, tid) for tid in accepted if tid != inflight}

    # Disk full.
    fillers = fill(mnt)
    fails = []
    for i in range(200):
        p = b"%d" % i + b"x" * BIG
        try:
            tid = submit(stub, name="echo", payload=p).task_id
            accepted[tid] = p
        except grpc.RpcError as e:
            fails.append((e.code(), e.details()))
            if len(fails) == 3:
                break
    check(fails, "the disk never filled up: 200 submits of %d bytes accepted", BIG)
    for code, details in fails:
        eq(code, SC.RESOURCE_EXHAUSTED, "status of a submit on a full disk (%s)" % details)
        check("task not stored" in details and "No space left on device" in details,
              "unclear message for a full disk: %r", details)
    eq(health(hstub), "NOT_SERVING", "scheduler health while commits fail (disk full)")
    check(re.search(r"event=commit_failed error=\"No space left on device\"", sched.log()),
          "no commit_failed in the scheduler's log")
    log("disk full after %d more submits: %s %r; health NOT_SERVING", len(accepted) - 24,
        fails[0][0].name, fails[0][1])
    # The running sleep ends while the disk is full: its result waits in
    # the scheduler's memory for a commit that works.
    cluster.poll(lambda: re.search(r"event=task_finished task=%s " % inflight, worker.log()),
                 10, "the sleep finishing on the worker")
    cluster.poll(lambda: re.search(r"event=task_state task=%s event=complete" % inflight,
                                   sched.log()), 10, "the scheduler applying its result")

    # Room again.
    for f in fillers:
        os.unlink(f)
    tid = submit(stub, name="echo", payload=b"after full").task_id
    accepted[tid] = b"after full"
    cluster.poll(lambda: health(hstub) == "SERVING", 10, "health SERVING once a commit works")
    last = follow(stub, inflight, timeout=20)[-1]
    eq((last.status, last.attempt), (COMPLETED, 1), "the sleep that ended on a full disk")
    log("space freed: submits accepted, health SERVING, the sleep's result committed")

    # Read-only.
    rc, out = sh("mount", "-o", "remount,abort", mnt)
    check(rc == 0, "remount,abort: %s", out)
    code, details = code_of(lambda: submit(stub, name="echo", payload=b"ro"))
    eq(code, SC.UNAVAILABLE, "status of a submit on a read-only disk (%s)" % details)
    check("task not stored" in details and "Read-only file system" in details,
          "unclear message for a read-only disk: %r", details)
    eq(health(hstub), "NOT_SERVING", "scheduler health while commits fail (read-only)")
    eq(get(stub, parked[0]).status, PENDING, "a read while the disk is read-only")
    log("read-only: submit %s %r; health NOT_SERVING; reads answer", code.name, details)
    rc = sched.stop()
    check(rc >= 0, "the scheduler died of signal %d on a read-only disk", -rc)
    log("scheduler stopped on a read-only disk: exit %d", rc)

    # Repair, remount, restart: nothing acknowledged is lost or changed.
    umount(mnt)
    rc, out = sh("e2fsck", "-f", "-y", image)
    check(rc in (0, 1), "e2fsck exit %d: %s", rc, out)
    mount(image, mnt)
    sched.restart()
    cluster.poll(lambda: _health(hstub) == "SERVING", 20, "scheduler back")
    for tid, want in accepted.items():
        t = get(stub, tid)
        if tid in before:
            b = before[tid]
            eq((t.status, t.attempt, t.result, t.finished_unix_ms),
               (b.status, b.attempt, b.result, b.finished_unix_ms), "task %s after restart" % tid)
        if want is None:
            eq(t.status, PENDING, "parked task %s" % tid)
        else:
            last = follow(stub, tid, timeout=30)[-1]
            eq((last.status, last.result.output), (COMPLETED, want), "task %s" % tid)
    stored = {t.task_id for t in cluster.list_all(stub)}
    eq(stored, set(accepted), "tasks in the store: exactly the accepted ones")
    log("after repair and restart: all %d accepted tasks intact, nothing else stored",
        len(accepted))

    cluster.stop_all([gw, worker, sched])
    db = sqlite3.connect(os.path.join(data, "orchd.db"))
    eq(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)], "integrity_check")
    db.close()
    umount(mnt)
    log("PASS full and read-only disk: submits refused clearly, nothing stored was damaged")


def _health(hstub):
    try:
        return health(hstub)
    except grpc.RpcError:
        return None


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
