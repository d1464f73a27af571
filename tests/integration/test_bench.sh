#!/bin/bash
# `orchd bench` against a real cluster (`orchd dev` on ephemeral 127.0.0.1
# ports), end to end through gateway, scheduler and workers: 200 noop tasks
# with 16 in flight all complete and the JSON report holds sane numbers
# (positive throughput, ordered percentiles, start before done), on one
# SubmitStream (the default) and with --calls (SubmitTask +
# SubscribeProgress); --rpc and --no-follow (both paths) report what they
# measured; a task name no worker serves ends by --time-limit with what was
# reached; over TLS with a token (`orchd dev --tls --auth-token-file`) the
# client's --tls-ca and --token-file work, and without the token it fails;
# bad flags exit 2 and an unreachable gateway exits 3.
. "$(dirname "$0")/../lib.sh"

O=$B/orchd
need_exe "$O"
T=$(make_tmpdir)

# dev NAME FLAGS...: starts `orchd dev` with its files in $T/NAME.*; sets
# $devpid and $gw (its gateway) once it printed its GATEWAY line.
dev() {
	local name=$1
	shift
	: >"$T/$name.out" # exists before the loop below reads it (set -e)
	"$O" dev --data-dir "$T/$name.data" --gateway-port 0 --scheduler-port 0 --worker-port 0 \
		"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	devpid=$!
	_pids="$_pids $devpid"
	gw=
	for _ in $(seq $((START_TIMEOUT * 20))); do
		gw=$(sed -n 's/^GATEWAY //p' "$T/$name.out")
		[ -n "$gw" ] && break
		alive "$devpid" || fail "orchd dev exited: $(cat "$T/$name.err")"
		sleep 0.05
	done
	[ -n "$gw" ] || fail "orchd dev printed no GATEWAY line"
}

dev plain --workers 2 --slots 8

# check FILE PYTHON-EXPR...: loads FILE's JSON object into r and fails
# unless every expression holds.
check() {
	local f=$1
	shift
	"$PYTHON" - "$f" "$@" <<'EOF' || fail "$(cat "$1")"
import json, sys
r = json.loads(open(sys.argv[1]).read())
for expr in sys.argv[2:]:
    if not eval(expr):
        print("bench: %s does not hold for %s" % (expr, r), file=sys.stderr)
        sys.exit(1)
EOF
}

# The same load on one SubmitStream (default) and on two calls per task.
for path in stream calls; do
	flag=
	[ "$path" = calls ] && flag=--calls
	bounded 60 "$O" bench --gateway "$gw" --tasks 200 --concurrency 16 --json $flag \
		>"$T/tasks-$path.json" || fail "orchd bench --tasks 200 $flag failed"
	check "$T/tasks-$path.json" \
		'r["tasks"] == 200' 'r["completed"] == 200' 'r["failed"] == 0' 'r["mode"] == "tasks"' \
		'r["seconds"] > 0' 'r["tasks_per_s"] > 0' \
		'abs(r["tasks_per_s"] - r["tasks"] / r["seconds"]) < 0.01 * r["tasks_per_s"] + 1' \
		'0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"] < 60000' \
		'0 <= r["start_p50_ms"] <= r["start_p90_ms"] <= r["start_p99_ms"] <= r["start_max_ms"]' \
		'r["start_p50_ms"] <= r["p50_ms"] + 1' 'r["concurrency"] == 16' 'r["timed_out"] is False'
done
# Both paths report the same keys, as bench/*.sh parse them.
"$PYTHON" -c 'import json, sys; a, b = (set(json.load(open(f))) for f in sys.argv[1:]); sys.exit(a != b)' \
	"$T/tasks-stream.json" "$T/tasks-calls.json" || fail "--calls changed the JSON keys"

# Echo outputs of 64 KiB fill the gateway's relay queue, so it pauses its
# stream from the scheduler; that stream's end must wait behind the events
# held meanwhile (it used to drop the last one or two: "the stream ended
# before every task did").
for i in 1 2 3; do
	bounded 60 "$O" bench --gateway "$gw" --name echo --payload-size 65536 --tasks 300 \
		--concurrency 8 --json >"$T/big.json" 2>"$T/err" ||
		fail "64 KiB echo through the stream (run $i): $(cat "$T/err")"
done

# The human report names both latencies and the path taken.
bounded 60 "$O" bench --gateway "$gw" --tasks 50 --concurrency 4 --payload-size 64 >"$T/text" ||
	fail "orchd bench (text) failed"
grep -q '^  submit->start ' "$T/text" || fail "no submit->start row: $(cat "$T/text")"
grep -q '^  submit->done ' "$T/text" || fail "no submit->done row: $(cat "$T/text")"
grep -q '50 completed, 0 failed' "$T/text" || fail "not all completed: $(cat "$T/text")"
grep -q 'one SubmitStream$' "$T/text" || fail "path not named: $(cat "$T/text")"
bounded 60 "$O" bench --gateway "$gw" --tasks 20 --concurrency 4 --calls >"$T/text" ||
	fail "orchd bench --calls (text) failed"
grep -q 'a call per submit and per follow$' "$T/text" || fail "path not named: $(cat "$T/text")"

bounded 60 "$O" bench --gateway "$gw" --rpc --tasks 500 --concurrency 8 --json >"$T/rpc.json" ||
	fail "orchd bench --rpc failed"
check "$T/rpc.json" 'r["mode"] == "rpc"' 'r["tasks"] == 500' \
	'0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]'

# Tasks nobody serves: only submitted, or followed until the time limit,
# on either path.
for flag in "" --calls; do
	bounded 60 "$O" bench --gateway "$gw" --no-follow --name nobody-serves-this --tasks 100 \
		--concurrency 10 --json $flag >"$T/submit.json" || fail "orchd bench --no-follow $flag failed"
	check "$T/submit.json" 'r["mode"] == "submit"' 'r["tasks"] == 100' 'r["p50_ms"] > 0' \
		'r["completed"] == 100'
	bounded 60 "$O" bench --gateway "$gw" --name nobody-serves-this --tasks 100 --concurrency 10 \
		--time-limit 500ms --json $flag >"$T/limit.json" || fail "orchd bench --time-limit $flag failed"
	check "$T/limit.json" 'r["timed_out"] is True' 'r["tasks"] == 0' '0.4 < r["seconds"] < 5'
done
# 200 submitted, none followed: the scheduler holds them PENDING.
n=$("$O" list --gateway "$gw" --status PENDING --name nobody-serves-this --json --limit 0 |
	"$PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$n" -ge 200 ] || fail "$n pending tasks after 200 --no-follow submits"

rc=0
"$O" bench --gateway "$gw" --tasks 0 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--tasks 0: exit $rc, expected 2"
rc=0
bounded 30 "$O" bench --gateway 127.0.0.1:1 --tasks 10 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "unreachable gateway: exit $rc, expected 3 ($(cat "$T/err"))"
grep -q 'cannot reach gateway at 127.0.0.1:1' "$T/err" || fail "message: $(cat "$T/err")"

stop_pid "$devpid"
[ "$STOP_STATUS" -eq 0 ] || fail "orchd dev exited $STOP_STATUS on SIGTERM"

# TLS and a token, with the flags of the client commands.
printf '# bench\nbench-token-0123456789\n' >"$T/tokens"
chmod 600 "$T/tokens"
dev tls --workers 1 --slots 4 --tls --auth-token-file "$T/tokens"
ca=$(sed -n 's/^TLS_CA //p' "$T/tls.out")
[ -f "$ca" ] || fail "orchd dev --tls printed no TLS_CA line: $(cat "$T/tls.out")"
bounded 60 "$O" bench --gateway "$gw" --tls-ca "$ca" --token-file "$T/tokens" --tasks 20 \
	--concurrency 4 --json >"$T/tls.json" 2>"$T/err" || fail "bench over TLS: $(cat "$T/err")"
check "$T/tls.json" 'r["completed"] == 20'
rc=0
bounded 60 "$O" bench --gateway "$gw" --tls-ca "$ca" --tasks 20 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "bench without the token: exit $rc, expected 1 ($(cat "$T/err"))"
grep -q UNAUTHENTICATED "$T/err" || fail "without the token: $(cat "$T/err")"
stop_pid "$devpid"
[ "$STOP_STATUS" -eq 0 ] || fail "orchd dev --tls exited $STOP_STATUS on SIGTERM"
echo "PASS"
