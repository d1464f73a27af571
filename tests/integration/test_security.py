#!/usr/bin/python3
"""Security and limits of real roles on 127.0.0.1, driven with python3-grpcio.

Certificates come from scripts/gen-dev-certs.sh (twice: our CA, and a
stranger's CA whose certificates must be refused). Checks:
  * TLS cluster: a gateway serving TLS (a python client trusting only our
    CA submits a task and sees it COMPLETED), a scheduler with mutual TLS,
    a worker connecting to it with its certificate;
  * the handshake refuses: a worker without a client certificate, and one
    whose certificate another CA signed (each logs the TLS failure, the
    scheduler logs it too, and neither ever gets a task); a plaintext client
    on a TLS port (UNAVAILABLE, and the gateway logs tls_failed);
  * bearer tokens: none, a wrong one, a malformed header -> UNAUTHENTICATED;
    the right one -> OK; a worker with a wrong token is refused
    (UNAUTHENTICATED) and gets no task; a gateway whose own (first) token
    the scheduler does not know has its forwarded calls refused; health and
    reflection stay open, and need the token with --auth-health;
  * SIGHUP re-reads a role's token file: a new token refused before is
    accepted after, a removed one refused, and the token the gateway
    presents upstream changes too; a malformed, empty or missing file keeps
    the tokens (logged, the role lives on); without a token file SIGHUP is
    logged and changes nothing;
  * no token ever appears in any role's log;
  * exec handlers: the environment is clean (PATH, ORCHD_TASK_ID,
    ORCHD_TASK_NAME and what --handler-env names; the worker's own
    variables, secrets included, are not passed), and --handler-rlimit-as
    / --handler-rlimit-cpu are set in the child;
  * limits: label count, key and value size -> INVALID_ARGUMENT (at the
    gateway and, bypassing it, at the scheduler); --max-active ->
    RESOURCE_EXHAUSTED; --max-recv-msg -> RESOURCE_EXHAUSTED;
    --max-subscribers-per-task -> RESOURCE_EXHAUSTED for that task only;
    --max-conns (a connection past it is closed; one frees, the next is
    served); --max-streams (advertised as SETTINGS_MAX_CONCURRENT_STREAMS);
  * `orchd dev --tls --auth-token-file`: certificates made in the data
    directory, a task completes over TLS with the token, exit 0 on SIGTERM;
  * every role exits 0 on SIGTERM, and no log has a sanitizer report.

Every wait polls for its condition with a deadline. Exit 0: pass.
"""

import os
import selectors
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
from cluster import COMPLETED, PENDING, SC, Role, check, code_of, eq, pb, poll  # noqa: E402

import grpc  # noqa: E402
import h2raw  # noqa: E402
import harness  # noqa: E402
from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
INTERNAL = "orchd-internal-5f2a9c7d"  # roles present it to the scheduler
CLIENT = "client-tok-93be1d04"        # clients present it to the gateway
WRONG = "not-a-token-1234"
ROTATED = "rotated-tok-7c41e0aa"      # replaces CLIENT in a reloaded file
SECRETS = (INTERNAL, CLIENT, WRONG, ROTATED)

roles = []
tmp = None


def log(fmt, *args):
    sys.stdout.write((fmt % args if args else fmt) + "\n")
    sys.stdout.flush()


def start(role, flags, sched=None, env=None):
    """Starts a role (appended to roles); env: variables set for it only."""
    saved = {}
    for k, v in (env or {}).items():
        saved[k] = os.environ.get(k)
        os.environ[k] = v
    try:
        if role == "scheduler":
            r = Role.scheduler(os.path.join(tmp, "data-%d" % len(roles)), *flags)
        elif role == "worker":
            r = Role.worker(sched.port, *flags)
        else:
            r = Role.gateway(sched.port, *flags)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    roles.append(r)
    return r


def write(name, text, mode=0o600):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def certs(name):
    d = os.path.join(tmp, name)
    subprocess.run(["sh", os.path.join(ROOT, "scripts", "gen-dev-certs.sh"), d], check=True)
    return {k: os.path.join(d, k) for k in ("ca.pem", "server.pem", "server.key",
                                            "client.pem", "client.key")}


def tls_channel(role, ca):
    with open(ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    ch = grpc.secure_channel(role.addr(), creds, options=[("grpc.use_local_subchannel_pool", 1)])
    role.channels.append(ch)
    return ch


def bearer(token):
    return (("authorization", "Bearer " + token),)


def follow_to_end(stub, task_id, md):
    ups = list(stub.SubscribeProgress(pb.ProgressRequest(task_id=task_id), timeout=30,
                                      metadata=md))
    cluster.check_stream(ups, task_id)
    return ups[-1]


def run_task(stub, md, **spec):
    acc = stub.SubmitTask(pb.TaskSpec(**spec), timeout=10, metadata=md)
    return follow_to_end(stub, acc.task_id, md)


# ---------------------------------------------------------------------------
# TLS, mutual TLS and tokens
# ---------------------------------------------------------------------------


def security(c, stranger):
    role_tokens = write("role-tokens", "# internal\n%s\n" % INTERNAL)
    gw_tokens = write("gw-tokens", "%s\n%s\n" % (INTERNAL, CLIENT))
    tls = ["--tls-cert", c["server.pem"], "--tls-key", c["server.key"], "--tls-ca", c["ca.pem"]]
    sched = start("scheduler", tls + ["--tls-client-ca", c["ca.pem"],
                                      "--auth-token-file", role_tokens])
    env_handler = ["--builtins", "echo", "--handler", "env=env",
                   "--handler", "limits=/bin/sh -c 'ulimit -v; ulimit -t'",
                   "--handler-env", "ORCHD_TEST_KEEP", "--handler-env", "ORCHD_TEST_SET=x=1",
                   "--handler-rlimit-as", "256M", "--handler-rlimit-cpu", "1500ms"]
    good = start("worker", tls + ["--auth-token-file", role_tokens, "--worker-id", "good"]
                 + env_handler, sched,
                 env={"ORCHD_TEST_SECRET": "must-not-leak", "ORCHD_TEST_KEEP": "kept"})
    # Refused at the handshake: no certificate; a stranger's certificate.
    # Both serve only `rogue`, so a task they got would show.
    rogue = ["--builtins", "none", "--handler", "rogue=true", "--auth-token-file", role_tokens]
    nocert = start("worker", ["--tls-ca", c["ca.pem"], "--worker-id", "nocert"] + rogue, sched)
    foreign = start("worker", ["--tls-cert", stranger["server.pem"], "--tls-key",
                               stranger["server.key"], "--tls-ca", c["ca.pem"],
                               "--worker-id", "foreign"] + rogue, sched)
    # Refused by token: the right certificate, a token the scheduler lacks.
    wrong_tokens = write("wrong-tokens", WRONG + "\n")
    badtok = start("worker", tls + ["--worker-id", "badtok", "--builtins", "none", "--handler",
                                    "rogue=true", "--auth-token-file", wrong_tokens], sched)
    gw = start("gateway", tls + ["--auth-token-file", gw_tokens], sched)
    tch = tls_channel(gw, c["ca.pem"])
    stub = pb_grpc.GatewayStub(tch)
    ok = bearer(CLIENT)

    log("tls: a task completes through a TLS gateway and an mTLS scheduler")
    poll(lambda: [w.worker_id for w in stub.ListWorkers(pb.ListWorkersRequest(), timeout=5,
                                                         metadata=ok).workers] == ["good"],
         20, "the good worker registered (and only it)")
    last = run_task(stub, ok, name="echo", payload=b"over tls")
    eq(last.status, COMPLETED, "echo over TLS")
    eq(last.result.output, b"over tls", "echo output")

    log("tls: refused workers log the failure and get nothing")
    rogue_id = stub.SubmitTask(pb.TaskSpec(name="rogue"), timeout=10, metadata=ok).task_id
    # The reason, as the worker can know it: the server's alert, or (when
    # its close resets the connection first) that the peer hung up mid-TLS.
    for w, why in ((nocert, ("certificate required", "client certificate")),
                   (foreign, ("unknown ca", "client certificate"))):
        poll(lambda: "event=tls_failed" in w.log() and "register_failed" in w.log(), 20,
             "%s logging its refusal" % w.flags[w.flags.index("--worker-id") + 1])
        text = w.log().lower()
        check(any(s in text for s in why),
              "worker log does not say why it was refused:\n%s", w.tail(10))
    poll(lambda: "register_failed" in badtok.log() and "UNAUTHENTICATED" in badtok.log(), 20,
         "the worker with a wrong token refused")
    check("event=tls_failed" in sched.log(), "scheduler did not log a TLS failure:\n%s",
          sched.tail(20))
    check("event=unauthenticated" in sched.log(), "scheduler did not log the bad token")
    t = stub.GetTask(pb.GetTaskRequest(task_id=rogue_id), timeout=5, metadata=ok)
    eq(t.status, PENDING, "task only refused workers serve")
    eq(t.worker_id, "", "task's worker")
    eq([w.worker_id for w in stub.ListWorkers(pb.ListWorkersRequest(), timeout=5,
                                              metadata=ok).workers], ["good"], "workers")

    log("tls: plaintext on a TLS port fails")
    code, _ = code_of(lambda: pb_grpc.GatewayStub(gw.channel()).HealthCheck(
        pb.HealthCheckRequest(), timeout=5))
    eq(code, SC.UNAVAILABLE, "plaintext call to a TLS gateway")
    poll(lambda: "event=tls_failed" in gw.log(), 10, "gateway logging the plaintext client")

    log("tokens: none, wrong or malformed -> UNAUTHENTICATED; right -> OK")
    spec = pb.TaskSpec(name="echo", payload=b"t")
    for md, what in (((), "no token"), (bearer(WRONG), "wrong token"),
                     ((("authorization", "Basic " + CLIENT),), "not Bearer"),
                     ((("authorization", CLIENT),), "no scheme")):
        code, details = code_of(lambda: stub.SubmitTask(spec, timeout=5, metadata=md))
        eq(code, SC.UNAUTHENTICATED, "SubmitTask with %s" % what)
        check(CLIENT not in (details or "") and WRONG not in (details or ""),
              "the answer repeats a token: %r", details)
        code, _ = code_of(lambda: stub.GetTask(pb.GetTaskRequest(task_id=rogue_id), timeout=5,
                                               metadata=md))
        eq(code, SC.UNAUTHENTICATED, "GetTask with %s" % what)
    code, _ = code_of(lambda: list(stub.SubscribeProgress(
        pb.ProgressRequest(task_id=rogue_id), timeout=5)))
    eq(code, SC.UNAUTHENTICATED, "SubscribeProgress without a token")
    code, _ = code_of(lambda: tch.unary_unary("/orchestrator.v1.Gateway/Nope")(b"", timeout=5))
    eq(code, SC.UNAUTHENTICATED, "an unknown method without a token (nothing is revealed)")
    stub.SubmitTask(spec, timeout=5, metadata=(("authorization", "bearer  " + CLIENT),))

    log("tokens: health and reflection are open")
    health = health_pb2_grpc.HealthStub(tch)
    eq(health.Check(health_pb2.HealthCheckRequest(), timeout=5).status,
       health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 without a token")
    stub.HealthCheck(pb.HealthCheckRequest(), timeout=5)
    refl = reflection_pb2_grpc.ServerReflectionStub(tch)
    answers = list(refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    eq(len(answers), 1, "reflection answers without a token")

    log("tokens: a gateway whose own token the scheduler lacks is refused upstream")
    gw2 = start("gateway", tls + ["--auth-token-file", write("gw2-tokens", CLIENT + "\n")],
                sched)
    stub2 = pb_grpc.GatewayStub(tls_channel(gw2, c["ca.pem"]))
    code, details = code_of(lambda: stub2.SubmitTask(spec, timeout=10, metadata=ok))
    eq(code, SC.UNAUTHENTICATED, "SubmitTask through a gateway the scheduler refuses")

    log("tokens: --auth-health closes health and reflection too")
    gw3 = start("gateway", tls + ["--auth-token-file", gw_tokens, "--auth-health"], sched)
    ch3 = tls_channel(gw3, c["ca.pem"])
    h3 = health_pb2_grpc.HealthStub(ch3)
    code, _ = code_of(lambda: h3.Check(health_pb2.HealthCheckRequest(), timeout=5))
    eq(code, SC.UNAUTHENTICATED, "grpc.health.v1 without a token, --auth-health")
    code, _ = code_of(lambda: pb_grpc.GatewayStub(ch3).HealthCheck(pb.HealthCheckRequest(),
                                                                     timeout=5))
    eq(code, SC.UNAUTHENTICATED, "Gateway/HealthCheck without a token, --auth-health")
    eq(h3.Check(health_pb2.HealthCheckRequest(), timeout=5, metadata=ok).status,
       health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 with a token, --auth-health")

    reload_tokens(gw2, stub2, spec, ok, rogue_id)

    log("handlers: a clean environment and the limits")
    last = run_task(stub, ok, name="env")
    eq(last.status, COMPLETED, "env task")
    lines = last.result.output.decode().splitlines()
    names = sorted(line.split("=", 1)[0] for line in lines)
    eq(names, ["ORCHD_TASK_ID", "ORCHD_TASK_NAME", "ORCHD_TEST_KEEP", "ORCHD_TEST_SET", "PATH"],
       "variables an exec handler sees")
    check("ORCHD_TEST_KEEP=kept" in lines and "ORCHD_TEST_SET=x=1" in lines,
          "named variables: %r", lines)
    check("ORCHD_TASK_ID=%s" % last.task_id in lines, "ORCHD_TASK_ID: %r", lines)
    last = run_task(stub, ok, name="limits")
    eq(last.status, COMPLETED, "limits task")
    eq(last.result.output, b"262144\n2\n", "ulimit -v (KiB) and -t (s) in the child")

    log("logs: no token anywhere")
    for r in roles:
        text = r.log()
        for s in SECRETS:
            check(s not in text, "%s's log contains a token", r.role)
    return [gw, gw2, gw3, good, nocert, foreign, badtok, sched]


def reload_tokens(gw2, stub2, spec, ok, rogue_id):
    """SIGHUP re-reads gw2's token file: the tokens it accepts and the one it
    presents to the scheduler (which lacks gw2's first token so far). A file
    that does not load keeps the tokens."""
    log("tokens: SIGHUP re-reads the token file")
    rotated = bearer(ROTATED)

    def get(md):
        return stub2.GetTask(pb.GetTaskRequest(task_id=rogue_id), timeout=5, metadata=md)

    code, _ = code_of(lambda: get(rotated))
    eq(code, SC.UNAUTHENTICATED, "a token not (yet) in the gateway's file")
    path = write("gw2-tokens", "# rotated\n%s\n%s\n" % (INTERNAL, ROTATED))
    gw2.proc.send_signal(signal.SIGHUP)

    def submit_rotated():
        """The accepted answer, or None while the reload has not happened
        (gw2 refuses ROTATED, or the scheduler gw2's old token)."""
        try:
            return stub2.SubmitTask(spec, timeout=5, metadata=rotated)
        except grpc.RpcError as e:
            if e.code() != SC.UNAUTHENTICATED:
                raise
            return None

    poll(submit_rotated, 15, "a submit with the new token through gw2 after SIGHUP")
    get(rotated)
    code, _ = code_of(lambda: get(ok))
    eq(code, SC.UNAUTHENTICATED, "the token removed from the file, after SIGHUP")
    lines = [x for x in gw2.log().splitlines() if "event=tokens_reloaded" in x]
    check(len(lines) == 1 and "tokens=2" in lines[0], "reload logged with 2 tokens: %r", lines)

    for why in ("a malformed line", "no token", "a missing file"):
        if why == "a missing file":
            os.remove(path)
        else:
            write("gw2-tokens", "%s\nhas a blank\n" % CLIENT if why == "a malformed line"
                  else "# nothing\n")
        n = gw2.log().count("event=tokens_reload_failed")
        gw2.proc.send_signal(signal.SIGHUP)
        poll(lambda: gw2.log().count("event=tokens_reload_failed") > n, 15,
             "the failed reload (%s) logged" % why)
        check(gw2.proc.poll() is None, "gw2 died on a reload with %s", why)
        last = [x for x in gw2.log().splitlines() if "event=tokens_reload_failed" in x][-1]
        check("tokens_kept=2" in last, "the failed reload keeps the 2 tokens: %r", last)
        stub2.SubmitTask(spec, timeout=5, metadata=rotated)
        code, _ = code_of(lambda: get(ok))
        eq(code, SC.UNAUTHENTICATED, "CLIENT after a reload with %s" % why)


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def limits():
    sched = start("scheduler", ["--max-active", "4"])
    gw = start("gateway", ["--max-subscribers-per-task", "2", "--max-recv-msg", "100K",
                           "--max-payload", "1M"], sched)
    stub = gw.stub()
    sstub = sched.stub()

    log("tokens: SIGHUP without --auth-token-file changes nothing")
    sched.proc.send_signal(signal.SIGHUP)
    poll(lambda: "event=tokens_reload_skipped" in sched.log(), 15, "the skipped reload logged")
    check(sched.proc.poll() is None, "the scheduler died on SIGHUP")
    sstub.HealthCheck(pb.HealthCheckRequest(), timeout=5)

    log("limits: labels")
    for labels, word in (({"k%d" % i: "v" for i in range(65)}, "65 labels"),
                         ({"k" * 129: "v"}, "129 bytes"),
                         ({"k": "v" * 1025}, "1025 bytes"),
                         ({"": "v"}, "empty key")):
        for s, via in ((stub, "gateway"), (sstub, "scheduler")):
            code, details = code_of(lambda: s.SubmitTask(pb.TaskSpec(name="nobody",
                                                                      labels=labels),
                                                         timeout=5))
            eq(code, SC.INVALID_ARGUMENT, "%s via the %s" % (word, via))
            check(word in (details or ""), "message %r does not say %s", details, word)
    big = {("k%02d" % i) + "x" * 125: "v" * 1024 for i in range(64)}
    first = stub.SubmitTask(pb.TaskSpec(name="nobody", labels=big), timeout=5).task_id
    eq(len(stub.GetTask(pb.GetTaskRequest(task_id=first), timeout=5).spec.labels), 64,
       "labels kept at the limit")

    log("limits: --max-recv-msg")
    code, _ = code_of(lambda: stub.SubmitTask(pb.TaskSpec(name="nobody",
                                                          payload=b"x" * 110000), timeout=5))
    eq(code, SC.RESOURCE_EXHAUSTED, "a 110K message past --max-recv-msg 100K")

    log("limits: --max-subscribers-per-task")
    other = stub.SubmitTask(pb.TaskSpec(name="nobody"), timeout=5).task_id
    subs = []
    for _ in range(2):
        it = stub.SubscribeProgress(pb.ProgressRequest(task_id=first), timeout=30)
        eq(next(it).status, PENDING, "first update of a subscriber")
        subs.append(it)
    it3 = stub.SubscribeProgress(pb.ProgressRequest(task_id=first), timeout=10)
    code, details = code_of(lambda: next(it3))
    eq(code, SC.RESOURCE_EXHAUSTED, "third subscriber of one task")
    check("--max-subscribers-per-task" in (details or ""), "message %r", details)
    it = stub.SubscribeProgress(pb.ProgressRequest(task_id=other), timeout=30)
    eq(next(it).status, PENDING, "a subscriber of another task")
    subs.append(it)
    subs.pop(0).cancel()

    def third_ok():
        try:
            s = stub.SubscribeProgress(pb.ProgressRequest(task_id=first), timeout=10)
            next(s)
            subs.append(s)
            return True
        except grpc.RpcError as e:
            check(e.code() == SC.RESOURCE_EXHAUSTED, "unexpected %s", e.code())
            return False
    poll(third_ok, 10, "a subscriber taking a freed place", interval=0.1)
    for s in subs:
        s.cancel()

    log("limits: --max-active")
    stub.SubmitTask(pb.TaskSpec(name="nobody"), timeout=5)
    stub.SubmitTask(pb.TaskSpec(name="nobody"), timeout=5)
    code, details = code_of(lambda: stub.SubmitTask(pb.TaskSpec(name="nobody"), timeout=5))
    eq(code, SC.RESOURCE_EXHAUSTED, "fifth active task with --max-active 4")
    check("limit 4" in (details or ""), "message %r", details)

    log("limits: --max-conns and --max-streams")
    gw2 = start("gateway", ["--max-conns", "2", "--max-streams", "7"], sched)
    held = []

    def try_conn(timeout):
        """A new raw HTTP/2 connection: served (kept in held) or refused."""
        c = h2raw.Conn(gw2.port)
        try:
            c.handshake(timeout=timeout)
            held.append(c)
            return True
        except (h2raw.Timeout, OSError):
            c.close()
            return False
    # Two served (a connection just closed may still count for a moment).
    poll(lambda: try_conn(2) and len(held) == 2, 10, "two connections served")
    eq(held[0].server_settings.get(h2raw.SETTINGS_MAX_CONCURRENT_STREAMS), 7,
       "SETTINGS_MAX_CONCURRENT_STREAMS with --max-streams 7")
    over = h2raw.Conn(gw2.port)
    try:
        over.wait_eof(timeout=5)
    except OSError:
        pass  # reset before our preface was even read: refused too
    check(not over.settings_seen, "a third connection was served with --max-conns 2")
    over.close()
    poll(lambda: "reason=max_conns" in gw2.log(), 5, "the refusal logged")
    held.pop(0).close()
    poll(lambda: try_conn(2), 10, "a connection served once one of two closed", interval=0.1)
    for c in held:
        c.close()
    return [gw2, gw, sched]


# ---------------------------------------------------------------------------
# orchd dev --tls
# ---------------------------------------------------------------------------


def read_lines(proc, want, timeout=30):
    """Reads proc's stdout until every key of want (line prefixes) has a
    line; returns {prefix: rest of the line}."""
    got, buf = {}, b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while len(got) < len(want):
            left = deadline - time.monotonic()
            check(left > 0, "orchd dev printed no %s line", [w for w in want if w not in got])
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            check(chunk, "orchd dev exited (rc=%s)", proc.poll())
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                for w in want:
                    if line.decode().startswith(w + " "):
                        got[w] = line.decode()[len(w) + 1:].strip()
    return got


def dev_tls():
    log("dev: --tls --auth-token-file")
    data = os.path.join(tmp, "dev-data")
    tokens = write("dev-tokens", CLIENT + "\n")
    logpath = os.path.join(tmp, "dev.log")
    with open(logpath, "wb") as err:
        proc = harness.start([os.path.join(cluster.B, "orchd"), "dev", "--tls",
                              "--auth-token-file", tokens, "--data-dir", data, "--workers", "1",
                              "--gateway-port", "0", "--scheduler-port", "0", "--worker-port",
                              "0", "--log-level", "info"], stderr=err)
    try:
        got = read_lines(proc, ("GATEWAY", "TLS_CA"))
        eq(got["TLS_CA"], os.path.join(data, "tls", "ca.pem"), "CA of orchd dev --tls")
        with open(got["TLS_CA"], "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        with grpc.secure_channel(got["GATEWAY"], creds) as ch:
            stub = pb_grpc.GatewayStub(ch)
            code, _ = code_of(lambda: stub.SubmitTask(pb.TaskSpec(name="echo"), timeout=5))
            eq(code, SC.UNAUTHENTICATED, "orchd dev --auth-token-file without a token")
            last = run_task(stub, bearer(CLIENT), name="echo", payload=b"dev")
            eq(last.status, COMPLETED, "echo through orchd dev --tls")
        proc.send_signal(signal.SIGTERM)
        eq(proc.wait(30), 0, "orchd dev exit status on SIGTERM")
    finally:
        harness.stop(proc)
    with open(logpath, errors="replace") as f:
        text = f.read()
    check("tls=mutual" in text, "the dev scheduler does not use mutual TLS:\n%s", text[-2000:])
    check(CLIENT not in text, "orchd dev's log contains the token")
    for mark in cluster.SANITIZER_MARKS:
        check(mark not in text, "orchd dev's log has a sanitizer report:\n%s", text[-3000:])


def main():
    global tmp
    tmp = harness.tempdir("orchd-security.")
    c = certs("ca")
    stranger = certs("stranger")
    order = security(c, stranger)
    order += limits()
    cluster.stop_all(order)
    dev_tls()
    log("PASS")


if __name__ == "__main__":
    cluster.run(main, lambda: roles)
