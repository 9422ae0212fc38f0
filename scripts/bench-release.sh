#!/usr/bin/env bash
# Compares two builds of the probe side by side in one hyperfine run each
# (docs/packaging.md, "Release profile"): start-up (`--version`) and a real
# probe (--scan none and the default protocol scan) against a throwaway
# cluster set up per the article (scripts/lib/cluster.sh).
#
#   scripts/bench-release.sh BINARY_A BINARY_B
#
# Env: BENCH_RUNS (default 100), BENCH_WARMUP (10), PG_BINDIR, DEMO_PORT.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# = 2 ] || {
	echo "usage: $0 BINARY_A BINARY_B" >&2
	exit 64
}
a=$(realpath "$1") b=$(realpath "$2")
runs=${BENCH_RUNS:-100}
warmup=${BENCH_WARMUP:-10}
command -v hyperfine >/dev/null || {
	echo "hyperfine not found (apt-get install hyperfine)" >&2
	exit 1
}
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
cluster_start pgtls-bench-release

ls -l "$a" "$b"
step "start-up: --version"
hyperfine -N --runs "$runs" --warmup "$warmup" -n A "$a --version" -n B "$b --version"
for scan in none protocols; do
	step "a real probe, --scan $scan"
	hyperfine -N --runs "$runs" --warmup "$warmup" \
		-n A "${client_env[*]} $a --scan $scan" \
		-n B "${client_env[*]} $b --scan $scan"
done
