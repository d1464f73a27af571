#!/bin/bash
# shellcheck disable=SC2154 # srv_port is set by `start_server srv`
# Our C interop server ($B/interop_server) passes every interop case of the
# grpcio reference client (tests/interop/client.py), over plaintext and TLS.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

need_exe "$B/interop_server"
need_stubs
certs=$(make_tmpdir)
scripts/gen-dev-certs.sh "$certs"

status=0
run_client() {
	local mode=$1
	shift
	echo "== interop_server, $mode"
	if ! bounded 240 "$PYTHON" tests/interop/client.py --server_host 127.0.0.1 \
		--server_port "$srv_port" --test_case all "$@"; then
		echo "FAIL: client.py against interop_server over $mode"
		status=1
	fi
}

start_server srv "$B/interop_server" --port 0
run_client plaintext
stop_server srv

start_server srv "$B/interop_server" --port 0 --use_tls \
	--tls_cert "$certs/server.pem" --tls_key "$certs/server.key"
run_client TLS --use_tls --ca_file "$certs/ca.pem" --server_host_override localhost
stop_server srv

exit $status
