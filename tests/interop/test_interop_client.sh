#!/bin/bash
# shellcheck disable=SC2154 # srv_port is set by `start_server srv`
# Our C interop client ($B/interop_client) passes every interop case against
# the grpcio reference server (tests/interop/server.py), over plaintext and
# TLS. The case list comes from client.py, so both directions run the same.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_exe "$B/interop_client"
need_stubs
certs=$(make_tmpdir)
scripts/gen-dev-certs.sh "$certs"
cases=$("$PYTHON" tests/interop/client.py --list_cases)

failed=0
run_cases() {
	local mode=$1 c
	shift
	for c in $cases; do
		if bounded 60 "$B/interop_client" --server_host 127.0.0.1 \
			--server_port "$srv_port" --test_case "$c" "$@"; then
			echo "PASS $c ($mode)"
		else
			echo "FAIL $c ($mode): interop_client exited $?"
			failed=$((failed + 1))
		fi
	done
}

start_server srv "$PYTHON" tests/interop/server.py --port 0
run_cases plaintext
stop_server srv

start_server srv "$PYTHON" tests/interop/server.py --port 0 --use_tls \
	--tls_cert "$certs/server.pem" --tls_key "$certs/server.key"
run_cases TLS --use_tls --ca_file "$certs/ca.pem" --server_host_override localhost
stop_server srv

[ "$failed" -eq 0 ] || fail "$failed interop_client case(s) failed"
