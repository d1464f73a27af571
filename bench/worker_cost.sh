#!/bin/bash
# bench/worker_cost.sh: instructions the worker role spends per task,
# counted by valgrind's callgrind. Not run by `make bench`;
# docs/performance.md records its output.
#
# A scheduler and a gateway run natively, one worker (--slots SLOTS) under
# callgrind, and `orchd bench` runs SMALL tasks in one cluster and LARGE in
# another (CONCURRENCY in flight, task name NAME): the difference in the
# worker's total instructions over LARGE - SMALL is the cost of one task, without
# start-up, registration and shutdown. The callgrind files stay in
# $B/bench/worker_cost.N.cg for callgrind_annotate.
#
#   B=build bench/worker_cost.sh [SMALL [LARGE [NAME]]]   # 2000 7000 noop
#   SLOTS=256 CONCURRENCY=512 B=build bench/worker_cost.sh  # a wider worker
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
SMALL=${1:-2000} LARGE=${2:-7000} NAME=${3:-noop}
: "${SLOTS:=16}" "${CONCURRENCY:=64}"
command -v valgrind >/dev/null || { echo "worker_cost: valgrind missing" >&2; exit 1; }
mkdir -p "$B/bench"
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-wcost.XXXXXX")
# shellcheck source=bench/e2e/lib.sh
. bench/e2e/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP PIPE

# count N: writes the worker's total instructions for a run of N tasks to
# $work/total.N. Not in a command substitution: a failure must leave its
# processes to the EXIT trap above.
count() {
	local n=$1 sp gp
	rm -rf "$work/data" "$work"/*.out "$B/bench/worker_cost.$n.cg"
	spawn sched "$B/orchd" scheduler --listen 127.0.0.1:0 --data-dir "$work/data" \
		--log-level warn
	local spid=$spawned
	sp=$(orchd_port sched)
	spawn gw "$B/orchd" gateway --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" \
		--log-level warn
	local gpid=$spawned
	gp=$(orchd_port gw)
	spawn worker valgrind --tool=callgrind --callgrind-out-file="$B/bench/worker_cost.$n.cg" "$B/orchd" worker \
		--listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" --slots "$SLOTS" --log-level warn
	local wpid=$spawned
	# Tasks wait in the scheduler's queue until the worker registers.
	timeout 600 "$B/orchd" bench --gateway "127.0.0.1:$gp" --tasks "$n" --concurrency "$CONCURRENCY" \
		--name "$NAME" --no-start --json >"$work/bench.out" ||
		{ echo "worker_cost: bench failed" >&2; cat "$work/bench.out" >&2; exit 1; }
	grep -q "\"completed\": *$n\b" "$work/bench.out" ||
		{ echo "worker_cost: not all completed: $(cat "$work/bench.out")" >&2; exit 1; }
	stop_pid "$wpid"
	stop_pid "$gpid"
	stop_pid "$spid"
	awk '/^totals:/{print $2}' "$B/bench/worker_cost.$n.cg" >"$work/total.$n"
}

count "$SMALL"
count "$LARGE"
a=$(cat "$work/total.$SMALL") b=$(cat "$work/total.$LARGE")
awk -v a="$a" -v b="$b" -v s="$SMALL" -v l="$LARGE" -v name="$NAME" -v slots="$SLOTS" 'BEGIN {
	printf "worker %s, %d slots: %d tasks %d, %d tasks %d: %.0f instructions/task\n",
		name, slots, s, a, l, b, (b - a) / (l - s) }'
