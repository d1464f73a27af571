#!/usr/bin/python3
"""Unix domain sockets: a real scheduler, worker and gateway wired over
unix sockets in a temporary directory, driven with python3-grpcio over a
unix target. Checks:
  * scheduler, worker and gateway listen on unix:PATH (the worker dials
    unix:///ABS/PATH, the gateway unix:PATH); the socket files are sockets
    of mode 0660; every role prints PORT 0 and logs its unix address;
  * a python client on unix:PATH submits to the gateway (SubmitTask) and
    follows the task to COMPLETED with the echoed payload; the gateway's
    grpc.health.v1 Check answers SERVING; so does `orchd health` and
    `orchd submit --wait` over the socket; a worker on unix-abstract:NAME
    answers health checks there;
  * a second scheduler on a live socket's path exits non-zero saying the
    address is in use, and the first one goes on serving;
  * after kill -9 the socket file stays (stale): the scheduler restarts on
    the same path, the worker and gateway come back, a task completes;
  * a regular file at the path is left alone (content unchanged) and the
    role exits non-zero saying it is not a socket; a path longer than
    sun_path holds is a usage error (exit 2) that says so;
  * TLS over a unix socket: a TLS scheduler on a unix path, a worker that
    verifies it under the name "localhost" (the authority of a unix
    target), a python TLS client on the same socket;
  * every role exits 0 on SIGTERM and removes its socket file.
"""

import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import B, COMPLETED, check, eq, follow, grpc, log, pb, pb_grpc, submit  # noqa: E402

import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

roles = []
tmp = None


def path(name):
    return os.path.join(tmp, name)


def orchd(*args, timeout=30):
    """Runs `orchd ARGS`; returns (exit code, stdout + stderr)."""
    p = subprocess.run([os.path.join(B, "orchd")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace")


def run_echo(stub, payload):
    acc = submit(stub, name="echo", payload=payload)
    last = follow(stub, acc.task_id, timeout=30)[-1]
    eq(last.status, COMPLETED, "status of %s" % acc.task_id)
    eq(last.result.output, payload, "echo output")


def health_serving(ch, what):
    r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    eq(r.status, health_pb2.HealthCheckResponse.SERVING, "health of %s" % what)


def is_socket(p):
    st = os.lstat(p)
    return stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660


def cluster_over_unix():
    sched = cluster.Role.scheduler(path("data"), listen="unix:" + path("s.sock"))
    roles.append(sched)
    check(is_socket(path("s.sock")), "s.sock is not a socket of mode 0660")
    check("event=listening addr=unix:%s port=0" % path("s.sock") in sched.log(),
          "scheduler's listening line: %s", sched.tail(5))
    eq(sched.port, 0, "PORT of a unix listener")
    worker = cluster.Role.worker("unix://" + path("s.sock"), "--worker-id", "w-unix",
                                 listen="unix:" + path("w.sock"))
    roles.append(worker)
    gw = cluster.Role.gateway("unix:" + path("s.sock"), listen="unix:" + path("g.sock"))
    roles.append(gw)
    stub = gw.stub()  # grpcio on the unix: target
    cluster.poll(lambda: cluster.workers_if_up(stub) == ["w-unix"], 20, "worker registered")
    run_echo(stub, b"over a unix socket")
    health_serving(gw.channel(), "the gateway")

    rc, out = orchd("health", worker.addr())
    eq(rc, 0, "orchd health on the worker's socket: " + out)
    check("SERVING" in out, "orchd health output: %s", out)
    rc, out = orchd("submit", "echo", "--payload", "cli", "--gateway", gw.addr(), "--wait")
    eq(rc, 0, "orchd submit --wait over the gateway's socket: " + out)
    check("cli" in out, "submit output: %s", out)
    log("PASS a cluster over unix sockets, grpcio and the CLI as clients")
    return sched, worker, gw, stub


def abstract_worker(sched):
    name = "orchd-test-%d" % os.getpid()
    w = cluster.Role.worker(sched.addr(), "--worker-id", "w-abstract",
                            listen="unix-abstract:" + name)
    roles.append(w)
    health_serving(w.channel(), "the worker on unix-abstract:" + name)
    eq(w.stop(), 0, "abstract worker's exit")
    log("PASS unix-abstract listener")


def live_socket_kept(sched):
    rc, out = orchd("scheduler", "--listen", sched.addr(), "--data-dir", path("data2"))
    check(rc not in (0, 2), "second scheduler on a live socket exited %d: %s", rc, out)
    check("Address already in use" in out, "second scheduler's message: %s", out)
    check(is_socket(path("s.sock")), "live socket file gone")
    health_serving(sched.channel(), "the first scheduler")
    log("PASS a live socket is not taken over")


def stale_socket_reused(sched, stub):
    sched.kill9()
    check(os.path.exists(path("s.sock")), "kill -9 should leave the socket file behind")
    sched.restart()
    cluster.poll(lambda: cluster.workers_if_up(stub) == ["w-unix"], 20, "worker back")
    run_echo(stub, b"after a restart on a stale socket")
    log("PASS a stale socket file is replaced")


def bad_paths():
    f = path("not-a-socket")
    with open(f, "w") as fh:
        fh.write("keep me\n")
    rc, out = orchd("scheduler", "--listen", "unix:" + f, "--data-dir", path("data3"))
    check(rc not in (0, 2), "scheduler on a regular file exited %d: %s", rc, out)
    check("not a socket" in out, "message for a regular file: %s", out)
    with open(f) as fh:
        eq(fh.read(), "keep me\n", "the regular file's content")
    long_path = "unix:/" + "x" * 120
    for argv, want in (
            (["scheduler", "--listen", long_path, "--data-dir", path("data4")], "too long"),
            (["gateway", "--listen", "127.0.0.1:0", "--scheduler", long_path], "too long"),
            (["health", long_path], "too long"),
            (["scheduler", "--listen", "unix:", "--data-dir", path("data5")], "unix:PATH")):
        rc, out = orchd(*argv)
        eq(rc, 2, "exit of orchd %s: %s" % (" ".join(argv), out))
        check(want in out, "message of orchd %s: %s", " ".join(argv), out)
    log("PASS a regular file is left alone; bad unix addresses are usage errors")


def tls_over_unix():
    d = path("certs")
    subprocess.run(["sh", os.path.join(ROOT, "scripts", "gen-dev-certs.sh"), d], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ca, cert, key = (os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))
    sched = cluster.Role.scheduler(path("tls-data"), "--tls-cert", cert, "--tls-key", key,
                                   listen="unix:" + path("tls.sock"))
    roles.append(sched)
    w = cluster.Role.worker(sched.addr(), "--worker-id", "w-tls", "--tls-ca", ca,
                            listen="unix:" + path("w-tls.sock"))
    roles.append(w)
    with open(ca, "rb") as fh:
        creds = grpc.ssl_channel_credentials(root_certificates=fh.read())
    ch = grpc.secure_channel(sched.addr(), creds)
    sched.channels.append(ch)
    stub = pb_grpc.SchedulerStub(ch)
    cluster.poll(lambda: cluster.workers_if_up(stub) == ["w-tls"], 20, "TLS worker registered")
    cluster.stop_all([w, sched])
    for p in ("tls.sock", "w-tls.sock"):
        check(not os.path.exists(path(p)), "%s left behind", p)
    log("PASS TLS over a unix socket (verified as localhost)")


def main():
    global tmp
    tmp = harness.tempdir()
    sched, worker, gw, stub = cluster_over_unix()
    abstract_worker(sched)
    live_socket_kept(sched)
    stale_socket_reused(sched, stub)
    bad_paths()
    tls_over_unix()
    cluster.stop_all([gw, worker, sched])
    for p in ("s.sock", "w.sock", "g.sock"):
        check(not os.path.exists(path(p)), "%s left behind after SIGTERM", p)
    log("PASS roles remove their socket files on SIGTERM")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
