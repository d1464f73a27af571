#!/bin/bash
# bench/instructions.sh: user-space instructions a server spends per unary
# RPC and per streamed message, counted by valgrind's callgrind, which is
# repeatable on a noisy machine where wall-clock rates drift (and works
# where `perf` has no hardware counters). Not run by `make bench`, as it
# takes a few minutes; docs/performance.md records its output.
#
# Each server runs under callgrind twice, loaded once with a small and once
# with a large count (unary: the h2load command of bench/transport.sh with
# -n; streaming: build/stream_client); the difference in total instructions
# divided by the difference in count is the cost of one RPC or message,
# without start-up and connection set-up. All threads of a server count.
#
# The client side of a unary call is counted the same way, the other way
# round: build/echo_server runs natively and `stream_client --unary N`
# (64 calls in flight on one lib/rpc channel) runs under callgrind. So is
# the path most calls take in a cluster: an orchd gateway under callgrind
# forwarding `orchd bench --no-follow`'s SubmitTask calls (a server call
# and a client call each) to a scheduler that runs natively.
#
# ROWS picks what to count (default: all), a list of
#   unary stream          build/echo_server as above
#   client                stream_client --unary against build/echo_server
#   gateway               orchd gateway forwarding SubmitTask (orchd bench
#                         --no-follow) to a native orchd scheduler
#   grpcpp                the grpc++ servers, unary and streaming
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
: "${PYTHON:=/usr/bin/python3}"
: "${ROWS:=unary stream client gateway grpcpp}"
command -v valgrind >/dev/null || { echo "instructions: valgrind missing" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-instr.XXXXXX")
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

"$PYTHON" -c '
import struct, sys
m = b"\x0a" + bytes([64]) + b"a" * 64
sys.stdout.buffer.write(struct.pack(">BI", 0, len(m)) + m)' >"$work/body.bin"

# Processes of the count in progress, in the order started.
pids=""

# stop_all: stops them, the last started first.
stop_all() {
	local p rev=""
	for p in $pids; do rev="$p $rev"; done
	for p in $rev; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=""
}

# fail MESSAGE: stops the processes of this count (count runs in a command
# substitution, whose exit does not reach the cleanup above) and exits.
fail() {
	echo "instructions: $*" >&2
	stop_all
	exit 1
}

# start NAME CMD...: runs CMD in the background, its output in $work/NAME,
# and sets $port to the port it prints. Returns 1 if it prints none.
start() {
	local name=$1 _
	shift
	# The child truncates the file only once it runs: remove the last
	# run's port first.
	rm -f "$work/$name"
	"$@" >"$work/$name" 2>"$work/$name.err" &
	pids="$pids $!"
	for _ in $(seq 300); do
		port=$(awk '/^PORT /{print $2; exit}' "$work/$name" 2>/dev/null)
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	return 1
}

# count SERVER MODE N: prints the server's total instructions for N unary
# requests (MODE unary) or one Stream of N 64-byte messages (MODE stream);
# with MODE client, the client's for N unary calls (the server runs
# natively); with MODE gateway, orchd gateway's for N SubmitTask calls it
# forwards to a scheduler (which runs natively).
count() {
	local server=$1 mode=$2 n=$3 port=""
	local grind=(valgrind --tool=callgrind "--callgrind-out-file=$work/cg")
	rm -f "$work/cg"
	case $mode in
	client) start out "$B/$server" --port 0 ;;
	gateway)
		rm -rf "$work/data"
		start sched "$B/orchd" scheduler --listen 127.0.0.1:0 --data-dir "$work/data" \
			--log-level warn || fail "scheduler did not start"
		start out "${grind[@]}" "$B/orchd" gateway --listen 127.0.0.1:0 \
			--scheduler "127.0.0.1:$port" --log-level warn
		;;
	*) start out "${grind[@]}" "$B/$server" --port 0 ;;
	esac || fail "$server did not start"
	case $mode in
	unary)
		timeout 300 h2load -n "$n" -c 4 -m 64 -t 1 -H 'content-type: application/grpc' \
			-H 'te: trailers' -d "$work/body.bin" \
			"http://127.0.0.1:$port/bench.v1.Echo/Echo" >"$work/load" || true
		grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$work/load" ||
			fail "h2load failed on $server: $(cat "$work/load")"
		;;
	client)
		timeout 300 "${grind[@]}" "$B/stream_client" --target "127.0.0.1:$port" --unary "$n" \
			--timeout 280 >"$work/load" 2>"$work/cerr" || fail "stream_client --unary failed"
		;;
	gateway)
		timeout 300 "$B/orchd" bench --gateway "127.0.0.1:$port" --tasks "$n" \
			--concurrency 64 --no-follow --no-start >"$work/load" 2>&1 ||
			fail "orchd bench failed: $(cat "$work/load")"
		;;
	stream)
		timeout 300 "$B/stream_client" --target "127.0.0.1:$port" --count "$n" --size 64 \
			--timeout 280 >"$work/load" || fail "stream_client failed on $server"
		;;
	esac
	stop_all
	awk '/^totals:/{print $2}' "$work/cg"
}

# per SERVER MODE SMALL LARGE UNIT
per() {
	local a b
	a=$(count "$1" "$2" "$3")
	b=$(count "$1" "$2" "$4")
	awk -v a="$a" -v b="$b" -v s="$3" -v l="$4" -v name="$1" -v mode="$2" -v unit="$5" \
		'BEGIN {printf "%-8s %-24s %9.0f instructions/%s\n", mode, name, (b - a) / (l - s), unit}'
}

for row in $ROWS; do
	case $row in
	unary) per echo_server unary 10000 30000 rpc ;;
	stream) per echo_server stream 100000 300000 msg ;;
	client) per echo_server client 10000 30000 call ;;
	gateway) per orchd gateway 3000 12000 submit ;;
	grpcpp)
		per grpcpp_async_server unary 5000 15000 rpc
		per grpcpp_callback_server stream 20000 60000 msg
		;;
	*) echo "instructions: unknown row $row" >&2; exit 2 ;;
	esac
done
