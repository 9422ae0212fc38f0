#!/usr/bin/env bash
# Benchmark: `pg-tls-probe serve` under 50 concurrent /probe scrapes of
# different targets, against a single scrape at a time, on one throwaway
# TLS cluster set up per the article (scripts/lib/cluster.sh), release
# build.
#
#   single      curl http://EXPORTER/probe?target=bench-01   (one at a time)
#   concurrent  curl --parallel --parallel-max 50 .../probe?target=bench-01
#               ... target=bench-50                           (all at once)
#
# The two are interleaved (BENCH_SINGLE single scrapes, then one batch of
# BENCH_TARGETS concurrent ones, BENCH_ROUNDS times) so machine load hits
# both alike. Latency is curl's time_total per request; percentiles are
# nearest-rank. Every answer must be HTTP 200 with probe_success 1, or the
# run fails. Also measured over the concurrent batches: the exporter's
# CPU (utime + stime from /proc/PID/stat) and the server's (the
# postmaster's cutime + cstime: its reaped backends), connections
# ("connection received") and server log lines, all per probe; and the
# exporter's peak RSS (VmHWM from /proc/PID/status) at the end. The
# batch's CPU (exporter and server) divided by the cores is the floor no
# scheduling can beat: the batch's wall time against it shows how much
# waiting the exporter adds.
#
# Targets: concurrent p99 <= 3x the single scrape's median; peak RSS
# < 64 MiB. Misses are reported, not fatal.
#
# Env: BENCH_TARGETS (50), BENCH_SINGLE (10), BENCH_ROUNDS (5),
# BENCH_MODULE (default; "quick" is --scan none), plus PG_BINDIR and
# DEMO_PORT as for scripts/demo.sh. Needs Rust, PostgreSQL's server
# package, openssl, curl (7.68+ for --parallel-immediate), awk, bc and
# GNU time; as root the cluster runs as the 'postgres' user.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
targets=${BENCH_TARGETS:-50}
singles=${BENCH_SINGLE:-10}
rounds=${BENCH_ROUNDS:-5}
module=${BENCH_MODULE:-default}

# Each default probe holds up to four connections at once, 50 probes at a
# time; log_connections to count them.
export CLUSTER_EXTRA_CONF="max_connections = 400
log_connections = on"
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

command -v curl >/dev/null || { echo "bench-exporter: curl is needed" >&2; exit 1; }
curl --help all 2>/dev/null | grep -q -- '--parallel-immediate' ||
	{ echo "bench-exporter: curl 7.68+ is needed (--parallel-immediate)" >&2; exit 1; }

step "building the probe (cargo build --release)"
(cd "$repo" && cargo build --release --quiet)
probe=$repo/target/release/pg-tls-probe

cluster_start bench-exporter
echo "load before: $(uptime)"

step "inventory: $targets services, a password file, a quick module"
services=$work/pg_service.conf
for i in $(seq -f '%02g' 1 "$targets"); do
	printf '[bench-%s]\nhost=localhost\nport=%s\nuser=probe\ndbname=postgres\nsslrootcert=%s\n\n' \
		"$i" "$port" "$work/ssl/ca.crt"
done >"$services"
echo "localhost:$port:*:probe:$password" >"$work/pgpass"
chmod 600 "$work/pgpass"
printf '[modules.quick]\nscan = "none"\n' >"$work/exporter.toml"

step "starting pg-tls-probe serve"
env -i "PATH=$PATH" "HOME=$work" "PGSERVICEFILE=$services" "PGPASSFILE=$work/pgpass" \
	"$probe" serve --listen 127.0.0.1:0 --config "$work/exporter.toml" --max-in-flight 64 \
	2>"$work/serve.err" &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null || true; cluster_cleanup' EXIT
for _ in $(seq 100); do
	grep -q 'listening on' "$work/serve.err" && break
	sleep 0.1
done
addr=$(grep -oE '127\.0\.0\.1:[0-9]+' "$work/serve.err" | head -n 1)
[ -n "$addr" ] || { cat "$work/serve.err" >&2; exit 1; }
echo "serve pid $serve_pid on $addr, module $module"
url() { echo "http://$addr/probe?target=bench-$1&module=$module"; }

# Checks one saved answer: HTTP 200 and probe_success 1.
check_answer() { # code file
	if [ "$1" != 200 ] || ! grep -q '^probe_success 1' "$2"; then
		echo "bad answer (HTTP $1) in $2:" >&2
		cat "$2" >&2
		exit 1
	fi
}

single() { # appends one time_total to $work/single.times
	local out
	out=$(curl -s -o "$work/single.body" -w '%{http_code} %{time_total}' "$(url 01)")
	check_answer "${out% *}" "$work/single.body"
	echo "${out#* }" >>"$work/single.times"
}

batch() { # one batch of $targets concurrent scrapes; times to $work/batch.times
	local args=() i
	mkdir -p "$work/batch"
	for i in $(seq -f '%02g' 1 "$targets"); do
		args+=(-o "$work/batch/bench-$i" "$(url "$i")")
	done
	local t0
	t0=$(date +%s%N)
	curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$targets" \
		-w '%{http_code} %{time_total} %{url}\n' "${args[@]}" >"$work/batch.out"
	echo "$(($(date +%s%N) - t0))" >>"$work/batch.walls"
	while read -r code t u; do
		check_answer "$code" "$work/batch/bench-${u##*target=bench-}"
		echo "$t" >>"$work/batch.times"
	done < <(sed 's/&module=.*//' "$work/batch.out")
	[ "$(wc -l <"$work/batch.out")" = "$targets" ] || { echo "batch: not $targets answers" >&2; exit 1; }
}

cpu_ticks() { # utime+stime (own) or cutime+cstime (children) of a pid
	awk -v f="$2" '{ sub(/.*\) /, ""); if (f == "own") print $12 + $13; else print $14 + $15 }' "/proc/$1/stat"
}
postmaster=$(head -n 1 "$work/data/postmaster.pid")
hz=$(getconf CLK_TCK)

step "warm-up: 5 single scrapes, one batch"
for _ in 1 2 3 4 5; do single; done
batch
: >"$work/single.times"
: >"$work/batch.times"
: >"$work/batch.walls"
echo "idle RSS after warm-up: $(awk '/VmRSS/ { print $2 }' "/proc/$serve_pid/status") KiB"

step "$rounds rounds: $singles single scrapes, then $targets concurrent"
batch_cpu=0 server_cpu=0 conns=0 lines=0
for r in $(seq "$rounds"); do
	for _ in $(seq "$singles"); do single; done
	e0=$(cpu_ticks "$serve_pid" own) s0=$(cpu_ticks "$postmaster" children)
	l0=$(wc -l <"$work/server.log") c0=$(grep -c 'connection received' "$work/server.log" || true)
	batch
	e1=$(cpu_ticks "$serve_pid" own) s1=$(cpu_ticks "$postmaster" children)
	l1=$(wc -l <"$work/server.log") c1=$(grep -c 'connection received' "$work/server.log" || true)
	batch_cpu=$((batch_cpu + e1 - e0)) server_cpu=$((server_cpu + s1 - s0))
	lines=$((lines + l1 - l0)) conns=$((conns + c1 - c0))
	echo "round $r: batch max $(sort -n "$work/batch.times" | tail -n 1) s so far"
done
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$serve_pid/status")
series=$(grep -vc '^#' "$work/single.body")

step "for comparison: 20 runs of the CLI (what Icinga runs per check), same target"
cli_env=(env -i "PATH=$PATH" "HOME=$work" "PGSERVICEFILE=$services" "PGPASSFILE=$work/pgpass")
cli_scan=()
[ "$module" = quick ] && cli_scan=(--scan none)
/usr/bin/time -f '%e %U %S %M' -o "$work/cli.time" \
	sh -c 'for _ in $(seq 20); do "$@" >/dev/null; done' sh "${cli_env[@]}" "$probe" service=bench-01 "${cli_scan[@]}"
read -r _ cli_u cli_s cli_m <"$work/cli.time"
echo "load after: $(uptime)"

pct() { # file q: nearest-rank percentile, in ms
	sort -n "$1" | awk -v q="$2" '{ v[NR] = $1 } END { i = int(q * NR + 0.999999); if (i < 1) i = 1; printf "%.1f", 1000 * v[i] }'
}
probes=$((rounds * targets))

step "summary"
verdict() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "module $module; single: $((rounds * singles)) scrapes; concurrent: $rounds batches of $targets"
printf '%-12s %8s %8s %8s %8s\n' "ms" p50 p90 p99 max
for kind in single batch; do
	printf '%-12s %8s %8s %8s %8s\n' "$kind" "$(pct "$work/$kind.times" 0.5)" "$(pct "$work/$kind.times" 0.9)" \
		"$(pct "$work/$kind.times" 0.99)" "$(pct "$work/$kind.times" 1)"
done
median=$(pct "$work/single.times" 0.5)
p99=$(pct "$work/batch.times" 0.99)
echo "concurrent p99 / single median: $(echo "scale=2; $p99 / $median" | bc) (target <= 3: $(verdict "$(echo "$p99 <= 3 * $median" | bc)"))"
echo "exporter peak RSS (VmHWM): $hwm KiB (target < 64 MiB: $(verdict "$(echo "$hwm < 65536" | bc)"))"
wall=$(awk '{ s += $1 } END { printf "%.0f", s / NR / 1e6 }' "$work/batch.walls")
floor=$(echo "1000 * ($batch_cpu + $server_cpu) / $hz / $rounds / $(nproc)" | bc)
echo "batch wall (mean): $wall ms; its CPU (exporter + server) spread over $(nproc) cores: $floor ms"
echo "series per target: $series"
echo "CLI run (for Icinga): $(echo "scale=2; 1000 * ($cli_u + $cli_s) / 20" | bc) ms CPU, peak RSS $cli_m KiB"
echo "per probe: exporter CPU $(echo "scale=2; 1000 * $batch_cpu / $hz / $probes" | bc) ms, server CPU $(echo "scale=2; 1000 * $server_cpu / $hz / $probes" | bc) ms, $(echo "scale=2; $conns / $probes" | bc) connections, $(echo "scale=2; $lines / $probes" | bc) server log lines"
