#!/usr/bin/python3
"""ready.py SYSTEM PORT N [TIMEOUT]: waits until N workers serve the
benchmark's jobs, so that no system's run starts before its workers.

  gearman    gearmand's admin "status": the noop function has N workers
  beanstalk  beanstalkd's "stats-tube jobs": current-watching is N
  orchd      the gateway's ListWorkers (via `orchd workers --json`): N
             workers, with $ORCHD pointing at the binary

Exits 0 when ready, 1 on timeout (default 20 s)."""
import json
import os
import socket
import subprocess
import sys
import time


def gearman(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"status\n")
        data = b""
        while not data.endswith(b".\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        f = line.split("\t")
        if len(f) == 4 and f[0] == "noop":
            return int(f[3])
    return 0


def beanstalk(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"stats-tube jobs\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n")
            if head.startswith(b"NOT_FOUND"):
                return 0
            if head.startswith(b"OK ") and len(rest) >= int(head.split()[1]):
                break
    for line in data.decode().splitlines():
        if line.startswith("current-watching:"):
            return int(line.split(":")[1])
    return 0


def orchd(port):
    out = subprocess.run([os.environ["ORCHD"], "workers", "--json", "--gateway",
                          "127.0.0.1:%d" % port, "--deadline", "2s"],
                         capture_output=True, timeout=10).stdout
    return len(json.loads(out or b"[]"))


def main():
    system, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    probe = {"gearman": gearman, "beanstalk": beanstalk, "orchd": orchd}[system]
    end = time.monotonic() + timeout
    have = 0
    while time.monotonic() < end:
        try:
            have = probe(port)
        except (OSError, ValueError, subprocess.SubprocessError):
            have = 0
        if have >= want:
            return 0
        time.sleep(0.1)
    print("%s on port %d: %d of %d workers ready after %gs" % (system, port, have, want, timeout),
          file=sys.stderr)
    return 1


sys.exit(main())
