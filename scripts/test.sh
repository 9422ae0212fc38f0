#!/usr/bin/env bash
# The test command (README, Development; .ci/run runs it): fetches what the
# version matrix needs, then runs every test of the workspace.
#
#   scripts/fetch-postgres.sh   PostgreSQL 12, 17 and 18 for tests/matrix.rs
#                               (cached outside the tree; a re-run takes 0.1 s)
#   cargo test --workspace      the probe's tests and xtask's (the man page
#                               and completions against the flags)
#
# A bare `cargo test` without the cached majors passes the matrix tests
# after only printing that they skipped (cargo has no runtime skip); this
# script cannot, since it fetches them first and fails if it cannot. Extra
# arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-postgres.sh
cargo test --workspace "$@"
