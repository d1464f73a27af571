#!/bin/bash
# bench/footprint.sh: benchmark 4 of docs/performance.md, "Footprint": the
# resident memory (VmRSS from /proc/PID/status; VmHWM, the peak, beside it)
# of each orchd role in four states:
#
#   idle         a scheduler, a worker (4 slots) and a gateway, connected,
#                2 s after start, no tasks                  target <= 8 MiB each
#   pending      a scheduler holding PENDING (1,000,000) pending tasks with
#                64-byte payloads, submitted through a gateway by
#                `orchd bench --no-follow` (256 in flight, one SubmitStream)
#                under a name no worker serves; bounded by PENDING_LIMIT
#                (900 s): what was reached is recorded       target <= 512 MiB
#   subscribers  a gateway serving SUBS (10,000) concurrent SubscribeProgress
#                streams, opened by `orchd bench --calls` following 10,000
#                tasks nobody serves (one HTTP/2 connection) target <= 256 MiB
#   slots        a worker with 1,000 slots, every one busy on a `sleep` task
#                                                            (no target)
#
# Run by `make bench` (B=build by default; needs $B/orchd). Every server
# listens on 127.0.0.1 on an ephemeral port, every wait is bounded, and
# everything started is stopped by PID. Prints one line per measurement and
# writes the table to $B/bench/footprint.txt (and .md). Exits 1 if a
# scenario could not run; a missed target is reported, not an error.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${B:=build}"
case $B in /*) ;; *) B=$ROOT/$B ;; esac
: "${PYTHON:=/usr/bin/python3}"
: "${PENDING:=1000000}"
: "${PENDING_LIMIT:=900}" # seconds for the pending tasks' submits
: "${SUBS:=10000}"
: "${SLOTS:=1000}"
O=$B/orchd
[ -x "$O" ] || { echo "footprint: $O missing; run make" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orchd-footprint.XXXXXX")
# shellcheck source=bench/e2e/lib.sh
. bench/e2e/lib.sh
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$B/bench"
rows=$work/rows
: >"$rows"

# row SCENARIO ROLE PID REACHED TARGET_MIB: records the process's memory.
row() {
	local rss hwm
	rss=$(rss_kib "$3")
	hwm=$(hwm_kib "$3")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$4" "$rss" "$hwm" "$5" >>"$rows"
	printf '  %-12s %-10s %-28s RSS %7.1f MiB  peak %7.1f MiB  (target %s MiB)\n' "$1" "$2" "$4" \
		"$(awk "BEGIN { print $rss / 1024 }")" "$(awk "BEGIN { print $hwm / 1024 }")" "$5"
}

# scheduler [FLAGS...]: starts a scheduler on a fresh store; sets $sched, $sp.
scheduler() {
	rm -rf "$work/data"
	spawn scheduler "$O" scheduler --listen 127.0.0.1:0 --data-dir "$work/data" --log-level warn "$@"
	sched=$spawned
	sp=$(orchd_port scheduler)
}

# gateway [FLAGS...]: starts a gateway on $sp; sets $gw, $gp.
gateway() {
	spawn gateway "$O" gateway --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" "$@"
	gw=$spawned
	gp=$(orchd_port gateway)
}

# worker SLOTS: starts a worker on $sp; sets $wk.
worker() {
	spawn worker "$O" worker --listen 127.0.0.1:0 --scheduler "127.0.0.1:$sp" --slots "$1" \
		--drain-timeout 1s --log-level warn
	wk=$spawned
	ORCHD=$O "$PYTHON" bench/e2e/ready.py orchd "$gp" 1
}

# json FILE KEY: prints a key of the last JSON object in FILE.
json() {
	"$PYTHON" -c 'import json, sys
print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

echo "footprint: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"

# ---- idle -------------------------------------------------------------------
scheduler
gateway --log-level warn
worker 4
sleep 2
row idle scheduler "$sched" "connected, no tasks" 8
row idle gateway "$gw" "connected, no tasks" 8
row idle worker "$wk" "4 slots, connected" 8
stop_all

# ---- pending ------------------------------------------------------------------
scheduler
gateway --log-level warn
rc=0
timeout -k 5 $((PENDING_LIMIT + 60)) "$O" bench --gateway "127.0.0.1:$gp" --no-follow \
	--name footprint-nobody-serves --tasks "$PENDING" --concurrency 256 --payload-size 64 \
	--time-limit "${PENDING_LIMIT}s" --json >"$work/pending.json" 2>"$work/pending.err" || rc=$?
[ "$rc" -eq 0 ] || { echo "footprint: the pending submits failed ($rc): $(cat "$work/pending.err")" >&2; exit 1; }
reached=$(json "$work/pending.json" tasks)
rate=$(json "$work/pending.json" tasks_per_s)
sleep 1
row pending scheduler "$sched" "$reached pending (64 B)" 512
row pending gateway "$gw" "after $reached submits" -
echo "  (submitted at $rate tasks/s; store on disk: $(du -sh "$work/data" | cut -f1))"
stop_all

# ---- subscribers ------------------------------------------------------------------
scheduler --max-streams $((SUBS + 2000))
gateway --log-level debug --max-subscribers "$SUBS" # debug: it logs each subscribe
# --calls: a SubscribeProgress stream per task (the default would follow
# them all on one SubmitStream).
spawn subscribers "$O" bench --gateway "127.0.0.1:$gp" --name footprint-nobody-serves --calls \
	--tasks "$SUBS" --concurrency "$SUBS" --time-limit 300s --no-start --json
subs=$spawned
have=0
for _ in $(seq 1200); do # 120 s
	have=$(grep -o ' subscribers=[0-9]*' "$work/gateway.err" | tail -n 1 | cut -d= -f2)
	have=${have:-0}
	[ "$have" -ge "$SUBS" ] && break
	alive "$subs" || break
	sleep 0.1
done
sleep 1
row subscribers gateway "$gw" "$have SubscribeProgress streams" 256
row subscribers scheduler "$sched" "$have WatchTask streams" -
stop_all

# ---- slots ----------------------------------------------------------------------
scheduler
gateway --log-level warn
worker "$SLOTS"
timeout 120 "$O" bench --gateway "127.0.0.1:$gp" --no-follow --name sleep --payload 600000 \
	--tasks "$SLOTS" --concurrency "$SLOTS" --json >"$work/sleep.json"
busy=0
for _ in $(seq 300); do # 30 s
	busy=$("$O" workers --json --gateway "127.0.0.1:$gp" |
		"$PYTHON" -c 'import json, sys; w = json.load(sys.stdin); print(w[0]["slots"] - w[0]["available_slots"] if w else 0)')
	[ "$busy" -ge "$SLOTS" ] && break
	sleep 0.1
done
row slots worker "$wk" "$busy of $SLOTS slots busy (sleep)" -
stop_all

# ---- table ------------------------------------------------------------------------
"$PYTHON" - "$rows" "$B/bench/footprint.txt" "$B/bench/footprint.md" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
txt, md = [], ["| state | role | reached | RSS MiB | peak MiB | target MiB | |",
               "|---|---|---|---:|---:|---:|---|"]
for state, role, reached, rss, hwm, target in rows:
    rss_m, hwm_m = int(rss) / 1024, int(hwm) / 1024
    verdict = "" if target == "-" else ("met" if rss_m <= float(target) else "MISSED")
    txt.append("%-12s %-10s %-32s %8.1f %8.1f %6s %s" % (state, role, reached, rss_m, hwm_m, target, verdict))
    md.append("| %s | %s | %s | %.1f | %.1f | %s | %s |" % (state, role, reached, rss_m, hwm_m, target, verdict))
head = "%-12s %-10s %-32s %8s %8s %6s" % ("state", "role", "reached", "RSS MiB", "peak", "target")
open(sys.argv[2], "w").write("\n".join([head] + txt) + "\n")
open(sys.argv[3], "w").write("\n".join(md) + "\n")
print()
print("\n".join([head] + txt))
EOF
