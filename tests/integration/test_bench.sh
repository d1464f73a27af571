#!/bin/bash
# `orchd bench` against a real cluster (`orchd dev` on ephemeral 127.0.0.1
# ports): 200 noop tasks with 16 in flight all complete and the JSON report
# holds sane numbers (positive throughput, ordered percentiles, start before
# done); --rpc and --no-follow report what they measured; a task name no
# worker serves ends by --time-limit with what was reached; bad flags exit
# 2 and an unreachable gateway exits 3.
. "$(dirname "$0")/../lib.sh"

O=$B/orchd
need_exe "$O"
T=$(make_tmpdir)

: >"$T/dev.out" # exists before the loop below reads it (set -e)
"$O" dev --data-dir "$T/data" --gateway-port 0 --scheduler-port 0 --worker-port 0 \
	--workers 2 --slots 8 >"$T/dev.out" 2>"$T/dev.err" </dev/null &
devpid=$!
_pids="$_pids $devpid"
gw=
for _ in $(seq $((START_TIMEOUT * 20))); do
	gw=$(sed -n 's/^GATEWAY //p' "$T/dev.out")
	[ -n "$gw" ] && break
	alive "$devpid" || fail "orchd dev exited: $(cat "$T/dev.err")"
	sleep 0.05
done
[ -n "$gw" ] || fail "orchd dev printed no GATEWAY line"

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

bounded 60 "$O" bench --gateway "$gw" --tasks 200 --concurrency 16 --json >"$T/tasks.json" ||
	fail "orchd bench --tasks 200 failed"
check "$T/tasks.json" \
	'r["tasks"] == 200' 'r["completed"] == 200' 'r["failed"] == 0' 'r["mode"] == "tasks"' \
	'r["seconds"] > 0' 'r["tasks_per_s"] > 0' \
	'abs(r["tasks_per_s"] - r["tasks"] / r["seconds"]) < 0.01 * r["tasks_per_s"] + 1' \
	'0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"] < 60000' \
	'0 <= r["start_p50_ms"] <= r["start_p90_ms"] <= r["start_p99_ms"] <= r["start_max_ms"]' \
	'r["start_p50_ms"] <= r["p50_ms"] + 1' 'r["concurrency"] == 16' 'r["timed_out"] is False'

# The human report names both latencies.
bounded 60 "$O" bench --gateway "$gw" --tasks 50 --concurrency 4 --payload-size 64 >"$T/text" ||
	fail "orchd bench (text) failed"
grep -q '^  submit->start ' "$T/text" || fail "no submit->start row: $(cat "$T/text")"
grep -q '^  submit->done ' "$T/text" || fail "no submit->done row: $(cat "$T/text")"
grep -q '50 completed, 0 failed' "$T/text" || fail "not all completed: $(cat "$T/text")"

bounded 60 "$O" bench --gateway "$gw" --rpc --tasks 500 --concurrency 8 --json >"$T/rpc.json" ||
	fail "orchd bench --rpc failed"
check "$T/rpc.json" 'r["mode"] == "rpc"' 'r["tasks"] == 500' \
	'0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]'

# Tasks nobody serves: only submitted, or followed until the time limit.
bounded 60 "$O" bench --gateway "$gw" --no-follow --name nobody-serves-this --tasks 100 \
	--concurrency 10 --json >"$T/submit.json" || fail "orchd bench --no-follow failed"
check "$T/submit.json" 'r["mode"] == "submit"' 'r["tasks"] == 100' 'r["p50_ms"] > 0'
bounded 60 "$O" bench --gateway "$gw" --name nobody-serves-this --tasks 100 --concurrency 10 \
	--time-limit 500ms --json >"$T/limit.json" || fail "orchd bench --time-limit failed"
check "$T/limit.json" 'r["timed_out"] is True' 'r["tasks"] == 0' '0.4 < r["seconds"] < 5'

rc=0
"$O" bench --gateway "$gw" --tasks 0 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--tasks 0: exit $rc, expected 2"
rc=0
bounded 30 "$O" bench --gateway 127.0.0.1:1 --tasks 10 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 3 ] || fail "unreachable gateway: exit $rc, expected 3 ($(cat "$T/err"))"
grep -q 'cannot reach gateway at 127.0.0.1:1' "$T/err" || fail "message: $(cat "$T/err")"

stop_pid "$devpid"
[ "$STOP_STATUS" -eq 0 ] || fail "orchd dev exited $STOP_STATUS on SIGTERM"
echo "PASS"
