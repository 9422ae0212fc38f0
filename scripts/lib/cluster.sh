# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/bench.sh (sourced, not run): a
# throwaway PostgreSQL cluster set up per the article, from the shared
# docker/postgres/ files (postgresql.conf, pg_hba.conf) and make-certs.sh v3.
#
# Before sourcing, set 'repo' to the repository root. Sourcing finds the
# server binaries and defines:
#
#   bindir, psql      PostgreSQL server binaries and psql
#   as_pg CMD...      runs CMD as the 'postgres' user when we are root
#   step TEXT         prints a '== TEXT' heading
#   cluster_start P   temp dir /tmp/P.XXXXXX, initdb, v3 certificates, the
#                     article's config, starts the server on a free port from
#                     55432 on (or $DEMO_PORT), creates role 'probe' with a
#                     random password. Installs an EXIT trap that stops the
#                     server and removes the temp dir. Sets:
#                       work, port, password
#                       client_env  (env -i ... PGHOST=localhost PGPORT PGUSER
#                                    PGDATABASE PGPASSWORD PGSSLMODE=verify-full
#                                    PGSSLROOTCERT), to prefix a command with
#
# Env: PG_BINDIR (server binaries), DEMO_PORT (default: first free from 55432),
#      CLUSTER_EXTRA_CONF (postgresql.conf lines appended last, e.g.
#      "max_connections = 300").

: "${repo:?set repo before sourcing scripts/lib/cluster.sh}"

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
	# shellcheck disable=SC2012 # version-sorted directory names, no odd characters
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

cluster_started=false
cluster_cleanup() {
	if $cluster_started; then
		as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate -w -s stop || true
	fi
	rm -rf "$work"
}

cluster_start() {
	port=${DEMO_PORT:-}
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	trap cluster_cleanup EXIT
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
		printf '%s\n' "${CLUSTER_EXTRA_CONF:-}"
	} >>"$work/data/postgresql.conf"
	cp "$repo/docker/postgres/pg_hba.conf" "$work/data/pg_hba.conf"
	if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$work/data/pg_hba.conf"; fi
	grep -v '^#' "$work/data/pg_hba.conf" | sed '/^$/d'

	step "starting PostgreSQL on 127.0.0.1:$port"
	if ! as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w -s start; then
		tail -n 20 "$work/server.log" >&2
		exit 1
	fi
	cluster_started=true

	password=demo-$$-$RANDOM
	"$psql" -X -q -h "$work" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE probe LOGIN PASSWORD '$password'"

	# The probe and psql see only these libpq variables.
	# shellcheck disable=SC2034 # used by the scripts that source this file
	client_env=(env -i "PATH=$PATH" "HOME=$work" PGHOST=localhost "PGPORT=$port"
		PGUSER=probe PGDATABASE=postgres "PGPASSWORD=$password"
		PGSSLMODE=verify-full "PGSSLROOTCERT=$work/ssl/ca.crt")
}
