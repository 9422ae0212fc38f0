#!/usr/bin/env bash
# Benchmark: one fleet run over N service entries against N single-target
# runs through `xargs -P 16`, on one throwaway TLS cluster set up per the
# article (scripts/lib/cluster.sh). Then the same fleet with M silent
# endpoints added and a short --timeout.
#
#   fleet   pg-tls-probe --services 'fleet-*' --per-server 16 --format json
#   xargs   printf 'service=fleet-NNN\n' ... | xargs -P 16 -n 1 pg-tls-probe --format json
#
# All targets are one server here, so the fleet gets --per-server 16: the
# same 16 targets at a time on the server as xargs -P 16 (the default, 4,
# is for real clusters with many databases; see docs/fleet.md).
# Both use the default module (verify-full session, plaintext check,
# protocol scan, direct-TLS check) against the same server, with the same
# service file, password and CA. Measured with GNU time over BENCH_RUNS runs
# of each, interleaved: wall time, total CPU (user + system, the children's
# for xargs), peak RSS (the largest process). Per-target CPU is the total
# divided by N.
#
# Targets: fleet wall time <= xargs's; fleet CPU <= 0.6x xargs's; fleet
# peak RSS < 48 MiB; with the silent endpoints and --timeout 3, the run ends
# within 4 s with every good target OK. Misses are reported, not fatal; a
# run whose good targets are not all OK is fatal.
#
# Env: BENCH_TARGETS (200), BENCH_SILENT (20), BENCH_RUNS (3), BENCH_SWEEP (a list of
# --concurrency values to compare, e.g. "8 16 32 64 128"; none by default), plus PG_BINDIR
# and DEMO_PORT as for scripts/demo.sh. Needs Rust, PostgreSQL's server
# package, openssl, python3, jq and GNU time; as root the cluster runs as
# the 'postgres' user.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
targets=${BENCH_TARGETS:-200}
silent=${BENCH_SILENT:-20}
runs=${BENCH_RUNS:-3}

# Every target opens up to five connections at once, --concurrency 32 of
# them: room above that for the xargs side (16 processes).
export CLUSTER_EXTRA_CONF="max_connections = 400"
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

for tool in jq python3 /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench-fleet: $tool is needed" >&2; exit 1; }
done

step "building the probe (cargo build --release)"
(cd "$repo" && cargo build --release --quiet)
probe=$repo/target/release/pg-tls-probe

cluster_start bench-fleet

step "service file: $targets entries, plus $silent silent endpoints"
services=$work/pg_service.conf
for i in $(seq -f '%03g' 1 "$targets"); do
	printf '[fleet-%s]\nhost=localhost\nport=%s\nuser=probe\ndbname=postgres\napplication_name=fleet-%s\n\n' \
		"$i" "$port" "$i"
done >"$services"
# Silent endpoints: accept TCP, never answer (a hung server, a black hole).
silent_ports=$work/silent.ports
python3 - "$silent" "$silent_ports" <<'PY' &
import socket, sys, threading
n, out = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(n):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(512); socks.append(s)
with open(out, "w") as f:
    f.write("\n".join(str(s.getsockname()[1]) for s in socks) + "\n")
held = []
def accept(s):
    while True:
        c, _ = s.accept(); held.append(c)
for s in socks:
    threading.Thread(target=accept, args=(s,), daemon=True).start()
threading.Event().wait()
PY
silent_pid=$!
trap 'kill $silent_pid 2>/dev/null || true; cluster_cleanup' EXIT
while [ ! -s "$silent_ports" ]; do sleep 0.1; done
with_silent=$work/pg_service_silent.conf
cp "$services" "$with_silent"
n=0
while read -r p; do
	n=$((n + 1))
	printf '[fleet-silent-%02d]\nhost=127.0.0.1\nport=%s\nuser=probe\ndbname=postgres\n\n' "$n" "$p"
done <"$silent_ports" >>"$with_silent"

env_for() { # the client environment with this service file
	printf '%s\n' "${client_env[@]}" | grep -v -e '^PGHOST=' -e '^PGPORT=' -e '^PGDATABASE=' -e '^PGUSER=' -e '^env$' -e '^-i$'
	echo "PGSERVICEFILE=$1"
}
mapfile -t fleet_env < <(env_for "$services")
mapfile -t silent_env < <(env_for "$with_silent")

fleet_run() { # [time file]: one fleet run, timed by GNU time when given a file
	local timer=()
	[ $# -gt 0 ] && timer=(/usr/bin/time -f '%e %U %S %M' -o "$1")
	"${timer[@]}" env -i "${fleet_env[@]}" "$probe" --services 'fleet-*' --per-server 16 \
		--format json >"$work/fleet.json" || true
}
xargs_run() { # [time file]: the same targets as single runs, 16 at a time
	local timer=()
	[ $# -gt 0 ] && timer=(/usr/bin/time -f '%e %U %S %M' -o "$1")
	seq -f 'service=fleet-%03g' 1 "$targets" >"$work/names"
	"${timer[@]}" env -i "${fleet_env[@]}" xargs -a "$work/names" -P 16 -n 1 \
		"$probe" --format json >"$work/xargs.json" || true
}

step "correctness: every target OK in both"
fleet_run
ok=$(jq '.counts.ok' "$work/fleet.json")
[ "$ok" = "$targets" ] || { jq '.targets[] | select(.status != "OK") | {name, summary}' "$work/fleet.json" | head -40; echo "fleet: $ok of $targets OK" >&2; exit 1; }
xargs_run
xok=$(jq -s '[.[] | select(.status == "OK")] | length' "$work/xargs.json")
[ "$xok" = "$targets" ] || { echo "xargs: $xok of $targets OK" >&2; exit 1; }
echo "fleet: $ok of $targets OK; xargs: $xok of $targets OK"

step "timing: $runs runs each, interleaved"
fw=() fc=() fm=() xw=() xc=() xm=()
for r in $(seq "$runs"); do
	fleet_run "$work/time.fleet"
	read -r w u s m <"$work/time.fleet"
	fw+=("$w") fc+=("$(echo "$u + $s" | bc)") fm+=("$m")
	xargs_run "$work/time.xargs"
	read -r w u s m <"$work/time.xargs"
	xw+=("$w") xc+=("$(echo "$u + $s" | bc)") xm+=("$m")
	echo "run $r: fleet ${fw[-1]} s wall, ${fc[-1]} s CPU, ${fm[-1]} KiB; xargs ${xw[-1]} s wall, ${xc[-1]} s CPU, ${xm[-1]} KiB"
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.3f", s / NR }'; }
max() { printf '%s\n' "$@" | sort -n | tail -n 1; }
fwm=$(mean "${fw[@]}") fcm=$(mean "${fc[@]}") xwm=$(mean "${xw[@]}") xcm=$(mean "${xc[@]}")
fmm=$(max "${fm[@]}") xmm=$(max "${xm[@]}")

if [ -n "${BENCH_SWEEP:-}" ]; then
	step "--concurrency sweep: ${BENCH_SWEEP} ($runs runs each, interleaved)"
	for r in $(seq "$runs"); do
		for c in $BENCH_SWEEP; do
			/usr/bin/time -f '%e %U %S %M' -o "$work/time.sweep" env -i "${fleet_env[@]}" \
				"$probe" --services 'fleet-*' --concurrency "$c" --per-server "$c" --format json \
				>"$work/sweep.json" || true
			read -r w u s m <"$work/time.sweep"
			echo "run $r: --concurrency $c: $w s wall, $(echo "$u + $s" | bc) s CPU, $m KiB, $(jq '.counts.ok' "$work/sweep.json") OK"
		done
	done
fi

step "silent endpoints: $targets good + $silent silent, --timeout 3"
started=$(date +%s.%N)
env -i "${silent_env[@]}" "$probe" --services 'fleet-*' --per-server 16 --timeout 3 --format json \
	>"$work/silent.json" || true
silent_wall=$(echo "$(date +%s.%N) - $started" | bc)
good_ok=$(jq '[.targets[] | select((.name | startswith("fleet-silent")) | not) | select(.status == "OK")] | length' "$work/silent.json")
silent_bad=$(jq '[.targets[] | select(.name | startswith("fleet-silent")) | select(.status == "CRITICAL")] | length' "$work/silent.json")
echo "ended after ${silent_wall} s; good targets OK: $good_ok of $targets; silent CRITICAL: $silent_bad of $silent"
jq -r '.targets[] | select(.status != "OK") | "\(.status) \(.name): \(.summary)"' "$work/silent.json" | sort | uniq -c -f 1 | head -20

step "summary"
verdict() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
cpu_ratio=$(echo "scale=2; $fcm / $xcm" | bc)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "targets: $targets, $runs runs each"
echo "wall: fleet $fwm s, xargs -P 16 $xwm s (target fleet <= xargs: $(verdict "$(echo "$fwm <= $xwm" | bc)"))"
echo "CPU: fleet $fcm s, xargs $xcm s, ratio $cpu_ratio (target <= 0.6: $(verdict "$(echo "$cpu_ratio <= 0.6" | bc)"))"
echo "per target CPU: fleet $(echo "scale=2; 1000 * $fcm / $targets" | bc) ms, single run $(echo "scale=2; 1000 * $xcm / $targets" | bc) ms"
echo "peak RSS: fleet $fmm KiB, single run $xmm KiB (target fleet < 48 MiB: $(verdict "$(echo "$fmm < 49152" | bc)"))"
echo "silent: ended in $silent_wall s (target <= 4: $(verdict "$(echo "$silent_wall <= 4" | bc)")), good OK $good_ok of $targets (target all: $(verdict "$([ "$good_ok" = "$targets" ] && echo 1 || echo 0)"))"
