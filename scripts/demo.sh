#!/usr/bin/env bash
# Demo: a throwaway PostgreSQL cluster set up per the article (the shared
# docker/postgres/ files and make-certs.sh, v3 certificate), probed twice:
#
#   1. as the article configures it           -> expect OK (exit 0)
#   2. after pg_hba lets plaintext reach scram -> expect CRITICAL (exit 2)
#
# Needs Rust (cargo), PostgreSQL's server package and openssl. As root, the
# cluster runs as the 'postgres' user. Everything lives in one temp dir,
# removed on exit. The cluster setup is scripts/lib/cluster.sh (shared with
# scripts/bench.sh).
#
#   scripts/demo.sh              build with cargo, run the probe
#   scripts/demo.sh --psql-only  only set up the cluster and check it with psql
#
# Env: PG_BINDIR (server binaries), DEMO_PORT (default: first free from 55432).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
psql_only=false
case ${1:-} in
--psql-only) psql_only=true ;;
"") ;;
*)
	echo "usage: $0 [--psql-only]" >&2
	exit 64
	;;
esac

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

if ! $psql_only; then
	step "building the probe (cargo build --release)"
	(cd "$repo" && cargo build --release --quiet)
fi
probe=$repo/target/release/pg-tls-probe

cluster_start pgtls-demo

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
cluster_allow_plaintext

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
