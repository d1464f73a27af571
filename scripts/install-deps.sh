#!/bin/sh
# Install every Debian package that orchd's build, tests, demo and benchmarks
# need. Idempotent: packages already present are skipped, and apt is not
# touched at all when nothing is missing.
set -eu

# Build and unit tests.
BUILD="build-essential pkg-config libnghttp2-dev libevent-dev libprotobuf-c-dev
protobuf-c-compiler protobuf-compiler libssl-dev zlib1g-dev libsqlite3-dev check"
# Interop and integration tests: real gRPC peers nobody here wrote, the
# HPACK codec of the raw HTTP/2 tests, and clang with libFuzzer for the
# fuzz corpus replay that `make check` runs.
TEST="python3 python3-grpcio python3-protobuf python3-hpack protobuf-compiler-grpc grpc-proto
openssl procps util-linux clang libclang-rt-14-dev"
# Benchmarks.
EXTRA="nghttp2-client libgrpc++-dev libprotobuf-dev gnuplot-nox
gearman-job-server libgearman-dev beanstalkd"

want="$BUILD $TEST"
case "${1:-}" in
--all) want="$want $EXTRA" ;;
--print) ;;
"") ;;
*) echo "usage: $0 [--all|--print]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi
if [ "${1:-}" = "--print" ] || [ "$(id -u)" -ne 0 ]; then
	echo "missing packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
