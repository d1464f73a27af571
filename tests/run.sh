#!/bin/bash
# tests/run.sh [PATTERN...]: runs the integration, interop and fault test scripts.
#
# Called by `make check` as `B=$B PYTHON=/usr/bin/python3 tests/run.sh`.
# Runs every tests/{interop,integration,faults}/test_*.sh and test_*.py in sorted
# order (only those whose name contains a PATTERN, if any are given), each
# under `timeout` (TEST_TIMEOUT, default 300 s), with B, PYTHON and
# PYTHONPATH=$B/py exported. A script passes by exiting 0 and is skipped by
# exiting 77; anything else, a timeout included, fails. Each script's output
# goes to $B/test-logs/<dir>-<name>.log and is shown when it fails. Exits 1 if
# any script failed.

set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${PYTHON:=/usr/bin/python3}"
: "${TEST_TIMEOUT:=300}"
export B PYTHON
export PYTHONPATH="$B/py${PYTHONPATH:+:$PYTHONPATH}"
# Test drivers fork role processes while grpcio's threads run; the child
# execs at once and never uses grpc, so grpcio's fork handlers only add
# risk (they have aborted a test process with a thread-pool assertion).
export GRPC_ENABLE_FORK_SUPPORT=0

logs=$B/test-logs
mkdir -p "$logs"

scripts=$(find tests/interop tests/integration tests/faults -maxdepth 1 -type f \
	\( -name 'test_*.sh' -o -name 'test_*.py' \) 2>/dev/null | LC_ALL=C sort)

selected() {
	local p
	[ $# -gt 1 ] || return 0
	for p in "${@:2}"; do
		case $1 in *"$p"*) return 0 ;; esac
	done
	return 1
}

pass=0 fail=0 skip=0 failed_names=""
for t in $scripts; do
	selected "$t" "$@" || continue
	case $t in
	*.sh) cmd=(bash "$t") ;;
	*.py) cmd=("$PYTHON" "$t") ;;
	esac
	name=${t#tests/}
	log=$logs/$(echo "${name%.*}" | tr / -).log
	start=$SECONDS
	# timeout makes its own process group and signals all of it on expiry;
	# afterwards whatever is left in that group (a server the script failed
	# to stop) is killed too, so one test's processes never leak into the next.
	timeout -k 10 "$TEST_TIMEOUT" "${cmd[@]}" >"$log" 2>&1 </dev/null &
	tpid=$!
	wait "$tpid"
	rc=$?
	kill -KILL -- "-$tpid" 2>/dev/null
	took=$((SECONDS - start))
	case $rc in
	0)
		pass=$((pass + 1))
		echo "PASS $name (${took}s)"
		;;
	77)
		skip=$((skip + 1))
		why=$(grep -m 1 '^SKIP' "$log" | sed 's/^SKIP:* *//')
		echo "SKIP $name${why:+: $why}"
		;;
	*)
		fail=$((fail + 1))
		failed_names="$failed_names $name"
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "FAIL $name: timed out after ${TEST_TIMEOUT}s"
		else
			echo "FAIL $name: exit $rc (${took}s)"
		fi
		echo "---- last 50 lines of $log:"
		tail -n 50 "$log" | sed 's/^/    /'
		echo "----"
		;;
	esac
done

echo "integration/interop/faults: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || { echo "failed:$failed_names"; exit 1; }
exit 0
