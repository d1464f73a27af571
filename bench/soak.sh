#!/bin/bash
# bench/soak.sh: the soak test (not part of `make check`): SOAK_MINUTES (30)
# of mixed load on a real cluster whose workers are killed and restarted at
# random, ending with a check that nothing was lost or finished twice, and
# the scheduler's resident memory at the start and the end.
#
# The cluster, started like `orchd dev` but role by role so that workers can
# be killed (tests/integration/cluster.py does it): a scheduler
# (--dead-timeout 2s), a gateway and SOAK_WORKERS (4) workers with
# SOAK_SLOTS (8) slots each, serving the built-ins and an exec handler
# `cat`. Four clients submit SOAK_RATE (100) tasks/s through the gateway, of
# these kinds:
#   noop, echo (0-2 KiB), sha256, sleep (50-800 ms), cat (exec, 1-4 KiB),
#   large echo (200 KiB)        must end COMPLETED with the right output
#                               (max_attempts 10, so that the kills alone
#                               never exhaust them);
#   fail (max_attempts 2)       must end FAILED with its error;
#   timeout (sleep 3 s, timeout 300 ms, max_attempts 2)   must end FAILED;
#   cancel (sleep 10 s, cancelled 50 ms-1 s after submit) must end CANCELLED;
#   dup (an earlier echo's idempotency key again)  must return that task.
# 5% of tasks are followed on SubscribeProgress streams (each stream
# checked as the fault tests check them). Every 5-15 s one worker gets
# SIGKILL (70%) or SIGTERM (30%, --drain-timeout 2s) and is restarted
# 0.5-3 s later. The scheduler's VmRSS is sampled every 5 s.
#
# At the end the load stops, every worker is brought back, and once no task
# is PENDING or RUNNING the checks run: the store holds exactly the accepted
# tasks; each is final with the status (and output, or error) its kind
# calls for; the scheduler's log put each in a final state exactly once;
# the workers' logs started none more than its max_attempts; no call
# failed; no progress stream broke; every role exits 0 on SIGTERM with no
# sanitizer report. Prints a JSON summary (counts per kind and status,
# kills, tasks run again after a worker loss, RSS at start, after 1 min, at
# the end of the load, after the drain, max) and writes it with the RSS
# samples to $B/bench/soak.json. Exits 1 if a check failed (the role logs
# are then kept in $B/test-logs/soak.roles).
#
#   B=build SOAK_MINUTES=5 bench/soak.sh
#
# SOAK_SEED fixes the random choices. Everything listens on 127.0.0.1 on
# ephemeral ports; every process started is stopped by PID.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${PYTHON:=/usr/bin/python3}"
: "${SOAK_MINUTES:=30}"
export B PYTHON SOAK_MINUTES
[ -x "$B/orchd" ] || { echo "soak: $B/orchd missing; run make" >&2; exit 1; }
[ -f "$B/py/orchestrator/v1/orchestrator_pb2.py" ] || make -s B="$B" pygen
export PYTHONPATH="$B/py${PYTHONPATH:+:$PYTHONPATH}"

# Bounded: the load, plus up to 10 minutes to drain and check.
limit=$(awk -v m="$SOAK_MINUTES" 'BEGIN { printf "%d", m * 60 + 900 }')
exec timeout -k 10 "$limit" "$PYTHON" bench/soak/soak.py
