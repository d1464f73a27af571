#!/bin/bash
# bench/e2e.sh: benchmark 3 of docs/performance.md, "End to end": orchd
# against gearmand and beanstalkd on the identical workload, side by side.
#
# Workload: TASKS (20,000) noop tasks from one client that keeps CONC (64)
# in flight -- a new task as soon as one finishes -- served by 4 workers x
# 16 slots (orchd: 4 `orchd worker --slots 16`; peers: 4 worker processes
# with 16 connections each). Timed from the first submit to the last
# completion the client sees; latency is submit->complete per task. Every
# client prints the same JSON (orchd bench --json; bench/e2e/*_client.c use
# the same lib/stats.c percentiles).
#
# Systems, run in this order each round (A B C ... A B C ...), ROUNDS
# rounds (default 3, at least 3), each run on fresh servers and data:
#   orchd               durable store on (its default: SQLite WAL,
#                       synchronous=NORMAL; survives a process crash);
#                       the client follows its tasks on one SubmitStream
#                       (orchd bench's default)
#   orchd two calls     the same, the client making a SubmitTask and a
#                       SubscribeProgress call per task (bench --calls)
#   gearmand            in-memory queue, foreground jobs via libgearman
#   beanstalkd          in memory
#   beanstalkd -b       binlog (fsync at most every 50 ms, its default)
#   orchd --fsync       fsync on every commit (survives power loss)
#   beanstalkd -b -f 0  binlog, fsync on every write
# SYSTEMS="orchd gearmand" (labels without spaces: orchd orchd-calls orchd-fsync
# gearmand beanstalkd beanstalkd-b beanstalkd-b-f0) picks a subset;
# orchd-spread (the scheduler with --dispatch spread) is there on request.
#
# Run by `make bench` (B=build by default; needs $B/orchd). Installs the
# peers from Debian packages when run as root, builds the peer clients and
# workers into $B/bench-e2e. ORCHD_UNIX=1 (opt-in) has orchd's roles reach
# the scheduler over a unix socket (the client still reaches the gateway
# over TCP). Every server listens on 127.0.0.1; everything
# started is stopped by PID; every run is bounded by `timeout`. Prints one
# line per system (medians, ratios to gearmand) and writes the runs to
# $B/bench/e2e.jsonl and the table to $B/bench/e2e.txt (and .md). Exits 1
# if a system failed to run; a missed target is reported, not an error.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${ROUNDS:=3}"
: "${TASKS:=20000}"
: "${CONC:=64}"
: "${PYTHON:=/usr/bin/python3}"
: "${SYSTEMS:=orchd orchd-calls gearmand beanstalkd beanstalkd-b orchd-fsync beanstalkd-b-f0}"
WORKERS=4
SLOTS=16
RUN_TIMEOUT=300 # seconds, any single client run
[ "$ROUNDS" -ge 3 ] || { echo "e2e: ROUNDS must be at least 3" >&2; exit 2; }
O=$B/orchd
[ -x "$O" ] || { echo "e2e: $O missing; run make" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
	scripts/install-deps.sh --all
fi
for t in gearmand beanstalkd; do
	command -v "$t" >/dev/null || { echo "e2e: $t missing (scripts/install-deps.sh --all)" >&2; exit 1; }
done

# The peers' clients and workers: small C programs, built here so that
# `make` never needs libgearman.
T=$B/bench-e2e
mkdir -p "$T" "$B/bench"
CFLAGS_E2E="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Ilib"
for p in gearman_client gearman_worker beanstalk_client beanstalk_worker; do
	libs=-lpthread
	case $p in gearman_*) libs="-lgearman -lpthread" ;; esac
	if [ ! -x "$T/$p" ] || [ -n "$(find bench/e2e/$p.c bench/e2e/common.[ch] lib/stats.[ch] -newer "$T/$p")" ]; then
		# shellcheck disable=SC2086
		cc $CFLAGS_E2E -o "$T/$p" "bench/e2e/$p.c" bench/e2e/common.c lib/stats.c lib/xalloc.c $libs
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-e2e.XXXXXX")
# shellcheck source=bench/e2e/lib.sh
. bench/e2e/lib.sh
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

results=$B/bench/e2e.jsonl
: >"$results"

TICK=$(getconf CLK_TCK)
# ticks PID...: CPU time (user + system) the processes used so far, in ticks.
ticks() {
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}
# child_ticks: CPU time of this shell's reaped children so far (`times`,
# run in this shell: in a $(...) subshell it would see none of them).
child_ticks() {
	times >"$work/times"
	tail -n 1 "$work/times" | "$PYTHON" -c 'import re, sys
f = [float(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.stdin.read())]
print(round(sum(f) * int(sys.argv[1])))' "$TICK"
}

# record LABEL ROUND FILE: appends the run's JSON with its label, round
# and the CPU seconds of servers, workers and client ($cpu_*).
record() {
	"$PYTHON" -c 'import json, sys
r = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
r["label"] = sys.argv[1]
r["round"] = int(sys.argv[2])
t = float(sys.argv[4])
r["cpu_server_s"], r["cpu_workers_s"], r["cpu_client_s"] = (int(x) / t for x in sys.argv[5:8])
print(json.dumps(r))' "$1" "$2" "$3" "$TICK" "$cpu_server" "$cpu_workers" "$cpu_client" >>"$results"
}

# client LABEL ROUND SERVER_PIDS WORKER_PIDS CMD...: runs a client under
# timeout; records its JSON and what the run cost each side in CPU.
client() {
	local label=$1 round=$2 spids=$3 wpids=$4 rc=0 s0 w0 c0
	shift 4
	child_ticks >"$work/c0"
	# shellcheck disable=SC2086 # PID lists split into words
	s0=$(ticks $spids) w0=$(ticks $wpids) c0=$(cat "$work/c0")
	timeout -k 5 "$RUN_TIMEOUT" "$@" >"$work/client.out" 2>"$work/client.err" </dev/null || rc=$?
	# shellcheck disable=SC2086 # PID lists split into words
	cpu_server=$(($(ticks $spids) - s0)) cpu_workers=$(($(ticks $wpids) - w0))
	child_ticks >"$work/c1"
	cpu_client=$(($(cat "$work/c1") - c0))
	if [ "$rc" -ne 0 ]; then
		echo "e2e: $label round $round: client exited $rc" >&2
		tail -n 20 "$work/client.err" >&2
		return 1
	fi
	record "$label" "$round" "$work/client.out"
	"$PYTHON" -c 'import json, sys
r = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
print("  %-20s %8.0f tasks/s  p50 %7.2f ms  p99 %7.2f ms  cpu/task: server %.0f us, workers %.0f us, client %.0f us" % (
    sys.argv[1], r["tasks_per_s"], r["p50_ms"], r["p99_ms"],
    *(int(x) / int(sys.argv[3]) / r["tasks"] * 1e6 for x in sys.argv[4:7])))' \
		"$label" "$work/client.out" "$TICK" "$cpu_server" "$cpu_workers" "$cpu_client"
}

run_orchd() { # ROUND LABEL SCHEDULER-FLAGS CLIENT-FLAGS (each flag list one word, may be empty)
	local round=$1 label=$2 sflags=$3 cflags=$4 sa gp i
	rm -rf "$work/data"
	# shellcheck disable=SC2086 # the flag lists are meant to split
	spawn scheduler "$O" scheduler --listen "$(sched_listen scheduler)" --data-dir "$work/data" \
		--log-level warn $sflags
	local spid=$spawned wpids=""
	sa=$(sched_addr scheduler) || { stop_all; return 1; }
	for i in $(seq "$WORKERS"); do
		spawn "worker$i" "$O" worker --listen 127.0.0.1:0 --scheduler "$sa" \
			--slots "$SLOTS" --worker-id "bench-$i" --log-level warn
		wpids="$wpids $spawned"
	done
	spawn gateway "$O" gateway --listen 127.0.0.1:0 --scheduler "$sa" --log-level warn
	local gpid=$spawned
	gp=$(orchd_port gateway) || { stop_all; return 1; }
	ORCHD=$O "$PYTHON" bench/e2e/ready.py orchd "$gp" "$WORKERS" || { stop_all; return 1; }
	local rc=0
	client "$label" "$round" "$spid $gpid" "$wpids" "$O" bench --gateway "127.0.0.1:$gp" --tasks "$TASKS" \
		--concurrency "$CONC" --name noop --json $cflags || rc=1
	stop_pid "$gpid"
	for i in $wpids; do stop_pid "$i"; done
	stop_pid "$spid"
	return $rc
}

run_gearmand() { # ROUND
	local port i rc=0 wpids=""
	port=$(free_port)
	spawn gearmand gearmand --listen 127.0.0.1 --port "$port" --log-file none \
		--pid-file "$work/gearmand.pid" --queue-type builtin
	local gpid=$spawned
	wait_tcp "$port" || { stop_all; return 1; }
	for i in $(seq "$WORKERS"); do
		spawn "gworker$i" "$T/gearman_worker" --port "$port" --connections "$SLOTS"
		wpids="$wpids $spawned"
	done
	"$PYTHON" bench/e2e/ready.py gearman "$port" $((WORKERS * SLOTS)) || { stop_all; return 1; }
	client gearmand "$1" "$gpid" "$wpids" "$T/gearman_client" --port "$port" --tasks "$TASKS" \
		--concurrency "$CONC" || rc=1
	for i in $wpids; do stop_pid "$i"; done
	stop_pid "$gpid"
	return $rc
}

run_beanstalkd() { # ROUND LABEL [ARGS...]
	local round=$1 label=$2 port i rc=0 wpids=""
	shift 2
	rm -rf "$work/binlog"
	mkdir -p "$work/binlog"
	port=$(free_port)
	spawn beanstalkd beanstalkd -l 127.0.0.1 -p "$port" "$@"
	local bpid=$spawned
	wait_tcp "$port" || { stop_all; return 1; }
	for i in $(seq "$WORKERS"); do
		spawn "bworker$i" "$T/beanstalk_worker" --port "$port" --connections "$SLOTS"
		wpids="$wpids $spawned"
	done
	"$PYTHON" bench/e2e/ready.py beanstalk "$port" $((WORKERS * SLOTS)) || { stop_all; return 1; }
	client "$label" "$round" "$bpid" "$wpids" "$T/beanstalk_client" --port "$port" --tasks "$TASKS" \
		--concurrency "$CONC" || rc=1
	for i in $wpids; do stop_pid "$i"; done
	stop_pid "$bpid"
	return $rc
}

echo "e2e: $TASKS noop tasks, $CONC in flight, $WORKERS workers x $SLOTS slots, $ROUNDS rounds"
echo "e2e: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
failed=0
for round in $(seq "$ROUNDS"); do
	echo "round $round"
	for s in $SYSTEMS; do
		case $s in
		orchd) run_orchd "$round" orchd "" "" || failed=1 ;;
		orchd-calls) run_orchd "$round" "orchd two calls" "" --calls || failed=1 ;;
		orchd-fsync) run_orchd "$round" "orchd --fsync" --fsync "" || failed=1 ;;
		orchd-spread) run_orchd "$round" "orchd --dispatch spread" "--dispatch spread" "" || failed=1 ;;
		gearmand) run_gearmand "$round" || failed=1 ;;
		beanstalkd) run_beanstalkd "$round" beanstalkd || failed=1 ;;
		beanstalkd-b) run_beanstalkd "$round" "beanstalkd -b" -b "$work/binlog" || failed=1 ;;
		beanstalkd-b-f0) run_beanstalkd "$round" "beanstalkd -b -f 0" -b "$work/binlog" -f 0 || failed=1 ;;
		*) echo "e2e: unknown system $s" >&2; exit 2 ;;
		esac
	done
done

echo
{
	echo "end to end: $TASKS noop tasks, $CONC in flight, $WORKERS workers x $SLOTS slots;" \
		"medians of $ROUNDS rounds"
	"$PYTHON" bench/e2e/summarize.py "$results"
} | tee "$B/bench/e2e.txt"
"$PYTHON" bench/e2e/summarize.py --markdown "$results" >"$B/bench/e2e.md"
exit $failed
