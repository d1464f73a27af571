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
# (64 calls in flight on one lib/rpc channel) runs under callgrind.
#
# ROWS picks what to count (default: all), a list of
#   unary stream          build/echo_server as above
#   client                stream_client --unary against build/echo_server
#   grpcpp                the grpc++ servers, unary and streaming
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
: "${PYTHON:=/usr/bin/python3}"
: "${ROWS:=unary stream client grpcpp}"
command -v valgrind >/dev/null || { echo "instructions: valgrind missing" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-instr.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

"$PYTHON" -c '
import struct, sys
m = b"\x0a" + bytes([64]) + b"a" * 64
sys.stdout.buffer.write(struct.pack(">BI", 0, len(m)) + m)' >"$work/body.bin"

# fail MESSAGE: stops the server of this count (count runs in a command
# substitution, whose exit does not reach the cleanup above) and exits.
fail() {
	echo "instructions: $*" >&2
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	exit 1
}

# count SERVER MODE N: prints the server's total instructions for N unary
# requests (MODE unary) or one Stream of N 64-byte messages (MODE stream);
# with MODE client, the client's for N unary calls (the server runs
# natively).
count() {
	local server=$1 mode=$2 n=$3 port="" i
	local grind="valgrind --tool=callgrind --callgrind-out-file=$work/cg"
	# The child truncates the file only once it runs: remove the last
	# run's port first.
	rm -f "$work/out" "$work/cg"
	if [ "$mode" = client ]; then
		"$B/$server" --port 0 >"$work/out" 2>"$work/err" &
	else
		$grind "$B/$server" --port 0 >"$work/out" 2>"$work/err" &
	fi
	pid=$!
	for i in $(seq 300); do
		port=$(awk '/^PORT /{print $2; exit}' "$work/out" 2>/dev/null)
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || fail "$server did not start"
	if [ "$mode" = unary ]; then
		timeout 300 h2load -n "$n" -c 4 -m 64 -t 1 -H 'content-type: application/grpc' \
			-H 'te: trailers' -d "$work/body.bin" \
			"http://127.0.0.1:$port/bench.v1.Echo/Echo" >"$work/load" || true
		grep -q "^requests: $n total, $n started, $n done, $n succeeded" "$work/load" ||
			fail "h2load failed on $server: $(cat "$work/load")"
	elif [ "$mode" = client ]; then
		timeout 300 $grind "$B/stream_client" --target "127.0.0.1:$port" --unary "$n" \
			--timeout 280 >"$work/load" 2>"$work/cerr" || fail "stream_client --unary failed"
	else
		timeout 300 "$B/stream_client" --target "127.0.0.1:$port" --count "$n" --size 64 \
			--timeout 280 >"$work/load" || fail "stream_client failed on $server"
	fi
	kill -TERM "$pid"
	wait "$pid" || true
	pid=""
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
	grpcpp)
		per grpcpp_async_server unary 5000 15000 rpc
		per grpcpp_callback_server stream 20000 60000 msg
		;;
	*) echo "instructions: unknown row $row" >&2; exit 2 ;;
	esac
done
