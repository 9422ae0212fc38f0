#!/usr/bin/env bash
# Benchmark: the full probe against psql doing the same verify-full connect
# and pg_stat_ssl query, side by side in one hyperfine run, on a throwaway
# cluster set up per the article (scripts/lib/cluster.sh, as scripts/demo.sh).
#
#   probe  target/release/pg-tls-probe        verify-full session (TLS,
#          SCRAM login, pg_stat_ssl for its own backend) plus, concurrently,
#          the plaintext-rejection check (--scan none: the protocol scan and
#          the direct_tls check are benchmarked against testssl.sh in
#          scripts/bench-scan.sh, as psql does neither)
#   psql   psql -X -A -t -q -c "SELECT ssl, version, cipher, bits
#          FROM pg_stat_ssl WHERE pid = pg_backend_pid()"   with
#          PGSSLMODE=verify-full: same handshake, same login, same query
#
# Both get the same libpq variables (PGHOST=localhost, PGPORT, PGUSER,
# PGPASSWORD, PGDATABASE, PGSSLMODE=verify-full, PGSSLROOTCERT) and nothing
# else. Wall time: hyperfine (mean ± stddev, ratio probe/psql). Peak memory:
# GNU time's max RSS over BENCH_RSS_RUNS runs of each.
#
# Targets: probe wall time <= 0.5x psql's; probe peak RSS <= psql's. Misses
# are reported, not fatal; a probe or psql that does not succeed is fatal.
#
# Needs Rust (cargo), PostgreSQL's server package, openssl, GNU time
# (/usr/bin/time) and hyperfine (installed with apt-get when missing and we
# are root). As root, the cluster runs as the 'postgres' user. Everything
# lives in one temp dir, removed on exit.
#
# Env: BENCH_RUNS (default 100), BENCH_WARMUP (10), BENCH_RSS_RUNS (20),
#      BENCH_JSON (copy hyperfine's JSON export to this path),
#      PG_BINDIR, DEMO_PORT (as scripts/demo.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-100}
warmup=${BENCH_WARMUP:-10}
rss_runs=${BENCH_RSS_RUNS:-20}
query='SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()'

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

die() {
	echo "bench: $*" >&2
	exit 1
}

if ! command -v hyperfine >/dev/null; then
	[ "$(id -u)" = 0 ] || die "hyperfine not found (apt-get install hyperfine)"
	step "installing hyperfine (apt-get)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
	fi
fi
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) not found (apt-get install time)"

step "building the probe (cargo build --release)"
(cd "$repo" && cargo build --release --quiet)
probe=$repo/target/release/pg-tls-probe

cluster_start pgtls-bench

probe_cmd=("${client_env[@]}" "$probe" --scan none)
psql_cmd=("${client_env[@]}" "$psql" -X -A -t -q -c "$query")

step "checking both succeed"
rc=0
out=$("${probe_cmd[@]}") || rc=$?
echo "probe: $out"
[ "$rc" = 0 ] || die "the probe exited $rc, expected 0 (OK)"
out=$("${psql_cmd[@]}") || die "psql failed"
echo "psql:  $out"
case $out in
t\|TLSv1.*) ;;
*) die "psql output does not start with 't|TLSv1.'" ;;
esac
# Where the probe's time goes, from its own --format json timings.
for _ in $(seq 10); do
	"${probe_cmd[@]}" --format json | tr -d ' \n' | grep -o '"timings":{[^}]*}' || true
done | awk '
	function get(k) { return match($0, "\"" k "\":[0-9.e+-]+") ? substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) : 0 }
	{ c += get("connect_seconds"); p += get("plaintext_seconds"); t += get("total_seconds"); n++ }
	END {
		if (n == 0) { print "probe own timings: none in --format json"; exit }
		printf "probe own timings, mean of %d runs (--format json): connect %.1f ms, plaintext %.1f ms, total %.1f ms\n",
			n, c * 1000 / n, p * 1000 / n, t * 1000 / n
	}'

# The probe and psql see only the client_env variables: hyperfine runs with
# them and starts each command directly (no shell, -N).
hf_probe=$(printf '%q ' "$probe" --scan none)
hf_psql=$(printf '%q ' "$psql" -X -A -t -q -c "$query")
step "wall time: hyperfine -N, $warmup warmup + $runs runs each"
"${client_env[@]}" "$(command -v hyperfine)" -N --style basic \
	--warmup "$warmup" --runs "$runs" \
	--export-json "$work/hyperfine.json" --export-csv "$work/hyperfine.csv" \
	-n probe "$hf_probe" -n psql "$hf_psql"
if [ -n "${BENCH_JSON:-}" ]; then cp "$work/hyperfine.json" "$BENCH_JSON"; fi

# CSV: command,mean,stddev,median,user,system,min,max (seconds)
wall() { awk -F, -v n="$1" -v col="$2" '$1 == n { printf "%.1f", $col * 1000 }' "$work/hyperfine.csv"; }
probe_ms=$(wall probe 2)
probe_sd=$(wall probe 3)
psql_ms=$(wall psql 2)
psql_sd=$(wall psql 3)

# Max RSS (KiB) of LABEL CMD... over rss_runs runs; GNU time measures the
# process that env execs.
max_rss() {
	local label=$1 max=0 kib i
	shift
	for i in $(seq "$rss_runs"); do
		/usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null ||
			die "$label failed (run $i) during the memory measurement"
		kib=$(tail -n 1 "$work/rss")
		[ "$kib" -gt "$max" ] && max=$kib
	done
	echo "$max"
}
step "peak memory: /usr/bin/time -f %M, $rss_runs runs each"
probe_kib=$(max_rss probe "${probe_cmd[@]}")
psql_kib=$(max_rss psql "${psql_cmd[@]}")
echo "probe max RSS: $probe_kib KiB"
echo "psql  max RSS: $psql_kib KiB"

server_version=$("$psql" -X -At -h "$work" -p "$port" -U postgres -d postgres -c 'SHOW server_version')
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "MISSED") }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
wall_ratio=$(ratio "$probe_ms" "$psql_ms")
rss_ratio=$(ratio "$probe_kib" "$psql_kib")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

step "summary"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "PostgreSQL $server_version, $("$psql" --version), $(hyperfine --version), $("$probe" --version)"
echo "wall: probe $probe_ms ms ± $probe_sd, psql $psql_ms ms ± $psql_sd, ratio $wall_ratio (target <= 0.5: $(verdict "$wall_ratio" 0.5))"
echo "peak RSS: probe $(mib "$probe_kib") MiB ($probe_kib KiB), psql $(mib "$psql_kib") MiB ($psql_kib KiB), ratio $rss_ratio (target <= 1.0: $(verdict "$rss_ratio" 1.0))"
