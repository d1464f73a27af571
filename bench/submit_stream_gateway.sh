#!/bin/bash
# bench/submit_stream_gateway.sh: instructions the gateway and the client
# (`orchd bench`) spend per task followed to its end, with a SubmitTask and
# a SubscribeProgress call per task (`orchd bench --calls`) against one
# SubmitStream (the default: follow with final_only, accepted and the final
# update per task), counted by valgrind's callgrind. The scheduler's side is
# bench/submit_stream.sh. Not run by `make bench`; docs/performance.md
# records its output.
#
# A scheduler and a worker (noop, 64 slots) run natively. Gateway: it runs
# under callgrind, `orchd bench` runs WARM tasks, the counters are zeroed,
# it runs TASKS more (64 in flight) and the counters are dumped: total
# instructions over TASKS, without start-up. Client: `orchd bench` runs
# under callgrind once with WARM and once with WARM + TASKS tasks (the
# gateway native); the difference over TASKS is its cost per task, without
# start-up and connection set-up. KEEP=1 keeps the callgrind files (the
# directory is printed) for callgrind_annotate.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
: "${WARM:=500}"
: "${TASKS:=3000}"
: "${MODES:=calls stream}"
command -v valgrind >/dev/null || { echo "submit_stream_gateway: valgrind missing" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-gwstream.XXXXXX")
# shellcheck source=bench/e2e/lib.sh
. bench/e2e/lib.sh
cleanup() {
	stop_all
	if [ -n "${KEEP:-}" ]; then
		echo "submit_stream_gateway: files kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# load MODE N GATEWAY_PORT [WRAPPER...]: one `orchd bench` run.
load() {
	local mode=$1 n=$2 gp=$3 flag=""
	shift 3
	[ "$mode" = calls ] && flag=--calls
	"$@" "$B/orchd" bench --gateway "127.0.0.1:$gp" --tasks "$n" --concurrency 64 --no-start \
		--json $flag >>"$work/bench.jsonl" 2>"$work/bench.err" ||
		{ echo "submit_stream_gateway: bench failed: $(cat "$work/bench.err")" >&2; exit 1; }
}

total() { awk '/^totals:/{print $2}' "$1"; }

spawn scheduler "$B/orchd" scheduler --listen 127.0.0.1:0 --data-dir "$work/data" --log-level warn
sp=$(orchd_port scheduler)
spawn worker "$B/orchd" worker --scheduler "127.0.0.1:$sp" --listen 127.0.0.1:0 --slots 64 \
	--log-level warn
spawn gateway "$B/orchd" gateway --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" --log-level warn
native=$(orchd_port gateway)

printf "%-7s %14s %14s\n" mode "gateway/task" "client/task"
for mode in $MODES; do
	spawn "cg-$mode" valgrind --tool=callgrind --callgrind-out-file="$work/gw-$mode.cg" \
		"$B/orchd" gateway --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" --log-level warn
	cgpid=$spawned
	port=$(orchd_port "cg-$mode")
	load "$mode" "$WARM" "$port"
	callgrind_control -z "$cgpid" >/dev/null 2>&1
	load "$mode" "$TASKS" "$port"
	callgrind_control -d "$cgpid" >/dev/null 2>&1
	stop_pid "$cgpid"
	gw=$(($(total "$work/gw-$mode.cg.1") / TASKS))
	load "$mode" "$WARM" "$native" valgrind --tool=callgrind --callgrind-out-file="$work/cl-$mode-a.cg"
	load "$mode" $((WARM + TASKS)) "$native" valgrind --tool=callgrind \
		--callgrind-out-file="$work/cl-$mode-b.cg"
	cl=$((($(total "$work/cl-$mode-b.cg") - $(total "$work/cl-$mode-a.cg")) / TASKS))
	printf "%-7s %14d %14d\n" "$mode" "$gw" "$cl"
done
