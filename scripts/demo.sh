#!/usr/bin/env bash
# Demo: a throwaway PostgreSQL cluster set up per the article (the shared
# docker/postgres/ files and make-certs.sh, v3 certificate), probed twice:
#
#   1. as the article configures it           -> expect OK (exit 0)
#   2. after pg_hba lets plaintext reach scram -> expect CRITICAL (exit 2)
#
# Needs Rust (cargo), PostgreSQL's server package and openssl. As root, the
# cluster runs as the 'postgres' user. Everything lives in one temp dir,
# removed on exit.
#
#   scripts/demo.sh              build with cargo, run the probe
#   scripts/demo.sh --psql-only  only set up the cluster and check it with psql
#
# Env: PG_BINDIR (server binaries), DEMO_PORT (default: first free from 55432).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
port=${DEMO_PORT:-}
psql_only=false
case ${1:-} in
--psql-only) psql_only=true ;;
"") ;;
*)
	echo "usage: $0 [--psql-only]" >&2
	exit 64
	;;
esac

find_bindir() {
	local d
	if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/pg_ctl" ]; then
		echo "$PG_BINDIR"
		return
	fi
	if d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/pg_ctl" ]; then
		echo "$d"
		return
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
		echo "$d"
		return
	fi
	if d=$(command -v pg_ctl); then
		dirname "$d"
		return
	fi
	echo "PostgreSQL server binaries not found (set PG_BINDIR)" >&2
	exit 1
}
bindir=$(find_bindir)
psql=$bindir/psql
[ -x "$psql" ] || psql=psql

# PostgreSQL refuses to run as root.
if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

step() { printf '\n== %s\n' "$*"; }

if ! $psql_only; then
	step "building the probe (cargo build --release)"
	(cd "$repo" && cargo build --release --quiet)
fi
probe=$repo/target/release/pg-tls-probe

work=$(mktemp -d /tmp/pgtls-demo.XXXXXX)
started=false
cleanup() {
	if $started; then
		as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate -w -s stop || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$work"; fi

step "initdb in $work/data"
as_pg "$bindir/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C \
	--no-sync --no-instructions >/dev/null

step "certificates: docker/postgres/make-certs.sh v3 (SAN db.internal, localhost, 127.0.0.1)"
sh "$repo/docker/postgres/make-certs.sh" v3 "$work/ssl" 2>/dev/null
chmod 755 "$work/ssl"

if [ -z "$port" ]; then
	# First port from 55432 on that nothing answers on.
	for port in $(seq 55432 55532); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
fi
step "postgresql.conf and pg_hba.conf from docker/postgres/"
{
	echo
	sed "s#/etc/postgresql/ssl/#$work/ssl/#" "$repo/docker/postgres/postgresql.conf"
	echo "# demo overrides"
	echo "listen_addresses = '127.0.0.1'"
	echo "port = $port"
	echo "unix_socket_directories = '$work'"
} >>"$work/data/postgresql.conf"
cp "$repo/docker/postgres/pg_hba.conf" "$work/data/pg_hba.conf"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$work/data/pg_hba.conf"; fi
grep -v '^#' "$work/data/pg_hba.conf" | sed '/^$/d'

step "starting PostgreSQL on 127.0.0.1:$port"
if ! as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w -s start; then
	tail -n 20 "$work/server.log" >&2
	exit 1
fi
started=true

password=demo-$$-$RANDOM
"$psql" -X -q -h "$work" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
	-c "CREATE ROLE probe LOGIN PASSWORD '$password'"

# The probe and psql see only these libpq variables.
client_env=(env -i "PATH=$PATH" "HOME=$work" PGHOST=localhost "PGPORT=$port"
	PGUSER=probe PGDATABASE=postgres "PGPASSWORD=$password"
	PGSSLMODE=verify-full "PGSSLROOTCERT=$work/ssl/ca.crt")

step "psql with verify-full (the article's pg_stat_ssl query)"
"${client_env[@]}" "$psql" -X -c \
	'SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()'

# Runs the probe, prints its report, and compares the exit code.
failures=0
run_probe() {
	local want=$1 got=0
	"${client_env[@]}" "$probe" --format text || got=$?
	if [ "$got" = "$want" ]; then
		echo "-> exit $got, as expected"
	else
		echo "-> exit $got, expected $want" >&2
		failures=$((failures + 1))
	fi
}

if ! $psql_only; then
	step "probe 1: the article's setup (expect OK, exit 0)"
	run_probe 0
fi

step "allowing plaintext: 'host ... reject' -> 'host ... scram-sha-256', reload"
sed -i 's/^\(host[[:space:]].*[[:space:]]\)reject$/\1scram-sha-256/' "$work/data/pg_hba.conf"
grep -v '^#' "$work/data/pg_hba.conf" | sed '/^$/d'
loaded() {
	"$psql" -X -At -h "$work" -p "$port" -U postgres -d postgres -c 'SELECT pg_conf_load_time()'
}
before=$(loaded)
as_pg "$bindir/pg_ctl" -D "$work/data" -s reload
# pg_ctl reload only signals the postmaster; new sessions see the new rules
# once pg_conf_load_time() moves (pg_hba_file_rules shows the file, not what
# is loaded, so it cannot tell).
for _ in $(seq 100); do
	[ "$(loaded)" != "$before" ] && break
	sleep 0.05
done
if [ "$(loaded)" = "$before" ]; then
	echo "PostgreSQL did not reload its configuration" >&2
	exit 1
fi

if $psql_only; then
	step "psql without TLS now gets in (sslmode=disable)"
	"${client_env[@]}" PGSSLMODE=disable "$psql" -X -c \
		'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'
else
	step "probe 2: plaintext reaches password authentication (expect CRITICAL, exit 2)"
	run_probe 2
fi

step "done; removing $work"
exit $((failures > 0))
