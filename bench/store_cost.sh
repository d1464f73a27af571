#!/bin/bash
# bench/store_cost.sh: what the SQLite store costs per task on the
# scheduler's hot path, with $B/store_cost (bench/store_cost.c: 5 puts, 5
# RUNNING updates and the previous turn's 5 COMPLETED updates per flush).
# Not run by `make bench`; docs/performance.md ("Store and scheduler hot
# path") records its output.
#
#   B=build bench/store_cost.sh [TASKS [WARMUP [PER_TURN [PAYLOAD_BYTES]]]]
#
# Instructions: callgrind counts only the measured TASKS, after WARMUP
# tasks (--toggle-collect), and prints per task the total, the store's
# share (store_put, store_update, store_flush) and sqlite3_step's. System calls: strace -c runs the driver twice, with and without
# the measured tasks, and prints the difference per task, so that opening
# and closing the store do not count.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
TASKS=${1:-5000}
WARMUP=${2:-1000}
PER_TURN=${3:-5}
PAYLOAD=${4:-32}
for tool in valgrind callgrind_annotate strace; do
	command -v "$tool" >/dev/null || { echo "store_cost: $tool missing" >&2; exit 1; }
done
[ -x "$B/store_cost" ] || { echo "store_cost: build $B/store_cost first (make)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-store-cost.XXXXXX")
trap 'rm -rf "$work"' EXIT

valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measured \
	--callgrind-out-file="$work/cg.out" \
	"$B/store_cost" "$work/cg" "$TASKS" "$WARMUP" "$PER_TURN" "$PAYLOAD" 2>"$work/cg.log" ||
	{ cat "$work/cg.log" >&2; exit 1; }
callgrind_annotate --inclusive=yes "$work/cg.out" >"$work/cg.txt"
# The store's own share leaves out the driver's making of tasks.
awk -v n="$TASKS" '
	function count() { gsub(",", "", $1); return $1 }
	/PROGRAM TOTALS/ { total = count() }
	/:sqlite3_step / && !step { step = count() }
	match($0, /store\.c:store_(put|update|flush) \[/) {
		f = substr($0, RSTART, RLENGTH)
		if (!seen[f]++)
			store += count()
	}
	END { printf "instructions/task %d: store %d (sqlite3_step %d)\n", total / n, store / n, step / n }
' "$work/cg.txt"

# syscalls RUN TASKS: strace -c's table for one run of the driver.
syscalls() {
	strace -f -c -o "$work/strace-$1" "$B/store_cost" "$work/st-$1" "$2" "$WARMUP" "$PER_TURN" "$PAYLOAD"
}
syscalls base 0
syscalls full "$TASKS"
awk -v n="$TASKS" '
	$NF ~ /^(fcntl|pwrite64|pread64|fsync|fdatasync|write|read|lseek)$/ {
		c[$NF] += FILENAME ~ /full$/ ? $4 : -$4 # % time, seconds, usecs/call, calls
	}
	END { for (k in c) printf "%s/task %.2f\n", k, c[k] / n }
' "$work/strace-base" "$work/strace-full" | sort
