# shellcheck shell=bash
# bench/cluster.sh: an orchd cluster for a benchmark run, and the run
# itself. Sourced by bench/curves.sh and bench/scaling.sh from the
# repository root; cluster_setup then sets up what they share: $O (the
# orchd binary), $work (a scratch directory), $results (a JSON-lines file
# the runs are appended to), $failed and the exit trap.
#
# cluster_start starts a scheduler on a fresh store, WORKERS workers and a
# gateway, all on ephemeral 127.0.0.1 ports, and waits until every worker
# is registered. ORCHD_UNIX=1 (opt-in; default 0) puts the scheduler on a
# unix socket in the scratch directory instead (e2e/lib.sh's sched_listen),
# so gateway -> scheduler and workers -> scheduler go through it; clients
# still reach the gateway over TCP; cluster_stop stops them by PID. bench_run runs one
# `orchd bench --json` against it under `timeout` and appends its JSON,
# tagged, to $results. Processes go through bench/e2e/lib.sh's spawn /
# stop_pid, so the caller's EXIT trap (stop_all) catches everything.

# shellcheck source=bench/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e/lib.sh"

: "${CLUSTER_MAX_PAYLOAD:=2M}" # gateway and scheduler --max-payload
: "${CLUSTER_MAX_OUTPUT:=2M}"  # worker --max-output (echo returns the payload)
: "${CLUSTER_MAX_ACTIVE:=2000000}" # scheduler --max-active: room for 1M preloaded + a run
: "${RUN_TIMEOUT:=120}"        # seconds, hard bound of any one bench run
: "${TIME_LIMIT:=60s}"         # orchd bench --time-limit: a slow run reports what it reached
: "${ORCHD_UNIX:=0}"           # 1: roles reach the scheduler over a unix socket

cluster_pids=""
cluster_n=0

# cluster_setup NAME: the common start of a benchmark script NAME, called
# after its own defaults. Checks ROUNDS (at least 3) and $B/orchd (B: build
# by default, made absolute), sets PYTHON if unset, $O, a fresh $work and
# $results ($B/bench/NAME.jsonl, emptied), failed=0, and traps: on exit
# every process spawned is stopped and $work removed.
cluster_setup() {
	local name=$1
	: "${B:=build}"
	case $B in /*) ;; *) B=$PWD/$B ;; esac
	: "${PYTHON:=/usr/bin/python3}"
	[ "$ROUNDS" -ge 3 ] || { echo "$name: ROUNDS must be at least 3" >&2; exit 2; }
	O=$B/orchd
	[ -x "$O" ] || { echo "$name: $O missing; run make" >&2; exit 1; }
	work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-$name.XXXXXX")
	trap cluster_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$B/bench"
	results=$B/bench/$name.jsonl
	: >"$results"
	# shellcheck disable=SC2034 # read by the sourcing script
	failed=0
}

# shellcheck disable=SC2317 # called by the EXIT trap
cluster_cleanup() {
	stop_all
	rm -rf "$work"
}

# cluster_start WORKERS SLOTS: sets $gp (the gateway's port), $cluster
# (a name: its logs are $work/$cluster.*) and $cluster_pids. Returns 1 if a
# role does not come up.
cluster_start() {
	local nw=$1 slots=$2 tag sa i
	cluster_n=$((cluster_n + 1))
	tag=c$cluster_n
	cluster=$tag
	rm -rf "$work/$tag.data"
	spawn "$tag.scheduler" "$O" scheduler --listen "$(sched_listen "$tag.scheduler")" \
		--data-dir "$work/$tag.data" --log-level warn --max-payload "$CLUSTER_MAX_PAYLOAD" \
		--max-active "$CLUSTER_MAX_ACTIVE"
	cluster_pids="$spawned"
	sa=$(sched_addr "$tag.scheduler") || return 1
	for i in $(seq "$nw"); do
		spawn "$tag.worker$i" "$O" worker --listen 127.0.0.1:0 --scheduler "$sa" \
			--slots "$slots" --worker-id "bench-$i" --max-output "$CLUSTER_MAX_OUTPUT" \
			--drain-timeout 1s --log-level warn
		cluster_pids="$cluster_pids $spawned"
	done
	spawn "$tag.gateway" "$O" gateway --listen 127.0.0.1:0 --scheduler "$sa" \
		--log-level warn --max-payload "$CLUSTER_MAX_PAYLOAD" --max-subscribers 5000
	cluster_pids="$cluster_pids $spawned"
	gp=$(orchd_port "$tag.gateway") || return 1
	ORCHD=$O "$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/e2e/ready.py" orchd "$gp" "$nw" 60
}

# cluster_stop [CLUSTER PIDS]: stops a cluster's processes (gateway and
# workers first, the scheduler last) and removes its store and logs; by
# default the last one cluster_start started.
cluster_stop() {
	local tag=${1:-$cluster} list=${2:-$cluster_pids} p rev=""
	for p in $list; do rev="$p $rev"; done
	for p in $rev; do stop_pid "$p"; done
	rm -rf "${work:?}/$tag".*
}

# ticks PID...: CPU ticks each process used so far, as "user+system/system".
ticks() {
	local p
	for p in "$@"; do awk '{ printf "%d/%d ", $14 + $15, $15 }' "/proc/$p/stat"; done
}

# bench_run PORT TAGS_JSON BENCH_ARGS...: one `orchd bench --json
# --no-start` against the gateway on PORT, bounded by --time-limit and
# timeout. Appends its JSON merged with TAGS_JSON (e.g. '{"curve":
# "slots", "x": 4}') to $results, with the CPU time per task that the
# cluster's scheduler, workers and gateway spent during the run
# (cpu_sched_us, cpu_workers_us, cpu_gateway_us, and of that the system
# time, cpu_sched_sys_us, ...; the cluster is $bench_pids, by default the
# last cluster_start's), and prints a one-line summary. Returns 1 if the run failed or completed nothing.
bench_run() {
	local port=$1 tags=$2 rc=0 list=${bench_pids:-$cluster_pids} t0 t1
	shift 2
	# shellcheck disable=SC2086
	t0=$(ticks $list)
	timeout -k 5 "$RUN_TIMEOUT" "$O" bench --gateway "127.0.0.1:$port" --json --no-start \
		--time-limit "$TIME_LIMIT" "$@" >"$work/run.out" 2>"$work/run.err" </dev/null || rc=$?
	# shellcheck disable=SC2086
	t1=$(ticks $list)
	if [ "$rc" -ne 0 ] || [ ! -s "$work/run.out" ]; then
		echo "  run failed (exit $rc): orchd bench $*" >&2
		tail -n 5 "$work/run.err" >&2
		return 1
	fi
	# shellcheck disable=SC2154 # $results: set by the caller
	"$PYTHON" -c 'import json, os, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
tags = json.loads(sys.argv[2])
r.update(tags)
us = 1e6 / os.sysconf("SC_CLK_TCK") / max(r["completed"], 1)
for i, sfx in ((0, ""), (1, "_sys")):
    d = [int(b.split("/")[i]) - int(a.split("/")[i])
         for a, b in zip(sys.argv[4].split(), sys.argv[5].split())]
    r["cpu_sched" + sfx + "_us"], r["cpu_gateway" + sfx + "_us"] = d[0] * us, d[-1] * us
    r["cpu_workers" + sfx + "_us"] = sum(d[1:-1]) * us
open(sys.argv[3], "a").write(json.dumps(r) + "\n")
print("  %-34s %8.0f tasks/s  p50 %8.2f ms  p99 %8.2f ms  %d tasks  CPU us/task: sched %.1f (sys %.1f) workers %.1f (sys %.1f) gateway %.1f%s" % (
    " ".join("%s=%s" % kv for kv in tags.items() if kv[0] not in ("round", "comparison")),
    r["tasks_per_s"], r["p50_ms"] or 0, r["p99_ms"] or 0, r["completed"],
    r["cpu_sched_us"], r["cpu_sched_sys_us"], r["cpu_workers_us"], r["cpu_workers_sys_us"],
    r["cpu_gateway_us"], "  TIME LIMIT" if r.get("timed_out") else ""))
sys.exit(0 if r["completed"] > 0 else 1)' "$work/run.out" "$tags" "$results" "$t0" "$t1"
}
