#!/usr/bin/python3
"""summarize.py RESULTS.jsonl: the end-to-end table from bench/e2e.sh's
runs. Each line of the input is one run's report (the JSON object of
`orchd bench --json` or of a peer client) plus "label" and "round". Prints
one row per system -- medians over its rounds of throughput and of
submit->complete p50/p99 -- and each system's ratios to gearmand, then
orchd --fsync against beanstalkd -b -f 0 and the targets' verdicts. With
--markdown the same as a Markdown table (for docs/performance.md)."""
import json
import statistics
import sys

ORDER = ["orchd", "gearmand", "beanstalkd", "beanstalkd -b", "orchd --fsync", "beanstalkd -b -f 0"]
BASE = "gearmand"


def main():
    md = "--markdown" in sys.argv
    path = [a for a in sys.argv[1:] if not a.startswith("--")][0]
    runs = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault(r["label"], []).append(r)
    rows = []
    for label in ORDER + sorted(set(runs) - set(ORDER)):
        if label not in runs:
            continue
        rs = runs[label]
        rows.append({
            "label": label,
            "n": len(rs),
            "rate": statistics.median(r["tasks_per_s"] for r in rs),
            "p50": statistics.median(r["p50_ms"] for r in rs),
            "p99": statistics.median(r["p99_ms"] for r in rs),
            "all": " ".join("%.0f" % r["tasks_per_s"] for r in rs),
            # CPU microseconds per task: servers, workers, client, all.
            "cpu": [statistics.median(r.get(k, 0) / r["tasks"] * 1e6 for r in rs)
                    for k in ("cpu_server_s", "cpu_workers_s", "cpu_client_s")],
        })
    base = next((r for r in rows if r["label"] == BASE), None)
    if md:
        print("| system | runs | tasks/s (median) | p50 ms | p99 ms | tasks/s vs gearmand "
              "| p99 vs gearmand | CPU us/task server + workers + client = total "
              "| tasks/s of each run |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    else:
        print("%-20s %4s %9s %7s %7s %7s %7s  %-26s %s" % (
            "system", "runs", "tasks/s", "p50 ms", "p99 ms", "x rate", "x p99",
            "CPU us/task srv+wrk+cli", "runs"))
    for r in rows:
        xr = "%.2f" % (r["rate"] / base["rate"]) if base else "-"
        xp = "%.2f" % (r["p99"] / base["p99"]) if base else "-"
        c = r["cpu"]
        cpu = "%.0f + %.0f + %.0f = %.0f" % (c[0], c[1], c[2], sum(c))
        if md:
            print("| %s | %d | %.0f | %.2f | %.2f | %s | %s | %s | %s |" % (
                r["label"], r["n"], r["rate"], r["p50"], r["p99"], xr, xp, cpu, r["all"]))
        else:
            print("%-20s %4d %9.0f %7.2f %7.2f %7s %7s  %-26s %s" % (
                r["label"], r["n"], r["rate"], r["p50"], r["p99"], xr, xp, cpu, r["all"]))
    by = {r["label"]: r for r in rows}
    lines = []
    if "orchd --fsync" in by and "beanstalkd -b -f 0" in by:
        a, b = by["orchd --fsync"], by["beanstalkd -b -f 0"]
        lines.append("fsync on every commit: orchd --fsync %.0f tasks/s vs beanstalkd -b -f 0 "
                     "%.0f: %.2fx; p99 %.2f vs %.2f ms" % (a["rate"], b["rate"],
                                                            a["rate"] / b["rate"], a["p99"], b["p99"]))
    if "orchd" in by and base:
        o = by["orchd"]
        lines.append("target tasks/s >= 3x gearmand: %.2fx -> %s" % (
            o["rate"] / base["rate"], "met" if o["rate"] >= 3 * base["rate"] else "MISSED"))
        lines.append("target p99 <= gearmand's: %.2f vs %.2f ms -> %s" % (
            o["p99"], base["p99"], "met" if o["p99"] <= base["p99"] else "MISSED"))
    print()
    for l in lines:
        print(("- " if md else "") + l)


main()
