#!/bin/bash
# bench/syscalls.sh: the system calls and instructions per task of the
# scaling section's worker shapes (docs/performance.md, "Scaling: no
# throughput cliff"): 2 workers x 40 slots against 20 workers x 4 slots.
# Counts are what a run costs, unlike wall-clock rates, which this shared
# machine makes noisy. Not run by `make bench` (a few minutes).
#
# For each shape: a fresh cluster (bench/cluster.sh), a 2,000-task warm-up,
# then TASKS noop tasks with CONC in flight while `perf stat` counts the
# system calls of the scheduler, of all workers together and of the
# gateway, natively, through the syscalls tracepoints; with STRACE=1 one
# more run counts the scheduler's calls by name with `strace -c -f` (which
# slows it, so more tasks share each call). With CALLGRIND=1 a
# second cluster per shape runs its scheduler under callgrind, and
# the instructions per task are printed too (counters zeroed after the
# warm-up, dumped after the run, with callgrind_control). Everything started is stopped
# by PID.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${PYTHON:=/usr/bin/python3}"
: "${TASKS:=20000}"
: "${CONC:=64}"
: "${SHAPES:=2x40 20x4}"
: "${CALLGRIND:=0}"
: "${STRACE:=0}"
O=$B/orchd
[ -x "$O" ] || { echo "syscalls: $O missing; run make" >&2; exit 1; }
command -v perf >/dev/null || { echo "syscalls: perf missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-syscalls.XXXXXX")
# shellcheck source=bench/cluster.sh
. bench/cluster.sh
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
results=$work/runs.jsonl

calls="read readv recvfrom write writev sendto sendmsg ioctl fcntl epoll_wait epoll_ctl pwrite64 pread64 fdatasync futex"
events=raw_syscalls:sys_enter
for s in $calls; do events="$events,syscalls:sys_enter_$s"; done

# counted NAME PIDS...: starts `perf stat` on PIDS (comma list), output in
# $work/NAME.perf; sets $spawned.
counted() {
	spawn "$1.perfrun" perf stat -x, -e "$events" -p "$2" -o "$work/$1.perf"
}

# usersys PIDS (comma list): user and system CPU ticks the processes used
# so far, summed.
usersys() {
	local p u=0 s=0 a b
	for p in ${1//,/ }; do
		read -r a b < <(awk '{ print $14, $15 }' "/proc/$p/stat")
		u=$((u + a)) s=$((s + b))
	done
	echo "$u $s"
}

# per_task NAME CPU_BEFORE CPU_AFTER: one line of counts per task from
# $work/NAME.perf, with the user and system CPU time per task.
per_task() {
	"$PYTHON" - "$work/$1.perf" "$TASKS" "$1" "$2" "$3" <<'EOF'
import os, sys
n = int(sys.argv[2])
c = {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        c[f[2].split(":")[-1].replace("sys_enter_", "")] = float(f[0])
tot = c.pop("sys_enter", 0)
us = 1e6 / os.sysconf("SC_CLK_TCK") / n
d = [int(b) - int(a) for a, b in zip(sys.argv[4].split(), sys.argv[5].split())]
print("  %-8s CPU us/task user %4.1f sys %4.1f; syscalls/task all %5.2f  " % (
      sys.argv[3], d[0] * us, d[1] * us, tot / n) +
      " ".join("%s %.2f" % (k, v / n) for k, v in c.items() if v >= 0.005))
EOF
}

for shape in $SHAPES; do
	nw=${shape%x*} slots=${shape#*x}
	echo "$shape: $nw workers x $slots slots, $TASKS tasks, $CONC in flight"
	cluster_start "$nw" "$slots"
	read -r -a cp <<<"$cluster_pids"
	sched=${cp[0]} gw=${cp[-1]} wk=$(IFS=,; echo "${cp[*]:1:nw}")
	bench_run "$gp" '{"warmup": 1}' --tasks 2000 --concurrency "$CONC" >/dev/null
	counted sched "$sched"
	ps=$spawned
	counted workers "$wk"
	pw=$spawned
	counted gateway "$gw"
	pg=$spawned
	sleep 0.5 # perf attaches asynchronously; nothing to wait on
	c0s=$(usersys "$sched") c0w=$(usersys "$wk") c0g=$(usersys "$gw")
	bench_run "$gp" "{\"shape\": \"$shape\"}" --tasks "$TASKS" --concurrency "$CONC"
	c1s=$(usersys "$sched") c1w=$(usersys "$wk") c1g=$(usersys "$gw")
	for p in $ps $pw $pg; do kill -INT "$p"; wait "$p" 2>/dev/null || true; done
	per_task sched "$c0s" "$c1s"
	per_task workers "$c0w" "$c1w"
	per_task gateway "$c0g" "$c1g"
	if [ "$STRACE" = 1 ]; then
		spawn sched.strace strace -c -f -p "$sched" -o "$work/sched.strace"
		ps=$spawned
		sleep 0.5
		bench_run "$gp" "{\"shape\": \"$shape\", \"strace\": 1}" --tasks "$TASKS" --concurrency "$CONC"
		kill -INT "$ps"
		wait "$ps" 2>/dev/null || true
		echo "  scheduler under strace -c -f, calls per task:"
		awk -v n="$TASKS" '$4 ~ /^[0-9]+$/ && $NF != "total" { printf "    %-16s %6.3f\n", $NF, $4 / n }' \
			"$work/sched.strace" | head -n 12
	fi
	cluster_stop "$cluster" "$cluster_pids"

	[ "$CALLGRIND" = 1 ] || continue
	# The scheduler under callgrind, the other roles native: this
	# cluster's $O is a wrapper that picks by role.
	cat >"$work/orchd-vg" <<-EOF
	#!/bin/sh
	[ "\$1" = scheduler ] && exec valgrind --tool=callgrind --callgrind-out-file='$work/cg.%p' '$O' "\$@"
	exec '$O' "\$@"
	EOF
	chmod +x "$work/orchd-vg"
	o_native=$O O=$work/orchd-vg
	cluster_start "$nw" "$slots"
	O=$o_native
	read -r sched _ <<<"$cluster_pids"
	TIME_LIMIT=500s RUN_TIMEOUT=600 bench_run "$gp" '{"warmup": 1}' --tasks 1000 --concurrency "$CONC" >/dev/null
	callgrind_control -z "$sched" >/dev/null
	TIME_LIMIT=500s RUN_TIMEOUT=600 bench_run "$gp" "{\"shape\": \"$shape\", \"callgrind\": 1}" \
		--tasks "$TASKS" --concurrency "$CONC"
	callgrind_control -d "$sched" >/dev/null
	ir=$(sed -n 's/^summary: //p' "$work/cg.$sched.1" | awk '{ s += $1 } END { printf "%.0f", s }')
	echo "  scheduler instructions per task (callgrind): $((ir / TASKS))"
	cluster_stop "$cluster" "$cluster_pids"
	rm -f "$work"/cg.*
done
