#!/bin/bash
# bench/submit_stream.sh: instructions the scheduler spends per task followed
# to its end, with a SubmitTask call and a WatchTask stream per task (unary)
# against one SubmitStream (stream), and one with final_only (final: only the
# final update of each task), counted by valgrind's callgrind. Not run by
# `make bench`; docs/performance.md records its output.
#
# For each mode the scheduler runs under callgrind, one worker natively
# (noop, 64 slots); bench/submit_stream.py runs WARM tasks, the counters are
# zeroed, it runs TASKS more (64 in flight), and the counters are dumped:
# total instructions over TASKS, without start-up. The store's share
# (sq_flush, sq_put, sq_update inclusive) is shown apart, since its cost
# depends on how many tasks each commit batches.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
: "${PYTHON:=/usr/bin/python3}"
: "${WARM:=500}"
: "${TASKS:=3000}"
: "${MODES:=unary stream final}"
export B
command -v valgrind >/dev/null || { echo "submit_stream: valgrind missing" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-sstream.XXXXXX")
spid="" wpid=""
cleanup() {
	for p in $wpid $spid; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# count MODE: prints "MODE total store" (instructions per task).
count() {
	local mode=$1 d=$work/$1 port="" i
	mkdir -p "$d"
	valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$B/orchd" scheduler \
		--listen 127.0.0.1:0 --data-dir "$d/data" --log-level warn >"$d/out" 2>"$d/err" &
	spid=$!
	for i in $(seq 300); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$d/out")
		[ -n "$port" ] && break
		sleep 0.2
	done
	[ -n "$port" ] || { echo "submit_stream: no scheduler" >&2; exit 1; }
	"$B/orchd" worker --scheduler "127.0.0.1:$port" --listen 127.0.0.1:0 --slots 64 \
		--log-level warn >/dev/null 2>"$d/werr" &
	wpid=$!
	"$PYTHON" bench/submit_stream.py "127.0.0.1:$port" "$mode" "$WARM" 64
	callgrind_control -z "$spid" >/dev/null 2>&1
	"$PYTHON" bench/submit_stream.py "127.0.0.1:$port" "$mode" "$TASKS" 64
	callgrind_control -d "$spid" >/dev/null 2>&1
	kill -TERM "$wpid" "$spid"
	wait "$wpid" "$spid" || true
	wpid="" spid=""
	callgrind_annotate --inclusive=yes "$d/cg.out.1" 2>/dev/null | awk -v mode="$mode" \
		-v n="$TASKS" '
		function num(s) { gsub(",", "", s); return s + 0 }
		/PROGRAM TOTALS/ { total = num($1) }
		/:sq_(flush|put|update) \[/ { store += num($1) }
		END { printf "%s %d %d\n", mode, total / n, store / n }'
}

printf "%-7s %14s %14s %14s\n" mode "instr/task" "store" "rest"
for mode in $MODES; do
	# Not in a pipeline: count must run in this shell, so that a failure
	# leaves its processes to the cleanup above.
	count "$mode" >"$work/result"
	read -r m total store <"$work/result"
	printf "%-7s %14d %14d %14d\n" "$m" "$total" "$store" $((total - store))
done
