#!/bin/bash
# bench/curves.sh: benchmark 5 of docs/performance.md, "Curves": how orchd's
# end-to-end throughput and latency move with the worker slots, the payload
# size and the offered load. Every point is the median of ROUNDS runs of
# `orchd bench` (submit -> final update seen by the client), each on a fresh
# cluster (scheduler with its durable store, workers, gateway; 127.0.0.1,
# ephemeral ports). The rounds go over all points before repeating, so a
# burst of noise on this shared machine hits one run of a point, not all.
#
#   slots    noop tasks, SLOTS_CONC (512) in flight, against total worker
#            slots 1, 2, 4, ... 256, as 1 worker with S slots and as 4
#            workers with S/4 slots each (S >= 4)
#   payload  echo tasks (the worker returns the payload) of 64 B to 1 MiB,
#            PAYLOAD_CONC (8) in flight on 4 workers x 16 slots;
#            --max-payload 2M on the gateway and scheduler
#   latency  noop tasks on 4 workers x 16 slots (benchmark 3's cluster),
#            1, 2, 4, ... 512 in flight: submit->done p50 and p99 and the
#            throughput reached
#
# Writes the runs to $B/bench/curves.jsonl, the medians (with min and max)
# to $B/bench/curves-{slots,payload,latency}.csv and, when gnuplot is
# installed, the plots docs/perf-{slots,payload,latency}.png (bench/curves.gp).
# CURVES="slots latency" picks a subset; ROUNDS (default 3, at least 3).
# Every run is bounded (orchd bench --time-limit, then timeout), everything
# started is stopped by PID. Run by `make bench` (B=build by default).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/cluster.sh
. bench/cluster.sh
: "${ROUNDS:=3}"
: "${CURVES:=slots payload latency}"
: "${SLOTS_LIST:=1 2 4 8 16 32 64 128 256}"
: "${SLOTS_CONC:=512}"
: "${SLOTS_TASKS:=20000}"
: "${PAYLOADS:=64 256 1024 4096 16384 65536 262144 1048576}"
: "${PAYLOAD_CONC:=8}"
: "${PAYLOAD_WORKERS:=4}"
: "${PAYLOAD_SLOTS:=16}"
: "${PAYLOAD_BYTES:=134217728}" # per run: tasks = this / size, 100 to 10000
: "${CONC_LIST:=1 2 4 8 16 32 64 128 256 512}"
: "${LAT_TASKS:=10000}"
: "${PLOTS:=$ROOT/docs}"
cluster_setup curves

# point WORKERS SLOTS TAGS BENCH_ARGS...: one run on a fresh cluster.
point() {
	local nw=$1 slots=$2 tags=$3
	shift 3
	if cluster_start "$nw" "$slots"; then
		bench_run "$gp" "$tags" "$@" || failed=1
	else
		echo "  cluster of $nw x $slots did not come up" >&2
		failed=1
	fi
	cluster_stop "$cluster" "$cluster_pids"
}

echo "curves: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
	for c in $CURVES; do
		echo "round $round: $c"
		case $c in
		slots)
			for s in $SLOTS_LIST; do
				point 1 "$s" "{\"curve\": \"slots\", \"series\": \"1 worker\", \"x\": $s, \"round\": $round}" \
					--tasks "$SLOTS_TASKS" --concurrency "$SLOTS_CONC"
				[ "$s" -ge 4 ] || continue
				point 4 $((s / 4)) "{\"curve\": \"slots\", \"series\": \"4 workers\", \"x\": $s, \"round\": $round}" \
					--tasks "$SLOTS_TASKS" --concurrency "$SLOTS_CONC"
			done
			;;
		payload)
			for p in $PAYLOADS; do
				n=$((PAYLOAD_BYTES / p))
				[ "$n" -le 10000 ] || n=10000
				[ "$n" -ge 100 ] || n=100
				point "$PAYLOAD_WORKERS" "$PAYLOAD_SLOTS" "{\"curve\": \"payload\", \"x\": $p, \"round\": $round}" \
					--tasks "$n" --concurrency "$PAYLOAD_CONC" --name echo --payload-size "$p"
			done
			;;
		latency)
			for k in $CONC_LIST; do
				point 4 16 "{\"curve\": \"latency\", \"x\": $k, \"round\": $round}" \
					--tasks "$LAT_TASKS" --concurrency "$k"
			done
			;;
		*) echo "curves: unknown curve $c" >&2; exit 2 ;;
		esac
	done
done

# The medians, one CSV per curve: x, series, runs, then median/min/max of
# tasks/s, p50 and p99 (ms) and, for payloads, MiB/s of payload each way.
"$PYTHON" - "$results" "$B/bench" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in runs:
    groups.setdefault((r["curve"], r.get("series", ""), r["x"]), []).append(r)
cols = ["tasks_per_s", "p50_ms", "p99_ms"]
for curve in ("slots", "payload", "latency"):
    keys = sorted(k for k in groups if k[0] == curve)
    if not keys:
        continue
    with open("%s/curves-%s.csv" % (sys.argv[2], curve), "w") as f:
        f.write("x,series,runs," + ",".join("%s,%s_min,%s_max" % (c, c, c) for c in cols)
                + ",mib_per_s,timed_out\n")
        for k in keys:
            rs = groups[k]
            row = [str(k[2]), k[1], str(len(rs))]
            for c in cols:
                v = [r[c] or 0 for r in rs]
                row += ["%.3f" % statistics.median(v), "%.3f" % min(v), "%.3f" % max(v)]
            rate = statistics.median(r["tasks_per_s"] for r in rs)
            row.append("%.3f" % (rate * k[2] / 1048576 if curve == "payload" else 0))
            row.append(str(sum(1 for r in rs if r.get("timed_out"))))
            f.write(",".join(row) + "\n")
    print("\n%s (medians of %s runs)" % (curve, "/".join(sorted({str(len(groups[k])) for k in keys}))))
    print("%9s %-10s %10s %10s %10s %9s" % ("x", "series", "tasks/s", "p50 ms", "p99 ms", "MiB/s"))
    for k in keys:
        rs = groups[k]
        m = {c: statistics.median(r[c] or 0 for r in rs) for c in cols}
        print("%9s %-10s %10.0f %10.2f %10.2f %9s" % (
            k[2], k[1], m["tasks_per_s"], m["p50_ms"], m["p99_ms"],
            "%.1f" % (m["tasks_per_s"] * k[2] / 1048576) if curve == "payload" else "-"))
EOF

if command -v gnuplot >/dev/null; then
	mkdir -p "$PLOTS"
	gnuplot -e "dir='$B/bench'; out='$PLOTS'; slots_conc=$SLOTS_CONC" \
		-e "payload_conc=$PAYLOAD_CONC; payload_workers=$PAYLOAD_WORKERS; payload_slots=$PAYLOAD_SLOTS" \
		bench/curves.gp && echo "plots: $PLOTS/perf-{slots,payload,latency}.png"
else
	echo "curves: gnuplot missing (scripts/install-deps.sh --all): no plots" >&2
fi
exit $failed
