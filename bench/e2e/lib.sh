# shellcheck shell=bash
# bench/e2e/lib.sh: helpers shared by bench/e2e.sh and bench/footprint.sh.
#
# Source it after setting $work (a scratch directory). It owns the
# processes the benchmark starts: spawn records each PID, stop_pid ends
# one by PID (SIGTERM, then SIGKILL after 10 s), stop_all ends every one
# still running -- call it from the EXIT trap. Waits are bounded polls.
# shellcheck disable=SC2154 # $work is the sourcing script's

pids=""

# spawn NAME CMD...: runs CMD in the background, stdout to $work/NAME.out,
# stderr to $work/NAME.err; sets $spawned to its PID.
spawn() {
	local name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
	spawned=$!
	pids="$pids $spawned"
}

alive() {
	local st
	st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

stop_pid() {
	local pid=$1 _
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		alive "$pid" || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pids=" $pids "
	pids=${pids// $pid / }
}

stop_all() {
	local p
	for p in $pids; do stop_pid "$p"; done
}

# orchd_port NAME: waits (20 s at most) for the `PORT n` line of a role
# started with spawn NAME; prints n.
orchd_port() {
	local _ p
	for _ in $(seq 400); do
		p=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$work/$1.out" 2>/dev/null | head -n 1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.05
	done
	echo "$1 printed no PORT line; its stderr:" >&2
	tail -n 20 "$work/$1.err" >&2
	return 1
}

# sched_listen NAME: the --listen of a scheduler to be spawned as NAME:
# 127.0.0.1:0, or with ORCHD_UNIX=1 (opt-in) the unix socket $work/NAME.sock.
sched_listen() {
	if [ "${ORCHD_UNIX:-0}" = 1 ]; then echo "unix:$work/$1.sock"; else echo 127.0.0.1:0; fi
}

# sched_addr NAME: waits for the scheduler spawned as NAME (its PORT line,
# 0 for a unix socket) and prints the --scheduler the other roles dial.
sched_addr() {
	local p
	p=$(orchd_port "$1") || return 1
	if [ "${ORCHD_UNIX:-0}" = 1 ]; then echo "unix:$work/$1.sock"; else echo "127.0.0.1:$p"; fi
}

# free_port: prints a TCP port free on 127.0.0.1 now (for servers that
# cannot listen on port 0 and tell which port they got).
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_tcp PORT: waits (20 s at most) until 127.0.0.1:PORT accepts.
wait_tcp() {
	local _
	for _ in $(seq 400); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "nothing listens on 127.0.0.1:$1" >&2
	return 1
}

# rss_kib PID: the process's resident set (VmRSS) in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# hwm_kib PID: its peak resident set (VmHWM) in KiB.
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
