#!/bin/bash
# The client commands driven as a person would, against a real scheduler,
# worker and gateway on 127.0.0.1: submit (the id alone on stdout; --wait
# with outputs and exit codes), get (table and JSON), cancel, list with
# filters, workers, health of every role, watch piped (JSON lines) and on a
# pseudo-terminal (progress bars), a watch that outlives a gateway restart,
# and the errors a person meets: unreachable gateway (exit 3), unknown id
# (exit 1), bad flags (exit 2).
. "$(dirname "$0")/../lib.sh"

O=$B/orchd
need_exe "$O"
for role in gateway worker; do
	if "$O" "$role" --help 2>&1 | grep -q "not built yet"; then
		skip "orchd $role is not built yet; the client commands need a whole cluster"
	fi
done
command -v script >/dev/null || skip "script (util-linux) is not installed"

T=$(make_tmpdir)
start_server sched "$O" scheduler --listen 127.0.0.1:0 --data-dir "$T/data"
start_server worker "$O" worker --scheduler "127.0.0.1:$sched_port" --listen 127.0.0.1:0 --slots 4
start_server gw "$O" gateway --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sched_port"
export ORCHD_GATEWAY=127.0.0.1:$gw_port
unset ORCHD_DEADLINE ORCHD_LOG NO_COLOR

# run CMD...: runs CMD (at most 30 s) with stdin from /dev/null; its stdout
# goes to $OUT, its stderr to $ERR, its exit status to $RC. A sanitizer
# report (SAN= builds; a leak exits 1 like a failed task) fails the test.
run() {
	RC=0
	bounded 30 "$@" >"$T/out" 2>"$T/err" </dev/null || RC=$?
	OUT=$(tr -d '\0' <"$T/out") # binary output is checked from the file
	ERR=$(cat "$T/err")
	if grep -q 'Sanitizer' "$T/err" "$T/out"; then
		fail "sanitizer report from $*: $ERR $OUT"
	fi
}

# expect RC WHAT: fails unless the last run exited with RC.
expect() {
	[ "$RC" -eq "$1" ] ||
		fail "$2: exit $RC, expected $1
--- stdout:
$OUT
--- stderr:
$ERR"
}

# has TEXT PATTERN WHAT: fails unless TEXT has a line matching the ERE.
has() {
	grep -Eq -- "$2" <<<"$1" || fail "$3: no line matches /$2/ in:
$1"
}

# json_check FILE PYTHON-EXPR...: loads FILE as JSON into d and fails
# unless every expression is true.
json_check() {
	local f=$1
	shift
	"$PYTHON" - "$f" "$@" <<'EOF' || fail "JSON check failed on $(cat "$f")"
import json, sys
d = json.load(open(sys.argv[1]))
for expr in sys.argv[2:]:
    if not eval(expr):
        sys.exit("false: %s" % expr)
EOF
}

# wait_status ID STATUS: polls `orchd get --json` (at most 20 s) until
# the task has STATUS.
wait_status() {
	local deadline=$((SECONDS + 20)) st=""
	while [ "$SECONDS" -lt "$deadline" ]; do
		st=$("$O" get "$1" --json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
		[ "$st" = "$2" ] && return 0
		sleep 0.05
	done
	fail "task $1 stayed $st, never $2"
}

ID_RE='^[0-9A-Z]{26}$'

echo "--- the worker shows up in orchd workers"
deadline=$((SECONDS + 20))
until run "$O" workers && [ "$RC" -eq 0 ] && grep -q echo <<<"$OUT"; do
	[ "$SECONDS" -lt "$deadline" ] || fail "the worker never showed up in orchd workers: $OUT $ERR"
	sleep 0.05
done
has "$OUT" '^ID +SLOTS +TASKS +HEARTBEAT +UP +VERSION +ADDRESS$' "workers header"
has "$OUT" "^[^ ]+ +0/4 +noop,echo,sleep,fail,sha256 +[0-9.]+m?s ago .* 127\.0\.0\.1:$worker_port$" \
	"workers row"
run "$O" workers --json
expect 0 "workers --json"
echo "$OUT" >"$T/w.json"
json_check "$T/w.json" 'len(d) == 1' 'd[0]["slots"] == 4' '"sleep" in d[0]["task_names"]' \
	'd[0]["last_heartbeat_unix_ms"] > 0'

echo "--- submit prints the id and nothing else"
run "$O" submit echo --payload hi
expect 0 "submit"
has "$OUT" "$ID_RE" "submit's stdout"
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "submit printed more than the id: $OUT"
[ -z "$ERR" ] || fail "submit wrote to stderr: $ERR"
FIRST=$OUT

echo "--- submit --wait prints the output and exits 0 for COMPLETED"
run "$O" submit echo --payload 'hello world' --wait
expect 0 "submit --wait echo"
has "$(sed -n 1p "$T/out")" "$ID_RE" "first line of submit --wait"
[ "$(sed -n 2p "$T/out")" = "hello world" ] || fail "submit --wait output: $OUT"
printf 'line 1\nl\xc3\xadne 2\n' >"$T/payload"
run "$O" submit echo --payload-file "$T/payload" --label team=infra --label 'expr=a=b' \
	--priority 7 --timeout 30s --description "from a file" --wait
expect 0 "submit --payload-file --wait"
tail -n +2 "$T/out" | cmp -s - "$T/payload" || fail "the output is not the file: $OUT"
FILE_ID=$(sed -n 1p "$T/out")
STDIN_OUT=$(printf 'from stdin' | bounded 30 "$O" submit echo --payload-file - --wait | tail -n +2)
[ "$STDIN_OUT" = "from stdin" ] || fail "--payload-file - read '$STDIN_OUT'"

echo "--- submit --wait exits 1 for FAILED, the error on stderr"
run "$O" submit fail --payload boom --max-attempts 1 --wait
expect 1 "submit --wait fail"
FAIL_ID=$(sed -n 1p "$T/out")
has "$ERR" "^orchd submit: task $FAIL_ID FAILED: .*boom" "submit --wait fail's stderr"
run "$O" submit sleep --payload 200 --wait
expect 0 "submit --wait sleep"

echo "--- an idempotency key returns the first task"
run "$O" submit echo --payload one --idempotency-key key-1
KEY_ID=$OUT
run "$O" submit echo --payload two --idempotency-key key-1
expect 0 "repeated idempotency key"
[ "$OUT" = "$KEY_ID" ] || fail "a repeated key gave a new id: $OUT vs $KEY_ID"
has "$ERR" "matched task $KEY_ID" "note about the repeated key"

echo "--- get: a table for people, JSON for programs"
run "$O" get "$FILE_ID"
expect 0 "get"
has "$OUT" "^id: +$FILE_ID$" "get id row"
has "$OUT" '^status: +COMPLETED$' "get status row"
has "$OUT" '^labels: +(team=infra, expr=a=b|expr=a=b, team=infra)$' "get labels row"
has "$OUT" '^priority: +7$' "get priority row"
has "$OUT" '^timeout: +30s$' "get timeout row"
has "$OUT" '^created: +20[0-9-]+T[0-9:]+Z \(.* ago\)$' "get created row"
run "$O" get "$FILE_ID" --json
expect 0 "get --json"
echo "$OUT" >"$T/get.json"
json_check "$T/get.json" "d['task_id'] == '$FILE_ID'" 'd["status"] == "COMPLETED"' \
	'd["labels"] == {"team": "infra", "expr": "a=b"}' 'd["priority"] == 7' \
	'd["timeout_ms"] == 30000' 'd["description"] == "from a file"' \
	'd["result"]["output"] == "line 1\nl\u00edne 2\n"' 'd["payload"] == d["result"]["output"]' \
	'd["created_unix_ms"] <= d["started_unix_ms"] <= d["finished_unix_ms"]'
run "$O" get "$FAIL_ID" --json
echo "$OUT" >"$T/fail.json"
json_check "$T/fail.json" 'd["status"] == "FAILED"' '"boom" in d["result"]["error"]' \
	'd["attempt"] == 1 and d["max_attempts"] == 1'

echo "--- output that is not UTF-8 comes back exactly, in base64"
printf '\377\000\001binary' >"$T/bin"
run "$O" submit echo --payload-file "$T/bin" --wait
expect 0 "submit binary"
tail -c +28 "$T/out" | cmp -s - "$T/bin" || fail "submit --wait changed binary output"
BIN_ID=$(head -c 26 "$T/out")
run "$O" get "$BIN_ID" --json
echo "$OUT" >"$T/bin.json"
json_check "$T/bin.json" '"output" not in d["result"]' \
	"__import__('base64').b64decode(d['result']['output_base64']) == open('$T/bin','rb').read()"
run "$O" get "$BIN_ID"
has "$OUT" '^output: +\(9 B of binary data; --json shows it in base64\)$' "get of binary output"

echo "--- cancel: a pending task at once, a running one through its worker"
run "$O" submit no-such-handler
PENDING_ID=$OUT
run "$O" cancel "$PENDING_ID" --reason "changed my mind"
expect 0 "cancel pending"
[ "$OUT" = "$PENDING_ID: CANCELLED" ] || fail "cancel pending said: $OUT"
run "$O" submit sleep --payload 60000
RUN_ID=$OUT
wait_status "$RUN_ID" RUNNING
run "$O" cancel "$RUN_ID" --reason "no longer needed"
expect 0 "cancel running"
has "$OUT" "^$RUN_ID: cancel requested" "cancel running's answer"
run "$O" watch "$RUN_ID"
expect 1 "watch of a cancelled task"
echo "$OUT" | tail -n 1 >"$T/cancel.json"
json_check "$T/cancel.json" 'd["status"] == "CANCELLED"' 'd["final"] is True' \
	'd["error"] == "no longer needed"'
run "$O" cancel "$RUN_ID"
expect 1 "cancel of a finished task"
has "$ERR" "^orchd cancel: FAILED_PRECONDITION: .*$RUN_ID" "cancel of a finished task"

echo "--- list: newest first, filters, limit, JSON"
run "$O" list
expect 0 "list"
has "$(sed -n 1p "$T/out")" '^ID +NAME +STATUS +ATTEMPT +PROGRESS +AGE +RAN$' "list header"
has "$(sed -n 2p "$T/out")" "^$RUN_ID +sleep +CANCELLED +1/3 " "newest task first"
has "$OUT" "^$FIRST +echo +COMPLETED +1/3 +- " "the first task is listed"
has "$OUT" "^$PENDING_ID +no-such-handler +CANCELLED +0/3 +- .* -$" "a never-run task"
[ "$(tail -n 1 "$T/out" | cut -c 1-26)" = "$FIRST" ] || fail "oldest task not last: $OUT"
run "$O" list --status failed
expect 0 "list --status"
[ "$(sed -n '2,$p' "$T/out" | grep -cv ' FAILED ')" -eq 0 ] || fail "list --status failed: $OUT"
has "$OUT" "^$FAIL_ID " "the failed task is listed"
run "$O" list --name sleep --limit 1
expect 0 "list --name --limit"
[ "$(wc -l <"$T/out")" -eq 2 ] || fail "list --limit 1 printed: $OUT"
has "$OUT" "^$RUN_ID +sleep " "newest sleep task"
has "$ERR" 'showing the newest 1' "the note about more tasks"
run "$O" list --json --name echo --limit 0
expect 0 "list --json"
echo "$OUT" >"$T/list.json"
json_check "$T/list.json" 'len(d) >= 6' 'all(t["name"] == "echo" for t in d)' \
	'[t["created_unix_ms"] for t in d] == sorted([t["created_unix_ms"] for t in d], reverse=True)'
run "$O" list --status nope
expect 2 "list --status nope"
has "$ERR" "unknown --status 'nope'" "bad status"
run "$O" list --name nothing-by-this-name
expect 0 "empty list"
[ -z "$OUT" ] || fail "an empty list printed: $OUT"
has "$ERR" 'no tasks match' "empty list note"

echo "--- health of every role"
run "$O" health
expect 0 "health"
has "$OUT" "^127\.0\.0\.1:$gw_port: gateway SERVING, version [^ ]+, up [0-9.]+m?s$" "gateway health"
run "$O" health "127.0.0.1:$sched_port"
expect 0 "health of the scheduler"
has "$OUT" ": scheduler SERVING" "scheduler health"
run "$O" health "127.0.0.1:$worker_port" --json
expect 0 "health of the worker"
echo "$OUT" >"$T/health.json"
json_check "$T/health.json" 'd["role"] == "worker"' 'd["status"] == "SERVING"' 'd["uptime_ms"] > 0'

echo "--- errors: unreachable (3), not found (1), usage (2)"
FREE=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run "$O" get "$FIRST" --gateway "127.0.0.1:$FREE"
expect 3 "unreachable gateway"
[ "$ERR" = "orchd: cannot reach gateway at 127.0.0.1:$FREE: connection refused" ] ||
	fail "unreachable gateway said: $ERR"
[ -z "$OUT" ] || fail "unreachable gateway printed: $OUT"
ORCHD_GATEWAY=127.0.0.1:$FREE run "$O" submit echo
expect 3 "unreachable gateway from the environment"
run "$O" watch "$FIRST" --gateway "127.0.0.1:$FREE"
expect 3 "watch of an unreachable gateway"
run "$O" health "127.0.0.1:$FREE"
expect 3 "health of nothing"
has "$ERR" "^orchd: cannot reach 127\.0\.0\.1:$FREE: connection refused$" "health of nothing"
run "$O" get nosuchtask
expect 1 "unknown id"
[ "$ERR" = "orchd get: NOT_FOUND: task nosuchtask not found" ] || fail "unknown id said: $ERR"
run "$O" watch nosuchtask
expect 1 "watch of an unknown id"
has "$ERR" "^orchd watch: NOT_FOUND: task nosuchtask not found$" "watch of an unknown id"
run "$O" get "$FIRST" --bogus
expect 2 "bad flag"
has "$ERR" "^orchd get: unknown flag '--bogus'" "bad flag"
run "$O" submit sleep --timeout soon
expect 2 "bad duration"
has "$ERR" "invalid value 'soon' for --timeout" "bad duration"
run "$O" submit echo --label novalue
expect 2 "bad label"
run "$O" submit
expect 2 "submit without a name"
run "$O" submit echo --wait --watch
expect 2 "--wait with --watch"
run "$O" get "$FIRST" --deadline 0
expect 2 "zero deadline"
run "$O" scheduler --dispatch evenly
expect 2 "bad --dispatch"
has "$ERR" "^orchd scheduler: --dispatch must be fill or spread, not 'evenly'$" "bad --dispatch"
for c in submit watch get cancel list workers health; do
	run "$O" "$c" --help
	expect 0 "$c --help"
	has "$OUT" "^usage: orchd $c" "$c --help"
	has "$OUT" '--gateway ADDR .*\[ORCHD_GATEWAY\]' "$c --help lists the environment"
	has "$OUT" '^exit status: 0 success; 1 failure' "$c --help lists the exit codes"
done

echo "--- watch piped: JSON lines, percent never goes down, final line last"
run "$O" submit sleep --payload 1500
SLEEP_ID=$OUT
run "$O" watch "$SLEEP_ID"
expect 0 "watch piped"
echo "$OUT" >"$T/watch.jsonl"
"$PYTHON" - "$T/watch.jsonl" "$SLEEP_ID" <<'EOF' || fail "watch's JSON lines: $OUT"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) >= 3, lines
assert all(l["task_id"] == sys.argv[2] for l in lines)
pct = [l["percent"] for l in lines]
assert pct == sorted(pct), pct
assert all(l["timestamp_unix_ms"] > 0 for l in lines)
assert [l.get("final") for l in lines] == [None] * (len(lines) - 1) + [True]
last = lines[-1]
assert last["status"] == "COMPLETED" and last["percent"] == 100, last
assert last["output"] == "" and last["error"] == "" and last["attempt"] == 1, last
assert any(l["status"] == "RUNNING" and 0 < l["percent"] < 100 for l in lines), lines
EOF
run "$O" watch "$FIRST" "$FAIL_ID"
expect 1 "watch of a completed and a failed task"
[ "$(wc -l <"$T/out")" -eq 2 ] || fail "watch of two finished tasks: $OUT"

echo "--- watch on a terminal: bars redrawn in place, then the end"
run "$O" submit sleep --payload 2000
TTY_ID=$OUT
run script -qfec "$O watch $TTY_ID $FAIL_ID" /dev/null
expect 1 "watch on a terminal (one task failed)"
tr -d '\r' <"$T/out" >"$T/tty"
grep -q $'\033\\[2K' "$T/tty" || fail "no erase-line sequence on a terminal"
grep -q $'\033\\[4A' "$T/tty" || fail "no cursor-up redraw on a terminal"
grep -Eq "\[#+-+\] +[1-9][0-9]%  slept [0-9]+ of 2000 ms" "$T/tty" || fail "no bar in progress: $(cat -v "$T/tty")"
grep -Eq "$TTY_ID  sleep  .*COMPLETED.*  attempt 1/3" "$T/tty" || fail "no final status line"
grep -Eq '\[#{20,}\] 100%' "$T/tty" || fail "no full bar at the end"
tail -n 2 "$T/tty" | head -n 1 | grep -qx "$TTY_ID: COMPLETED" || fail "no final summary: $(tail -n 3 "$T/tty")"
tail -n 1 "$T/tty" | grep -Eq "^$FAIL_ID: FAILED: .*boom" || fail "no failed summary"
run script -qfec "$O submit echo --payload 'on a tty' --watch" /dev/null
expect 0 "submit --watch on a terminal"
tr -d '\r' <"$T/out" >"$T/tty2"
head -n 1 "$T/tty2" | grep -Eq "$ID_RE" || fail "submit --watch did not start with the id"
tail -n 1 "$T/tty2" | grep -qx "on a tty" || fail "submit --watch did not end with the output"
NO_COLOR=1 run script -qfec "$O watch $FAIL_ID" /dev/null
grep -q $'\033\\[3[0-9]m' "$T/out" && fail "NO_COLOR still coloured"

echo "--- a watch outlives a gateway restart"
run "$O" submit sleep --payload 3000
LONG_ID=$OUT
bounded 60 "$O" watch "$LONG_ID" >"$T/long.jsonl" 2>"$T/long.err" &
watch_pid=$!
deadline=$((SECONDS + 20))
until grep -q '"RUNNING"' "$T/long.jsonl"; do
	[ "$SECONDS" -lt "$deadline" ] || fail "the watch saw no RUNNING update"
	sleep 0.05
done
stop_server gw
start_server gw "$O" gateway --listen "127.0.0.1:$gw_port" --scheduler "127.0.0.1:$sched_port"
rc=0
wait "$watch_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "the watch across a restart exited $rc: $(cat "$T/long.err")"
tail -n 1 "$T/long.jsonl" >"$T/long.json"
json_check "$T/long.json" 'd["status"] == "COMPLETED"' 'd["final"] is True'

stop_server gw
stop_server worker
stop_server sched
echo "PASS"
