# shellcheck shell=bash
# Shared by scripts/demo.sh, bench*.sh and test-package.sh (sourced, not
# run): throwaway PostgreSQL clusters set up per the article, from the
# shared docker/postgres/ files (postgresql.conf, pg_hba.conf) and
# make-certs.sh v3. Several can run at once: each cluster_start makes
# another, and the variables below describe the last one started.
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
#                     random password. Installs an EXIT trap that stops every
#                     server started and removes their temp dirs. Sets:
#                       work, port, password
#                       client_env  (env -i ... PGHOST=localhost PGPORT PGUSER
#                                    PGDATABASE PGPASSWORD PGSSLMODE=verify-full
#                                    PGSSLROOTCERT), to prefix a command with
#   cluster_allow_plaintext
#                     rewrites the last cluster's 'host ... reject' lines to
#                     scram-sha-256 (plaintext reaches password
#                     authentication) and waits until the server reloaded
#
# Env: PG_BINDIR (server binaries), DEMO_PORT (the first cluster's port;
#      default and for later clusters: the first free from 55432),
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

# Every cluster's temp dir, in start order; a server runs where its
# postmaster.pid is.
cluster_dirs=()
cluster_cleanup() {
	local dir
	for dir in "${cluster_dirs[@]}"; do
		if [ -f "$dir/data/postmaster.pid" ]; then
			as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -s stop || true
		fi
		rm -rf "$dir"
	done
}

cluster_start() {
	port=
	if [ ${#cluster_dirs[@]} = 0 ]; then port=${DEMO_PORT:-}; fi
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	cluster_dirs+=("$work")
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

	password=demo-$$-$RANDOM
	"$psql" -X -q -h "$work" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE probe LOGIN PASSWORD '$password'"

	# The probe and psql see only these libpq variables.
	# shellcheck disable=SC2034 # used by the scripts that source this file
	client_env=(env -i "PATH=$PATH" "HOME=$work" PGHOST=localhost "PGPORT=$port"
		PGUSER=probe PGDATABASE=postgres "PGPASSWORD=$password"
		PGSSLMODE=verify-full "PGSSLROOTCERT=$work/ssl/ca.crt")
}

cluster_allow_plaintext() {
	sed -i 's/^\(host[[:space:]].*[[:space:]]\)reject$/\1scram-sha-256/' "$work/data/pg_hba.conf"
	grep -v '^#' "$work/data/pg_hba.conf" | sed '/^$/d'
	local before
	before=$(cluster_loaded)
	as_pg "$bindir/pg_ctl" -D "$work/data" -s reload
	# pg_ctl reload only signals the postmaster; new sessions see the new
	# rules once pg_conf_load_time() moves (pg_hba_file_rules shows the file,
	# not what is loaded, so it cannot tell).
	for _ in $(seq 100); do
		[ "$(cluster_loaded)" != "$before" ] && return
		sleep 0.05
	done
	echo "PostgreSQL did not reload its configuration" >&2
	exit 1
}

cluster_loaded() {
	"$psql" -X -At -h "$work" -p "$port" -U postgres -d postgres -c 'SELECT pg_conf_load_time()'
}
