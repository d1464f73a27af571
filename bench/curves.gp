# bench/curves.gp: the plots of bench/curves.sh from its CSVs.
#   gnuplot -e "dir='build/bench'; out='docs'" bench/curves.gp
# Reads dir/curves-{slots,payload,latency}.csv (columns: x, series, runs,
# then median, min and max of tasks/s, p50 ms and p99 ms, then MiB/s and
# the number of runs that hit the time limit) and writes
# out/perf-{slots,payload,latency}.png; a missing CSV skips its plot.
# Points are medians; the bars span the runs' minimum to maximum.

if (!exists("dir")) dir = "build/bench"
if (!exists("out")) out = "docs"
# bench/curves.sh's settings, for the titles.
if (!exists("slots_conc")) slots_conc = 512
if (!exists("payload_conc")) payload_conc = 8
if (!exists("payload_workers")) payload_workers = 4
if (!exists("payload_slots")) payload_slots = 16

set terminal pngcairo size 880,520 font "sans,11" noenhanced
set datafile separator comma
set key autotitle columnhead
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set border 3
set tics nomirror
set logscale x 2
set style line 1 lc rgb "#1f77b4" lw 2 pt 7 ps 1.1
set style line 2 lc rgb "#d62728" lw 2 pt 5 ps 1.1
set style line 3 lc rgb "#2ca02c" lw 2 pt 9 ps 1.2 dt 2

have(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0
# Byte counts as 64 B, 1 KiB, 1 MiB.
bytes(x) = x >= 1048576 ? sprintf("%d MiB", x / 1048576) : x >= 1024 ? sprintf("%d KiB", x / 1024) : sprintf("%d B", x)

f = dir . "/curves-slots.csv"
if (have(f)) {
	set output out . "/perf-slots.png"
	set title sprintf("Throughput against worker slots (noop tasks, %d in flight)", slots_conc)
	set xlabel "worker slots in all"
	set ylabel "tasks/s (median; bars: min..max)"
	set xrange [0.8:320]
	set offsets 0, 0, graph 0.05, 0
	set yrange [0:*]
	set key top left box opaque
	plot f using 1:(strcol(2) eq "1 worker" ? $4 : NaN):5:6 with yerrorlines ls 1 title "1 worker with S slots", \
	     f using 1:(strcol(2) eq "4 workers" ? $4 : NaN):5:6 with yerrorlines ls 2 title "4 workers with S/4 slots each"
	unset xrange
}

f = dir . "/curves-payload.csv"
if (have(f)) {
	set output out . "/perf-payload.png"
	set title sprintf("Throughput against payload size (echo tasks, %d in flight, %d workers x %d slots)", payload_conc, payload_workers, payload_slots)
	set xlabel "payload (the worker returns as much)"
	set xtics ("64 B" 64, "256 B" 256, "1 KiB" 1024, "4 KiB" 4096, "16 KiB" 16384, \
	           "64 KiB" 65536, "256 KiB" 262144, "1 MiB" 1048576)
	set logscale y 10
	set ylabel "tasks/s (median; bars: min..max)"
	set y2label "MiB/s of payload each way"
	set logscale y2 10
	set y2tics nomirror
	set yrange [*:*]
	set format y "%.0f"
	set offsets 0, 0, 0, 0
	set key bottom left box opaque
	plot f using 1:4:5:6 with yerrorlines ls 1 title "tasks/s (left)", \
	     f using 1:13 axes x1y2 with linespoints ls 3 title "MiB/s (right)"
	unset y2tics
	unset y2label
	unset logscale y2
	unset logscale y
	set format y "% h"
	set xtics auto
}

f = dir . "/curves-latency.csv"
if (have(f)) {
	set output out . "/perf-latency.png"
	set title "Latency against offered load (noop tasks, 4 workers x 16 slots)"
	set xlabel "tasks in flight (the client submits one as soon as one ends)"
	set logscale y 10
	set ylabel "submit -> done, ms (median; bars: min..max)"
	set y2label "tasks/s reached"
	set y2tics nomirror
	set yrange [*:*]
	set y2range [0:*]
	set offsets graph 0.03, graph 0.03, 0, 0
	set key top left box opaque
	plot f using 1:10:11:12 with yerrorlines ls 2 title "p99 (left)", \
	     f using 1:7:8:9 with yerrorlines ls 1 title "p50 (left)", \
	     f using 1:4 axes x1y2 with linespoints ls 3 title "tasks/s (right)"
}
