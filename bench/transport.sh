#!/bin/bash
# bench/transport.sh: benchmarks 1 and 2 of docs/performance.md, lib/rpc
# against libgrpc++ on the same bench.v1.Echo service, side by side.
#
#   1. unary: the same h2load command against build/echo_server and
#      build/grpcpp_async_server (completion-queue API, 2 threads);
#   2. server streaming: build/stream_client reads Stream(count=200000,
#      size=64) from build/echo_server and build/grpcpp_callback_server.
#
# Run by `make bench`, which builds the programs first (B=build by default).
# Installs missing peers when run as root. Every server listens on
# 127.0.0.1 on an ephemeral port. Before measuring, python3-grpcio and
# nghttp prove that each server answers with real gRPC successes; during
# it, every h2load run must report all requests succeeded with a response
# message each. orchd and grpc++ run alternately (A B A B ...) for ROUNDS
# rounds (default 5, at least 3), each run under `timeout`; then one line
# per system with its median, and the ratio. Everything started is
# stopped by PID on exit. Exits 1 if a server or a check failed (a target
# missed is reported, not an error). Results also go to $B/bench/transport.txt.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
: "${ROUNDS:=5}"
: "${PYTHON:=/usr/bin/python3}"
N=200000           # requests (unary) and messages (streaming) per run
SIZE=64            # payload bytes
RUN_TIMEOUT=120    # seconds, any single run
[ "$ROUNDS" -ge 3 ] || { echo "transport: ROUNDS must be at least 3" >&2; exit 2; }

if [ "$(id -u)" -eq 0 ]; then
	scripts/install-deps.sh --all
fi
for t in h2load nghttp; do
	command -v "$t" >/dev/null || { echo "transport: $t missing (nghttp2-client)" >&2; exit 1; }
done
for p in echo_server stream_client grpcpp_async_server grpcpp_callback_server; do
	[ -x "$B/$p" ] || { echo "transport: $B/$p missing; run make bench" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-transport.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# start NAME CMD...: runs a server that prints "PORT n"; sets $port.
start() {
	local name=$1 i
	shift
	"$@" --port 0 >"$work/$name.out" 2>"$work/$name.err" &
	pids="$pids $!"
	for i in $(seq 100); do
		port=$(awk '/^PORT /{print $2; exit}' "$work/$name.out" 2>/dev/null)
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	echo "transport: $name did not start:" >&2
	cat "$work/$name.err" >&2
	exit 1
}

start orchd "$B/echo_server"
P_ORCHD=$port
start grpcpp_async "$B/grpcpp_async_server"
P_ASYNC=$port
start grpcpp_callback "$B/grpcpp_callback_server"
P_CB=$port

# One length-prefixed EchoMsg with a 64-byte payload: flag 0, length 66,
# then field 1 (tag 0x0a) of length 64.
"$PYTHON" -c '
import struct, sys
m = b"\x0a" + bytes([64]) + b"a" * 64
sys.stdout.buffer.write(struct.pack(">BI", 0, len(m)) + m)' >"$work/body.bin"
RESP_BYTES=$((5 + 2 + SIZE)) # DATA bytes of one answer

# ---- are the answers real gRPC successes? -----------------------------------
timeout 60 "$PYTHON" bench/grpc_check.py --echo "127.0.0.1:$P_ORCHD" \
	--echo "127.0.0.1:$P_ASYNC" --stream "127.0.0.1:$P_ORCHD" --stream "127.0.0.1:$P_CB" || {
	echo "transport: grpc_check failed (exit $?)" >&2
	exit 1
}
for p in $P_ORCHD $P_ASYNC; do
	# The status is in the trailers, after the response message.
	out=$(timeout 30 nghttp -v -H 'content-type: application/grpc' -H 'te: trailers' \
		-d "$work/body.bin" "http://127.0.0.1:$p/bench.v1.Echo/Echo" | tr -d '\0')
	if ! grep -q 'grpc-status: 0$' <<<"$out"; then
		echo "transport: no grpc-status 0 in the trailers from port $p:" >&2
		echo "$out" >&2
		exit 1
	fi
done
echo "checks: grpcio Echo and Stream OK on both; nghttp saw grpc-status: 0 in both trailers"

# ---- runs ---------------------------------------------------------------------
# unary PORT: prints req/s of one h2load run, after checking that every
# request succeeded and carried a response message (an error answer is
# Trailers-Only, with no DATA, though its HTTP status is 200 too).
unary() {
	local out rate
	out=$(timeout "$RUN_TIMEOUT" h2load -n $N -c 4 -m 64 -t 1 \
		-H 'content-type: application/grpc' -H 'te: trailers' -d "$work/body.bin" \
		"http://127.0.0.1:$1/bench.v1.Echo/Echo") || {
		echo "transport: h2load failed on port $1" >&2
		exit 1
	}
	if ! grep -q "^requests: $N total, $N started, $N done, $N succeeded, 0 failed" <<<"$out" ||
		! grep -q "^traffic: .*($((N * RESP_BYTES))) data" <<<"$out"; then
		echo "transport: h2load on port $1 saw failures or answers without a message:" >&2
		echo "$out" >&2
		exit 1
	fi
	# h2load says "finished in 1.01s" or "finished in 976.54ms".
	rate=$(sed -n 's/^finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p' <<<"$out")
	[ -n "$rate" ] || { echo "transport: no rate in h2load's output:" >&2; echo "$out" >&2; exit 1; }
	echo "$rate"
}

# stream PORT: prints msgs/s of one Stream call read to the end.
stream() {
	local out rate
	out=$(timeout "$RUN_TIMEOUT" "$B/stream_client" --target "127.0.0.1:$1" --count $N \
		--size $SIZE --timeout $((RUN_TIMEOUT - 10))) || {
		echo "transport: stream_client failed on port $1" >&2
		exit 1
	}
	rate=$(awk '/^MSGS /{print $6}' <<<"$out")
	[ -n "$rate" ] || { echo "transport: no rate from stream_client: $out" >&2; exit 1; }
	echo "$rate"
}

u_orchd="" u_grpcpp="" s_orchd="" s_grpcpp=""
for r in $(seq "$ROUNDS"); do
	u_orchd="$u_orchd $(unary "$P_ORCHD")"
	u_grpcpp="$u_grpcpp $(unary "$P_ASYNC")"
	s_orchd="$s_orchd $(stream "$P_ORCHD")"
	s_grpcpp="$s_grpcpp $(stream "$P_CB")"
	echo "round $r/$ROUNDS done"
done

median() {
	tr ' ' '\n' <<<"$*" | grep . | sort -g | awk '{v[NR] = $1}
		END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
}
verdict() {
	awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "MISSED"}'
}

mu_o=$(median $u_orchd)
mu_g=$(median $u_grpcpp)
ms_o=$(median $s_orchd)
ms_g=$(median $s_grpcpp)
ru=$(ratio "$mu_o" "$mu_g")
rs=$(ratio "$ms_o" "$ms_g")
mkdir -p "$B/bench"
{
	printf '%-34s %12s  %-8s %s\n' "benchmark / system" "median" "unit" "runs"
	printf '%-34s %12.0f  %-8s %s\n' "unary: orchd echo_server" "$mu_o" "req/s" "$u_orchd"
	printf '%-34s %12.0f  %-8s %s\n' "unary: grpc++ async (2 threads)" "$mu_g" "req/s" "$u_grpcpp"
	printf '%-34s %12s  target >= 2: %s\n' "unary: ratio orchd / grpc++" "$ru x" "$(verdict "$ru" 2)"
	printf '%-34s %12.0f  %-8s %s\n' "stream: orchd echo_server" "$ms_o" "msgs/s" "$s_orchd"
	printf '%-34s %12.0f  %-8s %s\n' "stream: grpc++ callback" "$ms_g" "msgs/s" "$s_grpcpp"
	printf '%-34s %12s  target >= 5: %s\n' "stream: ratio orchd / grpc++" "$rs x" "$(verdict "$rs" 5)"
} | tee "$B/bench/transport.txt"
