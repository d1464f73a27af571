# shellcheck shell=bash
# tests/lib.sh: shared helpers for the shell integration and interop tests.
#
# Source it first thing:   . "$(dirname "$0")/../lib.sh"
#
# It owns the test's environment (repository root as working directory, $B,
# $PYTHON, PYTHONPATH for the generated stubs), its scratch directory and the
# processes the test starts: everything started with start_server is killed
# by PID when the script exits, however it exits. Waits are bounded loops
# that poll for the awaited event; none is a bare sleep.
#
# Exit codes: 0 pass, 1 fail, 77 skip (tests/run.sh reports SKIP).

set -eu

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${PYTHON:=/usr/bin/python3}"
export B PYTHON
export PYTHONPATH="$B/py${PYTHONPATH:+:$PYTHONPATH}"

# Seconds to wait for a server to report its port or accept connections.
: "${START_TIMEOUT:=20}"

_pids=""
_tmpdirs=""

# skip MESSAGE: reports why the test cannot run here and exits 77.
skip() { echo "SKIP: $*"; exit 77; }

# fail MESSAGE: reports the failure and exits 1.
fail() { echo "FAIL: $*" >&2; exit 1; }

# need_exe PATH: skips the test unless PATH is an executable file.
need_exe() { [ -x "$1" ] || skip "$1 not built"; }

# need_stubs: fails unless `make pygen` has put the Python stubs in $B/py.
need_stubs() {
	[ -f "$B/py/grpc/testing/test_pb2.py" ] || fail "no Python stubs in $B/py; run make pygen"
}

# make_tmpdir: prints a fresh directory that is removed at exit; use it as
# T=$(make_tmpdir). (It is registered in a file, as $(...) is a subshell.)
make_tmpdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/orchd-test.XXXXXX")
	echo "$d" >>"$_tmplist"
	echo "$d"
}

# alive PID: true while PID runs (a zombie, exited but not reaped, is dead).
alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# start_server NAME CMD...: runs CMD in the background with stdout in
# $T_LIB/NAME.out and stderr in $T_LIB/NAME.err, and waits (at most
# START_TIMEOUT s) for it to print `PORT <n>`. Sets NAME_pid and NAME_port.
# Fails if it exits or stays silent (the exit trap then shows its stderr).
start_server() {
	local name=$1 out err pid port deadline
	shift
	out=$T_LIB/$name.out
	err=$T_LIB/$name.err
	: >"$out"
	"$@" >"$out" 2>"$err" </dev/null &
	pid=$!
	_pids="$_pids $pid"
	printf -v "${name}_pid" %s "$pid"
	deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		port=$(sed -n 's/^PORT \([0-9][0-9]*\)\r\{0,1\}$/\1/p' "$out" | head -n 1)
		[ -n "$port" ] && break
		if ! alive "$pid"; then
			fail "$name ($*) exited before printing PORT"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail "$name ($*) printed no PORT line within ${START_TIMEOUT}s"
		fi
		sleep 0.05
	done
	printf -v "${name}_port" %s "$port"
}

# bounded SECS CMD...: runs CMD in the foreground, killed after SECS seconds
# (exit 124 then). --foreground keeps CMD in the test's process group, so
# tests/run.sh's own timeout still reaches it.
bounded() {
	local secs=$1
	shift
	timeout --foreground -k 5 "$secs" "$@"
}

# wait_port HOST PORT [TIMEOUT]: waits until HOST:PORT accepts a TCP
# connection, at most TIMEOUT (default START_TIMEOUT) seconds.
wait_port() {
	local host=$1 port=$2 deadline=$((SECONDS + ${3:-$START_TIMEOUT}))
	until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || fail "nothing listens on $host:$port"
		sleep 0.05
	done
}

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it and
# sets STOP_STATUS to its exit status (137 when it had to be killed).
STOP_STATUS=0
stop_pid() {
	local pid=$1 deadline=$((SECONDS + 10))
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	STOP_STATUS=0
	wait "$pid" 2>/dev/null || STOP_STATUS=$?
	_pids=" $_pids "
	_pids=${_pids// $pid / }
}

# stop_server NAME: stops the server start_server NAME started and fails the
# test unless it exited cleanly on SIGTERM (graceful shutdown; under
# SAN=address a leak or sanitizer report makes the exit status non-zero).
stop_server() {
	local var=${1}_pid
	stop_pid "${!var}"
	if [ "$STOP_STATUS" -ne 0 ]; then
		tail -n 40 "$T_LIB/$1.err" >&2
		fail "$1 exited with status $STOP_STATUS on SIGTERM"
	fi
}

# On exit: stop every server still running, show the servers' stderr if the
# test failed, remove the scratch directories.
_cleanup() {
	local rc=$? pid d f
	set +e
	for pid in $_pids; do stop_pid "$pid"; done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$T_LIB"/*.err; do
			[ -s "$f" ] || continue
			echo "--- $(basename "$f" .err) stderr (last 30 lines):" >&2
			tail -n 30 "$f" >&2
		done
	fi
	if [ -f "$_tmplist" ]; then
		while read -r d; do rm -rf "$d"; done <"$_tmplist"
	fi
	rm -rf "$T_LIB"
}
trap _cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The library's own scratch directory: server logs, the tmpdir registry.
T_LIB=$(mktemp -d "${TMPDIR:-/tmp}/orchd-test.XXXXXX")
_tmplist=$T_LIB/tmpdirs
