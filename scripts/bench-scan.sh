#!/usr/bin/env bash
# Benchmark: the probe's protocol scan against testssl.sh's protocol check
# on the same throwaway cluster (scripts/lib/cluster.sh), first set up per
# the article, then reloaded as a legacy server that also accepts TLS 1.0
# and 1.1 (the two servers of tests/testssl.rs).
#
#   probe    target/release/pg-tls-probe --scan protocols --format json
#            (the whole run: verify-full session, plaintext check and the
#            SSLv3..TLS 1.3 scan; timed with --legacy-tls ignore so that
#            any non-zero exit is a real failure)
#   testssl  testssl --starttls postgres --protocols 127.0.0.1:PORT
#            with the flags tests/testssl.rs uses (no DNS, no prompts; see
#            there and README "Protocol scan versus testssl.sh")
#
# Per server: both tools run once and their verdicts for SSLv3, TLS 1.0,
# 1.1, 1.2 and 1.3 must be identical (SSLv2 is not compared: the probe does
# not test it), else the script fails. Then hyperfine times each tool in its
# own invocation (testssl takes seconds a run, so it gets fewer runs) and
# the summary prints both means and the ratio testssl/probe.
#
# Target: the probe at least 100x faster than testssl (ratio >= 100). A
# miss is reported, not fatal; a disagreement or a failing tool is fatal.
#
# Needs what scripts/bench.sh needs plus testssl (Debian package
# testssl.sh) and jq; hyperfine, testssl and jq are installed with apt-get
# when missing and we are root.
#
# Env: BENCH_RUNS (probe runs, default 50), BENCH_WARMUP (probe warmup, 5),
#      BENCH_TESTSSL_RUNS (testssl runs, default 5),
#      BENCH_TESTSSL_ONLY=1 (time testssl alone, e.g. on a build without
#      --scan), PG_BINDIR, DEMO_PORT (as scripts/demo.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-50}
warmup=${BENCH_WARMUP:-5}
testssl_runs=${BENCH_TESTSSL_RUNS:-5}
testssl_only=${BENCH_TESTSSL_ONLY:-0}

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

die() {
	echo "bench-scan: $*" >&2
	exit 1
}

# need COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing.
need() {
	command -v "$1" >/dev/null && return
	[ "$(id -u)" = 0 ] || die "$1 not found (apt-get install $2)"
	step "installing $2 (apt-get)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
	fi
}
need hyperfine hyperfine
need testssl testssl.sh
need jq jq

step "building the probe (cargo build --release)"
(cd "$repo" && cargo build --release --quiet)
probe=$repo/target/release/pg-tls-probe

cluster_start pgtls-bench-scan

# testssl's flags: see tests/testssl.rs for why each is there. NXCONNECT
# keeps its start-up OpenSSL checks from resolving "invalid." over DNS.
testssl_bin=$(command -v testssl)
testssl_args=(--quiet --warnings off --color 0 --nodns none
	--connect-timeout 10 --openssl-timeout 10
	--starttls postgres --protocols "127.0.0.1:$port")
bench_env=("${client_env[@]}" NXCONNECT=127.0.0.1:0)

# "VERSION accepted|refused|undecided" lines, in the contract's order.
probe_verdicts() {
	jq -r '.scan.protocols // error("no scan.protocols in the probe JSON")
		| .[] | "\(.version) \(if .accepted == true then "accepted"
			elif .accepted == false then "refused" else "undecided" end)"'
}
testssl_verdicts() {
	jq -r '[["SSLv3","SSLv3"],["TLSv1","TLS1"],["TLSv1.1","TLS1_1"],
			["TLSv1.2","TLS1_2"],["TLSv1.3","TLS1_3"]] as $ids
		| . as $f | $ids[] | .[1] as $id
		| ([$f[] | select(.id == $id) | .finding] | if length == 1 then .[0] else "" end) as $t
		| "\(.[0]) \(if ($t | startswith("not offered")) then "refused"
			elif ($t | startswith("offered")) then "accepted" else "undecided" end)"' "$1"
}

# measure LABEL EXPECTED_EXIT EXPECTED_VERDICTS: checks, then times, both tools.
measure() {
	local label=$1 expect_exit=$2 expected=$3 rc=0 out
	step "$label server: one run of each, verdicts compared"
	rm -f "$work/testssl.json"
	"${bench_env[@]}" "$testssl_bin" --jsonfile "$work/testssl.json" "${testssl_args[@]}" \
		>"$work/testssl.out" 2>&1 || die "testssl failed: $(cat "$work/testssl.out")"
	testssl_verdicts "$work/testssl.json" >"$work/testssl.verdicts"
	echo "testssl: $(paste -sd, "$work/testssl.verdicts")"
	[ "$(cat "$work/testssl.verdicts")" = "$expected" ] ||
		die "testssl's verdicts on the $label server are not the expected $(echo "$expected" | paste -sd,)"
	if [ "$testssl_only" != 1 ]; then
		out=$("${client_env[@]}" "$probe" --scan protocols --format json) || rc=$?
		[ "$rc" = "$expect_exit" ] || die "the probe exited $rc, expected $expect_exit: $out"
		echo "$out" | probe_verdicts >"$work/probe.verdicts" || die "probe JSON: $out"
		echo "probe:   $(paste -sd, "$work/probe.verdicts")"
		diff "$work/testssl.verdicts" "$work/probe.verdicts" >/dev/null ||
			die "the probe and testssl disagree on the $label server"
		echo "verdicts identical"
	fi

	step "$label server: hyperfine -N"
	if [ "$testssl_only" != 1 ]; then
		"${bench_env[@]}" "$(command -v hyperfine)" -N --style basic \
			--warmup "$warmup" --runs "$runs" --export-csv "$work/probe-$label.csv" \
			-n "probe ($label)" \
			"$(printf '%q ' "$probe" --scan protocols --format json --legacy-tls ignore)"
	fi
	"${bench_env[@]}" "$(command -v hyperfine)" -N --style basic \
		--warmup 1 --runs "$testssl_runs" --export-csv "$work/testssl-$label.csv" \
		-n "testssl ($label)" "$(printf '%q ' "$testssl_bin" "${testssl_args[@]}")"
}

# Mean and stddev in ms from a hyperfine CSV (command,mean,stddev,...).
ms() { awk -F, -v col="$2" 'NR == 2 { printf "%.1f", $col * 1000 }' "$1"; }

accepts() { printf 'SSLv3 refused\nTLSv1 %s\nTLSv1.1 %s\nTLSv1.2 accepted\nTLSv1.3 accepted' "$1" "$1"; }

measure article 0 "$(accepts refused)"

step "reloading as the legacy server (TLS 1.0 floor, SECLEVEL=0)"
cat >>"$work/data/postgresql.conf" <<-'EOF'
	# legacy server (tests/testssl.rs)
	ssl_min_protocol_version = 'TLSv1'
	ssl_ciphers = 'DEFAULT:@SECLEVEL=0'
EOF
as_pg "$bindir/pg_ctl" -D "$work/data" -s reload
# pg_ctl reload only signals; wait (bounded) until new sessions see it.
for _ in $(seq 50); do
	min=$("$psql" -X -At -h "$work" -p "$port" -U postgres -d postgres -c 'SHOW ssl_min_protocol_version')
	[ "$min" = TLSv1 ] && break
	sleep 0.1
done
[ "$min" = TLSv1 ] || die "the server did not pick up ssl_min_protocol_version = 'TLSv1'"

# --legacy-tls defaults to warning: exit 1 on the legacy server.
measure legacy 1 "$(accepts accepted)"

step "summary"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "PostgreSQL $("$psql" -X -At -h "$work" -p "$port" -U postgres -d postgres -c 'SHOW server_version'), $("$testssl_bin" --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'testssl *[0-9.]*' | head -n 1 | tr -s ' '), $(hyperfine --version)"
for label in article legacy; do
	t_ms=$(ms "$work/testssl-$label.csv" 2)
	t_sd=$(ms "$work/testssl-$label.csv" 3)
	if [ "$testssl_only" = 1 ]; then
		echo "$label: testssl $t_ms ms ± $t_sd ($testssl_runs runs); probe not timed (BENCH_TESTSSL_ONLY=1)"
		continue
	fi
	p_ms=$(ms "$work/probe-$label.csv" 2)
	p_sd=$(ms "$work/probe-$label.csv" 3)
	ratio=$(awk -v t="$t_ms" -v p="$p_ms" 'BEGIN { printf "%.0f", t / p }')
	met=$(awk -v r="$ratio" 'BEGIN { print (r >= 100 ? "met" : "MISSED") }')
	echo "$label: probe $p_ms ms ± $p_sd ($runs runs), testssl $t_ms ms ± $t_sd ($testssl_runs runs), testssl/probe ${ratio}x (target >= 100x: $met)"
done
