#!/bin/bash
# bench/scaling.sh: the "no throughput cliff" target of docs/performance.md
# ("10x more pending tasks or workers costs at most 20 % of throughput").
#
# Each comparison runs two clusters side by side (scheduler with its
# durable store, workers, gateway; 127.0.0.1, ephemeral ports), both up for
# the whole comparison, and measures them alternately, A B A B ..., ROUNDS
# rounds (default 5, at least 3). A run is `orchd bench` with TASKS (20,000)
# noop tasks, CONC (64) in flight. Reported: the medians and B/A, which
# must stay >= 0.80.
#
#   pending   A and B: 4 workers x 16 slots (benchmark 3's cluster), with
#             A 10,000 and B 100,000 tasks PENDING beforehand under a name
#             no worker serves (`orchd bench --no-follow --name parked`).
#             PENDING_PAIRS="10000:100000 100000:1000000" adds pairs.
#   workers   2 against 20 workers, the same 80 slots in all: 2 x 40
#             against 20 x 4 (more workers, nothing else more)
#   workers-per-worker
#             2 against 20 workers, 16 slots each: 32 against 320 slots
#             (CONC in flight either way)
#   transport 20 workers x 4 slots both, A reaching the scheduler over
#             TCP, B over a unix socket (ORCHD_UNIX; not in the default set)
#
# ORCHD_UNIX=1 runs every other comparison's clusters over unix sockets
# (see bench/cluster.sh). COMPARISONS="pending workers" picks a subset. Writes the runs to
# $B/bench/scaling.jsonl and the table to $B/bench/scaling.txt (and .md).
# Every run is bounded (orchd bench --time-limit, then timeout); everything
# started is stopped by PID. Exits 1 if a run failed; a ratio under the
# bound is reported, not an error. Run by `make bench` (B=build).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/cluster.sh
. bench/cluster.sh
: "${ROUNDS:=5}"
: "${TASKS:=20000}"
: "${CONC:=64}"
: "${COMPARISONS:=pending workers workers-per-worker}"
: "${PENDING_PAIRS:=10000:100000}"
: "${PRELOAD_CONC:=256}"
cluster_setup scaling

# preload PORT N: N pending tasks nobody serves, submitted through the
# gateway on PORT; fails unless all N were accepted.
preload() {
	local port=$1 n=$2
	TIME_LIMIT=600s RUN_TIMEOUT=660 bench_run "$port" "{\"preload\": $n}" --no-follow --name parked \
		--tasks "$n" --concurrency "$PRELOAD_CONC" || return 1
	tail -n 1 "$results" | "$PYTHON" -c 'import json, sys
r = json.loads(sys.stdin.read())
sys.exit(0 if r["completed"] == int(sys.argv[1]) and not r.get("failed") else 1)' "$n"
}

# compare NAME LABEL_A WORKERS_A SLOTS_A PRELOAD_A LABEL_B WORKERS_B SLOTS_B PRELOAD_B
compare() {
	local name=$1 la=$2 wa=$3 sa=$4 pa=$5 lb=$6 wb=$7 sb=$8 pb=$9 round
	echo "$name: A = $la, B = $lb"
	ORCHD_UNIX=${UNIX_A:-$ORCHD_UNIX} cluster_start "$wa" "$sa" || { failed=1; cluster_stop; return; }
	local ca=$cluster pids_a=$cluster_pids gp_a=$gp
	if ! ORCHD_UNIX=${UNIX_B:-$ORCHD_UNIX} cluster_start "$wb" "$sb"; then
		failed=1
		cluster_stop
		cluster_stop "$ca" "$pids_a"
		return
	fi
	local cb=$cluster pids_b=$cluster_pids gp_b=$gp ok=1
	if [ "$pa" -gt 0 ]; then bench_pids=$pids_a preload "$gp_a" "$pa" || ok=0; fi
	if [ "$pb" -gt 0 ]; then bench_pids=$pids_b preload "$gp_b" "$pb" || ok=0; fi
	if [ "$ok" = 1 ]; then
		for round in $(seq "$ROUNDS"); do
			bench_pids=$pids_a bench_run "$gp_a" "{\"comparison\": \"$name\", \"side\": \"A\", \"label\": \"$la\", \"round\": $round}" \
				--tasks "$TASKS" --concurrency "$CONC" || failed=1
			bench_pids=$pids_b bench_run "$gp_b" "{\"comparison\": \"$name\", \"side\": \"B\", \"label\": \"$lb\", \"round\": $round}" \
				--tasks "$TASKS" --concurrency "$CONC" || failed=1
		done
	else
		echo "  preload failed" >&2
		failed=1
	fi
	cluster_stop "$cb" "$pids_b"
	cluster_stop "$ca" "$pids_a"
}

echo "scaling: $TASKS noop tasks, $CONC in flight, $ROUNDS rounds A B A B ... (ORCHD_UNIX=$ORCHD_UNIX)" \
	"($(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1))"
for c in $COMPARISONS; do
	case $c in
	pending)
		for pair in $PENDING_PAIRS; do
			a=${pair%%:*} b=${pair##*:}
			compare "pending $a -> $b" "$a pending, 4 x 16 slots" 4 16 "$a" \
				"$b pending, 4 x 16 slots" 4 16 "$b"
		done
		;;
	workers) compare "workers 2 -> 20, 80 slots" "2 workers x 40 slots" 2 40 0 "20 workers x 4 slots" 20 4 0 ;;
	workers-per-worker)
		compare "workers 2 -> 20, 16 slots each" "2 workers x 16 slots" 2 16 0 "20 workers x 16 slots" 20 16 0
		;;
	transport)
		UNIX_A=0 UNIX_B=1 compare "transport tcp -> unix, 20 x 4" "20 x 4 slots, TCP" 20 4 0 \
			"20 x 4 slots, unix socket" 20 4 0
		;;
	*) echo "scaling: unknown comparison $c" >&2; exit 2 ;;
	esac
done

# The table: per comparison, A's and B's medians and B/A against 0.80;
# beside it the CPU time per task of the whole cluster, which drifts less
# than throughput on a shared machine.
"$PYTHON" - "$results" "$B/bench/scaling" <<'EOF' | tee "$B/bench/scaling.txt"
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
comps = []
for r in runs:
    if "comparison" in r and r["comparison"] not in comps:
        comps.append(r["comparison"])
cpu = lambda r: r["cpu_sched_us"] + r["cpu_workers_us"] + r["cpu_gateway_us"]
md = ["| comparison | A | B | A tasks/s | B tasks/s | B / A | >= 0.80? | A p99 ms | B p99 ms "
      "| CPU us/task A (sched+workers+gw) | B | B / A | tasks/s of each run, A; B "
      "| system CPU us/task (sched+workers) A; B |",
      "|---|---|---|---:|---:|---:|---|---:|---:|---|---|---:|---|---|"]
print("\n%-32s %9s %9s %5s %-6s %7s %7s  %-20s %-20s %5s" % (
    "comparison", "A task/s", "B task/s", "B/A", "", "A p99", "B p99", "A CPU us/task", "B CPU us/task", "B/A"))
for c in comps:
    side = {s: [r for r in runs if r.get("comparison") == c and r["side"] == s] for s in "AB"}
    if not side["A"] or not side["B"]:
        continue
    med = {s: statistics.median(r["tasks_per_s"] for r in side[s]) for s in "AB"}
    p99 = {s: statistics.median(r["p99_ms"] for r in side[s]) for s in "AB"}
    parts = {s: [statistics.median(r[k] for r in side[s])
                 for k in ("cpu_sched_us", "cpu_workers_us", "cpu_gateway_us")] for s in "AB"}
    tot = {s: statistics.median(cpu(r) for r in side[s]) for s in "AB"}
    ratio = med["B"] / med["A"]
    verdict = "met" if ratio >= 0.8 else "MISSED"
    desc = {s: "%.0f (%.0f+%.0f+%.0f)" % (tot[s], *parts[s]) for s in "AB"}
    each = {s: " ".join("%.0f" % r["tasks_per_s"] for r in side[s]) for s in "AB"}
    print("%-32s %9.0f %9.0f %5.2f %-6s %7.2f %7.2f  %-20s %-20s %5.2f" % (
        c, med["A"], med["B"], ratio, verdict, p99["A"], p99["B"], desc["A"], desc["B"], tot["B"] / tot["A"]))
    print("    A %s: %s" % (side["A"][0]["label"], each["A"]))
    print("    B %s: %s" % (side["B"][0]["label"], each["B"]))
    sysd = {s: "%.1f+%.1f" % tuple(statistics.median(r[k] for r in side[s])
                                  for k in ("cpu_sched_sys_us", "cpu_workers_sys_us"))
            for s in "AB"}
    print("    system CPU us/task (sched+workers): A %s, B %s" % (sysd["A"], sysd["B"]))
    md.append("| %s | %s | %s | %.0f | %.0f | **%.2f** | %s | %.2f | %.2f | %s | %s | %.2f | %s; %s | %s; %s |" % (
        c, side["A"][0]["label"], side["B"][0]["label"], med["A"], med["B"], ratio, verdict,
        p99["A"], p99["B"], desc["A"], desc["B"], tot["B"] / tot["A"], each["A"], each["B"],
        sysd["A"], sysd["B"]))
open(sys.argv[2] + ".md", "w").write("\n".join(md) + "\n")
EOF
exit $failed
