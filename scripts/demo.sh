#!/bin/bash
# make demo: runs the whole system on this machine and walks through it.
# Starts `orchd dev` (a scheduler, two workers and a gateway on ephemeral
# 127.0.0.1 ports), submits a few example tasks through the CLI — one with
# progress, one that fails, one run by an external command — shows them,
# and shuts everything down. Exits non-zero if any step misbehaves.
set -eu
B=${B:-build}
O=$(cd "$(dirname "$0")/.." && pwd)/$B/orchd
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orchd-demo.XXXXXX")
devpid=
cleanup() {
	if [ -n "$devpid" ] && kill -0 "$devpid" 2>/dev/null; then
		kill -INT "$devpid"
		wait "$devpid" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

echo "== starting a cluster: orchd dev"
"$O" dev --data-dir "$tmp/data" --gateway-port 0 --scheduler-port 0 --worker-port 0 \
	--handler 'wc=wc -c' >"$tmp/dev.out" 2>"$tmp/dev.err" &
devpid=$!
for _ in $(seq 200); do
	grep -q '^GATEWAY ' "$tmp/dev.out" 2>/dev/null && break
	kill -0 "$devpid" 2>/dev/null || { cat "$tmp/dev.err" >&2; exit 1; }
	sleep 0.1
done
gw=$(sed -n 's/^GATEWAY //p' "$tmp/dev.out")
[ -n "$gw" ] || { echo "orchd dev did not come up" >&2; cat "$tmp/dev.err" >&2; exit 1; }
head -n 1 "$tmp/dev.out"
export ORCHD_GATEWAY=$gw

say "orchd submit echo --payload 'hello, orchd' --wait"
"$O" submit echo --payload 'hello, orchd' --wait
echo
say "orchd submit sha256 --payload abc --wait"
"$O" submit sha256 --payload abc --wait
echo
say "orchd submit sleep --payload 1500 --watch      # progress every 10 %"
"$O" submit sleep --payload 1500 --watch
say "orchd submit fail --payload 'disk on fire' --max-attempts 2 --wait   # fails, exit 1"
if "$O" submit fail --payload 'disk on fire' --max-attempts 2 --wait; then
	echo "demo: a failing task reported success" >&2
	exit 1
fi
say "orchd submit wc --payload-file README.md --wait   # --handler 'wc=wc -c': a child process"
"$O" submit wc --payload-file README.md --wait
echo
say "orchd list"
"$O" list
say "orchd workers"
"$O" workers
echo
echo "== stopping the cluster (Ctrl-C on orchd dev)"
kill -INT "$devpid"
wait "$devpid"
devpid=
echo "demo done"
