#!/bin/sh
# gen-dev-certs.sh DIR: throwaway TLS material for tests and local runs.
#
# Writes into DIR: ca.pem (+ ca.key), a server certificate server.pem /
# server.key valid for localhost, 127.0.0.1 and ::1 (subjectAltName, and CN
# localhost for old verifiers), and a client certificate client.pem /
# client.key for mutual TLS, both signed by the CA. EC P-256 keys, 10 years.
# server.pem is good for client authentication too, because an orchd role
# presents its one certificate both on its listener and to the roles it
# calls (`orchd dev --tls` runs this script, embedded in the executable).
#
# Idempotent: if DIR already holds a consistent, unexpired set it is left
# alone. Otherwise a whole new set is made in a scratch directory inside DIR
# and then moved into place, so no file is ever seen half-written. Quiet
# unless it fails.
# Never use these certificates for anything real.
set -eu

usage() { echo "usage: $0 DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
dir=$1
mkdir -p "$dir"

files="ca.pem ca.key server.pem server.key client.pem client.key"

# A set is good when every file exists, both leaves chain to the CA and none
# expires within a day.
have_good_set() {
	for f in $files; do [ -s "$dir/$f" ] || return 1; done
	openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem" \
		>/dev/null 2>&1 || return 1
	for f in ca.pem server.pem client.pem; do
		openssl x509 -in "$dir/$f" -noout -checkend 86400 >/dev/null 2>&1 || return 1
	done
	# Sets from before server.pem could authenticate clients are remade.
	openssl x509 -in "$dir/server.pem" -noout -ext extendedKeyUsage 2>/dev/null |
		grep -q "TLS Web Client Authentication" || return 1
}

have_good_set && exit 0

tmp=$(mktemp -d "$dir/.gen.XXXXXX")
log=$tmp/openssl.log
trap 'rm -rf "$tmp"' EXIT
umask 077

run() {
	if ! "$@" >>"$log" 2>&1; then
		echo "gen-dev-certs: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

newkey() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# sign NAME CN EXTENSIONS: makes NAME.key and NAME.pem signed by the CA.
sign() {
	newkey "$tmp/$1.key"
	run openssl req -new -key "$tmp/$1.key" -subj "/O=orchd dev/CN=$2" -out "$tmp/$1.csr"
	printf '%s\n' "$3" >"$tmp/$1.ext"
	run openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
		-extfile "$tmp/$1.ext" -out "$tmp/$1.pem"
}

newkey "$tmp/ca.key"
run openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=orchd dev/CN=orchd dev CA" \
	-days 3650 -sha256 -set_serial "0x$(openssl rand -hex 16)" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$tmp/ca.pem"

sign server localhost "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

sign client orchd-dev-client "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectAltName=DNS:orchd-dev-client"

# Certificates are public; keys stay 0600 (umask above).
chmod 644 "$tmp/ca.pem" "$tmp/server.pem" "$tmp/client.pem"
for f in $files; do mv -f "$tmp/$f" "$dir/$f"; done
