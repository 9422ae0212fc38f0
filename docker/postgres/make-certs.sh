#!/bin/sh
# Creates the article's CA and server certificate with the openssl CLI.
#
#   make-certs.sh [v3|v1] [DIR]
#
#   v3 (default)  server certificate with subjectAltName
#                 DNS:db.internal, DNS:localhost, IP:127.0.0.1 (what modern
#                 clients such as rustls, Go and Java need).
#   v1            the article's exact commands: CN=db.internal and nothing
#                 else; libpq accepts it, strict clients do not.
#   DIR           output directory (default /etc/postgresql/ssl, as in the
#                 article). Writes ca.crt, ca.key, server.csr, server.crt,
#                 server.key and ca.srl.
#
# When run as root and a 'postgres' user exists, server.key is chowned to it,
# as the article does. Never commit the output.
set -eu

kind=${1:-v3}
dir=${2:-/etc/postgresql/ssl}
case $kind in
v1 | v3) ;;
*)
	echo "usage: $0 [v3|v1] [DIR]" >&2
	exit 64
	;;
esac

mkdir -p "$dir"
umask 077

# Self-signed CA (for internal use)
openssl req -new -x509 -days 3650 -nodes \
	-out "$dir/ca.crt" \
	-keyout "$dir/ca.key" \
	-subj '/CN=PostgreSQL CA'

# Server certificate
openssl req -new -nodes \
	-out "$dir/server.csr" \
	-keyout "$dir/server.key" \
	-subj '/CN=db.internal'

if [ "$kind" = v3 ]; then
	ext=$(mktemp)
	trap 'rm -f "$ext"' EXIT
	printf '%s\n' 'subjectAltName = DNS:db.internal, DNS:localhost, IP:127.0.0.1' >"$ext"
	set -- -extfile "$ext"
else
	set --
fi

openssl x509 -req -days 365 \
	-in "$dir/server.csr" \
	-CA "$dir/ca.crt" \
	-CAkey "$dir/ca.key" \
	-CAcreateserial \
	-out "$dir/server.crt" "$@"

# The CA certificate and server certificate are public.
chmod 644 "$dir/ca.crt" "$dir/server.crt"
chmod 600 "$dir/server.key"
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
	chown postgres:postgres "$dir/server.key"
fi
echo "wrote $kind certificates to $dir"
